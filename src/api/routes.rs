//! The routes of the API and what wraps them: the token check (before anything else, the
//! unknown paths included), the body limit, and JSON answers for unknown paths and methods.

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
use super::{networks, peers, status};
use crate::service::daemon::Daemon;

/// Largest request body read (the only bodies are small JSON objects).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler reaches.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) daemon: Daemon,
    pub(crate) token: Arc<Token>,
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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

/// Counts the request and refuses it with 401 unless it carries the token.
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    ApiCounters::bump(&app.counters.requests);
    if !app.token.accepts(request.headers(), request.uri()) {
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
