//! Worlds against the reference: the `world_serialized` vector and its signed portion, the
//! built-in planet, the `genmoon` outputs of `reference/` and the moons and planet of the two
//! captures.

mod common;

use std::net::SocketAddr;

use ztrs::crypto::c25519::SecretKey;
use ztrs::wire::InetAddress;
use ztrs::wire::world::{DEFAULT_PLANET_BYTES, EARTH_ID, World, WorldType};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("vector JSON parses")
}

fn key64(hex: &str) -> [u8; 64] {
    ztrs::hex::decode_array(hex).expect("64-byte hex key")
}

fn read_bytes(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()))
}

#[test]
fn world_vector_and_signed_portion() {
    let v = common::wire_vectors();
    let bytes = common::unhex(&v["world_serialized"]);
    let world = World::parse(&bytes).expect("world_serialized parses");
    assert_eq!(world.world_type, WorldType::Planet);
    assert_eq!(world.id, 0x1234);
    assert_eq!(
        world.signed_message(),
        common::unhex(&v["world_signed_portion"])
    );
    let key = key64(&v["world_signing_pub"]);
    assert!(world.verify_signature_with(&key));
    assert_eq!(world.updates_must_be_signed_by, key);
    assert_eq!(world.to_bytes(), bytes);
    let a: ztrs::crypto::Identity = v["A_secret"].parse().unwrap();
    assert_eq!(world.roots.len(), 1);
    assert_eq!(world.roots[0].identity, a.to_public());
    for len in 0..bytes.len() {
        assert!(World::parse(&bytes[..len]).is_err(), "truncated to {len}");
    }
}

#[test]
fn default_planet_matches_the_reference() {
    let hex = common::read_reference("default_planet.hex");
    let bytes = common::unhex(&hex);
    assert_eq!(bytes.len(), 570);
    assert_eq!(
        bytes, DEFAULT_PLANET_BYTES,
        "embedded copy is the reference planet"
    );
    let planet = World::parse(&bytes).unwrap();
    assert_eq!(planet, World::default_planet());
    assert_eq!(planet.world_type, WorldType::Planet);
    assert_eq!(planet.id, EARTH_ID);
    assert_eq!(planet.timestamp, 1_644_592_324_813);
    assert!(planet.verify_signature_with(&planet.updates_must_be_signed_by));
    let expected = [
        (
            "cafe9efeb9",
            [
                "104.194.8.134:9993",
                "[2605:9880:200:1200:30:571:e34:51]:9993",
            ],
        ),
        (
            "778cde7190",
            [
                "103.195.103.66:9993",
                "[2605:9880:400:c3:254:f2bc:a1f7:19]:9993",
            ],
        ),
        (
            "62f865ae71",
            ["50.7.252.138:9993", "[2001:49f0:d0db:2::2]:9993"],
        ),
        (
            "cafe04eba9",
            ["84.17.53.155:9993", "[2a02:6ea0:d405::9993]:9993"],
        ),
    ];
    assert_eq!(planet.roots.len(), expected.len());
    for (root, (address, endpoints)) in planet.roots.iter().zip(expected) {
        assert_eq!(root.identity.address().to_string(), address);
        let endpoints: Vec<InetAddress> = endpoints
            .iter()
            .map(|e| InetAddress::from_socket_addr(e.parse::<SocketAddr>().unwrap()))
            .collect();
        assert_eq!(root.stable_endpoints, endpoints);
    }
    assert_eq!(planet.to_bytes(), bytes);
    // A node writes the same bytes as its `planet` file.
    let written =
        read_bytes(common::vectors_dir().join("zerotierone-1.14.1-capture/planet-earth-default"));
    assert_eq!(written, bytes);
    for len in 0..bytes.len() {
        assert!(World::parse(&bytes[..len]).is_err(), "truncated to {len}");
    }
}

#[test]
fn genmoon_outputs_parse_and_verify() {
    for (file, spec, world_type) in [
        ("0000007c2dfee12c.moon", "moon.json", WorldType::Moon),
        ("0000000000001234.moon", "planet.json", WorldType::Planet),
    ] {
        let bytes = read_bytes(common::reference_path(file));
        let world = World::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let spec = json(&common::read_reference(spec));
        assert_eq!(world.world_type, world_type, "{file}");
        assert_eq!(format!("{:016x}", world.id), &file[..16]);
        let key = key64(spec["signingKey"].as_str().unwrap());
        assert!(world.verify_signature_with(&key), "{file} verifies");
        assert_eq!(
            world.updates_must_be_signed_by,
            key64(spec["updatesMustBeSignedBy"].as_str().unwrap())
        );
        let root = &spec["roots"][0];
        assert_eq!(world.roots.len(), 1);
        assert_eq!(
            world.roots[0].identity.to_public_string(),
            root["identity"].as_str().unwrap()
        );
        assert_eq!(
            world.roots[0].stable_endpoints,
            vec![InetAddress::from_socket_addr(
                "192.0.2.10:9993".parse().unwrap()
            )]
        );
        assert_eq!(world.to_bytes(), bytes, "{file} re-emits byte for byte");
        // Re-signing with the secret in the JSON reproduces the file (deterministic).
        let secret = SecretKey::from_bytes(key64(spec["signingKey_SECRET"].as_str().unwrap()));
        let mut resigned = world.clone();
        resigned.signature = [0u8; 96];
        resigned.sign(&secret);
        assert_eq!(resigned, world);
        for len in 0..bytes.len() {
            assert!(
                World::parse(&bytes[..len]).is_err(),
                "{file} truncated to {len}"
            );
        }
    }
}

#[test]
fn captured_moons_parse_and_verify() {
    for (dir, file) in [
        ("zerotierone-1.14.1-capture", "00000028210c94e2.moon"),
        ("zerotierone-1.14.1-capture-2", "00000080ecb0711e.moon"),
    ] {
        let base = common::vectors_dir().join(dir);
        let bytes = read_bytes(base.join(file));
        let spec = json(&String::from_utf8(read_bytes(base.join("moon.json"))).unwrap());
        let world = World::parse(&bytes).unwrap();
        assert_eq!(world.world_type, WorldType::Moon);
        assert!(world.verify_signature_with(&key64(spec["signingKey"].as_str().unwrap())));
        assert_eq!(world.to_bytes(), bytes);
    }
}

#[test]
fn update_rule_between_reference_worlds() {
    let earth = World::default_planet();
    let v = common::wire_vectors();
    let test_planet = World::parse(&common::unhex(&v["world_serialized"])).unwrap();
    let genmoon_planet =
        World::parse(&read_bytes(common::reference_path("0000000000001234.moon"))).unwrap();
    let moon = World::parse(&read_bytes(common::reference_path("0000007c2dfee12c.moon"))).unwrap();
    // Nothing on file: anything is taken.
    assert!(earth.should_replace(None));
    // A custom planet with another id stays in force: Earth never replaces it (6.3).
    assert!(!earth.should_replace(Some(&test_planet)));
    assert!(!test_planet.should_replace(Some(&earth)));
    // Same world, same revision: not strictly newer.
    assert!(!earth.should_replace(Some(&earth)));
    // Same id (0x1234) and type, newer, but signed by another key than the one on file.
    assert_eq!(genmoon_planet.id, test_planet.id);
    assert_eq!(genmoon_planet.world_type, test_planet.world_type);
    assert!(genmoon_planet.timestamp > test_planet.timestamp);
    assert!(!genmoon_planet.verify_signature_with(&test_planet.updates_must_be_signed_by));
    assert!(!genmoon_planet.should_replace(Some(&test_planet)));
    assert!(!moon.should_replace(Some(&earth)));
    // A properly signed newer revision of the genmoon planet replaces it.
    let spec = json(&common::read_reference("planet.json"));
    let secret = SecretKey::from_bytes(key64(spec["signingKey_SECRET"].as_str().unwrap()));
    let mut next = genmoon_planet.clone();
    next.timestamp += 1;
    next.sign(&secret);
    assert!(next.should_replace(Some(&genmoon_planet)));
    let mut as_moon = next.clone();
    as_moon.world_type = WorldType::Moon;
    as_moon.sign(&secret);
    assert!(
        !as_moon.should_replace(Some(&genmoon_planet)),
        "type must match"
    );
}
