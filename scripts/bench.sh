#!/usr/bin/env bash
# `make bench`: parse throughput against `gzip -dc` on the same files, and peak memory.
# The corpus is generated reproducibly (fixed seeds) into .bench/ and reused by later runs.
# Then the Lambda path (scripts/bench_lambda.sh) and the backfill's listing cost
# (scripts/bench_backfill.sh). Figures go to stdout and to .bench/results.md; the README quotes them.
set -euo pipefail
cd "$(dirname "$0")/.."

MB_PER_TYPE=${MB_PER_TYPE:-64}
BIG_MB=${BIG_MB:-1000}
RUNS=${RUNS:-5}
corpus=.bench/corpus-$MB_PER_TYPE
short=.bench/short-$MB_PER_TYPE
big=.bench/123456789012_redshift_us-east-1_analytics-prod_useractivitylog_2024-03-01T00:53

cargo build --release --quiet --bin redshift-audit-forwarder --example gen_corpus
bin=target/release/redshift-audit-forwarder
[ -d "$corpus" ] || target/release/examples/gen_corpus bench "$corpus" "$MB_PER_TYPE" >/dev/null
[ -d "$short" ] || target/release/examples/gen_corpus short "$short" "$MB_PER_TYPE" >/dev/null
[ -f "$big" ] || target/release/examples/gen_corpus big "$big" "$BIG_MB" >/dev/null

measure() { python3 scripts/measure.py "$RUNS" -- "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

out=.bench/results.md
{
  echo "Machine: $(nproc) cores, $(uname -m); best of $RUNS runs; NDJSON to /dev/null."
  echo
  for dir in "$corpus" "$short"; do
  echo "Corpus $dir ($( [ "$dir" = "$short" ] && echo "short statements, as BI tools send them" || echo "the original mix")):"
  echo
  echo "| log type | plain MB | records | gzip -dc wall s | parse wall s | parse / gzip | parse CPU s | parse MB/s (plain) | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for t in connectionlog userlog useractivitylog; do
    gz=$(ls "$dir"/*_"$t"_*.gz)
    plain=${gz%.gz}
    bytes=$(stat -c %s "$plain")
    records=$("$bin" parse "$gz" | wc -l)
    g=$(measure gzip -dc "$gz")
    p=$(measure "$bin" parse "$gz")
    python3 - "$t" "$bytes" "$records" "$g" "$p" <<'PY'
import json, sys
t, size, records = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
g, p = json.loads(sys.argv[4]), json.loads(sys.argv[5])
print(f"| {t} | {size/1e6:.0f} | {records} | {g['wall_s']:.3f} | {p['wall_s']:.3f} | "
      f"{p['wall_s']/g['wall_s']:.2f} | {p['cpu_s']:.3f} | {size/1e6/p['wall_s']:.0f} | "
      f"{p['peak_rss_bytes']/2**20:.1f} |")
PY
  done
  echo
  done
  echo
  b=$(measure "$bin" parse "$big")
  echo "1 GB plain user activity log ($(stat -c %s "$big") bytes): parse wall $(field "$b" wall_s) s, CPU $(field "$b" cpu_s) s, peak RSS $(python3 -c "print(round($(field "$b" peak_rss_bytes)/2**20,1))") MiB."
} | tee "$out"

echo
echo "Output formats and redaction (CPU seconds; scripts/bench_output.sh):" | tee -a "$out"
bash scripts/bench_output.sh | tee -a "$out"

echo
echo "Cold start (scripts/bench_startup.py): $(python3 scripts/bench_startup.py 20 "$bin")" | tee -a "$out"

echo
bash scripts/bench_lambda.sh | tee -a "$out"

echo
bash scripts/bench_lambda_cpu.sh | tee -a "$out"

echo
bash scripts/bench_backfill.sh | tee -a "$out"

echo
bash scripts/bench_payload.sh | tee -a "$out"

echo
bash scripts/bench_faults.sh | tee -a "$out"
