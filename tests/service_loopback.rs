//! The issue-3 scenario over real UDP on 127.0.0.1: a root and two members, each a service
//! (its own task and socket) in this process, on a private planet whose only root is the
//! root's loopback port (the root's socket is a wildcard dual-stack one, as in `ztrs root`;
//! all traffic is loopback). The members come online, exchange USER_MESSAGE through the root,
//! then over a direct path after the root introduces them (RENDEZVOUS). Garbage datagrams
//! thrown at every socket change nothing (H5.3), and shutdown is orderly and bounded (H2.7,
//! H6.9). Every wait is on an observable condition with a deadline; nothing sleeps.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use ztrs::lab::signed_planet;

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use ztrs::crypto::Identity;
use ztrs::node::{Event, NodeConfig};
use ztrs::service::{self, ServiceError, ServiceHandle, ServiceOptions, ShutdownOutcome};
use ztrs::wire::world::World;
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

/// Upper bound on every wait; the whole scenario normally takes well under a second.
const DEADLINE: Duration = Duration::from_secs(20);
/// How long one attempt at a user message waits before it is sent again.
const RETRY: Duration = Duration::from_millis(500);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const MESSAGE_TYPE: u64 = 0x7a74_7273;

fn identity(name: &str) -> Identity {
    let id: Identity = common::read_reference(name)
        .trim()
        .parse()
        .expect("reference identity");
    assert!(id.has_secret());
    id
}

fn loopback_socket() -> UdpUnderlay {
    UdpUnderlay::open(UdpConfig::ip(LOCALHOST, 0)).expect("bind 127.0.0.1")
}

fn config(identity: Identity, planet: &World) -> NodeConfig {
    NodeConfig {
        allow_loopback_paths: true,
        ..NodeConfig::new(identity, planet.clone())
    }
}

struct Running {
    handle: ServiceHandle,
    events: mpsc::Receiver<Event>,
}

fn start(config: NodeConfig, socket: UdpUnderlay) -> Running {
    let (handle, events) =
        service::spawn(config, socket, ServiceOptions::default()).expect("spawn service");
    Running { handle, events }
}

/// Waits (bounded by `until`) for an event `pick` accepts, skipping others.
async fn wait_for<T>(
    running: &mut Running,
    until: Instant,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Option<T> {
    let events = &mut running.events;
    let search = async {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        panic!("event stream ended while waiting for {what}");
    };
    tokio::time::timeout_at(until, search).await.ok().flatten()
}

/// Sends `text` from `from` to `to` until `to` reports it (a first message may wait for a
/// WHOIS and be dropped by a bounded queue, so it is retried), within [`DEADLINE`].
async fn deliver(from: &Running, to: &mut Running, text: &[u8]) {
    let deadline = Instant::now() + DEADLINE;
    let sender = from.handle.address();
    let wanted = text.to_vec();
    loop {
        assert!(
            Instant::now() < deadline,
            "USER_MESSAGE {text:?} never arrived"
        );
        // A refusal (peer not known yet) is retried like a loss.
        let _ = from
            .handle
            .send_user_message(to.handle.address(), MESSAGE_TYPE, wanted.clone())
            .await;
        let attempt_end = (Instant::now() + RETRY).min(deadline);
        let got = wait_for(to, attempt_end, "a user message", |event| match event {
            Event::UserMessage {
                from,
                type_id,
                data,
            } if *from == sender && *type_id == MESSAGE_TYPE && *data == wanted => Some(()),
            _ => None,
        })
        .await;
        if got.is_some() {
            return;
        }
    }
}

/// Throws junk at `target` from a throwaway socket (H5.3: the receiver must shrug it off).
async fn throw_garbage(target: SocketAddr) {
    let junk = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    for len in [0usize, 1, 13, 27, 28, 64, 1400, 9000] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        junk.send_to(&bytes, target).await.unwrap();
    }
}

async fn relayed_by(root: &Running) -> u64 {
    root.handle
        .inspect(|node| node.counters().relay_forwarded)
        .await
        .expect("root running")
}

async fn has_direct_path(from: &Running, to: &Running) -> bool {
    let peer = to.handle.address();
    let target = to.handle.local_addr();
    from.handle
        .inspect(move |node| {
            node.peers().any(|info| {
                info.address == peer && info.paths.iter().any(|p| p.remote == target && p.alive)
            })
        })
        .await
        .expect("member running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_talk_through_the_root_then_directly() {
    let root_id = identity("id1.secret");
    let a_id = identity("id2.secret");
    let b_id = identity("id3.secret");

    // The root listens like `ztrs root` does: on the wildcard address, dual-stack, learning
    // each datagram's real local address; the members reach it at 127.0.0.1.
    let root_socket = UdpUnderlay::open(UdpConfig::wildcard(0)).expect("bind wildcard");
    let root_endpoint = SocketAddr::new(LOCALHOST, root_socket.local_addr().port());
    let planet = signed_planet(0x5a7a_0000_0003, &[(&root_id, root_endpoint)]);
    let mut root = start(config(root_id, &planet), root_socket);
    let mut a = start(config(a_id, &planet), loopback_socket());
    let mut b = start(config(b_id, &planet), loopback_socket());
    for target in [root_endpoint, a.handle.local_addr(), b.handle.local_addr()] {
        throw_garbage(target).await;
    }

    let deadline = Instant::now() + DEADLINE;
    for (name, member) in [("a", &mut a), ("b", &mut b)] {
        let online = wait_for(member, deadline, "online", |event| {
            matches!(event, Event::Online(true)).then_some(())
        })
        .await;
        assert!(online.is_some(), "member {name} never came online");
    }

    // First contact between the members goes through the root.
    let relayed_before = relayed_by(&root).await;
    deliver(&a, &mut b, b"hello b, via the root").await;
    assert!(
        relayed_by(&root).await > relayed_before,
        "the first message was relayed"
    );
    deliver(&b, &mut a, b"hello a, via the root").await;

    // The root introduces them; both learn a direct path to the other's loopback socket.
    let deadline = Instant::now() + DEADLINE;
    loop {
        if has_direct_path(&a, &b).await && has_direct_path(&b, &a).await {
            break;
        }
        assert!(Instant::now() < deadline, "no direct path after RENDEZVOUS");
        // Keep traffic flowing (a relayed packet is what makes the root introduce them) and
        // wake up on the next event rather than on a timer.
        deliver(&a, &mut b, b"nudge").await;
    }

    // Now messages flow directly: the root relays nothing more.
    let relayed_before = relayed_by(&root).await;
    deliver(&a, &mut b, b"hello b, directly").await;
    deliver(&b, &mut a, b"hello a, directly").await;
    assert_eq!(relayed_by(&root).await, relayed_before, "nothing relayed");

    // Junk was counted or ignored, never fatal: every service is still running.
    for running in [&root, &a, &b] {
        assert!(!running.handle.is_stopped());
    }

    // Orderly, bounded shutdown of all three at once; afterwards commands report Stopped
    // and event streams end, with no "channel closed" fault anywhere (H2.7, H6.9).
    let started = Instant::now();
    let (r, x, y) = tokio::join!(
        root.handle.shutdown(),
        a.handle.shutdown(),
        b.handle.shutdown()
    );
    assert_eq!(
        [r, x, y],
        [
            ShutdownOutcome::Stopped,
            ShutdownOutcome::Stopped,
            ShutdownOutcome::Stopped
        ]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(a.handle.shutdown().await, ShutdownOutcome::AlreadyStopping);
    let after = a.handle.echo(b.handle.address(), b"late".to_vec()).await;
    assert!(matches!(after, Err(ServiceError::Stopped)), "{after:?}");
    for running in [&mut root, &mut a, &mut b] {
        let end = timeout(DEADLINE, async {
            while running.events.recv().await.is_some() {}
        })
        .await;
        assert!(end.is_ok(), "event stream ends after shutdown");
    }
}
