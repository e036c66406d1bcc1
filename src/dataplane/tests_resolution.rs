//! Boundary tests: round trips between two hand-wired boundaries (ARP, NDP, rfc4193),
//! neighbour-table poisoning resistance, retries and failure, bounds, reconfiguration.

use std::net::{IpAddr, Ipv4Addr};

use super::test_support::*;
use super::*;
use crate::wire::arp::{ArpOperation, ArpRepr};
use crate::wire::ethernet::EthernetHeader;
use crate::wire::mac::Mac;
use crate::wire::ndp::{NeighborAdvertisement, NeighborSolicitation};
use crate::wire::{Address, NetworkId};

#[test]
fn ipv4_round_trip_through_arp() {
    let (mut a, ma, mut b, mb) = pair();
    let ping = ping4(ma.v4, mb.v4, 56);
    let mut frame = Vec::new();
    assert_eq!(a.from_tun(0, &ping, &mut frame), FromTun::Pending);
    let requests = drain_network(&mut a);
    assert_eq!(requests.len(), 1);
    let (eth, body) = EthernetHeader::parse(&requests[0]).unwrap();
    assert_eq!(
        (eth.dst, eth.src, eth.ethertype),
        (Mac::BROADCAST, ma.mac, 0x0806)
    );
    let request = ArpRepr::parse(body).unwrap();
    assert_eq!(request.operation, ArpOperation::Request);
    assert_eq!((request.sender_ip, request.target_ip), (ma.v4, mb.v4));

    let (outcome, reply) = deliver(&mut b, 0, &requests[0]);
    assert_eq!(outcome, FromNetwork::ToNetwork);
    assert_eq!(b.counters().arp_replies_sent, 1);
    let (eth, _) = EthernetHeader::parse(&reply).unwrap();
    assert_eq!((eth.dst, eth.src), (ma.mac, mb.mac));

    assert_eq!(deliver(&mut a, 5, &reply).0, FromNetwork::Consumed);
    assert_eq!(a.counters().neighbour_learned, 1);
    let released = drain_network(&mut a);
    assert_eq!(released.len(), 1);
    let (eth, _) = EthernetHeader::parse(&released[0]).unwrap();
    assert_eq!((eth.dst, eth.src, eth.ethertype), (mb.mac, ma.mac, 0x0800));
    match deliver(&mut b, 5, &released[0]).0 {
        FromNetwork::ToTun(range) => assert_eq!(released[0][range], ping[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.counters().to_tun_delivered, 1);

    // Resolved: the next packet goes straight out, no request.
    assert_eq!(a.from_tun(10, &ping, &mut frame), FromTun::ToNetwork);
    assert_eq!(frame, released[0]);
    assert!(drain_network(&mut a).is_empty());
    assert_eq!(a.counters().to_network_forwarded, 2);
    assert_eq!(a.counters().resolution_released, 1);
}

#[test]
fn ipv6_round_trip_through_ndp() {
    let (mut a, ma, mut b, mb) = pair();
    let ping = ping6(ma.v6, mb.v6, 40);
    let mut frame = Vec::new();
    assert_eq!(a.from_tun(0, &ping, &mut frame), FromTun::Pending);
    let requests = drain_network(&mut a);
    assert_eq!(requests.len(), 1);
    let (eth, body) = EthernetHeader::parse(&requests[0]).unwrap();
    let o = mb.v6.octets();
    assert_eq!(eth.dst, Mac([0x33, 0x33, 0xff, o[13], o[14], o[15]]));
    let ns = NeighborSolicitation::parse(body).unwrap();
    assert_eq!(
        (ns.source, ns.target, ns.source_link_addr),
        (ma.v6, mb.v6, Some(ma.mac))
    );
    assert_eq!(
        ns.destination.octets()[..13],
        [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]
    );

    let (outcome, reply) = deliver(&mut b, 0, &requests[0]);
    assert_eq!(outcome, FromNetwork::ToNetwork);
    assert_eq!(b.counters().neighbour_advertisements_sent, 1);
    let (eth, body) = EthernetHeader::parse(&reply).unwrap();
    assert_eq!((eth.dst, eth.src), (ma.mac, mb.mac));
    let na = NeighborAdvertisement::parse(body).unwrap();
    assert_eq!((na.target, na.target_link_addr), (mb.v6, Some(mb.mac)));

    assert_eq!(deliver(&mut a, 1, &reply).0, FromNetwork::Consumed);
    let released = drain_network(&mut a);
    assert_eq!(released.len(), 1);
    match deliver(&mut b, 1, &released[0]).0 {
        FromNetwork::ToTun(range) => assert_eq!(released[0][range], ping[..]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc4193_needs_no_resolution() {
    let (mut a, ma, mut b, mb) = pair();
    let ping = ping6(ma.rfc4193, mb.rfc4193, 16);
    let mut frame = Vec::new();
    assert_eq!(a.from_tun(0, &ping, &mut frame), FromTun::ToNetwork);
    assert!(drain_network(&mut a).is_empty(), "no solicitation");
    let (eth, _) = EthernetHeader::parse(&frame).unwrap();
    assert_eq!((eth.dst, eth.src, eth.ethertype), (mb.mac, ma.mac, 0x86dd));
    match deliver(&mut b, 0, &frame).0 {
        FromNetwork::ToTun(range) => assert_eq!(frame[range], ping[..]),
        other => panic!("{other:?}"),
    }
    // Our own rfc4193 address is never a next hop.
    let own = ping6(ma.rfc4193, ma.rfc4193, 0);
    assert_eq!(
        a.from_tun(0, &own, &mut frame),
        FromTun::Dropped(DropReason::NoRoute)
    );
}

#[test]
fn multicast_and_broadcast_destinations() {
    let (mut a, ma, _, _) = pair();
    let mut frame = Vec::new();
    let to = |dst: Ipv4Addr| udp4(ma.v4, dst, b"x");
    assert_eq!(
        a.from_tun(0, &to(Ipv4Addr::new(224, 129, 2, 3)), &mut frame),
        FromTun::ToNetwork
    );
    assert_eq!(frame[..6], [0x01, 0x00, 0x5e, 0x01, 2, 3]);
    assert_eq!(
        a.from_tun(0, &to(Ipv4Addr::new(10, 147, 17, 255)), &mut frame),
        FromTun::ToNetwork
    );
    assert_eq!(frame[..6], [0xff; 6]);
    let ff02 = "ff02::1:2".parse().unwrap();
    assert_eq!(
        a.from_tun(0, &udp6(ma.v6, ff02, b"x"), &mut frame),
        FromTun::ToNetwork
    );
    assert_eq!(frame[..6], [0x33, 0x33, 0, 1, 0, 2]);
    let mut no_broadcast = a.config().clone();
    no_broadcast.broadcast = false;
    a.reconfigure(no_broadcast);
    let outcome = a.from_tun(0, &to(Ipv4Addr::BROADCAST), &mut frame);
    assert_eq!(outcome, FromTun::Dropped(DropReason::BroadcastDisabled));
    let outcome = a.from_tun(0, &to(Ipv4Addr::new(192, 0, 2, 1)), &mut frame);
    assert_eq!(outcome, FromTun::Dropped(DropReason::NoRoute));
    assert_eq!(a.counters().to_network_no_route, 1);
}

#[test]
fn unsolicited_and_gratuitous_answers_change_nothing() {
    let (mut a, ma, _, mb) = pair();
    let mc = member(C, 3);
    // C claims B's address before anybody asked.
    let (outcome, _) = deliver(&mut a, 0, &arp_reply(mc.mac, mb.v4, &ma));
    assert_eq!(
        outcome,
        FromNetwork::Dropped(DropReason::UnsolicitedNeighbour)
    );
    // A gratuitous request from C for B's address.
    let mut gratuitous = Vec::new();
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: mc.mac,
        sender_ip: mb.v4,
        target_mac: Mac::ZERO,
        target_ip: mb.v4,
    }
    .emit_frame(&mut gratuitous);
    let (outcome, _) = deliver(&mut a, 0, &gratuitous);
    assert_eq!(
        outcome,
        FromNetwork::Dropped(DropReason::UnsolicitedNeighbour)
    );
    assert_eq!(a.counters().unsolicited_neighbour_ignored, 2);
    assert_eq!(a.neighbour_count(), 0);
    // Traffic to B still needs resolution: nothing was learned.
    let mut frame = Vec::new();
    assert_eq!(
        a.from_tun(0, &ping4(ma.v4, mb.v4, 8), &mut frame),
        FromTun::Pending
    );
    // An answer whose ARP sender MAC is not the frame source is refused.
    let mut forged = arp_reply(mb.mac, mb.v4, &ma);
    forged[6..12].copy_from_slice(&mc.mac.0);
    assert_eq!(
        deliver(&mut a, 0, &forged).0,
        FromNetwork::Dropped(DropReason::NeighbourBadMac)
    );
    // So is one naming a MAC outside the network's member MAC space.
    let foreign = Mac([0x06, 0xaa, 0, 0, 0, 1]);
    assert_eq!(
        deliver(&mut a, 0, &arp_reply(foreign, mb.v4, &ma)).0,
        FromNetwork::Dropped(DropReason::NeighbourBadMac)
    );
    assert_eq!(a.counters().neighbour_bad_mac, 2);
    assert_eq!(a.neighbour_count(), 0);
}

#[test]
fn conflicting_answer_is_refused_until_expiry() {
    let (mut a, ma, mut b, mb) = pair();
    let mc = member(C, 3);
    let ping = ping4(ma.v4, mb.v4, 8);
    resolve(&mut a, &mut b, 0, &ping);
    let mut frame = Vec::new();
    // Close to expiry, using the entry starts a background refresh.
    let late = NEIGHBOUR_TTL_MS - REFRESH_BEFORE_EXPIRY_MS / 2;
    assert_eq!(a.from_tun(late, &ping, &mut frame), FromTun::ToNetwork);
    assert_eq!(frame[..6], mb.mac.0);
    assert_eq!(drain_network(&mut a).len(), 1, "refresh request");
    // C answers the refresh first: refused, B stays.
    let (outcome, _) = deliver(&mut a, late, &arp_reply(mc.mac, mb.v4, &ma));
    assert_eq!(outcome, FromNetwork::Dropped(DropReason::NeighbourConflict));
    assert_eq!(a.counters().neighbour_conflict, 1);
    assert_eq!(a.from_tun(late + 1, &ping, &mut frame), FromTun::ToNetwork);
    assert_eq!(frame[..6], mb.mac.0);
    // After expiry, a new resolution takes the first verified answer, C's.
    let expired = NEIGHBOUR_TTL_MS + 1;
    a.handle_timeout(expired);
    assert_eq!(a.counters().neighbour_expired, 1);
    assert_eq!(a.from_tun(expired, &ping, &mut frame), FromTun::Pending);
    let (outcome, _) = deliver(&mut a, expired, &arp_reply(mc.mac, mb.v4, &ma));
    assert_eq!(outcome, FromNetwork::Consumed);
    let released = drain_network(&mut a);
    assert!(released.iter().any(|f| f[..6] == mc.mac.0));
}

#[test]
fn refresh_by_the_same_owner_extends_the_entry() {
    let (mut a, ma, mut b, mb) = pair();
    let ping = ping4(ma.v4, mb.v4, 8);
    resolve(&mut a, &mut b, 0, &ping);
    let late = NEIGHBOUR_TTL_MS - 1_000;
    let mut frame = Vec::new();
    assert_eq!(a.from_tun(late, &ping, &mut frame), FromTun::ToNetwork);
    let request = drain_network(&mut a).remove(0);
    let (_, reply) = deliver(&mut b, late, &request);
    assert_eq!(deliver(&mut a, late, &reply).0, FromNetwork::Consumed);
    assert_eq!(a.counters().neighbour_refreshed, 1);
    assert_eq!(
        a.from_tun(NEIGHBOUR_TTL_MS + 10, &ping, &mut frame),
        FromTun::ToNetwork
    );
}

#[test]
fn requests_not_for_us_are_ignored() {
    let (_, ma, mut b, mb) = pair();
    let mut request = Vec::new();
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: ma.mac,
        sender_ip: ma.v4,
        target_mac: Mac::ZERO,
        target_ip: Ipv4Addr::new(10, 147, 17, 77),
    }
    .emit_frame(&mut request);
    let outcome = deliver(&mut b, 0, &request).0;
    assert_eq!(
        outcome,
        FromNetwork::Dropped(DropReason::NeighbourRequestIgnored)
    );
    // A duplicate address probe (source ::) for B's address is not answered either.
    let mut probe = Vec::new();
    EthernetHeader {
        dst: Mac::BROADCAST,
        src: ma.mac,
        ethertype: 0x86dd,
    }
    .emit(&mut probe);
    NeighborSolicitation {
        source: std::net::Ipv6Addr::UNSPECIFIED,
        destination: "ff02::1:ff00:2".parse().unwrap(),
        target: mb.v6,
        source_link_addr: None,
    }
    .emit(&mut probe);
    let outcome = deliver(&mut b, 0, &probe).0;
    assert_eq!(
        outcome,
        FromNetwork::Dropped(DropReason::NeighbourRequestIgnored)
    );
    assert_eq!(b.counters().neighbour_request_ignored, 2);
}

#[test]
fn unanswered_resolution_retries_then_fails_with_unreachable() {
    let (mut a, ma, _, _) = pair();
    let ghost = Ipv4Addr::new(10, 147, 17, 99);
    let ping = ping4(ma.v4, ghost, 8);
    let mut frame = Vec::new();
    assert_eq!(a.from_tun(0, &ping, &mut frame), FromTun::Pending);
    let mut now = 0;
    let mut requests = drain_network(&mut a).len();
    while let Some(at) = a.poll_timeout() {
        assert!(at > now && at < 60_000, "timer moves forward: {at}");
        now = at;
        a.handle_timeout(now);
        requests += drain_network(&mut a).len();
    }
    assert_eq!(requests, RESOLUTION_ATTEMPTS as usize);
    assert_eq!(
        a.counters().arp_requests_sent,
        u64::from(RESOLUTION_ATTEMPTS)
    );
    assert_eq!(a.counters().resolution_failed, 1);
    assert_eq!(a.pending_resolutions(), (0, 0));
    let errors = drain_tun(&mut a);
    assert_eq!(errors.len(), 1);
    let icmp = &errors[0];
    assert_eq!(oracle_checksum(&[&icmp[..20]]), 0, "IPv4 header checksum");
    assert_eq!(oracle_checksum(&[&icmp[20..]]), 0, "ICMP checksum");
    assert_eq!((icmp[20], icmp[21]), (3, 1), "host unreachable");
    assert_eq!(icmp[12..16], ghost.octets());
    assert_eq!(icmp[16..20], ma.v4.octets());
    assert_eq!(icmp[28..], ping[..]);
    assert_eq!(a.counters().unreachable_icmp_sent, 1);
}

#[test]
fn queues_and_table_are_bounded() {
    let (_, ma, _, _) = pair();
    let mut config = config_for(&ma);
    config.addresses[0].1 = 16;
    config.routes[0].1 = 16;
    let mut a = Boundary::new(config);
    let mut frame = Vec::new();
    let ip = |i: usize| Ipv4Addr::new(10, 147, 100 + (i / 250) as u8, 1 + (i % 250) as u8);
    // Five packets to one destination: the oldest is dropped.
    for _ in 0..MAX_PACKETS_PER_DESTINATION + 1 {
        assert_eq!(
            a.from_tun(0, &ping4(ma.v4, ip(0), 8), &mut frame),
            FromTun::Pending
        );
    }
    assert_eq!(a.counters().resolution_queue_full, 1);
    // More destinations than the cap.
    for i in 1..MAX_PENDING_DESTINATIONS + 10 {
        let _ = a.from_tun(0, &ping4(ma.v4, ip(i), 8), &mut frame);
    }
    assert_eq!(a.pending_resolutions().0, MAX_PENDING_DESTINATIONS);
    assert_eq!(a.counters().resolution_queue_full, 11);
    assert!(a.pending_resolutions().1 <= MAX_PENDING_DESTINATIONS * MAX_PACKETS_PER_DESTINATION);
    drain_network(&mut a);

    // Answer many more resolutions than the table holds.
    for i in 0..NEIGHBOUR_CAPACITY + 50 {
        let now = 1 + i as u64;
        let target = ip(i);
        let outcome = a.from_tun(now, &ping4(ma.v4, target, 8), &mut frame);
        assert_eq!(outcome, FromTun::Pending, "{i}");
        let owner = Mac::from_address(Address::from_u64(0x10_0000_0000 + i as u64), NWID);
        let outcome = deliver(&mut a, now, &arp_reply(owner, target, &ma)).0;
        assert_eq!(outcome, FromNetwork::Consumed, "{i}");
        drain_network(&mut a);
    }
    assert_eq!(a.neighbour_count(), NEIGHBOUR_CAPACITY);
    assert_eq!(
        a.counters().neighbour_learned,
        (NEIGHBOUR_CAPACITY + 50) as u64
    );
    assert_eq!(a.counters().neighbour_evicted, 50);
}

#[test]
fn reconfigure_keeps_what_is_still_on_link() {
    let (mut a, ma, mut b, mb) = pair();
    resolve(&mut a, &mut b, 0, &ping4(ma.v4, mb.v4, 8));
    resolve(&mut a, &mut b, 0, &ping6(ma.v6, mb.v6, 8));
    let mut frame = Vec::new();
    assert_eq!(
        a.from_tun(
            0,
            &ping4(ma.v4, Ipv4Addr::new(10, 147, 17, 50), 8),
            &mut frame
        ),
        FromTun::Pending
    );
    assert_eq!(a.neighbour_count(), 2);
    // Same network, IPv6 subnet withdrawn: the IPv4 entry and resolution stay.
    let mut config = config_for(&ma);
    config
        .addresses
        .retain(|(ip, _)| ip.is_ipv4() || ip.to_string().starts_with("fd"));
    config.routes.retain(|(ip, _, _)| ip.is_ipv4());
    a.reconfigure(config.clone());
    assert_eq!(a.neighbour_count(), 1);
    assert_eq!(a.pending_resolutions(), (1, 1));
    assert_eq!(
        a.from_tun(1, &ping4(ma.v4, mb.v4, 8), &mut frame),
        FromTun::ToNetwork
    );
    // Another MAC (another identity): everything goes, held packets counted.
    config.our_mac = Mac([2, 9, 9, 9, 9, 9]);
    a.reconfigure(config);
    assert_eq!(a.neighbour_count(), 0);
    assert_eq!(a.pending_resolutions(), (0, 0));
    assert_eq!(a.counters().resolution_failed, 1);
}

#[test]
fn from_netconf_boundaries_interoperate() {
    use crate::wire::InetAddress;
    use crate::wire::netconf::NetworkConfig;
    let nwid = NetworkId(NWID.0);
    let (ma, mb) = (member(A, 1), member(B, 2));
    let make = |m: &Member| {
        let mut nc = NetworkConfig::new(nwid, m.address, 0);
        nc.static_ips = vec![InetAddress::Ip(IpAddr::V6(m.rfc4193), 88)];
        Boundary::new(BoundaryConfig::from_netconf(
            &nc,
            m.address,
            Policy::default(),
        ))
    };
    let (mut a, mut b) = (make(&ma), make(&mb));
    let mut frame = Vec::new();
    let ping = ping6(ma.rfc4193, mb.rfc4193, 8);
    assert_eq!(a.from_tun(0, &ping, &mut frame), FromTun::ToNetwork);
    assert!(matches!(
        deliver(&mut b, 0, &frame).0,
        FromNetwork::ToTun(_)
    ));
}
