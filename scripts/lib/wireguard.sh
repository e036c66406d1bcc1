# shellcheck shell=bash
# The wireguard-go baseline for the bench: a userspace WireGuard tunnel (interface wg0 in
# each of two member namespaces, 10.201.0.<n>/24, endpoints over the veth underlay, default
# MTU). wireguard-go keeps its control socket in /run/wireguard, which namespaces do not
# separate, so each instance runs under a private tmpfs there (in the mount namespace that
# `ip netns exec` creates) and is configured through nsenter into that mount namespace.
# Sourced after common.sh and rig-net.sh.

WG_PORT=51820

wg_tunnel_ip() { printf '10.201.0.%s\n' "$1"; }

# True once wireguard-go (pid) has created its control socket.
wg_socket_ready() {
    nsenter -t "$1" -m test -S /run/wireguard/wg0.sock 2>/dev/null
}

# wg_start_instance <rig> <dir> <n>: starts wireguard-go in member n's namespace; prints its pid.
wg_start_instance() {
    local rig=$1 dir=$2 n=$3
    mkdir -p /run/wireguard
    # The tmpfs is mounted in the private mount namespace of this `ip netns exec` only.
    ip netns exec "$(rig_ns_host "$rig" "$n")" sh -c \
        'mount -t tmpfs -o size=1m,mode=0700 wgsock /run/wireguard && exec wireguard-go -f wg0' \
        </dev/null >"$dir/wireguard-go-h$n.log" 2>&1 &
    printf '%s\n' "$!"
}

# wg_up <rig> <dir> <a> <b>: a tunnel between members a and b; returns once a pings b
# through it (bounded). Keys and configs are kept in <dir>.
wg_up() {
    local rig=$1 dir=$2 a=$3 b=$4 n peer pid
    local -A pids=()
    mkdir -p "$dir"
    for n in "$a" "$b"; do
        (umask 077 && wg genkey >"$dir/h$n.key")
        wg pubkey <"$dir/h$n.key" >"$dir/h$n.pub"
    done
    for n in "$a" "$b"; do
        pid=$(wg_start_instance "$rig" "$dir" "$n")
        pids[$n]=$pid
        wait_until 10 wg_socket_ready "$pid" ||
            die "wireguard-go in h$n did not start: $(cat "$dir/wireguard-go-h$n.log")"
    done
    for n in "$a" "$b"; do
        if [[ $n == "$a" ]]; then peer=$b; else peer=$a; fi
        (
            umask 077
            printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n' "$(<"$dir/h$n.key")" "$WG_PORT"
            printf '[Peer]\nPublicKey = %s\nEndpoint = %s:%s\nAllowedIPs = %s/32\n' \
                "$(<"$dir/h$peer.pub")" "$(rig_underlay_ip "$peer")" "$WG_PORT" "$(wg_tunnel_ip "$peer")"
        ) >"$dir/h$n.conf"
        nsenter -t "${pids[$n]}" -m -n wg setconf wg0 "$dir/h$n.conf"
        ip -n "$(rig_ns_host "$rig" "$n")" addr add "$(wg_tunnel_ip "$n")/24" dev wg0
        ip -n "$(rig_ns_host "$rig" "$n")" link set wg0 up
    done
    wait_until 10 rig_ping_once "$rig" "$a" "$(wg_tunnel_ip "$b")" ||
        die "no ping through wireguard-go from h$a to h$b"
}
