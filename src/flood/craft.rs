//! Builds one datagram of each [`Kind`] for a target, from the project's own wire and armor
//! code, and says which local socket must send it ([`Origin`]). Generation only: nothing
//! here reads network input.

use super::fragments::next_fragment;
use super::kind::Kind;
use super::rng::FloodRng;
use super::target::{Keyed, TargetMaterial, random_address};
use crate::crypto::{SharedKey, SymmetricKey, armor};
use crate::wire::netconf_chunk::{ChunkSignature, ConfigChunk};
use crate::wire::packet::PacketHeader;
use crate::wire::packet::{Cipher, DEFAULT_PHYSICAL_MTU, MAX_PACKET_LEN, PROTOCOL_VERSION};
use crate::wire::verbs::{Hello, NetworkConfig, SoftwareVersion};
use crate::wire::{Address, InetAddress, Verb};

/// Which local socket sends a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The flood's main socket.
    Primary,
    /// The socket of pool identity `i` (its own source prefix, so the per-prefix HELLO limit
    /// lets each identity in).
    Pool(usize),
    /// One of the spoofing sockets (many local addresses and ports).
    Spoof,
}

/// Largest datagram [`Kind::Oversized`] sends (UDP allows 65,507; this keeps the byte rate
/// of a flood reasonable).
const OVERSIZED_MAX: usize = 16_000;

/// What an LZ4 bomb expands to: far past the decompression cap.
const BOMB_EXPANDED_LEN: usize = 60_000;

/// Builds datagrams; holds the random source and what is computed once.
pub(crate) struct Crafter {
    rng: FloodRng,
    /// A raw LZ4 block of zeros that expands to [`BOMB_EXPANDED_LEN`] bytes.
    lz4_bomb: Vec<u8>,
    /// Round-robin positions (pool, invalid identities, variants).
    turn: u64,
    /// A key nobody shares, for forged packets that must fail the MAC.
    forged_key: SymmetricKey,
}

impl Crafter {
    pub fn new(mut rng: FloodRng) -> Crafter {
        let forged_key = SymmetricKey::new(&SharedKey::from_bytes(rng.bytes::<48>()));
        Crafter {
            lz4_bomb: lz4_flex::block::compress(&vec![0u8; BOMB_EXPANDED_LEN]),
            rng,
            turn: 0,
            forged_key,
        }
    }

    /// Writes one datagram of `kind` for `t` into `out` (cleared first).
    pub fn build(&mut self, kind: Kind, t: &mut TargetMaterial, out: &mut Vec<u8>) -> Origin {
        out.clear();
        self.turn = self.turn.wrapping_add(1);
        match kind {
            Kind::Random => {
                let len = self.rng.range(1, DEFAULT_PHYSICAL_MTU);
                self.rng.extend(out, len);
                Origin::Primary
            }
            Kind::BadMac => {
                let source = self.known_or_random(t);
                self.junk_packet(t, source, out, DEFAULT_PHYSICAL_MTU);
                Origin::Primary
            }
            Kind::UnknownSource => {
                let source = self.stranger(t);
                self.junk_packet(t, source, out, DEFAULT_PHYSICAL_MTU);
                Origin::Primary
            }
            Kind::HelloInvalid => {
                let index = self.index(t.invalid.len());
                if let Some(keyed) = t.invalid.get(index) {
                    hello(&mut self.rng, keyed, t, out);
                }
                Origin::Primary
            }
            Kind::HelloPool => match t.pool.get(self.index(t.pool.len())) {
                Some(keyed) => {
                    hello(&mut self.rng, keyed, t, out);
                    Origin::Pool(self.index(t.pool.len()))
                }
                None => self.build(Kind::HelloInvalid, t, out),
            },
            Kind::Oversized => {
                let source = self.stranger(t);
                let len = self.rng.range(MAX_PACKET_LEN + 1, OVERSIZED_MAX);
                self.junk_packet(t, source, out, len);
                Origin::Primary
            }
            Kind::FragmentBomb => {
                if let Some(datagram) = next_fragment(&mut self.rng, t) {
                    out.extend_from_slice(&datagram);
                }
                Origin::Primary
            }
            Kind::CompressBomb => self.compress_bomb(t, out),
            Kind::NetconfOverlap => self.netconf_chunk(t, out),
            Kind::Spoofed => {
                let impostor = self.index(t.impostors.len() + 1);
                match t.impostors.get(impostor) {
                    // Every other spoofed datagram: a HELLO under a known address with
                    // another key.
                    Some(keyed) if self.turn.is_multiple_of(2) => {
                        hello(&mut self.rng, keyed, t, out)
                    }
                    _ => {
                        let mut claims = t.target.known_peers.clone();
                        claims.push(t.target.identity.address());
                        let source = *self.rng.pick(&claims).unwrap_or(&Address::from_u64(1));
                        self.junk_packet(t, source, out, DEFAULT_PHYSICAL_MTU);
                    }
                }
                Origin::Spoof
            }
        }
    }

    /// The pool index for this turn (the same turn always gives the same index).
    fn index(&self, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            (self.turn % len as u64) as usize
        }
    }

    fn known_or_random(&mut self, t: &TargetMaterial) -> Address {
        let me = t.target.identity.address();
        let known: Vec<Address> = t
            .target
            .known_peers
            .iter()
            .copied()
            .filter(|a| *a != me)
            .collect();
        match self.rng.pick(&known) {
            Some(a) => *a,
            None => self.stranger(t),
        }
    }

    /// An address neither the target nor the flood's identities have.
    fn stranger(&mut self, t: &TargetMaterial) -> Address {
        let mut avoid = t.target.known_peers.clone();
        avoid.push(t.target.identity.address());
        avoid.extend(t.pool.iter().map(|k| k.identity.address()));
        random_address(&mut self.rng, &avoid)
    }

    /// A header to the target from `source` (cipher 1 or 3, random MAC and verb) and random
    /// bytes up to `len` in all.
    fn junk_packet(&mut self, t: &TargetMaterial, source: Address, out: &mut Vec<u8>, len: usize) {
        let cipher = if self.rng.next_u64() & 1 == 0 {
            Cipher::Salsa2012Poly1305
        } else {
            Cipher::AesGmacSiv
        };
        let verb = Verb::from_byte(self.rng.bytes::<1>()[0]);
        header(&mut self.rng, t, source, cipher, verb, false).emit(out);
        let len = len.max(out.len() + 1);
        let rest = len - out.len();
        self.rng.extend(out, rest);
    }

    /// An ECHO whose payload is an LZ4 bomb, authenticated by a pool identity.
    fn compress_bomb(&mut self, t: &mut TargetMaterial, out: &mut Vec<u8>) -> Origin {
        let index = self.index(t.pool.len());
        let (keyed, origin) = match t.pool.get(index) {
            Some(k) => (k, Origin::Pool(index)),
            // No pool: a made-up identity, which the target never learns (its packets wait
            // for WHOIS).
            None => match t.invalid.first() {
                Some(k) => (k, Origin::Primary),
                None => return Origin::Primary,
            },
        };
        let head = header(
            &mut self.rng,
            t,
            keyed.identity.address(),
            Cipher::Salsa2012Poly1305,
            Verb::Echo,
            true,
        );
        head.emit(out);
        out.extend_from_slice(&self.lz4_bomb);
        let _ = armor(out, &keyed.key, Cipher::Salsa2012Poly1305);
        origin
    }

    /// NETWORK_CONFIG chunks that overlap (variant 0), run past their total (variant 1), or
    /// come forged from the controller's address (variant 2).
    fn netconf_chunk(&mut self, t: &mut TargetMaterial, out: &mut Vec<u8>) -> Origin {
        const TOTAL: u32 = 2_000;
        let variant = self.turn % 3;
        let len = self.rng.range(200, 1_000);
        let mut data = Vec::with_capacity(len);
        self.rng.extend(&mut data, len);
        let offset = match variant {
            // In range, overlapping the other chunks of the same update.
            0 => self.rng.range(0, TOTAL as usize - len) as u32,
            // Past the total: the chunk parser refuses it.
            _ => TOTAL - 10,
        };
        let chunk = ConfigChunk {
            network_id: t.network,
            data: &data,
            signed: Some(ChunkSignature {
                flags: 0,
                update_id: 0x0f10_0d00 | (self.turn & 0xff),
                total_len: TOTAL,
                offset,
                signature: [0x5a; crate::crypto::c25519::SIGNATURE_LEN],
            }),
        };
        let mut payload = Vec::with_capacity(chunk.emitted_len());
        NetworkConfig { chunk }.emit(&mut payload);
        let pool_index = self.index(t.pool.len());
        let (source, key, origin) = match (variant, t.pool.get(pool_index)) {
            (0 | 1, Some(k)) => (k.identity.address(), &k.key, Origin::Pool(pool_index)),
            _ => (t.network.controller(), &self.forged_key, Origin::Primary),
        };
        header(
            &mut self.rng,
            t,
            source,
            Cipher::Salsa2012Poly1305,
            Verb::NetworkConfig,
            false,
        )
        .emit(out);
        out.extend_from_slice(&payload);
        let _ = armor(out, key, Cipher::Salsa2012Poly1305);
        origin
    }
}

/// A packet header to the target (random packet id and MAC, hops 0).
fn header(
    rng: &mut FloodRng,
    t: &TargetMaterial,
    source: Address,
    cipher: Cipher,
    verb: Verb,
    compressed: bool,
) -> PacketHeader {
    PacketHeader {
        packet_id: rng.bytes(),
        destination: t.target.identity.address(),
        source,
        cipher,
        fragmented: false,
        hops: 0,
        mac: rng.bytes(),
        verb,
        compressed,
    }
}

/// A cipher-0 HELLO from `keyed` to the target, authenticated with their shared key.
fn hello(rng: &mut FloodRng, keyed: &Keyed, t: &TargetMaterial, out: &mut Vec<u8>) {
    let source = keyed.identity.address();
    header(rng, t, source, Cipher::Poly1305None, Verb::Hello, false).emit(out);
    Hello {
        protocol_version: PROTOCOL_VERSION,
        software_version: SoftwareVersion {
            major: 1,
            minor: 14,
            revision: 0,
        },
        timestamp: rng.next_u64() >> 24,
        identity: keyed.identity.to_public(),
        sent_to: Some(InetAddress::from_socket_addr(t.target.endpoint)),
        planet: None,
        moon_tail: &[],
    }
    .emit(out);
    let _ = armor(out, &keyed.key, Cipher::Poly1305None);
}
