//! `GET /health`, served without the token (as the reference's): whether the service runs,
//! with the version and the clock. It must answer even when the node is busy, so it asks
//! the node whether it is online with a short time limit and says `"online": null` when the
//! node did not answer in time, instead of waiting behind the node's queue.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::timeout;

use super::routes::App;
use super::status::{unix_ms_now, version_string};
use crate::node::SOFTWARE_VERSION;
use crate::service::ServiceError;

/// How long `/health` waits for the node's online flag.
const ONLINE_LOOK_LIMIT: Duration = Duration::from_millis(250);

pub(crate) async fn health(State(app): State<App>) -> (StatusCode, Json<Value>) {
    let look = app.daemon.handle.inspect(|node| node.online());
    let (running, online) = match timeout(ONLINE_LOOK_LIMIT, look).await {
        Ok(Ok(online)) => (true, Value::Bool(online)),
        Ok(Err(ServiceError::Stopped)) => (false, Value::Bool(false)),
        // A panicking look or a node too busy to answer: the service still runs.
        Ok(Err(_)) | Err(_) => (!app.daemon.handle.is_stopped(), Value::Null),
    };
    let status = if running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ok": running,
        "online": online,
        "version": version_string(),
        "versionMajor": SOFTWARE_VERSION.major,
        "versionMinor": SOFTWARE_VERSION.minor,
        "versionRev": SOFTWARE_VERSION.revision,
        "versionBuild": 0,
        "clock": unix_ms_now(),
    });
    (status, Json(body))
}
