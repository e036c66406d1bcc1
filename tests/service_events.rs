//! Event subscriptions under hostile subscribers (H6.5, H6.6, H6.9): a root running the
//! controller and one member, each a service on 127.0.0.1, on a private planet. The member
//! has three subscribers: one that panics on its first event, one that never reads, and one
//! that reads. Join, leave, join again and shutdown must all complete within bounds; the
//! reader sees the lifecycle in order; the silent one reports what it lost (user messages
//! from the root fill its ring). Every wait is on
//! an observable condition with a deadline.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use ztrs::lab::signed_planet;

use serde_json::json;
use tokio::time::{Instant, timeout, timeout_at};
use ztrs::controller::{Controller, MemoryStore};
use ztrs::crypto::Identity;
use ztrs::node::{Event, NodeConfig};
use ztrs::service::{
    self, ServiceEvent, ServiceHandle, ServiceOptions, ShutdownOutcome, Subscription,
};
use ztrs::wire::NetworkId;
use ztrs::wire::world::World;
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

/// Bound on every single step (join, leave, shutdown, an event); normally milliseconds.
const STEP: Duration = Duration::from_secs(15);
/// The member's event ring; small so the silent subscriber falls behind quickly.
const RING: usize = 64;
/// How long one user message may take before it is sent again.
const RETRY: Duration = Duration::from_millis(500);
const MESSAGE_TYPE: u64 = 0x7a74_7273_6576;

fn loopback_socket() -> UdpUnderlay {
    UdpUnderlay::open(UdpConfig::ip(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).expect("bind 127.0.0.1")
}

/// The lifecycle steps the reader must see, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Joined,
    Configured,
    Left,
}

/// The reading subscriber: every event it takes is looked at, and lifecycle ones recorded.
struct Reader {
    subscription: Subscription,
    nwid: NetworkId,
    steps: Vec<Step>,
}

impl Reader {
    fn record(&mut self, event: &ServiceEvent) {
        let step = match event {
            ServiceEvent::NetworkJoined(n) if *n == self.nwid => Step::Joined,
            ServiceEvent::NetworkLeft(n) if *n == self.nwid => Step::Left,
            ServiceEvent::Node(Event::NetworkConfigured { nwid, .. }) if *nwid == self.nwid => {
                Step::Configured
            }
            _ => return,
        };
        // A controller may push the same config again; only the transitions matter.
        if !(step == Step::Configured && self.steps.last() == Some(&Step::Configured)) {
            self.steps.push(step);
        }
    }

    /// Reads until `wanted` accepts an event, within [`STEP`].
    async fn wait_for(&mut self, what: &str, wanted: impl Fn(&ServiceEvent) -> bool) {
        let until = Instant::now() + STEP;
        assert!(
            self.wait_until(until, what, wanted).await,
            "no {what} within {STEP:?}"
        );
    }

    /// Reads until `wanted` accepts an event (true) or `until` passes (false).
    async fn wait_until(
        &mut self,
        until: Instant,
        what: &str,
        wanted: impl Fn(&ServiceEvent) -> bool,
    ) -> bool {
        loop {
            let Ok(event) = timeout_at(until, self.subscription.recv()).await else {
                return false;
            };
            let event =
                event.unwrap_or_else(|| panic!("the subscription ended while waiting for {what}"));
            self.record(&event);
            if wanted(&event) {
                return true;
            }
        }
    }
}

async fn start_root() -> (ServiceHandle, World, NetworkId) {
    let socket = loopback_socket();
    let identity = Identity::generate();
    let planet = signed_planet(0x7a74_7273_6576_0001, &[(&identity, socket.local_addr())]);
    let config = NodeConfig {
        allow_loopback_paths: true,
        relay: true,
        controller: Some(Controller::new(
            identity.clone(),
            Box::new(MemoryStore::new()),
        )),
        ..NodeConfig::new(identity, planet.clone())
    };
    let (root, _events) =
        service::spawn(config, socket, ServiceOptions::default()).expect("spawn the root");
    let nwid = root
        .with_node_mut(|node, now| {
            let controller = node.controller_mut().expect("a controller");
            let network = controller
                .create_network(now as i64, json!({"name": "events", "private": false}))
                .expect("create the network");
            network.network_id().expect("a network id")
        })
        .await
        .expect("root running");
    (root, planet, nwid)
}

async fn join(member: &ServiceHandle, nwid: NetworkId) {
    timeout(
        STEP,
        member.with_node_mut(move |node, now| node.join(now, nwid)),
    )
    .await
    .expect("join within the bound")
    .expect("member running")
    .expect("join accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_subscribers_cannot_wedge_the_lifecycle() {
    let (root, planet, nwid) = start_root().await;
    let options = ServiceOptions {
        event_capacity: RING,
        ..ServiceOptions::default()
    };
    let config = NodeConfig {
        allow_loopback_paths: true,
        ..NodeConfig::new(Identity::generate(), planet)
    };
    // The plain event channel is not read at all: its events are discarded, counted.
    let (member, _unread) =
        service::spawn(config, loopback_socket(), options).expect("spawn the member");

    let mut panicky = member.subscribe();
    let panicky = tokio::spawn(async move {
        if let Some(event) = panicky.recv().await {
            panic!("a subscriber panics on purpose at {event:?}");
        }
    });
    let silent = member.subscribe();
    let mut reader = Reader {
        subscription: member.subscribe(),
        nwid,
        steps: Vec::new(),
    };

    join(&member, nwid).await;
    let panicked = timeout(STEP, panicky)
        .await
        .expect("the panicking subscriber ran");
    assert!(panicked.is_err_and(|e| e.is_panic()));
    reader
        .wait_for("configuration", |e| {
            matches!(e, ServiceEvent::Node(Event::NetworkConfigured { nwid: n, .. }) if *n == nwid)
        })
        .await;

    let left = timeout(STEP, member.with_node_mut(move |node, _| node.leave(nwid)))
        .await
        .expect("leave within the bound")
        .expect("member running");
    assert!(left);
    reader
        .wait_for("the leave", |e| *e == ServiceEvent::NetworkLeft(nwid))
        .await;

    join(&member, nwid).await;
    reader
        .wait_for("reconfiguration", |e| {
            matches!(e, ServiceEvent::Node(Event::NetworkConfigured { nwid: n, .. }) if *n == nwid)
        })
        .await;

    // Messages from the root are events too: send them one at a time (the reader confirms
    // each, resending after a pause if one is lost) until the silent subscriber has lost some.
    let deadline = Instant::now() + STEP;
    let mut messages = 0u32;
    while silent.lagged() == 0 {
        assert!(
            Instant::now() < deadline,
            "the silent subscriber never lagged"
        );
        let data = messages.to_be_bytes().to_vec();
        let wanted = data.clone();
        // A refusal (a path not learned yet) is retried like a loss.
        let _ = root
            .send_user_message(member.address(), MESSAGE_TYPE, data)
            .await;
        let arrived = reader
            .wait_until(Instant::now() + RETRY, "a user message", move |e| {
                matches!(e, ServiceEvent::Node(Event::UserMessage { data, .. }) if *data == wanted)
            })
            .await;
        if arrived {
            messages += 1;
        }
    }
    assert!(silent.lagged() > 0);
    assert_eq!(reader.subscription.lagged(), 0, "the reader kept up");

    let outcome = timeout(STEP, member.shutdown())
        .await
        .expect("shutdown within the bound");
    assert_eq!(outcome, ShutdownOutcome::Stopped);
    let drained = timeout(STEP, async {
        while let Some(event) = reader.subscription.recv().await {
            reader.record(&event);
        }
    })
    .await;
    assert!(drained.is_ok(), "the reader's subscription never ended");
    assert_eq!(
        reader.steps,
        [
            Step::Joined,
            Step::Configured,
            Step::Left,
            Step::Joined,
            Step::Configured
        ]
    );
    assert!(
        member.subscribe().recv().await.is_none(),
        "a subscription taken after the stop ends at once"
    );
    drop(silent);
    assert_eq!(root.shutdown().await, ShutdownOutcome::Stopped);
}
