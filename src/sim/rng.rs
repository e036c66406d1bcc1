//! The simulator's own deterministic random number generator (splitmix64).
//!
//! Every random decision the simulator makes (loss, jitter, duplication, reordering) is drawn
//! from one explicitly seeded [`SimRng`], in a fixed order, so a seed names a run. It is not
//! cryptographic and must never be used for keys.

/// A splitmix64 generator: tiny, fast, full-period over `u64`, and identical on every platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    state: u64,
}

/// 2^-53: scales the top 53 bits of a draw into `[0, 1)` exactly.
const UNIT_SCALE: f64 = 1.0 / (1u64 << 53) as f64;

impl SimRng {
    /// A generator whose whole output sequence is determined by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `[0, bound)`, or 0 when `bound` is 0 (multiply-high reduction: one draw,
    /// bias below 2^-64 * bound, which is irrelevant for a network model).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A value in `[low, high]` (inclusive); `low` when `high <= low`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(), // the whole u64 range
        }
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * UNIT_SCALE
    }

    /// True with probability `p`. `p <= 0` (or NaN) and `p >= 1` consume no randomness, so a
    /// link without loss does not perturb the draws of the rest of the run.
    pub fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        self.unit() < p
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// An independent generator derived from this one (for a host or a test that needs its own
    /// stream without consuming a variable number of the simulator's draws).
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_sequence() {
        // Published splitmix64 outputs for seed 0.
        let mut rng = SimRng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let a: Vec<u64> = {
            let mut r = SimRng::new(42);
            (0..16).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SimRng::new(42);
            (0..16).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SimRng::new(43);
            (0..16).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_and_between_stay_in_range() {
        let mut rng = SimRng::new(7);
        assert_eq!(rng.below(0), 0);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            let v = rng.between(5, 9);
            assert!((5..=9).contains(&v));
        }
        assert_eq!(rng.between(9, 5), 9);
        let _ = rng.between(0, u64::MAX);
    }

    #[test]
    fn chance_extremes_consume_nothing() {
        let mut rng = SimRng::new(1);
        let before = rng.clone();
        assert!(!rng.chance(0.0));
        assert!(!rng.chance(-1.0));
        assert!(!rng.chance(f64::NAN));
        assert!(rng.chance(1.0));
        assert_eq!(rng, before);
    }

    #[test]
    fn chance_is_roughly_calibrated() {
        let mut rng = SimRng::new(99);
        let hits = (0..100_000).filter(|_| rng.chance(0.25)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }

    #[test]
    fn fill_covers_odd_lengths() {
        let mut rng = SimRng::new(3);
        let mut buf = [0u8; 13];
        rng.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }
}
