//! Boundary tests: the policy in both directions (checksums, fragments, IPv6 extension
//! headers, malformed input), the trace hook, and random input never panicking while every
//! drop is counted.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::test_support::*;
use super::*;
use crate::wire::mac::Mac;

/// Sends `packet` both ways (A's TUN; a frame from A to B) and returns both outcomes.
fn both_ways(a: &mut Boundary, b: &mut Boundary, packet: &[u8]) -> (FromTun, FromNetwork) {
    let (ma, mb) = (member(A, 1), member(B, 2));
    let mut frame = Vec::new();
    let out = a.from_tun(0, packet, &mut frame);
    let (inbound, _) = deliver(b, 0, &ip_frame(mb.mac, ma.mac, packet));
    (out, inbound)
}

fn assert_dropped_both_ways(packet: &[u8], reason: DropReason) {
    let (mut a, _, mut b, _) = pair();
    let (out, inbound) = both_ways(&mut a, &mut b, packet);
    assert_eq!(out, FromTun::Dropped(reason));
    assert_eq!(inbound, FromNetwork::Dropped(reason));
    let name = reason.as_str();
    let counted = |c: &BoundaryCounters| c.iter().filter(|(_, v)| *v > 0).count();
    assert_eq!(counted(a.counters()), 1, "{name}: {:?}", a.counters());
    assert_eq!(counted(b.counters()), 1, "{name}: {:?}", b.counters());
}

fn corrupt_last_byte(mut packet: Vec<u8>) -> Vec<u8> {
    *packet.last_mut().unwrap() ^= 0x5a;
    packet
}

#[test]
fn bad_ipv4_header_checksum_is_dropped() {
    let (ma, mb) = (member(A, 1), member(B, 2));
    let mut packet = ping4(ma.v4, mb.v4, 8);
    packet[8] -= 1; // TTL changed, checksum not
    assert_dropped_both_ways(&packet, DropReason::BadHeaderChecksum);
}

#[test]
fn bad_transport_checksums_are_dropped() {
    let (ma, mb) = (member(A, 1), member(B, 2));
    let cases = [
        ("tcp4", tcp4(ma.v4, mb.v4, b"hello")),
        ("udp4", udp4(ma.v4, mb.v4, b"hello")),
        ("icmp4", ping4(ma.v4, mb.v4, 9)),
        ("udp6", udp6(ma.rfc4193, mb.rfc4193, b"hello")),
        ("icmpv6", ping6(ma.rfc4193, mb.rfc4193, 9)),
    ];
    for (name, packet) in cases {
        let (mut a, _, mut b, _) = pair();
        let (out, inbound) = both_ways(&mut a, &mut b, &packet);
        assert!(!matches!(out, FromTun::Dropped(_)), "{name} valid: {out:?}");
        assert!(
            matches!(inbound, FromNetwork::ToTun(_)),
            "{name} valid: {inbound:?}"
        );
        let bad = corrupt_last_byte(packet);
        let (mut a, _, mut b, _) = pair();
        let (out, inbound) = both_ways(&mut a, &mut b, &bad);
        assert_eq!(out, FromTun::Dropped(DropReason::BadChecksum), "{name}");
        assert_eq!(
            inbound,
            FromNetwork::Dropped(DropReason::BadChecksum),
            "{name}"
        );
        assert_eq!(a.counters().to_network_bad_checksum, 1, "{name}");
        assert_eq!(b.counters().to_tun_bad_checksum, 1, "{name}");
    }
}

#[test]
fn zero_udp_checksum_is_none_over_ipv4_only() {
    let (ma, mb) = (member(A, 1), member(B, 2));
    let mut v4 = udp4(ma.v4, mb.v4, b"x");
    v4[26..28].fill(0);
    let (mut a, _, mut b, _) = pair();
    assert!(matches!(
        both_ways(&mut a, &mut b, &v4).1,
        FromNetwork::ToTun(_)
    ));
    let mut v6 = udp6(ma.rfc4193, mb.rfc4193, b"x");
    v6[46..48].fill(0);
    assert_dropped_both_ways(&v6, DropReason::BadChecksum);
}

#[test]
fn transport_verification_can_be_turned_off() {
    let (mut a, ma, mut b, mb) = pair();
    let mut config = b.config().clone();
    config.policy.verify_transport_checksums = false;
    b.reconfigure(config);
    let bad = corrupt_last_byte(tcp4(ma.v4, mb.v4, b"hello"));
    assert!(matches!(
        both_ways(&mut a, &mut b, &bad).1,
        FromNetwork::ToTun(_)
    ));
    // The IPv4 header checksum is always checked.
    let mut bad_header = ping4(ma.v4, mb.v4, 1);
    bad_header[8] -= 1;
    let outcome = both_ways(&mut a, &mut b, &bad_header).1;
    assert_eq!(outcome, FromNetwork::Dropped(DropReason::BadHeaderChecksum));
}

fn with_fragment_policy(fragments: FragmentPolicy) -> (Boundary, Boundary) {
    let (mut a, _, mut b, _) = pair();
    for boundary in [&mut a, &mut b] {
        let mut config = boundary.config().clone();
        config.policy.fragments = fragments;
        boundary.reconfigure(config);
    }
    (a, b)
}

#[test]
fn fragments_follow_the_policy() {
    let (ma, mb) = (member(A, 1), member(B, 2));
    let mut first = ping4(ma.v4, mb.v4, 64);
    set_ipv4_flags(&mut first, 0x2000); // MF
    let mut later = corrupt_last_byte(ping4(ma.v4, mb.v4, 64));
    set_ipv4_flags(&mut later, 100); // offset 800 bytes: its checksum cannot be verified
    let mut v6_fragment = vec![58, 0, 0, 1, 0, 0, 0, 9]; // offset 0, M=1
    v6_fragment = ipv6_with_chain(ma.rfc4193, mb.rfc4193, 44, &v6_fragment);
    let atomic = ipv6_with_chain(ma.rfc4193, mb.rfc4193, 44, &[58, 0, 0, 0, 0, 0, 0, 9]);

    let (mut a, mut b) = with_fragment_policy(FragmentPolicy::Pass);
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    b.set_trace(Some(Box::new(move |r: &TraceRecord| {
        sink.lock().unwrap().push(*r)
    })));
    for packet in [&first, &later, &v6_fragment] {
        assert!(matches!(
            both_ways(&mut a, &mut b, packet).1,
            FromNetwork::ToTun(_)
        ));
    }
    assert_eq!(b.counters().to_tun_fragments_passed, 3);
    assert_eq!(a.counters().to_network_fragments_passed, 3);
    let passed = records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.event == TraceEvent::FragmentPassed)
        .count();
    assert_eq!(passed, 3);
    // An atomic fragment is a whole packet: not counted as a fragment.
    assert!(matches!(
        both_ways(&mut a, &mut b, &atomic).1,
        FromNetwork::ToTun(_)
    ));
    assert_eq!(b.counters().to_tun_fragments_passed, 3);

    let (mut a, mut b) = with_fragment_policy(FragmentPolicy::Drop);
    for packet in [&first, &later, &v6_fragment] {
        let (out, inbound) = both_ways(&mut a, &mut b, packet);
        assert_eq!(out, FromTun::Dropped(DropReason::FragmentDropped));
        assert_eq!(inbound, FromNetwork::Dropped(DropReason::FragmentDropped));
    }
    assert_eq!(a.counters().to_network_fragments_dropped, 3);
    assert_eq!(b.counters().to_tun_fragments_dropped, 3);
}

#[test]
fn extension_headers_follow_the_policy() {
    let (ma, mb) = (member(A, 1), member(B, 2));
    let v6 = |first: u8, chain: &[u8]| ipv6_with_chain(ma.rfc4193, mb.rfc4193, first, chain);
    let known = v6(0, &[options_header(60), options_header(58)].concat());
    let (mut a, _, mut b, _) = pair();
    let (out, inbound) = both_ways(&mut a, &mut b, &known);
    assert_eq!(out, FromTun::ToNetwork);
    assert!(matches!(inbound, FromNetwork::ToTun(_)));
    assert_eq!(b.counters().to_tun_ext_headers_passed, 1);
    assert_eq!(a.counters().to_network_ext_headers_passed, 1);
    // Routing type 4 with no segments left is fine; type 0 never is.
    let routing = v6(43, &[58, 0, 4, 0, 0, 0, 0, 0]);
    assert!(matches!(
        both_ways(&mut a, &mut b, &routing).1,
        FromNetwork::ToTun(_)
    ));
    assert_dropped_both_ways(
        &v6(43, &[58, 0, 0, 0, 0, 0, 0, 0]),
        DropReason::RoutingHeaderType0,
    );

    assert_dropped_both_ways(
        &v6(139, &options_header(58)),
        DropReason::UnknownExtensionHeader,
    );
    let nine: Vec<u8> = (0..9)
        .flat_map(|i| options_header(if i == 8 { 58 } else { 60 }))
        .collect();
    assert_dropped_both_ways(&v6(60, &nine), DropReason::ExtensionChainTooLong);
    let mut huge = vec![58, 64];
    huge.resize(65 * 8, 0);
    assert_dropped_both_ways(&v6(60, &huge), DropReason::ExtensionChainTooLong);
    let late_hop_by_hop = [options_header(0), options_header(58)].concat();
    assert_dropped_both_ways(&v6(60, &late_hop_by_hop), DropReason::Malformed);
    // The chain claims more bytes than the packet has.
    let mut truncated = v6(60, &[58, 3, 1, 4, 0, 0, 0, 0]);
    truncated[5] = 8;
    truncated.truncate(48);
    assert_dropped_both_ways(&truncated, DropReason::Malformed);

    let (mut a, _, mut b, _) = pair();
    for boundary in [&mut a, &mut b] {
        let mut config = boundary.config().clone();
        config.policy.extension_headers = ExtensionPolicy::Drop;
        boundary.reconfigure(config);
    }
    let (out, inbound) = both_ways(&mut a, &mut b, &known);
    assert_eq!(out, FromTun::Dropped(DropReason::ExtensionHeaderDropped));
    assert_eq!(
        inbound,
        FromNetwork::Dropped(DropReason::ExtensionHeaderDropped)
    );
}

#[test]
fn malformed_input_is_dropped_and_counted() {
    let (mut a, ma, mut b, mb) = pair();
    let mut frame = Vec::new();
    assert_eq!(
        a.from_tun(0, &[], &mut frame),
        FromTun::Dropped(DropReason::NotIp)
    );
    assert_eq!(
        a.from_tun(0, &[0x20; 40], &mut frame),
        FromTun::Dropped(DropReason::NotIp)
    );
    assert_eq!(
        a.from_tun(0, &[0x45, 0, 0], &mut frame),
        FromTun::Dropped(DropReason::Malformed)
    );
    let mut long = ping4(ma.v4, mb.v4, 8);
    long[3] += 1; // total length beyond the bytes
    refresh_ipv4_checksum(&mut long);
    assert_dropped_both_ways(&long, DropReason::Malformed);
    let mut short_ihl = ping4(ma.v4, mb.v4, 8);
    short_ihl[0] = 0x44;
    assert_dropped_both_ways(&short_ihl, DropReason::Malformed);
    let mut short_v6 = ping6(ma.rfc4193, mb.rfc4193, 8);
    short_v6.truncate(50);
    assert_dropped_both_ways(&short_v6, DropReason::Malformed);

    let v6 = ping6(ma.rfc4193, mb.rfc4193, 8);
    let mut mislabelled = ip_frame(mb.mac, ma.mac, &v6);
    mislabelled[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    assert_eq!(
        deliver(&mut b, 0, &mislabelled).0,
        FromNetwork::Dropped(DropReason::Malformed)
    );
    assert_eq!(
        deliver(&mut b, 0, &[1, 2, 3]).0,
        FromNetwork::Dropped(DropReason::Malformed)
    );
    let mut lldp = ip_frame(mb.mac, ma.mac, &v6);
    lldp[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    let outcome = deliver(&mut b, 0, &lldp).0;
    assert_eq!(
        outcome,
        FromNetwork::Dropped(DropReason::UnsupportedEthertype)
    );
    let other = ip_frame(Mac([2, 1, 1, 1, 1, 1]), ma.mac, &v6);
    assert_eq!(
        deliver(&mut b, 0, &other).0,
        FromNetwork::Dropped(DropReason::NotForUs)
    );
    let mut config = b.config().clone();
    config.broadcast = false;
    b.reconfigure(config);
    let broadcast = ip_frame(Mac::BROADCAST, ma.mac, &udp4(ma.v4, mb.v4, b"x"));
    let outcome = deliver(&mut b, 0, &broadcast).0;
    assert_eq!(outcome, FromNetwork::Dropped(DropReason::BroadcastDisabled));
    let c = b.counters();
    assert_eq!((c.to_tun_malformed, c.to_tun_unsupported_ethertype), (2, 1));
    assert_eq!((c.to_tun_not_for_us, c.to_tun_broadcast_disabled), (1, 1));

    // Ethernet padding after the IP packet is not delivered.
    let ping = ping4(ma.v4, mb.v4, 2);
    let mut padded = ip_frame(mb.mac, ma.mac, &ping);
    padded.resize(60, 0);
    match deliver(&mut b, 0, &padded).0 {
        FromNetwork::ToTun(range) => assert_eq!(padded[range], ping[..]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trace_hook_reports_drops_with_a_summary() {
    let (mut a, ma, _, mb) = pair();
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    a.set_trace(Some(Box::new(move |r: &TraceRecord| {
        sink.lock().unwrap().push(*r)
    })));
    let bad = corrupt_last_byte(udp4(ma.v4, mb.v4, b"abc"));
    let mut frame = Vec::new();
    a.from_tun(0, &bad, &mut frame);
    let records = records.lock().unwrap();
    assert_eq!(
        records[..],
        [TraceRecord {
            direction: Direction::ToNetwork,
            event: TraceEvent::Dropped(DropReason::BadChecksum),
            protocol: Some(17),
            src: Some(ma.v4.into()),
            dst: Some(mb.v4.into()),
            len: bad.len(),
        }]
    );
}

fn total(counters: &BoundaryCounters) -> u64 {
    counters.iter().map(|(_, v)| v).sum()
}

/// Feeds `bytes` both ways; every drop must move a counter (H2.10).
fn feed(a: &mut Boundary, now: u64, bytes: &[u8]) {
    let mut frame = Vec::new();
    let before = total(a.counters());
    if let FromTun::Dropped(_) = a.from_tun(now, bytes, &mut frame) {
        assert!(total(a.counters()) > before);
    }
    let before = total(a.counters());
    match a.from_network(now, bytes, &mut frame) {
        FromNetwork::Dropped(_) => assert!(total(a.counters()) > before),
        FromNetwork::ToTun(range) => assert!(range.end <= bytes.len()),
        _ => {}
    }
    a.handle_timeout(now + 10_000);
    drain_network(a);
    drain_tun(a);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        now in 0u64..1_000_000,
    ) {
        let (mut a, _, _, _) = pair();
        feed(&mut a, now, &data);
    }

    #[test]
    fn mutated_packets_never_panic(
        flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6),
        cut in 0usize..200,
    ) {
        let (mut a, ma, _, mb) = pair();
        let packets = [
            ping4(ma.v4, mb.v4, 40),
            tcp4(ma.v4, mb.v4, b"0123456789"),
            ping6(ma.v6, mb.v6, 40),
            ipv6_with_chain(
                ma.rfc4193,
                mb.rfc4193,
                0,
                &[options_header(44), [58, 0, 0, 1, 0, 0, 0, 1]].concat(),
            ),
        ];
        for packet in packets {
            let mut tun = packet.clone();
            for (at, value) in &flips {
                if let Some(b) = tun.get_mut(*at) { *b ^= value; }
            }
            tun.truncate(cut.max(1));
            feed(&mut a, 0, &tun);
            let mut frame = ip_frame(ma.mac, mb.mac, &packet);
            for (at, value) in &flips {
                if let Some(b) = frame.get_mut(*at) { *b ^= value; }
            }
            feed(&mut a, 0, &frame);
        }
    }
}
