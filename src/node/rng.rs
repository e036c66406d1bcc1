//! The node's own random generator, used for packet ids, the key of the rate-limit hash and
//! random choices among endpoints. It is per node (nothing process-global, H5.6) and can be
//! seeded so simulations are reproducible.
//!
//! It is a cryptographic generator (the Salsa20/12 keystream under a 256-bit key from the
//! OS): packet ids are visible on the wire, and a linear generator would let an observer
//! predict the next ids and the rate limiter's hash key from them. Seeded runs (tests, the
//! simulator) expand the seed into the key instead.

use salsa20::Salsa12;
use salsa20::cipher::{KeyIvInit, StreamCipher};

/// A Salsa20/12 keystream read 64 bytes at a time.
pub(crate) struct Rng {
    stream: Salsa12,
    block: [u8; 64],
    used: usize,
}

impl core::fmt::Debug for Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rng(..)")
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`, or keyed from the operating system when `None`.
    pub(crate) fn new(seed: Option<u64>) -> Rng {
        let mut key = [0u8; 32];
        match seed {
            Some(mut state) => {
                for chunk in key.chunks_exact_mut(8) {
                    chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
                }
            }
            None => crate::crypto::c25519::random_bytes(&mut key),
        }
        let stream = Salsa12::new(&key.into(), &[0u8; 8].into());
        zeroize::Zeroize::zeroize(&mut key);
        Rng {
            stream,
            block: [0; 64],
            used: 64,
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        if self.used + 8 > self.block.len() {
            self.block = [0; 64];
            self.stream.apply_keystream(&mut self.block);
            self.used = 0;
        }
        let mut out = [0u8; 8];
        out.copy_from_slice(&self.block[self.used..self.used + 8]);
        self.used += 8;
        u64::from_le_bytes(out)
    }

    /// A uniformly distributed index below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_generators_repeat_and_differ() {
        let mut a = Rng::new(Some(7));
        let mut b = Rng::new(Some(7));
        let mut c = Rng::new(Some(8));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(None);
        assert_eq!(r.below(0), 0);
        for n in 1..50 {
            assert!(r.below(n) < n);
        }
    }
}
