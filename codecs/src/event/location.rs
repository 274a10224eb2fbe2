//! `location.data`: where the vehicle is, with its alarm and status bits named.

use std::borrow::Cow;
use std::collections::BTreeMap;

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

/// Named boolean bits, serialized as a JSON object (`{"acc_on": true, "fix_valid": false}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flags(pub Vec<(&'static str, bool)>);

impl Flags {
    /// The value of a named bit, if present.
    pub fn get(&self, name: &str) -> Option<bool> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Flags {
    /// Appends the JSON object of these bits.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::key(out, k);
            json::bool(out, *v);
        }
        out.push(b'}');
    }
}

fn is_empty_map<K, V>(m: &BTreeMap<K, V>) -> bool {
    m.is_empty()
}

/// A normalized position report (contract §3 `location.data`).
///
/// Coordinates are signed decimal degrees (south and west negative). `altitude_m`,
/// `speed_kmh` and `heading_deg` are always present (null when the protocol has none);
/// the fields after `status` appear only when the device sent them. `more` holds decoded
/// protocol items that have no contract field (JT/T 808 overspeed or area alarms, tyre
/// pressures...), flattened into `data`; `extras` holds the items not decoded, id in hex to
/// value in hex.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub coord_system: CoordSystem,
    pub altitude_m: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub fix_valid: bool,
    /// snake_case names of the alarm bits that are set.
    pub alarms: Vec<Cow<'static, str>>,
    /// Every named status bit with its value.
    pub status: Flags,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub odometer_km: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_l: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_recorder_kmh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub satellites: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_strength: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_status: Option<Flags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analog: Option<serde_json::Value>,
    /// Decoded protocol items without a contract field, flattened into `data`.
    #[serde(flatten)]
    pub more: serde_json::Map<String, serde_json::Value>,
    /// Additional items not decoded: id (`"0xe1"`) to value (hex).
    #[serde(skip_serializing_if = "is_empty_map")]
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
            out.extend_from_slice(b",\"analog\":");
            json::value(out, v);
        }
        for (k, v) in more {
            out.push(b',');
            json::key(out, k);
            json::value(out, v);
        }
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
