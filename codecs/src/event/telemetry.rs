//! `telemetry.data`: EV and powertrain telemetry (GB/T 32960 real-time and reissue).
//!
//! The contract's groups (§3): `vehicle`, `motors`, `fuel_cell`, `engine`, `extremes`,
//! `alarm`, `battery_voltages`, `battery_temperatures`, `custom`, plus the 2025 extras
//! `supercap`, `fuel_cell_stacks`, `signature`; each is present only when the frame carries
//! it. Both GB/T 32960 editions fill the same names; values are physical units and an
//! abnormal/invalid value is null. The group contents are JSON values built by the
//! protocol's normalizer, so a group can grow fields without a change here.

use serde::Serialize;

/// `telemetry.data`: one optional JSON value per contract group.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Telemetry {
    /// Whole-vehicle state (`state`, `charging`, `mode`, `speed_kmh`, `odometer_km`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<serde_json::Value>,
    /// Drive motors, a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motors: Option<serde_json::Value>,
    /// Fuel cell (2016) / fuel-cell engine and H2 system (2025).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_cell: Option<serde_json::Value>,
    /// Engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<serde_json::Value>,
    /// Extreme cell voltages and temperatures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extremes: Option<serde_json::Value>,
    /// Alarm level, flag names and fault code lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<serde_json::Value>,
    /// Cell voltages per pack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_voltages: Option<serde_json::Value>,
    /// Probe temperatures per pack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_temperatures: Option<serde_json::Value>,
    /// 2025 super-capacitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supercap: Option<serde_json::Value>,
    /// 2025 fuel-cell stacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_cell_stacks: Option<serde_json::Value>,
    /// 2025 vehicle signature (type, r, s in hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<serde_json::Value>,
    /// User-defined units: list of `{"type": "0x80", "data": hex}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
    /// Protocol items without a contract group (an undecoded tail...), flattened.
    #[serde(flatten)]
    pub more: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_groups_are_left_out_of_the_json() {
        let t = Telemetry {
            engine: Some(serde_json::json!({"crank_rpm": 800})),
            ..Default::default()
        };
        let v = serde_json::to_value(&t).expect("telemetry serializes");
        assert_eq!(v, serde_json::json!({"engine": {"crank_rpm": 800}}));
    }
}
