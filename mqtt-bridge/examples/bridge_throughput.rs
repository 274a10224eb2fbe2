//! Throughput of the bridge with a spool against a local mosquitto: `TASKS` tasks publish
//! `EVENTS` publishes in all, each awaiting its `Delivery` before the next (as vehicle
//! sessions do), and the run reports publishes/s and how many went through the spool.
//!
//! ```sh
//! PATH=$PATH:/usr/sbin cargo run --release -p mqtt-bridge --example bridge_throughput -- [EVENTS] [TASKS]
//! ```
//!
//! Starts its own mosquitto (`/usr/sbin/mosquitto`, or `$MOSQUITTO`) on a free port, with no
//! queue or inflight limits and no persistence.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use mqtt_bridge::{Bridge, MqttConfig, Qos, SpoolConfig};

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map_or(Ok(200_000), |a| a.parse())?;
    let tasks: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n\
             max_inflight_messages 0\npersistence false\n"
        ),
    )?;
    let mosquitto = std::env::var("MOSQUITTO").unwrap_or_else(|_| "/usr/sbin/mosquitto".into());
    let mut broker = Command::new(mosquitto)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("mosquitto does not listen".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let cfg = MqttConfig {
        url: Some(format!("mqtt://127.0.0.1:{port}")),
        spool: SpoolConfig {
            dir: Some(dir.path().join("spool")),
            ..SpoolConfig::default()
        },
        ..MqttConfig::default()
    };
    let bridge = Bridge::start(&cfg, "bench", "vgate").await?;
    let payload = bytes::Bytes::from(vec![b'x'; 200]);
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let publisher = bridge.publisher();
        let payload = payload.clone();
        let n = events / tasks + usize::from(t < events % tasks);
        handles.push(tokio::spawn(async move {
            let topic = format!("vgate/v1/V{t:04}/telemetry");
            let mut latencies = Vec::with_capacity(n);
            for _ in 0..n {
                let q = Instant::now();
                let d = publisher
                    .publish_raw(&topic, payload.clone(), Qos::AtLeastOnce, false)
                    .await?;
                d.await?;
                latencies.push(q.elapsed());
            }
            Ok::<_, mqtt_bridge::BridgeError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(events);
    for h in handles {
        latencies.extend(h.await??);
    }
    let elapsed = t0.elapsed();
    latencies.sort_unstable();
    let ms = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let text = prometheus.render();
    let spooled = sample(&text, r#"vgate_spool_events_total{op="spooled"}"#);
    println!(
        "{events} publishes from {tasks} tasks in {:.2} s: {:.0} publishes/s, {spooled} spooled; \
         publish+Delivery p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.99),
        ms(1.0)
    );
    bridge.shutdown().await?;
    let _ = broker.kill();
    let _ = broker.wait();
    Ok(())
}
