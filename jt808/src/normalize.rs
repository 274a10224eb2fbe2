//! JT/T 808 messages to the contract's events (CONTRACT.md §3), and the `--raw` JSON.
//!
//! Why here and not in the gateway: normalization is pure (message + header + context in,
//! events out) so the CLI, the gateway and the tests share one mapping.
//!
//! - 0x0200/0x0201 -> `location`, 0x0704 -> one `location` per item (type 1 = reissue)
//!   (each: (signed degrees from status bits 2/3, speed /10, named alarm and
//!   status bits, items 0x01/0x02/0x03/0x30/0x31 typed, other items in `extras`).
//! - 0x0100 register, 0x0102 authenticate, 0x0003 logout -> `lifecycle`.
//! - everything else -> `passthrough` with the message JSON and `body_base64`.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use codecs::event::{Flags, Lifecycle, LifecycleKind, Location, Passthrough};
use codecs::{Data, Event, EventContext};
use serde_json::{json, Value};

use crate::msg::LocationReport;
use crate::{Header, Message, Version};

/// Alarm bits, JT/T 808-2013 §8.18 table 24 (bits 15-17 reserved in 2013, named in
/// JT/T 808-2019 table 25: illegal driving, tyre pressure warning, right-turn blind zone).
const ALARMS: [(u32, &str); 29] = [
    (0, "emergency"),
    (1, "overspeed"),
    (2, "fatigue_driving"),
    (3, "danger_warning"),
    (4, "gnss_module_fault"),
    (5, "gnss_antenna_disconnected"),
    (6, "gnss_antenna_short_circuit"),
    (7, "main_power_undervoltage"),
    (8, "main_power_off"),
    (9, "display_fault"),
    (10, "tts_fault"),
    (11, "camera_fault"),
    (12, "ic_card_module_fault"),
    (13, "overspeed_warning"),
    (14, "fatigue_warning"),
    (15, "illegal_driving"),
    (16, "tyre_pressure_warning"),
    (17, "right_turn_blind_zone"),
    (18, "cumulative_driving_overtime"),
    (19, "parking_overtime"),
    (20, "area_in_out"),
    (21, "route_in_out"),
    (22, "route_driving_time_abnormal"),
    (23, "route_deviation"),
    (24, "vss_fault"),
    (25, "fuel_abnormal"),
    (26, "vehicle_stolen"),
    (27, "illegal_ignition"),
    (28, "illegal_displacement"),
];

/// Alarm bits 29-31 (same table): collision warning, rollover warning, illegal door open.
const ALARMS_HIGH: [(u32, &str); 3] = [
    (29, "collision"),
    (30, "rollover"),
    (31, "illegal_door_open"),
];

/// Status bits, JT/T 808-2013 §8.18 table 25 (bits 8-9 are the load state, in `more`).
const STATUS: [(u32, &str); 18] = [
    (0, "acc_on"),
    (1, "fix_valid"),
    (2, "south"),
    (3, "west"),
    (4, "out_of_service"),
    (5, "coordinates_encrypted"),
    (10, "oil_circuit_cut"),
    (11, "electric_circuit_cut"),
    (12, "door_locked"),
    (13, "door1_open"),
    (14, "door2_open"),
    (15, "door3_open"),
    (16, "door4_open"),
    (17, "door5_open"),
    (18, "gps"),
    (19, "beidou"),
    (20, "glonass"),
    (21, "galileo"),
];

fn bit(v: u32, b: u32) -> bool {
    v >> b & 1 == 1
}

/// The UTC time of a BCD `YYMMDDhhmmss` field in a zone `offset` seconds east of UTC;
/// `None` when the bytes are not BCD or not a real date.
pub fn bcd_time(b: &[u8; 6], offset: i32) -> Option<DateTime<Utc>> {
    let d = |i: usize| codecs::bcd::byte_value(*b.get(i)?, i).ok();
    let t = codecs::time::LocalTime {
        year: d(0)?,
        month: d(1)?,
        day: d(2)?,
        hour: d(3)?,
        minute: d(4)?,
        second: d(5)?,
    };
    t.to_utc(offset).ok()
}

/// The contract `location` data of a location body in edition `version`.
pub fn location(r: &LocationReport, version: Version) -> Location {
    let mut alarms: Vec<Cow<'static, str>> = Vec::new();
    for (b, name) in ALARMS.iter().chain(ALARMS_HIGH.iter()) {
        let reserved_2013 = (15..=17).contains(b) && version != Version::V2019;
        if bit(r.alarm, *b) && !reserved_2013 {
            alarms.push(Cow::Borrowed(name));
        }
    }
    let mut status: Vec<(&'static str, bool)> = STATUS
        .iter()
        .map(|(b, n)| (*n, bit(r.status, *b)))
        .collect();
    if version == Version::V2019 {
        // JT/T 808-2019 table 26 bit 22: 0 stopped, 1 driving.
        status.push(("driving", bit(r.status, 22)));
    }
    let sign = |neg: bool| if neg { -1.0 } else { 1.0 };
    let mut loc = Location {
        latitude: sign(bit(r.status, 2)) * f64::from(r.latitude) / 1e6,
        longitude: sign(bit(r.status, 3)) * f64::from(r.longitude) / 1e6,
        altitude_m: Some(f64::from(r.altitude)),
        speed_kmh: Some(f64::from(r.speed) / 10.0),
        heading_deg: Some(f64::from(r.heading)),
        fix_valid: bit(r.status, 1),
        alarms,
        status: Flags(status),
        ..Location::default()
    };
    // Load state, status bits 8-9 (table 25): 0 empty, 1 half, 3 full.
    let load = (r.status >> 8) & 0b11;
    if load != 0 {
        loc.more.insert("load_state".into(), json!(load));
    }
    // Additional items, JT/T 808-2013 table 27.
    for it in &r.items {
        let v = it.value.as_slice();
        match (it.id, v) {
            // 0x01 mileage DWORD, 1/10 km.
            (0x01, [a, b, c, d]) => {
                loc.odometer_km = Some(f64::from(u32::from_be_bytes([*a, *b, *c, *d])) / 10.0)
            }
            // 0x02 fuel WORD, 1/10 L.
            (0x02, [a, b]) => loc.fuel_l = Some(f64::from(u16::from_be_bytes([*a, *b])) / 10.0),
            // 0x03 recorder speed WORD, 1/10 km/h.
            (0x03, [a, b]) => {
                loc.speed_recorder_kmh = Some(f64::from(u16::from_be_bytes([*a, *b])) / 10.0)
            }
            // 0x30 wireless signal strength BYTE.
            (0x30, [a]) => loc.signal_strength = Some(*a),
            // 0x31 GNSS satellites BYTE.
            (0x31, [a]) => loc.satellites = Some(*a),
            _ => {
                loc.extras
                    .insert(format!("0x{:02x}", it.id), hex::encode(v));
            }
        }
    }
    if !r.tail.is_empty() {
        loc.more
            .insert("tail_hex".into(), json!(hex::encode(&r.tail)));
    }
    loc
}

fn location_event(
    r: &LocationReport,
    version: Version,
    ctx: &EventContext,
    ev: &dyn Fn(Option<DateTime<Utc>>, Data) -> Event,
) -> Event {
    let time = bcd_time(&r.time, ctx.device_utc_offset_secs);
    let mut loc = location(r, version);
    if time.is_none() {
        loc.more.insert(
            "note".into(),
            json!(format!("invalid device time {}", hex::encode(r.time))),
        );
    }
    ev(time, Data::Location(Box::new(loc)))
}

/// The events of one message (contract §3).
pub fn normalize(header: &Header, msg: &Message, ctx: &EventContext) -> Vec<Event> {
    let vid: Arc<str> = Arc::from(header.phone.as_str());
    let proto = header.version.protocol();
    let seq = Some(u32::from(header.serial));
    let ev = |time: Option<DateTime<Utc>>, data: Data| {
        Event::new(ctx, vid.clone(), proto, time, seq, data)
    };
    match msg {
        Message::Location(r)
        | Message::LocationAnswer { report: r, .. }
        | Message::VehicleControlAnswer { report: r, .. } => {
            vec![location_event(r, header.version, ctx, &ev)]
        }
        Message::LocationBatch { batch_type, items } => items
            .iter()
            .map(|r| location_event(r, header.version, ctx, &ev).reissued(*batch_type == 1))
            .collect(),
        Message::Register(reg) => {
            let ev =
                |time, data| Event::new(ctx, vid.clone(), reg.layout.protocol(), time, seq, data);
            let l = Lifecycle::new(LifecycleKind::Register)
                .with("plate", reg.plate.clone())
                .with("plate_color", reg.plate_color)
                .with("manufacturer", reg.manufacturer.clone())
                .with("model", reg.model.clone())
                .with("terminal_id", reg.terminal_id.clone())
                .with("province", reg.province)
                .with("city", reg.city);
            vec![ev(None, Data::Lifecycle(l))]
        }
        Message::Authenticate(a) => {
            let mut l = Lifecycle::new(LifecycleKind::Authenticate);
            if let Some(i) = &a.imei {
                l = l.with("imei", i.clone());
            }
            if let Some(s) = &a.software_version {
                l = l.with("software_version", s.clone());
            }
            vec![ev(None, Data::Lifecycle(l))]
        }
        Message::Logout => vec![ev(
            None,
            Data::Lifecycle(Lifecycle::new(LifecycleKind::Logout)),
        )],
        other => {
            let body = other.encode_body(header.version).unwrap_or_default();
            let p = json!({
                "msg_id": format!("0x{:04x}", other.msg_id()),
                "message": serde_json::to_value(other).unwrap_or(Value::Null),
                "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
            });
            vec![ev(None, Data::Passthrough(Passthrough(p)))]
        }
    }
}

/// `{"header": ..., "message": ...}`: what `vgate decode jt808 --raw` prints.
pub fn raw_json(header: &Header, msg: &Message) -> Value {
    json!({
        "header": serde_json::to_value(header).unwrap_or(Value::Null),
        "message": serde_json::to_value(msg).unwrap_or(Value::Null),
    })
}
