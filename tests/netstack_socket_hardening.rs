//! Proofs of the user-space socket surface (hardening H3.1-H3.5, H3.7, H3.8): binding,
//! endpoints, cancellation, closing, timeouts and connecting by name, each on an in-process
//! lab network.

mod netstack_support;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netstack_support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use ztrs::lab::{LabMember, LabOptions};
use ztrs::wire::NetworkId;

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
    // UDP is not retransmitted: warm the path (ARP, peer paths) on another port first, so
    // the single datagram below cannot be lost to a resolution still in progress.
    let warm = b.netstack.bind_udp(v4(b, 7131)).unwrap();
    let warmed = async {
        loop {
            peer.send_to(b"warm", v4(b, 7131)).await.unwrap();
            let mut buf = [0u8; 8];
            if timeout(Duration::from_millis(300), warm.recv_from(&mut buf))
                .await
                .is_ok()
            {
                break;
            }
        }
    };
    timeout(BOUND, warmed)
        .await
        .expect("the path to b carries UDP");
    drop(warm);
    // A receiver waits on the socket (it got one datagram, then waits for the next).
    let receiver = {
        let socket = socket.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            socket.recv_from(&mut buf).await.unwrap();
            socket.recv_from(&mut buf).await
        })
    };
    let before = b.netstack.counters().udp_datagrams_received;
    peer.send_to(b"one", v4(b, 7130)).await.unwrap();
    eventually("the receiver got its datagram", BOUND, || async {
        b.netstack.counters().udp_datagrams_received > before
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

/// H6.3: concurrent local-port allocation never hands one port out twice. Ports are chosen
/// under the stack's lock and skip every port in use, so 40 connects racing from one member
/// (and 24 racing UDP binds to port 0) all succeed on distinct local ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h6_3_racing_connects_and_binds_get_distinct_ports() {
    const PORT: u16 = 7170;
    const CONNECTS: usize = 40;
    const BINDS: usize = 24;
    let (lab, _faults) = lab().await;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.listen(v4(b, PORT), 64).unwrap();
    let target = v4(b, PORT);
    let connects: Vec<_> = (0..CONNECTS)
        .map(|_| {
            let netstack = a.netstack.clone();
            tokio::spawn(async move { timeout(BOUND, netstack.connect(target)).await })
        })
        .collect();
    let binds: Vec<_> = (0..BINDS)
        .map(|_| {
            let netstack = a.netstack.clone();
            let any = v4(a, 0);
            tokio::spawn(async move { netstack.bind_udp(any) })
        })
        .collect();
    let mut streams = Vec::new();
    for task in connects {
        streams.push(task.await.unwrap().unwrap().unwrap());
    }
    let mut ports: Vec<u16> = streams.iter().map(|s| s.local_addr().port()).collect();
    let mut sockets = Vec::new();
    for task in binds {
        sockets.push(task.await.unwrap().unwrap());
    }
    ports.extend(sockets.iter().map(|s| s.local_addr().port()));
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ports.len(),
        "a port was handed out twice: {ports:?}"
    );
    for _ in 0..CONNECTS {
        accept(&listener).await;
    }
    lab.shutdown().await;
}
