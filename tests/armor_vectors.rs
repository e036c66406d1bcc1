//! Packet armor against `../shared/vectors/reference/wire_vectors.txt` (A = id1 sends to
//! B = id2): KBKDF, ciphers 0/1/3 byte-exact in both directions, HELLO `cryptField`, the
//! fragmented AES FRAME, and tamper resistance with the buffer left unchanged on failure (H3.6).

mod common;

use std::collections::HashMap;

use proptest::prelude::*;
use ztrs::crypto::{
    ArmorError, Identity, LABEL_AES_GMAC_SIV_K0, LABEL_AES_GMAC_SIV_K1, SharedKey, SymmetricKey,
    armor, crypt_field, dearmor, kbkdf,
};
use ztrs::wire::Cipher;
use ztrs::wire::packet::{FLAG_FRAGMENTED, FLAGS_HOPS_MASK, HEADER_LEN, IDX_FLAGS, IDX_VERB};

/// The three ECHO vectors: name suffix and cipher.
const ECHO_MODES: [(&str, Cipher); 3] = [
    ("poly1305_none", Cipher::Poly1305None),
    ("salsa2012_poly1305", Cipher::Salsa2012Poly1305),
    ("aes_gmac_siv", Cipher::AesGmacSiv),
];

struct Vectors {
    map: HashMap<String, String>,
}

impl Vectors {
    fn load() -> Self {
        Vectors {
            map: common::wire_vectors(),
        }
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        let text = self
            .map
            .get(name)
            .unwrap_or_else(|| panic!("vector {name} missing from wire_vectors.txt"));
        common::unhex(text)
    }

    fn identity(&self, name: &str) -> Identity {
        let text = self
            .map
            .get(name)
            .unwrap_or_else(|| panic!("vector {name} missing from wire_vectors.txt"));
        text.parse().expect("vector identity parses")
    }

    /// (A's key towards B, B's key towards A).
    fn keys(&self) -> (SymmetricKey, SymmetricKey) {
        let a = self.identity("A_secret");
        let b = self.identity("B_secret");
        let ab = a.agree(&b).expect("A has a secret");
        let ba = b.agree(&a).expect("B has a secret");
        (SymmetricKey::new(&ab), SymmetricKey::new(&ba))
    }
}

#[test]
fn shared_key_and_kbkdf_match_reference() {
    let v = Vectors::load();
    let (ab, ba) = v.keys();
    assert_eq!(
        ab.shared().as_bytes().as_slice(),
        v.bytes("shared_key_48_A_to_B")
    );
    assert_eq!(
        ba.shared().as_bytes().as_slice(),
        v.bytes("shared_key_48_B_to_A")
    );
    assert_eq!(
        kbkdf(ab.shared(), LABEL_AES_GMAC_SIV_K0).as_slice(),
        v.bytes("kbkdf_K0_48")
    );
    assert_eq!(
        kbkdf(ab.shared(), LABEL_AES_GMAC_SIV_K1).as_slice(),
        v.bytes("kbkdf_K1_48")
    );
}

#[test]
fn echo_armor_matches_reference() {
    let v = Vectors::load();
    let (ab, _) = v.keys();
    for (mode, cipher) in ECHO_MODES {
        let mut packet = v.bytes(&format!("plain_{mode}"));
        armor(&mut packet, &ab, cipher).expect("armor");
        assert_eq!(
            ztrs::hex::encode(&packet),
            ztrs::hex::encode(&v.bytes(&format!("armored_{mode}"))),
            "armored_{mode}"
        );
    }
}

#[test]
fn echo_dearmor_matches_reference_with_either_key() {
    let v = Vectors::load();
    let (ab, ba) = v.keys();
    for (mode, cipher) in ECHO_MODES {
        let expected = v.bytes(&format!("dearmored_{mode}"));
        for key in [&ba, &ab] {
            let mut packet = v.bytes(&format!("armored_{mode}"));
            assert_eq!(dearmor(&mut packet, key), Ok(cipher), "{mode}");
            assert_eq!(packet, expected, "dearmored_{mode}");
        }
    }
}

#[test]
fn dearmor_ignores_hop_bits() {
    let v = Vectors::load();
    let (_, ba) = v.keys();
    for (mode, cipher) in ECHO_MODES {
        let mut packet = v.bytes(&format!("armored_{mode}"));
        packet[IDX_FLAGS] |= 3;
        assert_eq!(dearmor(&mut packet, &ba), Ok(cipher), "{mode} with hops 3");
        let mut expected = v.bytes(&format!("dearmored_{mode}"));
        expected[IDX_FLAGS] |= 3;
        assert_eq!(packet, expected, "hop bits are left as received");
    }
}

#[test]
fn aes_gmac_siv_rewrites_the_packet_id() {
    let v = Vectors::load();
    let (ab, _) = v.keys();
    let mut packet = v.bytes("plain_aes_gmac_siv");
    assert_eq!(ztrs::hex::encode(&packet[..8]), "0123456789abcdef");
    armor(&mut packet, &ab, Cipher::AesGmacSiv).expect("armor");
    assert_eq!(ztrs::hex::encode(&packet[..8]), "a3c817083a926098");
    assert_eq!(packet[IDX_FLAGS], 0x18);
}

#[test]
fn hello_crypt_field_then_cipher0() {
    let v = Vectors::load();
    let (ab, ba) = v.keys();
    let plain = v.bytes("hello_plain_before_cryptField");
    let wire = v.bytes("hello_armored");
    assert_eq!(plain.len(), 137);

    let mut packet = plain.clone();
    let id: [u8; 8] = packet[..8].try_into().unwrap();
    let tail = packet.len() - 2;
    crypt_field(&ab, id, &mut packet[tail..]);
    armor(&mut packet, &ab, Cipher::Poly1305None).expect("armor");
    assert_eq!(ztrs::hex::encode(&packet), ztrs::hex::encode(&wire));

    // Receiver: MAC first, then undo cryptField; the moon count is 0 again.
    let mut received = wire.clone();
    assert_eq!(dearmor(&mut received, &ba), Ok(Cipher::Poly1305None));
    let id: [u8; 8] = received[..8].try_into().unwrap();
    crypt_field(&ba, id, &mut received[tail..]);
    assert_eq!(received[IDX_VERB..], plain[IDX_VERB..]);
    assert_eq!(&received[tail..], &[0, 0]);
}

#[test]
fn fragmented_frame_dearmors() {
    let v = Vectors::load();
    let (_, ba) = v.keys();
    let mut frame = v.bytes("frame_armored_full");
    assert_eq!(frame.len(), 2038);
    assert_ne!(frame[IDX_FLAGS] & FLAG_FRAGMENTED, 0);
    // The head datagram is the first MTU bytes of the armored packet.
    let head = v.bytes("frag0_head_wire");
    assert_eq!(frame[..head.len()], head[..]);
    assert_eq!(dearmor(&mut frame, &ba), Ok(Cipher::AesGmacSiv));
    assert_eq!(frame[IDX_VERB] & 0x1f, 0x06, "verb FRAME");
}

/// Flips bits of every byte (all 8 bits when `all_bits`, else one rotating bit) except the hop
/// count, and requires dearmor to fail and leave the buffer unchanged.
fn assert_tamper_fails(name: &str, armored: &[u8], key: &SymmetricKey, all_bits: bool) {
    let mut buf = armored.to_vec();
    for pos in 0..armored.len() {
        let bits: Vec<u8> = if all_bits {
            (0..8).map(|b| 1u8 << b).collect()
        } else {
            vec![1u8 << (pos % 8)]
        };
        for bit in bits {
            if pos == IDX_FLAGS && bit & FLAGS_HOPS_MASK != 0 {
                continue;
            }
            buf.copy_from_slice(armored);
            buf[pos] ^= bit;
            let before = buf.clone();
            let result = dearmor(&mut buf, key);
            assert!(
                matches!(
                    result,
                    Err(ArmorError::BadMac | ArmorError::UnsupportedCipher(_))
                ),
                "{name}: flipping bit {bit:#04x} of byte {pos} gave {result:?}"
            );
            assert_eq!(
                buf, before,
                "{name}: buffer changed after failure at byte {pos}"
            );
        }
    }
}

#[test]
fn tampering_fails_and_leaves_the_buffer_unchanged() {
    let v = Vectors::load();
    let (_, ba) = v.keys();
    for (mode, _) in ECHO_MODES {
        let name = format!("armored_{mode}");
        assert_tamper_fails(&name, &v.bytes(&name), &ba, true);
    }
    assert_tamper_fails("hello_armored", &v.bytes("hello_armored"), &ba, true);
    assert_tamper_fails(
        "frame_armored_full",
        &v.bytes("frame_armored_full"),
        &ba,
        false,
    );
}

#[test]
fn wrong_key_fails_and_leaves_the_buffer_unchanged() {
    let v = Vectors::load();
    let a = v.identity("A_secret");
    let third: Identity = common::read_reference("id3.secret")
        .parse()
        .expect("id3 parses");
    let wrong = SymmetricKey::new(&third.agree(&a).expect("secret"));
    for name in [
        "armored_poly1305_none",
        "armored_salsa2012_poly1305",
        "armored_aes_gmac_siv",
        "hello_armored",
        "frame_armored_full",
    ] {
        let armored = v.bytes(name);
        let mut buf = armored.clone();
        assert_eq!(dearmor(&mut buf, &wrong), Err(ArmorError::BadMac), "{name}");
        assert_eq!(buf, armored, "{name}");
    }
}

/// UDP payloads of an Ethernet/IPv4 pcap (little-endian classic format), in capture order.
fn pcap_udp_payloads(path: &std::path::Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path)
        .unwrap_or_else(|e| panic!("cannot read capture {}: {e}", path.display()));
    assert_eq!(data[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(
        u32::from_le_bytes(data[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut payloads = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let frame = &data[pos + 16..pos + 16 + caplen];
        pos += 16 + caplen;
        if frame.len() < 14 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[9] != 17 {
            continue;
        }
        let udp = &ip[ihl..total];
        payloads.push(udp[8..].to_vec());
    }
    payloads
}

/// The root identities of the built-in planet (`default_planet.hex`), read with the binary
/// identity and InetAddress codecs (protocol reference 6.1).
fn planet_roots() -> Vec<Identity> {
    let planet = common::unhex(&common::read_reference("default_planet.hex"));
    // type, id, timestamp, updatesMustBeSignedBy, signature
    let mut pos = 1 + 8 + 8 + 64 + 96;
    let count = planet[pos];
    pos += 1;
    (0..count)
        .map(|_| {
            let (id, used) = Identity::parse_binary(&planet[pos..]).expect("planet root");
            pos += used;
            let endpoints = planet[pos];
            pos += 1;
            for _ in 0..endpoints {
                let (_, used) = ztrs::wire::InetAddress::parse(&planet[pos..]).expect("endpoint");
                pos += used;
            }
            id
        })
        .collect()
}

/// A fragmented packet being collected: the head and the fragments by number (0 unused).
type PartialPacket = (Option<Vec<u8>>, Vec<Option<Vec<u8>>>);

/// Every datagram of the two reference captures authenticates with the right key: whole
/// packets directly, fragmented ones after concatenating head and fragments.
#[test]
fn captured_packets_all_authenticate() {
    // (capture, datagrams, short, fragments, cipher 0, cipher 1, cipher 3) from its README.
    let captures = [
        (
            "zerotierone-1.14.1-capture",
            "join-and-ping.pcap",
            169,
            1,
            0,
            13,
            73,
            82,
        ),
        (
            "zerotierone-1.14.1-capture-2",
            "join-bigping-tcp.pcap",
            315,
            2,
            49,
            10,
            45,
            209,
        ),
    ];
    for (dir, pcap, datagrams, short, fragments, c0, c1, c3) in captures {
        let dir = common::vectors_dir().join(dir);
        let identities: Vec<Identity> = ["a", "b", "root"]
            .iter()
            .map(|node| {
                let path = dir.join(node).join("identity.secret");
                std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
                    .parse()
                    .expect("capture identity parses")
            })
            .collect();
        // Nodes also talk to the built-in planet's roots: we hold one side's secret either way.
        let mut known = identities;
        known.extend(planet_roots());
        let find = |addr: &[u8]| {
            known
                .iter()
                .find(|id| id.address().to_bytes() == addr)
                .unwrap_or_else(|| panic!("unknown address {}", ztrs::hex::encode(addr)))
        };

        let payloads = pcap_udp_payloads(&dir.join(pcap));
        assert_eq!(payloads.len(), datagrams, "{pcap}: datagrams");
        let mut pending: HashMap<[u8; 8], PartialPacket> = HashMap::new();
        let mut packets = Vec::new();
        let (mut seen_short, mut seen_fragments) = (0, 0);
        // Datagram dispatch as in protocol reference 2.3.
        for datagram in payloads {
            let is_fragment = datagram.len() > 16 && datagram[13] == 0xff;
            if !is_fragment && datagram.len() < HEADER_LEN {
                seen_short += 1;
                continue;
            }
            let id: [u8; 8] = datagram[..8].try_into().unwrap();
            if is_fragment {
                seen_fragments += 1;
                let total = usize::from(datagram[14] >> 4);
                let number = usize::from(datagram[14] & 0x0f);
                let entry = pending.entry(id).or_default();
                entry.1.resize(total.max(entry.1.len()), None);
                entry.1[number] = Some(datagram[16..].to_vec());
            } else if datagram[IDX_FLAGS] & FLAG_FRAGMENTED != 0 {
                pending.entry(id).or_default().0 = Some(datagram);
            } else {
                packets.push(datagram);
            }
            // Emit any packet whose head and fragments are all present.
            if let Some((Some(_), frags)) = pending.get(&id)
                && !frags.is_empty()
                && frags.iter().skip(1).all(Option::is_some)
            {
                let (head, frags) = pending.remove(&id).unwrap();
                let mut packet = head.unwrap();
                for frag in frags.into_iter().skip(1) {
                    packet.extend_from_slice(&frag.unwrap());
                }
                packets.push(packet);
            }
        }
        assert_eq!(seen_short, short, "{pcap}: short datagrams");
        assert_eq!(seen_fragments, fragments, "{pcap}: fragments");
        assert!(pending.is_empty(), "{pcap}: incomplete fragmented packets");

        let mut counts = [0usize; 4];
        for (i, mut packet) in packets.into_iter().enumerate() {
            let receiver = find(&packet[8..13]);
            let sender = find(&packet[13..18]);
            let shared = receiver
                .agree(sender)
                .or_else(|| sender.agree(receiver))
                .expect("one side of every packet is a capture node");
            let key = SymmetricKey::new(&shared);
            let cipher = dearmor(&mut packet, &key).unwrap_or_else(|e| {
                panic!(
                    "{pcap}: packet {i} ({} bytes) does not dearmor: {e}",
                    packet.len()
                )
            });
            counts[usize::from(cipher.number())] += 1;
        }
        assert_eq!(counts, [c0, c1, 0, c3], "{pcap}: packets per cipher");
    }
}

fn test_key() -> SymmetricKey {
    let mut bytes = [0u8; 48];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    SymmetricKey::new(&SharedKey::from_bytes(bytes))
}

fn cipher_strategy() -> impl Strategy<Value = Cipher> {
    prop_oneof![
        Just(Cipher::Poly1305None),
        Just(Cipher::Salsa2012Poly1305),
        Just(Cipher::AesGmacSiv),
    ]
}

proptest! {
    #[test]
    fn armor_dearmor_round_trip(
        header in proptest::collection::vec(any::<u8>(), HEADER_LEN),
        payload in proptest::collection::vec(any::<u8>(), 0..3000),
        cipher in cipher_strategy(),
        fragmented in any::<bool>(),
    ) {
        let key = test_key();
        let mut packet = header;
        packet[IDX_FLAGS] = if fragmented { FLAG_FRAGMENTED } else { 0 };
        packet.extend_from_slice(&payload);
        let plain = packet.clone();
        armor(&mut packet, &key, cipher).unwrap();
        prop_assert_eq!(packet[IDX_FLAGS] & FLAG_FRAGMENTED != 0, fragmented);
        prop_assert_eq!(dearmor(&mut packet, &key), Ok(cipher));
        prop_assert_eq!(&packet[IDX_VERB..], &plain[IDX_VERB..]);
    }

    #[test]
    fn dearmor_random_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let key = test_key();
        let mut buf = bytes.clone();
        if dearmor(&mut buf, &key).is_err() {
            prop_assert_eq!(buf, bytes);
        }
    }
}
