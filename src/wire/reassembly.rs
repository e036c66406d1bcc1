//! Bounded reassembly of fragmented packets (protocol 2.3), keyed by the 64-bit packet id.
//!
//! Heads and fragments may arrive in any order. Memory is fixed by [`ReassemblerConfig`]
//! whatever the input: at most `max_in_flight` partial packets, each buffered in storage
//! reserved once at `max_packet_len` bytes and reused, plus one output buffer of the same
//! size. Every datagram that is dropped or drops a partial packet is counted in
//! [`ReassemblyCounters`]. There is no clock inside: callers pass `now` in milliseconds.
//!
//! Output: a completed packet is returned as `&mut [u8]` borrowed from the reassembler's
//! output buffer (so the caller can dearmor it in place without a copy). It stays valid until
//! the next call; a caller that must keep it (e.g. waiting for a WHOIS) copies it.

use super::Address;
use super::fragment::{Fragment, MAX_FRAGMENTS};
use super::packet::{HEADER_LEN, MAX_PACKET_LEN, Packet};

/// Upper limit for [`ReassemblerConfig::max_in_flight`]: lookups are linear scans, which are
/// the fastest choice at the default of 32 but should not grow unbounded.
pub const MAX_IN_FLIGHT_LIMIT: usize = 1024;
/// Default number of partial packets kept (`ZT_RX_QUEUE_SIZE`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// Default age after which a partial packet is dropped (`ZT_FRAGMENTED_PACKET_RECEIVE_TIMEOUT`).
pub const DEFAULT_TIMEOUT_MS: u64 = 500;

/// Limits of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblerConfig {
    /// Partial packets kept at once (clamped to `1..=MAX_IN_FLIGHT_LIMIT`); when full, the
    /// oldest is evicted.
    pub max_in_flight: usize,
    /// A partial packet older than this (ms since its first piece) is dropped.
    pub timeout_ms: u64,
    /// Largest assembled packet (clamped to `HEADER_LEN..=MAX_PACKET_LEN`).
    pub max_packet_len: usize,
}

impl Default for ReassemblerConfig {
    fn default() -> Self {
        ReassemblerConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_packet_len: MAX_PACKET_LEN,
        }
    }
}

/// What the reassembler did with its input; every drop has a counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Heads of fragmented packets stored.
    pub heads: u64,
    /// Fragments stored.
    pub fragments: u64,
    /// Packets completed and returned.
    pub assembled: u64,
    /// Heads without the fragmented flag, returned as they are.
    pub unfragmented: u64,
    /// Datagrams dropped because they are not a valid head or fragment.
    pub malformed: u64,
    /// Pieces dropped because the same piece of that packet was already stored.
    pub duplicate: u64,
    /// Partial packets dropped because a piece disagreed with earlier ones (total count or
    /// destination).
    pub inconsistent: u64,
    /// Partial packets dropped because they would exceed `max_packet_len`.
    pub too_large: u64,
    /// Partial packets dropped because they were older than `timeout_ms`.
    pub timed_out: u64,
    /// Partial packets evicted to make room for a new packet id.
    pub evicted_incomplete: u64,
}

/// Where one stored piece lives in its slot's storage.
#[derive(Clone, Copy, Debug, Default)]
struct Piece {
    start: usize,
    len: usize,
}

/// One partial packet.
#[derive(Debug)]
struct Slot {
    active: bool,
    packet_id: u64,
    destination: Address,
    started: u64,
    /// Total pieces, head included; 0 until a fragment says.
    total: u8,
    /// Bit `i` set when piece `i` (0 = head) is stored.
    present: u8,
    pieces: [Piece; MAX_FRAGMENTS as usize],
    /// Reserved once at `max_packet_len` and never grown past it.
    storage: Vec<u8>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            active: false,
            packet_id: 0,
            destination: Address::default(),
            started: 0,
            total: 0,
            present: 0,
            pieces: [Piece::default(); MAX_FRAGMENTS as usize],
            storage: Vec::new(),
        }
    }

    fn start(&mut self, packet_id: u64, destination: Address, now: u64, cap: usize) {
        self.active = true;
        self.packet_id = packet_id;
        self.destination = destination;
        self.started = now;
        self.total = 0;
        self.present = 0;
        self.storage.clear();
        if self.storage.capacity() < cap {
            self.storage.reserve_exact(cap);
        }
    }

    fn release(&mut self) {
        self.active = false;
        self.storage.clear();
    }

    fn expired(&self, now: u64, timeout_ms: u64) -> bool {
        now.saturating_sub(self.started) > timeout_ms
    }

    fn complete(&self) -> bool {
        self.total != 0 && u32::from(self.present) == (1u32 << self.total) - 1
    }
}

/// Why storing a piece failed.
enum Rejected {
    Duplicate,
    Inconsistent,
    TooLarge,
}

/// The bounded reassembler; see the module documentation.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblerConfig,
    slots: Vec<Slot>,
    output: Vec<u8>,
    counters: ReassemblyCounters,
}

impl Reassembler {
    pub fn new(config: ReassemblerConfig) -> Reassembler {
        let config = ReassemblerConfig {
            max_in_flight: config.max_in_flight.clamp(1, MAX_IN_FLIGHT_LIMIT),
            timeout_ms: config.timeout_ms,
            max_packet_len: config.max_packet_len.clamp(HEADER_LEN, MAX_PACKET_LEN),
        };
        Reassembler {
            config,
            slots: Vec::with_capacity(config.max_in_flight),
            output: Vec::with_capacity(config.max_packet_len),
            counters: ReassemblyCounters::default(),
        }
    }

    /// The effective (clamped) configuration.
    pub fn config(&self) -> ReassemblerConfig {
        self.config
    }

    pub fn counters(&self) -> ReassemblyCounters {
        self.counters
    }

    /// Partial packets currently held.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.active).count()
    }

    /// Bytes of buffer capacity held; never more than
    /// `(max_in_flight + 1) * max_packet_len`.
    pub fn buffered_capacity(&self) -> usize {
        self.output.capacity()
            + self
                .slots
                .iter()
                .map(|s| s.storage.capacity())
                .sum::<usize>()
    }

    /// Drops partial packets older than the timeout; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let timeout = self.config.timeout_ms;
        let mut dropped = 0;
        for slot in self.slots.iter_mut().filter(|s| s.active) {
            if slot.expired(now, timeout) {
                slot.release();
                dropped += 1;
            }
        }
        self.counters.timed_out += dropped as u64;
        dropped
    }

    /// Accepts a datagram classified as a packet (head). A head without the fragmented flag
    /// is a whole packet and is returned at once (copied into the output buffer, so every
    /// packet comes out the same way); a fragmented head is stored and the assembled packet
    /// is returned if it was the last missing piece.
    pub fn accept_head(&mut self, now: u64, datagram: &[u8]) -> Option<&mut [u8]> {
        let Ok(head) = Packet::new_checked(datagram) else {
            self.counters.malformed += 1;
            return None;
        };
        if !head.fragmented() {
            if datagram.len() > self.config.max_packet_len {
                self.counters.too_large += 1;
                return None;
            }
            self.counters.unfragmented += 1;
            self.output.clear();
            self.output.extend_from_slice(datagram);
            return Some(&mut self.output[..]);
        }
        let index = self.slot_for(now, head.packet_id_u64(), head.destination());
        let stored = self.store(index, 0, None, head.destination(), datagram);
        if stored {
            self.counters.heads += 1;
        }
        self.finish_if_complete(index)
    }

    /// Accepts a datagram classified as a fragment; returns the assembled packet if it was
    /// the last missing piece.
    pub fn accept_fragment(&mut self, now: u64, datagram: &[u8]) -> Option<&mut [u8]> {
        let Ok(fragment) = Fragment::new_checked(datagram) else {
            self.counters.malformed += 1;
            return None;
        };
        let index = self.slot_for(now, fragment.packet_id_u64(), fragment.destination());
        let stored = self.store(
            index,
            fragment.number(),
            Some(fragment.total()),
            fragment.destination(),
            fragment.payload(),
        );
        if stored {
            self.counters.fragments += 1;
        }
        self.finish_if_complete(index)
    }

    /// The slot holding `packet_id`, or a fresh one (reusing a free slot, then a timed-out
    /// one, then evicting the oldest).
    fn slot_for(&mut self, now: u64, packet_id: u64, destination: Address) -> usize {
        let timeout = self.config.timeout_ms;
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.active && s.packet_id == packet_id)
        {
            if !self.slots[i].expired(now, timeout) {
                return i;
            }
            self.counters.timed_out += 1;
            self.slots[i].release();
        }
        let index = if let Some(i) = self.slots.iter().position(|s| !s.active) {
            i
        } else if self.slots.len() < self.config.max_in_flight {
            self.slots.push(Slot::new());
            self.slots.len() - 1
        } else if self.expire(now) > 0 {
            self.slots.iter().position(|s| !s.active).unwrap_or(0)
        } else {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.started)
                .map_or(0, |(i, _)| i);
            self.counters.evicted_incomplete += 1;
            oldest
        };
        self.slots[index].start(packet_id, destination, now, self.config.max_packet_len);
        index
    }

    /// Stores piece `number` in slot `index`; on an inconsistency or overflow the whole
    /// partial packet is dropped. Returns whether the piece was stored.
    fn store(
        &mut self,
        index: usize,
        number: u8,
        total: Option<u8>,
        destination: Address,
        piece: &[u8],
    ) -> bool {
        let cap = self.config.max_packet_len;
        let slot = &mut self.slots[index];
        let result = (|| {
            if slot.destination != destination {
                return Err(Rejected::Inconsistent);
            }
            if let Some(total) = total {
                if slot.total != 0 && slot.total != total {
                    return Err(Rejected::Inconsistent);
                }
                slot.total = total;
            }
            if slot.present & (1 << number) != 0 {
                return Err(Rejected::Duplicate);
            }
            let start = slot.storage.len();
            if start + piece.len() > cap {
                return Err(Rejected::TooLarge);
            }
            slot.storage.extend_from_slice(piece);
            slot.pieces[usize::from(number)] = Piece {
                start,
                len: piece.len(),
            };
            slot.present |= 1 << number;
            Ok(())
        })();
        match result {
            Ok(()) => true,
            // A duplicate is dropped on its own; the packet may still complete.
            Err(Rejected::Duplicate) => {
                self.counters.duplicate += 1;
                false
            }
            Err(Rejected::Inconsistent) => {
                self.counters.inconsistent += 1;
                slot.release();
                false
            }
            Err(Rejected::TooLarge) => {
                self.counters.too_large += 1;
                slot.release();
                false
            }
        }
    }

    fn finish_if_complete(&mut self, index: usize) -> Option<&mut [u8]> {
        let slot = &mut self.slots[index];
        if !slot.active || !slot.complete() {
            return None;
        }
        self.output.clear();
        for piece in &slot.pieces[..usize::from(slot.total)] {
            let bytes = slot.storage.get(piece.start..piece.start + piece.len)?;
            self.output.extend_from_slice(bytes);
        }
        slot.release();
        self.counters.assembled += 1;
        Some(&mut self.output[..])
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(ReassemblerConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fragment::split;
    use crate::wire::packet::{FLAG_FRAGMENTED, IDX_FLAGS};
    use proptest::prelude::*;

    /// An (unarmored, but shaped like armored) fragmented packet split at `mtu`.
    fn datagrams(id: u64, len: usize, mtu: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut p: Vec<u8> = (0..len).map(|i| (i as u64 * 31 + id) as u8).collect();
        p[..8].copy_from_slice(&id.to_be_bytes());
        p[8..13].copy_from_slice(&[1, 2, 3, 4, 5]);
        p[13] = 0x11;
        p[IDX_FLAGS] = FLAG_FRAGMENTED | 0x18;
        let s = split(&p, mtu).unwrap();
        let mut out = vec![s.head.to_vec()];
        for piece in s.fragments {
            let mut d = Vec::new();
            piece.emit(&mut d);
            out.push(d);
        }
        (p, out)
    }

    fn feed(r: &mut Reassembler, now: u64, d: &[u8], is_head: bool) -> Option<Vec<u8>> {
        let out = if is_head {
            r.accept_head(now, d)
        } else {
            r.accept_fragment(now, d)
        };
        out.map(|b| b.to_vec())
    }

    #[test]
    fn any_order_assembles() {
        let (p, d) = datagrams(7, 5000, 1432);
        assert_eq!(d.len(), 4);
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
            let mut r = Reassembler::default();
            let mut got = None;
            for (k, &i) in order.iter().enumerate() {
                let out = feed(&mut r, 10, &d[i], i == 0);
                assert_eq!(out.is_some(), k == 3);
                got = got.or(out);
            }
            assert_eq!(got.as_deref(), Some(&p[..]));
            assert_eq!(r.in_flight(), 0);
            assert_eq!(r.counters().assembled, 1);
        }
    }

    #[test]
    fn unfragmented_head_passes_through() {
        let mut r = Reassembler::default();
        let mut p = [0x42u8; 60];
        p[IDX_FLAGS] = 0x18;
        assert_eq!(r.accept_head(0, &p).map(|b| b.to_vec()), Some(p.to_vec()));
        assert_eq!(r.counters().unfragmented, 1);
        assert_eq!(r.accept_head(0, &p[..20]), None);
        assert_eq!(r.accept_fragment(0, &p), None);
        assert_eq!(r.counters().malformed, 2);
    }

    #[test]
    fn duplicates_are_counted_and_harmless() {
        let (p, d) = datagrams(9, 3000, 1432);
        let mut r = Reassembler::default();
        assert!(feed(&mut r, 0, &d[1], false).is_none());
        assert!(feed(&mut r, 0, &d[1], false).is_none());
        assert!(feed(&mut r, 0, &d[0], true).is_none());
        assert!(feed(&mut r, 0, &d[0], true).is_none());
        assert_eq!(r.counters().duplicate, 2);
        assert_eq!(feed(&mut r, 0, &d[2], false), Some(p));
    }

    #[test]
    fn inconsistent_totals_drop_the_packet() {
        let (_, d) = datagrams(3, 3000, 1432);
        let mut r = Reassembler::default();
        assert!(feed(&mut r, 0, &d[1], false).is_none());
        let mut liar = d[2].clone();
        liar[14] = 0x42; // total 4, number 2
        assert!(feed(&mut r, 0, &liar, false).is_none());
        assert_eq!(r.counters().inconsistent, 1);
        assert_eq!(r.in_flight(), 0);
        // The honest rest no longer completes anything on its own.
        assert!(feed(&mut r, 0, &d[0], true).is_none());
        assert!(feed(&mut r, 0, &d[2], false).is_none());
        assert_eq!(r.in_flight(), 1);
        let mut wrong_dest = d[1].clone();
        wrong_dest[8] ^= 1;
        assert!(feed(&mut r, 0, &wrong_dest, false).is_none());
        assert_eq!(r.counters().inconsistent, 2);
    }

    #[test]
    fn timeouts() {
        let (p, d) = datagrams(5, 3000, 1432);
        let mut r = Reassembler::default();
        assert!(feed(&mut r, 1000, &d[0], true).is_none());
        assert!(feed(&mut r, 1000, &d[1], false).is_none());
        assert_eq!(r.expire(1000 + DEFAULT_TIMEOUT_MS), 0);
        // The last piece arrives too late: the old pieces are gone, a new reassembly starts.
        assert!(feed(&mut r, 1001 + DEFAULT_TIMEOUT_MS, &d[2], false).is_none());
        assert_eq!(r.counters().timed_out, 1);
        assert_eq!(r.expire(5000), 1);
        assert_eq!(r.counters().timed_out, 2);
        assert_eq!(r.in_flight(), 0);
        for (i, x) in d.iter().enumerate() {
            let out = feed(&mut r, 6000, x, i == 0);
            assert_eq!(out.is_some(), i == 2);
            if let Some(out) = out {
                assert_eq!(out, p);
            }
        }
    }

    #[test]
    fn flood_of_distinct_ids_stays_bounded() {
        let mut r = Reassembler::default();
        let bound = (DEFAULT_MAX_IN_FLIGHT + 1) * MAX_PACKET_LEN;
        for id in 0..10_000u64 {
            let (_, d) = datagrams(id, 3000, 1432);
            assert!(feed(&mut r, id / 100, &d[1], false).is_none());
            assert!(r.in_flight() <= DEFAULT_MAX_IN_FLIGHT);
            assert!(r.buffered_capacity() <= bound);
        }
        let c = r.counters();
        assert_eq!(c.fragments, 10_000);
        assert_eq!(c.evicted_incomplete + c.timed_out, 10_000 - 32);
        assert!(c.evicted_incomplete > 9000);
        // The newest ids are still there and can complete.
        let (p, d) = datagrams(9_999, 3000, 1432);
        assert!(feed(&mut r, 99, &d[0], true).is_none());
        assert_eq!(feed(&mut r, 99, &d[2], false), Some(p));
    }

    #[test]
    fn oversized_packets_are_dropped() {
        let mut r = Reassembler::new(ReassemblerConfig {
            max_packet_len: 2000,
            ..ReassemblerConfig::default()
        });
        let (_, d) = datagrams(1, 3000, 1432);
        assert!(feed(&mut r, 0, &d[0], true).is_none());
        assert!(feed(&mut r, 0, &d[1], false).is_none());
        assert_eq!(r.counters().too_large, 1);
        assert_eq!(r.in_flight(), 0);
        assert!(r.buffered_capacity() <= 2 * 2000);
        assert_eq!(r.config().max_packet_len, 2000);
        let mut whole = vec![0u8; 2001];
        whole[IDX_FLAGS] = 0x18;
        assert!(r.accept_head(0, &whole).is_none());
        assert_eq!(r.counters().too_large, 2);
        assert!(r.accept_head(0, &whole[..2000]).is_some());
        assert!(r.buffered_capacity() <= 2 * 2000);
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic_and_stay_bounded(
            input in proptest::collection::vec(
                (any::<bool>(), 0u64..2000, proptest::collection::vec(any::<u8>(), 0..200)),
                0..64,
            ),
        ) {
            let mut r = Reassembler::new(ReassemblerConfig {
                max_in_flight: 4,
                ..ReassemblerConfig::default()
            });
            for (is_head, now, mut d) in input {
                if !is_head && d.len() > 15 {
                    d[13] = 0xff;
                    d[14] = (d[14] % 0x80).max(0x21);
                    let key = d[0] % 4;
                    d[0..8].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, key]);
                }
                let out = if is_head { r.accept_head(now, &d) } else { r.accept_fragment(now, &d) };
                if let Some(out) = out {
                    prop_assert!(out.len() <= MAX_PACKET_LEN);
                }
                prop_assert!(r.in_flight() <= 4);
                prop_assert!(r.buffered_capacity() <= 5 * MAX_PACKET_LEN);
            }
        }

        #[test]
        fn split_then_reassemble_in_any_order(
            len in 1433usize..=MAX_PACKET_LEN,
            seed: u64,
        ) {
            let (p, mut d) = datagrams(seed, len.min(1432 + 6 * 1416), 1432);
            // Deterministic shuffle from the seed.
            let n = d.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) >> 33)
                    as usize % (i + 1);
                d.swap(i, j);
            }
            let mut r = Reassembler::default();
            let mut got = None;
            for x in &d {
                let is_head = x[13] != 0xff;
                if let Some(out) = feed(&mut r, 0, x, is_head) {
                    got = Some(out);
                }
            }
            prop_assert_eq!(got, Some(p));
        }
    }
}
