//! Home directory tests: layout, round trips, refusals (symlinks, bad files, oversized
//! files, failing renames), permissions after replace, alias spellings.

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
fn a_secret_without_its_public_half_is_completed_not_replaced() {
    let dir = temp_home("identity-public");
    let home = Home::open(&dir).unwrap();
    let created = home.load_or_create_identity().unwrap();
    let secret = fs::read(dir.join("identity.secret")).unwrap();
    let public = created.to_public_string();
    // A crash between the two writes of a new identity: only the secret is there.
    fs::remove_file(dir.join("identity.public")).unwrap();
    let reloaded = home.load_or_create_identity().unwrap();
    assert_eq!(reloaded.address(), created.address());
    assert_eq!(fs::read(dir.join("identity.secret")).unwrap(), secret);
    assert_eq!(
        fs::read_to_string(dir.join("identity.public")).unwrap(),
        public
    );
    // A public file that is not the secret's half is rewritten from the secret.
    fs::write(dir.join("identity.public"), b"0000000001:0:torn").unwrap();
    home.load_or_create_identity().unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("identity.public")).unwrap(),
        public
    );
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

#[test]
fn an_oversized_file_fails_fast() {
    let dir = temp_home("oversized");
    let home = Home::open(&dir).unwrap();
    let big = vec![b'x'; files::MAX_FILE_LEN as usize + 1];
    fs::write(dir.join("planet"), &big).unwrap();
    let err = home.planet().unwrap_err().to_string();
    assert!(
        err.contains("larger than 1 MiB") && err.contains("planet"),
        "{err}"
    );
    // At the bound exactly, the read goes through.
    fs::write(dir.join("local.conf"), &big[1..]).unwrap();
    assert_eq!(
        home.read("local.conf").unwrap().map(|b| b.len()),
        Some(big.len() - 1)
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failing_rename_is_an_error_naming_the_file_and_leaves_nothing_behind() {
    let dir = temp_home("rename");
    let home = Home::open(&dir).unwrap();
    let nwid = NetworkId(0x8056_c2e2_1c00_0001);
    // A non-empty directory where the file should go: rename(2) cannot replace it.
    let blocker = dir.join("networks.d/8056c2e21c000001.conf");
    fs::create_dir_all(blocker.join("inside")).unwrap();
    let err = home
        .save_network_config(nwid, b"v=1\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("8056c2e21c000001.conf") && err.contains("rename"),
        "{err}"
    );
    let leftovers: Vec<_> = fs::read_dir(dir.join("networks.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn replacing_never_widens_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_home("modes");
    let home = Home::open(&dir).unwrap();
    let mode = |name: &str| fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
    // A secret replaced over a world-readable file ends up 0600.
    fs::write(dir.join("authtoken.secret"), b"").unwrap();
    fs::set_permissions(
        dir.join("authtoken.secret"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    home.auth_token().unwrap();
    assert_eq!(mode("authtoken.secret"), 0o600);
    home.write("authtoken.secret", b"again", true).unwrap();
    assert_eq!(mode("authtoken.secret"), 0o600);
    // A plain file the operator narrowed stays narrow; a new one is 0644; a wide one narrows.
    home.write("local.conf", b"{}", false).unwrap();
    assert_eq!(mode("local.conf"), 0o644);
    fs::set_permissions(dir.join("local.conf"), fs::Permissions::from_mode(0o600)).unwrap();
    home.write("local.conf", b"{ }", false).unwrap();
    assert_eq!(mode("local.conf"), 0o600);
    fs::set_permissions(dir.join("local.conf"), fs::Permissions::from_mode(0o666)).unwrap();
    home.write("local.conf", b"{}", false).unwrap();
    assert_eq!(mode("local.conf"), 0o644);
    fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn planted_symlinks_are_refused_on_write_and_skipped_in_listings() {
    let dir = temp_home("planted");
    let home = Home::open(&dir).unwrap();
    let outside = temp_home("planted-target");
    fs::create_dir_all(&outside).unwrap();
    let target = outside.join("victim");
    fs::write(&target, b"untouched").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("local.conf")).unwrap();
    assert!(home.write("local.conf", b"{}", false).is_err());
    assert!(home.read("local.conf").is_err());
    assert_eq!(fs::read(&target).unwrap(), b"untouched");
    // A planted moon link is skipped (and named), never followed; the others still load.
    std::os::unix::fs::symlink(&target, dir.join("moons.d/0000000000000002.moon")).unwrap();
    let (moons, skipped) = home.moons().unwrap();
    assert!(moons.is_empty());
    assert_eq!(skipped, vec!["0000000000000002.moon".to_string()]);
    // Removing a moon removes the link itself, never its target.
    home.remove_moon(2).unwrap();
    assert!(!dir.join("moons.d/0000000000000002.moon").exists());
    assert_eq!(fs::read(&target).unwrap(), b"untouched");
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&outside).unwrap();
}

#[test]
fn id_spellings_are_recognised_exactly() {
    use files::spells_id;
    assert!(spells_id("000000000000abcd.moon", 0xabcd, ".moon"));
    assert!(spells_id("000000000000ABCD.moon", 0xabcd, ".moon"));
    assert!(spells_id("AbCd.moon", 0xabcd, ".moon"));
    assert!(spells_id("0000000000000000000abcd.moon", 0xabcd, ".moon"));
    assert!(spells_id("0.conf", 0, ".conf"));
    assert!(!spells_id("abce.moon", 0xabcd, ".moon"));
    assert!(!spells_id(".moon", 0, ".moon"));
    assert!(!spells_id("abcd.local.conf", 0xabcd, ".conf"));
    assert!(!spells_id("+abcd.moon", 0xabcd, ".moon"));
    assert!(!spells_id("10000000000000000abcd.moon", 0xabcd, ".moon"));
    assert!(!spells_id("abcd.moon.tmp", 0xabcd, ".moon"));
}
