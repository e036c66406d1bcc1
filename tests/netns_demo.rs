//! `ztrs demo --tun` as a process (run as root; CI is): it builds its namespaces, runs real
//! daemons, moves kernel TCP through the members' TUN interfaces and reports one JSON object;
//! afterwards nothing with the run's prefix is left, also when the demo is stopped with
//! SIGTERM half-way. Without root, or without `ip`, it refuses clearly. A guard removes
//! whatever a failed run left behind, so a failing test leaves no namespaces either.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ZTRS: &str = env!("CARGO_BIN_EXE_ztrs");

/// The demo's naming scheme: every namespace and interface of a run starts with this.
fn prefix_of(pid: u32) -> String {
    format!("ztd{pid}")
}

/// True if `name` is one of the run's: `prefix` followed by anything but a digit (run
/// `ztd12` must not claim run `ztd123`'s names; tests run concurrently).
fn of_run(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// Namespaces and host interfaces of the run with `prefix`.
fn leftovers(prefix: &str) -> Vec<String> {
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(out.status.success(), "ip {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let namespaces = run(&["netns", "list"]);
    let links = run(&["-o", "link", "show"]);
    let mut found: Vec<String> = namespaces
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| of_run(name, prefix))
        .map(|name| format!("namespace {name}"))
        .collect();
    found.extend(
        links
            .lines()
            .filter_map(|line| line.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name))
            .filter(|name| of_run(name, prefix))
            .map(|name| format!("interface {name}")),
    );
    found
}

/// Kills the demo if the test fails while it runs, and removes whatever it left behind.
struct Run {
    child: Option<Child>,
    prefix: String,
}

impl Run {
    fn start(args: &[&str], stderr: Stdio) -> Run {
        let child = Command::new(ZTRS)
            .args(["demo", "--tun"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start ztrs demo --tun");
        Run {
            prefix: prefix_of(child.id()),
            child: Some(child),
        }
    }

    fn finish(&mut self) -> Output {
        self.child
            .take()
            .expect("running")
            .wait_with_output()
            .expect("wait for the demo")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let out = Command::new("ip").args(["netns", "list"]).output();
        let listing = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        for name in listing.unwrap_or_default().lines() {
            let Some(name) = name.split_whitespace().next() else {
                continue;
            };
            if !of_run(name, &self.prefix) {
                continue;
            }
            let pids = Command::new("ip").args(["netns", "pids", name]).output();
            let pids = pids.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            for pid in pids.unwrap_or_default().split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

#[test]
fn tun_demo_moves_kernel_tcp_through_tun_and_cleans_up() {
    let mut run = Run::start(&["--quiet", "--json", "--bytes", "16M"], Stdio::piped());
    let output = run.finish();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ztrs demo --tun failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stderr.trim().is_empty(),
        "--quiet prints nothing else:\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("--json prints one JSON object ({e}):\n{stdout}"));
    assert_eq!(summary["mode"], "tun");
    assert_eq!(summary["prefix"], run.prefix.as_str(), "{summary}");

    let tcp = &summary["tcp"];
    assert_eq!(tcp["bytes"], 16 << 20, "{summary}");
    assert_eq!(tcp["digest_match"], true, "{summary}");
    assert_eq!(tcp["sha256_sent"], tcp["sha256_received"], "{summary}");
    assert_eq!(tcp["sha256_sent"].as_str().map(str::len), Some(64));
    assert!(tcp["bits_per_second"].as_f64().unwrap() > 0.0, "{summary}");

    for name in ["alice", "bob"] {
        let member = &summary["members"][name];
        assert_eq!(member["configured"], true, "{name}: {summary}");
        let ipv4 = member["ipv4"].as_str().unwrap();
        assert!(ipv4.starts_with("10.147.17."), "{name}: {summary}");
        assert!(member["interface"].as_str().unwrap().starts_with("zt"));
        assert_eq!(member["mtu"], 2800, "{name}: {summary}");
        let denied = member["denied_ms"].as_f64().unwrap();
        let configured = member["configured_ms"].as_f64().unwrap();
        assert!(denied > 0.0 && configured > denied, "{name}: {summary}");
    }
    assert_ne!(
        summary["members"]["alice"]["ipv4"],
        summary["members"]["bob"]["ipv4"]
    );

    // The data crossed the TUN interfaces: alice's daemon read it from hers, bob's wrote it
    // to his (at most 2800 bytes each, so thousands of packets).
    let min_packets = (16u64 << 20) / 2800;
    let alice_read = summary["members"]["alice"]["tun_packets_read"].as_u64();
    let bob_written = summary["members"]["bob"]["tun_packets_written"].as_u64();
    assert!(alice_read.unwrap() >= min_packets, "{summary}");
    assert!(bob_written.unwrap() >= min_packets, "{summary}");

    let rtt = &summary["rtt"];
    assert_eq!(rtt["samples"], 200, "{summary}");
    let (median, p99) = (rtt["median_us"].as_u64(), rtt["p99_us"].as_u64());
    assert!(median.is_some_and(|m| m > 0) && p99 >= median, "{summary}");
    assert_eq!(summary["teardown"]["namespaces"], 4, "{summary}");

    assert_eq!(leftovers(&run.prefix), Vec::<String>::new());
}

#[test]
fn tun_demo_stopped_by_sigterm_mid_transfer_removes_everything() {
    let mut run = Run::start(&["--bytes", "8G"], Stdio::piped());
    let pid = run.child.as_ref().unwrap().id();
    let stderr = run.child.as_mut().unwrap().stderr.take().unwrap();
    // A reader thread drains stderr to the end (a closed pipe would break the demo's
    // output), passing each line on.
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // Wait until the transfer starts (daemons, namespaces, TUN interfaces and two busy
    // traffic threads to stop; the demo bounds its own steps, this only catches a hang).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = String::new();
    while !seen.contains("kernel TCP alice -> bob") {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(e) => panic!("the transfer did not start ({e}); the demo said:\n{seen}"),
        }
    }
    let namespaces = leftovers(&run.prefix);
    assert!(
        namespaces.len() >= 4,
        "the run's namespaces exist: {namespaces:?}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // Teardown is bounded (5 s per daemon); give it a generous, but finite, time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let child = run.child.as_mut().unwrap();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("poll the demo") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(1), "a stopped demo fails");
    assert_eq!(leftovers(&run.prefix), Vec::<String>::new());
}

#[test]
fn tun_demo_refuses_without_root() {
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", ZTRS])
        .args(["demo", "--tun", "--quiet"])
        .output()
        .expect("run setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn tun_demo_refuses_without_the_ip_command() {
    let output = Command::new(ZTRS)
        .args(["demo", "--tun", "--quiet"])
        .env("PATH", "/nonexistent")
        .output()
        .expect("run ztrs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs the `ip` command"), "{stderr}");
    assert!(output.stdout.is_empty());
}
