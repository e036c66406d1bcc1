//! Driver counters: what happened at the socket and the channels, next to the node's own
//! [`crate::node::Counters`]. Written by the driver task only, read by any handle at any time
//! (relaxed atomics: each value is exact, a snapshot is not a single instant across values).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters shared between the driver task and its handles.
#[derive(Debug, Default)]
pub(crate) struct StatsCells {
    pub(crate) datagrams_received: AtomicU64,
    pub(crate) datagrams_sent: AtomicU64,
    pub(crate) receive_errors: AtomicU64,
    pub(crate) receive_pauses: AtomicU64,
    pub(crate) oversized_dropped: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) transmit_queue_full: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) events_unobserved: AtomicU64,
    pub(crate) commands_applied: AtomicU64,
    pub(crate) callbacks_panicked: AtomicU64,
}

impl StatsCells {
    /// Adds `n` to one counter.
    pub(crate) fn add(cell: &AtomicU64, n: u64) {
        cell.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> ServiceStats {
        let get = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        ServiceStats {
            datagrams_received: get(&self.datagrams_received),
            datagrams_sent: get(&self.datagrams_sent),
            receive_errors: get(&self.receive_errors),
            receive_pauses: get(&self.receive_pauses),
            oversized_dropped: get(&self.oversized_dropped),
            send_errors: get(&self.send_errors),
            transmit_queue_full: get(&self.transmit_queue_full),
            events_dropped: get(&self.events_dropped),
            events_unobserved: get(&self.events_unobserved),
            commands_applied: get(&self.commands_applied),
            callbacks_panicked: get(&self.callbacks_panicked),
        }
    }
}

/// A snapshot of the driver counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Datagrams read from the socket (including dropped oversized ones).
    pub datagrams_received: u64,
    /// Datagrams the kernel accepted for sending.
    pub datagrams_sent: u64,
    /// Receive calls that failed (ICMP errors reported on the socket, ...); the loop went on.
    pub receive_errors: u64,
    /// Times a long streak of receive errors made the loop back off briefly.
    pub receive_pauses: u64,
    /// Datagrams larger than the receive buffers (cannot be ZeroTier packets), dropped.
    pub oversized_dropped: u64,
    /// Datagrams the kernel refused (unreachable network, invalid destination, ...); only
    /// that datagram was dropped.
    pub send_errors: u64,
    /// Datagrams dropped because the outbound queue was full while the socket had no room.
    pub transmit_queue_full: u64,
    /// Events dropped because the event channel was full.
    pub events_dropped: u64,
    /// Events discarded after the event receiver was dropped.
    pub events_unobserved: u64,
    /// Commands applied to the node.
    pub commands_applied: u64,
    /// Inspection callbacks that panicked (isolated; the driver went on).
    pub callbacks_panicked: u64,
}

impl ServiceStats {
    /// Every counter as (name, value), for metrics and logs.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("datagrams_received", self.datagrams_received),
            ("datagrams_sent", self.datagrams_sent),
            ("receive_errors", self.receive_errors),
            ("receive_pauses", self.receive_pauses),
            ("oversized_dropped", self.oversized_dropped),
            ("send_errors", self.send_errors),
            ("transmit_queue_full", self.transmit_queue_full),
            ("events_dropped", self.events_dropped),
            ("events_unobserved", self.events_unobserved),
            ("commands_applied", self.commands_applied),
            ("callbacks_panicked", self.callbacks_panicked),
        ]
        .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_what_was_added() {
        let cells = StatsCells::default();
        StatsCells::add(&cells.datagrams_sent, 3);
        StatsCells::add(&cells.events_dropped, 1);
        let stats = cells.snapshot();
        assert_eq!(stats.datagrams_sent, 3);
        assert_eq!(stats.events_dropped, 1);
        assert_eq!(stats.iter().count(), 11);
        assert_eq!(stats.iter().map(|(_, v)| v).sum::<u64>(), 4);
    }
}
