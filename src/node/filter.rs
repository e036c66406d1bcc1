//! The rules engine (protocol 7.4): evaluates a decoded rule list ([`crate::wire::rules`])
//! against one Ethernet frame, and combines the network's rules with capabilities the way the
//! reference does (network rules first; on "no match" the first capability that accepts wins;
//! otherwise the frame is dropped).
//!
//! Evaluation is pure and allocation-free: the frame is described by a borrowed [`FrameInfo`],
//! IP headers are looked at lazily (only by the matches that need them) and every read is
//! bounds-checked, so truncated or hostile payloads simply fail to match. Randomness comes
//! from the caller's closure, so tests are deterministic.
//!
//! Reference quirks reproduced on purpose, because both ends of a link must agree:
//! - a match whose protocol does not apply (e.g. `MATCH_IPV4_SOURCE` on an ARP frame) is
//!   false *even when negated*; a few checks (ICMP type without code, lenient tag matches)
//!   are true even when negated. Port ranges on an IPv4 frame without ports are plain false.
//! - an AND match after the set already failed is skipped (no random draw).
//! - `ACTION_PRIORITY` with a matching set accepts the frame.
//! - a tag match made lenient because the remote side's tag is unknown (outbound) skips the
//!   next `ACTION_DROP`.
//! - TEE and WATCH share one copy slot: the last one taken wins.
//! - unknown rule ids up to 15 are actions and do nothing; above 15 they are matches whose
//!   result is the network's "result of unsupported match" flag (netconf `f` 0x08).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::Address;
use crate::wire::credentials::Capability;
use crate::wire::mac::Mac;
use crate::wire::rules::{ICMP_FLAG_CODE_VALID, Rule, RuleKind, Side, TagMatch};

/// `MATCH_CHARACTERISTICS` bit: the frame is inbound (received from a peer).
pub const CHARACTERISTICS_INBOUND: u64 = 0x8000_0000_0000_0000;
/// `MATCH_CHARACTERISTICS` bit: the destination MAC is multicast (broadcast included).
pub const CHARACTERISTICS_MULTICAST: u64 = 0x4000_0000_0000_0000;
/// `MATCH_CHARACTERISTICS` bit: the destination MAC is `ff:ff:ff:ff:ff:ff`.
pub const CHARACTERISTICS_BROADCAST: u64 = 0x2000_0000_0000_0000;
/// `MATCH_CHARACTERISTICS` bit: the sender holds a certificate of ownership for the frame's
/// source IP. Supplied by the caller ([`FrameInfo::sender_ip_authenticated`]).
pub const CHARACTERISTICS_SENDER_IP_AUTHENTICATED: u64 = 0x1000_0000_0000_0000;
/// `MATCH_CHARACTERISTICS` bit: the sender holds a certificate of ownership for the frame's
/// source MAC. Supplied by the caller ([`FrameInfo::sender_mac_authenticated`]).
pub const CHARACTERISTICS_SENDER_MAC_AUTHENTICATED: u64 = 0x0800_0000_0000_0000;
/// TCP flag bits: the low 12 bits are the TCP header's flag bits as on the wire (byte 12 low
/// nibble = three reserved bits and NS, byte 13 = CWR ECE URG ACK PSH RST SYN FIN).
pub const CHARACTERISTICS_TCP_RESERVED_0: u64 = 0x800;
pub const CHARACTERISTICS_TCP_RESERVED_1: u64 = 0x400;
pub const CHARACTERISTICS_TCP_RESERVED_2: u64 = 0x200;
pub const CHARACTERISTICS_TCP_NS: u64 = 0x100;
pub const CHARACTERISTICS_TCP_CWR: u64 = 0x80;
pub const CHARACTERISTICS_TCP_ECE: u64 = 0x40;
pub const CHARACTERISTICS_TCP_URG: u64 = 0x20;
pub const CHARACTERISTICS_TCP_ACK: u64 = 0x10;
pub const CHARACTERISTICS_TCP_PSH: u64 = 0x08;
pub const CHARACTERISTICS_TCP_RST: u64 = 0x04;
pub const CHARACTERISTICS_TCP_SYN: u64 = 0x02;
pub const CHARACTERISTICS_TCP_FIN: u64 = 0x01;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// IPv6 extension headers walked before giving up (the reference walks until the payload
/// ends; a cap keeps the cost per match constant). A frame with more is "not IPv6".
pub const MAX_IPV6_EXTENSION_HEADERS: usize = 16;

/// Rule ids up to this are actions (`ZT_NETWORK_RULE_ACTION__MAX_ID`).
const ACTION_MAX_ID: u8 = 15;

const IPV4_HEADER_MIN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const IP_PROTO_ICMP: u8 = 0x01;
const IP_PROTO_TCP: u8 = 0x06;
const IP_PROTO_UDP: u8 = 0x11;
const IP_PROTO_SCTP: u8 = 0x84;
const IP_PROTO_UDPLITE: u8 = 0x88;
const IP_PROTO_ICMPV6: u8 = 0x3a;

/// Which way the frame is going relative to this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from a peer, about to be delivered to the local tap.
    Inbound,
    /// From the local tap, about to be sent to a peer.
    Outbound,
}

/// Everything the rules look at for one frame. Frame length in rules
/// (`MATCH_FRAME_SIZE_RANGE`, TEE lengths, `MATCH_INTEGER_RANGE` bounds) is the length of the
/// Ethernet payload, as in the reference.
#[derive(Clone, Copy, Debug)]
pub struct FrameInfo<'a> {
    pub direction: Direction,
    /// This node's address (TEE/REDIRECT targets equal to it are special).
    pub local_address: Address,
    pub source: Address,
    pub dest: Address,
    pub mac_source: Mac,
    pub mac_dest: Mac,
    pub ethertype: u16,
    /// VLAN fields are always 0 on a ZeroTier tap (the reference never fills them).
    pub vlan_id: u16,
    pub vlan_pcp: u8,
    pub vlan_dei: u8,
    /// The Ethernet payload (no Ethernet header).
    pub payload: &'a [u8],
    /// `(tag id, value)` held by the sending member (ours when outbound).
    pub sender_tags: &'a [(u32, u32)],
    /// `(tag id, value)` held by the receiving member (ours when inbound). For the remote
    /// side, only tags whose credentials were received and checked.
    pub receiver_tags: &'a [(u32, u32)],
    /// Whether the sender has a certificate of ownership for the source IP / source MAC
    /// (`MATCH_CHARACTERISTICS` bits; the network layer computes them, default false).
    pub sender_ip_authenticated: bool,
    pub sender_mac_authenticated: bool,
}

impl<'a> FrameInfo<'a> {
    /// A frame with no tags, VLAN 0 and no ownership proofs.
    pub fn new(
        direction: Direction,
        local_address: Address,
        source: (Address, Mac),
        dest: (Address, Mac),
        ethertype: u16,
        payload: &'a [u8],
    ) -> FrameInfo<'a> {
        FrameInfo {
            direction,
            local_address,
            source: source.0,
            dest: dest.0,
            mac_source: source.1,
            mac_dest: dest.1,
            ethertype,
            vlan_id: 0,
            vlan_pcp: 0,
            vlan_dei: 0,
            payload,
            sender_tags: &[],
            receiver_tags: &[],
            sender_ip_authenticated: false,
            sender_mac_authenticated: false,
        }
    }

    /// The same frame with the members' tags.
    pub fn with_tags(
        mut self,
        sender_tags: &'a [(u32, u32)],
        receiver_tags: &'a [(u32, u32)],
    ) -> FrameInfo<'a> {
        self.sender_tags = sender_tags;
        self.receiver_tags = receiver_tags;
        self
    }

    fn inbound(&self) -> bool {
        self.direction == Direction::Inbound
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.payload.get(at).copied()
    }

    fn be16(&self, at: usize) -> Option<u16> {
        let b = self.payload.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    /// The IPv4 header if the frame is IPv4 and at least a minimal header long.
    fn ipv4(&self) -> Option<Ipv4View<'a>> {
        if self.ethertype != ETHERTYPE_IPV4 || self.payload.len() < IPV4_HEADER_MIN {
            return None;
        }
        Some(Ipv4View {
            bytes: self.payload,
        })
    }

    /// The IPv6 fixed header is present.
    fn is_ipv6_header(&self) -> bool {
        self.ethertype == ETHERTYPE_IPV6 && self.payload.len() >= IPV6_HEADER_LEN
    }

    /// Offset and protocol of the IPv6 upper-layer payload, after walking hop-by-hop,
    /// routing, destination-options and mobility headers; `None` if not IPv6 or malformed.
    fn ipv6_upper(&self) -> Option<(usize, u8)> {
        if !self.is_ipv6_header() {
            return None;
        }
        let len = self.payload.len();
        let mut pos = IPV6_HEADER_LEN;
        let mut proto = self.byte(6)?;
        for _ in 0..=MAX_IPV6_EXTENSION_HEADERS {
            if pos > len {
                return None;
            }
            match proto {
                0 | 43 | 60 | 135 => {
                    if pos.checked_add(8)? > len {
                        return None;
                    }
                    proto = self.byte(pos)?;
                    let ext_len = usize::from(self.byte(pos + 1)?) * 8 + 8;
                    pos += ext_len;
                }
                _ => return Some((pos, proto)),
            }
        }
        None
    }

    /// The 12 TCP flag bits, if this is a TCP segment whose flags are inside the frame.
    fn tcp_flags(&self) -> Option<u64> {
        let at = if let Some(ip) = self.ipv4() {
            if ip.protocol() != IP_PROTO_TCP {
                return None;
            }
            ip.header_len()
        } else {
            let (pos, proto) = self.ipv6_upper()?;
            if proto != IP_PROTO_TCP || self.payload.len() <= pos + 14 {
                return None;
            }
            pos
        };
        let high = self.byte(at + 12)?;
        let low = self.byte(at + 13)?;
        Some((u64::from(high & 0x0f) << 8) | u64::from(low))
    }

    fn characteristics(&self) -> u64 {
        let mut cf = 0;
        if self.inbound() {
            cf |= CHARACTERISTICS_INBOUND;
        }
        if self.mac_dest.is_multicast() {
            cf |= CHARACTERISTICS_MULTICAST;
        }
        if self.mac_dest.is_broadcast() {
            cf |= CHARACTERISTICS_BROADCAST;
        }
        if self.sender_ip_authenticated {
            cf |= CHARACTERISTICS_SENDER_IP_AUTHENTICATED;
        }
        if self.sender_mac_authenticated {
            cf |= CHARACTERISTICS_SENDER_MAC_AUTHENTICATED;
        }
        cf | self.tcp_flags().unwrap_or(0)
    }

    /// Local and remote tag lists (local = ours).
    fn local_remote_tags(&self) -> (TagList<'a>, TagList<'a>) {
        if self.inbound() {
            (self.receiver_tags, self.sender_tags)
        } else {
            (self.sender_tags, self.receiver_tags)
        }
    }
}

/// `(tag id, value)` pairs of one member.
type TagList<'a> = &'a [(u32, u32)];

/// A frame's IPv4 header (at least 20 bytes present).
#[derive(Clone, Copy)]
struct Ipv4View<'a> {
    bytes: &'a [u8],
}

impl Ipv4View<'_> {
    fn at(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// IHL in bytes, as claimed by the header (not checked against the frame).
    fn header_len(&self) -> usize {
        usize::from(self.at(0) & 0x0f) * 4
    }

    fn tos(&self) -> u8 {
        self.at(1)
    }

    fn protocol(&self) -> u8 {
        self.at(9)
    }

    fn source(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.at(12), self.at(13), self.at(14), self.at(15))
    }

    fn dest(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.at(16), self.at(17), self.at(18), self.at(19))
    }
}

/// A copy of the frame taken by ACTION_TEE or ACTION_WATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameCopy {
    pub to: Address,
    /// Bytes of the payload to copy (the rule's length capped at the frame, 0 = all).
    pub length: u16,
    /// WATCH (the copy is flagged as a watch in EXT_FRAME) rather than TEE.
    pub watch: bool,
}

/// How one rule list ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleVerdict {
    Accept,
    Drop,
    /// Fell off the end or hit ACTION_BREAK.
    NoMatch,
}

/// Result of evaluating one rule list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleResult {
    pub verdict: RuleVerdict,
    /// We are a TEE/WATCH/REDIRECT target of this inbound frame: accept it in spite of MAC
    /// and ZeroTier addressing checks.
    pub super_accept: bool,
    /// The last TEE or WATCH taken (they share one slot, as in the reference).
    pub copy: Option<FrameCopy>,
    /// New destination set by ACTION_REDIRECT (the verdict is then `Accept`).
    pub redirect: Option<Address>,
}

impl RuleResult {
    /// The TEE target and length, if the copy slot holds a TEE.
    pub fn tee(&self) -> Option<(Address, u16)> {
        self.copy.filter(|c| !c.watch).map(|c| (c.to, c.length))
    }

    /// The WATCH target and length, if the copy slot holds a WATCH.
    pub fn watch(&self) -> Option<(Address, u16)> {
        self.copy.filter(|c| c.watch).map(|c| (c.to, c.length))
    }
}

/// A match result before the NOT bit: most results are inverted by NOT, "hard" ones are not
/// (the reference's `hardYes`/`hardNo`).
#[derive(Clone, Copy)]
enum MatchResult {
    Plain(bool),
    Hard(bool),
}

/// Evaluates `rules` against `frame`. `unsupported_match_result` is netconf flag 0x08;
/// `rng` supplies 32-bit random numbers for MATCH_RANDOM.
pub fn evaluate(
    rules: &[Rule],
    frame: &FrameInfo<'_>,
    unsupported_match_result: bool,
    mut rng: impl FnMut() -> u32,
) -> RuleResult {
    let mut result = RuleResult {
        verdict: RuleVerdict::NoMatch,
        super_accept: false,
        copy: None,
        redirect: None,
    };
    let mut set_matches = true;
    let mut skip_drop = false;
    let frame_len = frame.payload.len();

    for rule in rules {
        let (is_action, forward) = classify(&rule.kind);
        if is_action {
            if !set_matches {
                // A frame aimed at us by TEE/WATCH/REDIRECT is super-accepted if accepted.
                if frame.inbound() && forward.is_some_and(|(to, _, _)| to == frame.local_address) {
                    result.super_accept = true;
                }
                set_matches = true;
                continue;
            }
            match &rule.kind {
                RuleKind::ActionDrop => {
                    if skip_drop {
                        skip_drop = false;
                        continue;
                    }
                    result.verdict = RuleVerdict::Drop;
                    return result;
                }
                RuleKind::ActionAccept | RuleKind::ActionPriority => {
                    result.verdict = RuleVerdict::Accept;
                    return result;
                }
                RuleKind::ActionBreak => {
                    result.verdict = RuleVerdict::NoMatch;
                    return result;
                }
                _ => {}
            }
            if let Some((to, length, kind)) = forward {
                if to == frame.source || (to == frame.local_address && !frame.inbound()) {
                    // Copying or redirecting to the sender (or to ourselves when sending)
                    // would be a loop: no-op.
                } else if to == frame.local_address {
                    result.verdict = RuleVerdict::Accept;
                    result.super_accept = true;
                    return result;
                } else if to == frame.dest {
                    // Already going there.
                } else if kind == ForwardKind::Redirect {
                    result.verdict = RuleVerdict::Accept;
                    result.redirect = Some(to);
                    return result;
                } else {
                    let length = if length == 0 {
                        frame_len
                    } else {
                        frame_len.min(usize::from(length))
                    };
                    result.copy = Some(FrameCopy {
                        to,
                        length: u16::try_from(length).unwrap_or(u16::MAX),
                        watch: kind == ForwardKind::Watch,
                    });
                }
            }
            // Unknown actions are no-ops; the set bit is already true.
            continue;
        }

        // Anything AND false is false: skip without evaluating (no random draw).
        if !set_matches && !rule.or {
            continue;
        }
        let this_matches = match match_rule(
            &rule.kind,
            frame,
            unsupported_match_result,
            result.super_accept,
            &mut skip_drop,
            &mut rng,
        ) {
            MatchResult::Plain(m) => m ^ rule.not,
            MatchResult::Hard(m) => m,
        };
        if rule.or {
            set_matches |= this_matches;
        } else {
            set_matches &= this_matches;
        }
    }
    result
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ForwardKind {
    Tee,
    Watch,
    Redirect,
}

/// The target of a TEE, WATCH or REDIRECT: address, rule length, which of the three.
type Forward = (Address, u16, ForwardKind);

/// Whether the rule is an action, and its forwarding target for TEE/WATCH/REDIRECT.
fn classify(kind: &RuleKind) -> (bool, Option<Forward>) {
    match kind {
        RuleKind::ActionTee {
            address, length, ..
        } => (true, Some((*address, *length, ForwardKind::Tee))),
        RuleKind::ActionWatch {
            address, length, ..
        } => (true, Some((*address, *length, ForwardKind::Watch))),
        RuleKind::ActionRedirect {
            address, length, ..
        } => (true, Some((*address, *length, ForwardKind::Redirect))),
        RuleKind::ActionDrop
        | RuleKind::ActionAccept
        | RuleKind::ActionBreak
        | RuleKind::ActionPriority => (true, None),
        RuleKind::Unknown { rule_type, .. } => (*rule_type <= ACTION_MAX_ID, None),
        _ => (false, None),
    }
}

fn find_tag(tags: &[(u32, u32)], id: u32) -> Option<u32> {
    tags.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
}

fn match_rule(
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
fn match_integer_range(payload: &[u8], start: u64, end: u64, index: u16, format: u8) -> bool {
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

/// The decision for a frame after network rules and capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    pub accept: bool,
    /// Accept in spite of MAC/ZeroTier addressing checks (we are a TEE/REDIRECT target).
    pub super_accept: bool,
    /// Copy requested by the network rules (sent only if accepted).
    pub network_copy: Option<FrameCopy>,
    /// Copy requested by the capability that accepted.
    pub capability_copy: Option<FrameCopy>,
    /// Send the frame here instead of its destination (and not locally).
    pub redirect: Option<Address>,
    /// Index (in the order given) of the capability that accepted.
    pub capability: Option<usize>,
}

impl Verdict {
    fn drop_frame() -> Verdict {
        Verdict {
            accept: false,
            super_accept: false,
            network_copy: None,
            capability_copy: None,
            redirect: None,
            capability: None,
        }
    }
}

/// Filters a frame as the reference does: the network's rules first; if they neither accept
/// nor drop, each capability (ours when outbound, the sender's when inbound) in order, and
/// the first that accepts admits the frame (a DROP inside a capability only ends that
/// capability); otherwise the frame is dropped. Copies are only reported for accepted
/// frames.
pub fn filter_frame<'c>(
    network_rules: &[Rule],
    sender_capabilities: impl IntoIterator<Item = &'c Capability>,
    frame: &FrameInfo<'_>,
    unsupported_match_result: bool,
    mut rng: impl FnMut() -> u32,
) -> Verdict {
    let network = evaluate(network_rules, frame, unsupported_match_result, &mut rng);
    match network.verdict {
        RuleVerdict::Drop => Verdict::drop_frame(),
        RuleVerdict::Accept => Verdict {
            accept: true,
            super_accept: network.super_accept,
            network_copy: network.copy,
            capability_copy: None,
            redirect: network.redirect,
            capability: None,
        },
        RuleVerdict::NoMatch => {
            for (i, cap) in sender_capabilities.into_iter().enumerate() {
                let r = evaluate(&cap.rules, frame, unsupported_match_result, &mut rng);
                if r.verdict == RuleVerdict::Accept {
                    return Verdict {
                        accept: true,
                        // Outbound, a capability's super-accept makes no difference.
                        super_accept: r.super_accept && frame.inbound(),
                        network_copy: network.copy,
                        capability_copy: r.copy,
                        redirect: r.redirect,
                        capability: Some(i),
                    };
                }
            }
            Verdict::drop_frame()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(v: u64) -> Address {
        Address::from_u64(v)
    }

    fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = IP_PROTO_UDP;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    fn frame(ethertype: u16, payload: &[u8]) -> FrameInfo<'_> {
        FrameInfo::new(
            Direction::Outbound,
            addr(1),
            (addr(1), Mac([0x02, 0, 0, 0, 0, 1])),
            (addr(2), Mac([0x02, 0, 0, 0, 0, 2])),
            ethertype,
            payload,
        )
    }

    fn m(kind: RuleKind) -> Rule {
        Rule::new(kind)
    }

    #[test]
    fn empty_rules_do_not_match() {
        let p = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let r = evaluate(&[], &frame(ETHERTYPE_IPV4, &p), false, || 0);
        assert_eq!(r.verdict, RuleVerdict::NoMatch);
    }

    #[test]
    fn negated_ipv4_match_on_arp_is_false() {
        // Hard "no": NOT does not turn an inapplicable match into a match.
        let rules = [
            Rule {
                not: true,
                or: false,
                kind: RuleKind::MatchIpv4 {
                    side: Side::Source,
                    ip: Ipv4Addr::new(10, 0, 0, 0),
                    prefix_bits: 8,
                },
            },
            Rule::drop_frame(),
            Rule::accept(),
        ];
        let arp = [0u8; 28];
        let r = evaluate(&rules, &frame(ETHERTYPE_ARP, &arp), false, || 0);
        assert_eq!(r.verdict, RuleVerdict::Accept);
    }

    #[test]
    fn priority_accepts() {
        let p = [0u8; 4];
        let r = evaluate(
            &[m(RuleKind::ActionPriority), Rule::drop_frame()],
            &frame(0x1234, &p),
            false,
            || 0,
        );
        assert_eq!(r.verdict, RuleVerdict::Accept);
    }

    #[test]
    fn and_after_false_skips_random_draw() {
        let mut draws = 0;
        let rules = [
            m(RuleKind::MatchEthertype(0x0800)),
            m(RuleKind::MatchRandom(u32::MAX)),
            Rule::accept(),
        ];
        let p = [0u8; 4];
        let r = evaluate(&rules, &frame(0x0806, &p), false, || {
            draws += 1;
            0
        });
        assert_eq!(r.verdict, RuleVerdict::NoMatch);
        assert_eq!(draws, 0);
    }

    #[test]
    fn unknown_low_id_is_a_noop_action() {
        let rules = [
            m(RuleKind::Unknown {
                rule_type: 9,
                field: vec![],
            }),
            Rule::accept(),
        ];
        let p = [0u8; 4];
        let r = evaluate(&rules, &frame(0x0800, &p), false, || 0);
        assert_eq!(r.verdict, RuleVerdict::Accept);
    }

    #[test]
    fn prefix_math() {
        let net = Ipv4Addr::new(192, 168, 1, 0);
        assert!(ipv4_prefix_contains(
            net,
            24,
            Ipv4Addr::new(192, 168, 1, 77)
        ));
        assert!(!ipv4_prefix_contains(
            net,
            24,
            Ipv4Addr::new(192, 168, 2, 1)
        ));
        assert!(ipv4_prefix_contains(net, 0, Ipv4Addr::new(1, 2, 3, 4)));
        assert!(!ipv4_prefix_contains(
            net,
            200,
            Ipv4Addr::new(192, 168, 1, 1)
        ));
        let net6: Ipv6Addr = "fd00:1::".parse().unwrap();
        assert!(ipv6_prefix_contains(net6, 32, "fd00:1::5".parse().unwrap()));
        assert!(!ipv6_prefix_contains(
            net6,
            32,
            "fd00:2::5".parse().unwrap()
        ));
        assert!(!ipv6_prefix_contains(
            "fd00:1::1".parse().unwrap(),
            32,
            "fd00:1::1".parse().unwrap()
        ));
        assert!(ipv6_prefix_contains(net6, 255, net6));
    }

    #[test]
    fn integer_range_reads_both_endians() {
        let p = [0x00, 0x12, 0x34, 0x56];
        // 16 bits big-endian: the reference reads at index + (8 - 2).
        assert!(match_integer_range(
            &[0, 0, 0, 0, 0, 0, 0x12, 0x34],
            0x1234,
            0x1234,
            0,
            15
        ));
        // 16 bits little-endian at index 1: 0x3412.
        assert!(match_integer_range(&p, 0x3412, 0x3412, 1, 0x80 | 15));
        assert!(!match_integer_range(&p, 0x3413, 0x4000, 1, 0x80 | 15));
        // Out of the frame reads as 0.
        assert!(match_integer_range(&p, 0, 0, 100, 63));
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        // IPv6 with one hop-by-hop header then UDP to port 53.
        let mut p = vec![0u8; 40 + 8 + 8];
        p[0] = 0x60;
        p[6] = 0; // hop-by-hop
        p[40] = IP_PROTO_UDP;
        p[41] = 0;
        p[48..50].copy_from_slice(&1000u16.to_be_bytes());
        p[50..52].copy_from_slice(&53u16.to_be_bytes());
        let f = frame(ETHERTYPE_IPV6, &p);
        assert_eq!(f.ipv6_upper(), Some((48, IP_PROTO_UDP)));
        let rules = [
            m(RuleKind::MatchIpPortRange {
                side: Side::Dest,
                start: 53,
                end: 53,
            }),
            Rule::accept(),
        ];
        assert_eq!(
            evaluate(&rules, &f, false, || 0).verdict,
            RuleVerdict::Accept
        );
        // A chain of hop-by-hop headers longer than the cap is not parsed.
        let mut long = vec![0u8; 40 + 8 * (MAX_IPV6_EXTENSION_HEADERS + 2)];
        long[0] = 0x60;
        assert_eq!(frame(ETHERTYPE_IPV6, &long).ipv6_upper(), None);
    }
}
