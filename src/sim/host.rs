//! What the simulator drives: the [`Host`] trait (the sans-IO verbs) and [`HostId`].
//!
//! The simulator knows nothing about ZeroTier; anything that speaks these verbs can be a host
//! (the node engine, a toy echo host in tests, a scripted attacker).

use std::fmt;
use std::net::SocketAddr;

/// A sans-IO endpoint the simulator can drive in virtual time.
///
/// Times are absolute virtual milliseconds. The simulator calls `handle_datagram` and
/// `handle_timeout`, then drains `poll_transmit` and `poll_event` until they return `None`, and
/// re-reads `poll_timeout`. A host must be a deterministic function of these inputs (and its own
/// state) for runs to be reproducible.
pub trait Host {
    /// What `poll_event` returns; the simulator stores events per host with their time.
    type Event;

    /// A UDP payload `data` arrived on `local` from `remote`.
    fn handle_datagram(&mut self, now: u64, local: SocketAddr, remote: SocketAddr, data: &[u8]);

    /// The virtual clock reached (or passed) the deadline from `poll_timeout`.
    fn handle_timeout(&mut self, now: u64);

    /// The next absolute time at which `handle_timeout` must be called, if any.
    fn poll_timeout(&self) -> Option<u64>;

    /// Writes the next datagram to send into `buf` (which the simulator passes empty) and
    /// returns `(local, remote)`: the source address (one the host owns, or an unspecified IP
    /// meaning "any of mine of the remote's family") and the destination. A datagram from an
    /// address the host does not own is dropped as `bad_source`.
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<(SocketAddr, SocketAddr)>;

    /// The next event for the application, if any. Hosts without events keep the default.
    fn poll_event(&mut self) -> Option<Self::Event> {
        None
    }
}

/// Boxed hosts are hosts, so one simulator can hold different host types behind
/// `Box<dyn Host<Event = E>>`.
impl<T: Host + ?Sized> Host for Box<T> {
    type Event = T::Event;

    fn handle_datagram(&mut self, now: u64, local: SocketAddr, remote: SocketAddr, data: &[u8]) {
        (**self).handle_datagram(now, local, remote, data);
    }

    fn handle_timeout(&mut self, now: u64) {
        (**self).handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<u64> {
        (**self).poll_timeout()
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<(SocketAddr, SocketAddr)> {
        (**self).poll_transmit(buf)
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        (**self).poll_event()
    }
}

/// A host's index in its simulator, stable for the simulator's lifetime (hosts are replaced,
/// never removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub(crate) usize);

impl HostId {
    /// The position in the order hosts were added (0 for the first).
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host#{}", self.0)
    }
}
