//! Issue-3 proof, in the simulator (`ztrs::sim`, virtual time, seeded): roots and members
//! built from the vector identities (no proof of work is generated) on private worlds, over
//! links with delay, jitter, loss, reordering and duplication, partitions that come and go,
//! filters that drop or rewrite, and injected (spoofed) datagrams.
//!
//! Proves: WHOIS, relayed ECHO/USER_MESSAGE, then a direct path after RENDEZVOUS (the root's
//! relay counter stops growing); a blocked direct path keeps the relay, and healing it gives a
//! direct path at the next RENDEZVOUS; 10% loss with reordering and duplication converges; a
//! member partitioned for 5 s while it talks resumes on the same path; a root restart (state
//! lost) and failover between two roots under loss; a moon as the only reachable root; a
//! HELLO flood from random identities is rate limited with bounded proof-of-work work while
//! members keep talking (H2.9); packets claiming a member's address that do not authenticate
//! never produce its events (H6.10); OK(HELLO) is accepted once, only from the right peer
//! with the right id (H2.8); WHOIS for unknown addresses is unanswered and the pending set
//! stays bounded.

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use common::nodes::{
    capture_identity, craft, is_fragment, is_hello, key_between, moon_of, ok_hello_payload,
    packet_id, private_planet, random_identity_hello, reference_identity, sa,
};
use ztrs::crypto::Identity;
use ztrs::node::{Event, Node, NodeConfig, NodeLimits, PeerRole};
use ztrs::sim::{Cut, HostId, LinkConfig, Sim, Verdict};
use ztrs::wire::packet::{Cipher, HEADER_LEN};
use ztrs::wire::world::World;
use ztrs::wire::{Address, Verb};

const MESSAGE_TYPE: u64 = 0x7a74_7273;

fn at(last_octet: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last_octet], 9993))
}

/// Where nobody listens (datagrams to it are `no_route` in the simulator).
fn nowhere() -> SocketAddr {
    sa("10.9.9.9:9993")
}

fn attacker() -> SocketAddr {
    sa("10.0.0.66:9993")
}

/// The simulator and the hosts of one scenario, with helpers that use its clock.
struct Net {
    sim: Sim<Node>,
    seed: u64,
    configs: Vec<NodeConfig>,
}

impl Net {
    fn new(seed: u64, link: LinkConfig) -> Net {
        let mut sim = Sim::new(seed);
        sim.set_default_link(link);
        Net {
            sim,
            seed,
            configs: Vec::new(),
        }
    }

    /// Adds a node at `addr`; `tweak` adjusts its configuration.
    fn add(
        &mut self,
        identity: Identity,
        planet: &World,
        addr: SocketAddr,
        tweak: impl FnOnce(&mut NodeConfig),
    ) -> HostId {
        let mut config = NodeConfig::new(identity, planet.clone());
        config.local_addresses = vec![addr];
        config.rng_seed = Some(self.seed.wrapping_mul(1_000) + self.configs.len() as u64);
        tweak(&mut config);
        self.configs.push(config.clone());
        let now = self.sim.now();
        self.sim.add_host(Node::new(config, now), &[addr])
    }

    /// A fresh node with `id`'s original configuration: a restart with all state lost.
    fn restart(&mut self, id: HostId) {
        let mut config = self.configs[id.index()].clone();
        config.rng_seed = config.rng_seed.map(|s| s ^ 0xdead);
        let now = self.sim.now();
        self.sim.replace_host(id, Node::new(config, now));
    }

    fn node(&self, id: HostId) -> &Node {
        self.sim.host(id)
    }

    fn address(&self, id: HostId) -> Address {
        self.sim.host(id).address()
    }

    fn all_online(&mut self, ids: &[HostId], max_ms: u64) -> bool {
        let ids = ids.to_vec();
        self.sim
            .run_until_condition(max_ms, |sim| ids.iter().all(|&i| sim.host(i).online()))
    }

    fn send(&mut self, from: HostId, to: HostId, data: &[u8]) {
        let (now, to) = (self.sim.now(), self.address(to));
        // Queued for WHOIS or sent; `NoRoute` is possible while a root is away.
        let _ = self
            .sim
            .host_mut(from)
            .send_user_message(now, to, MESSAGE_TYPE, data);
    }

    fn echo(&mut self, from: HostId, to: HostId, payload: &[u8]) {
        let (now, to) = (self.sim.now(), self.address(to));
        let _ = self.sim.host_mut(from).echo(now, to, payload);
    }

    /// Sends `data` from `from` to `to` and waits up to `max_ms` for it.
    fn deliver(&mut self, from: HostId, to: HostId, data: &[u8], max_ms: u64) -> bool {
        self.send(from, to, data);
        let sender = self.address(from);
        let data = data.to_vec();
        self.sim
            .run_until_condition(max_ms, |sim| has_message(sim, to, sender, &data))
    }

    /// Like `deliver`, resending every `interval` ms up to `attempts` times (USER_MESSAGE
    /// is not retried by the protocol: an application on a lossy network resends).
    fn deliver_retrying(
        &mut self,
        from: HostId,
        to: HostId,
        data: &[u8],
        attempts: u32,
        interval: u64,
    ) -> bool {
        (0..attempts).any(|_| self.deliver(from, to, data, interval))
    }

    /// Echo with retries; true when an answer came back.
    fn echo_retrying(&mut self, from: HostId, to: HostId, payload: &[u8], attempts: u32) -> bool {
        let peer = self.address(to);
        let payload = payload.to_vec();
        (0..attempts).any(|_| {
            self.echo(from, to, &payload);
            self.sim.run_until_condition(2_000, |sim| {
                sim.events(from).iter().any(|(_, e)| {
                    matches!(e, Event::EchoReply { from: f, payload: p, .. }
                        if *f == peer && *p == payload)
                })
            })
        })
    }

    /// Whether `from` has a direct path to `to` at `remote`.
    fn has_path(&self, from: HostId, to: HostId, remote: SocketAddr) -> bool {
        self.node(from)
            .peer(self.address(to))
            .is_some_and(|p| p.paths.iter().any(|x| x.remote == remote))
    }

    fn wait_direct(&mut self, x: HostId, x_at: SocketAddr, y: HostId, y_at: SocketAddr) -> bool {
        let (ax, ay) = (self.address(x), self.address(y));
        self.sim.run_until_condition(30_000, |sim| {
            let path = |h: HostId, peer: Address, r: SocketAddr| {
                sim.host(h)
                    .peer(peer)
                    .is_some_and(|p| p.paths.iter().any(|x| x.remote == r))
            };
            path(x, ay, y_at) && path(y, ax, x_at)
        })
    }

    /// Waits until `root` has a direct path to each member.
    fn root_knows_paths(&mut self, root: HostId, members: &[(HostId, SocketAddr)]) {
        let members: Vec<(Address, SocketAddr)> =
            members.iter().map(|&(m, r)| (self.address(m), r)).collect();
        let known = self.sim.run_until_condition(30_000, |sim| {
            members.iter().all(|&(m, r)| {
                sim.host(root)
                    .peer(m)
                    .is_some_and(|p| p.paths.iter().any(|x| x.remote == r))
            })
        });
        assert!(known, "{root} never learned the members' paths");
    }

    fn relayed(&self, root: HostId) -> u64 {
        self.node(root).counters().relay_forwarded
    }

    /// No node saw a packet fail authentication or parsing (nothing on a lossy,
    /// reordering, duplicating network should look forged).
    fn assert_clean(&self) {
        for (id, node) in self.sim.hosts() {
            let c = node.counters();
            assert_eq!(c.bad_mac, 0, "{id}: {c:?}");
            assert_eq!(c.malformed_header, 0, "{id}");
            assert_eq!(c.malformed_payload, 0, "{id}");
            assert_eq!(c.invalid_identity, 0, "{id}");
            assert_eq!(c.reassembly.inconsistent, 0, "{id}");
        }
    }
}

fn has_message(sim: &Sim<Node>, at: HostId, from: Address, data: &[u8]) -> bool {
    sim.events(at).iter().any(|(_, e)| {
        matches!(e, Event::UserMessage { from: f, type_id, data: d }
            if *f == from && *type_id == MESSAGE_TYPE && d == data)
    })
}

fn messages_from(sim: &Sim<Node>, at: HostId, from: Address) -> Vec<Vec<u8>> {
    sim.events(at)
        .iter()
        .filter_map(|(_, e)| match e {
            Event::UserMessage { from: f, data, .. } if *f == from => Some(data.clone()),
            _ => None,
        })
        .collect()
}

fn went_offline_since(sim: &Sim<Node>, id: HostId, since: u64) -> bool {
    sim.events(id)
        .iter()
        .any(|(t, e)| *t >= since && *e == Event::Online(false))
}

/// A root (id3 at .1) and members A (id1 at .2) and B (id2 at .3) on a one-root planet.
struct Three {
    net: Net,
    root: HostId,
    a: HostId,
    b: HostId,
}

fn three(seed: u64, link: LinkConfig, tweak: impl Fn(&mut NodeConfig)) -> Three {
    let root_id = reference_identity(3);
    let planet = private_planet(&[(&root_id, at(1))]);
    let mut net = Net::new(seed, link);
    let root = net.add(root_id, &planet, at(1), &tweak);
    let a = net.add(reference_identity(1), &planet, at(2), &tweak);
    let b = net.add(reference_identity(2), &planet, at(3), &tweak);
    assert!(net.all_online(&[a, b], 30_000), "members never came online");
    assert!(net.node(root).is_root() && net.node(root).online());
    // A member is online once it hears from the root, but the root learns the member's path
    // only from the OK to its own HELLO back (8.4): until then it cannot relay to it (as in
    // the reference, such a packet is dropped as `relay_no_route`).
    net.root_knows_paths(root, &[(a, at(2)), (b, at(3))]);
    Three { net, root, a, b }
}

#[test]
fn members_come_online_and_exchange_a_user_message() {
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(1, LinkConfig::with_delay(15), |_| {});
    for id in [a, b] {
        assert!(
            net.sim
                .events(id)
                .iter()
                .any(|(_, e)| *e == Event::Online(true))
        );
        let info = net.node(id).peer(net.address(root)).expect("root peer");
        assert_eq!(info.role, PeerRole::Planet);
        assert!(info.paths.iter().any(|p| p.remote == at(1) && p.preferred));
    }
    assert!(net.deliver(a, b, b"hello b", 10_000));
    assert!(
        net.relayed(root) > 0,
        "the first message goes through the root"
    );
    assert!(net.deliver(b, a, b"hello a", 10_000));
    assert_eq!(net.sim.stats().dropped.total(), 0, "{:?}", net.sim.stats());
    net.assert_clean();
}

#[test]
fn whois_relay_then_direct_after_rendezvous() {
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(2, LinkConfig::with_delay(10).jitter(4), |_| {});
    assert!(net.node(a).peer(net.address(b)).is_none());
    // Datagram sizes between the members, in order, per direction.
    let direct: Rc<RefCell<Vec<(SocketAddr, usize)>>> = Rc::default();
    let log = Rc::clone(&direct);
    net.sim.add_filter(move |_, d| {
        if [at(2), at(3)].contains(&d.from) && [at(2), at(3)].contains(&d.to) {
            log.borrow_mut().push((d.from, d.data.len()));
        }
        Verdict::Pass
    });
    let relayed_before = net.relayed(root);
    net.echo(a, b, b"ping via relay");
    assert!(net.deliver(a, b, b"first, relayed", 5_000));
    // A looked B up through the root, which answered; B looked A up when the relayed
    // message arrived.
    assert!(net.node(a).counters().whois_sent >= 1);
    assert!(net.node(root).counters().whois_answered >= 1);
    assert!(net.node(b).counters().unknown_peer_queued >= 1);
    assert!(net.relayed(root) > relayed_before);
    assert!(net.echo_retrying(a, b, b"ping via relay", 1));
    // The root introduced them (once per pair per 30 s), and they switched to a direct path
    // (learned from an OK with hops 0).
    assert_eq!(net.node(root).counters().rendezvous_sent, 2);
    assert!(net.wait_direct(a, at(2), b, at(3)), "no direct path");
    let pb = net.address(b);
    assert!(net.sim.events(a).iter().any(|(_, e)| *e
        == Event::PeerDirectPath {
            peer: pb,
            remote: at(3)
        }));
    let info = net.node(a).peer(pb).expect("b known");
    assert!(info.paths.iter().any(|p| p.remote == at(3) && p.preferred));
    // Each side that accepted the RENDEZVOUS punched with a 4-byte junk datagram (IP TTL 2;
    // the simulator ignores the TTL, so it arrives and is counted as a runt) before its
    // contact.
    let first_from = |from: SocketAddr| {
        direct
            .borrow()
            .iter()
            .find(|(f, _)| *f == from)
            .map(|(_, len)| *len)
    };
    assert_eq!(first_from(at(2)), Some(4), "{:?}", direct.borrow());
    assert!(net.node(b).counters().runt >= 1);

    // From now on nothing goes through the root (once what was relayed before has landed).
    net.sim.run_for(1_000);
    let relayed = net.relayed(root);
    assert!(net.deliver(a, b, b"second, direct", 2_000));
    assert!(net.deliver(b, a, b"answer, direct", 2_000));
    assert!(net.echo_retrying(a, b, b"ping direct", 1));
    net.sim.run_for(20_000);
    assert_eq!(
        net.relayed(root),
        relayed,
        "the relay counter stopped growing"
    );
    let direct_rtt = net
        .sim
        .events(a)
        .iter()
        .find_map(|(_, e)| match e {
            Event::EchoReply {
                payload, rtt_ms, ..
            } if payload == b"ping direct" => Some(*rtt_ms),
            _ => None,
        })
        .expect("echo reply");
    assert!(
        direct_rtt <= 2 * (10 + 4),
        "direct round trip: {direct_rtt}"
    );
    net.assert_clean();
}

#[test]
fn blocked_direct_path_keeps_the_relay_until_healed() {
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(3, LinkConfig::with_delay(10), |_| {});
    let cut = net.sim.partition(Cut::Path(at(2), at(3)));
    for i in 0..5u8 {
        let before = net.relayed(root);
        assert!(net.deliver(a, b, &[i; 100], 3_000), "a -> b #{i}");
        assert!(net.deliver(b, a, &[i; 10], 3_000), "b -> a #{i}");
        assert!(net.relayed(root) > before, "#{i} went through the root");
    }
    assert!(!net.has_path(a, b, at(3)) && !net.has_path(b, a, at(2)));
    // RENDEZVOUS was sent (at most once per pair per 30 s) and the punch was tried.
    assert_eq!(net.node(root).counters().rendezvous_sent, 2);
    assert!(net.node(a).counters().contacts_sent + net.node(b).counters().contacts_sent >= 1);
    assert!(net.sim.stats().dropped.partition > 0);

    // Healed: the next RENDEZVOUS (after ZT_MIN_UNITE_INTERVAL) opens the direct path.
    net.sim.heal(cut);
    let mut direct = false;
    for i in 0..20u8 {
        assert!(net.deliver(a, b, &[0x40 + i], 3_000));
        net.sim.run_for(2_000);
        if net.has_path(a, b, at(3)) && net.has_path(b, a, at(2)) {
            direct = true;
            break;
        }
    }
    assert!(direct, "no direct path after healing");
    assert!(net.node(root).counters().rendezvous_sent >= 4);
    net.assert_clean();
}

/// 10% loss, reordering and duplication on every link: members come online, WHOIS and
/// HELLO are retried by the protocol, messages get through with application retries, and
/// the members end on a direct path. Nothing looks forged.
#[test]
fn lossy_reordering_duplicating_links_converge() {
    let link = LinkConfig::with_delay(10)
        .jitter(10)
        .loss(0.10)
        .duplicate(0.05)
        .reorder(0.10, 40);
    let mut impaired = (0, 0, 0);
    for seed in [10, 11, 12] {
        let Three {
            mut net,
            root,
            a,
            b,
        } = three(seed, link, |_| {});
        assert!(
            net.deliver_retrying(a, b, b"lossy a->b", 10, 2_000),
            "seed {seed}"
        );
        assert!(
            net.deliver_retrying(b, a, b"lossy b->a", 10, 2_000),
            "seed {seed}"
        );
        assert!(net.echo_retrying(a, b, b"lossy echo", 10), "seed {seed}");
        // Large messages are fragmented; a lost fragment loses the message, retries help.
        let big: Vec<u8> = (0..4_000u32).map(|i| (i * 7) as u8).collect();
        assert!(net.deliver_retrying(a, b, &big, 10, 2_000), "seed {seed}");
        let mut direct = false;
        for i in 0..40u8 {
            net.send(a, b, &[i]);
            net.sim.run_for(3_000);
            if net.has_path(a, b, at(3)) && net.has_path(b, a, at(2)) {
                direct = true;
                break;
            }
        }
        assert!(direct, "seed {seed}: no direct path");
        for id in [a, b] {
            assert!(net.node(id).online());
        }
        // Steady traffic both ways on the direct path.
        for i in 0..20u8 {
            assert!(
                net.deliver_retrying(a, b, &[0x80, i], 10, 500),
                "seed {seed}"
            );
            assert!(
                net.deliver_retrying(b, a, &[0x81, i], 10, 500),
                "seed {seed}"
            );
        }
        let stats = net.sim.stats();
        impaired.0 += stats.dropped.loss;
        impaired.1 += stats.duplicated;
        impaired.2 += stats.reordered;
        assert!(net.node(root).counters().relay_forwarded > 0);
        net.assert_clean();
    }
    assert!(
        impaired.0 > 0 && impaired.1 > 0 && impaired.2 > 0,
        "lost, duplicated, reordered: {impaired:?}"
    );
}

/// A member cut off for 5 s while it talks: what it sends meanwhile is lost, it stays online
/// and keeps its direct path, and traffic resumes when the partition ends.
#[test]
fn five_second_partition_of_a_talking_member() {
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(4, LinkConfig::with_delay(10).jitter(3), |_| {});
    assert!(net.deliver(a, b, b"meet", 3_000));
    assert!(net.wait_direct(a, at(2), b, at(3)));
    let start = net.sim.now();
    net.sim
        .partition_window(Cut::Isolate(a), start + 1_000, Some(start + 6_000));
    let pb = net.address(a);
    for i in 0..20u8 {
        net.send(a, b, &[i]);
        net.sim.run_for(500);
    }
    // Sent before and after the window arrive; those inside it are lost.
    let got = messages_from(&net.sim, b, pb);
    assert!(got.contains(&vec![0]) && got.contains(&vec![19]), "{got:?}");
    assert!(!got.contains(&vec![6]), "{got:?}");
    assert!(net.sim.stats().dropped.partition > 0);
    assert!(net.node(a).online());
    assert!(!went_offline_since(&net.sim, a, start));
    assert!(net.has_path(a, b, at(3)) && net.has_path(b, a, at(2)));
    let relayed = net.relayed(root);
    assert!(net.deliver(a, b, b"after", 1_000));
    assert_eq!(net.relayed(root), relayed);
}

/// The root restarts with all state lost while members must use it (direct path blocked),
/// on a lossy link: the members' keepalive HELLOs teach it who they are again and relaying
/// resumes; the members never go offline.
#[test]
fn root_restart_under_loss_members_recover() {
    let link = LinkConfig::with_delay(10).jitter(5).loss(0.05);
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(5, link, |_| {});
    net.sim.partition(Cut::Path(at(2), at(3)));
    assert!(net.deliver_retrying(a, b, b"before", 10, 2_000));
    let pa = net.address(a);
    net.restart(root);
    let restarted = net.sim.now();
    assert_eq!(net.node(root).peer_count(), 0);
    assert!(
        net.deliver_retrying(a, b, b"after the restart", 90, 2_000),
        "relaying never resumed"
    );
    assert!(net.deliver_retrying(b, a, b"and back", 10, 2_000));
    let r = net.node(root);
    assert!(r.peer(pa).is_some() && r.peer(net.address(b)).is_some());
    assert!(r.counters().relay_forwarded > 0);
    for id in [a, b] {
        assert!(net.node(id).online());
        assert!(!went_offline_since(&net.sim, id, restarted));
    }
}

/// Two roots on one planet; root 1 goes away (isolated) under 5% loss: members stay online,
/// relay and WHOIS go through root 2.
#[test]
fn failover_between_two_roots_under_loss() {
    let r1_id = reference_identity(3);
    let r2_id = capture_identity("", "root");
    let planet = private_planet(&[(&r1_id, at(1)), (&r2_id, at(4))]);
    let mut net = Net::new(6, LinkConfig::with_delay(10).jitter(5).loss(0.05));
    let r1 = net.add(r1_id, &planet, at(1), |_| {});
    let a = net.add(reference_identity(1), &planet, at(2), |_| {});
    let b = net.add(reference_identity(2), &planet, at(3), |_| {});
    let r2 = net.add(r2_id, &planet, at(4), |_| {});
    let c = net.add(capture_identity("", "a"), &planet, at(5), |_| {});
    assert!(net.all_online(&[a, b, c], 30_000));
    // Members talk only through roots.
    for (x, y) in [(2, 3), (2, 5), (3, 5)] {
        net.sim.partition(Cut::Path(at(x), at(y)));
    }
    assert!(net.deliver_retrying(a, b, b"before", 10, 2_000));
    for m in [a, b, c] {
        let roots: Vec<_> = net
            .node(m)
            .peers()
            .filter(|p| p.role == PeerRole::Planet && !p.paths.is_empty())
            .collect();
        assert_eq!(roots.len(), 2, "member knows both roots with paths");
    }

    net.sim.partition(Cut::Isolate(r1));
    let isolated = net.sim.now();
    let r1_relayed = net.relayed(r1);
    // Root selection weighs latency by recency (8.2): once root 1 has been silent for a
    // minute root 2 is preferred. Until then messages may be lost with root 1.
    net.sim.run_for(70_000);
    let r2_relayed = net.relayed(r2);
    let r2_whois = net.node(r2).counters().whois_answered;
    assert!(net.deliver_retrying(a, b, b"through root 2", 10, 2_000));
    assert!(net.deliver_retrying(b, a, b"back through root 2", 10, 2_000));
    assert!(net.relayed(r2) > r2_relayed);
    assert_eq!(net.relayed(r1), r1_relayed);
    // A new peer is looked up through root 2.
    assert!(net.deliver_retrying(a, c, b"hello c", 10, 2_000));
    assert!(net.node(r2).counters().whois_answered > r2_whois);
    for m in [a, b, c] {
        assert!(net.node(m).online());
        assert!(!went_offline_since(&net.sim, m, isolated));
    }
}

/// The planet's root is unreachable (an address nobody owns); members start with a moon and
/// work entirely through its root: online, WHOIS, relay, RENDEZVOUS and a direct path.
#[test]
fn a_moon_as_the_only_reachable_root() {
    let planet_root = reference_identity(3);
    let planet = private_planet(&[(&planet_root, nowhere())]);
    let moon_root = capture_identity("", "root");
    let moon = moon_of(&moon_root, at(6), 42);
    let mut net = Net::new(7, LinkConfig::with_delay(10).jitter(3));
    let with_moon = |c: &mut NodeConfig| c.moons = vec![moon.clone()];
    let m = net.add(moon_root, &planet, at(6), with_moon);
    let a = net.add(reference_identity(1), &planet, at(2), with_moon);
    let b = net.add(reference_identity(2), &planet, at(3), with_moon);
    assert!(net.node(m).is_root());
    assert!(net.all_online(&[a, b], 30_000));
    let pm = net.address(m);
    for id in [a, b] {
        assert_eq!(net.node(id).moons(), &[moon.clone()][..]);
        let info = net.node(id).peer(pm).expect("moon root");
        assert_eq!(info.role, PeerRole::Moon);
        assert!(info.paths.iter().any(|p| p.remote == at(6)));
        let planet_root = net
            .node(id)
            .peer(planet_root.address())
            .expect("planet root");
        assert!(planet_root.paths.is_empty());
    }
    assert!(
        net.sim.stats().dropped.no_route > 0,
        "the planet root was tried"
    );
    net.root_knows_paths(m, &[(a, at(2)), (b, at(3))]);
    assert!(net.deliver(a, b, b"via the moon", 5_000));
    assert!(net.node(m).counters().whois_answered >= 1);
    assert!(net.relayed(m) > 0);
    assert!(net.wait_direct(a, at(2), b, at(3)));
    assert!(net.node(m).counters().rendezvous_sent >= 2);
    assert!(net.deliver(b, a, b"direct now", 2_000));
}

/// HELLOs from random identities (no proof of work) armored correctly so that they reach
/// the proof-of-work check: from one /24, then from several /24s, while the members talk
/// through the root. The work stays within the per-prefix and global budgets.
#[test]
fn hello_flood_is_rate_limited_and_costs_bounded_work() {
    let limits = NodeLimits {
        hello_burst_per_prefix: 2,
        hello_refill_ms: 2_000,
        hello_burst_global: 6,
        hello_global_refill_ms: 500,
        ..NodeLimits::default()
    };
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(8, LinkConfig::with_delay(5), |c| c.limits = limits);
    net.sim.partition(Cut::Path(at(2), at(3)));
    assert!(net.deliver(a, b, b"before", 3_000));
    let root_identity = reference_identity(3);
    let c0 = net.node(root).counters().clone();

    // Phase 1: 100 HELLOs from 100 hosts of one /24 at once.
    for i in 0..100u64 {
        let from = SocketAddr::from(([192, 0, 2, 1 + i as u8], 9993));
        net.sim
            .inject(from, at(1), &random_identity_hello(&root_identity, i));
    }
    net.sim.run_for(50);
    let c1 = net.node(root).counters().clone();
    assert_eq!(c1.pow_checks - c0.pow_checks, 2, "one /24 costs its burst");
    assert_eq!(c1.hello_rate_limited - c0.hello_rate_limited, 98);

    // Phase 2: for 3 s, 6 HELLOs every 50 ms from 12 /24s, while the members talk.
    let flood_start = net.sim.now();
    let mut sent = 0u64;
    for tick in 0..60u64 {
        for k in 0..6u64 {
            let n = tick * 6 + k;
            let from = SocketAddr::from(([198, 18, (n % 12) as u8, 1 + (n / 12) as u8], 9993));
            net.sim.inject(
                from,
                at(1),
                &random_identity_hello(&root_identity, 1_000 + n),
            );
            sent += 1;
        }
        if tick % 10 == 0 {
            net.send(a, b, &[tick as u8; 32]);
            net.send(b, a, &[tick as u8; 16]);
        }
        net.sim.run_for(50);
    }
    net.sim.run_for(500);
    let elapsed = net.sim.now() - flood_start;
    let c2 = net.node(root).counters().clone();
    let pow = c2.pow_checks - c1.pow_checks;
    // The global bucket: its burst plus one per refill interval.
    let bound = u64::from(limits.hello_burst_global) + elapsed / limits.hello_global_refill_ms + 1;
    assert!(pow <= bound, "{pow} proof-of-work checks > {bound}");
    assert!(pow >= 1);
    assert_eq!(
        c2.invalid_identity - c0.invalid_identity,
        c2.pow_checks - c0.pow_checks
    );
    assert_eq!(c2.hello_rate_limited - c1.hello_rate_limited, sent - pow);
    assert_eq!(
        net.node(root).peer_count(),
        2,
        "no flood identity became a peer"
    );
    // The members' messages all got through meanwhile.
    let (pa, pb) = (net.address(a), net.address(b));
    assert_eq!(messages_from(&net.sim, b, pa).len(), 1 + 6);
    assert_eq!(messages_from(&net.sim, a, pb).len(), 6);
    assert!(net.node(a).online() && net.node(b).online());
}

/// H6.10: datagrams claiming A's address that do not authenticate as A (tampered bytes,
/// another key, rewritten in flight) never produce A's events at B and are counted; genuine
/// packets replayed from another address never make it a path; another identity claiming
/// A's address is a collision and A's key stays.
#[test]
fn spoofed_packets_never_authenticate() {
    let Three {
        mut net,
        root: _,
        a,
        b,
    } = three(9, LinkConfig::with_delay(10), |_| {});
    assert!(net.deliver(a, b, b"meet", 3_000));
    assert!(net.wait_direct(a, at(2), b, at(3)));
    let (pa, pb) = (net.address(a), net.address(b));
    let b_id = reference_identity(2);
    let mallory = capture_identity("", "b");

    // Record what A sends B directly.
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let log = Rc::clone(&seen);
    let recorder = net.sim.add_filter(move |_, d| {
        if d.from == at(2) && d.to == at(3) {
            log.borrow_mut().push(d.data.clone());
        }
        Verdict::Pass
    });
    assert!(net.deliver(a, b, b"genuine", 1_000));
    net.sim.remove_filter(recorder);
    let genuine = seen
        .borrow()
        .iter()
        .find(|d| !is_fragment(d) && !is_hello(d) && d.len() > HEADER_LEN + 8)
        .cloned()
        .expect("a recorded packet");
    let bad_mac = net.node(b).counters().bad_mac;

    // 1. Tampered copies from A's own address: every payload byte flipped in turn.
    let mut tampered = 0u64;
    for i in HEADER_LEN..genuine.len() {
        let mut copy = genuine.clone();
        copy[i] ^= 0x20;
        net.sim.inject(at(2), at(3), &copy);
        tampered += 1;
    }
    // 2. Another key claiming A's address, with each cipher.
    for (n, cipher) in [Cipher::Salsa2012Poly1305, Cipher::AesGmacSiv]
        .into_iter()
        .enumerate()
    {
        let mut payload = Vec::new();
        ztrs::wire::verbs::UserMessage {
            type_id: MESSAGE_TYPE,
            payload: b"forged",
        }
        .emit(&mut payload);
        let key = key_between(&mallory, &b_id);
        let forged = craft(
            pa,
            pb,
            Verb::UserMessage,
            &payload,
            &key,
            cipher,
            900 + n as u64,
        );
        net.sim.inject(attacker(), at(3), &forged);
        net.sim.inject(at(2), at(3), &forged);
    }
    net.sim.run_for(100);
    assert_eq!(net.node(b).counters().bad_mac, bad_mac + tampered + 4);

    // 3. A man in the middle rewrites every A -> B datagram for 2 s.
    let mitm = net.sim.add_filter(|_, d| {
        if d.from == at(2)
            && d.to == at(3)
            && d.data.len() > HEADER_LEN
            && let Some(last) = d.data.last_mut()
        {
            *last ^= 1;
        }
        Verdict::Pass
    });
    let before = net.node(b).counters().bad_mac;
    for i in 0..3u8 {
        net.send(a, b, &[0xee, i]);
        net.sim.run_for(500);
    }
    net.sim.remove_filter(mitm);
    assert!(net.node(b).counters().bad_mac >= before + 3);
    let got = messages_from(&net.sim, b, pa);
    assert!(
        !got.iter()
            .any(|m| m == b"forged" || m.first() == Some(&0xee))
    );
    assert!(
        got.iter().all(|m| m == b"meet" || m == b"genuine"),
        "{got:?}"
    );

    // 4. Genuine packets replayed from another address authenticate (they are A's), but
    //    never become a path: paths come only from OKs to what we sent.
    for d in seen.borrow().iter() {
        net.sim.inject(attacker(), at(3), d);
    }
    net.sim.run_for(5_000);
    assert!(!net.has_path(b, a, attacker()));
    let info = net.node(b).peer(pa).expect("a");
    assert!(info.paths.iter().all(|p| p.remote == at(2)));

    // 5. Another identity claiming A's address: a collision, A's cached key is kept (H2.6).
    let mut hello = random_identity_hello(&b_id, 77);
    hello[13..18].copy_from_slice(&pa.to_bytes());
    net.sim.inject(attacker(), at(3), &hello);
    net.sim.run_for(100);
    let c = net.node(b).counters();
    assert!(c.hello_address_mismatch + c.bad_mac + c.identity_collision > 0);
    assert!(net.deliver(a, b, b"still me", 1_000));
}

/// H2.8: an OK(HELLO) is accepted only from the peer the HELLO went to, with its id, once.
#[test]
fn ok_hello_only_from_the_right_peer_with_the_right_id_once() {
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(13, LinkConfig::with_delay(10), |_| {});
    assert!(net.deliver(a, b, b"meet", 3_000));
    // Swallow A's HELLOs to the root and keep the id of the last one.
    let hello_ids: Rc<RefCell<Vec<u64>>> = Rc::default();
    let ids = Rc::clone(&hello_ids);
    let swallow = net.sim.add_filter(move |_, d| {
        if d.from == at(2) && d.to == at(1) && is_hello(&d.data) {
            ids.borrow_mut().push(packet_id(&d.data));
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    assert!(
        net.sim
            .run_until_condition(300_000, |_| !hello_ids.borrow().is_empty())
    );
    net.sim.remove_filter(swallow);
    let hello_id = *hello_ids.borrow().last().expect("a HELLO id");
    let (pr, pa, pb) = (net.address(root), net.address(a), net.address(b));
    let (r_id, a_id, b_id) = (
        reference_identity(3),
        reference_identity(1),
        reference_identity(2),
    );
    let ra = key_between(&r_id, &a_id);
    let before = net.node(a).counters().ok_unexpected;
    // From another (authenticated) peer, answering A's HELLO to the root.
    let from_b = craft(
        pb,
        pa,
        Verb::Ok,
        &ok_hello_payload(hello_id),
        &key_between(&b_id, &a_id),
        Cipher::AesGmacSiv,
        1,
    );
    net.sim.inject(at(3), at(2), &from_b);
    // From the root with an id A never used.
    let wrong = craft(
        pr,
        pa,
        Verb::Ok,
        &ok_hello_payload(hello_id ^ 1),
        &ra,
        Cipher::AesGmacSiv,
        2,
    );
    net.sim.inject(at(1), at(2), &wrong);
    net.sim.run_for(100);
    assert_eq!(net.node(a).counters().ok_unexpected, before + 2);
    // The right one is accepted, once.
    let right = craft(
        pr,
        pa,
        Verb::Ok,
        &ok_hello_payload(hello_id),
        &ra,
        Cipher::AesGmacSiv,
        3,
    );
    net.sim.inject(at(1), at(2), &right);
    net.sim.run_for(100);
    assert_eq!(net.node(a).counters().ok_unexpected, before + 2);
    net.sim.inject(at(1), at(2), &right);
    net.sim.run_for(100);
    assert_eq!(net.node(a).counters().ok_unexpected, before + 3);
}

/// WHOIS for addresses nobody has: the root does not answer, the lookups are retried with
/// backoff then abandoned, the pending set never exceeds its bound, and the member keeps
/// working.
#[test]
fn whois_for_unknown_addresses_is_unanswered_and_bounded() {
    let limits = NodeLimits {
        max_pending_whois: 8,
        ..NodeLimits::default()
    };
    let Three {
        mut net,
        root,
        a,
        b,
    } = three(14, LinkConfig::with_delay(10), |c| c.limits = limits);
    let answered = net.node(root).counters().whois_answered;
    let now = net.sim.now();
    let mut refused = 0;
    for i in 0..20u64 {
        let nobody = Address::from_u64(0x01_0203_0400 + i);
        if net
            .sim
            .host_mut(a)
            .send_user_message(now, nobody, MESSAGE_TYPE, b"anyone?")
            .is_err()
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 0, "the transmit queue (32) takes them all");
    net.sim.run_for(15_000);
    let c = net.node(a).counters();
    assert_eq!(c.whois_queue_full, 12, "only 8 lookups at once");
    assert_eq!(c.whois_failed, 8);
    assert_eq!(c.whois_sent, 8 * 4, "a first try and three retries each");
    assert_eq!(c.tx_queue_expired, 20);
    assert_eq!(net.node(root).counters().whois_answered, answered);
    assert!(net.deliver(a, b, b"still working", 3_000));
}

/// Brings the members online over a jittery, lossy link, sends one message, and returns the
/// trace of every datagram.
fn traced(seed: u64) -> Vec<ztrs::sim::TraceEntry> {
    let root_id = reference_identity(3);
    let planet = private_planet(&[(&root_id, at(1))]);
    let mut net = Net::new(seed, LinkConfig::with_delay(15).jitter(10).loss(0.05));
    net.sim.enable_trace();
    net.add(root_id, &planet, at(1), |_| {});
    let a = net.add(reference_identity(1), &planet, at(2), |_| {});
    let b = net.add(reference_identity(2), &planet, at(3), |_| {});
    assert!(net.all_online(&[a, b], 20_000));
    net.send(a, b, b"x");
    net.sim.run_for(5_000);
    net.sim.take_trace()
}

/// The node seeds its generator from the config and the simulator from its seed, so a whole
/// run (packet ids, jitter, loss) is bit-identical for a seed.
#[test]
fn node_runs_are_reproducible_for_a_seed() {
    let first = traced(5);
    let second = traced(5);
    assert!(first.len() > 10);
    assert_eq!(first, second);
}
