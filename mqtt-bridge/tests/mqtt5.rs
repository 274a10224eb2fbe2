//! The bridge speaking MQTT 5 to mosquitto: the same behaviour as 3.1.1, plus the command
//! properties (Response Topic, Correlation Data, Message Expiry Interval).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{scenarios, Mosquitto, HANG_GUARD};
use mqtt_bridge::{Bridge, BridgeError, MqttConfig, RefusedReason, Target};
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};

macro_rules! need_mosquitto {
    ($name:literal) => {
        if !common::mosquitto_available($name) {
            return;
        }
    };
}

#[tokio::test]
async fn mqtt5_bridge_delivers_an_event_with_the_exact_json() {
    need_mosquitto!("mqtt5_bridge_delivers_an_event");
    let m = Mosquitto::start_at(0, None);
    scenarios::event_arrives_with_exact_json(common::external_v5(&m.url()), m.port).await;
}

#[tokio::test]
async fn mqtt5_bridge_keeps_presence_retained() {
    need_mosquitto!("mqtt5_bridge_keeps_presence_retained");
    let m = Mosquitto::start_at(0, None);
    scenarios::retained_presence_reaches_late_subscriber(common::external_v5(&m.url()), m.port)
        .await;
}

#[tokio::test]
async fn mqtt5_bridge_last_will_marks_the_gateway_offline() {
    need_mosquitto!("mqtt5_bridge_last_will");
    let m = Mosquitto::start_at(0, None);
    scenarios::last_will_marks_gateway_offline(common::external_v5(&m.url()), m.port).await;
}

#[tokio::test]
async fn mqtt5_bridge_delivers_vehicle_and_broadcast_commands() {
    need_mosquitto!("mqtt5_bridge_delivers_commands");
    let m = Mosquitto::start_at(0, None);
    scenarios::commands_arrive_with_their_targets(common::external_v5(&m.url()), m.port).await;
}

#[tokio::test]
async fn mqtt5_command_exposes_response_topic_correlation_data_and_expiry() {
    need_mosquitto!("mqtt5_command_exposes_properties");
    let m = Mosquitto::start_at(0, None);
    let mut bridge = Bridge::start(&common::external_v5(&m.url()), "n", "vgate")
        .await
        .expect("bridge starts");
    let mut commands = bridge.take_commands().expect("commands");

    let (platform, mut ev) =
        AsyncClient::new(MqttOptions::new("platform5", "127.0.0.1", m.port), 8);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let props = PublishProperties {
        response_topic: Some("app/replies/42".into()),
        correlation_data: Some(Bytes::from_static(b"corr-42")),
        message_expiry_interval: Some(600),
        ..Default::default()
    };
    platform
        .publish_with_properties(
            "vgate/v1/VIN5/cmd",
            QoS::AtLeastOnce,
            false,
            "{\"id\":\"c5\"}",
            props,
        )
        .await
        .expect("platform publishes");
    let cmd = tokio::time::timeout(HANG_GUARD, commands.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(cmd.target, Target::Vehicle("VIN5".into()));
    assert_eq!(cmd.response_topic.as_deref(), Some("app/replies/42"));
    assert_eq!(cmd.correlation_data.as_deref(), Some(&b"corr-42"[..]));
    let expiry = cmd.message_expiry.expect("expiry present");
    // The broker counts down the time the message waited; it never grows.
    assert!(
        expiry <= Duration::from_secs(600) && expiry >= Duration::from_secs(590),
        "{expiry:?}"
    );
    cmd.ack().await.expect("acked");
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn mqtt5_bad_credentials_are_a_typed_error_naming_the_broker() {
    need_mosquitto!("mqtt5_bad_credentials");
    let m = Mosquitto::start_at(0, Some(("vgate", "right")));
    let cfg = MqttConfig {
        username: Some("vgate".into()),
        password: Some("wrong".into()),
        ..common::external_v5(&m.url())
    };
    match Bridge::start(&cfg, "n", "vgate").await {
        Err(BridgeError::Refused { broker, reason }) => {
            assert_eq!(broker, format!("127.0.0.1:{}", m.port));
            assert!(
                matches!(
                    reason,
                    RefusedReason::BadCredentials | RefusedReason::NotAuthorized
                ),
                "{reason:?}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn mqtt5_delivery_completes_after_the_broker_comes_back() {
    need_mosquitto!("mqtt5_delivery_completes_after_restart");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let cfg = MqttConfig {
        queue_capacity: 2,
        inflight: 4,
        ..common::external_v5(&m.url())
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    m.kill();
    let publisher = bridge.publisher();
    let producer = tokio::spawn(async move {
        let mut ds = Vec::new();
        for _ in 0..50 {
            let ev = common::login_event("013800138000");
            ds.push(publisher.publish_event(&ev).await.expect("queued"));
        }
        ds
    });
    let _m = Mosquitto::start_at(port, None);
    let ds = tokio::time::timeout(HANG_GUARD, producer)
        .await
        .expect("producer finishes")
        .expect("task");
    for d in ds {
        tokio::time::timeout(HANG_GUARD, d)
            .await
            .expect("in time")
            .expect("delivered");
    }
    bridge.shutdown().await.expect("clean shutdown");
}
