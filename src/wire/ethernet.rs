//! Ethernet II frames as the TAP device and EXT_FRAME carry them: a zero-copy view
//! [`EthernetFrame`] and the header repr [`EthernetHeader`] (destination, source, ethertype).
//!
//! ```text
//! 0 destination MAC(6)   6 source MAC(6)   12 u16 ethertype   14.. payload
//! ```

use super::cursor::{Reader, Writer};
use super::mac::Mac;
use super::{Error, Result};

/// Ethertypes the dataplane looks at.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
}

/// Header length (no VLAN tag: the TAP path never carries one).
pub const ETHERNET_HEADER_LEN: usize = 14;
const IDX_DST: usize = 0;
const IDX_SRC: usize = 6;
const IDX_ETHERTYPE: usize = 12;

/// A zero-copy view of an Ethernet frame; [`EthernetFrame::new_checked`] guarantees the full
/// 14-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>> {
        if buffer.as_ref().len() < ETHERNET_HEADER_LEN {
            return Err(Error::Truncated("ethernet header"));
        }
        Ok(EthernetFrame { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn mac_at(&self, at: usize) -> Mac {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[at..at + 6]);
        Mac(m)
    }

    pub fn dst(&self) -> Mac {
        self.mac_at(IDX_DST)
    }

    pub fn src(&self) -> Mac {
        self.mac_at(IDX_SRC)
    }

    pub fn ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[IDX_ETHERTYPE], b[IDX_ETHERTYPE + 1]])
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[ETHERNET_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, mac: Mac) {
        self.buffer.as_mut()[IDX_DST..IDX_SRC].copy_from_slice(&mac.0);
    }

    pub fn set_src(&mut self, mac: Mac) {
        self.buffer.as_mut()[IDX_SRC..IDX_ETHERTYPE].copy_from_slice(&mac.0);
    }

    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[IDX_ETHERTYPE..ETHERNET_HEADER_LEN]
            .copy_from_slice(&ethertype.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[ETHERNET_HEADER_LEN..]
    }
}

/// The Ethernet header as typed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetHeader {
    pub dst: Mac,
    pub src: Mac,
    pub ethertype: u16,
}

impl EthernetHeader {
    /// Reads the header at the start of `frame`; the payload is the rest.
    pub fn parse(frame: &[u8]) -> Result<(EthernetHeader, &[u8])> {
        let mut r = Reader::new(frame);
        let dst = Mac(r.array("ethernet destination")?);
        let src = Mac(r.array("ethernet source")?);
        let ethertype = r.u16("ethertype")?;
        Ok((
            EthernetHeader {
                dst,
                src,
                ethertype,
            },
            r.take_rest(),
        ))
    }

    /// Appends the 14 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.dst.0);
        out.put_bytes(&self.src.0);
        out.put_u16(self.ethertype);
    }

    /// Writes the header into a frame view.
    pub fn emit_into<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst(self.dst);
        frame.set_src(self.src);
        frame.set_ethertype(self.ethertype);
    }

    /// Appends header and payload: a whole frame.
    pub fn emit_frame(&self, payload: &[u8], out: &mut Vec<u8>) {
        self.emit(out);
        out.put_bytes(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn view_and_repr_agree() {
        let h = EthernetHeader {
            dst: Mac::BROADCAST,
            src: "02:7c:2d:e2:03:ee".parse().unwrap(),
            ethertype: ethertype::ARP,
        };
        let mut out = Vec::new();
        h.emit_frame(&[1, 2, 3], &mut out);
        assert_eq!(out.len(), 17);
        let f = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!(
            (f.dst(), f.src(), f.ethertype()),
            (h.dst, h.src, h.ethertype)
        );
        assert_eq!(f.payload(), [1, 2, 3]);
        let mut buf = [0u8; 14];
        let mut v = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        h.emit_into(&mut v);
        v.payload_mut();
        assert_eq!(buf[..], out[..14]);
        assert!(EthernetFrame::new_checked(&out[..13]).is_err());
        assert!(EthernetHeader::parse(&out[..13]).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: Vec<u8>) {
            let h = EthernetHeader { dst: Mac(dst), src: Mac(src), ethertype };
            let mut out = Vec::new();
            h.emit_frame(&payload, &mut out);
            let (parsed, rest) = EthernetHeader::parse(&out).unwrap();
            prop_assert_eq!(parsed, h);
            prop_assert_eq!(rest, &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = EthernetFrame::new_checked(&data[..]) {
                let (h, rest) = EthernetHeader::parse(&data).unwrap();
                prop_assert_eq!((h.dst, h.src, h.ethertype), (f.dst(), f.src(), f.ethertype()));
                prop_assert_eq!(rest, f.payload());
            }
        }
    }
}
