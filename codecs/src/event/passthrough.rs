//! `passthrough.data`: a message the normalized model does not cover, as the protocol-level
//! JSON with its body in base64, so nothing a vehicle sends is dropped silently.

use serde::Serialize;

/// The protocol-level message as JSON (`{"msg_id": "0x0900", ..., "body_base64": ".."}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Passthrough(pub serde_json::Value);
