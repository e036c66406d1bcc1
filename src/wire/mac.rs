//! Ethernet MAC addresses, the ZeroTier MAC of a node on a network (protocol 9.1) and
//! multicast groups `(MAC, ADI)` (9.3), including the ARP and IPv6 solicited-node groups.

use core::fmt;
use core::str::FromStr;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::cursor::{Reader, Writer};
use super::{Address, Error, NetworkId, Result};

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Size on the wire.
    pub const LEN: usize = 6;
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// `00:00:00:00:00:00`, never a valid source.
    pub const ZERO: Mac = Mac([0; 6]);

    /// From the low 48 bits of `v`.
    pub const fn from_u64(v: u64) -> Mac {
        let b = v.to_be_bytes();
        Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    pub const fn to_u64(self) -> u64 {
        let m = self.0;
        u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
    }

    /// Reads the first 6 bytes of `b`.
    pub fn from_slice(b: &[u8]) -> Result<Mac> {
        Reader::new(b).array("mac address").map(Mac)
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Mac> {
        r.array("mac address").map(Mac)
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.0);
    }

    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// The group bit (bit 0 of the first octet); broadcast is multicast too.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_broadcast(self) -> bool {
        self == Mac::BROADCAST
    }

    pub fn is_zero(self) -> bool {
        self == Mac::ZERO
    }

    /// A usable unicast address: group bit clear and not all zero.
    pub fn is_unicast(self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// The locally-administered bit (bit 1 of the first octet); every ZeroTier MAC sets it.
    pub const fn is_locally_administered(self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The first octet every ZeroTier MAC on `network` carries: the network id's lowest byte
    /// with the group bit cleared and the local bit set, except that 0x52 becomes 0x32
    /// (0x52 is avoided because some hypervisors claim it).
    pub const fn first_octet_for(network: NetworkId) -> u8 {
        let first = ((network.0 as u8) & 0xfe) | 0x02;
        if first == 0x52 { 0x32 } else { first }
    }

    /// The MAC of node `address` on `network` (9.1): the address XORed with network id bytes
    /// 2..=6 taken in reverse order, behind [`Mac::first_octet_for`].
    pub const fn from_address(address: Address, network: NetworkId) -> Mac {
        let a = address.to_u64().to_be_bytes(); // a[3..8] is the address
        let n = network.0.to_be_bytes();
        Mac([
            Mac::first_octet_for(network),
            a[3] ^ n[6],
            a[4] ^ n[5],
            a[5] ^ n[4],
            a[6] ^ n[3],
            a[7] ^ n[2],
        ])
    }

    /// The node address behind a ZeroTier MAC on `network`, or `None` if the first octet is
    /// not this network's (the MAC then belongs to a bridged host, not a member). The result
    /// may be a reserved address; callers that forward to it must check.
    pub const fn to_address(self, network: NetworkId) -> Option<Address> {
        if self.0[0] != Mac::first_octet_for(network) {
            return None;
        }
        let n = network.0.to_be_bytes();
        let m = self.0;
        let v = u64::from_be_bytes([
            0,
            0,
            0,
            m[1] ^ n[6],
            m[2] ^ n[5],
            m[3] ^ n[4],
            m[4] ^ n[3],
            m[5] ^ n[2],
        ]);
        Some(Address::from_u64(v))
    }
}

impl From<[u8; 6]> for Mac {
    fn from(b: [u8; 6]) -> Mac {
        Mac(b)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for Mac {
    type Err = Error;
    /// Six groups of exactly two hex digits separated by `:` (either case).
    fn from_str(s: &str) -> Result<Mac> {
        const WHAT: &str = "mac address (xx:xx:xx:xx:xx:xx)";
        let mut out = [0u8; 6];
        let mut groups = s.split(':');
        for byte in out.iter_mut() {
            let group = groups.next().ok_or(Error::Malformed(WHAT))?;
            if group.len() != 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Malformed(WHAT));
            }
            *byte = u8::from_str_radix(group, 16).map_err(|_| Error::Malformed(WHAT))?;
        }
        if groups.next().is_some() {
            return Err(Error::Malformed(WHAT));
        }
        Ok(Mac(out))
    }
}

/// A multicast group: a multicast MAC plus a 32-bit "additional distinguishing information"
/// that narrows who subscribes (9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MulticastGroup {
    pub mac: Mac,
    pub adi: u32,
}

impl MulticastGroup {
    /// Size on the wire (MAC + ADI), as in MULTICAST_LIKE and MULTICAST_GATHER.
    pub const LEN: usize = 10;
    /// Plain Ethernet broadcast, ADI 0 (only announced when broadcast is enabled).
    pub const BROADCAST: MulticastGroup = MulticastGroup {
        mac: Mac::BROADCAST,
        adi: 0,
    };

    pub const fn new(mac: Mac, adi: u32) -> MulticastGroup {
        MulticastGroup { mac, adi }
    }

    /// The group an IPv4 ARP request for `target` is sent to: broadcast MAC with the target
    /// address as ADI, so only the owner of the address receives it.
    pub fn arp(target: Ipv4Addr) -> MulticastGroup {
        MulticastGroup {
            mac: Mac::BROADCAST,
            adi: u32::from(target),
        }
    }

    /// The IPv6 solicited-node group of `ip` as Ethernet sees it: `33:33:ff` + the last three
    /// bytes of the address, ADI 0.
    pub fn ipv6_solicited_node(ip: Ipv6Addr) -> MulticastGroup {
        let o = ip.octets();
        MulticastGroup {
            mac: Mac([0x33, 0x33, 0xff, o[13], o[14], o[15]]),
            adi: 0,
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<MulticastGroup> {
        let mac = Mac::read(r)?;
        let adi = r.u32("multicast group adi")?;
        Ok(MulticastGroup { mac, adi })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        self.mac.emit(out);
        out.put_u32(self.adi);
    }
}

impl fmt::Display for MulticastGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:08x}", self.mac, self.adi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_example() {
        let a: Address = "7c2dfee12c".parse().unwrap();
        let n: NetworkId = "8056c2e21c000001".parse().unwrap();
        let mac = Mac::from_address(a, n);
        assert_eq!(mac.to_string(), "02:7c:2d:e2:03:ee");
        assert_eq!(mac.to_address(n), Some(a));
        assert!(mac.is_unicast() && mac.is_locally_administered());
    }

    #[test]
    fn first_octet_avoids_0x52() {
        assert_eq!(Mac::first_octet_for(NetworkId(0x52)), 0x32);
        assert_eq!(Mac::first_octet_for(NetworkId(0x53)), 0x32);
        assert_eq!(Mac::first_octet_for(NetworkId(0x50)), 0x32);
        assert_eq!(Mac::first_octet_for(NetworkId(0x01)), 0x02);
        assert_eq!(Mac::first_octet_for(NetworkId(0xff)), 0xfe);
        let a = Address::from_u64(0x0102030405);
        let other = Mac::from_address(a, NetworkId(0x01));
        assert_eq!(other.to_address(NetworkId(0x02)), Some(a));
        assert_eq!(other.to_address(NetworkId(0x04)), None);
    }

    #[test]
    fn groups() {
        assert_eq!(
            MulticastGroup::arp(Ipv4Addr::new(10, 147, 17, 5)),
            MulticastGroup::new(Mac::BROADCAST, 0x0a93_1105)
        );
        let ip: Ipv6Addr = "fd80:56c2:e21c:0:199:937c:2dfe:e12c".parse().unwrap();
        assert_eq!(
            MulticastGroup::ipv6_solicited_node(ip).mac.to_string(),
            "33:33:ff:fe:e1:2c"
        );
        let mut out = Vec::new();
        MulticastGroup::BROADCAST.emit(&mut out);
        assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut r = Reader::new(&out);
        assert_eq!(MulticastGroup::read(&mut r), Ok(MulticastGroup::BROADCAST));
        assert!(MulticastGroup::read(&mut Reader::new(&out[..9])).is_err());
    }

    #[test]
    fn text_form_is_strict() {
        assert_eq!("02:7C:2d:e2:03:ee".parse::<Mac>().map(|m| m.0[1]), Ok(0x7c));
        for bad in [
            "",
            "02:7c:2d:e2:03",
            "02:7c:2d:e2:03:ee:01",
            "02:7c:2d:e2:03:e",
            "02:7c:2d:e2:03:+e",
            "027c2de203ee",
            "02-7c-2d-e2-03-ee",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert!(Mac::BROADCAST.is_broadcast() && Mac::BROADCAST.is_multicast());
        assert!(!Mac::ZERO.is_unicast());
    }

    proptest! {
        #[test]
        fn address_round_trips(a in 0u64..(1 << 40), n: u64) {
            let address = Address::from_u64(a);
            let network = NetworkId(n);
            let mac = Mac::from_address(address, network);
            prop_assert_eq!(mac.to_address(network), Some(address));
            prop_assert!(mac.is_unicast() && mac.is_locally_administered());
            prop_assert_ne!(mac.0[0], 0x52);
        }

        #[test]
        fn text_and_u64_round_trip(b: [u8; 6]) {
            let mac = Mac(b);
            prop_assert_eq!(mac.to_string().parse::<Mac>(), Ok(mac));
            prop_assert_eq!(Mac::from_u64(mac.to_u64()), mac);
        }

        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = s.parse::<Mac>();
        }
    }
}
