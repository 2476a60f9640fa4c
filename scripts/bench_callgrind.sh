#!/usr/bin/env bash
# Instructions per record (valgrind --tool=callgrind), repeatable on a busy machine where wall
# times are not: `parse` on 8 MB slices of the bench corpora (`make bench` makes them).
#
#     scripts/bench_callgrind.sh BIN [TAG] [-- PARSE ARGS...]
#
# BIN is a `parse`-capable binary: the command line (`cargo build --profile profiling`, which
# keeps symbols for callgrind_annotate) or examples/perf_parse.rs (the same loop, a quicker
# build). Prints, per slice: records, instructions in all threads and in the parsing thread
# (the one that also renders and writes; the other inflates), each per record. The callgrind
# files stay in .bench/callgrind/TAG-* for `callgrind_annotate`.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$1
tag=${2:-run}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
case $bin in *perf_parse*) sub=() ;; *) sub=(parse) ;; esac

source scripts/slices.sh

echo "| slice | records | Ir all threads | Ir parsing thread | all / record | parsing / record |"
echo "|---|---|---|---|---|---|"
for f in "${files[@]}"; do
  name=$(basename "$(dirname "$f")")-$(echo "$f" | grep -o '[a-z]*log_' | tr -d _)
  records=$("$bin" "${sub[@]}" "$@" "$f" | wc -l)
  out=.bench/callgrind/$tag-$name
  rm -f "$out"*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
    "$bin" "${sub[@]}" "$@" "$f" >/dev/null 2>"$out.log"
  total=0
  main=0
  for part in "$out"-*; do
    ir=$(grep -m1 '^summary:' "$part" | awk '{print $2}')
    total=$((total + ir))
    case $part in *-01) main=$ir ;; esac
  done
  echo "| $name | $records | $total | $main | $((total / records)) | $((main / records)) |"
done
