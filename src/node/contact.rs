//! Contacting peers at specific addresses (the reference's `attemptToContactAt`): keepalive
//! and contact ECHOs, HELLOs, the NAT-opening datagram before a RENDEZVOUS contact, static
//! hints, and moon seeds. Contacts are requested into a deduplicated, throttled queue and
//! sent from `handle_timeout`, never from the receive path (H2.5).

use std::net::SocketAddr;

use super::Node;
use super::queues::{Contact, ContactKind, ContactRefused};
use super::replies::ReplyKind;
use super::send::{ECHO_MIN_PROTOCOL_VERSION, RENDEZVOUS_JUNK_TTL, Route, SendOptions};
use super::transmit::{Class, Transmit};
use crate::wire::{Address, Verb};

impl Node {
    /// Sends an empty keepalive/contact ECHO on a specific route.
    pub(crate) fn send_contact_echo(&mut self, now: u64, destination: Address, route: Route) {
        let options = SendOptions::control().expecting(ReplyKind::KeepaliveEcho);
        let _ = self.send_on(now, destination, Verb::Echo, &[], options, route);
    }

    /// Contacts a peer at an address: ECHO if its version allows and `kind` asks for it,
    /// else a full HELLO (the reference's `attemptToContactAt`).
    pub(crate) fn contact(&mut self, now: u64, contact: Contact) {
        let Some(peer) = self.peers.get(&contact.peer) else {
            return;
        };
        let echo = matches!(contact.kind, ContactKind::Echo | ContactKind::Rendezvous)
            && peer.protocol_version >= ECHO_MIN_PROTOCOL_VERSION;
        let via = peer
            .path_index(&contact.local, &contact.remote)
            .map(|_| contact.peer);
        self.counters.contacts_sent += 1;
        if contact.kind == ContactKind::Rendezvous {
            // As the reference on RENDEZVOUS: 4 random bytes with TTL 2 first, so our NAT
            // and firewall expect the peer's packets (a runt the peer ignores if it arrives).
            let mut junk = self.outbox.queue.buffer();
            junk.extend_from_slice(&self.rng.next_u64().to_be_bytes()[..4]);
            let transmit = Transmit {
                local: contact.local,
                remote: contact.remote,
                ttl: Some(RENDEZVOUS_JUNK_TTL),
            };
            if self
                .outbox
                .queue
                .push(transmit, junk, Class::Control)
                .is_ok()
            {
                self.counters.datagrams_sent += 1;
            }
        }
        if echo {
            let route = Route {
                local: contact.local,
                remote: contact.remote,
                via,
            };
            self.send_contact_echo(now, contact.peer, route);
        } else {
            let _ = self.send_hello(now, contact.peer, Some((contact.local, contact.remote)));
        }
    }

    /// Queues a deferred contact (drained from `handle_timeout`, H2.5).
    pub(crate) fn request_contact(
        &mut self,
        now: u64,
        peer: Address,
        local: SocketAddr,
        remote: SocketAddr,
        kind: ContactKind,
    ) {
        let contact = Contact {
            peer,
            local,
            remote,
            kind,
        };
        match self.contacts.push(contact, now) {
            Ok(()) | Err(ContactRefused::Duplicate) => {}
            Err(ContactRefused::Throttled) => self.counters.contact_throttled += 1,
            Err(ContactRefused::Full) => self.counters.contact_queue_full += 1,
        }
    }

    /// Contacts the static hints of a peer that has no live direct path.
    pub(crate) fn try_static_hints(&mut self, now: u64, peer: Address) {
        let hints: Vec<SocketAddr> = self
            .static_hints
            .iter()
            .filter(|(a, _)| *a == peer)
            .map(|(_, s)| *s)
            .collect();
        for remote in hints {
            if self.usable(&remote) && self.can_send_to(&remote) {
                let local = self.local_for(&remote);
                self.request_contact(now, peer, local, remote, ContactKind::Hello);
            }
        }
    }

    /// HELLOs the seed of a wanted moon (or looks it up first).
    pub(crate) fn contact_seed(&mut self, now: u64, seed: Address) {
        if !self.peers.contains(&seed) {
            self.request_whois(now, seed);
            return;
        }
        let path = self
            .peers
            .get(&seed)
            .and_then(|p| p.best_path(now))
            .map(|p| (p.local, p.remote));
        let _ = self.send_hello(now, seed, path);
    }
}
