//! The rules engine encoding (netconf `R`, and the rules inside capabilities): each rule is
//! `u8 type ‖ u8 field length ‖ field`, where the type byte's low 6 bits name the rule, `0x80`
//! inverts a match (NOT) and `0x40` combines it with the previous match by OR instead of AND.
//!
//! Unknown rule types are kept with their field bytes and skipped using the length byte, as the
//! reference does, so a rule set from a newer controller still parses. This module also owns
//! the controller's JSON form of a rule (`{"type":"MATCH_ETHERTYPE","etherType":2048,...}`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value, json};

use super::cursor::{Reader, Writer};
use super::{Address, Error, Result};

/// Most rules a network config may carry (`ZT_MAX_NETWORK_RULES`).
pub const MAX_NETWORK_RULES: usize = 1024;
/// Most rules one capability may carry (`ZT_MAX_CAPABILITY_RULES`).
pub const MAX_CAPABILITY_RULES: usize = 64;
/// Longest field a rule can have: its length is one byte.
pub const MAX_FIELD_LEN: usize = 255;

/// Type-byte bit: invert the result of this match.
pub const FLAG_NOT: u8 = 0x80;
/// Type-byte bit: OR this match into the running result instead of AND.
pub const FLAG_OR: u8 = 0x40;
/// Type-byte mask for the rule id.
pub const TYPE_MASK: u8 = 0x3f;

/// `MATCH_ICMP` flag: the ICMP code is significant.
pub const ICMP_FLAG_CODE_VALID: u8 = 0x01;

/// Every rule id the protocol defines (section 7.4), with its wire id and JSON name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RuleType {
    ActionDrop = 0,
    ActionAccept = 1,
    ActionTee = 2,
    ActionWatch = 3,
    ActionRedirect = 4,
    ActionBreak = 5,
    ActionPriority = 6,
    MatchSourceZerotierAddress = 24,
    MatchDestZerotierAddress = 25,
    MatchVlanId = 26,
    MatchVlanPcp = 27,
    MatchVlanDei = 28,
    MatchMacSource = 29,
    MatchMacDest = 30,
    MatchIpv4Source = 31,
    MatchIpv4Dest = 32,
    MatchIpv6Source = 33,
    MatchIpv6Dest = 34,
    MatchIpTos = 35,
    MatchIpProtocol = 36,
    MatchEthertype = 37,
    MatchIcmp = 38,
    MatchIpSourcePortRange = 39,
    MatchIpDestPortRange = 40,
    MatchCharacteristics = 41,
    MatchFrameSizeRange = 42,
    MatchRandom = 43,
    MatchTagsDifference = 44,
    MatchTagsBitwiseAnd = 45,
    MatchTagsBitwiseOr = 46,
    MatchTagsBitwiseXor = 47,
    MatchTagsEqual = 48,
    MatchTagSender = 49,
    MatchTagReceiver = 50,
    MatchIntegerRange = 51,
}

impl RuleType {
    /// Every defined rule type, in id order.
    pub const ALL: [RuleType; 35] = [
        RuleType::ActionDrop,
        RuleType::ActionAccept,
        RuleType::ActionTee,
        RuleType::ActionWatch,
        RuleType::ActionRedirect,
        RuleType::ActionBreak,
        RuleType::ActionPriority,
        RuleType::MatchSourceZerotierAddress,
        RuleType::MatchDestZerotierAddress,
        RuleType::MatchVlanId,
        RuleType::MatchVlanPcp,
        RuleType::MatchVlanDei,
        RuleType::MatchMacSource,
        RuleType::MatchMacDest,
        RuleType::MatchIpv4Source,
        RuleType::MatchIpv4Dest,
        RuleType::MatchIpv6Source,
        RuleType::MatchIpv6Dest,
        RuleType::MatchIpTos,
        RuleType::MatchIpProtocol,
        RuleType::MatchEthertype,
        RuleType::MatchIcmp,
        RuleType::MatchIpSourcePortRange,
        RuleType::MatchIpDestPortRange,
        RuleType::MatchCharacteristics,
        RuleType::MatchFrameSizeRange,
        RuleType::MatchRandom,
        RuleType::MatchTagsDifference,
        RuleType::MatchTagsBitwiseAnd,
        RuleType::MatchTagsBitwiseOr,
        RuleType::MatchTagsBitwiseXor,
        RuleType::MatchTagsEqual,
        RuleType::MatchTagSender,
        RuleType::MatchTagReceiver,
        RuleType::MatchIntegerRange,
    ];

    /// The 6-bit wire id.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The rule type with wire id `id` (NOT/OR bits must already be masked off).
    pub fn from_id(id: u8) -> Option<RuleType> {
        RuleType::ALL.iter().copied().find(|t| t.id() == id)
    }

    /// Actions end or redirect evaluation; everything else is a match.
    pub fn is_action(self) -> bool {
        self.id() <= RuleType::ActionPriority.id()
    }

    /// The name the controller's JSON uses (`"type"` of a rule object). The reference calls
    /// the integer range match `"INTEGER_RANGE"`, without the `MATCH_` prefix.
    pub fn json_name(self) -> &'static str {
        match self {
            RuleType::ActionDrop => "ACTION_DROP",
            RuleType::ActionAccept => "ACTION_ACCEPT",
            RuleType::ActionTee => "ACTION_TEE",
            RuleType::ActionWatch => "ACTION_WATCH",
            RuleType::ActionRedirect => "ACTION_REDIRECT",
            RuleType::ActionBreak => "ACTION_BREAK",
            RuleType::ActionPriority => "ACTION_PRIORITY",
            RuleType::MatchSourceZerotierAddress => "MATCH_SOURCE_ZEROTIER_ADDRESS",
            RuleType::MatchDestZerotierAddress => "MATCH_DEST_ZEROTIER_ADDRESS",
            RuleType::MatchVlanId => "MATCH_VLAN_ID",
            RuleType::MatchVlanPcp => "MATCH_VLAN_PCP",
            RuleType::MatchVlanDei => "MATCH_VLAN_DEI",
            RuleType::MatchMacSource => "MATCH_MAC_SOURCE",
            RuleType::MatchMacDest => "MATCH_MAC_DEST",
            RuleType::MatchIpv4Source => "MATCH_IPV4_SOURCE",
            RuleType::MatchIpv4Dest => "MATCH_IPV4_DEST",
            RuleType::MatchIpv6Source => "MATCH_IPV6_SOURCE",
            RuleType::MatchIpv6Dest => "MATCH_IPV6_DEST",
            RuleType::MatchIpTos => "MATCH_IP_TOS",
            RuleType::MatchIpProtocol => "MATCH_IP_PROTOCOL",
            RuleType::MatchEthertype => "MATCH_ETHERTYPE",
            RuleType::MatchIcmp => "MATCH_ICMP",
            RuleType::MatchIpSourcePortRange => "MATCH_IP_SOURCE_PORT_RANGE",
            RuleType::MatchIpDestPortRange => "MATCH_IP_DEST_PORT_RANGE",
            RuleType::MatchCharacteristics => "MATCH_CHARACTERISTICS",
            RuleType::MatchFrameSizeRange => "MATCH_FRAME_SIZE_RANGE",
            RuleType::MatchRandom => "MATCH_RANDOM",
            RuleType::MatchTagsDifference => "MATCH_TAGS_DIFFERENCE",
            RuleType::MatchTagsBitwiseAnd => "MATCH_TAGS_BITWISE_AND",
            RuleType::MatchTagsBitwiseOr => "MATCH_TAGS_BITWISE_OR",
            RuleType::MatchTagsBitwiseXor => "MATCH_TAGS_BITWISE_XOR",
            RuleType::MatchTagsEqual => "MATCH_TAGS_EQUAL",
            RuleType::MatchTagSender => "MATCH_TAG_SENDER",
            RuleType::MatchTagReceiver => "MATCH_TAG_RECEIVER",
            RuleType::MatchIntegerRange => "INTEGER_RANGE",
        }
    }

    /// Inverse of [`RuleType::json_name`]; also accepts `"MATCH_INTEGER_RANGE"`.
    pub fn from_json_name(name: &str) -> Option<RuleType> {
        if name == "MATCH_INTEGER_RANGE" {
            return Some(RuleType::MatchIntegerRange);
        }
        RuleType::ALL
            .iter()
            .copied()
            .find(|t| t.json_name() == name)
    }
}

/// The operation of the seven tag matches (ids 44-50); they share one field layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagMatch {
    Difference,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    Equal,
    Sender,
    Receiver,
}

impl TagMatch {
    fn rule_type(self) -> RuleType {
        match self {
            TagMatch::Difference => RuleType::MatchTagsDifference,
            TagMatch::BitwiseAnd => RuleType::MatchTagsBitwiseAnd,
            TagMatch::BitwiseOr => RuleType::MatchTagsBitwiseOr,
            TagMatch::BitwiseXor => RuleType::MatchTagsBitwiseXor,
            TagMatch::Equal => RuleType::MatchTagsEqual,
            TagMatch::Sender => RuleType::MatchTagSender,
            TagMatch::Receiver => RuleType::MatchTagReceiver,
        }
    }

    fn from_rule_type(t: RuleType) -> Option<TagMatch> {
        Some(match t {
            RuleType::MatchTagsDifference => TagMatch::Difference,
            RuleType::MatchTagsBitwiseAnd => TagMatch::BitwiseAnd,
            RuleType::MatchTagsBitwiseOr => TagMatch::BitwiseOr,
            RuleType::MatchTagsBitwiseXor => TagMatch::BitwiseXor,
            RuleType::MatchTagsEqual => TagMatch::Equal,
            RuleType::MatchTagSender => TagMatch::Sender,
            RuleType::MatchTagReceiver => TagMatch::Receiver,
            _ => return None,
        })
    }
}

/// Which end of the frame a match looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Source,
    Dest,
}

/// What a rule does or matches, with its field decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    ActionDrop,
    ActionAccept,
    /// Copy the frame to `address` (first `length` bytes; 0 = all) and continue.
    ActionTee {
        address: Address,
        flags: u32,
        length: u16,
    },
    /// Like TEE, but only frames that pass the rest of the rules are copied.
    ActionWatch {
        address: Address,
        flags: u32,
        length: u16,
    },
    /// Send the frame to `address` instead (`length` is carried but unused).
    ActionRedirect {
        address: Address,
        flags: u32,
        length: u16,
    },
    ActionBreak,
    /// QoS bucket selection; 1.14.1 writes and reads it with an empty field.
    ActionPriority,
    MatchZerotierAddress(Side, Address),
    MatchVlanId(u16),
    MatchVlanPcp(u8),
    MatchVlanDei(u8),
    MatchMac(Side, [u8; 6]),
    MatchIpv4 {
        side: Side,
        ip: Ipv4Addr,
        prefix_bits: u8,
    },
    MatchIpv6 {
        side: Side,
        ip: Ipv6Addr,
        prefix_bits: u8,
    },
    MatchIpTos {
        mask: u8,
        start: u8,
        end: u8,
    },
    MatchIpProtocol(u8),
    MatchEthertype(u16),
    /// `flags & ICMP_FLAG_CODE_VALID` says whether `code` matters (kept raw for signatures).
    MatchIcmp {
        icmp_type: u8,
        code: u8,
        flags: u8,
    },
    MatchIpPortRange {
        side: Side,
        start: u16,
        end: u16,
    },
    /// Bit mask of frame characteristics (inbound, multicast, broadcast, TCP flags, ...).
    MatchCharacteristics(u64),
    MatchFrameSizeRange {
        start: u16,
        end: u16,
    },
    /// Matches with probability `p / 2^32`.
    MatchRandom(u32),
    MatchTags {
        op: TagMatch,
        id: u32,
        value: u32,
    },
    /// An integer read from the frame at byte `index`; `format` bit 7 = little-endian, low 6
    /// bits = width in bits − 1. `end` is absolute on the wire.
    MatchIntegerRange {
        start: u64,
        end: u64,
        index: u16,
        format: u8,
    },
    /// A rule id this implementation does not know (`rule_type` is the 6-bit id; it must not
    /// be one of [`RuleType::ALL`]), kept with its field so it survives a round trip.
    Unknown {
        rule_type: u8,
        field: Vec<u8>,
    },
}

/// One rule: what it does plus the NOT and OR bits of its type byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub not: bool,
    pub or: bool,
    pub kind: RuleKind,
}

impl Rule {
    /// A rule without the NOT and OR bits.
    pub fn new(kind: RuleKind) -> Rule {
        Rule {
            not: false,
            or: false,
            kind,
        }
    }

    /// `ACTION_ACCEPT`: the whole default rule set of a network.
    pub fn accept() -> Rule {
        Rule::new(RuleKind::ActionAccept)
    }

    /// `ACTION_DROP`.
    pub fn drop_frame() -> Rule {
        Rule::new(RuleKind::ActionDrop)
    }

    /// The rule set the controller uses when none is configured: a single ACCEPT.
    pub fn default_rules() -> Vec<Rule> {
        vec![Rule::accept()]
    }

    /// The defined rule type, or `None` for [`RuleKind::Unknown`].
    pub fn rule_type(&self) -> Option<RuleType> {
        self.kind.rule_type()
    }

    /// The type byte as written: the 6-bit id with the NOT (0x80) and OR (0x40) bits.
    pub fn type_byte(&self) -> u8 {
        let mut t = self.kind.id() & TYPE_MASK;
        if self.not {
            t |= FLAG_NOT;
        }
        if self.or {
            t |= FLAG_OR;
        }
        t
    }

    /// Reads one rule. A known type whose field is shorter than its layout is malformed; a
    /// longer field has its extra bytes skipped (room for future extension, as the reference).
    pub fn read(r: &mut Reader<'_>) -> Result<Rule> {
        let type_byte = r.u8("rule type")?;
        let field_len = usize::from(r.u8("rule field length")?);
        let field = r.bytes(field_len, "rule field")?;
        let id = type_byte & TYPE_MASK;
        let kind = match RuleType::from_id(id) {
            Some(t) => RuleKind::decode(t, field)?,
            None => RuleKind::Unknown {
                rule_type: id,
                field: field.to_vec(),
            },
        };
        Ok(Rule {
            not: type_byte & FLAG_NOT != 0,
            or: type_byte & FLAG_OR != 0,
            kind,
        })
    }

    /// Parses one rule at the start of `buf`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Rule, usize)> {
        let mut r = Reader::new(buf);
        let rule = Self::read(&mut r)?;
        Ok((rule, r.position()))
    }

    /// Appends the rule in the canonical layout the reference writes. An unknown rule's field
    /// is cut to [`MAX_FIELD_LEN`] bytes (it came from a one-byte length, so it never is
    /// longer unless built by hand).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.type_byte());
        let len_at = out.len();
        out.put_u8(0);
        // Every known field is at most 19 bytes and unknown fields are cut to 255.
        self.kind.encode_field(out);
        let field_len = out.len() - len_at - 1;
        if let Some(len_byte) = out.get_mut(len_at) {
            *len_byte = u8::try_from(field_len).unwrap_or(u8::MAX);
        }
    }

    /// The controller's JSON object for this rule, as the reference renders it: matches carry
    /// `"not"` and `"or"`, actions do not.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        let name = match self.rule_type() {
            Some(t) => t.json_name(),
            None => "UNKNOWN",
        };
        o.insert("type".into(), json!(name));
        match &self.kind {
            RuleKind::ActionDrop
            | RuleKind::ActionAccept
            | RuleKind::ActionBreak
            | RuleKind::ActionPriority => {}
            RuleKind::ActionTee {
                address,
                flags,
                length,
            }
            | RuleKind::ActionWatch {
                address,
                flags,
                length,
            } => {
                o.insert("address".into(), json!(address.to_string()));
                o.insert("flags".into(), json!(flags));
                o.insert("length".into(), json!(length));
            }
            RuleKind::ActionRedirect { address, flags, .. } => {
                o.insert("address".into(), json!(address.to_string()));
                o.insert("flags".into(), json!(flags));
            }
            RuleKind::MatchZerotierAddress(_, a) => {
                o.insert("zt".into(), json!(a.to_string()));
            }
            RuleKind::MatchVlanId(v) => {
                o.insert("vlanId".into(), json!(v));
            }
            RuleKind::MatchVlanPcp(v) => {
                o.insert("vlanPcp".into(), json!(v));
            }
            RuleKind::MatchVlanDei(v) => {
                o.insert("vlanDei".into(), json!(v));
            }
            RuleKind::MatchMac(_, mac) => {
                let text: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
                o.insert("mac".into(), json!(text.join(":")));
            }
            RuleKind::MatchIpv4 {
                ip, prefix_bits, ..
            } => {
                o.insert("ip".into(), json!(format!("{ip}/{prefix_bits}")));
            }
            RuleKind::MatchIpv6 {
                ip, prefix_bits, ..
            } => {
                o.insert("ip".into(), json!(format!("{ip}/{prefix_bits}")));
            }
            RuleKind::MatchIpTos { mask, start, end } => {
                o.insert("mask".into(), json!(mask));
                o.insert("start".into(), json!(start));
                o.insert("end".into(), json!(end));
            }
            RuleKind::MatchIpProtocol(p) => {
                o.insert("ipProtocol".into(), json!(p));
            }
            RuleKind::MatchEthertype(e) => {
                o.insert("etherType".into(), json!(e));
            }
            RuleKind::MatchIcmp {
                icmp_type,
                code,
                flags,
            } => {
                o.insert("icmpType".into(), json!(icmp_type));
                let code = if flags & ICMP_FLAG_CODE_VALID != 0 {
                    json!(code)
                } else {
                    Value::Null
                };
                o.insert("icmpCode".into(), code);
            }
            RuleKind::MatchIpPortRange { start, end, .. }
            | RuleKind::MatchFrameSizeRange { start, end } => {
                o.insert("start".into(), json!(start));
                o.insert("end".into(), json!(end));
            }
            RuleKind::MatchCharacteristics(mask) => {
                o.insert("mask".into(), json!(format!("{mask:016x}")));
            }
            RuleKind::MatchRandom(p) => {
                o.insert("probability".into(), json!(p));
            }
            RuleKind::MatchTags { id, value, .. } => {
                o.insert("id".into(), json!(id));
                o.insert("value".into(), json!(value));
            }
            RuleKind::MatchIntegerRange {
                start,
                end,
                index,
                format,
            } => {
                o.insert("start".into(), json!(format!("{start:016x}")));
                o.insert("end".into(), json!(format!("{end:016x}")));
                o.insert("idx".into(), json!(index));
                o.insert("little".into(), json!(format & 0x80 != 0));
                o.insert("bits".into(), json!(u32::from(format & 63) + 1));
            }
            RuleKind::Unknown { rule_type, .. } => {
                o.insert("ruleType".into(), json!(rule_type));
            }
        }
        let is_action = self.rule_type().is_some_and(RuleType::is_action);
        if !is_action {
            o.insert("not".into(), json!(self.not));
            o.insert("or".into(), json!(self.or));
        }
        Value::Object(o)
    }

    /// Parses the controller's JSON object for a rule with the reference's leniency: missing
    /// fields default to 0, numbers are truncated to the field width, prefix lengths are
    /// clamped. `None` if `v` is not an object or names no known rule type.
    pub fn from_json(v: &Value) -> Option<Rule> {
        let o = v.as_object()?;
        let rule_type = RuleType::from_json_name(o.get("type")?.as_str()?)?;
        let not = json_bool(o.get("not"));
        let or = json_bool(o.get("or"));
        let int = |key: &str, default: u64| json_u64(o.get(key)).unwrap_or(default);
        let forward = |o: &Map<String, Value>| {
            let address = Address::from_u64(json_hex(o.get("address")).unwrap_or(0));
            let flags = (int("flags", 0) & 0xffff_ffff) as u32;
            let length = (int("length", 0) & 0xffff) as u16;
            (address, flags, length)
        };
        let kind = match rule_type {
            RuleType::ActionDrop => RuleKind::ActionDrop,
            RuleType::ActionAccept => RuleKind::ActionAccept,
            RuleType::ActionBreak => RuleKind::ActionBreak,
            RuleType::ActionPriority => RuleKind::ActionPriority,
            RuleType::ActionTee => {
                let (address, flags, length) = forward(o);
                RuleKind::ActionTee {
                    address,
                    flags,
                    length,
                }
            }
            RuleType::ActionWatch => {
                let (address, flags, length) = forward(o);
                RuleKind::ActionWatch {
                    address,
                    flags,
                    length,
                }
            }
            RuleType::ActionRedirect => {
                let (address, flags, _) = forward(o);
                RuleKind::ActionRedirect {
                    address,
                    flags,
                    length: 0,
                }
            }
            RuleType::MatchSourceZerotierAddress | RuleType::MatchDestZerotierAddress => {
                let side = side_of(rule_type);
                RuleKind::MatchZerotierAddress(
                    side,
                    Address::from_u64(json_hex(o.get("zt")).unwrap_or(0)),
                )
            }
            RuleType::MatchVlanId => RuleKind::MatchVlanId((int("vlanId", 0) & 0xffff) as u16),
            RuleType::MatchVlanPcp => RuleKind::MatchVlanPcp((int("vlanPcp", 0) & 0xff) as u8),
            RuleType::MatchVlanDei => RuleKind::MatchVlanDei((int("vlanDei", 0) & 0xff) as u8),
            RuleType::MatchMacSource | RuleType::MatchMacDest => {
                let text = o.get("mac").and_then(Value::as_str).unwrap_or("0");
                RuleKind::MatchMac(side_of(rule_type), parse_mac_lenient(text))
            }
            RuleType::MatchIpv4Source | RuleType::MatchIpv4Dest => {
                let text = o.get("ip").and_then(Value::as_str).unwrap_or("0.0.0.0");
                let (ip, bits) = parse_ip_prefix(text);
                let ip = match ip {
                    Some(IpAddr::V4(v4)) => v4,
                    _ => Ipv4Addr::UNSPECIFIED,
                };
                RuleKind::MatchIpv4 {
                    side: side_of(rule_type),
                    ip,
                    prefix_bits: bits.min(32),
                }
            }
            RuleType::MatchIpv6Source | RuleType::MatchIpv6Dest => {
                let text = o.get("ip").and_then(Value::as_str).unwrap_or("::0");
                let (ip, bits) = parse_ip_prefix(text);
                let ip = match ip {
                    Some(IpAddr::V6(v6)) => v6,
                    _ => Ipv6Addr::UNSPECIFIED,
                };
                RuleKind::MatchIpv6 {
                    side: side_of(rule_type),
                    ip,
                    prefix_bits: bits.min(128),
                }
            }
            RuleType::MatchIpTos => RuleKind::MatchIpTos {
                mask: (int("mask", 0) & 0xff) as u8,
                start: (int("start", 0) & 0xff) as u8,
                end: (int("end", 0) & 0xff) as u8,
            },
            RuleType::MatchIpProtocol => {
                RuleKind::MatchIpProtocol((int("ipProtocol", 0) & 0xff) as u8)
            }
            RuleType::MatchEthertype => {
                RuleKind::MatchEthertype((int("etherType", 0) & 0xffff) as u16)
            }
            RuleType::MatchIcmp => {
                let icmp_type = (int("icmpType", 0) & 0xff) as u8;
                match o.get("icmpCode") {
                    None | Some(Value::Null) => RuleKind::MatchIcmp {
                        icmp_type,
                        code: 0,
                        flags: 0,
                    },
                    Some(code) => RuleKind::MatchIcmp {
                        icmp_type,
                        code: (json_u64(Some(code)).unwrap_or(0) & 0xff) as u8,
                        flags: ICMP_FLAG_CODE_VALID,
                    },
                }
            }
            RuleType::MatchIpSourcePortRange | RuleType::MatchIpDestPortRange => {
                let start = (int("start", 0) & 0xffff) as u16;
                RuleKind::MatchIpPortRange {
                    side: side_of(rule_type),
                    start,
                    end: (int("end", u64::from(start)) & 0xffff) as u16,
                }
            }
            RuleType::MatchCharacteristics => {
                RuleKind::MatchCharacteristics(json_hex(o.get("mask")).unwrap_or(0))
            }
            RuleType::MatchFrameSizeRange => {
                let start = (int("start", 0) & 0xffff) as u16;
                RuleKind::MatchFrameSizeRange {
                    start,
                    end: (int("end", u64::from(start)) & 0xffff) as u16,
                }
            }
            RuleType::MatchRandom => {
                RuleKind::MatchRandom((int("probability", 0) & 0xffff_ffff) as u32)
            }
            RuleType::MatchTagsDifference
            | RuleType::MatchTagsBitwiseAnd
            | RuleType::MatchTagsBitwiseOr
            | RuleType::MatchTagsBitwiseXor
            | RuleType::MatchTagsEqual
            | RuleType::MatchTagSender
            | RuleType::MatchTagReceiver => RuleKind::MatchTags {
                op: TagMatch::from_rule_type(rule_type)?,
                id: (int("id", 0) & 0xffff_ffff) as u32,
                value: (int("value", 0) & 0xffff_ffff) as u32,
            },
            RuleType::MatchIntegerRange => {
                let start = json_hex(o.get("start")).unwrap_or(0);
                let end = json_hex(o.get("end")).unwrap_or(0);
                let mut format = if json_bool(o.get("little")) { 0x80 } else { 0 };
                format |= (int("bits", 1).wrapping_sub(1) & 63) as u8;
                RuleKind::MatchIntegerRange {
                    start,
                    end,
                    index: (int("idx", 0) & 0xffff) as u16,
                    format,
                }
            }
        };
        Some(Rule { not, or, kind })
    }
}

impl RuleKind {
    /// The 6-bit rule id.
    pub fn id(&self) -> u8 {
        match self.rule_type() {
            Some(t) => t.id(),
            None => match self {
                RuleKind::Unknown { rule_type, .. } => *rule_type & TYPE_MASK,
                _ => 0,
            },
        }
    }

    /// The defined rule type, or `None` for [`RuleKind::Unknown`].
    pub fn rule_type(&self) -> Option<RuleType> {
        let side = |s: &Side, source: RuleType, dest: RuleType| match s {
            Side::Source => source,
            Side::Dest => dest,
        };
        Some(match self {
            RuleKind::ActionDrop => RuleType::ActionDrop,
            RuleKind::ActionAccept => RuleType::ActionAccept,
            RuleKind::ActionTee { .. } => RuleType::ActionTee,
            RuleKind::ActionWatch { .. } => RuleType::ActionWatch,
            RuleKind::ActionRedirect { .. } => RuleType::ActionRedirect,
            RuleKind::ActionBreak => RuleType::ActionBreak,
            RuleKind::ActionPriority => RuleType::ActionPriority,
            RuleKind::MatchZerotierAddress(s, _) => side(
                s,
                RuleType::MatchSourceZerotierAddress,
                RuleType::MatchDestZerotierAddress,
            ),
            RuleKind::MatchVlanId(_) => RuleType::MatchVlanId,
            RuleKind::MatchVlanPcp(_) => RuleType::MatchVlanPcp,
            RuleKind::MatchVlanDei(_) => RuleType::MatchVlanDei,
            RuleKind::MatchMac(s, _) => side(s, RuleType::MatchMacSource, RuleType::MatchMacDest),
            RuleKind::MatchIpv4 { side: s, .. } => {
                side(s, RuleType::MatchIpv4Source, RuleType::MatchIpv4Dest)
            }
            RuleKind::MatchIpv6 { side: s, .. } => {
                side(s, RuleType::MatchIpv6Source, RuleType::MatchIpv6Dest)
            }
            RuleKind::MatchIpTos { .. } => RuleType::MatchIpTos,
            RuleKind::MatchIpProtocol(_) => RuleType::MatchIpProtocol,
            RuleKind::MatchEthertype(_) => RuleType::MatchEthertype,
            RuleKind::MatchIcmp { .. } => RuleType::MatchIcmp,
            RuleKind::MatchIpPortRange { side: s, .. } => side(
                s,
                RuleType::MatchIpSourcePortRange,
                RuleType::MatchIpDestPortRange,
            ),
            RuleKind::MatchCharacteristics(_) => RuleType::MatchCharacteristics,
            RuleKind::MatchFrameSizeRange { .. } => RuleType::MatchFrameSizeRange,
            RuleKind::MatchRandom(_) => RuleType::MatchRandom,
            RuleKind::MatchTags { op, .. } => op.rule_type(),
            RuleKind::MatchIntegerRange { .. } => RuleType::MatchIntegerRange,
            RuleKind::Unknown { .. } => return None,
        })
    }

    /// Decodes the field of a known rule type.
    fn decode(t: RuleType, field: &[u8]) -> Result<RuleKind> {
        let mut f = Reader::new(field);
        let forward = |f: &mut Reader<'_>| -> Result<(Address, u32, u16)> {
            // The address travels as a u64; only its low 40 bits are an address.
            let address = Address::from_u64(f.u64("rule forward address")?);
            Ok((
                address,
                f.u32("rule forward flags")?,
                f.u16("rule forward length")?,
            ))
        };
        let kind = match t {
            RuleType::ActionDrop => RuleKind::ActionDrop,
            RuleType::ActionAccept => RuleKind::ActionAccept,
            RuleType::ActionBreak => RuleKind::ActionBreak,
            RuleType::ActionPriority => RuleKind::ActionPriority,
            RuleType::ActionTee => {
                let (address, flags, length) = forward(&mut f)?;
                RuleKind::ActionTee {
                    address,
                    flags,
                    length,
                }
            }
            RuleType::ActionWatch => {
                let (address, flags, length) = forward(&mut f)?;
                RuleKind::ActionWatch {
                    address,
                    flags,
                    length,
                }
            }
            RuleType::ActionRedirect => {
                let (address, flags, length) = forward(&mut f)?;
                RuleKind::ActionRedirect {
                    address,
                    flags,
                    length,
                }
            }
            RuleType::MatchSourceZerotierAddress | RuleType::MatchDestZerotierAddress => {
                RuleKind::MatchZerotierAddress(
                    side_of(t),
                    Address::from_bytes(&f.array("rule zerotier address")?),
                )
            }
            RuleType::MatchVlanId => RuleKind::MatchVlanId(f.u16("rule vlan id")?),
            RuleType::MatchVlanPcp => RuleKind::MatchVlanPcp(f.u8("rule vlan pcp")?),
            RuleType::MatchVlanDei => RuleKind::MatchVlanDei(f.u8("rule vlan dei")?),
            RuleType::MatchMacSource | RuleType::MatchMacDest => {
                RuleKind::MatchMac(side_of(t), f.array("rule mac")?)
            }
            RuleType::MatchIpv4Source | RuleType::MatchIpv4Dest => RuleKind::MatchIpv4 {
                side: side_of(t),
                ip: Ipv4Addr::from(f.array::<4>("rule ipv4")?),
                prefix_bits: f.u8("rule ipv4 prefix")?,
            },
            RuleType::MatchIpv6Source | RuleType::MatchIpv6Dest => RuleKind::MatchIpv6 {
                side: side_of(t),
                ip: Ipv6Addr::from(f.array::<16>("rule ipv6")?),
                prefix_bits: f.u8("rule ipv6 prefix")?,
            },
            RuleType::MatchIpTos => RuleKind::MatchIpTos {
                mask: f.u8("rule ip tos mask")?,
                start: f.u8("rule ip tos start")?,
                end: f.u8("rule ip tos end")?,
            },
            RuleType::MatchIpProtocol => RuleKind::MatchIpProtocol(f.u8("rule ip protocol")?),
            RuleType::MatchEthertype => RuleKind::MatchEthertype(f.u16("rule ethertype")?),
            RuleType::MatchIcmp => RuleKind::MatchIcmp {
                icmp_type: f.u8("rule icmp type")?,
                code: f.u8("rule icmp code")?,
                flags: f.u8("rule icmp flags")?,
            },
            RuleType::MatchIpSourcePortRange | RuleType::MatchIpDestPortRange => {
                RuleKind::MatchIpPortRange {
                    side: side_of(t),
                    start: f.u16("rule port range start")?,
                    end: f.u16("rule port range end")?,
                }
            }
            RuleType::MatchCharacteristics => {
                RuleKind::MatchCharacteristics(f.u64("rule characteristics")?)
            }
            RuleType::MatchFrameSizeRange => RuleKind::MatchFrameSizeRange {
                start: f.u16("rule frame size start")?,
                end: f.u16("rule frame size end")?,
            },
            RuleType::MatchRandom => RuleKind::MatchRandom(f.u32("rule random probability")?),
            RuleType::MatchTagsDifference
            | RuleType::MatchTagsBitwiseAnd
            | RuleType::MatchTagsBitwiseOr
            | RuleType::MatchTagsBitwiseXor
            | RuleType::MatchTagsEqual
            | RuleType::MatchTagSender
            | RuleType::MatchTagReceiver => RuleKind::MatchTags {
                op: TagMatch::from_rule_type(t).ok_or(Error::Malformed("rule tag type"))?,
                id: f.u32("rule tag id")?,
                value: f.u32("rule tag value")?,
            },
            RuleType::MatchIntegerRange => RuleKind::MatchIntegerRange {
                start: f.u64("rule integer range start")?,
                end: f.u64("rule integer range end")?,
                index: f.u16("rule integer range index")?,
                format: f.u8("rule integer range format")?,
            },
        };
        // Bytes past the known layout are ignored: a newer sender may extend a field.
        Ok(kind)
    }

    /// Appends the field bytes (no type or length byte).
    fn encode_field(&self, out: &mut Vec<u8>) {
        match self {
            RuleKind::ActionDrop
            | RuleKind::ActionAccept
            | RuleKind::ActionBreak
            | RuleKind::ActionPriority => {}
            RuleKind::ActionTee {
                address,
                flags,
                length,
            }
            | RuleKind::ActionWatch {
                address,
                flags,
                length,
            }
            | RuleKind::ActionRedirect {
                address,
                flags,
                length,
            } => {
                out.put_u64(address.to_u64());
                out.put_u32(*flags);
                out.put_u16(*length);
            }
            RuleKind::MatchZerotierAddress(_, a) => out.put_bytes(&a.to_bytes()),
            RuleKind::MatchVlanId(v) => out.put_u16(*v),
            RuleKind::MatchVlanPcp(v) | RuleKind::MatchVlanDei(v) => out.put_u8(*v),
            RuleKind::MatchMac(_, mac) => out.put_bytes(mac),
            RuleKind::MatchIpv4 {
                ip, prefix_bits, ..
            } => {
                out.put_bytes(&ip.octets());
                out.put_u8(*prefix_bits);
            }
            RuleKind::MatchIpv6 {
                ip, prefix_bits, ..
            } => {
                out.put_bytes(&ip.octets());
                out.put_u8(*prefix_bits);
            }
            RuleKind::MatchIpTos { mask, start, end } => {
                out.put_u8(*mask);
                out.put_u8(*start);
                out.put_u8(*end);
            }
            RuleKind::MatchIpProtocol(p) => out.put_u8(*p),
            RuleKind::MatchEthertype(e) => out.put_u16(*e),
            RuleKind::MatchIcmp {
                icmp_type,
                code,
                flags,
            } => {
                out.put_u8(*icmp_type);
                out.put_u8(*code);
                out.put_u8(*flags);
            }
            RuleKind::MatchIpPortRange { start, end, .. }
            | RuleKind::MatchFrameSizeRange { start, end } => {
                out.put_u16(*start);
                out.put_u16(*end);
            }
            RuleKind::MatchCharacteristics(mask) => out.put_u64(*mask),
            RuleKind::MatchRandom(p) => out.put_u32(*p),
            RuleKind::MatchTags { id, value, .. } => {
                out.put_u32(*id);
                out.put_u32(*value);
            }
            RuleKind::MatchIntegerRange {
                start,
                end,
                index,
                format,
            } => {
                out.put_u64(*start);
                out.put_u64(*end);
                out.put_u16(*index);
                out.put_u8(*format);
            }
            RuleKind::Unknown { field, .. } => {
                out.put_bytes(field.get(..MAX_FIELD_LEN).unwrap_or(field));
            }
        }
    }
}

/// Reads rules until the input ends or `max_count` (capped at [`MAX_NETWORK_RULES`]) rules
/// were read, like the reference. Callers that need the input to end after the rules (netconf
/// `R`) check `r.is_empty()` afterwards; a capability passes its rule count.
pub fn read_rules(r: &mut Reader<'_>, max_count: usize) -> Result<Vec<Rule>> {
    let max_count = max_count.min(MAX_NETWORK_RULES);
    let mut rules = Vec::new();
    while rules.len() < max_count && !r.is_empty() {
        rules.push(Rule::read(r)?);
    }
    Ok(rules)
}

/// Parses a whole rule list (netconf `R`): at most [`MAX_NETWORK_RULES`] rules and nothing
/// after them.
pub fn parse_rules(buf: &[u8]) -> Result<Vec<Rule>> {
    let mut r = Reader::new(buf);
    let rules = read_rules(&mut r, MAX_NETWORK_RULES)?;
    if !r.is_empty() {
        return Err(Error::TooLarge("rules (more than 1024)"));
    }
    Ok(rules)
}

/// Appends every rule in order (no count; the container carries it if it needs one).
pub fn emit_rules(rules: &[Rule], out: &mut Vec<u8>) {
    for rule in rules {
        rule.emit(out);
    }
}

fn side_of(t: RuleType) -> Side {
    match t {
        RuleType::MatchDestZerotierAddress
        | RuleType::MatchMacDest
        | RuleType::MatchIpv4Dest
        | RuleType::MatchIpv6Dest
        | RuleType::MatchIpDestPortRange => Side::Dest,
        _ => Side::Source,
    }
}

/// JSON boolean as the reference reads it: booleans, non-zero numbers, and strings starting
/// with `1`, `t` or `T` are true.
fn json_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => {
            n.as_u64().is_some_and(|x| x != 0) || n.as_i64().is_some_and(|x| x != 0)
        }
        Some(Value::String(s)) => matches!(s.bytes().next(), Some(b'1' | b't' | b'T')),
        _ => false,
    }
}

/// JSON unsigned integer: a number (negative numbers wrap, as in C) or a decimal string.
fn json_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_i64().map(|x| x as u64))
            .or_else(|| n.as_f64().map(|x| x as u64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

/// A value the reference writes as a hex string (addresses, masks, integer ranges) but also
/// accepts as a plain number.
fn json_hex(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => parse_hex_prefix(s),
        other => json_u64(Some(other)),
    }
}

/// `strtoull(s, 16)`-like: leading hex digits, anything after them ignored.
fn parse_hex_prefix(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let digits = s.bytes().take_while(u8::is_ascii_hexdigit).count();
    let digits = s.get(..digits.min(16))?;
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// A MAC written with any separators: the first 12 hex digits, missing ones as zero.
fn parse_mac_lenient(text: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let nibbles = text.chars().filter_map(|c| c.to_digit(16));
    for (i, nibble) in nibbles.take(12).enumerate() {
        if let Some(byte) = mac.get_mut(i / 2) {
            // `to_digit(16)` is below 16, so the narrowing cannot lose bits.
            *byte = (*byte << 4) | (nibble as u8);
        }
    }
    mac
}

/// `ip/bits`; a missing or bad prefix is 0, a bad IP is `None`.
fn parse_ip_prefix(text: &str) -> (Option<IpAddr>, u8) {
    let (ip, bits) = match text.split_once('/') {
        Some((ip, bits)) => (ip, bits.trim().parse::<u16>().unwrap_or(0)),
        None => (text, 0),
    };
    let bits = u8::try_from(bits & 0xff).unwrap_or(u8::MAX);
    (ip.trim().parse().ok(), bits)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(rule: &Rule) -> Rule {
        let mut out = Vec::new();
        rule.emit(&mut out);
        let (back, used) = Rule::parse(&out).unwrap();
        assert_eq!(used, out.len());
        back
    }

    #[test]
    fn default_rule_set_is_accept() {
        let mut out = Vec::new();
        emit_rules(&Rule::default_rules(), &mut out);
        assert_eq!(out, [0x01, 0x00]);
        assert_eq!(parse_rules(&out).unwrap(), Rule::default_rules());
    }

    #[test]
    fn field_lengths_match_the_reference() {
        let cases: Vec<(RuleKind, usize)> = vec![
            (RuleKind::ActionDrop, 0),
            (
                RuleKind::ActionTee {
                    address: Address::from_u64(0x1122334455),
                    flags: 1,
                    length: 64,
                },
                14,
            ),
            (
                RuleKind::MatchZerotierAddress(Side::Dest, Address::from_u64(7)),
                5,
            ),
            (RuleKind::MatchVlanId(5), 2),
            (RuleKind::MatchVlanPcp(5), 1),
            (RuleKind::MatchMac(Side::Source, [1, 2, 3, 4, 5, 6]), 6),
            (
                RuleKind::MatchIpv4 {
                    side: Side::Dest,
                    ip: Ipv4Addr::new(10, 0, 0, 0),
                    prefix_bits: 8,
                },
                5,
            ),
            (
                RuleKind::MatchIpv6 {
                    side: Side::Source,
                    ip: Ipv6Addr::LOCALHOST,
                    prefix_bits: 128,
                },
                17,
            ),
            (
                RuleKind::MatchIpTos {
                    mask: 0xfc,
                    start: 0,
                    end: 4,
                },
                3,
            ),
            (RuleKind::MatchEthertype(0x0800), 2),
            (
                RuleKind::MatchIcmp {
                    icmp_type: 8,
                    code: 0,
                    flags: 0,
                },
                3,
            ),
            (RuleKind::MatchCharacteristics(1 << 63), 8),
            (RuleKind::MatchRandom(9), 4),
            (
                RuleKind::MatchTags {
                    op: TagMatch::Sender,
                    id: 1,
                    value: 2,
                },
                8,
            ),
            (
                RuleKind::MatchIntegerRange {
                    start: 1,
                    end: 9,
                    index: 20,
                    format: 0x8f,
                },
                19,
            ),
        ];
        for (kind, len) in cases {
            let rule = Rule::new(kind);
            let mut out = Vec::new();
            rule.emit(&mut out);
            assert_eq!(out.len(), 2 + len, "{rule:?}");
            assert_eq!(usize::from(out[1]), len);
            assert_eq!(roundtrip(&rule), rule);
        }
    }

    #[test]
    fn ethertype_bytes_and_flags() {
        let rule = Rule {
            not: true,
            or: true,
            kind: RuleKind::MatchEthertype(0x0806),
        };
        let mut out = Vec::new();
        rule.emit(&mut out);
        assert_eq!(out, [0x80 | 0x40 | 37, 2, 0x08, 0x06]);
        assert_eq!(roundtrip(&rule), rule);
    }

    #[test]
    fn unknown_types_are_kept_and_skipped() {
        let bytes = [0x40 | 60, 3, 9, 9, 9, 0x01, 0x00];
        let rules = parse_rules(&bytes).unwrap();
        assert_eq!(
            rules,
            vec![
                Rule {
                    not: false,
                    or: true,
                    kind: RuleKind::Unknown {
                        rule_type: 60,
                        field: vec![9, 9, 9]
                    }
                },
                Rule::accept()
            ]
        );
        let mut out = Vec::new();
        emit_rules(&rules, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn short_known_fields_are_rejected_long_ones_skipped() {
        assert_eq!(
            Rule::parse(&[37, 1, 0x08]),
            Err(Error::Truncated("rule ethertype"))
        );
        let (rule, used) = Rule::parse(&[37, 3, 0x08, 0x00, 0xee]).unwrap();
        assert_eq!(rule.kind, RuleKind::MatchEthertype(0x0800));
        assert_eq!(used, 5);
        assert_eq!(Rule::parse(&[1, 5, 0]), Err(Error::Truncated("rule field")));
    }

    #[test]
    fn read_rules_is_capped() {
        let bytes: Vec<u8> = [1u8, 0].repeat(MAX_NETWORK_RULES + 1);
        assert!(matches!(parse_rules(&bytes), Err(Error::TooLarge(_))));
        let mut r = Reader::new(&bytes);
        assert_eq!(
            read_rules(&mut r, usize::MAX).unwrap().len(),
            MAX_NETWORK_RULES
        );
        assert_eq!(r.remaining(), 2);
        let mut r = Reader::new(&bytes);
        assert_eq!(read_rules(&mut r, 3).unwrap().len(), 3);
    }

    #[test]
    fn json_names_round_trip() {
        for t in RuleType::ALL {
            assert_eq!(RuleType::from_json_name(t.json_name()), Some(t));
            assert_eq!(RuleType::from_id(t.id()), Some(t));
        }
        assert_eq!(
            RuleType::from_json_name("MATCH_ETHERTYPE"),
            Some(RuleType::MatchEthertype)
        );
        assert_eq!(RuleType::from_id(7), None);
    }

    #[test]
    fn json_matches_the_reference_rendering() {
        let rule = Rule::from_json(&json!({"type":"MATCH_ETHERTYPE","etherType":2048,"not":true}))
            .unwrap();
        assert_eq!(
            rule,
            Rule {
                not: true,
                or: false,
                kind: RuleKind::MatchEthertype(2048)
            }
        );
        assert_eq!(
            rule.to_json(),
            json!({"type":"MATCH_ETHERTYPE","etherType":2048,"not":true,"or":false})
        );
        assert_eq!(Rule::accept().to_json(), json!({"type":"ACTION_ACCEPT"}));
        let ip = Rule::from_json(&json!({"type":"MATCH_IPV4_DEST","ip":"10.147.17.0/24"})).unwrap();
        assert_eq!(
            ip.kind,
            RuleKind::MatchIpv4 {
                side: Side::Dest,
                ip: Ipv4Addr::new(10, 147, 17, 0),
                prefix_bits: 24
            }
        );
        assert_eq!(ip.to_json()["ip"], json!("10.147.17.0/24"));
        let mac =
            Rule::from_json(&json!({"type":"MATCH_MAC_SOURCE","mac":"01:02:03:04:05:0a"})).unwrap();
        assert_eq!(
            mac.kind,
            RuleKind::MatchMac(Side::Source, [1, 2, 3, 4, 5, 10])
        );
        let icmp =
            Rule::from_json(&json!({"type":"MATCH_ICMP","icmpType":8,"icmpCode":null})).unwrap();
        assert_eq!(
            icmp.kind,
            RuleKind::MatchIcmp {
                icmp_type: 8,
                code: 0,
                flags: 0
            }
        );
        let tee = Rule::from_json(
            &json!({"type":"ACTION_TEE","address":"7c2dfee12c","flags":0,"length":100}),
        )
        .unwrap();
        assert_eq!(
            tee.kind,
            RuleKind::ActionTee {
                address: Address::from_u64(0x7c2dfee12c),
                flags: 0,
                length: 100
            }
        );
        let port = Rule::from_json(&json!({"type":"MATCH_IP_DEST_PORT_RANGE","start":22})).unwrap();
        assert_eq!(
            port.kind,
            RuleKind::MatchIpPortRange {
                side: Side::Dest,
                start: 22,
                end: 22
            }
        );
        assert_eq!(Rule::from_json(&json!({"type":"NOPE"})), None);
        assert_eq!(Rule::from_json(&json!("ACTION_ACCEPT")), None);
    }

    fn arb_kind() -> impl Strategy<Value = RuleKind> {
        let side = prop_oneof![Just(Side::Source), Just(Side::Dest)];
        let tag_op = prop_oneof![
            Just(TagMatch::Difference),
            Just(TagMatch::BitwiseAnd),
            Just(TagMatch::BitwiseOr),
            Just(TagMatch::BitwiseXor),
            Just(TagMatch::Equal),
            Just(TagMatch::Sender),
            Just(TagMatch::Receiver),
        ];
        let address = (0u64..(1 << 40)).prop_map(Address::from_u64);
        let unknown_id = prop_oneof![7u8..24, 52u8..64];
        prop_oneof![
            Just(RuleKind::ActionDrop),
            Just(RuleKind::ActionAccept),
            Just(RuleKind::ActionBreak),
            Just(RuleKind::ActionPriority),
            (address.clone(), any::<u32>(), any::<u16>()).prop_map(|(address, flags, length)| {
                RuleKind::ActionTee {
                    address,
                    flags,
                    length,
                }
            }),
            (address.clone(), any::<u32>(), any::<u16>()).prop_map(|(address, flags, length)| {
                RuleKind::ActionWatch {
                    address,
                    flags,
                    length,
                }
            }),
            (address.clone(), any::<u32>(), any::<u16>()).prop_map(|(address, flags, length)| {
                RuleKind::ActionRedirect {
                    address,
                    flags,
                    length,
                }
            }),
            (side.clone(), address).prop_map(|(s, a)| RuleKind::MatchZerotierAddress(s, a)),
            any::<u16>().prop_map(RuleKind::MatchVlanId),
            any::<u8>().prop_map(RuleKind::MatchVlanPcp),
            any::<u8>().prop_map(RuleKind::MatchVlanDei),
            (side.clone(), any::<[u8; 6]>()).prop_map(|(s, m)| RuleKind::MatchMac(s, m)),
            (side.clone(), any::<[u8; 4]>(), any::<u8>()).prop_map(|(side, ip, prefix_bits)| {
                RuleKind::MatchIpv4 {
                    side,
                    ip: Ipv4Addr::from(ip),
                    prefix_bits,
                }
            }),
            (side.clone(), any::<[u8; 16]>(), any::<u8>()).prop_map(|(side, ip, prefix_bits)| {
                RuleKind::MatchIpv6 {
                    side,
                    ip: Ipv6Addr::from(ip),
                    prefix_bits,
                }
            }),
            any::<[u8; 3]>().prop_map(|[mask, start, end]| RuleKind::MatchIpTos {
                mask,
                start,
                end
            }),
            any::<u8>().prop_map(RuleKind::MatchIpProtocol),
            any::<u16>().prop_map(RuleKind::MatchEthertype),
            any::<[u8; 3]>().prop_map(|[icmp_type, code, flags]| RuleKind::MatchIcmp {
                icmp_type,
                code,
                flags
            }),
            (side, any::<u16>(), any::<u16>())
                .prop_map(|(side, start, end)| { RuleKind::MatchIpPortRange { side, start, end } }),
            any::<u64>().prop_map(RuleKind::MatchCharacteristics),
            (any::<u16>(), any::<u16>())
                .prop_map(|(start, end)| RuleKind::MatchFrameSizeRange { start, end }),
            any::<u32>().prop_map(RuleKind::MatchRandom),
            (tag_op, any::<u32>(), any::<u32>()).prop_map(|(op, id, value)| RuleKind::MatchTags {
                op,
                id,
                value
            }),
            (any::<u64>(), any::<u64>(), any::<u16>(), any::<u8>()).prop_map(
                |(start, end, index, format)| RuleKind::MatchIntegerRange {
                    start,
                    end,
                    index,
                    format
                }
            ),
            (unknown_id, proptest::collection::vec(any::<u8>(), 0..=255))
                .prop_map(|(rule_type, field)| RuleKind::Unknown { rule_type, field }),
        ]
    }

    pub(crate) fn arb_rule() -> impl Strategy<Value = Rule> {
        (any::<bool>(), any::<bool>(), arb_kind()).prop_map(|(not, or, kind)| Rule {
            not,
            or,
            kind,
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_rules(&bytes);
            let mut r = Reader::new(&bytes);
            if let Ok(rules) = read_rules(&mut r, 64) {
                let mut out = Vec::new();
                emit_rules(&rules, &mut out);
                prop_assert_eq!(parse_rules(&out).unwrap(), rules);
            }
        }

        #[test]
        fn rules_round_trip(rules in proptest::collection::vec(arb_rule(), 0..20)) {
            let mut out = Vec::new();
            emit_rules(&rules, &mut out);
            prop_assert_eq!(parse_rules(&out).unwrap(), rules);
        }

        #[test]
        fn json_round_trips_known_rules(rule in arb_rule()) {
            // JSON has no REDIRECT length, no action NOT/OR bits and no unknown rules.
            prop_assume!(rule.rule_type().is_some());
            let mut expected = rule.clone();
            if let RuleKind::ActionRedirect { length, .. } = &mut expected.kind {
                *length = 0;
            }
            if rule.rule_type().is_some_and(RuleType::is_action) {
                expected.not = false;
                expected.or = false;
            }
            if let RuleKind::MatchIpv4 { prefix_bits, .. } = &mut expected.kind {
                *prefix_bits = (*prefix_bits).min(32);
            }
            if let RuleKind::MatchIpv6 { prefix_bits, .. } = &mut expected.kind {
                *prefix_bits = (*prefix_bits).min(128);
            }
            if let RuleKind::MatchIntegerRange { format, .. } = &mut expected.kind {
                // JSON carries only the endianness bit and the width.
                *format &= 0xbf;
            }
            if let RuleKind::MatchIcmp { code, flags, .. } = &mut expected.kind {
                if *flags & ICMP_FLAG_CODE_VALID == 0 {
                    *code = 0;
                    *flags = 0;
                } else {
                    *flags = ICMP_FLAG_CODE_VALID;
                }
            }
            prop_assert_eq!(Rule::from_json(&rule.to_json()), Some(expected));
        }
    }
}
