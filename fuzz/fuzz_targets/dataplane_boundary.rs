//! Fuzz target: the TUN boundary (`dataplane::Boundary`) in both directions.
//!
//! Input: a sequence of records `control u8 | u16 length | bytes`. Control bit 0 picks the
//! direction (0: a packet from the TUN, 1: a frame from the network); bit 1 repairs the
//! input so it gets past the first checks (network frames: addressed to us from a member,
//! IPv4 header checksum fixed); bits 2..8 advance the clock (in 100 ms steps) and run the
//! timers. Whatever the boundary sends to the network is handed to a second boundary (the
//! member it resolves), whose answers come back, so resolution and release run too.
//!
//! Invariants: no panic; every drop moves a counter; delivered ranges lie inside the frame;
//! the neighbour table, resolutions and the TUN queue stay within their bounds.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use ztrs::dataplane::{
    Boundary, BoundaryConfig, BoundaryCounters, FromNetwork, FromTun, MAX_PACKETS_PER_DESTINATION,
    MAX_PENDING_DESTINATIONS, MAX_QUEUED_TUN_PACKETS, NEIGHBOUR_CAPACITY, Policy,
};
use ztrs::wire::mac::Mac;
use ztrs::wire::{Address, NetworkId};

const NWID: NetworkId = NetworkId(0x8056_c2e2_1c00_0001);

fn config(address: u64, host: u8) -> BoundaryConfig {
    BoundaryConfig {
        nwid: NWID,
        our_mac: Mac::from_address(Address::from_u64(address), NWID),
        mtu: 1280,
        addresses: vec![
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)), 24),
            (
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host))),
                64,
            ),
        ],
        routes: vec![
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 24, None),
            (
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                0,
                Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
            ),
        ],
        broadcast: true,
        policy: Policy::default(),
    }
}

fn total(counters: &BoundaryCounters) -> u64 {
    counters.iter().map(|(_, v)| v).sum()
}

/// Fixes the IPv4 header checksum of `packet` if it looks like IPv4.
fn repair_ipv4(packet: &mut [u8]) {
    let header_len = packet.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    if packet.first().is_some_and(|b| b >> 4 == 4) && header_len >= 20 && packet.len() >= header_len
    {
        packet[10] = 0;
        packet[11] = 0;
        let mut sum = 0u32;
        for pair in packet[..header_len].chunks(2) {
            sum += u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        packet[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
}

/// Drains `from`'s frames into `to`, whose replies go back to `from`; checks the bounds.
fn exchange(from: &mut Boundary, to: &mut Boundary, now: u64) {
    let mut frame = Vec::new();
    let mut reply = Vec::new();
    while from.poll_to_network(&mut frame) {
        if to.from_network(now, &frame, &mut reply) == FromNetwork::ToNetwork {
            let _ = from.from_network(now, &reply, &mut frame);
        }
    }
    let mut packet = Vec::new();
    let mut generated = 0;
    while from.poll_to_tun(&mut packet) {
        generated += 1;
    }
    assert!(generated <= MAX_QUEUED_TUN_PACKETS);
}

fuzz_target!(|data: &[u8]| {
    let mut a = Boundary::new(config(0x00aa_bbcc_dd01, 1));
    let mut b = Boundary::new(config(0x0011_2233_4402, 2));
    let a_mac = a.config().our_mac;
    let b_mac = b.config().our_mac;
    let mut now = 0u64;
    let mut rest = data;
    let mut out = Vec::new();
    while rest.len() >= 3 {
        let control = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let take = len.min(rest.len() - 3);
        let mut bytes = rest[3..3 + take].to_vec();
        rest = &rest[3 + take..];
        let repair = control & 2 != 0;
        let before = total(a.counters());
        if control & 1 == 0 {
            if repair {
                repair_ipv4(&mut bytes);
            }
            if let FromTun::Dropped(_) = a.from_tun(now, &bytes, &mut out) {
                assert!(total(a.counters()) > before);
            }
        } else {
            if repair && bytes.len() >= 14 {
                bytes[..6].copy_from_slice(&a_mac.0);
                bytes[6..12].copy_from_slice(&b_mac.0);
                repair_ipv4(&mut bytes[14..]);
            }
            match a.from_network(now, &bytes, &mut out) {
                FromNetwork::Dropped(_) => assert!(total(a.counters()) > before),
                FromNetwork::ToTun(range) => assert!(range.start >= 14 && range.end <= bytes.len()),
                _ => {}
            }
        }
        now += u64::from(control >> 2) * 100;
        a.handle_timeout(now);
        b.handle_timeout(now);
        exchange(&mut a, &mut b, now);
        exchange(&mut b, &mut a, now);
        assert!(a.neighbour_count() <= NEIGHBOUR_CAPACITY);
        let (destinations, packets) = a.pending_resolutions();
        assert!(destinations <= MAX_PENDING_DESTINATIONS);
        assert!(packets <= MAX_PENDING_DESTINATIONS * MAX_PACKETS_PER_DESTINATION);
    }
});
