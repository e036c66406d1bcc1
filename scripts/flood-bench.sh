#!/usr/bin/env bash
# The flood bench (issue 8): builds the `flood` example in release and runs it once. In one
# process it starts a private lab on 127.0.0.1 (root + controller, two members on user-space
# stacks) and measures the TCP throughput member 0 -> member 1 without and with a hostile
# flood (every kind of `ztrs::flood` at member 0 and at the root), alternating, FLOOD_RUNS
# times each, so both figures come from the same run. Prints the runs, what the flood sent
# and the targets counted, and last:
#   flood_throughput_ratio=<median flooded / median unflooded>   (issue 8 wants >= 0.8)
# preceded by the resident memory at the start, peak and end (rss_*_mib).
#
#   flood-bench.sh [--quick]
#     --quick   1 run of 32 MiB per measurement (a smoke check)
#
# Environment: FLOOD_MIB (256), FLOOD_RATE (10000 datagrams/s), FLOOD_RUNS (5),
# FLOOD_KINDS (all, or a comma-separated list), CARGO_TARGET_DIR. No privileges needed.
set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$script_dir/lib/common.sh"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

FLOOD_MIB=${FLOOD_MIB:-256}
FLOOD_RATE=${FLOOD_RATE:-10000}
FLOOD_RUNS=${FLOOD_RUNS:-5}
FLOOD_KINDS=${FLOOD_KINDS:-all}
while (($# > 0)); do
    case $1 in
    --quick) FLOOD_MIB=32 FLOOD_RUNS=1 ;;
    *) usage ;;
    esac
    shift
done
for setting in FLOOD_MIB FLOOD_RATE FLOOD_RUNS; do
    [[ ${!setting} =~ ^[1-9][0-9]{0,5}$ ]] || die "$setting must be a whole number 1..999999"
done
[[ $FLOOD_KINDS =~ ^[a-z,-]+$ ]] || die "FLOOD_KINDS must be kind names separated by commas"

cd "$script_dir/.."
require_commands cargo
say "building the flood example (release)"
cargo build --release --quiet --example flood
target_dir=${CARGO_TARGET_DIR:-target}
exec "$target_dir/release/examples/flood" \
    --mib "$FLOOD_MIB" --rate "$FLOOD_RATE" --runs "$FLOOD_RUNS" --kinds "$FLOOD_KINDS"
