//! Store-and-forward: the publisher's queue to rumqttc through the disk spool when the
//! broker cannot take publishes now (used instead of `publisher::forward` when a spool is
//! configured).
//!
//! ```text
//!  Publisher queue --> dispatcher --direct (feed, 16)--------------------> feeder --> rumqttc
//!                          |                                               ^   |
//!                          +--spill: append + fsync, Delivery resolves --> spool <-- acker (delete on PUBACK)
//! ```
//!
//! The dispatcher takes jobs in queue order. It sends a job *direct* (to the feeder, which
//! hands it to rumqttc; its `Delivery` resolves on PUBACK) while the connection is up, the
//! broker keeps up (fewer than `inflight` publishes unacknowledged) and the feeder takes it at
//! once. Otherwise it starts *spilling*: that job and every later one are appended to the
//! spool in batches (one fsync per batch, then their `Delivery`s resolve). The feeder always
//! sends its direct jobs first, then the spool in id order; the dispatcher goes back to direct
//! only once the feeder has handed every spooled record to rumqttc. So publishes reach
//! rumqttc in exactly the order they were queued (per vehicle and overall), whichever way
//! each one went. The acker deletes a spooled record once its PUBACK comes.
//!
//! Direct publishes keep a copy (`Shared::unacked`) until their PUBACK. When the connection
//! is lost the dispatcher *rescues* them: appends the copies to the spool and resolves their
//! `Delivery`s, so no vehicle waits for the broker to come back. rumqttc re-sends the
//! originals first after the reconnect; the spooled copies follow as duplicates (same
//! `event_id`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::config::Qos;
use crate::connection::Client;
use crate::publisher::Job;
use crate::spool::{Record, Spool};
use crate::tracker::{Done, Outcome, Ticket, Tracker};
use crate::BridgeError;

/// Direct jobs waiting for the feeder: kept small, since they wait for the broker (not for
/// the spool) if the connection breaks now.
const FEED: usize = 16;
/// Most jobs appended to the spool in one transaction (one fsync).
const BATCH: usize = 256;
/// Spool records read ahead by the feeder.
const READ_AHEAD: usize = 64;

/// The three tasks of store-and-forward.
#[derive(Debug)]
pub(crate) struct Relay {
    pub dispatcher: JoinHandle<()>,
    pub feeder: JoinHandle<()>,
    pub acker: JoinHandle<()>,
}

/// What the relay tasks share.
pub(crate) struct Shared {
    pub spool: Arc<Spool>,
    pub client: Client,
    pub tracker: Arc<Tracker>,
    /// The MQTT connection is up (set by the event loop).
    pub connected: Arc<AtomicBool>,
    /// rumqttc's inflight window.
    pub inflight: usize,
    /// The publisher's queue depth gauge.
    pub depth: Arc<AtomicI64>,
    /// Signalled by the event loop when the connection is lost: time to rescue.
    pub lost: Arc<Notify>,
    /// Direct publishes not yet acknowledged, in send order, with a copy of each: when the
    /// connection is lost they are copied to the spool, so their `Delivery`s resolve then
    /// rather than at the reconnect.
    pub unacked: Mutex<VecDeque<(Record, SharedDone)>>,
}

/// A `Delivery`'s sender, shared by its ticket and the rescue list: the first to take it
/// resolves the `Delivery`.
pub(crate) type SharedDone = Arc<Mutex<Option<Outcome>>>;

/// A publish sent direct, on its way to the feeder.
struct Direct {
    rec: Record,
    done: SharedDone,
    queued_at: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pending(d: &SharedDone) -> bool {
    lock(d).is_some()
}

/// Starts the relay tasks on `rx`, the publisher's queue.
pub(crate) fn start(rx: mpsc::Receiver<Job>, sh: Shared) -> Relay {
    let (feed_tx, feed_rx) = mpsc::channel(FEED);
    let (ack_tx, ack_rx) = mpsc::channel(sh.inflight + FEED + READ_AHEAD);
    // The id of the last spooled record handed to rumqttc (ids start at 1).
    let sent = Arc::new(AtomicU64::new(0));
    let sh = Arc::new(sh);
    Relay {
        dispatcher: tokio::spawn(dispatch(rx, feed_tx, sh.clone(), sent.clone())),
        feeder: tokio::spawn(feed(feed_rx, ack_tx, sh.clone(), sent)),
        acker: tokio::spawn(ack(ack_rx, sh.spool.clone())),
    }
}

impl Shared {
    /// Whether a job may go direct now, as far as the connection and the broker go.
    fn broker_keeps_up(&self) -> bool {
        self.connected.load(Ordering::SeqCst) && self.tracker.outstanding() < self.inflight
    }
}

fn record(job: &Job) -> Record {
    Record {
        topic: job.topic.clone(),
        payload: job.payload.clone(),
        qos: job.qos,
        retain: job.retain,
        kind: job.kind,
        correlation: job.correlation.clone(),
    }
}

async fn dispatch(
    mut rx: mpsc::Receiver<Job>,
    feed_tx: mpsc::Sender<Direct>,
    sh: Arc<Shared>,
    sent: Arc<AtomicU64>,
) {
    // Whatever a previous run left in the spool goes first.
    let mut spilling = sh.spool.len() > 0;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => batch.push(job),
                None => return,
            },
            _ = sh.lost.notified() => {
                // The copies go before anything newer.
                spilling |= rescue(&sh).await;
                continue;
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let d = sh.depth.fetch_sub(batch.len() as i64, Ordering::Relaxed) - batch.len() as i64;
        metrics::gauge!("vgate_mqtt_queue_depth").set(d as f64);
        let mut to_spool = Vec::new();
        for job in batch.drain(..) {
            if spilling
                && to_spool.is_empty()
                && sent.load(Ordering::SeqCst) >= sh.spool.last_id()
                && sh.broker_keeps_up()
            {
                tracing::info!("MQTT spool replayed; publishing directly again");
                spilling = false;
            }
            if spilling || !sh.broker_keeps_up() {
                if !spilling {
                    tracing::info!(
                        connected = sh.connected.load(Ordering::SeqCst),
                        "MQTT broker not keeping up; spooling publishes to disk"
                    );
                }
                spilling = true;
                to_spool.push(job);
                continue;
            }
            let rec = record(&job);
            let done: SharedDone = Arc::new(Mutex::new(Some(job.done)));
            {
                let mut unacked = lock(&sh.unacked);
                while unacked.front().is_some_and(|(_, d)| !pending(d)) {
                    unacked.pop_front();
                }
                if unacked.len() > 4 * (sh.inflight + FEED) {
                    // An old one still waits: drop the acknowledged ones behind it.
                    unacked.retain(|(_, d)| pending(d));
                }
                unacked.push_back((rec.clone(), done.clone()));
            }
            let direct = Direct {
                rec,
                done,
                queued_at: job.queued_at,
            };
            match feed_tx.try_send(direct) {
                Ok(()) => {}
                Err(TrySendError::Full(direct)) => {
                    tracing::info!("MQTT client busy; spooling publishes to disk");
                    lock(&sh.unacked).pop_back();
                    spilling = true;
                    if let Some(tx) = lock(&direct.done).take() {
                        to_spool.push(Job {
                            topic: direct.rec.topic,
                            payload: direct.rec.payload,
                            qos: direct.rec.qos,
                            retain: direct.rec.retain,
                            kind: direct.rec.kind,
                            correlation: direct.rec.correlation,
                            done: tx,
                            queued_at: direct.queued_at,
                        });
                    }
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
        if !to_spool.is_empty() {
            if !sh.connected.load(Ordering::SeqCst) {
                // Older than these: their copies go first.
                let _ = rescue(&sh).await;
            }
            let items = to_spool
                .into_iter()
                .map(|j| (record(&j), Done::One(j.done)))
                .collect();
            spool_records(items, &sh.spool).await;
        }
    }
}

/// The connection is gone: copies the direct publishes still unacknowledged (in flight in
/// rumqttc, or waiting for the feeder) to the spool and resolves their `Delivery`s; true
/// if there were any. rumqttc
/// still sends the originals after the reconnect, before anything newer, and the copies are
/// sent again from the spool: duplicates with the same `event_id`, never a loss or a
/// reordering of first copies.
async fn rescue(sh: &Shared) -> bool {
    let items: Vec<(Record, Done)> = lock(&sh.unacked)
        .drain(..)
        .filter(|(_, d)| pending(d))
        .map(|(r, d)| (r, Done::Shared(d)))
        .collect();
    if items.is_empty() {
        return false;
    }
    tracing::info!(
        publishes = items.len(),
        "MQTT connection lost; in-flight publishes copied to the spool"
    );
    spool_records(items, &sh.spool).await;
    true
}

/// Appends `items` to the spool, resolving each one's `Delivery` once it is durable; waits
/// while the spool is full (`backpressure`).
async fn spool_records(mut items: Vec<(Record, Done)>, spool: &Arc<Spool>) {
    while !items.is_empty() {
        let records: Vec<Record> = items.iter().map(|(r, _)| r.clone()).collect();
        // Registered before the append, so a deletion in between is not missed.
        let space = spool.space.notified();
        let sp = spool.clone();
        let appended = tokio::task::spawn_blocking(move || sp.append(&records))
            .await
            .unwrap_or_else(|e| {
                Err(BridgeError::File {
                    key: "mqtt.spool.dir",
                    path: String::new(),
                    reason: format!("spool writer failed: {e}"),
                })
            });
        match appended {
            Ok(a) => {
                let rest = items.split_off(a.count);
                for (_, done) in items {
                    done.send(Ok(()));
                }
                items = rest;
                if a.count == 0 {
                    tracing::debug!(
                        bytes = spool.bytes(),
                        "MQTT spool full; waiting for PUBACKs"
                    );
                    // Bounded wait, then check again: never stuck on a missed signal.
                    let _ = tokio::time::timeout(Duration::from_millis(200), space).await;
                }
            }
            Err(e) => {
                // Not acknowledged: the gateway does not answer the vehicle, which resends.
                tracing::error!(error = %e, lost = items.len(), "MQTT spool write failed");
                for (_, done) in items.drain(..) {
                    done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Hands a direct publish to rumqttc, its ticket registered first.
async fn send_direct(d: Direct, sh: &Shared) -> Result<(), BridgeError> {
    sh.tracker.sending(Ticket {
        done: Done::Shared(d.done),
        qos0: d.rec.qos == Qos::AtMostOnce,
        kind: d.rec.kind,
        queued_at: d.queued_at,
    });
    let r = d.rec;
    let sent = sh
        .client
        .publish(r.topic, r.qos, r.retain, r.payload, r.correlation)
        .await;
    if sent.is_err() {
        sh.tracker.unsend_last();
    }
    sent
}

async fn feed(
    mut feed_rx: mpsc::Receiver<Direct>,
    ack_tx: mpsc::Sender<(u64, oneshot::Receiver<Result<(), BridgeError>>)>,
    sh: Arc<Shared>,
    sent: Arc<AtomicU64>,
) {
    let mut ahead: VecDeque<(u64, Record)> = VecDeque::new();
    loop {
        // Direct jobs first: any of them is older than every record not yet sent.
        match feed_rx.try_recv() {
            Ok(direct) => {
                if send_direct(direct, &sh).await.is_err() {
                    return;
                }
                continue;
            }
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {}
        }
        let last = sh.spool.last_id();
        if ahead.is_empty() && last > sent.load(Ordering::SeqCst) {
            match sh.spool.read_after(sent.load(Ordering::SeqCst), READ_AHEAD) {
                Ok(rows) if rows.is_empty() => {
                    // Dropped (drop_oldest) before being sent: nothing left up to `last`.
                    sent.fetch_max(last, Ordering::SeqCst);
                }
                Ok(rows) => ahead.extend(rows),
                Err(e) => {
                    tracing::error!(error = %e, "MQTT spool read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        if let Some((id, r)) = ahead.pop_front() {
            if id <= sh.spool.dropped_upto() {
                // Read ahead, then dropped to make room (drop_oldest): not to be sent.
                sent.fetch_max(id, Ordering::SeqCst);
                continue;
            }
            let (done, rx) = oneshot::channel();
            sh.tracker.sending(Ticket {
                done: Done::One(done),
                qos0: r.qos == Qos::AtMostOnce,
                kind: r.kind,
                queued_at: Instant::now(),
            });
            let handed = sh
                .client
                .publish(r.topic, r.qos, r.retain, r.payload, r.correlation)
                .await;
            if handed.is_err() {
                sh.tracker.unsend_last();
                return;
            }
            sent.fetch_max(id, Ordering::SeqCst);
            if ack_tx.send((id, rx)).await.is_err() {
                return;
            }
            continue;
        }
        if sh.spool.last_id() > sent.load(Ordering::SeqCst) {
            continue;
        }
        tokio::select! {
            biased;
            job = feed_rx.recv() => match job {
                Some(direct) => {
                    if send_direct(direct, &sh).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = sh.spool.appended.notified() => {}
        }
    }
}

/// Deletes spooled records once the broker has them (or refused them: an MQTT 5 error reason
/// code would refuse them again on every replay).
async fn ack(
    mut ack_rx: mpsc::Receiver<(u64, oneshot::Receiver<Result<(), BridgeError>>)>,
    spool: Arc<Spool>,
) {
    let mut done: Vec<u64> = Vec::new();
    loop {
        let next = ack_rx.recv().await;
        let closing = match next {
            None => true,
            Some((id, rx)) => match rx.await {
                Ok(Ok(())) => {
                    done.push(id);
                    false
                }
                Ok(Err(e)) => {
                    tracing::warn!(id, error = %e, "spooled publish refused by the broker; deleted");
                    done.push(id);
                    false
                }
                // The ticket was dropped: the bridge is closing. The record stays for the
                // next start.
                Err(_) => true,
            },
        };
        if !done.is_empty() && (closing || ack_rx.is_empty() || done.len() >= BATCH) {
            let ids = std::mem::take(&mut done);
            let n = ids.len() as u64;
            let sp = spool.clone();
            match tokio::task::spawn_blocking(move || sp.remove(&ids)).await {
                Ok(Ok(())) => {
                    metrics::counter!("vgate_spool_events_total", "op" => "replayed").increment(n)
                }
                Ok(Err(e)) => tracing::error!(error = %e, "MQTT spool delete failed"),
                Err(e) => tracing::error!(error = %e, "MQTT spool delete task failed"),
            }
        }
        if closing {
            return;
        }
    }
}
