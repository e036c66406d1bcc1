# shellcheck shell=bash
# One measurement each for the bench: iperf3 TCP throughput and retransmits, ping RTT, the
# join time of a member and a member's resident memory. Each appends "<target>\t<metric>\t
# <value>" lines to the results file $BENCH_RESULTS (read by bench-report.sh).
# Sourced after common.sh, rig-net.sh, rig-nodes.sh and rig-ready.sh.

BENCH_IPERF_PORT=5201

bench_record() {
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$BENCH_RESULTS"
}

bench_iperf_listening() {
    ip netns exec "$(rig_ns_host "$1" "$2")" ss -Hntl "sport = :$BENCH_IPERF_PORT" 2>/dev/null | grep -q .
}

# bench_iperf_server <rig> <n> <log>: one iperf3 server in member n (all addresses), kept for
# the whole bench; returns once it listens.
bench_iperf_server() {
    local rig=$1 n=$2 log=$3
    ip netns exec "$(rig_ns_host "$rig" "$n")" iperf3 -s -p "$BENCH_IPERF_PORT" \
        </dev/null >"$log" 2>&1 &
    wait_until 10 bench_iperf_listening "$rig" "$n" || die "iperf3 server did not start: $(cat "$log")"
}

# bench_iperf <rig> <from n> <target> <dst ip> <test name> <streams> <reverse 0/1> <json file>
# [port] Records <test>_gbps (receiver's rate) and <test>_retrans (sender's count), or a
# failure.
bench_iperf() {
    local rig=$1 from=$2 target=$3 dst=$4 test=$5 streams=$6 reverse=$7 json=$8
    local port=${9:-$BENCH_IPERF_PORT}
    local -a args=(-c "$dst" -p "$port" -t "$BENCH_SECONDS" -P "$streams" -J
        --connect-timeout 3000)
    if ((reverse)); then
        args+=(-R)
    fi
    # The timeout bounds a tunnel that stalls mid-test (iperf3 would wait forever).
    if ! timeout "$((BENCH_SECONDS + 30))" ip netns exec "$(rig_ns_host "$rig" "$from")" \
        iperf3 "${args[@]}" >"$json" 2>&1; then
        say "iperf3 $target $test failed (see $json)"
        bench_record "$target" failures 1
        return 0
    fi
    python3 - "$json" "$target" "$test" >>"$BENCH_RESULTS" <<'PY'
import json, sys
path, target, test = sys.argv[1:4]
with open(path) as f:
    end = json.load(f)["end"]
gbps = end["sum_received"]["bits_per_second"] / 1e9
print("%s\t%s_gbps\t%.4f" % (target, test, gbps))
retransmits = end.get("sum_sent", {}).get("retransmits")
if retransmits is not None:
    print("%s\t%s_retrans\t%d" % (target, test, retransmits))
PY
}

# bench_ping <rig> <from n> <target> <dst ip>: average RTT (µs) of a fast ping train after a
# short warm-up (which resolves neighbours first).
bench_ping() {
    local rig=$1 from=$2 target=$3 dst=$4 ns out avg_ms
    ns=$(rig_ns_host "$rig" "$from")
    ip netns exec "$ns" ping -n -q -c 3 -i 0.01 -w 5 "$dst" >/dev/null 2>&1 || true
    if ! out=$(ip netns exec "$ns" ping -n -q -c "$BENCH_PING_COUNT" -i 0.005 -w 30 "$dst" 2>&1); then
        say "ping $target failed: $out"
        bench_record "$target" failures 1
        return 0
    fi
    # "rtt min/avg/max/mdev = 0.045/0.060/0.110/0.010 ms"
    avg_ms=$(awk -F' = ' '/^rtt/ {split($2, v, "/"); print v[2]}' <<<"$out")
    bench_record "$target" rtt_us "$(awk -v ms="$avg_ms" 'BEGIN {printf "%.1f", ms * 1000}')"
}

# bench_rss <target> <metric> <pid>: VmRSS of a process in MiB.
bench_rss() {
    local kib
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$3/status")
    bench_record "$1" "$2" "$(awk -v k="$kib" 'BEGIN {printf "%.2f", k / 1024}')"
}

# True if member n answers the control API (GET /network) with 200.
bench_api_available() {
    local rig=$1 state=$2 n=$3 code
    code=$(bench_api "$rig" "$state" "$n" GET /network -o /dev/null -w '%{http_code}' || true)
    [[ $code == 200 ]]
}

# bench_api <rig> <state> <n> <method> <path> [curl args...]: one control API call in member n.
bench_api() {
    local rig=$1 state=$2 n=$3 method=$4 path=$5
    shift 5
    ip netns exec "$(rig_ns_host "$rig" "$n")" curl -s --max-time 5 -X "$method" \
        -H "X-ZT1-Auth: $(<"$(rig_node_home "$state" "$n")/authtoken.secret")" \
        "$@" "http://127.0.0.1:$RIG_PORT$path"
}

rig_member_has_no_iface() {
    [[ -z $(rig_member_iface "$1" "$2") ]]
}

# bench_join <rig> <state> <bin> <nwid> <joiner n> <pinger n>: milliseconds from the join
# (POST /network/<nwid> on an online member whose API answers; otherwise starting the member
# with the network in networks.d) until its ZT IPv4 answers a ping from <pinger>.
bench_join() {
    local rig=$1 state=$2 bin=$3 nwid=$4 joiner=$5 pinger=$6 method start end pid
    if bench_api_available "$rig" "$state" "$joiner"; then
        method=api
        bench_api "$rig" "$state" "$joiner" DELETE "/network/$nwid" -o /dev/null ||
            die "DELETE /network/$nwid failed"
        wait_until 10 rig_member_has_no_iface "$rig" "$joiner" || die "h$joiner did not leave $nwid"
        # A controller answers one member at most once a second (the reference's rule) and
        # silently drops the rest; the previous round's request was just now, so give the
        # window time to pass, or this would measure the rate limit instead of a join.
        sleep 1.2
        start=$(now_ms)
        bench_api "$rig" "$state" "$joiner" POST "/network/$nwid" -d '{}' -o /dev/null ||
            die "POST /network/$nwid failed"
    else
        method=restart
        pid=$(rig_node_pid "$state" "$joiner") || die "h$joiner is not running"
        stop_pids 10 "$pid"
        start=$(now_ms)
        rig_start_node "$bin" "$rig" "$state" "$joiner"
    fi
    # -c 1 with -w: ping keeps sending every 10 ms until the first reply, then exits.
    ip netns exec "$(rig_ns_host "$rig" "$pinger")" ping -n -q -c 1 -i 0.01 -w 30 \
        "$(rig_zt_ip "$joiner")" >/dev/null 2>&1 || die "h$joiner not reachable 30 s after joining"
    end=$(now_ms)
    bench_record ztrs join_ms "$((end - start))"
    bench_record ztrs "join_method_$method" 1
}

# The port of the -L forward into the network in user-space mode.
BENCH_USERSPACE_PORT=15201

bench_userspace_listening() {
    ip netns exec "$(rig_ns_host "$1" "$2")" ss -Hntl "sport = :$BENCH_USERSPACE_PORT" 2>/dev/null | grep -q .
}

# bench_userspace_up <rig> <state> <bin> <n> <iperf server ip>: restarts member n in
# user-space mode (no TUN) with a -L forward from 127.0.0.1:$BENCH_USERSPACE_PORT to the
# iperf3 server; returns once the forward listens and the member answers ping.
bench_userspace_up() {
    local rig=$1 state=$2 bin=$3 n=$4 server=$5 home pid pinger
    home=$(rig_node_home "$state" "$n")
    pid=$(rig_node_pid "$state" "$n") || die "h$n is not running"
    stop_pids 10 "$pid"
    ip netns exec "$(rig_ns_host "$rig" "$n")" "$bin" service --userspace \
        -L "127.0.0.1:$BENCH_USERSPACE_PORT:$server:$BENCH_IPERF_PORT" -p "$RIG_PORT" "$home" \
        </dev/null >>"$state/h$n.log" 2>&1 &
    printf '%s\n' "$!" >"$state/h$n.pid"
    wait_until 10 bench_userspace_listening "$rig" "$n" || die "h$n: no -L forward in user-space mode"
    pinger=$((n == 1 ? 2 : 1))
    ip netns exec "$(rig_ns_host "$rig" "$pinger")" ping -n -q -c 1 -i 0.01 -w 30 \
        "$(rig_zt_ip "$n")" >/dev/null 2>&1 || die "h$n (user-space) does not answer ping"
}
