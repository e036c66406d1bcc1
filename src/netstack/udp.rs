//! [`UdpSocket`]: datagrams through the user-space stacks.
//!
//! A binding has one smoltcp socket per managed address it covers (all of a family's for
//! `0.0.0.0` / `::`) on each network; networks joined later, and addresses added later, get
//! theirs when the stack is configured. No socket is bound to "any address": smoltcp would
//! hand it datagrams of the other family and of more specific bindings of the same port
//! (H3.1). `send_to` goes out on the network that routes the destination, from the covered
//! address sharing the longest prefix with it; `recv_from` takes the next datagram from
//! any of them. Datagrams larger than the caller's buffer are truncated, as with the OS.
//! Closing is idempotent, safe from several tasks, and wakes the tasks waiting on the
//! socket (H3.4). One waiting receiver and one waiting sender are woken at a time (the
//! last to wait), as smoltcp's sockets do.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use smoltcp::iface::SocketHandle;
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
    /// The last task waiting to receive / to send, woken by `close`.
    waiting: Mutex<[Option<Waker>; 2]>,
}

const RECEIVER: usize = 0;
const SENDER: usize = 1;

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local)
            .finish()
    }
}

/// Gives `stack` a socket for every managed address a binding covers, and removes those of
/// addresses the network no longer has.
pub(crate) fn attach_bindings(inner: &mut Inner, nwid: u64, config: &NetstackConfig) {
    let bindings: Vec<(u64, IpAddr, u16)> = inner
        .udp
        .iter()
        .map(|(id, b)| (*id, b.ip, b.port))
        .collect();
    let Some(stack) = inner.stacks.get_mut(&nwid) else {
        return;
    };
    let addresses: Vec<IpAddr> = stack.addresses().collect();
    let stale: Vec<((u64, IpAddr), SocketHandle)> = stack
        .udp_handles
        .iter()
        .filter(|((_, addr), _)| !addresses.contains(addr))
        .map(|(key, handle)| (*key, *handle))
        .collect();
    for (key, handle) in stale {
        stack.udp_handles.remove(&key);
        stack.remove_socket(handle);
    }
    for (id, ip, port) in bindings {
        attach_one(stack, id, ip, port, config);
    }
}

fn attach_one(stack: &mut NetworkStack, id: u64, ip: IpAddr, port: u16, config: &NetstackConfig) {
    let covered: Vec<IpAddr> = stack.addresses().filter(|a| overlaps(ip, *a)).collect();
    for addr in covered {
        if stack.udp_handles.contains_key(&(id, addr)) {
            continue;
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
            addr: Some(IpAddress::from(addr)),
            port,
        };
        if socket.bind(endpoint).is_ok() {
            let handle = stack.add_socket(socket, Role::Udp { binding: id });
            stack.udp_handles.insert((id, addr), handle);
        }
    }
}

/// The sockets of binding `id` on `stack`, with their addresses.
fn sockets_of(stack: &NetworkStack, id: u64) -> Vec<(IpAddr, SocketHandle)> {
    let first = (id, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let last = (id, IpAddr::V6(Ipv6Addr::from(u128::MAX)));
    stack
        .udp_handles
        .range(first..=last)
        .map(|((_, addr), handle)| (*addr, *handle))
        .collect()
}

/// How many leading bits `a` and `b` share (0 across families).
fn common_prefix(a: IpAddr, b: IpAddr) -> u32 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros(),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros(),
        _ => 0,
    }
}

/// The socket of binding `id` to send to `to` from: same family, longest common prefix
/// (the last rule of RFC 6724 source selection, which is what tells an RFC 4193 from a
/// 6PLANE address on one network).
fn source_for(stack: &NetworkStack, id: u64, to: IpAddr) -> Option<SocketHandle> {
    sockets_of(stack, id)
        .into_iter()
        .filter(|(addr, _)| addr.is_ipv4() == to.is_ipv4())
        .max_by_key(|(addr, _)| common_prefix(*addr, to))
        .map(|(_, handle)| handle)
}

impl UdpSocket {
    pub(crate) fn bind(shared: &Arc<Shared>, addr: SocketAddr) -> io::Result<UdpSocket> {
        let (id, local) = {
            let mut inner = shared.lock();
            if inner.udp.len() >= shared.config.max_udp_sockets {
                return Err(io::Error::other("the UDP socket limit is reached"));
            }
            let ip = addr.ip();
            let port = inner.bind_port(addr, |inner, port| {
                inner
                    .udp
                    .values()
                    .any(|b| b.port == port && overlaps(b.ip, ip))
            })?;
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
            waiting: Mutex::new([None, None]),
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
            let Some(handle) = source_for(stack, self.id, to.ip()) else {
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
                    self.wait(SENDER, cx.waker());
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
        let mut received = None;
        'stacks: for stack in inner.stacks.values_mut() {
            for (_, handle) in sockets_of(stack, self.id) {
                let Some(socket) = stack.udp_mut(handle) else {
                    continue;
                };
                if let Ok((payload, meta)) = socket.recv() {
                    let from = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
                    let n = payload.len().min(buf.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(..n), payload.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    received = Some((n, from));
                    break 'stacks;
                }
                socket.register_recv_waker(cx.waker());
            }
        }
        if received.is_none() {
            self.wait(RECEIVER, cx.waker());
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
                for (addr, handle) in sockets_of(stack, self.id) {
                    stack.udp_handles.remove(&(self.id, addr));
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
        }
        // Tasks waiting on the socket see it closed rather than wait forever.
        let waiting = std::mem::take(&mut *self.waiting_slots());
        for waker in waiting.into_iter().flatten() {
            waker.wake();
        }
        if draining {
            self.shared.kick();
        }
    }
}

impl UdpSocket {
    fn waiting_slots(&self) -> std::sync::MutexGuard<'_, [Option<Waker>; 2]> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers the task waiting as `RECEIVER` or `SENDER`, for `close` to wake.
    fn wait(&self, role: usize, waker: &Waker) {
        if let Some(slot) = self.waiting_slots().get_mut(role)
            && !slot.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            *slot = Some(waker.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_selection_prefers_the_longest_common_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let six_plane = ip("fc9a:1b2c:3d00:0000:0001::1");
        let rfc4193 = ip("fd12:3456:789a:bcde:f099:930c:1234:5678");
        let to = ip("fc9a:1b2c:3d00:0000:0002::1");
        assert!(common_prefix(six_plane, to) > common_prefix(rfc4193, to));
        assert_eq!(common_prefix(ip("10.0.0.1"), ip("10.0.0.1")), 32);
        assert_eq!(common_prefix(ip("10.0.0.1"), ip("fd00::1")), 0);
    }
}
