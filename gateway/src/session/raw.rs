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

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use codecs::event::{Lifecycle, LifecycleKind, PresenceReason};
use codecs::raw::{Acker, FrameRole, Identifier, RawCodec};
use codecs::{Data, Event, EventContext, Protocol as Protocol_};
use tokio::io::AsyncWrite;
use tracing::{debug, warn};

use super::{Conn, Flow, Protocol};
use crate::auth::Decision;
use crate::commands::{command_of, CmdStatus};
use crate::config::RawListenerConfig;

/// The sessions of one raw listener share it (events carry Beijing time offsets).
pub type Listener = super::Listener<RawListenerConfig>;

/// One raw connection's state.
pub struct Session<W> {
    l: Arc<Listener>,
    c: Conn<W>,
    identifier: Identifier,
    /// Encodes acks and downlink commands in the listener's framing.
    encoder: RawCodec,
    acker: Acker,
}

impl<W: AsyncWrite + Unpin + Send + 'static> Protocol<W> for Session<W> {
    type Config = RawListenerConfig;
    type Codec = RawCodec;
    const LABEL: &'static str = "raw";

    fn open(l: &Arc<Listener>, c: Conn<W>) -> Option<(Self, RawCodec)> {
        let (Ok(codec), Ok(encoder), Ok(acker)) = (
            RawCodec::new(&l.cfg.framing),
            RawCodec::new(&l.cfg.framing),
            Acker::new(&l.cfg.ack),
        ) else {
            // Validated at start-up; unreachable in practice.
            warn!(listener = l.name, "raw listener configuration invalid");
            return None;
        };
        let s = Session {
            l: l.clone(),
            identifier: Identifier::new(&l.cfg.identity, c.peer),
            c,
            encoder,
            acker,
        };
        Some((s, codec))
    }

    fn conn(&mut self) -> &mut Conn<W> {
        &mut self.c
    }

    fn protocol(&self) -> Protocol_ {
        Protocol_::Raw
    }

    /// `peer` identity: the vehicle is known before its first frame.
    async fn on_open(&mut self) -> Flow {
        match self.identifier.vehicle_id().map(str::to_owned) {
            Some(vid) => self.identified(&vid).await,
            None => Flow::Continue,
        }
    }

    async fn on_frame(&mut self, frame: bytes::Bytes) -> Flow {
        Session::on_frame(self, &frame).await
    }

    async fn on_bad_frame(&mut self, bad: codecs::raw::RawFrameError) -> Flow {
        self.bad(bad.reason(), &bad.to_string(), &[])
    }

    /// A stream that cannot resynchronise (length_prefixed) or a read error: counted and
    /// logged as a bad frame, and the connection closed.
    fn on_read_error(&mut self, e: &codecs::raw::CodecError) -> PresenceReason {
        let reason = match e {
            codecs::raw::CodecError::Io(_) => "io",
            other => other.reason(),
        };
        metrics::counter!("vgate_decode_errors_total", "protocol" => "raw", "reason" => reason)
            .increment(1);
        let c = &mut self.c;
        c.bad_log.log(
            "raw",
            c.peer,
            c.vehicle.as_deref(),
            reason,
            &e.to_string(),
            &[],
        );
        PresenceReason::Error
    }

    fn deliver(&mut self) -> impl Future<Output = Flow> + Send {
        self.deliver_commands()
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Session<W> {
    fn ctx(&self) -> EventContext {
        self.l.shared.ctx(self.l.device_offset_secs)
    }

    fn bad(&mut self, reason: &'static str, detail: &str, raw: &[u8]) -> Flow {
        if self
            .c
            .bad_frame("raw", reason, detail, raw, self.l.cfg.max_bad_frames)
        {
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
                let flow = self.bad(reason, &e.to_string(), frame);
                if self.c.vehicle.is_none()
                    && matches!(self.l.cfg.identity, codecs::raw::Identity::FirstFrame(_))
                {
                    // A login that names no valid vehicle: refused.
                    return Box::pin(self.refuse(None, reason)).await;
                }
                return flow;
            }
        };
        if matches!(role, FrameRole::Login | FrameRole::Identified) || self.c.vehicle.is_none() {
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
        let Some(vehicle) = self.c.vehicle.clone() else {
            return Flow::Continue;
        };
        match codecs::raw::payload::event(&self.ctx(), vehicle, self.l.cfg.payload, frame) {
            Ok(ev) => {
                if let Flow::Close(r) = self.l.shared.publish(vec![ev]).await {
                    return Flow::Close(r);
                }
                self.ack(frame).await
            }
            Err(e) => self.bad(e.reason(), &e.to_string(), frame),
        }
    }

    async fn ack(&mut self, frame: &[u8]) -> Flow {
        let mut out = BytesMut::new();
        if let Err(e) = self.acker.write(frame, &mut self.encoder, &mut out) {
            debug!(peer = %self.c.peer, error = %e, "ack not framed");
            return Flow::Continue;
        }
        self.c.write(&out).await
    }

    async fn refuse(&mut self, vehicle: Option<&str>, reason: &str) -> Flow {
        let ctx = self.ctx();
        let v = vehicle.map(|v| (v, Protocol_::Raw, None));
        self.c.refused(&self.l.shared, "raw", v, &ctx, reason).await
    }

    /// The connection named its vehicle: authorize, claim, announce, deliver queued commands.
    async fn identified(&mut self, vid: &str) -> Flow {
        if self.c.vehicle.as_deref() == Some(vid) {
            return Flow::Continue;
        }
        if !self.c.certificate_allows(vid) {
            return self.refuse(Some(vid), "certificate_mismatch").await;
        }
        match self.l.auth.login(vid, None, &self.c.peer.to_string()).await {
            Decision::Deny { reason } => return self.refuse(Some(vid), reason.as_str()).await,
            Decision::Allow { .. } => {}
        }
        let vehicle: Arc<str> = Arc::from(vid);
        let claimed = self.c.claim(&self.l.shared, &vehicle, Protocol_::Raw);
        metrics::counter!("vgate_logins_total", "protocol" => "raw", "listener" => self.l.name)
            .increment(1);
        let ctx = self.ctx();
        let login = Lifecycle::new(LifecycleKind::Login)
            .with("peer", self.c.peer.to_string())
            .with("listener", self.l.name);
        let event = |lc| {
            Event::new(
                &ctx,
                vehicle.clone(),
                Protocol_::Raw,
                None,
                None,
                Data::Lifecycle(lc),
            )
        };
        if let Flow::Close(r) = self.l.shared.publish(vec![event(login)]).await {
            return Flow::Close(r);
        }
        match claimed.takeover {
            Some(lc) => {
                let _ = self.l.shared.publish(vec![event(lc)]).await;
            }
            None => {
                self.c
                    .online(&self.l.shared, &ctx, vehicle.clone(), Protocol_::Raw)
                    .await
            }
        }
        self.l.shared.commands.seen(&vehicle, Protocol_::Raw).await;
        self.deliver_commands().await
    }

    /// Writes queued `raw` commands in the listener's framing; each is acked once written.
    async fn deliver_commands(&mut self) -> Flow {
        let Some(vehicle) = self.c.vehicle.clone() else {
            return Flow::Continue;
        };
        let commands = self.l.shared.commands.clone();
        let window = commands.cfg.window;
        for q in commands.pending(&vehicle, window).await {
            let mut out = BytesMut::new();
            let framed = command_of(&q)
                .and_then(|c| codecs::raw::command_body(&c))
                .map_err(|e| e.to_string())
                .and_then(|body| {
                    self.encoder
                        .encode_body(&body, &mut out)
                        .map_err(|e| format!("params: {e}"))
                });
            if let Err(e) = framed {
                super::reject(&commands, &q, Protocol_::Raw, e).await;
                continue;
            }
            if let Flow::Close(r) = self.c.write(&out).await {
                return Flow::Close(r);
            }
            metrics::counter!("vgate_commands_sent_total", "protocol" => "raw").increment(1);
            commands.sent(&q, Protocol_::Raw);
            commands
                .finish(
                    &q,
                    Protocol_::Raw,
                    CmdStatus::Acked,
                    Some("written; raw framings have no acknowledgement".into()),
                    None,
                )
                .await;
        }
        Flow::Continue
    }
}
