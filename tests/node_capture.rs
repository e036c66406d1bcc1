//! Interop evidence: the reference captures (`../shared/vectors/zerotierone-1.14.1-capture*/`,
//! three ZeroTierOne 1.14.1 nodes on 10.200.0.0/24) replayed into the engine as each node in
//! turn. Fed `x`'s view of the capture with `x`'s identity, the node must authenticate every
//! packet addressed to it (no bad MAC, no malformed payload, fragments reassembled), learn the
//! other nodes from their HELLOs (proof of work checked once each) and record their protocol
//! version. OKs answer HELLOs the real node sent, not ours, so they are refused and counted
//! (H2.8): paths cannot be learned from a replay.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ztrs::crypto::Identity;
use ztrs::node::{Node, NodeConfig};
use ztrs::wire::world::World;

/// One UDP datagram of a capture: time (ms), source, destination, payload.
struct Captured {
    at: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

fn capture_dir(capture: &str) -> PathBuf {
    common::vectors_dir().join(capture)
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()))
}

/// Reads a classic little-endian pcap of Ethernet/IPv4/UDP frames (what the captures are).
fn udp_datagrams(pcap: &[u8]) -> Vec<Captured> {
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!(
        u32_at(pcap, 0),
        0xa1b2_c3d4,
        "microsecond little-endian pcap"
    );
    assert_eq!(u32_at(pcap, 20), 1, "Ethernet link type");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let secs = u64::from(u32_at(pcap, off));
        let micros = u64::from(u32_at(pcap, off + 4));
        let len = u32_at(pcap, off + 8) as usize;
        let frame = &pcap[off + 16..off + 16 + len];
        off += 16 + len;
        if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != 17 {
            continue;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let udp = &ip[ihl..total];
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        out.push(Captured {
            at: secs * 1_000 + micros / 1_000,
            from: SocketAddr::new(IpAddr::V4(src), sport),
            to: SocketAddr::new(IpAddr::V4(dst), dport),
            data: udp[8..].to_vec(),
        });
    }
    out
}

fn identity(capture: &str, node: &str) -> Identity {
    let text = read(capture_dir(capture).join(node).join("identity.secret"));
    String::from_utf8(text)
        .expect("utf-8 identity")
        .trim()
        .parse()
        .expect("capture identity parses")
}

fn moon(capture: &str) -> World {
    let dir = capture_dir(capture);
    let file = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "moon"))
        .expect("the capture's moon file");
    World::parse(&read(file)).expect("moon parses")
}

/// Replays every datagram addressed to `node` into a fresh engine with its identity.
fn replay(capture: &str, pcap: &str, node: &str, ip: [u8; 4]) -> (Node, usize) {
    let datagrams = udp_datagrams(&read(capture_dir(capture).join(pcap)));
    let here = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 9993);
    let mut config = NodeConfig::new(identity(capture, node), World::default_planet());
    config.moons = vec![moon(capture)];
    config.local_addresses = vec![here];
    config.rng_seed = Some(1);
    let start = datagrams.first().map_or(0, |d| d.at);
    let mut engine = Node::new(config, start);
    let mut fed = 0;
    let mut buf = Vec::new();
    for d in datagrams.iter().filter(|d| d.to == here) {
        while engine.poll_timeout().is_some_and(|t| t <= d.at) {
            let t = engine.poll_timeout().unwrap_or(d.at);
            engine.handle_timeout(t);
        }
        engine.handle_datagram(d.at, d.to, d.from, &d.data);
        fed += 1;
        // What the engine would answer goes nowhere: the capture already holds the answers.
        while engine.poll_transmit(&mut buf).is_some() {}
        while engine.poll_event().is_some() {}
    }
    (engine, fed)
}

fn assert_everything_authenticated(engine: &Node, fed: usize) {
    let c = engine.counters();
    for (name, value) in c.iter() {
        eprintln!("{name} = {value}");
    }
    assert!(fed > 10, "the capture has traffic for this node");
    assert_eq!(c.bad_mac, 0);
    assert_eq!(c.malformed_header, 0);
    assert_eq!(c.malformed_payload, 0);
    assert_eq!(c.unsupported_cipher, 0);
    assert_eq!(c.decompress_failed, 0);
    assert_eq!(c.invalid_identity, 0);
    assert_eq!(c.reassembly.malformed, 0);
    assert_eq!(c.reassembly.inconsistent, 0);
    assert!(c.packets_authenticated > 0);
}

#[test]
fn capture_1_as_member_a() {
    let capture = "zerotierone-1.14.1-capture";
    let (engine, fed) = replay(capture, "join-and-ping.pcap", "a", [10, 200, 0, 2]);
    assert_everything_authenticated(&engine, fed);
    let b = identity(capture, "b").address();
    let root = identity(capture, "root").address();
    let peer_b = engine.peer(b).expect("a learned b from its HELLO");
    assert_eq!(peer_b.protocol_version, 12);
    assert!(engine.peer(root).is_some());
    // The replayed node has not joined the capture's network, so a's ARP/ICMP frames are
    // refused as frames for an unknown network (counted, not silently dropped).
    assert!(engine.frame_counters().unknown_network > 0);
}

#[test]
fn capture_1_as_member_b() {
    let capture = "zerotierone-1.14.1-capture";
    let (engine, fed) = replay(capture, "join-and-ping.pcap", "b", [10, 200, 0, 3]);
    assert_everything_authenticated(&engine, fed);
    let a = identity(capture, "a").address();
    assert_eq!(engine.peer(a).map(|p| p.protocol_version), Some(12));
}

#[test]
fn capture_1_as_the_moon_root() {
    let capture = "zerotierone-1.14.1-capture";
    let (engine, fed) = replay(capture, "join-and-ping.pcap", "root", [10, 200, 0, 1]);
    assert!(engine.is_root());
    assert_everything_authenticated(&engine, fed);
    for member in ["a", "b"] {
        let address = identity(capture, member).address();
        assert_eq!(engine.peer(address).map(|p| p.protocol_version), Some(12));
    }
    // Each member's identity was checked once; its later HELLOs used the cached key.
    assert_eq!(engine.counters().pow_checks, 2);
}

#[test]
fn capture_2_fragments_reassemble() {
    let capture = "zerotierone-1.14.1-capture-2";
    for (node, ip) in [("a", [10, 200, 0, 2]), ("b", [10, 200, 0, 3])] {
        let (engine, fed) = replay(capture, "join-bigping-tcp.pcap", node, ip);
        assert_everything_authenticated(&engine, fed);
        assert!(
            engine.counters().reassembly.assembled > 0,
            "{node} reassembled"
        );
    }
}
