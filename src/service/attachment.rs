//! What a driver is attached to on the local side of its networks: TUN interfaces (the host
//! VPN mode), a user-space TCP/IP stack, or nothing (roots, tests). The driver task owns the
//! attachment next to the node, so frames move between them by plain calls on one thread: no
//! channel per packet, and one flow is never spread across threads.

use std::task::{Context, Poll};

use crate::node::Node;
use crate::wire::NetworkId;

/// The local side of a driver. Every method runs on the driver task between packets, so it
/// must not block; slow work (interface configuration) goes to tasks of its own.
pub trait Attachment: Send + 'static {
    /// Ready when [`Attachment::pump`] has local input. Must not consume the readiness (the
    /// driver calls `pump` next, which reads until the source is empty or its budget is spent).
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// Moves a bounded batch of local input into the node (`Node::handle_frame`).
    fn pump(&mut self, node: &mut Node, now_ms: u64);

    /// A frame the node delivered for the local side of `nwid` (`Event::Frame`).
    fn deliver(&mut self, node: &mut Node, now_ms: u64, nwid: NetworkId, frame: &[u8]);

    /// The end of a batch of [`Attachment::deliver`] calls: work deferred to batch
    /// granularity (a user-space stack's poll) happens here.
    fn flush(&mut self, _node: &mut Node, _now_ms: u64) {}

    /// Networks changed (joined, left, configured, refused): bring the local side in line.
    fn sync(&mut self, node: &mut Node, now_ms: u64);

    /// The next time [`Attachment::handle_timeout`] wants to run (ms, node time).
    fn poll_timeout(&self) -> Option<u64>;

    /// Timers: resolution retries, membership polls.
    fn handle_timeout(&mut self, node: &mut Node, now_ms: u64);

    /// A JSON report of the local side of `nwid` (interface name, counters) for the control
    /// API; `None` when it has none.
    fn network_report(&self, nwid: NetworkId) -> Option<serde_json::Value>;

    /// A JSON object of the attachment's own counters (drops that belong to no network
    /// port), for the control API's counters.
    fn report(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Releases everything (interfaces) before the driver ends.
    fn close(&mut self) {}
}
