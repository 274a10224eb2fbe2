//! The admin and metrics HTTP server (`VGATE_HTTP_LISTEN`, default 127.0.0.1:9808).
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /healthz`: 200 once the gateway is running.
//! - `GET /api/v1/vehicles`: the vehicles online on this node (id, protocol, peer, since).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

#[derive(Clone)]
struct AppState {
    prometheus: PrometheusHandle,
    registry: Arc<dyn Registry>,
}

#[derive(Serialize)]
struct VehicleView {
    vehicle_id: String,
    protocol: &'static str,
    peer: String,
    since: String,
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    prometheus: PrometheusHandle,
    registry: Arc<dyn Registry>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/vehicles", get(vehicles))
        .with_state(AppState {
            prometheus,
            registry,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn metrics(State(s): State<AppState>) -> String {
    s.prometheus.render()
}

async fn vehicles(State(s): State<AppState>) -> Json<Vec<VehicleView>> {
    let mut v: Vec<VehicleView> = s
        .registry
        .all()
        .into_iter()
        .map(|(id, h)| VehicleView {
            vehicle_id: id,
            protocol: h.protocol.as_str(),
            peer: h.peer.to_string(),
            since: h.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
        .collect();
    v.sort_by(|a, b| a.vehicle_id.cmp(&b.vehicle_id));
    Json(v)
}
