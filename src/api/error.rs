//! How the API says no: every failure is an HTTP status with a JSON body
//! `{"error": "<text>"}`, built from the service's, the home's, the controller's and axum's
//! own errors, so no handler needs `unwrap` or a panic to bail out.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::controller::ControllerError;
use crate::service::ServiceError;
use crate::store::HomeError;

/// A failed request: the status and what to tell the caller.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication required: X-ZT1-Auth header, Authorization: Bearer, or ?auth=",
        )
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        match err {
            ServiceError::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<HomeError> for ApiError {
    fn from(err: HomeError) -> ApiError {
        ApiError::internal(err.to_string())
    }
}

impl From<ControllerError> for ApiError {
    fn from(err: ControllerError) -> ApiError {
        match err {
            ControllerError::NotFound => ApiError::not_found("no such controller object"),
            ControllerError::Invalid(message) => ApiError::bad_request(message),
            ControllerError::Store(err) => ApiError::internal(format!("controller store: {err}")),
        }
    }
}

/// Runs file work (the home's atomic, fsynced writes) off the async threads.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal(format!("file task failed: {err}")))?
}
