//! Rate limits with fixed memory: a token bucket, a fixed-window counter, and the per source
//! prefix limiter that guards the proof-of-work check of HELLOs from unknown identities (H2.9).
//!
//! The prefix limiter hashes the source's IPv4 /24 or IPv6 /48 with a per-node random key
//! into a fixed table of buckets; colliding prefixes share a bucket, which can only make the
//! limit stricter. Nothing grows with the number of sources.

use std::net::{IpAddr, SocketAddr};

/// A token bucket: up to `burst` events at once, then one per `refill_ms`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    tokens: u32,
    updated: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(burst: u32, now: u64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            updated: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&mut self, now: u64, burst: u32, refill_ms: u64) -> bool {
        let refill_ms = refill_ms.max(1);
        let elapsed = now.saturating_sub(self.updated);
        let earned = elapsed / refill_ms;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(burst);
            // Keep the fractional part of the interval so steady senders are not penalised.
            self.updated = if self.tokens >= burst {
                now
            } else {
                self.updated + u64::from(earned) * refill_ms
            };
        } else if now < self.updated {
            // The clock went backwards: restart the interval rather than stall.
            self.updated = now;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// At most `limit` events per fixed window of `window_ms` (the reference's cut-off counters).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WindowCounter {
    window_start: u64,
    count: u32,
}

impl WindowCounter {
    pub(crate) fn allow(&mut self, now: u64, window_ms: u64, limit: u32) -> bool {
        if now.saturating_sub(self.window_start) >= window_ms || now < self.window_start {
            self.window_start = now;
            self.count = 0;
        }
        if self.count < limit {
            self.count += 1;
            true
        } else {
            false
        }
    }
}

/// The source prefix a rate limit applies to: IPv4 /24 or IPv6 /48 (IPv4-mapped addresses
/// must be canonicalized by the caller first, H5.2).
pub(crate) fn source_prefix(addr: &SocketAddr) -> [u8; 7] {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            [4, o[0], o[1], o[2], 0, 0, 0]
        }
        IpAddr::V6(ip) => {
            let o = ip.octets();
            [6, o[0], o[1], o[2], o[3], o[4], o[5]]
        }
    }
}

/// Per source prefix token buckets in a fixed table, plus one global bucket that bounds the
/// total rate whatever the number of prefixes an attacker controls.
#[derive(Debug)]
pub(crate) struct PrefixLimiter {
    key: u64,
    slots: Vec<TokenBucket>,
    burst: u32,
    refill_ms: u64,
    global: TokenBucket,
    global_burst: u32,
    global_refill_ms: u64,
}

impl PrefixLimiter {
    pub(crate) fn new(
        slots: usize,
        burst: u32,
        refill_ms: u64,
        global_burst: u32,
        global_refill_ms: u64,
        key: u64,
        now: u64,
    ) -> PrefixLimiter {
        let slots = slots.clamp(1, 1 << 20);
        PrefixLimiter {
            key,
            slots: vec![TokenBucket::new(burst, now); slots],
            burst,
            refill_ms,
            global: TokenBucket::new(global_burst, now),
            global_burst,
            global_refill_ms,
        }
    }

    fn slot(&self, prefix: &[u8; 7]) -> usize {
        // FNV-1a over the keyed prefix, then a SplitMix finaliser so the key affects every bit.
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ self.key;
        for &b in prefix {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h % self.slots.len() as u64) as usize
    }

    /// Whether an expensive check for a packet from `source` may run now.
    pub(crate) fn allow(&mut self, now: u64, source: &SocketAddr) -> bool {
        let i = self.slot(&source_prefix(source));
        let (burst, refill) = (self.burst, self.refill_ms);
        let Some(bucket) = self.slots.get_mut(i) else {
            return false;
        };
        if !bucket.allow(now, burst, refill) {
            return false;
        }
        self.global
            .allow(now, self.global_burst, self.global_refill_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_bursts_then_refills() {
        let mut b = TokenBucket::new(3, 0);
        assert!(b.allow(0, 3, 100));
        assert!(b.allow(0, 3, 100));
        assert!(b.allow(0, 3, 100));
        assert!(!b.allow(50, 3, 100));
        assert!(b.allow(100, 3, 100));
        assert!(!b.allow(150, 3, 100));
        // A long pause refills to the burst, not beyond.
        for _ in 0..3 {
            assert!(b.allow(10_000, 3, 100));
        }
        assert!(!b.allow(10_000, 3, 100));
        // Time going backwards never panics and never grants extra tokens.
        assert!(!b.allow(5, 3, 100));
    }

    #[test]
    fn window_counter_caps_per_window() {
        let mut w = WindowCounter::default();
        for _ in 0..8 {
            assert!(w.allow(1_000, 30_000, 8));
        }
        assert!(!w.allow(20_000, 30_000, 8));
        assert!(w.allow(31_000, 30_000, 8));
    }

    #[test]
    fn prefixes_group_v4_24_and_v6_48() {
        let a: SocketAddr = "10.1.2.3:1".parse().unwrap();
        let b: SocketAddr = "10.1.2.200:9".parse().unwrap();
        let c: SocketAddr = "10.1.3.3:1".parse().unwrap();
        assert_eq!(source_prefix(&a), source_prefix(&b));
        assert_ne!(source_prefix(&a), source_prefix(&c));
        let d: SocketAddr = "[2001:db8:1:ffff::1]:1".parse().unwrap();
        let e: SocketAddr = "[2001:db8:1:0::2]:1".parse().unwrap();
        let f: SocketAddr = "[2001:db8:2::1]:1".parse().unwrap();
        assert_eq!(source_prefix(&d), source_prefix(&e));
        assert_ne!(source_prefix(&d), source_prefix(&f));
    }

    #[test]
    fn prefix_limiter_limits_one_prefix_not_others() {
        let mut l = PrefixLimiter::new(1024, 2, 2_000, 1_000, 1, 42, 0);
        let same: Vec<SocketAddr> = (1..10)
            .map(|i| format!("192.0.2.{i}:9993").parse().unwrap())
            .collect();
        let allowed = same.iter().filter(|s| l.allow(0, s)).count();
        assert_eq!(allowed, 2);
        let other: SocketAddr = "198.51.100.1:9993".parse().unwrap();
        assert!(l.allow(0, &other));
        assert!(l.allow(2_000, &same[0]));
    }

    #[test]
    fn global_bucket_bounds_many_prefixes() {
        let mut l = PrefixLimiter::new(4096, 4, 2_000, 10, 1_000, 7, 0);
        let allowed = (0..200u32)
            .filter(|i| {
                let s: SocketAddr = format!("10.{}.{}.1:1", i / 256, i % 256).parse().unwrap();
                l.allow(0, &s)
            })
            .count();
        assert_eq!(allowed, 10);
    }
}
