#!/usr/bin/env bash
# `make bench`, output part: what redaction and the OCSF format cost `parse` on the bench corpus
# (best of RUNS, gzip in, NDJSON to /dev/null), and the bytes each record takes in each format.
# Expects the release binary and the corpus that scripts/bench.sh builds.
set -euo pipefail
cd "$(dirname "$0")/.."
MB_PER_TYPE=${MB_PER_TYPE:-64}
RUNS=${RUNS:-5}
corpus=.bench/corpus-$MB_PER_TYPE
bin=target/release/redshift-audit-forwarder
measure() { python3 scripts/measure.py "$RUNS" -- "$@"; }

echo "| log type | raw, no redaction s | raw, redaction s | redaction cost | ocsf s | ocsf / raw | raw bytes/record | ocsf bytes/record |"
echo "|---|---|---|---|---|---|---|---|"
for t in connectionlog userlog useractivitylog; do
  gz=$(ls "$corpus"/*_"$t"_*.gz)
  records=$("$bin" parse --no-redact "$gz" | wc -l)
  raw_bytes=$("$bin" parse "$gz" | wc -c)
  ocsf_bytes=$("$bin" parse --format ocsf "$gz" | wc -c)
  off=$(measure "$bin" parse --no-redact "$gz")
  on=$(measure "$bin" parse "$gz")
  ocsf=$(measure "$bin" parse --format ocsf "$gz")
  python3 - "$t" "$records" "$raw_bytes" "$ocsf_bytes" "$off" "$on" "$ocsf" <<'PY'
import json, sys
t, records, raw_b, ocsf_b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
off, on, ocsf = (json.loads(a) for a in sys.argv[5:8])
# CPU seconds: wall time on a shared 2-core machine swings more than the differences measured.
print(f"| {t} | {off['cpu_s']:.3f} | {on['cpu_s']:.3f} | {on['cpu_s']/off['cpu_s']-1:+.1%} | "
      f"{ocsf['cpu_s']:.3f} | {ocsf['cpu_s']/on['cpu_s']:.2f} | {raw_b/records:.0f} | {ocsf_b/records:.0f} |")
PY
done
