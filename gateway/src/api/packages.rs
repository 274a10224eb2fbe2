//! Upgrade packages: upload one, list them ([`crate::packages`]). An `upgrade` command names
//! an uploaded package by the `package` id the upload returned.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::{ApiError, ErrorBody};
use crate::packages::{PackageError, PackageInfo};

/// Stores the request body as an upgrade package (content-addressed: the same bytes are
/// the same package).
#[utoipa::path(post, path = "/api/v1/packages", tag = "commands", responses(
    (status = 201, description = "Stored; `package` goes in an upgrade command", body = PackageInfo),
    (status = 400, description = "An empty body", body = ErrorBody),
    (status = 413, description = "Larger than commands.upgrade.max_package_bytes", body = ErrorBody),
), request_body(content = Vec<u8>, content_type = "application/octet-stream"))]
pub async fn upload(
    State(api): State<super::State>,
    body: Bytes,
) -> Result<(StatusCode, Json<PackageInfo>), ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("empty package"));
    }
    let store = api.commands.packages.clone();
    let info = tokio::task::spawn_blocking(move || store.put(&body))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| match e {
            PackageError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            other => ApiError::internal(other.to_string()),
        })?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// The packages stored on this node.
#[utoipa::path(get, path = "/api/v1/packages", tag = "commands", responses(
    (status = 200, description = "Id and size of each", body = Vec<PackageInfo>),
))]
pub async fn list(State(api): State<super::State>) -> Result<Json<Vec<PackageInfo>>, ApiError> {
    let store = api.commands.packages.clone();
    let list = tokio::task::spawn_blocking(move || store.list())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(list))
}
