//! The `zerotier-cli` compatible client against a real daemon process: `ztrs service
//! --no-tun --allow-loopback -p0 <home>` (no privileges; its only root is a silent UDP
//! socket on 127.0.0.1, so nothing leaves loopback), then the CLI binary run as `ztrs
//! <verb>` and through a `zerotier-cli` symlink. Checks the reference's output lines and
//! exit codes for every verb, `-j`, the port/token discovery and its errors, and usage
//! errors. Waits are on files and answers, with deadlines.

mod common;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);
const NWID: &str = "8056c2e21c000001";

/// A temporary directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("ztrs-cli-client-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon, killed (and reaped) on drop even when the test fails.
struct Daemon {
    child: Child,
    home: PathBuf,
    address: String,
    _silent_root: UdpSocket,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the daemon in `home` with a private planet whose root never answers.
fn start_daemon(home: &Path) -> Daemon {
    std::fs::create_dir_all(home).unwrap();
    let silent_root = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let root = common::nodes::reference_identity(1);
    let planet = common::nodes::private_planet(&[(&root, silent_root.local_addr().unwrap())]);
    std::fs::write(home.join("planet"), planet.to_bytes()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ztrs"))
        .args(["service", "--no-tun", "--allow-loopback", "-p0"])
        .arg(home)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let port_file = home.join("zerotier-one.port");
    wait_for("the port file", || {
        std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|text| text.trim().parse::<u16>().ok())
            .is_some_and(|port| port != 0)
    });
    let public = std::fs::read_to_string(home.join("identity.public")).unwrap();
    let address = public.get(..10).unwrap().to_owned();
    Daemon {
        child,
        home: home.to_path_buf(),
        address,
        _silent_root: silent_root,
    }
}

/// The binary reached through a `zerotier-cli` symlink in `dir`.
fn zerotier_cli(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let link = dir.join("zerotier-cli");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ztrs"), &link).unwrap();
    link
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(binary: &Path, args: &[&str]) -> Run {
    let output: Output = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ztrs() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ztrs"))
}

/// `ztrs <verb> [args] -D<home>`.
fn cli(daemon: &Daemon, args: &[&str]) -> Run {
    let home = format!("-D{}", daemon.home.display());
    let mut all: Vec<&str> = args.to_vec();
    all.push(&home);
    run(&ztrs(), &all)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

const LISTNETWORKS_HEADER: &str =
    "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>";

#[test]
fn the_client_verbs_talk_to_a_running_daemon() {
    let scratch = Scratch::new("verbs");
    let daemon = start_daemon(&scratch.0.join("home"));
    let home_switch = format!("-D{}", daemon.home.display());
    let zcli = zerotier_cli(&scratch.0.join("bin"));

    // info, both ways, and with -j.
    let expected_prefix = format!("200 info {} 1.14.1 ", daemon.address);
    let mut info = cli(&daemon, &["info"]);
    wait_for("the API", || {
        info = cli(&daemon, &["info"]);
        info.code == 0
    });
    let line = info.stdout.trim_end();
    assert!(line.starts_with(&expected_prefix), "{line}");
    assert!(
        line.ends_with(" ONLINE") || line.ends_with(" OFFLINE"),
        "{line}"
    );
    assert_eq!(lines(&info.stdout).len(), 1);
    let via_symlink = run(&zcli, &[&home_switch, "info"]);
    assert_eq!(via_symlink.code, 0, "{}", via_symlink.stderr);
    assert!(via_symlink.stdout.starts_with(&expected_prefix));
    assert_eq!(
        run(&zcli, &[&home_switch, "status"]).stdout.trim_end(),
        line
    );
    let raw = run(&zcli, &["-j", &home_switch, "info"]);
    assert_eq!(raw.code, 0);
    let status: Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(status["address"], daemon.address.as_str());

    // listnetworks before joining: the header only.
    let before = cli(&daemon, &["listnetworks"]);
    assert_eq!(before.code, 0);
    assert_eq!(lines(&before.stdout), [LISTNETWORKS_HEADER]);
    let raw = cli(&daemon, &["listnetworks", "-j"]);
    assert_eq!(
        serde_json::from_str::<Value>(&raw.stdout).unwrap(),
        Value::Array(vec![])
    );

    // join, then the network is listed.
    let join = run(&zcli, &[&home_switch, "join", NWID]);
    assert_eq!(
        (join.code, join.stdout.as_str()),
        (0, "200 join OK\n"),
        "{}",
        join.stderr
    );
    let after = cli(&daemon, &["listnetworks"]);
    let after_lines = lines(&after.stdout);
    assert_eq!(after_lines.len(), 2, "{}", after.stdout);
    assert_eq!(after_lines[0], LISTNETWORKS_HEADER);
    let fields: Vec<&str> = after_lines[1].split(' ').collect();
    assert_eq!(fields.len(), 9, "{}", after_lines[1]);
    assert_eq!(&fields[..3], ["200", "listnetworks", NWID]);
    assert_eq!(fields[4].len(), 17, "mac {}", fields[4]);
    assert!(
        [
            "REQUESTING_CONFIGURATION",
            "OK",
            "NOT_FOUND",
            "ACCESS_DENIED"
        ]
        .contains(&fields[5]),
        "{}",
        fields[5]
    );
    assert!(["PRIVATE", "PUBLIC"].contains(&fields[6]), "{}", fields[6]);
    let raw = cli(&daemon, &["listnetworks", "-j"]);
    let networks: Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(networks[0]["nwid"], NWID);

    // get and set.
    let get = cli(&daemon, &["get", NWID, "allowDNS"]);
    assert_eq!((get.code, get.stdout.as_str()), (0, "0\n"));
    let get = cli(&daemon, &["get", NWID, "nwid"]);
    assert_eq!(get.stdout, format!("{NWID}\n"));
    let set = cli(&daemon, &["set", NWID, "allowDNS=1"]);
    assert_eq!(set.code, 0, "{}{}", set.stdout, set.stderr);
    let updated: Value = serde_json::from_str(&set.stdout).unwrap();
    assert_eq!(updated["allowDNS"], true);
    assert_eq!(cli(&daemon, &["get", NWID, "allowDNS"]).stdout, "1\n");
    let unknown = cli(&daemon, &["get", NWID, "nosuch"]);
    assert_eq!(
        (unknown.code, unknown.stdout.as_str()),
        (1, "error, unknown property name\n")
    );
    let not_member = cli(&daemon, &["get", "8056c2e21c0000ff", "name"]);
    assert_eq!(not_member.code, 1);
    assert!(
        not_member.stderr.contains("unknown network ID"),
        "{}",
        not_member.stderr
    );
    let bad_setting = cli(&daemon, &["set", NWID, "mtu=1"]);
    assert_eq!(bad_setting.code, 2);

    // leave, then the list is empty again; leaving twice is the API's 404.
    let leave = cli(&daemon, &["leave", NWID]);
    assert_eq!((leave.code, leave.stdout.as_str()), (0, "200 leave OK\n"));
    assert_eq!(
        lines(&cli(&daemon, &["listnetworks"]).stdout),
        [LISTNETWORKS_HEADER]
    );
    let again = cli(&daemon, &["leave", NWID]);
    assert_eq!(again.code, 1);
    assert!(again.stdout.starts_with("404 leave {"), "{}", again.stdout);

    // Invalid network ids: the reference's message and status 2.
    for verb in ["join", "leave"] {
        let bad = cli(&daemon, &[verb, "1234"]);
        assert_eq!((bad.code, bad.stdout.as_str()), (2, "invalid network id\n"));
    }

    // listpeers and peers: the headers, and the planet root as a peer.
    let root_address = common::nodes::reference_identity(1).address().to_string();
    let mut listpeers = cli(&daemon, &["listpeers"]);
    wait_for("the root in listpeers", || {
        listpeers = cli(&daemon, &["listpeers"]);
        listpeers
            .stdout
            .contains(&format!("200 listpeers {root_address} "))
    });
    let peer_lines = lines(&listpeers.stdout);
    assert_eq!(
        peer_lines[0],
        "200 listpeers <ztaddr> <path> <latency> <version> <role>"
    );
    for line in &peer_lines[1..] {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 7, "{line}");
        assert_eq!(fields[2].len(), 10, "{line}");
        assert!(fields[4].parse::<i64>().is_ok(), "{line}");
        assert!(["LEAF", "MOON", "PLANET"].contains(&fields[6]), "{line}");
    }
    let peers = cli(&daemon, &["peers"]);
    assert_eq!(peers.code, 0);
    let peer_table = lines(&peers.stdout);
    assert_eq!(peer_table[0], "200 peers");
    assert_eq!(
        peer_table[1],
        "<ztaddr>   <ver>  <role> <lat> <link>   <lastTX> <lastRX> <path>"
    );
    assert!(
        peer_table
            .iter()
            .any(|l| l.starts_with(&format!("{root_address} ")))
    );
    let raw = cli(&daemon, &["listpeers", "-j"]);
    assert!(
        serde_json::from_str::<Value>(&raw.stdout)
            .unwrap()
            .is_array()
    );

    // The raw path pass-through of zerotier-cli.
    let raw = run(&zcli, &[&home_switch, "/status"]);
    assert_eq!(raw.code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&raw.stdout).unwrap()["address"],
        daemon.address.as_str()
    );
    let missing = run(&zcli, &[&home_switch, "/nosuch"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stdout.starts_with("404 /nosuch "),
        "{}",
        missing.stdout
    );

    // A wrong token: the API's 401 as the reference prints it.
    let denied = cli(&daemon, &["info", "-Twrong"]);
    assert_eq!(denied.code, 1);
    assert!(denied.stdout.starts_with("401 info "), "{}", denied.stdout);
    let denied = run(&zcli, &["-Twrong", &home_switch, "listnetworks"]);
    assert_eq!(denied.code, 1);
    assert!(
        denied.stdout.starts_with("401 listnetworks "),
        "{}",
        denied.stdout
    );
}

#[test]
fn moons_and_the_controller_through_the_cli() {
    let scratch = Scratch::new("controller");
    let daemon = start_daemon(&scratch.0.join("home"));
    wait_for("the API", || cli(&daemon, &["info"]).code == 0);

    let moons = cli(&daemon, &["listmoons"]);
    assert_eq!(moons.code, 0, "{}{}", moons.stdout, moons.stderr);
    assert!(
        serde_json::from_str::<Value>(&moons.stdout)
            .unwrap()
            .is_array()
    );
    // Orbiting through the (silent) planet root is accepted and awaited; the awaited moon is
    // not held, so deorbiting it is the API's 404.
    let root_address = common::nodes::reference_identity(1).address().to_string();
    let orbit = cli(&daemon, &["orbit", "deadbeef00", &root_address]);
    assert_eq!(
        (orbit.code, orbit.stdout.as_str()),
        (0, "200 orbit OK\n"),
        "{}",
        orbit.stderr
    );
    // The reference lists an awaited moon with "waiting": true until it arrives.
    let awaited: Value = serde_json::from_str(&cli(&daemon, &["listmoons"]).stdout).unwrap();
    assert_eq!(awaited.as_array().map(Vec::len), Some(1), "{awaited}");
    assert_eq!(awaited[0]["id"], "000000deadbeef00", "{awaited}");
    assert_eq!(awaited[0]["waiting"], true, "{awaited}");
    let deorbit = cli(&daemon, &["deorbit", "deadbeef00"]);
    assert_eq!(deorbit.code, 1);
    let after: Value = serde_json::from_str(&cli(&daemon, &["listmoons"]).stdout).unwrap();
    assert_eq!(
        after,
        serde_json::json!([]),
        "deorbit cancels the awaited orbit"
    );
    assert!(
        deorbit.stdout.starts_with("404 deorbit {"),
        "{}",
        deorbit.stdout
    );

    // A network on the daemon's own controller.
    let created = cli(
        &daemon,
        &["controller", "network", "create", r#"{"name":"lab"}"#],
    );
    assert_eq!(created.code, 0, "{}{}", created.stdout, created.stderr);
    let prefix = "200 network create ";
    let nwid = created
        .stdout
        .trim_end()
        .strip_prefix(prefix)
        .unwrap()
        .to_owned();
    assert_eq!(nwid.len(), 16);
    assert!(nwid.starts_with(&daemon.address), "{nwid}");
    let list = cli(&daemon, &["controller", "network", "list"]);
    assert!(lines(&list.stdout).contains(&format!("200 network list {nwid}").as_str()));
    let shown = cli(&daemon, &["controller", "network", "show", &nwid]);
    assert_eq!(
        serde_json::from_str::<Value>(&shown.stdout).unwrap()["name"],
        "lab"
    );
    let set = cli(
        &daemon,
        &["controller", "network", "set", &nwid, r#"{"name":"lab2"}"#],
    );
    assert_eq!((set.code, set.stdout.as_str()), (0, "200 network set OK\n"));

    // The node joins its own private network; it is denied until authorized.
    assert_eq!(cli(&daemon, &["join", &nwid]).code, 0);
    let member_line = format!("200 member list {} ", daemon.address);
    wait_for("the member record", || {
        cli(&daemon, &["controller", "member", "list", &nwid])
            .stdout
            .contains(&member_line)
    });
    let authorized = cli(
        &daemon,
        &["controller", "member", "authorize", &nwid, &daemon.address],
    );
    assert_eq!(
        (authorized.code, authorized.stdout.as_str()),
        (0, "200 member authorize OK\n")
    );
    let member = cli(
        &daemon,
        &["controller", "member", "show", &nwid, &daemon.address, "-j"],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&member.stdout).unwrap()["authorized"],
        true
    );
    wait_for("the network to be OK", || {
        cli(&daemon, &["get", &nwid, "status"]).stdout == "OK\n"
    });
    assert_eq!(cli(&daemon, &["get", &nwid, "name"]).stdout, "lab2\n");
    let deauthorized = cli(
        &daemon,
        &[
            "controller",
            "member",
            "deauthorize",
            &nwid,
            &daemon.address,
        ],
    );
    assert_eq!(deauthorized.stdout, "200 member deauthorize OK\n");
    let deleted = cli(&daemon, &["controller", "network", "delete", &nwid]);
    assert_eq!(
        (deleted.code, deleted.stdout.as_str()),
        (0, "200 network delete OK\n")
    );
    let gone = cli(&daemon, &["controller", "network", "show", &nwid]);
    assert_eq!(gone.code, 1);
    assert!(
        gone.stdout.starts_with("404 network show "),
        "{}",
        gone.stdout
    );
}

#[test]
fn missing_port_token_or_service_are_reported() {
    let scratch = Scratch::new("nodaemon");
    let home = scratch.0.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home_switch = format!("-D{}", home.display());
    let zcli = zerotier_cli(&scratch.0.join("bin"));

    let no_port = run(&zcli, &[&home_switch, "info"]);
    assert_eq!(no_port.code, 2);
    assert!(
        no_port
            .stderr
            .contains("missing port and zerotier-one.port not found in"),
        "{}",
        no_port.stderr
    );

    // A port but no token (and no ~/.zeroTierOneAuthToken either).
    std::fs::write(home.join("zerotier-one.port"), "9").unwrap();
    let no_token = Command::new(&zcli)
        .args([home_switch.as_str(), "listnetworks"])
        .env("HOME", &scratch.0)
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("authtoken.secret not found"));

    // Nothing listening on the port.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = run(&ztrs(), &["info", &format!("-p{port}"), "-Tsecret"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stdout
            .starts_with("Error connecting to the ZeroTier service: "),
        "{}",
        refused.stdout
    );
}

#[test]
fn bad_command_lines_print_usage_and_fail() {
    let scratch = Scratch::new("usage");
    let zcli = zerotier_cli(&scratch.0.join("bin"));
    for (binary, args) in [
        (ztrs(), vec!["frobnicate"]),
        (zcli.clone(), vec!["frobnicate"]),
        (zcli.clone(), vec![]),
        (zcli.clone(), vec!["join"]),
        (ztrs(), vec!["set", NWID]),
    ] {
        let result = run(&binary, &args);
        assert_ne!(result.code, 0, "{args:?}");
        assert!(
            result.stderr.contains("Usage"),
            "{args:?}: {}",
            result.stderr
        );
    }
    let bad_port = run(&zcli, &["-p0", "info"]);
    assert_eq!(bad_port.code, 1);
    assert!(bad_port.stderr.contains("-p <PORT>"), "{}", bad_port.stderr);
    // Argument errors the reference answers with status 2.
    for args in [
        vec!["orbit", "0", "0", "-p1", "-Tx"],
        vec!["deorbit", "xyz", "-p1", "-Tx"],
        vec!["get", "123", "ip", "-p1", "-Tx"],
    ] {
        assert_eq!(run(&ztrs(), &args).code, 2, "{args:?}");
    }
    // Help and version succeed.
    let help = run(&zcli, &["-h"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("listnetworks"), "{}", help.stdout);
    let version = run(&zcli, &["-v"]);
    assert_eq!(version.code, 0);
    assert_eq!(version.stdout.trim(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let result = run(&ztrs(), &["completions", shell]);
        assert_eq!(result.code, 0, "{shell}: {}", result.stderr);
        assert!(result.stdout.contains("listnetworks"), "{shell}");
        assert!(result.stdout.contains("controller"), "{shell}");
    }
    assert_ne!(run(&ztrs(), &["completions", "tcsh"]).code, 0);
}
