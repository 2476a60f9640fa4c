#!/usr/bin/env bash
# Part of `make bench` (issue 11, "Also report"): what each choice costs on the Firehose bill.
# For every log type of both corpora (the original mix and short statements), in both formats
# (raw, ocsf) and both ways of sending (packed, one line a Firehose record), `invoke` forwards
# the file against moto_server on loopback and its receipt gives the payload bytes (what is sent)
# and the billed bytes (Firehose bills each record rounded up to 5 KiB). Reported per byte of
# the file's text and per byte of its gzip. Secrets masking is on (the default); it changes no
# size here. PAYLOAD_MB (default 8) sets the size of the generated files.
set -euo pipefail
cd "$(dirname "$0")/.."

MB=${PAYLOAD_MB:-8}
PY=.venv/bin/python
cargo build --release --quiet --bin redshift-audit-forwarder --example gen_corpus
bin=target/release/redshift-audit-forwarder
corpus=.bench/payload-corpus-$MB
short=.bench/payload-short-$MB
[ -d "$corpus" ] || target/release/examples/gen_corpus bench "$corpus" "$MB" >/dev/null
[ -d "$short" ] || target/release/examples/gen_corpus short "$short" "$MB" >/dev/null

source scripts/moto.sh .bench/moto-payload.log

# The gzip files of both corpora (`bench` writes a plain and a gzip copy of each).
mapfile -t files < <(find "$corpus" "$short" -name '*.gz' | sort)
$PY - "$endpoint" "$corpus" "$short" "${files[@]}" <<'PY'
import sys, boto3
endpoint, corpus, short, *files = sys.argv[1:]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
s3, fh = boto3.client("s3", **kw), boto3.client("firehose", **kw)
for b in ("audit-bucket", "dest"):
    s3.create_bucket(Bucket=b)
fh.create_delivery_stream(DeliveryStreamName="payload", DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/x",
                                        "BucketARN": "arn:aws:s3:::dest"})
for path in files:
    root = corpus if path.startswith(corpus) else short
    key = path[len(root) + 1:]
    corpus_name = "short" if root == short else "original"
    s3.upload_file(path, "audit-bucket", f"{corpus_name}/{key}")
PY

export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=b AWS_SECRET_ACCESS_KEY=b
export AUDIT_BUCKET=audit-bucket DELIVERY_STREAM=payload METRICS=false
log=.bench/payload-receipts.log
: >"$log"
for path in "${files[@]}"; do
  case $path in "$corpus"/*) name=original; root=$corpus ;; *) name=short; root=$short ;; esac
  key="$name/${path#"$root"/}"
  event=.bench/payload-event.json
  $PY -c "import json,sys; print(json.dumps({'Records':[{'eventSource':'aws:s3','eventName':'ObjectCreated:Put','s3':{'bucket':{'name':'audit-bucket'},'object':{'key':sys.argv[1].replace(':','%3A')}}}]}))" "$key" >"$event"
  for format in raw ocsf; do
    for pack in true false; do
      receipt=$(AUDIT_PREFIX="$name" OUTPUT_FORMAT=$format PACK_RECORDS=$pack "$bin" invoke "$event" 2>/dev/null \
        | $PY -c "import json,sys; r=json.load(sys.stdin)['receipts'][0]; print(json.dumps(r))")
      echo "$name $format $pack $receipt" >>"$log"
    done
  done
done

python3 - "$log" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    corpus, fmt, pack, receipt = line.split(" ", 3)
    r = json.loads(receipt)
    log_type = next(t for t in ("useractivitylog", "connectionlog", "userlog") if t in r["key"])
    rows.setdefault((corpus, log_type), {})[(fmt, pack == "true")] = r
print("Firehose payload and billed bytes per byte of input (`invoke` receipts; text = the file's")
print("plain text, gz = the gzip object; packed = lines packed into records of up to 1,000 KiB):")
print()
print("| corpus | log type | records | text MB | gzip MB | raw payload / text | raw payload / gz "
      "| raw billed / text, packed | raw billed / text, unpacked | ocsf payload / text | ocsf payload / gz "
      "| ocsf billed / text, packed | ocsf billed / text, unpacked | payload bytes / record, raw / ocsf |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (corpus, log_type), r in sorted(rows.items()):
    raw_p, raw_u, ocsf_p, ocsf_u = r[("raw", True)], r[("raw", False)], r[("ocsf", True)], r[("ocsf", False)]
    text, gz, records = raw_p["text_bytes"], raw_p["object_bytes"], raw_p["records"]
    for a, b in ((raw_p, raw_u), (ocsf_p, ocsf_u)):
        assert a["payload_bytes"] == b["payload_bytes"], "packing changes no payload"
    print(f"| {corpus} | {log_type} | {records} | {text/1e6:.1f} | {gz/1e6:.2f} "
          f"| {raw_p['payload_bytes']/text:.2f} | {raw_p['payload_bytes']/gz:.1f} "
          f"| {raw_p['billed_bytes']/text:.2f} | {raw_u['billed_bytes']/text:.2f} "
          f"| {ocsf_p['payload_bytes']/text:.2f} | {ocsf_p['payload_bytes']/gz:.1f} "
          f"| {ocsf_p['billed_bytes']/text:.2f} | {ocsf_u['billed_bytes']/text:.2f} "
          f"| {raw_p['payload_bytes']/records:.0f} / {ocsf_p['payload_bytes']/records:.0f} |")
PY
