//! The controller part of the control API over real HTTP on 127.0.0.1: a node that runs a
//! controller (store in `controller.d/` of a fresh temporary home), its API on a free port,
//! requests written by hand. Checks networks and members (create with random, chosen and
//! legacy ids, read, update, delete, with their files), the refusals (token, malformed and
//! mistyped bodies, unknown and foreign ids, with nothing changed), that concurrent writes to
//! one member are applied one at a time, and that a write reaches a member: the node joins
//! its own network and gets its config once the API authorizes it.
//!
//! The node's only root is a silent UDP socket of this test on 127.0.0.1, so nothing leaves
//! loopback. Every wait has a deadline and polls an observable condition.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use ztrs::lab::signed_planet;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use ztrs::api::{self, ApiServer};
use ztrs::controller::{Controller, DirectoryStore};
use ztrs::crypto::Identity;
use ztrs::node::NodeConfig;
use ztrs::service::daemon::Daemon;
use ztrs::service::{self, ServiceOptions};
use ztrs::store::Home;
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

const DEADLINE: Duration = Duration::from_secs(20);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A temporary home directory, removed when dropped (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("ztrs-apictl-{tag}-{}-{nanos}", std::process::id());
        TempDir(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running node with a controller and its API.
struct Rig {
    dir: TempDir,
    /// Kept so the node lives as long as the rig.
    _daemon: Daemon,
    api: ApiServer,
    token: String,
    address: String,
    _silent_root: UdpSocket,
}

impl Rig {
    async fn start(tag: &str) -> Rig {
        let dir = TempDir::new(tag);
        let home = Home::open(&dir.0).expect("home");
        let identity = home.load_or_create_identity().expect("identity");
        let store = DirectoryStore::open(home.controller_dir()).expect("controller store");
        let silent_root = UdpSocket::bind((LOCALHOST, 0)).expect("root socket");
        let planet = signed_planet(
            0x5a7a_0000_00a2,
            &[(&Identity::generate(), silent_root.local_addr().unwrap())],
        );
        let config = NodeConfig {
            allow_loopback_paths: true,
            controller: Some(Controller::new(identity.clone(), Box::new(store))),
            ..NodeConfig::new(identity, planet)
        };
        let socket = UdpUnderlay::open(UdpConfig::ip(LOCALHOST, 0)).expect("udp");
        let (handle, _events) =
            service::spawn(config, socket, ServiceOptions::default()).expect("service");
        let address = handle.address().to_string();
        let daemon = Daemon { handle, home };
        let api = api::start(daemon.clone(), 0).await.expect("api");
        let token = daemon.home.auth_token().expect("token");
        Rig {
            dir,
            _daemon: daemon,
            api,
            token,
            address,
            _silent_root: silent_root,
        }
    }

    fn network_file(&self, nwid: &str) -> PathBuf {
        self.dir
            .0
            .join("controller.d/network")
            .join(format!("{nwid}.json"))
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        request(self.api.local_addr(), method, path, Some(&self.token), body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    /// Creates a network with `fields`; returns its id.
    async fn create_network(&self, fields: Value) -> String {
        let body = fields.to_string();
        let created = self.call("POST", "/controller/network", Some(&body)).await;
        assert_eq!(created.status, 200, "{created:?}");
        created.body["id"].as_str().unwrap().to_string()
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
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
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    Reply { status, body }
}

fn assert_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert!(reply.body["error"].is_string(), "no JSON error: {reply:?}");
}

fn pool_network() -> Value {
    json!({
        "name": "lab",
        "private": true,
        "v4AssignMode": {"zt": true},
        "ipAssignmentPools": [{"ipRangeStart": "10.147.17.1", "ipRangeEnd": "10.147.17.254"}],
        "routes": [{"target": "10.147.17.0/24", "via": null}],
    })
}

#[tokio::test]
async fn networks_are_created_read_updated_and_deleted() {
    let rig = Rig::start("networks").await;
    let about = rig.get("/controller").await;
    assert_eq!(about.status, 200, "{about:?}");
    assert_eq!(about.body["controller"], true);
    assert_eq!(about.body["apiVersion"], 4);
    assert_eq!(rig.get("/controller/network").await.body, json!([]));

    let nwid = rig.create_network(pool_network()).await;
    assert!(nwid.starts_with(&rig.address), "{nwid}");
    assert_ne!(&nwid[10..], "000000");
    assert!(rig.network_file(&nwid).is_file());
    let one = rig.get(&format!("/controller/network/{nwid}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["name"], "lab");
    assert_eq!(one.body["v4AssignMode"]["zt"], true);
    assert_eq!(one.body["routes"][0]["target"], "10.147.17.0/24");
    assert_eq!(one.body["revision"], 1);
    assert_eq!(rig.get("/controller/network").await.body, json!([nwid]));

    // Update (POST and PUT alike): given fields change, others stay, the revision grows.
    let path = format!("/controller/network/{nwid}");
    let updated = rig
        .call("POST", &path, Some(r#"{"name": "renamed", "mtu": 1400}"#))
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.body["name"], "renamed");
    assert_eq!(updated.body["mtu"], 1400);
    assert_eq!(updated.body["private"], true);
    assert_eq!(updated.body["revision"], 2);
    let put = rig
        .call(
            "PUT",
            &path,
            Some(r#"{"enableBroadcast": false, "id": "x"}"#),
        )
        .await;
    assert_eq!(put.body["enableBroadcast"], false);
    assert_eq!(put.body["id"], nwid.as_str(), "protected fields stay");
    assert_eq!(put.body["revision"], 3);

    // A chosen id under our address, and the legacy random create.
    let chosen = format!("{}00abcd", rig.address);
    let chosen = &chosen[..16];
    let made = rig
        .call(
            "POST",
            &format!("/controller/network/{chosen}"),
            Some(r#"{"name": "c"}"#),
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    assert_eq!(made.body["id"], chosen);
    let legacy = rig
        .call(
            "POST",
            &format!("/controller/network/{}______", rig.address),
            None,
        )
        .await;
    assert_eq!(legacy.status, 200, "{legacy:?}");
    let legacy_id = legacy.body["id"].as_str().unwrap().to_string();
    assert!(legacy_id.starts_with(&rig.address));
    assert_eq!(
        rig.get("/controller/network")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let deleted = rig.call("DELETE", &path, None).await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(deleted.body["id"], nwid.as_str());
    assert!(!rig.network_file(&nwid).exists());
    assert_error(&rig.get(&path).await, 404);
    assert_error(&rig.call("DELETE", &path, None).await, 404);
    rig.api.stop().await;
}

#[tokio::test]
async fn members_are_created_read_updated_and_deleted() {
    let rig = Rig::start("members").await;
    let nwid = rig.create_network(pool_network()).await;
    let list = format!("/controller/network/{nwid}/member");
    assert_eq!(rig.get(&list).await.body, json!({}));

    let member = format!("{list}/deadbeef01");
    let body = r#"{"authorized": true, "ipAssignments": ["10.147.17.5"], "name": "laptop"}"#;
    let written = rig.call("POST", &member, Some(body)).await;
    assert_eq!(written.status, 200, "{written:?}");
    assert_eq!(written.body["address"], "deadbeef01");
    assert_eq!(written.body["authorized"], true);
    assert_eq!(written.body["lastAuthorizedCredentialType"], "api");
    assert_eq!(written.body["ipAssignments"], json!(["10.147.17.5"]));
    assert_eq!(written.body["name"], "laptop");
    let revision = written.body["revision"].as_u64().unwrap();
    assert_eq!(rig.get(&list).await.body, json!({"deadbeef01": revision}));
    assert_eq!(rig.get(&member).await.body, written.body);
    assert!(
        rig.dir
            .0
            .join(format!(
                "controller.d/network/{nwid}/member/deadbeef01.json"
            ))
            .is_file()
    );

    let changed = rig
        .call(
            "PUT",
            &member,
            Some(r#"{"authorized": false, "activeBridge": true}"#),
        )
        .await;
    assert_eq!(changed.body["authorized"], false);
    assert_eq!(changed.body["activeBridge"], true);
    assert_eq!(changed.body["name"], "laptop");
    assert!(changed.body["revision"].as_u64().unwrap() > revision);

    assert_eq!(rig.call("DELETE", &member, None).await.status, 200);
    assert_error(&rig.get(&member).await, 404);
    assert_error(&rig.call("DELETE", &member, None).await, 404);
    assert_eq!(rig.get(&list).await.body, json!({}));
    rig.api.stop().await;
}

#[tokio::test]
async fn refusals_change_nothing() {
    let rig = Rig::start("refusals").await;
    let nwid = rig.create_network(pool_network()).await;
    let path = format!("/controller/network/{nwid}");
    let addr = rig.api.local_addr();
    for (method, target) in [
        ("GET", "/controller"),
        ("GET", "/controller/network"),
        ("POST", "/controller/network"),
        ("GET", path.as_str()),
        ("DELETE", path.as_str()),
    ] {
        let refused = request(addr, method, target, None, Some("{}")).await;
        assert_eq!(refused.status, 401, "{method} {target}: {refused:?}");
        let refused = request(addr, method, target, Some("wrong"), Some("{}")).await;
        assert_eq!(refused.status, 401, "{method} {target}: {refused:?}");
    }
    for body in [
        "{",
        "[1]",
        "true",
        r#"{"private": "yes"}"#,
        r#"{"mtu": 50}"#,
        r#"{"routes": [{"target": "nonsense"}]}"#,
        r#"{"ipAssignmentPools": [{"ipRangeStart": "10.0.0.9"}]}"#,
        r#"{"multicastLimit": -3}"#,
    ] {
        assert_error(&rig.call("POST", &path, Some(body)).await, 400);
        assert_error(
            &rig.call("POST", "/controller/network", Some(body)).await,
            400,
        );
    }
    let member = format!("{path}/member/deadbeef01");
    for body in [
        "{",
        r#"{"authorized": 1}"#,
        r#"{"ipAssignments": ["10.1.1.300"]}"#,
    ] {
        assert_error(&rig.call("POST", &member, Some(body)).await, 400);
    }
    // Nothing above changed anything.
    let after = rig.get(&path).await;
    assert_eq!(after.body["revision"], 1, "{after:?}");
    assert_eq!(after.body["name"], "lab");
    assert_eq!(rig.get("/controller/network").await.body, json!([nwid]));
    assert_eq!(rig.get(&format!("{path}/member")).await.body, json!({}));

    // Unknown and foreign ids, malformed ids and addresses.
    let unknown = format!("{}0000ff", &nwid[..10]);
    assert_error(
        &rig.get(&format!("/controller/network/{unknown}")).await,
        404,
    );
    assert_error(
        &rig.get(&format!("/controller/network/{unknown}/member"))
            .await,
        404,
    );
    assert_error(
        &rig.call(
            "POST",
            &format!("/controller/network/{unknown}/member/deadbeef01"),
            Some("{}"),
        )
        .await,
        404,
    );
    let foreign = "1122334455000001";
    assert_error(
        &rig.get(&format!("/controller/network/{foreign}")).await,
        404,
    );
    assert_error(
        &rig.call("POST", &format!("/controller/network/{foreign}"), None)
            .await,
        400,
    );
    assert_error(
        &rig.call("POST", "/controller/network/1122334455______", None)
            .await,
        400,
    );
    let zero_number = format!("/controller/network/{}000000", rig.address);
    assert_error(&rig.call("POST", &zero_number, None).await, 400);
    assert_error(&rig.get("/controller/network/xyz").await, 400);
    assert_error(&rig.get(&format!("{path}/member/xyz")).await, 400);
    assert_error(&rig.get(&format!("{path}/member/deadbeef02")).await, 404);
    assert_error(
        &rig.call("POST", &format!("{path}/member/0000000000"), None)
            .await,
        400,
    );
    assert_eq!(rig.get("/controller/network").await.body, json!([nwid]));
    rig.api.stop().await;
}

#[tokio::test]
async fn concurrent_writes_to_one_member_are_applied_one_at_a_time() {
    const WRITERS: u64 = 16;
    let rig = Rig::start("concurrent").await;
    let nwid = rig.create_network(pool_network()).await;
    let member = format!("/controller/network/{nwid}/member/deadbeef01");
    let writes = (0..WRITERS).map(|i| {
        let body = json!({ "name": format!("writer-{i}"), "tags": [[1, i]] }).to_string();
        let (addr, token, member) = (rig.api.local_addr(), rig.token.clone(), member.clone());
        tokio::spawn(async move { request(addr, "POST", &member, Some(&token), Some(&body)).await })
    });
    let mut revisions = BTreeSet::new();
    for write in writes.collect::<Vec<_>>() {
        let reply = write.await.unwrap();
        assert_eq!(reply.status, 200, "{reply:?}");
        revisions.insert(reply.body["revision"].as_u64().unwrap());
    }
    // Each write saw the one before it: every revision from 1 to N exactly once (a lost
    // update would make two writers answer the same revision).
    assert_eq!(revisions, (1..=WRITERS).collect::<BTreeSet<_>>());
    let last = rig.get(&member).await;
    assert_eq!(last.body["revision"], WRITERS);
    rig.api.stop().await;
}

#[tokio::test]
async fn authorizing_a_member_pushes_its_config() {
    let rig = Rig::start("push").await;
    let nwid = rig.create_network(pool_network()).await;
    // The node joins its own network (as a member, configured without packets).
    let joined = rig.call("POST", &format!("/network/{nwid}"), None).await;
    assert_eq!(joined.status, 200, "{joined:?}");
    let status_of = |reply: &Reply| reply.body["status"].as_str().unwrap_or("").to_string();
    let until = Instant::now() + DEADLINE;
    loop {
        let network = rig.get(&format!("/network/{nwid}")).await;
        if status_of(&network) == "ACCESS_DENIED" {
            break;
        }
        assert!(Instant::now() < until, "never denied: {network:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let member = format!("/controller/network/{nwid}/member/{}", rig.address);
    let authorized = rig
        .call("POST", &member, Some(r#"{"authorized": true}"#))
        .await;
    assert_eq!(authorized.status, 200, "{authorized:?}");
    let until = Instant::now() + DEADLINE;
    let network = loop {
        let network = rig.get(&format!("/network/{nwid}")).await;
        if status_of(&network) == "OK" {
            break network;
        }
        assert!(Instant::now() < until, "config never arrived: {network:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(network.body["name"], "lab");
    let addresses = network.body["assignedAddresses"].as_array().unwrap();
    assert!(
        addresses
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("10.147.17.")),
        "{network:?}"
    );
    rig.api.stop().await;
}
