//! Store-and-forward against a real mosquitto: publishes made while the broker is down are
//! spooled (their `Delivery` resolves), then replayed in order with their event ids when the
//! broker is back, after a reconnect and after a SIGKILL of the process that spooled them.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{until, Mosquitto, Subscriber, HANG_GUARD};
use mqtt_bridge::{Bridge, MqttConfig, SpoolConfig, WhenFull};
use rumqttc::Publish;
use tokio::sync::mpsc;

macro_rules! need_mosquitto {
    ($name:literal) => {
        if !common::mosquitto_available($name) {
            return;
        }
    };
}

const VEHICLES: [&str; 3] = ["013800138000", "013800138001", "LSVAB1234C5678901"];

/// A bridge config for `url` with a spool in `dir`, over one connection: these tests are
/// about one spool (`tests/lanes.rs` has the spools of several lanes).
fn spooled(url: &str, dir: &Path) -> MqttConfig {
    MqttConfig {
        connections: 1,
        spool: SpoolConfig {
            dir: Some(dir.to_owned()),
            ..SpoolConfig::default()
        },
        shutdown_timeout_s: 2,
        ..common::external(url)
    }
}

/// Publishes `n` login events round-robin over [`VEHICLES`], awaiting each `Delivery`
/// (bounded: with the broker down it must resolve from the spool, not from a PUBACK).
/// Returns (vehicle, event_id) in publish order.
async fn publish_spooled(bridge: &Bridge, n: usize) -> Vec<(String, String)> {
    let publisher = bridge.publisher();
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        let vid = VEHICLES[i % VEHICLES.len()];
        let ev = common::login_event(vid);
        let d = publisher.publish_event(&ev).await.expect("queued");
        tokio::time::timeout(Duration::from_secs(5), d)
            .await
            .expect("durable (spooled) with the broker down")
            .expect("accepted");
        sent.push((vid.to_owned(), ev.event_id.to_string()));
    }
    sent
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

/// A platform client with a persistent session (clean_session false): the broker queues
/// what is published while it is away, including across a broker restart with persistence.
struct PersistentSubscriber {
    rx: mpsc::Receiver<Publish>,
}

impl PersistentSubscriber {
    async fn connect(port: u16, filter: &str) -> PersistentSubscriber {
        PersistentSubscriber {
            rx: common::persistent_subscriber(port, filter).await,
        }
    }

    async fn next(&mut self) -> Publish {
        tokio::time::timeout(HANG_GUARD, self.rx.recv())
            .await
            .expect("a message before the hang guard")
            .expect("subscriber alive")
    }

    async fn take(&mut self, n: usize) -> Vec<(String, String)> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            got.push(ident(&self.next().await));
        }
        got
    }
}

#[tokio::test]
async fn events_published_while_the_broker_is_down_are_spooled_then_replayed_in_order() {
    need_mosquitto!("events_published_while_the_broker_is_down_are_spooled");
    let started = Instant::now();
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_persistent_at(port, data.path());
    let bridge = Bridge::start(&spooled(&m.url(), spool.path()), "n", "vgate")
        .await
        .expect("bridge starts");
    assert_eq!(bridge.spooled(), Some(0));
    let mut sub = PersistentSubscriber::connect(port, "vgate/v1/+/+").await;

    m.terminate();
    until("the bridge sees the broker gone", || !bridge.connected()).await;
    const N: usize = 150;
    let sent = publish_spooled(&bridge, N).await;
    assert_eq!(bridge.spooled(), Some(N as u64));

    let _m = Mosquitto::start_persistent_at(port, data.path());
    let got = sub.take(N).await;
    assert_eq!(
        got, sent,
        "every event once, in publish order, same event_id"
    );
    until("the spool drains after the PUBACKs", || {
        bridge.spooled() == Some(0)
    })
    .await;

    // Back to direct publishing: the next event goes straight through.
    let ev = common::login_event(VEHICLES[0]);
    let d = bridge.publisher().publish_event(&ev).await.expect("queued");
    tokio::time::timeout(HANG_GUARD, d)
        .await
        .expect("in time")
        .expect("delivered");
    assert_eq!(
        ident(&sub.next().await),
        (VEHICLES[0].to_owned(), ev.event_id.to_string())
    );
    assert_eq!(bridge.spooled(), Some(0));
    bridge.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// The child half of the crash test: runs only when the parent sets the environment.
#[tokio::test]
async fn spool_crash_child() {
    let (Ok(port), Ok(dir)) = (
        std::env::var("VGATE_SPOOL_CHILD_PORT"),
        std::env::var("VGATE_SPOOL_CHILD_DIR"),
    ) else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{port}");
    let bridge = Bridge::start(&spooled(&url, Path::new(&dir)), "n", "vgate")
        .await
        .expect("child bridge starts");
    println!("child: ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("go");
    until("the child bridge sees the broker gone", || {
        !bridge.connected()
    })
    .await;
    for (vid, id) in publish_spooled(&bridge, 40).await {
        println!("child: event {vid} {id}");
    }
    println!("child: spooled");
    // Killed here (SIGKILL) by the parent, before any shutdown.
    tokio::time::sleep(HANG_GUARD).await;
    panic!("the parent did not kill the child");
}

#[tokio::test]
async fn a_sigkilled_gateway_replays_its_spool_at_the_next_start() {
    need_mosquitto!("a_sigkilled_gateway_replays_its_spool");
    let started = Instant::now();
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "spool_crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VGATE_SPOOL_CHILD_PORT", port.to_string())
        .env("VGATE_SPOOL_CHILD_DIR", spool.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_line = move || -> String {
        loop {
            let l = lines
                .next()
                .expect("the child talks before it ends")
                .expect("utf-8");
            // libtest may print "test spool_crash_child ... " before the first line.
            if let Some(at) = l.find("child: ") {
                return l[at + "child: ".len()..].to_owned();
            }
        }
    };
    assert_eq!(next_line(), "ready");
    m.kill();
    writeln!(stdin, "go").expect("tell the child");
    let mut sent = Vec::new();
    loop {
        let l = next_line();
        if l == "spooled" {
            break;
        }
        let mut w = l.strip_prefix("event ").expect("an event line").split(' ');
        let (vid, id) = (w.next().expect("vid"), w.next().expect("id"));
        sent.push((vid.to_owned(), id.to_owned()));
    }
    assert_eq!(sent.len(), 40);
    child.kill().expect("SIGKILL the child");
    child.wait().expect("child reaped");

    let m = Mosquitto::start_at(port, None);
    let mut sub = Subscriber::connect(port, &["vgate/v1/+/+"]).await;
    let bridge = Bridge::start(&spooled(&m.url(), spool.path()), "n", "vgate")
        .await
        .expect("bridge restarts on the spool");
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(ident(&sub.next().await));
    }
    assert_eq!(
        got, sent,
        "every acknowledged event, in order, same event_id"
    );
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    bridge.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_full_spool_with_drop_oldest_keeps_the_newest_events_in_order() {
    need_mosquitto!("a_full_spool_with_drop_oldest");
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_persistent_at(port, data.path());
    let mut cfg = spooled(&m.url(), spool.path());
    cfg.spool.max_bytes = 4000;
    cfg.spool.when_full = WhenFull::DropOldest;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    let mut sub = PersistentSubscriber::connect(port, "vgate/v1/+/+").await;
    m.terminate();
    until("the bridge sees the broker gone", || !bridge.connected()).await;
    const N: usize = 40;
    let sent = publish_spooled(&bridge, N).await;
    let kept = bridge.spooled().expect("a spool") as usize;
    assert!(kept > 0 && kept < N, "{kept} of {N} kept in 4000 bytes");

    let _m = Mosquitto::start_persistent_at(port, data.path());
    let mut got = Vec::new();
    while got.last() != sent.last() {
        got.push(ident(&sub.next().await));
    }
    // The newest, in order. One older one may come first: the record the MQTT client had
    // already taken (it waits for the connection) before it was dropped from the spool.
    assert!(
        got.len() == kept || got.len() == kept + 1,
        "{} received, {kept} kept",
        got.len()
    );
    assert_eq!(
        got[got.len() - kept..],
        sent[N - kept..],
        "the newest, in order"
    );
    if got.len() > kept {
        assert!(sent[..N - kept].contains(&got[0]), "an older event");
    }
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_full_spool_with_backpressure_makes_publishers_wait_and_loses_nothing() {
    need_mosquitto!("a_full_spool_with_backpressure");
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_persistent_at(port, data.path());
    let mut cfg = spooled(&m.url(), spool.path());
    cfg.spool.max_bytes = 4000;
    cfg.queue_capacity = 2;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    let mut sub = PersistentSubscriber::connect(port, "vgate/v1/+/+").await;
    m.terminate();
    until("the bridge sees the broker gone", || !bridge.connected()).await;

    const N: usize = 60;
    let publisher = bridge.publisher();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let producer = tokio::spawn(async move {
        let mut sent = Vec::new();
        for i in 0..N {
            let vid = VEHICLES[i % VEHICLES.len()];
            let ev = common::login_event(vid);
            let d = publisher.publish_event(&ev).await.expect("queued");
            d.await.expect("accepted");
            counter.fetch_add(1, Ordering::SeqCst);
            sent.push((vid.to_owned(), ev.event_id.to_string()));
        }
        sent
    });
    // The spool fills, then the producer waits: nothing acknowledged beyond what fits.
    let spooled = || bridge.spooled().unwrap_or(0);
    until("the spool fills", || {
        spooled() > 0 && accepted.load(Ordering::SeqCst) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = accepted.load(Ordering::SeqCst);
    assert!(n < N, "the producer did not wait: {n} accepted");
    assert_eq!(n as u64, spooled(), "every accepted event is in the spool");
    assert!(!producer.is_finished());

    let _m = Mosquitto::start_persistent_at(port, data.path());
    let sent = tokio::time::timeout(HANG_GUARD, producer)
        .await
        .expect("the producer finishes once the broker is back")
        .expect("producer task");
    let got = sub.take(N).await;
    assert_eq!(got, sent, "all of them, in order");
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_with_the_broker_down_keeps_the_spool_for_the_next_bridge() {
    need_mosquitto!("shutdown_with_the_broker_down_keeps_the_spool");
    let started = Instant::now();
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let mut cfg = spooled(&m.url(), spool.path());
    cfg.shutdown_timeout_s = 1;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    m.kill();
    until("the bridge sees the broker gone", || !bridge.connected()).await;
    let sent = publish_spooled(&bridge, 10).await;
    tokio::time::timeout(HANG_GUARD, bridge.shutdown())
        .await
        .expect("shutdown ends with the broker down")
        .expect("clean shutdown");

    let m = Mosquitto::start_at(port, None);
    let mut sub = Subscriber::connect(port, &["vgate/v1/+/+", "vgate/gateway/n/status"]).await;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("the next bridge opens the same spool");
    let mut got = Vec::new();
    let mut statuses = Vec::new();
    while got.len() < sent.len() || statuses.last() != Some(&true) {
        let p = sub.next().await;
        if p.topic == "vgate/gateway/n/status" {
            statuses.push(common::json(&p)["online"] == true);
        } else {
            got.push(ident(&p));
        }
    }
    assert_eq!(got, sent);
    // The offline status spooled at shutdown is replayed before the new online one.
    assert!(statuses.ends_with(&[false, true]), "{statuses:?}");
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    bridge.shutdown().await.expect("clean shutdown");
    drop(m);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn with_a_spool_and_the_broker_up_the_usual_scenarios_hold() {
    need_mosquitto!("with_a_spool_and_the_broker_up");
    let m = Mosquitto::start_at(0, None);
    let dir = tempfile::tempdir().expect("dir");
    common::scenarios::event_arrives_with_exact_json(spooled(&m.url(), dir.path()), m.port).await;
    common::scenarios::gateway_status_is_online_then_offline(spooled(&m.url(), dir.path()), m.port)
        .await;
    let v5 = MqttConfig {
        protocol: mqtt_bridge::MqttProtocol::V5,
        ..spooled(&m.url(), dir.path())
    };
    common::scenarios::event_arrives_with_exact_json(v5.clone(), m.port).await;
    common::scenarios::commands_arrive_with_their_targets(v5, m.port).await;
}

#[tokio::test]
async fn with_a_spool_the_bridge_starts_while_the_broker_is_unreachable() {
    need_mosquitto!("with_a_spool_the_bridge_starts_while_the_broker_is_unreachable");
    let started = Instant::now();
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_persistent_at(port, data.path());
    let mut sub = PersistentSubscriber::connect(port, "vgate/v1/+/+").await;
    let url = m.url();
    m.terminate();

    let mut cfg = spooled(&url, spool.path());
    cfg.connect_timeout_s = 1;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("starts without the broker, on its spool");
    assert!(!bridge.connected());
    let sent = publish_spooled(&bridge, 20).await;

    let _m = Mosquitto::start_persistent_at(port, data.path());
    assert_eq!(sub.take(20).await, sent);
    until("the bridge connects", || bridge.connected()).await;
    let mut status = Subscriber::connect(port, &["vgate/gateway/n/status"]).await;
    assert_eq!(common::json(&status.next().await)["online"], true);
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    bridge.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // Without a spool an unreachable broker is still a start-up error.
    let cfg = MqttConfig {
        connect_timeout_s: 1,
        ..common::external(&format!("mqtt://127.0.0.1:{}", common::free_port()))
    };
    match Bridge::start(&cfg, "n", "vgate").await {
        Err(mqtt_bridge::BridgeError::Unreachable { .. }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publishing_through_two_broker_outages_keeps_every_event_in_order_per_vehicle() {
    need_mosquitto!("publishing_through_two_broker_outages");
    let started = Instant::now();
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let mut m = Some(Mosquitto::start_persistent_at(port, data.path()));
    // A small inflight window: the dispatcher waits for it while the broker is up (no spill),
    // and rumqttc's packet ids wrap and collide.
    let cfg = MqttConfig {
        inflight: 4,
        ..spooled(&format!("mqtt://127.0.0.1:{port}"), spool.path())
    };
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    let mut sub = PersistentSubscriber::connect(port, "vgate/v1/+/+").await;

    // One task per vehicle, as sessions are: each awaits its event's Delivery before the next.
    const VEHICLES_N: usize = 30;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut producers = Vec::new();
    for v in 0..VEHICLES_N {
        let publisher = bridge.publisher();
        let stop = stop.clone();
        producers.push(tokio::spawn(async move {
            let vid = format!("0138001380{v:02}");
            let mut ids = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let ev = common::login_event(&vid);
                let d = publisher.publish_event(&ev).await.expect("queued");
                tokio::time::timeout(HANG_GUARD, d)
                    .await
                    .expect("durable in time")
                    .expect("accepted");
                ids.push(ev.event_id.to_string());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (vid, ids)
        }));
    }
    let mut spooled_during_outages = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        m.take().expect("running").terminate();
        tokio::time::sleep(Duration::from_millis(300)).await;
        spooled_during_outages.push(bridge.spooled().expect("a spool"));
        m = Some(Mosquitto::start_persistent_at(port, data.path()));
    }
    // The vehicles whose events were not in flight kept publishing, into the spool.
    assert!(
        spooled_during_outages.iter().all(|&n| n > 0),
        "{spooled_during_outages:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let mut sent = std::collections::HashMap::new();
    for p in producers {
        let (vid, ids) = tokio::time::timeout(HANG_GUARD, p)
            .await
            .expect("producers finish")
            .expect("producer task");
        sent.insert(vid, ids);
    }

    // QoS 1 across outages may duplicate; the first copy of each event is in order.
    let total: usize = sent.values().map(Vec::len).sum();
    let mut seen = std::collections::HashSet::new();
    let mut got: std::collections::HashMap<String, Vec<String>> = Default::default();
    while seen.len() < total {
        let (vid, id) = ident(&sub.next().await);
        if seen.insert(id.clone()) {
            got.entry(vid).or_default().push(id);
        }
    }
    assert_eq!(got, sent, "every event, in order per vehicle");
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    bridge.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_publish_in_flight_when_the_connection_breaks_is_rescued_to_the_spool() {
    need_mosquitto!("a_publish_in_flight_when_the_connection_breaks");
    let started = Instant::now();
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let mut cfg = spooled(&m.url(), spool.path());
    cfg.shutdown_timeout_s = 1;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");

    // A frozen broker: the connection stays up, no PUBACK comes. The publish goes direct.
    m.signal("STOP");
    let ev = common::login_event(VEHICLES[0]);
    let mut d = bridge.publisher().publish_event(&ev).await.expect("queued");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut d)
            .await
            .is_err(),
        "no PUBACK from a frozen broker"
    );
    assert_eq!(bridge.spooled(), Some(0));
    // The connection breaks: the in-flight publish is copied to the spool, its Delivery
    // resolves without waiting for a broker.
    m.kill();
    tokio::time::timeout(Duration::from_secs(5), d)
        .await
        .expect("resolved while the broker is down")
        .expect("durable in the spool");
    assert_eq!(bridge.spooled(), Some(1));
    bridge.shutdown().await.expect("shutdown");

    // The copy is what the next bridge delivers.
    let m = Mosquitto::start_at(port, None);
    let mut sub = Subscriber::connect(port, &["vgate/v1/+/+"]).await;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("the next bridge starts on the spool");
    assert_eq!(
        ident(&sub.next().await),
        (VEHICLES[0].to_owned(), ev.event_id.to_string())
    );
    until("the spool drains", || bridge.spooled() == Some(0)).await;
    bridge.shutdown().await.expect("clean shutdown");
    drop(m);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// The stuck-broker test's `mqtt.spool.spill_after_ms` (not the default 1 s, so the test also
/// shows the key is honoured): how long a connected broker may take nothing before publishes
/// are spilled to the spool.
const SPILL_AFTER: Duration = Duration::from_millis(600);

/// The value of the sample line starting with `series ` in a Prometheus rendering.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The child half of the burst test: a process of its own, so that the metrics recorder it
/// installs counts the spool appends of this one bridge. Runs only when the parent sets the
/// environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_burst_child() {
    if std::env::var_os("VGATE_SPOOL_BURST_CHILD").is_none() {
        return;
    }
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("recorder installed");
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    // No queue limit towards the subscriber: mosquitto keeps all 20,000 for it.
    let m = Mosquitto::start_persistent_at(port, data.path());
    let bridge = Bridge::start(&spooled(&m.url(), spool.path()), "n", "vgate")
        .await
        .expect("bridge starts");
    let mut sub = Subscriber::connect(port, &["vgate/v1/+/+"]).await;

    // Far more publishers than the inflight window (100) and the feeder's channel hold.
    const TASKS: usize = 200;
    const EACH: usize = 100;
    let started = Instant::now();
    let collector = tokio::spawn(async move {
        let mut got: std::collections::HashMap<String, Vec<String>> = Default::default();
        for _ in 0..TASKS * EACH {
            let (vid, id) = ident(&sub.next().await);
            got.entry(vid).or_default().push(id);
        }
        got
    });
    let mut producers = Vec::new();
    for t in 0..TASKS {
        let publisher = bridge.publisher();
        producers.push(tokio::spawn(async move {
            let vid = format!("013800138{t:03}");
            let mut ids = Vec::with_capacity(EACH);
            for _ in 0..EACH {
                let ev = common::login_event(&vid);
                let d = publisher.publish_event(&ev).await.expect("queued");
                tokio::time::timeout(HANG_GUARD, d)
                    .await
                    .expect("delivered in time")
                    .expect("accepted");
                ids.push(ev.event_id.to_string());
            }
            (vid, ids)
        }));
    }
    let mut sent = std::collections::HashMap::new();
    for p in producers {
        let (vid, ids) = p.await.expect("producer task");
        sent.insert(vid, ids);
    }
    let elapsed = started.elapsed();
    let got = tokio::time::timeout(HANG_GUARD, collector)
        .await
        .expect("all received in time")
        .expect("collector task");
    assert!(got == sent, "every event once, in order per vehicle");
    let text = prometheus.render();
    let spooled = sample(&text, r#"vgate_spool_events_total{op="spooled"}"#).unwrap_or(0.0);
    println!(
        "child: burst {} delivered in {elapsed:?}, spooled {spooled}, connected {}",
        TASKS * EACH,
        bridge.connected()
    );
    assert_eq!(bridge.spooled(), Some(0));
    bridge.shutdown().await.expect("clean shutdown");
}

#[test]
fn a_burst_to_a_healthy_broker_goes_direct_with_nothing_spooled_and_in_order() {
    need_mosquitto!("a_burst_to_a_healthy_broker_goes_direct");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "spool_burst_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VGATE_SPOOL_BURST_CHILD", "1")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| Some(&l[l.find("child: burst ")?..]))
        .unwrap_or_else(|| panic!("no result line:\n{stdout}\n{stderr}"));
    println!("{line}");
    assert!(
        line.contains("spooled 0,") && line.contains("connected true"),
        "a healthy broker under a burst: backpressure, not the spool: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_but_stuck_broker_is_spilled_to_after_a_bound_and_everything_arrives() {
    need_mosquitto!("a_connected_but_stuck_broker_is_spilled_to_after_a_bound");
    let data = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_persistent_at(port, data.path());
    let mut cfg = MqttConfig {
        inflight: 10,
        ..spooled(&m.url(), spool.path())
    };
    cfg.spool.spill_after_ms = SPILL_AFTER.as_millis() as u64;
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    let mut sub = Subscriber::connect(port, &["vgate/v1/+/+"]).await;

    // Frozen: the TCP connection stays up (the keepalive is 30 s), no PUBACK comes.
    m.signal("STOP");
    // More vehicles than the inflight window and the feeder's channel hold, so that some
    // wait for room that never comes.
    const VEHICLES_N: usize = 40;
    const EACH: usize = 5;
    let bound = SPILL_AFTER + Duration::from_millis(2500);
    let started = Instant::now();
    let mut producers = Vec::new();
    for v in 0..VEHICLES_N {
        let publisher = bridge.publisher();
        producers.push(tokio::spawn(async move {
            let vid = format!("0138001380{v:02}");
            let mut ids = Vec::new();
            let mut slowest = Duration::ZERO;
            for _ in 0..EACH {
                let ev = common::login_event(&vid);
                let t = Instant::now();
                let d = publisher.publish_event(&ev).await.expect("queued");
                tokio::time::timeout(bound, d)
                    .await
                    .expect("durable (rescued or spooled) within the bound, broker frozen")
                    .expect("accepted");
                slowest = slowest.max(t.elapsed());
                ids.push(ev.event_id.to_string());
            }
            (vid, ids, slowest)
        }));
    }
    let mut sent = std::collections::HashMap::new();
    let mut slowest = Duration::ZERO;
    for p in producers {
        let (vid, ids, s) = tokio::time::timeout(HANG_GUARD, p)
            .await
            .expect("producers finish")
            .expect("producer task");
        slowest = slowest.max(s);
        sent.insert(vid, ids);
    }
    let elapsed = started.elapsed();
    assert!(elapsed < bound, "all durable in {elapsed:?}");
    // Nothing spilled before the bound: the first publishes waited for the broker.
    assert!(
        slowest >= SPILL_AFTER - Duration::from_millis(100),
        "slowest {slowest:?}"
    );
    assert!(
        bridge.connected(),
        "spilled while connected, not after a keepalive timeout"
    );
    let spooled = bridge.spooled().expect("a spool");
    assert!(
        spooled >= (VEHICLES_N * EACH) as u64,
        "everything is in the spool (rescued copies included): {spooled}"
    );

    m.signal("CONT");
    // The rescued publishes arrive twice (original and spooled copy); first copies in order.
    let total: usize = sent.values().map(Vec::len).sum();
    let mut seen = std::collections::HashSet::new();
    let mut got: std::collections::HashMap<String, Vec<String>> = Default::default();
    while seen.len() < total {
        let (vid, id) = ident(&sub.next().await);
        if seen.insert(id.clone()) {
            got.entry(vid).or_default().push(id);
        }
    }
    assert_eq!(got, sent, "every event, in order per vehicle");
    until("the spool drains", || bridge.spooled() == Some(0)).await;

    // Back to direct: a publish resolves on its PUBACK, nothing spooled.
    let ev = common::login_event(VEHICLES[0]);
    let d = bridge.publisher().publish_event(&ev).await.expect("queued");
    tokio::time::timeout(HANG_GUARD, d)
        .await
        .expect("in time")
        .expect("delivered");
    assert_eq!(bridge.spooled(), Some(0));
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_a_steady_load_gets_back_to_publishing_directly() {
    need_mosquitto!("after_an_outage_a_steady_load_gets_back_to_publishing_directly");
    let spool = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    let m = Mosquitto::start_at(port, None);
    let bridge = Bridge::start(&spooled(&m.url(), spool.path()), "n", "vgate")
        .await
        .expect("bridge starts");
    m.kill();
    until("the bridge sees the broker gone", || !bridge.connected()).await;

    // A steady load, more publishers than the inflight window and the dispatcher's batch
    // (256), each awaiting its Delivery: faster than the replay.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let published = Arc::new(AtomicUsize::new(0));
    let mut producers = Vec::new();
    for v in 0..600 {
        let (publisher, stop, published) = (bridge.publisher(), stop.clone(), published.clone());
        producers.push(tokio::spawn(async move {
            let vid = format!("013800138{v:03}");
            while !stop.load(Ordering::SeqCst) {
                let ev = common::login_event(&vid);
                let d = publisher.publish_event(&ev).await.expect("queued");
                tokio::time::timeout(HANG_GUARD, d)
                    .await
                    .expect("durable in time")
                    .expect("accepted");
                published.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    until("publishes are spooled during the outage", || {
        bridge.spooled().unwrap_or(0) > 500
    })
    .await;

    let _m = Mosquitto::start_at(port, None);
    until("the spool drains under the load", || {
        bridge.spooled() == Some(0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Back to direct: the load goes on, and nothing more goes through the spool.
    let before = published.load(Ordering::SeqCst);
    let mut spooled_samples = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        spooled_samples += usize::from(bridge.spooled() != Some(0));
    }
    let during = published.load(Ordering::SeqCst) - before;
    assert!(during > 100, "the load went on: {during} published");
    assert_eq!(
        spooled_samples, 0,
        "a steady load to a healthy broker is published directly, not spooled"
    );
    stop.store(true, Ordering::SeqCst);
    for p in producers {
        tokio::time::timeout(HANG_GUARD, p)
            .await
            .expect("producers finish")
            .expect("producer task");
    }
    bridge.shutdown().await.expect("clean shutdown");
}
