//! End-to-end tests of the HTTP proxy on loopback with the host dialer: CONNECT tunnels
//! (with bytes sent before the 200), absolute-form requests rewritten for the origin,
//! Basic authentication and every error status.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::tests_support::*;
use super::{FrontLimits, HttpProxyConfig};

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// Sends `request` to the proxy and returns everything it answers until it closes.
async fn exchange(proxy: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    String::from_utf8(read_until_closed(&mut stream).await).unwrap()
}

fn status_of(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or_default()
}

#[tokio::test]
async fn connect_tunnels_and_forwards_bytes_sent_with_the_head() {
    let echo = echo_server().await;
    let (proxy, counters) = start_http_proxy(HttpProxyConfig::default()).await;
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let request = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\nearly bytes");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert_eq!(answer, [ESTABLISHED, b"early bytes"].concat());
    let snapshot = wait_for_counters(&counters, |c| c.bytes_down == 11).await;
    assert_eq!(snapshot.bytes_up, 11);
}

#[tokio::test]
async fn absolute_form_requests_are_rewritten_for_the_origin() {
    let origin = http_origin().await;
    let (proxy, _) = start_http_proxy(HttpProxyConfig::default()).await;
    let request = format!(
        "POST http://localhost:{port}/submit?x=1#frag HTTP/1.1\r\nHost: wrong.example\r\n\
         Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\n\
         Keep-Alive: 300\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Kept: yes\r\n\
         Content-Length: 4\r\n\r\nbody",
        port = origin.port()
    );
    let response = exchange(proxy, request.as_bytes()).await;
    let (head, echoed) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let expected = format!(
        "POST /submit?x=1 HTTP/1.1\r\nHost: localhost:{port}\r\nX-Kept: yes\r\n\
         Content-Length: 4\r\nConnection: close\r\n\r\nbody",
        port = origin.port()
    );
    assert_eq!(echoed, expected);
}

#[tokio::test]
async fn absolute_form_without_a_path_asks_for_the_root() {
    let origin = http_origin().await;
    let (proxy, _) = start_http_proxy(HttpProxyConfig::default()).await;
    let request = format!("GET http://{origin} HTTP/1.0\r\n\r\n");
    let response = exchange(proxy, request.as_bytes()).await;
    assert!(
        response.contains(&format!("\r\n\r\nGET / HTTP/1.0\r\nHost: {origin}\r\n")),
        "{response}"
    );
}

#[tokio::test]
async fn basic_authentication_is_required_when_configured() {
    let echo = echo_server().await;
    let config = HttpProxyConfig {
        auth: Some(("alice".into(), "s3cret".into())),
        ..HttpProxyConfig::default()
    };
    let (proxy, counters) = start_http_proxy(config).await;

    let missing = exchange(proxy, format!("CONNECT {echo} HTTP/1.1\r\n\r\n").as_bytes()).await;
    assert_eq!(status_of(&missing), "407");
    assert!(missing.contains("Proxy-Authenticate: Basic realm=\"ztrs\"\r\n"));
    // "alice:guess"
    let wrong =
        format!("CONNECT {echo} HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6Z3Vlc3M=\r\n\r\n");
    assert_eq!(status_of(&exchange(proxy, wrong.as_bytes()).await), "407");
    // "alice:s3cret"
    let right =
        format!("CONNECT {echo} HTTP/1.1\r\nProxy-Authorization: basic YWxpY2U6czNjcmV0\r\n\r\nok");
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(right.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    assert_eq!(
        read_until_closed(&mut stream).await,
        [ESTABLISHED, b"ok"].concat()
    );
    assert_eq!(counters.snapshot().auth_failures, 2);
}

#[tokio::test]
async fn refused_requests_get_their_status_and_are_counted() {
    let (proxy, counters) = start_http_proxy(HttpProxyConfig::default()).await;
    let cases: [(&[u8], &str); 6] = [
        (b"GET https://example.com/ HTTP/1.1\r\n\r\n", "400"),
        (
            b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "405",
        ),
        (b"GET http:///path HTTP/1.1\r\n\r\n", "400"),
        (b"CONNECT example.com HTTP/1.1\r\n\r\n", "400"),
        (b"GET http://a b HTTP/1.1\r\n\r\n", "400"),
        (b"GET http://example.com/ HTTP/2.0\r\n\r\n", "505"),
    ];
    for (request, status) in cases {
        let response = exchange(proxy, request).await;
        assert_eq!(
            status_of(&response),
            status,
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(counters.snapshot().bad_requests, 6);
}

#[tokio::test]
async fn an_oversized_head_gets_431() {
    let (proxy, counters) = start_http_proxy(HttpProxyConfig::default()).await;
    let mut request = b"GET http://localhost/ HTTP/1.1\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 17 * 1024));
    let response = exchange(proxy, &request).await;
    assert_eq!(status_of(&response), "431");
    assert_eq!(counters.snapshot().bad_requests, 1);
}

#[tokio::test]
async fn an_unreachable_target_gets_502() {
    let closed = closed_port().await;
    let (proxy, counters) = start_http_proxy(HttpProxyConfig::default()).await;
    let response = exchange(
        proxy,
        format!("CONNECT {closed} HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&response), "502");
    let request = format!("GET http://{closed}/ HTTP/1.1\r\n\r\n");
    assert_eq!(status_of(&exchange(proxy, request.as_bytes()).await), "502");
    assert_eq!(counters.snapshot().connect_failures, 2);
}

#[tokio::test]
async fn a_slow_head_gets_408() {
    let config = HttpProxyConfig {
        limits: FrontLimits {
            handshake_timeout: Duration::from_millis(100),
            ..FrontLimits::default()
        },
        ..HttpProxyConfig::default()
    };
    let (proxy, counters) = start_http_proxy(config).await;
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(b"GET http://localhost/ HTTP/1.1\r\n")
        .await
        .unwrap();
    let response = String::from_utf8(read_until_closed(&mut stream).await).unwrap();
    assert_eq!(status_of(&response), "408");
    assert_eq!(counters.snapshot().handshake_timeouts, 1);
}
