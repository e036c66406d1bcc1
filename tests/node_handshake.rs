//! The sans-IO node over a tiny hand-driven wire: three nodes (a root from a private planet
//! and two members, the reference identities id3, id1 and id2) exchange datagrams through a
//! `Vec`, in virtual time advanced to `poll_timeout()` (no sleeps, H7.2).
//!
//! Proves: members HELLO the root and come online; they WHOIS each other through it; a
//! USER_MESSAGE is relayed, the root sends RENDEZVOUS and the members switch to a direct path;
//! with the direct path blocked traffic keeps flowing through the relay; OK(HELLO) with a wrong
//! id or from another peer is ignored and counted (H2.8); a HELLO flood from random identities
//! is rate limited and its proof-of-work cost bounded (H2.9); spoofed sources never
//! authenticate (H6.10).

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use ztrs::crypto::c25519::{self, SIGNATURE_LEN};
use ztrs::crypto::{Identity, SymmetricKey, armor, crypt_field};
use ztrs::node::{Event, Node, NodeConfig, NodeLimits, PeerRole};
use ztrs::wire::cursor::Writer;
use ztrs::wire::packet::{Cipher, HEADER_LEN, PROTOCOL_VERSION};
use ztrs::wire::verbs::{
    Hello, HelloMoons, OkBody, OkHello, OkReply, SoftwareVersion, UserMessage, WorldStamp,
};
use ztrs::wire::world::{Root, World, WorldType};
use ztrs::wire::{Address, InetAddress, Verb};

const START: u64 = 1_700_000_000_000;
/// One-way delay of every link.
const DELAY: u64 = 5;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn reference_identity(n: u8) -> Identity {
    common::read_reference(&format!("id{n}.secret"))
        .trim()
        .parse()
        .expect("reference identity parses")
}

fn private_planet(root: &Identity, at: SocketAddr) -> World {
    let (public, secret) = c25519::generate_keypair();
    let mut planet = World {
        world_type: WorldType::Planet,
        id: 0x5a5a_0001,
        timestamp: 1,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: root.to_public(),
            stable_endpoints: vec![InetAddress::from_socket_addr(at)],
        }],
    };
    planet.sign(&secret);
    planet
}

/// Decides whether a datagram (from, to, bytes) is lost.
type DropFilter = Box<dyn Fn(SocketAddr, SocketAddr, &[u8]) -> bool>;

struct InFlight {
    at: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

struct Host {
    addr: SocketAddr,
    node: Node,
    events: Vec<Event>,
}

/// The wire: moves datagrams between hosts by address after `DELAY` ms.
struct Net {
    hosts: Vec<Host>,
    now: u64,
    flight: Vec<InFlight>,
    /// Unordered address pairs whose datagrams are dropped.
    blocked: HashSet<(SocketAddr, SocketAddr)>,
    /// Every datagram put on the wire, for inspection: (from, to, bytes).
    log: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Hosts that are switched off: they neither receive nor run timers.
    down: HashSet<SocketAddr>,
    /// Datagrams matching this are dropped instead of delivered (after being logged).
    drop_if: Option<DropFilter>,
}

impl Net {
    fn new() -> Net {
        Net {
            hosts: Vec::new(),
            now: START,
            flight: Vec::new(),
            blocked: HashSet::new(),
            log: Vec::new(),
            down: HashSet::new(),
            drop_if: None,
        }
    }

    fn add(
        &mut self,
        identity: Identity,
        addr: SocketAddr,
        planet: &World,
        tweak: impl FnOnce(&mut NodeConfig),
    ) -> usize {
        let mut config = NodeConfig::new(identity, planet.clone());
        config.local_addresses = vec![addr];
        config.rng_seed = Some(self.hosts.len() as u64 + 1);
        tweak(&mut config);
        self.hosts.push(Host {
            addr,
            node: Node::new(config, self.now),
            events: Vec::new(),
        });
        self.hosts.len() - 1
    }

    fn node(&mut self, i: usize) -> &mut Node {
        &mut self.hosts[i].node
    }

    fn send(
        &mut self,
        i: usize,
        to: Address,
        type_id: u64,
        data: &[u8],
    ) -> Result<(), ztrs::node::SendError> {
        let now = self.now;
        self.hosts[i].node.send_user_message(now, to, type_id, data)
    }

    fn echo(&mut self, i: usize, to: Address, payload: &[u8]) -> Result<(), ztrs::node::SendError> {
        let now = self.now;
        self.hosts[i].node.echo(now, to, payload)
    }

    fn block(&mut self, a: SocketAddr, b: SocketAddr) {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
    }

    /// Moves every pending transmit onto the wire and every event into its host's list.
    fn collect(&mut self) {
        let mut buf = Vec::new();
        for h in &mut self.hosts {
            while let Some(t) = h.node.poll_transmit(&mut buf) {
                let from = if t.local.ip().is_unspecified() {
                    h.addr
                } else {
                    t.local
                };
                assert_eq!(from, h.addr, "a node sent from a socket it does not have");
                self.log.push((from, t.remote, buf.clone()));
                if self.blocked.contains(&(from, t.remote)) || self.down.contains(&t.remote) {
                    continue;
                }
                if self
                    .drop_if
                    .as_ref()
                    .is_some_and(|f| f(from, t.remote, &buf))
                {
                    continue;
                }
                self.flight.push(InFlight {
                    at: self.now + DELAY,
                    from,
                    to: t.remote,
                    data: buf.clone(),
                });
            }
            while let Some(e) = h.node.poll_event() {
                h.events.push(e);
            }
        }
    }

    /// Injects a datagram as if `from` had sent it to `to`.
    fn inject(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.flight.push(InFlight {
            at: self.now + DELAY,
            from,
            to,
            data,
        });
    }

    /// Runs the network until `self.now + ms`.
    fn run(&mut self, ms: u64) {
        let deadline = self.now + ms;
        let mut steps = 0u32;
        loop {
            self.collect();
            let next_flight = self.flight.iter().map(|f| f.at).min();
            let next_timer = self
                .hosts
                .iter()
                .filter(|h| !self.down.contains(&h.addr))
                .filter_map(|h| h.node.poll_timeout())
                .min();
            let next = match (next_flight, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(deadline),
            }
            .max(self.now);
            if next > deadline {
                break;
            }
            self.now = next;
            let (due, later): (Vec<InFlight>, Vec<InFlight>) =
                self.flight.drain(..).partition(|f| f.at <= next);
            self.flight = later;
            for f in due {
                if self.down.contains(&f.to) {
                    continue;
                }
                if let Some(h) = self.hosts.iter_mut().find(|h| h.addr == f.to) {
                    h.node.handle_datagram(next, f.to, f.from, &f.data);
                }
            }
            for h in &mut self.hosts {
                if self.down.contains(&h.addr) {
                    continue;
                }
                if h.node.poll_timeout().is_some_and(|t| t <= next) {
                    h.node.handle_timeout(next);
                }
            }
            steps += 1;
            assert!(steps < 200_000, "the network does not settle");
        }
        self.now = deadline;
        self.collect();
    }

    /// Replaces host `i`'s node by a fresh one built from `config` (a restart: all state lost).
    fn restart(&mut self, i: usize, config: NodeConfig) {
        self.hosts[i].node = Node::new(config, self.now);
        self.hosts[i].events.clear();
        self.down.remove(&self.hosts[i].addr);
    }

    fn events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.hosts[i].events)
    }
}

const ROOT: usize = 0;
const A: usize = 1;
const B: usize = 2;

fn root_at() -> SocketAddr {
    sa("10.0.0.1:9993")
}
fn a_at() -> SocketAddr {
    sa("10.0.0.2:9993")
}
fn b_at() -> SocketAddr {
    sa("10.0.0.3:9993")
}

/// Root (id3) + members A (id1) and B (id2), started and run until online.
fn three_nodes(tweak: impl Fn(&mut NodeConfig)) -> (Net, [Address; 3]) {
    let planet = private_planet(&reference_identity(3), root_at());
    three_nodes_on(&planet, tweak)
}

fn three_nodes_on(planet: &World, tweak: impl Fn(&mut NodeConfig)) -> (Net, [Address; 3]) {
    let root = reference_identity(3);
    let a = reference_identity(1);
    let b = reference_identity(2);
    let addrs = [root.address(), a.address(), b.address()];
    let mut net = Net::new();
    net.add(root, root_at(), planet, &tweak);
    net.add(a, a_at(), planet, &tweak);
    net.add(b, b_at(), planet, &tweak);
    net.run(2_000);
    (net, addrs)
}

fn user_messages(events: &[Event]) -> Vec<(Address, u64, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::UserMessage {
                from,
                type_id,
                data,
            } => Some((*from, *type_id, data.clone())),
            _ => None,
        })
        .collect()
}

/// The direct path `from` has to `to`'s address, if any.
fn has_direct_path(net: &mut Net, from: usize, to: Address, remote: SocketAddr) -> bool {
    net.node(from)
        .peer(to)
        .is_some_and(|p| p.paths.iter().any(|x| x.remote == remote))
}

#[test]
fn members_come_online_through_the_root() {
    let (mut net, [root, a, b]) = three_nodes(|_| {});
    assert!(net.node(ROOT).is_root());
    assert!(net.node(ROOT).online());
    for m in [A, B] {
        assert!(net.node(m).online(), "member {m} online");
        assert!(net.events(m).contains(&Event::Online(true)));
        let info = net.node(m).peer(root).expect("root peer");
        assert_eq!(info.role, PeerRole::Planet);
        assert_eq!(info.protocol_version, PROTOCOL_VERSION);
        assert!(info.latency_ms.is_some_and(|l| l >= 2 * DELAY as u32));
        assert_eq!(info.paths.len(), 1);
        assert_eq!(info.paths[0].remote, root_at());
        assert!(info.paths[0].preferred);
    }
    // The root learned both members from their HELLOs (proof of work checked once each) and
    // their paths from the OK(HELLO)s of its own HELLOs back (8.4).
    let root_node = net.node(ROOT);
    assert_eq!(root_node.counters().pow_checks, 2);
    for (m, at) in [(a, a_at()), (b, b_at())] {
        let info = root_node.peer(m).expect("member known to root");
        assert_eq!(info.role, PeerRole::Leaf);
        assert!(info.paths.iter().any(|p| p.remote == at));
    }
    // Members do not know each other yet.
    assert!(net.node(A).peer(b).is_none());
    // Timers keep the root reachable: an hour later everybody is still online.
    net.run(3_600_000);
    for m in [A, B] {
        assert!(net.node(m).online());
        assert!(net.node(m).peer(root).is_some_and(|p| !p.paths.is_empty()));
    }
}

#[test]
fn whois_relay_rendezvous_then_direct() {
    let (mut net, [_, a, b]) = three_nodes(|_| {});
    let relayed_before = net.node(ROOT).counters().relay_forwarded;
    net.send(A, b, 0x10000, b"first, relayed")
        .expect("queued for WHOIS");
    net.run(2_000);
    // A looked B up through the root; B looked A up when the relayed message arrived.
    assert!(net.node(A).counters().whois_sent >= 1);
    assert!(net.node(B).counters().unknown_peer_queued >= 1);
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x10000, b"first, relayed".to_vec())]
    );
    let root_counters = net.node(ROOT).counters().clone();
    assert!(root_counters.relay_forwarded > relayed_before);
    assert_eq!(root_counters.rendezvous_sent, 2);
    assert!(net.node(A).counters().rendezvous_received >= 1);
    // B may get its RENDEZVOUS before it has looked A up (then it is refused, as in the
    // reference); A's contact alone opens the path both ways.
    let bc = net.node(B).counters().clone();
    assert!(bc.rendezvous_received + bc.rendezvous_refused >= 1);
    // Both switched to a direct path after RENDEZVOUS (learned from OK with hops 0).
    assert!(has_direct_path(&mut net, A, b, b_at()));
    assert!(has_direct_path(&mut net, B, a, a_at()));
    assert!(net.events(A).contains(&Event::PeerDirectPath {
        peer: b,
        remote: b_at()
    }));
    // The next message goes straight from A to B.
    let relayed = net.node(ROOT).counters().relay_forwarded;
    net.log.clear();
    net.send(A, b, 0x10001, b"second, direct").expect("sent");
    net.echo(A, b, b"ping").expect("sent");
    net.run(1_000);
    assert_eq!(net.node(ROOT).counters().relay_forwarded, relayed);
    assert!(net.log.iter().any(|(f, t, _)| *f == a_at() && *t == b_at()));
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x10001, b"second, direct".to_vec())]
    );
    let replies: Vec<_> = net
        .events(A)
        .into_iter()
        .filter_map(|e| match e {
            Event::EchoReply {
                from,
                payload,
                rtt_ms,
            } => Some((from, payload, rtt_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(replies, vec![(b, b"ping".to_vec(), 2 * DELAY)]);
    // Cipher 3 between two protocol-12 peers on the direct path (HELLO is always cipher 0).
    let direct: Vec<_> = net
        .log
        .iter()
        .filter(|(f, t, d)| *f == a_at() && *t == b_at() && d.len() >= HEADER_LEN && !is_hello(d))
        .collect();
    assert!(!direct.is_empty());
    assert!(
        direct
            .iter()
            .all(|(_, _, d)| Cipher::from_flags(d[18]) == Cipher::AesGmacSiv)
    );
}

#[test]
fn blocked_direct_path_keeps_using_the_relay() {
    let (mut net, [_, a, b]) = three_nodes(|_| {});
    net.block(a_at(), b_at());
    for i in 0..5u8 {
        net.send(A, b, 0x20000, &[i; 100]).expect("sent or queued");
        net.send(B, a, 0x20001, &[i; 10]).expect("sent or queued");
        net.run(3_000);
    }
    assert_eq!(user_messages(&net.events(B)).len(), 5);
    assert_eq!(user_messages(&net.events(A)).len(), 5);
    assert!(!has_direct_path(&mut net, A, b, b_at()));
    assert!(!has_direct_path(&mut net, B, a, a_at()));
    // RENDEZVOUS was tried (at most once per ZT_MIN_UNITE_INTERVAL per pair).
    assert_eq!(net.node(ROOT).counters().rendezvous_sent, 2);
    // A long run later traffic still flows through the root.
    net.run(120_000);
    net.send(A, b, 0x20002, b"still relayed").expect("sent");
    net.run(1_000);
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x20002, b"still relayed".to_vec())]
    );
}

/// Builds an armored packet from `from` to `to` with `key` (test-side crafting of
/// forgeries and replies, using only the public codecs and armor).
fn craft(
    from: Address,
    to: Address,
    verb: Verb,
    payload: &[u8],
    key: &SymmetricKey,
    cipher: Cipher,
    id: u64,
) -> Vec<u8> {
    let mut p = Vec::new();
    p.put_u64(id);
    p.put_bytes(&to.to_bytes());
    p.put_bytes(&from.to_bytes());
    p.put_u8(0);
    p.put_u64(0);
    p.put_u8(verb.to_byte());
    p.put_bytes(payload);
    armor(&mut p, key, cipher).expect("armor");
    p
}

fn key_between(a: &Identity, b: &Identity) -> SymmetricKey {
    SymmetricKey::new(&a.agree(b).expect("secret present"))
}

fn ok_hello_payload(in_re: u64) -> Vec<u8> {
    let mut out = Vec::new();
    OkReply {
        in_re_packet_id: in_re,
        body: OkBody::Hello(OkHello {
            timestamp_echo: 0,
            protocol_version: 12,
            software_version: SoftwareVersion {
                major: 1,
                minor: 14,
                revision: 1,
            },
            sent_from: InetAddress::Nil,
            world_updates: &[],
        }),
    }
    .emit(&mut out);
    out
}

fn is_hello(d: &[u8]) -> bool {
    d.len() >= HEADER_LEN && Cipher::from_flags(d[18]) == Cipher::Poly1305None && d[27] & 0x1f == 1
}

#[test]
fn ok_hello_only_from_the_peer_we_sent_that_hello_to() {
    let root_id = reference_identity(3);
    let a_id = reference_identity(1);
    let b_id = reference_identity(2);
    let (mut net, [root, a, b]) = three_nodes(|_| {});
    // Make A and B know each other (so B can authenticate to A).
    net.send(A, b, 0x10000, b"hi").unwrap();
    net.run(2_000);
    // Swallow A's next HELLOs to the root so their ids stay unanswered.
    net.drop_if = Some(Box::new(|from, to, d| {
        from == a_at() && to == root_at() && is_hello(d)
    }));
    net.log.clear();
    net.run(240_000);
    let hello_id = net
        .log
        .iter()
        .rev()
        .find(|(f, t, d)| *f == a_at() && *t == root_at() && is_hello(d))
        .map(|(_, _, d)| u64::from_be_bytes(d[..8].try_into().unwrap()))
        .expect("A sent the root a HELLO");
    net.drop_if = None;
    let before = net.node(A).counters().ok_unexpected;

    // 1. From another peer (B, authenticated) in reply to A's HELLO to the root.
    let ab = key_between(&b_id, &a_id);
    let forged = craft(
        b,
        a,
        Verb::Ok,
        &ok_hello_payload(hello_id),
        &ab,
        Cipher::AesGmacSiv,
        11,
    );
    net.inject(b_at(), a_at(), forged);
    // 2. From the root, with an id A never used.
    let ra = key_between(&root_id, &a_id);
    let wrong = craft(
        root,
        a,
        Verb::Ok,
        &ok_hello_payload(hello_id ^ 1),
        &ra,
        Cipher::AesGmacSiv,
        12,
    );
    net.inject(root_at(), a_at(), wrong);
    net.run(100);
    assert_eq!(net.node(A).counters().ok_unexpected, before + 2);

    // 3. The right peer with the right id is accepted, once.
    let right = craft(
        root,
        a,
        Verb::Ok,
        &ok_hello_payload(hello_id),
        &ra,
        Cipher::AesGmacSiv,
        13,
    );
    net.inject(root_at(), a_at(), right.clone());
    net.run(100);
    assert_eq!(net.node(A).counters().ok_unexpected, before + 2);
    net.inject(root_at(), a_at(), right);
    net.run(100);
    assert_eq!(net.node(A).counters().ok_unexpected, before + 3);
}

/// A HELLO from a fresh random key (no proof of work) that authenticates to `to`.
fn random_identity_hello(to: &Identity, nonce: u64) -> Vec<u8> {
    let (public, secret) = c25519::generate_keypair();
    let mut raw = [0u8; 8];
    c25519::random_bytes(&mut raw);
    // First byte 0x01..=0x7f: never reserved, never the fragment indicator 0xff.
    let address = Address::from_u64((u64::from_be_bytes(raw) & 0x007f_ffff_ffff) | 0x01_0000_0000);
    let forged = Identity::from_parts(address, public, Some(secret));
    let key = key_between(&forged, to);
    let mut tail = Vec::new();
    HelloMoons::default().emit(&mut tail);
    let hello = Hello {
        protocol_version: 12,
        software_version: SoftwareVersion {
            major: 1,
            minor: 14,
            revision: 1,
        },
        timestamp: nonce,
        identity: forged.to_public(),
        sent_to: Some(InetAddress::Nil),
        planet: Some(WorldStamp {
            id: 1,
            timestamp: 1,
        }),
        moon_tail: &tail,
    };
    let mut payload = Vec::new();
    hello.emit(&mut payload);
    let mut p = Vec::new();
    p.put_u64(nonce);
    p.put_bytes(&to.address().to_bytes());
    p.put_bytes(&address.to_bytes());
    p.put_u8(0);
    p.put_u64(0);
    p.put_u8(Verb::Hello.to_byte());
    p.put_bytes(&payload);
    let tail_at = HEADER_LEN + hello.moon_tail_offset();
    crypt_field(&key, nonce.to_be_bytes(), &mut p[tail_at..]);
    armor(&mut p, &key, Cipher::Poly1305None).unwrap();
    p
}

#[test]
fn hello_flood_from_random_identities_is_rate_limited() {
    let limits = NodeLimits {
        hello_burst_per_prefix: 2,
        hello_burst_global: 8,
        hello_global_refill_ms: 1_000,
        ..NodeLimits::default()
    };
    let (mut net, [_, a, b]) = three_nodes(|c| c.limits = limits);
    let root_id = reference_identity(3);
    let pow_before = net.node(ROOT).counters().pow_checks;
    // 100 HELLOs from one /24, then 100 from 100 different /24s, within 100 ms.
    for i in 0..200u64 {
        let from = if i < 100 {
            sa(&format!("192.0.2.{}:9993", i + 1))
        } else {
            sa(&format!("198.18.{}.1:9993", i - 100))
        };
        let hello = random_identity_hello(&root_id, 0xf100_0000 + i);
        net.inject(from, root_at(), hello);
    }
    net.run(100);
    let c = net.node(ROOT).counters().clone();
    let pow = c.pow_checks - pow_before;

    // Per prefix: 2 from the single /24; globally: at most 8 in total.
    assert!(pow <= 8, "proof-of-work checks bounded: {pow}");
    assert!(pow >= 2);
    assert_eq!(c.invalid_identity, pow);
    assert_eq!(c.hello_rate_limited, 200 - pow);
    // None of them became a peer.
    assert_eq!(net.node(ROOT).peer_count(), 2);
    // Legitimate peers keep working.
    net.send(A, b, 0x30000, b"after the flood").unwrap();
    net.run(3_000);
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x30000, b"after the flood".to_vec())]
    );
}

#[test]
fn spoofed_sources_never_authenticate() {
    let a_id = reference_identity(1);
    let b_id = reference_identity(2);
    let (mut net, [_, a, b]) = three_nodes(|_| {});
    net.send(A, b, 0x10000, b"hello b").unwrap();
    net.run(2_000);
    assert_eq!(user_messages(&net.events(B)).len(), 1);
    let attacker = sa("10.0.0.66:9993");

    // 1. A USER_MESSAGE claiming to be from A, armored with a key that is not A's.
    let (public, secret) = c25519::generate_keypair();
    let mallory = Identity::from_parts(a, public, Some(secret));
    let wrong_key = key_between(&mallory, &b_id);
    let mut msg = Vec::new();
    UserMessage {
        type_id: 0x40000,
        payload: b"forged",
    }
    .emit(&mut msg);
    let bad_before = net.node(B).counters().bad_mac;
    for cipher in [
        Cipher::Salsa2012Poly1305,
        Cipher::AesGmacSiv,
        Cipher::Poly1305None,
    ] {
        let forged = craft(a, b, Verb::UserMessage, &msg, &wrong_key, cipher, 77);
        net.inject(attacker, b_at(), forged);
    }
    // 2. A HELLO claiming A's address with Mallory's key: not A, so it never replaces A's
    //    key (H2.6); it only earns an IDENTITY_COLLISION error.
    let mut tail = Vec::new();
    HelloMoons::default().emit(&mut tail);
    let hello = Hello {
        protocol_version: 12,
        software_version: SoftwareVersion::default(),
        timestamp: 1,
        identity: mallory.to_public(),
        sent_to: Some(InetAddress::Nil),
        planet: None,
        moon_tail: &[],
    };
    let mut payload = Vec::new();
    hello.emit(&mut payload);
    net.inject(
        attacker,
        b_at(),
        craft(
            a,
            b,
            Verb::Hello,
            &payload,
            &wrong_key,
            Cipher::Poly1305None,
            78,
        ),
    );
    net.run(100);
    let c = net.node(B).counters().clone();
    assert_eq!(c.bad_mac, bad_before + 3);
    assert_eq!(c.identity_collision, 1);
    assert!(user_messages(&net.events(B)).is_empty());

    // 3. Genuine packets replayed from the attacker's address: they authenticate (they are
    //    A's and B's), but an OK is accepted only once, so replayed OKs are refused, and no
    //    path to the attacker is ever learned (paths come only from accepted OKs).
    let ab = key_between(&a_id, &b_id);
    let verb_of = |d: &[u8]| {
        let mut copy = d.to_vec();
        ztrs::crypto::dearmor(&mut copy, &ab)
            .ok()
            .map(|_| Verb::from_byte(copy[27]))
    };
    let oks_from_b: Vec<Vec<u8>> = net
        .log
        .iter()
        .filter(|(f, t, d)| *f == b_at() && *t == a_at() && !is_fragment(d))
        .filter(|(_, _, d)| verb_of(d) == Some(Verb::Ok))
        .map(|(_, _, d)| d.clone())
        .collect();
    assert!(!oks_from_b.is_empty());
    let messages_from_a: Vec<Vec<u8>> = net
        .log
        .iter()
        .filter(|(f, t, d)| *f == a_at() && *t == b_at() && !is_fragment(d))
        .filter(|(_, _, d)| verb_of(d) == Some(Verb::UserMessage))
        .map(|(_, _, d)| d.clone())
        .collect();
    let unexpected_before = net.node(A).counters().ok_unexpected;
    for ok in &oks_from_b {
        net.inject(attacker, a_at(), ok.clone());
    }
    for m in messages_from_a {
        net.inject(attacker, b_at(), m);
    }
    net.log.clear();
    net.run(5_000);
    assert_eq!(
        net.node(A).counters().ok_unexpected,
        unexpected_before + oks_from_b.len() as u64
    );
    assert!(!has_direct_path(&mut net, B, a, attacker));
    assert!(!has_direct_path(&mut net, A, b, attacker));
    // B only asked the attacker's address who it is (a HELLO, at most once per second).
    let to_attacker: Vec<_> = net.log.iter().filter(|(_, t, _)| *t == attacker).collect();
    assert!(
        to_attacker
            .iter()
            .all(|(_, _, d)| is_hello(d) || d.len() <= 40)
    );
    net.events(B);

    // A's real key still works.
    net.send(A, b, 0x10001, b"still me").unwrap();
    net.run(1_000);
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x10001, b"still me".to_vec())]
    );
}

/// The moon root of the reference capture (28210c94e2), a fourth identity with a secret.
fn capture_root_identity() -> Identity {
    let path = common::vectors_dir().join("zerotierone-1.14.1-capture/root/identity.secret");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()))
        .trim()
        .parse()
        .expect("capture identity parses")
}

fn m_at() -> SocketAddr {
    sa("10.0.0.4:9993")
}

fn is_fragment(d: &[u8]) -> bool {
    d.len() > 16 && d[13] == 0xff
}

#[test]
fn large_messages_are_fragmented_relayed_and_reassembled() {
    let (mut net, [_, a, b]) = three_nodes(|_| {});
    net.log.clear();
    let big: Vec<u8> = (0..5_000u32).map(|i| (i * 7) as u8).collect();
    net.send(A, b, 0x50000, &big).unwrap();
    net.run(3_000);
    // Fragments went A -> root and root -> B (relayed piece by piece, hops + 1).
    assert!(
        net.log
            .iter()
            .any(|(f, t, d)| *f == a_at() && *t == root_at() && is_fragment(d))
    );
    assert!(
        net.log
            .iter()
            .any(|(f, t, d)| *f == root_at() && *t == b_at() && is_fragment(d) && d[15] == 1)
    );
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x50000, big.clone())]
    );
    // Direct now: the largest message that fits in 7 fragments goes straight to B.
    assert!(has_direct_path(&mut net, A, b, b_at()));
    let huge = vec![0x5a; 9_000];
    net.log.clear();
    net.send(A, b, 0x50001, &huge).unwrap();
    net.run(1_000);
    let pieces = net
        .log
        .iter()
        .filter(|(f, t, d)| *f == a_at() && *t == b_at() && is_fragment(d))
        .count();
    assert_eq!(pieces, 6);
    assert_eq!(user_messages(&net.events(B)), vec![(a, 0x50001, huge)]);
    assert_eq!(
        net.send(A, b, 0x50002, &[0; 10_000]),
        Err(ztrs::node::SendError::TooLarge)
    );
}

#[test]
fn orbiting_a_moon_through_its_seed_then_using_it_as_the_only_root() {
    let root = reference_identity(3);
    let moon_root = capture_root_identity();
    let planet = private_planet(&root, root_at());
    let (public, secret) = c25519::generate_keypair();
    let moon_id = moon_root.address().to_u64();
    let mut moon = World {
        world_type: WorldType::Moon,
        id: moon_id,
        timestamp: 42,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: moon_root.to_public(),
            stable_endpoints: vec![InetAddress::from_socket_addr(m_at())],
        }],
    };
    moon.sign(&secret);
    let mut net = Net::new();
    net.add(root, root_at(), &planet, |_| {});
    let a_id = reference_identity(1);
    let b_id = reference_identity(2);
    let (a, b, m) = (a_id.address(), b_id.address(), moon_root.address());
    net.add(a_id, a_at(), &planet, |_| {});
    net.add(b_id, b_at(), &planet, |_| {});
    let moon_for_m = moon.clone();
    const M: usize = 3;
    net.add(moon_root, m_at(), &planet, move |c| {
        c.moons = vec![moon_for_m]
    });
    net.run(2_000);
    assert!(net.node(M).is_root());
    for member in [A, B] {
        let now = net.now;
        net.node(member).orbit(now, moon_id, m);
    }
    net.run(3_000);
    for member in [A, B] {
        assert!(net.events(member).contains(&Event::WorldUpdated {
            id: moon_id,
            timestamp: 42,
            is_moon: true
        }));
        assert_eq!(net.node(member).moons(), &[moon.clone()][..]);
        let info = net.node(member).peer(m).expect("moon root known");
        assert_eq!(info.role, PeerRole::Moon);
        assert!(info.paths.iter().any(|p| p.remote == m_at()));
    }
    // The planet root goes away: the moon root keeps the members online and relays for them.
    net.down.insert(root_at());
    net.block(a_at(), b_at());
    net.run(600_000);
    for member in [A, B] {
        assert!(
            net.node(member).online(),
            "member {member} online through the moon"
        );
    }
    net.send(A, b, 0x60000, b"via the moon").unwrap();
    net.run(3_000);
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x60000, b"via the moon".to_vec())]
    );
    assert!(net.node(M).counters().relay_forwarded > 0);
    // Deorbiting removes the moon root from the upstreams.
    net.node(A).deorbit(moon_id);
    assert!(net.node(A).moons().is_empty());
    assert_eq!(net.node(A).peer(m).map(|p| p.role), Some(PeerRole::Leaf));
}

#[test]
fn root_failover_and_restart() {
    let r1 = reference_identity(3);
    let r2 = capture_root_identity();
    let (public, secret) = c25519::generate_keypair();
    let mut planet = World {
        world_type: WorldType::Planet,
        id: 0x5a5a_0002,
        timestamp: 1,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![
            Root {
                identity: r1.to_public(),
                stable_endpoints: vec![InetAddress::from_socket_addr(root_at())],
            },
            Root {
                identity: r2.to_public(),
                stable_endpoints: vec![InetAddress::from_socket_addr(m_at())],
            },
        ],
    };
    planet.sign(&secret);
    const R2: usize = 3;
    let mut net = Net::new();
    net.add(r1, root_at(), &planet, |_| {});
    let a_id = reference_identity(1);
    let b_id = reference_identity(2);
    let (a, b) = (a_id.address(), b_id.address());
    net.add(a_id, a_at(), &planet, |_| {});
    net.add(b_id, b_at(), &planet, |_| {});
    net.add(r2.clone(), m_at(), &planet, |_| {});
    net.run(2_000);
    net.block(a_at(), b_at());
    // Root 1 fails; after a while the members prefer root 2.
    net.down.insert(root_at());
    net.run(300_000);
    for member in [A, B] {
        assert!(net.node(member).online());
    }
    net.send(A, b, 0x70000, b"through root 2").unwrap();
    net.run(3_000);
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 0x70000, b"through root 2".to_vec())]
    );
    assert!(net.node(R2).counters().relay_forwarded > 0);
    // Root 2 restarts with empty state; the members' keepalive HELLOs teach it who they are.
    let mut config = NodeConfig::new(r2, planet.clone());
    config.local_addresses = vec![m_at()];
    net.restart(R2, config);
    net.run(120_000);
    assert!(net.node(R2).peer(a).is_some() && net.node(R2).peer(b).is_some());
    net.send(B, a, 0x70001, b"after the restart").unwrap();
    net.run(3_000);
    assert_eq!(
        user_messages(&net.events(A)),
        vec![(b, 0x70001, b"after the restart".to_vec())]
    );
}

#[test]
fn planet_updates_arrive_in_ok_hello_from_the_root() {
    let root = reference_identity(3);
    let (public, secret) = c25519::generate_keypair();
    let mut old = World {
        world_type: WorldType::Planet,
        id: 0x5a5a_0003,
        timestamp: 1,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: root.to_public(),
            stable_endpoints: vec![InetAddress::from_socket_addr(root_at())],
        }],
    };
    old.sign(&secret);
    let mut new = old.clone();
    new.timestamp = 2;
    new.sign(&secret);
    let mut net = Net::new();
    net.add(root, root_at(), &new, |_| {});
    net.add(reference_identity(1), a_at(), &old, |_| {});
    net.run(2_000);
    assert!(net.events(A).contains(&Event::WorldUpdated {
        id: 0x5a5a_0003,
        timestamp: 2,
        is_moon: false
    }));
    assert_eq!(net.node(A).planet(), &new);
    assert_eq!(net.node(A).counters().worlds_accepted, 1);
}

#[test]
fn identity_collision_reported_by_a_root_is_an_event() {
    let root_id = reference_identity(3);
    let a_id = reference_identity(1);
    let b_id = reference_identity(2);
    let (mut net, [root, a, b]) = three_nodes(|_| {});
    net.send(A, b, 1 << 20, b"meet").unwrap();
    net.run(2_000);
    net.drop_if = Some(Box::new(|from, to, d| {
        from == a_at() && to == root_at() && is_hello(d)
    }));
    net.log.clear();
    net.run(240_000);
    let hello_id = net
        .log
        .iter()
        .rev()
        .find(|(f, t, d)| *f == a_at() && *t == root_at() && is_hello(d))
        .map(|(_, _, d)| u64::from_be_bytes(d[..8].try_into().unwrap()))
        .expect("A sent the root a HELLO");
    net.drop_if = None;
    net.events(A);
    let mut error = Vec::new();
    ztrs::wire::verbs::ErrorReply {
        in_re_verb: Verb::Hello,
        in_re_packet_id: hello_id,
        body: ztrs::wire::verbs::ErrorBody::IdentityCollision,
    }
    .emit(&mut error);
    // From a non-root: counted, no event.
    let ba = key_between(&b_id, &a_id);
    net.inject(
        b_at(),
        a_at(),
        craft(b, a, Verb::Error, &error, &ba, Cipher::AesGmacSiv, 21),
    );
    net.run(100);
    assert!(
        !net.events(A)
            .iter()
            .any(|e| matches!(e, Event::IdentityCollision { .. }))
    );
    let ra = key_between(&root_id, &a_id);
    net.inject(
        root_at(),
        a_at(),
        craft(
            root,
            a,
            Verb::Error,
            &error,
            &ra,
            Cipher::Salsa2012Poly1305,
            22,
        ),
    );
    net.run(100);
    assert!(net.events(A).contains(&Event::IdentityCollision { root }));
    assert_eq!(net.node(A).counters().error_received, 2);
}

#[test]
fn trusted_peers_push_their_addresses() {
    let (mut net, [_, a, b]) = three_nodes(|_| {});
    net.block(a_at(), b_at());
    net.send(A, b, 1 << 20, b"meet").unwrap();
    net.run(2_000);
    let now = net.now;
    net.node(B).mark_trusted(now, a);
    net.node(A).mark_trusted(now, b);
    net.send(A, b, 1 << 20, b"trusted now").unwrap();
    net.run(2_000);
    // B pushed 10.0.0.3:9993 to A, which A (having no path there) tries to contact.
    assert!(net.node(B).counters().push_sent >= 1);
    assert!(net.node(A).counters().push_paths_accepted >= 1);
    // Relayed traffic re-pushes at most every ZT_DIRECT_PATH_PUSH_INTERVAL.
    for _ in 0..5 {
        net.send(A, b, 1 << 20, b"again").unwrap();
        net.run(1_000);
    }
    assert_eq!(net.node(B).counters().push_sent, 1);
}

#[test]
fn static_hints_reach_a_peer_before_any_rendezvous() {
    let b_addr = reference_identity(2).address();
    let (mut net, [_, a, b]) = three_nodes(|c| {
        if c.identity.address() != b_addr {
            c.static_paths = vec![(b_addr, b_at())];
        }
    });
    net.log.clear();
    net.send(A, b, 1 << 20, b"hint").unwrap();
    // WHOIS (10 ms) then the hinted HELLO; a RENDEZVOUS could only arrive after the relayed
    // message reached the root and came back (another 10 ms).
    net.run(17);
    assert_eq!(net.node(A).counters().rendezvous_received, 0);
    assert!(
        net.log
            .iter()
            .any(|(f, t, d)| *f == a_at() && *t == b_at() && is_hello(d))
    );
    net.run(2_000);
    assert!(has_direct_path(&mut net, A, b, b_at()));
    assert_eq!(
        user_messages(&net.events(B)),
        vec![(a, 1 << 20, b"hint".to_vec())]
    );
}

#[test]
fn paths_expire_and_inactive_peers_are_forgotten() {
    let (mut net, [root, _, b]) = three_nodes(|_| {});
    net.send(A, b, 1 << 20, b"meet").unwrap();
    net.run(2_000);
    assert!(has_direct_path(&mut net, A, b, b_at()));
    net.events(A);
    net.block(a_at(), b_at());
    net.run(ztrs::node::ZT_PEER_PATH_EXPIRATION + ztrs::node::ZT_PING_CHECK_INTERVAL);
    assert!(net.events(A).contains(&Event::PathExpired {
        peer: b,
        remote: b_at()
    }));
    assert!(!has_direct_path(&mut net, A, b, b_at()));
    net.run(ztrs::node::ZT_PEER_ACTIVITY_TIMEOUT);
    assert!(net.node(A).peer(b).is_none());
    assert!(net.node(A).counters().peers_removed >= 1);
    // Roots are never forgotten.
    assert!(net.node(A).peer(root).is_some());
    assert!(net.node(A).online());
}

#[test]
fn seeded_runs_are_reproducible() {
    let planet = private_planet(&reference_identity(3), root_at());
    let run = || {
        let (mut net, [_, a, b]) = three_nodes_on(&planet, |_| {});
        net.send(A, b, 1 << 20, b"one").unwrap();
        net.run(2_000);
        net.send(B, a, 1 << 20, b"two").unwrap();
        net.run(70_000);
        net.log
    };
    let first = run();
    assert!(first.len() > 20);
    assert_eq!(first, run());
}
