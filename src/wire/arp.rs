//! ARP for IPv4 over Ethernet, as far as the dataplane needs it (protocol 9.3): parse a
//! request or reply, find the target of a request (its multicast ADI) and build a reply.
//!
//! ```text
//! 0 htype=1  2 ptype=0x0800  4 hlen=6  5 plen=4  6 op  8 sha(6) 14 spa(4) 18 tha(6) 24 tpa(4)
//! ```

use std::net::Ipv4Addr;

use super::cursor::{Reader, Writer};
use super::ethernet::{EthernetHeader, ethertype};
use super::mac::Mac;
use super::{Error, Result};

/// Length of an IPv4-over-Ethernet ARP packet (frames may pad it; the padding is ignored).
pub const ARP_IPV4_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;

/// The ARP operation field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    Request,
    Reply,
    /// Any other operation (RARP and friends), kept as is.
    Other(u16),
}

impl ArpOperation {
    pub fn from_u16(op: u16) -> ArpOperation {
        match op {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            n => ArpOperation::Other(n),
        }
    }

    pub fn to_u16(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Other(n) => n,
        }
    }
}

/// A zero-copy view of an IPv4-over-Ethernet ARP packet; [`ArpPacket::new_checked`]
/// guarantees 28 bytes and the Ethernet/IPv4 hardware and protocol fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let mut r = Reader::new(buffer.as_ref());
        let htype = r.u16("arp hardware type")?;
        let ptype = r.u16("arp protocol type")?;
        let hlen = r.u8("arp hardware length")?;
        let plen = r.u8("arp protocol length")?;
        if htype != HTYPE_ETHERNET || ptype != ethertype::IPV4 || hlen != 6 || plen != 4 {
            return Err(Error::Unsupported("arp (only IPv4 over Ethernet)"));
        }
        // Operation and the four addresses.
        r.skip(ARP_IPV4_LEN - r.position(), "arp addresses")?;
        Ok(ArpPacket { buffer })
    }

    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buffer.as_ref()[at..at + N]);
        out
    }

    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from_u16(u16::from_be_bytes(self.bytes(6)))
    }

    pub fn sender_mac(&self) -> Mac {
        Mac(self.bytes(8))
    }

    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bytes::<4>(14))
    }

    pub fn target_mac(&self) -> Mac {
        Mac(self.bytes(18))
    }

    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bytes::<4>(24))
    }
}

/// An IPv4-over-Ethernet ARP packet as typed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Parses the ARP payload of an Ethernet frame (trailing padding ignored).
    pub fn parse(payload: &[u8]) -> Result<ArpRepr> {
        let p = ArpPacket::new_checked(payload)?;
        Ok(ArpRepr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }

    /// Appends the 28-byte ARP packet.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(HTYPE_ETHERNET);
        out.put_u16(ethertype::IPV4);
        out.put_u8(6);
        out.put_u8(4);
        out.put_u16(self.operation.to_u16());
        out.put_bytes(&self.sender_mac.0);
        out.put_bytes(&self.sender_ip.octets());
        out.put_bytes(&self.target_mac.0);
        out.put_bytes(&self.target_ip.octets());
    }

    /// Appends a whole Ethernet frame carrying this packet: a request goes to broadcast, a
    /// reply to the target's MAC; the source is the sender's MAC.
    pub fn emit_frame(&self, out: &mut Vec<u8>) {
        let dst = match self.operation {
            ArpOperation::Request => Mac::BROADCAST,
            _ => self.target_mac,
        };
        EthernetHeader {
            dst,
            src: self.sender_mac,
            ethertype: ethertype::ARP,
        }
        .emit(out);
        self.emit(out);
    }

    /// The reply that `owner_mac` (owner of the requested address) sends to this request;
    /// `None` if this is not a request.
    pub fn reply(&self, owner_mac: Mac) -> Option<ArpRepr> {
        (self.operation == ArpOperation::Request).then_some(ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: owner_mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        })
    }
}

/// The target address of an IPv4 ARP request, i.e. the ADI of the multicast group the
/// request is sent to (9.3); `None` for anything else.
pub fn ipv4_request_target(payload: &[u8]) -> Option<Ipv4Addr> {
    let p = ArpPacket::new_checked(payload).ok()?;
    (p.operation() == ArpOperation::Request).then(|| p.target_ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::EthernetFrame;
    use proptest::prelude::*;

    fn request() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: "02:7c:2d:e2:03:ee".parse().unwrap(),
            sender_ip: Ipv4Addr::new(10, 147, 17, 10),
            target_mac: Mac::ZERO,
            target_ip: Ipv4Addr::new(10, 147, 17, 11),
        }
    }

    #[test]
    fn request_and_reply() {
        let req = request();
        let mut frame = Vec::new();
        req.emit_frame(&mut frame);
        assert_eq!(frame.len(), 14 + ARP_IPV4_LEN);
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.dst(), Mac::BROADCAST);
        assert_eq!(eth.ethertype(), ethertype::ARP);
        let mut padded = eth.payload().to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(ArpRepr::parse(&padded), Ok(req));
        assert_eq!(
            ipv4_request_target(&padded),
            Some(Ipv4Addr::new(10, 147, 17, 11))
        );

        let owner: Mac = "02:11:22:33:44:55".parse().unwrap();
        let reply = req.reply(owner).unwrap();
        assert_eq!(reply.reply(owner), None);
        let mut out = Vec::new();
        reply.emit_frame(&mut out);
        let eth = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!((eth.dst(), eth.src()), (req.sender_mac, owner));
        let p = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(p.operation(), ArpOperation::Reply);
        assert_eq!(p.sender_ip(), req.target_ip);
        assert_eq!(p.target_mac(), req.sender_mac);
        assert_eq!(ipv4_request_target(eth.payload()), None);
    }

    #[test]
    fn only_ipv4_over_ethernet() {
        let mut out = Vec::new();
        request().emit(&mut out);
        for (at, v) in [(1, 6), (2, 0x86), (4, 8), (5, 16)] {
            let mut bad = out.clone();
            bad[at] = v;
            assert!(ArpRepr::parse(&bad).is_err(), "byte {at}");
        }
        assert!(ArpRepr::parse(&out[..27]).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) {
            let a = ArpRepr {
                operation: ArpOperation::from_u16(op),
                sender_mac: Mac(sha),
                sender_ip: Ipv4Addr::from(spa),
                target_mac: Mac(tha),
                target_ip: Ipv4Addr::from(tpa),
            };
            let mut out = Vec::new();
            a.emit(&mut out);
            prop_assert_eq!(ArpRepr::parse(&out), Ok(a));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = ipv4_request_target(&data);
            if let Ok(a) = ArpRepr::parse(&data) {
                let mut out = Vec::new();
                a.emit(&mut out);
                prop_assert_eq!(&out[..], &data[..ARP_IPV4_LEN]);
            }
        }
    }
}
