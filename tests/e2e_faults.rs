//! Fault tests: the broker goes away mid-stream, vgate is killed mid-stream; every event a
//! vehicle was told had arrived reaches the platform (counted by sequence number).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use jt808::Version;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::{Mosquitto, Outage, Vgate, VgateOptions};
use tokio::sync::mpsc;

/// A platform client with a persistent session (clean_session = false), so what is
/// published while it is reconnecting waits for it in the broker.
async fn durable_subscriber(
    port: u16,
    id: &str,
    filter: &str,
) -> mpsc::UnboundedReceiver<serde_json::Value> {
    durable_subscriber_with_acks(port, id, filter).await.0
}

/// [`durable_subscriber`], plus a channel that yields once per (re)subscription.
async fn durable_subscriber_with_acks(
    port: u16,
    id: &str,
    filter: &str,
) -> (
    mpsc::UnboundedReceiver<serde_json::Value>,
    mpsc::UnboundedReceiver<()>,
) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut ev) = AsyncClient::new(opts, 1000);
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let filter = filter.to_owned();
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice(&p.payload) {
                        let _ = tx.send(v);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
        .await
        .expect("subscribed");
    (rx, ready_rx)
}

async fn collect(
    rx: &mut mpsc::UnboundedReceiver<serde_json::Value>,
    want: usize,
    limit: Duration,
) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + limit;
    while seen.len() < want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(v)) => {
                if let Some(s) = v["msg_seq"].as_u64() {
                    seen.insert(s);
                }
            }
            _ => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_arrives_when_the_broker_stops_and_restarts_mid_stream() {
    let Some(mut m) = Mosquitto::start_persistent() else {
        return;
    };
    let phone = "013600000001";
    let (mut rx, mut resubscribed) = durable_subscriber_with_acks(
        m.port,
        "platform-faults-1",
        &format!("vgate/v1/{phone}/location"),
    )
    .await;
    // vgate reaches the broker through a proxy, so the test can hold it back after the
    // restart until the platform's subscriber is subscribed again (the restarted broker is
    // not guaranteed to have kept the subscriber's session).
    let proxy = Outage::start(m.port).await;
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(format!("mqtt://127.0.0.1:{}", proxy.port)),
        config_toml: Some("[mqtt]\nreconnect_min_ms = 100\nreconnect_max_ms = 500\n".into()),
        ..Default::default()
    });
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);

    const N: usize = 150;
    let mut acked = BTreeSet::new();
    for i in 0..N {
        if i == 50 {
            // The broker stops (SIGTERM) while the terminal keeps reporting.
            proxy.cut();
            tokio::task::block_in_place(|| m.stop());
            assert!(vgate.wait_log("MQTT connection lost", Duration::from_secs(10)));
        }
        if i == 100 {
            tokio::task::block_in_place(|| m.restart());
            tokio::time::timeout(Duration::from_secs(20), resubscribed.recv())
                .await
                .expect("platform back");
            proxy.restore();
        }
        let serial = t
            .send(&jt808::Message::Location(
                Fix {
                    latitude: 22.5 + i as f64 * 1e-4,
                    ..Fix::default()
                }
                .report(),
            ))
            .await
            .unwrap();
        if let Ok(0) = t.general_answer_for(serial).await {
            acked.insert(u64::from(serial));
        }
    }
    assert_eq!(
        acked.len(),
        N,
        "the spool makes every frame durable while the broker is away"
    );
    let seen = collect(&mut rx, N, Duration::from_secs(30)).await;
    let missing: Vec<_> = acked.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "lost {} acknowledged events: {missing:?}",
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_acknowledged_is_lost_when_vgate_is_killed_mid_stream_and_restarted() {
    let Some(m) = Mosquitto::start() else { return };
    let phone = "013600000002";
    let mut rx = durable_subscriber(
        m.port,
        "platform-faults-2",
        &format!("vgate/v1/{phone}/location"),
    )
    .await;
    let opts = VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    };
    let mut vgate = Vgate::start(opts.clone());
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    let mut acked = BTreeSet::new();
    for i in 0..100 {
        let serial = t
            .send(&jt808::Message::Location(
                Fix {
                    latitude: 22.5 + i as f64 * 1e-4,
                    ..Fix::default()
                }
                .report(),
            ))
            .await
            .unwrap();
        // Only what the terminal was told arrived counts; the last frames may be cut by the kill.
        if i == 60 {
            vgate.kill();
            break;
        }
        if let Ok(0) = t.general_answer_for(serial).await {
            acked.insert(u64::from(serial));
        }
    }
    assert!(acked.len() >= 50);
    let dir = std::mem::replace(&mut vgate.data_dir, tempfile::tempdir().unwrap());
    let _vgate = Vgate::start_in(opts, dir);
    let seen = collect(&mut rx, acked.len(), Duration::from_secs(30)).await;
    let missing: Vec<_> = acked.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "lost {} acknowledged events: {missing:?}",
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_arrives_when_the_broker_is_unreachable_mid_stream() {
    let Some(m) = Mosquitto::start() else { return };
    let phone = "013600000003";
    // The platform stays connected to the broker; only vgate's path to it is cut.
    let mut rx = durable_subscriber(
        m.port,
        "platform-faults-3",
        &format!("vgate/v1/{phone}/location"),
    )
    .await;
    let proxy = Outage::start(m.port).await;
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(format!("mqtt://127.0.0.1:{}", proxy.port)),
        config_toml: Some("[mqtt]\nreconnect_min_ms = 100\nreconnect_max_ms = 500\n".into()),
        ..Default::default()
    });
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    const N: usize = 150;
    let mut acked = BTreeSet::new();
    for i in 0..N {
        if i == 50 {
            proxy.cut();
            assert!(
                vgate.wait_log("MQTT connection lost", Duration::from_secs(10)),
                "vgate noticed the outage"
            );
        }
        if i == 100 {
            proxy.restore();
        }
        let serial = t
            .send(&jt808::Message::Location(
                Fix {
                    latitude: 22.5 + i as f64 * 1e-4,
                    ..Fix::default()
                }
                .report(),
            ))
            .await
            .unwrap();
        if let Ok(0) = t.general_answer_for(serial).await {
            acked.insert(u64::from(serial));
        }
    }
    assert_eq!(
        acked.len(),
        N,
        "the spool makes every frame durable while the broker is away"
    );
    let seen = collect(&mut rx, N, Duration::from_secs(30)).await;
    let missing: Vec<_> = acked.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "lost {} acknowledged events: {missing:?}",
        missing.len()
    );
}
