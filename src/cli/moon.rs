//! World (planet/moon) definitions in the JSON format of `zerotier-idtool initmoon` and
//! `genmoon`: the template `initmoon` prints, and the validated [`WorldSpec`] `genmoon` reads.
//!
//! ```text
//! {"id": "<hex world id>", "objtype": "world", "worldType": "moon" | "planet",
//!  "signingKey": <128 hex>, "signingKey_SECRET": <128 hex>, "updatesMustBeSignedBy": <128 hex>,
//!  "roots": [{"identity": "<public identity>", "stableEndpoints": ["ip/port", ...]}, ...]}
//! ```
//!
//! Where the reference silently turns bad input into zeros (an unparsable identity, endpoint
//! or key), this module refuses it with a message naming the field.

use std::cmp::Ordering;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::Identity;
use crate::crypto::c25519::{self, PUBLIC_LEN, SECRET_LEN, SecretKey};
use crate::hex;
use crate::wire::InetAddress;
use crate::wire::world::{MAX_ROOTS, MAX_STABLE_ENDPOINTS, Root, World, WorldType};

/// A validated world definition, ready to be signed.
pub(crate) struct WorldSpec {
    pub(crate) world_type: WorldType,
    pub(crate) id: u64,
    pub(crate) signing_secret: SecretKey,
    pub(crate) updates_must_be_signed_by: [u8; PUBLIC_LEN],
    /// Sorted as the reference sorts them (see [`WorldSpec::from_json`]).
    pub(crate) roots: Vec<Root>,
}

/// The JSON template `initmoon` prints for `root`, with a fresh signing key pair, formatted
/// like the reference (keys sorted, one-space indentation, no trailing newline).
pub(crate) fn moon_template(root: &Identity) -> String {
    let (public, secret) = c25519::generate_keypair();
    let public_hex = Value::String(hex::encode(&public));
    let mut seed = Map::new();
    seed.insert("identity".into(), Value::String(root.to_public_string()));
    seed.insert("stableEndpoints".into(), Value::Array(Vec::new()));

    // Inserted in sorted order so the output is sorted whether or not serde_json preserves
    // insertion order.
    let mut moon = Map::new();
    moon.insert("id".into(), Value::String(root.address().to_string()));
    moon.insert("objtype".into(), Value::String("world".into()));
    moon.insert("roots".into(), Value::Array(vec![Value::Object(seed)]));
    moon.insert("signingKey".into(), public_hex.clone());
    moon.insert(
        "signingKey_SECRET".into(),
        Value::String(hex::encode(secret.as_bytes())),
    );
    moon.insert("updatesMustBeSignedBy".into(), public_hex);
    moon.insert("worldType".into(), Value::String("moon".into()));
    to_reference_json(&Value::Object(moon))
}

/// Serializes like nlohmann::json's `dump(1)`, which the reference uses.
fn to_reference_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a `Value` into a `Vec` cannot fail, and the output is UTF-8.
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

impl WorldSpec {
    /// Parses and validates a world definition. Roots are sorted by (address, public key) and
    /// each root's endpoints in the reference's `InetAddress` order, so that the serialized
    /// world matches what `zerotier-idtool genmoon` writes for the same JSON.
    pub(crate) fn from_json(text: &str) -> Result<WorldSpec, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let obj = json
            .as_object()
            .ok_or_else(|| "invalid JSON: expected an object".to_string())?;

        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .and_then(parse_world_id)
            .ok_or_else(|| "ID is invalid".to_string())?;
        let world_type = match obj.get("worldType").and_then(Value::as_str) {
            Some("moon") => WorldType::Moon,
            Some("planet") => WorldType::Planet,
            _ => return Err("invalid worldType".into()),
        };

        let signing_public = hex_field::<PUBLIC_LEN>(obj, "signingKey")?;
        let signing_secret =
            SecretKey::from_bytes(hex_field::<SECRET_LEN>(obj, "signingKey_SECRET")?);
        if signing_secret.public_key() != signing_public {
            return Err("signingKey_SECRET does not belong to signingKey".into());
        }
        let updates_must_be_signed_by = hex_field::<PUBLIC_LEN>(obj, "updatesMustBeSignedBy")?;

        let roots_json = match obj.get("roots") {
            None => &[][..],
            Some(Value::Array(roots)) => roots.as_slice(),
            Some(_) => return Err("roots must be an array".into()),
        };
        if roots_json.len() > MAX_ROOTS {
            return Err(format!("too many roots (at most {MAX_ROOTS})"));
        }
        let mut roots = roots_json
            .iter()
            .enumerate()
            .map(|(i, root)| parse_root(i, root))
            .collect::<Result<Vec<_>, _>>()?;
        roots.sort_by(|a, b| compare_identities(&a.identity, &b.identity));

        Ok(WorldSpec {
            world_type,
            id,
            signing_secret,
            updates_must_be_signed_by,
            roots,
        })
    }
}

/// Signs `spec` as of `timestamp` (ms) and serializes it. Returns the reference's output file
/// name (`<16 hex id>.moon`, also for planets) and the bytes.
pub(crate) fn sign_world(spec: &WorldSpec, timestamp: u64) -> (String, Vec<u8>) {
    let mut world = World {
        world_type: spec.world_type,
        id: spec.id,
        timestamp,
        updates_must_be_signed_by: spec.updates_must_be_signed_by,
        signature: [0u8; c25519::SIGNATURE_LEN],
        roots: spec.roots.clone(),
    };
    world.sign(&spec.signing_secret);
    (format!("{:016x}.moon", world.id), world.to_bytes())
}

/// A hex world id of 1 to 16 digits, not zero (the reference's "ID is invalid").
fn parse_world_id(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok().filter(|&id| id != 0)
}

fn hex_field<const N: usize>(obj: &Map<String, Value>, name: &str) -> Result<[u8; N], String> {
    obj.get(name)
        .and_then(Value::as_str)
        .and_then(|text| hex::decode_array::<N>(text.trim()))
        .ok_or_else(|| format!("{name} must be {} hex digits", 2 * N))
}

fn parse_root(index: usize, root: &Value) -> Result<Root, String> {
    let obj = root
        .as_object()
        .ok_or_else(|| format!("roots[{index}] must be an object"))?;
    let identity: Identity = obj
        .get("identity")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("roots[{index}].identity is missing"))?
        .parse()
        .map_err(|e| format!("roots[{index}].identity: {e}"))?;
    let endpoints_json = match obj.get("stableEndpoints") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return Err(format!("roots[{index}].stableEndpoints must be an array")),
    };
    if endpoints_json.len() > MAX_STABLE_ENDPOINTS {
        return Err(format!(
            "roots[{index}] has too many stableEndpoints (at most {MAX_STABLE_ENDPOINTS})"
        ));
    }
    let mut stable_endpoints = endpoints_json
        .iter()
        .map(|e| {
            e.as_str().and_then(parse_endpoint).ok_or_else(|| {
                format!("roots[{index}].stableEndpoints: {e} is not an \"ip/port\" string")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    stable_endpoints.sort_by_key(endpoint_order_key);
    Ok(Root {
        // Only the public half ever goes into a world.
        identity: identity.to_public(),
        stable_endpoints,
    })
}

/// `ip/port`, as in the reference's JSON (IPv4 or IPv6, decimal port).
pub(crate) fn parse_endpoint(text: &str) -> Option<InetAddress> {
    let (ip, port) = text.trim().rsplit_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let port: u16 = port.parse().ok()?;
    Some(InetAddress::Ip(ip, port))
}

/// The reference sorts identities by address, then public key bytes.
fn compare_identities(a: &Identity, b: &Identity) -> Ordering {
    a.address()
        .cmp(&b.address())
        .then_with(|| a.public_key().cmp(b.public_key()))
}

/// The order of the reference's `InetAddress::operator<` on a little-endian host: IPv4 before
/// IPv6; then the port and (IPv4) address compared as the in-memory network-order integers,
/// i.e. byte-swapped; IPv6 addresses compared bytewise.
fn endpoint_order_key(a: &InetAddress) -> (u8, u16, u32, [u8; 16]) {
    match *a {
        InetAddress::Ip(IpAddr::V4(ip), port) => (
            0,
            port.swap_bytes(),
            u32::from_le_bytes(ip.octets()),
            [0; 16],
        ),
        InetAddress::Ip(IpAddr::V6(ip), port) => (1, port.swap_bytes(), 0, ip.octets()),
        // Not produced by `parse_endpoint`.
        InetAddress::Nil | InetAddress::Other(_) => (2, 0, 0, [0; 16]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn endpoints_parse_and_sort_like_the_reference() {
        assert_eq!(
            parse_endpoint("192.0.2.10/9993"),
            Some(InetAddress::Ip(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                9993
            )),
        );
        assert_eq!(
            parse_endpoint("2001:db8::1/443"),
            Some(InetAddress::Ip(
                IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
                443
            )),
        );
        for bad in ["192.0.2.10", "192.0.2.10/70000", "host/1", "/1", ""] {
            assert_eq!(parse_endpoint(bad), None, "{bad}");
        }
        let mut list: Vec<InetAddress> =
            ["2001:db8::1/1", "10.0.0.2/1", "10.0.0.1/2", "11.0.0.1/1"]
                .iter()
                .filter_map(|s| parse_endpoint(s))
                .collect();
        list.sort_by_key(endpoint_order_key);
        let shown: Vec<String> = list
            .iter()
            .map(|a| a.socket_addr().unwrap().to_string())
            .collect();
        // Port 1 (read back as 0x0100) sorts before port 2 (0x0200); then IPv4 addresses
        // compare as little-endian words, i.e. by their last octet first.
        assert_eq!(
            shown,
            ["11.0.0.1:1", "10.0.0.2:1", "10.0.0.1:2", "[2001:db8::1]:1"]
        );
    }

    #[test]
    fn world_ids() {
        assert_eq!(parse_world_id("7c2dfee12c"), Some(0x7c2dfee12c));
        assert_eq!(parse_world_id("0000000000001234"), Some(0x1234));
        assert_eq!(parse_world_id("0"), None);
        assert_eq!(parse_world_id("00000000000000001"), None);
        assert_eq!(parse_world_id("xyz"), None);
    }

    #[test]
    fn template_round_trips_through_the_spec_parser() {
        let root: Identity = "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729"
            .parse()
            .unwrap();
        let text = moon_template(&root);
        assert!(text.starts_with("{\n \"id\": \"7c2dfee12c\",\n \"objtype\": \"world\","));
        let spec = WorldSpec::from_json(&text).unwrap();
        assert_eq!(spec.world_type, WorldType::Moon);
        assert_eq!(spec.id, 0x7c2dfee12c);
        assert_eq!(spec.roots.len(), 1);
        assert_eq!(spec.roots[0].identity, root);
        assert!(spec.roots[0].stable_endpoints.is_empty());
        assert_eq!(
            spec.updates_must_be_signed_by,
            spec.signing_secret.public_key()
        );
    }

    #[test]
    fn signed_world_parses_and_verifies() {
        let root: Identity = "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729"
            .parse()
            .unwrap();
        let mut json: Value = serde_json::from_str(&moon_template(&root)).unwrap();
        json["roots"][0]["stableEndpoints"] = serde_json::json!(["10.0.0.2/9993", "10.0.0.1/9993"]);
        let spec = WorldSpec::from_json(&json.to_string()).unwrap();
        let (name, bytes) = sign_world(&spec, 1_700_000_000_000);
        assert_eq!(name, "0000007c2dfee12c.moon");
        let world = World::parse(&bytes).unwrap();
        assert_eq!(world.world_type, WorldType::Moon);
        assert_eq!(world.timestamp, 1_700_000_000_000);
        assert!(world.verify_signature_with(&spec.signing_secret.public_key()));
        let endpoints: Vec<String> = world.roots[0]
            .stable_endpoints
            .iter()
            .map(|a| a.socket_addr().unwrap().to_string())
            .collect();
        assert_eq!(endpoints, ["10.0.0.1:9993", "10.0.0.2:9993"]);
    }

    #[test]
    fn bad_specs_are_refused_with_the_field_named() {
        let root = "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729";
        let template = moon_template(&root.parse().unwrap());
        let mut json: Value = serde_json::from_str(&template).unwrap();
        json["worldType"] = "star".into();
        assert_eq!(
            WorldSpec::from_json(&json.to_string()).err().unwrap(),
            "invalid worldType"
        );
        let mut json: Value = serde_json::from_str(&template).unwrap();
        json["roots"][0]["stableEndpoints"] = serde_json::json!(["nowhere"]);
        assert!(
            WorldSpec::from_json(&json.to_string())
                .err()
                .unwrap()
                .contains("stableEndpoints")
        );
        let mut json: Value = serde_json::from_str(&template).unwrap();
        json["signingKey"] = json["updatesMustBeSignedBy"].clone();
        json["signingKey_SECRET"] = "00".repeat(64).into();
        assert!(
            WorldSpec::from_json(&json.to_string())
                .err()
                .unwrap()
                .contains("does not belong")
        );
        let mut json: Value = serde_json::from_str(&template).unwrap();
        json["roots"] = Value::Array(vec![json["roots"][0].clone(); 5]);
        assert!(
            WorldSpec::from_json(&json.to_string())
                .err()
                .unwrap()
                .contains("too many roots")
        );
        assert!(WorldSpec::from_json("[1]").is_err());
        assert!(WorldSpec::from_json("{").is_err());
    }
}
