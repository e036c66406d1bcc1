#!/usr/bin/env bash
# Builds every cargo-fuzz target under fuzz/ and runs each for a number of seconds.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#
# SECONDS defaults to 60. Each target starts from its committed seeds (fuzz/seeds/<target>,
# if any) plus its working corpus (fuzz/corpus/<target>, git-ignored). Prints one summary row
# per target (executions, coverage, features) and exits non-zero if any target crashed;
# crash inputs land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }
# Build all at once (one cargo invocation) before running, so timing excludes compilation.
cargo +nightly fuzz build -O

mkdir -p results
summary="results/last-run.txt"
# cov_half is the coverage after half of the run's executions: when it equals cov, the second
# half found nothing new (the plateau the campaign in docs/FUZZING.md looks for).
printf '%-22s %10s %8s %8s %8s %s\n' target execs cov_half cov ft status > "$summary"
failed=0
for target in "${targets[@]}"; do
    corpus="corpus/${target}"
    mkdir -p "$corpus"
    seeds=()
    [ -d "seeds/${target}" ] && seeds=("seeds/${target}")
    log="results/${target}.log"
    status=ok
    if ! cargo +nightly fuzz run -O "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        status=CRASH
        failed=1
    fi
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    [ -z "$done_line" ] && done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$done_line")
    cov_half=$(awk -v half="$(( ${execs:-0} / 2 ))" '
        /^#[0-9]+/ && /cov: / {
            n = substr($1, 2) + 0
            if (n > half) exit
            for (i = 1; i < NF; i++) if ($i == "cov:") c = $(i + 1)
        }
        END { print (c == "" ? "?" : c) }' "$log")
    printf '%-22s %10s %8s %8s %8s %s\n' "$target" "${execs:-?}" "$cov_half" "${cov:-?}" "${ft:-?}" "$status" | tee -a "$summary"
    if [ "$status" = CRASH ]; then
        tail -n 30 "$log" >&2
    fi
done
echo "fuzz summary written to fuzz/${summary}"
exit "$failed"
