//! The virtual Ethernet port of joined networks (protocol 5.6, 5.8, 5.9, 5.12, 5.13, 7.4,
//! 7.6, 9.1, 9.3): frames from the local side go out as FRAME (unicast) or MULTICAST_FRAME
//! (multicast and broadcast, to members learned from MULTICAST_LIKE or a MULTICAST_GATHER),
//! frames from peers come back as [`Event::Frame`].
//!
//! Every frame passes the network's rules both ways. On private networks a peer's frames
//! are accepted only while we hold a certificate of membership for it that the controller
//! signed and that agrees with ours (the "membership gate"); otherwise the peer is answered
//! ERROR(NEED_MEMBERSHIP_CERTIFICATE). We push our own COM in NETWORK_CREDENTIALS before the
//! first frame to a peer, every `ZT_PEER_ACTIVITY_TIMEOUT`, and (at most once a second) when
//! a peer asks. All state here is bounded and every drop is counted in [`FrameCounters`].
//!
//! Multicast (LIKE, GATHER, MULTICAST_FRAME) lives in `multicast` and credentials (COMs,
//! tags, revocations, the membership gate) in `credentials`, on the state kept here.
//!
//! COM revocations (7.7) signed by a network's controller set a threshold per (network,
//! member): that member's COMs with a timestamp at or below it are dropped and refused, so
//! the membership gate closes for a deauthorized member.
//!
//! Not handled yet: bridging (frames from other MACs are counted and dropped), TEE/WATCH
//! copies and capabilities/tags of remote members, other credential revocations, and
//! EXT_FRAME acks.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

use super::filter::{Direction, FrameInfo, filter_frame};
use super::frame_class::frame_class;
use super::send::SendOptions;
use super::verbs::Rx;
use super::{Event, Node};
use crate::wire::com::CertificateOfMembership;
use crate::wire::ethernet::EthernetHeader;
use crate::wire::mac::{Mac, MulticastGroup};
use crate::wire::netconf::{
    FLAG_ENABLE_BROADCAST, FLAG_RULES_RESULT_OF_UNSUPPORTED_MATCH, NetworkConfig, NetworkType,
};
use crate::wire::verbs::{ErrorBody, ErrorReply, ExtFrame, Frame};
use crate::wire::{Address, InetAddress, NetworkId, Verb};

/// Peer certificates of membership kept (all networks together).
pub const MAX_PEER_COMS: usize = 4_096;
/// Tags kept per peer and network (the netconf cap).
pub const MAX_TAGS_PER_PEER: usize = 128;
/// (network, group) pairs whose members we remember.
pub const MAX_MULTICAST_GROUPS: usize = 4_096;
/// Members remembered per group.
pub const MAX_MEMBERS_PER_GROUP: usize = 1_024;
/// A MULTICAST_LIKE is forgotten after this long (`ZT_MULTICAST_LIKE_EXPIRE`).
pub const ZT_MULTICAST_LIKE_EXPIRE: u64 = 600_000;
/// Our subscriptions are announced this often (`ZT_MULTICAST_ANNOUNCE_PERIOD`).
pub const ZT_MULTICAST_ANNOUNCE_PERIOD: u64 = 60_000;
/// How long a multicast frame waits for gather results.
pub const MULTICAST_PENDING_TIMEOUT: u64 = 5_000;
/// COM revocation thresholds kept (all networks together).
pub const MAX_REVOCATIONS: usize = 4_096;
/// Multicast frames waiting for gather results.
pub const MAX_PENDING_MULTICASTS: usize = 32;
/// Members asked for in one MULTICAST_GATHER and answered at most in one OK.
pub(super) const MAX_GATHER_MEMBERS: u32 = 200;
/// Credentials from one peer are looked at at most this often, and re-pushed on a
/// NEED_MEMBERSHIP_CERTIFICATE at most this often.
pub(super) const CREDENTIALS_RATE_LIMIT: u64 = 1_000;
/// Groups announced in one MULTICAST_LIKE (18 bytes each, well inside one packet).
pub(super) const MAX_LIKES_PER_PACKET: usize = 64;

/// Counts of the frame layer (every drop has a counter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounters {
    /// Peers' tags stored / refused (not issued to the sender, outside the credential time
    /// window, bad signature, unknown network, too many).
    pub tags_accepted: u64,
    pub tags_refused: u64,
    /// Unicast frames sent as FRAME / EXT_FRAME.
    pub unicast_sent: u64,
    /// MULTICAST_FRAMEs sent (one per recipient).
    pub multicast_sent: u64,
    /// Frames delivered to the local side.
    pub delivered: u64,
    /// Local frames too short for an Ethernet header or on a network without a config.
    pub local_malformed: u64,
    pub local_not_configured: u64,
    /// Local frames with a payload above the network's MTU.
    pub local_too_large: u64,
    /// Local frames whose source is not our MAC (bridging is not supported).
    pub local_bridging_unsupported: u64,
    /// Local unicast frames to a MAC outside the network's ZeroTier MAC space.
    pub local_unknown_destination: u64,
    /// Broadcasts (other than ARP) on a network with broadcast disabled, either way.
    pub broadcast_disabled: u64,
    /// Frames dropped by the rules when sending / receiving.
    pub dropped_by_rules_outbound: u64,
    pub dropped_by_rules_inbound: u64,
    /// Frames from peers on a network we have not joined (or have no config for).
    pub unknown_network: u64,
    /// Frames from peers without a valid certificate of membership (answered with
    /// ERROR(NEED_MEMBERSHIP_CERTIFICATE)).
    pub membership_refused: u64,
    /// Frames from peers that claim another MAC than theirs or are for another MAC.
    pub bad_mac: u64,
    /// MULTICAST_FRAMEs refused: multicast limit 0, or a group we are not subscribed to.
    pub multicast_refused: u64,
    /// NETWORK_CREDENTIALS sent, accepted (COMs stored), refused, rate limited.
    pub credentials_sent: u64,
    pub coms_accepted: u64,
    pub coms_refused: u64,
    /// COM revocations taken (signed by the network's controller), and refused.
    pub revocations_accepted: u64,
    pub revocations_refused: u64,
    pub credentials_rate_limited: u64,
    /// MULTICAST_LIKE groups recorded, and refused (gate, bounds).
    pub likes_recorded: u64,
    pub likes_refused: u64,
    /// MULTICAST_LIKE packets sent.
    pub likes_sent: u64,
    /// MULTICAST_GATHERs sent and answered.
    pub gathers_sent: u64,
    pub gathers_answered: u64,
    /// Multicast frames that never found a recipient, or did not fit the pending queue.
    pub multicast_unsent: u64,
}

/// A multicast frame waiting for gather results.
#[derive(Debug)]
pub(super) struct PendingMulticast {
    pub(super) nwid: NetworkId,
    pub(super) group: MulticastGroup,
    pub(super) source_mac: Mac,
    pub(super) ethertype: u16,
    pub(super) payload: Vec<u8>,
    pub(super) deadline: u64,
    pub(super) sent_to: Vec<Address>,
}

/// The frame layer's bounded state.
#[derive(Debug, Default)]
pub(crate) struct FrameState {
    /// Verified COMs of peers, by (network, peer).
    pub(super) coms: HashMap<(u64, Address), CertificateOfMembership>,
    /// COM revocation thresholds by (network, member): its COMs timestamped at or below
    /// are void.
    pub(super) revocations: HashMap<(u64, Address), i64>,
    /// Verified tags of peers, by (network, peer): `(tag id, value)`, at most
    /// `MAX_TAGS_PER_PEER` each (the rules' MATCH_TAGS_* and MATCH_TAG_SENDER/RECEIVER).
    pub(super) peer_tags: HashMap<(u64, Address), Vec<(u32, u32)>>,
    /// When we last pushed our credentials to (network, peer).
    pub(super) credentials_pushed: HashMap<(u64, Address), u64>,
    /// When we last looked at credentials from a peer.
    pub(super) credentials_seen: HashMap<Address, u64>,
    /// Members of each (network, group) with the time their LIKE expires.
    pub(super) likes: BTreeMap<(u64, MulticastGroup), HashMap<Address, u64>>,
    pub(super) pending: VecDeque<PendingMulticast>,
    pub(super) next_announce: u64,
    pub(super) counters: FrameCounters,
    /// Buffers of delivered frames handed back by the driver ([`Node::recycle_frame`]).
    pub(super) pool: Vec<Vec<u8>>,
    /// The FRAME payload being built by [`Node::handle_frame`] (kept between calls).
    pub(super) scratch: Vec<u8>,
}

/// Frame buffers kept for reuse (each up to one MTU plus the Ethernet header).
pub const FRAME_POOL_LEN: usize = 256;

/// What a frame needs of a network's config (copied out so the node can be borrowed).
pub(super) struct NetView {
    pub(super) private: bool,
    pub(super) broadcast: bool,
    pub(super) multicast_limit: u32,
    /// The network's MTU: the largest Ethernet payload.
    pub(super) mtu: usize,
}

impl NetView {
    pub(super) fn of(config: &NetworkConfig) -> NetView {
        NetView {
            private: config.network_type == NetworkType::Private,
            broadcast: config.flags & FLAG_ENABLE_BROADCAST != 0,
            multicast_limit: config.multicast_limit,
            mtu: config.mtu as usize,
        }
    }
}

/// Inserts into a bounded map, evicting an arbitrary entry when full (never grows past
/// `cap`).
pub(super) fn bounded_insert<K: std::hash::Hash + Eq + Copy, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    key: K,
    value: V,
) {
    if !map.contains_key(&key)
        && map.len() >= cap
        && let Some(victim) = map.keys().next().copied()
    {
        map.remove(&victim);
    }
    map.insert(key, value);
}

impl Node {
    /// Counts of the frame layer.
    pub fn frame_counters(&self) -> &FrameCounters {
        &self.frames.counters
    }

    /// Hands back the buffer of a delivered [`Event::Frame`] so the next frame reuses it
    /// (at most [`FRAME_POOL_LEN`] are kept).
    pub fn recycle_frame(&mut self, buf: Vec<u8>) {
        if self.frames.pool.len() < FRAME_POOL_LEN && buf.capacity() > 0 {
            self.frames.pool.push(buf);
        }
    }

    /// The multicast groups we subscribe to on `nwid` (9.3): broadcast when enabled, the
    /// ARP group of each assigned IPv4, the solicited-node group of each assigned IPv6.
    pub fn multicast_groups(&self, nwid: NetworkId) -> Vec<MulticastGroup> {
        let Some(config) = self.network_config(nwid) else {
            return Vec::new();
        };
        let mut groups = Vec::new();
        if config.flags & FLAG_ENABLE_BROADCAST != 0 {
            groups.push(MulticastGroup::BROADCAST);
        }
        for ip in &config.static_ips {
            if let InetAddress::Ip(ip, _) = ip {
                let group = match crate::wire::inet_address::canonical_ip(*ip) {
                    IpAddr::V4(v4) => MulticastGroup::arp(v4),
                    IpAddr::V6(v6) => MulticastGroup::ipv6_solicited_node(v6),
                };
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
        }
        if let Some(membership) = self.networks.get(&nwid.0) {
            for group in &membership.subscriptions {
                if !groups.contains(group) {
                    groups.push(*group);
                }
            }
        }
        groups
    }

    /// Replaces the groups the local side listens to on `nwid` beyond those its config
    /// implies (e.g. the kernel's multicast memberships on the network's interface); at most
    /// [`super::network::MAX_LOCAL_SUBSCRIPTIONS`] are kept. When the set changes, it is
    /// announced at once (MULTICAST_LIKE). Returns whether it changed.
    pub fn set_multicast_subscriptions(
        &mut self,
        now: u64,
        nwid: NetworkId,
        groups: &[MulticastGroup],
    ) -> bool {
        let Some(membership) = self.networks.get_mut(&nwid.0) else {
            return false;
        };
        let mut wanted: Vec<MulticastGroup> = Vec::new();
        for group in groups {
            if wanted.len() >= super::network::MAX_LOCAL_SUBSCRIPTIONS {
                break;
            }
            if !wanted.contains(group) {
                wanted.push(*group);
            }
        }
        if membership.subscriptions == wanted {
            return false;
        }
        membership.subscriptions = wanted;
        self.announce_multicast(now, nwid);
        true
    }

    /// An Ethernet frame (destination, source, ethertype, payload) the local side sends on
    /// `nwid`. Dropped (counted) if malformed, not from our MAC, refused by the rules, or
    /// the network has no config.
    pub fn handle_frame(&mut self, now: u64, nwid: NetworkId, frame: &[u8]) {
        self.now = now;
        let Ok((header, payload)) = EthernetHeader::parse(frame) else {
            self.frames.counters.local_malformed += 1;
            return;
        };
        let Some(view) = self.network_config(nwid).map(NetView::of) else {
            self.frames.counters.local_not_configured += 1;
            return;
        };
        if payload.len() > view.mtu {
            self.frames.counters.local_too_large += 1;
            return;
        }
        let our_mac = Mac::from_address(self.address, nwid);
        if header.src != our_mac {
            self.frames.counters.local_bridging_unsupported += 1;
            return;
        }
        if header.dst.is_multicast() {
            self.send_multicast(now, nwid, &view, header, payload);
            return;
        }
        let Some(to) = header.dst.to_address(nwid).filter(|a| *a != self.address) else {
            self.frames.counters.local_unknown_destination += 1;
            return;
        };
        if !self.rules_accept(
            nwid,
            Direction::Outbound,
            (self.address, header.src),
            (to, header.dst),
            header.ethertype,
            payload,
        ) {
            self.frames.counters.dropped_by_rules_outbound += 1;
            return;
        }
        if view.private {
            self.push_credentials(now, nwid, to, false);
        }
        let mut out = std::mem::take(&mut self.frames.scratch);
        out.clear();
        Frame {
            network_id: nwid,
            ethertype: header.ethertype,
            payload,
        }
        .emit(&mut out);
        let options = SendOptions {
            class: frame_class(header.ethertype, payload),
            ..SendOptions::bulk()
        };
        if self.send_verb(now, to, Verb::Frame, &out, options).is_ok() {
            self.frames.counters.unicast_sent += 1;
        }
        self.frames.scratch = out;
    }

    pub(crate) fn network_config(&self, nwid: NetworkId) -> Option<&NetworkConfig> {
        self.networks.get(&nwid.0).and_then(|m| m.config())
    }

    /// Evaluates the network's rules (and our capabilities when sending).
    pub(super) fn rules_accept(
        &mut self,
        nwid: NetworkId,
        direction: Direction,
        source: (Address, Mac),
        dest: (Address, Mac),
        ethertype: u16,
        payload: &[u8],
    ) -> bool {
        let Some(config) = self.networks.get(&nwid.0).and_then(|m| m.config()) else {
            return false;
        };
        // Tags: ours from the config, the other member's from its verified credentials.
        // On the stack: no allocation per frame (a netconf carries at most 128 tags).
        let mut our_tags = [(0u32, 0u32); MAX_TAGS_PER_PEER];
        let mut count = 0;
        for (slot, tag) in our_tags.iter_mut().zip(&config.tags) {
            *slot = (tag.id, tag.value);
            count += 1;
        }
        let ours = &our_tags[..count];
        let other = match direction {
            Direction::Outbound => dest.0,
            Direction::Inbound => source.0,
        };
        let theirs: &[(u32, u32)] = self
            .frames
            .peer_tags
            .get(&(nwid.0, other))
            .map_or(&[], Vec::as_slice);
        let (sender_tags, receiver_tags) = match direction {
            Direction::Outbound => (ours, theirs),
            Direction::Inbound => (theirs, ours),
        };
        let info = FrameInfo::new(direction, self.address, source, dest, ethertype, payload)
            .with_tags(sender_tags, receiver_tags);
        let unsupported = config.flags & FLAG_RULES_RESULT_OF_UNSUPPORTED_MATCH != 0;
        // Capabilities are only known for ourselves: used when sending.
        let capabilities = match direction {
            Direction::Outbound => config.capabilities.as_slice(),
            Direction::Inbound => &[],
        };
        let rng = &mut self.rng;
        filter_frame(&config.rules, capabilities, &info, unsupported, || {
            rng.next_u64() as u32
        })
        .accept
    }

    /// Gate for a frame-carrying verb: true if `rx.source` may send frames on `nwid`;
    /// otherwise it is told ERROR(NEED_MEMBERSHIP_CERTIFICATE) and the frame is counted.
    pub(super) fn admit(&mut self, rx: Rx, nwid: NetworkId, view: &NetView, in_re: Verb) -> bool {
        if self.member_gate(nwid, view, rx.source) {
            self.mark_trusted(rx.now, rx.source);
            return true;
        }
        self.frames.counters.membership_refused += 1;
        let mut out = Vec::with_capacity(32);
        ErrorReply {
            in_re_verb: in_re,
            in_re_packet_id: rx.packet_id,
            body: ErrorBody::NeedMembershipCertificate(nwid),
        }
        .emit(&mut out);
        let options = SendOptions::control().via(rx.reply_route());
        let _ = self.send_verb(rx.now, rx.source, Verb::Error, &out, options);
        false
    }

    pub(super) fn view_for_peer_frame(&mut self, nwid: NetworkId) -> Option<NetView> {
        let view = self.network_config(nwid).map(NetView::of);
        if view.is_none() {
            self.frames.counters.unknown_network += 1;
        }
        view
    }

    /// Delivers an admitted frame after the inbound rules.
    pub(super) fn deliver(
        &mut self,
        nwid: NetworkId,
        source: (Address, Mac),
        dest: (Address, Mac),
        ethertype: u16,
        payload: &[u8],
    ) {
        if !self.rules_accept(nwid, Direction::Inbound, source, dest, ethertype, payload) {
            self.frames.counters.dropped_by_rules_inbound += 1;
            return;
        }
        // A recycled buffer (see `Node::recycle_frame`): no allocation per frame once warm.
        let mut data = self.frames.pool.pop().unwrap_or_default();
        data.clear();
        EthernetHeader {
            dst: dest.1,
            src: source.1,
            ethertype,
        }
        .emit_frame(payload, &mut data);
        self.frames.counters.delivered += 1;
        self.push_event(Event::Frame { nwid, data });
    }

    /// FRAME (5.8): to our MAC from the sender's.
    pub(crate) fn handle_frame_verb(&mut self, rx: Rx, frame: &Frame<'_>) {
        let nwid = frame.network_id;
        let Some(view) = self.view_for_peer_frame(nwid) else {
            return;
        };
        if !self.admit(rx, nwid, &view, Verb::Frame) {
            return;
        }
        let source = (rx.source, Mac::from_address(rx.source, nwid));
        let dest = (self.address, Mac::from_address(self.address, nwid));
        self.deliver(nwid, source, dest, frame.ethertype, frame.payload);
    }

    /// EXT_FRAME (5.9): an included COM is taken first; MACs other than the implied ones
    /// would need bridging (counted, dropped).
    pub(crate) fn handle_ext_frame(&mut self, rx: Rx, frame: &ExtFrame<'_>) {
        let nwid = frame.network_id;
        if let Some(com) = &frame.com {
            self.accept_embedded_com(rx, com);
        }
        let Some(view) = self.view_for_peer_frame(nwid) else {
            return;
        };
        if !self.admit(rx, nwid, &view, Verb::ExtFrame) {
            return;
        }
        let their_mac = Mac::from_address(rx.source, nwid);
        let our_mac = Mac::from_address(self.address, nwid);
        if frame.from != their_mac || frame.to != our_mac {
            self.frames.counters.bad_mac += 1;
            return;
        }
        self.deliver(
            nwid,
            (rx.source, their_mac),
            (self.address, our_mac),
            frame.ethertype,
            frame.payload,
        );
    }

    /// The frame layer's part of the periodic tick: subscriptions announced every
    /// `ZT_MULTICAST_ANNOUNCE_PERIOD`, expired likes and pending frames dropped.
    pub(crate) fn frames_tick(&mut self, now: u64) {
        self.expire_pending(now);
        self.frames.likes.retain(|_, members| {
            members.retain(|_, expiry| *expiry > now);
            !members.is_empty()
        });
        if now >= self.frames.next_announce {
            self.frames.next_announce = now + ZT_MULTICAST_ANNOUNCE_PERIOD;
            let nwids: Vec<NetworkId> = self.networks.keys().map(|&id| NetworkId(id)).collect();
            for nwid in nwids {
                self.announce_multicast(now, nwid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_insert_never_grows_past_the_cap() {
        let mut map = HashMap::new();
        for i in 0..100u32 {
            bounded_insert(&mut map, 8, i, i);
            assert!(map.len() <= 8);
            assert_eq!(map.get(&i), Some(&i), "the newest entry is kept");
        }
        bounded_insert(&mut map, 8, 99, 7);
        assert_eq!(map.len(), 8);
        assert_eq!(map.get(&99), Some(&7));
    }

    #[test]
    fn net_view_reads_the_flags() {
        let mut config =
            NetworkConfig::new(NetworkId(0x8056_c2e2_1c00_0001), Address::default(), 1);
        config.network_type = NetworkType::Public;
        config.flags = FLAG_ENABLE_BROADCAST;
        config.multicast_limit = 7;
        let view = NetView::of(&config);
        assert!(!view.private && view.broadcast);
        assert_eq!(view.multicast_limit, 7);
        config.network_type = NetworkType::Private;
        config.flags = 0;
        let view = NetView::of(&config);
        assert!(view.private && !view.broadcast);
    }
}
