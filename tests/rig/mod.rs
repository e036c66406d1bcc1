//! The network-namespace rig for end-to-end tests: `scripts/netns-rig.sh` builds a switch
//! namespace, a root + controller and N members running the real `ztrs` binary, and this
//! module drives it: commands inside namespaces, the control API, waits on observable
//! conditions with deadlines (never fixed sleeps), and teardown on drop (also when a test
//! fails). Needs root (CI runs as root); a missing privilege fails loudly, never skips.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_RIG: AtomicU32 = AtomicU32::new(0);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running rig; dropped = torn down.
pub struct Rig {
    pub name: String,
    env: HashMap<String, String>,
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
