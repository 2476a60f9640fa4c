#!/usr/bin/env bash
# `make demo`: generates a small day of all three audit log types under the real key layout and
# runs `parse` on it, showing a few records of each type.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin redshift-audit-forwarder --example gen_corpus
bin=target/release/redshift-audit-forwarder
rm -rf .demo && mkdir -p .demo
day=$(target/release/examples/gen_corpus day .demo/audit-bucket)
echo "Generated $(ls "$day" | wc -l) files under ${day#.demo/audit-bucket/}"
for t in connectionlog userlog useractivitylog; do
  f=$(ls "$day"/*_"$t"_2024-03-01T05:53.gz)
  echo
  echo "== $t: $(basename "$f") -> $("$bin" parse "$f" | wc -l) records; the first two:"
  "$bin" parse "$f" | head -n 2 | cut -c1-600
done
echo
echo "== the whole day"
"$bin" parse "$day"/*.gz | python3 -c '
import collections, json, sys
count = collections.Counter()
errors = 0
for line in sys.stdin:
    r = json.loads(line)
    count[r["log_type"]] += 1
    errors += "parse_error" in r
print(dict(count), "parse errors:", errors)'
