//! `/network` and `/network/{nwid}`: list, show, join (POST/PUT, with optional local
//! settings) and leave (DELETE). A join or leave changes the node and the home together:
//! `networks.d/<nwid>.conf` exists exactly for the networks joined, so a restart rejoins them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::error::{ApiError, blocking};
use super::network_json::{NetworkSnapshot, network_json};
use super::routes::App;
use crate::node::JoinError;
use crate::store::{Home, NetworkSettings};
use crate::wire::NetworkId;

/// The local settings a join may carry; fields left out keep their current value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SettingsChange {
    allow_managed: Option<bool>,
    allow_global: Option<bool>,
    allow_default: Option<bool>,
    #[serde(rename = "allowDNS")]
    allow_dns: Option<bool>,
}

impl SettingsChange {
    /// Parses a join body: empty (no change) or a JSON object; other fields are ignored, a
    /// field of the wrong type is an error (the reference is strict about types too).
    pub(crate) fn parse(body: &[u8]) -> Result<SettingsChange, ApiError> {
        if body.trim_ascii().is_empty() {
            return Ok(SettingsChange::default());
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|err| ApiError::bad_request(format!("body is not JSON: {err}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request("body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map_err(|err| ApiError::bad_request(format!("bad setting: {err}")))
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == SettingsChange::default()
    }

    pub(crate) fn apply(&self, settings: &mut NetworkSettings) {
        let fields = [
            (self.allow_managed, &mut settings.allow_managed),
            (self.allow_global, &mut settings.allow_global),
            (self.allow_default, &mut settings.allow_default),
            (self.allow_dns, &mut settings.allow_dns),
        ];
        for (wanted, field) in fields {
            if let Some(value) = wanted {
                *field = value;
            }
        }
    }
}

/// The `{nwid}` of the path: exactly 16 hex digits.
fn network_id(path: Result<Path<String>, PathRejection>) -> Result<NetworkId, ApiError> {
    let Path(text) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    text.parse()
        .map_err(|_| ApiError::bad_request("network id must be 16 hex digits"))
}

/// The local settings of `nwid`; the defaults (with a warning) if the file is unreadable,
/// as the daemon does when it applies them.
fn settings_or_default(home: &Home, nwid: NetworkId) -> NetworkSettings {
    home.network_settings(nwid).unwrap_or_else(|err| {
        warn!(%err, network = %nwid, "unreadable network settings; reporting the defaults");
        NetworkSettings::default()
    })
}

/// The network objects of `snapshots`, with their settings read from the home.
async fn objects(app: &App, snapshots: Vec<NetworkSnapshot>) -> Result<Vec<Value>, ApiError> {
    let home = app.daemon.home.clone();
    blocking(move || {
        Ok(snapshots
            .iter()
            .map(|s| network_json(s, &settings_or_default(&home, s.info.nwid)))
            .collect())
    })
    .await
}

/// The network object of `nwid`, or 404 if it is not joined.
async fn object(app: &App, nwid: NetworkId) -> Result<Value, ApiError> {
    let snapshot = app
        .daemon
        .handle
        .inspect_attached(move |node, attachment| {
            node.network(nwid)
                .map(|info| NetworkSnapshot::collect(node, attachment, info))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("network {nwid} is not joined")))?;
    objects(app, vec![snapshot])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("network object missing"))
}

pub(crate) async fn list(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let snapshots = app
        .daemon
        .handle
        .inspect_attached(|node, attachment| {
            node.networks()
                .map(|info| NetworkSnapshot::collect(node, attachment, info))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(Value::Array(objects(&app, snapshots).await?)))
}

pub(crate) async fn show(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let nwid = network_id(path)?;
    Ok(Json(object(&app, nwid).await?))
}

/// Joins (or updates the settings of) a network. Settings are saved before the node joins,
/// so the attachment finds them when it sets up the network's port; a join the node refuses
/// leaves no `networks.d` entry behind.
pub(crate) async fn join(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let nwid = network_id(path)?;
    let body = body.map_err(|err| ApiError::new(err.status(), err.body_text()))?;
    let change = SettingsChange::parse(&body)?;
    if nwid.controller().is_reserved() {
        return Err(ApiError::bad_request(JoinError::InvalidNetwork.to_string()));
    }
    if !change.is_empty() {
        let home = app.daemon.home.clone();
        blocking(move || {
            let mut settings = home.network_settings(nwid)?;
            change.apply(&mut settings);
            Ok(home.save_network_settings(nwid, &settings)?)
        })
        .await?;
    }
    let fresh = app
        .daemon
        .handle
        .with_node_mut(move |node, now| {
            let fresh = node.network(nwid).is_none();
            node.join(now, nwid).map(|()| fresh)
        })
        .await?
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    let home = app.daemon.home.clone();
    if let Err(err) = blocking(move || Ok(home.mark_joined(nwid)?)).await {
        if fresh {
            // Keep node and home in step: a network the home does not list is not kept.
            let _ = app
                .daemon
                .handle
                .with_node_mut(move |node, _| node.leave(nwid))
                .await;
        }
        return Err(err);
    }
    if fresh {
        info!(network = %nwid, "joined through the control API");
    }
    Ok(Json(object(&app, nwid).await?))
}

/// Leaves a network and forgets its stored config and local settings, as the reference
/// does. 404 when neither the node nor the home had it.
pub(crate) async fn leave(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let nwid = network_id(path)?;
    let left = app
        .daemon
        .handle
        .with_node_mut(move |node, _| node.leave(nwid))
        .await?;
    let home = app.daemon.home.clone();
    let stored = blocking(move || {
        let stored = home.joined_networks()?.contains(&nwid);
        home.forget_network(nwid)?;
        Ok(stored)
    })
    .await?;
    if !left && !stored {
        return Err(ApiError::not_found(format!("network {nwid} is not joined")));
    }
    info!(network = %nwid, "left through the control API");
    Ok(Json(json!({ "result": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bodies_change_nothing() {
        assert!(SettingsChange::parse(b"").unwrap().is_empty());
        assert!(SettingsChange::parse(b"  \r\n").unwrap().is_empty());
        assert!(SettingsChange::parse(b"{}").unwrap().is_empty());
        assert!(SettingsChange::parse(b"{\"other\": 1}").unwrap().is_empty());
        assert!(
            SettingsChange::parse(b"{\"allowManaged\": null}")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn given_fields_are_applied_and_others_kept() {
        let change = SettingsChange::parse(br#"{"allowGlobal": true, "allowDNS": true}"#).unwrap();
        let mut settings = NetworkSettings::default();
        change.apply(&mut settings);
        assert_eq!(
            settings,
            NetworkSettings {
                allow_global: true,
                allow_dns: true,
                ..NetworkSettings::default()
            }
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            &b"nope"[..],
            b"[true]",
            b"true",
            br#"{"allowManaged": "yes"}"#,
            br#"{"allowManaged": 1}"#,
            b"{",
        ] {
            let err = SettingsChange::parse(body).unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST, "{body:?}");
        }
    }

    #[test]
    fn deeply_nested_bodies_are_refused_without_overflow() {
        let mut body = "[".repeat(100_000);
        body.push_str(&"]".repeat(100_000));
        assert!(SettingsChange::parse(body.as_bytes()).is_err());
    }

    #[test]
    fn network_ids_must_be_16_hex_digits() {
        let ok = network_id(Ok(Path("8056c2e21c000001".into()))).unwrap();
        assert_eq!(ok, NetworkId(0x8056_c2e2_1c00_0001));
        for bad in [
            "8056c2e21c00001",
            "8056c2e21c0000011",
            "+056c2e21c000001",
            "zz",
        ] {
            assert!(network_id(Ok(Path(bad.into()))).is_err(), "{bad}");
        }
    }
}
