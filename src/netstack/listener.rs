//! [`TcpListener`]: accepts connections on a port of the user-space stacks.
//!
//! smoltcp has no listening socket that spawns others: a socket in LISTEN becomes the
//! connection. So a listener keeps a few sockets listening on each address it covers
//! (`handshake_slots`), and the driver moves each one that completes its handshake to the
//! listener's accept queue and opens another in its place (`Inner::review`). The accept
//! queue holds at most `backlog` connections (H1.6, H3.7): when it is full, a handshake
//! that completes on a slot is reset at once and counted (`listen_backlog_full`; the
//! client sees its connection reset, as with Linux's `tcp_abort_on_overflow`), and memory
//! stays bounded by (backlog + slots) x socket buffers.
//!
//! Binding to `0.0.0.0` or `::` covers every managed address of that family on every
//! network, including networks joined later; the same port can be bound on two different
//! managed addresses (H3.1). Port 0 picks a free ephemeral port (49152-65535). A backlog of
//! 0 means the configured default.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use super::core::{ListenerState, Shared};
use super::network::Role;
use super::tcp::TcpStream;

/// See the module doc.
pub struct TcpListener {
    shared: Arc<Shared>,
    id: u64,
    local: SocketAddr,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.local)
            .finish()
    }
}

/// Whether two bindings of the same port would take the same packets.
pub(crate) fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    a == b || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
}

impl TcpListener {
    pub(crate) fn bind(
        shared: &Arc<Shared>,
        addr: SocketAddr,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let local = {
            let mut inner = shared.lock();
            let ip = addr.ip();
            let port = inner.bind_port(addr, |inner, port| {
                inner
                    .listeners
                    .values()
                    .any(|l| l.port == port && overlaps(l.ip, ip))
            })?;
            let backlog = match backlog {
                0 => shared.config.default_backlog,
                n => n.min(4096),
            };
            let id = inner.next_id();
            inner.listeners.insert(
                id,
                ListenerState {
                    ip,
                    port,
                    backlog,
                    ready: Default::default(),
                    waker: None,
                    starved: false,
                },
            );
            // Open the handshake slots now, so a SYN right after bind finds them.
            let nwids: Vec<u64> = inner.stacks.keys().copied().collect();
            for nwid in nwids {
                inner.review(nwid, None, &shared.config);
            }
            (SocketAddr::new(ip, port), id)
        };
        shared.kick();
        Ok(TcpListener {
            shared: shared.clone(),
            id: local.1,
            local: local.0,
        })
    }

    /// The address and port bound (the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next connection and its remote endpoint (H3.2).
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let accepted = {
            let mut inner = self.shared.lock();
            if inner.shut_down {
                return Poll::Ready(Err(io::Error::other("the node is stopping")));
            }
            loop {
                let Some(listener) = inner.listeners.get_mut(&self.id) else {
                    return Poll::Ready(Err(io::Error::other("listener removed")));
                };
                let Some((at, local, remote)) = listener.ready.pop_front() else {
                    listener.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                };
                let starved = listener.starved;
                // A connection from a network left since is gone; look at the next one.
                if let Some(stack) = inner.stack_of(&at) {
                    if starved {
                        // Room in the backlog again: reopen handshake slots.
                        stack.review_wanted = true;
                    }
                    break (at, local, remote, starved);
                }
            }
        };
        let (at, local, remote, starved) = accepted;
        if starved {
            self.shared.kick();
        }
        Poll::Ready(Ok((
            TcpStream::adopt(self.shared.clone(), at, local, remote),
            remote,
        )))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        {
            let mut inner = self.shared.lock();
            let Some(listener) = inner.listeners.remove(&self.id) else {
                return;
            };
            // Connections nobody accepted are reset; the slots close at the next review.
            for (at, _, _) in listener.ready {
                if let Some(stack) = inner.stack_of(&at) {
                    if let Some(socket) = stack.tcp_mut(at.handle) {
                        socket.abort();
                    }
                    if let Some(meta) = stack.meta.get_mut(&at.handle) {
                        meta.role = Role::Closing {
                            deadline_ms: 0,
                            aborted: true,
                        };
                    }
                }
            }
            for stack in inner.stacks.values_mut() {
                stack.review_wanted = true;
                stack.needs_poll = true;
            }
        }
        self.shared.kick();
    }
}
