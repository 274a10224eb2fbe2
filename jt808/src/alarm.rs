//! Alarm transitions (contract §3 `alarm.data`): a live report's alarm word compared with
//! the vehicle's previous one, one `alarm` event per bit that changed.
//!
//! Live reports are 0x0200, the answers that carry a position (0x0201, 0x0500) and the
//! entries of a 0x0704 batch of type 0 (in order, each compared with the one before). A
//! 0x0704 of type 1 (reissue, data stored while offline) never raises or clears: its
//! alarms stay in its `location` events. Bits 15-17, reserved before 2019, are ignored in
//! 2011/2013 as in `location.data.alarms`.
//!
//! Pure: the caller (the gateway's session) keeps the previous [`AlarmBits`] per vehicle,
//! empty at login, and stores what [`events`] hands back.
//!
//! Each event's detail: `bit` (the alarm word bit, what 0x8203 confirms), the position
//! (`latitude`, `longitude`, `speed_kmh`), and the additional items that explain the alarm
//! when the report has them: `alarm_event_id` (0x04), `overspeed` (0x11, bit 1),
//! `in_out_area` (0x12, bits 20-21), `route_time` (0x13, bit 22). The envelope's `msg_seq`
//! is the report's serial (0x8203's `alarm_serial`).

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use codecs::event::{AlarmBits, AlarmEvent};
use codecs::{Data, Event, EventContext};
use serde_json::json;

use crate::msg::LocationReport;
use crate::normalize::{alarm_name, bcd_time, location};
use crate::{Header, Message, Version};

/// The alarm bits of `alarm` that `version` defines (2011/2013 reserve bits 15-17).
pub fn bits(alarm: u32, version: Version) -> AlarmBits {
    const RESERVED_2013: u32 = 0b111 << 15;
    match version {
        Version::V2019 => AlarmBits(alarm),
        Version::V2011 | Version::V2013 => AlarmBits(alarm & !RESERVED_2013),
    }
}

/// The alarm events of one live report given the vehicle's previous bits, and its bits.
pub fn transitions(
    prev: AlarmBits,
    r: &LocationReport,
    version: Version,
) -> (AlarmBits, Vec<AlarmEvent>) {
    let now = bits(r.alarm, version);
    let mut out = Vec::new();
    let mut changes = prev.changes(now).peekable();
    if changes.peek().is_none() {
        return (now, out);
    }
    let loc = location(r, version);
    let more = loc.more.to_map();
    for (bit, state) in changes {
        let mut detail = serde_json::Map::new();
        detail.insert("bit".into(), json!(bit));
        detail.insert("latitude".into(), json!(loc.latitude));
        detail.insert("longitude".into(), json!(loc.longitude));
        detail.insert("speed_kmh".into(), json!(loc.speed_kmh));
        let related: &[&str] = match bit {
            1 => &["overspeed"],
            20 | 21 => &["in_out_area"],
            22 => &["route_time"],
            _ => &[],
        };
        for key in ["alarm_event_id"].iter().chain(related) {
            if let Some(v) = more.get(*key) {
                detail.insert((*key).into(), v.clone());
            }
        }
        let name = alarm_name(bit)
            .map(Cow::Borrowed)
            .unwrap_or_else(|| Cow::Owned(format!("bit{bit}")));
        out.push(AlarmEvent {
            name,
            state,
            level: None,
            detail,
        });
    }
    (now, out)
}

/// The `alarm` events of one message of a session that settled on `edition`, and the
/// vehicle's alarm bits after it; `None` when the message carries no live alarm state (any
/// other message, a reissue batch): the bits stay as they were.
pub fn events(
    edition: Version,
    header: &Header,
    msg: &Message,
    ctx: &EventContext,
    prev: AlarmBits,
) -> Option<(AlarmBits, Vec<Event>)> {
    let reports: &[LocationReport] = match msg {
        Message::Location(r)
        | Message::LocationAnswer { report: r, .. }
        | Message::VehicleControlAnswer { report: r, .. } => std::slice::from_ref(r),
        Message::LocationBatch {
            batch_type: 0,
            items,
        } => items,
        _ => return None,
    };
    let vid: Arc<str> = Arc::from(header.phone.as_str());
    let mut bits = prev;
    let mut out = Vec::new();
    for r in reports {
        let (now, changes) = transitions(bits, r, header.version);
        bits = now;
        if changes.is_empty() {
            continue;
        }
        let time: Option<DateTime<Utc>> = bcd_time(&r.time, ctx.device_utc_offset_secs);
        out.extend(changes.into_iter().map(|a| {
            Event::new(
                ctx,
                vid.clone(),
                edition.protocol(),
                time,
                Some(u32::from(header.serial)),
                Data::Alarm(a),
            )
        }));
    }
    Some((bits, out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use codecs::event::AlarmState;
    use proptest::prelude::*;

    fn report(alarm: u32) -> LocationReport {
        LocationReport {
            alarm,
            status: 0b10,
            latitude: 22_543_096,
            longitude: 114_057_865,
            altitude: 0,
            speed: 365,
            heading: 0,
            time: [0x24, 0x01, 0x01, 0x08, 0x00, 0x00],
            items: Default::default(),
            tail: Vec::new(),
        }
    }

    fn header() -> Header {
        Header {
            msg_id: 0x0200,
            version: Version::V2013,
            protocol_version: 0,
            phone: "013800138000".into(),
            serial: 42,
            encryption: crate::Encryption::None,
            package: None,
        }
    }

    fn names(evs: &[Event]) -> Vec<(String, AlarmState)> {
        evs.iter()
            .map(|e| match &e.data {
                Data::Alarm(a) => (a.name.to_string(), a.state),
                other => panic!("not an alarm: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn emergency_and_collision_raise_then_an_identical_report_is_silent_then_they_clear() {
        let ctx = EventContext::now("n");
        let h = header();
        let set = Message::Location(report(1 | 1 << 29));
        let (bits, evs) = events(Version::V2013, &h, &set, &ctx, AlarmBits::EMPTY).unwrap();
        assert_eq!(
            names(&evs),
            [
                ("emergency".into(), AlarmState::Raised),
                ("collision".into(), AlarmState::Raised)
            ]
        );
        let v = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!(v["type"], "alarm");
        assert_eq!(v["msg_seq"], 42);
        assert_eq!(v["device_time"], "2024-01-01T00:00:00Z");
        assert_eq!(v["data"]["bit"], 0);
        assert_eq!(v["data"]["speed_kmh"], 36.5);
        assert!(v["data"].get("level").is_none());
        let (same, none) = events(Version::V2013, &h, &set, &ctx, bits).unwrap();
        assert_eq!(same, bits);
        assert!(none.is_empty());
        let clear = Message::Location(report(1 << 29));
        let (_, evs) = events(Version::V2013, &h, &clear, &ctx, bits).unwrap();
        assert_eq!(names(&evs), [("emergency".into(), AlarmState::Cleared)]);
    }

    #[test]
    fn a_reissue_batch_neither_raises_nor_clears_and_a_live_batch_goes_entry_by_entry() {
        let ctx = EventContext::now("n");
        let h = Header {
            msg_id: 0x0704,
            ..header()
        };
        let reissue = Message::LocationBatch {
            batch_type: 1,
            items: vec![report(1), report(0)],
        };
        assert!(events(Version::V2013, &h, &reissue, &ctx, AlarmBits(2)).is_none());
        let live = Message::LocationBatch {
            batch_type: 0,
            items: vec![report(1), report(1), report(0)],
        };
        let (bits, evs) = events(Version::V2013, &h, &live, &ctx, AlarmBits::EMPTY).unwrap();
        assert_eq!(bits, AlarmBits::EMPTY);
        assert_eq!(
            names(&evs),
            [
                ("emergency".into(), AlarmState::Raised),
                ("emergency".into(), AlarmState::Cleared)
            ]
        );
    }

    #[test]
    fn reserved_2013_bits_raise_nothing_but_name_their_alarm_in_2019() {
        let r = report(1 << 16);
        let (_, none) = transitions(AlarmBits::EMPTY, &r, Version::V2013);
        assert!(none.is_empty());
        let (_, evs) = transitions(AlarmBits::EMPTY, &r, Version::V2019);
        assert_eq!(evs[0].name, "tyre_pressure_warning");
    }

    #[test]
    fn an_overspeed_alarm_carries_its_0x11_item_and_the_alarm_event_id() {
        let mut r = report(1 << 1);
        r.items.push(crate::msg::LocationItem {
            id: 0x11,
            value: vec![1, 0, 0, 0, 7],
        });
        r.items.push(crate::msg::LocationItem {
            id: 0x04,
            value: vec![0, 9],
        });
        let (_, evs) = transitions(AlarmBits::EMPTY, &r, Version::V2013);
        let v = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!(v["name"], "overspeed");
        assert_eq!(
            v["overspeed"],
            serde_json::json!({"location_type": 1, "area_id": 7})
        );
        assert_eq!(v["alarm_event_id"], 9);
    }

    proptest! {
        #[test]
        fn every_alarm_name_of_the_location_event_is_raised_from_empty(alarm: u32, v2019: bool) {
            let version = if v2019 { Version::V2019 } else { Version::V2013 };
            let r = report(alarm);
            let (_, evs) = transitions(AlarmBits::EMPTY, &r, version);
            let raised: Vec<String> = evs.iter().map(|e| e.name.to_string()).collect();
            let listed: Vec<String> = location(&r, version).alarms.iter().map(|a| a.to_string()).collect();
            prop_assert_eq!(raised, listed);
        }
    }
}
