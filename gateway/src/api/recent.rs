//! One vehicle's recent events and track, for the status page's vehicle view
//! ([`crate::watch`]): asking starts or extends a watch of the vehicle, and the answer holds
//! what was kept since the watch began.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;

use super::{ApiError, ErrorBody, VehiclePath};
use crate::watch::{self, Recent};

/// The newest events of a vehicle (newest first) and its track (oldest first), kept since
/// its watch began; the call starts or extends the watch (10 minutes). An addition to
/// CONTRACT section 6.
#[utoipa::path(get, path = "/api/v1/vehicles/{vid}/recent", tag = "vehicles", params(VehiclePath), responses(
    (status = 200, description = "What the watch kept so far", body = Recent),
    (status = 400, description = "Not a vehicle id", body = ErrorBody),
    (status = 429, description = "Too many vehicles watched at once", body = ErrorBody),
))]
pub async fn recent(Path(vid): Path<String>) -> Result<Json<Recent>, ApiError> {
    codecs::vehicle_id::validate(&vid).map_err(|e| ApiError::bad_request(format!("vid: {e}")))?;
    watch::watch(&vid, watch::WATCH_FOR)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()))
}
