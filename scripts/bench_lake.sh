#!/usr/bin/env bash
# The Security Lake destination's costs (issue 18, "Measure"):
#
# 1. Parquet bytes per input byte, per log type (`gen_corpus bench` files of MB_PER_TYPE MB);
# 2. CPU and peak RSS of `parse --format parquet --out` against `parse --format ocsf` on a large
#    plain user activity log (BIG_MB);
# 3. `invoke` with DESTINATIONS=security-lake on the same object in moto_server (GetObject stream,
#    parse, Parquet, multipart upload), against `parse --format parquet`.
#
#     [BIG_MB=1000] [MB_PER_TYPE=50] [RUNS=1] [BIN=...] scripts/bench_lake.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIG_MB=${BIG_MB:-1000}
MB_PER_TYPE=${MB_PER_TYPE:-50}
RUNS=${RUNS:-1}
PY=.venv/bin/python
tdir=${CARGO_TARGET_DIR:-target}
bin=${BIN:-$tdir/release/redshift-audit-forwarder}
gen=${GEN:-$tdir/release/examples/gen_corpus}
gen() { [ -x "$gen" ] || cargo build --release --example gen_corpus; "$gen" "$@"; }
work=.bench/lake
mkdir -p "$work"

# --- 1. bytes per input byte --------------------------------------------------------------
corpus=$work/corpus-$MB_PER_TYPE
[ -d "$corpus" ] || gen bench "$corpus" "$MB_PER_TYPE" >/dev/null
echo "Parquet (zstd) bytes per input byte, gen_corpus bench files of $MB_PER_TYPE MB:"
echo "| log type | text bytes | gzip bytes | ocsf NDJSON bytes | Parquet bytes | Parquet / text | Parquet / gzip | Parquet / ocsf |"
echo "|---|---|---|---|---|---|---|---|"
for t in connectionlog userlog useractivitylog; do
  plain=$(ls "$corpus"/*_"$t"_* | grep -v '\.gz$' | head -1)
  out=$work/out-$t
  rm -rf "$out"
  "$bin" parse --format parquet --out "$out" "$plain" >/dev/null 2>&1
  text=$(stat -c %s "$plain")
  gz=$(stat -c %s "$plain.gz")
  ocsf=$("$bin" parse --format ocsf "$plain" | wc -c)
  pq=$(find "$out" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
  python3 -c "import sys; t,g,o,p=map(int,sys.argv[2:]); print(f'| {sys.argv[1]} | {t} | {g} | {o} | {p} | {p/t:.3f} | {p/g:.2f} | {p/o:.3f} |')" "$t" "$text" "$gz" "$ocsf" "$pq"
done

# --- 2. parse --format parquet against parse --format ocsf -------------------------------
key=AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_analytics-prod_useractivitylog_2024-03-01T00:53
big=.bench/big-$BIG_MB/$(basename "$key")
mkdir -p "$(dirname "$big")"
[ -f "$big" ] || gen big "$big" "$BIG_MB" >/dev/null
ocsf=$(python3 scripts/measure.py "$RUNS" -- "$bin" parse --format ocsf "$big")
rm -rf "$work/big-out"
parquet=$(python3 scripts/measure.py "$RUNS" -- "$bin" parse --format parquet --out "$work/big-out" "$big")

# --- 3. invoke to the lake on moto ---------------------------------------------------------
source scripts/moto.sh "$work/moto.log"
$PY - "$endpoint" "$big" "$key" <<'PY'
import sys, boto3
endpoint, path, key = sys.argv[1:]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
s3 = boto3.client("s3", **kw)
for b in ("audit-bucket", "lake"):
    s3.create_bucket(Bucket=b)
s3.upload_file(path, "audit-bucket", key)
PY
event=$work/big-event.json
$PY -c "import json,sys; print(json.dumps({'Records':[{'eventSource':'aws:s3','eventName':'ObjectCreated:Put','s3':{'bucket':{'name':'audit-bucket'},'object':{'key':sys.argv[1].replace(':','%3A')}}}]}))" "$key" >"$event"
sources=$(for c in authentication account_change datastore_activity api_activity base_event; do printf '%s=s3://lake/ext/%s/,' "$c" "$c"; done)
AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=b AWS_SECRET_ACCESS_KEY=b \
AUDIT_BUCKET=audit-bucket DESTINATIONS=security-lake SECURITY_LAKE_SOURCES="$sources" METRICS=false \
  /usr/bin/time -f "TIME %e %U %S %M" "$bin" invoke "$event" >/dev/null 2>"$work/invoke.log"

python3 - "$big" "$ocsf" "$parquet" "$work/invoke.log" <<'PY'
import json, os, sys
big, ocsf, parquet, log = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
gb = os.path.getsize(big) / 1e9
receipt, timing = None, None
for line in open(log):
    if '"receipt"' in line:
        receipt = json.loads(line)["receipt"]
    if line.startswith("TIME "):
        timing = line.split()[1:]
wall, cpu, rss = float(timing[0]), float(timing[1]) + float(timing[2]), int(timing[3]) * 1024
print()
print(f"{os.path.getsize(big)/1e6:.0f} MB plain user activity log:")
print("| run | wall s | CPU s | CPU s per GB | CPU / parse ocsf | CPU / parse parquet | peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for name, r in (("parse --format ocsf", ocsf), ("parse --format parquet", parquet)):
    print(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.2f} | {r['cpu_s']/gb:.2f} | {r['cpu_s']/ocsf['cpu_s']:.2f} | "
          f"{r['cpu_s']/parquet['cpu_s']:.2f} | {r['peak_rss_bytes']/2**20:.1f} |")
print(f"| invoke, DESTINATIONS=security-lake (moto) | {wall:.1f} | {cpu:.2f} | {cpu/gb:.2f} | {cpu/ocsf['cpu_s']:.2f} | "
      f"{cpu/parquet['cpu_s']:.2f} | {rss/2**20:.1f} |")
if receipt:
    print(f"receipt: {receipt.get('lake_rows')} rows, {receipt.get('lake_objects')} objects, "
          f"{receipt.get('lake_bytes')} Parquet bytes ({receipt.get('lake_bytes', 0)/os.path.getsize(big):.3f} of the text), "
          f"{receipt.get('calls')} S3 calls, {receipt.get('rows_out_of_order')} rows out of time order")
PY
