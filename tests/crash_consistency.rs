//! Crash consistency of the home (H4.4, issue 8 item 3): `ztrs service` processes are killed
//! with SIGKILL at random points (seeded: `CRASH_SEED`) while they create their identity,
//! persist joins, leaves, settings and moons, and serve controller writes; after every kill
//! the home must load, nothing half-written may exist under a real name, leftover temporary
//! files must never be taken for state, and every write the API acknowledged (HTTP 200
//! received before the kill) must be on disk. Also: malformed state files stop the daemon
//! with an error naming the file, and nothing is overwritten (issue 7 item 5).
//!
//! Daemons run without TUN on loopback; their planet root is a silent socket or an
//! in-process moon root. Waits are on files and answers with deadlines;
//! the only sleeps are the random kill delays themselves (the fault's timing).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ztrs::controller::store::{DirectoryStore, Store};
use ztrs::crypto::Identity;
use ztrs::store::{Home, NetworkSettings};
use ztrs::wire::netconf::NetworkConfig;
use ztrs::wire::{Address, NetworkId};

/// Kills during identity creation.
const IDENTITY_KILLS: usize = 40;
/// Kill-and-reload rounds of the config and controller scenarios.
const ROUNDS: usize = 20;

/// `CRASH_ROUNDS` overrides [`ROUNDS`] for longer local runs.
fn rounds() -> usize {
    std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS)
}

#[test]
fn killed_identity_creation_leaves_no_identity_or_a_complete_one() {
    let started = Instant::now();
    let scratch = Scratch::new("identity");
    let root = SilentRoot::new();
    let mut rng = Rng::seeded("identity");
    let mut tally = Tally::default();
    let mut homes = 0;
    let mut home = root.fresh_home(&scratch, homes);
    for kill in 0..IDENTITY_KILLS {
        let earlier_leftovers = temp_files(&home);
        let mut daemon = Daemon::start(&home);
        if kill % 2 == 0 {
            // Spread over the generation time (proof of work: 0.05 s to 1.5 s here).
            rng.sleep_up_to(Duration::from_millis(1500));
        } else {
            // Aim at the writes: wait for the first identity file, then a jitter.
            daemon.wait_for_file_containing(&home, "identity");
            rng.sleep_up_to(Duration::from_millis(3));
        }
        daemon.kill();
        let secret = check_identity_files(&home);
        // Leftovers of this run's identity writes (a temporary file is never loaded: the
        // restart below must ignore it).
        let leftovers = temp_files(&home)
            .into_iter()
            .filter(|p| !earlier_leftovers.contains(p))
            .filter(|p| p.to_string_lossy().contains("identity"))
            .count();
        tally.leftovers += leftovers;
        let landed = match (&secret, home.join("identity.public").exists()) {
            (None, _) if leftovers == 0 => "before",
            (Some(_), true) if leftovers == 0 => "after",
            _ => "during",
        };
        tally.count(landed);
        let Some(secret) = secret else {
            continue; // the next kill restarts this home: that start is the one checked
        };
        // The next start keeps that identity (never regenerates it) and completes it.
        let mut restarted = Daemon::start(&home);
        restarted.ready();
        restarted.kill();
        assert_eq!(fs::read(home.join("identity.secret")).unwrap(), secret);
        let public = fs::read_to_string(home.join("identity.public")).unwrap();
        let identity: Identity = String::from_utf8(secret).unwrap().trim().parse().unwrap();
        assert_eq!(
            public.trim(),
            identity.to_public_string(),
            "identity.public"
        );
        homes += 1;
        home = root.fresh_home(&scratch, homes);
    }
    // The last home, whatever its state, starts.
    let mut last = Daemon::start(&home);
    last.ready();
    last.kill();
    check_identity_files(&home).expect("an identity after a full start");
    tally.report("identity", IDENTITY_KILLS, homes, started);
    assert!(
        tally.landed("before") > 0 && tally.landed("after") > 0,
        "{tally:?}"
    );
}

/// Asserts that `identity.secret`, if present, is a whole valid identity and that
/// `identity.public`, if present, is its public half; returns the secret's bytes.
fn check_identity_files(home: &Path) -> Option<Vec<u8>> {
    let secret = fs::read(home.join("identity.secret")).ok();
    let public = fs::read_to_string(home.join("identity.public")).ok();
    let Some(bytes) = secret else {
        assert!(public.is_none(), "identity.public without identity.secret");
        return None;
    };
    let text = String::from_utf8(bytes.clone()).expect("identity.secret is text");
    let identity: Identity = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("torn identity.secret {text:?}: {e:?}"));
    assert!(
        identity.has_secret() && identity.locally_validate(),
        "{text}"
    );
    if let Some(public) = public {
        assert_eq!(
            public.trim(),
            identity.to_public_string(),
            "torn identity.public"
        );
    }
    Some(bytes)
}

/// Networks the config scenario joins: two of the daemon's own controller (configs are
/// issued and persisted), two of an absent controller (empty join records).
fn config_networks(own: Address) -> [NetworkId; 4] {
    let base = own.to_u64() << 24;
    [
        NetworkId(base | 0x01),
        NetworkId(base | 0x02),
        NetworkId(0x8056_c2e2_1c00_0001),
        NetworkId(0x8056_c2e2_1c00_0002),
    ]
}

/// What the API acknowledged about the home in the config scenario.
#[derive(Debug, Default)]
struct ConfigModel {
    joined: [bool; 4],
    /// `.local.conf` text expected (`None`: no file).
    settings: [Option<String>; 4],
    /// Network index (0..4) or 4 for the moon, of the request sent but not answered.
    in_flight: Option<usize>,
    moon_deorbited: bool,
    acknowledged: usize,
}

#[test]
fn killed_joins_leaves_settings_and_orbits_leave_a_loadable_home() {
    let started = Instant::now();
    let scratch = Scratch::new("config");
    let moon_root = MoonRoot::start();
    let identity = common::nodes::reference_identity(3);
    let home = moon_root.home_for(&scratch, &identity);
    let networks = config_networks(identity.address());
    let model = Arc::new(Mutex::new(ConfigModel::default()));
    let mut rng = Rng::seeded("config");
    let mut tally = Tally::default();
    let (mut stored_moons, mut stored_configs) = (0, 0);
    // Planted leftovers of an earlier crash: they must never be loaded.
    for planted in [
        "networks.d/.8056c2e21c000003.conf.0011223344556677.tmp",
        "moons.d/.00000000000000aa.moon.0011223344556677.tmp",
    ] {
        let planted = home.join(planted);
        fs::create_dir_all(planted.parent().unwrap()).unwrap();
        fs::write(planted, b"\x00torn").unwrap();
    }
    let rounds = rounds();
    for round in 0..=rounds {
        let mut daemon = Daemon::start(&home);
        let api = daemon.ready_api();
        check_loaded_home(&api, &home, &networks, &moon_root);
        if round == 0 {
            for nwid in &networks[..2] {
                api.ok("POST", &format!("/controller/network/{nwid}"), "{}");
                let member = format!("/controller/network/{nwid}/member/{}", identity.address());
                api.ok("POST", &member, r#"{"authorized": true}"#);
            }
        }
        if round == rounds {
            check_rig_writes_both(&api, &mut daemon, &home, networks[0], &moon_root);
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (model, stop, rng) = (model.clone(), stop.clone(), rng.fork());
            let moon = moon_root.address();
            std::thread::spawn(move || config_worker(&api, networks, moon, &model, &stop, rng))
        };
        rng.sleep_up_to(Duration::from_millis(500));
        daemon.kill();
        stop.store(true, Ordering::Relaxed);
        worker.join().expect("worker");
        let mut model = model.lock().unwrap();
        tally.count(if model.in_flight.is_some() {
            "during"
        } else {
            "between"
        });
        let (moons, configs) = check_config_home(&home, &networks, &model, &moon_root);
        (stored_moons, stored_configs) = (stored_moons + moons, stored_configs + configs);
        // The request in flight went one way or the other: the home says which.
        if let Some(index) = model.in_flight.take() {
            resolve_in_flight(&mut model, index, &home, &networks, &moon_root);
        }
    }
    let model = model.lock().unwrap();
    tally.leftovers = temp_files(&home).len();
    tally.report("config", rounds, model.acknowledged, started);
    println!("config: found after kills: {stored_moons} moons, {stored_configs} network configs");
    assert!(
        model.acknowledged > rounds,
        "too few requests acknowledged: {model:?}"
    );
}

/// Joins, leaves (some right after a controller change pushed a new config), settings,
/// orbits and deorbits (some right after the orbit, racing the moon's arrival) until the
/// daemon is gone; each request is marked in flight until answered.
fn config_worker(
    api: &Api,
    networks: [NetworkId; 4],
    moon_root: Address,
    model: &Mutex<ConfigModel>,
    stop: &AtomicBool,
    mut rng: Rng,
) {
    let moon = format!("/moon/{:x}", moon_root.to_u64());
    let seed = json!({ "seed": moon_root.to_string() }).to_string();
    let tracked = |index: usize, method: &str, path: &str, body: &str| {
        model.lock().unwrap().in_flight = Some(index);
        api.call(method, path, body).ok()
    };
    while !stop.load(Ordering::Relaxed) {
        let target = rng.below(5) as usize;
        let Some(&nwid) = networks.get(target) else {
            let steps: &[bool] = match rng.below(3) {
                0 => &[true],
                1 => &[false],
                _ => &[true, false],
            };
            for &orbit in steps {
                let (method, body) = if orbit {
                    ("POST", seed.as_str())
                } else {
                    ("DELETE", "")
                };
                let Some(reply) = tracked(4, method, &moon, body) else {
                    return;
                };
                assert!(
                    matches!(reply.status, 200 | 404),
                    "{method} {moon}: {reply:?}"
                );
                let mut model = model.lock().unwrap();
                model.moon_deorbited = !orbit;
                (model.in_flight, model.acknowledged) = (None, model.acknowledged + 1);
            }
            continue;
        };
        // 0: leave; 1: a controller change, then leave at once; 2: a controller change (a
        // new config is pushed and persisted), then join; 3: join; 4, 5: join with settings.
        let action = rng.below(6);
        if action == 1 || action == 2 {
            let own = if target < 2 { nwid } else { networks[0] };
            let name = json!({ "name": format!("r{}", rng.next()) }).to_string();
            if api
                .call("POST", &format!("/controller/network/{own}"), &name)
                .is_err()
            {
                return;
            }
        }
        let leave = action < 2;
        let body = match action {
            4 | 5 => {
                json!({"allowGlobal": rng.below(2) == 0, "allowDNS": rng.below(2) == 0}).to_string()
            }
            _ => String::new(),
        };
        let path = format!("/network/{nwid}");
        let method = if leave { "DELETE" } else { "POST" };
        let Some(reply) = tracked(target, method, &path, &body) else {
            return;
        };
        assert!(
            reply.status == 200 || leave && reply.status == 404,
            "{path}: {reply:?}"
        );
        let mut model = model.lock().unwrap();
        apply_acknowledged(&mut model, target, leave, &body);
        (model.in_flight, model.acknowledged) = (None, model.acknowledged + 1);
    }
}

/// Shows that this rig does write what the kills interrupt: joined to its own network the
/// daemon persists the config it is issued, and an orbit stores the moon (both waited for,
/// then the daemon is killed and both load).
fn check_rig_writes_both(
    api: &Api,
    daemon: &mut Daemon,
    home: &Path,
    own: NetworkId,
    moon: &MoonRoot,
) {
    api.ok("POST", &format!("/network/{own}"), "");
    let seed = json!({ "seed": moon.address().to_string() }).to_string();
    api.ok(
        "POST",
        &format!("/moon/{:x}", moon.address().to_u64()),
        &seed,
    );
    let conf = home.join(format!("networks.d/{:016x}.conf", own.0));
    let moon_file = home.join(format!("moons.d/{:016x}.moon", moon.address().to_u64()));
    daemon.poll("a stored config and moon", |_| {
        fs::metadata(&conf).is_ok_and(|m| m.len() > 0) && moon_file.exists()
    });
    daemon.kill();
    let stored = Home::open(home).unwrap();
    let config = stored
        .network_config(own)
        .unwrap()
        .expect("a stored config");
    NetworkConfig::from_dictionary(&config).unwrap();
    let (moons, skipped) = stored.moons().unwrap();
    assert!(skipped.is_empty() && moons.len() == 1, "{skipped:?}");
}

fn apply_acknowledged(model: &mut ConfigModel, index: usize, leave: bool, body: &str) {
    if leave {
        model.joined[index] = false;
        model.settings[index] = None;
        return;
    }
    model.joined[index] = true;
    if let Ok(Value::Object(change)) = serde_json::from_str::<Value>(body) {
        let text = model.settings[index].clone().unwrap_or_default();
        let mut settings = NetworkSettings::parse(&text);
        settings.allow_global = change["allowGlobal"]
            .as_bool()
            .unwrap_or(settings.allow_global);
        settings.allow_dns = change["allowDNS"].as_bool().unwrap_or(settings.allow_dns);
        model.settings[index] = Some(settings.to_text());
    }
}

fn resolve_in_flight(
    model: &mut ConfigModel,
    index: usize,
    home: &Path,
    networks: &[NetworkId; 4],
    moon: &MoonRoot,
) {
    let Some(nwid) = networks.get(index) else {
        let file = format!("moons.d/{:016x}.moon", moon.address().to_u64());
        model.moon_deorbited = !home.join(file).exists();
        return;
    };
    let conf = home.join(format!("networks.d/{:016x}.conf", nwid.0));
    let settings = home.join(format!("networks.d/{:016x}.local.conf", nwid.0));
    model.joined[index] = conf.exists();
    model.settings[index] = fs::read_to_string(settings).ok();
}

/// Every state file parses; acknowledged joins, leaves, settings and deorbits are on disk
/// (the one request in flight may have gone either way).
/// Returns how many moons and non-empty network configs were on disk.
fn check_config_home(
    home: &Path,
    networks: &[NetworkId; 4],
    model: &ConfigModel,
    moon: &MoonRoot,
) -> (usize, usize) {
    let mut configs = 0;
    for entry in fs::read_dir(home.join("networks.d")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let bytes = fs::read(home.join("networks.d").join(&name)).unwrap();
        if name.ends_with(".local.conf") {
            let text = String::from_utf8(bytes).unwrap();
            assert_eq!(NetworkSettings::parse(&text).to_text(), text, "torn {name}");
        } else if name.ends_with(".conf") && !bytes.is_empty() {
            NetworkConfig::from_dictionary(&bytes).unwrap_or_else(|e| panic!("torn {name}: {e:?}"));
            configs += 1;
        }
    }
    let (moons, skipped) = Home::open(home).unwrap().moons().unwrap();
    assert!(
        skipped.is_empty(),
        "moons.d files that do not load: {skipped:?}"
    );
    assert!(moons.iter().all(|m| m.to_bytes() == moon.moon().to_bytes()));
    for (index, nwid) in networks.iter().enumerate() {
        if model.in_flight == Some(index) {
            continue;
        }
        let conf = home.join(format!("networks.d/{:016x}.conf", nwid.0));
        let settings = home.join(format!("networks.d/{:016x}.local.conf", nwid.0));
        assert_eq!(
            conf.exists(),
            model.joined[index],
            "{nwid} join record: {model:?}"
        );
        let text = fs::read_to_string(&settings).ok();
        assert_eq!(text, model.settings[index], "{nwid} settings: {model:?}");
    }
    if model.moon_deorbited && model.in_flight != Some(4) {
        assert!(
            moons.is_empty(),
            "an acknowledged deorbit was undone: {model:?}"
        );
    }
    (moons.len(), configs)
}

/// The restarted daemon holds exactly what the home lists (never a temporary file).
fn check_loaded_home(api: &Api, home: &Path, networks: &[NetworkId], moon: &MoonRoot) {
    let stored = Home::open(home).unwrap().joined_networks().unwrap();
    let listed: BTreeSet<String> = api
        .ok("GET", "/network", "")
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = stored.iter().map(|n| format!("{:016x}", n.0)).collect();
    assert_eq!(listed, expected);
    assert!(stored.iter().all(|n| networks.contains(n)), "{stored:?}");
    let moon_file = home.join(format!("moons.d/{:016x}.moon", moon.address().to_u64()));
    let held = api.ok("GET", "/moon", "");
    let held: Vec<&Value> = held
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["waiting"] == false)
        .collect();
    assert_eq!(held.len(), usize::from(moon_file.exists()), "{held:?}");
}

/// A controller write a worker sent: object key and the name it sets.
type Write = (String, String);

#[derive(Debug, Default)]
struct ControllerModel {
    acknowledged: BTreeMap<String, String>,
    in_flight: BTreeMap<usize, Write>,
    writes: usize,
}

#[test]
fn killed_controller_writes_keep_every_acknowledged_object() {
    let started = Instant::now();
    let scratch = Scratch::new("controller");
    let root = SilentRoot::new();
    let identity = common::nodes::reference_identity(1);
    let home = root.home_with(&scratch, "home", &identity);
    let prefix = identity.address().to_u64() << 24;
    let model = Arc::new(Mutex::new(ControllerModel::default()));
    let mut rng = Rng::seeded("controller");
    let mut tally = Tally::default();
    let rounds = rounds();
    for round in 0..=rounds {
        let mut daemon = Daemon::start(&home);
        let api = daemon.ready_api();
        check_controller_home(&home, &model.lock().unwrap(), Some(&api));
        if round == 0 {
            for n in 1..=2u64 {
                api.ok(
                    "POST",
                    &format!("/controller/network/{:016x}", prefix | n),
                    "{}",
                );
            }
        }
        if round == rounds {
            daemon.kill();
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4usize)
            .map(|worker| {
                let (model, stop, api, mut rng) =
                    (model.clone(), stop.clone(), api.clone(), rng.fork());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let pick = rng.below(6);
                        let path = match worker {
                            // Networks: the two with members, and four created and updated.
                            0 => format!("/controller/network/{:016x}", prefix | (pick + 1)),
                            _ => format!(
                                "/controller/network/{:016x}/member/{:010x}",
                                prefix | (worker as u64 % 2 + 1),
                                0x11_2233_0000u64 + ((worker as u64) << 8) + pick
                            ),
                        };
                        let name = format!("w{worker}-{}", rng.next());
                        let authorized = name.len() % 2 == 0;
                        let body = json!({"name": name, "authorized": authorized}).to_string();
                        let body = if worker == 0 {
                            json!({ "name": name }).to_string()
                        } else {
                            body
                        };
                        let write = (path.clone(), name.clone());
                        model.lock().unwrap().in_flight.insert(worker, write);
                        let Ok(reply) = api.call("POST", &path, &body) else {
                            return;
                        };
                        assert_eq!(reply.status, 200, "{path}: {reply:?}");
                        let mut model = model.lock().unwrap();
                        model.in_flight.remove(&worker);
                        model.acknowledged.insert(path, name);
                        model.writes += 1;
                    }
                })
            })
            .collect();
        rng.sleep_up_to(Duration::from_millis(400));
        daemon.kill();
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.join().expect("worker");
        }
        let mut model = model.lock().unwrap();
        tally.count(if model.in_flight.is_empty() {
            "between"
        } else {
            "during"
        });
        let on_disk = check_controller_home(&home, &model, None);
        // A write in flight that landed is the state from now on.
        for (path, name) in std::mem::take(&mut model.in_flight).into_values() {
            if on_disk.get(&path) == Some(&name) {
                model.acknowledged.insert(path, name);
            }
        }
    }
    let model = model.lock().unwrap();
    tally.leftovers = temp_files(&home.join("controller.d")).len();
    tally.report("controller", rounds, model.writes, started);
    assert!(
        model.writes > rounds,
        "too few writes acknowledged: {model:?}"
    );
}

/// Every object file of `controller.d` loads (in process), each acknowledged object has its
/// acknowledged name (or the one in flight), and with `api` the restarted daemon agrees.
fn check_controller_home(
    home: &Path,
    model: &ControllerModel,
    api: Option<&Api>,
) -> BTreeMap<String, String> {
    let store = DirectoryStore::open_existing(home.join("controller.d")).unwrap();
    let mut on_disk = BTreeMap::new();
    for nwid in store.network_ids().unwrap() {
        let network = store.get_network(nwid).unwrap().expect("listed network");
        let path = format!("/controller/network/{nwid}");
        on_disk.insert(path.clone(), network.name.clone());
        for address in store.member_addresses(nwid).unwrap() {
            let member = store
                .get_member(nwid, address)
                .unwrap()
                .expect("listed member");
            let name = member.name.clone().unwrap_or_default();
            assert_eq!(member.authorized, name.len() % 2 == 0, "{member:?}");
            on_disk.insert(format!("{path}/member/{address}"), name);
        }
    }
    let in_flight: BTreeMap<&String, &String> =
        model.in_flight.values().map(|(k, v)| (k, v)).collect();
    for (path, name) in &model.acknowledged {
        let found = on_disk.get(path);
        let allowed =
            found == Some(name) || found.is_some() && found == in_flight.get(&path).copied();
        assert!(allowed, "{path}: acknowledged {name:?}, on disk {found:?}");
    }
    for (path, name) in &on_disk {
        let known =
            model.acknowledged.get(path) == Some(name) || in_flight.get(&path) == Some(&name);
        assert!(
            known || name.is_empty(),
            "{path}: {name:?} was never written"
        );
        if let Some(api) = api.filter(|_| !name.is_empty()) {
            assert_eq!(
                api.ok("GET", path, "")["name"],
                json!(name),
                "{path} after restart"
            );
        }
    }
    on_disk
}

#[test]
fn malformed_state_files_stop_the_daemon_and_nothing_is_overwritten() {
    let scratch = Scratch::new("malformed");
    let root = SilentRoot::new();
    let identity = common::nodes::reference_identity(2);
    let nwid = "8056c2e21c000001";
    let cases: [(&str, &str, &[u8], &str); 7] = [
        (
            "truncated-local",
            "local.conf",
            br#"{"settings": {"primaryPo"#,
            "local.conf",
        ),
        (
            "garbage-identity",
            "identity.secret",
            b"\x00\x01garbage",
            "identity.secret",
        ),
        (
            "half-identity",
            "identity.secret",
            b"89e92ceee5:0:9e2d25",
            "identity.secret",
        ),
        ("bad-planet", "planet", b"\x01\x02\x03", "planet"),
        (
            "bad-moon",
            "moons.d/0000000089e92cee.moon",
            b"\x01moon",
            "0000000089e92cee.moon",
        ),
        (
            "bad-network",
            "networks.d/8056c2e21c000001.conf",
            b"\xff\x00not a dictionary",
            nwid,
        ),
        (
            "truncated-controller",
            "controller.d/network/8056c2e21c000001.json",
            b"{\"id\":",
            nwid,
        ),
    ];
    for (tag, file, bytes, named) in cases {
        let home = root.home_with(&scratch, tag, &identity);
        let path = home.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        let before = snapshot(&home);
        let (code, log) = Daemon::run_to_exit(&home);
        assert_ne!(code, Some(0), "{tag}: the daemon started:\n{log}");
        assert!(
            log.contains(named),
            "{tag}: the error does not name {named}:\n{log}"
        );
        println!(
            "{tag}: exit {code:?}: {}",
            log.lines().last().unwrap_or_default()
        );
        let after = snapshot(&home);
        for (name, content) in &before {
            assert_eq!(after.get(name), Some(content), "{tag}: {name} was changed");
        }
    }
}

// ---- support: scratch homes, daemons, the HTTP client, the seeded rng, the tally ----

const DEADLINE: Duration = Duration::from_secs(30);

/// A temporary directory removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("ztrs-crash-{tag}-{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A private planet whose only root is a loopback socket that never answers.
struct SilentRoot {
    _socket: std::net::UdpSocket,
    planet: Vec<u8>,
}

impl SilentRoot {
    fn new() -> SilentRoot {
        let socket = std::net::UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        let root = common::nodes::reference_identity(1);
        let at = socket.local_addr().unwrap();
        let planet = common::nodes::private_planet(&[(&root, at)]).to_bytes();
        SilentRoot {
            _socket: socket,
            planet,
        }
    }

    /// A home with only the planet (the daemon creates its identity).
    fn fresh_home(&self, scratch: &Scratch, n: usize) -> std::path::PathBuf {
        let home = scratch.0.join(format!("home{n}"));
        fs::create_dir_all(&home).unwrap();
        fs::write(home.join("planet"), &self.planet).unwrap();
        home
    }

    /// A home with the planet and `identity`.
    fn home_with(&self, scratch: &Scratch, tag: &str, identity: &Identity) -> std::path::PathBuf {
        let home = scratch.0.join(tag);
        fs::create_dir_all(&home).unwrap();
        fs::write(home.join("planet"), &self.planet).unwrap();
        fs::write(home.join("identity.secret"), identity.to_secret_string()).unwrap();
        home
    }
}

/// An in-process node that is the planet's only root and the root of a moon (id: its
/// address), so a daemon can orbit the moon and get it (and write `moons.d`).
struct MoonRoot {
    runtime: tokio::runtime::Runtime,
    handle: ztrs::service::ServiceHandle,
    _events: tokio::sync::mpsc::Receiver<ztrs::node::Event>,
    planet: ztrs::wire::world::World,
    moon: ztrs::wire::world::World,
}

impl MoonRoot {
    fn start() -> MoonRoot {
        use ztrs_platform::udp::{UdpConfig, UdpUnderlay};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let identity = common::nodes::reference_identity(2);
        let socket = UdpUnderlay::open(UdpConfig::ip([127, 0, 0, 1].into(), 0)).unwrap();
        let at = socket.local_addr();
        let planet = common::nodes::private_planet(&[(&identity, at)]);
        let moon = common::nodes::moon_of(&identity, at, 1);
        let config = ztrs::node::NodeConfig {
            allow_loopback_paths: true,
            moons: vec![moon.clone()],
            ..ztrs::node::NodeConfig::new(identity, planet.clone())
        };
        let options = ztrs::service::ServiceOptions::default();
        let (handle, events) = ztrs::service::spawn(config, socket, options).unwrap();
        drop(_entered);
        MoonRoot {
            runtime,
            handle,
            _events: events,
            planet,
            moon,
        }
    }

    fn address(&self) -> Address {
        self.handle.address()
    }

    fn moon(&self) -> &ztrs::wire::world::World {
        &self.moon
    }

    /// A home with this planet and `identity`.
    fn home_for(&self, scratch: &Scratch, identity: &Identity) -> std::path::PathBuf {
        let home = scratch.0.join("home");
        fs::create_dir_all(&home).unwrap();
        fs::write(home.join("planet"), self.planet.to_bytes()).unwrap();
        fs::write(home.join("identity.secret"), identity.to_secret_string()).unwrap();
        home
    }
}

impl Drop for MoonRoot {
    fn drop(&mut self) {
        self.runtime.block_on(self.handle.shutdown());
    }
}

/// A `ztrs service` process on a home, killed (and reaped) on drop.
struct Daemon {
    child: std::process::Child,
    home: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Daemon {
    fn command(home: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ztrs"));
        command
            .args(["service", "--no-tun", "--allow-loopback", "-p0"])
            .arg(home)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        command
    }

    /// Starts the daemon; the port file of an earlier run is removed first, so readiness is
    /// this run's.
    fn start(home: &Path) -> Daemon {
        let _ = fs::remove_file(home.join("zerotier-one.port"));
        let log = home.with_extension("log");
        let child = Daemon::command(home)
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            home: home.to_path_buf(),
            log,
        }
    }

    /// Runs the daemon until it exits by itself (a deadline fails the test): exit code and
    /// stderr.
    fn run_to_exit(home: &Path) -> (Option<i32>, String) {
        let mut daemon = Daemon::start(home);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                return (
                    status.code(),
                    fs::read_to_string(&daemon.log).unwrap_or_default(),
                );
            }
            assert!(Instant::now() < deadline, "the daemon did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn poll(&mut self, what: &str, mut done: impl FnMut(&Path) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(&self.home) {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                panic!("the daemon exited ({status}) before {what}:\n{log}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Waits for the port file (written last at start: the API answers by then).
    fn ready(&mut self) -> u16 {
        let mut port = 0;
        self.poll("the port file", |home| {
            port = fs::read_to_string(home.join("zerotier-one.port"))
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(0);
            port != 0
        });
        port
    }

    fn ready_api(&mut self) -> Api {
        let port = self.ready();
        let token = fs::read_to_string(self.home.join("authtoken.secret")).unwrap();
        Api {
            port,
            token: token.trim().to_owned(),
        }
    }

    /// Waits until a name in the home contains `part` (a temporary file counts).
    fn wait_for_file_containing(&mut self, home: &Path, part: &str) {
        let home = home.to_path_buf();
        self.poll(part, |_| {
            fs::read_dir(&home)
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().contains(part))
        });
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The control API of a daemon.
#[derive(Clone)]
struct Api {
    port: u16,
    token: String,
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug in failure messages
struct Reply {
    status: u16,
    body: String,
}

impl Api {
    /// One request on its own connection; an error when the daemon is gone (or was killed
    /// before the whole answer arrived: then the request counts as not acknowledged).
    fn call(&self, method: &str, path: &str, body: &str) -> std::io::Result<Reply> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(DEADLINE))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nX-ZT1-Auth: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.token,
            body.len()
        )?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let status = text.get(9..12).and_then(|code| code.parse().ok());
        let (_, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        match status {
            Some(status) => Ok(Reply {
                status,
                body: body.to_owned(),
            }),
            None => Err(std::io::Error::other(format!("no status line: {text:?}"))),
        }
    }

    /// A request that must answer 200 with JSON.
    fn ok(&self, method: &str, path: &str, body: &str) -> Value {
        let reply = self.call(method, path, body).unwrap();
        assert_eq!(reply.status, 200, "{method} {path}: {reply:?}");
        serde_json::from_str(&reply.body).unwrap()
    }
}

/// splitmix64, seeded by `CRASH_SEED` (printed, so a failing run can be repeated).
struct Rng(u64);

impl Rng {
    fn seeded(tag: &str) -> Rng {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_c4a5);
        println!("{tag}: CRASH_SEED={seed}");
        let mixed = tag.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(mixed)
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// The deliberate kill delay: uniform in `[0, limit)`.
    fn sleep_up_to(&mut self, limit: Duration) {
        let micros = u64::try_from(limit.as_micros()).unwrap();
        std::thread::sleep(Duration::from_micros(self.below(micros)));
    }
}

/// Where the kills landed, printed with `--nocapture`.
#[derive(Debug, Default)]
struct Tally {
    landed: BTreeMap<&'static str, usize>,
    leftovers: usize,
}

impl Tally {
    fn count(&mut self, phase: &'static str) {
        *self.landed.entry(phase).or_default() += 1;
    }

    fn landed(&self, phase: &str) -> usize {
        self.landed.get(phase).copied().unwrap_or(0)
    }

    fn report(&self, scenario: &str, kills: usize, units: usize, started: Instant) {
        println!(
            "{scenario}: {kills} kills, landed {:?}, {units} homes/acknowledged, \
             {} temporary files left (ignored), {:.1} s",
            self.landed,
            self.leftovers,
            started.elapsed().as_secs_f64()
        );
    }
}

/// Temporary files (`.<name>.<nonce>.tmp`) anywhere under `dir`.
fn temp_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temp_files(&path));
        } else if entry.file_name().to_string_lossy().ends_with(".tmp") {
            found.push(path);
        }
    }
    found
}

/// Every file under `dir` with its content (relative names).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(name, fs::read(&path).unwrap());
            }
        }
    }
    files
}
