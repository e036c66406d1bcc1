//! A tiny classic-pcap reader for the capture tests (no libpcap): little- and big-endian
//! files, microsecond and nanosecond timestamps, link types Ethernet (1, with 802.1Q tags),
//! Linux cooked v1 (113) and v2 (276) and raw IP (101), and UDP extraction from IPv4 and
//! IPv6. Malformed input is an `Err` naming what was wrong, never a panic.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Largest record we accept (a sane snap length; the captures use 262144).
const MAX_RECORD_LEN: usize = 1 << 20;

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Record {
    /// Capture time in microseconds since the Unix epoch.
    pub micros: u64,
    /// Length on the wire (may exceed `data.len()` if the capture was truncated).
    pub orig_len: usize,
    pub data: Vec<u8>,
}

/// A whole capture file.
#[derive(Clone, Debug)]
pub struct Capture {
    pub link_type: u32,
    pub records: Vec<Record>,
}

/// One UDP datagram taken out of a capture.
#[derive(Clone, Debug)]
pub struct UdpDatagram {
    pub micros: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// A forward-only little/big-endian reader over the file bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, len: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("pcap truncated in {what} at offset {}", self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b: [u8; 4] = self
            .bytes(4, what)?
            .try_into()
            .map_err(|_| what.to_string())?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

/// Parses a classic pcap file.
pub fn parse(file: &[u8]) -> Result<Capture, String> {
    let magic: [u8; 4] = file
        .get(..4)
        .and_then(|m| m.try_into().ok())
        .ok_or("pcap: file shorter than its magic")?;
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => {
            return Err(format!(
                "pcap: unknown magic {magic:02x?} (pcapng is not supported)"
            ));
        }
    };
    let mut c = Cursor {
        buf: file,
        pos: 4,
        big_endian,
    };
    c.bytes(2 + 2 + 4 + 4, "file header")?; // version, zone, sigfigs
    let _snaplen = c.u32("snaplen")?;
    let link_type = c.u32("link type")? & 0x0fff_ffff; // upper bits: FCS info
    let mut records = Vec::new();
    while c.pos < file.len() {
        let secs = u64::from(c.u32("record seconds")?);
        let frac = u64::from(c.u32("record fraction")?);
        let incl = c.u32("record length")? as usize;
        let orig_len = c.u32("record original length")? as usize;
        if incl > MAX_RECORD_LEN {
            return Err(format!("pcap: record of {incl} bytes"));
        }
        let data = c.bytes(incl, "record data")?.to_vec();
        let micros = secs * 1_000_000 + if nanos { frac / 1000 } else { frac };
        records.push(Record {
            micros,
            orig_len,
            data,
        });
    }
    Ok(Capture { link_type, records })
}

/// Reads and parses a pcap file, failing the test loudly if it is missing.
pub fn read(path: &std::path::Path) -> Capture {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("cannot read capture {}: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn be16(b: &[u8], at: usize, what: &str) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("truncated {what}"))
}

/// The network-layer packet of a record and its ethertype, per link type; `None` for frames
/// that carry no IP (e.g. ARP).
fn network_layer(link_type: u32, frame: &[u8]) -> Result<Option<(u16, &[u8])>, String> {
    let (ethertype, rest) = match link_type {
        LINKTYPE_ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(frame, at, "ethernet header")?;
            // 802.1Q / 802.1ad tags.
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                at += 4;
                ethertype = be16(frame, at, "vlan tag")?;
            }
            (ethertype, frame.get(at + 2..))
        }
        LINKTYPE_LINUX_SLL => (be16(frame, 14, "sll header")?, frame.get(16..)),
        LINKTYPE_LINUX_SLL2 => (be16(frame, 0, "sll2 header")?, frame.get(20..)),
        LINKTYPE_RAW => match frame.first().map(|b| b >> 4) {
            Some(4) => (0x0800, Some(frame)),
            Some(6) => (0x86dd, Some(frame)),
            _ => return Ok(None),
        },
        other => return Err(format!("unsupported link type {other}")),
    };
    let rest = rest.ok_or("truncated link-layer header")?;
    Ok(matches!(ethertype, 0x0800 | 0x86dd).then_some((ethertype, rest)))
}

/// The UDP datagram inside an IPv4/IPv6 packet, if it is one (IP fragments are refused).
/// Source, destination and the UDP header + payload of one datagram.
type UdpInIp<'a> = (IpAddr, IpAddr, &'a [u8]);

fn udp_in_ip(ethertype: u16, ip: &[u8]) -> Result<Option<UdpInIp<'_>>, String> {
    let (src, dst, mut proto, mut l4): (IpAddr, IpAddr, u8, &[u8]) = if ethertype == 0x0800 {
        let ihl = usize::from(ip.first().ok_or("empty ipv4")? & 0x0f) * 4;
        let total = usize::from(be16(ip, 2, "ipv4 total length")?);
        let frag = be16(ip, 6, "ipv4 fragment field")?;
        if ihl < 20 || total < ihl || total > ip.len() {
            return Err("malformed ipv4 header".into());
        }
        if frag & 0x3fff != 0 {
            return Err("ipv4 fragment in capture (not supported)".into());
        }
        let src: [u8; 4] = ip[12..16].try_into().map_err(|_| "ipv4 src")?;
        let dst: [u8; 4] = ip[16..20].try_into().map_err(|_| "ipv4 dst")?;
        (
            IpAddr::V4(Ipv4Addr::from(src)),
            IpAddr::V4(Ipv4Addr::from(dst)),
            ip[9],
            &ip[ihl..total],
        )
    } else {
        let payload_len = usize::from(be16(ip, 4, "ipv6 payload length")?);
        let body = ip
            .get(40..40 + payload_len)
            .ok_or("truncated ipv6 packet")?;
        let src: [u8; 16] = ip[8..24].try_into().map_err(|_| "ipv6 src")?;
        let dst: [u8; 16] = ip[24..40].try_into().map_err(|_| "ipv6 dst")?;
        (
            IpAddr::V6(Ipv6Addr::from(src)),
            IpAddr::V6(Ipv6Addr::from(dst)),
            ip[6],
            body,
        )
    };
    if ethertype == 0x86dd {
        // Skip hop-by-hop, routing and destination options headers; refuse fragments.
        while matches!(proto, 0 | 43 | 60) {
            let next = *l4.first().ok_or("truncated ipv6 extension header")?;
            let len = (usize::from(*l4.get(1).ok_or("truncated ipv6 extension")?) + 1) * 8;
            l4 = l4.get(len..).ok_or("truncated ipv6 extension header")?;
            proto = next;
        }
        if proto == 44 {
            return Err("ipv6 fragment in capture (not supported)".into());
        }
    }
    if proto != 17 {
        return Ok(None);
    }
    let udp_len = usize::from(be16(l4, 4, "udp header")?);
    if udp_len < 8 || udp_len > l4.len() {
        return Err("malformed udp length".into());
    }
    Ok(Some((src, dst, &l4[..udp_len])))
}

/// Every UDP datagram of a capture, in capture order. Non-IP frames and non-UDP packets are
/// skipped; anything malformed or truncated is an error.
pub fn udp_datagrams(capture: &Capture) -> Result<Vec<UdpDatagram>, String> {
    let mut out = Vec::new();
    for (i, record) in capture.records.iter().enumerate() {
        if record.orig_len != record.data.len() {
            return Err(format!("record {i} was truncated by the capture"));
        }
        let Some((ethertype, ip)) = network_layer(capture.link_type, &record.data)
            .map_err(|e| format!("record {i}: {e}"))?
        else {
            continue;
        };
        let Some((src_ip, dst_ip, udp)) =
            udp_in_ip(ethertype, ip).map_err(|e| format!("record {i}: {e}"))?
        else {
            continue;
        };
        let src_port = be16(udp, 0, "udp source port")?;
        let dst_port = be16(udp, 2, "udp destination port")?;
        out.push(UdpDatagram {
            micros: record.micros,
            src: SocketAddr::new(src_ip, src_port),
            dst: SocketAddr::new(dst_ip, dst_port),
            payload: udp[8..].to_vec(),
        });
    }
    Ok(out)
}
