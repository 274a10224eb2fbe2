//! The operator HTTP API (contract §6), served on the HTTP listener next to `/metrics`.
//!
//! ```text
//! GET    /healthz, /readyz, /metrics                         open
//! GET    /api/v1/openapi.json                                token (read)
//! GET    /api/v1/vehicles[?online=&protocol=&prefix=&limit=&cursor=]
//! GET    /api/v1/vehicles/{vid}
//! GET    /api/v1/vehicles/{vid}/recent                        (not in the contract: the page's)
//! DELETE /api/v1/vehicles/{vid}/connection[?ban_s=N]          token (write)
//! POST   /api/v1/vehicles/{vid}/commands                      token (write)
//! GET    /api/v1/vehicles/{vid}/commands
//! DELETE /api/v1/vehicles/{vid}/commands/{id}                 token (write)
//! POST   /api/v1/packages                                     token (write)
//! GET    /api/v1/packages
//! GET    /api/v1/stats
//! POST   /api/v1/traces                                       token (write)
//! GET    /api/v1/traces                                       (not in the contract)
//! GET    /api/v1/traces/{trace_id}
//! POST   /api/v1/reload                                       token (write)
//! ```
//!
//! Every answer is JSON; every error is `{"error": "..."}`. The handlers hold no state of
//! their own: vehicles come from the [`Registry`] (online) and the command queue's known
//! vehicles (seen before), commands go through the MQTT path's
//! [`Dispatcher`](crate::commands::Dispatcher), a kick through the session's control channel.
//!
//! # Layout
//!
//! - `auth`: bearer tokens (read-write and read-only) and the middleware checking them.
//! - `vehicles`: the vehicle list, one vehicle, the kick.
//! - `recent`: one vehicle's recent events and track, while it is watched ([`crate::watch`]).
//! - `commands`: submit, list and cancel a vehicle's commands.
//! - `packages`: upload and list upgrade packages ([`crate::packages`]).
//! - `stats`: readiness, counters, reload.
//! - `traces`: start a vehicle's trace, list the traces, read one ([`crate::traces`]).
//! - `openapi`: the OpenAPI 3 document generated from the handlers.

pub mod auth;
pub mod commands;
pub mod openapi;
pub mod packages;
pub mod recent;
pub mod stats;
pub mod traces;
pub mod vehicles;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::commands::{Commands, Dispatcher};
use crate::config::Config;
use crate::registry::Registry;

/// What the API's handlers share.
pub struct Api {
    pub node: Arc<str>,
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    pub registry: Arc<dyn Registry>,
    pub commands: Arc<Commands>,
    pub dispatcher: Dispatcher,
    /// The MQTT bridge's connection and spool.
    pub broker: mqtt_bridge::Health,
    /// Redis, in cluster mode (`/readyz` and `/api/v1/stats` report whether it answers).
    pub redis: Option<crate::cluster::redis::Redis>,
    /// The vehicle listeners, name and address.
    pub listeners: Vec<(String, SocketAddr)>,
    pub shutdown: CancellationToken,
    pub tokens: RwLock<Arc<auth::Tokens>>,
    /// The configuration file (reload reads it again) and the configuration running now.
    pub config_file: Option<PathBuf>,
    pub config: Mutex<Config>,
    pub started: std::time::Instant,
    /// Event counters sampled every few seconds, for the rates of `/api/v1/stats`.
    pub rates: stats::Rates,
    /// Each vehicle listener's frame rate limit, by listener name (`POST /api/v1/reload`).
    pub frame_limits: Vec<(String, Arc<crate::session::LiveRate>)>,
    /// The data directory (traces are kept in its `traces/`).
    pub data_dir: PathBuf,
    /// What else `POST /api/v1/reload` re-reads (TLS files, where a listener has them).
    pub reloaders: Vec<Reloader>,
}

/// Something a reload re-reads besides the configuration: returns, per thing it holds (a
/// listener), its name and `None` when re-read, or the error for which it kept the old state.
pub type Reloader = Arc<dyn Fn() -> Vec<(String, Option<String>)> + Send + Sync>;

/// The shared state of the handlers.
pub type State = Arc<Api>;

impl Api {
    /// The tokens in force now.
    pub fn tokens(&self) -> Arc<auth::Tokens> {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The `/api/v1` routes, behind the token check.
pub fn router(state: State) -> Router {
    let api = Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/vehicles", get(vehicles::list))
        .route("/api/v1/vehicles/{vid}", get(vehicles::one))
        .route("/api/v1/vehicles/{vid}/recent", get(recent::recent))
        .route("/api/v1/vehicles/{vid}/connection", delete(vehicles::kick))
        .route(
            "/api/v1/vehicles/{vid}/commands",
            post(commands::submit).get(commands::waiting),
        )
        .route(
            "/api/v1/vehicles/{vid}/commands/{id}",
            delete(commands::cancel),
        )
        .route(
            "/api/v1/packages",
            post(packages::upload)
                .get(packages::list)
                // An upload is as large as the largest package allowed.
                .layer(axum::extract::DefaultBodyLimit::max(
                    usize::try_from(state.commands.packages.config().max_package_bytes)
                        .unwrap_or(usize::MAX),
                )),
        )
        .route("/api/v1/traces", post(traces::start).get(traces::list))
        .route("/api/v1/traces/{trace_id}", get(traces::read))
        .route("/api/v1/stats", get(stats::stats))
        .route("/api/v1/reload", post(stats::reload))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    api.with_state(state)
}

/// An error answer: a status and `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// The `{vid}` in the path of a vehicle's routes (for the OpenAPI document; the handlers
/// take it as a `Path<String>`).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VehiclePath {
    /// Vehicle id
    pub vid: String,
}

/// The `{vid}` and `{id}` in the path of one command's routes (for the OpenAPI document).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CommandPath {
    /// Vehicle id
    pub vid: String,
    /// Command id
    pub id: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong; for a rejected command, the field and why.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// RFC 3339 UTC with milliseconds, as events carry times.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// [`time`] of Unix milliseconds.
pub fn time_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(time)
}

/// A route that does not exist: 404 `{"error"}`.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such route: {}", uri.path()))
}

/// A route called with a method it does not take: 405 `{"error"}`.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
