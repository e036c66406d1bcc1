//! User-space stacks end to end: two members of an in-process private network (root and
//! controller included, all on 127.0.0.1) talk TCP and UDP through their smoltcp stacks.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use ztrs::lab::{Lab, LabOptions};

const BOUND: Duration = Duration::from_secs(30);

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_udp_between_two_user_space_members() {
    let lab = Lab::start(LabOptions::default()).await.expect("lab");
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let b_ip = b.ipv4().expect("b has IPv4");

    // TCP: b echoes what it reads until EOF; a sends 2 MB and half-closes.
    let listener = b
        .netstack
        .bind_tcp("0.0.0.0:7000".parse().unwrap())
        .unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, remote) = listener.accept().await.unwrap();
        let mut buf = vec![0; 65536];
        let mut total = 0;
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).await.unwrap();
            total += n;
        }
        stream.shutdown().await.unwrap();
        (total, remote)
    });
    let data = pattern(2 << 20);
    let exchange = async {
        let stream = a
            .netstack
            .connect(SocketAddr::new(b_ip.into(), 7000))
            .await
            .unwrap();
        let local = stream.local_addr();
        let (mut rd, mut wr) = stream.into_split();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            wr.write_all(&sent).await.unwrap();
            wr.shutdown().await.unwrap();
            wr
        });
        let mut echoed = Vec::new();
        rd.read_to_end(&mut echoed).await.unwrap();
        let _wr = writer.await.unwrap();
        (echoed, local)
    };
    let (echoed, local) = timeout(BOUND, exchange).await.expect("TCP echo finished");
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed bytes differ");
    let (total, remote) = timeout(BOUND, server).await.unwrap().unwrap();
    assert_eq!(total, data.len());
    assert_eq!(
        remote, local,
        "accepted stream reports the connecting endpoint (H3.2)"
    );

    // UDP echo over IPv4 and IPv6.
    for (any, target) in [
        ("0.0.0.0", b_ip.into()),
        ("::", b.ipv6().expect("b has IPv6")),
    ] {
        let any: std::net::IpAddr = any.parse().unwrap();
        let echo = b.netstack.bind_udp(SocketAddr::new(any, 7001)).unwrap();
        let udp_server = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let (n, from) = echo.recv_from(&mut buf).await.unwrap();
            echo.send_to(&buf[..n], from).await.unwrap();
        });
        let client = a.netstack.bind_udp(SocketAddr::new(any, 0)).unwrap();
        let udp = async {
            client
                .send_to(b"ping over zt", SocketAddr::new(target, 7001))
                .await
                .unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) = client.recv_from(&mut buf).await.unwrap();
            (buf[..n].to_vec(), from)
        };
        let (reply, from) = timeout(BOUND, udp)
            .await
            .unwrap_or_else(|_| panic!("UDP echo to {target} answered"));
        assert_eq!(reply, b"ping over zt");
        assert_eq!(from, SocketAddr::new(target, 7001));
        udp_server.await.unwrap();
    }
    lab.shutdown().await;
}
