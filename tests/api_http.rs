//! The local control API over real HTTP on 127.0.0.1: a node (service on a loopback UDP
//! socket, no TUN) with a home in a fresh temporary directory, its API on a free port, and
//! requests written by hand (HTTP/1.1, `Connection: close`). Checks the token (three forms,
//! constant answers for wrong ones), the reference's JSON shapes, join and leave with their
//! `networks.d` files, errors as JSON, the body limit, 503 once the node is gone, and that
//! `stop()` is prompt even with a client that never finishes its request.
//!
//! The node's only root is a silent UDP socket of this test on 127.0.0.1, so nothing leaves
//! loopback. Every wait has a deadline; nothing sleeps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use ztrs::lab::signed_planet;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use ztrs::api::{self, ApiServer};
use ztrs::crypto::Identity;
use ztrs::node::NodeConfig;
use ztrs::service::daemon::Daemon;
use ztrs::service::{self, ServiceOptions};
use ztrs::store::Home;
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

/// Upper bound on every request.
const DEADLINE: Duration = Duration::from_secs(20);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A network whose controller (`1122334455`) does not exist: it stays unconfigured.
const NWID: &str = "1122334455000001";

/// A temporary home directory, removed when dropped (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("ztrs-api-{tag}-{}-{nanos}", std::process::id()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running node with its API.
struct Rig {
    dir: TempDir,
    daemon: Daemon,
    api: ApiServer,
    token: String,
    root_address: String,
    _silent_root: UdpSocket,
}

impl Rig {
    async fn start(tag: &str) -> Rig {
        let dir = TempDir::new(tag);
        let home = Home::open(&dir.0).expect("home");
        let identity = home.load_or_create_identity().expect("identity");
        let silent_root = UdpSocket::bind((LOCALHOST, 0)).expect("root socket");
        let planet = signed_planet(
            0x5a7a_0000_00a1,
            &[(&Identity::generate(), silent_root.local_addr().unwrap())],
        );
        let root_address = planet.roots[0].identity.address().to_string();
        let config = NodeConfig {
            allow_loopback_paths: true,
            ..NodeConfig::new(identity, planet)
        };
        let socket = UdpUnderlay::open(UdpConfig::ip(LOCALHOST, 0)).expect("udp");
        let (handle, _events) =
            service::spawn(config, socket, ServiceOptions::default()).expect("service");
        let daemon = Daemon {
            handle,
            home: home.clone(),
        };
        let api = api::start(daemon.clone(), 0).await.expect("api");
        let token = home.auth_token().expect("token");
        Rig {
            dir,
            daemon,
            api,
            token,
            root_address,
            _silent_root: silent_root,
        }
    }

    fn conf_path(&self, nwid: &str, suffix: &str) -> PathBuf {
        self.dir
            .0
            .join("networks.d")
            .join(format!("{nwid}{suffix}"))
    }

    async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        request(
            self.api.local_addr(),
            method,
            path,
            &Auth::Header(&self.token),
            body,
        )
        .await
    }
}

/// How a request presents the token.
enum Auth<'a> {
    None,
    Header(&'a str),
    Bearer(&'a str),
    Query(&'a str),
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

/// One request on its own connection; the server closes it after the answer.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &Auth<'_>,
    body: Option<&str>,
) -> Reply {
    let mut target = path.to_string();
    let mut headers = String::new();
    match auth {
        Auth::None => {}
        Auth::Header(token) => headers.push_str(&format!("X-ZT1-Auth: {token}\r\n")),
        Auth::Bearer(token) => headers.push_str(&format!("Authorization: Bearer {token}\r\n")),
        Auth::Query(token) => {
            let sep = if target.contains('?') { '&' } else { '?' };
            target.push_str(&format!("{sep}auth={token}"));
        }
    }
    let body = body.unwrap_or("");
    let text = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // A server refusing an oversized body may answer and close before reading it all;
        // its answer is still there to read, so a failed send is not the verdict.
        let _ = stream.write_all(text.as_bytes()).await;
        read_answer(&mut stream).await
    };
    let answer = timeout(DEADLINE, exchange).await.expect("answer in time");
    parse_reply(&answer)
}

/// Everything the server sends until it closes. Closing with our bytes unread makes it
/// reset the connection after its answer: the answer is what counts.
async fn read_answer(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() => {
                return answer;
            }
            Err(err) => panic!("receive failed after {} bytes: {err}", answer.len()),
        }
    }
}

/// Status line and JSON body of an HTTP/1.1 answer with a Content-Length.
fn parse_reply(answer: &[u8]) -> Reply {
    let text = String::from_utf8(answer.to_vec()).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "unexpected chunked answer: {head}"
    );
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    };
    Reply { status, body }
}

fn assert_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert!(reply.body["error"].is_string(), "no JSON error: {reply:?}");
}

#[tokio::test]
async fn token_is_required_in_any_of_three_forms() {
    let rig = Rig::start("auth").await;
    let addr = rig.api.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    assert_error(
        &request(addr, "GET", "/status", &Auth::None, None).await,
        401,
    );
    for wrong in [
        Auth::Header("wrong"),
        Auth::Bearer("wrong"),
        Auth::Query("wrong"),
        Auth::Header(""),
    ] {
        assert_error(&request(addr, "GET", "/status", &wrong, None).await, 401);
    }
    // Unknown paths are not revealed without the token either.
    assert_error(
        &request(addr, "GET", "/nothing", &Auth::None, None).await,
        401,
    );

    let token = rig.token.as_str();
    for right in [Auth::Header(token), Auth::Bearer(token), Auth::Query(token)] {
        let reply = request(addr, "GET", "/status", &right, None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(rig.api.stats().unauthorized, 6);
    rig.api.stop().await;
}

#[tokio::test]
async fn status_and_counters_describe_the_node() {
    let rig = Rig::start("status").await;
    let status = rig.get("/status").await;
    assert_eq!(status.status, 200);
    let body = &status.body;
    assert_eq!(body["address"], rig.daemon.handle.address().to_string());
    let identity: Identity = body["publicIdentity"].as_str().unwrap().parse().unwrap();
    assert_eq!(identity.address(), rig.daemon.handle.address());
    assert_eq!(body["version"], "1.14.1");
    assert_eq!(body["versionMajor"], 1);
    assert_eq!(body["versionMinor"], 14);
    assert_eq!(body["tcpFallbackActive"], false);
    assert_eq!(body["planetWorldId"], 0x5a7a_0000_00a1u64);
    assert!(body["online"].is_boolean());
    assert!(body["clock"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(
        body["config"]["settings"]["primaryPort"],
        rig.daemon.handle.local_addr().port()
    );

    assert_error(&rig.get("/nothing/here").await, 404);
    let counters = rig.get("/ztrs/counters").await;
    assert_eq!(counters.status, 200);
    for section in ["node", "frames", "networks", "service", "api"] {
        assert!(
            counters.body[section].is_object(),
            "{section}: {counters:?}"
        );
    }
    assert!(counters.body["node"]["datagrams_received"].is_u64());
    assert!(counters.body["api"]["requests"].as_u64().unwrap() >= 3);
    rig.api.stop().await;
}

#[tokio::test]
async fn join_and_leave_persist_in_the_home() {
    let rig = Rig::start("networks").await;
    assert_eq!(rig.get("/network").await.body, json!([]));
    assert_error(&rig.get(&format!("/network/{NWID}")).await, 404);

    let joined = rig
        .call(
            "POST",
            &format!("/network/{NWID}"),
            Some(r#"{"allowGlobal": true}"#),
        )
        .await;
    assert_eq!(joined.status, 200, "{joined:?}");
    assert_eq!(joined.body["id"], NWID);
    assert_eq!(joined.body["status"], "REQUESTING_CONFIGURATION");
    assert_eq!(joined.body["allowGlobal"], true);
    assert_eq!(joined.body["allowManaged"], true);
    assert_eq!(joined.body["portDeviceName"], "");
    assert!(rig.conf_path(NWID, ".conf").is_file());
    let settings = std::fs::read_to_string(rig.conf_path(NWID, ".local.conf")).unwrap();
    assert!(settings.contains("allowGlobal=1"), "{settings}");

    let list = rig.get("/network").await;
    assert_eq!(list.status, 200);
    let networks = list.body.as_array().unwrap();
    assert_eq!(networks.len(), 1);
    assert_eq!(networks[0]["nwid"], NWID);
    assert_eq!(networks[0]["status"], "REQUESTING_CONFIGURATION");
    let one = rig.get(&format!("/network/{NWID}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["mac"], networks[0]["mac"]);

    // Joining again (PUT is a synonym) keeps one membership and one file.
    let again = rig.call("PUT", &format!("/network/{NWID}"), None).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(rig.get("/network").await.body.as_array().unwrap().len(), 1);

    let left = rig.call("DELETE", &format!("/network/{NWID}"), None).await;
    assert_eq!(left.status, 200, "{left:?}");
    assert_eq!(left.body, json!({"result": true}));
    assert!(!rig.conf_path(NWID, ".conf").exists());
    assert_eq!(rig.get("/network").await.body, json!([]));
    assert_error(&rig.get(&format!("/network/{NWID}")).await, 404);
    assert_error(
        &rig.call("DELETE", &format!("/network/{NWID}"), None).await,
        404,
    );
    rig.api.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_json_errors() {
    let rig = Rig::start("bad").await;
    for bad_id in ["xyz", "11223344550000011", "112233445500000g"] {
        assert_error(
            &rig.call("POST", &format!("/network/{bad_id}"), None).await,
            400,
        );
        assert_error(&rig.get(&format!("/network/{bad_id}")).await, 400);
    }
    // A reserved controller address: refused, and nothing written.
    let reserved = "0000000000000001";
    assert_error(
        &rig.call("POST", &format!("/network/{reserved}"), None)
            .await,
        400,
    );
    assert!(!rig.conf_path(reserved, ".conf").exists());
    assert!(!rig.conf_path(reserved, ".local.conf").exists());
    // Bodies that are not a settings object.
    for body in ["[1]", "{\"allowManaged\": \"yes\"}", "{"] {
        assert_error(
            &rig.call("POST", &format!("/network/{NWID}"), Some(body))
                .await,
            400,
        );
    }
    assert!(!rig.conf_path(NWID, ".conf").exists());
    // Over the body limit.
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    assert_error(
        &rig.call("POST", &format!("/network/{NWID}"), Some(&huge))
            .await,
        413,
    );
    assert!(!rig.conf_path(NWID, ".conf").exists());
    // Methods the reference does not have.
    assert_error(&rig.call("PATCH", "/status", None).await, 405);
    // Peers: malformed and unknown addresses.
    assert_error(&rig.get("/peer/xyz").await, 400);
    assert_error(&rig.get("/peer/00000000ab").await, 404);
    rig.api.stop().await;
}

#[tokio::test]
async fn peers_include_the_planet_root() {
    let rig = Rig::start("peers").await;
    let list = rig.get("/peer").await;
    assert_eq!(list.status, 200);
    let peers = list.body.as_array().unwrap();
    let root = peers
        .iter()
        .find(|p| p["address"] == rig.root_address.as_str())
        .unwrap_or_else(|| panic!("root missing from {peers:?}"));
    assert_eq!(root["role"], "PLANET");
    let one = rig.get(&format!("/peer/{}", rig.root_address)).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["role"], "PLANET");
    assert!(one.body["paths"].is_array());
    rig.api.stop().await;
}

#[tokio::test]
async fn a_stopped_node_answers_503() {
    let rig = Rig::start("stopped").await;
    assert!(rig.daemon.handle.shutdown().await.is_clean());
    assert_error(&rig.get("/status").await, 503);
    assert_error(&rig.get("/network").await, 503);
    rig.api.stop().await;
}

/// Waits until a connection attempt to `addr` fails (the listener is closed).
async fn connection_refused(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_err()
}

#[tokio::test]
async fn stop_is_prompt_and_cuts_unfinished_requests() {
    // Nothing in flight: stop returns well within the grace period.
    let rig = Rig::start("stop-idle").await;
    let addr = rig.api.local_addr();
    assert_eq!(rig.get("/status").await.status, 200);
    let started = Instant::now();
    timeout(Duration::from_secs(1), rig.api.stop())
        .await
        .expect("idle stop within 1 s");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(connection_refused(addr).await);
    drop(rig.dir);

    // A client that sends half a request and then nothing: stop waits the grace period at
    // most, then cuts it.
    let rig = Rig::start("stop-hung").await;
    let addr = rig.api.local_addr();
    let mut hung = TcpStream::connect(addr).await.unwrap();
    hung.write_all(b"GET /status HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    // The server has taken the connection once it counts it.
    let accepted_by = Instant::now() + DEADLINE;
    while rig.api.stats().connections_accepted == 0 {
        assert!(Instant::now() < accepted_by, "connection never accepted");
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    let api = rig.api;
    timeout(Duration::from_secs(4), api.stop())
        .await
        .expect("stop within the bound despite a hung client");
    assert!(started.elapsed() < Duration::from_secs(4));
    let mut rest = Vec::new();
    let closed = timeout(DEADLINE, hung.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the hung connection was not closed");
    assert!(connection_refused(addr).await);
    drop(rig.dir);
}
