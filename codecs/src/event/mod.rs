//! The normalized vehicle event: one JSON object per thing a vehicle said (contract §3).
//!
//! Every protocol crate turns its messages into [`Event`]s; the gateway publishes them on
//! `{p}/v1/{vehicle_id}/{type}`. The envelope is the same for every event; `data` is typed
//! per event type ([`Data`]), and the event's `type` is derived from it, so the two can
//! never disagree.
//!
//! ```text
//! {"v":1,"event_id":"01JD..","vehicle_id":"013800138000","protocol":"jt808-2013",
//!  "type":"location","device_time":"..Z","received_at":"..123Z","gateway":"node-1",
//!  "msg_seq":17,"reissue":false,"data":{..}}
//! ```

mod alarm;
mod cmd_result;
mod lifecycle;
mod location;
mod passthrough;
mod status;
mod telemetry;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

pub use alarm::{AlarmEvent, AlarmState};
pub use cmd_result::{CmdResult, CmdStatus};
pub use lifecycle::{Lifecycle, LifecycleKind};
pub use location::{CoordSystem, Flags, Location};
pub use passthrough::Passthrough;
pub use status::{Presence, PresenceReason};
pub use telemetry::*;

/// The protocol and edition an event came from (`protocol` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Jt808_2011,
    Jt808_2013,
    Jt808_2019,
    Gbt32960_2016,
    Gbt32960_2025,
    Raw,
}

impl Protocol {
    /// The contract's name: `jt808-2013`, `gbt32960-2025`, `raw`...
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Jt808_2011 => "jt808-2011",
            Protocol::Jt808_2013 => "jt808-2013",
            Protocol::Jt808_2019 => "jt808-2019",
            Protocol::Gbt32960_2016 => "gbt32960-2016",
            Protocol::Gbt32960_2025 => "gbt32960-2025",
            Protocol::Raw => "raw",
        }
    }

    /// The protocol family without its edition: `jt808`, `gbt32960`, `raw` (broadcast groups).
    pub const fn family(self) -> &'static str {
        match self {
            Protocol::Jt808_2011 | Protocol::Jt808_2013 | Protocol::Jt808_2019 => "jt808",
            Protocol::Gbt32960_2016 | Protocol::Gbt32960_2025 => "gbt32960",
            Protocol::Raw => "raw",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The event's `type`, which is also the last topic level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Location,
    Telemetry,
    Alarm,
    Lifecycle,
    Status,
    Passthrough,
    CmdResult,
}

impl EventKind {
    /// The JSON `type` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Location => "location",
            EventKind::Telemetry => "telemetry",
            EventKind::Alarm => "alarm",
            EventKind::Lifecycle => "lifecycle",
            EventKind::Status => "status",
            EventKind::Passthrough => "passthrough",
            EventKind::CmdResult => "cmd_result",
        }
    }

    /// The topic suffix after `{p}/v1/{vid}/` (`cmd_result` is published on `cmd/result`).
    pub const fn topic_suffix(self) -> &'static str {
        match self {
            EventKind::CmdResult => "cmd/result",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The typed `data` of an event; its variant decides the event's `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Location(Box<Location>),
    Telemetry(Box<Telemetry>),
    Alarm(AlarmEvent),
    Lifecycle(Lifecycle),
    Status(Presence),
    Passthrough(Passthrough),
    CmdResult(CmdResult),
}

impl Data {
    /// The event type this data makes.
    pub fn kind(&self) -> EventKind {
        match self {
            Data::Location(_) => EventKind::Location,
            Data::Telemetry(_) => EventKind::Telemetry,
            Data::Alarm(_) => EventKind::Alarm,
            Data::Lifecycle(_) => EventKind::Lifecycle,
            Data::Status(_) => EventKind::Status,
            Data::Passthrough(_) => EventKind::Passthrough,
            Data::CmdResult(_) => EventKind::CmdResult,
        }
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Location(d) => d.serialize(s),
            Data::Telemetry(d) => d.serialize(s),
            Data::Alarm(d) => d.serialize(s),
            Data::Lifecycle(d) => d.serialize(s),
            Data::Status(d) => d.serialize(s),
            Data::Passthrough(d) => d.serialize(s),
            Data::CmdResult(d) => d.serialize(s),
        }
    }
}

/// What the normalizer needs besides the message: who we are, when it arrived, and the
/// device's time zone. Built once per connection (or per CLI run) and passed by reference.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// This gateway node's id (`gateway` in the JSON).
    pub gateway: Arc<str>,
    /// When the frame was read.
    pub received_at: DateTime<Utc>,
    /// The device clock's offset east of UTC, in seconds (GMT+8 by default).
    pub device_utc_offset_secs: i32,
}

impl EventContext {
    /// A context for frames received now, with Beijing time as the device zone.
    pub fn now(gateway: impl Into<Arc<str>>) -> Self {
        EventContext {
            gateway: gateway.into(),
            received_at: Utc::now(),
            device_utc_offset_secs: crate::time::BEIJING_OFFSET_SECS,
        }
    }
}

/// One normalized vehicle event (contract §3).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// ULID, unique, kept across retried publishes and spool replays.
    pub event_id: ulid::Ulid,
    pub vehicle_id: Arc<str>,
    pub protocol: Protocol,
    /// UTC; `None` when the frame carries no time or its time is invalid.
    pub device_time: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub gateway: Arc<str>,
    /// The frame's serial number where the protocol has one.
    pub msg_seq: Option<u32>,
    /// Data sent late (GB/T 32960 0x03, JT/T 808 0x0704 type 1).
    pub reissue: bool,
    pub data: Data,
}

impl Event {
    /// A new event with a fresh id, stamped from `ctx`.
    pub fn new(
        ctx: &EventContext,
        vehicle_id: Arc<str>,
        protocol: Protocol,
        device_time: Option<DateTime<Utc>>,
        msg_seq: Option<u32>,
        data: Data,
    ) -> Self {
        Event {
            event_id: ulid::Ulid::new(),
            vehicle_id,
            protocol,
            device_time,
            received_at: ctx.received_at,
            gateway: ctx.gateway.clone(),
            msg_seq,
            reissue: false,
            data,
        }
    }

    /// Marks the event as reissued (late) data.
    pub fn reissued(mut self, reissue: bool) -> Self {
        self.reissue = reissue;
        self
    }

    /// The event's `type`.
    pub fn kind(&self) -> EventKind {
        self.data.kind()
    }

    /// The event as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The event as JSON bytes appended to `out` (no intermediate String).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let _ = serde_json::to_writer(out, self);
    }
}

struct Secs<'a>(&'a DateTime<Utc>);
impl Serialize for Secs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}
struct Millis<'a>(&'a DateTime<Utc>);
impl Serialize for Millis<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}
struct UlidStr(ulid::Ulid);
impl Serialize for UlidStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; ulid::ULID_LEN];
        s.serialize_str(self.0.array_to_str(&mut buf))
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Event", 11)?;
        st.serialize_field("v", &1u8)?;
        st.serialize_field("event_id", &UlidStr(self.event_id))?;
        st.serialize_field("vehicle_id", &*self.vehicle_id)?;
        st.serialize_field("protocol", &self.protocol)?;
        st.serialize_field("type", self.kind().as_str())?;
        st.serialize_field("device_time", &self.device_time.as_ref().map(Secs))?;
        st.serialize_field("received_at", &Millis(&self.received_at))?;
        st.serialize_field("gateway", &*self.gateway)?;
        st.serialize_field("msg_seq", &self.msg_seq)?;
        st.serialize_field("reissue", &self.reissue)?;
        st.serialize_field("data", &self.data)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn envelope_has_every_contract_field_in_order() {
        let ctx = EventContext {
            gateway: "node-1".into(),
            received_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::milliseconds(123),
            device_utc_offset_secs: 8 * 3600,
        };
        let ev = Event::new(
            &ctx,
            "013800138000".into(),
            Protocol::Jt808_2013,
            Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            Some(17),
            Data::Lifecycle(Lifecycle::new(LifecycleKind::Login)),
        );
        let v: serde_json::Value = serde_json::from_str(&ev.to_json()).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["event_id"].as_str().unwrap().len(), 26);
        assert_eq!(v["protocol"], "jt808-2013");
        assert_eq!(v["type"], "lifecycle");
        assert_eq!(v["device_time"], "2024-01-01T00:00:00Z");
        assert_eq!(v["received_at"], "2024-01-01T00:00:00.123Z");
        assert_eq!(v["gateway"], "node-1");
        assert_eq!(v["msg_seq"], 17);
        assert_eq!(v["reissue"], false);
        assert_eq!(v["data"]["event"], "login");
        let keys: Vec<_> = ev.to_json().match_indices("\":").map(|(i, _)| i).collect();
        assert!(keys.len() >= 11);
    }
}
