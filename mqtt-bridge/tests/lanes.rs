//! Several MQTT connections ("lanes", `mqtt.connections`): every vehicle's events arrive,
//! in order, each vehicle on its own lane; the lanes really are separate connections (each
//! counts the PUBACKs it received); with a spool every lane replays after a broker restart,
//! and the spools of lanes removed by lowering `mqtt.connections` are replayed too.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{persistent_subscriber, until, Mosquitto, Subscriber, HANG_GUARD};
use mqtt_bridge::{Bridge, BridgeError, MqttConfig, SpoolConfig};
use rumqttc::Publish;
use tokio::sync::mpsc;

macro_rules! need_mosquitto {
    ($name:literal) => {
        if !common::mosquitto_available($name) {
            return;
        }
    };
}

/// One vehicle per lane: the first ids of the form `0138001380NN` that fall on lanes
/// `0..lanes`, in lane order (the lane is a stable hash of the id).
fn one_vehicle_per_lane(bridge: &Bridge) -> Vec<String> {
    let p = bridge.publisher();
    (0..bridge.lanes())
        .map(|lane| {
            (0..1000)
                .map(|i| format!("0138001380{i:02}"))
                .find(|v| p.lane_of(v) == lane)
                .expect("some id on every lane")
        })
        .collect()
}

/// (vehicle, event_id) of a received event.
fn ident(p: &Publish) -> (String, String) {
    let vid = p.topic.split('/').nth(2).expect("vehicle level").to_owned();
    let id = common::json(p)["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned();
    (vid, id)
}

/// Received events grouped by vehicle, in arrival order.
fn by_vehicle(got: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (v, id) in got {
        m.entry(v.clone()).or_default().push(id.clone());
    }
    m
}

/// `bridge` (over `lanes` connections) publishes `per_vehicle` events for one vehicle per
/// lane, concurrently, then each vehicle's presence: all of them arrive at a subscriber on
/// `port`, each vehicle's in publish order, and every lane's connection carried its vehicle.
async fn lanes_deliver_each_vehicle_in_order(bridge: &Bridge, port: u16, per_vehicle: usize) {
    let vehicles = one_vehicle_per_lane(bridge);
    let mut sub = Subscriber::connect(port, &["vgate/v1/+/+"]).await;
    let before = bridge.published_per_lane();
    let mut tasks = Vec::new();
    for vid in vehicles.clone() {
        let p = bridge.publisher();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::with_capacity(per_vehicle + 1);
            let mut pending = Vec::with_capacity(per_vehicle + 1);
            for _ in 0..per_vehicle {
                let ev = common::login_event(&vid);
                let d = match p.try_publish_event(&ev) {
                    Some(r) => r,
                    None => p.publish_event(&ev).await,
                };
                pending.push(d.expect("queued"));
                sent.push(ev.event_id.to_string());
            }
            let presence = common::presence_event(&vid, false);
            pending.push(p.publish_presence(&vid, &presence).await.expect("queued"));
            sent.push(presence.event_id.to_string());
            for d in pending {
                d.await.expect("acknowledged");
            }
            (vid, sent)
        }));
    }
    let total = vehicles.len() * (per_vehicle + 1);
    let mut got = Vec::with_capacity(total);
    while got.len() < total {
        got.push(ident(&sub.next().await));
    }
    let mut sent = HashMap::new();
    for t in tasks {
        let (vid, ids) = t.await.expect("publisher task");
        sent.insert(vid, ids);
    }
    assert_eq!(
        by_vehicle(&got),
        sent,
        "every event once, each vehicle's in publish order"
    );
    let after = bridge.published_per_lane();
    let want = per_vehicle as u64 + 1;
    for (lane, (a, b)) in after.iter().zip(&before).enumerate() {
        let carried = a - b;
        assert!(
            carried >= want,
            "lane {lane} carried {carried} publishes, expected its vehicle's {want}: {after:?}"
        );
    }
}

#[tokio::test]
async fn three_lanes_deliver_every_vehicle_in_order_over_three_connections() {
    need_mosquitto!("three_lanes_deliver_every_vehicle_in_order_over_three_connections");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let cfg = MqttConfig {
        connections: 3,
        ..common::external(&m.url())
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    assert_eq!(bridge.lanes(), 3);
    assert_eq!(bridge.lanes_connected(), vec![true; 3]);
    assert!(bridge.connected());
    lanes_deliver_each_vehicle_in_order(&bridge, port, 400).await;
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn lanes_speak_mqtt5_too() {
    need_mosquitto!("lanes_speak_mqtt5_too");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let cfg = MqttConfig {
        connections: 2,
        ..common::external_v5(&m.url())
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    assert_eq!(bridge.lanes(), 2);
    lanes_deliver_each_vehicle_in_order(&bridge, port, 100).await;
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn lanes_connect_to_the_embedded_broker() {
    let cfg = MqttConfig {
        connections: 2,
        ..common::embedded()
    };
    let port = cfg.embedded_listen.port();
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    assert_eq!(bridge.lanes_connected(), vec![true; 2]);
    lanes_deliver_each_vehicle_in_order(&bridge, port, 100).await;
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn zero_connections_is_a_config_error_naming_the_key() {
    for n in [0, 17] {
        let cfg = MqttConfig {
            connections: n,
            ..common::external("mqtt://127.0.0.1:1")
        };
        match Bridge::start(&cfg, "n", "vgate").await {
            Err(BridgeError::Config { key, reason }) => {
                assert_eq!(key, "mqtt.connections", "{reason}");
            }
            other => panic!("connections = {n}: {other:?}"),
        }
    }
}

fn spooled_lanes(url: &str, dir: &Path, lanes: u16) -> MqttConfig {
    MqttConfig {
        connections: lanes,
        spool: SpoolConfig {
            dir: Some(dir.to_owned()),
            ..SpoolConfig::default()
        },
        shutdown_timeout_s: 2,
        ..common::external(url)
    }
}

/// A persistent broker on a free port with a platform client subscribed to every event (a
/// session the broker keeps), then stopped: its port, its URL and the subscription.
async fn broker_gone_after_subscribe(data: &Path) -> (u16, String, mpsc::Receiver<Publish>) {
    let port = common::free_port();
    let m = Mosquitto::start_persistent_at(port, data);
    let sub = persistent_subscriber(port, "vgate/v1/+/+").await;
    let url = m.url();
    m.terminate();
    (port, url, sub)
}

/// Publishes `rounds` login events of every vehicle in `vehicles`, each waited for until
/// durable (with the broker down: spooled); returns each vehicle's event ids in order.
async fn publish_durably(
    bridge: &Bridge,
    vehicles: &[String],
    rounds: usize,
) -> HashMap<String, Vec<String>> {
    let publisher = bridge.publisher();
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for _ in 0..rounds {
        for vid in vehicles {
            let ev = common::login_event(vid);
            let d = publisher.publish_event(&ev).await.expect("queued");
            tokio::time::timeout(Duration::from_secs(5), d)
                .await
                .expect("durable (spooled with the broker down)")
                .expect("accepted");
            sent.entry(vid.clone())
                .or_default()
                .push(ev.event_id.to_string());
        }
    }
    sent
}

/// The next `n` messages of `sub`, as (vehicle, event id).
async fn receive(sub: &mut mpsc::Receiver<Publish>, n: usize) -> Vec<(String, String)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let p = tokio::time::timeout(HANG_GUARD, sub.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages before the hang guard", got.len()))
            .expect("subscriber alive");
        got.push(ident(&p));
    }
    got
}

#[tokio::test]
async fn every_lane_spools_while_the_broker_is_down_and_replays_in_order() {
    need_mosquitto!("every_lane_spools_while_the_broker_is_down_and_replays_in_order");
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_persistent_at(port, data.path());
    let bridge = Bridge::start(&spooled_lanes(&m.url(), spool.path(), 3), "n", "vgate")
        .await
        .expect("bridge starts");
    assert_eq!(bridge.spooled(), Some(0));
    // Lane 0 keeps the configured directory (an older spool replays); lanes 1.. have their own.
    assert!(spool.path().join("spool.redb").exists());
    for lane in 1..3 {
        assert!(spool
            .path()
            .join(format!("lane-{lane}"))
            .join("spool.redb")
            .exists());
    }
    let vehicles = one_vehicle_per_lane(&bridge);
    let mut sub = persistent_subscriber(port, "vgate/v1/+/+").await;

    // SIGTERM: the broker saves the subscriber's session for the restart.
    m.terminate();
    until("every lane sees the broker gone", || {
        bridge.lanes_connected().iter().all(|c| !c)
    })
    .await;
    const PER_VEHICLE: usize = 60;
    let sent = publish_durably(&bridge, &vehicles, PER_VEHICLE).await;
    let total = PER_VEHICLE * vehicles.len();
    assert_eq!(bridge.spooled(), Some(total as u64));
    let before = bridge.published_per_lane();

    let _m = Mosquitto::start_persistent_at(port, data.path());
    let got = receive(&mut sub, total).await;
    assert_eq!(
        by_vehicle(&got),
        sent,
        "every spooled event once, each vehicle's in publish order"
    );
    until("every lane's spool drains", || bridge.spooled() == Some(0)).await;
    let after = bridge.published_per_lane();
    for lane in 0..3 {
        assert!(
            after[lane] - before[lane] >= PER_VEHICLE as u64,
            "lane {lane} replayed its own spool: {before:?} -> {after:?}"
        );
    }
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn lanes_start_with_the_broker_down_at_once_and_replay_when_it_comes() {
    need_mosquitto!("lanes_start_with_the_broker_down_at_once_and_replay_when_it_comes");
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let (port, url, mut sub) = broker_gone_after_subscribe(data.path()).await;

    let cfg = MqttConfig {
        connect_timeout_s: 2,
        ..spooled_lanes(&url, spool.path(), 3)
    };
    let started = Instant::now();
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("starts degraded with a spool");
    // The lanes try side by side: one connect timeout, not one per lane.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!bridge.connected());
    assert_eq!(bridge.lanes_connected(), vec![false; 3]);
    let vehicles = one_vehicle_per_lane(&bridge);
    let sent = publish_durably(&bridge, &vehicles, 20).await;

    let _m = Mosquitto::start_persistent_at(port, data.path());
    until("every lane connects", || {
        bridge.lanes_connected().iter().all(|c| *c)
    })
    .await;
    let got = receive(&mut sub, 60).await;
    assert_eq!(by_vehicle(&got), sent);
    until("every lane's spool drains", || bridge.spooled() == Some(0)).await;
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn spools_of_removed_lanes_are_replayed_when_connections_is_lowered() {
    need_mosquitto!("spools_of_removed_lanes_are_replayed_when_connections_is_lowered");
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let (port, url, mut sub) = broker_gone_after_subscribe(data.path()).await;

    // Three lanes spool while the broker is down, then the gateway stops.
    let cfg = MqttConfig {
        connect_timeout_s: 1,
        ..spooled_lanes(&url, spool.path(), 3)
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("starts degraded with a spool");
    let vehicles = one_vehicle_per_lane(&bridge);
    let sent = publish_durably(&bridge, &vehicles, 10).await;
    let _ = bridge.shutdown().await;

    // It comes back with one connection: lanes 1 and 2 are gone, their spools are not.
    let _m = Mosquitto::start_persistent_at(port, data.path());
    let bridge = Bridge::start(&spooled_lanes(&url, spool.path(), 1), "n", "vgate")
        .await
        .expect("bridge starts");
    let got = receive(&mut sub, 30).await;
    assert_eq!(
        by_vehicle(&got),
        sent,
        "each vehicle's events once, in order"
    );
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    for lane in 1..3 {
        assert!(
            !spool.path().join(format!("lane-{lane}")).exists(),
            "the emptied spool of lane {lane} is removed"
        );
    }
    bridge.shutdown().await.expect("clean shutdown");
}
