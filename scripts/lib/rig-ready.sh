# shellcheck shell=bash
# Readiness of a rig's members (the ZT interface exists, carries its assigned IPv4 and
# rfc4193 IPv6, and every member answers pings on its ZT IPv4 from every other member), and
# the rig's shell-sourceable env file.
# Sourced after common.sh, rig-net.sh and rig-nodes.sh.

# The member's ZT interface: the only zt* link in its namespace (empty while there is none).
rig_member_iface() {
    local rig=$1 n=$2
    ip -n "$(rig_ns_host "$rig" "$n")" -o link show 2>/dev/null |
        awk -F': ' '$2 ~ /^zt/ {sub(/@.*/, "", $2); print $2; exit}'
}

# True if <iface> in member n's namespace carries IPv4 <ip>.
rig_iface_has_ipv4() {
    local rig=$1 n=$2 iface=$3 ip=$4
    ip -n "$(rig_ns_host "$rig" "$n")" -4 -o addr show dev "$iface" 2>/dev/null |
        awk '{print $4}' | grep -qx "$ip/[0-9]*"
}

# The rfc4193 (fd00::/8) address on <iface>, without prefix length; empty when absent.
rig_iface_rfc4193() {
    local rig=$1 n=$2 iface=$3
    ip -n "$(rig_ns_host "$rig" "$n")" -6 -o addr show dev "$iface" 2>/dev/null |
        awk '$4 ~ /^fd/ {sub(/\/.*/, "", $4); print $4; exit}'
}

# One ping from member <from> to <ip> (1 s reply timeout).
rig_ping_once() {
    local rig=$1 from=$2 ip=$3
    ip netns exec "$(rig_ns_host "$rig" "$from")" ping -n -q -c 1 -W 1 "$ip" >/dev/null 2>&1
}

# rig_wait_ready <rig> <state> <members> <timeout s>: polls until every member is ready
# (see the file comment; the IPv6 check is skipped with RIG_IPV6=0). Fails at once if a
# node process exits, and at the timeout naming what is still missing.
rig_wait_ready() {
    local rig=$1 state=$2 members=$3 timeout_s=$4
    local deadline n m iface missing
    local -A pinged=()
    deadline=$(($(now_ms) + timeout_s * 1000))
    while true; do
        for ((n = 0; n <= members; n++)); do
            rig_node_pid "$state" "$n" >/dev/null || {
                say "node h$n exited during start-up"
                return 1
            }
        done
        missing=""
        for ((n = 1; n <= members; n++)); do
            iface=$(rig_member_iface "$rig" "$n")
            if [[ -z $iface ]]; then
                missing+=" h$n:no-zt-interface"
            elif ! rig_iface_has_ipv4 "$rig" "$n" "$iface" "$(rig_zt_ip "$n")"; then
                missing+=" h$n:no-ipv4-on-$iface"
            elif [[ ${RIG_IPV6:-1} != 0 && -z $(rig_iface_rfc4193 "$rig" "$n" "$iface") ]]; then
                missing+=" h$n:no-rfc4193-on-$iface"
            fi
        done
        if [[ -z $missing ]]; then
            for ((n = 1; n <= members; n++)); do
                for ((m = 1; m <= members; m++)); do
                    if ((n == m)) || [[ -n ${pinged[$n.$m]:-} ]]; then
                        continue
                    fi
                    if rig_ping_once "$rig" "$n" "$(rig_zt_ip "$m")"; then
                        pinged[$n.$m]=1
                    else
                        missing+=" h$n->h$m:no-ping"
                        break 2
                    fi
                done
            done
        fi
        [[ -z $missing ]] && return 0
        if (($(now_ms) >= deadline)); then
            say "not ready after ${timeout_s}s:$missing"
            return 1
        fi
        sleep 0.1
    done
}

# rig_write_env <rig> <state> <members> <bin> <nwid>: the rig's state as shell assignments
# (values quoted with %q), written atomically to <state>/env.
rig_write_env() {
    local rig=$1 state=$2 members=$3 bin=$4 nwid=$5
    local n iface ns_members="" tmp=$state/env.tmp
    for ((n = 1; n <= members; n++)); do
        ns_members+="${ns_members:+ }$(rig_ns_host "$rig" "$n")"
    done
    {
        printf '# ztrs netns rig %s (netns-rig.sh); node 0 is the root/controller\n' "$rig"
        printf '%s=%q\n' RIG "$rig" STATE "$state" MEMBERS "$members" PORT "$RIG_PORT" \
            NWID "$nwid" ZTRS_BIN "$bin" NS_SWITCH "$(rig_ns_switch "$rig")" \
            NS_ROOT "$(rig_ns_host "$rig" 0)" NS_MEMBERS "$ns_members"
        for ((n = 0; n <= members; n++)); do
            printf '%s=%q\n' "NS_$n" "$(rig_ns_host "$rig" "$n")" \
                "UNDERLAY_IP_$n" "$(rig_underlay_ip "$n")"
            [[ -f $(rig_node_home "$state" "$n")/identity.public ]] || continue
            printf '%s=%q\n' "HOME_$n" "$(rig_node_home "$state" "$n")" \
                "ADDR_$n" "$(rig_node_address "$(rig_node_home "$state" "$n")")" \
                "PID_$n" "$(cat "$state/h$n.pid" 2>/dev/null || true)"
            ((n > 0)) || continue
            iface=$(rig_member_iface "$rig" "$n")
            printf '%s=%q\n' "IF_$n" "$iface" "ZT_IP_$n" "$(rig_zt_ip "$n")" \
                "ZT_IP6_$n" "$(rig_iface_rfc4193 "$rig" "$n" "$iface")"
        done
    } >"$tmp"
    mv "$tmp" "$state/env"
}
