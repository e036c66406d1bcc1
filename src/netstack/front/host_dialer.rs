//! [`HostDialer`]: the front-end traits implemented with the host's own (tokio) sockets, for
//! tests of the front ends and of anything built on them. It resolves only IP literals and
//! `localhost`, so a test can never leak a DNS query or reach beyond the host by accident.
//! (The [`Acceptor`](super::Acceptor) for the host is `tokio::net::TcpListener` itself.)

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpStream, UdpSocket};

use super::{DatagramSocket, Dialer, Target};

/// Dials with the host's sockets.
#[derive(Clone, Debug)]
pub struct HostDialer {
    udp_bind: IpAddr,
}

impl Default for HostDialer {
    /// UDP sockets bound on 127.0.0.1: only loopback targets are reachable over UDP.
    fn default() -> Self {
        Self::new(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

impl HostDialer {
    /// A dialer whose UDP sockets are bound on `udp_bind` (port chosen by the kernel).
    pub fn new(udp_bind: IpAddr) -> Self {
        Self { udp_bind }
    }

    fn resolve_literal(host: &str) -> io::Result<Vec<IpAddr>> {
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        if name.eq_ignore_ascii_case("localhost") {
            return Ok(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the host dialer resolves only IP literals and localhost, not {host:?}"),
        ))
    }
}

impl Dialer for HostDialer {
    type Stream = TcpStream;
    type Datagram = HostDatagram;

    async fn connect(&self, target: &Target) -> io::Result<TcpStream> {
        let candidates = match target {
            Target::Addr(addr) => vec![*addr],
            Target::Name(host, port) => Self::resolve_literal(host)?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, *port))
                .collect(),
        };
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address to dial");
        for candidate in candidates {
            match TcpStream::connect(candidate).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    async fn bind_udp(&self) -> io::Result<HostDatagram> {
        UdpSocket::bind(SocketAddr::new(self.udp_bind, 0))
            .await
            .map(HostDatagram)
    }

    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Self::resolve_literal(host)
    }

    fn local_addr(&self, stream: &TcpStream) -> Option<SocketAddr> {
        stream.local_addr().ok()
    }
}

/// A host UDP socket as a [`DatagramSocket`].
#[derive(Debug)]
pub struct HostDatagram(pub UdpSocket);

impl DatagramSocket for HostDatagram {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.0.send_to(data, to).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }
}
