//! Cipher 3 of ZeroTier V1: AES-GMAC-SIV over a packet, in place.
//!
//! Two AES-256 keys come from the KBKDF: `k0` authenticates (GMAC), `k1` turns the tag into the
//! synthetic IV (one ECB block) and encrypts (CTR, 32-bit big-endian counter).
//!
//! ```text
//! T    = GMAC_k0(nonce = id(8) ‖ 0⁴, data = AAD(11: dest, source, flags & 0xf8) ‖ 0⁵ ‖ P)
//! B    = AES_k1(id(8) ‖ (T[0..8] ^ T[8..16]))     → B[0..8] is the new packet id,
//!                                                   B[8..16] the MAC field
//! P'   = AES-CTR_k1(iv = B with B[12] &= 0x7f)(P)
//! ```
//!
//! The GHASH key `H = AES_k0(0¹²⁸)` and both key schedules are computed once per peer.

use aes::Aes256;
use aes::cipher;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipher};
use ctr::{CtrCore, flavors};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::wire::packet::{FLAGS_HOPS_MASK, IDX_DEST, IDX_FLAGS, IDX_MAC, IDX_PACKET_ID, IDX_VERB};

/// AES-CTR with a 32-bit big-endian counter in bytes 12..16, driven by a borrowed key schedule
/// so no per-packet key expansion happens.
type Ctr32<'a> = cipher::StreamCipherCoreWrapper<CtrCore<&'a Aes256, flavors::Ctr32BE>>;

/// Bytes of header covered as AAD: destination, source, flags.
const AAD_LEN: usize = IDX_MAC - IDX_DEST;

/// The per-peer AES-GMAC-SIV state: two expanded AES-256 keys and the GHASH key.
#[derive(Clone)]
pub(crate) struct AesGmacSiv {
    k0: Aes256,
    k1: Aes256,
    ghash: GHash,
}

impl AesGmacSiv {
    /// Expands `k0`/`k1` (the first 32 bytes of each KBKDF output).
    pub(crate) fn new(k0: &[u8; 32], k1: &[u8; 32]) -> Self {
        let k0 = Aes256::new(k0.into());
        let k1 = Aes256::new(k1.into());
        let mut h = [0u8; 16].into();
        k0.encrypt_block(&mut h);
        let ghash = GHash::new(&h);
        h.as_mut_slice().zeroize();
        AesGmacSiv { k0, k1, ghash }
    }

    /// `T[0..8] ^ T[8..16]` of the GMAC tag over the packet's AAD and `payload`.
    fn folded_tag(&self, iv: &[u8; 8], aad: &[u8; AAD_LEN], payload: &[u8]) -> [u8; 8] {
        let mut ghash = self.ghash.clone();
        // AAD ‖ 0⁵ is exactly one padded 16-byte block, and the payload is padded once at its
        // end, which is the same stream GCM sees for `aad = AAD ‖ 0⁵ ‖ P` and no ciphertext.
        ghash.update_padded(aad);
        ghash.update_padded(payload);
        let aad_bits = ((16 + payload.len()) as u64) * 8;
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&aad_bits.to_be_bytes());
        ghash.update(&[lengths.into()]);
        let mut tag = ghash.finalize();

        // GCM's J0 for a 96-bit nonce: nonce ‖ 0x00000001.
        let mut j0 = [0u8; 16];
        j0[..8].copy_from_slice(iv);
        j0[15] = 1;
        let mut mask = j0.into();
        self.k0.encrypt_block(&mut mask);
        let mut folded = [0u8; 8];
        for (i, out) in folded.iter_mut().enumerate() {
            *out = (tag[i] ^ mask[i]) ^ (tag[i + 8] ^ mask[i + 8]);
        }
        tag.as_mut_slice().zeroize();
        folded
    }

    /// Runs AES-CTR under `k1` from the synthetic IV `siv` over `data`.
    fn ctr_apply(&self, siv: &[u8; 16], data: &mut [u8]) {
        let mut iv = *siv;
        iv[12] &= 0x7f;
        let mut ctr = Ctr32::from_core(CtrCore::inner_iv_init(&self.k1, &iv.into()));
        ctr.apply_keystream(data);
    }

    /// Authenticates and encrypts `packet` in place (flags already final). Rewrites the id.
    pub(crate) fn encrypt(&self, packet: &mut [u8]) {
        let Some((iv, aad)) = header_parts(packet) else {
            return;
        };
        let Some(payload) = packet.get_mut(IDX_VERB..) else {
            return;
        };
        let folded = self.folded_tag(&iv, &aad, payload);
        let mut siv = [0u8; 16];
        siv[..8].copy_from_slice(&iv);
        siv[8..].copy_from_slice(&folded);
        let mut block = siv.into();
        self.k1.encrypt_block(&mut block);
        siv.copy_from_slice(&block);
        self.ctr_apply(&siv, payload);
        if let Some(id) = packet.get_mut(IDX_PACKET_ID..IDX_PACKET_ID + 8) {
            id.copy_from_slice(&siv[..8]);
        }
        if let Some(mac) = packet.get_mut(IDX_MAC..IDX_VERB) {
            mac.copy_from_slice(&siv[8..]);
        }
    }

    /// Decrypts and authenticates `packet` in place. On failure the payload is re-encrypted,
    /// so the buffer is exactly what it was (H3.6); the header is never written.
    pub(crate) fn decrypt(&self, packet: &mut [u8]) -> bool {
        let Some((wire_id, aad)) = header_parts(packet) else {
            return false;
        };
        let Some(mac) = packet.get(IDX_MAC..IDX_VERB) else {
            return false;
        };
        let mut siv = [0u8; 16];
        siv[..8].copy_from_slice(&wire_id);
        siv[8..].copy_from_slice(mac);
        let Some(payload) = packet.get_mut(IDX_VERB..) else {
            return false;
        };
        self.ctr_apply(&siv, payload);

        let mut block = siv.into();
        self.k1.decrypt_block(&mut block);
        let mut iv = [0u8; 8];
        iv.copy_from_slice(&block[..8]);
        let expected = &block[8..];
        let folded = self.folded_tag(&iv, &aad, payload);
        if bool::from(folded.ct_eq(expected)) {
            true
        } else {
            // CTR is its own inverse: restore the ciphertext.
            self.ctr_apply(&siv, payload);
            false
        }
    }
}

/// The packet id and the AAD (with hop bits cleared: relays may change them).
fn header_parts(packet: &[u8]) -> Option<([u8; 8], [u8; AAD_LEN])> {
    let id = packet.get(IDX_PACKET_ID..IDX_PACKET_ID + 8)?;
    let aad_bytes = packet.get(IDX_DEST..IDX_MAC)?;
    let mut iv = [0u8; 8];
    iv.copy_from_slice(id);
    let mut aad = [0u8; AAD_LEN];
    aad.copy_from_slice(aad_bytes);
    aad[IDX_FLAGS - IDX_DEST] &= !FLAGS_HOPS_MASK;
    Some((iv, aad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::AeadInOut;

    /// GMAC from `aes` + `ghash` equals AES-256-GCM with the data as AAD and no plaintext.
    #[test]
    fn gmac_matches_aes_gcm() {
        let k0 = [0x42u8; 32];
        let siv = AesGmacSiv::new(&k0, &[0x17u8; 32]);
        let iv = *b"\x01\x23\x45\x67\x89\xab\xcd\xef";
        let aad: [u8; AAD_LEN] = *b"destsourcef";
        for len in [0usize, 1, 15, 16, 17, 100] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let folded = siv.folded_tag(&iv, &aad, &payload);

            let gcm = Aes256Gcm::new(&k0.into());
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&iv);
            let mut data = aad.to_vec();
            data.extend_from_slice(&[0u8; 5]);
            data.extend_from_slice(&payload);
            let mut empty: [u8; 0] = [];
            let tag = gcm
                .encrypt_inout_detached(&nonce.into(), &data, (&mut empty[..]).into())
                .expect("gcm");
            let mut expect = [0u8; 8];
            for i in 0..8 {
                expect[i] = tag[i] ^ tag[i + 8];
            }
            assert_eq!(folded, expect, "payload length {len}");
        }
    }

    #[test]
    fn round_trip_and_failure_restores() {
        let siv = AesGmacSiv::new(&[1u8; 32], &[2u8; 32]);
        let mut packet: Vec<u8> = (0..100u8).collect();
        packet[IDX_FLAGS] = 0x18;
        let plain = packet.clone();
        siv.encrypt(&mut packet);
        let armored = packet.clone();
        assert_ne!(armored[..8], plain[..8]);
        assert!(siv.decrypt(&mut packet));
        assert_eq!(packet[IDX_VERB..], plain[IDX_VERB..]);
        assert_eq!(packet[..IDX_VERB], armored[..IDX_VERB]);

        let mut bad = armored.clone();
        bad[50] ^= 0x80;
        let before = bad.clone();
        assert!(!siv.decrypt(&mut bad));
        assert_eq!(bad, before);
    }
}
