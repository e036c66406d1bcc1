//! What the rules see of a frame: addressing, direction, tags, and lazily parsed, bounds-
//! checked IPv4/IPv6 headers, ports, ICMP and TCP flags of the Ethernet payload.

use std::net::Ipv4Addr;

use super::*;

/// Everything the rules look at for one frame. Frame length in rules
/// (`MATCH_FRAME_SIZE_RANGE`, TEE lengths, `MATCH_INTEGER_RANGE` bounds) is the length of the
/// Ethernet payload, as in the reference.
#[derive(Clone, Copy, Debug)]
pub struct FrameInfo<'a> {
    pub direction: Direction,
    /// This node's address (TEE/REDIRECT targets equal to it are special).
    pub local_address: Address,
    pub source: Address,
    pub dest: Address,
    pub mac_source: Mac,
    pub mac_dest: Mac,
    pub ethertype: u16,
    /// VLAN fields are always 0 on a ZeroTier tap (the reference never fills them).
    pub vlan_id: u16,
    pub vlan_pcp: u8,
    pub vlan_dei: u8,
    /// The Ethernet payload (no Ethernet header).
    pub payload: &'a [u8],
    /// `(tag id, value)` held by the sending member (ours when outbound).
    pub sender_tags: &'a [(u32, u32)],
    /// `(tag id, value)` held by the receiving member (ours when inbound). For the remote
    /// side, only tags whose credentials were received and checked.
    pub receiver_tags: &'a [(u32, u32)],
    /// Whether the sender has a certificate of ownership for the source IP / source MAC
    /// (`MATCH_CHARACTERISTICS` bits; the network layer computes them, default false).
    pub sender_ip_authenticated: bool,
    pub sender_mac_authenticated: bool,
}

impl<'a> FrameInfo<'a> {
    /// A frame with no tags, VLAN 0 and no ownership proofs.
    pub fn new(
        direction: Direction,
        local_address: Address,
        source: (Address, Mac),
        dest: (Address, Mac),
        ethertype: u16,
        payload: &'a [u8],
    ) -> FrameInfo<'a> {
        FrameInfo {
            direction,
            local_address,
            source: source.0,
            dest: dest.0,
            mac_source: source.1,
            mac_dest: dest.1,
            ethertype,
            vlan_id: 0,
            vlan_pcp: 0,
            vlan_dei: 0,
            payload,
            sender_tags: &[],
            receiver_tags: &[],
            sender_ip_authenticated: false,
            sender_mac_authenticated: false,
        }
    }

    /// The same frame with the members' tags.
    pub fn with_tags(
        mut self,
        sender_tags: &'a [(u32, u32)],
        receiver_tags: &'a [(u32, u32)],
    ) -> FrameInfo<'a> {
        self.sender_tags = sender_tags;
        self.receiver_tags = receiver_tags;
        self
    }

    pub(super) fn inbound(&self) -> bool {
        self.direction == Direction::Inbound
    }

    pub(super) fn byte(&self, at: usize) -> Option<u8> {
        self.payload.get(at).copied()
    }

    pub(super) fn be16(&self, at: usize) -> Option<u16> {
        let b = self.payload.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    /// The IPv4 header if the frame is IPv4 and at least a minimal header long.
    pub(super) fn ipv4(&self) -> Option<Ipv4View<'a>> {
        if self.ethertype != ETHERTYPE_IPV4 || self.payload.len() < IPV4_HEADER_MIN {
            return None;
        }
        Some(Ipv4View {
            bytes: self.payload,
        })
    }

    /// The IPv6 fixed header is present.
    pub(super) fn is_ipv6_header(&self) -> bool {
        self.ethertype == ETHERTYPE_IPV6 && self.payload.len() >= IPV6_HEADER_LEN
    }

    /// Offset and protocol of the IPv6 upper-layer payload, after walking hop-by-hop,
    /// routing, destination-options and mobility headers; `None` if not IPv6 or malformed.
    pub(super) fn ipv6_upper(&self) -> Option<(usize, u8)> {
        if !self.is_ipv6_header() {
            return None;
        }
        let len = self.payload.len();
        let mut pos = IPV6_HEADER_LEN;
        let mut proto = self.byte(6)?;
        for _ in 0..=MAX_IPV6_EXTENSION_HEADERS {
            if pos > len {
                return None;
            }
            match proto {
                0 | 43 | 60 | 135 => {
                    if pos.checked_add(8)? > len {
                        return None;
                    }
                    proto = self.byte(pos)?;
                    let ext_len = usize::from(self.byte(pos + 1)?) * 8 + 8;
                    pos += ext_len;
                }
                _ => return Some((pos, proto)),
            }
        }
        None
    }

    /// The 12 TCP flag bits, if this is a TCP segment whose flags are inside the frame.
    pub(super) fn tcp_flags(&self) -> Option<u64> {
        let at = if let Some(ip) = self.ipv4() {
            if ip.protocol() != IP_PROTO_TCP {
                return None;
            }
            ip.header_len()
        } else {
            let (pos, proto) = self.ipv6_upper()?;
            if proto != IP_PROTO_TCP || self.payload.len() <= pos + 14 {
                return None;
            }
            pos
        };
        let high = self.byte(at + 12)?;
        let low = self.byte(at + 13)?;
        Some((u64::from(high & 0x0f) << 8) | u64::from(low))
    }

    pub(super) fn characteristics(&self) -> u64 {
        let mut cf = 0;
        if self.inbound() {
            cf |= CHARACTERISTICS_INBOUND;
        }
        if self.mac_dest.is_multicast() {
            cf |= CHARACTERISTICS_MULTICAST;
        }
        if self.mac_dest.is_broadcast() {
            cf |= CHARACTERISTICS_BROADCAST;
        }
        if self.sender_ip_authenticated {
            cf |= CHARACTERISTICS_SENDER_IP_AUTHENTICATED;
        }
        if self.sender_mac_authenticated {
            cf |= CHARACTERISTICS_SENDER_MAC_AUTHENTICATED;
        }
        cf | self.tcp_flags().unwrap_or(0)
    }

    /// Local and remote tag lists (local = ours).
    pub(super) fn local_remote_tags(&self) -> (TagList<'a>, TagList<'a>) {
        if self.inbound() {
            (self.receiver_tags, self.sender_tags)
        } else {
            (self.sender_tags, self.receiver_tags)
        }
    }
}

/// `(tag id, value)` pairs of one member.
pub(super) type TagList<'a> = &'a [(u32, u32)];

/// A frame's IPv4 header (at least 20 bytes present).
#[derive(Clone, Copy)]
pub(super) struct Ipv4View<'a> {
    bytes: &'a [u8],
}

impl Ipv4View<'_> {
    pub(super) fn at(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// IHL in bytes, as claimed by the header (not checked against the frame).
    pub(super) fn header_len(&self) -> usize {
        usize::from(self.at(0) & 0x0f) * 4
    }

    pub(super) fn tos(&self) -> u8 {
        self.at(1)
    }

    pub(super) fn protocol(&self) -> u8 {
        self.at(9)
    }

    pub(super) fn source(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.at(12), self.at(13), self.at(14), self.at(15))
    }

    pub(super) fn dest(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.at(16), self.at(17), self.at(18), self.at(19))
    }
}
