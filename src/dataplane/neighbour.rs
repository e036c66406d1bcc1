//! Address resolution state (hardening H2.3, H2.4): the neighbour table (IP to MAC, bounded,
//! with a TTL that only a new verified answer refreshes) and the resolutions in flight (the
//! requests we have outstanding, each holding a few packets that wait for the answer).
//!
//! Pure bookkeeping: what to send and what to count is decided by the boundary. An answer is
//! only ever taken for an address with a resolution in flight; a live entry is never
//! replaced by another MAC before it expires.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::wire::mac::Mac;

/// Entries kept; learning beyond it evicts the oldest.
pub const NEIGHBOUR_CAPACITY: usize = 1024;
/// How long a learned entry is trusted.
pub const NEIGHBOUR_TTL_MS: u64 = 300_000;
/// An entry used this close to its expiry is re-resolved in the background.
pub const REFRESH_BEFORE_EXPIRY_MS: u64 = 30_000;
/// Destinations being resolved at once.
pub const MAX_PENDING_DESTINATIONS: usize = 64;
/// Packets held per destination while it is resolved (the oldest is dropped beyond).
pub const MAX_PACKETS_PER_DESTINATION: usize = 4;
/// Requests sent per resolution (the first, then retries after 1 s and 2 s); the last
/// waits 4 s for an answer before the resolution fails.
pub const RESOLUTION_ATTEMPTS: u32 = 3;
pub const FIRST_RETRY_MS: u64 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    mac: Mac,
    learned_at: u64,
    expires_at: u64,
}

/// What an accepted answer did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// A new entry (`evicted`: another entry made room for it).
    New { evicted: bool },
    /// The live entry, same MAC: its TTL starts again.
    Refreshed,
    /// A live entry names another MAC: nothing changed.
    Conflict,
}

/// IP to MAC, bounded and expiring.
#[derive(Debug, Default)]
pub(crate) struct NeighbourTable {
    entries: HashMap<IpAddr, Entry>,
    /// No entry expires before this (a hint for the sweep timer).
    earliest_expiry: Option<u64>,
}

impl NeighbourTable {
    /// The live MAC of `ip`, and whether it is due for a background refresh.
    pub(crate) fn lookup(&self, ip: IpAddr, now: u64) -> Option<(Mac, bool)> {
        let entry = self.entries.get(&ip).filter(|e| e.expires_at > now)?;
        let refresh = entry.expires_at - now <= REFRESH_BEFORE_EXPIRY_MS;
        Some((entry.mac, refresh))
    }

    /// Takes a verified answer `ip is at mac`.
    pub(crate) fn learn(&mut self, ip: IpAddr, mac: Mac, now: u64) -> Learned {
        let expires_at = now.saturating_add(NEIGHBOUR_TTL_MS);
        self.earliest_expiry = Some(
            self.earliest_expiry
                .map_or(expires_at, |e| e.min(expires_at)),
        );
        if let Some(entry) = self.entries.get_mut(&ip)
            && entry.expires_at > now
        {
            if entry.mac != mac {
                return Learned::Conflict;
            }
            entry.expires_at = expires_at;
            return Learned::Refreshed;
        }
        let mut evicted = false;
        if !self.entries.contains_key(&ip) && self.entries.len() >= NEIGHBOUR_CAPACITY {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.learned_at)
                .map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
                evicted = true;
            }
        }
        self.entries.insert(
            ip,
            Entry {
                mac,
                learned_at: now,
                expires_at,
            },
        );
        Learned::New { evicted }
    }

    /// Removes expired entries; returns how many.
    pub(crate) fn expire(&mut self, now: u64) -> usize {
        if self.earliest_expiry.is_none_or(|e| e > now) {
            return 0;
        }
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        self.earliest_expiry = self.entries.values().map(|e| e.expires_at).min();
        before - self.entries.len()
    }

    /// When [`NeighbourTable::expire`] next has something to do.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.earliest_expiry
    }

    /// Keeps only the entries whose address satisfies `keep`.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(IpAddr) -> bool) {
        self.entries.retain(|ip, _| keep(*ip));
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.earliest_expiry = None;
    }

    /// The addresses whose entry names `mac` (expired ones included until swept).
    pub(crate) fn ips_of(&self, mac: Mac) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self
            .entries
            .iter()
            .filter(|(_, e)| e.mac == mac)
            .map(|(ip, _)| *ip)
            .collect();
        ips.sort();
        ips
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One outstanding request and the packets waiting for it.
#[derive(Debug)]
pub(crate) struct Resolution {
    pub(crate) ip: IpAddr,
    pub(crate) packets: VecDeque<Vec<u8>>,
    /// Requests sent so far.
    pub(crate) attempts: u32,
    /// When to retry (or give up after the last attempt).
    pub(crate) deadline: u64,
}

impl Resolution {
    /// A resolution whose first request goes out now.
    pub(crate) fn started(ip: IpAddr, now: u64) -> Resolution {
        Resolution {
            ip,
            packets: VecDeque::new(),
            attempts: 1,
            deadline: now.saturating_add(FIRST_RETRY_MS),
        }
    }

    /// Records another request sent now; the wait doubles each time.
    pub(crate) fn retried(&mut self, now: u64) {
        let wait = FIRST_RETRY_MS << self.attempts.min(16);
        self.attempts += 1;
        self.deadline = now.saturating_add(wait);
    }

    /// Whether the wait after the last attempt is over.
    pub(crate) fn exhausted(&self) -> bool {
        self.attempts >= RESOLUTION_ATTEMPTS
    }

    /// Holds `packet`; returns the oldest packet dropped to make room, if any.
    pub(crate) fn hold(&mut self, packet: Vec<u8>) -> Option<Vec<u8>> {
        let dropped = if self.packets.len() >= MAX_PACKETS_PER_DESTINATION {
            self.packets.pop_front()
        } else {
            None
        };
        self.packets.push_back(packet);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn conflict_until_expiry() {
        let mut t = NeighbourTable::default();
        let (a, b) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        assert_eq!(t.learn(ip(1), a, 0), Learned::New { evicted: false });
        assert_eq!(t.lookup(ip(1), 10), Some((a, false)));
        assert_eq!(t.learn(ip(1), b, 10), Learned::Conflict);
        assert_eq!(t.learn(ip(1), a, 100), Learned::Refreshed);
        let expiry = 100 + NEIGHBOUR_TTL_MS;
        assert_eq!(t.lookup(ip(1), expiry - 1), Some((a, true)));
        assert_eq!(t.lookup(ip(1), expiry), None);
        assert_eq!(t.learn(ip(1), b, expiry), Learned::New { evicted: false });
        assert_eq!(t.lookup(ip(1), expiry), Some((b, false)));
        assert_eq!(t.expire(expiry), 0);
        assert_eq!(t.expire(expiry + NEIGHBOUR_TTL_MS), 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn bounded_evicts_oldest() {
        let mut t = NeighbourTable::default();
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        for i in 0..NEIGHBOUR_CAPACITY as u32 {
            assert_eq!(
                t.learn(ip(i), mac, u64::from(i)),
                Learned::New { evicted: false }
            );
        }
        assert_eq!(
            t.learn(ip(99_999), mac, 5_000),
            Learned::New { evicted: true }
        );
        assert_eq!(t.len(), NEIGHBOUR_CAPACITY);
        assert_eq!(t.lookup(ip(0), 5_000), None, "the oldest went");
        assert!(t.lookup(ip(1), 5_000).is_some());
    }

    #[test]
    fn resolution_backoff_and_hold() {
        let mut r = Resolution::started(ip(1), 0);
        assert_eq!((r.attempts, r.deadline), (1, 1_000));
        r.retried(1_000);
        assert_eq!((r.attempts, r.deadline), (2, 3_000));
        r.retried(3_000);
        assert_eq!((r.attempts, r.deadline), (3, 7_000));
        assert!(r.exhausted());
        for i in 0..MAX_PACKETS_PER_DESTINATION as u8 {
            assert_eq!(r.hold(vec![i]), None);
        }
        assert_eq!(r.hold(vec![9]), Some(vec![0]));
        assert_eq!(r.packets.len(), MAX_PACKETS_PER_DESTINATION);
    }
}
