//! Unicast Ethernet frames: FRAME (0x06) and EXT_FRAME (0x07).
//!
//! ```text
//! FRAME:     u64 nwid | u16 ethertype | payload
//! EXT_FRAME: u64 nwid | u8 flags | [COM if flags & 0x01] | MAC to | MAC from
//!            | u16 ethertype | payload
//! ```

use crate::wire::com::CertificateOfMembership;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::mac::Mac;
use crate::wire::{NetworkId, Result};

use super::common::read_network_id;
use super::multicast::FLAG_COM;

/// A FRAME: Ethernet payload between two members, MACs implied by the addresses (9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub network_id: NetworkId,
    pub ethertype: u16,
    /// The Ethernet payload (no Ethernet header); may be empty.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        Ok(Frame {
            network_id: read_network_id(&mut r, "frame network id")?,
            ethertype: r.u16("frame ethertype")?,
            payload: r.take_rest(),
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        out.put_u16(self.ethertype);
        out.put_bytes(self.payload);
    }
}

/// An EXT_FRAME: a frame with full Ethernet addressing (bridging, TEE/REDIRECT/WATCH copies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtFrame<'a> {
    pub network_id: NetworkId,
    /// Flag bits other than [`ExtFrame::FLAG_COM`]: the subtype and the ack request.
    pub flags: u8,
    /// Deprecated inline COM (flag 0x01), still sent by old peers.
    pub com: Option<CertificateOfMembership>,
    pub to: Mac,
    pub from: Mac,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> ExtFrame<'a> {
    pub const FLAG_COM: u8 = FLAG_COM;
    /// 3-bit subtype: 0 normal, 1 TEE out, 2 REDIRECT out, 3 WATCH out, 4 TEE in,
    /// 5 REDIRECT in, 6 WATCH in.
    pub const SUBTYPE_MASK: u8 = 0x0e;
    /// The sender wants OK(EXT_FRAME) back.
    pub const FLAG_ACK_REQUESTED: u8 = 0x10;

    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let network_id = read_network_id(&mut r, "ext frame network id")?;
        let flags = r.u8("ext frame flags")?;
        let com = if flags & FLAG_COM != 0 {
            Some(CertificateOfMembership::read(&mut r)?)
        } else {
            None
        };
        Ok(ExtFrame {
            network_id,
            flags: flags & !FLAG_COM,
            com,
            to: Mac::read(&mut r)?,
            from: Mac::read(&mut r)?,
            ethertype: r.u16("ext frame ethertype")?,
            payload: r.take_rest(),
        })
    }

    /// The subtype (0 = a normal frame).
    pub fn subtype(&self) -> u8 {
        (self.flags & Self::SUBTYPE_MASK) >> 1
    }

    pub fn ack_requested(&self) -> bool {
        self.flags & Self::FLAG_ACK_REQUESTED != 0
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        let com_flag = if self.com.is_some() { FLAG_COM } else { 0 };
        out.put_u8((self.flags & !FLAG_COM) | com_flag);
        if let Some(com) = &self.com {
            com.emit(out);
        }
        self.to.emit(out);
        self.from.emit(out);
        out.put_u16(self.ethertype);
        out.put_bytes(self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_needs_ethertype() {
        assert!(Frame::parse(&[0; 9]).is_err());
        let f = Frame::parse(&[0, 0, 0, 0, 0, 0, 0, 1, 0x08, 0x00]).unwrap();
        assert_eq!(
            (f.network_id, f.ethertype, f.payload),
            (NetworkId(1), 0x0800, &[][..])
        );
    }

    #[test]
    fn ext_frame_flags_and_com() {
        use crate::wire::com::Qualifier;
        let com = CertificateOfMembership::from_qualifiers(vec![Qualifier {
            id: 0,
            value: 5,
            max_delta: 10,
        }])
        .unwrap();
        let f = ExtFrame {
            network_id: NetworkId(1),
            flags: ExtFrame::FLAG_ACK_REQUESTED | (2 << 1),
            com: Some(com),
            to: Mac([2, 0, 0, 0, 0, 1]),
            from: Mac([2, 0, 0, 0, 0, 2]),
            ethertype: 0x86dd,
            payload: b"abc",
        };
        let mut out = Vec::new();
        f.emit(&mut out);
        assert_eq!(out[8], 0x15);
        let back = ExtFrame::parse(&out).unwrap();
        assert_eq!(back, f);
        assert!(back.ack_requested());
        assert_eq!(back.subtype(), 2);
        // A COM flag with garbage where the COM should be is refused.
        out[9] = 2;
        assert!(ExtFrame::parse(&out).is_err());
    }
}
