//! A joined network as the reference's network object: what the node knows of it (status,
//! config), what the attachment reports (interface name, counters) and the local settings
//! (`allowManaged` ...). Pure mapping, so the shape is tested without a running node.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::node::{NetworkInfo, NetworkStatus, Node};
use crate::service::Attachment;
use crate::store::NetworkSettings;
use crate::wire::inet_address::InetAddress;
use crate::wire::mac::{Mac, MulticastGroup};
use crate::wire::netconf::{DEFAULT_MTU, NetworkConfig, Route};

/// What the driver task hands out about one network (collected there, mapped elsewhere).
#[derive(Clone, Debug)]
pub(crate) struct NetworkSnapshot {
    pub(crate) info: NetworkInfo,
    /// Our MAC on the network.
    pub(crate) mac: Mac,
    /// Whether the config names us an active bridge.
    pub(crate) bridge: bool,
    pub(crate) multicast: Vec<MulticastGroup>,
    /// [`Attachment::network_report`], when there is an attachment with a port for it.
    pub(crate) report: Option<Value>,
}

impl NetworkSnapshot {
    /// Collects a snapshot on the driver task.
    pub(crate) fn collect(
        node: &Node,
        attachment: Option<&dyn Attachment>,
        info: NetworkInfo,
    ) -> NetworkSnapshot {
        let nwid = info.nwid;
        let bridge = info
            .config
            .as_ref()
            .is_some_and(|c| c.is_active_bridge(node.address()));
        NetworkSnapshot {
            mac: Mac::from_address(node.address(), nwid),
            bridge,
            multicast: node.multicast_groups(nwid),
            report: attachment.and_then(|a| a.network_report(nwid)),
            info,
        }
    }
}

/// The reference's name for a status.
pub(crate) fn status_name(status: NetworkStatus) -> &'static str {
    match status {
        NetworkStatus::RequestingConfiguration => "REQUESTING_CONFIGURATION",
        NetworkStatus::Ok => "OK",
        NetworkStatus::AccessDenied => "ACCESS_DENIED",
        NetworkStatus::NotFound => "NOT_FOUND",
        NetworkStatus::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
    }
}

/// The network object.
pub(crate) fn network_json(snapshot: &NetworkSnapshot, settings: &NetworkSettings) -> Value {
    let id = snapshot.info.nwid.to_string();
    let config = snapshot.info.config.as_ref();
    let port_device_name = snapshot
        .report
        .as_ref()
        .and_then(|r| r.get("portDeviceName"))
        .and_then(Value::as_str)
        .unwrap_or("");
    json!({
        "id": id,
        "nwid": id,
        "name": config.map_or("", |c| c.name.as_str()),
        "status": status_name(snapshot.info.status),
        "type": if config.is_some_and(NetworkConfig::is_public) { "PUBLIC" } else { "PRIVATE" },
        "mac": snapshot.mac.to_string(),
        "mtu": config.map_or(DEFAULT_MTU, |c| c.mtu),
        "dhcp": false,
        "bridge": snapshot.bridge,
        "broadcastEnabled": config.is_some_and(NetworkConfig::broadcast_enabled),
        "portError": 0,
        "netconfRevision": config.map_or(0, |c| c.revision),
        "assignedAddresses": config.map_or_else(Vec::new, assigned_addresses),
        "routes": config.map_or_else(Vec::new, |c| c.routes.iter().map(route_json).collect()),
        "dns": config.map_or_else(|| json!({"domain": "", "servers": []}), dns_json),
        "multicastSubscriptions": snapshot.multicast.iter().map(|g| json!({
            "mac": g.mac.to_string(),
            "adi": g.adi,
        })).collect::<Vec<_>>(),
        "portDeviceName": port_device_name,
        "allowManaged": settings.allow_managed,
        "allowGlobal": settings.allow_global,
        "allowDefault": settings.allow_default,
        "allowDNS": settings.allow_dns,
        "ztrs": { "dataplane": snapshot.report.clone() },
    })
}

/// `ip/bits`, or `None` for a slot that holds no IP.
fn ip_with_bits(address: &InetAddress) -> Option<String> {
    match address {
        InetAddress::Ip(ip, bits) => Some(format!("{ip}/{bits}")),
        InetAddress::Nil | InetAddress::Other(_) => None,
    }
}

fn assigned_addresses(config: &NetworkConfig) -> Vec<String> {
    config.static_ips.iter().filter_map(ip_with_bits).collect()
}

/// `{target: "ip/bits", via: "ip" | null, flags, metric}`.
fn route_json(route: &Route) -> Value {
    json!({
        "target": ip_with_bits(&route.target),
        "via": route.via_ip().map(|ip: IpAddr| ip.to_string()),
        "flags": route.flags,
        "metric": route.metric,
    })
}

fn dns_json(config: &NetworkConfig) -> Value {
    let (domain, servers) = match &config.dns {
        Some(dns) => (
            String::from_utf8_lossy(&dns.domain).into_owned(),
            dns.servers
                .iter()
                .filter_map(|s| match s {
                    InetAddress::Ip(ip, _) => Some(ip.to_string()),
                    _ => None,
                })
                .collect(),
        ),
        None => (String::new(), Vec::new()),
    };
    json!({ "domain": domain, "servers": servers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::netconf::DnsConfig;
    use crate::wire::netconf_chunk::AssemblerCounters;
    use crate::wire::{Address, NetworkId};

    const NWID: NetworkId = NetworkId(0x8056_c2e2_1c00_0001);

    fn snapshot(status: NetworkStatus, config: Option<NetworkConfig>) -> NetworkSnapshot {
        NetworkSnapshot {
            info: NetworkInfo {
                nwid: NWID,
                status,
                config,
                chunks: AssemblerCounters::default(),
            },
            mac: Mac::from_address(Address::from_u64(0x12_3456_789a), NWID),
            bridge: false,
            multicast: vec![MulticastGroup::BROADCAST],
            report: None,
        }
    }

    #[test]
    fn unconfigured_network_reports_defaults() {
        let json = network_json(
            &snapshot(NetworkStatus::RequestingConfiguration, None),
            &NetworkSettings::default(),
        );
        assert_eq!(json["id"], "8056c2e21c000001");
        assert_eq!(json["nwid"], json["id"]);
        assert_eq!(json["status"], "REQUESTING_CONFIGURATION");
        assert_eq!(json["type"], "PRIVATE");
        assert_eq!(json["name"], "");
        assert_eq!(json["mtu"], DEFAULT_MTU);
        assert_eq!(json["netconfRevision"], 0);
        assert_eq!(json["assignedAddresses"], json!([]));
        assert_eq!(json["routes"], json!([]));
        assert_eq!(json["portDeviceName"], "");
        assert_eq!(json["allowManaged"], true);
        assert_eq!(json["allowGlobal"], false);
        assert_eq!(json["allowDNS"], false);
        assert_eq!(json["ztrs"]["dataplane"], Value::Null);
        let mac = json["mac"].as_str().unwrap();
        assert_eq!(mac.len(), 17);
        assert_eq!(mac.split(':').count(), 6);
        assert_eq!(
            json["multicastSubscriptions"],
            json!([{"mac": "ff:ff:ff:ff:ff:ff", "adi": 0}])
        );
    }

    #[test]
    fn configured_network_reports_addresses_routes_and_port() {
        let mut config = NetworkConfig::new(NWID, Address::from_u64(0x12_3456_789a), 1);
        config.name = "earth".into();
        config.revision = 42;
        config.mtu = 2800;
        config.static_ips = vec![
            InetAddress::Ip("10.147.17.5".parse().unwrap(), 24),
            InetAddress::Ip("fd00::5".parse().unwrap(), 88),
            InetAddress::Nil,
        ];
        config.routes = vec![
            Route {
                target: InetAddress::Ip("10.147.17.0".parse().unwrap(), 24),
                via: InetAddress::Nil,
                flags: 0,
                metric: 0,
            },
            Route {
                target: InetAddress::Ip("0.0.0.0".parse().unwrap(), 0),
                via: InetAddress::Ip("10.147.17.1".parse().unwrap(), 0),
                flags: 0,
                metric: 5,
            },
        ];
        config.dns = Some(DnsConfig {
            domain: b"zt.example".to_vec(),
            servers: vec![InetAddress::Ip("10.147.17.1".parse().unwrap(), 53)],
        });
        let mut snap = snapshot(NetworkStatus::Ok, Some(config));
        snap.report = Some(json!({"portDeviceName": "zt0", "tun": {"rx": 1}}));
        let settings = NetworkSettings {
            allow_default: true,
            ..NetworkSettings::default()
        };
        let json = network_json(&snap, &settings);
        assert_eq!(json["status"], "OK");
        assert_eq!(json["name"], "earth");
        assert_eq!(json["netconfRevision"], 42);
        assert_eq!(
            json["assignedAddresses"],
            json!(["10.147.17.5/24", "fd00::5/88"])
        );
        assert_eq!(
            json["routes"],
            json!([
                {"target": "10.147.17.0/24", "via": null, "flags": 0, "metric": 0},
                {"target": "0.0.0.0/0", "via": "10.147.17.1", "flags": 0, "metric": 5},
            ])
        );
        assert_eq!(
            json["dns"],
            json!({"domain": "zt.example", "servers": ["10.147.17.1"]})
        );
        assert_eq!(json["portDeviceName"], "zt0");
        assert_eq!(json["allowDefault"], true);
        assert_eq!(json["ztrs"]["dataplane"]["tun"]["rx"], 1);
    }

    #[test]
    fn every_status_has_the_reference_name() {
        let names = [
            NetworkStatus::RequestingConfiguration,
            NetworkStatus::Ok,
            NetworkStatus::AccessDenied,
            NetworkStatus::NotFound,
            NetworkStatus::AuthenticationRequired,
        ]
        .map(status_name);
        assert_eq!(
            names,
            [
                "REQUESTING_CONFIGURATION",
                "OK",
                "ACCESS_DENIED",
                "NOT_FOUND",
                "AUTHENTICATION_REQUIRED"
            ]
        );
    }
}
