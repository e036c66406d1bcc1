//! Multicast on joined networks (protocol 5.8, 5.12, 5.13, 9.3): announcing our groups with
//! MULTICAST_LIKE, recording other members' LIKEs (bounded, expiring), answering and sending
//! MULTICAST_GATHER, and sending and receiving MULTICAST_FRAME. Frames waiting for gather
//! results are bounded in number and time.

use super::Node;
use super::filter::Direction;
use super::frames::*;
use super::replies::ReplyKind;
use super::send::SendOptions;
use super::verbs::Rx;
use crate::wire::ethernet::{EthernetHeader, ethertype};
use crate::wire::mac::{Mac, MulticastGroup};
use crate::wire::netconf::NetworkType;
use crate::wire::verbs::{
    AddressList, GatherResults, MulticastFrame, MulticastGather, MulticastLike, OkBody,
    OkMulticastGather, OkReply,
};
use crate::wire::{Address, NetworkId, Verb};

impl Node {
    /// MULTICAST_LIKE of our groups on `nwid` to the controller, the upstreams and the
    /// members whose COM we hold (9.1).
    pub(crate) fn announce_multicast(&mut self, now: u64, nwid: NetworkId) {
        let groups = self.multicast_groups(nwid);
        if groups.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(groups.len() * MulticastLike::TUPLE_LEN);
        for group in groups.iter().take(MAX_LIKES_PER_PACKET) {
            MulticastLike::emit_tuple(nwid, group, &mut out);
        }
        let mut targets: Vec<Address> = vec![nwid.controller()];
        targets.extend(
            self.topology
                .upstreams()
                .iter()
                .map(|u| u.identity.address()),
        );
        targets.extend(
            self.frames
                .coms
                .keys()
                .filter(|(id, _)| *id == nwid.0)
                .map(|(_, a)| *a),
        );
        targets.sort();
        targets.dedup();
        for to in targets {
            if to == self.address {
                // We are the controller or a root: record our own subscription.
                for group in &groups {
                    self.record_like(now, nwid, *group, to);
                }
                continue;
            }
            if self
                .send_verb(now, to, Verb::MulticastLike, &out, SendOptions::control())
                .is_ok()
            {
                self.frames.counters.likes_sent += 1;
            }
        }
    }

    pub(super) fn record_like(
        &mut self,
        now: u64,
        nwid: NetworkId,
        group: MulticastGroup,
        member: Address,
    ) {
        let key = (nwid.0, group);
        if !self.frames.likes.contains_key(&key) && self.frames.likes.len() >= MAX_MULTICAST_GROUPS
        {
            self.frames.counters.likes_refused += 1;
            return;
        }
        let members = self.frames.likes.entry(key).or_default();
        if !members.contains_key(&member) && members.len() >= MAX_MEMBERS_PER_GROUP {
            self.frames.counters.likes_refused += 1;
            return;
        }
        members.insert(member, now + ZT_MULTICAST_LIKE_EXPIRE);
        self.frames.counters.likes_recorded += 1;
    }

    /// Known live members of a group (never us), up to `limit`.
    pub(super) fn members_of(
        &self,
        now: u64,
        nwid: NetworkId,
        group: MulticastGroup,
        excluding: Address,
        limit: usize,
    ) -> Vec<Address> {
        let mut members: Vec<Address> = self
            .frames
            .likes
            .get(&(nwid.0, group))
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(a, expiry)| **expiry > now && **a != self.address && **a != excluding)
            .map(|(a, _)| *a)
            .collect();
        members.sort();
        members.truncate(limit);
        members
    }

    /// MULTICAST_LIKE (5.13): recorded if we are not a member of the network (roots,
    /// controllers) or the sender passes the membership gate.
    pub(crate) fn handle_multicast_like(&mut self, rx: Rx, like: &MulticastLike<'_>) {
        for (nwid, group) in like.iter() {
            let allowed = match self.network_config(nwid).map(NetView::of) {
                Some(view) => self.member_gate(nwid, &view, rx.source),
                None => true,
            };
            if allowed {
                self.record_like(rx.now, nwid, group, rx.source);
            } else {
                self.frames.counters.likes_refused += 1;
            }
        }
    }

    /// MULTICAST_GATHER (5.13): answered with up to the asked number of known members,
    /// the asker excluded.
    pub(crate) fn handle_multicast_gather(&mut self, rx: Rx, gather: &MulticastGather) {
        if let Some(com) = &gather.com {
            self.accept_embedded_com(rx, com);
        }
        let nwid = gather.network_id;
        let limit = gather.gather_limit.min(MAX_GATHER_MEMBERS) as usize;
        let all = self.members_of(rx.now, nwid, gather.group, rx.source, usize::MAX);
        let total_known = u32::try_from(all.len()).unwrap_or(u32::MAX);
        let mut bytes = Vec::with_capacity(limit * Address::LEN);
        for a in all.iter().take(limit) {
            bytes.extend_from_slice(&a.to_bytes());
        }
        let Ok(members) = AddressList::new(&bytes) else {
            return;
        };
        let reply = OkReply {
            in_re_packet_id: rx.packet_id,
            body: OkBody::MulticastGather(OkMulticastGather {
                network_id: nwid,
                group: gather.group,
                results: GatherResults {
                    total_known,
                    members,
                },
            }),
        };
        let mut out = Vec::with_capacity(bytes.len() + 48);
        reply.emit(&mut out);
        let options = SendOptions::control().via(rx.reply_route());
        if self
            .send_verb(rx.now, rx.source, Verb::Ok, &out, options)
            .is_ok()
        {
            self.frames.counters.gathers_answered += 1;
        }
    }

    /// OK(MULTICAST_GATHER) matching a gather we sent: the members are recorded and
    /// waiting frames for the group are sent to those not yet served.
    pub(crate) fn handle_gather_results(&mut self, now: u64, ok: &OkMulticastGather<'_>) {
        for member in ok.results.members.iter() {
            if member != self.address && !member.is_reserved() {
                self.record_like(now, ok.network_id, ok.group, member);
            }
        }
        self.expire_pending(now);
        let mut pending = std::mem::take(&mut self.frames.pending);
        for p in pending
            .iter_mut()
            .filter(|p| p.nwid == ok.network_id && p.group == ok.group)
        {
            let limit = self
                .network_config(p.nwid)
                .map_or(0, |c| c.multicast_limit as usize);
            let wanted = self.members_of(now, p.nwid, p.group, self.address, limit);
            for to in wanted {
                if p.sent_to.len() >= limit || p.sent_to.contains(&to) {
                    continue;
                }
                p.sent_to.push(to);
                let (nwid, group, mac, ethertype) = (p.nwid, p.group, p.source_mac, p.ethertype);
                self.send_multicast_to(now, nwid, to, group, mac, ethertype, &p.payload);
            }
        }
        self.frames.pending = pending;
    }

    pub(super) fn expire_pending(&mut self, now: u64) {
        let mut unsent = 0;
        self.frames.pending.retain(|p| {
            let live = p.deadline > now;
            // Frames that expired without any recipient never left.
            if !live && p.sent_to.is_empty() {
                unsent += 1;
            }
            live
        });
        self.frames.counters.multicast_unsent += unsent;
    }

    /// A multicast or broadcast frame from the local side (9.3): an ARP request goes to
    /// the ARP group of its target; sent to known members up to the multicast limit, with a
    /// gather to the best root and the controller when fewer are known.
    pub(super) fn send_multicast(
        &mut self,
        now: u64,
        nwid: NetworkId,
        view: &NetView,
        header: EthernetHeader,
        payload: &[u8],
    ) {
        let arp_target = (header.ethertype == ethertype::ARP)
            .then(|| crate::wire::arp::ipv4_request_target(payload))
            .flatten();
        let group = match arp_target {
            Some(ip) if header.dst.is_broadcast() => MulticastGroup::arp(ip),
            _ => MulticastGroup::new(header.dst, 0),
        };
        if header.dst.is_broadcast() && !view.broadcast && arp_target.is_none() {
            self.frames.counters.broadcast_disabled += 1;
            return;
        }
        if !self.rules_accept(
            nwid,
            Direction::Outbound,
            (self.address, header.src),
            (Address::default(), header.dst),
            header.ethertype,
            payload,
        ) {
            self.frames.counters.dropped_by_rules_outbound += 1;
            return;
        }
        let limit = view.multicast_limit as usize;
        let members = self.members_of(now, nwid, group, self.address, limit);
        for &to in &members {
            if view.private {
                self.push_credentials(now, nwid, to, false);
            }
            self.send_multicast_to(now, nwid, to, group, header.src, header.ethertype, payload);
        }
        if members.len() >= limit {
            return;
        }
        self.send_gather(now, nwid, group, limit - members.len());
        self.expire_pending(now);
        if self.frames.pending.len() >= MAX_PENDING_MULTICASTS {
            self.frames.counters.multicast_unsent += 1;
            return;
        }
        self.frames.pending.push_back(PendingMulticast {
            nwid,
            group,
            source_mac: header.src,
            ethertype: header.ethertype,
            payload: payload.to_vec(),
            deadline: now + MULTICAST_PENDING_TIMEOUT,
            sent_to: members,
        });
    }

    pub(super) fn send_gather(
        &mut self,
        now: u64,
        nwid: NetworkId,
        group: MulticastGroup,
        want: usize,
    ) {
        let mut out = Vec::with_capacity(32);
        MulticastGather {
            network_id: nwid,
            flags: 0,
            group,
            gather_limit: u32::try_from(want).unwrap_or(MAX_GATHER_MEMBERS),
            com: None,
        }
        .emit(&mut out);
        let mut targets = vec![nwid.controller()];
        targets.extend(self.best_root(now, None));
        targets.dedup();
        let options = SendOptions::control().expecting(ReplyKind::Other(Verb::MulticastGather));
        for to in targets {
            if to != self.address
                && self
                    .send_verb(now, to, Verb::MulticastGather, &out, options)
                    .is_ok()
            {
                self.frames.counters.gathers_sent += 1;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_multicast_to(
        &mut self,
        now: u64,
        nwid: NetworkId,
        to: Address,
        group: MulticastGroup,
        source_mac: Mac,
        ethertype: u16,
        payload: &[u8],
    ) {
        if self
            .network_config(nwid)
            .is_some_and(|c| c.network_type == NetworkType::Private)
        {
            self.push_credentials(now, nwid, to, false);
        }
        let implied = Mac::from_address(self.address, nwid);
        let mut out = Vec::with_capacity(payload.len() + 40);
        MulticastFrame {
            network_id: nwid,
            flags: 0,
            com: None,
            gather_limit: None,
            source_mac: (source_mac != implied).then_some(source_mac),
            group,
            ethertype,
            payload,
        }
        .emit(&mut out);
        if self
            .send_verb(now, to, Verb::MulticastFrame, &out, SendOptions::bulk())
            .is_ok()
        {
            self.frames.counters.multicast_sent += 1;
        }
    }

    /// MULTICAST_FRAME (5.13): membership gate, multicast limit > 0, a unicast source MAC
    /// that is not ours, a group we subscribe to, broadcast enabled (or ARP), the rules.
    pub(crate) fn handle_multicast_frame(&mut self, rx: Rx, frame: &MulticastFrame<'_>) {
        let nwid = frame.network_id;
        if let Some(com) = &frame.com {
            self.accept_embedded_com(rx, com);
        }
        let Some(view) = self.view_for_peer_frame(nwid) else {
            return;
        };
        if !self.admit(rx, nwid, &view, Verb::MulticastFrame) {
            return;
        }
        let our_mac = Mac::from_address(self.address, nwid);
        let source_mac = frame
            .source_mac
            .unwrap_or_else(|| Mac::from_address(rx.source, nwid));
        if !source_mac.is_unicast() || source_mac == our_mac {
            self.frames.counters.bad_mac += 1;
            return;
        }
        if view.multicast_limit == 0 || !self.multicast_groups(nwid).contains(&frame.group) {
            self.frames.counters.multicast_refused += 1;
            return;
        }
        if frame.group.mac.is_broadcast() && !view.broadcast && frame.ethertype != ethertype::ARP {
            self.frames.counters.broadcast_disabled += 1;
            return;
        }
        self.deliver(
            nwid,
            (rx.source, source_mac),
            (Address::default(), frame.group.mac),
            frame.ethertype,
            frame.payload,
        );
    }
}
