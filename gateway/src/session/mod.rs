//! Vehicle sessions: one task per TCP connection, generic over the byte stream (plain TCP
//! today, TLS later), holding the protocol's state machine.
//!
//! A session reads frames through its protocol's codec, answers them as the standard says,
//! normalizes them into events for the [`Sink`](crate::sink::Sink), and keeps the vehicle's
//! claim in the [`Registry`](crate::registry::Registry). Protocol knowledge (what a frame
//! means, how a reply is encoded) lives in the protocol crates; the session holds the order
//! of things: login first, timeouts, takeover, presence, refusal.

pub mod gbt32960;
pub mod jt808;
pub mod raw;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::registry::Registry;
use crate::sink::Sink;

/// What every session of every listener shares.
#[derive(Clone)]
pub struct Shared {
    pub node: Arc<str>,
    pub sink: Sink,
    pub registry: Arc<dyn Registry>,
    pub commands: Arc<crate::commands::Commands>,
    pub shutdown: CancellationToken,
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
