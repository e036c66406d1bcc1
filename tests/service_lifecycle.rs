//! Lifecycle and failure isolation of the tokio driver (`ztrs::service`), on loopback with a
//! private planet whose root never answers: bounded, idempotent shutdown without "channel
//! closed" faults (H2.7, H6.9); the service stops when its last handle goes; a panicking
//! inspection callback is isolated (H6.6); garbage datagrams and per-destination send errors
//! never stop the loop (H5.3). Waits are bounded and on observable conditions.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::time::{Instant, timeout};
use ztrs::crypto::Identity;
use ztrs::crypto::c25519::{SIGNATURE_LEN, generate_keypair};
use ztrs::node::NodeConfig;
use ztrs::service::{self, ServiceError, ServiceOptions, ShutdownOutcome};
use ztrs::wire::inet_address::InetAddress;
use ztrs::wire::world::{Root, World, WorldType};
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

const DEADLINE: Duration = Duration::from_secs(20);
/// Spacing of condition checks on counters (the condition, not the interval, ends a wait).
const POLL: Duration = Duration::from_millis(10);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn identity(name: &str) -> Identity {
    common::read_reference(name)
        .trim()
        .parse()
        .expect("reference identity")
}

/// A planet whose single root (id1) is at `endpoints`, where nothing answers.
fn silent_planet(endpoints: &[SocketAddr]) -> World {
    let (public, secret) = generate_keypair();
    let mut planet = World {
        world_type: WorldType::Planet,
        id: 0x5a7a_0000_0009,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: identity("id1.public"),
            stable_endpoints: endpoints
                .iter()
                .map(|e| InetAddress::Ip(e.ip(), e.port()))
                .collect(),
        }],
    };
    planet.sign(&secret);
    planet
}

type Member = (
    service::ServiceHandle,
    tokio::sync::mpsc::Receiver<ztrs::node::Event>,
);

/// A member (id2) on 127.0.0.1 whose root is at `endpoints`.
fn member(endpoints: &[SocketAddr]) -> Member {
    member_claiming(endpoints, &[])
}

/// As [`member`], telling the node it has sockets at `claimed` (empty: what the driver
/// derives from the real socket).
fn member_claiming(endpoints: &[SocketAddr], claimed: &[SocketAddr]) -> Member {
    let socket = UdpUnderlay::open(UdpConfig::ip(LOCALHOST, 0)).expect("bind 127.0.0.1");
    let config = NodeConfig {
        allow_loopback_paths: true,
        local_addresses: claimed.to_vec(),
        ..NodeConfig::new(identity("id2.secret"), silent_planet(endpoints))
    };
    service::spawn(config, socket, ServiceOptions::default()).expect("spawn")
}

/// A loopback address nothing listens on (bound, then released).
fn dead_endpoint() -> SocketAddr {
    let probe = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    probe.local_addr().unwrap()
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn shutdown_is_orderly_bounded_and_idempotent() {
    let (handle, mut events) = member(&[dead_endpoint()]);
    let address = handle.address();
    assert_eq!(
        handle.inspect(|node| node.address()).await.unwrap(),
        address
    );
    let started = Instant::now();
    assert_eq!(handle.shutdown().await, ShutdownOutcome::Stopped);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(handle.is_stopped());
    assert_eq!(handle.shutdown().await, ShutdownOutcome::AlreadyStopping);
    let clone = handle.clone();
    assert_eq!(clone.shutdown().await, ShutdownOutcome::AlreadyStopping);
    assert!(matches!(
        handle.echo(address, b"x".to_vec()).await,
        Err(ServiceError::Stopped)
    ));
    assert!(matches!(
        handle.inspect(|node| node.address()).await,
        Err(ServiceError::Stopped)
    ));
    assert!(matches!(
        handle.deorbit(1).await,
        Err(ServiceError::Stopped)
    ));
    // The event stream ends (None), it does not fail.
    let end = timeout(DEADLINE, async { while events.recv().await.is_some() {} }).await;
    assert!(end.is_ok());
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_service() {
    let (handle, mut events) = member(&[dead_endpoint()]);
    let clone = handle.clone();
    drop(handle);
    assert!(!clone.is_stopped(), "a remaining clone keeps it running");
    drop(clone);
    let end = timeout(DEADLINE, async { while events.recv().await.is_some() {} }).await;
    assert!(end.is_ok(), "the driver ends once nobody holds a handle");
}

#[tokio::test]
async fn a_panicking_callback_is_isolated() {
    let (handle, _events) = member(&[dead_endpoint()]);
    let outcome = handle
        .inspect(|_| -> u32 { panic!("callback failure (expected by the test)") })
        .await;
    assert!(matches!(outcome, Err(ServiceError::CallbackPanicked)));
    assert_eq!(handle.stats().callbacks_panicked, 1);
    // The driver is unharmed.
    assert_eq!(
        handle.inspect(|node| node.address()).await.unwrap(),
        handle.address()
    );
    assert_eq!(handle.shutdown().await, ShutdownOutcome::Stopped);
}

#[tokio::test]
async fn garbage_and_send_errors_never_stop_the_loop() {
    // Root endpoints: one IPv6, which the node is told it can reach but this IPv4-only
    // socket cannot (a send error for that destination only), and one dead IPv4 port.
    let v6_endpoint: SocketAddr = "[::1]:9".parse().unwrap();
    let claimed = ["127.0.0.1:1".parse().unwrap(), "[::1]:1".parse().unwrap()];
    let (handle, _events) = member_claiming(&[v6_endpoint, dead_endpoint()], &claimed);
    let junk = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    for len in [0usize, 1, 27, 28, 100, 1500, 20_000] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        junk.send_to(&bytes, handle.local_addr()).await.unwrap();
    }
    eventually("junk received and send errors isolated", || {
        let stats = handle.stats();
        stats.datagrams_received >= 7 && stats.send_errors >= 1
    })
    .await;
    let stats = handle.stats();
    // The receive buffers hold a whole GRO message (64 KiB), so the 20 kB datagram arrives
    // whole and the node refuses it as larger than any ZeroTier packet, before any crypto.
    let refused = handle
        .inspect(|node| node.counters().malformed_header)
        .await
        .unwrap();
    assert!(refused >= 1, "the oversized datagram was not refused");
    assert!(
        stats.datagrams_sent >= 1,
        "the IPv4 root was still contacted: {stats:?}"
    );
    let node_saw = handle
        .inspect(|node| node.counters().datagrams_received)
        .await
        .unwrap();
    assert!(node_saw >= 5);
    assert!(!handle.is_stopped());
    assert_eq!(handle.shutdown().await, ShutdownOutcome::Stopped);
}
