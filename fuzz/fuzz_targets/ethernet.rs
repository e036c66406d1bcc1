//! Fuzz target: the Ethernet-layer codecs (Ethernet header, ARP, NDP solicitation and
//! advertisement), MAC derivation and managed IPv6 extraction.
//!
//! Invariants: no panic; `parse(emit(x)) == x` for everything that parses; an NDP packet with
//! a repaired header and checksum is parsed deeply (options) without panicking.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use ztrs::wire::arp::{ArpRepr, ipv4_request_target};
use ztrs::wire::ethernet::{EthernetFrame, EthernetHeader};
use ztrs::wire::mac::Mac;
use ztrs::wire::managed_ip;
use ztrs::wire::ndp::{NeighborAdvertisement, NeighborSolicitation, icmpv6_checksum};
use ztrs::wire::{Address, NetworkId};

fn check_ndp(packet: &[u8]) {
    if let Ok(ns) = NeighborSolicitation::parse(packet) {
        let mut out = Vec::new();
        ns.emit(&mut out);
        assert_eq!(NeighborSolicitation::parse(&out), Ok(ns));
        if let Some(na) = NeighborAdvertisement::answer(&ns, Mac([2, 0, 0, 0, 0, 1])) {
            out.clear();
            na.emit(&mut out);
            assert_eq!(NeighborAdvertisement::parse(&out), Ok(na));
        }
    }
    if let Ok(na) = NeighborAdvertisement::parse(packet) {
        let mut out = Vec::new();
        na.emit(&mut out);
        assert_eq!(NeighborAdvertisement::parse(&out), Ok(na));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok((h, payload)) = EthernetHeader::parse(data) {
        let mut out = Vec::new();
        h.emit_frame(payload, &mut out);
        assert_eq!(out, data);
        let f = EthernetFrame::new_checked(data).expect("header parsed");
        assert_eq!(
            (f.dst(), f.src(), f.ethertype()),
            (h.dst, h.src, h.ethertype)
        );
    }

    let _ = ipv4_request_target(data);
    if let Ok(arp) = ArpRepr::parse(data) {
        let mut out = Vec::new();
        arp.emit(&mut out);
        assert_eq!(out[..], data[..out.len()]);
        if let Some(reply) = arp.reply(Mac([2, 0, 0, 0, 0, 1])) {
            out.clear();
            reply.emit(&mut out);
            assert_eq!(ArpRepr::parse(&out), Ok(reply));
        }
    }

    check_ndp(data);
    // Repair the IPv6 header and checksum so the ICMPv6 body and options get exercised.
    if data.len() >= 64 && data.len() - 40 <= usize::from(u16::MAX) {
        let mut p = data.to_vec();
        p[0] = 0x60;
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p[6] = 58;
        p[7] = 255;
        p[40] = if data[0] & 1 == 0 { 135 } else { 136 };
        p[41] = 0;
        p[42..44].fill(0);
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&p[8..24]);
        dst.copy_from_slice(&p[24..40]);
        let sum = icmpv6_checksum(Ipv6Addr::from(src), Ipv6Addr::from(dst), &p[40..]);
        p[42..44].copy_from_slice(&sum.to_be_bytes());
        check_ndp(&p);
    }

    if data.len() >= 14 {
        let mut n = [0u8; 8];
        n.copy_from_slice(&data[..8]);
        let network = NetworkId(u64::from_be_bytes(n));
        if let Ok(mac) = Mac::from_slice(&data[8..]) {
            if let Some(address) = mac.to_address(network) {
                assert_eq!(Mac::from_address(address, network), mac);
            }
        }
        let address = Address::from_slice(&data[8..]).expect("5 bytes");
        assert_eq!(
            Mac::from_address(address, network).to_address(network),
            Some(address)
        );
        if !address.is_reserved() {
            let ip = managed_ip::rfc4193(network, address);
            assert_eq!(managed_ip::embedded_address(ip, network), Some(address));
            let ip = managed_ip::six_plane(network, address);
            assert_eq!(managed_ip::embedded_address(ip, network), Some(address));
        }
        if data.len() >= 24 {
            let mut o = [0u8; 16];
            o.copy_from_slice(&data[8..24]);
            let _ = managed_ip::embedded_address(Ipv6Addr::from(o), network);
        }
    }
});
