//! `alarm.data`: one alarm raised or cleared.

use std::borrow::Cow;

use serde::Serialize;

/// Whether the alarm started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmState {
    Raised,
    Cleared,
}

/// An alarm transition. `name` is the same snake_case name as in `location.data.alarms`
/// or `telemetry.data.alarm.flags`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmEvent {
    pub name: Cow<'static, str>,
    pub state: AlarmState,
    /// GB/T 32960 alarm level (0-4) where the protocol has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Protocol-specific detail (fault codes, position...), flattened into `data`.
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}
