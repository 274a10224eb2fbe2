//! `telemetry.data`: EV and powertrain telemetry (GB/T 32960 real-time and reissue).
//!
//! The contract's groups (§3): `vehicle`, `motors`, `fuel_cell`, `engine`, `extremes`,
//! `alarm`, `battery_voltages`, `battery_temperatures`, `custom`, plus the 2025 extras
//! `supercap`, `fuel_cell_stacks`, `signature`; each is present only when the frame carries
//! it. Both GB/T 32960 editions fill the same names; values are physical units and an
//! abnormal/invalid value is null. The group contents are JSON values built by the
//! protocol's normalizer ([`Json`]), so a group can grow fields without a change here.
//!
//! Why [`Json`] and not `serde_json::Value`: a real-time frame carries a few hundred values
//! (cell voltages, probe temperatures), and a `Value` tree costs a `String` and a B-tree
//! node per key and is walked again to serialize. [`Json`] keeps static keys in `Vec`s and
//! numbers as numbers, and serializes to the same bytes as the `Value` it stands for
//! (objects are written in ascending key order, which is the order of `serde_json::Map`).
//!
//! Why [`Json::Raw`]: even a [`Json`] tree is a `Vec` per object, built and then walked
//! again; a GB/T 32960 report's ~15 objects and ~100 keys cost more to build and walk than
//! to write. So the GB/T 32960 normalizer writes its groups straight from the decoded
//! report, as JSON, into one buffer, and each group is a [`RawJson`] part of it: one
//! allocation per report, and publishing a group is a copy. This crate does not know the
//! protocol's types (protocol crates depend on it, not the other way round), so the
//! writer lives with the protocol and hands over text; [`json`](super::json) gives it
//! the same number formatting as everything else here.

use std::borrow::Cow;
use std::sync::Arc;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

/// A JSON value of a telemetry group, cheap to build and to serialize.
///
/// Serializes exactly as the `serde_json::Value` it stands for: a non-finite float is
/// `null` (as `Value::from(f64)` makes it), and an [`Json::Object`] must list its keys in
/// ascending byte order (the order of `serde_json::Map`; use [`Json::object`], which checks
/// it in debug builds).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Json {
    /// `null`.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An unsigned integer.
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A float (`null` when not finite).
    F64(f64),
    /// A string.
    Str(Cow<'static, str>),
    /// A list.
    List(Vec<Json>),
    /// A list of numbers where `None` is `null`.
    Nums(Vec<Option<f64>>),
    /// A list of fixed-point numbers as read from the wire (cell voltages, probe
    /// temperatures): written from the integers, no float formatting.
    Fixed(FixedList),
    /// An object, keys in ascending byte order.
    Object(Vec<(&'static str, Json)>),
    /// A value already written as JSON by the protocol's normalizer (GB/T 32960 writes its
    /// groups straight from the decoded report): copied as is.
    Raw(RawJson),
    /// Any `serde_json::Value` (for groups built the general way).
    Value(serde_json::Value),
}

/// A list of fixed-point numbers kept as their raw wire values: `raw` below `null_from` is
/// the number `(raw + offset) * 10^-decimals`, the others are `null` (0xFFFE abnormal,
/// 0xFFFF invalid...).
///
/// It stands for the list of floats nearest to those decimals (what dividing by `10^decimals`
/// or rounding a scaled value to 1e-6 gives): the shortest round-trip form of such a float is
/// the decimal itself (at most 15 significant digits), so it is printed from the integer,
/// digit by digit, with no float formatting. `decimals` is 0..=6.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FixedList {
    /// The wire values.
    pub raw: Vec<u16>,
    /// Digits after the decimal point (0 = whole numbers, written `25.0`).
    pub decimals: u8,
    /// Added to each raw value before scaling (-40 for temperatures).
    pub offset: i32,
    /// Raw values from this one up are `null`.
    pub null_from: u16,
}

/// One JSON value already written, in serde_json's compact form: a part of a buffer shared
/// by all the values written together (a GB/T 32960 report's groups are written one after
/// the other into one buffer: one allocation for all of them, none per group, and
/// publishing a group is one copy).
///
/// The writer vouches for the text: one complete JSON value in UTF-8, exactly the bytes
/// serde_json writes for the `serde_json::Value` it stands for (objects' keys in ascending
/// byte order, floats in their shortest round-trip form). [`Json::to_value`] and
/// `Serialize` parse it (the tests and the rare paths that inspect or re-serialize a group,
/// not the publish path, which copies it); a text that does not parse is `null` there.
#[derive(Clone)]
pub struct RawJson {
    buf: Arc<[u8]>,
    start: usize,
    end: usize,
}

impl RawJson {
    /// The value at `range` of `buf`, or `None` when the range is out of it.
    pub fn new(buf: Arc<[u8]>, range: std::ops::Range<usize>) -> Option<RawJson> {
        buf.get(range.clone())?;
        Some(RawJson {
            buf,
            start: range.start,
            end: range.end,
        })
    }

    /// The whole of `text`.
    pub fn whole(text: &str) -> RawJson {
        let buf: Arc<[u8]> = Arc::from(text.as_bytes());
        let end = buf.len();
        RawJson { buf, start: 0, end }
    }

    /// The JSON text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(b"null")
    }

    /// The JSON text (`null` if it is not UTF-8, which a writer must not give).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("null")
    }

    /// The value parsed (`null` if the text is not JSON, which a writer must not give).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_slice(self.as_bytes()).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawJson").field(&self.as_str()).finish()
    }
}

impl FixedList {
    /// The value of `raw`, or `None` for a sentinel.
    fn int(&self, raw: u16) -> Option<i64> {
        (raw < self.null_from).then(|| i64::from(raw) + i64::from(self.offset))
    }

    /// The float a value stands for (the nearest to its decimal).
    fn float(&self, raw: u16) -> Option<f64> {
        let n = self.int(raw)?;
        Some(n as f64 / 10f64.powi(i32::from(self.decimals)))
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        use super::json::fixed;
        out.reserve(self.raw.len() * 8 + 2);
        out.push(b'[');
        for (i, raw) in self.raw.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let Some(n) = self.int(*raw) else {
                out.extend_from_slice(b"null");
                continue;
            };
            let (neg, mag) = (n < 0, n.unsigned_abs());
            match self.decimals {
                0 => fixed::<0>(out, neg, mag),
                1 => fixed::<1>(out, neg, mag),
                2 => fixed::<2>(out, neg, mag),
                3 => fixed::<3>(out, neg, mag),
                4 => fixed::<4>(out, neg, mag),
                5 => fixed::<5>(out, neg, mag),
                _ => fixed::<6>(out, neg, mag),
            }
        }
        out.push(b']');
    }
}

impl Json {
    /// An object of `fields`, whose keys must be in ascending byte order (checked in debug
    /// builds): the order `serde_json::Map` would write them in.
    pub fn object(fields: Vec<(&'static str, Json)>) -> Json {
        debug_assert!(
            fields.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)),
            "object keys out of order: {:?}",
            fields.iter().map(|f| f.0).collect::<Vec<_>>()
        );
        Json::Object(fields)
    }

    /// A float, or `null` for `None`.
    pub fn num(v: Option<f64>) -> Json {
        v.map_or(Json::Null, Json::F64)
    }

    /// A static string.
    pub fn str(s: &'static str) -> Json {
        Json::Str(Cow::Borrowed(s))
    }

    /// The equivalent `serde_json::Value`.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::U64(n) => Value::from(*n),
            Json::I64(n) => Value::from(*n),
            Json::F64(x) => Value::from(*x),
            Json::Str(s) => Value::String(s.to_string()),
            Json::List(l) => Value::Array(l.iter().map(Json::to_value).collect()),
            Json::Nums(l) => Value::Array(
                l.iter()
                    .map(|x| x.map_or(Value::Null, Value::from))
                    .collect(),
            ),
            Json::Fixed(l) => Value::Array(
                l.raw
                    .iter()
                    .map(|r| l.float(*r).map_or(Value::Null, Value::from))
                    .collect(),
            ),
            Json::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| ((*k).to_string(), v.to_value()))
                    .collect(),
            ),
            Json::Value(v) => v.clone(),
            Json::Raw(r) => r.to_value(),
        }
    }
}

impl Json {
    /// Appends the JSON of this value (the bytes of its `Serialize` impl through serde_json).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        use super::json;
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(b) => json::bool(out, *b),
            Json::U64(n) => json::u64(out, *n),
            Json::I64(n) => json::i64(out, *n),
            Json::F64(x) => json::f64(out, *x),
            Json::Str(v) => json::str(out, v),
            Json::List(l) => {
                out.push(b'[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_json(out);
                }
                out.push(b']');
            }
            Json::Nums(l) => {
                out.push(b'[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::opt_f64(out, *v);
                }
                out.push(b']');
            }
            Json::Fixed(l) => l.write_json(out),
            Json::Object(o) => {
                out.push(b'{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::key(out, k);
                    v.write_json(out);
                }
                out.push(b'}');
            }
            Json::Value(v) => json::value(out, v),
            Json::Raw(r) => out.extend_from_slice(r.as_bytes()),
        }
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Json {
        Json::Value(v)
    }
}

/// A float the way `serde_json::Value` writes it: non-finite is `null`.
fn float<S: Serializer>(x: f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(x)
    } else {
        s.serialize_unit()
    }
}

struct Float(Option<f64>);

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(x) => float(x, s),
            None => s.serialize_unit(),
        }
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::U64(n) => s.serialize_u64(*n),
            Json::I64(n) => s.serialize_i64(*n),
            Json::F64(x) => float(*x, s),
            Json::Str(v) => s.serialize_str(v),
            Json::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Json::Nums(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(&Float(*v))?;
                }
                seq.end()
            }
            Json::Fixed(l) => {
                let mut seq = s.serialize_seq(Some(l.raw.len()))?;
                for r in &l.raw {
                    seq.serialize_element(&Float(l.float(*r)))?;
                }
                seq.end()
            }
            Json::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Json::Value(v) => v.serialize(s),
            // Parsed: the same value through any serializer (serde_json writes it back to
            // the same bytes, see `RawJson`).
            Json::Raw(r) => r.to_value().serialize(s),
        }
    }
}

/// `telemetry.data`: one optional JSON value per contract group.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Telemetry {
    /// Whole-vehicle state (`state`, `charging`, `mode`, `speed_kmh`, `odometer_km`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<Json>,
    /// Drive motors, a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motors: Option<Json>,
    /// Fuel cell (2016) / fuel-cell engine and H2 system (2025).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_cell: Option<Json>,
    /// Engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<Json>,
    /// Extreme cell voltages and temperatures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extremes: Option<Json>,
    /// Alarm level, flag names and fault code lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<Json>,
    /// Cell voltages per pack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_voltages: Option<Json>,
    /// Probe temperatures per pack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_temperatures: Option<Json>,
    /// 2025 super-capacitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supercap: Option<Json>,
    /// 2025 fuel-cell stacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_cell_stacks: Option<Json>,
    /// 2025 vehicle signature (type, r, s in hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Json>,
    /// User-defined units: list of `{"type": "0x80", "data": hex}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Json>,
    /// Protocol items without a contract group (an undecoded tail...), flattened.
    #[serde(flatten)]
    pub more: serde_json::Map<String, serde_json::Value>,
}

impl Telemetry {
    /// Appends the JSON of this telemetry (the bytes of its `Serialize` impl through
    /// serde_json: groups in declaration order, absent ones left out, `more` flattened).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Destructured without `..`: a new field fails to compile here until written.
        let Telemetry {
            vehicle,
            motors,
            fuel_cell,
            engine,
            extremes,
            alarm,
            battery_voltages,
            battery_temperatures,
            supercap,
            fuel_cell_stacks,
            signature,
            custom,
            more,
        } = self;
        // Keys as constants (`"motors":`): one copy each, no escape check.
        let mut first = true;
        macro_rules! group {
            ($field:ident) => {
                if let Some(v) = $field {
                    out.push(if first { b'{' } else { b',' });
                    first = false;
                    out.extend_from_slice(concat!("\"", stringify!($field), "\":").as_bytes());
                    v.write_json(out);
                }
            };
        }
        group!(vehicle);
        group!(motors);
        group!(fuel_cell);
        group!(engine);
        group!(extremes);
        group!(alarm);
        group!(battery_voltages);
        group!(battery_temperatures);
        group!(supercap);
        group!(fuel_cell_stacks);
        group!(signature);
        group!(custom);
        for (k, v) in more {
            out.push(if first { b'{' } else { b',' });
            first = false;
            super::json::key(out, k);
            super::json::value(out, v);
        }
        if first {
            out.push(b'{');
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_lists_write_every_raw_value_as_serde_json_writes_its_float() {
        // Every u16 at every scale the normalizers use, with and without an offset, against
        // serde_json's formatting of the float the old code computed (a scaled value
        // rounded to 1e-6, or a whole number).
        for (decimals, offset) in [
            (0u8, -40i32),
            (0, 0),
            (1, 0),
            (1, -10_000),
            (2, 0),
            (3, 0),
            (3, -3),
        ] {
            let l = FixedList {
                raw: (0..=u16::MAX).collect(),
                decimals,
                offset,
                null_from: 0xFFFE,
            };
            let mut fast = Vec::new();
            l.write_json(&mut fast);
            let scale = 10f64.powi(-i32::from(decimals));
            let old: Vec<Option<f64>> = l
                .raw
                .iter()
                .map(|r| {
                    (*r < 0xFFFE).then(|| {
                        let x = f64::from(*r) * scale + f64::from(offset) * scale;
                        if decimals == 0 {
                            x
                        } else {
                            (x * 1e6).round() / 1e6
                        }
                    })
                })
                .collect();
            assert_eq!(
                String::from_utf8(fast).expect("utf-8"),
                serde_json::to_string(&old).expect("serializes"),
                "decimals {decimals} offset {offset}"
            );
        }
    }

    #[test]
    fn absent_groups_are_left_out_of_the_json() {
        let t = Telemetry {
            engine: Some(serde_json::json!({"crank_rpm": 800}).into()),
            ..Default::default()
        };
        let v = serde_json::to_value(&t).expect("telemetry serializes");
        assert_eq!(v, serde_json::json!({"engine": {"crank_rpm": 800}}));
    }

    #[test]
    fn json_writes_the_same_bytes_as_the_value_it_stands_for() {
        let j = Json::object(vec![
            (
                "a_list",
                Json::List(vec![Json::U64(1), Json::I64(-2), Json::Null]),
            ),
            ("b", Json::Bool(true)),
            (
                "cells",
                Json::Nums(vec![Some(3.77), None, Some(4.0), Some(f64::NAN)]),
            ),
            ("f", Json::F64(65.2)),
            (
                "fixed",
                Json::Fixed(FixedList {
                    raw: vec![0, 1, 3770, 65533, 65534, 65535],
                    decimals: 3,
                    offset: -1,
                    null_from: 0xFFFE,
                }),
            ),
            ("inf", Json::F64(f64::INFINITY)),
            ("name", Json::str("started")),
            ("nested", Json::object(vec![("x", Json::F64(-40.0))])),
            ("owned", Json::Str(Cow::Owned("0001000a".into()))),
            (
                "value",
                Json::Value(serde_json::json!({"z": 1, "a": [0.5]})),
            ),
        ]);
        let fast = serde_json::to_string(&j).expect("serializes");
        let slow = serde_json::to_string(&j.to_value()).expect("serializes");
        assert_eq!(fast, slow);
        let mut direct = Vec::new();
        j.write_json(&mut direct);
        assert_eq!(String::from_utf8(direct).expect("utf-8"), slow);
        assert_eq!(serde_json::to_value(&j).expect("to_value"), j.to_value());
    }
}
