//! A platform sending commands in one burst, one MQTT message each (a configuration push to a
//! fleet), while vehicles keep reporting: every command of the burst must end `queued`
//! (offline vehicle) or `acked` (online one), and the online vehicles' uplink must keep
//! flowing throughout.
//!
//! Before the fix, the bridge's event loop awaited room in the gateway's command channel; the
//! dispatcher, to free that room, needed the same event loop (to acknowledge the commands it
//! had stored and to publish their `queued` results), so a burst larger than the channel
//! stopped the command path and the uplink of that MQTT connection for good.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway::simulate::jt808::Fix;
use jt808::Version;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::{free_port, Mosquitto, Subscriber, Vgate, VgateOptions};

/// How long the whole burst may take before the test gives up (a stall, not a speed check).
const DEADLINE: Duration = Duration::from_secs(120);
/// How long one location report may wait for its 0x8001 during the burst.
const REPORT_WAIT: Duration = Duration::from_secs(15);

struct Reporting {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

/// `n` terminals online, each reporting every 100 ms and answering the commands it gets.
async fn reporting_terminals(vgate: &Vgate, phones: &[String]) -> Reporting {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for phone in phones {
        let mut t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await;
        let (stop, acked) = (stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut fix = Fix::default();
            while !stop.load(Ordering::SeqCst) {
                fix.latitude += 0.0001;
                match tokio::time::timeout(REPORT_WAIT, t.report(&fix)).await {
                    Ok(Ok(0)) => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Ok(r)) => return Err(format!("{}: report answered {r}", t.phone())),
                    Ok(Err(e)) => return Err(format!("{}: {e}", t.phone())),
                    Err(_) => {
                        return Err(format!(
                            "{}: a report waited more than {REPORT_WAIT:?} for its 0x8001",
                            t.phone()
                        ))
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Answer what is still coming (commands sent late in the burst) until told to stop.
            Ok(())
        }));
    }
    Reporting { stop, acked, tasks }
}

/// A platform client publishing at QoS 1 as fast as the broker takes it.
async fn platform_publisher(port: u16) -> AsyncClient {
    let mut opts = MqttOptions::new(format!("burst-pub-{}", free_port()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(200);
    let (client, mut ev) = AsyncClient::new(opts, 1000);
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::Disconnect)) => return,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    client
}

/// Publishes `offline` commands to distinct offline vehicles and `per_online` commands to each
/// online phone, interleaved, all at once; waits until every offline one is `queued` and every
/// online one `acked`, while the online terminals keep reporting.
async fn burst(port: u16, vgate: &Vgate, offline: usize, online: usize, per_online: usize) {
    let phones: Vec<String> = (0..online).map(|i| format!("0137{i:08}")).collect();
    // QoS 0: with QoS 1 the broker's inflight window towards this test client (20 for
    // Mosquitto) paced the results, not vgate.
    let mut results =
        Subscriber::connect_with(port, &["vgate/v1/+/cmd/result"], QoS::AtMostOnce).await;
    let mut locations = Subscriber::connect(port, &["vgate/v1/+/location"]).await;
    let reporting = reporting_terminals(vgate, &phones).await;
    let publisher = platform_publisher(port).await;

    let mut want_queued: HashSet<(String, String)> = HashSet::new();
    let mut want_acked: HashSet<(String, String)> = HashSet::new();
    let mut plan = Vec::with_capacity(offline + online * per_online);
    for i in 0..offline {
        plan.push((format!("0138{i:08}"), format!("b-{i}"), false));
    }
    for (j, phone) in phones.iter().enumerate() {
        for k in 0..per_online {
            // Spread the online ones through the burst.
            let at = (k * online + j) * plan.len().max(1) / (online * per_online).max(1);
            plan.insert(
                at.min(plan.len()),
                (phone.clone(), format!("o-{j}-{k}"), true),
            );
        }
    }
    let publishing = {
        let publisher = publisher.clone();
        let plan = plan.clone();
        tokio::spawn(async move {
            for (vehicle, id, _) in plan {
                let json = format!(r#"{{"id":"{id}","type":"text","params":{{"text":"burst"}}}}"#);
                publisher
                    .publish(
                        format!("vgate/v1/{vehicle}/cmd"),
                        QoS::AtLeastOnce,
                        false,
                        json,
                    )
                    .await
                    .expect("publish");
            }
        })
    };
    for (vehicle, id, is_online) in plan {
        if is_online {
            want_acked.insert((vehicle, id));
        } else {
            want_queued.insert((vehicle, id));
        }
    }

    let started = tokio::time::Instant::now();
    let deadline = started + DEADLINE;
    let mut statuses: HashMap<String, u64> = HashMap::new();
    let mut locations_seen = 0u64;
    let mut last_progress = started;
    while !want_queued.is_empty() || !want_acked.is_empty() {
        let got = tokio::time::timeout_at(deadline, results.next_on("/cmd/result", DEADLINE)).await;
        let Ok(r) = got else {
            panic!(
                "after {:?}: {} commands never queued, {} never acked; results by status {statuses:?}; \
                 {} reports acknowledged",
                started.elapsed(),
                want_queued.len(),
                want_acked.len(),
                reporting.acked.load(Ordering::SeqCst)
            );
        };
        let vehicle = r.json["vehicle_id"].as_str().unwrap_or_default().to_owned();
        let id = r.json["data"]["id"].as_str().unwrap_or_default().to_owned();
        let status = r.json["data"]["status"].as_str().unwrap_or_default();
        *statuses.entry(status.to_owned()).or_default() += 1;
        match status {
            "queued" => {
                want_queued.remove(&(vehicle, id));
            }
            "acked" => {
                want_acked.remove(&(vehicle, id));
            }
            "sent" => {}
            other => panic!("unexpected result {other}: {:?}", r.json),
        }
        // The uplink flows while the commands pour in: location events keep arriving.
        locations_seen += locations.take_ready() as u64;
        if last_progress.elapsed() > Duration::from_secs(5) {
            last_progress = tokio::time::Instant::now();
            eprintln!(
                "{:?}: {statuses:?}, {} queued and {} acked to go, {locations_seen} locations",
                started.elapsed(),
                want_queued.len(),
                want_acked.len()
            );
        }
    }
    let took = started.elapsed();
    publishing.await.expect("publishing finished");
    // Every online terminal kept being answered during the whole burst (a report waiting more
    // than REPORT_WAIT fails its task), and their events reached the platform.
    reporting.stop.store(true, Ordering::SeqCst);
    for t in reporting.tasks {
        t.await
            .expect("terminal task")
            .expect("uplink kept flowing");
    }
    locations_seen += locations.drain(Duration::from_millis(500)).await.len() as u64;
    let acked = reporting.acked.load(Ordering::SeqCst);
    assert!(
        acked > 0 && locations_seen > 0,
        "no uplink during the burst"
    );
    eprintln!(
        "burst of {offline} offline + {} online commands: all queued/acked in {took:?} \
         ({:.0} commands/s); {acked} reports acknowledged, {locations_seen} location events",
        online * per_online,
        (offline + online * per_online) as f64 / took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_50000_commands_through_mosquitto_is_all_queued_and_the_uplink_keeps_flowing() {
    let Some(m) = Mosquitto::start() else { return };
    // One MQTT connection: commands, results and the vehicles' events all share it.
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some("[mqtt]\nconnections = 1\n".into()),
        ..Default::default()
    });
    assert!(vgate.wait_log("MQTT connected", Duration::from_secs(10)));
    burst(m.port, &vgate, 50_000, 20, 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_5000_commands_through_mosquitto_with_default_lanes_is_all_queued() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    assert!(vgate.wait_log("MQTT connected", Duration::from_secs(10)));
    burst(m.port, &vgate, 5_000, 20, 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_50000_commands_through_the_embedded_broker_is_all_queued_and_the_uplink_keeps_flowing(
) {
    let vgate = Vgate::start(VgateOptions::default());
    burst(vgate.mqtt_port().expect("embedded"), &vgate, 50_000, 20, 10).await;
}
