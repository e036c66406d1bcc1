//! Network to TUN: the Ethernet destination check, the policy on IP packets (delivered in
//! place, no copy), answering ARP requests and neighbour solicitations for our addresses,
//! and taking ARP replies / neighbour advertisements, only when they answer a request of
//! ours and come from the member that owns the MAC they name (hardening H2.3).

use std::net::{IpAddr, Ipv4Addr};

use super::boundary::{Boundary, FromNetwork};
use super::counters::{Direction, DropReason};
use super::inspect::{IpSummary, PROTOCOL_ICMPV6, inspect};
use super::neighbour::Learned;
use crate::wire::arp::{ArpOperation, ArpRepr};
use crate::wire::ethernet::{ETHERNET_HEADER_LEN, EthernetHeader, ethertype};
use crate::wire::mac::Mac;
use crate::wire::ndp::{
    ICMPV6_NEIGHBOR_ADVERTISEMENT, ICMPV6_NEIGHBOR_SOLICITATION, NeighborAdvertisement,
    NeighborSolicitation,
};

impl Boundary {
    /// An Ethernet frame the node delivered (`Event::Frame`). On
    /// [`FromNetwork::ToTun`]`(range)`, `frame[range]` is the IP packet for the TUN; on
    /// [`FromNetwork::ToNetwork`], `reply` holds a frame to send back through the node.
    pub fn from_network(&mut self, now_ms: u64, frame: &[u8], reply: &mut Vec<u8>) -> FromNetwork {
        reply.clear();
        let direction = Direction::ToTun;
        let Ok((eth, payload)) = EthernetHeader::parse(frame) else {
            return FromNetwork::Dropped(self.drop_packet(direction, DropReason::Malformed, frame));
        };
        let reason = if eth.dst != self.config.our_mac && !eth.dst.is_multicast() {
            Some(DropReason::NotForUs)
        } else if eth.dst.is_broadcast()
            && !self.config.broadcast
            && eth.ethertype != ethertype::ARP
        {
            Some(DropReason::BroadcastDisabled)
        } else {
            None
        };
        if let Some(reason) = reason {
            return FromNetwork::Dropped(self.drop_packet(direction, reason, payload));
        }
        match eth.ethertype {
            ethertype::IPV4 | ethertype::IPV6 => self.inbound_ip(now_ms, &eth, payload, reply),
            ethertype::ARP => self.inbound_arp(now_ms, &eth, payload, reply),
            _ => {
                let reason = DropReason::UnsupportedEthertype;
                FromNetwork::Dropped(self.drop_packet(direction, reason, payload))
            }
        }
    }

    fn inbound_ip(
        &mut self,
        now: u64,
        eth: &EthernetHeader,
        payload: &[u8],
        reply: &mut Vec<u8>,
    ) -> FromNetwork {
        let direction = Direction::ToTun;
        let version = if eth.ethertype == ethertype::IPV4 {
            4
        } else {
            6
        };
        if payload.first().map(|b| b >> 4) != Some(version) {
            return FromNetwork::Dropped(self.drop_packet(
                direction,
                DropReason::Malformed,
                payload,
            ));
        }
        let summary = match inspect(payload, &self.config.policy) {
            Ok(summary) => summary,
            Err(reason) => {
                return FromNetwork::Dropped(self.drop_packet(direction, reason, payload));
            }
        };
        let packet = payload.get(..summary.len).unwrap_or(payload);
        if let Some(kind) = neighbour_discovery_type(packet, &summary) {
            return self.inbound_ndp(now, eth, packet, kind, reply);
        }
        self.note_passes(direction, &summary);
        self.counters.to_tun_delivered += 1;
        FromNetwork::ToTun(ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + summary.len)
    }

    fn inbound_ndp(
        &mut self,
        now: u64,
        eth: &EthernetHeader,
        packet: &[u8],
        kind: u8,
        reply: &mut Vec<u8>,
    ) -> FromNetwork {
        let direction = Direction::ToTun;
        if kind == ICMPV6_NEIGHBOR_SOLICITATION {
            let Ok(ns) = NeighborSolicitation::parse(packet) else {
                return FromNetwork::Dropped(self.drop_packet(
                    direction,
                    DropReason::Malformed,
                    packet,
                ));
            };
            let reason = if !self.config.is_own_address(IpAddr::V6(ns.target)) {
                DropReason::NeighbourRequestIgnored
            } else if ns.source_link_addr.is_some_and(|mac| mac != eth.src) {
                DropReason::NeighbourBadMac
            } else if let Some(answer) = NeighborAdvertisement::answer(&ns, self.config.our_mac) {
                answer.emit_frame(eth.src, self.config.our_mac, reply);
                self.counters.neighbour_advertisements_sent += 1;
                return FromNetwork::ToNetwork;
            } else {
                // A duplicate address probe (source `::`) for one of our addresses.
                DropReason::NeighbourRequestIgnored
            };
            return FromNetwork::Dropped(self.drop_packet(direction, reason, packet));
        }
        let Ok(na) = NeighborAdvertisement::parse(packet) else {
            return FromNetwork::Dropped(self.drop_packet(
                direction,
                DropReason::Malformed,
                packet,
            ));
        };
        let claimed = na.target_link_addr.unwrap_or(eth.src);
        match self.take_answer(now, eth, IpAddr::V6(na.target), claimed) {
            Ok(()) => FromNetwork::Consumed,
            Err(reason) => FromNetwork::Dropped(self.drop_packet(direction, reason, packet)),
        }
    }

    fn inbound_arp(
        &mut self,
        now: u64,
        eth: &EthernetHeader,
        payload: &[u8],
        reply: &mut Vec<u8>,
    ) -> FromNetwork {
        let Ok(arp) = ArpRepr::parse(payload) else {
            let reason = DropReason::Malformed;
            return FromNetwork::Dropped(self.drop_packet(Direction::ToTun, reason, payload));
        };
        let (sender, target) = (IpAddr::V4(arp.sender_ip), IpAddr::V4(arp.target_ip));
        let outcome = if arp.sender_mac != eth.src {
            Err(DropReason::NeighbourBadMac)
        } else {
            match arp.operation {
                ArpOperation::Request if arp.sender_ip == arp.target_ip => {
                    Err(DropReason::UnsolicitedNeighbour) // gratuitous
                }
                ArpOperation::Request if !self.config.is_own_address(target) => {
                    Err(DropReason::NeighbourRequestIgnored)
                }
                ArpOperation::Request => {
                    if let Some(answer) = arp.reply(self.config.our_mac) {
                        answer.emit_frame(reply);
                        self.counters.arp_replies_sent += 1;
                    }
                    return FromNetwork::ToNetwork;
                }
                ArpOperation::Reply => self.take_answer(now, eth, sender, arp.sender_mac),
                ArpOperation::Other(_) => Err(DropReason::Malformed),
            }
        };
        match outcome {
            Ok(()) => FromNetwork::Consumed,
            Err(reason) => {
                FromNetwork::Dropped(self.drop_between(reason, sender, target, payload.len()))
            }
        }
    }

    /// Takes the answer "`ip` is at `claimed`" carried by the frame `eth` if it answers one
    /// of our requests, comes unicast to us from the member owning `claimed`, and does not
    /// contradict a live entry; releases the packets held for `ip`.
    fn take_answer(
        &mut self,
        now: u64,
        eth: &EthernetHeader,
        ip: IpAddr,
        claimed: Mac,
    ) -> Result<(), DropReason> {
        let nwid = self.config.nwid;
        if claimed != eth.src
            || claimed == self.config.our_mac
            || claimed.to_address(nwid).is_none()
        {
            return Err(DropReason::NeighbourBadMac);
        }
        if eth.dst != self.config.our_mac || !self.learnable(ip) {
            return Err(DropReason::UnsolicitedNeighbour);
        }
        let Some(index) = self.resolutions.iter().position(|r| r.ip == ip) else {
            return Err(DropReason::UnsolicitedNeighbour);
        };
        match self.neighbours.learn(ip, claimed, now) {
            Learned::Conflict => return Err(DropReason::NeighbourConflict),
            Learned::Refreshed => self.counters.neighbour_refreshed += 1,
            Learned::New { evicted } => {
                self.counters.neighbour_learned += 1;
                self.counters.neighbour_evicted += u64::from(evicted);
            }
        }
        let resolution = self.resolutions.swap_remove(index);
        for packet in resolution.packets {
            self.counters.resolution_released += 1;
            // A drop here (MTU shrank meanwhile) is counted inside `emit`.
            let _ = self.emit(claimed, &packet, None);
            self.recycle(packet);
        }
        Ok(())
    }

    /// Whether a neighbour entry may ever exist for `ip`: never our own addresses, nor
    /// multicast, broadcast, unspecified or loopback.
    fn learnable(&self, ip: IpAddr) -> bool {
        let special = match ip {
            IpAddr::V4(v4) => {
                v4.is_multicast()
                    || v4 == Ipv4Addr::BROADCAST
                    || self.config.is_subnet_broadcast(v4)
                    || v4.is_unspecified()
                    || v4.is_loopback()
            }
            IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified() || v6.is_loopback(),
        };
        !special && !self.config.is_own_address(ip)
    }
}

/// The ICMPv6 type of a neighbour solicitation or advertisement (bare ICMPv6 right after
/// the IPv6 header), which the boundary handles itself instead of delivering.
fn neighbour_discovery_type(packet: &[u8], summary: &IpSummary) -> Option<u8> {
    if summary.protocol != PROTOCOL_ICMPV6 || summary.extension_headers || summary.fragment {
        return None;
    }
    packet
        .get(summary.transport_offset)
        .copied()
        .filter(|t| *t == ICMPV6_NEIGHBOR_SOLICITATION || *t == ICMPV6_NEIGHBOR_ADVERTISEMENT)
}
