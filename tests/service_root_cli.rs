//! `ztrs root` as a process: it starts from a home directory holding `identity.secret` and
//! a private `planet` listing that identity as its root, listens on the given port, and stops
//! cleanly (exit status 0) on SIGTERM. Waits are on its log lines and exit, with deadlines.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ztrs::crypto::Identity;
use ztrs::crypto::c25519::{SIGNATURE_LEN, generate_keypair};
use ztrs::wire::inet_address::InetAddress;
use ztrs::wire::world::{Root, World, WorldType};

const DEADLINE: Duration = Duration::from_secs(30);

#[cfg(unix)]
#[test]
fn root_runs_from_a_home_and_stops_on_sigterm() {
    let home = std::env::temp_dir().join(format!("ztrs-root-cli-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let secret = common::read_reference("id1.secret");
    let identity: Identity = secret.trim().parse().unwrap();
    std::fs::write(home.join("identity.secret"), secret.trim()).unwrap();

    // A free loopback port (released just before the root binds it).
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (public, key) = generate_keypair();
    let endpoint = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut planet = World {
        world_type: WorldType::Planet,
        id: 0x5a7a_0000_0005,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: identity.to_public(),
            stable_endpoints: vec![InetAddress::Ip(endpoint.ip(), endpoint.port())],
        }],
    };
    planet.sign(&key);
    std::fs::write(home.join("planet"), planet.to_bytes()).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_ztrs"))
        .arg("root")
        .arg("--home")
        .arg(&home)
        .arg("--port")
        .arg(port.to_string())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ztrs root");
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let mut wait_for = |needle: &str| {
        while !log.iter().any(|line: &String| line.contains(needle)) {
            match lines.recv_timeout(DEADLINE) {
                Ok(line) => log.push(line),
                Err(_) => panic!("no log line with {needle:?}; log so far: {log:#?}"),
            }
        }
    };
    wait_for("service starting");
    // The root is listening: a second socket on that port is refused.
    assert!(UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_err());

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    wait_for("root stopped");
    let (exit_tx, exit) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exit_tx.send(child.wait());
    });
    let status = exit
        .recv_timeout(DEADLINE)
        .expect("ztrs root exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_dir_all(&home).unwrap();
}
