//! Downlink on a raw listener: the bytes a contract `raw` command asks to send.

use base64::Engine;

use crate::command::{Command, CommandError};

/// The body of a `raw` command for a raw listener: `params.body_hex`, `params.body_base64`
/// or `params.text` (UTF-8), exactly one of them.
pub fn command_body(cmd: &Command) -> Result<Vec<u8>, CommandError> {
    if cmd.kind != "raw" {
        return Err(CommandError::new(
            "type",
            format!(
                "{:?} is not supported on raw listeners (only \"raw\")",
                cmd.kind
            ),
        ));
    }
    let p = |k: &str| cmd.params.get(k).filter(|v| !v.is_null());
    match (p("body_hex"), p("body_base64"), p("text")) {
        (Some(h), None, None) => h
            .as_str()
            .and_then(|s| hex::decode(s.replace(' ', "")).ok())
            .ok_or_else(|| CommandError::new("params.body_hex", "expected a hex string")),
        (None, Some(b), None) => b
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| CommandError::new("params.body_base64", "expected base64")),
        (None, None, Some(t)) => t
            .as_str()
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| CommandError::new("params.text", "expected a string")),
        (None, None, None) => Err(CommandError::new(
            "params.body_hex",
            "one of body_hex, body_base64, text is required",
        )),
        _ => Err(CommandError::new(
            "params",
            "give only one of body_hex, body_base64, text",
        )),
    }
}
