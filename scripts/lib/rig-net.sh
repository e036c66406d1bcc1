# shellcheck shell=bash
# The rig's underlay: one "switch" namespace holding a bridge, and one namespace per host
# joined to it by a veth pair (10.200.0.<n+1>/24 on host n). Also finds and tears down
# everything a rig created (its namespaces and every process inside them).
# Sourced after common.sh.

# Namespace names. Veth names live inside these namespaces (h<n> on the switch side, eth0 on
# the host side), so they stay short whatever the rig is called.
rig_ns_switch() { printf '%s-sw\n' "$1"; }
rig_ns_host() { printf '%s-h%s\n' "$1" "$2"; }

# Underlay (veth) IPv4 of host n: the root h0 is 10.200.0.1, member hN is 10.200.0.(N+1).
rig_underlay_ip() { printf '10.200.0.%s\n' "$(($1 + 1))"; }

# Existing namespaces that belong to the rig (exact names only, so rig "zt1" never matches
# rig "zt12"'s namespaces).
rig_namespaces() {
    local rig=$1
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${rig}-(sw|h[0-9]+)\$" || true
}

# rig_net_up <rig> <members>: switch plus hosts h0..h<members>, loopback up everywhere.
rig_net_up() {
    local rig=$1 members=$2 sw host n
    sw=$(rig_ns_switch "$rig")
    ip netns add "$sw"
    ip -n "$sw" link set lo up
    # A switch does not run iptables: keep bridged frames out of netfilter (br_netfilter is
    # loaded on many hosts and would tax every packet of every protocol under test).
    ip -n "$sw" link add br0 type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0
    ip -n "$sw" link set br0 up
    for ((n = 0; n <= members; n++)); do
        host=$(rig_ns_host "$rig" "$n")
        ip netns add "$host"
        ip -n "$host" link set lo up
        ip -n "$sw" link add "h$n" type veth peer name eth0 netns "$host"
        ip -n "$sw" link set "h$n" master br0
        ip -n "$sw" link set "h$n" up
        ip -n "$host" addr add "$(rig_underlay_ip "$n")/24" dev eth0
        ip -n "$host" link set eth0 up
    done
}

# Pids of every process running inside any of the rig's namespaces.
rig_namespace_pids() {
    local rig=$1 ns
    for ns in $(rig_namespaces "$rig"); do
        ip netns pids "$ns" 2>/dev/null || true
    done
}

# rig_net_down <rig>: stops every process left in the rig's namespaces, then deletes them.
# Idempotent; works on a half-built rig.
rig_net_down() {
    local rig=$1 ns
    local -a pids
    mapfile -t pids < <(rig_namespace_pids "$rig")
    stop_pids "${RIG_STOP_GRACE:-5}" "${pids[@]}"
    for ns in $(rig_namespaces "$rig"); do
        ip netns del "$ns" 2>/dev/null || say "could not delete namespace $ns"
    done
}
