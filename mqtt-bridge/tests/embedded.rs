//! The bridge against its embedded rumqttd broker (each test on a free port).

mod common;

use common::scenarios;
use mqtt_bridge::{Bridge, BridgeError};

#[tokio::test]
async fn embedded_broker_delivers_an_event_on_its_topic_with_the_exact_json() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::event_arrives_with_exact_json(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_gives_retained_presence_to_a_late_subscriber() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::retained_presence_reaches_late_subscriber(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_holds_the_gateway_status_online_then_offline() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::gateway_status_is_online_then_offline(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_delivers_vehicle_and_broadcast_commands_with_targets() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::commands_arrive_with_their_targets(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_publishes_the_last_will_when_the_bridge_is_dropped() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::last_will_marks_gateway_offline(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_reports_its_address() {
    let cfg = common::embedded();
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    assert_eq!(bridge.embedded_addr(), Some(cfg.embedded_listen));
    assert_eq!(
        bridge.broker(),
        format!("127.0.0.1:{}", cfg.embedded_listen.port())
    );
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn embedded_broker_on_a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let cfg = mqtt_bridge::MqttConfig {
        embedded_listen: taken.local_addr().expect("addr"),
        ..common::embedded()
    };
    match Bridge::start(&cfg, "n", "vgate").await {
        Err(BridgeError::EmbeddedListen { addr, .. }) => assert_eq!(addr, cfg.embedded_listen),
        other => panic!("expected EmbeddedListen, got {other:?}"),
    }
}
