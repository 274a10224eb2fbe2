//! The JT/T 808 session: register -> authenticate -> report, as JT/T 808-2019 §8 orders it.
//!
//! ```text
//! terminal                         vgate
//!   0x0100 register  ───────────▶  auth.register  ─▶ 0x8100 (result, auth code)
//!   0x0102 authenticate ────────▶  auth.authenticate ─▶ 0x8001; registry claim; presence online
//!   0x0200 / 0x0704 / ... ──────▶  normalize ─▶ MQTT; 0x8001 (result 0, 3 if unsupported)
//!   0x0004 query time ──────────▶  0x8004 (UTC)
//!   packages of a long message ─▶  reassembled; 0x8003 for the missing ones
//!   0x0003 logout ──────────────▶  0x8001; presence offline (logout); close
//! ```
//!
//! Replies use the terminal's own edition and phone field (2019's 10-byte BCD phone and
//! protocol-version byte included). A bad frame is counted, logged with its hex, answered
//! with 0x8001 result 2 when its header could be read, and the connection is closed only
//! after `max_bad_frames` of them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codecs::event::{Lifecycle, PresenceReason};
use codecs::{Data, Event, EventContext};
use jt808::msg::response::result;
use jt808::msg::{self, Answers, Message};
use jt808::{Frame, Header, Version};
use tokio::io::AsyncWrite;
use tracing::{debug, warn};

use super::batch::Batch;
use super::{Conn, Flow, Protocol};
use crate::auth::{Decision, RegisterRequest};
use crate::commands::outbox::{InFlight, Outbox};
use crate::commands::{command_of, CmdStatus};
use crate::config::{BeforeLogin, ChecksumMode, Jt808Config};

mod upgrade;

/// Listener name in metrics and logs.
pub const LISTENER: &str = "jt808";

/// The sessions of one listener share it.
pub type Listener = super::Listener<Jt808Config>;

/// One JT/T 808 connection's state.
pub struct Session<W> {
    l: Arc<Listener>,
    c: Conn<W>,
    /// The edition the terminal speaks (refined by 0x0100's body length for 2011).
    version: Option<Version>,
    serial: u16,
    /// Made at the first package of a subpackaged message (boxed: most terminals never
    /// send one, and inline it would be ~150 bytes in every connection's task).
    reassembler: Option<Box<jt808::subpackage::Reassembler>>,
    /// Commands sent and not yet answered.
    outbox: Outbox,
    /// Commands the vehicle answered in the current read batch: their final statuses are
    /// stored together (one request to the group commit, which then reads the queue for
    /// the commands to send next) at the end of the batch.
    answered: Vec<(crate::queue::Settle, crate::commands::Outcome)>,
    /// The authenticated terminal's header (phone, edition), to address commands.
    addr: Option<Header>,
    /// Frames whose events are queued and whose 0x8001 waits for them to be durable.
    deferred: Batch<DeferredAck>,
    /// Subpackaged multimedia uploads (0x0801) in progress, their packages on disk; made at
    /// the first package.
    uploads: Option<Box<crate::media::Uploads>>,
    /// The `upgrade` command being pushed (`upgrade`); dropped with the connection, the
    /// command stays queued.
    upgrade: Option<Box<upgrade::Active>>,
}

/// Frames read back to back (a terminal that pipelines its reports, or a burst after a
/// reconnect) are answered together (`session::batch`): their events are queued as each frame
/// is read, then the session waits once for all of them to be durable and writes all their
/// 0x8001s in one write. Answers stay in frame order: anything else the session sends first
/// flushes these.
struct DeferredAck {
    header: Header,
    unsupported: bool,
    read_at: Instant,
}

/// Where the bytes of an uploaded file are: in the frame, or in a parts file on disk.
enum MediaSource {
    Bytes(Vec<u8>),
    Parts(crate::media::Parts),
}

impl From<&Jt808Config> for jt808::CodecConfig {
    fn from(cfg: &Jt808Config) -> Self {
        jt808::CodecConfig {
            max_frame_len: cfg.max_frame_len,
            checksum: match cfg.checksum {
                ChecksumMode::Strict => jt808::ChecksumPolicy::Strict,
                ChecksumMode::Lenient => jt808::ChecksumPolicy::Lenient,
            },
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Protocol<W> for Session<W> {
    type Config = Jt808Config;
    type Codec = jt808::Codec;
    const LABEL: &'static str = LISTENER;

    fn open(l: &Arc<Listener>, c: Conn<W>) -> Option<(Self, jt808::Codec)> {
        let s = Session {
            l: l.clone(),
            c,
            version: None,
            serial: 0,
            reassembler: None,
            outbox: super::outbox(&l.shared),
            answered: Vec::new(),
            addr: None,
            deferred: Batch::default(),
            uploads: None,
            upgrade: None,
        };
        Some((s, jt808::Codec::new((&l.cfg).into())))
    }

    fn conn(&mut self) -> &mut Conn<W> {
        &mut self.c
    }

    /// The edition it settled on (2011 only once a 2011 registration said so; a 2011 header
    /// reads as 2013).
    fn protocol(&self) -> codecs::Protocol {
        self.version.unwrap_or_default().protocol()
    }

    fn on_frame(&mut self, frame: Frame) -> impl Future<Output = Flow> + Send {
        self.frame(frame)
    }

    async fn on_bad_frame(&mut self, bad: jt808::BadFrame) -> Flow {
        self.bad_frame(&bad.error.to_string(), bad.error.reason(), &bad.raw, None)
            .await
    }

    /// The end of a read batch: the deferred answers, then the final statuses of the
    /// commands answered in the batch, stored with one request, and the commands that take
    /// their place in the window sent (unless the connection is closing).
    async fn end_batch(&mut self) -> Flow {
        let flow = self.flush_deferred().await;
        if self.answered.is_empty() {
            return flow;
        }
        let closing = matches!(flow, Flow::Close(_));
        let settled = Box::pin(self.settle_answered(!closing)).await;
        match (flow, settled) {
            (Flow::Close(r), _) | (_, Flow::Close(r)) => Flow::Close(r),
            _ => Flow::Continue,
        }
    }

    fn outbox(&self) -> Option<&Outbox> {
        Some(&self.outbox)
    }

    fn wants_housekeeping(&self) -> bool {
        self.reassembler.as_ref().is_some_and(|r| !r.is_empty())
            || self.uploads.as_ref().is_some_and(|u| !u.is_empty())
            || self.upgrade.is_some()
    }

    /// Once a second: packages to ask again for, commands to send again.
    async fn housekeeping(&mut self) -> Flow {
        if let Flow::Close(r) = self.poll_reassembly().await {
            return Flow::Close(r);
        }
        if let Flow::Close(r) = self.poll_uploads().await {
            return Flow::Close(r);
        }
        if let Flow::Close(r) = self.upgrade_housekeeping().await {
            return Flow::Close(r);
        }
        self.retry_commands().await
    }

    fn deliver(&mut self) -> impl Future<Output = Flow> + Send {
        self.deliver_commands()
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Session<W> {
    /// Waits for the deferred frames' events to be durable, then answers them all (0x8001
    /// result 0, 3 for what vgate does not support, 1 for a frame whose events the broker
    /// refused: the terminal keeps such data and sends it again) in one write.
    async fn flush_deferred(&mut self) -> Flow {
        if self.deferred.is_empty() {
            return Flow::Continue;
        }
        let Ok(settled) = self.deferred.settle().await else {
            return Flow::Close(PresenceReason::Shutdown);
        };
        let mut out = Vec::with_capacity(settled.len() * 32);
        for (a, durable) in settled {
            metrics::histogram!("vgate_frame_to_publish_seconds")
                .record(a.read_at.elapsed().as_secs_f64());
            let result = if !durable {
                result::FAILURE
            } else if a.unsupported {
                result::UNSUPPORTED
            } else {
                result::OK
            };
            let msg = Message::PlatformResponse(msg::GeneralResponse {
                reply_serial: a.header.serial,
                reply_id: a.header.msg_id,
                result,
            });
            self.encode_into(&a.header, &msg, &mut out);
        }
        self.c.write(&out).await
    }

    /// Stores the final statuses of the commands answered (publishing their results), then
    /// sends what the window has room for, read from the queue in the same hop.
    async fn settle_answered(&mut self, deliver: bool) -> Flow {
        let answered = std::mem::take(&mut self.answered);
        let room = self.outbox.room();
        let limit = match (&self.c.vehicle, &self.addr) {
            (Some(_), Some(_)) if deliver && room > 0 => room + self.outbox.len(),
            _ => 0,
        };
        let vehicle = self.c.vehicle.clone().unwrap_or_else(|| Arc::from(""));
        let commands = self.l.shared.commands.clone();
        let pending = commands
            .settle
            .record_all_then_read(answered, &vehicle, limit)
            .await;
        if limit == 0 {
            return Flow::Continue;
        }
        self.send_pending(pending).await
    }

    fn ctx(&self) -> EventContext {
        self.l.shared.ctx(self.l.device_offset_secs)
    }

    fn protocol(&self) -> codecs::Protocol {
        <Self as Protocol<W>>::protocol(self)
    }

    /// The events of one message, labelled with the session's edition.
    fn events(&self, header: &Header, msg: &Message) -> Vec<Event> {
        let edition = self.version.unwrap_or(header.version);
        jt808::normalize_as(edition, header, msg, &self.ctx())
    }

    /// The events of a message from the authenticated `vehicle`: [`Self::events`], then
    /// the `alarm` events of the bits a live report changed (`jt808::alarm`), whose new
    /// state goes to the alarm store.
    fn report_events(&self, vehicle: &str, header: &Header, msg: &Message) -> Vec<Event> {
        let edition = self.version.unwrap_or(header.version);
        let ctx = self.ctx();
        let mut events = jt808::normalize_as(edition, header, msg, &ctx);
        if matches!(
            msg,
            Message::Location(_)
                | Message::LocationAnswer { .. }
                | Message::VehicleControlAnswer { .. }
                | Message::LocationBatch { .. }
        ) {
            let prev = self.l.shared.alarms.get(vehicle);
            if let Some((now, alarms)) = jt808::alarm::events(edition, header, msg, &ctx, prev) {
                if now != prev {
                    self.l.shared.store_alarms(vehicle, self.c.id, now);
                }
                events.extend(alarms);
            }
        }
        events
    }

    fn lifecycle(&self, header: &Header, vehicle: &str, lc: Lifecycle) -> Event {
        Event::new(
            &self.ctx(),
            Arc::from(vehicle),
            self.protocol(),
            None,
            Some(u32::from(header.serial)),
            Data::Lifecycle(lc),
        )
    }

    /// Sends a platform message to the terminal in its own edition and phone width (after
    /// the answers of the frames before it).
    async fn send(&mut self, to: &Header, msg: &Message) -> Flow {
        if let Flow::Close(r) = self.flush_deferred().await {
            return Flow::Close(r);
        }
        let mut out = Vec::new();
        self.encode_into(to, msg, &mut out);
        self.c.write(&out).await
    }

    /// Appends `msg`'s wire frames (subpackaged if long) to `out`, using the next serials.
    fn encode_into(&mut self, to: &Header, msg: &Message, out: &mut Vec<u8>) {
        let version = self.version.unwrap_or(to.version);
        let body = match msg.encode_body(version) {
            Ok(b) => b,
            Err(e) => {
                warn!(peer = %self.c.peer, error = %e, "cannot encode reply");
                return;
            }
        };
        let header = to.reply(msg.msg_id(), self.serial);
        let frames = jt808::subpackage::split(&header, &body, jt808::subpackage::DEFAULT_SPLIT);
        self.serial = self.serial.wrapping_add(frames.len().max(1) as u16);
        for f in frames {
            f.write_wire(out);
            metrics::counter!("vgate_frames_out_total", "protocol" => "jt808", "msg_id" => msg::id::label(header.msg_id)).increment(1);
        }
    }

    async fn general_response(&mut self, to: &Header, result: u8) -> Flow {
        let msg = Message::PlatformResponse(msg::GeneralResponse {
            reply_serial: to.serial,
            reply_id: to.msg_id,
            result,
        });
        self.send(to, &msg).await
    }

    /// A frame that could not be read: counted, logged, answered 0x8001 result 2 when its
    /// header could be read.
    async fn bad_frame(
        &mut self,
        detail: &str,
        reason: &'static str,
        raw: &[u8],
        header: Option<&Header>,
    ) -> Flow {
        let max = self.l.cfg.max_bad_frames;
        let too_many = self.c.bad_frame(LISTENER, reason, detail, raw, max);
        if let Some(h) = header {
            if let Flow::Close(r) = self.general_response(h, result::MESSAGE_ERROR).await {
                return Flow::Close(r);
            }
        }
        if too_many {
            return Flow::Close(PresenceReason::Error);
        }
        Flow::Continue
    }

    async fn poll_reassembly(&mut self) -> Flow {
        let events = match self.reassembler.as_mut() {
            Some(r) => r.poll(Instant::now()),
            None => Vec::new(),
        };
        for ev in events {
            match ev {
                jt808::subpackage::ReassemblyEvent::Missing {
                    phone,
                    msg_id,
                    version,
                    first_serial,
                    missing,
                } => {
                    debug!(peer = %self.c.peer, msg_id, ?missing, "asking for missing packages (0x8003)");
                    let to = Header::to_terminal(msg_id, version, phone, first_serial);
                    let req = Message::ResendRequest(msg::ResendRequest {
                        first_serial,
                        ids: missing,
                    });
                    if let Flow::Close(r) = self.send(&to, &req).await {
                        return Flow::Close(r);
                    }
                }
                jt808::subpackage::ReassemblyEvent::Dropped { msg_id, .. } => {
                    metrics::counter!("vgate_decode_errors_total", "protocol" => "jt808", "reason" => "subpackage_timeout").increment(1);
                    warn!(peer = %self.c.peer, msg_id, "incomplete subpackaged message dropped");
                }
            }
        }
        Flow::Continue
    }

    /// A frame with an encrypted body (vgate holds no key): counted as bad, answered 3.
    async fn on_encrypted(&mut self, frame: Frame) -> Flow {
        let h = frame.header.clone();
        let detail = format!("encrypted body ({:?}) without a key", h.encryption);
        let _ = self
            .bad_frame(&detail, "encrypted", &frame.body, None)
            .await;
        self.general_response(&h, result::UNSUPPORTED).await
    }

    /// One frame. The common case (a report or heartbeat of an authenticated terminal) runs
    /// inline; everything rarer (login, refusals, bad frames, command answers, logout) runs
    /// in a boxed future. A connection's task holds the largest state its loop can await, so
    /// keeping the rare paths out of it keeps every idle connection's task small.
    async fn frame(&mut self, frame: Frame) -> Flow {
        if frame.header.encryption != jt808::Encryption::None {
            return Box::pin(self.on_encrypted(frame)).await;
        }
        if frame.header.package.is_some() && self.c.vehicle.is_none() {
            // No reassembly before authentication (contract §5: a connection that has not
            // logged in holds at most 16 KiB): a package is answered like any frame before it.
            return Box::pin(self.before_authentication(&frame.header)).await;
        }
        let frame = if frame.header.package.is_some() {
            // A multimedia upload of the authenticated terminal: its packages go to disk.
            if frame.header.msg_id == msg::id::MEDIA_UPLOAD
                && self.c.vehicle.as_deref() == Some(frame.header.phone.as_str())
            {
                return Box::pin(self.on_media_package(frame)).await;
            }
            let cfg = &self.l.cfg;
            let reassembler = self.reassembler.get_or_insert_with(|| {
                Box::new(jt808::subpackage::Reassembler::new(
                    jt808::subpackage::ReassemblyConfig {
                        quiet: Duration::from_secs(cfg.subpackage_quiet_s),
                        timeout: Duration::from_secs(cfg.subpackage_timeout_s),
                        max_bytes_per_phone: cfg.subpackage_max_bytes,
                        // One connection is one terminal: a few messages in reassembly at
                        // once is plenty.
                        max_groups: 8,
                        ..Default::default()
                    },
                ))
            });
            match reassembler.push(frame, Instant::now()) {
                Ok(Some(whole)) => whole.frame,
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    let detail = e.to_string();
                    return Box::pin(self.bad_frame(&detail, "subpackage", &[], None)).await;
                }
            }
        } else {
            frame
        };
        let header = frame.header.clone();
        let msg = match Message::decode(&header, &frame.body) {
            Ok(m) => m,
            Err(e) => {
                let detail = format!("message 0x{:04x}: {e}", header.msg_id);
                return Box::pin(self.bad_frame(&detail, e.reason(), &frame.body, Some(&header)))
                    .await;
            }
        };
        let label = if matches!(msg, Message::Unknown { .. }) {
            "unknown"
        } else {
            msg::id::label(header.msg_id)
        };
        metrics::counter!("vgate_frames_in_total", "protocol" => "jt808", "msg_id" => label)
            .increment(1);
        match &msg {
            // 2011 and 2013 share a header; only the registration body's length tells them apart.
            Message::Register(r) => self.version = Some(r.layout),
            _ if self.version.is_none() => self.version = Some(header.version),
            _ => {}
        }
        match &msg {
            Message::Register(r) => return Box::pin(self.on_register(&header, r)).await,
            Message::Authenticate(a) => return Box::pin(self.on_authenticate(&header, a)).await,
            _ => {}
        }
        let Some(vehicle) = self.c.vehicle.clone() else {
            return Box::pin(self.before_authentication(&header)).await;
        };
        if *header.phone != *vehicle {
            warn!(peer = %self.c.peer, vehicle = %vehicle, phone = %header.phone, "frame for another terminal on this connection ignored");
            return Box::pin(self.general_response(&header, result::FAILURE)).await;
        }
        if let Message::MediaUpload(upload) = msg {
            return Box::pin(self.on_media_upload(header, upload)).await;
        }
        // Set by the read loop as the frame came in: no second clock read per frame.
        let started = self.c.last_rx;
        let events = self.report_events(&vehicle, &header, &msg);
        let answered_alone = matches!(msg, Message::Logout | Message::TimeQuery)
            || msg::ack_policy(header.msg_id) != msg::Ack::General;
        if !answered_alone {
            // The common case (reports, heartbeats...): queue the events now, answer with
            // the rest of the batch once they are durable (`flush_deferred`).
            let durable = self.l.cfg.ack_when == crate::config::AckWhen::Durable;
            // A frame may answer a command in flight (0x0201, 0x0104...): checked after its
            // events are queued, with the header's copy only then.
            let answering = (!self.outbox.is_empty() || self.upgrade_listens(header.msg_id))
                .then(|| header.clone());
            let ack = DeferredAck {
                header,
                unsupported: matches!(msg, Message::Unknown { .. }),
                read_at: started,
            };
            let sink = &self.l.shared.sink;
            if let Flow::Close(r) = self.deferred.queue(sink, events, durable, ack).await {
                return Flow::Close(r);
            }
            if let Some(header) = answering {
                if let Flow::Close(r) = Box::pin(self.on_answer(&header, &msg)).await {
                    return Flow::Close(r);
                }
            }
            if self.deferred.is_full() {
                return Box::pin(self.flush_deferred()).await;
            }
            return Flow::Continue;
        }
        Box::pin(self.answer_alone(header, msg, events, started)).await
    }

    /// A frame answered on its own, after the frames before it: logout, time query, and the
    /// uplinks that are themselves answers (0x0001, 0x0104...: no reply of ours).
    async fn answer_alone(
        &mut self,
        header: Header,
        msg: Message,
        events: Vec<Event>,
        started: Instant,
    ) -> Flow {
        let durable = self.l.cfg.ack_when == crate::config::AckWhen::Durable;
        if let Flow::Close(r) = self.flush_deferred().await {
            return Flow::Close(r);
        }
        let accepted = match self.l.shared.sink.publish_all(events, durable).await {
            Ok(a) => a,
            Err(_) => return Flow::Close(PresenceReason::Shutdown),
        };
        metrics::histogram!("vgate_frame_to_publish_seconds")
            .record(started.elapsed().as_secs_f64());
        if let Flow::Close(r) = self.on_answer(&header, &msg).await {
            return Flow::Close(r);
        }
        match &msg {
            Message::Logout => {
                // Its `logout` lifecycle event is one of `events`, published above: the
                // presence goes offline (reason logout) when the session closes.
                let _ = self.general_response(&header, result::OK).await;
                return Flow::Close(PresenceReason::Logout);
            }
            Message::TimeQuery => {
                let reply = Message::ServerTime(msg::ServerTime::at(chrono::Utc::now()));
                return self.send(&header, &reply).await;
            }
            _ => {}
        }
        match msg::ack_policy(header.msg_id) {
            msg::Ack::General => {
                let result = if !accepted {
                    // Not durable: the terminal keeps the data and sends it again.
                    result::FAILURE
                } else if matches!(msg, Message::Unknown { .. }) {
                    result::UNSUPPORTED
                } else {
                    result::OK
                };
                self.general_response(&header, result).await
            }
            _ => Flow::Continue,
        }
    }

    /// A multimedia upload (0x0801) that came in one frame.
    async fn on_media_upload(&mut self, header: Header, mut upload: msg::MediaUpload) -> Flow {
        let data = std::mem::take(&mut upload.data);
        self.store_media(header, upload, MediaSource::Bytes(data))
            .await
    }

    /// One package of a subpackaged upload: written to disk; the missing ones asked for
    /// once the last is in; the whole file stored.
    async fn on_media_package(&mut self, frame: Frame) -> Flow {
        let quiet = Duration::from_secs(self.l.cfg.subpackage_quiet_s);
        let timeout = Duration::from_secs(self.l.cfg.subpackage_timeout_s);
        let scratch = self.l.shared.media.scratch();
        let limits = self.l.shared.media.limits();
        let uploads = self.uploads.get_or_insert_with(|| {
            Box::new(crate::media::Uploads::new(scratch, quiet, timeout, limits))
        });
        match uploads.push(frame, Instant::now()) {
            Ok(crate::media::Pushed::Pending) => Flow::Continue,
            Ok(crate::media::Pushed::Missing(m)) => self.ask_for_packages(m).await,
            Ok(crate::media::Pushed::Complete(c)) => {
                // Counted once whole, as the reassembler's messages are.
                metrics::counter!("vgate_frames_in_total", "protocol" => "jt808", "msg_id" => msg::id::label(msg::id::MEDIA_UPLOAD)).increment(1);
                self.store_media(c.header, c.upload, MediaSource::Parts(c.file))
                    .await
            }
            Err(e) => {
                let detail = e.to_string();
                self.bad_frame(&detail, e.reason(), &[], None).await
            }
        }
    }

    /// Asks for an upload's missing packages: 0x8800 with the list when its media id is
    /// known (the 0x0801 answer), else 0x8003 (resend subpackages); at most 255 at a time.
    async fn ask_for_packages(&mut self, mut m: crate::media::Missing) -> Flow {
        // Both lists have a BYTE count (2013): the rest is asked for next time.
        m.ids.truncate(255);
        debug!(peer = %self.c.peer, media_id = ?m.media_id, missing = ?m.ids, "asking for missing media packages");
        let ask = match m.media_id {
            Some(media_id) => Message::MediaUploadAnswer(msg::MediaUploadAnswer {
                media_id,
                retransmit_ids: m.ids,
            }),
            None => Message::ResendRequest(msg::ResendRequest {
                first_serial: m.first_serial,
                ids: m.ids,
            }),
        };
        let to = Header {
            serial: m.first_serial,
            ..m.header
        };
        self.send(&to, &ask).await
    }

    /// Once a second with uploads in progress: ask again for what is missing; count the
    /// uploads dropped for silence.
    async fn poll_uploads(&mut self) -> Flow {
        let Some(uploads) = self.uploads.as_mut() else {
            return Flow::Continue;
        };
        let (asks, dropped) = uploads.poll(Instant::now());
        if dropped > 0 {
            metrics::counter!("vgate_decode_errors_total", "protocol" => "jt808", "reason" => "media_timeout").increment(dropped as u64);
            warn!(peer = %self.c.peer, dropped, "incomplete media upload dropped");
        }
        for m in asks {
            if let Flow::Close(r) = self.ask_for_packages(m).await {
                return Flow::Close(r);
            }
        }
        Flow::Continue
    }

    /// A whole multimedia upload (0x0801): the file goes to the media store, its `media`
    /// event is published, and the terminal gets 0x8800 with no package to send again. A
    /// file the store cannot take, or whose event the broker refuses, is answered 0x8001
    /// result 1 (failure), so the terminal keeps it and uploads it again.
    async fn store_media(
        &mut self,
        header: Header,
        upload: msg::MediaUpload,
        source: MediaSource,
    ) -> Flow {
        if let Flow::Close(r) = self.flush_deferred().await {
            return Flow::Close(r);
        }
        let store = self.l.shared.media.clone();
        let vehicle = header.phone.clone();
        let name = jt808::media::file_name(&header, &upload);
        let stored = tokio::task::spawn_blocking(move || match source {
            MediaSource::Bytes(data) => store.put(&vehicle, &name, &data),
            MediaSource::Parts(mut parts) => store.put_reader(&vehicle, &name, &mut parts),
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                metrics::counter!("vgate_media_store_errors_total", "protocol" => LISTENER)
                    .increment(1);
                warn!(peer = %self.c.peer, vehicle = %header.phone, media_id = upload.media_id, error = %e, "media file not stored");
                return self.general_response(&header, result::FAILURE).await;
            }
        };
        metrics::counter!("vgate_media_stored_total", "protocol" => LISTENER).increment(1);
        metrics::counter!("vgate_media_stored_bytes_total", "protocol" => LISTENER)
            .increment(stored.size);
        let edition = self.version.unwrap_or(header.version);
        let event = jt808::media::event(edition, &header, &upload, stored, &self.ctx());
        let durable = self.l.cfg.ack_when == crate::config::AckWhen::Durable;
        match self.l.shared.sink.publish_all(vec![event], durable).await {
            Ok(true) => {}
            // Not durable: the terminal keeps the file and uploads it again.
            Ok(false) => return self.general_response(&header, result::FAILURE).await,
            Err(_) => return Flow::Close(PresenceReason::Shutdown),
        }
        let answer = Message::MediaUploadAnswer(msg::MediaUploadAnswer {
            media_id: upload.media_id,
            retransmit_ids: Vec::new(),
        });
        self.send(&header, &answer).await
    }

    /// A frame before authentication: answered 0x8001 failure, or the connection closed
    /// (`before_auth`).
    async fn before_authentication(&mut self, header: &Header) -> Flow {
        match self.l.cfg.before_auth {
            BeforeLogin::Ignore => {
                debug!(peer = %self.c.peer, msg_id = header.msg_id, "frame before authentication ignored");
                self.general_response(header, result::FAILURE).await
            }
            BeforeLogin::Close => Flow::Close(PresenceReason::Error),
        }
    }

    async fn refuse(&mut self, header: &Header, reason: &str) -> Flow {
        let ctx = self.ctx();
        let vehicle = Some((
            header.phone.as_str(),
            self.protocol(),
            Some(u32::from(header.serial)),
        ));
        self.c
            .refused(&self.l.shared, LISTENER, vehicle, &ctx, reason)
            .await
    }

    async fn on_register(&mut self, header: &Header, r: &msg::Register) -> Flow {
        if let Err(e) = codecs::vehicle_id::validate(&header.phone) {
            warn!(peer = %self.c.peer, error = %e, "register refused: invalid vehicle id");
            let no_such_vehicle = msg::register::result::NO_SUCH_VEHICLE;
            return self
                .refuse_register(header, no_such_vehicle, "invalid_vehicle_id")
                .await;
        }
        if !self.c.certificate_allows(&header.phone) {
            let no_such_terminal = msg::register::result::NO_SUCH_TERMINAL;
            return self
                .refuse_register(header, no_such_terminal, "certificate_mismatch")
                .await;
        }
        let req = RegisterRequest {
            phone: header.phone.clone(),
            plate: r.plate.clone(),
            plate_color: r.plate_color,
            manufacturer: r.manufacturer.clone(),
            model: r.model.clone(),
            terminal_id: r.terminal_id.clone(),
            province: r.province,
            city: r.city,
            peer: self.c.peer.to_string(),
        };
        match self.l.auth.register(&req).await {
            Decision::Allow { auth_code } => {
                let reply = Message::RegisterResponse(msg::RegisterResponse {
                    reply_serial: header.serial,
                    result: msg::register::result::OK,
                    token: Some(auth_code.unwrap_or_default()),
                });
                if let Flow::Close(x) = self.send(header, &reply).await {
                    return Flow::Close(x);
                }
                let events = self.events(header, &Message::Register(r.clone()));
                self.l.shared.publish(events).await
            }
            Decision::Deny { reason } => {
                let result = reason.jt808_register_result();
                self.refuse_register(header, result, reason.as_str()).await
            }
        }
    }

    /// Answers a registration 0x8100 with `result` (no code) and refuses the connection.
    async fn refuse_register(&mut self, header: &Header, result: u8, reason: &str) -> Flow {
        let reply = Message::RegisterResponse(msg::RegisterResponse {
            reply_serial: header.serial,
            result,
            token: None,
        });
        let _ = self.send(header, &reply).await;
        self.refuse(header, reason).await
    }

    async fn on_authenticate(&mut self, header: &Header, a: &msg::Authenticate) -> Flow {
        if let Err(e) = codecs::vehicle_id::validate(&header.phone) {
            warn!(peer = %self.c.peer, error = %e, "authentication refused: invalid vehicle id");
            let _ = self.general_response(header, result::FAILURE).await;
            return self.refuse(header, "invalid_vehicle_id").await;
        }
        if !self.c.certificate_allows(&header.phone) {
            let _ = self.general_response(header, result::FAILURE).await;
            return self.refuse(header, "certificate_mismatch").await;
        }
        let decision = self
            .l
            .auth
            .authenticate(
                &header.phone,
                &a.token,
                a.imei.as_deref(),
                &self.c.peer.to_string(),
            )
            .await;
        match decision {
            Decision::Deny { reason } => {
                let _ = self.general_response(header, result::FAILURE).await;
                self.refuse(header, reason.as_str()).await
            }
            Decision::Allow { .. } => {
                let vehicle: Arc<str> = Arc::from(header.phone.as_str());
                let protocol = self.protocol();
                let claimed = self.c.claim(&self.l.shared, &vehicle, protocol);
                // The first report after login raises what is set.
                self.l.shared.alarms.remove(&vehicle);
                if let Flow::Close(r) = self.general_response(header, result::OK).await {
                    return Flow::Close(r);
                }
                metrics::counter!("vgate_logins_total", "protocol" => "jt808", "listener" => self.l.name).increment(1);
                let mut events = self.events(header, &Message::Authenticate(a.clone()));
                if let Some(lc) = claimed.takeover {
                    events.push(self.lifecycle(header, &vehicle, lc));
                }
                if let Flow::Close(r) = self.l.shared.publish(events).await {
                    return Flow::Close(r);
                }
                if !claimed.already_mine {
                    let ctx = self.ctx();
                    let v = vehicle.clone();
                    self.c.online(&self.l.shared, &ctx, v, protocol).await;
                }
                self.addr = Some(header.clone());
                self.l.shared.commands.seen(&vehicle, self.protocol()).await;
                self.deliver_commands().await
            }
        }
    }

    /// Sends queued commands while the in-flight window has room.
    async fn deliver_commands(&mut self) -> Flow {
        let (Some(vehicle), Some(_)) = (self.c.vehicle.clone(), &self.addr) else {
            return Flow::Continue;
        };
        let room = self.outbox.room();
        if room == 0 {
            return Flow::Continue;
        }
        // Through the group commit: one hop to the blocking pool for the reads and records
        // of every session of the moment.
        let commands = self.l.shared.commands.clone();
        let pending = commands
            .settle
            .read(&vehicle, room + self.outbox.len())
            .await;
        self.send_pending(pending).await
    }

    /// Sends the commands of `pending` (the vehicle's queue, best first) that are not in
    /// flight, as many as the window has room for, in one write.
    async fn send_pending(&mut self, pending: Vec<crate::queue::QueuedCommand>) -> Flow {
        let Some(addr) = self.addr.clone() else {
            return Flow::Continue;
        };
        let room = self.outbox.room();
        let version = self.version.unwrap_or(addr.version);
        let commands = self.l.shared.commands.clone();
        let mut ready = Vec::new();
        let fresh: Vec<_> = pending
            .into_iter()
            .filter(|q| !self.outbox.contains(&q.id))
            .take(room)
            .collect();
        for q in fresh {
            if upgrade::is_upgrade(&q) {
                if let Flow::Close(r) = self.offer_upgrade(&addr, q).await {
                    return Flow::Close(r);
                }
                continue;
            }
            match command_of(&q).and_then(|c| jt808::command::build(&c, version)) {
                Ok(m) => ready.push((q, m)),
                Err(e) => {
                    commands
                        .finish(
                            &q,
                            self.protocol(),
                            CmdStatus::Rejected,
                            Some(e.to_string()),
                            None,
                        )
                        .await;
                }
            }
        }
        self.send_commands(&addr, ready, 1).await
    }

    /// Writes `cmds` to the vehicle in one write (after the answers waiting: frames go out
    /// in order), then records each as sent (attempt `attempts`) and puts it in flight.
    async fn send_commands(
        &mut self,
        addr: &Header,
        cmds: Vec<(crate::queue::QueuedCommand, Message)>,
        attempts: u32,
    ) -> Flow {
        if cmds.is_empty() {
            return Flow::Continue;
        }
        if let Flow::Close(r) = self.flush_deferred().await {
            return Flow::Close(r);
        }
        let mut out = Vec::with_capacity(cmds.len() * 64);
        let mut keys = Vec::with_capacity(cmds.len());
        for (_, msg) in &cmds {
            // The serial of the command's (first) frame: how its answer names it.
            let key = (u32::from(msg.msg_id()) << 16) | u32::from(self.serial);
            self.encode_into(addr, msg, &mut out);
            keys.push(key);
        }
        if let Flow::Close(r) = self.c.write(&out).await {
            return Flow::Close(r);
        }
        let protocol = self.protocol();
        let now = Instant::now();
        for ((q, _), key) in cmds.into_iter().zip(keys) {
            metrics::counter!("vgate_commands_sent_total", "protocol" => "jt808").increment(1);
            self.l.shared.commands.sent(&q, protocol);
            self.outbox.push(InFlight {
                cmd: q,
                key,
                sent_at: now,
                attempts,
            });
        }
        Flow::Continue
    }

    /// Matches an uplink against the commands in flight: a 0x0001 by (id, serial), a typed
    /// answer (0x0104, 0x0201, 0x0500...) by the serial it carries, 0x0107 by the kind of
    /// request (`Message::answers`).
    async fn on_answer(&mut self, header: &Header, msg: &Message) -> Flow {
        if self.upgrade_listens(header.msg_id) {
            if let Some(flow) = self.on_upgrade_answer(header, msg).await {
                return flow;
            }
        }
        if self.outbox.is_empty() {
            return Flow::Continue;
        }
        let Some(answers) = msg.answers() else {
            return Flow::Continue;
        };
        let found = match answers {
            Answers::Request { msg_id, serial, .. } => {
                let key = (u32::from(msg_id) << 16) | u32::from(serial);
                self.outbox.take(|k| k == key)
            }
            Answers::Serial(serial) => self.outbox.take(|k| k & 0xFFFF == u32::from(serial)),
            Answers::Kind(id) => self.outbox.take(|k| k >> 16 == u32::from(id)),
        };
        let Some(f) = found else {
            return Flow::Continue;
        };
        let (status, reason, response) = match answers {
            Answers::Request {
                result: result::OK, ..
            } => (CmdStatus::Acked, None, None),
            Answers::Request { result: n, .. } => {
                let reason = match result::describe(n) {
                    Some(d) if n != result::ALARM_CONFIRMED => {
                        format!("terminal answered: {d} ({n})")
                    }
                    _ => format!("terminal answered: result {n}"),
                };
                (CmdStatus::Failed, Some(reason), None)
            }
            Answers::Serial(_) | Answers::Kind(_) => {
                let raw = jt808::raw_json(header, msg);
                (CmdStatus::Acked, None, raw.get("message").cloned())
            }
        };
        // Stored with the batch's other answers at its end (`end_batch`), which then
        // fills the window again.
        let protocol = self.protocol();
        self.answered.push(crate::commands::settle::finished(
            &f.cmd, protocol, status, reason, response,
        ));
        Flow::Continue
    }

    /// Sends again what was not answered in time; `failed` after the configured retries.
    async fn retry_commands(&mut self) -> Flow {
        if self.outbox.is_empty() {
            return Flow::Continue;
        }
        let Some(addr) = self.addr.clone() else {
            return Flow::Continue;
        };
        let retries = self.l.shared.commands.cfg.retries;
        let version = self.version.unwrap_or(addr.version);
        let commands = self.l.shared.commands.clone();
        for f in self.outbox.timed_out(Instant::now()) {
            if f.attempts > retries {
                let reason = format!("no answer after {} attempts", f.attempts);
                commands
                    .finish(
                        &f.cmd,
                        self.protocol(),
                        CmdStatus::Failed,
                        Some(reason),
                        None,
                    )
                    .await;
                continue;
            }
            match command_of(&f.cmd).and_then(|c| jt808::command::build(&c, version)) {
                Ok(msg) => {
                    let attempts = f.attempts + 1;
                    if let Flow::Close(r) = self
                        .send_commands(&addr, vec![(f.cmd, msg)], attempts)
                        .await
                    {
                        return Flow::Close(r);
                    }
                }
                Err(e) => {
                    commands
                        .finish(
                            &f.cmd,
                            self.protocol(),
                            CmdStatus::Rejected,
                            Some(e.to_string()),
                            None,
                        )
                        .await;
                }
            }
        }
        self.deliver_commands().await
    }
}
