//! Dictionaries, netconfs and netconf chunks against the reference vectors: the `dict` escape
//! vector, the controller-built `netconf_dict`, the signed `ok_netconf_plain_packet`, and the
//! netconfs the reference nodes stored in the two real captures.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use ztrs::crypto::Identity;
use ztrs::wire::dictionary::{Dictionary, DictionaryBuilder, METADATA_CAPACITY, NETCONF_CAPACITY};
use ztrs::wire::netconf::{NetworkConfig, NetworkType};
use ztrs::wire::netconf_chunk::{
    Accepted, AssemblerOptions, ConfigAssembler, ConfigChunk, split_and_sign,
};
use ztrs::wire::rules::Rule;
use ztrs::wire::{Address, InetAddress, NetworkId};

const NWID: NetworkId = NetworkId(0x7c2dfee12c000001);

fn identity(name: &str) -> Identity {
    common::read_reference(name)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{name} parses: {e:?}"))
}

fn netconf_dict() -> Vec<u8> {
    let v = common::netconf_vectors();
    let dict = common::unhex(v.get("netconf_dict").expect("netconf_dict vector"));
    let size: usize = v
        .get("netconf_dict_size")
        .expect("netconf_dict_size")
        .parse()
        .unwrap();
    assert_eq!(dict.len(), size);
    dict
}

#[test]
fn dict_vector_parses_and_is_reproduced() {
    let bytes = common::unhex(common::wire_vectors().get("dict").expect("dict vector"));
    let d = Dictionary::parse(&bytes, METADATA_CAPACITY).unwrap();
    assert_eq!(d.get_u64_hex("v"), Some(7));
    assert_eq!(
        d.get_str("n").as_deref(),
        Some("name with = and \\ and\nnewline")
    );
    assert_eq!(
        d.get("B").as_deref(),
        Some(&[0x00, 0x0a, 0x0d, 0x3d, 0x5c, 0x41][..])
    );
    assert_eq!(d.get_bool("t"), Some(true));

    let mut b = DictionaryBuilder::new(METADATA_CAPACITY);
    b.add_u64("v", 7).unwrap();
    b.add_str("n", "name with = and \\ and\nnewline").unwrap();
    b.add_bytes("B", &[0x00, 0x0a, 0x0d, 0x3d, 0x5c, 0x41])
        .unwrap();
    b.add_bool("t", true).unwrap();
    assert_eq!(
        b.finish(),
        bytes,
        "our writer reproduces the reference bytes"
    );
}

#[test]
fn netconf_vector_parses_with_every_field() {
    let dict = netconf_dict();
    let controller = identity("id1.public");
    let member = identity("id2.public");
    let nc = NetworkConfig::from_dictionary(&dict).unwrap();
    assert_eq!(nc.version, 7);
    assert_eq!(nc.network_id, NWID);
    assert_eq!(nc.issued_to, Address::from_u64(0x608938c440));
    assert_eq!(nc.issued_to, member.address());
    assert!(nc.check_for(NWID, member.address()).is_ok());
    assert!(nc.check_for(NWID, controller.address()).is_err());
    assert_eq!(nc.name, "testnet");
    assert_eq!(nc.mtu, 2800);
    assert_eq!(nc.network_type, NetworkType::Private);
    assert!(nc.is_private() && nc.broadcast_enabled());
    assert!(!nc.ndp_emulation() && !nc.compression_disabled());
    assert_eq!(nc.flags, 0x02);
    assert_eq!(nc.multicast_limit, 32);
    assert_eq!(nc.revision, 3);
    assert_eq!(nc.timestamp, 0x18bcfe56800);
    assert_eq!(nc.credential_time_max_delta, 0x1b7740);
    assert_eq!(nc.remote_trace_target, Address::default());

    let net = IpAddr::V4(Ipv4Addr::new(10, 147, 17, 0));
    assert_eq!(nc.routes.len(), 1);
    assert_eq!(nc.routes[0].target_network(), Some((net, 24)));
    assert_eq!(nc.routes[0].via_ip(), None);
    assert_eq!((nc.routes[0].flags, nc.routes[0].metric), (0, 0));
    let ip = IpAddr::V4(Ipv4Addr::new(10, 147, 17, 5));
    assert_eq!(nc.static_ips, vec![InetAddress::Ip(ip, 24)]);
    assert_eq!(nc.assigned_addresses().collect::<Vec<_>>(), vec![(ip, 24)]);

    let com = nc.com.as_ref().expect("COM present");
    assert_eq!(com.issued_to(), member.address());
    assert_eq!(com.signed_by(), Some(controller.address()));
    assert_eq!(com.network_id(), NWID);
    assert!(com.verify(&controller), "COM verifies with A");
    assert!(!com.verify(&member));

    assert_eq!(nc.certificates_of_ownership.len(), 1);
    let coo = &nc.certificates_of_ownership[0];
    assert!(coo.owns_ip(ip));
    assert!(coo.verify(&controller), "COO verifies with A");
    assert!(nc.capabilities.is_empty() && nc.tags.is_empty() && nc.specialists.is_empty());
    assert_eq!(nc.rules, vec![Rule::accept()]);
    let dns = nc.dns.as_ref().expect("DNS present");
    assert!(dns.domain.is_empty() && dns.servers.is_empty());
    assert!(!nc.sso.enabled);
    assert_eq!(nc.sso.version, 0);

    let written = nc.to_dictionary();
    assert_eq!(written.len(), 1125);
    assert_eq!(
        written, dict,
        "to_dictionary reproduces the controller's bytes"
    );
    assert_eq!(nc.to_dictionary_checked().unwrap(), dict);
}

#[test]
fn signed_ok_packet_chunk_verifies_and_assembles() {
    let v = common::netconf_vectors();
    let packet = common::unhex(v.get("ok_netconf_plain_packet").expect("packet vector"));
    assert_eq!(
        v.get("ok_netconf_signed_range").map(String::as_str),
        Some("[37,1189)")
    );
    let controller = identity("id1.public");
    let payload = &packet[37..];
    let chunk = ConfigChunk::parse(payload).unwrap();
    assert_eq!(chunk.network_id, NWID);
    assert_eq!(chunk.data, &netconf_dict()[..]);
    let signed = chunk.signed.expect("signed chunk");
    assert_eq!(signed.update_id, 0x0102030405060708);
    assert_eq!(
        (signed.total_len, signed.offset, signed.flags),
        (1125, 0, 0)
    );
    assert!(!chunk.fast_propagate());
    assert_eq!(chunk.signed_portion(), &packet[37..1189]);
    assert!(chunk.verify(&controller), "signature verifies with A");
    assert!(!chunk.verify(&identity("id2.public")));
    let mut emitted = Vec::new();
    chunk.emit(&mut emitted);
    assert_eq!(emitted, payload, "emit reproduces the packet payload");
    assert_eq!(chunk.emitted_len(), payload.len());

    let mut assembler = ConfigAssembler::new(NWID, AssemblerOptions::default());
    let outcome = assembler
        .accept_payload(payload, controller.address(), &controller, 1_000)
        .unwrap();
    let Accepted::Complete {
        update_id,
        dictionary,
    } = outcome
    else {
        panic!("one chunk completes the config: {outcome:?}");
    };
    assert_eq!(update_id, 0x0102030405060708);
    assert_eq!(dictionary, netconf_dict());
    let nc = NetworkConfig::from_dictionary(&dictionary).unwrap();
    assert_eq!(nc.network_id, NWID);
    // A re-sent copy (fast propagation) is a counted duplicate, not a second config.
    assert!(
        assembler
            .accept_payload(payload, controller.address(), &controller, 1_001)
            .is_err()
    );
    assert_eq!(assembler.counters().duplicate, 1);
    assert_eq!(assembler.counters().completed_updates, 1);
}

#[test]
fn our_controller_chunks_reassemble_to_the_vector() {
    let dict = netconf_dict();
    let controller = identity("id1.secret");
    let chunks = split_and_sign(NWID, &dict, 0x0102030405060708, 0, &controller).unwrap();
    assert_eq!(chunks.len(), 1);
    let v = common::netconf_vectors();
    let packet = common::unhex(v.get("ok_netconf_plain_packet").unwrap());
    let mut ours = Vec::new();
    chunks[0].emit(&mut ours);
    // Signing is deterministic, so our chunk equals the reference controller's.
    assert_eq!(ours, &packet[37..]);
}

#[test]
fn capture_netconfs_load_with_their_addresses() {
    let dir = common::vectors_dir();
    let mut seen = 0;
    for capture in ["zerotierone-1.14.1-capture", "zerotierone-1.14.1-capture-2"] {
        let base = dir.join(capture);
        let read = |name: &str| {
            let path = base.join(name);
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
                .trim()
                .to_string()
        };
        let nwid: NetworkId = read("nwid").parse().unwrap();
        for (node, ip_file) in [("a", "ipa"), ("b", "ipb")] {
            let ip: IpAddr = read(ip_file).parse().unwrap();
            let path = base
                .join(node)
                .join("networks.d")
                .join(format!("{nwid}.conf"));
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let nc = NetworkConfig::from_dictionary(&bytes)
                .unwrap_or_else(|e| panic!("{} parses: {e}", path.display()));
            assert_eq!(nc.network_id, nwid);
            assert!(
                nc.assigned_addresses().any(|(a, _)| a == ip),
                "{} assigns {ip}",
                path.display()
            );
            assert!(nc.is_public(), "the capture network is public");
            let member: Identity = read(&format!("{node}/identity.public")).parse().unwrap();
            assert!(nc.check_for(nwid, member.address()).is_ok());
            let com = nc.com.as_ref().expect("COM");
            assert_eq!(com.signed_by(), Some(nwid.controller()));
            assert_eq!(nc.to_dictionary(), bytes, "{} round-trips", path.display());
            seen += 1;
        }
    }
    assert_eq!(seen, 4);
}

#[test]
fn netconf_capacity_is_enforced() {
    // A trailing line without '=' is ignored, so only the size decides.
    let mut big = netconf_dict();
    big.push(b'\n');
    big.resize(NETCONF_CAPACITY - 1, b'x');
    assert!(NetworkConfig::from_dictionary(&big).is_ok());
    big.push(b'x');
    assert_eq!(
        NetworkConfig::from_dictionary(&big),
        Err(ztrs::wire::Error::TooLarge("dictionary"))
    );
}

// ---- Netconf codec properties beyond the vectors: caps, every field, round trips. ----

mod codec {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use ztrs::wire::com::CertificateOfMembership;
    use ztrs::wire::credentials::{Capability, CertificateOfOwnership, Tag, emit_list};
    use ztrs::wire::dictionary::{DictionaryBuilder, NETCONF_CAPACITY};
    use ztrs::wire::netconf::*;
    use ztrs::wire::rules::{Rule, RuleKind};
    use ztrs::wire::{Address, Error, InetAddress, NetworkId};

    const NWID: NetworkId = NetworkId(0x7c2dfee12c000001);
    const MEMBER: Address = Address::from_u64(0x608938c440);

    fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> InetAddress {
        InetAddress::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
    }

    fn with_blob(key: &str, blob: &[u8]) -> ztrs::wire::Result<NetworkConfig> {
        let mut d = DictionaryBuilder::new(NETCONF_CAPACITY);
        d.add_u64(keys::VERSION, 7).unwrap();
        d.add_u64(keys::NETWORK_ID, NWID.0).unwrap();
        d.add_address(keys::ISSUED_TO, MEMBER).unwrap();
        d.add_bytes(key, blob).unwrap();
        NetworkConfig::from_dictionary(&d.finish())
    }

    fn rich() -> NetworkConfig {
        let mut nc = NetworkConfig::new(NWID, MEMBER, 1_700_000_000_000);
        nc.revision = 9;
        nc.name = "rich = net\\work\n".into();
        nc.flags |= FLAG_ENABLE_IPV6_NDP_EMULATION | FLAG_DISABLE_COMPRESSION;
        nc.network_type = NetworkType::Public;
        nc.mtu = 1500;
        nc.remote_trace_target = Address::from_u64(0x1122334455);
        nc.specialists = vec![
            Specialist::new(Address::from_u64(0xaabbccddee), SPECIALIST_ACTIVE_BRIDGE),
            Specialist::new(Address::from_u64(0x0102030405), SPECIALIST_ANCHOR),
            Specialist::new(
                Address::from_u64(0x0a0b0c0d0e),
                SPECIALIST_MULTICAST_REPLICATOR,
            ),
        ];
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        nc.routes = vec![
            Route {
                target: v4(10, 0, 0, 0, 8),
                via: InetAddress::Nil,
                flags: 0,
                metric: 0,
            },
            Route {
                target: InetAddress::Ip(v6, 64),
                via: v4(10, 0, 0, 1, 0),
                flags: 1,
                metric: 7,
            },
        ];
        nc.static_ips = vec![v4(10, 0, 0, 5, 8), InetAddress::Ip(v6, 64)];
        nc.rules = vec![
            Rule::new(RuleKind::MatchEthertype(0x0800)),
            Rule::accept(),
            Rule::drop_frame(),
        ];
        nc.tags = vec![
            Tag::new(NWID, 5, MEMBER, 1, 2),
            Tag::new(NWID, 5, MEMBER, 3, 4),
        ];
        nc.capabilities = vec![Capability::new(NWID, 5, 7, 3, vec![Rule::accept()])];
        nc.certificates_of_ownership = vec![CertificateOfOwnership::new(NWID, 5, MEMBER, 1)];
        nc.dns = Some(DnsConfig {
            domain: b"example.org".to_vec(),
            servers: vec![v4(10, 0, 0, 53, 53)],
        });
        nc.sso = SsoConfig {
            version: 1,
            enabled: true,
            issuer_url: Some("https://issuer".into()),
            central_endpoint_url: Some(String::new()),
            nonce: Some("n".into()),
            state: Some("s=1".into()),
            client_id: Some("c".into()),
            provider: Some("default".into()),
            ..SsoConfig::default()
        };
        nc
    }

    #[test]
    fn every_field_round_trips() {
        let nc = rich();
        let bytes = nc.to_dictionary();
        let back = NetworkConfig::from_dictionary(&bytes).unwrap();
        assert_eq!(back, nc);
        assert_eq!(back.to_dictionary(), bytes);
        let bridge = Address::from_u64(0xaabbccddee);
        assert_eq!(back.active_bridges().collect::<Vec<_>>(), vec![bridge]);
        assert_eq!(back.anchors().count(), 1);
        assert_eq!(back.multicast_replicators().count(), 1);
        assert!(back.is_active_bridge(bridge));
        assert!(!back.is_active_bridge(Address::from_u64(0x0102030405)));
        assert!(back.ndp_emulation() && back.compression_disabled() && back.is_public());
        let dns = back.dns.as_ref().unwrap();
        assert_eq!(dns.domain_str(), Some("example.org"));
    }

    #[test]
    fn list_caps_are_enforced() {
        let mut ip = Vec::new();
        v4(10, 0, 0, 1, 24).emit(&mut ip);
        let too_large =
            |key: &str, blob: &[u8]| matches!(with_blob(key, blob), Err(Error::TooLarge(_)));
        assert_eq!(
            with_blob(keys::STATIC_IPS, &ip.repeat(32))
                .unwrap()
                .static_ips
                .len(),
            32
        );
        assert!(too_large(keys::STATIC_IPS, &ip.repeat(33)));
        let route = [ip.clone(), vec![0, 0, 1, 0, 2]].concat();
        assert_eq!(
            with_blob(keys::ROUTES, &route.repeat(128))
                .unwrap()
                .routes
                .len(),
            128
        );
        assert!(too_large(keys::ROUTES, &route.repeat(129)));
        assert!(with_blob(keys::ROUTES, &route[..route.len() - 1]).is_err());
        assert_eq!(
            with_blob(keys::SPECIALISTS, &[1u8; 8 * 256])
                .unwrap()
                .specialists
                .len(),
            256
        );
        assert!(too_large(keys::SPECIALISTS, &[1u8; 8 * 257]));
        assert!(matches!(
            with_blob(keys::SPECIALISTS, &[1u8; 9]),
            Err(Error::Malformed(_))
        ));
        assert_eq!(
            with_blob(keys::RULES, &[1, 0].repeat(1024))
                .unwrap()
                .rules
                .len(),
            1024
        );
        assert!(too_large(keys::RULES, &[1, 0].repeat(1025)));
        let mut dns = vec![0u8; 128];
        dns.extend(ip.repeat(4));
        assert_eq!(
            with_blob(keys::DNS, &dns)
                .unwrap()
                .dns
                .unwrap()
                .servers
                .len(),
            4
        );
        dns.extend(&ip);
        assert!(too_large(keys::DNS, &dns));
        assert!(with_blob(keys::DNS, &[0u8; 127]).is_err());
        let mut coos = Vec::new();
        emit_list(
            &vec![CertificateOfOwnership::new(NWID, 1, MEMBER, 1); 5],
            &mut coos,
        );
        assert!(too_large(keys::CERTIFICATES_OF_OWNERSHIP, &coos));
        let mut tags = Vec::new();
        emit_list(&vec![Tag::new(NWID, 1, MEMBER, 1, 1); 129], &mut tags);
        assert!(too_large(keys::TAGS, &tags));
        // A COM with trailing bytes is refused (strict length, H2.8).
        let mut com = CertificateOfMembership::from_qualifiers(Vec::new())
            .unwrap()
            .to_bytes();
        assert!(with_blob(keys::COM, &com).unwrap().com.is_some());
        com.push(0);
        assert!(with_blob(keys::COM, &com).is_err());
        // Reserved InetAddress types read as "none", which is what we would write.
        let reserved = [1u8, 0, 0, 0, 0, 0, 0];
        let nc = with_blob(keys::STATIC_IPS, &reserved).unwrap();
        assert_eq!(nc.static_ips, vec![InetAddress::Nil]);
    }

    fn arb_inet() -> impl Strategy<Value = InetAddress> {
        prop_oneof![
            Just(InetAddress::Nil),
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, p)| InetAddress::Ip(IpAddr::from(ip), p)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, p)| InetAddress::Ip(IpAddr::from(ip), p)),
        ]
    }

    fn arb_config() -> impl Strategy<Value = NetworkConfig> {
        let ids = (
            6u64..9,
            1u64..,
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            1u64..(1 << 40),
        );
        let scalars = (
            0u64..(1 << 40),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<bool>(),
            "[ -~é]{0,40}",
            MIN_MTU..=MAX_MTU,
        );
        let lists = (
            proptest::collection::vec(any::<u64>().prop_map(Specialist), 0..4),
            proptest::collection::vec((arb_inet(), arb_inet(), any::<u16>(), any::<u16>()), 0..4),
            proptest::collection::vec(arb_inet(), 0..4),
            proptest::collection::vec(
                prop_oneof![Just(Rule::accept()), Just(Rule::drop_frame())],
                0..4,
            ),
            proptest::option::of(("[a-z.]{0,40}", proptest::collection::vec(arb_inet(), 0..4))),
            (
                any::<u64>(),
                any::<bool>(),
                proptest::option::of("[ -~]{0,20}"),
                proptest::option::of(any::<u64>()),
            ),
        );
        (ids, scalars, lists).prop_map(
            |(a, b, (specialists, routes, static_ips, rules, dns, sso))| {
                let mut nc = NetworkConfig::new(NetworkId(a.1), Address::from_u64(a.5), a.2);
                (nc.version, nc.credential_time_max_delta, nc.revision) = (a.0, a.3, a.4);
                nc.remote_trace_target = Address::from_u64(b.0);
                (nc.remote_trace_level, nc.flags, nc.multicast_limit) = (b.1, b.2, b.3);
                nc.network_type = if b.4 {
                    NetworkType::Public
                } else {
                    NetworkType::Private
                };
                (nc.name, nc.mtu) = (b.5, b.6);
                nc.specialists = specialists;
                nc.routes = routes
                    .into_iter()
                    .map(|(target, via, flags, metric)| Route {
                        target,
                        via,
                        flags,
                        metric,
                    })
                    .collect();
                (nc.static_ips, nc.rules) = (static_ips, rules);
                nc.dns = dns.map(|(domain, servers)| DnsConfig {
                    domain: domain.into_bytes(),
                    servers: servers
                        .into_iter()
                        .filter(|s| *s != InetAddress::Nil)
                        .collect(),
                });
                nc.sso = SsoConfig {
                    version: sso.0,
                    enabled: sso.1,
                    authentication_url: sso.2,
                    authentication_expiry: sso.3,
                    ..SsoConfig::default()
                };
                nc
            },
        )
    }

    proptest! {
        #[test]
        fn arbitrary_blobs_never_panic(key in prop_oneof![
                Just(keys::COM), Just(keys::CAPABILITIES), Just(keys::TAGS),
                Just(keys::CERTIFICATES_OF_OWNERSHIP), Just(keys::SPECIALISTS), Just(keys::ROUTES),
                Just(keys::STATIC_IPS), Just(keys::RULES), Just(keys::DNS), Just(keys::NAME)],
            blob in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(nc) = with_blob(key, &blob) {
                prop_assert_eq!(NetworkConfig::from_dictionary(&nc.to_dictionary()).unwrap(), nc);
            }
        }

        #[test]
        fn configs_round_trip(nc in arb_config()) {
            let bytes = nc.to_dictionary();
            let back = NetworkConfig::from_dictionary(&bytes).unwrap();
            prop_assert_eq!(&back, &nc);
            prop_assert_eq!(back.to_dictionary(), bytes);
        }
    }
}
