//! A raw TCP session: a private framing configured, not coded (docs/raw-tcp.md).
//!
//! ```text
//! vehicle                                  vgate
//!   frames ─▶ RawCodec (framing) ─▶ Identifier (first_frame | field | peer)
//!                                      │ first identification: auth.login ─▶ lifecycle login,
//!                                      │                                     presence online
//!                                      ▼
//!                     passthrough event (binary or JSON payload) ─▶ MQTT; ack bytes back
//!   raw command (body_hex | body_base64 | text) ◀─ framed by the same codec ◀─ queue
//! ```
//!
//! The framing, identity, payload and ack pieces live in `codecs::raw` (sans-I/O); this file
//! holds their order, the timeouts, takeover, presence and commands, as the JT/T 808 and
//! GB/T 32960 sessions do. A raw framing has no acknowledgement of its own, so a command is
//! `acked` once written to the connection (documented in docs/raw-tcp.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::BytesMut;
use codecs::command::{Command, CommandError};
use codecs::event::{Lifecycle, LifecycleKind, PresenceReason};
use codecs::raw::{Acker, FrameRole, Identifier, RawCodec, RawListenerSpec};
use codecs::{Data, Event, EventContext, Protocol};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use super::{BadFrameLog, OpenConnection, Shared};
use crate::auth::{Authenticator, Decision};
use crate::commands::{command_of, CmdStatus};
use crate::config::{AuthConfig, Listen};
use crate::registry::{next_session_id, Control, SessionHandle};

/// One `[[raw]]` listener in the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerConfig {
    /// The listener's name (metrics, logs, `listening <name> <addr>`).
    pub name: String,
    pub listen: Listen,
    #[serde(default)]
    pub auth: AuthConfig,
    pub framing: codecs::raw::Framing,
    pub identity: codecs::raw::Identity,
    #[serde(default)]
    pub payload: codecs::raw::PayloadMode,
    #[serde(default)]
    pub ack: codecs::raw::Ack,
    /// Seconds a connection may take to identify itself.
    #[serde(default = "default_login_timeout")]
    pub login_timeout_s: u64,
    /// Idle seconds after identification before the connection is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    /// Bad frames tolerated on one connection before it is closed.
    #[serde(default = "default_max_bad_frames")]
    pub max_bad_frames: u32,
    /// Frames per second one connection may send before its reading is slowed; 0 = no limit.
    #[serde(default = "default_max_frames_per_s")]
    pub max_frames_per_s: f64,
}

fn default_login_timeout() -> u64 {
    30
}
fn default_idle_timeout() -> u64 {
    180
}
fn default_max_bad_frames() -> u32 {
    20
}
fn default_max_frames_per_s() -> f64 {
    500.0
}

impl RawListenerConfig {
    /// The four sans-I/O parts, validated together.
    pub fn spec(&self) -> RawListenerSpec {
        RawListenerSpec::new(
            self.framing.clone(),
            self.identity.clone(),
            self.payload,
            self.ack.clone(),
        )
    }
}

/// What the sessions of one raw listener share.
pub struct Listener {
    pub name: &'static str,
    pub cfg: RawListenerConfig,
    pub auth: Authenticator,
    pub shared: Shared,
}

enum Flow {
    Continue,
    Close(PresenceReason),
}

struct Session<W> {
    l: Arc<Listener>,
    peer: SocketAddr,
    writer: W,
    id: u64,
    control_tx: mpsc::Sender<Control>,
    identifier: Identifier,
    vehicle: Option<Arc<str>>,
    /// Encodes acks and downlink commands in the listener's framing.
    encoder: RawCodec,
    acker: Acker,
    bad_frames: u32,
    bad_log: BadFrameLog,
    last_rx: Instant,
}

/// Serves one connection until it closes, times out, is taken over or the gateway stops.
pub async fn serve<S>(stream: S, peer: SocketAddr, l: Arc<Listener>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _open = OpenConnection::new(l.name);
    let (Ok(codec), Ok(encoder), Ok(acker)) = (
        RawCodec::new(&l.cfg.framing),
        RawCodec::new(&l.cfg.framing),
        Acker::new(&l.cfg.ack),
    ) else {
        // Validated at start-up; unreachable in practice.
        warn!(listener = l.name, "raw listener configuration invalid");
        return;
    };
    let (rd, wr) = tokio::io::split(stream);
    let mut frames = FramedRead::with_capacity(rd, codec, super::READ_BUFFER);
    let (control_tx, mut control_rx) = mpsc::channel(16);
    let mut s = Session {
        l: l.clone(),
        peer,
        writer: wr,
        id: next_session_id(),
        control_tx,
        identifier: Identifier::new(&l.cfg.identity, peer),
        vehicle: None,
        encoder,
        acker,
        bad_frames: 0,
        bad_log: BadFrameLog::default(),
        last_rx: Instant::now(),
    };
    let login_deadline =
        tokio::time::Instant::now() + Duration::from_secs(l.cfg.login_timeout_s.max(1));
    let idle = Duration::from_secs(l.cfg.idle_timeout_s.max(1));
    let shutdown = l.shared.shutdown.clone();
    // `peer` identity: the vehicle is known before its first frame.
    if let Some(vid) = s.identifier.vehicle_id().map(str::to_owned) {
        if let Flow::Close(r) = Box::pin(s.identified(&vid)).await {
            Box::pin(s.finish(r)).await;
            return;
        }
    }
    let mut limit = super::RateLimit::new(l.cfg.max_frames_per_s, "raw");
    let reason = loop {
        let deadline = if s.vehicle.is_some() {
            tokio::time::Instant::from_std(s.last_rx + idle)
        } else {
            login_deadline
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break PresenceReason::Shutdown,
            Some(ctrl) = control_rx.recv() => match ctrl {
                Control::Close(r) => break r,
                Control::Deliver => {
                    if let Flow::Close(r) = Box::pin(s.deliver()).await { break r; }
                }
            },
            _ = tokio::time::sleep_until(deadline) => break PresenceReason::Timeout,
            item = frames.next() => match item {
                None => break PresenceReason::Closed,
                Some(Err(e)) => {
                    // A stream that cannot resynchronise (length_prefixed) or a read error.
                    let reason = match &e {
                        codecs::raw::CodecError::Io(_) => "io",
                        other => other.reason(),
                    };
                    metrics::counter!("vgate_decode_errors_total", "protocol" => "raw", "reason" => reason).increment(1);
                    let vehicle = s.vehicle.clone();
                    s.bad_log.log("raw", peer, vehicle.as_deref(), reason, &e.to_string(), &[]);
                    break PresenceReason::Error;
                }
                Some(Ok(Err(bad))) => {
                    if let Flow::Close(r) = Box::pin(s.on_bad_frame(bad.reason(), &bad.to_string(), &[])).await { break r; }
                }
                Some(Ok(Ok(frame))) => {
                    s.last_rx = Instant::now();
                    limit.take().await;
                    if let Flow::Close(r) = s.on_frame(&frame).await { break r; }
                }
            }
        }
    };
    Box::pin(s.finish(reason)).await;
}

impl<W: AsyncWrite + Unpin> Session<W> {
    fn ctx(&self) -> EventContext {
        EventContext {
            gateway: self.l.shared.node.clone(),
            received_at: chrono::Utc::now(),
            device_utc_offset_secs: codecs::time::BEIJING_OFFSET_SECS,
        }
    }

    async fn publish(&self, ev: Event) -> Flow {
        match self.l.shared.sink.publish(ev).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close(PresenceReason::Shutdown),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Flow {
        if bytes.is_empty() {
            return Flow::Continue;
        }
        if self.writer.write_all(bytes).await.is_err() {
            return Flow::Close(PresenceReason::Closed);
        }
        Flow::Continue
    }

    async fn on_bad_frame(&mut self, reason: &'static str, detail: &str, raw: &[u8]) -> Flow {
        metrics::counter!("vgate_decode_errors_total", "protocol" => "raw", "reason" => reason)
            .increment(1);
        let vehicle = self.vehicle.clone();
        self.bad_log
            .log("raw", self.peer, vehicle.as_deref(), reason, detail, raw);
        self.bad_frames += 1;
        if self.bad_frames >= self.l.cfg.max_bad_frames {
            warn!(peer = %self.peer, bad_frames = self.bad_frames, "closing: too many bad frames");
            return Flow::Close(PresenceReason::Error);
        }
        Flow::Continue
    }

    async fn on_frame(&mut self, frame: &[u8]) -> Flow {
        metrics::counter!("vgate_frames_in_total", "protocol" => "raw", "msg_id" => self.l.name)
            .increment(1);
        let role = match self.identifier.on_frame(frame) {
            Ok(r) => r,
            Err(e) => {
                let reason = e.reason();
                if self.vehicle.is_none()
                    && matches!(self.l.cfg.identity, codecs::raw::Identity::FirstFrame(_))
                {
                    // A login that names no valid vehicle: refused.
                    self.on_bad_frame(reason, &e.to_string(), frame).await;
                    return Box::pin(self.refuse(None, reason)).await;
                }
                return self.on_bad_frame(reason, &e.to_string(), frame).await;
            }
        };
        if matches!(role, FrameRole::Login | FrameRole::Identified) || self.vehicle.is_none() {
            let Some(vid) = self.identifier.vehicle_id().map(str::to_owned) else {
                return Flow::Continue;
            };
            // Boxed, as every rare path: a connection's task holds the largest state its
            // loop can await, so the rare paths stay out of every idle connection's task.
            if let Flow::Close(r) = Box::pin(self.identified(&vid)).await {
                return Flow::Close(r);
            }
        }
        if role == FrameRole::Login {
            // The login frame is consumed, and acknowledged like any accepted frame.
            return self.ack(frame).await;
        }
        let Some(vehicle) = self.vehicle.clone() else {
            return Flow::Continue;
        };
        match codecs::raw::payload::event(&self.ctx(), vehicle, self.l.cfg.payload, frame) {
            Ok(ev) => {
                if let Flow::Close(r) = self.publish(ev).await {
                    return Flow::Close(r);
                }
                self.ack(frame).await
            }
            Err(e) => self.on_bad_frame(e.reason(), &e.to_string(), frame).await,
        }
    }

    async fn ack(&mut self, frame: &[u8]) -> Flow {
        let mut out = BytesMut::new();
        if let Err(e) = self.acker.write(frame, &mut self.encoder, &mut out) {
            debug!(peer = %self.peer, error = %e, "ack not framed");
            return Flow::Continue;
        }
        self.write(&out).await
    }

    async fn refuse(&mut self, vehicle: Option<&str>, reason: &str) -> Flow {
        metrics::counter!("vgate_login_refusals_total", "protocol" => "raw", "reason" => reason.to_owned()).increment(1);
        info!(peer = %self.peer, vehicle = vehicle.unwrap_or("-"), reason, "vehicle refused");
        if let Some(v) = vehicle {
            let lc = Lifecycle::new(LifecycleKind::Rejected).because(reason);
            let ev = Event::new(
                &self.ctx(),
                Arc::from(v),
                Protocol::Raw,
                None,
                None,
                Data::Lifecycle(lc),
            );
            let _ = self.publish(ev).await;
        }
        Flow::Close(PresenceReason::Error)
    }

    /// The connection named its vehicle: authorize, claim, announce, deliver queued commands.
    async fn identified(&mut self, vid: &str) -> Flow {
        if self.vehicle.as_deref() == Some(vid) {
            return Flow::Continue;
        }
        match self.l.auth.login(vid, None, &self.peer.to_string()).await {
            Decision::Deny { reason } => return self.refuse(Some(vid), reason.as_str()).await,
            Decision::Allow { .. } => {}
        }
        let vehicle: Arc<str> = Arc::from(vid);
        let handle = SessionHandle {
            id: self.id,
            protocol: Protocol::Raw,
            peer: self.peer,
            since: chrono::Utc::now(),
            control: self.control_tx.clone(),
        };
        let old = self.l.shared.registry.claim(&vehicle, handle);
        self.vehicle = Some(vehicle.clone());
        metrics::counter!("vgate_logins_total", "protocol" => "raw").increment(1);
        let ctx = self.ctx();
        let lc = Lifecycle::new(LifecycleKind::Login)
            .with("peer", self.peer.to_string())
            .with("listener", self.l.name);
        if let Flow::Close(r) = self
            .publish(Event::new(
                &ctx,
                vehicle.clone(),
                Protocol::Raw,
                None,
                None,
                Data::Lifecycle(lc),
            ))
            .await
        {
            return Flow::Close(r);
        }
        match old.filter(|o| o.id != self.id) {
            Some(old) => {
                let _ = old
                    .control
                    .try_send(Control::Close(PresenceReason::Takeover));
                let lc = Lifecycle::new(LifecycleKind::Takeover)
                    .with("previous_peer", old.peer.to_string())
                    .with("peer", self.peer.to_string());
                let _ = self
                    .publish(Event::new(
                        &ctx,
                        vehicle.clone(),
                        Protocol::Raw,
                        None,
                        None,
                        Data::Lifecycle(lc),
                    ))
                    .await;
            }
            None => {
                let _ = self
                    .l
                    .shared
                    .sink
                    .presence(
                        &ctx,
                        vehicle.clone(),
                        Protocol::Raw,
                        true,
                        PresenceReason::Login,
                        Some(self.peer.to_string()),
                    )
                    .await;
            }
        }
        self.l.shared.commands.seen(&vehicle, Protocol::Raw).await;
        self.deliver().await
    }

    /// Writes queued `raw` commands in the listener's framing; each is acked once written.
    async fn deliver(&mut self) -> Flow {
        let Some(vehicle) = self.vehicle.clone() else {
            return Flow::Continue;
        };
        let commands = self.l.shared.commands.clone();
        let window = commands.cfg.window;
        for q in commands.pending(&vehicle, window).await {
            let body = match command_of(&q).and_then(|c| raw_body(&c)) {
                Ok(b) => b,
                Err(e) => {
                    commands
                        .finish(
                            &q,
                            Protocol::Raw,
                            CmdStatus::Rejected,
                            Some(e.to_string()),
                            None,
                        )
                        .await;
                    continue;
                }
            };
            let mut out = BytesMut::new();
            if let Err(e) = self.encoder.encode_body(&body, &mut out) {
                commands
                    .finish(
                        &q,
                        Protocol::Raw,
                        CmdStatus::Rejected,
                        Some(format!("params: {e}")),
                        None,
                    )
                    .await;
                continue;
            }
            if let Flow::Close(r) = self.write(&out).await {
                return Flow::Close(r);
            }
            metrics::counter!("vgate_commands_sent_total", "protocol" => "raw").increment(1);
            commands.sent(&q, Protocol::Raw).await;
            commands
                .finish(
                    &q,
                    Protocol::Raw,
                    CmdStatus::Acked,
                    Some("written; raw framings have no acknowledgement".into()),
                    None,
                )
                .await;
        }
        Flow::Continue
    }

    async fn finish(mut self, reason: PresenceReason) {
        let _ = self.writer.flush().await;
        let _ = self.writer.shutdown().await;
        let protocol = Protocol::Raw;
        let vehicle = self.vehicle.take();
        self.l
            .shared
            .session_closed("raw", self.id, vehicle, protocol, self.peer, reason)
            .await;
    }
}

/// The body of a `raw` command for a raw listener: `params.body_hex`, `params.body_base64`
/// or `params.text` (UTF-8), exactly one of them.
pub fn raw_body(cmd: &Command) -> Result<Vec<u8>, CommandError> {
    if cmd.kind != "raw" {
        return Err(CommandError::new(
            "type",
            format!(
                "{:?} is not supported on raw listeners (only \"raw\")",
                cmd.kind
            ),
        ));
    }
    let p = |k: &str| cmd.params.get(k).filter(|v| !v.is_null());
    match (p("body_hex"), p("body_base64"), p("text")) {
        (Some(h), None, None) => h
            .as_str()
            .and_then(|s| hex::decode(s.replace(' ', "")).ok())
            .ok_or_else(|| CommandError::new("params.body_hex", "expected a hex string")),
        (None, Some(b), None) => b
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| CommandError::new("params.body_base64", "expected base64")),
        (None, None, Some(t)) => t
            .as_str()
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| CommandError::new("params.text", "expected a string")),
        (None, None, None) => Err(CommandError::new(
            "params.body_hex",
            "one of body_hex, body_base64, text is required",
        )),
        _ => Err(CommandError::new(
            "params",
            "give only one of body_hex, body_base64, text",
        )),
    }
}
