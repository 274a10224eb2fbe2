//! Contract commands (CONTRACT.md §4) to JT/T 808 platform messages.
//!
//! Why a builder per type: the platform's JSON is validated here, once, and every
//! rejection names the offending field (`params.text`, `params.msg_id`...), which the
//! gateway publishes as the `rejected` reason. Each command becomes the typed platform
//! message (`Message::Text`, `Message::VehicleControl`...); only `raw` is carried in
//! [`Message::Unknown`] with its id, so the frame layer sends it unchanged.

use codecs::command::{Command, CommandError};
use serde_json::Value;

use crate::msg::params::{self, param_by_name};
use crate::msg::SetParams;
use crate::msg::{
    AlarmConfirm, CameraShot, ControlItem, DownlinkTransparent, QueryParams, SingleMediaUpload,
    StoredMediaSearch, StoredMediaUpload, TemporaryTracking, TerminalControl, TextMessage,
    UpgradePackage, VehicleControl,
};
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

/// Checks `cmd` for edition `version` without building anything that needs more than its
/// params (an `upgrade`'s package is fetched at delivery): what the gateway runs on intake.
pub fn check(cmd: &Command, version: Version) -> Result<(), CommandError> {
    match cmd.kind.as_str() {
        "upgrade" => upgrade(cmd, version).map(|_| ()),
        _ => build(cmd, version).map(|_| ()),
    }
}

/// The message that carries `cmd` in edition `version`.
///
/// Supported types: `text` (0x8300), `query_location` (0x8201), `query_params` (0x8104,
/// or 0x8106 with `ids`), `set_params` (0x8103), `query_attributes` (0x8107),
/// `terminal_control` (0x8105), `temporary_tracking` (0x8202), `alarm_confirm` (0x8203),
/// `vehicle_control` (0x8500), `camera_shot` (0x8801), `stored_media_search` (0x8802),
/// `stored_media_upload` (0x8803), `single_media_upload` (0x8805), `transparent` (0x8900),
/// `raw`.
pub fn build(cmd: &Command, version: Version) -> Result<Message, CommandError> {
    let msg = match cmd.kind.as_str() {
        "text" => text(cmd, version)?,
        "query_location" => Message::QueryLocation,
        "query_params" => query_params(cmd)?,
        "set_params" => set_params(cmd)?,
        // 0x8107: empty body; the terminal answers with 0x0107.
        "query_attributes" => Message::QueryAttributes,
        // 0x8105: command word BYTE | parameters STRING (';'-separated).
        "terminal_control" => {
            let word = uint(cmd, "command", 0xff)?.ok_or_else(|| err("command", "required"))?;
            let args = match field(cmd, "args") {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(err("args", "expected a string")),
            };
            Message::TerminalControl(TerminalControl {
                command: word as u8,
                args,
            })
        }
        // 0x8202: interval WORD (s) | validity DWORD (s).
        "temporary_tracking" => {
            let iv =
                uint(cmd, "interval_s", 0xffff)?.ok_or_else(|| err("interval_s", "required"))?;
            let dur = uint(cmd, "duration_s", 0xffff_ffff)?.unwrap_or(0);
            Message::TemporaryTracking(TemporaryTracking {
                interval_s: iv as u16,
                validity_s: dur as u32,
            })
        }
        "alarm_confirm" => alarm_confirm(cmd)?,
        "camera_shot" => camera_shot(cmd)?,
        "stored_media_search" => Message::StoredMediaSearch(media_search(cmd)?),
        "stored_media_upload" => Message::StoredMediaUpload(StoredMediaUpload {
            search: media_search(cmd)?,
            delete: u8::from(flag(cmd, "delete")?),
        }),
        // 0x8805: media id DWORD | delete flag BYTE.
        "single_media_upload" => Message::SingleMediaUpload(SingleMediaUpload {
            media_id: uint(cmd, "media_id", 0xffff_ffff)?
                .ok_or_else(|| err("media_id", "required"))? as u32,
            delete: u8::from(flag(cmd, "delete")?),
        }),
        "vehicle_control" => vehicle_control(cmd, version)?,
        // 0x8900: message type BYTE | content.
        "transparent" => {
            let t = uint(cmd, "msg_type", 0xff)?.ok_or_else(|| err("msg_type", "required"))?;
            Message::DownlinkTransparent(DownlinkTransparent {
                msg_type: t as u8,
                data: hex_bytes(cmd, "data_hex")?,
            })
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
            Message::Unknown {
                msg_id: id,
                body: hex_bytes(cmd, "body_hex")?,
            }
        }
        "upgrade" => return Err(CommandError::new(
            "type",
            "upgrade is pushed in packages by the session (jt808::ota), not built as one message",
        )),
        _ => {
            return Err(CommandError::new(
                "type",
                format!("{} is not supported for jt808", cmd.kind),
            ))
        }
    };
    let body = msg
        .encode_body(version)
        .map_err(|e| CommandError::new("params", e.to_string()))?;
    if body.len() > crate::header::MAX_BODY_LEN {
        return Err(CommandError::new("params", "body longer than 1023 bytes"));
    }
    Ok(msg)
}

/// 0x8300 flags: bit 0 emergency, 2 display, 3 TTS, 4 advertising screen; 2019 adds a
/// text-type BYTE after the flag (1 notice, 2 service).
fn text(cmd: &Command, version: Version) -> Result<Message, CommandError> {
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
    let text_type = match version {
        Version::V2019 => Some(uint(cmd, "text_type", 0xff)?.unwrap_or(1) as u8),
        Version::V2011 | Version::V2013 => None,
    };
    Ok(Message::Text(TextMessage {
        flags: flag,
        text_type,
        text: t.clone(),
    }))
}

/// 0x8104 (all parameters) or 0x8106 (count BYTE | ids DWORD...).
fn query_params(cmd: &Command) -> Result<Message, CommandError> {
    let Some(ids) = field(cmd, "ids") else {
        return Ok(Message::QueryAllParams);
    };
    let ids = ids
        .as_array()
        .ok_or_else(|| err("ids", "expected a list"))?;
    if ids.is_empty() {
        return Ok(Message::QueryAllParams);
    }
    if ids.len() > 255 {
        return Err(err("ids", "at most 255 ids"));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let v = match id {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => param_by_name(s)
                .map(|d| d.id)
                .or_else(|| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok()),
            _ => None,
        }
        .ok_or_else(|| err("ids", &format!("bad parameter id {id} (a name or hex id)")))?;
        out.push(v);
    }
    Ok(Message::QueryParams(QueryParams { ids: out }))
}

/// 0x8103 set terminal parameters: `params.params`, an object of parameter name
/// (`heartbeat_interval_s`) or id (`"0x0029"`) to value, typed by the parameter table
/// ([`crate::msg::params`]): numbers for BYTE/WORD/DWORD, strings for STRING, hex for
/// BYTE[n] and ids the table does not know. Items are sent in the JSON object's
/// iteration order (sorted by key); the standard gives the order no meaning.
fn set_params(cmd: &Command) -> Result<Message, CommandError> {
    let map = match field(cmd, "params") {
        Some(Value::Object(m)) if !m.is_empty() => m,
        Some(Value::Object(_)) => return Err(err("params", "no parameters to set")),
        Some(_) => return Err(err("params", "expected an object of name or id to value")),
        None => return Err(err("params", "required")),
    };
    if map.len() > 255 {
        return Err(err("params", "at most 255 parameters"));
    }
    let params = params::from_json_map(map)
        .map_err(|e| CommandError::new(format!("params.params.{}", e.key), e.reason))?;
    Ok(Message::SetParams(SetParams { params }))
}

/// 0x8203 manual alarm confirmation: alarm message serial WORD | alarm type DWORD.
///
/// `alarm_serial` is the serial of the report that raised the alarm (the `msg_seq` of its
/// `alarm` event; 0 or absent: every report of these alarms). The alarms are `alarms`, a
/// list of alarm names (the `name` of `alarm` events, `location.data.alarms`) or bit numbers,
/// or `alarm_type`, the whole DWORD; one of the two, not both, and at least one bit.
fn alarm_confirm(cmd: &Command) -> Result<Message, CommandError> {
    let alarm_serial = uint(cmd, "alarm_serial", 0xffff)?.unwrap_or(0) as u16;
    let word = uint(cmd, "alarm_type", 0xffff_ffff)?;
    let alarm_type = match (field(cmd, "alarms"), word) {
        (Some(_), Some(_)) => return Err(err("alarm_type", "give alarms or alarm_type, not both")),
        (None, Some(w)) => w as u32,
        (None, None) => return Err(err("alarms", "required (or alarm_type)")),
        (Some(list), None) => {
            let list = list
                .as_array()
                .ok_or_else(|| err("alarms", "expected a list of alarm names or bits"))?;
            let mut word = 0u32;
            for a in list {
                let bit = match a {
                    Value::String(name) => crate::normalize::alarm_bit(name),
                    Value::Number(n) => n.as_u64().filter(|b| *b < 32).map(|b| b as u32),
                    _ => None,
                }
                .ok_or_else(|| err("alarms", &format!("unknown alarm {a}")))?;
                word |= 1 << bit;
            }
            word
        }
    };
    if alarm_type == 0 {
        return Err(err("alarms", "no alarm to confirm"));
    }
    Ok(Message::AlarmConfirm(AlarmConfirm {
        alarm_serial,
        alarm_type,
    }))
}

/// An optional boolean (absent: false).
fn flag(cmd: &Command, name: &str) -> Result<bool, CommandError> {
    match field(cmd, name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(name, "expected true or false")),
    }
}

/// A code given by name (`names[i]` is code i) or as a number 0..=255.
fn code(cmd: &Command, name: &str, names: &[&str]) -> Result<Option<u8>, CommandError> {
    match field(cmd, name) {
        None => Ok(None),
        Some(Value::String(s)) => names
            .iter()
            .position(|n| n == s)
            .map(|i| Some(i as u8))
            .ok_or_else(|| err(name, &format!("one of {} or a code", names.join(", ")))),
        Some(_) => uint(cmd, name, 0xff).map(|v| v.map(|n| n as u8)),
    }
}

/// An optional RFC 3339 time as the terminal's clock shows it (GMT+8, JT/T 808's zone);
/// absent: all zeros, "no limit".
fn device_time(cmd: &Command, name: &str) -> Result<codecs::time::LocalTime, CommandError> {
    match field(cmd, name) {
        None => Ok(codecs::time::LocalTime::default()),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| {
                codecs::time::LocalTime::from_utc(
                    t.with_timezone(&chrono::Utc),
                    codecs::time::BEIJING_OFFSET_SECS,
                )
            })
            .map_err(|_| err(name, "expected an RFC 3339 time")),
        Some(_) => Err(err(name, "expected an RFC 3339 time string")),
    }
}

/// 0x8801 take pictures or video now: channel BYTE | command WORD (0 stop, 0xFFFF video,
/// else the number of pictures) | interval WORD (s) | save BYTE | resolution BYTE | quality
/// BYTE | brightness | contrast | saturation | chroma. `channel` is required; `count`
/// (pictures, default 1) or `video: true` or `stop: true`; `interval_s` (default 0); `save`
/// (default false: upload at once, as 0x0801); image settings default to resolution 1
/// (320x240), quality 5, brightness 128, contrast 64, saturation 64, chroma 128.
fn camera_shot(cmd: &Command) -> Result<Message, CommandError> {
    let channel = uint(cmd, "channel", 0xff)?.ok_or_else(|| err("channel", "required"))?;
    let command = match (flag(cmd, "stop")?, flag(cmd, "video")?, field(cmd, "count")) {
        (true, false, None) => 0,
        (false, true, None) => 0xFFFF,
        (false, false, _) => uint(cmd, "count", 0xFFFE)?.unwrap_or(1),
        _ => return Err(err("count", "give one of count, video or stop")),
    };
    let byte = |name: &str, default: u64| uint(cmd, name, 0xff).map(|v| v.unwrap_or(default) as u8);
    Ok(Message::CameraShotCommand(CameraShot {
        channel: channel as u8,
        command: command as u16,
        interval_s: uint(cmd, "interval_s", 0xffff)?.unwrap_or(0) as u16,
        save: u8::from(flag(cmd, "save")?),
        resolution: byte("resolution", 1)?,
        quality: byte("quality", 5)?,
        brightness: byte("brightness", 128)?,
        contrast: byte("contrast", 64)?,
        saturation: byte("saturation", 64)?,
        chroma: byte("chroma", 128)?,
    }))
}

/// 0x8802 / 0x8803 search criteria: `media_type` (`image`, `audio`, `video` or 0..2,
/// default image), `channel` (default 0: all), `event` (`platform_command`, `timed`,
/// `robbery_alarm`, `collision` or a code, default 0), `start` / `end` (RFC 3339; absent:
/// no limit).
fn media_search(cmd: &Command) -> Result<StoredMediaSearch, CommandError> {
    Ok(StoredMediaSearch {
        media_type: code(cmd, "media_type", &["image", "audio", "video"])?.unwrap_or(0),
        channel: uint(cmd, "channel", 0xff)?.unwrap_or(0) as u8,
        event: code(
            cmd,
            "event",
            &["platform_command", "timed", "robbery_alarm", "collision"],
        )?
        .unwrap_or(0),
        start: device_time(cmd, "start")?,
        end: device_time(cmd, "end")?,
    })
}

/// 0x8500 vehicle control. `door` (`"lock"` / `"unlock"`) works in every edition: the
/// 2013 control flag's bit 0, or the 2019 item 0x0001 with its BYTE parameter. 2013 also
/// takes a whole `flag` byte; 2019 takes `items`, a list of `{"id": n or "0xNNNN",
/// "value": 0..255 (one BYTE) or a hex string (the parameter bytes)}` after the door item.
fn vehicle_control(cmd: &Command, version: Version) -> Result<Message, CommandError> {
    let door = match field(cmd, "door") {
        None => None,
        Some(Value::String(s)) if s == "lock" => Some(1u8),
        Some(Value::String(s)) if s == "unlock" => Some(0u8),
        Some(_) => return Err(err("door", "expected \"lock\" or \"unlock\"")),
    };
    let flag = uint(cmd, "flag", 0xff)?;
    let items = field(cmd, "items");
    let control = if version == Version::V2019 {
        if flag.is_some() {
            return Err(err("flag", "2013 layout only; use door or items in 2019"));
        }
        let mut list: Vec<ControlItem> = door
            .map(|d| ControlItem {
                id: crate::msg::platform_control::CONTROL_DOOR,
                param: vec![d],
            })
            .into_iter()
            .collect();
        if let Some(items) = items {
            let items = items
                .as_array()
                .ok_or_else(|| err("items", "expected a list"))?;
            for it in items {
                list.push(control_item(it)?);
            }
        }
        if list.is_empty() {
            return Err(err("door", "required (or items)"));
        }
        // A type other than the door has no length in the standard: only the last may.
        let n = list.len();
        if list
            .iter()
            .take(n.saturating_sub(1))
            .any(|i| i.id != crate::msg::platform_control::CONTROL_DOOR)
        {
            return Err(err(
                "items",
                "only the last item may be a type other than 0x0001",
            ));
        }
        VehicleControl::Items { items: list }
    } else {
        if items.is_some() {
            return Err(err(
                "items",
                "2019 layout only; use door or flag before 2019",
            ));
        }
        let flag = match (door, flag) {
            (Some(_), Some(_)) => return Err(err("flag", "give door or flag, not both")),
            (Some(d), None) => d,
            (None, Some(f)) => f as u8,
            (None, None) => return Err(err("door", "required (or flag)")),
        };
        VehicleControl::Flag { flag }
    };
    Ok(Message::VehicleControl(control))
}

/// One 2019 control item `{"id": ..., "value": ...}`.
fn control_item(it: &Value) -> Result<ControlItem, CommandError> {
    let id = match it.get("id") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(Value::String(s)) => s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .and_then(|h| u16::from_str_radix(h, 16).ok()),
        _ => None,
    }
    .ok_or_else(|| {
        err(
            "items",
            "each item needs an id 0..=0xffff (number or \"0xNNNN\")",
        )
    })?;
    let param = match it.get("value") {
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u8::try_from(n).ok()) {
            Some(b) => vec![b],
            None => return Err(err("items", "a numeric value is one BYTE, 0..=255")),
        },
        Some(Value::String(s)) => {
            hex::decode(s).map_err(|_| err("items", "a string value must be hex"))?
        }
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(err("items", "value: a number or a hex string")),
    };
    if id == crate::msg::platform_control::CONTROL_DOOR && param.len() != 1 {
        return Err(err("items", "the door item (0x0001) takes one BYTE value"));
    }
    Ok(ControlItem { id, param })
}

/// Where an `upgrade` command's package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageRef {
    /// A package uploaded to the gateway, named by its SHA-256 (lowercase hex).
    Stored(String),
    /// An `http://` or `https://` URL the gateway downloads the package from.
    Url(String),
}

/// An `upgrade` command (0x8108) read from its params; the package itself is fetched and
/// pushed by the session ([`crate::ota::Push`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeOrder {
    /// The 0x8108 fields before the package (`package` is left empty).
    pub message: UpgradePackage,
    pub package: PackageRef,
    /// The SHA-256 the package must have (lowercase hex), when given.
    pub sha256: Option<String>,
    /// Body bytes per package, when the command sets it (1..=1023).
    pub package_bytes: Option<usize>,
    /// How long to wait for the 0x0108 result after the transfer, when the command sets it.
    pub result_timeout_s: Option<u64>,
}

/// Upgrade types by name (JT/T 808-2013 §8.15: 0 terminal, 12 road transport permit IC
/// card reader, 52 BeiDou positioning module).
const UPGRADE_TYPES: [(&str, u8); 3] = [("terminal", 0), ("ic_card_reader", 12), ("gnss", 52)];

fn sha256_hex(cmd: &Command, name: &str) -> Result<Option<String>, CommandError> {
    match field(cmd, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(s.to_ascii_lowercase()))
        }
        Some(_) => Err(err(name, "expected a SHA-256 as 64 hex digits")),
    }
}

/// Reads an `upgrade` command: `version` (required), `package` (the id an upload to the
/// operator API returned) or `url` (http/https), optional `upgrade_type` (`terminal`,
/// `ic_card_reader`, `gnss` or 0..=255; default terminal), `manufacturer` (up to 5 ASCII
/// characters, 11 in 2019, NUL-padded), `sha256`, `package_bytes`, `result_timeout_s`.
pub fn upgrade(cmd: &Command, version: Version) -> Result<UpgradeOrder, CommandError> {
    let upgrade_type = match field(cmd, "upgrade_type") {
        None => 0,
        Some(Value::String(s)) => UPGRADE_TYPES
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                err(
                    "upgrade_type",
                    "expected terminal, ic_card_reader, gnss or 0..=255",
                )
            })?,
        Some(_) => uint(cmd, "upgrade_type", 0xff)?.unwrap_or(0) as u8,
    };
    let width = UpgradePackage::maker_id_len(version);
    let mut maker_id = match field(cmd, "manufacturer") {
        None => Vec::new(),
        Some(Value::String(s)) if s.is_ascii() && s.len() <= width => s.as_bytes().to_vec(),
        Some(_) => {
            return Err(err(
                "manufacturer",
                &format!("expected at most {width} ASCII characters"),
            ))
        }
    };
    maker_id.resize(width, 0);
    let fw = match field(cmd, "version") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(err("version", "expected a non-empty string")),
        None => return Err(err("version", "required (the firmware version)")),
    };
    let package = match (field(cmd, "package"), field(cmd, "url")) {
        (Some(_), Some(_)) => return Err(err("url", "give package or url, not both")),
        (None, None) => return Err(err("package", "required (or url)")),
        (Some(_), None) => PackageRef::Stored(
            sha256_hex(cmd, "package")?.ok_or_else(|| err("package", "required"))?,
        ),
        (None, Some(Value::String(u))) if u.starts_with("http://") || u.starts_with("https://") => {
            PackageRef::Url(u.clone())
        }
        (None, Some(_)) => return Err(err("url", "expected an http:// or https:// URL")),
    };
    let package_bytes =
        uint(cmd, "package_bytes", crate::header::MAX_BODY_LEN as u64)?.map(|n| n as usize);
    if package_bytes == Some(0) {
        return Err(err("package_bytes", "expected 1..=1023"));
    }
    let message = UpgradePackage {
        upgrade_type,
        maker_id,
        version: fw,
        package: Vec::new(),
    };
    // The head must encode (version length, maker width) in this edition.
    message
        .encode_head(version, 0, &mut Vec::new())
        .map_err(|e| CommandError::new("params", e.to_string()))?;
    Ok(UpgradeOrder {
        message,
        package,
        sha256: sha256_hex(cmd, "sha256")?,
        package_bytes,
        result_timeout_s: uint(cmd, "result_timeout_s", 30 * 86_400)?,
    })
}
