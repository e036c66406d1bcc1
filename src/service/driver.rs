//! The driver task: one tokio task owning one [`Node`] and its UDP socket, so a node's state
//! is only ever touched from one place (no flow sprayed across threads).
//!
//! Each turn of the loop drains the node (transmits into the outbound queue, events into the
//! bounded event channel), flushes the queue with batched sends, then waits for whichever
//! comes first: a stop request, the node's next deadline (`sleep_until`), socket room for a
//! blocked queue, a command, or incoming datagrams. Nothing slow is awaited inline: the only
//! awaits are that wait, and every socket call is non-blocking (H5.3).
//!
//! Addresses: the node is given each datagram's real local endpoint (the packet's destination
//! IP on the Linux batch path, else the bound address) and canonical remote. With one socket
//! per service, a transmit's `local` only tells which socket to use, so it is not consulted;
//! the socket maps IPv4 destinations for a dual-stack socket itself.
//!
//! Failure policy:
//! - a receive error is counted, logged and the loop goes on; a long streak of them (a
//!   broken socket) pauses receiving for a moment instead of spinning;
//! - a send error drops only the datagram it concerns; the rest of the batch is retried
//!   (per-destination isolation);
//! - a full outbound queue (the kernel has had no room for a long time) drops new transmits,
//!   counted; a full event channel drops events, counted; a dropped event receiver is not an
//!   error (events are then discarded, counted).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{Instrument, debug, info, info_span, warn};
use ztrs_platform::udp::{FamilyMode, MAX_BATCH, RecvMeta, UdpUnderlay};

use super::attachment::Attachment;
use super::clock::EpochClock;
use super::events::{self, EventHub};
use super::handle::{Command, ServiceHandle, Shared};
use super::impair::{Impairer, Impairment};
use super::stats::StatsCells;
use crate::node::{Event, Node, NodeConfig};

/// Receive buffer size: a whole UDP GRO message (up to 64 KiB of coalesced datagrams, see
/// `ztrs_platform::udp`); a single datagram above it is flagged and dropped. The pages are
/// only touched as far as the kernel writes, so idle memory stays small.
const RECEIVE_BUFFER_LEN: usize = 64 * 1024;

/// Receive batches handled per readiness wake-up before timers, commands and sends get a
/// turn (fairness under a flood).
const BATCHES_PER_WAKE: usize = 8;

/// Consecutive receive errors after which receiving pauses for [`RECEIVE_PAUSE`].
const RECEIVE_ERROR_STREAK_LIMIT: u32 = 64;
const RECEIVE_PAUSE: Duration = Duration::from_millis(50);

/// Passes of draining the node per call (see [`Driver::drain_node`]).
const DRAIN_ROUNDS: usize = 4;

/// Sent buffers kept for reuse by the node's transmit path.
const BUFFER_POOL_LEN: usize = 256;

/// Tunables of a service; [`ServiceOptions::default`] suits a member or a root.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceOptions {
    /// Capacity of the event channel; events beyond it are dropped and counted. Also the
    /// ring of [`ServiceHandle::subscribe`] subscriptions (rounded up to a power of two).
    pub event_capacity: usize,
    /// Capacity of the command channel (senders wait for room).
    pub command_capacity: usize,
    /// Datagrams waiting for socket room before new transmits are dropped.
    pub transmit_queue: usize,
    /// How long [`ServiceHandle::shutdown`] waits for the driver before aborting it.
    pub shutdown_timeout: Duration,
    /// Test-only fault injection on outbound datagrams (see [`super::impair`]).
    pub impairment: Option<Impairment>,
}

impl Default for ServiceOptions {
    fn default() -> ServiceOptions {
        ServiceOptions {
            event_capacity: 1024,
            command_capacity: 64,
            transmit_queue: 4096,
            shutdown_timeout: Duration::from_secs(5),
            impairment: None,
        }
    }
}

/// Starts a node over `socket` on its own task. Returns the handle and the receiving end of
/// the bounded event channel (it ends with `None` when the service stops). Needs a tokio
/// runtime (time and I/O enabled).
pub fn spawn(
    config: NodeConfig,
    socket: UdpUnderlay,
    options: ServiceOptions,
) -> io::Result<(ServiceHandle, mpsc::Receiver<Event>)> {
    spawn_attached(config, socket, options, None)
}

/// [`spawn`] with a local side: the attachment gets the node's frames and network changes
/// (which then do not appear on the event channel as `Event::Frame`), and feeds it local
/// frames, all on the driver task.
pub fn spawn_attached(
    config: NodeConfig,
    socket: UdpUnderlay,
    options: ServiceOptions,
    attachment: Option<Box<dyn Attachment>>,
) -> io::Result<(ServiceHandle, mpsc::Receiver<Event>)> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("service::spawn needs a tokio runtime"))?;
    let mut config = config;
    if config.local_addresses.is_empty() {
        config.local_addresses = sending_addresses(&socket);
    }
    let clock = EpochClock::start();
    let node = Node::new(config, clock.now_ms());
    let address = node.address();
    let local_addr = socket.local_addr();
    let (event_tx, event_rx) = mpsc::channel(options.event_capacity.max(1));
    let (hub, subscriptions) = events::channel(options.event_capacity);
    let (command_tx, command_rx) = mpsc::channel(options.command_capacity.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(StatsCells::default());
    let buffers = socket.buffer_sizes();
    let offloads = socket.offloads();
    info!(
        gso = offloads.gso,
        gro = offloads.gro,
        %address,
        %local_addr,
        family = ?socket.mode(),
        batching = ?socket.batch_mode(),
        recv_buffer = buffers.recv,
        send_buffer = buffers.send,
        forced_buffers = buffers.forced,
        "service starting"
    );
    let driver = Driver {
        node,
        socket,
        clock,
        commands: command_rx,
        stop: stop_rx,
        events: event_tx,
        events_open: true,
        hub,
        stats: Arc::clone(&stats),
        outbound: VecDeque::new(),
        outbound_capacity: options.transmit_queue.max(MAX_BATCH),
        pool: Vec::new(),
        // One zeroed allocation each (not clones of one buffer), so untouched pages stay
        // unmapped.
        receive_buffers: (0..MAX_BATCH)
            .map(|_| vec![0; RECEIVE_BUFFER_LEN])
            .collect(),
        receive_meta: vec![RecvMeta::default(); MAX_BATCH],
        receive_error_streak: 0,
        receive_paused_until: None,
        last_timeout_ms: 0,
        attachment,
        impairer: options.impairment.map(Impairer::new),
    };
    let span = info_span!("service", node = %address, local = %local_addr);
    let task = runtime.spawn(driver.run().instrument(span));
    let shared = Arc::new(Shared {
        address,
        local_addr,
        stop: stop_tx,
        task: Mutex::new(Some(task)),
        stats,
        shutdown_timeout: options.shutdown_timeout,
        subscriptions,
    });
    Ok((
        ServiceHandle {
            commands: command_tx,
            shared,
        },
        event_rx,
    ))
}

/// What the node should know about the socket: one address per family it can send on, so
/// first contacts go out and PUSH_DIRECT_PATHS announces only real (non-wildcard) addresses.
fn sending_addresses(socket: &UdpUnderlay) -> Vec<SocketAddr> {
    let local = socket.local_addr();
    let port = local.port();
    match socket.mode() {
        FamilyMode::DualStack if local.ip().is_unspecified() => vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ],
        _ => vec![local],
    }
}

/// Everything the driver task owns.
struct Driver {
    node: Node,
    socket: UdpUnderlay,
    clock: EpochClock,
    commands: mpsc::Receiver<Command>,
    stop: watch::Receiver<bool>,
    events: mpsc::Sender<Event>,
    events_open: bool,
    /// Subscribers' broadcast ring (lifecycle events, never frames; never waits).
    hub: EventHub,
    stats: Arc<StatsCells>,
    /// Datagrams the node produced that the kernel has not taken yet, in order.
    outbound: VecDeque<(SocketAddr, Vec<u8>)>,
    outbound_capacity: usize,
    /// Sent buffers handed back to the node's transmit path.
    pool: Vec<Vec<u8>>,
    receive_buffers: Vec<Vec<u8>>,
    receive_meta: Vec<RecvMeta>,
    receive_error_streak: u32,
    receive_paused_until: Option<Instant>,
    /// `now` of the last `handle_timeout`, so a deadline that is not moving cannot spin.
    last_timeout_ms: u64,
    /// The local side (TUN interfaces ...), if any.
    attachment: Option<Box<dyn Attachment>>,
    /// Test-only fault injection in front of the socket.
    impairer: Option<Impairer>,
}

/// What woke the loop.
enum Wake {
    Stop,
    Timeout,
    Writable(io::Result<()>),
    Command(Option<Command>),
    Readable(io::Result<()>),
    ResumeReceive,
    LocalInput,
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.drain_node();
            self.flush();
            if *self.stop.borrow() {
                break;
            }
            let now = Instant::now();
            let node_deadline = [
                self.node.poll_timeout(),
                self.attachment.as_ref().and_then(|a| a.poll_timeout()),
                self.impairer.as_ref().and_then(Impairer::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .min();
            let deadline = node_deadline.map(|deadline_ms| {
                let deadline_ms = deadline_ms.max(self.last_timeout_ms.saturating_add(1));
                self.clock.instant_of(deadline_ms, now)
            });
            let paused_until = self.receive_paused_until;
            let blocked = !self.outbound.is_empty();
            let attached = self.attachment.is_some();
            let attachment = &mut self.attachment;
            let local_input = std::future::poll_fn(move |cx| match attachment.as_mut() {
                Some(attachment) => attachment.poll_input(cx),
                None => std::task::Poll::Pending,
            });
            let wake = tokio::select! {
                biased;
                changed = self.stop.changed() => match changed {
                    // Every handle is gone: nobody can use this node any more.
                    Err(_) => Wake::Stop,
                    Ok(()) => if *self.stop.borrow() { Wake::Stop } else { continue },
                },
                () = sleep_until(deadline.unwrap_or(now)), if deadline.is_some() => Wake::Timeout,
                ready = self.socket.writable(), if blocked => Wake::Writable(ready),
                command = self.commands.recv() => Wake::Command(command),
                ready = self.socket.readable(), if paused_until.is_none() => Wake::Readable(ready),
                () = sleep_until(paused_until.unwrap_or(now)), if paused_until.is_some() => {
                    Wake::ResumeReceive
                }
                () = local_input, if attached => Wake::LocalInput,
            };
            match wake {
                Wake::Stop | Wake::Command(None) => break,
                Wake::Timeout => {
                    let now_ms = self.clock.now_ms();
                    self.last_timeout_ms = now_ms;
                    self.node.handle_timeout(now_ms);
                    if let Some(attachment) = self.attachment.as_mut() {
                        attachment.handle_timeout(&mut self.node, now_ms);
                    }
                    if let Some(impairer) = self.impairer.as_mut() {
                        impairer.release(now_ms, &mut self.outbound);
                    }
                }
                Wake::LocalInput => {
                    if let Some(attachment) = self.attachment.as_mut() {
                        attachment.pump(&mut self.node, self.clock.now_ms());
                    }
                }
                // The flush at the top of the loop uses the room.
                Wake::Writable(Ok(())) => {}
                Wake::Command(Some(command)) => self.apply(command),
                Wake::Readable(Ok(())) => self.receive(),
                Wake::Writable(Err(err)) | Wake::Readable(Err(err)) => {
                    // Readiness itself failed (the reactor is shutting down): back off.
                    warn!(%err, "socket readiness failed");
                    self.pause_receiving();
                }
                Wake::ResumeReceive => self.receive_paused_until = None,
            }
        }
        // One last non-blocking attempt so replies already produced are not lost.
        self.drain_node();
        self.flush();
        if let Some(attachment) = self.attachment.as_mut() {
            attachment.close();
        }
        let stats = self.stats.snapshot();
        if let Some(impairer) = &self.impairer {
            info!(counters = ?impairer.counters, "fault injection (ZTRS_IMPAIR) summary");
        }
        info!(
            unsent = self.outbound.len(),
            received = stats.datagrams_received,
            sent = stats.datagrams_sent,
            "service stopped"
        );
    }

    /// Moves everything the node has to say into the outbound queue and the event channel.
    fn drain_node(&mut self) {
        // Delivering frames to the attachment can queue replies (ARP, neighbour answers) and
        // a sync can queue requests: go round until a pass moved no frame and no change.
        // Bounded, so a node that keeps producing cannot hold the loop.
        for _ in 0..DRAIN_ROUNDS {
            if !self.drain_once() {
                break;
            }
        }
    }

    /// One pass of [`Driver::drain_node`]; true if the attachment was handed anything.
    fn drain_once(&mut self) -> bool {
        loop {
            let mut buf = self.pool.pop().unwrap_or_default();
            let Some(transmit) = self.node.poll_transmit(&mut buf) else {
                self.recycle(buf);
                break;
            };
            if let Some(ttl) = transmit.ttl {
                // Rare (hole punching): keep order by flushing first, then send it alone with
                // its TTL, outside the batch.
                self.flush();
                match self.socket.try_send_with_ttl(transmit.remote, &buf, ttl) {
                    Ok(()) => StatsCells::add(&self.stats.datagrams_sent, 1),
                    Err(err) => {
                        debug!(remote = %transmit.remote, %err, "short-TTL send failed");
                        StatsCells::add(&self.stats.send_errors, 1);
                    }
                }
                self.recycle(buf);
                continue;
            }
            if self.outbound.len() >= self.outbound_capacity {
                StatsCells::add(&self.stats.transmit_queue_full, 1);
                self.recycle(buf);
                continue;
            }
            match self.impairer.as_mut() {
                Some(impairer) => impairer.process(
                    self.clock.now_ms(),
                    transmit.remote,
                    buf,
                    &mut self.outbound,
                ),
                None => self.outbound.push_back((transmit.remote, buf)),
            }
            if self.outbound.len() >= MAX_BATCH {
                self.flush();
            }
        }
        let mut networks_changed = false;
        let mut frames = 0usize;
        let now_ms = self.clock.now_ms();
        while let Some(event) = self.node.poll_event() {
            if let Some(attachment) = self.attachment.as_mut() {
                match &event {
                    Event::Frame { nwid, data } => {
                        attachment.deliver(&mut self.node, now_ms, *nwid, data);
                        frames += 1;
                        if let Event::Frame { data, .. } = event {
                            self.node.recycle_frame(data);
                        }
                        continue;
                    }
                    Event::NetworkConfigured { .. } | Event::NetworkStatus { .. } => {
                        networks_changed = true;
                    }
                    _ => {}
                }
            }
            self.deliver(event);
        }
        if frames > 0
            && let Some(attachment) = self.attachment.as_mut()
        {
            attachment.flush(&mut self.node, now_ms);
        }
        if networks_changed && let Some(attachment) = self.attachment.as_mut() {
            attachment.sync(&mut self.node, now_ms);
        }
        frames > 0 || networks_changed
    }

    /// Hands an event to the channel without waiting.
    fn deliver(&mut self, event: Event) {
        self.hub.publish_node(&event);
        if !self.events_open {
            StatsCells::add(&self.stats.events_unobserved, 1);
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                StatsCells::add(&self.stats.events_dropped, 1);
                debug!(?event, "event channel full; event dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.events_open = false;
                StatsCells::add(&self.stats.events_unobserved, 1);
                info!("event receiver dropped; further events are discarded");
            }
        }
    }

    /// Sends queued datagrams until the queue is empty or the kernel has no room.
    fn flush(&mut self) {
        const NOWHERE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        while !self.outbound.is_empty() {
            let result = {
                let mut batch: [(SocketAddr, &[u8]); MAX_BATCH] = [(NOWHERE, &[]); MAX_BATCH];
                let mut count = 0;
                for (slot, (remote, data)) in batch.iter_mut().zip(&self.outbound) {
                    *slot = (*remote, data.as_slice());
                    count += 1;
                }
                self.socket.try_send_batch(&batch[..count])
            };
            match result {
                Ok(sent) => {
                    for _ in 0..sent {
                        if let Some((_, buf)) = self.outbound.pop_front() {
                            self.recycle(buf);
                        }
                    }
                    StatsCells::add(&self.stats.datagrams_sent, sent as u64);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    // Only this destination failed; drop its datagram and go on.
                    if let Some((remote, buf)) = self.outbound.pop_front() {
                        debug!(%remote, %err, "send failed; datagram dropped");
                        self.recycle(buf);
                    }
                    StatsCells::add(&self.stats.send_errors, 1);
                }
            }
        }
    }

    /// Reads and handles datagrams until none is waiting (or the per-wake budget is spent).
    fn receive(&mut self) {
        for _ in 0..BATCHES_PER_WAKE {
            match self
                .socket
                .try_recv_batch(&mut self.receive_buffers, &mut self.receive_meta)
            {
                Ok(count) => {
                    self.receive_error_streak = 0;
                    let now_ms = self.clock.now_ms();
                    let mut datagrams = 0u64;
                    for (buf, meta) in self
                        .receive_buffers
                        .iter()
                        .zip(&self.receive_meta)
                        .take(count)
                    {
                        if meta.truncated {
                            StatsCells::add(&self.stats.oversized_dropped, 1);
                            continue;
                        }
                        // One message may carry several datagrams (UDP GRO).
                        for data in meta.segments(buf) {
                            self.node
                                .handle_datagram(now_ms, meta.local, meta.remote, data);
                            datagrams += 1;
                        }
                    }
                    StatsCells::add(&self.stats.datagrams_received, datagrams);
                    // Replies go out between batches rather than after the whole flood.
                    self.drain_node();
                    self.flush();
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    StatsCells::add(&self.stats.receive_errors, 1);
                    self.receive_error_streak += 1;
                    if self.receive_error_streak == 1 {
                        debug!(%err, "receive error; continuing");
                    }
                    if self.receive_error_streak >= RECEIVE_ERROR_STREAK_LIMIT {
                        warn!(%err, "receive keeps failing; pausing receive briefly");
                        self.pause_receiving();
                        return;
                    }
                }
            }
        }
    }

    /// Stops reading for [`RECEIVE_PAUSE`] (timers, commands and sends keep running).
    fn pause_receiving(&mut self) {
        self.receive_error_streak = 0;
        self.receive_paused_until = Some(Instant::now() + RECEIVE_PAUSE);
        StatsCells::add(&self.stats.receive_pauses, 1);
    }

    /// Applies one command to the node.
    fn apply(&mut self, command: Command) {
        let now_ms = self.clock.now_ms();
        StatsCells::add(&self.stats.commands_applied, 1);
        // Replies are dropped silently when the requester stopped waiting.
        match command {
            Command::Echo { to, payload, reply } => {
                let _ = reply.send(self.node.echo(now_ms, to, &payload));
            }
            Command::UserMessage {
                to,
                type_id,
                data,
                reply,
            } => {
                let _ = reply.send(self.node.send_user_message(now_ms, to, type_id, &data));
            }
            Command::Orbit { moon_id, seed } => self.node.orbit(now_ms, moon_id, seed),
            Command::Inspect(job) => job(&self.node),
            Command::InspectMut(job) => {
                let membership = self.hub.membership(&self.node);
                job(&mut self.node, now_ms);
                self.hub.publish_membership_changes(membership, &self.node);
                // The change may have joined or left a network.
                if let Some(attachment) = self.attachment.as_mut() {
                    attachment.sync(&mut self.node, now_ms);
                }
            }
            Command::InspectAttached(job) => job(&self.node, self.attachment.as_deref()),
        }
    }

    /// Returns a sent buffer to the pool the node's transmit path draws from.
    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < BUFFER_POOL_LEN && buf.capacity() > 0 {
            buf.clear();
            self.pool.push(buf);
        }
    }
}
