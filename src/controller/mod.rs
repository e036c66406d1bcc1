//! The embedded network controller (protocol 10.1-10.3), sans-IO: it owns the network and
//! member objects (through a [`Store`]), the administrative operations the HTTP API exposes,
//! and the answer to NETWORK_CONFIG_REQUEST: authorization, IP assignment and a netconf
//! signed into chunks, with its COM, COO, tags and capabilities.
//!
//! The caller passes `now` (ms) everywhere; nothing here reads a clock or touches a socket.

pub mod store;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use crate::crypto::Identity;
use crate::crypto::c25519::random_bytes;
use crate::wire::com::CertificateOfMembership;
use crate::wire::credentials::{
    Capability, CertificateOfOwnership, CredentialType, FLAG_FAST_PROPAGATE,
    MAX_NETCONF_CAPABILITIES, MAX_NETCONF_TAGS, Revocation, Tag, Thing,
};
use crate::wire::dictionary::{Dictionary, METADATA_CAPACITY};
use crate::wire::managed_ip;
use crate::wire::netconf::{
    DNS_DOMAIN_FIELD_LEN, DnsConfig, FLAG_ENABLE_BROADCAST, FLAG_ENABLE_IPV6_NDP_EMULATION,
    MAX_DNS_SERVERS, MAX_MTU, MAX_NAME_LEN, MAX_ROUTES, MAX_SPECIALISTS, MAX_STATIC_IPS, MIN_MTU,
    NetworkConfig, NetworkType, Route, SPECIALIST_ACTIVE_BRIDGE, Specialist,
};
use crate::wire::netconf_chunk::split_and_sign;
use crate::wire::rules::{MAX_NETWORK_RULES, Rule};
use crate::wire::verbs::ErrorBody;
use crate::wire::{Address, InetAddress, NetworkId};

pub use store::{
    DirectoryStore, IpPool, Member, MemoryStore, Network, RouteEntry, Store, StoreError,
    V4AssignMode, V6AssignMode,
};

/// Least time between two answered requests of one member (`ZT_NETCONF_MIN_REQUEST_PERIOD`).
pub const MIN_REQUEST_PERIOD_MS: i64 = 1000;
/// Members that requested within this window get pushes after a change.
pub const PUSH_WINDOW_MS: i64 = 120_000;
/// Default COM max delta (`certificateTimeoutWindowSize` absent).
pub const DEFAULT_CREDENTIAL_WINDOW_MS: u64 = 30 * 60 * 1000;
pub const MIN_CREDENTIAL_WINDOW_MS: u64 = 5 * 60 * 1000;
pub const MAX_CREDENTIAL_WINDOW_MS: u64 = 2 * 60 * 60 * 1000;
/// Candidate addresses tried per pool, as the reference (bounds the work of one request).
pub const MAX_POOL_TRIALS: u32 = 1000;
/// Id of the one certificate of ownership issued with each config (as the reference).
pub const COO_ID: u32 = 1;
/// Custody chain length given to capabilities (the reference's maximum).
const CAPABILITY_CHAIN_LENGTH: u8 = 7;

/// Why an administrative operation failed.
#[derive(Debug)]
pub enum ControllerError {
    Store(StoreError),
    NotFound,
    /// Bad input (patch of the wrong shape, wrong network id ...).
    Invalid(String),
}

impl fmt::Display for ControllerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControllerError::Store(e) => write!(f, "{e}"),
            ControllerError::NotFound => write!(f, "not found"),
            ControllerError::Invalid(e) => write!(f, "invalid request: {e}"),
        }
    }
}

impl std::error::Error for ControllerError {}

impl From<StoreError> for ControllerError {
    fn from(e: StoreError) -> Self {
        ControllerError::Store(e)
    }
}

/// Why a NETWORK_CONFIG_REQUEST got no config.
#[derive(Debug)]
pub enum RequestError {
    /// Not one of our networks (`nwid >> 24` is not our address): drop silently.
    NotOurNetwork,
    /// Answered less than [`MIN_REQUEST_PERIOD_MS`] ago: drop silently.
    RateLimited,
    /// ERROR OBJ_NOT_FOUND.
    NotFound,
    /// ERROR NETWORK_ACCESS_DENIED.
    AccessDenied,
    /// ERROR INVALID_REQUEST (metadata not a dictionary ...).
    Invalid(&'static str),
    /// Our own failure (store, signing); nothing is sent.
    Internal(String),
}

impl RequestError {
    /// The ERROR code to answer with, or `None` to stay silent.
    pub fn error_code(&self) -> Option<u8> {
        match self {
            RequestError::NotFound => Some(ErrorBody::OBJ_NOT_FOUND),
            RequestError::AccessDenied => Some(ErrorBody::NETWORK_ACCESS_DENIED),
            RequestError::Invalid(_) => Some(ErrorBody::INVALID_REQUEST),
            RequestError::NotOurNetwork | RequestError::RateLimited | RequestError::Internal(_) => {
                None
            }
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NotOurNetwork => write!(f, "not our network"),
            RequestError::RateLimited => write!(f, "rate limited"),
            RequestError::NotFound => write!(f, "network not found"),
            RequestError::AccessDenied => write!(f, "access denied"),
            RequestError::Invalid(e) => write!(f, "invalid request: {e}"),
            RequestError::Internal(e) => write!(f, "controller failure: {e}"),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<StoreError> for RequestError {
    fn from(e: StoreError) -> Self {
        RequestError::Internal(e.to_string())
    }
}

/// A config ready to send: the typed netconf, its dictionary and the signed chunk payloads
/// (each the payload of one OK(NETWORK_CONFIG_REQUEST) or NETWORK_CONFIG).
#[derive(Clone, Debug)]
pub struct IssuedConfig {
    pub config: NetworkConfig,
    pub dictionary: Vec<u8>,
    pub update_id: u64,
    pub chunks: Vec<Vec<u8>>,
}

/// Request counters (observability and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerCounters {
    pub requests: u64,
    pub issued: u64,
    pub rate_limited: u64,
    pub not_found: u64,
    pub denied: u64,
    pub invalid: u64,
}

/// What we remember of a member's last request (not persisted).
#[derive(Clone, Debug)]
struct LastRequest {
    at: i64,
    identity: Identity,
    metadata: Vec<u8>,
}

/// The controller: signing identity, store and per-member request state.
pub struct Controller {
    identity: Identity,
    store: Box<dyn Store>,
    last_requests: HashMap<(u64, u64), LastRequest>,
    counters: ControllerCounters,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("address", &self.identity.address())
            .field("counters", &self.counters)
            .finish()
    }
}

/// Fields an API patch may not change.
const PROTECTED_NETWORK_FIELDS: [&str; 5] = ["id", "nwid", "objtype", "revision", "creationTime"];
const PROTECTED_MEMBER_FIELDS: [&str; 8] = [
    "id",
    "address",
    "nwid",
    "objtype",
    "revision",
    "creationTime",
    "identity",
    "lastAuthorizedCredentialType",
];

fn merge_patch(
    target: &mut Map<String, Value>,
    patch: &Value,
    protected: &[&str],
) -> Result<(), ControllerError> {
    let patch = patch
        .as_object()
        .ok_or_else(|| ControllerError::Invalid("patch must be a JSON object".into()))?;
    for (k, v) in patch {
        if !protected.contains(&k.as_str()) {
            target.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

fn apply_network_patch(network: &Network, patch: &Value) -> Result<Network, ControllerError> {
    let mut object = match serde_json::to_value(network) {
        Ok(Value::Object(o)) => o,
        _ => {
            return Err(ControllerError::Invalid(
                "network does not serialize".into(),
            ));
        }
    };
    merge_patch(&mut object, patch, &PROTECTED_NETWORK_FIELDS)?;
    serde_json::from_value(Value::Object(object))
        .map_err(|e| ControllerError::Invalid(e.to_string()))
}

fn apply_member_patch(member: &Member, patch: &Value) -> Result<Member, ControllerError> {
    let mut object = match serde_json::to_value(member) {
        Ok(Value::Object(o)) => o,
        _ => return Err(ControllerError::Invalid("member does not serialize".into())),
    };
    merge_patch(&mut object, patch, &PROTECTED_MEMBER_FIELDS)?;
    serde_json::from_value(Value::Object(object))
        .map_err(|e| ControllerError::Invalid(e.to_string()))
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    random_bytes(&mut b);
    u64::from_be_bytes(b)
}

impl Controller {
    /// A controller signing with `identity` (which must hold its secret key).
    pub fn new(identity: Identity, store: Box<dyn Store>) -> Controller {
        Controller {
            identity,
            store,
            last_requests: HashMap::new(),
            counters: ControllerCounters::default(),
        }
    }

    pub fn address(&self) -> Address {
        self.identity.address()
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn counters(&self) -> ControllerCounters {
        self.counters
    }

    /// Creates a network with a fresh id (`address << 24 | random`, low 24 bits non-zero),
    /// the reference defaults, and `fields` applied on top.
    pub fn create_network(&mut self, now: i64, fields: Value) -> Result<Network, ControllerError> {
        for _ in 0..64 {
            let low = random_u64() & 0xff_ffff;
            if low == 0 {
                continue;
            }
            let id = NetworkId((self.address().to_u64() << 24) | low);
            if self.store.get_network(id)?.is_none() {
                return self.create_network_with_id(now, id, fields);
            }
        }
        Err(ControllerError::Invalid("no free network id".into()))
    }

    /// Creates a network with a chosen id, which must belong to this controller.
    pub fn create_network_with_id(
        &mut self,
        now: i64,
        network_id: NetworkId,
        fields: Value,
    ) -> Result<Network, ControllerError> {
        if network_id.controller() != self.address() || network_id.0 & 0xff_ffff == 0 {
            return Err(ControllerError::Invalid("network id not ours".into()));
        }
        if self.store.get_network(network_id)?.is_some() {
            return Err(ControllerError::Invalid("network exists".into()));
        }
        let fields = if fields.is_null() {
            Value::Object(Map::new())
        } else {
            fields
        };
        let mut network = apply_network_patch(&Network::new(network_id, now), &fields)?;
        network.revision = 1;
        self.store.put_network(&network)?;
        Ok(network)
    }

    pub fn list_networks(&self) -> Result<Vec<NetworkId>, ControllerError> {
        Ok(self.store.network_ids()?)
    }

    pub fn get_network(&self, network_id: NetworkId) -> Result<Network, ControllerError> {
        self.store
            .get_network(network_id)?
            .ok_or(ControllerError::NotFound)
    }

    /// Applies a JSON patch (top-level keys replaced) and bumps `revision` if anything changed.
    pub fn update_network(
        &mut self,
        _now: i64,
        network_id: NetworkId,
        patch: &Value,
    ) -> Result<Network, ControllerError> {
        let old = self.get_network(network_id)?;
        let mut network = apply_network_patch(&old, patch)?;
        if network != old {
            network.revision = old.revision.saturating_add(1);
            self.store.put_network(&network)?;
        }
        Ok(network)
    }

    pub fn delete_network(&mut self, network_id: NetworkId) -> Result<Network, ControllerError> {
        let network = self.get_network(network_id)?;
        self.store.delete_network(network_id)?;
        self.last_requests.retain(|(n, _), _| *n != network_id.0);
        Ok(network)
    }

    pub fn list_members(&self, network_id: NetworkId) -> Result<Vec<Address>, ControllerError> {
        self.get_network(network_id)?;
        Ok(self.store.member_addresses(network_id)?)
    }

    pub fn get_member(
        &self,
        network_id: NetworkId,
        address: Address,
    ) -> Result<Member, ControllerError> {
        self.store
            .get_member(network_id, address)?
            .ok_or(ControllerError::NotFound)
    }

    /// Applies a JSON patch to a member (created if missing, as the reference API does) and
    /// records authorization changes; bumps `revision` if anything changed.
    pub fn update_member(
        &mut self,
        now: i64,
        network_id: NetworkId,
        address: Address,
        patch: &Value,
    ) -> Result<Member, ControllerError> {
        self.get_network(network_id)?;
        let old = match self.store.get_member(network_id, address)? {
            Some(m) => m,
            None => Member::new(network_id, address, now),
        };
        let mut member = apply_member_patch(&old, patch)?;
        if member.authorized && !old.authorized {
            member.last_authorized_time = now;
            member.last_authorized_credential_type = Some("api".into());
            member.last_authorized_credential = None;
        } else if !member.authorized && old.authorized {
            member.last_deauthorized_time = now;
        }
        if member != old || old.revision == 0 {
            member.revision = old.revision.saturating_add(1);
            self.store.put_member(&member)?;
        }
        Ok(member)
    }

    pub fn delete_member(
        &mut self,
        network_id: NetworkId,
        address: Address,
    ) -> Result<Member, ControllerError> {
        let member = self.get_member(network_id, address)?;
        self.store.delete_member(network_id, address)?;
        self.last_requests.remove(&(network_id.0, address.to_u64()));
        Ok(member)
    }

    /// Members that requested a config within [`PUSH_WINDOW_MS`]: they get pushes after a
    /// network or member change.
    pub fn members_to_push(&self, now: i64, network_id: NetworkId) -> Vec<Address> {
        let mut out: Vec<Address> = self
            .last_requests
            .iter()
            .filter(|((n, _), r)| *n == network_id.0 && now.saturating_sub(r.at) <= PUSH_WINDOW_MS)
            .map(|((_, a), _)| Address::from_u64(*a))
            .collect();
        out.sort_unstable();
        out
    }

    /// Rebuilds the config of a member that recently requested (for a push), with the
    /// metadata it last sent. Skips the rate limit.
    pub fn push_config(
        &mut self,
        now: i64,
        network_id: NetworkId,
        address: Address,
    ) -> Result<IssuedConfig, RequestError> {
        let last = self
            .last_requests
            .get(&(network_id.0, address.to_u64()))
            .cloned()
            .ok_or(RequestError::NotFound)?;
        self.answer(now, network_id, &last.identity, &last.metadata)
    }

    /// A signed COM revocation for `target` (threshold `now`, fast propagate), sent to online
    /// members after `target` was deauthorized (7.7). None for a member that was never
    /// authorized: it holds no certificate to revoke, and a threshold of `now` would refuse
    /// the certificate it gets if it is authorized within the same millisecond.
    pub fn revocation_for(
        &self,
        now: i64,
        network_id: NetworkId,
        target: Address,
    ) -> Option<Revocation> {
        let member = self.store.get_member(network_id, target).ok().flatten()?;
        if member.last_authorized_time == 0 {
            return None;
        }
        let mut id = [0u8; 4];
        random_bytes(&mut id);
        let mut revocation = Revocation::new(
            u32::from_be_bytes(id),
            network_id,
            0,
            now,
            FLAG_FAST_PROPAGATE,
            target,
            CredentialType::CertificateOfMembership,
        );
        revocation.sign(&self.identity).then_some(revocation)
    }

    /// Answers a NETWORK_CONFIG_REQUEST from `requester` (10.3).
    pub fn handle_config_request(
        &mut self,
        now: i64,
        network_id: NetworkId,
        requester: &Identity,
        metadata: &[u8],
    ) -> Result<IssuedConfig, RequestError> {
        self.counters.requests += 1;
        if network_id.controller() != self.address() {
            return Err(RequestError::NotOurNetwork);
        }
        let key = (network_id.0, requester.address().to_u64());
        if let Some(last) = self.last_requests.get(&key)
            && now.saturating_sub(last.at) < MIN_REQUEST_PERIOD_MS
            && now >= last.at
        {
            self.counters.rate_limited += 1;
            return Err(RequestError::RateLimited);
        }
        let result = self.answer(now, network_id, requester, metadata);
        match &result {
            Ok(_) => self.counters.issued += 1,
            Err(RequestError::NotFound) => self.counters.not_found += 1,
            Err(RequestError::AccessDenied) => self.counters.denied += 1,
            Err(RequestError::Invalid(_)) => self.counters.invalid += 1,
            Err(_) => {}
        }
        // Remember the request of members of existing networks only, so the table is bounded
        // by the member count.
        if !matches!(
            result,
            Err(RequestError::NotFound | RequestError::Invalid(_))
        ) {
            self.last_requests.insert(
                key,
                LastRequest {
                    at: now,
                    identity: requester.to_public(),
                    metadata: metadata.to_vec(),
                },
            );
        }
        result
    }

    fn answer(
        &mut self,
        now: i64,
        network_id: NetworkId,
        requester: &Identity,
        metadata: &[u8],
    ) -> Result<IssuedConfig, RequestError> {
        let network = self
            .store
            .get_network(network_id)?
            .ok_or(RequestError::NotFound)?;
        let metadata = Dictionary::parse(metadata, METADATA_CAPACITY)
            .map_err(|_| RequestError::Invalid("request metadata"))?;
        let address = requester.address();
        let (old, is_new) = match self.store.get_member(network_id, address)? {
            Some(m) => (m, false),
            None => (Member::new(network_id, address, now), true),
        };
        let mut member = old.clone();
        if is_new {
            give_defaults(&network, &mut member);
        }

        // Identity: learned once, then it must match.
        match member.identity.as_deref().filter(|s| !s.is_empty()) {
            None => member.identity = Some(requester.to_public_string()),
            Some(known) => {
                let same = known.parse::<Identity>().is_ok_and(|id| id == *requester);
                if !same {
                    return Err(RequestError::AccessDenied);
                }
            }
        }
        record_metadata(&metadata, &mut member);

        let authorized = member.authorized || authorize(now, &network, &metadata, &mut member);
        if !authorized {
            self.save_member_if_changed(&old, &mut member, is_new)?;
            return Err(RequestError::AccessDenied);
        }

        let mut config = self.build_config(now, &network, &mut member, requester, &metadata)?;
        self.save_member_if_changed(&old, &mut member, is_new)?;

        let dictionary = config
            .to_dictionary_checked()
            .map_err(|e| RequestError::Internal(e.to_string()))?;
        let update_id = loop {
            let id = random_u64();
            if id != 0 {
                break id;
            }
        };
        let chunks = split_and_sign(network_id, &dictionary, update_id, 0, &self.identity)
            .map_err(|e| RequestError::Internal(e.to_string()))?;
        let chunks = chunks
            .iter()
            .map(|c| {
                let mut out = Vec::with_capacity(c.emitted_len());
                c.emit(&mut out);
                out
            })
            .collect();
        config.version = crate::wire::netconf::NETCONF_VERSION;
        Ok(IssuedConfig {
            config,
            dictionary,
            update_id,
            chunks,
        })
    }

    fn save_member_if_changed(
        &mut self,
        old: &Member,
        member: &mut Member,
        is_new: bool,
    ) -> Result<(), StoreError> {
        if is_new || member != old {
            member.revision = old.revision.saturating_add(1);
            self.store.put_member(member)?;
        }
        Ok(())
    }

    /// Addresses already assigned to members other than `except`.
    fn taken_ips(
        &self,
        network_id: NetworkId,
        except: Address,
    ) -> Result<HashSet<IpAddr>, StoreError> {
        let mut taken = HashSet::new();
        for address in self.store.member_addresses(network_id)? {
            if address == except {
                continue;
            }
            if let Some(m) = self.store.get_member(network_id, address)? {
                taken.extend(
                    m.ip_assignments
                        .iter()
                        .filter_map(|s| s.parse::<IpAddr>().ok()),
                );
            }
        }
        Ok(taken)
    }

    fn active_bridges(&self, network_id: NetworkId) -> Result<Vec<Specialist>, StoreError> {
        let mut out = Vec::new();
        for address in self.store.member_addresses(network_id)? {
            if out.len() >= MAX_SPECIALISTS {
                break;
            }
            if let Some(m) = self.store.get_member(network_id, address)?
                && m.active_bridge
                && m.authorized
            {
                out.push(Specialist::new(address, SPECIALIST_ACTIVE_BRIDGE));
            }
        }
        Ok(out)
    }

    fn build_config(
        &self,
        now: i64,
        network: &Network,
        member: &mut Member,
        requester: &Identity,
        metadata: &Dictionary<'_>,
    ) -> Result<NetworkConfig, RequestError> {
        let network_id = network.network_id().ok_or(RequestError::NotFound)?;
        let address = requester.address();
        let mut nc = NetworkConfig::new(network_id, address, now);
        let ctmd = network
            .certificate_timeout_window_size
            .unwrap_or(DEFAULT_CREDENTIAL_WINDOW_MS)
            .clamp(MIN_CREDENTIAL_WINDOW_MS, MAX_CREDENTIAL_WINDOW_MS);
        nc.credential_time_max_delta = ctmd;
        nc.revision = network.revision;
        nc.network_type = if network.private {
            NetworkType::Private
        } else {
            NetworkType::Public
        };
        let six = &network.v6_assign_mode;
        nc.flags = 0;
        if network.enable_broadcast {
            nc.flags |= FLAG_ENABLE_BROADCAST;
        }
        if six.rfc4193 || six.six_plane {
            nc.flags |= FLAG_ENABLE_IPV6_NDP_EMULATION;
        }
        nc.remote_trace_target = network
            .remote_trace_target
            .as_deref()
            .and_then(store::parse_address)
            .unwrap_or_default();
        nc.remote_trace_level = network.remote_trace_level;
        nc.name = truncate_utf8(&network.name, MAX_NAME_LEN).to_string();
        nc.mtu = network.mtu.clamp(u64::from(MIN_MTU), u64::from(MAX_MTU)) as u32;
        nc.multicast_limit = u32::try_from(network.multicast_limit).unwrap_or(u32::MAX);
        nc.specialists = self.active_bridges(network_id)?;

        let rules_revision = metadata.get_i64_hex("revr").unwrap_or(0);
        nc.rules = if rules_revision <= 0 {
            vec![Rule::accept()]
        } else {
            network
                .rules
                .iter()
                .filter_map(Rule::from_json)
                .take(MAX_NETWORK_RULES)
                .collect()
        };
        nc.capabilities = self.capabilities_for(now, network_id, network, member, address);
        nc.tags = self.tags_for(now, network_id, member, address);
        nc.routes = routes_of(network);

        // Static IPs, in the reference order.
        let mut have_v4 = false;
        let mut have_v6 = false;
        if !member.no_auto_assign_ips {
            if six.rfc4193 {
                push_ip(
                    &mut nc.static_ips,
                    IpAddr::V6(managed_ip::rfc4193(network_id, address)),
                    u16::from(managed_ip::RFC4193_PREFIX_LEN),
                );
            }
            if six.six_plane {
                push_ip(
                    &mut nc.static_ips,
                    IpAddr::V6(managed_ip::six_plane(network_id, address)),
                    u16::from(managed_ip::SIX_PLANE_PREFIX_LEN),
                );
            }
        }
        for ip in member
            .ip_assignments
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
        {
            if let Some(bits) = longest_covering_route(&nc.routes, ip, false) {
                push_ip(&mut nc.static_ips, ip, bits);
                match ip {
                    IpAddr::V4(_) => have_v4 = true,
                    IpAddr::V6(_) => have_v6 = true,
                }
            }
        }
        let want_v6 = six.zt && !have_v6 && !member.no_auto_assign_ips;
        let want_v4 = network.v4_assign_mode.zt && !have_v4 && !member.no_auto_assign_ips;
        if want_v4 || want_v6 {
            let taken = self.taken_ips(network_id, address)?;
            if want_v6 && let Some((ip, bits)) = assign_v6(network, &nc.routes, address, &taken) {
                push_ip(&mut nc.static_ips, IpAddr::V6(ip), bits);
                member.ip_assignments.push(ip.to_string());
            }
            if want_v4 && let Some((ip, bits)) = assign_v4(network, &nc.routes, address, &taken) {
                push_ip(&mut nc.static_ips, IpAddr::V4(ip), bits);
                member.ip_assignments.push(ip.to_string());
            }
        }

        nc.dns = Some(dns_of(network));

        if !nc.static_ips.is_empty() {
            let mut coo = CertificateOfOwnership::new(network_id, now, address, COO_ID);
            for ip in &nc.static_ips {
                if let InetAddress::Ip(ip, _) = ip {
                    coo.add_thing(Thing::from_ip(*ip));
                }
            }
            if !coo.sign(&self.identity) {
                return Err(RequestError::Internal(
                    "cannot sign COO (no secret key)".into(),
                ));
            }
            nc.certificates_of_ownership = vec![coo];
        }

        let mut com = CertificateOfMembership::issue(now, ctmd, network_id, requester);
        if !com.sign(&self.identity) {
            return Err(RequestError::Internal(
                "cannot sign COM (no secret key)".into(),
            ));
        }
        nc.com = Some(com);
        Ok(nc)
    }

    fn capabilities_for(
        &self,
        now: i64,
        network_id: NetworkId,
        network: &Network,
        member: &Member,
        address: Address,
    ) -> Vec<Capability> {
        let wanted: HashSet<u64> = member
            .capabilities
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let mut out = Vec::new();
        for cap in &network.capabilities {
            if out.len() >= MAX_NETCONF_CAPABILITIES {
                break;
            }
            let Some(id) = cap.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let Ok(id32) = u32::try_from(id) else {
                continue;
            };
            if !wanted.contains(&id) {
                continue;
            }
            let rules: Vec<Rule> = cap
                .get("rules")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Rule::from_json).collect())
                .unwrap_or_default();
            let mut capability =
                Capability::new(network_id, now, id32, CAPABILITY_CHAIN_LENGTH, rules);
            if capability.sign(&self.identity, address) {
                out.push(capability);
            }
        }
        out
    }

    fn tags_for(
        &self,
        now: i64,
        network_id: NetworkId,
        member: &Member,
        address: Address,
    ) -> Vec<Tag> {
        let mut out = Vec::new();
        for pair in &member.tags {
            if out.len() >= MAX_NETCONF_TAGS {
                break;
            }
            let Some([id, value]) = pair
                .as_array()
                .and_then(|a| <&[Value; 2]>::try_from(a.as_slice()).ok())
            else {
                continue;
            };
            let (Some(id), Some(value)) = (
                id.as_u64().and_then(|v| u32::try_from(v).ok()),
                value.as_u64().and_then(|v| u32::try_from(v).ok()),
            ) else {
                continue;
            };
            let mut tag = Tag::new(network_id, now, address, id, value);
            if tag.sign(&self.identity) {
                out.push(tag);
            }
        }
        out
    }
}

/// Default capabilities and tags given to a member on its first request.
fn give_defaults(network: &Network, member: &mut Member) {
    for cap in &network.capabilities {
        if cap.get("default").and_then(Value::as_bool) == Some(true)
            && let Some(id) = cap.get("id").and_then(Value::as_u64)
        {
            member.capabilities.push(Value::from(id));
        }
    }
    for tag in &network.tags {
        if let (Some(id), Some(value)) = (
            tag.get("id").and_then(Value::as_u64),
            tag.get("default").and_then(Value::as_u64),
        ) {
            member
                .tags
                .push(Value::Array(vec![Value::from(id), Value::from(value)]));
        }
    }
}

/// vMajor/vMinor/vRev/vProto from the request metadata (5.10 keys).
fn record_metadata(metadata: &Dictionary<'_>, member: &mut Member) {
    let get = |key: &str| {
        metadata
            .get_u64_hex(key)
            .and_then(|v| i64::try_from(v).ok())
    };
    if let Some(v) = get("majv") {
        member.v_major = v;
    }
    if let Some(v) = get("minv") {
        member.v_minor = v;
    }
    if let Some(v) = get("revv") {
        member.v_rev = v;
    }
    if let Some(v) = get("pv") {
        member.v_proto = v;
    }
}

/// Public networks and valid join tokens authorize; records how.
fn authorize(now: i64, network: &Network, metadata: &Dictionary<'_>, member: &mut Member) -> bool {
    if !network.private {
        member.authorized = true;
        member.last_authorized_time = now;
        member.last_authorized_credential_type = Some("public".into());
        member.last_authorized_credential = None;
        return true;
    }
    let token = metadata
        .get_str("a")
        .and_then(|a| a.strip_prefix("token:").map(str::to_string));
    if let Some(token) = token
        && let Some(expiry) = network.auth_tokens.get(&token)
    {
        let expiry = expiry.as_i64().unwrap_or(-1);
        if expiry == 0 || expiry > now {
            member.authorized = true;
            member.last_authorized_time = now;
            member.last_authorized_credential_type = Some("token".into());
            member.last_authorized_credential = Some(token);
            return true;
        }
    }
    false
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn push_ip(ips: &mut Vec<InetAddress>, ip: IpAddr, bits: u16) {
    let entry = InetAddress::Ip(ip, bits);
    if ips.len() < MAX_STATIC_IPS && !ips.contains(&entry) {
        ips.push(entry);
    }
}

/// Parses `ip/bits` into a route target.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u16 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Network routes as netconf routes; `via` kept only if of the target's family.
fn routes_of(network: &Network) -> Vec<Route> {
    network
        .routes
        .iter()
        .filter_map(|r| {
            let (target, bits) = parse_cidr(&r.target)?;
            let via = r
                .via
                .as_deref()
                .and_then(|v| v.parse::<IpAddr>().ok())
                .filter(|v| v.is_ipv4() == target.is_ipv4())
                .map(|v| InetAddress::Ip(v, 0))
                .unwrap_or(InetAddress::Nil);
            Some(Route {
                target: InetAddress::Ip(target, bits),
                via,
                flags: 0,
                metric: 0,
            })
        })
        .take(MAX_ROUTES)
        .collect()
}

fn contains(network: IpAddr, bits: u16, ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// The prefix length of the most specific route containing `ip` (optionally only routes
/// without a gateway).
fn longest_covering_route(routes: &[Route], ip: IpAddr, direct_only: bool) -> Option<u16> {
    routes
        .iter()
        .filter(|r| !direct_only || r.via == InetAddress::Nil)
        .filter_map(|r| r.target_network())
        .filter(|&(net, bits)| contains(net, bits, ip))
        .map(|(_, bits)| bits)
        .max()
}

/// The first IPv4 route with a non-zero prefix containing `ip` (the reference's check).
fn v4_route_bits(routes: &[Route], ip: Ipv4Addr) -> Option<u16> {
    routes
        .iter()
        .filter_map(|r| r.target_network())
        .find(|&(net, bits)| bits > 0 && net.is_ipv4() && contains(net, bits, IpAddr::V4(ip)))
        .map(|(_, bits)| bits)
}

/// IPv4 pool scan (10.3 step 6): from `start + (address & 0xffffffff) mod (end - start)`,
/// skipping `.255`, taken addresses and addresses no route covers; at most
/// [`MAX_POOL_TRIALS`] candidates per pool.
pub fn assign_v4(
    network: &Network,
    routes: &[Route],
    address: Address,
    taken: &HashSet<IpAddr>,
) -> Option<(Ipv4Addr, u16)> {
    for pool in &network.ip_assignment_pools {
        let (Ok(start), Ok(end)) = (
            pool.ip_range_start.parse::<Ipv4Addr>(),
            pool.ip_range_end.parse::<Ipv4Addr>(),
        ) else {
            continue;
        };
        let (start, end) = (u32::from(start), u32::from(end));
        if end < start || start == 0 {
            continue;
        }
        let len = end - start;
        let mut counter = (address.to_u64() & 0xffff_ffff) as u32;
        let trials = u64::from(len)
            .saturating_add(1)
            .min(u64::from(MAX_POOL_TRIALS));
        for _ in 0..trials {
            let ip = if len > 0 {
                start + counter % len
            } else {
                start
            };
            counter = counter.wrapping_add(1);
            if ip & 0xff == 0xff {
                continue;
            }
            let ip = Ipv4Addr::from(ip);
            if let Some(bits) = v4_route_bits(routes, ip)
                && !taken.contains(&IpAddr::V4(ip))
            {
                return Some((ip, bits));
            }
        }
    }
    None
}

/// IPv6 pool assignment (10.3 step 6): `start + address` in the low 64 bits when the pool
/// spans at least 2^40 there, else random candidates; the address must lie inside a route
/// without a gateway and be free.
pub fn assign_v6(
    network: &Network,
    routes: &[Route],
    address: Address,
    taken: &HashSet<IpAddr>,
) -> Option<(Ipv6Addr, u16)> {
    for pool in &network.ip_assignment_pools {
        let (Ok(start), Ok(end)) = (
            pool.ip_range_start.parse::<Ipv6Addr>(),
            pool.ip_range_end.parse::<Ipv6Addr>(),
        ) else {
            continue;
        };
        let (start, end) = (u128::from(start), u128::from(end));
        if end < start {
            continue;
        }
        let span = end - start;
        let check = |candidate: u128| -> Option<(Ipv6Addr, u16)> {
            let ip = IpAddr::V6(Ipv6Addr::from(candidate));
            if candidate < start || candidate > end || taken.contains(&ip) {
                return None;
            }
            let bits = longest_covering_route(routes, ip, true)?;
            Some((Ipv6Addr::from(candidate), bits))
        };
        if span >= 1u128 << 40 {
            let low = (start as u64).wrapping_add(address.to_u64());
            let candidate = (start & !u128::from(u64::MAX)) | u128::from(low);
            if let Some(found) = check(candidate) {
                return Some(found);
            }
        } else {
            for _ in 0..MAX_POOL_TRIALS {
                let mut r = [0u8; 16];
                random_bytes(&mut r);
                let offset = u128::from_be_bytes(r) % span.saturating_add(1);
                if let Some(found) = check(start + offset) {
                    return Some(found);
                }
            }
        }
        // Only the first IPv6 pool is used, as in the reference.
        return None;
    }
    None
}

/// The netconf DNS of a network: `{"domain": …, "servers": […]}`, anything else = empty.
fn dns_of(network: &Network) -> DnsConfig {
    let mut dns = DnsConfig::default();
    if let Some(domain) = network.dns.get("domain").and_then(Value::as_str) {
        dns.domain = truncate_utf8(domain, DNS_DOMAIN_FIELD_LEN - 1)
            .as_bytes()
            .to_vec();
    }
    if let Some(servers) = network.dns.get("servers").and_then(Value::as_array) {
        dns.servers = servers
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .map(|ip| InetAddress::Ip(ip, 53))
            .take(MAX_DNS_SERVERS)
            .collect();
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("10.147.17.0/24"),
            Some((IpAddr::V4(Ipv4Addr::new(10, 147, 17, 0)), 24))
        );
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("fd00::/8").map(|c| c.1), Some(8));
        assert_eq!(parse_cidr("nonsense"), None);
    }

    #[test]
    fn containment() {
        let net = IpAddr::V4(Ipv4Addr::new(10, 147, 17, 0));
        assert!(contains(net, 24, IpAddr::V4(Ipv4Addr::new(10, 147, 17, 9))));
        assert!(!contains(
            net,
            24,
            IpAddr::V4(Ipv4Addr::new(10, 147, 18, 9))
        ));
        assert!(contains(net, 0, IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))));
        assert!(!contains(net, 24, IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn error_codes() {
        assert_eq!(RequestError::NotFound.error_code(), Some(0x03));
        assert_eq!(RequestError::AccessDenied.error_code(), Some(0x07));
        assert_eq!(RequestError::RateLimited.error_code(), None);
    }

    #[test]
    fn utf8_truncation_keeps_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
