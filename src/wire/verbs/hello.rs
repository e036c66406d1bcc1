//! HELLO (0x01), the moon list in its `cryptField`-encrypted tail, and OK(HELLO).
//!
//! ```text
//! HELLO:     u8 proto | u8 major | u8 minor | u16 rev | u64 timestamp | identity(71)
//!            [InetAddress sent-to] [u64 planet id | u64 planet ts] [encrypted tail ...]
//! tail:      u16 count | count x (u8 world type | u64 moon id | u64 moon ts)
//! OK(HELLO): u64 timestamp echo | u8 proto | u8 major | u8 minor | u16 rev
//!            [InetAddress sent-from] [u16 len | world updates]
//! ```
//!
//! Trailing fields are optional (old versions stop after the identity, or after the sent-to
//! address). The tail is encrypted separately from the packet, so [`Hello`] keeps it as raw
//! bytes with [`Hello::moon_tail_offset`]; the node decrypts it and calls
//! [`HelloMoons::parse`].

use crate::crypto::Identity;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::{InetAddress, Result};

use super::MAX_HELLO_MOONS;
use super::common::{put_u16_prefixed, read_endpoint, read_public_identity};

/// A software version triple, as HELLO and OK(HELLO) carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SoftwareVersion {
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
}

impl SoftwareVersion {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(SoftwareVersion {
            major: r.u8("software major version")?,
            minor: r.u8("software minor version")?,
            revision: r.u16("software revision")?,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_u16(self.revision);
    }
}

/// A world (planet) id and the revision timestamp the sender holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorldStamp {
    pub id: u64,
    pub timestamp: u64,
}

/// A HELLO payload.
///
/// Invariants for [`Hello::emit`] to reproduce what [`Hello::parse`] would read back: a
/// `planet` or a non-empty `moon_tail` needs a `sent_to` (a missing one is written as `Nil`),
/// and without a `planet` the tail must be shorter than 16 bytes (else it reads as a planet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    pub protocol_version: u8,
    pub software_version: SoftwareVersion,
    /// Sender's clock in ms, echoed in OK(HELLO) for round-trip time.
    pub timestamp: u64,
    /// The sender's public identity.
    pub identity: Identity,
    /// The address the packet was sent to, as the sender sees it (`Nil` if relayed).
    pub sent_to: Option<InetAddress>,
    /// The sender's planet.
    pub planet: Option<WorldStamp>,
    /// Everything after the planet fields, still encrypted with `cryptField` on receipt;
    /// plaintext (to be encrypted by the node) when building a HELLO.
    pub moon_tail: &'a [u8],
}

impl<'a> Hello<'a> {
    /// Bytes before the optional fields: version block, timestamp and identity.
    pub const FIXED_LEN: usize = 1 + 4 + 8 + crate::crypto::BINARY_PUBLIC_LEN;

    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let protocol_version = r.u8("hello protocol version")?;
        let software_version = SoftwareVersion::read(&mut r)?;
        let timestamp = r.u64("hello timestamp")?;
        let identity = read_public_identity(&mut r)?;
        let sent_to = if r.is_empty() {
            None
        } else {
            Some(read_endpoint(&mut r, "hello sent-to address")?)
        };
        // The reference reads the planet fields only when all 16 bytes are there; whatever
        // follows (possibly fewer than 16 bytes) is the encrypted tail.
        let planet = if r.remaining() >= 16 {
            Some(WorldStamp {
                id: r.u64("hello planet id")?,
                timestamp: r.u64("hello planet timestamp")?,
            })
        } else {
            None
        };
        Ok(Hello {
            protocol_version,
            software_version,
            timestamp,
            identity,
            sent_to,
            planet,
            moon_tail: r.take_rest(),
        })
    }

    /// The sent-to address as [`Hello::emit`] writes it (a `Nil` placeholder when later
    /// fields need one).
    fn sent_to_for_emit(&self) -> Option<InetAddress> {
        match self.sent_to {
            Some(a) => Some(a),
            None if self.planet.is_some() || !self.moon_tail.is_empty() => Some(InetAddress::Nil),
            None => None,
        }
    }

    /// Offset within the payload (add `packet::HEADER_LEN` for the packet) where the
    /// `cryptField`-encrypted tail starts, for both a parsed and an emitted HELLO.
    pub fn moon_tail_offset(&self) -> usize {
        Self::FIXED_LEN
            + self.sent_to_for_emit().map_or(0, |a| a.emitted_len())
            + if self.planet.is_some() { 16 } else { 0 }
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.protocol_version);
        self.software_version.emit(out);
        out.put_u64(self.timestamp);
        self.identity.emit_binary_public(out);
        if let Some(a) = self.sent_to_for_emit() {
            a.emit(out);
        }
        if let Some(p) = self.planet {
            out.put_u64(p.id);
            out.put_u64(p.timestamp);
        }
        out.put_bytes(self.moon_tail);
    }
}

/// One entry of the HELLO moon list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MoonStamp {
    /// World type; only [`MoonStamp::WORLD_TYPE_MOON`] entries mean anything (the
    /// reference skips the others).
    pub world_type: u8,
    pub id: u64,
    /// The moon revision the sender holds; 0 = "I want this moon but do not have it yet".
    pub timestamp: u64,
}

impl MoonStamp {
    pub const WORLD_TYPE_MOON: u8 = 127;
    /// Size on the wire.
    pub const LEN: usize = 17;

    pub fn is_moon(&self) -> bool {
        self.world_type == Self::WORLD_TYPE_MOON
    }
}

/// The decrypted HELLO tail: the moons the sender orbits.
///
/// Cap: the declared count must fit in the tail (otherwise [`crate::wire::Error::Truncated`],
/// as the reference drops such a HELLO); only the first [`MAX_HELLO_MOONS`] entries are kept,
/// the rest are ignored, so the node never refuses a peer over a long moon list.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HelloMoons {
    pub moons: Vec<MoonStamp>,
}

impl HelloMoons {
    /// Parses the tail after `cryptField` decryption. A tail shorter than the count field
    /// (including an empty one) lists no moons. Bytes after the list are ignored (1.x
    /// versions once appended a certificate of representation there).
    pub fn parse(decrypted_tail: &[u8]) -> Result<Self> {
        let mut r = Reader::new(decrypted_tail);
        if r.remaining() < 2 {
            return Ok(HelloMoons::default());
        }
        let count = usize::from(r.u16("hello moon count")?);
        if count * MoonStamp::LEN > r.remaining() {
            return Err(crate::wire::Error::Truncated("hello moon list"));
        }
        let kept = count.min(MAX_HELLO_MOONS);
        let mut moons = Vec::with_capacity(kept);
        for _ in 0..kept {
            moons.push(MoonStamp {
                world_type: r.u8("hello moon world type")?,
                id: r.u64("hello moon id")?,
                timestamp: r.u64("hello moon timestamp")?,
            });
        }
        Ok(HelloMoons { moons })
    }

    /// Appends the plaintext tail (at most [`MAX_HELLO_MOONS`] entries).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let kept = self.moons.get(..MAX_HELLO_MOONS).unwrap_or(&self.moons);
        out.put_u16(kept.len() as u16);
        for m in kept {
            out.put_u8(m.world_type);
            out.put_u64(m.id);
            out.put_u64(m.timestamp);
        }
    }

    /// Entries that name moons (world type 127).
    pub fn moons(&self) -> impl Iterator<Item = &MoonStamp> {
        self.moons.iter().filter(|m| m.is_moon())
    }
}

/// The body of OK(HELLO) (after the common OK header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OkHello<'a> {
    /// The HELLO's timestamp, echoed.
    pub timestamp_echo: u64,
    pub protocol_version: u8,
    pub software_version: SoftwareVersion,
    /// The address the HELLO came from, as the responder saw it (`Nil` when absent).
    pub sent_from: InetAddress,
    /// Serialized worlds (planet/moon updates); empty when absent. Decoded by
    /// `crate::wire::world` only if the responder is a root the node trusts.
    pub world_updates: &'a [u8],
}

impl<'a> OkHello<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let timestamp_echo = r.u64("ok(hello) timestamp")?;
        let protocol_version = r.u8("ok(hello) protocol version")?;
        let software_version = SoftwareVersion::read(&mut r)?;
        let sent_from = if r.is_empty() {
            InetAddress::Nil
        } else {
            read_endpoint(&mut r, "ok(hello) sent-from address")?
        };
        let world_updates = if r.remaining() >= 2 {
            let len = r.u16("ok(hello) world updates length")?;
            r.bytes(usize::from(len), "ok(hello) world updates")?
        } else {
            &[]
        };
        Ok(OkHello {
            timestamp_echo,
            protocol_version,
            software_version,
            sent_from,
            world_updates,
        })
    }

    /// Appends the body; the address and the (possibly empty) world block are always
    /// written, as the reference does.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.timestamp_echo);
        out.put_u8(self.protocol_version);
        self.software_version.emit(out);
        self.sent_from.emit(out);
        put_u16_prefixed(out, self.world_updates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Address;

    fn identity() -> Identity {
        Identity::from_parts(Address::from_u64(0x7c2dfee12c), [7; 64], None)
    }

    fn hello(sent_to: Option<InetAddress>, planet: Option<WorldStamp>, tail: &[u8]) -> Hello<'_> {
        Hello {
            protocol_version: 12,
            software_version: SoftwareVersion {
                major: 1,
                minor: 14,
                revision: 1,
            },
            timestamp: 1_700_000_000_000,
            identity: identity(),
            sent_to,
            planet,
            moon_tail: tail,
        }
    }

    #[test]
    fn old_hello_stops_after_identity() {
        let h = hello(None, None, &[]);
        let mut out = Vec::new();
        h.emit(&mut out);
        assert_eq!(out.len(), Hello::FIXED_LEN);
        assert_eq!(Hello::parse(&out).unwrap(), h);
        assert_eq!(h.moon_tail_offset(), Hello::FIXED_LEN);
        assert!(Hello::parse(&out[..out.len() - 1]).is_err());
    }

    #[test]
    fn tail_offset_matches_emitted_bytes() {
        let addr = InetAddress::Ip("192.0.2.1".parse().unwrap(), 9993);
        let planet = WorldStamp {
            id: 149604618,
            timestamp: 1644592324813,
        };
        for (sent_to, planet, tail) in [
            (Some(addr), Some(planet), &[0u8, 0][..]),
            (Some(InetAddress::Nil), None, &[1, 2, 3][..]),
            (None, Some(planet), &[][..]),
        ] {
            let h = hello(sent_to, planet, tail);
            let mut out = Vec::new();
            h.emit(&mut out);
            assert_eq!(&out[h.moon_tail_offset()..], tail);
            let back = Hello::parse(&out).unwrap();
            assert_eq!(back.moon_tail, tail);
            assert_eq!(back.moon_tail_offset(), h.moon_tail_offset());
        }
    }

    #[test]
    fn reserved_sent_to_type_is_refused() {
        let mut out = Vec::new();
        hello(None, None, &[]).emit(&mut out);
        out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0]);
        assert!(Hello::parse(&out).is_err());
    }

    #[test]
    fn moon_list_bounds() {
        assert_eq!(HelloMoons::parse(&[]).unwrap().moons.len(), 0);
        assert_eq!(HelloMoons::parse(&[0]).unwrap().moons.len(), 0);
        assert!(HelloMoons::parse(&[0, 1, 127, 0, 0]).is_err());
        // A count beyond the cap keeps the first MAX_HELLO_MOONS entries.
        let n = MAX_HELLO_MOONS + 3;
        let mut tail = (n as u16).to_be_bytes().to_vec();
        for i in 0..n {
            tail.push(if i % 2 == 0 { 127 } else { 1 });
            tail.extend_from_slice(&(i as u64).to_be_bytes());
            tail.extend_from_slice(&0u64.to_be_bytes());
        }
        let moons = HelloMoons::parse(&tail).unwrap();
        assert_eq!(moons.moons.len(), MAX_HELLO_MOONS);
        assert_eq!(moons.moons().count(), MAX_HELLO_MOONS.div_ceil(2));
    }

    #[test]
    fn ok_hello_optional_fields() {
        let body = [0u8; 13];
        let ok = OkHello::parse(&body).unwrap();
        assert_eq!(ok.sent_from, InetAddress::Nil);
        assert!(ok.world_updates.is_empty());
        let mut out = Vec::new();
        ok.emit(&mut out);
        assert_eq!(OkHello::parse(&out).unwrap(), ok);
        let mut bad = out.clone();
        bad.truncate(bad.len() - 2);
        bad.extend_from_slice(&[0, 5, 1]);
        assert!(OkHello::parse(&bad).is_err());
    }
}
