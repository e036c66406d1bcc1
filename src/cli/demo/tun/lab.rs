//! The demo's private world in network namespaces, and its teardown: a state directory with
//! one home per node (identity, a private planet, the API token), a switch namespace with a
//! bridge, one namespace per node joined to it by a veth pair, and a `ztrs service` daemon in
//! each. Everything it creates is recorded as it is created, and [`Lab`]'s `Drop` removes it
//! all (daemons first, then namespaces, then the state directory) on success, error, panic or
//! signal alike.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::api::Api;
use crate::crypto::Identity;
use crate::store::Home;
use crate::wire::Address;

/// UDP port of every daemon, and its API's TCP port on 127.0.0.1 (each daemon has a namespace
/// of its own, so they can all share it).
pub(super) const PORT: u16 = 9993;
/// How long a daemon gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of a daemon's log quoted when it fails.
const LOG_TAIL_LINES: usize = 12;

/// One node of the demo: where it runs and how to reach its API.
pub(super) struct Host {
    pub(super) name: &'static str,
    pub(super) namespace: String,
    /// The switch-side end of the host's veth pair (the host side is `eth0`).
    pub(super) veth: String,
    pub(super) underlay_ip: Ipv4Addr,
    pub(super) address: Address,
    /// How long generating its identity took (the three run in parallel).
    pub(super) identity_took: Duration,
    pub(super) api: Api,
    pub(super) home: PathBuf,
}

/// A daemon we started, with its log.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// Everything the demo created; dropped = removed.
pub(super) struct Lab {
    /// Prefix of every namespace and interface name of this run (`ztd<pid>`).
    pub(super) prefix: String,
    pub(super) switch: String,
    state_dir: PathBuf,
    /// Namespaces created so far, in creation order.
    namespaces: Vec<String>,
    daemons: Vec<Daemon>,
    torn_down: bool,
}

/// Refuses clearly when the demo cannot work: not root, or no `ip` (iproute2).
pub(super) fn check_privileges() -> Result<(), String> {
    if effective_uid()? != 0 {
        return Err(
            "--tun needs root (it creates network namespaces, veth pairs and TUN \
                    interfaces); run it with sudo, or run `ztrs demo` without --tun"
                .to_owned(),
        );
    }
    match Command::new("ip").arg("-V").output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(_) => Err("`ip -V` failed: --tun needs a working iproute2 `ip` command".to_owned()),
        Err(e) => Err(format!(
            "--tun needs the `ip` command (iproute2), which cannot be run: {e}"
        )),
    }
}

/// The effective uid, from `/proc/self/status` (no `unsafe` outside `platform/`).
fn effective_uid() -> Result<u32, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| "no effective uid in /proc/self/status".to_owned())
}

/// Runs `ip args`; `Err` quotes the command and its stderr.
pub(super) fn ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Names of the existing namespaces that start with `prefix-`.
pub(super) fn namespaces_with_prefix(prefix: &str) -> Result<Vec<String>, String> {
    let listing = ip(&["netns", "list"])?;
    let start = format!("{prefix}-");
    Ok(listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&start))
        .map(str::to_owned)
        .collect())
}

impl Lab {
    /// Claims this run's names and creates its private state directory (0700).
    pub(super) fn create() -> Result<Lab, String> {
        let prefix = format!("ztd{}", std::process::id());
        let stale = namespaces_with_prefix(&prefix)?;
        if !stale.is_empty() {
            return Err(format!(
                "namespaces {} already exist (left by a killed run?); remove them with \
                 `ip netns del <name>`",
                stale.join(", ")
            ));
        }
        let state_dir = std::env::temp_dir().join(format!("ztrs-demo-{prefix}"));
        create_private_dir(&state_dir)?;
        Ok(Lab {
            switch: format!("{prefix}-sw"),
            prefix,
            state_dir,
            namespaces: Vec::new(),
            daemons: Vec::new(),
            torn_down: false,
        })
    }

    /// Homes for root, alice and bob: identities (generated in parallel, each a memory-hard
    /// proof of work), a private planet whose only root is the root's underlay address,
    /// and API tokens.
    pub(super) fn prepare_hosts(&self, planet_id: u64) -> Result<Vec<Host>, String> {
        let names = ["root", "alice", "bob"];
        let homes: Vec<(Home, Identity, Duration)> = std::thread::scope(|scope| {
            let workers: Vec<_> = names
                .iter()
                .map(|name| {
                    let path = self.state_dir.join(name);
                    scope.spawn(move || -> Result<(Home, Identity, Duration), String> {
                        let started = Instant::now();
                        let home = Home::open(&path).map_err(|e| e.to_string())?;
                        let identity = home.load_or_create_identity().map_err(|e| e.to_string())?;
                        Ok((home, identity, started.elapsed()))
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .map_err(|_| "identity generation panicked".to_owned())?
                })
                .collect::<Result<_, String>>()
        })?;
        let root_ip = underlay_ip(0);
        let root_identity = homes
            .first()
            .map(|(_, identity, _)| identity)
            .ok_or("no root identity")?;
        let planet = crate::lab::signed_planet(
            planet_id,
            &[(root_identity, SocketAddr::new(IpAddr::V4(root_ip), PORT))],
        );
        let mut hosts = Vec::with_capacity(names.len());
        for (index, (name, (home, identity, identity_took))) in names.iter().zip(homes).enumerate()
        {
            home.save_world(&planet).map_err(|e| e.to_string())?;
            let token = home.auth_token().map_err(|e| e.to_string())?;
            let namespace = format!("{}-{name}", self.prefix);
            hosts.push(Host {
                name,
                veth: format!("{}{}", self.prefix, name.get(..1).unwrap_or("x")),
                underlay_ip: underlay_ip(index),
                address: identity.address(),
                identity_took,
                api: Api {
                    namespace: namespace.clone(),
                    port: PORT,
                    token,
                },
                namespace,
                home: home.root().to_path_buf(),
            });
        }
        Ok(hosts)
    }

    /// The underlay: a bridge in the switch namespace and each host on it by a veth pair
    /// (`<prefix><initial>` on the switch side, `eth0` in the host), loopback up everywhere.
    pub(super) fn build_underlay(&mut self, hosts: &[Host]) -> Result<(), String> {
        let switch = self.switch.clone();
        self.add_namespace(&switch)?;
        // A switch does not run iptables: keep bridged frames out of netfilter.
        ip(&[
            "-n",
            &switch,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "nf_call_iptables",
            "0",
            "nf_call_ip6tables",
            "0",
            "nf_call_arptables",
            "0",
        ])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        for host in hosts {
            let ns = host.namespace.as_str();
            self.add_namespace(ns)?;
            ip(&[
                "-n", &switch, "link", "add", &host.veth, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ])?;
            ip(&["-n", &switch, "link", "set", &host.veth, "master", "br0"])?;
            ip(&["-n", &switch, "link", "set", &host.veth, "up"])?;
            let address = format!("{}/24", host.underlay_ip);
            ip(&["-n", ns, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Starts `ztrs service` in the host's namespace (the root and controller without TUN),
    /// logging to a file in the state directory.
    pub(super) fn start_daemon(&mut self, host: &Host, tun: bool) -> Result<(), String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
        let log = self.state_dir.join(format!("{}.log", host.name));
        let stdout = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &host.namespace])
            .arg(exe)
            .args(["service", "-p", &PORT.to_string()]);
        if !tun {
            command.arg("--no-tun");
        }
        let child = command
            .arg(&host.home)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start the {} daemon: {e}", host.name))?;
        self.daemons.push(Daemon {
            name: host.name,
            child,
            log,
        });
        Ok(())
    }

    /// `Err` when the named daemon has exited (its log is in [`Lab::log_tails`]).
    pub(super) fn check_daemon(&mut self, name: &str) -> Result<(), String> {
        let Some(daemon) = self.daemons.iter_mut().find(|d| d.name == name) else {
            return Err(format!("no {name} daemon was started"));
        };
        match daemon.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the {name} daemon exited ({status})")),
            Err(e) => Err(format!("cannot check the {name} daemon: {e}")),
        }
    }

    /// How many daemons and namespaces this run created.
    pub(super) fn created(&self) -> (usize, usize) {
        (self.daemons.len(), self.namespaces.len())
    }

    /// The end of every daemon's log, for a failure report.
    pub(super) fn log_tails(&self) -> String {
        self.daemons
            .iter()
            .map(|d| format!("--- {} daemon log (end) ---\n{}", d.name, log_tail(&d.log)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the daemons (SIGTERM, then SIGKILL after a grace period), deletes the
    /// namespaces (with their veths and any interface left in them) and the state directory.
    /// Idempotent; every step is tried even when an earlier one failed.
    pub(super) fn teardown(&mut self) -> Result<(), String> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        for daemon in &mut self.daemons {
            if let Err(problem) = stop_daemon(daemon) {
                problems.push(problem);
            }
        }
        for namespace in self.namespaces.iter().rev() {
            if let Err(problem) = ip(&["netns", "del", namespace]) {
                problems.push(problem);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.state_dir) {
            problems.push(format!("removing {}: {e}", self.state_dir.display()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("teardown incomplete: {}", problems.join("; ")))
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(problem) = self.teardown() {
            eprintln!("ztrs demo --tun: {problem}");
        }
    }
}

/// SIGTERM (through `kill`, so this crate needs no `unsafe`), a bounded wait, then SIGKILL.
fn stop_daemon(daemon: &mut Daemon) -> Result<(), String> {
    if matches!(daemon.child.try_wait(), Ok(Some(_))) {
        return Ok(());
    }
    let pid = daemon.child.id().to_string();
    let asked = Command::new("kill")
        .args(["-TERM", &pid])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if asked {
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(daemon.child.try_wait(), Ok(Some(_))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    daemon
        .child
        .kill()
        .and_then(|()| daemon.child.wait().map(drop))
        .map_err(|e| format!("cannot stop the {} daemon (pid {pid}): {e}", daemon.name))
}

/// Underlay (veth) address of host `index`: the root is 10.200.0.1, then alice and bob.
fn underlay_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 200, 0, u8::try_from(index + 1).unwrap_or(u8::MAX))
}

/// Creates `path` as a new directory only we can enter; an existing path is refused (a
/// planted symlink in a shared temp directory must not redirect our files).
fn create_private_dir(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// The last lines of a log file (or why it cannot be read).
fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let first = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines.get(first..).unwrap_or_default().join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
