//! RENDEZVOUS (0x05) and PUSH_DIRECT_PATHS (0x10): the two verbs that carry physical
//! endpoints in the "address + port" layout (no InetAddress type byte of section 5.0).
//!
//! ```text
//! RENDEZVOUS:        u8 flags | address(5) | u16 port | u8 ip len (4|16) | ip
//! PUSH_DIRECT_PATHS: u16 count | count x record
//! record:            u8 flags | u16 ext len | ext | u8 addr type | u8 addr len | addr
//!                    (type 4: ip4 + u16 port, len 6; type 6: ip16 + u16 port, len 18)
//! ```
//!
//! Cap: only the first [`MAX_PUSHED_PATHS`] records of a PUSH_DIRECT_PATHS are read and kept;
//! the rest are ignored (the receiver uses at most 8 per scope and family anyway). Those kept
//! must all be complete. Records of another address type are kept opaque and skipped by
//! their length, as the reference does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::cursor::{Reader, Writer};
use crate::wire::{Address, Error, Result};

use super::MAX_PUSHED_PATHS;
use super::common::read_address;

/// A RENDEZVOUS: "contact `with` at `endpoint`" (sent by roots only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rendezvous {
    /// Always 0 from the reference.
    pub flags: u8,
    /// The peer to contact.
    pub with: Address,
    /// Where to contact it. Kept exactly as sent (an IPv4-mapped IPv6 stays IPv6); the node
    /// canonicalizes before use.
    pub endpoint: SocketAddr,
}

impl Rendezvous {
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let flags = r.u8("rendezvous flags")?;
        let with = read_address(&mut r, "rendezvous address")?;
        let port = r.u16("rendezvous port")?;
        let ip = match r.u8("rendezvous ip length")? {
            4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>("rendezvous ipv4")?)),
            16 => IpAddr::V6(Ipv6Addr::from(r.array::<16>("rendezvous ipv6")?)),
            _ => return Err(Error::Malformed("rendezvous ip length")),
        };
        Ok(Rendezvous {
            flags,
            with,
            endpoint: SocketAddr::new(ip, port),
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.flags);
        out.put_bytes(&self.with.to_bytes());
        out.put_u16(self.endpoint.port());
        match self.endpoint.ip() {
            IpAddr::V4(ip) => {
                out.put_u8(4);
                out.put_bytes(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.put_u8(16);
                out.put_bytes(&ip.octets());
            }
        }
    }
}

/// The address of one pushed path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathAddress<'a> {
    /// Type 4 or 6.
    Ip(SocketAddr),
    /// Any other type, kept opaque (`addr_type` is never 4 or 6 here).
    Other { addr_type: u8, bytes: &'a [u8] },
}

/// One PUSH_DIRECT_PATHS record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathRecord<'a> {
    /// [`PathRecord::FLAG_FORGET_PATH`], [`PathRecord::FLAG_CLUSTER_REDIRECT`].
    pub flags: u8,
    /// Extension bytes (none defined; skipped by receivers).
    pub extension: &'a [u8],
    pub address: PathAddress<'a>,
}

impl<'a> PathRecord<'a> {
    pub const FLAG_FORGET_PATH: u8 = 0x01;
    pub const FLAG_CLUSTER_REDIRECT: u8 = 0x02;

    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let flags = r.u8("pushed path flags")?;
        let ext_len = r.u16("pushed path extension length")?;
        let extension = r.bytes(usize::from(ext_len), "pushed path extension")?;
        let addr_type = r.u8("pushed path address type")?;
        let addr_len = r.u8("pushed path address length")?;
        let bytes = r.bytes(usize::from(addr_len), "pushed path address")?;
        let mut a = Reader::new(bytes);
        let address = match addr_type {
            4 => {
                let ip = Ipv4Addr::from(a.array::<4>("pushed path ipv4")?);
                let port = a.u16("pushed path port")?;
                a.finish("pushed path address length")?;
                PathAddress::Ip(SocketAddr::new(IpAddr::V4(ip), port))
            }
            6 => {
                let ip = Ipv6Addr::from(a.array::<16>("pushed path ipv6")?);
                let port = a.u16("pushed path port")?;
                a.finish("pushed path address length")?;
                PathAddress::Ip(SocketAddr::new(IpAddr::V6(ip), port))
            }
            _ => PathAddress::Other { addr_type, bytes },
        };
        Ok(PathRecord {
            flags,
            extension,
            address,
        })
    }

    /// Appends the record. Over-long opaque fields are cut at their length field's maximum.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.flags);
        super::common::put_u16_prefixed(out, self.extension);
        match self.address {
            PathAddress::Ip(SocketAddr::V4(s)) => {
                out.put_u8(4);
                out.put_u8(6);
                out.put_bytes(&s.ip().octets());
                out.put_u16(s.port());
            }
            PathAddress::Ip(SocketAddr::V6(s)) => {
                out.put_u8(6);
                out.put_u8(18);
                out.put_bytes(&s.ip().octets());
                out.put_u16(s.port());
            }
            PathAddress::Other { addr_type, bytes } => {
                let len = bytes.len().min(usize::from(u8::MAX));
                out.put_u8(addr_type);
                out.put_u8(len as u8);
                out.put_bytes(bytes.get(..len).unwrap_or_default());
            }
        }
    }
}

/// A PUSH_DIRECT_PATHS payload: a validated, zero-copy run of records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushDirectPaths<'a> {
    count: u16,
    records: &'a [u8],
}

impl<'a> PushDirectPaths<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let declared = r.u16("push direct paths count")?;
        let count = declared.min(MAX_PUSHED_PATHS as u16);
        let start = r.rest();
        for _ in 0..count {
            PathRecord::read(&mut r)?;
        }
        let used = start.len() - r.remaining();
        Ok(PushDirectPaths {
            count,
            records: start.get(..used).unwrap_or_default(),
        })
    }

    /// Number of records kept.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = PathRecord<'a>> + 'a {
        let mut r = Reader::new(self.records);
        // Every record was validated by `parse`, so reading stops only at the end.
        (0..self.count).map_while(move |_| PathRecord::read(&mut r).ok())
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.count);
        out.put_bytes(self.records);
    }

    /// Appends a PUSH_DIRECT_PATHS payload holding at most [`MAX_PUSHED_PATHS`] of `records`;
    /// returns how many were written.
    pub fn emit_records<'r>(
        records: impl IntoIterator<Item = &'r PathRecord<'r>>,
        out: &mut Vec<u8>,
    ) -> usize {
        let at = out.len();
        out.put_u16(0);
        let mut n: u16 = 0;
        for record in records.into_iter().take(MAX_PUSHED_PATHS) {
            record.emit(out);
            n += 1;
        }
        if let Some(slot) = out.get_mut(at..at + 2) {
            slot.copy_from_slice(&n.to_be_bytes());
        }
        usize::from(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_round_trip_and_bad_length() {
        for ep in ["10.0.0.2:9993", "[2001:db8::1]:443"] {
            let rv = Rendezvous {
                flags: 0,
                with: Address::from_u64(0x1122334455),
                endpoint: ep.parse().unwrap(),
            };
            let mut out = Vec::new();
            rv.emit(&mut out);
            assert_eq!(Rendezvous::parse(&out).unwrap(), rv);
        }
        assert!(Rendezvous::parse(&[0, 1, 2, 3, 4, 5, 0, 1, 5, 1, 2, 3, 4, 5]).is_err());
    }

    #[test]
    fn push_direct_paths_records() {
        let records = [
            PathRecord {
                flags: 0,
                extension: &[],
                address: PathAddress::Ip("192.168.1.2:9993".parse().unwrap()),
            },
            PathRecord {
                flags: 2,
                extension: &[9, 9],
                address: PathAddress::Ip("[fd00::1]:1234".parse().unwrap()),
            },
            PathRecord {
                flags: 0,
                extension: &[],
                address: PathAddress::Other {
                    addr_type: 9,
                    bytes: &[1, 2, 3],
                },
            },
        ];
        let mut out = Vec::new();
        assert_eq!(PushDirectPaths::emit_records(&records, &mut out), 3);
        let p = PushDirectPaths::parse(&out).unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), records);
        // A type-4 record with the wrong length is malformed; a missing record truncated.
        assert!(PushDirectPaths::parse(&[0, 1, 0, 0, 0, 4, 5, 1, 2, 3, 4, 5]).is_err());
        assert!(PushDirectPaths::parse(&[0, 2, 0, 0, 0, 9, 0]).is_err());
    }

    #[test]
    fn push_direct_paths_cap() {
        let mut out = vec![0xff, 0xff];
        for _ in 0..MAX_PUSHED_PATHS {
            out.extend_from_slice(&[0, 0, 0, 9, 0]);
        }
        out.extend_from_slice(&[0xee; 3]); // beyond the cap: never read
        let p = PushDirectPaths::parse(&out).unwrap();
        assert_eq!(p.len(), MAX_PUSHED_PATHS);
        assert_eq!(p.iter().count(), MAX_PUSHED_PATHS);
    }
}
