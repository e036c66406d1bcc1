//! End-to-end tests of the port forwards on loopback: a `-L` forward through the host dialer
//! and a `-R` forward whose network side is a tokio `TcpListener` (the host's Acceptor),
//! each carrying 1 MB through an echo server and back intact, and a `-L` forward whose
//! target is down.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tests_support::*;
use super::{
    FrontCounters, FrontLimits, HostDialer, Target, run_local_forward, run_remote_forward,
};

const ONE_MB: usize = 1 << 20;

/// Sends 1 MB of patterned bytes through `entry` while reading the echo, then half-closes
/// and checks the echo matches byte for byte and ends.
async fn round_trip_one_megabyte(entry: SocketAddr) {
    let payload: Vec<u8> = (0..ONE_MB).map(|i| (i % 251) as u8).collect();
    let stream = TcpStream::connect(entry).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut echoed = Vec::with_capacity(ONE_MB);
    within(read.read_to_end(&mut echoed)).await.unwrap();
    within(writer).await.unwrap();
    assert_eq!(echoed.len(), ONE_MB);
    assert!(echoed == payload, "echoed bytes differ");
}

#[tokio::test]
async fn local_forward_carries_a_megabyte_both_ways() {
    let echo = echo_server().await;
    let listener = loopback_listener().await;
    let entry = listener.local_addr().unwrap();
    let counters = Arc::new(FrontCounters::default());
    tokio::spawn(run_local_forward(
        listener,
        Arc::new(HostDialer::default()),
        Target::Addr(echo),
        FrontLimits::default(),
        Arc::clone(&counters),
    ));
    round_trip_one_megabyte(entry).await;
    let snapshot = wait_for_counters(&counters, |c| c.bytes_down == ONE_MB as u64).await;
    assert_eq!((snapshot.accepted, snapshot.bytes_up), (1, ONE_MB as u64));
}

#[tokio::test]
async fn remote_forward_carries_a_megabyte_both_ways() {
    let echo = echo_server().await;
    let network_side = loopback_listener().await;
    let entry = network_side.local_addr().unwrap();
    let counters = Arc::new(FrontCounters::default());
    tokio::spawn(run_remote_forward(
        network_side,
        Target::Addr(echo),
        FrontLimits::default(),
        Arc::clone(&counters),
    ));
    round_trip_one_megabyte(entry).await;
    let snapshot = wait_for_counters(&counters, |c| c.bytes_down == ONE_MB as u64).await;
    assert_eq!(snapshot.bytes_up, ONE_MB as u64);
}

#[tokio::test]
async fn local_forward_to_a_closed_port_closes_the_client_and_counts() {
    let closed = closed_port().await;
    let listener = loopback_listener().await;
    let entry = listener.local_addr().unwrap();
    let counters = Arc::new(FrontCounters::default());
    tokio::spawn(run_local_forward(
        listener,
        Arc::new(HostDialer::default()),
        Target::Addr(closed),
        FrontLimits::default(),
        Arc::clone(&counters),
    ));
    let mut stream = TcpStream::connect(entry).await.unwrap();
    assert!(read_until_closed(&mut stream).await.is_empty());
    assert_eq!(counters.snapshot().connect_failures, 1);
}
