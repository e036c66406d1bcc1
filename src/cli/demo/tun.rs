//! `ztrs demo --tun`: the demo through the kernel (needs root). A root + controller and two
//! members (alice, bob) run as real `ztrs service` daemons, each in a network namespace of
//! its own, joined by veth pairs to a bridge in a switch namespace. The members join a
//! private network, are refused until the controller authorizes them, and get TUN interfaces
//! with managed addresses; then kernel TCP runs from alice to bob over them: a bulk transfer
//! checked with SHA-256 and 200 ping-pongs. Everything is created under a per-run prefix
//! (`ztd<pid>`) and removed again on success, failure, panic, SIGINT and SIGTERM.
//!
//! The parts live in `tun/`: `sequence` (the steps and the run's outcome), `lab`
//! (namespaces, daemons, teardown), `api` (the daemons' control API from outside their
//! namespaces), `network` (controller, join, authorization), `traffic` (kernel TCP),
//! `summary` (table and JSON) and `wait` (signals, deadlines). Linux only: elsewhere `--tun`
//! refuses with a message.

#[cfg(target_os = "linux")]
mod api;
#[cfg(target_os = "linux")]
mod lab;
#[cfg(target_os = "linux")]
mod network;
#[cfg(target_os = "linux")]
mod sequence;
#[cfg(target_os = "linux")]
mod summary;
#[cfg(target_os = "linux")]
mod traffic;
#[cfg(target_os = "linux")]
mod wait;

use super::DemoArgs;

/// Runs the demo; `Err` names the step that failed (with the end of the daemons' logs).
#[cfg(target_os = "linux")]
pub(crate) fn run(args: &DemoArgs) -> Result<(), String> {
    sequence::run(args)
}

/// Network namespaces are a Linux feature.
#[cfg(not(target_os = "linux"))]
pub(crate) fn run(_: &DemoArgs) -> Result<(), String> {
    Err("--tun needs Linux (network namespaces); run `ztrs demo` without --tun".to_owned())
}
