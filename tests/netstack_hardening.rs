//! Proofs of the user-space stack's socket semantics (hardening H1.1-H1.7, H3.1-H3.5, H3.7,
//! H3.8): each test runs an in-process lab network and checks one requirement end to end.
//! The stacks' outbound filter records the TCP segments of watched ports and loses chosen
//! ones (a handshake's final ACK, IPv6 SYNs), so the tests see what went on the wire.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use ztrs::lab::{Lab, LabMember, LabOptions};
use ztrs::netstack::{NetstackConfig, TcpListener, TcpStream};
use ztrs::service::impair::Impairment;
use ztrs::wire::NetworkId;

/// Upper bound on every awaited event (far above the expected time, far below a hang).
const BOUND: Duration = Duration::from_secs(10);
/// An address of the lab's IPv4 subnet that no member holds: nobody answers its ARP.
const NOBODY: [u8; 4] = [10, 147, 17, 254];
/// Segments kept by the recorder (only watched ports are recorded).
const LOG_LIMIT: usize = 200_000;

/// What the outbound filter saw of one TCP segment.
#[derive(Clone, Copy, Debug)]
struct Segment {
    v6: bool,
    src: u16,
    dst: u16,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    seq: u32,
    window: u16,
    len: usize,
}

#[derive(Default)]
struct FaultState {
    watched: BTreeSet<u16>,
    log: Vec<Segment>,
    lose_first_ack_to: BTreeSet<u16>,
    blackhole_v6_syns_to: BTreeSet<u16>,
    lost: Vec<Segment>,
}

/// The rules and records of the outbound filter every member of a lab shares.
#[derive(Default)]
struct Faults(Mutex<FaultState>);

fn segment_of(packet: &[u8]) -> Option<Segment> {
    let sliced = SlicedPacket::from_ip(packet).ok()?;
    let v6 = matches!(sliced.net, Some(NetSlice::Ipv6(_)));
    let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
        return None;
    };
    Some(Segment {
        v6,
        src: tcp.source_port(),
        dst: tcp.destination_port(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        seq: tcp.sequence_number(),
        window: tcp.window_size(),
        len: tcp.payload().len(),
    })
}

impl Faults {
    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.lock().unwrap()
    }

    /// The filter's verdict: true loses the packet.
    fn judge(&self, packet: &[u8]) -> bool {
        let Some(seg) = segment_of(packet) else {
            return false;
        };
        let mut state = self.state();
        if (state.watched.contains(&seg.src) || state.watched.contains(&seg.dst))
            && state.log.len() < LOG_LIMIT
        {
            state.log.push(seg);
        }
        let pure_ack = seg.ack && !seg.syn && !seg.fin && !seg.rst && seg.len == 0;
        let lose = (pure_ack && state.lose_first_ack_to.remove(&seg.dst))
            || (seg.v6 && seg.syn && !seg.ack && state.blackhole_v6_syns_to.contains(&seg.dst));
        if lose {
            state.lost.push(seg);
        }
        lose
    }

    fn watch(&self, port: u16) {
        self.state().watched.insert(port);
    }

    fn seen(&self, pick: impl Fn(&Segment) -> bool) -> Vec<Segment> {
        self.state().log.iter().copied().filter(pick).collect()
    }

    fn lost(&self) -> Vec<Segment> {
        self.state().lost.clone()
    }
}

async fn lab_with(mut options: LabOptions) -> (Lab, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let judge = faults.clone();
    options.netstack.outbound_filter = Some(Arc::new(move |p: &[u8]| judge.judge(p)));
    (Lab::start(options).await.expect("lab started"), faults)
}

async fn lab() -> (Lab, Arc<Faults>) {
    lab_with(LabOptions::default()).await
}

fn at(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

fn v4(member: &LabMember, port: u16) -> SocketAddr {
    at(member.ipv4().expect("IPv4 address"), port)
}

fn v6(member: &LabMember, port: u16) -> SocketAddr {
    at(member.ipv6().expect("IPv6 address"), port)
}

/// The member's user-space report of the lab network (sockets, device counters...).
async fn report(lab: &Lab, member: usize) -> serde_json::Value {
    let nwid = lab.nwid;
    lab.members[member]
        .handle
        .inspect_attached(move |_, attachment| attachment.and_then(|a| a.network_report(nwid)))
        .await
        .expect("inspect")
        .unwrap_or(json!({}))
}

async fn sockets(lab: &Lab, member: usize) -> u64 {
    report(lab, member).await["sockets"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// Re-checks `condition` (every 20 ms) until it holds; fails naming `what` after `bound`.
async fn eventually<F, Fut>(what: &str, bound: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(member: &LabMember, to: SocketAddr) -> TcpStream {
    timeout(BOUND, member.netstack.connect(to))
        .await
        .unwrap_or_else(|_| panic!("connect to {to} within {BOUND:?}"))
        .unwrap_or_else(|e| panic!("connect to {to}: {e}"))
}

async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    timeout(BOUND, listener.accept())
        .await
        .expect("accept within bound")
        .expect("accept")
}

/// The lab still carries a fresh connection both ways (no driver died on the way).
async fn assert_healthy(lab: &Lab, port: u16) {
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.bind_tcp(v4(b, port)).unwrap();
    let mut client = connect(a, v4(b, port)).await;
    let (mut server, _) = accept(&listener).await;
    client.write_all(b"still alive").await.unwrap();
    let mut got = [0u8; 11];
    timeout(BOUND, server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"still alive");
}

fn is_orderly_end(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
}

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
async fn h1_6_backlog_is_bounded_refusals_are_counted_and_queued_ones_accepted() {
    const PORT: u16 = 7107;
    const BACKLOG: usize = 4;
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.listen(v4(b, PORT), BACKLOG).unwrap();
    let idle_b = sockets(&lab, 1).await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let netstack = a.netstack.clone();
        let to = v4(b, PORT);
        attempts.spawn(async move { netstack.connect_timeout(to, BOUND).await });
    }
    let mut clients = Vec::new();
    while let Some(joined) = attempts.join_next().await {
        match joined.unwrap() {
            Ok(stream) => clients.push(stream),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e:?}"),
        }
    }
    eventually("refusals counted in listenBacklogFull", BOUND, || async {
        b.netstack.counters().listen_backlog_full > 0
    })
    .await;
    let bound = idle_b + BACKLOG as u64;
    eventually("memory stays bounded by the backlog", BOUND, || async {
        sockets(&lab, 1).await <= bound
    })
    .await;
    // The queued connections are accepted and carry data.
    for i in 0..BACKLOG {
        let (mut server, peer) = accept(&listener).await;
        let client = clients
            .iter_mut()
            .find(|c| c.local_addr() == peer)
            .unwrap_or_else(|| panic!("accepted {peer} is one of the clients"));
        server.write_all(&[i as u8]).await.unwrap();
        let mut got = [0u8; 1];
        timeout(BOUND, client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got[0], i as u8);
    }
    // With room again, a new connection is taken.
    let _late = connect(a, v4(b, PORT)).await;
    accept(&listener).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_1_unspecified_binds_cover_every_address_of_the_family() {
    let mut options = LabOptions::default();
    options.network["v6AssignMode"] = json!({"rfc4193": true, "6plane": true});
    let (lab, _faults) = lab_with(options).await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let six = |m: &LabMember| -> Vec<IpAddr> {
        let addrs = m.netstack.addresses().into_iter().map(|(_, ip, _)| ip);
        addrs.filter(IpAddr::is_ipv6).collect()
    };
    let (b6, a6) = (six(b), six(a));
    assert_eq!(b6.len(), 2, "rfc4193 and 6plane addresses: {b6:?}");
    let b4 = b.ipv4().unwrap();
    // `::` covers both IPv6 addresses; `0.0.0.0` the IPv4 one and no IPv6 one.
    let any6 = b.netstack.bind_tcp("[::]:7111".parse().unwrap()).unwrap();
    for ip in &b6 {
        let client = connect(a, at(*ip, 7111)).await;
        let (_server, _) = accept(&any6).await;
        let local = client.local_addr().ip();
        assert!(a6.contains(&local), "managed source {local} for {ip}");
    }
    let any4 = b
        .netstack
        .bind_tcp("0.0.0.0:7112".parse().unwrap())
        .unwrap();
    let client = connect(a, at(b4, 7112)).await;
    assert_eq!(accept(&any4).await.0.local_addr(), at(b4, 7112));
    assert_eq!(Some(client.local_addr().ip()), a.ipv4().map(IpAddr::from));
    let refused = a.netstack.connect(at(b6[0], 7112)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    // The same port on each managed address separately; overlapping binds are refused.
    let mut listeners = Vec::new();
    for ip in b6.iter().copied().chain([IpAddr::from(b4)]) {
        listeners.push((ip, b.netstack.bind_tcp(at(ip, 7113)).unwrap()));
    }
    for taken in [at(b4, 7113), "0.0.0.0:7113".parse().unwrap()] {
        let err = b.netstack.bind_tcp(taken).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{taken}");
    }
    for (ip, listener) in &listeners {
        let _client = connect(a, at(*ip, 7113)).await;
        assert_eq!(accept(listener).await.0.local_addr(), at(*ip, 7113));
    }
    // A scope id does not break a non-link-local address.
    let IpAddr::V6(b6_first) = b6[0] else {
        panic!()
    };
    let scoped = SocketAddr::V6(SocketAddrV6::new(b6_first, 7111, 0, 5));
    let _scoped = connect(a, scoped).await;
    accept(&any6).await;
    // UDP follows the same rules.
    let udp_any = b
        .netstack
        .bind_udp("0.0.0.0:7114".parse().unwrap())
        .unwrap();
    let udp_pair: Vec<_> = b6
        .iter()
        .map(|ip| b.netstack.bind_udp(at(*ip, 7114)).unwrap())
        .collect();
    let sender = a.netstack.bind_udp("[::]:0".parse().unwrap()).unwrap();
    let sender4 = a.netstack.bind_udp("0.0.0.0:0".parse().unwrap()).unwrap();
    sender4.send_to(b"v4", at(b4, 7114)).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = timeout(BOUND, udp_any.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"v4");
    for (ip, socket) in b6.iter().zip(&udp_pair) {
        sender.send_to(b"v6", at(*ip, 7114)).await.unwrap();
        let (n, from) = timeout(BOUND, socket.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"v6");
        assert!(a6.contains(&from.ip()), "{from}");
    }
    // Both families' unspecified bindings of one port take their own family only.
    let udp_any6 = b.netstack.bind_udp("[::]:7115".parse().unwrap()).unwrap();
    let udp_any4 = b
        .netstack
        .bind_udp("0.0.0.0:7115".parse().unwrap())
        .unwrap();
    sender.send_to(b"six", at(b6[1], 7115)).await.unwrap();
    sender4.send_to(b"four", at(b4, 7115)).await.unwrap();
    for (socket, expected) in [(&udp_any6, &b"six"[..]), (&udp_any4, &b"four"[..])] {
        let (n, _) = timeout(BOUND, socket.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], expected);
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_2_accepted_streams_report_the_clients_endpoint() {
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    for (to, any) in [(v4(b, 7120), "0.0.0.0:7120"), (v6(b, 7121), "[::]:7121")] {
        let listener = b.netstack.bind_tcp(any.parse().unwrap()).unwrap();
        let client = connect(a, to).await;
        let (server, remote) = accept(&listener).await;
        assert_eq!(remote, client.local_addr());
        assert_eq!(server.peer_addr(), client.local_addr());
        assert_eq!(client.peer_addr(), server.local_addr());
        assert_eq!(server.local_addr(), to);
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_3_dropping_connects_and_stopping_mid_connect_return_promptly() {
    let (lab, _faults) = lab().await;
    let a = &lab.members[0];
    let idle = sockets(&lab, 0).await;
    // Dropping a connect in flight (nobody answers ARP for NOBODY) releases its socket.
    let netstack = a.netstack.clone();
    let connects = a.netstack.counters().tcp_connects;
    let attempt = tokio::spawn(async move { netstack.connect(at(NOBODY, 80)).await });
    eventually("the connect is in flight", BOUND, || async {
        a.netstack.counters().tcp_connects > connects
    })
    .await;
    attempt.abort();
    let started = Instant::now();
    assert!(
        timeout(BOUND, attempt)
            .await
            .unwrap()
            .unwrap_err()
            .is_cancelled()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "dropped promptly"
    );
    eventually(
        "the dropped connect's socket is released",
        BOUND,
        || async { sockets(&lab, 0).await <= idle },
    )
    .await;
    // A join that can never complete (no such controller) does not hold up a stop.
    let b = &lab.members[1];
    b.handle
        .with_node_mut(|node, now| node.join(now, NetworkId(0xdead_beef_0000_0001)))
        .await
        .unwrap()
        .unwrap();
    timeout(BOUND, b.handle.shutdown())
        .await
        .expect("prompt stop mid-join");
    // Stopping the lab with connects in flight returns promptly; they fail, not hang.
    let mut pending = tokio::task::JoinSet::new();
    for port in 81..84 {
        let netstack = a.netstack.clone();
        pending.spawn(async move { netstack.connect(at(NOBODY, port)).await });
    }
    eventually("the connects are in flight", BOUND, || async {
        a.netstack.counters().tcp_connects >= connects + 4
    })
    .await;
    timeout(BOUND, lab.shutdown())
        .await
        .expect("prompt shutdown");
    while let Some(joined) = timeout(BOUND, pending.join_next()).await.unwrap() {
        let err = joined.unwrap().expect_err("no connection to nobody");
        assert_eq!(err.kind(), ErrorKind::ConnectionAborted, "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_4_udp_close_is_idempotent_concurrent_and_wakes_receivers() {
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let socket = Arc::new(b.netstack.bind_udp(v4(b, 7130)).unwrap());
    let peer = a.netstack.bind_udp("0.0.0.0:0".parse().unwrap()).unwrap();
    // A receiver waits on the socket (it got one datagram, then waits for the next).
    let receiver = {
        let socket = socket.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            socket.recv_from(&mut buf).await.unwrap();
            socket.recv_from(&mut buf).await
        })
    };
    peer.send_to(b"one", v4(b, 7130)).await.unwrap();
    eventually("the receiver got its datagram", BOUND, || async {
        b.netstack.counters().udp_datagrams_received >= 1
    })
    .await;
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut closers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (socket, barrier) = (socket.clone(), barrier.clone());
        closers.spawn(async move {
            barrier.wait().await;
            socket.close();
            socket.close();
        });
    }
    while let Some(joined) = timeout(BOUND, closers.join_next()).await.unwrap() {
        joined.expect("close does not panic");
    }
    let err = timeout(BOUND, receiver)
        .await
        .expect("a waiting receiver wakes on close")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    let err = socket.send_to(b"x", v4(a, 9)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    let err = socket.recv_from(&mut [0u8; 4]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    // The port is free again.
    drop(b.netstack.bind_udp(v4(b, 7130)).unwrap());
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_5_timeouts_are_timeouts_and_nothing_else_is() {
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let err = timeout(
        BOUND,
        a.netstack
            .connect_timeout(at(NOBODY, 80), Duration::from_millis(300)),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");
    // Refused within a generous timeout: refused, not timed out.
    let err = a
        .netstack
        .connect_timeout(v4(b, 7140), BOUND)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
    // A connect cancelled by a select branch ends as the caller chose, and its socket goes.
    let idle = sockets(&lab, 0).await;
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let connects = a.netstack.counters().tcp_connects;
    let netstack = a.netstack.clone();
    let raced = tokio::spawn(async move {
        tokio::select! {
            result = netstack.connect(at(NOBODY, 81)) => Some(result.map(|_| ())),
            _ = cancelled => None,
        }
    });
    eventually("the connect is in flight", BOUND, || async {
        a.netstack.counters().tcp_connects > connects
    })
    .await;
    cancel.send(()).unwrap();
    assert!(timeout(BOUND, raced).await.unwrap().unwrap().is_none());
    eventually(
        "the cancelled connect's socket is released",
        BOUND,
        || async { sockets(&lab, 0).await <= idle },
    )
    .await;
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_7_shutdown_write_port_zero_and_default_backlog() {
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    // Port 0 picks distinct ephemeral ports.
    let l1 = b.netstack.bind_tcp(v4(b, 0)).unwrap();
    let l2 = b.netstack.bind_tcp(v4(b, 0)).unwrap();
    let u1 = b.netstack.bind_udp(v4(b, 0)).unwrap();
    for port in [
        l1.local_addr().port(),
        l2.local_addr().port(),
        u1.local_addr().port(),
    ] {
        assert!(port >= 49152, "ephemeral port {port}");
    }
    assert_ne!(l1.local_addr(), l2.local_addr());
    // shutdown(Write): queued data first, then FIN; reads keep working; writes fail.
    let mut client = connect(a, l1.local_addr()).await;
    let (mut server, _) = accept(&l1).await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&payload).await.unwrap();
    client.shutdown().await.unwrap();
    let err = client.write_all(b"late").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    timeout(BOUND, server.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == payload, "all queued data before EOF");
    server.write_all(b"still readable").await.unwrap();
    let mut reply = [0u8; 14];
    timeout(BOUND, client.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&reply, b"still readable");
    // There is no shutdown(Read): dropping the read half alone leaves the write half working.
    let client = connect(a, l2.local_addr()).await;
    let (mut server, _) = accept(&l2).await;
    let (read_half, mut write_half) = client.into_split();
    drop(read_half);
    write_half.write_all(b"write half works").await.unwrap();
    let mut got = [0u8; 16];
    timeout(BOUND, server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"write half works");
    // Backlog 0 means the default (64): 8 waiting connections all stay queued.
    let listener = b.netstack.listen(v4(b, 7150), 0).unwrap();
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(connect(a, v4(b, 7150)).await);
    }
    for _ in 0..8 {
        accept(&listener).await;
    }
    assert_eq!(b.netstack.counters().listen_backlog_full, 0);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_8_connect_by_name_does_not_stall_on_a_black_holed_ipv6_address() {
    const PORT: u16 = 7160;
    let (lab, faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let any6 = b.netstack.bind_tcp(at([0u16; 8], PORT)).unwrap();
    let any4 = b.netstack.bind_tcp(at([0u8; 4], PORT)).unwrap();
    // An IPv4 exchange first, so `a` has learned b's IPv4 address (names list it then).
    let _warm = connect(a, v4(b, PORT)).await;
    accept(&any4).await;
    let node = b.handle.inspect(|node| node.address()).await.unwrap();
    let name = format!("{node}.zt");
    let addrs = a.netstack.resolve(&name).unwrap();
    assert!(
        addrs.len() >= 2 && addrs[0].is_ipv6(),
        "IPv6 first: {addrs:?}"
    );
    faults.state().blackhole_v6_syns_to.insert(PORT);
    let idle = sockets(&lab, 0).await;
    let started = Instant::now();
    let stream = timeout(BOUND, a.netstack.connect_host(&name, PORT))
        .await
        .expect("connect by name within the bound")
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(stream.peer_addr().is_ipv4(), "{stream:?}");
    assert!(!faults.lost().is_empty(), "the IPv6 SYN was black-holed");
    accept(&any4).await;
    drop(any6);
    eventually("the losing IPv6 attempt is aborted", BOUND, || async {
        sockets(&lab, 0).await <= idle + 1
    })
    .await;
    lab.shutdown().await;
}
