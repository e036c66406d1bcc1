//! The network-namespace rig for end-to-end tests: `scripts/netns-rig.sh` builds a switch
//! namespace, a root + controller and N members running the real `ztrs` binary, and this
//! module drives it: commands inside namespaces, the control API, waits on observable
//! conditions with deadlines (never fixed sleeps), node crashes and restarts
//! ([`Rig::kill9`], [`Rig::stop`], [`Rig::start`]), checksummed background transfers
//! ([`Transfer`]), and teardown on drop (also when a test fails). Needs root (CI runs as
//! root); a missing privilege fails loudly, never skips.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_RIG: AtomicU32 = AtomicU32::new(0);

const TRAFFIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/traffic.py");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running rig; dropped = torn down.
pub struct Rig {
    pub name: String,
    env: HashMap<String, String>,
    /// The environment every daemon was started with (kept for restarts).
    daemon_env: Vec<(String, String)>,
}

impl Rig {
    /// Starts a rig with `members` members; `daemon_env` is passed to every daemon.
    pub fn up(members: usize, daemon_env: &[(&str, &str)]) -> Rig {
        let n = NEXT_RIG.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}{}", std::process::id() % 100_000, n);
        let mut command = Command::new("bash");
        command
            .arg(repo().join("scripts/netns-rig.sh"))
            .args(["up", &name, &members.to_string()])
            .env("ZTRS_BIN", env!("CARGO_BIN_EXE_ztrs"))
            .env("RIG_TIMEOUT", "40");
        for (key, value) in daemon_env {
            command.env(key, value);
        }
        // Built before the checks so a failed start is torn down too.
        let mut rig = Rig {
            name,
            env: HashMap::new(),
            daemon_env: daemon_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let output = command.output().expect("run netns-rig.sh");
        assert!(
            output.status.success(),
            "rig did not come up:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        rig.reload_env();
        rig
    }

    /// Kills node `n` with SIGKILL (a crash: no shutdown, no cleanup) and waits until it
    /// has exited.
    pub fn kill9(&self, n: usize) {
        self.rig_command(&["stop", &self.name, &n.to_string(), "kill"], &[]);
    }

    /// Stops node `n` with SIGTERM (bounded) and waits until it has exited.
    pub fn stop(&self, n: usize) {
        self.rig_command(&["stop", &self.name, &n.to_string()], &[]);
    }

    /// Starts the stopped nodes `nodes` again, with the rig's daemon environment plus
    /// `extra_env` (later entries win), and waits until the rig is ready again (the root
    /// listens, every member has its addresses and pings every other member).
    pub fn start(&mut self, nodes: &[usize], extra_env: &[(&str, &str)]) {
        let mut env: Vec<(String, String)> = self.daemon_env.clone();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let numbers: Vec<String> = nodes.iter().map(usize::to_string).collect();
        let mut args = vec!["start", self.name.as_str()];
        args.extend(numbers.iter().map(String::as_str));
        self.rig_command(&args, &env);
        self.reload_env();
    }

    /// Runs `netns-rig.sh args` with `env`, asserting success.
    fn rig_command(&self, args: &[&str], env: &[(String, String)]) {
        let output = Command::new("bash")
            .arg(repo().join("scripts/netns-rig.sh"))
            .args(args)
            .env("ZTRS_BIN", env!("CARGO_BIN_EXE_ztrs"))
            .env("RIG_TIMEOUT", "40")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run netns-rig.sh");
        assert!(
            output.status.success(),
            "netns-rig.sh {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Re-reads the rig's env file (after a restart, PIDs change).
    pub fn reload_env(&mut self) {
        let output = Command::new("bash")
            .arg(repo().join("scripts/netns-rig.sh"))
            .args(["env", &self.name])
            .output()
            .expect("run netns-rig.sh env");
        assert!(output.status.success(), "rig env failed");
        self.env = parse_env(&String::from_utf8_lossy(&output.stdout));
    }

    pub fn var(&self, key: &str) -> String {
        self.env
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("rig env has no {key}: {:?}", self.env))
    }

    /// Namespace of node `n` (0 = root/controller).
    pub fn ns(&self, n: usize) -> String {
        self.var(&format!("NS_{n}"))
    }

    pub fn zt_ip(&self, n: usize) -> String {
        self.var(&format!("ZT_IP_{n}"))
    }

    pub fn zt_ip6(&self, n: usize) -> String {
        self.var(&format!("ZT_IP6_{n}"))
    }

    pub fn interface(&self, n: usize) -> String {
        self.var(&format!("IF_{n}"))
    }

    pub fn home(&self, n: usize) -> String {
        self.var(&format!("HOME_{n}"))
    }

    pub fn nwid(&self) -> String {
        self.var("NWID")
    }

    /// Runs `script` with `sh -c` inside node `n`'s namespace.
    pub fn sh(&self, n: usize, script: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(n), "sh", "-c", script])
            .output()
            .expect("ip netns exec")
    }

    /// Like [`Rig::sh`], asserting success; returns stdout.
    pub fn ok(&self, n: usize, script: &str) -> String {
        let out = self.sh(n, script);
        assert!(
            out.status.success(),
            "in {} `{script}` failed:\n{}\n{}",
            self.ns(n),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `program args` in node `n`'s namespace without waiting.
    pub fn spawn(&self, n: usize, program: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(n), program])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in namespace")
    }

    /// A control API request from inside node `n`'s namespace; returns the body as JSON.
    pub fn api(&self, n: usize, method: &str, path: &str) -> serde_json::Value {
        self.api_with_body(n, method, path, "")
    }

    /// Like [`Rig::api`] with a JSON request body (none when empty).
    pub fn api_with_body(
        &self,
        n: usize,
        method: &str,
        path: &str,
        body: &str,
    ) -> serde_json::Value {
        let home = self.home(n);
        let port = self.var("PORT");
        let data = if body.is_empty() {
            String::new()
        } else {
            format!("-d '{body}'")
        };
        let script = format!(
            "curl -sS --max-time 10 -X {method} {data} -H \"X-ZT1-Auth: $(cat {home}/authtoken.secret)\" \
             http://127.0.0.1:{port}{path}"
        );
        let body = self.ok(n, &script);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
    }

    /// The boundary counter `name` of node `n`'s port on the rig network.
    pub fn boundary_counter(&self, n: usize, name: &str) -> u64 {
        let network = self.api(n, "GET", &format!("/network/{}", self.nwid()));
        network["ztrs"]["dataplane"]["boundary"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no boundary counter {name} in {network}"))
    }

    /// The TUN counter `name` of node `n`'s port.
    pub fn tun_counter(&self, n: usize, name: &str) -> u64 {
        let network = self.api(n, "GET", &format!("/network/{}", self.nwid()));
        network["ztrs"]["dataplane"]["tun"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no tun counter {name} in {network}"))
    }

    /// The daemon log of node `n` (for failure messages).
    pub fn log(&self, n: usize) -> String {
        std::fs::read_to_string(format!("{}/h{n}.log", self.var("STATE"))).unwrap_or_default()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/netns-rig.sh"))
            .args(["down", &self.name])
            .output();
    }
}

/// A checksummed TCP transfer (`traffic.py`) from one member to another over their ZT
/// addresses, running in the background; the receiver's progress is readable meanwhile.
pub struct Transfer {
    receiver: Child,
    sender: Child,
    progress_file: String,
    started: Instant,
}

/// What a finished transfer measured.
pub struct Outcome {
    pub bytes: u64,
    pub seconds: f64,
}

impl Transfer {
    /// Starts `mib` MiB from member `from` to member `to` on `port`, paced to `kib_per_s`
    /// (0: as fast as TCP goes).
    pub fn start(
        rig: &Rig,
        from: usize,
        to: usize,
        port: u16,
        mib: u64,
        kib_per_s: u64,
    ) -> Transfer {
        let progress_file = format!("{}/progress-{port}", rig.var("STATE"));
        let to_ip = rig.zt_ip(to);
        let port_text = port.to_string();
        let receiver = rig.spawn(
            to,
            "python3",
            &[
                TRAFFIC,
                "tcp-recv-progress",
                &to_ip,
                &port_text,
                &progress_file,
            ],
        );
        // The receiver writes 0 once it listens.
        wait_until(Duration::from_secs(10), "the receiver to listen", || {
            std::path::Path::new(&progress_file).exists()
        });
        let mib_text = mib.to_string();
        let sender = if kib_per_s == 0 {
            rig.spawn(
                from,
                "python3",
                &[TRAFFIC, "tcp-send", &to_ip, &port_text, &mib_text],
            )
        } else {
            let rate = kib_per_s.to_string();
            rig.spawn(
                from,
                "python3",
                &[
                    TRAFFIC,
                    "tcp-send-paced",
                    &to_ip,
                    &port_text,
                    &mib_text,
                    &rate,
                ],
            )
        };
        Transfer {
            receiver,
            sender,
            progress_file,
            started: Instant::now(),
        }
    }

    /// Bytes the receiver has read so far.
    pub fn received(&self) -> u64 {
        std::fs::read_to_string(&self.progress_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until the receiver has read at least `bytes`.
    pub fn wait_for(&self, bytes: u64, limit: Duration, what: &str) {
        wait_until(limit, what, || self.received() >= bytes);
    }

    /// Waits for both ends; asserts byte count and SHA-256 match.
    pub fn finish(self, what: &str) -> Outcome {
        let sent = finish(self.sender, &format!("{what}: sender"));
        let got = finish(self.receiver, &format!("{what}: receiver"));
        assert_eq!(sent.trim(), got.trim(), "{what}: transfer differs");
        let bytes = got
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Outcome {
            bytes,
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// Waits until `check` holds, polling every 50 ms, at most `limit`; panics with `what`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses `KEY=value` lines as `printf %q` writes them (backslash escapes only).
fn parse_env(text: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let mut unquoted = String::new();
        let mut escaped = false;
        for c in value.chars() {
            if escaped {
                unquoted.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c != '\'' {
                unquoted.push(c);
            }
        }
        env.insert(key.to_string(), unquoted);
    }
    env
}

/// Output of a finished child as text, asserting success.
pub fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().expect("wait for child");
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
