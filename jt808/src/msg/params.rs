//! The terminal parameter table (JT/T 808-2013 §8.8 table 12, JT/T 808-2019 §8.8 table 13)
//! and the parameter list carried by 0x8103 (set) and 0x0104 (query answer).
//!
//! ```text
//! parameter item: id DWORD | length BYTE | value BYTE[length]
//! ```
//!
//! Why a table: the platform's JSON names parameters (`{"heartbeat_interval_s": 30}`) and
//! the wire carries ids and big-endian values whose width only the table knows. Every
//! standard id has a snake_case name and a wire type; ids the table does not know
//! (vendor ranges 0xF000-0xFFFF, JT/T 1078 parameters we keep raw) are keyed `"0xNNNN"`
//! with their value as hex, so nothing is lost in either direction.
//!
//! Edition notes: 0x0018/0x0019 (server TCP/UDP port) are 2013 only (2019 folds the port
//! into 0x0013/0x0017 as `host:port`); 0x0023-0x0026 (slave server) and 0x0032 (illegal
//! driving period) are 2019 only; 0x0075-0x007C are JT/T 1078 audio/video parameters, kept
//! as raw bytes. 0x001E/0x001F are reserved in both editions.
//!
//! A value whose length does not match its type (a DWORD sent in 2 bytes, text that is not
//! GBK) decodes to [`ParamValue::Bytes`], so it encodes back to the same bytes. Text values
//! have their device padding (trailing 0x00, spaces, 0xFF) trimmed.

use std::sync::OnceLock;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::Reader;
use crate::BodyError;

/// How a parameter's value is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// BYTE.
    Byte,
    /// WORD, big-endian.
    Word,
    /// DWORD, big-endian.
    Dword,
    /// STRING, GBK.
    Str,
    /// BYTE[n] when `Some(n)`, bytes of any length when `None`; hex in JSON.
    Bytes(Option<usize>),
}

/// One row of the parameter table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamDef {
    /// Parameter id.
    pub id: u32,
    /// snake_case name used in JSON (unit in the name where there is one).
    pub name: &'static str,
    /// Wire type.
    pub kind: ParamType,
}

const fn def(id: u32, name: &'static str, kind: ParamType) -> ParamDef {
    ParamDef { id, name, kind }
}

use ParamType::{Byte, Bytes, Dword, Str, Word};

/// The standard parameters, by id. CAN id collection settings 0x0110-0x01FF are added by
/// [`table`].
const STANDARD: &[ParamDef] = &[
    // Communication (table 12 rows 0x0001-0x0007).
    def(0x0001, "heartbeat_interval_s", Dword),
    def(0x0002, "tcp_ack_timeout_s", Dword),
    def(0x0003, "tcp_retransmissions", Dword),
    def(0x0004, "udp_ack_timeout_s", Dword),
    def(0x0005, "udp_retransmissions", Dword),
    def(0x0006, "sms_ack_timeout_s", Dword),
    def(0x0007, "sms_retransmissions", Dword),
    // Servers (0x0010-0x001D).
    def(0x0010, "main_server_apn", Str),
    def(0x0011, "main_server_user", Str),
    def(0x0012, "main_server_password", Str),
    def(0x0013, "main_server_address", Str),
    def(0x0014, "backup_server_apn", Str),
    def(0x0015, "backup_server_user", Str),
    def(0x0016, "backup_server_password", Str),
    def(0x0017, "backup_server_address", Str),
    def(0x0018, "server_tcp_port", Dword),
    def(0x0019, "server_udp_port", Dword),
    def(0x001A, "ic_card_main_server_address", Str),
    def(0x001B, "ic_card_server_tcp_port", Dword),
    def(0x001C, "ic_card_server_udp_port", Dword),
    def(0x001D, "ic_card_backup_server_address", Str),
    // Location reporting (0x0020-0x0032).
    def(0x0020, "report_strategy", Dword),
    def(0x0021, "report_scheme", Dword),
    def(0x0022, "report_interval_no_driver_s", Dword),
    def(0x0023, "slave_server_apn", Str),
    def(0x0024, "slave_server_user", Str),
    def(0x0025, "slave_server_password", Str),
    def(0x0026, "slave_server_address", Str),
    def(0x0027, "report_interval_sleep_s", Dword),
    def(0x0028, "report_interval_alarm_s", Dword),
    def(0x0029, "report_interval_default_s", Dword),
    def(0x002C, "report_distance_default_m", Dword),
    def(0x002D, "report_distance_no_driver_m", Dword),
    def(0x002E, "report_distance_sleep_m", Dword),
    def(0x002F, "report_distance_alarm_m", Dword),
    def(0x0030, "corner_resend_angle_deg", Dword),
    def(0x0031, "fence_radius_m", Word),
    // 2019: start hour, start minute, end hour, end minute (BCD-free bytes).
    def(0x0032, "illegal_driving_period", Bytes(Some(4))),
    // Phones and calls (0x0040-0x0049).
    def(0x0040, "platform_phone", Str),
    def(0x0041, "reset_phone", Str),
    def(0x0042, "factory_reset_phone", Str),
    def(0x0043, "platform_sms_phone", Str),
    def(0x0044, "alarm_sms_phone", Str),
    def(0x0045, "answer_policy", Dword),
    def(0x0046, "max_call_time_s", Dword),
    def(0x0047, "max_call_time_month_s", Dword),
    def(0x0048, "monitor_phone", Str),
    def(0x0049, "privileged_sms_phone", Str),
    // Alarms and driving limits (0x0050-0x005E).
    def(0x0050, "alarm_mask", Dword),
    def(0x0051, "alarm_sms_switch", Dword),
    def(0x0052, "alarm_shot_switch", Dword),
    def(0x0053, "alarm_shot_store", Dword),
    def(0x0054, "key_alarm_flags", Dword),
    def(0x0055, "max_speed_kmh", Dword),
    def(0x0056, "overspeed_duration_s", Dword),
    def(0x0057, "continuous_driving_limit_s", Dword),
    def(0x0058, "daily_driving_limit_s", Dword),
    def(0x0059, "min_rest_s", Dword),
    def(0x005A, "max_parking_s", Dword),
    // 1/10 km/h.
    def(0x005B, "overspeed_warning_delta", Word),
    def(0x005C, "fatigue_warning_delta_s", Word),
    // bits 0-7 collision time (4 ms), bits 8-15 acceleration (0.1 g).
    def(0x005D, "collision_alarm", Word),
    def(0x005E, "rollover_angle_deg", Word),
    // Cameras (0x0064-0x0074).
    def(0x0064, "timed_shot_control", Dword),
    def(0x0065, "distance_shot_control", Dword),
    def(0x0070, "image_quality", Dword),
    def(0x0071, "brightness", Dword),
    def(0x0072, "contrast", Dword),
    def(0x0073, "saturation", Dword),
    def(0x0074, "chroma", Dword),
    // JT/T 1078-2016 table 2 audio/video parameters: kept raw.
    def(0x0075, "av_params", Bytes(None)),
    def(0x0076, "av_channels", Bytes(None)),
    def(0x0077, "av_channel_params", Bytes(None)),
    def(0x0079, "special_alarm_recording", Bytes(None)),
    def(0x007A, "video_alarm_mask", Bytes(None)),
    def(0x007B, "image_analysis_alarm", Bytes(None)),
    def(0x007C, "sleep_wake_mode", Bytes(None)),
    // Vehicle (0x0080-0x0084).
    // 1/10 km.
    def(0x0080, "odometer", Dword),
    def(0x0081, "province_id", Word),
    def(0x0082, "city_id", Word),
    def(0x0083, "plate", Str),
    def(0x0084, "plate_color", Byte),
    // GNSS module (0x0090-0x0095).
    def(0x0090, "gnss_mode", Byte),
    def(0x0091, "gnss_baud_rate", Byte),
    def(0x0092, "gnss_output_rate", Byte),
    def(0x0093, "gnss_sample_interval_s", Dword),
    def(0x0094, "gnss_upload_mode", Byte),
    def(0x0095, "gnss_upload_setting", Dword),
    // CAN bus (0x0100-0x0103).
    def(0x0100, "can1_collect_interval_ms", Dword),
    def(0x0101, "can1_upload_interval_s", Word),
    def(0x0102, "can2_collect_interval_ms", Dword),
    def(0x0103, "can2_upload_interval_s", Word),
    // 0x0110: CAN id collection: bits 63-32 interval (ms), 31 channel, 30 frame type,
    // 29 method, 28-0 CAN id.
    def(0x0110, "can_id_collection", Bytes(Some(8))),
];

/// First and last id of the "other CAN id collection settings" rows (BYTE[8] each).
const CAN_OTHER: std::ops::RangeInclusive<u32> = 0x0111..=0x01FF;

/// The whole table, sorted by id: [`STANDARD`] and `can_id_collection_0111` ..
/// `can_id_collection_01ff`.
pub fn table() -> &'static [ParamDef] {
    static TABLE: OnceLock<Vec<ParamDef>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = STANDARD.to_vec();
        for id in CAN_OTHER {
            // Built once per process: 239 short names.
            let name: &'static str = Box::leak(format!("can_id_collection_{id:04x}").into());
            t.push(def(id, name, Bytes(Some(8))));
        }
        t.sort_by_key(|d| d.id);
        t
    })
}

/// The table row of parameter `id`.
pub fn param_by_id(id: u32) -> Option<&'static ParamDef> {
    let t = table();
    t.binary_search_by_key(&id, |d| d.id)
        .ok()
        .and_then(|i| t.get(i))
}

/// The table row named `name` (snake_case, as in [`ParamDef::name`]).
pub fn param_by_name(name: &str) -> Option<&'static ParamDef> {
    table().iter().find(|d| d.name == name)
}

/// A parameter value, typed by the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// BYTE.
    U8(u8),
    /// WORD.
    U16(u16),
    /// DWORD.
    U32(u32),
    /// STRING (GBK on the wire).
    Str(String),
    /// BYTE[n], unknown ids, and values whose length does not match their type.
    Bytes(#[serde(serialize_with = "super::as_hex")] Vec<u8>),
}

/// One parameter: id and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter id (DWORD on the wire).
    pub id: u32,
    /// Value.
    pub value: ParamValue,
}

/// A parameter the JSON cannot give: which key and why (for a command's `rejected` reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ParamError {
    /// The JSON key (name or id) as given.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn perr(key: &str, reason: impl Into<String>) -> ParamError {
    ParamError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Parses `"0x0029"`, `"0X29"` or `"41"` as a parameter id.
pub fn parse_id(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() => u32::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

impl Param {
    /// Types the value bytes of parameter `id` by the table.
    pub fn decode(id: u32, bytes: &[u8]) -> Param {
        let raw = || ParamValue::Bytes(bytes.to_vec());
        let value = match (param_by_id(id).map(|d| d.kind), bytes) {
            (Some(Byte), [a]) => ParamValue::U8(*a),
            (Some(Word), [a, b]) => ParamValue::U16(u16::from_be_bytes([*a, *b])),
            (Some(Dword), [a, b, c, d]) => ParamValue::U32(u32::from_be_bytes([*a, *b, *c, *d])),
            (Some(Str), b) => {
                let t = trim_end_padding(b);
                if codecs::text::is_valid(t) {
                    ParamValue::Str(codecs::text::decode(t))
                } else {
                    raw()
                }
            }
            _ => raw(),
        };
        Param { id, value }
    }

    /// The value bytes as written on the wire.
    pub fn value_bytes(&self) -> Vec<u8> {
        match &self.value {
            ParamValue::U8(v) => vec![*v],
            ParamValue::U16(v) => v.to_be_bytes().to_vec(),
            ParamValue::U32(v) => v.to_be_bytes().to_vec(),
            ParamValue::Str(s) => codecs::text::encode(s),
            ParamValue::Bytes(b) => b.clone(),
        }
    }

    /// The JSON key: the table name, or `"0xNNNN"` for ids the table does not know.
    pub fn key(&self) -> String {
        match param_by_id(self.id) {
            Some(d) => d.name.to_string(),
            None => format!("0x{:04x}", self.id),
        }
    }

    /// The JSON value: numbers for BYTE/WORD/DWORD, a string for STRING, hex otherwise.
    pub fn to_json(&self) -> Value {
        match &self.value {
            ParamValue::U8(v) => Value::from(*v),
            ParamValue::U16(v) => Value::from(*v),
            ParamValue::U32(v) => Value::from(*v),
            ParamValue::Str(s) => Value::from(s.as_str()),
            ParamValue::Bytes(b) => Value::from(hex::encode(b)),
        }
    }

    /// The parameter a JSON key (a table name, `"0xNNNN"` or a decimal id) and value give.
    ///
    /// Numbers must fit the parameter's width; STRING takes a string; BYTE[n], raw and
    /// unknown ids take hex (exactly `n` bytes for BYTE[n]).
    pub fn from_json(key: &str, value: &Value) -> Result<Param, ParamError> {
        let def = param_by_name(key).or_else(|| parse_id(key).and_then(param_by_id));
        let id = match def {
            Some(d) => d.id,
            None => parse_id(key).ok_or_else(|| perr(key, "unknown parameter name"))?,
        };
        let num = |max: u64| -> Result<u64, ParamError> {
            value
                .as_u64()
                .filter(|n| *n <= max)
                .ok_or_else(|| perr(key, format!("expected an integer 0..={max}")))
        };
        let hex_value = |n: Option<usize>| -> Result<Vec<u8>, ParamError> {
            let b = value
                .as_str()
                .and_then(|s| hex::decode(s).ok())
                .ok_or_else(|| perr(key, "expected a hex string"))?;
            match n {
                Some(n) if b.len() != n => Err(perr(key, format!("expected {n} bytes of hex"))),
                _ => Ok(b),
            }
        };
        let value = match def.map(|d| d.kind) {
            Some(Byte) => ParamValue::U8(num(0xff)? as u8),
            Some(Word) => ParamValue::U16(num(0xffff)? as u16),
            Some(Dword) => ParamValue::U32(num(0xffff_ffff)? as u32),
            Some(Str) => ParamValue::Str(
                value
                    .as_str()
                    .ok_or_else(|| perr(key, "expected a string"))?
                    .to_string(),
            ),
            Some(Bytes(n)) => ParamValue::Bytes(hex_value(n)?),
            None => ParamValue::Bytes(hex_value(None)?),
        };
        let p = Param { id, value };
        if p.value_bytes().len() > 255 {
            return Err(perr(key, "value longer than 255 bytes"));
        }
        Ok(p)
    }
}

/// Strips trailing device padding (0x00, spaces, 0xFF) from a STRING value.
fn trim_end_padding(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !matches!(c, 0 | b' ' | 0xff))
        .map_or(0, |e| e + 1);
    b.get(..end).unwrap_or(&[])
}

/// Reads `count` parameter items (0x8103 after its count, 0x0104 after serial and count).
///
/// A body that ends on an item boundary before `count` items is accepted with the items
/// it has: some terminals declare more parameters than they send (SmallChi's 0x0104 test
/// vector declares 9 and carries 7). An item cut short is [`BodyError::TooShort`].
pub(crate) fn read_list(r: &mut Reader<'_>, count: usize) -> Result<Vec<Param>, BodyError> {
    let mut out = Vec::with_capacity(count.min(r.remaining() / 5));
    for _ in 0..count {
        if r.remaining() == 0 {
            break;
        }
        let id = r.u32()?;
        let n = usize::from(r.u8()?);
        out.push(Param::decode(id, r.take(n)?));
    }
    Ok(out)
}

/// Appends `count BYTE | items` for `msg_id` (0x8103, 0x0104); more than 255 items or a
/// value longer than 255 bytes is [`BodyError::Invalid`].
pub fn write_list(params: &[Param], msg_id: u16, out: &mut Vec<u8>) -> Result<(), BodyError> {
    let n = u8::try_from(params.len()).map_err(|_| BodyError::Invalid {
        msg_id,
        field: "params",
        len: params.len(),
    })?;
    out.push(n);
    for p in params {
        let v = p.value_bytes();
        let len = u8::try_from(v.len()).map_err(|_| BodyError::Invalid {
            msg_id,
            field: "params",
            len: v.len(),
        })?;
        out.extend_from_slice(&p.id.to_be_bytes());
        out.push(len);
        out.extend_from_slice(&v);
    }
    Ok(())
}

/// Reads `count BYTE | items` (the body of 0x8103, the part of 0x0104 after its serial).
pub fn decode_list(msg_id: u16, body: &[u8]) -> Result<Vec<Param>, BodyError> {
    let mut r = Reader::new(msg_id, body);
    let count = usize::from(r.u8()?);
    read_list(&mut r, count)
}

/// The list as a JSON object keyed by name (or `"0xNNNN"`); a repeated id keeps the last.
pub fn to_json_map(params: &[Param]) -> Map<String, Value> {
    params.iter().map(|p| (p.key(), p.to_json())).collect()
}

/// The list a JSON object gives (see [`Param::from_json`]), in the object's key order.
pub fn from_json_map(map: &Map<String, Value>) -> Result<Vec<Param>, ParamError> {
    map.iter().map(|(k, v)| Param::from_json(k, v)).collect()
}

/// Serializes a parameter list as the JSON object of [`to_json_map`].
pub(crate) fn serialize_params<S: Serializer>(params: &[Param], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(params.len()))?;
    for p in params {
        m.serialize_entry(&p.key(), &p.to_json())?;
    }
    m.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_id_is_unique_and_the_table_is_sorted() {
        let t = table();
        for w in t.windows(2) {
            if let [a, b] = w {
                assert!(a.id < b.id, "{:#06x} {:#06x}", a.id, b.id);
            }
        }
        let mut names: Vec<_> = t.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), t.len());
    }

    #[test]
    fn lookups_by_name_and_id_agree() {
        let d = param_by_name("heartbeat_interval_s").expect("row");
        assert_eq!(d.id, 1);
        assert_eq!(
            param_by_id(0x0029).map(|d| d.name),
            Some("report_interval_default_s")
        );
        assert_eq!(
            param_by_id(0x01ff).map(|d| d.name),
            Some("can_id_collection_01ff")
        );
        assert_eq!(param_by_id(0xf000), None);
        assert_eq!(parse_id("0x0029"), Some(0x29));
        assert_eq!(parse_id("41"), Some(41));
        assert_eq!(parse_id("0x"), None);
    }

    #[test]
    fn values_are_typed_by_the_table_and_odd_lengths_stay_raw() {
        assert_eq!(Param::decode(1, &[0, 0, 0, 30]).value, ParamValue::U32(30));
        assert_eq!(
            Param::decode(1, &[0, 30]).value,
            ParamValue::Bytes(vec![0, 30])
        );
        assert_eq!(
            Param::decode(0x13, b"10.0.0.1\0").value,
            ParamValue::Str("10.0.0.1".into())
        );
        assert_eq!(
            Param::decode(0x17, &[0]).value,
            ParamValue::Str(String::new())
        );
        assert_eq!(
            Param::decode(0xf001, &[1, 2]).value,
            ParamValue::Bytes(vec![1, 2])
        );
    }

    #[test]
    fn json_keys_are_names_or_hex_ids_and_values_are_checked() {
        let p = Param::from_json("heartbeat_interval_s", &Value::from(30)).expect("param");
        assert_eq!(
            p,
            Param {
                id: 1,
                value: ParamValue::U32(30)
            }
        );
        let p = Param::from_json("0x0084", &Value::from(2)).expect("param");
        assert_eq!(p.value, ParamValue::U8(2));
        let p = Param::from_json("0xf001", &Value::from("0102")).expect("param");
        assert_eq!(p.key(), "0xf001");
        assert_eq!(p.to_json(), Value::from("0102"));
        assert!(Param::from_json("plate_color", &Value::from(256)).is_err());
        assert!(Param::from_json("no_such_param", &Value::from(1)).is_err());
        assert!(Param::from_json("can_id_collection", &Value::from("01")).is_err());
    }
}
