//! User-space front ends: the ways an unprivileged program on the host reaches a joined
//! network without a TUN device — a SOCKS5 server ([`socks5`]), an HTTP proxy
//! ([`http_proxy`]) and `-L` / `-R` port forwards ([`forward`]).
//!
//! This module owns the contract between the front ends and whatever carries their traffic:
//! the [`Dialer`], [`DatagramSocket`] and [`Acceptor`] traits, the [`Target`] a client asks
//! for, the shared [`FrontLimits`] and the [`FrontCounters`] every front end reports into.
//! The front ends are generic over those traits so that the daemon plugs in the user-space
//! stack of a network while the tests use the host's own sockets ([`host_dialer`]).

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};

mod accept;
mod address;
mod buffer;
pub mod forward;
pub mod host_dialer;
pub mod http_proxy;
pub mod relay;
pub mod socks5;

pub use address::{AddressError, Target};
pub use forward::{ForwardSpec, run_local_forward, run_remote_forward};
pub use host_dialer::HostDialer;
pub use http_proxy::{HttpProxyConfig, serve_http_proxy};
pub use socks5::{Socks5Config, serve_socks5};

#[cfg(test)]
mod tests_curl;
#[cfg(test)]
mod tests_forward;
#[cfg(test)]
mod tests_forward_spec;
#[cfg(test)]
mod tests_http_parse;
#[cfg(test)]
mod tests_http_proxy;
#[cfg(test)]
mod tests_socks5;
#[cfg(test)]
mod tests_socks5_wire;
#[cfg(test)]
mod tests_support;

/// Where a front end sends its traffic: the user-space stack of a joined network in the
/// daemon, the host's own sockets in tests.
pub trait Dialer: Send + Sync + 'static {
    /// A connected stream on the network side.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A UDP socket on the network side.
    type Datagram: DatagramSocket;

    /// Connects to a target (an address, or a name the dialer resolves itself). The front
    /// ends bound the wait with [`FrontLimits::connect_timeout`], so this need not.
    fn connect(&self, target: &Target) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// A UDP socket on the network side for SOCKS5 UDP ASSOCIATE.
    fn bind_udp(&self) -> impl Future<Output = io::Result<Self::Datagram>> + Send;

    /// Resolves a name for UDP ASSOCIATE datagrams addressed by name (the first address is
    /// used).
    fn resolve(&self, host: &str) -> impl Future<Output = io::Result<Vec<IpAddr>>> + Send;

    /// The network-side local address of a connected stream, reported to SOCKS5 clients as
    /// BND.ADDR. `None` (the default) reports `0.0.0.0:0`, which clients accept.
    fn local_addr(&self, _stream: &Self::Stream) -> Option<SocketAddr> {
        None
    }
}

/// A UDP socket on the network side. Both methods take `&self` because the SOCKS5 relay
/// sends and receives on it concurrently.
pub trait DatagramSocket: Send + Sync + 'static {
    fn send_to(
        &self,
        data: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
}

/// Accepts connections on the network side (for `-R`). An error whose kind is
/// `ConnectionAborted`, `ConnectionReset` or `Interrupted` is skipped; any other error ends
/// the forward, so an acceptor whose network went away should return one.
pub trait Acceptor: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
}

/// Limits shared by every front end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontLimits {
    /// Live connections per front end; connections beyond it are closed at once and counted
    /// in [`FrontCounters::refused_over_limit`]. A SOCKS5 UDP association counts as the
    /// connection that controls it.
    pub max_connections: usize,
    /// Time a client has to finish its greeting / request head.
    pub handshake_timeout: Duration,
    /// Time a dial on the network side may take.
    pub connect_timeout: Duration,
}

impl Default for FrontLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// Counters of one front end (or of several sharing one instance). "Up" is from the side
/// that opened the connection (the proxy client, or the peer of a forward) to the target.
#[derive(Debug, Default)]
pub struct FrontCounters {
    /// Connections taken into service (below the limit).
    pub accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were live.
    pub refused_over_limit: AtomicU64,
    /// Missing or wrong credentials, or no acceptable SOCKS5 method.
    pub auth_failures: AtomicU64,
    /// Malformed, oversized or unsupported requests.
    pub bad_requests: AtomicU64,
    /// Clients that did not finish their handshake in time.
    pub handshake_timeouts: AtomicU64,
    /// Dials that failed (refused, unreachable, unresolvable...).
    pub connect_failures: AtomicU64,
    /// Dials that did not finish within `connect_timeout`.
    pub connect_timeouts: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// SOCKS5 UDP datagrams relayed, both directions.
    pub udp_datagrams_relayed: AtomicU64,
    /// SOCKS5 UDP datagrams dropped: foreign sender, fragment, malformed header,
    /// unresolvable name, oversized, or a failed send.
    pub udp_datagrams_dropped: AtomicU64,
}

/// A copy of [`FrontCounters`] for the control API.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FrontCountersSnapshot {
    pub accepted: u64,
    pub refused_over_limit: u64,
    pub auth_failures: u64,
    pub bad_requests: u64,
    pub handshake_timeouts: u64,
    pub connect_failures: u64,
    pub connect_timeouts: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub udp_datagrams_relayed: u64,
    pub udp_datagrams_dropped: u64,
}

impl FrontCounters {
    pub fn snapshot(&self) -> FrontCountersSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        FrontCountersSnapshot {
            accepted: read(&self.accepted),
            refused_over_limit: read(&self.refused_over_limit),
            auth_failures: read(&self.auth_failures),
            bad_requests: read(&self.bad_requests),
            handshake_timeouts: read(&self.handshake_timeouts),
            connect_failures: read(&self.connect_failures),
            connect_timeouts: read(&self.connect_timeouts),
            bytes_up: read(&self.bytes_up),
            bytes_down: read(&self.bytes_down),
            udp_datagrams_relayed: read(&self.udp_datagrams_relayed),
            udp_datagrams_dropped: read(&self.udp_datagrams_dropped),
        }
    }
}

/// Adds one to a counter (they are statistics: no ordering with other memory is needed).
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `amount` to a counter.
pub(crate) fn add(counter: &AtomicU64, amount: usize) {
    counter.fetch_add(u64::try_from(amount).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Checks offered credentials against the configured ones without revealing, through
/// timing, how many leading bytes matched (lengths may leak; that is accepted).
pub(crate) fn credentials_match(expected: &(String, String), user: &[u8], pass: &[u8]) -> bool {
    let user_ok = expected.0.as_bytes().ct_eq(user);
    let pass_ok = expected.1.as_bytes().ct_eq(pass);
    bool::from(user_ok & pass_ok)
}

/// The address reported when the real one is unknown (`0.0.0.0:0`).
pub(crate) const UNSPECIFIED_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
