//! `ztrs-platform`: the only crate of ztrs that touches the operating system directly.
//!
//! - [`udp`]: UDP underlay sockets (dual-stack fallback, large buffers, canonical endpoints,
//!   `recvmmsg`/`sendmmsg` batching with a portable fallback).
//! - [`tun`]: TUN devices moving raw IP packets (own `/dev/net/tun` code on Linux, `tun-rs` on
//!   macOS/Windows, `Unsupported` elsewhere).
//! - `netlink` (Linux): interface MTU, state, addresses and routes by index (rtnetlink), the
//!   per-interface `disable_ipv6` switch and the kernel's multicast memberships.
//! - `netns` (Linux): moving a thread into a named network namespace (tests, test rig).
//!
//! It will also own privilege handling when the dataplane issues need it. Everything above it
//! is portable, and `unsafe` code exists only here, each block with its safety argument.

#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod tun;
pub mod udp;
