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

use std::future::Future;
use std::sync::Arc;

use codecs::event::PresenceReason;
use codecs::time::LocalTime;
use codecs::{Data, Event, EventContext};
use gbt32960::msg::{id, Message};
use gbt32960::{Edition, Frame};
use tokio::io::AsyncWrite;
use tracing::{debug, warn};

use super::batch::Batch;
use super::{Conn, Flow, Protocol};
use crate::auth::Decision;
use crate::commands::outbox::{InFlight, Outbox};
use crate::commands::{command_of, CmdStatus};
use crate::config::{BeforeLogin, Gbt32960Config, ReplyStyle};

mod security;

/// Listener name in metrics and logs.
pub const LISTENER: &str = "gbt32960";

/// The sessions of one listener share it.
pub type Listener = super::Listener<Gbt32960Config>;

impl From<&Gbt32960Config> for gbt32960::CodecConfig {
    fn from(cfg: &Gbt32960Config) -> Self {
        gbt32960::CodecConfig {
            max_frame_len: cfg.max_frame_len,
        }
    }
}

/// The configured reply style, in the protocol crate's terms.
fn reply_style(cfg: &Gbt32960Config) -> gbt32960::ReplyStyle {
    match cfg.reply_style {
        ReplyStyle::TimeOnly => gbt32960::ReplyStyle::TimeOnly,
        ReplyStyle::Echo => gbt32960::ReplyStyle::Echo,
    }
}

/// One GB/T 32960 connection's state.
pub struct Session<W> {
    l: Arc<Listener>,
    c: Conn<W>,
    edition: Edition,
    /// Commands sent and not yet answered (key: the command byte).
    outbox: Outbox,
    /// Real-time and reissue frames whose events are queued, waiting to be durable (read
    /// back to back, `session::batch`), each with itself when a failure is to be answered
    /// (`reply_on_error`). Answers stay in frame order: every other frame flushes these.
    deferred: Batch<Option<Frame>>,
    /// The keys of the vehicle on this connection (`security`), read at its first need.
    keys: Option<(Arc<str>, Arc<crate::vehicle_keys::VinKeys>)>,
}

impl<W: AsyncWrite + Unpin + Send + 'static> Protocol<W> for Session<W> {
    type Config = Gbt32960Config;
    type Codec = gbt32960::Codec;
    const LABEL: &'static str = LISTENER;

    fn conn(&mut self) -> &mut Conn<W> {
        &mut self.c
    }

    fn protocol(&self) -> codecs::Protocol {
        self.edition.protocol()
    }

    fn open(l: &Arc<Listener>, c: Conn<W>) -> Option<(Self, gbt32960::Codec)> {
        let s = Session {
            l: l.clone(),
            c,
            edition: Edition::V2016,
            outbox: super::outbox(&l.shared),
            deferred: Batch::default(),
            keys: None,
        };
        Some((s, gbt32960::Codec::new((&l.cfg).into())))
    }

    fn on_frame(&mut self, frame: Frame) -> impl Future<Output = Flow> + Send {
        self.frame(frame)
    }

    async fn on_bad_frame(&mut self, bad: gbt32960::BadFrame) -> Flow {
        let answer = match (&bad.vin, bad.edition, bad.command) {
            (Some(vin), Some(ed), Some(cmd)) => Some((vin.clone(), ed, cmd)),
            _ => None,
        };
        self.bad_frame(&bad.error.to_string(), bad.error.reason(), &bad.raw, answer)
            .await
    }

    fn end_batch(&mut self) -> impl Future<Output = Flow> + Send {
        self.flush_deferred()
    }

    fn outbox(&self) -> Option<&Outbox> {
        Some(&self.outbox)
    }

    fn housekeeping(&mut self) -> impl Future<Output = Flow> + Send {
        self.retry_commands()
    }

    fn deliver(&mut self) -> impl Future<Output = Flow> + Send {
        self.deliver_commands()
    }
}

/// The answer to a refused login: 2025's "VIN unknown", 2016's error flag.
fn unknown_vin(edition: Edition) -> gbt32960::ResponseFlag {
    match edition {
        Edition::V2025 => gbt32960::ResponseFlag::VinUnknown,
        Edition::V2016 => gbt32960::ResponseFlag::Error,
    }
}

/// Beijing (device-zone) time now, as the replies carry it regardless of the host's zone.
fn device_now(offset_secs: i32) -> LocalTime {
    LocalTime::from_utc(chrono::Utc::now(), offset_secs)
}

impl<W: AsyncWrite + Unpin + Send + 'static> Session<W> {
    fn ctx(&self) -> EventContext {
        self.l.shared.ctx(self.l.device_offset_secs)
    }

    async fn write(&mut self, frame: &Frame) -> Flow {
        metrics::counter!("vgate_frames_out_total", "protocol" => "gbt32960", "msg_id" => id::label(frame.command)).increment(1);
        self.c.write(&frame.to_wire()).await
    }

    async fn reply(&mut self, to: &Frame, flag: gbt32960::ResponseFlag) -> Flow {
        let frame = gbt32960::reply(
            to,
            flag,
            device_now(self.l.device_offset_secs),
            reply_style(&self.l.cfg),
        );
        self.write(&frame).await
    }

    /// A frame that could not be read: counted, logged, answered with an error flag when it
    /// is real-time or reissue data whose header could be read (`reply_on_error`).
    async fn bad_frame(
        &mut self,
        detail: &str,
        reason: &'static str,
        raw: &[u8],
        answer: Option<(String, Edition, u8)>,
    ) -> Flow {
        if let Flow::Close(r) = self.flush_deferred().await {
            return Flow::Close(r);
        }
        let max = self.l.cfg.max_bad_frames;
        let too_many = self.c.bad_frame(LISTENER, reason, detail, raw, max);
        if let Some((vin, edition, command)) = answer {
            if self.l.cfg.reply_on_error && id::is_report(command) {
                let to = Frame::command(edition, command, vin);
                if let Flow::Close(r) = self.reply(&to, gbt32960::ResponseFlag::Error).await {
                    return Flow::Close(r);
                }
            }
        }
        if too_many {
            return Flow::Close(PresenceReason::Error);
        }
        Flow::Continue
    }

    async fn frame(&mut self, frame: Frame) -> Flow {
        // Anything but real-time and reissue data is handled after the frames before it.
        if !id::is_report(frame.command) {
            if let Flow::Close(r) = self.flush_deferred().await {
                return Flow::Close(r);
            }
        }
        let frame = if frame.encryption == gbt32960::frame::Encryption::None {
            frame
        } else {
            match Box::pin(self.plaintext(frame)).await {
                Ok(f) => f,
                Err(flow) => return flow,
            }
        };
        let msg = match Message::decode(&frame) {
            Ok(m) => m,
            Err(e) => {
                let detail = format!("command 0x{:02x}: {e}", frame.command);
                let answer = Some((frame.vin.clone(), frame.edition, frame.command));
                return Box::pin(self.bad_frame(&detail, e.reason(), &frame.data, answer)).await;
            }
        };
        metrics::counter!("vgate_frames_in_total", "protocol" => "gbt32960", "msg_id" => id::label(frame.command)).increment(1);
        // A vehicle's answer to a command in flight (some vehicles answer with 0xFE).
        if self.c.vehicle.as_deref() == Some(frame.vin.as_str())
            && id::is_platform_command(frame.command)
        {
            return Box::pin(self.on_answer(&frame, &msg)).await;
        }
        if frame.response != gbt32960::frame::FLAG_COMMAND {
            // An answer from the vehicle (to a query/set/control): published, never answered.
            return match &self.c.vehicle {
                Some(v) if **v == *frame.vin => {
                    let events = gbt32960::normalize_message_with(
                        &frame,
                        &msg,
                        &self.ctx(),
                        self.l.cfg.normalize_options(),
                    );
                    Box::pin(self.l.shared.publish(events)).await
                }
                _ => Flow::Continue,
            };
        }
        match frame.command {
            // Boxed, as every rare path: a connection's task holds the largest state its loop
            // can await, so the rare paths stay out of every idle connection's task.
            id::VEHICLE_LOGIN => return Box::pin(self.on_login(&frame, &msg)).await,
            id::PLATFORM_LOGIN => return Box::pin(self.on_platform_login(&frame, &msg)).await,
            c if security::before_login(c) => {
                return Box::pin(self.on_activation(&frame, &msg)).await
            }
            _ => {}
        }
        let Some(vehicle) = self.c.vehicle.clone() else {
            return match self.l.cfg.before_login {
                BeforeLogin::Ignore => {
                    debug!(peer = %self.c.peer, command = frame.command, "frame before login ignored");
                    Flow::Continue
                }
                BeforeLogin::Close => Flow::Close(PresenceReason::Error),
            };
        };
        if *frame.vin != *vehicle {
            warn!(peer = %self.c.peer, vehicle = %vehicle, vin = %frame.vin, "frame for another vehicle on this connection ignored");
            return Flow::Continue;
        }
        self.edition = frame.edition;
        if frame.command == id::KEY_EXCHANGE {
            return Box::pin(self.on_key_exchange(&frame, &msg)).await;
        }
        let ctx = self.ctx();
        let mut events =
            gbt32960::normalize_message_with(&frame, &msg, &ctx, self.l.cfg.normalize_options());
        if frame.edition == Edition::V2025 {
            if let Some(verdict) = Box::pin(self.signature_verdict(&frame, &msg)).await {
                if self.refuses(verdict) {
                    warn!(peer = %self.c.peer, vehicle = %vehicle, "report refused: invalid signature");
                    return Box::pin(self.reply(&frame, gbt32960::ResponseFlag::SignatureError))
                        .await;
                }
                security::mark_signature(&mut events, verdict);
            }
        }
        if frame.command == id::REALTIME {
            // Each general alarm flag a live report changed (`gbt32960::alarm`).
            let prev = self.l.shared.alarms.get(&vehicle);
            if let Some((now, alarms)) = gbt32960::alarm::events(&frame, &msg, &ctx, prev) {
                if now != prev {
                    self.l.shared.store_alarms(&vehicle, self.c.id, now);
                }
                events.extend(alarms);
            }
        }
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
            id::HEARTBEAT | id::TIME_CALIBRATION => {
                self.reply(&frame, gbt32960::ResponseFlag::Success).await
            }
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
        let sink = &self.l.shared.sink;
        if let Flow::Close(r) = self.deferred.queue(sink, events, durable, answer).await {
            return Flow::Close(r);
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
                reply_style(&self.l.cfg),
            );
            metrics::counter!("vgate_frames_out_total", "protocol" => "gbt32960", "msg_id" => id::label(reply.command)).increment(1);
            out.extend_from_slice(&reply.to_wire());
        }
        self.c.write(&out).await
    }

    async fn refuse(&mut self, frame: &Frame, reason: &str) -> Flow {
        let ctx = self.ctx();
        let vehicle = Some((frame.vin.as_str(), frame.edition.protocol(), None));
        self.c
            .refused(&self.l.shared, LISTENER, vehicle, &ctx, reason)
            .await
    }

    async fn on_login(&mut self, frame: &Frame, msg: &Message) -> Flow {
        if let Err(e) = codecs::vehicle_id::validate(&frame.vin) {
            warn!(peer = %self.c.peer, error = %e, "login refused: invalid VIN");
            let _ = self.reply(frame, gbt32960::ResponseFlag::Error).await;
            return self.refuse(frame, "invalid_vehicle_id").await;
        }
        if !self.c.certificate_allows(&frame.vin) {
            let _ = self.reply(frame, unknown_vin(frame.edition)).await;
            return self.refuse(frame, "certificate_mismatch").await;
        }
        let iccid = match msg {
            Message::VehicleLogin(l) => Some(l.iccid.clone()),
            _ => None,
        };
        match self
            .l
            .auth
            .login(&frame.vin, iccid.as_deref(), &self.c.peer.to_string())
            .await
        {
            Decision::Deny { reason } => {
                let _ = self.reply(frame, unknown_vin(frame.edition)).await;
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
        let protocol = frame.edition.protocol();
        let vehicle: Arc<str> = Arc::from(frame.vin.as_str());
        let claimed = self.c.claim(&self.l.shared, &vehicle, protocol);
        // The first report after login raises what is set.
        self.l.shared.alarms.remove(&vehicle);
        if let Flow::Close(r) = self.reply(frame, gbt32960::ResponseFlag::Success).await {
            return Flow::Close(r);
        }
        metrics::counter!("vgate_logins_total", "protocol" => "gbt32960", "listener" => self.l.name).increment(1);
        let ctx = self.ctx();
        let mut events =
            gbt32960::normalize_message_with(frame, msg, &ctx, self.l.cfg.normalize_options());
        if let Some(lc) = claimed.takeover {
            let data = Data::Lifecycle(lc);
            events.push(Event::new(
                &ctx,
                vehicle.clone(),
                protocol,
                None,
                None,
                data,
            ));
        }
        if let Flow::Close(r) = self.l.shared.publish(events).await {
            return Flow::Close(r);
        }
        if !claimed.already_mine {
            self.c.online(&self.l.shared, &ctx, vehicle, protocol).await;
        }
        self.l.shared.commands.seen(&frame.vin, protocol).await;
        self.deliver_commands().await
    }

    /// Sends queued commands while the in-flight window has room. One command per command
    /// byte at a time: the vehicle's answer names only the command.
    async fn deliver_commands(&mut self) -> Flow {
        let Some(vehicle) = self.c.vehicle.clone() else {
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
        self.l.shared.commands.sent(&q, frame.edition.protocol());
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
            let events = gbt32960::normalize_message_with(
                frame,
                msg,
                &self.ctx(),
                self.l.cfg.normalize_options(),
            );
            return self.l.shared.publish(events).await;
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
        self.deliver_commands().await
    }

    /// Sends again what was not answered in time; `failed` after the configured retries.
    async fn retry_commands(&mut self) -> Flow {
        if self.outbox.is_empty() {
            return Flow::Continue;
        }
        let Some(vehicle) = self.c.vehicle.clone() else {
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
        self.deliver_commands().await
    }
}
