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

mod frame;
mod matches;

pub use frame::FrameInfo;
pub use matches::{ipv4_prefix_contains, ipv6_prefix_contains};

use matches::match_rule;

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
    use super::matches::match_integer_range;
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

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
