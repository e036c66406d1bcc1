//! Issue-4 networks, second slice, in the simulator (virtual time, seeded): Ethernet frames
//! between members of a private network, membership certificates, multicast and rules.
//!
//! Proves: an ARP request from A (a real ARP frame) reaches B as a multicast frame to the
//! broadcast MAC (A gathers B from the root), and B's unicast reply reaches A; an IPv4/ICMP
//! frame goes A -> B and back byte for byte; a node without a certificate of membership
//! cannot deliver a frame to A (ERROR NEED_MEMBERSHIP_CERTIFICATE, counted, no event); a
//! broadcast reaches the subscribed member only (and, with broadcast disabled, only ARP may
//! be broadcast); frames not from our MAC or above the MTU are refused; a DROP rule for an
//! ethertype drops it when sent and when received (both counted); ERROR(NEED_MEMBERSHIP_
//! CERTIFICATE) makes the sender push its credentials again, at most once a second.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::nodes::{capture_identity, craft, key_between, private_planet, reference_identity};
use serde_json::json;
use ztrs::controller::{Controller, MemoryStore};
use ztrs::crypto::Identity;
use ztrs::node::{Event, NetworkStatus, Node, NodeConfig};
use ztrs::sim::{HostId, LinkConfig, Sim};
use ztrs::wire::arp::{ArpOperation, ArpRepr};
use ztrs::wire::ethernet::EthernetHeader;
use ztrs::wire::mac::Mac;
use ztrs::wire::packet::Cipher;
use ztrs::wire::verbs::{ErrorBody, ErrorReply, Frame};
use ztrs::wire::{InetAddress, NetworkId, Verb};

fn at(last_octet: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last_octet], 9993))
}

/// IPv6 ethertype: dropped by the rules of the test network.
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_IPV4: u16 = 0x0800;

/// Root (id3 at .1), controller (capture root at .4), members A (id1 at .2) and B (id2 at
/// .3), and C (capture a at .5), which joins but is never authorized.
struct Rig {
    sim: Sim<Node>,
    root: HostId,
    controller: HostId,
    a: HostId,
    b: HostId,
    c: HostId,
    nwid: NetworkId,
}

fn add(
    sim: &mut Sim<Node>,
    identity: Identity,
    planet: &ztrs::wire::world::World,
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

fn status(sim: &Sim<Node>, host: HostId, nwid: NetworkId) -> Option<NetworkStatus> {
    sim.host(host).network(nwid).map(|n| n.status)
}

/// Builds the rig and brings A and B to `Ok` on the private network.
fn rig(seed: u64, enable_broadcast: bool) -> Rig {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_delay(10));
    let root_id = reference_identity(3);
    let planet = private_planet(&[(&root_id, at(1))]);
    let controller_id = capture_identity("", "root");
    let mut admin = Controller::new(controller_id.clone(), Box::new(MemoryStore::new()));
    let now = sim.now() as i64;
    let nwid = admin
        .create_network(
            now,
            json!({
                "name": "frames-net",
                "private": true,
                "enableBroadcast": enable_broadcast,
                "v4AssignMode": {"zt": true},
                "ipAssignmentPools": [{"ipRangeStart": "10.147.17.10",
                                       "ipRangeEnd": "10.147.17.50"}],
                "routes": [{"target": "10.147.17.0/24", "via": null}],
                "rules": [
                    {"type": "MATCH_ETHERTYPE", "etherType": ETHERTYPE_IPV6},
                    {"type": "ACTION_DROP"},
                    {"type": "ACTION_ACCEPT"},
                ],
            }),
        )
        .expect("network")
        .network_id()
        .expect("nwid");
    let root = add(&mut sim, root_id, &planet, at(1), seed * 10, None);
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
    let c = add(
        &mut sim,
        capture_identity("", "a"),
        &planet,
        at(5),
        seed * 10 + 4,
        None,
    );
    let online = sim.run_until_condition(30_000, |sim| {
        [controller, a, b, c].iter().all(|&h| sim.host(h).online())
    });
    assert!(online, "nodes never came online");
    for host in [a, b] {
        let address = sim.host(host).address();
        let now = sim.now() as i64;
        sim.host_mut(controller)
            .controller_mut()
            .expect("controller role")
            .update_member(now, nwid, address, &json!({"authorized": true}))
            .expect("authorize");
    }
    for host in [a, b, c] {
        let now = sim.now();
        sim.host_mut(host).join(now, nwid).expect("join");
    }
    let configured = sim.run_until_condition(30_000, |sim| {
        [a, b]
            .iter()
            .all(|&h| status(sim, h, nwid) == Some(NetworkStatus::Ok))
    });
    assert!(configured, "members never configured");
    // Subscriptions reach the root with the first announcements.
    sim.run_until(sim.now() + 1_000);
    Rig {
        sim,
        root,
        controller,
        a,
        b,
        c,
        nwid,
    }
}

fn ipv4_of(sim: &Sim<Node>, host: HostId, nwid: NetworkId) -> Ipv4Addr {
    let config = sim.host(host).network(nwid).and_then(|n| n.config);
    config
        .expect("config")
        .static_ips
        .iter()
        .find_map(|ip| match ip {
            InetAddress::Ip(IpAddr::V4(v4), _) => Some(*v4),
            _ => None,
        })
        .expect("an assigned IPv4")
}

fn mac_of(sim: &Sim<Node>, host: HostId, nwid: NetworkId) -> Mac {
    Mac::from_address(sim.host(host).address(), nwid)
}

/// Frames delivered to `host` so far, oldest first.
fn frames(sim: &Sim<Node>, host: HostId) -> Vec<Vec<u8>> {
    sim.events(host)
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Frame { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

fn send(sim: &mut Sim<Node>, host: HostId, nwid: NetworkId, frame: &[u8]) {
    let now = sim.now();
    sim.host_mut(host).handle_frame(now, nwid, frame);
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

/// An IPv4 ICMP echo request (checksums are not looked at by anybody here).
fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, seq: u8) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, // version .. checksum
    ];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, seq]);
    p
}

#[test]
fn arp_request_multicast_and_unicast_reply() {
    let Rig {
        mut sim,
        a,
        b,
        nwid,
        ..
    } = rig(1, true);
    let (a_ip, b_ip) = (ipv4_of(&sim, a, nwid), ipv4_of(&sim, b, nwid));
    let (a_mac, b_mac) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    let request = ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: a_mac,
        sender_ip: a_ip,
        target_mac: Mac::ZERO,
        target_ip: b_ip,
    };
    let mut frame = Vec::new();
    request.emit_frame(&mut frame);
    send(&mut sim, a, nwid, &frame);
    assert!(
        sim.run_until_condition(10_000, |sim| frames(sim, b).contains(&frame)),
        "B never got the ARP request: A {:?} B {:?}",
        sim.host(a).frame_counters(),
        sim.host(b).frame_counters()
    );
    assert!(sim.host(a).frame_counters().multicast_sent >= 1);
    assert!(sim.host(a).frame_counters().gathers_sent >= 1);

    let reply = request.reply(b_mac).expect("a request");
    let mut reply_frame = Vec::new();
    reply.emit_frame(&mut reply_frame);
    send(&mut sim, b, nwid, &reply_frame);
    assert!(
        sim.run_until_condition(10_000, |sim| frames(sim, a).contains(&reply_frame)),
        "A never got the ARP reply: {:?}",
        sim.host(a).frame_counters()
    );
    assert!(sim.host(b).frame_counters().unicast_sent >= 1);
}

#[test]
fn icmp_both_ways() {
    let Rig {
        mut sim,
        a,
        b,
        nwid,
        ..
    } = rig(2, true);
    let (a_ip, b_ip) = (ipv4_of(&sim, a, nwid), ipv4_of(&sim, b, nwid));
    let (a_mac, b_mac) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    let ping = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &icmp_echo(a_ip, b_ip, 1));
    send(&mut sim, a, nwid, &ping);
    assert!(
        sim.run_until_condition(10_000, |sim| frames(sim, b).contains(&ping)),
        "ping lost: A {:?} B {:?}",
        sim.host(a).frame_counters(),
        sim.host(b).frame_counters()
    );
    let pong = ethernet(a_mac, b_mac, ETHERTYPE_IPV4, &icmp_echo(b_ip, a_ip, 1));
    send(&mut sim, b, nwid, &pong);
    assert!(
        sim.run_until_condition(10_000, |sim| frames(sim, a).contains(&pong)),
        "pong lost: {:?}",
        sim.host(a).frame_counters()
    );
    // A frame that does not come from our own MAC would need bridging.
    let bridged = ethernet(b_mac, Mac([0x02, 1, 2, 3, 4, 5]), ETHERTYPE_IPV4, &[0; 28]);
    send(&mut sim, a, nwid, &bridged);
    assert_eq!(sim.host(a).frame_counters().local_bridging_unsupported, 1);
    // Payloads above the network's MTU (2800 by default) never leave.
    let jumbo = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &[0x45; 2801]);
    send(&mut sim, a, nwid, &jumbo);
    assert_eq!(sim.host(a).frame_counters().local_too_large, 1);
}

#[test]
fn member_without_certificate_is_refused() {
    let Rig {
        mut sim,
        a,
        c,
        nwid,
        ..
    } = rig(3, true);
    assert_ne!(status(&sim, c, nwid), Some(NetworkStatus::Ok));
    let (a_id, c_id) = (reference_identity(1), capture_identity("", "a"));
    let mut payload = Vec::new();
    Frame {
        network_id: nwid,
        ethertype: ETHERTYPE_IPV4,
        payload: &icmp_echo(
            Ipv4Addr::new(10, 147, 17, 99),
            Ipv4Addr::new(10, 147, 17, 10),
            1,
        ),
    }
    .emit(&mut payload);
    let key = key_between(&c_id, &a_id);
    for id in 0..3u64 {
        let packet = craft(
            c_id.address(),
            a_id.address(),
            Verb::Frame,
            &payload,
            &key,
            Cipher::Salsa2012Poly1305,
            0x1000 + id,
        );
        sim.inject(at(5), at(2), &packet);
        sim.run_until(sim.now() + 1_000);
    }
    assert!(
        sim.run_until_condition(5_000, |sim| sim.host(a).frame_counters().membership_refused
            >= 1),
        "A never refused C: {:?}",
        sim.host(a).frame_counters()
    );
    assert!(frames(&sim, a).is_empty(), "a frame from C was delivered");
    assert!(
        sim.run_until_condition(5_000, |sim| sim.host(c).counters().error_received >= 1),
        "C never heard NEED_MEMBERSHIP_CERTIFICATE"
    );
}

#[test]
fn broadcast_reaches_subscribers_only() {
    let Rig {
        mut sim,
        root,
        controller,
        a,
        b,
        c,
        nwid,
    } = rig(4, true);
    let a_mac = mac_of(&sim, a, nwid);
    let frame = ethernet(Mac::BROADCAST, a_mac, ETHERTYPE_IPV4, &[0x45; 40]);
    send(&mut sim, a, nwid, &frame);
    assert!(
        sim.run_until_condition(10_000, |sim| frames(sim, b).contains(&frame)),
        "broadcast lost: {:?}",
        sim.host(a).frame_counters()
    );
    sim.run_until(sim.now() + 6_000);
    for other in [root, controller, c, a] {
        assert!(frames(&sim, other).is_empty(), "host {other:?} got a frame");
    }
}

#[test]
fn broadcast_disabled_drops_all_but_arp() {
    let Rig {
        mut sim,
        a,
        b,
        nwid,
        ..
    } = rig(5, false);
    let a_mac = mac_of(&sim, a, nwid);
    let frame = ethernet(Mac::BROADCAST, a_mac, ETHERTYPE_IPV4, &[0x45; 40]);
    send(&mut sim, a, nwid, &frame);
    assert_eq!(sim.host(a).frame_counters().broadcast_disabled, 1);
    assert_eq!(sim.host(a).frame_counters().gathers_sent, 0);
    // ARP still works: it goes to the ARP group of its target, not to broadcast.
    let mut arp = Vec::new();
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: a_mac,
        sender_ip: ipv4_of(&sim, a, nwid),
        target_mac: Mac::ZERO,
        target_ip: ipv4_of(&sim, b, nwid),
    }
    .emit_frame(&mut arp);
    send(&mut sim, a, nwid, &arp);
    assert!(
        sim.run_until_condition(10_000, |sim| frames(sim, b).contains(&arp)),
        "ARP lost with broadcast disabled: {:?}",
        sim.host(a).frame_counters()
    );
    assert!(!frames(&sim, b).contains(&frame));
}

#[test]
fn drop_rule_drops_on_both_ends() {
    let Rig {
        mut sim,
        a,
        b,
        nwid,
        ..
    } = rig(6, true);
    let (a_mac, b_mac) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    // Establish credentials both ways with an allowed frame first.
    let ping = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &[0x45; 40]);
    send(&mut sim, a, nwid, &ping);
    assert!(sim.run_until_condition(10_000, |sim| frames(sim, b).contains(&ping)));

    let v6 = ethernet(b_mac, a_mac, ETHERTYPE_IPV6, &[0x60; 48]);
    send(&mut sim, a, nwid, &v6);
    assert_eq!(sim.host(a).frame_counters().dropped_by_rules_outbound, 1);

    // The same frame forged past A's rules still meets B's.
    let (a_id, b_id) = (reference_identity(1), reference_identity(2));
    let mut payload = Vec::new();
    Frame {
        network_id: nwid,
        ethertype: ETHERTYPE_IPV6,
        payload: &[0x60; 48],
    }
    .emit(&mut payload);
    let packet = craft(
        a_id.address(),
        b_id.address(),
        Verb::Frame,
        &payload,
        &key_between(&a_id, &b_id),
        Cipher::Salsa2012Poly1305,
        0x2000,
    );
    sim.inject(at(2), at(3), &packet);
    assert!(
        sim.run_until_condition(5_000, |sim| sim
            .host(b)
            .frame_counters()
            .dropped_by_rules_inbound
            >= 1),
        "B never dropped: {:?}",
        sim.host(b).frame_counters()
    );
    assert!(!frames(&sim, b).iter().any(|f| f == &v6));
}

#[test]
fn need_membership_certificate_repushes_credentials() {
    let Rig {
        mut sim,
        a,
        b,
        nwid,
        ..
    } = rig(7, true);
    let (a_mac, b_mac) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    let ping = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &[0x45; 40]);
    send(&mut sim, a, nwid, &ping);
    assert!(sim.run_until_condition(10_000, |sim| frames(sim, b).contains(&ping)));
    sim.run_until(sim.now() + 2_000);
    let before = sim.host(a).frame_counters().credentials_sent;
    let errors_before = sim.host(a).counters().error_received;
    let (a_id, b_id) = (reference_identity(1), reference_identity(2));
    let mut payload = Vec::new();
    ErrorReply {
        in_re_verb: Verb::Frame,
        in_re_packet_id: 0x77,
        body: ErrorBody::NeedMembershipCertificate(nwid),
    }
    .emit(&mut payload);
    // Twice within a second (different packets): pushed once.
    for id in [0x3000, 0x3001] {
        let packet = craft(
            b_id.address(),
            a_id.address(),
            Verb::Error,
            &payload,
            &key_between(&b_id, &a_id),
            Cipher::Salsa2012Poly1305,
            id,
        );
        sim.inject(at(3), at(2), &packet);
    }
    sim.run_until(sim.now() + 500);
    assert_eq!(sim.host(a).counters().error_received, errors_before + 2);
    assert_eq!(sim.host(a).frame_counters().credentials_sent, before + 1);
}

/// Tags travel with the credentials and feed the rules on both ends: with a rule that
/// accepts only frames between members whose tag 7 differs by 0 (MATCH_TAGS_DIFFERENCE), A's frames reach B while both
/// hold the same value and are dropped by B's rules once the controller gives B another.
#[test]
fn tag_rules_use_the_members_tags() {
    let Rig {
        mut sim,
        controller,
        a,
        b,
        nwid,
        ..
    } = rig(8, true);
    let set = |sim: &mut Sim<Node>, change: serde_json::Value, member: Option<HostId>| {
        let now = sim.now();
        let address = member.map(|m| sim.host(m).address());
        let node = sim.host_mut(controller);
        let admin = node.controller_mut().expect("controller role");
        match address {
            Some(address) => {
                admin
                    .update_member(now as i64, nwid, address, &change)
                    .expect("member update");
            }
            None => {
                admin
                    .update_network(now as i64, nwid, &change)
                    .expect("network update");
            }
        }
        node.controller_changed(now, nwid);
    };
    set(
        &mut sim,
        json!({"rules": [
            {"type": "MATCH_TAGS_DIFFERENCE", "id": 7, "value": 0},
            {"type": "ACTION_ACCEPT"},
            {"type": "MATCH_ETHERTYPE", "etherType": 0x0806},
            {"type": "ACTION_ACCEPT"},
            {"type": "ACTION_DROP"},
        ]}),
        None,
    );
    set(&mut sim, json!({"tags": [[7, 1]]}), Some(a));
    set(&mut sim, json!({"tags": [[7, 1]]}), Some(b));
    let tagged = |sim: &Sim<Node>, host: HostId, value: u32| {
        sim.host(host)
            .network(nwid)
            .and_then(|n| n.config)
            .is_some_and(|c| c.tags.iter().any(|t| t.id == 7 && t.value == value))
    };
    assert!(
        sim.run_until_condition(5_000, |sim| tagged(sim, a, 1) && tagged(sim, b, 1)),
        "tags never reached the members"
    );

    let (a_mac, b_mac) = (mac_of(&sim, a, nwid), mac_of(&sim, b, nwid));
    let first = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &[0x45; 40]);
    send(&mut sim, a, nwid, &first);
    assert!(
        sim.run_until_condition(10_000, |sim| frames(sim, b).contains(&first)),
        "equal tags: the frame is accepted: {:?} {:?}",
        sim.host(b).frame_counters(),
        sim.host(b)
            .network(nwid)
            .and_then(|n| n.config)
            .map(|c| (c.tags, c.rules))
    );
    assert!(sim.host(b).frame_counters().tags_accepted >= 1);

    // B gets another value; A's next credentials push carries A's unchanged tag, and B's
    // rules now see 1 != 2.
    set(&mut sim, json!({"tags": [[7, 2]]}), Some(b));
    assert!(sim.run_until_condition(5_000, |sim| tagged(sim, b, 2)));
    let dropped_before = sim.host(b).frame_counters().dropped_by_rules_inbound;
    let second = ethernet(b_mac, a_mac, ETHERTYPE_IPV4, &[0x46; 40]);
    send(&mut sim, a, nwid, &second);
    assert!(
        sim.run_until_condition(10_000, |sim| sim
            .host(b)
            .frame_counters()
            .dropped_by_rules_inbound
            > dropped_before),
        "different tags: B's rules drop the frame: {:?}",
        sim.host(b).frame_counters()
    );
    assert!(!frames(&sim, b).contains(&second));
}
