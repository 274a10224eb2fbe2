//! Incoming commands: what arrives on `{p}/v1/+/cmd` and `{p}/broadcast/+/cmd`.
//!
//! The MQTT message is acknowledged only when the gateway says so ([`IncomingCommand::ack`]),
//! after it has stored the command: the session is persistent (clean_session false), so a
//! crash between delivery and storage means the broker delivers the command again.
//!
//! # Why the intake never waits
//! The event loop that receives a command is also the one that must write its PUBACK, the
//! `queued` result the gateway publishes for it and the vehicles' events on that connection.
//! If it waited for room in a bounded channel, the gateway could not free that room (its
//! acknowledgement and its result wait for the same event loop): a burst of commands larger
//! than the channel stopped the command path, and the uplink of that connection, for good.
//! So the event loop hands commands over without waiting ([`Intake::push`]) and the bound
//! is the broker's: it sends a client at most its inflight window of unacknowledged QoS 1
//! messages (Mosquitto `max_inflight_messages`, 20 by default; EMQX `max_inflight`, 32; over
//! MQTT 5, the Receive Maximum vgate sets to `command_capacity`) and keeps the rest queued on
//! its side until vgate has stored and acknowledged what it took. QoS 0 commands, which the
//! broker does not hold back, are dropped (counted, logged) once `command_capacity` are
//! waiting: at most once is what QoS 0 asks for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::connection::{Client, Received};
use crate::topics::Target;
use crate::BridgeError;

/// A command received from the platform, not yet acknowledged to the broker.
#[derive(Debug)]
pub struct IncomingCommand {
    /// The vehicle or group it is for (from the topic).
    pub target: Target,
    /// The topic it arrived on.
    pub topic: String,
    /// The command JSON, as received (contract §4); parsing it is the gateway's job.
    pub payload: Bytes,
    /// MQTT 5 Response Topic: where results go too (always `None` on MQTT 3.1.1).
    pub response_topic: Option<String>,
    /// MQTT 5 Correlation Data, to send back with results (always `None` on MQTT 3.1.1).
    pub correlation_data: Option<Bytes>,
    /// MQTT 5 Message Expiry Interval: the command's TTL (always `None` on MQTT 3.1.1).
    pub message_expiry: Option<Duration>,
    /// The broker may deliver a command twice (after a reconnect); the command `id` dedupes.
    pub redelivered: bool,
    ack: Acker,
    /// Counted in [`Intake`]'s `waiting` until the gateway takes it.
    waiting: Option<Arc<AtomicUsize>>,
}

/// What the protocol-specific event loop extracted from a command PUBLISH.
#[derive(Debug)]
pub(crate) struct Parts {
    pub topic: String,
    pub payload: Bytes,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub message_expiry: Option<Duration>,
    pub redelivered: bool,
}

impl IncomingCommand {
    pub(crate) fn new(target: Target, parts: Parts, ack: Acker) -> Self {
        IncomingCommand {
            target,
            topic: parts.topic,
            payload: parts.payload,
            response_topic: parts.response_topic,
            correlation_data: parts.correlation_data,
            message_expiry: parts.message_expiry,
            redelivered: parts.redelivered,
            ack,
            waiting: None,
        }
    }

    /// Whether the broker delivered it at QoS 0 (nothing to acknowledge, never redelivered).
    pub fn at_most_once(&self) -> bool {
        self.ack.at_most_once()
    }

    /// Acknowledges the MQTT message (PUBACK). Call it once the command is stored; until
    /// then the broker keeps it for us. After a reconnect the broker has already sent the
    /// command again (it was unacknowledged), and that copy is the one to acknowledge.
    pub async fn ack(self) -> Result<(), BridgeError> {
        self.ack.ack().await
    }
}

/// The means to acknowledge one received publish.
#[derive(Debug)]
pub(crate) struct Acker {
    client: Client,
    received: Received,
}

impl Acker {
    pub(crate) fn new(client: Client, received: Received) -> Self {
        Acker { client, received }
    }

    pub(crate) async fn ack(self) -> Result<(), BridgeError> {
        self.client.ack(&self.received).await
    }

    fn at_most_once(&self) -> bool {
        self.received.at_most_once()
    }
}

/// The event loops' side of the command channel: hands commands to the gateway without ever
/// waiting (see the module docs for why).
#[derive(Debug, Clone)]
pub(crate) struct Intake {
    tx: mpsc::UnboundedSender<IncomingCommand>,
    waiting: Arc<AtomicUsize>,
    capacity: usize,
    /// Set while more than `capacity` QoS 1 commands wait, so the warning is logged once per
    /// episode, not once per command.
    over: Arc<AtomicBool>,
}

/// The gateway's side: the commands received and not yet taken.
#[derive(Debug)]
pub struct CommandReceiver {
    rx: mpsc::UnboundedReceiver<IncomingCommand>,
    waiting: Arc<AtomicUsize>,
}

impl Intake {
    /// A channel where `capacity` is the number of waiting commands past which QoS 0 ones are
    /// dropped and a QoS 1 surplus is logged (`mqtt.command_capacity`).
    pub(crate) fn channel(capacity: usize) -> (Intake, CommandReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let intake = Intake {
            tx,
            waiting: waiting.clone(),
            capacity: capacity.max(1),
            over: Arc::new(AtomicBool::new(false)),
        };
        (intake, CommandReceiver { rx, waiting })
    }

    /// Hands `cmd` to the gateway at once. `false` when it was dropped instead: a QoS 0
    /// command while `capacity` commands wait, or the gateway no longer takes commands.
    pub(crate) fn push(&self, mut cmd: IncomingCommand) -> bool {
        let before = self.waiting.load(Ordering::SeqCst);
        if before >= self.capacity {
            if cmd.at_most_once() {
                metrics::counter!("vgate_mqtt_commands_dropped_total", "reason" => "qos0_overflow")
                    .increment(1);
                tracing::warn!(topic = %cmd.topic, waiting = before, "QoS 0 command dropped: the gateway is behind (command_capacity); publish commands at QoS 1 to have the broker hold them");
                return false;
            }
            if !self.over.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    waiting = before,
                    command_capacity = self.capacity,
                    "the broker sends more unacknowledged commands than command_capacity; they are kept (lower the broker's inflight window for this client to bound them)"
                );
            }
        } else if before < self.capacity / 2 {
            self.over.store(false, Ordering::SeqCst);
        }
        let now = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("vgate_mqtt_commands_waiting").set(now as f64);
        cmd.waiting = Some(self.waiting.clone());
        match self.tx.send(cmd) {
            Ok(()) => true,
            Err(mpsc::error::SendError(mut cmd)) => {
                // The command is dropped unacknowledged: the broker delivers it again after a
                // reconnect.
                release(&mut cmd);
                tracing::warn!("command receiver dropped; command left unacknowledged");
                false
            }
        }
    }
}

impl CommandReceiver {
    /// The next command; `None` once the bridge is gone.
    pub async fn recv(&mut self) -> Option<IncomingCommand> {
        self.rx.recv().await.map(taken)
    }

    /// Waits for at least one command, then takes every command already waiting, up to
    /// `limit`, into `buf` (a batch to store with one commit). Returns how many; 0 once the
    /// bridge is gone.
    pub async fn recv_many(&mut self, buf: &mut Vec<IncomingCommand>, limit: usize) -> usize {
        let start = buf.len();
        let n = self.rx.recv_many(buf, limit).await;
        if let Some(new) = buf.get_mut(start..) {
            for c in new {
                release(c);
            }
        }
        n
    }

    /// Commands received from the broker and not yet taken.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

fn taken(mut c: IncomingCommand) -> IncomingCommand {
    release(&mut c);
    c
}

/// A command the gateway has taken no longer counts as waiting.
fn release(c: &mut IncomingCommand) {
    if let Some(w) = c.waiting.take() {
        let left = w.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        metrics::gauge!("vgate_mqtt_commands_waiting").set(left as f64);
    }
}
