//! `telemetry.data`: EV and powertrain telemetry (GB/T 32960 real-time and reissue).
//!
//! Owned by the GB/T 32960 work (issue 3): the contract's groups `vehicle`, `motors`,
//! `fuel_cell`, `engine`, `extremes`, `alarm`, `battery_voltages`, `battery_temperatures`,
//! `custom`, each present when the frame carries it, physical units, abnormal/invalid as null.

use serde::Serialize;

/// Placeholder until the GB/T 32960 normalizer defines its groups.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Telemetry {
    #[serde(flatten)]
    pub groups: serde_json::Map<String, serde_json::Value>,
}
