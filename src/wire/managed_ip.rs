//! Managed IPv6 addresses derived from (network id, node address) (protocol 9.4): the
//! RFC 4193 form (/88) and the 6PLANE form (/40, each node owning a /80), and the reverse
//! extraction of the embedded node address that NDP emulation needs.
//!
//! ```text
//! rfc4193: fd | nwid(8) | 99 93 | address(5)
//! 6plane:  fc | (nwid ^ nwid >> 32) as u32 | address(5) | 00 00 00 00 00 01
//! ```

use std::net::Ipv6Addr;

use super::{Address, NetworkId};

/// Prefix length of an RFC 4193 managed address.
pub const RFC4193_PREFIX_LEN: u8 = 88;
/// Prefix length a 6PLANE address is assigned with.
pub const SIX_PLANE_PREFIX_LEN: u8 = 40;
/// Prefix length of the block each node owns under 6PLANE.
pub const SIX_PLANE_NODE_PREFIX_LEN: u8 = 80;

/// The RFC 4193 managed address of `address` on `network`.
pub fn rfc4193(network: NetworkId, address: Address) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfd;
    o[1..9].copy_from_slice(&network.0.to_be_bytes());
    o[9] = 0x99;
    o[10] = 0x93;
    o[11..16].copy_from_slice(&address.to_bytes());
    Ipv6Addr::from(o)
}

/// The 32-bit network hash in a 6PLANE prefix.
fn six_plane_hash(network: NetworkId) -> [u8; 4] {
    (((network.0 ^ (network.0 >> 32)) & 0xffff_ffff) as u32).to_be_bytes()
}

/// The 6PLANE managed address of `address` on `network` (host part `::1` of its /80).
pub fn six_plane(network: NetworkId, address: Address) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfc;
    o[1..5].copy_from_slice(&six_plane_hash(network));
    o[5..10].copy_from_slice(&address.to_bytes());
    o[15] = 0x01;
    Ipv6Addr::from(o)
}

/// The node address embedded in `ip` if it lies in `network`'s RFC 4193 /88.
pub fn rfc4193_address(ip: Ipv6Addr, network: NetworkId) -> Option<Address> {
    let o = ip.octets();
    let prefix = rfc4193(network, Address::default()).octets();
    if o[..11] != prefix[..11] {
        return None;
    }
    usable(Address::from_slice(&o[11..]).ok()?)
}

/// The node address embedded in `ip` if it lies in `network`'s 6PLANE /40 (any host part of
/// the node's /80).
pub fn six_plane_address(ip: Ipv6Addr, network: NetworkId) -> Option<Address> {
    let o = ip.octets();
    if o[0] != 0xfc || o[1..5] != six_plane_hash(network) {
        return None;
    }
    usable(Address::from_slice(&o[5..10]).ok()?)
}

/// The node address embedded in `ip` under either scheme.
pub fn embedded_address(ip: Ipv6Addr, network: NetworkId) -> Option<Address> {
    rfc4193_address(ip, network).or_else(|| six_plane_address(ip, network))
}

/// Reserved addresses (0, 0xff...) never name a node, so they are never "embedded".
fn usable(address: Address) -> Option<Address> {
    (!address.is_reserved()).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_examples() {
        let n: NetworkId = "8056c2e21c000001".parse().unwrap();
        let a: Address = "7c2dfee12c".parse().unwrap();
        assert_eq!(
            rfc4193(n, a).to_string(),
            "fd80:56c2:e21c:0:199:937c:2dfe:e12c"
        );
        assert_eq!(six_plane(n, a).to_string(), "fc9c:56c2:e37c:2dfe:e12c::1");
        assert_eq!(embedded_address(rfc4193(n, a), n), Some(a));
        assert_eq!(embedded_address(six_plane(n, a), n), Some(a));
        let other_host: Ipv6Addr = "fc9c:56c2:e37c:2dfe:e12c:1:2:3".parse().unwrap();
        assert_eq!(six_plane_address(other_host, n), Some(a));
        assert_eq!(rfc4193_address(six_plane(n, a), n), None);
        assert_eq!(embedded_address(rfc4193(NetworkId(1), a), n), None);
        assert_eq!(embedded_address(Ipv6Addr::LOCALHOST, n), None);
        assert_eq!(
            embedded_address(rfc4193(n, Address::from_u64(0)), n),
            None,
            "reserved addresses are not extracted"
        );
    }

    proptest! {
        #[test]
        fn round_trips(n: u64, a in 1u64..0xff_0000_0000) {
            let (network, address) = (NetworkId(n), Address::from_u64(a));
            prop_assert_eq!(rfc4193_address(rfc4193(network, address), network), Some(address));
            prop_assert_eq!(six_plane_address(six_plane(network, address), network), Some(address));
        }

        #[test]
        fn arbitrary_addresses_never_panic(o: [u8; 16], n: u64) {
            let _ = embedded_address(Ipv6Addr::from(o), NetworkId(n));
        }
    }
}
