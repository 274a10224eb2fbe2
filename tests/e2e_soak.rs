//! Memory soak: vgate runs with vehicles reporting, reconnect churn and commands, and nobody
//! scrapes `/metrics`; its RSS, sampled from /proc, must stay flat after the warm-up.
//!
//! Before the fix the Prometheus recorder kept every histogram sample until a scrape folded
//! it into the buckets (nothing ran its upkeep): ~35 bytes per event, without end.
//!
//! The run lasts `VGATE_SOAK_SECS` seconds (default 90, of which the first third is warm-up);
//! `scripts/bench.sh` step 4 runs a longer soak against a release build.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use jt808::Version;
use rumqttc::QoS;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

/// Vehicles of the steady load and their report rate: 1,000 events/s.
const VEHICLES: usize = 200;
const RATE: f64 = 5.0;
/// The largest growth accepted after the warm-up, bytes per second of RSS. The leak this test
/// was written for grew 35-50 KB/s at this load.
const MAX_GROWTH_BYTES_PER_S: f64 = 15_000.0;

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Growth in bytes per second between the two halves of `samples` (`(seconds, bytes)`), each
/// half read as its lowest sample: the allocator returns freed pages about every 10 s
/// (jemalloc's decay), so single samples saw-tooth by 1-2 MB and a busy moment shows as a
/// short bump, while the lowest RSS of a half-minute is what is really held.
fn growth(samples: &[(f64, f64)]) -> (f64, f64, f64) {
    let mid = samples.len() / 2;
    let (a, b) = samples.split_at(mid);
    let low = |h: &[(f64, f64)]| h.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let span = |h: &[(f64, f64)]| h.iter().map(|s| s.0).sum::<f64>() / h.len().max(1) as f64;
    let (la, lb) = (low(a), low(b));
    let dt = (span(b) - span(a)).max(1.0);
    ((lb - la) / dt, la, lb)
}

/// The simulator binary: `VEHICLES` terminals reporting at `RATE` for `secs`.
fn steady_load(vgate: &Vgate, secs: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vgate"))
        .args(["simulate", "--protocol", "jt808"])
        .args(["--vehicles", &VEHICLES.to_string()])
        .args(["--rate", &RATE.to_string()])
        .args(["--duration", &format!("{secs}s")])
        .args(["--target", &vgate.addr("jt808").to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the simulator")
}

/// Terminals that connect, register, authenticate, report a few fixes and hang up, over and
/// over, on a rotating set of 50 ids (sessions, presence, auth codes, registry entries).
async fn churn(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, sessions: Arc<AtomicU64>) {
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let phone = format!("0136{:08}", i % 50);
        i += 1;
        let Ok(mut t) = Terminal::connect(addr, &phone, Version::V2013).await else {
            continue;
        };
        let Ok(Some(code)) = t.register().await.map(|r| r.auth_code) else {
            continue;
        };
        if t.authenticate(&code).await.ok() != Some(0) {
            continue;
        }
        for _ in 0..3 {
            let _ = t.report(&Fix::default()).await;
        }
        if i.is_multiple_of(2) {
            let _ = t.logout().await;
        }
        drop(t);
        sessions.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rss_stays_flat_with_reporting_vehicles_churn_and_commands_and_no_scraper() {
    let Some(m) = Mosquitto::start() else { return };
    let secs: u64 = std::env::var("VGATE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    let warmup = Duration::from_secs((secs / 3).max(10));
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    let pid = vgate.child.as_ref().expect("running").id();
    // A platform consumer, so the broker forwards everything (and never /metrics).
    let mut platform = Subscriber::connect_with(m.port, &["vgate/#"], QoS::AtMostOnce).await;
    let mut sim = steady_load(&vgate, secs + 5);

    let stop = Arc::new(AtomicBool::new(false));
    let sessions = Arc::new(AtomicU64::new(0));
    let churning = tokio::spawn(churn(vgate.addr("jt808"), stop.clone(), sessions.clone()));
    // Commands: to the simulated vehicles (which answer them) and to the churning ids, 5 a
    // second. Each finished command's id is remembered (24 h) in the command store, whose page
    // cache grows with the file up to its cap (64 MiB): at 20 commands a second that alone was
    // ~10 KB/s here, bounded but indistinguishable from a leak within a minute.
    let commands = {
        let (client, stop) = (platform.client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let vehicle = if n.is_multiple_of(2) {
                    format!("0{}", 13_800_000_000 + n % VEHICLES as u64)
                } else {
                    format!("0136{:08}", n % 50)
                };
                let json = format!(r#"{{"id":"s-{n}","type":"text","params":{{"text":"soak"}}}}"#);
                let _ = client
                    .publish(
                        format!("vgate/v1/{vehicle}/cmd"),
                        QoS::AtLeastOnce,
                        false,
                        json,
                    )
                    .await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            n
        })
    };

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut received = 0usize;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        received += platform.take_ready();
        let t = started.elapsed();
        let rss = rss_bytes(pid).expect("vgate is running");
        if t >= warmup {
            samples.push((t.as_secs_f64(), rss as f64));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let sent_commands = commands.await.expect("commands task");
    churning.await.expect("churn task");
    let _ = sim.kill();
    let _ = sim.wait();

    let (s, first, last) = growth(&samples);
    eprintln!(
        "soak {secs} s: {received} messages on the platform, {} churned sessions, {sent_commands} \
         commands; RSS after warm-up (lowest of each half) {:.1} -> {:.1} MB: {:.0} bytes/s",
        sessions.load(Ordering::SeqCst),
        first / 1e6,
        last / 1e6,
        s
    );
    assert!(
        received as f64 > VEHICLES as f64 * RATE * (secs as f64) / 4.0,
        "the load ran: {received} messages"
    );
    assert!(sessions.load(Ordering::SeqCst) > 0, "churn ran");
    assert!(
        s < MAX_GROWTH_BYTES_PER_S,
        "RSS grows {s:.0} bytes/s after the warm-up ({:.1} -> {:.1} MB): something grows with \
         events, vehicles or time",
        first / 1e6,
        last / 1e6
    );
}
