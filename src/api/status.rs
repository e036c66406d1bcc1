//! `GET /status` (the node's identity, version, upstream reachability and planet, in the
//! reference's shape) and `GET /ztrs/counters` (every counter of the node, the driver and
//! the API, our extension).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::counter_maps::{counter_object, frame_counters, network_counters};
use super::error::ApiError;
use super::routes::App;
use crate::node::SOFTWARE_VERSION;

/// The wall clock in ms since the Unix epoch (the reference's `clock`); 0 before 1970.
pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `major.minor.revision` of the software we implement.
pub(crate) fn version_string() -> String {
    let v = SOFTWARE_VERSION;
    format!("{}.{}.{}", v.major, v.minor, v.revision)
}

pub(crate) async fn status(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let primary_port = app.daemon.handle.local_addr().port();
    let node = app
        .daemon
        .handle
        .inspect(|node| {
            json!({
                "address": node.address().to_string(),
                "publicIdentity": node.identity().to_public_string(),
                "online": node.online(),
                "planetWorldId": node.planet().id,
                "planetWorldTimestamp": node.planet().timestamp,
                "ztrs": {
                    "root": node.is_root(),
                    "peers": node.peer_count(),
                    "networks": node.networks().count(),
                },
            })
        })
        .await?;
    let mut status = json!({
        "version": version_string(),
        "versionMajor": SOFTWARE_VERSION.major,
        "versionMinor": SOFTWARE_VERSION.minor,
        "versionRev": SOFTWARE_VERSION.revision,
        "versionBuild": 0,
        "tcpFallbackActive": false,
        "clock": unix_ms_now(),
        "config": {
            "settings": {
                "primaryPort": primary_port,
                "allowTcpFallbackRelay": false,
                "portMappingEnabled": false,
            },
        },
    });
    merge(&mut status, node);
    Ok(Json(status))
}

pub(crate) async fn counters(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    Ok(Json(counters_json(&app).await?))
}

/// Every counter of the node, the driver and the API, by section (also read by `/metrics`).
pub(crate) async fn counters_json(app: &App) -> Result<Value, ApiError> {
    let (node, frames, networks, attachment) = app
        .daemon
        .handle
        .inspect_attached(|node, attachment| {
            (
                counter_object(node.counters().iter()),
                frame_counters(node.frame_counters()),
                network_counters(node.network_counters()),
                attachment.map_or(Value::Null, |a| a.report()),
            )
        })
        .await?;
    Ok(json!({
        "node": node,
        "frames": frames,
        "networks": networks,
        "attachment": attachment,
        "service": counter_object(app.daemon.handle.stats().iter()),
        "api": counter_object(app.counters.snapshot().iter()),
    }))
}

/// Adds the keys of object `extra` to object `into` (nothing if either is not an object).
fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_advertised_one() {
        let v = SOFTWARE_VERSION;
        assert_eq!(
            version_string(),
            format!("{}.{}.{}", v.major, v.minor, v.revision)
        );
        assert!(version_string().starts_with("1."));
    }

    #[test]
    fn merge_adds_keys() {
        let mut a = json!({"x": 1});
        merge(&mut a, json!({"y": 2}));
        assert_eq!(a, json!({"x": 1, "y": 2}));
        merge(&mut a, json!([3]));
        assert_eq!(a, json!({"x": 1, "y": 2}));
    }

    #[test]
    fn clock_is_after_2020() {
        assert!(unix_ms_now() > 1_577_836_800_000);
    }
}
