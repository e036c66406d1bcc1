//! The UDP underlay of `ztrs-platform` on loopback: batches of 64 datagrams in and out with
//! correct, canonical source addresses through both the `recvmmsg`/`sendmmsg` path and the
//! one-at-a-time fallback, IPv4-mapped endpoints canonicalized, unspecified destinations
//! refused, and the real local endpoint of a wildcard socket.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ztrs_platform::udp::{
    BatchMode, FamilyMode, MAX_BATCH, RecvMeta, UdpConfig, UdpUnderlay, recv_batch,
};

/// Upper bound on waiting for loopback datagrams that were already handed to the kernel.
const DEADLINE: Duration = Duration::from_secs(10);

const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCALHOST_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn open(config: UdpConfig, mode: BatchMode) -> UdpUnderlay {
    let mut socket = UdpUnderlay::open(config).expect("open a loopback UDP socket");
    socket.set_batch_mode(mode);
    socket
}

/// Where a peer on loopback reaches `socket` (its wildcard address replaced by loopback).
fn loopback_of(socket: &UdpUnderlay, ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, socket.local_addr().port())
}

/// Sends every datagram, waiting for room when the kernel has none.
async fn send_all(socket: &UdpUnderlay, datagrams: &[(SocketAddr, &[u8])]) {
    let mut rest = datagrams;
    while !rest.is_empty() {
        let sent = socket.send_batch(rest).await.expect("loopback send");
        rest = &rest[sent..];
    }
}

/// Receives until `count` datagrams arrived (bounded by [`DEADLINE`]): (payload, meta) pairs.
async fn receive(socket: &UdpUnderlay, count: usize) -> Vec<(Vec<u8>, RecvMeta)> {
    let mut bufs = vec![vec![0u8; 2048]; MAX_BATCH];
    let mut meta = [RecvMeta::default(); MAX_BATCH];
    let mut received = Vec::new();
    let collect = async {
        while received.len() < count {
            let n = socket
                .recv_batch(&mut bufs, &mut meta)
                .await
                .expect("loopback receive");
            for (buf, meta) in bufs.iter().zip(&meta).take(n) {
                received.push((buf[..meta.len].to_vec(), *meta));
            }
        }
    };
    tokio::time::timeout(DEADLINE, collect)
        .await
        .expect("datagrams arrive in time");
    received
}

/// 64 numbered payloads of varied lengths.
fn payloads() -> Vec<Vec<u8>> {
    (0..64u8)
        .map(|i| {
            let mut p = vec![i; 1 + usize::from(i) * 7];
            p[0] = i;
            p
        })
        .collect()
}

/// Sends 64 datagrams in one batch from `sender` to `target` and returns what `receiver`
/// saw, keyed by the payload's first byte.
async fn batch_round_trip(
    sender: &UdpUnderlay,
    receiver: &UdpUnderlay,
    target: SocketAddr,
) -> BTreeMap<u8, (Vec<u8>, RecvMeta)> {
    let payloads = payloads();
    let datagrams: Vec<(SocketAddr, &[u8])> =
        payloads.iter().map(|p| (target, p.as_slice())).collect();
    assert_eq!(datagrams.len(), MAX_BATCH);
    let sent = sender.send_batch(&datagrams).await.expect("batch send");
    assert_eq!(sent, MAX_BATCH, "one call takes the whole batch");
    let got = receive(receiver, payloads.len()).await;
    let by_index: BTreeMap<u8, (Vec<u8>, RecvMeta)> = got
        .into_iter()
        .map(|(data, meta)| (data[0], (data, meta)))
        .collect();
    assert_eq!(
        by_index.len(),
        payloads.len(),
        "no datagram lost or doubled"
    );
    for (index, (data, meta)) in &by_index {
        assert_eq!(data, &payloads[usize::from(*index)]);
        assert_eq!(meta.len, data.len());
        assert!(!meta.truncated);
    }
    by_index
}

async fn batch_ipv4_into_dual_stack(mode: BatchMode) {
    let receiver = open(UdpConfig::wildcard(0), mode);
    let sender = open(UdpConfig::ip(LOCALHOST_V4, 0), mode);
    assert_eq!(sender.mode(), FamilyMode::Ipv4Only);
    if cfg!(target_os = "linux") {
        assert_eq!(
            receiver.reports_packet_destination(),
            mode == BatchMode::Mmsg,
            "IP_PKTINFO and IPV6_RECVPKTINFO on a dual-stack socket"
        );
    }
    let target = loopback_of(&receiver, LOCALHOST_V4);
    let seen = batch_round_trip(&sender, &receiver, target).await;
    for (_, meta) in seen.values() {
        // The dual-stack socket saw ::ffff:127.0.0.1; it must come out as plain IPv4.
        assert_eq!(meta.remote, sender.local_addr());
        assert!(meta.remote.is_ipv4());
        if receiver.reports_packet_destination() {
            assert_eq!(
                meta.local, target,
                "real local endpoint of a wildcard socket"
            );
        } else {
            assert_eq!(meta.local.port(), target.port());
        }
    }
}

async fn batch_ipv6_into_dual_stack(mode: BatchMode) {
    let receiver = open(UdpConfig::wildcard(0), mode);
    let sender = open(UdpConfig::ip(LOCALHOST_V6, 0), mode);
    assert_eq!(sender.mode(), FamilyMode::Ipv6Only);
    let target = loopback_of(&receiver, LOCALHOST_V6);
    let seen = batch_round_trip(&sender, &receiver, target).await;
    for (_, meta) in seen.values() {
        assert_eq!(meta.remote, sender.local_addr());
        if receiver.reports_packet_destination() {
            assert_eq!(meta.local, target);
        }
    }
}

#[tokio::test]
async fn mmsg_batch_of_64_with_sources() {
    batch_ipv4_into_dual_stack(BatchMode::Mmsg).await;
    batch_ipv6_into_dual_stack(BatchMode::Mmsg).await;
}

#[tokio::test]
async fn fallback_batch_of_64_with_sources() {
    batch_ipv4_into_dual_stack(BatchMode::OneAtATime).await;
    batch_ipv6_into_dual_stack(BatchMode::OneAtATime).await;
}

#[tokio::test]
async fn both_paths_agree() {
    let mut results = Vec::new();
    for mode in [BatchMode::Mmsg, BatchMode::OneAtATime] {
        let receiver = open(UdpConfig::ip(LOCALHOST_V4, 0), mode);
        let sender = open(UdpConfig::ip(LOCALHOST_V4, 0), mode);
        let target = receiver.local_addr();
        let seen = batch_round_trip(&sender, &receiver, target).await;
        // Ports differ between runs; compare payloads and the sender's address family/IP.
        let summary: Vec<(Vec<u8>, IpAddr, IpAddr)> = seen
            .into_values()
            .map(|(data, meta)| {
                assert_eq!(meta.remote, sender.local_addr());
                // A socket bound to one address reports that address on both paths.
                assert_eq!(meta.local, target);
                (data, meta.remote.ip(), meta.local.ip())
            })
            .collect();
        results.push(summary);
    }
    assert_eq!(results[0], results[1]);
}

#[tokio::test]
async fn mapped_destinations_and_sources_are_canonical() {
    for mode in [BatchMode::Mmsg, BatchMode::OneAtATime] {
        // A dual-stack socket sends to an explicitly mapped address and to a plain IPv4 one.
        let dual = open(UdpConfig::wildcard(0), mode);
        assert_eq!(dual.mode(), FamilyMode::DualStack);
        let v4 = open(UdpConfig::ip(LOCALHOST_V4, 0), mode);
        let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", v4.local_addr().port())
            .parse()
            .unwrap();
        send_all(&dual, &[(mapped, b"mapped"), (v4.local_addr(), b"plain")]).await;
        let got = receive(&v4, 2).await;
        let texts: Vec<&[u8]> = got.iter().map(|(data, _)| data.as_slice()).collect();
        assert_eq!(texts, [&b"mapped"[..], &b"plain"[..]]);
        for (_, meta) in &got {
            assert_eq!(meta.remote.ip(), LOCALHOST_V4);
            assert_eq!(meta.remote.port(), dual.local_addr().port());
        }

        // An IPv4-only socket given a mapped destination sends to the IPv4 address, and the
        // dual-stack receiver reports the sender as IPv4.
        let mapped_dual: SocketAddr = format!("[::ffff:127.0.0.1]:{}", dual.local_addr().port())
            .parse()
            .unwrap();
        send_all(&v4, &[(mapped_dual, b"back")]).await;
        let got = receive(&dual, 1).await;
        assert_eq!(got[0].0, b"back");
        assert_eq!(got[0].1.remote, v4.local_addr());
        assert!(got[0].1.remote.is_ipv4());
    }
}

#[tokio::test]
async fn unspecified_destinations_are_errors() {
    for mode in [BatchMode::Mmsg, BatchMode::OneAtATime] {
        let dual = open(UdpConfig::wildcard(0), mode);
        let receiver = open(UdpConfig::ip(LOCALHOST_V4, 0), mode);
        let port = receiver.local_addr().port();
        for text in ["0.0.0.0", "[::]", "[::ffff:0.0.0.0]"] {
            let bad: SocketAddr = format!("{text}:{port}").parse().unwrap();
            let err = dual.send_batch(&[(bad, b"x")]).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{text} {mode:?}");
        }

        // A bad destination in the middle: the good one before it goes, the call stops there,
        // the bad one is reported on its own, and the rest goes after it (per-destination
        // isolation is the caller's loop).
        let bad: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
        let good = receiver.local_addr();
        let batch: [(SocketAddr, &[u8]); 3] = [(good, b"one"), (bad, b"lost"), (good, b"two")];
        assert_eq!(dual.send_batch(&batch).await.unwrap(), 1);
        let err = dual.send_batch(&batch[1..]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(dual.send_batch(&batch[2..]).await.unwrap(), 1);
        let got = receive(&receiver, 2).await;
        let texts: Vec<&[u8]> = got.iter().map(|(data, _)| data.as_slice()).collect();
        assert_eq!(texts, [&b"one"[..], &b"two"[..]]);

        // An IPv4-only socket cannot reach a real IPv6 address: an error, not a drop.
        let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
        let err = receiver.send_batch(&[(v6, b"x")]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn oversized_datagrams_are_flagged() {
    for mode in [BatchMode::Mmsg, BatchMode::OneAtATime] {
        let receiver = open(UdpConfig::ip(LOCALHOST_V4, 0), mode);
        let sender = open(UdpConfig::ip(LOCALHOST_V4, 0), mode);
        send_all(&sender, &[(receiver.local_addr(), &[7u8; 300])]).await;
        let mut bufs = [[0u8; 100]];
        let mut meta = [RecvMeta::default()];
        let n = tokio::time::timeout(DEADLINE, async {
            loop {
                receiver.readable().await.unwrap();
                match recv_batch(&receiver, &mut bufs, &mut meta) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                    other => break other.unwrap(),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(n, 1);
        assert!(meta[0].truncated, "{mode:?}");
        assert!(meta[0].len <= 100);
    }
}

#[tokio::test]
async fn wildcard_socket_reports_port_and_buffers() {
    let socket = open(UdpConfig::wildcard(0), BatchMode::from_env());
    let local = socket.local_addr();
    assert!(local.ip().is_unspecified());
    assert_ne!(local.port(), 0, "the real port of a port-0 bind");
    let buffers = socket.buffer_sizes();
    // Whatever the limits, the kernel grants at least its defaults (well above 64 KiB).
    assert!(buffers.recv >= 64 << 10, "{buffers:?}");
    assert!(buffers.send >= 64 << 10, "{buffers:?}");

    // Two sockets on one port are refused (no address reuse).
    let port = local.port();
    assert!(UdpUnderlay::open(UdpConfig::wildcard(port)).is_err());
}
