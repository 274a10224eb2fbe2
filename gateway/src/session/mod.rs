//! Vehicle sessions: one task per TCP connection, generic over the byte stream (plain TCP
//! today, TLS later, `tokio::io::duplex` in tests), holding the protocol's state machine.
//!
//! A session reads frames through its protocol's codec, answers them as the standard says,
//! normalizes them into events for the [`Sink`](crate::sink::Sink), and keeps the vehicle's
//! claim in the [`Registry`](crate::registry::Registry). Protocol knowledge (what a frame
//! means, how a reply is encoded) lives in the protocol crates; the session holds the order
//! of things: login first, timeouts, takeover, presence, refusal.
//!
//! # Layout
//!
//! - `driver`: the one loop of every connection ([`driver::run`]) and the [`Protocol`] trait
//!   a protocol implements to plug into it; [`Conn`], what every connection has.
//! - `jt808`, `gbt32960`, `raw`: each protocol's session state and its [`Protocol`] impl.
//! - `batch`: the frames of one read batch, made durable together.
//! - `reader`: the frame reader, which holds no read buffer while no frame is partly read.
//! - `config`: what the driver takes from each protocol's listener configuration.
//! - `in_memory` (tests): whole sessions over `tokio::io::duplex` into `Sink::Memory`.
//! - here: what all sessions share ([`Shared`]), housekeeping, rate limit, bad-frame log.

pub mod batch;
pub mod config;
pub mod driver;
pub mod gbt32960;
#[cfg(test)]
mod in_memory;
pub mod jt808;
pub mod raw;
pub mod reader;

pub use config::SessionConfig;
pub use driver::{session_span, Conn, Flow, FrameDecoder, Limits, Protocol};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::registry::Registry;
use crate::sink::Sink;

/// Everything the sessions of one listener share: its name, its configuration, its
/// authenticator, and what all listeners share.
pub struct Listener<C> {
    /// The listener's name in metrics and logs.
    pub name: &'static str,
    pub cfg: C,
    pub auth: crate::auth::Authenticator,
    pub shared: Shared,
    /// The devices' clock offset from UTC, seconds (device-local times in frames).
    pub device_offset_secs: i32,
    /// Timeouts and rate limit of each connection.
    pub limits: Limits,
    /// Its front door: connection cap, PROXY header, failed-login cap, TLS.
    pub front: Arc<crate::front::FrontDoor>,
    /// The span of its sessions' log lines, `session{listener=<name>}` ([`session_span`]):
    /// one for all of them. A span of its own per connection cost every connection ~300
    /// bytes in the log subscriber for as long as it lived (its slot in the span registry,
    /// the map of its extensions, its formatted fields), for the same text in every line.
    pub span: tracing::Span,
}

/// What every session of every listener shares.
#[derive(Clone)]
pub struct Shared {
    pub node: Arc<str>,
    pub sink: Sink,
    pub registry: Arc<dyn Registry>,
    /// Each vehicle's alarm bits of its last live report (`alarm` events).
    pub alarms: Arc<dyn crate::alarms::AlarmStore>,
    /// Where uploaded media files go (`media` events).
    pub media: Arc<dyn crate::media::MediaStore>,
    pub commands: Arc<crate::commands::Commands>,
    /// GB/T 32960 data-unit and signature keys, per vehicle (`crate::vehicle_keys`).
    pub vehicle_keys: Arc<crate::vehicle_keys::VehicleKeys>,
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The context of events received now, from devices whose clock is `offset_secs` off UTC.
    pub fn ctx(&self, device_utc_offset_secs: i32) -> codecs::EventContext {
        codecs::EventContext {
            gateway: self.node.clone(),
            received_at: chrono::Utc::now(),
            device_utc_offset_secs,
        }
    }

    /// Publishes `events` in order, waiting for queue space; closes the session if the sink
    /// is gone (the gateway is stopping).
    pub async fn publish(&self, events: Vec<codecs::Event>) -> Flow {
        for ev in events {
            if self.sink.publish(ev).await.is_err() {
                return Flow::Close(codecs::event::PresenceReason::Shutdown);
            }
        }
        Flow::Continue
    }

    /// Records `vehicle`'s alarm bits after a live report read by session `session_id`,
    /// unless another connection has taken the vehicle over since: a report the old
    /// connection was still reading must not overwrite the state the new one started at
    /// login.
    pub fn store_alarms(&self, vehicle: &str, session_id: u64, bits: codecs::event::AlarmBits) {
        if self
            .registry
            .get(vehicle)
            .is_some_and(|h| h.id == session_id)
        {
            self.alarms.put(vehicle, bits);
        }
    }

    /// A session of `listener` (speaking the protocol labelled `label`) ended: counts it, and
    /// unless another connection took the vehicle over, releases the vehicle and publishes it
    /// offline with `reason`. A taken-over session no longer holds the id (the vehicle is
    /// still online), so presence does not flap.
    pub async fn session_closed(
        &self,
        (listener, label): (&'static str, &'static str),
        session_id: u64,
        vehicle: Option<Arc<str>>,
        protocol: codecs::Protocol,
        peer: SocketAddr,
        reason: codecs::event::PresenceReason,
    ) {
        use codecs::event::PresenceReason;
        metrics::counter!("vgate_sessions_closed_total", "protocol" => label, "listener" => listener, "reason" => presence_label(reason)).increment(1);
        let Some(vehicle) = vehicle else { return };
        let held = self.registry.release(&vehicle, session_id);
        if held {
            self.alarms.remove(&vehicle);
        }
        // Cluster mode: a vehicle that reconnected to another node before this connection
        // noticed it was gone stays online there; no offline presence from here.
        if held
            && reason != PresenceReason::Takeover
            && !self.registry.held_elsewhere(&vehicle).await
        {
            let ctx = self.ctx(codecs::time::BEIJING_OFFSET_SECS);
            let _ = self
                .sink
                .presence(
                    &ctx,
                    vehicle.clone(),
                    protocol,
                    false,
                    reason,
                    Some(peer.to_string()),
                )
                .await;
        }
        tracing::info!(%peer, vehicle = %vehicle, reason = presence_label(reason), "session closed");
    }
}

/// A session's window of commands in flight, as the command configuration sizes it.
pub fn outbox(shared: &Shared) -> crate::commands::outbox::Outbox {
    let cfg = &shared.commands.cfg;
    crate::commands::outbox::Outbox::new(cfg.window, Duration::from_secs(cfg.timeout_s.max(1)))
}

/// A queued command that cannot be sent to this vehicle (it does not build, or does not fit
/// the protocol): `rejected` with `reason`.
pub async fn reject(
    commands: &crate::commands::Commands,
    q: &crate::queue::QueuedCommand,
    protocol: codecs::Protocol,
    reason: String,
) {
    commands
        .finish(
            q,
            protocol,
            crate::commands::CmdStatus::Rejected,
            Some(reason),
            None,
        )
        .await;
}

/// The snake_case name of a presence reason.
pub fn presence_label(r: codecs::event::PresenceReason) -> &'static str {
    use codecs::event::PresenceReason;
    match r {
        PresenceReason::Login => "login",
        PresenceReason::Logout => "logout",
        PresenceReason::Timeout => "timeout",
        PresenceReason::Takeover => "takeover",
        PresenceReason::Error => "error",
        PresenceReason::Shutdown => "shutdown",
        PresenceReason::GatewayRestart => "gateway_restart",
        PresenceReason::NodeDown => "node_down",
        PresenceReason::Closed => "closed",
        PresenceReason::Kicked => "kicked",
    }
}

/// A session's once-a-second housekeeping (command retries, subpackage reassembly), armed
/// only while there is something to look after: an idle connection gets no timer wakeups and
/// keeps no timer of its own (15,000 idle terminals would otherwise cost 15,000 wakeups a
/// second). When it is armed again after a quiet spell, it runs at once, then every second.
pub struct Housekeeping {
    next: tokio::time::Instant,
}

impl Default for Housekeeping {
    fn default() -> Self {
        Housekeeping {
            next: tokio::time::Instant::now() + Self::PERIOD,
        }
    }
}

impl Housekeeping {
    const PERIOD: Duration = Duration::from_secs(1);

    /// When the next round is due.
    pub fn next(&self) -> tokio::time::Instant {
        self.next
    }

    /// A round ran: the next is due one period from now.
    pub fn done(&mut self) {
        self.next = tokio::time::Instant::now() + Self::PERIOD;
    }
}

/// Counts an open connection for as long as it lives.
pub struct OpenConnection(&'static str);

impl OpenConnection {
    pub fn new(listener: &'static str) -> Self {
        metrics::gauge!("vgate_connections_open", "listener" => listener).increment(1.0);
        OpenConnection(listener)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("vgate_connections_open", "listener" => self.0).decrement(1.0);
    }
}

/// Logs bad frames with their hex, at most a few per connection per minute, so a
/// misbehaving terminal cannot flood the log. Every bad frame is still counted in metrics.
pub struct BadFrameLog {
    window_start: Instant,
    in_window: u32,
    suppressed: u32,
}

impl Default for BadFrameLog {
    fn default() -> Self {
        BadFrameLog {
            window_start: Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }
}

/// Bad-frame log lines allowed per connection per minute.
const LOG_PER_MINUTE: u32 = 5;

impl BadFrameLog {
    /// Logs one bad frame unless this connection's quota is used up.
    pub fn log(
        &mut self,
        protocol: &str,
        peer: SocketAddr,
        vehicle: Option<&str>,
        reason: &str,
        detail: &str,
        raw: &[u8],
    ) {
        if self.window_start.elapsed() > Duration::from_secs(60) {
            self.window_start = Instant::now();
            self.in_window = 0;
        }
        self.in_window += 1;
        if self.in_window > LOG_PER_MINUTE {
            self.suppressed += 1;
            return;
        }
        let shown = raw.get(..raw.len().min(256)).unwrap_or(raw);
        warn!(
            protocol,
            %peer,
            vehicle = vehicle.unwrap_or("-"),
            reason,
            suppressed = self.suppressed,
            hex = %hex::encode(shown),
            "bad frame: {detail}"
        );
        self.suppressed = 0;
    }
}

/// A listener's frame rate limit (frames per second, 0: none), which a reload may change
/// while its connections run: each connection's [`RateLimit`] reads it at every frame (one
/// relaxed load).
#[derive(Debug)]
pub struct LiveRate(std::sync::atomic::AtomicU64);

impl LiveRate {
    pub fn new(rate: f64) -> LiveRate {
        LiveRate(std::sync::atomic::AtomicU64::new(
            Self::clean(rate).to_bits(),
        ))
    }

    fn clean(rate: f64) -> f64 {
        if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        }
    }

    /// The rate now.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Connections are held to `rate` from their next frame on.
    pub fn set(&self, rate: f64) {
        self.0.store(
            Self::clean(rate).to_bits(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// A per-connection frame rate limit (token bucket). A connection that sends faster than
/// its listener's rate ([`LiveRate`]) frames per second (after a burst of `2 x rate`) is not
/// cut off: its frames are read more slowly, so TCP flow control pushes back on it and it
/// cannot take the CPU from the other vehicles. Each wait is counted in
/// `vgate_rate_limited_total{protocol}`.
pub struct RateLimit {
    rate: Arc<LiveRate>,
    tokens: f64,
    last: tokio::time::Instant,
    protocol: &'static str,
}

impl RateLimit {
    /// At `rate` frames per second (0 disables the limit), starting with a full burst.
    pub fn new(rate: Arc<LiveRate>, protocol: &'static str) -> Self {
        let tokens = rate.get() * 2.0;
        RateLimit {
            rate,
            tokens,
            last: tokio::time::Instant::now(),
            protocol,
        }
    }

    /// Takes one frame's token, waiting for it if the bucket is empty.
    pub async fn take(&mut self) {
        let rate = self.rate.get();
        if rate == 0.0 {
            return;
        }
        let now = tokio::time::Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(rate * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return;
        }
        metrics::counter!("vgate_rate_limited_total", "protocol" => self.protocol).increment(1);
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
        // Boxed: only a flooding connection waits, and a timer inline would be held in the
        // task of every connection.
        Box::pin(tokio::time::sleep(wait)).await;
        self.tokens = 0.0;
        self.last = tokio::time::Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_flood_is_slowed_to_the_rate_after_the_burst() {
        let mut r = RateLimit::new(Arc::new(LiveRate::new(10.0)), "test");
        let start = tokio::time::Instant::now();
        for _ in 0..20 {
            r.take().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "the burst passes at once"
        );
        for _ in 0..10 {
            r.take().await;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "then 10 frames/s: {waited:?}"
        );
    }
}
