//! The private network of `ztrs demo --tun`, driven through the daemons' control APIs: the
//! root's controller creates it, alice and bob join, are refused (ACCESS_DENIED) until the
//! controller authorizes them, and are configured: a TUN interface carrying the managed
//! address, checked in the kernel of the member's namespace, not only in the API.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::lab::{Host, Lab, ip};
use super::wait::{Look, Stop, wait_for};

/// Bound on a daemon's API answering and the members reaching the root.
const ONLINE_BOUND: Duration = Duration::from_secs(20);
/// Bound on both members being configured after they join (refusal and authorization
/// included).
const CONFIGURE_BOUND: Duration = Duration::from_secs(30);
/// Suffix of the network id after the controller's address.
const NETWORK_SUFFIX: &str = "000001";
/// The network's MTU (the reference's default).
const NETWORK_MTU: u32 = 2800;

/// A member configured on the network.
pub(super) struct Membership {
    /// Managed addresses as the API lists them (`ip/bits`).
    pub(super) addresses: Vec<String>,
    pub(super) interface: String,
    pub(super) mtu: u32,
    pub(super) ipv4: Ipv4Addr,
    /// From the join to the controller's refusal, seen on the member.
    pub(super) denied_after: Duration,
    /// From the join to the managed IPv4 on the interface in the kernel.
    pub(super) configured_after: Duration,
    /// From the controller's authorization to the same.
    pub(super) authorized_to_configured: Duration,
}

/// Waits until the daemon's API answers and, for members, the node is online (it reached
/// the root).
pub(super) fn wait_online(lab: &mut Lab, host: &Host, stop: &Stop) -> Result<(), String> {
    wait_for(
        &format!("{} to be online", host.name),
        ONLINE_BOUND,
        stop,
        || {
            if let Err(failed) = lab.check_daemon(host.name) {
                return Look::Failed(failed);
            }
            match host.api.get("/status") {
                Ok(status) if status["online"] == true => Look::Done(()),
                Ok(_) => Look::Pending("API up, not online yet".to_owned()),
                Err(not_yet) => Look::Pending(not_yet),
            }
        },
    )
}

/// Creates the private network on the root's controller; answers its id.
pub(super) fn create_network(root: &Host) -> Result<String, String> {
    let nwid = format!("{}{NETWORK_SUFFIX}", root.address);
    let network = json!({
        "name": "ztrs-demo-tun",
        "private": true,
        "v4AssignMode": {"zt": true},
        "v6AssignMode": {"rfc4193": true, "zt": false, "6plane": false},
        "ipAssignmentPools": [{"ipRangeStart": "10.147.17.1", "ipRangeEnd": "10.147.17.254"}],
        "routes": [{"target": "10.147.17.0/24", "via": null}],
        "mtu": NETWORK_MTU,
        "enableBroadcast": true,
    });
    root.api
        .post(&format!("/controller/network/{nwid}"), &network)
        .map_err(|e| format!("creating the network on the controller: {e}"))?;
    Ok(nwid)
}

/// One member's way through join, refusal, authorization and configuration.
struct Joining<'a> {
    host: &'a Host,
    joined_at: Instant,
    denied_at: Option<Instant>,
    authorized_at: Option<Instant>,
    configured: Option<Membership>,
}

/// Both members join at once; each is authorized as soon as the controller has refused it,
/// and done when the kernel shows its managed address. Answers them in the given order.
pub(super) fn join_and_authorize(
    lab: &mut Lab,
    root: &Host,
    members: &[&Host],
    nwid: &str,
    stop: &Stop,
) -> Result<Vec<Membership>, String> {
    let mut joinings = Vec::with_capacity(members.len());
    for host in members {
        let joined_at = Instant::now();
        host.api
            .post(&format!("/network/{nwid}"), &json!({}))
            .map_err(|e| format!("{} joining {nwid}: {e}", host.name))?;
        joinings.push(Joining {
            host,
            joined_at,
            denied_at: None,
            authorized_at: None,
            configured: None,
        });
    }
    wait_for(
        "the members to be authorized and configured",
        CONFIGURE_BOUND,
        stop,
        || {
            let mut pending = Vec::new();
            for joining in &mut joinings {
                if joining.configured.is_some() {
                    continue;
                }
                if let Err(failed) = lab.check_daemon(joining.host.name) {
                    return Look::Failed(failed);
                }
                match advance(joining, root, nwid) {
                    Ok(None) => {}
                    Ok(Some(reason)) => pending.push(format!("{}: {reason}", joining.host.name)),
                    Err(failed) => return Look::Failed(failed),
                }
            }
            if pending.is_empty() {
                Look::Done(())
            } else {
                Look::Pending(pending.join("; "))
            }
        },
    )?;
    joinings
        .into_iter()
        .map(|joining| {
            joining
                .configured
                .ok_or_else(|| format!("{} was not configured", joining.host.name))
        })
        .collect()
}

/// One look at a member: authorizes it once refused, records it once configured. `Ok(None)`
/// when configured, `Ok(Some(reason))` while not yet, `Err` when the controller refused a
/// request.
fn advance(joining: &mut Joining<'_>, root: &Host, nwid: &str) -> Result<Option<String>, String> {
    let host = joining.host;
    let network = match host.api.get(&format!("/network/{nwid}")) {
        Ok(network) => network,
        Err(not_yet) => return Ok(Some(not_yet)),
    };
    let status = network["status"].as_str().unwrap_or("?");
    if status == "ACCESS_DENIED" && joining.authorized_at.is_none() {
        joining.denied_at = Some(Instant::now());
        root.api
            .post(
                &format!("/controller/network/{nwid}/member/{}", host.address),
                &json!({"authorized": true, "name": host.name}),
            )
            .map_err(|e| format!("authorizing {}: {e}", host.name))?;
        joining.authorized_at = Some(Instant::now());
        return Ok(Some("authorized, waiting for its config".to_owned()));
    }
    if status != "OK" {
        return Ok(Some(format!("status {status}")));
    }
    let (Some(ipv4), interface) = (
        assigned_ipv4(&network),
        network["portDeviceName"].as_str().unwrap_or(""),
    ) else {
        return Ok(Some("configured, no IPv4 assigned yet".to_owned()));
    };
    if interface.is_empty() {
        return Ok(Some("configured, no interface yet".to_owned()));
    }
    let kernel = ip(&[
        "-n",
        &host.namespace,
        "-o",
        "addr",
        "show",
        "dev",
        interface,
    ])
    .unwrap_or_default();
    if !kernel.contains(&format!("inet {ipv4}/")) {
        return Ok(Some(format!("{ipv4} not on {interface} yet")));
    }
    let configured_at = Instant::now();
    let link = ip(&[
        "-n",
        &host.namespace,
        "-o",
        "link",
        "show",
        "dev",
        interface,
    ])?;
    joining.configured = Some(Membership {
        addresses: network["assignedAddresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        interface: interface.to_owned(),
        mtu: link_mtu(&link).ok_or_else(|| format!("no mtu in `ip link` output: {link}"))?,
        ipv4,
        denied_after: joining.denied_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(joining.joined_at)
        }),
        configured_after: configured_at.saturating_duration_since(joining.joined_at),
        authorized_to_configured: joining.authorized_at.map_or(Duration::ZERO, |at| {
            configured_at.saturating_duration_since(at)
        }),
    });
    Ok(None)
}

/// IP packets a member's daemon read from its TUN interface and wrote to it, so far.
#[derive(Clone, Copy)]
pub(super) struct TunPackets {
    pub(super) read: u64,
    pub(super) written: u64,
}

/// The member's TUN counters, from its network object (`ztrs.dataplane.tun`).
pub(super) fn tun_packets(host: &Host, nwid: &str) -> Result<TunPackets, String> {
    let network = host.api.get(&format!("/network/{nwid}"))?;
    let tun = &network["ztrs"]["dataplane"]["tun"];
    match (
        tun["tunPacketsRead"].as_u64(),
        tun["tunPacketsWritten"].as_u64(),
    ) {
        (Some(read), Some(written)) => Ok(TunPackets { read, written }),
        _ => Err(format!("{} reports no TUN counters: {tun}", host.name)),
    }
}

/// The addresses in `assignedAddresses` (`"ip/bits"`).
fn assigned(network: &Value) -> impl Iterator<Item = &str> {
    network["assignedAddresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|cidr| cidr.split('/').next())
}

fn assigned_ipv4(network: &Value) -> Option<Ipv4Addr> {
    assigned(network).find_map(|ip| ip.parse().ok())
}

/// The `mtu N` of one `ip -o link show` line.
fn link_mtu(link: &str) -> Option<u32> {
    let mut words = link.split_whitespace();
    words.find(|word| *word == "mtu")?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_mtu_are_read() {
        let network = json!({"assignedAddresses": ["fd12::1/88", "10.147.17.9/24", 7]});
        assert_eq!(assigned_ipv4(&network), Some(Ipv4Addr::new(10, 147, 17, 9)));
        assert_eq!(assigned_ipv4(&json!({})), None);
        let link = "7: ztabcdefgh: <POINTOPOINT,UP> mtu 2800 qdisc fq_codel state UNKNOWN";
        assert_eq!(link_mtu(link), Some(2800));
        assert_eq!(link_mtu("no such thing"), None);
    }
}
