//! An in-process private ZeroTier network on 127.0.0.1, for tests, benchmarks and the demo:
//! a root that also runs the controller, one network on it, and members whose networks run
//! on user-space stacks ([`Netstack`]). Real services over real UDP sockets; no privileges,
//! no internet, no files.
//!
//! [`Lab::start`] returns once every member holds its managed addresses, so callers can
//! connect at once. Every wait has a deadline and says what it waited for.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::timeout;
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

use crate::controller::{Controller, MemoryStore};
use crate::crypto::Identity;
use crate::crypto::c25519::{SIGNATURE_LEN, generate_keypair};
use crate::netstack::{Netstack, NetstackConfig};
use crate::node::NodeConfig;
use crate::service::impair::Impairment;
use crate::service::{self, ServiceHandle, ServiceOptions};
use crate::wire::NetworkId;
use crate::wire::inet_address::InetAddress;
use crate::wire::world::{Root, World, WorldType};

/// How long a lab waits for its members to be configured.
pub const START_BOUND: Duration = Duration::from_secs(20);

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
        }
    }
}

/// One member of the lab.
pub struct LabMember {
    pub handle: ServiceHandle,
    pub netstack: Netstack,
}

impl LabMember {
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

fn planet_of(root: &Identity, endpoint: SocketAddr) -> World {
    let (public, secret) = generate_keypair();
    let mut planet = World {
        world_type: WorldType::Planet,
        id: 0x7a74_7273_6c61_6200,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: root.to_public(),
            stable_endpoints: vec![InetAddress::Ip(endpoint.ip(), endpoint.port())],
        }],
    };
    planet.sign(&secret);
    planet
}

impl Lab {
    /// Starts the root (with the controller and the network) and the members, joins them
    /// and waits until each has its addresses. Must run inside a tokio runtime.
    pub async fn start(options: LabOptions) -> Result<Lab, String> {
        let root_socket = loopback()?;
        let root_id = Identity::generate();
        let planet = planet_of(&root_id, root_socket.local_addr());
        let node_config = |identity: Identity, relay: bool| NodeConfig {
            allow_loopback_paths: true,
            relay,
            ..NodeConfig::new(identity, planet.clone())
        };
        let root_config = NodeConfig {
            controller: Some(Controller::new(
                root_id.clone(),
                Box::new(MemoryStore::new()),
            )),
            ..node_config(root_id, true)
        };
        let (root, _events) = service::spawn(root_config, root_socket, ServiceOptions::default())
            .map_err(|e| format!("cannot start the root: {e}"))?;
        let fields = options.network.clone();
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
        for _ in 0..options.members {
            let netstack = Netstack::new(options.netstack.clone());
            let service_options = ServiceOptions {
                impairment: options.impairment,
                ..ServiceOptions::default()
            };
            let (handle, _events) = service::spawn_attached(
                node_config(Identity::generate(), false),
                loopback()?,
                service_options,
                Some(Box::new(netstack.attachment())),
            )
            .map_err(|e| format!("cannot start a member: {e}"))?;
            handle
                .with_node_mut(move |node, now| node.join(now, nwid))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot join {nwid}: {e}"))?;
            members.push(LabMember { handle, netstack });
        }
        let lab = Lab {
            root,
            members,
            nwid,
        };
        for (i, member) in lab.members.iter().enumerate() {
            let ready = member.netstack.wait_for_addresses(|a| {
                a.iter().any(|(_, ip, _)| ip.is_ipv4()) && a.iter().any(|(_, ip, _)| ip.is_ipv6())
            });
            if timeout(START_BOUND, ready).await.is_err() {
                lab.shutdown().await;
                return Err(format!(
                    "member {i} was not configured with IPv4 and IPv6 addresses within {START_BOUND:?}"
                ));
            }
        }
        Ok(lab)
    }

    /// Stops every service (members first).
    pub async fn shutdown(&self) {
        for member in &self.members {
            member.handle.shutdown().await;
        }
        self.root.shutdown().await;
    }
}
