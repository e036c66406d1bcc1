//! Time-driven work (protocol 8.2, 8.5): WHOIS retries and queue expiry every
//! `ZT_WHOIS_RETRY_DELAY`, draining of deferred contacts, and the `ZT_PING_CHECK_INTERVAL`
//! tick: root contact, keepalives (ECHO after `ZT_PATH_HEARTBEAT_PERIOD` idle, full HELLO every
//! `ZT_PEER_PING_PERIOD`), path expiry (`ZT_PEER_PATH_EXPIRATION`) and forgetting inactive
//! non-root peers (`ZT_PEER_ACTIVITY_TIMEOUT`).

use std::net::SocketAddr;

use super::constants::{
    CONTACT_DRAIN_INTERVAL, CONTACTS_PER_DRAIN, ZT_HOUSEKEEPING_PERIOD, ZT_MIN_UNITE_INTERVAL,
    ZT_PEER_ACTIVITY_TIMEOUT, ZT_PEER_PING_PERIOD, ZT_PING_CHECK_INTERVAL,
    ZT_ROOT_FULL_HELLO_PERIOD, ZT_SELFAWARENESS_ENTRY_TIMEOUT, ZT_WHOIS_RETRY_DELAY,
};
use super::send::{ECHO_MIN_PROTOCOL_VERSION, Route};
use super::{Event, Node};
use crate::wire::Address;

impl Node {
    /// The next time (absolute ms) `handle_timeout` has work; `handle_timeout` may also be
    /// called earlier or later.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t = self.next_ping.min(self.next_housekeeping);
        if let Some(w) = self.whois.next_deadline() {
            t = t.min(w);
        }
        if !self.rx_queue.is_empty() || !self.tx_queue.is_empty() {
            t = t.min(self.next_queue_check);
        }
        if let Some(retry) = self.next_config_retry() {
            t = t.min(retry);
        }
        if !self.contacts.is_empty() {
            let drain = self
                .last_contact_drain
                .map_or(self.now, |d| d + CONTACT_DRAIN_INTERVAL);
            t = t.min(drain);
        }
        Some(t)
    }

    /// Runs whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        let due = self.whois.due(now);
        for address in &due.failed {
            self.counters.whois_failed += 1;
            self.counters.rx_queue_expired += self.rx_queue.drop_from(address) as u64;
            self.counters.tx_queue_expired += self.tx_queue.take_for(address).len() as u64;
        }
        self.send_whois(now, &due.send);
        if now >= self.next_queue_check {
            self.next_queue_check = now + ZT_WHOIS_RETRY_DELAY;
            for buf in self.rx_queue.expire(now) {
                self.counters.rx_queue_expired += 1;
                self.outbox.queue.recycle(buf);
            }
            self.counters.tx_queue_expired += self.tx_queue.expire(now) as u64;
        }
        if !self.contacts.is_empty()
            && self
                .last_contact_drain
                .is_none_or(|d| now >= d + CONTACT_DRAIN_INTERVAL || now < d)
        {
            for contact in self.contacts.drain(CONTACTS_PER_DRAIN, now) {
                self.contact(now, contact);
            }
            self.last_contact_drain = Some(now);
        }
        if now >= self.next_ping {
            self.next_ping = now + ZT_PING_CHECK_INTERVAL;
            self.ping_check(now);
            self.network_tick(now);
        } else {
            self.retry_unconfigured(now);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + ZT_HOUSEKEEPING_PERIOD;
            self.housekeeping(now);
        }
        if let Some(r) = self.reassembler.as_mut() {
            r.expire(now);
            self.counters.reassembly = r.counters();
        }
        self.update_online(now);
    }

    /// The `ZT_PING_CHECK_INTERVAL` tick.
    fn ping_check(&mut self, now: u64) {
        let upstreams: Vec<(Address, Vec<SocketAddr>)> = self
            .topology
            .upstreams()
            .iter()
            .map(|u| (u.identity.address(), u.endpoints.clone()))
            .collect();
        for (address, endpoints) in upstreams {
            let Some(peer) = self.peers.get(&address) else {
                continue;
            };
            // An upstream heard on no path for ZT_PATH_ALIVE_TIMEOUT is greeted in full again
            // at once: it may have restarted and forgotten us, and until our HELLO it cannot
            // read our keepalives (the reference greets a root with no active path likewise).
            let due = !peer.paths.iter().any(|p| p.alive(now))
                || peer
                    .last_root_contact
                    .is_none_or(|t| now.saturating_sub(t) >= ZT_ROOT_FULL_HELLO_PERIOD);
            if due {
                self.contact_upstream(now, address, &endpoints);
            }
        }
        let seeds: Vec<Address> = self.topology.orbits().iter().map(|o| o.seed).collect();
        for seed in seeds {
            self.contact_seed(now, seed);
        }
        for address in self.peers.addresses() {
            self.peer_tick(now, address);
        }
    }

    /// Contacts an upstream (8.2): a full HELLO over each live path; then, per address
    /// family not reached that way, to a random stable endpoint; failing all that, through
    /// another root.
    fn contact_upstream(&mut self, now: u64, address: Address, endpoints: &[SocketAddr]) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        peer.last_root_contact = Some(now);
        let paths: Vec<(SocketAddr, SocketAddr)> = peer
            .paths
            .iter()
            .filter(|p| !p.expired(now))
            .map(|p| (p.local, p.remote))
            .collect();
        let (mut sent_v4, mut sent_v6) = (false, false);
        for (local, remote) in paths {
            if self.send_hello(now, address, Some((local, remote))).is_ok() {
                if remote.is_ipv4() {
                    sent_v4 = true;
                } else {
                    sent_v6 = true;
                }
            }
        }
        for v4 in [true, false] {
            if (v4 && sent_v4) || (!v4 && sent_v6) {
                continue;
            }
            let candidates: Vec<SocketAddr> = endpoints
                .iter()
                .filter(|e| e.is_ipv4() == v4 && self.usable(e) && self.can_send_to(e))
                .copied()
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let pick = self.rng.below(candidates.len());
            if let Some(&remote) = candidates.get(pick) {
                let local = self.local_for(&remote);
                if self.send_hello(now, address, Some((local, remote))).is_ok() {
                    if v4 {
                        sent_v4 = true;
                    } else {
                        sent_v6 = true;
                    }
                }
            }
        }
        if !sent_v4 && !sent_v6 {
            let _ = self.send_hello(now, address, None);
        }
    }

    /// One peer's share of the tick: path expiry, removal when inactive (non-roots), and
    /// keepalives for roots and active peers.
    fn peer_tick(&mut self, now: u64, address: Address) {
        let keep = self.topology.is_upstream(&address) || self.topology.is_pending_seed(&address);
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let mut expired = Vec::new();
        peer.paths.retain(|p| {
            if p.expired(now) {
                expired.push(p.remote);
                false
            } else {
                true
            }
        });
        let inactive = now.saturating_sub(peer.last_seen()) >= ZT_PEER_ACTIVITY_TIMEOUT;
        let active = peer
            .last_activity
            .is_some_and(|t| now.saturating_sub(t) < ZT_PEER_ACTIVITY_TIMEOUT);
        let mut targets = Vec::new();
        let mut full = false;
        if keep || active {
            full = peer
                .last_full_hello
                .is_none_or(|t| now.saturating_sub(t) >= ZT_PEER_PING_PERIOD);
            if full {
                peer.last_full_hello = Some(now);
            }
            targets = peer
                .paths
                .iter()
                .filter(|p| full || p.needs_heartbeat(now))
                .map(|p| (p.local, p.remote))
                .collect();
        }
        let echo_ok = peer.protocol_version >= ECHO_MIN_PROTOCOL_VERSION;
        let has_path = !peer.paths.is_empty();
        for remote in expired {
            self.counters.paths_expired += 1;
            self.push_event(Event::PathExpired {
                peer: address,
                remote,
            });
        }
        if !keep && inactive {
            self.peers.remove(&address);
            self.counters.peers_removed += 1;
            return;
        }
        for (local, remote) in targets {
            self.contacts.note_sent(address, remote, now);
            if full || !echo_ok {
                let _ = self.send_hello(now, address, Some((local, remote)));
            } else {
                let route = Route {
                    local,
                    remote,
                    via: Some(address),
                };
                self.send_contact_echo(now, address, route);
            }
        }
        if active && !has_path {
            self.try_static_hints(now, address);
        }
    }

    fn housekeeping(&mut self, now: u64) {
        self.unites
            .retain(|_, &mut t| now.saturating_sub(t) < ZT_MIN_UNITE_INTERVAL);
        self.surfaces
            .retain(|s| now.saturating_sub(s.at) < ZT_SELFAWARENESS_ENTRY_TIMEOUT);
    }
}
