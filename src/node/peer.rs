//! Peers: a verified identity, the symmetric key agreed with it once (H2.6: a verified key
//! is never replaced; a failed lookup never creates an entry), its protocol version, its
//! direct paths (at most `max_paths_per_peer`, protocol 8.4) and its per-peer rate limits.
//! [`PeerTable`] bounds how many peers are kept and evicts the least recently active non-root.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::constants::{ECHO_REPLY_BURST, SENT_HELLOS_PER_PEER};
use super::path::Path;
use super::ratelimit::{TokenBucket, WindowCounter};
use crate::crypto::{Identity, SymmetricKey};
use crate::wire::Address;
use crate::wire::verbs::SoftwareVersion;

/// A HELLO we sent, remembered for OK(HELLO) matching (H2.8) and latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SentHello {
    pub(crate) packet_id: u64,
    pub(crate) sent_at: u64,
}

/// What learning a path did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// The path was already known (its receive time was refreshed).
    Known,
    /// A new path was added.
    Added,
    /// A new path replaced the given remote endpoint (the table was full).
    Replaced(SocketAddr),
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) identity: Identity,
    pub(crate) key: SymmetricKey,
    /// 0 until learned from HELLO or OK(HELLO) (a peer known only by WHOIS).
    pub(crate) protocol_version: u8,
    pub(crate) software_version: Option<SoftwareVersion>,
    pub(crate) paths: Vec<Path>,
    pub(crate) created: u64,
    /// Last authenticated packet from this peer.
    pub(crate) last_receive: Option<u64>,
    /// Last non-trivial traffic either way (user messages, echoes we asked for, frames in
    /// the network layer): keepalives are sent only to active peers.
    pub(crate) last_activity: Option<u64>,
    /// Last full HELLO sent over the peer's paths (keepalive cadence).
    pub(crate) last_full_hello: Option<u64>,
    /// Last root contact round (8.2), for upstreams only.
    pub(crate) last_root_contact: Option<u64>,
    sent_hellos: [Option<SentHello>; SENT_HELLOS_PER_PEER],
    next_sent_hello: usize,
    /// Latency from the last OK(HELLO)/OK(ECHO) that came back directly.
    pub(crate) latency: Option<u32>,
    pub(crate) echo_replies: TokenBucket,
    pub(crate) last_whois_received: Option<u64>,
    pub(crate) pushes_received: WindowCounter,
    pub(crate) last_push_sent: Option<u64>,
    /// Until when we have a trust relationship (set by the network layer).
    pub(crate) trusted_until: u64,
}

impl Peer {
    /// A peer for `identity`, with the key agreed from our secret; `None` without one.
    pub(crate) fn new(ours: &Identity, identity: Identity, now: u64) -> Option<Peer> {
        let shared = ours.agree(&identity)?;
        Some(Self::with_key(identity, SymmetricKey::new(&shared), now))
    }

    /// A peer with an already agreed key (the HELLO path agrees before validating).
    pub(crate) fn with_key(identity: Identity, key: SymmetricKey, now: u64) -> Peer {
        Peer {
            identity,
            key,
            protocol_version: 0,
            software_version: None,
            paths: Vec::new(),
            created: now,
            last_receive: None,
            last_activity: None,
            last_full_hello: None,
            last_root_contact: None,
            sent_hellos: [None; SENT_HELLOS_PER_PEER],
            next_sent_hello: 0,
            latency: None,
            echo_replies: TokenBucket::new(ECHO_REPLY_BURST, now),
            last_whois_received: None,
            pushes_received: WindowCounter::default(),
            last_push_sent: None,
            trusted_until: 0,
        }
    }

    pub(crate) fn address(&self) -> Address {
        self.identity.address()
    }

    /// Time of the last sign of life (or creation, so new peers get a grace period).
    pub(crate) fn last_seen(&self) -> u64 {
        self.last_receive.unwrap_or(self.created).max(self.created)
    }

    pub(crate) fn path_index(&self, local: &SocketAddr, remote: &SocketAddr) -> Option<usize> {
        self.paths
            .iter()
            .position(|p| p.remote == *remote && p.local == *local)
    }

    /// The best non-expired path: one not [superseded](Peer::superseded) first, then the
    /// lowest quality score.
    pub(crate) fn best_path(&self, now: u64) -> Option<&Path> {
        self.paths
            .iter()
            .filter(|p| !p.expired(now))
            .min_by_key(|p| (self.superseded(p, now), p.quality(now)))
    }

    /// The best non-expired path of the address family of `like`.
    pub(crate) fn best_path_in_family(&self, now: u64, v4: bool) -> Option<&Path> {
        self.paths
            .iter()
            .filter(|p| !p.expired(now) && p.remote.is_ipv4() == v4)
            .min_by_key(|p| (self.superseded(p, now), p.quality(now)))
    }

    /// True when the peer is heard on a live path of the same family that was learned after
    /// `path` last received anything: the peer moved to a new underlay address (roaming), and
    /// `path`, although still inside its alive horizon, most likely leads nowhere. Without
    /// this, replies keep going to the old address until it stops counting as alive
    /// (`ZT_PATH_ALIVE_TIMEOUT`, 19 s) and a TCP session over the network stalls that long.
    /// It corrects itself: anything received on `path` again clears it.
    fn superseded(&self, path: &Path, now: u64) -> bool {
        self.paths.iter().any(|newer| {
            newer.remote.is_ipv4() == path.remote.is_ipv4()
                && newer.created > path.last_receive
                && newer.last_receive > path.last_receive
                && newer.alive(now)
        })
    }

    /// Whether any path is usable for sending.
    pub(crate) fn has_live_path(&self, now: u64) -> bool {
        self.paths.iter().any(|p| !p.expired(now))
    }

    /// Learns (local, remote) as a path after an OK arrived on it with hops 0 (8.4). A
    /// dead path to the same endpoint is replaced in place; when the table is full the
    /// path silent the longest is replaced.
    pub(crate) fn learn_path(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        now: u64,
        max_paths: usize,
    ) -> Learned {
        if let Some(i) = self.path_index(&local, &remote) {
            if let Some(p) = self.paths.get_mut(i) {
                p.last_receive = now;
            }
            return Learned::Known;
        }
        let fresh = Path::new(local, remote, now);
        if let Some(dead) = self
            .paths
            .iter_mut()
            .find(|p| p.remote.ip() == remote.ip() && p.local == local && !p.alive(now))
        {
            let old = dead.remote;
            *dead = fresh;
            return Learned::Replaced(old);
        }
        if self.paths.len() < max_paths.max(1) {
            self.paths.push(fresh);
            return Learned::Added;
        }
        match self.paths.iter_mut().min_by_key(|p| p.last_receive) {
            Some(oldest) => {
                let old = oldest.remote;
                *oldest = fresh;
                Learned::Replaced(old)
            }
            None => Learned::Known,
        }
    }

    /// Records a HELLO we sent (its post-armor id).
    pub(crate) fn note_sent_hello(&mut self, packet_id: u64, now: u64) {
        if let Some(slot) = self.sent_hellos.get_mut(self.next_sent_hello) {
            *slot = Some(SentHello {
                packet_id,
                sent_at: now,
            });
        }
        self.next_sent_hello = (self.next_sent_hello + 1) % SENT_HELLOS_PER_PEER;
    }

    /// Consumes the sent HELLO `packet_id`, if we sent it to this peer (H2.8).
    pub(crate) fn take_sent_hello(&mut self, packet_id: u64) -> Option<SentHello> {
        self.sent_hellos.iter_mut().find_map(|slot| match *slot {
            Some(h) if h.packet_id == packet_id => {
                *slot = None;
                Some(h)
            }
            _ => None,
        })
    }

    /// Whether `packet_id` is a HELLO we sent to this peer (kept; for ERROR checks).
    pub(crate) fn sent_hello(&self, packet_id: u64) -> bool {
        self.sent_hellos
            .iter()
            .any(|s| s.is_some_and(|h| h.packet_id == packet_id))
    }

    /// Whether we currently have a trust relationship (PUSH_DIRECT_PATHS are sent then).
    pub(crate) fn trusted(&self, now: u64) -> bool {
        now < self.trusted_until
    }
}

/// The bounded peer table. Ordered, so iteration (ping checks, eviction ties) is the same in
/// every run of a seeded simulation.
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    peers: BTreeMap<Address, Peer>,
}

/// Why a peer could not be inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// Every entry belongs to a root.
    Full,
}

impl PeerTable {
    pub(crate) fn get(&self, address: &Address) -> Option<&Peer> {
        self.peers.get(address)
    }

    pub(crate) fn get_mut(&mut self, address: &Address) -> Option<&mut Peer> {
        self.peers.get_mut(address)
    }

    pub(crate) fn contains(&self, address: &Address) -> bool {
        self.peers.contains_key(address)
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    pub(crate) fn addresses(&self) -> Vec<Address> {
        self.peers.keys().copied().collect()
    }

    pub(crate) fn remove(&mut self, address: &Address) -> Option<Peer> {
        self.peers.remove(address)
    }

    /// Inserts `peer` (replacing nothing: callers check that the address is free). When the
    /// table holds `max` peers, the least recently seen peer for which `is_root` is false is
    /// evicted first; returns the evicted address.
    pub(crate) fn insert(
        &mut self,
        peer: Peer,
        max: usize,
        is_root: impl Fn(&Address) -> bool,
    ) -> Result<Option<Address>, InsertError> {
        let mut evicted = None;
        if self.peers.len() >= max.max(1) && !self.peers.contains_key(&peer.address()) {
            let victim = self
                .peers
                .values()
                .filter(|p| !is_root(&p.address()))
                .min_by_key(|p| p.last_seen())
                .map(|p| p.address());
            match victim {
                Some(v) => {
                    self.peers.remove(&v);
                    evicted = Some(v);
                }
                None => return Err(InsertError::Full),
            }
        }
        self.peers.insert(peer.address(), peer);
        Ok(evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SharedKey;

    fn peer(addr: u64, now: u64) -> Peer {
        let id = Identity::from_parts(Address::from_u64(addr), [addr as u8; 64], None);
        Peer::with_key(id, SymmetricKey::new(&SharedKey::from_bytes([1; 48])), now)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn learns_refreshes_and_bounds_paths() {
        let mut p = peer(1, 0);
        let local = sa("0.0.0.0:0");
        assert_eq!(p.learn_path(local, sa("10.0.0.1:1"), 10, 2), Learned::Added);
        assert_eq!(p.learn_path(local, sa("10.0.0.1:1"), 20, 2), Learned::Known);
        assert_eq!(p.paths[0].last_receive, 20);
        assert_eq!(p.learn_path(local, sa("10.0.0.2:1"), 30, 2), Learned::Added);
        // Full: the path silent the longest goes.
        assert_eq!(
            p.learn_path(local, sa("10.0.0.3:1"), 40, 2),
            Learned::Replaced(sa("10.0.0.1:1"))
        );
        assert_eq!(p.paths.len(), 2);
        // A dead path with the same IP is replaced in place (NAT rebinding).
        let later = 40 + super::super::constants::ZT_PATH_ALIVE_TIMEOUT + 1;
        assert_eq!(
            p.learn_path(local, sa("10.0.0.3:2"), later, 2),
            Learned::Replaced(sa("10.0.0.3:1"))
        );
    }

    #[test]
    fn best_path_prefers_low_latency_and_skips_expired() {
        let mut p = peer(1, 0);
        let local = sa("0.0.0.0:0");
        p.learn_path(local, sa("10.0.0.1:1"), 0, 8);
        p.learn_path(local, sa("10.0.0.2:1"), 0, 8);
        p.paths[0].latency = Some(50);
        p.paths[1].latency = Some(5);
        assert_eq!(p.best_path(0).map(|x| x.remote), Some(sa("10.0.0.2:1")));
        assert!(p.best_path_in_family(0, false).is_none());
        let late = super::super::constants::ZT_PEER_PATH_EXPIRATION;
        assert!(p.best_path(late).is_none());
        assert!(!p.has_live_path(late));
    }

    #[test]
    fn a_path_learned_after_the_old_one_went_silent_takes_over_until_the_old_one_speaks() {
        let mut p = peer(1, 0);
        let local = sa("0.0.0.0:0");
        p.learn_path(local, sa("10.0.0.1:1"), 1_000, 8);
        p.paths[0].latency = Some(1);
        // The peer roams: its packets now come from 10.0.0.9 (slower), the old path is silent.
        p.learn_path(local, sa("10.0.0.9:1"), 1_500, 8);
        p.paths[1].latency = Some(20);
        p.paths[1].last_receive = 2_000;
        assert!(
            p.paths[0].alive(2_000),
            "the old path still counts as alive"
        );
        assert_eq!(p.best_path(2_000).map(|x| x.remote), Some(sa("10.0.0.9:1")));
        assert_eq!(
            p.best_path_in_family(2_000, true).map(|x| x.remote),
            Some(sa("10.0.0.9:1"))
        );
        // The old path is heard again: latency decides once more.
        p.paths[0].last_receive = 2_100;
        assert_eq!(p.best_path(2_100).map(|x| x.remote), Some(sa("10.0.0.1:1")));
        // Another family never supersedes.
        let mut q = peer(2, 0);
        q.learn_path(local, sa("10.0.0.1:1"), 1_000, 8);
        q.learn_path(sa("[::]:0"), sa("[2001:db8::1]:1"), 1_500, 8);
        q.paths[0].latency = Some(1);
        q.paths[1].latency = Some(20);
        q.paths[1].last_receive = 2_000;
        assert_eq!(q.best_path(2_000).map(|x| x.remote), Some(sa("10.0.0.1:1")));
    }

    #[test]
    fn sent_hellos_match_once() {
        let mut p = peer(1, 0);
        for id in 1..=5 {
            p.note_sent_hello(id, id * 10);
        }
        // The ring holds the last four.
        assert!(p.take_sent_hello(1).is_none());
        assert!(p.sent_hello(2));
        assert_eq!(p.take_sent_hello(5).map(|h| h.sent_at), Some(50));
        assert!(p.take_sent_hello(5).is_none());
    }

    #[test]
    fn table_evicts_least_recent_non_root() {
        let mut t = PeerTable::default();
        let root = Address::from_u64(1);
        for (i, seen) in [(1u64, 0u64), (2, 50), (3, 10)] {
            let mut p = peer(i, 0);
            p.last_receive = Some(seen);
            t.insert(p, 3, |a| *a == root).unwrap();
        }
        let evicted = t.insert(peer(4, 100), 3, |a| *a == root).unwrap();
        assert_eq!(evicted, Some(Address::from_u64(3)));
        assert!(t.contains(&root));
        let mut only_roots = PeerTable::default();
        only_roots.insert(peer(1, 0), 1, |_| true).unwrap();
        assert_eq!(
            only_roots.insert(peer(2, 0), 1, |_| true),
            Err(InsertError::Full)
        );
    }
}
