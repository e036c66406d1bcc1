//! Controller request bodies: read as one JSON object and checked field by field for the
//! fields controller UIs send (names, flags, pools, routes, rules, IPs, tags ...), so a
//! wrong shape is refused with a 400 naming the field before the controller sees anything.
//! Fields not listed here go to the controller as they are; its typed parse refuses what
//! does not fit its objects, and keeps unknown fields as the reference's files do.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::controller::parse_cidr;
use crate::wire::netconf::{MAX_MTU, MIN_MTU};

/// A body as a JSON object: empty means `{}`; anything but an object is refused.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.trim_ascii().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request("body must be a JSON object")),
        Err(err) => Err(ApiError::bad_request(format!("body is not JSON: {err}"))),
    }
}

/// What a field must look like.
#[derive(Clone, Copy)]
enum Shape {
    Bool,
    Text,
    Unsigned,
    Mtu,
    V4Mode,
    V6Mode,
    Pools,
    Routes,
    Rules,
    IdObjects,
    Dns,
    IpList,
    TagPairs,
    IdList,
}

const NETWORK_FIELDS: &[(&str, Shape)] = &[
    ("name", Shape::Text),
    ("private", Shape::Bool),
    ("enableBroadcast", Shape::Bool),
    ("mtu", Shape::Mtu),
    ("multicastLimit", Shape::Unsigned),
    ("v4AssignMode", Shape::V4Mode),
    ("v6AssignMode", Shape::V6Mode),
    ("ipAssignmentPools", Shape::Pools),
    ("routes", Shape::Routes),
    ("rules", Shape::Rules),
    ("tags", Shape::IdObjects),
    ("capabilities", Shape::IdObjects),
    ("dns", Shape::Dns),
];

const MEMBER_FIELDS: &[(&str, Shape)] = &[
    ("name", Shape::Text),
    ("authorized", Shape::Bool),
    ("activeBridge", Shape::Bool),
    ("noAutoAssignIps", Shape::Bool),
    ("ipAssignments", Shape::IpList),
    ("tags", Shape::TagPairs),
    ("capabilities", Shape::IdList),
];

/// Checks the network fields a body carries.
pub(crate) fn check_network(body: &Map<String, Value>) -> Result<(), ApiError> {
    check(body, NETWORK_FIELDS)
}

/// Checks the member fields a body carries.
pub(crate) fn check_member(body: &Map<String, Value>) -> Result<(), ApiError> {
    check(body, MEMBER_FIELDS)
}

fn check(body: &Map<String, Value>, fields: &[(&str, Shape)]) -> Result<(), ApiError> {
    for (name, shape) in fields {
        if let Some(value) = body.get(*name)
            && let Err(why) = fits(value, *shape)
        {
            return Err(ApiError::bad_request(format!("field {name:?}: {why}")));
        }
    }
    Ok(())
}

fn fits(value: &Value, shape: Shape) -> Result<(), String> {
    match shape {
        Shape::Bool => value
            .as_bool()
            .map(drop)
            .ok_or_else(|| "must be true or false".into()),
        Shape::Text => value
            .as_str()
            .map(drop)
            .ok_or_else(|| "must be a string".into()),
        Shape::Unsigned => unsigned(value).map(drop),
        Shape::Mtu => {
            let mtu = unsigned(value)?;
            if (u64::from(MIN_MTU)..=u64::from(MAX_MTU)).contains(&mtu) {
                Ok(())
            } else {
                Err(format!("must be {MIN_MTU} to {MAX_MTU}"))
            }
        }
        Shape::V4Mode => flags(value, &["zt"]),
        Shape::V6Mode => flags(value, &["zt", "rfc4193", "6plane"]),
        Shape::Pools => each(value, pool),
        Shape::Routes => each(value, route),
        Shape::Rules => each(value, |rule| {
            rule.get("type")
                .and_then(Value::as_str)
                .map(drop)
                .ok_or_else(|| "each rule needs a string \"type\"".into())
        }),
        Shape::IdObjects => each(value, |item| {
            item.get("id")
                .ok_or_else(|| "each entry needs an \"id\"".to_string())
                .and_then(id32)
        }),
        Shape::Dns => dns(value),
        Shape::IpList => each(value, |ip| ip_text(ip).map(drop)),
        Shape::TagPairs => each(value, |pair| match pair.as_array().map(Vec::as_slice) {
            Some([id, tag_value]) => id32(id).and_then(|()| id32(tag_value)),
            _ => Err("each tag must be [id, value]".into()),
        }),
        Shape::IdList => each(value, id32),
    }
}

fn unsigned(value: &Value) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| "must be a non-negative integer".into())
}

/// An id or value of a tag or capability: 32 bits on the wire.
fn id32(value: &Value) -> Result<(), String> {
    unsigned(value).and_then(|v| {
        u32::try_from(v)
            .map(drop)
            .map_err(|_| "ids and values must fit in 32 bits".into())
    })
}

fn each(value: &Value, item: impl Fn(&Value) -> Result<(), String>) -> Result<(), String> {
    value
        .as_array()
        .ok_or_else(|| "must be an array".to_string())?
        .iter()
        .try_for_each(item)
}

/// An object whose listed keys, when present, are booleans.
fn flags(value: &Value, keys: &[&str]) -> Result<(), String> {
    let object = value.as_object().ok_or("must be an object")?;
    for key in keys {
        if object.get(*key).is_some_and(|v| !v.is_boolean()) {
            return Err(format!("{key:?} must be true or false"));
        }
    }
    Ok(())
}

fn ip_text(value: &Value) -> Result<IpAddr, String> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("{value} is not an IP address"))
}

fn pool(value: &Value) -> Result<(), String> {
    let start = ip_text(value.get("ipRangeStart").unwrap_or(&Value::Null))?;
    let end = ip_text(value.get("ipRangeEnd").unwrap_or(&Value::Null))?;
    let ordered = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => s <= e,
        (IpAddr::V6(s), IpAddr::V6(e)) => s <= e,
        _ => return Err("a pool's start and end must be of one family".into()),
    };
    if ordered {
        Ok(())
    } else {
        Err("a pool must not end before it starts".into())
    }
}

fn route(value: &Value) -> Result<(), String> {
    let target = value.get("target").and_then(Value::as_str);
    if target.and_then(parse_cidr).is_none() {
        return Err("each route needs a \"target\" like \"10.147.17.0/24\"".into());
    }
    match value.get("via") {
        None | Some(Value::Null) => Ok(()),
        Some(via) => ip_text(via).map(drop),
    }
}

fn dns(value: &Value) -> Result<(), String> {
    match value {
        // The reference writes `[]` for "no DNS".
        Value::Null => Ok(()),
        Value::Array(items) if items.is_empty() => Ok(()),
        Value::Object(object) => {
            if object.get("domain").is_some_and(|d| !d.is_string()) {
                return Err("\"domain\" must be a string".into());
            }
            match object.get("servers") {
                None => Ok(()),
                Some(servers) => each(servers, |ip| ip_text(ip).map(drop)),
            }
        }
        _ => Err("must be {\"domain\": ..., \"servers\": [...]}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse_object(b"").unwrap().is_empty());
        assert_eq!(parse_object(br#"{"a":1}"#).unwrap().len(), 1);
        for bad in [&b"[1]"[..], b"true", b"{", b"nope"] {
            assert_eq!(parse_object(bad).unwrap_err().status, 400);
        }
    }

    #[test]
    fn a_typical_network_passes() {
        let body = object(json!({
            "name": "n", "private": true, "mtu": 2800, "multicastLimit": 32,
            "v4AssignMode": {"zt": true}, "v6AssignMode": {"6plane": false, "zt": false},
            "ipAssignmentPools": [{"ipRangeStart": "10.147.17.1", "ipRangeEnd": "10.147.17.254"}],
            "routes": [{"target": "10.147.17.0/24", "via": null}],
            "rules": [{"type": "ACTION_ACCEPT"}], "tags": [{"id": 1, "default": 2}],
            "capabilities": [], "dns": {"domain": "z.example", "servers": ["10.147.17.1"]},
            "enableBroadcast": true, "unknown": {"kept": true}
        }));
        check_network(&body).unwrap();
        check_network(&object(json!({"dns": []}))).unwrap();
    }

    #[test]
    fn wrong_network_fields_are_named() {
        for (body, field) in [
            (json!({"private": "yes"}), "private"),
            (json!({"mtu": 100}), "mtu"),
            (json!({"mtu": -1}), "mtu"),
            (json!({"v4AssignMode": {"zt": 1}}), "v4AssignMode"),
            (
                json!({"ipAssignmentPools": [{"ipRangeStart": "10.0.0.9", "ipRangeEnd": "10.0.0.1"}]}),
                "ipAssignmentPools",
            ),
            (
                json!({"ipAssignmentPools": [{"ipRangeStart": "10.0.0.1", "ipRangeEnd": "fd00::1"}]}),
                "ipAssignmentPools",
            ),
            (json!({"routes": [{"target": "10.0.0.0/33"}]}), "routes"),
            (
                json!({"routes": [{"target": "10.0.0.0/8", "via": "gateway"}]}),
                "routes",
            ),
            (json!({"rules": [{"not": true}]}), "rules"),
            (json!({"tags": [{"id": 4294967296u64}]}), "tags"),
            (json!({"dns": {"servers": ["x"]}}), "dns"),
            (json!({"name": 5}), "name"),
        ] {
            let err = check_network(&object(body.clone())).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
            assert!(err.message.contains(field), "{body}: {}", err.message);
        }
    }

    #[test]
    fn member_fields_are_checked() {
        let good = object(json!({
            "authorized": true, "activeBridge": false, "noAutoAssignIps": false,
            "ipAssignments": ["10.147.17.5", "fd00::5"], "tags": [[1, 2]],
            "capabilities": [1], "name": "laptop"
        }));
        check_member(&good).unwrap();
        for body in [
            json!({"authorized": "true"}),
            json!({"ipAssignments": ["10.147.17.500"]}),
            json!({"ipAssignments": "10.147.17.5"}),
            json!({"tags": [[1]]}),
            json!({"capabilities": [-1]}),
        ] {
            assert_eq!(
                check_member(&object(body.clone())).unwrap_err().status,
                400,
                "{body}"
            );
        }
    }
}
