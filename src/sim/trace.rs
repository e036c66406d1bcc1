//! What the simulator reports: datagrams as filters see them, drop reasons, counters
//! ([`SimStats`]) and the optional per-datagram trace used to compare runs bit for bit.

use std::fmt;
use std::net::SocketAddr;

/// One datagram in the simulated network, as filters see it (and may rewrite it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The source address the receiver will see.
    pub from: SocketAddr,
    /// The destination address; the host owning it receives the datagram.
    pub to: SocketAddr,
    /// The UDP payload.
    pub data: Vec<u8>,
}

/// A filter's decision for one datagram (rewrite by mutating it, then `Pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
}

/// Names an installed filter so it can be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FilterId(pub(crate) u64);

/// Why the simulator dropped a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The link's loss probability.
    Loss,
    /// An active partition, at send or at delivery time.
    Partition,
    /// A filter returned [`Verdict::Drop`].
    Filter,
    /// No host owns the destination address at delivery time.
    NoRoute,
    /// The link's rate-limit queue was full.
    QueueFull,
    /// A host sent from an address it does not own.
    BadSource,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::Filter => "filter",
            DropReason::NoRoute => "no_route",
            DropReason::QueueFull => "queue_full",
            DropReason::BadSource => "bad_source",
        })
    }
}

/// Drops counted per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropStats {
    pub loss: u64,
    pub partition: u64,
    pub filter: u64,
    pub no_route: u64,
    pub queue_full: u64,
    pub bad_source: u64,
}

impl DropStats {
    /// The counter for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Loss => self.loss,
            DropReason::Partition => self.partition,
            DropReason::Filter => self.filter,
            DropReason::NoRoute => self.no_route,
            DropReason::QueueFull => self.queue_full,
            DropReason::BadSource => self.bad_source,
        }
    }

    pub(crate) fn bump(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::Loss => &mut self.loss,
            DropReason::Partition => &mut self.partition,
            DropReason::Filter => &mut self.filter,
            DropReason::NoRoute => &mut self.no_route,
            DropReason::QueueFull => &mut self.queue_full,
            DropReason::BadSource => &mut self.bad_source,
        };
        *counter += 1;
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.loss + self.partition + self.filter + self.no_route + self.queue_full + self.bad_source
    }
}

/// Counters over a whole run. Invariant: `sent + duplicated == delivered + dropped.total() +
/// in flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Datagrams handed to the network (polled from hosts or injected).
    pub sent: u64,
    /// Datagrams handed to a host's `handle_datagram`.
    pub delivered: u64,
    /// Extra copies created by duplication.
    pub duplicated: u64,
    /// Datagrams given a reordering hold-back.
    pub reordered: u64,
    /// Drops per reason.
    pub dropped: DropStats,
    /// Calls to `handle_timeout`.
    pub timeouts: u64,
    /// Host events discarded because a host's event queue was full (oldest first).
    pub events_overflowed: u64,
}

/// What happened to a datagram at one point of its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// Handed to the network (before filters).
    Sent,
    /// A duplicate copy was scheduled.
    Duplicated,
    /// Handed to the destination host.
    Delivered,
    /// Dropped for the reason given.
    Dropped(DropReason),
}

/// One line of the trace: enough to tell two runs apart without storing payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEntry {
    /// Virtual time of the record.
    pub at: u64,
    pub kind: TraceKind,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub len: usize,
    /// FNV-1a 64 of the payload.
    pub digest: u64,
}

/// FNV-1a 64: a cheap, stable fingerprint of a payload for traces (not a security hash).
pub fn digest(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        assert_eq!(digest(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(digest(b"a"), 0xAF63_DC4C_8601_EC8C);
    }

    #[test]
    fn drop_counters_by_reason() {
        let mut d = DropStats::default();
        let reasons = [
            DropReason::Loss,
            DropReason::Partition,
            DropReason::Filter,
            DropReason::NoRoute,
            DropReason::QueueFull,
            DropReason::BadSource,
        ];
        for (i, r) in reasons.iter().enumerate() {
            for _ in 0..=i {
                d.bump(*r);
            }
        }
        for (i, r) in reasons.iter().enumerate() {
            assert_eq!(d.get(*r), i as u64 + 1, "{r}");
        }
        assert_eq!(d.total(), 21);
    }
}
