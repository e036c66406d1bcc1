//! The controller's config answers, proven against the 1.14.1 capture: the ROOT identity as
//! controller answering member `a` for network 28210c94e2a0b81a gives the netconf `a`
//! stored, field by field; private-network authorization; IP assignment; chunking.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde_json::json;
use ztrs::controller::{
    Controller, DirectoryStore, MemoryStore, RequestError, Store, assign_v4, parse_cidr,
};
use ztrs::crypto::Identity;
use ztrs::wire::dictionary::{DictionaryBuilder, METADATA_CAPACITY};
use ztrs::wire::managed_ip;
use ztrs::wire::netconf::{
    FLAG_ENABLE_BROADCAST, FLAG_ENABLE_IPV6_NDP_EMULATION, NetworkConfig, NetworkType, Route,
};
use ztrs::wire::netconf_chunk::{Accepted, AssemblerOptions, ConfigAssembler};
use ztrs::wire::{Address, InetAddress, NetworkId};

const NWID: NetworkId = NetworkId(0x2821_0c94_e2a0_b81a);
const NOW: i64 = 1_795_500_000_000;

fn capture(path: &str) -> PathBuf {
    common::vectors_dir()
        .join("zerotierone-1.14.1-capture")
        .join(path)
}

fn read_capture(path: &str) -> Vec<u8> {
    let p = capture(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read vector {}: {e}", p.display()))
}

fn identity(path: &str) -> Identity {
    String::from_utf8(read_capture(path))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The metadata dictionary a 1.14.1 node sends (5.10).
fn metadata_1_14_1(token: Option<&str>) -> Vec<u8> {
    let mut d = DictionaryBuilder::new(METADATA_CAPACITY);
    for (k, v) in [
        ("v", 7u64),
        ("vend", 1),
        ("pv", 12),
        ("majv", 1),
        ("minv", 14),
        ("revv", 1),
        ("mr", 1024),
        ("mc", 128),
        ("mcr", 64),
        ("mt", 128),
        ("f", 0),
        ("revr", 1),
    ] {
        d.add_u64(k, v).unwrap();
    }
    d.add_str("o", "linux/x86_64").unwrap();
    if let Some(t) = token {
        d.add_str("a", &format!("token:{t}")).unwrap();
    }
    d.finish()
}

/// The reference store copied into memory (the vectors are never written).
fn reference_store() -> MemoryStore {
    let reference = DirectoryStore::open_existing(capture("root/controller.d")).unwrap();
    let mut memory = MemoryStore::new();
    for n in reference.network_ids().unwrap() {
        memory
            .put_network(&reference.get_network(n).unwrap().unwrap())
            .unwrap();
        for a in reference.member_addresses(n).unwrap() {
            memory
                .put_member(&reference.get_member(n, a).unwrap().unwrap())
                .unwrap();
        }
    }
    memory
}

fn stored_netconf_of_a() -> NetworkConfig {
    NetworkConfig::from_dictionary(&read_capture("a/networks.d/28210c94e2a0b81a.conf")).unwrap()
}

#[test]
fn answer_to_member_a_matches_the_reference_netconf() {
    let root = identity("root/identity.secret");
    assert!(root.has_secret());
    let a = identity("a/identity.public");
    let mut controller = Controller::new(root.clone(), Box::new(reference_store()));
    let issued = controller
        .handle_config_request(NOW, NWID, &a, &metadata_1_14_1(None))
        .unwrap();
    let ours = &issued.config;
    let theirs = stored_netconf_of_a();

    let ipa: Ipv4Addr = String::from_utf8(read_capture("ipa"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        ours.static_ips,
        vec![InetAddress::Ip(IpAddr::V4(ipa), 24)],
        "managed IPv4 of the capture"
    );
    let member = controller.get_member(NWID, a.address()).unwrap();
    assert_eq!(member.ip_assignments, vec![ipa.to_string()]);

    assert_eq!(ours.network_id, theirs.network_id);
    assert_eq!(ours.issued_to, theirs.issued_to);
    assert_eq!(ours.network_type, NetworkType::Public);
    assert_eq!(ours.network_type, theirs.network_type);
    assert_eq!(ours.name, theirs.name);
    assert_eq!(ours.mtu, theirs.mtu);
    assert_eq!(ours.multicast_limit, theirs.multicast_limit);
    assert_eq!(ours.flags, theirs.flags);
    assert_eq!(ours.revision, theirs.revision);
    assert_eq!(
        ours.credential_time_max_delta,
        theirs.credential_time_max_delta
    );
    assert_eq!(ours.routes, theirs.routes);
    assert_eq!(ours.static_ips, theirs.static_ips);
    assert_eq!(ours.rules, theirs.rules);
    assert_eq!(ours.dns, theirs.dns);
    assert_eq!(ours.specialists, theirs.specialists);
    assert_eq!(ours.timestamp, NOW);

    // COM: verifies with the controller, same network, issued to a with a's key hash.
    let our_com = ours.com.as_ref().unwrap();
    let their_com = theirs.com.as_ref().unwrap();
    assert!(our_com.verify(&root));
    assert!(their_com.verify(&root));
    assert_eq!(our_com.network_id(), their_com.network_id());
    assert_eq!(our_com.issued_to(), their_com.issued_to());
    for id in 1..=6 {
        assert_eq!(
            our_com.value_of(id),
            their_com.value_of(id),
            "qualifier {id}"
        );
    }
    let ids = |c: &ztrs::wire::com::CertificateOfMembership| {
        c.qualifiers()
            .iter()
            .map(|q| (q.id, q.max_delta))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(our_com), ids(their_com));
    assert!(our_com.agrees_with(their_com, &a) || our_com.timestamp() != their_com.timestamp());

    // COO: one, listing the static IP, as the reference.
    assert_eq!(ours.certificates_of_ownership.len(), 1);
    let (our_coo, their_coo) = (
        &ours.certificates_of_ownership[0],
        &theirs.certificates_of_ownership[0],
    );
    assert_eq!(our_coo.id, their_coo.id);
    assert_eq!(our_coo.things, their_coo.things);
    assert!(our_coo.verify(&root));

    // The dictionary parses back and the chunks reassemble and verify.
    assert_eq!(
        &NetworkConfig::from_dictionary(&issued.dictionary).unwrap(),
        ours
    );
    assert_eq!(
        NetworkConfig::from_dictionary(&ours.to_dictionary()).unwrap(),
        *ours
    );
    let mut assembler = ConfigAssembler::new(NWID, AssemblerOptions::default());
    let mut complete = None;
    for chunk in &issued.chunks {
        if let Accepted::Complete { dictionary, .. } = assembler
            .accept_payload(chunk, root.address(), &root, NOW as u64)
            .unwrap()
        {
            complete = Some(dictionary);
        }
    }
    assert_eq!(complete.unwrap(), issued.dictionary);
}

#[test]
fn rules_engine_revision_zero_gets_allow_all() {
    let root = identity("root/identity.secret");
    let a = identity("a/identity.public");
    let mut controller = Controller::new(root, Box::new(reference_store()));
    controller
        .update_network(
            NOW,
            NWID,
            &json!({"rules": [{"type": "ACTION_DROP", "not": false, "or": false}]}),
        )
        .unwrap();
    let mut d = DictionaryBuilder::new(METADATA_CAPACITY);
    d.add_u64("v", 7).unwrap();
    let old = controller
        .handle_config_request(NOW, NWID, &a, &d.finish())
        .unwrap();
    assert_eq!(old.config.rules, vec![ztrs::wire::rules::Rule::accept()]);
    let new = controller
        .handle_config_request(NOW + 1000, NWID, &a, &metadata_1_14_1(None))
        .unwrap();
    assert_eq!(
        new.config.rules,
        vec![ztrs::wire::rules::Rule::drop_frame()]
    );
}

#[test]
fn private_network_authorization() {
    let root = identity("root/identity.secret");
    let a = identity("a/identity.public");
    let mut controller = Controller::new(root.clone(), Box::new(MemoryStore::new()));
    let network = controller
        .create_network(NOW, json!({"name": "private", "authTokens": {"s3cret": 0}}))
        .unwrap();
    let nwid = network.network_id().unwrap();
    assert_eq!(nwid.controller(), root.address());
    assert_ne!(nwid.0 & 0xff_ffff, 0);
    assert!(network.private);
    let meta = metadata_1_14_1(None);

    // Unknown member: denied and saved for an admin to see.
    let denied = controller.handle_config_request(NOW, nwid, &a, &meta);
    assert!(matches!(denied, Err(RequestError::AccessDenied)));
    assert_eq!(denied.unwrap_err().error_code(), Some(0x07));
    let member = controller.get_member(nwid, a.address()).unwrap();
    assert!(!member.authorized);
    assert_eq!(
        member.identity.as_deref(),
        Some(a.to_public_string().as_str())
    );
    assert_eq!(
        (member.v_major, member.v_minor, member.v_rev, member.v_proto),
        (1, 14, 1, 12)
    );
    assert_eq!(controller.list_members(nwid).unwrap(), vec![a.address()]);

    // Rate limit: a second request within 1 s is dropped and counted.
    assert!(matches!(
        controller.handle_config_request(NOW + 10, nwid, &a, &meta),
        Err(RequestError::RateLimited)
    ));
    assert_eq!(controller.counters().rate_limited, 1);

    // Authorize: config issued.
    let m = controller
        .update_member(NOW + 500, nwid, a.address(), &json!({"authorized": true}))
        .unwrap();
    assert_eq!(m.last_authorized_credential_type.as_deref(), Some("api"));
    let issued = controller
        .handle_config_request(NOW + 1000, nwid, &a, &meta)
        .unwrap();
    assert_eq!(issued.config.network_type, NetworkType::Private);
    assert!(issued.config.com.as_ref().unwrap().verify(&root));
    assert_eq!(
        controller.members_to_push(NOW + 2000, nwid),
        vec![a.address()]
    );
    assert!(controller.members_to_push(NOW + 200_000, nwid).is_empty());

    // A member never authorized holds no certificate: nothing to revoke.
    let never = identity("b/identity.public");
    controller
        .update_member(
            NOW + 1400,
            nwid,
            never.address(),
            &json!({"authorized": false}),
        )
        .unwrap();
    assert!(
        controller
            .revocation_for(NOW + 1500, nwid, never.address())
            .is_none()
    );

    // Deauthorize: denied again, and a signed COM revocation is available.
    controller
        .update_member(NOW + 1500, nwid, a.address(), &json!({"authorized": false}))
        .unwrap();
    let revocation = controller
        .revocation_for(NOW + 1500, nwid, a.address())
        .unwrap();
    assert!(revocation.verify(&root));
    assert!(matches!(
        controller.handle_config_request(NOW + 2000, nwid, &a, &meta),
        Err(RequestError::AccessDenied)
    ));

    // Identity mismatch: another key claiming a's address is denied.
    controller
        .update_member(NOW + 2500, nwid, a.address(), &json!({"authorized": true}))
        .unwrap();
    let b = identity("b/identity.public");
    let impostor: Identity = format!("{}:0:{}", a.address(), ztrs::hex::encode(b.public_key()))
        .parse()
        .unwrap();
    assert!(matches!(
        controller.handle_config_request(NOW + 3000, nwid, &impostor, &meta),
        Err(RequestError::AccessDenied)
    ));
    assert!(
        controller
            .handle_config_request(NOW + 4000, nwid, &a, &meta)
            .is_ok()
    );

    // A join token authorizes b.
    let issued = controller
        .handle_config_request(NOW, nwid, &b, &metadata_1_14_1(Some("s3cret")))
        .unwrap();
    assert_eq!(issued.config.issued_to, b.address());
    let mb = controller.get_member(nwid, b.address()).unwrap();
    assert_eq!(mb.last_authorized_credential_type.as_deref(), Some("token"));

    // Unknown network of ours: OBJ_NOT_FOUND; someone else's network: silence.
    let missing = NetworkId((root.address().to_u64() << 24) | 0x123);
    let e = controller
        .handle_config_request(NOW, missing, &a, &meta)
        .unwrap_err();
    assert_eq!(e.error_code(), Some(0x03));
    let e = controller
        .handle_config_request(NOW, NetworkId(0x1122334455000001), &a, &meta)
        .unwrap_err();
    assert!(matches!(e, RequestError::NotOurNetwork));
}

#[test]
fn ipv6_managed_addresses_match_derivations() {
    let root = identity("root/identity.secret");
    let a = identity("a/identity.public");
    let mut controller = Controller::new(root, Box::new(MemoryStore::new()));
    let nwid = controller
        .create_network(
            NOW,
            json!({"private": false, "v6AssignMode": {"rfc4193": true, "6plane": true, "zt": false}}),
        )
        .unwrap()
        .network_id()
        .unwrap();
    let issued = controller
        .handle_config_request(NOW, nwid, &a, &metadata_1_14_1(None))
        .unwrap();
    assert_eq!(
        issued.config.static_ips,
        vec![
            InetAddress::Ip(IpAddr::V6(managed_ip::rfc4193(nwid, a.address())), 88),
            InetAddress::Ip(IpAddr::V6(managed_ip::six_plane(nwid, a.address())), 40),
        ]
    );
    assert_ne!(issued.config.flags & FLAG_ENABLE_IPV6_NDP_EMULATION, 0);
    assert_ne!(issued.config.flags & FLAG_ENABLE_BROADCAST, 0);
    let coo = &issued.config.certificates_of_ownership[0];
    assert_eq!(coo.things.len(), 2);
}

#[test]
fn ipv4_pool_assignment_is_stable_and_needs_a_route() {
    let pool_network = |routes: serde_json::Value| {
        serde_json::from_value::<ztrs::controller::Network>(json!({
            "id": "28210c94e2a0b81a", "nwid": "28210c94e2a0b81a",
            "ipAssignmentPools": [{"ipRangeStart": "10.1.0.250", "ipRangeEnd": "10.1.1.10"}],
            "routes": routes,
            "v4AssignMode": {"zt": true}
        }))
        .unwrap()
    };
    let with_route = pool_network(json!([{"target": "10.1.0.0/16", "via": null}]));
    let routes: Vec<Route> = with_route
        .routes
        .iter()
        .map(|r| {
            let (ip, bits) = parse_cidr(&r.target).unwrap();
            Route {
                target: InetAddress::Ip(ip, bits),
                via: InetAddress::Nil,
                flags: 0,
                metric: 0,
            }
        })
        .collect();
    // start + (address & 0xffffffff) mod (end - start): len 16, 0x05 mod 16 = 5 -> 10.1.0.255,
    // skipped -> 10.1.1.0.
    let address = Address::from_u64(0x1100000005);
    let none = HashSet::new();
    let first = assign_v4(&with_route, &routes, address, &none).unwrap();
    assert_eq!(first, (Ipv4Addr::new(10, 1, 1, 0), 16));
    assert_eq!(
        assign_v4(&with_route, &routes, address, &none).unwrap(),
        first
    );
    let taken: HashSet<IpAddr> = [IpAddr::V4(first.0)].into();
    assert_eq!(
        assign_v4(&with_route, &routes, address, &taken).unwrap().0,
        Ipv4Addr::new(10, 1, 1, 1)
    );
    // No covering route: nothing.
    assert_eq!(
        assign_v4(&pool_network(json!([])), &[], address, &none),
        None
    );

    // Through the controller: a second member never gets the first one's address, and a
    // member keeps its address across requests.
    let root = identity("root/identity.secret");
    let a = identity("a/identity.public");
    let b = identity("b/identity.public");
    let mut store = reference_store();
    for who in [&a, &b] {
        let mut m = store.get_member(NWID, who.address()).unwrap().unwrap();
        m.ip_assignments.clear();
        store.put_member(&m).unwrap();
    }
    let mut controller = Controller::new(root, Box::new(store));
    let meta = metadata_1_14_1(None);
    let ip_of = |c: &ztrs::controller::IssuedConfig| c.config.static_ips.clone();
    let a1 = controller
        .handle_config_request(NOW, NWID, &a, &meta)
        .unwrap();
    assert_eq!(
        ip_of(&a1),
        vec![InetAddress::Ip(
            IpAddr::V4(Ipv4Addr::new(10, 147, 17, 16)),
            24
        )]
    );
    let b1 = controller
        .handle_config_request(NOW, NWID, &b, &meta)
        .unwrap();
    assert_eq!(
        ip_of(&b1),
        vec![InetAddress::Ip(
            IpAddr::V4(Ipv4Addr::new(10, 147, 17, 88)),
            24
        )]
    );
    let a2 = controller
        .handle_config_request(NOW + 5000, NWID, &a, &meta)
        .unwrap();
    assert_eq!(ip_of(&a2), ip_of(&a1));
    // An assignment outside every route is not sent.
    controller
        .update_member(
            NOW,
            NWID,
            b.address(),
            &json!({"ipAssignments": ["192.168.9.9", "10.147.17.88"]}),
        )
        .unwrap();
    let b2 = controller
        .handle_config_request(NOW + 5000, NWID, &b, &meta)
        .unwrap();
    assert_eq!(ip_of(&b2), ip_of(&b1));
}
