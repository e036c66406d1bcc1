//! Proofs of the user-space stack's TCP semantics (hardening H1.1-H1.7): each test runs an
//! in-process lab network and checks one requirement end to end, on the wire where it
//! matters (`netstack_support`).

mod netstack_support;

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use netstack_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use ztrs::lab::{Lab, LabOptions};
use ztrs::netstack::{NetstackConfig, TcpListener, TcpStream};
use ztrs::service::impair::Impairment;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_1_close_sends_one_fin_and_the_peer_reads_eof() {
    const PORT: u16 = 7101;
    let (lab, faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    faults.watch(PORT);
    let listener = b.netstack.bind_tcp(v4(b, PORT)).unwrap();
    let idle_sockets = sockets(&lab, 0).await;
    // Closing by dropping the stream, and by dropping both halves (write half first).
    for split in [false, true] {
        let mut client = connect(a, v4(b, PORT)).await;
        let client_port = client.local_addr().port();
        let (mut server, _) = accept(&listener).await;
        client.write_all(b"last words").await.unwrap();
        if split {
            let (read_half, write_half) = client.into_split();
            drop(write_half);
            drop(read_half);
        } else {
            drop(client);
        }
        let mut got = Vec::new();
        timeout(BOUND, server.read_to_end(&mut got))
            .await
            .expect("the peer reads EOF within the bound")
            .unwrap();
        assert_eq!(got, b"last words", "nothing is delivered after close");
        assert_eq!(server.read(&mut [0u8; 16]).await.unwrap(), 0, "EOF again");
        drop(server);
        eventually("the closed client socket is reclaimed", BOUND, || async {
            sockets(&lab, 0).await <= idle_sockets
        })
        .await;
        let fins = faults.seen(|s| s.src == client_port && s.fin);
        assert_eq!(fins.len(), 1, "exactly one FIN from the client: {fins:?}");
        let fin_seq = fins[0].seq.wrapping_add(fins[0].len as u32);
        let late = faults.seen(|s| {
            s.src == client_port && s.len > 0 && {
                let end = s.seq.wrapping_add(s.len as u32);
                (end.wrapping_sub(fin_seq) as i32) > 0
            }
        });
        assert!(late.is_empty(), "data sent after the FIN: {late:?}");
        let server_fins = faults.seen(|s| s.dst == client_port && s.fin);
        assert_eq!(server_fins.len(), 1, "one FIN from the server");
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_2_lost_final_ack_is_recovered_and_the_server_speaks_first() {
    const PORT: u16 = 7102;
    let (lab, faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    faults.watch(PORT);
    faults.state().lose_first_ack_to.insert(PORT);
    let listener = b.netstack.bind_tcp(v4(b, PORT)).unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"server speaks first").await.unwrap();
        let mut answer = [0u8; 14];
        stream.read_exact(&mut answer).await.unwrap();
        answer
    });
    let mut client = connect(a, v4(b, PORT)).await;
    let mut greeting = [0u8; 19];
    timeout(BOUND, client.read_exact(&mut greeting))
        .await
        .expect("the handshake completes despite the lost ACK")
        .unwrap();
    assert_eq!(&greeting, b"server speaks first");
    client.write_all(b"client answers").await.unwrap();
    let answer = timeout(BOUND, server).await.unwrap().unwrap();
    assert_eq!(&answer, b"client answers");
    let lost = faults.lost();
    assert_eq!(lost.len(), 1, "exactly the final ACK was lost: {lost:?}");
    let syn_acks = faults.seen(|s| s.src == PORT && s.syn && s.ack);
    assert!(syn_acks.len() >= 2, "SYN-ACK retransmitted: {syn_acks:?}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_3_closing_while_data_arrives_ends_cleanly_and_reclaims_sockets() {
    const PORT: u16 = 7103;
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.bind_tcp(v4(b, PORT)).unwrap();
    let (idle_a, idle_b) = (sockets(&lab, 0).await, sockets(&lab, 1).await);
    let mut client = connect(a, v4(b, PORT)).await;
    let (mut server, _) = accept(&listener).await;
    // More than both buffers hold: it cannot finish once the server stops reading.
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5a; 64 * 1024];
        let mut sent = 0usize;
        while sent < 64 << 20 {
            sent += client.write(&chunk).await?;
        }
        Ok::<usize, std::io::Error>(sent)
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0;
    while read < 256 * 1024 {
        let n = timeout(BOUND, server.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "no EOF while the client writes");
        read += n;
    }
    drop(server);
    let outcome = timeout(BOUND, writer)
        .await
        .expect("the writer ends within the bound")
        .expect("the writer task did not panic");
    if let Err(err) = outcome {
        assert!(is_orderly_end(err.kind()), "not an internal error: {err:?}");
    }
    eventually("both sides reclaim their sockets", BOUND, || async {
        sockets(&lab, 0).await <= idle_a && sockets(&lab, 1).await <= idle_b
    })
    .await;
    assert_healthy(&lab, PORT + 50).await;
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_4_half_close_reads_the_reply_after_our_fin() {
    const PORT: u16 = 7104;
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.bind_tcp(v6(b, PORT)).unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        stream.read_to_end(&mut request).await.unwrap();
        // The peer's FIN does not end our direction.
        stream.write_all(b"reply after your FIN").await.unwrap();
        request
    });
    let mut client = connect(a, v6(b, PORT)).await;
    client.write_all(b"request").await.unwrap();
    client.shutdown().await.unwrap();
    let mut reply = Vec::new();
    timeout(BOUND, client.read_to_end(&mut reply))
        .await
        .expect("reply and EOF within the bound")
        .unwrap();
    assert_eq!(reply, b"reply after your FIN");
    assert_eq!(timeout(BOUND, server).await.unwrap().unwrap(), b"request");
    lab.shutdown().await;
}

/// Connects, fills the server's window (it never reads) and returns the server's stream and
/// the client's writer task, blocked on a zero window.
async fn blocked_writer(
    lab: &Lab,
    faults: &Faults,
    port: u16,
) -> (
    TcpStream,
    tokio::task::JoinHandle<std::io::Result<()>>,
    TcpListener,
) {
    let (a, b) = (&lab.members[0], &lab.members[1]);
    faults.watch(port);
    let listener = b.netstack.bind_tcp(v4(b, port)).unwrap();
    let mut client = connect(a, v4(b, port)).await;
    let (server, _) = accept(&listener).await;
    let writer = tokio::spawn(async move { client.write_all(&vec![1u8; 8 << 20]).await });
    eventually("the server advertises a zero window", BOUND, || async {
        !faults.seen(|s| s.src == port && s.window == 0).is_empty()
    })
    .await;
    assert!(!writer.is_finished(), "the writer is blocked on the window");
    (server, writer, listener)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_5_writer_blocked_on_zero_window_wakes_on_reset_and_on_leave() {
    let (lab, faults) = lab().await;
    // The peer drops its stream with data unread: the blocked writer gets an error.
    let (server, writer, _listener) = blocked_writer(&lab, &faults, 7105).await;
    drop(server);
    let err = timeout(BOUND, writer)
        .await
        .expect("the blocked writer wakes after the peer's close")
        .unwrap()
        .expect_err("the write cannot complete");
    assert!(is_orderly_end(err.kind()), "{err:?}");
    // The writer's node leaves the network: the blocked writer gets an error.
    let (_server, writer, _listener) = blocked_writer(&lab, &faults, 7106).await;
    let nwid = lab.nwid;
    lab.members[0]
        .handle
        .with_node_mut(move |node, _| node.leave(nwid))
        .await
        .unwrap();
    let err = timeout(BOUND, writer)
        .await
        .expect("the blocked writer wakes after leaving")
        .unwrap()
        .expect_err("the write cannot complete");
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted, "{err:?}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_6_a_full_backlog_drops_syns_and_counts_them_then_takes_the_retries() {
    const PORT: u16 = 7107;
    const BACKLOG: usize = 4;
    const CLIENTS: usize = 10;
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.listen(v4(b, PORT), BACKLOG).unwrap();
    let idle_b = sockets(&lab, 1).await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let netstack = a.netstack.clone();
        let to = v4(b, PORT);
        attempts.spawn(async move { netstack.connect_timeout(to, 4 * BOUND).await });
    }
    // Nobody accepts yet: the backlog fills, further SYNs are dropped and counted (never
    // reset, as Linux does), and the sockets stay bounded by the backlog.
    eventually(
        "SYNs beyond the backlog counted in synDropped",
        BOUND,
        || async { b.netstack.counters().syn_dropped >= (CLIENTS - BACKLOG) as u64 },
    )
    .await;
    let bound = idle_b + 2 * BACKLOG as u64;
    assert!(
        sockets(&lab, 1).await <= bound,
        "sockets bounded by the backlog"
    );
    // Accepting makes room; the clients' SYN retransmissions get in, every one connects.
    let mut accepted = Vec::new();
    for _ in 0..CLIENTS {
        accepted.push(
            timeout(4 * BOUND, listener.accept())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let mut clients = Vec::new();
    while let Some(joined) = attempts.join_next().await {
        clients.push(
            joined
                .unwrap()
                .expect("every client connects once there is room"),
        );
    }
    for (i, (server, peer)) in accepted.iter_mut().enumerate() {
        let client = clients
            .iter_mut()
            .find(|c| c.local_addr() == *peer)
            .unwrap_or_else(|| panic!("accepted {peer} is one of the clients"));
        server.write_all(&[i as u8]).await.unwrap();
        let mut got = [0u8; 1];
        timeout(BOUND, client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got[0], i as u8);
    }
    assert_eq!(
        b.netstack.counters().listen_backlog_full,
        0,
        "nothing was reset"
    );
    lab.shutdown().await;
}

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_7_bulk_transfer_under_queue_pressure_loses_nothing_silently() {
    const PORT: u16 = 7108;
    const TOTAL: usize = 20 << 20;
    const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;
    // Windows far larger than the device queues press on them; a reordering, duplicating
    // underlay makes TCP's recovery paths work too.
    let options = LabOptions {
        netstack: NetstackConfig {
            tcp_rx_buffer: 4 << 20,
            tcp_tx_buffer: 4 << 20,
            ..NetstackConfig::default()
        },
        impairment: Some(Impairment {
            duplicate: 0.01,
            reorder: 0.02,
            reorder_ms: 5,
            seed: 7,
            ..Impairment::default()
        }),
        ..LabOptions::default()
    };
    let (lab, _faults) = lab_with(options).await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.bind_tcp(v4(b, PORT)).unwrap();
    let mut client = connect(a, v4(b, PORT)).await;
    let (mut server, _) = accept(&listener).await;
    let writer = tokio::spawn(async move {
        let mut hash = FNV_START;
        for i in 0..TOTAL / 65536 {
            let chunk: Vec<u8> = (0..65536)
                .map(|j| (i * 31 + j * 7 + j / 253) as u8)
                .collect();
            hash = fnv(hash, &chunk);
            client.write_all(&chunk).await.unwrap();
        }
        client.shutdown().await.unwrap();
        hash
    });
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = progress.clone();
    let reader = tokio::spawn(async move {
        let (mut hash, mut total) = (FNV_START, 0usize);
        let mut buf = vec![0u8; 65536];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                return (hash, total);
            }
            hash = fnv(hash, &buf[..n]);
            total += n;
            seen.store(total, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Control traffic during the bulk transfer: a new connection and an exchange.
    eventually("the bulk transfer is under way", BOUND, || async {
        progress.load(std::sync::atomic::Ordering::Relaxed) >= 1 << 20
    })
    .await;
    assert_healthy(&lab, PORT + 1).await;
    let sent = timeout(Duration::from_secs(60), writer)
        .await
        .unwrap()
        .unwrap();
    let (received, total) = timeout(BOUND, reader).await.unwrap().unwrap();
    assert_eq!(total, TOTAL);
    assert_eq!(received, sent, "the bytes arrived intact");
    for member in 0..2 {
        let report = report(&lab, member).await;
        let (device, boundary) = (&report["device"], &report["boundary"]);
        let count = |v: &serde_json::Value, name: &str| v[name].as_u64().expect(name);
        // Every packet the boundary passed to the stack was taken or counted as dropped.
        let accounted = count(device, "packetsIn") + count(device, "rxQueueFull");
        let delivered = count(boundary, "to_tun_delivered");
        assert!(accounted >= delivered, "member {member}: {report}");
        assert_eq!(count(device, "txQueueFull"), 0, "member {member}: {report}");
    }
    lab.shutdown().await;
}
