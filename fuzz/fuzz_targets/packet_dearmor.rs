//! Fuzz target: `crypto::dearmor` on arbitrary datagrams with a fixed key, and armor/dearmor
//! round trips on arbitrary plaintext packets.
//!
//! Invariants: no panic; a failed dearmor leaves the buffer unchanged (H3.6); a successful
//! dearmor re-armors (cipher 0/1 with canonical flags reproduce the input exactly); anything
//! armored dearmors back to its plaintext.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::crypto::{SharedKey, SymmetricKey, armor, dearmor};
use ztrs::wire::Cipher;
use ztrs::wire::packet::{FLAG_ENCRYPTED_LEGACY, FLAGS_CIPHER_MASK, IDX_FLAGS, IDX_VERB};

/// `shared_key_48_A_to_B` from `shared/vectors/reference/wire_vectors.txt` (a test key), so
/// the reference vectors make useful seeds.
const SHARED_KEY: [u8; 48] = [
    0x6c, 0xcc, 0x50, 0xdf, 0x9f, 0x93, 0x3e, 0xae, 0xa5, 0x88, 0x6e, 0x9a, 0x22, 0x87, 0xa6, 0xbb,
    0xf2, 0x12, 0x59, 0x67, 0xe7, 0x5c, 0x0d, 0xe9, 0xa6, 0x8e, 0xf9, 0x4f, 0x74, 0xda, 0xda, 0x2b,
    0xee, 0x46, 0x69, 0x91, 0x13, 0x81, 0x31, 0xe6, 0x6b, 0x54, 0xf7, 0xfb, 0x27, 0x1d, 0x00, 0x3d,
];

fuzz_target!(|data: &[u8]| {
    let key = SymmetricKey::new(&SharedKey::from_bytes(SHARED_KEY));

    // 1. Dearmor the datagram as received.
    let mut buf = data.to_vec();
    match dearmor(&mut buf, &key) {
        Err(_) => assert_eq!(buf, data, "failed dearmor changed the buffer"),
        Ok(cipher) => {
            let plain = buf.clone();
            let flags = data[IDX_FLAGS];
            let canonical =
                (flags & !(FLAGS_CIPHER_MASK | FLAG_ENCRYPTED_LEGACY)) | cipher.flag_bits();
            armor(&mut buf, &key, cipher).expect("re-armor of a dearmored packet");
            if cipher != Cipher::AesGmacSiv && flags == canonical {
                assert_eq!(buf, data, "re-armor differs from the original");
            }
            assert_eq!(dearmor(&mut buf, &key), Ok(cipher));
            assert_eq!(buf[IDX_VERB..], plain[IDX_VERB..]);
        }
    }

    // 2. Treat the input as a plaintext packet: byte 0 picks the cipher.
    if let Some((&selector, packet)) = data.split_first() {
        let cipher = match selector % 3 {
            0 => Cipher::Poly1305None,
            1 => Cipher::Salsa2012Poly1305,
            _ => Cipher::AesGmacSiv,
        };
        let mut buf = packet.to_vec();
        if armor(&mut buf, &key, cipher).is_ok() {
            assert_eq!(dearmor(&mut buf, &key), Ok(cipher));
            assert_eq!(buf[IDX_VERB..], packet[IDX_VERB..]);
        } else {
            assert_eq!(buf, packet, "failed armor changed the buffer");
        }
    }
});
