#!/usr/bin/env python3
"""Helpers for `make demo`, against moto_server on loopback: create the audit bucket, the
delivery stream and its destination bucket, upload a generated day and a CloudTrail trail file;
print the function's receipts; print what Firehose delivered, per source. Uses boto3, which
comes with moto.

    demo_aws.py setup ENDPOINT DAY_DIR       # DAY_DIR holds AWSLogs/... under the bucket root
    demo_aws.py trail ENDPOINT               # the trail file events/s3-cloudtrail.json names
    demo_aws.py receipts LOG_FILE            # the receipts and messages of the function's log
    demo_aws.py delivered ENDPOINT [N]       # records delivered so far, per source, and N of them
"""
import gzip
import json
import os
import sys

import boto3

REGION = "us-east-1"
AUDIT_BUCKET = "audit-bucket"
DEST_BUCKET = "delivered-records"
STREAM = "redshift-audit"


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION,
              aws_access_key_id="demo", aws_secret_access_key="demo")
    return boto3.client("s3", **kw), boto3.client("firehose", **kw)


def setup(endpoint, root):
    s3, firehose = clients(endpoint)
    for bucket in (AUDIT_BUCKET, DEST_BUCKET):
        s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-demo",
            "BucketARN": f"arn:aws:s3:::{DEST_BUCKET}",
        },
    )
    count = 0
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, root)
            s3.upload_file(path, AUDIT_BUCKET, key)
            count += 1
    print(f"uploaded {count} objects to s3://{AUDIT_BUCKET}, stream {STREAM} -> s3://{DEST_BUCKET}")


def trail_event(n, source, name, **extra):
    """One CloudTrail record as a trail file holds it."""
    event = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:admin",
                         "arn": "arn:aws:sts::123456789012:assumed-role/Admin/admin",
                         "accountId": "123456789012"},
        "eventTime": f"2024-03-01T00:{50 + n:02}:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {},
        "responseElements": None,
        "requestID": f"5e0d2f4a-0000-4000-8000-00000000000{n}",
        "eventID": f"c1a7e3b2-0000-4000-8000-00000000000{n}",
        "readOnly": name.startswith(("Describe", "Get", "List")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    }
    event.update(extra)
    return event


def trail(endpoint):
    """A trail file under the real CloudTrail key layout: Redshift's API calls among others."""
    s3, _ = clients(endpoint)
    records = [
        trail_event(1, "redshift.amazonaws.com", "ModifyClusterParameterGroup",
                    requestParameters={"parameterGroupName": "prod-params", "parameters": [
                        {"parameterName": "enable_user_activity_logging", "parameterValue": "false"}]}),
        trail_event(2, "s3.amazonaws.com", "ListBuckets"),
        trail_event(3, "redshift-data.amazonaws.com", "ExecuteStatement",
                    requestParameters={"clusterIdentifier": "analytics-prod", "database": "dev",
                                       "sql": "select count(*) from sales.orders"}),
        trail_event(4, "ec2.amazonaws.com", "DescribeInstances"),
        trail_event(5, "redshift.amazonaws.com", "DisableLogging",
                    requestParameters={"clusterIdentifier": "analytics-prod"},
                    errorCode="UnauthorizedOperation",
                    errorMessage="You are not authorized to perform this operation."),
        trail_event(6, "redshift-serverless.amazonaws.com", "GetCredentials",
                    requestParameters={"workgroupName": "sales-wg", "dbName": "dev"}),
    ]
    event = json.load(open("events/s3-cloudtrail.json"))
    key = event["Records"][0]["s3"]["object"]["key"]
    body = gzip.compress(json.dumps({"Records": records}).encode())
    s3.put_object(Bucket=AUDIT_BUCKET, Key=key, Body=body)
    kept = sum(1 for r in records if r["eventSource"].startswith(("redshift", "sqlworkbench")))
    print(f"uploaded s3://{AUDIT_BUCKET}/{key}: {len(records)} events, {kept} of them Redshift's")


def receipts(log_file):
    """One line per receipt (object or batch forwarded) and per message of the function's log."""
    for line in open(log_file):
        if '"receipt"' in line:
            r = json.loads(line)["receipt"]
            what = r.get("key", "").rsplit("/", 1)[-1] or r.get("log_group", "?")
            parts = [f"{r.get('records')} records"]
            for field, label in (("parse_errors", "parse errors"),
                                 ("skipped_events", "events of other services skipped")):
                if r.get(field) is not None:
                    parts.append(f"{r[field]} {label}")
            print(f"   receipt: {what}: {', '.join(parts)} in {r.get('firehose_records')} Firehose "
                  f"records, {r.get('payload_bytes')} bytes, billed {r.get('billed_bytes')}, "
                  f"{r.get('calls')} calls, {r.get('retries')} retries, records "
                  f"{r.get('first_record_time')} .. {r.get('last_record_time')}")
        elif '"message"' in line:
            try:
                print("   log:", json.loads(line).get("fields", {}).get("message", line.strip()))
            except json.JSONDecodeError:
                print("   log:", line.strip())


def source_of(record):
    if "log_group" in (record.get("source") or {}):
        return "CloudWatch Logs"
    if record.get("log_type") == "cloudtrail":
        return "CloudTrail files"
    return "audit files"


def delivered(endpoint, show):
    s3, _ = clients(endpoint)
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DEST_BUCKET):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=DEST_BUCKET, Key=obj["Key"])["Body"].read()
            lines += [l for l in body.decode().split("\n") if l]
    by_source = {}
    for line in lines:
        record = json.loads(line)
        counts = by_source.setdefault(source_of(record), {})
        counts[record["log_type"]] = counts.get(record["log_type"], 0) + 1
    print(f"{len(lines)} records delivered to s3://{DEST_BUCKET}")
    for source in ("audit files", "CloudTrail files", "CloudWatch Logs"):
        counts = by_source.get(source, {})
        print(f"   {source}: {sum(counts.values())} {counts}")
    shown = {}
    for line in lines:
        source = source_of(json.loads(line))
        if shown.get(source, 0) < show:
            shown[source] = shown.get(source, 0) + 1
            print(f"   [{source}] " + line[:400] + (" ..." if len(line) > 400 else ""))


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "trail":
        trail(sys.argv[2])
    elif sys.argv[1] == "receipts":
        receipts(sys.argv[2])
    elif sys.argv[1] == "delivered":
        delivered(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
    else:
        sys.exit(__doc__)
