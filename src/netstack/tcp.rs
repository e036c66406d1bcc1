//! [`TcpStream`]: a connection of the user-space stack with tokio's `AsyncRead` and
//! `AsyncWrite`, its owned halves, and the connect procedure.
//!
//! Semantics (hardening H1.x, H3.x; `docs/userspace.md` has the table):
//! - Dropping the stream (both halves) closes it: queued data is sent, then one FIN; the
//!   socket finishes its close in the background for at most the linger time, then is
//!   aborted. Dropping it while the connect is in flight aborts at once (H1.1, H3.3).
//!   Received data nobody can read any more (unread at the drop, or arriving after it)
//!   resets the connection at once, as Linux does, so a sender never waits out the linger
//!   time on a window that will not open (H1.3, H1.5; counted in `unread_data_resets`).
//! - `shutdown()` (AsyncWrite) sends FIN after queued data; reading keeps working until the
//!   peer's FIN (half-close, H1.4, H3.7). Dropping the write half does the same.
//! - Reads return EOF after the peer's FIN, `ConnectionReset` after a reset; writes fail
//!   with `BrokenPipe` after our shutdown, `ConnectionReset` after a reset, and a writer
//!   waiting for window wakes on either (H1.5). Leaving the network fails both with
//!   `ConnectionAborted`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::core::{Shared, SocketRef, new_tcp_socket};
use super::network::{NetworkStack, Role};
use crate::wire::NetworkId;

/// The socket behind a stream; closing happens when the last half drops it.
struct StreamCore {
    shared: Arc<Shared>,
    at: SocketRef,
    local: SocketAddr,
    remote: SocketAddr,
}

impl Drop for StreamCore {
    fn drop(&mut self) {
        {
            let mut inner = self.shared.lock();
            let Some(stack) = inner.stack_of(&self.at) else {
                return;
            };
            let handle = self.at.handle;
            let Some(socket) = stack.tcp_mut(handle) else {
                return;
            };
            // A handshake in flight is cut short; an open connection closes in order,
            // unless data we never read is waiting: then the peer is told at once that
            // nobody reads (a reset, as Linux does), not after the linger time.
            let unread = socket.recv_queue() > 0;
            let aborted = unread
                || matches!(
                    socket.state(),
                    tcp::State::SynSent | tcp::State::SynReceived | tcp::State::Listen
                );
            if aborted {
                socket.abort();
            } else {
                socket.close();
            }
            if let Some(meta) = stack.meta.get_mut(&handle) {
                meta.role = Role::Closing {
                    deadline_ms: 0,
                    aborted,
                };
            }
            stack.needs_poll = true;
            stack.review_wanted = true;
            if unread {
                inner.counters.unread_data_resets += 1;
            }
        }
        self.shared.kick();
    }
}

/// Runs `f` on the stream's socket and its stack, or fails with `ConnectionAborted` when
/// the network (or the whole stack) is gone. Kicks the driver when `f` asks for a poll.
fn with_socket<R>(
    core: &StreamCore,
    f: impl FnOnce(&mut NetworkStack) -> (R, bool),
) -> io::Result<R> {
    let (result, kick) = {
        let mut inner = core.shared.lock();
        let stack = inner.stack_of(&core.at).ok_or_else(network_gone)?;
        if stack.tcp(core.at.handle).is_none() {
            return Err(network_gone());
        }
        let (result, kick) = f(stack);
        if kick {
            stack.needs_poll = true;
        }
        (result, kick)
    };
    if kick {
        core.shared.kick();
    }
    Ok(result)
}

fn network_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the network of this connection was left or the node stopped",
    )
}

/// Why a socket that can no longer carry data ended.
fn ended(stack: &mut NetworkStack, at: &SocketRef) -> io::Error {
    let state = stack.tcp(at.handle).map(|s| s.state());
    let Some(meta) = stack.meta.get_mut(&at.handle) else {
        return network_gone();
    };
    if let Some(state) = state {
        meta.observe_state(state);
    }
    if meta.reset {
        io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
    } else {
        io::Error::new(io::ErrorKind::BrokenPipe, "the sending side is shut down")
    }
}

fn poll_read(
    core: &StreamCore,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let handle = core.at.handle;
    let outcome = with_socket(core, |stack| {
        let Some(socket) = stack.tcp_mut(handle) else {
            return (Poll::Ready(Err(network_gone())), false);
        };
        if socket.can_recv() {
            return match socket.recv_slice(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    // The window opened: let the driver tell the peer.
                    (Poll::Ready(Ok(())), true)
                }
                Err(_) => (Poll::Ready(Ok(())), false),
            };
        }
        if !socket.may_recv()
            && !matches!(
                socket.state(),
                tcp::State::SynSent | tcp::State::SynReceived
            )
        {
            let state = socket.state();
            let Some(meta) = stack.meta.get_mut(&handle) else {
                return (Poll::Ready(Err(network_gone())), false);
            };
            meta.observe_state(state);
            return if meta.reset && !meta.peer_closed {
                (
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "connection reset by peer",
                    ))),
                    false,
                )
            } else {
                // EOF: the peer finished sending.
                (Poll::Ready(Ok(())), false)
            };
        }
        socket.register_recv_waker(cx.waker());
        (Poll::Pending, false)
    });
    match outcome {
        Ok(poll) => poll,
        Err(err) => Poll::Ready(Err(err)),
    }
}

fn poll_write(core: &StreamCore, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
    if data.is_empty() {
        return Poll::Ready(Ok(0));
    }
    let at = core.at;
    let outcome = with_socket(core, |stack| {
        let Some(socket) = stack.tcp_mut(at.handle) else {
            return (Poll::Ready(Err(network_gone())), false);
        };
        if socket.can_send() {
            return match socket.send_slice(data) {
                Ok(n) => (Poll::Ready(Ok(n)), true),
                Err(_) => (Poll::Ready(Err(ended(stack, &at))), false),
            };
        }
        if !socket.may_send() {
            return (Poll::Ready(Err(ended(stack, &at))), false);
        }
        // The send buffer is full (the peer's window is closed or data is in flight);
        // smoltcp wakes us when it drains or when the connection ends (H1.5).
        socket.register_send_waker(cx.waker());
        (Poll::Pending, false)
    });
    match outcome {
        Ok(poll) => poll,
        Err(err) => Poll::Ready(Err(err)),
    }
}

fn shutdown_write(core: &StreamCore) -> io::Result<()> {
    with_socket(core, |stack| {
        if let Some(socket) = stack.tcp_mut(core.at.handle) {
            socket.close();
        }
        ((), true)
    })
}

/// A TCP connection through a network's user-space stack (see the module doc).
pub struct TcpStream {
    core: Arc<StreamCore>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("network", &NetworkId(self.core.at.nwid))
            .field("local", &self.core.local)
            .field("remote", &self.core.remote)
            .finish()
    }
}

impl TcpStream {
    pub(crate) fn adopt(
        shared: Arc<Shared>,
        at: SocketRef,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> TcpStream {
        TcpStream {
            core: Arc::new(StreamCore {
                shared,
                at,
                local,
                remote,
            }),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.core.local
    }

    /// The remote endpoint (H3.2).
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.remote
    }

    /// The network this connection runs on.
    pub fn network(&self) -> NetworkId {
        NetworkId(self.core.at.nwid)
    }

    /// Splits into halves that can move to different tasks. The connection closes when
    /// both are dropped; dropping the write half alone sends FIN.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                core: self.core.clone(),
            },
            OwnedWriteHalf { core: self.core },
        )
    }
}

/// The stream and its halves read and write the same shared socket.
macro_rules! impl_async_read {
    ($type:ty) => {
        impl AsyncRead for $type {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read(&self.core, cx, buf)
            }
        }
    };
}

macro_rules! impl_async_write {
    ($type:ty) => {
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self.core, cx, data)
            }

            /// Data handed to the stack is sent as the window allows; there is no buffer
            /// of ours in front of it to flush.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(shutdown_write(&self.core))
            }
        }
    };
}

impl_async_read!(TcpStream);
impl_async_write!(TcpStream);
impl_async_read!(OwnedReadHalf);
impl_async_write!(OwnedWriteHalf);

/// The reading half of [`TcpStream::into_split`].
pub struct OwnedReadHalf {
    core: Arc<StreamCore>,
}

/// The writing half of [`TcpStream::into_split`]; dropping it sends FIN.
pub struct OwnedWriteHalf {
    core: Arc<StreamCore>,
}

impl OwnedReadHalf {
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.remote
    }
}

impl OwnedWriteHalf {
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.remote
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        let _ = shutdown_write(&self.core);
    }
}

/// Opens a connection to `remote` on the network that routes it, from `local_ip` or (when
/// `None`) the managed address smoltcp picks for the destination (H3.1). Resolves when the
/// handshake completes; dropping the future aborts the attempt (H3.3).
pub(crate) async fn connect(
    shared: &Arc<Shared>,
    remote: SocketAddr,
    local_ip: Option<IpAddr>,
) -> io::Result<TcpStream> {
    let at = {
        let mut inner = shared.lock();
        if inner.shut_down {
            return Err(network_gone());
        }
        let port = inner
            .ephemeral_port()
            .ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free ephemeral port"))?;
        let max = shared.config.max_tcp_sockets;
        let Some(stack) = inner.stack_for(remote.ip()) else {
            inner.counters.tcp_connect_failures += 1;
            return Err(io::Error::new(
                io::ErrorKind::NetworkUnreachable,
                format!("no joined network routes to {}", remote.ip()),
            ));
        };
        if stack.meta.len() >= max {
            inner.counters.tcp_socket_limit += 1;
            return Err(io::Error::other(
                "the network's TCP socket limit is reached",
            ));
        }
        let mut socket = new_tcp_socket(&shared.config);
        let local = smoltcp::wire::IpListenEndpoint {
            addr: local_ip
                .filter(|ip| !ip.is_unspecified())
                .map(IpAddress::from),
            port,
        };
        if let Err(err) = socket.connect(
            stack.iface.context(),
            (IpAddress::from(remote.ip()), remote.port()),
            local,
        ) {
            inner.counters.tcp_connect_failures += 1;
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("cannot connect to {remote}: {err} (no usable local address)"),
            ));
        }
        let handle = stack.add_socket(socket, Role::Stream);
        let at = SocketRef {
            nwid: stack.nwid.0,
            epoch: stack.epoch,
            handle,
        };
        inner.counters.tcp_connects += 1;
        at
    };
    shared.kick();
    // Owns the socket from here: an early return or a dropped future aborts it.
    let mut pending = StreamCore {
        shared: shared.clone(),
        at,
        local: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0),
        remote,
    };
    let local = std::future::poll_fn(|cx| {
        let result = with_socket(&pending, |stack| {
            let Some(socket) = stack.tcp_mut(at.handle) else {
                return (Poll::Ready(Err(network_gone())), false);
            };
            match socket.state() {
                tcp::State::SynSent | tcp::State::SynReceived => {
                    socket.register_send_waker(cx.waker());
                    (Poll::Pending, false)
                }
                tcp::State::Closed => (
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        format!("{remote} refused the connection"),
                    ))),
                    false,
                ),
                _ => {
                    let local = socket
                        .local_endpoint()
                        .map(|e| SocketAddr::new(e.addr.into(), e.port));
                    (Poll::Ready(local.ok_or_else(network_gone)), false)
                }
            }
        });
        match result {
            Ok(poll) => poll,
            Err(err) => Poll::Ready(Err(err)),
        }
    })
    .await;
    let local = match local {
        Ok(local) => local,
        Err(err) => {
            shared.lock().counters.tcp_connect_failures += 1;
            return Err(err);
        }
    };
    pending.local = local;
    Ok(TcpStream {
        core: Arc::new(pending),
    })
}
