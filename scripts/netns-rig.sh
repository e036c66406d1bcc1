#!/usr/bin/env bash
# A local ZeroTier rig in network namespaces: a bridge ("switch") namespace, a root +
# controller in <rig>-h0 and members in <rig>-h1..hN, each host on the bridge by a veth pair
# (10.200.0.<n+1>/24). `up` prepares every HOME (identities, a private planet, the network
# and its authorized members with fixed ZT IPs 10.147.17.<n>), starts the daemons and waits
# until every member has its addresses and can ping every other member over ZeroTier.
#
#   netns-rig.sh up <rig> <members>   build and start; prints the env file's path
#   netns-rig.sh env <rig>            print the rig's state (shell-sourceable)
#   netns-rig.sh down <rig>           stop everything and remove it (idempotent)
#   netns-rig.sh stop <rig> <n> [kill]  stop node n (SIGTERM, bounded; `kill`: SIGKILL at once,
#                                     a crash) and wait until it is gone
#   netns-rig.sh start <rig> <n>...   start stopped nodes again (with this call's environment)
#                                     and wait until the rig is ready again; rewrites the env file
#
# Environment: RIG_BASE (state root, default /tmp/ztrs-rig), ZTRS_BIN, RIG_TIMEOUT (seconds
# from starting the daemons to ready, default 20), RUST_LOG (passed to the daemons),
# RIG_IPV6=0 (do not wait for the rfc4193 address), RIG_DAEMONS=0 (namespaces only).
# See docs/BENCHMARKS.md.
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

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

# Stops the rig's processes, deletes its namespaces and its state directory.
rig_down() {
    local rig=$1 state
    state=$(rig_base_dir)/$rig
    local -a pids
    mapfile -t pids < <(rig_node_pids "$state")
    stop_pids "${RIG_STOP_GRACE:-5}" "${pids[@]}"
    rig_net_down "$rig"
    rm -rf -- "$state"
    # The base directory goes too once no other rig uses it.
    rmdir -- "$(rig_base_dir)" 2>/dev/null || true
}

# On a failed `up`: show the logs, tear the half-built rig down, keep the failure status.
up_failed_cleanup() {
    local status=$?
    trap - EXIT
    say "rig $up_rig failed to come up; tearing it down"
    rig_print_logs "$up_state"
    rig_down "$up_rig" || true
    exit $((status == 0 ? 1 : status))
}

rig_up() {
    local rig=$1 members=$2 timeout_s=${RIG_TIMEOUT:-20} bin="" nwid="" n
    if ! [[ $members =~ ^[1-9][0-9]{0,1}$ ]] || ((members < 1 || members > 60)); then
        die "members must be 1..60 (got '$members')"
    fi
    [[ $timeout_s =~ ^[0-9]+$ ]] || die "RIG_TIMEOUT must be whole seconds (got '$timeout_s')"
    up_rig=$rig
    up_state=$(rig_base_dir)/$rig
    if [[ -e $up_state || -n $(rig_namespaces "$rig") ]]; then
        die "rig $rig already exists (netns-rig.sh down $rig first)"
    fi
    trap up_failed_cleanup EXIT
    mkdir -p "$up_state"
    rig_net_up "$rig" "$members"
    if [[ ${RIG_DAEMONS:-1} != 0 ]]; then
        bin=$(resolve_ztrs_bin)
        "$bin" service --help >/dev/null 2>&1 || die "$bin has no 'service' subcommand yet"
        nwid=$(rig_prepare_homes "$bin" "$up_state" "$members")
        rig_start_node "$bin" "$rig" "$up_state" 0
        wait_until "$timeout_s" rig_root_settled "$rig" "$up_state" || true
        rig_node_pid "$up_state" 0 >/dev/null || die "the root (h0) exited during start-up"
        rig_root_listening "$rig" || die "root did not listen on UDP $RIG_PORT within ${timeout_s}s"
        for ((n = 1; n <= members; n++)); do
            rig_start_node "$bin" "$rig" "$up_state" "$n"
        done
        rig_wait_ready "$rig" "$up_state" "$members" "$timeout_s" || die "members not ready"
    fi
    rig_write_env "$rig" "$up_state" "$members" "$bin" "$nwid"
    trap - EXIT
    say "rig $rig up ($members members); state in $up_state"
    printf '%s/env\n' "$up_state"
}

# True once the root's UDP socket is bound (members then reach it on their first try).
rig_root_listening() {
    ip netns exec "$(rig_ns_host "$1" 0)" ss -Hnlu "sport = :$RIG_PORT" 2>/dev/null | grep -q .
}

# True once the root listens or has exited (either way, waiting longer is pointless).
rig_root_settled() {
    rig_root_listening "$1" || ! rig_node_pid "$2" 0 >/dev/null
}

rig_env() {
    local rig=$1 state n pid pid_file
    state=$(rig_base_dir)/$rig
    [[ -f $state/env ]] || die "no rig $rig (no $state/env)"
    cat "$state/env"
    for pid_file in "$state"/h*.pid; do
        [[ -f $pid_file ]] || continue
        n=${pid_file##*/h}
        n=${n%.pid}
        if pid=$(rig_node_pid "$state" "$n"); then
            printf '# h%s: running (pid %s)\n' "$n" "$pid"
        else
            printf '# h%s: NOT running\n' "$n"
        fi
    done
}

# rig_stop_node <rig> <n> [kill]: stops node n and waits (bounded) until it has exited.
rig_stop_node() {
    local rig=$1 n=$2 how=${3:-term} state pid
    state=$(rig_base_dir)/$rig
    [[ -f $state/env ]] || die "no rig $rig (no $state/env)"
    pid=$(rig_node_pid "$state" "$n") || die "node h$n of rig $rig is not running"
    case $how in
    kill)
        kill -KILL "$pid" 2>/dev/null || true
        wait_until 5 all_pids_gone "$pid" || die "node h$n (pid $pid) survived SIGKILL"
        ;;
    term) stop_pids "${RIG_STOP_GRACE:-5}" "$pid" ;;
    *) usage ;;
    esac
    say "node h$n of rig $rig stopped ($how)"
}

# rig_restart_nodes <rig> <n>...: starts the nodes again in their namespaces and waits until
# the root listens (if it was restarted) and every member is ready (interfaces, addresses,
# pings); then rewrites the env file, whose pids changed.
rig_restart_nodes() {
    local rig=$1 n state timeout_s=${RIG_TIMEOUT:-20} MEMBERS NWID ZTRS_BIN
    shift
    state=$(rig_base_dir)/$rig
    [[ -f $state/env ]] || die "no rig $rig (no $state/env)"
    # The rig's own values, read in a subshell so nothing else of the env file leaks in.
    # shellcheck disable=SC1091
    read -r MEMBERS NWID ZTRS_BIN < <(source "$state/env" && printf '%s %s %s\n' "$MEMBERS" "$NWID" "$ZTRS_BIN")
    for n in "$@"; do
        if ! [[ $n =~ ^[0-9]+$ ]] || ((n > MEMBERS)); then
            die "rig $rig has no node h$n"
        fi
        ! rig_node_pid "$state" "$n" >/dev/null || die "node h$n of rig $rig is still running"
    done
    for n in "$@"; do
        rig_start_node "$ZTRS_BIN" "$rig" "$state" "$n"
        if ((n == 0)); then
            wait_until "$timeout_s" rig_root_settled "$rig" "$state" || true
            rig_root_listening "$rig" || die "root did not listen again within ${timeout_s}s"
        fi
    done
    rig_wait_ready "$rig" "$state" "$MEMBERS" "$timeout_s" || die "rig $rig not ready after restarting h$*"
    rig_write_env "$rig" "$state" "$MEMBERS" "$ZTRS_BIN" "$NWID"
    say "nodes h$* of rig $rig started again"
}

main() {
    (($# >= 2)) || usage
    local command=$1 rig=$2
    validate_rig_name "$rig"
    case $command in
    up)
        (($# == 3)) || usage
        require_root
        require_commands ip ping ss python3
        rig_up "$rig" "$3"
        ;;
    down)
        (($# == 2)) || usage
        require_root
        rig_down "$rig"
        ;;
    env)
        (($# == 2)) || usage
        rig_env "$rig"
        ;;
    stop)
        (($# == 3 || $# == 4)) || usage
        require_root
        rig_stop_node "$rig" "$3" "${4:-term}"
        ;;
    start)
        (($# >= 3)) || usage
        require_root
        rig_restart_nodes "$rig" "${@:3}"
        ;;
    *) usage ;;
    esac
}

main "$@"
