//! The daemon: a node run from a home directory, the way `zerotier-one` runs.
//!
//! Start-up: open the home (`store::Home`), load or create the identity, read `local.conf`,
//! the planet and moons, open the UDP port, and start the driver with the TUN attachment.
//! Roles come from configuration: every node answers as the controller of networks whose id
//! starts with its address (store `controller.d/`), a node listed as a root of its planet or
//! of a moon relays, and every node is a member of the networks in `networks.d/` (joined at
//! start, each with its stored config so the interface comes back at once after a restart).
//!
//! While running it persists what the node learns (network configs, planet and moon
//! updates), and it stops on SIGINT/SIGTERM: the driver is shut down within its bound, the
//! interfaces go with it, and the pid file is removed.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

use super::impair::Impairment;
use super::local_conf::LocalConf;
use super::tun_ports::TunPorts;
use super::userspace::UserspaceOptions;
use super::{ServiceHandle, ServiceOptions, spawn_attached};
use crate::controller::store::{Store, StoreError};
use crate::controller::{Controller, DirectoryStore};
use crate::dataplane::Policy;
use crate::netstack::Netstack;
use crate::node::{Event, NodeConfig};
use crate::store::Home;
use crate::wire::NetworkId;
use crate::wire::netconf::NetworkConfig;
use crate::wire::world::World;

/// How the daemon was asked to run.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub home: PathBuf,
    /// The UDP port (`-p`); `local.conf` `primaryPort` when `None`.
    pub port: Option<u16>,
    /// Create TUN interfaces for joined networks (off: the node joins and answers but
    /// carries no host traffic; for roots and controllers without privileges).
    pub tun: bool,
    /// Serve the local control API on this TCP port of 127.0.0.1 (`None`: the UDP port).
    pub api_port: Option<u16>,
    /// Accept loopback endpoints as paths (rigs on one host).
    pub allow_loopback_paths: bool,
    /// User-space mode: networks run on built-in TCP/IP stacks instead of TUN interfaces
    /// (no privileges), with these front ends. Takes precedence over `tun`.
    pub userspace: Option<UserspaceOptions>,
}

/// A running daemon's parts other modules need (the control API).
#[derive(Clone)]
pub struct Daemon {
    pub handle: ServiceHandle,
    pub home: Home,
}

/// Runs the daemon until `stop` resolves (with the reason to log). Errors name what failed.
pub async fn run(
    options: DaemonOptions,
    stop: impl Future<Output = &'static str>,
) -> Result<(), String> {
    let home = Home::open(&options.home).map_err(|e| e.to_string())?;
    let identity = home.load_or_create_identity().map_err(|e| e.to_string())?;
    let local = match home.read("local.conf").map_err(|e| e.to_string())? {
        Some(bytes) => LocalConf::parse(&bytes)
            .map_err(|e| format!("{}: {e}", home.path("local.conf").display()))?,
        None => LocalConf::default(),
    };
    let planet = home.planet().map_err(|e| e.to_string())?;
    let moons = stored_moons(&home)?;
    check_stored_networks(&home)?;
    let port = options.port.unwrap_or(local.primary_port);
    let is_root = planet
        .roots
        .iter()
        .chain(moons.iter().flat_map(|m| m.roots.iter()))
        .any(|root| root.identity.public_key() == identity.public_key());
    let store = DirectoryStore::open(home.controller_dir())
        .map_err(|e| format!("cannot open the controller store: {e}"))?;
    check_controller_store(&store)?;
    report_settings(&local);
    let address = identity.address();
    let config = NodeConfig {
        moons,
        static_paths: local.static_paths.clone(),
        path_blacklist: local.physical_blacklist.clone(),
        allow_loopback_paths: options.allow_loopback_paths,
        controller: Some(Controller::new(identity.clone(), Box::new(store))),
        ..NodeConfig::new(identity, planet)
    };
    let socket = UdpUnderlay::open(UdpConfig::wildcard(port))
        .map_err(|e| format!("cannot open UDP port {port}: {e}"))?;
    let bound = socket.local_addr();
    let netstack = options.userspace.as_ref().map(|_| Netstack::default());
    let tun = options.tun && netstack.is_none();
    let attachment = match &netstack {
        Some(netstack) => Some(Box::new(netstack.attachment()) as Box<dyn super::Attachment>),
        None => tun_attachment(&home, tun),
    };
    let impairment = match std::env::var("ZTRS_IMPAIR") {
        Ok(text) => {
            let impairment = Impairment::parse(&text)?;
            warn!(
                ?impairment,
                "ZTRS_IMPAIR: outbound datagrams are impaired on purpose"
            );
            Some(impairment)
        }
        Err(_) => None,
    };
    set_clock_offset_from_env()?;
    let options_for_service = ServiceOptions {
        impairment,
        ..ServiceOptions::default()
    };
    let (handle, events) = spawn_attached(config, socket, options_for_service, attachment)
        .map_err(|e| format!("cannot start the node: {e}"))?;
    info!(
        %address,
        udp = %bound,
        root = is_root,
        tun,
        userspace = netstack.is_some(),
        home = %home.root().display(),
        "node started"
    );
    let daemon = Daemon {
        handle: handle.clone(),
        home: home.clone(),
    };
    let fronts = match (&netstack, &options.userspace) {
        (Some(netstack), Some(userspace)) => {
            match super::userspace::start(netstack, userspace).await {
                Ok(fronts) => Some(fronts),
                Err(message) => {
                    handle.shutdown().await;
                    return Err(message);
                }
            }
        }
        _ => None,
    };
    join_stored_networks(&daemon).await;
    let api_port = options.api_port.unwrap_or(bound.port());
    let api = crate::api::start(daemon.clone(), api_port)
        .await
        .map_err(|e| format!("cannot start the control API on 127.0.0.1:{api_port}: {e}"))?;
    // Written last: a tool that finds the port file can talk to the API (token included).
    write_runtime_files(&home, bound);
    let outcome = supervise(&daemon, events, stop).await;
    api.stop().await;
    if let Some(fronts) = fronts {
        fronts.stop();
    }
    let shutdown = handle.shutdown().await;
    let _ = std::fs::remove_file(home.path("zerotier-one.pid"));
    info!(?shutdown, stats = ?handle.stats(), "node stopped");
    outcome?;
    if shutdown.is_clean() {
        Ok(())
    } else {
        Err(format!("unclean shutdown: {shutdown:?}"))
    }
}

/// Test hook `ZTRS_CLOCK_OFFSET_MS` (signed milliseconds): the node's clock is anchored
/// that far from the wall clock, as on a machine whose clock is off. Read before the node
/// starts; a bad value is an error rather than a silently correct clock.
fn set_clock_offset_from_env() -> Result<(), String> {
    let Ok(text) = std::env::var("ZTRS_CLOCK_OFFSET_MS") else {
        return Ok(());
    };
    let offset_ms = text
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("ZTRS_CLOCK_OFFSET_MS: {text:?} is not signed milliseconds"))?;
    warn!(
        offset_ms,
        "ZTRS_CLOCK_OFFSET_MS: the node's clock is shifted on purpose"
    );
    super::clock::set_wall_clock_offset_ms(offset_ms);
    Ok(())
}

/// The moons of `moons.d`. A file there that does not load (not a signed moon named by its
/// id, a symlink, oversized) stops the start with its name: running without a root the
/// operator configured would fail later and silently (issue 7 item 5).
fn stored_moons(home: &Home) -> Result<Vec<World>, String> {
    let (moons, skipped) = home.moons().map_err(|e| e.to_string())?;
    match skipped.first() {
        None => Ok(moons),
        Some(name) => Err(format!(
            "{}: not a moon this node can load (a signed moon whose id is its name, a \
             regular file of at most 1 MiB); fix or remove it",
            home.path("moons.d").join(name).display()
        )),
    }
}

/// Every non-empty `networks.d/<nwid>.conf` must be a network config: we only ever write
/// whole configs (atomically), so anything else was damaged or put there by hand, and
/// joining as if the file were empty would hide that (issue 7 item 5). A config issued to
/// another node is not damage (the controller is asked for a new one), so it is not checked.
fn check_stored_networks(home: &Home) -> Result<(), String> {
    for nwid in home.joined_networks().map_err(|e| e.to_string())? {
        let stored = home.network_config(nwid).map_err(|e| e.to_string())?;
        if let Some(bytes) = stored
            && let Err(err) = NetworkConfig::from_dictionary(&bytes)
        {
            let name = format!("networks.d/{:016x}.conf", nwid.0);
            return Err(format!(
                "{}: not a network config ({err:?}); fix or remove it",
                home.path(&name).display()
            ));
        }
    }
    Ok(())
}

/// Every network and member object of `controller.d` must load before the controller
/// serves from it (the reference loads them all at start too); the error names the file.
fn check_controller_store(store: &DirectoryStore) -> Result<(), String> {
    let named = |path: String| {
        let path = store.root().join(path);
        move |err: StoreError| format!("{}: {err}", path.display())
    };
    let listing = |err: StoreError| format!("cannot list {}: {err}", store.root().display());
    for nwid in store.network_ids().map_err(listing)? {
        store
            .get_network(nwid)
            .map_err(named(format!("network/{nwid}.json")))?;
        for address in store.member_addresses(nwid).map_err(listing)? {
            store
                .get_member(nwid, address)
                .map_err(named(format!("network/{nwid}/member/{address}.json")))?;
        }
    }
    Ok(())
}

/// The TUN attachment (when `tun`), with per-network settings read from the home.
fn tun_attachment(home: &Home, tun: bool) -> Option<Box<dyn super::Attachment>> {
    tun.then(|| {
        let settings_home = home.clone();
        let settings = Box::new(move |nwid| {
            settings_home.network_settings(nwid).unwrap_or_else(|err| {
                warn!(%err, "unreadable network settings; using the defaults");
                Default::default()
            })
        });
        Box::new(TunPorts::new(settings, Policy::default())) as Box<dyn super::Attachment>
    })
}

/// Says which reference settings are read but have nothing to act on here.
fn report_settings(local: &LocalConf) {
    if local.allow_secondary_port || local.port_mapping_enabled || local.allow_tcp_fallback_relay {
        debug!(
            secondary_port = local.allow_secondary_port,
            port_mapping = local.port_mapping_enabled,
            tcp_fallback = local.allow_tcp_fallback_relay,
            "ztrs uses one UDP port and has no UPnP/NAT-PMP or TCP relay; these settings are noted only"
        );
    }
    if !local.virtual_blacklist.is_empty() {
        warn!("local.conf virtual blacklists are not applied per node yet");
    }
}

/// `zerotier-one.port` and `zerotier-one.pid`, as tools of the reference expect.
fn write_runtime_files(home: &Home, bound: SocketAddr) {
    let port = bound.port().to_string();
    let pid = std::process::id().to_string();
    // The port file last: tools (and tests) take it as the sign that the daemon is ready.
    for (name, text) in [("zerotier-one.pid", pid), ("zerotier-one.port", port)] {
        if let Err(err) = home.write(name, text.as_bytes(), false) {
            warn!(%err, "cannot write {name}");
        }
    }
}

/// Joins every network of `networks.d`, with its stored config when there is one.
async fn join_stored_networks(daemon: &Daemon) {
    let networks = match daemon.home.joined_networks() {
        Ok(networks) => networks,
        Err(err) => {
            error!(%err, "cannot list networks.d; no network joined");
            return;
        }
    };
    for nwid in networks {
        let stored = daemon.home.network_config(nwid).unwrap_or_else(|err| {
            warn!(%err, "stored config unreadable; joining without it");
            None
        });
        let joined = daemon
            .handle
            .with_node_mut(move |node, now| match stored {
                Some(bytes) => node.join_with_config(now, nwid, &bytes).map(|_| ()),
                None => node.join(now, nwid),
            })
            .await;
        match joined {
            Ok(Ok(())) => info!(network = %nwid, "joined"),
            Ok(Err(err)) => warn!(network = %nwid, %err, "cannot join"),
            Err(err) => warn!(network = %nwid, %err, "cannot join"),
        }
    }
}

/// Persists what the node reports until `stop` resolves or the node ends.
async fn supervise(
    daemon: &Daemon,
    mut events: mpsc::Receiver<Event>,
    stop: impl Future<Output = &'static str>,
) -> Result<(), String> {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            reason = &mut stop => {
                info!("{reason}: stopping");
                return Ok(());
            }
            event = events.recv() => match event {
                Some(event) => handle_event(daemon, event).await,
                None => return Err("the node ended on its own".into()),
            },
        }
    }
}

async fn handle_event(daemon: &Daemon, event: Event) {
    match event {
        Event::NetworkConfigured { nwid, revision } => {
            persist_config(daemon, nwid).await;
            info!(network = %nwid, revision, "network configured");
        }
        Event::NetworkStatus { nwid, status } => {
            warn!(network = %nwid, ?status, "network status");
        }
        Event::WorldUpdated { id, is_moon, .. } => {
            // Saved on the driver task, in step with the node (see `persist_config`): a
            // deorbit runs wholly before (nothing held, nothing written) or after (its
            // removal follows the write), never between, where it would be undone.
            let home = daemon.home.clone();
            let saved = daemon
                .handle
                .inspect(move |node| {
                    let world = match is_moon {
                        true => node.moons().iter().find(|m| m.id == id),
                        false => Some(node.planet()),
                    };
                    world.map(|world| home.save_world(world))
                })
                .await;
            if let Ok(Some(Err(err))) = saved {
                warn!(%err, "cannot persist the world update");
            }
        }
        Event::IdentityCollision { root } => {
            error!(%root, "a root reports another identity with our address: generate a new identity");
        }
        Event::Online(online) => info!(online, "upstream reachability changed"),
        other => debug!(event = ?other, "node event"),
    }
}

/// Writes the config in force for `nwid` into `networks.d` (if the network is still joined).
/// The write runs on the driver task, between node calls: a leave (the node leaves, then the
/// API removes the files) comes wholly before it (not joined: nothing written) or after it
/// (the files go). Checking on the driver and writing here afterwards let a leave slip in
/// between, and the write then brought back a network the API had acknowledged leaving.
async fn persist_config(daemon: &Daemon, nwid: NetworkId) {
    let home = daemon.home.clone();
    let saved = daemon
        .handle
        .inspect(move |node| {
            node.network_config_bytes(nwid)
                .map(|bytes| home.save_network_config(nwid, bytes))
        })
        .await;
    if let Ok(Some(Err(err))) = saved {
        warn!(%err, "cannot persist the network config");
    }
}
