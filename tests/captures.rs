//! Decodes the two real captures of reference nodes in `../shared/vectors/` end to end:
//! classify every UDP datagram, reassemble fragments (one reassembler per receiving host, as
//! each node has its own), dearmor every packet with the key agreed between the identities
//! of its source and destination, decompress LZ4 payloads, parse every verb payload and
//! decode FRAME / EXT_FRAME / MULTICAST_FRAME down to their Ethernet payloads, and assemble the
//! netconf each member received (signature-checked) into the addresses the capture records.
//!
//! Ground truth: the datagram totals stated in the vectors README, zero failed
//! authentications, and the per-verb counts observed once everything authenticates.

mod common;
#[path = "common/pcap.rs"]
mod pcap;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ztrs::crypto::{Identity, SymmetricKey, crypt_field, dearmor};
use ztrs::wire::arp::{ArpOperation, ArpRepr};
use ztrs::wire::compression::decompress_packet;
use ztrs::wire::ethernet::{EthernetHeader, ethertype};
use ztrs::wire::mac::Mac;
use ztrs::wire::netconf::NetworkConfig;
use ztrs::wire::netconf_chunk::{Accepted, AssemblerOptions, ConfigAssembler};
use ztrs::wire::packet::{Datagram, Packet, PacketHeader, classify};
use ztrs::wire::reassembly::Reassembler;
use ztrs::wire::verbs::{HelloMoons, OkBody, Payload, parse_payload};
use ztrs::wire::world::World;
use ztrs::wire::{Address, Cipher, NetworkId, Verb};

/// What one capture decodes to.
#[derive(Debug, Default)]
struct Decoded {
    datagrams: usize,
    beacons: usize,
    runts: usize,
    fragments: usize,
    /// Packet (head) datagrams by the cipher in their header.
    heads_by_cipher: BTreeMap<u8, usize>,
    /// Cipher-0 heads whose (cleartext) verb is HELLO.
    cipher0_hellos: usize,
    /// Whole packets after reassembly.
    packets: usize,
    /// Packets that were reassembled from fragments.
    reassembled: usize,
    /// Authenticated packets by cipher.
    authenticated_by_cipher: BTreeMap<u8, usize>,
    /// Failures to authenticate, with a description each.
    failures: Vec<String>,
    /// Packets whose payload was LZ4-compressed.
    compressed: usize,
    /// Authenticated packets by verb.
    verbs: BTreeMap<String, usize>,
    /// Payloads that did not parse with `wire::verbs`.
    payload_errors: Vec<String>,
    /// Ethernet payloads carried by FRAME / EXT_FRAME / MULTICAST_FRAME, by
    /// (verb, ethertype).
    ethernet: BTreeMap<(String, u16), usize>,
    /// IPv4 frames carrying ICMP echo request / reply.
    icmp_echo: (usize, usize),
    /// ARP requests / replies seen in frames.
    arp: (usize, usize),
    /// Largest packet seen (bytes, after reassembly).
    largest_packet: usize,
    /// Moon ids announced in HELLOs (after undoing `cryptField`), with how often.
    hello_moons: BTreeMap<u64, usize>,
    /// Netconf chunks (OK(NETWORK_CONFIG_REQUEST) and NETWORK_CONFIG) as
    /// (recipient, sender, timestamp ms, chunk bytes).
    config_chunks: Vec<(Address, Address, u64, Vec<u8>)>,
}

fn capture_dir(name: &str) -> PathBuf {
    let dir = common::vectors_dir().join(name);
    assert!(dir.is_dir(), "capture folder {} missing", dir.display());
    dir
}

/// The identities of the capture's nodes (with secrets) plus the public identities of the
/// planet's roots, which the nodes HELLO at start-up (unreachable in the test network, but
/// their HELLOs authenticate with the sender's secret).
fn identities(dir: &Path) -> HashMap<Address, Identity> {
    let mut ids: HashMap<Address, Identity> = ["root", "a", "b"]
        .iter()
        .map(|node| {
            let path = dir.join(node).join("identity.secret");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let id: Identity = text.trim().parse().expect("identity parses");
            assert!(id.has_secret());
            (id.address(), id)
        })
        .collect();
    let planet_file = dir.join("planet-earth-default");
    let planet = if planet_file.exists() {
        World::parse(&std::fs::read(&planet_file).expect("planet file")).expect("planet parses")
    } else {
        World::default_planet()
    };
    for root in planet.roots {
        ids.entry(root.identity.address()).or_insert(root.identity);
    }
    ids
}

fn network_id(dir: &Path) -> NetworkId {
    let text = std::fs::read_to_string(dir.join("nwid")).expect("nwid file");
    text.trim().parse().expect("nwid parses")
}

/// The key between `source` and `destination`: whichever side we hold a secret for agrees
/// with the other's public key (both ends derive the same key).
fn key_for(
    ids: &HashMap<Address, Identity>,
    cache: &mut HashMap<(Address, Address), SymmetricKey>,
    source: Address,
    destination: Address,
) -> Option<SymmetricKey> {
    if let Some(k) = cache.get(&(source, destination)) {
        return Some(k.clone());
    }
    let (src, dst) = (ids.get(&source)?, ids.get(&destination)?);
    let shared = if dst.has_secret() {
        dst.agree(&src.to_public())?
    } else {
        src.agree(&dst.to_public())?
    };
    let key = SymmetricKey::new(&shared);
    cache.insert((source, destination), key.clone());
    Some(key)
}

fn count<K: Ord>(map: &mut BTreeMap<K, usize>, key: K) {
    *map.entry(key).or_default() += 1;
}

/// Looks into one Ethernet frame (header + payload) for ICMP echoes and ARP.
fn inspect_ethernet(decoded: &mut Decoded, frame: &[u8]) {
    let (header, payload) = EthernetHeader::parse(frame).expect("ethernet header");
    match header.ethertype {
        ethertype::IPV4 => {
            // IPv4 protocol 1 (ICMP), type 8 request / 0 reply.
            let ihl = usize::from(payload.first().copied().unwrap_or(0) & 0x0f) * 4;
            if payload.get(9) == Some(&1) {
                match payload.get(ihl) {
                    Some(8) => decoded.icmp_echo.0 += 1,
                    Some(0) => decoded.icmp_echo.1 += 1,
                    _ => {}
                }
            }
        }
        ethertype::ARP => match ArpRepr::parse(payload).map(|a| a.operation) {
            Ok(ArpOperation::Request) => decoded.arp.0 += 1,
            Ok(ArpOperation::Reply) => decoded.arp.1 += 1,
            other => panic!("unexpected ARP {other:?}"),
        },
        _ => {}
    }
}

/// Authenticates, decompresses and parses one whole packet.
fn decode_packet(
    decoded: &mut Decoded,
    ids: &HashMap<Address, Identity>,
    keys: &mut HashMap<(Address, Address), SymmetricKey>,
    network: NetworkId,
    now: u64,
    packet: &[u8],
) {
    decoded.packets += 1;
    decoded.largest_packet = decoded.largest_packet.max(packet.len());
    let header = PacketHeader::parse(packet).expect("whole packets have a header");
    let Some(key) = key_for(ids, keys, header.source, header.destination) else {
        decoded.failures.push(format!(
            "no key for {} -> {}",
            header.source, header.destination
        ));
        return;
    };
    let mut buf = packet.to_vec();
    let cipher = match dearmor(&mut buf, &key) {
        Ok(cipher) => cipher,
        Err(e) => {
            assert_eq!(buf, packet, "a failed dearmor leaves the packet as it was");
            decoded.failures.push(format!(
                "{} -> {} cipher {:?}: {e:?}",
                header.source, header.destination, header.cipher
            ));
            return;
        }
    };
    count(&mut decoded.authenticated_by_cipher, cipher.number());

    let view = Packet::new_checked(&buf[..]).expect("dearmored packet");
    let plain = if view.compressed() {
        decoded.compressed += 1;
        let mut out = Vec::new();
        decompress_packet(&buf, &mut out).expect("LZ4 payload decompresses");
        out
    } else {
        buf
    };
    let view = Packet::new_checked(&plain[..]).expect("decompressed packet");
    let verb = view.verb();
    count(&mut decoded.verbs, format!("{verb:?}"));

    let payload = match parse_payload(verb, view.payload()) {
        Ok(p) => p,
        Err(e) => {
            decoded.payload_errors.push(format!("{verb:?}: {e}"));
            return;
        }
    };
    let source_mac = Mac::from_address(header.source, network);
    let destination_mac = Mac::from_address(header.destination, network);
    let mut frame = Vec::new();
    match payload {
        Payload::Frame(f) => {
            assert_eq!(f.network_id, network);
            EthernetHeader {
                dst: destination_mac,
                src: source_mac,
                ethertype: f.ethertype,
            }
            .emit_frame(f.payload, &mut frame);
            count(&mut decoded.ethernet, ("Frame".into(), f.ethertype));
        }
        Payload::ExtFrame(f) => {
            assert_eq!(f.network_id, network);
            EthernetHeader {
                dst: f.to,
                src: f.from,
                ethertype: f.ethertype,
            }
            .emit_frame(f.payload, &mut frame);
            count(&mut decoded.ethernet, ("ExtFrame".into(), f.ethertype));
        }
        Payload::Hello(h) => {
            // The identity inside is the sender's, and the moon list decrypts and parses.
            assert_eq!(h.identity.address(), header.source);
            assert_eq!(h.identity, ids[&header.source].to_public());
            let mut tail = h.moon_tail.to_vec();
            crypt_field(&key, view.packet_id(), &mut tail);
            let moons = HelloMoons::parse(&tail).expect("HELLO moon list");
            for moon in moons.moons {
                count(&mut decoded.hello_moons, moon.id);
            }
        }
        Payload::MulticastFrame(f) => {
            assert_eq!(f.network_id, network);
            assert!(f.group.mac.is_multicast());
            EthernetHeader {
                dst: f.group.mac,
                src: f.source_mac.unwrap_or(source_mac),
                ethertype: f.ethertype,
            }
            .emit_frame(f.payload, &mut frame);
            count(
                &mut decoded.ethernet,
                ("MulticastFrame".into(), f.ethertype),
            );
        }
        Payload::Ok(ok) => {
            if let OkBody::NetworkConfigRequest(chunk) = ok.body {
                let mut bytes = Vec::new();
                chunk.emit(&mut bytes);
                let entry = (header.destination, header.source, now, bytes);
                decoded.config_chunks.push(entry);
            }
        }
        Payload::NetworkConfig(push) => {
            let mut bytes = Vec::new();
            push.chunk.emit(&mut bytes);
            let entry = (header.destination, header.source, now, bytes);
            decoded.config_chunks.push(entry);
        }
        _ => {}
    }
    if !frame.is_empty() {
        inspect_ethernet(decoded, &frame);
    }
}

fn decode_capture(name: &str, pcap_file: &str) -> Decoded {
    let dir = capture_dir(name);
    let ids = identities(&dir);
    let network = network_id(&dir);
    let capture = pcap::read(&dir.join(pcap_file));
    assert_eq!(capture.link_type, pcap::LINKTYPE_ETHERNET);
    let datagrams = pcap::udp_datagrams(&capture).expect("capture decodes");

    let mut decoded = Decoded::default();
    let mut keys = HashMap::new();
    // Each receiving host reassembles on its own, exactly as the nodes did; this also keeps
    // the two legs of a relayed packet (same packet id) apart.
    let mut reassemblers: HashMap<IpAddr, Reassembler> = HashMap::new();
    for d in &datagrams {
        decoded.datagrams += 1;
        let now = d.micros / 1000;
        let r = reassemblers.entry(d.dst.ip()).or_default();
        let assembled = match classify(&d.payload) {
            Datagram::Beacon => {
                decoded.beacons += 1;
                None
            }
            Datagram::Runt => {
                decoded.runts += 1;
                None
            }
            Datagram::Fragment => {
                decoded.fragments += 1;
                r.accept_fragment(now, &d.payload).map(|p| p.to_vec())
            }
            Datagram::Packet => {
                let head = Packet::new_checked(&d.payload[..]).expect("classified as packet");
                count(&mut decoded.heads_by_cipher, head.cipher().number());
                if head.cipher() == Cipher::Poly1305None && head.verb() == Verb::Hello {
                    decoded.cipher0_hellos += 1;
                }
                r.accept_head(now, &d.payload).map(|p| p.to_vec())
            }
        };
        if let Some(packet) = assembled {
            if Packet::new_checked(&packet[..]).is_ok_and(|p| p.fragmented()) {
                decoded.reassembled += 1;
            }
            decode_packet(&mut decoded, &ids, &mut keys, network, now, &packet);
        }
    }
    for r in reassemblers.values() {
        let c = r.counters();
        assert_eq!(
            (c.malformed, c.duplicate, c.inconsistent, c.too_large),
            (0, 0, 0, 0),
            "reassembly drops: {c:?}"
        );
        assert_eq!(r.in_flight(), 0, "every fragmented packet completed");
    }
    decoded
}

/// Assembles the netconf chunks each member received with the member-side assembler
/// (signatures checked against the controller's identity, unsigned chunks refused) and checks
/// each complete config: our network, issued to the recipient, and the managed IPv4 address
/// the capture folder records for that member (`ipa` / `ipb`).
fn check_received_netconfs(name: &str, decoded: &Decoded) {
    let dir = capture_dir(name);
    let ids = identities(&dir);
    let network = network_id(&dir);
    let controller = ids
        .get(&network.controller())
        .expect("the controller is the capture's root")
        .to_public();
    let expected_ip = |member: &str| -> IpAddr {
        let text = std::fs::read_to_string(dir.join(format!("ip{member}"))).expect("ip file");
        text.trim().parse().expect("ip file holds an address")
    };
    let member_address = |member: &str| -> Address {
        let text = std::fs::read_to_string(dir.join(member).join("identity.public")).unwrap();
        text.trim().parse::<Identity>().unwrap().address()
    };
    let mut assemblers: HashMap<Address, ConfigAssembler> = HashMap::new();
    let mut complete: HashMap<Address, Vec<NetworkConfig>> = HashMap::new();
    for (recipient, sender, now, bytes) in &decoded.config_chunks {
        let assembler = assemblers
            .entry(*recipient)
            .or_insert_with(|| ConfigAssembler::new(network, AssemblerOptions::default()));
        match assembler.accept_payload(bytes, *sender, &controller, *now) {
            Ok(Accepted::Complete { dictionary, .. }) => {
                let config = NetworkConfig::from_dictionary(&dictionary).expect("netconf parses");
                complete.entry(*recipient).or_default().push(config);
            }
            Ok(Accepted::Partial { .. }) => {}
            Err(rejection) => panic!("{name}: chunk for {recipient} refused: {rejection:?}"),
        }
    }
    for member in ["a", "b"] {
        let address = member_address(member);
        let configs = complete
            .get(&address)
            .unwrap_or_else(|| panic!("{name}: no complete netconf for member {member}"));
        for config in configs {
            assert_eq!(config.network_id, network);
            assert_eq!(config.issued_to, address);
            let ips: Vec<IpAddr> = config.assigned_addresses().map(|(ip, _)| ip).collect();
            assert_eq!(
                ips,
                vec![expected_ip(member)],
                "{name}: addresses of {member}"
            );
            let com = config
                .com
                .as_ref()
                .expect("a member's netconf carries its COM");
            assert!(
                com.verify(&controller),
                "{name}: COM signed by the controller"
            );
        }
    }
}

fn verbs(list: &[(&str, usize)]) -> BTreeMap<String, usize> {
    list.iter().map(|(v, n)| (v.to_string(), *n)).collect()
}

fn ciphers(list: &[(u8, usize)]) -> BTreeMap<u8, usize> {
    list.iter().copied().collect()
}

#[test]
fn capture_1_join_and_ping() {
    let d = decode_capture("zerotierone-1.14.1-capture", "join-and-ping.pcap");
    // Totals stated in the vectors README.
    assert_eq!(d.datagrams, 169);
    assert_eq!(d.heads_by_cipher, ciphers(&[(0, 13), (1, 73), (3, 82)]));
    assert_eq!(d.cipher0_hellos, 13);
    assert_eq!((d.fragments, d.runts, d.beacons), (0, 1, 0));
    // Everything authenticates and parses.
    assert_eq!(d.failures, Vec::<String>::new());
    assert_eq!(d.payload_errors, Vec::<String>::new());
    assert_eq!(d.packets, 168);
    assert_eq!(d.authenticated_by_cipher, d.heads_by_cipher);
    // Observed ground truth (exact, now that every packet authenticates and parses).
    assert_eq!(
        d.verbs,
        verbs(&[
            ("Frame", 22),
            ("Hello", 13),
            ("MulticastFrame", 10),
            ("MulticastGather", 20),
            ("MulticastLike", 43),
            ("NetworkConfig", 2),
            ("NetworkConfigRequest", 2),
            ("NetworkCredentials", 4),
            ("Ok", 37),
            ("PushDirectPaths", 4),
            ("Rendezvous", 2),
            ("Whois", 9),
        ])
    );
    assert_eq!(d.compressed, 13);
    assert_eq!(d.reassembled, 0);
    assert_eq!(d.largest_packet, 734);
    // Ethernet payloads: IPv4 and ARP in FRAMEs, ARP requests as MULTICAST_FRAMEs. Frames
    // relayed by the root appear twice on the switch (both legs).
    assert_eq!(
        d.ethernet,
        BTreeMap::from([
            (("Frame".to_string(), ethertype::IPV4), 10),
            (("Frame".to_string(), ethertype::ARP), 12),
            (("MulticastFrame".to_string(), ethertype::ARP), 10),
        ])
    );
    assert_eq!(d.icmp_echo, (5, 5));
    assert_eq!(d.arp, (11, 11));
    // Every HELLO announces the moon of this set-up (`00000028210c94e2.moon`).
    assert_eq!(d.hello_moons, BTreeMap::from([(0x0000_0028_210c_94e2, 13)]));
    // Each member's netconf arrived as OK(NETWORK_CONFIG_REQUEST) and was pushed once more.
    assert_eq!(d.config_chunks.len(), 4);
    check_received_netconfs("zerotierone-1.14.1-capture", &d);
}

#[test]
fn capture_2_fragmented_ping_and_tcp() {
    let d = decode_capture("zerotierone-1.14.1-capture-2", "join-bigping-tcp.pcap");
    assert_eq!(d.datagrams, 315);
    assert_eq!(d.heads_by_cipher, ciphers(&[(0, 10), (1, 45), (3, 209)]));
    assert_eq!(d.cipher0_hellos, 10);
    assert_eq!((d.fragments, d.runts, d.beacons), (49, 2, 0));
    assert_eq!(d.failures, Vec::<String>::new());
    assert_eq!(d.payload_errors, Vec::<String>::new());
    assert_eq!(d.packets, 264);
    assert_eq!(d.authenticated_by_cipher, d.heads_by_cipher);
    assert_eq!(
        d.verbs,
        verbs(&[
            ("Echo", 1),
            ("Frame", 141),
            ("Hello", 10),
            ("MulticastFrame", 8),
            ("MulticastGather", 12),
            ("MulticastLike", 44),
            ("NetworkConfig", 2),
            ("NetworkConfigRequest", 2),
            ("NetworkCredentials", 4),
            ("Ok", 29),
            ("PushDirectPaths", 4),
            ("Rendezvous", 2),
            ("Whois", 5),
        ])
    );
    assert_eq!(d.compressed, 13);
    // Every fragment completed a packet (49 heads + 49 fragments); the largest is a FRAME
    // carrying a full 2800-byte Ethernet frame (28 + 8 + 2 + 2800).
    assert_eq!(d.reassembled, 49);
    assert_eq!(d.largest_packet, 2838);
    assert_eq!(
        d.ethernet,
        BTreeMap::from([
            (("Frame".to_string(), ethertype::IPV4), 133),
            (("Frame".to_string(), ethertype::ARP), 8),
            (("MulticastFrame".to_string(), ethertype::ARP), 8),
        ])
    );
    assert_eq!(d.icmp_echo, (6, 6));
    assert_eq!(d.arp, (8, 8));
    assert_eq!(d.hello_moons, BTreeMap::from([(0x0000_0080_ecb0_711e, 10)]));
    assert_eq!(d.config_chunks.len(), 4);
    check_received_netconfs("zerotierone-1.14.1-capture-2", &d);
}

/// The pcap reader itself on synthetic files: big-endian nanosecond pcap with Linux cooked
/// v1 + IPv6, and raw IP + IPv4.
#[test]
fn pcap_reader_handles_other_layouts() {
    fn file(big_endian: bool, nanos: bool, link_type: u32, frames: &[&[u8]]) -> Vec<u8> {
        let w = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut out = w(magic).to_vec();
        out.extend_from_slice(&if big_endian {
            [0, 2, 0, 4]
        } else {
            [2, 0, 4, 0]
        });
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&w(65535));
        out.extend_from_slice(&w(link_type));
        for f in frames {
            out.extend_from_slice(&w(10));
            out.extend_from_slice(&w(if nanos { 5000 } else { 5 }));
            out.extend_from_slice(&w(f.len() as u32));
            out.extend_from_slice(&w(f.len() as u32));
            out.extend_from_slice(f);
        }
        out
    }
    let udp = [0x27, 0x09, 0x4e, 0x20, 0, 11, 0, 0, b'z', b't', b'!'];

    let mut ipv6 = vec![0x60, 0, 0, 0, 0, 11, 17, 64];
    ipv6.extend_from_slice(&"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    ipv6.extend_from_slice(&"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
    ipv6.extend_from_slice(&udp);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 0, 1, 0x86, 0xdd];
    sll.extend_from_slice(&ipv6);
    let c = pcap::parse(&file(true, true, pcap::LINKTYPE_LINUX_SLL, &[&sll])).unwrap();
    let d = pcap::udp_datagrams(&c).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].src.to_string(), "[fd00::1]:9993");
    assert_eq!(d[0].dst.to_string(), "[fd00::2]:20000");
    assert_eq!(d[0].payload, b"zt!");
    assert_eq!(d[0].micros, 10_000_005);

    let mut ipv4 = vec![
        0x45, 0, 0, 31, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ipv4.extend_from_slice(&udp);
    let c = pcap::parse(&file(false, false, pcap::LINKTYPE_RAW, &[&ipv4, &[0x45]])).unwrap();
    assert!(
        pcap::udp_datagrams(&c).is_err(),
        "truncated IPv4 is an error"
    );
    let c = pcap::parse(&file(false, false, pcap::LINKTYPE_RAW, &[&ipv4])).unwrap();
    let d = pcap::udp_datagrams(&c).unwrap();
    assert_eq!(d[0].src.to_string(), "10.0.0.1:9993");
    assert_eq!(d[0].payload, b"zt!");

    let mut bytes = file(false, false, pcap::LINKTYPE_RAW, &[&ipv4]);
    bytes.truncate(bytes.len() - 1);
    assert!(pcap::parse(&bytes).is_err());
    assert!(pcap::parse(b"\x0a\x0d\x0d\x0a").is_err());
}
