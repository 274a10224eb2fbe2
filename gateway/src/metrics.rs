//! Prometheus metrics: the recorder, and the description of every metric vgate exports.
//!
//! Metric names are `vgate_*`; labels are bounded sets (listener, protocol, reason, message
//! id, event type), never a vehicle id, so cardinality stays fixed with fleet size.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often the recorder's upkeep runs.
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the global recorder, describes every metric and starts its upkeep. Call once,
/// from within the runtime, before anything counts.
///
/// Why the upkeep: the recorder keeps every histogram sample (one per event for
/// `vgate_frame_to_publish_seconds` and `vgate_mqtt_publish_latency_seconds`) until it folds
/// them into the buckets, which it does on a scrape or in `run_upkeep`. With no scraper (or a
/// scraper down overnight) the samples piled up: ~35 bytes per event, gigabytes an hour at
/// fleet rates. `install_recorder` does not start the upkeep task the exporter's own HTTP
/// listener would, so it runs here every [`UPKEEP_INTERVAL`].
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ])?
        .install_recorder()?;
    describe();
    tokio::spawn(upkeep(handle.clone(), UPKEEP_INTERVAL));
    Ok(handle)
}

/// Folds the recorded histogram samples into their buckets every `every`, for good.
pub async fn upkeep(handle: PrometheusHandle, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

fn describe() {
    describe_counter!(
        "vgate_connections_total",
        "TCP connections accepted, by listener"
    );
    describe_gauge!(
        "vgate_connections_open",
        "TCP connections open, by listener"
    );
    describe_counter!(
        "vgate_accept_errors_total",
        "accept() failures, by listener"
    );
    describe_gauge!(
        "vgate_vehicles_online",
        "vehicles authenticated / logged in on this node"
    );
    describe_counter!(
        "vgate_logins_total",
        "successful logins/authentications, by protocol and listener"
    );
    describe_counter!(
        "vgate_login_refusals_total",
        "refused registrations/logins, by protocol, listener and reason (certificate_mismatch included)"
    );
    describe_counter!(
        "vgate_connections_refused_total",
        "connections refused before their session, by listener and reason (max_connections, banned, proxy_header, handshake_timeout, and TLS handshake failures: unknown_ca, expired, revoked, no_client_certificate, not_tls...)"
    );
    describe_counter!(
        "vgate_tls_handshakes_total",
        "TLS handshakes completed, by listener"
    );
    describe_counter!(
        "vgate_tls_reloads_total",
        "TLS file reloads (SIGHUP), by listener and result (ok, error: the previous files stay)"
    );
    describe_counter!(
        "vgate_addresses_banned_total",
        "source addresses refused for a while after max_failed_logins failed logins, by listener"
    );
    describe_counter!(
        "vgate_prelogin_overflows_total",
        "connections closed for holding more unread bytes than allowed before login, by listener"
    );
    describe_counter!(
        "vgate_frames_in_total",
        "frames received, by protocol and message id"
    );
    describe_counter!(
        "vgate_frames_out_total",
        "frames sent, by protocol and message id"
    );
    describe_counter!(
        "vgate_decode_errors_total",
        "frames or bodies that did not decode, by protocol and reason"
    );
    describe_counter!(
        "vgate_events_total",
        "events handed to the MQTT bridge, by type"
    );
    describe_counter!(
        "vgate_sessions_closed_total",
        "sessions ended, by protocol, listener and reason"
    );
    describe_histogram!(
        "vgate_frame_to_publish_seconds",
        Unit::Seconds,
        "time from frame read to event queued for MQTT"
    );
    describe_counter!(
        "vgate_http_refused_total",
        "operator API calls refused, by reason (no_token, bad_token, read_only)"
    );
    describe_counter!(
        "vgate_kicks_total",
        "connections closed through the operator API"
    );
}
