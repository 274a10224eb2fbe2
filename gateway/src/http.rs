//! The admin and metrics HTTP server (`VGATE_HTTP_LISTEN`, default 127.0.0.1:9808).
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /healthz`: 200 while the process runs.
//! - `GET /readyz`: 200 when ready to take vehicles and publish, 503 with the reason.
//! - `GET /`: the status page (counters, a chart of events/s, vehicles, one vehicle with its
//!   session, commands, track and recent events, kick and a command form), served from the
//!   binary, data from the API.
//! - `/api/v1/...`: the operator API ([`crate::api`]), behind bearer tokens when configured.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api;

/// The whole HTTP application: open routes, then the API.
pub fn app(state: api::State) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(api::stats::readyz))
        .route("/", get(status_page))
        .with_state(state.clone())
        .merge(api::router(state))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: api::State,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tokio::spawn(api::stats::sample(state.clone(), shutdown.clone()));
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// The status page: one HTML file embedded in the binary, no external assets; its data comes
/// from the API (with the token the page asks for when the API wants one: the page is told
/// whether it does, so it asks before its first call instead of being refused).
async fn status_page(State(s): State<api::State>) -> axum::response::Html<String> {
    let mode = if s.tokens().is_empty() {
        "open"
    } else {
        "token"
    };
    axum::response::Html(include_str!("api/status.html").replacen("AUTH_MODE", mode, 1))
}

async fn metrics(State(s): State<api::State>) -> String {
    s.prometheus.render()
}
