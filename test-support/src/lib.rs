//! Test harness shared by the gateway's black-box tests (`tests/`, through `tests/support`)
//! and mqtt-bridge's tests (`mqtt-bridge/tests/`, through `tests/common`).
//!
//! - [`Mosquitto`]: a broker of our own per test, on a free port. A port from [`free_port`]
//!   is released before Mosquitto binds it, so another process may take it in between: a
//!   start on a free port ([`Mosquitto::start`], [`Mosquitto::start_at`] with port 0) picks
//!   another port and retries when Mosquitto exits or never listens.
//! - [`mosquitto_path`], [`mosquitto_available`]: where Mosquitto is. Without it a test skips
//!   and prints `note: <test> skipped: ...` on stderr (a failure instead when `CI` is set).
//!   `VGATE_TEST_MOSQUITTO` overrides the path (a path that does not exist: every Mosquitto
//!   test skips, which is how the skip note is checked).
//! - [`Subscriber`]: a platform-side MQTT client collecting what it receives.
//! - [`Outage`]: a TCP proxy in front of a broker that a test can cut and restore.
//! - [`redis::RedisServer`]: a redis-server of our own per test (cluster mode).

#![forbid(unsafe_code)]

pub mod http;
pub mod redis;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;

/// Only there to keep a broken test from hanging forever; never a pass/fail criterion.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// How many ports a start on a free port tries before it gives up.
const PORT_ATTEMPTS: usize = 5;

/// A free TCP port on 127.0.0.1 (bound then released: another process may take it before
/// the caller binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub mod s3;

/// The running test's name (the test harness names each test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned()
}

/// A program the tests need: `env` names its path when set (a path that does not exist
/// counts as missing), else the first of `candidates` that exists. Missing, it panics when
/// `CI` is set and otherwise prints that the running test skips, with `install` (how to get
/// it), and gives None.
pub fn find_tool(env: &str, candidates: &[PathBuf], name: &str, install: &str) -> Option<PathBuf> {
    let found = match std::env::var_os(env) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.exists()),
        None => candidates.iter().find(|p| p.exists()).cloned(),
    };
    if found.is_some() {
        return found;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{name} is required in CI (CI is set) but was not found; .ci/run installs it ({env})"
        );
    }
    skip_note(&format!(
        "{} skipped: {name} not found ({install}, or set {env})",
        test_name()
    ));
    None
}

/// Where mosquitto is, or None (after printing that the running test skips). With `CI` set,
/// a missing mosquitto is a test failure.
pub fn mosquitto_path() -> Option<PathBuf> {
    let candidates = [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .map(PathBuf::from);
    find_tool(
        "VGATE_TEST_MOSQUITTO",
        &candidates,
        "mosquitto",
        "install it with apt-get install mosquitto",
    )
}

/// Prints `note: {what}` on the process's stderr, past the test harness's output capture
/// (which shows a passing test's `eprintln!` only with `--nocapture`): a skipped test is
/// visible in a plain `cargo test` run.
pub fn skip_note(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "note: {what}");
}

/// Whether mosquitto can run here; without it the test fails under CI and skips otherwise
/// (printing `note: <test> skipped: ...`).
pub fn mosquitto_available(test: &str) -> bool {
    let _ = test; // the note names the test's thread, which is the test's full path
    mosquitto_path().is_some()
}

/// A Mosquitto broker of our own, killed on drop.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    conf: PathBuf,
    _certs: Option<tempfile::TempDir>,
}

impl Mosquitto {
    /// Starts mosquitto on a free port (anonymous access), or None when it is not installed
    /// (and CI is not set).
    pub fn start() -> Option<Mosquitto> {
        mosquitto_path()?;
        Some(Self::launch(0, None, "", None))
    }

    /// Like [`Mosquitto::start`], with persistence on: sessions, subscriptions and queued
    /// messages survive [`Mosquitto::stop`] + [`Mosquitto::restart`].
    pub fn start_persistent() -> Option<Mosquitto> {
        mosquitto_path()?;
        let m = Self::launch(0, None, "", None);
        let extra = format!(
            "persistence true\npersistence_location {}/\nautosave_interval 1\nmax_queued_messages 100000\n",
            m.dir.path().display()
        );
        Some(m.reconfigured(|conf| {
            conf.replace("persistence false\n", "")
                .replace("max_queued_messages 0\n", "")
                + &extra
        }))
    }

    /// Like [`Mosquitto::start`], with an ACL file of these lines for every (anonymous)
    /// client, e.g. `topic readwrite #` then `topic deny vgate/v1/+/telemetry`. An MQTT 5
    /// client's publish to a denied topic gets a PUBACK with reason "not authorized".
    pub fn start_with_acl(acl: &str) -> Option<Mosquitto> {
        mosquitto_path()?;
        let m = Self::launch(0, None, "", None);
        let acl_path = m.dir.path().join("acl");
        std::fs::write(&acl_path, acl).expect("acl");
        // Mosquitto 2.0.11 with max_queued_messages 0 closes the connection of a client right
        // after answering its denied QoS 1 publish ("Bad socket read/write"); with a limit it
        // does not. These tests carry few messages, so the default limit is safe.
        Some(m.reconfigured(|conf| {
            conf.replace("max_queued_messages 0\n", "")
                + &format!("acl_file {}\n", acl_path.display())
        }))
    }

    /// Starts mosquitto on `port` (0: a free port, retried on a conflict), anonymous, or
    /// requiring `user`/`pass` when given. Call [`mosquitto_available`] first.
    pub fn start_at(port: u16, credentials: Option<(&str, &str)>) -> Mosquitto {
        Self::launch(port, credentials, "", None)
    }

    /// Starts mosquitto with TLS on `port` (0: a free port): a test CA, and a server
    /// certificate for `localhost`, made with openssl. Returns the broker and the CA file.
    pub fn start_tls_at(port: u16) -> (Mosquitto, PathBuf) {
        let certs = tempfile::tempdir().expect("temp dir");
        let d = certs.path();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            d.join("ext.cnf"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("write ext");
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=vgate test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        // mosquitto drops root for its own user before reading the key: let it read them.
        use std::os::unix::fs::PermissionsExt;
        let readable = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        readable(d, 0o755);
        for f in ["ca.pem", "server.pem", "server.key"] {
            readable(&d.join(f), 0o644);
        }
        let extra = format!(
            "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
            d.display()
        );
        let ca = d.join("ca.pem");
        let m = Self::launch(port, None, &extra, Some(certs));
        (m, ca)
    }

    /// Starts mosquitto on `port` (0: a free port) with persistence in `data` (kept across
    /// restarts): sessions and their queued messages survive a [`Mosquitto::terminate`] and
    /// a new start.
    pub fn start_persistent_at(port: u16, data: &Path) -> Mosquitto {
        // mosquitto drops root for its own user before writing its database.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let extra = format!(
            "persistence true\npersistence_location {}/\nautosave_interval 0\nmax_queued_messages 0\n",
            data.display()
        );
        Self::launch(port, None, &extra, None)
    }

    /// Writes the configuration and starts mosquitto on `port`; with port 0 on a free port,
    /// and on another one when that one was taken in the meantime (mosquitto exits, or does
    /// not listen). A fixed port is retried as is (a restart on the same port).
    fn launch(
        port: u16,
        credentials: Option<(&str, &str)>,
        extra: &str,
        certs: Option<tempfile::TempDir>,
    ) -> Mosquitto {
        let mosquitto = mosquitto_path().expect("mosquitto is installed");
        let dir = tempfile::tempdir().expect("temp dir");
        let persistence = if extra.contains("persistence true") {
            ""
        } else {
            "persistence false\n"
        };
        // No limit on a subscriber's queue: mosquitto's default (1000) silently drops QoS 1
        // messages for a test subscriber that falls behind.
        let queue = if extra.contains("max_queued_messages") {
            ""
        } else {
            "max_queued_messages 0\n"
        };
        let mut body = format!("{queue}{persistence}{extra}");
        match credentials {
            None => body.push_str("allow_anonymous true\n"),
            Some((user, pass)) => {
                let pw = dir.path().join("passwd");
                let status = Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&pw)
                    .args([user, pass])
                    .status()
                    .expect("mosquitto_passwd runs");
                assert!(status.success(), "mosquitto_passwd failed");
                body.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    pw.display()
                ));
            }
        }
        let conf = dir.path().join("mosquitto.conf");
        let mut tried = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let p = if port == 0 { free_port() } else { port };
            tried.push(p);
            std::fs::write(&conf, format!("listener {p} 127.0.0.1\n{body}")).expect("conf");
            if let Some(child) = spawn(&mosquitto, &conf, p) {
                return Mosquitto {
                    child,
                    port: p,
                    dir,
                    conf,
                    _certs: certs,
                };
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("mosquitto did not start on any of the ports {tried:?}");
    }

    /// Rewrites the configuration with `edit` and restarts the broker on its port.
    fn reconfigured(mut self, edit: impl FnOnce(String) -> String) -> Mosquitto {
        let conf = edit(std::fs::read_to_string(&self.conf).expect("conf"));
        std::fs::write(&self.conf, conf).expect("conf");
        self.stop();
        self.restart();
        self
    }

    /// Stops the broker gracefully (SIGTERM: a persistent broker saves its state).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same port with the same configuration.
    pub fn restart(&mut self) {
        let mosquitto = mosquitto_path().expect("mosquitto is installed");
        for _ in 0..PORT_ATTEMPTS {
            if let Some(child) = spawn(&mosquitto, &self.conf, self.port) {
                self.child = child;
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("mosquitto did not start again on port {}", self.port);
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

    /// Kills the broker (abruptly: clients see the TCP connection drop).
    pub fn kill(mut self) {
        self.kill_now();
    }

    /// Stops the broker with SIGTERM: it saves its persistence database, then exits.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let _ = self.child.wait();
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Starts mosquitto with `conf` and waits until it listens on `port`. None when it exited
/// (the port was taken: "Address already in use") or did not listen in time.
fn spawn(mosquitto: &Path, conf: &Path, port: u16) -> Option<Child> {
    let mut child = Command::new(mosquitto)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto");
    let start = Instant::now();
    while start.elapsed() < HANG_GUARD {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Whoever took the port answers too: mosquitto, failing to bind, exits at once.
            std::thread::sleep(Duration::from_millis(50));
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
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

/// Waits (bounded by the hang guard) until something accepts on `addr`.
pub fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < HANG_GUARD, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A platform-side MQTT client collecting every message on the filters it subscribed.
pub struct Subscriber {
    pub client: AsyncClient,
    pub rx: mpsc::UnboundedReceiver<Publish>,
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
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("test-sub-{}-{n}-{}", std::process::id(), free_port());
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for f in filters {
            client.subscribe(*f, qos).await.expect("subscribe");
        }
        for _ in filters {
            tokio::time::timeout(HANG_GUARD, ready_rx.recv())
                .await
                .expect("SUBACK in time")
                .expect("subscriber alive");
        }
        Subscriber { client, rx }
    }

    /// The next message (panics only if none comes before the hang guard).
    pub async fn next(&mut self) -> Publish {
        tokio::time::timeout(HANG_GUARD, self.rx.recv())
            .await
            .expect("a message before the hang guard")
            .expect("subscriber alive")
    }

    /// The next message on exactly `topic`, skipping others (within the hang guard).
    pub async fn next_publish_on(&mut self, topic: &str) -> Publish {
        loop {
            let p = self.next().await;
            if p.topic == topic {
                return p;
            }
        }
    }

    /// The next message whose topic ends with `suffix`, skipping others, within `limit`,
    /// with its payload parsed as JSON.
    pub async fn next_on(&mut self, suffix: &str, limit: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no message on *{suffix} within {limit:?}"))
                .expect("subscriber closed");
            if got.topic.ends_with(suffix) {
                let json = serde_json::from_slice(&got.payload)
                    .unwrap_or_else(|e| panic!("payload on {} is not JSON: {e}", got.topic));
                return Received {
                    topic: got.topic,
                    json,
                    retain: got.retain,
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

    /// Every message with a JSON payload received within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Received> {
        let mut v = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(got)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            if let Ok(json) = serde_json::from_slice(&got.payload) {
                v.push(Received {
                    topic: got.topic,
                    json,
                    retain: got.retain,
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
        use std::sync::atomic::Ordering::SeqCst;
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
                if !u.load(SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (u, g) = (u.clone(), g.clone());
                let born = g.load(SeqCst);
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
                                if !u.load(SeqCst) || g.load(SeqCst) != born {
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
        use std::sync::atomic::Ordering::SeqCst;
        self.up.store(false, SeqCst);
        self.generation.fetch_add(1, SeqCst);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mosquitto_that_finds_its_port_taken_is_detected_and_the_start_moves_on() {
        let Some(mosquitto) = mosquitto_path() else {
            return;
        };
        // Something else listens on the port (and answers connects): mosquitto exits.
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("conf");
        assert!(spawn(&mosquitto, &conf, port).is_none());
        // A start on a free port ends up listening on one.
        let m = Mosquitto::start_at(0, None);
        assert_ne!(m.port, 0);
        wait_port(m.port, Duration::from_secs(1));
    }
}
