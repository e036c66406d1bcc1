//! `ztrs-platform`: the only crate of ztrs that touches the operating system directly.
//!
//! - [`udp`]: UDP underlay sockets (dual-stack fallback, large buffers, canonical endpoints,
//!   `recvmmsg`/`sendmmsg` batching with a portable fallback).
//!
//! It will also own TUN devices, interface addresses/routes/MTU (rtnetlink on Linux) and
//! privilege handling when the dataplane issues need them. Everything above it is portable,
//! and `unsafe` code exists only here, each block with its safety argument.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod udp;
