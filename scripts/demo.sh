#!/usr/bin/env bash
# `make demo`: the function end to end with no AWS account. S3 and Firehose are emulated by
# moto_server on a loopback port; a generated day of all three audit log types is uploaded under
# the real key layout; the handler runs on the sample events in events/ (direct S3, SNS, SQS,
# EventBridge, S3 test event), and the records Firehose delivered are read back.
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
  $PY - ".demo/$event.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if '"receipt"' in line:
        r = json.loads(line)["receipt"]
        print(f"   receipt: {r['key'].rsplit('/', 1)[-1]}: {r['records']} records "
              f"({r['parse_errors']} parse errors) in {r['firehose_records']} Firehose records, "
              f"{r['payload_bytes']} bytes, billed {r['billed_bytes']}, {r['calls']} calls, "
              f"{r['retries']} retries, records {r['first_record_time']} .. {r['last_record_time']}")
    elif '"message"' in line and "receipt" not in line:
        print("   log:", json.loads(line).get("fields", {}).get("message", line.strip()))
PY
done

echo
echo "== invoke events/scheduled.json: the backfill walks the day partitions; objects already"
echo "   forwarded above have done markers in the ledger and are skipped"
BACKFILL_START_TIME=2024-03-01T00:00:00Z "$bin" invoke events/scheduled.json 2>.demo/backfill.log | cut -c1-600

echo
echo "== delivered to the Firehose destination bucket"
$PY scripts/demo_aws.py delivered "$endpoint" 3
