//! Reply matching (protocol 2.2): OK is accepted only if it answers a packet we recently sent
//! to that very peer. A fixed table of buckets (indexed by bits of the upper half of the packet
//! id, as in the reference) each holding a small ring of recent requests; nothing grows.
//!
//! Stricter than the reference in two ways: the whole 64-bit id, the peer and the verb must
//! match, and an entry is consumed by its reply, so a replayed OK is refused.

use crate::wire::{Address, Verb};

/// Slots per bucket (the reference uses 32 per bucket; we size the bucket count instead).
const SLOTS_PER_BUCKET: usize = 8;

/// What the request was, so the reply handler knows what to do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    /// A WHOIS we sent to a root.
    Whois,
    /// A keepalive or contact ECHO (no event).
    KeepaliveEcho,
    /// An ECHO requested through `Node::echo` (reported as `Event::EchoReply`).
    UserEcho,
    /// Anything else that expects an OK (network verbs: the next layer's seam).
    #[allow(dead_code)]
    Other(Verb),
}

impl ReplyKind {
    fn verb(self) -> Verb {
        match self {
            ReplyKind::Whois => Verb::Whois,
            ReplyKind::KeepaliveEcho | ReplyKind::UserEcho => Verb::Echo,
            ReplyKind::Other(v) => v,
        }
    }
}

/// A request we remember.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) packet_id: u64,
    pub(crate) peer: Address,
    pub(crate) kind: ReplyKind,
    pub(crate) sent_at: u64,
}

#[derive(Debug)]
pub(crate) struct ExpectedReplies {
    slots: Vec<Option<Expected>>,
    next: Vec<u8>,
    buckets: usize,
}

impl ExpectedReplies {
    /// A table of about `capacity` entries (rounded up to whole buckets, at least one).
    pub(crate) fn new(capacity: usize) -> ExpectedReplies {
        let buckets = capacity.div_ceil(SLOTS_PER_BUCKET).clamp(1, 1 << 16);
        ExpectedReplies {
            slots: vec![None; buckets * SLOTS_PER_BUCKET],
            next: vec![0; buckets],
            buckets,
        }
    }

    fn bucket(&self, packet_id: u64) -> usize {
        ((packet_id >> 32) as usize) % self.buckets
    }

    /// Remembers a request; the oldest entry of its bucket is overwritten when full.
    pub(crate) fn expect(&mut self, entry: Expected) {
        let b = self.bucket(entry.packet_id);
        let Some(next) = self.next.get_mut(b) else {
            return;
        };
        let slot = b * SLOTS_PER_BUCKET + usize::from(*next);
        *next = ((usize::from(*next) + 1) % SLOTS_PER_BUCKET) as u8;
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(entry);
        }
    }

    /// Consumes and returns the request `packet_id` sent to `peer` with verb `verb`.
    pub(crate) fn take(&mut self, packet_id: u64, peer: Address, verb: Verb) -> Option<Expected> {
        let b = self.bucket(packet_id);
        let start = b * SLOTS_PER_BUCKET;
        let bucket = self.slots.get_mut(start..start + SLOTS_PER_BUCKET)?;
        bucket.iter_mut().find_map(|slot| match *slot {
            Some(e) if e.packet_id == packet_id && e.peer == peer && e.kind.verb() == verb => {
                *slot = None;
                Some(e)
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: u64, peer: u64, kind: ReplyKind) -> Expected {
        Expected {
            packet_id: id,
            peer: Address::from_u64(peer),
            kind,
            sent_at: 5,
        }
    }

    #[test]
    fn reply_must_match_id_peer_and_verb_once() {
        let mut t = ExpectedReplies::new(64);
        t.expect(e(0x1234_5678_9abc_def0, 1, ReplyKind::Whois));
        let a1 = Address::from_u64(1);
        assert!(
            t.take(0x1234_5678_9abc_def0, Address::from_u64(2), Verb::Whois)
                .is_none()
        );
        assert!(t.take(0x1234_5678_9abc_def0, a1, Verb::Echo).is_none());
        assert!(t.take(0x1234_5678_9abc_def1, a1, Verb::Whois).is_none());
        assert_eq!(
            t.take(0x1234_5678_9abc_def0, a1, Verb::Whois)
                .map(|x| x.sent_at),
            Some(5)
        );
        // Consumed: a replayed reply is refused.
        assert!(t.take(0x1234_5678_9abc_def0, a1, Verb::Whois).is_none());
    }

    #[test]
    fn full_bucket_overwrites_oldest() {
        let mut t = ExpectedReplies::new(1);
        for i in 0..(SLOTS_PER_BUCKET as u64 + 1) {
            t.expect(e(i, 1, ReplyKind::KeepaliveEcho));
        }
        let a1 = Address::from_u64(1);
        assert!(t.take(0, a1, Verb::Echo).is_none());
        assert!(t.take(SLOTS_PER_BUCKET as u64, a1, Verb::Echo).is_some());
        assert!(t.take(1, a1, Verb::Echo).is_some());
    }
}
