//! vgate's MQTT side: normalized events out, commands in (contract §2).
//!
//! One [`Bridge`] holds one MQTT connection (or `mqtt.connections` of them, "lanes",
//! each vehicle's events on one), to an external broker (`mqtt://`, `mqtts://`)
//! or to the embedded rumqttd broker this crate starts when no URL is configured. Both are
//! reached the same way (over TCP, with the same client), so what is tested on one holds
//! for the other.
//!
//! ```text
//!  Event --Publisher::publish_event--> {p}/v1/{vid}/{type}   Delivery resolves on PUBACK
//!  {p}/v1/{vid}/cmd, {p}/broadcast/{group}/cmd --> IncomingCommand --ack()--> PUBACK
//!  {p}/gateway/{node}/status  retained online; last will: retained offline
//! ```
//!
//! Why it is built this way (details in docs/mqtt.md): QoS 1 with our own PUBACK tracking
//! so the gateway can acknowledge a vehicle only once the broker has its data; a bounded
//! queue so a slow broker slows the vehicles (TCP backpressure) instead of growing memory;
//! a persistent session and manual acks so a command is never lost between the broker and
//! the gateway's store. With a spool directory configured, publishes the broker cannot take
//! now are stored on disk (store-and-forward) and replayed in order once it can.
//!
//! # Layout
//! - [`config`]: [`MqttConfig`], the `[mqtt]` section, with defaults.
//! - [`topics`]: every topic name, and command topic parsing into a [`Target`].
//! - `client`: config mapped into rumqttc options (URL, TLS, will, session).
//! - `embedded`: the embedded rumqttd broker.
//! - `bridge`: [`Bridge`], the connection's event loop, reconnects, status.
//! - `lanes`: the bridge's connections (`mqtt.connections`): lane 0 the gateway's, lanes
//!   1.. publish-only, each with its own queue, forwarder or spool, tracker, event loop.
//! - `publisher`: [`Publisher`], the bounded queue and [`Delivery`].
//! - `tracker`: PUBACK tracking per publish.
//! - `relay`: store-and-forward, the queue to rumqttc through the spool when needed.
//! - `spool`: the disk spool (redb), append, replay in order, delete on PUBACK.
//! - `commands`: [`IncomingCommand`] with its manual ack.
//! - `connection`: the MQTT 3.1.1 and MQTT 5 clients behind one type.
//! - `v5`: the MQTT 5 event loop (reason codes, command properties).
//! - `error`: [`BridgeError`].
//!
//! Metrics: `vgate_mqtt_published_total{type}`, `vgate_mqtt_publish_rejected_total{type}`,
//! `vgate_mqtt_publish_latency_seconds`
//! (queue to PUBACK), `vgate_mqtt_connected` (lane 0), `vgate_mqtt_queue_depth` (all lanes),
//! `vgate_mqtt_reconnects_total`, `vgate_mqtt_refused_total{reason}`,
//! `vgate_mqtt_commands_received_total`, `vgate_spool_bytes`,
//! `vgate_spool_events_total{op="spooled"|"replayed"|"dropped"}`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod bridge;
mod client;
mod commands;
pub mod config;
mod connection;
mod embedded;
mod error;
mod lanes;
mod publisher;
mod relay;
mod spool;
pub mod topics;
mod tracker;
mod v5;

pub use bridge::{Bridge, Health};
pub use commands::{CommandReceiver, IncomingCommand};
pub use config::{
    EmbeddedLimits, LiveQos, MqttConfig, MqttProtocol, Qos, QosConfig, SpoolConfig, TlsConfig,
    WhenFull,
};
pub use error::{BridgeError, RefusedReason};
pub use publisher::{Delivery, Publisher};
pub use topics::{Target, Topics};
