//! User-space networking: a TCP/IP stack (smoltcp) per joined network in place of a TUN,
//! so a node needs no privileges, with tokio sockets for applications and front ends
//! (SOCKS5, HTTP proxy, port forwards) for programs that know nothing of ztrs.
//!
//! ```text
//! app ── TcpStream / TcpListener / UdpSocket ──┐ lock, copy bytes, kick
//!                                              v
//!            Shared { NetworkStack per network: smoltcp Interface + sockets
//!                     + QueueDevice + dataplane Boundary }
//!                                              ^ poll on kick, frame batch or timer
//! node <── frames ── NetstackPorts (the driver's Attachment) ──┘
//! ```
//!
//! Every packet between a stack and the network passes the network's dataplane
//! [`Boundary`](crate::dataplane::Boundary): the same ARP/NDP emulation, checksum,
//! fragment and extension-header policy and counters as TUN mode (H2.1, H2.2). See
//! `docs/userspace.md` for semantics, limits and what is not implemented.

mod config;
pub(crate) mod core;
mod device;
mod dialer;
pub mod front;
mod handle;
mod listener;
pub(crate) mod network;
mod resolve;
pub(crate) mod syn_gate;
mod tcp;
pub(crate) mod udp;

pub use config::NetstackConfig;
pub use core::NetstackCounters;
pub use device::DeviceCounters;
pub use dialer::DualUdp;
pub use handle::Netstack;
pub use listener::TcpListener;
pub use resolve::{ATTEMPT_DELAY, Name, parse_name};
pub use syn_gate::{Syn, bare_syn};
pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpStream};
pub use udp::UdpSocket;
