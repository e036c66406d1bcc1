//! Relaying packets that are not for us (protocol 2.4) and introducing the two ends with
//! RENDEZVOUS when both can be reached directly (at most once per `ZT_MIN_UNITE_INTERVAL` per
//! pair).

use std::net::SocketAddr;

use super::Node;
use super::constants::ZT_MIN_UNITE_INTERVAL;
use super::send::{Route, SendOptions};
use crate::wire::fragment::IDX_FRAGMENT_HOPS;
use crate::wire::packet::{FLAGS_HOPS_MASK, IDX_FLAGS, MAX_RELAY_HOPS};
use crate::wire::verbs::Rendezvous;
use crate::wire::{Address, Verb};

impl Node {
    /// Relays a datagram that is not for us (2.4): hops + 1 (dropped at `MAX_RELAY_HOPS`),
    /// to the destination's best direct path, else to our best root. Introduces the two ends
    /// (RENDEZVOUS) when both have direct paths to us.
    pub(crate) fn relay(
        &mut self,
        now: u64,
        remote: SocketAddr,
        data: &[u8],
        destination: Address,
        is_fragment: bool,
    ) {
        if !self.is_relay() {
            self.counters.relay_refused += 1;
            return;
        }
        let hops_at = if is_fragment {
            IDX_FRAGMENT_HOPS
        } else {
            IDX_FLAGS
        };
        let Some(&hops_byte) = data.get(hops_at) else {
            self.counters.malformed_header += 1;
            return;
        };
        let hops = hops_byte & FLAGS_HOPS_MASK;
        if hops >= MAX_RELAY_HOPS {
            self.counters.relay_hop_limit += 1;
            return;
        }
        let source = if is_fragment {
            None
        } else {
            data.get(crate::wire::packet::IDX_SOURCE..IDX_FLAGS)
                .and_then(|s| Address::from_slice(s).ok())
        };
        let direct = self
            .peers
            .get(&destination)
            .and_then(|p| p.best_path(now))
            .map(|p| Route {
                local: p.local,
                remote: p.remote,
                via: Some(destination),
            });
        let route = direct.or_else(|| {
            let root = self.best_root(now, source)?;
            if Some(root) == source || root == destination {
                return None;
            }
            let path = self.peers.get(&root)?.best_path(now)?;
            Some(Route {
                local: path.local,
                remote: path.remote,
                via: Some(root),
            })
        });
        let Some(route) = route.filter(|r| r.remote != remote) else {
            self.counters.relay_no_route += 1;
            return;
        };
        let hops_byte = if is_fragment {
            (hops + 1) & FLAGS_HOPS_MASK
        } else {
            (hops_byte & !FLAGS_HOPS_MASK) | ((hops + 1) & FLAGS_HOPS_MASK)
        };
        let forwarded = self
            .outbox
            .forward(&mut self.counters, data, hops_at, hops_byte, route);
        if !forwarded {
            return;
        }
        self.counters.relay_forwarded += 1;
        self.note_sent_on(now, &route);
        if direct.is_some()
            && let Some(source) = source
        {
            self.maybe_unite(now, source, destination);
        }
    }

    /// Sends each of two peers a RENDEZVOUS naming the other's best direct address (same
    /// family, IPv6 preferred), at most every `ZT_MIN_UNITE_INTERVAL` per pair.
    fn maybe_unite(&mut self, now: u64, a: Address, b: Address) {
        let key = if a < b { (a, b) } else { (b, a) };
        if let Some(&last) = self.unites.get(&key)
            && now.saturating_sub(last) < ZT_MIN_UNITE_INTERVAL
        {
            return;
        }
        let (Some(pa), Some(pb)) = (self.peers.get(&a), self.peers.get(&b)) else {
            return;
        };
        let pick = |v4: bool| {
            Some((
                pa.best_path_in_family(now, v4)?.remote,
                pb.best_path_in_family(now, v4)?.remote,
            ))
        };
        let Some((a_at, b_at)) = pick(false).or_else(|| pick(true)) else {
            return;
        };
        if self.unites.len() >= self.limits.unite_pairs {
            self.unites
                .retain(|_, &mut t| now.saturating_sub(t) < ZT_MIN_UNITE_INTERVAL);
            if self.unites.len() >= self.limits.unite_pairs {
                return;
            }
        }
        self.unites.insert(key, now);
        // The order is randomised, as the reference does, for NAT traversal's sake.
        let pairs = if self.rng.next_u64() & 1 == 0 {
            [(a, b, b_at), (b, a, a_at)]
        } else {
            [(b, a, a_at), (a, b, b_at)]
        };
        for (to, with, endpoint) in pairs {
            let mut payload = Vec::with_capacity(25);
            Rendezvous {
                flags: 0,
                with,
                endpoint,
            }
            .emit(&mut payload);
            if self
                .send_verb(now, to, Verb::Rendezvous, &payload, SendOptions::control())
                .is_ok()
            {
                self.counters.rendezvous_sent += 1;
            }
        }
    }
}
