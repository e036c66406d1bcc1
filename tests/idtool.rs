//! `ztrs idtool` end to end: runs the built binary in a private temporary directory and checks
//! it against the reference identities, signatures and worlds in `../shared/vectors/reference/`.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use ztrs::crypto::Identity;

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "ztrs-idtool-{name}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ztrs(dir: &TempDir, args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ztrs"))
        .current_dir(&dir.0)
        .args(args)
        .output()
        .expect("run ztrs")
}

/// Runs `ztrs idtool <args>`.
fn idtool<S: AsRef<OsStr>>(dir: &TempDir, args: &[S]) -> Output {
    let mut all: Vec<&OsStr> = vec![OsStr::new("idtool")];
    all.extend(args.iter().map(AsRef::as_ref));
    ztrs(dir, &all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

fn assert_fails(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what} should exit 1\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

fn reference(name: &str) -> PathBuf {
    let path = common::reference_path(name);
    assert!(path.exists(), "vector {} missing", path.display());
    path
}

#[test]
fn generate_validate_getpublic_sign_verify() {
    let dir = TempDir::new("flow");
    let secret = dir.path("identity.secret");
    let public = dir.path("identity.public");
    let out = idtool(
        &dir,
        &[
            OsStr::new("generate"),
            secret.as_os_str(),
            public.as_os_str(),
        ],
    );
    assert_ok(&out, "generate");
    assert_eq!(
        stdout(&out),
        format!(
            "{} written\n{} written\n",
            secret.display(),
            public.display()
        )
    );

    let secret_text = std::fs::read_to_string(&secret).unwrap();
    let public_text = std::fs::read_to_string(&public).unwrap();
    assert!(!secret_text.ends_with('\n') && !public_text.ends_with('\n'));
    let id: Identity = secret_text.parse().expect("secret file parses");
    assert!(id.has_secret());
    assert_eq!(id.to_public_string(), public_text);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secret file is 0600");
    }

    let out = idtool(&dir, &[OsStr::new("validate"), secret.as_os_str()]);
    assert_ok(&out, "validate");
    assert_eq!(
        stdout(&out),
        format!("{} is a valid identity\n", secret.display())
    );

    let out = idtool(&dir, &[OsStr::new("getpublic"), secret.as_os_str()]);
    assert_ok(&out, "getpublic");
    assert_eq!(stdout(&out), public_text);

    let message = dir.path("message.bin");
    std::fs::write(&message, b"some bytes to sign\x00\xff").unwrap();
    let out = idtool(
        &dir,
        &[OsStr::new("sign"), secret.as_os_str(), message.as_os_str()],
    );
    assert_ok(&out, "sign");
    let signature = stdout(&out);
    assert_eq!(signature.len(), 192);
    assert!(ztrs::hex::decode(&signature).is_some());

    let out = idtool(
        &dir,
        &[
            OsStr::new("verify"),
            public.as_os_str(),
            message.as_os_str(),
            OsStr::new(&signature),
        ],
    );
    assert_ok(&out, "verify");
    assert_eq!(
        stdout(&out),
        format!("{} signature valid\n", message.display())
    );

    // A tampered file fails verification.
    std::fs::write(&message, b"some bytes to sign\x00\xfe").unwrap();
    let out = idtool(
        &dir,
        &[
            OsStr::new("verify"),
            public.as_os_str(),
            message.as_os_str(),
            OsStr::new(&signature),
        ],
    );
    assert_fails(&out, "verify of a tampered file");
    assert!(stderr(&out).contains("signature check FAILED"));
    assert!(stdout(&out).is_empty());
}

#[test]
fn generate_to_stdout_prints_a_secret_identity() {
    let dir = TempDir::new("stdout");
    let out = idtool(&dir, &["generate"]);
    assert_ok(&out, "generate");
    let text = stdout(&out);
    assert!(
        !text.ends_with('\n'),
        "no trailing newline, as the reference"
    );
    let id: Identity = text.parse().expect("generated identity parses");
    assert!(id.has_secret());
    assert!(id.locally_validate());
}

#[test]
fn sign_reproduces_reference_signatures() {
    let dir = TempDir::new("sign");
    for n in 1..=3 {
        for (file, sig) in [("msg.txt", "msg"), ("empty.txt", "empty")] {
            let out = idtool(
                &dir,
                &[
                    OsStr::new("sign"),
                    reference(&format!("id{n}.secret")).as_os_str(),
                    reference(file).as_os_str(),
                ],
            );
            assert_ok(&out, "sign");
            let expected = common::read_reference(&format!("id{n}.{sig}.sig"));
            assert_eq!(stdout(&out), expected.trim(), "id{n} {file}");
        }
    }
}

#[test]
fn verify_reference_signatures_given_as_hex_or_file() {
    let dir = TempDir::new("verify");
    let msg = reference("msg.txt");
    let sig_file = reference("id1.msg.sig");
    let sig_hex = common::read_reference("id1.msg.sig");
    for sig in [sig_file.as_os_str(), OsStr::new(sig_hex.trim())] {
        let out = idtool(
            &dir,
            &[
                OsStr::new("verify"),
                reference("id1.public").as_os_str(),
                msg.as_os_str(),
                sig,
            ],
        );
        assert_ok(&out, "verify");
        assert_eq!(stdout(&out), format!("{} signature valid\n", msg.display()));
    }
    // The right signature with the wrong identity fails.
    let out = idtool(
        &dir,
        &[
            OsStr::new("verify"),
            reference("id2.public").as_os_str(),
            msg.as_os_str(),
            sig_file.as_os_str(),
        ],
    );
    assert_fails(&out, "verify with the wrong identity");
    assert_eq!(
        stderr(&out),
        format!("{} signature check FAILED\n", msg.display())
    );
}

#[test]
fn validate_reference_identities_and_reject_corrupted_ones() {
    let dir = TempDir::new("validate");
    for name in ["id1.public", "id2.secret", "id3.public"] {
        let out = idtool(&dir, &[OsStr::new("validate"), reference(name).as_os_str()]);
        assert_ok(&out, name);
    }
    // An identity given literally on the command line.
    let literal = common::read_reference("id3.public");
    let out = idtool(&dir, &["validate", literal.as_str()]);
    assert_ok(&out, "validate literal");
    assert_eq!(stdout(&out), format!("{literal} is a valid identity\n"));

    // Same key, different address: syntactically fine, fails the proof of work.
    let corrupted = dir.path("corrupted.public");
    let other_digit = if literal.starts_with('1') { '2' } else { '1' };
    std::fs::write(&corrupted, format!("{other_digit}{}", &literal[1..])).unwrap();
    let out = idtool(&dir, &[OsStr::new("validate"), corrupted.as_os_str()]);
    assert_fails(&out, "validate of a corrupted identity");
    assert_eq!(
        stderr(&out),
        format!("{} FAILED validation.\n", corrupted.display())
    );

    // Not an identity at all, and a missing file.
    std::fs::write(&corrupted, "not an identity").unwrap();
    for arg in [corrupted.as_os_str(), OsStr::new("no-such-file")] {
        let out = idtool(&dir, &[OsStr::new("validate"), arg]);
        assert_fails(&out, "validate of garbage");
        assert!(stderr(&out).starts_with("Identity argument invalid or file unreadable: "));
    }
}

#[test]
fn getpublic_and_sign_need_the_right_identity() {
    let dir = TempDir::new("getpublic");
    let out = idtool(
        &dir,
        &[OsStr::new("getpublic"), reference("id2.secret").as_os_str()],
    );
    assert_ok(&out, "getpublic");
    assert_eq!(stdout(&out), common::read_reference("id2.public"));

    let out = idtool(
        &dir,
        &[
            OsStr::new("sign"),
            reference("id2.public").as_os_str(),
            reference("msg.txt").as_os_str(),
        ],
    );
    assert_fails(&out, "sign with a public identity");
    assert!(stderr(&out).contains("does not contain a private key"));

    let out = idtool(
        &dir,
        &[
            OsStr::new("sign"),
            reference("id2.secret").as_os_str(),
            OsStr::new("no-such-file"),
        ],
    );
    assert_fails(&out, "sign of a missing file");
    assert_eq!(stderr(&out), "no-such-file is not readable\n");
}

#[test]
fn usage_errors_exit_1_with_usage_on_stderr() {
    let dir = TempDir::new("usage");
    for args in [&[][..], &["bogus"][..], &["sign", "only-one-arg"][..]] {
        let out = idtool(&dir, args);
        assert_fails(&out, &format!("idtool {args:?}"));
        assert!(
            stderr(&out).contains("Usage:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = ztrs(&dir, &[]);
    assert_fails(&out, "ztrs without a subcommand");
    let out = ztrs(&dir, &[OsStr::new("--help")]);
    assert_ok(&out, "ztrs --help");
    assert!(stdout(&out).contains("idtool"));
}

#[cfg(unix)]
#[test]
fn symlink_named_zerotier_idtool_behaves_as_idtool() {
    let dir = TempDir::new("argv0");
    let link = dir.path("zerotier-idtool");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ztrs"), &link).unwrap();
    let out = Command::new(&link)
        .current_dir(&dir.0)
        .arg("getpublic")
        .arg(reference("id1.secret"))
        .output()
        .expect("run zerotier-idtool");
    assert_ok(&out, "zerotier-idtool getpublic");
    assert_eq!(stdout(&out), common::read_reference("id1.public"));
}

#[test]
fn initmoon_prints_the_reference_template() {
    let dir = TempDir::new("initmoon");
    let out = idtool(
        &dir,
        &[OsStr::new("initmoon"), reference("id1.public").as_os_str()],
    );
    assert_ok(&out, "initmoon");
    let text = stdout(&out);
    assert!(text.ends_with("}\n"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("initmoon prints JSON");
    let reference_json: serde_json::Value =
        serde_json::from_str(&common::read_reference("moon.json")).unwrap();

    // Same fields as the reference output; the root and id are those of id1.
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&json), keys(&reference_json));
    assert_eq!(json["objtype"], "world");
    assert_eq!(json["worldType"], "moon");
    assert_eq!(json["id"], reference_json["id"]);
    assert_eq!(
        json["roots"][0]["identity"],
        reference_json["roots"][0]["identity"]
    );
    assert_eq!(json["roots"][0]["stableEndpoints"], serde_json::json!([]));
    assert_eq!(json["signingKey"], json["updatesMustBeSignedBy"]);
    for key in ["signingKey", "signingKey_SECRET"] {
        let hex = json[key].as_str().unwrap();
        assert_eq!(hex.len(), 128, "{key}");
        assert!(ztrs::hex::decode(hex).is_some(), "{key}");
    }
    // Formatted like the reference (sorted keys, one-space indentation).
    assert!(text.starts_with("{\n \"id\": \"7c2dfee12c\",\n \"objtype\": \"world\",\n \"roots\": [\n  {\n   \"identity\": "));

    let out = idtool(&dir, &["initmoon", "no-such-file"]);
    assert_fails(&out, "initmoon of a missing identity");
    assert_eq!(stderr(&out), "no-such-file is not a valid identity\n");
}

/// Runs `genmoon <json>` in `dir`; returns the written file's name and bytes, and the
/// timestamp it reported.
fn genmoon(dir: &TempDir, json: &Path) -> (String, Vec<u8>, u64) {
    let before = now_ms();
    let out = idtool(dir, &[OsStr::new("genmoon"), json.as_os_str()]);
    assert_ok(&out, "genmoon");
    let after = now_ms();
    let text = stdout(&out);
    let rest = text
        .strip_prefix("wrote ")
        .expect("genmoon output starts with 'wrote '");
    let (name, rest) = rest.split_once(' ').expect("file name");
    let timestamp: u64 = rest
        .strip_prefix("(signed world with timestamp ")
        .and_then(|r| r.strip_suffix(")\n"))
        .expect("timestamp in genmoon output")
        .parse()
        .expect("decimal timestamp");
    assert!((before..=after).contains(&timestamp), "timestamp is now");
    let bytes = std::fs::read(dir.path(name)).expect("genmoon wrote its file");
    (name.to_string(), bytes, timestamp)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn json_key(json: &serde_json::Value, key: &str) -> [u8; 64] {
    ztrs::hex::decode_array(json[key].as_str().expect(key)).expect(key)
}

#[test]
fn initmoon_edit_genmoon_gives_a_signed_moon_or_planet() {
    use ztrs::wire::world::{World, WorldType};

    let dir = TempDir::new("genmoon");
    let out = idtool(
        &dir,
        &[OsStr::new("initmoon"), reference("id1.public").as_os_str()],
    );
    assert_ok(&out, "initmoon");
    let mut json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    json["roots"][0]["stableEndpoints"] =
        serde_json::json!(["2001:db8::7/9993", "198.51.100.7/9993"]);
    let signing_key = json_key(&json, "signingKey");

    for (world_type, type_name) in [(WorldType::Moon, "moon"), (WorldType::Planet, "planet")] {
        json["worldType"] = type_name.into();
        let path = dir.path(&format!("{type_name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        let (name, bytes, timestamp) = genmoon(&dir, &path);
        assert_eq!(name, "0000007c2dfee12c.moon", "{type_name}");

        let world = World::parse(&bytes).expect("genmoon output parses");
        assert_eq!(world.world_type, world_type);
        assert_eq!(world.id, 0x7c2dfee12c);
        assert_eq!(world.timestamp, timestamp);
        assert_eq!(world.updates_must_be_signed_by, signing_key);
        assert!(
            world.verify_signature_with(&signing_key),
            "{type_name} signature"
        );
        assert_eq!(world.roots.len(), 1);
        let root: Identity = common::read_reference("id1.public").parse().unwrap();
        assert_eq!(world.roots[0].identity, root);
        let endpoints: Vec<String> = world.roots[0]
            .stable_endpoints
            .iter()
            .map(|e| e.socket_addr().unwrap().to_string())
            .collect();
        // Sorted as the reference sorts them: IPv4 before IPv6.
        assert_eq!(endpoints, ["198.51.100.7:9993", "[2001:db8::7]:9993"]);
    }
}

#[test]
fn genmoon_reproduces_the_reference_worlds_except_timestamp_and_signature() {
    use ztrs::wire::world::World;

    // Offsets of the fields that change with every signing: timestamp and signature.
    const TIMESTAMP: std::ops::Range<usize> = 9..17;
    const SIGNATURE: std::ops::Range<usize> = 81..177;

    let dir = TempDir::new("genmoon-ref");
    for (json_name, moon_name) in [
        ("moon.json", "0000007c2dfee12c.moon"),
        ("planet.json", "0000000000001234.moon"),
    ] {
        let (name, ours, timestamp) = genmoon(&dir, &reference(json_name));
        assert_eq!(name, moon_name);
        let theirs = std::fs::read(reference(moon_name)).unwrap();

        let our_world = World::parse(&ours).expect("our world parses");
        let mut their_world = World::parse(&theirs).expect("reference world parses");
        assert_eq!(our_world.timestamp, timestamp);
        their_world.timestamp = our_world.timestamp;
        their_world.signature = our_world.signature;
        assert_eq!(our_world, their_world, "{json_name}: parsed fields");

        let json: serde_json::Value =
            serde_json::from_str(&common::read_reference(json_name)).unwrap();
        assert!(our_world.verify_signature_with(&json_key(&json, "signingKey")));

        // Byte for byte outside the timestamp and signature.
        assert_eq!(ours.len(), theirs.len(), "{json_name}: length");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            if !TIMESTAMP.contains(&i) && !SIGNATURE.contains(&i) {
                assert_eq!(a, b, "{json_name}: byte {i}");
            }
        }
    }
}

#[test]
fn genmoon_refuses_bad_definitions() {
    let dir = TempDir::new("genmoon-bad");
    let mut json: serde_json::Value =
        serde_json::from_str(&common::read_reference("moon.json")).unwrap();
    let path = dir.path("bad.json");
    for (field, value, message) in [
        ("worldType", serde_json::json!("star"), "invalid worldType"),
        ("id", serde_json::json!("0"), "ID is invalid"),
        (
            "signingKey_SECRET",
            serde_json::json!("00"),
            "signingKey_SECRET",
        ),
    ] {
        let saved = json[field].clone();
        json[field] = value;
        std::fs::write(&path, json.to_string()).unwrap();
        let out = idtool(&dir, &[OsStr::new("genmoon"), path.as_os_str()]);
        assert_fails(&out, field);
        assert!(stderr(&out).contains(message), "{field}: {}", stderr(&out));
        json[field] = saved;
    }
    std::fs::write(&path, "{ not json").unwrap();
    let out = idtool(&dir, &[OsStr::new("genmoon"), path.as_os_str()]);
    assert_fails(&out, "genmoon of broken JSON");
    let out = idtool(&dir, &["genmoon", "no-such-file.json"]);
    assert_fails(&out, "genmoon of a missing file");
    assert_eq!(stderr(&out), "cannot read no-such-file.json\n");
    // Nothing was written by the failures.
    let written: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "moon"))
        .collect();
    assert!(written.is_empty());
}
