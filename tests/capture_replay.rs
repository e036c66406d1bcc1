//! Interop evidence from the other side: the reference captures
//! (`../shared/vectors/zerotierone-1.14.1-capture*/`) are replayed into the engine as each
//! node in turn (as `node_capture` does), and what the engine *answers* is checked from the
//! reference peers' point of view: every reply authenticates with the key the peer derives
//! from its own secret, parses, and answers a packet that peer really sent; each OK(HELLO)
//! echoes the captured HELLO's timestamp; every HELLO the real node answered, the engine
//! answered too; and the moon root's OK(WHOIS) lists the identities the real root listed.

mod common;
#[path = "common/pcap.rs"]
mod pcap;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use common::nodes::capture_identity;
use ztrs::crypto::{Identity, SymmetricKey, crypt_field, dearmor};
use ztrs::node::{Node, NodeConfig};
use ztrs::wire::packet::{HEADER_LEN, Packet};
use ztrs::wire::verbs::{Hello, OkBody, OkReply, Whois};
use ztrs::wire::world::World;
use ztrs::wire::{Address, Verb};

const CAPTURE: &str = "zerotierone-1.14.1-capture";

fn moon() -> World {
    let path = common::vectors_dir()
        .join(CAPTURE)
        .join("00000028210c94e2.moon");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    World::parse(&bytes).expect("moon parses")
}

/// A packet head (not a fragment) of the capture, dearmored with the right key.
struct Plain {
    /// The packet id as on the wire (what replies refer to).
    wire_id: u64,
    source: Address,
    destination: Address,
    verb: Verb,
    body: Vec<u8>,
}

/// Dearmors a datagram that is a whole packet head from `from` to `to`; `None` for
/// fragments, fragmented heads and compressed bodies (not needed here).
fn open(data: &[u8], from: &Identity, to: &Identity) -> Option<Plain> {
    let view = Packet::new_checked(data).ok()?;
    if view.fragmented() || data.len() < HEADER_LEN {
        return None;
    }
    let wire_id = view.packet_id_u64();
    let key = SymmetricKey::new(&to.agree(from).expect("secret"));
    let mut copy = data.to_vec();
    dearmor(&mut copy, &key).expect("authenticates with the receiver's own key");
    let view = Packet::new_checked(&copy).ok()?;
    if view.compressed() {
        return None;
    }
    let verb = view.verb();
    let source = view.source();
    let destination = view.destination();
    if verb == Verb::Hello {
        // The moon list of a HELLO is encrypted again with the packet id (cryptField).
        let hello = Hello::parse(view.payload()).expect("hello parses");
        let tail_at = HEADER_LEN + hello.moon_tail_offset();
        let id = wire_id.to_be_bytes();
        crypt_field(&key, id, &mut copy[tail_at..]);
    }
    Some(Plain {
        wire_id,
        source,
        destination,
        verb,
        body: copy[HEADER_LEN..].to_vec(),
    })
}

struct Replay {
    /// Every captured datagram: (from, to, bytes).
    captured: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// What the engine sent: (remote, bytes).
    answers: Vec<(SocketAddr, Vec<u8>)>,
    engine: Node,
}

fn replay(node: &str, here: SocketAddr) -> Replay {
    let capture = pcap::read(
        &common::vectors_dir()
            .join(CAPTURE)
            .join("join-and-ping.pcap"),
    );
    let datagrams = pcap::udp_datagrams(&capture).expect("udp datagrams");
    let mut config = NodeConfig::new(capture_identity("", node), World::default_planet());
    config.moons = vec![moon()];
    config.local_addresses = vec![here];
    config.rng_seed = Some(3);
    let start = datagrams.first().map_or(0, |d| d.micros / 1_000);
    let mut engine = Node::new(config, start);
    let mut answers = Vec::new();
    let mut buf = Vec::new();
    for d in datagrams.iter().filter(|d| d.dst == here) {
        let at = d.micros / 1_000;
        while let Some(t) = engine.poll_timeout().filter(|t| *t <= at) {
            engine.handle_timeout(t);
        }
        while engine.poll_transmit(&mut buf).is_some() {}
        engine.handle_datagram(at, d.dst, d.src, &d.payload);
        // Only the direct answers to this datagram are kept.
        while let Some(t) = engine.poll_transmit(&mut buf) {
            answers.push((t.remote, buf.clone()));
        }
        while engine.poll_event().is_some() {}
    }
    Replay {
        captured: datagrams
            .into_iter()
            .map(|d| (d.src, d.dst, d.payload))
            .collect(),
        answers,
        engine,
    }
}

fn identities() -> BTreeMap<Address, Identity> {
    ["root", "a", "b"]
        .into_iter()
        .map(|n| capture_identity("", n))
        .map(|i| (i.address(), i))
        .collect()
}

fn ip(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 200, 0, last], 9993))
}

/// Checks the engine's answers as `me` (with address `here`) from its peers' side.
fn check_answers(node: &str, here: SocketAddr) -> Replay {
    let ids = identities();
    let me = capture_identity("", node);
    let r = replay(node, here);
    // Captured packets each peer sent to us, by wire id; and what the real node answered.
    let mut sent_to_us: BTreeMap<u64, Plain> = BTreeMap::new();
    let mut real_hello_answers = BTreeSet::new();
    for (from, to, data) in &r.captured {
        let Ok(view) = Packet::new_checked(&data[..]) else {
            continue;
        };
        let (src, dst) = (view.source(), view.destination());
        let (Some(src_id), Some(dst_id)) = (ids.get(&src), ids.get(&dst)) else {
            continue;
        };
        if *to == here && dst == me.address() {
            if let Some(p) = open(data, src_id, dst_id) {
                sent_to_us.insert(p.wire_id, p);
            }
        } else if *from == here
            && src == me.address()
            && let Some(p) = open(data, src_id, dst_id)
            && p.verb == Verb::Ok
            && let Ok(ok) = OkReply::parse(&p.body)
            && matches!(ok.body, OkBody::Hello(_))
        {
            real_hello_answers.insert(ok.in_re_packet_id);
        }
    }
    assert!(!sent_to_us.is_empty());
    let mut our_hello_answers = BTreeSet::new();
    let mut oks = 0;
    for (remote, data) in &r.answers {
        let Ok(view) = Packet::new_checked(&data[..]) else {
            continue;
        };
        let Some(peer) = ids.get(&view.destination()) else {
            continue;
        };
        assert_eq!(view.source(), me.address());
        // The peer opens it with the key it derives from its own secret.
        let Some(p) = open(data, &me, peer) else {
            continue;
        };
        if p.verb != Verb::Ok {
            continue;
        }
        oks += 1;
        let ok = OkReply::parse(&p.body).expect("our OK parses");
        let request = sent_to_us
            .get(&ok.in_re_packet_id)
            .unwrap_or_else(|| panic!("OK to {remote} answers nothing {} sent", p.destination));
        assert_eq!(request.source, p.destination, "answered to the requester");
        match &ok.body {
            OkBody::Hello(h) => {
                assert_eq!(request.verb, Verb::Hello);
                let hello = Hello::parse(&request.body).expect("captured hello");
                assert_eq!(h.timestamp_echo, hello.timestamp);
                our_hello_answers.insert(ok.in_re_packet_id);
            }
            OkBody::Whois(w) => {
                assert_eq!(request.verb, Verb::Whois);
                let asked: Vec<Address> = Whois::parse(&request.body)
                    .expect("captured whois")
                    .addresses
                    .iter()
                    .collect();
                for identity in &w.identities {
                    assert!(asked.contains(&identity.address()));
                    assert_eq!(
                        Some(identity.public_key()),
                        ids.get(&identity.address()).map(|i| i.public_key())
                    );
                }
            }
            OkBody::Echo(e) => assert_eq!(request.verb, Verb::Echo, "{e:?}"),
            _ => {}
        }
    }
    assert!(oks > 0, "{node} answered something");
    assert!(
        real_hello_answers.is_subset(&our_hello_answers),
        "{node}: the real node answered HELLOs {:?} the engine did not",
        real_hello_answers
            .difference(&our_hello_answers)
            .collect::<Vec<_>>()
    );
    r
}

#[test]
fn member_a_answers_are_accepted_by_its_peers() {
    check_answers("a", ip(2));
}

#[test]
fn member_b_answers_are_accepted_by_its_peers() {
    check_answers("b", ip(3));
}

#[test]
fn moon_root_answers_hello_and_whois_like_the_reference() {
    let r = check_answers("root", ip(1));
    assert!(r.engine.is_root());
    // The members looked each other up through it; those answers were checked above.
    assert!(r.engine.counters().whois_answered > 0);
}
