//! Node-test set-up shared by the hand-driven harness (`node_handshake`) and the simulator
//! scenarios (`sim_node_scenarios`): the identities with secrets that exist as vectors (no
//! proof of work is ever generated in a test), private planets and moons signed by fixed
//! keys (reproducible runs), and test-side crafting of packets (forgeries, replies, HELLOs
//! from random identities) using only the public codecs and armor.

use std::net::SocketAddr;

use ztrs::crypto::c25519::{SIGNATURE_LEN, SecretKey};
use ztrs::crypto::{Identity, SymmetricKey, armor, crypt_field};
use ztrs::wire::cursor::Writer;
use ztrs::wire::packet::{Cipher, HEADER_LEN};
use ztrs::wire::verbs::{Hello, HelloMoons, OkBody, OkHello, OkReply, SoftwareVersion, WorldStamp};
use ztrs::wire::world::{Root, World, WorldType};
use ztrs::wire::{Address, InetAddress, Verb};

pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn parse_identity(text: &str, what: &str) -> Identity {
    let id: Identity = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{what} does not parse: {e:?}"));
    assert!(id.has_secret(), "{what} must hold a secret");
    id
}

/// `reference/id{n}.secret` (n = 1, 2, 3).
pub fn reference_identity(n: u8) -> Identity {
    let name = format!("id{n}.secret");
    parse_identity(&super::read_reference(&name), &name)
}

/// `zerotierone-1.14.1-capture{suffix}/{node}/identity.secret` (`node` = root, a or b;
/// `suffix` = "" or "-2"): six more identities with secrets.
pub fn capture_identity(suffix: &str, node: &str) -> Identity {
    let path = super::vectors_dir()
        .join(format!("zerotierone-1.14.1-capture{suffix}"))
        .join(node)
        .join("identity.secret");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()));
    parse_identity(&text, &path.display().to_string())
}

/// A deterministic signing key for test worlds.
pub fn world_key(seed: u8) -> SecretKey {
    SecretKey::from_bytes([seed; 64])
}

/// A world of `world_type` with `roots` (identity, one stable endpoint each), signed by
/// `key`.
pub fn world(
    world_type: WorldType,
    id: u64,
    timestamp: u64,
    roots: &[(&Identity, SocketAddr)],
    key: &SecretKey,
) -> World {
    let mut w = World {
        world_type,
        id,
        timestamp,
        updates_must_be_signed_by: key.public_key(),
        signature: [0; SIGNATURE_LEN],
        roots: roots
            .iter()
            .map(|(identity, at)| Root {
                identity: identity.to_public(),
                stable_endpoints: vec![InetAddress::from_socket_addr(*at)],
            })
            .collect(),
    };
    w.sign(key);
    w
}

/// A private planet (id `0x5a5a_0001`, timestamp 1) with the given roots.
pub fn private_planet(roots: &[(&Identity, SocketAddr)]) -> World {
    world(WorldType::Planet, 0x5a5a_0001, 1, roots, &world_key(7))
}

/// A moon whose id is its (single) root's address, as `zerotier-idtool initmoon` makes it.
pub fn moon_of(root: &Identity, at: SocketAddr, timestamp: u64) -> World {
    world(
        WorldType::Moon,
        root.address().to_u64(),
        timestamp,
        &[(root, at)],
        &world_key(9),
    )
}

pub fn key_between(a: &Identity, b: &Identity) -> SymmetricKey {
    SymmetricKey::new(&a.agree(b).expect("secret present"))
}

/// An armored packet `from` -> `to` with `key` and packet id `id`.
pub fn craft(
    from: Address,
    to: Address,
    verb: Verb,
    payload: &[u8],
    key: &SymmetricKey,
    cipher: Cipher,
    id: u64,
) -> Vec<u8> {
    let mut p = Vec::new();
    p.put_u64(id);
    p.put_bytes(&to.to_bytes());
    p.put_bytes(&from.to_bytes());
    p.put_u8(0);
    p.put_u64(0);
    p.put_u8(verb.to_byte());
    p.put_bytes(payload);
    armor(&mut p, key, cipher).expect("armor");
    p
}

/// The payload of an OK(HELLO) answering packet `in_re`.
pub fn ok_hello_payload(in_re: u64) -> Vec<u8> {
    let mut out = Vec::new();
    OkReply {
        in_re_packet_id: in_re,
        body: OkBody::Hello(OkHello {
            timestamp_echo: 0,
            protocol_version: 12,
            software_version: SoftwareVersion {
                major: 1,
                minor: 14,
                revision: 1,
            },
            sent_from: InetAddress::Nil,
            world_updates: &[],
        }),
    }
    .emit(&mut out);
    out
}

/// Whether a datagram is a (cipher 0) HELLO packet head.
pub fn is_hello(d: &[u8]) -> bool {
    d.len() >= HEADER_LEN
        && Cipher::from_flags(d[18]) == Cipher::Poly1305None
        && d[27] & 0x1f == Verb::Hello.to_byte()
}

/// Whether a datagram is a fragment (not a packet head).
pub fn is_fragment(d: &[u8]) -> bool {
    d.len() > 16 && d[13] == 0xff
}

/// The packet id of a packet head.
pub fn packet_id(d: &[u8]) -> u64 {
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    u64::from_be_bytes(id)
}

/// splitmix64: deterministic test randomness.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A HELLO to `to` from a random identity derived from `seed` (a 64-byte key pair and an
/// arbitrary, non-reserved address: no proof of work was run, so it fails the check). It is
/// armored with cipher 0 and the key agreed with `to`, so it passes the MAC and reaches the
/// proof-of-work check unless rate limited first.
pub fn random_identity_hello(to: &Identity, seed: u64) -> Vec<u8> {
    let mut secret = [0u8; 64];
    for (i, chunk) in secret.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(seed.wrapping_mul(16).wrapping_add(i as u64)).to_be_bytes());
    }
    let secret = SecretKey::from_bytes(secret);
    let public = secret.public_key();
    // First byte 0x01..=0x7f: never reserved, never the fragment indicator 0xff.
    let address = Address::from_u64((mix(!seed) & 0x007f_ffff_ffff) | 0x01_0000_0000);
    let forged = Identity::from_parts(address, public, Some(secret));
    let key = key_between(&forged, to);
    let mut tail = Vec::new();
    HelloMoons::default().emit(&mut tail);
    let hello = Hello {
        protocol_version: 12,
        software_version: SoftwareVersion {
            major: 1,
            minor: 14,
            revision: 1,
        },
        timestamp: seed,
        identity: forged.to_public(),
        sent_to: Some(InetAddress::Nil),
        planet: Some(WorldStamp {
            id: 1,
            timestamp: 1,
        }),
        moon_tail: &tail,
    };
    let mut payload = Vec::new();
    hello.emit(&mut payload);
    let id = mix(seed ^ 0x4845_4c4c_4f00);
    let mut p = Vec::new();
    p.put_u64(id);
    p.put_bytes(&to.address().to_bytes());
    p.put_bytes(&address.to_bytes());
    p.put_u8(0);
    p.put_u64(0);
    p.put_u8(Verb::Hello.to_byte());
    p.put_bytes(&payload);
    let tail_at = HEADER_LEN + hello.moon_tail_offset();
    crypt_field(&key, id.to_be_bytes(), &mut p[tail_at..]);
    armor(&mut p, &key, Cipher::Poly1305None).expect("armor");
    p
}
