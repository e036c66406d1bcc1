//! `/controller` and `/controller/network[/{nwid}]`: the embedded controller's networks, as
//! the reference's controller API serves them (list, create with a random or a chosen id,
//! the legacy `<address>______` create, read, create-or-update, delete).
//!
//! Every call runs on the driver task through [`ServiceHandle::with_node_mut`], so writes
//! are applied one at a time in arrival order (two writers of one object never interleave
//! their read-modify-write), and every write is followed by `Node::controller_changed`, which
//! pushes the new config to the members that asked recently. Only networks whose id starts
//! with our address are served: others are 404 to read and 400 to write.
//!
//! [`ServiceHandle::with_node_mut`]: crate::service::ServiceHandle::with_node_mut

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::info;

use super::controller_input::{check_network, parse_object};
use super::error::ApiError;
use super::routes::App;
use super::status::unix_ms_now;
use crate::controller::{Controller, ControllerError};
use crate::wire::{Address, NetworkId};

/// The controller API version the reference reports.
const API_VERSION: u64 = 4;

/// The part of a network id below the controller's address.
const NETWORK_NUMBER_MASK: u64 = 0xff_ffff;

/// The suffix of the legacy "create a network with a random id" path segment.
const LEGACY_CREATE_SUFFIX: &str = "______";

/// The answer when the node runs no controller.
fn no_controller() -> ApiError {
    ApiError::not_found("this node runs no network controller")
}

/// Runs `work` with the controller on the driver task (with the controller's clock, ms).
/// When `work` reports a changed network, the members of that network get pushes.
pub(crate) async fn with_controller<R, F>(app: &App, work: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(&mut Controller, i64) -> Result<(R, Option<NetworkId>), ApiError> + Send + 'static,
{
    app.daemon
        .handle
        .with_node_mut(move |node, now| {
            let time = i64::try_from(now).unwrap_or(i64::MAX);
            let controller = node.controller_mut().ok_or_else(no_controller)?;
            let (result, changed) = work(controller, time)?;
            if let Some(nwid) = changed {
                node.controller_changed(now, nwid);
            }
            Ok(result)
        })
        .await?
}

/// A controller object as the reference's JSON.
pub(crate) fn object_json(object: &impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(object)
        .map_err(|err| ApiError::internal(format!("object does not serialize: {err}")))
}

/// The `{nwid}` of a path: 16 hex digits.
pub(crate) fn network_id(path: Result<Path<String>, PathRejection>) -> Result<NetworkId, ApiError> {
    let Path(text) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    text.parse()
        .map_err(|_| ApiError::bad_request("network id must be 16 hex digits"))
}

/// 404 unless `nwid` is one of this controller's (its id starts with our address).
pub(crate) fn readable(controller: &Controller, nwid: NetworkId) -> Result<(), ApiError> {
    if nwid.controller() == controller.address() {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "network {nwid} belongs to controller {}, not to this one ({})",
            nwid.controller(),
            controller.address()
        )))
    }
}

/// 400 unless `nwid` is one of this controller's.
pub(crate) fn writable(controller: &Controller, nwid: NetworkId) -> Result<(), ApiError> {
    readable(controller, nwid).map_err(|err| ApiError::bad_request(err.message))
}

/// 400 for an id whose low 24 bits are zero: the reference never issues those.
fn creatable(nwid: NetworkId) -> Result<(), ApiError> {
    if nwid.0 & NETWORK_NUMBER_MASK == 0 {
        return Err(ApiError::bad_request(format!(
            "network {nwid}: ids ending in 000000 are not used"
        )));
    }
    Ok(())
}

/// A 404 that names the network, instead of the controller's bare "not found".
pub(crate) fn network_missing(nwid: NetworkId) -> impl FnOnce(ControllerError) -> ApiError {
    move |err| match err {
        ControllerError::NotFound => ApiError::not_found(format!("network {nwid} does not exist")),
        other => other.into(),
    }
}

/// A body for the controller: an object whose known fields have the right shape.
fn network_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|err| ApiError::new(err.status(), err.body_text()))?;
    let object = parse_object(&body)?;
    check_network(&object)?;
    Ok(Value::Object(object))
}

pub(crate) async fn describe(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let present = app
        .daemon
        .handle
        .inspect(|node| node.controller().is_some())
        .await?;
    if !present {
        return Err(no_controller());
    }
    Ok(Json(json!({
        "controller": true,
        "apiVersion": API_VERSION,
        "clock": unix_ms_now(),
        "databaseReady": true,
    })))
}

pub(crate) async fn list(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let ids = app
        .daemon
        .handle
        .inspect(|node| node.controller().map(Controller::list_networks))
        .await?
        .ok_or_else(no_controller)??;
    Ok(Json(Value::Array(
        ids.iter().map(|id| Value::from(id.to_string())).collect(),
    )))
}

/// `POST /controller/network`: a new network with a random id under our address.
pub(crate) async fn create(
    State(app): State<App>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let fields = network_body(body)?;
    create_random(&app, fields).await
}

async fn create_random(app: &App, fields: Value) -> Result<Json<Value>, ApiError> {
    let network = with_controller(app, move |controller, now| {
        let network = controller.create_network(now, fields)?;
        let nwid = network.network_id();
        Ok((network, nwid))
    })
    .await?;
    info!(network = %network.id, "controller: network created through the API");
    Ok(Json(object_json(&network)?))
}

pub(crate) async fn show(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let nwid = network_id(path)?;
    let network = app
        .daemon
        .handle
        .inspect(move |node| {
            let controller = node.controller().ok_or_else(no_controller)?;
            readable(controller, nwid)?;
            controller.get_network(nwid).map_err(network_missing(nwid))
        })
        .await??;
    Ok(Json(object_json(&network)?))
}

/// What the `{nwid}` segment of a write names.
enum WriteTarget {
    Network(NetworkId),
    /// `<address>______`: a new network with a random id under `address`.
    LegacyCreate(Address),
}

fn write_target(path: Result<Path<String>, PathRejection>) -> Result<WriteTarget, ApiError> {
    let Path(text) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    if let Some(address) = text.strip_suffix(LEGACY_CREATE_SUFFIX) {
        return address
            .parse()
            .map(WriteTarget::LegacyCreate)
            .map_err(|_| ApiError::bad_request("legacy create needs <10 hex digits>______"));
    }
    network_id(Ok(Path(text))).map(WriteTarget::Network)
}

/// `POST`/`PUT /controller/network/{nwid}`: creates the network if missing, else applies
/// the body's fields to it (fields left out keep their value).
pub(crate) async fn write(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let target = write_target(path)?;
    let fields = network_body(body)?;
    let nwid = match target {
        WriteTarget::Network(nwid) => nwid,
        WriteTarget::LegacyCreate(address) => {
            let ours = app.daemon.handle.address();
            if address != ours {
                return Err(ApiError::bad_request(format!(
                    "{address} is not this controller's address ({ours})"
                )));
            }
            return create_random(&app, fields).await;
        }
    };
    let (network, created) = with_controller(&app, move |controller, now| {
        writable(controller, nwid)?;
        let outcome = match controller.get_network(nwid) {
            Ok(_) => (controller.update_network(now, nwid, &fields)?, false),
            Err(ControllerError::NotFound) => {
                creatable(nwid)?;
                (controller.create_network_with_id(now, nwid, fields)?, true)
            }
            Err(err) => return Err(err.into()),
        };
        Ok((outcome, Some(nwid)))
    })
    .await?;
    if created {
        info!(network = %nwid, "controller: network created through the API");
    } else {
        info!(network = %nwid, revision = network.revision, "controller: network updated");
    }
    Ok(Json(object_json(&network)?))
}

pub(crate) async fn delete(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let nwid = network_id(path)?;
    let network = with_controller(&app, move |controller, _now| {
        readable(controller, nwid)?;
        let network = controller
            .delete_network(nwid)
            .map_err(network_missing(nwid))?;
        Ok((network, Some(nwid)))
    })
    .await?;
    info!(network = %nwid, "controller: network deleted through the API");
    Ok(Json(object_json(&network)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_create_segments_are_recognised() {
        let target = write_target(Ok(Path("8056c2e21c______".into()))).unwrap();
        assert!(
            matches!(target, WriteTarget::LegacyCreate(a) if a == Address::from_u64(0x80_56c2_e21c))
        );
        let target = write_target(Ok(Path("8056c2e21c000001".into()))).unwrap();
        assert!(matches!(
            target,
            WriteTarget::Network(NetworkId(0x8056_c2e2_1c00_0001))
        ));
        for bad in ["8056c2e2______", "zz56c2e21c______", "8056c2e21c00001", "x"] {
            assert!(write_target(Ok(Path(bad.into()))).is_err(), "{bad}");
        }
    }
}
