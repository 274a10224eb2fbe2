//! Where sessions put events: the MQTT bridge in production, a channel in tests.
//!
//! Sessions never talk to MQTT directly. `publish` waits when the bridge's bounded queue is
//! full, so a slow or absent broker slows the reading of vehicle sockets (TCP backpressure)
//! instead of growing memory.

use std::sync::Arc;

use codecs::event::{Presence, PresenceReason};
use codecs::{Data, Event, EventContext, Protocol};
use tokio::sync::mpsc;

/// An event as handed to the sink, with whether it is to be retained (presence).
#[derive(Debug, Clone)]
pub struct Published {
    pub event: Event,
    pub retain: bool,
}

/// The sink, cheap to clone.
#[derive(Clone)]
pub enum Sink {
    /// The MQTT bridge.
    Mqtt(mqtt_bridge::Publisher),
    /// A channel (tests, `decode`).
    Memory(mpsc::Sender<Published>),
}

/// The sink is gone (the gateway is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("event sink closed: {0}")]
pub struct SinkClosed(pub String);

impl Sink {
    /// From now on, events go out with `qos` (a reload of `[mqtt.qos]`).
    pub fn set_qos(&self, qos: mqtt_bridge::QosConfig) {
        if let Sink::Mqtt(p) = self {
            p.set_qos(qos);
        }
    }

    /// Publishes an event, waiting for queue space.
    pub async fn publish(&self, event: Event) -> Result<(), SinkClosed> {
        metrics::counter!("vgate_events_total", "type" => event.kind().as_str()).increment(1);
        crate::watch::record(&event);
        match self {
            Sink::Mqtt(p) => enqueue(p, &event)
                .await
                .map(|_| ())
                .map_err(|e| SinkClosed(e.to_string())),
            Sink::Memory(tx) => send_memory(tx, event).await,
        }
    }

    /// Publishes a command result on the gateway's own result topic
    /// (`{p}/gateway/{node}/cmd/result`): for results whose vehicle id cannot be a topic level.
    pub async fn publish_gateway_result(&self, event: Event) -> Result<(), SinkClosed> {
        metrics::counter!("vgate_events_total", "type" => event.kind().as_str()).increment(1);
        match self {
            Sink::Mqtt(p) => p
                .publish_gateway_result(&event)
                .await
                .map(|_| ())
                .map_err(|e| SinkClosed(e.to_string())),
            Sink::Memory(tx) => send_memory(tx, event).await,
        }
    }

    /// Publishes `events` in order and, when `durable`, waits until each is durably accepted
    /// (acknowledged by the broker, or fsynced into the spool). `Ok(false)`: some event was
    /// refused (an MQTT 5 broker's negative PUBACK): the vehicle should not be told it arrived.
    pub async fn publish_all(&self, events: Vec<Event>, durable: bool) -> Result<bool, SinkClosed> {
        let mut pending = Vec::with_capacity(events.len());
        let queued = self.submit(events, &mut pending).await?;
        if !durable {
            return Ok(queued);
        }
        let mut all = queued;
        for d in pending {
            all &= Self::settle(d).await?;
        }
        Ok(all)
    }

    /// Queues `events` for publishing, in order, and pushes one [`Delivery`] per event onto
    /// `pending` (none for the memory sink, whose send is its delivery): the first half of
    /// [`publish_all`](Self::publish_all), so a session can queue the events of several frames
    /// and wait for all of them at once. `Ok(false)`: an event could not be published at all
    /// (the events after it are not queued).
    pub async fn submit(
        &self,
        events: Vec<Event>,
        pending: &mut Vec<mqtt_bridge::Delivery>,
    ) -> Result<bool, SinkClosed> {
        for event in events {
            metrics::counter!("vgate_events_total", "type" => event.kind().as_str()).increment(1);
            crate::watch::record(&event);
            match self {
                Sink::Mqtt(p) => match enqueue(p, &event).await {
                    Ok(d) => pending.push(d),
                    Err(mqtt_bridge::BridgeError::Closed) => {
                        return Err(SinkClosed("bridge closed".into()))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, vehicle = %event.vehicle_id, "event not published");
                        return Ok(false);
                    }
                },
                Sink::Memory(tx) => send_memory(tx, event).await?,
            }
        }
        Ok(true)
    }

    /// Waits for one queued event to be durable: `Ok(false)` if the broker refused it (or the
    /// spool could not take it), `Err` if the bridge is gone.
    pub async fn settle(d: mqtt_bridge::Delivery) -> Result<bool, SinkClosed> {
        match d.await {
            Ok(()) => Ok(true),
            Err(mqtt_bridge::BridgeError::Closed) => Err(SinkClosed("bridge closed".into())),
            Err(e) => {
                tracing::warn!(error = %e, "event refused by the broker");
                Ok(false)
            }
        }
    }

    /// Publishes a vehicle's presence (retained on `{p}/v1/{vid}/status`).
    pub async fn presence(
        &self,
        ctx: &EventContext,
        vehicle_id: Arc<str>,
        protocol: Protocol,
        online: bool,
        reason: PresenceReason,
        peer: Option<String>,
    ) -> Result<(), SinkClosed> {
        let data = Data::Status(Presence {
            online,
            reason,
            protocol,
            peer,
            since: chrono::Utc::now(),
        });
        let event = Event::new(ctx, vehicle_id.clone(), protocol, None, None, data);
        metrics::counter!("vgate_events_total", "type" => "status").increment(1);
        crate::watch::record(&event);
        match self {
            Sink::Mqtt(p) => p
                .publish_presence(&vehicle_id, &event)
                .await
                .map(|_| ())
                .map_err(|e| SinkClosed(e.to_string())),
            Sink::Memory(tx) => tx
                .send(Published {
                    event,
                    retain: true,
                })
                .await
                .map_err(|_| SinkClosed("channel closed".into())),
        }
    }

    /// Publishes a command result to an MQTT 5 Response Topic with its Correlation Data.
    pub async fn publish_response(
        &self,
        topic: &str,
        payload: Vec<u8>,
        correlation: Option<Vec<u8>>,
    ) -> Result<(), SinkClosed> {
        match self {
            Sink::Mqtt(p) => p
                .publish_response(topic, payload, correlation.map(bytes::Bytes::from))
                .await
                .map(|_| ())
                .map_err(|e| SinkClosed(e.to_string())),
            // Tests read results from the vehicle's own topic.
            Sink::Memory(_) => Ok(()),
        }
    }
}

/// Queues `event` on the bridge: without a future when the queue has room (the hot path),
/// else waiting for room in a boxed future, so that the rare case keeps its state out of
/// every session's task (a connection's task holds the largest state its loop can await).
async fn enqueue(
    p: &mqtt_bridge::Publisher,
    event: &Event,
) -> Result<mqtt_bridge::Delivery, mqtt_bridge::BridgeError> {
    match p.try_publish_event(event) {
        Some(r) => r,
        None => Box::pin(p.publish_event(event)).await,
    }
}

/// The memory sink's send (boxed, as above).
async fn send_memory(tx: &mpsc::Sender<Published>, event: Event) -> Result<(), SinkClosed> {
    Box::pin(tx.send(Published {
        event,
        retain: false,
    }))
    .await
    .map_err(|_| SinkClosed("channel closed".into()))
}
