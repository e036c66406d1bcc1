//! Packet armor: authenticate (and encrypt) an assembled ZeroTier V1 packet in place with the
//! per-peer key, and the reverse. Owns [`SymmetricKey`], the per-peer key material.
//!
//! Supported: cipher 0 (Poly1305, no encryption; HELLO), 1 (Salsa20/12 + Poly1305) and 3
//! (AES-GMAC-SIV). Cipher 2 (trusted path) carries no MAC and is the caller's business.
//!
//! Contract (protocol reference 3.7, hardening H2.9 and H3.6):
//! - length bounds are checked before any crypto;
//! - the hop bits of the flags byte are never authenticated, so relays may change them;
//! - `dearmor` leaves the buffer byte-for-byte unchanged on every error;
//! - nothing is allocated per packet; key schedules are expanded once in [`SymmetricKey::new`].

use core::fmt;

use zeroize::Zeroize;

use super::SharedKey;
use super::aes_gmac_siv::AesGmacSiv;
use super::kbkdf::{LABEL_AES_GMAC_SIV_K0, LABEL_AES_GMAC_SIV_K1, kbkdf};
use super::salsa_poly1305;
use crate::wire::packet::{
    Cipher, FLAG_ENCRYPTED_LEGACY, FLAGS_CIPHER_MASK, HEADER_LEN, IDX_FLAGS, MAX_PACKET_LEN,
};

/// The key material for one peer: the 48-byte shared key (ciphers 0/1 and `cryptField` use its
/// first 32 bytes) and the expanded AES-256 keys `K0`/`K1` of cipher 3.
///
/// The shared key is zeroized on drop. The AES key schedules are zeroized on drop only when the
/// `aes` crate is built with its `zeroize` feature (see the crate manifest).
#[derive(Clone)]
pub struct SymmetricKey {
    shared: SharedKey,
    salsa_key: [u8; 32],
    aes: AesGmacSiv,
}

impl SymmetricKey {
    /// Derives `K0`/`K1` (KBKDF, protocol reference 3.4) and expands the AES keys once.
    pub fn new(shared: &SharedKey) -> Self {
        let mut k0 = kbkdf(shared, LABEL_AES_GMAC_SIV_K0);
        let mut k1 = kbkdf(shared, LABEL_AES_GMAC_SIV_K1);
        let mut k0_aes = [0u8; 32];
        let mut k1_aes = [0u8; 32];
        k0_aes.copy_from_slice(&k0[..32]);
        k1_aes.copy_from_slice(&k1[..32]);
        let aes = AesGmacSiv::new(&k0_aes, &k1_aes);
        k0.zeroize();
        k1.zeroize();
        k0_aes.zeroize();
        k1_aes.zeroize();

        let mut salsa_key = [0u8; 32];
        salsa_key.copy_from_slice(&shared.as_bytes()[..32]);
        SymmetricKey {
            shared: shared.clone(),
            salsa_key,
            aes,
        }
    }

    /// The 48-byte shared key this was built from.
    pub fn shared(&self) -> &SharedKey {
        &self.shared
    }
}

impl Drop for SymmetricKey {
    fn drop(&mut self) {
        self.salsa_key.zeroize();
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

/// Why a packet could not be armored or dearmored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmorError {
    /// Shorter than the 28-byte header.
    TooShort,
    /// Longer than the largest assembled packet (10,024 bytes).
    TooLong,
    /// The MAC or SIV tag did not verify (wrong key, tampering or corruption).
    BadMac,
    /// Cipher 2 (trusted path) or an undefined suite number.
    UnsupportedCipher(u8),
}

impl fmt::Display for ArmorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArmorError::TooShort => write!(f, "packet shorter than the {HEADER_LEN}-byte header"),
            ArmorError::TooLong => write!(f, "packet longer than {MAX_PACKET_LEN} bytes"),
            ArmorError::BadMac => f.write_str("packet authentication failed"),
            ArmorError::UnsupportedCipher(n) => write!(f, "unsupported cipher suite {n}"),
        }
    }
}

impl std::error::Error for ArmorError {}

fn check_len(packet: &[u8]) -> Result<(), ArmorError> {
    if packet.len() < HEADER_LEN {
        Err(ArmorError::TooShort)
    } else if packet.len() > MAX_PACKET_LEN {
        Err(ArmorError::TooLong)
    } else {
        Ok(())
    }
}

/// Armors an assembled packet in place: the header carries its final flags (including
/// `FLAG_FRAGMENTED`) and hops 0, and the verb byte and payload are already compressed. Sets
/// the cipher bits (and the legacy 0x80 flag iff cipher 1), encrypts, and writes the MAC;
/// cipher 3 also rewrites the packet id, which is then the id replies refer to.
pub fn armor(packet: &mut [u8], key: &SymmetricKey, cipher: Cipher) -> Result<(), ArmorError> {
    check_len(packet)?;
    match cipher {
        Cipher::Poly1305None | Cipher::Salsa2012Poly1305 | Cipher::AesGmacSiv => {}
        other => return Err(ArmorError::UnsupportedCipher(other.number())),
    }
    let flags = packet.get_mut(IDX_FLAGS).ok_or(ArmorError::TooShort)?;
    *flags = (*flags & !(FLAGS_CIPHER_MASK | FLAG_ENCRYPTED_LEGACY)) | cipher.flag_bits();
    match cipher {
        Cipher::Poly1305None => salsa_poly1305::armor(&key.salsa_key, packet, false),
        Cipher::Salsa2012Poly1305 => salsa_poly1305::armor(&key.salsa_key, packet, true),
        _ => key.aes.encrypt(packet),
    }
    Ok(())
}

/// Authenticates and decrypts a packet in place and returns the cipher it used. The header
/// (id, MAC, flags, hop bits) is left as received. On any error the buffer is byte-for-byte
/// what it was before the call. Cipher 2 and undefined suites are `UnsupportedCipher`.
pub fn dearmor(packet: &mut [u8], key: &SymmetricKey) -> Result<Cipher, ArmorError> {
    check_len(packet)?;
    let flags = *packet.get(IDX_FLAGS).ok_or(ArmorError::TooShort)?;
    let cipher = Cipher::from_flags(flags);
    let ok = match cipher {
        Cipher::Poly1305None => salsa_poly1305::dearmor(&key.salsa_key, packet, false),
        Cipher::Salsa2012Poly1305 => salsa_poly1305::dearmor(&key.salsa_key, packet, true),
        Cipher::AesGmacSiv => key.aes.decrypt(packet),
        other => return Err(ArmorError::UnsupportedCipher(other.number())),
    };
    if ok {
        Ok(cipher)
    } else {
        Err(ArmorError::BadMac)
    }
}

/// HELLO `cryptField` (protocol reference 3.5): Salsa20/12 with the first 32 bytes of the
/// shared key unmangled, nonce = packet id with `nonce[7] &= 0xf8`, keystream from offset 0,
/// XORed over `region`. Its own inverse. The sender applies it before [`armor`], the receiver
/// after [`dearmor`].
pub fn crypt_field(key: &SymmetricKey, packet_id: [u8; 8], region: &mut [u8]) {
    salsa_poly1305::crypt_field(&key.salsa_key, packet_id, region);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SymmetricKey {
        SymmetricKey::new(&SharedKey::from_bytes([0x5a; 48]))
    }

    #[test]
    fn length_bounds_come_first() {
        let key = key();
        let mut short = [0u8; HEADER_LEN - 1];
        assert_eq!(dearmor(&mut short, &key), Err(ArmorError::TooShort));
        assert_eq!(
            armor(&mut short, &key, Cipher::AesGmacSiv),
            Err(ArmorError::TooShort)
        );
        let mut long = vec![0u8; MAX_PACKET_LEN + 1];
        assert_eq!(dearmor(&mut long, &key), Err(ArmorError::TooLong));
        assert_eq!(
            armor(&mut long, &key, Cipher::Poly1305None),
            Err(ArmorError::TooLong)
        );
        assert!(long.iter().all(|&b| b == 0));
    }

    #[test]
    fn unsupported_ciphers() {
        let key = key();
        let mut packet = [0u8; HEADER_LEN];
        assert_eq!(
            armor(&mut packet, &key, Cipher::TrustedPath),
            Err(ArmorError::UnsupportedCipher(2))
        );
        packet[IDX_FLAGS] = 2 << 3;
        assert_eq!(
            dearmor(&mut packet, &key),
            Err(ArmorError::UnsupportedCipher(2))
        );
        packet[IDX_FLAGS] = 5 << 3;
        assert_eq!(
            dearmor(&mut packet, &key),
            Err(ArmorError::UnsupportedCipher(5))
        );
    }

    #[test]
    fn flags_set_by_armor() {
        let key = key();
        for (cipher, bits) in [
            (Cipher::Poly1305None, 0x00),
            (Cipher::Salsa2012Poly1305, 0x88),
            (Cipher::AesGmacSiv, 0x18),
        ] {
            let mut packet = [0u8; 40];
            // A stale cipher field and the legacy flag are replaced; the fragment flag stays.
            packet[IDX_FLAGS] = 0x40 | 0x80 | 0x38;
            armor(&mut packet, &key, cipher).expect("armor");
            assert_eq!(packet[IDX_FLAGS], 0x40 | bits);
            assert_eq!(dearmor(&mut packet, &key), Ok(cipher));
        }
    }

    #[test]
    fn crypt_field_is_an_involution() {
        let key = key();
        let mut region = *b"moon list bytes";
        crypt_field(&key, [1, 2, 3, 4, 5, 6, 7, 0xff], &mut region);
        assert_ne!(&region, b"moon list bytes");
        // The low 3 bits of the last id byte do not matter.
        crypt_field(&key, [1, 2, 3, 4, 5, 6, 7, 0xf8], &mut region);
        assert_eq!(&region, b"moon list bytes");
    }
}
