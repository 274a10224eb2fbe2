//! PUBACK tracking: which of our publishes the broker has, per publish.
//!
//! rumqttc 0.25 gives no handle per publish. What it does give, in order, is one
//! `Outgoing::Publish(pkid)` notification per publish request it writes (requests are
//! taken from its channel in the order we sent them), and `Incoming::PubAck(pkid)`.
//! So each publish gets a [`Ticket`] pushed on `unsent` just before it enters rumqttc's
//! channel (by one task, so the order is the channel's), and:
//!
//! - on `Outgoing::Publish(pkid)` for a pkid already `awaiting`, it is rumqttc replaying
//!   an unacknowledged publish after a reconnect (it keeps them, with their pkid, and sends
//!   them first): nothing changes;
//! - otherwise the oldest `unsent` ticket is the one written: QoS 0 resolves now, QoS 1 waits
//!   in `awaiting[pkid]`;
//! - on `Incoming::PubAck(pkid)` the ticket in `awaiting[pkid]` resolves.
//!
//! A collision: rumqttc gave a new publish a pkid still awaiting its PUBACK (ids are shared
//! with SUBSCRIBE and wrap at `inflight`). It announces `Outgoing::AwaitAck(pkid)` and holds
//! the publish; the oldest `unsent` ticket moves to `collided`. When the old PUBACK arrives
//! rumqttc 0.25 reports it (`Incoming::PubAck(pkid)`, which resolves the old ticket), then
//! writes the held publish and emits `Outgoing::Publish(pkid)` (0.24 emitted the two in the
//! other order). So an `Outgoing::Publish(pkid)` matching `collided` while no ticket awaits
//! `pkid` puts the collided one in `awaiting`. While the old ticket still awaits `pkid`, the
//! same event is rumqttc replaying the old publish after a reconnect.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{oneshot, Notify};

use crate::BridgeError;

/// The outcome of a publish, for whoever waits on its `Delivery`.
pub(crate) type Outcome = oneshot::Sender<Result<(), BridgeError>>;

/// Where a ticket's outcome goes: its own channel, or one shared with the store-and-forward
/// relay, which may resolve it first (once a copy is in the spool); whoever takes the sender
/// first resolves the `Delivery`.
#[derive(Debug)]
pub(crate) enum Done {
    One(Outcome),
    Shared(Arc<Mutex<Option<Outcome>>>),
}

impl Done {
    pub fn send(self, outcome: Result<(), BridgeError>) {
        let tx = match self {
            Done::One(tx) => Some(tx),
            Done::Shared(s) => s.lock().unwrap_or_else(|e| e.into_inner()).take(),
        };
        // The caller may have dropped its Delivery: nobody to tell.
        if let Some(tx) = tx {
            let _ = tx.send(outcome);
        }
    }
}

/// One publish on its way, resolved when the broker has it.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub done: Done,
    pub qos0: bool,
    pub kind: &'static str,
    pub queued_at: Instant,
}

impl Ticket {
    fn resolve(self) {
        self.finish(Ok(()));
    }

    fn finish(self, outcome: Result<(), BridgeError>) {
        if outcome.is_err() {
            metrics::counter!("vgate_mqtt_publish_rejected_total", "type" => self.kind)
                .increment(1);
            self.done.send(outcome);
            return;
        }
        metrics::histogram!("vgate_mqtt_publish_latency_seconds")
            .record(self.queued_at.elapsed().as_secs_f64());
        metrics::counter!("vgate_mqtt_published_total", "type" => self.kind).increment(1);
        self.done.send(Ok(()));
    }
}

#[derive(Debug, Default)]
struct Inner {
    unsent: VecDeque<Ticket>,
    awaiting: HashMap<u16, Ticket>,
    collided: Option<(u16, Ticket)>,
}

impl Inner {
    fn len(&self) -> usize {
        self.unsent.len() + self.awaiting.len() + usize::from(self.collided.is_some())
    }
}

/// Tickets of publishes handed to rumqttc and not yet acknowledged.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    inner: Mutex<Inner>,
    idle: Notify,
    /// Publishes the broker took over this connection (PUBACK, or written for QoS 0).
    published: AtomicU64,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent data (single push/pop/insert).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A publish is about to enter rumqttc's request channel.
    pub fn sending(&self, t: Ticket) {
        self.lock().unsent.push_back(t);
    }

    /// The publish last announced by [`Tracker::sending`] never reached rumqttc.
    pub fn unsend_last(&self) {
        self.lock().unsent.pop_back();
        self.notify_if_idle();
    }

    /// rumqttc could not write the next publish yet: its pkid is still awaiting a PUBACK.
    pub fn await_ack(&self, pkid: u16) {
        let mut inner = self.lock();
        match inner.unsent.pop_front() {
            Some(t) => inner.collided = Some((pkid, t)),
            None => tracing::warn!(pkid, "collision on a publish that was not tracked"),
        }
    }

    /// rumqttc wrote a publish with `pkid` (0 for QoS 0).
    pub fn outgoing_publish(&self, pkid: u16) {
        let mut inner = self.lock();
        if !inner.awaiting.contains_key(&pkid)
            && matches!(inner.collided, Some((p, _)) if p == pkid)
        {
            // The old publish's PUBACK came (and resolved its ticket): rumqttc wrote the one
            // it held.
            if let Some((_, t)) = inner.collided.take() {
                inner.awaiting.insert(pkid, t);
            }
            return;
        }
        if pkid != 0 && inner.awaiting.contains_key(&pkid) {
            tracing::debug!(pkid, "publish replayed after reconnect");
            return;
        }
        let Some(t) = inner.unsent.pop_front() else {
            tracing::warn!(pkid, "publish written that was not tracked");
            return;
        };
        if t.qos0 || pkid == 0 {
            drop(inner);
            self.published.fetch_add(1, Ordering::Relaxed);
            t.resolve();
            self.notify_if_idle();
        } else {
            inner.awaiting.insert(pkid, t);
        }
    }

    /// The broker acknowledged `pkid`.
    pub fn puback(&self, pkid: u16) {
        self.puback_with(pkid, Ok(()));
    }

    /// The broker acknowledged `pkid`, with an MQTT 5 outcome.
    pub fn puback_with(&self, pkid: u16, outcome: Result<(), BridgeError>) {
        let t = self.lock().awaiting.remove(&pkid);
        match t {
            Some(t) => {
                if outcome.is_ok() {
                    self.published.fetch_add(1, Ordering::Relaxed);
                }
                t.finish(outcome)
            }
            None => tracing::debug!(pkid, "PUBACK for an untracked packet id"),
        }
        self.notify_if_idle();
    }

    /// Publishes not yet acknowledged.
    /// Publishes the broker has taken over this connection since it started.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    pub fn outstanding(&self) -> usize {
        self.lock().len()
    }

    fn notify_if_idle(&self) {
        if self.outstanding() == 0 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until every tracked publish is acknowledged.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.outstanding() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(qos0: bool) -> (Ticket, oneshot::Receiver<Result<(), BridgeError>>) {
        let (done, rx) = oneshot::channel();
        let t = Ticket {
            done: Done::One(done),
            qos0,
            kind: "location",
            queued_at: Instant::now(),
        };
        (t, rx)
    }

    #[test]
    fn tickets_resolve_on_their_own_puback_in_any_order() {
        let tr = Tracker::default();
        let (a, mut ra) = ticket(false);
        let (b, mut rb) = ticket(false);
        tr.sending(a);
        tr.sending(b);
        tr.outgoing_publish(1);
        tr.outgoing_publish(2);
        tr.puback(2);
        assert!(rb.try_recv().is_ok());
        assert!(ra.try_recv().is_err());
        tr.puback(1);
        assert!(ra.try_recv().is_ok());
        assert_eq!(tr.outstanding(), 0);
    }

    #[test]
    fn replayed_publish_after_reconnect_does_not_take_the_next_ticket() {
        let tr = Tracker::default();
        let (a, mut ra) = ticket(false);
        let (b, mut rb) = ticket(false);
        tr.sending(a);
        tr.outgoing_publish(1);
        tr.sending(b);
        // reconnect: rumqttc replays pkid 1, then writes b as pkid 2
        tr.outgoing_publish(1);
        tr.outgoing_publish(2);
        tr.puback(1);
        assert!(ra.try_recv().is_ok());
        assert!(rb.try_recv().is_err());
        tr.puback(2);
        assert!(rb.try_recv().is_ok());
    }

    #[test]
    fn collided_publish_takes_over_its_pkid_after_the_old_puback() {
        let tr = Tracker::default();
        let (a, mut ra) = ticket(false);
        let (b, mut rb) = ticket(false);
        let (c, mut rc) = ticket(false);
        tr.sending(a);
        tr.outgoing_publish(4);
        tr.sending(b);
        tr.sending(c);
        tr.await_ack(4); // b collides with a
                         // reconnect while the collision is held: a is replayed
        tr.outgoing_publish(4);
        assert!(ra.try_recv().is_err());
        // a's PUBACK frees pkid 4: rumqttc (0.25) reports it, then writes b
        tr.puback(4);
        assert!(ra.try_recv().is_ok());
        tr.outgoing_publish(4);
        assert!(rb.try_recv().is_err());
        tr.outgoing_publish(1);
        tr.puback(1);
        assert!(rc.try_recv().is_ok());
        tr.puback(4);
        assert!(rb.try_recv().is_ok());
        assert_eq!(tr.outstanding(), 0);
    }

    #[test]
    fn a_refused_puback_fails_its_ticket_and_frees_the_pkid_for_the_collided_one() {
        let tr = Tracker::default();
        let (a, mut ra) = ticket(false);
        let (b, mut rb) = ticket(false);
        tr.sending(a);
        tr.outgoing_publish(2);
        tr.sending(b);
        tr.await_ack(2); // b collides with a
        tr.puback_with(
            2,
            Err(BridgeError::Rejected {
                reason: "NotAuthorized".into(),
            }),
        );
        assert!(matches!(
            ra.try_recv(),
            Ok(Err(BridgeError::Rejected { .. }))
        ));
        tr.outgoing_publish(2);
        assert!(rb.try_recv().is_err());
        tr.puback(2);
        assert_eq!(rb.try_recv(), Ok(Ok(())));
        assert_eq!(tr.outstanding(), 0);
    }

    #[test]
    fn a_shared_outcome_resolves_once_whoever_takes_it_first() {
        let tr = Tracker::default();
        let (tx, mut rx) = oneshot::channel();
        let shared = Arc::new(Mutex::new(Some(tx)));
        tr.sending(Ticket {
            done: Done::Shared(shared.clone()),
            qos0: false,
            kind: "location",
            queued_at: Instant::now(),
        });
        tr.outgoing_publish(3);
        // The relay rescued it to the spool first.
        Done::Shared(shared).send(Ok(()));
        assert_eq!(rx.try_recv(), Ok(Ok(())));
        // The PUBACK after the reconnect finds nobody to tell, and the ticket is gone.
        tr.puback(3);
        assert_eq!(tr.outstanding(), 0);
    }

    #[test]
    fn qos0_resolves_when_written() {
        let tr = Tracker::default();
        let (a, mut ra) = ticket(true);
        tr.sending(a);
        assert_eq!(tr.outstanding(), 1);
        tr.outgoing_publish(0);
        assert!(ra.try_recv().is_ok());
        assert_eq!(tr.outstanding(), 0);
    }
}
