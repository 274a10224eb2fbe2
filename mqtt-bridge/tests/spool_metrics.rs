//! The spool's metrics, as Prometheus renders them (a test binary of its own: it installs the
//! process-wide recorder).

mod common;

use std::time::{Duration, Instant};

use common::{Mosquitto, HANG_GUARD};
use metrics_exporter_prometheus::PrometheusBuilder;
use mqtt_bridge::{Bridge, MqttConfig, SpoolConfig};

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG_GUARD, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of the sample line starting with `series ` in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn spool_size_events_and_connection_state_are_measured() {
    if !common::mosquitto_available("spool_size_events_and_connection_state_are_measured") {
        return;
    }
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("recorder installed");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let cfg = MqttConfig {
        spool: SpoolConfig {
            dir: Some(spool.path().to_owned()),
            ..SpoolConfig::default()
        },
        ..common::external(&m.url())
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    m.kill();
    until("the bridge sees the broker gone", || !bridge.connected()).await;
    for _ in 0..5 {
        let d = bridge
            .publisher()
            .publish_event(&common::login_event("013800138000"))
            .await
            .expect("queued");
        tokio::time::timeout(Duration::from_secs(5), d)
            .await
            .expect("spooled in time")
            .expect("accepted");
    }
    let text = prometheus.render();
    assert_eq!(sample(&text, "vgate_mqtt_connected"), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, r#"vgate_spool_events_total{op="spooled"}"#),
        Some(5.0),
        "{text}"
    );
    assert!(
        sample(&text, "vgate_spool_bytes").unwrap_or(0.0) > 0.0,
        "{text}"
    );

    let _m = Mosquitto::start_at(port, None);
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    // The counter follows the deletion.
    until("replayed counted", || {
        let t = prometheus.render();
        sample(&t, r#"vgate_spool_events_total{op="replayed"}"#)
            == sample(&t, r#"vgate_spool_events_total{op="spooled"}"#)
    })
    .await;
    let text = prometheus.render();
    assert_eq!(sample(&text, "vgate_mqtt_connected"), Some(1.0), "{text}");
    // The online status published on the reconnect went through the spool too (the spool
    // was not empty yet): everything spooled was replayed.
    let spooled = sample(&text, r#"vgate_spool_events_total{op="spooled"}"#);
    assert!(spooled >= Some(5.0), "{text}");
    assert_eq!(
        sample(&text, r#"vgate_spool_events_total{op="replayed"}"#),
        spooled,
        "{text}"
    );
    assert_eq!(sample(&text, "vgate_spool_bytes"), Some(0.0), "{text}");
    bridge.shutdown().await.expect("clean shutdown");
}
