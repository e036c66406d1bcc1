//! Shared fixtures for the boundary tests: two members A and B (and an intruder C) on one
//! network, packets built with etherparse (an independent encoder), a textbook checksum
//! as the oracle, and helpers that wire boundaries together by hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;

use super::*;
use crate::wire::arp::{ArpOperation, ArpRepr};
use crate::wire::mac::Mac;
use crate::wire::managed_ip;
use crate::wire::{Address, NetworkId};

pub(super) const NWID: NetworkId = NetworkId(0x8056_c2e2_1c00_0001);
pub(super) const A: u64 = 0x007c_2dfe_e12c;
pub(super) const B: u64 = 0x0011_2233_4455;
pub(super) const C: u64 = 0x000a_0b0c_0d0e;

/// A member's identity on the test network.
#[derive(Clone, Copy, Debug)]
pub(super) struct Member {
    pub address: Address,
    pub mac: Mac,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub rfc4193: Ipv6Addr,
}

pub(super) fn member(address: u64, host: u8) -> Member {
    let address = Address::from_u64(address);
    Member {
        address,
        mac: Mac::from_address(address, NWID),
        v4: Ipv4Addr::new(10, 147, 17, host),
        v6: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, u16::from(host)),
        rfc4193: managed_ip::rfc4193(NWID, address),
    }
}

pub(super) fn config_for(m: &Member) -> BoundaryConfig {
    BoundaryConfig {
        nwid: NWID,
        our_mac: m.mac,
        mtu: 2800,
        addresses: vec![
            (IpAddr::V4(m.v4), 24),
            (IpAddr::V6(m.v6), 64),
            (IpAddr::V6(m.rfc4193), 88),
        ],
        routes: vec![
            (IpAddr::V4(Ipv4Addr::new(10, 147, 17, 0)), 24, None),
            (
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0)),
                64,
                None,
            ),
        ],
        broadcast: true,
        policy: Policy::default(),
    }
}

/// Boundaries of A (10.147.17.1) and B (10.147.17.2).
pub(super) fn pair() -> (Boundary, Member, Boundary, Member) {
    let (a, b) = (member(A, 1), member(B, 2));
    (
        Boundary::new(config_for(&a)),
        a,
        Boundary::new(config_for(&b)),
        b,
    )
}

pub(super) fn ping4(src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut out, &payload)
        .unwrap();
    out
}

pub(super) fn udp4(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(5000, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

pub(super) fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .tcp(40000, 80, 1, 1000)
        .write(&mut out, payload)
        .unwrap();
    out
}

pub(super) fn ping6(src: Ipv6Addr, dst: Ipv6Addr, payload_len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let mut out = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut out, &payload)
        .unwrap();
    out
}

pub(super) fn udp6(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .udp(5000, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// The textbook one's-complement checksum over the concatenation of `parts`.
pub(super) fn oracle_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u64 = 0;
    for pair in bytes.chunks(2) {
        sum += (u64::from(pair[0]) << 8) | pair.get(1).copied().map_or(0, u64::from);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Rewrites the IPv4 flags/offset field and repairs the header checksum.
pub(super) fn set_ipv4_flags(packet: &mut [u8], field: u16) {
    packet[6..8].copy_from_slice(&field.to_be_bytes());
    refresh_ipv4_checksum(packet);
}

pub(super) fn refresh_ipv4_checksum(packet: &mut [u8]) {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    packet[10..12].fill(0);
    let sum = oracle_checksum(&[&packet[..header_len]]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// An IPv6 packet from its parts: `chain` (extension headers) then an ICMPv6 echo request
/// with a correct checksum for `dst` (the final destination).
pub(super) fn ipv6_with_chain(src: Ipv6Addr, dst: Ipv6Addr, first: u8, chain: &[u8]) -> Vec<u8> {
    let mut icmp = vec![128, 0, 0, 0, 0, 7, 0, 1, 0xde, 0xad];
    let len = (icmp.len() as u32).to_be_bytes();
    let sum = oracle_checksum(&[&src.octets(), &dst.octets(), &len, &[0, 0, 0, 58], &icmp]);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let payload_len = (chain.len() + icmp.len()) as u16;
    let mut out = vec![0x60, 0, 0, 0];
    out.extend_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(&[first, 64]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(chain);
    out.extend_from_slice(&icmp);
    out
}

/// An 8-byte options header (hop-by-hop or destination options: PadN) before `next`.
pub(super) fn options_header(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

/// Frames `boundary` queued for the network.
pub(super) fn drain_network(boundary: &mut Boundary) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut frame = Vec::new();
    while boundary.poll_to_network(&mut frame) {
        frames.push(std::mem::take(&mut frame));
    }
    frames
}

/// Packets `boundary` queued for the TUN.
pub(super) fn drain_tun(boundary: &mut Boundary) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut packet = Vec::new();
    while boundary.poll_to_tun(&mut packet) {
        packets.push(std::mem::take(&mut packet));
    }
    packets
}

/// Hands `frame` to `boundary` as the node would; returns the outcome and the reply.
pub(super) fn deliver(boundary: &mut Boundary, now: u64, frame: &[u8]) -> (FromNetwork, Vec<u8>) {
    let mut reply = Vec::new();
    let outcome = boundary.from_network(now, frame, &mut reply);
    (outcome, reply)
}

/// An ARP reply frame from `sender_mac` claiming `claimed_ip`, to `to`.
pub(super) fn arp_reply(sender_mac: Mac, claimed_ip: Ipv4Addr, to: &Member) -> Vec<u8> {
    let mut frame = Vec::new();
    ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac,
        sender_ip: claimed_ip,
        target_mac: to.mac,
        target_ip: to.v4,
    }
    .emit_frame(&mut frame);
    frame
}

/// Wraps an IP packet in a frame from `src` to `dst`.
pub(super) fn ip_frame(dst: Mac, src: Mac, packet: &[u8]) -> Vec<u8> {
    let ethertype = if packet[0] >> 4 == 4 {
        0x0800u16
    } else {
        0x86dd
    };
    let mut frame = Vec::new();
    frame.extend_from_slice(&dst.0);
    frame.extend_from_slice(&src.0);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(packet);
    frame
}

/// Resolves `b` from `a` by hand (a sends a packet, the request goes to b, the answer back)
/// and returns the released frame.
pub(super) fn resolve(a: &mut Boundary, b: &mut Boundary, now: u64, packet: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    assert_eq!(a.from_tun(now, packet, &mut frame), FromTun::Pending);
    let requests = drain_network(a);
    assert_eq!(requests.len(), 1);
    let (outcome, reply) = deliver(b, now, &requests[0]);
    assert_eq!(outcome, FromNetwork::ToNetwork);
    assert_eq!(deliver(a, now, &reply).0, FromNetwork::Consumed);
    let mut released = drain_network(a);
    assert_eq!(released.len(), 1);
    released.remove(0)
}
