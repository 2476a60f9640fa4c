#!/usr/bin/env bash
# Instructions of the Lambda path beside `parse`'s (valgrind --tool=callgrind, all threads, user
# space only), on 8 MB gzip slices of the bench corpora: each slice goes to S3 in moto_server on
# loopback and through `invoke` (GetObject, parse, pack, PutRecordBatch). Under valgrind SHA-256
# runs in software (valgrind hides SHA-NI), so the instructions under SigV4's `sign` are printed
# apart and left out of the "without signing" ratio; the signature's real cost is the body's
# size at the machine's SHA-256 speed (README, "Second pass"). Repeatable on a busy machine.
#
#     scripts/bench_callgrind_lambda.sh BIN      (BIN with symbols: cargo build --profile profiling)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/profiling/redshift-audit-forwarder}
PY=.venv/bin/python
source scripts/slices.sh

source scripts/moto.sh .bench/moto-callgrind.log
export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=b AWS_SECRET_ACCESS_KEY=b \
  AUDIT_BUCKET=audit-bucket DELIVERY_STREAM=cpu
unset STATE_BUCKET AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
$PY - "$endpoint" <<'PY'
import sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
boto3.client("s3", **kw).create_bucket(Bucket="audit-bucket")
boto3.client("s3", **kw).create_bucket(Bucket="dest")
boto3.client("firehose", **kw).create_delivery_stream(
    DeliveryStreamName="cpu", DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/x",
                                        "BucketARN": "arn:aws:s3:::dest"})
PY
out=.bench/callgrind
mkdir -p "$out"
echo "| slice | parse Ir | invoke Ir | under SigV4 sign | invoke without signing / parse |"
echo "|---|---|---|---|---|"
for f in "${files[@]}"; do
  name=$(basename "$(dirname "$f")")/$(basename "$f" | grep -o '[a-z]*log_' | tr -d _)
  event=$out/event.json
  $PY - "$endpoint" "$f" "$event" <<'PY'
import json, os, sys, urllib.parse, boto3
endpoint, path, event = sys.argv[1:]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
key = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/" + os.path.basename(path)
boto3.client("s3", **kw).upload_file(path, "audit-bucket", key)
json.dump({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "audit-bucket"},
                               "object": {"key": urllib.parse.quote(key)}}}]}, open(event, "w"))
PY
  tag=${name//\//-}
  collected() { grep -o 'Collected : [0-9]*' | grep -o '[0-9]*'; }
  inv=$(valgrind --tool=callgrind --callgrind-out-file="$out/lambda-$tag" "$bin" invoke "$event" 2>&1 >/dev/null | collected)
  par=$(valgrind --tool=callgrind --callgrind-out-file="$out/parse-$tag" "$bin" parse "$f" 2>&1 >/dev/null | collected)
  sign=$(callgrind_annotate --inclusive=yes "$out/lambda-$tag" 2>/dev/null \
    | grep -E 'aws_sigv4::http_request::sign::sign\b' | head -1 | awk '{gsub(",","",$1); print $1}')
  python3 -c "
inv, sign, par = $inv, ${sign:-0}, $par
print(f'| $name | {par:,} | {inv:,} | {sign:,} | {(inv - sign) / par:.2f} |')"
done
