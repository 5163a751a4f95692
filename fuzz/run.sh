#!/usr/bin/env bash
# Builds every fuzz target and runs each for ${FUZZ_SECONDS:-30} seconds on
# stable Rust (--sanitizer none). Each run starts from the committed seeds
# (corpus/<target>/seed-*), copied to a temporary working corpus so that new
# corpus entries never land in the repository. Crash inputs are written to
# fuzz/artifacts/<target>/ (gitignored). Exits non-zero if any target crashed.
#
# Needs cargo-fuzz: cargo install cargo-fuzz --locked
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: cargo-fuzz is missing; install it with: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/beanstalk-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cargo fuzz build --sanitizer none

failed=()
summary=()
for target in $(cargo fuzz list); do
    mkdir -p "$work/corpus/$target"
    find "corpus/$target" -maxdepth 1 -type f -name 'seed-*' -exec cp {} "$work/corpus/$target/" \; 2>/dev/null || true
    echo "=== $target: ${seconds}s from $(ls "$work/corpus/$target" | wc -l) seeds"
    log="$work/$target.log"
    # Progress lines (#<n> NEW/REDUCE/pulse) stay in the log only.
    set +e
    cargo fuzz run --sanitizer none "$target" "$work/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=20 -print_final_stats=1 2>&1 | tee "$log" | grep -vE '^#[0-9]+'
    status="${PIPESTATUS[0]}"
    set -e
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        summary+=("$target: CRASH (exit $status; see fuzz/artifacts/$target/)")
    else
        summary+=("$target: ok, ${runs:-?} runs, ${rate:-?} exec/s")
    fi
done

echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "run.sh: crashed: ${failed[*]}" >&2
    exit 1
fi
