//! The cloneable handle other tasks use to reach a running service: commands in over a
//! bounded channel, counters out, and an orderly, time-bounded shutdown (H2.7, H6.9).
//!
//! Nothing here ever surfaces a "channel closed" error: once the service stops, every command
//! returns [`ServiceError::Stopped`], an expected state rather than a fault, and the event
//! receiver simply ends (`recv()` returns `None`).

use std::fmt;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::attachment::Attachment;
use super::events::{Subscription, SubscriptionSource};
use super::stats::{ServiceStats, StatsCells};
use crate::node::{Node, SendError};
use crate::wire::Address;

/// A request for the driver task, applied to the node between packets.
pub(crate) enum Command {
    Echo {
        to: Address,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    UserMessage {
        to: Address,
        type_id: u64,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), SendError>>,
    },
    Orbit {
        moon_id: u64,
        seed: Address,
    },
    /// A read-only look at the node; the closure catches its own panics.
    Inspect(Box<dyn FnOnce(&Node) + Send>),
    /// A change to the node (join, frames, controller administration) with the driver's
    /// time in ms; the closure catches its own panics.
    InspectMut(NodeChange),
    /// A read-only look at the node and the attachment (if any); catches its own panics.
    InspectAttached(AttachedLook),
}

/// A job run with the node and the driver's attachment ([`ServiceHandle::inspect_attached`]).
pub(crate) type AttachedLook = Box<dyn FnOnce(&Node, Option<&dyn Attachment>) + Send>;

/// A job run with the node and the driver's time in ms ([`ServiceHandle::with_node_mut`]).
pub(crate) type NodeChange = Box<dyn FnOnce(&mut Node, u64) + Send>;

/// Why a command did not complete.
#[derive(Debug)]
pub enum ServiceError {
    /// The service is stopping or has stopped (an orderly state, not a fault).
    Stopped,
    /// The node refused the request.
    Node(SendError),
    /// The inspection callback panicked; the driver isolated it and kept running.
    CallbackPanicked,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Stopped => f.write_str("the service has stopped"),
            ServiceError::Node(err) => write!(f, "the node refused: {err:?}"),
            ServiceError::CallbackPanicked => f.write_str("the inspection callback panicked"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// How a shutdown ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// The driver finished its loop and released the socket.
    Stopped,
    /// Another caller already shut the service down (or is doing so right now).
    AlreadyStopping,
    /// The driver task had panicked earlier; the message is reported here.
    Panicked(String),
    /// The driver did not stop within the bound and was aborted.
    TimedOut,
}

impl ShutdownOutcome {
    /// True for the orderly outcomes.
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            ShutdownOutcome::Stopped | ShutdownOutcome::AlreadyStopping
        )
    }
}

/// State shared by all clones of a handle.
pub(crate) struct Shared {
    pub(crate) address: Address,
    pub(crate) local_addr: SocketAddr,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: Mutex<Option<JoinHandle<()>>>,
    pub(crate) stats: Arc<StatsCells>,
    pub(crate) shutdown_timeout: Duration,
    /// Hands out event subscriptions without keeping the driver's channel open.
    pub(crate) subscriptions: SubscriptionSource,
}

/// A handle to a running service. Clones share the service; when the last clone is dropped
/// the service stops on its own.
#[derive(Clone)]
pub struct ServiceHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHandle")
            .field("address", &self.shared.address)
            .field("local_addr", &self.shared.local_addr)
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl ServiceHandle {
    /// The node's ZeroTier address.
    pub fn address(&self) -> Address {
        self.shared.address
    }

    /// The UDP socket's bound address (real port; see `ztrs_platform::udp`).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The driver counters now.
    pub fn stats(&self) -> ServiceStats {
        self.shared.stats.snapshot()
    }

    /// True once the driver loop has ended.
    pub fn is_stopped(&self) -> bool {
        self.commands.is_closed()
    }

    /// Follows the service's lifecycle events from now on (see [`Subscription`]): a bounded,
    /// lossy queue per subscriber that never blocks the driver or other subscribers; it ends
    /// when the service stops.
    pub fn subscribe(&self) -> Subscription {
        self.shared.subscriptions.subscribe()
    }

    /// Sends an ECHO to `to` (the reply arrives as a node event).
    pub async fn echo(&self, to: Address, payload: Vec<u8>) -> Result<(), ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Command::Echo { to, payload, reply }).await?;
        flatten(answer.await)
    }

    /// Sends a USER_MESSAGE to `to`.
    pub async fn send_user_message(
        &self,
        to: Address,
        type_id: u64,
        data: Vec<u8>,
    ) -> Result<(), ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Command::UserMessage {
            to,
            type_id,
            data,
            reply,
        })
        .await?;
        flatten(answer.await)
    }

    /// Orbits the moon `moon_id` through its seed root.
    pub async fn orbit(&self, moon_id: u64, seed: Address) -> Result<(), ServiceError> {
        self.submit(Command::Orbit { moon_id, seed }).await
    }

    /// Leaves the moon `moon_id`; returns once the node has forgotten it, so a caller that
    /// then removes the stored moon cannot race the moon's arrival (which would store it
    /// again).
    pub async fn deorbit(&self, moon_id: u64) -> Result<(), ServiceError> {
        self.with_node_mut(move |node, _| node.deorbit(moon_id))
            .await
    }

    /// Runs `look` on the driver task with the node and returns its result. It runs between
    /// packets, so it must be quick; a panic inside it is caught and reported as
    /// [`ServiceError::CallbackPanicked`] without harming the driver (H6.6).
    pub async fn inspect<R, F>(&self, look: F) -> Result<R, ServiceError>
    where
        R: Send + 'static,
        F: FnOnce(&Node) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = move |node: &Node| {
            let outcome = catch_unwind(AssertUnwindSafe(|| look(node)));
            // The requester may have given up waiting; nothing to do then.
            let _ = reply.send(outcome.map_err(|_| ()));
        };
        self.submit(Command::Inspect(Box::new(job))).await?;
        self.callback_answer(answer).await
    }

    /// Like [`ServiceHandle::inspect`], with the driver's attachment too (interfaces, their
    /// counters), for status reports.
    pub async fn inspect_attached<R, F>(&self, look: F) -> Result<R, ServiceError>
    where
        R: Send + 'static,
        F: FnOnce(&Node, Option<&dyn Attachment>) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = move |node: &Node, attachment: Option<&dyn Attachment>| {
            let outcome = catch_unwind(AssertUnwindSafe(|| look(node, attachment)));
            // The requester may have given up waiting; nothing to do then.
            let _ = reply.send(outcome.map_err(|_| ()));
        };
        self.submit(Command::InspectAttached(Box::new(job))).await?;
        self.callback_answer(answer).await
    }

    /// Runs `change` on the driver task with the node and the driver's clock (ms, the `now`
    /// every node call takes), then lets the driver send what it queued. For operations the
    /// handle has no command of its own for (`join`, `handle_frame`, `controller_mut`). Quick
    /// and panic-isolated like [`ServiceHandle::inspect`].
    pub async fn with_node_mut<R, F>(&self, change: F) -> Result<R, ServiceError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Node, u64) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = move |node: &mut Node, now_ms: u64| {
            let outcome = catch_unwind(AssertUnwindSafe(|| change(node, now_ms)));
            // The requester may have given up waiting; nothing to do then.
            let _ = reply.send(outcome.map_err(|_| ()));
        };
        self.submit(Command::InspectMut(Box::new(job))).await?;
        self.callback_answer(answer).await
    }

    /// Stops the service: the driver leaves its loop at the next wake-up, and this waits for
    /// it at most the configured shutdown timeout before aborting it. Safe to call from any
    /// clone, any number of times.
    pub async fn shutdown(&self) -> ShutdownOutcome {
        self.shared.stop.send_replace(true);
        let task = match self.shared.task.lock() {
            Ok(mut slot) => slot.take(),
            // A panic while holding this lock cannot leave the Option inconsistent.
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(mut task) = task else {
            return ShutdownOutcome::AlreadyStopping;
        };
        match tokio::time::timeout(self.shared.shutdown_timeout, &mut task).await {
            Ok(Ok(())) => ShutdownOutcome::Stopped,
            Ok(Err(join_error)) => match join_error.try_into_panic() {
                Ok(payload) => ShutdownOutcome::Panicked(panic_message(payload.as_ref())),
                Err(_) => ShutdownOutcome::Stopped,
            },
            Err(_elapsed) => {
                task.abort();
                ShutdownOutcome::TimedOut
            }
        }
    }

    /// The result of a callback job: its value, a caught panic (counted), or `Stopped` when
    /// the driver ended before running it.
    async fn callback_answer<R>(
        &self,
        answer: oneshot::Receiver<Result<R, ()>>,
    ) -> Result<R, ServiceError> {
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(())) => {
                StatsCells::add(&self.shared.stats.callbacks_panicked, 1);
                Err(ServiceError::CallbackPanicked)
            }
            Err(_) => Err(ServiceError::Stopped),
        }
    }

    /// Queues a command; a closed channel means the service stopped.
    async fn submit(&self, command: Command) -> Result<(), ServiceError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| ServiceError::Stopped)
    }
}

/// Turns a command's reply into the caller's result.
fn flatten(
    answer: Result<Result<(), SendError>, oneshot::error::RecvError>,
) -> Result<(), ServiceError> {
    match answer {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(ServiceError::Node(err)),
        Err(_) => Err(ServiceError::Stopped),
    }
}

/// The text of a panic payload when it is a string.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
