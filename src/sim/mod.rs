//! A deterministic in-memory network in virtual time, for tests and the demo.
//!
//! [`Sim`] owns a set of [`Host`]s (anything speaking the sans-IO verbs, e.g. the node engine),
//! each owning one or more `SocketAddr`s, a virtual clock in milliseconds, its own seeded
//! [`SimRng`], and a priority queue of datagrams in flight.
//!
//! # The model
//! - A datagram a host emits (or a test [injects](Sim::inject)) is copied whole into the
//!   simulator at once, then passes, in order: the **filters** (which see every datagram and may
//!   drop or rewrite it), the **partitions** active now, the **link** of its direction
//!   (`from -> to` address pair, else the default): loss, then an optional rate-limit bottleneck
//!   with a bounded queue, then delay = base + jitter + (sometimes) a reordering hold-back, and
//!   possibly a duplicate copy with its own delay. It is then queued for delivery.
//! - At delivery time partitions are checked again (a cut also eats what is in flight), the
//!   owner of the destination address is looked up (none: dropped as `no_route`) and the host's
//!   `handle_datagram` runs with `local = to` and `remote = from`.
//! - Every drop is counted per [`DropReason`] in [`SimStats`]; an optional [trace](TraceEntry)
//!   records every send, duplicate, delivery and drop.
//! - [`Sim::step`] jumps the clock to the next event (the earliest delivery or host deadline),
//!   delivers everything due, calls `handle_timeout` on hosts whose deadline passed, and after
//!   every call into a host drains its `poll_transmit` and `poll_event` queues and re-reads its
//!   `poll_timeout`. Tests wait with [`Sim::run_until_condition`], never on wall-clock time.
//!
//! # Determinism
//! Given the same seed, the same sequence of calls on the `Sim`, and hosts that are
//! deterministic functions of their inputs, every run yields the same deliveries at the same
//! virtual times, the same drops, the same counters and the same trace. Nothing reads the wall
//! clock; no decision depends on hash-map iteration order (maps are only used for lookups);
//! simultaneous deliveries are ordered by a global sequence number assigned at send time;
//! due hosts are visited in the order they were added; random draws happen in a fixed order
//! and probabilities of 0 or 1 draw nothing.
//!
//! # Atomic sends (H6.8)
//! A datagram is owned by the simulator from the moment it is polled: whatever the sender does
//! afterwards (restarted with [`Sim::replace_host`], modified through [`Sim::host_mut`]) cannot
//! touch it; only the network (loss, partitions, filters) can. A host's transmit queue is
//! drained completely right after each call into it, and before a host is replaced, so a
//! fan-out is either entirely in the network or was never emitted.
//!
//! # Events
//! Each host's `poll_event` output is stored with its virtual time in a bounded per-host queue
//! ([`Sim::events`], [`Sim::take_events`]), so conditions can look for them.

mod host;
mod link;
mod network;
mod node_host;
mod rng;
mod trace;

pub use host::{Host, HostId};
pub use link::{Cut, DEFAULT_DELAY_MS, LinkConfig, PartitionId, RateLimit};
pub use rng::SimRng;
pub use trace::{
    Datagram, DropReason, DropStats, FilterId, SimStats, TraceEntry, TraceKind, Verdict, digest,
};

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;

use link::Partition;
use network::InFlight;

/// The default start of the virtual clock (November 2023, in Unix ms): realistic timestamps.
pub const DEFAULT_EPOCH_MS: u64 = 1_700_000_000_000;

/// The default number of events kept per host before the oldest are discarded.
pub const DEFAULT_EVENT_LIMIT: usize = 65_536;

/// Steps allowed at one virtual instant before the simulator declares a livelock (hosts
/// ping-ponging over zero-delay links forever) and panics rather than hang the test.
pub const STALL_LIMIT: u64 = 1_000_000;

/// Recycled payload buffers kept for reuse, so steady traffic does not allocate.
const BUFFER_POOL_LIMIT: usize = 1024;
/// Initial capacity of a fresh payload buffer (a physical MTU's worth).
const BUFFER_CAPACITY: usize = 1500;

/// A filter: sees every datagram at send time with the current virtual time.
type Filter = Box<dyn FnMut(u64, &mut Datagram) -> Verdict>;

/// A host and what the simulator knows about it.
struct Slot<H: Host> {
    host: H,
    addrs: Vec<SocketAddr>,
    /// `poll_timeout` as of the last call into the host.
    deadline: Option<u64>,
    /// When `handle_timeout` last ran, so a deadline left in the past is retried 1 ms later
    /// instead of spinning at one instant.
    timeout_handled_at: Option<u64>,
    /// Touched through `host_mut`: drain its queues before the next step.
    dirty: bool,
    events: VecDeque<(u64, H::Event)>,
}

impl<H: Host> Slot<H> {
    fn effective_deadline(&self) -> Option<u64> {
        let deadline = self.deadline?;
        match self.timeout_handled_at {
            Some(handled) if deadline <= handled => Some(handled.saturating_add(1)),
            _ => Some(deadline),
        }
    }
}

/// The simulated network. `H` is the host type; use an enum or `Box<dyn Host<Event = E>>`
/// to mix kinds of hosts.
pub struct Sim<H: Host> {
    now: u64,
    rng: SimRng,
    hosts: Vec<Slot<H>>,
    owners: HashMap<SocketAddr, HostId>,
    in_flight: BinaryHeap<InFlight>,
    next_seq: u64,
    default_link: LinkConfig,
    links: HashMap<(SocketAddr, SocketAddr), LinkConfig>,
    /// Per direction with a rate limit: when its bottleneck becomes idle (µs).
    busy_until_us: HashMap<(SocketAddr, SocketAddr), u64>,
    partitions: Vec<Partition>,
    next_partition: u64,
    filters: Vec<(FilterId, Filter)>,
    next_filter: u64,
    stats: SimStats,
    trace: Option<Vec<TraceEntry>>,
    buffers: Vec<Vec<u8>>,
    event_limit: usize,
    any_dirty: bool,
    /// The instant of the last step and how many steps ran at it (livelock guard).
    last_step_at: u64,
    steps_at_instant: u64,
}

impl<H: Host> Sim<H> {
    /// An empty network whose random decisions are all derived from `seed`, with the clock at
    /// [`DEFAULT_EPOCH_MS`].
    pub fn new(seed: u64) -> Self {
        Self::with_epoch(seed, DEFAULT_EPOCH_MS)
    }

    /// Like [`Sim::new`] with the clock starting at `epoch_ms`.
    pub fn with_epoch(seed: u64, epoch_ms: u64) -> Self {
        Self {
            now: epoch_ms,
            rng: SimRng::new(seed),
            hosts: Vec::new(),
            owners: HashMap::new(),
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            default_link: LinkConfig::default(),
            links: HashMap::new(),
            busy_until_us: HashMap::new(),
            partitions: Vec::new(),
            next_partition: 0,
            filters: Vec::new(),
            next_filter: 0,
            stats: SimStats::default(),
            trace: None,
            buffers: Vec::new(),
            event_limit: DEFAULT_EVENT_LIMIT,
            any_dirty: false,
            last_step_at: epoch_ms,
            steps_at_instant: 0,
        }
    }

    /// The virtual time in ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The simulator's generator (drawing from it changes later link decisions, which is
    /// still deterministic; use [`SimRng::fork`] for an independent stream).
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// The counters so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Datagrams queued for delivery.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    // ---- hosts -------------------------------------------------------------------------

    /// Adds a host owning `addrs`; its queues and deadline are read before the next step.
    ///
    /// # Panics
    /// If an address is already owned by a host (a test set-up error).
    pub fn add_host(&mut self, host: H, addrs: &[SocketAddr]) -> HostId {
        let id = HostId(self.hosts.len());
        self.hosts.push(Slot {
            host,
            addrs: Vec::with_capacity(addrs.len()),
            deadline: None,
            timeout_handled_at: None,
            dirty: true,
            events: VecDeque::new(),
        });
        self.any_dirty = true;
        for &addr in addrs {
            self.add_address(id, addr);
        }
        id
    }

    /// Gives `id` one more address.
    ///
    /// # Panics
    /// If the address is owned by a host already, or `id` is not from this simulator.
    pub fn add_address(&mut self, id: HostId, addr: SocketAddr) {
        if let Some(owner) = self.owners.get(&addr) {
            panic!("sim: {addr} is already owned by {owner}");
        }
        self.slot_mut(id).addrs.push(addr);
        self.owners.insert(addr, id);
    }

    /// Takes `addr` away from its owner (datagrams to it are then `no_route`).
    pub fn remove_address(&mut self, addr: SocketAddr) -> Option<HostId> {
        let owner = self.owners.remove(&addr)?;
        if let Some(slot) = self.hosts.get_mut(owner.0) {
            slot.addrs.retain(|a| *a != addr);
        }
        Some(owner)
    }

    /// The host owning `addr`.
    pub fn owner(&self, addr: SocketAddr) -> Option<HostId> {
        self.owners.get(&addr).copied()
    }

    /// The addresses of `id`, in the order given.
    pub fn addrs(&self, id: HostId) -> &[SocketAddr] {
        &self.slot(id).addrs
    }

    /// Number of hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Every host id, in the order added.
    pub fn host_ids(&self) -> impl Iterator<Item = HostId> + use<H> {
        (0..self.hosts.len()).map(HostId)
    }

    /// Every host with its id, in the order added.
    pub fn hosts(&self) -> impl Iterator<Item = (HostId, &H)> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(index, slot)| (HostId(index), &slot.host))
    }

    /// The host `id`.
    ///
    /// # Panics
    /// If `id` is not from this simulator.
    pub fn host(&self, id: HostId) -> &H {
        &self.slot(id).host
    }

    /// The host `id`, mutably (e.g. to make it send); its transmit and event queues and its
    /// deadline are read again before the next step.
    ///
    /// # Panics
    /// If `id` is not from this simulator.
    pub fn host_mut(&mut self, id: HostId) -> &mut H {
        self.any_dirty = true;
        let slot = self.slot_mut(id);
        slot.dirty = true;
        &mut slot.host
    }

    /// Replaces host `id` (a restart) keeping its addresses and stored events. The old host's
    /// pending transmits are sent first, whole (H6.8); its in-flight datagrams stay in flight.
    /// Returns the old host.
    pub fn replace_host(&mut self, id: HostId, host: H) -> H {
        self.after_call(id);
        let slot = self.slot_mut(id);
        let old = std::mem::replace(&mut slot.host, host);
        slot.deadline = None;
        slot.timeout_handled_at = None;
        slot.dirty = true;
        self.any_dirty = true;
        old
    }

    // ---- events ------------------------------------------------------------------------

    /// The events host `id` emitted, with their virtual time, oldest first.
    pub fn events(&self, id: HostId) -> &VecDeque<(u64, H::Event)> {
        &self.slot(id).events
    }

    /// Removes and returns the events of host `id`.
    pub fn take_events(&mut self, id: HostId) -> VecDeque<(u64, H::Event)> {
        std::mem::take(&mut self.slot_mut(id).events)
    }

    /// Bounds the events kept per host (the oldest are discarded and counted).
    pub fn set_event_limit(&mut self, limit: usize) {
        self.event_limit = limit;
    }

    // ---- links, partitions, filters, trace ---------------------------------------------

    /// The link used for directions nobody configured.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.default_link = link;
    }

    /// The default link.
    pub fn default_link(&self) -> LinkConfig {
        self.default_link
    }

    /// Configures the direction `from -> to` (addresses as seen on the wire).
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, link: LinkConfig) {
        self.links.insert((from, to), link);
    }

    /// Configures both directions between `a` and `b` alike.
    pub fn set_link_symmetric(&mut self, a: SocketAddr, b: SocketAddr, link: LinkConfig) {
        self.set_link(a, b, link);
        self.set_link(b, a, link);
    }

    /// Returns `from -> to` to the default link.
    pub fn clear_link(&mut self, from: SocketAddr, to: SocketAddr) {
        self.links.remove(&(from, to));
        self.busy_until_us.remove(&(from, to));
    }

    /// The link that applies to `from -> to`.
    pub fn link(&self, from: SocketAddr, to: SocketAddr) -> LinkConfig {
        self.links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_link)
    }

    /// Blocks `cut` from now until healed.
    pub fn partition(&mut self, cut: Cut) -> PartitionId {
        self.partition_window(cut, self.now, None)
    }

    /// Blocks `cut` during `[start, end)` (no end: until healed). Past windows are discarded
    /// as time passes.
    pub fn partition_window(&mut self, cut: Cut, start: u64, end: Option<u64>) -> PartitionId {
        let id = PartitionId(self.next_partition);
        self.next_partition += 1;
        self.partitions.push(Partition {
            id,
            cut,
            start,
            end,
        });
        id
    }

    /// Lifts a partition; false if it was already gone.
    pub fn heal(&mut self, id: PartitionId) -> bool {
        let before = self.partitions.len();
        self.partitions.retain(|p| p.id != id);
        self.partitions.len() != before
    }

    /// Lifts every partition.
    pub fn heal_all(&mut self) {
        self.partitions.clear();
    }

    /// Installs a filter after the existing ones. It sees every datagram at send time, with the
    /// virtual time, and may rewrite it in place (payload, source, destination) or drop it.
    pub fn add_filter(
        &mut self,
        filter: impl FnMut(u64, &mut Datagram) -> Verdict + 'static,
    ) -> FilterId {
        let id = FilterId(self.next_filter);
        self.next_filter += 1;
        self.filters.push((id, Box::new(filter)));
        id
    }

    /// Removes a filter; false if it was already gone.
    pub fn remove_filter(&mut self, id: FilterId) -> bool {
        let before = self.filters.len();
        self.filters.retain(|(fid, _)| *fid != id);
        self.filters.len() != before
    }

    /// Starts recording a [`TraceEntry`] per send, duplicate, delivery and drop (unbounded:
    /// meant for short comparison runs).
    pub fn enable_trace(&mut self) {
        if self.trace.is_none() {
            self.trace = Some(Vec::new());
        }
    }

    /// The trace so far (empty unless enabled).
    pub fn trace(&self) -> &[TraceEntry] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Removes and returns the trace so far (recording continues if enabled).
    pub fn take_trace(&mut self) -> Vec<TraceEntry> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    // ---- traffic -----------------------------------------------------------------------

    /// Puts a datagram on the network as if `from` had sent it now (spoofing included): it goes
    /// through filters, partitions and the link model like any other.
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let mut buf = self.take_buffer();
        buf.extend_from_slice(data);
        self.transmit(Datagram {
            from,
            to,
            data: buf,
        });
    }

    // ---- running -----------------------------------------------------------------------

    /// When the next step will happen (never before now), or `None` if nothing is scheduled.
    pub fn next_event_time(&mut self) -> Option<u64> {
        self.flush_dirty();
        let delivery = self.in_flight.peek().map(|f| f.at);
        let timer = self.hosts.iter().filter_map(Slot::effective_deadline).min();
        let next = match (delivery, timer) {
            (Some(d), Some(t)) => d.min(t),
            (d, t) => d.or(t)?,
        };
        Some(next.max(self.now))
    }

    /// Advances to the next event and processes everything due then: deliveries in
    /// `(time, sequence)` order, then timeouts in host order. Returns false if nothing was
    /// scheduled (the clock does not move).
    ///
    /// # Panics
    /// If more than [`STALL_LIMIT`] steps run at one virtual instant (a livelock).
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_event_time() else {
            return false;
        };
        self.now = at;
        if at == self.last_step_at {
            self.steps_at_instant += 1;
            assert!(
                self.steps_at_instant <= STALL_LIMIT,
                "sim: livelock, {STALL_LIMIT} steps at t={at} (zero-delay ping-pong?)"
            );
        } else {
            self.last_step_at = at;
            self.steps_at_instant = 0;
        }

        // Datagrams sent during this step (even with zero delay) wait for the next one.
        let seq_limit = self.next_seq;
        while let Some(top) = self.in_flight.peek() {
            if top.at > self.now || top.seq >= seq_limit {
                break;
            }
            if let Some(item) = self.in_flight.pop() {
                self.deliver(item.datagram);
            }
        }

        for index in 0..self.hosts.len() {
            let due = self.hosts[index]
                .effective_deadline()
                .is_some_and(|deadline| deadline <= self.now);
            if due {
                let now = self.now;
                let slot = &mut self.hosts[index];
                slot.timeout_handled_at = Some(now);
                slot.host.handle_timeout(now);
                self.stats.timeouts += 1;
                self.after_call(HostId(index));
            }
        }
        true
    }

    /// Processes every event up to and including `t`, then sets the clock to `t` (if later).
    pub fn run_until(&mut self, t: u64) {
        while self.next_event_time().is_some_and(|next| next <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Runs for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now.saturating_add(ms));
    }

    /// Steps until `condition` holds (checked before the first step and after each one) or
    /// `max_ms` of virtual time have passed. Returns whether the condition became true; on
    /// timeout the clock is left at the deadline.
    pub fn run_until_condition(
        &mut self,
        max_ms: u64,
        mut condition: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        let deadline = self.now.saturating_add(max_ms);
        loop {
            if condition(self) {
                return true;
            }
            match self.next_event_time() {
                Some(next) if next <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return condition(self);
                }
            }
        }
    }

    // ---- internals ---------------------------------------------------------------------

    fn slot(&self, id: HostId) -> &Slot<H> {
        self.hosts
            .get(id.0)
            .unwrap_or_else(|| panic!("sim: {id} does not exist"))
    }

    fn slot_mut(&mut self, id: HostId) -> &mut Slot<H> {
        self.hosts
            .get_mut(id.0)
            .unwrap_or_else(|| panic!("sim: {id} does not exist"))
    }

    /// Drains the queues of hosts touched through `host_mut` (or just added or replaced).
    fn flush_dirty(&mut self) {
        if !self.any_dirty {
            return;
        }
        self.any_dirty = false;
        for index in 0..self.hosts.len() {
            if std::mem::take(&mut self.hosts[index].dirty) {
                self.after_call(HostId(index));
            }
        }
    }

    /// After any call into a host: send everything it queued, store its events, re-read its
    /// deadline.
    fn after_call(&mut self, id: HostId) {
        loop {
            let mut buf = self.take_buffer();
            let Some(slot) = self.hosts.get_mut(id.0) else {
                return;
            };
            let Some((local, remote)) = slot.host.poll_transmit(&mut buf) else {
                self.recycle(buf);
                break;
            };
            match self.resolve_source(id, local, remote) {
                Some(from) => self.transmit(Datagram {
                    from,
                    to: remote,
                    data: buf,
                }),
                None => {
                    self.stats.sent += 1;
                    let datagram = Datagram {
                        from: local,
                        to: remote,
                        data: buf,
                    };
                    self.record(TraceKind::Sent, &datagram);
                    self.drop_datagram(DropReason::BadSource, datagram);
                }
            }
        }
        let now = self.now;
        let limit = self.event_limit;
        let Some(slot) = self.hosts.get_mut(id.0) else {
            return;
        };
        while let Some(event) = slot.host.poll_event() {
            if slot.events.len() >= limit {
                if slot.events.pop_front().is_none() {
                    // A limit of 0 keeps nothing.
                    self.stats.events_overflowed += 1;
                    continue;
                }
                self.stats.events_overflowed += 1;
            }
            slot.events.push_back((now, event));
        }
        slot.deadline = slot.host.poll_timeout();
    }
}

#[cfg(test)]
mod tests;
