//! What the API's handlers share: the server state ([`App`]) and the error answer ([`ApiError`]).
//! `api` (routes) and `upload` (`POST /api/jobs`) both use it; neither imports the other's
//! types the other way (`api` calls into `upload`).

use super::params::Limits;
use super::store::Store;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// What the handlers share.
pub struct App {
    pub store: Arc<Store>,
    pub limits: Limits,
    /// `Host` header values accepted (None: any). Set when listening on loopback, so that a web
    /// page elsewhere cannot reach the API through DNS rebinding.
    pub allowed_hosts: Option<Vec<String>>,
    /// The feed-forward networks for `POST /api/instant` and jobs with `init=fast` (None when
    /// their weights are not installed).
    pub fast: Option<Arc<nst::fast::ArbitraryStyle>>,
}

/// An error answered as `{"error": "..."}` with its status code.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}
