//! Boundary tests: the MTU (ICMP "fragmentation needed" / "packet too big", IPv4
//! fragmentation that reassembles to the original), ICMP rules and rate limit, and buffer
//! reuse on the hot path.

use super::test_support::*;
use super::*;
use crate::wire::ethernet::EthernetHeader;

const SMALL_MTU: usize = 1280;

/// A and B on a network with a 1280-byte MTU.
fn small_pair() -> (Boundary, Member, Boundary, Member) {
    let (mut a, ma, mut b, mb) = pair();
    for boundary in [&mut a, &mut b] {
        let mut config = boundary.config().clone();
        config.mtu = SMALL_MTU;
        boundary.reconfigure(config);
    }
    (a, ma, b, mb)
}

#[test]
fn too_big_ipv4_with_df_gets_fragmentation_needed() {
    let (mut a, ma, _, mb) = small_pair();
    let big = ping4(ma.v4, mb.v4, 1400);
    assert_eq!(big[6] & 0x40, 0x40, "etherparse sets DF");
    let mut frame = Vec::new();
    assert_eq!(
        a.from_tun(0, &big, &mut frame),
        FromTun::Dropped(DropReason::TooBig)
    );
    assert!(drain_network(&mut a).is_empty(), "nothing resolved or sent");
    let errors = drain_tun(&mut a);
    assert_eq!(errors.len(), 1);
    let icmp = &errors[0];
    assert_eq!(oracle_checksum(&[&icmp[..20]]), 0, "IPv4 header checksum");
    assert_eq!(oracle_checksum(&[&icmp[20..]]), 0, "ICMP checksum");
    assert_eq!(u16::from_be_bytes([icmp[2], icmp[3]]) as usize, icmp.len());
    assert_eq!(icmp.len(), 576);
    assert_eq!((icmp[9], icmp[20], icmp[21]), (1, 3, 4));
    assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]) as usize, SMALL_MTU);
    assert_eq!(icmp[12..16], mb.v4.octets());
    assert_eq!(icmp[16..20], ma.v4.octets());
    assert_eq!(
        icmp[28..],
        big[..548],
        "as much of the original as fits in 576"
    );
    assert_eq!(a.counters().too_big_icmp_sent, 1);
    assert_eq!(a.counters().to_network_too_big, 1);
}

#[test]
fn ipv6_too_big_gets_packet_too_big() {
    let (mut a, ma, _, mb) = small_pair();
    let big = ping6(ma.rfc4193, mb.rfc4193, 1400);
    let mut frame = Vec::new();
    assert_eq!(
        a.from_tun(0, &big, &mut frame),
        FromTun::Dropped(DropReason::TooBig)
    );
    let errors = drain_tun(&mut a);
    assert_eq!(errors.len(), 1);
    let ptb = &errors[0];
    assert_eq!(ptb.len(), 1280);
    assert_eq!((ptb[6], ptb[40], ptb[41]), (58, 2, 0));
    assert_eq!(
        u32::from_be_bytes([ptb[44], ptb[45], ptb[46], ptb[47]]) as usize,
        SMALL_MTU
    );
    assert_eq!(ptb[8..24], mb.rfc4193.octets());
    assert_eq!(ptb[24..40], ma.rfc4193.octets());
    let len = ((ptb.len() - 40) as u32).to_be_bytes();
    let pseudo = [
        &mb.rfc4193.octets()[..],
        &ma.rfc4193.octets(),
        &len,
        &[0, 0, 0, 58],
    ]
    .concat();
    assert_eq!(
        oracle_checksum(&[&pseudo, &ptb[40..]]),
        0,
        "ICMPv6 checksum"
    );
    assert_eq!(ptb[48..], big[..1232]);
}

/// Reassembles IPv4 fragments (all of one packet) into (header of the first, data).
fn reassemble(fragments: &[Vec<u8>]) -> Vec<u8> {
    let mut pieces: Vec<(usize, &[u8])> = fragments
        .iter()
        .map(|f| {
            let header_len = usize::from(f[0] & 0x0f) * 4;
            let field = u16::from_be_bytes([f[6], f[7]]);
            (usize::from(field & 0x1fff) * 8, &f[header_len..])
        })
        .collect();
    pieces.sort_by_key(|(offset, _)| *offset);
    let mut data = Vec::new();
    for (offset, piece) in pieces {
        assert_eq!(offset, data.len(), "contiguous");
        data.extend_from_slice(piece);
    }
    data
}

#[test]
fn ipv4_without_df_is_fragmented_and_reassembles() {
    let (mut a, ma, mut b, mb) = small_pair();
    resolve(&mut a, &mut b, 0, &ping4(ma.v4, mb.v4, 1));
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
    let mut big = udp4(ma.v4, mb.v4, &payload);
    set_ipv4_flags(&mut big, 0);
    let mut frame = Vec::new();
    assert_eq!(a.from_tun(1, &big, &mut frame), FromTun::ToNetwork);
    let mut frames = vec![frame];
    frames.extend(drain_network(&mut a));
    assert_eq!(frames.len(), 3);
    let mut fragments = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let (eth, packet) = EthernetHeader::parse(frame).unwrap();
        assert_eq!((eth.dst, eth.src, eth.ethertype), (mb.mac, ma.mac, 0x0800));
        assert!(packet.len() <= SMALL_MTU);
        assert_eq!(
            oracle_checksum(&[&packet[..20]]),
            0,
            "fragment {i} header checksum"
        );
        let field = u16::from_be_bytes([packet[6], packet[7]]);
        assert_eq!(field & 0x2000 != 0, i < 2, "MF on all but the last");
        if i < 2 {
            assert_eq!((packet.len() - 20) % 8, 0);
        }
        assert_eq!(packet[12..20], big[12..20]);
        assert_eq!(packet[4..6], big[4..6], "same identification");
        match deliver(&mut b, 1, frame).0 {
            FromNetwork::ToTun(range) => assert_eq!(&frame[range], packet),
            other => panic!("fragment {i}: {other:?}"),
        }
        fragments.push(packet.to_vec());
    }
    assert_eq!(reassemble(&fragments), big[20..]);
    assert_eq!(b.counters().to_tun_fragments_passed, 3);
    let c = a.counters();
    assert_eq!(
        (c.to_network_fragmented, c.to_network_fragments_created),
        (1, 3)
    );

    // Held for resolution first, then fragmented when released.
    let (mut a, _, mut b, _) = small_pair();
    assert_eq!(a.from_tun(0, &big, &mut Vec::new()), FromTun::Pending);
    let request = drain_network(&mut a).remove(0);
    let (_, reply) = deliver(&mut b, 0, &request);
    deliver(&mut a, 0, &reply);
    let released: Vec<Vec<u8>> = drain_network(&mut a)
        .iter()
        .map(|f| f[14..].to_vec())
        .collect();
    assert_eq!(released.len(), 3);
    assert_eq!(reassemble(&released), big[20..]);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let (mut a, ma, _, mb) = small_pair();
    let big = ping6(ma.rfc4193, mb.rfc4193, 1400);
    let mut frame = Vec::new();
    for _ in 0..ICMP_BURST + 5 {
        a.from_tun(0, &big, &mut frame);
    }
    assert_eq!(drain_tun(&mut a).len(), ICMP_BURST as usize);
    assert_eq!(a.counters().icmp_rate_limited, 5);
    a.from_tun(ICMP_REFILL_MS, &big, &mut frame);
    assert_eq!(drain_tun(&mut a).len(), 1);
    assert_eq!(a.counters().to_network_too_big, u64::from(ICMP_BURST) + 6);
}

#[test]
fn no_icmp_about_errors_or_to_multicast() {
    let (mut a, ma, _, mb) = small_pair();
    let mut frame = Vec::new();
    // An ICMPv6 error (type 1) that is too big: never answered with another error.
    let mut error = ping6(ma.rfc4193, mb.rfc4193, 1400);
    error[40] = 1;
    error[42..44].fill(0);
    let len = ((error.len() - 40) as u32).to_be_bytes();
    let src = ma.rfc4193.octets();
    let dst = mb.rfc4193.octets();
    let sum = oracle_checksum(&[&src, &dst, &len, &[0, 0, 0, 58], &error[40..]]);
    error[42..44].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        a.from_tun(0, &error, &mut frame),
        FromTun::Dropped(DropReason::TooBig)
    );
    let multicast = ping6(ma.v6, "ff02::1".parse().unwrap(), 1400);
    assert_eq!(
        a.from_tun(0, &multicast, &mut frame),
        FromTun::Dropped(DropReason::TooBig)
    );
    assert!(drain_tun(&mut a).is_empty());
    assert_eq!(a.counters().icmp_not_allowed, 2);
    assert_eq!(a.counters().too_big_icmp_sent, 0);
}

#[test]
fn hot_path_reuses_the_callers_buffers() {
    let (mut a, ma, mut b, mb) = pair();
    let ping = ping4(ma.v4, mb.v4, 1000);
    let released = resolve(&mut a, &mut b, 0, &ping);
    let mut frame = Vec::with_capacity(4096);
    let mut reply = Vec::new();
    let buffer = frame.as_ptr();
    for now in 1..200 {
        assert_eq!(a.from_tun(now, &ping, &mut frame), FromTun::ToNetwork);
        assert_eq!(frame.as_ptr(), buffer, "no reallocation");
        assert!(matches!(
            b.from_network(now, &released, &mut reply),
            FromNetwork::ToTun(_)
        ));
    }
    assert_eq!(reply.capacity(), 0, "inbound delivery is in place");
    assert_eq!(a.counters().to_network_forwarded, 200);
}
