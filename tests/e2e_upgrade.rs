//! Black-box tests of upgrades (JT/T 808 0x8108 / 0x0108): the real `vgate` binary,
//! Mosquitto, and simulated terminals taking a package pushed in 1,000-byte packages with
//! flow control, some packages lost (sent again after the terminal's 0x0005 or after the
//! gateway's timeout), the result coming on the same or on a new connection.
//!
//! `VGATE_OTA_TERMINALS` sets how many terminals take the broadcast package (default 10;
//! docs/PERFORMANCE.md has the figure for 100).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gateway::simulate::jt808::{Terminal, UpgradeBehaviour};
use jt808::msg::UpgradeResult;
use jt808::{Message, Version};
use rumqttc::QoS;
use serde_json::Value;
use sha2::Digest;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const ADMIN: &str = "admin-token-ota";
const WAIT: Duration = Duration::from_secs(20);

/// Packages not answered within a second go again (default 10 s).
const CONFIG: &str =
    "[commands.upgrade]\npackage_timeout_s = 1\n\n[commands.groups]\nota = [\"0139*\"]\n";

fn start(m: &Mosquitto) -> Vgate {
    Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        extra_env: vec![("VGATE_HTTP_TOKEN".into(), ADMIN.into())],
        config_toml: Some(CONFIG.into()),
        ..Default::default()
    })
}

/// `POST path` with a binary body, as the admin; the status and the JSON answer.
async fn post_bytes(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, Value) {
    let body = Some(("application/octet-stream", body));
    let (status, answer) = support::http(addr, "POST", path, Some(ADMIN), body).await;
    (status, serde_json::from_str(&answer).expect("json"))
}

async fn publish(sub: &Subscriber, topic: &str, json: &Value) {
    sub.client
        .publish(
            topic,
            QoS::AtLeastOnce,
            false,
            json.to_string().into_bytes(),
        )
        .await
        .expect("publish command");
}

/// The results of command `id` for `vehicle` up to its final status: (status, progress).
async fn results(
    sub: &mut Subscriber,
    vehicle: &str,
    id: &str,
) -> Vec<(String, Option<u64>, Value)> {
    let mut out = Vec::new();
    loop {
        let r = sub
            .next_on(&format!("{vehicle}/cmd/result"), Duration::from_secs(120))
            .await;
        let d = &r.json["data"];
        if d["id"] != id {
            continue;
        }
        let status = d["status"].as_str().unwrap_or_default().to_owned();
        let fin = !matches!(status.as_str(), "queued" | "sent");
        out.push((status, d["progress_pct"].as_u64(), d.clone()));
        if fin {
            return out;
        }
    }
}

/// A firmware image that is not all one byte value.
fn image(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2_mb_package_uploaded_once_reaches_every_terminal_of_a_broadcast_whole() {
    let Some(m) = Mosquitto::start() else { return };
    let n: usize = std::env::var("VGATE_OTA_TERMINALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let vgate = start(&m);
    let firmware = image(2_000_000);
    let (status, info) = post_bytes(vgate.addr("http"), "/api/v1/packages", &firmware).await;
    assert_eq!(status, 201, "{info}");
    let id = info["package"].as_str().expect("package id").to_owned();
    assert_eq!(id, hex::encode(sha2::Sha256::digest(&firmware)));
    assert_eq!(info["size"], 2_000_000);

    let mut sub = Subscriber::connect(m.port, &["vgate/v1/+/cmd/result"]).await;
    // Half speak 2019 and ask for what they lost (0x0005); half speak 2013 and wait for the
    // gateway to send it again. Each loses its second, a middle and its last package once.
    let last = (2_000_000 + 1 + 5 + 1 + 5 + 4usize).div_ceil(1000) as u16;
    let mut terminals = Vec::new();
    for i in 0..n {
        let (version, phone) = if i % 2 == 0 {
            (Version::V2019, format!("0139{:016}", i))
        } else {
            (Version::V2013, format!("0139{:08}", i))
        };
        let t = support::online_terminal(vgate.addr("jt808"), &phone, version).await;
        terminals.push((phone, version, t));
    }
    let started = Instant::now();
    let cmd = serde_json::json!({"id": "fw-2", "type": "upgrade",
        "params": {"package": id, "version": "F2.01", "manufacturer": "VGATE"}});
    publish(&sub, "vgate/broadcast/ota/cmd", &cmd).await;
    let mut tasks = Vec::new();
    for (phone, version, mut t) in terminals {
        let b = UpgradeBehaviour {
            lose: vec![2, 1000 + (phone.len() as u16), last],
            ask_resend: version == Version::V2019,
            result: Some(0),
        };
        tasks.push(tokio::spawn(async move {
            let up = t
                .take_upgrade(&b, Duration::from_secs(300))
                .await
                .expect("the upgrade");
            (phone, version, up, t)
        }));
    }
    let mut phones = Vec::new();
    let mut keep = Vec::new();
    for task in tasks {
        let (phone, version, up, t) = task.await.expect("terminal task");
        assert_eq!(up.version, "F2.01");
        assert_eq!(up.upgrade_type, 0);
        let maker = if version == Version::V2019 { 11 } else { 5 };
        assert_eq!(up.maker_id.len(), maker);
        assert!(up.maker_id.starts_with(b"VGATE"));
        assert!(
            up.package == firmware,
            "{phone}: every byte arrived in order"
        );
        phones.push(phone);
        keep.push(t);
    }
    let transferred = started.elapsed();
    // Every vehicle's results, up to its final status (they come interleaved).
    let mut by_vehicle: std::collections::HashMap<String, Vec<(String, Option<u64>, Value)>> =
        Default::default();
    let mut finished = 0;
    while finished < phones.len() {
        let r = sub.next_on("/cmd/result", Duration::from_secs(120)).await;
        let v = r.json["vehicle_id"].as_str().unwrap_or_default().to_owned();
        let d = r.json["data"].clone();
        let status = d["status"].as_str().unwrap_or_default().to_owned();
        if !matches!(status.as_str(), "queued" | "sent") {
            finished += 1;
        }
        by_vehicle
            .entry(v)
            .or_default()
            .push((status, d["progress_pct"].as_u64(), d));
    }
    for phone in &phones {
        let r = by_vehicle.get(phone).expect("results");
        let (last_status, _, data) = r.last().expect("a final status");
        assert_eq!(last_status, "acked", "{phone}: {r:?}");
        assert_eq!(data["response"]["result"], 0);
        let progress: Vec<u64> = r
            .iter()
            .filter(|(s, _, _)| s == "sent")
            .filter_map(|(_, p, _)| *p)
            .collect();
        assert_eq!(
            progress.first(),
            Some(&0),
            "{phone}: sent at 0 % first: {r:?}"
        );
        assert_eq!(progress.last(), Some(&100), "{phone}: {r:?}");
        assert!(
            progress.windows(2).all(|w| w[0] < w[1]),
            "{phone}: {progress:?}"
        );
    }
    let secs = transferred.as_secs_f64();
    eprintln!(
        "upgrade: 2 MB to {n} terminals (packages lost and sent again) in {secs:.2} s, {:.1} MB/s",
        (2.0 * n as f64) / secs
    );
    let stored = std::fs::read_dir(vgate.data_dir.path().join("packages"))
        .expect("package dir")
        .count();
    assert_eq!(stored, 1, "one package on disk for the whole broadcast");
}

/// Serves `body` on every connection.
async fn http_server(body: Vec<u8>) -> String {
    let (addr, _) = test_support::http::file_server(body).await;
    format!("http://{addr}/firmware/v3.bin")
}

/// Waits `wait` for a 0x8108 to `t`; true if one came.
async fn pushed_within(t: &mut Terminal, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, t.next_frame()).await {
            Err(_) => return false,
            Ok(Ok(Some((h, _)))) if h.msg_id == 0x8108 => return true,
            Ok(Ok(Some(_))) => continue,
            // A package alone does not decode as a message: it is a push.
            Ok(Err(_)) => return true,
            Ok(Ok(None)) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_from_a_url_is_acked_by_a_result_sent_after_the_terminal_restarted() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = start(&m);
    let firmware = image(300_000);
    let sha = hex::encode(sha2::Sha256::digest(&firmware));
    let url = http_server(firmware.clone()).await;
    let phone = "01390000000000000077";
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/cmd/result")]).await;
    let mut t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2019).await;
    let topic = format!("vgate/v1/{phone}/cmd");

    // Params the command cannot have: rejected at once, naming the field.
    let bad = serde_json::json!({"id": "fw-bad", "type": "upgrade",
        "params": {"url": "ftp://10.0.0.1/v3.bin", "version": "3"}});
    publish(&sub, &topic, &bad).await;
    let r = results(&mut sub, phone, "fw-bad").await;
    assert_eq!(r.last().map(|x| x.0.as_str()), Some("rejected"), "{r:?}");
    assert!(r[0].2["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("params.url"));

    // A package this node does not have: failed, saying so.
    let missing = serde_json::json!({"id": "fw-none", "type": "upgrade",
        "params": {"package": "0".repeat(64), "version": "3"}});
    publish(&sub, &topic, &missing).await;
    let r = results(&mut sub, phone, "fw-none").await;
    let (status, _, data) = r.last().expect("final");
    assert_eq!(status, "failed", "{r:?}");
    assert!(data["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("no package"));

    let cmd = serde_json::json!({"id": "fw-3", "type": "upgrade",
        "params": {"url": url, "sha256": sha, "version": "F3.00", "upgrade_type": "terminal"}});
    publish(&sub, &topic, &cmd).await;
    // The terminal takes every package, then restarts before it reports.
    let b = UpgradeBehaviour {
        lose: vec![1, 150],
        ask_resend: true,
        result: None,
    };
    let up = t.take_upgrade(&b, WAIT).await.expect("the upgrade");
    assert!(up.package == firmware);
    // Progress up to 100 %, no final status yet.
    let mut seen = Vec::new();
    while seen.last() != Some(&100) {
        let r = sub.next_on("/cmd/result", WAIT).await;
        assert_eq!(r.json["data"]["status"], "sent", "{}", r.json);
        seen.push(r.json["data"]["progress_pct"].as_u64().expect("progress"));
    }
    drop(t);

    let mut t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2019).await;
    assert!(
        !pushed_within(&mut t, Duration::from_secs(2)).await,
        "a transferred upgrade is not pushed again"
    );
    t.send(&Message::UpgradeResult(UpgradeResult {
        upgrade_type: 0,
        result: 0,
    }))
    .await
    .expect("0x0108");
    let r = sub.next_on("/cmd/result", WAIT).await;
    assert_eq!(r.json["data"]["id"], "fw-3");
    assert_eq!(r.json["data"]["status"], "acked", "{}", r.json);
    assert_eq!(r.json["data"]["response"]["upgrade_type"], 0);

    // The same URL again (another command) is not downloaded again; this time the terminal
    // reports a failed upgrade.
    let again = serde_json::json!({"id": "fw-3b", "type": "upgrade",
        "params": {"url": url, "version": "F3.00"}});
    publish(&sub, &topic, &again).await;
    let b = UpgradeBehaviour {
        result: Some(1),
        ..Default::default()
    };
    t.take_upgrade(&b, WAIT).await.expect("the second upgrade");
    let r = results(&mut sub, phone, "fw-3b").await;
    let (status, _, data) = r.last().expect("final");
    assert_eq!(status, "failed", "{r:?}");
    assert!(data["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("0x0108 result 1"));
    assert_eq!(
        std::fs::read_dir(vgate.data_dir.path().join("packages"))
            .expect("package dir")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vehicles_of_vgate_simulate_accept_an_upgrade() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = start(&m);
    let firmware = image(120_000);
    let (status, info) = post_bytes(vgate.addr("http"), "/api/v1/packages", &firmware).await;
    assert_eq!(status, 201, "{info}");
    let mut sub =
        Subscriber::connect(m.port, &["vgate/v1/+/status", "vgate/v1/+/cmd/result"]).await;
    let target = vgate.addr("jt808").to_string();
    let sim = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vgate"))
            .args(["simulate", "--protocol", "jt808", "--vehicles", "2"])
            .args(["--rate", "1", "--duration", "6s"])
            .args(["--target", &target])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run the simulator")
    });
    let mut online = std::collections::HashSet::new();
    while online.len() < 2 {
        let r = sub.next_on("/status", WAIT).await;
        if r.json["data"]["online"] == true {
            online.insert(r.json["vehicle_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let cmd = serde_json::json!({"id": "fw-sim", "type": "upgrade",
        "params": {"package": info["package"], "version": "S1"}});
    publish(&sub, "vgate/broadcast/jt808/cmd", &cmd).await;
    let mut acked = std::collections::HashSet::new();
    while acked.len() < 2 {
        let r = sub.next_on("/cmd/result", WAIT).await;
        let d = &r.json["data"];
        assert!(
            matches!(d["status"].as_str(), Some("queued" | "sent" | "acked")),
            "{}",
            r.json
        );
        if d["status"] == "acked" {
            acked.insert(r.json["vehicle_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(acked, online);
    assert!(sim.await.expect("simulator").success());
}
