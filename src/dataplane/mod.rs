//! The TUN boundary (sans-IO, pure): a layer-3 TUN carries IP packets, ZeroTier carries
//! Ethernet frames. One [`Boundary`] per joined network translates both ways, emulates
//! what a TAP's kernel would do (ARP and IPv6 neighbour discovery, over ZeroTier
//! multicast), and enforces the boundary policy (checksums, fragments, IPv6 extension
//! headers) in one place, with a counter per outcome and a trace hook. See
//! `docs/dataplane.md` for the policy and what is not done.
//!
//! The service driver calls it per packet; it never allocates per packet in steady state
//! (caller-owned buffers, inbound packets delivered in place) and never touches the OS.
//!
//! ```text
//! BoundaryConfig::from_netconf(&NetworkConfig, our: Address, Policy) -> BoundaryConfig
//! BoundaryConfig::multicast_subscriptions(&self) -> Vec<MulticastGroup>  // to MULTICAST_LIKE
//! Boundary::new(BoundaryConfig) -> Boundary
//! Boundary::reconfigure(&mut self, BoundaryConfig)        // keeps still-valid neighbours
//! Boundary::from_tun(&mut self, now_ms, packet: &[u8], frame: &mut Vec<u8>) -> FromTun
//!     ToNetwork: frame is a whole Ethernet frame for Node::handle_frame
//!     | Pending | Dropped(reason)
//! Boundary::from_network(&mut self, now_ms, frame: &[u8], reply: &mut Vec<u8>) -> FromNetwork
//!     ToTun(range): frame[range] goes into the TUN | ToNetwork: reply goes to the node
//!     | Consumed | Dropped(reason)
//! Boundary::poll_to_network(&mut self, frame: &mut Vec<u8>) -> bool
//!     // requests, released packets, fragments
//! Boundary::poll_to_tun(&mut self, packet: &mut Vec<u8>) -> bool  // ICMP errors we generate
//! Boundary::handle_timeout(&mut self, now_ms); Boundary::poll_timeout(&self) -> Option<u64>
//! Boundary::counters(&self) -> &BoundaryCounters     // Copy, Default, Serialize, iter(), get()
//! Boundary::set_trace(&mut self, Option<Box<dyn FnMut(&TraceRecord) + Send>>)
//! ```
//!
//! After `from_tun`, `from_network` and `handle_timeout`, the driver drains both polls and
//! re-arms its timer from `poll_timeout`.

mod boundary;
mod checksum;
mod config;
mod counters;
mod fragment;
mod icmp;
mod inbound;
mod inspect;
mod ipv6;
mod neighbour;
mod outbound;

pub use boundary::{
    Boundary, FromNetwork, FromTun, MAX_QUEUED_FRAMES, MAX_QUEUED_TUN_PACKETS, TraceHook,
};
pub use config::{BoundaryConfig, ExtensionPolicy, FragmentPolicy, Policy};
pub use counters::{BoundaryCounters, Direction, DropReason, TraceEvent, TraceRecord};
pub use icmp::{ICMP_BURST, ICMP_REFILL_MS};
pub use ipv6::{MAX_EXTENSION_BYTES, MAX_EXTENSION_HEADERS};
pub use neighbour::{
    FIRST_RETRY_MS, MAX_PACKETS_PER_DESTINATION, MAX_PENDING_DESTINATIONS, NEIGHBOUR_CAPACITY,
    NEIGHBOUR_TTL_MS, REFRESH_BEFORE_EXPIRY_MS, RESOLUTION_ATTEMPTS,
};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_resolution;
#[cfg(test)]
mod tests_size;
