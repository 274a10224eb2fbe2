//! Which connection holds which vehicle.
//!
//! A vehicle id is held by at most one connection. A new connection that proves the same id
//! *takes over*: the registry hands back the old holder so it can be closed with reason
//! `takeover` (and, since the vehicle stays online, no offline presence is published in
//! between: presence does not flap). A session leaving releases its id only if it still
//! holds it, so a late exit of the old connection cannot unregister the new one.
//!
//! [`LocalRegistry`] is the in-process implementation behind [`Registry`]. Two wrap it:
//! [`JournaledRegistry`](crate::stale::JournaledRegistry) (one node: a journal of who is
//! online, for the presence left stale by a crash) and
//! [`ClusterRegistry`](crate::cluster::presence::ClusterRegistry) (several nodes: presence
//! in Redis, takeover across nodes, [`Registry::held_elsewhere`],
//! [`Registry::wake_elsewhere`]).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};
use codecs::event::PresenceReason;
use codecs::Protocol;

/// What other tasks may ask of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Close the connection (takeover, shutdown, operator).
    Close(PresenceReason),
    /// Commands are waiting in the queue for this vehicle: send what the window allows.
    Deliver,
}

/// A session's control slot, shared by its [`ControlReceiver`] and every [`ControlSender`].
///
/// Not a channel: a session is only ever asked two things, to close (the first reason given
/// wins, as the first `Close` of a queue would have ended the session) and to send its queued
/// commands (asked twice before it looked is asked once). A slot holds both and the waker
/// of the session's task in one small allocation, where a bounded `mpsc` channel held ~700
/// bytes per connection (its cache-padded shared state and its first block of slots), for
/// every idle connection (issue 19). Waiting on it is a `poll_fn` over the slot, so the
/// session's task holds no waiter of its own (a `Notify` would put one, ~70 bytes, in the
/// task of every connection).
#[derive(Debug, Default)]
struct Slot(Mutex<Asked>);

#[derive(Debug, Default)]
struct Asked {
    close: Option<PresenceReason>,
    deliver: bool,
    /// The session has ended (its receiver is gone): asking fails.
    gone: bool,
    /// The session's task, waiting for what it is asked.
    waker: Option<Waker>,
}

impl Slot {
    fn asked(&self) -> std::sync::MutexGuard<'_, Asked> {
        // Poisoned only if a panic hit while holding it; the flags are still meaningful.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The session is gone: nothing to ask any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionGone;

/// How other tasks ask a session to close or deliver (a clone per registry entry).
#[derive(Debug, Clone)]
pub struct ControlSender(Arc<Slot>);

/// The session's end of its control slot.
#[derive(Debug)]
pub struct ControlReceiver(Arc<Slot>);

/// A session's control slot: the sender to hand out, the receiver its loop waits on.
pub fn control() -> (ControlSender, ControlReceiver) {
    let slot = Arc::new(Slot::default());
    (ControlSender(slot.clone()), ControlReceiver(slot))
}

impl ControlSender {
    /// Asks the session for `c`, at once (a slot is never full); `Err` once it has ended.
    pub fn try_send(&self, c: Control) -> Result<(), SessionGone> {
        let waker = {
            let mut a = self.0.asked();
            if a.gone {
                return Err(SessionGone);
            }
            match c {
                Control::Close(r) => {
                    a.close.get_or_insert(r);
                }
                Control::Deliver => a.deliver = true,
            }
            a.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// [`try_send`](Self::try_send), for callers written against a channel's `send`.
    pub async fn send(&self, c: Control) -> Result<(), SessionGone> {
        self.try_send(c)
    }
}

impl ControlReceiver {
    /// What the session is asked next: a close first (closing makes a delivery moot), then
    /// a delivery. Cancel-safe: what is asked stays in the slot until a poll returns it.
    /// Never `None` while a sender lives (the session keeps one itself); `Option` keeps
    /// the shape of a channel's `recv`.
    pub async fn recv(&mut self) -> Option<Control> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Control>> {
        let mut a = self.0.asked();
        if let Some(r) = a.close.take() {
            return Poll::Ready(Some(Control::Close(r)));
        }
        if std::mem::take(&mut a.deliver) {
            return Poll::Ready(Some(Control::Deliver));
        }
        match &mut a.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for ControlReceiver {
    fn drop(&mut self) {
        let mut a = self.0.asked();
        a.gone = true;
        a.waker = None;
    }
}

/// A handle on a live session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per connection in this process.
    pub id: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    pub since: DateTime<Utc>,
    pub control: ControlSender,
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

/// An online vehicle: its id and the handle of its session.
pub type Online = (String, SessionHandle);
/// A future of the registry's cluster side ([`Registry::held_elsewhere`]).
pub type Pending<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// The vehicle registry interface. Every registry keeps this node's sessions in a
/// [`LocalRegistry`] ([`Registry::local`]), which answers the look-ups; an implementation
/// adds what happens around a claim and a release (a journal, presence in Redis).
pub trait Registry: Send + Sync {
    /// This node's sessions.
    fn local(&self) -> &LocalRegistry;
    /// Makes `handle` the holder of `vehicle_id`, returning the previous holder if any.
    fn claim(&self, vehicle_id: &str, handle: SessionHandle) -> Option<SessionHandle> {
        let protocol = handle.protocol;
        let old = self.local().claim(vehicle_id, handle);
        self.claimed(vehicle_id, protocol, old.is_some());
        old
    }
    /// Releases `vehicle_id` if session `session_id` still holds it; true if it did.
    fn release(&self, vehicle_id: &str, session_id: u64) -> bool {
        let held = self.local().release(vehicle_id, session_id);
        if held {
            self.released(vehicle_id);
        }
        held
    }
    /// Told after each claim (`replaced`: another session of this node held the vehicle):
    /// where a registry records presence beyond this process (Redis, the presence journal).
    fn claimed(&self, _vehicle_id: &str, _protocol: Protocol, _replaced: bool) {}
    /// Told after each release that released.
    fn released(&self, _vehicle_id: &str) {}
    /// The current holder of `vehicle_id`.
    fn get(&self, vehicle_id: &str) -> Option<SessionHandle> {
        self.local().get(vehicle_id)
    }
    /// Number of vehicles online.
    fn online(&self) -> usize {
        self.local().online()
    }
    /// Every online vehicle with its handle (for shutdown).
    fn all(&self) -> Vec<Online> {
        self.local().all()
    }
    /// Up to `limit` online vehicles whose ids are within `from`..`to`, ordered by id (a
    /// page of the operator API's list, without copying every handle).
    fn range(&self, from: Bound<&str>, to: Bound<&str>, limit: usize) -> Vec<Online> {
        self.local().range(from, to, limit)
    }
    /// Whether another node holds `vehicle` now, or will settle its presence (cluster mode,
    /// asked after [`release`](Self::release); while the node drains, always): a session
    /// that ends on this node must not publish the vehicle offline then. Always false on one
    /// node.
    fn held_elsewhere(&self, _vehicle: &str) -> Pending<bool> {
        Box::pin(async { false })
    }
    /// Resolves once the claims made so far are visible to the other nodes (cluster mode:
    /// written to Redis, or given up on after a short wait while Redis does not answer), so
    /// that a vehicle is never announced online before a surviving node could find it if
    /// this node died. At once on one node.
    fn claims_written(&self) -> Pending<()> {
        Box::pin(async {})
    }
    /// Of `vehicles`, those another node holds (cluster mode); each such node is told that
    /// commands wait for them. Always empty on one node.
    fn wake_elsewhere(&self, _vehicles: Vec<String>) -> Pending<std::collections::HashSet<String>> {
        Box::pin(async { Default::default() })
    }
    /// Of `vehicles`, those another node's session holds, each with that node (cluster mode,
    /// for the operator API). Always empty on one node.
    fn holders_elsewhere(&self, _vehicles: Vec<String>) -> Pending<HashMap<String, String>> {
        Box::pin(async { HashMap::new() })
    }
    /// The node whose session holds `vehicle`, when another node's does.
    fn holder_elsewhere(&self, vehicle: &str) -> Pending<Option<String>> {
        let vehicle = vehicle.to_owned();
        let holders = self.holders_elsewhere(vec![vehicle.clone()]);
        Box::pin(async move { holders.await.remove(&vehicle) })
    }
    /// Tells the other nodes (cluster mode) to close `vehicle`'s connection if they hold it
    /// (reason `kicked`) and, with `ban_s` > 0, to refuse its logins that long if the vehicle
    /// is connected anywhere (`held_here`: to this node); true if another node held it.
    /// Always false on one node.
    fn kick_elsewhere(&self, _vehicle: &str, _ban_s: u64, _held_here: bool) -> Pending<bool> {
        Box::pin(async { false })
    }
}

/// The registry's map, and its ids in order (for [`Registry::range`]).
#[derive(Debug, Default)]
struct Held {
    map: HashMap<Arc<str>, SessionHandle>,
    order: BTreeSet<Arc<str>>,
}

/// The in-process registry.
#[derive(Debug, Default, Clone)]
pub struct LocalRegistry {
    inner: Arc<Mutex<Held>>,
}

impl LocalRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Held> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Registry for LocalRegistry {
    fn local(&self) -> &LocalRegistry {
        self
    }
}

/// The look-ups every registry answers from its [`LocalRegistry`] (inherent, so that the
/// trait's defaults reach them and not themselves).
impl LocalRegistry {
    pub fn claim(&self, vehicle_id: &str, handle: SessionHandle) -> Option<SessionHandle> {
        let mut m = self.map();
        let id: Arc<str> = Arc::from(vehicle_id);
        let old = m.map.insert(id.clone(), handle);
        if old.is_none() {
            m.order.insert(id);
        }
        metrics::gauge!("vgate_vehicles_online").set(m.map.len() as f64);
        old
    }

    pub fn release(&self, vehicle_id: &str, session_id: u64) -> bool {
        let mut m = self.map();
        let held = m.map.get(vehicle_id).is_some_and(|h| h.id == session_id);
        if held {
            m.map.remove(vehicle_id);
            m.order.remove(vehicle_id);
        }
        metrics::gauge!("vgate_vehicles_online").set(m.map.len() as f64);
        held
    }

    pub fn get(&self, vehicle_id: &str) -> Option<SessionHandle> {
        self.map().map.get(vehicle_id).cloned()
    }

    pub fn online(&self) -> usize {
        self.map().map.len()
    }

    pub fn all(&self) -> Vec<Online> {
        self.map()
            .map
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    pub fn range(&self, from: Bound<&str>, to: Bound<&str>, limit: usize) -> Vec<Online> {
        let m = self.map();
        m.order
            .range::<str, _>((from, to))
            .take(limit)
            .filter_map(|id| Some((id.to_string(), m.map.get(id)?.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: u64) -> (SessionHandle, ControlReceiver) {
        let (tx, rx) = control();
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

    #[tokio::test]
    async fn the_control_slot_gives_the_first_close_before_a_delivery_and_fails_once_gone() {
        let (tx, mut rx) = control();
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx)
        });
        tokio::task::yield_now().await;
        assert_eq!(tx.try_send(Control::Deliver), Ok(()));
        let (first, mut rx) = waiting.await.unwrap();
        assert_eq!(first, Some(Control::Deliver), "a waiting session is woken");
        tx.try_send(Control::Deliver).unwrap();
        tx.try_send(Control::Close(PresenceReason::Takeover))
            .unwrap();
        tx.send(Control::Close(PresenceReason::Kicked))
            .await
            .unwrap();
        assert_eq!(
            rx.recv().await,
            Some(Control::Close(PresenceReason::Takeover))
        );
        assert_eq!(rx.recv().await, Some(Control::Deliver));
        drop(rx);
        assert_eq!(tx.try_send(Control::Deliver), Err(SessionGone));
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

    #[test]
    fn range_walks_online_ids_in_order() {
        let r = LocalRegistry::new();
        let mut rxs = Vec::new();
        for (i, v) in ["c", "a", "d", "b"].into_iter().enumerate() {
            let (h, rx) = handle(i as u64 + 1);
            rxs.push(rx);
            r.claim(v, h);
        }
        let (h, _rx) = handle(9);
        r.claim("b", h); // a takeover keeps one entry
        r.release("d", 3);
        let ids =
            |v: Vec<(String, SessionHandle)>| v.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        assert_eq!(
            ids(r.range(Bound::Unbounded, Bound::Unbounded, 10)),
            ["a", "b", "c"]
        );
        assert_eq!(
            ids(r.range(Bound::Excluded("a"), Bound::Included("b"), 10)),
            ["b"]
        );
        assert_eq!(
            ids(r.range(Bound::Excluded("a"), Bound::Unbounded, 1)),
            ["b"]
        );
    }
}
