//! The state shared between the driver task (which runs the stacks) and the application's
//! sockets: every network's [`NetworkStack`], the listeners and UDP bindings that span
//! networks, the ephemeral port allocator and the counters, behind one mutex.
//!
//! Sockets lock it only to copy bytes in or out of smoltcp's buffers and then [`kick`] the
//! driver, which polls the stacks on its own task; smoltcp's wakers tell the sockets when to
//! look again. No queue of packets or bytes runs between them, so nothing is copied twice
//! and there is no channel to overflow.
//!
//! [`kick`]: Shared::kick

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use serde::Serialize;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use tokio::sync::watch;

use super::config::NetstackConfig;
use super::front::FrontCounters;
use super::network::{NetworkStack, Role};

/// First ephemeral port (IANA dynamic range).
const EPHEMERAL_FIRST: u16 = 49_152;

/// Counters of the stacks as a whole (each network's boundary and device keep their own).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetstackCounters {
    pub tcp_connects: u64,
    pub tcp_connect_failures: u64,
    pub tcp_accepted: u64,
    /// Handshakes refused (reset) because a listener's backlog was full (H1.6).
    pub listen_backlog_full: u64,
    /// Connection requests (SYN) dropped because the listener's backlog had no room for
    /// another handshake; the client retransmits (`syn_gate`).
    pub syn_dropped: u64,
    /// Sockets refused because a network had `max_tcp_sockets` already.
    pub tcp_socket_limit: u64,
    /// Dropped streams that did not finish closing within the linger time (aborted).
    pub linger_aborts: u64,
    /// Streams reset because received data can no longer be read: it was unread when the
    /// stream was dropped, or arrived after (RFC 2525 2.17, as Linux does), so the peer
    /// stops sending at once instead of at the linger deadline (H1.3, H1.5).
    pub unread_data_resets: u64,
    pub udp_datagrams_sent: u64,
    pub udp_datagrams_received: u64,
    /// Datagrams a UDP socket could not queue (its send buffer was full).
    pub udp_send_full: u64,
    /// Frames for a network that has no stack (left, or not configured yet).
    pub frames_without_stack: u64,
}

/// Where a socket lives: a network's stack (in one epoch) and its handle there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SocketRef {
    pub nwid: u64,
    pub epoch: u64,
    pub handle: SocketHandle,
}

/// A listener: its address (maybe unspecified: every managed address of the family),
/// port, backlog and the connections ready for `accept`.
pub(crate) struct ListenerState {
    pub ip: IpAddr,
    pub port: u16,
    pub backlog: usize,
    pub ready: VecDeque<(SocketRef, SocketAddr, SocketAddr)>,
    pub waker: Option<Waker>,
    /// A handshake slot is missing on some address because the backlog is full.
    pub starved: bool,
}

impl ListenerState {
    /// Whether the listener takes connections to `ip`.
    pub fn covers(&self, ip: IpAddr) -> bool {
        if self.ip.is_unspecified() {
            self.ip.is_ipv4() == ip.is_ipv4()
        } else {
            self.ip == ip
        }
    }
}

/// A UDP binding: one smoltcp socket per network stack it applies to.
pub(crate) struct UdpBinding {
    pub ip: IpAddr,
    pub port: u16,
}

/// Everything behind the lock (see the module doc).
pub(crate) struct Inner {
    pub stacks: BTreeMap<u64, NetworkStack>,
    pub next_epoch: u64,
    pub listeners: BTreeMap<u64, ListenerState>,
    pub udp: BTreeMap<u64, UdpBinding>,
    next_id: u64,
    next_port: u16,
    pub counters: NetstackCounters,
    /// The attachment is gone (daemon stopping): every operation fails.
    pub shut_down: bool,
}

impl Inner {
    fn new() -> Inner {
        Inner {
            stacks: BTreeMap::new(),
            next_epoch: 1,
            listeners: BTreeMap::new(),
            udp: BTreeMap::new(),
            next_id: 1,
            next_port: EPHEMERAL_FIRST,
            counters: NetstackCounters::default(),
            shut_down: false,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The stack a reference points into, if it is still the same stack.
    pub fn stack_of(&mut self, at: &SocketRef) -> Option<&mut NetworkStack> {
        self.stacks
            .get_mut(&at.nwid)
            .filter(|s| s.epoch == at.epoch)
    }

    /// The network that reaches `ip` most specifically (longest prefix).
    pub fn stack_for(&mut self, ip: IpAddr) -> Option<&mut NetworkStack> {
        let nwid = self
            .stacks
            .values()
            .filter_map(|s| s.route_specificity(ip).map(|p| (p, s.nwid.0)))
            .max_by_key(|(p, _)| *p)
            .map(|(_, nwid)| nwid)?;
        self.stacks.get_mut(&nwid)
    }

    /// The port a new binding of `addr` gets, checking what TCP listeners and UDP bindings
    /// share: the node is running, the address is unspecified or one of ours, and port 0
    /// means a free ephemeral port. `taken` says whether a binding of the same kind already
    /// covers (ip, port).
    pub fn bind_port(
        &mut self,
        addr: std::net::SocketAddr,
        taken: impl Fn(&Inner, u16) -> bool,
    ) -> std::io::Result<u16> {
        use std::io::{Error, ErrorKind};
        if self.shut_down {
            return Err(Error::other("the node is stopping"));
        }
        let ip = addr.ip();
        if !ip.is_unspecified() && !self.stacks.values().any(|s| s.addresses().any(|a| a == ip)) {
            return Err(Error::new(
                ErrorKind::AddrNotAvailable,
                format!("{ip} is not a managed address of a joined network"),
            ));
        }
        let port = match addr.port() {
            0 => self
                .ephemeral_port()
                .ok_or_else(|| Error::new(ErrorKind::AddrInUse, "no free ephemeral port"))?,
            port => port,
        };
        if taken(self, port) {
            return Err(Error::new(
                ErrorKind::AddrInUse,
                format!("{ip}:{port} is already bound"),
            ));
        }
        Ok(port)
    }

    /// An ephemeral TCP or UDP port not bound by any listener or binding and not the
    /// local port of any socket.
    pub fn ephemeral_port(&mut self) -> Option<u16> {
        let span = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !self.port_in_use(port) {
                return Some(port);
            }
        }
        None
    }

    fn port_in_use(&self, port: u16) -> bool {
        self.listeners.values().any(|l| l.port == port)
            || self.udp.values().any(|u| u.port == port)
            || self.stacks.values().any(|s| {
                s.meta.keys().any(|h| match s.tcp(*h) {
                    Some(socket) => socket.local_endpoint().is_some_and(|e| e.port == port),
                    None => false,
                })
            })
    }

    /// Brings every listener's handshake slots on `nwid` in line: connections that
    /// completed their handshake move to the accept queue, failed handshakes listen again,
    /// missing slots are added while the backlog has room, slots on addresses the network
    /// no longer has go away. Also finishes or aborts closing sockets.
    /// `now_ms` is `None` outside the driver (no clock): closings are then left alone.
    pub fn review(&mut self, nwid: u64, now_ms: Option<u64>, config: &NetstackConfig) {
        let Some(stack) = self.stacks.get_mut(&nwid) else {
            return;
        };
        let epoch = stack.epoch;
        let addresses: Vec<IpAddr> = stack.addresses().collect();
        let handles: Vec<(SocketHandle, Role)> =
            stack.meta.iter().map(|(h, m)| (*h, m.role)).collect();
        let mut slots: BTreeMap<(u64, IpAddr), usize> = BTreeMap::new();
        stack.review_wanted = false;
        stack.closing = 0;
        for (handle, role) in handles {
            match role {
                Role::Listening { listener, addr } => {
                    let Some(state) = listener_slot_state(stack, handle) else {
                        continue;
                    };
                    let wanted = self
                        .listeners
                        .get(&listener)
                        .is_some_and(|l| l.covers(addr))
                        && addresses.contains(&addr);
                    if !wanted {
                        stack.remove_socket(handle);
                        continue;
                    }
                    match state {
                        tcp::State::Listen | tcp::State::SynReceived => {
                            *slots.entry((listener, addr)).or_default() += 1;
                        }
                        tcp::State::Closed | tcp::State::TimeWait => {
                            // The handshake failed (reset, timeout): listen again.
                            let port = self.listeners.get(&listener).map_or(0, |l| l.port);
                            if let Some(socket) = stack.tcp_mut(handle)
                                && socket.listen((addr, port)).is_ok()
                            {
                                *slots.entry((listener, addr)).or_default() += 1;
                            } else {
                                stack.remove_socket(handle);
                            }
                        }
                        _ => {
                            let Some(l) = self.listeners.get_mut(&listener) else {
                                continue;
                            };
                            let endpoints = stack
                                .tcp(handle)
                                .and_then(|s| Some((s.local_endpoint()?, s.remote_endpoint()?)));
                            match endpoints {
                                Some((local, remote)) if l.ready.len() < l.backlog => {
                                    if let Some(meta) = stack.meta.get_mut(&handle) {
                                        meta.role = Role::Stream;
                                    }
                                    l.ready.push_back((
                                        SocketRef {
                                            nwid,
                                            epoch,
                                            handle,
                                        },
                                        SocketAddr::new(local.addr.into(), local.port),
                                        SocketAddr::new(remote.addr.into(), remote.port),
                                    ));
                                    self.counters.tcp_accepted += 1;
                                    if let Some(waker) = l.waker.take() {
                                        waker.wake();
                                    }
                                }
                                _ => {
                                    if let Some(socket) = stack.tcp_mut(handle) {
                                        socket.abort();
                                    }
                                    if let Some(meta) = stack.meta.get_mut(&handle) {
                                        meta.role = Role::Closing {
                                            deadline_ms: 0,
                                            aborted: true,
                                        };
                                    }
                                    stack.needs_poll = true;
                                    // Swept by the next closing check.
                                    stack.closing += 1;
                                    self.counters.listen_backlog_full += 1;
                                }
                            }
                        }
                    }
                }
                Role::Closing {
                    deadline_ms,
                    aborted,
                } => {
                    stack.closing += 1;
                    let Some(now_ms) = now_ms else {
                        continue;
                    };
                    let state = stack.tcp(handle).map(|s| s.state());
                    if aborted
                        || matches!(
                            state,
                            None | Some(tcp::State::Closed | tcp::State::TimeWait)
                        )
                    {
                        stack.remove_socket(handle);
                        stack.closing -= 1;
                    } else if stack.tcp(handle).is_some_and(|s| s.recv_queue() > 0) {
                        // Data arrived for an owner that is gone: nobody will read it.
                        if let Some(socket) = stack.tcp_mut(handle) {
                            socket.abort();
                        }
                        if let Some(meta) = stack.meta.get_mut(&handle) {
                            meta.role = Role::Closing {
                                deadline_ms,
                                aborted: true,
                            };
                        }
                        stack.needs_poll = true;
                        self.counters.unread_data_resets += 1;
                    } else if deadline_ms == 0 {
                        if let Some(meta) = stack.meta.get_mut(&handle) {
                            meta.role = Role::Closing {
                                deadline_ms: now_ms
                                    .saturating_add(config.linger.as_millis() as u64),
                                aborted: false,
                            };
                        }
                    } else if now_ms >= deadline_ms {
                        if let Some(socket) = stack.tcp_mut(handle) {
                            socket.abort();
                        }
                        if let Some(meta) = stack.meta.get_mut(&handle) {
                            meta.role = Role::Closing {
                                deadline_ms,
                                aborted: true,
                            };
                        }
                        stack.needs_poll = true;
                        self.counters.linger_aborts += 1;
                    }
                }
                Role::UdpDraining => {
                    // Closed by its owner: gone once what it queued has left (a full
                    // device queue can hold it back one poll).
                    if stack.udp_mut(handle).is_none_or(|s| s.send_queue() == 0) {
                        stack.remove_socket(handle);
                    } else {
                        stack.review_wanted = true;
                    }
                }
                Role::Stream | Role::Udp { .. } => {}
            }
        }
        // Missing handshake slots, while the backlog has room.
        for (id, listener) in self.listeners.iter_mut() {
            listener.starved = false;
            let covered: Vec<IpAddr> = addresses
                .iter()
                .copied()
                .filter(|a| listener.covers(*a))
                .collect();
            for addr in &covered {
                let have = slots.get(&(*id, *addr)).copied().unwrap_or(0);
                // Slots stay open while the backlog is full: a handshake completing then is
                // reset and counted (above), so every refusal is seen and memory stays
                // bounded by backlog + slots. Without a slot, smoltcp would refuse the SYN
                // itself and nothing would count it (H1.6).
                let want = config.handshake_slots;
                if want == 0 {
                    listener.starved = true;
                }
                for _ in have..want {
                    if stack.meta.len() >= config.max_tcp_sockets {
                        self.counters.tcp_socket_limit += 1;
                        listener.starved = true;
                        break;
                    }
                    let mut socket = new_tcp_socket(config);
                    if socket.listen((*addr, listener.port)).is_err() {
                        break;
                    }
                    stack.add_socket(
                        socket,
                        Role::Listening {
                            listener: *id,
                            addr: *addr,
                        },
                    );
                }
            }
        }
    }
}

fn listener_slot_state(stack: &NetworkStack, handle: SocketHandle) -> Option<tcp::State> {
    stack.tcp(handle).map(|s| s.state())
}

/// A TCP socket with the configured buffers and options.
pub(crate) fn new_tcp_socket(config: &NetstackConfig) -> tcp::Socket<'static> {
    let rx = tcp::SocketBuffer::new(vec![0; config.tcp_rx_buffer]);
    let tx = tcp::SocketBuffer::new(vec![0; config.tcp_tx_buffer]);
    let mut socket = tcp::Socket::new(rx, tx);
    // Interactive latency matters more than the few small segments Nagle would merge.
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(config.ack_delay.map(to_smoltcp_duration));
    socket.set_keep_alive(config.keep_alive.map(to_smoltcp_duration));
    socket.set_congestion_control(tcp::CongestionControl::Cubic);
    socket
}

pub(crate) fn to_smoltcp_duration(d: std::time::Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The shared half (see the module doc).
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    driver: Mutex<Option<Waker>>,
    dirty: AtomicBool,
    /// Bumped whenever the set of networks or their addresses change.
    pub changes: watch::Sender<u64>,
    pub config: NetstackConfig,
    /// The front ends serving through these stacks, by name, for the counters report.
    pub fronts: Mutex<Vec<(String, Arc<FrontCounters>)>>,
}

impl Shared {
    pub fn new(config: NetstackConfig) -> Shared {
        Shared {
            inner: Mutex::new(Inner::new()),
            driver: Mutex::new(None),
            dirty: AtomicBool::new(false),
            changes: watch::Sender::new(0),
            config,
            fronts: Mutex::new(Vec::new()),
        }
    }

    /// The state; a panic elsewhere while holding it does not make it unusable (every
    /// update to it is a single consistent step).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the driver a stack has work (data to send, a window to open, a socket to
    /// connect or close). Call it after releasing the lock.
    pub fn kick(&self) {
        self.dirty.store(true, Ordering::Release);
        let waker = self
            .driver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The driver's side of [`Shared::kick`]: ready when kicked since the last
    /// [`Shared::take_kick`].
    pub fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut slot = self
                .driver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        if self.dirty.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub fn take_kick(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }
}
