#!/usr/bin/env bash
# The session join's cost (issue 20, docs/SESSIONS.md): `parse` CPU on the 64 MB user activity
# log of the benchmark corpus with and without the join, alone (no session known: every record
# looked up, none found) and with the corpus's connection log of the same cluster (read first,
# every record looked up in its sessions). Best of RUNS; CPU seconds (user + system).
# Then the state per file and the share joined on the generated day (tests/sessions_state.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

MB_PER_TYPE=${MB_PER_TYPE:-64}
RUNS=${RUNS:-7}
BIN=${BIN:-target/release/redshift-audit-forwarder}
GEN=${GEN:-target/release/examples/gen_corpus}
corpus=.bench/corpus-$MB_PER_TYPE

[ -x "$BIN" ] && [ -x "$GEN" ] || cargo build --release --quiet --bin redshift-audit-forwarder --example gen_corpus
[ -d "$corpus" ] || "$GEN" bench "$corpus" "$MB_PER_TYPE" >/dev/null
act=$(ls "$corpus"/*_useractivitylog_*.gz)
conn=$(ls "$corpus"/*_connectionlog_*.gz)

measure() { python3 scripts/measure.py "$RUNS" -- "$@"; }
cpu() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['cpu_s'])" "$1"; }

a_off=$(cpu "$(measure "$BIN" parse --no-join "$act")")
a_on=$(cpu "$(measure "$BIN" parse "$act")")
b_off=$(cpu "$(measure "$BIN" parse --no-join "$conn" "$act")")
b_on_json=$(measure "$BIN" parse "$conn" "$act")
b_on=$(cpu "$b_on_json")
# The connection log alone, joined: its sessions built, no record looked up. Subtracted from
# the pair, it leaves the activity log's cost with every record looked up among ~90,000 sessions.
c_on_json=$(measure "$BIN" parse "$conn")
c_on=$(cpu "$c_on_json")
rss() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['peak_rss_bytes']//1000000)" "$1"; }
joined=$("$BIN" parse "$conn" "$act" | grep -c '"session_start":"' || true)
records=$("$BIN" parse --no-join "$act" | wc -l)

echo "| parse | CPU s, --no-join | CPU s, joined | join's share of CPU |"
echo "|---|---|---|---|"
python3 - "$a_off" "$a_on" "$b_off" "$b_on" "$c_on" <<'PY'
import sys
a_off, a_on, b_off, b_on, c_on = map(float, sys.argv[1:])
print(f"| activity log alone (no session known) | {a_off:.3f} | {a_on:.3f} | {100*(a_on-a_off)/a_on:+.1f}% |")
print(f"| activity log, every record looked up among the connection log's sessions (pair less the connection log alone, joined: {c_on:.3f}) | {a_off:.3f} | {b_on-c_on:.3f} | {100*(b_on-c_on-a_off)/(b_on-c_on):+.1f}% |")
print(f"| connection log + activity log (sessions built, every record looked up) | {b_off:.3f} | {b_on:.3f} | {100*(b_on-b_off)/b_on:+.1f}% |")
PY
echo
echo "Peak RSS: connection log + activity log joined $(rss "$b_on_json") MB; connection log alone joined $(rss "$c_on_json") MB."
echo
echo "Corpus activity records joined to a corpus session: $joined of $records (the corpus's two logs are generated independently; the generated day below is built for the join)."
echo
cargo test --quiet --test sessions_state -- --nocapture 2>/dev/null | grep -E '^\||joined'
