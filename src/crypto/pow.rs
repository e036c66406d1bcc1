//! The memory-hard address derivation ("hashcash") that binds a 40-bit address to a public
//! key: SHA-512, then a 2 MiB Salsa20/20-filled buffer walked with data-dependent swaps.

use salsa20::Salsa20;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha512};

use crate::wire::Address;

use super::c25519::PUBLIC_LEN;

const MEMORY: usize = 2_097_152;
const WORDS: usize = MEMORY / 8;

/// Computes the 64-byte identity digest of a combined public key. `scratch` is resized to
/// 2 MiB and may be reused across calls (identity generation tries many keys).
pub fn identity_digest(public: &[u8; PUBLIC_LEN], scratch: &mut Vec<u8>) -> [u8; 64] {
    let mut digest = [0u8; 64];
    digest.copy_from_slice(&Sha512::digest(public));

    let mut key = [0u8; 32];
    key.copy_from_slice(&digest[..32]);
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&digest[32..40]);
    let mut stream = Salsa20::new(&key.into(), &nonce.into());

    scratch.clear();
    scratch.resize(MEMORY, 0);
    let mem = scratch.as_mut_slice();
    // Block k of the reference is "copy block k-1, then XOR the next keystream block", i.e.
    // the XOR of keystream blocks 0..=k. One bulk keystream call plus a running XOR gives the
    // same bytes with far less per-call overhead.
    stream.apply_keystream(mem);
    for k in 1..MEMORY / 64 {
        let (done, rest) = mem.split_at_mut(k * 64);
        for (b, p) in rest[..64].iter_mut().zip(&done[(k - 1) * 64..]) {
            *b ^= *p;
        }
    }

    let word = |mem: &[u8], i: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&mem[i * 8..i * 8 + 8]);
        u64::from_be_bytes(w)
    };
    // The swap phase consumes 64 keystream bytes per step; draw them in large batches.
    const BATCH_STEPS: usize = 256;
    let mut keystream = [0u8; 64 * BATCH_STEPS];
    let mut i = 0;
    while i < WORDS {
        keystream.fill(0);
        stream.apply_keystream(&mut keystream);
        for block in keystream.chunks_exact(64) {
            // Both indices are read before the swap, exactly as the reference does.
            let idx1 = (word(mem, i) % 8) as usize;
            let idx2 = (word(mem, i + 1) % WORDS as u64) as usize;
            let mut tmp = [0u8; 8];
            tmp.copy_from_slice(&mem[idx2 * 8..idx2 * 8 + 8]);
            mem[idx2 * 8..idx2 * 8 + 8].copy_from_slice(&digest[idx1 * 8..idx1 * 8 + 8]);
            digest[idx1 * 8..idx1 * 8 + 8].copy_from_slice(&tmp);
            for (d, k) in digest.iter_mut().zip(block) {
                *d ^= *k;
            }
            i += 2;
        }
    }
    digest
}

/// The address a digest yields, if the digest meets the work criterion (`d[0] < 17`) and the
/// address is not reserved.
pub fn address_from_digest(digest: &[u8; 64]) -> Option<Address> {
    if digest[0] >= 17 {
        return None;
    }
    let address = Address::from_slice(&digest[59..]).ok()?;
    (!address.is_reserved()).then_some(address)
}
