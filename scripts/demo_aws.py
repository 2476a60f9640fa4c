#!/usr/bin/env python3
"""Helpers for `make demo`, against moto_server on loopback: create the audit bucket, the
delivery stream and its destination bucket, upload a generated day; later print what Firehose
delivered. Uses boto3, which comes with moto.

    demo_aws.py setup ENDPOINT DAY_DIR       # DAY_DIR holds AWSLogs/... under the bucket root
    demo_aws.py delivered ENDPOINT [N]       # records delivered so far, and N of them
"""
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


def delivered(endpoint, show):
    s3, _ = clients(endpoint)
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DEST_BUCKET):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=DEST_BUCKET, Key=obj["Key"])["Body"].read()
            lines += [l for l in body.decode().split("\n") if l]
    by_type = {}
    for line in lines:
        t = json.loads(line)["log_type"]
        by_type[t] = by_type.get(t, 0) + 1
    print(f"{len(lines)} records delivered to s3://{DEST_BUCKET}: {by_type}")
    for line in lines[:show]:
        print(line[:400] + (" ..." if len(line) > 400 else ""))


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "delivered":
        delivered(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
    else:
        sys.exit(__doc__)
