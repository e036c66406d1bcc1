//! End to end through the kernel: real `ztrs` daemons in network namespaces (our own root,
//! controller and members, built by `scripts/netns-rig.sh`), traffic through their TUN
//! interfaces. Run as root (CI is); nothing leaves the namespaces the tests create.

mod rig;

use std::time::Duration;

use rig::{Rig, finish, wait_until};

const TRAFFIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/traffic.py");

/// Runs a receiver in `to`, waits until it is listening, then the sender in `from`.
fn transfer(rig: &Rig, from: usize, to: usize, recv: &[&str], send: &[&str]) -> (String, String) {
    let mut receiver = rig.spawn(to, "python3", &[&[TRAFFIC][..], recv].concat());
    // UDP receivers print "ready" once bound; TCP receivers are retried by the sender.
    if recv[0].starts_with("udp") || recv[0].starts_with("mcast") {
        wait_for_ready(&mut receiver);
    }
    let sent = rig.ok(
        from,
        &shell_words(&[&["python3", TRAFFIC][..], send].concat()),
    );
    (sent, finish(receiver, "receiver"))
}

fn wait_for_ready(child: &mut std::process::Child) {
    use std::io::BufRead;
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("receiver output");
    assert_eq!(line.trim(), "ready", "receiver did not start");
}

fn shell_words(words: &[&str]) -> String {
    words.join(" ")
}

#[test]
fn members_carry_ipv4_ipv6_udp_tcp_and_near_mtu_packets() {
    let rig = Rig::up(2, &[]);
    let (ip1, ip2) = (rig.zt_ip(1), rig.zt_ip(2));
    rig.ok(1, &format!("ping -c 3 -i 0.2 -W 2 {ip2}"));
    rig.ok(2, &format!("ping -c 3 -i 0.2 -W 2 {ip1}"));
    rig.ok(1, &format!("ping -6 -c 3 -i 0.2 -W 2 {}", rig.zt_ip6(2)));
    // The interface has the network's MTU: 2800-byte packets pass unfragmented (DF set),
    // one byte more is refused locally.
    let iface = rig.interface(1);
    assert!(
        rig.ok(1, &format!("ip link show {iface}"))
            .contains("mtu 2800")
    );
    rig.ok(1, &format!("ping -M do -s 2772 -c 2 -W 2 {ip2}"));
    assert!(
        !rig.sh(1, &format!("ping -M do -s 2773 -c 1 -W 1 {ip2}"))
            .status
            .success()
    );

    // UDP both ways.
    for (from, to, ip) in [(1, 2, &ip2), (2, 1, &ip1)] {
        let (_, got) = transfer(
            &rig,
            from,
            to,
            &["udp-recv", ip, "5001", "20", "10"],
            &["udp-send", ip, "5001", "25"],
        );
        assert_eq!(got.lines().last(), Some("20"), "UDP {from} -> {to}");
    }

    // 200 MiB of TCP through the kernel stacks, byte for byte.
    let (sent, got) = transfer(
        &rig,
        1,
        2,
        &["tcp-recv", &ip2, "5002"],
        &["tcp-send", &ip2, "5002", "200"],
    );
    assert_eq!(sent.trim(), got.trim(), "TCP transfer differs");
    assert!(got.starts_with(&(200u64 << 20).to_string()));
}

#[test]
fn multicast_reaches_subscribers_only_and_broadcast_reaches_all() {
    let rig = Rig::up(3, &[]);
    let (ip1, ip2, ip3) = (rig.zt_ip(1), rig.zt_ip(2), rig.zt_ip(3));
    let group = "239.7.7.7";
    // Member 2 subscribes (the kernel joins the group on the ZeroTier interface, the daemon
    // reads the membership and announces it); member 3 does not.
    let mut listener = rig.spawn(
        2,
        "python3",
        &[TRAFFIC, "mcast-recv", group, "5003", &ip2, "8"],
    );
    wait_for_ready(&mut listener);
    let before3 = rig.tun_counter(3, "tunPacketsWritten");
    // The announcement takes up to one membership poll (2 s); send until it is delivered.
    rig.ok(
        1,
        &format!("python3 {TRAFFIC} mcast-send {group} 5003 {ip1} 150"),
    );
    let got: u64 = finish(listener, "multicast listener")
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(got >= 20, "subscriber got {got} of 150 multicast datagrams");
    let after3 = rig.tun_counter(3, "tunPacketsWritten");
    assert!(
        after3 - before3 < 5,
        "a non-subscriber received multicast: {} packets written to its TUN",
        after3 - before3
    );
    // Broadcast ping: every member hears it and answers.
    let replies = rig.ok(1, "ping -b -c 3 -i 0.3 -W 2 10.147.17.255 2>&1 || true");
    for ip in [&ip2, &ip3] {
        assert!(
            replies.contains(ip.as_str()) || broadcast_heard(&rig, ip),
            "no broadcast reply from {ip}: {replies}"
        );
    }
}

/// Linux ignores broadcast pings by default; then a delivered broadcast shows in counters.
fn broadcast_heard(rig: &Rig, ip: &str) -> bool {
    let n = if ip == rig.zt_ip(2) { 2 } else { 3 };
    rig.boundary_counter(n, "to_tun_delivered") > 0
}

#[test]
fn boundary_policy_handles_and_counts_injected_packets() {
    let rig = Rig::up(2, &[]);
    let (ip1, ip2) = (rig.zt_ip(1), rig.zt_ip(2));
    let (ip6_1, ip6_2) = (rig.zt_ip6(1), rig.zt_ip6(2));
    // Resolve member 2 first, so injected packets are judged, not queued for ARP.
    rig.ok(1, &format!("ping -c 1 -W 2 {ip2}"));
    let cases: [(&str, &str, &str, &str); 4] = [
        ("bad-udp-checksum", &ip1, &ip2, "to_network_bad_checksum"),
        ("ipv4-fragment", &ip1, &ip2, "to_network_fragments_passed"),
        (
            "ipv6-unknown-ext",
            &ip6_1,
            &ip6_2,
            "to_network_unknown_ext_header",
        ),
        (
            "ipv6-hop-by-hop",
            &ip6_1,
            &ip6_2,
            "to_network_ext_headers_passed",
        ),
    ];
    for (kind, src, dst, counter) in cases {
        let before = rig.boundary_counter(1, counter);
        rig.ok(1, &format!("python3 {TRAFFIC} inject {kind} {src} {dst}"));
        wait_until(Duration::from_secs(5), counter, || {
            rig.boundary_counter(1, counter) == before + 1
        });
    }
    // What passed by policy arrived and was counted on the other side too.
    wait_until(Duration::from_secs(5), "fragment delivered", || {
        rig.boundary_counter(2, "to_tun_fragments_passed") >= 1
    });
    wait_until(Duration::from_secs(5), "extension header delivered", || {
        rig.boundary_counter(2, "to_tun_ext_headers_passed") >= 1
    });
    assert_eq!(rig.boundary_counter(2, "to_tun_bad_checksum"), 0);
    // The TUN ports as a whole report through the counters endpoint too.
    let counters = rig.api(1, "GET", "/ztrs/counters");
    assert_eq!(counters["attachment"]["ports"], 1, "{counters}");
    assert_eq!(counters["attachment"]["portFailures"], 0, "{counters}");
}

#[test]
fn leave_removes_the_interface_and_a_restart_restores_it() {
    let mut rig = Rig::up(2, &[]);
    let iface2 = rig.interface(2);
    let ip2 = rig.zt_ip(2);
    // Restart member 2: same interface name and addresses, traffic flows again.
    let pid = rig.var("PID_2");
    rig.ok(0, &format!("kill -TERM {pid}"));
    wait_until(Duration::from_secs(10), "member 2 to stop", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(
        !rig.sh(2, &format!("ip link show {iface2}"))
            .status
            .success(),
        "interface outlived its daemon"
    );
    restart_member(&rig, 2);
    wait_until(
        Duration::from_secs(20),
        "member 2 back with its address",
        || {
            rig.sh(2, &format!("ip -4 addr show dev {iface2}"))
                .stdout
                .windows(ip2.len())
                .any(|w| w == ip2.as_bytes())
        },
    );
    wait_until(Duration::from_secs(20), "ping after restart", || {
        rig.sh(1, &format!("ping -c 1 -W 1 {ip2}")).status.success()
    });
    rig.reload_env();

    // Local settings apply at once: without allowManaged the address goes, with it back.
    let nwid = rig.nwid();
    let has_ip2 = |rig: &Rig| {
        String::from_utf8_lossy(&rig.sh(2, &format!("ip -4 addr show dev {iface2}")).stdout)
            .contains(&ip2)
    };
    rig.api_with_body(
        2,
        "POST",
        &format!("/network/{nwid}"),
        r#"{"allowManaged": false}"#,
    );
    wait_until(Duration::from_secs(10), "managed address removed", || {
        !has_ip2(&rig)
    });
    rig.api_with_body(
        2,
        "POST",
        &format!("/network/{nwid}"),
        r#"{"allowManaged": true}"#,
    );
    wait_until(Duration::from_secs(10), "managed address restored", || {
        has_ip2(&rig)
    });

    // Leave: the interface and its routes go; the network is forgotten on disk.
    let left = rig.api(2, "DELETE", &format!("/network/{nwid}"));
    assert_eq!(left["result"], true, "{left}");
    wait_until(Duration::from_secs(10), "interface removed", || {
        !rig.sh(2, &format!("ip link show {iface2}"))
            .status
            .success()
    });
    assert!(
        !rig.ok(2, "ip route").contains("10.147.17."),
        "a route outlived the leave"
    );
    assert!(!std::path::Path::new(&format!("{}/networks.d/{nwid}.conf", rig.home(2))).exists());
    assert_eq!(rig.api(2, "GET", "/network"), serde_json::json!([]));
}

/// Starts member `n` again from its home, as the rig started it.
fn restart_member(rig: &Rig, n: usize) {
    let script = format!(
        "RUST_LOG=info nohup {} service -p {} {} >> {}/h{n}.log 2>&1 & echo $! > {}/h{n}.pid",
        env!("CARGO_BIN_EXE_ztrs"),
        rig.var("PORT"),
        rig.home(n),
        rig.var("STATE"),
        rig.var("STATE"),
    );
    rig.ok(n, &script);
}
