//! Issue-4 networks, first slice, in the simulator (virtual time, seeded): a root, a node
//! running the controller role (MemoryStore) and two members, built from vector identities.
//!
//! Proves: joining a private network is denied until the member is authorized (and the
//! controller lists it as an unauthorized member); once authorized, the next request yields a
//! config with an IPv4 from the pool and the rfc4193 address; a public network configures at
//! once, also over links losing 10%; the controller configures itself without packets; a
//! restart with the stored dictionary is `Ok` before any packet; overlapping config chunks
//! injected at a member (correctly signed, H2.8) are refused and counted without touching the
//! config in force.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::nodes::{capture_identity, craft, key_between, private_planet, reference_identity};
use serde_json::json;
use ztrs::controller::{Controller, MemoryStore};
use ztrs::crypto::Identity;
use ztrs::node::{Event, NetworkStatus, Node, NodeConfig};
use ztrs::sim::{HostId, LinkConfig, Sim};
use ztrs::wire::netconf_chunk::ConfigChunk;
use ztrs::wire::packet::Cipher;
use ztrs::wire::verbs::NetworkConfig as NetworkConfigPayload;
use ztrs::wire::world::World;
use ztrs::wire::{InetAddress, NetworkId, Verb, managed_ip};

fn at(last_octet: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last_octet], 9993))
}

const POOL_START: Ipv4Addr = Ipv4Addr::new(10, 147, 17, 10);
const POOL_END: Ipv4Addr = Ipv4Addr::new(10, 147, 17, 50);

/// Root (id3 at .1), controller (capture root at .4), members A (id1 at .2), B (id2 at .3).
struct Rig {
    sim: Sim<Node>,
    planet: World,
    controller: HostId,
    a: HostId,
    b: HostId,
    private_net: NetworkId,
    public_net: NetworkId,
}

fn add(
    sim: &mut Sim<Node>,
    identity: Identity,
    planet: &World,
    addr: SocketAddr,
    seed: u64,
    controller: Option<Controller>,
) -> HostId {
    let mut config = NodeConfig::new(identity, planet.clone());
    config.local_addresses = vec![addr];
    config.rng_seed = Some(seed);
    config.controller = controller;
    let now = sim.now();
    sim.add_host(Node::new(config, now), &[addr])
}

fn rig(seed: u64, link: LinkConfig) -> Rig {
    let mut sim = Sim::new(seed);
    sim.set_default_link(link);
    let root_id = reference_identity(3);
    let planet = private_planet(&[(&root_id, at(1))]);
    let controller_id = capture_identity("", "root");
    let mut controller = Controller::new(controller_id.clone(), Box::new(MemoryStore::new()));
    let now = sim.now() as i64;
    let private_net = controller
        .create_network(
            now,
            json!({
                "name": "private-net",
                "private": true,
                "v4AssignMode": {"zt": true},
                "v6AssignMode": {"rfc4193": true, "6plane": false, "zt": false},
                "ipAssignmentPools": [{"ipRangeStart": POOL_START.to_string(),
                                       "ipRangeEnd": POOL_END.to_string()}],
                "routes": [{"target": "10.147.17.0/24", "via": null}],
            }),
        )
        .expect("private network")
        .network_id()
        .expect("private nwid");
    let public_net = controller
        .create_network(now, json!({"name": "public-net", "private": false}))
        .expect("public network")
        .network_id()
        .expect("public nwid");
    add(&mut sim, root_id, &planet, at(1), seed * 10, None);
    let controller = add(
        &mut sim,
        controller_id,
        &planet,
        at(4),
        seed * 10 + 1,
        Some(controller),
    );
    let a = add(
        &mut sim,
        reference_identity(1),
        &planet,
        at(2),
        seed * 10 + 2,
        None,
    );
    let b = add(
        &mut sim,
        reference_identity(2),
        &planet,
        at(3),
        seed * 10 + 3,
        None,
    );
    let online = sim.run_until_condition(30_000, |sim| {
        [controller, a, b].iter().all(|&h| sim.host(h).online())
    });
    assert!(online, "nodes never came online");
    Rig {
        sim,
        planet,
        controller,
        a,
        b,
        private_net,
        public_net,
    }
}

fn status(sim: &Sim<Node>, host: HostId, nwid: NetworkId) -> Option<NetworkStatus> {
    sim.host(host).network(nwid).map(|n| n.status)
}

fn join(sim: &mut Sim<Node>, host: HostId, nwid: NetworkId) {
    let now = sim.now();
    sim.host_mut(host).join(now, nwid).expect("join");
}

fn wait_status(
    sim: &mut Sim<Node>,
    host: HostId,
    nwid: NetworkId,
    want: NetworkStatus,
    max_ms: u64,
) -> bool {
    sim.run_until_condition(max_ms, |sim| status(sim, host, nwid) == Some(want))
}

fn has_event(sim: &Sim<Node>, host: HostId, want: impl Fn(&Event) -> bool) -> bool {
    sim.events(host).iter().any(|(_, e)| want(e))
}

#[test]
fn private_network_denied_until_authorized_then_configured() {
    let Rig {
        mut sim,
        controller,
        a,
        private_net,
        ..
    } = rig(1, LinkConfig::with_delay(10));
    let a_address = sim.host(a).address();
    join(&mut sim, a, private_net);
    assert_eq!(
        status(&sim, a, private_net),
        Some(NetworkStatus::RequestingConfiguration)
    );
    assert!(
        wait_status(
            &mut sim,
            a,
            private_net,
            NetworkStatus::AccessDenied,
            30_000
        ),
        "never denied: {:?}",
        sim.host(a).network_counters()
    );
    assert!(has_event(&sim, a, |e| *e
        == Event::NetworkStatus {
            nwid: private_net,
            status: NetworkStatus::AccessDenied
        }));
    assert!(sim.host(a).network(private_net).unwrap().config.is_none());
    let admin = sim.host(controller).controller().expect("controller role");
    assert!(
        admin
            .list_members(private_net)
            .unwrap()
            .contains(&a_address)
    );
    assert!(!admin.get_member(private_net, a_address).unwrap().authorized);
    assert!(sim.host(controller).network_counters().requests_refused >= 1);

    let now = sim.now() as i64;
    sim.host_mut(controller)
        .controller_mut()
        .expect("controller role")
        .update_member(now, private_net, a_address, &json!({"authorized": true}))
        .expect("authorize");
    assert!(
        wait_status(&mut sim, a, private_net, NetworkStatus::Ok, 15_000),
        "authorized member never configured"
    );
    let info = sim.host(a).network(private_net).unwrap();
    let config = info.config.expect("config in force");
    assert_eq!(config.name, "private-net");
    assert_eq!(config.issued_to, a_address);
    let v4 = config.static_ips.iter().find_map(|ip| match ip {
        InetAddress::Ip(IpAddr::V4(v4), bits) => Some((*v4, *bits)),
        _ => None,
    });
    let (v4, bits) = v4.expect("an IPv4 from the pool");
    assert!(v4 >= POOL_START && v4 <= POOL_END, "{v4} outside the pool");
    assert_eq!(bits, 24, "netmask from the route");
    let rfc4193 = InetAddress::Ip(IpAddr::V6(managed_ip::rfc4193(private_net, a_address)), 88);
    assert!(config.static_ips.contains(&rfc4193));
    assert!(has_event(&sim, a, |e| matches!(e,
        Event::NetworkConfigured { nwid, .. } if *nwid == private_net)));
    assert!(sim.host(a).network_config_bytes(private_net).is_some());
    assert!(sim.host(controller).network_counters().requests_answered >= 1);
}

#[test]
fn public_network_configures_at_once_and_the_controller_configures_itself() {
    let Rig {
        mut sim,
        controller,
        b,
        public_net,
        ..
    } = rig(2, LinkConfig::with_delay(10));
    join(&mut sim, b, public_net);
    assert!(wait_status(
        &mut sim,
        b,
        public_net,
        NetworkStatus::Ok,
        10_000
    ));
    let config = sim.host(b).network(public_net).unwrap().config.unwrap();
    assert!(config.is_public());

    // The controller joins its own network: configured with no packet sent.
    let before = sim.host(controller).network_counters().config_requests_sent;
    join(&mut sim, controller, public_net);
    assert_eq!(
        status(&sim, controller, public_net),
        Some(NetworkStatus::Ok)
    );
    assert_eq!(
        sim.host(controller).network_counters().config_requests_sent,
        before
    );

    // Leaving forgets the network.
    assert!(sim.host_mut(b).leave(public_net));
    assert!(sim.host(b).network(public_net).is_none());
}

#[test]
fn joins_over_ten_percent_loss() {
    let Rig {
        mut sim,
        b,
        public_net,
        ..
    } = rig(3, LinkConfig::with_delay(10).jitter(3).loss(0.1));
    join(&mut sim, b, public_net);
    assert!(
        wait_status(&mut sim, b, public_net, NetworkStatus::Ok, 60_000),
        "no config over a lossy link: {:?}",
        sim.host(b).network_counters()
    );
}

#[test]
fn restart_with_stored_config_is_ok_before_the_controller_answers() {
    let Rig {
        mut sim,
        planet,
        b,
        public_net,
        ..
    } = rig(4, LinkConfig::with_delay(10));
    join(&mut sim, b, public_net);
    assert!(wait_status(
        &mut sim,
        b,
        public_net,
        NetworkStatus::Ok,
        10_000
    ));
    let stored = sim
        .host(b)
        .network_config_bytes(public_net)
        .expect("dictionary to persist")
        .to_vec();
    let before = sim.host(b).network(public_net).unwrap().config;

    let mut config = NodeConfig::new(reference_identity(2), planet);
    config.local_addresses = vec![at(3)];
    config.rng_seed = Some(0xdead);
    let now = sim.now();
    let mut restarted = Node::new(config, now);
    assert_eq!(
        restarted.join_with_config(now, public_net, &stored),
        Ok(true)
    );
    let info = restarted.network(public_net).unwrap();
    assert_eq!(info.status, NetworkStatus::Ok);
    assert_eq!(info.config, before);
    sim.replace_host(b, restarted);
    // And it still talks to the controller afterwards.
    sim.run_for(10_000);
    assert_eq!(status(&sim, b, public_net), Some(NetworkStatus::Ok));

    // A stored config for another network (or garbage) is not used.
    let mut config = NodeConfig::new(reference_identity(2), sim.host(b).planet().clone());
    config.rng_seed = Some(1);
    let mut other = Node::new(config, now);
    let wrong = NetworkId(public_net.0 ^ 1);
    assert_eq!(other.join_with_config(now, wrong, &stored), Ok(false));
    assert_eq!(
        other.network(wrong).unwrap().status,
        NetworkStatus::RequestingConfiguration
    );
    assert_eq!(other.network_counters().configs_rejected, 1);
}

#[test]
fn overlapping_config_chunks_are_refused_and_counted() {
    let Rig {
        mut sim,
        controller,
        a,
        public_net,
        ..
    } = rig(5, LinkConfig::with_delay(10));
    join(&mut sim, a, public_net);
    assert!(wait_status(
        &mut sim,
        a,
        public_net,
        NetworkStatus::Ok,
        10_000
    ));
    let in_force = sim.host(a).network(public_net).unwrap().config;
    let controller_id = capture_identity("", "root");
    let a_id = reference_identity(1);
    let key = key_between(&controller_id, &a_id);
    let (from, to) = (sim.host(controller).address(), sim.host(a).address());
    let data = [b'x'; 300];
    let first = ConfigChunk::sign(public_net, &data[..200], 0, 0x5eed, 300, 0, &controller_id)
        .expect("sign");
    // Same update, a range overlapping the first by 100 bytes, validly signed.
    let overlapping = ConfigChunk::sign(
        public_net,
        &data[..150],
        0,
        0x5eed,
        300,
        100,
        &controller_id,
    )
    .expect("sign");
    for (n, chunk) in [first, overlapping].into_iter().enumerate() {
        let mut payload = Vec::new();
        NetworkConfigPayload { chunk }.emit(&mut payload);
        let packet = craft(
            from,
            to,
            Verb::NetworkConfig,
            &payload,
            &key,
            Cipher::Salsa2012Poly1305,
            0x0bad_0000 + n as u64,
        );
        sim.inject(at(4), at(2), &packet);
    }
    sim.run_for(1_000);
    let info = sim.host(a).network(public_net).unwrap();
    assert_eq!(info.chunks.overlap, 1, "{:?}", info.chunks);
    assert!(sim.host(a).network_counters().chunks_rejected >= 1);
    assert_eq!(info.status, NetworkStatus::Ok);
    assert_eq!(info.config, in_force, "the config in force is untouched");

    // A chunk claiming to be from the controller but sent by another member is refused.
    let b_key = key_between(&reference_identity(2), &a_id);
    let chunk =
        ConfigChunk::sign(public_net, &data[..10], 0, 0x5eee, 10, 0, &controller_id).expect("sign");
    let mut payload = Vec::new();
    NetworkConfigPayload { chunk }.emit(&mut payload);
    let before = sim.host(a).network_counters().not_from_controller;
    let b_address = reference_identity(2).address();
    let packet = craft(
        b_address,
        to,
        Verb::NetworkConfig,
        &payload,
        &b_key,
        Cipher::Salsa2012Poly1305,
        0x0bad_0100,
    );
    sim.inject(at(3), at(2), &packet);
    sim.run_for(1_000);
    // B may be unknown to A (then the packet waits for WHOIS and is authenticated later).
    sim.run_for(6_000);
    let counters = sim.host(a).network_counters();
    assert_eq!(counters.not_from_controller, before + 1, "{counters:?}");
}
