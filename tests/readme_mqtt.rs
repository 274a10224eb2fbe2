//! The README's MQTT commands, run as written with the real `mosquitto_sub` and
//! `mosquitto_pub` (only the port differs) against `vgate run` and its embedded broker.
//! Mosquitto's clients send an empty client id and, with `-V mqttv5`, an MQTT 5 CONNECT: the
//! embedded broker must take the first and refuse the second with a CONNACK
//! (vendor/rumqttd/VENDORED.md).

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Vgate, VgateOptions};

/// Only there to keep a broken test from hanging forever; never a pass/fail criterion.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// The README's command for one vehicle.
const COMMAND: &str =
    r#"{"id":"c-1","type":"text","params":{"text":"hello driver"},"ttl_s":3600,"priority":7}"#;

/// Where a Mosquitto client program is, or None (the test is skipped; with `CI` set it fails).
fn mosquitto_client(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{name} is required in CI (CI is set); it comes with apt-get install mosquitto-clients"
        );
    }
    support::skip_note(&format!(
        "{name} not found; skipping (apt-get install mosquitto-clients)"
    ));
    None
}

/// A Mosquitto client running, its stdout lines on a channel; killed on drop.
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Client {
    fn spawn(program: &Path, args: &[&str]) -> Client {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the mosquitto client");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[mosquitto client] {line}");
                let _ = tx.send(line);
            }
        });
        Client { child, lines }
    }

    /// The next stdout line that starts with `prefix`.
    fn line_starting(&self, prefix: &str) -> String {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line starting with {prefix:?} (hang guard)"),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client to its end: exit status and stderr. Panics if it has not ended by the hang
/// guard (it is killed then).
fn run_to_end(program: &Path, args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the mosquitto client");
    let pid = child.id();
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((child.wait(), err));
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok((status, err)) => (status.expect("wait"), err),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("{} {args:?} did not end (hang guard)", program.display());
        }
    }
}

#[test]
fn the_readme_mosquitto_sub_and_pub_commands_work_against_the_embedded_broker() {
    let (Some(sub), Some(publ)) = (
        mosquitto_client("mosquitto_sub"),
        mosquitto_client("mosquitto_pub"),
    ) else {
        return;
    };
    let vgate = Vgate::start(VgateOptions::default());
    let port = vgate.mqtt_port().expect("embedded broker").to_string();

    // "Watch the events with any MQTT client"
    let all = Client::spawn(
        &sub,
        &["-h", "127.0.0.1", "-p", &port, "-t", "vgate/#", "-v"],
    );
    let status = all.line_starting("vgate/gateway/test-node/status ");
    let json: serde_json::Value = serde_json::from_str(
        status
            .split_once(' ')
            .map(|(_, payload)| payload)
            .expect("topic payload"),
    )
    .expect("JSON status");
    assert_eq!(
        json["online"], true,
        "the retained gateway status: {status}"
    );

    // "Send commands": the results subscriber first (results are not retained). A retained
    // probe on its filter tells when it has subscribed.
    let (probed, err) = run_to_end(
        &publ,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-r",
            "-t",
            "vgate/v1/probe/cmd/result",
            "-m",
            "probe",
        ],
    );
    assert!(probed.success(), "retained probe: {err}");
    let results = Client::spawn(
        &sub,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "vgate/v1/+/cmd/result",
            "-v",
        ],
    );
    results.line_starting("vgate/v1/probe/cmd/result probe");
    let (published, err) = run_to_end(
        &publ,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "vgate/v1/013800138000/cmd",
            "-q",
            "1",
            "-m",
            COMMAND,
        ],
    );
    assert!(
        published.success(),
        "mosquitto_pub -q 1 succeeds, got {published:?}: {err}"
    );

    let cmd = all.line_starting("vgate/v1/013800138000/cmd ");
    assert_eq!(cmd, format!("vgate/v1/013800138000/cmd {COMMAND}"));
    let result = results.line_starting("vgate/v1/013800138000/cmd/result ");
    let json: serde_json::Value =
        serde_json::from_str(result.split_once(' ').map(|(_, p)| p).expect("payload"))
            .expect("JSON result");
    assert_eq!(json["data"]["id"], "c-1");
    assert_eq!(
        json["data"]["status"], "queued",
        "the vehicle is offline: {result}"
    );
    let seen_by_all = all.line_starting("vgate/v1/013800138000/cmd/result ");
    assert_eq!(seen_by_all, result);
}

#[test]
fn an_mqtt5_subscriber_is_refused_with_a_connack_instead_of_hanging() {
    let Some(sub) = mosquitto_client("mosquitto_sub") else {
        return;
    };
    let vgate = Vgate::start(VgateOptions::default());
    let port = vgate.mqtt_port().expect("embedded broker").to_string();
    let (status, err) = run_to_end(
        &sub,
        &[
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "vgate/#",
            "-v",
        ],
    );
    assert!(!status.success(), "refused: {status:?}");
    assert!(
        err.to_lowercase().contains("protocol version"),
        "mosquitto_sub names the reason (CONNACK 0x84 Unsupported Protocol Version): {err}"
    );
}
