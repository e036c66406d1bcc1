//! `/controller/network/{nwid}/member[/{address}]`: the members of a controller network, as
//! the reference serves them: the list as `{"<address>": revision}`, one member's object,
//! create-or-update (POST and PUT alike; `authorized`, `ipAssignments`, tags ...) and delete.
//! Writes run one at a time on the driver task and push configs afterwards (see
//! [`super::controller`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use serde_json::{Map, Value};
use tracing::info;

use super::controller::{
    network_id, network_missing, object_json, readable, with_controller, writable,
};
use super::controller_input::{check_member, parse_object};
use super::error::ApiError;
use super::routes::App;
use crate::controller::{Controller, ControllerError};
use crate::wire::{Address, NetworkId};

/// The `{nwid}` and `{address}` of a member path.
fn member_path(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(NetworkId, Address), ApiError> {
    let Path((nwid, address)) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    let nwid = network_id(Ok(Path(nwid)))?;
    let address = address
        .parse()
        .map_err(|_| ApiError::bad_request("member address must be 10 hex digits"))?;
    Ok((nwid, address))
}

/// A 404 that names the member (the network exists: it was checked first).
fn member_missing(nwid: NetworkId, address: Address) -> impl FnOnce(ControllerError) -> ApiError {
    move |err| match err {
        ControllerError::NotFound => {
            ApiError::not_found(format!("{address} is not a member of {nwid}"))
        }
        other => other.into(),
    }
}

/// 404 unless `nwid` is ours and exists.
fn existing_network(controller: &Controller, nwid: NetworkId) -> Result<(), ApiError> {
    readable(controller, nwid)?;
    controller
        .get_network(nwid)
        .map(drop)
        .map_err(network_missing(nwid))
}

pub(crate) async fn list(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let nwid = network_id(path)?;
    let revisions = app
        .daemon
        .handle
        .inspect(move |node| {
            let controller = node
                .controller()
                .ok_or_else(|| ApiError::not_found("this node runs no network controller"))?;
            existing_network(controller, nwid)?;
            let mut revisions = Map::new();
            for address in controller.list_members(nwid)? {
                // A member deleted between the listing and the read is simply left out.
                if let Ok(member) = controller.get_member(nwid, address) {
                    revisions.insert(address.to_string(), Value::from(member.revision));
                }
            }
            Ok::<_, ApiError>(revisions)
        })
        .await??;
    Ok(Json(Value::Object(revisions)))
}

pub(crate) async fn show(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (nwid, address) = member_path(path)?;
    let member = app
        .daemon
        .handle
        .inspect(move |node| {
            let controller = node
                .controller()
                .ok_or_else(|| ApiError::not_found("this node runs no network controller"))?;
            existing_network(controller, nwid)?;
            controller
                .get_member(nwid, address)
                .map_err(member_missing(nwid, address))
        })
        .await??;
    Ok(Json(object_json(&member)?))
}

/// Creates the member if missing, then applies the body's fields (left-out fields keep
/// their value); `authorized` changes are recorded with their time, as the reference does.
pub(crate) async fn write(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (nwid, address) = member_path(path)?;
    let body = body.map_err(|err| ApiError::new(err.status(), err.body_text()))?;
    let fields = parse_object(&body)?;
    check_member(&fields)?;
    if address.is_reserved() {
        return Err(ApiError::bad_request(format!(
            "{address} is a reserved address and cannot be a member"
        )));
    }
    let patch = Value::Object(fields);
    let member = with_controller(&app, move |controller, now| {
        writable(controller, nwid)?;
        controller
            .get_network(nwid)
            .map_err(network_missing(nwid))?;
        let member = controller.update_member(now, nwid, address, &patch)?;
        Ok((member, Some(nwid)))
    })
    .await?;
    info!(
        network = %nwid,
        member = %address,
        authorized = member.authorized,
        revision = member.revision,
        "controller: member updated through the API"
    );
    Ok(Json(object_json(&member)?))
}

pub(crate) async fn delete(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (nwid, address) = member_path(path)?;
    let member = with_controller(&app, move |controller, _now| {
        existing_network(controller, nwid)?;
        let member = controller
            .delete_member(nwid, address)
            .map_err(member_missing(nwid, address))?;
        Ok((member, Some(nwid)))
    })
    .await?;
    info!(network = %nwid, member = %address, "controller: member deleted through the API");
    Ok(Json(object_json(&member)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_need_both_ids() {
        let ok = member_path(Ok(Path(("8056c2e21c000001".into(), "0102030405".into())))).unwrap();
        assert_eq!(
            ok,
            (
                NetworkId(0x8056_c2e2_1c00_0001),
                Address::from_u64(0x01_0203_0405)
            )
        );
        for (nwid, address) in [
            ("8056c2e21c000001", "01020304"),
            ("8056c2e21c00001", "0102030405"),
            ("8056c2e21c000001", "010203040g"),
        ] {
            assert!(member_path(Ok(Path((nwid.into(), address.into())))).is_err());
        }
    }
}
