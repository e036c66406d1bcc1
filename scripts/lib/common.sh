# shellcheck shell=bash
# Shared shell helpers for the rig and bench scripts: messages, tool checks, millisecond
# clock, bounded polling, rig-name validation and the location of the `ztrs` binary.
# Sourced, never executed; callers run with `set -euo pipefail`.

# Command substitutions keep `set -e`, so a failing step inside `x=$(f)` stops the script.
shopt -s inherit_errexit

# Prints a message on stderr, prefixed with the calling script's name.
say() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# Prints an error on stderr and exits non-zero (EXIT traps still run and clean up).
die() {
    say "error: $*"
    exit 1
}

# Fails with one message naming every missing command, so a fresh machine is fixed in one go.
require_commands() {
    local missing=() cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    if ((${#missing[@]} > 0)); then
        die "missing commands: ${missing[*]} (Debian: iproute2 iputils-ping iperf3 wireguard-go wireguard-tools python3 curl)"
    fi
}

# Requires root: namespaces, bridges and TUN devices need CAP_NET_ADMIN.
require_root() {
    [[ $EUID -eq 0 ]] || die "must run as root (network namespaces need CAP_NET_ADMIN)"
}

# Milliseconds since the epoch (monotonic enough for intervals of seconds on one machine).
now_ms() {
    local ns
    ns=$(date +%s%N)
    printf '%s\n' "$((ns / 1000000))"
}

# wait_until <timeout seconds> <command...>: runs the command every 100 ms until it succeeds
# (returns 0) or the timeout passes (returns 1). The sleep is only the polling period; what
# ends the wait is always the observed condition.
wait_until() {
    local timeout_s=$1
    shift
    local deadline
    deadline=$(($(now_ms) + timeout_s * 1000))
    while true; do
        if "$@"; then
            return 0
        fi
        if (($(now_ms) >= deadline)); then
            return 1
        fi
        sleep 0.1
    done
}

# Rig names become namespace and directory names: short lowercase alphanumerics only, so
# nothing derived from them can escape the state directory or overflow an interface name.
validate_rig_name() {
    local rig=$1
    [[ $rig =~ ^[a-z][a-z0-9]{0,11}$ ]] ||
        die "rig name '$rig' must be 1-12 characters [a-z0-9], starting with a letter"
}

# The rig's state directory root; must be absolute so `rm -rf` never works on a relative path.
rig_base_dir() {
    local base=${RIG_BASE:-/tmp/ztrs-rig}
    [[ $base == /?* ]] || die "RIG_BASE must be an absolute path (got '$base')"
    printf '%s\n' "${base%/}"
}

# Absolute path of the ztrs binary: $ZTRS_BIN, else target/release/ztrs, else target/debug/ztrs
# (relative to the repository holding these scripts).
resolve_ztrs_bin() {
    local repo bin
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    if [[ -n ${ZTRS_BIN:-} ]]; then
        bin=$ZTRS_BIN
    elif [[ -x $repo/target/release/ztrs ]]; then
        bin=$repo/target/release/ztrs
    else
        bin=$repo/target/debug/ztrs
    fi
    [[ -x $bin ]] || die "ztrs binary '$bin' not found (cargo build --release --bin ztrs, or set ZTRS_BIN)"
    (cd "$(dirname "$bin")" && printf '%s/%s\n' "$PWD" "$(basename "$bin")")
}

# True while any of the given pids is still a live process (zombies count as gone).
any_pid_alive() {
    local pid state
    for pid in "$@"; do
        state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        if [[ -n $state && $state != Z ]]; then
            return 0
        fi
    done
    return 1
}

all_pids_gone() {
    ! any_pid_alive "$@"
}

# stop_pids <grace seconds> <pid...>: SIGTERM, wait (bounded) for exit, then SIGKILL whatever
# is left and wait again (bounded). Never fails: a pid that already exited is fine.
stop_pids() {
    local grace_s=$1
    shift
    (($# > 0)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    if ! wait_until "$grace_s" all_pids_gone "$@"; then
        say "processes $* ignored SIGTERM for ${grace_s}s; sending SIGKILL"
        kill -KILL "$@" 2>/dev/null || true
        wait_until 5 all_pids_gone "$@" || say "processes $* still alive after SIGKILL"
    fi
}
