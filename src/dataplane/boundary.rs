//! The [`Boundary`] of one joined network: its state (configuration, neighbour table,
//! resolutions in flight, bounded output queues, ICMP limiter, counters, trace hook), its
//! lifecycle (new, reconfigure), the poll/timer half of its API, and the counting and
//! tracing helpers the two directions share. The directions themselves are in `outbound`
//! (TUN to network) and `inbound` (network to TUN).

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;

use super::config::BoundaryConfig;
use super::counters::{BoundaryCounters, Direction, DropReason, TraceEvent, TraceRecord};
use super::icmp::{IcmpError, IcmpLimiter, build_error, error_allowed};
use super::inspect::{IpSummary, PROTOCOL_ICMP, PROTOCOL_ICMPV6, inspect, peek};
use super::neighbour::{NeighbourTable, Resolution};

/// Frames waiting for [`Boundary::poll_to_network`] (requests, released packets,
/// fragments); beyond it frames are dropped and counted.
pub const MAX_QUEUED_FRAMES: usize = 256;
/// Generated packets waiting for [`Boundary::poll_to_tun`].
pub const MAX_QUEUED_TUN_PACKETS: usize = 32;
/// Buffers kept for reuse by the queues (so steady state does not allocate).
const MAX_SPARE_BUFFERS: usize = 16;

/// A trace hook: called for every drop and every counted policy action.
pub type TraceHook = Box<dyn FnMut(&TraceRecord) + Send>;

/// What became of a packet read from the TUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromTun {
    /// `frame` holds a complete Ethernet frame for `Node::handle_frame`.
    ToNetwork,
    /// Held while its next hop is resolved; it comes out of `poll_to_network` later.
    Pending,
    Dropped(DropReason),
}

/// What became of a frame delivered by the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromNetwork {
    /// `frame[range]` is the IP packet to write into the TUN.
    ToTun(core::ops::Range<usize>),
    /// `reply` holds a frame to send back through the node (ARP reply, neighbour
    /// advertisement).
    ToNetwork,
    /// Taken by the boundary itself (an answer to one of our requests).
    Consumed,
    Dropped(DropReason),
}

/// The TUN boundary of one network; see the module documentation of `dataplane`.
pub struct Boundary {
    pub(super) config: BoundaryConfig,
    pub(super) neighbours: NeighbourTable,
    /// At most `MAX_PENDING_DESTINATIONS`, one per next hop.
    pub(super) resolutions: Vec<Resolution>,
    pub(super) to_network: VecDeque<Vec<u8>>,
    pub(super) to_tun: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    icmp: IcmpLimiter,
    pub(super) counters: BoundaryCounters,
    trace: Option<TraceHook>,
}

impl fmt::Debug for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Boundary")
            .field("config", &self.config)
            .field("neighbours", &self.neighbours.len())
            .field("resolutions", &self.resolutions.len())
            .field("to_network", &self.to_network.len())
            .field("to_tun", &self.to_tun.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Boundary {
    pub fn new(config: BoundaryConfig) -> Boundary {
        Boundary {
            config,
            neighbours: NeighbourTable::default(),
            resolutions: Vec::new(),
            to_network: VecDeque::new(),
            to_tun: VecDeque::new(),
            spare: Vec::new(),
            icmp: IcmpLimiter::default(),
            counters: BoundaryCounters::default(),
            trace: None,
        }
    }

    /// Takes a new configuration. Neighbour entries and resolutions for addresses that are
    /// still on-link are kept; the others are forgotten (queued packets counted as
    /// `resolution_failed`). A new network id or MAC forgets everything.
    pub fn reconfigure(&mut self, config: BoundaryConfig) {
        let same_link = config.nwid == self.config.nwid && config.our_mac == self.config.our_mac;
        self.config = config;
        if same_link {
            let config = &self.config;
            self.neighbours.retain(|ip| config.next_hop(ip) == Some(ip));
        } else {
            self.neighbours.clear();
        }
        let mut i = 0;
        while let Some(resolution) = self.resolutions.get(i) {
            if same_link && self.config.next_hop(resolution.ip) == Some(resolution.ip) {
                i += 1;
                continue;
            }
            let resolution = self.resolutions.swap_remove(i);
            for packet in resolution.packets {
                self.drop_packet(Direction::ToNetwork, DropReason::ResolutionFailed, &packet);
                self.recycle(packet);
            }
        }
    }

    pub fn config(&self) -> &BoundaryConfig {
        &self.config
    }

    pub fn counters(&self) -> &BoundaryCounters {
        &self.counters
    }

    /// Installs (or removes) the hook called for every drop and counted policy action.
    pub fn set_trace(&mut self, hook: Option<TraceHook>) {
        self.trace = hook;
    }

    /// Live and expired-but-not-swept neighbour entries (bounded by `NEIGHBOUR_CAPACITY`).
    pub fn neighbour_count(&self) -> usize {
        self.neighbours.len()
    }

    /// The addresses learned (ARP / neighbour discovery) for the member with `mac`.
    pub fn neighbour_ips(&self, mac: crate::wire::mac::Mac) -> Vec<IpAddr> {
        self.neighbours.ips_of(mac)
    }

    /// Next hops being resolved, and the packets they hold.
    pub fn pending_resolutions(&self) -> (usize, usize) {
        let packets = self.resolutions.iter().map(|r| r.packets.len()).sum();
        (self.resolutions.len(), packets)
    }

    /// The next frame for `Node::handle_frame` that became ready outside `from_tun` (a
    /// request to send, a released packet, a fragment). The frame is swapped into `frame`;
    /// its previous buffer is kept for reuse. False when nothing is queued.
    pub fn poll_to_network(&mut self, frame: &mut Vec<u8>) -> bool {
        Self::swap_out(&mut self.to_network, &mut self.spare, frame)
    }

    /// The next packet the boundary itself wants written into the TUN (ICMP errors).
    pub fn poll_to_tun(&mut self, packet: &mut Vec<u8>) -> bool {
        Self::swap_out(&mut self.to_tun, &mut self.spare, packet)
    }

    fn swap_out(
        queue: &mut VecDeque<Vec<u8>>,
        spare: &mut Vec<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(mut next) = queue.pop_front() else {
            return false;
        };
        std::mem::swap(out, &mut next);
        if spare.len() < MAX_SPARE_BUFFERS {
            next.clear();
            spare.push(next);
        }
        true
    }

    /// Retries and fails resolutions, expires neighbour entries.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.counters.neighbour_expired += self.neighbours.expire(now_ms) as u64;
        let mut i = 0;
        while let Some(resolution) = self.resolutions.get_mut(i) {
            if resolution.deadline > now_ms {
                i += 1;
                continue;
            }
            if resolution.exhausted() {
                let failed = self.resolutions.swap_remove(i);
                self.fail_resolution(now_ms, failed);
                continue;
            }
            resolution.retried(now_ms);
            let ip = resolution.ip;
            self.send_request(ip);
            i += 1;
        }
    }

    /// When `handle_timeout` next has work, if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        let retry = self.resolutions.iter().map(|r| r.deadline).min();
        match (retry, self.neighbours.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops a resolution's packets (counted) and answers each with an unreachable error.
    fn fail_resolution(&mut self, now: u64, resolution: Resolution) {
        for packet in resolution.packets {
            self.drop_packet(Direction::ToNetwork, DropReason::ResolutionFailed, &packet);
            if let Ok(summary) = inspect(&packet, &self.config.policy) {
                self.send_icmp_error(now, IcmpError::Unreachable, &packet, &summary);
            }
            self.recycle(packet);
        }
    }

    /// Queues an ICMP error about `packet` for the TUN, unless the rules or the rate limit
    /// forbid it (counted either way).
    pub(super) fn send_icmp_error(
        &mut self,
        now: u64,
        error: IcmpError,
        packet: &[u8],
        summary: &IpSummary,
    ) {
        if !error_allowed(packet, summary) {
            self.counters.icmp_not_allowed += 1;
            return;
        }
        if !self.icmp.allow(now) {
            self.counters.icmp_rate_limited += 1;
            return;
        }
        if self.to_tun.len() >= MAX_QUEUED_TUN_PACKETS {
            self.drop_packet(Direction::ToTun, DropReason::QueueFull, packet);
            return;
        }
        let mut buffer = self.take_buffer();
        build_error(error, packet, summary, &mut buffer);
        match error {
            IcmpError::TooBig { .. } => self.counters.too_big_icmp_sent += 1,
            IcmpError::Unreachable => self.counters.unreachable_icmp_sent += 1,
        }
        let protocol = if summary.src.is_ipv4() {
            PROTOCOL_ICMP
        } else {
            PROTOCOL_ICMPV6
        };
        self.report(TraceRecord {
            direction: Direction::ToTun,
            event: TraceEvent::IcmpGenerated,
            protocol: Some(protocol),
            src: Some(summary.dst),
            dst: Some(summary.src),
            len: buffer.len(),
        });
        self.to_tun.push_back(buffer);
    }

    /// Queues a frame for `poll_to_network`; counted and dropped when the queue is full.
    pub(super) fn queue_frame(&mut self, frame: Vec<u8>) {
        if self.to_network.len() >= MAX_QUEUED_FRAMES {
            let payload = frame.get(14..).unwrap_or_default();
            self.drop_packet(Direction::ToNetwork, DropReason::QueueFull, payload);
            self.recycle(frame);
            return;
        }
        self.to_network.push_back(frame);
    }

    /// An empty buffer, reused when one is spare.
    pub(super) fn take_buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    pub(super) fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < MAX_SPARE_BUFFERS {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// Counts the drop of `ip_packet` and traces it; returns `reason` for the caller.
    pub(super) fn drop_packet(
        &mut self,
        direction: Direction,
        reason: DropReason,
        ip_packet: &[u8],
    ) -> DropReason {
        *self.counters.drop_counter(direction, reason) += 1;
        if self.trace.is_some() {
            let (protocol, src, dst) = peek(ip_packet);
            self.report(TraceRecord {
                direction,
                event: TraceEvent::Dropped(reason),
                protocol,
                src,
                dst,
                len: ip_packet.len(),
            });
        }
        reason
    }

    /// Counts the drop of a non-IP message (ARP) between two addresses and traces it.
    pub(super) fn drop_between(
        &mut self,
        reason: DropReason,
        src: IpAddr,
        dst: IpAddr,
        len: usize,
    ) -> DropReason {
        *self.counters.drop_counter(Direction::ToTun, reason) += 1;
        self.report(TraceRecord {
            direction: Direction::ToTun,
            event: TraceEvent::Dropped(reason),
            protocol: None,
            src: Some(src),
            dst: Some(dst),
            len,
        });
        reason
    }

    /// Counts and traces the policy passes of a packet that goes on (fragments, IPv6
    /// extension headers).
    pub(super) fn note_passes(&mut self, direction: Direction, summary: &IpSummary) {
        let to_tun = direction == Direction::ToTun;
        if summary.fragment {
            if to_tun {
                self.counters.to_tun_fragments_passed += 1;
            } else {
                self.counters.to_network_fragments_passed += 1;
            }
            self.report_summary(direction, TraceEvent::FragmentPassed, summary);
        }
        if summary.extension_headers {
            if to_tun {
                self.counters.to_tun_ext_headers_passed += 1;
            } else {
                self.counters.to_network_ext_headers_passed += 1;
            }
            self.report_summary(direction, TraceEvent::ExtensionHeadersPassed, summary);
        }
    }

    pub(super) fn report_summary(
        &mut self,
        direction: Direction,
        event: TraceEvent,
        summary: &IpSummary,
    ) {
        self.report(TraceRecord {
            direction,
            event,
            protocol: Some(summary.protocol),
            src: Some(summary.src),
            dst: Some(summary.dst),
            len: summary.len,
        });
    }

    fn report(&mut self, record: TraceRecord) {
        if let Some(hook) = self.trace.as_mut() {
            hook(&record);
        }
    }
}
