//! What the boundary counts and reports: one named counter per outcome and direction
//! ([`BoundaryCounters`], hardening H2.10: every drop has one), the reasons a packet is
//! dropped ([`DropReason`]) and the records handed to the trace hook ([`TraceRecord`]).

use std::net::IpAddr;

/// Which way a packet is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Direction {
    /// Read from the TUN, heading to the ZeroTier network.
    ToNetwork,
    /// Delivered by the node, heading to the TUN.
    ToTun,
}

/// Why a packet or frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DropReason {
    /// A TUN packet that is neither IPv4 nor IPv6.
    NotIp,
    /// A frame whose ethertype is not IPv4, IPv6 or ARP.
    UnsupportedEthertype,
    /// Lengths inconsistent, truncated, version mismatch, bad ARP/NDP body.
    Malformed,
    /// IPv4 header checksum wrong.
    BadHeaderChecksum,
    /// TCP, UDP, ICMPv4 or ICMPv6 checksum wrong (or a zero UDP checksum over IPv6).
    BadChecksum,
    /// A fragment, under [`FragmentPolicy::Drop`](super::FragmentPolicy::Drop).
    FragmentDropped,
    /// An extension header, under [`ExtensionPolicy::Drop`](super::ExtensionPolicy::Drop).
    ExtensionHeaderDropped,
    /// An IPv6 extension header we do not handle (mobility, HIP, shim6, experimental).
    UnknownExtensionHeader,
    /// More than 8 extension headers or 512 bytes of them.
    ExtensionChainTooLong,
    /// IPv6 routing header type 0 (deprecated by RFC 5095).
    RoutingHeaderType0,
    /// No subnet or route covers the destination, the next hop is ourselves, or we have no
    /// address of that family to resolve from.
    NoRoute,
    /// A broadcast on a network that does not allow broadcast.
    BroadcastDisabled,
    /// Larger than the MTU and not fragmentable (IPv4 with DF, IPv6).
    TooBig,
    /// No room to queue a packet waiting for address resolution.
    ResolutionQueueFull,
    /// Address resolution got no answer.
    ResolutionFailed,
    /// No room in the outgoing frame queue.
    QueueFull,
    /// A frame to another unicast MAC.
    NotForUs,
    /// An ARP request or neighbour solicitation we do not answer (not our address, or a
    /// duplicate address probe).
    NeighbourRequestIgnored,
    /// An ARP reply or neighbour advertisement nobody asked for (gratuitous included).
    UnsolicitedNeighbour,
    /// An answer naming another MAC than a live entry (refused until it expires).
    NeighbourConflict,
    /// A sender MAC that is not the frame's source or not a member MAC of this network.
    NeighbourBadMac,
}

impl DropReason {
    /// A stable snake_case name (for logs and traces).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NotIp => "not_ip",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::Malformed => "malformed",
            DropReason::BadHeaderChecksum => "bad_header_checksum",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::FragmentDropped => "fragment_dropped",
            DropReason::ExtensionHeaderDropped => "ext_header_dropped",
            DropReason::UnknownExtensionHeader => "unknown_ext_header",
            DropReason::ExtensionChainTooLong => "ext_chain_too_long",
            DropReason::RoutingHeaderType0 => "routing_type0",
            DropReason::NoRoute => "no_route",
            DropReason::BroadcastDisabled => "broadcast_disabled",
            DropReason::TooBig => "too_big",
            DropReason::ResolutionQueueFull => "resolution_queue_full",
            DropReason::ResolutionFailed => "resolution_failed",
            DropReason::QueueFull => "queue_full",
            DropReason::NotForUs => "not_for_us",
            DropReason::NeighbourRequestIgnored => "neighbour_request_ignored",
            DropReason::UnsolicitedNeighbour => "unsolicited_neighbour",
            DropReason::NeighbourConflict => "neighbour_conflict",
            DropReason::NeighbourBadMac => "neighbour_bad_mac",
        }
    }
}

/// What a trace record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TraceEvent {
    Dropped(DropReason),
    /// A fragment passed under [`FragmentPolicy::Pass`](super::FragmentPolicy::Pass).
    FragmentPassed,
    /// An IPv6 packet with known extension headers passed.
    ExtensionHeadersPassed,
    /// An IPv4 packet larger than the MTU was split into this many fragments.
    Fragmented(usize),
    /// An ICMP error was generated back to the TUN (too big, unreachable).
    IcmpGenerated,
}

/// One trace record: the event and a short summary of the packet (what could be read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TraceRecord {
    pub direction: Direction,
    pub event: TraceEvent,
    /// The IP protocol (upper layer after IPv6 extension headers when known).
    pub protocol: Option<u8>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// Length of the IP packet (or of the frame payload when not IP).
    pub len: usize,
}

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Boundary counters; every field is a monotonically increasing count.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
        pub struct BoundaryCounters {
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        impl BoundaryCounters {
            /// Every counter as `(name, value)`.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( (stringify!($name), self.$name), )*].into_iter()
            }

            /// The value of the counter called `name`.
            pub fn get(&self, name: &str) -> Option<u64> {
                self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
            }
        }
    };
}

counters! {
    /// IP packets sent toward the network (a fragmented packet counts once).
    to_network_forwarded,
    to_network_not_ip,
    to_network_malformed,
    to_network_bad_header_checksum,
    to_network_bad_checksum,
    to_network_fragments_passed,
    to_network_fragments_dropped,
    /// IPv6 packets with extension headers passed / dropped by policy.
    to_network_ext_headers_passed,
    to_network_ext_headers_dropped,
    to_network_unknown_ext_header,
    to_network_ext_chain_too_long,
    to_network_routing_type0,
    to_network_no_route,
    to_network_broadcast_disabled,
    /// Packets above the MTU that could not be fragmented.
    to_network_too_big,
    /// IPv4 packets above the MTU split into fragments, and the fragments made.
    to_network_fragmented,
    to_network_fragments_created,
    /// Frames dropped because the outgoing frame queue was full.
    to_network_queue_full,
    /// IP packets delivered to the TUN.
    to_tun_delivered,
    to_tun_not_for_us,
    to_tun_unsupported_ethertype,
    to_tun_malformed,
    to_tun_bad_header_checksum,
    to_tun_bad_checksum,
    to_tun_fragments_passed,
    to_tun_fragments_dropped,
    to_tun_ext_headers_passed,
    to_tun_ext_headers_dropped,
    to_tun_unknown_ext_header,
    to_tun_ext_chain_too_long,
    to_tun_routing_type0,
    to_tun_broadcast_disabled,
    /// Generated packets (ICMP errors) dropped because the TUN queue was full.
    to_tun_queue_full,
    /// Resolution requests sent (first tries and retries).
    arp_requests_sent,
    neighbour_solicitations_sent,
    /// Answers sent for our own addresses.
    arp_replies_sent,
    neighbour_advertisements_sent,
    neighbour_request_ignored,
    /// Neighbour entries created / refreshed by verified answers.
    neighbour_learned,
    neighbour_refreshed,
    neighbour_conflict,
    unsolicited_neighbour_ignored,
    neighbour_bad_mac,
    /// Entries removed to make room / because their TTL ran out.
    neighbour_evicted,
    neighbour_expired,
    /// Packets queued while their next hop is resolved, and released after an answer.
    resolution_queued,
    resolution_released,
    /// Packets dropped: no queue room, or no answer after the last retry.
    resolution_queue_full,
    resolution_failed,
    /// ICMP errors generated toward the TUN.
    too_big_icmp_sent,
    unreachable_icmp_sent,
    /// ICMP errors not generated: rate limit, or not allowed (the offending packet was an
    /// ICMP error, a non-first fragment, or from/to a multicast or broadcast address).
    icmp_rate_limited,
    icmp_not_allowed,
}

impl BoundaryCounters {
    /// The counter of `reason` in `direction`. Reasons that can only happen one way have a
    /// single counter, whatever `direction` says.
    pub(crate) fn drop_counter(&mut self, direction: Direction, reason: DropReason) -> &mut u64 {
        let to_tun = direction == Direction::ToTun;
        macro_rules! either {
            ($tun:ident, $net:ident) => {
                if to_tun {
                    &mut self.$tun
                } else {
                    &mut self.$net
                }
            };
        }
        match reason {
            DropReason::NotIp => &mut self.to_network_not_ip,
            DropReason::UnsupportedEthertype => &mut self.to_tun_unsupported_ethertype,
            DropReason::Malformed => either!(to_tun_malformed, to_network_malformed),
            DropReason::BadHeaderChecksum => {
                either!(to_tun_bad_header_checksum, to_network_bad_header_checksum)
            }
            DropReason::BadChecksum => either!(to_tun_bad_checksum, to_network_bad_checksum),
            DropReason::FragmentDropped => {
                either!(to_tun_fragments_dropped, to_network_fragments_dropped)
            }
            DropReason::ExtensionHeaderDropped => {
                either!(to_tun_ext_headers_dropped, to_network_ext_headers_dropped)
            }
            DropReason::UnknownExtensionHeader => {
                either!(to_tun_unknown_ext_header, to_network_unknown_ext_header)
            }
            DropReason::ExtensionChainTooLong => {
                either!(to_tun_ext_chain_too_long, to_network_ext_chain_too_long)
            }
            DropReason::RoutingHeaderType0 => {
                either!(to_tun_routing_type0, to_network_routing_type0)
            }
            DropReason::NoRoute => &mut self.to_network_no_route,
            DropReason::BroadcastDisabled => {
                either!(to_tun_broadcast_disabled, to_network_broadcast_disabled)
            }
            DropReason::TooBig => &mut self.to_network_too_big,
            DropReason::ResolutionQueueFull => &mut self.resolution_queue_full,
            DropReason::ResolutionFailed => &mut self.resolution_failed,
            DropReason::QueueFull => either!(to_tun_queue_full, to_network_queue_full),
            DropReason::NotForUs => &mut self.to_tun_not_for_us,
            DropReason::NeighbourRequestIgnored => &mut self.neighbour_request_ignored,
            DropReason::UnsolicitedNeighbour => &mut self.unsolicited_neighbour_ignored,
            DropReason::NeighbourConflict => &mut self.neighbour_conflict,
            DropReason::NeighbourBadMac => &mut self.neighbour_bad_mac,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_counter_and_a_name() {
        let reasons = [
            DropReason::NotIp,
            DropReason::UnsupportedEthertype,
            DropReason::Malformed,
            DropReason::BadHeaderChecksum,
            DropReason::BadChecksum,
            DropReason::FragmentDropped,
            DropReason::ExtensionHeaderDropped,
            DropReason::UnknownExtensionHeader,
            DropReason::ExtensionChainTooLong,
            DropReason::RoutingHeaderType0,
            DropReason::NoRoute,
            DropReason::BroadcastDisabled,
            DropReason::TooBig,
            DropReason::ResolutionQueueFull,
            DropReason::ResolutionFailed,
            DropReason::QueueFull,
            DropReason::NotForUs,
            DropReason::NeighbourRequestIgnored,
            DropReason::UnsolicitedNeighbour,
            DropReason::NeighbourConflict,
            DropReason::NeighbourBadMac,
        ];
        for direction in [Direction::ToNetwork, Direction::ToTun] {
            for reason in reasons {
                let mut c = BoundaryCounters::default();
                *c.drop_counter(direction, reason) += 1;
                assert_eq!(c.iter().map(|(_, v)| v).sum::<u64>(), 1);
                assert!(!reason.as_str().is_empty());
            }
        }
        let mut c = BoundaryCounters::default();
        *c.drop_counter(Direction::ToTun, DropReason::BadChecksum) += 1;
        assert_eq!(c.get("to_tun_bad_checksum"), Some(1));
        assert_eq!(c.get("to_network_bad_checksum"), Some(0));
        assert_eq!(c.get("nonexistent"), None);
    }
}
