//! The NIST SP 800-108 counter-mode KBKDF with HMAC-SHA-384 that ZeroTier V1 uses to derive
//! the two AES-256 keys of AES-GMAC-SIV (cipher 3) from a peer's 48-byte shared key.
//!
//! The fixed input is `u32 BE 0 ‖ 'Z' 'T' label ‖ 0x00 ‖ context 0x00 ‖ u32 BE 384`; one HMAC
//! call yields all 48 bytes of output, of which the AES key is the first 32.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha384;
use zeroize::Zeroize;

use super::SharedKey;

/// Label of the GMAC key `K0` (ASCII `'0'`).
pub const LABEL_AES_GMAC_SIV_K0: u8 = b'0';
/// Label of the ECB/CTR key `K1` (ASCII `'1'`).
pub const LABEL_AES_GMAC_SIV_K1: u8 = b'1';

/// Length of one KBKDF output (one SHA-384 block of output).
pub const KBKDF_OUTPUT_LEN: usize = 48;

/// Derives the 48-byte key for `label` from the shared key. Callers zeroize the result.
pub fn kbkdf(shared: &SharedKey, label: u8) -> [u8; KBKDF_OUTPUT_LEN] {
    // Counter (always 0: one block of output is enough), the "ZT" prefix, the label, a zero
    // separator, the (empty, zero) context and the output length in bits.
    let message: [u8; 13] = [0, 0, 0, 0, b'Z', b'T', label, 0, 0, 0x00, 0x00, 0x01, 0x80];
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the function
    // total without a panic path.
    let Ok(mut mac) = <Hmac<Sha384> as KeyInit>::new_from_slice(shared.as_bytes()) else {
        return [0u8; KBKDF_OUTPUT_LEN];
    };
    mac.update(&message);
    let mut tag = mac.finalize().into_bytes();
    let mut out = [0u8; KBKDF_OUTPUT_LEN];
    out.copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_different_keys() {
        let shared = SharedKey::from_bytes([7u8; 48]);
        assert_ne!(
            kbkdf(&shared, LABEL_AES_GMAC_SIV_K0),
            kbkdf(&shared, LABEL_AES_GMAC_SIV_K1)
        );
    }
}
