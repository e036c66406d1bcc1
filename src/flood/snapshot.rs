//! Reading what a flood did to a node: a snapshot of its counters addressed by the names
//! [`super::Kind::landing`] uses, and the two figures the kernel keeps for us (a socket's
//! receive-buffer drops, the process's resident memory). Local files only, no network input.

use std::net::SocketAddr;

use crate::node::{Counters, NetworkCounters, Node};

/// The node's counters at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub node: Counters,
    pub network: NetworkCounters,
    /// Peers in the table (bounded by `NodeLimits::max_peers`).
    pub peers: usize,
}

impl CounterSnapshot {
    pub fn of(node: &Node) -> CounterSnapshot {
        CounterSnapshot {
            node: node.counters().clone(),
            network: *node.network_counters(),
            peers: node.peer_count(),
        }
    }

    /// A node counter by its [`Counters::iter`] name, or a network counter as
    /// `network.<name>`.
    pub fn get(&self, name: &str) -> Option<u64> {
        let n = &self.network;
        match name.strip_prefix("network.") {
            None => self.node.get(name),
            Some("not_from_controller") => Some(n.not_from_controller),
            Some("chunks_rejected") => Some(n.chunks_rejected),
            Some("unknown_network") => Some(n.unknown_network),
            Some("configs_rejected") => Some(n.configs_rejected),
            Some(_) => None,
        }
    }

    /// How much the named counters grew together since `before` (unknown names count 0).
    pub fn grown_since(&self, before: &CounterSnapshot, names: &[&str]) -> u64 {
        names
            .iter()
            .map(|name| {
                let now = self.get(name).unwrap_or(0);
                now.saturating_sub(before.get(name).unwrap_or(0))
            })
            .sum()
    }

    /// Every counter that changed since `before`, as `name +delta` lines (for reports).
    pub fn changes_since(&self, before: &CounterSnapshot) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .node
            .iter()
            .filter_map(|(name, value)| {
                let delta = value.saturating_sub(before.node.get(name).unwrap_or(0));
                (delta > 0).then(|| (name.to_owned(), delta))
            })
            .collect();
        for name in ["not_from_controller", "chunks_rejected", "unknown_network"] {
            let full = format!("network.{name}");
            let delta = self.grown_since(before, &[full.as_str()]);
            if delta > 0 {
                out.push((full, delta));
            }
        }
        out
    }
}

/// Datagrams the kernel dropped because the receive buffer of the UDP socket bound to
/// `local` was full (Linux `/proc/net/udp*`, "drops" column); `None` where unknown.
pub fn kernel_receive_drops(local: SocketAddr) -> Option<u64> {
    let table = if local.is_ipv4() {
        "/proc/net/udp"
    } else {
        "/proc/net/udp6"
    };
    let text = std::fs::read_to_string(table).ok()?;
    let port = format!(":{:04X}", local.port());
    text.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let local_field = fields.nth(1)?;
        if !local_field.ends_with(&port) {
            return None;
        }
        line.split_whitespace().last()?.parse().ok()
    })
}

/// This process's resident memory in bytes (Linux `/proc/self/status` VmRSS); `None`
/// where unknown.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_address_node_and_network_counters() {
        let before = CounterSnapshot::default();
        let mut after = CounterSnapshot::default();
        after.node.bad_mac = 3;
        after.network.not_from_controller = 2;
        assert_eq!(after.get("bad_mac"), Some(3));
        assert_eq!(after.get("network.not_from_controller"), Some(2));
        assert_eq!(after.get("network.nope"), None);
        assert_eq!(
            after.grown_since(&before, &["bad_mac", "network.not_from_controller", "x"]),
            5
        );
        assert_eq!(after.changes_since(&before).len(), 2);
    }

    #[test]
    fn kernel_figures_of_this_process() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 0));
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            assert_eq!(kernel_receive_drops(socket.local_addr().unwrap()), Some(0));
        }
    }
}
