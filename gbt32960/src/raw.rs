//! The protocol-level JSON of a frame (what `vgate decode gbt32960 --raw` prints and what
//! passthrough events carry): the frame header and the typed message, nothing normalized.

use serde_json::{json, Value};

use crate::{Frame, Message};

/// `{"frame": {edition, command, response, vin, encryption}, "message": <Message JSON>}`.
/// `command` and `response` are hex strings (`"0x01"`, `"0xfe"`).
pub fn raw_json(frame: &Frame, msg: &Message) -> Value {
    json!({
        "frame": {
            "edition": frame.edition,
            "command": format!("0x{:02x}", frame.command),
            "response": format!("0x{:02x}", frame.response),
            "vin": frame.vin,
            "encryption": frame.encryption,
        },
        "message": serde_json::to_value(msg).unwrap_or(Value::Null),
    })
}
