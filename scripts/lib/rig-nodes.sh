# shellcheck shell=bash
# The rig's ZeroTier nodes: one HOME per host (identity, private planet, authtoken, joined
# networks), the root's controller.d objects (the network and its authorized members with
# fixed IPs), starting the daemons inside their namespaces and stopping them again.
# Sourced after common.sh and rig-net.sh.

# UDP port of every node (each runs in its own namespace, so they can all share it).
RIG_PORT=9993
# Fixed id of the rig's private planet (any 64-bit value works; it only has to be the same
# in every node's planet file).
RIG_PLANET_ID=00000000005a7e57
# Network id suffix: the network id is the root's 10-hex-digit address followed by this.
RIG_NETWORK_SUFFIX=000001

rig_node_home() { printf '%s/h%s\n' "$1" "$2"; }
rig_zt_ip() { printf '10.147.17.%s\n' "$1"; }

# The 10-hex-digit address of the identity in <home>.
rig_node_address() {
    local public
    public=$(<"$1/identity.public")
    printf '%s\n' "${public%%:*}"
}

# rig_make_identities <bin> <state> <count>: identities for h0..h<count-1>, in parallel
# (each is a memory-hard proof of work).
rig_make_identities() {
    local bin=$1 state=$2 count=$3 n home
    local -a jobs=()
    for ((n = 0; n < count; n++)); do
        home=$(rig_node_home "$state" "$n")
        mkdir -p "$home"
        "$bin" idtool generate "$home/identity.secret" "$home/identity.public" \
            >"$home/idtool.log" 2>&1 &
        jobs+=($!)
    done
    for n in "${!jobs[@]}"; do
        wait "${jobs[$n]}" || die "identity generation for h$n failed: $(cat "$(rig_node_home "$state" "$n")/idtool.log")"
    done
}

# rig_make_planet <bin> <state>: a private planet whose only root is h0 at its underlay
# address; installed as `planet` in every node's HOME by rig_prepare_homes.
rig_make_planet() {
    local bin=$1 state=$2 build root_home
    local -a made
    build=$state/planet-build
    root_home=$(rig_node_home "$state" 0)
    mkdir -p "$build"
    "$bin" idtool initmoon "$root_home/identity.public" >"$build/world.json"
    python3 - "$build/world.json" "$RIG_PLANET_ID" "$(rig_underlay_ip 0)/$RIG_PORT" <<'PY'
import json, sys
path, world_id, endpoint = sys.argv[1:4]
with open(path) as f:
    world = json.load(f)
world["worldType"] = "planet"
world["id"] = world_id
world["roots"][0]["stableEndpoints"] = [endpoint]
with open(path, "w") as f:
    json.dump(world, f, indent=1)
PY
    (cd "$build" && "$bin" idtool genmoon world.json >genmoon.log 2>&1) ||
        die "genmoon failed: $(cat "$build/genmoon.log")"
    made=("$build"/*.moon)
    [[ ${#made[@]} -eq 1 && -f ${made[0]} ]] || die "genmoon wrote no single .moon file in $build"
    printf '%s\n' "${made[0]}"
}

# rig_write_controller <root home> <nwid> <member addresses...>: the network and one
# authorized member per address (member k, counting from 1, gets 10.147.17.k).
rig_write_controller() {
    local root_home=$1 nwid=$2
    shift 2
    local dir=$root_home/controller.d/network
    mkdir -p "$dir/$nwid/member"
    python3 - "$dir" "$nwid" "$@" <<'PY'
import json, os, sys
directory, nwid, addresses = sys.argv[1], sys.argv[2], sys.argv[3:]
network = {
    "id": nwid, "nwid": nwid, "objtype": "network", "name": "rig", "private": True,
    "v4AssignMode": {"zt": True},
    "v6AssignMode": {"rfc4193": True, "zt": False, "6plane": False},
    "ipAssignmentPools": [{"ipRangeStart": "10.147.17.1", "ipRangeEnd": "10.147.17.254"}],
    "routes": [{"target": "10.147.17.0/24", "via": None}],
    "mtu": 2800, "enableBroadcast": True,
}
with open(os.path.join(directory, nwid + ".json"), "w") as f:
    json.dump(network, f, indent=1)
for index, address in enumerate(addresses, start=1):
    member = {
        "id": address, "address": address, "nwid": nwid, "objtype": "member",
        "authorized": True, "ipAssignments": ["10.147.17.%d" % index],
    }
    with open(os.path.join(directory, nwid, "member", address + ".json"), "w") as f:
        json.dump(member, f, indent=1)
PY
}

# A fixed API token (24 lowercase alphanumerics, the reference's format) so scripts can use
# the control API without waiting for the daemon to create one.
rig_write_authtoken() {
    local token
    token=$(python3 -c 'import secrets, string; a = string.ascii_lowercase + string.digits; print("".join(secrets.choice(a) for _ in range(24)), end="")')
    (umask 077 && printf '%s' "$token" >"$1/authtoken.secret")
}

# rig_prepare_homes <bin> <state> <members>: every HOME ready to start; prints the network id.
rig_prepare_homes() {
    local bin=$1 state=$2 members=$3 planet nwid n home
    local -a addresses=()
    rig_make_identities "$bin" "$state" "$((members + 1))"
    planet=$(rig_make_planet "$bin" "$state")
    nwid=$(rig_node_address "$(rig_node_home "$state" 0)")$RIG_NETWORK_SUFFIX
    for ((n = 0; n <= members; n++)); do
        home=$(rig_node_home "$state" "$n")
        cp "$planet" "$home/planet"
        rig_write_authtoken "$home"
        if ((n > 0)); then
            mkdir -p "$home/networks.d"
            : >"$home/networks.d/$nwid.conf"
            addresses+=("$(rig_node_address "$home")")
        fi
    done
    rig_write_controller "$(rig_node_home "$state" 0)" "$nwid" "${addresses[@]}"
    printf '%s\n' "$nwid"
}

# rig_start_node <bin> <rig> <state> <n>: starts node n in its namespace, detached from our
# stdio (so a caller reading our output is not held open), logging to <state>/h<n>.log.
rig_start_node() {
    local bin=$1 rig=$2 state=$3 n=$4
    local home
    home=$(rig_node_home "$state" "$n")
    ip netns exec "$(rig_ns_host "$rig" "$n")" \
        "$bin" service -p "$RIG_PORT" "$home" </dev/null >>"$state/h$n.log" 2>&1 &
    printf '%s\n' "$!" >"$state/h$n.pid"
}

# Pid of node n if its pid file names a live ztrs process running from this rig's HOME
# (so a recycled pid is never signalled).
rig_node_pid() {
    local state=$1 n=$2 pid cmdline
    pid=$(cat "$state/h$n.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
    [[ $cmdline == *"$(rig_node_home "$state" "$n")"* ]] || return 1
    printf '%s\n' "$pid"
}

# Pids of every live node of the rig in <state>.
rig_node_pids() {
    local state=$1 pidfile n
    for pidfile in "$state"/h*.pid; do
        [[ -f $pidfile ]] || continue
        n=${pidfile##*/h}
        n=${n%.pid}
        rig_node_pid "$state" "$n" || true
    done
}

# Prints the last lines of every node log (used when something failed).
rig_print_logs() {
    local state=$1 log
    for log in "$state"/h*.log; do
        [[ -f $log ]] || continue
        printf '\n----- %s (last 30 lines) -----\n' "$log" >&2
        tail -n 30 "$log" >&2 || true
    done
}
