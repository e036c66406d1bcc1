//! Issue-3 scenarios for the node engine in the simulator (virtual time): a private planet
//! with one root and two members.

mod common;

use std::net::SocketAddr;

use ztrs::crypto::Identity;
use ztrs::crypto::c25519::{SIGNATURE_LEN, SecretKey};
use ztrs::node::{Event, Node, NodeConfig};
use ztrs::sim::{HostId, LinkConfig, Sim};
use ztrs::wire::Address;
use ztrs::wire::inet_address::InetAddress;
use ztrs::wire::world::{Root, World, WorldType};

const MESSAGE_TYPE: u64 = 0x7a74_7273;

fn identity(name: &str) -> Identity {
    let id: Identity = common::read_reference(name)
        .trim()
        .parse()
        .expect("reference identity");
    assert!(id.has_secret(), "{name} must hold a secret");
    id
}

fn socket(last_octet: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last_octet], 9993))
}

/// A one-root private planet signed by a fixed key, so runs are reproducible.
fn private_planet(root: &Identity, endpoint: SocketAddr) -> World {
    let key = SecretKey::from_bytes([7u8; 64]);
    let mut planet = World {
        world_type: WorldType::Planet,
        id: 0x5a7a_0000_0003,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: key.public_key(),
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: root.to_public(),
            stable_endpoints: vec![InetAddress::Ip(endpoint.ip(), endpoint.port())],
        }],
    };
    planet.sign(&key);
    planet
}

struct Scenario {
    sim: Sim<Node>,
    root: HostId,
    a: HostId,
    b: HostId,
}

impl Scenario {
    /// A root at 10.0.0.1 and members at 10.0.0.2 and 10.0.0.3 over the default link.
    fn new(seed: u64) -> Scenario {
        let root_id = identity("id1.secret");
        let planet = private_planet(&root_id, socket(1));
        let mut sim = Sim::new(seed);
        let now = sim.now();
        let add = |sim: &mut Sim<Node>, id: Identity, octet: u8| {
            let config = NodeConfig {
                local_addresses: vec![socket(octet)],
                rng_seed: Some(seed ^ u64::from(octet)),
                ..NodeConfig::new(id, planet.clone())
            };
            sim.add_host(Node::new(config, now), &[socket(octet)])
        };
        let root = add(&mut sim, root_id, 1);
        let a = add(&mut sim, identity("id2.secret"), 2);
        let b = add(&mut sim, identity("id3.secret"), 3);
        Scenario { sim, root, a, b }
    }

    fn address(&self, id: HostId) -> Address {
        self.sim.host(id).address()
    }

    fn online(&self, id: HostId) -> bool {
        self.sim.host(id).online()
    }

    fn got_message(&self, id: HostId, from: Address, data: &[u8]) -> bool {
        self.sim.events(id).iter().any(|(_, e)| {
            matches!(e, Event::UserMessage { from: f, type_id, data: d }
                if *f == from && *type_id == MESSAGE_TYPE && d == data)
        })
    }
}

#[test]
fn members_come_online_and_exchange_a_user_message() {
    let mut s = Scenario::new(1);
    s.sim.set_default_link(LinkConfig::with_delay(15));
    assert!(s.sim.host(s.root).is_root());
    let (a, b) = (s.a, s.b);

    let online = s
        .sim
        .run_until_condition(10_000, |sim| sim.host(a).online() && sim.host(b).online());
    assert!(online, "members never came online");
    assert!(s.online(s.root));
    for id in [a, b] {
        assert!(
            s.sim
                .events(id)
                .iter()
                .any(|(_, e)| *e == Event::Online(true)),
            "{id} reported no Online(true)"
        );
    }

    let (addr_a, addr_b) = (s.address(a), s.address(b));
    let started = s.sim.now();
    s.sim
        .host_mut(a)
        .send_user_message(started, addr_b, MESSAGE_TYPE, b"hello b")
        .expect("queued");
    let delivered = s.sim.run_until_condition(10_000, |sim| {
        sim.events(b).iter().any(|(_, e)| {
            matches!(e, Event::UserMessage { from, data, .. }
                    if *from == addr_a && data == b"hello b")
        })
    });
    assert!(delivered, "b never got the message: {:?}", s.sim.events(b));
    assert!(s.got_message(b, addr_a, b"hello b"));
    assert!(
        s.sim.host(s.root).counters().relay_forwarded > 0,
        "the first message goes through the root"
    );

    // And back.
    let now = s.sim.now();
    s.sim
        .host_mut(b)
        .send_user_message(now, addr_a, MESSAGE_TYPE, b"hello a")
        .expect("queued");
    let replied = s.sim.run_until_condition(10_000, |sim| {
        sim.events(a).iter().any(|(_, e)| {
            matches!(e, Event::UserMessage { from, data, .. }
                    if *from == addr_b && data == b"hello a")
        })
    });
    assert!(replied, "a never got the answer: {:?}", s.sim.events(a));
    assert_eq!(s.sim.stats().dropped.total(), 0, "{:?}", s.sim.stats());
}

/// Brings the members online over a jittery, lossy link, sends one message, and returns the
/// trace of every datagram.
fn traced(seed: u64) -> Vec<ztrs::sim::TraceEntry> {
    let mut s = Scenario::new(seed);
    s.sim.enable_trace();
    s.sim
        .set_default_link(LinkConfig::with_delay(15).jitter(10).loss(0.05));
    let (a, b) = (s.a, s.b);
    assert!(
        s.sim
            .run_until_condition(20_000, |sim| sim.host(a).online() && sim.host(b).online())
    );
    let addr_b = s.address(b);
    let now = s.sim.now();
    s.sim
        .host_mut(a)
        .send_user_message(now, addr_b, MESSAGE_TYPE, b"x")
        .expect("queued");
    s.sim.run_for(5_000);
    s.sim.take_trace()
}

/// The node seeds its generator from the config and the simulator from its seed, so a whole
/// run (packet ids, jitter, loss) is bit-identical for a seed.
#[test]
fn node_runs_are_reproducible_for_a_seed() {
    let first = traced(5);
    let second = traced(5);
    assert!(first.len() > 10);
    assert_eq!(first.len(), second.len());
    assert_eq!(first, second);
}
