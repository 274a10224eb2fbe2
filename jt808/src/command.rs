//! Contract commands (CONTRACT.md §4) to JT/T 808 platform messages.
//!
//! Why a builder per type: the platform's JSON is validated here, once, and every
//! rejection names the offending field (`params.text`, `params.msg_id`...), which the
//! gateway publishes as the `rejected` reason. Bodies of platform messages are built as
//! bytes and carried in [`Message::Unknown`] with their id (typed platform bodies are not
//! written yet), so the frame layer sends them unchanged.

use codecs::command::{Command, CommandError};
use serde_json::Value;

use crate::{Message, Version};

fn field<'a>(cmd: &'a Command, name: &str) -> Option<&'a Value> {
    cmd.params.get(name).filter(|v| !v.is_null())
}

fn err(name: &str, reason: &str) -> CommandError {
    CommandError::new(format!("params.{name}"), reason)
}

fn uint(cmd: &Command, name: &str, max: u64) -> Result<Option<u64>, CommandError> {
    match field(cmd, name) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(err(name, &format!("expected an integer 0..={max}"))),
        },
    }
}

fn hex_bytes(cmd: &Command, name: &str) -> Result<Vec<u8>, CommandError> {
    match field(cmd, name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => hex::decode(s).map_err(|_| err(name, "expected hex")),
        Some(_) => Err(err(name, "expected a hex string")),
    }
}

/// The message that carries `cmd` in edition `version`.
///
/// Supported types: `text` (0x8300), `query_location` (0x8201), `query_params` (0x8104,
/// or 0x8106 with `ids`), `terminal_control` (0x8105), `temporary_tracking` (0x8202),
/// `transparent` (0x8900), `raw`.
pub fn build(cmd: &Command, version: Version) -> Result<Message, CommandError> {
    let (msg_id, body) = match cmd.kind.as_str() {
        "text" => (0x8300, text(cmd, version)?),
        "query_location" => (0x8201, Vec::new()),
        "query_params" => query_params(cmd)?,
        // 0x8105 (JT/T 808-2013 §8.15): command word BYTE | parameters STRING (';'-separated).
        "terminal_control" => {
            let word = uint(cmd, "command", 0xff)?.ok_or_else(|| err("command", "required"))?;
            let mut b = vec![word as u8];
            match field(cmd, "args") {
                None => {}
                Some(Value::String(s)) => b.extend_from_slice(&codecs::text::encode(s)),
                Some(_) => return Err(err("args", "expected a string")),
            }
            (0x8105, b)
        }
        // 0x8202 (JT/T 808-2013 §8.20): interval WORD (s) | validity DWORD (s).
        "temporary_tracking" => {
            let iv =
                uint(cmd, "interval_s", 0xffff)?.ok_or_else(|| err("interval_s", "required"))?;
            let dur = uint(cmd, "duration_s", 0xffff_ffff)?.unwrap_or(0);
            let mut b = (iv as u16).to_be_bytes().to_vec();
            b.extend_from_slice(&(dur as u32).to_be_bytes());
            (0x8202, b)
        }
        // 0x8900 (JT/T 808-2013 §8.62): message type BYTE | content.
        "transparent" => {
            let t = uint(cmd, "msg_type", 0xff)?.ok_or_else(|| err("msg_type", "required"))?;
            let mut b = vec![t as u8];
            b.extend_from_slice(&hex_bytes(cmd, "data_hex")?);
            (0x8900, b)
        }
        "raw" => {
            let id = match field(cmd, "msg_id") {
                Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Some(Value::String(s)) => {
                    u16::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16)
                        .ok()
                }
                _ => None,
            }
            .ok_or_else(|| err("msg_id", "expected a message id 0..=0xffff"))?;
            (id, hex_bytes(cmd, "body_hex")?)
        }
        _ => {
            return Err(CommandError::new(
                "type",
                format!("{} is not supported for jt808", cmd.kind),
            ))
        }
    };
    if body.len() > crate::header::MAX_BODY_LEN {
        return Err(CommandError::new("params", "body longer than 1023 bytes"));
    }
    Ok(Message::Unknown { msg_id, body })
}

/// 0x8300 flags (JT/T 808-2013 §8.28 table 38): bit 0 emergency, 2 display, 3 TTS,
/// 4 advertising screen; 2019 adds a text-type BYTE after the flag (1 notice, 2 service).
fn text(cmd: &Command, version: Version) -> Result<Vec<u8>, CommandError> {
    let Some(Value::String(t)) = field(cmd, "text") else {
        return Err(err("text", "required string"));
    };
    let mut flag = 0u8;
    if let Some(list) = field(cmd, "flags") {
        let list = list
            .as_array()
            .ok_or_else(|| err("flags", "expected a list"))?;
        for f in list {
            flag |= match f.as_str() {
                Some("emergency") => 1,
                Some("display") => 1 << 2,
                Some("tts") => 1 << 3,
                Some("advertising") => 1 << 4,
                _ => return Err(err("flags", &format!("unknown flag {f}"))),
            };
        }
    }
    let mut b = vec![flag];
    if version == Version::V2019 {
        b.push(uint(cmd, "text_type", 0xff)?.unwrap_or(1) as u8);
    }
    b.extend_from_slice(&codecs::text::encode(t));
    Ok(b)
}

/// 0x8104 (all parameters) or 0x8106 (count BYTE | ids DWORD...), JT/T 808-2013 §8.10/§8.11.
fn query_params(cmd: &Command) -> Result<(u16, Vec<u8>), CommandError> {
    let Some(ids) = field(cmd, "ids") else {
        return Ok((0x8104, Vec::new()));
    };
    let ids = ids
        .as_array()
        .ok_or_else(|| err("ids", "expected a list"))?;
    if ids.is_empty() {
        return Ok((0x8104, Vec::new()));
    }
    let n = u8::try_from(ids.len()).map_err(|_| err("ids", "at most 255 ids"))?;
    let mut b = vec![n];
    for id in ids {
        let v = match id {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => u32::from_str_radix(s.trim_start_matches("0x"), 16).ok(),
            _ => None,
        }
        .ok_or_else(|| err("ids", &format!("bad parameter id {id} (hex ids only)")))?;
        b.extend_from_slice(&v.to_be_bytes());
    }
    Ok((0x8106, b))
}
