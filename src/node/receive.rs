//! The receive path (protocol 2.3, 2.4, 3.7, 5.2; hardening H2.6, H2.9, H3.6, H6.10):
//! classify the datagram, relay it if it is not for us, reassemble (bounded), then find the
//! key. A known sender's packet is dearmored with its cached key; a cipher-0 HELLO from an
//! unknown identity is rate limited per source prefix before any key agreement, then
//! dearmored, and only then is the identity's proof of work checked. Anything else from an
//! unknown sender waits (bounded) for a WHOIS answer. Nothing reaches a verb handler unless it
//! authenticated as its source address (H6.10).

use std::net::SocketAddr;

use super::peer::{InsertError, Peer};
use super::queues::{ContactKind, QueuedPacket};
use super::send::SendOptions;
use super::{Node, peer};
use crate::crypto::{ArmorError, Identity, SymmetricKey, dearmor};
use crate::wire::fragment::Fragment;
use crate::wire::inet_address::canonical_socket_addr;
use crate::wire::packet::{self, Cipher, Datagram, MIN_PROTOCOL_VERSION, Packet};
use crate::wire::verbs::{ErrorBody, ErrorReply, Hello};
use crate::wire::{Address, Verb};

impl Node {
    /// A UDP payload arrived on socket `local` from `remote`. Never panics and never
    /// allocates in proportion to the input beyond the documented queue bounds.
    pub fn handle_datagram(
        &mut self,
        now: u64,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) {
        self.now = now;
        self.counters.datagrams_received += 1;
        // H5.2: one canonical form for every endpoint we compare, store or classify.
        let local = canonical_socket_addr(local);
        let remote = canonical_socket_addr(remote);
        let Some(mut reassembler) = self.reassembler.take() else {
            return;
        };
        match packet::classify(data) {
            Datagram::Beacon => self.counters.beacon += 1,
            Datagram::Runt => self.counters.runt += 1,
            Datagram::Fragment => match Fragment::new_checked(data) {
                Ok(f) if f.destination() != self.address => {
                    self.relay(now, remote, data, f.destination(), true);
                }
                _ => {
                    if let Some(packet) = reassembler.accept_fragment(now, data) {
                        self.process_packet(now, local, remote, packet);
                    }
                }
            },
            Datagram::Packet => match Packet::new_checked(data) {
                Err(_) => self.counters.malformed_header += 1,
                Ok(p) if p.destination() != self.address => {
                    if p.source() != self.address {
                        self.relay(now, remote, data, p.destination(), false);
                    } else {
                        self.counters.own_source += 1;
                    }
                }
                Ok(_) => {
                    if let Some(packet) = reassembler.accept_head(now, data) {
                        self.process_packet(now, local, remote, packet);
                    }
                }
            },
        }
        self.counters.reassembly = reassembler.counters();
        self.reassembler = Some(reassembler);
        self.update_online(now);
    }

    /// An assembled packet addressed to us (from the wire or replayed from the queue of
    /// packets waiting for WHOIS).
    pub(crate) fn process_packet(
        &mut self,
        now: u64,
        local: SocketAddr,
        remote: SocketAddr,
        packet: &mut [u8],
    ) {
        let Ok(view) = Packet::new_checked(&*packet) else {
            self.counters.malformed_header += 1;
            return;
        };
        let source = view.source();
        let cipher = view.cipher();
        let plain_hello = cipher == Cipher::Poly1305None && view.verb() == Verb::Hello;
        if source == self.address {
            self.counters.own_source += 1;
            return;
        }
        if source.is_reserved() {
            self.counters.reserved_source += 1;
            return;
        }
        match self.peers.get(&source) {
            Some(peer) => match dearmor(packet, &peer.key) {
                Ok(_) => {}
                Err(ArmorError::BadMac) if plain_hello => {
                    self.hello_with_other_identity(now, local, remote, packet);
                    return;
                }
                Err(ArmorError::BadMac) => {
                    self.counters.bad_mac += 1;
                    return;
                }
                Err(ArmorError::UnsupportedCipher(_)) => {
                    self.counters.unsupported_cipher += 1;
                    return;
                }
                Err(_) => {
                    self.counters.malformed_header += 1;
                    return;
                }
            },
            None if plain_hello => {
                self.hello_from_unknown(now, local, remote, packet);
                return;
            }
            None => {
                if matches!(cipher, Cipher::TrustedPath | Cipher::Unknown(_)) {
                    self.counters.unsupported_cipher += 1;
                } else {
                    self.queue_from_unknown(now, local, remote, source, packet);
                }
                return;
            }
        }
        self.dispatch(now, local, remote, packet);
    }

    /// A cipher-0 HELLO from an identity we do not know (5.2 step 3, H2.9): cheap syntax
    /// checks, the per-prefix rate limit, key agreement and MAC, and only then the
    /// proof-of-work check.
    fn hello_from_unknown(
        &mut self,
        now: u64,
        local: SocketAddr,
        remote: SocketAddr,
        packet: &mut [u8],
    ) {
        let Some(identity) = self.hello_identity(packet) else {
            return;
        };
        if !self.hello_limiter.allow(now, &remote) {
            self.counters.hello_rate_limited += 1;
            return;
        }
        let Some(shared) = self.secret_identity.agree(&identity) else {
            self.counters.key_agreement_failed += 1;
            return;
        };
        let key = SymmetricKey::new(&shared);
        if dearmor(packet, &key).is_err() {
            self.counters.bad_mac += 1;
            return;
        }
        self.counters.pow_checks += 1;
        if !identity.locally_validate() {
            self.counters.invalid_identity += 1;
            return;
        }
        let address = identity.address();
        if !self.insert_peer(Peer::with_key(identity, key, now)) {
            return;
        }
        self.dispatch(now, local, remote, packet);
        self.on_peer_learned(now, address);
    }

    /// The identity a HELLO claims, after the checks that cost nothing: the payload parses,
    /// the protocol version is supported and the identity's address is the packet source.
    fn hello_identity(&mut self, packet: &[u8]) -> Option<Identity> {
        let view = Packet::new_checked(packet).ok()?;
        let Ok(hello) = Hello::parse(view.payload()) else {
            self.counters.malformed_payload += 1;
            return None;
        };
        if hello.protocol_version < MIN_PROTOCOL_VERSION {
            self.counters.hello_bad_version += 1;
            return None;
        }
        if hello.identity.address() != view.source() {
            self.counters.hello_address_mismatch += 1;
            return None;
        }
        Some(hello.identity)
    }

    /// A HELLO for a known address that failed the cached key (5.2 step 2): if it carries a
    /// different identity that authenticates, answer IDENTITY_COLLISION; the known peer and
    /// its key are left untouched (H2.6).
    fn hello_with_other_identity(
        &mut self,
        now: u64,
        local: SocketAddr,
        remote: SocketAddr,
        packet: &mut [u8],
    ) {
        let Some(identity) = self.hello_identity(packet) else {
            return;
        };
        let source = identity.address();
        if self
            .peers
            .get(&source)
            .is_none_or(|p| p.identity == identity)
        {
            self.counters.bad_mac += 1;
            return;
        }
        if !self.hello_limiter.allow(now, &remote) {
            self.counters.hello_rate_limited += 1;
            return;
        }
        let Some(shared) = self.secret_identity.agree(&identity) else {
            self.counters.key_agreement_failed += 1;
            return;
        };
        let key = SymmetricKey::new(&shared);
        if dearmor(packet, &key).is_err() {
            self.counters.bad_mac += 1;
            return;
        }
        self.counters.identity_collision += 1;
        let packet_id = Packet::new_checked(&*packet).map_or(0, |p| p.packet_id_u64());
        let mut payload = Vec::with_capacity(16);
        ErrorReply {
            in_re_verb: Verb::Hello,
            in_re_packet_id: packet_id,
            body: ErrorBody::IdentityCollision,
        }
        .emit(&mut payload);
        let mut buf = self.start_packet(source, Verb::Error);
        buf.extend_from_slice(&payload);
        let route = super::send::Route {
            local,
            remote,
            via: None,
        };
        let _ = self.outbox.seal(
            &mut self.counters,
            buf,
            &key,
            Cipher::Salsa2012Poly1305,
            false,
            route,
            super::transmit::Class::Control,
        );
    }

    /// Keeps a packet from an unknown sender (bounded, `ZT_RECEIVE_QUEUE_TIMEOUT`) and asks
    /// a root who it is.
    fn queue_from_unknown(
        &mut self,
        now: u64,
        local: SocketAddr,
        remote: SocketAddr,
        source: Address,
        packet: &[u8],
    ) {
        if self.rx_queue.is_full() {
            self.counters.queue_full += 1;
            return;
        }
        let mut data = self.outbox.queue.buffer();
        data.extend_from_slice(packet);
        let queued = QueuedPacket {
            source,
            local,
            remote,
            received_at: now,
            data,
        };
        match self.rx_queue.push(queued) {
            Ok(()) => {
                self.counters.unknown_peer_queued += 1;
                self.request_whois(now, source);
            }
            Err(p) => {
                self.counters.queue_full += 1;
                self.outbox.queue.recycle(p.data);
            }
        }
    }

    /// Inserts a newly verified peer (evicting the least recently seen non-root if the table
    /// is full). Never replaces an existing entry (H2.6).
    pub(crate) fn insert_peer(&mut self, peer: Peer) -> bool {
        if self.peers.contains(&peer.address()) {
            return false;
        }
        let topology = &self.topology;
        match self
            .peers
            .insert(peer, self.limits.max_peers, |a| topology.is_upstream(a))
        {
            Ok(evicted) => {
                if evicted.is_some() {
                    self.counters.peers_evicted += 1;
                }
                self.counters.peers_learned += 1;
                true
            }
            Err(InsertError::Full) => {
                self.counters.peer_table_full += 1;
                false
            }
        }
    }

    /// An identity from OK(WHOIS) (already known to come from a root answering our
    /// request): checked only if we asked for it, then validated and learned.
    pub(crate) fn learn_from_whois(&mut self, now: u64, identity: Identity) {
        let address = identity.address();
        if !self.whois.contains(&address) {
            self.counters.whois_unsolicited += 1;
            return;
        }
        if self.peers.contains(&address) {
            self.on_peer_learned(now, address);
            return;
        }
        self.counters.pow_checks += 1;
        if !identity.locally_validate() {
            // The lookup stays pending: another root may answer correctly.
            self.counters.invalid_identity += 1;
            return;
        }
        let Some(peer) = peer::Peer::new(&self.secret_identity, identity, now) else {
            self.counters.key_agreement_failed += 1;
            return;
        };
        if self.insert_peer(peer) {
            self.on_peer_learned(now, address);
        }
    }

    /// A peer became known: end its lookup, replay what it sent us, send what waited for it,
    /// and try its static hints and (for a moon seed) HELLO it.
    pub(crate) fn on_peer_learned(&mut self, now: u64, address: Address) {
        self.whois.remove(&address);
        for mut queued in self.rx_queue.take_from(&address) {
            self.process_packet(now, queued.local, queued.remote, &mut queued.data);
            self.outbox.queue.recycle(queued.data);
        }
        for send in self.tx_queue.take_for(&address) {
            let mut options = if send.verb == Verb::UserMessage {
                SendOptions::bulk()
            } else {
                SendOptions::control()
            };
            options.compress = send.compress;
            options.reply = send.reply;
            let _ = self.send_verb(now, address, send.verb, &send.payload, options);
        }
        if self
            .peers
            .get(&address)
            .is_some_and(|p| !p.has_live_path(now))
        {
            self.try_static_hints(now, address);
        }
        if self.topology.is_pending_seed(&address) {
            self.contact_seed(now, address);
        }
    }

    /// Bookkeeping after an authenticated packet from `source` was handled (8.4): liveness,
    /// path refresh, path learning from an accepted OK with hops 0, a HELLO to any other
    /// unknown direct path, and PUSH_DIRECT_PATHS to trusted peers.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn peer_received(
        &mut self,
        now: u64,
        local: SocketAddr,
        remote: SocketAddr,
        source: Address,
        hops: u8,
        accepted_ok: bool,
        latency: Option<u32>,
    ) {
        let usable =
            self.usable(&remote) && !self.topology.is_prohibited_endpoint(&source, &remote);
        let max_paths = self.limits.max_paths_per_peer;
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        peer.last_receive = Some(now);
        if hops == 0 && latency.is_some() {
            peer.latency = latency;
        }
        let mut learned = None;
        let mut contact = false;
        if hops == 0 {
            if let Some(i) = peer.path_index(&local, &remote) {
                if let Some(p) = peer.paths.get_mut(i) {
                    p.last_receive = now;
                    if latency.is_some() {
                        p.latency = latency;
                    }
                }
            } else if usable {
                // Another alive path from the same socket to the same IP counts as known
                // (prevents learning loops when only the port differs).
                let similar = peer
                    .paths
                    .iter()
                    .any(|p| p.local == local && p.remote.ip() == remote.ip() && p.alive(now));
                if accepted_ok {
                    let result = peer.learn_path(local, remote, now, max_paths);
                    if let Some(p) = peer
                        .path_index(&local, &remote)
                        .and_then(|i| peer.paths.get_mut(i))
                    {
                        p.latency = latency;
                    }
                    learned = Some(result);
                } else if !similar {
                    contact = true;
                }
            }
        }
        let trusted = peer.trusted(now);
        let push_due = trusted && {
            let interval = if hops == 0 {
                super::constants::ZT_DIRECT_PATH_PUSH_INTERVAL_HAVEPATH
            } else {
                super::constants::ZT_DIRECT_PATH_PUSH_INTERVAL
            };
            peer.last_push_sent
                .is_none_or(|t| now.saturating_sub(t) >= interval)
        };
        match learned {
            Some(peer::Learned::Added) => {
                self.counters.paths_learned += 1;
                self.push_event(super::Event::PeerDirectPath {
                    peer: source,
                    remote,
                });
            }
            Some(peer::Learned::Replaced(old)) => {
                self.counters.paths_learned += 1;
                self.push_event(super::Event::PathExpired {
                    peer: source,
                    remote: old,
                });
                self.push_event(super::Event::PeerDirectPath {
                    peer: source,
                    remote,
                });
            }
            _ => {}
        }
        if contact {
            self.request_contact(now, source, local, remote, ContactKind::Hello);
        }
        if push_due {
            self.push_direct_paths(now, source);
        }
    }
}
