//! ztrs: a ZeroTier-V1-compatible virtual network appliance.
//!
//! The library is laid out as in `docs/architecture.md`:
//! - [`wire`]: zero-copy views and validated representations of every ZeroTier V1 codec;
//! - [`crypto`]: identities, key agreement, signatures and packet armor;
//! - [`node`]: the sans-IO engine (peers, paths, roots, relaying, networks, the rules);
//! - [`controller`]: the network controller core and its `controller.d` store;
//! - [`dataplane`]: the boundary between IP packets and the network's Ethernet frames;
//! - [`netstack`]: the user-space TCP/IP stack, its tokio sockets, proxies and forwards;
//! - [`service`]: the tokio driver of a node over real UDP, and the daemon;
//! - [`store`]: the home directory; [`api`]: the local control API;
//! - [`sim`]: a deterministic in-memory network in virtual time for tests;
//! - [`lab`]: a whole private network in one process, on 127.0.0.1 (tests, demo, benches);
//! - [`flood`]: hostile datagrams for the hardening suite;
//! - [`cli`]: the command line (`ztrs idtool`, `ztrs service`, the client verbs, ...).
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
