//! Issue-4 proofs about networks that change after joining, in the simulator (virtual
//! time, seeded; root id3 at .1, controller = capture root at .4, members A = id1 at .2 and
//! B = id2 at .3).
//!
//! Proves: a rename and an MTU change reach members by push (`Node::controller_changed`)
//! within a second, far before the 60 s refresh, and are acknowledged; deauthorizing B
//! sends a COM revocation to A, so B's frames to A are refused (counted) and B's status
//! becomes `AccessDenied` (its config leaves force); a controller restarted on the same
//! `DirectoryStore` keeps the network and its members (refreshes still answered, a new
//! authorization persists across another restart); the reference's stored netconf files
//! (`networks.d/<nwid>.conf` from the 1.14.1 captures) load as persisted configs on a node
//! holding that member's identity.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use common::nodes::{capture_identity, craft, key_between, private_planet, reference_identity};
use serde_json::json;
use ztrs::controller::{Controller, DirectoryStore, MemoryStore, Store};
use ztrs::crypto::Identity;
use ztrs::node::{Event, NetworkStatus, Node, NodeConfig};
use ztrs::sim::{HostId, LinkConfig, Sim};
use ztrs::wire::ethernet::EthernetHeader;
use ztrs::wire::mac::Mac;
use ztrs::wire::packet::Cipher;
use ztrs::wire::verbs::{Frame, NetworkCredentials};
use ztrs::wire::world::World;
use ztrs::wire::{Address, NetworkId, Verb};

const ETHERTYPE_IPV4: u16 = 0x0800;

fn at(last_octet: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last_octet], 9993))
}

struct Rig {
    sim: Sim<Node>,
    planet: World,
    controller: HostId,
    a: HostId,
    b: HostId,
    nwid: NetworkId,
}

fn node(
    identity: Identity,
    planet: &World,
    addr: SocketAddr,
    seed: u64,
    controller: Option<Controller>,
    now: u64,
) -> Node {
    let mut config = NodeConfig::new(identity, planet.clone());
    config.local_addresses = vec![addr];
    config.rng_seed = Some(seed);
    config.controller = controller;
    Node::new(config, now)
}

fn add(
    sim: &mut Sim<Node>,
    identity: Identity,
    planet: &World,
    addr: SocketAddr,
    seed: u64,
    controller: Option<Controller>,
) -> HostId {
    let now = sim.now();
    let host = node(identity, planet, addr, seed, controller, now);
    sim.add_host(host, &[addr])
}

fn status(sim: &Sim<Node>, host: HostId, nwid: NetworkId) -> Option<NetworkStatus> {
    sim.host(host).network(nwid).map(|n| n.status)
}

fn authorize(sim: &mut Sim<Node>, controller: HostId, nwid: NetworkId, member: Address, on: bool) {
    let now = sim.now() as i64;
    sim.host_mut(controller)
        .controller_mut()
        .expect("controller role")
        .update_member(now, nwid, member, &json!({"authorized": on}))
        .expect("update member");
}

/// Root, controller (with `store`), A and B online; A (and B if `authorize_b`) authorized,
/// both joined; waits until the authorized ones are `Ok`.
fn rig(seed: u64, store: Box<dyn Store>, authorize_b: bool) -> Rig {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_delay(10));
    let root_id = reference_identity(3);
    let planet = private_planet(&[(&root_id, at(1))]);
    let controller_id = capture_identity("", "root");
    let mut admin = Controller::new(controller_id.clone(), store);
    let nwid = admin
        .create_network(
            sim.now() as i64,
            json!({
                "name": "before",
                "private": true,
                "mtu": 2800,
                "v4AssignMode": {"zt": true},
                "ipAssignmentPools": [{"ipRangeStart": "10.147.17.10",
                                       "ipRangeEnd": "10.147.17.50"}],
                "routes": [{"target": "10.147.17.0/24", "via": null}],
            }),
        )
        .expect("network")
        .network_id()
        .expect("nwid");
    add(&mut sim, root_id, &planet, at(1), seed * 10, None);
    let controller = add(
        &mut sim,
        controller_id,
        &planet,
        at(4),
        seed * 10 + 1,
        Some(admin),
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
    let a_address = sim.host(a).address();
    authorize(&mut sim, controller, nwid, a_address, true);
    if authorize_b {
        let b_address = sim.host(b).address();
        authorize(&mut sim, controller, nwid, b_address, true);
    }
    for host in [a, b] {
        let now = sim.now();
        sim.host_mut(host).join(now, nwid).expect("join");
    }
    let want_b = if authorize_b {
        NetworkStatus::Ok
    } else {
        NetworkStatus::AccessDenied
    };
    let configured = sim.run_until_condition(30_000, |sim| {
        status(sim, a, nwid) == Some(NetworkStatus::Ok) && status(sim, b, nwid) == Some(want_b)
    });
    assert!(configured, "members never configured");
    sim.run_until(sim.now() + 1_000);
    Rig {
        sim,
        planet,
        controller,
        a,
        b,
        nwid,
    }
}

fn config_name_mtu(sim: &Sim<Node>, host: HostId, nwid: NetworkId) -> Option<(String, u32)> {
    let config = sim.host(host).network(nwid)?.config?;
    Some((config.name, config.mtu))
}

#[test]
fn config_change_reaches_members_by_push() {
    let Rig {
        mut sim,
        controller,
        a,
        b,
        nwid,
        ..
    } = rig(1, Box::new(MemoryStore::new()), true);
    assert_eq!(
        config_name_mtu(&sim, a, nwid),
        Some(("before".to_string(), 2800))
    );
    let now = sim.now();
    sim.host_mut(controller)
        .controller_mut()
        .expect("controller role")
        .update_network(now as i64, nwid, &json!({"name": "after", "mtu": 1400}))
        .expect("update network");
    let pushed = sim.host_mut(controller).controller_changed(now, nwid);
    assert_eq!(pushed, 2, "both members requested recently");
    let want = Some(("after".to_string(), 1400));
    let arrived = sim.run_until_condition(1_000, |sim| {
        config_name_mtu(sim, a, nwid) == want && config_name_mtu(sim, b, nwid) == want
    });
    assert!(
        arrived,
        "push lost: A {:?} controller {:?}",
        sim.host(a).network_counters(),
        sim.host(controller).network_counters()
    );
    assert!(sim.now() - now < 1_000, "far before the 60 s refresh");
    assert!(sim.host(controller).network_counters().configs_pushed >= 2);
    for host in [a, b] {
        assert!(sim.host(host).network_counters().pushes_acknowledged >= 1);
    }
}

/// Leaving and joining again at once: the controller answers a member at most once a second
/// and drops the rest, so the first request of the new join is lost; the member retries
/// after ~1.1 s instead of waiting for the 5 s tick.
#[test]
fn quick_leave_and_rejoin_is_configured_within_seconds() {
    let Rig {
        mut sim, a, nwid, ..
    } = rig(2, Box::new(MemoryStore::new()), true);
    for round in 0..3 {
        let now = sim.now();
        assert!(sim.host_mut(a).leave(nwid));
        sim.host_mut(a).join(now, nwid).expect("join");
        let configured = sim.run_until_condition(10_000, |sim| {
            status(sim, a, nwid) == Some(NetworkStatus::Ok)
        });
        assert!(configured, "round {round}: never configured again");
        let took = sim.now() - now;
        assert!(took < 2_500, "round {round}: configured after {took} ms");
    }
}

fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    EthernetHeader {
        dst,
        src,
        ethertype,
    }
    .emit_frame(payload, &mut out);
    out
}

fn delivered(sim: &Sim<Node>, host: HostId, frame: &[u8]) -> bool {
    sim.events(host)
        .iter()
        .any(|(_, e)| matches!(e, Event::Frame { data, .. } if data == frame))
}

#[test]
fn deauthorized_member_is_revoked_and_denied() {
    let Rig {
        mut sim,
        controller,
        a,
        b,
        nwid,
        ..
    } = rig(2, Box::new(MemoryStore::new()), true);
    let a_mac = Mac::from_address(sim.host(a).address(), nwid);
    let b_mac = Mac::from_address(sim.host(b).address(), nwid);
    let to_a = ethernet(a_mac, b_mac, ETHERTYPE_IPV4, &[0x45, 1, 2, 3]);
    let to_b = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &[0x45, 4, 5, 6]);
    let now = sim.now();
    sim.host_mut(b).handle_frame(now, nwid, &to_a);
    sim.host_mut(a).handle_frame(now, nwid, &to_b);
    assert!(
        sim.run_until_condition(10_000, |sim| delivered(sim, a, &to_a)
            && delivered(sim, b, &to_b)),
        "frames lost before deauthorization"
    );

    let old_com = sim
        .host(b)
        .network(nwid)
        .and_then(|n| n.config)
        .and_then(|c| c.com)
        .expect("B holds a COM");
    let b_address = sim.host(b).address();
    authorize(&mut sim, controller, nwid, b_address, false);
    let now = sim.now();
    sim.host_mut(controller).controller_changed(now, nwid);
    assert!(
        sim.run_until_condition(1_000, |sim| {
            status(sim, b, nwid) == Some(NetworkStatus::AccessDenied)
                && sim.host(a).frame_counters().revocations_accepted >= 1
        }),
        "no denial/revocation: A {:?} B {:?}",
        sim.host(a).frame_counters(),
        sim.host(b).network(nwid)
    );
    assert!(sim.host(b).network(nwid).expect("joined").config.is_none());

    // B no longer sends (no config), and A refuses what B's node would still push: a FRAME
    // and its old COM, both authenticated with B's key.
    let second = ethernet(a_mac, b_mac, ETHERTYPE_IPV4, &[0x45, 7, 8, 9]);
    let now = sim.now();
    sim.host_mut(b).handle_frame(now, nwid, &second);
    assert_eq!(sim.host(b).frame_counters().local_not_configured, 1);
    let (a_id, b_id) = (reference_identity(1), reference_identity(2));
    let key = key_between(&b_id, &a_id);
    let refused_before = sim.host(a).frame_counters().membership_refused;
    let mut payload = Vec::new();
    Frame {
        network_id: nwid,
        ethertype: ETHERTYPE_IPV4,
        payload: &[0x45, 7, 8, 9],
    }
    .emit(&mut payload);
    let frame = craft(
        b_id.address(),
        a_id.address(),
        Verb::Frame,
        &payload,
        &key,
        Cipher::Salsa2012Poly1305,
        0x5150_0001,
    );
    sim.inject(at(3), at(2), &frame);
    assert!(
        sim.run_until_condition(2_000, |sim| sim.host(a).frame_counters().membership_refused
            > refused_before),
        "A admitted revoked B: {:?}",
        sim.host(a).frame_counters()
    );
    assert!(!delivered(&sim, a, &second));
    sim.run_until(sim.now() + 1_100);
    let coms_refused = sim.host(a).frame_counters().coms_refused;
    let mut payload = Vec::new();
    NetworkCredentials {
        coms: vec![old_com],
        capabilities: Vec::new(),
        tags: Vec::new(),
        revocations: Vec::new(),
        coos: Vec::new(),
    }
    .emit(&mut payload);
    let credentials = craft(
        b_id.address(),
        a_id.address(),
        Verb::NetworkCredentials,
        &payload,
        &key,
        Cipher::Salsa2012Poly1305,
        0x5150_0002,
    );
    sim.inject(at(3), at(2), &credentials);
    assert!(
        sim.run_until_condition(2_000, |sim| sim.host(a).frame_counters().coms_refused
            > coms_refused),
        "A took B's revoked COM: {:?}",
        sim.host(a).frame_counters()
    );
    // A frame from A no longer reaches B.
    let again = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &[0x45, 1, 1, 1]);
    let now = sim.now();
    sim.host_mut(a).handle_frame(now, nwid, &again);
    sim.run_until(sim.now() + 5_000);
    assert!(!delivered(&sim, b, &again));
}

fn read_text(suffix: &str, name: &str) -> String {
    let path = common::vectors_dir()
        .join(format!("zerotierone-1.14.1-capture{suffix}"))
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()))
}

/// Interop: each capture member's stored netconf loads with `join_with_config` on a node
/// with that member's identity: used at once, status `Ok`, and the assigned IPv4 is the one
/// the capture recorded (`ipa` / `ipb`).
#[test]
fn reference_stored_netconf_loads_as_persisted_config() {
    let root = reference_identity(3);
    let planet = private_planet(&[(&root, SocketAddr::from(([10, 0, 0, 1], 9993)))]);
    let mut loaded = 0;
    for suffix in ["", "-2"] {
        let nwid_hex = read_text(suffix, "nwid");
        let nwid = NetworkId(
            u64::from_str_radix(nwid_hex.trim(), 16).expect("nwid vector is 16 hex digits"),
        );
        for (member, ip_file) in [("a", "ipa"), ("b", "ipb")] {
            let expected: IpAddr = read_text(suffix, ip_file)
                .trim()
                .parse()
                .expect("ip vector parses");
            let stored = common::vectors_dir()
                .join(format!("zerotierone-1.14.1-capture{suffix}"))
                .join(member)
                .join("networks.d")
                .join(format!("{}.conf", nwid_hex.trim()));
            let stored = std::fs::read(&stored)
                .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", stored.display()));
            let identity = capture_identity(suffix, member);
            let mut config = NodeConfig::new(identity, planet.clone());
            config.rng_seed = Some(7);
            let mut node = Node::new(config, 0);
            let used = node.join_with_config(0, nwid, &stored).expect("join");
            assert!(used, "capture{suffix} {member}: stored config refused");
            let info = node.network(nwid).expect("joined");
            assert_eq!(info.status, NetworkStatus::Ok, "capture{suffix} {member}");
            let config = info.config.expect("config in force");
            let addresses: Vec<IpAddr> = config.assigned_addresses().map(|(ip, _)| ip).collect();
            assert!(
                addresses.contains(&expected),
                "capture{suffix} {member}: {addresses:?} lacks {expected}"
            );
            assert_eq!(node.network_config_bytes(nwid), Some(&stored[..]));
            loaded += 1;
        }
    }
    assert_eq!(loaded, 4);
}

/// A unique directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("ztrs-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn directory_controller(dir: &TempDir) -> Controller {
    let store = DirectoryStore::open(&dir.0).expect("open directory store");
    Controller::new(capture_identity("", "root"), Box::new(store))
}

/// Replaces the controller host by a fresh node whose controller opens `dir`, and waits
/// until it is online again.
fn restart_controller(
    sim: &mut Sim<Node>,
    rig_planet: &World,
    host: HostId,
    dir: &TempDir,
    seed: u64,
) {
    let now = sim.now();
    let fresh = node(
        capture_identity("", "root"),
        rig_planet,
        at(4),
        seed,
        Some(directory_controller(dir)),
        now,
    );
    sim.replace_host(host, fresh);
    assert!(
        sim.run_until_condition(30_000, |sim| sim.host(host).online()),
        "restarted controller never came online"
    );
}

#[test]
fn controller_restart_keeps_networks_and_members() {
    let dir = TempDir::new("controller-restart");
    let store = DirectoryStore::open(&dir.0).expect("open directory store");
    let Rig {
        mut sim,
        planet,
        controller,
        a,
        b,
        nwid,
    } = rig(3, Box::new(store), false);
    let (a_address, b_address) = (sim.host(a).address(), sim.host(b).address());

    restart_controller(&mut sim, &planet, controller, &dir, 31);
    let admin = sim.host(controller).controller().expect("controller role");
    assert_eq!(admin.list_networks().expect("networks"), vec![nwid]);
    let members = admin.list_members(nwid).expect("members");
    assert!(members.contains(&a_address) && members.contains(&b_address));
    assert!(admin.get_member(nwid, a_address).expect("A").authorized);
    assert!(!admin.get_member(nwid, b_address).expect("B").authorized);

    // A's next refresh (every 60 s) is answered by the restarted controller.
    let accepted = sim.host(a).network_counters().configs_accepted;
    assert!(
        sim.run_until_condition(70_000, |sim| sim
            .host(a)
            .network_counters()
            .configs_accepted
            > accepted),
        "refresh never answered: {:?}",
        sim.host(a).network_counters()
    );
    assert_eq!(status(&sim, a, nwid), Some(NetworkStatus::Ok));
    let answered = sim.host(controller).network_counters().requests_answered;
    assert!(answered >= 1);

    // A new authorization on the restarted controller lets B in and survives a restart.
    authorize(&mut sim, controller, nwid, b_address, true);
    assert!(
        sim.run_until_condition(30_000, |sim| status(sim, b, nwid)
            == Some(NetworkStatus::Ok)),
        "B never let in: {:?}",
        sim.host(b).network(nwid)
    );
    restart_controller(&mut sim, &planet, controller, &dir, 32);
    let admin = sim.host(controller).controller().expect("controller role");
    assert!(admin.get_member(nwid, b_address).expect("B").authorized);
    drop(sim);
    let path = dir.0.clone();
    drop(dir);
    assert!(!path.exists(), "temp dir left behind");
}
