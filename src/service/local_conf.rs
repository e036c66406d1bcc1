//! `local.conf`: the reference daemon's local settings file (JSON), read once at start.
//!
//! ```text
//! {"physical": {"<cidr>": {"blacklist": true}},
//!  "virtual":  {"<10 hex address>": {"try": ["<ip>/<port>", ...], "blacklist": ["<cidr>"]}},
//!  "settings": {"primaryPort": 9993, "allowSecondaryPort": true, "portMappingEnabled": true,
//!               "allowTcpFallbackRelay": true, ...}}
//! ```
//!
//! What each setting does here is documented in `docs/daemon.md`: `primaryPort`,
//! `physical` blacklists and `virtual` `try` hints are applied; `allowSecondaryPort`,
//! `portMappingEnabled` and `allowTcpFallbackRelay` are read and reported, and since ztrs
//! has no secondary port, no UPnP/NAT-PMP and no TCP relay, turning them off changes
//! nothing. Unknown keys are ignored (files written for newer versions load); a file that is
//! not JSON, or a known key with the wrong type, is an error that names it, because
//! starting on the wrong port silently would be worse.

use std::net::{IpAddr, SocketAddr};

use serde_json::{Map, Value};

use crate::controller::parse_cidr;
use crate::wire::Address;

/// The settings the daemon uses, with the reference's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalConf {
    pub primary_port: u16,
    pub allow_secondary_port: bool,
    pub port_mapping_enabled: bool,
    pub allow_tcp_fallback_relay: bool,
    /// `physical` networks never used as paths.
    pub physical_blacklist: Vec<(IpAddr, u8)>,
    /// `virtual` `try` hints: endpoints to try first for a node.
    pub static_paths: Vec<(Address, SocketAddr)>,
    /// `virtual` per-node blacklists (recorded; applied as global blacklists, see docs).
    pub virtual_blacklist: Vec<(Address, IpAddr, u8)>,
}

impl Default for LocalConf {
    fn default() -> LocalConf {
        LocalConf {
            primary_port: 9993,
            allow_secondary_port: true,
            port_mapping_enabled: true,
            allow_tcp_fallback_relay: true,
            physical_blacklist: Vec::new(),
            static_paths: Vec::new(),
            virtual_blacklist: Vec::new(),
        }
    }
}

/// Entries read per section at most (a hand-written file has a handful).
const MAX_ENTRIES: usize = 256;

impl LocalConf {
    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<LocalConf, String> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("local.conf is not JSON: {e}"))?;
        let root = root
            .as_object()
            .ok_or("local.conf: the top level must be an object")?;
        let mut conf = LocalConf::default();
        if let Some(settings) = section(root, "settings")? {
            read_settings(settings, &mut conf)?;
        }
        if let Some(physical) = section(root, "physical")? {
            for (cidr, entry) in physical.iter().take(MAX_ENTRIES) {
                let blacklist = entry
                    .get("blacklist")
                    .map(|b| {
                        b.as_bool()
                            .ok_or(format!("physical.{cidr}.blacklist: not a bool"))
                    })
                    .transpose()?
                    .unwrap_or(false);
                if blacklist {
                    conf.physical_blacklist.push(cidr_of(cidr, "physical")?);
                }
            }
        }
        if let Some(virtuals) = section(root, "virtual")? {
            for (node, entry) in virtuals.iter().take(MAX_ENTRIES) {
                let address: Address = node
                    .parse()
                    .map_err(|_| format!("virtual.{node}: not a ZeroTier address"))?;
                for endpoint in strings(entry.get("try"), &format!("virtual.{node}.try"))? {
                    conf.static_paths.push((
                        address,
                        endpoint_of(endpoint, &format!("virtual.{node}.try"))?,
                    ));
                }
                for cidr in strings(entry.get("blacklist"), &format!("virtual.{node}.blacklist"))? {
                    let (ip, bits) = cidr_of(cidr, "virtual blacklist")?;
                    conf.virtual_blacklist.push((address, ip, bits));
                }
            }
        }
        Ok(conf)
    }
}

fn section<'a>(
    root: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(format!("local.conf: \"{key}\" must be an object")),
    }
}

fn read_settings(settings: &Map<String, Value>, conf: &mut LocalConf) -> Result<(), String> {
    if let Some(port) = settings.get("primaryPort") {
        conf.primary_port = port
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("settings.primaryPort: not a port number")?;
    }
    let flag = |key: &str, slot: &mut bool| -> Result<(), String> {
        if let Some(value) = settings.get(key) {
            *slot = value
                .as_bool()
                .ok_or(format!("settings.{key}: not a bool"))?;
        }
        Ok(())
    };
    flag("allowSecondaryPort", &mut conf.allow_secondary_port)?;
    flag("portMappingEnabled", &mut conf.port_mapping_enabled)?;
    flag("allowTcpFallbackRelay", &mut conf.allow_tcp_fallback_relay)?;
    Ok(())
}

fn strings<'a>(value: Option<&'a Value>, what: &str) -> Result<Vec<&'a str>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .take(MAX_ENTRIES)
            .map(|v| v.as_str().ok_or(format!("{what}: not a list of strings")))
            .collect(),
        Some(_) => Err(format!("{what}: not a list")),
    }
}

fn cidr_of(text: &str, what: &str) -> Result<(IpAddr, u8), String> {
    parse_cidr(text)
        .and_then(|(ip, bits)| u8::try_from(bits).ok().map(|b| (ip, b)))
        .ok_or(format!("{what}: {text:?} is not an ip/bits network"))
}

/// `ip/port`, the reference's endpoint notation (an `ip:port` socket address is accepted too).
fn endpoint_of(text: &str, what: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.rsplit_once('/')
        .and_then(|(ip, port)| Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?)))
        .ok_or(format!("{what}: {text:?} is not an ip/port endpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_full_file() {
        assert_eq!(LocalConf::parse(b"{}").unwrap(), LocalConf::default());
        let conf = LocalConf::parse(
            br#"{"settings": {"primaryPort": 19993, "allowSecondaryPort": false,
                  "portMappingEnabled": false, "allowTcpFallbackRelay": false, "future": 1},
                 "physical": {"10.9.0.0/16": {"blacklist": true}, "10.8.0.0/16": {}},
                 "virtual": {"89e92ceee5": {"try": ["10.10.10.1/9993", "[fd00::1]:9994"],
                                            "blacklist": ["192.168.0.0/16"]}},
                 "unknown": [1, 2]}"#,
        )
        .unwrap();
        assert_eq!(conf.primary_port, 19993);
        assert!(!conf.allow_secondary_port && !conf.port_mapping_enabled);
        assert!(!conf.allow_tcp_fallback_relay);
        assert_eq!(
            conf.physical_blacklist,
            vec![("10.9.0.0".parse().unwrap(), 16)]
        );
        let node: Address = "89e92ceee5".parse().unwrap();
        assert_eq!(
            conf.static_paths,
            vec![
                (node, "10.10.10.1:9993".parse().unwrap()),
                (node, "[fd00::1]:9994".parse().unwrap())
            ]
        );
        assert_eq!(conf.virtual_blacklist.len(), 1);
    }

    #[test]
    fn wrong_types_are_named() {
        for (text, needle) in [
            (&b"not json"[..], "not JSON"),
            (b"[]", "top level"),
            (br#"{"settings": {"primaryPort": 70000}}"#, "primaryPort"),
            (
                br#"{"settings": {"portMappingEnabled": "yes"}}"#,
                "portMappingEnabled",
            ),
            (
                br#"{"physical": {"nonsense": {"blacklist": true}}}"#,
                "physical",
            ),
            (br#"{"virtual": {"zz": {}}}"#, "virtual.zz"),
            (
                br#"{"virtual": {"89e92ceee5": {"try": ["1.2.3.4"]}}}"#,
                "try",
            ),
        ] {
            let err = LocalConf::parse(text).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
