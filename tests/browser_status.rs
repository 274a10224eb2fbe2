//! The status page in a real browser: headless Chromium driven by Selenium
//! (`tests/browser/status_page.py`, Debian's chromium, chromium-driver and python3-selenium)
//! against the real vgate with simulated vehicles driving. The script checks what a person
//! would see (token prompt, live counters, chart, search, the vehicle's session, track and
//! recent events, a command, the kick, no console error); this test then checks from vgate's
//! side that the kick and the command really happened.
//!
//! Without Chromium, chromedriver or Selenium the test fails under CI (`.ci/run` installs
//! them) and is skipped otherwise. `VGATE_SCREENSHOT=docs/img/status.png` keeps the
//! screenshot (the one in docs/ is made so); otherwise it goes to a temporary directory.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{skip_note, Vgate, VgateOptions};

const TOKEN: &str = "browser-admin-token";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PYTHON: &str = "/usr/bin/python3";

/// What is missing to run the browser, if anything.
fn missing() -> Option<String> {
    for p in [CHROMIUM, CHROMEDRIVER, PYTHON] {
        if !Path::new(p).exists() {
            return Some(p.to_owned());
        }
    }
    let selenium = Command::new(PYTHON)
        .args(["-c", "import selenium"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!selenium).then(|| "python3-selenium".to_owned())
}

/// One HTTP/1.0 GET with the token: status and body.
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    support::http_blocking(addr, "GET", path, Some(TOKEN), None)
}

#[test]
fn the_status_page_shows_live_data_finds_opens_commands_and_kicks_a_vehicle() {
    if let Some(what) = missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is required in CI (.ci/run installs chromium, chromium-driver, python3-selenium)"
        );
        skip_note(&format!(
            "the_status_page_shows_live_data_finds_opens_commands_and_kicks_a_vehicle skipped: {what} not found"
        ));
        return;
    }
    let vgate = Vgate::start(VgateOptions {
        extra_env: vec![("VGATE_HTTP_TOKEN".into(), TOKEN.into())],
        ..Default::default()
    });
    let http = vgate.addr("http");
    // Twelve terminals driving, 2 reports a second each: 013900000700..013900000711. The
    // prefix 01390000070 finds the first ten only.
    let mut sim = Command::new(env!("CARGO_BIN_EXE_vgate"))
        .args([
            "simulate",
            "--protocol",
            "jt808",
            "--vehicles",
            "12",
            "--rate",
            "2",
        ])
        .args([
            "--duration",
            "120s",
            "--first-id",
            "13900000700",
            "--target",
        ])
        .arg(vgate.addr("jt808").to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vgate simulate");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get(http, "/api/v1/stats")
        .1
        .contains("\"vehicles_online\":12")
    {
        assert!(
            Instant::now() < deadline,
            "the simulated vehicles came online"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("VGATE_SCREENSHOT").map(PathBuf::from);
    // A screenshot to keep waits for the chart and the track to grow.
    let settle = if keep.is_some() { "40" } else { "0" };
    let shot = keep.unwrap_or_else(|| dir.path().join("status.png"));
    let vehicle = "013900000703";
    let out = Command::new(PYTHON)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/browser/status_page.py"
        ))
        .args(["--url", &format!("http://{http}/")])
        .args([
            "--token",
            TOKEN,
            "--vehicle",
            vehicle,
            "--prefix",
            "01390000070",
        ])
        .args(["--online", "12", "--settle", settle, "--screenshot"])
        .arg(&shot)
        .args(["--chromium", CHROMIUM, "--chromedriver", CHROMEDRIVER])
        .output()
        .expect("python3");
    let _ = sim.kill();
    let _ = sim.wait();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser's checks failed: {said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(said.trim()).expect("the script's JSON");
    assert_eq!(seen["vehicles_online"], 12, "{seen}");
    assert!(seen["events_per_s"].as_f64().unwrap() > 0.0, "{seen}");
    assert!(seen["track_points"].as_u64().unwrap() >= 3, "{seen}");
    assert!(seen["chart_points_later"].as_u64() > seen["chart_points"].as_u64());
    // The search listed the ten matching vehicles, not the other two.
    assert_eq!(seen["search_rows"], 10, "{seen}");

    // vgate's side: the kick happened once and the form's command was taken.
    let (_, metrics) = get(http, "/metrics");
    assert!(
        metrics.lines().any(|l| l == "vgate_kicks_total 1"),
        "one kick"
    );
    let (_, one) = get(http, &format!("/api/v1/vehicles/{vehicle}"));
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["online"], false, "{one}");
    assert!(
        metrics.contains("vgate_command_results_total{status=\"queued\"}")
            || metrics.contains("vgate_command_results_total{status=\"sent\"}")
            || metrics.contains("vgate_commands_sent_total"),
        "the form's command went in: {metrics}"
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real screenshot"
    );
}
