//! Verb payload codecs against the reference vectors, plus property tests over every verb:
//! generated representations round-trip through emit/parse, and arbitrary or mutated bytes
//! never panic and, when accepted, re-emit to a fixed point.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use proptest::collection::vec;
use proptest::prelude::*;

use ztrs::crypto::Identity;
use ztrs::wire::com::{CertificateOfMembership, Qualifier};
use ztrs::wire::credentials::{
    Capability, CertificateOfOwnership, CredentialType, Revocation, Tag, Thing,
};
use ztrs::wire::mac::{Mac, MulticastGroup};
use ztrs::wire::netconf_chunk::{ChunkSignature, ConfigChunk};
use ztrs::wire::packet::HEADER_LEN;
use ztrs::wire::verbs::*;
use ztrs::wire::{Address, InetAddress, NetworkId, Verb};

// ---------------------------------------------------------------------------------------------
// Reference vectors

fn identity_a() -> &'static Identity {
    static A: OnceLock<Identity> = OnceLock::new();
    A.get_or_init(|| {
        common::wire_vectors()["A_secret"]
            .parse()
            .expect("A_secret parses")
    })
}

fn vector(map: &std::collections::HashMap<String, String>, key: &str) -> Vec<u8> {
    common::unhex(
        map.get(key)
            .unwrap_or_else(|| panic!("vector {key} is missing")),
    )
}

#[test]
fn hello_vector_parses_and_re_emits_exactly() {
    let v = common::wire_vectors();
    let packet = vector(&v, "hello_plain_before_cryptField");
    let payload = &packet[HEADER_LEN..];
    assert_eq!(Verb::from_byte(packet[HEADER_LEN - 1]), Verb::Hello);

    let Payload::Hello(hello) = parse_payload(Verb::Hello, payload).unwrap() else {
        panic!("not a HELLO");
    };
    assert_eq!(hello.protocol_version, 12);
    assert_eq!(
        hello.software_version,
        SoftwareVersion {
            major: 1,
            minor: 14,
            revision: 1
        }
    );
    assert_eq!(hello.timestamp, 1_700_000_000_000);
    assert_eq!(&hello.identity, identity_a());
    assert!(!hello.identity.has_secret());
    assert_eq!(
        hello.sent_to,
        Some(InetAddress::Ip("192.0.2.1".parse().unwrap(), 9993))
    );
    assert_eq!(
        hello.planet,
        Some(WorldStamp {
            id: 149_604_618,
            timestamp: 1_644_592_324_813
        })
    );
    // The encrypted tail is the last two bytes of the 137-byte packet (moon count 0).
    assert_eq!(hello.moon_tail_offset(), packet.len() - 2 - HEADER_LEN);
    assert_eq!(hello.moon_tail, &[0, 0]);
    assert_eq!(
        &payload[hello.moon_tail_offset()..],
        hello.moon_tail,
        "the offset points at the tail"
    );
    assert!(HelloMoons::parse(hello.moon_tail).unwrap().moons.is_empty());

    let mut out = Vec::new();
    hello.emit(&mut out);
    assert_eq!(out, payload, "emit reproduces the reference bytes");

    // In the armored packet the same offset holds the (encrypted) two-byte tail.
    let armored = vector(&v, "hello_armored");
    assert_eq!(armored.len(), packet.len());
    assert_eq!(armored[HEADER_LEN + hello.moon_tail_offset()..].len(), 2);
}

#[test]
fn like_vector_has_twenty_tuples() {
    let v = common::wire_vectors();
    let packet = vector(&v, "like_plain");
    assert_eq!(Verb::from_byte(packet[HEADER_LEN - 1]), Verb::MulticastLike);
    let payload = &packet[HEADER_LEN..];
    let Payload::MulticastLike(like) = parse_payload(Verb::MulticastLike, payload).unwrap() else {
        panic!("not a MULTICAST_LIKE");
    };
    assert_eq!(like.len(), 20);
    let tuples: Vec<_> = like.iter().collect();
    assert_eq!(tuples.len(), 20);
    let nwid: NetworkId = "8056c2e21c000001".parse().unwrap();
    assert!(tuples.iter().all(|(n, _)| *n == nwid));
    assert!(tuples.iter().all(|(_, g)| g.mac == Mac::BROADCAST));
    let mut out = Vec::new();
    like.emit(&mut out);
    assert_eq!(out, payload);
}

#[test]
fn ok_netconf_vector_parses_as_a_signed_chunk() {
    let nv = common::netconf_vectors();
    let packet = vector(&nv, "ok_netconf_plain_packet");
    assert_eq!(Verb::from_byte(packet[HEADER_LEN - 1]), Verb::Ok);
    let payload = &packet[HEADER_LEN..];
    let Payload::Ok(ok) = parse_payload(Verb::Ok, payload).unwrap() else {
        panic!("not an OK");
    };
    assert_eq!(ok.in_re_packet_id, 0x6666666666666666);
    assert_eq!(ok.body.in_re_verb(), Verb::NetworkConfigRequest);
    let OkBody::NetworkConfigRequest(chunk) = &ok.body else {
        panic!("not OK(NETWORK_CONFIG_REQUEST)");
    };
    assert_eq!(chunk.network_id, "7c2dfee12c000001".parse().unwrap());
    assert_eq!(chunk.data, vector(&nv, "netconf_dict"));
    let signed = chunk.signed.expect("signed chunk");
    assert_eq!(signed.update_id, 0x0102030405060708);
    assert_eq!(
        (signed.offset, signed.total_len),
        (0, chunk.data.len() as u32)
    );

    // The chunk starts right after the OK header (packet offset 37) and its data is borrowed
    // from the packet, not copied.
    let start = HEADER_LEN + 9;
    let portion = chunk.signed_portion();
    let end = start + portion.len();
    assert_eq!(format!("[{start},{end})"), nv["ok_netconf_signed_range"]);
    assert_eq!(&packet[start..end], &portion[..]);
    assert_eq!(
        chunk.data.as_ptr() as usize - packet.as_ptr() as usize,
        start + 10
    );
    assert!(chunk.verify(identity_a()), "signed by the controller A");

    let mut out = Vec::new();
    ok.emit(&mut out);
    assert_eq!(out, payload);
}

#[test]
fn network_config_ack_uses_the_echo_quirk() {
    let ack = NetworkConfigAck {
        network_id: NetworkId(0x7c2dfee12c000001),
        config_update_id: 0x0102030405060708,
    };
    let ok = OkReply {
        in_re_packet_id: 42,
        body: OkBody::NetworkConfig(ack),
    };
    let mut out = Vec::new();
    ok.emit(&mut out);
    assert_eq!(out[0], 0x08, "the reference writes in-re verb ECHO");
    assert_eq!(out.len(), 1 + 8 + 16);
    let Payload::Ok(back) = parse_payload(Verb::Ok, &out).unwrap() else {
        panic!("not an OK");
    };
    let OkBody::Echo(echo) = back.body else {
        panic!("in-re ECHO parses as OK(ECHO)");
    };
    assert_eq!(NetworkConfigAck::from_echo(&echo), Some(ack));
    // A sender that writes the proper in-re verb is understood too.
    out[0] = Verb::NetworkConfig.to_byte();
    let Payload::Ok(back) = parse_payload(Verb::Ok, &out).unwrap() else {
        panic!("not an OK");
    };
    assert_eq!(back.body, OkBody::NetworkConfig(ack));
}

#[test]
fn whois_reply_skips_only_the_malformed_identity() {
    let v = common::wire_vectors();
    let a = identity_a().to_public();
    let b: Identity = v["B_secret"].parse().unwrap();
    let b = b.to_public();
    let mut payload = vec![Verb::Whois.to_byte()];
    payload.extend_from_slice(&0x1122334455667788u64.to_be_bytes());
    a.emit_binary_public(&mut payload);
    let middle = payload.len();
    b.emit_binary_public(&mut payload);
    payload[middle + 5] = 1; // identity type byte 1: not C25519
    b.emit_binary_public(&mut payload);

    let Payload::Ok(ok) = parse_payload(Verb::Ok, &payload).unwrap() else {
        panic!("not an OK");
    };
    assert_eq!(ok.in_re_packet_id, 0x1122334455667788);
    let OkBody::Whois(reply) = ok.body else {
        panic!("not OK(WHOIS)");
    };
    assert_eq!(reply.identities, [a, b]);
    assert_eq!(reply.skipped, 1);
}

// ---------------------------------------------------------------------------------------------
// Strategies. Borrowed fields point into leaked buffers so generated payloads are 'static.

fn leak(v: Vec<u8>) -> &'static [u8] {
    v.leak()
}

fn bytes(max: usize) -> impl Strategy<Value = &'static [u8]> {
    vec(any::<u8>(), 0..=max).prop_map(leak)
}

fn arb_nwid() -> impl Strategy<Value = NetworkId> {
    any::<u64>().prop_map(NetworkId)
}

fn arb_address() -> impl Strategy<Value = Address> {
    (0u64..(1 << 40)).prop_map(Address::from_u64)
}

fn arb_identity() -> impl Strategy<Value = Identity> {
    (1u64..0xff_0000_0000, any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(addr, x, y)| {
        let mut public = [0u8; 64];
        public[..32].copy_from_slice(&x);
        public[32..].copy_from_slice(&y);
        Identity::from_parts(Address::from_u64(addr), public, None)
    })
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn arb_socket() -> impl Strategy<Value = SocketAddr> {
    (arb_ip(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn arb_inet() -> impl Strategy<Value = InetAddress> {
    prop_oneof![
        Just(InetAddress::Nil),
        (arb_ip(), any::<u16>()).prop_map(|(ip, port)| InetAddress::Ip(ip, port)),
    ]
}

fn arb_mac() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>().prop_map(Mac)
}

fn arb_group() -> impl Strategy<Value = MulticastGroup> {
    (arb_mac(), any::<u32>()).prop_map(|(mac, adi)| MulticastGroup::new(mac, adi))
}

fn arb_version() -> impl Strategy<Value = SoftwareVersion> {
    (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(major, minor, revision)| SoftwareVersion {
        major,
        minor,
        revision,
    })
}

fn arb_com() -> impl Strategy<Value = CertificateOfMembership> {
    let qualifier =
        (0u64..12, any::<u64>(), any::<u64>()).prop_map(|(id, value, max_delta)| Qualifier {
            id,
            value,
            max_delta,
        });
    (vec(qualifier, 0..=8), any::<bool>()).prop_map(|(qualifiers, signed)| {
        let mut com = CertificateOfMembership::from_qualifiers(qualifiers).unwrap();
        if signed {
            assert!(com.sign(identity_a()));
        }
        com
    })
}

fn arb_capability() -> impl Strategy<Value = Capability> {
    (arb_nwid(), any::<i64>(), any::<u32>(), 1u8..=7)
        .prop_map(|(n, ts, id, chain)| Capability::new(n, ts, id, chain, Vec::new()))
}

fn arb_tag() -> impl Strategy<Value = Tag> {
    (
        arb_nwid(),
        any::<i64>(),
        arb_address(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(n, ts, to, id, value)| Tag::new(n, ts, to, id, value))
}

fn arb_revocation() -> impl Strategy<Value = Revocation> {
    (
        any::<u32>(),
        arb_nwid(),
        any::<u32>(),
        any::<i64>(),
        any::<u64>(),
        arb_address(),
    )
        .prop_map(|(id, n, cid, threshold, flags, target)| {
            Revocation::new(
                id,
                n,
                cid,
                threshold,
                flags,
                target,
                CredentialType::CertificateOfMembership,
            )
        })
}

fn arb_coo() -> impl Strategy<Value = CertificateOfOwnership> {
    (
        arb_nwid(),
        any::<i64>(),
        arb_address(),
        any::<u32>(),
        vec(arb_ip(), 0..3),
    )
        .prop_map(|(n, ts, to, id, ips)| {
            let mut coo = CertificateOfOwnership::new(n, ts, to, id);
            for ip in ips {
                coo.add_thing(Thing::from_ip(ip));
            }
            coo
        })
}

fn arb_hello() -> impl Strategy<Value = Hello<'static>> {
    let planet =
        (any::<u64>(), any::<u64>()).prop_map(|(id, timestamp)| WorldStamp { id, timestamp });
    // The three shapes a sender produces: stop after the identity; sent-to plus a short
    // tail; or everything.
    let tail_shape = prop_oneof![
        Just((None, None, &[][..])),
        (arb_inet(), bytes(15)).prop_map(|(a, t)| (Some(a), None, t)),
        (arb_inet(), planet, bytes(64)).prop_map(|(a, p, t)| (Some(a), Some(p), t)),
    ];
    (
        any::<u8>(),
        arb_version(),
        any::<u64>(),
        arb_identity(),
        tail_shape,
    )
        .prop_map(
            |(
                protocol_version,
                software_version,
                timestamp,
                identity,
                (sent_to, planet, moon_tail),
            )| {
                Hello {
                    protocol_version,
                    software_version,
                    timestamp,
                    identity,
                    sent_to,
                    planet,
                    moon_tail,
                }
            },
        )
}

fn arb_error_body() -> impl Strategy<Value = ErrorBody<'static>> {
    let known = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    prop_oneof![
        Just(ErrorBody::NoError),
        Just(ErrorBody::InvalidRequest),
        Just(ErrorBody::BadProtocolVersion),
        proptest::option::of(arb_nwid()).prop_map(ErrorBody::ObjectNotFound),
        Just(ErrorBody::IdentityCollision),
        proptest::option::of(arb_nwid()).prop_map(ErrorBody::UnsupportedOperation),
        arb_nwid().prop_map(ErrorBody::NeedMembershipCertificate),
        arb_nwid().prop_map(ErrorBody::NetworkAccessDenied),
        (arb_nwid(), arb_group())
            .prop_map(|(network_id, group)| ErrorBody::UnwantedMulticast { network_id, group }),
        (arb_nwid(), proptest::option::of(bytes(40))).prop_map(|(network_id, info)| {
            ErrorBody::NetworkAuthenticationRequired { network_id, info }
        }),
        (
            any::<u8>().prop_filter("unknown code", move |c| !known.contains(c)),
            bytes(20)
        )
            .prop_map(|(code, payload)| ErrorBody::Unknown { code, payload }),
    ]
}

fn arb_path_record() -> impl Strategy<Value = PathRecord<'static>> {
    let address = prop_oneof![
        arb_socket().prop_map(PathAddress::Ip),
        (
            any::<u8>().prop_filter("not 4 or 6", |t| *t != 4 && *t != 6),
            bytes(20)
        )
            .prop_map(|(addr_type, bytes)| PathAddress::Other { addr_type, bytes }),
    ];
    (any::<u8>(), bytes(8), address).prop_map(|(flags, extension, address)| PathRecord {
        flags,
        extension,
        address,
    })
}

fn arb_signature() -> impl Strategy<Value = [u8; 96]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b, c)| {
        let mut s = [0u8; 96];
        s[..32].copy_from_slice(&a);
        s[32..64].copy_from_slice(&b);
        s[64..].copy_from_slice(&c);
        s
    })
}

fn arb_chunk() -> impl Strategy<Value = ConfigChunk<'static>> {
    let signed = (
        any::<u8>(),
        any::<u64>(),
        0u32..10_000,
        0u32..10_000,
        arb_signature(),
    );
    (arb_nwid(), bytes(200), proptest::option::of(signed)).prop_map(|(network_id, data, signed)| {
        ConfigChunk {
            network_id,
            data,
            signed: signed.map(
                |(flags, update_id, offset, slack, signature)| ChunkSignature {
                    flags,
                    update_id,
                    total_len: offset + data.len() as u32 + slack,
                    offset,
                    signature,
                },
            ),
        }
    })
}

fn arb_addresses() -> impl Strategy<Value = AddressList<'static>> {
    vec(arb_address(), 0..20).prop_map(|a| {
        let mut out = Vec::new();
        AddressList::encode(a, &mut out);
        AddressList::new(leak(out)).unwrap()
    })
}

fn arb_gather_results() -> impl Strategy<Value = GatherResults<'static>> {
    (any::<u32>(), arb_addresses()).prop_map(|(total_known, members)| GatherResults {
        total_known,
        members,
    })
}

fn arb_ok_body() -> impl Strategy<Value = OkBody<'static>> {
    let handled = [
        Verb::Hello,
        Verb::Whois,
        Verb::Echo,
        Verb::NetworkConfigRequest,
        Verb::NetworkConfig,
        Verb::MulticastGather,
        Verb::MulticastFrame,
        Verb::ExtFrame,
    ];
    prop_oneof![
        (
            any::<u64>(),
            any::<u8>(),
            arb_version(),
            arb_inet(),
            bytes(100)
        )
            .prop_map(
                |(timestamp_echo, protocol_version, software_version, sent_from, world_updates)| {
                    OkBody::Hello(OkHello {
                        timestamp_echo,
                        protocol_version,
                        software_version,
                        sent_from,
                        world_updates,
                    })
                }
            ),
        vec(arb_identity(), 0..4).prop_map(|identities| OkBody::Whois(WhoisReply {
            identities,
            skipped: 0
        })),
        bytes(100).prop_map(|payload| OkBody::Echo(Echo { payload })),
        arb_chunk().prop_map(OkBody::NetworkConfigRequest),
        (arb_nwid(), arb_group(), arb_gather_results()).prop_map(|(network_id, group, results)| {
            OkBody::MulticastGather(OkMulticastGather {
                network_id,
                group,
                results,
            })
        }),
        (
            arb_nwid(),
            arb_group(),
            any::<u8>(),
            proptest::option::of(arb_com()),
            proptest::option::of(arb_gather_results())
        )
            .prop_map(|(network_id, group, flags, com, results)| {
                OkBody::MulticastFrame(OkMulticastFrame {
                    network_id,
                    group,
                    flags: flags & !0x03,
                    com,
                    results,
                })
            }),
        arb_nwid().prop_map(OkBody::ExtFrame),
        (
            (0u8..32)
                .prop_map(Verb::from_byte)
                .prop_filter("verb with its own body", move |v| !handled.contains(v)),
            bytes(50)
        )
            .prop_map(|(in_re_verb, body)| OkBody::Other { in_re_verb, body }),
    ]
}

fn arb_unknown_verb() -> impl Strategy<Value = u8> {
    (0u8..32).prop_filter("unassigned verb number", |v| {
        matches!(Verb::from_byte(*v), Verb::Unknown(_))
    })
}

fn arb_payload() -> impl Strategy<Value = Payload<'static>> {
    prop_oneof![
        Just(Payload::Nop),
        arb_hello().prop_map(Payload::Hello),
        (0u8..32, any::<u64>(), arb_error_body()).prop_map(|(v, id, body)| {
            Payload::Error(ErrorReply {
                in_re_verb: Verb::from_byte(v),
                in_re_packet_id: id,
                body,
            })
        }),
        (any::<u64>(), arb_ok_body()).prop_map(|(in_re_packet_id, body)| {
            Payload::Ok(OkReply {
                in_re_packet_id,
                body,
            })
        }),
        arb_chunk().prop_map(|chunk| Payload::NetworkConfig(NetworkConfig { chunk })),
        vec(arb_address(), 1..40).prop_map(|addresses| {
            let mut out = Vec::new();
            Whois::emit_request(addresses, &mut out);
            Payload::Whois(Whois::parse(leak(out)).unwrap())
        }),
        (any::<u8>(), arb_address(), arb_socket()).prop_map(|(flags, with, endpoint)| {
            Payload::Rendezvous(Rendezvous {
                flags,
                with,
                endpoint,
            })
        }),
        (arb_nwid(), any::<u16>(), bytes(100)).prop_map(|(network_id, ethertype, payload)| {
            Payload::Frame(Frame {
                network_id,
                ethertype,
                payload,
            })
        }),
        (
            arb_nwid(),
            any::<u8>(),
            proptest::option::of(arb_com()),
            arb_mac(),
            arb_mac(),
            any::<u16>(),
            bytes(100)
        )
            .prop_map(|(network_id, flags, com, to, from, ethertype, payload)| {
                Payload::ExtFrame(ExtFrame {
                    network_id,
                    flags: flags & !ExtFrame::FLAG_COM,
                    com,
                    to,
                    from,
                    ethertype,
                    payload,
                })
            }),
        bytes(100).prop_map(|payload| Payload::Echo(Echo { payload })),
        vec((arb_nwid(), arb_group()), 0..30).prop_map(|tuples| {
            let mut out = Vec::new();
            for (n, g) in &tuples {
                MulticastLike::emit_tuple(*n, g, &mut out);
            }
            Payload::MulticastLike(MulticastLike::parse(leak(out)).unwrap())
        }),
        (
            vec(arb_com(), 0..3),
            vec(arb_capability(), 0..3),
            vec(arb_tag(), 0..3),
            vec(arb_revocation(), 0..3),
            vec(arb_coo(), 0..3),
        )
            .prop_map(|(coms, capabilities, tags, revocations, coos)| {
                Payload::NetworkCredentials(NetworkCredentials {
                    coms,
                    capabilities,
                    tags,
                    revocations,
                    coos,
                })
            }),
        (
            arb_nwid(),
            bytes(300),
            proptest::option::of((any::<u64>(), any::<u64>()))
        )
            .prop_map(|(network_id, metadata, have)| {
                Payload::NetworkConfigRequest(NetworkConfigRequest {
                    network_id,
                    metadata,
                    have: have.map(|(revision, timestamp)| ConfigVersion {
                        revision,
                        timestamp,
                    }),
                })
            }),
        (
            arb_nwid(),
            any::<u8>(),
            arb_group(),
            any::<u32>(),
            proptest::option::of(arb_com())
        )
            .prop_map(|(network_id, flags, group, gather_limit, com)| {
                Payload::MulticastGather(MulticastGather {
                    network_id,
                    flags: flags & !MulticastGather::FLAG_COM,
                    group,
                    gather_limit,
                    com,
                })
            }),
        (
            (arb_nwid(), any::<u8>(), proptest::option::of(arb_com())),
            (
                proptest::option::of(any::<u32>()),
                proptest::option::of(arb_mac())
            ),
            (arb_group(), any::<u16>(), bytes(100)),
        )
            .prop_map(
                |(
                    (network_id, flags, com),
                    (gather_limit, source_mac),
                    (group, ethertype, payload),
                )| {
                    Payload::MulticastFrame(MulticastFrame {
                        network_id,
                        flags: flags & !0x07,
                        com,
                        gather_limit,
                        source_mac,
                        group,
                        ethertype,
                        payload,
                    })
                }
            ),
        vec(arb_path_record(), 0..10).prop_map(|records| {
            let mut out = Vec::new();
            PushDirectPaths::emit_records(&records, &mut out);
            Payload::PushDirectPaths(PushDirectPaths::parse(leak(out)).unwrap())
        }),
        any::<u32>().prop_map(|bytes_received| Payload::Ack(Ack { bytes_received })),
        bytes(50).prop_map(|records| Payload::QosMeasurement(QosMeasurement { records })),
        (any::<u64>(), bytes(100))
            .prop_map(|(type_id, payload)| Payload::UserMessage(UserMessage { type_id, payload })),
        bytes(50).prop_map(|data| Payload::RemoteTrace(RemoteTrace { data })),
        any::<i16>().prop_map(|utility| {
            Payload::PathNegotiationRequest(PathNegotiationRequest { utility })
        }),
        (arb_unknown_verb(), bytes(50))
            .prop_map(|(verb, payload)| Payload::Unknown { verb, payload }),
    ]
}

/// Parses, and if accepted checks that emit is a fixed point after one normalization.
fn check_fixed_point(verb: Verb, data: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(p) = parse_payload(verb, data) {
        prop_assert_eq!(p.verb(), verb);
        let mut once = Vec::new();
        p.emit(&mut once);
        let again = parse_payload(verb, &once);
        prop_assert!(
            again.is_ok(),
            "re-parse of emitted {:?} failed: {:?}",
            verb,
            again
        );
        let mut twice = Vec::new();
        again.unwrap().emit(&mut twice);
        prop_assert_eq!(once, twice);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_verb_round_trips(p in arb_payload()) {
        let mut out = Vec::new();
        p.emit(&mut out);
        let back = parse_payload(p.verb(), &out);
        prop_assert_eq!(back, Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic(verb in 0u8..32, data in vec(any::<u8>(), 0..600)) {
        check_fixed_point(Verb::from_byte(verb), &data)?;
    }

    #[test]
    fn mutated_payloads_never_panic(
        p in arb_payload(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut data = Vec::new();
        p.emit(&mut data);
        if !data.is_empty() {
            for (at, x) in flips {
                let i = at.index(data.len());
                data[i] ^= x;
            }
            if truncate {
                data.truncate(cut.index(data.len()));
            }
        }
        check_fixed_point(p.verb(), &data)?;
    }

    #[test]
    fn hello_moons_round_trip(
        moons in vec((any::<u8>(), any::<u64>(), any::<u64>()), 0..=MAX_HELLO_MOONS),
    ) {
        let moons = HelloMoons {
            moons: moons
                .into_iter()
                .map(|(world_type, id, timestamp)| MoonStamp { world_type, id, timestamp })
                .collect(),
        };
        let mut out = Vec::new();
        moons.emit(&mut out);
        prop_assert_eq!(HelloMoons::parse(&out), Ok(moons));
    }

    #[test]
    fn hello_moons_never_panic(data in vec(any::<u8>(), 0..400)) {
        if let Ok(m) = HelloMoons::parse(&data) {
            prop_assert!(m.moons.len() <= MAX_HELLO_MOONS);
        }
    }

    #[test]
    fn whois_reply_never_panics(data in vec(any::<u8>(), 0..800)) {
        let reply = WhoisReply::parse(&data).unwrap();
        prop_assert_eq!(reply.identities.len() + reply.skipped, data.len().div_ceil(71));
    }
}
