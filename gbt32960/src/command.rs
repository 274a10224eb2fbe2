//! Downstream commands (contract §4) to GB/T 32960 messages: `query_params` (0x80),
//! `set_params` (0x81), `terminal_control` (0x82) and `raw` (any command byte and body).
//! docs/commands.md ("GB/T 32960") documents each with an example.
//!
//! Parameter widths depend on the edition (0x02/0x03 are WORDs in 2016 and BYTEs in 2025,
//! see [`crate::msg::params`]), so a value is checked against the vehicle's edition and an
//! error names the JSON field (`params.params.report_period_s`).

use codecs::command::{Command, CommandError};
use codecs::time::LocalTime;
use serde_json::{Map, Value};

use crate::msg::params::{self, ParamKind};
use crate::msg::{
    Control, ControlCommand, Message, Param, ParamQuery, ParamSet, ParamValue, Upgrade,
};
use crate::Edition;

/// Turns a command envelope into the message to send to a vehicle of `edition`;
/// `now_beijing` is the platform's current Beijing time (the body's time field).
pub fn build(
    cmd: &Command,
    edition: Edition,
    now_beijing: LocalTime,
) -> Result<Message, CommandError> {
    let p = object(&cmd.params)?;
    match cmd.kind.as_str() {
        "query_params" => query_params(p, now_beijing),
        "set_params" => set_params(p, edition, now_beijing),
        "terminal_control" => terminal_control(p, now_beijing),
        "raw" => raw(p),
        other => Err(CommandError::new(
            "type",
            format!("{other:?} is not supported by GB/T 32960 (query_params, set_params, terminal_control, raw)"),
        )),
    }
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

fn object(v: &Value) -> Result<&Map<String, Value>, CommandError> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(EMPTY.get_or_init(Map::new)),
        _ => Err(CommandError::new("params", "must be an object")),
    }
}

fn only_keys(p: &Map<String, Value>, allowed: &[&str]) -> Result<(), CommandError> {
    match p.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(CommandError::new(
            format!("params.{k}"),
            format!("unknown key (expected one of: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// `"0x05"`, `"5"`, a number, or (with `names`) a parameter name.
fn byte_id(v: &Value, field: &str, names: bool) -> Result<u8, CommandError> {
    let parsed = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::String(s) => {
            let s = s.trim();
            if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                u8::from_str_radix(h, 16).ok()
            } else if let Ok(n) = s.parse::<u8>() {
                Some(n)
            } else if names {
                params::id_of(s)
            } else {
                None
            }
        }
        _ => None,
    };
    parsed.ok_or_else(|| {
        CommandError::new(
            field,
            if names {
                "not a parameter name or a hex id such as \"0x01\""
            } else {
                "must be a byte: a number 0..255 or a hex string such as \"0x82\""
            },
        )
    })
}

fn query_params(p: &Map<String, Value>, now: LocalTime) -> Result<Message, CommandError> {
    only_keys(p, &["ids"])?;
    let ids = match p.get("ids") {
        None | Some(Value::Null) => params::all_ids().collect(),
        Some(Value::Array(list)) => {
            let mut ids = Vec::with_capacity(list.len());
            for (i, v) in list.iter().enumerate() {
                let field = format!("params.ids.{i}");
                let pid = byte_id(v, &field, true)?;
                if pid == 0 || pid == 0xFF {
                    return Err(CommandError::new(
                        field,
                        "0x00 and 0xFF are not parameter ids",
                    ));
                }
                ids.push(pid);
            }
            if ids.len() > params::MAX_PARAMS {
                return Err(CommandError::new("params.ids", "at most 252 ids"));
            }
            ids
        }
        Some(_) => return Err(CommandError::new("params.ids", "must be a list")),
    };
    Ok(Message::QueryParams(ParamQuery { time: now, ids }))
}

fn set_params(
    p: &Map<String, Value>,
    edition: Edition,
    now: LocalTime,
) -> Result<Message, CommandError> {
    only_keys(p, &["params"])?;
    let items = match p.get("params") {
        Some(Value::Object(m)) if !m.is_empty() => m,
        _ => {
            return Err(CommandError::new(
                "params.params",
                "must be a non-empty object of parameter name or hex id to value",
            ))
        }
    };
    let year = match edition {
        Edition::V2016 => 2016,
        Edition::V2025 => 2025,
    };
    let mut out = Vec::new();
    for (key, v) in items {
        let field = format!("params.params.{key}");
        let pid = byte_id(&Value::String(key.clone()), &field, true)?;
        let Some(kind) = params::kind(pid, edition) else {
            return Err(CommandError::new(
                field,
                "parameter width unknown (reserved or user defined): use a raw command",
            ));
        };
        if !params::settable(pid) {
            return Err(CommandError::new(
                field,
                "read-only (versions cannot be set)",
            ));
        }
        match kind {
            ParamKind::Byte if pid == 0x04 || pid == 0x0D => {
                return Err(CommandError::new(
                    field,
                    "derived from platform_domain / public_domain: set the domain instead",
                ))
            }
            ParamKind::Byte => {
                let n = number(v, &field, 0xFF, year, "BYTE")?;
                out.push(Param {
                    id: pid,
                    value: ParamValue::Byte(n as u8),
                });
            }
            ParamKind::Word => {
                let n = number(v, &field, 0xFFFF, year, "WORD")?;
                out.push(Param {
                    id: pid,
                    value: ParamValue::Word(n as u16),
                });
            }
            ParamKind::Domain(len_id) => {
                let Value::String(s) = v else {
                    return Err(CommandError::new(field, "must be a string"));
                };
                let len = codecs::text::encode(s).len();
                let len = u8::try_from(len)
                    .map_err(|_| CommandError::new(&field, "longer than 255 bytes"))?;
                out.push(Param {
                    id: len_id,
                    value: ParamValue::Byte(len),
                });
                out.push(Param {
                    id: pid,
                    value: ParamValue::Text(s.clone()),
                });
            }
            ParamKind::Text(_) => {
                return Err(CommandError::new(
                    field,
                    "read-only (versions cannot be set)",
                ))
            }
        }
    }
    if out.len() > params::MAX_PARAMS {
        return Err(CommandError::new("params.params", "at most 252 items"));
    }
    Ok(Message::SetParams(ParamSet {
        time: now,
        params: out,
    }))
}

fn number(v: &Value, field: &str, max: u64, year: u16, width: &str) -> Result<u64, CommandError> {
    v.as_u64().filter(|n| *n <= max).ok_or_else(|| {
        CommandError::new(
            field,
            format!("must be an integer 0..{max} (a {width} in the {year} edition)"),
        )
    })
}

const CONTROLS: &[(&str, u8)] = &[
    ("upgrade", 0x01),
    ("shutdown", 0x02),
    ("reset", 0x03),
    ("factory_reset", 0x04),
    ("disconnect", 0x05),
    ("alarm", 0x06),
    ("open_sampling_link", 0x07),
];

const UPGRADE_KEYS: &[&str] = &[
    "command",
    "apn",
    "user",
    "password",
    "address",
    "port",
    "manufacturer",
    "hardware_version",
    "firmware_version",
    "url",
    "timeout_min",
];

fn terminal_control(p: &Map<String, Value>, now: LocalTime) -> Result<Message, CommandError> {
    let cid = match p.get("command") {
        Some(Value::String(s)) if CONTROLS.iter().any(|c| c.0 == s) => {
            CONTROLS.iter().find(|c| c.0 == s).map_or(0, |c| c.1)
        }
        Some(v @ (Value::String(_) | Value::Number(_))) => byte_id(v, "params.command", false)
            .map_err(|_| {
                CommandError::new(
                    "params.command",
                    "must be upgrade, shutdown, reset, factory_reset, disconnect, alarm, open_sampling_link or a control id",
                )
            })?,
        _ => {
            return Err(CommandError::new(
                "params.command",
                "required: upgrade, shutdown, reset, factory_reset, disconnect, alarm, open_sampling_link or a control id",
            ))
        }
    };
    let command = match cid {
        0x01 => {
            only_keys(p, UPGRADE_KEYS)?;
            ControlCommand::Upgrade(upgrade(p)?)
        }
        0x02..=0x05 | 0x07 => {
            only_keys(p, &["command"])?;
            match cid {
                0x02 => ControlCommand::Shutdown,
                0x03 => ControlCommand::Reset,
                0x04 => ControlCommand::FactoryReset,
                0x05 => ControlCommand::Disconnect,
                _ => ControlCommand::OpenSamplingLink,
            }
        }
        0x06 => {
            only_keys(p, &["command", "level", "text"])?;
            let level = p
                .get("level")
                .and_then(Value::as_u64)
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| {
                    CommandError::new("params.level", "required: 0..4, or 255 invalid")
                })?;
            let text = match p.get("text") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(CommandError::new("params.text", "must be a string")),
            };
            ControlCommand::Alarm { level, text }
        }
        id => {
            only_keys(p, &["command", "params_hex"])?;
            let params = match p.get("params_hex") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(h)) => hex::decode(h.replace(' ', ""))
                    .map_err(|_| CommandError::new("params.params_hex", "not hex"))?,
                Some(_) => return Err(CommandError::new("params.params_hex", "must be a string")),
            };
            ControlCommand::Other { id, params }
        }
    };
    Ok(Message::TerminalControl(Control { time: now, command }))
}

fn text(p: &Map<String, Value>, key: &str) -> Result<String, CommandError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if !s.contains(';') => Ok(s.clone()),
        Some(Value::String(_)) => Err(CommandError::new(
            format!("params.{key}"),
            "must not contain ';' (the upgrade field separator)",
        )),
        Some(_) => Err(CommandError::new(
            format!("params.{key}"),
            "must be a string",
        )),
    }
}

fn word(p: &Map<String, Value>, key: &str) -> Result<Option<u16>, CommandError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                CommandError::new(format!("params.{key}"), "must be an integer 0..65535")
            }),
    }
}

fn upgrade(p: &Map<String, Value>) -> Result<Upgrade, CommandError> {
    let address = match p.get("address") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_address(s).ok_or_else(|| {
            CommandError::new(
                "params.address",
                "must be an IPv4 address (\"10.0.0.1\") or 12 hex digits (6 bytes)",
            )
        })?),
        Some(_) => return Err(CommandError::new("params.address", "must be a string")),
    };
    let fixed = |key: &str, width: usize| -> Result<String, CommandError> {
        let s = text(p, key)?;
        if codecs::text::encode(&s).len() > width {
            return Err(CommandError::new(
                format!("params.{key}"),
                format!("at most {width} characters"),
            ));
        }
        Ok(s)
    };
    Ok(Upgrade {
        apn: text(p, "apn")?,
        user: text(p, "user")?,
        password: text(p, "password")?,
        address,
        port: word(p, "port")?,
        manufacturer: fixed("manufacturer", 4)?,
        hardware_version: fixed("hardware_version", 5)?,
        firmware_version: fixed("firmware_version", 5)?,
        url: text(p, "url")?,
        timeout_min: word(p, "timeout_min")?,
    })
}

fn parse_address(s: &str) -> Option<[u8; 6]> {
    if let Ok(ip) = s.parse::<std::net::Ipv4Addr>() {
        let [a, b, c, d] = ip.octets();
        return Some([0, 0, a, b, c, d]);
    }
    hex::decode(s)
        .ok()
        .and_then(|v| <[u8; 6]>::try_from(v.as_slice()).ok())
}

fn raw(p: &Map<String, Value>) -> Result<Message, CommandError> {
    only_keys(p, &["msg_id", "body_hex"])?;
    let command = byte_id(
        p.get("msg_id").unwrap_or(&Value::Null),
        "params.msg_id",
        false,
    )?;
    let body = match p.get("body_hex") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(h)) => {
            let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode(clean).map_err(|_| CommandError::new("params.body_hex", "not hex"))?
        }
        Some(_) => return Err(CommandError::new("params.body_hex", "must be a hex string")),
    };
    if body.len() > crate::frame::MAX_DATA_LEN {
        return Err(CommandError::new(
            "params.body_hex",
            "longer than 65531 bytes",
        ));
    }
    Ok(Message::Unknown {
        command,
        data: bytes::Bytes::from(body),
    })
}
