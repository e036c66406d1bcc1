//! The node's bounded waiting rooms (H2.10: every queue has a bound and a drop counter):
//! pending WHOIS lookups with retry and backoff, packets received from unknown senders,
//! packets to send once a peer's identity is known, and deferred contacts (hole punches and
//! HELLOs to new paths, drained from `handle_timeout`, never on the receive path, H2.5).

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::constants::{
    PATH_CONTACT_INTERVAL, ZT_MAX_WHOIS_ATTEMPTS, ZT_RECEIVE_QUEUE_TIMEOUT,
    ZT_TRANSMIT_QUEUE_TIMEOUT, ZT_WHOIS_RETRY_DELAY,
};
use super::replies::ReplyKind;
use crate::wire::{Address, Verb};

/// One identity lookup in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lookup {
    pub(crate) address: Address,
    /// WHOIS sent so far.
    pub(crate) attempts: u32,
    pub(crate) next_attempt: u64,
}

/// What is due among the pending lookups.
#[derive(Debug, Default)]
pub(crate) struct DueLookups {
    /// Send a WHOIS for these now.
    pub(crate) send: Vec<Address>,
    /// Abandoned after their last attempt.
    pub(crate) failed: Vec<Address>,
}

/// Pending WHOIS lookups: at most `max`, retried with exponential backoff from
/// `ZT_WHOIS_RETRY_DELAY`, abandoned after `ZT_MAX_WHOIS_ATTEMPTS` sends.
#[derive(Debug)]
pub(crate) struct PendingWhois {
    lookups: Vec<Lookup>,
    max: usize,
}

impl PendingWhois {
    pub(crate) fn new(max: usize) -> PendingWhois {
        PendingWhois {
            lookups: Vec::new(),
            max: max.max(1),
        }
    }

    /// Starts a lookup due at once; `Ok(false)` if one is already running, `Err` when full.
    pub(crate) fn request(&mut self, address: Address, now: u64) -> Result<bool, ()> {
        if self.contains(&address) {
            return Ok(false);
        }
        if self.lookups.len() >= self.max {
            return Err(());
        }
        self.lookups.push(Lookup {
            address,
            attempts: 0,
            next_attempt: now,
        });
        Ok(true)
    }

    pub(crate) fn contains(&self, address: &Address) -> bool {
        self.lookups.iter().any(|l| l.address == *address)
    }

    pub(crate) fn remove(&mut self, address: &Address) -> bool {
        let before = self.lookups.len();
        self.lookups.retain(|l| l.address != *address);
        before != self.lookups.len()
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.lookups.iter().map(|l| l.next_attempt).min()
    }

    /// Lookups whose time has come: to send (attempt counted, next one backed off) or
    /// abandoned.
    pub(crate) fn due(&mut self, now: u64) -> DueLookups {
        let mut due = DueLookups::default();
        self.lookups.retain_mut(|l| {
            if l.next_attempt > now {
                return true;
            }
            if l.attempts >= ZT_MAX_WHOIS_ATTEMPTS {
                due.failed.push(l.address);
                return false;
            }
            l.attempts += 1;
            l.next_attempt = now + (ZT_WHOIS_RETRY_DELAY << (l.attempts - 1).min(8));
            due.send.push(l.address);
            true
        });
        due
    }
}

/// An assembled, still armored packet from a sender we do not know yet.
#[derive(Debug)]
pub(crate) struct QueuedPacket {
    pub(crate) source: Address,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) received_at: u64,
    pub(crate) data: Vec<u8>,
}

/// Packets waiting for their sender's identity (`ZT_RX_QUEUE_SIZE` entries,
/// `ZT_RECEIVE_QUEUE_TIMEOUT`).
#[derive(Debug)]
pub(crate) struct RxQueue {
    packets: VecDeque<QueuedPacket>,
    max: usize,
}

impl RxQueue {
    pub(crate) fn new(max: usize) -> RxQueue {
        RxQueue {
            packets: VecDeque::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.packets.len() >= self.max
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Queues a packet; gives it back when full.
    pub(crate) fn push(&mut self, packet: QueuedPacket) -> Result<(), QueuedPacket> {
        if self.is_full() {
            return Err(packet);
        }
        self.packets.push_back(packet);
        Ok(())
    }

    /// Removes and returns every packet from `source`, oldest first.
    pub(crate) fn take_from(&mut self, source: &Address) -> Vec<QueuedPacket> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.packets.len());
        for p in self.packets.drain(..) {
            if p.source == *source {
                taken.push(p);
            } else {
                kept.push_back(p);
            }
        }
        self.packets = kept;
        taken
    }

    /// Drops packets older than `ZT_RECEIVE_QUEUE_TIMEOUT`; returns their buffers.
    pub(crate) fn expire(&mut self, now: u64) -> Vec<Vec<u8>> {
        let mut dropped = Vec::new();
        self.packets.retain_mut(|p| {
            if now.saturating_sub(p.received_at) >= ZT_RECEIVE_QUEUE_TIMEOUT {
                dropped.push(std::mem::take(&mut p.data));
                false
            } else {
                true
            }
        });
        dropped
    }

    /// Drops every packet from `source` (its lookup failed); returns how many.
    pub(crate) fn drop_from(&mut self, source: &Address) -> usize {
        self.take_from(source).len()
    }
}

/// A packet to send once the destination's identity is known.
#[derive(Debug)]
pub(crate) struct QueuedSend {
    pub(crate) destination: Address,
    pub(crate) verb: Verb,
    pub(crate) payload: Vec<u8>,
    pub(crate) compress: bool,
    pub(crate) reply: Option<ReplyKind>,
    pub(crate) queued_at: u64,
}

/// Packets waiting for a WHOIS answer (`ZT_TX_QUEUE_SIZE`, `ZT_TRANSMIT_QUEUE_TIMEOUT`).
#[derive(Debug)]
pub(crate) struct TxQueue {
    packets: VecDeque<QueuedSend>,
    max: usize,
}

impl TxQueue {
    pub(crate) fn new(max: usize) -> TxQueue {
        TxQueue {
            packets: VecDeque::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    pub(crate) fn push(&mut self, send: QueuedSend) -> Result<(), QueuedSend> {
        if self.packets.len() >= self.max {
            return Err(send);
        }
        self.packets.push_back(send);
        Ok(())
    }

    pub(crate) fn take_for(&mut self, destination: &Address) -> Vec<QueuedSend> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.packets.len());
        for p in self.packets.drain(..) {
            if p.destination == *destination {
                taken.push(p);
            } else {
                kept.push_back(p);
            }
        }
        self.packets = kept;
        taken
    }

    /// Drops sends older than `ZT_TRANSMIT_QUEUE_TIMEOUT`; returns how many.
    pub(crate) fn expire(&mut self, now: u64) -> usize {
        let before = self.packets.len();
        self.packets
            .retain(|p| now.saturating_sub(p.queued_at) < ZT_TRANSMIT_QUEUE_TIMEOUT);
        before - self.packets.len()
    }
}

/// How to contact a peer at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContactKind {
    /// A full HELLO (unknown path, static hint, or a peer of unknown version).
    Hello,
    /// An empty ECHO (pushed paths, for peers of protocol 5 or later).
    Echo,
    /// A hole punch after RENDEZVOUS: a 4-byte junk datagram with IP TTL 2, then an ECHO
    /// (a HELLO for peers below protocol 5).
    Rendezvous,
}

/// A deferred contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Contact {
    pub(crate) peer: Address,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) kind: ContactKind,
}

/// Why a contact was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContactRefused {
    /// Already queued (deduplicated; not an error worth counting).
    Duplicate,
    /// The same (peer, address) was contacted less than `PATH_CONTACT_INTERVAL` ago.
    Throttled,
    Full,
}

/// Deferred contacts, deduplicated by (peer, remote) and throttled per (peer, remote).
#[derive(Debug)]
pub(crate) struct ContactQueue {
    queue: VecDeque<Contact>,
    /// (peer, remote, when last contacted); bounded like the queue.
    recent: VecDeque<(Address, SocketAddr, u64)>,
    max: usize,
}

impl ContactQueue {
    pub(crate) fn new(max: usize) -> ContactQueue {
        ContactQueue {
            queue: VecDeque::new(),
            recent: VecDeque::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn prune_recent(&mut self, now: u64) {
        self.recent
            .retain(|&(_, _, at)| now.saturating_sub(at) < PATH_CONTACT_INTERVAL && at <= now);
    }

    pub(crate) fn push(&mut self, contact: Contact, now: u64) -> Result<(), ContactRefused> {
        if self
            .queue
            .iter()
            .any(|c| c.peer == contact.peer && c.remote == contact.remote)
        {
            return Err(ContactRefused::Duplicate);
        }
        self.prune_recent(now);
        if self
            .recent
            .iter()
            .any(|&(p, r, _)| p == contact.peer && r == contact.remote)
        {
            return Err(ContactRefused::Throttled);
        }
        if self.queue.len() >= self.max {
            return Err(ContactRefused::Full);
        }
        self.queue.push_back(contact);
        Ok(())
    }

    /// Takes up to `n` contacts and records them as sent at `now`.
    pub(crate) fn drain(&mut self, n: usize, now: u64) -> Vec<Contact> {
        self.prune_recent(now);
        let mut out = Vec::new();
        while out.len() < n {
            let Some(c) = self.queue.pop_front() else {
                break;
            };
            if self.recent.len() >= self.max {
                self.recent.pop_front();
            }
            self.recent.push_back((c.peer, c.remote, now));
            out.push(c);
        }
        out
    }

    /// Records a contact sent outside the queue (keepalives), for the per-path throttle.
    pub(crate) fn note_sent(&mut self, peer: Address, remote: SocketAddr, now: u64) {
        if self.recent.len() >= self.max {
            self.recent.pop_front();
        }
        self.recent.push_back((peer, remote, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u64) -> Address {
        Address::from_u64(n)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn whois_backs_off_then_fails() {
        let mut w = PendingWhois::new(2);
        assert_eq!(w.request(a(1), 0), Ok(true));
        assert_eq!(w.request(a(1), 0), Ok(false));
        assert_eq!(w.request(a(2), 0), Ok(true));
        assert_eq!(w.request(a(3), 0), Err(()));
        assert!(w.remove(&a(2)));
        let mut sends = Vec::new();
        let mut t = 0;
        loop {
            let due = w.due(t);
            if !due.failed.is_empty() {
                assert_eq!(due.failed, vec![a(1)]);
                break;
            }
            if !due.send.is_empty() {
                sends.push(t);
            }
            t = w.next_deadline().unwrap();
        }
        assert_eq!(sends, vec![0, 500, 1_500, 3_500]);
        assert_eq!(t, 7_500);
        assert!(w.next_deadline().is_none());
    }

    #[test]
    fn rx_queue_bounds_and_expires() {
        let mut q = RxQueue::new(2);
        let p = |src, at| QueuedPacket {
            source: a(src),
            local: sa("0.0.0.0:0"),
            remote: sa("10.0.0.1:1"),
            received_at: at,
            data: vec![1, 2, 3],
        };
        q.push(p(1, 0)).unwrap();
        q.push(p(2, 100)).unwrap();
        assert!(q.push(p(3, 0)).is_err());
        assert_eq!(q.take_from(&a(2)).len(), 1);
        assert_eq!(q.expire(ZT_RECEIVE_QUEUE_TIMEOUT).len(), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn tx_queue_bounds_and_expires() {
        let mut q = TxQueue::new(1);
        let s = |at| QueuedSend {
            destination: a(1),
            verb: Verb::UserMessage,
            payload: vec![],
            compress: false,
            reply: None,
            queued_at: at,
        };
        q.push(s(0)).unwrap();
        assert!(q.push(s(0)).is_err());
        assert_eq!(q.expire(ZT_TRANSMIT_QUEUE_TIMEOUT - 1), 0);
        assert_eq!(q.expire(ZT_TRANSMIT_QUEUE_TIMEOUT), 1);
        assert!(q.take_for(&a(1)).is_empty());
    }

    #[test]
    fn contacts_dedup_throttle_and_bound() {
        let mut q = ContactQueue::new(2);
        let c = |p, r: &str| Contact {
            peer: a(p),
            local: sa("0.0.0.0:0"),
            remote: sa(r),
            kind: ContactKind::Hello,
        };
        q.push(c(1, "10.0.0.1:1"), 0).unwrap();
        assert_eq!(
            q.push(c(1, "10.0.0.1:1"), 0),
            Err(ContactRefused::Duplicate)
        );
        q.push(c(2, "10.0.0.2:1"), 0).unwrap();
        assert_eq!(q.push(c(3, "10.0.0.3:1"), 0), Err(ContactRefused::Full));
        assert_eq!(q.drain(1, 10).len(), 1);
        // Just contacted: throttled for a second.
        assert_eq!(
            q.push(c(1, "10.0.0.1:1"), 500),
            Err(ContactRefused::Throttled)
        );
        assert_eq!(q.push(c(1, "10.0.0.1:1"), 1_010), Ok(()));
        assert_eq!(q.drain(8, 1_010).len(), 2);
        assert!(q.is_empty());
    }
}
