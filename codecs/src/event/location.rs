//! `location.data`: where the vehicle is, with its alarm and status bits named.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::json;

/// The datum of a coordinate. JT/T 808 is WGS-84 by the standard; GB/T 32960-2025 says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CoordSystem {
    #[default]
    Wgs84,
    Gcj02,
    Other,
}

/// The names of a [`Flags`]: a static list, with its JSON rendered once on first use.
///
/// Declared as a `static` (`static STATUS: FlagNames = FlagNames::new(&["acc_on", ..]);`);
/// at most 64 names.
pub struct FlagNames {
    names: &'static [&'static str],
    /// Per group of [`GROUP`] names, the JSON of each combination of their values
    /// (`,"a":true,"b":false..`, no leading comma for the first group): writing a flag
    /// object is one copy per group, not a key and a value per name.
    rendered: OnceLock<Vec<Box<[u8]>>>,
}

/// Names per pre-rendered group (2^GROUP renderings each).
const GROUP: usize = 4;

impl FlagNames {
    /// Names in the order of their bits (bit `i` is `names[i]`).
    pub const fn new(names: &'static [&'static str]) -> FlagNames {
        assert!(names.len() <= 64, "at most 64 flag names");
        FlagNames {
            names,
            rendered: OnceLock::new(),
        }
    }

    /// The names, in bit order.
    pub fn names(&self) -> &'static [&'static str] {
        self.names
    }

    fn rendered(&self) -> &[Box<[u8]>] {
        self.rendered.get_or_init(|| {
            let mut all = Vec::new();
            for (g, group) in self.names.chunks(GROUP).enumerate() {
                for pattern in 0..1usize << GROUP {
                    let mut out = Vec::new();
                    for (i, name) in group.iter().enumerate() {
                        if g > 0 || i > 0 {
                            out.push(b',');
                        }
                        json::key(&mut out, name);
                        json::bool(&mut out, pattern >> i & 1 == 1);
                    }
                    all.push(out.into_boxed_slice());
                }
            }
            all
        })
    }
}

impl fmt::Debug for FlagNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.names.fmt(f)
    }
}

impl PartialEq for FlagNames {
    fn eq(&self, other: &FlagNames) -> bool {
        self.names == other.names
    }
}

impl Eq for FlagNames {}

static NO_NAMES: FlagNames = FlagNames::new(&[]);

/// Named boolean bits, serialized as a JSON object (`{"acc_on": true, "fix_valid": false}`).
///
/// The names are a static [`FlagNames`] and the values one bit each (bit `i` is the
/// value of name `i`): building and dropping one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    names: &'static FlagNames,
    bits: u64,
}

impl Default for Flags {
    /// No names.
    fn default() -> Flags {
        Flags::new(&NO_NAMES, 0)
    }
}

impl Flags {
    /// `names` with the values of `bits` (bit `i` is the value of name `i`; bits past the
    /// last name are dropped).
    pub fn new(names: &'static FlagNames, bits: u64) -> Flags {
        let n = names.names.len();
        let bits = if n >= 64 { bits } else { bits & ((1 << n) - 1) };
        Flags { names, bits }
    }

    /// The value of a named bit, if present.
    pub fn get(&self, name: &str) -> Option<bool> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The names with their values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, bool)> + '_ {
        let bits = self.bits;
        self.names
            .names
            .iter()
            .enumerate()
            .map(move |(i, n)| (*n, i < 64 && bits >> i & 1 == 1))
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.names.names.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.names.names.is_empty()
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

impl Flags {
    /// Appends the JSON object of these bits: one pre-rendered copy per group of names.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let rendered = self.names.rendered();
        let groups = self.len().div_ceil(GROUP).min(64 / GROUP);
        for g in 0..groups {
            let pattern = (self.bits >> (g * GROUP)) as usize & ((1 << GROUP) - 1);
            if let Some(chunk) = rendered.get(g * (1 << GROUP) + pattern) {
                out.extend_from_slice(chunk);
            }
        }
        out.push(b'}');
    }
}

/// A list of names (`location.data.alarms`): the set bits of a static [`FlagNames`] in bit
/// order (no allocation), then any owned names. Serialized as a JSON array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    set: Flags,
    more: Vec<Cow<'static, str>>,
}

impl Names {
    /// The names of the set bits of `bits` (bit `i` is name `i` of `names`).
    pub fn from_bits(names: &'static FlagNames, bits: u64) -> Names {
        Names {
            set: Flags::new(names, bits),
            more: Vec::new(),
        }
    }

    /// Appends a name.
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>) {
        self.more.push(name.into());
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.set
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n)
            .chain(self.more.iter().map(|n| &**n))
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.set.bits.count_ones() as usize + self.more.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.set.bits == 0 && self.more.is_empty()
    }
}

impl<S: Into<Cow<'static, str>>> FromIterator<S> for Names {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Names {
        Names {
            set: Flags::default(),
            more: iter.into_iter().map(Into::into).collect(),
        }
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Names {
    fn eq(&self, other: &Vec<S>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl Serialize for Names {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// JT/T 808 item 0x2B, `analog` (`{"ad0": .., "ad1": ..}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Analog {
    pub ad0: u16,
    pub ad1: u16,
}

/// JT/T 808 item 0x11, `overspeed`: location type, and the area or route id (absent for
/// type 0). Fields in key order (the JSON object's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Overspeed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_id: Option<u32>,
    pub location_type: u8,
}

/// JT/T 808 item 0x12, `in_out_area`: area or route id, direction (0 in, 1 out), location
/// type. Fields in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct InOutArea {
    pub area_id: u32,
    pub direction: u8,
    pub location_type: u8,
}

/// JT/T 808 item 0x13, `route_time`: result (0 too short, 1 too long), segment id, driving
/// time in seconds. Fields in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RouteTime {
    pub result: u8,
    pub route_id: u32,
    pub time_s: u16,
}

/// Decoded protocol items without a contract field, flattened into `location.data` in
/// ascending key order (the typed ones and `other` merged): what was a
/// `serde_json::Map<String, Value>`, typed so that a report's items cost no allocation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct More {
    /// 0x04 id of the alarm event to confirm manually.
    pub alarm_event_id: Option<u16>,
    /// 0x06 (2019) carriage temperature, degrees Celsius.
    pub carriage_temperature_c: Option<i32>,
    /// 0xE0 length of the custom information that follows.
    pub custom_info_length: Option<u32>,
    /// 0x12 in/out area or route.
    pub in_out_area: Option<InOutArea>,
    /// Status bits 8-9: 1 half, 3 full (absent when empty).
    pub load_state: Option<u8>,
    /// 0x11 overspeed.
    pub overspeed: Option<Overspeed>,
    /// 0x13 route segment driving time.
    pub route_time: Option<RouteTime>,
    /// 0x05 (2019) tyre pressures from the front left; `None` = no data (0xFF).
    pub tyre_pressure_pa: Option<Vec<Option<u8>>>,
    /// 0x25 extended vehicle signals, named bits (names in ascending order).
    pub vehicle_signals: Option<Flags>,
    /// Anything else (`note`, `tail_hex`...): keys must not be one of the names above.
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One value of [`More`], borrowed.
#[derive(Debug, Clone, Copy)]
enum MoreValue<'a> {
    Int(i64),
    InOut(&'a InOutArea),
    Overspeed(&'a Overspeed),
    Route(&'a RouteTime),
    Tyres(&'a [Option<u8>]),
    Flags(&'a Flags),
    Value(&'a serde_json::Value),
}

impl Serialize for MoreValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MoreValue::Int(n) => s.serialize_i64(*n),
            MoreValue::InOut(v) => v.serialize(s),
            MoreValue::Overspeed(v) => v.serialize(s),
            MoreValue::Route(v) => v.serialize(s),
            MoreValue::Tyres(v) => v.serialize(s),
            MoreValue::Flags(v) => v.serialize(s),
            MoreValue::Value(v) => v.serialize(s),
        }
    }
}

impl MoreValue<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            MoreValue::Int(n) => json::i64(out, *n),
            MoreValue::InOut(v) => {
                out.extend_from_slice(b"{\"area_id\":");
                json::u64(out, u64::from(v.area_id));
                out.extend_from_slice(b",\"direction\":");
                json::u64(out, u64::from(v.direction));
                out.extend_from_slice(b",\"location_type\":");
                json::u64(out, u64::from(v.location_type));
                out.push(b'}');
            }
            MoreValue::Overspeed(v) => {
                out.push(b'{');
                if let Some(a) = v.area_id {
                    out.extend_from_slice(b"\"area_id\":");
                    json::u64(out, u64::from(a));
                    out.push(b',');
                }
                out.extend_from_slice(b"\"location_type\":");
                json::u64(out, u64::from(v.location_type));
                out.push(b'}');
            }
            MoreValue::Route(v) => {
                out.extend_from_slice(b"{\"result\":");
                json::u64(out, u64::from(v.result));
                out.extend_from_slice(b",\"route_id\":");
                json::u64(out, u64::from(v.route_id));
                out.extend_from_slice(b",\"time_s\":");
                json::u64(out, u64::from(v.time_s));
                out.push(b'}');
            }
            MoreValue::Tyres(l) => {
                out.push(b'[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match v {
                        Some(p) => json::u64(out, u64::from(*p)),
                        None => out.extend_from_slice(b"null"),
                    }
                }
                out.push(b']');
            }
            MoreValue::Flags(f) => f.write_json(out),
            MoreValue::Value(v) => json::value(out, v),
        }
    }
}

impl More {
    /// The typed entries that are present, in key order.
    fn typed(&self) -> impl Iterator<Item = (&'static str, MoreValue<'_>)> {
        let int = |n: Option<i64>| n.map(MoreValue::Int);
        [
            ("alarm_event_id", int(self.alarm_event_id.map(i64::from))),
            (
                "carriage_temperature_c",
                int(self.carriage_temperature_c.map(i64::from)),
            ),
            (
                "custom_info_length",
                int(self.custom_info_length.map(i64::from)),
            ),
            (
                "in_out_area",
                self.in_out_area.as_ref().map(MoreValue::InOut),
            ),
            ("load_state", int(self.load_state.map(i64::from))),
            (
                "overspeed",
                self.overspeed.as_ref().map(MoreValue::Overspeed),
            ),
            ("route_time", self.route_time.as_ref().map(MoreValue::Route)),
            (
                "tyre_pressure_pa",
                self.tyre_pressure_pa.as_deref().map(MoreValue::Tyres),
            ),
            (
                "vehicle_signals",
                self.vehicle_signals.as_ref().map(MoreValue::Flags),
            ),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
    }

    /// Every entry in ascending key order (the order of the `serde_json::Map` this was):
    /// the typed ones merged with `other`.
    fn for_each<'a>(&'a self, mut f: impl FnMut(&'a str, MoreValue<'a>)) {
        let mut typed = self.typed().peekable();
        let mut other = self.other.iter().peekable();
        loop {
            let take_typed = match (typed.peek(), other.peek()) {
                (Some((a, _)), Some((b, _))) => *a <= b.as_str(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_typed {
                if let Some((k, v)) = typed.next() {
                    f(k, v);
                }
            } else if let Some((k, v)) = other.next() {
                f(k, MoreValue::Value(v));
            }
        }
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.typed().next().is_none() && self.other.is_empty()
    }

    /// The entries as the `serde_json::Map` they serialize as.
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        self.for_each(|k, v| {
            m.insert(
                k.to_owned(),
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            );
        });
        m
    }
}

/// A normalized position report (contract §3 `location.data`).
///
/// Coordinates are signed decimal degrees (south and west negative). `altitude_m`,
/// `speed_kmh` and `heading_deg` are always present (null when the protocol has none);
/// the fields after `status` appear only when the device sent them. `more` holds decoded
/// protocol items that have no contract field (JT/T 808 overspeed or area alarms, tyre
/// pressures...), flattened into `data`; `extras` holds the items not decoded, id in hex to
/// value in hex.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub coord_system: CoordSystem,
    pub altitude_m: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub fix_valid: bool,
    /// snake_case names of the alarm bits that are set.
    pub alarms: Names,
    /// Every named status bit with its value.
    pub status: Flags,
    pub odometer_km: Option<f64>,
    pub fuel_l: Option<f64>,
    pub speed_recorder_kmh: Option<f64>,
    pub satellites: Option<u8>,
    pub signal_strength: Option<u8>,
    pub io_status: Option<Flags>,
    pub analog: Option<Analog>,
    /// Decoded protocol items without a contract field, flattened into `data`.
    pub more: More,
    /// Additional items not decoded: id (`"0xe1"`) to value (hex).
    pub extras: BTreeMap<String, String>,
}

impl Location {
    /// Appends the JSON of this location (the bytes of its `Serialize` impl through
    /// `serde_json`: fields in declaration order, optional ones only when present, `more`
    /// flattened in its map order, `extras` only when not empty).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        // Destructured without `..`: a new field fails to compile here until written.
        let Location {
            latitude,
            longitude,
            coord_system,
            altitude_m,
            speed_kmh,
            heading_deg,
            fix_valid,
            alarms,
            status,
            odometer_km,
            fuel_l,
            speed_recorder_kmh,
            satellites,
            signal_strength,
            io_status,
            analog,
            more,
            extras,
        } = self;
        out.extend_from_slice(b"{\"latitude\":");
        json::f64(out, *latitude);
        out.extend_from_slice(b",\"longitude\":");
        json::f64(out, *longitude);
        out.extend_from_slice(match coord_system {
            CoordSystem::Wgs84 => b",\"coord_system\":\"wgs84\"",
            CoordSystem::Gcj02 => b",\"coord_system\":\"gcj02\"",
            CoordSystem::Other => b",\"coord_system\":\"other\"",
        });
        out.extend_from_slice(b",\"altitude_m\":");
        json::opt_f64(out, *altitude_m);
        out.extend_from_slice(b",\"speed_kmh\":");
        json::opt_f64(out, *speed_kmh);
        out.extend_from_slice(b",\"heading_deg\":");
        json::opt_f64(out, *heading_deg);
        out.extend_from_slice(b",\"fix_valid\":");
        json::bool(out, *fix_valid);
        out.extend_from_slice(b",\"alarms\":[");
        for (i, a) in alarms.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::str(out, a);
        }
        out.extend_from_slice(b"],\"status\":");
        status.write_json(out);
        if let Some(v) = odometer_km {
            out.extend_from_slice(b",\"odometer_km\":");
            json::f64(out, *v);
        }
        if let Some(v) = fuel_l {
            out.extend_from_slice(b",\"fuel_l\":");
            json::f64(out, *v);
        }
        if let Some(v) = speed_recorder_kmh {
            out.extend_from_slice(b",\"speed_recorder_kmh\":");
            json::f64(out, *v);
        }
        if let Some(v) = satellites {
            out.extend_from_slice(b",\"satellites\":");
            json::u64(out, u64::from(*v));
        }
        if let Some(v) = signal_strength {
            out.extend_from_slice(b",\"signal_strength\":");
            json::u64(out, u64::from(*v));
        }
        if let Some(f) = io_status {
            out.extend_from_slice(b",\"io_status\":");
            f.write_json(out);
        }
        if let Some(v) = analog {
            out.extend_from_slice(b",\"analog\":{\"ad0\":");
            json::u64(out, u64::from(v.ad0));
            out.extend_from_slice(b",\"ad1\":");
            json::u64(out, u64::from(v.ad1));
            out.push(b'}');
        }
        more.for_each(|k, v| {
            out.push(b',');
            json::key(out, k);
            v.write_json(out);
        });
        if !extras.is_empty() {
            out.extend_from_slice(b",\"extras\":{");
            for (i, (k, v)) in extras.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::key(out, k);
                json::str(out, v);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
}

impl Serialize for Location {
    /// Fields in declaration order, optional ones only when present, `more` flattened in
    /// its key order, `extras` only when not empty (what the derive with
    /// `skip_serializing_if` and `flatten` wrote when `more` was a map).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("latitude", &self.latitude)?;
        m.serialize_entry("longitude", &self.longitude)?;
        m.serialize_entry("coord_system", &self.coord_system)?;
        m.serialize_entry("altitude_m", &self.altitude_m)?;
        m.serialize_entry("speed_kmh", &self.speed_kmh)?;
        m.serialize_entry("heading_deg", &self.heading_deg)?;
        m.serialize_entry("fix_valid", &self.fix_valid)?;
        m.serialize_entry("alarms", &self.alarms)?;
        m.serialize_entry("status", &self.status)?;
        if let Some(v) = &self.odometer_km {
            m.serialize_entry("odometer_km", v)?;
        }
        if let Some(v) = &self.fuel_l {
            m.serialize_entry("fuel_l", v)?;
        }
        if let Some(v) = &self.speed_recorder_kmh {
            m.serialize_entry("speed_recorder_kmh", v)?;
        }
        if let Some(v) = &self.satellites {
            m.serialize_entry("satellites", v)?;
        }
        if let Some(v) = &self.signal_strength {
            m.serialize_entry("signal_strength", v)?;
        }
        if let Some(v) = &self.io_status {
            m.serialize_entry("io_status", v)?;
        }
        if let Some(v) = &self.analog {
            m.serialize_entry("analog", v)?;
        }
        let mut res = Ok(());
        self.more.for_each(|k, v| {
            if res.is_ok() {
                res = m.serialize_entry(k, &v);
            }
        });
        res?;
        if !self.extras.is_empty() {
            m.serialize_entry("extras", &self.extras)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_absent_and_core_fields_null() {
        let l = Location {
            latitude: -22.5,
            longitude: 114.0,
            ..Default::default()
        };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["latitude"], -22.5);
        assert_eq!(v["coord_system"], "wgs84");
        assert!(v["speed_kmh"].is_null());
        assert!(v.get("odometer_km").is_none());
        assert!(v.get("extras").is_none());
        assert_eq!(v["status"], serde_json::json!({}));
    }
}
