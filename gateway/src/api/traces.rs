//! Per-vehicle traces: start one, list them, read what one recorded so far
//! ([`crate::traces`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};

/// What to trace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// The vehicle; it need not be connected yet.
    pub vehicle_id: String,
    /// How long to record, 1..3600 s.
    pub duration_s: u64,
}

/// A trace started.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceStarted {
    pub trace_id: String,
}

/// Records every frame to and from a vehicle for a while.
#[utoipa::path(post, path = "/api/v1/traces", tag = "operations", responses(
    (status = 201, description = "Started", body = TraceStarted),
    (status = 400, description = "A bad vehicle id or duration", body = ErrorBody),
), request_body(content = TraceRequest, content_type = "application/json"))]
pub async fn start(
    State(api): State<super::State>,
    body: Bytes,
) -> Result<(StatusCode, Json<TraceStarted>), ApiError> {
    let req: TraceRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let dir = crate::traces::dir(&api.data_dir);
    let id = tokio::task::spawn_blocking(move || {
        crate::traces::start(&dir, &req.vehicle_id, req.duration_s)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| match e {
        crate::traces::TraceError::Io { .. } => ApiError::internal(e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    })?;
    Ok((StatusCode::CREATED, Json(TraceStarted { trace_id: id })))
}

/// One recorded frame (a line of the NDJSON answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceLine {
    /// When it was read or written (UTC).
    pub time: String,
    /// `in` (from the vehicle) or `out` (to it).
    pub direction: String,
    /// The frame's bytes as on the wire.
    pub hex: String,
    /// A one-line description (protocol, message id).
    pub summary: String,
}

/// What a trace recorded so far, one JSON object per line.
#[utoipa::path(get, path = "/api/v1/traces/{trace_id}", tag = "operations", params(("trace_id" = String, Path, description = "From POST /api/v1/traces")), responses(
    (status = 200, description = "NDJSON, one frame per line", body = TraceLine, content_type = "application/x-ndjson"),
    (status = 404, description = "No such trace", body = ErrorBody),
))]
pub async fn read(
    State(api): State<super::State>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let dir = crate::traces::dir(&api.data_dir);
    let text = tokio::task::spawn_blocking(move || {
        crate::traces::file(&dir, &id)
            .map(std::fs::read)
            .ok_or_else(|| ApiError::not_found(format!("no trace {id}")))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response())
}

/// The traces kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceList {
    /// Oldest first (the newest 32 are kept).
    pub items: Vec<crate::traces::TraceFile>,
}

/// The traces kept, from the API and from the configuration (`[[traces]]`). An addition to
/// CONTRACT section 6.
#[utoipa::path(get, path = "/api/v1/traces", tag = "operations", responses(
    (status = 200, description = "The trace files kept", body = TraceList),
))]
pub async fn list(State(api): State<super::State>) -> Result<Json<TraceList>, ApiError> {
    let dir = crate::traces::dir(&api.data_dir);
    let items = tokio::task::spawn_blocking(move || crate::traces::list(&dir))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(TraceList { items }))
}
