//! The UDP underlay of `ztrs-platform` on loopback: batches of 64 datagrams in and out with
//! correct, canonical source addresses through both the `recvmmsg`/`sendmmsg` path and the
//! one-at-a-time fallback, IPv4-mapped endpoints canonicalized, unspecified destinations
//! refused, and the real local endpoint of a wildcard socket. UDP GSO/GRO: coalesced sends
//! arrive intact and in order at plain and GRO receivers, runs break at destination and size
//! changes and at the size limits, and the offloads switch turns both off.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ztrs_platform::udp::{
    BatchMode, FamilyMode, MAX_BATCH, Offloads, RecvMeta, UdpConfig, UdpUnderlay, recv_batch,
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

/// Receive buffer size: one GRO message may hold up to 64 KiB of datagrams.
const GRO_BUFFER: usize = 64 << 10;

/// Receives until `count` datagrams arrived (bounded by [`DEADLINE`]): (payload, meta) pairs,
/// one per datagram (GRO messages split, each meta's `len` set to its datagram's length and
/// `segment_size` kept to show the message was coalesced).
async fn receive(socket: &UdpUnderlay, count: usize) -> Vec<(Vec<u8>, RecvMeta)> {
    let mut bufs = vec![vec![0u8; GRO_BUFFER]; MAX_BATCH];
    let mut meta = [RecvMeta::default(); MAX_BATCH];
    let mut received = Vec::new();
    let collect = async {
        while received.len() < count {
            let n = socket
                .recv_batch(&mut bufs, &mut meta)
                .await
                .expect("loopback receive");
            for (buf, meta) in bufs.iter().zip(&meta).take(n) {
                assert!(!meta.truncated, "64 KiB holds any message");
                for datagram in meta.segments(buf) {
                    let one = RecvMeta {
                        len: datagram.len(),
                        ..*meta
                    };
                    received.push((datagram.to_vec(), one));
                }
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

// ---- UDP GSO / GRO ----

/// A datagram of `len` bytes (at least 2) numbered `index`: the index, then a pattern that
/// differs per index so a misplaced or mangled byte shows.
fn numbered(index: u16, len: usize) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len)
        .map(|k| (k as u8).wrapping_mul(7).wrapping_add(index as u8))
        .collect();
    data[..2].copy_from_slice(&index.to_be_bytes());
    data
}

/// 40 datagrams of 1200 bytes and a 500-byte last one: one GSO run.
fn gso_run() -> Vec<Vec<u8>> {
    (0..41u16)
        .map(|i| numbered(i, if i == 40 { 500 } else { 1200 }))
        .collect()
}

fn to(target: SocketAddr, payloads: &[Vec<u8>]) -> Vec<(SocketAddr, &[u8])> {
    payloads.iter().map(|p| (target, p.as_slice())).collect()
}

/// A sender with offloads on; on Linux GSO must be available (kernel >= 4.18).
fn gso_sender() -> UdpUnderlay {
    let sender = open(UdpConfig::ip(LOCALHOST_V4, 0), BatchMode::Mmsg);
    if cfg!(target_os = "linux") {
        assert!(
            sender.offloads().gso,
            "UDP_SEGMENT unavailable on this kernel"
        );
    }
    sender
}

/// Receives `count` datagrams from a plain socket in arrival order.
fn receive_plain(socket: &std::net::UdpSocket, count: usize) -> Vec<Vec<u8>> {
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = vec![0u8; GRO_BUFFER];
    (0..count)
        .map(|_| {
            let (len, _) = socket.recv_from(&mut buf).expect("datagram in time");
            buf[..len].to_vec()
        })
        .collect()
}

#[tokio::test]
async fn gso_batch_reaches_a_plain_socket_intact_and_in_order() {
    let sender = gso_sender();
    let receiver = std::net::UdpSocket::bind((LOCALHOST_V4, 0)).unwrap();
    let payloads = gso_run();
    let batch = to(receiver.local_addr().unwrap(), &payloads);
    let sent = sender.send_batch(&batch).await.unwrap();
    assert_eq!(sent, payloads.len(), "counted in datagrams, not messages");
    // No GRO on a std socket: the kernel segments, so every datagram arrives on its own.
    assert_eq!(receive_plain(&receiver, payloads.len()), payloads);
    assert_eq!(sender.offloads().gso_fallbacks, 0);
}

#[tokio::test]
async fn gso_batch_into_gro_receiver_splits_back_into_datagrams() {
    let sender = gso_sender();
    let receiver = open(UdpConfig::wildcard(0), BatchMode::Mmsg);
    if cfg!(target_os = "linux") {
        assert!(
            receiver.offloads().gro,
            "UDP_GRO unavailable on this kernel (needs >= 5.0): GRO path untested"
        );
    }
    let payloads = gso_run();
    let target = loopback_of(&receiver, LOCALHOST_V4);
    send_all(&sender, &to(target, &payloads)).await;
    let got = receive(&receiver, payloads.len()).await;
    let data: Vec<Vec<u8>> = got.iter().map(|(data, _)| data.clone()).collect();
    assert_eq!(data, payloads, "byte-identical and in order");
    for (_, meta) in &got {
        assert_eq!(meta.remote, sender.local_addr());
        assert_eq!(meta.local, target);
    }
    if cfg!(target_os = "linux") {
        assert!(
            got.iter().any(|(_, meta)| meta.segment_size == 1200),
            "the run came through as one coalesced message"
        );
    }
}

#[tokio::test]
async fn mixed_destinations_and_sizes_break_runs_correctly() {
    let sender = gso_sender();
    let gro = open(UdpConfig::ip(LOCALHOST_V4, 0), BatchMode::Mmsg);
    let plain = std::net::UdpSocket::bind((LOCALHOST_V4, 0)).unwrap();
    let (a, b) = (gro.local_addr(), plain.local_addr().unwrap());
    // Batch 1: destinations alternate every 5 datagrams, sizes follow a pattern with short
    // tails, longer-after-shorter and repeats. Batch 2: 50 * 1400 bytes to `a` (over the
    // 65000-byte limit of one run) then 14 to `b`.
    let sizes = [1200, 1200, 1200, 800, 300, 1200, 1200, 1400, 1400, 2];
    let batch1: Vec<(SocketAddr, Vec<u8>)> = (0..64u16)
        .map(|i| {
            let target = if (i / 5) % 2 == 0 { a } else { b };
            (target, numbered(i, sizes[usize::from(i) % sizes.len()]))
        })
        .collect();
    let batch2: Vec<(SocketAddr, Vec<u8>)> = (64..128u16)
        .map(|i| (if i < 114 { a } else { b }, numbered(i, 1400)))
        .collect();
    for batch in [&batch1, &batch2] {
        let refs: Vec<(SocketAddr, &[u8])> = batch.iter().map(|(t, p)| (*t, &p[..])).collect();
        assert_eq!(sender.send_batch(&refs).await.unwrap(), MAX_BATCH);
    }
    let expect_for = |target: SocketAddr| -> Vec<Vec<u8>> {
        batch1
            .iter()
            .chain(&batch2)
            .filter(|(t, _)| *t == target)
            .map(|(_, p)| p.clone())
            .collect()
    };
    let (want_a, want_b) = (expect_for(a), expect_for(b));
    let got_a: Vec<Vec<u8>> = receive(&gro, want_a.len())
        .await
        .into_iter()
        .map(|(data, _)| data)
        .collect();
    assert_eq!(got_a, want_a);
    assert_eq!(receive_plain(&plain, want_b.len()), want_b);

    // Empty datagrams are never coalesced and arrive as themselves.
    send_all(&sender, &[(a, b""), (a, b""), (a, b"x")]).await;
    let lens: Vec<usize> = receive(&gro, 3)
        .await
        .iter()
        .map(|(d, _)| d.len())
        .collect();
    assert_eq!(lens, [0, 0, 1]);
}

#[tokio::test]
async fn offloads_off_sends_and_receives_without_gso() {
    let config = UdpConfig {
        offloads: false,
        ..UdpConfig::ip(LOCALHOST_V4, 0)
    };
    let sender = open(config, BatchMode::Mmsg);
    let off = Offloads {
        gso: false,
        gro: false,
        gso_fallbacks: 0,
    };
    assert_eq!(sender.offloads(), off);
    let gro_receiver = open(UdpConfig::ip(LOCALHOST_V4, 0), BatchMode::Mmsg);
    let payloads = gso_run();
    send_all(&sender, &to(gro_receiver.local_addr(), &payloads)).await;
    let got = receive(&gro_receiver, payloads.len()).await;
    assert!(
        got.iter().all(|(_, meta)| meta.segment_size == 0),
        "without GSO nothing is coalesced even for a GRO receiver"
    );
    let data: Vec<Vec<u8>> = got.into_iter().map(|(data, _)| data).collect();
    assert_eq!(data, payloads);

    // A receiver without offloads gets a GSO sender's run as separate datagrams.
    let plain_receiver = open(config, BatchMode::Mmsg);
    assert_eq!(plain_receiver.offloads(), off);
    let gso = gso_sender();
    send_all(&gso, &to(plain_receiver.local_addr(), &payloads)).await;
    let got = receive(&plain_receiver, payloads.len()).await;
    assert!(got.iter().all(|(_, meta)| meta.segment_size == 0));
    let data: Vec<Vec<u8>> = got.into_iter().map(|(data, _)| data).collect();
    assert_eq!(data, payloads);

    // The portable path cannot split GRO messages, so switching to it turns GRO off.
    let mut switching = open(UdpConfig::ip(LOCALHOST_V4, 0), BatchMode::Mmsg);
    let on_linux = cfg!(target_os = "linux");
    assert_eq!(switching.offloads().gro, on_linux);
    switching.set_batch_mode(BatchMode::OneAtATime);
    assert_eq!(switching.offloads(), off);
    switching.set_batch_mode(BatchMode::Mmsg);
    assert_eq!(switching.offloads().gro, on_linux);
}

/// A network namespace that exists for the guard's lifetime (removed on drop, also when the
/// test fails).
struct Namespace {
    name: String,
}

impl Namespace {
    fn create() -> Namespace {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ztrs-udp-{}-{serial}", std::process::id());
        let status = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(
            status.is_ok_and(|status| status.success()),
            "`ip netns add {name}` failed: this test needs root and iproute2"
        );
        Namespace { name }
    }

    /// Runs `ip -n <namespace> <args>`, which must succeed.
    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "ip {args:?} failed");
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A GSO segment above the path MTU makes the kernel refuse the send (`EINVAL`): GSO turns
/// off for the socket (GRO stays on), the refusal is counted, and the batch still arrives
/// (fragmented).
#[cfg(target_os = "linux")]
#[test]
fn refused_gso_falls_back_without_loss() {
    let namespace = Namespace::create();
    namespace.ip(&["link", "set", "lo", "mtu", "1280", "up"]);
    let name = namespace.name.clone();
    let thread = std::thread::spawn(move || {
        ztrs_platform::netns::enter(&name).expect("enter namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let sender = gso_sender();
            let receiver = open(UdpConfig::ip(LOCALHOST_V4, 0), BatchMode::Mmsg);
            let payloads: Vec<Vec<u8>> = (0..5u16).map(|i| numbered(i, 1400)).collect();
            let sent = sender
                .send_batch(&to(receiver.local_addr(), &payloads))
                .await
                .expect("the batch goes out without GSO");
            assert_eq!(sent, payloads.len());
            assert_eq!(
                sender.offloads(),
                Offloads {
                    gso: false,
                    gro: true,
                    gso_fallbacks: 1
                }
            );
            let got: Vec<Vec<u8>> = receive(&receiver, payloads.len())
                .await
                .into_iter()
                .map(|(data, _)| data)
                .collect();
            assert_eq!(got, payloads);
        });
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}
