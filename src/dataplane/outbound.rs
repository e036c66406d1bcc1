//! TUN to network: policy, next hop, destination MAC (broadcast, multicast mapping, the
//! node address embedded in rfc4193/6PLANE addresses, the neighbour table), the MTU (ICMP
//! "too big" or IPv4 fragmentation), and holding packets while their next hop is resolved
//! with ARP requests / neighbour solicitations (retried from `handle_timeout`).

use std::net::{IpAddr, Ipv6Addr};

use super::boundary::{Boundary, FromTun};
use super::counters::{Direction, DropReason, TraceEvent};
use super::fragment::fragment_ipv4;
use super::icmp::IcmpError;
use super::inspect::{IPV4_DONT_FRAGMENT, inspect};
use super::neighbour::{MAX_PENDING_DESTINATIONS, Resolution};
use crate::wire::arp::{ArpOperation, ArpRepr};
use crate::wire::ethernet::{EthernetHeader, ethertype};
use crate::wire::mac::{Mac, MulticastGroup};
use crate::wire::managed_ip;
use crate::wire::ndp::NeighborSolicitation;

/// Where a packet goes next.
enum NextStep {
    Send(Mac),
    Resolve(IpAddr),
    Drop(DropReason),
}

impl Boundary {
    /// An IP packet the kernel wrote into the TUN (heading to the ZeroTier network). On
    /// [`FromTun::ToNetwork`], `frame` holds a complete Ethernet frame for
    /// `Node::handle_frame`; otherwise its content is unspecified.
    pub fn from_tun(&mut self, now_ms: u64, packet: &[u8], frame: &mut Vec<u8>) -> FromTun {
        frame.clear();
        let direction = Direction::ToNetwork;
        let summary = match inspect(packet, &self.config.policy) {
            Ok(summary) => summary,
            Err(reason) => return FromTun::Dropped(self.drop_packet(direction, reason, packet)),
        };
        self.note_passes(direction, &summary);
        let packet = packet.get(..summary.len).unwrap_or(packet);
        let step = self.next_step(now_ms, summary.dst);
        if let NextStep::Drop(reason) = step {
            return FromTun::Dropped(self.drop_packet(direction, reason, packet));
        }
        let mtu = self.config.mtu;
        if packet.len() > mtu && (summary.dont_fragment || !can_fragment(summary.header_len, mtu)) {
            if summary.dont_fragment {
                self.send_icmp_error(now_ms, IcmpError::TooBig { mtu }, packet, &summary);
            }
            return FromTun::Dropped(self.drop_packet(direction, DropReason::TooBig, packet));
        }
        match step {
            NextStep::Send(mac) => match self.emit(mac, packet, Some(frame)) {
                Ok(()) => FromTun::ToNetwork,
                Err(reason) => FromTun::Dropped(reason),
            },
            NextStep::Resolve(hop) => self.hold_for_resolution(now_ms, hop, packet),
            NextStep::Drop(reason) => FromTun::Dropped(reason),
        }
    }

    /// The destination MAC for `dst`, or the next hop to resolve first.
    fn next_step(&mut self, now: u64, dst: IpAddr) -> NextStep {
        match dst {
            IpAddr::V4(v4) if v4.is_broadcast() || self.config.is_subnet_broadcast(v4) => {
                return if self.config.broadcast {
                    NextStep::Send(Mac::BROADCAST)
                } else {
                    NextStep::Drop(DropReason::BroadcastDisabled)
                };
            }
            IpAddr::V4(v4) if v4.is_multicast() => {
                let o = v4.octets();
                return NextStep::Send(Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]));
            }
            IpAddr::V6(v6) if v6.is_multicast() => {
                let o = v6.octets();
                return NextStep::Send(Mac([0x33, 0x33, o[12], o[13], o[14], o[15]]));
            }
            _ => {}
        }
        let Some(hop) = self.config.next_hop(dst) else {
            return NextStep::Drop(DropReason::NoRoute);
        };
        if let IpAddr::V6(v6) = hop
            && let Some(member) = managed_ip::embedded_address(v6, self.config.nwid)
        {
            let mac = Mac::from_address(member, self.config.nwid);
            return if mac == self.config.our_mac {
                NextStep::Drop(DropReason::NoRoute)
            } else {
                NextStep::Send(mac)
            };
        }
        match self.neighbours.lookup(hop, now) {
            Some((mac, refresh_due)) => {
                if refresh_due {
                    self.start_refresh(now, hop);
                }
                NextStep::Send(mac)
            }
            None if self.config.source_for(hop).is_none() => NextStep::Drop(DropReason::NoRoute),
            None => NextStep::Resolve(hop),
        }
    }

    /// Writes `packet` to `mac` as one frame, or as IPv4 fragments when it exceeds the MTU
    /// (callers have checked it may be fragmented). The first frame goes into `first` when
    /// given, the rest (or all) into the outgoing queue.
    pub(super) fn emit(
        &mut self,
        mac: Mac,
        packet: &[u8],
        mut first: Option<&mut Vec<u8>>,
    ) -> Result<(), DropReason> {
        let is_ipv4 = packet.first().is_some_and(|b| b >> 4 == 4);
        let ethertype = if is_ipv4 {
            ethertype::IPV4
        } else {
            ethertype::IPV6
        };
        let header = EthernetHeader {
            dst: mac,
            src: self.config.our_mac,
            ethertype,
        };
        let mtu = self.config.mtu;
        if packet.len() <= mtu {
            match first {
                Some(frame) => write_frame(frame, &header, &[packet]),
                None => {
                    let mut frame = self.take_buffer();
                    write_frame(&mut frame, &header, &[packet]);
                    self.queue_frame(frame);
                }
            }
            self.counters.to_network_forwarded += 1;
            return Ok(());
        }
        // Only reached for packets that grew too big while held (a smaller MTU arrived).
        let header_len = ipv4_fragmentable(packet)
            .ok_or_else(|| self.drop_packet(Direction::ToNetwork, DropReason::TooBig, packet))?;
        let made = fragment_ipv4(packet, header_len, mtu, |ip_header, data| {
            match first.take() {
                Some(frame) => write_frame(frame, &header, &[ip_header, data]),
                None => {
                    let mut frame = self.take_buffer();
                    write_frame(&mut frame, &header, &[ip_header, data]);
                    self.queue_frame(frame);
                }
            }
        });
        let Some(made) = made else {
            return Err(self.drop_packet(Direction::ToNetwork, DropReason::TooBig, packet));
        };
        self.counters.to_network_forwarded += 1;
        self.counters.to_network_fragmented += 1;
        self.counters.to_network_fragments_created += made as u64;
        if let Ok(summary) = inspect(packet, &self.config.policy) {
            self.report_summary(Direction::ToNetwork, TraceEvent::Fragmented(made), &summary);
        }
        Ok(())
    }

    /// Holds `packet` until `hop` answers; starts the resolution if it is new.
    fn hold_for_resolution(&mut self, now: u64, hop: IpAddr, packet: &[u8]) -> FromTun {
        let index = match self.resolutions.iter().position(|r| r.ip == hop) {
            Some(index) => index,
            None if self.resolutions.len() >= MAX_PENDING_DESTINATIONS => {
                let reason = DropReason::ResolutionQueueFull;
                return FromTun::Dropped(self.drop_packet(Direction::ToNetwork, reason, packet));
            }
            None => {
                self.resolutions.push(Resolution::started(hop, now));
                self.send_request(hop);
                self.resolutions.len() - 1
            }
        };
        let mut held = self.take_buffer();
        held.extend_from_slice(packet);
        let displaced = self
            .resolutions
            .get_mut(index)
            .and_then(|resolution| resolution.hold(held));
        self.counters.resolution_queued += 1;
        if let Some(oldest) = displaced {
            let reason = DropReason::ResolutionQueueFull;
            self.drop_packet(Direction::ToNetwork, reason, &oldest);
            self.recycle(oldest);
        }
        FromTun::Pending
    }

    /// Re-resolves a live entry close to expiry without holding traffic.
    fn start_refresh(&mut self, now: u64, hop: IpAddr) {
        if self.resolutions.len() >= MAX_PENDING_DESTINATIONS
            || self.resolutions.iter().any(|r| r.ip == hop)
        {
            return;
        }
        self.resolutions.push(Resolution::started(hop, now));
        self.send_request(hop);
    }

    /// Queues an ARP request (IPv4) or a neighbour solicitation to the solicited-node group
    /// (IPv6) for `target`, from our address that shares its subnet.
    pub(super) fn send_request(&mut self, target: IpAddr) {
        let our_mac = self.config.our_mac;
        let mut frame = self.take_buffer();
        match (self.config.source_for(target), target) {
            (Some(IpAddr::V4(source)), IpAddr::V4(target)) => {
                ArpRepr {
                    operation: ArpOperation::Request,
                    sender_mac: our_mac,
                    sender_ip: source,
                    target_mac: Mac::ZERO,
                    target_ip: target,
                }
                .emit_frame(&mut frame);
                self.counters.arp_requests_sent += 1;
            }
            (Some(IpAddr::V6(source)), IpAddr::V6(target)) => {
                let group = MulticastGroup::ipv6_solicited_node(target);
                let o = target.octets();
                let destination = Ipv6Addr::new(
                    0xff02,
                    0,
                    0,
                    0,
                    0,
                    1,
                    0xff00 | u16::from(o[13]),
                    u16::from_be_bytes([o[14], o[15]]),
                );
                EthernetHeader {
                    dst: group.mac,
                    src: our_mac,
                    ethertype: ethertype::IPV6,
                }
                .emit(&mut frame);
                NeighborSolicitation {
                    source,
                    destination,
                    target,
                    source_link_addr: Some(our_mac),
                }
                .emit(&mut frame);
                self.counters.neighbour_solicitations_sent += 1;
            }
            // No address of the family: `next_step` never resolves such a hop.
            _ => {
                self.recycle(frame);
                return;
            }
        }
        self.queue_frame(frame);
    }
}

/// Whether an IPv4 packet with this header length can be fragmented to `mtu` at all.
fn can_fragment(header_len: usize, mtu: usize) -> bool {
    mtu >= header_len + 8
}

/// The header length of an IPv4 packet that may be fragmented (no DF).
fn ipv4_fragmentable(packet: &[u8]) -> Option<usize> {
    let fixed = packet.first_chunk::<20>()?;
    let flags = u16::from_be_bytes([fixed[6], fixed[7]]);
    (fixed[0] >> 4 == 4 && flags & IPV4_DONT_FRAGMENT == 0)
        .then_some(usize::from(fixed[0] & 0x0f) * 4)
}

/// Replaces `frame` with the Ethernet header followed by `parts`.
fn write_frame(frame: &mut Vec<u8>, header: &EthernetHeader, parts: &[&[u8]]) {
    frame.clear();
    header.emit(frame);
    for part in parts {
        frame.extend_from_slice(part);
    }
}
