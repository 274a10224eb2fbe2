//! A vehicle's commands: submit one (the MQTT path's checks and results), list the waiting
//! ones in delivery order, cancel one still waiting.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{time_ms, ApiError, CommandPath, ErrorBody, VehiclePath};
use crate::commands::{status_label, Submitted};

/// A command taken: its id and where it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The command's id.
    pub id: String,
    /// `queued` (the vehicle is offline) or `sent` (its connection is sending it).
    pub status: String,
}

/// A command waiting for its vehicle.
#[derive(Debug, Serialize, ToSchema)]
pub struct Waiting {
    pub id: String,
    /// The command type (`text`, `query_location`...).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// 0..9, higher first.
    pub priority: u8,
    /// `queued`, or `sent` once written to the vehicle and not answered yet.
    pub status: String,
    /// Times it was written to the vehicle.
    pub attempts: u32,
    pub enqueued_at: Option<String>,
    pub expires_at: Option<String>,
    /// The command as submitted (contract §4).
    #[schema(value_type = Object)]
    pub command: serde_json::Value,
}

/// The commands waiting for a vehicle, in delivery order.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingList {
    pub items: Vec<Waiting>,
}

/// A command (contract §4), for the document: the body is read as MQTT reads it.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CommandBody {
    /// Client-chosen, unique per vehicle; a reused id is the same command.
    id: String,
    /// `text`, `query_location`, `set_params`, `query_params`, `raw`...
    #[schema(rename = "type")]
    kind: String,
    /// Per type (docs/commands.md).
    #[schema(value_type = Option<Object>)]
    params: Option<serde_json::Value>,
    /// How long it may wait for an offline vehicle.
    ttl_s: Option<u64>,
    /// 0..9, higher is delivered first.
    priority: Option<u8>,
}

/// Sends a command to a vehicle: stored, then delivered or queued; results also go to MQTT.
#[utoipa::path(post, path = "/api/v1/vehicles/{vid}/commands", tag = "commands", params(VehiclePath), responses(
    (status = 202, description = "Taken", body = Accepted),
    (status = 400, description = "Rejected: the error names the field", body = ErrorBody),
    (status = 503, description = "The queue is full or cannot store it", body = ErrorBody),
), request_body(content = CommandBody, content_type = "application/json"))]
pub async fn submit(
    State(api): State<super::State>,
    Path(vid): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    match api.dispatcher.submit(&vid, &body).await {
        Submitted::Accepted { id, status } => Ok((
            StatusCode::ACCEPTED,
            Json(Accepted {
                id,
                status: status_label(status).to_owned(),
            }),
        )),
        Submitted::Rejected(reason) => Err(ApiError::bad_request(reason)),
        Submitted::Full { id } => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("command {id}: queue_full"),
        )),
        Submitted::Unavailable(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)),
    }
}

/// The commands waiting for a vehicle, in the order they will be delivered.
#[utoipa::path(get, path = "/api/v1/vehicles/{vid}/commands", tag = "commands", params(VehiclePath), responses(
    (status = 200, description = "Waiting commands", body = WaitingList),
))]
pub async fn waiting(
    State(api): State<super::State>,
    Path(vid): Path<String>,
) -> Result<Json<WaitingList>, ApiError> {
    let limit = api.commands.cfg.max_per_vehicle.max(1);
    let items = api
        .commands
        .pending(&vid, limit)
        .await
        .into_iter()
        .map(|q| Waiting {
            kind: q.command.kind(),
            status: if q.attempts > 0 { "sent" } else { "queued" }.to_owned(),
            enqueued_at: time_ms(q.enqueued_at_ms),
            expires_at: time_ms(q.expires_at_ms),
            id: q.id,
            priority: q.priority,
            attempts: q.attempts,
            command: q.command.to_value(),
        })
        .collect();
    Ok(Json(WaitingList { items }))
}

/// Cancels a command still waiting: removed from the queue, result `cancelled` on MQTT.
#[utoipa::path(delete, path = "/api/v1/vehicles/{vid}/commands/{id}", tag = "commands", params(CommandPath), responses(
    (status = 204, description = "Cancelled"),
    (status = 404, description = "No such command waiting", body = ErrorBody),
    (status = 409, description = "Sent to the connected vehicle, its answer pending", body = ErrorBody),
))]
pub async fn cancel(
    State(api): State<super::State>,
    Path((vid, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    // A command written to the connected vehicle is no longer waiting: its answer decides.
    if api.registry.get(&vid).is_some() {
        let limit = api.commands.cfg.max_per_vehicle.max(1);
        let pending = api.commands.pending(&vid, limit).await;
        if pending.iter().any(|q| q.id == id && q.attempts > 0) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "command {id} was sent to {vid}, which is connected: its answer is awaited"
                ),
            ));
        }
    }
    match api.dispatcher.cancel(&vid, &id).await {
        Ok(Some(_)) => Ok(StatusCode::NO_CONTENT),
        Ok(None) => Err(ApiError::not_found(format!(
            "no command {id} is waiting for {vid}"
        ))),
        Err(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)),
    }
}
