//! The network configuration a controller issues to a member (section 7.2, 7.3): a
//! [`NetworkConfig`] read from and written to a netconf [`Dictionary`] (version 7).
//!
//! Reading checks every list against the reference's caps before allocating (32 static IPs,
//! 128 routes, 256 specialists, 1024 rules, 128 capabilities, 128 tags, 4 certificates of
//! ownership, 4 DNS servers) and refuses, where the reference silently truncates, because its
//! controller never exceeds them. Writing follows the controller's key order byte for byte.
//! Legacy configs (version < 6, text fields) are refused with [`Error::Unsupported`].

use std::net::IpAddr;

use super::com::CertificateOfMembership;
use super::credentials::{
    Capability, CertificateOfOwnership, MAX_NETCONF_CAPABILITIES, MAX_NETCONF_COOS,
    MAX_NETCONF_TAGS, Tag, emit_list, parse_list,
};
use super::cursor::{Reader, Writer};
use super::dictionary::{Dictionary, DictionaryBuilder, NETCONF_CAPACITY};
use super::rules::{Rule, emit_rules, parse_rules};
use super::{Address, Error, InetAddress, NetworkId, Result};

/// Netconf format version written (and the newest understood).
pub const NETCONF_VERSION: u64 = 7;
/// Oldest version with the binary fields; older ones are the legacy text format.
pub const MIN_NETCONF_VERSION: u64 = 6;
/// MTU when the config has none, and the clamp applied to any value.
pub const DEFAULT_MTU: u32 = 2800;
pub const MIN_MTU: u32 = 1280;
pub const MAX_MTU: u32 = 10_000;
/// Longest network name kept (the reference's 128-byte buffer with its NUL).
pub const MAX_NAME_LEN: usize = 127;
pub const MAX_STATIC_IPS: usize = 32;
pub const MAX_ROUTES: usize = 128;
pub const MAX_SPECIALISTS: usize = 256;
pub const MAX_DNS_SERVERS: usize = 4;
/// Size of the NUL-padded search domain field of `DNS`; the domain itself is at most 127.
pub const DNS_DOMAIN_FIELD_LEN: usize = 128;

/// `f` flag: Ethernet broadcast (ff:ff:ff:ff:ff:ff) works on this network.
pub const FLAG_ENABLE_BROADCAST: u64 = 0x02;
/// `f` flag: emulate NDP for the managed IPv6 address schemes.
pub const FLAG_ENABLE_IPV6_NDP_EMULATION: u64 = 0x04;
/// `f` flag: an unsupported MATCH rule evaluates to true.
pub const FLAG_RULES_RESULT_OF_UNSUPPORTED_MATCH: u64 = 0x08;
/// `f` flag: do not compress frames.
pub const FLAG_DISABLE_COMPRESSION: u64 = 0x10;

/// Specialist role bits (above the 40-bit address).
pub const SPECIALIST_ACTIVE_BRIDGE: u64 = 0x0000_0200_0000_0000;
pub const SPECIALIST_ANCHOR: u64 = 0x0000_0400_0000_0000;
pub const SPECIALIST_MULTICAST_REPLICATOR: u64 = 0x0000_0800_0000_0000;
pub const SPECIALIST_NETWORK_RELAY: u64 = 0x0000_1000_0000_0000;

/// Dictionary keys, in the order the controller writes them.
pub mod keys {
    pub const VERSION: &str = "v";
    pub const NETWORK_ID: &str = "nwid";
    pub const TIMESTAMP: &str = "ts";
    pub const CREDENTIAL_TIME_MAX_DELTA: &str = "ctmd";
    pub const REVISION: &str = "r";
    pub const ISSUED_TO: &str = "id";
    pub const REMOTE_TRACE_TARGET: &str = "tt";
    pub const REMOTE_TRACE_LEVEL: &str = "tl";
    pub const FLAGS: &str = "f";
    pub const MULTICAST_LIMIT: &str = "ml";
    pub const TYPE: &str = "t";
    pub const NAME: &str = "n";
    pub const MTU: &str = "mtu";
    pub const COM: &str = "C";
    pub const CAPABILITIES: &str = "CAP";
    pub const TAGS: &str = "TAG";
    pub const CERTIFICATES_OF_OWNERSHIP: &str = "COO";
    pub const SPECIALISTS: &str = "S";
    pub const ROUTES: &str = "RT";
    pub const STATIC_IPS: &str = "I";
    pub const RULES: &str = "R";
    pub const DNS: &str = "DNS";
    pub const SSO_VERSION: &str = "ssov";
    pub const SSO_ENABLED: &str = "ssoe";
    pub const AUTHENTICATION_URL: &str = "aurl";
    pub const AUTHENTICATION_EXPIRY_TIME: &str = "aexpt";
    pub const ISSUER_URL: &str = "iurl";
    pub const CENTRAL_ENDPOINT_URL: &str = "ssoce";
    pub const NONCE: &str = "sson";
    pub const STATE: &str = "ssos";
    pub const CLIENT_ID: &str = "ssocid";
    pub const SSO_PROVIDER: &str = "ssop";
}

/// `t`: private networks check membership certificates, public ones do not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NetworkType {
    #[default]
    Private,
    Public,
}

/// A specialist: role bits above a 40-bit address, kept raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Specialist(pub u64);

impl Specialist {
    pub fn new(address: Address, roles: u64) -> Self {
        Specialist((roles & !0xff_ffff_ffff) | address.to_u64())
    }
    pub fn address(self) -> Address {
        Address::from_u64(self.0)
    }
    pub fn has_role(self, role: u64) -> bool {
        self.0 & role != 0
    }
    pub fn is_active_bridge(self) -> bool {
        self.has_role(SPECIALIST_ACTIVE_BRIDGE)
    }
    pub fn is_anchor(self) -> bool {
        self.has_role(SPECIALIST_ANCHOR)
    }
    pub fn is_multicast_replicator(self) -> bool {
        self.has_role(SPECIALIST_MULTICAST_REPLICATOR)
    }
}

/// A managed route: the target's port slot holds the prefix length; `via` is
/// [`InetAddress::Nil`] for a route over the network itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub target: InetAddress,
    pub via: InetAddress,
    pub flags: u16,
    pub metric: u16,
}

impl Route {
    /// The target network and its prefix length, if it is an IP.
    pub fn target_network(&self) -> Option<(IpAddr, u16)> {
        ip_and_port(&self.target)
    }
    /// The gateway, if any.
    pub fn via_ip(&self) -> Option<IpAddr> {
        ip_and_port(&self.via).map(|(ip, _)| ip)
    }
}

/// `DNS`: a search domain (at most 127 bytes, no NUL) and up to 4 servers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DnsConfig {
    pub domain: Vec<u8>,
    pub servers: Vec<InetAddress>,
}

impl DnsConfig {
    /// The domain as text, if it is UTF-8.
    pub fn domain_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.domain).ok()
    }
}

/// SSO settings. String fields are written only when `Some` (version 1 controllers write
/// them all, version 0 only the authentication URL and expiry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SsoConfig {
    pub version: u64,
    pub enabled: bool,
    pub authentication_url: Option<String>,
    pub authentication_expiry: Option<u64>,
    pub issuer_url: Option<String>,
    pub central_endpoint_url: Option<String>,
    pub nonce: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
    pub provider: Option<String>,
}

// Longest SSO strings kept: the reference's buffers minus their NUL.
const MAX_URL_LEN: usize = 2047;
const MAX_NONCE_LEN: usize = 127;
const MAX_STATE_LEN: usize = 255;
const MAX_CLIENT_ID_LEN: usize = 255;
const MAX_PROVIDER_LEN: usize = 63;

/// A member's network configuration (netconf version >= 6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    pub version: u64,
    pub network_id: NetworkId,
    /// Issue time (ms); also "now" for credential time checks.
    pub timestamp: i64,
    /// Largest allowed difference between credential timestamps (ms).
    pub credential_time_max_delta: u64,
    pub revision: u64,
    pub issued_to: Address,
    /// Where remote traces go (zero address: nowhere).
    pub remote_trace_target: Address,
    pub remote_trace_level: u64,
    pub flags: u64,
    /// Multicast recipients per send (0 disables multicast).
    pub multicast_limit: u32,
    pub network_type: NetworkType,
    /// At most [`MAX_NAME_LEN`] bytes.
    pub name: String,
    /// Always within [`MIN_MTU`]..=[`MAX_MTU`].
    pub mtu: u32,
    pub com: Option<CertificateOfMembership>,
    pub capabilities: Vec<Capability>,
    pub tags: Vec<Tag>,
    pub certificates_of_ownership: Vec<CertificateOfOwnership>,
    pub specialists: Vec<Specialist>,
    pub routes: Vec<Route>,
    /// Addresses assigned to this member; the port slot is the prefix length.
    pub static_ips: Vec<InetAddress>,
    pub rules: Vec<Rule>,
    pub dns: Option<DnsConfig>,
    pub sso: SsoConfig,
}

impl NetworkConfig {
    /// A version-7 config with the controller's defaults (private, broadcast on, multicast
    /// limit 32, MTU 2800, the single-ACCEPT rule set, empty DNS).
    pub fn new(network_id: NetworkId, issued_to: Address, timestamp: i64) -> Self {
        NetworkConfig {
            version: NETCONF_VERSION,
            network_id,
            timestamp,
            credential_time_max_delta: 1_800_000,
            revision: 0,
            issued_to,
            remote_trace_target: Address::default(),
            remote_trace_level: 0,
            flags: FLAG_ENABLE_BROADCAST,
            multicast_limit: 32,
            network_type: NetworkType::Private,
            name: String::new(),
            mtu: DEFAULT_MTU,
            com: None,
            capabilities: Vec::new(),
            tags: Vec::new(),
            certificates_of_ownership: Vec::new(),
            specialists: Vec::new(),
            routes: Vec::new(),
            static_ips: Vec::new(),
            rules: Rule::default_rules(),
            dns: Some(DnsConfig::default()),
            sso: SsoConfig::default(),
        }
    }

    /// Reads a netconf dictionary (up to its first NUL, below 484,520 bytes).
    pub fn from_dictionary(bytes: &[u8]) -> Result<Self> {
        Self::from_dict(&Dictionary::parse(bytes, NETCONF_CAPACITY)?)
    }

    /// Reads a netconf from a dictionary view.
    pub fn from_dict(d: &Dictionary<'_>) -> Result<Self> {
        let version = d.get_u64_hex(keys::VERSION).unwrap_or(0);
        if version < MIN_NETCONF_VERSION {
            return Err(Error::Unsupported(
                "legacy netconf (version < 6, text format): the controller must send netconf \
                 version 7 (ZeroTier 1.2 or newer)",
            ));
        }
        let network_id = match d.get_u64_hex(keys::NETWORK_ID) {
            Some(n) if n != 0 => NetworkId(n),
            _ => return Err(Error::Malformed("netconf nwid (missing or zero)")),
        };
        let issued_to = d.get_address(keys::ISSUED_TO).unwrap_or_default();
        if issued_to.to_u64() == 0 {
            return Err(Error::Malformed(
                "netconf id (issued-to address missing or zero)",
            ));
        }
        let mtu = d.get_u64_hex(keys::MTU).unwrap_or(u64::from(DEFAULT_MTU));
        let mtu = mtu.clamp(u64::from(MIN_MTU), u64::from(MAX_MTU)) as u32;
        let network_type = match d.get_u64_hex(keys::TYPE) {
            Some(1) => NetworkType::Public,
            _ => NetworkType::Private,
        };
        let com = d
            .get(keys::COM)
            .map(|v| CertificateOfMembership::parse_exact(&v))
            .transpose()?;
        Ok(NetworkConfig {
            version,
            network_id,
            timestamp: d.get_u64_hex(keys::TIMESTAMP).unwrap_or(0) as i64,
            credential_time_max_delta: d.get_u64_hex(keys::CREDENTIAL_TIME_MAX_DELTA).unwrap_or(0),
            revision: d.get_u64_hex(keys::REVISION).unwrap_or(0),
            issued_to,
            remote_trace_target: d.get_address(keys::REMOTE_TRACE_TARGET).unwrap_or_default(),
            remote_trace_level: d.get_u64_hex(keys::REMOTE_TRACE_LEVEL).unwrap_or(0),
            flags: d.get_u64_hex(keys::FLAGS).unwrap_or(0),
            multicast_limit: u32::try_from(d.get_u64_hex(keys::MULTICAST_LIMIT).unwrap_or(0))
                .unwrap_or(u32::MAX),
            network_type,
            name: get_string(d, keys::NAME, MAX_NAME_LEN).unwrap_or_default(),
            mtu,
            com,
            capabilities: read_blob(d, keys::CAPABILITIES, |b| {
                parse_list(b, MAX_NETCONF_CAPABILITIES)
            })?,
            tags: read_blob(d, keys::TAGS, |b| parse_list(b, MAX_NETCONF_TAGS))?,
            certificates_of_ownership: read_blob(d, keys::CERTIFICATES_OF_OWNERSHIP, |b| {
                parse_list(b, MAX_NETCONF_COOS)
            })?,
            specialists: read_blob(d, keys::SPECIALISTS, parse_specialists)?,
            routes: read_blob(d, keys::ROUTES, parse_routes)?,
            static_ips: read_blob(d, keys::STATIC_IPS, parse_static_ips)?,
            rules: read_blob(d, keys::RULES, parse_rules)?,
            dns: d.get(keys::DNS).map(|v| parse_dns(&v)).transpose()?,
            sso: read_sso(d),
        })
    }

    /// The dictionary in the controller's key order (section 7.2), without a size cap.
    pub fn to_dictionary(&self) -> Vec<u8> {
        // Without a capacity limit and with valid constant keys, writing cannot fail.
        self.write_dictionary(usize::MAX).unwrap_or_default()
    }

    /// Like [`NetworkConfig::to_dictionary`], but [`Error::TooLarge`] if the result would
    /// not fit the netconf capacity (what a member can receive).
    pub fn to_dictionary_checked(&self) -> Result<Vec<u8>> {
        self.write_dictionary(NETCONF_CAPACITY)
    }

    fn write_dictionary(&self, capacity: usize) -> Result<Vec<u8>> {
        let mut d = DictionaryBuilder::new(capacity);
        d.add_u64(keys::VERSION, self.version)?;
        d.add_u64(keys::NETWORK_ID, self.network_id.0)?;
        d.add_u64(keys::TIMESTAMP, self.timestamp as u64)?;
        d.add_u64(
            keys::CREDENTIAL_TIME_MAX_DELTA,
            self.credential_time_max_delta,
        )?;
        d.add_u64(keys::REVISION, self.revision)?;
        d.add_address(keys::ISSUED_TO, self.issued_to)?;
        d.add_address(keys::REMOTE_TRACE_TARGET, self.remote_trace_target)?;
        d.add_u64(keys::REMOTE_TRACE_LEVEL, self.remote_trace_level)?;
        d.add_u64(keys::FLAGS, self.flags)?;
        d.add_u64(keys::MULTICAST_LIMIT, u64::from(self.multicast_limit))?;
        let network_type = u64::from(self.network_type == NetworkType::Public);
        d.add_u64(keys::TYPE, network_type)?;
        d.add_bytes(
            keys::NAME,
            truncate_str(&self.name, MAX_NAME_LEN).as_bytes(),
        )?;
        d.add_u64(keys::MTU, u64::from(self.mtu.clamp(MIN_MTU, MAX_MTU)))?;
        let mut blob = Vec::new();
        if let Some(com) = &self.com {
            com.emit(&mut blob);
            d.add_bytes(keys::COM, &blob)?;
        }
        add_blob(&mut d, &mut blob, keys::CAPABILITIES, |b| {
            emit_list(&self.capabilities, b)
        })?;
        add_blob(&mut d, &mut blob, keys::TAGS, |b| emit_list(&self.tags, b))?;
        add_blob(&mut d, &mut blob, keys::CERTIFICATES_OF_OWNERSHIP, |b| {
            emit_list(&self.certificates_of_ownership, b)
        })?;
        add_blob(&mut d, &mut blob, keys::SPECIALISTS, |b| {
            self.specialists.iter().for_each(|s| b.put_u64(s.0))
        })?;
        add_blob(&mut d, &mut blob, keys::ROUTES, |b| {
            for route in &self.routes {
                route.target.emit(b);
                route.via.emit(b);
                b.put_u16(route.flags);
                b.put_u16(route.metric);
            }
        })?;
        add_blob(&mut d, &mut blob, keys::STATIC_IPS, |b| {
            self.static_ips.iter().for_each(|ip| ip.emit(b))
        })?;
        add_blob(&mut d, &mut blob, keys::RULES, |b| {
            emit_rules(&self.rules, b)
        })?;
        if let Some(dns) = &self.dns {
            blob.clear();
            emit_dns(dns, &mut blob);
            d.add_bytes(keys::DNS, &blob)?;
        }
        write_sso(&mut d, &self.sso)?;
        Ok(d.finish())
    }

    /// Checks what a member must check before applying a config: it is for `network_id`
    /// and issued to `ourselves`.
    pub fn check_for(&self, network_id: NetworkId, ourselves: Address) -> Result<()> {
        if self.network_id != network_id {
            return Err(Error::Malformed("netconf nwid (not the requested network)"));
        }
        if self.issued_to != ourselves {
            return Err(Error::Malformed("netconf id (issued to another node)"));
        }
        Ok(())
    }

    pub fn is_public(&self) -> bool {
        self.network_type == NetworkType::Public
    }
    pub fn is_private(&self) -> bool {
        self.network_type == NetworkType::Private
    }
    pub fn broadcast_enabled(&self) -> bool {
        self.flags & FLAG_ENABLE_BROADCAST != 0
    }
    pub fn ndp_emulation(&self) -> bool {
        self.flags & FLAG_ENABLE_IPV6_NDP_EMULATION != 0
    }
    pub fn unsupported_match_result(&self) -> bool {
        self.flags & FLAG_RULES_RESULT_OF_UNSUPPORTED_MATCH != 0
    }
    pub fn compression_disabled(&self) -> bool {
        self.flags & FLAG_DISABLE_COMPRESSION != 0
    }

    /// Addresses of the specialists with `role` (one of the `SPECIALIST_*` bits).
    pub fn specialists_with(&self, role: u64) -> impl Iterator<Item = Address> + '_ {
        self.specialists
            .iter()
            .filter(move |s| s.has_role(role))
            .map(|s| s.address())
    }
    pub fn active_bridges(&self) -> impl Iterator<Item = Address> + '_ {
        self.specialists_with(SPECIALIST_ACTIVE_BRIDGE)
    }
    pub fn anchors(&self) -> impl Iterator<Item = Address> + '_ {
        self.specialists_with(SPECIALIST_ANCHOR)
    }
    pub fn multicast_replicators(&self) -> impl Iterator<Item = Address> + '_ {
        self.specialists_with(SPECIALIST_MULTICAST_REPLICATOR)
    }
    /// True if `address` may bridge other Ethernet hosts onto the network.
    pub fn is_active_bridge(&self, address: Address) -> bool {
        self.active_bridges().any(|a| a == address)
    }

    /// The assigned addresses with their prefix lengths.
    pub fn assigned_addresses(&self) -> impl Iterator<Item = (IpAddr, u16)> + '_ {
        self.static_ips.iter().filter_map(ip_and_port)
    }
}

fn ip_and_port(a: &InetAddress) -> Option<(IpAddr, u16)> {
    match *a {
        InetAddress::Ip(ip, port) => Some((ip, port)),
        _ => None,
    }
}

/// The reference reads the reserved InetAddress types as "no address"; so do we, so that
/// what we read is exactly what we write.
fn read_inet(r: &mut Reader<'_>) -> Result<InetAddress> {
    Ok(match InetAddress::read(r)? {
        InetAddress::Other(_) => InetAddress::Nil,
        other => other,
    })
}

/// Runs `parse` on the unescaped value of `key`; a missing key is an empty list.
fn read_blob<T>(
    d: &Dictionary<'_>,
    key: &str,
    parse: impl FnOnce(&[u8]) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    d.get(key).map_or(Ok(Vec::new()), |v| parse(&v))
}

/// Writes a blob under `key` unless `fill` writes nothing (the controller omits empty lists).
fn add_blob(
    d: &mut DictionaryBuilder,
    blob: &mut Vec<u8>,
    key: &str,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Result<()> {
    blob.clear();
    fill(blob);
    if blob.is_empty() {
        return Ok(());
    }
    d.add_bytes(key, blob)
}

fn parse_specialists(b: &[u8]) -> Result<Vec<Specialist>> {
    if !b.len().is_multiple_of(8) {
        return Err(Error::Malformed(
            "netconf specialists (not a multiple of 8 bytes)",
        ));
    }
    if b.len() / 8 > MAX_SPECIALISTS {
        return Err(Error::TooLarge("netconf specialists (more than 256)"));
    }
    let mut r = Reader::new(b);
    let mut out = Vec::with_capacity(b.len() / 8);
    while !r.is_empty() {
        out.push(Specialist(r.u64("netconf specialist")?));
    }
    Ok(out)
}

fn parse_routes(b: &[u8]) -> Result<Vec<Route>> {
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_ROUTES {
            return Err(Error::TooLarge("netconf routes (more than 128)"));
        }
        out.push(Route {
            target: read_inet(&mut r)?,
            via: read_inet(&mut r)?,
            flags: r.u16("netconf route flags")?,
            metric: r.u16("netconf route metric")?,
        });
    }
    Ok(out)
}

fn parse_static_ips(b: &[u8]) -> Result<Vec<InetAddress>> {
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_STATIC_IPS {
            return Err(Error::TooLarge("netconf static IPs (more than 32)"));
        }
        out.push(read_inet(&mut r)?);
    }
    Ok(out)
}

fn parse_dns(b: &[u8]) -> Result<DnsConfig> {
    let mut r = Reader::new(b);
    let field = r.bytes(DNS_DOMAIN_FIELD_LEN, "netconf DNS search domain")?;
    // The reference forces a NUL at byte 127.
    let field = field.get(..DNS_DOMAIN_FIELD_LEN - 1).unwrap_or(field);
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    let domain = field.get(..end).unwrap_or_default().to_vec();
    let mut servers = Vec::new();
    while !r.is_empty() {
        if servers.len() >= MAX_DNS_SERVERS {
            return Err(Error::TooLarge("netconf DNS servers (more than 4)"));
        }
        servers.push(read_inet(&mut r)?);
    }
    servers.retain(|s| *s != InetAddress::Nil);
    Ok(DnsConfig { domain, servers })
}

/// 128-byte NUL-padded domain and exactly 4 server slots, as the reference writes.
fn emit_dns(dns: &DnsConfig, out: &mut Vec<u8>) {
    let end = dns
        .domain
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(dns.domain.len())
        .min(DNS_DOMAIN_FIELD_LEN - 1);
    let domain = dns.domain.get(..end).unwrap_or_default();
    out.put_bytes(domain);
    out.resize(out.len() + DNS_DOMAIN_FIELD_LEN - domain.len(), 0);
    let servers = dns.servers.iter().filter(|s| **s != InetAddress::Nil);
    let mut written = 0;
    for server in servers.take(MAX_DNS_SERVERS) {
        server.emit(out);
        written += 1;
    }
    for _ in written..MAX_DNS_SERVERS {
        InetAddress::Nil.emit(out);
    }
}

fn read_sso(d: &Dictionary<'_>) -> SsoConfig {
    SsoConfig {
        version: d.get_u64_hex(keys::SSO_VERSION).unwrap_or(0),
        enabled: d.get_bool(keys::SSO_ENABLED).unwrap_or(false),
        authentication_url: get_string(d, keys::AUTHENTICATION_URL, MAX_URL_LEN),
        authentication_expiry: d.get_u64_hex(keys::AUTHENTICATION_EXPIRY_TIME),
        issuer_url: get_string(d, keys::ISSUER_URL, MAX_URL_LEN),
        central_endpoint_url: get_string(d, keys::CENTRAL_ENDPOINT_URL, MAX_URL_LEN),
        nonce: get_string(d, keys::NONCE, MAX_NONCE_LEN),
        state: get_string(d, keys::STATE, MAX_STATE_LEN),
        client_id: get_string(d, keys::CLIENT_ID, MAX_CLIENT_ID_LEN),
        provider: get_string(d, keys::SSO_PROVIDER, MAX_PROVIDER_LEN),
    }
}

fn write_sso(d: &mut DictionaryBuilder, sso: &SsoConfig) -> Result<()> {
    d.add_u64(keys::SSO_VERSION, sso.version)?;
    d.add_bool(keys::SSO_ENABLED, sso.enabled)?;
    let text = [
        (
            keys::AUTHENTICATION_URL,
            &sso.authentication_url,
            MAX_URL_LEN,
        ),
        (keys::ISSUER_URL, &sso.issuer_url, MAX_URL_LEN),
        (
            keys::CENTRAL_ENDPOINT_URL,
            &sso.central_endpoint_url,
            MAX_URL_LEN,
        ),
        (keys::NONCE, &sso.nonce, MAX_NONCE_LEN),
        (keys::STATE, &sso.state, MAX_STATE_LEN),
        (keys::CLIENT_ID, &sso.client_id, MAX_CLIENT_ID_LEN),
        (keys::SSO_PROVIDER, &sso.provider, MAX_PROVIDER_LEN),
    ];
    for (i, (key, value, max)) in text.into_iter().enumerate() {
        if let Some(value) = value {
            d.add_str(key, truncate_str(value, max))?;
        }
        // The expiry follows the authentication URL, as in the reference.
        if i == 0
            && let Some(expiry) = sso.authentication_expiry
        {
            d.add_u64(keys::AUTHENTICATION_EXPIRY_TIME, expiry)?;
        }
    }
    Ok(())
}

/// A text value cut to `max` bytes at a character boundary; invalid UTF-8 is replaced.
fn get_string(d: &Dictionary<'_>, key: &str, max: usize) -> Option<String> {
    d.get_str(key).map(|s| truncate_str(&s, max).to_owned())
}

fn truncate_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    // The vectors, caps and round-trip properties live in tests/netconf_vectors.rs.
    use super::*;
    use proptest::prelude::*;

    fn minimal(extra: &str) -> Vec<u8> {
        format!("v=7\nnwid=7c2dfee12c000001\nid=608938c440{extra}").into_bytes()
    }

    #[test]
    fn required_fields_and_versions() {
        let nc = NetworkConfig::from_dictionary(&minimal("")).unwrap();
        assert_eq!(nc.mtu, DEFAULT_MTU);
        assert_eq!(nc.network_type, NetworkType::Private);
        assert!(nc.com.is_none() && nc.rules.is_empty() && nc.dns.is_none());
        for text in [
            "nwid=7c2dfee12c000001\nid=608938c440",
            "v=5\nnwid=7c2dfee12c000001\nid=608938c440",
        ] {
            match NetworkConfig::from_dictionary(text.as_bytes()) {
                Err(Error::Unsupported(msg)) => assert!(msg.contains("legacy"), "{msg}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(NetworkConfig::from_dictionary(b"v=6\nnwid=1\nid=2").is_ok());
        assert!(NetworkConfig::from_dictionary(b"v=8\nnwid=1\nid=2").is_ok());
        for text in [
            "v=7\nid=2",
            "v=7\nnwid=0\nid=2",
            "v=7\nnwid=1",
            "v=7\nnwid=1\nid=0",
        ] {
            let result = NetworkConfig::from_dictionary(text.as_bytes());
            assert!(matches!(result, Err(Error::Malformed(_))), "{text}");
        }
    }

    #[test]
    fn mtu_type_and_name_limits() {
        let get = |extra: &str| NetworkConfig::from_dictionary(&minimal(extra)).unwrap();
        assert_eq!(get("\nmtu=10").mtu, MIN_MTU);
        assert_eq!(get("\nmtu=ffffffffffff").mtu, MAX_MTU);
        assert_eq!(get("\nmtu=5dc").mtu, 1500);
        assert_eq!(get("\nt=1").network_type, NetworkType::Public);
        assert_eq!(get("\nt=7").network_type, NetworkType::Private);
        assert_eq!(
            get(&format!("\nn={}", "x".repeat(300))).name.len(),
            MAX_NAME_LEN
        );
        // Cut at a character boundary: 63 two-byte characters.
        assert_eq!(get(&format!("\nn={}", "é".repeat(100))).name.len(), 126);
    }

    #[test]
    fn sso_v0_expiry_follows_the_url() {
        let mut nc = NetworkConfig::new(NetworkId(1), Address::from_u64(2), 1);
        nc.sso.enabled = true;
        nc.sso.authentication_url = Some("https://auth".into());
        nc.sso.authentication_expiry = Some(0x1234);
        let text = String::from_utf8(nc.to_dictionary()).unwrap();
        let tail = "ssov=0000000000000000\nssoe=1\naurl=https://auth\naexpt=0000000000001234";
        assert!(text.ends_with(tail), "{text}");
        assert_eq!(NetworkConfig::from_dictionary(text.as_bytes()).unwrap(), nc);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(nc) = NetworkConfig::from_dictionary(&bytes) {
                let again = NetworkConfig::from_dictionary(&nc.to_dictionary()).unwrap();
                prop_assert_eq!(again, nc);
            }
        }
    }
}
