//! The link model: per-direction delay, jitter, loss, duplication, reordering and rate limits
//! ([`LinkConfig`]), and partitions ([`Cut`]) that block traffic for a window of virtual time.

use std::net::SocketAddr;

use super::host::HostId;

/// How one direction of a link (from one address to another, or the default for all) treats a
/// datagram. Probabilities are in `[0, 1]`; values outside are clamped by behaviour (`<= 0`
/// never, `>= 1` always).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay in ms, applied to every datagram.
    pub delay_ms: u64,
    /// Extra delay drawn uniformly from `[0, jitter_ms]` per datagram (may reorder by itself).
    pub jitter_ms: u64,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice (the copy draws its own delay).
    pub duplicate: f64,
    /// Probability a datagram is held back by an extra delay from `[1, reorder_extra_ms]`,
    /// letting later datagrams overtake it.
    pub reorder: f64,
    /// Upper bound of the reordering hold-back in ms (at least 1 is used).
    pub reorder_extra_ms: u64,
    /// An optional bottleneck: serialization at a byte rate behind a bounded queue.
    pub rate_limit: Option<RateLimit>,
}

/// A bottleneck on a link direction: datagrams are serialized at `bytes_per_sec`; a datagram
/// that would make the unsent backlog exceed `queue_bytes` is dropped (`queue_full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub bytes_per_sec: u64,
    pub queue_bytes: u64,
}

/// The default one-way delay of a link nobody configured.
pub const DEFAULT_DELAY_MS: u64 = 10;

impl Default for LinkConfig {
    /// A perfect link with [`DEFAULT_DELAY_MS`] of delay.
    fn default() -> Self {
        Self::with_delay(DEFAULT_DELAY_MS)
    }
}

impl LinkConfig {
    /// A perfect link (no jitter, loss, duplication, reordering or rate limit) with `delay_ms`.
    pub const fn with_delay(delay_ms: u64) -> Self {
        Self {
            delay_ms,
            jitter_ms: 0,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_extra_ms: 0,
            rate_limit: None,
        }
    }

    /// Sets the jitter bound.
    pub const fn jitter(mut self, jitter_ms: u64) -> Self {
        self.jitter_ms = jitter_ms;
        self
    }

    /// Sets the loss probability.
    pub const fn loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// Sets the duplication probability.
    pub const fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Holds back a fraction `p` of datagrams by up to `extra_ms`.
    pub const fn reorder(mut self, p: f64, extra_ms: u64) -> Self {
        self.reorder = p;
        self.reorder_extra_ms = extra_ms;
        self
    }

    /// Adds a bottleneck of `bytes_per_sec` behind a queue of `queue_bytes`.
    pub const fn rate(mut self, bytes_per_sec: u64, queue_bytes: u64) -> Self {
        self.rate_limit = Some(RateLimit {
            bytes_per_sec,
            queue_bytes,
        });
        self
    }
}

impl RateLimit {
    /// Reserves the bottleneck for `len` bytes arriving at `now_us`, given the time the link
    /// becomes idle (`busy_until_us`, updated in place). Returns the time in µs at which the
    /// datagram has fully left, or `None` if the queue cannot take it. A rate of 0 never sends.
    pub(crate) fn reserve(&self, busy_until_us: &mut u64, now_us: u64, len: u64) -> Option<u64> {
        if self.bytes_per_sec == 0 {
            return None;
        }
        let start = (*busy_until_us).max(now_us);
        // Bytes accepted but not yet serialized, including the one on the wire.
        let backlog = u128::from(start - now_us) * u128::from(self.bytes_per_sec) / 1_000_000;
        if backlog + u128::from(len) > u128::from(self.queue_bytes) {
            return None;
        }
        let serialize_us = (u128::from(len) * 1_000_000).div_ceil(u128::from(self.bytes_per_sec));
        let done = u64::try_from(u128::from(start) + serialize_us).unwrap_or(u64::MAX);
        *busy_until_us = done;
        Some(done)
    }
}

/// What a partition blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Every datagram between the two hosts, in both directions.
    Between(HostId, HostId),
    /// Every datagram to or from the host (it "goes away").
    Isolate(HostId),
    /// Every datagram between the two addresses, in both directions (a single path).
    Path(SocketAddr, SocketAddr),
}

impl Cut {
    /// Whether this cut blocks `from -> to`, given the hosts owning those addresses.
    pub(crate) fn blocks(
        &self,
        from: SocketAddr,
        to: SocketAddr,
        from_host: Option<HostId>,
        to_host: Option<HostId>,
    ) -> bool {
        match *self {
            Cut::Between(a, b) => {
                (from_host == Some(a) && to_host == Some(b))
                    || (from_host == Some(b) && to_host == Some(a))
            }
            Cut::Isolate(h) => from_host == Some(h) || to_host == Some(h),
            Cut::Path(x, y) => (from == x && to == y) || (from == y && to == x),
        }
    }
}

/// Names a partition so it can be healed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionId(pub(crate) u64);

/// A cut active during `[start, end)` (no end: until healed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Partition {
    pub id: PartitionId,
    pub cut: Cut,
    pub start: u64,
    pub end: Option<u64>,
}

impl Partition {
    pub fn active(&self, now: u64) -> bool {
        self.start <= now && self.end.is_none_or(|end| now < end)
    }

    pub fn expired(&self, now: u64) -> bool {
        self.end.is_some_and(|end| now >= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn builder_sets_fields() {
        let l = LinkConfig::with_delay(5)
            .jitter(2)
            .loss(0.1)
            .duplicate(0.2)
            .reorder(0.3, 40)
            .rate(1000, 3000);
        assert_eq!(l.delay_ms, 5);
        assert_eq!(l.jitter_ms, 2);
        assert_eq!(l.loss, 0.1);
        assert_eq!(l.duplicate, 0.2);
        assert_eq!((l.reorder, l.reorder_extra_ms), (0.3, 40));
        assert_eq!(
            l.rate_limit,
            Some(RateLimit {
                bytes_per_sec: 1000,
                queue_bytes: 3000
            })
        );
        assert_eq!(LinkConfig::default().delay_ms, DEFAULT_DELAY_MS);
    }

    #[test]
    fn rate_limit_serializes_and_bounds_the_queue() {
        let r = RateLimit {
            bytes_per_sec: 1000,
            queue_bytes: 3000,
        };
        let mut busy = 0;
        assert_eq!(r.reserve(&mut busy, 0, 1000), Some(1_000_000));
        assert_eq!(r.reserve(&mut busy, 0, 1000), Some(2_000_000));
        assert_eq!(r.reserve(&mut busy, 0, 1000), Some(3_000_000));
        assert_eq!(r.reserve(&mut busy, 0, 1), None);
        // Half a second later 500 bytes have drained.
        assert_eq!(r.reserve(&mut busy, 500_000, 500), Some(3_500_000));
        // An idle link starts serializing immediately.
        let mut idle = 0;
        assert_eq!(r.reserve(&mut idle, 10_000_000, 1), Some(10_001_000));
        let stuck = RateLimit {
            bytes_per_sec: 0,
            queue_bytes: 10,
        };
        assert_eq!(stuck.reserve(&mut idle, 0, 1), None);
    }

    #[test]
    fn cuts_block_what_they_name() {
        let (a, b, c) = (HostId(0), HostId(1), HostId(2));
        let (x, y, z) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"), addr("10.0.0.3:1"));
        let between = Cut::Between(a, b);
        assert!(between.blocks(x, y, Some(a), Some(b)));
        assert!(between.blocks(y, x, Some(b), Some(a)));
        assert!(!between.blocks(x, z, Some(a), Some(c)));
        let isolate = Cut::Isolate(c);
        assert!(isolate.blocks(x, z, Some(a), Some(c)));
        assert!(isolate.blocks(z, x, Some(c), Some(a)));
        assert!(!isolate.blocks(x, y, Some(a), Some(b)));
        let path = Cut::Path(x, y);
        assert!(path.blocks(y, x, None, None));
        assert!(!path.blocks(x, z, None, None));
    }

    #[test]
    fn partition_windows() {
        let p = Partition {
            id: PartitionId(0),
            cut: Cut::Isolate(HostId(0)),
            start: 10,
            end: Some(20),
        };
        assert!(!p.active(9));
        assert!(p.active(10));
        assert!(p.active(19));
        assert!(!p.active(20));
        assert!(p.expired(20));
        let forever = Partition { end: None, ..p };
        assert!(forever.active(u64::MAX));
        assert!(!forever.expired(u64::MAX));
    }
}
