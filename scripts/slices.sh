# Sourced by the callgrind benches: $files, 8 MB gzip slices of the bench corpora (the first
# 8 MB of each file, whole lines), cut once into .bench/slices.
slices=.bench/slices
mkdir -p "$slices/corpus" "$slices/short" .bench/callgrind
slice() { # CORPUS TYPE: the first 8 MB of the corpus file (whole lines), gzip
  local plain out
  plain=$(ls .bench/"$1"-64/*_"$2"_*[0-9])
  out=$slices/$1/$(basename "$plain").gz
  [ -f "$out" ] || head -c 8000000 "$plain" | sed '$d' | gzip -6 >"$out"
  echo "$out"
}
files=("$(slice corpus connectionlog)" "$(slice corpus userlog)" "$(slice corpus useractivitylog)"
       "$(slice short useractivitylog)")
