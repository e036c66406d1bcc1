//! Physical paths to a peer and the address policy that decides which endpoints may become
//! paths (protocol 8.4, hardening H2.5 and H5.2).
//!
//! A path is a (local socket, remote endpoint) pair on which an OK arrived with hops = 0. Its
//! quality follows the reference: latency while alive, heavily penalised once silent, scaled
//! so that private (LAN) paths are preferred over global ones.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::constants::{
    UNKNOWN_LATENCY, ZT_PATH_ALIVE_TIMEOUT, ZT_PATH_HEARTBEAT_PERIOD, ZT_PEER_PATH_EXPIRATION,
};
use crate::wire::inet_address::canonical_socket_addr;

/// One direct path to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Path {
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) created: u64,
    pub(crate) last_receive: u64,
    pub(crate) last_send: Option<u64>,
    /// Round-trip time from the last OK(HELLO)/OK(ECHO) received on this path.
    pub(crate) latency: Option<u32>,
}

impl Path {
    pub(crate) fn new(local: SocketAddr, remote: SocketAddr, now: u64) -> Path {
        Path {
            local,
            remote,
            created: now,
            last_receive: now,
            last_send: None,
            latency: None,
        }
    }

    /// Something was received recently (heartbeat period + 5 s).
    pub(crate) fn alive(&self, now: u64) -> bool {
        now.saturating_sub(self.last_receive) < ZT_PATH_ALIVE_TIMEOUT
    }

    /// Nothing received for `ZT_PEER_PATH_EXPIRATION`: no longer used, removed at the next
    /// ping check.
    pub(crate) fn expired(&self, now: u64) -> bool {
        now.saturating_sub(self.last_receive) >= ZT_PEER_PATH_EXPIRATION
    }

    /// Nothing sent for `ZT_PATH_HEARTBEAT_PERIOD`: time for a keepalive ECHO.
    pub(crate) fn needs_heartbeat(&self, now: u64) -> bool {
        self.last_send
            .is_none_or(|t| now.saturating_sub(t) >= ZT_PATH_HEARTBEAT_PERIOD)
    }

    /// Lower is better: latency while alive, latency + 0xffff + age once silent, times a
    /// scope factor that prefers private paths.
    pub(crate) fn quality(&self, now: u64) -> u64 {
        let latency = self.latency.map_or(UNKNOWN_LATENCY, u64::from);
        let age = now
            .saturating_sub(self.last_receive)
            .min(ZT_PATH_HEARTBEAT_PERIOD * 10);
        let base = if self.alive(now) {
            latency
        } else {
            latency + UNKNOWN_LATENCY + age
        };
        base * scope_factor(self.remote.ip())
    }
}

/// The quality multiplier of an address scope (the reference's `MAX_SCOPE - scope + 1`).
fn scope_factor(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) if v4.is_private() => 1,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => 1,
        IpAddr::V4(v4) if is_shared_v4(v4) => 2,
        IpAddr::V4(v4) if v4.is_loopback() => 6,
        IpAddr::V6(v6) if v6.is_loopback() => 6,
        _ => 4,
    }
}

/// 100.64.0.0/10 (carrier-grade NAT, "shared" scope).
fn is_shared_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 100 && (o[1] & 0xc0) == 64
}

/// Whether `addr` may be used as a path or contacted directly (8.4, H2.5): never
/// unspecified, port 0, multicast, broadcast, 0/8, 255/8, link-local or a Hurricane
/// Electric tunnel (2001:470::/32); loopback only when `allow_loopback`.
/// IPv4-mapped IPv6 is judged as the IPv4 it carries (H5.2).
pub(crate) fn usable_address(addr: &SocketAddr, allow_loopback: bool) -> bool {
    let addr = canonical_socket_addr(*addr);
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(v4) => usable_v4(v4, allow_loopback),
        IpAddr::V6(v6) => usable_v6(v6, allow_loopback),
    }
}

fn usable_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    let first = ip.octets()[0];
    if ip.is_loopback() {
        return allow_loopback;
    }
    !(ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_link_local()
        || first == 0
        || first == 255)
}

fn usable_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let s = ip.segments();
    let link_local = (s[0] & 0xffc0) == 0xfe80;
    let he_tunnel = s[0] == 0x2001 && s[1] == 0x0470;
    !(ip.is_unspecified() || ip.is_multicast() || link_local || he_tunnel)
}

/// Whether `addr` falls in one of the `(network, prefix)` entries (local.conf `physical`
/// blacklist). Compared canonically, so an IPv4-mapped IPv6 matches an IPv4 entry (H5.2).
pub(crate) fn blacklisted(addr: &SocketAddr, blacklist: &[(IpAddr, u8)]) -> bool {
    let ip = canonical_socket_addr(*addr).ip();
    blacklist
        .iter()
        .any(|(network, prefix)| prefix_contains(*network, *prefix, ip))
}

/// Whether `ip` is inside `network/prefix` (families must match; a prefix beyond the
/// address length matches nothing).
pub fn prefix_contains(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// The unspecified local address of `remote`'s family: "send from any socket of that family"
/// (the reference's local socket -1). Drivers pick a socket of that family.
pub(crate) fn any_local_for(remote: &SocketAddr) -> SocketAddr {
    match remote {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// The same address family.
pub(crate) fn same_family(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blacklist_matches_prefixes_canonically() {
        let list = [
            ("10.200.0.0".parse().unwrap(), 16),
            ("fd00::".parse().unwrap(), 8),
        ];
        assert!(blacklisted(&sa("10.200.3.4:9993"), &list));
        assert!(blacklisted(&sa("[::ffff:10.200.3.4]:9993"), &list));
        assert!(blacklisted(&sa("[fd12::1]:9993"), &list));
        assert!(!blacklisted(&sa("10.201.0.1:9993"), &list));
        assert!(!blacklisted(&sa("[fe80::1]:9993"), &list));
        assert!(prefix_contains(
            "0.0.0.0".parse().unwrap(),
            0,
            "1.2.3.4".parse().unwrap()
        ));
        assert!(!prefix_contains(
            "1.2.3.4".parse().unwrap(),
            33,
            "1.2.3.4".parse().unwrap()
        ));
    }

    #[test]
    fn address_policy() {
        for ok in [
            "10.0.0.1:9993",
            "192.168.1.2:1",
            "100.64.1.1:5",
            "8.8.8.8:53",
            "[2001:db8::1]:9993",
            "[fd00::1]:9993",
            "[::ffff:10.0.0.1]:9993",
        ] {
            assert!(usable_address(&sa(ok), false), "{ok}");
        }
        for bad in [
            "0.0.0.0:9993",
            "10.0.0.1:0",
            "127.0.0.1:9993",
            "169.254.1.1:9993",
            "224.0.0.1:9993",
            "255.255.255.255:9993",
            "0.1.2.3:9993",
            "255.1.2.3:9993",
            "[::]:9993",
            "[::1]:9993",
            "[fe80::1]:9993",
            "[ff02::1]:9993",
            "[2001:470::1]:9993",
            "[::ffff:127.0.0.1]:9993",
            "[::ffff:0.0.0.0]:9993",
        ] {
            assert!(!usable_address(&sa(bad), false), "{bad}");
        }
        assert!(usable_address(&sa("127.0.0.1:9993"), true));
        assert!(usable_address(&sa("[::1]:9993"), true));
        assert!(!usable_address(&sa("0.0.0.0:9993"), true));
    }

    #[test]
    fn path_timers_and_quality() {
        let mut p = Path::new(sa("0.0.0.0:0"), sa("10.0.0.2:9993"), 1_000);
        assert!(p.alive(1_000 + ZT_PATH_ALIVE_TIMEOUT - 1));
        assert!(!p.alive(1_000 + ZT_PATH_ALIVE_TIMEOUT));
        assert!(!p.expired(1_000 + ZT_PEER_PATH_EXPIRATION - 1));
        assert!(p.expired(1_000 + ZT_PEER_PATH_EXPIRATION));
        assert!(p.needs_heartbeat(1_000));
        p.last_send = Some(1_000);
        assert!(!p.needs_heartbeat(1_000 + ZT_PATH_HEARTBEAT_PERIOD - 1));
        p.latency = Some(10);
        let fresh = p.quality(1_000);
        let silent = p.quality(1_000 + ZT_PATH_ALIVE_TIMEOUT + 1);
        assert_eq!(fresh, 10);
        assert!(silent > fresh);
        let global = Path {
            remote: sa("8.8.8.8:9993"),
            ..p.clone()
        };
        assert!(global.quality(1_000) > p.quality(1_000));
    }

    #[test]
    fn unspecified_local_matches_family() {
        assert_eq!(any_local_for(&sa("10.0.0.1:1")), sa("0.0.0.0:0"));
        assert_eq!(any_local_for(&sa("[2001:db8::1]:1")), sa("[::]:0"));
        assert!(same_family(&sa("10.0.0.1:1"), &sa("0.0.0.0:0")));
        assert!(!same_family(&sa("10.0.0.1:1"), &sa("[::]:0")));
    }
}
