//! Prometheus metrics: the recorder, and the description of every metric vgate exports.
//!
//! Metric names are `vgate_*`; labels are bounded sets (listener, protocol, reason, message
//! id, event type), never a vehicle id, so cardinality stays fixed with fleet size.
//! Process metrics (`process_*`, the names every Prometheus client uses) come from
//! [`crate::process`]; `vgate_build_info{version}` is 1.
//!
//! `deploy/grafana/vgate.json` and `deploy/prometheus/alerts.yml` use these names;
//! `tests/packaging.rs` checks that each name they use is one a running vgate exports.

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
    metrics::gauge!("vgate_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    tokio::spawn(upkeep(handle.clone(), UPKEEP_INTERVAL));
    tokio::spawn(crate::process::sample_forever());
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
    describe_gauge!(
        "vgate_build_info",
        "always 1; the version label is vgate's version"
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "resident set size"
    );
    describe_gauge!(
        "process_virtual_memory_bytes",
        Unit::Bytes,
        "virtual memory size"
    );
    describe_gauge!(
        "process_cpu_seconds_total",
        Unit::Seconds,
        "user and system CPU time since start (only grows: rate() it like a counter)"
    );
    describe_gauge!(
        "process_open_fds",
        "open file descriptors (each vehicle connection is one)"
    );
    describe_gauge!(
        "process_max_fds",
        "the soft limit on open file descriptors (LimitNOFILE)"
    );
    describe_gauge!("process_threads", "OS threads");
    describe_gauge!(
        "process_start_time_seconds",
        Unit::Seconds,
        "start time, seconds since the Unix epoch"
    );
    // Recorded in other modules and in mqtt-bridge; described here, where the recorder is.
    describe_counter!(
        "vgate_auth_decisions_total",
        "authentication decisions, by listener, action, result and reason"
    );
    describe_gauge!(
        "vgate_command_queue_depth",
        "commands waiting in the queue, all vehicles"
    );
    describe_counter!(
        "vgate_command_queue_refused_total",
        "commands refused by a queue cap, by reason"
    );
    describe_counter!(
        "vgate_command_results_total",
        "command results published, by status"
    );
    describe_counter!(
        "vgate_commands_sent_total",
        "commands written to vehicles, by protocol"
    );
    describe_counter!(
        "vgate_media_stored_total",
        "media files stored, by protocol"
    );
    describe_counter!(
        "vgate_media_stored_bytes_total",
        Unit::Bytes,
        "bytes of media files stored, by protocol"
    );
    describe_counter!(
        "vgate_media_store_errors_total",
        "media files that could not be stored, by protocol"
    );
    describe_counter!(
        "vgate_rate_limited_total",
        "waits of connections reading faster than their frame rate limit, by protocol"
    );
    describe_counter!(
        "vgate_seen_dropped_total",
        "logins not remembered as known vehicles (the writer was behind; the next login is)"
    );
    describe_gauge!(
        "vgate_mqtt_connected",
        "1 while the MQTT connection that takes commands is up"
    );
    describe_counter!("vgate_mqtt_reconnects_total", "MQTT reconnections");
    describe_counter!(
        "vgate_mqtt_refused_total",
        "MQTT connections refused by the broker, by reason"
    );
    describe_counter!(
        "vgate_mqtt_published_total",
        "publishes the broker acknowledged (or QoS 0 sent), by event type"
    );
    describe_counter!(
        "vgate_mqtt_publish_rejected_total",
        "publishes the broker refused (MQTT 5 negative PUBACK), by event type"
    );
    describe_histogram!(
        "vgate_mqtt_publish_latency_seconds",
        Unit::Seconds,
        "time from publish queued to broker acknowledgement (the broker round trip, queueing included)"
    );
    describe_gauge!(
        "vgate_mqtt_queue_depth",
        "publishes waiting for the MQTT connection"
    );
    describe_counter!(
        "vgate_mqtt_commands_received_total",
        "commands received from MQTT"
    );
    describe_gauge!(
        "vgate_mqtt_commands_waiting",
        "commands received from MQTT not stored yet"
    );
    describe_counter!(
        "vgate_mqtt_commands_dropped_total",
        "commands received from MQTT and dropped, by reason"
    );
    describe_gauge!(
        "vgate_spool_bytes",
        Unit::Bytes,
        "bytes waiting in the MQTT spool, all lanes"
    );
    describe_counter!(
        "vgate_spool_events_total",
        "publishes spooled, replayed and dropped, by op"
    );
    describe_counter!(
        "vgate_upgrades_total",
        "upgrade commands ended, by result (acked, failed, cancelled, no_result, no_package, transfer_failed)"
    );
    describe_counter!(
        "vgate_upgrade_packages_sent_total",
        "0x8108 packages written to terminals, first sends and resends"
    );
    describe_histogram!(
        "vgate_upgrade_transfer_seconds",
        Unit::Seconds,
        "time from an upgrade's first package to its last answered"
    );
    describe_counter!(
        "vgate_upgrade_packages_stored_total",
        "upgrade packages added to the package store (uploads and downloads)"
    );
    describe_counter!(
        "vgate_upgrade_downloads_total",
        "upgrade packages downloaded from a URL"
    );
    describe_counter!(
        "vgate_signatures_total",
        "GB/T 32960-2025 report signatures checked, by status (valid, invalid, unchecked)"
    );
    describe_counter!(
        "vgate_key_file_errors_total",
        "GB/T 32960 vehicle key files that could not be used"
    );
    describe_counter!(
        "vgate_activations_total",
        "GB/T 32960-2025 activations (0x09), by result (activated, failed)"
    );
    describe_counter!(
        "vgate_key_exchanges_total",
        "GB/T 32960-2025 data keys taken from a key exchange (0x0B)"
    );
    describe_counter!(
        "vgate_redis_errors_total",
        "Redis calls that failed or passed their deadline, by op (cluster mode)"
    );
    describe_counter!(
        "vgate_cluster_inbox_total",
        "per-node inbox notices, by direction (sent, received) and kind (cluster mode)"
    );
    describe_counter!(
        "vgate_cluster_claim_wait_timeouts_total",
        "logins announced online before their presence reached Redis (it did not answer in time)"
    );
    describe_counter!(
        "vgate_cluster_takeovers_total",
        "vehicles this node closed because another node took them over (cluster mode)"
    );
    describe_counter!(
        "vgate_cluster_reaped_total",
        "vehicles of a dead node published offline by this node (reason node_down)"
    );
    describe_counter!(
        "vgate_command_store_retries_total",
        "command batches stored again after a store error (Redis restarting or failing over)"
    );
    describe_counter!(
        "vgate_stale_presence_cleared_total",
        "vehicles published offline after a restart that did not follow a clean stop (reason gateway_restart)"
    );
}
