//! Verb dispatch and handlers for authenticated packets (protocol 5.2-5.7, 5.14, 5.15):
//! HELLO (with the `cryptField` moon list and world updates in the OK), OK (matched against
//! what we sent: 2.2, H2.8), ERROR, WHOIS, RENDEZVOUS (roots only), ECHO (rate limited),
//! PUSH_DIRECT_PATHS (8 per 30 s) and USER_MESSAGE. NETWORK_CONFIG_REQUEST, NETWORK_CONFIG,
//! OK(NETWORK_CONFIG_REQUEST) and the ERRORs answering our requests go to `network`; FRAME,
//! EXT_FRAME, MULTICAST_*, NETWORK_CREDENTIALS, OK(MULTICAST_GATHER) and
//! ERROR(NEED_MEMBERSHIP_CERTIFICATE) go to `frames`.

use std::net::SocketAddr;

use super::constants::{
    ECHO_REPLY_BURST, ECHO_REPLY_REFILL, MAX_WORLDS_PER_OK_HELLO, PUSH_DIRECT_PATHS_MAX_PACKET,
    SOFTWARE_VERSION, ZT_PEER_WHOIS_RATE_LIMIT, ZT_PUSH_DIRECT_PATHS_CUTOFF_LIMIT,
    ZT_PUSH_DIRECT_PATHS_CUTOFF_TIME, ZT_PUSH_DIRECT_PATHS_MAX_PER_SCOPE_AND_FAMILY,
};
use super::queues::ContactKind;
use super::roots::WorldOffer;
use super::send::{ECHO_MIN_PROTOCOL_VERSION, Route, SendOptions};
use super::{Event, Node};
use crate::crypto::crypt_field;
use crate::wire::compression::decompress_packet;
use crate::wire::cursor::Reader;
use crate::wire::inet_address::canonical_socket_addr;
use crate::wire::packet::{
    HEADER_LEN, IDX_VERB, MAX_PACKET_LEN, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Packet,
};
use crate::wire::verbs::{
    Echo, ErrorBody, ErrorReply, Hello, HelloMoons, OkBody, OkHello, OkReply, PathAddress,
    PathRecord, Payload, PushDirectPaths, Rendezvous, Whois, WhoisReply, parse_payload,
};
use crate::wire::world::World;
use crate::wire::{Address, InetAddress, Verb};

/// What the handlers need to know about the packet being handled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rx {
    pub(crate) now: u64,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) source: Address,
    pub(crate) hops: u8,
    /// The packet id as on the wire (what our replies refer to).
    pub(crate) packet_id: u64,
}

impl Rx {
    /// Replies go back on the path the request came from (for a relayed request, through
    /// the relay), as in the reference.
    pub(crate) fn reply_route(&self) -> Route {
        Route {
            local: self.local,
            remote: self.remote,
            via: (self.hops == 0).then_some(self.source),
        }
    }
}

/// World bytes one OK(HELLO) may carry (the packet must stay within `MAX_PACKET_LEN`).
const WORLD_UPDATE_BUDGET: usize = MAX_PACKET_LEN - HEADER_LEN - 64;

/// PUSH_DIRECT_PATHS records we put in one packet (about 1200 bytes of IPv6 records).
const MAX_PUSHED_RECORDS: usize = PUSH_DIRECT_PATHS_MAX_PACKET / 24;

impl Node {
    /// Decompresses (capped) and dispatches an authenticated packet.
    pub(crate) fn dispatch(
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
        let rx = Rx {
            now,
            local,
            remote,
            source: view.source(),
            hops: view.hops(),
            packet_id: view.packet_id_u64(),
        };
        let compressed = view.compressed();
        self.counters.packets_authenticated += 1;
        if compressed {
            let mut scratch = std::mem::take(&mut self.scratch);
            match decompress_packet(packet, &mut scratch) {
                Ok(()) => self.dispatch_body(rx, &mut scratch),
                Err(_) => self.counters.decompress_failed += 1,
            }
            self.scratch = scratch;
        } else {
            self.dispatch_body(rx, packet);
        }
    }

    fn dispatch_body(&mut self, rx: Rx, body: &mut [u8]) {
        let verb = Verb::from_byte(body.get(IDX_VERB).copied().unwrap_or_default());
        if verb == Verb::Hello {
            self.decrypt_hello_tail(rx.source, body);
        }
        let Some(payload) = body.get(HEADER_LEN..) else {
            self.counters.malformed_header += 1;
            return;
        };
        let parsed = match parse_payload(verb, payload) {
            Ok(p) => p,
            Err(_) => {
                self.counters.malformed_payload += 1;
                return;
            }
        };
        let mut accepted_ok = false;
        let mut latency = None;
        match &parsed {
            Payload::Nop => {}
            Payload::Hello(hello) => {
                if !self.handle_hello(rx, hello) {
                    return;
                }
            }
            Payload::Error(e) => self.handle_error(rx, e),
            Payload::Ok(ok) => match self.handle_ok(rx, ok) {
                Some(rtt) => {
                    accepted_ok = true;
                    latency = rtt;
                }
                None => return,
            },
            Payload::Whois(w) => self.handle_whois(rx, w),
            Payload::Rendezvous(r) => self.handle_rendezvous(rx, r),
            Payload::Echo(e) => self.handle_echo(rx, e),
            Payload::PushDirectPaths(p) => self.handle_push_direct_paths(rx, p),
            Payload::UserMessage(m) => {
                if let Some(p) = self.peers.get_mut(&rx.source) {
                    p.last_activity = Some(rx.now);
                }
                self.push_event(Event::UserMessage {
                    from: rx.source,
                    type_id: m.type_id,
                    data: m.payload.to_vec(),
                });
            }
            Payload::Frame(_)
            | Payload::ExtFrame(_)
            | Payload::MulticastLike(_)
            | Payload::NetworkCredentials(_)
            | Payload::NetworkConfigRequest(_)
            | Payload::NetworkConfig(_)
            | Payload::MulticastGather(_)
            | Payload::MulticastFrame(_) => self.handle_network_verb(rx, &parsed),
            Payload::Ack(_)
            | Payload::QosMeasurement(_)
            | Payload::RemoteTrace(_)
            | Payload::PathNegotiationRequest(_)
            | Payload::Unknown { .. } => self.counters.ignored_verb += 1,
        }
        self.peer_received(
            rx.now,
            rx.local,
            rx.remote,
            rx.source,
            rx.hops,
            accepted_ok,
            latency,
        );
    }

    /// The network layer: NETWORK_CONFIG_REQUEST and NETWORK_CONFIG go to `network`;
    /// FRAME, EXT_FRAME, MULTICAST_* and NETWORK_CREDENTIALS to `frames`.
    pub(crate) fn handle_network_verb(&mut self, rx: Rx, payload: &Payload<'_>) {
        match payload {
            Payload::NetworkConfigRequest(request) => {
                self.handle_config_request_packet(rx, request);
            }
            Payload::NetworkConfig(push) => {
                self.handle_config_chunk(rx, &push.chunk, true);
            }
            Payload::Frame(frame) => self.handle_frame_verb(rx, frame),
            Payload::ExtFrame(frame) => self.handle_ext_frame(rx, frame),
            Payload::NetworkCredentials(credentials) => self.handle_credentials(rx, credentials),
            Payload::MulticastLike(like) => self.handle_multicast_like(rx, like),
            Payload::MulticastGather(gather) => self.handle_multicast_gather(rx, gather),
            Payload::MulticastFrame(frame) => self.handle_multicast_frame(rx, frame),
            _ => self.counters.unhandled_verb += 1,
        }
    }

    /// Undoes `cryptField` over the moon list of an authenticated HELLO, in place (3.5).
    fn decrypt_hello_tail(&mut self, source: Address, body: &mut [u8]) {
        let Some(offset) = body
            .get(HEADER_LEN..)
            .and_then(|p| Hello::parse(p).ok())
            .map(|h| HEADER_LEN + h.moon_tail_offset())
        else {
            return;
        };
        let id: [u8; 8] = body
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default();
        if let (Some(peer), Some(region)) = (self.peers.get(&source), body.get_mut(offset..)) {
            crypt_field(&peer.key, id, region);
        }
    }

    /// HELLO from a known (authenticated) peer (5.2): record its versions and our external
    /// address, and answer OK(HELLO) with any newer worlds it lacks. False = drop.
    fn handle_hello(&mut self, rx: Rx, hello: &Hello<'_>) -> bool {
        let Ok(moons) = HelloMoons::parse(hello.moon_tail) else {
            self.counters.malformed_payload += 1;
            return false;
        };
        if hello.protocol_version < MIN_PROTOCOL_VERSION {
            self.counters.hello_bad_version += 1;
            return false;
        }
        let Some(peer) = self.peers.get_mut(&rx.source) else {
            return false;
        };
        if peer.identity != hello.identity {
            self.counters.hello_address_mismatch += 1;
            return false;
        }
        peer.protocol_version = hello.protocol_version;
        peer.software_version = Some(hello.software_version);
        if rx.hops == 0
            && let Some(at) = hello.sent_to.and_then(|a| a.socket_addr())
        {
            self.note_surface(rx.now, rx.source, at);
        }
        // Worlds the sender has older revisions of (same id): our planet and moons.
        let mut worlds = Vec::new();
        let planet = self.topology.planet();
        if let Some(theirs) = hello.planet
            && theirs.id == planet.id
            && theirs.timestamp < planet.timestamp
        {
            planet.emit(&mut worlds);
        }
        for wanted in moons.moons() {
            if let Some(ours) = self.topology.moons().iter().find(|m| m.id == wanted.id)
                && wanted.timestamp < ours.timestamp
            {
                let before = worlds.len();
                ours.emit(&mut worlds);
                if worlds.len() > WORLD_UPDATE_BUDGET {
                    worlds.truncate(before);
                }
            }
        }
        let sent_from = if rx.hops == 0 {
            let mut from = rx.remote;
            if hello.protocol_version < 5 {
                from.set_port(0);
            }
            InetAddress::from_socket_addr(from)
        } else {
            InetAddress::Nil
        };
        let reply = OkReply {
            in_re_packet_id: rx.packet_id,
            body: OkBody::Hello(OkHello {
                timestamp_echo: hello.timestamp,
                protocol_version: PROTOCOL_VERSION,
                software_version: SOFTWARE_VERSION,
                sent_from,
                world_updates: &worlds,
            }),
        };
        self.reply(rx, &reply);
        true
    }

    /// Sends an OK back on the request's path.
    fn reply(&mut self, rx: Rx, reply: &OkReply<'_>) {
        let mut payload = std::mem::take(&mut self.payload_scratch);
        payload.clear();
        reply.emit(&mut payload);
        let options = SendOptions::control().via(rx.reply_route());
        let _ = self.send_verb(rx.now, rx.source, Verb::Ok, &payload, options);
        self.payload_scratch = payload;
    }

    /// OK (5.4): accepted only in reply to something we sent that peer (2.2; for HELLO, a
    /// HELLO we sent that very peer, H2.8). `Some(latency)` when accepted.
    fn handle_ok(&mut self, rx: Rx, ok: &OkReply<'_>) -> Option<Option<u32>> {
        let rtt = |sent_at: u64| {
            (rx.hops == 0)
                .then(|| u32::try_from(rx.now.saturating_sub(sent_at)).unwrap_or(u32::MAX))
        };
        match &ok.body {
            OkBody::Hello(h) => {
                let peer = self.peers.get_mut(&rx.source)?;
                let Some(sent) = peer.take_sent_hello(ok.in_re_packet_id) else {
                    self.counters.ok_unexpected += 1;
                    return None;
                };
                peer.protocol_version = h.protocol_version;
                peer.software_version = Some(h.software_version);
                if rx.hops == 0
                    && let Some(at) = h.sent_from.socket_addr()
                {
                    self.note_surface(rx.now, rx.source, at);
                }
                if !h.world_updates.is_empty() {
                    self.accept_worlds(rx.now, rx.source, h.world_updates);
                }
                Some(rtt(sent.sent_at))
            }
            OkBody::Whois(reply) => {
                if self
                    .replies
                    .take(ok.in_re_packet_id, rx.source, Verb::Whois)
                    .is_none()
                {
                    self.counters.ok_unexpected += 1;
                    return None;
                }
                if !self.topology.is_upstream(&rx.source) {
                    // 5.5: OK(WHOIS) counts only from a root.
                    self.counters.whois_unsolicited += reply.identities.len() as u64;
                    return Some(None);
                }
                self.counters.invalid_identity += reply.skipped as u64;
                for identity in reply.identities.iter().cloned() {
                    self.learn_from_whois(rx.now, identity);
                }
                Some(None)
            }
            OkBody::Echo(echo) => {
                let Some(expected) = self.replies.take(ok.in_re_packet_id, rx.source, Verb::Echo)
                else {
                    self.counters.ok_unexpected += 1;
                    return None;
                };
                if expected.kind == super::replies::ReplyKind::UserEcho {
                    self.push_event(Event::EchoReply {
                        from: rx.source,
                        payload: echo.payload.to_vec(),
                        rtt_ms: rx.now.saturating_sub(expected.sent_at),
                    });
                }
                Some(rtt(expected.sent_at))
            }
            OkBody::NetworkConfigRequest(chunk) => {
                // Not matched against the replies table: a large config arrives as several
                // OKs in reply to one request. Gated instead on the network's controller and
                // the chunk signature (H2.8).
                self.handle_config_chunk(rx, chunk, false).then_some(None)
            }
            other => {
                if self
                    .replies
                    .take(ok.in_re_packet_id, rx.source, other.in_re_verb())
                    .is_none()
                {
                    self.counters.ok_unexpected += 1;
                    return None;
                }
                match other {
                    OkBody::MulticastGather(gather) => {
                        self.handle_gather_results(rx.now, gather);
                    }
                    // Frame acks and implicit gathers: not used yet.
                    _ => self.counters.unhandled_verb += 1,
                }
                Some(None)
            }
        }
    }

    /// World updates from OK(HELLO) (6.1, 6.3): only from an upstream or the seed of a moon
    /// we asked for; each world must pass the update rule.
    fn accept_worlds(&mut self, now: u64, sender: Address, bytes: &[u8]) {
        if !self.topology.is_upstream(&sender) && !self.topology.is_pending_seed(&sender) {
            self.counters.worlds_rejected += 1;
            return;
        }
        let mut r = Reader::new(bytes);
        let mut seen = 0;
        let mut changed = false;
        while !r.is_empty() && seen < MAX_WORLDS_PER_OK_HELLO {
            seen += 1;
            let world = match World::read(&mut r) {
                Ok(w) => w,
                Err(_) => {
                    self.counters.worlds_rejected += 1;
                    break;
                }
            };
            match self.topology.offer(world, &sender) {
                WorldOffer::Accepted {
                    id,
                    timestamp,
                    is_moon,
                } => {
                    self.counters.worlds_accepted += 1;
                    changed = true;
                    self.push_event(Event::WorldUpdated {
                        id,
                        timestamp,
                        is_moon,
                    });
                }
                WorldOffer::Refused => self.counters.worlds_rejected += 1,
            }
        }
        if changed {
            self.ensure_root_peers(now);
            // Contact new roots at the next tick.
            self.next_ping = self.next_ping.min(now);
        }
    }

    /// ERROR (5.3): IDENTITY_COLLISION from a root, in reply to a HELLO we sent it, is fatal;
    /// errors answering NETWORK_CONFIG_REQUEST set the network's status (`network`).
    fn handle_error(&mut self, rx: Rx, e: &ErrorReply<'_>) {
        self.counters.error_received += 1;
        if e.in_re_verb == Verb::NetworkConfigRequest {
            self.handle_config_error(rx, e);
            return;
        }
        if let ErrorBody::NeedMembershipCertificate(nwid) = e.body {
            self.handle_need_membership(rx, nwid);
            return;
        }
        if e.body == ErrorBody::IdentityCollision
            && e.in_re_verb == Verb::Hello
            && self.topology.is_upstream(&rx.source)
            && self
                .peers
                .get(&rx.source)
                .is_some_and(|p| p.sent_hello(e.in_re_packet_id))
        {
            self.push_event(Event::IdentityCollision { root: rx.source });
        }
    }

    /// WHOIS (5.5): answer with every identity we know; non-roots rate limit per peer and
    /// look up what they do not know from their own root.
    fn handle_whois(&mut self, rx: Rx, whois: &Whois<'_>) {
        let am_root = self.topology.am_root();
        if !am_root {
            let Some(peer) = self.peers.get_mut(&rx.source) else {
                return;
            };
            if peer
                .last_whois_received
                .is_some_and(|t| rx.now.saturating_sub(t) < ZT_PEER_WHOIS_RATE_LIMIT)
            {
                self.counters.whois_rate_limited += 1;
                return;
            }
            peer.last_whois_received = Some(rx.now);
        }
        let mut identities = Vec::new();
        for address in whois.addresses.iter() {
            if address == self.address {
                identities.push(self.public_identity.clone());
            } else if let Some(p) = self.peers.get(&address) {
                identities.push(p.identity.to_public());
            } else if let Some(u) = self.topology.upstream(&address) {
                identities.push(u.identity.clone());
            } else if !am_root {
                self.request_whois(rx.now, address);
            }
        }
        if identities.is_empty() {
            return;
        }
        self.counters.whois_answered += 1;
        let reply = OkReply {
            in_re_packet_id: rx.packet_id,
            body: OkBody::Whois(WhoisReply {
                identities,
                skipped: 0,
            }),
        };
        self.reply(rx, &reply);
    }

    /// RENDEZVOUS (5.5): only from a root, only for a known peer and a usable address; the
    /// contact is queued and sent from `handle_timeout` (H2.5).
    fn handle_rendezvous(&mut self, rx: Rx, r: &Rendezvous) {
        let endpoint = canonical_socket_addr(r.endpoint);
        let acceptable = self.topology.is_upstream(&rx.source)
            && r.with != self.address
            && self.usable(&endpoint)
            && self.can_send_to(&endpoint)
            && !self.topology.is_prohibited_endpoint(&r.with, &endpoint);
        if !acceptable || !self.peers.contains(&r.with) {
            self.counters.rendezvous_refused += 1;
            return;
        }
        self.counters.rendezvous_received += 1;
        let local = if super::path::same_family(&rx.local, &endpoint) {
            rx.local
        } else {
            self.local_for(&endpoint)
        };
        // ECHO or HELLO is chosen by the peer's version when the contact is sent.
        self.request_contact(rx.now, r.with, local, endpoint, ContactKind::Rendezvous);
    }

    /// ECHO (5.7): answered with OK(ECHO) carrying the same bytes, rate limited per peer.
    fn handle_echo(&mut self, rx: Rx, echo: &Echo<'_>) {
        let Some(peer) = self.peers.get_mut(&rx.source) else {
            return;
        };
        if !peer
            .echo_replies
            .allow(rx.now, ECHO_REPLY_BURST, ECHO_REPLY_REFILL)
        {
            self.counters.echo_rate_limited += 1;
            return;
        }
        let reply = OkReply {
            in_re_packet_id: rx.packet_id,
            body: OkBody::Echo(*echo),
        };
        self.reply(rx, &reply);
    }

    /// PUSH_DIRECT_PATHS (5.14): at most 8 per 30 s per peer and 8 addresses per family;
    /// each new usable address is contacted from the deferred queue.
    fn handle_push_direct_paths(&mut self, rx: Rx, push: &PushDirectPaths<'_>) {
        let Some(peer) = self.peers.get_mut(&rx.source) else {
            return;
        };
        if !peer.pushes_received.allow(
            rx.now,
            ZT_PUSH_DIRECT_PATHS_CUTOFF_TIME,
            ZT_PUSH_DIRECT_PATHS_CUTOFF_LIMIT,
        ) {
            self.counters.push_rate_limited += 1;
            return;
        }
        let version = peer.protocol_version;
        let (mut v4, mut v6) = (0usize, 0usize);
        let mut targets = Vec::new();
        for record in push.iter() {
            let PathAddress::Ip(at) = record.address else {
                continue;
            };
            let at = canonical_socket_addr(at);
            let count = if at.is_ipv4() { &mut v4 } else { &mut v6 };
            if *count >= ZT_PUSH_DIRECT_PATHS_MAX_PER_SCOPE_AND_FAMILY {
                continue;
            }
            *count += 1;
            let known = self
                .peers
                .get(&rx.source)
                .is_some_and(|p| p.paths.iter().any(|x| x.remote == at));
            if !known
                && self.usable(&at)
                && self.can_send_to(&at)
                && !self.topology.is_prohibited_endpoint(&rx.source, &at)
            {
                targets.push(at);
            }
        }
        let kind = if version >= ECHO_MIN_PROTOCOL_VERSION {
            ContactKind::Echo
        } else {
            ContactKind::Hello
        };
        for at in targets {
            self.counters.push_paths_accepted += 1;
            let local = if super::path::same_family(&rx.local, &at) {
                rx.local
            } else {
                self.local_for(&at)
            };
            self.request_contact(rx.now, rx.source, local, at, kind);
        }
    }

    /// Sends `peer` our local and externally seen addresses (5.14), compressed.
    pub(crate) fn push_direct_paths(&mut self, now: u64, peer: Address) {
        let mut addresses: Vec<SocketAddr> = Vec::new();
        let candidates = self
            .local_addresses
            .iter()
            .copied()
            .chain(self.surfaces.iter().map(|s| s.address));
        for a in candidates {
            if !a.ip().is_unspecified() && a.port() != 0 && !addresses.contains(&a) {
                addresses.push(a);
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_push_sent = Some(now);
        }
        if addresses.is_empty() {
            return;
        }
        let records: Vec<PathRecord<'_>> = addresses
            .iter()
            .take(MAX_PUSHED_RECORDS)
            .map(|a| PathRecord {
                flags: 0,
                extension: &[],
                address: PathAddress::Ip(*a),
            })
            .collect();
        let mut payload = Vec::with_capacity(PUSH_DIRECT_PATHS_MAX_PACKET);
        PushDirectPaths::emit_records(records.iter(), &mut payload);
        let options = SendOptions::control().compressed();
        if self
            .send_verb(now, peer, Verb::PushDirectPaths, &payload, options)
            .is_ok()
        {
            self.counters.push_sent += 1;
        }
    }
}
