//! The IPv6 half of the boundary policy: the fixed header, then a bounded walk of the
//! extension header chain (at most [`MAX_EXTENSION_HEADERS`] headers and
//! [`MAX_EXTENSION_BYTES`] bytes), then the upper-layer checksum when it can be checked.
//!
//! Known headers: hop-by-hop (only first, RFC 8200 4.1), routing (type 0 refused, RFC 5095),
//! fragment, destination options, AH, ESP (its content is opaque, the walk stops). Numbers
//! IANA lists as extension headers that we do not parse (mobility, HIP, shim6, the
//! experimental 253/254) are refused; any other number is an upper-layer protocol. The
//! whole chain must be in the first fragment (RFC 7112), otherwise the packet is malformed.

use std::net::IpAddr;

use super::config::{ExtensionPolicy, FragmentPolicy, Policy};
use super::counters::DropReason;
use super::inspect::{IPV6_HEADER_LEN, IpSummary, ipv6_at, verify_transport};

pub const MAX_EXTENSION_HEADERS: usize = 8;
pub const MAX_EXTENSION_BYTES: usize = 512;
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const ESP: u8 = 50;
const AH: u8 = 51;
const DESTINATION_OPTIONS: u8 = 60;
/// Extension headers we recognise as such but do not parse.
const UNSUPPORTED_EXTENSIONS: [u8; 5] = [135, 139, 140, 253, 254];

/// Where the walk ended.
struct Chain {
    /// The upper-layer protocol (or ESP / no-next-header).
    protocol: u8,
    /// Offset of the upper-layer header.
    offset: usize,
    headers: usize,
    fragment: bool,
    later_fragment: bool,
    /// False after ESP (encrypted) or a routing header with segments left (the
    /// pseudo-header would need the final destination).
    checksum_verifiable: bool,
}

pub(crate) fn inspect_ipv6(packet: &[u8], policy: &Policy) -> Result<IpSummary, DropReason> {
    let fixed = packet
        .first_chunk::<IPV6_HEADER_LEN>()
        .ok_or(DropReason::Malformed)?;
    if fixed[0] >> 4 != 6 {
        return Err(DropReason::Malformed);
    }
    let total_len = IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
    let packet = packet.get(..total_len).ok_or(DropReason::Malformed)?;
    let src = IpAddr::V6(ipv6_at(fixed, 8));
    let dst = IpAddr::V6(ipv6_at(fixed, 24));
    let chain = walk(packet, fixed[6], policy)?;
    if chain.fragment && policy.fragments == FragmentPolicy::Drop {
        return Err(DropReason::FragmentDropped);
    }
    if !chain.fragment && chain.checksum_verifiable && policy.verify_transport_checksums {
        let segment = packet.get(chain.offset..).ok_or(DropReason::Malformed)?;
        verify_transport(src, dst, chain.protocol, segment, true)?;
    }
    Ok(IpSummary {
        src,
        dst,
        protocol: chain.protocol,
        len: total_len,
        header_len: IPV6_HEADER_LEN,
        transport_offset: chain.offset,
        fragment: chain.fragment,
        later_fragment: chain.later_fragment,
        dont_fragment: true,
        extension_headers: chain.headers > 0,
    })
}

fn walk(packet: &[u8], first: u8, policy: &Policy) -> Result<Chain, DropReason> {
    let mut chain = Chain {
        protocol: first,
        offset: IPV6_HEADER_LEN,
        headers: 0,
        fragment: false,
        later_fragment: false,
        checksum_verifiable: true,
    };
    loop {
        let kind = chain.protocol;
        match kind {
            HOP_BY_HOP | ROUTING | FRAGMENT | DESTINATION_OPTIONS | AH | ESP => {}
            k if UNSUPPORTED_EXTENSIONS.contains(&k) => {
                return Err(DropReason::UnknownExtensionHeader);
            }
            _ => return Ok(chain),
        }
        if kind == HOP_BY_HOP && chain.headers != 0 {
            return Err(DropReason::Malformed);
        }
        if policy.extension_headers == ExtensionPolicy::Drop {
            return Err(DropReason::ExtensionHeaderDropped);
        }
        chain.headers += 1;
        if chain.headers > MAX_EXTENSION_HEADERS {
            return Err(DropReason::ExtensionChainTooLong);
        }
        if kind == ESP {
            chain.checksum_verifiable = false;
            return Ok(chain);
        }
        let start = chain.offset;
        let head = packet
            .get(start..)
            .and_then(|rest| rest.first_chunk::<2>())
            .ok_or(DropReason::Malformed)?;
        let len = match kind {
            FRAGMENT => 8,
            AH => (usize::from(head[1]) + 2) * 4,
            _ => (usize::from(head[1]) + 1) * 8,
        };
        let end = start + len;
        if end - IPV6_HEADER_LEN > MAX_EXTENSION_BYTES {
            return Err(DropReason::ExtensionChainTooLong);
        }
        // Every known header is at least 8 bytes long.
        let body = packet
            .get(start..end)
            .and_then(|b| b.first_chunk::<8>())
            .ok_or(DropReason::Malformed)?;
        match kind {
            ROUTING => {
                let (routing_type, segments_left) = (body[2], body[3]);
                if routing_type == 0 {
                    return Err(DropReason::RoutingHeaderType0);
                }
                if segments_left != 0 {
                    chain.checksum_verifiable = false;
                }
            }
            FRAGMENT => {
                let field = u16::from_be_bytes([body[2], body[3]]);
                let offset = field >> 3;
                let more = field & 1 != 0;
                // Offset 0 without more fragments is an atomic fragment: a whole packet.
                chain.fragment |= offset != 0 || more;
                if offset != 0 {
                    chain.later_fragment = true;
                    chain.protocol = body[0];
                    chain.offset = end;
                    return Ok(chain);
                }
            }
            _ => {}
        }
        chain.protocol = body[0];
        chain.offset = end;
    }
}
