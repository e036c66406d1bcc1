//! `node`: the sans-IO ZeroTier V1 engine below networks: peers, paths, roots and worlds,
//! WHOIS, HELLO, ECHO, RENDEZVOUS, PUSH_DIRECT_PATHS, USER_MESSAGE and relaying.
//!
//! A [`Node`] never reads a clock, opens a socket or spawns a task. Drivers (the tokio service,
//! the simulator, tests) feed it datagrams and time, and drain what it wants to send and what
//! happened:
//!
//! ```text
//! handle_datagram(now, local, remote, bytes)   a UDP payload arrived
//! handle_timeout(now) / poll_timeout()         timers (absolute ms, any epoch)
//! poll_transmit(&mut buf) -> Transmit          a datagram to send (swapped into `buf`)
//! poll_event() -> Event                        online/offline, paths, messages, worlds
//! ```
//!
//! Receive path (protocol 2.3, 3.7, 5.2; hardening H2.9): classify -> relay if not for us ->
//! bounded reassembly -> size checks -> key: a known peer, or a cipher-0 HELLO from an unknown
//! identity, rate limited per source prefix *before* key agreement -> dearmor -> only then the
//! proof-of-work check -> decompress (capped) -> dispatch. Packets from unknown senders wait
//! (bounded, 5 s) for a WHOIS answer from a root.
//!
//! Rooms: `send` builds, armors and fragments packets and picks routes; `receive`
//! authenticates; `relay` forwards packets that are not for us; `contact` reaches peers at
//! given addresses;
//! `verbs` handles each verb; `timers` runs root contact, keepalives and expiry; `peer`,
//! `path`, `roots`, `queues`, `replies`, `ratelimit` and `transmit` hold the bounded state.
//! Codecs come from `crate::wire`, keys and armor from `crate::crypto`; nothing is parsed here.
//!
//! `network` joins networks (config requests, chunk assembly, status) and runs the controller
//! role; `frames` is the virtual Ethernet port ([`Node::handle_frame`], [`Event::Frame`]):
//! frames, membership credentials and multicast.

mod constants;
mod contact;
mod counters;
mod credentials;
pub mod filter;
mod frame_class;
mod frames;
mod multicast;
mod network;
mod path;
mod peer;
mod queues;
mod ratelimit;
mod receive;
mod relay;
mod replies;
mod rng;
mod roots;
mod send;
mod timers;
mod transmit;
mod verbs;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

pub use constants::*;
pub use counters::Counters;
pub use frame_class::is_control_frame;
pub use frames::{
    FrameCounters, MAX_MEMBERS_PER_GROUP, MAX_MULTICAST_GROUPS, MAX_PEER_COMS,
    ZT_MULTICAST_LIKE_EXPIRE,
};
pub use network::{
    JoinError, MAX_NETWORKS, NetworkCounters, NetworkInfo, NetworkStatus, ZT_NETWORK_AUTOCONF_DELAY,
};
pub use path::prefix_contains as path_prefix_contains;
pub use roots::PeerRole;
pub use transmit::Transmit;

use crate::controller::Controller;
use crate::crypto::Identity;
use crate::wire::packet::{DEFAULT_PHYSICAL_MTU, MAX_PACKET_LEN};
use crate::wire::reassembly::{Reassembler, ReassemblerConfig};
use crate::wire::verbs::SoftwareVersion;
use crate::wire::world::World;
use crate::wire::{Address, NetworkId};

use peer::PeerTable;
use queues::{ContactQueue, PendingWhois, RxQueue, TxQueue};
use ratelimit::PrefixLimiter;
use replies::ExpectedReplies;
use rng::Rng;
use roots::Topology;
use send::Outbox;
use transmit::TransmitQueue;

/// Every bound of a node's state (H2.10, H5.6). The defaults follow the reference where it
/// has a number and are generous elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    /// Peers kept; when full the least recently seen non-root is evicted.
    pub max_peers: usize,
    /// Direct paths per peer (`ZT_MAX_PEER_NETWORK_PATHS` = 64).
    pub max_paths_per_peer: usize,
    /// Identity lookups in flight.
    pub max_pending_whois: usize,
    /// Packets from unknown senders waiting for WHOIS (`ZT_RX_QUEUE_SIZE` = 32).
    pub rx_queue: usize,
    /// Packets to unknown destinations waiting for WHOIS (`ZT_TX_QUEUE_SIZE` = 32).
    pub tx_queue: usize,
    /// Fragment reassembly (32 partial packets, 500 ms).
    pub reassembly: ReassemblerConfig,
    /// Datagrams waiting for `poll_transmit` (bulk traffic may use three quarters).
    pub transmit_queue: usize,
    /// Buffers kept for reuse by `poll_transmit`.
    pub buffer_pool: usize,
    /// Events waiting for `poll_event`.
    pub event_queue: usize,
    /// Requests remembered for OK matching (2.2).
    pub expected_replies: usize,
    /// Deferred contacts (hole punches, HELLOs to new paths).
    pub contact_queue: usize,
    /// Peer pairs remembered for the RENDEZVOUS interval (roots).
    pub unite_pairs: usize,
    /// Buckets of the per source prefix HELLO limiter.
    pub hello_limiter_slots: usize,
    /// Identity checks one source prefix may cause at once, and the refill interval
    /// (`ZT_IDENTITY_VALIDATION_SOURCE_RATE_LIMIT`).
    pub hello_burst_per_prefix: u32,
    pub hello_refill_ms: u64,
    /// Identity checks all sources together may cause at once, and the refill interval: the
    /// bound on proof-of-work work whatever the number of prefixes an attacker holds.
    pub hello_burst_global: u32,
    pub hello_global_refill_ms: u64,
    /// Moons held or wanted.
    pub max_moons: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_peers: 16_384,
            max_paths_per_peer: 64,
            max_pending_whois: 128,
            rx_queue: 32,
            tx_queue: 32,
            reassembly: ReassemblerConfig::default(),
            transmit_queue: 4_096,
            buffer_pool: 256,
            event_queue: 1_024,
            expected_replies: 2_048,
            contact_queue: 128,
            unite_pairs: 8_192,
            hello_limiter_slots: 4_096,
            hello_burst_per_prefix: 4,
            hello_refill_ms: ZT_IDENTITY_VALIDATION_SOURCE_RATE_LIMIT,
            hello_burst_global: 64,
            hello_global_refill_ms: 20,
            max_moons: 16,
        }
    }
}

/// How to build a [`Node`].
#[derive(Debug)]
pub struct NodeConfig {
    /// Our identity; it must include its secret (without one no key can be agreed and the
    /// node cannot talk to anybody; `key_agreement_failed` counts the attempts).
    pub identity: Identity,
    /// `World::default_planet()` or a private planet.
    pub planet: World,
    /// Moons already known (`moons.d`).
    pub moons: Vec<World>,
    /// UDP payload size; larger packets are fragmented (`DEFAULT_PHYSICAL_MTU` = 1432).
    pub physical_mtu: usize,
    /// local.conf `virtual` hints: addresses to try first for a given node.
    pub static_paths: Vec<(Address, SocketAddr)>,
    /// Accept loopback endpoints as paths (the reference never does; rigs on one host and
    /// tests need it).
    pub allow_loopback_paths: bool,
    /// Relay for others even if we are not a root (roots of our worlds relay anyway).
    pub relay: bool,
    /// local.conf `physical` networks with `"blacklist": true`: never used as a path or
    /// contacted, whatever a peer or a root says (canonical prefixes, IPv4 or IPv6).
    pub path_blacklist: Vec<(IpAddr, u8)>,
    pub limits: NodeLimits,
    /// The driver's bound sockets: the source of first contacts, the families we can send
    /// on, and the local addresses announced in PUSH_DIRECT_PATHS. Empty = unknown (first
    /// contacts use the unspecified address of the remote's family).
    pub local_addresses: Vec<SocketAddr>,
    /// Seed of the node's random generator (packet ids, random choices); `None` = from the
    /// operating system. Simulations set it for reproducible runs.
    pub rng_seed: Option<u64>,
    /// Run the network controller role for networks whose top 40 bits are our address
    /// (10.1). `None`: requests are answered with ERROR(UNSUPPORTED_OPERATION).
    pub controller: Option<Controller>,
}

/// A clone carries no controller: the controller owns its store, which cannot be shared.
impl Clone for NodeConfig {
    fn clone(&self) -> NodeConfig {
        NodeConfig {
            identity: self.identity.clone(),
            planet: self.planet.clone(),
            moons: self.moons.clone(),
            physical_mtu: self.physical_mtu,
            static_paths: self.static_paths.clone(),
            allow_loopback_paths: self.allow_loopback_paths,
            relay: self.relay,
            path_blacklist: self.path_blacklist.clone(),
            limits: self.limits,
            local_addresses: self.local_addresses.clone(),
            rng_seed: self.rng_seed,
            controller: None,
        }
    }
}

impl NodeConfig {
    /// A configuration with every other field at its default.
    pub fn new(identity: Identity, planet: World) -> NodeConfig {
        NodeConfig {
            identity,
            planet,
            moons: Vec::new(),
            physical_mtu: DEFAULT_PHYSICAL_MTU,
            static_paths: Vec::new(),
            allow_loopback_paths: false,
            relay: false,
            path_blacklist: Vec::new(),
            limits: NodeLimits::default(),
            local_addresses: Vec::new(),
            rng_seed: None,
            controller: None,
        }
    }
}

/// Something that happened, for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// We heard from an upstream within `ZT_PEER_ACTIVITY_TIMEOUT` (or lost that).
    Online(bool),
    /// A direct path to `peer` was learned (an OK arrived on it with hops 0).
    PeerDirectPath { peer: Address, remote: SocketAddr },
    /// A path went silent for `ZT_PEER_PATH_EXPIRATION` and was removed.
    PathExpired { peer: Address, remote: SocketAddr },
    /// An authenticated USER_MESSAGE.
    UserMessage {
        from: Address,
        type_id: u64,
        data: Vec<u8>,
    },
    /// The answer to [`Node::echo`].
    EchoReply {
        from: Address,
        payload: Vec<u8>,
        rtt_ms: u64,
    },
    /// The planet or a moon changed: persist it (`Node::planet`, `Node::moons`).
    WorldUpdated {
        id: u64,
        timestamp: u64,
        is_moon: bool,
    },
    /// A root says another identity holds our address (fatal: generate a new identity).
    IdentityCollision { root: Address },
    /// A config for a joined network was accepted: persist `Node::network_config_bytes`.
    NetworkConfigured { nwid: NetworkId, revision: u64 },
    /// A joined network's status changed without a new config (access denied, not found).
    NetworkStatus {
        nwid: NetworkId,
        status: NetworkStatus,
    },
    /// A full Ethernet frame (destination, source, ethertype, payload) for the local side
    /// of network `nwid` (see [`Node::handle_frame`] for the other direction).
    Frame { nwid: NetworkId, data: Vec<u8> },
}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The destination is our own or a reserved address.
    InvalidAddress,
    /// The packet would need more than 7 fragments at the physical MTU.
    TooLarge,
    /// The queue of packets waiting for WHOIS (or the transmit queue) is full.
    QueueFull,
    /// No direct path, no upstream to relay through, and no way to look the peer up.
    NoRoute,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SendError::InvalidAddress => "destination is our own or a reserved address",
            SendError::TooLarge => "packet too large (more than 7 fragments)",
            SendError::QueueFull => "send queue full",
            SendError::NoRoute => "no route to the destination",
        })
    }
}

impl std::error::Error for SendError {}

/// A direct path, as [`PeerInfo`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Milliseconds (node time) of the last packet received on this path.
    pub last_receive: u64,
    pub latency_ms: Option<u32>,
    /// Received on within the heartbeat period + 5 s.
    pub alive: bool,
    /// The path packets to this peer currently use.
    pub preferred: bool,
}

/// A peer, as [`Node::peers`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub address: Address,
    /// Protocol version from HELLO/OK(HELLO); 0 if known only through WHOIS.
    pub protocol_version: u8,
    pub software_version: Option<SoftwareVersion>,
    pub latency_ms: Option<u32>,
    pub role: PeerRole,
    pub paths: Vec<PathInfo>,
}

/// An external address a peer saw us at (HELLO sent-to, OK(HELLO) sent-from; 8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Surface {
    reporter: Address,
    address: SocketAddr,
    at: u64,
}

/// Surfaces remembered.
const MAX_SURFACES: usize = 16;

/// The engine; see the module documentation.
#[derive(Debug)]
pub struct Node {
    /// Ours, with the secret (key agreement only).
    secret_identity: Identity,
    public_identity: Identity,
    address: Address,
    allow_loopback: bool,
    relay: bool,
    path_blacklist: Vec<(IpAddr, u8)>,
    limits: NodeLimits,
    static_hints: Vec<(Address, SocketAddr)>,
    local_addresses: Vec<SocketAddr>,
    topology: Topology,
    peers: PeerTable,
    /// `Option` so a completed packet (borrowed from it) can be processed with `&mut self`.
    reassembler: Option<Reassembler>,
    rng: Rng,
    replies: ExpectedReplies,
    whois: PendingWhois,
    rx_queue: RxQueue,
    tx_queue: TxQueue,
    contacts: ContactQueue,
    outbox: Outbox,
    events: VecDeque<Event>,
    counters: Counters,
    hello_limiter: PrefixLimiter,
    unites: BTreeMap<(Address, Address), u64>,
    surfaces: Vec<Surface>,
    /// Scratch for decompressed packets and payloads under construction.
    scratch: Vec<u8>,
    payload_scratch: Vec<u8>,
    now: u64,
    next_ping: u64,
    next_queue_check: u64,
    next_housekeeping: u64,
    last_contact_drain: Option<u64>,
    online: bool,
    /// Joined networks, and the controller role (`network`).
    networks: network::Memberships,
    controller: Option<Controller>,
    network_counters: NetworkCounters,
    /// Frames, credentials and multicast of joined networks (`frames`).
    frames: frames::FrameState,
}

impl Node {
    /// A node at time `now` (ms, any epoch: the node only compares times it was given). The
    /// first `poll_timeout` is `now`, which contacts the roots.
    pub fn new(config: NodeConfig, now: u64) -> Node {
        let limits = config.limits;
        let address = config.identity.address();
        let mut rng = Rng::new(config.rng_seed);
        let limiter_key = rng.next_u64();
        let mut static_hints: Vec<(Address, SocketAddr)> = Vec::new();
        for (a, s) in config.static_paths {
            let s = crate::wire::inet_address::canonical_socket_addr(s);
            let per_peer = static_hints.iter().filter(|(x, _)| *x == a).count();
            if a != address && per_peer < MAX_STATIC_HINTS_PER_PEER {
                static_hints.push((a, s));
            }
        }
        let mtu = config
            .physical_mtu
            .clamp(crate::wire::packet::HEADER_LEN * 16, MAX_PACKET_LEN);
        let mut node = Node {
            public_identity: config.identity.to_public(),
            secret_identity: config.identity,
            address,
            allow_loopback: config.allow_loopback_paths,
            relay: config.relay,
            path_blacklist: config.path_blacklist,
            limits,
            static_hints,
            local_addresses: config
                .local_addresses
                .into_iter()
                .map(crate::wire::inet_address::canonical_socket_addr)
                .collect(),
            topology: Topology::new(address, config.planet, config.moons, limits.max_moons),
            peers: PeerTable::default(),
            reassembler: Some(Reassembler::new(limits.reassembly)),
            rng,
            replies: ExpectedReplies::new(limits.expected_replies),
            whois: PendingWhois::new(limits.max_pending_whois),
            rx_queue: RxQueue::new(limits.rx_queue),
            tx_queue: TxQueue::new(limits.tx_queue),
            contacts: ContactQueue::new(limits.contact_queue),
            outbox: Outbox::new(
                TransmitQueue::new(limits.transmit_queue, limits.buffer_pool),
                mtu,
            ),
            events: VecDeque::new(),
            counters: Counters::default(),
            hello_limiter: PrefixLimiter::new(
                limits.hello_limiter_slots,
                limits.hello_burst_per_prefix,
                limits.hello_refill_ms,
                limits.hello_burst_global,
                limits.hello_global_refill_ms,
                limiter_key,
                now,
            ),
            unites: BTreeMap::new(),
            surfaces: Vec::new(),
            scratch: Vec::new(),
            payload_scratch: Vec::new(),
            now,
            next_ping: now,
            next_queue_check: now,
            next_housekeeping: now + ZT_HOUSEKEEPING_PERIOD,
            last_contact_drain: None,
            online: false,
            networks: network::Memberships::new(),
            controller: config.controller,
            network_counters: NetworkCounters::default(),
            frames: frames::FrameState::default(),
        };
        node.ensure_root_peers(now);
        node
    }

    /// Our ZeroTier address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Our public identity.
    pub fn identity(&self) -> &Identity {
        &self.public_identity
    }

    /// Next datagram to send. The node swaps its internal buffer into `buf` (no copy); the
    /// caller's old buffer is recycled into a bounded pool.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.outbox.queue.pop(buf)
    }

    /// Next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether we heard from an upstream within `ZT_PEER_ACTIVITY_TIMEOUT` (always true for
    /// a root of our own worlds).
    pub fn online(&self) -> bool {
        self.online
    }

    /// Whether we are a root of our planet or of a moon we hold.
    pub fn is_root(&self) -> bool {
        self.topology.am_root()
    }

    /// The planet in force.
    pub fn planet(&self) -> &World {
        self.topology.planet()
    }

    /// The moons held (not those still wanted).
    pub fn moons(&self) -> &[World] {
        self.topology.moons()
    }

    /// The ids of moons asked for (orbited) but not received yet.
    pub fn awaited_moons(&self) -> Vec<u64> {
        self.topology.orbits().iter().map(|o| o.moon_id).collect()
    }

    /// Counters of everything dropped (and a few things done).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Number of peers in the table.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Every known peer with its paths, as of the last time the node was given.
    pub fn peers(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.peers.iter().map(|p| self.peer_info(p))
    }

    /// One peer, if known.
    pub fn peer(&self, address: Address) -> Option<PeerInfo> {
        self.peers.get(&address).map(|p| self.peer_info(p))
    }

    fn peer_info(&self, p: &peer::Peer) -> PeerInfo {
        let now = self.now;
        let preferred = p.best_path(now).map(|b| (b.local, b.remote));
        PeerInfo {
            address: p.address(),
            protocol_version: p.protocol_version,
            software_version: p.software_version,
            latency_ms: p.latency,
            role: self.topology.role(&p.address()),
            paths: p
                .paths
                .iter()
                .map(|path| PathInfo {
                    local: path.local,
                    remote: path.remote,
                    last_receive: path.last_receive,
                    latency_ms: path.latency,
                    alive: path.alive(now),
                    preferred: preferred == Some((path.local, path.remote)),
                })
                .collect(),
        }
    }

    /// Replaces the driver's bound sockets (see [`NodeConfig::local_addresses`]).
    pub fn set_local_addresses(&mut self, addresses: &[SocketAddr]) {
        self.local_addresses = addresses
            .iter()
            .copied()
            .map(crate::wire::inet_address::canonical_socket_addr)
            .take(64)
            .collect();
    }

    /// Records trust-establishing traffic from `peer` (the network layer calls this for
    /// frames and credentials that passed the membership gate). While trusted, the peer is
    /// sent our addresses in PUSH_DIRECT_PATHS (5.14).
    pub fn mark_trusted(&mut self, now: u64, peer: Address) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.trusted_until = now.saturating_add(ZT_TRUST_EXPIRATION);
        }
    }

    /// Sends a USER_MESSAGE (`type_id` <= 65535 are reserved). Queued while the recipient
    /// is looked up; relayed through the best root until a direct path exists.
    pub fn send_user_message(
        &mut self,
        now: u64,
        to: Address,
        type_id: u64,
        data: &[u8],
    ) -> Result<(), SendError> {
        self.now = now;
        let mut payload = std::mem::take(&mut self.payload_scratch);
        payload.clear();
        crate::wire::verbs::UserMessage {
            type_id,
            payload: data,
        }
        .emit(&mut payload);
        let result = self.send_verb(
            now,
            to,
            crate::wire::Verb::UserMessage,
            &payload,
            send::SendOptions::bulk(),
        );
        self.payload_scratch = payload;
        if result.is_ok()
            && let Some(p) = self.peers.get_mut(&to)
        {
            p.last_activity = Some(now);
        }
        result
    }

    /// Sends an ECHO; the answer arrives as [`Event::EchoReply`] with the round-trip time.
    pub fn echo(&mut self, now: u64, to: Address, payload: &[u8]) -> Result<(), SendError> {
        self.now = now;
        let result = self.send_verb(
            now,
            to,
            crate::wire::Verb::Echo,
            payload,
            send::SendOptions::control().expecting(replies::ReplyKind::UserEcho),
        );
        if result.is_ok()
            && let Some(p) = self.peers.get_mut(&to)
        {
            p.last_activity = Some(now);
        }
        result
    }

    /// Joins moon `moon_id` through `seed` (`zerotier-cli orbit`): the seed is HELLOed with
    /// the moon listed at timestamp 0 and answers with the moon in OK(HELLO).
    pub fn orbit(&mut self, now: u64, moon_id: u64, seed: Address) {
        self.now = now;
        if seed == self.address || seed.is_reserved() {
            return;
        }
        if self.topology.orbit(moon_id, seed) {
            self.contact_seed(now, seed);
        }
    }

    /// Leaves moon `moon_id` (held or wanted).
    pub fn deorbit(&mut self, moon_id: u64) {
        self.topology.deorbit(moon_id);
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= self.limits.event_queue {
            self.counters.events_dropped += 1;
        } else {
            self.events.push_back(event);
        }
    }

    /// Creates the peer objects of every upstream (their identities come from the worlds, so
    /// no WHOIS or proof of work is needed); a world's identity overrides a different one.
    fn ensure_root_peers(&mut self, now: u64) {
        let ups: Vec<Identity> = self
            .topology
            .upstreams()
            .iter()
            .map(|u| u.identity.clone())
            .collect();
        for identity in ups {
            let address = identity.address();
            if self
                .peers
                .get(&address)
                .is_some_and(|p| p.identity == identity)
            {
                continue;
            }
            self.peers.remove(&address);
            match peer::Peer::new(&self.secret_identity, identity, now) {
                Some(p) => {
                    let topology = &self.topology;
                    if self
                        .peers
                        .insert(p, self.limits.max_peers, |a| topology.is_upstream(a))
                        .is_err()
                    {
                        self.counters.peer_table_full += 1;
                    }
                }
                None => self.counters.key_agreement_failed += 1,
            }
        }
    }

    /// Re-evaluates online status and reports a change.
    fn update_online(&mut self, now: u64) {
        let online = self.topology.am_root()
            || self.topology.upstreams().iter().any(|u| {
                self.peers
                    .get(&u.identity.address())
                    .and_then(|p| p.last_receive)
                    .is_some_and(|t| now.saturating_sub(t) < ZT_PEER_ACTIVITY_TIMEOUT)
            });
        if online != self.online {
            self.online = online;
            self.push_event(Event::Online(online));
            if online {
                // Requests sent before any upstream answered may have gone nowhere; ask
                // again now rather than at the next tick.
                self.request_unconfigured(now);
            }
        }
    }

    /// Records an external address `reporter` saw us at (HELLO/OK(HELLO) with hops 0).
    fn note_surface(&mut self, now: u64, reporter: Address, address: SocketAddr) {
        let address = crate::wire::inet_address::canonical_socket_addr(address);
        if let Some(s) = self
            .surfaces
            .iter_mut()
            .find(|s| s.reporter == reporter && s.address.is_ipv4() == address.is_ipv4())
        {
            s.address = address;
            s.at = now;
            return;
        }
        if self.surfaces.len() >= MAX_SURFACES
            && let Some(oldest) = self
                .surfaces
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.at)
                .map(|(i, _)| i)
        {
            self.surfaces.swap_remove(oldest);
        }
        self.surfaces.push(Surface {
            reporter,
            address,
            at: now,
        });
    }

    /// Whether we relay packets that are not for us.
    fn is_relay(&self) -> bool {
        self.relay || self.topology.am_root()
    }

    fn usable(&self, addr: &SocketAddr) -> bool {
        path::usable_address(addr, self.allow_loopback)
            && !path::blacklisted(addr, &self.path_blacklist)
    }

    /// Whether we can send to `remote`'s family (unknown sockets: assume yes).
    fn can_send_to(&self, remote: &SocketAddr) -> bool {
        self.local_addresses.is_empty()
            || self
                .local_addresses
                .iter()
                .any(|l| path::same_family(l, remote))
    }

    /// The local socket for a first contact to `remote`.
    fn local_for(&self, remote: &SocketAddr) -> SocketAddr {
        self.local_addresses
            .iter()
            .find(|l| path::same_family(l, remote))
            .copied()
            .unwrap_or_else(|| path::any_local_for(remote))
    }
}

#[cfg(test)]
mod tests;
