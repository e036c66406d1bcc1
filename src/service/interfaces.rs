//! The OS interface of a joined network: its name, the state it should have (MTU, managed
//! addresses, routes) derived from the network config and the local settings, and the task
//! that brings the interface to that state.
//!
//! The derivation is pure ([`desired_state`]) so the `allowManaged` / `allowGlobal` /
//! `allowDefault` rules are tested without an OS. The reconciler ([`spawn_reconciler`]) runs
//! as a task of its own, away from the packet loop: netlink round trips take milliseconds.
//! It applies each new desired state idempotently, removes what it added before and is no
//! longer wanted, and retries after a failure; it ends when the port is dropped. Removal of
//! the interface itself is not its job: the TUN is not persistent, so closing it removes the
//! link with its addresses and routes.

use std::net::IpAddr;

use crate::node::path_prefix_contains;
use crate::store::NetworkSettings;
use crate::wire::NetworkId;
use crate::wire::inet_address::{InetAddress, canonical_ip};
use crate::wire::netconf::NetworkConfig;

/// MTU used when a config carries none (the reference's default).
pub const DEFAULT_MTU: u32 = 2800;

/// Lowest and highest MTU we set (IPv6 needs 1280; the ZeroTier maximum is 10000).
const MTU_RANGE: (u32, u32) = (1280, 10_000);

/// A route the interface should carry: `destination/prefix`, optionally via a gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ManagedRoute {
    pub destination: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// What the interface of a network should look like.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceState {
    pub mtu: u32,
    pub addresses: Vec<(IpAddr, u8)>,
    pub routes: Vec<ManagedRoute>,
}

impl InterfaceState {
    /// Whether any IPv6 address is assigned (otherwise IPv6 is switched off on the
    /// interface, so the kernel sends no link-local chatter into the network).
    pub fn has_ipv6(&self) -> bool {
        self.addresses.iter().any(|(ip, _)| ip.is_ipv6())
    }
}

/// The interface name of `nwid`: `zt` and 8 base32 characters of 40 bits folded from the
/// id, so it is stable across restarts, fits `IFNAMSIZ` and looks like the reference's.
pub fn interface_name(nwid: NetworkId) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let folded = (nwid.0 ^ (nwid.0 >> 40) ^ (nwid.0 >> 24).rotate_left(17)) & 0xff_ffff_ffff;
    let mut name = String::from("zt");
    for i in (0..8).rev() {
        let index = ((folded >> (i * 5)) & 31) as usize;
        name.push(char::from(ALPHABET[index]));
    }
    name
}

/// The state the interface of a network with `config` should have under `settings`.
pub fn desired_state(config: &NetworkConfig, settings: &NetworkSettings) -> InterfaceState {
    let mtu = if config.mtu == 0 {
        DEFAULT_MTU
    } else {
        config.mtu.clamp(MTU_RANGE.0, MTU_RANGE.1)
    };
    let mut state = InterfaceState {
        mtu,
        ..InterfaceState::default()
    };
    if !settings.allow_managed {
        return state;
    }
    for ip in &config.static_ips {
        let InetAddress::Ip(ip, bits) = ip else {
            continue;
        };
        let ip = canonical_ip(*ip);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let Ok(prefix) = u8::try_from(*bits) else {
            continue;
        };
        if prefix > max || ip.is_unspecified() || ip.is_multicast() {
            continue;
        }
        if !settings.allow_global && is_global(ip) {
            continue;
        }
        if !state.addresses.contains(&(ip, prefix)) {
            state.addresses.push((ip, prefix));
        }
    }
    for route in &config.routes {
        let Some((destination, bits)) = route.target_network() else {
            continue;
        };
        let destination = canonical_ip(destination);
        let Ok(prefix) = u8::try_from(bits) else {
            continue;
        };
        let gateway = route.via_ip().map(canonical_ip);
        if let Some(gateway) = gateway {
            // A route via one of our own addresses: we are the gateway, nothing to add.
            if state.addresses.iter().any(|(ip, _)| *ip == gateway)
                || gateway.is_ipv4() != destination.is_ipv4()
            {
                continue;
            }
        }
        if prefix == 0 && !settings.allow_default {
            continue;
        }
        if prefix != 0 && !settings.allow_global && is_global(destination) {
            continue;
        }
        // The subnet of an assigned address is routed by the kernel already.
        let covered = gateway.is_none()
            && state.addresses.iter().any(|(ip, bits)| {
                *bits == prefix && path_prefix_contains(destination, prefix, *ip)
            });
        let route = ManagedRoute {
            destination,
            prefix,
            gateway,
        };
        if !covered && !state.routes.contains(&route) {
            state.routes.push(route);
        }
    }
    state
}

/// Whether `ip` is in globally routable space (what `allowGlobal` guards): not private,
/// shared (100.64/10), link-local, loopback, documentation or unique-local.
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 2)
                || (o[0] == 198 && (o[1] & 0xfe) == 18))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !((s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v6.is_loopback()
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

#[cfg(target_os = "linux")]
pub use linux::spawn_reconciler;

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeSet;
    use std::net::IpAddr;
    use std::time::Duration;

    use tokio::sync::watch;
    use tracing::{debug, info, warn};
    use ztrs_platform::netlink::{self, Netlink, Route};

    use super::{InterfaceState, ManagedRoute};

    /// Transmit queue of our interfaces: longer than the default 500 so bursts from the
    /// kernel are absorbed rather than dropped (performance.md, item 4).
    const TX_QUEUE_LEN: u32 = 4096;

    /// Wait before retrying a state that failed to apply.
    const RETRY: Duration = Duration::from_secs(2);

    /// Starts the task that keeps interface `index` (`name`) at the state in `desired`.
    /// It ends when the sender is dropped.
    pub fn spawn_reconciler(
        name: String,
        index: u32,
        mut desired: watch::Receiver<InterfaceState>,
    ) {
        tokio::spawn(async move {
            let netlink = match Netlink::connect() {
                Ok(netlink) => netlink,
                Err(err) => {
                    warn!(interface = %name, %err, "cannot open netlink; interface left unconfigured");
                    return;
                }
            };
            let mut applied = Applied::default();
            loop {
                let state = desired.borrow_and_update().clone();
                match apply(&netlink, &name, index, &state, &mut applied).await {
                    Ok(()) => info!(
                        interface = %name,
                        mtu = state.mtu,
                        addresses = ?state.addresses,
                        routes = state.routes.len(),
                        "interface configured"
                    ),
                    Err(err) => {
                        warn!(interface = %name, %err, "interface configuration failed; retrying");
                        tokio::select! {
                            changed = desired.changed() => if changed.is_err() { return },
                            () = tokio::time::sleep(RETRY) => {}
                        }
                        continue;
                    }
                }
                if desired.changed().await.is_err() {
                    debug!(interface = %name, "port closed; reconciler ends");
                    return;
                }
            }
        });
    }

    /// What this reconciler added, so it removes only its own entries.
    #[derive(Default)]
    struct Applied {
        routes: BTreeSet<(IpAddr, u8, Option<IpAddr>)>,
        link_set_up: bool,
    }

    fn route_of(route: &ManagedRoute) -> Route {
        Route {
            destination: route.destination,
            prefix: route.prefix,
            gateway: route.gateway,
            metric: None,
        }
    }

    async fn apply(
        netlink: &Netlink,
        name: &str,
        index: u32,
        state: &InterfaceState,
        applied: &mut Applied,
    ) -> std::io::Result<()> {
        netlink.set_mtu(index, state.mtu).await?;
        if !applied.link_set_up {
            netlink.set_tx_queue_len(index, TX_QUEUE_LEN).await?;
            // No automatic link-local address: nothing of the kernel's own IPv6 chatter
            // (router solicitations, MLD) goes into the network unasked.
            if let Err(err) = netlink.set_ipv6_addr_gen_none(index).await {
                debug!(interface = %name, %err, "cannot turn off IPv6 address generation");
            }
        }
        if let Err(err) = netlink::disable_ipv6(name, !state.has_ipv6()) {
            debug!(interface = %name, %err, "cannot set disable_ipv6");
        }
        // Members must not reconfigure this host: router advertisements and redirects that
        // arrive over the network are ignored (the network's routes come from its config).
        for (family, key) in [
            ("ipv6", "accept_ra"),
            ("ipv6", "accept_redirects"),
            ("ipv4", "accept_redirects"),
        ] {
            if let Err(err) = netlink::set_interface_flag(family, name, key, false) {
                debug!(interface = %name, %err, "cannot clear {family} {key}");
            }
        }
        let current = netlink.addresses(index).await?;
        for (ip, prefix) in &current {
            let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !link_local && !state.addresses.contains(&(*ip, *prefix)) {
                netlink.remove_address(index, *ip, *prefix).await?;
            }
        }
        for (ip, prefix) in &state.addresses {
            if !current.contains(&(*ip, *prefix)) {
                netlink.add_address(index, *ip, *prefix).await?;
            }
        }
        if !applied.link_set_up {
            netlink.set_up(index, true).await?;
            applied.link_set_up = true;
        }
        let wanted: BTreeSet<(IpAddr, u8, Option<IpAddr>)> = state
            .routes
            .iter()
            .map(|r| (r.destination, r.prefix, r.gateway))
            .collect();
        for stale in applied
            .routes
            .difference(&wanted)
            .copied()
            .collect::<Vec<_>>()
        {
            let (destination, prefix, gateway) = stale;
            netlink
                .remove_route(
                    index,
                    &route_of(&ManagedRoute {
                        destination,
                        prefix,
                        gateway,
                    }),
                )
                .await?;
            applied.routes.remove(&stale);
        }
        for route in &state.routes {
            netlink.add_route(index, &route_of(route)).await?;
            applied
                .routes
                .insert((route.destination, route.prefix, route.gateway));
        }
        Ok(())
    }
}

/// Elsewhere the interface is left as the TUN backend created it (tun-rs manages addresses
/// on macOS and Windows; untested, see docs/daemon.md).
#[cfg(not(target_os = "linux"))]
pub fn spawn_reconciler(
    name: String,
    _index: u32,
    _desired: tokio::sync::watch::Receiver<InterfaceState>,
) {
    tracing::warn!(interface = %name, "managed addresses and routes are applied on Linux only");
}

#[cfg(test)]
mod tests;
