//! Lifecycle event subscriptions ([`ServiceHandle::subscribe`](super::ServiceHandle::subscribe)):
//! any number of library users (or the daemon) can follow what a service does — networks
//! joined, left, configured or refused, upstream reachability, world updates, paths, user
//! messages and echo replies — without touching the node.
//!
//! Built on `tokio::sync::broadcast`, because its semantics are exactly what H6.5 asks for:
//! - one bounded ring shared by every subscriber (capacity: the service's `event_capacity`,
//!   rounded up to a power of two), so memory does not grow with slow subscribers;
//! - publishing never waits: a subscriber that does not keep up (or never polls) has its
//!   oldest events overwritten and learns how many it lost from
//!   [`Subscription::lagged`], its own named counter; the driver and the other
//!   subscribers are unaffected;
//! - subscribers run in their own tasks, outside every lock of the driver and the handle (the
//!   driver only calls a non-blocking `send`); a subscriber that panics simply drops its
//!   receiver.
//!
//! The driver task owns the only strong sender; the handle keeps a weak one to create new
//! subscriptions. When the driver ends (orderly, aborted at the shutdown bound, or panicked)
//! the sender goes with it, so every subscription drains what is left and then ends with
//! `None`; a subscription taken after that ends at once. Frames (`Event::Frame`) are data,
//! not lifecycle, and are never published here.

use std::collections::BTreeSet;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::node::{Event, Node};
use crate::wire::NetworkId;

/// Largest ring a service may ask for (broadcast rings are allocated whole).
const MAX_SUBSCRIBER_CAPACITY: usize = 1 << 16;

/// Something a service did, as seen by a subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceEvent {
    /// The node joined a network (through any handle call).
    NetworkJoined(NetworkId),
    /// The node left a network.
    NetworkLeft(NetworkId),
    /// Anything the node reported except frames (`Event::Frame` is never published).
    Node(Event),
}

/// One subscriber's view of a service's events: bounded, lossy when it falls behind, and
/// never able to slow the service down.
#[derive(Debug)]
pub struct Subscription {
    receiver: Option<broadcast::Receiver<ServiceEvent>>,
    /// Effective ring size, to count losses not yet reported by `recv`.
    capacity: usize,
    /// Events this subscriber lost because it fell behind (already reported by `recv`).
    lagged: u64,
}

impl Subscription {
    /// The next event, in publication order; `None` once the service has stopped and every
    /// event published before that was read. Events lost to lag are skipped (and counted).
    pub async fn recv(&mut self) -> Option<ServiceEvent> {
        let receiver = self.receiver.as_mut()?;
        loop {
            match receiver.recv().await {
                Ok(event) => return Some(event),
                Err(RecvError::Lagged(lost)) => self.lagged = self.lagged.saturating_add(lost),
                Err(RecvError::Closed) => {
                    self.receiver = None;
                    return None;
                }
            }
        }
    }

    /// The next event if one is waiting, without waiting (`None`: nothing now, or ended).
    pub fn try_recv(&mut self) -> Option<ServiceEvent> {
        let receiver = self.receiver.as_mut()?;
        loop {
            match receiver.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Lagged(lost)) => {
                    self.lagged = self.lagged.saturating_add(lost);
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Closed) => {
                    self.receiver = None;
                    return None;
                }
            }
        }
    }

    /// How many events this subscriber has lost by falling behind, including losses it has
    /// not run into yet (a subscriber that never polls still sees this grow).
    pub fn lagged(&self) -> u64 {
        let pending_loss = self
            .receiver
            .as_ref()
            .map_or(0, |receiver| receiver.len().saturating_sub(self.capacity));
        self.lagged.saturating_add(pending_loss as u64)
    }

    /// A subscription that has already ended (the service was gone when it was asked for).
    fn ended() -> Subscription {
        Subscription {
            receiver: None,
            capacity: 0,
            lagged: 0,
        }
    }
}

/// The publishing side, owned by the driver task.
pub(crate) struct EventHub {
    sender: broadcast::Sender<ServiceEvent>,
}

/// What the handle keeps to hand out subscriptions without keeping the channel open.
pub(crate) struct SubscriptionSource {
    sender: broadcast::WeakSender<ServiceEvent>,
    capacity: usize,
}

/// A hub and its source, with a ring of at least `capacity` events.
pub(crate) fn channel(capacity: usize) -> (EventHub, SubscriptionSource) {
    let capacity = capacity
        .clamp(1, MAX_SUBSCRIBER_CAPACITY)
        .next_power_of_two();
    let (sender, _) = broadcast::channel(capacity);
    let source = SubscriptionSource {
        sender: sender.downgrade(),
        capacity,
    };
    (EventHub { sender }, source)
}

impl SubscriptionSource {
    /// A new subscription that sees every event published from now on.
    pub(crate) fn subscribe(&self) -> Subscription {
        match self.sender.upgrade() {
            Some(sender) => Subscription {
                receiver: Some(sender.subscribe()),
                capacity: self.capacity,
                lagged: 0,
            },
            None => Subscription::ended(),
        }
    }
}

impl EventHub {
    /// Publishes a node event (frames excepted). Never waits; with no subscriber the event
    /// is not even cloned.
    pub(crate) fn publish_node(&self, event: &Event) {
        if matches!(event, Event::Frame { .. }) || self.sender.receiver_count() == 0 {
            return;
        }
        // An error only means every subscriber went away meanwhile: nobody to tell.
        let _ = self.sender.send(ServiceEvent::Node(event.clone()));
    }

    /// The joined networks, when anyone is listening (to diff around a node change).
    pub(crate) fn membership(&self, node: &Node) -> Option<BTreeSet<NetworkId>> {
        (self.sender.receiver_count() > 0).then(|| joined(node))
    }

    /// Publishes the joins and leaves between `before` (from [`EventHub::membership`]) and
    /// the node now.
    pub(crate) fn publish_membership_changes(
        &self,
        before: Option<BTreeSet<NetworkId>>,
        node: &Node,
    ) {
        let Some(before) = before else { return };
        let now = joined(node);
        for &nwid in before.difference(&now) {
            let _ = self.sender.send(ServiceEvent::NetworkLeft(nwid));
        }
        for &nwid in now.difference(&before) {
            let _ = self.sender.send(ServiceEvent::NetworkJoined(nwid));
        }
    }
}

/// The node's joined networks (at most `MAX_NETWORKS`).
fn joined(node: &Node) -> BTreeSet<NetworkId> {
    node.networks().map(|info| info.nwid).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_subscriber_counts_its_losses_and_the_channel_ends() {
        let (hub, source) = channel(4);
        let mut silent = source.subscribe();
        let mut reader = source.subscribe();
        for id in 0..10 {
            hub.publish_node(&Event::Online(id % 2 == 0));
            assert!(reader.recv().await.is_some());
        }
        assert_eq!(silent.lagged(), 6);
        assert_eq!(reader.lagged(), 0);
        drop(hub);
        let mut left = 0;
        while silent.recv().await.is_some() {
            left += 1;
        }
        assert_eq!(left, 4);
        assert_eq!(silent.lagged(), 6);
        assert!(reader.recv().await.is_none());
        assert!(source.subscribe().recv().await.is_none());
    }

    #[test]
    fn frames_are_never_published() {
        let (hub, source) = channel(4);
        let mut subscriber = source.subscribe();
        hub.publish_node(&Event::Frame {
            nwid: NetworkId(1),
            data: vec![0; 14],
        });
        assert_eq!(subscriber.try_recv(), None);
    }
}
