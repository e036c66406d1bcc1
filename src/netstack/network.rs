//! One joined network's user-space stack: a smoltcp [`Interface`] with its sockets, the
//! queue device between them, and the network's dataplane [`Boundary`], so packets entering
//! or leaving the stack pass exactly the checks, ARP/NDP emulation and counters of TUN mode.
//!
//! Sans-IO: the attachment hands it frames the node delivered and a clock; it hands back
//! frames for the node through a callback. It knows nothing of tasks or wakers beyond what
//! smoltcp keeps in its sockets.

use std::collections::HashMap;
use std::net::IpAddr;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::device::QueueDevice;
use crate::dataplane::{Boundary, BoundaryConfig, FromNetwork, FromTun};
use crate::wire::NetworkId;

/// What a socket of the set is for; the set holds only sockets listed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Owned by a `TcpStream` (or waiting in a listener's accept queue).
    Stream,
    /// A listener's socket waiting for a handshake on `addr`.
    Listening { listener: u64, addr: IpAddr },
    /// Its owner dropped it: closing gracefully until `deadline_ms` (0: not set yet),
    /// then aborted; an aborted socket is removed once a poll has sent its reset.
    Closing { deadline_ms: u64, aborted: bool },
    /// A UDP binding's socket on this network.
    Udp { binding: u64 },
    /// A closed UDP binding's socket, kept until the datagrams it queued are sent.
    UdpDraining,
}

/// What we remember of a socket beyond smoltcp's state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SocketMeta {
    pub role: Role,
    pub last_state: tcp::State,
    /// The peer closed its direction (a FIN was seen): reads end with EOF.
    pub peer_closed: bool,
    /// The connection ended without an orderly close (reset or abort).
    pub reset: bool,
    /// Reached ESTABLISHED at least once.
    pub established: bool,
}

impl SocketMeta {
    pub fn new(role: Role) -> SocketMeta {
        SocketMeta {
            role,
            last_state: tcp::State::Closed,
            peer_closed: false,
            reset: false,
            established: false,
        }
    }

    /// Folds a state change into the flags: a peer FIN, or an end that was not orderly.
    /// True if `state` is a transition (it differs from the last one seen).
    pub fn observe_state(&mut self, state: tcp::State) -> bool {
        use tcp::State::*;
        if state == self.last_state {
            return false;
        }
        match state {
            Established => self.established = true,
            CloseWait | LastAck | Closing | TimeWait => {
                self.established = true;
                self.peer_closed = true;
            }
            Closed if !matches!(self.last_state, TimeWait | LastAck | Closed) => {
                self.reset = true;
            }
            _ => {}
        }
        self.last_state = state;
        true
    }
}

/// See the module doc.
pub(crate) struct NetworkStack {
    pub nwid: NetworkId,
    /// Distinguishes this stack from an earlier one of the same network (left and joined
    /// again), so stale socket references never reach the new socket set.
    pub epoch: u64,
    pub iface: Interface,
    pub device: QueueDevice,
    pub sockets: SocketSet<'static>,
    pub boundary: Boundary,
    pub revision: u64,
    pub meta: HashMap<SocketHandle, SocketMeta>,
    /// The sockets of each UDP binding on this network: one per managed address the
    /// binding covers, keyed by (binding, address). A smoltcp socket bound to no address
    /// would take datagrams of both families and those of more specific bindings of the
    /// same port (H3.1).
    pub udp_handles: std::collections::BTreeMap<(u64, IpAddr), SocketHandle>,
    /// Something arrived or changed since the last poll.
    pub needs_poll: bool,
    /// A socket was dropped or a listener changed: review listeners and closings.
    pub review_wanted: bool,
    /// Sockets closing in the background (their linger deadline needs checking).
    pub closing: usize,
    /// When smoltcp next wants a poll (node ms).
    pub next_poll_ms: Option<u64>,
    /// Destinations of the SYNs queued since the last poll (each will take a LISTEN
    /// socket; `syn_gate`). Cleared by every poll, so bounded by the device's rx queue.
    pub queued_syns: Vec<std::net::SocketAddr>,
    frame: Vec<u8>,
    packet: Vec<u8>,
}

/// smoltcp derives initial sequence numbers and ephemeral choices from this seed, so it
/// comes from the operating system (predictable sequence numbers invite blind injection).
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: mix the clock in rather than stop the stack.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos as u64).to_le_bytes();
    }
    u64::from_le_bytes(bytes)
}

pub(crate) fn instant(now_ms: u64) -> Instant {
    Instant::from_millis(i64::try_from(now_ms).unwrap_or(i64::MAX))
}

impl NetworkStack {
    pub fn new(config: BoundaryConfig, revision: u64, epoch: u64, now_ms: u64) -> NetworkStack {
        let mut device = QueueDevice::new(config.mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = random_seed();
        let iface = Interface::new(iface_config, &mut device, instant(now_ms));
        let nwid = config.nwid;
        let mut stack = NetworkStack {
            nwid,
            epoch,
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            boundary: Boundary::new(config.clone()),
            revision,
            meta: HashMap::new(),
            udp_handles: Default::default(),
            needs_poll: true,
            review_wanted: false,
            closing: 0,
            next_poll_ms: Some(now_ms),
            queued_syns: Vec::new(),
            frame: Vec::with_capacity(10_240),
            packet: Vec::with_capacity(10_240),
        };
        stack.apply_addresses(&config);
        stack
    }

    /// A new config: the boundary, the MTU and the addresses follow it. Sockets bound to
    /// an address that went away stay, and simply stop receiving.
    pub fn reconfigure(&mut self, config: BoundaryConfig, revision: u64) {
        self.revision = revision;
        self.device.set_mtu(config.mtu);
        self.apply_addresses(&config);
        self.boundary.reconfigure(config);
        self.needs_poll = true;
    }

    fn apply_addresses(&mut self, config: &BoundaryConfig) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            for (ip, prefix) in &config.addresses {
                // At most the compiled-in address count; the rest are not usable here.
                let _ = addrs.push(IpCidr::new(IpAddress::from(*ip), *prefix));
            }
        });
        // The boundary routes (next hop, ARP/NDP); smoltcp only needs a way out for every
        // destination, so both families get a default route through our own address.
        let routes = self.iface.routes_mut();
        routes.remove_default_ipv4_route();
        routes.remove_default_ipv6_route();
        for (ip, _) in &config.addresses {
            let _ = match ip {
                IpAddr::V4(v4) => routes.add_default_ipv4_route(*v4).map(|_| ()),
                IpAddr::V6(v6) => routes.add_default_ipv6_route(*v6).map(|_| ()),
            };
        }
    }

    pub fn config(&self) -> &BoundaryConfig {
        self.boundary.config()
    }

    /// How specifically this network reaches `ip`: the longest prefix among our subnets and
    /// the network's routes that contains it; `None` when it does not reach it.
    pub fn route_specificity(&self, ip: IpAddr) -> Option<u8> {
        let config = self.config();
        let subnets = config.addresses.iter().map(|(a, p)| (*a, *p));
        let routes = config.routes.iter().map(|(t, p, _)| (*t, *p));
        subnets
            .chain(routes)
            .filter(|(net, prefix)| prefix_contains(*net, *prefix, ip))
            .map(|(_, prefix)| prefix)
            .max()
    }

    /// Our managed addresses on this network.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.config().addresses.iter().map(|(ip, _)| *ip)
    }

    /// A frame the node delivered: through the boundary, then, if `admit` takes the IP
    /// packet, into the stack's queue. `emit` gets frames for the node (ARP replies and the
    /// like).
    pub fn deliver(
        &mut self,
        now_ms: u64,
        frame: &[u8],
        admit: &mut dyn FnMut(&mut NetworkStack, &[u8]) -> bool,
        emit: &mut dyn FnMut(&[u8]),
    ) {
        let outcome = self.boundary.from_network(now_ms, frame, &mut self.frame);
        match outcome {
            FromNetwork::ToTun(range) => {
                if let Some(packet) = frame.get(range)
                    && admit(self, packet)
                {
                    self.device.push_rx(packet);
                    self.needs_poll = true;
                }
            }
            FromNetwork::ToNetwork => emit(&self.frame),
            FromNetwork::Consumed | FromNetwork::Dropped(_) => {}
        }
        self.flush_boundary(emit);
    }

    pub fn tcp(&self, handle: SocketHandle) -> Option<&tcp::Socket<'static>> {
        match self.meta.get(&handle)?.role {
            Role::Udp { .. } | Role::UdpDraining => None,
            _ => Some(self.sockets.get::<tcp::Socket>(handle)),
        }
    }

    pub fn tcp_mut(&mut self, handle: SocketHandle) -> Option<&mut tcp::Socket<'static>> {
        match self.meta.get(&handle)?.role {
            Role::Udp { .. } | Role::UdpDraining => None,
            _ => Some(self.sockets.get_mut::<tcp::Socket>(handle)),
        }
    }

    pub fn udp_mut(&mut self, handle: SocketHandle) -> Option<&mut udp::Socket<'static>> {
        match self.meta.get(&handle)?.role {
            Role::Udp { .. } | Role::UdpDraining => {
                Some(self.sockets.get_mut::<udp::Socket>(handle))
            }
            _ => None,
        }
    }

    pub fn add_socket(
        &mut self,
        socket: impl smoltcp::socket::AnySocket<'static>,
        role: Role,
    ) -> SocketHandle {
        let handle = self.sockets.add(socket);
        self.meta.insert(handle, SocketMeta::new(role));
        self.needs_poll = true;
        handle
    }

    pub fn remove_socket(&mut self, handle: SocketHandle) {
        if self.meta.remove(&handle).is_some() {
            self.sockets.remove(handle);
        }
    }

    /// Runs smoltcp and moves its output through the boundary to `emit`. True when a
    /// socket's state may have changed (the caller then reviews listeners and closings).
    pub fn poll(
        &mut self,
        now_ms: u64,
        filter: Option<&super::config::PacketFilter>,
        emit: &mut dyn FnMut(&[u8]),
    ) -> bool {
        let now = instant(now_ms);
        let mut changed = false;
        // The boundary can hand back packets for the stack (ICMP errors about our own
        // output), so go round while there is input, a bounded number of times.
        for _ in 0..4 {
            self.needs_poll = false;
            if self.iface.poll(now, &mut self.device, &mut self.sockets)
                == PollResult::SocketStateChanged
            {
                changed = true;
            }
            // Every queued SYN has met its socket (or smoltcp's reset).
            self.queued_syns.clear();
            while let Some(packet) = self.device.pop_tx() {
                if filter.is_some_and(|drop| drop(&packet)) {
                    self.device.recycle(packet);
                    continue;
                }
                let outcome = self.boundary.from_tun(now_ms, &packet, &mut self.frame);
                match outcome {
                    FromTun::ToNetwork => emit(&self.frame),
                    FromTun::Pending | FromTun::Dropped(_) => {}
                }
                self.device.recycle(packet);
                self.flush_boundary(emit);
            }
            if self.device.rx_len() == 0 && !self.device.has_tx() {
                break;
            }
        }
        // smoltcp reports "changed" for every packet a socket took, so that alone would
        // send every poll of a bulk transfer through the listener and closing review; only
        // an actual TCP state transition needs it.
        let changed = changed && self.observe_states();
        self.next_poll_ms = self.poll_at(now);
        changed
    }

    /// What the boundary queued: frames for the node, packets for the stack.
    fn flush_boundary(&mut self, emit: &mut dyn FnMut(&[u8])) {
        while self.boundary.poll_to_network(&mut self.frame) {
            emit(&self.frame);
        }
        while self.boundary.poll_to_tun(&mut self.packet) {
            self.device.push_rx(&self.packet);
            self.needs_poll = true;
        }
    }

    fn poll_at(&mut self, now: Instant) -> Option<u64> {
        let smoltcp = self
            .iface
            .poll_at(now, &self.sockets)
            .map(|at| u64::try_from(at.total_millis()).unwrap_or(0));
        match (smoltcp, self.boundary.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records state transitions of TCP sockets (peer FIN, reset) in their metadata.
    /// True if some TCP socket changed state since the last look.
    fn observe_states(&mut self) -> bool {
        let mut any = false;
        for (handle, meta) in self.meta.iter_mut() {
            if matches!(meta.role, Role::Udp { .. } | Role::UdpDraining) {
                continue;
            }
            let state = self.sockets.get::<tcp::Socket>(*handle).state();
            any |= meta.observe_state(state);
        }
        any
    }
}

/// Whether `ip` lies in `net/prefix` (same family).
pub(crate) fn prefix_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = u32::from(prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = u32::from(prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(prefix_contains(ip("10.1.0.0"), 16, ip("10.1.2.3")));
        assert!(!prefix_contains(ip("10.1.0.0"), 16, ip("10.2.2.3")));
        assert!(prefix_contains(ip("0.0.0.0"), 0, ip("192.0.2.1")));
        assert!(prefix_contains(ip("fd00::"), 8, ip("fd12::1")));
        assert!(!prefix_contains(ip("fd00::"), 8, ip("10.0.0.1")));
        assert!(prefix_contains(ip("10.1.2.3"), 32, ip("10.1.2.3")));
    }

    #[test]
    fn state_observation_tells_reset_from_orderly_close() {
        use tcp::State::*;
        let mut meta = SocketMeta::new(Role::Stream);
        for s in [SynSent, Established, CloseWait, LastAck, Closed] {
            meta.observe_state(s);
        }
        assert!(meta.peer_closed && !meta.reset);
        let mut meta = SocketMeta::new(Role::Stream);
        for s in [SynSent, Established, Closed] {
            meta.observe_state(s);
        }
        assert!(meta.reset && !meta.peer_closed);
    }
}
