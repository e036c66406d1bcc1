//! Ciphers 0 and 1 of ZeroTier V1 (Salsa20/12 + Poly1305) and the HELLO `cryptField`.
//!
//! Per packet, the first 32 bytes of the shared key are "mangled" with the header (IV, both
//! addresses, flags without hop bits, and the packet length little-endian) into a Salsa20/12
//! key; the nonce is the 8-byte packet id. Keystream bytes 0..32 are the Poly1305 one-time key,
//! bytes 32..64 are discarded, and cipher 1 encrypts `pkt[27..]` from keystream byte 64. The
//! MAC is the first 8 bytes of Poly1305 over `pkt[27..]` as it is on the wire (ciphertext for
//! cipher 1), stored at `pkt[19..27]`.
//!
//! Callers (`armor.rs`) check the packet length bounds first; these functions assume
//! `HEADER_LEN <= packet.len() <= MAX_PACKET_LEN` and never panic otherwise (they use checked
//! slicing and treat a short packet as a MAC failure).

use poly1305::Poly1305;
use poly1305::universal_hash::KeyInit;
use salsa20::Salsa12;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::wire::packet::{FLAGS_HOPS_MASK, IDX_FLAGS, IDX_MAC, IDX_PACKET_ID, IDX_VERB};

/// Length of the truncated Poly1305 tag stored in the header.
const MAC_LEN: usize = 8;

/// Builds the per-packet Salsa20/12 cipher, positioned at keystream byte 0.
fn packet_cipher(key: &[u8; 32], packet: &[u8]) -> Option<Salsa12> {
    let header = packet.get(..IDX_MAC)?;
    let mut mangled = *key;
    // IV, destination and source are XORed in as they are.
    for (k, h) in mangled.iter_mut().zip(&header[..IDX_FLAGS]) {
        *k ^= h;
    }
    // Flags without the hop count, which relays change in flight.
    mangled[IDX_FLAGS] ^= header[IDX_FLAGS] & !FLAGS_HOPS_MASK;
    // The total packet length, little-endian; packets are at most 10,024 bytes.
    let len = packet.len();
    mangled[19] ^= (len & 0xff) as u8;
    mangled[20] ^= ((len >> 8) & 0xff) as u8;

    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&header[IDX_PACKET_ID..IDX_PACKET_ID + 8]);
    let cipher = Salsa12::new(&mangled.into(), &nonce.into());
    mangled.zeroize();
    Some(cipher)
}

/// Takes the Poly1305 key from keystream block 0 and leaves the cipher at byte 64.
fn poly1305_key(cipher: &mut Salsa12) -> Poly1305 {
    let mut block0 = [0u8; 64];
    cipher.apply_keystream(&mut block0);
    let mut key = [0u8; 32];
    key.copy_from_slice(&block0[..32]);
    let mac = Poly1305::new(&key.into());
    key.zeroize();
    block0.zeroize();
    mac
}

/// The 8-byte truncated tag over `pkt[27..]`.
fn truncated_tag(mac: Poly1305, packet: &[u8]) -> [u8; MAC_LEN] {
    let body = packet.get(IDX_VERB..).unwrap_or_default();
    let tag = mac.compute_unpadded(body);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag[..MAC_LEN]);
    out
}

/// Armors with cipher 0 (`encrypt == false`) or 1. The flags byte must already hold the final
/// cipher bits: they are part of the key.
pub(crate) fn armor(key: &[u8; 32], packet: &mut [u8], encrypt: bool) {
    let Some(mut cipher) = packet_cipher(key, packet) else {
        return;
    };
    let mac = poly1305_key(&mut cipher);
    if encrypt && let Some(body) = packet.get_mut(IDX_VERB..) {
        cipher.apply_keystream(body);
    }
    let tag = truncated_tag(mac, packet);
    if let Some(field) = packet.get_mut(IDX_MAC..IDX_MAC + MAC_LEN) {
        field.copy_from_slice(&tag);
    }
}

/// Checks the MAC and, for cipher 1 (`decrypt == true`), decrypts `pkt[27..]` in place.
/// Returns `false` on a MAC mismatch, in which case nothing was written.
pub(crate) fn dearmor(key: &[u8; 32], packet: &mut [u8], decrypt: bool) -> bool {
    let Some(mut cipher) = packet_cipher(key, packet) else {
        return false;
    };
    let mac = poly1305_key(&mut cipher);
    let expected = truncated_tag(mac, packet);
    let Some(received) = packet.get(IDX_MAC..IDX_MAC + MAC_LEN) else {
        return false;
    };
    if !bool::from(expected.ct_eq(received)) {
        return false;
    }
    if decrypt && let Some(body) = packet.get_mut(IDX_VERB..) {
        cipher.apply_keystream(body);
    }
    true
}

/// HELLO `cryptField`: Salsa20/12 with the unmangled key and the packet id (low 3 bits of the
/// last byte cleared) as nonce, keystream from byte 0, XORed over `region`.
pub(crate) fn crypt_field(key: &[u8; 32], packet_id: [u8; 8], region: &mut [u8]) {
    let mut nonce = packet_id;
    nonce[7] &= 0xf8;
    let mut cipher = Salsa12::new(key.into(), &nonce.into());
    cipher.apply_keystream(region);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_packet_is_rejected_not_panicking() {
        let key = [1u8; 32];
        let mut short = [0u8; 10];
        assert!(!dearmor(&key, &mut short, true));
        armor(&key, &mut short, true);
        assert_eq!(short, [0u8; 10]);
    }

    #[test]
    fn cipher1_round_trip_and_mac_covers_ciphertext() {
        let key = [9u8; 32];
        let mut packet = [0u8; 60];
        for (i, b) in packet.iter_mut().enumerate() {
            *b = i as u8;
        }
        packet[IDX_FLAGS] = 0x88;
        let plain = packet;
        armor(&key, &mut packet, true);
        assert_ne!(packet[IDX_VERB..], plain[IDX_VERB..]);
        let armored = packet;
        assert!(dearmor(&key, &mut packet, true));
        assert_eq!(packet[IDX_VERB..], plain[IDX_VERB..]);

        let mut tampered = armored;
        tampered[40] ^= 1;
        assert!(!dearmor(&key, &mut tampered, true));
        let mut expect = armored;
        expect[40] ^= 1;
        assert_eq!(tampered, expect);
    }

    #[test]
    fn hop_bits_do_not_change_the_key() {
        let key = [3u8; 32];
        let mut packet = [0x55u8; 40];
        packet[IDX_FLAGS] = 0x00;
        armor(&key, &mut packet, false);
        packet[IDX_FLAGS] |= 0x07;
        assert!(dearmor(&key, &mut packet, false));
    }
}
