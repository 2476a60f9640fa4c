#!/usr/bin/env bash
# Firehose payload bytes per input byte, for each log type and output format: each bench
# corpus file (gzip) through `invoke` against moto_server on loopback, records packed
# (PACK_RECORDS=true, the default) and not. The receipt gives the decompressed input bytes
# (text_bytes), the payload bytes (NDJSON lines and their newlines, as sent) and the bytes
# Firehose bills (each record rounded up to 5 KB). Ingestion is billed per GB: these ratios
# are what each choice costs per GB of audit log.
set -euo pipefail
cd "$(dirname "$0")/.."

MB_PER_TYPE=${MB_PER_TYPE:-64}
PY=.venv/bin/python
bin=${BIN:-target/release/redshift-audit-forwarder}
prefix=AWSLogs/123456789012/redshift/us-east-1/2024/03/01
source scripts/moto.sh .bench/moto-payload.log

files=(.bench/corpus-"$MB_PER_TYPE"/*_connectionlog_*.gz .bench/corpus-"$MB_PER_TYPE"/*_userlog_*.gz
       .bench/corpus-"$MB_PER_TYPE"/*_useractivitylog_*.gz .bench/short-"$MB_PER_TYPE"/*_useractivitylog_*.gz)
$PY - "$endpoint" "$prefix" "${files[@]}" <<'PY'
import os, sys, boto3
endpoint, prefix, *files = sys.argv[1:]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
s3, fh = boto3.client("s3", **kw), boto3.client("firehose", **kw)
for bucket in ("audit-corpus", "audit-short", "dest"):
    s3.create_bucket(Bucket=bucket)
fh.create_delivery_stream(DeliveryStreamName="payload", DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/x",
                                        "BucketARN": "arn:aws:s3:::dest"})
for path in files:
    # Keys as Redshift writes them: their length is in every record's provenance.
    bucket = "audit-" + os.path.basename(os.path.dirname(path)).split("-")[0]
    s3.upload_file(path, bucket, f"{prefix}/{os.path.basename(path)}")
PY

export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=b AWS_SECRET_ACCESS_KEY=b
export AUDIT_BUCKET=audit-corpus ALLOWED_BUCKETS=audit-corpus,audit-short DELIVERY_STREAM=payload METRICS=false
echo "| corpus | log type | format | input MB | records | payload / input | billed / input (packed) | billed / input (unpacked) | Firehose records (packed) |"
echo "|---|---|---|---|---|---|---|---|---|"
for path in "${files[@]}"; do
  corpus=$(basename "$(dirname "$path")")
  key=$prefix/$(basename "$path")
  event=.bench/payload-event.json
  $PY -c "import json,sys; print(json.dumps({'Records':[{'eventSource':'aws:s3','eventName':'ObjectCreated:Put','s3':{'bucket':{'name':sys.argv[2]},'object':{'key':sys.argv[1].replace(':','%3A')}}}]}))" "$key" "audit-${corpus%%-*}" >"$event"
  for format in raw ocsf; do
    for pack in true false; do
      OUTPUT_FORMAT=$format PACK_RECORDS=$pack "$bin" invoke "$event" >/dev/null 2>.bench/payload-$pack.log
    done
    $PY - "$corpus" "$format" .bench/payload-true.log .bench/payload-false.log <<'PY'
import json, sys
corpus, format, packed_log, unpacked_log = sys.argv[1:]
def receipt(log):
    for line in open(log):
        if '"receipt"' in line:
            return json.loads(line)["receipt"]
    sys.exit(f"no receipt in {log}")
p, u = receipt(packed_log), receipt(unpacked_log)
text = p["text_bytes"]
assert p["payload_bytes"] == u["payload_bytes"], "packing changes the records, not the payload"
print(f"| {corpus} | {p['log_type']} | {format} | {text/1e6:.0f} | {p['records']} | "
      f"{p['payload_bytes']/text:.2f} | {p['billed_bytes']/text:.2f} | {u['billed_bytes']/text:.2f} | "
      f"{p['firehose_records']} |")
PY
  done
done
