//! ztrs: a ZeroTier-V1-compatible virtual network appliance.
//!
//! The library is laid out as in `docs/architecture.md`:
//! - [`wire`]: zero-copy views and validated representations of every ZeroTier V1 codec;
//! - [`crypto`]: identities, key agreement, signatures and packet armor;
//! - [`node`]: the sans-IO engine (peers, paths, roots, relaying);
//! - [`service`]: the tokio driver of a node over real UDP;
//! - [`sim`]: a deterministic in-memory network in virtual time for tests and the demo;
//! - [`cli`]: the command line (`ztrs idtool`, ...).
//!
//! Protocol logic never touches a clock, socket or task; drivers above it do.

pub mod api;
pub mod cli;
pub mod controller;
pub mod crypto;
pub mod dataplane;
pub mod flood;
pub mod hex;
pub mod lab;
pub mod netstack;
pub mod node;
pub mod service;
pub mod sim;
pub mod store;
pub mod wire;
