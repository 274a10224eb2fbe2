//! Test harness: sample events, bridge configs and scenarios run against both brokers; the
//! mosquitto per test and the subscriber are the workspace's `test-support` crate.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codecs::event::{Lifecycle, LifecycleKind, Presence, PresenceReason};
use codecs::{Data, Event, EventContext, Protocol};
use mqtt_bridge::MqttConfig;
use rumqttc::{AsyncClient, Event as MqEvent, Incoming, MqttOptions, Publish, QoS};
use tokio::sync::mpsc;

pub use test_support::{free_port, mosquitto_available, Mosquitto, Subscriber, HANG_GUARD};

/// A bridge config for an external broker at `url`, with quick reconnects.
pub fn external(url: &str) -> MqttConfig {
    MqttConfig {
        url: Some(url.to_owned()),
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        connect_timeout_s: 10,
        ..MqttConfig::default()
    }
}

/// As [`external`], speaking MQTT 5.
pub fn external_v5(url: &str) -> MqttConfig {
    MqttConfig {
        protocol: mqtt_bridge::MqttProtocol::V5,
        ..external(url)
    }
}

/// A bridge config with the embedded broker on a free port.
pub fn embedded() -> MqttConfig {
    MqttConfig {
        embedded_listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        connect_timeout_s: 10,
        ..MqttConfig::default()
    }
}

pub fn ctx() -> EventContext {
    EventContext::now(Arc::<str>::from("node-1"))
}

pub fn login_event(vid: &str) -> Event {
    Event::new(
        &ctx(),
        vid.into(),
        Protocol::Jt808_2013,
        None,
        Some(7),
        Data::Lifecycle(Lifecycle::new(LifecycleKind::Login)),
    )
}

pub fn presence_event(vid: &str, online: bool) -> Event {
    Event::new(
        &ctx(),
        vid.into(),
        Protocol::Gbt32960_2016,
        None,
        None,
        Data::Status(Presence {
            online,
            reason: PresenceReason::Login,
            protocol: Protocol::Gbt32960_2016,
            peer: Some("10.0.0.1:5000".into()),
            since: chrono::Utc::now(),
        }),
    )
}

pub fn json(p: &Publish) -> serde_json::Value {
    serde_json::from_slice(&p.payload).expect("payload is JSON")
}

/// Scenarios run against both brokers.
pub mod scenarios {
    use super::*;
    use mqtt_bridge::{Bridge, Target};

    /// A subscriber on `{p}/v1/+/+` receives the event on its topic with the exact JSON.
    pub async fn event_arrives_with_exact_json(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-1", "vgate")
            .await
            .expect("bridge starts");
        let mut sub = Subscriber::connect(port, &["vgate/v1/+/+"]).await;
        let ev = login_event("013800138000");
        let delivery = bridge.publisher().publish_event(&ev).await.expect("queued");
        tokio::time::timeout(HANG_GUARD, delivery)
            .await
            .expect("PUBACK before the hang guard")
            .expect("delivered");
        let got = sub.next_publish_on("vgate/v1/013800138000/lifecycle").await;
        assert_eq!(
            std::str::from_utf8(&got.payload).expect("utf-8"),
            ev.to_json()
        );
        assert!(!got.retain);
        bridge.shutdown().await.expect("clean shutdown");
    }

    /// Presence is retained: a client subscribing after the publish still gets it.
    pub async fn retained_presence_reaches_late_subscriber(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-1", "vgate")
            .await
            .expect("bridge starts");
        let ev = presence_event("LSVAB1234C5678901", true);
        let d = bridge
            .publisher()
            .publish_presence("LSVAB1234C5678901", &ev)
            .await
            .expect("queued");
        tokio::time::timeout(HANG_GUARD, d)
            .await
            .expect("in time")
            .expect("delivered");
        let mut late = Subscriber::connect(port, &["vgate/v1/LSVAB1234C5678901/status"]).await;
        let got = late.next().await;
        assert!(got.retain, "a late subscriber gets the retained copy");
        assert_eq!(json(&got)["data"]["online"], true);
        assert_eq!(json(&got)["event_id"], ev.event_id.to_string());
        bridge.shutdown().await.expect("clean shutdown");
    }

    /// The gateway's own status is retained online while it runs, offline after shutdown.
    pub async fn gateway_status_is_online_then_offline(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-7", "fleet")
            .await
            .expect("bridge starts");
        let mut sub = Subscriber::connect(port, &["fleet/gateway/node-7/status"]).await;
        let online = sub.next().await;
        assert!(online.retain);
        assert_eq!(json(&online)["online"], true);
        assert_eq!(json(&online)["node"], "node-7");
        assert!(json(&online)["since"].is_string());
        bridge.shutdown().await.expect("clean shutdown");
        let offline = sub.next().await;
        assert_eq!(json(&offline)["online"], false);
    }

    /// Vehicle and broadcast commands arrive on the channel with their targets.
    pub async fn commands_arrive_with_their_targets(cfg: MqttConfig, port: u16) {
        let mut bridge = Bridge::start(&cfg, "node-1", "vgate")
            .await
            .expect("bridge starts");
        let mut commands = bridge.take_commands().expect("first take");
        assert!(bridge.take_commands().is_none());
        let platform = Subscriber::connect(port, &[]).await;
        let body = r#"{"id":"c-1","type":"query_location"}"#;
        platform
            .client
            .publish("vgate/v1/013800138000/cmd", QoS::AtLeastOnce, false, body)
            .await
            .expect("platform publishes");
        let cmd = tokio::time::timeout(HANG_GUARD, commands.recv())
            .await
            .expect("in time")
            .expect("channel open");
        assert_eq!(cmd.target, Target::Vehicle("013800138000".into()));
        assert_eq!(&cmd.payload[..], body.as_bytes());
        assert_eq!(cmd.response_topic, None);
        cmd.ack().await.expect("acked");

        platform
            .client
            .publish("vgate/broadcast/jt808/cmd", QoS::AtLeastOnce, false, "{}")
            .await
            .expect("platform publishes");
        let cmd = tokio::time::timeout(HANG_GUARD, commands.recv())
            .await
            .expect("in time")
            .expect("channel open");
        assert_eq!(cmd.target, Target::Group("jt808".into()));
        cmd.ack().await.expect("acked");
        bridge.shutdown().await.expect("clean shutdown");
    }

    /// Dropping the bridge without shutdown cuts the connection: the broker publishes the
    /// retained offline last will.
    pub async fn last_will_marks_gateway_offline(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-9", "vgate")
            .await
            .expect("bridge starts");
        let mut sub = Subscriber::connect(port, &["vgate/gateway/node-9/status"]).await;
        assert_eq!(json(&sub.next().await)["online"], true);
        drop(bridge);
        let will = sub.next().await;
        assert_eq!(json(&will)["online"], false);
        assert_eq!(json(&will)["node"], "node-9");
        let mut late = Subscriber::connect(port, &["vgate/gateway/node-9/status"]).await;
        let retained = late.next().await;
        assert!(retained.retain);
        assert_eq!(json(&retained)["online"], false);
    }
}

/// A platform client with a persistent session: the broker keeps what is published for it
/// across a broker restart with persistence.
pub async fn persistent_subscriber(port: u16, filter: &str) -> mpsc::Receiver<Publish> {
    let id = format!("platform-{}", ulid::Ulid::new());
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut ev) = AsyncClient::new(opts, 16);
    let (tx, rx) = mpsc::channel(1024);
    let (subacked_tx, mut subacked) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(MqEvent::Incoming(Incoming::Publish(p))) => {
                    if tx.send(p).await.is_err() {
                        return;
                    }
                }
                Ok(MqEvent::Incoming(Incoming::SubAck(_))) => {
                    let _ = subacked_tx.try_send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    tokio::time::timeout(HANG_GUARD, subacked.recv())
        .await
        .expect("SUBACK in time")
        .expect("subscriber alive");
    // The event loop keeps the connection (and reconnects) without the handle.
    std::mem::forget(client);
    rx
}

/// Waits (bounded by the hang guard) until `cond` holds.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG_GUARD, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
