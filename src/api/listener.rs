//! The API's TCP listener and connections, bounded: at most [`MAX_CONNECTIONS`] at once
//! (more are closed at accept and counted), each closed when idle for [`IDLE_LIMIT`], and all
//! cut when the server is stopped (a connection that does not finish its request within
//! the grace period must not hold up the daemon's shutdown).
//!
//! `axum::serve` spawns a task per connection that the server task cannot abort, so the
//! bound lives in the stream itself: [`GuardedStream`] fails its reads and writes once the
//! stop phase says "killed" or the idle timer fires, and hyper then ends the connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tracing::warn;

use super::counters::ApiCounters;

/// Connections served at once (the API is for local tools; a few suffice).
pub(crate) const MAX_CONNECTIONS: usize = 32;

/// A connection that reads and writes nothing for this long is closed.
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Back-off after an accept error that is not about one connection (out of descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Where the server is in its life; connections watch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// No new connections; requests in progress may finish.
    Draining,
    /// Every connection still open is cut.
    Killed,
}

/// What every connection of one server shares.
#[derive(Clone)]
pub(crate) struct Limits {
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) phase: watch::Receiver<Phase>,
    pub(crate) counters: Arc<ApiCounters>,
    pub(crate) idle_limit: Duration,
}

/// A TCP listener whose connections are [`GuardedStream`]s.
pub(crate) struct BoundedListener {
    listener: TcpListener,
    limits: Limits,
}

impl BoundedListener {
    pub(crate) fn new(listener: TcpListener, limits: Limits) -> BoundedListener {
        BoundedListener { listener, limits }
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => match Arc::clone(&self.limits.slots).try_acquire_owned() {
                    Ok(permit) => {
                        ApiCounters::bump(&self.limits.counters.connections_accepted);
                        // Small JSON answers: do not wait for more to coalesce.
                        let _ = stream.set_nodelay(true);
                        return (GuardedStream::new(stream, permit, &self.limits), peer);
                    }
                    Err(_) => {
                        ApiCounters::bump(&self.limits.counters.connections_refused_full);
                        drop(stream);
                    }
                },
                Err(err) => {
                    ApiCounters::bump(&self.limits.counters.accept_errors);
                    if !is_per_connection(&err) {
                        warn!(%err, "control API: accept failed; pausing");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Errors about one connection only (retry at once) as opposed to the listener's state.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A connection that fails once killed or idle; holds its connection slot until dropped.
pub(crate) struct GuardedStream {
    stream: TcpStream,
    killed: Pin<Box<dyn Future<Output = ()> + Send>>,
    idle: Pin<Box<Sleep>>,
    idle_limit: Duration,
    /// Set once the stream has failed for good (the `killed` future must not be polled
    /// after it completed).
    failed: Option<io::ErrorKind>,
    counters: Arc<ApiCounters>,
    _slot: OwnedSemaphorePermit,
}

impl GuardedStream {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, limits: &Limits) -> GuardedStream {
        let mut phase = limits.phase.clone();
        let killed = Box::pin(async move {
            // A dropped sender (the server is gone) counts as killed too.
            let _ = phase.wait_for(|p| *p == Phase::Killed).await;
        });
        GuardedStream {
            stream,
            killed,
            idle: Box::pin(tokio::time::sleep(limits.idle_limit)),
            idle_limit: limits.idle_limit,
            failed: None,
            counters: Arc::clone(&limits.counters),
            _slot: slot,
        }
    }

    /// The error to fail with, if the server was stopped or the connection is idle; polls
    /// both so that either wakes the connection's task.
    fn check(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.failed.is_none() {
            if self.killed.as_mut().poll(cx).is_ready() {
                ApiCounters::bump(&self.counters.connections_killed);
                self.failed = Some(io::ErrorKind::ConnectionAborted);
            } else if self.idle.as_mut().poll(cx).is_ready() {
                ApiCounters::bump(&self.counters.connections_idle_closed);
                self.failed = Some(io::ErrorKind::TimedOut);
            }
        }
        self.failed.map(io::Error::from)
    }

    fn made_progress(&mut self) {
        let deadline = Instant::now() + self.idle_limit;
        self.idle.as_mut().reset(deadline);
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(err) = self.check(cx) {
            return Poll::Ready(Err(err));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.made_progress();
        }
        polled
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(err) = self.check(cx) {
            return Poll::Ready(Err(err));
        }
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.made_progress();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;
    use std::net::Ipv4Addr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DEADLINE: Duration = Duration::from_secs(10);

    async fn listener(
        idle_limit: Duration,
        slots: usize,
    ) -> (BoundedListener, Limits, watch::Sender<Phase>) {
        let (phase_tx, phase) = watch::channel(Phase::Running);
        let limits = Limits {
            slots: Arc::new(Semaphore::new(slots)),
            phase,
            counters: Arc::new(ApiCounters::default()),
            idle_limit,
        };
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        (BoundedListener::new(tcp, limits.clone()), limits, phase_tx)
    }

    /// Reads from `stream` until it fails or ends; the error kind, if any.
    async fn read_until_failed(stream: &mut GuardedStream) -> Option<io::ErrorKind> {
        let mut buf = [0u8; 64];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return None,
                Ok(_) => continue,
                Err(err) => return Some(err.kind()),
            }
        }
    }

    #[tokio::test]
    async fn idle_connection_fails_and_is_counted() {
        let (mut bounded, limits, _phase) = listener(Duration::from_millis(100), 4).await;
        let addr = bounded.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut served, _) = bounded.accept().await;
        client.write_all(b"x").await.unwrap();
        let outcome = tokio::time::timeout(DEADLINE, read_until_failed(&mut served)).await;
        assert_eq!(outcome.unwrap(), Some(io::ErrorKind::TimedOut));
        assert_eq!(limits.counters.snapshot().connections_idle_closed, 1);
    }

    #[tokio::test]
    async fn killed_phase_cuts_open_connections() {
        let (mut bounded, limits, phase) = listener(IDLE_LIMIT, 4).await;
        let addr = bounded.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (mut served, _) = bounded.accept().await;
        let reader = tokio::spawn(async move { read_until_failed(&mut served).await });
        phase.send_replace(Phase::Killed);
        let outcome = tokio::time::timeout(DEADLINE, reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, Some(io::ErrorKind::ConnectionAborted));
        assert_eq!(limits.counters.snapshot().connections_killed, 1);
    }

    #[tokio::test]
    async fn connections_over_capacity_are_closed_and_counted() {
        let (mut bounded, limits, _phase) = listener(IDLE_LIMIT, 1).await;
        let addr = bounded.local_addr().unwrap();
        let _first = TcpStream::connect(addr).await.unwrap();
        let (held, _) = bounded.accept().await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        // The second is refused while the first holds the only slot; once the first is
        // dropped, a third gets the slot.
        let accept = tokio::spawn(async move {
            let accepted = bounded.accept().await;
            (bounded, accepted)
        });
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(DEADLINE, second.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)));
        assert_eq!(limits.counters.snapshot().connections_refused_full, 1);
        drop(held);
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(b"y").await.unwrap();
        let (_bounded, (mut served, _)) = tokio::time::timeout(DEADLINE, accept)
            .await
            .unwrap()
            .unwrap();
        let mut got = [0u8; 1];
        tokio::time::timeout(DEADLINE, served.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"y");
        assert_eq!(limits.counters.snapshot().connections_accepted, 2);
    }
}
