//! The host-VPN attachment: one TUN interface per configured network, each with its
//! [`Boundary`] (IP <-> Ethernet, ARP/NDP emulation, the checksum / fragment / extension
//! header policy), driven on the driver task.
//!
//! Data path, all on one thread with buffers reused (no allocation per packet):
//! TUN read (up to [`READ_BATCH`] packets per device per wake) -> `Boundary::from_tun` ->
//! `Node::handle_frame`; and `Event::Frame` -> `Boundary::from_network` -> TUN write.
//!
//! Ports follow the node's networks ([`Attachment::sync`]): a network with a config in
//! force gets an interface named by [`interface_name`], whose addresses, routes and MTU a
//! reconciler task keeps in line with the config and the per-network settings; a network
//! left, refused or without config loses its port, and closing the TUN removes the
//! interface with its addresses and routes. Every drop at this layer is counted per port.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};
use ztrs_platform::tun::TunDevice;

use super::attachment::Attachment;
use super::interfaces::{InterfaceState, desired_state, interface_name, spawn_reconciler};
use crate::dataplane::{Boundary, BoundaryConfig, FromNetwork, FromTun, Policy};
use crate::node::{NetworkStatus, Node};
use crate::store::NetworkSettings;
use crate::wire::NetworkId;
use crate::wire::mac::{Mac, MulticastGroup};

/// Packets read from one device per wake before the others (and the socket) get a turn.
const READ_BATCH: usize = 64;

/// Read buffer: the largest ZeroTier MTU plus room to notice anything larger.
const READ_BUFFER_LEN: usize = 10_240;

/// How often the kernel's multicast memberships on our interfaces are read.
const MEMBERSHIP_POLL_MS: u64 = 2_000;

/// Where per-network local settings come from (the home directory in the daemon).
pub type SettingsSource = Box<dyn Fn(NetworkId) -> NetworkSettings + Send>;

/// Counts of one port's TUN I/O (the boundary keeps its own).
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortCounters {
    pub tun_packets_read: u64,
    pub tun_packets_written: u64,
    /// Reads that failed (including packets larger than the buffer).
    pub tun_read_errors: u64,
    /// Writes refused because the kernel's queue was full (dropped).
    pub tun_write_full: u64,
    pub tun_write_errors: u64,
}

struct Port {
    device: TunDevice,
    boundary: Boundary,
    revision: u64,
    settings: NetworkSettings,
    desired: watch::Sender<InterfaceState>,
    counters: PortCounters,
    /// Readiness failed, or reads kept failing: stop polling this device rather than spin
    /// on it; the next sync closes it and opens the network's interface again.
    broken: bool,
}

/// The TUN attachment (see the module doc).
pub struct TunPorts {
    ports: BTreeMap<u64, Port>,
    settings: SettingsSource,
    policy: Policy,
    read_buffer: Vec<u8>,
    frame: Vec<u8>,
    packet: Vec<u8>,
    next_membership_poll: u64,
    /// Frames for networks without a port (left, or not configured yet).
    frames_without_port: u64,
    port_failures: u64,
}

impl TunPorts {
    pub fn new(settings: SettingsSource, policy: Policy) -> TunPorts {
        TunPorts {
            ports: BTreeMap::new(),
            settings,
            policy,
            read_buffer: vec![0; READ_BUFFER_LEN],
            frame: Vec::with_capacity(READ_BUFFER_LEN),
            packet: Vec::with_capacity(READ_BUFFER_LEN),
            next_membership_poll: 0,
            frames_without_port: 0,
            port_failures: 0,
        }
    }

    /// Creates the port of `nwid` (interface created, reconciler started).
    fn open_port(&mut self, node: &Node, nwid: NetworkId) -> io::Result<Port> {
        let info = node
            .network(nwid)
            .and_then(|n| n.config)
            .ok_or_else(|| io::Error::other("network has no config"))?;
        let name = interface_name(nwid);
        let device = TunDevice::create(&name)?;
        let settings = (self.settings)(nwid);
        let state = desired_state(&info, &settings);
        let (desired, receiver) = watch::channel(state);
        spawn_reconciler(name.clone(), device.index(), receiver);
        let boundary = Boundary::new(BoundaryConfig::from_netconf(
            &info,
            node.address(),
            self.policy,
        ));
        info!(network = %nwid, interface = %name, "network port opened");
        Ok(Port {
            device,
            boundary,
            revision: info.revision,
            settings,
            desired,
            counters: PortCounters::default(),
            broken: false,
        })
    }

    /// Writes what a boundary produced for the TUN (ICMP errors) and hands what it released
    /// for the network to the node.
    fn flush_port(
        port: &mut Port,
        node: &mut Node,
        now_ms: u64,
        nwid: NetworkId,
        frame: &mut Vec<u8>,
        packet: &mut Vec<u8>,
    ) {
        while port.boundary.poll_to_network(frame) {
            node.handle_frame(now_ms, nwid, frame);
        }
        while port.boundary.poll_to_tun(packet) {
            write_tun(port, packet);
        }
    }

    /// Reads the kernel's multicast memberships of each interface and subscribes the node.
    fn poll_memberships(&mut self, node: &mut Node, now_ms: u64) {
        for (nwid, port) in &self.ports {
            let groups = kernel_groups(port.device.name());
            node.set_multicast_subscriptions(now_ms, NetworkId(*nwid), &groups);
        }
    }
}

/// One packet into the TUN; a full queue drops it (counted), as a NIC ring would.
fn write_tun(port: &mut Port, packet: &[u8]) {
    match port.device.try_send(packet) {
        Ok(_) => port.counters.tun_packets_written += 1,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => port.counters.tun_write_full += 1,
        Err(_) => port.counters.tun_write_errors += 1,
    }
}

/// The groups the kernel listens to on `interface`, as ZeroTier multicast groups.
#[cfg(target_os = "linux")]
fn kernel_groups(interface: &str) -> Vec<MulticastGroup> {
    let Ok(ips) = ztrs_platform::netlink::multicast_memberships(interface) else {
        return Vec::new();
    };
    ips.into_iter().filter_map(group_of).collect()
}

#[cfg(not(target_os = "linux"))]
fn kernel_groups(_interface: &str) -> Vec<MulticastGroup> {
    Vec::new()
}

/// The Ethernet multicast group of an IP multicast address (RFC 1112 / RFC 2464), ADI 0.
/// The all-hosts groups are left out: broadcast-like traffic rides the broadcast group.
pub fn group_of(ip: IpAddr) -> Option<MulticastGroup> {
    match ip {
        IpAddr::V4(v4) if v4.is_multicast() && v4.octets() != [224, 0, 0, 1] => {
            let o = v4.octets();
            Some(MulticastGroup::new(
                Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]),
                0,
            ))
        }
        IpAddr::V6(v6) if v6.is_multicast() && !is_all_nodes(v6) => {
            let o = v6.octets();
            Some(MulticastGroup::new(
                Mac([0x33, 0x33, o[12], o[13], o[14], o[15]]),
                0,
            ))
        }
        _ => None,
    }
}

/// `ff0X::1`, the all-nodes group of any scope (every host hears it anyway).
fn is_all_nodes(ip: std::net::Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xfff0) == 0xff00 && s[1..] == [0, 0, 0, 0, 0, 0, 1]
}

impl Attachment for TunPorts {
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut ready = false;
        for port in self.ports.values_mut().filter(|p| !p.broken) {
            match port.device.poll_readable(cx) {
                Poll::Ready(Ok(())) => ready = true,
                Poll::Ready(Err(err)) => {
                    warn!(interface = port.device.name(), %err, "TUN readiness failed; port paused");
                    port.broken = true;
                }
                Poll::Pending => {}
            }
        }
        if ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn pump(&mut self, node: &mut Node, now_ms: u64) {
        for (nwid, port) in &mut self.ports {
            let nwid = NetworkId(*nwid);
            let mut errors = 0;
            for _ in 0..READ_BATCH {
                let len = match port.device.try_recv(&mut self.read_buffer) {
                    Ok(len) => len,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => {
                        port.counters.tun_read_errors += 1;
                        errors += 1;
                        if errors == READ_BATCH {
                            // Every read of a full batch failed: the device is unusable.
                            warn!(interface = port.device.name(), %err, "TUN reads keep failing; port paused");
                            port.broken = true;
                        }
                        continue;
                    }
                };
                port.counters.tun_packets_read += 1;
                let Some(packet) = self.read_buffer.get(..len) else {
                    continue;
                };
                match port.boundary.from_tun(now_ms, packet, &mut self.frame) {
                    FromTun::ToNetwork => node.handle_frame(now_ms, nwid, &self.frame),
                    FromTun::Pending | FromTun::Dropped(_) => {}
                }
                TunPorts::flush_port(port, node, now_ms, nwid, &mut self.frame, &mut self.packet);
            }
        }
    }

    fn deliver(&mut self, node: &mut Node, now_ms: u64, nwid: NetworkId, frame: &[u8]) {
        let Some(port) = self.ports.get_mut(&nwid.0) else {
            self.frames_without_port += 1;
            return;
        };
        match port.boundary.from_network(now_ms, frame, &mut self.frame) {
            FromNetwork::ToTun(range) => {
                if let Some(packet) = frame.get(range) {
                    write_tun(port, packet);
                }
            }
            FromNetwork::ToNetwork => node.handle_frame(now_ms, nwid, &self.frame),
            FromNetwork::Consumed | FromNetwork::Dropped(_) => {}
        }
        TunPorts::flush_port(port, node, now_ms, nwid, &mut self.frame, &mut self.packet);
    }

    fn sync(&mut self, node: &mut Node, now_ms: u64) {
        let configured: Vec<NetworkId> = node
            .networks()
            .filter(|n| n.status == NetworkStatus::Ok && n.config.is_some())
            .map(|n| n.nwid)
            .collect();
        // Left or refused networks lose their port; a broken port is closed and reopened.
        let gone: Vec<u64> = self
            .ports
            .iter()
            .filter(|(id, port)| port.broken || !configured.iter().any(|n| n.0 == **id))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(port) = self.ports.remove(&id) {
                info!(network = %NetworkId(id), interface = port.device.name(), "network port closed");
            }
        }
        for nwid in configured {
            match self.ports.get_mut(&nwid.0) {
                Some(port) => {
                    let Some(config) = node.network(nwid).and_then(|n| n.config) else {
                        continue;
                    };
                    // Local settings can change without a new config (the API's POST).
                    let settings = (self.settings)(nwid);
                    if config.revision != port.revision {
                        port.revision = config.revision;
                        port.boundary.reconfigure(BoundaryConfig::from_netconf(
                            &config,
                            node.address(),
                            self.policy,
                        ));
                    } else if settings == port.settings {
                        continue;
                    }
                    port.settings = settings;
                    port.desired.send_replace(desired_state(&config, &settings));
                }
                None => match self.open_port(node, nwid) {
                    Ok(port) => {
                        self.ports.insert(nwid.0, port);
                    }
                    Err(err) => {
                        self.port_failures += 1;
                        warn!(network = %nwid, %err, "cannot open the network's interface");
                    }
                },
            }
        }
        // New interfaces: subscribe to what the kernel already listens to.
        self.next_membership_poll = now_ms;
    }

    fn poll_timeout(&self) -> Option<u64> {
        let boundaries = self
            .ports
            .values()
            .filter_map(|p| p.boundary.poll_timeout())
            .min();
        let memberships = (!self.ports.is_empty()).then_some(self.next_membership_poll);
        match (boundaries, memberships) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, node: &mut Node, now_ms: u64) {
        for (nwid, port) in &mut self.ports {
            port.boundary.handle_timeout(now_ms);
            TunPorts::flush_port(
                port,
                node,
                now_ms,
                NetworkId(*nwid),
                &mut self.frame,
                &mut self.packet,
            );
        }
        if now_ms >= self.next_membership_poll {
            self.next_membership_poll = now_ms + MEMBERSHIP_POLL_MS;
            if self.ports.values().any(|p| p.broken) {
                self.sync(node, now_ms);
            }
            self.poll_memberships(node, now_ms);
        }
    }

    fn network_report(&self, nwid: NetworkId) -> Option<serde_json::Value> {
        let port = self.ports.get(&nwid.0)?;
        Some(serde_json::json!({
            "portDeviceName": port.device.name(),
            "tun": port.counters,
            "boundary": port.boundary.counters(),
            "neighbours": port.boundary.neighbour_count(),
        }))
    }

    fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "ports": self.ports.len(),
            "framesWithoutPort": self.frames_without_port,
            "portFailures": self.port_failures,
        })
    }

    fn close(&mut self) {
        for (id, port) in std::mem::take(&mut self.ports) {
            info!(network = %NetworkId(id), interface = port.device.name(), "network port closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_groups_of_ip_groups() {
        let g = group_of("239.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(g.mac, Mac([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]));
        let g = group_of("239.129.2.3".parse().unwrap()).unwrap();
        assert_eq!(g.mac, Mac([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]));
        let g = group_of("ff02::1:ff00:1234".parse().unwrap()).unwrap();
        assert_eq!(g.mac, Mac([0x33, 0x33, 0xff, 0x00, 0x12, 0x34]));
        assert!(group_of("224.0.0.1".parse().unwrap()).is_none());
        assert!(group_of("ff02::1".parse().unwrap()).is_none());
        assert!(group_of("ff01::1".parse().unwrap()).is_none());
        assert!(group_of("10.0.0.1".parse().unwrap()).is_none());
    }
}
