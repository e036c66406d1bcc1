//! Worlds: the signed root-server lists a node trusts, either the planet (type 1, one per
//! node) or moons (type 127, user-run roots added with `orbit`). Section 6.1:
//!
//! ```text
//! u8 type | u64 id | u64 timestamp | 64 updatesMustBeSignedBy | 96 signature
//! u8 roots (<= 4) | per root: 71 public identity | u8 endpoints (<= 32) | InetAddress x n
//! moon only: u16 dictionary length + bytes (reserved; read and ignored, written empty)
//! ```
//!
//! The signature is over `u64 0x7f..7f ‖ the above without the signature ‖ u64 0xf7..f7`,
//! made with the previous revision's key. Parsing is capped (4 roots, 32 endpoints, 8480
//! bytes) and rejects other types and trailing data with an actionable error (H2.8). The
//! built-in planet ("Earth") every node ships is [`World::default_planet`].

use super::cursor::{Reader, Writer};
use super::{Error, InetAddress, Result};
use crate::crypto::Identity;
use crate::crypto::c25519::{self, PUBLIC_LEN, SIGNATURE_LEN, SecretKey};

/// Most roots per world (`ZT_WORLD_MAX_ROOTS`).
pub const MAX_ROOTS: usize = 4;
/// Most stable endpoints per root (`ZT_WORLD_MAX_STABLE_ENDPOINTS_PER_ROOT`).
pub const MAX_STABLE_ENDPOINTS: usize = 32;
/// Largest serialized world (`ZT_WORLD_MAX_SERIALIZED_LENGTH`).
pub const MAX_SERIALIZED_LEN: usize = 8480;
/// World id of the built-in planet, Earth.
pub const EARTH_ID: u64 = 149_604_618;

/// First marker of the signed message.
const SIGNED_PREFIX: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// Last marker of the signed message (differs from the prefix, unlike credentials).
const SIGNED_SUFFIX: u64 = 0xf7f7_f7f7_f7f7_f7f7;

/// The serialized built-in planet (570 bytes), as every reference node ships it.
pub const DEFAULT_PLANET_BYTES: &[u8] = include_bytes!("default_planet.bin");

/// Planet or moon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorldType {
    Planet,
    Moon,
}

impl WorldType {
    pub fn to_byte(self) -> u8 {
        match self {
            WorldType::Planet => 1,
            WorldType::Moon => 127,
        }
    }

    pub fn from_byte(b: u8) -> Option<WorldType> {
        match b {
            1 => Some(WorldType::Planet),
            127 => Some(WorldType::Moon),
            _ => None,
        }
    }
}

/// One root server: its identity and the UDP endpoints it is reachable at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub identity: Identity,
    /// At most [`MAX_STABLE_ENDPOINTS`].
    pub stable_endpoints: Vec<InetAddress>,
}

/// A planet or moon definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    pub world_type: WorldType,
    pub id: u64,
    /// Revision: a newer world has a larger timestamp (ms).
    pub timestamp: u64,
    /// Combined C25519 public key that must sign the next revision.
    pub updates_must_be_signed_by: [u8; PUBLIC_LEN],
    /// This revision's signature, by the previous revision's key.
    pub signature: [u8; SIGNATURE_LEN],
    /// At most [`MAX_ROOTS`].
    pub roots: Vec<Root>,
}

impl World {
    /// Reads one world from the cursor (for worlds embedded in OK(HELLO)); trailing data is
    /// the caller's business.
    pub fn read(r: &mut Reader<'_>) -> Result<World> {
        let start = r.position();
        let type_byte = r.u8("world type")?;
        let world_type = WorldType::from_byte(type_byte).ok_or(Error::Unsupported(
            "world type is neither 1 (planet) nor 127 (moon): not a world file, or a newer \
             format this version cannot use",
        ))?;
        let id = r.u64("world id")?;
        let timestamp = r.u64("world timestamp")?;
        let updates_must_be_signed_by = r.array("world updatesMustBeSignedBy")?;
        let signature = r.array("world signature")?;
        let root_count = usize::from(r.u8("world root count")?);
        if root_count > MAX_ROOTS {
            return Err(Error::TooLarge("world roots (more than 4)"));
        }
        let mut roots = Vec::with_capacity(root_count);
        for _ in 0..root_count {
            let identity = Identity::read_binary(r)?;
            let endpoint_count = usize::from(r.u8("world root endpoint count")?);
            if endpoint_count > MAX_STABLE_ENDPOINTS {
                return Err(Error::TooLarge(
                    "world root stable endpoints (more than 32)",
                ));
            }
            let mut stable_endpoints = Vec::with_capacity(endpoint_count);
            for _ in 0..endpoint_count {
                // Reserved kinds become "no address", as in the reference, which also signs
                // and re-serializes them that way.
                let endpoint = match InetAddress::read(r)? {
                    InetAddress::Other(_) => InetAddress::Nil,
                    other => other,
                };
                stable_endpoints.push(endpoint);
                // Reserved address types carry their own length; keep the whole world small.
                if r.position() - start > MAX_SERIALIZED_LEN {
                    return Err(Error::TooLarge("world (more than 8480 bytes)"));
                }
            }
            roots.push(Root {
                identity,
                stable_endpoints,
            });
        }
        if world_type == WorldType::Moon {
            // Reserved for future use; the reference skips it and signs it as empty.
            let dictionary_len = r.u16("moon dictionary length")?;
            r.skip(usize::from(dictionary_len), "moon dictionary")?;
        }
        if r.position() - start > MAX_SERIALIZED_LEN {
            return Err(Error::TooLarge("world (more than 8480 bytes)"));
        }
        Ok(World {
            world_type,
            id,
            timestamp,
            updates_must_be_signed_by,
            signature,
            roots,
        })
    }

    /// Parses a buffer that holds exactly one world (a `planet` or `*.moon` file).
    pub fn parse(buf: &[u8]) -> Result<World> {
        if buf.len() > MAX_SERIALIZED_LEN {
            return Err(Error::TooLarge(
                "world file (more than 8480 bytes): not a world, or a newer format",
            ));
        }
        let mut r = Reader::new(buf);
        let world = Self::read(&mut r)?;
        if !r.is_empty() {
            return Err(Error::Unsupported(
                "world has trailing data after its roots: a newer world format this version \
                 cannot use; use a world made by zerotier-idtool/ztrs idtool genmoon",
            ));
        }
        Ok(world)
    }

    /// Checks the caps [`World::emit`] would otherwise enforce by dropping roots/endpoints.
    pub fn validate(&self) -> Result<()> {
        if self.roots.len() > MAX_ROOTS {
            return Err(Error::TooLarge("world roots (more than 4)"));
        }
        if self
            .roots
            .iter()
            .any(|r| r.stable_endpoints.len() > MAX_STABLE_ENDPOINTS)
        {
            return Err(Error::TooLarge(
                "world root stable endpoints (more than 32)",
            ));
        }
        Ok(())
    }

    /// Appends the serialized world. Never writes more than 4 roots or 32 endpoints per root
    /// (see [`World::validate`]), so the output always parses.
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.put(out, true);
    }

    /// The serialized world as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.emit(&mut out);
        out
    }

    /// The bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.put_u64(SIGNED_PREFIX);
        self.put(&mut out, false);
        out.put_u64(SIGNED_SUFFIX);
        out
    }

    fn put(&self, out: &mut Vec<u8>, with_signature: bool) {
        out.put_u8(self.world_type.to_byte());
        out.put_u64(self.id);
        out.put_u64(self.timestamp);
        out.put_bytes(&self.updates_must_be_signed_by);
        if with_signature {
            out.put_bytes(&self.signature);
        }
        let roots = self.roots.get(..MAX_ROOTS).unwrap_or(&self.roots);
        // At most 4 roots and 32 endpoints are written, so the counts fit a byte.
        out.put_u8(roots.len() as u8);
        for root in roots {
            root.identity.emit_binary_public(out);
            let endpoints = root
                .stable_endpoints
                .get(..MAX_STABLE_ENDPOINTS)
                .unwrap_or(&root.stable_endpoints);
            out.put_u8(endpoints.len() as u8);
            for endpoint in endpoints {
                endpoint.emit(out);
            }
        }
        if self.world_type == WorldType::Moon {
            out.put_u16(0);
        }
    }

    /// Signs this revision with `secret` (the previous revision's key, or the current one
    /// for a first revision).
    pub fn sign(&mut self, secret: &SecretKey) {
        self.signature = secret.sign(&self.signed_message());
    }

    /// Whether the signature verifies with the combined public key `key`.
    pub fn verify_signature_with(&self, key: &[u8; PUBLIC_LEN]) -> bool {
        c25519::verify(key, &self.signed_message(), &self.signature)
    }

    /// Whether this world is signed by its own `updates_must_be_signed_by` (true of the
    /// built-in planet and of freshly generated moons).
    pub fn verify_self_signed(&self) -> bool {
        self.verify_signature_with(&self.updates_must_be_signed_by)
    }

    /// The update rule (6.1): this world replaces `current` iff there is no current world (or
    /// it has id 0), or it has the same id and type, a strictly newer timestamp, and is
    /// signed by the current world's `updates_must_be_signed_by`.
    pub fn should_replace(&self, current: Option<&World>) -> bool {
        let Some(current) = current else {
            return true;
        };
        if current.id == 0 {
            return true;
        }
        current.id == self.id
            && current.world_type == self.world_type
            && current.timestamp < self.timestamp
            && self.verify_signature_with(&current.updates_must_be_signed_by)
    }

    /// The built-in planet, Earth (id 149604618, 4 roots, 570 bytes).
    ///
    /// # Panics
    /// Never: the embedded bytes are a constant whose parse is checked by the tests.
    pub fn default_planet() -> World {
        World::parse(DEFAULT_PLANET_BYTES).expect("the embedded default planet is a valid world")
    }

    /// The planet a node runs with, by the reference's start-up rule (6.3): the stored
    /// `planet` file is loaded first, then the built-in planet is offered through the update
    /// rule. So no file means Earth; a file with another id (a private planet) stays in force;
    /// a file with Earth's id stays unless the built-in one is newer and signed by the file's
    /// key. A stored world that is not a planet is ignored.
    pub fn effective_planet(stored: Option<World>) -> World {
        let builtin = World::default_planet();
        match stored {
            Some(planet) if planet.world_type == WorldType::Planet => {
                if builtin.should_replace(Some(&planet)) {
                    builtin
                } else {
                    planet
                }
            }
            _ => builtin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn effective_planet_follows_the_start_up_rule() {
        let earth = World::default_planet();
        // No planet file: Earth.
        assert_eq!(World::effective_planet(None), earth);
        // A private planet (another id) stays in force.
        let (public, secret) = crate::crypto::c25519::generate_keypair();
        let mut private = World {
            world_type: WorldType::Planet,
            id: 0x1234,
            timestamp: 1,
            updates_must_be_signed_by: public,
            signature: [0; 96],
            roots: earth.roots.clone(),
        };
        private.sign(&secret);
        assert_eq!(World::effective_planet(Some(private.clone())), private);
        // An older copy of Earth is replaced by the built-in one, which its key signed.
        let mut older = earth.clone();
        older.timestamp -= 1;
        assert_eq!(World::effective_planet(Some(older)), earth);
        // A "newer Earth" signed by someone else is kept over the built-in one (the built-in
        // one is older), exactly as the reference keeps its stored file.
        let mut forged = earth.clone();
        forged.timestamp += 1;
        forged.sign(&secret);
        assert_eq!(World::effective_planet(Some(forged.clone())), forged);
        // A moon stored as the planet is ignored.
        let mut moon = private.clone();
        moon.world_type = WorldType::Moon;
        assert_eq!(World::effective_planet(Some(moon)), earth);
    }

    fn root_identity() -> Identity {
        "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729".parse().unwrap()
    }

    fn sample(world_type: WorldType, key: &SecretKey) -> World {
        let mut w = World {
            world_type,
            id: 0x7c2dfee12c,
            timestamp: 1000,
            updates_must_be_signed_by: key.public_key(),
            signature: [0u8; SIGNATURE_LEN],
            roots: vec![Root {
                identity: root_identity(),
                stable_endpoints: vec![InetAddress::Ip(
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                    9993,
                )],
            }],
        };
        w.sign(key);
        w
    }

    #[test]
    fn default_planet_is_earth() {
        let earth = World::default_planet();
        assert_eq!(earth.world_type, WorldType::Planet);
        assert_eq!(earth.id, EARTH_ID);
        assert_eq!(earth.timestamp, 1_644_592_324_813);
        assert_eq!(earth.roots.len(), 4);
        assert!(earth.verify_self_signed());
        assert_eq!(earth.to_bytes(), DEFAULT_PLANET_BYTES);
        assert_eq!(DEFAULT_PLANET_BYTES.len(), 570);
    }

    #[test]
    fn sign_and_update_rule() {
        let (_, k1) = c25519::generate_keypair();
        let (_, k2) = c25519::generate_keypair();
        let v1 = sample(WorldType::Moon, &k1);
        assert!(v1.verify_self_signed());
        assert!(v1.should_replace(None));
        // Next revision: signed by v1's key, names k2 for the one after.
        let mut v2 = v1.clone();
        v2.timestamp = 2000;
        v2.updates_must_be_signed_by = k2.public_key();
        v2.sign(&k1);
        assert!(v2.should_replace(Some(&v1)));
        assert!(!v1.should_replace(Some(&v2)), "older");
        assert!(!v2.should_replace(Some(&v2)), "not strictly newer");
        let mut wrong_key = v2.clone();
        wrong_key.sign(&k2);
        assert!(!wrong_key.should_replace(Some(&v1)));
        let mut other_id = v2.clone();
        other_id.id += 1;
        other_id.sign(&k1);
        assert!(!other_id.should_replace(Some(&v1)));
        let mut other_type = v2.clone();
        other_type.world_type = WorldType::Planet;
        other_type.sign(&k1);
        assert!(!other_type.should_replace(Some(&v1)));
        let mut null = v1.clone();
        null.id = 0;
        assert!(v2.should_replace(Some(&null)));
    }

    #[test]
    fn moons_carry_a_dictionary_length() {
        let (_, k) = c25519::generate_keypair();
        let moon = sample(WorldType::Moon, &k).to_bytes();
        let planet = sample(WorldType::Planet, &k).to_bytes();
        assert_eq!(moon.len(), planet.len() + 2);
        assert_eq!(&moon[moon.len() - 2..], &[0, 0]);
        // A non-empty dictionary is read and ignored (it is not signed).
        let mut with_dict = moon.clone();
        let n = with_dict.len();
        with_dict[n - 1] = 3;
        with_dict.extend_from_slice(b"a=b");
        let parsed = World::parse(&with_dict).unwrap();
        assert!(parsed.verify_self_signed());
        assert_eq!(parsed.to_bytes(), moon);
    }

    #[test]
    fn caps_and_errors() {
        let (_, k) = c25519::generate_keypair();
        let w = sample(WorldType::Planet, &k);
        let bytes = w.to_bytes();
        let mut bad_type = bytes.clone();
        bad_type[0] = 2;
        assert!(matches!(
            World::parse(&bad_type),
            Err(Error::Unsupported(_))
        ));
        bad_type[0] = 0;
        assert!(matches!(
            World::parse(&bad_type),
            Err(Error::Unsupported(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            World::parse(&trailing),
            Err(Error::Unsupported(_))
        ));
        let root_count_at = 1 + 8 + 8 + 64 + 96;
        let mut five = bytes.clone();
        five[root_count_at] = 5;
        assert!(matches!(World::parse(&five), Err(Error::TooLarge(_))));
        let mut endpoints = bytes.clone();
        endpoints[root_count_at + 1 + 71] = 33;
        assert!(matches!(World::parse(&endpoints), Err(Error::TooLarge(_))));
        assert!(matches!(
            World::parse(&vec![1u8; MAX_SERIALIZED_LEN + 1]),
            Err(Error::TooLarge(_))
        ));
        // Reserved endpoint types with their own length cannot blow the total cap.
        let mut huge = w.clone();
        huge.roots[0].stable_endpoints.clear();
        let mut big = huge.to_bytes();
        big[root_count_at + 1 + 71] = 2;
        big.extend_from_slice(&[3, 0x11, 0x00]);
        big.extend_from_slice(&[0u8; 0x1100]);
        big.extend_from_slice(&[3, 0x11, 0x00]);
        big.extend_from_slice(&[0u8; 0x1100]);
        let mut r = Reader::new(&big);
        let res = World::read(&mut r);
        assert!(matches!(res, Err(Error::TooLarge(_))), "{res:?}");
        // Reserved endpoint kinds read as "no address" and re-emit as such.
        let mut reserved = huge.to_bytes();
        reserved[root_count_at + 1 + 71] = 1;
        reserved.extend_from_slice(&[3, 0x00, 0x02, 9, 9]);
        let parsed = World::parse(&reserved).unwrap();
        assert_eq!(parsed.roots[0].stable_endpoints, vec![InetAddress::Nil]);
        assert_eq!(World::parse(&parsed.to_bytes()).unwrap(), parsed);
        for len in 0..bytes.len() {
            assert!(World::parse(&bytes[..len]).is_err(), "{len}");
        }
        // Emit enforces the caps.
        let mut over = w.clone();
        over.roots = vec![over.roots[0].clone(); 6];
        over.roots[0].stable_endpoints = vec![InetAddress::Nil; 40];
        assert!(over.validate().is_err());
        let back = World::parse(&over.to_bytes()).unwrap();
        assert_eq!(back.roots.len(), MAX_ROOTS);
        assert_eq!(back.roots[0].stable_endpoints.len(), MAX_STABLE_ENDPOINTS);
        assert!(w.validate().is_ok());
    }

    fn arb_endpoint() -> impl Strategy<Value = InetAddress> {
        prop_oneof![
            Just(InetAddress::Nil),
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, port)| InetAddress::Ip(IpAddr::V4(Ipv4Addr::from(ip)), port)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, port)| InetAddress::Ip(IpAddr::V6(Ipv6Addr::from(ip)), port)),
        ]
    }

    fn arb_world() -> impl Strategy<Value = World> {
        let root = (
            (1u64..0xff_0000_0000),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(arb_endpoint(), 0..=MAX_STABLE_ENDPOINTS),
        )
            .prop_map(|(addr, x, y, stable_endpoints)| {
                let mut public = [0u8; PUBLIC_LEN];
                public[..32].copy_from_slice(&x);
                public[32..].copy_from_slice(&y);
                Root {
                    identity: Identity::from_parts(
                        crate::wire::Address::from_u64(addr),
                        public,
                        None,
                    ),
                    stable_endpoints,
                }
            });
        (
            prop_oneof![Just(WorldType::Planet), Just(WorldType::Moon)],
            any::<u64>(),
            any::<u64>(),
            (any::<[u8; 32]>(), any::<[u8; 32]>()),
            (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<[u8; 32]>()),
            proptest::collection::vec(root, 0..=MAX_ROOTS),
        )
            .prop_map(
                |(world_type, id, timestamp, (k1, k2), (s1, s2, s3), roots)| {
                    let mut key = [0u8; PUBLIC_LEN];
                    key[..32].copy_from_slice(&k1);
                    key[32..].copy_from_slice(&k2);
                    let mut signature = [0u8; SIGNATURE_LEN];
                    signature[..32].copy_from_slice(&s1);
                    signature[32..64].copy_from_slice(&s2);
                    signature[64..].copy_from_slice(&s3);
                    World {
                        world_type,
                        id,
                        timestamp,
                        updates_must_be_signed_by: key,
                        signature,
                        roots,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            if let Ok(w) = World::parse(&bytes) {
                prop_assert_eq!(World::parse(&w.to_bytes()).unwrap(), w);
            }
        }

        #[test]
        fn mutated_worlds_never_panic(index in 0usize..570, value in any::<u8>()) {
            let mut bytes = DEFAULT_PLANET_BYTES.to_vec();
            bytes[index] = value;
            if let Ok(w) = World::parse(&bytes) {
                prop_assert_eq!(World::parse(&w.to_bytes()).unwrap(), w);
            }
        }

        #[test]
        fn round_trip(w in arb_world()) {
            let bytes = w.to_bytes();
            prop_assert!(bytes.len() <= MAX_SERIALIZED_LEN);
            prop_assert_eq!(World::parse(&bytes).unwrap(), w);
        }
    }
}
