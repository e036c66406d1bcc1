//! The user-space stacks as the network of the front ends: [`Netstack`] dials targets
//! (names through [`Netstack::resolve`], several addresses raced), [`TcpListener`] accepts
//! for `-R` forwards, and [`DualUdp`] carries SOCKS5 UDP ASSOCIATE in both families.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::front::{Acceptor, DatagramSocket, Dialer, Target};
use super::{Netstack, TcpListener, TcpStream, UdpSocket};

/// An IPv4 and (when we have IPv6 addresses) an IPv6 socket on ephemeral ports: SOCKS5
/// clients may relay to either family through one association.
pub struct DualUdp {
    v4: UdpSocket,
    v6: Option<UdpSocket>,
}

impl Dialer for Netstack {
    type Stream = TcpStream;
    type Datagram = DualUdp;

    async fn connect(&self, target: &Target) -> io::Result<TcpStream> {
        match target {
            Target::Addr(addr) => Netstack::connect(self, *addr).await,
            Target::Name(host, port) => self.connect_host(host, *port).await,
        }
    }

    async fn bind_udp(&self) -> io::Result<DualUdp> {
        let v4 = Netstack::bind_udp(self, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))?;
        let v6 =
            Netstack::bind_udp(self, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)).ok();
        Ok(DualUdp { v4, v6 })
    }

    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Netstack::resolve(self, host)
    }

    fn local_addr(&self, stream: &TcpStream) -> Option<SocketAddr> {
        Some(stream.local_addr())
    }
}

impl DatagramSocket for DualUdp {
    async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        match (&self.v6, to) {
            (Some(v6), SocketAddr::V6(_)) => v6.send_to(data, to).await,
            (None, SocketAddr::V6(_)) => Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no IPv6 address on the joined networks",
            )),
            (_, SocketAddr::V4(_)) => self.v4.send_to(data, to).await,
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let Some(v6) = &self.v6 else {
            return self.v4.recv_from(buf).await;
        };
        // Both sockets are polled in one future so a datagram never waits on the other.
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(result) = self.v4.poll_recv_from(cx, buf) {
                return std::task::Poll::Ready(result);
            }
            v6.poll_recv_from(cx, buf)
        })
        .await
    }
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self).await
    }
}
