#!/usr/bin/env bash
# Part of `make bench`: the Lambda path's CPU beside `parse`'s, per file of both bench corpora
# (issue 11, goal 2). Each gzip file goes to S3 in moto_server on loopback and through `invoke`
# on its S3 event (GetObject stream, gunzip and parse, pack, PutRecordBatch to a moto stream);
# `parse` reads the same file from disk. CPU is user + system of the whole process, least of
# RUNS runs each; moto's own CPU is not counted.
#
#     scripts/bench_lambda_cpu.sh [BIN]      (RUNS=3, PACK=true by default)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/redshift-audit-forwarder}
RUNS=${RUNS:-3}
PACK=${PACK:-true}
PY=.venv/bin/python
[ -d .bench/corpus-64 ] || target/release/examples/gen_corpus bench .bench/corpus-64 64 >/dev/null
[ -d .bench/short-64 ] || target/release/examples/gen_corpus short .bench/short-64 64 >/dev/null

source scripts/moto.sh .bench/moto-cpu.log

$PY - "$endpoint" "$bin" "$RUNS" "$PACK" <<'PY'
import glob, json, os, subprocess, sys, urllib.parse
import boto3

endpoint, binary, runs, pack = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="b",
          aws_secret_access_key="b")
s3, fh = boto3.client("s3", **kw), boto3.client("firehose", **kw)
s3.create_bucket(Bucket="audit-bucket")
s3.create_bucket(Bucket="dest")
fh.create_delivery_stream(
    DeliveryStreamName="cpu", DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/x",
                                        "BucketARN": "arn:aws:s3:::dest"})
env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1",
           AWS_ACCESS_KEY_ID="b", AWS_SECRET_ACCESS_KEY="b", AUDIT_BUCKET="audit-bucket",
           DELIVERY_STREAM="cpu", PACK_RECORDS=pack)
for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "STATE_BUCKET"):
    env.pop(var, None)


def cpu(argv):
    """Least CPU seconds (user + system) of `runs` runs, and the receipt of the last."""
    best, receipt = None, None
    for _ in range(runs):
        done = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S", *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit(f"{argv} failed: {done.stderr[-800:]}")
        for line in done.stderr.splitlines():
            if line.startswith("TIME "):
                _, user, system = line.split()
                seconds = float(user) + float(system)
                best = seconds if best is None else min(best, seconds)
            elif '"receipt"' in line:
                receipt = json.loads(line)["receipt"]
    return best, receipt


print(f"Lambda path (`invoke`, PACK_RECORDS={pack}) beside `parse`, CPU seconds, least of {runs}:")
print("| file | MB plain | records | payload MB | parse CPU s | invoke CPU s | invoke / parse |")
print("|---|---|---|---|---|---|---|")
for corpus in ("corpus-64", "short-64"):
    for log_type in ("connectionlog", "userlog", "useractivitylog"):
        path = glob.glob(f".bench/{corpus}/*_{log_type}_*.gz")[0]
        plain = os.path.getsize(path[:-3]) / 1e6
        key = f"AWSLogs/123456789012/redshift/us-east-1/2024/03/01/{os.path.basename(path)}"
        s3.upload_file(path, "audit-bucket", key)
        event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                              "s3": {"bucket": {"name": "audit-bucket"},
                                     "object": {"key": urllib.parse.quote(key)}}}]}
        event_path = f".bench/cpu-event-{corpus}-{log_type}.json"
        with open(event_path, "w") as f:
            json.dump(event, f)
        parse_cpu, _ = cpu([binary, "parse", path])
        invoke_cpu, receipt = cpu([binary, "invoke", event_path])
        print(f"| {corpus}/{log_type} | {plain:.0f} | {receipt['records']} | "
              f"{receipt['payload_bytes'] / 1e6:.0f} | {parse_cpu:.2f} | {invoke_cpu:.2f} | "
              f"{invoke_cpu / parse_cpu:.2f} |")
PY
