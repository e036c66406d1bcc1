//! Helpers for the front-end tests: loopback servers (TCP echo, "reply after EOF", a small
//! HTTP origin that echoes what it received, UDP echo), front ends started on ephemeral
//! loopback ports with the [`HostDialer`], a raw-byte SOCKS5 client, and bounded waits.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::{
    FrontCounters, FrontCountersSnapshot, HostDialer, HttpProxyConfig, Socks5Config, Target,
    serve_http_proxy, serve_socks5,
};

/// Upper bound on any single wait in these tests (they normally take milliseconds).
pub(super) const WAIT: Duration = Duration::from_secs(10);
pub(super) const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Awaits `future`, failing the test if it takes longer than [`WAIT`].
pub(super) async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("timed out waiting")
}

/// Polls `condition` on the counters until it holds, failing after [`WAIT`].
pub(super) async fn wait_for_counters(
    counters: &FrontCounters,
    condition: impl Fn(&FrontCountersSnapshot) -> bool,
) -> FrontCountersSnapshot {
    within(async {
        loop {
            let snapshot = counters.snapshot();
            if condition(&snapshot) {
                return snapshot;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

pub(super) async fn loopback_listener() -> TcpListener {
    TcpListener::bind((LOOPBACK, 0)).await.unwrap()
}

/// A TCP server echoing every connection until EOF, then closing its side.
pub(super) async fn echo_server() -> SocketAddr {
    let listener = loopback_listener().await;
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
    addr
}

/// A TCP server that reads until EOF and only then answers `received N bytes` and closes:
/// it answers only if the half-close reached it.
pub(super) async fn reply_after_eof_server() -> SocketAddr {
    let listener = loopback_listener().await;
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut received = Vec::new();
                if stream.read_to_end(&mut received).await.is_ok() {
                    let reply = format!("received {} bytes", received.len());
                    let _ = stream.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    addr
}

/// An HTTP origin: reads a head (and a `Content-Length` body), answers 200 with a body that
/// is exactly the bytes it received, then closes.
pub(super) async fn http_origin() -> SocketAddr {
    let listener = loopback_listener().await;
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut received = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if let Some(end) = super::http_proxy::parse::find_head_end(&received, 0) {
                        let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
                        let body_len = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .map_or(0, |len| len.trim().parse::<usize>().unwrap());
                        if received.len() >= end + body_len {
                            break;
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => received.extend_from_slice(&chunk[..read]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    received.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&received).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// A UDP server echoing every datagram to its sender.
pub(super) async fn udp_echo_server() -> SocketAddr {
    let socket = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65_535];
        while let Ok((read, from)) = socket.recv_from(&mut buffer).await {
            let _ = socket.send_to(&buffer[..read], from).await;
        }
    });
    addr
}

/// A SOCKS5 server on an ephemeral loopback port, dialing with the host's sockets.
pub(super) async fn start_socks5(config: Socks5Config) -> (SocketAddr, Arc<FrontCounters>) {
    let listener = loopback_listener().await;
    let addr = listener.local_addr().unwrap();
    let counters = Arc::new(FrontCounters::default());
    let dialer = Arc::new(HostDialer::default());
    tokio::spawn(serve_socks5(
        listener,
        dialer,
        config,
        Arc::clone(&counters),
    ));
    (addr, counters)
}

/// An HTTP proxy on an ephemeral loopback port, dialing with the host's sockets.
pub(super) async fn start_http_proxy(config: HttpProxyConfig) -> (SocketAddr, Arc<FrontCounters>) {
    let listener = loopback_listener().await;
    let addr = listener.local_addr().unwrap();
    let counters = Arc::new(FrontCounters::default());
    let dialer = Arc::new(HostDialer::default());
    tokio::spawn(serve_http_proxy(
        listener,
        dialer,
        config,
        Arc::clone(&counters),
    ));
    (addr, counters)
}

/// A loopback address nothing listens on (a port just released).
pub(super) async fn closed_port() -> SocketAddr {
    let listener = loopback_listener().await;
    listener.local_addr().unwrap()
}

/// Greets a SOCKS5 server offering `methods`; returns the method it chose.
pub(super) async fn socks5_greet(stream: &mut TcpStream, methods: &[u8]) -> u8 {
    let mut greeting = vec![5, u8::try_from(methods.len()).unwrap()];
    greeting.extend_from_slice(methods);
    stream.write_all(&greeting).await.unwrap();
    let mut choice = [0u8; 2];
    within(stream.read_exact(&mut choice)).await.unwrap();
    assert_eq!(choice[0], 5, "method selection version");
    choice[1]
}

/// Sends RFC 1929 credentials; returns the status byte (0 = accepted).
pub(super) async fn socks5_login(stream: &mut TcpStream, user: &str, pass: &str) -> u8 {
    let mut message = vec![1, u8::try_from(user.len()).unwrap()];
    message.extend_from_slice(user.as_bytes());
    message.push(u8::try_from(pass.len()).unwrap());
    message.extend_from_slice(pass.as_bytes());
    stream.write_all(&message).await.unwrap();
    let mut status = [0u8; 2];
    within(stream.read_exact(&mut status)).await.unwrap();
    assert_eq!(status[0], 1, "subnegotiation version");
    status[1]
}

/// Encodes a SOCKS5 request (or, with `command` ignored, the address part of a UDP header).
pub(super) fn socks5_request(command: u8, target: &Target) -> Vec<u8> {
    let mut request = vec![5, command, 0];
    push_socks5_address(&mut request, target);
    request
}

pub(super) fn push_socks5_address(out: &mut Vec<u8>, target: &Target) {
    match target {
        Target::Addr(SocketAddr::V4(addr)) => {
            out.push(1);
            out.extend_from_slice(&addr.ip().octets());
        }
        Target::Addr(SocketAddr::V6(addr)) => {
            out.push(4);
            out.extend_from_slice(&addr.ip().octets());
        }
        Target::Name(host, _) => {
            out.push(3);
            out.push(u8::try_from(host.len()).unwrap());
            out.extend_from_slice(host.as_bytes());
        }
    }
    out.extend_from_slice(&target.port().to_be_bytes());
}

/// Reads a SOCKS5 reply: (REP, BND address).
pub(super) async fn read_socks5_reply(stream: &mut TcpStream) -> (u8, SocketAddr) {
    let mut head = [0u8; 4];
    within(stream.read_exact(&mut head)).await.unwrap();
    assert_eq!(head[0], 5, "reply version");
    let ip = match head[3] {
        1 => {
            let mut octets = [0u8; 4];
            stream.read_exact(&mut octets).await.unwrap();
            IpAddr::from(octets)
        }
        4 => {
            let mut octets = [0u8; 16];
            stream.read_exact(&mut octets).await.unwrap();
            IpAddr::from(octets)
        }
        other => panic!("unexpected reply address type {other}"),
    };
    let mut port = [0u8; 2];
    stream.read_exact(&mut port).await.unwrap();
    (head[1], SocketAddr::new(ip, u16::from_be_bytes(port)))
}

/// Connects to a no-auth SOCKS5 server and sends `command` for `target`; returns the
/// stream and the reply.
pub(super) async fn socks5_command(
    server: SocketAddr,
    command: u8,
    target: &Target,
) -> (TcpStream, u8, SocketAddr) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    assert_eq!(socks5_greet(&mut stream, &[0]).await, 0);
    stream
        .write_all(&socks5_request(command, target))
        .await
        .unwrap();
    let (reply, bound) = read_socks5_reply(&mut stream).await;
    (stream, reply, bound)
}

/// Reads until the peer closes; returns what it sent (a reset counts as a close).
pub(super) async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let _ = within(stream.read_to_end(&mut received)).await;
    received
}
