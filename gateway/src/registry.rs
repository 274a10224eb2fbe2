//! Which connection holds which vehicle.
//!
//! A vehicle id is held by at most one connection. A new connection that proves the same id
//! *takes over*: the registry hands back the old holder so it can be closed with reason
//! `takeover` (and, since the vehicle stays online, no offline presence is published in
//! between: presence does not flap). A session leaving releases its id only if it still
//! holds it, so a late exit of the old connection cannot unregister the new one.
//!
//! This is the embedded, single-process implementation behind [`Registry`]; a Redis-backed
//! one for several nodes fits the same interface (claim / release / lookup).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use codecs::event::PresenceReason;
use codecs::Protocol;
use tokio::sync::mpsc;

/// What other tasks may ask of a session.
#[derive(Debug)]
pub enum Control {
    /// Close the connection (takeover, shutdown, operator).
    Close(PresenceReason),
    /// Commands are waiting in the queue for this vehicle: send what the window allows.
    Deliver,
}

/// A handle on a live session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per connection in this process.
    pub id: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    pub since: DateTime<Utc>,
    pub control: mpsc::Sender<Control>,
    /// Frames read from and written to this connection (the operator API's `frames_in`,
    /// `frames_out`).
    pub frames: Arc<FrameCounters>,
}

/// A connection's frame counts, shared by its session (which counts) and its handle.
#[derive(Debug, Default)]
pub struct FrameCounters {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
}

impl FrameCounters {
    /// One frame read.
    pub fn read(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` frames written.
    pub fn written(&self, n: u64) {
        self.frames_out.fetch_add(n, Ordering::Relaxed);
    }

    /// `(frames_in, frames_out)` now.
    pub fn get(&self) -> (u64, u64) {
        (
            self.frames_in.load(Ordering::Relaxed),
            self.frames_out.load(Ordering::Relaxed),
        )
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh connection id.
pub fn next_session_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The vehicle registry interface.
pub trait Registry: Send + Sync {
    /// Makes `handle` the holder of `vehicle_id`, returning the previous holder if any.
    fn claim(&self, vehicle_id: &str, handle: SessionHandle) -> Option<SessionHandle>;
    /// Releases `vehicle_id` if session `session_id` still holds it; true if it did.
    fn release(&self, vehicle_id: &str, session_id: u64) -> bool;
    /// The current holder of `vehicle_id`.
    fn get(&self, vehicle_id: &str) -> Option<SessionHandle>;
    /// Number of vehicles online.
    fn online(&self) -> usize;
    /// Every online vehicle with its handle (for shutdown).
    fn all(&self) -> Vec<(String, SessionHandle)>;
}

/// The in-process registry.
#[derive(Debug, Default, Clone)]
pub struct LocalRegistry {
    inner: Arc<Mutex<HashMap<Arc<str>, SessionHandle>>>,
}

impl LocalRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, SessionHandle>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Registry for LocalRegistry {
    fn claim(&self, vehicle_id: &str, handle: SessionHandle) -> Option<SessionHandle> {
        let mut m = self.map();
        let old = m.insert(Arc::from(vehicle_id), handle);
        metrics::gauge!("vgate_vehicles_online").set(m.len() as f64);
        old
    }

    fn release(&self, vehicle_id: &str, session_id: u64) -> bool {
        let mut m = self.map();
        let held = m.get(vehicle_id).is_some_and(|h| h.id == session_id);
        if held {
            m.remove(vehicle_id);
        }
        metrics::gauge!("vgate_vehicles_online").set(m.len() as f64);
        held
    }

    fn get(&self, vehicle_id: &str) -> Option<SessionHandle> {
        self.map().get(vehicle_id).cloned()
    }

    fn online(&self) -> usize {
        self.map().len()
    }

    fn all(&self) -> Vec<(String, SessionHandle)> {
        self.map()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: u64) -> (SessionHandle, mpsc::Receiver<Control>) {
        let (tx, rx) = mpsc::channel(1);
        (
            SessionHandle {
                id,
                protocol: Protocol::Jt808_2013,
                peer: "127.0.0.1:1".parse().unwrap(),
                since: Utc::now(),
                control: tx,
                frames: Default::default(),
            },
            rx,
        )
    }

    #[test]
    fn second_claim_returns_the_first_holder_and_late_release_keeps_the_new_one() {
        let r = LocalRegistry::new();
        let (a, _ra) = handle(1);
        let (b, _rb) = handle(2);
        assert!(r.claim("v1", a).is_none());
        assert_eq!(r.claim("v1", b).map(|h| h.id), Some(1));
        assert!(
            !r.release("v1", 1),
            "the old session must not release the new holder"
        );
        assert_eq!(r.get("v1").map(|h| h.id), Some(2));
        assert!(r.release("v1", 2));
        assert_eq!(r.online(), 0);
    }
}
