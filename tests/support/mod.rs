//! Test support for the black-box tests: a Mosquitto of our own on a free port, the real
//! `vgate` binary started with environment variables, and an MQTT subscriber that collects
//! what the platform would see.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Where mosquitto is, or None. With `CI` set, a missing mosquitto is a test failure.
pub fn mosquitto_path() -> Option<PathBuf> {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("mosquitto is required in CI (CI is set) but was not found; .ci/run installs it");
    }
    eprintln!("note: mosquitto not found; skipping (install it with apt-get install mosquitto)");
    None
}

/// A Mosquitto broker of our own, killed on drop.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Mosquitto {
    /// Starts mosquitto on a free port (anonymous access), or None when it is not installed
    /// (and CI is not set).
    pub fn start() -> Option<Mosquitto> {
        Self::start_with(false)
    }

    /// Like [`Mosquitto::start`], with persistence on: sessions, subscriptions and queued
    /// messages survive [`Mosquitto::stop`] + [`Mosquitto::restart`].
    pub fn start_persistent() -> Option<Mosquitto> {
        Self::start_with(true)
    }

    /// Like [`Mosquitto::start`], with an ACL file of these lines for every (anonymous)
    /// client, e.g. `topic readwrite #` then `topic deny vgate/v1/+/telemetry`. An MQTT 5
    /// client's publish to a denied topic gets a PUBACK with reason "not authorized".
    pub fn start_with_acl(acl: &str) -> Option<Mosquitto> {
        let m = Self::start_with(false)?;
        let acl_path = m._dir.path().join("acl");
        std::fs::write(&acl_path, acl).expect("acl");
        // Mosquitto 2.0.11 with max_queued_messages 0 closes the connection of a client right
        // after answering its denied QoS 1 publish ("Bad socket read/write"); with a limit it
        // does not. These tests carry few messages, so the default limit is safe.
        let mut conf = std::fs::read_to_string(&m.conf)
            .expect("conf")
            .replace("max_queued_messages 0\n", "");
        conf.push_str(&format!("acl_file {}\n", acl_path.display()));
        std::fs::write(&m.conf, conf).expect("conf");
        let mut m = m;
        m.stop();
        m.restart();
        Some(m)
    }

    fn start_with(persistent: bool) -> Option<Mosquitto> {
        mosquitto_path()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let persistence = if persistent {
            format!(
                "persistence true\npersistence_location {}/\nautosave_interval 1\nmax_queued_messages 100000\n",
                dir.path().display()
            )
        } else {
            // No limit on a subscriber's queue: mosquitto's default (1000) silently drops
            // QoS 1 messages for a test subscriber that falls behind.
            "persistence false\nmax_queued_messages 0\n".to_owned()
        };
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{persistence}"),
        )
        .expect("conf");
        let child = Self::spawn(&conf, port);
        Some(Mosquitto {
            child,
            port,
            _dir: dir,
            conf,
        })
    }

    fn spawn(conf: &Path, port: u16) -> Child {
        let child = Command::new(mosquitto_path().expect("mosquitto"))
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        wait_port(port, Duration::from_secs(10));
        child
    }

    /// Stops the broker gracefully (SIGTERM: a persistent broker saves its state).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Sends `signal` ("STOP", "CONT") to the broker: a stopped broker keeps its TCP
    /// connections open but answers nothing, like a stuck one.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Starts the broker again on the same port with the same configuration.
    pub fn restart(&mut self) {
        self.child = Self::spawn(&self.conf, self.port);
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts on 127.0.0.1:port.
pub fn wait_port(port: u16, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on port {port} after {limit:?}");
}

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

/// A platform-side MQTT client collecting every message on the filters it subscribed.
pub struct Subscriber {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>, bool)>,
}

/// One received message: topic, JSON payload, retain flag.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub json: serde_json::Value,
    pub retain: bool,
}

impl Subscriber {
    pub async fn connect(port: u16, filters: &[&str]) -> Subscriber {
        Self::connect_with(port, filters, QoS::AtLeastOnce).await
    }

    /// Like [`Subscriber::connect`], subscribing at `qos`. At QoS 0 the broker does not wait
    /// for this (debug-built, busy) test client's PUBACKs: a flood of results is not limited
    /// by the broker's inflight window towards it.
    pub async fn connect_with(port: u16, filters: &[&str], qos: QoS) -> Subscriber {
        let id = format!("test-sub-{}", free_port());
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec(), p.retain));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        for f in filters {
            client.subscribe(*f, qos).await.expect("subscribe");
        }
        for _ in filters {
            tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
                .await
                .expect("suback")
                .expect("suback");
        }
        Subscriber { client, rx }
    }

    /// The next message whose topic ends with `suffix`, skipping others, within `limit`.
    pub async fn next_on(&mut self, suffix: &str, limit: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no message on *{suffix} within {limit:?}"))
                .expect("subscriber closed");
            if got.0.ends_with(suffix) {
                let json = serde_json::from_slice(&got.1)
                    .unwrap_or_else(|e| panic!("payload on {} is not JSON: {e}", got.0));
                return Received {
                    topic: got.0,
                    json,
                    retain: got.2,
                };
            }
        }
    }

    /// How many messages are waiting now, taken without waiting (a zero-length `drain`
    /// would wait for the timer's next tick, a millisecond, per call).
    pub fn take_ready(&mut self) -> usize {
        let mut n = 0;
        while self.rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    /// Every message received within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Received> {
        let mut v = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(got)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            if let Ok(json) = serde_json::from_slice(&got.1) {
                v.push(Received {
                    topic: got.0,
                    json,
                    retain: got.2,
                });
            }
        }
        v
    }
}

/// A TCP proxy in front of a broker that a test can cut and restore: vgate loses its broker
/// while the platform's subscriber (connected to the broker directly) stays connected.
pub struct Outage {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Outage {
    /// Listens on a free port and forwards to 127.0.0.1:`to`.
    pub async fn start(to: u16) -> Outage {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (u, g) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !u.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (u, g) = (u.clone(), g.clone());
                let born = g.load(std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    tokio::pin!(copy);
                    loop {
                        tokio::select! {
                            _ = &mut copy => return,
                            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                                if !u.load(std::sync::atomic::Ordering::SeqCst) || g.load(std::sync::atomic::Ordering::SeqCst) != born {
                                    return; // drops both sockets: the connection is cut
                                }
                            }
                        }
                    }
                });
            }
        });
        Outage {
            port,
            up,
            generation,
        }
    }

    /// Cuts every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
