//! A downstream command as the platform publishes it (contract §4).
//!
//! ```json
//! {"id": "c-123", "type": "text", "params": {"text": "hello"}, "ttl_s": 86400, "priority": 5}
//! ```
//!
//! This is the protocol-independent envelope; each protocol crate turns `type` + `params`
//! into its own message (`jt808::command`, `gbt32960::command`) and says which field is
//! wrong when it cannot.

use serde::{Deserialize, Serialize};

/// The highest priority a command may have.
pub const MAX_PRIORITY: u8 = 9;

/// A command envelope. Unknown keys are refused, so a typo is a `rejected` with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Client-chosen, unique per vehicle; a reused id is the same command.
    pub id: String,
    /// `text`, `query_location`, `set_params`, `query_params`, `raw`...
    #[serde(rename = "type")]
    pub kind: String,
    /// Per type; see docs/commands.md.
    #[serde(default)]
    pub params: serde_json::Value,
    /// How long it may wait for an offline vehicle, in seconds (None: the configured default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// 0..=9, higher first (None: 5... the configured default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

/// Why a command cannot be turned into a protocol message. `field` names the JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct CommandError {
    /// The offending field, as a path (`params.text`, `type`, `params.params.0x0029`).
    pub field: String,
    pub reason: String,
}

impl CommandError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CommandError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Command {
    /// Parses a command from JSON bytes, checking the envelope (not the params).
    pub fn parse(json: &[u8]) -> Result<Command, CommandError> {
        let cmd: Command = serde_json::from_slice(json)
            .map_err(|e| CommandError::new("command", format!("invalid JSON: {e}")))?;
        if cmd.id.is_empty() {
            return Err(CommandError::new("id", "must not be empty"));
        }
        if matches!(cmd.priority, Some(p) if p > MAX_PRIORITY) {
            return Err(CommandError::new("priority", "must be 0..9"));
        }
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_command_parses() {
        let c = Command::parse(br#"{"id":"c-1","type":"query_location"}"#).unwrap();
        assert_eq!(c.kind, "query_location");
        assert!(c.params.is_null());
    }

    #[test]
    fn bad_priority_names_the_field() {
        let e = Command::parse(br#"{"id":"c-1","type":"text","priority":12}"#).unwrap_err();
        assert_eq!(e.field, "priority");
    }
}
