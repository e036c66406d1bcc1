//! The boundary policy on one IP packet (hardening H2.1, H2.2), the same in both directions:
//! lengths and version, the IPv4 header checksum, fragments, IPv6 extension headers (walked
//! in `ipv6`), and the TCP/UDP/ICMP checksums of unfragmented packets. The result is either
//! a [`IpSummary`] of what the rest of the boundary needs, or the [`DropReason`].
//!
//! Never panics: every read is bounds-checked.

use std::net::{IpAddr, Ipv4Addr};

use super::checksum::{internet_checksum, transport_checksum};
use super::config::{FragmentPolicy, Policy};
use super::counters::DropReason;
use super::ipv6::inspect_ipv6;

pub(crate) const PROTOCOL_ICMP: u8 = 1;
pub(crate) const PROTOCOL_TCP: u8 = 6;
pub(crate) const PROTOCOL_UDP: u8 = 17;
pub(crate) const PROTOCOL_ICMPV6: u8 = 58;
pub(crate) const IPV4_MIN_HEADER_LEN: usize = 20;
pub(crate) const IPV6_HEADER_LEN: usize = 40;
/// IPv4 flags/fragment-offset field bits.
pub(crate) const IPV4_DONT_FRAGMENT: u16 = 0x4000;
pub(crate) const IPV4_MORE_FRAGMENTS: u16 = 0x2000;
pub(crate) const IPV4_OFFSET_MASK: u16 = 0x1fff;

/// What the boundary needs to know about a packet that passed the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IpSummary {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (for IPv6, after the extension headers).
    pub protocol: u8,
    /// The packet length its header states (bytes after it, e.g. padding, are not part).
    pub len: usize,
    /// IPv4 header length with options; 40 for IPv6.
    pub header_len: usize,
    /// Where the upper-layer header starts (may equal `len` when there is none).
    pub transport_offset: usize,
    /// A real fragment (IPv4 MF or offset; a non-atomic IPv6 fragment header).
    pub fragment: bool,
    /// A fragment other than the first (its upper-layer header is elsewhere).
    pub later_fragment: bool,
    /// IPv4 DF; always true for IPv6, which routers never fragment.
    pub dont_fragment: bool,
    /// An IPv6 packet that carried extension headers.
    pub extension_headers: bool,
}

/// Applies the policy to `packet` (an IPv4 or IPv6 packet, trailing bytes allowed).
pub(crate) fn inspect(packet: &[u8], policy: &Policy) -> Result<IpSummary, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => inspect_ipv4(packet, policy),
        Some(6) => inspect_ipv6(packet, policy),
        _ => Err(DropReason::NotIp),
    }
}

/// What a trace record can say about bytes that may not be a valid packet: protocol,
/// source and destination when the fixed header is there.
pub(crate) fn peek(packet: &[u8]) -> (Option<u8>, Option<IpAddr>, Option<IpAddr>) {
    match packet.first().map(|b| b >> 4) {
        Some(4) => match packet.first_chunk::<20>() {
            Some(h) => (
                Some(h[9]),
                Some(IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]))),
                Some(IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]))),
            ),
            None => (None, None, None),
        },
        Some(6) => match packet.first_chunk::<40>() {
            Some(h) => (
                Some(h[6]),
                Some(IpAddr::V6(ipv6_at(h, 8))),
                Some(IpAddr::V6(ipv6_at(h, 24))),
            ),
            None => (None, None, None),
        },
        _ => (None, None, None),
    }
}

/// The IPv6 address at `at` in a 40-byte header (`at` is 8 or 24).
pub(crate) fn ipv6_at(header: &[u8; 40], at: usize) -> std::net::Ipv6Addr {
    let mut o = [0u8; 16];
    for (to, from) in o.iter_mut().zip(header.iter().skip(at)) {
        *to = *from;
    }
    std::net::Ipv6Addr::from(o)
}

fn inspect_ipv4(packet: &[u8], policy: &Policy) -> Result<IpSummary, DropReason> {
    let fixed = packet
        .first_chunk::<IPV4_MIN_HEADER_LEN>()
        .ok_or(DropReason::Malformed)?;
    let header_len = usize::from(fixed[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if header_len < IPV4_MIN_HEADER_LEN || total_len < header_len || total_len > packet.len() {
        return Err(DropReason::Malformed);
    }
    let header = packet.get(..header_len).ok_or(DropReason::Malformed)?;
    if internet_checksum(header) != 0 {
        return Err(DropReason::BadHeaderChecksum);
    }
    let flags = u16::from_be_bytes([fixed[6], fixed[7]]);
    let offset = flags & IPV4_OFFSET_MASK;
    let fragment = offset != 0 || flags & IPV4_MORE_FRAGMENTS != 0;
    let src = IpAddr::V4(Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]));
    let protocol = fixed[9];
    if fragment && policy.fragments == FragmentPolicy::Drop {
        return Err(DropReason::FragmentDropped);
    }
    if !fragment && policy.verify_transport_checksums {
        let segment = packet
            .get(header_len..total_len)
            .ok_or(DropReason::Malformed)?;
        verify_transport(src, dst, protocol, segment, false)?;
    }
    Ok(IpSummary {
        src,
        dst,
        protocol,
        len: total_len,
        header_len,
        transport_offset: header_len,
        fragment,
        later_fragment: offset != 0,
        dont_fragment: flags & IPV4_DONT_FRAGMENT != 0,
        extension_headers: false,
    })
}

/// Checks the upper-layer header lengths and checksum of an unfragmented packet's
/// `segment`. Protocols other than TCP, UDP, ICMPv4 (over IPv4) and ICMPv6 (over IPv6)
/// are not looked at.
pub(crate) fn verify_transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    segment: &[u8],
    ipv6: bool,
) -> Result<(), DropReason> {
    match protocol {
        PROTOCOL_TCP => {
            let data_offset = segment
                .get(12)
                .map(|b| usize::from(b >> 4) * 4)
                .ok_or(DropReason::Malformed)?;
            if data_offset < 20 || data_offset > segment.len() {
                return Err(DropReason::Malformed);
            }
            checked(transport_checksum(src, dst, protocol, segment))
        }
        PROTOCOL_UDP => {
            let header = segment.first_chunk::<8>().ok_or(DropReason::Malformed)?;
            let udp_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            if udp_len != segment.len() {
                return Err(DropReason::Malformed);
            }
            if header[6] == 0 && header[7] == 0 {
                // No checksum: allowed over IPv4, forbidden over IPv6 (RFC 8200 8.1).
                return if ipv6 {
                    Err(DropReason::BadChecksum)
                } else {
                    Ok(())
                };
            }
            checked(transport_checksum(src, dst, protocol, segment))
        }
        PROTOCOL_ICMP if !ipv6 => {
            if segment.len() < 8 {
                return Err(DropReason::Malformed);
            }
            checked(internet_checksum(segment))
        }
        PROTOCOL_ICMPV6 if ipv6 => {
            if segment.len() < 4 {
                return Err(DropReason::Malformed);
            }
            checked(transport_checksum(src, dst, protocol, segment))
        }
        _ => Ok(()),
    }
}

fn checked(checksum: u16) -> Result<(), DropReason> {
    if checksum == 0 {
        Ok(())
    } else {
        Err(DropReason::BadChecksum)
    }
}
