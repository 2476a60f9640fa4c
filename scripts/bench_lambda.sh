#!/usr/bin/env bash
# Part of `make bench`: a large plain user activity object through the whole Lambda path
# (`invoke` on an S3 event: GetObject stream, gunzip/parse, pack, PutRecordBatch) against
# moto_server on loopback, packed and not packed. Reports the function process's peak RSS and
# CPU time (beside `parse` on the same file), Firehose billed bytes against payload bytes, and
# calls per GB against the minimum the limits allow.
#
#     BIG_MB=1000 [BIN=...] scripts/bench_lambda.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIG_MB=${BIG_MB:-1000}
PY=.venv/bin/python
bin=${BIN:-target/release/redshift-audit-forwarder}
key=AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_analytics-prod_useractivitylog_2024-03-01T00:53
big=.bench/big-$BIG_MB/$(basename "$key")
mkdir -p "$(dirname "$big")"
[ -f "$big" ] || target/release/examples/gen_corpus big "$big" "$BIG_MB" >/dev/null

source scripts/moto.sh .bench/moto.log

$PY - "$endpoint" "$big" "$key" <<'PY'
import sys, boto3
endpoint, path, key = sys.argv[1:]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
s3, fh = boto3.client("s3", **kw), boto3.client("firehose", **kw)
for b in ("audit-bucket", "dest-packed", "dest-unpacked"):
    s3.create_bucket(Bucket=b)
for name in ("packed", "unpacked"):
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/x",
                                            "BucketARN": f"arn:aws:s3:::dest-{name}"})
s3.upload_file(path, "audit-bucket", key)
PY
event=.bench/big-event.json
$PY -c "import json,sys; print(json.dumps({'Records':[{'eventSource':'aws:s3','eventName':'ObjectCreated:Put','s3':{'bucket':{'name':'audit-bucket'},'object':{'key':sys.argv[1].replace(':','%3A')}}}]}))" "$key" >"$event"

export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=b AWS_SECRET_ACCESS_KEY=b AUDIT_BUCKET=audit-bucket
parse=$(python3 scripts/measure.py 3 -- "$bin" parse "$big")
for mode in packed unpacked; do
  pack=$([ $mode = packed ] && echo true || echo false)
  # Each mode with a state prefix of its own: the ledger would skip the second as already done.
  DELIVERY_STREAM=$mode PACK_RECORDS=$pack STATE_PREFIX=bench-$mode/ /usr/bin/time -f "TIME %e %U %S %M" \
    "$bin" invoke "$event" >/dev/null 2>.bench/invoke-$mode.log
done
python3 - "$big" "$parse" .bench/invoke-packed.log .bench/invoke-unpacked.log <<'PY'
import json, math, os, sys
big, parse = sys.argv[1], json.loads(sys.argv[2])
gb = os.path.getsize(big) / 1e9
print(f"Lambda path, {os.path.getsize(big)/1e6:.0f} MB plain user activity object, against moto_server:")
print("| mode | wall s | CPU s | CPU / parse CPU | peak RSS MiB | Firehose records | payload bytes | billed bytes | billed / payload | calls | min calls | calls / min |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for mode, log in (("packed", sys.argv[3]), ("unpacked", sys.argv[4])):
    receipt, timing = None, None
    for line in open(log):
        if '"receipt"' in line:
            receipt = json.loads(line)["receipt"]
        if line.startswith("TIME "):
            timing = line.split()[1:]
    wall, cpu, rss = float(timing[0]), float(timing[1]) + float(timing[2]), int(timing[3]) / 1024
    payload, billed, calls, records = (receipt[k] for k in ("payload_bytes", "billed_bytes", "calls", "firehose_records"))
    # The fewest calls the limits allow: 4 MiB a call, 500 records a call.
    min_calls = max(math.ceil(payload / (4 * 1024 * 1024)), math.ceil(records / 500))
    print(f"| {mode} | {wall:.1f} | {cpu:.2f} | {cpu/parse['cpu_s']:.2f} | {rss:.1f} | {records} | {payload} | "
          f"{billed} | {billed/payload:.3f} | {calls} | {min_calls} | {calls/min_calls:.3f} |")
print(f"`parse` on the same file: CPU {parse['cpu_s']:.2f} s, wall {parse['wall_s']:.2f} s.")
PY
