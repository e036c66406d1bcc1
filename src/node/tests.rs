//! Unit tests of the node as a whole, driven by hand with crafted datagrams (the multi-node
//! scenarios live in `tests/node_handshake.rs`).

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::crypto::c25519::{self, SIGNATURE_LEN};
use crate::crypto::{SymmetricKey, armor, dearmor};
use crate::wire::cursor::Writer;
use crate::wire::packet::{Cipher, HEADER_LEN, Packet};
use crate::wire::verbs::{Hello, HelloMoons, parse_payload};
use crate::wire::world::{Root, WorldType};
use crate::wire::{InetAddress, Verb};

const NOW: u64 = 1_000_000;

fn reference_identity(n: u8) -> Identity {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/vectors/reference")
        .join(format!("id{n}.secret"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()));
    text.trim().parse().expect("reference identity parses")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn planet_with_root(root: &Identity, at: SocketAddr) -> World {
    let (public, secret) = c25519::generate_keypair();
    let mut w = World {
        world_type: WorldType::Planet,
        id: 77,
        timestamp: 5,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: root.to_public(),
            stable_endpoints: vec![InetAddress::from_socket_addr(at)],
        }],
    };
    w.sign(&secret);
    w
}

/// A member (id1) whose planet has one root (id3) at 10.0.0.1:9993.
fn member() -> (Node, Identity, Identity) {
    let me = reference_identity(1);
    let root = reference_identity(3);
    let mut config = NodeConfig::new(me.clone(), planet_with_root(&root, sa("10.0.0.1:9993")));
    config.local_addresses = vec![sa("10.0.0.2:9993")];
    config.rng_seed = Some(9);
    (Node::new(config, NOW), me, root)
}

fn packet(from: Address, to: Address, verb: Verb, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.put_u64(0x0102_0304_0506_0708);
    p.put_bytes(&to.to_bytes());
    p.put_bytes(&from.to_bytes());
    p.put_u8(0);
    p.put_u64(0);
    p.put_u8(verb.to_byte());
    p.put_bytes(payload);
    p
}

fn drain(node: &mut Node) -> Vec<(Transmit, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(t) = node.poll_transmit(&mut buf) {
        out.push((t, buf.clone()));
    }
    out
}

#[test]
fn first_timeout_hellos_the_root_at_its_stable_endpoint() {
    let (mut node, me, root) = member();
    assert_eq!(node.poll_timeout(), Some(NOW));
    assert!(!node.online());
    node.handle_timeout(NOW);
    let mut buf = Vec::with_capacity(4096);
    let t = node.poll_transmit(&mut buf).expect("a HELLO to the root");
    assert_eq!(t.remote, sa("10.0.0.1:9993"));
    assert_eq!(t.local, sa("10.0.0.2:9993"));
    let view = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(view.cipher(), Cipher::Poly1305None);
    assert_eq!(view.verb(), Verb::Hello);
    assert_eq!(view.destination(), root.address());
    assert_eq!(view.source(), me.address());
    // It authenticates with the key the root will derive, and says where it was sent.
    let key = SymmetricKey::new(&root.agree(&me).unwrap());
    let mut copy = buf.clone();
    assert_eq!(dearmor(&mut copy, &key), Ok(Cipher::Poly1305None));
    let hello = Hello::parse(&copy[HEADER_LEN..]).unwrap();
    assert_eq!(hello.identity, me.to_public());
    assert_eq!(
        hello.sent_to,
        Some(InetAddress::from_socket_addr(sa("10.0.0.1:9993")))
    );
    assert_eq!(hello.planet.map(|p| (p.id, p.timestamp)), Some((77, 5)));
    // The moon list is encrypted with cryptField: decrypted it is an empty list.
    let tail_at = HEADER_LEN + hello.moon_tail_offset();
    let mut tail = copy[tail_at..].to_vec();
    crate::crypto::crypt_field(&key, copy[..8].try_into().unwrap(), &mut tail);
    assert_eq!(HelloMoons::parse(&tail).unwrap(), HelloMoons::default());
    assert!(node.poll_transmit(&mut buf).is_none());
    // The next tick is the ping check.
    assert_eq!(node.poll_timeout(), Some(NOW + ZT_PING_CHECK_INTERVAL));
}

#[test]
fn junk_is_counted_never_processed() {
    let (mut node, me, root) = member();
    let from = sa("10.0.0.9:1234");
    let here = sa("10.0.0.2:9993");
    node.handle_datagram(NOW, here, from, &[0u8; 1]);
    node.handle_datagram(NOW, here, from, &[0u8; 13]);
    node.handle_datagram(NOW, here, from, &vec![0u8; MAX_PACKET_LEN + 1]);
    // A fragment with an impossible number.
    let mut frag = vec![0u8; 40];
    frag[8..13].copy_from_slice(&me.address().to_bytes());
    frag[13] = 0xff;
    frag[14] = 0x90;
    node.handle_datagram(NOW, here, from, &frag);
    // A packet for somebody else: members do not relay.
    let other = Address::from_u64(0x0102030405);
    node.handle_datagram(
        NOW,
        here,
        from,
        &packet(root.address(), other, Verb::Nop, &[]),
    );
    // A packet claiming to come from us.
    node.handle_datagram(
        NOW,
        here,
        from,
        &packet(me.address(), me.address(), Verb::Nop, &[]),
    );
    // A packet from the root with a bad MAC (cipher 1 flags, zero MAC).
    let mut bad = packet(root.address(), me.address(), Verb::Nop, &[1, 2, 3]);
    bad[18] = Cipher::Salsa2012Poly1305.flag_bits();
    node.handle_datagram(NOW, here, from, &bad);
    // Cipher 2 from a known peer.
    let mut trusted = packet(root.address(), me.address(), Verb::Nop, &[]);
    trusted[18] = Cipher::TrustedPath.flag_bits();
    node.handle_datagram(NOW, here, from, &trusted);
    let c = node.counters();
    assert_eq!(c.datagrams_received, 8);
    assert_eq!(c.runt, 1);
    assert_eq!(c.beacon, 1);
    assert_eq!(c.malformed_header, 1);
    assert_eq!(c.reassembly.malformed, 1);
    assert_eq!(c.relay_refused, 1);
    assert_eq!(c.own_source, 1);
    assert_eq!(c.bad_mac, 1);
    assert_eq!(c.unsupported_cipher, 1);
    assert_eq!(c.packets_authenticated, 0);
    assert!(node.poll_event().is_none());
    assert!(drain(&mut node).is_empty());
}

#[test]
fn unknown_senders_are_queued_bounded_and_expire() {
    let (mut node, me, _) = member();
    let here = sa("10.0.0.2:9993");
    for i in 0..40u64 {
        let mut p = packet(
            Address::from_u64(0x0a00000000 + i),
            me.address(),
            Verb::Echo,
            &[0; 8],
        );
        p[18] = Cipher::Salsa2012Poly1305.flag_bits();
        node.handle_datagram(NOW, here, sa("10.0.0.7:1"), &p);
    }
    let c = node.counters().clone();
    assert_eq!(c.unknown_peer_queued, 32);
    assert_eq!(c.queue_full, 8);
    // WHOIS cannot go anywhere yet (no root path): counted, retried, then abandoned.
    let mut now = NOW;
    while now < NOW + 10_000 {
        now = node.poll_timeout().unwrap().max(now);
        node.handle_timeout(now);
        now += 1;
    }
    let c = node.counters();
    assert!(c.whois_no_upstream > 0);
    assert_eq!(c.rx_queue_expired, 32);
    assert_eq!(c.whois_failed, 32);
}

#[test]
fn send_errors() {
    let (mut node, me, _) = member();
    assert_eq!(
        node.send_user_message(NOW, me.address(), 1, b"x"),
        Err(SendError::InvalidAddress)
    );
    assert_eq!(
        node.send_user_message(NOW, Address::from_u64(0), 1, b"x"),
        Err(SendError::InvalidAddress)
    );
    assert_eq!(
        node.send_user_message(NOW, Address::from_u64(5), 1, &vec![0; MAX_PACKET_LEN]),
        Err(SendError::TooLarge)
    );
    // Unknown destinations are queued (32) while looked up.
    for i in 0..32u64 {
        assert_eq!(
            node.send_user_message(NOW, Address::from_u64(100 + i), 1, b"x"),
            Ok(())
        );
    }
    assert_eq!(
        node.send_user_message(NOW, Address::from_u64(500), 1, b"x"),
        Err(SendError::QueueFull)
    );
    assert_eq!(node.counters().tx_queue_full, 1);
    // The root is known but unreachable until it answers: no route.
    let root = reference_identity(3).address();
    assert_eq!(
        node.send_user_message(NOW, root, 1, b"x"),
        Err(SendError::NoRoute)
    );
}

#[test]
fn a_root_relays_with_a_hop_limit_and_never_without_a_route() {
    let root = reference_identity(3);
    let planet = planet_with_root(&root, sa("10.0.0.1:9993"));
    let mut node = Node::new(NodeConfig::new(root.clone(), planet), NOW);
    assert!(node.is_root());
    node.handle_timeout(NOW);
    assert_eq!(node.poll_event(), Some(Event::Online(true)));
    let here = sa("10.0.0.1:9993");
    let a = Address::from_u64(0x1111111111);
    let b = Address::from_u64(0x2222222222);
    let mut p = packet(a, b, Verb::Nop, &[]);
    node.handle_datagram(NOW, here, sa("10.0.0.2:9993"), &p);
    p[18] = 3;
    node.handle_datagram(NOW, here, sa("10.0.0.2:9993"), &p);
    let c = node.counters();
    assert_eq!(c.relay_no_route, 1);
    assert_eq!(c.relay_hop_limit, 1);
    assert_eq!(c.relay_forwarded, 0);
}

#[test]
fn counters_have_unique_names() {
    let c = Counters::default();
    let names: Vec<&str> = c.iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    assert!(names.contains(&"bad_mac"));
    assert!(names.contains(&"fragment_duplicate"));
    assert_eq!(c.get("hello_rate_limited"), Some(0));
    assert_eq!(c.get("nonsense"), None);
}

#[test]
fn hello_from_an_identity_that_fails_proof_of_work_is_refused_after_the_mac() {
    let (mut node, me, _) = member();
    // id2's key under a different address: a valid MAC, an invalid identity.
    let real = reference_identity(2);
    let fake = Identity::from_parts(
        Address::from_u64(0x3333333333),
        *real.public_key(),
        real.secret_key().cloned(),
    );
    let key = SymmetricKey::new(&fake.agree(&me).unwrap());
    let hello = Hello {
        protocol_version: 12,
        software_version: Default::default(),
        timestamp: 1,
        identity: fake.to_public(),
        sent_to: None,
        planet: None,
        moon_tail: &[],
    };
    let mut payload = Vec::new();
    hello.emit(&mut payload);
    let mut p = packet(fake.address(), me.address(), Verb::Hello, &payload);
    armor(&mut p, &key, Cipher::Poly1305None).unwrap();
    node.handle_datagram(NOW, sa("10.0.0.2:9993"), sa("10.0.0.5:9993"), &p);
    // A wrong MAC never reaches the proof of work.
    let mut tampered = p.clone();
    tampered[HEADER_LEN + 10] ^= 1;
    node.handle_datagram(NOW, sa("10.0.0.2:9993"), sa("10.0.0.6:9993"), &tampered);
    let c = node.counters();
    assert_eq!(c.pow_checks, 1);
    assert_eq!(c.invalid_identity, 1);
    assert_eq!(c.bad_mac, 1);
    assert_eq!(node.peer_count(), 1);
    assert!(drain(&mut node).is_empty());
}

#[test]
fn poll_transmit_swaps_buffers() {
    let (mut node, _, _) = member();
    node.handle_timeout(NOW);
    let mut buf = vec![0xee; 3];
    let before = buf.as_ptr();
    assert!(node.poll_transmit(&mut buf).is_some());
    assert_ne!(buf.as_ptr(), before);
    assert!(Packet::new_checked(&buf[..]).is_ok());
}

#[test]
fn verb_payloads_of_sent_packets_parse() {
    let (mut node, me, root) = member();
    node.handle_timeout(NOW);
    let key = SymmetricKey::new(&root.agree(&me).unwrap());
    for (_, mut d) in drain(&mut node) {
        dearmor(&mut d, &key).unwrap();
        let verb = Verb::from_byte(d[27]);
        assert!(parse_payload(verb, &d[HEADER_LEN..]).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary datagrams, from anywhere, never panic and are all counted somewhere.
    #[test]
    fn arbitrary_datagrams_never_panic(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..8),
        port in 1u16..,
    ) {
        let (mut node, me, _) = member();
        let here = sa("10.0.0.2:9993");
        let from = SocketAddr::new("10.0.0.9".parse().unwrap(), port);
        for (i, mut d) in datagrams.into_iter().enumerate() {
            // Half of them addressed to us so they get past the relay check.
            if i % 2 == 0 && d.len() >= 13 {
                d[8..13].copy_from_slice(&me.address().to_bytes());
            }
            node.handle_datagram(NOW + i as u64, here, from, &d);
            node.handle_timeout(NOW + i as u64);
        }
        let mut buf = Vec::new();
        while node.poll_transmit(&mut buf).is_some() {}
        prop_assert!(node.counters().datagrams_received > 0);
    }
}

#[test]
fn node_is_send_for_threaded_drivers() {
    fn assert_send<T: Send>() {}
    assert_send::<Node>();
    assert_send::<Event>();
}

#[test]
fn ipv4_mapped_endpoints_are_canonical_and_paths_come_from_ok() {
    use crate::wire::verbs::{OkBody, OkHello, OkReply, SoftwareVersion};
    let (mut node, me, root) = member();
    node.handle_timeout(NOW);
    let sent = drain(&mut node);
    let hello_id = u64::from_be_bytes(sent[0].1[..8].try_into().unwrap());
    let key = SymmetricKey::new(&root.agree(&me).unwrap());
    let ok = |in_re: u64| {
        let mut payload = Vec::new();
        OkReply {
            in_re_packet_id: in_re,
            body: OkBody::Hello(OkHello {
                timestamp_echo: NOW,
                protocol_version: 12,
                software_version: SoftwareVersion::default(),
                sent_from: InetAddress::from_socket_addr(sa("[::ffff:192.0.2.7]:4444")),
                world_updates: &[],
            }),
        }
        .emit(&mut payload);
        let mut p = packet(root.address(), me.address(), Verb::Ok, &payload);
        armor(&mut p, &key, Cipher::AesGmacSiv).unwrap();
        p
    };
    let local = sa("[::ffff:10.0.0.2]:9993");
    let remote = sa("[::ffff:10.0.0.1]:9993");
    // A relayed OK (hops 1) is accepted but teaches no path.
    let mut relayed = ok(hello_id);
    relayed[18] |= 1;
    node.handle_datagram(NOW + 20, local, remote, &relayed);
    assert!(node.peer(root.address()).unwrap().paths.is_empty());
    // An OK for a HELLO we never sent is refused.
    node.handle_datagram(NOW + 20, local, remote, &ok(hello_id ^ 0xff));
    assert_eq!(node.counters().ok_unexpected, 1);
    // The root still has no path, so the next tick HELLOs it again; the OK to that HELLO,
    // direct (hops 0) and from an IPv4-mapped endpoint, installs a canonical IPv4 path.
    node.handle_timeout(NOW + ZT_PING_CHECK_INTERVAL);
    let second = drain(&mut node);
    let hello2 = second
        .iter()
        .find(|(t, _)| t.remote == sa("10.0.0.1:9993"))
        .map(|(_, d)| u64::from_be_bytes(d[..8].try_into().unwrap()))
        .expect("the root is contacted again while it has no path");
    let at = NOW + ZT_PING_CHECK_INTERVAL + 10;
    node.handle_datagram(at, local, remote, &ok(hello2));
    let info = node.peer(root.address()).unwrap();
    assert_eq!(info.paths.len(), 1);
    assert_eq!(info.paths[0].remote, sa("10.0.0.1:9993"));
    assert_eq!(info.paths[0].local, sa("10.0.0.2:9993"));
    assert_eq!(info.paths[0].latency_ms, Some(10));
    assert!(node.online());
    let events: Vec<Event> = std::iter::from_fn(|| node.poll_event()).collect();
    assert!(events.contains(&Event::PeerDirectPath {
        peer: root.address(),
        remote: sa("10.0.0.1:9993")
    }));
    assert!(events.contains(&Event::Online(true)));
}
