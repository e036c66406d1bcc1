//! Tunables of the user-space stack: socket buffer sizes, backlogs, limits and timeouts.

use std::sync::Arc;
use std::time::Duration;

use crate::dataplane::{ExtensionPolicy, FragmentPolicy, Policy};

/// A fault-injection hook on the IP packets a stack emits: `true` drops the packet (as a
/// lossy link would, before the boundary sees it). For tests that must lose one specific
/// packet (a handshake's final ACK); `None` in normal operation.
pub type PacketFilter = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Settings shared by every network's stack.
#[derive(Clone)]
pub struct NetstackConfig {
    /// Receive buffer of each TCP socket (bytes). It sets the advertised window; window
    /// scaling follows from it.
    pub tcp_rx_buffer: usize,
    /// Send buffer of each TCP socket (bytes).
    pub tcp_tx_buffer: usize,
    /// Payload bytes buffered per UDP socket in each direction.
    pub udp_buffer: usize,
    /// Datagrams buffered per UDP socket in each direction.
    pub udp_packets: usize,
    /// Backlog of a listener when the caller does not choose one: established connections
    /// waiting for `accept` (H1.6). Beyond it new SYNs are refused with a reset, counted.
    pub default_backlog: usize,
    /// Handshakes a listener runs at once on each of its addresses.
    pub handshake_slots: usize,
    /// TCP sockets (connecting, open, listening and closing) per network; beyond it new
    /// sockets are refused.
    pub max_tcp_sockets: usize,
    /// UDP bindings in all.
    pub max_udp_sockets: usize,
    /// How long a dropped stream may take to finish its close before it is aborted.
    pub linger: Duration,
    /// Keep-alive of established streams (`None`: off).
    pub keep_alive: Option<Duration>,
    /// Delayed ACK (`None`: acknowledge at once).
    pub ack_delay: Option<Duration>,
    /// The boundary policy for traffic entering the stack (H2.1, H2.2). smoltcp does not
    /// reassemble, so fragments are dropped (counted) by default.
    pub policy: Policy,
    /// See [`PacketFilter`].
    pub outbound_filter: Option<PacketFilter>,
}

impl std::fmt::Debug for NetstackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetstackConfig")
            .field("tcp_rx_buffer", &self.tcp_rx_buffer)
            .field("tcp_tx_buffer", &self.tcp_tx_buffer)
            .field("default_backlog", &self.default_backlog)
            .field("outbound_filter", &self.outbound_filter.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for NetstackConfig {
    fn default() -> Self {
        NetstackConfig {
            tcp_rx_buffer: 512 * 1024,
            tcp_tx_buffer: 512 * 1024,
            udp_buffer: 256 * 1024,
            udp_packets: 256,
            default_backlog: 64,
            handshake_slots: 4,
            max_tcp_sockets: 4096,
            max_udp_sockets: 1024,
            linger: Duration::from_secs(30),
            keep_alive: None,
            ack_delay: Some(Duration::from_millis(1)),
            policy: Policy {
                verify_transport_checksums: true,
                fragments: FragmentPolicy::Drop,
                extension_headers: ExtensionPolicy::PassKnown,
            },
            outbound_filter: None,
        }
    }
}
