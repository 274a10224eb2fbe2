//! 0x80 parameter query and 0x81 parameter setting, and the parameter table of both
//! editions.
//!
//! Query (2016 table B.10 / 2025 table B.5): time, N (0..252), N ids. Answer (table B.6,
//! decoded as a [`super::Response`] with params): time, N, (id, value)*. Setting (table B.9):
//! time, N, (id, value)*; 0x07/0x08 cannot be set and one bad item rejects all.
//!
//! Parameter ids and widths (2016 table B.12, 2025 table B.8; sunsky74/gbt32960-simulator
//! docs/standard/2016.md and 2025.md). 0x02 and 0x03 are WORDs in 2016 (seconds and
//! milliseconds) but BYTEs in 2025 (1..30 s and 0..1 s), as EMQX's parser suite
//! `case_2025_param_query_byte_params` also shows. 0x05/0x0E domains take their length
//! from the 0x04/0x0D item before them (as EMQX's parser does).

use codecs::time::LocalTime;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::{id, put_fixed, put_time, Reader};
use crate::{BodyError, Edition};

/// Largest parameter count (table B.5/B.9: "0~252").
pub const MAX_PARAMS: usize = 252;
/// Width of the hardware and firmware version strings.
pub const VERSION_LEN: usize = 5;

/// How a parameter's value is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// One byte.
    Byte,
    /// A big-endian WORD.
    Word,
    /// Fixed-width text (versions, 5 bytes).
    Text(usize),
    /// Text whose length is the value of the given earlier parameter id.
    Domain(u8),
}

/// (id, name, 2016 kind, 2025 kind, settable).
const TABLE: &[(u8, &str, ParamKind, ParamKind, bool)] = &[
    (
        0x01,
        "local_storage_period_ms",
        ParamKind::Word,
        ParamKind::Word,
        true,
    ),
    (
        0x02,
        "report_period_s",
        ParamKind::Word,
        ParamKind::Byte,
        true,
    ),
    (
        0x03,
        "alarm_report_period",
        ParamKind::Word,
        ParamKind::Byte,
        true,
    ),
    (
        0x04,
        "platform_domain_len",
        ParamKind::Byte,
        ParamKind::Byte,
        true,
    ),
    (
        0x05,
        "platform_domain",
        ParamKind::Domain(0x04),
        ParamKind::Domain(0x04),
        true,
    ),
    (
        0x06,
        "platform_port",
        ParamKind::Word,
        ParamKind::Word,
        true,
    ),
    (
        0x07,
        "hardware_version",
        ParamKind::Text(VERSION_LEN),
        ParamKind::Text(VERSION_LEN),
        false,
    ),
    (
        0x08,
        "firmware_version",
        ParamKind::Text(VERSION_LEN),
        ParamKind::Text(VERSION_LEN),
        false,
    ),
    (
        0x09,
        "heartbeat_period_s",
        ParamKind::Byte,
        ParamKind::Byte,
        true,
    ),
    (
        0x0A,
        "terminal_ack_timeout_s",
        ParamKind::Word,
        ParamKind::Word,
        true,
    ),
    (
        0x0B,
        "platform_ack_timeout_s",
        ParamKind::Word,
        ParamKind::Word,
        true,
    ),
    (
        0x0C,
        "login_retry_interval_min",
        ParamKind::Byte,
        ParamKind::Byte,
        true,
    ),
    (
        0x0D,
        "public_domain_len",
        ParamKind::Byte,
        ParamKind::Byte,
        true,
    ),
    (
        0x0E,
        "public_domain",
        ParamKind::Domain(0x0D),
        ParamKind::Domain(0x0D),
        true,
    ),
    (0x0F, "public_port", ParamKind::Word, ParamKind::Word, true),
    (0x10, "sampling", ParamKind::Byte, ParamKind::Byte, true),
];

/// Every parameter id the standard defines (0x01..=0x10), in order.
pub fn all_ids() -> impl Iterator<Item = u8> {
    TABLE.iter().map(|t| t.0)
}

/// The layout of parameter `id` in `edition` (None: reserved or user defined).
pub fn kind(id: u8, edition: Edition) -> Option<ParamKind> {
    TABLE.iter().find(|t| t.0 == id).map(|t| match edition {
        Edition::V2016 => t.2,
        Edition::V2025 => t.3,
    })
}

/// The snake_case name of a parameter id.
pub fn name(id: u8) -> Option<&'static str> {
    TABLE.iter().find(|t| t.0 == id).map(|t| t.1)
}

/// The id of a parameter name.
pub fn id_of(name: &str) -> Option<u8> {
    TABLE.iter().find(|t| t.1 == name).map(|t| t.0)
}

/// Whether a parameter may be set with 0x81 (not the versions 0x07/0x08).
pub fn settable(id: u8) -> bool {
    TABLE.iter().any(|t| t.0 == id && t.4)
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A BYTE value.
    Byte(u8),
    /// A WORD value.
    Word(u16),
    /// Text (versions, domains).
    Text(String),
}

/// One parameter item: id and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter id (table B.8/B.12).
    pub id: u8,
    /// Its value.
    pub value: ParamValue,
}

impl Serialize for Param {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Param", 3)?;
        st.serialize_field("id", &format!("0x{:02x}", self.id))?;
        st.serialize_field("name", &name(self.id))?;
        st.serialize_field("value", &self.value)?;
        st.end()
    }
}

/// Reads `n` items (count byte already read).
pub(crate) fn read_params(
    r: &mut Reader<'_>,
    n: u8,
    edition: Edition,
    command: u8,
) -> Result<Vec<Param>, BodyError> {
    let mut out: Vec<Param> = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let pid = r.u8()?;
        let value = match kind(pid, edition) {
            Some(ParamKind::Byte) => ParamValue::Byte(r.u8()?),
            Some(ParamKind::Word) => ParamValue::Word(r.u16()?),
            Some(ParamKind::Text(w)) => ParamValue::Text(r.text(w)?),
            Some(ParamKind::Domain(len_id)) => {
                let len = domain_len(&out, len_id).ok_or(BodyError::Missing {
                    command,
                    field: if len_id == 0x04 {
                        "param 0x04"
                    } else {
                        "param 0x0d"
                    },
                })?;
                ParamValue::Text(codecs::text::decode(r.bytes(usize::from(len))?))
            }
            None => return Err(BodyError::UnknownParam { command, id: pid }),
        };
        out.push(Param { id: pid, value });
    }
    Ok(out)
}

/// The value of the latest length item `len_id` in `items`.
fn domain_len(items: &[Param], len_id: u8) -> Option<u8> {
    items
        .iter()
        .rev()
        .find(|p| p.id == len_id)
        .and_then(|p| match p.value {
            ParamValue::Byte(b) => Some(b),
            _ => None,
        })
}

/// Writes the count and the items.
pub(crate) fn write_params(
    out: &mut Vec<u8>,
    params: &[Param],
    edition: Edition,
    command: u8,
) -> Result<(), BodyError> {
    if params.len() > MAX_PARAMS {
        return Err(BodyError::OutOfRange {
            command,
            field: "parameter count",
            value: params.len(),
            max: MAX_PARAMS,
        });
    }
    out.push(params.len() as u8);
    for (i, p) in params.iter().enumerate() {
        let bad = || BodyError::BadParamValue { command, id: p.id };
        out.push(p.id);
        match (kind(p.id, edition), &p.value) {
            (Some(ParamKind::Byte), ParamValue::Byte(b)) => out.push(*b),
            (Some(ParamKind::Word), ParamValue::Word(w)) => out.extend_from_slice(&w.to_be_bytes()),
            (Some(ParamKind::Text(w)), ParamValue::Text(t)) => {
                put_fixed(out, t, w, 0, command, "version")?
            }
            (Some(ParamKind::Domain(len_id)), ParamValue::Text(t)) => {
                let bytes = codecs::text::encode(t);
                let before = params.get(..i).unwrap_or(&[]);
                match domain_len(before, len_id) {
                    Some(len) if usize::from(len) == bytes.len() => out.extend_from_slice(&bytes),
                    Some(len) => {
                        return Err(BodyError::OutOfRange {
                            command,
                            field: "domain length",
                            value: bytes.len(),
                            max: usize::from(len),
                        })
                    }
                    None => {
                        return Err(BodyError::Missing {
                            command,
                            field: if len_id == 0x04 {
                                "param 0x04"
                            } else {
                                "param 0x0d"
                            },
                        })
                    }
                }
            }
            (None, _) => return Err(BodyError::UnknownParam { command, id: p.id }),
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// A 0x80 parameter query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamQuery {
    /// Query time.
    pub time: LocalTime,
    /// The ids asked for.
    pub ids: Vec<u8>,
}

impl ParamQuery {
    pub(crate) fn decode(data: &[u8]) -> Result<ParamQuery, BodyError> {
        let mut r = Reader::new(data, id::QUERY_PARAMS);
        let time = r.time()?;
        let n = r.u8()?;
        let ids = r.bytes(usize::from(n))?.to_vec();
        r.finish()?;
        Ok(ParamQuery { time, ids })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.ids.len() > MAX_PARAMS {
            return Err(BodyError::OutOfRange {
                command: id::QUERY_PARAMS,
                field: "parameter count",
                value: self.ids.len(),
                max: MAX_PARAMS,
            });
        }
        put_time(out, &self.time);
        out.push(self.ids.len() as u8);
        out.extend_from_slice(&self.ids);
        Ok(())
    }
}

/// A 0x81 parameter setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamSet {
    /// Setting time.
    pub time: LocalTime,
    /// The items to set.
    pub params: Vec<Param>,
}

impl ParamSet {
    pub(crate) fn decode(data: &[u8], edition: Edition) -> Result<ParamSet, BodyError> {
        let mut r = Reader::new(data, id::SET_PARAMS);
        let time = r.time()?;
        let n = r.u8()?;
        let params = read_params(&mut r, n, edition, id::SET_PARAMS)?;
        r.finish()?;
        Ok(ParamSet { time, params })
    }

    pub(crate) fn encode(&self, edition: Edition, out: &mut Vec<u8>) -> Result<(), BodyError> {
        put_time(out, &self.time);
        write_params(out, &self.params, edition, id::SET_PARAMS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_periods_are_words_in_2016_and_bytes_in_2025() {
        assert_eq!(kind(0x02, Edition::V2016), Some(ParamKind::Word));
        assert_eq!(kind(0x03, Edition::V2016), Some(ParamKind::Word));
        assert_eq!(kind(0x02, Edition::V2025), Some(ParamKind::Byte));
        assert_eq!(kind(0x03, Edition::V2025), Some(ParamKind::Byte));
        assert_eq!(kind(0x11, Edition::V2025), None);
    }

    #[test]
    fn domain_without_its_length_item_is_refused() {
        let set = ParamSet {
            time: LocalTime::default(),
            params: vec![Param {
                id: 0x05,
                value: ParamValue::Text("a.b".into()),
            }],
        };
        assert_eq!(
            set.encode(Edition::V2016, &mut Vec::new()),
            Err(BodyError::Missing {
                command: 0x81,
                field: "param 0x04"
            })
        );
    }
}
