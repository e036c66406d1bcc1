//! One MATCH rule against one frame, with the reference's semantics for each match type
//! (prefixes, ports, ICMP, characteristics, tags, integer ranges).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::frame::*;
use super::*;

fn find_tag(tags: &[(u32, u32)], id: u32) -> Option<u32> {
    tags.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
}

pub(super) fn match_rule(
    kind: &RuleKind,
    frame: &FrameInfo<'_>,
    unsupported_match_result: bool,
    super_accept: bool,
    skip_drop: &mut bool,
    rng: &mut impl FnMut() -> u32,
) -> MatchResult {
    use MatchResult::{Hard, Plain};
    let frame_len = frame.payload.len();
    match kind {
        RuleKind::MatchZerotierAddress(Side::Source, a) => Plain(*a == frame.source),
        RuleKind::MatchZerotierAddress(Side::Dest, a) => Plain(*a == frame.dest),
        RuleKind::MatchVlanId(v) => Plain(*v == frame.vlan_id),
        RuleKind::MatchVlanPcp(v) => Plain(*v == frame.vlan_pcp),
        RuleKind::MatchVlanDei(v) => Plain(*v == frame.vlan_dei),
        RuleKind::MatchMac(Side::Source, m) => Plain(Mac(*m) == frame.mac_source),
        RuleKind::MatchMac(Side::Dest, m) => Plain(Mac(*m) == frame.mac_dest),
        RuleKind::MatchIpv4 {
            side,
            ip,
            prefix_bits,
        } => match frame.ipv4() {
            Some(h) => {
                let addr = match side {
                    Side::Source => h.source(),
                    Side::Dest => h.dest(),
                };
                Plain(ipv4_prefix_contains(*ip, *prefix_bits, addr))
            }
            None => Hard(false),
        },
        RuleKind::MatchIpv6 {
            side,
            ip,
            prefix_bits,
        } => {
            if !frame.is_ipv6_header() {
                return Hard(false);
            }
            let at = match side {
                Side::Source => 8,
                Side::Dest => 24,
            };
            match frame
                .payload
                .get(at..at + 16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
            {
                Some(b) => Plain(ipv6_prefix_contains(*ip, *prefix_bits, Ipv6Addr::from(b))),
                None => Hard(false),
            }
        }
        RuleKind::MatchIpTos { mask, start, end } => {
            let tos = if let Some(h) = frame.ipv4() {
                h.tos()
            } else if frame.is_ipv6_header() {
                let b0 = frame.byte(0).unwrap_or(0);
                let b1 = frame.byte(1).unwrap_or(0);
                ((b0 << 4) & 0xf0) | ((b1 >> 4) & 0x0f)
            } else {
                return Hard(false);
            };
            let masked = tos & mask;
            Plain(masked >= *start && masked <= *end)
        }
        RuleKind::MatchIpProtocol(p) => {
            if let Some(h) = frame.ipv4() {
                Plain(h.protocol() == *p)
            } else if let Some((_, proto)) = frame.ipv6_upper() {
                Plain(proto == *p)
            } else {
                Hard(false)
            }
        }
        RuleKind::MatchEthertype(t) => Plain(*t == frame.ethertype),
        RuleKind::MatchIcmp {
            icmp_type,
            code,
            flags,
        } => {
            let at = if let Some(h) = frame.ipv4() {
                if h.protocol() != IP_PROTO_ICMP {
                    return Hard(false);
                }
                h.header_len()
            } else if let Some((pos, proto)) = frame.ipv6_upper() {
                if proto != IP_PROTO_ICMPV6 {
                    return Hard(false);
                }
                pos
            } else {
                return Hard(false);
            };
            match (frame.byte(at), frame.byte(at + 1)) {
                (Some(t), Some(c)) if t == *icmp_type => {
                    if flags & ICMP_FLAG_CODE_VALID != 0 {
                        Plain(c == *code)
                    } else {
                        Hard(true)
                    }
                }
                _ => Hard(false),
            }
        }
        RuleKind::MatchIpPortRange { side, start, end } => {
            let offset = match side {
                Side::Source => 0,
                Side::Dest => 2,
            };
            let in_range = |p: u16| p >= *start && p <= *end;
            if let Some(h) = frame.ipv4() {
                let hl = h.header_len();
                let port = if has_ports(h.protocol()) && frame_len > hl + 4 {
                    frame.be16(hl + offset)
                } else {
                    None
                };
                Plain(port.is_some_and(in_range))
            } else if let Some((pos, proto)) = frame.ipv6_upper() {
                let port = if has_ports(proto) && frame_len > pos + 4 {
                    frame.be16(pos + offset)
                } else {
                    None
                };
                // The reference's IPv6 branch never matches port 0.
                Plain(port.is_some_and(|p| p > 0 && in_range(p)))
            } else {
                Hard(false)
            }
        }
        RuleKind::MatchCharacteristics(mask) => Plain(frame.characteristics() & mask != 0),
        RuleKind::MatchFrameSizeRange { start, end } => {
            Plain(frame_len >= usize::from(*start) && frame_len <= usize::from(*end))
        }
        RuleKind::MatchRandom(p) => Plain(rng() <= *p),
        RuleKind::MatchTags { op, id, value } => {
            match_tags(*op, *id, *value, frame, super_accept, skip_drop)
        }
        RuleKind::MatchIntegerRange {
            start,
            end,
            index,
            format,
        } => Plain(match_integer_range(
            frame.payload,
            *start,
            *end,
            *index,
            *format,
        )),
        RuleKind::Unknown { .. }
        | RuleKind::ActionDrop
        | RuleKind::ActionAccept
        | RuleKind::ActionTee { .. }
        | RuleKind::ActionWatch { .. }
        | RuleKind::ActionRedirect { .. }
        | RuleKind::ActionBreak
        | RuleKind::ActionPriority => Plain(unsupported_match_result),
    }
}

/// Transport protocols whose header starts with 16-bit source and destination ports.
fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        IP_PROTO_TCP | IP_PROTO_UDP | IP_PROTO_SCTP | IP_PROTO_UDPLITE
    )
}

/// Whether `addr` is inside `net/bits` (bits above 32 count as 32).
pub fn ipv4_prefix_contains(net: Ipv4Addr, bits: u8, addr: Ipv4Addr) -> bool {
    let bits = u32::from(bits.min(32));
    if bits == 0 {
        return true;
    }
    let shift = 32 - bits;
    (u32::from(net) >> shift) == (u32::from(addr) >> shift)
}

/// Whether `addr` masked to `bits` equals `net` (bits above 128 count as 128). As in the
/// reference, `net` is not masked: a rule IP with host bits set never matches.
pub fn ipv6_prefix_contains(net: Ipv6Addr, bits: u8, addr: Ipv6Addr) -> bool {
    let bits = u32::from(bits.min(128));
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    (u128::from(addr) & mask) == u128::from(net)
}

fn match_tags(
    op: TagMatch,
    id: u32,
    value: u32,
    frame: &FrameInfo<'_>,
    super_accept: bool,
    skip_drop: &mut bool,
) -> MatchResult {
    use MatchResult::{Hard, Plain};
    let (local_tags, remote_tags) = frame.local_remote_tags();
    let inbound = frame.inbound();
    // The remote side's tag may simply not have reached us yet: on the way out we let the
    // receiver decide (and skip the next DROP); on the way in a missing tag fails.
    let mut lenient = || {
        *skip_drop = true;
        Hard(true)
    };
    match op {
        TagMatch::Sender | TagMatch::Receiver => {
            if super_accept {
                return lenient();
            }
            let remote_side =
                (op == TagMatch::Sender && inbound) || (op == TagMatch::Receiver && !inbound);
            if remote_side {
                match find_tag(remote_tags, id) {
                    Some(v) => Plain(v == value),
                    None if op == TagMatch::Receiver => lenient(),
                    None => Hard(false),
                }
            } else {
                match find_tag(local_tags, id) {
                    Some(v) => Plain(v == value),
                    None => Hard(false),
                }
            }
        }
        _ => {
            let Some(ltv) = find_tag(local_tags, id) else {
                return Hard(false);
            };
            let Some(rtv) = find_tag(remote_tags, id) else {
                return if inbound && !super_accept {
                    Hard(false)
                } else {
                    lenient()
                };
            };
            Plain(match op {
                TagMatch::Difference => ltv.abs_diff(rtv) <= value,
                TagMatch::BitwiseAnd => (ltv & rtv) == value,
                TagMatch::BitwiseOr => (ltv | rtv) == value,
                TagMatch::BitwiseXor => (ltv ^ rtv) == value,
                TagMatch::Equal => ltv == value && rtv == value,
                TagMatch::Sender | TagMatch::Receiver => false,
            })
        }
    }
}

/// MATCH_INTEGER_RANGE: an integer of `(format & 63) + 1` bits read at `index` (big-endian
/// unless `format & 0x80`), in `start ..= start + (end − start)` where the span is kept to
/// 32 bits as the reference's in-memory form does. Bytes past the frame read as 0.
pub(super) fn match_integer_range(
    payload: &[u8],
    start: u64,
    end: u64,
    index: u16,
    format: u8,
) -> bool {
    let bits = u32::from(format & 63) + 1;
    let bytes = bits.div_ceil(8) as usize;
    let mut integer: u64 = 0;
    if format & 0x80 == 0 {
        // The reference offsets big-endian reads by the unused leading bytes of a u64.
        let from = usize::from(index) + (8 - bytes);
        if let Some(b) = payload.get(from..from + bytes) {
            for byte in b {
                integer = (integer << 8) | u64::from(*byte);
            }
        }
        integer &= u64::MAX >> (64 - bits);
    } else {
        let from = usize::from(index);
        if let Some(b) = payload.get(from..from + bytes) {
            for byte in b {
                integer = (integer >> 8) | (u64::from(*byte) << 56);
            }
        }
        integer >>= 64 - bits;
    }
    let span = u64::from(end.wrapping_sub(start) as u32);
    integer >= start && integer <= start.wrapping_add(span)
}
