//! README.md's "First five minutes", run as written: the real `vgate` binary and the real
//! Mosquitto command-line clients (`mosquitto_sub`, `mosquitto_pub`), as a new user would.
//!
//! How the section is run:
//!
//! - The section is the text between the heading `## First five minutes` and the next `## `
//!   heading; its commands are its fenced ```sh blocks, in order (```text blocks are what the
//!   user sees, not run).
//! - Each block runs in its own `sh -c` (its own terminal, for the user), in its own process
//!   group, all in one scratch directory (vgate's `./vgate-data` goes there), with this
//!   build's `vgate` first on the PATH (the README's "Install").
//! - `vgate run` and `mosquitto_sub` keep running: the next block starts once vgate has
//!   announced its four listeners (`listening ...` lines) and once the watcher has printed its
//!   first line (the gateway's retained presence). Every other block must exit with status 0
//!   before the next one starts.
//! - The only change to the commands is the ports, so that the test can run next to anything
//!   else: vgate gets free ports through its environment variables (contract §1:
//!   `VGATE_EMBEDDED_MQTT_LISTEN`, `VGATE_JT808_LISTEN`, `VGATE_GBT32960_LISTEN`,
//!   `VGATE_HTTP_LISTEN`), and the commands' `-p 1883` and `127.0.0.1:6808` are rewritten to
//!   those ports. The test checks that no other mention of a default port is left.
//! - Then it waits for what the README promises: the command's results `queued`, `sent` and
//!   `acked` on `vgate/v1/{vid}/cmd/result`, and the simulator's `commands answered 1`.
//!
//! Needs `mosquitto-clients` (CI's `.ci/run` installs it); without it the test is skipped,
//! unless `CI` is set, when it fails.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one step may take: a block to announce itself or exit, a result to arrive.
const LIMIT: Duration = Duration::from_secs(60);

/// The section's ```sh blocks, in order.
fn quickstart_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find("\n## First five minutes\n")
        .expect("README.md has a `## First five minutes` section");
    let body = &readme[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |e| e + 3);
    let section = &body[..end];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let after = &rest[open + "```sh\n".len()..];
        let close = after.find("```").expect("closed ```sh block");
        blocks.push(after[..close].trim_end().to_owned());
        rest = &after[close..][3..];
    }
    blocks
}

/// Whether the Mosquitto clients are installed; with `CI` set, missing ones fail the test.
fn mosquitto_clients() -> bool {
    let found = ["mosquitto_sub", "mosquitto_pub"].iter().all(|c| {
        Command::new(c)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("mosquitto_sub / mosquitto_pub are required in CI; .ci/run installs mosquitto-clients");
        }
        support::skip_note("mosquitto-clients not installed; skipping the README quick start");
    }
    found
}

/// One running block: its shell, and its stdout lines as they come (the channel closes at
/// the end of its output).
struct Block {
    script: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Block {
    fn start(script: &str, dir: &Path, env: &[(String, String)]) -> Block {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .current_dir(dir)
            .env_remove("VGATE_MQTT_URL")
            .env_remove("VGATE_DATA_DIR")
            .env_remove("VGATE_NODE_ID")
            .env_remove("VGATE_TOPIC_PREFIX")
            .env_remove("VGATE_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("sh -c {script:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let name = script
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            for line in text.lines() {
                eprintln!("[{name} stderr] {line}");
            }
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Block {
            script: script.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next stdout line, or None at the end of the output; panics after `LIMIT`.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        match self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) => {
                eprintln!("[{}] {line}", self.script.lines().next().unwrap_or(""));
                self.seen.push(line.clone());
                Some(line)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "`{}`: nothing after {LIMIT:?}; printed so far: {:?}",
                self.script, self.seen
            ),
        }
    }

    /// Reads stdout until a line satisfies `pred`.
    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            match self.next_line(deadline) {
                Some(l) if pred(&l) => return l,
                Some(_) => {}
                None => panic!(
                    "`{}` ended before {what}; it printed {:?}",
                    self.script, self.seen
                ),
            }
        }
    }

    /// Reads stdout to its end, then requires exit status 0.
    fn wait_success(&mut self) {
        let deadline = Instant::now() + LIMIT;
        while self.next_line(deadline).is_some() {}
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "`{}` exited with {status}; it printed {:?}",
            self.script,
            self.seen
        );
    }
}

impl Block {
    /// Sends `signal` to the block's own process group (its shell and what it started).
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args(["-s", signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // exited and reaped: its process group id may be someone else's by now
        }
        // What Ctrl-C in the block's terminal would do: vgate drains and exits. A client
        // stuck in a reconnect loop may not stop at once: then it is killed.
        self.signal_group("TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                self.signal_group("KILL");
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `-t TOPIC` and the `-m '...'` JSON of a mosquitto_pub block.
fn published(block: &str) -> (String, serde_json::Value) {
    let topic = block
        .split_whitespace()
        .skip_while(|w| *w != "-t")
        .nth(1)
        .expect("mosquitto_pub -t TOPIC")
        .to_owned();
    let m = block.find("-m '").expect("mosquitto_pub -m '...'") + "-m '".len();
    let len = block[m..].find('\'').expect("closing quote");
    let json = serde_json::from_str(&block[m..m + len]).expect("the command is JSON");
    (topic, json)
}

#[test]
fn the_readme_first_five_minutes_work_as_written() {
    let blocks = quickstart_blocks(include_str!("../README.md"));
    assert_eq!(
        blocks.len(),
        4,
        "run, watch, command, simulate: {blocks:#?}"
    );
    if !mosquitto_clients() {
        return;
    }

    let (mqtt, jt808) = (support::free_port(), support::free_port());
    let mut rewritten = Vec::new();
    let (mut saw_mqtt, mut saw_jt808) = (false, false);
    for b in &blocks {
        saw_mqtt |= b.contains("-p 1883");
        saw_jt808 |= b.contains("127.0.0.1:6808");
        let r = b
            .replace("-p 1883", &format!("-p {mqtt}"))
            .replace("127.0.0.1:6808", &format!("127.0.0.1:{jt808}"));
        for default in ["1883", "6808", "32960", "9808"] {
            assert!(
                !r.split(|c: char| !c.is_ascii_digit()).any(|w| w == default),
                "a default port this test does not rewrite, in {b:?}"
            );
        }
        rewritten.push(r);
    }
    assert!(
        saw_mqtt && saw_jt808,
        "the commands name the ports as `-p 1883` and `127.0.0.1:6808`"
    );

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_vgate"))
        .parent()
        .expect("bin dir")
        .to_owned();
    let env = vec![
        (
            "PATH".to_owned(),
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        (
            "VGATE_EMBEDDED_MQTT_LISTEN".to_owned(),
            format!("127.0.0.1:{mqtt}"),
        ),
        (
            "VGATE_JT808_LISTEN".to_owned(),
            format!("127.0.0.1:{jt808}"),
        ),
        ("VGATE_GBT32960_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("VGATE_HTTP_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
    ];
    let scratch = tempfile::tempdir().expect("scratch dir");

    let mut running: Vec<Block> = Vec::new();
    let mut watcher: Option<usize> = None;
    let mut simulator_output = Vec::new();
    let mut command: Option<(String, serde_json::Value)> = None;
    for script in &rewritten {
        let mut b = Block::start(script, scratch.path(), &env);
        if script.starts_with("vgate run") {
            let mut listening = std::collections::BTreeSet::new();
            while listening.len() < 4 {
                let l = b.wait_line("its listeners", |l| l.starts_with("listening "));
                listening.insert(l.split_whitespace().nth(1).unwrap_or("").to_owned());
            }
            running.push(b);
        } else if script.starts_with("mosquitto_sub") {
            let first = b.wait_line("its first message", |_| true);
            assert!(
                first.starts_with("vgate/gateway/") && first.contains("\"online\":true"),
                "the first line is the gateway's presence: {first}"
            );
            watcher = Some(running.len());
            running.push(b);
        } else {
            if script.starts_with("mosquitto_pub") {
                command = Some(published(script));
            }
            b.wait_success();
            if script.starts_with("vgate simulate") {
                simulator_output = b.seen.clone();
            }
        }
    }

    let (topic, cmd) = command.expect("a mosquitto_pub block");
    let id = cmd["id"].as_str().expect("command id").to_owned();
    let result_topic = format!("{topic}/result");
    let watcher = &mut running[watcher.expect("a mosquitto_sub block")];
    let mut statuses = Vec::new();
    // Everything the watcher printed so far, then what it prints next, until `acked`.
    let mut already = watcher.seen.clone().into_iter();
    let deadline = Instant::now() + LIMIT;
    while statuses.last().map(String::as_str) != Some("acked") {
        let line = match already.next() {
            Some(l) => l,
            None => watcher
                .next_line(deadline)
                .expect("the watcher ended before the command was acked"),
        };
        let Some((t, payload)) = line.split_once(' ') else {
            continue;
        };
        if t != result_topic {
            continue;
        }
        let ev: serde_json::Value = serde_json::from_str(payload).expect("result JSON");
        if ev["data"]["id"] == id.as_str() {
            statuses.push(ev["data"]["status"].as_str().unwrap_or("?").to_owned());
        }
    }
    assert_eq!(statuses, ["queued", "sent", "acked"], "results of {id}");
    assert!(
        simulator_output
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["commands", "answered", "1"]),
        "the simulator's summary says it answered the command: {simulator_output:?}"
    );
}
