//! The 28-byte ZeroTier packet header and its constants.
//!
//! ```text
//! 0  u64 packet id / IV      8  dest address(5)   13 source address(5)
//! 18 flags: F F C C C H H H  19 MAC (8)           27 verb byte   28.. payload
//! ```

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
