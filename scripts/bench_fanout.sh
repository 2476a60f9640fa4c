#!/usr/bin/env bash
# The backfill at scale against moto: the same objects forwarded by the single walker and by the
# SQS fan-out drained by 1, 2 and 4 worker processes (docs/BACKFILL_AT_SCALE.md has the table).
#
#   bash scripts/bench_fanout.sh                       # 3 days x 8 files x 3 log types, 2000 lines each
#   BENCH_DAYS=3 BENCH_HOURS=24 BENCH_LINES=5000 bash scripts/bench_fanout.sh
#   BENCH_BIN=path/to/optimized/redshift-audit-forwarder bash scripts/bench_fanout.sh
#
# The test build of the binary is unoptimized (its SHA-256 of every Firehose body alone is slow):
# for numbers worth projecting from, build an optimized one first, e.g.
#   CARGO_TARGET_DIR=/tmp/bench CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
#     cargo build --release --bin redshift-audit-forwarder
#   BENCH_BIN=/tmp/bench/release/redshift-audit-forwarder bash scripts/bench_fanout.sh
#
# Every run starts its own moto_server (MOTO_SERVER, else the venv's) on loopback; the table
# gives moto's own CPU beside the wall clock, to tell when moto is the bound.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export MOTO_SERVER="${MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
cargo test --test fanout_moto bench_fanout_workers_beside_the_single_walker \
  -- --ignored --nocapture --test-threads 1 2>&1 | grep '^|'
