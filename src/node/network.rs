//! Network membership and the controller role (protocol 5.10, 5.11, 8.3, 10.1, 10.3): the
//! member side of joining (NETWORK_CONFIG_REQUEST to `nwid >> 24`, retried each tick while
//! unconfigured and every `ZT_NETWORK_AUTOCONF_DELAY` after; verified chunks assembled per
//! network; ERROR from the controller sets the status), and the controller side (answering
//! requests with signed chunks from the embedded [`Controller`], or with ERROR).
//!
//! Only the config is handled here; frames, multicast and credentials are in `frames`.
//! Persisting the last good dictionary is the driver's job ([`Node::network_config_bytes`],
//! [`Node::join_with_config`]).

use std::collections::BTreeMap;

use super::constants::{SOFTWARE_VERSION, ZT_PING_CHECK_INTERVAL};
use super::send::SendOptions;
use super::verbs::Rx;
use super::{Event, Node};
use crate::controller::{Controller, RequestError};
use crate::wire::dictionary::{DictionaryBuilder, METADATA_CAPACITY};
use crate::wire::netconf::{NETCONF_VERSION, NetworkConfig};
use crate::wire::netconf_chunk::{
    Accepted, AssemblerCounters, AssemblerOptions, ConfigAssembler, ConfigChunk,
};
use crate::wire::packet::PROTOCOL_VERSION;
use crate::wire::verbs::{
    ConfigVersion, ErrorBody, ErrorReply, NetworkConfig as NetworkConfigPush, NetworkConfigAck,
    NetworkConfigRequest, NetworkCredentials, OkBody, OkReply,
};
use crate::wire::{Address, NetworkId, Verb};

/// Re-request period once configured (`ZT_NETWORK_AUTOCONF_DELAY`).
pub const ZT_NETWORK_AUTOCONF_DELAY: u64 = 60_000;

/// Networks a node may join at once (H2.10; each holds a config and an assembler).
pub const MAX_NETWORKS: usize = 256;

/// First retry of a config request while a network is unconfigured; doubles up to the tick.
/// Just above the controller's one-answer-per-second limit.
pub const UNCONFIGURED_RETRY_MS: u64 = 1_100;

/// Local multicast subscriptions kept per network (beyond it, the rest are ignored).
pub const MAX_LOCAL_SUBSCRIPTIONS: usize = 256;

/// Metadata values sent by the reference 1.14.1 (5.10).
const METADATA_VENDOR_ZEROTIER: u64 = 1;
const METADATA_MAX_RULES: u64 = 1024;
const METADATA_MAX_CAPABILITIES: u64 = 128;
const METADATA_MAX_CAPABILITY_RULES: u64 = 64;
const METADATA_MAX_TAGS: u64 = 128;
const METADATA_RULES_ENGINE_REVISION: u64 = 1;
const METADATA_OS_ARCH: &str = "linux/x86_64";

/// Where a joined network stands (the reference's `ZT_VirtualNetworkStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkStatus {
    /// No config yet; requests go to the controller.
    RequestingConfiguration,
    /// A config is in force.
    Ok,
    /// The controller says we are not authorized (ERROR NETWORK_ACCESS_DENIED).
    AccessDenied,
    /// The controller does not know the network (ERROR OBJ_NOT_FOUND or
    /// UNSUPPORTED_OPERATION).
    NotFound,
    /// The controller wants SSO authentication (ERROR NETWORK_AUTHENTICATION_REQUIRED).
    AuthenticationRequired,
}

/// A joined network, as [`Node::networks`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInfo {
    pub nwid: NetworkId,
    pub status: NetworkStatus,
    /// The config in force (assigned addresses in `static_ips`, `routes`, `mtu`, `name` ...).
    pub config: Option<NetworkConfig>,
    /// Outcomes of every config chunk offered for this network (H2.8).
    pub chunks: AssemblerCounters,
}

/// Why a join was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// Already [`MAX_NETWORKS`] networks.
    TooManyNetworks,
    /// The controller address (`nwid >> 24`) is reserved (zero, or an ad-hoc `ff..` network,
    /// which needs no controller and is not supported yet).
    InvalidNetwork,
}

impl core::fmt::Display for JoinError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            JoinError::TooManyNetworks => "too many networks joined",
            JoinError::InvalidNetwork => "network id has a reserved controller address",
        })
    }
}

impl std::error::Error for JoinError {}

/// Counts of the network layer's config traffic (every drop is counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkCounters {
    /// NETWORK_CONFIG_REQUESTs we sent (or queued for WHOIS of the controller).
    pub config_requests_sent: u64,
    /// Requests that could not even be queued.
    pub config_requests_failed: u64,
    /// Configs accepted (parsed and issued to us for the right network).
    pub configs_accepted: u64,
    /// Complete configs (or stored ones) that did not parse or were not for us.
    pub configs_rejected: u64,
    /// Chunks refused by a network's assembler (details in [`NetworkInfo::chunks`]).
    pub chunks_rejected: u64,
    /// Chunks or errors about a network from someone other than its controller.
    pub not_from_controller: u64,
    /// Chunks or errors about a network we have not joined.
    pub unknown_network: u64,
    /// NETWORK_CONFIG pushes acknowledged.
    pub pushes_acknowledged: u64,
    /// Controller role: NETWORK_CONFIG chunks pushed after a change
    /// ([`Node::controller_changed`]).
    pub configs_pushed: u64,
    /// Controller role: requests answered with a config.
    pub requests_answered: u64,
    /// Controller role: requests answered with ERROR (including UNSUPPORTED_OPERATION
    /// when we are no controller).
    pub requests_refused: u64,
    /// Controller role: requests dropped silently (rate limit, not ours, our failure).
    pub requests_ignored: u64,
}

/// One joined network.
#[derive(Debug)]
pub(crate) struct Membership {
    status: NetworkStatus,
    config: Option<NetworkConfig>,
    /// The dictionary `config` was parsed from (for the driver to persist).
    dictionary: Option<Vec<u8>>,
    assembler: ConfigAssembler,
    next_request: u64,
    /// Requests sent since the last accepted config (paces the retries while unconfigured).
    attempts: u32,
    /// Groups the local side listens to beyond those the config implies (the kernel's
    /// multicast memberships on the network's interface), at most
    /// [`MAX_LOCAL_SUBSCRIPTIONS`].
    pub(crate) subscriptions: Vec<crate::wire::mac::MulticastGroup>,
}

impl Membership {
    /// The config in force, if any.
    pub(crate) fn config(&self) -> Option<&NetworkConfig> {
        self.config.as_ref()
    }

    fn new(nwid: NetworkId, now: u64) -> Membership {
        Membership {
            status: NetworkStatus::RequestingConfiguration,
            config: None,
            dictionary: None,
            assembler: ConfigAssembler::new(nwid, AssemblerOptions::default()),
            next_request: now,
            attempts: 0,
            subscriptions: Vec::new(),
        }
    }
}

/// The networks a node has joined, by network id.
pub(crate) type Memberships = BTreeMap<u64, Membership>;

/// The metadata dictionary of a NETWORK_CONFIG_REQUEST, with the 1.14.1 keys (5.10).
fn request_metadata() -> Vec<u8> {
    let mut d = DictionaryBuilder::new(METADATA_CAPACITY);
    let entries: [(&str, u64); 12] = [
        ("v", NETCONF_VERSION),
        ("vend", METADATA_VENDOR_ZEROTIER),
        ("pv", u64::from(PROTOCOL_VERSION)),
        ("majv", u64::from(SOFTWARE_VERSION.major)),
        ("minv", u64::from(SOFTWARE_VERSION.minor)),
        ("revv", u64::from(SOFTWARE_VERSION.revision)),
        ("mr", METADATA_MAX_RULES),
        ("mc", METADATA_MAX_CAPABILITIES),
        ("mcr", METADATA_MAX_CAPABILITY_RULES),
        ("mt", METADATA_MAX_TAGS),
        ("f", 0),
        ("revr", METADATA_RULES_ENGINE_REVISION),
    ];
    // Fixed keys and short values: far below the capacity, so adding cannot fail.
    for (key, value) in entries {
        let _ = d.add_u64(key, value);
    }
    let _ = d.add_str("o", METADATA_OS_ARCH);
    d.finish()
}

/// The controller's clock: node time is milliseconds of any epoch, the controller wants a
/// signed timestamp for its credentials.
fn controller_time(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

impl Node {
    /// Joins `nwid`: the first NETWORK_CONFIG_REQUEST goes out now (after a WHOIS of the
    /// controller if it is unknown). Joining a network already joined changes nothing.
    pub fn join(&mut self, now: u64, nwid: NetworkId) -> Result<(), JoinError> {
        self.now = now;
        if self.networks.contains_key(&nwid.0) {
            return Ok(());
        }
        if nwid.controller().is_reserved() {
            return Err(JoinError::InvalidNetwork);
        }
        if self.networks.len() >= MAX_NETWORKS {
            return Err(JoinError::TooManyNetworks);
        }
        self.networks.insert(nwid.0, Membership::new(nwid, now));
        self.request_config(now, nwid);
        Ok(())
    }

    /// Joins `nwid` with a config dictionary the driver stored earlier
    /// ([`Node::network_config_bytes`]): if it parses and was issued to us for this network
    /// the network is `Ok` at once (the controller is still asked for a newer one). Returns
    /// whether the stored config was used.
    pub fn join_with_config(
        &mut self,
        now: u64,
        nwid: NetworkId,
        stored: &[u8],
    ) -> Result<bool, JoinError> {
        let fresh = !self.networks.contains_key(&nwid.0);
        if fresh {
            if nwid.controller().is_reserved() {
                return Err(JoinError::InvalidNetwork);
            }
            if self.networks.len() >= MAX_NETWORKS {
                return Err(JoinError::TooManyNetworks);
            }
            self.networks.insert(nwid.0, Membership::new(nwid, now));
        }
        self.now = now;
        let used = self.apply_dictionary(now, nwid, stored.to_vec());
        if fresh {
            self.request_config(now, nwid);
        }
        Ok(used)
    }

    /// Leaves `nwid`; false if it was not joined.
    pub fn leave(&mut self, nwid: NetworkId) -> bool {
        self.networks.remove(&nwid.0).is_some()
    }

    /// Every joined network.
    pub fn networks(&self) -> impl Iterator<Item = NetworkInfo> + '_ {
        self.networks
            .iter()
            .map(|(&id, m)| Self::network_info(NetworkId(id), m))
    }

    /// One joined network.
    pub fn network(&self, nwid: NetworkId) -> Option<NetworkInfo> {
        self.networks
            .get(&nwid.0)
            .map(|m| Self::network_info(nwid, m))
    }

    fn network_info(nwid: NetworkId, m: &Membership) -> NetworkInfo {
        NetworkInfo {
            nwid,
            status: m.status,
            config: m.config.clone(),
            chunks: *m.assembler.counters(),
        }
    }

    /// The dictionary of the config in force on `nwid` (`networks.d/<nwid>.conf`), to be
    /// persisted by the driver after [`Event::NetworkConfigured`].
    pub fn network_config_bytes(&self, nwid: NetworkId) -> Option<&[u8]> {
        self.networks
            .get(&nwid.0)
            .and_then(|m| m.dictionary.as_deref())
    }

    /// Counters of config requests, chunks and answers.
    pub fn network_counters(&self) -> &NetworkCounters {
        &self.network_counters
    }

    /// The embedded controller, if this node runs one.
    pub fn controller(&self) -> Option<&Controller> {
        self.controller.as_ref()
    }

    /// The embedded controller, for administration (the JSON API's operations).
    pub fn controller_mut(&mut self) -> Option<&mut Controller> {
        self.controller.as_mut()
    }

    /// The network part of the `ZT_PING_CHECK_INTERVAL` tick: requests that are due, and
    /// expiry of stale partial updates.
    pub(crate) fn network_tick(&mut self, now: u64) {
        let due: Vec<NetworkId> = self
            .networks
            .iter_mut()
            .filter_map(|(&id, m)| {
                m.assembler.expire(now);
                (now >= m.next_request).then_some(NetworkId(id))
            })
            .collect();
        for nwid in due {
            self.request_config(now, nwid);
        }
        self.frames_tick(now);
    }

    /// When the next config request of an unconfigured network is due (for `poll_timeout`).
    pub(crate) fn next_config_retry(&self) -> Option<u64> {
        self.networks
            .values()
            .filter(|m| m.config.is_none())
            .map(|m| m.next_request)
            .min()
    }

    /// Sends the requests of unconfigured networks that are due (between ticks).
    pub(crate) fn retry_unconfigured(&mut self, now: u64) {
        let due: Vec<NetworkId> = self
            .networks
            .iter()
            .filter(|(_, m)| m.config.is_none() && now >= m.next_request)
            .map(|(&id, _)| NetworkId(id))
            .collect();
        for nwid in due {
            self.request_config(now, nwid);
        }
    }

    /// Requests the config of every joined network that has none yet (we just came online).
    pub(crate) fn request_unconfigured(&mut self, now: u64) {
        let waiting: Vec<NetworkId> = self
            .networks
            .iter()
            .filter(|(_, m)| m.config.is_none())
            .map(|(&id, _)| NetworkId(id))
            .collect();
        for nwid in waiting {
            self.request_config(now, nwid);
        }
    }

    /// Sends one NETWORK_CONFIG_REQUEST (or asks our own controller) and schedules the next:
    /// at the next tick while unconfigured, else after `ZT_NETWORK_AUTOCONF_DELAY`.
    fn request_config(&mut self, now: u64, nwid: NetworkId) {
        let Some(m) = self.networks.get_mut(&nwid.0) else {
            return;
        };
        let have = m.config.as_ref().map_or(
            ConfigVersion {
                revision: 0,
                timestamp: 0,
            },
            |c| ConfigVersion {
                revision: c.revision,
                timestamp: u64::try_from(c.timestamp).unwrap_or(0),
            },
        );
        let configured = m.config.is_some();
        // Unconfigured: retry soon (a controller answers a member at most once per
        // MIN_REQUEST_PERIOD_MS and drops the rest silently, so a quick leave and join would
        // otherwise wait a whole tick), then back off to the tick.
        let retry = (UNCONFIGURED_RETRY_MS << m.attempts.min(3)).min(ZT_PING_CHECK_INTERVAL);
        m.attempts = m.attempts.saturating_add(1);
        m.next_request = now
            + if configured {
                ZT_NETWORK_AUTOCONF_DELAY
            } else {
                retry
            };
        let metadata = request_metadata();
        let controller = nwid.controller();
        if controller == self.address {
            self.configure_self(now, nwid, &metadata);
            return;
        }
        let mut payload = Vec::with_capacity(metadata.len() + 32);
        NetworkConfigRequest {
            network_id: nwid,
            metadata: &metadata,
            have: Some(have),
        }
        .emit(&mut payload);
        let options = SendOptions::control().compressed();
        match self.send_verb(
            now,
            controller,
            Verb::NetworkConfigRequest,
            &payload,
            options,
        ) {
            Ok(()) => self.network_counters.config_requests_sent += 1,
            Err(_) => self.network_counters.config_requests_failed += 1,
        }
    }

    /// A node that controls the network configures itself without packets.
    fn configure_self(&mut self, now: u64, nwid: NetworkId, metadata: &[u8]) {
        let identity = self.public_identity.clone();
        let Some(controller) = self.controller.as_mut() else {
            // Nobody can answer: the network stays as it is (NotFound is what a peer
            // without a controller would answer).
            self.set_network_status(nwid, NetworkStatus::NotFound);
            return;
        };
        match controller.handle_config_request(controller_time(now), nwid, &identity, metadata) {
            Ok(issued) => {
                self.apply_dictionary(now, nwid, issued.dictionary);
            }
            Err(RequestError::NotFound | RequestError::NotOurNetwork) => {
                self.set_network_status(nwid, NetworkStatus::NotFound);
            }
            Err(RequestError::AccessDenied) => {
                self.set_network_status(nwid, NetworkStatus::AccessDenied);
            }
            Err(_) => {}
        }
    }

    /// Parses and checks a complete config dictionary and puts it in force. False (counted)
    /// if it does not parse or is not ours.
    fn apply_dictionary(&mut self, now: u64, nwid: NetworkId, dictionary: Vec<u8>) -> bool {
        let parsed = NetworkConfig::from_dictionary(&dictionary)
            .and_then(|c| c.check_for(nwid, self.address).map(|()| c));
        let config = match parsed {
            Ok(c) => c,
            Err(_) => {
                self.network_counters.configs_rejected += 1;
                return false;
            }
        };
        let Some(m) = self.networks.get_mut(&nwid.0) else {
            return false;
        };
        let revision = config.revision;
        m.config = Some(config);
        m.dictionary = Some(dictionary);
        m.status = NetworkStatus::Ok;
        m.next_request = now + ZT_NETWORK_AUTOCONF_DELAY;
        m.attempts = 0;
        self.network_counters.configs_accepted += 1;
        self.push_event(Event::NetworkConfigured { nwid, revision });
        self.announce_multicast(now, nwid);
        true
    }

    /// Sets the status; `AccessDenied` also takes the config out of force (a deauthorized
    /// member must stop using its addresses and sends and receives no more frames).
    fn set_network_status(&mut self, nwid: NetworkId, status: NetworkStatus) {
        if let Some(m) = self.networks.get_mut(&nwid.0)
            && m.status != status
        {
            m.status = status;
            if status == NetworkStatus::AccessDenied {
                m.config = None;
                m.dictionary = None;
            }
            self.push_event(Event::NetworkStatus { nwid, status });
        }
    }

    /// A config chunk from OK(NETWORK_CONFIG_REQUEST) or a NETWORK_CONFIG push (`push`):
    /// only from the network's controller, for a network we joined, verified with the
    /// controller's identity. A completed push is acknowledged (5.11). False = dropped.
    pub(crate) fn handle_config_chunk(
        &mut self,
        rx: Rx,
        chunk: &ConfigChunk<'_>,
        push: bool,
    ) -> bool {
        let nwid = chunk.network_id;
        if rx.source != nwid.controller() {
            self.network_counters.not_from_controller += 1;
            return false;
        }
        // The packet authenticated, so the controller is a known peer.
        let (Some(peer), Some(m)) = (self.peers.get(&rx.source), self.networks.get_mut(&nwid.0))
        else {
            self.network_counters.unknown_network += 1;
            return false;
        };
        match m.assembler.accept(chunk, rx.source, &peer.identity, rx.now) {
            Ok(Accepted::Complete {
                update_id,
                dictionary,
            }) => {
                if self.apply_dictionary(rx.now, nwid, dictionary) && push {
                    self.acknowledge_push(rx, nwid, update_id);
                }
                true
            }
            Ok(Accepted::Partial { .. }) => true,
            Err(_) => {
                self.network_counters.chunks_rejected += 1;
                false
            }
        }
    }

    /// OK for a complete NETWORK_CONFIG, with the reference's in-re verb ECHO (5.11 quirk).
    fn acknowledge_push(&mut self, rx: Rx, nwid: NetworkId, update_id: u64) {
        let mut payload = Vec::with_capacity(32);
        OkReply {
            in_re_packet_id: rx.packet_id,
            body: OkBody::NetworkConfig(NetworkConfigAck {
                network_id: nwid,
                config_update_id: update_id,
            }),
        }
        .emit(&mut payload);
        let options = SendOptions::control().via(rx.reply_route());
        if self
            .send_verb(rx.now, rx.source, Verb::Ok, &payload, options)
            .is_ok()
        {
            self.network_counters.pushes_acknowledged += 1;
        }
    }

    /// ERROR in reply to NETWORK_CONFIG_REQUEST: counts only from the network's controller.
    pub(crate) fn handle_config_error(&mut self, rx: Rx, e: &ErrorReply<'_>) {
        let Some(nwid) = e.body.network_id() else {
            return;
        };
        if rx.source != nwid.controller() {
            self.network_counters.not_from_controller += 1;
            return;
        }
        if !self.networks.contains_key(&nwid.0) {
            self.network_counters.unknown_network += 1;
            return;
        }
        let status = match e.body {
            ErrorBody::NetworkAccessDenied(_) => NetworkStatus::AccessDenied,
            ErrorBody::ObjectNotFound(_) | ErrorBody::UnsupportedOperation(_) => {
                NetworkStatus::NotFound
            }
            ErrorBody::NetworkAuthenticationRequired { .. } => {
                NetworkStatus::AuthenticationRequired
            }
            _ => return,
        };
        self.set_network_status(nwid, status);
    }

    /// NETWORK_CONFIG_REQUEST (controller role, 10.3): answered with one OK per signed chunk
    /// (compressed), with ERROR per the controller's verdict, or with
    /// ERROR(UNSUPPORTED_OPERATION) when we run no controller.
    pub(crate) fn handle_config_request_packet(
        &mut self,
        rx: Rx,
        request: &NetworkConfigRequest<'_>,
    ) {
        let nwid = request.network_id;
        let Some(requester) = self.peers.get(&rx.source).map(|p| p.identity.to_public()) else {
            return;
        };
        let Some(controller) = self.controller.as_mut() else {
            self.send_config_error(rx, ErrorBody::UnsupportedOperation(Some(nwid)));
            return;
        };
        let issued = match controller.handle_config_request(
            controller_time(rx.now),
            nwid,
            &requester,
            request.metadata,
        ) {
            Ok(issued) => issued,
            Err(e) => {
                let body = match e.error_code() {
                    Some(ErrorBody::OBJ_NOT_FOUND) => ErrorBody::ObjectNotFound(Some(nwid)),
                    Some(ErrorBody::NETWORK_ACCESS_DENIED) => ErrorBody::NetworkAccessDenied(nwid),
                    Some(ErrorBody::INVALID_REQUEST) => ErrorBody::InvalidRequest,
                    Some(_) | None => {
                        self.network_counters.requests_ignored += 1;
                        return;
                    }
                };
                self.send_config_error(rx, body);
                return;
            }
        };
        self.network_counters.requests_answered += 1;
        let options = SendOptions::control().compressed().via(rx.reply_route());
        let mut payload = Vec::new();
        for bytes in &issued.chunks {
            let Ok(chunk) = ConfigChunk::parse(bytes) else {
                continue;
            };
            payload.clear();
            OkReply {
                in_re_packet_id: rx.packet_id,
                body: OkBody::NetworkConfigRequest(chunk),
            }
            .emit(&mut payload);
            let _ = self.send_verb(rx.now, rx.source, Verb::Ok, &payload, options);
        }
    }

    /// Controller role: call after an administrative change of `nwid` through
    /// [`Node::controller_mut`] (the JSON API does, after each update). Every member that
    /// requested a config within the controller's push window gets the new config at once as
    /// NETWORK_CONFIG chunks (they acknowledge with OK); a member no longer authorized gets
    /// ERROR(NETWORK_ACCESS_DENIED) instead, and the other members get a signed revocation of
    /// its COM in NETWORK_CREDENTIALS so they stop admitting its frames (7.7). We chose an
    /// explicit call over noticing revisions on the next tick: the change reaches members
    /// in one round trip and no per-network revision bookkeeping is needed. Returns the
    /// number of members pushed to (configs and refusals).
    pub fn controller_changed(&mut self, now: u64, nwid: NetworkId) -> usize {
        self.now = now;
        let Some(controller) = self.controller.as_ref() else {
            return 0;
        };
        let time = controller_time(now);
        let members = controller.members_to_push(time, nwid);
        let mut denied = Vec::new();
        let mut granted = Vec::new();
        for member in members {
            if member == self.address {
                // Our own membership is configured without packets.
                if self.networks.contains_key(&nwid.0) {
                    self.request_config(now, nwid);
                }
                continue;
            }
            let Some(controller) = self.controller.as_mut() else {
                return 0;
            };
            match controller.push_config(time, nwid, member) {
                Ok(issued) => {
                    self.push_issued(now, member, &issued.chunks);
                    granted.push(member);
                }
                Err(RequestError::AccessDenied) => denied.push(member),
                Err(_) => self.network_counters.requests_ignored += 1,
            }
        }
        for &member in &denied {
            self.send_unsolicited_denial(now, nwid, member);
            let revocation = self
                .controller
                .as_ref()
                .and_then(|c| c.revocation_for(time, nwid, member));
            let Some(revocation) = revocation else {
                continue;
            };
            // Our own frame layer learns it directly (we may be a member too).
            self.apply_revocation(&revocation);
            let mut payload = Vec::with_capacity(256);
            NetworkCredentials {
                coms: Vec::new(),
                capabilities: Vec::new(),
                tags: Vec::new(),
                revocations: vec![revocation],
                coos: Vec::new(),
            }
            .emit(&mut payload);
            for &to in &granted {
                let _ = self.send_verb(
                    now,
                    to,
                    Verb::NetworkCredentials,
                    &payload,
                    SendOptions::control(),
                );
            }
        }
        granted.len() + denied.len()
    }

    /// Sends an issued config to `member` as NETWORK_CONFIG pushes (one per chunk).
    fn push_issued(&mut self, now: u64, member: Address, chunks: &[Vec<u8>]) {
        let options = SendOptions::control().compressed();
        let mut payload = Vec::new();
        for bytes in chunks {
            let Ok(chunk) = ConfigChunk::parse(bytes) else {
                continue;
            };
            payload.clear();
            NetworkConfigPush { chunk }.emit(&mut payload);
            if self
                .send_verb(now, member, Verb::NetworkConfig, &payload, options)
                .is_ok()
            {
                self.network_counters.configs_pushed += 1;
            }
        }
    }

    /// ERROR(NETWORK_ACCESS_DENIED) to a member that was deauthorized, answering no packet
    /// in particular (in-re id 0): the member's status becomes `AccessDenied` at once.
    fn send_unsolicited_denial(&mut self, now: u64, nwid: NetworkId, member: Address) {
        self.network_counters.requests_refused += 1;
        let mut payload = Vec::with_capacity(32);
        ErrorReply {
            in_re_verb: Verb::NetworkConfigRequest,
            in_re_packet_id: 0,
            body: ErrorBody::NetworkAccessDenied(nwid),
        }
        .emit(&mut payload);
        let _ = self.send_verb(now, member, Verb::Error, &payload, SendOptions::control());
    }

    fn send_config_error(&mut self, rx: Rx, body: ErrorBody<'_>) {
        self.network_counters.requests_refused += 1;
        let mut payload = Vec::with_capacity(32);
        ErrorReply {
            in_re_verb: Verb::NetworkConfigRequest,
            in_re_packet_id: rx.packet_id,
            body,
        }
        .emit(&mut payload);
        let options = SendOptions::control().via(rx.reply_route());
        let _ = self.send_verb(rx.now, rx.source, Verb::Error, &payload, options);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dictionary::Dictionary;

    #[test]
    fn metadata_has_the_reference_keys() {
        let bytes = request_metadata();
        let d = Dictionary::parse(&bytes, METADATA_CAPACITY).expect("metadata parses");
        assert_eq!(d.get_u64_hex("v"), Some(NETCONF_VERSION));
        assert_eq!(d.get_u64_hex("pv"), Some(u64::from(PROTOCOL_VERSION)));
        assert_eq!(d.get_u64_hex("majv"), Some(1));
        assert_eq!(d.get_u64_hex("minv"), Some(14));
        assert_eq!(d.get_u64_hex("revv"), Some(1));
        assert_eq!(d.get_u64_hex("mr"), Some(1024));
        assert_eq!(d.get_u64_hex("revr"), Some(1));
        assert_eq!(d.get_u64_hex("f"), Some(0));
        assert_eq!(d.get_str("o").as_deref(), Some("linux/x86_64"));
    }
}
