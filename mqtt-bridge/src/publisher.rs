//! The publishing side: a cheap, cloneable [`Publisher`] for every session, a bounded
//! queue to the connection, and a [`Delivery`] per publish that resolves on PUBACK.
//!
//! The queue is the gateway's backpressure: when the broker is slow or gone it fills, and
//! `publish_*` waits for space, so a vehicle session stops reading its socket and TCP
//! slows the vehicle down. Memory is bounded by `queue_capacity` + rumqttc's request
//! channel + `inflight`, whatever the broker does.
//!
//! With a spool (`[mqtt.spool] dir`) the queue is drained by `relay` instead of [`forward`]:
//! while the broker is away (down, or connected but taking nothing) publishes go to the disk
//! spool, and `publish_*` waits only when the spool is full (`when_full = "backpressure"`);
//! a broker that is merely busy is the same backpressure as without a spool.
//!
//! With `mqtt.connections` > 1 there is one queue per connection (lane): a vehicle's events
//! (and its presence) go to lane `fnv1a(vehicle id) % connections`, so they keep their order;
//! everything else (`publish_raw`, `publish_response`, the gateway status) goes to lane 0.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use codecs::{Event, EventKind};
use tokio::sync::{mpsc, oneshot};

use crate::config::{LiveQos, Qos, QosConfig};
use crate::connection::Client;
use crate::topics::Topics;
use crate::tracker::{Done, Ticket, Tracker};
use crate::BridgeError;

/// Fixed overhead of a PUBLISH packet besides topic and payload (header, lengths, pkid).
const PACKET_OVERHEAD: usize = 16;

/// One publish waiting in the queue.
#[derive(Debug)]
pub(crate) struct Job {
    pub topic: String,
    pub payload: Bytes,
    pub qos: Qos,
    pub retain: bool,
    pub kind: &'static str,
    /// MQTT 5 Correlation Data sent with the publish (ignored on MQTT 3.1.1).
    pub correlation: Option<Bytes>,
    pub done: oneshot::Sender<Result<(), BridgeError>>,
    pub queued_at: Instant,
}

impl Job {
    /// Hands the job to rumqttc, its ticket registered first. `Err` when the event loop is gone.
    pub(crate) async fn send(self, client: &Client, tracker: &Tracker) -> Result<(), BridgeError> {
        tracker.sending(Ticket {
            done: Done::One(self.done),
            qos0: self.qos == Qos::AtMostOnce,
            kind: self.kind,
            queued_at: self.queued_at,
        });
        let sent = client
            .publish(
                self.topic,
                self.qos,
                self.retain,
                self.payload,
                self.correlation,
            )
            .await;
        if sent.is_err() {
            tracker.unsend_last();
        }
        sent
    }
}

/// Resolves when the message is safe: the broker has it (on PUBACK for QoS 1, once written
/// for QoS 0) or, with a spool (`[mqtt.spool] dir`), it is written and fsynced to the spool,
/// whichever comes first. A spooled message is sent when the broker can take it, in order,
/// and deleted from the spool on its PUBACK; its `Delivery` has already resolved by then.
///
/// It survives reconnects (an unacknowledged publish is sent again, same pkid). It resolves
/// to [`BridgeError::Closed`] if the bridge shuts down first, to [`BridgeError::Rejected`]
/// when an MQTT 5 broker refuses the message in its PUBACK, and to [`BridgeError::File`]
/// (key `mqtt.spool.dir`) when the spool cannot be written. Dropping it does not cancel
/// the publish.
#[derive(Debug)]
#[must_use = "a Delivery does nothing unless awaited; drop it to not wait"]
pub struct Delivery {
    rx: oneshot::Receiver<Result<(), BridgeError>>,
}

impl Future for Delivery {
    type Output = Result<(), BridgeError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(BridgeError::Closed)))
    }
}

/// The lane (`0..lanes`) of a vehicle: FNV-1a of its id, modulo the lanes. Stable across
/// restarts and builds (no random keys), so a vehicle's events keep one lane, in order.
pub(crate) fn lane_of(vehicle_id: &str, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in vehicle_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // `lanes` is at most 16: the remainder fits any usize.
    (h % lanes as u64) as usize
}

/// Publishes events to the broker. Clone it freely: clones share the queues (one per lane).
#[derive(Debug, Clone)]
pub struct Publisher {
    /// One queue per lane; lane 0 first, never empty.
    lanes: Arc<[mpsc::Sender<Job>]>,
    topics: Arc<Topics>,
    /// QoS per event kind; `set_qos` changes it for every clone (a reload).
    qos: Arc<LiveQos>,
    max_packet_size: usize,
    depth: Arc<AtomicI64>,
}

impl Publisher {
    /// A publisher over the lanes' queues: `primary` is lane 0, `others` lanes 1.. in order.
    pub(crate) fn new(
        primary: mpsc::Sender<Job>,
        others: Vec<mpsc::Sender<Job>>,
        topics: Arc<Topics>,
        qos: QosConfig,
        max_packet_size: usize,
    ) -> Self {
        Publisher {
            lanes: std::iter::once(primary).chain(others).collect(),
            topics,
            qos: Arc::new(LiveQos::new(qos)),
            max_packet_size,
            depth: Arc::new(AtomicI64::new(0)),
        }
    }

    /// How many MQTT connections (lanes) this publisher spreads vehicles over.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// The lane (`0..lanes()`) a vehicle's events and presence go over.
    pub fn lane_of(&self, vehicle_id: &str) -> usize {
        lane_of(vehicle_id, self.lanes.len())
    }

    /// The queue of lane `i`; lane 0 (which always exists) for anything else.
    fn lane(&self, i: usize) -> Result<&mpsc::Sender<Job>, BridgeError> {
        self.lanes
            .get(i)
            .or_else(|| self.lanes.first())
            .ok_or(BridgeError::Closed)
    }

    /// The queue of a vehicle's lane.
    fn vehicle_lane(&self, vehicle_id: &str) -> Result<&mpsc::Sender<Job>, BridgeError> {
        self.lane(self.lane_of(vehicle_id))
    }

    /// From now on, events go out with `qos` (a reload; every clone of this publisher).
    pub fn set_qos(&self, qos: QosConfig) {
        self.qos.set(qos);
    }

    /// The QoS per event kind in force.
    pub fn qos(&self) -> QosConfig {
        self.qos.get()
    }

    /// Publishes `ev` on `{p}/v1/{vid}/{type}` with the QoS configured for its type;
    /// `status` events are retained. Waits while the queue (of the vehicle's lane) is full.
    pub async fn publish_event(&self, ev: &Event) -> Result<Delivery, BridgeError> {
        let kind = ev.kind();
        let topic = self.topics.event(&ev.vehicle_id, kind)?;
        let mut payload = Vec::with_capacity(512);
        ev.write_json(&mut payload);
        let retain = kind == EventKind::Status;
        self.enqueue(
            self.vehicle_lane(&ev.vehicle_id)?,
            topic,
            payload.into(),
            self.qos.for_kind(kind),
            retain,
            kind.as_str(),
        )
        .await
    }

    /// [`publish_event`](Self::publish_event) without waiting: `None` when the queue has no
    /// room right now (nothing was queued; call `publish_event` to wait for room). The
    /// common case of a session's hot path needs no future of its own.
    pub fn try_publish_event(&self, ev: &Event) -> Option<Result<Delivery, BridgeError>> {
        let tx = match self.vehicle_lane(&ev.vehicle_id) {
            Ok(tx) => tx,
            Err(e) => return Some(Err(e)),
        };
        let permit = match tx.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => return None,
            Err(mpsc::error::TrySendError::Closed(())) => return Some(Err(BridgeError::Closed)),
        };
        let kind = ev.kind();
        let topic = match self.topics.event(&ev.vehicle_id, kind) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let mut payload = Vec::with_capacity(512);
        ev.write_json(&mut payload);
        let retain = kind == EventKind::Status;
        Some(
            self.job(
                topic,
                payload.into(),
                self.qos.for_kind(kind),
                retain,
                kind.as_str(),
                None,
            )
            .map(|(job, delivery)| {
                self.count_queued();
                permit.send(job);
                delivery
            }),
        )
    }

    /// Publishes a presence (`status`) event for `vid`, retained, so a platform client that
    /// subscribes later still learns whether the vehicle is online.
    pub async fn publish_presence(
        &self,
        vid: &str,
        presence: &Event,
    ) -> Result<Delivery, BridgeError> {
        let topic = self.topics.event(vid, EventKind::Status)?;
        let mut payload = Vec::with_capacity(256);
        presence.write_json(&mut payload);
        self.enqueue(
            self.vehicle_lane(vid)?,
            topic,
            payload.into(),
            self.qos.for_kind(EventKind::Status),
            true,
            "status",
        )
        .await
    }

    /// Publishes `ev` (a command result) on the gateway's `{p}/gateway/{node}/cmd/result`,
    /// where results go that cannot go on a vehicle's topic (an impossible vehicle id, a
    /// broadcast to an unknown group), QoS as for `cmd_result`, on lane 0.
    pub async fn publish_gateway_result(&self, ev: &Event) -> Result<Delivery, BridgeError> {
        let mut payload = Vec::with_capacity(512);
        ev.write_json(&mut payload);
        self.enqueue(
            self.lane(0)?,
            self.topics.gateway_results(),
            payload.into(),
            self.qos.for_kind(EventKind::CmdResult),
            false,
            EventKind::CmdResult.as_str(),
        )
        .await
    }

    /// Publishes any payload on any topic (e.g. a command result to an MQTT 5 response
    /// topic), on lane 0.
    pub async fn publish_raw(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: Qos,
        retain: bool,
    ) -> Result<Delivery, BridgeError> {
        self.enqueue(
            self.lane(0)?,
            topic.to_owned(),
            payload.into(),
            qos,
            retain,
            "raw",
        )
        .await
    }

    /// Publishes a command result to the MQTT 5 Response Topic a command gave, with its
    /// Correlation Data (QoS 1, not retained), on lane 0 (the connection commands come in
    /// on). On MQTT 3.1.1 the correlation data is dropped.
    pub async fn publish_response(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        correlation: Option<Bytes>,
    ) -> Result<Delivery, BridgeError> {
        self.enqueue_with(
            self.lane(0)?,
            topic.to_owned(),
            payload.into(),
            Qos::AtLeastOnce,
            false,
            "response",
            correlation,
        )
        .await
    }

    /// Free places in the queues, summed over the lanes (for metrics and tests; 0 means
    /// callers are waiting on every lane).
    pub fn queue_space(&self) -> usize {
        self.lanes.iter().map(mpsc::Sender::capacity).sum()
    }

    #[allow(clippy::too_many_arguments)]
    async fn enqueue(
        &self,
        tx: &mpsc::Sender<Job>,
        topic: String,
        payload: Bytes,
        qos: Qos,
        retain: bool,
        kind: &'static str,
    ) -> Result<Delivery, BridgeError> {
        self.enqueue_with(tx, topic, payload, qos, retain, kind, None)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn enqueue_with(
        &self,
        tx: &mpsc::Sender<Job>,
        topic: String,
        payload: Bytes,
        qos: Qos,
        retain: bool,
        kind: &'static str,
        correlation: Option<Bytes>,
    ) -> Result<Delivery, BridgeError> {
        let (job, delivery) = self.job(topic, payload, qos, retain, kind, correlation)?;
        // Count before sending: the forwarder may take the job before `send` returns.
        self.count_queued();
        if tx.send(job).await.is_err() {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(BridgeError::Closed);
        }
        Ok(delivery)
    }

    /// A job and its delivery, or `TooLarge` for a packet the broker would refuse.
    fn job(
        &self,
        topic: String,
        payload: Bytes,
        qos: Qos,
        retain: bool,
        kind: &'static str,
        correlation: Option<Bytes>,
    ) -> Result<(Job, Delivery), BridgeError> {
        let len = topic.len() + payload.len() + PACKET_OVERHEAD;
        if len > self.max_packet_size {
            return Err(BridgeError::TooLarge {
                topic,
                len,
                max: self.max_packet_size,
            });
        }
        let (done, rx) = oneshot::channel();
        let job = Job {
            topic,
            payload,
            qos,
            retain,
            kind,
            correlation,
            done,
            queued_at: Instant::now(),
        };
        Ok((job, Delivery { rx }))
    }

    /// One more job in the queues (the depth gauge: one counter shared by every lane, so
    /// `vgate_mqtt_queue_depth` is the sum over the lanes).
    fn count_queued(&self) {
        let depth = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("vgate_mqtt_queue_depth").set(depth as f64);
    }

    pub(crate) fn depth(&self) -> Arc<AtomicI64> {
        self.depth.clone()
    }
}

/// Moves queued jobs into rumqttc, registering each one's ticket first so the tracker
/// sees tickets in the order rumqttc receives requests. Ends when every Publisher is gone
/// or rumqttc's event loop is dropped.
pub(crate) async fn forward(
    mut rx: mpsc::Receiver<Job>,
    client: Client,
    tracker: Arc<Tracker>,
    depth: Arc<AtomicI64>,
) {
    while let Some(job) = rx.recv().await {
        let d = depth.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("vgate_mqtt_queue_depth").set(d as f64);
        if job.send(&client, &tracker).await.is_err() {
            tracing::debug!("MQTT event loop gone; publish forwarder stops");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lane_of;

    #[test]
    fn a_vehicle_lane_is_fnv1a_of_its_id_stable_across_runs() {
        // Pinned values: a changed hash would move vehicles between lanes (and spools) at
        // the next start.
        assert_eq!(lane_of("013800138000", 3), 1);
        assert_eq!(lane_of("013800138001", 4), 2);
        assert_eq!(lane_of("LSVAB1234C5678901", 3), 0);
        assert_eq!(lane_of("", 3), 2);
        for vid in ["013800138000", "x"] {
            assert_eq!(lane_of(vid, 1), 0);
            assert_eq!(lane_of(vid, 0), 0);
        }
    }

    #[test]
    fn vehicles_spread_over_the_lanes() {
        let mut per_lane = [0u32; 4];
        for i in 0..4000 {
            per_lane[lane_of(&format!("01380013{i:04}"), 4)] += 1;
        }
        for n in per_lane {
            assert!((800..1200).contains(&n), "{per_lane:?}");
        }
    }
}
