//! The daemon as a process, under the reference's name: `zerotier-one [-p<port>] [home]`
//! creates its home (identity, token, port and pid files), serves the control API on
//! 127.0.0.1 at its port, stops cleanly on SIGTERM (exit 0, pid file gone), and refuses what
//! it cannot honour (`-d`, a local.conf key of the wrong type) with status 1 and a message.
//! Runs without TUN (`--no-tun`), so it needs no privileges.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// A temporary home removed on drop.
struct TempHome(PathBuf);

impl TempHome {
    fn new(tag: &str) -> TempHome {
        let dir = std::env::temp_dir().join(format!("ztrs-daemon-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempHome(dir)
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary reached through a `zerotier-one` symlink.
fn zerotier_one(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let link = dir.join("zerotier-one");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ztrs"), &link).unwrap();
    link
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_get(port: u16, path: &str, token: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-ZT1-Auth: {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn finish_within(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn zerotier_one_runs_a_home_serves_the_api_and_stops_on_sigterm() {
    let scratch = TempHome::new("run");
    let binary = zerotier_one(&scratch.0.join("bin"));
    let home = scratch.0.join("home");
    // Port 0: the kernel picks the UDP port; the API listens on the same number.
    let child = Command::new(&binary)
        .args(["-p0", "-U", "--no-tun"])
        .arg(&home)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for("the port file", || home.join("zerotier-one.port").exists());
    let port: u16 = std::fs::read_to_string(home.join("zerotier-one.port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(port, 0);
    assert_eq!(
        std::fs::read_to_string(home.join("zerotier-one.pid"))
            .unwrap()
            .trim(),
        pid.to_string()
    );
    let public = std::fs::read_to_string(home.join("identity.public")).unwrap();
    let address = &public[..10];
    let token = std::fs::read_to_string(home.join("authtoken.secret")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for secret in ["identity.secret", "authtoken.secret"] {
            let mode = std::fs::metadata(home.join(secret))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{secret}");
        }
    }
    let mut status = String::new();
    wait_for("the API", || {
        status = http_get(port, "/status", token.trim()).unwrap_or_default();
        status.starts_with("HTTP/1.1 200")
    });
    assert!(
        status.contains(&format!("\"address\":\"{address}\"")),
        "{status}"
    );
    assert!(
        http_get(port, "/status", "wrong")
            .unwrap()
            .starts_with("HTTP/1.1 401")
    );

    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = finish_within(child, Duration::from_secs(10));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}:\n{log}", output.status);
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(
        !home.join("zerotier-one.pid").exists(),
        "pid file left behind"
    );
}

#[test]
fn the_daemon_refuses_what_it_cannot_honour() {
    let scratch = TempHome::new("refuse");
    let binary = zerotier_one(&scratch.0.join("bin"));
    let home = scratch.0.join("home");

    let daemonize = Command::new(&binary)
        .args(["-d", "--no-tun"])
        .arg(&home)
        .output()
        .unwrap();
    assert_eq!(daemonize.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&daemonize.stderr).contains("service manager"));

    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("local.conf"),
        br#"{"settings": {"primaryPort": "x"}}"#,
    )
    .unwrap();
    let bad_conf = Command::new(&binary)
        .args(["-p0", "--no-tun"])
        .arg(&home)
        .output()
        .unwrap();
    assert_eq!(bad_conf.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_conf.stderr).contains("primaryPort"));

    let version = Command::new(&binary).arg("-v").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );
}
