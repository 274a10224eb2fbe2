//! The bridge against a real mosquitto (one per test, on a free port, killed on drop).
//! Without mosquitto these tests skip with a note, or fail when `CI` is set.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{scenarios, Mosquitto, Subscriber, HANG_GUARD};
use mqtt_bridge::{Bridge, BridgeError, MqttConfig, RefusedReason};
use rumqttc::QoS;

macro_rules! need_mosquitto {
    ($name:literal) => {
        if !common::mosquitto_available($name) {
            return;
        }
    };
}

#[tokio::test]
async fn mosquitto_delivers_an_event_on_its_topic_with_the_exact_json() {
    need_mosquitto!("mosquitto_delivers_an_event");
    let m = Mosquitto::start_at(0, None);
    scenarios::event_arrives_with_exact_json(common::external(&m.url()), m.port).await;
}

#[tokio::test]
async fn mosquitto_gives_retained_presence_to_a_late_subscriber() {
    need_mosquitto!("mosquitto_gives_retained_presence");
    let m = Mosquitto::start_at(0, None);
    scenarios::retained_presence_reaches_late_subscriber(common::external(&m.url()), m.port).await;
}

#[tokio::test]
async fn mosquitto_holds_the_gateway_status_online_then_offline() {
    need_mosquitto!("mosquitto_holds_the_gateway_status");
    let m = Mosquitto::start_at(0, None);
    scenarios::gateway_status_is_online_then_offline(common::external(&m.url()), m.port).await;
}

#[tokio::test]
async fn mosquitto_delivers_vehicle_and_broadcast_commands_with_targets() {
    need_mosquitto!("mosquitto_delivers_commands");
    let m = Mosquitto::start_at(0, None);
    scenarios::commands_arrive_with_their_targets(common::external(&m.url()), m.port).await;
}

#[tokio::test]
async fn mosquitto_publishes_the_last_will_when_the_bridge_connection_is_killed() {
    need_mosquitto!("mosquitto_publishes_the_last_will");
    let m = Mosquitto::start_at(0, None);
    scenarios::last_will_marks_gateway_offline(common::external(&m.url()), m.port).await;
}

#[tokio::test]
async fn bad_credentials_are_a_typed_error_naming_the_broker() {
    need_mosquitto!("bad_credentials_are_a_typed_error");
    let m = Mosquitto::start_at(0, Some(("vgate", "right")));
    let cfg = MqttConfig {
        username: Some("vgate".into()),
        password: Some("wrong".into()),
        ..common::external(&m.url())
    };
    let err = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect_err("refused");
    let broker = format!("127.0.0.1:{}", m.port);
    match &err {
        BridgeError::Refused { broker: b, reason } => {
            assert_eq!(b, &broker);
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
    assert!(err.to_string().contains(&broker), "{err}");

    let good = MqttConfig {
        password: Some("right".into()),
        ..cfg
    };
    let bridge = Bridge::start(&good, "n", "vgate")
        .await
        .expect("right password connects");
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn delivery_completes_after_the_broker_comes_back() {
    need_mosquitto!("delivery_completes_after_the_broker_comes_back");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let bridge = Bridge::start(&common::external(&m.url()), "n", "vgate")
        .await
        .expect("bridge starts");
    m.kill();
    let ev = common::login_event("013800138000");
    let delivery = bridge.publisher().publish_event(&ev).await.expect("queued");

    let m = Mosquitto::start_at(port, None);
    let mut sub = Subscriber::connect(m.port, &["vgate/v1/+/lifecycle"]).await;
    tokio::time::timeout(HANG_GUARD, delivery)
        .await
        .expect("PUBACK before the hang guard")
        .expect("delivered after reconnect");
    // The subscriber may have connected just after the publish reached the broker; the
    // delivery is what this test is about, and a new publish shows the route works again.
    let again = common::login_event("013800138000");
    let d = bridge
        .publisher()
        .publish_event(&again)
        .await
        .expect("queued");
    tokio::time::timeout(HANG_GUARD, d)
        .await
        .expect("in time")
        .expect("delivered");
    let got = sub.next_publish_on("vgate/v1/013800138000/lifecycle").await;
    let id = common::json(&got)["event_id"].as_str().map(str::to_owned);
    assert!(id == Some(ev.event_id.to_string()) || id == Some(again.event_id.to_string()));
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn publishers_wait_when_the_queue_is_full_and_the_broker_is_down() {
    need_mosquitto!("publishers_wait_when_the_queue_is_full");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    // One connection: the bound below is one lane's (every vehicle goes to lane 0).
    let cfg = MqttConfig {
        queue_capacity: 2,
        inflight: 4,
        connections: 1,
        ..common::external(&m.url())
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    m.kill();

    const N: usize = 200;
    let publisher = bridge.publisher();
    let queued = Arc::new(AtomicUsize::new(0));
    let counter = queued.clone();
    let producer = tokio::spawn(async move {
        let mut deliveries = Vec::new();
        for _ in 0..N {
            let d = publisher
                .publish_event(&common::login_event("013800138000"))
                .await
                .expect("queued");
            counter.fetch_add(1, Ordering::SeqCst);
            deliveries.push(d);
        }
        deliveries
    });
    // Wait (bounded by the hang guard) until the queue is full.
    let publisher = bridge.publisher();
    let start = std::time::Instant::now();
    while publisher.queue_space() > 0 || queued.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < HANG_GUARD, "queue never filled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // With the broker down nothing drains the queue: the producer is stuck in publish_event,
    // having queued at most the queue (2), the forwarder's hand (1) and what rumqttc held
    // when the connection broke: the inflight publishes (4) and its request channel (as
    // large as the inflight window: 4).
    let accepted = queued.load(Ordering::SeqCst);
    assert!(!producer.is_finished());
    assert!(
        publisher
            .try_publish_event(&common::login_event("013800138001"))
            .is_none(),
        "try_publish_event does not queue into a full queue"
    );
    assert!(
        accepted < N,
        "publish_event did not wait: {accepted} accepted"
    );
    assert!(
        accepted <= 2 + 1 + 4 + 4,
        "{accepted} publishes accepted while down"
    );

    let _m = Mosquitto::start_at(port, None);
    let start = std::time::Instant::now();
    let extra = loop {
        assert!(start.elapsed() < HANG_GUARD, "queue never had room again");
        match publisher.try_publish_event(&common::login_event("013800138001")) {
            Some(r) => break r.expect("queued without waiting"),
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    tokio::time::timeout(HANG_GUARD, extra)
        .await
        .expect("in time")
        .expect("delivered");
    let deliveries = tokio::time::timeout(HANG_GUARD, producer)
        .await
        .expect("producer finishes once the broker is back")
        .expect("producer task");
    assert_eq!(deliveries.len(), N);
    for d in deliveries {
        tokio::time::timeout(HANG_GUARD, d)
            .await
            .expect("in time")
            .expect("delivered");
    }
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_unacknowledged_command_is_delivered_again_to_the_next_bridge() {
    need_mosquitto!("an_unacknowledged_command_is_delivered_again");
    let m = Mosquitto::start_at(0, None);
    let cfg = common::external(&m.url());
    let mut first = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    let mut commands = first.take_commands().expect("commands");
    let platform = Subscriber::connect(m.port, &[]).await;
    platform
        .client
        .publish(
            "vgate/v1/VIN1/cmd",
            QoS::AtLeastOnce,
            false,
            r#"{"id":"c-9"}"#,
        )
        .await
        .expect("platform publishes");
    let cmd = tokio::time::timeout(HANG_GUARD, commands.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(cmd.target, mqtt_bridge::Target::Vehicle("VIN1".into()));
    // The gateway "crashes" before storing it: no ack, connection cut.
    drop(cmd);
    drop(commands);
    drop(first);

    let mut second = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge restarts");
    let mut commands = second.take_commands().expect("commands");
    let again = tokio::time::timeout(HANG_GUARD, commands.recv())
        .await
        .expect("redelivered before the hang guard")
        .expect("open");
    assert_eq!(again.target, mqtt_bridge::Target::Vehicle("VIN1".into()));
    assert_eq!(&again.payload[..], br#"{"id":"c-9"}"#);
    again.ack().await.expect("acked");
    second.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_with_the_broker_down_ends_within_its_timeout() {
    need_mosquitto!("shutdown_with_the_broker_down_ends");
    let m = Mosquitto::start_at(0, None);
    let cfg = MqttConfig {
        shutdown_timeout_s: 1,
        ..common::external(&m.url())
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    let pending = bridge
        .publisher()
        .publish_event(&common::login_event("013800138000"))
        .await
        .expect("queued");
    m.kill();
    tokio::time::timeout(HANG_GUARD, bridge.shutdown())
        .await
        .expect("shutdown does not hang on a dead broker")
        .expect("shutdown reports no error");
    // Delivered before the kill, or dropped with the bridge: never left hanging.
    let outcome = tokio::time::timeout(HANG_GUARD, pending)
        .await
        .expect("resolved");
    assert!(
        matches!(outcome, Ok(()) | Err(BridgeError::Closed)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn mqtts_with_a_custom_ca_delivers_and_an_unknown_ca_is_refused() {
    need_mosquitto!("mqtts_with_a_custom_ca");
    let (m, ca) = Mosquitto::start_tls_at(0);
    let cfg = MqttConfig {
        tls: mqtt_bridge::TlsConfig {
            ca_file: Some(ca.display().to_string()),
            ..Default::default()
        },
        ..common::external(&format!("mqtts://localhost:{}", m.port))
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("TLS bridge starts");
    let d = bridge
        .publisher()
        .publish_event(&common::login_event("013800138000"))
        .await
        .expect("queued");
    tokio::time::timeout(HANG_GUARD, d)
        .await
        .expect("in time")
        .expect("delivered over TLS");
    bridge.shutdown().await.expect("clean shutdown");

    // A CA that did not sign the broker's certificate does not verify it.
    let other = tempfile::NamedTempFile::new().expect("temp file");
    let key = tempfile::NamedTempFile::new().expect("temp file");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=other CA", "-keyout"])
        .arg(key.path())
        .arg("-out")
        .arg(other.path())
        .output()
        .expect("openssl runs");
    assert!(made.status.success());
    let wrong = MqttConfig {
        tls: mqtt_bridge::TlsConfig {
            ca_file: Some(other.path().display().to_string()),
            ..Default::default()
        },
        connect_timeout_s: 1,
        ..cfg
    };
    match Bridge::start(&wrong, "n", "vgate").await {
        Err(BridgeError::Unreachable { broker, .. }) => {
            assert_eq!(broker, format!("localhost:{}", m.port))
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
