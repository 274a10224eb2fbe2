//! Lanes: the bridge's MQTT connections (`mqtt.connections`), each with its own queue,
//! forwarder (or store-and-forward relay and spool), tracker and event loop.
//!
//! ```text
//!  Publisher --fnv1a(vehicle) % N--> queue i --> forwarder/relay i --> rumqttc i --TCP--> broker
//!            --raw, response, gateway status--> queue 0 (lane 0)
//! ```
//!
//! Lane 0 is the gateway's connection: client id `client_id`, the retained offline last
//! will, the command subscriptions and the online status on every CONNACK, the spool in
//! `spool.dir`. Lanes 1.. are publish-only: client id `{client_id}-{i}`, no will, no
//! subscriptions, the spool in `{spool.dir}/lane-{i}`; same broker, credentials, TLS,
//! protocol, keepalive, persistent session and backoff. Why: a broker such as Mosquitto
//! spends about 30% more CPU per message when everything comes over one connection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bridge::{first_connect, request_channel, run, Loop};
use crate::client::{network_options, options, options_v5, BrokerAddr};
use crate::commands::Intake;
use crate::config::{MqttConfig, MqttProtocol};
use crate::connection::Client;
use crate::publisher::{forward, Job, Publisher};
use crate::relay::Relay;
use crate::spool::Spool;
use crate::topics::Topics;
use crate::tracker::Tracker;
use crate::BridgeError;

/// The spool directory of lane `i`: lane 0 keeps `dir` itself (so a spool written before
/// lanes existed replays), lane `i` uses `dir/lane-{i}`.
pub(crate) fn spool_dir(dir: &Path, i: usize) -> PathBuf {
    if i == 0 {
        dir.to_owned()
    } else {
        dir.join(format!("lane-{i}"))
    }
}

/// The client id of lane `i`.
pub(crate) fn client_id(base: &str, i: usize) -> String {
    if i == 0 {
        base.to_owned()
    } else {
        format!("{base}-{i}")
    }
}

/// Opens the spools of `lanes` lanes under `dir` (blocking file work, off the runtime).
/// `max_bytes` is for all of them: each lane's spool may hold `max_bytes / lanes`.
pub(crate) async fn open_spools(
    cfg: &MqttConfig,
    lanes: usize,
) -> Result<Vec<Option<Arc<Spool>>>, BridgeError> {
    let Some(dir) = &cfg.spool.dir else {
        return Ok(vec![None; lanes]);
    };
    let mut spools = Vec::with_capacity(lanes);
    let max = (cfg.spool.max_bytes / lanes.max(1) as u64).max(1);
    for i in 0..lanes {
        let (dir, when) = (spool_dir(dir, i), cfg.spool.when_full);
        let s = tokio::task::spawn_blocking(move || Spool::open(&dir, max, when))
            .await
            .map_err(blocking_failed)??;
        spools.push(Some(Arc::new(s)));
    }
    let targets: Vec<Arc<Spool>> = spools.iter().flatten().cloned().collect();
    let (dir, max, when) = (dir.clone(), cfg.spool.max_bytes, cfg.spool.when_full);
    tokio::task::spawn_blocking(move || adopt_orphans(&dir, &targets, max, when))
        .await
        .map_err(blocking_failed)?;
    Ok(spools)
}

/// The spool's blocking file work did not finish (its thread panicked or the runtime is
/// shutting down).
fn blocking_failed(e: tokio::task::JoinError) -> BridgeError {
    BridgeError::File {
        key: "mqtt.spool.dir",
        path: String::new(),
        reason: e.to_string(),
    }
}

/// The lane a spool directory name (`lane-{i}`) belongs to.
fn lane_of_dir(name: &str) -> Option<usize> {
    name.strip_prefix("lane-")?.parse().ok()
}

/// Spools of lanes that no longer exist (`mqtt.connections` was lowered while they held
/// publishes, e.g. after an outage): their records are moved to the end of lane `i % lanes`'s
/// spool, which replays them, and the emptied directory is removed. Without this they would
/// never be sent, though vehicles were told they were safe. (A vehicle's lane changes with
/// the number of lanes anyway, so its old spooled publishes and its new ones may reach the
/// broker out of order across such a change; none is lost.)
fn adopt_orphans(dir: &Path, lanes: &[Arc<Spool>], max_bytes: u64, when: crate::config::WhenFull) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut orphans: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let i = lane_of_dir(e.file_name().to_str()?)?;
            (i >= lanes.len() && e.path().is_dir()).then(|| (i, e.path()))
        })
        .collect();
    orphans.sort();
    for (i, path) in orphans {
        let to = i % lanes.len().max(1);
        let Some(target) = lanes.get(to) else {
            return;
        };
        // A spool that cannot be read stays where it is (logged, retried at the next start):
        // it must not keep the gateway from serving vehicles.
        let moved = Spool::open(&path, max_bytes, when).and_then(|orphan| {
            let held = orphan.len();
            let moved = orphan.move_into(target)?;
            Ok((held, moved, orphan.len()))
        });
        match moved {
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "spool of a lane that no longer exists (mqtt.connections lowered) not replayed");
            }
            Ok((held, moved, left)) => {
                if left == 0 {
                    if let Err(e) = std::fs::remove_dir_all(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "emptied spool of a removed lane not deleted");
                    }
                } else {
                    tracing::warn!(path = %path.display(), left, "spool of a removed lane only partly moved (the lane's spool is full); the rest at the next start");
                }
                if held > 0 {
                    tracing::info!(
                        from_lane = i,
                        to_lane = to,
                        moved,
                        "spool of a lane that no longer exists (mqtt.connections lowered) moved to a lane's spool"
                    );
                }
            }
        }
    }
}

/// The event loop of the protocol in use.
pub(crate) enum EventLoops {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// A lane's connection after its first connect attempt.
pub(crate) struct Connected {
    pub client: Client,
    pub event_loop: EventLoops,
    /// Whether the broker answered (false: a degraded start with a spool, still retrying).
    pub up: bool,
}

/// How a lane connects.
pub(crate) struct Dial<'a> {
    pub cfg: &'a MqttConfig,
    pub addr: &'a BrokerAddr,
    pub broker: &'a str,
    pub protocol: MqttProtocol,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub spooled: bool,
}

impl Dial<'_> {
    /// Connects lane `i` as `client_id` (with `will` on lane 0): the first CONNACK, retried
    /// with backoff until the connect timeout. With a spool an unreachable broker is not an
    /// error (`up` false, the event loop keeps trying); a refusal always is.
    pub async fn connect(
        &self,
        i: usize,
        client_id: &str,
        will: Option<(String, Vec<u8>)>,
    ) -> Result<Connected, BridgeError> {
        let primary = i == 0;
        let (b, t, lo, hi) = (
            self.broker,
            self.connect_timeout,
            self.backoff_min,
            self.backoff_max,
        );
        match self.protocol {
            MqttProtocol::V311 => {
                let opts = options(self.cfg, self.addr, client_id, will)?;
                let (client, mut ev) =
                    rumqttc::AsyncClient::new(opts, request_channel(self.cfg.inflight));
                ev.set_network_options(network_options());
                let first = first_connect(&mut ev, b, t, lo, hi, primary, self.spooled).await;
                Ok(Connected {
                    client: Client::V4(client),
                    event_loop: EventLoops::V4(Box::new(ev)),
                    up: degraded_start(first, self.spooled, primary)?,
                })
            }
            MqttProtocol::V5 => {
                let opts = options_v5(self.cfg, self.addr, client_id, will)?;
                let (client, mut ev) =
                    rumqttc::v5::AsyncClient::new(opts, request_channel(self.cfg.inflight));
                let first =
                    crate::v5::first_connect(&mut ev, b, t, lo, hi, primary, self.spooled).await;
                Ok(Connected {
                    client: Client::V5(client),
                    event_loop: EventLoops::V5(Box::new(ev)),
                    up: degraded_start(first, self.spooled, primary)?,
                })
            }
        }
    }
}

/// With a spool, a broker unreachable at start-up is not fatal: the bridge starts
/// disconnected, publishes go to the spool, and the connection is retried in the background.
/// A refusal (credentials, authorization) stays an error: retrying will not fix it.
fn degraded_start(
    first: Result<(), BridgeError>,
    spool: bool,
    primary: bool,
) -> Result<bool, BridgeError> {
    match first {
        Ok(()) => Ok(true),
        Err(BridgeError::Unreachable { broker, reason }) if spool => {
            if primary {
                metrics::gauge!("vgate_mqtt_connected").set(0.0);
            }
            tracing::warn!(%broker, %reason, "MQTT broker unreachable; starting with the spool, retrying in the background");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// What every lane shares when it is started.
pub(crate) struct Shared {
    pub publisher: Publisher,
    pub topics: Arc<Topics>,
    pub commands: Intake,
    pub node: String,
    pub broker: String,
    pub stopping: Arc<AtomicBool>,
    pub depth: Arc<AtomicI64>,
    pub inflight: usize,
    pub spill_after: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

/// What moves a lane's queue to rumqttc: directly, or through the spool.
#[derive(Debug)]
enum Forwarder {
    Direct(JoinHandle<()>),
    Spooled(Relay, Arc<Spool>),
}

impl Forwarder {
    fn abort(&self) {
        match self {
            Forwarder::Direct(h) => h.abort(),
            Forwarder::Spooled(r, _) => {
                r.dispatcher.abort();
                r.feeder.abort();
                r.acker.abort();
            }
        }
    }
}

/// One running lane. Dropping it aborts its tasks (the connection is cut).
#[derive(Debug)]
pub(crate) struct Lane {
    index: usize,
    pub client: Client,
    pub tracker: Arc<Tracker>,
    pub connected: Arc<AtomicBool>,
    event_loop: Option<JoinHandle<()>>,
    forwarder: Forwarder,
}

impl Lane {
    /// Starts lane `index`'s forwarder (or relay, with `spool`) on `jobs` and its event loop.
    pub fn spawn(
        index: usize,
        conn: Connected,
        jobs: mpsc::Receiver<Job>,
        spool: Option<Arc<Spool>>,
        shared: &Shared,
    ) -> Lane {
        let Connected {
            client,
            event_loop,
            up,
        } = conn;
        let tracker = Arc::new(Tracker::default());
        let connected = Arc::new(AtomicBool::new(up));
        let lost = Arc::new(tokio::sync::Notify::new());
        let forwarder = match spool {
            None => Forwarder::Direct(tokio::spawn(forward(
                jobs,
                client.clone(),
                tracker.clone(),
                shared.depth.clone(),
            ))),
            Some(spool) => {
                let relay = crate::relay::start(
                    jobs,
                    crate::relay::Shared {
                        spool: spool.clone(),
                        client: client.clone(),
                        tracker: tracker.clone(),
                        connected: connected.clone(),
                        inflight: shared.inflight,
                        spill_after: shared.spill_after,
                        depth: shared.depth.clone(),
                        lost: lost.clone(),
                        unacked: Default::default(),
                    },
                );
                Forwarder::Spooled(relay, spool)
            }
        };
        let lp = Loop {
            lane: index,
            client: client.clone(),
            publisher: shared.publisher.clone(),
            tracker: tracker.clone(),
            topics: shared.topics.clone(),
            commands: shared.commands.clone(),
            node: shared.node.clone(),
            broker: shared.broker.clone(),
            stopping: shared.stopping.clone(),
            connected: connected.clone(),
            lost_signal: lost,
            backoff_min: shared.backoff_min,
            backoff_max: shared.backoff_max,
        };
        let event_loop = match event_loop {
            EventLoops::V4(ev) => tokio::spawn(run(*ev, lp)),
            EventLoops::V5(ev) => tokio::spawn(crate::v5::run(*ev, lp)),
        };
        Lane {
            index,
            client,
            tracker,
            connected,
            event_loop: Some(event_loop),
            forwarder,
        }
    }

    /// Whether this lane's connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// The lane's spool, when one is configured.
    pub fn spool(&self) -> Option<&Arc<Spool>> {
        match &self.forwarder {
            Forwarder::Direct(_) => None,
            Forwarder::Spooled(_, s) => Some(s),
        }
    }

    /// Stops the lane once its publishes are drained (or the drain timed out): DISCONNECT,
    /// or with `cut` the connection dropped without one (so the broker publishes lane 0's
    /// last will); then the event loop and the forwarder end, each waited for up to `grace`.
    pub async fn stop(mut self, cut: bool, grace: Duration, broker: &str) {
        let lane = self.index;
        if cut {
            if let Some(h) = self.event_loop.take() {
                h.abort();
                let _ = h.await;
            }
        } else if tokio::time::timeout(grace, self.client.disconnect())
            .await
            .is_err()
        {
            tracing::warn!(%broker, lane, "MQTT DISCONNECT not sent (no connection)");
        }
        if let Some(mut h) = self.event_loop.take() {
            // The event loop ends by itself once DISCONNECT is written.
            if tokio::time::timeout(grace, &mut h).await.is_err() {
                h.abort();
            }
        }
        match &mut self.forwarder {
            Forwarder::Direct(h) => h.abort(),
            Forwarder::Spooled(relay, spool) => {
                // The acker ends once the feeder is gone and the last PUBACKs are deleted.
                relay.dispatcher.abort();
                relay.feeder.abort();
                if tokio::time::timeout(grace, &mut relay.acker).await.is_err() {
                    relay.acker.abort();
                }
                // Blocking spool writes hold the spool until they finish; the next bridge on
                // this directory needs it closed.
                let started = Instant::now();
                while Arc::strong_count(spool) > 1 && started.elapsed() < grace {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if spool.len() > 0 {
                    tracing::info!(
                        lane,
                        records = spool.len(),
                        bytes = spool.bytes(),
                        "MQTT spool kept for the next start"
                    );
                }
            }
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some(h) = self.event_loop.take() {
            h.abort();
        }
        self.forwarder.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_0_keeps_the_spool_dir_and_client_id() {
        let d = Path::new("/var/vgate/spool");
        assert_eq!(spool_dir(d, 0), d);
        assert_eq!(spool_dir(d, 2), d.join("lane-2"));
        assert_eq!(client_id("vgate-n1", 0), "vgate-n1");
        assert_eq!(client_id("vgate-n1", 3), "vgate-n1-3");
    }
}
