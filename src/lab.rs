//! An in-process private ZeroTier network on 127.0.0.1, for tests, benchmarks and the demo:
//! a root that also runs the controller, one network on it, and members whose networks run
//! on user-space stacks ([`Netstack`]). Real services over real UDP sockets; no privileges,
//! no internet, no files.
//!
//! [`Lab::start`] returns once every member holds its managed addresses, so callers can
//! connect at once; with [`Authorize::Manual`] the network is private and members wait for
//! [`Lab::authorize`]. Each member's [`Milestones`] (online, joined, refused, configured,
//! direct paths) are recorded from its node events, for callers that report timings. Every
//! wait has a deadline and says what it waited for.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

use crate::controller::{Controller, MemoryStore};
use crate::crypto::Identity;
use crate::crypto::c25519::{SIGNATURE_LEN, generate_keypair};
use crate::netstack::{Netstack, NetstackConfig};
use crate::node::{Event, NetworkStatus, NodeConfig};
use crate::service::impair::Impairment;
use crate::service::{self, ServiceHandle, ServiceOptions};
use crate::wire::inet_address::InetAddress;
use crate::wire::world::{Root, World, WorldType};
use crate::wire::{Address, NetworkId};

/// How long a lab waits for its members to be configured.
pub const START_BOUND: Duration = Duration::from_secs(20);

/// Direct paths recorded per member ([`Milestones::direct_paths`]); more are only counted.
pub const MAX_TRACKED_PEERS: usize = 64;

/// How members get onto the lab network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Authorize {
    /// The network is public (unless `network` says otherwise): members are configured at
    /// once and [`Lab::start`] waits for their addresses.
    #[default]
    Auto,
    /// The network is private: members join and are refused (ACCESS_DENIED) until
    /// [`Lab::authorize`]; [`Lab::start`] returns once they have joined.
    Manual,
}

/// What to build.
#[derive(Clone)]
pub struct LabOptions {
    pub members: usize,
    /// Fields of the network object given to the controller (the defaults: a public
    /// network, IPv4 pool 10.147.17.10-250 with its route, RFC 4193 addresses).
    pub network: Value,
    /// The user-space stack settings of every member.
    pub netstack: NetstackConfig,
    /// Fault injection on each member's outbound datagrams.
    pub impairment: Option<Impairment>,
    /// Public network, or private with explicit authorization (see [`Authorize`]).
    pub authorize: Authorize,
    /// Identities to use, the root's first and then the members' in order; missing ones are
    /// generated (callers that show the proof of work generate them themselves).
    pub identities: Vec<Identity>,
    /// Seeds the nodes' random generators (node `i`, the root being 0, gets `seed + i`).
    pub rng_seed: Option<u64>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            members: 2,
            network: json!({
                "name": "lab",
                "private": false,
                "enableBroadcast": true,
                "v4AssignMode": {"zt": true},
                "v6AssignMode": {"rfc4193": true},
                "ipAssignmentPools": [{"ipRangeStart": "10.147.17.10", "ipRangeEnd": "10.147.17.250"}],
                "routes": [{"target": "10.147.17.0/24", "via": null}],
            }),
            netstack: NetstackConfig::default(),
            impairment: None,
            authorize: Authorize::Auto,
            identities: Vec::new(),
            rng_seed: None,
        }
    }
}

/// When things happened to one member, from its node events (first occurrence of each).
#[derive(Clone, Debug)]
pub struct Milestones {
    /// When the member's service was started.
    pub started: Instant,
    /// A root answered (the node is online).
    pub online: Option<Instant>,
    /// The lab asked the node to join the lab network.
    pub joined: Option<Instant>,
    /// The controller refused the member (ACCESS_DENIED).
    pub denied: Option<Instant>,
    /// The first network config was accepted.
    pub configured: Option<Instant>,
    /// The first direct path learned to each peer (at most [`MAX_TRACKED_PEERS`]).
    pub direct_paths: Vec<(Address, Instant)>,
    /// Direct paths not recorded because `direct_paths` was full.
    pub untracked_paths: u64,
    /// USER_MESSAGEs received, and when the first arrived.
    pub user_messages: u64,
    pub first_user_message: Option<Instant>,
}

impl Milestones {
    fn new(started: Instant) -> Milestones {
        Milestones {
            started,
            online: None,
            joined: None,
            denied: None,
            configured: None,
            direct_paths: Vec::new(),
            untracked_paths: 0,
            user_messages: 0,
            first_user_message: None,
        }
    }

    /// When the first direct path to `peer` was learned.
    pub fn direct_path_to(&self, peer: Address) -> Option<Instant> {
        self.direct_paths
            .iter()
            .find_map(|(address, at)| (*address == peer).then_some(*at))
    }

    fn record(&mut self, event: &Event, nwid: NetworkId) {
        let now = Instant::now();
        match event {
            Event::Online(true) => {
                self.online.get_or_insert(now);
            }
            Event::NetworkStatus {
                nwid: of,
                status: NetworkStatus::AccessDenied,
            } if *of == nwid => {
                self.denied.get_or_insert(now);
            }
            Event::NetworkConfigured { nwid: of, .. } if *of == nwid => {
                self.configured.get_or_insert(now);
            }
            Event::PeerDirectPath { peer, .. } if self.direct_path_to(*peer).is_none() => {
                if self.direct_paths.len() < MAX_TRACKED_PEERS {
                    self.direct_paths.push((*peer, now));
                } else {
                    self.untracked_paths += 1;
                }
            }
            Event::UserMessage { .. } => {
                self.user_messages += 1;
                self.first_user_message.get_or_insert(now);
            }
            _ => {}
        }
    }
}

/// Drains a member's node events into its milestones until the service stops.
fn record_milestones(
    mut events: mpsc::Receiver<Event>,
    milestones: Arc<watch::Sender<Milestones>>,
    nwid: NetworkId,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            milestones.send_modify(|m| m.record(&event, nwid));
        }
    });
}

/// One member of the lab.
pub struct LabMember {
    pub handle: ServiceHandle,
    pub netstack: Netstack,
    milestones: Arc<watch::Sender<Milestones>>,
}

impl LabMember {
    /// What happened to this member so far.
    pub fn milestones(&self) -> Milestones {
        self.milestones.borrow().clone()
    }

    /// Waits (at most `bound`) until `reached` holds for the milestones; the error names
    /// `what`.
    pub async fn wait_for(
        &self,
        what: &str,
        bound: Duration,
        mut reached: impl FnMut(&Milestones) -> bool,
    ) -> Result<Milestones, String> {
        let mut changes = self.milestones.subscribe();
        match timeout(bound, changes.wait_for(|m| reached(m))).await {
            Ok(Ok(milestones)) => Ok(milestones.clone()),
            Ok(Err(_)) => Err(format!("{what}: the member stopped")),
            Err(_) => Err(format!("timed out after {bound:?} waiting for {what}")),
        }
    }

    /// Waits (at most `bound`) until the member holds a managed IPv4 and a managed IPv6
    /// address.
    pub async fn wait_for_addresses(&self, bound: Duration) -> Result<(), String> {
        let ready = self.netstack.wait_for_addresses(|a| {
            a.iter().any(|(_, ip, _)| ip.is_ipv4()) && a.iter().any(|(_, ip, _)| ip.is_ipv6())
        });
        timeout(bound, ready).await.map(drop).map_err(|_| {
            format!("the member was not configured with IPv4 and IPv6 addresses within {bound:?}")
        })
    }

    /// The member's managed IPv4 address on the lab network.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.netstack
            .addresses()
            .into_iter()
            .find_map(|(_, ip, _)| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    }

    pub fn ipv6(&self) -> Option<IpAddr> {
        self.netstack
            .addresses()
            .into_iter()
            .map(|(_, ip, _)| ip)
            .find(IpAddr::is_ipv6)
    }
}

/// See the module doc.
pub struct Lab {
    pub root: ServiceHandle,
    pub members: Vec<LabMember>,
    pub nwid: NetworkId,
}

fn loopback() -> Result<UdpUnderlay, String> {
    UdpUnderlay::open(UdpConfig::ip(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
        .map_err(|e| format!("cannot bind a UDP socket on 127.0.0.1: {e}"))
}

/// A private planet `id` whose roots are `roots` (each at one stable endpoint), signed by a
/// fresh key that is dropped afterwards (nobody can update it). Timestamp 1,700,000,000,000.
pub fn signed_planet(id: u64, roots: &[(&Identity, SocketAddr)]) -> World {
    let (public, secret) = generate_keypair();
    let mut planet = World {
        world_type: WorldType::Planet,
        id,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: roots
            .iter()
            .map(|(identity, at)| Root {
                identity: identity.to_public(),
                stable_endpoints: vec![InetAddress::Ip(at.ip(), at.port())],
            })
            .collect(),
    };
    planet.sign(&secret);
    planet
}

impl Lab {
    /// Starts the root (with the controller and the network) and the members, joins them
    /// and waits until each has its addresses ([`Authorize::Auto`]) or only until they have
    /// asked to join ([`Authorize::Manual`]). Must run inside a tokio runtime.
    pub async fn start(options: LabOptions) -> Result<Lab, String> {
        let root_socket = loopback()?;
        let mut identities = options.identities.clone().into_iter();
        let root_id = identities.next().unwrap_or_else(Identity::generate);
        let planet = signed_planet(
            0x7a74_7273_6c61_6200,
            &[(&root_id, root_socket.local_addr())],
        );
        let node_config = |identity: Identity, relay: bool, index: u64| NodeConfig {
            allow_loopback_paths: true,
            relay,
            rng_seed: options.rng_seed.map(|seed| seed.wrapping_add(index)),
            ..NodeConfig::new(identity, planet.clone())
        };
        let root_config = NodeConfig {
            controller: Some(Controller::new(
                root_id.clone(),
                Box::new(MemoryStore::new()),
            )),
            ..node_config(root_id, true, 0)
        };
        let (root, _events) = service::spawn(root_config, root_socket, ServiceOptions::default())
            .map_err(|e| format!("cannot start the root: {e}"))?;
        let mut fields = options.network.clone();
        if options.authorize == Authorize::Manual
            && let Some(object) = fields.as_object_mut()
        {
            object.insert("private".to_owned(), Value::Bool(true));
        }
        let nwid = root
            .with_node_mut(move |node, now| -> Result<NetworkId, String> {
                let controller = node.controller_mut().ok_or("the root runs no controller")?;
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                let network = controller
                    .create_network(now, fields)
                    .map_err(|e| format!("cannot create the network: {e}"))?;
                network
                    .network_id()
                    .ok_or_else(|| "the new network has no id".to_owned())
            })
            .await
            .map_err(|e| e.to_string())??;
        let mut members = Vec::with_capacity(options.members);
        for index in 1..=options.members {
            let netstack = Netstack::new(options.netstack.clone());
            let service_options = ServiceOptions {
                impairment: options.impairment,
                ..ServiceOptions::default()
            };
            let identity = identities.next().unwrap_or_else(Identity::generate);
            let started = Instant::now();
            let (handle, events) = service::spawn_attached(
                node_config(identity, false, index as u64),
                loopback()?,
                service_options,
                Some(Box::new(netstack.attachment())),
            )
            .map_err(|e| format!("cannot start a member: {e}"))?;
            let milestones = Arc::new(watch::Sender::new(Milestones::new(started)));
            record_milestones(events, milestones.clone(), nwid);
            milestones.send_modify(|m| m.joined = Some(Instant::now()));
            handle
                .with_node_mut(move |node, now| node.join(now, nwid))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot join {nwid}: {e}"))?;
            members.push(LabMember {
                handle,
                netstack,
                milestones,
            });
        }
        let lab = Lab {
            root,
            members,
            nwid,
        };
        if options.authorize == Authorize::Manual {
            return Ok(lab);
        }
        for (i, member) in lab.members.iter().enumerate() {
            if let Err(missed) = member.wait_for_addresses(START_BOUND).await {
                lab.shutdown().await;
                return Err(format!("member {i}: {missed}"));
            }
        }
        Ok(lab)
    }

    /// Authorizes the members at `indices` on the controller in one change and pushes their
    /// configs at once (without the push they would only get them at their next periodic
    /// request).
    ///
    /// Authorize members that should talk together in one call: each change also sends the
    /// configured members a COM revocation (threshold: that millisecond) for every member
    /// still refused, so a member authorized separately within the same millisecond would
    /// hold a COM the others refuse.
    pub async fn authorize(&self, indices: &[usize]) -> Result<(), String> {
        let mut addresses = Vec::with_capacity(indices.len());
        for &index in indices {
            let member = self
                .members
                .get(index)
                .ok_or_else(|| format!("the lab has no member {index}"))?;
            addresses.push(member.handle.address());
        }
        let nwid = self.nwid;
        self.root
            .with_node_mut(move |node, now| -> Result<(), String> {
                let controller = node.controller_mut().ok_or("the root runs no controller")?;
                let time = i64::try_from(now).unwrap_or(i64::MAX);
                for address in addresses {
                    controller
                        .update_member(time, nwid, address, &json!({"authorized": true}))
                        .map_err(|e| format!("cannot authorize {address}: {e}"))?;
                }
                node.controller_changed(now, nwid);
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?
    }

    /// Packets the root relayed between members so far (its `relay_forwarded` counter).
    pub async fn relayed_by_root(&self) -> Result<u64, String> {
        self.root
            .inspect(|node| node.counters().relay_forwarded)
            .await
            .map_err(|e| format!("root: {e}"))
    }

    /// Stops every service (members first) and says which did not stop cleanly.
    pub async fn shutdown_checked(&self) -> Result<(), String> {
        let mut unclean = Vec::new();
        for (i, member) in self.members.iter().enumerate() {
            let outcome = member.handle.shutdown().await;
            if !outcome.is_clean() {
                unclean.push(format!("member {i}: {outcome:?}"));
            }
        }
        let outcome = self.root.shutdown().await;
        if !outcome.is_clean() {
            unclean.push(format!("root: {outcome:?}"));
        }
        if unclean.is_empty() {
            Ok(())
        } else {
            Err(format!("unclean shutdown ({})", unclean.join(", ")))
        }
    }

    /// Stops every service (members first).
    pub async fn shutdown(&self) {
        for member in &self.members {
            member.handle.shutdown().await;
        }
        self.root.shutdown().await;
    }
}
