//! The routes of the API and what wraps them: the token check (before anything else, the
//! unknown paths included; `/health` needs none and `/metrics` also takes the metrics
//! token, as in the reference), the body limit, and JSON answers for unknown paths and
//! methods.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::Token;
use super::counters::ApiCounters;
use super::error::ApiError;
use super::{controller, controller_members, health, metrics, moons, networks, peers, status};
use crate::service::daemon::Daemon;

/// Largest request body read (the only bodies are small JSON objects).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler reaches.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) daemon: Daemon,
    pub(crate) token: Arc<Token>,
    /// `metricstoken.secret`, if the home has one: accepted for `/metrics` only.
    pub(crate) metrics_token: Option<Arc<Token>>,
    pub(crate) counters: Arc<ApiCounters>,
}

/// The whole API.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/status", get(status::status))
        .route("/ztrs/counters", get(status::counters))
        .route("/network", get(networks::list))
        .route(
            "/network/{nwid}",
            get(networks::show)
                // The reference treats PUT as a synonym for POST.
                .post(networks::join)
                .put(networks::join)
                .delete(networks::leave),
        )
        .route("/peer", get(peers::list))
        .route("/peer/{address}", get(peers::show))
        .route("/moon", get(moons::list))
        .route(
            "/moon/{id}",
            get(moons::show)
                .post(moons::orbit)
                .put(moons::orbit)
                .delete(moons::deorbit),
        )
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .route("/controller", get(controller::describe))
        .route(
            "/controller/network",
            get(controller::list).post(controller::create),
        )
        .route(
            "/controller/network/{nwid}",
            get(controller::show)
                // The reference treats PUT as a synonym for POST here too.
                .post(controller::write)
                .put(controller::write)
                .delete(controller::delete),
        )
        .route(
            "/controller/network/{nwid}/member",
            get(controller_members::list),
        )
        .route(
            "/controller/network/{nwid}/member/{address}",
            get(controller_members::show)
                .post(controller_members::write)
                .put(controller_members::write)
                .delete(controller_members::delete),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

/// Paths served without the token.
const OPEN_PATHS: [&str; 1] = ["/health"];

/// The path that also accepts the metrics token.
const METRICS_PATH: &str = "/metrics";

/// Counts the request and refuses it with 401 unless it carries the token (or needs none).
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    ApiCounters::bump(&app.counters.requests);
    let (headers, uri) = (request.headers(), request.uri());
    let path = uri.path();
    let allowed = OPEN_PATHS.contains(&path)
        || app.token.accepts(headers, uri)
        || (path == METRICS_PATH
            && app
                .metrics_token
                .as_ref()
                .is_some_and(|token| token.accepts(headers, uri)));
    if !allowed {
        ApiCounters::bump(&app.counters.unauthorized);
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not supported here")
}
