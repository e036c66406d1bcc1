//! `/health`, `/metrics` and `/moon` over real HTTP on 127.0.0.1: a node (loopback UDP, no
//! TUN) that holds one moon from the start (also stored in `moons.d`), with a fresh
//! temporary home and its API on a free port. Checks that `/health` needs no token, answers
//! while the node is busy and says 503 once the node is gone, that `/metrics` is Prometheus text (every line parsed) with the
//! reference's names and our counters and takes the metrics token but nothing else does, and
//! the moon objects, orbit and deorbit with its file, and their refusals.
//!
//! The node's only root is a silent UDP socket of this test on 127.0.0.1, so nothing leaves
//! loopback. Every wait has a deadline; nothing sleeps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use ztrs::api::{self, ApiServer};
use ztrs::crypto::Identity;
use ztrs::crypto::c25519::{SIGNATURE_LEN, generate_keypair};
use ztrs::node::NodeConfig;
use ztrs::service::daemon::Daemon;
use ztrs::service::{self, ServiceOptions};
use ztrs::store::Home;
use ztrs::wire::inet_address::InetAddress;
use ztrs::wire::world::{Root, World, WorldType};
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

const DEADLINE: Duration = Duration::from_secs(20);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The moon the node holds from the start.
const MOON_ID: u64 = 0x00de_adbe_ef00;
const METRICS_TOKEN: &str = "metricsonlytoken0123456";

/// A temporary home directory, removed when dropped (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("ztrs-apimet-{tag}-{}-{nanos}", std::process::id());
        TempDir(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A signed one-root world of `kind` whose root is reached at `endpoint`.
fn world(kind: WorldType, id: u64, endpoint: SocketAddr) -> World {
    let root = Identity::generate();
    let (public, secret) = generate_keypair();
    let mut world = World {
        world_type: kind,
        id,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: root.to_public(),
            stable_endpoints: vec![InetAddress::Ip(endpoint.ip(), endpoint.port())],
        }],
    };
    world.sign(&secret);
    world
}

struct Rig {
    dir: TempDir,
    daemon: Daemon,
    api: ApiServer,
    token: String,
    moon: World,
    _silent_root: UdpSocket,
}

impl Rig {
    /// A node holding [`MOON_ID`]; with `metricstoken.secret` when `metrics_token`.
    async fn start(tag: &str, metrics_token: bool) -> Rig {
        let dir = TempDir::new(tag);
        let home = Home::open(&dir.0).expect("home");
        let identity = home.load_or_create_identity().expect("identity");
        if metrics_token {
            home.write("metricstoken.secret", METRICS_TOKEN.as_bytes(), true)
                .unwrap();
        }
        let silent_root = UdpSocket::bind((LOCALHOST, 0)).expect("root socket");
        let endpoint = silent_root.local_addr().unwrap();
        let planet = world(WorldType::Planet, 0x5a7a_0000_00a3, endpoint);
        let moon = world(WorldType::Moon, MOON_ID, endpoint);
        home.save_world(&moon).expect("moon file");
        let config = NodeConfig {
            allow_loopback_paths: true,
            moons: vec![moon.clone()],
            ..NodeConfig::new(identity, planet)
        };
        let socket = UdpUnderlay::open(UdpConfig::ip(LOCALHOST, 0)).expect("udp");
        let (handle, _events) =
            service::spawn(config, socket, ServiceOptions::default()).expect("service");
        let daemon = Daemon { handle, home };
        let api = api::start(daemon.clone(), 0).await.expect("api");
        let token = daemon.home.auth_token().expect("token");
        Rig {
            dir,
            daemon,
            api,
            token,
            moon,
            _silent_root: silent_root,
        }
    }

    fn moon_file(&self) -> PathBuf {
        self.dir.0.join(format!("moons.d/{MOON_ID:016x}.moon"))
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        request(self.api.local_addr(), method, path, Some(&self.token), body).await
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// One request on its own connection (`Connection: close`).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let auth = token.map_or(String::new(), |t| format!("X-ZT1-Auth: {t}\r\n"));
    let body = body.unwrap_or("");
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(text.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("receive");
        answer
    };
    let answer = timeout(DEADLINE, exchange).await.expect("answer in time");
    let text = String::from_utf8(answer).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Reply {
        status,
        content_type,
        text: body.to_string(),
    }
}

fn assert_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert!(
        reply.json()["error"].is_string(),
        "no JSON error: {reply:?}"
    );
}

#[tokio::test]
async fn health_needs_no_token_and_reports_a_stopped_node() {
    let rig = Rig::start("health", false).await;
    let addr = rig.api.local_addr();
    let health = request(addr, "GET", "/health", None, None).await;
    assert_eq!(health.status, 200, "{health:?}");
    let body = health.json();
    assert_eq!(body["ok"], true);
    assert!(body["online"].is_boolean());
    assert_eq!(body["version"], "1.14.1");
    assert!(body["clock"].as_u64().unwrap() > 1_600_000_000_000);
    // Only /health is open.
    assert_error(&request(addr, "GET", "/status", None, None).await, 401);

    assert!(rig.daemon.handle.shutdown().await.is_clean());
    let down = request(addr, "GET", "/health", None, None).await;
    assert_eq!(down.status, 503, "{down:?}");
    assert_eq!(down.json()["ok"], false);
    rig.api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_the_node_is_busy() {
    let rig = Rig::start("busy", false).await;
    // Hold the driver task until released (as a long piece of work would).
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let handle = rig.daemon.handle.clone();
    let busy = tokio::spawn(async move {
        handle
            .with_node_mut(move |_node, _now| {
                let _ = started_tx.send(());
                let _ = released.recv_timeout(DEADLINE);
            })
            .await
    });
    timeout(DEADLINE, started).await.unwrap().unwrap();
    let addr = rig.api.local_addr();
    let health = timeout(
        Duration::from_secs(2),
        request(addr, "GET", "/health", None, None),
    )
    .await
    .expect("health answers while the node is busy");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["ok"], true);
    assert!(health.json()["online"].is_null(), "{health:?}");
    release.send(()).unwrap();
    busy.await.unwrap().unwrap();
    let after = request(addr, "GET", "/health", None, None).await;
    assert!(after.json()["online"].is_boolean(), "{after:?}");
    rig.api.stop().await;
}

/// Checks that every line is a comment or `name{labels} value`; returns the samples.
fn parse_exposition(text: &str) -> Vec<(String, String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut words = rest.split(' ');
            let kind = words.next().unwrap();
            let name = words
                .next()
                .unwrap_or_else(|| panic!("bad comment: {line}"));
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            assert!(valid_name(name), "{line}");
            if kind == "TYPE" {
                let t = words.next().unwrap();
                assert!(["counter", "gauge", "untyped"].contains(&t), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                for pair in labels.split("\",") {
                    let (label, quoted) =
                        pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                    assert!(valid_name(label), "{line}");
                    assert!(!quoted.trim_end_matches('"').contains('\n'), "{line}");
                }
                (name, labels)
            }
            None => (series, ""),
        };
        assert!(valid_name(name), "{line}");
        samples.push((name.to_string(), labels.to_string(), value));
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_either_token() {
    let rig = Rig::start("metrics", true).await;
    let addr = rig.api.local_addr();
    assert_error(&request(addr, "GET", "/metrics", None, None).await, 401);
    assert_error(
        &request(addr, "GET", "/metrics", Some("wrong"), None).await,
        401,
    );
    // The metrics token opens /metrics and nothing else.
    assert_error(
        &request(addr, "GET", "/status", Some(METRICS_TOKEN), None).await,
        401,
    );
    let with_metrics_token = request(addr, "GET", "/metrics", Some(METRICS_TOKEN), None).await;
    assert_eq!(with_metrics_token.status, 200, "{with_metrics_token:?}");

    let reply = rig.call("GET", "/metrics", None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.content_type.starts_with("text/plain; version=0.0.4"),
        "{reply:?}"
    );
    let samples = parse_exposition(&reply.text);
    let find = |name: &str, labels: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.contains(labels))
            .map(|(_, _, v)| *v)
    };
    assert_eq!(find("zt_num_networks", ""), Some(0.0));
    let root = rig.moon.roots[0].identity.address().to_string();
    assert!(
        find("zt_peer_path_count", &format!("node_id=\"{root}\"")).is_some(),
        "{}",
        reply.text
    );
    assert!(find("ztrs_node_total", "counter=\"datagrams_received\"").is_some());
    assert!(find("ztrs_api_total", "counter=\"unauthorized\"").unwrap() >= 3.0);
    assert!(find("ztrs_service_total", "counter=\"datagrams_sent\"").is_some());
    assert!(find("ztrs_frames_total", "counter=\"bad_mac\"").is_some());
    // Counters of every section, as in /ztrs/counters.
    let counters = rig.call("GET", "/ztrs/counters", None).await.json();
    let node_counters = counters["node"].as_object().unwrap().len();
    let exported = samples
        .iter()
        .filter(|(n, _, _)| n == "ztrs_node_total")
        .count();
    assert_eq!(exported, node_counters);
    rig.api.stop().await;
}

#[tokio::test]
async fn moons_are_listed_orbited_and_deorbited() {
    let rig = Rig::start("moons", false).await;
    let addr = rig.api.local_addr();
    assert_error(&request(addr, "GET", "/moon", None, None).await, 401);
    let list = rig.call("GET", "/moon", None).await;
    assert_eq!(list.status, 200, "{list:?}");
    let moons = list.json();
    assert_eq!(moons.as_array().unwrap().len(), 1, "{moons}");
    let moon = &moons[0];
    assert_eq!(moon["id"], "000000deadbeef00");
    assert_eq!(moon["waiting"], false);
    assert_eq!(moon["timestamp"], 1_700_000_000_000u64);
    assert_eq!(moon["signature"].as_str().unwrap().len(), SIGNATURE_LEN * 2);
    let root = &moon["roots"][0];
    assert_eq!(
        root["identity"],
        rig.moon.roots[0].identity.to_public_string()
    );
    let endpoint = rig._silent_root.local_addr().unwrap();
    assert_eq!(
        root["stableEndpoints"],
        json!([format!("127.0.0.1/{}", endpoint.port())])
    );
    // The short form of the id names the same moon; a held moon is answered as it is.
    assert_eq!(
        rig.call("GET", "/moon/deadbeef00", None).await.json(),
        *moon
    );
    let again = rig
        .call(
            "POST",
            "/moon/deadbeef00",
            Some(r#"{"seed": "0102030405"}"#),
        )
        .await;
    assert_eq!(again.json(), *moon);

    // Orbiting a moon not held: awaited, nothing stored yet.
    let orbit = rig
        .call(
            "POST",
            "/moon/abcdef0123",
            Some(r#"{"seed": "abcdef0123"}"#),
        )
        .await;
    assert_eq!(orbit.status, 200, "{orbit:?}");
    assert_eq!(orbit.json()["waiting"], true);
    assert_eq!(orbit.json()["id"], "000000abcdef0123");
    assert!(!rig.dir.0.join("moons.d/000000abcdef0123.moon").exists());
    for bad in [
        "{",
        "[1]",
        r#"{"seed": 7}"#,
        r#"{"seed": "xyz"}"#,
        r#"{"seed": "0000000000"}"#,
    ] {
        assert_error(&rig.call("POST", "/moon/abcdef0124", Some(bad)).await, 400);
    }
    let own = rig.daemon.handle.address().to_string();
    let own_seed = format!("{{\"seed\": \"{own}\"}}");
    assert_error(
        &rig.call("POST", "/moon/abcdef0124", Some(&own_seed)).await,
        400,
    );
    assert_error(&rig.call("POST", "/moon/abcdef0124", None).await, 404);
    assert_error(&rig.call("GET", "/moon/abcdef0124", None).await, 404);
    assert_error(&rig.call("GET", "/moon/xyz", None).await, 400);

    // Deorbit: gone from the node and from moons.d.
    assert!(rig.moon_file().is_file());
    let gone = rig.call("DELETE", "/moon/000000deadbeef00", None).await;
    assert_eq!(gone.status, 200, "{gone:?}");
    assert_eq!(gone.json(), json!({"result": true}));
    assert!(!rig.moon_file().exists());
    // Only the awaited orbit remains, listed as the reference lists one.
    let left = rig.call("GET", "/moon", None).await.json();
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
    assert_eq!(left[0]["id"], "000000abcdef0123");
    assert_eq!(left[0]["waiting"], true);
    assert_error(&rig.call("GET", "/moon/deadbeef00", None).await, 404);
    assert_error(&rig.call("DELETE", "/moon/deadbeef00", None).await, 404);
    rig.api.stop().await;
}
