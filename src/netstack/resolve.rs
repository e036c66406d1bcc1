//! Names on the virtual networks, and connecting by name without stalling on a dead
//! address (H3.8).
//!
//! There is no DNS inside a ZeroTier network unless the controller pushes one (managed DNS
//! is not implemented), so names come from what the configs tell us:
//! - an IP literal is itself;
//! - `<node>.zt` (ten hex digits) is that member's RFC 4193 and 6PLANE addresses on every
//!   joined network where we hold such an address ourselves (so the network assigns them),
//!   plus the IPv4 addresses we have learned for it by ARP;
//! - `<node>.<network>.zt` restricts that to one network.
//!
//! Connecting to several addresses follows RFC 8305 in spirit: IPv6 and IPv4 interleaved,
//! a new attempt started every [`ATTEMPT_DELAY`] while earlier ones are still pending,
//! the first to complete wins and the others are dropped (which aborts them).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::core::Inner;
use crate::wire::mac::Mac;
use crate::wire::managed_ip::{rfc4193, six_plane};
use crate::wire::{Address, NetworkId};

/// The wait before the next address is tried while the previous attempt is pending.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// What a name denotes, before looking at the networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Ip(IpAddr),
    Member {
        address: Address,
        network: Option<NetworkId>,
    },
}

/// Parses `host` (an IP literal, with or without brackets, or a `.zt` name).
pub fn parse_name(host: &str) -> Option<Name> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(Name::Ip(ip));
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    let stem = lower.strip_suffix(".zt")?;
    let (node, network) = match stem.split_once('.') {
        Some((node, network)) => (node, Some(network)),
        None => (stem, None),
    };
    if node.len() != 10 {
        return None;
    }
    let address: Address = node.parse().ok()?;
    let network = match network {
        Some(n) if n.len() == 16 => Some(n.parse::<NetworkId>().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some(Name::Member { address, network })
}

/// The addresses of `name` on the joined networks, IPv6 and IPv4 interleaved.
pub(crate) fn resolve(inner: &Inner, host: &str) -> io::Result<Vec<IpAddr>> {
    let name = parse_name(host).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "cannot resolve {host:?}: use an IP address or <node>.zt / <node>.<network>.zt"
            ),
        )
    })?;
    let (address, network) = match name {
        Name::Ip(ip) => return Ok(vec![ip]),
        Name::Member { address, network } => (address, network),
    };
    let mut v6 = Vec::new();
    let mut v4 = Vec::new();
    for stack in inner.stacks.values() {
        let nwid = stack.nwid;
        if network.is_some_and(|n| n != nwid) {
            continue;
        }
        let ours: Vec<IpAddr> = stack.addresses().collect();
        let me = stack.config().our_mac.to_address(nwid);
        for (theirs, mine) in [
            (rfc4193(nwid, address), me.map(|m| rfc4193(nwid, m))),
            (six_plane(nwid, address), me.map(|m| six_plane(nwid, m))),
        ] {
            if mine.is_some_and(|m| ours.contains(&IpAddr::V6(m))) {
                v6.push(IpAddr::V6(theirs));
            }
        }
        for ip in stack
            .boundary
            .neighbour_ips(Mac::from_address(address, nwid))
        {
            match ip {
                IpAddr::V4(_) => v4.push(ip),
                IpAddr::V6(_) => v6.push(ip),
            }
        }
    }
    v6.dedup();
    v4.dedup();
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no address known for {host} on the joined networks"),
        ));
    }
    Ok(out)
}

/// Connects to the first of `addrs` that answers, starting a new attempt every
/// [`ATTEMPT_DELAY`] (or as soon as one fails) while earlier ones are pending.
pub(crate) async fn happy_eyeballs<S, F, Fut>(addrs: Vec<SocketAddr>, attempt: F) -> io::Result<S>
where
    S: Send + 'static,
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<S>> + Send + 'static,
{
    let mut pending = tokio::task::JoinSet::new();
    let mut next = addrs.into_iter();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    loop {
        let mut started = false;
        if let Some(addr) = next.next() {
            pending.spawn(attempt(addr));
            started = true;
        }
        if pending.is_empty() {
            return Err(last_error);
        }
        let more = started && next.len() > 0;
        let joined = if more {
            match tokio::time::timeout(ATTEMPT_DELAY, pending.join_next()).await {
                Ok(joined) => joined,
                // Still pending: start the next address alongside.
                Err(_) => continue,
            }
        } else {
            pending.join_next().await
        };
        match joined {
            Some(Ok(Ok(stream))) => return Ok(stream),
            Some(Ok(Err(err))) => last_error = err,
            Some(Err(join)) => last_error = io::Error::other(join.to_string()),
            None => return Err(last_error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("10.1.2.3"),
            Some(Name::Ip("10.1.2.3".parse().unwrap()))
        );
        assert_eq!(
            parse_name("[fd00::1]"),
            Some(Name::Ip("fd00::1".parse().unwrap()))
        );
        let Some(Name::Member { address, network }) = parse_name("89E92CEEE5.zt.") else {
            panic!("member name not parsed");
        };
        assert_eq!(address.to_u64(), 0x0089_e92c_eee5);
        assert_eq!(network, None);
        let Some(Name::Member { network, .. }) = parse_name("89e92ceee5.8056c2e21c000001.zt")
        else {
            panic!("member.network name not parsed");
        };
        assert_eq!(network, Some(NetworkId(0x8056_c2e2_1c00_0001)));
        for bad in [
            "example.com",
            "zt",
            ".zt",
            "89e92ceee.zt",
            "89e92ceeeg.zt",
            "89e92ceee5.123.zt",
            "",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
