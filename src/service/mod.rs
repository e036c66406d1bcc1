//! `service`: the tokio driver of a sans-IO [`crate::node::Node`] over real UDP.
//!
//! [`spawn`] starts one task that owns the node and its socket
//! ([`ztrs_platform::udp::UdpUnderlay`]): it reads datagrams in batches, feeds
//! `handle_datagram` with the time of an [`EpochClock`] (monotonic, anchored to the Unix epoch),
//! sends what `poll_transmit` produces in batches, sleeps until `poll_timeout`, and forwards
//! node events on a bounded channel (and to any number of lossy, non-blocking subscribers, see
//! [`ServiceHandle::subscribe`]). Other tasks reach the node through a cloneable
//! [`ServiceHandle`] (bounded command channel) and stop it with [`ServiceHandle::shutdown`],
//! which is orderly and bounded in time (H2.7, H6.9). Socket errors are per packet and never
//! end the loop (H5.3).

mod attachment;
mod clock;
pub mod daemon;
mod driver;
mod events;
mod handle;
pub mod impair;
mod interfaces;
pub mod local_conf;
pub mod netstack_ports;
mod stats;
mod tun_ports;
pub mod userspace;

pub use attachment::Attachment;
pub use clock::EpochClock;
pub use driver::{ServiceOptions, spawn, spawn_attached};
pub use events::{ServiceEvent, Subscription};
pub use handle::{ServiceError, ServiceHandle, ShutdownOutcome};
pub use interfaces::{InterfaceState, ManagedRoute, desired_state, interface_name};
pub use stats::ServiceStats;
pub use tun_ports::{PortCounters, TunPorts};
