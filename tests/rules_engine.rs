//! The rules engine (`ztrs::node::filter`) against hand-built frames: the default rule set,
//! the common ethertype whitelist, IP/port/ICMP/tag matches, NOT/OR sets, TEE/WATCH/REDIRECT,
//! BREAK falling through to capabilities, the unsupported-match flag, and arbitrary frames and
//! rule lists never panicking.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use ztrs::node::filter::{
    CHARACTERISTICS_BROADCAST, CHARACTERISTICS_INBOUND, CHARACTERISTICS_TCP_ACK,
    CHARACTERISTICS_TCP_SYN, Direction, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, FrameCopy,
    FrameInfo, RuleVerdict, evaluate, filter_frame,
};
use ztrs::wire::credentials::Capability;
use ztrs::wire::mac::Mac;
use ztrs::wire::rules::{Rule, RuleKind, Side, TagMatch, parse_rules};
use ztrs::wire::{Address, NetworkId};

const ME: u64 = 0x1111111111;
const PEER: u64 = 0x2222222222;
const OTHER: u64 = 0x3333333333;

fn a(v: u64) -> Address {
    Address::from_u64(v)
}

fn mac(last: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, last])
}

/// Outbound from us to PEER.
fn out(ethertype: u16, payload: &[u8]) -> FrameInfo<'_> {
    FrameInfo::new(
        Direction::Outbound,
        a(ME),
        (a(ME), mac(1)),
        (a(PEER), mac(2)),
        ethertype,
        payload,
    )
}

/// Inbound from PEER to us.
fn inb(ethertype: u16, payload: &[u8]) -> FrameInfo<'_> {
    FrameInfo::new(
        Direction::Inbound,
        a(ME),
        (a(PEER), mac(2)),
        (a(ME), mac(1)),
        ethertype,
        payload,
    )
}

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[9] = proto;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

fn ports(sport: u16, dport: u16) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&[0u8; 16]);
    l4
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut l4 = ports(sport, dport);
    l4[12] = 0x50;
    l4[13] = flags;
    l4
}

fn ipv6(next: u8, src: Ipv6Addr, dst: Ipv6Addr, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[6] = next;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p.extend_from_slice(l4);
    p
}

fn r(kind: RuleKind) -> Rule {
    Rule::new(kind)
}

fn not(kind: RuleKind) -> Rule {
    Rule {
        not: true,
        or: false,
        kind,
    }
}

fn or(kind: RuleKind) -> Rule {
    Rule {
        not: false,
        or: true,
        kind,
    }
}

fn verdict(rules: &[Rule], f: &FrameInfo<'_>) -> RuleVerdict {
    evaluate(rules, f, false, || 0).verdict
}

fn accepts(rules: &[Rule], f: &FrameInfo<'_>) -> bool {
    filter_frame(rules, &[] as &[Capability], f, false, || 0).accept
}

/// The "allow only IPv4, ARP and IPv6" set most networks start from.
fn ethertype_whitelist() -> Vec<Rule> {
    vec![
        not(RuleKind::MatchEthertype(ETHERTYPE_IPV4)),
        not(RuleKind::MatchEthertype(ETHERTYPE_ARP)),
        not(RuleKind::MatchEthertype(ETHERTYPE_IPV6)),
        Rule::drop_frame(),
        Rule::accept(),
    ]
}

#[test]
fn default_rule_set_accepts_everything() {
    let from_wire = parse_rules(&[0x01, 0x00]).expect("R=\\x01\\x00 parses");
    assert_eq!(from_wire, Rule::default_rules());
    let udp = ipv4(0x11, [10, 0, 0, 1], [10, 0, 0, 2], &ports(1, 2));
    for (et, p) in [
        (ETHERTYPE_IPV4, &udp[..]),
        (ETHERTYPE_ARP, &[0u8; 28][..]),
        (0x88cc, &[][..]),
    ] {
        assert!(accepts(&from_wire, &out(et, p)));
        assert!(accepts(&from_wire, &inb(et, p)));
    }
}

#[test]
fn empty_rule_set_without_capabilities_drops() {
    assert!(!accepts(&[], &out(ETHERTYPE_IPV4, &[0u8; 20])));
}

#[test]
fn ethertype_whitelist_drops_other_protocols() {
    let rules = ethertype_whitelist();
    assert!(accepts(&rules, &out(ETHERTYPE_IPV4, &[0u8; 20])));
    assert!(accepts(&rules, &out(ETHERTYPE_ARP, &[0u8; 28])));
    assert!(accepts(&rules, &out(ETHERTYPE_IPV6, &[0u8; 40])));
    assert!(!accepts(&rules, &out(0x88cc, &[0u8; 40])));
    assert!(!accepts(&rules, &inb(0x8100, &[])));
}

#[test]
fn ipv4_source_and_dest_prefixes() {
    let rules = [
        r(RuleKind::MatchIpv4 {
            side: Side::Source,
            ip: Ipv4Addr::new(10, 1, 0, 0),
            prefix_bits: 16,
        }),
        r(RuleKind::MatchIpv4 {
            side: Side::Dest,
            ip: Ipv4Addr::new(192, 168, 7, 9),
            prefix_bits: 32,
        }),
        Rule::accept(),
        Rule::drop_frame(),
    ];
    let hit = ipv4(0x11, [10, 1, 200, 3], [192, 168, 7, 9], &ports(1, 2));
    let wrong_src = ipv4(0x11, [10, 2, 0, 3], [192, 168, 7, 9], &ports(1, 2));
    let wrong_dst = ipv4(0x11, [10, 1, 0, 3], [192, 168, 7, 8], &ports(1, 2));
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV4, &hit)),
        RuleVerdict::Accept
    );
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV4, &wrong_src)),
        RuleVerdict::Drop
    );
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV4, &wrong_dst)),
        RuleVerdict::Drop
    );
    // Too short for an IPv4 header: no match, even for the right bytes.
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV4, &hit[..19])),
        RuleVerdict::Drop
    );
}

#[test]
fn ipv6_prefix() {
    let rules = [
        r(RuleKind::MatchIpv6 {
            side: Side::Dest,
            ip: "fd00:abcd::".parse().unwrap(),
            prefix_bits: 32,
        }),
        Rule::accept(),
        Rule::drop_frame(),
    ];
    let src: Ipv6Addr = "fd00::1".parse().unwrap();
    let hit = ipv6(0x11, src, "fd00:abcd::99".parse().unwrap(), &ports(1, 2));
    let miss = ipv6(0x11, src, "fd00:abce::99".parse().unwrap(), &ports(1, 2));
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV6, &hit)),
        RuleVerdict::Accept
    );
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV6, &miss)),
        RuleVerdict::Drop
    );
}

#[test]
fn tcp_and_udp_port_ranges() {
    // Allow TCP or UDP to 8000-8100, drop everything else.
    let rules = [
        r(RuleKind::MatchIpProtocol(0x06)),
        or(RuleKind::MatchIpProtocol(0x11)),
        r(RuleKind::MatchIpPortRange {
            side: Side::Dest,
            start: 8000,
            end: 8100,
        }),
        Rule::accept(),
        Rule::drop_frame(),
    ];
    let ip = |proto, l4: &[u8]| ipv4(proto, [10, 0, 0, 1], [10, 0, 0, 2], l4);
    let f = |p: &Vec<u8>| verdict(&rules, &out(ETHERTYPE_IPV4, p));
    assert_eq!(f(&ip(0x06, &tcp(40000, 8000, 0x02))), RuleVerdict::Accept);
    assert_eq!(f(&ip(0x11, &ports(40000, 8100))), RuleVerdict::Accept);
    assert_eq!(f(&ip(0x06, &tcp(40000, 8101, 0x02))), RuleVerdict::Drop);
    assert_eq!(f(&ip(0x11, &ports(8050, 7999))), RuleVerdict::Drop);
    // Not TCP/UDP at all (ICMP with bytes where ports would be).
    assert_eq!(f(&ip(0x01, &ports(8050, 8050))), RuleVerdict::Drop);
    // Source ports too, over IPv6.
    let src_rules = [
        r(RuleKind::MatchIpPortRange {
            side: Side::Source,
            start: 53,
            end: 53,
        }),
        Rule::accept(),
    ];
    let v6 = ipv6(
        0x11,
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::LOCALHOST,
        &ports(53, 999),
    );
    assert_eq!(
        verdict(&src_rules, &out(ETHERTYPE_IPV6, &v6)),
        RuleVerdict::Accept
    );
    // A port truncated by the end of the frame does not match.
    let short = ip(0x11, &[0, 53]);
    assert_eq!(
        verdict(&src_rules, &out(ETHERTYPE_IPV4, &short)),
        RuleVerdict::NoMatch
    );
}

#[test]
fn icmp_type_and_code() {
    let echo_request = ipv4(0x01, [1, 1, 1, 1], [2, 2, 2, 2], &[8, 0, 0, 0]);
    let unreachable = ipv4(0x01, [1, 1, 1, 1], [2, 2, 2, 2], &[3, 1, 0, 0]);
    let drop_pings = [
        r(RuleKind::MatchIcmp {
            icmp_type: 8,
            code: 0,
            flags: 0,
        }),
        Rule::drop_frame(),
        Rule::accept(),
    ];
    assert!(!accepts(&drop_pings, &out(ETHERTYPE_IPV4, &echo_request)));
    assert!(accepts(&drop_pings, &out(ETHERTYPE_IPV4, &unreachable)));
    let host_unreachable_only = [
        r(RuleKind::MatchIcmp {
            icmp_type: 3,
            code: 1,
            flags: 0x01,
        }),
        Rule::accept(),
    ];
    assert_eq!(
        verdict(&host_unreachable_only, &out(ETHERTYPE_IPV4, &unreachable)),
        RuleVerdict::Accept
    );
    let net_unreachable = ipv4(0x01, [1, 1, 1, 1], [2, 2, 2, 2], &[3, 0, 0, 0]);
    assert_eq!(
        verdict(
            &host_unreachable_only,
            &out(ETHERTYPE_IPV4, &net_unreachable)
        ),
        RuleVerdict::NoMatch
    );
    // ICMPv6 echo request (128).
    let v6 = ipv6(
        0x3a,
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::LOCALHOST,
        &[128, 0, 0, 0],
    );
    let v6_pings = [
        r(RuleKind::MatchIcmp {
            icmp_type: 128,
            code: 0,
            flags: 0,
        }),
        Rule::drop_frame(),
    ];
    assert_eq!(
        verdict(&v6_pings, &out(ETHERTYPE_IPV6, &v6)),
        RuleVerdict::Drop
    );
}

#[test]
fn not_and_or_combinations() {
    // (ethertype == ARP OR ethertype == IPv6) AND NOT source ZT == OTHER -> accept.
    let rules = [
        r(RuleKind::MatchEthertype(ETHERTYPE_ARP)),
        or(RuleKind::MatchEthertype(ETHERTYPE_IPV6)),
        not(RuleKind::MatchZerotierAddress(Side::Source, a(OTHER))),
        Rule::accept(),
        Rule::drop_frame(),
    ];
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_ARP, &[])),
        RuleVerdict::Accept
    );
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV6, &[])),
        RuleVerdict::Accept
    );
    assert_eq!(
        verdict(&rules, &out(ETHERTYPE_IPV4, &[])),
        RuleVerdict::Drop
    );
    let mut from_other = inb(ETHERTYPE_ARP, &[]);
    from_other.source = a(OTHER);
    assert_eq!(verdict(&rules, &from_other), RuleVerdict::Drop);
    // The set bit resets after a skipped action: a later set starts fresh.
    let reset = [
        r(RuleKind::MatchEthertype(0x1234)),
        Rule::drop_frame(),
        r(RuleKind::MatchMac(Side::Dest, mac(2).0)),
        Rule::accept(),
    ];
    assert_eq!(
        verdict(&reset, &out(ETHERTYPE_IPV4, &[])),
        RuleVerdict::Accept
    );
}

#[test]
fn characteristics_bits() {
    let syn = ipv4(0x06, [1, 0, 0, 1], [1, 0, 0, 2], &tcp(1000, 22, 0x02));
    let syn_ack = ipv4(0x06, [1, 0, 0, 1], [1, 0, 0, 2], &tcp(1000, 22, 0x12));
    let ack = ipv4(0x06, [1, 0, 0, 1], [1, 0, 0, 2], &tcp(1000, 22, 0x10));
    // Accept non-SYN, or SYN+ACK; drop new connections.
    let rules = [
        not(RuleKind::MatchCharacteristics(CHARACTERISTICS_TCP_SYN)),
        Rule::accept(),
        r(RuleKind::MatchCharacteristics(CHARACTERISTICS_TCP_SYN)),
        r(RuleKind::MatchCharacteristics(CHARACTERISTICS_TCP_ACK)),
        Rule::accept(),
        Rule::drop_frame(),
    ];
    assert!(!accepts(&rules, &out(ETHERTYPE_IPV4, &syn)));
    assert!(accepts(&rules, &out(ETHERTYPE_IPV4, &syn_ack)));
    assert!(accepts(&rules, &out(ETHERTYPE_IPV4, &ack)));

    let inbound_only = [
        r(RuleKind::MatchCharacteristics(CHARACTERISTICS_INBOUND)),
        Rule::accept(),
    ];
    assert_eq!(
        verdict(&inbound_only, &inb(ETHERTYPE_ARP, &[])),
        RuleVerdict::Accept
    );
    assert_eq!(
        verdict(&inbound_only, &out(ETHERTYPE_ARP, &[])),
        RuleVerdict::NoMatch
    );

    let broadcast = [
        r(RuleKind::MatchCharacteristics(CHARACTERISTICS_BROADCAST)),
        Rule::drop_frame(),
        Rule::accept(),
    ];
    let mut bcast = out(ETHERTYPE_ARP, &[]);
    bcast.mac_dest = Mac::BROADCAST;
    assert_eq!(verdict(&broadcast, &bcast), RuleVerdict::Drop);
    assert_eq!(
        verdict(&broadcast, &out(ETHERTYPE_ARP, &[])),
        RuleVerdict::Accept
    );
}

fn tag_rule(op: TagMatch, id: u32, value: u32) -> Rule {
    r(RuleKind::MatchTags { op, id, value })
}

#[test]
fn tags_equal_and_difference() {
    let equal = [
        tag_rule(TagMatch::Equal, 7, 100),
        Rule::accept(),
        Rule::drop_frame(),
    ];
    let both = [(7, 100)];
    let other = [(7, 101)];
    let f = inb(ETHERTYPE_IPV4, &[]).with_tags(&both, &both);
    assert_eq!(verdict(&equal, &f), RuleVerdict::Accept);
    let f = inb(ETHERTYPE_IPV4, &[]).with_tags(&other, &both);
    assert_eq!(verdict(&equal, &f), RuleVerdict::Drop);

    let diff = [
        tag_rule(TagMatch::Difference, 7, 1),
        Rule::accept(),
        Rule::drop_frame(),
    ];
    let far = [(7, 103)];
    assert_eq!(
        verdict(&diff, &inb(ETHERTYPE_IPV4, &[]).with_tags(&other, &both)),
        RuleVerdict::Accept
    );
    assert_eq!(
        verdict(&diff, &inb(ETHERTYPE_IPV4, &[]).with_tags(&far, &both)),
        RuleVerdict::Drop
    );
    // Inbound, the sender's tag unknown: strict no match.
    assert_eq!(
        verdict(&diff, &inb(ETHERTYPE_IPV4, &[]).with_tags(&[], &both)),
        RuleVerdict::Drop
    );
    // Outbound, the receiver's tag unknown: lenient (the receiver decides).
    assert_eq!(
        verdict(&diff, &out(ETHERTYPE_IPV4, &[]).with_tags(&both, &[])),
        RuleVerdict::Accept
    );
    // We do not have the tag ourselves: no match either way.
    assert_eq!(
        verdict(&diff, &out(ETHERTYPE_IPV4, &[]).with_tags(&[], &both)),
        RuleVerdict::Drop
    );

    // Sender/receiver tag matches look at the right member.
    let sender_is_7 = [
        r(RuleKind::MatchTags {
            op: TagMatch::Sender,
            id: 1,
            value: 7,
        }),
        Rule::accept(),
    ];
    let seven = [(1, 7)];
    assert_eq!(
        verdict(
            &sender_is_7,
            &inb(ETHERTYPE_IPV4, &[]).with_tags(&seven, &[])
        ),
        RuleVerdict::Accept
    );
    assert_eq!(
        verdict(
            &sender_is_7,
            &inb(ETHERTYPE_IPV4, &[]).with_tags(&[], &seven)
        ),
        RuleVerdict::NoMatch
    );
}

#[test]
fn lenient_tag_match_skips_the_next_drop() {
    // Outbound with the receiver's tag unknown: the reference lets the frame go.
    let rules = [
        not(RuleKind::MatchTags {
            op: TagMatch::Equal,
            id: 7,
            value: 1,
        }),
        Rule::drop_frame(),
        Rule::accept(),
    ];
    let mine = [(7, 1)];
    let f = out(ETHERTYPE_IPV4, &[]).with_tags(&mine, &[]);
    assert_eq!(verdict(&rules, &f), RuleVerdict::Accept);
}

#[test]
fn tee_and_watch_are_recorded_and_evaluation_continues() {
    let payload = [0u8; 100];
    let rules = [
        r(RuleKind::ActionTee {
            address: a(OTHER),
            flags: 0,
            length: 64,
        }),
        r(RuleKind::MatchEthertype(ETHERTYPE_IPV4)),
        Rule::accept(),
    ];
    let res = evaluate(&rules, &out(ETHERTYPE_IPV4, &payload), false, || 0);
    assert_eq!(res.verdict, RuleVerdict::Accept);
    assert_eq!(res.tee(), Some((a(OTHER), 64)));
    assert_eq!(res.watch(), None);

    // WATCH with length 0 copies the whole frame; a later WATCH replaces the TEE.
    let rules = [
        r(RuleKind::ActionTee {
            address: a(OTHER),
            flags: 0,
            length: 500,
        }),
        r(RuleKind::ActionWatch {
            address: a(0x4444444444),
            flags: 0,
            length: 0,
        }),
        Rule::drop_frame(),
    ];
    let res = evaluate(&rules, &out(ETHERTYPE_IPV4, &payload), false, || 0);
    assert_eq!(res.verdict, RuleVerdict::Drop);
    assert_eq!(res.watch(), Some((a(0x4444444444), 100)));
    assert_eq!(res.tee(), None);
    // filter_frame reports no copy for a dropped frame.
    let v = filter_frame(
        &rules,
        &[] as &[Capability],
        &out(ETHERTYPE_IPV4, &payload),
        false,
        || 0,
    );
    assert!(!v.accept);
    assert_eq!(v.network_copy, None);

    // A TEE to the frame's own source or destination is a no-op.
    let to_dest = [
        r(RuleKind::ActionTee {
            address: a(PEER),
            flags: 0,
            length: 0,
        }),
        Rule::accept(),
    ];
    assert_eq!(
        evaluate(&to_dest, &out(ETHERTYPE_IPV4, &payload), false, || 0).copy,
        None
    );
}

#[test]
fn redirect_changes_destination_and_accepts() {
    let rules = [
        r(RuleKind::MatchEthertype(ETHERTYPE_IPV4)),
        r(RuleKind::ActionRedirect {
            address: a(OTHER),
            flags: 0,
            length: 0,
        }),
        Rule::drop_frame(),
    ];
    let v = filter_frame(
        &rules,
        &[] as &[Capability],
        &out(ETHERTYPE_IPV4, &[]),
        false,
        || 0,
    );
    assert!(v.accept);
    assert_eq!(v.redirect, Some(a(OTHER)));
    // Not IPv4: the redirect is skipped and the DROP applies.
    let v = filter_frame(
        &rules,
        &[] as &[Capability],
        &out(ETHERTYPE_ARP, &[]),
        false,
        || 0,
    );
    assert!(!v.accept);

    // Inbound frame redirected to us: super-accept.
    let to_me = [
        r(RuleKind::ActionRedirect {
            address: a(ME),
            flags: 0,
            length: 0,
        }),
        Rule::drop_frame(),
    ];
    let mut f = inb(ETHERTYPE_IPV4, &[]);
    f.dest = a(OTHER);
    let v = filter_frame(&to_me, &[] as &[Capability], &f, false, || 0);
    assert!(v.accept && v.super_accept);
}

#[test]
fn break_falls_through_to_capabilities() {
    let nwid = NetworkId(0x1111111111000001);
    let rules = [
        r(RuleKind::MatchIpProtocol(0x06)),
        r(RuleKind::ActionBreak),
        Rule::drop_frame(),
    ];
    let ssh_cap = Capability::new(
        nwid,
        1,
        1,
        1,
        vec![
            r(RuleKind::MatchIpPortRange {
                side: Side::Dest,
                start: 22,
                end: 22,
            }),
            Rule::accept(),
        ],
    );
    let drop_cap = Capability::new(nwid, 1, 2, 1, vec![Rule::drop_frame()]);
    let caps = [drop_cap, ssh_cap];
    let ssh = ipv4(0x06, [10, 0, 0, 1], [10, 0, 0, 2], &tcp(5000, 22, 0x02));
    let http = ipv4(0x06, [10, 0, 0, 1], [10, 0, 0, 2], &tcp(5000, 80, 0x02));
    let udp = ipv4(0x11, [10, 0, 0, 1], [10, 0, 0, 2], &ports(5000, 22));

    let v = filter_frame(&rules, &caps, &inb(ETHERTYPE_IPV4, &ssh), false, || 0);
    assert!(
        v.accept,
        "the second capability accepts; DROP in the first only ends it"
    );
    assert_eq!(v.capability, Some(1));
    let v = filter_frame(&rules, &caps, &inb(ETHERTYPE_IPV4, &http), false, || 0);
    assert!(!v.accept, "no capability accepts");
    let v = filter_frame(&rules, &caps, &inb(ETHERTYPE_IPV4, &udp), false, || 0);
    assert!(
        !v.accept,
        "network DROP is final; capabilities are not consulted"
    );
    assert_eq!(v.capability, None);
}

#[test]
fn unsupported_match_uses_the_network_flag() {
    let unknown = RuleKind::Unknown {
        rule_type: 60,
        field: vec![1, 2, 3],
    };
    let rules = [r(unknown.clone()), Rule::accept(), Rule::drop_frame()];
    let f = out(ETHERTYPE_IPV4, &[]);
    assert_eq!(
        evaluate(&rules, &f, true, || 0).verdict,
        RuleVerdict::Accept
    );
    assert_eq!(evaluate(&rules, &f, false, || 0).verdict, RuleVerdict::Drop);
    let negated = [not(unknown), Rule::accept(), Rule::drop_frame()];
    assert_eq!(
        evaluate(&negated, &f, true, || 0).verdict,
        RuleVerdict::Drop
    );
    assert_eq!(
        evaluate(&negated, &f, false, || 0).verdict,
        RuleVerdict::Accept
    );
}

#[test]
fn random_match_uses_the_rng() {
    let rules = [
        r(RuleKind::MatchRandom(u32::MAX / 2)),
        Rule::drop_frame(),
        Rule::accept(),
    ];
    let f = out(ETHERTYPE_IPV4, &[]);
    assert_eq!(evaluate(&rules, &f, false, || 0).verdict, RuleVerdict::Drop);
    assert_eq!(
        evaluate(&rules, &f, false, || u32::MAX).verdict,
        RuleVerdict::Accept
    );
}

#[test]
fn frame_copy_lengths_fit_the_frame() {
    let big = vec![0u8; 3000];
    let rules = [
        r(RuleKind::ActionTee {
            address: a(OTHER),
            flags: 0,
            length: 5000,
        }),
        Rule::accept(),
    ];
    let res = evaluate(&rules, &out(ETHERTYPE_IPV4, &big), false, || 0);
    assert_eq!(
        res.copy,
        Some(FrameCopy {
            to: a(OTHER),
            length: 3000,
            watch: false
        })
    );
}

fn parse_all(mut bytes: &[u8]) -> Vec<Rule> {
    let mut rules = Vec::new();
    while let Ok((rule, used)) = Rule::parse(bytes) {
        rules.push(rule);
        bytes = bytes.get(used..).unwrap_or(&[]);
        if used == 0 {
            break;
        }
    }
    rules
}

proptest! {
    #[test]
    fn arbitrary_frames_and_rules_never_panic(
        rule_bytes in proptest::collection::vec(any::<u8>(), 0..400),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        ethertype in prop_oneof![Just(ETHERTYPE_IPV4), Just(ETHERTYPE_IPV6), Just(ETHERTYPE_ARP), any::<u16>()],
        inbound in any::<bool>(),
        flag in any::<bool>(),
        seed in any::<u32>(),
        tags in proptest::collection::vec((0u32..4, any::<u32>()), 0..4),
        dest_mac in any::<[u8; 6]>(),
    ) {
        let rules = parse_all(&rule_bytes);
        let mut f = if inbound { inb(ethertype, &payload) } else { out(ethertype, &payload) };
        f.mac_dest = Mac(dest_mac);
        let f = f.with_tags(&tags, &tags[tags.len() / 2..]);
        let mut state = seed;
        let mut rng = move || { state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223); state };
        let res = evaluate(&rules, &f, flag, &mut rng);
        if let Some(c) = res.copy {
            prop_assert!(usize::from(c.length) <= payload.len());
        }
        let cap = Capability::new(NetworkId(1), 0, 0, 1, rules.clone());
        let v = filter_frame(&rules, [&cap], &f, flag, &mut rng);
        if !v.accept {
            prop_assert_eq!(v.network_copy, None);
            prop_assert_eq!(v.redirect, None);
        }
    }

    #[test]
    fn ipv4_headers_with_any_ihl_never_panic(
        ihl in 0u8..16,
        proto in prop_oneof![Just(1u8), Just(6u8), Just(17u8), Just(0x84u8), any::<u8>()],
        len in 0usize..80,
        fill in any::<u8>(),
    ) {
        let mut p = vec![fill; len];
        if let Some(b) = p.get_mut(0) { *b = 0x40 | ihl; }
        if let Some(b) = p.get_mut(9) { *b = proto; }
        let rules = [
            r(RuleKind::MatchCharacteristics(u64::MAX)),
            or(RuleKind::MatchIpPortRange { side: Side::Dest, start: 0, end: u16::MAX }),
            or(RuleKind::MatchIcmp { icmp_type: fill, code: fill, flags: 1 }),
            Rule::accept(),
        ];
        let _ = evaluate(&rules, &out(ETHERTYPE_IPV4, &p), false, || 0);
    }

    #[test]
    fn default_rules_accept_any_frame(
        payload in proptest::collection::vec(any::<u8>(), 0..100),
        ethertype in any::<u16>(),
        inbound in any::<bool>(),
    ) {
        let f = if inbound { inb(ethertype, &payload) } else { out(ethertype, &payload) };
        prop_assert!(accepts(&Rule::default_rules(), &f));
    }
}
