//! Which outgoing frames are control plane (H2.10): the transmit queue keeps a quarter of its
//! room for control packets, and a frame that opens or finds a connection must not wait
//! behind, or be dropped because of, bulk data. Address resolution (ARP, IPv6 neighbour
//! discovery) and TCP connection openings (SYN, with or without ACK) are control; every
//! other frame is bulk. Reads the payload with bounds only: a short or odd packet is bulk.

use super::transmit::Class;
use crate::wire::ethernet::ethertype;

const IP_PROTOCOL_TCP: u8 = 6;
const IP_PROTOCOL_ICMPV6: u8 = 58;
const TCP_FLAG_SYN: u8 = 0x02;
const TCP_FLAGS_OFFSET: usize = 13;
const IPV6_HEADER_LEN: usize = 40;
/// ICMPv6 router solicitation to redirect (133-137): neighbour discovery.
const NDP_TYPES: std::ops::RangeInclusive<u8> = 133..=137;

/// The queue class of a frame of `ethertype` carrying `payload` (the IP packet).
pub(crate) fn frame_class(ethertype: u16, payload: &[u8]) -> Class {
    if is_control_frame(ethertype, payload) {
        Class::Control
    } else {
        Class::Bulk
    }
}

/// Whether a frame of `ethertype` carrying `payload` is control plane (see the module doc).
pub fn is_control_frame(ethertype: u16, payload: &[u8]) -> bool {
    match ethertype {
        ethertype::ARP => true,
        ethertype::IPV4 => ipv4_is_control(payload),
        ethertype::IPV6 => ipv6_is_control(payload),
        _ => false,
    }
}

fn ipv4_is_control(packet: &[u8]) -> bool {
    let Some(&version_ihl) = packet.first() else {
        return false;
    };
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    // A later fragment carries no TCP header.
    let fragment_offset = packet
        .get(6..8)
        .map_or(1, |b| u16::from_be_bytes([b[0], b[1]]) & 0x1fff);
    version_ihl >> 4 == 4
        && fragment_offset == 0
        && packet.get(9) == Some(&IP_PROTOCOL_TCP)
        && tcp_is_syn(packet.get(header_len..))
}

/// Only a TCP or ICMPv6 header right after the fixed header is looked at; a packet with
/// extension headers is bulk.
fn ipv6_is_control(packet: &[u8]) -> bool {
    if packet.first().map(|b| b >> 4) != Some(6) {
        return false;
    }
    let upper = packet.get(IPV6_HEADER_LEN..);
    match packet.get(6) {
        Some(&IP_PROTOCOL_TCP) => tcp_is_syn(upper),
        Some(&IP_PROTOCOL_ICMPV6) => upper
            .and_then(|icmp| icmp.first())
            .is_some_and(|kind| NDP_TYPES.contains(kind)),
        _ => false,
    }
}

fn tcp_is_syn(segment: Option<&[u8]>) -> bool {
    segment
        .and_then(|tcp| tcp.get(TCP_FLAGS_OFFSET))
        .is_some_and(|flags| flags & TCP_FLAG_SYN != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(flags: u8, fragment_offset: u16) -> Vec<u8> {
        let mut packet = vec![0u8; 40];
        packet[0] = 0x45;
        packet[6..8].copy_from_slice(&fragment_offset.to_be_bytes());
        packet[9] = IP_PROTOCOL_TCP;
        packet[20 + TCP_FLAGS_OFFSET] = flags;
        packet
    }

    fn ipv6(next_header: u8, first_upper_byte: u8, upper_len: usize) -> Vec<u8> {
        let mut packet = vec![0u8; IPV6_HEADER_LEN + upper_len];
        packet[0] = 0x60;
        packet[6] = next_header;
        if upper_len > 0 {
            packet[IPV6_HEADER_LEN] = first_upper_byte;
        }
        packet
    }

    #[test]
    fn connection_openings_and_resolution_are_control() {
        assert_eq!(frame_class(ethertype::ARP, &[]), Class::Control);
        assert_eq!(
            frame_class(ethertype::IPV4, &ipv4_tcp(0x02, 0)),
            Class::Control
        );
        assert_eq!(
            frame_class(ethertype::IPV4, &ipv4_tcp(0x12, 0)),
            Class::Control
        );
        let mut syn6 = ipv6(IP_PROTOCOL_TCP, 0, 20);
        syn6[IPV6_HEADER_LEN + TCP_FLAGS_OFFSET] = TCP_FLAG_SYN;
        assert_eq!(frame_class(ethertype::IPV6, &syn6), Class::Control);
        for ndp in NDP_TYPES {
            assert_eq!(
                frame_class(ethertype::IPV6, &ipv6(IP_PROTOCOL_ICMPV6, ndp, 8)),
                Class::Control
            );
        }
    }

    #[test]
    fn data_and_malformed_packets_are_bulk() {
        // ACK with data, a later fragment, ping, truncated and empty packets.
        assert_eq!(
            frame_class(ethertype::IPV4, &ipv4_tcp(0x10, 0)),
            Class::Bulk
        );
        assert_eq!(
            frame_class(ethertype::IPV4, &ipv4_tcp(0x02, 3)),
            Class::Bulk
        );
        assert_eq!(
            frame_class(ethertype::IPV6, &ipv6(IP_PROTOCOL_ICMPV6, 128, 8)),
            Class::Bulk
        );
        assert_eq!(
            frame_class(ethertype::IPV4, &ipv4_tcp(0x02, 0)[..25]),
            Class::Bulk
        );
        assert_eq!(
            frame_class(ethertype::IPV6, &ipv6(IP_PROTOCOL_ICMPV6, 0, 0)),
            Class::Bulk
        );
        for kind in [ethertype::IPV4, ethertype::IPV6, 0x88b5] {
            assert_eq!(frame_class(kind, &[]), Class::Bulk);
        }
    }
}
