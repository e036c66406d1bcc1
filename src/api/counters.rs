//! Counters of the control API itself: requests served, requests refused for want of the
//! token, and every connection it dropped (over capacity, idle too long, killed at stop).
//! Written by the server's tasks, read by `/ztrs/counters` and [`super::ApiServer::stats`]
//! (relaxed atomics: each value is exact, a snapshot is not one instant across values).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters shared by the listeners, the connections and the handlers.
#[derive(Debug, Default)]
pub(crate) struct ApiCounters {
    pub(crate) requests: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_refused_full: AtomicU64,
    pub(crate) connections_idle_closed: AtomicU64,
    pub(crate) connections_killed: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
}

impl ApiCounters {
    /// Adds one to `cell`.
    pub(crate) fn bump(cell: &AtomicU64) {
        cell.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> ApiStats {
        let get = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        ApiStats {
            requests: get(&self.requests),
            unauthorized: get(&self.unauthorized),
            connections_accepted: get(&self.connections_accepted),
            connections_refused_full: get(&self.connections_refused_full),
            connections_idle_closed: get(&self.connections_idle_closed),
            connections_killed: get(&self.connections_killed),
            accept_errors: get(&self.accept_errors),
        }
    }
}

/// A snapshot of the control API counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// Requests that reached the router (authenticated or not).
    pub requests: u64,
    /// Requests refused with 401 (no token, or a wrong one).
    pub unauthorized: u64,
    /// Connections taken into service.
    pub connections_accepted: u64,
    /// Connections closed at once because every connection slot was taken.
    pub connections_refused_full: u64,
    /// Connections closed because nothing was read or written for the idle limit.
    pub connections_idle_closed: u64,
    /// Connections cut because they were still open when the server stopped.
    pub connections_killed: u64,
    /// Accept calls that failed (the listener went on).
    pub accept_errors: u64,
}

impl ApiStats {
    /// Every counter as (name, value), for `/ztrs/counters` and logs.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("requests", self.requests),
            ("unauthorized", self.unauthorized),
            ("connections_accepted", self.connections_accepted),
            ("connections_refused_full", self.connections_refused_full),
            ("connections_idle_closed", self.connections_idle_closed),
            ("connections_killed", self.connections_killed),
            ("accept_errors", self.accept_errors),
        ]
        .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_what_was_bumped() {
        let cells = ApiCounters::default();
        ApiCounters::bump(&cells.unauthorized);
        ApiCounters::bump(&cells.unauthorized);
        ApiCounters::bump(&cells.connections_killed);
        let stats = cells.snapshot();
        assert_eq!(stats.unauthorized, 2);
        assert_eq!(stats.connections_killed, 1);
        assert_eq!(stats.iter().count(), 7);
        assert_eq!(stats.iter().map(|(_, v)| v).sum::<u64>(), 3);
    }
}
