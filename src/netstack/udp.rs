//! [`UdpSocket`]: datagrams through the user-space stacks.
//!
//! A binding has one smoltcp socket on each network whose addresses it covers (all of them
//! for `0.0.0.0` / `::`, family-matched; networks joined later get theirs when their stack
//! is created). `send_to` goes out on the network that routes the destination; `recv_from`
//! takes the next datagram from any of them. Datagrams larger than the caller's buffer are
//! truncated, as with the OS. Closing is idempotent and safe from several tasks (H3.4).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::config::NetstackConfig;
use super::core::{Inner, Shared, UdpBinding};
use super::listener::overlaps;
use super::network::{NetworkStack, Role};

/// See the module doc.
pub struct UdpSocket {
    shared: Arc<Shared>,
    id: u64,
    local: SocketAddr,
    closed: AtomicBool,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local)
            .finish()
    }
}

/// Gives `stack` a socket for every binding that covers one of its addresses.
pub(crate) fn attach_bindings(inner: &mut Inner, nwid: u64, config: &NetstackConfig) {
    let bindings: Vec<(u64, IpAddr, u16)> = inner
        .udp
        .iter()
        .map(|(id, b)| (*id, b.ip, b.port))
        .collect();
    let Some(stack) = inner.stacks.get_mut(&nwid) else {
        return;
    };
    for (id, ip, port) in bindings {
        attach_one(stack, id, ip, port, config);
    }
}

fn attach_one(stack: &mut NetworkStack, id: u64, ip: IpAddr, port: u16, config: &NetstackConfig) {
    let covers = |a: IpAddr| overlaps(ip, a);
    if stack.udp_handles.contains_key(&id) || !stack.addresses().any(covers) {
        return;
    }
    let rx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; config.udp_packets],
        vec![0; config.udp_buffer],
    );
    let tx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; config.udp_packets],
        vec![0; config.udp_buffer],
    );
    let mut socket = udp::Socket::new(rx, tx);
    let endpoint = IpListenEndpoint {
        addr: (!ip.is_unspecified()).then(|| IpAddress::from(ip)),
        port,
    };
    if socket.bind(endpoint).is_ok() {
        let handle = stack.add_socket(socket, Role::Udp { binding: id });
        stack.udp_handles.insert(id, handle);
    }
}

impl UdpSocket {
    pub(crate) fn bind(shared: &Arc<Shared>, addr: SocketAddr) -> io::Result<UdpSocket> {
        let (id, local) = {
            let mut inner = shared.lock();
            if inner.shut_down {
                return Err(io::Error::other("the node is stopping"));
            }
            if inner.udp.len() >= shared.config.max_udp_sockets {
                return Err(io::Error::other("the UDP socket limit is reached"));
            }
            let ip = addr.ip();
            if !ip.is_unspecified()
                && !inner
                    .stacks
                    .values()
                    .any(|s| s.addresses().any(|a| a == ip))
            {
                return Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("{ip} is not a managed address of a joined network"),
                ));
            }
            let port = match addr.port() {
                0 => inner.ephemeral_port().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::AddrInUse, "no free ephemeral port")
                })?,
                port => port,
            };
            if inner
                .udp
                .values()
                .any(|b| b.port == port && overlaps(b.ip, ip))
            {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{ip}:{port} is already bound"),
                ));
            }
            let id = inner.next_id();
            inner.udp.insert(id, UdpBinding { ip, port });
            for stack in inner.stacks.values_mut() {
                attach_one(stack, id, ip, port, &shared.config);
            }
            (id, SocketAddr::new(ip, port))
        };
        Ok(UdpSocket {
            shared: shared.clone(),
            id,
            local,
            closed: AtomicBool::new(false),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one datagram on the network that routes `to`. Waits while the socket's send
    /// buffer is full.
    pub async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_send_to(cx, data, to)).await
    }

    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
        to: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        if data.len() > self.shared.config.udp_buffer {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "datagram larger than the socket buffer",
            )));
        }
        let result = {
            let mut inner = self.shared.lock();
            if self.closed.load(Ordering::Acquire) || !inner.udp.contains_key(&self.id) {
                return Poll::Ready(Err(closed()));
            }
            let Some(stack) = inner.stack_for(to.ip()) else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NetworkUnreachable,
                    format!("no joined network routes to {}", to.ip()),
                )));
            };
            let Some(handle) = stack.udp_handles.get(&self.id).copied() else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "the socket is not bound on the network that routes the destination",
                )));
            };
            let Some(socket) = stack.udp_mut(handle) else {
                return Poll::Ready(Err(closed()));
            };
            let endpoint = IpEndpoint::new(IpAddress::from(to.ip()), to.port());
            match socket.send_slice(data, endpoint) {
                Ok(()) => {
                    stack.needs_poll = true;
                    inner.counters.udp_datagrams_sent += 1;
                    Poll::Ready(Ok(data.len()))
                }
                Err(udp::SendError::BufferFull) => {
                    socket.register_send_waker(cx.waker());
                    inner.counters.udp_send_full += 1;
                    Poll::Pending
                }
                Err(udp::SendError::Unaddressable) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("cannot send to {to}: no usable source address"),
                ))),
            }
        };
        if result.is_ready() {
            self.shared.kick();
        }
        result
    }

    /// The next datagram from any network the socket is bound on, with its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut inner = self.shared.lock();
        if self.closed.load(Ordering::Acquire) || !inner.udp.contains_key(&self.id) {
            return Poll::Ready(Err(closed()));
        }
        let want_v4 = self.local.ip().is_ipv4();
        let mut received = None;
        for stack in inner.stacks.values_mut() {
            let Some(handle) = stack.udp_handles.get(&self.id).copied() else {
                continue;
            };
            let Some(socket) = stack.udp_mut(handle) else {
                continue;
            };
            while let Ok((payload, meta)) = socket.recv() {
                let from = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
                // A family-specific unspecified binding takes only its own family.
                if from.is_ipv4() != want_v4 {
                    continue;
                }
                let n = payload.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), payload.get(..n)) {
                    dst.copy_from_slice(src);
                }
                received = Some((n, from));
                break;
            }
            if received.is_some() {
                break;
            }
            socket.register_recv_waker(cx.waker());
        }
        match received {
            Some(datagram) => {
                inner.counters.udp_datagrams_received += 1;
                Poll::Ready(Ok(datagram))
            }
            None => Poll::Pending,
        }
    }

    /// Releases the port on every network; datagrams already queued are still sent, as
    /// with the OS. Idempotent; safe from several tasks at once.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut draining = false;
        {
            let mut inner = self.shared.lock();
            inner.udp.remove(&self.id);
            for stack in inner.stacks.values_mut() {
                let Some(handle) = stack.udp_handles.remove(&self.id) else {
                    continue;
                };
                let queued = stack.udp_mut(handle).is_some_and(|s| s.send_queue() > 0);
                match stack.meta.get_mut(&handle) {
                    Some(meta) if queued => {
                        meta.role = Role::UdpDraining;
                        stack.review_wanted = true;
                        stack.needs_poll = true;
                        draining = true;
                    }
                    _ => stack.remove_socket(handle),
                }
            }
        }
        if draining {
            self.shared.kick();
        }
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the UDP socket is closed")
}
