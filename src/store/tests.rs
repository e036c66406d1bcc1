//! Home directory tests: layout, round trips, refusals (symlinks, bad files), permissions.

use super::*;

fn temp_home(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ztrs-home-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn identity_is_created_once_then_reloaded() {
    let dir = temp_home("identity");
    let home = Home::open(&dir).unwrap();
    let created = home.load_or_create_identity().unwrap();
    assert!(created.has_secret());
    assert!(dir.join("identity.public").exists());
    let reloaded = home.load_or_create_identity().unwrap();
    assert_eq!(reloaded.address(), created.address());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("identity.secret")), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    // A damaged identity is an error, never silently replaced.
    fs::write(dir.join("identity.secret"), b"garbage").unwrap();
    assert!(home.load_or_create_identity().is_err());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn networks_round_trip_and_ignore_junk_names() {
    let dir = temp_home("networks");
    let home = Home::open(&dir).unwrap();
    let a = NetworkId(0x8056_c2e2_1c00_0001);
    let b = NetworkId(0x0000_0000_0000_00ff);
    home.mark_joined(a).unwrap();
    home.save_network_config(b, b"v=7\n").unwrap();
    fs::write(dir.join("networks.d/NOTHEX0000000000.conf"), b"").unwrap();
    fs::write(dir.join("networks.d/8056c2e21c000001.conf.tmp"), b"").unwrap();
    assert_eq!(home.joined_networks().unwrap(), vec![b, a]);
    assert_eq!(home.network_config(a).unwrap(), None);
    assert_eq!(
        home.network_config(b).unwrap().as_deref(),
        Some(&b"v=7\n"[..])
    );
    // Joining again keeps the stored config.
    home.mark_joined(b).unwrap();
    assert!(home.network_config(b).unwrap().is_some());
    home.forget_network(b).unwrap();
    home.forget_network(b).unwrap();
    assert_eq!(home.joined_networks().unwrap(), vec![a]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn settings_parse_defaults_and_round_trip() {
    let defaults = NetworkSettings::default();
    assert!(defaults.allow_managed && !defaults.allow_global && !defaults.allow_default);
    let parsed = NetworkSettings::parse("allowManaged=0\nallowDefault=1\njunk\nallowGlobal=x\n");
    assert!(!parsed.allow_managed && parsed.allow_default && !parsed.allow_global);
    assert_eq!(NetworkSettings::parse(&parsed.to_text()), parsed);
}

#[test]
fn symlinks_are_refused() {
    let dir = temp_home("symlink");
    let home = Home::open(&dir).unwrap();
    let outside = temp_home("symlink-target");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), b"x").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outside.join("secret"), dir.join("planet")).unwrap();
        assert!(home.planet().is_err());
        std::os::unix::fs::symlink(&outside, dir.join("linked")).unwrap();
        assert!(Home::open(&dir.join("linked")).is_err());
    }
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&outside).unwrap();
}

#[test]
fn auth_token_is_created_secret_and_stable() {
    let dir = temp_home("token");
    let home = Home::open(&dir).unwrap();
    let token = home.auth_token().unwrap();
    assert_eq!(token.len(), AUTH_TOKEN_LEN);
    assert_eq!(home.auth_token().unwrap(), token);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn worlds_persist_and_reload() {
    let dir = temp_home("worlds");
    let home = Home::open(&dir).unwrap();
    assert_eq!(home.planet().unwrap().id, World::default_planet().id);
    let planet = World::default_planet();
    home.save_world(&planet).unwrap();
    assert_eq!(home.planet().unwrap(), planet);
    fs::write(dir.join("moons.d/0000000000000001.moon"), b"not a world").unwrap();
    let (moons, skipped) = home.moons().unwrap();
    assert!(moons.is_empty());
    assert_eq!(skipped, vec!["0000000000000001.moon".to_string()]);
    fs::remove_dir_all(&dir).unwrap();
}
