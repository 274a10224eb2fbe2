//! Prometheus metrics: the recorder, and the description of every metric vgate exports.
//!
//! Metric names are `vgate_*`; labels are bounded sets (listener, protocol, reason, message
//! id, event type), never a vehicle id, so cardinality stays fixed with fleet size.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the global recorder and describes every metric. Call once, before anything counts.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ])?
        .install_recorder()?;
    describe();
    Ok(handle)
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
        "successful logins/authentications, by protocol"
    );
    describe_counter!(
        "vgate_login_refusals_total",
        "refused registrations/logins, by protocol and reason"
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
        "sessions ended, by protocol and reason"
    );
    describe_histogram!(
        "vgate_frame_to_publish_seconds",
        Unit::Seconds,
        "time from frame read to event queued for MQTT"
    );
}
