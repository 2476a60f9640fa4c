#!/usr/bin/env bash
# `parse` beside `gzip -dc` on one core and on two (`taskset`), both corpora: wall and CPU
# seconds, best of RUNS (scripts/measure.py), and parse / gzip. Needs the corpora of `make
# bench` and a quiet machine: another process on the cores makes every figure here worse.
#
#     scripts/bench_cores.sh [BIN]
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/redshift-audit-forwarder}
RUNS=${RUNS:-7}
echo "| file | cores | gzip -dc wall s | parse wall s | parse / gzip | parse CPU s | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
for f in .bench/corpus-64/*_connectionlog_*.gz .bench/corpus-64/*_userlog_*.gz \
         .bench/corpus-64/*_useractivitylog_*.gz .bench/short-64/*_useractivitylog_*.gz; do
  name=$(basename "$(dirname "$f")")/$(basename "$f" | grep -o '[a-z]*log_' | tr -d _)
  for cpus in 0 0,1; do
    g=$(python3 scripts/measure.py "$RUNS" -- taskset -c "$cpus" gzip -dc "$f")
    p=$(python3 scripts/measure.py "$RUNS" -- taskset -c "$cpus" "$bin" parse "$f")
    python3 - "$name" "$cpus" "$g" "$p" <<'PY'
import json, sys
name, cpus, g, p = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
cores = len(cpus.split(","))
print(f"| {name} | {cores} | {g['wall_s']:.3f} | {p['wall_s']:.3f} | {p['wall_s']/g['wall_s']:.2f} | "
      f"{p['cpu_s']:.3f} | {p['peak_rss_bytes']/2**20:.1f} |")
PY
  done
done
