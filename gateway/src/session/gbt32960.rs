//! The GB/T 32960 session: vehicle login -> real-time/reissue -> logout (GB/T 32960.3
//! appendix B), or platform login for platform-to-platform links.
//!
//! ```text
//! vehicle                          vgate
//!   0x01 login  ────────────────▶  auth.login ─▶ success (Beijing time); registry claim; presence
//!   0x02 real-time / 0x03 reissue ▶ normalize ─▶ MQTT; no reply when correct,
//!                                   an error flag when malformed (configurable)
//!   0x07 heartbeat, 0x08 time ──▶  success (0x08 with the current Beijing time)
//!   0x04 logout ────────────────▶  lifecycle logout; presence offline; close
//!   0x05 / 0x06 platform login/logout ▶ checked against configured credentials
//! ```
//!
//! Both editions (`##` 2016 and `$$` 2025) are accepted on one listener; each reply uses the
//! edition of the frame it answers. A frame whose response flag is not 0xFE is itself an
//! answer (to a command) and is never answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codecs::event::{Lifecycle, LifecycleKind, PresenceReason};
use codecs::time::LocalTime;
use codecs::{Data, Event, EventContext};
use futures::StreamExt;
use gbt32960::msg::{id, Message};
use gbt32960::{Edition, Frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use super::batch::{self, Batch};
use super::{BadFrameLog, OpenConnection, Shared};
use crate::auth::{Authenticator, Decision};
use crate::commands::outbox::{InFlight, Outbox};
use crate::commands::{command_of, CmdStatus};
use crate::config::{BeforeLogin, Gbt32960Config, ReplyStyle};
use crate::registry::{next_session_id, Control, SessionHandle};

/// Listener name in metrics and logs.
pub const LISTENER: &str = "gbt32960";

/// Everything the GB/T 32960 sessions of one listener share.
pub struct Listener {
    pub cfg: Gbt32960Config,
    pub auth: Authenticator,
    pub shared: Shared,
    pub device_offset_secs: i32,
}

impl Listener {
    fn idle_timeout(&self) -> Duration {
        let s = if self.cfg.idle_timeout_s == 0 {
            self.cfg.heartbeat_s.saturating_mul(3)
        } else {
            self.cfg.idle_timeout_s
        };
        Duration::from_secs(s.max(1))
    }

    fn reply_style(&self) -> gbt32960::ReplyStyle {
        match self.cfg.reply_style {
            ReplyStyle::TimeOnly => gbt32960::ReplyStyle::TimeOnly,
            ReplyStyle::Echo => gbt32960::ReplyStyle::Echo,
        }
    }
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
    vehicle: Option<Arc<str>>,
    edition: Edition,
    bad_frames: u32,
    bad_log: BadFrameLog,
    last_rx: Instant,
    /// Commands sent and not yet answered (key: the command byte).
    outbox: Outbox,
    /// Real-time and reissue frames whose events are queued, waiting to be durable (read
    /// back to back, `session::batch`), each with itself when a failure is to be answered
    /// (`reply_on_error`). Answers stay in frame order: every other frame flushes these.
    deferred: Batch<Option<Frame>>,
}

/// Serves one connection until it closes, times out, is taken over or the gateway stops.
pub async fn serve<S>(stream: S, peer: SocketAddr, l: Arc<Listener>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _open = OpenConnection::new(LISTENER);
    let (rd, wr) = tokio::io::split(stream);
    let codec = gbt32960::Codec::new(gbt32960::CodecConfig {
        max_frame_len: l.cfg.max_frame_len,
    });
    let mut frames = FramedRead::with_capacity(rd, codec, super::READ_BUFFER);
    let (control_tx, mut control_rx) = mpsc::channel(16);
    let mut s = Session {
        l: l.clone(),
        peer,
        writer: wr,
        id: next_session_id(),
        control_tx,
        vehicle: None,
        edition: Edition::V2016,
        bad_frames: 0,
        bad_log: BadFrameLog::default(),
        last_rx: Instant::now(),
        outbox: Outbox::new(
            l.shared.commands.cfg.window,
            Duration::from_secs(l.shared.commands.cfg.timeout_s.max(1)),
        ),
        deferred: Batch::default(),
    };
    let mut housekeeping = super::Housekeeping::default();
    let login_deadline = tokio::time::Instant::now() + Duration::from_secs(l.cfg.login_timeout_s);
    let idle = l.idle_timeout();
    let shutdown = l.shared.shutdown.clone();
    let mut limit = super::RateLimit::new(l.cfg.max_frames_per_s, "gbt32960");
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
            _ = tokio::time::sleep_until(housekeeping.next()), if !s.outbox.is_empty() => {
                housekeeping.done();
                if let Flow::Close(r) = Box::pin(s.retry_commands()).await { break r; }
            }
            _ = tokio::time::sleep_until(deadline) => break PresenceReason::Timeout,
            item = frames.next() => {
                // This item, then whatever else can be read without waiting (already
                // buffered, or in the socket), up to MAX_BATCH frames: one batch, made
                // durable together by flush_deferred.
                let mut item = item;
                let mut read = 1;
                let flow = loop {
                    let flow = match item {
                        None => Flow::Close(PresenceReason::Closed),
                        Some(Err(e)) => {
                            debug!(%peer, error = %e, "read error");
                            Flow::Close(PresenceReason::Error)
                        }
                        Some(Ok(Err(bad))) => {
                            let answer = match (&bad.vin, bad.edition, bad.command) {
                                (Some(vin), Some(ed), Some(cmd)) => Some((vin.clone(), ed, cmd)),
                                _ => None,
                            };
                            Box::pin(s.on_bad_frame(&bad.error.to_string(), bad.error.reason(), &bad.raw, answer)).await
                        }
                        Some(Ok(Ok(frame))) => {
                            s.last_rx = Instant::now();
                            limit.take().await;
                            s.on_frame(frame).await
                        }
                    };
                    if matches!(flow, Flow::Close(_)) {
                        break flow;
                    }
                    match batch::ready_next(&mut frames, &mut read) {
                        Some(next) => item = next,
                        None => break flow,
                    }
                };
                // Even when closing: the error answers of the batch go out first.
                let flushed = s.flush_deferred().await;
                if let Flow::Close(r) = flow { break r; }
                if let Flow::Close(r) = flushed { break r; }
            }
        }
    };
    Box::pin(s.finish(reason)).await;
}

/// Beijing (device-zone) time now, as the replies carry it regardless of the host's zone.
fn device_now(offset_secs: i32) -> LocalTime {
    LocalTime::from_utc(chrono::Utc::now(), offset_secs)
}

impl<W: AsyncWrite + Unpin> Session<W> {
    fn ctx(&self) -> EventContext {
        EventContext {
            gateway: self.l.shared.node.clone(),
            received_at: chrono::Utc::now(),
            device_utc_offset_secs: self.l.device_offset_secs,
        }
    }

    async fn write(&mut self, frame: &Frame) -> Flow {
        metrics::counter!("vgate_frames_out_total", "protocol" => "gbt32960", "msg_id" => id::label(frame.command)).increment(1);
        if self.writer.write_all(&frame.to_wire()).await.is_err() {
            return Flow::Close(PresenceReason::Closed);
        }
        Flow::Continue
    }

    async fn reply(&mut self, to: &Frame, flag: gbt32960::ResponseFlag) -> Flow {
        let frame = gbt32960::reply(
            to,
            flag,
            device_now(self.l.device_offset_secs),
            self.l.reply_style(),
        );
        self.write(&frame).await
    }

    async fn publish(&self, events: Vec<Event>) -> Flow {
        for ev in events {
            if self.l.shared.sink.publish(ev).await.is_err() {
                return Flow::Close(PresenceReason::Shutdown);
            }
        }
        Flow::Continue
    }

    async fn on_bad_frame(
        &mut self,
        detail: &str,
        reason: &'static str,
        raw: &[u8],
        answer: Option<(String, Edition, u8)>,
    ) -> Flow {
        if let Flow::Close(r) = self.flush_deferred().await {
            return Flow::Close(r);
        }
        metrics::counter!("vgate_decode_errors_total", "protocol" => "gbt32960", "reason" => reason).increment(1);
        let vehicle = self.vehicle.clone();
        self.bad_log.log(
            "gbt32960",
            self.peer,
            vehicle.as_deref(),
            reason,
            detail,
            raw,
        );
        if let Some((vin, edition, command)) = answer {
            if self.l.cfg.reply_on_error && id::is_report(command) {
                let to = Frame {
                    edition,
                    command,
                    response: gbt32960::frame::FLAG_COMMAND,
                    vin,
                    encryption: gbt32960::Encryption::None,
                    data: bytes::Bytes::new(),
                };
                if let Flow::Close(r) = self.reply(&to, gbt32960::ResponseFlag::Error).await {
                    return Flow::Close(r);
                }
            }
        }
        self.bad_frames += 1;
        if self.bad_frames >= self.l.cfg.max_bad_frames {
            warn!(peer = %self.peer, bad_frames = self.bad_frames, "closing: too many bad frames");
            return Flow::Close(PresenceReason::Error);
        }
        Flow::Continue
    }

    async fn on_frame(&mut self, frame: Frame) -> Flow {
        // Anything but real-time and reissue data is handled after the frames before it.
        if !id::is_report(frame.command) {
            if let Flow::Close(r) = self.flush_deferred().await {
                return Flow::Close(r);
            }
        }
        let msg = match Message::decode(&frame) {
            Ok(m) => m,
            Err(e) => {
                let detail = format!("command 0x{:02x}: {e}", frame.command);
                let answer = Some((frame.vin.clone(), frame.edition, frame.command));
                return Box::pin(self.on_bad_frame(&detail, e.reason(), &frame.data, answer))
                    .await;
            }
        };
        metrics::counter!("vgate_frames_in_total", "protocol" => "gbt32960", "msg_id" => id::label(frame.command)).increment(1);
        // A vehicle's answer to a command in flight (some vehicles answer with 0xFE).
        if self.vehicle.as_deref() == Some(frame.vin.as_str())
            && id::is_platform_command(frame.command)
        {
            return Box::pin(self.on_answer(&frame, &msg)).await;
        }
        if frame.response != gbt32960::frame::FLAG_COMMAND {
            // An answer from the vehicle (to a query/set/control): published, never answered.
            return match &self.vehicle {
                Some(v) if **v == *frame.vin => {
                    let events = gbt32960::normalize_message(&frame, &msg, &self.ctx());
                    Box::pin(self.publish(events)).await
                }
                _ => Flow::Continue,
            };
        }
        match frame.command {
            // Boxed, as every rare path: a connection's task holds the largest state its loop
            // can await, so the rare paths stay out of every idle connection's task.
            id::VEHICLE_LOGIN => return Box::pin(self.on_login(&frame, &msg)).await,
            id::PLATFORM_LOGIN => return Box::pin(self.on_platform_login(&frame, &msg)).await,
            _ => {}
        }
        let Some(vehicle) = self.vehicle.clone() else {
            return match self.l.cfg.before_login {
                BeforeLogin::Ignore => {
                    debug!(peer = %self.peer, command = frame.command, "frame before login ignored");
                    Flow::Continue
                }
                BeforeLogin::Close => Flow::Close(PresenceReason::Error),
            };
        };
        if *frame.vin != *vehicle {
            warn!(peer = %self.peer, vehicle = %vehicle, vin = %frame.vin, "frame for another vehicle on this connection ignored");
            return Flow::Continue;
        }
        self.edition = frame.edition;
        let events = gbt32960::normalize_message(&frame, &msg, &self.ctx());
        if id::is_report(frame.command) {
            return self.defer(frame, events).await;
        }
        let durable = self.l.cfg.ack_when == crate::config::AckWhen::Durable;
        // The other frames (heartbeat, time, logout) are answered the same whether their
        // events were published or not (the sink logged why not).
        if self
            .l
            .shared
            .sink
            .publish_all(events, durable)
            .await
            .is_err()
        {
            return Flow::Close(PresenceReason::Shutdown);
        }
        match frame.command {
            id::HEARTBEAT | id::TIME_CALIBRATION => self.reply(&frame, gbt32960::ResponseFlag::Success).await,
            id::VEHICLE_LOGOUT => Flow::Close(PresenceReason::Logout),
            id::PLATFORM_LOGOUT => {
                let _ = self.reply(&frame, gbt32960::ResponseFlag::Success).await;
                Flow::Close(PresenceReason::Logout)
            }
            _ => Flow::Continue,
        }
    }

    /// Queues a real-time or reissue frame's events; `flush_deferred` waits for them (with the
    /// rest of the batch) and answers the frame if they could not be made durable.
    async fn defer(&mut self, frame: Frame, events: Vec<Event>) -> Flow {
        let durable = self.l.cfg.ack_when == crate::config::AckWhen::Durable;
        let answer = self.l.cfg.reply_on_error.then_some(frame);
        if self
            .deferred
            .queue(&self.l.shared.sink, events, durable, answer)
            .await
            .is_err()
        {
            return Flow::Close(PresenceReason::Shutdown);
        }
        if self.deferred.is_full() {
            return Box::pin(self.flush_deferred()).await;
        }
        Flow::Continue
    }

    /// Waits for the deferred frames' events to be durable; answers those whose events are
    /// not (error flag, with `reply_on_error`: the vehicle keeps that data for reissue) in one
    /// write. A correct frame whose events are durable gets no answer (6.3.2). (The sink logged
    /// why an event was not published.)
    async fn flush_deferred(&mut self) -> Flow {
        if self.deferred.is_empty() {
            return Flow::Continue;
        }
        let Ok(settled) = self.deferred.settle().await else {
            return Flow::Close(PresenceReason::Shutdown);
        };
        let now = device_now(self.l.device_offset_secs);
        let mut out = Vec::new();
        for (answer, durable) in settled {
            let Some(frame) = answer.filter(|_| !durable) else {
                continue;
            };
            let reply = gbt32960::reply(
                &frame,
                gbt32960::ResponseFlag::Error,
                now,
                self.l.reply_style(),
            );
            metrics::counter!("vgate_frames_out_total", "protocol" => "gbt32960", "msg_id" => id::label(reply.command)).increment(1);
            out.extend_from_slice(&reply.to_wire());
        }
        if !out.is_empty() && self.writer.write_all(&out).await.is_err() {
            return Flow::Close(PresenceReason::Closed);
        }
        Flow::Continue
    }

    async fn refuse(&mut self, frame: &Frame, reason: &str) -> Flow {
        metrics::counter!("vgate_login_refusals_total", "protocol" => "gbt32960", "reason" => reason.to_owned()).increment(1);
        info!(peer = %self.peer, vin = %frame.vin, reason, "vehicle refused");
        if codecs::vehicle_id::validate(&frame.vin).is_ok() {
            let lc = Lifecycle::new(LifecycleKind::Rejected).because(reason);
            let ev = Event::new(
                &self.ctx(),
                Arc::from(frame.vin.as_str()),
                frame.edition.protocol(),
                None,
                None,
                Data::Lifecycle(lc),
            );
            let _ = self.publish(vec![ev]).await;
        }
        let _ = self.writer.flush().await;
        Flow::Close(PresenceReason::Error)
    }

    async fn on_login(&mut self, frame: &Frame, msg: &Message) -> Flow {
        if let Err(e) = codecs::vehicle_id::validate(&frame.vin) {
            warn!(peer = %self.peer, error = %e, "login refused: invalid VIN");
            let _ = self.reply(frame, gbt32960::ResponseFlag::Error).await;
            return self.refuse(frame, "invalid_vehicle_id").await;
        }
        let iccid = match msg {
            Message::VehicleLogin(l) => Some(l.iccid.clone()),
            _ => None,
        };
        match self
            .l
            .auth
            .login(&frame.vin, iccid.as_deref(), &self.peer.to_string())
            .await
        {
            Decision::Deny { reason } => {
                let flag = match frame.edition {
                    Edition::V2025 => gbt32960::ResponseFlag::VinUnknown,
                    Edition::V2016 => gbt32960::ResponseFlag::Error,
                };
                let _ = self.reply(frame, flag).await;
                self.refuse(frame, reason.as_str()).await
            }
            Decision::Allow { .. } => self.logged_in(frame, msg).await,
        }
    }

    async fn on_platform_login(&mut self, frame: &Frame, msg: &Message) -> Flow {
        let ok = match msg {
            Message::PlatformLogin(p) => self
                .l
                .cfg
                .platform_users
                .iter()
                .any(|u| u.user == p.user && u.password == p.password),
            _ => false,
        };
        if !ok || codecs::vehicle_id::validate(&frame.vin).is_err() {
            let _ = self.reply(frame, gbt32960::ResponseFlag::Error).await;
            return self.refuse(frame, "bad_platform_credentials").await;
        }
        self.logged_in(frame, msg).await
    }

    async fn logged_in(&mut self, frame: &Frame, msg: &Message) -> Flow {
        self.edition = frame.edition;
        let vehicle: Arc<str> = Arc::from(frame.vin.as_str());
        let handle = SessionHandle {
            id: self.id,
            protocol: frame.edition.protocol(),
            peer: self.peer,
            since: chrono::Utc::now(),
            control: self.control_tx.clone(),
        };
        // Claim before answering (see the JT/T 808 session): a reconnect after the answer
        // must find this session holding the id.
        let old = self.l.shared.registry.claim(&vehicle, handle);
        let already_mine = self.vehicle.as_deref() == Some(&*vehicle);
        self.vehicle = Some(vehicle.clone());
        if let Flow::Close(r) = self.reply(frame, gbt32960::ResponseFlag::Success).await {
            return Flow::Close(r);
        }
        metrics::counter!("vgate_logins_total", "protocol" => "gbt32960").increment(1);
        let mut events = gbt32960::normalize_message(frame, msg, &self.ctx());
        if let Some(old) = old.filter(|o| o.id != self.id) {
            let _ = old
                .control
                .try_send(Control::Close(PresenceReason::Takeover));
            let lc = Lifecycle::new(LifecycleKind::Takeover)
                .with("previous_peer", old.peer.to_string())
                .with("peer", self.peer.to_string());
            events.push(Event::new(
                &self.ctx(),
                vehicle.clone(),
                frame.edition.protocol(),
                None,
                None,
                Data::Lifecycle(lc),
            ));
        }
        if let Flow::Close(r) = self.publish(events).await {
            return Flow::Close(r);
        }
        if !already_mine {
            let ctx = self.ctx();
            let _ = self
                .l
                .shared
                .sink
                .presence(
                    &ctx,
                    vehicle,
                    frame.edition.protocol(),
                    true,
                    PresenceReason::Login,
                    Some(self.peer.to_string()),
                )
                .await;
        }
        self.l
            .shared
            .commands
            .seen(&frame.vin, frame.edition.protocol())
            .await;
        self.deliver().await
    }

    /// Sends queued commands while the in-flight window has room. One command per command
    /// byte at a time: the vehicle's answer names only the command.
    async fn deliver(&mut self) -> Flow {
        let Some(vehicle) = self.vehicle.clone() else {
            return Flow::Continue;
        };
        let room = self.outbox.room();
        if room == 0 {
            return Flow::Continue;
        }
        let commands = self.l.shared.commands.clone();
        let protocol = self.edition.protocol();
        let pending = commands.pending(&vehicle, room + self.outbox.len()).await;
        let fresh: Vec<_> = pending
            .into_iter()
            .filter(|q| !self.outbox.contains(&q.id))
            .collect();
        let mut sent = 0;
        for q in fresh {
            if sent == room {
                break;
            }
            let now = device_now(self.l.device_offset_secs);
            let frame = match command_of(&q)
                .and_then(|c| gbt32960::command::build(&c, self.edition, now))
            {
                Ok(msg) => match msg.to_frame(self.edition, &vehicle) {
                    Ok(f) => f,
                    Err(e) => {
                        commands
                            .finish(&q, protocol, CmdStatus::Rejected, Some(e.to_string()), None)
                            .await;
                        continue;
                    }
                },
                Err(e) => {
                    commands
                        .finish(&q, protocol, CmdStatus::Rejected, Some(e.to_string()), None)
                        .await;
                    continue;
                }
            };
            let key = u32::from(frame.command);
            if self
                .outbox
                .take(|k| k == key)
                .map(|f| self.outbox.push(f))
                .is_some()
            {
                // A command of the same kind is in flight; this one waits its turn.
                continue;
            }
            if let Flow::Close(r) = self.send_command(q, &frame, 1).await {
                return Flow::Close(r);
            }
            sent += 1;
        }
        Flow::Continue
    }

    async fn send_command(
        &mut self,
        q: crate::queue::QueuedCommand,
        frame: &Frame,
        attempts: u32,
    ) -> Flow {
        if let Flow::Close(r) = self.write(frame).await {
            return Flow::Close(r);
        }
        metrics::counter!("vgate_commands_sent_total", "protocol" => "gbt32960").increment(1);
        self.l
            .shared
            .commands
            .sent(&q, frame.edition.protocol())
            .await;
        self.outbox.push(InFlight {
            cmd: q,
            key: u32::from(frame.command),
            sent_at: std::time::Instant::now(),
            attempts,
        });
        Flow::Continue
    }

    /// A vehicle's answer to a query/set/control: success (0x01, or 0xFE from lenient
    /// firmware) is `acked` with the decoded answer, any other flag `failed`.
    async fn on_answer(&mut self, frame: &Frame, msg: &Message) -> Flow {
        let key = u32::from(frame.command);
        let Some(f) = self.outbox.take(|k| k == key) else {
            let events = gbt32960::normalize_message(frame, msg, &self.ctx());
            return self.publish(events).await;
        };
        let protocol = frame.edition.protocol();
        let response = gbt32960::raw_json(frame, msg).get("message").cloned();
        let commands = self.l.shared.commands.clone();
        match gbt32960::ResponseFlag::from_byte(frame.response) {
            Some(gbt32960::ResponseFlag::Success | gbt32960::ResponseFlag::Command) => {
                commands
                    .finish(&f.cmd, protocol, CmdStatus::Acked, None, response)
                    .await
            }
            _ => {
                let flag = frame.response;
                let reason = format!("vehicle answered with response flag 0x{flag:02x}");
                commands
                    .finish(&f.cmd, protocol, CmdStatus::Failed, Some(reason), response)
                    .await
            }
        }
        self.deliver().await
    }

    /// Sends again what was not answered in time; `failed` after the configured retries.
    async fn retry_commands(&mut self) -> Flow {
        if self.outbox.is_empty() {
            return Flow::Continue;
        }
        let Some(vehicle) = self.vehicle.clone() else {
            return Flow::Continue;
        };
        let retries = self.l.shared.commands.cfg.retries;
        let commands = self.l.shared.commands.clone();
        let protocol = self.edition.protocol();
        for f in self.outbox.timed_out(std::time::Instant::now()) {
            if f.attempts > retries {
                let reason = format!("no answer after {} attempts", f.attempts);
                commands
                    .finish(&f.cmd, protocol, CmdStatus::Failed, Some(reason), None)
                    .await;
                continue;
            }
            let now = device_now(self.l.device_offset_secs);
            let frame = command_of(&f.cmd)
                .and_then(|c| gbt32960::command::build(&c, self.edition, now))
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    m.to_frame(self.edition, &vehicle)
                        .map_err(|e| e.to_string())
                });
            match frame {
                Ok(frame) => {
                    if let Flow::Close(r) = self.send_command(f.cmd, &frame, f.attempts + 1).await {
                        return Flow::Close(r);
                    }
                }
                Err(e) => {
                    commands
                        .finish(&f.cmd, protocol, CmdStatus::Rejected, Some(e), None)
                        .await
                }
            }
        }
        self.deliver().await
    }

    async fn finish(mut self, reason: PresenceReason) {
        let _ = self.writer.flush().await;
        let _ = self.writer.shutdown().await;
        let protocol = self.edition.protocol();
        let vehicle = self.vehicle.take();
        self.l
            .shared
            .session_closed(LISTENER, self.id, vehicle, protocol, self.peer, reason)
            .await;
    }
}
