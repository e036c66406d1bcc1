//! A hostile-traffic generator for hardening tests and benchmarks (issue 8): random bytes,
//! valid headers with bad MACs, HELLOs from random and invalid identities, oversized
//! datagrams, fragment bombs, LZ4 bombs, overlapping NETWORK_CONFIG chunks and spoofed
//! sources, at a fixed rate, to any number of targets.
//!
//! It only generates: packets are built with the project's own wire and armor code
//! ([`Kind`] documents each kind, the layer that rejects it and the counters it lands in),
//! sent by [`Flood`] from ordinary UDP sockets (on loopback, from several `127.x.y.z`
//! addresses so source prefixes differ). [`CounterSnapshot`] reads the counters a flood is
//! checked against.
//!
//! ```no_run
//! # fn demo(target: ztrs::flood::Target) -> std::io::Result<()> {
//! use std::sync::atomic::AtomicBool;
//! use std::time::Duration;
//! use ztrs::flood::{Flood, Kind};
//!
//! let mut flood = Flood::new(vec![Kind::Random, Kind::BadMac], 5_000, vec![target])?;
//! flood.run_until(&AtomicBool::new(false), Duration::from_secs(2));
//! println!("{} sent", flood.report().total());
//! # Ok(()) }
//! ```

mod craft;
mod fragments;
mod kind;
mod rng;
mod sender;
mod snapshot;
mod target;

pub use kind::Kind;
pub use rng::FloodRng;
pub use sender::{DEFAULT_POOL_SIZE, Flood, FloodReport};
pub use snapshot::{CounterSnapshot, kernel_receive_drops, resident_bytes};
pub use target::{IdentityPool, Target};
