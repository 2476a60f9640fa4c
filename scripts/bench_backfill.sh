#!/usr/bin/env bash
# Backfill listing cost: one walk over BENCH_OBJECTS (default 10,000) small audit files in 7 day
# partitions against a private moto server. Counts, from moto's request log, the ListObjectsV2
# calls (against the minimum: one page per 1,000 keys plus one per day), the state writes and
# reads per object, and the walk's wall time. The figures go to stdout and to
# .bench/backfill.md; the README quotes them. Needs moto_server (`make venv`).
set -euo pipefail
cd "$(dirname "$0")/.."

export BENCH_OBJECTS=${BENCH_OBJECTS:-10000}
export MOTO_SERVER=${MOTO_SERVER:-$PWD/.venv/bin/moto_server}
export PATH=$PWD/.venv/bin:$PATH
mkdir -p .bench

raw=$(cargo test --release --quiet --test backfill_moto -- --ignored --nocapture --exact \
  bench_listing_cost_of_a_walk_over_10000_objects 2>&1) || { echo "$raw" >&2; exit 1; }
line=$(printf '%s\n' "$raw" | sed -n 's/^BENCH //p' | tail -1)
[ -n "$line" ] || { echo "$raw" >&2; echo "no BENCH line" >&2; exit 1; }

python3 - "$line" <<'PY' | tee .bench/backfill.md
import json, sys
b = json.loads(sys.argv[1])
print(f"Backfill walk over {b['objects']:,} objects in {b['days']} day partitions (moto on loopback):")
print()
print("| measure | value |")
print("|---|---|")
print(f"| ListObjectsV2 requests | {b['list_requests']} (minimum {b['list_minimum_pages_plus_days']}: "
      f"one page per 1,000 keys plus one per day) |")
print(f"| ListObjectsV2 requests per 10,000 objects | {b['list_requests_per_10000_objects']:.1f} |")
print(f"| listing / minimum | {b['list_over_minimum']:.2f} |")
print(f"| state writes per object | {b['state_writes_per_object']:.3f} ({b['state_writes']} in all) |")
print(f"| state reads per object | {b['state_reads_per_object']:.3f} |")
print(f"| GetObject / Firehose calls | {b['object_gets']} / {b['firehose_calls']} |")
print(f"| walk wall time | {b['walk_seconds']:.1f} s ({b['objects_per_second']:.0f} objects/s, moto-bound) |")
PY
