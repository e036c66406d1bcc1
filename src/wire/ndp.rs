//! IPv6 neighbor discovery, as far as NDP emulation needs it (protocol 9.4): parse a
//! neighbor solicitation read from the TAP, build the neighbor advertisement the node
//! injects back (flags 0x60, target link-layer option, hop limit 255, ICMPv6 checksum).
//!
//! Both work on a bare IPv6 packet (the Ethernet payload) without extension headers.
//!
//! ```text
//! IPv6:  0 ver/class/flow(4) 4 u16 payload len 6 next header=58 7 hop limit 8 src(16) 24 dst(16)
//! ICMPv6 NS/NA: 40 type 41 code 42 u16 checksum 44 flags/reserved(4) 48 target(16) 64 options
//! ```

use std::net::Ipv6Addr;

use super::cursor::{Reader, Writer};
use super::ethernet::{EthernetHeader, ethertype};
use super::mac::Mac;
use super::{Error, Result};

pub const IPV6_HEADER_LEN: usize = 40;
/// IPv6 next-header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
pub const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
pub const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Hop limit every ND message carries (receivers drop anything else: it proves on-link).
pub const ND_HOP_LIMIT: u8 = 255;
/// NA flag byte: router.
pub const NA_FLAG_ROUTER: u8 = 0x80;
/// NA flag byte: solicited.
pub const NA_FLAG_SOLICITED: u8 = 0x40;
/// NA flag byte: override.
pub const NA_FLAG_OVERRIDE: u8 = 0x20;
const OPTION_SOURCE_LINK_ADDR: u8 = 1;
const OPTION_TARGET_LINK_ADDR: u8 = 2;
/// ICMPv6 NS/NA body before the options: type, code, checksum, flags/reserved, target.
const ND_BODY_LEN: usize = 24;

/// The Internet checksum of ICMPv6 `message` with the IPv6 pseudo-header. Computed over a
/// message whose checksum field is zero it gives the value to store; over a received message
/// it gives 0 when the stored checksum is right.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    fn add(sum: u64, bytes: &[u8]) -> u64 {
        let mut chunks = bytes.chunks_exact(2);
        let mut sum = chunks
            .by_ref()
            .fold(sum, |s, c| s + u64::from(u16::from_be_bytes([c[0], c[1]])));
        if let [last] = chunks.remainder() {
            sum += u64::from(*last) << 8;
        }
        sum
    }
    let mut sum = add(0, &src.octets());
    sum = add(sum, &dst.octets());
    sum += message.len() as u64 + u64::from(NEXT_HEADER_ICMPV6);
    sum = add(sum, message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The fields of a bare IPv6 packet carrying ICMPv6, after checks; `message` is the ICMPv6
/// message (checksum verified).
struct Icmpv6<'a> {
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    message: &'a [u8],
}

fn parse_icmpv6(packet: &[u8]) -> Result<Icmpv6<'_>> {
    let mut r = Reader::new(packet);
    let version = r.u8("ipv6 version")? >> 4;
    if version != 6 {
        return Err(Error::Malformed("ipv6 version"));
    }
    r.skip(3, "ipv6 flow label")?;
    let payload_len = r.u16("ipv6 payload length")?;
    if r.u8("ipv6 next header")? != NEXT_HEADER_ICMPV6 {
        return Err(Error::Unsupported(
            "ipv6 next header (only ICMPv6 without extension headers)",
        ));
    }
    let hop_limit = r.u8("ipv6 hop limit")?;
    let src = Ipv6Addr::from(r.array::<16>("ipv6 source")?);
    let dst = Ipv6Addr::from(r.array::<16>("ipv6 destination")?);
    // Anything after the payload length (Ethernet padding) is ignored.
    let message = r.bytes(usize::from(payload_len), "ipv6 payload")?;
    if icmpv6_checksum(src, dst, message) != 0 {
        return Err(Error::Malformed("icmpv6 checksum"));
    }
    Ok(Icmpv6 {
        hop_limit,
        src,
        dst,
        message,
    })
}

/// Reads an NS/NA body of type `expected`; returns (flags byte, target, link-layer option
/// of kind `option`).
fn parse_nd(message: &[u8], expected: u8, option: u8) -> Result<(u8, Ipv6Addr, Option<Mac>)> {
    let mut r = Reader::new(message);
    if r.u8("icmpv6 type")? != expected {
        return Err(Error::Unsupported("icmpv6 type"));
    }
    if r.u8("icmpv6 code")? != 0 {
        return Err(Error::Malformed("icmpv6 code"));
    }
    r.skip(2, "icmpv6 checksum")?;
    let flags = r.u8("nd flags")?;
    r.skip(3, "nd reserved")?;
    let target = Ipv6Addr::from(r.array::<16>("nd target")?);
    if target.is_multicast() {
        return Err(Error::Malformed("nd target (multicast)"));
    }
    let mut link_addr = None;
    while !r.is_empty() {
        let kind = r.u8("nd option type")?;
        let units = r.u8("nd option length")?;
        if units == 0 {
            return Err(Error::Malformed("nd option length (zero)"));
        }
        let body = r.bytes(usize::from(units) * 8 - 2, "nd option")?;
        if kind == option && link_addr.is_none() {
            link_addr = Some(Mac::from_slice(body)?);
        }
    }
    Ok((flags, target, link_addr))
}

/// Appends an IPv6 header plus an NS/NA message (checksum filled in).
fn emit_nd(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: u8,
    flags: u8,
    target: Ipv6Addr,
    option: Option<(u8, Mac)>,
    out: &mut Vec<u8>,
) {
    let mut message = Vec::with_capacity(ND_BODY_LEN + 8);
    message.put_u8(kind);
    message.put_u8(0);
    message.put_u16(0);
    message.put_u8(flags);
    message.put_bytes(&[0; 3]);
    message.put_bytes(&target.octets());
    if let Some((kind, mac)) = option {
        message.put_u8(kind);
        message.put_u8(1);
        message.put_bytes(&mac.0);
    }
    let checksum = icmpv6_checksum(src, dst, &message);
    message[2..4].copy_from_slice(&checksum.to_be_bytes());

    out.put_u32(0x6000_0000);
    out.put_u16(message.len() as u16);
    out.put_u8(NEXT_HEADER_ICMPV6);
    out.put_u8(ND_HOP_LIMIT);
    out.put_bytes(&src.octets());
    out.put_bytes(&dst.octets());
    out.put_bytes(&message);
}

/// A neighbor solicitation (ICMPv6 type 135).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeighborSolicitation {
    /// IPv6 source: the asking host's address, or `::` for duplicate address detection.
    pub source: Ipv6Addr,
    /// IPv6 destination: usually the target's solicited-node multicast group.
    pub destination: Ipv6Addr,
    /// The address being resolved.
    pub target: Ipv6Addr,
    /// The source link-layer address option, if present.
    pub source_link_addr: Option<Mac>,
}

impl NeighborSolicitation {
    /// Parses a bare IPv6 packet; checks version, next header, hop limit 255, the ICMPv6
    /// checksum, type and code, a unicast target and well-formed options.
    pub fn parse(ipv6_packet: &[u8]) -> Result<NeighborSolicitation> {
        let p = parse_icmpv6(ipv6_packet)?;
        if p.hop_limit != ND_HOP_LIMIT {
            return Err(Error::Malformed("nd hop limit (must be 255)"));
        }
        let (_, target, source_link_addr) = parse_nd(
            p.message,
            ICMPV6_NEIGHBOR_SOLICITATION,
            OPTION_SOURCE_LINK_ADDR,
        )?;
        Ok(NeighborSolicitation {
            source: p.src,
            destination: p.dst,
            target,
            source_link_addr,
        })
    }

    /// Appends the IPv6 packet.
    pub fn emit(&self, out: &mut Vec<u8>) {
        emit_nd(
            self.source,
            self.destination,
            ICMPV6_NEIGHBOR_SOLICITATION,
            0,
            self.target,
            self.source_link_addr
                .map(|mac| (OPTION_SOURCE_LINK_ADDR, mac)),
            out,
        );
    }
}

/// A neighbor advertisement (ICMPv6 type 136).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeighborAdvertisement {
    pub source: Ipv6Addr,
    pub destination: Ipv6Addr,
    /// The flag byte: [`NA_FLAG_ROUTER`] | [`NA_FLAG_SOLICITED`] | [`NA_FLAG_OVERRIDE`].
    pub flags: u8,
    pub target: Ipv6Addr,
    /// The target link-layer address option, if present.
    pub target_link_addr: Option<Mac>,
}

impl NeighborAdvertisement {
    /// The advertisement NDP emulation injects for `solicitation`, claiming `target_mac`
    /// for its target: from the target address to the asker, solicited + override. `None`
    /// for duplicate address detection (source `::`), which must never be answered for
    /// someone else's address.
    pub fn answer(
        solicitation: &NeighborSolicitation,
        target_mac: Mac,
    ) -> Option<NeighborAdvertisement> {
        if solicitation.source.is_unspecified() {
            return None;
        }
        Some(NeighborAdvertisement {
            source: solicitation.target,
            destination: solicitation.source,
            flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
            target: solicitation.target,
            target_link_addr: Some(target_mac),
        })
    }

    /// Parses a bare IPv6 packet (same checks as [`NeighborSolicitation::parse`]).
    pub fn parse(ipv6_packet: &[u8]) -> Result<NeighborAdvertisement> {
        let p = parse_icmpv6(ipv6_packet)?;
        if p.hop_limit != ND_HOP_LIMIT {
            return Err(Error::Malformed("nd hop limit (must be 255)"));
        }
        let (flags, target, target_link_addr) = parse_nd(
            p.message,
            ICMPV6_NEIGHBOR_ADVERTISEMENT,
            OPTION_TARGET_LINK_ADDR,
        )?;
        Ok(NeighborAdvertisement {
            source: p.src,
            destination: p.dst,
            flags,
            target,
            target_link_addr,
        })
    }

    /// Appends the IPv6 packet (72 bytes with the link-layer option).
    pub fn emit(&self, out: &mut Vec<u8>) {
        emit_nd(
            self.source,
            self.destination,
            ICMPV6_NEIGHBOR_ADVERTISEMENT,
            self.flags,
            self.target,
            self.target_link_addr
                .map(|mac| (OPTION_TARGET_LINK_ADDR, mac)),
            out,
        );
    }

    /// Appends a whole Ethernet frame from `src` to `dst` carrying this advertisement.
    pub fn emit_frame(&self, dst: Mac, src: Mac, out: &mut Vec<u8>) {
        EthernetHeader {
            dst,
            src,
            ethertype: ethertype::IPV6,
        }
        .emit(out);
        self.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::EthernetFrame;
    use proptest::prelude::*;

    fn solicitation() -> NeighborSolicitation {
        NeighborSolicitation {
            source: "fd80:56c2:e21c:0:199:9311:2233:4455".parse().unwrap(),
            destination: "ff02::1:ffdf:e12c".parse().unwrap(),
            target: "fd80:56c2:e21c:0:199:937c:2dfe:e12c".parse().unwrap(),
            source_link_addr: Some("02:11:22:0f:ab:b7".parse().unwrap()),
        }
    }

    #[test]
    fn answer_matches_the_reference_layout() {
        let ns = solicitation();
        let mut wire = Vec::new();
        ns.emit(&mut wire);
        assert_eq!(wire.len(), 40 + 32);
        assert_eq!(NeighborSolicitation::parse(&wire), Ok(ns));

        let mac: Mac = "02:7c:2d:e2:03:ee".parse().unwrap();
        let na = NeighborAdvertisement::answer(&ns, mac).unwrap();
        let mut adv = Vec::new();
        na.emit(&mut adv);
        assert_eq!(adv.len(), 72);
        assert_eq!(adv[..8], [0x60, 0, 0, 0, 0, 0x20, 0x3a, 0xff]);
        assert_eq!(adv[8..24], ns.target.octets());
        assert_eq!(adv[24..40], ns.source.octets());
        assert_eq!(adv[40], 0x88);
        assert_eq!(adv[44..48], [0x60, 0, 0, 0]);
        assert_eq!(adv[48..64], ns.target.octets());
        assert_eq!(adv[64..66], [2, 1]);
        assert_eq!(adv[66..72], mac.0);
        assert_eq!(icmpv6_checksum(na.source, na.destination, &adv[40..]), 0);
        assert_eq!(NeighborAdvertisement::parse(&adv), Ok(na));

        let mut frame = Vec::new();
        na.emit_frame(ns.source_link_addr.unwrap(), mac, &mut frame);
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::IPV6);
        assert_eq!(eth.payload(), &adv[..]);
    }

    #[test]
    fn checksum_known_value() {
        // Computed independently (RFC 1071 sum over pseudo-header + message, in Python) for
        // the advertisement of `answer_matches_the_reference_layout`.
        let ns = solicitation();
        let mac: Mac = "02:7c:2d:e2:03:ee".parse().unwrap();
        let mut adv = Vec::new();
        NeighborAdvertisement::answer(&ns, mac)
            .unwrap()
            .emit(&mut adv);
        assert_eq!(adv[42..44], [0xfa, 0x82]);
    }

    #[test]
    fn checksum_catches_corruption() {
        // A message whose stored checksum is right sums to zero; any flipped bit is caught.
        let ns = solicitation();
        let mut wire = Vec::new();
        ns.emit(&mut wire);
        for i in 40..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 0x04;
            assert!(NeighborSolicitation::parse(&bad).is_err(), "byte {i}");
        }
        // Padding after the IPv6 payload is ignored.
        wire.extend_from_slice(&[0; 6]);
        assert_eq!(NeighborSolicitation::parse(&wire), Ok(ns));
    }

    #[test]
    fn rejections() {
        let mut ns = solicitation();
        let mut wire = Vec::new();
        ns.emit(&mut wire);
        let mut hop = wire.clone();
        hop[7] = 64;
        assert!(NeighborSolicitation::parse(&hop).is_err());
        assert!(NeighborAdvertisement::parse(&wire).is_err());
        assert!(NeighborSolicitation::parse(&wire[..wire.len() - 1]).is_err());
        ns.source = Ipv6Addr::UNSPECIFIED;
        assert_eq!(NeighborAdvertisement::answer(&ns, Mac::ZERO), None);
        ns.target = "ff02::1".parse().unwrap();
        wire.clear();
        ns.emit(&mut wire);
        assert!(NeighborSolicitation::parse(&wire).is_err());
    }

    fn v6() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    proptest! {
        #[test]
        fn round_trips(
            source in v6(),
            destination in v6(),
            target in v6().prop_filter("unicast", |t| !t.is_multicast()),
            mac: Option<[u8; 6]>,
            flags in prop_oneof![Just(0u8), Just(0x20), Just(0x40), Just(0x60), Just(0xe0)],
        ) {
            let ns = NeighborSolicitation { source, destination, target, source_link_addr: mac.map(Mac) };
            let mut out = Vec::new();
            ns.emit(&mut out);
            prop_assert_eq!(NeighborSolicitation::parse(&out), Ok(ns));
            let na = NeighborAdvertisement { source, destination, flags, target, target_link_addr: mac.map(Mac) };
            out.clear();
            na.emit(&mut out);
            prop_assert_eq!(NeighborAdvertisement::parse(&out), Ok(na));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = NeighborSolicitation::parse(&data);
            let _ = NeighborAdvertisement::parse(&data);
        }

        /// Arbitrary ICMPv6 bodies behind a valid IPv6 header and checksum, so the option
        /// parser is reached.
        #[test]
        fn arbitrary_nd_bodies_never_panic(
            src in v6(),
            dst in v6(),
            solicitation: bool,
            mut body in proptest::collection::vec(any::<u8>(), 24..100),
        ) {
            body[0] = if solicitation { ICMPV6_NEIGHBOR_SOLICITATION } else { ICMPV6_NEIGHBOR_ADVERTISEMENT };
            body[1] = 0;
            body[2] = 0;
            body[3] = 0;
            let sum = icmpv6_checksum(src, dst, &body);
            body[2..4].copy_from_slice(&sum.to_be_bytes());
            let mut packet = vec![0x60, 0, 0, 0];
            packet.extend_from_slice(&(body.len() as u16).to_be_bytes());
            packet.extend_from_slice(&[NEXT_HEADER_ICMPV6, ND_HOP_LIMIT]);
            packet.extend_from_slice(&src.octets());
            packet.extend_from_slice(&dst.octets());
            packet.extend_from_slice(&body);
            if let Ok(ns) = NeighborSolicitation::parse(&packet) {
                let mut out = Vec::new();
                ns.emit(&mut out);
                prop_assert_eq!(NeighborSolicitation::parse(&out), Ok(ns));
            }
            if let Ok(na) = NeighborAdvertisement::parse(&packet) {
                let mut out = Vec::new();
                na.emit(&mut out);
                prop_assert_eq!(NeighborAdvertisement::parse(&out), Ok(na));
            }
        }
    }
}
