//! Packet-level codecs against `../shared/vectors/reference/wire_vectors.txt`: fragmentation
//! and reassembly of the reference AES-GMAC-SIV FRAME, LZ4 of the reference MULTICAST_LIKE,
//! InetAddress encodings, the ZeroTier MAC and the managed IPv6 derivations.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use ztrs::crypto::{Identity, SymmetricKey, dearmor};
use ztrs::wire::compression::{compress_packet, decompress_packet};
use ztrs::wire::fragment::{Fragment, split};
use ztrs::wire::mac::Mac;
use ztrs::wire::managed_ip;
use ztrs::wire::packet::{
    DEFAULT_PHYSICAL_MTU, Datagram, HEADER_LEN, Packet, PacketHeader, classify,
};
use ztrs::wire::reassembly::Reassembler;
use ztrs::wire::{Address, Cipher, InetAddress, NetworkId, Verb};

fn vector(v: &HashMap<String, String>, key: &str) -> Vec<u8> {
    common::unhex(v.get(key).unwrap_or_else(|| panic!("vector {key} missing")))
}

fn text<'a>(v: &'a HashMap<String, String>, key: &str) -> &'a str {
    v.get(key).unwrap_or_else(|| panic!("vector {key} missing"))
}

#[test]
fn reference_frame_splits_into_reference_fragments() {
    let v = common::wire_vectors();
    let full = vector(&v, "frame_armored_full");
    let head = vector(&v, "frag0_head_wire");
    let frag1 = vector(&v, "frag1_wire");
    assert_eq!(full.len(), 2038);
    let expected_size: usize = text(&v, "frag1_size").parse().unwrap();

    let split = split(&full, DEFAULT_PHYSICAL_MTU).expect("splits");
    assert_eq!(split.head, &head[..]);
    let pieces: Vec<Vec<u8>> = split
        .fragments
        .map(|p| {
            let mut d = Vec::new();
            p.emit(&mut d);
            d
        })
        .collect();
    assert_eq!(pieces.len(), 1);
    assert_eq!(pieces[0], frag1);
    assert_eq!(frag1.len(), expected_size);
    assert_eq!(frag1.len(), 622);
    assert_eq!(frag1[14], 0x21);

    assert_eq!(classify(&head), Datagram::Packet);
    assert_eq!(classify(&frag1), Datagram::Fragment);
    let f = Fragment::new_checked(&frag1[..]).unwrap();
    assert_eq!((f.total(), f.number(), f.hops()), (2, 1, 0));
    let h = Packet::new_checked(&head[..]).unwrap();
    assert!(h.fragmented());
    assert_eq!(h.cipher(), Cipher::AesGmacSiv);
    assert_eq!(f.packet_id(), h.packet_id());
    assert_eq!(f.destination(), h.destination());
}

#[test]
fn reference_fragments_reassemble_in_either_order() {
    let v = common::wire_vectors();
    let full = vector(&v, "frame_armored_full");
    let head = vector(&v, "frag0_head_wire");
    let frag1 = vector(&v, "frag1_wire");

    let mut r = Reassembler::default();
    assert!(r.accept_head(0, &head).is_none());
    let out = r.accept_fragment(1, &frag1).map(|p| p.to_vec());
    assert_eq!(out.as_deref(), Some(&full[..]));

    assert!(r.accept_fragment(2, &frag1).is_none());
    let out = r.accept_head(3, &head).map(|p| p.to_vec());
    assert_eq!(out.as_deref(), Some(&full[..]));
    assert_eq!(r.counters().assembled, 2);
    assert_eq!(r.in_flight(), 0);

    // The assembled packet authenticates as B receiving from A (the armor engineer's code).
    let a: Identity = text(&v, "A_secret").parse().unwrap();
    let b: Identity = text(&v, "B_secret").parse().unwrap();
    let key = SymmetricKey::new(&b.agree(&a.to_public()).unwrap());
    let mut assembled = full.clone();
    assert_eq!(dearmor(&mut assembled, &key), Ok(Cipher::AesGmacSiv));
    let header = PacketHeader::parse(&assembled).unwrap();
    assert_eq!(header.verb, Verb::Frame);
    assert!(header.fragmented);
    assert_eq!(header.source, a.address());
    assert_eq!(header.destination, b.address());
}

#[test]
fn reference_like_decompresses_and_our_compression_round_trips() {
    let v = common::wire_vectors();
    let plain = vector(&v, "like_plain");
    let compressed = vector(&v, "like_compressed_bytes");
    assert_eq!(compressed.len(), 55);
    assert_eq!(compressed[27], 0x89, "compressed MULTICAST_LIKE verb byte");
    let view = Packet::new_checked(&compressed[..]).unwrap();
    assert!(view.compressed());
    assert_eq!(view.verb(), Verb::MulticastLike);

    let mut out = Vec::new();
    decompress_packet(&compressed, &mut out).expect("decompresses");
    assert_eq!(out, plain);
    assert!(!Packet::new_checked(&out[..]).unwrap().compressed());

    let mut ours = plain.clone();
    let mut scratch = Vec::new();
    assert!(compress_packet(&mut ours, &mut scratch));
    assert!(ours.len() < plain.len());
    assert_eq!(ours[..HEADER_LEN - 1], plain[..HEADER_LEN - 1]);
    assert_eq!(ours[HEADER_LEN - 1], 0x89);
    let mut back = Vec::new();
    decompress_packet(&ours, &mut back).unwrap();
    assert_eq!(back, plain);
}

#[test]
fn reference_inet_addresses() {
    let v = common::wire_vectors();
    for (key, ip, port) in [
        ("inetaddr_10.1.2.3/9993", "10.1.2.3", 9993),
        ("inetaddr_2001:db8::1/443", "2001:db8::1", 443),
    ] {
        let bytes = vector(&v, key);
        let expected = InetAddress::Ip(ip.parse::<IpAddr>().unwrap(), port);
        assert_eq!(InetAddress::parse(&bytes), Ok((expected, bytes.len())));
        let mut out = Vec::new();
        expected.emit(&mut out);
        assert_eq!(out, bytes, "{key}");
        assert_eq!(expected.emitted_len(), bytes.len());
    }
}

#[test]
fn reference_mac_and_managed_addresses() {
    let v = common::wire_vectors();
    let a: Address = "7c2dfee12c".parse().unwrap();
    let n: NetworkId = "8056c2e21c000001".parse().unwrap();

    let mac: Mac = text(&v, "mac_for_A_on_8056c2e21c000001").parse().unwrap();
    assert_eq!(Mac::from_address(a, n), mac);
    assert_eq!(mac.to_string(), text(&v, "mac_for_A_on_8056c2e21c000001"));
    let back: Address = text(&v, "mac_back_to_address").parse().unwrap();
    assert_eq!(mac.to_address(n), Some(back));

    let rfc = managed_ip::rfc4193(n, a);
    assert_eq!(
        format!("{rfc}/{}", managed_ip::RFC4193_PREFIX_LEN),
        text(&v, "rfc4193_A")
    );
    let plane = managed_ip::six_plane(n, a);
    assert_eq!(
        format!("{plane}/{}", managed_ip::SIX_PLANE_PREFIX_LEN),
        text(&v, "6plane_A")
    );
    for ip in [rfc, plane] {
        assert_eq!(managed_ip::embedded_address(ip, n), Some(a));
    }
    let (ip_text, _) = text(&v, "rfc4193_A").split_once('/').unwrap();
    assert_eq!(ip_text.parse::<Ipv6Addr>().unwrap(), rfc);
}
