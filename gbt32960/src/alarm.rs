//! Alarm transitions (contract §3 `alarm.data`): the general alarm flags of a real-time
//! report (0x02) compared with the vehicle's previous ones, one `alarm` event per flag that
//! changed.
//!
//! Only a live report with an alarm unit (2016 type 0x07, 2025 0x06) says what is set; a
//! report without one (a frame that carries only cell voltages, say) leaves the state as it
//! was, and a reissue (0x03, data stored during a link loss) never raises or clears: its
//! alarms stay in its `telemetry` event.
//!
//! Pure: the caller (the gateway's session) keeps the previous [`AlarmBits`] per vehicle,
//! empty at login, and stores what [`events`] hands back.
//!
//! Each raised event carries `level`, the report's highest alarm level (2016 0-3, 2025 0-4;
//! `null` when the vehicle sent 0xFE/0xFF); a cleared one has none. The detail of both:
//! `bit` (the flag's bit), the report's fault code lists (`ress_faults`, `motor_faults`,
//! `engine_faults`, `other_faults`, 8 hex digits each, as in `telemetry.data.alarm`), and in
//! 2025 `flag_level`, the level the report's general alarm list gives this flag, when it
//! lists it.

use std::borrow::Cow;
use std::sync::Arc;

use codecs::event::{AlarmBits, AlarmEvent, AlarmState};
use codecs::{Data, Event, EventContext};
use serde_json::{json, Value};

use crate::realtime::alarm::FLAG_NAMES;
use crate::realtime::Alarm;
use crate::{Frame, Message};

fn codes(l: &[u32]) -> Value {
    Value::Array(l.iter().map(|c| json!(format!("{c:08x}"))).collect())
}

/// The alarm events of one alarm unit given the vehicle's previous flags, and its flags.
pub fn transitions(prev: AlarmBits, a: &Alarm) -> (AlarmBits, Vec<AlarmEvent>) {
    let now = AlarmBits(a.flags);
    let level = (a.level < 0xFE).then_some(a.level);
    let out = prev
        .changes(now)
        .map(|(bit, state)| {
            let mut detail = serde_json::Map::new();
            detail.insert("bit".into(), json!(bit));
            detail.insert("engine_faults".into(), codes(&a.engine_faults));
            let flag_level = a
                .general
                .iter()
                .flatten()
                .find(|(b, _)| u32::from(*b) == bit)
                .map(|(_, l)| *l);
            if let Some(l) = flag_level {
                detail.insert(
                    "flag_level".into(),
                    if l < 0xFE { json!(l) } else { Value::Null },
                );
            }
            detail.insert("motor_faults".into(), codes(&a.motor_faults));
            detail.insert("other_faults".into(), codes(&a.other_faults));
            detail.insert("ress_faults".into(), codes(&a.ress_faults));
            let raised = state == AlarmState::Raised;
            if raised && level.is_none() {
                // A sentinel level is `null`, not absent, on a raised alarm.
                detail.insert("level".into(), Value::Null);
            }
            let name = FLAG_NAMES
                .get(bit as usize)
                .map(|n| Cow::Borrowed(*n))
                .unwrap_or_else(|| Cow::Owned(format!("bit{bit}")));
            AlarmEvent {
                name,
                state,
                level: if raised { level } else { None },
                detail,
            }
        })
        .collect();
    (now, out)
}

/// The `alarm` events of one frame and the vehicle's flags after it; `None` when the frame
/// says nothing about the alarm state (not a real-time report, no alarm unit, a reissue):
/// the flags stay as they were.
pub fn events(
    frame: &Frame,
    msg: &Message,
    ctx: &EventContext,
    prev: AlarmBits,
) -> Option<(AlarmBits, Vec<Event>)> {
    let Message::Realtime(report) = msg else {
        return None;
    };
    let a = report.alarm()?;
    let (now, changes) = transitions(prev, a);
    if changes.is_empty() {
        return Some((now, Vec::new()));
    }
    let vid: Arc<str> = Arc::from(frame.vin.as_str());
    let time = report.time.to_utc(ctx.device_utc_offset_secs).ok();
    let proto = frame.edition.protocol();
    let out = changes
        .into_iter()
        .map(|a| Event::new(ctx, vid.clone(), proto, time, None, Data::Alarm(a)))
        .collect();
    Some((now, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::{Report, Unit};
    use crate::Edition;

    fn alarm(level: u8, flags: u32) -> Alarm {
        Alarm {
            level,
            flags,
            ress_faults: vec![0x0000_0102],
            motor_faults: Vec::new(),
            engine_faults: Vec::new(),
            other_faults: Vec::new(),
            general: None,
        }
    }

    fn frame(msg: &Message, ed: Edition) -> Frame {
        msg.to_frame(ed, "LVIN0000000000001").unwrap()
    }

    fn report(units: Vec<Unit>) -> Report {
        Report {
            time: codecs::time::LocalTime {
                year: 24,
                month: 1,
                day: 1,
                hour: 8,
                minute: 0,
                second: 0,
            },
            units,
            tail: None,
            signature: None,
        }
    }

    #[test]
    fn a_level_3_thermal_alarm_is_raised_with_its_level_and_faults_then_cleared_without() {
        let ctx = EventContext::now("n");
        // Bit 1: battery high temperature.
        let msg = Message::Realtime(report(vec![Unit::Alarm(alarm(3, 1 << 1))]));
        let f = frame(&msg, Edition::V2016);
        let (bits, evs) = events(&f, &msg, &ctx, AlarmBits::EMPTY).unwrap();
        assert_eq!(bits, AlarmBits(2));
        let v = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!(v["type"], "alarm");
        assert_eq!(v["protocol"], "gbt32960-2016");
        assert_eq!(v["device_time"], "2024-01-01T00:00:00Z");
        assert_eq!(
            v["data"],
            json!({"name": "battery_high_temperature", "state": "raised", "level": 3, "bit": 1,
                   "engine_faults": [], "motor_faults": [], "other_faults": [],
                   "ress_faults": ["00000102"]})
        );
        let (_, none) = events(&f, &msg, &ctx, bits).unwrap();
        assert!(none.is_empty(), "an identical report publishes nothing");
        let clear = Message::Realtime(report(vec![Unit::Alarm(alarm(0, 0))]));
        let (bits, evs) = events(&f, &clear, &ctx, bits).unwrap();
        assert_eq!(bits, AlarmBits::EMPTY);
        let v = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!(v["data"]["state"], "cleared");
        assert!(v["data"].get("level").is_none());
    }

    #[test]
    fn a_reissue_or_a_report_without_an_alarm_unit_leaves_the_state_alone() {
        let ctx = EventContext::now("n");
        let reissue = Message::Reissue(report(vec![Unit::Alarm(alarm(2, 1))]));
        let f = frame(&reissue, Edition::V2016);
        assert!(events(&f, &reissue, &ctx, AlarmBits(4)).is_none());
        let cells_only = Message::Realtime(report(Vec::new()));
        assert!(events(&f, &cells_only, &ctx, AlarmBits(4)).is_none());
    }

    #[test]
    fn a_sentinel_level_is_null_and_2025_names_the_flag_s_own_level() {
        let mut a = alarm(0xFF, 1 << 23);
        a.general = Some(vec![(23, 4)]);
        let (_, evs) = transitions(AlarmBits::EMPTY, &a);
        let v = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!(v["name"], "ress_thermal_event");
        assert!(v["level"].is_null() && v.get("level").is_some());
        assert_eq!(v["flag_level"], 4);
    }

    proptest::proptest! {
        #[test]
        fn every_flag_name_of_the_telemetry_event_is_raised_from_empty(flags: u32, level in 0u8..=4) {
            let a = alarm(level, flags);
            let (_, evs) = transitions(AlarmBits::EMPTY, &a);
            let raised: Vec<String> = evs.iter().map(|e| e.name.to_string()).collect();
            proptest::prop_assert_eq!(raised, a.flag_names());
            proptest::prop_assert!(evs.iter().all(|e| e.level == Some(level)));
        }
    }
}
