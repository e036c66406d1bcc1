//! Multicast verbs: MULTICAST_LIKE (0x09), MULTICAST_GATHER (0x0d), MULTICAST_FRAME (0x0e),
//! and the bodies of OK(MULTICAST_GATHER) and OK(MULTICAST_FRAME).
//!
//! ```text
//! MULTICAST_LIKE:       (u64 nwid | MAC(6) | u32 ADI) x N
//! MULTICAST_GATHER:     u64 nwid | u8 flags | MAC | u32 ADI | u32 gather limit | [COM]
//! MULTICAST_FRAME:      u64 nwid | u8 flags | [COM] | [u32 gather limit] | [source MAC]
//!                       | MAC | u32 ADI | u16 ethertype | payload
//! OK(MULTICAST_GATHER): u64 nwid | MAC | u32 ADI | gather results
//! OK(MULTICAST_FRAME):  u64 nwid | MAC | u32 ADI | u8 flags | [COM] | [gather results]
//! gather results:       u32 total known | u16 count | address(5) x count
//! ```
//!
//! Flags fields keep only the bits that are not structural: parse clears the presence bits
//! (COM, gather limit/results, source MAC) and emit sets them from the optional fields, so
//! the two can never disagree.

use crate::wire::com::CertificateOfMembership;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::mac::{Mac, MulticastGroup};
use crate::wire::{Error, NetworkId, Result};

use super::common::{AddressList, read_network_id};

/// Flag shared by the multicast verbs and EXT_FRAME: a COM follows.
pub(crate) const FLAG_COM: u8 = 0x01;

/// MULTICAST_LIKE: a zero-copy run of `(nwid, group)` subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MulticastLike<'a> {
    tuples: &'a [u8],
}

impl<'a> MulticastLike<'a> {
    /// Size of one `(nwid, MAC, ADI)` tuple.
    pub const TUPLE_LEN: usize = 18;

    /// A payload that is not a whole number of tuples is malformed.
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        if !payload.len().is_multiple_of(Self::TUPLE_LEN) {
            return Err(Error::Malformed("multicast like (partial tuple)"));
        }
        Ok(MulticastLike { tuples: payload })
    }

    /// Number of tuples.
    pub fn len(&self) -> usize {
        self.tuples.len() / Self::TUPLE_LEN
    }

    pub fn is_empty(&self) -> bool {
        self.tuples.is_empty()
    }

    /// The subscriptions, in wire order, read lazily from the payload.
    pub fn iter(&self) -> impl Iterator<Item = (NetworkId, MulticastGroup)> + 'a {
        // Each chunk is exactly one tuple, so the reads cannot fail.
        self.tuples.chunks_exact(Self::TUPLE_LEN).filter_map(|t| {
            let mut r = Reader::new(t);
            let nwid = read_network_id(&mut r, "like network id").ok()?;
            Some((nwid, MulticastGroup::read(&mut r).ok()?))
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.tuples);
    }

    /// Appends one tuple (for building a MULTICAST_LIKE).
    pub fn emit_tuple(network_id: NetworkId, group: &MulticastGroup, out: &mut Vec<u8>) {
        out.put_u64(network_id.0);
        group.emit(out);
    }
}

/// MULTICAST_GATHER: "tell me up to `gather_limit` members of `group`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MulticastGather {
    pub network_id: NetworkId,
    /// Flag bits other than [`MulticastGather::FLAG_COM`].
    pub flags: u8,
    pub group: MulticastGroup,
    pub gather_limit: u32,
    /// The sender's COM (flag 0x01).
    pub com: Option<CertificateOfMembership>,
}

impl MulticastGather {
    pub const FLAG_COM: u8 = FLAG_COM;

    pub fn parse(payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let network_id = read_network_id(&mut r, "gather network id")?;
        let flags = r.u8("gather flags")?;
        let group = MulticastGroup::read(&mut r)?;
        let gather_limit = r.u32("gather limit")?;
        let com = if flags & FLAG_COM != 0 {
            Some(CertificateOfMembership::read(&mut r)?)
        } else {
            None
        };
        Ok(MulticastGather {
            network_id,
            flags: flags & !FLAG_COM,
            group,
            gather_limit,
            com,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        let com_flag = if self.com.is_some() { FLAG_COM } else { 0 };
        out.put_u8((self.flags & !FLAG_COM) | com_flag);
        self.group.emit(out);
        out.put_u32(self.gather_limit);
        if let Some(com) = &self.com {
            com.emit(out);
        }
    }
}

/// MULTICAST_FRAME: an Ethernet frame to a multicast group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MulticastFrame<'a> {
    pub network_id: NetworkId,
    /// Flag bits other than the presence bits (e.g. [`MulticastFrame::FLAG_REPLICATE`]).
    pub flags: u8,
    /// Deprecated inline COM (flag 0x01).
    pub com: Option<CertificateOfMembership>,
    /// "Reply with up to this many members" (flag 0x02).
    pub gather_limit: Option<u32>,
    /// Explicit source MAC (flag 0x04); otherwise the sender's derived MAC.
    pub source_mac: Option<Mac>,
    pub group: MulticastGroup,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> MulticastFrame<'a> {
    pub const FLAG_COM: u8 = FLAG_COM;
    pub const FLAG_GATHER_LIMIT: u8 = 0x02;
    pub const FLAG_SOURCE_MAC: u8 = 0x04;
    /// "Please replicate": sent to multicast replicators, who fan the frame out.
    pub const FLAG_REPLICATE: u8 = 0x08;
    const PRESENCE_BITS: u8 = FLAG_COM | Self::FLAG_GATHER_LIMIT | Self::FLAG_SOURCE_MAC;

    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let network_id = read_network_id(&mut r, "multicast frame network id")?;
        let flags = r.u8("multicast frame flags")?;
        let com = if flags & FLAG_COM != 0 {
            Some(CertificateOfMembership::read(&mut r)?)
        } else {
            None
        };
        let gather_limit = if flags & Self::FLAG_GATHER_LIMIT != 0 {
            Some(r.u32("multicast frame gather limit")?)
        } else {
            None
        };
        let source_mac = if flags & Self::FLAG_SOURCE_MAC != 0 {
            Some(Mac::read(&mut r)?)
        } else {
            None
        };
        Ok(MulticastFrame {
            network_id,
            flags: flags & !Self::PRESENCE_BITS,
            com,
            gather_limit,
            source_mac,
            group: MulticastGroup::read(&mut r)?,
            ethertype: r.u16("multicast frame ethertype")?,
            payload: r.take_rest(),
        })
    }

    /// True if the sender asks a replicator to fan the frame out.
    pub fn replicate(&self) -> bool {
        self.flags & Self::FLAG_REPLICATE != 0
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        let mut flags = self.flags & !Self::PRESENCE_BITS;
        if self.com.is_some() {
            flags |= FLAG_COM;
        }
        if self.gather_limit.is_some() {
            flags |= Self::FLAG_GATHER_LIMIT;
        }
        if self.source_mac.is_some() {
            flags |= Self::FLAG_SOURCE_MAC;
        }
        out.put_u8(flags);
        if let Some(com) = &self.com {
            com.emit(out);
        }
        if let Some(limit) = self.gather_limit {
            out.put_u32(limit);
        }
        if let Some(mac) = &self.source_mac {
            out.put_bytes(&mac.0);
        }
        self.group.emit(out);
        out.put_u16(self.ethertype);
        out.put_bytes(self.payload);
    }
}

/// Members of a multicast group, as returned by a gather.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GatherResults<'a> {
    /// How many members the responder knows in total.
    pub total_known: u32,
    /// A random subset of them (the querier excluded).
    pub members: AddressList<'a>,
}

impl<'a> GatherResults<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let total_known = r.u32("gather results total")?;
        let count = usize::from(r.u16("gather results count")?);
        Ok(GatherResults {
            total_known,
            members: AddressList::read(r, count, "gather results members")?,
        })
    }

    /// Appends the results; more than `u16::MAX` members are cut to fit the count field.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let count = self.members.len().min(usize::from(u16::MAX));
        out.put_u32(self.total_known);
        out.put_u16(count as u16);
        let bytes = self.members.as_bytes();
        out.put_bytes(bytes.get(..count * 5).unwrap_or(bytes));
    }
}

/// The body of OK(MULTICAST_GATHER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OkMulticastGather<'a> {
    pub network_id: NetworkId,
    pub group: MulticastGroup,
    pub results: GatherResults<'a>,
}

impl<'a> OkMulticastGather<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        Ok(OkMulticastGather {
            network_id: read_network_id(&mut r, "ok(gather) network id")?,
            group: MulticastGroup::read(&mut r)?,
            results: GatherResults::read(&mut r)?,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        self.group.emit(out);
        self.results.emit(out);
    }
}

/// The body of OK(MULTICAST_FRAME).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OkMulticastFrame<'a> {
    pub network_id: NetworkId,
    pub group: MulticastGroup,
    /// Flag bits other than the presence bits (0x01 COM, 0x02 gather results).
    pub flags: u8,
    pub com: Option<CertificateOfMembership>,
    pub results: Option<GatherResults<'a>>,
}

impl<'a> OkMulticastFrame<'a> {
    pub const FLAG_COM: u8 = FLAG_COM;
    pub const FLAG_GATHER_RESULTS: u8 = 0x02;

    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let network_id = read_network_id(&mut r, "ok(multicast frame) network id")?;
        let group = MulticastGroup::read(&mut r)?;
        let flags = r.u8("ok(multicast frame) flags")?;
        let com = if flags & FLAG_COM != 0 {
            Some(CertificateOfMembership::read(&mut r)?)
        } else {
            None
        };
        let results = if flags & Self::FLAG_GATHER_RESULTS != 0 {
            Some(GatherResults::read(&mut r)?)
        } else {
            None
        };
        Ok(OkMulticastFrame {
            network_id,
            group,
            flags: flags & !(FLAG_COM | Self::FLAG_GATHER_RESULTS),
            com,
            results,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        self.group.emit(out);
        let mut flags = self.flags & !(FLAG_COM | Self::FLAG_GATHER_RESULTS);
        if self.com.is_some() {
            flags |= FLAG_COM;
        }
        if self.results.is_some() {
            flags |= Self::FLAG_GATHER_RESULTS;
        }
        out.put_u8(flags);
        if let Some(com) = &self.com {
            com.emit(out);
        }
        if let Some(results) = &self.results {
            results.emit(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::com::Qualifier;

    fn com() -> CertificateOfMembership {
        CertificateOfMembership::from_qualifiers(vec![Qualifier {
            id: 1,
            value: 0x8056c2e21c000001,
            max_delta: 0,
        }])
        .unwrap()
    }

    fn group() -> MulticastGroup {
        MulticastGroup::new(Mac::BROADCAST, 0x0a000001)
    }

    #[test]
    fn like_tuples() {
        let mut out = Vec::new();
        MulticastLike::emit_tuple(NetworkId(5), &group(), &mut out);
        MulticastLike::emit_tuple(NetworkId(6), &MulticastGroup::BROADCAST, &mut out);
        let like = MulticastLike::parse(&out).unwrap();
        assert_eq!(like.len(), 2);
        assert_eq!(
            like.iter().collect::<Vec<_>>(),
            [
                (NetworkId(5), group()),
                (NetworkId(6), MulticastGroup::BROADCAST)
            ]
        );
        assert!(MulticastLike::parse(&out[..17]).is_err());
        assert!(MulticastLike::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn gather_and_frame_flags() {
        let gather = MulticastGather {
            network_id: NetworkId(1),
            flags: 0,
            group: group(),
            gather_limit: 32,
            com: Some(com()),
        };
        let mut out = Vec::new();
        gather.emit(&mut out);
        assert_eq!(out[8], FLAG_COM);
        assert_eq!(MulticastGather::parse(&out).unwrap(), gather);
        // Flag set but no COM: truncated.
        assert!(MulticastGather::parse(&out[..27]).is_err());

        let frame = MulticastFrame {
            network_id: NetworkId(1),
            flags: MulticastFrame::FLAG_REPLICATE,
            com: Some(com()),
            gather_limit: Some(7),
            source_mac: Some(Mac([2, 1, 2, 3, 4, 5])),
            group: group(),
            ethertype: 0x0806,
            payload: &[1, 2, 3],
        };
        out.clear();
        frame.emit(&mut out);
        assert_eq!(out[8], 0x0f);
        let back = MulticastFrame::parse(&out).unwrap();
        assert!(back.replicate());
        assert_eq!(back, frame);
        let plain = MulticastFrame {
            com: None,
            gather_limit: None,
            source_mac: None,
            flags: 0,
            ..frame
        };
        out.clear();
        plain.emit(&mut out);
        assert_eq!(out.len(), 8 + 1 + 10 + 2 + 3);
        assert_eq!(MulticastFrame::parse(&out).unwrap(), plain);
    }

    #[test]
    fn ok_gather_results() {
        let members = [0u8, 0, 0, 0, 1, 0, 0, 0, 0, 2];
        let ok = OkMulticastGather {
            network_id: NetworkId(9),
            group: group(),
            results: GatherResults {
                total_known: 10,
                members: AddressList::new(&members).unwrap(),
            },
        };
        let mut out = Vec::new();
        ok.emit(&mut out);
        assert_eq!(OkMulticastGather::parse(&out).unwrap(), ok);
        // The count claims more members than follow.
        assert!(OkMulticastGather::parse(&out[..out.len() - 1]).is_err());

        let frame_ok = OkMulticastFrame {
            network_id: NetworkId(9),
            group: group(),
            flags: 0,
            com: Some(com()),
            results: Some(ok.results),
        };
        out.clear();
        frame_ok.emit(&mut out);
        assert_eq!(OkMulticastFrame::parse(&out).unwrap(), frame_ok);
    }
}
