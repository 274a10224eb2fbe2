//! The session driver: the one loop every vehicle connection runs, whatever its protocol.
//!
//! ```text
//!            accept ─▶ run::<P>(stream)
//!                        │ split; P::open (state + codec); P::on_open
//!                        ▼
//!   ┌──────────── select (biased) ──────────────────────────────────────────┐
//!   │ shutdown                 ─▶ close (shutdown)                          │
//!   │ control: Close(r)        ─▶ close (r: takeover...)                    │
//!   │ control: Deliver         ─▶ P::deliver (queued commands)              │
//!   │ one timer: login/idle deadline, or housekeeping while P wants it      │
//!   │            (commands in flight: P::outbox; P::wants_housekeeping)     │
//!   │ frames: a read batch     ─▶ P::on_frame / P::on_bad_frame each,       │
//!   │   (reader::Frames)          rate-limited; then P::end_batch           │
//!   └───────────────────────────────────────────────────────────────────────┘
//!                        │ P::end_batch; flush; shutdown the writer
//!                        ▼ Shared::session_closed (release, presence offline)
//! ```
//!
//! Why one driver: the order of things around a protocol (accept, limits, the read batch,
//! housekeeping, the control slot, presence, close) is the same for every protocol, and
//! every feature of it (TLS, several listeners per protocol, traces, per-listener limits) is
//! then written once. A protocol plugs in through [`Protocol`]: decode is its codec, and it
//! handles a frame, a bad frame, the end of a batch and its commands, answering through the
//! connection's writer in [`Conn`].
//!
//! The per-frame path is generic (`run::<P>` is compiled once per protocol): no `dyn`. Every
//! handler's future is boxed, the frame's included: a connection's task is as large as the
//! largest state its loop can await, for as long as the connection lives, and the frame
//! handler's state (the decoded message, its events, the sink's and the writer's futures)
//! was half of it: a JT/T 808 connection's task was 3,648 bytes with it inline, 1,648 with
//! it and the end of the batch boxed. One allocation per frame (a size class in the
//! allocator's thread cache, tens of nanoseconds) against a frame's microseconds, for ~2 KB
//! less per connection, idle or not (100,000 connections: ~200 MB).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codecs::event::{Lifecycle, LifecycleKind, PresenceReason};
use codecs::{Data, Event, EventContext};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio_util::codec::Decoder;
use tracing::{debug, info, warn, Instrument};

use super::batch;
use super::reader::Frames;
use super::{BadFrameLog, Housekeeping, Listener, LiveRate, OpenConnection, RateLimit, Shared};
use crate::commands::outbox::Outbox;
use crate::registry::{next_session_id, Control, ControlSender, SessionHandle};

/// What a session step decides: go on, or close the connection for this reason.
#[must_use]
pub enum Flow {
    Continue,
    Close(PresenceReason),
}

/// A codec whose items are frames or recoverable bad frames (an `Err` item does not end
/// the stream; [`Frames`](super::reader::Frames), like tokio-util's `FramedRead`, ends on a
/// decoder error).
pub trait FrameDecoder: Decoder<Item = Result<Self::Frame, Self::Bad>> {
    /// A frame; [`Traceable`](crate::traces::Traceable) for the operator's traces.
    type Frame: Send + crate::traces::Traceable;
    type Bad: Send;
}

impl<D, F: Send + crate::traces::Traceable, B: Send> FrameDecoder for D
where
    D: Decoder<Item = Result<F, B>>,
{
    type Frame = F;
    type Bad = B;
}

/// A listener's timeouts and rate limit, as the driver enforces them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a connection may take to log in (identify itself).
    pub login_timeout: Duration,
    /// How long a logged-in connection may stay silent.
    pub idle_timeout: Duration,
    /// Frames per second before reading is slowed ([`RateLimit`]); 0: no limit. Shared by
    /// the listener's connections, changed by a reload.
    pub max_frames_per_s: Arc<LiveRate>,
}

impl Limits {
    /// `login_s` seconds to log in; `idle_s` seconds of silence after (0: three heartbeats
    /// of `heartbeat_s`; at least a second); `max_frames_per_s` (0: no limit).
    pub fn new(login_s: u64, idle_s: u64, heartbeat_s: u64, max_frames_per_s: f64) -> Limits {
        let idle = if idle_s == 0 {
            heartbeat_s.saturating_mul(3)
        } else {
            idle_s
        };
        Limits {
            login_timeout: Duration::from_secs(login_s),
            idle_timeout: Duration::from_secs(idle.max(1)),
            max_frames_per_s: Arc::new(LiveRate::new(max_frames_per_s)),
        }
    }
}

/// What every connection has, whatever its protocol: where it comes from, where answers go,
/// who it is once logged in, and its bad-frame count.
pub struct Conn<W> {
    pub peer: SocketAddr,
    pub writer: W,
    /// This connection's id in the registry (a takeover names the session it ends).
    pub id: u64,
    /// Given to the registry when the vehicle is claimed: how others reach this session.
    pub control_tx: ControlSender,
    /// Set once the vehicle logged in (authenticated, identified).
    pub vehicle: Option<Arc<str>>,
    pub bad_frames: u32,
    pub bad_log: BadFrameLog,
    /// When the last good frame was read (the idle deadline counts from it).
    pub last_rx: Instant,
    /// The names the client certificate gives for the listener's TLS `identity`; `None`:
    /// no certificate identity to check (plain TCP, or `identity = "none"`).
    pub cert_names: Option<Arc<[String]>>,
    /// The listener's front door (a refused login counts against the peer's address).
    pub front: Arc<crate::front::FrontDoor>,
    /// Frames read and written on this connection (shown by the operator API).
    pub frames: Arc<crate::registry::FrameCounters>,
    /// While a trace runs: the frame being handled by a connection not logged in yet, recorded
    /// once the frame names the vehicle, before the answers it causes ([`crate::traces`]).
    /// (Boxed: rare, and 48 bytes in every connection's task inline.)
    pub trace_in: Option<Box<(Vec<u8>, String)>>,
}

/// What [`Conn::claim`] found in the registry.
pub struct Claimed {
    /// The vehicle was already this connection's (a second login on it).
    pub already_mine: bool,
    /// Another connection held the vehicle: it has been told to close, and this is the
    /// `takeover` lifecycle event to publish.
    pub takeover: Option<Lifecycle>,
}

impl<W> Conn<W> {
    /// Whether the client certificate allows this connection to claim `vehicle`: always
    /// without an identity check; with one, when the certificate names it (a certificate
    /// that names nothing names no vehicle). A mismatch is refused like a failed login with
    /// the reason `certificate_mismatch`.
    pub fn certificate_allows(&self, vehicle: &str) -> bool {
        match &self.cert_names {
            None => true,
            Some(names) => names.iter().any(|n| n == vehicle),
        }
    }
}

impl<W: AsyncWrite + Unpin> Conn<W> {
    /// Writes `bytes` to the vehicle; a failed write closes the connection.
    pub async fn write(&mut self, bytes: &[u8]) -> Flow {
        if !bytes.is_empty() && self.writer.write_all(bytes).await.is_err() {
            return Flow::Close(PresenceReason::Closed);
        }
        if !bytes.is_empty() {
            self.frames.written(frame_count(bytes));
            if crate::traces::any() {
                if let Some(v) = self.vehicle.as_deref() {
                    if let Some((wire, summary)) = self.trace_in.take().map(|t| *t) {
                        crate::traces::record(v, "in", &wire, &summary);
                    }
                    for (wire, summary) in crate::traces::outgoing(bytes) {
                        crate::traces::record(v, "out", &wire, &summary);
                    }
                }
            }
        }
        Flow::Continue
    }

    /// Counts and logs (rate-limited) one bad frame of `protocol`; true when this one
    /// reaches `max` (the caller answers it if it answers bad frames, then closes).
    pub fn bad_frame(
        &mut self,
        protocol: &'static str,
        reason: &'static str,
        detail: &str,
        raw: &[u8],
        max: u32,
    ) -> bool {
        metrics::counter!("vgate_decode_errors_total", "protocol" => protocol, "reason" => reason)
            .increment(1);
        self.bad_log.log(
            protocol,
            self.peer,
            self.vehicle.as_deref(),
            reason,
            detail,
            raw,
        );
        self.bad_frames += 1;
        if self.bad_frames >= max {
            warn!(peer = %self.peer, bad_frames = self.bad_frames, "closing: too many bad frames");
            return true;
        }
        false
    }

    /// Claims `vehicle` for this connection in the registry and makes it this connection's.
    /// Claim before answering the login: once the vehicle has its answer, a reconnect of the
    /// same vehicle must find this session holding the id, or the two sessions' claims could
    /// land in the wrong order (the old one would win).
    pub fn claim(
        &mut self,
        shared: &Shared,
        vehicle: &Arc<str>,
        protocol: codecs::Protocol,
    ) -> Claimed {
        let handle = SessionHandle {
            id: self.id,
            protocol,
            peer: self.peer,
            since: chrono::Utc::now(),
            control: self.control_tx.clone(),
            frames: self.frames.clone(),
        };
        let old = shared.registry.claim(vehicle, handle);
        let already_mine = self.vehicle.as_deref() == Some(&**vehicle);
        self.vehicle = Some(vehicle.clone());
        let takeover = old.filter(|o| o.id != self.id).map(|old| {
            let _ = old
                .control
                .try_send(Control::Close(PresenceReason::Takeover));
            Lifecycle::new(LifecycleKind::Takeover)
                .with("previous_peer", old.peer.to_string())
                .with("peer", self.peer.to_string())
        });
        Claimed {
            already_mine,
            takeover,
        }
    }

    /// Publishes the vehicle online (reason login) from this connection. (`&mut`: a
    /// shared borrow of the writer would need it to be `Sync` for the future to be `Send`.)
    pub async fn online(
        &mut self,
        shared: &Shared,
        ctx: &EventContext,
        vehicle: Arc<str>,
        protocol: codecs::Protocol,
    ) {
        // Cluster mode: the presence in Redis first (a node that dies right after must
        // leave the vehicle findable, to be published offline).
        shared.registry.claims_written().await;
        let _ = shared
            .sink
            .presence(
                ctx,
                vehicle,
                protocol,
                true,
                PresenceReason::Login,
                Some(self.peer.to_string()),
            )
            .await;
    }

    /// A vehicle was refused (login denied, invalid id): counted, logged, and published as a
    /// `rejected` lifecycle event when its id can name a topic. Closes the connection.
    pub async fn refused(
        &mut self,
        shared: &Shared,
        label: &'static str,
        vehicle: Option<(&str, codecs::Protocol, Option<u32>)>,
        ctx: &EventContext,
        reason: &str,
    ) -> Flow {
        metrics::counter!("vgate_login_refusals_total", "protocol" => label, "listener" => self.front.name, "reason" => reason.to_owned()).increment(1);
        let id = vehicle.map(|(v, ..)| v);
        info!(listener = self.front.name, peer = %self.peer, vehicle = id.unwrap_or("-"), reason, "vehicle refused");
        self.front.failed_login(self.peer);
        if let Some((v, protocol, serial)) =
            vehicle.filter(|(v, ..)| codecs::vehicle_id::validate(v).is_ok())
        {
            let lc = Lifecycle::new(LifecycleKind::Rejected).because(reason);
            let ev = Event::new(
                ctx,
                Arc::from(v),
                protocol,
                None,
                serial,
                Data::Lifecycle(lc),
            );
            let _ = shared.publish(vec![ev]).await;
        }
        let _ = self.writer.flush().await;
        Flow::Close(PresenceReason::Error)
    }
}

/// A protocol's side of a session. `W` is the writing half of the connection.
///
/// The driver owns the loop; the implementor (the protocol's session state, holding its
/// [`Conn`]) owns what frames mean: it decodes them with `Codec`, answers through
/// `conn().writer`, and says with [`Flow`] when the connection is to close.
pub trait Protocol<W>: Sized + Send + 'static {
    /// The listener's configuration (its section of the configuration file).
    type Config: Send + Sync + 'static;
    /// Framing: a recoverable bad frame is an item (`Err(Bad)`), so reading goes on; an
    /// `Error` (I/O, a framing that cannot resynchronise) ends the stream.
    type Codec: FrameDecoder<Error: std::fmt::Display + Send> + Send + 'static;

    /// The protocol's label in metrics (`protocol="jt808"`).
    const LABEL: &'static str;

    /// One connection's state and codec; `None` refuses the connection.
    fn open(l: &Arc<Listener<Self::Config>>, conn: Conn<W>) -> Option<(Self, Self::Codec)>;

    fn conn(&mut self) -> &mut Conn<W>;

    /// The protocol every event and the presence of this session carries.
    fn protocol(&self) -> codecs::Protocol;

    /// Before the first read (a connection identified by its address logs in here).
    fn on_open(&mut self) -> impl Future<Output = Flow> + Send {
        async { Flow::Continue }
    }

    /// One good frame. The common case: runs inline in the connection's task. Return the
    /// handler's future itself rather than an `async` wrapper around it: a wrapper keeps a
    /// second slot for the frame in every connection's task.
    fn on_frame(
        &mut self,
        frame: <Self::Codec as FrameDecoder>::Frame,
    ) -> impl Future<Output = Flow> + Send;

    /// One frame that could be delimited but not read.
    fn on_bad_frame(
        &mut self,
        bad: <Self::Codec as FrameDecoder>::Bad,
    ) -> impl Future<Output = Flow> + Send;

    /// The stream ended with `e`: the reason the session closes.
    fn on_read_error(&mut self, e: &<Self::Codec as Decoder>::Error) -> PresenceReason {
        debug!(peer = %self.conn().peer, error = %e, "read error");
        PresenceReason::Error
    }

    /// The read batch ended (and the session closes): answer what waited for it.
    fn end_batch(&mut self) -> impl Future<Output = Flow> + Send {
        async { Flow::Continue }
    }

    /// The session's commands in flight, if it sends commands: while any wait for their
    /// answer, housekeeping runs (to send them again, or time them out).
    fn outbox(&self) -> Option<&Outbox> {
        None
    }

    /// Whether the once-a-second housekeeping is wanted now for something else than the
    /// commands in flight (reassembly, uploads).
    fn wants_housekeeping(&self) -> bool {
        false
    }

    /// The once-a-second round (retries, reassembly).
    fn housekeeping(&mut self) -> impl Future<Output = Flow> + Send {
        async { Flow::Continue }
    }

    /// Sends queued commands (on login, and when the command intake says there are some).
    fn deliver(&mut self) -> impl Future<Output = Flow> + Send;
}

/// Bytes a connection may have buffered, unread as a frame, before it logged in: a frame
/// longer than this before login closes the connection (`vgate_prelogin_overflows_total`).
/// With one more read ([`SCRATCH`](super::reader::SCRATCH), 2 KiB) and the buffer's
/// doubling, the buffer stays within twice this (8 KiB), inside the contract's 16 KiB per
/// connection before login (docs/security.md).
pub const PRELOGIN_BUFFER: usize = 4096;

/// The protocol's codec, with the pre-login bound: until the vehicle has logged in, at most
/// [`PRELOGIN_BUFFER`] bytes may wait in the read buffer for the rest of a frame.
pub struct Gate<D> {
    inner: D,
    /// The vehicle logged in: the protocol's own `max_frame_len` alone applies.
    open: bool,
}

/// The codec's error, or the pre-login bound exceeded (bytes buffered).
pub enum GateError<E> {
    Inner(E),
    PreLogin(usize),
}

impl<E: From<std::io::Error>> From<std::io::Error> for GateError<E> {
    fn from(e: std::io::Error) -> Self {
        GateError::Inner(E::from(e))
    }
}

impl<D: Decoder> Gate<D> {
    fn check(&self, src: &bytes::BytesMut) -> Result<(), GateError<D::Error>> {
        if !self.open && src.len() > PRELOGIN_BUFFER {
            return Err(GateError::PreLogin(src.len()));
        }
        Ok(())
    }
}

impl<D: Decoder> Decoder for Gate<D> {
    type Item = D::Item;
    type Error = GateError<D::Error>;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<D::Item>, Self::Error> {
        let item = self.inner.decode(src).map_err(GateError::Inner)?;
        if item.is_none() {
            self.check(src)?;
        }
        Ok(item)
    }

    fn decode_eof(&mut self, src: &mut bytes::BytesMut) -> Result<Option<D::Item>, Self::Error> {
        self.inner.decode_eof(src).map_err(GateError::Inner)
    }
}

/// Serves one connection with protocol `P` until it closes, times out, is taken over or
/// the gateway stops.
pub fn run<S, P>(
    stream: S,
    peer: SocketAddr,
    l: Arc<Listener<P::Config>>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: Protocol<WriteHalf<S>>,
{
    run_with::<S, P>(stream, peer, l, None)
}

/// The span of the sessions of listener `name` (see [`Listener::span`]); its target is this
/// module, as the `#[instrument]` span each session had before.
pub fn session_span(name: &'static str) -> tracing::Span {
    tracing::info_span!("session", listener = name)
}

/// [`run`] for a connection whose client certificate gave `cert_names` (TLS `identity`).
/// Every log line of the session carries the listener's name: its span, the listener's
/// `session{listener=...}` ([`Listener::span`]), or a span of its own if the listener's was
/// made while the log filter left it out (a reload may have let it in since).
pub fn run_with<S, P>(
    stream: S,
    peer: SocketAddr,
    l: Arc<Listener<P::Config>>,
    cert_names: Option<Arc<[String]>>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: Protocol<WriteHalf<S>>,
{
    let span = if l.span.is_disabled() {
        session_span(l.name)
    } else {
        l.span.clone()
    };
    async move {
        let _open = OpenConnection::new(l.name);
        let (rd, wr) = tokio::io::split(stream);
        let (control_tx, mut control_rx) = crate::registry::control();
        let conn = Conn {
            peer,
            writer: wr,
            id: next_session_id(),
            control_tx,
            vehicle: None,
            bad_frames: 0,
            bad_log: BadFrameLog::default(),
            last_rx: Instant::now(),
            cert_names,
            front: l.front.clone(),
            frames: Default::default(),
            trace_in: None,
        };
        let Some((mut s, codec)) = P::open(&l, conn) else {
            return;
        };
        let codec = Gate {
            inner: codec,
            open: false,
        };
        let mut frames = Frames::new(rd, codec);
        let limits = &l.limits;
        let login_deadline = tokio::time::Instant::now() + limits.login_timeout;
        let shutdown = l.shared.shutdown.clone();
        let mut housekeeping = Housekeeping::default();
        let reason = 'session: {
            if let Flow::Close(r) = Box::pin(s.on_open()).await {
                break 'session r;
            }
            frames.decoder_mut().open = s.conn().vehicle.is_some();
            let mut limit = RateLimit::new(limits.max_frames_per_s.clone(), P::LABEL);
            loop {
                let deadline = match s.conn().vehicle {
                    Some(_) => tokio::time::Instant::from_std(s.conn().last_rx + limits.idle_timeout),
                    None => login_deadline,
                };
                // One timer for both: the timeout, and housekeeping while it is wanted (an idle
                // connection then keeps no timer of its own but its deadline).
                let wake = if s.outbox().is_some_and(|o| !o.is_empty()) || s.wants_housekeeping() {
                    deadline.min(housekeeping.next())
                } else {
                    deadline
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
                    _ = tokio::time::sleep_until(wake) => {
                        if tokio::time::Instant::now() >= deadline {
                            break PresenceReason::Timeout;
                        }
                        housekeeping.done();
                        if let Flow::Close(r) = Box::pin(s.housekeeping()).await { break r; }
                    }
                    item = frames.next() => {
                        // This item, then whatever else can be read without waiting (already
                        // buffered, or in the socket), up to MAX_BATCH frames: one batch,
                        // settled together by `end_batch`.
                        let mut item = item;
                        let mut read = 1;
                        let flow = loop {
                            let flow = match item {
                                None => Flow::Close(PresenceReason::Closed),
                                Some(Err(GateError::Inner(e))) => Flow::Close(s.on_read_error(&e)),
                                Some(Err(GateError::PreLogin(held))) => {
                                    metrics::counter!("vgate_prelogin_overflows_total", "listener" => l.name).increment(1);
                                    warn!(peer = %s.conn().peer, held, limit = PRELOGIN_BUFFER, "closing: more unread bytes than a connection may hold before login");
                                    Flow::Close(PresenceReason::Error)
                                }
                                Some(Ok(Err(bad))) => Box::pin(s.on_bad_frame(bad)).await,
                                Some(Ok(Ok(frame))) => {
                                    s.conn().last_rx = Instant::now();
                                    s.conn().frames.read();
                                    limit.take().await;
                                    if crate::traces::any() {
                                        // Recorded before it is handled; a login frame, which names
                                        // the vehicle, once it does (before its answer).
                                        use crate::traces::Traceable;
                                        let seen = (frame.wire(), frame.summary());
                                        match s.conn().vehicle.clone() {
                                            Some(v) => crate::traces::record(&v, "in", &seen.0, &seen.1),
                                            None => s.conn().trace_in = Some(Box::new(seen)),
                                        }
                                        let flow = Box::pin(s.on_frame(frame)).await;
                                        let c = s.conn();
                                        if let (Some((wire, summary)), Some(v)) = (c.trace_in.take().map(|t| *t), c.vehicle.as_deref()) {
                                            crate::traces::record(v, "in", &wire, &summary);
                                        }
                                        flow
                                    } else {
                                        Box::pin(s.on_frame(frame)).await
                                    }
                                }
                            };
                            if matches!(flow, Flow::Close(_)) {
                                break flow;
                            }
                            if !frames.decoder().open && s.conn().vehicle.is_some() {
                                frames.decoder_mut().open = true;
                            }
                            match batch::ready_next(&mut frames, &mut read) {
                                Some(next) => item = next,
                                None => break flow,
                            }
                        };
                        // Even when closing: the answers of the batch go out first.
                        let flushed = Box::pin(s.end_batch()).await;
                        if let Flow::Close(r) = flow { break r; }
                        if let Flow::Close(r) = flushed { break r; }
                    }
                }
            }
        };
        Box::pin(close(s, &l, reason)).await;
    }
    .instrument(span)
}

/// How many frames one write holds: JT/T 808 answers of a read batch go out in one write,
/// each frame between two 0x7E flags (escaped everywhere else); any other write is one frame.
fn frame_count(bytes: &[u8]) -> u64 {
    if bytes.first() == Some(&0x7E) {
        (bytes.iter().filter(|&&b| b == 0x7E).count() as u64 / 2).max(1)
    } else {
        1
    }
}

/// Ends a session: the batch's answers, the writer flushed and shut down, then the vehicle
/// released and published offline (unless taken over).
async fn close<W, P>(mut s: P, l: &Listener<P::Config>, reason: PresenceReason)
where
    W: AsyncWrite + Unpin,
    P: Protocol<W>,
{
    let _ = s.end_batch().await;
    let protocol = s.protocol();
    let c = s.conn();
    let _ = c.writer.flush().await;
    let _ = c.writer.shutdown().await;
    let (id, peer, vehicle) = (c.id, c.peer, c.vehicle.take());
    l.shared
        .session_closed((l.name, P::LABEL), id, vehicle, protocol, peer, reason)
        .await;
}
