//! The MQTT side of `scripts/bench.sh`: a publisher of equivalent messages straight to the
//! broker (the baseline vgate is compared with) and a subscriber that counts messages and
//! measures latency from an event's `received_at` (set when vgate decoded the frame) to its
//! arrival at the platform.
//!
//! ```text
//! bench_mqtt publish --port P --count N [--size B] [--clients C] [--ids V] [--inflight I]
//!                    [--rate R]
//! bench_mqtt count   --port P --filter F --count N [--timeout S] [--sample FILE] -> JSON
//! bench_mqtt commands --port P --count N [--first-id X] [--ids V] [--ids-file F] [--status S]
//!                     -> JSON
//! ```
//!
//! `commands` is a platform pushing N commands at once, one QoS 1 message each (a text to
//! vehicle `X + i % V`, default V = N: N distinct vehicles; with `--ids-file` to the vehicle
//! ids of that file, one a line, in turn), and counting the results with status S (default
//! `queued`) on `vgate/v1/+/cmd/result`: the command intake rate, first publish to last
//! result, and the latency of each command from its publish to its result (p50, p99, max).
//!
//! `publish` sends on `direct/v1/{12-digit id}/location` (the shape of vgate's
//! `vgate/v1/{vehicle}/location`, V distinct ids like V simulated vehicles) payloads of B
//! bytes, by default [`VGATE_LOCATION_BYTES`], the size of the location event vgate
//! publishes for a simulated terminal's report (`count` measures it: `payload_bytes_avg`).
//!
//! With `--rate R` the publishers are open loop (R messages per second in all, on a 1 ms
//! tick) and every payload carries `received_at` (the time it was handed to the client), so
//! `count` measures the broker path alone: the baseline of vgate's latency step.
//!
//! `count` prints one JSON line: messages, seconds from the first to the last message, rate,
//! mean payload size, and latency percentiles in ms over one message in 16 (only payloads
//! carrying `received_at`); `--sample FILE` writes the first message's topic and payload.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// The size in bytes of vgate's location event JSON for a report of `vgate simulate`
/// (measured with `count --sample` on `vgate/v1/+/location`: 784 bytes on average for 400,000
/// reports of 200 vehicles, 774 for 20,000 of 20 vehicles: a JSON
/// object with the position, the status bits by name and the odometer; it varies by a few
/// bytes with the numbers in it).
const VGATE_LOCATION_BYTES: u64 = 784;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(args: &[String], name: &str, default: u64) -> u64 {
    arg(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options(id: &str, port: u16, inflight: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_inflight(inflight.max(1));
    o
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = num(&args, "--port", 1883) as u16;
    match args.get(1).map(String::as_str) {
        Some("publish") => publish(&args, port).await,
        Some("count") => count(&args, port).await,
        Some("commands") => commands(&args, port).await,
        _ => {
            eprintln!("usage: bench_mqtt publish|count --port P ...");
            std::process::exit(2);
        }
    }
}

/// Publishes `count` QoS 1 messages of `size` bytes on `direct/v1/{id}/location` (`ids`
/// distinct ids) from `clients` connections, as fast as the broker acknowledges them (up to
/// `inflight`, default 1000, unacknowledged per connection).
async fn publish(args: &[String], port: u16) {
    let count = num(args, "--count", 100_000);
    let size = num(args, "--size", VGATE_LOCATION_BYTES) as usize;
    let clients = num(args, "--clients", 4).max(1);
    let ids = num(args, "--ids", 200).max(1);
    let inflight = num(args, "--inflight", 1000).min(u64::from(u16::MAX)) as u16;
    let payload = json_payload(size);
    // Open loop: messages per second per client, stamped.
    let rate = num(args, "--rate", 0) as f64 / clients as f64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let payload = payload.clone();
        let n = count / clients + u64::from(c < count % clients);
        tasks.push(tokio::spawn(async move {
            let (client, mut ev) = AsyncClient::new(
                options(
                    &format!("bench-pub-{c}-{}", std::process::id()),
                    port,
                    inflight,
                ),
                1000,
            );
            let pump = tokio::spawn(async move {
                let mut acked = 0u64;
                while acked < n {
                    match ev.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("publisher connection: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut i = 0u64;
            while i < n {
                // Closed loop: one at a time as the client takes them. Open loop: what is due.
                let due = if rate > 0.0 {
                    tick.tick().await;
                    let elapsed = started.elapsed().as_secs_f64();
                    ((elapsed * rate) as u64).min(n).saturating_sub(i)
                } else {
                    1
                };
                for _ in 0..due {
                    let topic = format!(
                        "direct/v1/{:012}/location",
                        13_800_000_000 + (i * clients + c) % ids
                    );
                    let body = if rate > 0.0 {
                        stamped(size)
                    } else {
                        payload.clone()
                    };
                    if client
                        .publish(topic, QoS::AtLeastOnce, false, body)
                        .await
                        .is_err()
                    {
                        i = n;
                        break;
                    }
                    i += 1;
                }
            }
            let _ = pump.await;
            let _ = client.disconnect().await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"published\":{count},\"payload_bytes\":{},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        payload.len(),
        count as f64 / secs
    );
}

/// Publishes `count` commands as fast as the broker takes them and waits for as many results
/// with the wanted status (see the module docs).
async fn commands(args: &[String], port: u16) {
    let count = num(args, "--count", 50_000);
    let first_id = num(args, "--first-id", 13_900_000_000);
    let ids = num(args, "--ids", count).max(1);
    let status = arg(args, "--status").unwrap_or_else(|| "queued".into());
    let idle = Duration::from_secs(num(args, "--timeout", 30));
    let want = format!(r#""status":"{status}""#);
    let listed: Option<Vec<String>> = arg(args, "--ids-file").map(|f| {
        std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("--ids-file {f}: {e}"))
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    });
    // When each command was handed to the client, microseconds from `started` (0: not yet).
    let sent_us: std::sync::Arc<Vec<std::sync::atomic::AtomicU64>> =
        std::sync::Arc::new((0..count).map(|_| Default::default()).collect());

    let (sub, mut sub_ev) = AsyncClient::new(
        options(&format!("bench-results-{}", std::process::id()), port, 1000),
        10_000,
    );
    sub.subscribe("vgate/v1/+/cmd/result", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    loop {
        match sub_ev.poll().await {
            Ok(Event::Incoming(Packet::SubAck(_))) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("subscriber: {e}");
                std::process::exit(1);
            }
        }
    }
    let (publisher, mut pub_ev) = AsyncClient::new(
        options(
            &format!("bench-commands-{}", std::process::id()),
            port,
            1000,
        ),
        1000,
    );
    tokio::spawn(async move {
        loop {
            if let Err(e) = pub_ev.poll().await {
                eprintln!("publisher connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let started = Instant::now();
    let stamps = sent_us.clone();
    let publishing = tokio::spawn(async move {
        for i in 0..count {
            let topic = match &listed {
                Some(l) if !l.is_empty() => {
                    format!("vgate/v1/{}/cmd", l[(i as usize) % l.len()])
                }
                _ => format!("vgate/v1/{:012}/cmd", first_id + i % ids),
            };
            if let Some(t) = stamps.get(i as usize) {
                t.store(
                    (started.elapsed().as_micros() as u64).max(1),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            let body = format!(r#"{{"id":"bench-{i}","type":"text","params":{{"text":"bench"}}}}"#);
            if publisher
                .publish(topic, QoS::AtLeastOnce, false, body)
                .await
                .is_err()
            {
                break;
            }
        }
        started.elapsed().as_secs_f64()
    });
    let mut got = 0u64;
    let mut latencies_us: Vec<u64> = Vec::with_capacity(count as usize);
    while got < count {
        match tokio::time::timeout(idle, sub_ev.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                if p.payload.windows(want.len()).any(|w| w == want.as_bytes()) {
                    got += 1;
                    let now = started.elapsed().as_micros() as u64;
                    if let Some(at) = command_index(&p.payload)
                        .and_then(|i| sent_us.get(i))
                        .map(|t| t.load(std::sync::atomic::Ordering::Relaxed))
                        .filter(|at| *at > 0)
                    {
                        latencies_us.push(now.saturating_sub(at));
                    }
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("subscriber: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => break,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let published_s = publishing.await.unwrap_or_default();
    latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        let i = ((latencies_us.len().max(1) - 1) as f64 * p).round() as usize;
        latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "{{\"commands\":{count},\"results\":{got},\"status\":\"{status}\",\"publish_seconds\":{published_s:.3},\"seconds\":{secs:.3},\"rate\":{:.0},\"latency_ms_p50\":{:.1},\"latency_ms_p99\":{:.1},\"latency_ms_max\":{:.1}}}",
        got as f64 / secs,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    if got < count {
        std::process::exit(1);
    }
}

/// The number `i` of a result's command id `bench-{i}`.
fn command_index(payload: &[u8]) -> Option<usize> {
    const KEY: &[u8] = br#""id":"bench-"#;
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload.get(at..)?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

/// [`json_payload`] with `received_at` set to now, as vgate's events carry it.
fn stamped(size: usize) -> Vec<u8> {
    let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    padded(
        &format!(r#"{{"protocol":"direct","type":"location","received_at":"{at}","pad":""#),
        size,
    )
}

/// A JSON object of `size` bytes (at least its fixed part): a location-like event padded
/// with a string, so the broker and the subscriber see the same size as from vgate.
fn json_payload(size: usize) -> Vec<u8> {
    padded(
        r#"{"protocol":"direct","type":"location","latitude":22.54,"longitude":114.05,"pad":""#,
        size,
    )
}

/// `head`, then `x`s and `"}` to make `size` bytes (or just `head"}` when that is longer).
fn padded(head: &str, size: usize) -> Vec<u8> {
    let tail = r#""}"#;
    let mut p = Vec::with_capacity(size.max(head.len() + tail.len()));
    p.extend_from_slice(head.as_bytes());
    p.resize(size.max(head.len() + tail.len()) - tail.len(), b'x');
    p.extend_from_slice(tail.as_bytes());
    p
}

/// Counts messages on `filter` until `count` arrived or `timeout` seconds passed without one.
async fn count(args: &[String], port: u16) {
    let filter = arg(args, "--filter").unwrap_or_else(|| "#".into());
    let count = num(args, "--count", 100_000);
    let idle = Duration::from_secs(num(args, "--timeout", 10));
    let (client, mut ev) = AsyncClient::new(
        options(&format!("bench-sub-{}", std::process::id()), port, 1000),
        10_000,
    );
    client
        .subscribe(&filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let mut got = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut latencies: Vec<f64> = Vec::new();
    // The worst sampled latency of each second (from the first message): a stall shows as
    // one bad second, a slow path as all of them.
    let mut worst_by_second: Vec<f64> = Vec::new();
    // Latencies after the first second: the start (every terminal logging in and starting
    // at once) is a warm-up burst, not the steady rate a latency figure is about.
    let mut steady: Vec<f64> = Vec::new();
    let mut payload_bytes = 0u64;
    // `--sample FILE`: the first message's topic and payload, to look at.
    let mut sample = arg(args, "--sample");
    // Tell the script we are subscribed.
    eprintln!("subscribed {filter}");
    while got < count {
        match tokio::time::timeout(idle, ev.poll()).await {
            Err(_) => break,
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                got += 1;
                payload_bytes += p.payload.len() as u64;
                if let Some(path) = sample.take() {
                    let mut text = format!("{}\n", p.topic).into_bytes();
                    text.extend_from_slice(&p.payload);
                    if let Err(e) = std::fs::write(&path, text) {
                        eprintln!("{path}: {e}");
                    }
                }
                // Sample 1 message in 16: parsing every event's JSON would make the counting
                // subscriber, not vgate, the bottleneck it measures.
                if got.is_multiple_of(16) {
                    if let Some(ms) = latency_ms(&p.payload) {
                        latencies.push(ms);
                        let second = first.map_or(0, |f| now.duration_since(f).as_secs()) as usize;
                        if worst_by_second.len() <= second {
                            worst_by_second.resize(second + 1, 0.0);
                        }
                        worst_by_second[second] = worst_by_second[second].max(ms);
                        if second >= 1 {
                            steady.push(ms);
                        }
                    }
                }
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => eprintln!("suback"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("subscriber connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let secs = first
        .map(|f| last.duration_since(f).as_secs_f64())
        .unwrap_or(0.0)
        .max(1e-9);
    latencies.sort_by(f64::total_cmp);
    steady.sort_by(f64::total_cmp);
    let pct_of = |v: &[f64], p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    let pct = |p: f64| pct_of(&latencies, p);
    println!(
        "{{\"received\":{got},\"seconds\":{secs:.3},\"rate\":{:.0},\"payload_bytes_avg\":{:.1},\"latency_samples\":{},\"latency_ms_p50\":{:.2},\"latency_ms_p99\":{:.2},\"latency_ms_max\":{:.2},\"latency_ms_p50_after_1s\":{:.2},\"latency_ms_p99_after_1s\":{:.2},\"latency_ms_worst_by_second\":[{}]}}",
        got as f64 / secs,
        payload_bytes as f64 / got.max(1) as f64,
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        pct_of(&steady, 0.5),
        pct_of(&steady, 0.99),
        worst_by_second
            .iter()
            .map(|ms| format!("{ms:.1}"))
            .collect::<Vec<_>>()
            .join(",")
    );
}

/// Milliseconds from the event's `received_at` to now (wall clock; same machine).
fn latency_ms(payload: &[u8]) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let at = chrono::DateTime::parse_from_rfc3339(v.get("received_at")?.as_str()?).ok()?;
    let ms =
        (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1000.0;
    Some(ms)
}
