//! The network side of [`Sim`]: what happens to a datagram between a host's `poll_transmit`
//! and the receiver's `handle_datagram` (filters, partitions, the link model, the in-flight
//! queue, delivery) and the payload buffer pool.

use std::cmp::Ordering;
use std::net::SocketAddr;

use super::{
    BUFFER_CAPACITY, BUFFER_POOL_LIMIT, Datagram, DropReason, Host, HostId, LinkConfig, Sim,
    TraceEntry, TraceKind, Verdict, digest,
};

/// A datagram scheduled for delivery; ordered by `(at, seq)`, earliest first.
pub(super) struct InFlight {
    pub(super) at: u64,
    pub(super) seq: u64,
    pub(super) datagram: Datagram,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// Reversed, so the max-heap `BinaryHeap` pops the earliest `(at, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<H: Host> Sim<H> {
    pub(super) fn take_buffer(&mut self) -> Vec<u8> {
        self.buffers
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER_CAPACITY))
    }

    pub(super) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.buffers.len() < BUFFER_POOL_LIMIT {
            buf.clear();
            self.buffers.push(buf);
        }
    }

    pub(super) fn record(&mut self, kind: TraceKind, datagram: &Datagram) {
        if let Some(trace) = &mut self.trace {
            trace.push(TraceEntry {
                at: self.now,
                kind,
                from: datagram.from,
                to: datagram.to,
                len: datagram.data.len(),
                digest: digest(&datagram.data),
            });
        }
    }

    pub(super) fn drop_datagram(&mut self, reason: DropReason, datagram: Datagram) {
        self.stats.dropped.bump(reason);
        self.record(TraceKind::Dropped(reason), &datagram);
        self.recycle(datagram.data);
    }

    /// The source address a datagram from host `id` to `remote` carries: `local` if the host
    /// owns it; for an unspecified IP ("any socket"), the host's address of the remote's
    /// family, preferring the same port.
    pub(super) fn resolve_source(
        &self,
        id: HostId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketAddr> {
        if self.owners.get(&local) == Some(&id) {
            return Some(local);
        }
        if !local.ip().is_unspecified() {
            return None;
        }
        let addrs = &self.hosts.get(id.0)?.addrs;
        let same_family = |a: &&SocketAddr| a.is_ipv4() == remote.is_ipv4();
        addrs
            .iter()
            .filter(same_family)
            .find(|a| a.port() == local.port())
            .or_else(|| addrs.iter().find(same_family))
            .copied()
    }

    fn is_cut(&mut self, from: SocketAddr, to: SocketAddr) -> bool {
        if self.partitions.is_empty() {
            return false;
        }
        let now = self.now;
        self.partitions.retain(|p| !p.expired(now));
        let from_host = self.owners.get(&from).copied();
        let to_host = self.owners.get(&to).copied();
        self.partitions
            .iter()
            .any(|p| p.active(now) && p.cut.blocks(from, to, from_host, to_host))
    }

    /// The network side of a send: filters, partitions, link model, queue.
    pub(super) fn transmit(&mut self, mut datagram: Datagram) {
        self.stats.sent += 1;
        self.record(TraceKind::Sent, &datagram);

        let now = self.now;
        let filtered = self
            .filters
            .iter_mut()
            .any(|(_, filter)| filter(now, &mut datagram) == Verdict::Drop);
        if filtered {
            return self.drop_datagram(DropReason::Filter, datagram);
        }
        if self.is_cut(datagram.from, datagram.to) {
            return self.drop_datagram(DropReason::Partition, datagram);
        }
        let link = self.link(datagram.from, datagram.to);
        if self.rng.chance(link.loss) {
            return self.drop_datagram(DropReason::Loss, datagram);
        }
        let departs = match link.rate_limit {
            None => now,
            Some(rate) => {
                let busy = self
                    .busy_until_us
                    .entry((datagram.from, datagram.to))
                    .or_insert(0);
                let len = datagram.data.len() as u64;
                match rate.reserve(busy, now.saturating_mul(1000), len) {
                    Some(done_us) => done_us.div_ceil(1000),
                    None => return self.drop_datagram(DropReason::QueueFull, datagram),
                }
            }
        };
        let at = departs.saturating_add(self.draw_delay(&link));
        let duplicate = self.rng.chance(link.duplicate);
        if duplicate {
            let mut copy = self.take_buffer();
            copy.extend_from_slice(&datagram.data);
            let copy = Datagram {
                from: datagram.from,
                to: datagram.to,
                data: copy,
            };
            let copy_at = departs.saturating_add(self.draw_delay(&link));
            self.stats.duplicated += 1;
            self.record(TraceKind::Duplicated, &copy);
            self.enqueue(at, datagram);
            self.enqueue(copy_at, copy);
        } else {
            self.enqueue(at, datagram);
        }
    }

    /// Base delay + jitter + (with the reorder probability) a hold-back.
    fn draw_delay(&mut self, link: &LinkConfig) -> u64 {
        let mut delay = link.delay_ms;
        if link.jitter_ms > 0 {
            delay = delay.saturating_add(self.rng.between(0, link.jitter_ms));
        }
        if self.rng.chance(link.reorder) {
            self.stats.reordered += 1;
            delay = delay.saturating_add(self.rng.between(1, link.reorder_extra_ms.max(1)));
        }
        delay
    }

    fn enqueue(&mut self, at: u64, datagram: Datagram) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push(InFlight { at, seq, datagram });
    }

    pub(super) fn deliver(&mut self, datagram: Datagram) {
        if self.is_cut(datagram.from, datagram.to) {
            return self.drop_datagram(DropReason::Partition, datagram);
        }
        let Some(id) = self.owners.get(&datagram.to).copied() else {
            return self.drop_datagram(DropReason::NoRoute, datagram);
        };
        self.stats.delivered += 1;
        self.record(TraceKind::Delivered, &datagram);
        let now = self.now;
        if let Some(slot) = self.hosts.get_mut(id.0) {
            slot.host
                .handle_datagram(now, datagram.to, datagram.from, &datagram.data);
        }
        self.recycle(datagram.data);
        self.after_call(id);
    }
}
