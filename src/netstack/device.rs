//! The smoltcp device of one network's stack: two bounded packet queues in memory. The
//! attachment pushes IP packets that passed the dataplane boundary into `rx`; smoltcp's
//! output lands in `tx`, which the attachment hands to the boundary. Buffers are recycled,
//! so steady state does not allocate per packet.
//!
//! Backpressure (H1.7): when `tx` is full, `transmit` offers no token, so smoltcp keeps the
//! data in its socket buffers and tries again on the next poll; nothing is lost. The only
//! drops are a full `rx` (the network delivers faster than the stack polls) and a reply
//! token used while `tx` is full; both are counted.

use std::collections::VecDeque;

use serde::Serialize;
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Packets waiting for the stack to read them.
pub const RX_QUEUE_LIMIT: usize = 512;
/// Packets the stack may emit before the attachment drains them.
pub const TX_QUEUE_LIMIT: usize = 128;
/// Spare buffers kept for reuse.
const SPARE_LIMIT: usize = 64;

/// Drops at the device queues.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCounters {
    pub packets_in: u64,
    pub packets_out: u64,
    /// Inbound packets dropped because the stack had not read the previous ones.
    pub rx_queue_full: u64,
    /// Replies the stack produced while the output queue was full.
    pub tx_queue_full: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct QueueDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    mtu: usize,
    counters: DeviceCounters,
}

impl QueueDevice {
    pub fn new(mtu: usize) -> QueueDevice {
        QueueDevice {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            spare: Vec::new(),
            mtu,
            counters: DeviceCounters::default(),
        }
    }

    pub fn set_mtu(&mut self, mtu: usize) {
        self.mtu = mtu;
    }

    /// Queues an inbound IP packet; false (and counted) when the queue is full.
    pub fn push_rx(&mut self, packet: &[u8]) -> bool {
        if self.rx.len() >= RX_QUEUE_LIMIT {
            self.counters.rx_queue_full += 1;
            return false;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.rx.push_back(buf);
        self.counters.packets_in += 1;
        true
    }

    pub fn rx_len(&self) -> usize {
        self.rx.len()
    }

    pub fn has_tx(&self) -> bool {
        !self.tx.is_empty()
    }

    /// The next packet the stack emitted; hand the buffer back with [`QueueDevice::recycle`].
    pub fn pop_tx(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_LIMIT {
            self.spare.push(buf);
        }
    }

    pub fn counters(&self) -> DeviceCounters {
        self.counters
    }
}

pub struct RxToken {
    buf: Vec<u8>,
}

pub struct TxToken<'a> {
    device: &'a mut QueueDevice,
    /// A token handed out with a received packet may find the queue full (counted drop).
    checked: bool,
}

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.buf)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = self.device.spare.pop().unwrap_or_default();
        buf.clear();
        buf.resize(len, 0);
        let result = f(&mut buf);
        if !self.checked && self.device.tx.len() >= TX_QUEUE_LIMIT {
            self.device.counters.tx_queue_full += 1;
            self.device.recycle(buf);
        } else {
            self.device.tx.push_back(buf);
            self.device.counters.packets_out += 1;
        }
        result
    }
}

impl phy::Device for QueueDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let buf = self.rx.pop_front()?;
        // The packet's buffer goes back to the pool next time round: smoltcp copies what
        // it keeps into socket buffers.
        Some((
            RxToken { buf },
            TxToken {
                device: self,
                checked: false,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        (self.tx.len() < TX_QUEUE_LIMIT).then_some(TxToken {
            device: self,
            checked: true,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        // The dataplane boundary verified every inbound checksum already (H2.1) and drops
        // what fails, counted; smoltcp only computes them on the way out.
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = Checksum::Tx;
        checksum.tcp = Checksum::Tx;
        checksum.udp = Checksum::Tx;
        checksum.icmpv4 = Checksum::Tx;
        checksum.icmpv6 = Checksum::Tx;
        caps.checksum = checksum;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{Device, RxToken as _, TxToken as _};

    #[test]
    fn queues_are_bounded_and_count_drops() {
        let mut device = QueueDevice::new(2800);
        for _ in 0..RX_QUEUE_LIMIT {
            assert!(device.push_rx(&[0x45; 20]));
        }
        assert!(!device.push_rx(&[0x45; 20]));
        assert_eq!(device.counters().rx_queue_full, 1);
        for _ in 0..TX_QUEUE_LIMIT {
            let token = device.transmit(Instant::ZERO).unwrap();
            token.consume(40, |buf| buf.fill(1));
        }
        assert!(device.transmit(Instant::ZERO).is_none());
        // A reply token from `receive` still works, but its packet is dropped and counted.
        let (rx, tx) = device.receive(Instant::ZERO).unwrap();
        assert_eq!(rx.consume(|p| p.len()), 20);
        tx.consume(40, |_| ());
        assert_eq!(device.counters().tx_queue_full, 1);
        assert_eq!(device.pop_tx().map(|p| p.len()), Some(40));
    }
}
