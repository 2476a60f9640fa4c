#!/usr/bin/env bash
# `make demo`: the function end to end with no AWS account. S3 and Firehose are emulated by
# moto_server on a loopback port; a generated day of all three audit log types is uploaded under
# the real key layout; the handler runs on the sample events in events/ (direct S3, SNS, SQS,
# EventBridge, S3 test event); then on a CloudTrail trail file in the same bucket and on a
# CloudWatch Logs subscription batch (Redshift Serverless); the records Firehose delivered are
# read back, per source.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
cargo build --release --quiet --bin redshift-audit-forwarder --example gen_corpus
bin=target/release/redshift-audit-forwarder

rm -rf .demo && mkdir -p .demo
target/release/examples/gen_corpus day .demo/audit-bucket >/dev/null

source scripts/moto.sh .demo/moto.log

echo "== S3 and Firehose on $endpoint (moto_server)"
$PY scripts/demo_aws.py setup "$endpoint" .demo/audit-bucket

# The function's settings (DESIGN.md) and the standard AWS configuration, pointed at loopback.
export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
export DELIVERY_STREAM=redshift-audit AUDIT_BUCKET=audit-bucket AUDIT_PREFIX=AWSLogs/123456789012/redshift/us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

# The samples carry made-up ETags, so a sample naming an object sent before sends it again: to the
# ledger a different ETag is a new version of the object.
for event in s3-direct s3-sns s3-sqs s3-eventbridge s3-test-event; do
  echo
  echo "== invoke events/$event.json"
  "$bin" invoke "events/$event.json" 2>.demo/$event.log | cut -c1-200
  # One receipt line per object forwarded (the function's log).
  $PY scripts/demo_aws.py receipts ".demo/$event.log"
done

echo
echo "== invoke events/scheduled.json: the backfill walks the day partitions; objects already"
echo "   forwarded above have done markers in the ledger and are skipped"
BACKFILL_START_TIME=2024-03-01T00:00:00Z "$bin" invoke events/scheduled.json 2>.demo/backfill.log | cut -c1-600

echo
echo "== CloudTrail: a trail file in the same bucket; LOG_TYPES names cloudtrail and AUDIT_PREFIX"
echo "   AWSLogs covers both AWSLogs/<account>/redshift/... and AWSLogs/<account>/CloudTrail/..."
$PY scripts/demo_aws.py trail "$endpoint"
echo "== invoke events/s3-cloudtrail.json"
AUDIT_PREFIX=AWSLogs LOG_TYPES=connectionlog,userlog,useractivitylog,cloudtrail \
  "$bin" invoke events/s3-cloudtrail.json 2>.demo/s3-cloudtrail.log | cut -c1-300
$PY scripts/demo_aws.py receipts .demo/s3-cloudtrail.log

echo
echo "== CloudWatch Logs: invoke events/cloudwatch-logs.json, a subscription batch of the Redshift"
echo "   Serverless group /aws/redshift/sales-ns/useractivitylog (JSON, gzip, base64 as CloudWatch"
echo "   Logs sends it; one statement spans two log events)"
"$bin" invoke events/cloudwatch-logs.json 2>.demo/cloudwatch-logs.log | cut -c1-300
$PY scripts/demo_aws.py receipts .demo/cloudwatch-logs.log

echo
echo "== delivered to the Firehose destination bucket, per source"
$PY scripts/demo_aws.py delivered "$endpoint" 1
