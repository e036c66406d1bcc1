//! `/moon` and `/moon/{id}`: the moons the node holds, in the reference's moon object shape;
//! `POST {"seed": "<address>"}` orbits a moon through a seed root and `DELETE` deorbits it.
//!
//! Persistence follows the reference: an orbit writes nothing until the moon arrives (the
//! daemon then saves it in `moons.d/<id>.moon` on `Event::WorldUpdated`); a deorbit removes
//! that file at once, so a restart does not orbit the moon again.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use serde_json::{Value, json};
use tracing::info;

use super::error::{ApiError, blocking};
use super::routes::App;
use crate::hex;
use crate::wire::Address;
use crate::wire::inet_address::InetAddress;
use crate::wire::world::World;

/// `ip/port`, as the reference writes stable endpoints.
fn endpoint_text(endpoint: &InetAddress) -> Option<String> {
    match endpoint {
        InetAddress::Ip(ip, port) => Some(format!("{ip}/{port}")),
        InetAddress::Nil | InetAddress::Other(_) => None,
    }
}

/// The reference's moon object of a moon we hold.
pub(crate) fn moon_json(world: &World) -> Value {
    let roots: Vec<Value> = world
        .roots
        .iter()
        .map(|root| {
            json!({
                "identity": root.identity.to_public_string(),
                "stableEndpoints": root
                    .stable_endpoints
                    .iter()
                    .filter_map(endpoint_text)
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": format!("{:016x}", world.id),
        "timestamp": world.timestamp,
        "signature": hex::encode(&world.signature),
        "updatesMustBeSignedBy": hex::encode(&world.updates_must_be_signed_by),
        "roots": roots,
        "waiting": false,
    })
}

/// The object of a moon asked for but not received yet.
fn waiting_json(id: u64) -> Value {
    json!({
        "id": format!("{id:016x}"),
        "timestamp": 0,
        "signature": null,
        "updatesMustBeSignedBy": null,
        "roots": [],
        "waiting": true,
    })
}

/// The `{id}` of a moon path: 1 to 16 hex digits (tools pass the id as the user typed it,
/// often without leading zeros), not zero.
fn moon_id(path: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let Path(text) = path.map_err(|err| ApiError::bad_request(err.body_text()))?;
    let valid = (1..=16).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit());
    match u64::from_str_radix(&text, 16) {
        Ok(id) if valid && id != 0 => Ok(id),
        _ => Err(ApiError::bad_request(
            "moon id must be 1 to 16 hex digits, not zero",
        )),
    }
}

/// The `seed` of an orbit body, if there is one.
#[derive(serde::Deserialize)]
struct OrbitBody {
    seed: Option<String>,
}

fn seed_of(body: &[u8]) -> Result<Option<Address>, ApiError> {
    if body.trim_ascii().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("body is not JSON: {err}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("body must be a JSON object"));
    }
    let OrbitBody { seed } = serde_json::from_value(value)
        .map_err(|err| ApiError::bad_request(format!("\"seed\" must be a string: {err}")))?;
    let Some(seed) = seed else {
        return Ok(None);
    };
    let seed: Address = seed
        .parse()
        .map_err(|_| ApiError::bad_request("\"seed\" must be a 10 hex digit address"))?;
    if seed.is_reserved() {
        return Err(ApiError::bad_request(format!(
            "{seed} is a reserved address"
        )));
    }
    Ok(Some(seed))
}

/// The moon `id` if the node holds it.
async fn held(app: &App, id: u64) -> Result<Option<World>, ApiError> {
    Ok(app
        .daemon
        .handle
        .inspect(move |node| node.moons().iter().find(|m| m.id == id).cloned())
        .await?)
}

/// The moons held, then those awaited (`"waiting": true`), as the reference lists them.
pub(crate) async fn list(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let (moons, awaited) = app
        .daemon
        .handle
        .inspect(|node| (node.moons().to_vec(), node.awaited_moons()))
        .await?;
    let held = moons.iter().map(moon_json);
    let waiting = awaited.into_iter().map(waiting_json);
    Ok(Json(Value::Array(held.chain(waiting).collect())))
}

pub(crate) async fn show(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = moon_id(path)?;
    let moon = held(&app, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("moon {id:016x} is not held")))?;
    Ok(Json(moon_json(&moon)))
}

/// Orbits: a moon already held is answered as it is; otherwise the seed is contacted and
/// the answer says the moon is awaited.
pub(crate) async fn orbit(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = moon_id(path)?;
    let body = body.map_err(|err| ApiError::new(err.status(), err.body_text()))?;
    let seed = seed_of(&body)?;
    if let Some(moon) = held(&app, id).await? {
        return Ok(Json(moon_json(&moon)));
    }
    let Some(seed) = seed else {
        return Err(ApiError::not_found(format!(
            "moon {id:016x} is not held; orbit it with {{\"seed\": \"<root address>\"}}"
        )));
    };
    if seed == app.daemon.handle.address() {
        return Err(ApiError::bad_request("the seed cannot be this node"));
    }
    app.daemon.handle.orbit(id, seed).await?;
    info!(moon = format!("{id:016x}"), %seed, "orbiting through the control API");
    Ok(Json(waiting_json(id)))
}

/// Deorbits: the node forgets the moon (held or awaited) and `moons.d/<id>.moon` goes. 404
/// when the moon was neither held nor stored (an awaited orbit is cancelled all the same).
pub(crate) async fn deorbit(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = moon_id(path)?;
    let was_held = held(&app, id).await?.is_some();
    app.daemon.handle.deorbit(id).await?;
    let home = app.daemon.home.clone();
    let was_stored = blocking(move || {
        let stored = home.path(&format!("moons.d/{id:016x}.moon")).exists();
        home.remove_moon(id)?;
        Ok(stored)
    })
    .await?;
    if !was_held && !was_stored {
        return Err(ApiError::not_found(format!(
            "moon {id:016x} was not held (an orbit still awaited, if any, is cancelled)"
        )));
    }
    info!(
        moon = format!("{id:016x}"),
        "deorbited through the control API"
    );
    Ok(Json(json!({ "result": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moon_ids_are_short_or_long_hex() {
        assert_eq!(
            moon_id(Ok(Path("deadbeef00".into()))).unwrap(),
            0x00de_adbe_ef00
        );
        assert_eq!(
            moon_id(Ok(Path("000000deadbeef00".into()))).unwrap(),
            0x00de_adbe_ef00
        );
        for bad in ["", "0", "xyz", "00000000000000001", "+1"] {
            assert!(moon_id(Ok(Path(bad.into()))).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seeds_are_checked() {
        assert_eq!(seed_of(b"").unwrap(), None);
        assert_eq!(seed_of(b"{}").unwrap(), None);
        assert_eq!(
            seed_of(br#"{"seed": "deadbeef00"}"#).unwrap(),
            Some(Address::from_u64(0x00de_adbe_ef00))
        );
        for bad in [
            &br#"{"seed": 5}"#[..],
            br#"{"seed": "nope"}"#,
            br#"{"seed": "0000000000"}"#,
            b"[1]",
            b"{",
        ] {
            assert_eq!(seed_of(bad).unwrap_err().status, 400);
        }
    }

    #[test]
    fn waiting_moons_have_the_reference_shape() {
        let json = waiting_json(0x00de_adbe_ef00);
        assert_eq!(json["id"], "000000deadbeef00");
        assert_eq!(json["waiting"], true);
        assert_eq!(json["roots"], json!([]));
        assert!(json["signature"].is_null());
    }
}
