#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz layout) for a bounded time each and reports crashes.
#
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_TARGETS    targets to run (default: all four)
#   FUZZ_SANITIZER  address (default) or none (faster, finds only panics and hangs)
#
# There is no nightly toolchain here and none can be fetched: cargo-fuzz needs `-Z` flags, so the
# stable compiler is told to accept them with RUSTC_BOOTSTRAP=1. New inputs go to
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target> (both ignored by git); fuzz/seeds/
# holds the documented sample lines each target starts from.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
read -r -a targets <<<"${FUZZ_TARGETS:-connectionlog userlog useractivitylog key}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

cd fuzz
cargo fuzz build --sanitizer "$sanitizer"

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="artifacts/$target/last-run.log"
    echo "fuzz: $target for ${seconds}s (log: fuzz/$log)" >&2
    # -timeout: an input that takes this long is a hang, reported like a crash.
    if cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        result="ok"
    else
        result="FAILED"
        failed+=("$target")
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "fuzz: $target: $result, ${execs:-?} runs in ${seconds}s, corpus $(find "corpus/$target" -type f | wc -l) inputs" >&2
    if [[ $result == FAILED ]]; then
        grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" >&2 || tail -n 20 "$log" >&2
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crashes" >&2
