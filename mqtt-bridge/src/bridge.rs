//! The bridge: one MQTT connection, its event loop task, and what runs on each connect.
//!
//! ```text
//!  sessions --Publisher (bounded queue)--> forwarder --rumqttc channel--> event loop --TCP--> broker
//!                                              |  tickets              PUBACKs |
//!                                              +-------> Tracker <------------+
//!  gateway <--mpsc IncomingCommand (ack when stored)-- event loop <-- {p}/v1/+/cmd
//! ```
//!
//! On every CONNACK the bridge (re)subscribes to the command topics and publishes the
//! gateway's retained online status; the broker holds a retained offline status as the
//! connection's last will. Connection errors are logged (a refusal with the broker and
//! the reason), counted, and retried with exponential backoff.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, Outgoing,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::{options, options_v5, BrokerAddr};

use crate::commands::{Acker, IncomingCommand, Parts};
use crate::config::{MqttConfig, MqttProtocol, Qos};
use crate::connection::{Client, Received};
use crate::embedded::EmbeddedBroker;
use crate::publisher::{forward, Publisher};
use crate::relay::Relay;
use crate::spool::Spool;
use crate::topics::Topics;
use crate::tracker::Tracker;
use crate::{BridgeError, RefusedReason};

/// Capacity of rumqttc's own request channel: 0, a rendezvous. rumqttc moves what is in
/// its channel to its `pending` list when a connection breaks, and after the reconnect sends
/// `pending` without flow control; new publishes from there collide with the replayed
/// packet ids and rumqttc keeps only one collided publish, losing the others. With a
/// rendezvous channel `pending` only ever holds the (at most `inflight`) replays, each with
/// its own packet id. Our bounded queue is in front of it.
const REQUEST_CHANNEL: usize = 0;

/// The running MQTT bridge. Dropping it without [`Bridge::shutdown`] cuts the connection
/// abruptly: the broker then publishes the gateway's offline last will.
#[derive(Debug)]
pub struct Bridge {
    publisher: Publisher,
    commands: Option<mpsc::Receiver<IncomingCommand>>,
    client: Client,
    tracker: Arc<Tracker>,
    topics: Arc<Topics>,
    node: String,
    broker: String,
    embedded: Option<EmbeddedBroker>,
    stopping: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    event_loop: Option<JoinHandle<()>>,
    forwarder: Forwarder,
    shutdown_timeout: Duration,
}

/// What moves the publisher's queue to rumqttc: directly, or through the spool.
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

/// What the event loop task needs besides the event loop.
pub(crate) struct Loop {
    client: Client,
    publisher: Publisher,
    tracker: Arc<Tracker>,
    topics: Arc<Topics>,
    commands: mpsc::Sender<IncomingCommand>,
    node: String,
    broker: String,
    stopping: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    /// Tells the store-and-forward relay that the connection is gone.
    lost_signal: Arc<tokio::sync::Notify>,
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
    /// gateway's retained online status on `{prefix}/gateway/{node_id}/status`.
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
        let spool = match &cfg.spool.dir {
            None => None,
            Some(dir) => {
                let (dir, max, when) = (dir.clone(), cfg.spool.max_bytes, cfg.spool.when_full);
                let s = tokio::task::spawn_blocking(move || Spool::open(&dir, max, when))
                    .await
                    .map_err(|e| BridgeError::File {
                        key: "mqtt.spool.dir",
                        path: String::new(),
                        reason: e.to_string(),
                    })??;
                Some(Arc::new(s))
            }
        };
        let topics = Arc::new(Topics::new(prefix, node_id));
        let (embedded, addr) = match &cfg.url {
            Some(url) => (None, BrokerAddr::parse(url)?),
            None => {
                let b = EmbeddedBroker::start(cfg.embedded_listen, cfg.embedded)?;
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
        let client_id = cfg
            .client_id
            .clone()
            .unwrap_or_else(|| format!("vgate-{node_id}"));
        let will = (topics.gateway_status(), status_json(false, node_id));
        let backoff_min = Duration::from_millis(cfg.reconnect_min_ms.max(1));
        let backoff_max = Duration::from_millis(cfg.reconnect_max_ms).max(backoff_min);
        let connect_timeout = Duration::from_secs(cfg.connect_timeout_s);
        // The embedded broker is configured for MQTT 3.1.1 only.
        let protocol = if embedded.is_some() {
            MqttProtocol::V311
        } else {
            cfg.protocol
        };
        let up;
        let (client, event_loop) = match protocol {
            MqttProtocol::V311 => {
                let opts = options(cfg, &addr, &client_id, will)?;
                let (client, mut ev) = AsyncClient::new(opts, REQUEST_CHANNEL);
                let first =
                    first_connect(&mut ev, &broker, connect_timeout, backoff_min, backoff_max)
                        .await;
                up = degraded_start(first, spool.is_some())?;
                (Client::V4(client), EventLoops::V4(Box::new(ev)))
            }
            MqttProtocol::V5 => {
                let opts = options_v5(cfg, &addr, &client_id, will)?;
                let (client, mut ev) = rumqttc::v5::AsyncClient::new(opts, REQUEST_CHANNEL);
                let first = crate::v5::first_connect(
                    &mut ev,
                    &broker,
                    connect_timeout,
                    backoff_min,
                    backoff_max,
                )
                .await;
                up = degraded_start(first, spool.is_some())?;
                (Client::V5(client), EventLoops::V5(Box::new(ev)))
            }
        };
        if up {
            tracing::info!(%broker, client_id, embedded = embedded.is_some(), ?protocol, "MQTT connected");
        }

        let (job_tx, job_rx) = mpsc::channel(cfg.queue_capacity);
        let publisher = Publisher::new(job_tx, topics.clone(), cfg.qos, cfg.max_packet_size);
        let tracker = Arc::new(Tracker::default());
        let connected = Arc::new(AtomicBool::new(up));
        let lost = Arc::new(tokio::sync::Notify::new());
        let forwarder = match spool {
            None => Forwarder::Direct(tokio::spawn(forward(
                job_rx,
                client.clone(),
                tracker.clone(),
                publisher.depth(),
            ))),
            Some(spool) => {
                let relay = crate::relay::start(
                    job_rx,
                    crate::relay::Shared {
                        spool: spool.clone(),
                        client: client.clone(),
                        tracker: tracker.clone(),
                        connected: connected.clone(),
                        inflight: usize::from(cfg.inflight),
                        spill_after: std::time::Duration::from_millis(cfg.spool.spill_after_ms),
                        depth: publisher.depth(),
                        lost: lost.clone(),
                        unacked: Default::default(),
                    },
                );
                Forwarder::Spooled(relay, spool)
            }
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(cfg.command_capacity);
        let stopping = Arc::new(AtomicBool::new(false));
        let lp = Loop {
            client: client.clone(),
            publisher: publisher.clone(),
            tracker: tracker.clone(),
            topics: topics.clone(),
            commands: cmd_tx,
            node: node_id.to_owned(),
            broker: broker.clone(),
            stopping: stopping.clone(),
            connected: connected.clone(),
            lost_signal: lost,
            backoff_min,
            backoff_max,
        };
        let event_loop = match event_loop {
            EventLoops::V4(ev) => tokio::spawn(run(*ev, lp)),
            EventLoops::V5(ev) => tokio::spawn(crate::v5::run(*ev, lp)),
        };
        let bridge = Bridge {
            publisher,
            commands: Some(cmd_rx),
            client,
            tracker,
            topics,
            node: node_id.to_owned(),
            broker,
            embedded,
            stopping,
            connected,
            event_loop: Some(event_loop),
            forwarder,
            shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout_s),
        };
        if !up {
            // The event loop keeps trying; its first CONNACK subscribes and says online.
            return Ok(bridge);
        }
        let online = on_connected(
            bridge.client.clone(),
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

    /// The receiver of incoming commands; `Some` the first time only.
    pub fn take_commands(&mut self) -> Option<mpsc::Receiver<IncomingCommand>> {
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

    /// Whether the MQTT connection is up now (as `vgate_mqtt_connected`).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Publishes in the disk spool (not yet acknowledged by the broker), or `None` without a
    /// spool (`[mqtt.spool] dir` unset).
    pub fn spooled(&self) -> Option<u64> {
        match &self.forwarder {
            Forwarder::Direct(_) => None,
            Forwarder::Spooled(_, spool) => Some(spool.len()),
        }
    }

    /// Publishes the gateway's offline status, waits (up to `shutdown_timeout_s`) for the
    /// PUBACKs of everything already published, and disconnects cleanly. Publishes still
    /// unacknowledged after the timeout are dropped; their `Delivery` says `Closed`.
    ///
    /// With a spool, what is in the spool stays there for the next start (the wait includes
    /// the spool draining). If the timeout ends first, the connection is cut without
    /// DISCONNECT, so the broker publishes the offline last will (the offline status itself
    /// may still be in the spool).
    pub async fn shutdown(mut self) -> Result<(), BridgeError> {
        let publisher = self.publisher.clone();
        let tracker = self.tracker.clone();
        let (topic, offline) = (self.topics.gateway_status(), status_json(false, &self.node));
        let spool = match &self.forwarder {
            Forwarder::Direct(_) => None,
            Forwarder::Spooled(_, s) => Some(s.clone()),
        };
        let spooling = spool.is_some();
        // Every step may wait on the broker (queue space, PUBACKs), so all of it is bounded.
        let drained = tokio::time::timeout(self.shutdown_timeout, async move {
            if let Ok(d) = publisher
                .publish_raw(&topic, offline, Qos::AtLeastOnce, true)
                .await
            {
                let _ = d.await;
            }
            tracker.wait_idle().await;
            // With a spool the offline status may have been spooled: the broker has it once
            // the spool is empty.
            if let Some(spool) = spool {
                while spool.len() > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tracker.wait_idle().await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                broker = %self.broker,
                unacknowledged = self.tracker.outstanding(),
                "MQTT shutdown timed out waiting for PUBACKs"
            );
        }
        self.stopping.store(true, Ordering::SeqCst);
        let grace = Duration::from_secs(2);
        if spooling && drained.is_err() {
            // The offline status may still be in the spool (kept for the next start): no
            // DISCONNECT, so that the broker publishes the offline last will instead of
            // keeping the retained online status.
            if let Some(h) = self.event_loop.take() {
                h.abort();
                let _ = h.await;
            }
        } else if tokio::time::timeout(grace, self.client.disconnect())
            .await
            .is_err()
        {
            tracing::warn!(broker = %self.broker, "MQTT DISCONNECT not sent (no connection)");
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
                        records = spool.len(),
                        bytes = spool.bytes(),
                        "MQTT spool kept for the next start"
                    );
                }
            }
        }
        metrics::gauge!("vgate_mqtt_connected").set(0.0);
        tracing::info!(broker = %self.broker, "MQTT bridge stopped");
        Ok(())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(h) = self.event_loop.take() {
            h.abort();
        }
        self.forwarder.abort();
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

/// With a spool, a broker unreachable at start-up is not fatal: the bridge starts
/// disconnected, publishes go to the spool, and the connection is retried in the background.
/// A refusal (credentials, authorization) stays an error: retrying will not fix it.
fn degraded_start(first: Result<(), BridgeError>, spool: bool) -> Result<bool, BridgeError> {
    match first {
        Ok(()) => Ok(true),
        Err(BridgeError::Unreachable { broker, reason }) if spool => {
            metrics::gauge!("vgate_mqtt_connected").set(0.0);
            tracing::warn!(%broker, %reason, "MQTT broker unreachable; starting with the spool, retrying in the background");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

async fn first_connect(
    ev: &mut EventLoop,
    broker: &str,
    timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
) -> Result<(), BridgeError> {
    let started = Instant::now();
    let mut backoff = backoff_min;
    loop {
        match ev.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                metrics::gauge!("vgate_mqtt_connected").set(1.0);
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
                tracing::debug!(%broker, error = %e, "MQTT connect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(backoff_max);
            }
        }
    }
}

/// The event loop of the protocol in use.
enum EventLoops {
    V4(Box<EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

impl Loop {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// A CONNACK after a reconnect: resubscribe and say we are online again.
    pub(crate) fn reconnected(&self, session_present: bool) {
        self.connected.store(true, Ordering::SeqCst);
        metrics::gauge!("vgate_mqtt_connected").set(1.0);
        metrics::counter!("vgate_mqtt_reconnects_total").increment(1);
        tracing::info!(broker = %self.broker, session_present, "MQTT reconnected");
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
            metrics::gauge!("vgate_mqtt_connected").set(0.0);
            tracing::warn!(broker = %self.broker, error = %error, "MQTT connection lost");
        }
        match refused {
            Some((reason, code)) => {
                metrics::counter!("vgate_mqtt_refused_total", "reason" => reason.as_str())
                    .increment(1);
                tracing::error!(broker = %self.broker, %reason, code, "MQTT broker refused the connection");
            }
            None => tracing::debug!(broker = %self.broker, error = %error, "MQTT reconnect failed"),
        }
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(self.backoff_max);
    }

    /// Hands a command to the gateway. Waits when the gateway's channel is full (the broker
    /// holds the rest: they are unacknowledged).
    pub(crate) async fn command(&self, parts: Parts, received: Received) {
        let acker = Acker::new(self.client.clone(), received);
        let Some(target) = self.topics.parse_command(&parts.topic) else {
            tracing::warn!(topic = %parts.topic, "message on an unexpected topic; acknowledged and dropped");
            // Spawned: the request channel is a rendezvous that only this task's poll() drains.
            tokio::spawn(acker.ack());
            return;
        };
        metrics::counter!("vgate_mqtt_commands_received_total").increment(1);
        tracing::debug!(topic = %parts.topic, ?target, "command received");
        let cmd = IncomingCommand::new(target, parts, acker);
        if self.commands.send(cmd).await.is_err() {
            tracing::warn!("command receiver dropped; command left unacknowledged");
        }
    }
}

/// The MQTT 3.1.1 event loop task: polls rumqttc until stopped, feeding the tracker and
/// the command channel.
async fn run(mut ev: EventLoop, lp: Loop) {
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
                lp.command(parts, Received::V4(p)).await;
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lp
                .tracker
                .outgoing_publish(pkid, ev.state.collision.is_some()),
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
