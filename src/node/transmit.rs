//! Outgoing datagrams waiting for `poll_transmit`, and the bounded pool of buffers they are
//! built in. `poll_transmit` swaps a queued buffer into the caller's `Vec` and takes the
//! caller's old buffer back into the pool, so steady-state sending allocates nothing.
//!
//! Control packets (HELLO, OK, WHOIS, ERROR, RENDEZVOUS, ECHO) may use the whole queue; bulk
//! packets (relayed traffic, user data, later frames) only `bulk_share` of it, so bulk data
//! can never crowd out the control plane (H2.10).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::wire::packet::MAX_PACKET_LEN;

/// Where to send a datagram; its payload is swapped into the caller's buffer by
/// `Node::poll_transmit`.
///
/// `local` is the socket the datagram should leave from. An unspecified address (`0.0.0.0:0`
/// or `[::]:0`) means "any socket of the remote's family" (a first contact, before any path
/// exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The IP TTL / hop limit to send with, if not the socket's default. Only the 4-byte junk
    /// datagram sent before a RENDEZVOUS contact uses it (TTL 2: it opens the local NAT's and
    /// firewall's state without reaching the peer, protocol 5.x RENDEZVOUS).
    pub ttl: Option<u8>,
}

/// The priority class of an outgoing datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Control,
    Bulk,
}

/// Buffers larger than this are not kept in the pool (they came from a caller).
const MAX_POOLED_CAPACITY: usize = 2 * MAX_PACKET_LEN;

#[derive(Debug)]
pub(crate) struct TransmitQueue {
    queue: VecDeque<(Transmit, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
    max: usize,
    bulk_max: usize,
    pool_max: usize,
}

/// Why a datagram was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueRefused {
    Full,
    BulkLimit,
}

impl TransmitQueue {
    pub(crate) fn new(max: usize, pool_max: usize) -> TransmitQueue {
        let max = max.max(2);
        TransmitQueue {
            queue: VecDeque::new(),
            pool: Vec::new(),
            max,
            // Bulk may use three quarters of the queue; the rest is kept for control.
            bulk_max: (max * 3 / 4).max(1),
            pool_max,
        }
    }

    /// An empty buffer from the pool (or a new one).
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        self.pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(crate::wire::packet::DEFAULT_PHYSICAL_MTU))
    }

    /// Gives a buffer back to the pool (cleared; dropped if the pool is full or it is huge).
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < self.pool_max && buf.capacity() <= MAX_POOLED_CAPACITY {
            buf.clear();
            self.pool.push(buf);
        }
    }

    /// Whether a datagram of `class` would be accepted now.
    pub(crate) fn has_room(&self, class: Class, count: usize) -> Result<(), QueueRefused> {
        let len = self.queue.len() + count;
        match class {
            Class::Bulk if len > self.bulk_max => Err(QueueRefused::BulkLimit),
            _ if len > self.max => Err(QueueRefused::Full),
            _ => Ok(()),
        }
    }

    /// Queues a datagram; on refusal its buffer goes back to the pool.
    pub(crate) fn push(
        &mut self,
        transmit: Transmit,
        buf: Vec<u8>,
        class: Class,
    ) -> Result<(), QueueRefused> {
        if let Err(e) = self.has_room(class, 1) {
            self.recycle(buf);
            return Err(e);
        }
        self.queue.push_back((transmit, buf));
        Ok(())
    }

    /// Swaps the next datagram into `buf` (the caller's old buffer is recycled).
    pub(crate) fn pop(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (transmit, mut data) = self.queue.pop_front()?;
        std::mem::swap(buf, &mut data);
        self.recycle(data);
        Some(transmit)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Transmit {
        Transmit {
            local: "0.0.0.0:0".parse().unwrap(),
            remote: "10.0.0.1:9993".parse().unwrap(),
            ttl: None,
        }
    }

    #[test]
    fn swap_recycles_and_bounds() {
        let mut q = TransmitQueue::new(4, 2);
        for i in 0..3u8 {
            let mut b = q.buffer();
            b.push(i);
            q.push(t(), b, Class::Bulk).unwrap();
        }
        let mut b = q.buffer();
        b.push(9);
        // Bulk may use 3 of 4 slots; control gets the last one.
        assert_eq!(
            q.push(t(), b.clone(), Class::Bulk),
            Err(QueueRefused::BulkLimit)
        );
        q.push(t(), b.clone(), Class::Control).unwrap();
        assert_eq!(q.push(t(), b, Class::Control), Err(QueueRefused::Full));
        let mut out = vec![0xaa; 3];
        assert_eq!(q.pop(&mut out), Some(t()));
        assert_eq!(out, vec![0]);
        // The caller's old buffer went to the pool, cleared.
        let reused = q.buffer();
        assert!(reused.is_empty());
        assert_eq!(q.len(), 3);
    }
}
