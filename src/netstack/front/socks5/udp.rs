//! SOCKS5 UDP ASSOCIATE: a UDP socket on the host facing the client and a datagram socket
//! from the [`Dialer`] facing the network, with datagrams unwrapped one way and wrapped the
//! other, for as long as the client keeps the TCP control connection open.
//!
//! Only datagrams from the client's IP are relayed, and only from one port: the one the
//! client named in its request, or else the port of its first datagram. Everything dropped
//! is counted in `udp_datagrams_dropped`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::wire::{self, Reply};
use crate::netstack::front::{
    DatagramSocket, Dialer, FrontCounters, Target, UNSPECIFIED_ADDR, bump,
};

/// Largest datagram relayed either way, SOCKS5 header included.
const MAX_DATAGRAM: usize = 65_535;
/// Names resolved per association, remembered so that a stream of datagrams to one name
/// does not resolve it each time; the cache is emptied when full.
const NAME_CACHE_ENTRIES: usize = 32;

/// Runs one association until the control connection closes or a socket fails.
pub(super) async fn associate<D: Dialer>(
    mut control: TcpStream,
    peer: SocketAddr,
    requested: &Target,
    dialer: &D,
    counters: &FrontCounters,
) {
    let client_ip = peer.ip().to_canonical();
    let sockets = open_sockets(&control, dialer).await;
    let (client_socket, network_socket, bound) = match sockets {
        Ok(sockets) => sockets,
        Err(error) => {
            tracing::debug!(%error, "SOCKS5 UDP ASSOCIATE could not open its sockets");
            let reply = wire::encode_reply(Reply::GeneralFailure, UNSPECIFIED_ADDR);
            let _ = control.write_all(&reply).await;
            return;
        }
    };
    let reply = wire::encode_reply(Reply::Succeeded, bound);
    if control.write_all(&reply).await.is_err() {
        return;
    }
    let association = Association {
        client_ip,
        client_port: OnceLock::new(),
        client_socket,
        network_socket,
        dialer,
        counters,
    };
    if let Target::Addr(hint) = requested
        && hint.port() != 0
        && (hint.ip().is_unspecified() || hint.ip().to_canonical() == client_ip)
    {
        let _ = association.client_port.set(hint.port());
    }
    tokio::select! {
        () = wait_for_close(&mut control) => {}
        () = association.run() => {}
    }
}

/// The client-facing socket is bound on the address the client reached us on, so that the
/// BND.ADDR we reply with is one the client can send to.
async fn open_sockets<D: Dialer>(
    control: &TcpStream,
    dialer: &D,
) -> io::Result<(UdpSocket, D::Datagram, SocketAddr)> {
    let local_ip = control.local_addr()?.ip().to_canonical();
    let client_socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    let bound = client_socket.local_addr()?;
    let network_socket = dialer.bind_udp().await?;
    Ok((client_socket, network_socket, bound))
}

/// Returns when the client closes the control connection (EOF or error); anything it sends
/// on it meanwhile is read and discarded.
async fn wait_for_close(control: &mut TcpStream) {
    let mut discard = [0u8; 512];
    while let Ok(read) = control.read(&mut discard).await {
        if read == 0 {
            break;
        }
    }
}

struct Association<'a, D: Dialer> {
    client_ip: IpAddr,
    /// Fixed by the request or by the client's first datagram; shared by both directions.
    client_port: OnceLock<u16>,
    client_socket: UdpSocket,
    network_socket: D::Datagram,
    dialer: &'a D,
    counters: &'a FrontCounters,
}

impl<D: Dialer> Association<'_, D> {
    /// Relays both ways until either socket fails for good.
    async fn run(&self) {
        tokio::select! {
            () = self.client_to_network() => {}
            () = self.network_to_client() => {}
        }
    }

    async fn client_to_network(&self) {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        let mut names: HashMap<String, IpAddr> = HashMap::new();
        loop {
            let (read, from) = match self.client_socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(error) if is_transient(&error) => continue,
                Err(_) => return,
            };
            let datagram = buffer.get(..read).unwrap_or_default();
            if !self.is_client(from) {
                bump(&self.counters.udp_datagrams_dropped);
                continue;
            }
            let Some((destination, payload)) = self.unwrap(datagram, &mut names).await else {
                bump(&self.counters.udp_datagrams_dropped);
                continue;
            };
            match self.network_socket.send_to(payload, destination).await {
                Ok(_) => bump(&self.counters.udp_datagrams_relayed),
                Err(_) => bump(&self.counters.udp_datagrams_dropped),
            }
        }
    }

    async fn network_to_client(&self) {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        let mut wrapped = Vec::with_capacity(MAX_DATAGRAM);
        loop {
            let (read, from) = match self.network_socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(error) if is_transient(&error) => continue,
                Err(_) => return,
            };
            // Before the client's first datagram there is nowhere to send a reply.
            let Some(&port) = self.client_port.get() else {
                bump(&self.counters.udp_datagrams_dropped);
                continue;
            };
            wrapped.clear();
            wire::encode_udp_header(from, &mut wrapped);
            wrapped.extend_from_slice(buffer.get(..read).unwrap_or_default());
            if wrapped.len() > MAX_DATAGRAM {
                bump(&self.counters.udp_datagrams_dropped);
                continue;
            }
            let client = SocketAddr::new(self.client_ip, port);
            match self.client_socket.send_to(&wrapped, client).await {
                Ok(_) => bump(&self.counters.udp_datagrams_relayed),
                Err(_) => bump(&self.counters.udp_datagrams_dropped),
            }
        }
    }

    /// From the client's IP, and from its port once that is known (the first datagram
    /// fixes it).
    fn is_client(&self, from: SocketAddr) -> bool {
        from.ip().to_canonical() == self.client_ip
            && *self.client_port.get_or_init(|| from.port()) == from.port()
    }

    /// The destination and payload of a client datagram; `None` to drop it (malformed,
    /// fragmented, or addressed to a name that does not resolve).
    async fn unwrap<'d>(
        &self,
        datagram: &'d [u8],
        names: &mut HashMap<String, IpAddr>,
    ) -> Option<(SocketAddr, &'d [u8])> {
        let header = wire::parse_udp_header(datagram).ok()?;
        // Reassembly is optional in RFC 1928 and we do not implement it.
        if header.fragment != 0 {
            return None;
        }
        let payload = datagram.get(header.header_len..)?;
        let destination = match header.target {
            Target::Addr(addr) => addr,
            Target::Name(host, port) => SocketAddr::new(self.resolve(host, names).await?, port),
        };
        Some((destination, payload))
    }

    async fn resolve(&self, host: String, names: &mut HashMap<String, IpAddr>) -> Option<IpAddr> {
        if let Some(ip) = names.get(&host) {
            return Some(*ip);
        }
        let ip = *self.dialer.resolve(&host).await.ok()?.first()?;
        if names.len() >= NAME_CACHE_ENTRIES {
            names.clear();
        }
        names.insert(host, ip);
        Some(ip)
    }
}

/// Receive errors that concern one datagram (an ICMP error reported late), not the socket.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
