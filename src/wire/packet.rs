//! The 28-byte ZeroTier packet header: its constants, a zero-copy view [`Packet`], the
//! validated [`PacketHeader`] representation and the datagram classifier of protocol 2.3.
//!
//! ```text
//! 0  u64 packet id / IV      8  dest address(5)   13 source address(5)
//! 18 flags: F F C C C H H H  19 MAC (8)           27 verb byte   28.. payload
//! ```

use super::cursor::{Reader, Writer};
use super::verb::{VERB_FLAG_COMPRESSED, VERB_MASK};
use super::{Address, Error, Result, Verb};

/// Header length including the verb byte; also the minimum packet length.
pub const HEADER_LEN: usize = 28;
pub const IDX_PACKET_ID: usize = 0;
pub const IDX_DEST: usize = 8;
pub const IDX_SOURCE: usize = 13;
pub const IDX_FLAGS: usize = 18;
pub const IDX_MAC: usize = 19;
pub const IDX_VERB: usize = 27;
pub const IDX_PAYLOAD: usize = 28;

/// Legacy "encrypted" flag: set iff the cipher is 1; receivers ignore it.
pub const FLAG_ENCRYPTED_LEGACY: u8 = 0x80;
/// More fragments follow this head.
pub const FLAG_FRAGMENTED: u8 = 0x40;
/// Cipher suite bits of the flags byte (`(flags >> 3) & 7`).
pub const FLAGS_CIPHER_MASK: u8 = 0x38;
/// Hop count bits; the only header bits relays may change.
pub const FLAGS_HOPS_MASK: u8 = 0x07;

/// Largest assembled packet: 7 fragments of the default physical MTU.
pub const MAX_PACKET_LEN: usize = 10_024;
/// Default UDP payload size per datagram.
pub const DEFAULT_PHYSICAL_MTU: usize = 1432;
/// Smallest UDP payload size a path may use.
pub const MIN_PHYSICAL_MTU: usize = 1400;
/// Relays drop a packet whose hop count reached this.
pub const MAX_RELAY_HOPS: u8 = 3;
/// Protocol version we speak.
pub const PROTOCOL_VERSION: u8 = 12;
/// Oldest protocol version we accept in HELLO.
pub const MIN_PROTOCOL_VERSION: u8 = 4;

/// The cipher suite field of the flags byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// 0: Poly1305 MAC, payload in the clear (HELLO only).
    Poly1305None,
    /// 1: Salsa20/12 encryption with a Poly1305 MAC.
    Salsa2012Poly1305,
    /// 2: no crypto; the MAC field carries a trusted-path id.
    TrustedPath,
    /// 3: AES-GMAC-SIV.
    AesGmacSiv,
    /// 4-7: undefined.
    Unknown(u8),
}

impl Cipher {
    pub fn from_flags(flags: u8) -> Cipher {
        match (flags & FLAGS_CIPHER_MASK) >> 3 {
            0 => Cipher::Poly1305None,
            1 => Cipher::Salsa2012Poly1305,
            2 => Cipher::TrustedPath,
            3 => Cipher::AesGmacSiv,
            n => Cipher::Unknown(n),
        }
    }

    /// The 3-bit suite number.
    pub fn number(self) -> u8 {
        match self {
            Cipher::Poly1305None => 0,
            Cipher::Salsa2012Poly1305 => 1,
            Cipher::TrustedPath => 2,
            Cipher::AesGmacSiv => 3,
            Cipher::Unknown(n) => n & 7,
        }
    }

    /// The flag bits this cipher sets on send (the legacy 0x80 goes with cipher 1 only).
    pub fn flag_bits(self) -> u8 {
        let bits = self.number() << 3;
        if self == Cipher::Salsa2012Poly1305 {
            bits | FLAG_ENCRYPTED_LEGACY
        } else {
            bits
        }
    }
}

/// What a received UDP datagram is, by the dispatch rules of protocol 2.3 (in this order):
/// exactly 13 bytes is a LAN beacon; more than 16 bytes with byte 13 = 0xff is a fragment;
/// otherwise 28 bytes or more is a packet (or the head of a fragmented one); anything else is
/// a runt (the reference's keepalives are 1-byte datagrams) and is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Datagram {
    Beacon,
    Fragment,
    Packet,
    Runt,
}

/// Length of a legacy LAN beacon datagram.
pub const BEACON_LEN: usize = 13;

/// Classifies a datagram without validating it; see [`Datagram`].
pub fn classify(datagram: &[u8]) -> Datagram {
    use super::fragment::{FRAGMENT_HEADER_LEN, FRAGMENT_INDICATOR, IDX_FRAGMENT_INDICATOR};
    let len = datagram.len();
    if len == BEACON_LEN {
        Datagram::Beacon
    } else if len > FRAGMENT_HEADER_LEN
        && datagram.get(IDX_FRAGMENT_INDICATOR) == Some(&FRAGMENT_INDICATOR)
    {
        Datagram::Fragment
    } else if len >= HEADER_LEN {
        Datagram::Packet
    } else {
        Datagram::Runt
    }
}

/// A zero-copy view of a packet (a head, a whole packet or an assembled one).
///
/// The only constructor, [`Packet::new_checked`], guarantees `HEADER_LEN <= len <=
/// MAX_PACKET_LEN`, so the fixed-offset header accessors cannot go out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` after checking that it holds a whole header and is not larger than the
    /// largest assembled packet (checked before any crypto, H2.9).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated("packet header"));
        }
        if len > MAX_PACKET_LEN {
            return Err(Error::TooLarge("packet"));
        }
        Ok(Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole packet, header included.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Total length, header included (never below [`HEADER_LEN`]).
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// Always false: a packet has at least a header. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }

    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.header()[at..at + N]);
        out
    }

    /// The raw packet id (the IV; rewritten by cipher 3 armor).
    pub fn packet_id(&self) -> [u8; 8] {
        self.array(IDX_PACKET_ID)
    }

    /// The packet id as a big-endian integer, the reassembly and reply-matching key.
    pub fn packet_id_u64(&self) -> u64 {
        u64::from_be_bytes(self.packet_id())
    }

    pub fn destination(&self) -> Address {
        Address::from_bytes(&self.array(IDX_DEST))
    }

    pub fn source(&self) -> Address {
        Address::from_bytes(&self.array(IDX_SOURCE))
    }

    /// The raw flags byte (fragmented, cipher, hops and the legacy encrypted bit).
    pub fn flags(&self) -> u8 {
        self.header()[IDX_FLAGS]
    }

    pub fn cipher(&self) -> Cipher {
        Cipher::from_flags(self.flags())
    }

    pub fn hops(&self) -> u8 {
        self.flags() & FLAGS_HOPS_MASK
    }

    /// More fragments follow this head.
    pub fn fragmented(&self) -> bool {
        self.flags() & FLAG_FRAGMENTED != 0
    }

    pub fn mac(&self) -> [u8; 8] {
        self.array(IDX_MAC)
    }

    /// The raw verb byte (meaningful only after dearmor for ciphers 1 and 3).
    pub fn verb_byte(&self) -> u8 {
        self.header()[IDX_VERB]
    }

    pub fn verb(&self) -> Verb {
        Verb::from_byte(self.verb_byte())
    }

    /// The payload after offset 28 is LZ4-compressed.
    pub fn compressed(&self) -> bool {
        self.verb_byte() & VERB_FLAG_COMPRESSED != 0
    }

    /// Everything after the verb byte.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[IDX_PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn header_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[..HEADER_LEN]
    }

    /// The whole packet, header included, for in-place armor and dearmor.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_packet_id(&mut self, id: [u8; 8]) {
        self.header_mut()[IDX_PACKET_ID..IDX_DEST].copy_from_slice(&id);
    }

    pub fn set_destination(&mut self, address: Address) {
        self.header_mut()[IDX_DEST..IDX_SOURCE].copy_from_slice(&address.to_bytes());
    }

    pub fn set_source(&mut self, address: Address) {
        self.header_mut()[IDX_SOURCE..IDX_FLAGS].copy_from_slice(&address.to_bytes());
    }

    pub fn set_flags(&mut self, flags: u8) {
        self.header_mut()[IDX_FLAGS] = flags;
    }

    /// Sets the cipher bits (and the legacy encrypted bit that goes with cipher 1), keeping
    /// the fragmented flag and the hop count.
    pub fn set_cipher(&mut self, cipher: Cipher) {
        let kept = self.flags() & (FLAG_FRAGMENTED | FLAGS_HOPS_MASK);
        self.set_flags(kept | cipher.flag_bits());
    }

    /// Sets the hop count (low 3 bits of `hops`); the only header field relays change.
    pub fn set_hops(&mut self, hops: u8) {
        let flags = (self.flags() & !FLAGS_HOPS_MASK) | (hops & FLAGS_HOPS_MASK);
        self.set_flags(flags);
    }

    pub fn set_fragmented(&mut self, fragmented: bool) {
        let flags = if fragmented {
            self.flags() | FLAG_FRAGMENTED
        } else {
            self.flags() & !FLAG_FRAGMENTED
        };
        self.set_flags(flags);
    }

    pub fn set_mac(&mut self, mac: [u8; 8]) {
        self.header_mut()[IDX_MAC..IDX_VERB].copy_from_slice(&mac);
    }

    pub fn set_verb_byte(&mut self, verb_byte: u8) {
        self.header_mut()[IDX_VERB] = verb_byte;
    }

    /// Sets the verb number, keeping the compressed flag.
    pub fn set_verb(&mut self, verb: Verb) {
        let b = (self.verb_byte() & !VERB_MASK) | verb.to_byte();
        self.set_verb_byte(b);
    }

    pub fn set_compressed(&mut self, compressed: bool) {
        let b = if compressed {
            self.verb_byte() | VERB_FLAG_COMPRESSED
        } else {
            self.verb_byte() & !VERB_FLAG_COMPRESSED
        };
        self.set_verb_byte(b);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[IDX_PAYLOAD..]
    }
}

/// The header as typed values. `parse` ignores the legacy encrypted bit and the unused verb
/// bits 0x20/0x40; `emit` derives the legacy bit from the cipher, as senders must.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketHeader {
    pub packet_id: [u8; 8],
    pub destination: Address,
    pub source: Address,
    pub cipher: Cipher,
    pub fragmented: bool,
    /// 0..=7.
    pub hops: u8,
    pub mac: [u8; 8],
    pub verb: Verb,
    pub compressed: bool,
}

impl PacketHeader {
    /// Reads the 28-byte header at the start of `buf` (the payload is not looked at).
    pub fn parse(buf: &[u8]) -> Result<PacketHeader> {
        let mut r = Reader::new(buf);
        let packet_id = r.array("packet id")?;
        let destination = Address::from_bytes(&r.array("packet destination")?);
        let source = Address::from_bytes(&r.array("packet source")?);
        let flags = r.u8("packet flags")?;
        let mac = r.array("packet mac")?;
        let verb_byte = r.u8("packet verb")?;
        Ok(PacketHeader {
            packet_id,
            destination,
            source,
            cipher: Cipher::from_flags(flags),
            fragmented: flags & FLAG_FRAGMENTED != 0,
            hops: flags & FLAGS_HOPS_MASK,
            mac,
            verb: Verb::from_byte(verb_byte),
            compressed: verb_byte & VERB_FLAG_COMPRESSED != 0,
        })
    }

    /// The header of a validated view.
    pub fn from_packet<T: AsRef<[u8]>>(packet: &Packet<T>) -> PacketHeader {
        PacketHeader {
            packet_id: packet.packet_id(),
            destination: packet.destination(),
            source: packet.source(),
            cipher: packet.cipher(),
            fragmented: packet.fragmented(),
            hops: packet.hops(),
            mac: packet.mac(),
            verb: packet.verb(),
            compressed: packet.compressed(),
        }
    }

    /// The flags byte this header encodes.
    pub fn flags(&self) -> u8 {
        let fragmented = if self.fragmented { FLAG_FRAGMENTED } else { 0 };
        self.cipher.flag_bits() | fragmented | (self.hops & FLAGS_HOPS_MASK)
    }

    /// The verb byte this header encodes.
    pub fn verb_byte(&self) -> u8 {
        let compressed = if self.compressed {
            VERB_FLAG_COMPRESSED
        } else {
            0
        };
        self.verb.to_byte() | compressed
    }

    /// Appends the 28 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.packet_id);
        out.put_bytes(&self.destination.to_bytes());
        out.put_bytes(&self.source.to_bytes());
        out.put_u8(self.flags());
        out.put_bytes(&self.mac);
        out.put_u8(self.verb_byte());
    }

    /// Writes the header into the first 28 bytes of a packet view.
    pub fn emit_into<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_packet_id(self.packet_id);
        packet.set_destination(self.destination);
        packet.set_source(self.source);
        packet.set_flags(self.flags());
        packet.set_mac(self.mac);
        packet.set_verb_byte(self.verb_byte());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ECHO_SALSA: &str = "0123456789abcdef608938c4407c2dfee12c88acf2eeb375579af7158b80be\
                              7323a269b862b01af3d0d395d12ea97ff4dfd7";

    #[test]
    fn view_reads_reference_header() {
        let bytes = crate::hex::decode(ECHO_SALSA).unwrap();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            p.packet_id(),
            [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        );
        assert_eq!(p.packet_id_u64(), 0x0123_4567_89ab_cdef);
        assert_eq!(p.destination().to_string(), "608938c440");
        assert_eq!(p.source().to_string(), "7c2dfee12c");
        assert_eq!(p.cipher(), Cipher::Salsa2012Poly1305);
        assert_eq!(p.hops(), 0);
        assert!(!p.fragmented());
        assert_eq!(p.mac(), [0xac, 0xf2, 0xee, 0xb3, 0x75, 0x57, 0x9a, 0xf7]);
        assert_eq!(p.payload().len(), bytes.len() - HEADER_LEN);
        let h = PacketHeader::parse(&bytes).unwrap();
        assert_eq!(h, PacketHeader::from_packet(&p));
        let mut out = Vec::new();
        h.emit(&mut out);
        assert_eq!(out, bytes[..HEADER_LEN]);
    }

    #[test]
    fn setters_touch_only_their_bits() {
        let mut bytes = [0u8; 40];
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_cipher(Cipher::Salsa2012Poly1305);
        assert_eq!(p.flags(), 0x88);
        p.set_fragmented(true);
        p.set_hops(9);
        assert_eq!(p.flags(), 0xc9);
        p.set_cipher(Cipher::AesGmacSiv);
        assert_eq!(p.flags(), 0x59);
        p.set_fragmented(false);
        assert_eq!((p.hops(), p.fragmented()), (1, false));
        p.set_verb(Verb::MulticastLike);
        p.set_compressed(true);
        assert_eq!(p.verb_byte(), 0x89);
        p.set_verb(Verb::Frame);
        assert_eq!((p.verb(), p.compressed()), (Verb::Frame, true));
        p.set_compressed(false);
        assert_eq!(p.verb_byte(), 0x06);
        p.payload_mut()[0] = 7;
        p.set_source(Address::from_u64(0x7c2dfee12c));
        p.set_destination(Address::from_u64(0x608938c440));
        assert_eq!(p.source().to_u64(), 0x7c2dfee12c);
        assert_eq!(p.destination().to_u64(), 0x608938c440);
        assert_eq!(bytes[HEADER_LEN], 7);
    }

    #[test]
    fn bounds_are_checked() {
        assert_eq!(
            Packet::new_checked(&[0u8; 27][..]),
            Err(Error::Truncated("packet header"))
        );
        assert!(Packet::new_checked(&[0u8; 28][..]).is_ok());
        assert!(Packet::new_checked(vec![0u8; MAX_PACKET_LEN]).is_ok());
        assert_eq!(
            Packet::new_checked(vec![0u8; MAX_PACKET_LEN + 1]),
            Err(Error::TooLarge("packet"))
        );
        assert!(PacketHeader::parse(&[0u8; 27]).is_err());
    }

    #[test]
    fn classification_follows_dispatch_order() {
        assert_eq!(classify(&[]), Datagram::Runt);
        assert_eq!(classify(&[0]), Datagram::Runt);
        assert_eq!(classify(&[0xff; 13]), Datagram::Beacon);
        assert_eq!(classify(&[0xff; 16]), Datagram::Runt);
        assert_eq!(classify(&[0xff; 17]), Datagram::Fragment);
        assert_eq!(classify(&[0; 27]), Datagram::Runt);
        assert_eq!(classify(&[0; 28]), Datagram::Packet);
        let mut frag_like = [0u8; 100];
        frag_like[13] = 0xff;
        assert_eq!(classify(&frag_like), Datagram::Fragment);
    }

    fn any_cipher() -> impl Strategy<Value = Cipher> {
        (0u8..8).prop_map(|n| Cipher::from_flags(n << 3))
    }

    proptest! {
        #[test]
        fn header_round_trips(
            packet_id: [u8; 8],
            dest in 0u64..(1 << 40),
            src in 0u64..(1 << 40),
            cipher in any_cipher(),
            fragmented: bool,
            hops in 0u8..8,
            mac: [u8; 8],
            verb in 0u8..32,
            compressed: bool,
        ) {
            let h = PacketHeader {
                packet_id,
                destination: Address::from_u64(dest),
                source: Address::from_u64(src),
                cipher,
                fragmented,
                hops,
                mac,
                verb: Verb::from_byte(verb),
                compressed,
            };
            let mut out = Vec::new();
            h.emit(&mut out);
            prop_assert_eq!(out.len(), HEADER_LEN);
            prop_assert_eq!(PacketHeader::parse(&out), Ok(h));
            let mut buf = [0u8; HEADER_LEN];
            let mut view = Packet::new_checked(&mut buf[..]).unwrap();
            h.emit_into(&mut view);
            prop_assert_eq!(PacketHeader::from_packet(&view), h);
            prop_assert_eq!(&buf[..], &out[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = classify(&data);
            let _ = PacketHeader::parse(&data);
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let h = PacketHeader::from_packet(&p);
                prop_assert_eq!(PacketHeader::parse(&data), Ok(h));
                prop_assert_eq!(p.payload().len(), data.len() - HEADER_LEN);
            }
        }
    }
}
