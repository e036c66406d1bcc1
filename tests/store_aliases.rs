//! H4.2: deleting an aliased key removes every representation, so nothing resurrects on the
//! next read — by ztrs, or by the reference if the home is handed back to it (the reference
//! loads `moons.d` and `networks.d` names by parsing their hex stem in any case).
//!
//! Aliases covered: a moon under every spelling of its id (leading zeros, case); a network's
//! `.conf` and `.local.conf` (each under every spelling); the planet and its legacy name
//! `world`. Every test works in its own temporary home and removes it.

use std::fs;
use std::path::{Path, PathBuf};

use ztrs::crypto::c25519::{SIGNATURE_LEN, generate_keypair};
use ztrs::store::{Home, NetworkSettings};
use ztrs::wire::NetworkId;
use ztrs::wire::world::{World, WorldType};

/// A temporary home, removed when dropped (also when the test fails).
struct TempHome {
    dir: PathBuf,
    home: Home,
}

impl TempHome {
    fn new(tag: &str) -> TempHome {
        let dir = std::env::temp_dir().join(format!("ztrs-aliases-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let home = Home::open(&dir).expect("open the home");
        TempHome { dir, home }
    }

    fn names_in(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.join(sub))
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn moon(id: u64) -> World {
    let (public, secret) = generate_keypair();
    let mut world = World {
        world_type: WorldType::Moon,
        id,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: Vec::new(),
    };
    world.sign(&secret);
    world
}

fn bytes_of(world: &World) -> Vec<u8> {
    let mut bytes = Vec::new();
    world.emit(&mut bytes);
    bytes
}

fn plant(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).expect("plant a file");
}

#[test]
fn removing_a_moon_removes_every_spelling_of_its_id() {
    let t = TempHome::new("moon");
    let gone = moon(0xabcd);
    let kept = moon(0x0000_00ab_cdef_0000);
    t.home.save_world(&gone).unwrap();
    t.home.save_world(&kept).unwrap();
    let moons = t.dir.join("moons.d");
    for alias in [
        "000000000000ABCD.moon",
        "000000000000AbCd.moon",
        "abcd.moon",
        "0000000000000000000abcd.moon",
    ] {
        plant(&moons.join(alias), &bytes_of(&gone));
    }
    // Not aliases: another id, another suffix, a temporary file.
    plant(&moons.join("abce.moon"), b"x");
    plant(&moons.join("000000000000abcd.moon.tmp"), b"x");

    t.home.remove_moon(0xabcd).unwrap();

    let (loaded, _) = t.home.moons().unwrap();
    assert_eq!(loaded, vec![kept.clone()], "only the other moon is left");
    assert_eq!(
        t.names_in("moons.d"),
        [
            "000000000000abcd.moon.tmp",
            "000000abcdef0000.moon",
            "abce.moon"
        ]
    );
    // Removing again (nothing left) is fine.
    t.home.remove_moon(0xabcd).unwrap();
}

#[test]
fn forgetting_a_network_removes_its_config_and_settings_in_every_spelling() {
    let t = TempHome::new("network");
    let nwid = NetworkId(0x8056_c2e2_1c00_0001);
    let other = NetworkId(0x8056_c2e2_1c00_0002);
    let settings = NetworkSettings {
        allow_global: true,
        ..NetworkSettings::default()
    };
    for n in [nwid, other] {
        t.home.save_network_config(n, b"v=1\n").unwrap();
        t.home.save_network_settings(n, &settings).unwrap();
    }
    let networks = t.dir.join("networks.d");
    plant(&networks.join("8056C2E21C000001.conf"), b"v=0\n");
    plant(
        &networks.join("8056C2E21C000001.local.conf"),
        b"allowGlobal=1\n",
    );

    t.home.forget_network(nwid).unwrap();

    assert_eq!(t.home.joined_networks().unwrap(), vec![other]);
    assert_eq!(t.home.network_config(nwid).unwrap(), None);
    // Settings do not resurrect on a later join.
    assert_eq!(
        t.home.network_settings(nwid).unwrap(),
        NetworkSettings::default()
    );
    assert_eq!(t.home.network_settings(other).unwrap(), settings);
    assert_eq!(
        t.names_in("networks.d"),
        ["8056c2e21c000002.conf", "8056c2e21c000002.local.conf"]
    );
}

#[test]
fn the_planet_goes_with_its_legacy_name() {
    let t = TempHome::new("planet");
    let mut custom = World::default_planet();
    custom.timestamp += 1;
    t.home.save_world(&custom).unwrap();
    assert_eq!(t.home.planet().unwrap(), custom);
    // An old home may still hold the planet under its legacy name.
    plant(&t.dir.join("world"), &bytes_of(&custom));

    t.home.remove_planet().unwrap();

    assert_eq!(t.home.planet().unwrap(), World::default_planet());
    assert!(!t.dir.join("planet").exists());
    assert!(!t.dir.join("world").exists());

    // Saving a planet also drops a stale legacy copy, so the two can never disagree.
    plant(&t.dir.join("world"), &bytes_of(&custom));
    t.home.save_world(&World::default_planet()).unwrap();
    assert!(!t.dir.join("world").exists());
}
