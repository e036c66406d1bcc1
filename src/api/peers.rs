//! `/peer` and `/peer/{address}`: the peers the node knows, in the reference's peer object
//! shape, as far as the node reports them (no send times, no bonding).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::error::ApiError;
use super::routes::App;
use crate::node::{PathInfo, PeerInfo, PeerRole};
use crate::wire::Address;

/// The reference's name for a role.
fn role_name(role: PeerRole) -> &'static str {
    match role {
        PeerRole::Leaf => "LEAF",
        PeerRole::Moon => "MOON",
        PeerRole::Planet => "PLANET",
    }
}

fn path_json(path: &PathInfo) -> Value {
    json!({
        "address": format!("{}/{}", path.remote.ip(), path.remote.port()),
        "lastReceive": path.last_receive,
        "active": path.alive,
        "expired": !path.alive,
        "preferred": path.preferred,
        "trustedPathId": 0,
        "ztrs": {
            "localAddress": format!("{}/{}", path.local.ip(), path.local.port()),
            "latency": path.latency_ms.map_or(-1, i64::from),
        },
    })
}

/// The peer object; versions and latency are -1 when unknown, as in the reference.
pub(crate) fn peer_json(peer: &PeerInfo) -> Value {
    let (major, minor, revision) = peer.software_version.map_or((-1, -1, -1), |v| {
        (
            i64::from(v.major),
            i64::from(v.minor),
            i64::from(v.revision),
        )
    });
    json!({
        "address": peer.address.to_string(),
        "versionMajor": major,
        "versionMinor": minor,
        "versionRev": revision,
        "version": format!("{major}.{minor}.{revision}"),
        "latency": peer.latency_ms.map_or(-1, i64::from),
        "role": role_name(peer.role),
        "isBonded": false,
        "tunneled": false,
        "paths": peer.paths.iter().map(path_json).collect::<Vec<_>>(),
        "ztrs": { "protocolVersion": peer.protocol_version },
    })
}

pub(crate) async fn list(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let peers = app
        .daemon
        .handle
        .inspect(|node| node.peers().collect::<Vec<_>>())
        .await?;
    Ok(Json(Value::Array(peers.iter().map(peer_json).collect())))
}

pub(crate) async fn show(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(text) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    let address: Address = text
        .parse()
        .map_err(|_| ApiError::bad_request("address must be 10 hex digits"))?;
    let peer = app
        .daemon
        .handle
        .inspect(move |node| node.peer(address))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("peer {address} is not known")))?;
    Ok(Json(peer_json(&peer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::verbs::SoftwareVersion;

    fn peer() -> PeerInfo {
        PeerInfo {
            address: Address::from_u64(0x01_0203_0405),
            protocol_version: 0,
            software_version: None,
            latency_ms: None,
            role: PeerRole::Leaf,
            paths: Vec::new(),
        }
    }

    #[test]
    fn unknown_versions_and_latency_are_minus_one() {
        let json = peer_json(&peer());
        assert_eq!(json["address"], "0102030405");
        assert_eq!(json["versionMajor"], -1);
        assert_eq!(json["versionRev"], -1);
        assert_eq!(json["version"], "-1.-1.-1");
        assert_eq!(json["latency"], -1);
        assert_eq!(json["role"], "LEAF");
        assert_eq!(json["paths"], json!([]));
    }

    #[test]
    fn known_peer_with_paths() {
        let mut info = peer();
        info.software_version = Some(SoftwareVersion {
            major: 1,
            minor: 14,
            revision: 2,
        });
        info.latency_ms = Some(12);
        info.role = PeerRole::Planet;
        info.paths.push(PathInfo {
            local: "0.0.0.0:9993".parse().unwrap(),
            remote: "[2001:db8::1]:9993".parse().unwrap(),
            last_receive: 1_700_000_000_000,
            latency_ms: Some(12),
            alive: true,
            preferred: true,
        });
        let json = peer_json(&info);
        assert_eq!(json["version"], "1.14.2");
        assert_eq!(json["latency"], 12);
        assert_eq!(json["role"], "PLANET");
        let path = &json["paths"][0];
        assert_eq!(path["address"], "2001:db8::1/9993");
        assert_eq!(path["active"], true);
        assert_eq!(path["expired"], false);
        assert_eq!(path["preferred"], true);
        assert_eq!(path["lastReceive"], 1_700_000_000_000u64);
    }

    #[test]
    fn roles_have_the_reference_names() {
        assert_eq!(role_name(PeerRole::Moon), "MOON");
    }
}
