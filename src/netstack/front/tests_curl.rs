//! Interoperability: the real `curl` fetching from a loopback HTTP origin through the SOCKS5
//! server (name resolved by the proxy) and through the HTTP proxy (absolute form and
//! CONNECT tunnel), with and without credentials. curl is required: a missing curl fails.

use std::net::SocketAddr;
use std::process::Command;

use super::tests_support::*;
use super::{FrontCounters, HttpProxyConfig, Socks5Config};

/// Runs curl with `args` (proxy variables cleared, so only our flags choose the proxy) and
/// returns its stdout, failing the test on any curl error.
async fn curl(args: Vec<String>) -> String {
    let shown = args.join(" ");
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("curl");
        command.args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--noproxy",
            "",
        ]);
        for variable in ["http_proxy", "https_proxy", "all_proxy", "no_proxy"] {
            command
                .env_remove(variable)
                .env_remove(variable.to_uppercase());
        }
        command.args(&args).output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|error| {
        panic!("could not run curl ({error}); curl must be installed for these tests")
    });
    assert!(
        output.status.success(),
        "curl {shown} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The origin echoes the request; check curl fetched `/hello` from it.
fn assert_fetched(body: &str, origin: SocketAddr) {
    assert!(
        body.starts_with("GET /hello HTTP/1.1\r\n"),
        "unexpected body: {body}"
    );
    assert!(
        body.contains(&format!("Host: localhost:{}\r\n", origin.port())),
        "{body}"
    );
}

fn assert_used(counters: &FrontCounters) {
    let snapshot = counters.snapshot();
    assert!(
        snapshot.accepted >= 1 && snapshot.bytes_down > 0,
        "{snapshot:?}"
    );
}

#[tokio::test]
async fn curl_through_socks5_with_proxy_side_name_resolution() {
    let origin = http_origin().await;
    let (proxy, counters) = start_socks5(Socks5Config::default()).await;
    let url = format!("http://localhost:{}/hello", origin.port());
    let body = curl(vec!["--socks5-hostname".into(), proxy.to_string(), url]).await;
    assert_fetched(&body, origin);
    assert_used(&counters);
}

#[tokio::test]
async fn curl_through_socks5_with_a_password() {
    let origin = http_origin().await;
    let config = Socks5Config {
        auth: Some(("alice".into(), "s3cret".into())),
        ..Socks5Config::default()
    };
    let (proxy, counters) = start_socks5(config).await;
    let url = format!("http://localhost:{}/hello", origin.port());
    let args = vec![
        "--socks5-hostname".into(),
        proxy.to_string(),
        "--proxy-user".into(),
        "alice:s3cret".into(),
        url,
    ];
    assert_fetched(&curl(args).await, origin);
    assert_used(&counters);
}

#[tokio::test]
async fn curl_through_the_http_proxy_absolute_form() {
    let origin = http_origin().await;
    let (proxy, counters) = start_http_proxy(HttpProxyConfig::default()).await;
    let url = format!("http://localhost:{}/hello", origin.port());
    let body = curl(vec!["-x".into(), format!("http://{proxy}"), url]).await;
    assert_fetched(&body, origin);
    assert!(
        !body.contains("Proxy-"),
        "hop-by-hop fields reached the origin: {body}"
    );
    assert_used(&counters);
}

#[tokio::test]
async fn curl_tunnels_through_the_http_proxy_with_a_password() {
    let origin = http_origin().await;
    let config = HttpProxyConfig {
        auth: Some(("alice".into(), "s3cret".into())),
        ..HttpProxyConfig::default()
    };
    let (proxy, counters) = start_http_proxy(config).await;
    let url = format!("http://localhost:{}/hello", origin.port());
    let args = vec![
        "--proxytunnel".into(),
        "-x".into(),
        format!("http://alice:s3cret@{proxy}"),
        url,
    ];
    assert_fetched(&curl(args).await, origin);
    assert_used(&counters);
    assert_eq!(counters.snapshot().auth_failures, 0);
}
