//! What one [`Boundary`](super::Boundary) knows about its network: our MAC, the MTU, our
//! managed addresses, the network's routes, whether broadcast is allowed, and the boundary
//! [`Policy`]. Also the pure lookups on that configuration (next hop, subnet broadcast, the
//! source address for a solicitation, the multicast groups to subscribe to).

use std::net::{IpAddr, Ipv4Addr};

use crate::wire::mac::{Mac, MulticastGroup};
use crate::wire::netconf::{FLAG_ENABLE_BROADCAST, NetworkConfig};
use crate::wire::{Address, NetworkId};

/// What happens to IP fragments (IPv4, and IPv6 packets with a non-atomic fragment header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum FragmentPolicy {
    /// Forward them untouched: in TUN mode the kernel at the far end reassembles.
    #[default]
    Pass,
    /// Drop them (for a user-space stack that does not reassemble).
    Drop,
}

/// What happens to IPv6 packets carrying extension headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum ExtensionPolicy {
    /// Forward packets whose chain holds only known headers (hop-by-hop, routing other than
    /// type 0, fragment, destination options, AH, ESP), within the chain bounds.
    #[default]
    PassKnown,
    /// Drop every packet that carries any extension header.
    Drop,
}

/// The checks applied to every IP packet in both directions (hardening H2.1, H2.2). The
/// IPv4 header checksum, length consistency, unknown IPv6 extension headers, over-long
/// header chains and routing header type 0 are always enforced; these are the choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    /// Verify TCP, UDP (v4, v6), ICMPv4 and ICMPv6 checksums of unfragmented packets.
    /// Default `true`.
    pub verify_transport_checksums: bool,
    /// Default [`FragmentPolicy::Pass`].
    pub fragments: FragmentPolicy,
    /// Default [`ExtensionPolicy::PassKnown`].
    pub extension_headers: ExtensionPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            verify_transport_checksums: true,
            fragments: FragmentPolicy::Pass,
            extension_headers: ExtensionPolicy::PassKnown,
        }
    }
}

/// One network's view at the TUN boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundaryConfig {
    pub nwid: NetworkId,
    /// Our ZeroTier MAC on this network (`Mac::from_address(our address, nwid)`).
    pub our_mac: Mac,
    /// The network MTU: the largest IP packet (Ethernet payload) a frame may carry.
    pub mtu: usize,
    /// Our managed addresses with their prefix lengths (the on-link subnets).
    pub addresses: Vec<(IpAddr, u8)>,
    /// The network's routes: target, prefix length, gateway (`None`: on-link).
    pub routes: Vec<(IpAddr, u8, Option<IpAddr>)>,
    /// Whether the network allows Ethernet broadcast.
    pub broadcast: bool,
    pub policy: Policy,
}

impl BoundaryConfig {
    /// The boundary view of a network config issued to `our` address. Addresses and routes
    /// with a prefix longer than their family allows, and non-IP entries, are left out.
    pub fn from_netconf(config: &NetworkConfig, our: Address, policy: Policy) -> Self {
        let addresses = config
            .static_ips
            .iter()
            .filter_map(|ip| match *ip {
                crate::wire::InetAddress::Ip(ip, prefix) => valid_prefix(ip, prefix),
                _ => None,
            })
            .collect();
        let routes = config
            .routes
            .iter()
            .filter_map(|route| {
                let (target, prefix) = route.target_network()?;
                let (target, prefix) = valid_prefix(target, prefix)?;
                let via = route.via_ip().filter(|via| !via.is_unspecified());
                Some((target, prefix, via))
            })
            .collect();
        BoundaryConfig {
            nwid: config.network_id,
            our_mac: Mac::from_address(our, config.network_id),
            mtu: config.mtu as usize,
            addresses,
            routes,
            broadcast: config.flags & FLAG_ENABLE_BROADCAST != 0,
            policy,
        }
    }

    /// Whether `ip` is one of our managed addresses.
    pub fn is_own_address(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|(own, _)| *own == ip)
    }

    /// The groups this member must subscribe to (MULTICAST_LIKE) for the boundary to be
    /// reachable: the ARP group of each IPv4 address, the solicited-node group of each IPv6
    /// address, and broadcast when the network allows it (protocol 9.3). The node derives
    /// the same set from the netconf (`Node::multicast_groups`); this is for checking a
    /// hand-built configuration against it.
    pub fn multicast_subscriptions(&self) -> Vec<MulticastGroup> {
        let mut groups: Vec<MulticastGroup> = self
            .addresses
            .iter()
            .map(|(ip, _)| match *ip {
                IpAddr::V4(v4) => MulticastGroup::arp(v4),
                IpAddr::V6(v6) => MulticastGroup::ipv6_solicited_node(v6),
            })
            .collect();
        if self.broadcast {
            groups.push(MulticastGroup::BROADCAST);
        }
        groups.sort();
        groups.dedup();
        groups
    }

    /// The on-link address a packet to `dst` is handed to: `dst` itself when it lies in one
    /// of our subnets or an on-link route, else the gateway of the longest matching route
    /// (our subnets win ties). `None` when nothing matches or the hop would be ourselves.
    pub(crate) fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        if dst.is_unspecified() || dst.is_loopback() {
            return None;
        }
        let mut best: Option<(u8, IpAddr)> = self
            .addresses
            .iter()
            .filter(|(net, prefix)| prefix_contains(*net, *prefix, dst))
            .map(|(_, prefix)| (*prefix, dst))
            .max_by_key(|(prefix, _)| *prefix);
        for (target, prefix, via) in &self.routes {
            if !prefix_contains(*target, *prefix, dst) {
                continue;
            }
            if best.is_none_or(|(longest, _)| *prefix > longest) {
                best = Some((*prefix, via.unwrap_or(dst)));
            }
        }
        best.map(|(_, hop)| hop)
            .filter(|hop| !self.is_own_address(*hop))
    }

    /// Whether `ip` is the directed broadcast address of one of our IPv4 subnets.
    pub(crate) fn is_subnet_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.addresses.iter().any(|(net, prefix)| match net {
            IpAddr::V4(net) if *prefix <= 30 => {
                let host_bits = !ipv4_mask(*prefix);
                u32::from(*net) | host_bits == u32::from(ip)
            }
            _ => false,
        })
    }

    /// Our address to send a solicitation for `target` from: one whose subnet holds
    /// `target` (the longest), else any of the same family.
    pub(crate) fn source_for(&self, target: IpAddr) -> Option<IpAddr> {
        let same_family = || {
            self.addresses
                .iter()
                .filter(move |(own, _)| own.is_ipv4() == target.is_ipv4())
        };
        same_family()
            .filter(|(own, prefix)| prefix_contains(*own, *prefix, target))
            .max_by_key(|(_, prefix)| *prefix)
            .or_else(|| same_family().next())
            .map(|(own, _)| *own)
    }
}

/// `(ip, prefix)` if the prefix fits the family.
fn valid_prefix(ip: IpAddr, prefix: u16) -> Option<(IpAddr, u8)> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix as u8))
}

fn ipv4_mask(prefix: u8) -> u32 {
    match u32::from(prefix.min(32)) {
        0 => 0,
        p => u32::MAX << (32 - p),
    }
}

fn ipv6_mask(prefix: u8) -> u128 {
    match u32::from(prefix.min(128)) {
        0 => 0,
        p => u128::MAX << (128 - p),
    }
}

/// Whether `ip` lies in `net/prefix` (different families never match).
pub(crate) fn prefix_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = ipv4_mask(prefix);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = ipv6_mask(prefix);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::InetAddress;
    use crate::wire::netconf::Route;

    fn config() -> BoundaryConfig {
        BoundaryConfig {
            nwid: NetworkId(0x8056_c2e2_1c00_0001),
            our_mac: Mac([2, 0, 0, 0, 0, 1]),
            mtu: 2800,
            addresses: vec![
                ("10.1.0.5".parse().unwrap(), 16),
                ("fd00::5".parse().unwrap(), 64),
            ],
            routes: vec![
                ("10.1.0.0".parse().unwrap(), 16, None),
                (
                    "10.1.7.0".parse().unwrap(),
                    24,
                    Some("10.1.0.1".parse().unwrap()),
                ),
                (
                    "0.0.0.0".parse().unwrap(),
                    0,
                    Some("10.1.0.254".parse().unwrap()),
                ),
                (
                    "192.168.9.0".parse().unwrap(),
                    24,
                    Some("10.1.0.5".parse().unwrap()),
                ),
            ],
            broadcast: true,
            policy: Policy::default(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn next_hop_is_longest_prefix() {
        let c = config();
        assert_eq!(c.next_hop(ip("10.1.3.3")), Some(ip("10.1.3.3")));
        assert_eq!(c.next_hop(ip("10.1.7.9")), Some(ip("10.1.0.1")));
        assert_eq!(c.next_hop(ip("8.8.8.8")), Some(ip("10.1.0.254")));
        assert_eq!(c.next_hop(ip("fd00::9")), Some(ip("fd00::9")));
        assert_eq!(c.next_hop(ip("fd01::9")), None, "no IPv6 default route");
        assert_eq!(c.next_hop(ip("10.1.0.5")), None, "ourselves");
        assert_eq!(c.next_hop(ip("192.168.9.1")), None, "gateway is ourselves");
        assert_eq!(c.next_hop(ip("0.0.0.0")), None);
        assert_eq!(c.next_hop(ip("127.0.0.1")), None);
    }

    #[test]
    fn broadcast_and_sources() {
        let c = config();
        assert!(c.is_subnet_broadcast("10.1.255.255".parse().unwrap()));
        assert!(!c.is_subnet_broadcast("10.1.255.254".parse().unwrap()));
        assert_eq!(c.source_for(ip("10.1.9.9")), Some(ip("10.1.0.5")));
        assert_eq!(c.source_for(ip("10.2.9.9")), Some(ip("10.1.0.5")));
        assert_eq!(c.source_for(ip("fd00::1")), Some(ip("fd00::5")));
        let groups = c.multicast_subscriptions();
        assert!(groups.contains(&MulticastGroup::arp("10.1.0.5".parse().unwrap())));
        assert!(groups.contains(&MulticastGroup::BROADCAST));
        assert_eq!(groups.len(), 3);
        assert!(prefix_contains(ip("::"), 0, ip("fd00::1")));
        assert!(!prefix_contains(ip("::"), 0, ip("10.0.0.1")));
    }

    #[test]
    fn from_netconf_keeps_valid_entries() {
        let nwid = NetworkId(0x8056_c2e2_1c00_0001);
        let our = Address::from_u64(0x007c_2dfe_e12c);
        let mut nc = NetworkConfig::new(nwid, our, 0);
        nc.mtu = 1400;
        nc.static_ips = vec![
            InetAddress::Ip(ip("10.147.17.5"), 24),
            InetAddress::Ip(ip("10.147.17.6"), 33),
            InetAddress::Nil,
        ];
        nc.routes = vec![
            Route {
                target: InetAddress::Ip(ip("10.147.17.0"), 24),
                via: InetAddress::Nil,
                flags: 0,
                metric: 0,
            },
            Route {
                target: InetAddress::Ip(ip("0.0.0.0"), 0),
                via: InetAddress::Ip(ip("10.147.17.1"), 0),
                flags: 0,
                metric: 0,
            },
        ];
        let c = BoundaryConfig::from_netconf(&nc, our, Policy::default());
        assert_eq!(c.our_mac.to_string(), "02:7c:2d:e2:03:ee");
        assert_eq!(c.mtu, 1400);
        assert_eq!(c.addresses, vec![(ip("10.147.17.5"), 24)]);
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].2, None);
        assert_eq!(c.routes[1].2, Some(ip("10.147.17.1")));
        assert!(c.broadcast);
    }
}
