//! User-space mode end to end: in a namespace rig, member 2 is restarted as an unprivileged
//! user (uid 65534, no capabilities, no TUN) in user-space mode with a SOCKS5 proxy, an HTTP
//! proxy, a `-L` and a `-R` forward; member 1 keeps its TUN interface. Traffic goes both
//! ways between the kernel's stack on member 1 and our stack on member 2. Run as root (CI
//! is); nothing leaves the namespaces the rig creates.

mod rig;

use std::time::Duration;

use rig::{Rig, finish, wait_until};

const TRAFFIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/traffic.py");
const SOCKS: &str = "127.0.0.1:1080";
const HTTP: &str = "127.0.0.1:8080";

/// Stops member `n` and starts it again as uid 65534 in user-space mode with `args`.
fn restart_unprivileged(rig: &Rig, n: usize, args: &str) {
    let pid = rig.var(&format!("PID_{n}"));
    rig.ok(n, &format!("kill -TERM {pid}"));
    wait_until(Duration::from_secs(15), "the TUN member to stop", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    let home = rig.home(n);
    let script = format!(
        "chown -R 65534:65534 {home} && \
         RUST_LOG=info nohup setpriv --reuid=65534 --regid=65534 --clear-groups \
         --inh-caps=-all --bounding-set=-all {bin} service --userspace --socks5 {SOCKS} \
         --http-proxy {HTTP} -L 127.0.0.1:9000:{zt1}:5000 -R 8022:127.0.0.1:7000 \
         -p {port} {home} >> {state}/h{n}.log 2>&1 &",
        bin = env!("CARGO_BIN_EXE_ztrs"),
        zt1 = rig.zt_ip(1),
        port = rig.var("PORT"),
        state = rig.var("STATE"),
    );
    rig.ok(n, &script);
    let _ = args;
}

/// Waits until something listens on TCP `port` in node `n`'s namespace (a forward accepts
/// at once and would find its target closed otherwise).
fn wait_listening(rig: &Rig, n: usize, port: u16) {
    wait_until(Duration::from_secs(10), "a TCP listener", || {
        !rig.ok(n, &format!("ss -Hltn 'sport = :{port}'"))
            .trim()
            .is_empty()
    });
}

fn python(rig: &Rig, n: usize, args: &[&str]) -> std::process::Child {
    rig.spawn(n, "python3", &[&[TRAFFIC][..], args].concat())
}

#[test]
fn unprivileged_user_space_member_talks_to_a_tun_member_both_ways() {
    let rig = Rig::up(2, &[]);
    let zt1 = rig.zt_ip(1);
    let zt2 = rig.zt_ip(2);
    restart_unprivileged(&rig, 2, "");
    assert!(
        !rig.ok(2, "ip -o link").contains(&rig.interface(2)),
        "the user-space member must not have a TUN interface"
    );
    // Ready when the TUN member reaches the user-space stack (smoltcp answers pings).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !rig.sh(1, &format!("ping -c1 -W1 {zt2}")).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "the user-space member does not answer ping; its log:\n{}",
            rig.log(2)
        );
    }

    // curl through the SOCKS5 proxy and the HTTP proxy to an HTTP server on the TUN member.
    rig.ok(
        1,
        "mkdir -p /tmp/ztrs-us-www && head -c 3000000 /dev/urandom > /tmp/ztrs-us-www/blob",
    );
    let expected = rig.ok(1, "sha256sum < /tmp/ztrs-us-www/blob");
    let mut server = rig.spawn(
        1,
        "python3",
        &[
            "-m",
            "http.server",
            "--bind",
            &zt1,
            "8000",
            "--directory",
            "/tmp/ztrs-us-www",
        ],
    );
    let url = format!("http://{zt1}:8000/blob");
    wait_until(Duration::from_secs(10), "the HTTP server", || {
        rig.sh(1, &format!("curl -sf -o /dev/null {url}"))
            .status
            .success()
    });
    let via_socks = rig.ok(
        2,
        &format!("curl -sSf --socks5-hostname {SOCKS} {url} | sha256sum"),
    );
    assert_eq!(via_socks, expected, "SOCKS5 download differs");
    let via_http = rig.ok(2, &format!("curl -sSf -x http://{HTTP} {url} | sha256sum"));
    assert_eq!(via_http, expected, "HTTP proxy download differs");
    let _ = server.kill();
    let _ = server.wait();
    rig.ok(1, "rm -rf /tmp/ztrs-us-www");

    // 100 MiB through the -L forward into the TUN member.
    let receiver = python(&rig, 1, &["tcp-recv", &zt1, "5000"]);
    wait_listening(&rig, 1, 5000);
    let sent = rig.ok(2, &format!("python3 {TRAFFIC} tcp-send 127.0.0.1 9000 100"));
    let received = finish(receiver, "-L receiver");
    assert_eq!(sent, received, "-L transfer differs");
    assert!(sent.starts_with("104857600 "), "sent {sent}");

    // The TUN member reaches a host service of the user-space member through -R.
    let receiver = python(&rig, 2, &["tcp-recv", "127.0.0.1", "7000"]);
    wait_listening(&rig, 2, 7000);
    let sent = rig.ok(1, &format!("python3 {TRAFFIC} tcp-send {zt2} 8022 10"));
    let received = finish(receiver, "-R receiver");
    assert_eq!(sent, received, "-R transfer differs");

    // UDP echo on the TUN member, reached through SOCKS5 UDP ASSOCIATE.
    let mut echo = python(&rig, 1, &["udp-echo", &zt1, "5353", "20"]);
    {
        use std::io::BufRead;
        let mut line = String::new();
        let stdout = echo.stdout.as_mut().expect("piped");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("echo ready");
        assert_eq!(line.trim(), "ready");
    }
    let reply = rig.ok(
        2,
        &format!("python3 {TRAFFIC} socks5-udp 127.0.0.1 1080 {zt1} 5353"),
    );
    assert_eq!(reply.trim(), "ztrs socks5 udp");
    let _ = echo.kill();
    let _ = echo.wait();

    // The front ends' counters are visible through the control API.
    let counters = rig.api(2, "GET", "/ztrs/counters");
    let fronts = &counters["attachment"]["fronts"];
    assert!(
        fronts.as_object().is_some_and(|f| f.len() == 4),
        "front counters missing: {counters}"
    );
}
