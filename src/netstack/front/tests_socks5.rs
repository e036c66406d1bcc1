//! End-to-end tests of the SOCKS5 server on loopback with the host dialer, driven by a
//! client written here in raw bytes: CONNECT by IP and by name, authentication, BIND,
//! dial failures, malformed requests, pipelining, half-close, the connection limit, the
//! handshake timeout and UDP ASSOCIATE.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::tests_support::*;
use super::{FrontLimits, Socks5Config, Target};

const CONNECT: u8 = 1;
const BIND: u8 = 2;
const UDP_ASSOCIATE: u8 = 3;

fn with_auth(user: &str, pass: &str) -> Socks5Config {
    Socks5Config {
        auth: Some((user.to_owned(), pass.to_owned())),
        ..Socks5Config::default()
    }
}

async fn assert_echoes(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.unwrap();
    let mut echoed = vec![0u8; payload.len()];
    within(stream.read_exact(&mut echoed)).await.unwrap();
    assert_eq!(echoed, payload);
}

#[tokio::test]
async fn connect_by_ip_relays_and_reports_the_bound_address() {
    let echo = echo_server().await;
    let (server, counters) = start_socks5(Socks5Config::default()).await;
    let (mut stream, reply, bound) = socks5_command(server, CONNECT, &Target::Addr(echo)).await;
    assert_eq!(reply, 0);
    assert_eq!(bound.ip(), LOOPBACK);
    assert_ne!(bound.port(), 0);
    assert_echoes(&mut stream, b"hello through socks").await;
    drop(stream);
    let snapshot = wait_for_counters(&counters, |c| c.bytes_down == 19 && c.bytes_up == 19).await;
    assert_eq!(snapshot.accepted, 1);
}

#[tokio::test]
async fn connect_by_name_resolves_localhost_through_the_dialer() {
    let echo = echo_server().await;
    let (server, _) = start_socks5(Socks5Config::default()).await;
    let target = Target::Name("localhost".into(), echo.port());
    let (mut stream, reply, _) = socks5_command(server, CONNECT, &target).await;
    assert_eq!(reply, 0);
    assert_echoes(&mut stream, b"by name").await;
}

#[tokio::test]
async fn username_and_password_are_required_and_checked() {
    let echo = echo_server().await;
    let (server, counters) = start_socks5(with_auth("alice", "s3cret")).await;

    let mut stream = TcpStream::connect(server).await.unwrap();
    assert_eq!(socks5_greet(&mut stream, &[0, 2]).await, 2);
    assert_eq!(socks5_login(&mut stream, "alice", "s3cret").await, 0);
    stream
        .write_all(&socks5_request(CONNECT, &Target::Addr(echo)))
        .await
        .unwrap();
    assert_eq!(read_socks5_reply(&mut stream).await.0, 0);
    assert_echoes(&mut stream, b"authenticated").await;

    let mut wrong = TcpStream::connect(server).await.unwrap();
    assert_eq!(socks5_greet(&mut wrong, &[2]).await, 2);
    assert_eq!(socks5_login(&mut wrong, "alice", "guess").await, 1);
    assert!(read_until_closed(&mut wrong).await.is_empty());

    // A client that offers only "no authentication" is turned away.
    let mut anonymous = TcpStream::connect(server).await.unwrap();
    assert_eq!(socks5_greet(&mut anonymous, &[0]).await, 0xFF);
    assert!(read_until_closed(&mut anonymous).await.is_empty());

    assert_eq!(counters.snapshot().auth_failures, 2);
}

#[tokio::test]
async fn without_credentials_configured_a_password_only_client_is_refused() {
    let (server, counters) = start_socks5(Socks5Config::default()).await;
    let mut stream = TcpStream::connect(server).await.unwrap();
    assert_eq!(socks5_greet(&mut stream, &[2]).await, 0xFF);
    assert_eq!(counters.snapshot().auth_failures, 1);
}

#[tokio::test]
async fn bind_is_refused_as_not_supported() {
    let (server, _) = start_socks5(Socks5Config::default()).await;
    let target = Target::Addr(SocketAddr::new(LOOPBACK, 80));
    let (mut stream, reply, _) = socks5_command(server, BIND, &target).await;
    assert_eq!(reply, 0x07);
    assert!(read_until_closed(&mut stream).await.is_empty());
}

#[tokio::test]
async fn refused_and_unresolvable_targets_get_their_reply_codes() {
    let (server, counters) = start_socks5(Socks5Config::default()).await;
    let closed = Target::Addr(closed_port().await);
    assert_eq!(socks5_command(server, CONNECT, &closed).await.1, 0x05);
    let unknown = Target::Name("no-such-host.invalid".into(), 80);
    assert_eq!(socks5_command(server, CONNECT, &unknown).await.1, 0x04);
    assert_eq!(counters.snapshot().connect_failures, 2);
}

#[tokio::test]
async fn malformed_requests_get_an_error_reply_and_are_counted() {
    let (server, counters) = start_socks5(Socks5Config::default()).await;
    let mut stream = TcpStream::connect(server).await.unwrap();
    assert_eq!(socks5_greet(&mut stream, &[0]).await, 0);
    stream
        .write_all(&[5, 1, 0, 9, 1, 2, 3, 4, 0, 80])
        .await
        .unwrap();
    assert_eq!(read_socks5_reply(&mut stream).await.0, 0x08);
    assert!(read_until_closed(&mut stream).await.is_empty());

    let mut wrong_version = TcpStream::connect(server).await.unwrap();
    wrong_version
        .write_all(&[4, 1, 0, 80, 127, 0, 0, 1, 0])
        .await
        .unwrap();
    assert!(read_until_closed(&mut wrong_version).await.is_empty());
    wait_for_counters(&counters, |c| c.bad_requests == 2).await;
}

#[tokio::test]
async fn bytes_pipelined_after_the_request_reach_the_target() {
    let echo = echo_server().await;
    let (server, _) = start_socks5(Socks5Config::default()).await;
    let mut stream = TcpStream::connect(server).await.unwrap();
    let mut everything = vec![5, 1, 0];
    everything.extend_from_slice(&socks5_request(CONNECT, &Target::Addr(echo)));
    everything.extend_from_slice(b"early bytes");
    stream.write_all(&everything).await.unwrap();
    let mut method = [0u8; 2];
    stream.read_exact(&mut method).await.unwrap();
    assert_eq!(read_socks5_reply(&mut stream).await.0, 0);
    let mut echoed = [0u8; 11];
    within(stream.read_exact(&mut echoed)).await.unwrap();
    assert_eq!(&echoed, b"early bytes");
}

#[tokio::test]
async fn half_close_reaches_the_target_and_its_reply_comes_back() {
    let server_addr = reply_after_eof_server().await;
    let (server, _) = start_socks5(Socks5Config::default()).await;
    let (mut stream, reply, _) = socks5_command(server, CONNECT, &Target::Addr(server_addr)).await;
    assert_eq!(reply, 0);
    stream.write_all(&[7u8; 1000]).await.unwrap();
    stream.shutdown().await.unwrap();
    assert_eq!(read_until_closed(&mut stream).await, b"received 1000 bytes");
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_and_counted() {
    let echo = echo_server().await;
    let config = Socks5Config {
        limits: FrontLimits {
            max_connections: 1,
            ..FrontLimits::default()
        },
        ..Socks5Config::default()
    };
    let (server, counters) = start_socks5(config).await;
    let (mut first, reply, _) = socks5_command(server, CONNECT, &Target::Addr(echo)).await;
    assert_eq!(reply, 0);

    let mut second = TcpStream::connect(server).await.unwrap();
    let _ = second.write_all(&[5, 1, 0]).await;
    assert!(read_until_closed(&mut second).await.is_empty());
    assert_eq!(counters.snapshot().refused_over_limit, 1);
    assert_echoes(&mut first, b"still served").await;

    // Once the first connection ends its slot is free again.
    drop(first);
    within(async {
        loop {
            let mut next = TcpStream::connect(server).await.unwrap();
            next.write_all(&[5, 1, 0]).await.unwrap();
            let mut choice = [0u8; 2];
            if next.read_exact(&mut choice).await.is_ok() {
                assert_eq!(choice, [5, 0]);
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(counters.snapshot().accepted, 2);
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let config = Socks5Config {
        limits: FrontLimits {
            handshake_timeout: Duration::from_millis(100),
            ..FrontLimits::default()
        },
        ..Socks5Config::default()
    };
    let (server, counters) = start_socks5(config).await;
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream.write_all(&[5]).await.unwrap();
    assert!(read_until_closed(&mut stream).await.is_empty());
    assert_eq!(counters.snapshot().handshake_timeouts, 1);
}

/// Opens a UDP association; returns the control stream and the relay's address.
async fn associate(server: SocketAddr) -> (TcpStream, SocketAddr) {
    let unspecified = Target::Addr("0.0.0.0:0".parse().unwrap());
    let (control, reply, relay) = socks5_command(server, UDP_ASSOCIATE, &unspecified).await;
    assert_eq!(reply, 0);
    assert_eq!(relay.ip(), LOOPBACK);
    (control, relay)
}

fn wrap(fragment: u8, target: &Target, payload: &[u8]) -> Vec<u8> {
    let mut datagram = vec![0, 0, fragment];
    push_socks5_address(&mut datagram, target);
    datagram.extend_from_slice(payload);
    datagram
}

async fn receive(socket: &UdpSocket) -> Vec<u8> {
    let mut buffer = vec![0u8; 65_535];
    let (read, _) = within(socket.recv_from(&mut buffer)).await.unwrap();
    buffer.truncate(read);
    buffer
}

#[tokio::test]
async fn udp_associate_relays_datagrams_both_ways() {
    let echo = udp_echo_server().await;
    let (server, counters) = start_socks5(Socks5Config::default()).await;
    let (control, relay) = associate(server).await;
    let client = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();

    // A fragment is dropped; the datagram after it is relayed, so by the time its echo is
    // back the drop has been counted.
    client
        .send_to(&wrap(1, &Target::Addr(echo), b"fragment"), relay)
        .await
        .unwrap();
    client
        .send_to(&wrap(0, &Target::Addr(echo), b"by address"), relay)
        .await
        .unwrap();
    assert_eq!(
        receive(&client).await,
        wrap(0, &Target::Addr(echo), b"by address")
    );
    assert_eq!(counters.snapshot().udp_datagrams_dropped, 1);

    let by_name = Target::Name("localhost".into(), echo.port());
    client
        .send_to(&wrap(0, &by_name, b"by name"), relay)
        .await
        .unwrap();
    assert_eq!(
        receive(&client).await,
        wrap(0, &Target::Addr(echo), b"by name")
    );

    // The first datagram fixed the client's port: another port is not the client.
    let stranger = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    stranger
        .send_to(&wrap(0, &Target::Addr(echo), b"intruder"), relay)
        .await
        .unwrap();
    wait_for_counters(&counters, |c| c.udp_datagrams_dropped == 2).await;
    wait_for_counters(&counters, |c| c.udp_datagrams_relayed == 4).await;

    // Closing the control connection ends the association and releases its socket.
    drop(control);
    within(async {
        while UdpSocket::bind(relay).await.is_err() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}
