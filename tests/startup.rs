//! Black-box tests of `vgate run`'s start-up and logs: a bad log filter is refused, a
//! start-up failure never follows a `listening` line, log files hold no colour codes, the
//! embedded broker's own chatter stays out of the log, an unreachable broker is announced at
//! once, and the spool's replay is logged with its count.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use jt808::Version;
use support::{free_port, Mosquitto, Outage, Subscriber, Vgate, VgateOptions};

/// Only there to keep a broken test from hanging forever; never a pass/fail criterion.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// `vgate run` with test listeners (free ports, the embedded broker), `env` on top.
fn vgate_run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgate"));
    cmd.arg("run")
        .args(args)
        .env("VGATE_JT808_LISTEN", "127.0.0.1:0")
        .env("VGATE_GBT32960_LISTEN", "127.0.0.1:0")
        .env("VGATE_HTTP_LISTEN", "127.0.0.1:0")
        .env(
            "VGATE_EMBEDDED_MQTT_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("VGATE_DATA_DIR", dir)
        .env("VGATE_NODE_ID", "test-node")
        .env_remove("VGATE_LOG")
        .env_remove("VGATE_MQTT_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd`, which must exit by itself: status, stdout, stderr. A vgate still running at
/// the hang guard is killed and the test fails.
fn exits(mut cmd: Command) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vgate");
    let pid = child.id();
    let (mut out, mut err) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        let _ = tx.send((child.wait(), o, e));
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok((status, out, err)) => (status.expect("wait"), out, err),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("vgate did not exit (hang guard)");
        }
    }
}

#[test]
fn an_invalid_vgate_log_is_refused_with_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, out, err) = exits(vgate_run(dir.path(), &[("VGATE_LOG", "notalevel")], &[]));
    assert_eq!(status.code(), Some(2), "bad configuration: {err}");
    assert!(
        err.contains("VGATE_LOG") && err.contains("notalevel"),
        "the message names the variable and the value: {err}"
    );
    assert!(!out.contains("listening"), "no listener announced: {out}");
}

#[test]
fn an_invalid_log_in_the_config_file_is_refused_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vgate.toml");
    std::fs::write(&file, "log = \"notalevel\"\n").expect("config");
    let file_arg = file.to_str().expect("utf-8 path");
    let (status, out, err) = exits(vgate_run(dir.path(), &[], &["--config", file_arg]));
    assert_eq!(status.code(), Some(2), "bad configuration: {err}");
    assert!(
        err.contains(file_arg) && err.contains(": log"),
        "the message names the file and the key: {err}"
    );
    assert!(!out.contains("listening"), "no listener announced: {out}");
}

#[test]
fn a_taken_http_port_fails_start_up_without_any_listening_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, out, err) = exits(vgate_run(dir.path(), &[("VGATE_HTTP_LISTEN", &addr)], &[]));
    assert!(!status.success(), "start-up fails: {status:?}");
    assert!(err.contains("http.listen"), "the error names it: {err}");
    assert!(
        !out.contains("listening"),
        "a script waiting for `listening` lines is not told a failed vgate is ready: {out:?}"
    );
}

#[test]
fn log_lines_written_to_a_pipe_have_no_colour_codes() {
    // The harness reads vgate's stderr through a pipe: not a terminal.
    let mut vgate = Vgate::start(VgateOptions::default());
    let line = vgate
        .wait_log_line("vgate running", HANG_GUARD)
        .expect("the running line");
    assert!(!line.contains('\x1b'), "no escape codes: {line:?}");
    assert!(vgate.terminate().success());
    for line in vgate.remaining_log() {
        assert!(!line.contains('\x1b'), "no escape codes: {line:?}");
    }
}

/// A platform client connects to the embedded broker and leaves; vgate is stopped.
async fn client_comes_and_goes_then_shutdown(vgate: &mut Vgate) -> Vec<String> {
    let port = vgate.mqtt_port().expect("embedded broker");
    let sub = Subscriber::connect(port, &["vgate/#"]).await;
    sub.client.disconnect().await.expect("disconnect");
    drop(sub);
    assert!(vgate.terminate().success(), "clean shutdown");
    vgate.remaining_log()
}

#[tokio::test]
async fn at_info_the_embedded_broker_logs_nothing_per_client_connection() {
    let mut vgate = Vgate::start(VgateOptions::default());
    let log = client_comes_and_goes_then_shutdown(&mut vgate).await;
    let broker_lines: Vec<_> = log.iter().filter(|l| l.contains("rumqttd")).collect();
    assert!(
        broker_lines.is_empty(),
        "rumqttd's own lines only at debug: {broker_lines:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("stopped")),
        "the log itself is on: {log:#?}"
    );
}

#[tokio::test]
async fn with_vgate_log_warn_a_clean_run_and_shutdown_log_no_error() {
    let mut vgate = Vgate::start(VgateOptions {
        extra_env: vec![("VGATE_LOG".into(), "warn".into())],
        ..Default::default()
    });
    let log = client_comes_and_goes_then_shutdown(&mut vgate).await;
    let errors: Vec<_> = log.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "nothing went wrong: {errors:#?}");
}

#[test]
fn an_unreachable_broker_is_announced_at_once_with_how_long_start_up_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    let mut child = vgate_run(dir.path(), &[("VGATE_MQTT_URL", &url)], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vgate");
    let stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[vgate] {line}");
            let _ = tx.send(line);
        }
    });
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let waiting = loop {
        match rx.recv_timeout(HANG_GUARD) {
            Ok(line) if line.contains("waiting for it up to 30s") => break Some(line),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    // Still starting: the bridge waits for the broker before anything is announced.
    let announced: Vec<String> = out_rx.try_iter().collect();
    let _ = child.kill();
    let _ = child.wait();
    let waiting = waiting.expect("a line saying start-up waits for the broker, and how long");
    assert!(waiting.contains("WARN"), "at WARN: {waiting}");
    assert!(
        waiting.contains("starting on the spool"),
        "and what comes after: {waiting}"
    );
    assert!(
        announced.is_empty(),
        "said while start-up waits: {announced:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spool_replay_is_logged_with_its_count_once_the_broker_has_it_all() {
    let Some(m) = Mosquitto::start() else { return };
    let proxy = Outage::start(m.port).await;
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(format!("mqtt://127.0.0.1:{}", proxy.port)),
        config_toml: Some(
            "[mqtt]\nconnections = 1\nreconnect_min_ms = 100\nreconnect_max_ms = 500\n".into(),
        ),
        ..Default::default()
    });
    let mut t = Terminal::connect(vgate.addr("jt808"), "013600000009", Version::V2013)
        .await
        .expect("connect");
    let code = t
        .register()
        .await
        .expect("register")
        .auth_code
        .expect("auth code");
    assert_eq!(t.authenticate(&code).await.expect("authenticate"), 0);
    proxy.cut();
    assert!(
        vgate.wait_log("MQTT connection lost", HANG_GUARD),
        "vgate noticed the outage"
    );
    const N: usize = 10;
    for i in 0..N {
        let serial = t
            .send(&jt808::Message::Location(
                Fix {
                    latitude: 22.5 + i as f64 * 1e-4,
                    ..Fix::default()
                }
                .report(),
            ))
            .await
            .expect("send");
        assert_eq!(
            t.general_answer_for(serial).await.expect("answer"),
            0,
            "spooled, so acknowledged"
        );
    }
    proxy.restore();
    let line = vgate
        .wait_log_line("MQTT spool replayed:", HANG_GUARD)
        .expect("the replay is logged once the spool is empty");
    let count: usize = line
        .split("publishes=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a publishes= count: {line}"));
    assert!(
        count >= N,
        "at least the {N} reports spooled during the outage: {line}"
    );
    assert!(line.contains("INFO"), "at INFO: {line}");
}
