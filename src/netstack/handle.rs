//! [`Netstack`]: the application's handle on the user-space stacks of a node: connect,
//! listen, bind UDP, resolve names, wait for addresses. Cheap to clone; every clone talks
//! to the same stacks. The node's driver runs them through the attachment
//! ([`Netstack::attachment`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::config::NetstackConfig;
use super::core::{NetstackCounters, Shared};
use super::listener::TcpListener;
use super::resolve::{happy_eyeballs, resolve};
use super::tcp::{TcpStream, connect};
use super::udp::UdpSocket;
use crate::service::netstack_ports::NetstackPorts;
use crate::wire::NetworkId;

/// See the module doc.
#[derive(Clone)]
pub struct Netstack {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Netstack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netstack").finish_non_exhaustive()
    }
}

impl Default for Netstack {
    fn default() -> Self {
        Netstack::new(NetstackConfig::default())
    }
}

impl Netstack {
    pub fn new(config: NetstackConfig) -> Netstack {
        Netstack {
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// The attachment that runs these stacks inside a node's driver
    /// (`service::spawn_attached`). One per node.
    pub fn attachment(&self) -> NetstackPorts {
        NetstackPorts::new(self.shared.clone())
    }

    /// Connects to `addr` on the network that routes it (the most specific route wins).
    /// No timeout of its own: wrap it, or use [`Netstack::connect_timeout`].
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        connect(&self.shared, addr, None).await
    }

    /// [`Netstack::connect`] from a chosen managed address.
    pub async fn connect_from(&self, local: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
        connect(&self.shared, addr, Some(local)).await
    }

    /// [`Netstack::connect`] bounded by `timeout`, which ends in `ErrorKind::TimedOut` and
    /// nothing else (H3.5); the attempt is aborted.
    pub async fn connect_timeout(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        match tokio::time::timeout(timeout, self.connect(addr)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} timed out after {timeout:?}"),
            )),
        }
    }

    /// Connects to `host:port`, `host` being an IP literal or a `.zt` name
    /// ([`Netstack::resolve`]); several addresses are raced (H3.8).
    pub async fn connect_host(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let addrs: Vec<SocketAddr> = self
            .resolve(host)?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        let shared = self.shared.clone();
        happy_eyeballs(addrs, move |addr| {
            let shared = shared.clone();
            async move { connect(&shared, addr, None).await }
        })
        .await
    }

    /// A listener on `addr` (port 0: an ephemeral port) with the default backlog.
    pub fn bind_tcp(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(&self.shared, addr, 0)
    }

    /// A listener with an explicit backlog (0: the default; capped at 4096).
    pub fn listen(&self, addr: SocketAddr, backlog: usize) -> io::Result<TcpListener> {
        TcpListener::bind(&self.shared, addr, backlog)
    }

    pub fn bind_udp(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::bind(&self.shared, addr)
    }

    /// The addresses of `host` on the joined networks (see `resolve` for the names known).
    pub fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        resolve(&self.shared.lock(), host)
    }

    /// Our managed addresses, per network, with prefix lengths.
    pub fn addresses(&self) -> Vec<(NetworkId, IpAddr, u8)> {
        let inner = self.shared.lock();
        inner
            .stacks
            .values()
            .flat_map(|s| {
                s.config()
                    .addresses
                    .iter()
                    .map(move |(ip, p)| (s.nwid, *ip, *p))
            })
            .collect()
    }

    /// Waits until `ready` holds for our addresses (for example: some network has an IPv4
    /// address), re-checking whenever networks or addresses change.
    pub async fn wait_for_addresses(
        &self,
        mut ready: impl FnMut(&[(NetworkId, IpAddr, u8)]) -> bool,
    ) -> Vec<(NetworkId, IpAddr, u8)> {
        let mut changes = self.shared.changes.subscribe();
        loop {
            changes.borrow_and_update();
            let addresses = self.addresses();
            if ready(&addresses) {
                return addresses;
            }
            if changes.changed().await.is_err() {
                return addresses;
            }
        }
    }

    /// Lists a front end's counters in the attachment's report (the control API).
    pub fn register_front(&self, name: String, counters: Arc<super::front::FrontCounters>) {
        self.shared
            .fronts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((name, counters));
    }

    pub fn counters(&self) -> NetstackCounters {
        self.shared.lock().counters
    }
}
