//! What every vgate protocol shares.
//!
//! vgate turns JT/T 808, GB/T 32960 and private TCP framings into **one** stream of
//! vehicle events (the contract's section 3). This crate is that event model plus the
//! small pieces of wire handling that more than one protocol needs. It does no I/O:
//! protocol crates (`jt808`, `gbt32960`) depend on it, the gateway consumes its events.
//!
//! ```text
//!  bytes --(protocol crate: frame codec + nom parser)--> Message
//!        --(protocol crate: normalize.rs)-----------> codecs::Event --> MQTT
//! ```
//!
//! # Layout
//! - [`event`]: [`Event`] and the typed `data` of each event type (location, telemetry,
//!   alarm, lifecycle, status, passthrough, cmd_result), serialized exactly as the contract says.
//! - [`id_table!`]: a protocol's message ids written once (constants, known ids, metric labels).
//! - [`time`]: device local time (GMT+8 by default) to UTC and back.
//! - [`bcd`]: packed BCD digits (JT/T 808 phone numbers and times).
//! - [`text`]: GBK/GB18030 text on the wire, UTF-8 in Rust, with fixed-width padding rules.
//! - [`command`]: the downstream command envelope (contract §4).
//! - [`vehicle_id`]: what a vehicle id may contain (it becomes an MQTT topic level).
//! - [`raw`]: framers, identity, payload and ack of raw TCP listeners (private protocols).

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod bcd;
pub mod command;
pub mod error;
pub mod event;
pub mod id_table;
pub mod raw;
pub mod text;
pub mod time;
pub mod vehicle_id;

pub use error::Error;
pub use event::{Data, Event, EventContext, EventKind, Protocol};
