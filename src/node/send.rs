//! Building and sending packets (protocol 3.7, send side): header with a fresh packet id,
//! payload, optional LZ4 (only where the reference compresses, never HELLO), the fragmented
//! flag when the packet exceeds the physical MTU, `cryptField` for the HELLO tail, armor
//! (HELLO cipher 0; cipher 3 to peers of protocol 12 or later, cipher 1 otherwise), then the
//! head and fragments into the transmit queue. Also route selection: a peer's best direct
//! path, else the best root (8.2). Relaying lives in `relay`, contacts in `contact`.

use std::net::SocketAddr;

use super::constants::{MAX_HELLO_MOONS, ROOT_RECENCY_DIVISOR, SOFTWARE_VERSION, UNKNOWN_LATENCY};
use super::counters::Counters;
use super::queues::QueuedSend;
use super::replies::{Expected, ReplyKind};
use super::transmit::{Class, QueueRefused, Transmit, TransmitQueue};
use super::{Node, SendError};
use crate::crypto::{SymmetricKey, armor, crypt_field};
use crate::wire::compression::{MAX_COMPRESS_SCRATCH, compress_payload};
use crate::wire::cursor::Writer;
use crate::wire::fragment;
use crate::wire::packet::{
    Cipher, FLAG_FRAGMENTED, HEADER_LEN, IDX_FLAGS, IDX_VERB, PROTOCOL_VERSION,
};
use crate::wire::verbs::{Hello, HelloMoons, MoonStamp, Whois, WorldStamp};
use crate::wire::{Address, InetAddress, VERB_FLAG_COMPRESSED, Verb};

/// Protocol version from which peers get cipher 3 (AES-GMAC-SIV).
const AES_MIN_PROTOCOL_VERSION: u8 = 12;
/// The IP TTL of the junk datagram sent before a RENDEZVOUS contact (the reference's 2).
pub(crate) const RENDEZVOUS_JUNK_TTL: u8 = 2;
/// Protocol version from which keepalives and contacts may be an ECHO instead of a HELLO.
pub(crate) const ECHO_MIN_PROTOCOL_VERSION: u8 = 5;

/// Where a packet leaves to: a socket pair, and the peer whose path it is (for `last_send`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) via: Option<Address>,
}

/// How to send one packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendOptions {
    pub(crate) compress: bool,
    pub(crate) reply: Option<ReplyKind>,
    pub(crate) class: Class,
    /// Send on this route instead of the peer's best one (replies go back where the request
    /// came from, as in the reference).
    pub(crate) route: Option<Route>,
}

impl SendOptions {
    pub(crate) fn control() -> SendOptions {
        SendOptions {
            compress: false,
            reply: None,
            class: Class::Control,
            route: None,
        }
    }

    pub(crate) fn bulk() -> SendOptions {
        SendOptions {
            class: Class::Bulk,
            ..Self::control()
        }
    }

    pub(crate) fn expecting(self, kind: ReplyKind) -> SendOptions {
        SendOptions {
            reply: Some(kind),
            ..self
        }
    }

    pub(crate) fn compressed(self) -> SendOptions {
        SendOptions {
            compress: true,
            ..self
        }
    }

    pub(crate) fn via(self, route: Route) -> SendOptions {
        SendOptions {
            route: Some(route),
            ..self
        }
    }
}

/// The transmit queue plus what sealing a packet needs (MTU, compression scratch), kept
/// apart from the peer table so a peer's key can be borrowed while sealing.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) queue: TransmitQueue,
    pub(crate) mtu: usize,
    compress_scratch: Vec<u8>,
}

impl Outbox {
    pub(crate) fn new(queue: TransmitQueue, mtu: usize) -> Outbox {
        Outbox {
            queue,
            mtu,
            compress_scratch: Vec::new(),
        }
    }

    /// Compresses (if asked and worthwhile), sets the fragmented flag, armors with `key` and
    /// queues the head and fragments on `route`. Returns the packet id as it is on the wire
    /// (cipher 3 rewrites it), which is what replies refer to.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seal(
        &mut self,
        counters: &mut Counters,
        mut buf: Vec<u8>,
        key: &SymmetricKey,
        cipher: Cipher,
        compress: bool,
        route: Route,
        class: Class,
    ) -> Result<u64, SendError> {
        if compress && buf.len() > HEADER_LEN {
            if self.compress_scratch.len() < MAX_COMPRESS_SCRATCH {
                self.compress_scratch.resize(MAX_COMPRESS_SCRATCH, 0);
            }
            if let Some(n) = buf
                .get(HEADER_LEN..)
                .and_then(|p| compress_payload(p, &mut self.compress_scratch))
            {
                buf.truncate(HEADER_LEN);
                buf.extend_from_slice(self.compress_scratch.get(..n).unwrap_or_default());
                if let Some(v) = buf.get_mut(IDX_VERB) {
                    *v |= VERB_FLAG_COMPRESSED;
                }
            }
        }
        let count = match fragment::fragment_count(buf.len(), self.mtu) {
            Ok(n) => n,
            Err(_) => {
                counters.send_too_large += 1;
                self.queue.recycle(buf);
                return Err(SendError::TooLarge);
            }
        };
        if let Err(e) = self.queue.has_room(class, count) {
            match e {
                QueueRefused::Full => counters.transmit_queue_full += 1,
                QueueRefused::BulkLimit => counters.transmit_bulk_dropped += 1,
            }
            self.queue.recycle(buf);
            return Err(SendError::QueueFull);
        }
        if count > 1
            && let Some(flags) = buf.get_mut(IDX_FLAGS)
        {
            *flags |= FLAG_FRAGMENTED;
        }
        if armor(&mut buf, key, cipher).is_err() {
            counters.send_too_large += 1;
            self.queue.recycle(buf);
            return Err(SendError::TooLarge);
        }
        let packet_id = buf
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        let transmit = Transmit {
            local: route.local,
            remote: route.remote,
            ttl: None,
        };
        // At most MAX_FRAGMENTS - 1 pieces, on the stack (empty Vecs do not allocate; the
        // filled ones come from the buffer pool).
        let mut pieces: [Vec<u8>; fragment::MAX_FRAGMENTS as usize - 1] = Default::default();
        let mut piece_count = 0;
        let mut head_len = self.mtu;
        if count > 1
            && let Ok(split) = fragment::split_even(&buf, self.mtu)
        {
            head_len = split.head.len();
            for (slot, piece) in pieces.iter_mut().zip(split.fragments) {
                let mut b = self.queue.buffer();
                piece.emit(&mut b);
                *slot = b;
                piece_count += 1;
            }
        }
        buf.truncate(head_len);
        let mut queued = 0u64;
        if self.queue.push(transmit, buf, class).is_ok() {
            queued += 1;
        }
        for b in pieces.into_iter().take(piece_count) {
            if self.queue.push(transmit, b, class).is_ok() {
                queued += 1;
            }
        }
        counters.datagrams_sent += queued;
        Ok(packet_id)
    }

    /// Queues a relayed datagram as bulk traffic, copied once into a pooled buffer with its
    /// hop count byte (at `hops_at`) replaced by `hops_byte`.
    pub(crate) fn forward(
        &mut self,
        counters: &mut Counters,
        data: &[u8],
        hops_at: usize,
        hops_byte: u8,
        route: Route,
    ) -> bool {
        if self.queue.has_room(Class::Bulk, 1).is_err() {
            counters.transmit_bulk_dropped += 1;
            return false;
        }
        let mut b = self.queue.buffer();
        b.extend_from_slice(data);
        if let Some(h) = b.get_mut(hops_at) {
            *h = hops_byte;
        }
        let transmit = Transmit {
            local: route.local,
            remote: route.remote,
            ttl: None,
        };
        if self.queue.push(transmit, b, Class::Bulk).is_ok() {
            counters.datagrams_sent += 1;
            true
        } else {
            false
        }
    }
}

impl Node {
    /// A fresh packet buffer holding the header (random id, destination, our source, flags
    /// and MAC zero) and the verb byte.
    pub(crate) fn start_packet(&mut self, destination: Address, verb: Verb) -> Vec<u8> {
        let mut buf = self.outbox.queue.buffer();
        buf.put_u64(self.rng.next_u64());
        buf.put_bytes(&destination.to_bytes());
        buf.put_bytes(&self.address.to_bytes());
        buf.put_u8(0);
        buf.put_u64(0);
        buf.put_u8(verb.to_byte());
        buf
    }

    /// The cipher for a peer of protocol `version` (3.1): HELLO is always cipher 0.
    fn cipher_for(verb: Verb, version: u8) -> Cipher {
        if verb == Verb::Hello {
            Cipher::Poly1305None
        } else if version >= AES_MIN_PROTOCOL_VERSION {
            Cipher::AesGmacSiv
        } else {
            Cipher::Salsa2012Poly1305
        }
    }

    /// Best upstream to relay through (8.2): among upstreams with a live path, minimise
    /// `latency x (ms since last receive / 61 s + 1)`. `excluding` is never chosen.
    pub(crate) fn best_root(&self, now: u64, excluding: Option<Address>) -> Option<Address> {
        self.topology
            .upstreams()
            .iter()
            .map(|u| u.identity.address())
            .filter(|a| Some(*a) != excluding)
            .filter_map(|a| self.peers.get(&a))
            .filter(|p| p.has_live_path(now))
            .min_by_key(|p| {
                let latency = p.latency.map_or(UNKNOWN_LATENCY, u64::from).max(1);
                let since = p
                    .last_receive
                    .map_or(u64::MAX / 4, |t| now.saturating_sub(t));
                latency.saturating_mul(since / ROOT_RECENCY_DIVISOR + 1)
            })
            .map(|p| p.address())
    }

    /// The route to a known peer: its best direct path, else through the best root.
    pub(crate) fn route_to(&self, now: u64, destination: Address) -> Option<Route> {
        if let Some(path) = self.peers.get(&destination).and_then(|p| p.best_path(now)) {
            return Some(Route {
                local: path.local,
                remote: path.remote,
                via: Some(destination),
            });
        }
        let root = self.best_root(now, Some(destination))?;
        let path = self.peers.get(&root)?.best_path(now)?;
        Some(Route {
            local: path.local,
            remote: path.remote,
            via: Some(root),
        })
    }

    /// Records that something was sent on `route` (keepalive cadence).
    pub(crate) fn note_sent_on(&mut self, now: u64, route: &Route) {
        if let Some(via) = route.via
            && let Some(peer) = self.peers.get_mut(&via)
            && let Some(i) = peer.path_index(&route.local, &route.remote)
            && let Some(path) = peer.paths.get_mut(i)
        {
            path.last_send = Some(now);
        }
    }

    /// Sends `verb` with `payload` to `destination`: on the given or best route when the peer
    /// is known, else queued while its identity is looked up through a root.
    pub(crate) fn send_verb(
        &mut self,
        now: u64,
        destination: Address,
        verb: Verb,
        payload: &[u8],
        options: SendOptions,
    ) -> Result<(), SendError> {
        if destination == self.address || destination.is_reserved() {
            return Err(SendError::InvalidAddress);
        }
        if payload.len() > crate::wire::compression::MAX_PAYLOAD_LEN {
            self.counters.send_too_large += 1;
            return Err(SendError::TooLarge);
        }
        if !self.peers.contains(&destination) {
            return self.queue_for_whois(now, destination, verb, payload, options);
        }
        let has_direct = self
            .peers
            .get(&destination)
            .is_some_and(|p| p.has_live_path(now));
        if !has_direct {
            self.try_static_hints(now, destination);
        }
        let Some(route) = options.route.or_else(|| self.route_to(now, destination)) else {
            self.counters.no_route += 1;
            return Err(SendError::NoRoute);
        };
        self.send_on(now, destination, verb, payload, options, route)
    }

    /// Builds, seals and queues one packet to a known peer on `route`.
    pub(crate) fn send_on(
        &mut self,
        now: u64,
        destination: Address,
        verb: Verb,
        payload: &[u8],
        options: SendOptions,
        route: Route,
    ) -> Result<(), SendError> {
        let mut buf = self.start_packet(destination, verb);
        buf.extend_from_slice(payload);
        let Some(peer) = self.peers.get(&destination) else {
            self.outbox.queue.recycle(buf);
            return Err(SendError::NoRoute);
        };
        let cipher = Self::cipher_for(verb, peer.protocol_version);
        let packet_id = self.outbox.seal(
            &mut self.counters,
            buf,
            &peer.key,
            cipher,
            options.compress,
            route,
            options.class,
        )?;
        if let Some(kind) = options.reply {
            self.replies.expect(Expected {
                packet_id,
                peer: destination,
                kind,
                sent_at: now,
            });
        }
        self.note_sent_on(now, &route);
        Ok(())
    }

    /// Queues a packet for a peer we do not know yet and starts a WHOIS.
    fn queue_for_whois(
        &mut self,
        now: u64,
        destination: Address,
        verb: Verb,
        payload: &[u8],
        options: SendOptions,
    ) -> Result<(), SendError> {
        if self.topology.upstreams().is_empty() {
            self.counters.no_route += 1;
            return Err(SendError::NoRoute);
        }
        let send = QueuedSend {
            destination,
            verb,
            payload: payload.to_vec(),
            compress: options.compress,
            reply: options.reply,
            queued_at: now,
        };
        if self.tx_queue.push(send).is_err() {
            self.counters.tx_queue_full += 1;
            return Err(SendError::QueueFull);
        }
        self.request_whois(now, destination);
        Ok(())
    }

    /// Starts (or keeps) an identity lookup; the WHOIS goes out from `handle_timeout`.
    pub(crate) fn request_whois(&mut self, now: u64, address: Address) {
        if address == self.address || address.is_reserved() || self.peers.contains(&address) {
            return;
        }
        if self.whois.request(address, now).is_err() {
            self.counters.whois_queue_full += 1;
        }
    }

    /// Sends one WHOIS for `addresses` to the best root.
    pub(crate) fn send_whois(&mut self, now: u64, addresses: &[Address]) {
        if addresses.is_empty() {
            return;
        }
        let Some(root) = self.best_root(now, None) else {
            self.counters.whois_no_upstream += addresses.len() as u64;
            return;
        };
        let mut payload = std::mem::take(&mut self.payload_scratch);
        payload.clear();
        Whois::emit_request(addresses.iter().copied(), &mut payload);
        let options = SendOptions::control().expecting(ReplyKind::Whois);
        if self
            .send_verb(now, root, Verb::Whois, &payload, options)
            .is_ok()
        {
            self.counters.whois_sent += addresses.len() as u64;
        }
        self.payload_scratch = payload;
    }

    /// Sends a full HELLO to a known peer, directly to `at` (a path, a stable endpoint or a
    /// hint) or, with `None`, through the best other root (sent-to `Nil`).
    pub(crate) fn send_hello(
        &mut self,
        now: u64,
        destination: Address,
        at: Option<(SocketAddr, SocketAddr)>,
    ) -> Result<(), SendError> {
        let (route, sent_to) = match at {
            Some((local, remote)) => {
                let via = self
                    .peers
                    .get(&destination)
                    .and_then(|p| p.path_index(&local, &remote))
                    .map(|_| destination);
                (
                    Route { local, remote, via },
                    InetAddress::from_socket_addr(remote),
                )
            }
            None => {
                let Some(root) = self.best_root(now, Some(destination)) else {
                    self.counters.no_route += 1;
                    return Err(SendError::NoRoute);
                };
                let Some(path) = self.peers.get(&root).and_then(|p| p.best_path(now)) else {
                    self.counters.no_route += 1;
                    return Err(SendError::NoRoute);
                };
                (
                    Route {
                        local: path.local,
                        remote: path.remote,
                        via: Some(root),
                    },
                    InetAddress::Nil,
                )
            }
        };
        let mut tail = std::mem::take(&mut self.payload_scratch);
        tail.clear();
        let planet = self.topology.planet();
        let moons = HelloMoons {
            moons: self
                .topology
                .moons()
                .iter()
                .map(|m| MoonStamp {
                    world_type: MoonStamp::WORLD_TYPE_MOON,
                    id: m.id,
                    timestamp: m.timestamp,
                })
                .chain(self.topology.orbits().iter().map(|o| MoonStamp {
                    world_type: MoonStamp::WORLD_TYPE_MOON,
                    id: o.moon_id,
                    timestamp: 0,
                }))
                .take(MAX_HELLO_MOONS)
                .collect(),
        };
        moons.emit(&mut tail);
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            software_version: SOFTWARE_VERSION,
            timestamp: now,
            identity: self.public_identity.clone(),
            sent_to: Some(sent_to),
            planet: Some(WorldStamp {
                id: planet.id,
                timestamp: planet.timestamp,
            }),
            moon_tail: &tail,
        };
        let tail_at = HEADER_LEN + hello.moon_tail_offset();
        let mut buf = self.start_packet(destination, Verb::Hello);
        hello.emit(&mut buf);
        self.payload_scratch = tail;
        let Some(peer) = self.peers.get(&destination) else {
            self.outbox.queue.recycle(buf);
            return Err(SendError::NoRoute);
        };
        let id: [u8; 8] = buf
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default();
        if let Some(region) = buf.get_mut(tail_at..) {
            crypt_field(&peer.key, id, region);
        }
        let packet_id = self.outbox.seal(
            &mut self.counters,
            buf,
            &peer.key,
            Cipher::Poly1305None,
            false,
            route,
            Class::Control,
        )?;
        if let Some(peer) = self.peers.get_mut(&destination) {
            peer.note_sent_hello(packet_id, now);
        }
        self.note_sent_on(now, &route);
        Ok(())
    }
}
