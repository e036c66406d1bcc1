//! The accept loop every front end runs: one task per connection, at most
//! `max_connections` of them live, the rest closed at once and counted; dropping the loop's
//! future aborts every connection it started.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Acceptor, FrontCounters, FrontLimits, bump};

/// How long to wait before accepting again when the process is out of descriptors or
/// memory: retrying at once would spin while every accept fails the same way.
const RESOURCE_EXHAUSTED_BACKOFF: Duration = Duration::from_millis(100);

/// Linux errno values of the accept errors that mean "out of resources, try later".
const ENOMEM: i32 = 12;
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
const ENOBUFS: i32 = 105;

impl Acceptor for TcpListener {
    type Stream = TcpStream;

    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// Accepts connections until the acceptor fails fatally, running `handle` for each on its
/// own task. Returns only that fatal error.
pub(crate) async fn serve_connections<A, H, F>(
    mut acceptor: A,
    limits: &FrontLimits,
    counters: &FrontCounters,
    handle: H,
) -> io::Result<()>
where
    A: Acceptor,
    H: Fn(A::Stream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    // The permit lives inside the task, so a slot frees the moment a connection's work
    // ends; the JoinSet only exists to abort the tasks when this future is dropped.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    loop {
        // Reaping before each accept keeps the set at most `max_connections + 1` long.
        while let Some(finished) = tasks.try_join_next() {
            if let Err(error) = finished
                && error.is_panic()
            {
                tracing::error!(%error, "front-end connection task panicked");
            }
        }
        let (stream, peer) = match acceptor.accept().await {
            Ok(accepted) => accepted,
            Err(error) => match classify_accept_error(&error) {
                AcceptErrorKind::Skip => continue,
                AcceptErrorKind::Backoff => {
                    tracing::warn!(%error, "front end out of resources; backing off");
                    tokio::time::sleep(RESOURCE_EXHAUSTED_BACKOFF).await;
                    continue;
                }
                AcceptErrorKind::Fatal => return Err(error),
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            bump(&counters.refused_over_limit);
            drop(stream);
            continue;
        };
        bump(&counters.accepted);
        let work = handle(stream, peer);
        tasks.spawn(async move {
            work.await;
            drop(permit);
        });
    }
}

enum AcceptErrorKind {
    /// The one connection failed; the listener is fine.
    Skip,
    /// The process is short of descriptors or memory.
    Backoff,
    /// The listener itself is broken.
    Fatal,
}

fn classify_accept_error(error: &io::Error) -> AcceptErrorKind {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => AcceptErrorKind::Skip,
        _ => match error.raw_os_error() {
            Some(ENOMEM | ENFILE | EMFILE | ENOBUFS) => AcceptErrorKind::Backoff,
            _ => AcceptErrorKind::Fatal,
        },
    }
}
