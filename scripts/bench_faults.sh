#!/usr/bin/env bash
# Duplicates and state writes under faults (issue 12, "Measure"): twelve objects, 73,450
# records, sent unpacked through `invoke` (a direct S3 event each, delivered again until it
# succeeds) while the fault proxy of tests/common/fault_proxy.rs injects the issue's mix (5% of
# Firehose entries failed, 2% of calls cut, half before and half after moto took them, 1% each of
# 500, 503 and throttling, 10% of object bodies cut, 2% of listings and state calls 5xx). Each of
# BENCH_SEEDS seeds (default 4) runs twice: with progress, and with every progress write refused
# (a retry starts from the object's first record, as before issue 12); then one run without
# faults. The figures go to stdout and to .bench/faults.md. Needs moto_server (`make venv`).
set -euo pipefail
cd "$(dirname "$0")/.."

export BENCH_SEEDS=${BENCH_SEEDS:-4}
export MOTO_SERVER=${MOTO_SERVER:-$PWD/.venv/bin/moto_server}
export PATH=$PWD/.venv/bin:$PATH
mkdir -p .bench

raw=$(cargo test --release --quiet --test faults_proxy -- --ignored --nocapture --exact \
  bench_duplicates_and_state_writes_under_the_issue_mix 2>&1) || { echo "$raw" >&2; exit 1; }
lines=$(printf '%s\n' "$raw" | sed -n 's/^BENCH //p')
[ -n "$lines" ] || { echo "$raw" >&2; echo "no BENCH line" >&2; exit 1; }

python3 - "$lines" <<'PY' | tee .bench/faults.md
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
MIB = 1024 * 1024


def total(mode, field):
    return sum(r[field] for r in rows if r["mode"] == mode)


def row(mode, seed):
    return next(r for r in rows if r["mode"] == mode and r["seed"] == seed)


seeds = sorted({r["seed"] for r in rows if r["mode"] == "progress"})
first = rows[0]
print(f"Duplicates under the issue mix: {first['objects']} objects, {first['records']:,} records, "
      f"unpacked, seeds {seeds[0]} to {seeds[-1]} (FAULT_SEED), totals over the seeds:")
print()
print("| code | records sent | duplicates | per 1,000 records | forced (answer lost after moto took the call) "
      "| from retries | failed attempts | Firehose calls |")
print("|---|---|---|---|---|---|---|---|")
for mode, label in (("progress", "with progress (now)"), ("before", "before (retry from the first record)")):
    recs, dups = total(mode, "records"), total(mode, "duplicates")
    print(f"| {label} | {recs:,} | {dups:,} | {1000 * dups / recs:.1f} | {total(mode, 'forced_duplicates'):,} "
          f"| {total(mode, 'other_duplicates'):,} | {total(mode, 'failed_attempts')} | {total(mode, 'firehose_calls'):,} |")
print(f"| issue 12 as filed (before) | 73,491 | 10,268 | {1000 * 10268 / 73491:.1f} | 4,132 | 6,136 | - | - |")
print()
print("Per seed, duplicates per 1,000 records with progress / before: "
      + ", ".join(f"{s}: {row('progress', s)['duplicates_per_1000']:.1f} / {row('before', s)['duplicates_per_1000']:.1f}"
                  for s in seeds))
print()
print("Progress writes per object (state PutObject under progress/ that moto took; the done marker is one more):")
print()
print("| run | objects | payload MiB | progress writes | per object | failed attempts "
      "| bound: one per 10 MiB + one per failed attempt + one at the end |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if r["mode"] == "before":
        continue
    bound = sum(o["progress_bound"] for o in r["objects_detail"])
    print(f"| {r['mode']} (seed {r['seed']}) | {r['objects']} | {r['payload_bytes'] / MIB:.1f} | {r['progress_writes']} "
          f"| {r['progress_writes_per_object']:.2f} | {r['failed_attempts']} | {bound} |")
nofault = [r for r in rows if r["mode"] == "no faults"][-1]
big = max(nofault["objects_detail"], key=lambda o: o["payload_bytes"])
small = [o for o in nofault["objects_detail"] if o is not big]
print()
print(f"Without faults: the largest object ({big['records']:,} records, {big['payload_bytes'] / MIB:.1f} MiB of payload) "
      f"writes {big['progress_writes']} progress records (bound {big['progress_bound']}); the {len(small)} objects under "
      f"10 MiB write {sum(o['progress_writes'] for o in small)}.")
PY

# A 1 GB plain user activity log through `backfill --max-duration 8` runs (progress within the
# object, stops at call boundaries): runs, stops, slowest run, duplicates.
cargo build --release --quiet --bin redshift-audit-forwarder
big=$(FAULTS_BIN=$PWD/target/release/redshift-audit-forwarder cargo test --quiet --test faults_moto -- \
  --ignored --nocapture --exact a_1_gb_object_is_forwarded_in_several_time_limited_runs_without_duplicates 2>&1) \
  || { echo "$big" >&2; exit 1; }
echo
printf '%s\n' "$big" | sed -n 's/^faults_moto: /1 GB object: /p' | tee -a .bench/faults.md
