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
//! Multicast (LIKE, GATHER, MULTICAST_FRAME) lives in `multicast`, on the state kept here.
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

use super::constants::ZT_PEER_ACTIVITY_TIMEOUT;
use super::filter::{Direction, FrameInfo, filter_frame};
use super::send::SendOptions;
use super::verbs::Rx;
use super::{Event, Node};
use crate::wire::com::CertificateOfMembership;
use crate::wire::credentials::{CredentialType, Revocation, Tag};
use crate::wire::ethernet::EthernetHeader;
use crate::wire::mac::{Mac, MulticastGroup};
use crate::wire::netconf::{
    FLAG_ENABLE_BROADCAST, FLAG_RULES_RESULT_OF_UNSUPPORTED_MATCH, NetworkConfig, NetworkType,
};
use crate::wire::verbs::{ErrorBody, ErrorReply, ExtFrame, Frame, NetworkCredentials};
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
}

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
        groups
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
        let mut out = Vec::with_capacity(payload.len() + 16);
        Frame {
            network_id: nwid,
            ethertype: header.ethertype,
            payload,
        }
        .emit(&mut out);
        if self
            .send_verb(now, to, Verb::Frame, &out, SendOptions::bulk())
            .is_ok()
        {
            self.frames.counters.unicast_sent += 1;
        }
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
        let ours: Vec<(u32, u32)> = config.tags.iter().map(|t| (t.id, t.value)).collect();
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
            Direction::Outbound => (ours.as_slice(), theirs),
            Direction::Inbound => (theirs, ours.as_slice()),
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

    /// Sends our COM to `peer` on `nwid` when due: before the first frame, again after
    /// `ZT_PEER_ACTIVITY_TIMEOUT`, or (`asked`) at most once a second.
    pub(super) fn push_credentials(
        &mut self,
        now: u64,
        nwid: NetworkId,
        peer: Address,
        asked: bool,
    ) {
        let interval = if asked {
            CREDENTIALS_RATE_LIMIT
        } else {
            ZT_PEER_ACTIVITY_TIMEOUT
        };
        let due = self
            .frames
            .credentials_pushed
            .get(&(nwid.0, peer))
            .is_none_or(|&t| now.saturating_sub(t) >= interval);
        if !due {
            return;
        }
        let Some((com, tags)) = self
            .network_config(nwid)
            .and_then(|c| Some((c.com.clone()?, c.tags.clone())))
        else {
            return;
        };
        bounded_insert(
            &mut self.frames.credentials_pushed,
            MAX_PEER_COMS,
            (nwid.0, peer),
            now,
        );
        let mut out = Vec::with_capacity(512);
        NetworkCredentials {
            coms: vec![com],
            capabilities: Vec::new(),
            tags,
            revocations: Vec::new(),
            coos: Vec::new(),
        }
        .emit(&mut out);
        if self
            .send_verb(
                now,
                peer,
                Verb::NetworkCredentials,
                &out,
                SendOptions::control(),
            )
            .is_ok()
        {
            self.frames.counters.credentials_sent += 1;
        }
    }

    /// Checks and stores a peer's COM (from NETWORK_CREDENTIALS or a frame). True if stored.
    pub(super) fn accept_com(
        &mut self,
        now: u64,
        from: Address,
        com: &CertificateOfMembership,
    ) -> bool {
        let nwid = com.network_id();
        if com.issued_to() != from || !self.networks.contains_key(&nwid.0) {
            self.frames.counters.coms_refused += 1;
            return false;
        }
        if self
            .frames
            .revocations
            .get(&(nwid.0, from))
            .is_some_and(|&threshold| com.timestamp() <= threshold)
        {
            self.frames.counters.coms_refused += 1;
            return false;
        }
        if self.frames.coms.get(&(nwid.0, from)) == Some(com) {
            // Already verified: repeated COMs in frames cost no signature check.
            return true;
        }
        let controller = nwid.controller();
        let verified = if controller == self.address {
            com.verify(&self.public_identity)
        } else if let Some(peer) = self.peers.get(&controller) {
            com.verify(&peer.identity)
        } else {
            self.request_whois(now, controller);
            false
        };
        if !verified {
            self.frames.counters.coms_refused += 1;
            return false;
        }
        bounded_insert(
            &mut self.frames.coms,
            MAX_PEER_COMS,
            (nwid.0, from),
            com.clone(),
        );
        self.frames.counters.coms_accepted += 1;
        true
    }

    /// A COM carried in EXT_FRAME, MULTICAST_GATHER or MULTICAST_FRAME: a new one is
    /// checked at most once a second per peer (the signature check is the costly part).
    pub(super) fn accept_embedded_com(&mut self, rx: Rx, com: &CertificateOfMembership) {
        let known = self.frames.coms.get(&(com.network_id().0, rx.source)) == Some(com);
        if !known && !self.credentials_allowed(rx) {
            return;
        }
        self.accept_com(rx.now, rx.source, com);
    }

    /// The per-peer rate limit of credential checks (1/s); true = go ahead (and noted).
    pub(super) fn credentials_allowed(&mut self, rx: Rx) -> bool {
        let limited = self
            .frames
            .credentials_seen
            .get(&rx.source)
            .is_some_and(|&t| rx.now.saturating_sub(t) < CREDENTIALS_RATE_LIMIT);
        if limited {
            self.frames.counters.credentials_rate_limited += 1;
            return false;
        }
        bounded_insert(
            &mut self.frames.credentials_seen,
            MAX_PEER_COMS,
            rx.source,
            rx.now,
        );
        true
    }

    /// The membership gate (7.6): public networks admit everybody; private ones a peer
    /// whose stored COM agrees with ours.
    pub(super) fn member_gate(&self, nwid: NetworkId, view: &NetView, peer: Address) -> bool {
        if !view.private {
            return true;
        }
        let (Some(ours), Some(theirs), Some(identity)) = (
            self.network_config(nwid).and_then(|c| c.com.as_ref()),
            self.frames.coms.get(&(nwid.0, peer)),
            self.peers.get(&peer).map(|p| &p.identity),
        ) else {
            return false;
        };
        theirs.agrees_with(ours, identity)
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
        let mut data = Vec::with_capacity(payload.len() + 14);
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

    /// NETWORK_CREDENTIALS (5.12): COMs and COM revocations are checked and stored, at most
    /// once a second per peer (a revocations-only packet from the networks' controller is
    /// never rate limited). Other credential kinds are not used yet.
    pub(crate) fn handle_credentials(&mut self, rx: Rx, credentials: &NetworkCredentials) {
        // Revocations straight from a network's controller skip the rate limit: the
        // controller sends them right after a config push, within the same second.
        let from_controller = credentials
            .revocations
            .iter()
            .all(|r| r.network_id.controller() == rx.source);
        let skip_limit =
            from_controller && !credentials.revocations.is_empty() && credentials.coms.is_empty();
        if !skip_limit && !self.credentials_allowed(rx) {
            return;
        }
        for revocation in &credentials.revocations {
            self.accept_revocation(rx.now, revocation);
        }
        for tag in &credentials.tags {
            self.accept_tag(rx.source, tag);
        }
        for com in &credentials.coms {
            let nwid = com.network_id();
            if self.accept_com(rx.now, rx.source, com)
                && let Some(view) = self.network_config(nwid).map(NetView::of)
                && self.member_gate(nwid, &view, rx.source)
            {
                self.mark_trusted(rx.now, rx.source);
            }
        }
    }

    /// Stores a peer's tag if it was issued to that peer by the network's controller, is
    /// within our config's credential time window, and verifies. Counted either way.
    fn accept_tag(&mut self, from: Address, tag: &Tag) {
        let nwid = tag.network_id;
        let Some(config) = self.network_config(nwid) else {
            self.frames.counters.tags_refused += 1;
            return;
        };
        let in_window =
            tag.timestamp.abs_diff(config.timestamp) <= config.credential_time_max_delta;
        let controller = nwid.controller();
        let verified = tag.issued_to == from
            && in_window
            && if controller == self.address {
                tag.verify(&self.public_identity)
            } else {
                self.peers
                    .get(&controller)
                    .is_some_and(|p| tag.verify(&p.identity))
            };
        if !verified {
            self.frames.counters.tags_refused += 1;
            return;
        }
        let mut tags = self
            .frames
            .peer_tags
            .get(&(nwid.0, from))
            .cloned()
            .unwrap_or_default();
        if let Some(entry) = tags.iter_mut().find(|(id, _)| *id == tag.id) {
            entry.1 = tag.value;
        } else if tags.len() < MAX_TAGS_PER_PEER {
            tags.push((tag.id, tag.value));
        } else {
            self.frames.counters.tags_refused += 1;
            return;
        }
        bounded_insert(
            &mut self.frames.peer_tags,
            MAX_PEER_COMS,
            (nwid.0, from),
            tags,
        );
        self.frames.counters.tags_accepted += 1;
    }

    /// Checks a revocation (a COM revocation for a network we joined, signed by its
    /// controller) and applies it. True if taken.
    fn accept_revocation(&mut self, now: u64, revocation: &Revocation) -> bool {
        let nwid = revocation.network_id;
        let controller = nwid.controller();
        if revocation.credential_type != CredentialType::CertificateOfMembership
            || revocation.signed_by != controller
            || !self.networks.contains_key(&nwid.0)
        {
            self.frames.counters.revocations_refused += 1;
            return false;
        }
        let known = self
            .frames
            .revocations
            .get(&(nwid.0, revocation.target))
            .is_some_and(|&t| t >= revocation.threshold);
        if known {
            return true;
        }
        let verified = if controller == self.address {
            revocation.verify(&self.public_identity)
        } else if let Some(peer) = self.peers.get(&controller) {
            revocation.verify(&peer.identity)
        } else {
            self.request_whois(now, controller);
            false
        };
        if !verified {
            self.frames.counters.revocations_refused += 1;
            return false;
        }
        self.apply_revocation(revocation);
        self.frames.counters.revocations_accepted += 1;
        true
    }

    /// Records a verified COM revocation and drops the target's COM if it is covered.
    pub(super) fn apply_revocation(&mut self, revocation: &Revocation) {
        let key = (revocation.network_id.0, revocation.target);
        let threshold = self
            .frames
            .revocations
            .get(&key)
            .map_or(revocation.threshold, |&t| t.max(revocation.threshold));
        bounded_insert(
            &mut self.frames.revocations,
            MAX_REVOCATIONS,
            key,
            threshold,
        );
        if self
            .frames
            .coms
            .get(&key)
            .is_some_and(|com| com.timestamp() <= threshold)
        {
            self.frames.coms.remove(&key);
        }
    }

    /// ERROR(NEED_MEMBERSHIP_CERTIFICATE) from a peer: push our COM at once (<= 1/s).
    pub(crate) fn handle_need_membership(&mut self, rx: Rx, nwid: NetworkId) {
        if self.network_config(nwid).is_some() {
            self.push_credentials(rx.now, nwid, rx.source, true);
        }
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

    /// A node running the controller of a public network it joined (configured without
    /// packets), built from the reference identities (id1 node, id3 root).
    fn controller_member() -> (Node, NetworkId, crate::crypto::Identity) {
        use crate::controller::{Controller, MemoryStore};
        use crate::wire::world::{Root, World, WorldType};
        let read = |n: u8| -> crate::crypto::Identity {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/vectors/reference")
                .join(format!("id{n}.secret"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()));
            text.trim().parse().expect("reference identity parses")
        };
        let (me, root, other) = (read(1), read(3), read(2));
        let (public, secret) = crate::crypto::c25519::generate_keypair();
        let mut planet = World {
            world_type: WorldType::Planet,
            id: 77,
            timestamp: 5,
            updates_must_be_signed_by: public,
            signature: [0; crate::crypto::c25519::SIGNATURE_LEN],
            roots: vec![Root {
                identity: root.to_public(),
                stable_endpoints: Vec::new(),
            }],
        };
        planet.sign(&secret);
        let mut admin = Controller::new(me.clone(), Box::new(MemoryStore::new()));
        let nwid = admin
            .create_network(1_000, serde_json::json!({"private": false}))
            .expect("network")
            .network_id()
            .expect("nwid");
        let mut config = super::super::NodeConfig::new(me, planet);
        config.rng_seed = Some(3);
        config.controller = Some(admin);
        let mut node = Node::new(config, 1_000);
        node.join(1_000, nwid).expect("join");
        assert!(node.network_config(nwid).is_some(), "configured itself");
        (node, nwid, other)
    }

    #[test]
    fn revocations_are_checked_and_thresholds_only_rise() {
        let (mut node, nwid, other) = controller_member();
        let target = Address::from_u64(0x01_0203_0405);
        let signed = |node: &Node, threshold: i64, kind: CredentialType| {
            let mut r = Revocation::new(1, nwid, 0, threshold, 0, target, kind);
            let identity = node.controller().expect("controller").identity().clone();
            assert!(r.sign(&identity));
            r
        };
        let good = signed(&node, 5_000, CredentialType::CertificateOfMembership);
        assert!(node.accept_revocation(2_000, &good));
        assert_eq!(node.frames.revocations.get(&(nwid.0, target)), Some(&5_000));
        // A lower threshold never lowers the stored one.
        let lower = signed(&node, 10, CredentialType::CertificateOfMembership);
        assert!(node.accept_revocation(2_000, &lower));
        assert_eq!(node.frames.revocations.get(&(nwid.0, target)), Some(&5_000));
        // Other credential kinds, other signers, forged signatures, unknown networks: refused.
        let capability = signed(&node, 9_000, CredentialType::Capability);
        assert!(!node.accept_revocation(2_000, &capability));
        let mut by_other = Revocation::new(
            2,
            nwid,
            0,
            9_000,
            0,
            target,
            CredentialType::CertificateOfMembership,
        );
        assert!(by_other.sign(&other));
        assert!(!node.accept_revocation(2_000, &by_other));
        let mut forged = by_other.clone();
        forged.signed_by = nwid.controller();
        assert!(!node.accept_revocation(2_000, &forged));
        let mut elsewhere = good.clone();
        elsewhere.network_id = NetworkId(nwid.0 ^ 1);
        assert!(!node.accept_revocation(2_000, &elsewhere));
        assert_eq!(node.frames.counters.revocations_accepted, 1);
        assert_eq!(node.frames.counters.revocations_refused, 4);
        assert_eq!(node.frames.revocations.get(&(nwid.0, target)), Some(&5_000));
    }

    #[test]
    fn revocation_thresholds_are_bounded() {
        let (mut node, nwid, _) = controller_member();
        for i in 0..(MAX_REVOCATIONS as u64 + 50) {
            let r = Revocation::new(
                1,
                nwid,
                0,
                7,
                0,
                Address::from_u64(0x02_0000_0000 + i),
                CredentialType::CertificateOfMembership,
            );
            node.apply_revocation(&r);
            assert!(node.frames.revocations.len() <= MAX_REVOCATIONS);
        }
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
