//! Downstream commands: from the platform's MQTT topic to the vehicle's connection, with a
//! result for every step (contract §4).
//!
//! ```text
//! {p}/v1/{vid}/cmd ──▶ Dispatcher::handle ──▶ CommandQueue (durable) ──▶ MQTT ack
//!                          │ invalid: `rejected`      │ vehicle online: Control::Deliver
//!                          │                          │ offline: `queued`
//!                          ▼                          ▼
//!                 {p}/v1/{vid}/cmd/result     session: Outbox (in-flight window)
//!                                             `sent` ─▶ answer ─▶ `acked` | `failed`
//!                                             no answer after retries ─▶ `failed`
//! sweeper: TTL passed while queued ─▶ `expired`
//! ```
//!
//! Why everything goes through the queue, even for an online vehicle: the MQTT message is
//! acknowledged only once the command is stored, so a crash at any point loses nothing (the
//! broker redelivers an unacknowledged command; a stored one is delivered at the next login),
//! and idempotency (same id = same command) has one place to live. A command leaves the
//! queue only with a final status.
//!
//! How a command reaches the connection holding its vehicle sits behind two interfaces: the
//! [`Registry`](crate::registry::Registry) (who holds the vehicle) and the
//! [`CommandQueue`] (where commands wait). Both have an embedded implementation; with
//! several nodes, a shared queue and registry (Redis) let any node accept a command and the
//! node holding the vehicle deliver it.

pub mod outbox;
pub mod settle;
pub mod upgrade;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use codecs::command::Command;
use codecs::event::CmdResult;
pub use codecs::event::CmdStatus;
use codecs::{Data, Event, EventContext, Protocol};
use mqtt_bridge::{IncomingCommand, Target};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::queue::{CommandJson, CommandQueue, Enqueued, QueuedCommand};
use crate::registry::{Control, Registry};
use crate::sink::Sink;

/// `[commands]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// TTL of a command that gives none (`ttl_s`, MQTT 5 Message Expiry), seconds.
    pub default_ttl_s: u64,
    /// Priority of a command that gives none (0-9).
    pub default_priority: u8,
    /// Commands sent to one vehicle and not yet answered.
    pub window: usize,
    /// Seconds to wait for a vehicle's answer before sending again.
    pub timeout_s: u64,
    /// Sends after the first before the command is `failed`.
    pub retries: u32,
    /// Commands queued per vehicle; more are refused (`failed`, reason `queue_full`).
    pub max_per_vehicle: usize,
    /// Commands queued in all.
    pub max_total: usize,
    /// Broadcast groups besides `all`, `jt808`, `gbt32960`: name = list of vehicle ids or
    /// patterns with a trailing `*` (`"LVGB*"`).
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
    /// `[commands.upgrade]`: upgrade packages and their transfer (`upgrade` commands).
    pub upgrade: crate::packages::UpgradeConfig,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            default_ttl_s: 86_400,
            default_priority: 5,
            window: 4,
            timeout_s: 30,
            retries: 2,
            max_per_vehicle: 1000,
            max_total: 1_000_000,
            groups: Default::default(),
            upgrade: Default::default(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What sessions and the dispatcher share about commands.
pub struct Commands {
    pub cfg: CommandsConfig,
    pub queue: Arc<dyn CommandQueue>,
    pub sink: Sink,
    pub node: Arc<str>,
    /// Logins to remember, written in batches by [`remember_seen`].
    pub seen_tx: tokio::sync::mpsc::Sender<(String, Protocol)>,
    /// Sends and final statuses, stored many per commit ([`settle`]).
    pub settle: settle::Settler,
    /// Upgrade packages ([`crate::packages`]).
    pub packages: Arc<crate::packages::Packages>,
    /// Upgrades whose transfer is done, waiting for the terminal's result ([`upgrade`]).
    pub upgrades: upgrade::Waiting,
}

/// How many logins may wait to be remembered; beyond that a login is not recorded (the
/// vehicle's next login will be), counted in `vgate_seen_dropped_total`.
pub const SEEN_CAPACITY: usize = 65_536;

/// Writes the vehicles that logged in into the store, many per commit, so a reconnect storm
/// of thousands of vehicles costs a few fsyncs instead of thousands. Runs until the senders
/// are gone.
pub async fn remember_seen(
    queue: Arc<dyn CommandQueue>,
    mut rx: tokio::sync::mpsc::Receiver<(String, Protocol)>,
) {
    let mut batch: Vec<(String, Protocol)> = Vec::with_capacity(1024);
    while rx.recv_many(&mut batch, 4096).await > 0 {
        let seen: Vec<(String, String)> = batch
            .drain(..)
            .map(|(v, p)| (v, p.as_str().to_owned()))
            .collect();
        let q = queue.clone();
        let n = seen.len();
        match tokio::task::spawn_blocking(move || q.remember_vehicles(&seen, now_ms())).await {
            Ok(Ok(())) => debug!(vehicles = n, "vehicles remembered"),
            Ok(Err(e)) => warn!(error = %e, vehicles = n, "remembering vehicles failed"),
            Err(e) => warn!(error = %e, "remembering vehicles failed"),
        }
    }
}

impl Commands {
    /// Runs a blocking queue operation off the async threads.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn CommandQueue) -> T + Send + 'static,
    ) -> Option<T> {
        let q = self.queue.clone();
        tokio::task::spawn_blocking(move || f(&*q)).await.ok()
    }

    /// Publishes a result on `{p}/v1/{vid}/cmd/result` (and on the command's MQTT 5 response
    /// topic, when it gave one).
    pub async fn result(
        &self,
        vehicle: &str,
        protocol: Protocol,
        cmd: &ResultTarget,
        status: CmdStatus,
        reason: Option<String>,
        response: Option<serde_json::Value>,
    ) {
        self.publisher()
            .publish(Outcome {
                vehicle: vehicle.to_owned(),
                protocol,
                target: cmd.clone(),
                status,
                reason,
                response,
                progress_pct: None,
            })
            .await;
    }

    /// What publishes this node's command results.
    pub fn publisher(&self) -> ResultPublisher {
        ResultPublisher::new(self.node.clone(), self.sink.clone())
    }
}

/// One command result to publish.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub vehicle: String,
    pub protocol: Protocol,
    pub target: ResultTarget,
    pub status: CmdStatus,
    pub reason: Option<String>,
    pub response: Option<serde_json::Value>,
    /// An upgrade's progress, on its `sent` results.
    pub progress_pct: Option<u8>,
}

impl Outcome {
    /// `status` for queued command `q`, no reason, no response.
    pub fn of(q: &QueuedCommand, protocol: Protocol, status: CmdStatus) -> Outcome {
        Outcome {
            vehicle: q.vehicle.clone(),
            protocol,
            target: ResultTarget::from(q),
            status,
            reason: None,
            response: None,
            progress_pct: None,
        }
    }
}

/// Publishes command results: on `{p}/v1/{vid}/cmd/result`, on the command's MQTT 5 response
/// topic when it gave one, and on the gateway's own result topic for a vehicle id that cannot
/// be a topic level. Cheap to clone (the group-commit task has one: [`settle`]).
#[derive(Clone)]
pub struct ResultPublisher {
    node: Arc<str>,
    sink: Sink,
}

impl ResultPublisher {
    pub fn new(node: Arc<str>, sink: Sink) -> ResultPublisher {
        ResultPublisher { node, sink }
    }

    /// Publishes one result.
    pub async fn publish(&self, o: Outcome) {
        let Outcome {
            vehicle,
            protocol,
            target: cmd,
            status,
            reason,
            response,
            progress_pct,
        } = o;
        let vehicle = vehicle.as_str();
        metrics::counter!("vgate_command_results_total", "status" => status_label(status))
            .increment(1);
        let data = CmdResult {
            id: cmd.id.clone(),
            status,
            reason,
            response,
            progress_pct,
        };
        let ctx = EventContext {
            gateway: self.node.clone(),
            received_at: chrono::Utc::now(),
            device_utc_offset_secs: codecs::time::BEIJING_OFFSET_SECS,
        };
        let ev = Event::new(
            &ctx,
            Arc::from(vehicle),
            protocol,
            None,
            None,
            Data::CmdResult(data),
        );
        if let Some(topic) = &cmd.response_topic {
            let mut payload = Vec::with_capacity(256);
            ev.write_json(&mut payload);
            if let Err(e) = self
                .sink
                .publish_response(topic, payload, cmd.correlation_data.clone())
                .await
            {
                warn!(error = %e, topic, "command result to the response topic not published");
            }
        }
        // A vehicle id that cannot be a topic level (`{p}/v1/bad.id/cmd`) still gets its
        // result, on the gateway's own result topic.
        let published = if codecs::vehicle_id::validate(vehicle).is_ok() {
            self.sink.publish(ev).await
        } else {
            self.sink.publish_gateway_result(ev).await
        };
        if let Err(e) = published {
            warn!(error = %e, vehicle, id = %cmd.id, "command result not published");
        }
    }
}

impl Commands {
    /// Commands waiting for `vehicle`, best first, at most `limit`.
    pub async fn pending(&self, vehicle: &str, limit: usize) -> Vec<QueuedCommand> {
        let v = vehicle.to_owned();
        match self.blocking(move |q| q.pending(&v, now_ms(), limit)).await {
            Some(Ok(list)) => list,
            Some(Err(e)) => {
                warn!(vehicle, error = %e, "reading the command queue failed");
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// A command was written to the vehicle: its attempt is counted and then `sent` is
    /// published, with the other sessions' records of the moment ([`settle`]). Does not wait:
    /// the session goes on while the record is stored; the result follows the store.
    pub fn sent(&self, q: &QueuedCommand, protocol: Protocol) {
        let op = crate::queue::Settle::Attempt {
            vehicle: q.vehicle.clone(),
            id: q.id.clone(),
        };
        self.settle
            .record(op, Outcome::of(q, protocol, CmdStatus::Sent));
    }

    /// A command reached a final status: it is removed from the queue (durably, with the
    /// other sessions' records of the moment: [`settle`]) and then its status published.
    /// Returns once both are done, so that the session's next look at the queue no longer
    /// sees it.
    pub async fn finish(
        &self,
        q: &QueuedCommand,
        protocol: Protocol,
        status: CmdStatus,
        reason: Option<String>,
        response: Option<serde_json::Value>,
    ) {
        let op = crate::queue::Settle::Finish {
            vehicle: q.vehicle.clone(),
            id: q.id.clone(),
        };
        let mut outcome = Outcome::of(q, protocol, status);
        outcome.reason = reason;
        outcome.response = response;
        self.settle.record_and_wait(op, outcome).await;
    }

    /// A vehicle logged in: remember it (broadcast groups, protocol of later commands).
    /// Never waits: the write is batched by [`remember_seen`].
    pub async fn seen(&self, vehicle: &str, protocol: Protocol) {
        if self
            .seen_tx
            .try_send((vehicle.to_owned(), protocol))
            .is_err()
        {
            metrics::counter!("vgate_seen_dropped_total").increment(1);
        }
    }
}

/// The stored command envelope back as a [`Command`].
pub fn command_of(q: &QueuedCommand) -> Result<Command, codecs::command::CommandError> {
    // From the stored text: the one place a queued command is taken apart.
    q.command.parse::<Command>().map_err(|e| {
        codecs::command::CommandError::new("command", format!("stored command unreadable: {e}"))
    })
}

/// Where a command's results go.
#[derive(Debug, Clone, Default)]
pub struct ResultTarget {
    pub id: String,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
}

impl From<&QueuedCommand> for ResultTarget {
    fn from(q: &QueuedCommand) -> Self {
        ResultTarget {
            id: q.id.clone(),
            response_topic: q.response_topic.clone(),
            correlation_data: q.correlation_data.clone(),
        }
    }
}

/// A bounded label for a status.
pub fn status_label(s: CmdStatus) -> &'static str {
    match s {
        CmdStatus::Queued => "queued",
        CmdStatus::Sent => "sent",
        CmdStatus::Acked => "acked",
        CmdStatus::Failed => "failed",
        CmdStatus::Expired => "expired",
        CmdStatus::Rejected => "rejected",
        CmdStatus::Cancelled => "cancelled",
    }
}

/// The contract's protocol name back to a [`Protocol`].
pub fn protocol_from_name(s: &str) -> Option<Protocol> {
    [
        Protocol::Jt808_2011,
        Protocol::Jt808_2013,
        Protocol::Jt808_2019,
        Protocol::Gbt32960_2016,
        Protocol::Gbt32960_2025,
        Protocol::Raw,
    ]
    .into_iter()
    .find(|p| p.as_str() == s)
}

/// Checks a command's params against the protocol it will be sent in.
pub fn validate_for(
    cmd: &Command,
    protocol: Protocol,
) -> Result<(), codecs::command::CommandError> {
    match protocol {
        Protocol::Jt808_2011 => jt808::command::check(cmd, jt808::Version::V2011),
        Protocol::Jt808_2013 => jt808::command::check(cmd, jt808::Version::V2013),
        Protocol::Jt808_2019 => jt808::command::check(cmd, jt808::Version::V2019),
        Protocol::Gbt32960_2016 => {
            gbt32960::command::build(cmd, gbt32960::Edition::V2016, Default::default()).map(|_| ())
        }
        Protocol::Gbt32960_2025 => {
            gbt32960::command::build(cmd, gbt32960::Edition::V2025, Default::default()).map(|_| ())
        }
        Protocol::Raw => codecs::raw::command_body(cmd).map(|_| ()),
        // Nothing to check the params against until the vehicle is seen.
        Protocol::Unknown => Ok(()),
    }
}

/// The command id of a payload that does not parse as a command, if it has one, so the
/// `rejected` result can still name it.
fn loose_id(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// How long the dispatcher keeps trying to store a batch the store refuses with an error
/// before it leaves it unacknowledged to the broker (which delivers it again after a
/// reconnect).
pub const STORE_RETRY_FOR: Duration = Duration::from_secs(120);

/// Commands taken from the bridge and stored with one commit, at most. Large enough that a
/// burst is stored at the disk's fsync rate times this (a commit costs a few ms whatever it
/// holds), small enough that the first results of a burst come out within one commit.
pub const INTAKE_BATCH: usize = 1024;

/// Takes commands from the bridge, stores them and wakes the sessions that hold their vehicles.
///
/// Commands are taken in batches: every command already waiting (up to [`INTAKE_BATCH`]) is
/// validated, then all of them are stored with one commit (one fsync), then acknowledged to
/// the broker and answered (`queued`, or the vehicle's session is woken). One commit per
/// command bounded the intake at the disk's fsync rate (~250/s), so a fleet-wide push of one
/// message per vehicle took minutes.
pub struct Dispatcher {
    pub commands: Arc<Commands>,
    pub registry: Arc<dyn Registry>,
}

/// One incoming command of a batch, parsed, with where its results go.
struct Intake {
    inc: IncomingCommand,
    target: ResultTarget,
    /// `None`: rejected (the `rejected` result is already published).
    cmd: Option<Command>,
    /// Its recipients (one, or a group's members).
    vehicles: Vec<String>,
    /// Whether storing it failed (not acknowledged: the broker delivers it again).
    failed: bool,
}

/// What became of a command submitted through the operator API ([`Dispatcher::submit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Stored; the vehicle is offline (`queued`) or its session was woken to send it (`sent`).
    Accepted { id: String, status: CmdStatus },
    /// Invalid (`rejected` published too): the reason names the field.
    Rejected(String),
    /// The queue is full (`failed` with reason `queue_full` published too).
    Full { id: String },
    /// The queue could not store it.
    Unavailable(String),
}

/// The queue record of command `cmd` for `vehicle`, stored at `now` to live `ttl_ms`, its
/// results going where `target` says.
fn to_queue(
    vehicle: &str,
    cmd: &Command,
    priority: u8,
    now: i64,
    ttl_ms: u64,
    command: CommandJson,
    target: &ResultTarget,
) -> QueuedCommand {
    QueuedCommand {
        vehicle: vehicle.to_owned(),
        id: cmd.id.clone(),
        priority,
        enqueued_at_ms: now,
        expires_at_ms: now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
        command,
        response_topic: target.response_topic.clone(),
        correlation_data: target.correlation_data.clone(),
        attempts: 0,
    }
}

impl Dispatcher {
    /// One command for `vehicle` from the operator API: the MQTT path's checks, store and
    /// results (`rejected`, `queued`, `failed` published as for a command from MQTT), one
    /// commit for itself.
    pub async fn submit(&self, vehicle: &str, payload: &[u8]) -> Submitted {
        let target = ResultTarget {
            id: loose_id(payload),
            ..Default::default()
        };
        let protocol = match self.registry.get(vehicle) {
            Some(h) => Some(h.protocol),
            None => {
                let v = vehicle.to_owned();
                self.commands
                    .blocking(move |q| q.known_vehicle(&v).ok().flatten())
                    .await
                    .flatten()
                    .and_then(|k| protocol_from_name(&k.protocol))
            }
        };
        let p = protocol.unwrap_or(Protocol::Unknown);
        let cmd = match Command::parse(payload) {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                self.reject(vehicle, p, &target, reason.clone()).await;
                return Submitted::Rejected(reason);
            }
        };
        let target = ResultTarget {
            id: cmd.id.clone(),
            ..Default::default()
        };
        let priority = cmd.priority.unwrap_or(self.commands.cfg.default_priority);
        if let Err(reason) = self.check(&cmd, vehicle, protocol, priority) {
            self.reject(vehicle, p, &target, reason.clone()).await;
            return Submitted::Rejected(reason);
        }
        let ttl_ms = cmd
            .ttl_s
            .unwrap_or(self.commands.cfg.default_ttl_s)
            .saturating_mul(1000);
        let command_json = match CommandJson::encode(&cmd) {
            Ok(c) => c,
            Err(e) => {
                let reason = format!("command: cannot be stored: {e}");
                self.reject(vehicle, p, &target, reason.clone()).await;
                return Submitted::Rejected(reason);
            }
        };
        let q = to_queue(
            vehicle,
            &cmd,
            priority,
            now_ms(),
            ttl_ms,
            command_json,
            &target,
        );
        let stored = q.clone();
        let outcome = match self
            .commands
            .blocking(move |queue| queue.enqueue_many(vec![stored]))
            .await
        {
            Some(Ok(o)) => o.into_iter().next().unwrap_or(Enqueued::Duplicate),
            Some(Err(e)) => return Submitted::Unavailable(e.to_string()),
            None => return Submitted::Unavailable("the command queue task failed".into()),
        };
        let elsewhere = self.elsewhere([(&q, &outcome)]).await;
        // Cluster mode: online on another node counts as online (that node sends it).
        let online = self.registry.get(vehicle).is_some() || elsewhere.contains(vehicle);
        self.stored(&q, p, &target, outcome, &elsewhere).await;
        let id = cmd.id;
        match outcome {
            Enqueued::VehicleFull | Enqueued::GlobalFull => Submitted::Full { id },
            Enqueued::Stored | Enqueued::Duplicate => Submitted::Accepted {
                id,
                status: if online {
                    CmdStatus::Sent
                } else {
                    CmdStatus::Queued
                },
            },
        }
    }

    /// Withdraws a command still waiting for `vehicle` (the operator API's cancel): removed
    /// from the queue and `cancelled` published. `None` when no such command waits.
    pub async fn cancel(&self, vehicle: &str, id: &str) -> Result<Option<QueuedCommand>, String> {
        let (v, i) = (vehicle.to_owned(), id.to_owned());
        let removed = match self
            .commands
            .blocking(move |q| q.cancel(&v, &i, now_ms()))
            .await
        {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the command queue task failed".into()),
        };
        if let Some(q) = &removed {
            self.commands.upgrades.remove(vehicle, id);
            let protocol = self
                .registry
                .get(vehicle)
                .map_or(Protocol::Unknown, |h| h.protocol);
            self.commands
                .result(
                    vehicle,
                    protocol,
                    &ResultTarget::from(q),
                    CmdStatus::Cancelled,
                    Some("cancelled through the operator API".into()),
                    None,
                )
                .await;
        }
        Ok(removed)
    }

    /// Runs until the bridge's command channel closes.
    pub async fn run(self, mut rx: mqtt_bridge::CommandReceiver) {
        let mut batch = Vec::with_capacity(INTAKE_BATCH);
        while rx.recv_many(&mut batch, INTAKE_BATCH).await > 0 {
            self.handle_batch(std::mem::take(&mut batch)).await;
        }
    }

    /// One incoming command: validated, stored (then acknowledged to the broker), delivered
    /// or queued, with its first result.
    pub async fn handle(&self, inc: IncomingCommand) {
        self.handle_batch(vec![inc]).await;
    }

    /// Incoming commands, in the order received: each validated, all stored with one commit,
    /// then each acknowledged to the broker and delivered or queued, with its first result.
    pub async fn handle_batch(&self, incs: Vec<IncomingCommand>) {
        let started = std::time::Instant::now();
        let count = incs.len();
        let mut groups: Option<Vec<(String, String)>> = None;
        let mut intakes = Vec::with_capacity(incs.len());
        for inc in incs {
            let vehicles = match &inc.target {
                Target::Vehicle(v) => vec![v.clone()],
                Target::Group(g) if !self.group_exists(g) => {
                    warn!(topic = %inc.topic, group = %g, "broadcast to an unknown group rejected");
                    let target = ResultTarget {
                        id: loose_id(&inc.payload),
                        response_topic: inc.response_topic.clone(),
                        correlation_data: inc.correlation_data.as_ref().map(|b| b.to_vec()),
                    };
                    let reason = format!(
                        "unknown broadcast group {g:?}: all, jt808, gbt32960 or a group of [commands.groups]"
                    );
                    self.reject(
                        &format!("broadcast/{g}"),
                        Protocol::Unknown,
                        &target,
                        reason,
                    )
                    .await;
                    let _ = inc.ack().await;
                    continue;
                }
                Target::Group(g) => {
                    if groups.is_none() {
                        groups = Some(self.known().await);
                    }
                    let members = self.members(g, groups.as_deref().unwrap_or_default());
                    if members.is_empty() {
                        info!(group = %g, "broadcast to a group with no vehicle yet: nobody to send it to");
                    }
                    members
                }
            };
            let target = ResultTarget {
                id: loose_id(&inc.payload),
                response_topic: inc.response_topic.clone(),
                correlation_data: inc.correlation_data.as_ref().map(|b| b.to_vec()),
            };
            let cmd = match Command::parse(&inc.payload) {
                Ok(c) => Some(c),
                Err(e) => {
                    info!(topic = %inc.topic, error = %e, "command rejected");
                    for v in &vehicles {
                        let p = self
                            .registry
                            .get(v)
                            .map_or(Protocol::Unknown, |h| h.protocol);
                        self.reject(v, p, &target, e.to_string()).await;
                    }
                    None
                }
            };
            intakes.push(Intake {
                inc,
                target,
                cmd,
                vehicles,
                failed: false,
            });
        }
        let protocols = self.protocols(&intakes).await;

        // Everything to store, with the command it came from.
        let mut batch: Vec<(usize, QueuedCommand, Protocol)> = Vec::new();
        let now = now_ms();
        for (k, it) in intakes.iter().enumerate() {
            let Some(cmd) = &it.cmd else { continue };
            let ttl_ms = cmd
                .ttl_s
                .map(|s| s.saturating_mul(1000))
                .or(it
                    .inc
                    .message_expiry
                    .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64))
                .unwrap_or(self.commands.cfg.default_ttl_s.saturating_mul(1000));
            let priority = cmd.priority.unwrap_or(self.commands.cfg.default_priority);
            // Serialized once; every recipient's record shares the text.
            let command_json = match CommandJson::encode(cmd) {
                Ok(c) => c,
                Err(e) => {
                    for vehicle in &it.vehicles {
                        let p = protocols.get(vehicle.as_str()).copied().flatten();
                        let reason = format!("command: cannot be stored: {e}");
                        self.reject(vehicle, p.unwrap_or(Protocol::Unknown), &it.target, reason)
                            .await;
                    }
                    continue;
                }
            };
            for vehicle in &it.vehicles {
                let protocol = protocols.get(vehicle.as_str()).copied().flatten();
                if let Err(reason) = self.check(cmd, vehicle, protocol, priority) {
                    info!(vehicle, id = %cmd.id, error = %reason, "command rejected");
                    let p = protocol.unwrap_or(Protocol::Unknown);
                    self.reject(vehicle, p, &it.target, reason).await;
                    continue;
                }
                let q = to_queue(
                    vehicle,
                    cmd,
                    priority,
                    now,
                    ttl_ms,
                    command_json.clone(),
                    &it.target,
                );
                batch.push((k, q, protocol.unwrap_or(Protocol::Unknown)));
            }
        }

        // One commit (one fsync) for every command of the batch and every member of a broadcast.
        let cmds: Vec<QueuedCommand> = batch.iter().map(|(_, q, _)| q.clone()).collect();
        let n = cmds.len();
        let outcome = if cmds.is_empty() {
            Some(Ok(Vec::new()))
        } else {
            self.store_retrying(cmds).await
        };
        match outcome {
            Some(Ok(outcomes)) => {
                let stored = batch.iter().map(|(_, q, _)| q).zip(&outcomes);
                let elsewhere = self.elsewhere(stored).await;
                for ((k, q, protocol), outcome) in batch.iter().zip(outcomes) {
                    let Some(it) = intakes.get(*k) else { continue };
                    self.stored(q, *protocol, &it.target, outcome, &elsewhere)
                        .await;
                }
            }
            Some(Err(e)) => {
                warn!(commands = n, error = %e, "commands not stored; the broker will deliver them again");
                for (k, _, _) in &batch {
                    if let Some(it) = intakes.get_mut(*k) {
                        it.failed = true;
                    }
                }
            }
            None => {
                for (k, _, _) in &batch {
                    if let Some(it) = intakes.get_mut(*k) {
                        it.failed = true;
                    }
                }
            }
        }
        // Not acknowledged when storing failed: the broker redelivers it (after a reconnect).
        for it in intakes {
            if !it.failed {
                let _ = it.inc.ack().await;
            }
        }
        debug!(messages = count, stored = n, took = ?started.elapsed(), "command batch taken");
    }

    /// Stores a batch, trying again while a store whose errors may pass
    /// ([`CommandQueue::retry_errors`]: Redis in cluster mode, restarting or failing over)
    /// fails, for up to [`STORE_RETRY_FOR`]. The
    /// commands stay unacknowledged meanwhile: a broker redelivers an unacknowledged message
    /// only after a reconnect, so giving up at the first error would leave it with the
    /// broker until then. A retry of a batch partly stored finds the stored ones duplicates.
    async fn store_retrying(
        &self,
        cmds: Vec<QueuedCommand>,
    ) -> Option<Result<Vec<Enqueued>, crate::queue::QueueError>> {
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let batch = cmds.clone();
            let r = self
                .commands
                .blocking(move |queue| queue.enqueue_many(batch))
                .await;
            match r {
                Some(Err(e))
                    if self.commands.queue.retry_errors()
                        && started.elapsed() < STORE_RETRY_FOR =>
                {
                    metrics::counter!("vgate_command_store_retries_total").increment(1);
                    warn!(commands = cmds.len(), error = %e, "commands not stored yet; not acknowledged, trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// Whether `cmd` can be stored for `vehicle`: a valid vehicle id, what a queue can hold,
    /// and params the vehicle's protocol (when known) accepts. The error is the reason.
    fn check(
        &self,
        cmd: &Command,
        vehicle: &str,
        protocol: Option<Protocol>,
        priority: u8,
    ) -> Result<(), String> {
        codecs::vehicle_id::validate(vehicle).map_err(|e| format!("vehicle id: {e}"))?;
        crate::queue::validate(vehicle, &cmd.id, priority).map_err(|e| e.to_string())?;
        if let Some(p) = protocol {
            validate_for(cmd, p).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn reject(
        &self,
        vehicle: &str,
        protocol: Protocol,
        target: &ResultTarget,
        reason: String,
    ) {
        self.commands
            .result(
                vehicle,
                protocol,
                target,
                CmdStatus::Rejected,
                Some(reason),
                None,
            )
            .await;
    }

    /// A command of the batch was stored (or refused by the queue): wake the session holding
    /// its vehicle, or say it is queued / refused.
    async fn stored(
        &self,
        q: &QueuedCommand,
        protocol: Protocol,
        target: &ResultTarget,
        outcome: Enqueued,
        elsewhere: &std::collections::HashSet<String>,
    ) {
        let vehicle = &q.vehicle;
        match outcome {
            Enqueued::Stored => match self.registry.get(vehicle) {
                Some(h) => {
                    let _ = h.control.try_send(Control::Deliver);
                }
                // Cluster mode: online on another node, which delivers it (and says `sent`).
                None if elsewhere.contains(vehicle.as_str()) => {}
                None => {
                    self.commands
                        .result(vehicle, protocol, target, CmdStatus::Queued, None, None)
                        .await
                }
            },
            Enqueued::Duplicate => {
                debug!(vehicle, id = %q.id, "duplicate command id ignored")
            }
            Enqueued::VehicleFull | Enqueued::GlobalFull => {
                self.commands
                    .result(
                        vehicle,
                        protocol,
                        target,
                        CmdStatus::Failed,
                        Some("queue_full".into()),
                        None,
                    )
                    .await;
            }
        }
    }

    /// Cluster mode: of the vehicles whose commands were just stored and that no session of
    /// this node holds, those another node holds; that node has been told (one question for
    /// the whole batch: a broadcast to many vehicles is one round of look-ups, not one each).
    /// Always empty on one node.
    async fn elsewhere<'a>(
        &self,
        stored: impl IntoIterator<Item = (&'a QueuedCommand, &'a Enqueued)>,
    ) -> std::collections::HashSet<String> {
        let mut vehicles: Vec<String> = stored
            .into_iter()
            .filter(|(q, o)| **o == Enqueued::Stored && self.registry.get(&q.vehicle).is_none())
            .map(|(q, _)| q.vehicle.clone())
            .collect();
        vehicles.sort();
        vehicles.dedup();
        if vehicles.is_empty() {
            return Default::default();
        }
        self.registry.wake_elsewhere(vehicles).await
    }

    /// The protocol of every recipient of the batch: from its live session, or from the
    /// vehicles seen before (one blocking call for all that are not online).
    async fn protocols(&self, intakes: &[Intake]) -> HashMap<String, Option<Protocol>> {
        let mut out: HashMap<String, Option<Protocol>> = HashMap::new();
        let mut lookup = Vec::new();
        for v in intakes
            .iter()
            .filter(|it| it.cmd.is_some())
            .flat_map(|it| it.vehicles.iter())
        {
            if out.contains_key(v.as_str()) {
                continue;
            }
            match self.registry.get(v) {
                Some(h) => {
                    out.insert(v.clone(), Some(h.protocol));
                }
                None => {
                    out.insert(v.clone(), None);
                    lookup.push(v.clone());
                }
            }
        }
        if lookup.is_empty() {
            return out;
        }
        let found = self
            .commands
            .blocking(move |q| {
                lookup
                    .into_iter()
                    .filter_map(|v| {
                        let k = q.known_vehicle(&v).ok().flatten()?;
                        Some((v, protocol_from_name(&k.protocol)?))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        for (v, p) in found {
            out.insert(v, Some(p));
        }
        out
    }

    /// Every vehicle a group can name: online now or seen before, with its protocol name.
    async fn known(&self) -> Vec<(String, String)> {
        let known = self
            .commands
            .blocking(|q| q.known_vehicles().unwrap_or_default())
            .await
            .unwrap_or_default();
        let mut all: Vec<(String, String)> =
            known.into_iter().map(|k| (k.vehicle, k.protocol)).collect();
        for (v, h) in self.registry.all() {
            all.push((v, h.protocol.as_str().to_owned()));
        }
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        all
    }

    /// Whether `group` names a group: a built-in one or one of `[commands.groups]`.
    fn group_exists(&self, group: &str) -> bool {
        matches!(group, "all" | "jt808" | "gbt32960")
            || self.commands.cfg.groups.contains_key(group)
    }

    /// The vehicles of a broadcast group among `known`.
    fn members(&self, group: &str, known: &[(String, String)]) -> Vec<String> {
        let patterns = self.commands.cfg.groups.get(group);
        known
            .iter()
            .filter(|(v, p)| match group {
                "all" => true,
                "jt808" => p.starts_with("jt808"),
                "gbt32960" => p.starts_with("gbt32960"),
                _ => patterns.is_some_and(|ps| ps.iter().any(|pat| matches_pattern(pat, v))),
            })
            .map(|(v, _)| v.clone())
            .collect()
    }
}

/// `LVGB*` matches ids starting with `LVGB`; anything else matches itself.
pub fn matches_pattern(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

/// Sends `expired` for commands whose TTL passed while they waited. Runs until cancelled.
pub async fn sweep_expired(commands: Arc<Commands>, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        let Some(Ok(expired)) = commands.blocking(move |q| q.take_expired(now, 1000)).await else {
            continue;
        };
        let known = if expired.is_empty() {
            Vec::new()
        } else {
            commands
                .blocking(|q| q.known_vehicles().unwrap_or_default())
                .await
                .unwrap_or_default()
        };
        for q in expired {
            commands.upgrades.remove(&q.vehicle, &q.id);
            let protocol = known
                .iter()
                .find(|k| k.vehicle == q.vehicle)
                .and_then(|k| protocol_from_name(&k.protocol))
                .unwrap_or(Protocol::Unknown);
            commands
                .result(
                    &q.vehicle,
                    protocol,
                    &ResultTarget::from(&q),
                    CmdStatus::Expired,
                    Some("ttl passed before delivery".into()),
                    None,
                )
                .await;
        }
        for e in commands.upgrades.overdue(std::time::Instant::now()) {
            let reason = "no upgrade result (0x0108) from the terminal in time".to_owned();
            metrics::counter!("vgate_upgrades_total", "result" => "no_result").increment(1);
            commands
                .finish(&e.cmd, e.protocol, CmdStatus::Failed, Some(reason), None)
                .await;
        }
        if now % 60_000 < 1000 {
            let _ = commands.blocking(move |q| q.prune(now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_patterns_match_ids_and_prefixes() {
        assert!(matches_pattern("LVGB*", "LVGBT000000000001"));
        assert!(!matches_pattern("LVGB*", "LSVAU2180N2183294"));
        assert!(matches_pattern("013800138000", "013800138000"));
        assert!(!matches_pattern("013800138000", "0138001380001"));
        assert!(matches_pattern("*", "anything"));
    }

    #[test]
    fn protocol_names_round_trip() {
        for p in [Protocol::Jt808_2013, Protocol::Gbt32960_2025, Protocol::Raw] {
            assert_eq!(protocol_from_name(p.as_str()), Some(p));
        }
        assert_eq!(protocol_from_name("nope"), None);
    }

    #[test]
    fn params_are_checked_against_the_protocol() {
        let text = Command::parse(br#"{"id":"1","type":"text","params":{"text":"hi"}}"#).unwrap();
        assert!(validate_for(&text, Protocol::Jt808_2019).is_ok());
        assert!(
            validate_for(&text, Protocol::Raw).is_err(),
            "raw listeners take only raw"
        );
        let raw = Command::parse(br#"{"id":"2","type":"raw","params":{"text":"PING"}}"#).unwrap();
        assert!(validate_for(&raw, Protocol::Raw).is_ok());
    }
}
