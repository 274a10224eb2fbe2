//! What a raw frame becomes in the published event: always a `passthrough` event
//! (contract §2: "nothing a vehicle sends is dropped silently"), with
//! `protocol = "raw"`, no `device_time` and no `msg_seq` (raw frames carry neither as far
//! as vgate knows).
//!
//! - `payload = "binary"`: `data = {"len": 5, "body_base64": "aGVsbG8=", "body_hex": "68656c6c6f"}`;
//!   `body_hex` only for frames of at most [`HEX_MAX_LEN`] bytes, to keep big frames small.
//! - `payload = "json"`: the frame must be one UTF-8 JSON object, which *is* `data`.
//!   Anything else is a [`PayloadError`] (the gateway counts it and drops the frame).

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value};
use thiserror::Error;

use super::config::PayloadMode;
use crate::event::{Data, Event, EventContext, Passthrough, Protocol};

/// Frames up to this size also get `body_hex`.
pub const HEX_MAX_LEN: usize = 64;

/// A frame that does not fit `payload = "json"`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// Not UTF-8.
    #[error("frame is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    /// Not JSON at all.
    #[error("frame is not JSON: {message}")]
    NotJson { message: String },
    /// JSON, but not an object (`[1]`, `"x"`, `3`).
    #[error("frame is JSON {kind}, not an object")]
    NotObject { kind: &'static str },
}

impl PayloadError {
    /// A snake_case label for metrics.
    pub const fn reason(&self) -> &'static str {
        match self {
            PayloadError::NotUtf8 { .. } => "not_utf8",
            PayloadError::NotJson { .. } => "not_json",
            PayloadError::NotObject { .. } => "not_object",
        }
    }
}

/// `passthrough` data of a binary frame.
pub fn binary(frame: &[u8]) -> Passthrough {
    let mut m = Map::new();
    m.insert("len".into(), Value::from(frame.len()));
    m.insert(
        "body_base64".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(frame)),
    );
    if frame.len() <= HEX_MAX_LEN {
        m.insert("body_hex".into(), Value::String(hex::encode(frame)));
    }
    Passthrough(Value::Object(m))
}

/// `passthrough` data of a JSON frame: the object itself.
pub fn json(frame: &[u8]) -> Result<Passthrough, PayloadError> {
    let text = std::str::from_utf8(frame).map_err(|e| PayloadError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| PayloadError::NotJson {
        message: e.to_string(),
    })?;
    match value {
        Value::Object(_) => Ok(Passthrough(value)),
        other => Err(PayloadError::NotObject {
            kind: match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            },
        }),
    }
}

/// The event `data` for a frame in `mode`.
pub fn data(mode: PayloadMode, frame: &[u8]) -> Result<Data, PayloadError> {
    Ok(Data::Passthrough(match mode {
        PayloadMode::Binary => binary(frame),
        PayloadMode::Json => json(frame)?,
    }))
}

/// The `passthrough` event for a frame of `vehicle_id` (`protocol = "raw"`).
pub fn event(
    ctx: &EventContext,
    vehicle_id: Arc<str>,
    mode: PayloadMode,
    frame: &[u8],
) -> Result<Event, PayloadError> {
    Ok(Event::new(
        ctx,
        vehicle_id,
        Protocol::Raw,
        None,
        None,
        data(mode, frame)?,
    ))
}
