#!/usr/bin/env bash
# The throughput/latency bench: one netns rig (root h0, members h1 and h2) and, in the same
# run, the same measurements over plain veth (10.200.0.x), our TUN (ZT IPs) and wireguard-go
# (wg0, 10.201.0.x): iperf3 TCP with 1 and 4 streams in both directions (medians of
# BENCH_RUNS runs of BENCH_SECONDS each), retransmits, ping RTT; then ztrs's join time and
# an idle member's resident memory. Prints one table and, as the last line,
#   RESULT tun_vs_veth=<r> tun_vs_wireguard_go=<r> rtt_added_us=<n> join_ms=<n> rss_idle_mib=<n>
#          userspace_vs_tun=<r> userspace_rtt_added_us=<n>
# Last, member h1 is restarted in user-space mode (no TUN): iperf3 in h1 goes through a -L
# forward (127.0.0.1 -> the user-space stack -> ZeroTier -> h2's TUN), and h2 pings h1's
# stack; "userspace" rows compare them with the TUN figures of the same run.
#
#   bench.sh [--quick] [--baselines-only]
#     --quick           1 run of 3 s (a smoke check)
#     --baselines-only  veth and wireguard-go only (no ztrs daemon needed); ztrs values are "na"
#
# Environment: BENCH_RUNS (5), BENCH_SECONDS (8), BENCH_PING_COUNT (200), ZTRS_BIN, RUST_LOG
# (daemons, default warn), RIG_BASE, RIG_TIMEOUT. Needs root. See docs/BENCHMARKS.md.
set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$script_dir/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/rig-net.sh
source "$script_dir/lib/rig-net.sh"
# shellcheck source=SCRIPTDIR/lib/rig-nodes.sh
source "$script_dir/lib/rig-nodes.sh"
# shellcheck source=SCRIPTDIR/lib/rig-ready.sh
source "$script_dir/lib/rig-ready.sh"
# shellcheck source=SCRIPTDIR/lib/wireguard.sh
source "$script_dir/lib/wireguard.sh"
# shellcheck source=SCRIPTDIR/lib/bench-measure.sh
source "$script_dir/lib/bench-measure.sh"
# shellcheck source=SCRIPTDIR/lib/bench-report.sh
source "$script_dir/lib/bench-report.sh"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_SECONDS=${BENCH_SECONDS:-8}
BENCH_PING_COUNT=${BENCH_PING_COUNT:-200}
with_ztrs=1
while (($# > 0)); do
    case $1 in
    --quick) BENCH_RUNS=1 BENCH_SECONDS=3 ;;
    --baselines-only) with_ztrs=0 ;;
    *) usage ;;
    esac
    shift
done
for setting in BENCH_RUNS BENCH_SECONDS BENCH_PING_COUNT; do
    [[ ${!setting} =~ ^[1-9][0-9]{0,3}$ ]] || die "$setting must be a whole number 1..9999"
done

require_root
require_commands ip ping ss python3 iperf3 wireguard-go wg nsenter timeout curl

rig=zb$$
work=$(mktemp -d "${TMPDIR:-/tmp}/ztrs-bench.XXXXXX")
BENCH_RESULTS=$work/results.tsv
: >"$BENCH_RESULTS"

# Whatever happens, nothing of the rig (daemons, iperf3, wireguard-go, namespaces) survives.
cleanup() {
    local status=$?
    trap - EXIT
    if ((status != 0)) && [[ -d $(rig_base_dir)/$rig ]]; then
        rig_print_logs "$(rig_base_dir)/$rig"
    fi
    "$script_dir/netns-rig.sh" down "$rig" || true
    rm -rf -- "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((with_ztrs)); then
    bin=$(resolve_ztrs_bin)
    if [[ $bin == */debug/* ]]; then
        say "warning: $bin is a debug build; figures will be far too low"
    fi
fi
say "building rig $rig (RUNS=$BENCH_RUNS, SECONDS=$BENCH_SECONDS)"
RUST_LOG=${RUST_LOG:-warn} RIG_DAEMONS=$with_ztrs "$script_dir/netns-rig.sh" up "$rig" 2 >/dev/null
# shellcheck source=/dev/null
source "$(rig_base_dir)/$rig/env"

declare -A destination=([veth]=$UNDERLAY_IP_2 [wireguard-go]=$(wg_tunnel_ip 2))
targets=(veth)
if ((with_ztrs)); then
    destination[ztrs]=$ZT_IP_2
    targets+=(ztrs)
    # Idle: measured before any traffic has gone through the members.
    bench_rss ztrs rss_idle_mib "$PID_1"
    bench_rss ztrs rss_idle_mib "$PID_2"
fi
targets+=(wireguard-go)

wg_up "$rig" "$work/wg" 1 2
bench_iperf_server "$rig" 2 "$work/iperf3-server.log"

# Targets interleave within each run so slow drifts of a shared machine hit them alike.
tests=("tcp1 1 0" "tcp1r 1 1" "tcp4 4 0" "tcp4r 4 1")
for ((run = 1; run <= BENCH_RUNS; run++)); do
    for target in "${targets[@]}"; do
        say "run $run/$BENCH_RUNS: $target"
        bench_ping "$rig" 1 "$target" "${destination[$target]}"
        for spec in "${tests[@]}"; do
            read -r name streams reverse <<<"$spec"
            bench_iperf "$rig" 1 "$target" "${destination[$target]}" "$name" "$streams" \
                "$reverse" "$work/iperf-$target-$name-$run.json"
        done
    done
done

if ((with_ztrs)); then
    bench_rss ztrs rss_loaded_mib "$PID_1"
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        say "join $run/$BENCH_RUNS"
        # shellcheck disable=SC2153 # STATE and NWID come from the rig's env file
        bench_join "$rig" "$STATE" "$ZTRS_BIN" "$NWID" 2 1
    done
fi

if ((with_ztrs)); then
    say "user-space: h1 restarted on the built-in stack"
    bench_userspace_up "$rig" "$STATE" "$ZTRS_BIN" 1 "$ZT_IP_2"
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        say "run $run/$BENCH_RUNS: userspace"
        bench_ping "$rig" 2 userspace "$ZT_IP_1"
        for spec in "tcp1 1 0" "tcp1r 1 1"; do
            read -r name streams reverse <<<"$spec"
            bench_iperf "$rig" 1 userspace 127.0.0.1 "$name" "$streams" "$reverse" \
                "$work/iperf-userspace-$name-$run.json" "$BENCH_USERSPACE_PORT"
        done
    done
fi

printf 'ztrs bench %s on %s (%s cores, kernel %s)\n' "$(date -u +%Y-%m-%dT%H:%MZ)" \
    "$(uname -n)" "$(nproc)" "$(uname -r)"
bench_report "$BENCH_RESULTS" "$BENCH_RUNS" "$BENCH_SECONDS"
