//! Admission of connection requests (a bare TCP SYN) to our listeners, before smoltcp sees
//! them. smoltcp answers a SYN that finds no socket in LISTEN with a reset, so a burst of
//! connects larger than a listener's standing handshake slots would be refused although its
//! backlog has room. Here, as Linux does, a SYN is dropped (and counted) while the accept
//! queue is full, and the client's retransmission tries again once `accept` made room;
//! otherwise it gets a fresh handshake socket when no LISTEN socket is free, up to `backlog`
//! handshakes at once (each socket owns its buffers, so this bounds memory). A SYN to a port
//! nobody listens on still gets smoltcp's reset (connection refused).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::socket::tcp;

use super::config::NetstackConfig;
use super::core::{ListenerState, NetstackCounters, new_tcp_socket};
use super::network::{NetworkStack, Role};

const IP_PROTOCOL_TCP: u8 = 6;
const TCP_FLAG_SYN: u8 = 0x02;
const TCP_FLAG_ACK: u8 = 0x10;
const IPV6_HEADER_LEN: usize = 40;

/// The endpoints of a connection request (SYN without ACK) in an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syn {
    pub from: SocketAddr,
    pub to: SocketAddr,
}

/// Parses `packet` (IPv4 or IPv6, no extension headers) far enough to tell a bare SYN.
pub fn bare_syn(packet: &[u8]) -> Option<Syn> {
    let (source, destination, tcp) = match packet.first()? >> 4 {
        4 => {
            let header_len = usize::from(packet.first()? & 0x0f) * 4;
            let fragment = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff;
            if *packet.get(9)? != IP_PROTOCOL_TCP || fragment != 0 {
                return None;
            }
            let source: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let destination: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            (
                IpAddr::from(Ipv4Addr::from(source)),
                IpAddr::from(Ipv4Addr::from(destination)),
                packet.get(header_len..)?,
            )
        }
        6 => {
            if *packet.get(6)? != IP_PROTOCOL_TCP {
                return None;
            }
            let source: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let destination: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            (
                IpAddr::from(Ipv6Addr::from(source)),
                IpAddr::from(Ipv6Addr::from(destination)),
                packet.get(IPV6_HEADER_LEN..)?,
            )
        }
        _ => return None,
    };
    let flags = *tcp.get(13)?;
    if flags & (TCP_FLAG_SYN | TCP_FLAG_ACK) != TCP_FLAG_SYN {
        return None;
    }
    let port = |at: usize| Some(u16::from_be_bytes([*tcp.get(at)?, *tcp.get(at + 1)?]));
    Some(Syn {
        from: SocketAddr::new(source, port(0)?),
        to: SocketAddr::new(destination, port(2)?),
    })
}

/// Whether the stack should take `packet`. Opens a handshake socket for a SYN when the
/// listener needs one and has room; false (and counted) for a SYN the backlog has no room
/// for. Every other packet is taken.
pub(crate) fn admit(
    stack: &mut NetworkStack,
    listeners: &BTreeMap<u64, ListenerState>,
    counters: &mut NetstackCounters,
    config: &NetstackConfig,
    packet: &[u8],
) -> bool {
    let Some(syn) = bare_syn(packet) else {
        return true;
    };
    let Some((&id, listener)) = listeners
        .iter()
        .find(|(_, l)| l.port == syn.to.port() && l.covers(syn.to.ip()))
    else {
        // Nobody listens: smoltcp's reset is the right answer.
        return true;
    };
    if listener.ready.len() >= listener.backlog {
        counters.syn_dropped += 1;
        return false;
    }
    let mut free = 0usize;
    let mut handshaking = 0usize;
    for (handle, meta) in &stack.meta {
        let Role::Listening {
            listener: owner,
            addr,
        } = meta.role
        else {
            continue;
        };
        if owner != id {
            continue;
        }
        let Some(socket) = stack.tcp(*handle) else {
            continue;
        };
        match socket.state() {
            tcp::State::Listen if addr == syn.to.ip() => free += 1,
            tcp::State::Listen => {}
            _ => {
                // A retransmitted SYN of a handshake under way: its socket takes it.
                let remote = socket
                    .remote_endpoint()
                    .map(|e| SocketAddr::new(e.addr.into(), e.port));
                if remote == Some(syn.from) {
                    return true;
                }
                handshaking += 1;
            }
        }
    }
    let queued_here = stack.queued_syns.iter().filter(|to| **to == syn.to).count();
    if free > queued_here {
        stack.queued_syns.push(syn.to);
        return true;
    }
    let queued_for_listener = stack
        .queued_syns
        .iter()
        .filter(|to| to.port() == listener.port && listener.covers(to.ip()))
        .count();
    if handshaking + queued_for_listener >= listener.backlog
        || stack.meta.len() >= config.max_tcp_sockets
    {
        counters.syn_dropped += 1;
        return false;
    }
    let mut socket = new_tcp_socket(config);
    if socket.listen((syn.to.ip(), syn.to.port())).is_err() {
        return true;
    }
    stack.add_socket(
        socket,
        Role::Listening {
            listener: id,
            addr: syn.to.ip(),
        },
    );
    stack.queued_syns.push(syn.to);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(flags: u8) -> Vec<u8> {
        let mut packet = vec![0u8; 40];
        packet[0] = 0x45;
        packet[9] = IP_PROTOCOL_TCP;
        packet[12..16].copy_from_slice(&[10, 0, 0, 1]);
        packet[16..20].copy_from_slice(&[10, 0, 0, 2]);
        packet[20..22].copy_from_slice(&50000u16.to_be_bytes());
        packet[22..24].copy_from_slice(&80u16.to_be_bytes());
        packet[33] = flags;
        packet
    }

    #[test]
    fn tells_a_bare_syn_and_its_endpoints() {
        let syn = bare_syn(&ipv4_tcp(TCP_FLAG_SYN)).unwrap();
        assert_eq!(syn.from, "10.0.0.1:50000".parse().unwrap());
        assert_eq!(syn.to, "10.0.0.2:80".parse().unwrap());
        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[6] = IP_PROTOCOL_TCP;
        v6[23] = 1;
        v6[39] = 2;
        v6[42..44].copy_from_slice(&443u16.to_be_bytes());
        v6[53] = TCP_FLAG_SYN;
        let syn = bare_syn(&v6).unwrap();
        assert_eq!(syn.to, "[::2]:443".parse().unwrap());
    }

    #[test]
    fn anything_else_is_not_a_syn() {
        assert_eq!(bare_syn(&ipv4_tcp(TCP_FLAG_SYN | TCP_FLAG_ACK)), None);
        assert_eq!(bare_syn(&ipv4_tcp(TCP_FLAG_ACK)), None);
        let mut fragment = ipv4_tcp(TCP_FLAG_SYN);
        fragment[7] = 1;
        assert_eq!(bare_syn(&fragment), None);
        let packet = ipv4_tcp(TCP_FLAG_SYN);
        for len in 0..packet.len() {
            let _ = bare_syn(&packet[..len]);
        }
        assert_eq!(bare_syn(&packet[..33]), None);
        assert_eq!(bare_syn(&[]), None);
        assert_eq!(bare_syn(&[0x70; 60]), None);
    }
}
