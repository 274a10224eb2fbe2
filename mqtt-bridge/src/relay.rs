//! Store-and-forward: the publisher's queue to rumqttc, through the disk spool while the
//! broker is away (used instead of `publisher::forward` when a spool is configured).
//!
//! ```text
//!  Publisher queue --> dispatcher --direct (feed, 16)--------------------> feeder --> rumqttc
//!                          |                                               ^   |
//!                          +--spill: append + fsync, Delivery resolves --> spool <-- acker (delete on PUBACK)
//! ```
//!
//! The dispatcher takes jobs in queue order. While the connection is up it sends each job
//! *direct* (to the feeder, which hands it to rumqttc; its `Delivery` resolves on PUBACK).
//! When the feeder has no room (rumqttc's inflight window is full, or the broker is simply
//! slower than the publishers) the dispatcher *waits* for room: a broker that is only busy
//! slows the publishers down through the bounded queue, as without a spool, and costs no
//! fsync. The spool is for a broker that is *away*: the dispatcher starts *spilling* when the
//! connection is down or is lost while it waits, or when the connection is up but the feeder
//! has taken nothing for `spill_after` (no PUBACK comes: a stuck broker, a dead peer the
//! keepalive has not noticed yet). Then that job and every later one are appended to the
//! spool in batches (one fsync per batch, then their `Delivery`s resolve). The feeder always
//! sends its direct jobs first, then the spool in id order; the dispatcher goes back to
//! direct only once the feeder has handed every spooled record to rumqttc. While the broker
//! is connected and takes the replay, the spool does not grow: the dispatcher appends a batch
//! only once the feeder has replayed twice as much since the previous one (`PACE`), and with
//! little left (`CATCH_UP`) it waits for the replay to end rather than appending more. So
//! publishes reach rumqttc in exactly the order they were queued (per vehicle and overall),
//! whichever way each one went. The acker deletes a spooled record once its PUBACK comes.
//!
//! Direct publishes keep a copy (`Shared::unacked`) until their PUBACK. When the connection
//! is lost, or the broker stalls as above, the dispatcher *rescues* them: appends the copies
//! to the spool and resolves their `Delivery`s, so no vehicle waits for the broker to come
//! back. rumqttc still sends the originals (first, after a reconnect); the spooled copies
//! follow as duplicates (same `event_id`).

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
/// Spooled records not yet replayed few enough for the dispatcher to wait for the feeder
/// (the broker connected and taking them) instead of appending more: how it gets back to
/// direct under a steady load.
const CATCH_UP: u64 = BATCH as u64;
/// With more than `CATCH_UP` left to replay (after an outage) and the broker connected, the
/// spool still takes new publishes, but a batch of `n` only once the feeder has replayed
/// `PACE * n` records since the previous batch: the backlog shrinks at least at half the
/// rate the broker takes, rather than growing whenever the publishers are faster than the
/// replay (a busy broker is backpressure, not a reason to fill the disk).
const PACE: u64 = 2;
/// How often the feeder looks again whether the connection is back, with spooled records to
/// replay.
const AWAY_POLL: Duration = Duration::from_millis(20);

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
    /// How long the broker may take nothing while connected (no room in the feeder, or the
    /// spool replay not moving) before the dispatcher spills to the spool and rescues what
    /// is in flight (`mqtt.spool.spill_after_ms`).
    pub spill_after: Duration,
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

/// How far the feeder has replayed the spool.
#[derive(Default)]
struct Replay {
    /// The id of the last spooled record handed to rumqttc (ids start at 1), or skipped
    /// because `drop_oldest` deleted it.
    sent: AtomicU64,
    /// Signalled when `sent` moves.
    moved: Notify,
}

impl Replay {
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn advance(&self, id: u64) {
        self.sent.fetch_max(id, Ordering::SeqCst);
        self.moved.notify_one();
    }
}

/// Why the dispatcher spills: the broker is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Away {
    /// Not connected.
    Down,
    /// The connection was lost (the event loop's signal).
    Lost,
    /// Connected, but the broker took nothing for `spill_after`.
    Stalled,
}

impl Away {
    fn as_str(self) -> &'static str {
        match self {
            Away::Down => "not connected",
            Away::Lost => "connection lost",
            Away::Stalled => "connected but no progress",
        }
    }
}

/// Room for a direct job, or why there is none.
enum Room<'a> {
    Ready(mpsc::Permit<'a, Direct>),
    Away(Away),
    /// The feeder is gone (the bridge is closing).
    Closed,
}

/// Whether the feeder has replayed the spool.
enum CatchUp {
    Done,
    NotYet,
    Away(Away),
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
    let replay = Arc::new(Replay::default());
    let sh = Arc::new(sh);
    Relay {
        dispatcher: tokio::spawn(dispatch(rx, feed_tx, sh.clone(), replay.clone())),
        feeder: tokio::spawn(feed(feed_rx, ack_tx, sh.clone(), replay)),
        acker: tokio::spawn(ack(ack_rx, sh.spool.clone())),
    }
}

impl Shared {
    fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
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
    replay: Arc<Replay>,
) {
    // Whatever a previous run left in the spool goes first.
    let mut spilling = sh.spool.len() > 0;
    // The replay position at which waiting for the feeder last stalled: no new wait (and no
    // new log line) until it moves.
    let mut stalled_at: Option<u64> = None;
    // The replay position the feeder is to reach before the next batch is appended (`PACE`).
    let mut pace_to = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => batch.push(job),
                None => return,
            },
            _ = sh.lost.notified() => {
                // The copies go before anything newer.
                spilling |= rescue(&sh, Away::Lost).await;
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
        // Why the in-flight direct publishes are to be rescued before `to_spool` is appended.
        let mut rescue_for: Option<Away> = None;
        for job in batch.drain(..) {
            if spilling && to_spool.is_empty() && sh.connected() {
                let last = sh.spool.last_id();
                let target = if last.saturating_sub(replay.sent()) <= CATCH_UP {
                    last
                } else {
                    pace_to
                };
                match wait_replay(&sh, &replay, target, &mut stalled_at).await {
                    CatchUp::Done => {
                        tracing::info!("MQTT spool caught up; publishing directly again");
                        spilling = false;
                    }
                    CatchUp::NotYet => {}
                    CatchUp::Away(why) => {
                        if why == Away::Stalled {
                            tracing::info!(
                                after = ?sh.spill_after,
                                "MQTT broker connected but not taking the spool replay"
                            );
                        }
                        rescue_for = Some(why);
                    }
                }
            }
            if !spilling {
                let room = if sh.connected() {
                    room(&feed_tx, &sh).await
                } else {
                    Room::Away(Away::Down)
                };
                match room {
                    Room::Ready(permit) => {
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
                        permit.send(Direct {
                            rec,
                            done,
                            queued_at: job.queued_at,
                        });
                        continue;
                    }
                    Room::Away(why) => {
                        tracing::info!(
                            reason = why.as_str(),
                            after = ?(why == Away::Stalled).then_some(sh.spill_after),
                            "MQTT broker away; spooling publishes to disk"
                        );
                        spilling = true;
                        rescue_for = Some(why);
                    }
                    Room::Closed => return,
                }
            }
            to_spool.push(job);
        }
        if let Some(why) = rescue_for {
            // Older than `to_spool`: their copies go first.
            let _ = rescue(&sh, why).await;
        } else if !to_spool.is_empty() && !sh.connected() {
            let _ = rescue(&sh, Away::Down).await;
        }
        if !to_spool.is_empty() {
            let items: Vec<_> = to_spool
                .into_iter()
                .map(|j| (record(&j), Done::One(j.done)))
                .collect();
            let n = items.len() as u64;
            pace_to = replay.sent() + PACE * n;
            spool_records(items, &sh.spool).await;
        }
    }
}

/// Waits for room in the feeder (connected): the broker busy is backpressure, not a reason
/// to spill. Gives up when the connection is lost, or when no room comes for `spill_after`
/// (the broker takes nothing: the feeder waits on a full inflight window).
async fn room<'a>(feed_tx: &'a mpsc::Sender<Direct>, sh: &Shared) -> Room<'a> {
    match feed_tx.try_reserve() {
        Ok(permit) => return Room::Ready(permit),
        Err(TrySendError::Closed(())) => return Room::Closed,
        Err(TrySendError::Full(())) => {}
    }
    tokio::select! {
        biased;
        _ = sh.lost.notified() => Room::Away(Away::Lost),
        permit = feed_tx.reserve() => permit.map_or(Room::Closed, Room::Ready),
        _ = tokio::time::sleep(sh.spill_after) => Room::Away(Away::Stalled),
    }
}

/// Spilling, connected: waits until the feeder has handed the spooled records up to
/// `target` to rumqttc, while the replay moves (`CATCH_UP`, `PACE`). `Done` once every
/// spooled record is handed over; gives up when the connection is lost or the replay does
/// not move for `spill_after` (`stalled_at` remembers where, so as not to wait there again).
async fn wait_replay(
    sh: &Shared,
    replay: &Replay,
    target: u64,
    stalled_at: &mut Option<u64>,
) -> CatchUp {
    let mut sent = replay.sent();
    if sent >= sh.spool.last_id() {
        return CatchUp::Done;
    }
    if sent >= target || *stalled_at == Some(sent) {
        return CatchUp::NotYet;
    }
    let timer = tokio::time::sleep(sh.spill_after);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            _ = sh.lost.notified() => return CatchUp::Away(Away::Lost),
            _ = replay.moved.notified() => {}
            _ = &mut timer => {
                *stalled_at = Some(sent);
                return CatchUp::Away(Away::Stalled);
            }
        }
        let now = replay.sent();
        if now >= sh.spool.last_id() {
            return CatchUp::Done;
        }
        if now >= target {
            return CatchUp::NotYet;
        }
        if now > sent {
            sent = now;
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + sh.spill_after);
        }
    }
}

/// The broker is away (`why`): copies the direct publishes still unacknowledged (in flight in
/// rumqttc, or waiting for the feeder) to the spool and resolves their `Delivery`s; true
/// if there were any. rumqttc still sends the originals (after the reconnect, before anything
/// newer), and the copies are sent again from the spool: duplicates with the same
/// `event_id`, never a loss or a reordering of first copies.
async fn rescue(sh: &Shared, why: Away) -> bool {
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
        reason = why.as_str(),
        "MQTT broker away; in-flight publishes copied to the spool"
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
    replay: Arc<Replay>,
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
        if ahead.is_empty() && last > replay.sent() {
            match sh.spool.read_after(replay.sent(), READ_AHEAD) {
                Ok(rows) if rows.is_empty() => {
                    // Dropped (drop_oldest) before being sent: nothing left up to `last`.
                    replay.advance(last);
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
                replay.advance(id);
                continue;
            }
            if !sh.connected() {
                // While the broker is away spooled records wait in the spool (where
                // drop_oldest can still drop them), not in rumqttc's request channel.
                ahead.push_front((id, r));
                if !direct_or(&mut feed_rx, &sh, tokio::time::sleep(AWAY_POLL)).await {
                    return;
                }
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
            replay.advance(id);
            if ack_tx.send((id, rx)).await.is_err() {
                return;
            }
            continue;
        }
        if sh.spool.last_id() > replay.sent() {
            continue;
        }
        if !direct_or(&mut feed_rx, &sh, sh.spool.appended.notified()).await {
            return;
        }
    }
}

/// Waits for a direct job, which it sends, or for `other`, whichever comes first (a direct
/// job when both are ready). `false`: the feeder must stop (its channel or rumqttc is gone).
async fn direct_or(
    feed_rx: &mut mpsc::Receiver<Direct>,
    sh: &Shared,
    other: impl std::future::Future<Output = ()>,
) -> bool {
    tokio::select! {
        biased;
        job = feed_rx.recv() => match job {
            Some(direct) => send_direct(direct, sh).await.is_ok(),
            None => false,
        },
        _ = other => true,
    }
}

/// Deletes spooled records once the broker has them (or refused them: an MQTT 5 error reason
/// code would refuse them again on every replay).
async fn ack(
    mut ack_rx: mpsc::Receiver<(u64, oneshot::Receiver<Result<(), BridgeError>>)>,
    spool: Arc<Spool>,
) {
    let mut done: Vec<u64> = Vec::new();
    // Records deleted since the spool was last empty: the count of the "replayed" line.
    let mut replayed: u64 = 0;
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
                    metrics::counter!("vgate_spool_events_total", "op" => "replayed").increment(n);
                    replayed += n;
                    if spool.len() == 0 {
                        tracing::info!(
                            publishes = replayed,
                            "MQTT spool replayed: the broker has every spooled publish"
                        );
                        replayed = 0;
                    }
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
