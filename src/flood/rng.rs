//! The flood's random source: SplitMix64, seeded from the operating system. Fast and
//! unpredictable enough to vary hostile packets; never used for keys (identities and key
//! agreement use the crypto module's generators).

/// A small, fast generator for packet contents, ids and lengths.
#[derive(Clone, Debug)]
pub struct FloodRng {
    state: u64,
}

impl FloodRng {
    /// Seeded from the operating system (a fixed seed if it has none to give).
    pub fn from_os() -> FloodRng {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            seed = 0x5eed_f100d_u64.to_le_bytes();
        }
        FloodRng::seeded(u64::from_le_bytes(seed))
    }

    /// A reproducible sequence.
    pub fn seeded(seed: u64) -> FloodRng {
        FloodRng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `low..=high` (`low` if the range is empty).
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        if high <= low {
            return low;
        }
        let span = (high - low) as u64 + 1;
        low + (self.next_u64() % span) as usize
    }

    /// Picks one element (`None` for an empty slice).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.range(0, items.len() - 1))
    }

    /// Appends `len` random bytes.
    pub fn extend(&mut self, out: &mut Vec<u8>, len: usize) {
        let mut left = len;
        while left > 0 {
            let word = self.next_u64().to_le_bytes();
            let take = left.min(word.len());
            out.extend_from_slice(&word[..take]);
            left -= take;
        }
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_extend_stay_in_bounds() {
        let mut rng = FloodRng::seeded(7);
        for _ in 0..1000 {
            let v = rng.range(3, 9);
            assert!((3..=9).contains(&v));
        }
        assert_eq!(rng.range(5, 5), 5);
        assert_eq!(rng.range(6, 2), 6);
        let mut out = Vec::new();
        rng.extend(&mut out, 13);
        assert_eq!(out.len(), 13);
        assert!(rng.pick::<u8>(&[]).is_none());
    }
}
