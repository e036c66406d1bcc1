//! The user-space attachment: one smoltcp stack per configured network instead of a TUN
//! (no privileges needed), run on the driver task next to the node.
//!
//! Frames the node delivers go through the network's boundary into its stack's queue and
//! are processed in one poll at the end of the batch ([`Attachment::flush`]), so a burst
//! of segments costs one poll, not one each. The application's sockets kick the driver
//! when they have written data or opened window ([`Attachment::poll_input`]); timers come
//! from smoltcp's own `poll_at`. Nothing polls in a loop (the added latency is one task
//! wake-up).

use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::json;
use tracing::info;

use super::attachment::Attachment;
use crate::dataplane::BoundaryConfig;
use crate::netstack::core::{Inner, Shared};
use crate::netstack::network::NetworkStack;
use crate::netstack::syn_gate;
use crate::netstack::udp::attach_bindings;
use crate::node::{NetworkStatus, Node};
use crate::wire::NetworkId;

/// Inbound packets queued on a stack before it is polled mid-batch.
const RX_BATCH: usize = 64;
/// How often sockets closing in the background are checked against their linger time.
const CLOSING_CHECK_MS: u64 = 500;

/// See the module doc.
pub struct NetstackPorts {
    shared: Arc<Shared>,
    /// When sockets closing in the background are next checked.
    next_closing_check: Option<u64>,
    /// The earliest wake-up any stack asked for.
    next_poll: Option<u64>,
}

impl NetstackPorts {
    pub(crate) fn new(shared: Arc<Shared>) -> NetstackPorts {
        NetstackPorts {
            shared,
            next_closing_check: None,
            next_poll: None,
        }
    }

    /// Polls every stack that has work (or all, `force`), reviews listeners and closings
    /// where something changed, and recomputes the next wake-up.
    fn run(&mut self, node: &mut Node, now_ms: u64, force: bool) {
        let config = self.shared.config.clone();
        let shared = self.shared.clone();
        let mut inner = shared.lock();
        let due_closing = self.next_closing_check.is_some_and(|t| now_ms >= t);
        let nwids: Vec<u64> = inner.stacks.keys().copied().collect();
        for nwid in nwids {
            let Some(stack) = inner.stacks.get_mut(&nwid) else {
                continue;
            };
            let due = stack.next_poll_ms.is_some_and(|t| now_ms >= t);
            if !(force || due || stack.needs_poll || stack.review_wanted || due_closing) {
                continue;
            }
            let changed = poll_stack(stack, &shared, node, now_ms);
            if changed || stack.review_wanted || (due_closing && stack.closing > 0) {
                inner.review(nwid, Some(now_ms), &config);
                // Slots opened or sockets aborted by the review go out now.
                if let Some(stack) = inner.stacks.get_mut(&nwid)
                    && stack.needs_poll
                {
                    poll_stack(stack, &shared, node, now_ms);
                }
            }
        }
        self.schedule(&inner, now_ms);
    }

    fn schedule(&mut self, inner: &Inner, now_ms: u64) {
        self.next_poll = inner.stacks.values().filter_map(|s| s.next_poll_ms).min();
        let closing = inner.stacks.values().any(|s| s.closing > 0);
        self.next_closing_check = closing.then_some(now_ms + CLOSING_CHECK_MS);
    }
}

fn poll_stack(stack: &mut NetworkStack, shared: &Shared, node: &mut Node, now_ms: u64) -> bool {
    let nwid = stack.nwid;
    let filter = shared.config.outbound_filter.as_ref();
    stack.poll(now_ms, filter, &mut |frame| {
        node.handle_frame(now_ms, nwid, frame)
    })
}

impl Attachment for NetstackPorts {
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.shared.poll_kicked(cx)
    }

    fn pump(&mut self, node: &mut Node, now_ms: u64) {
        self.shared.take_kick();
        self.run(node, now_ms, false);
    }

    fn deliver(&mut self, node: &mut Node, now_ms: u64, nwid: NetworkId, frame: &[u8]) {
        let shared = self.shared.clone();
        let mut guard = shared.lock();
        let inner = &mut *guard;
        let Some(stack) = inner.stacks.get_mut(&nwid.0) else {
            inner.counters.frames_without_stack += 1;
            return;
        };
        let (listeners, counters) = (&inner.listeners, &mut inner.counters);
        let config = &shared.config;
        stack.deliver(
            now_ms,
            frame,
            &mut |stack, packet| syn_gate::admit(stack, listeners, counters, config, packet),
            &mut |reply| node.handle_frame(now_ms, nwid, reply),
        );
        if stack.device.rx_len() >= RX_BATCH {
            poll_stack(stack, &shared, node, now_ms);
        }
    }

    fn flush(&mut self, node: &mut Node, now_ms: u64) {
        self.run(node, now_ms, false);
    }

    fn sync(&mut self, node: &mut Node, now_ms: u64) {
        let configured: Vec<(NetworkId, crate::wire::netconf::NetworkConfig)> = node
            .networks()
            .filter(|n| n.status == NetworkStatus::Ok)
            .filter_map(|n| Some((n.nwid, n.config?)))
            .collect();
        let policy = self.shared.config.policy;
        let config = self.shared.config.clone();
        let mut changed = false;
        {
            let mut inner = self.shared.lock();
            let gone: Vec<u64> = inner
                .stacks
                .keys()
                .filter(|id| !configured.iter().any(|(n, _)| n.0 == **id))
                .copied()
                .collect();
            for id in gone {
                if let Some(stack) = inner.stacks.remove(&id) {
                    close_stack(stack);
                    info!(network = %NetworkId(id), "user-space stack closed");
                    changed = true;
                }
            }
            for (nwid, netconf) in configured {
                let boundary = BoundaryConfig::from_netconf(&netconf, node.address(), policy);
                match inner.stacks.get_mut(&nwid.0) {
                    Some(stack) if stack.revision == netconf.revision => continue,
                    Some(stack) => stack.reconfigure(boundary, netconf.revision),
                    None => {
                        let epoch = inner.next_epoch;
                        inner.next_epoch += 1;
                        let addresses = boundary.addresses.len();
                        inner.stacks.insert(
                            nwid.0,
                            NetworkStack::new(boundary, netconf.revision, epoch, now_ms),
                        );
                        info!(network = %nwid, addresses, "user-space stack opened");
                    }
                }
                attach_bindings(&mut inner, nwid.0, &config);
                inner.review(nwid.0, Some(now_ms), &config);
                changed = true;
            }
            // Listeners waiting on a network that went away must look again.
            for listener in inner.listeners.values_mut() {
                if let Some(waker) = listener.waker.take() {
                    waker.wake();
                }
            }
        }
        if changed {
            self.shared.changes.send_modify(|v| *v += 1);
        }
        self.run(node, now_ms, true);
    }

    fn poll_timeout(&self) -> Option<u64> {
        match (self.next_poll, self.next_closing_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, node: &mut Node, now_ms: u64) {
        {
            let mut inner = self.shared.lock();
            for stack in inner.stacks.values_mut() {
                stack.boundary.handle_timeout(now_ms);
            }
        }
        self.run(node, now_ms, false);
    }

    fn network_report(&self, nwid: NetworkId) -> Option<serde_json::Value> {
        let inner = self.shared.lock();
        let stack = inner.stacks.get(&nwid.0)?;
        Some(json!({
            "portDeviceName": "userspace",
            "device": stack.device.counters(),
            "boundary": stack.boundary.counters(),
            "neighbours": stack.boundary.neighbour_count(),
            "sockets": stack.meta.len(),
        }))
    }

    fn report(&self) -> serde_json::Value {
        let fronts: serde_json::Map<String, serde_json::Value> = self
            .shared
            .fronts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(name, counters)| (name.clone(), json!(counters.snapshot())))
            .collect();
        let inner = self.shared.lock();
        json!({
            "fronts": fronts,
            "mode": "userspace",
            "stacks": inner.stacks.len(),
            "listeners": inner.listeners.len(),
            "udpBindings": inner.udp.len(),
            "netstack": inner.counters,
        })
    }

    fn close(&mut self) {
        let mut inner = self.shared.lock();
        inner.shut_down = true;
        for (_, stack) in std::mem::take(&mut inner.stacks) {
            close_stack(stack);
        }
        for listener in inner.listeners.values_mut() {
            if let Some(waker) = listener.waker.take() {
                waker.wake();
            }
        }
    }
}

/// Ends every socket of a stack that goes away, so tasks waiting on one wake up and see
/// `ConnectionAborted` instead of waiting forever.
fn close_stack(mut stack: NetworkStack) {
    let handles: Vec<_> = stack.meta.keys().copied().collect();
    for handle in handles {
        if let Some(socket) = stack.tcp_mut(handle) {
            socket.abort();
        } else if let Some(socket) = stack.udp_mut(handle) {
            socket.close();
        }
    }
}
