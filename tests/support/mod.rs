//! Test support for the black-box tests: a Mosquitto of our own on a free port, the real
//! `vgate` binary started with environment variables, and an MQTT subscriber that collects
//! what the platform would see.
//!
//! Mosquitto, the subscriber and the outage proxy are the workspace's `test-support` crate
//! (shared with mqtt-bridge's tests); the `vgate` process is here, where cargo names its
//! binary (`CARGO_BIN_EXE_vgate`).

#![allow(dead_code, unused_imports)]

use gateway::simulate::Device;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

pub use test_support::{
    free_port, mosquitto_path, skip_note, wait_port, Mosquitto, Outage, Received, Subscriber,
};

/// The real `vgate run`, started with environment variables, killed on drop.
pub struct Vgate {
    pub child: Option<Child>,
    /// `listening <name> <addr>` lines, by name.
    pub listeners: Vec<(String, SocketAddr)>,
    pub data_dir: tempfile::TempDir,
    stderr_lines: std_mpsc::Receiver<String>,
}

/// How to start vgate.
#[derive(Default, Clone)]
pub struct VgateOptions {
    /// External broker URL; None = embedded broker on a free port.
    pub mqtt_url: Option<String>,
    pub extra_env: Vec<(String, String)>,
    pub config_toml: Option<String>,
    /// Listeners announced besides mqtt, jt808, gbt32960 and http (raw listeners).
    pub extra_listeners: usize,
}

impl Vgate {
    pub fn start(opts: VgateOptions) -> Vgate {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(opts, data_dir)
    }

    /// Starts vgate on an existing data dir (restart tests).
    pub fn start_in(opts: VgateOptions, data_dir: tempfile::TempDir) -> Vgate {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgate"));
        cmd.arg("run");
        if let Some(toml) = &opts.config_toml {
            let p = data_dir.path().join("vgate.toml");
            std::fs::write(&p, toml).expect("config");
            cmd.arg("--config").arg(p);
        }
        cmd.env("VGATE_JT808_LISTEN", "127.0.0.1:0")
            .env("VGATE_GBT32960_LISTEN", "127.0.0.1:0")
            .env("VGATE_HTTP_LISTEN", "127.0.0.1:0")
            .env("VGATE_DATA_DIR", data_dir.path())
            .env("VGATE_NODE_ID", "test-node")
            .env("VGATE_LOG", "info")
            .env_remove("VGATE_MQTT_URL");
        match &opts.mqtt_url {
            Some(url) => {
                cmd.env("VGATE_MQTT_URL", url);
            }
            None => {
                cmd.env(
                    "VGATE_EMBEDDED_MQTT_LISTEN",
                    format!("127.0.0.1:{}", free_port()),
                );
            }
        }
        for (k, v) in &opts.extra_env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn vgate");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[vgate] {line}");
                let _ = err_tx.send(line);
            }
        });
        let (tx, rx) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut listeners = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let expected = 4 + opts.extra_listeners
            - opts
                .extra_env
                .iter()
                .filter(|(k, v)| k.ends_with("_LISTEN") && v == "off")
                .count();
        while listeners.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening ") {
                        let mut it = rest.split_whitespace();
                        if let (Some(name), Some(addr)) = (it.next(), it.next()) {
                            listeners.push((name.to_owned(), addr.parse().expect("addr")));
                        }
                    }
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    panic!(
                        "vgate did not announce its listeners (got {listeners:?}, exit {status:?})"
                    );
                }
            }
            if opts.mqtt_url.is_some()
                && listeners.len() == expected - 1
                && listeners.iter().all(|(n, _)| n != "mqtt")
            {
                break;
            }
        }
        Vgate {
            child: Some(child),
            listeners,
            data_dir,
            stderr_lines: err_rx,
        }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener {name}"))
    }

    /// The MQTT port platform clients use: the embedded broker's.
    pub fn mqtt_port(&self) -> Option<u16> {
        self.listeners
            .iter()
            .find(|(n, _)| n == "mqtt")
            .map(|(_, a)| a.port())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("vgate did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while let Ok(line) = self
            .stderr_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(needle) {
                return true;
            }
        }
        false
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_log_line(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        while let Ok(line) = self
            .stderr_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    }

    /// Every stderr line not read yet, up to the end of the output: call it once vgate has
    /// exited ([`Vgate::terminate`]).
    pub fn remaining_log(&self) -> Vec<String> {
        let mut lines = Vec::new();
        // The reader thread ends, and the channel with it, when vgate's stderr closes.
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_secs(30)) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Vgate {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A simulated JT/T 808 terminal at `addr` that has registered and authenticated (the
/// platform's answers checked), ready to report or take commands.
pub async fn online_terminal(
    addr: SocketAddr,
    phone: &str,
    version: jt808::Version,
) -> gateway::simulate::jt808::Terminal {
    let mut t = gateway::simulate::jt808::Terminal::connect(addr, phone, version)
        .await
        .expect("connect");
    let code = t
        .register()
        .await
        .expect("register")
        .auth_code
        .expect("code");
    assert_eq!(t.authenticate(&code).await.expect("authenticate"), 0);
    t
}

/// Waits up to `wait` for a platform message with id `msg_id` without answering it (the
/// frames before it are dropped).
pub async fn next_downlink(
    t: &mut gateway::simulate::jt808::Terminal,
    msg_id: u16,
    wait: Duration,
) -> (jt808::Header, jt808::Message) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, t.next_frame())
            .await
            .expect("a downlink in time");
        let (h, m) = next.expect("read").expect("connection open");
        if h.msg_id == msg_id {
            return (h, m);
        }
    }
}

/// One HTTP request to vgate's HTTP listener over its own connection (HTTP/1.0: the answer
/// ends with the connection), with a bearer `token` and a `body` of `content_type` when
/// given: the status and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&http_request(method, path, token, body))
        .await
        .expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .expect("read");
    http_answer(raw)
}

/// [`http`] for tests without a runtime.
pub fn http_blocking(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(&http_request(method, path, token, body))
        .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    http_answer(raw)
}

/// The bytes of an HTTP/1.0 request.
fn http_request(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: vgate\r\n");
    if let Some(t) = token {
        req += &format!("Authorization: Bearer {t}\r\n");
    }
    let (content_type, bytes) = body.unwrap_or(("", b""));
    if !bytes.is_empty() {
        req += &format!("Content-Type: {content_type}\r\n");
    }
    req += &format!("Content-Length: {}\r\n\r\n", bytes.len());
    let mut out = req.into_bytes();
    out.extend_from_slice(bytes);
    out
}

/// The status and body of a whole HTTP answer.
fn http_answer(raw: Vec<u8>) -> (u16, String) {
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_owned())
}
