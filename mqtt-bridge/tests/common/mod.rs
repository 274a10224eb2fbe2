//! Test harness: a mosquitto per test on a free port, a rumqttc subscriber, sample events.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codecs::event::{Lifecycle, LifecycleKind, Presence, PresenceReason};
use codecs::{Data, Event, EventContext, Protocol};
use mqtt_bridge::MqttConfig;
use rumqttc::{AsyncClient, Event as MqEvent, Incoming, MqttOptions, Publish, QoS};
use tokio::sync::mpsc;

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// Only there to keep a broken test from hanging forever; never a pass/fail criterion.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether mosquitto can run here; without it the test fails under CI and skips otherwise.
pub fn mosquitto_available(test: &str) -> bool {
    if Path::new(MOSQUITTO).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{MOSQUITTO} is missing and CI is set: install mosquitto");
    }
    eprintln!("note: {test} skipped: {MOSQUITTO} is not installed");
    false
}

/// A mosquitto process, killed on drop.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    _certs: Option<tempfile::TempDir>,
}

impl Mosquitto {
    /// Starts mosquitto on `port`, anonymous, or requiring `user`/`pass` when given.
    pub fn start(port: u16, credentials: Option<(&str, &str)>) -> Mosquitto {
        Self::start_with(port, credentials, "")
    }

    /// Starts mosquitto with TLS on `port`: a test CA, and a server certificate for
    /// `localhost`, made with openssl. Returns the broker and the CA file.
    pub fn start_tls(port: u16) -> (Mosquitto, std::path::PathBuf) {
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
        let mut m = Self::start_with(port, None, &extra);
        let ca = d.join("ca.pem");
        m._certs = Some(certs);
        (m, ca)
    }

    /// Starts mosquitto on `port` with persistence in `data` (kept across restarts): sessions
    /// and their queued messages survive a [`Mosquitto::terminate`] and a new start.
    pub fn start_persistent(port: u16, data: &Path) -> Mosquitto {
        // mosquitto drops root for its own user before writing its database.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let extra = format!(
            "persistence true\npersistence_location {}/\nautosave_interval 0\nmax_queued_messages 0\n",
            data.display()
        );
        Self::start_with(port, None, &extra)
    }

    fn start_with(port: u16, credentials: Option<(&str, &str)>, extra: &str) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        let persistence = if extra.contains("persistence true") {
            ""
        } else {
            "persistence false\n"
        };
        // No limit on a subscriber's queue: mosquitto's default (1000) silently drops QoS 1
        // messages for a test subscriber that falls behind a fast bridge.
        let queue = if extra.contains("max_queued_messages") {
            ""
        } else {
            "max_queued_messages 0\n"
        };
        let mut conf = format!("listener {port} 127.0.0.1\n{queue}{persistence}{extra}");
        match credentials {
            None => conf.push_str("allow_anonymous true\n"),
            Some((user, pass)) => {
                let pw = dir.path().join("passwd");
                let status = Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&pw)
                    .args([user, pass])
                    .status()
                    .expect("mosquitto_passwd runs");
                assert!(status.success(), "mosquitto_passwd failed");
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    pw.display()
                ));
            }
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write config");
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let m = Mosquitto {
            child,
            port,
            _dir: dir,
            _certs: None,
        };
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port)));
        m
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Kills the broker (abruptly: clients see the TCP connection drop).
    pub fn kill(mut self) {
        self.stop();
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the broker process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
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

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < HANG_GUARD, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bridge config for an external broker at `url`, with quick reconnects.
pub fn external(url: &str) -> MqttConfig {
    MqttConfig {
        url: Some(url.to_owned()),
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        connect_timeout_s: 10,
        ..MqttConfig::default()
    }
}

/// As [`external`], speaking MQTT 5.
pub fn external_v5(url: &str) -> MqttConfig {
    MqttConfig {
        protocol: mqtt_bridge::MqttProtocol::V5,
        ..external(url)
    }
}

/// A bridge config with the embedded broker on a free port.
pub fn embedded() -> MqttConfig {
    MqttConfig {
        embedded_listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        connect_timeout_s: 10,
        ..MqttConfig::default()
    }
}

/// A platform-side client subscribed to `filters`; yields every message received.
pub struct Subscriber {
    pub client: AsyncClient,
    pub rx: mpsc::Receiver<Publish>,
}

impl Subscriber {
    pub async fn connect(port: u16, filters: &[&str]) -> Subscriber {
        let id = format!("test-sub-{}", ulid::Ulid::new());
        let opts = MqttOptions::new(id, "127.0.0.1", port);
        let (client, mut ev) = AsyncClient::new(opts, 16);
        let (tx, rx) = mpsc::channel(64);
        let (subacked_tx, mut subacked) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(MqEvent::Incoming(Incoming::Publish(p))) => {
                        if tx.send(p).await.is_err() {
                            return;
                        }
                    }
                    Ok(MqEvent::Incoming(Incoming::SubAck(_))) => {
                        let _ = subacked_tx.send(()).await;
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for f in filters {
            client
                .subscribe(*f, QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            tokio::time::timeout(HANG_GUARD, subacked.recv())
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

    /// The next message on `topic`, skipping others.
    pub async fn next_on(&mut self, topic: &str) -> Publish {
        loop {
            let p = self.next().await;
            if p.topic == topic {
                return p;
            }
        }
    }
}

pub fn ctx() -> EventContext {
    EventContext::now(Arc::<str>::from("node-1"))
}

pub fn login_event(vid: &str) -> Event {
    Event::new(
        &ctx(),
        vid.into(),
        Protocol::Jt808_2013,
        None,
        Some(7),
        Data::Lifecycle(Lifecycle::new(LifecycleKind::Login)),
    )
}

pub fn presence_event(vid: &str, online: bool) -> Event {
    Event::new(
        &ctx(),
        vid.into(),
        Protocol::Gbt32960_2016,
        None,
        None,
        Data::Status(Presence {
            online,
            reason: PresenceReason::Login,
            protocol: Protocol::Gbt32960_2016,
            peer: Some("10.0.0.1:5000".into()),
            since: chrono::Utc::now(),
        }),
    )
}

pub fn json(p: &Publish) -> serde_json::Value {
    serde_json::from_slice(&p.payload).expect("payload is JSON")
}

/// Scenarios run against both brokers.
pub mod scenarios {
    use super::*;
    use mqtt_bridge::{Bridge, Target};

    /// A subscriber on `{p}/v1/+/+` receives the event on its topic with the exact JSON.
    pub async fn event_arrives_with_exact_json(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-1", "vgate")
            .await
            .expect("bridge starts");
        let mut sub = Subscriber::connect(port, &["vgate/v1/+/+"]).await;
        let ev = login_event("013800138000");
        let delivery = bridge.publisher().publish_event(&ev).await.expect("queued");
        tokio::time::timeout(HANG_GUARD, delivery)
            .await
            .expect("PUBACK before the hang guard")
            .expect("delivered");
        let got = sub.next_on("vgate/v1/013800138000/lifecycle").await;
        assert_eq!(
            std::str::from_utf8(&got.payload).expect("utf-8"),
            ev.to_json()
        );
        assert!(!got.retain);
        bridge.shutdown().await.expect("clean shutdown");
    }

    /// Presence is retained: a client subscribing after the publish still gets it.
    pub async fn retained_presence_reaches_late_subscriber(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-1", "vgate")
            .await
            .expect("bridge starts");
        let ev = presence_event("LSVAB1234C5678901", true);
        let d = bridge
            .publisher()
            .publish_presence("LSVAB1234C5678901", &ev)
            .await
            .expect("queued");
        tokio::time::timeout(HANG_GUARD, d)
            .await
            .expect("in time")
            .expect("delivered");
        let mut late = Subscriber::connect(port, &["vgate/v1/LSVAB1234C5678901/status"]).await;
        let got = late.next().await;
        assert!(got.retain, "a late subscriber gets the retained copy");
        assert_eq!(json(&got)["data"]["online"], true);
        assert_eq!(json(&got)["event_id"], ev.event_id.to_string());
        bridge.shutdown().await.expect("clean shutdown");
    }

    /// The gateway's own status is retained online while it runs, offline after shutdown.
    pub async fn gateway_status_is_online_then_offline(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-7", "fleet")
            .await
            .expect("bridge starts");
        let mut sub = Subscriber::connect(port, &["fleet/gateway/node-7/status"]).await;
        let online = sub.next().await;
        assert!(online.retain);
        assert_eq!(json(&online)["online"], true);
        assert_eq!(json(&online)["node"], "node-7");
        assert!(json(&online)["since"].is_string());
        bridge.shutdown().await.expect("clean shutdown");
        let offline = sub.next().await;
        assert_eq!(json(&offline)["online"], false);
    }

    /// Vehicle and broadcast commands arrive on the channel with their targets.
    pub async fn commands_arrive_with_their_targets(cfg: MqttConfig, port: u16) {
        let mut bridge = Bridge::start(&cfg, "node-1", "vgate")
            .await
            .expect("bridge starts");
        let mut commands = bridge.take_commands().expect("first take");
        assert!(bridge.take_commands().is_none());
        let platform = Subscriber::connect(port, &[]).await;
        let body = r#"{"id":"c-1","type":"query_location"}"#;
        platform
            .client
            .publish("vgate/v1/013800138000/cmd", QoS::AtLeastOnce, false, body)
            .await
            .expect("platform publishes");
        let cmd = tokio::time::timeout(HANG_GUARD, commands.recv())
            .await
            .expect("in time")
            .expect("channel open");
        assert_eq!(cmd.target, Target::Vehicle("013800138000".into()));
        assert_eq!(&cmd.payload[..], body.as_bytes());
        assert_eq!(cmd.response_topic, None);
        cmd.ack().await.expect("acked");

        platform
            .client
            .publish("vgate/broadcast/jt808/cmd", QoS::AtLeastOnce, false, "{}")
            .await
            .expect("platform publishes");
        let cmd = tokio::time::timeout(HANG_GUARD, commands.recv())
            .await
            .expect("in time")
            .expect("channel open");
        assert_eq!(cmd.target, Target::Group("jt808".into()));
        cmd.ack().await.expect("acked");
        bridge.shutdown().await.expect("clean shutdown");
    }

    /// Dropping the bridge without shutdown cuts the connection: the broker publishes the
    /// retained offline last will.
    pub async fn last_will_marks_gateway_offline(cfg: MqttConfig, port: u16) {
        let bridge = Bridge::start(&cfg, "node-9", "vgate")
            .await
            .expect("bridge starts");
        let mut sub = Subscriber::connect(port, &["vgate/gateway/node-9/status"]).await;
        assert_eq!(json(&sub.next().await)["online"], true);
        drop(bridge);
        let will = sub.next().await;
        assert_eq!(json(&will)["online"], false);
        assert_eq!(json(&will)["node"], "node-9");
        let mut late = Subscriber::connect(port, &["vgate/gateway/node-9/status"]).await;
        let retained = late.next().await;
        assert!(retained.retain);
        assert_eq!(json(&retained)["online"], false);
    }
}

/// A platform client with a persistent session: the broker keeps what is published for it
/// across a broker restart with persistence.
pub async fn persistent_subscriber(port: u16, filter: &str) -> mpsc::Receiver<Publish> {
    let id = format!("platform-{}", ulid::Ulid::new());
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut ev) = AsyncClient::new(opts, 16);
    let (tx, rx) = mpsc::channel(1024);
    let (subacked_tx, mut subacked) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(MqEvent::Incoming(Incoming::Publish(p))) => {
                    if tx.send(p).await.is_err() {
                        return;
                    }
                }
                Ok(MqEvent::Incoming(Incoming::SubAck(_))) => {
                    let _ = subacked_tx.try_send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    tokio::time::timeout(HANG_GUARD, subacked.recv())
        .await
        .expect("SUBACK in time")
        .expect("subscriber alive");
    // The event loop keeps the connection (and reconnects) without the handle.
    std::mem::forget(client);
    rx
}

/// Waits (bounded by the hang guard) until `cond` holds.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG_GUARD, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
