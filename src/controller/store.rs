//! Controller storage: network and member objects as JSON in the reference `controller.d/`
//! layout (protocol 10.2), behind a [`Store`] trait with an in-memory and a directory
//! implementation.
//!
//! ```text
//! network/<nwid 16 hex>.json
//! network/<nwid 16 hex>/member/<address 10 hex>.json
//! ```
//!
//! Every field the reference writes is typed here with the reference default when missing;
//! fields we do not know are kept in `extra` so data moved over from a reference controller
//! survives a round trip. Fields whose reference encoding is irregular (`authTokens`, `dns`,
//! rules, capabilities, tags) stay raw JSON values and are interpreted leniently by the
//! config builder.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::wire::{Address, NetworkId};

/// Largest object file the directory store reads (a reference object is a few KiB).
pub const MAX_OBJECT_FILE_LEN: u64 = 1024 * 1024;

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    Io(std::io::Error),
    Json(serde_json::Error),
    /// A file larger than [`MAX_OBJECT_FILE_LEN`].
    TooLarge(PathBuf),
    /// A symbolic link where an object file or directory was expected.
    Symlink(PathBuf),
    /// A file or object id that is not exactly 16 (network) or 10 (member) lowercase hex.
    BadName(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "controller store I/O: {e}"),
            StoreError::Json(e) => write!(f, "controller store JSON: {e}"),
            StoreError::TooLarge(p) => write!(f, "{} is larger than 1 MiB", p.display()),
            StoreError::Symlink(p) => write!(f, "{} is a symbolic link", p.display()),
            StoreError::BadName(n) => write!(f, "invalid object name {n:?}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Json(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// `true` if `s` is exactly `len` lowercase hex digits (the only names the reference loads).
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses a 16-lowercase-hex network id.
pub fn parse_network_id(s: &str) -> Option<NetworkId> {
    is_lower_hex(s, 16)
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
        .map(NetworkId)
}

/// Parses a 10-lowercase-hex node address.
pub fn parse_address(s: &str) -> Option<Address> {
    is_lower_hex(s, 10)
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
        .map(Address::from_u64)
}

fn yes() -> bool {
    true
}
fn network_objtype() -> String {
    "network".into()
}
fn member_objtype() -> String {
    "member".into()
}
fn default_multicast_limit() -> u64 {
    32
}
fn default_mtu() -> u64 {
    2800
}
fn default_rules() -> Vec<Value> {
    vec![json!({"type": "ACTION_ACCEPT", "not": false, "or": false})]
}
fn default_auth_tokens() -> Value {
    json!({})
}
fn minus_one() -> i64 {
    -1
}

/// `v4AssignMode`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct V4AssignMode {
    #[serde(default)]
    pub zt: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `v6AssignMode`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct V6AssignMode {
    #[serde(default)]
    pub rfc4193: bool,
    #[serde(default)]
    pub zt: bool,
    #[serde(default, rename = "6plane")]
    pub six_plane: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `ipAssignmentPools` entry (inclusive range).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPool {
    pub ip_range_start: String,
    pub ip_range_end: String,
}

/// One `routes` entry: `target` is `ip/bits`, `via` a gateway IP or null.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub target: String,
    #[serde(default)]
    pub via: Option<String>,
}

/// A network object (`network/<nwid>.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub id: String,
    pub nwid: String,
    #[serde(default = "network_objtype")]
    pub objtype: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub private: bool,
    #[serde(default)]
    pub creation_time: i64,
    #[serde(default)]
    pub revision: u64,
    #[serde(default = "default_multicast_limit")]
    pub multicast_limit: u64,
    #[serde(default = "yes")]
    pub enable_broadcast: bool,
    #[serde(default = "default_mtu")]
    pub mtu: u64,
    #[serde(default)]
    pub v4_assign_mode: V4AssignMode,
    #[serde(default)]
    pub v6_assign_mode: V6AssignMode,
    #[serde(default)]
    pub ip_assignment_pools: Vec<IpPool>,
    #[serde(default)]
    pub routes: Vec<RouteEntry>,
    #[serde(default = "default_rules")]
    pub rules: Vec<Value>,
    #[serde(default)]
    pub capabilities: Vec<Value>,
    #[serde(default)]
    pub tags: Vec<Value>,
    /// `{"<token>": expiry}`; the reference sometimes writes `[null]`, kept as is.
    #[serde(default = "default_auth_tokens")]
    pub auth_tokens: Value,
    /// `{"domain": …, "servers": […]}`; the reference writes `[]` when unset.
    #[serde(default)]
    pub dns: Value,
    #[serde(default)]
    pub remote_trace_target: Option<String>,
    #[serde(default)]
    pub remote_trace_level: u64,
    #[serde(default)]
    pub rules_source: String,
    #[serde(default)]
    pub sso_enabled: bool,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub authorization_endpoint: String,
    /// COM max delta (ms); absent means 30 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_timeout_window_size: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Network {
    /// A network object with every reference default.
    pub fn new(network_id: NetworkId, creation_time: i64) -> Network {
        let id = network_id.to_string();
        Network {
            id: id.clone(),
            nwid: id,
            objtype: network_objtype(),
            name: String::new(),
            private: true,
            creation_time,
            revision: 0,
            multicast_limit: default_multicast_limit(),
            enable_broadcast: true,
            mtu: default_mtu(),
            v4_assign_mode: V4AssignMode::default(),
            v6_assign_mode: V6AssignMode::default(),
            ip_assignment_pools: Vec::new(),
            routes: Vec::new(),
            rules: default_rules(),
            capabilities: Vec::new(),
            tags: Vec::new(),
            auth_tokens: default_auth_tokens(),
            dns: Value::Null,
            remote_trace_target: None,
            remote_trace_level: 0,
            rules_source: String::new(),
            sso_enabled: false,
            client_id: String::new(),
            authorization_endpoint: String::new(),
            certificate_timeout_window_size: None,
            extra: Map::new(),
        }
    }

    /// The network id (from `id`, which must be 16 lowercase hex).
    pub fn network_id(&self) -> Option<NetworkId> {
        parse_network_id(&self.id)
    }

    /// Parses a network object from JSON text.
    pub fn from_json(bytes: &[u8]) -> StoreResult<Network> {
        let network: Network = serde_json::from_slice(bytes)?;
        if network.network_id().is_none() {
            return Err(StoreError::BadName(network.id));
        }
        Ok(network)
    }
}

/// A member object (`network/<nwid>/member/<address>.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: String,
    pub address: String,
    pub nwid: String,
    #[serde(default = "member_objtype")]
    pub objtype: String,
    /// Public identity string, learned on the first request.
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub authorized: bool,
    #[serde(default)]
    pub active_bridge: bool,
    #[serde(default)]
    pub no_auto_assign_ips: bool,
    #[serde(default)]
    pub ip_assignments: Vec<String>,
    /// `[[id, value], …]`.
    #[serde(default)]
    pub tags: Vec<Value>,
    /// Capability ids.
    #[serde(default)]
    pub capabilities: Vec<Value>,
    #[serde(default)]
    pub creation_time: i64,
    #[serde(default)]
    pub revision: u64,
    #[serde(default)]
    pub last_authorized_time: i64,
    #[serde(default)]
    pub last_deauthorized_time: i64,
    #[serde(default)]
    pub last_authorized_credential_type: Option<String>,
    #[serde(default)]
    pub last_authorized_credential: Option<String>,
    #[serde(default = "minus_one")]
    pub v_major: i64,
    #[serde(default = "minus_one")]
    pub v_minor: i64,
    #[serde(default = "minus_one")]
    pub v_rev: i64,
    #[serde(default = "minus_one")]
    pub v_proto: i64,
    #[serde(default)]
    pub sso_exempt: bool,
    #[serde(default)]
    pub authentication_expiry_time: i64,
    #[serde(default)]
    pub remote_trace_target: Option<String>,
    #[serde(default)]
    pub remote_trace_level: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Member {
    /// A member object with every reference default (unauthorized, identity unknown).
    pub fn new(network_id: NetworkId, address: Address, creation_time: i64) -> Member {
        let addr = address.to_string();
        Member {
            id: addr.clone(),
            address: addr,
            nwid: network_id.to_string(),
            objtype: member_objtype(),
            identity: None,
            authorized: false,
            active_bridge: false,
            no_auto_assign_ips: false,
            ip_assignments: Vec::new(),
            tags: Vec::new(),
            capabilities: Vec::new(),
            creation_time,
            revision: 0,
            last_authorized_time: 0,
            last_deauthorized_time: 0,
            last_authorized_credential_type: None,
            last_authorized_credential: None,
            v_major: -1,
            v_minor: -1,
            v_rev: -1,
            v_proto: -1,
            sso_exempt: false,
            authentication_expiry_time: 0,
            remote_trace_target: None,
            remote_trace_level: 0,
            name: None,
            extra: Map::new(),
        }
    }

    /// The member's address (from `id`, which must be 10 lowercase hex).
    pub fn member_address(&self) -> Option<Address> {
        parse_address(&self.id)
    }

    /// The network id (from `nwid`).
    pub fn network_id(&self) -> Option<NetworkId> {
        parse_network_id(&self.nwid)
    }

    /// Parses a member object from JSON text.
    pub fn from_json(bytes: &[u8]) -> StoreResult<Member> {
        let member: Member = serde_json::from_slice(bytes)?;
        if member.member_address().is_none() {
            return Err(StoreError::BadName(member.id));
        }
        if member.network_id().is_none() {
            return Err(StoreError::BadName(member.nwid));
        }
        Ok(member)
    }
}

/// Where the controller keeps its objects.
pub trait Store: Send {
    /// Ids of all stored networks, ascending.
    fn network_ids(&self) -> StoreResult<Vec<NetworkId>>;
    fn get_network(&self, network_id: NetworkId) -> StoreResult<Option<Network>>;
    /// Writes the object as given (the caller manages `revision`).
    fn put_network(&mut self, network: &Network) -> StoreResult<()>;
    /// Removes the network and all its members; `false` if it did not exist.
    fn delete_network(&mut self, network_id: NetworkId) -> StoreResult<bool>;
    /// Addresses of all members of a network, ascending.
    fn member_addresses(&self, network_id: NetworkId) -> StoreResult<Vec<Address>>;
    fn get_member(&self, network_id: NetworkId, address: Address) -> StoreResult<Option<Member>>;
    fn put_member(&mut self, member: &Member) -> StoreResult<()>;
    fn delete_member(&mut self, network_id: NetworkId, address: Address) -> StoreResult<bool>;
}

/// Ids from an object, or [`StoreError::BadName`].
fn member_key(member: &Member) -> StoreResult<(NetworkId, Address)> {
    match (member.network_id(), member.member_address()) {
        (Some(n), Some(a)) => Ok((n, a)),
        _ => Err(StoreError::BadName(format!(
            "{}/{}",
            member.nwid, member.id
        ))),
    }
}

fn network_key(network: &Network) -> StoreResult<NetworkId> {
    network
        .network_id()
        .ok_or_else(|| StoreError::BadName(network.id.clone()))
}

/// A store in memory (tests, the simulator and the demo).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    networks: BTreeMap<u64, Network>,
    members: BTreeMap<u64, BTreeMap<u64, Member>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn network_ids(&self) -> StoreResult<Vec<NetworkId>> {
        Ok(self.networks.keys().map(|&n| NetworkId(n)).collect())
    }

    fn get_network(&self, network_id: NetworkId) -> StoreResult<Option<Network>> {
        Ok(self.networks.get(&network_id.0).cloned())
    }

    fn put_network(&mut self, network: &Network) -> StoreResult<()> {
        let id = network_key(network)?;
        self.networks.insert(id.0, network.clone());
        Ok(())
    }

    fn delete_network(&mut self, network_id: NetworkId) -> StoreResult<bool> {
        self.members.remove(&network_id.0);
        Ok(self.networks.remove(&network_id.0).is_some())
    }

    fn member_addresses(&self, network_id: NetworkId) -> StoreResult<Vec<Address>> {
        Ok(self
            .members
            .get(&network_id.0)
            .map(|m| m.keys().map(|&a| Address::from_u64(a)).collect())
            .unwrap_or_default())
    }

    fn get_member(&self, network_id: NetworkId, address: Address) -> StoreResult<Option<Member>> {
        Ok(self
            .members
            .get(&network_id.0)
            .and_then(|m| m.get(&address.to_u64()))
            .cloned())
    }

    fn put_member(&mut self, member: &Member) -> StoreResult<()> {
        let (n, a) = member_key(member)?;
        self.members
            .entry(n.0)
            .or_default()
            .insert(a.to_u64(), member.clone());
        Ok(())
    }

    fn delete_member(&mut self, network_id: NetworkId, address: Address) -> StoreResult<bool> {
        Ok(self
            .members
            .get_mut(&network_id.0)
            .and_then(|m| m.remove(&address.to_u64()))
            .is_some())
    }
}

/// A store in a `controller.d/` directory, file-compatible with the reference FileDB.
#[derive(Clone, Debug)]
pub struct DirectoryStore {
    root: PathBuf,
}

impl DirectoryStore {
    /// Opens (creating if needed) `root` and `root/network`. Refuses a symlinked root.
    pub fn open(root: impl Into<PathBuf>) -> StoreResult<DirectoryStore> {
        let root = root.into();
        ensure_dir(&root)?;
        ensure_dir(&root.join("network"))?;
        Ok(DirectoryStore { root })
    }

    /// Opens an existing directory without creating anything (for read-only use, e.g. a
    /// reference store loaded in place).
    pub fn open_existing(root: impl Into<PathBuf>) -> StoreResult<DirectoryStore> {
        let root = root.into();
        check_real_dir(&root)?;
        Ok(DirectoryStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn networks_dir(&self) -> PathBuf {
        self.root.join("network")
    }

    fn network_path(&self, network_id: NetworkId) -> PathBuf {
        self.networks_dir().join(format!("{network_id}.json"))
    }

    fn members_dir(&self, network_id: NetworkId) -> PathBuf {
        self.networks_dir()
            .join(network_id.to_string())
            .join("member")
    }

    fn member_path(&self, network_id: NetworkId, address: Address) -> PathBuf {
        self.members_dir(network_id).join(format!("{address}.json"))
    }
}

/// `Ok(true)` for a real directory, `Ok(false)` if missing, an error for a symlink or file.
fn check_real_dir(path: &Path) -> StoreResult<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::Symlink(path.to_path_buf())),
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(StoreError::Io(std::io::Error::other(format!(
            "{} is not a directory",
            path.display()
        )))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn ensure_dir(path: &Path) -> StoreResult<()> {
    if !check_real_dir(path)? {
        fs::create_dir_all(path)?;
        check_real_dir(path)?;
        // The new entry must be durable before a write under it is acknowledged.
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Makes the creations, renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> StoreResult<()> {
    Ok(fs::File::open(dir)?.sync_all()?)
}

/// Reads an object file: no symlinks, at most [`MAX_OBJECT_FILE_LEN`] bytes (checked before
/// and while reading, so a file growing underneath us cannot exceed it). `None` if missing.
pub fn read_object_file(path: &Path) -> StoreResult<Option<Vec<u8>>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if meta.file_type().is_symlink() {
        return Err(StoreError::Symlink(path.to_path_buf()));
    }
    if !meta.is_file() {
        return Err(StoreError::Io(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        ))));
    }
    if meta.len() > MAX_OBJECT_FILE_LEN {
        return Err(StoreError::TooLarge(path.to_path_buf()));
    }
    let file = fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_OBJECT_FILE_LEN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_OBJECT_FILE_LEN {
        return Err(StoreError::TooLarge(path.to_path_buf()));
    }
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// rename over the target, fsync of the directory. A symlink at `path` is refused.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    if let Ok(m) = fs::symlink_metadata(path)
        && m.file_type().is_symlink()
    {
        return Err(StoreError::Symlink(path.to_path_buf()));
    }
    let dir = path
        .parent()
        .ok_or_else(|| StoreError::BadName(path.display().to_string()))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| StoreError::BadName(path.display().to_string()))?;
    let mut nonce = [0u8; 8];
    crate::crypto::c25519::random_bytes(&mut nonce);
    let tmp = dir.join(format!(".{file_name}.{}.tmp", crate::hex::encode(&nonce)));
    let result = (|| -> StoreResult<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Names `<hex>.json` in `dir` whose stem is exactly `len` lowercase hex; other entries
/// (temporary files, traces, junk) are ignored as the reference does.
fn list_hex_json(dir: &Path, len: usize) -> StoreResult<Vec<u64>> {
    if !check_real_dir(dir)? {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if !is_lower_hex(stem, len) {
            continue;
        }
        if let Ok(id) = u64::from_str_radix(stem, 16) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

impl Store for DirectoryStore {
    fn network_ids(&self) -> StoreResult<Vec<NetworkId>> {
        Ok(list_hex_json(&self.networks_dir(), 16)?
            .into_iter()
            .map(NetworkId)
            .collect())
    }

    fn get_network(&self, network_id: NetworkId) -> StoreResult<Option<Network>> {
        let Some(bytes) = read_object_file(&self.network_path(network_id))? else {
            return Ok(None);
        };
        let network = Network::from_json(&bytes)?;
        if network.network_id() != Some(network_id) {
            return Err(StoreError::BadName(network.id));
        }
        Ok(Some(network))
    }

    fn put_network(&mut self, network: &Network) -> StoreResult<()> {
        let id = network_key(network)?;
        ensure_dir(&self.networks_dir())?;
        write_atomically(&self.network_path(id), &serde_json::to_vec(network)?)
    }

    fn delete_network(&mut self, network_id: NetworkId) -> StoreResult<bool> {
        let path = self.network_path(network_id);
        let existed = read_object_file(&path)?.is_some();
        let member_dir = self.members_dir(network_id);
        for address in self.member_addresses(network_id)? {
            let _ = fs::remove_file(self.member_path(network_id, address));
        }
        let _ = fs::remove_dir(&member_dir);
        let _ = fs::remove_dir(self.networks_dir().join(network_id.to_string()));
        if existed {
            fs::remove_file(&path)?;
            sync_dir(&self.networks_dir())?;
        }
        Ok(existed)
    }

    fn member_addresses(&self, network_id: NetworkId) -> StoreResult<Vec<Address>> {
        let network_dir = self.networks_dir().join(network_id.to_string());
        if !check_real_dir(&network_dir)? {
            return Ok(Vec::new());
        }
        Ok(list_hex_json(&self.members_dir(network_id), 10)?
            .into_iter()
            .map(Address::from_u64)
            .collect())
    }

    fn get_member(&self, network_id: NetworkId, address: Address) -> StoreResult<Option<Member>> {
        let network_dir = self.networks_dir().join(network_id.to_string());
        if !check_real_dir(&network_dir)? || !check_real_dir(&self.members_dir(network_id))? {
            return Ok(None);
        }
        let Some(bytes) = read_object_file(&self.member_path(network_id, address))? else {
            return Ok(None);
        };
        let member = Member::from_json(&bytes)?;
        if member.member_address() != Some(address) || member.network_id() != Some(network_id) {
            return Err(StoreError::BadName(member.id));
        }
        Ok(Some(member))
    }

    fn put_member(&mut self, member: &Member) -> StoreResult<()> {
        let (n, a) = member_key(member)?;
        ensure_dir(&self.networks_dir().join(n.to_string()))?;
        ensure_dir(&self.members_dir(n))?;
        write_atomically(&self.member_path(n, a), &serde_json::to_vec(member)?)
    }

    fn delete_member(&mut self, network_id: NetworkId, address: Address) -> StoreResult<bool> {
        let path = self.member_path(network_id, address);
        if read_object_file(&path)?.is_none() {
            return Ok(false);
        }
        fs::remove_file(&path)?;
        sync_dir(&self.members_dir(network_id))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exact_lowercase_hex() {
        assert!(parse_network_id("28210c94e2a0b81a").is_some());
        assert!(parse_network_id("28210C94E2A0B81A").is_none());
        assert!(parse_network_id("28210c94e2a0b81").is_none());
        assert!(parse_network_id("../../etc/passwd").is_none());
        assert!(parse_address("66cb7c1800").is_some());
        assert!(parse_address("66cb7c180").is_none());
        assert!(parse_address("+6cb7c1800").is_none());
    }

    #[test]
    fn defaults_are_filled_and_extras_kept() {
        let n = Network::from_json(
            br#"{"id":"28210c94e2a0b81a","nwid":"28210c94e2a0b81a","futureField":{"x":1}}"#,
        )
        .unwrap();
        assert!(n.private);
        assert_eq!(n.mtu, 2800);
        assert_eq!(n.multicast_limit, 32);
        assert!(n.enable_broadcast);
        assert_eq!(n.rules, default_rules());
        assert_eq!(n.extra.get("futureField"), Some(&json!({"x": 1})));
        let back = serde_json::to_value(&n).unwrap();
        assert_eq!(back["futureField"], json!({"x": 1}));
        let m = Member::from_json(
            br#"{"id":"66cb7c1800","address":"66cb7c1800","nwid":"28210c94e2a0b81a"}"#,
        )
        .unwrap();
        assert!(!m.authorized);
        assert_eq!((m.v_major, m.v_minor, m.v_rev, m.v_proto), (-1, -1, -1, -1));
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!(Network::from_json(br#"{"id":"zz","nwid":"zz"}"#).is_err());
        assert!(Network::from_json(b"[]").is_err());
        assert!(
            Member::from_json(br#"{"id":"66CB7C1800","address":"x","nwid":"28210c94e2a0b81a"}"#)
                .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_json_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = Network::from_json(&bytes);
            let _ = Member::from_json(&bytes);
        }
    }
}
