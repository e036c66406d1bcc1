//! InetAddress, the typed IP endpoint encoding used by HELLO, OK(HELLO), worlds and netconf:
//! `0x00` (none) | `0x04 ip4 port` | `0x06 ip16 port`; types 1-3 are reserved and skipped.
//! In netconf the port slot carries a prefix length (static IPs, route targets).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::cursor::{Reader, Writer};
use super::{Error, Result};

/// One decoded InetAddress. `Other` stands for the reserved types the reference skips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InetAddress {
    /// Type 0: no address.
    Nil,
    /// Types 4 and 6: an IP with a port (or a prefix length in netconf).
    Ip(IpAddr, u16),
    /// Types 1, 2, 3: reserved kinds a reader must skip; the type byte is kept.
    Other(u8),
}

impl InetAddress {
    /// Largest encoded size (type 6).
    pub const MAX_LEN: usize = 19;

    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        InetAddress::Ip(canonical_ip(addr.ip()), addr.port())
    }

    /// The socket address, if this is an IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match *self {
            InetAddress::Ip(ip, port) => Some(SocketAddr::new(ip, port)),
            _ => None,
        }
    }

    /// Reads one InetAddress from the cursor.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8("inet address type")? {
            0 => Ok(InetAddress::Nil),
            4 => {
                let ip: [u8; 4] = r.array("inet address ipv4")?;
                let port = r.u16("inet address port")?;
                Ok(InetAddress::Ip(IpAddr::V4(Ipv4Addr::from(ip)), port))
            }
            6 => {
                let ip: [u8; 16] = r.array("inet address ipv6")?;
                let port = r.u16("inet address port")?;
                Ok(InetAddress::Ip(IpAddr::V6(Ipv6Addr::from(ip)), port))
            }
            t @ (1 | 2) => {
                r.skip(6, "inet address (reserved type)")?;
                Ok(InetAddress::Other(t))
            }
            3 => {
                let len = r.u16("inet address length")?;
                r.skip(usize::from(len), "inet address (reserved type)")?;
                Ok(InetAddress::Other(3))
            }
            _ => Err(Error::Malformed("inet address type")),
        }
    }

    /// Parses one InetAddress at the start of `buf`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let a = Self::read(&mut r)?;
        Ok((a, r.position()))
    }

    /// Appends the encoding. `Other` is written as `Nil`: we never originate reserved types.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match *self {
            InetAddress::Nil | InetAddress::Other(_) => out.put_u8(0),
            InetAddress::Ip(IpAddr::V4(ip), port) => {
                out.put_u8(4);
                out.put_bytes(&ip.octets());
                out.put_u16(port);
            }
            InetAddress::Ip(IpAddr::V6(ip), port) => {
                out.put_u8(6);
                out.put_bytes(&ip.octets());
                out.put_u16(port);
            }
        }
    }

    /// Size of the encoding [`InetAddress::emit`] writes.
    pub fn emitted_len(&self) -> usize {
        match self {
            InetAddress::Nil | InetAddress::Other(_) => 1,
            InetAddress::Ip(IpAddr::V4(_), _) => 7,
            InetAddress::Ip(IpAddr::V6(_), _) => 19,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes plain IPv4, so endpoints compare, hash and
/// classify the same whichever socket family delivered them (H5.2).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// [`canonical_ip`] for a socket address.
pub fn canonical_socket_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_types_are_skipped_and_unknown_rejected() {
        assert_eq!(InetAddress::parse(&[0]), Ok((InetAddress::Nil, 1)));
        assert_eq!(
            InetAddress::parse(&[1, 0, 0, 0, 0, 0, 0]),
            Ok((InetAddress::Other(1), 7))
        );
        assert_eq!(
            InetAddress::parse(&[3, 0, 2, 9, 9]),
            Ok((InetAddress::Other(3), 5))
        );
        assert!(InetAddress::parse(&[3, 0, 3, 9, 9]).is_err());
        assert!(InetAddress::parse(&[5]).is_err());
        assert!(InetAddress::parse(&[4, 1, 2, 3]).is_err());
    }

    #[test]
    fn mapped_ipv4_is_canonical() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:9993".parse().unwrap();
        assert_eq!(
            canonical_socket_addr(mapped),
            "10.0.0.1:9993".parse().unwrap()
        );
    }
}
