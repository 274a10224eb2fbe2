//! JT/T 808 messages to the contract's events (CONTRACT.md §3), and the `--raw` JSON.
//!
//! Why here and not in the gateway: normalization is pure (message + header + context in,
//! events out) so the CLI, the gateway and the tests share one mapping.
//!
//! - 0x0200/0x0201 -> `location`, 0x0704 -> one `location` per item (type 1 = reissue)
//!   (each: signed degrees from status bits 2/3, speed /10, named alarm and
//!   status bits, every standard additional item of 2013/2019 typed (see [`location`]),
//!   vendor and malformed items in `extras`).
//! - 0x0100 register, 0x0102 authenticate, 0x0003 logout -> `lifecycle`.
//! - everything else -> `passthrough` with the message JSON and `body_base64`.

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use codecs::event::{
    Analog, FlagNames, Flags, InOutArea, Lifecycle, LifecycleKind, Location, Names, Overspeed,
    Passthrough, RouteTime,
};
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

/// The names of [`STATUS`], and the same with 2019's `driving` (bit 22, table 26).
const STATUS_NAMES: [&str; 18] = names(&STATUS);
// Evaluated at compile time: an index out of bounds fails the build, it cannot panic.
#[allow(clippy::indexing_slicing)]
const STATUS_NAMES_2019: [&str; 19] = {
    let mut n = [""; 19];
    let mut i = 0;
    while i < 18 {
        n[i] = STATUS_NAMES[i];
        i += 1;
    }
    n[18] = "driving";
    n
};

/// The names of [`ALARMS`] and [`ALARMS_HIGH`]: name `i` is bit `i`.
// Evaluated at compile time: an index out of bounds fails the build, it cannot panic.
#[allow(clippy::indexing_slicing)]
const ALARM_NAMES: [&str; 32] = {
    let mut n = [""; 32];
    let mut i = 0;
    while i < 29 {
        n[i] = ALARMS[i].1;
        i += 1;
    }
    while i < 32 {
        n[i] = ALARMS_HIGH[i - 29].1;
        i += 1;
    }
    n
};
static ALARM_FLAGS: FlagNames = FlagNames::new(&ALARM_NAMES);

static STATUS_FLAGS: FlagNames = FlagNames::new(&STATUS_NAMES);
static STATUS_FLAGS_2019: FlagNames = FlagNames::new(&STATUS_NAMES_2019);

/// The names of a bit table (for constants: an index out of bounds fails the build).
#[allow(clippy::indexing_slicing)]
const fn names<const N: usize>(table: &[(u32, &'static str); N]) -> [&'static str; N] {
    let mut n = [""; N];
    let mut i = 0;
    while i < N {
        n[i] = table[i].1;
        i += 1;
    }
    n
}

/// Bit `table[i].0` of `v` as bit `i` (the values of a [`Flags`] over `names(table)`).
fn gather(v: u32, table: &[(u32, &str)]) -> u64 {
    table
        .iter()
        .enumerate()
        .fold(0, |acc, (i, (b, _))| acc | u64::from(bit(v, *b)) << i)
}

/// The snake_case name of alarm bit `b` (as in `location.data.alarms`).
pub(crate) fn alarm_name(b: u32) -> Option<&'static str> {
    ALARMS
        .iter()
        .chain(ALARMS_HIGH.iter())
        .find(|(n, _)| *n == b)
        .map(|(_, name)| *name)
}

/// The alarm bit named `name` (the inverse of [`alarm_name`]).
pub(crate) fn alarm_bit(name: &str) -> Option<u32> {
    ALARMS
        .iter()
        .chain(ALARMS_HIGH.iter())
        .find(|(_, n)| *n == name)
        .map(|(b, _)| *b)
}

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
    // Bits 15-17 are reserved in 2013 (named in 2019).
    let reserved = if version == Version::V2019 {
        0
    } else {
        0b111 << 15
    };
    let alarms = Names::from_bits(&ALARM_FLAGS, u64::from(r.alarm & !reserved));
    let status = if version == Version::V2019 {
        // JT/T 808-2019 table 26 bit 22: 0 stopped, 1 driving.
        let bits = gather(r.status, &STATUS) | u64::from(bit(r.status, 22)) << 18;
        Flags::new(&STATUS_FLAGS_2019, bits)
    } else {
        Flags::new(&STATUS_FLAGS, gather(r.status, &STATUS))
    };
    let sign = |neg: bool| if neg { -1.0 } else { 1.0 };
    let mut loc = Location {
        latitude: sign(bit(r.status, 2)) * f64::from(r.latitude) / 1e6,
        longitude: sign(bit(r.status, 3)) * f64::from(r.longitude) / 1e6,
        altitude_m: Some(f64::from(r.altitude)),
        speed_kmh: Some(f64::from(r.speed) / 10.0),
        heading_deg: Some(f64::from(r.heading)),
        fix_valid: bit(r.status, 1),
        alarms,
        status,
        ..Location::default()
    };
    // Load state, status bits 8-9 (table 25): 0 empty, 1 half, 3 full.
    let load = (r.status >> 8) & 0b11;
    if load != 0 {
        loc.more.load_state = Some(load as u8);
    }
    // Additional items, JT/T 808-2013 table 27 / 2019 table 27.
    for it in &r.items {
        if !typed_item(&mut loc, it.id, it.value, version) {
            loc.extras
                .insert(format!("0x{:02x}", it.id), hex::encode(it.value));
        }
    }
    if !r.tail.is_empty() {
        loc.more
            .other
            .insert("tail_hex".into(), json!(hex::encode(&r.tail)));
    }
    loc
}

/// Extended vehicle signal bits, item 0x25 (JT/T 808-2013 table 31 / 2019 table 31).
/// (EMQX names these bits in reverse order; the standard's bit 0 is the low beam.)
///
/// Listed by name, the order of the JSON object (a B-tree map's when it was one).
const SIGNALS: [(u32, &str); 15] = [
    (12, "abs"),
    (9, "air_conditioner"),
    (4, "brake"),
    (14, "clutch"),
    (6, "fog_lamp"),
    (13, "heater"),
    (1, "high_beam"),
    (8, "horn"),
    (3, "left_turn_signal"),
    (0, "low_beam"),
    (10, "neutral"),
    (7, "position_lamp"),
    (11, "retarder"),
    (5, "reverse"),
    (2, "right_turn_signal"),
];

const SIGNAL_NAMES: [&str; 15] = names(&SIGNALS);
static SIGNAL_FLAGS: FlagNames = FlagNames::new(&SIGNAL_NAMES);

/// IO status bits, item 0x2A (table 32): bit 0 deep sleep, bit 1 sleep.
static IO_FLAGS: FlagNames = FlagNames::new(&["deep_sleep", "sleep"]);

fn be(v: &[u8]) -> Option<u32> {
    match v {
        [a] => Some(u32::from(*a)),
        [a, b] => Some(u32::from(u16::from_be_bytes([*a, *b]))),
        [a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// 0x06 carriage temperature: the standard's range is -32767..=+32767 with "the highest
/// bit 1 meaning negative" (sign and magnitude). A set sign bit with a magnitude of 16384
/// or more cannot be a temperature, so such a value is read as two's complement instead
/// (terminals that write an ordinary signed WORD).
fn carriage_temperature(w: u16) -> i32 {
    let magnitude = i32::from(w & 0x7fff);
    match (w & 0x8000 != 0, magnitude >= 0x4000) {
        (false, _) => magnitude,
        (true, false) => -magnitude,
        (true, true) => i32::from(w as i16),
    }
}

/// Types one standard additional item into `loc`; `false` when `id` is not a standard
/// item of `version` or its length is wrong for one (the caller keeps it in `extras`).
///
/// Items with a contract field fill it (0x01 `odometer_km`, 0x02 `fuel_l`, 0x03
/// `speed_recorder_kmh`, 0x2A `io_status`, 0x2B `analog`, 0x30 `signal_strength`, 0x31
/// `satellites`); the others go to `more`: 0x04 `alarm_event_id`, 0x05 (2019)
/// `tyre_pressure_pa` (list, 0xFF = null; the unit is the standard's), 0x06 (2019)
/// `carriage_temperature_c`, 0x11 `overspeed` (`location_type`, `area_id`), 0x12
/// `in_out_area` (`location_type`, `area_id`, `direction` 0 in / 1 out), 0x13 `route_time`
/// (`route_id`, `time_s`, `result` 0 too short / 1 too long), 0x25 `vehicle_signals`
/// (named bits), 0xE0 `custom_info_length`. Values are kept as sent; only lengths are
/// checked.
fn typed_item(loc: &mut Location, id: u8, v: &[u8], version: Version) -> bool {
    let v2019 = version == Version::V2019;
    match (id, v) {
        // 0x01 mileage DWORD, 1/10 km.
        (0x01, [_, _, _, _]) => loc.odometer_km = be(v).map(|n| f64::from(n) / 10.0),
        // 0x02 fuel WORD, 1/10 L.
        (0x02, [_, _]) => loc.fuel_l = be(v).map(|n| f64::from(n) / 10.0),
        // 0x03 recorder speed WORD, 1/10 km/h.
        (0x03, [_, _]) => loc.speed_recorder_kmh = be(v).map(|n| f64::from(n) / 10.0),
        // 0x04 id of the alarm event to confirm manually, WORD (from 1).
        (0x04, [a, b]) => loc.more.alarm_event_id = Some(u16::from_be_bytes([*a, *b])),
        // 0x05 (2019) tyre pressures, BYTE each from the front left; 0xFF = no data.
        (0x05, _) if v2019 && !v.is_empty() => {
            let p = v.iter().map(|b| (*b != 0xff).then_some(*b)).collect();
            loc.more.tyre_pressure_pa = Some(p);
        }
        // 0x06 (2019) carriage temperature, degrees Celsius.
        (0x06, [a, b]) if v2019 => {
            let t = carriage_temperature(u16::from_be_bytes([*a, *b]));
            loc.more.carriage_temperature_c = Some(t);
        }
        // 0x11 overspeed (table 28): location type BYTE (0 none, 1 circle, 2 rectangle,
        // 3 polygon, 4 route) | area or route id DWORD (absent for type 0).
        (0x11, [t]) => {
            loc.more.overspeed = Some(Overspeed {
                area_id: None,
                location_type: *t,
            });
        }
        (0x11, [t, a, b, c, d]) => {
            loc.more.overspeed = Some(Overspeed {
                area_id: Some(u32::from_be_bytes([*a, *b, *c, *d])),
                location_type: *t,
            });
        }
        // 0x12 in/out area or route (table 29): location type BYTE (1-4) | id DWORD
        // | direction BYTE (0 in, 1 out).
        (0x12, [t, a, b, c, d, dir]) => {
            loc.more.in_out_area = Some(InOutArea {
                area_id: u32::from_be_bytes([*a, *b, *c, *d]),
                direction: *dir,
                location_type: *t,
            });
        }
        // 0x13 route segment driving time (table 30): segment id DWORD | driving time
        // WORD (s) | result BYTE (0 too short, 1 too long).
        (0x13, [a, b, c, d, e, f, res]) => {
            loc.more.route_time = Some(RouteTime {
                result: *res,
                route_id: u32::from_be_bytes([*a, *b, *c, *d]),
                time_s: u16::from_be_bytes([*e, *f]),
            });
        }
        // 0x25 extended vehicle signal status DWORD (table 31).
        (0x25, [_, _, _, _]) => {
            let bits = gather(be(v).unwrap_or(0), &SIGNALS);
            loc.more.vehicle_signals = Some(Flags::new(&SIGNAL_FLAGS, bits));
        }
        // 0x2A IO status WORD (table 32): bits 0 and 1.
        (0x2A, [_, _]) => {
            let bits = u64::from(be(v).unwrap_or(0) & 0b11);
            loc.io_status = Some(Flags::new(&IO_FLAGS, bits));
        }
        // 0x2B analog DWORD: bits 0-15 AD0, bits 16-31 AD1.
        (0x2B, [a, b, c, d]) => {
            let ad1 = u16::from_be_bytes([*a, *b]);
            let ad0 = u16::from_be_bytes([*c, *d]);
            loc.analog = Some(Analog { ad0, ad1 });
        }
        // 0x30 wireless signal strength BYTE.
        (0x30, [a]) => loc.signal_strength = Some(*a),
        // 0x31 GNSS satellites BYTE.
        (0x31, [a]) => loc.satellites = Some(*a),
        // 0xE0 length of the custom information that follows.
        (0xE0, _) if be(v).is_some() => loc.more.custom_info_length = be(v),
        _ => return false,
    }
    true
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
        loc.more.other.insert(
            "note".into(),
            json!(format!("invalid device time {}", hex::encode(r.time))),
        );
    }
    ev(time, Data::Location(loc))
}

/// The events of one message (contract §3), labelled with the edition the frame itself
/// shows: its header's, or for a registration (0x0100) the layout of its body. This is what
/// one frame alone says (`vgate decode`); a session uses [`normalize_as`].
pub fn normalize(header: &Header, msg: &Message, ctx: &EventContext) -> Vec<Event> {
    let edition = match msg {
        Message::Register(reg) => reg.layout,
        _ => header.version,
    };
    normalize_as(edition, header, msg, ctx)
}

/// The events of one message of a session that settled on `edition`, every one labelled
/// with it (`protocol`).
///
/// 2011 and 2013 share the 12-byte header, so every frame of a 2011 terminal reads as a 2013
/// one; only its registration (0x0100, whose 2011 body is shorter) tells them apart. A
/// session remembers what the registration said and passes it here, so that all the events
/// of one session carry the same protocol. The body is still read as the header says
/// (2011 and 2013 bodies other than 0x0100 are the same).
pub fn normalize_as(
    edition: Version,
    header: &Header,
    msg: &Message,
    ctx: &EventContext,
) -> Vec<Event> {
    let mut out = Vec::with_capacity(match msg {
        Message::LocationBatch { items, .. } => items.len(),
        _ => 1,
    });
    Normalizer::new().normalize_into(edition, header, msg, ctx, &mut out);
    out
}

/// [`normalize_as`] for a stream of messages, into a list the caller keeps: a location
/// report (0x0200, 0x0201, 0x0500, 0x0704) then costs no allocation per event once the
/// list has grown (`tests/no_alloc.rs` counts them). The vehicle id of the previous
/// message is reused while the phone number stays the same.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    vid: Option<Arc<str>>,
}

impl Normalizer {
    /// A normalizer with nothing remembered.
    pub fn new() -> Normalizer {
        Normalizer::default()
    }

    /// The vehicle id of `phone`, shared with the previous call's when it is the same.
    fn vid(&mut self, phone: &str) -> Arc<str> {
        match &self.vid {
            Some(v) if &**v == phone => v.clone(),
            _ => {
                let v: Arc<str> = Arc::from(phone);
                self.vid = Some(v.clone());
                v
            }
        }
    }

    /// Appends the events of one message (see [`normalize_as`]) to `out`.
    pub fn normalize_into(
        &mut self,
        edition: Version,
        header: &Header,
        msg: &Message,
        ctx: &EventContext,
        out: &mut Vec<Event>,
    ) {
        let vid = self.vid(&header.phone);
        let proto = edition.protocol();
        let seq = Some(u32::from(header.serial));
        let ev = |time: Option<DateTime<Utc>>, data: Data| {
            Event::new(ctx, vid.clone(), proto, time, seq, data)
        };
        match msg {
            Message::Location(r)
            | Message::LocationAnswer { report: r, .. }
            | Message::VehicleControlAnswer { report: r, .. } => {
                out.push(location_event(r, header.version, ctx, &ev));
            }
            Message::LocationBatch { batch_type, items } => {
                out.extend(items.iter().map(|r| {
                    location_event(r, header.version, ctx, &ev).reissued(*batch_type == 1)
                }))
            }
            Message::Register(reg) => {
                let l = Lifecycle::new(LifecycleKind::Register)
                    .with("plate", reg.plate.clone())
                    .with("plate_color", reg.plate_color)
                    .with("manufacturer", reg.manufacturer.clone())
                    .with("model", reg.model.clone())
                    .with("terminal_id", reg.terminal_id.clone())
                    .with("province", reg.province)
                    .with("city", reg.city);
                out.push(ev(None, Data::Lifecycle(l)));
            }
            Message::Authenticate(a) => {
                let mut l = Lifecycle::new(LifecycleKind::Authenticate);
                if let Some(i) = &a.imei {
                    l = l.with("imei", i.clone());
                }
                if let Some(s) = &a.software_version {
                    l = l.with("software_version", s.clone());
                }
                out.push(ev(None, Data::Lifecycle(l)));
            }
            Message::Logout => out.push(ev(
                None,
                Data::Lifecycle(Lifecycle::new(LifecycleKind::Logout)),
            )),
            other => {
                let body = other.encode_body(header.version).unwrap_or_default();
                let p = json!({
                    "msg_id": format!("0x{:04x}", other.msg_id()),
                    "message": serde_json::to_value(other).unwrap_or(Value::Null),
                    "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
                });
                out.push(ev(None, Data::Passthrough(Passthrough(p))));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_names_are_the_bit_tables_in_bit_order() {
        for (b, name) in ALARMS.iter().chain(ALARMS_HIGH.iter()) {
            assert_eq!(ALARM_NAMES.get(*b as usize), Some(name), "bit {b}");
        }
    }

    #[test]
    fn signal_names_are_sorted_and_name_bits_0_to_14_once() {
        assert!(SIGNALS.windows(2).all(|w| matches!(w, [a, b] if a.1 < b.1)));
        let mut bits: Vec<u32> = SIGNALS.iter().map(|s| s.0).collect();
        bits.sort_unstable();
        assert_eq!(bits, (0..15).collect::<Vec<_>>());
    }

    #[test]
    fn each_signal_bit_sets_its_own_name_only() {
        for (bit_no, name) in SIGNALS {
            let mut loc = Location::default();
            let raw = (1u32 << bit_no).to_be_bytes();
            assert!(typed_item(&mut loc, 0x25, &raw, Version::V2013));
            let more = loc.more.to_map();
            let Some(Value::Object(m)) = more.get("vehicle_signals") else {
                panic!("no vehicle_signals");
            };
            assert_eq!(m.len(), 15);
            for (n, v) in m {
                assert_eq!(v, &Value::Bool(n.as_str() == name), "bit {bit_no}: {n}");
            }
        }
    }

    fn header_2013(msg_id: u16) -> Header {
        Header {
            msg_id,
            version: Version::V2013,
            protocol_version: 0,
            phone: "013800138000".into(),
            serial: 7,
            encryption: crate::Encryption::None,
            package: None,
        }
    }

    #[test]
    fn a_2011_registration_alone_is_labelled_2011_and_its_other_frames_2013() {
        // A 2011 terminal's frames carry a header 2013 shares: alone, only the 0x0100 tells.
        let ctx = EventContext::now("n");
        let reg = Message::Register(crate::msg::Register {
            province: 44,
            city: 300,
            manufacturer: "M".into(),
            model: "X".into(),
            terminal_id: "T1".into(),
            plate_color: 1,
            plate: "P".into(),
            layout: Version::V2011,
        });
        let protocols = |evs: Vec<Event>| evs.iter().map(|e| e.protocol).collect::<Vec<_>>();
        assert_eq!(
            protocols(normalize(&header_2013(0x0100), &reg, &ctx)),
            [codecs::Protocol::Jt808_2011]
        );
        assert_eq!(
            protocols(normalize(&header_2013(0x0003), &Message::Logout, &ctx)),
            [codecs::Protocol::Jt808_2013]
        );
    }

    #[test]
    fn a_session_s_edition_labels_every_event_of_the_message() {
        let ctx = EventContext::now("n");
        let report = LocationReport {
            alarm: 0,
            status: 0,
            latitude: 22_543_096,
            longitude: 114_057_865,
            altitude: 0,
            speed: 0,
            heading: 0,
            time: [0x24, 0x01, 0x01, 0x08, 0x00, 0x00],
            items: Default::default(),
            tail: Vec::new(),
        };
        let batch = Message::LocationBatch {
            batch_type: 1,
            items: vec![report.clone(), report],
        };
        for (id, msg) in [
            (0x0704, batch),
            (0x0003, Message::Logout),
            (0x0002, Message::Heartbeat { extra: Vec::new() }),
        ] {
            let evs = normalize_as(Version::V2011, &header_2013(id), &msg, &ctx);
            assert!(!evs.is_empty(), "0x{id:04x}");
            for e in evs {
                assert_eq!(e.protocol, codecs::Protocol::Jt808_2011, "0x{id:04x}");
                assert_eq!(e.msg_seq, Some(7));
            }
        }
    }
}
