//! Credentials between members of private networks (protocol 5.9, 7.6, 7.7): pushing our
//! COM and tags in NETWORK_CREDENTIALS (before the first frame to a peer, every
//! `ZT_PEER_ACTIVITY_TIMEOUT`, and at most once a second when asked), verifying and storing
//! peers' COMs and tags (bounded), the membership gate, and COM revocations from the
//! controller, whose thresholds only rise.

use super::Node;
use super::constants::ZT_PEER_ACTIVITY_TIMEOUT;
use super::frames::*;
use super::send::SendOptions;
use super::verbs::Rx;
use crate::wire::com::CertificateOfMembership;
use crate::wire::credentials::{CredentialType, Revocation, Tag};
use crate::wire::verbs::NetworkCredentials;
use crate::wire::{Address, NetworkId, Verb};

impl Node {
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
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
