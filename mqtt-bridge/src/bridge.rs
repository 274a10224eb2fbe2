//! The bridge: its MQTT connections (lanes, see `lanes`), their event loop tasks, and what
//! runs on each connect.
//!
//! ```text
//!  sessions --Publisher (bounded queue)--> forwarder --rumqttc channel--> event loop --TCP--> broker
//!                                              |  tickets              PUBACKs |
//!                                              +-------> Tracker <------------+
//!  gateway <--Intake: IncomingCommand, never waits (ack when stored)-- event loop <-- {p}/v1/+/cmd
//! ```
//!
//! The picture is one lane; with `mqtt.connections` > 1 each lane has its own queue,
//! forwarder, tracker and event loop. On every CONNACK of lane 0 (the gateway's connection)
//! the bridge (re)subscribes to the command topics and publishes the gateway's retained
//! online status; the broker holds a retained offline status as lane 0's last will. Connection errors are logged (a refusal with the broker and
//! the reason), counted, and retried with exponential backoff.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rumqttc::{ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, Outgoing};
use tokio::sync::mpsc;

use crate::client::BrokerAddr;
use crate::commands::{Acker, CommandReceiver, IncomingCommand, Intake, Parts};
use crate::config::{MqttConfig, MqttProtocol, Qos};
use crate::connection::{Client, Received};
use crate::embedded::EmbeddedBroker;
use crate::lanes::{open_spools, Dial, Lane, Shared};
use crate::publisher::Publisher;
use crate::spool::Spool;
use crate::topics::Topics;
use crate::tracker::Tracker;
use crate::{BridgeError, RefusedReason};

/// Capacity of rumqttc's own request channel. The vendored rumqttc (vendor/rumqttc) takes
/// every request already in it, within its inflight window, and writes them with one flush
/// (upstream writes each publish on its own: one syscall and, on the broker, one wakeup per
/// publish). It also leaves the channel alone when a connection breaks: upstream moves the
/// channel's requests to its `pending` list, which is sent after the reconnect without flow
/// control, so new publishes collide with the replayed packet ids and all but one of them are
/// lost (that is why this was a rendezvous before). No larger than the inflight window (a
/// batch never is), and at most 64. Our bounded queue is in front of it.
pub(crate) fn request_channel(inflight: u16) -> usize {
    usize::from(inflight).clamp(1, 64)
}

/// The running MQTT bridge. Dropping it without [`Bridge::shutdown`] cuts the connections
/// abruptly: the broker then publishes the gateway's offline last will.
#[derive(Debug)]
pub struct Bridge {
    publisher: Publisher,
    commands: Option<CommandReceiver>,
    /// The connections, lane 0 first (never empty while the bridge runs).
    lanes: Vec<Lane>,
    topics: Arc<Topics>,
    node: String,
    broker: String,
    embedded: Option<EmbeddedBroker>,
    stopping: Arc<AtomicBool>,
    shutdown_timeout: Duration,
}

/// The bridge's state as a health check sees it ([`Bridge::health`]).
#[derive(Debug, Clone)]
pub struct Health {
    connected: Option<Arc<AtomicBool>>,
    spools: Vec<Arc<Spool>>,
    broker: String,
}

impl Health {
    /// Whether the gateway's MQTT connection (lane 0) is up now.
    pub fn connected(&self) -> bool {
        self.connected
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// Whether publishes are taken while the broker is away: a spool is configured and every
    /// lane's spool has room (or drops its oldest records).
    pub fn spool_accepting(&self) -> bool {
        !self.spools.is_empty() && self.spools.iter().all(|s| s.accepting())
    }

    /// Bytes in the spools, `None` without a spool.
    pub fn spool_bytes(&self) -> Option<u64> {
        (!self.spools.is_empty()).then(|| self.spools.iter().map(|s| s.bytes()).sum())
    }

    /// The broker, `host:port`.
    pub fn broker(&self) -> &str {
        &self.broker
    }
}

/// What the event loop task needs besides the event loop.
pub(crate) struct Loop {
    /// The lane (connection) index: lane 0 subscribes, says online and sets
    /// `vgate_mqtt_connected`; lanes 1.. only publish.
    pub lane: usize,
    pub client: Client,
    pub publisher: Publisher,
    pub tracker: Arc<Tracker>,
    pub topics: Arc<Topics>,
    /// Where received commands go; never waits (see `commands`).
    pub commands: Intake,
    pub node: String,
    pub broker: String,
    pub stopping: Arc<AtomicBool>,
    pub connected: Arc<AtomicBool>,
    /// Tells the store-and-forward relay that the connection is gone.
    pub lost_signal: Arc<tokio::sync::Notify>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

fn status_json(online: bool, node: &str) -> Vec<u8> {
    let since = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    serde_json::json!({ "online": online, "node": node, "since": since })
        .to_string()
        .into_bytes()
}

fn refused_reason(code: ConnectReturnCode) -> RefusedReason {
    match code {
        ConnectReturnCode::RefusedProtocolVersion => RefusedReason::ProtocolVersion,
        ConnectReturnCode::BadClientId => RefusedReason::BadClientId,
        ConnectReturnCode::BadUserNamePassword => RefusedReason::BadCredentials,
        ConnectReturnCode::NotAuthorized => RefusedReason::NotAuthorized,
        ConnectReturnCode::ServiceUnavailable | ConnectReturnCode::Success => {
            RefusedReason::ServiceUnavailable
        }
    }
}

impl Bridge {
    /// Starts the bridge: the embedded broker when `cfg.url` is `None`, then the connection
    /// (client id `cfg.client_id` or `vgate-{node_id}`), the command subscriptions and the
    /// gateway's retained online status on `{prefix}/gateway/{node_id}/status`. With
    /// `cfg.connections` = N > 1, also the N - 1 publish-only lanes (`{client_id}-{i}`, no
    /// will, no subscriptions); see `lanes`.
    ///
    /// Returns once the broker has acknowledged the online status. A refusal (bad
    /// credentials, not authorized...) is [`BridgeError::Refused`] at once; a broker that
    /// does not answer is retried with backoff until `connect_timeout_s`, then
    /// [`BridgeError::Unreachable`] — except with a spool (`[mqtt.spool] dir`): the bridge
    /// then starts disconnected (publishes go to the spool, [`Bridge::connected`] is false)
    /// and keeps trying in the background; its first CONNACK subscribes and publishes the
    /// online status. A spool that cannot be opened is [`BridgeError::File`].
    pub async fn start(
        cfg: &MqttConfig,
        node_id: &str,
        prefix: &str,
    ) -> Result<Bridge, BridgeError> {
        // Config errors first: an embedded broker, once started, cannot be stopped.
        crate::client::check(cfg)?;
        let n = usize::from(cfg.connections);
        let spools = open_spools(cfg, n).await?;
        let mut topics = Topics::new(prefix, node_id);
        if let Some(g) = &cfg.share_group {
            topics = topics.shared(g);
        }
        let topics = Arc::new(topics);
        let (embedded, addr) = match &cfg.url {
            Some(url) => (None, BrokerAddr::parse(url)?),
            None => {
                let b = EmbeddedBroker::start(
                    cfg.embedded_listen,
                    cfg.embedded,
                    &topics.command_filters(),
                )?;
                let mut target = b.addr();
                if target.ip().is_unspecified() {
                    target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                let addr = BrokerAddr {
                    host: target.ip().to_string(),
                    port: target.port(),
                    tls: false,
                };
                (Some(b), addr)
            }
        };
        let broker = addr.display();
        let base_id = cfg
            .client_id
            .clone()
            .unwrap_or_else(|| format!("vgate-{node_id}"));
        let backoff_min = Duration::from_millis(cfg.reconnect_min_ms.max(1));
        let backoff_max = Duration::from_millis(cfg.reconnect_max_ms).max(backoff_min);
        // The embedded broker is configured for MQTT 3.1.1 only.
        let protocol = if embedded.is_some() {
            MqttProtocol::V311
        } else {
            cfg.protocol
        };
        let dial = Dial {
            cfg,
            addr: &addr,
            broker: &broker,
            protocol,
            connect_timeout: Duration::from_secs(cfg.connect_timeout_s),
            backoff_min,
            backoff_max,
            spooled: cfg.spool.dir.is_some(),
        };
        // All lanes at once: with the broker down (and a spool) each waits `connect_timeout`.
        let dial = &dial;
        let (broker, embedded_on) = (&broker, embedded.is_some());
        let conns = futures::future::join_all((0..n).map(|i| {
            let client_id = crate::lanes::client_id(&base_id, i);
            // Only lane 0 carries the gateway's last will.
            let will = (i == 0).then(|| (topics.gateway_status(), status_json(false, node_id)));
            async move {
                let conn = dial.connect(i, &client_id, will).await?;
                if conn.up {
                    tracing::info!(%broker, client_id, lane = i, embedded = embedded_on, ?protocol, "MQTT connected");
                }
                Ok::<_, BridgeError>(conn)
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let broker = broker.clone();
        let up = conns.first().is_some_and(|c| c.up);

        // One bounded queue per lane, lane 0's first.
        let (primary, primary_rx) = mpsc::channel(cfg.queue_capacity);
        let mut queues = Vec::with_capacity(n);
        queues.push(primary_rx);
        let mut senders = Vec::with_capacity(n);
        for _ in 1..n {
            let (tx, rx) = mpsc::channel(cfg.queue_capacity);
            senders.push(tx);
            queues.push(rx);
        }
        let publisher = Publisher::new(
            primary,
            senders,
            topics.clone(),
            cfg.qos,
            cfg.max_packet_size,
        );
        let (cmd_tx, cmd_rx) = Intake::channel(cfg.command_capacity);
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            publisher: publisher.clone(),
            topics: topics.clone(),
            commands: cmd_tx,
            node: node_id.to_owned(),
            broker: broker.clone(),
            stopping: stopping.clone(),
            depth: publisher.depth(),
            inflight: usize::from(cfg.inflight),
            spill_after: Duration::from_millis(cfg.spool.spill_after_ms),
            backoff_min,
            backoff_max,
        };
        let lanes = conns
            .into_iter()
            .zip(queues)
            .zip(spools)
            .enumerate()
            .map(|(i, ((conn, jobs), spool))| Lane::spawn(i, conn, jobs, spool, &shared))
            .collect::<Vec<_>>();
        drop(shared);
        let bridge = Bridge {
            publisher,
            commands: Some(cmd_rx),
            lanes,
            topics,
            node: node_id.to_owned(),
            broker,
            embedded,
            stopping,
            shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout_s),
        };
        if !up {
            // The event loop keeps trying; its first CONNACK subscribes and says online.
            return Ok(bridge);
        }
        let Some(lane0) = bridge.lanes.first() else {
            return Err(BridgeError::Closed);
        };
        let online = on_connected(
            lane0.client.clone(),
            bridge.publisher.clone(),
            bridge.topics.clone(),
            bridge.node.clone(),
        )
        .await?;
        match tokio::time::timeout(Duration::from_secs(cfg.connect_timeout_s.max(1)), online).await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(BridgeError::Unreachable {
                    broker: bridge.broker.clone(),
                    reason: "no PUBACK for the gateway status".into(),
                })
            }
        }
        Ok(bridge)
    }

    /// A handle for publishing; clone it into every session.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Stops taking commands (a drain before a planned stop): unsubscribes from the command
    /// topics, so that the broker gives new commands to the other subscribers of the shared
    /// group instead of queueing them for this node. Commands already sent to this node
    /// still arrive and are stored as usual; the subscription is made again at the next
    /// start (or reconnect).
    pub async fn stop_commands(&self) -> Result<(), BridgeError> {
        match self.lanes.first() {
            Some(lane) => lane.client.unsubscribe(self.topics.command_filters()).await,
            None => Err(BridgeError::Closed),
        }
    }

    /// The receiver of incoming commands; `Some` the first time only.
    pub fn take_commands(&mut self) -> Option<CommandReceiver> {
        self.commands.take()
    }

    /// Where the embedded broker listens, when it was started.
    pub fn embedded_addr(&self) -> Option<SocketAddr> {
        self.embedded.as_ref().map(EmbeddedBroker::addr)
    }

    /// The broker this bridge connects to, `host:port`.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// The topics of this gateway.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Whether the gateway's MQTT connection (lane 0: commands, status, last will) is up now
    /// (as `vgate_mqtt_connected`). The other lanes reconnect on their own.
    pub fn connected(&self) -> bool {
        self.lanes.first().is_some_and(Lane::is_connected)
    }

    /// A cheap handle on the bridge's state (connection, spool) for health checks: it stays
    /// valid while the bridge runs, without borrowing it.
    pub fn health(&self) -> Health {
        Health {
            connected: self.lanes.first().map(|l| l.connected.clone()),
            spools: self.lanes.iter().filter_map(Lane::spool).cloned().collect(),
            broker: self.broker.clone(),
        }
    }

    /// How many MQTT connections (lanes) this bridge publishes over (`mqtt.connections`).
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Per lane, whether its connection is up now.
    pub fn lanes_connected(&self) -> Vec<bool> {
        self.lanes.iter().map(Lane::is_connected).collect()
    }

    /// Per lane, the publishes the broker has taken over that connection (PUBACK, or
    /// written for QoS 0) since the bridge started; lane 0's include the gateway status.
    pub fn published_per_lane(&self) -> Vec<u64> {
        self.lanes.iter().map(|l| l.tracker.published()).collect()
    }

    /// Publishes in the disk spools (not yet acknowledged by the broker), summed over the
    /// lanes, or `None` without a spool (`[mqtt.spool] dir` unset).
    pub fn spooled(&self) -> Option<u64> {
        let mut spools = self.lanes.iter().filter_map(Lane::spool).peekable();
        spools.peek()?;
        Some(spools.map(|s| s.len()).sum())
    }

    /// Publishes the gateway's offline status, waits (up to `shutdown_timeout_s`, for all
    /// lanes together) for the PUBACKs of everything already published, and disconnects
    /// every lane cleanly. Publishes still unacknowledged after the timeout are dropped;
    /// their `Delivery` says `Closed`.
    ///
    /// With a spool, what is in the spool stays there for the next start (the wait includes
    /// the spool draining). If the timeout ends first, the connection is cut without
    /// DISCONNECT, so the broker publishes the offline last will (the offline status itself
    /// may still be in the spool).
    pub async fn shutdown(mut self) -> Result<(), BridgeError> {
        let publisher = self.publisher.clone();
        let trackers: Vec<Arc<Tracker>> = self.lanes.iter().map(|l| l.tracker.clone()).collect();
        let (topic, offline) = (self.topics.gateway_status(), status_json(false, &self.node));
        let spools: Vec<Arc<Spool>> = self.lanes.iter().filter_map(Lane::spool).cloned().collect();
        let spooling = !spools.is_empty();
        // Every step may wait on the broker (queue space, PUBACKs), so all of it is bounded.
        let drained = tokio::time::timeout(self.shutdown_timeout, async move {
            if let Ok(d) = publisher
                .publish_raw(&topic, offline, Qos::AtLeastOnce, true)
                .await
            {
                let _ = d.await;
            }
            for t in &trackers {
                t.wait_idle().await;
            }
            // With a spool the offline status may have been spooled: the broker has it once
            // the spool is empty.
            for spool in &spools {
                while spool.len() > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            for t in &trackers {
                t.wait_idle().await;
            }
        })
        .await;
        if drained.is_err() {
            let unacknowledged: usize = self.lanes.iter().map(|l| l.tracker.outstanding()).sum();
            tracing::warn!(
                broker = %self.broker,
                unacknowledged,
                "MQTT shutdown timed out waiting for PUBACKs"
            );
        }
        self.stopping.store(true, Ordering::SeqCst);
        let grace = Duration::from_secs(2);
        // The offline status may still be in the spool (kept for the next start): no
        // DISCONNECT, so that the broker publishes the offline last will instead of keeping
        // the retained online status.
        let cut = spooling && drained.is_err();
        // All lanes at once: the graces run side by side, not one after the other.
        let lanes = std::mem::take(&mut self.lanes);
        let broker = self.broker.clone();
        futures::future::join_all(lanes.into_iter().map(|l| l.stop(cut, grace, &broker))).await;
        metrics::gauge!("vgate_mqtt_connected").set(0.0);
        tracing::info!(broker = %self.broker, "MQTT bridge stopped");
        Ok(())
    }
}

/// Subscribes to the command topics and publishes the online status (in that order, on the
/// same connection, so the subscription is in place once the status is acknowledged).
async fn on_connected(
    client: Client,
    publisher: Publisher,
    topics: Arc<Topics>,
    node: String,
) -> Result<crate::Delivery, BridgeError> {
    client.subscribe(topics.command_filters()).await?;
    publisher
        .publish_raw(
            &topics.gateway_status(),
            status_json(true, &node),
            Qos::AtLeastOnce,
            true,
        )
        .await
}

/// Says once, at the first failed attempt, that start-up waits for the broker and for how
/// long: without it an unreachable broker meant `connect_timeout_s` of silence.
pub(crate) fn log_waiting(
    broker: &str,
    error: &dyn std::fmt::Display,
    timeout: Duration,
    spooled: bool,
) {
    let then = if spooled {
        "then starting on the spool and retrying in the background"
    } else {
        "then giving up"
    };
    tracing::warn!(
        %broker,
        %error,
        connect_timeout_s = timeout.as_secs(),
        "MQTT broker not reachable; waiting for it up to {}s (mqtt.connect_timeout_s), {then}",
        timeout.as_secs()
    );
}

/// Polls until the first CONNACK (retried with backoff until `timeout`); `primary` (lane 0)
/// sets `vgate_mqtt_connected` and says that it waits (`spooled`: what happens after).
pub(crate) async fn first_connect(
    ev: &mut EventLoop,
    broker: &str,
    timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    primary: bool,
    spooled: bool,
) -> Result<(), BridgeError> {
    let started = Instant::now();
    let mut backoff = backoff_min;
    let mut said_waiting = false;
    loop {
        match ev.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                if primary {
                    metrics::gauge!("vgate_mqtt_connected").set(1.0);
                }
                return Ok(());
            }
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => {
                let reason = refused_reason(code);
                metrics::counter!("vgate_mqtt_refused_total", "reason" => reason.as_str())
                    .increment(1);
                tracing::error!(%broker, %reason, "MQTT broker refused the connection");
                return Err(BridgeError::Refused {
                    broker: broker.to_owned(),
                    reason,
                });
            }
            Err(e) => {
                if started.elapsed() >= timeout {
                    return Err(BridgeError::Unreachable {
                        broker: broker.to_owned(),
                        reason: e.to_string(),
                    });
                }
                if primary && !said_waiting {
                    said_waiting = true;
                    crate::bridge::log_waiting(broker, &e, timeout, spooled);
                }
                tracing::debug!(%broker, error = %e, "MQTT connect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(backoff_max);
            }
        }
    }
}

impl Loop {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// A CONNACK after a reconnect: on lane 0, resubscribe and say we are online again.
    pub(crate) fn reconnected(&self, session_present: bool) {
        self.connected.store(true, Ordering::SeqCst);
        metrics::counter!("vgate_mqtt_reconnects_total").increment(1);
        tracing::info!(broker = %self.broker, lane = self.lane, session_present, "MQTT reconnected");
        if self.lane != 0 {
            // A publish-only lane: no subscriptions, no status, not `vgate_mqtt_connected`.
            return;
        }
        metrics::gauge!("vgate_mqtt_connected").set(1.0);
        let (c, p, t, n) = (
            self.client.clone(),
            self.publisher.clone(),
            self.topics.clone(),
            self.node.clone(),
        );
        // Not awaited here: the event loop must keep polling for these to be sent.
        tokio::spawn(async move {
            if let Err(e) = on_connected(c, p, t, n).await {
                tracing::debug!(error = %e, "MQTT resubscribe after reconnect failed");
            }
        });
    }

    /// A connection error: log it (once per outage, a refusal every time), count it, wait.
    pub(crate) async fn lost(
        &self,
        connected: &mut bool,
        refused: Option<(RefusedReason, String)>,
        error: &(dyn std::fmt::Display + Sync),
        backoff: &mut Duration,
    ) {
        self.connected.store(false, Ordering::SeqCst);
        if *connected {
            self.lost_signal.notify_one();
            *connected = false;
            if self.lane == 0 {
                metrics::gauge!("vgate_mqtt_connected").set(0.0);
            }
            tracing::warn!(broker = %self.broker, lane = self.lane, error = %error, "MQTT connection lost");
        }
        match refused {
            Some((reason, code)) => {
                metrics::counter!("vgate_mqtt_refused_total", "reason" => reason.as_str())
                    .increment(1);
                tracing::error!(broker = %self.broker, lane = self.lane, %reason, code, "MQTT broker refused the connection");
            }
            None => tracing::debug!(broker = %self.broker, error = %error, "MQTT reconnect failed"),
        }
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(self.backoff_max);
    }

    /// Hands a command to the gateway without waiting: this task also writes the PUBACKs
    /// and results that let the gateway take more (see `commands`, "Why the intake never
    /// waits"). The broker's inflight window bounds how many are unacknowledged.
    pub(crate) fn command(&self, parts: Parts, received: Received) {
        let acker = Acker::new(self.client.clone(), received);
        let Some(target) = self.topics.parse_command(&parts.topic) else {
            tracing::warn!(topic = %parts.topic, "message on an unexpected topic; acknowledged and dropped");
            // Spawned: the request channel is bounded and only this task's poll() drains it.
            tokio::spawn(acker.ack());
            return;
        };
        metrics::counter!("vgate_mqtt_commands_received_total").increment(1);
        tracing::debug!(topic = %parts.topic, ?target, "command received");
        self.commands
            .push(IncomingCommand::new(target, parts, acker));
    }
}

/// The MQTT 3.1.1 event loop task: polls rumqttc until stopped, feeding the tracker and
/// the command channel.
pub(crate) async fn run(mut ev: EventLoop, lp: Loop) {
    let mut backoff = lp.backoff_min;
    let mut connected = true;
    loop {
        match ev.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                connected = true;
                backoff = lp.backoff_min;
                lp.reconnected(ack.session_present);
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => lp.tracker.puback(ack.pkid),
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                let parts = Parts {
                    topic: String::from_utf8_lossy(p.topic.as_bytes()).into_owned(),
                    payload: p.payload.clone(),
                    response_topic: None,
                    correlation_data: None,
                    message_expiry: None,
                    redelivered: p.dup,
                };
                lp.command(parts, Received::V4(p));
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lp.tracker.outgoing_publish(pkid),
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => lp.tracker.await_ack(pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) if lp.stopping() => return,
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(_) if lp.stopping() => return,
            Err(e) => {
                let refused = match &e {
                    ConnectionError::ConnectionRefused(code) => {
                        Some((refused_reason(*code), format!("{code:?}")))
                    }
                    _ => None,
                };
                lp.lost(&mut connected, refused, &e, &mut backoff).await;
            }
        }
    }
}
