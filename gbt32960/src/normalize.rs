//! GB/T 32960 messages to normalized events (contract §3).
//!
//! A real-time (0x02) or reissue (0x03) report becomes one `telemetry` event, plus a
//! `location` event when it has a position unit. Both editions fill the same field names;
//! every value is scaled into physical units and a sentinel (0xFE/0xFF, 0xFFFE/0xFFFF,
//! 0xFFFFFFFE/0xFFFFFFFF) becomes JSON null. Logins and logouts become `lifecycle` events,
//! everything else a `passthrough` with the protocol-level JSON ([`crate::raw_json`]).
//!
//! GB/T 32960 frames carry no serial number: real-time events have `msg_seq` null; logins
//! and logouts use their login sequence number. Times are Beijing time on the wire
//! (GB/T 32960.3 §6.4, configurable via `ctx.device_utc_offset_secs`); events carry UTC.

use std::sync::Arc;

use base64::Engine as _;
use codecs::event::{
    CoordSystem, Data, Event, EventContext, Flags, Lifecycle, LifecycleKind, Location, Passthrough,
    Telemetry,
};
use serde_json::{json, Map, Value};

use crate::msg::login::LoginBatteries;
use crate::realtime::{scaled_u16, scaled_u32, scaled_u8, Motor, Report, Unit, Vehicle};
use crate::{Edition, Frame, Message};

fn num(v: Option<f64>) -> Value {
    match v {
        Some(x) => json!((x * 1e6).round() / 1e6),
        None => Value::Null,
    }
}

fn code(raw: u8, names: &[(u8, &str)]) -> Value {
    if raw >= 0xFE {
        return Value::Null;
    }
    match names.iter().find(|(c, _)| *c == raw) {
        Some((_, n)) => json!(n),
        None => json!(format!("unknown_{raw}")),
    }
}

/// Gear as a string: `N`, `1`..`12`, `R`, `D`, `P` (bits 0-3, 2016 table 9 note / 2025).
fn gear(raw: u8, ed: Edition) -> Value {
    if raw >= 0xFE || (ed == Edition::V2025 && raw & 0x80 != 0) {
        return Value::Null;
    }
    let g = raw & 0x0F;
    json!(match g {
        0 => "N".to_string(),
        13 => "R".to_string(),
        14 => "D".to_string(),
        15 => "P".to_string(),
        n => n.to_string(),
    })
}

fn vehicle(v: &Vehicle, ed: Edition) -> Value {
    let (accel, brake) = match v.pedals {
        // 0x65 on the brake pedal = braking without a travel value (2016 table B.4).
        Some((a, b)) => (
            scaled_u8(a, 1.0, 0.0),
            if b == 0x65 {
                None
            } else {
                scaled_u8(b, 1.0, 0.0)
            },
        ),
        None => (None, None),
    };
    json!({
        "state": code(v.state, &[(1, "started"), (2, "stopped"), (3, "other")]),
        "charging": code(v.charging, &[(1, "parked_charging"), (2, "driving_charging"), (3, "not_charging"), (4, "charged")]),
        "mode": code(v.mode, &[(1, "ev"), (2, "hybrid"), (3, "fuel")]),
        "speed_kmh": num(scaled_u16(v.speed, 0.1, 0.0)),
        "odometer_km": num(scaled_u32(v.odometer, 0.1, 0.0)),
        "total_voltage_v": num(scaled_u16(v.total_voltage, 0.1, 0.0)),
        "total_current_a": num(scaled_u16(v.total_current, 0.1, Vehicle::current_offset(ed))),
        "soc_pct": num(scaled_u8(v.soc, 1.0, 0.0)),
        "dcdc_on": match v.dcdc { 1 => json!(true), 2 => json!(false), _ => Value::Null },
        "gear": gear(v.gear, ed),
        "braking_force": v.gear < 0xFE && v.gear & 0x10 != 0,
        "driving_force": v.gear < 0xFE && v.gear & 0x20 != 0,
        // 2016 insulation has no sentinel (protocol notes), 2025 has.
        "insulation_kohm": if ed == Edition::V2016 { json!(v.insulation) } else { num(scaled_u16(v.insulation, 1.0, 0.0)) },
        "accel_pedal_pct": num(accel),
        "brake_pedal_pct": num(brake),
        "braking": v.pedals.map(|(_, b)| b == 0x65),
    })
}

fn motor(m: &Motor, ed: Edition) -> Value {
    let torque = if ed == Edition::V2016 {
        scaled_u16(
            u16::try_from(m.torque).unwrap_or(u16::MAX),
            0.1,
            Motor::torque_offset(ed),
        )
    } else {
        scaled_u32(m.torque, 0.1, Motor::torque_offset(ed))
    };
    let mut o = json!({
        "no": m.no,
        "state": code(m.state, &[(1, "consuming"), (2, "generating"), (3, "off"), (4, "ready")]),
        "controller_temperature_c": num(scaled_u8(m.controller_temp, 1.0, -40.0)),
        "rpm": num(scaled_u16(m.rpm, 1.0, Motor::rpm_offset(ed))),
        "torque_nm": num(torque),
        "temperature_c": num(scaled_u8(m.motor_temp, 1.0, -40.0)),
    });
    if let (Some((v, i)), Some(map)) = (m.input, o.as_object_mut()) {
        map.insert("controller_voltage_v".into(), num(scaled_u16(v, 0.1, 0.0)));
        map.insert("dc_bus_current_a".into(), num(scaled_u16(i, 0.1, -1000.0)));
    }
    o
}

fn codes(l: &[u32]) -> Value {
    json!(l.iter().map(|c| format!("{c:08x}")).collect::<Vec<_>>())
}

/// The `telemetry` data of a report.
pub fn telemetry(report: &Report, edition: Edition) -> Telemetry {
    let ed = edition;
    let mut t = Telemetry::default();
    let mut custom = Vec::new();
    // 0x31 and 0x32 share the `supercap` group.
    let mut supercap = Map::new();
    for u in &report.units {
        match u {
            Unit::Vehicle(v) => t.vehicle = Some(vehicle(v, ed)),
            Unit::Motors { motors } => {
                t.motors = Some(json!(motors.iter().map(|m| motor(m, ed)).collect::<Vec<_>>()))
            }
            Unit::FuelCell(f) => {
                t.fuel_cell = Some(json!({
                    "voltage_v": num(scaled_u16(f.voltage, 0.1, 0.0)),
                    "current_a": num(scaled_u16(f.current, 0.1, 0.0)),
                    "h2_consumption_kg_per_100km": num(scaled_u16(f.consumption, 0.01, 0.0)),
                    "probe_temperatures_c": f.probe_temps.iter().map(|x| num(scaled_u8(*x, 1.0, -40.0))).collect::<Vec<_>>(),
                    "h2_max_temperature_c": num(scaled_u16(f.h2_max_temp, 0.1, -40.0)),
                    "h2_max_temperature_probe": f.h2_max_temp_probe,
                    "h2_max_concentration_mg_per_kg": num(scaled_u16(f.h2_max_conc, 1.0, 0.0)),
                    "h2_max_concentration_sensor": f.h2_max_conc_sensor,
                    "h2_max_pressure_mpa": num(scaled_u16(f.h2_max_pressure, 0.1, 0.0)),
                    "h2_max_pressure_sensor": f.h2_max_pressure_sensor,
                    "dcdc": code(f.dcdc, &[(1, "working"), (2, "off")]),
                }))
            }
            Unit::Engine(e) => {
                t.engine = Some(json!({
                    "state": e.state.map(|s| code(s, &[(1, "on"), (2, "off")])),
                    "crank_rpm": num(scaled_u16(e.crank_rpm, 1.0, 0.0)),
                    "fuel_l_per_100km": e.fuel_rate.map(|f| num(scaled_u16(f, 0.01, 0.0))),
                }))
            }
            Unit::Location(_) => {}
            Unit::Extremes(x) => {
                t.extremes = Some(json!({
                    "max_cell_voltage_v": num(scaled_u16(x.max_cell_v, 0.001, 0.0)),
                    "max_cell_voltage_subsystem": x.max_v_subsystem,
                    "max_cell_voltage_cell": x.max_v_cell,
                    "min_cell_voltage_v": num(scaled_u16(x.min_cell_v, 0.001, 0.0)),
                    "min_cell_voltage_subsystem": x.min_v_subsystem,
                    "min_cell_voltage_cell": x.min_v_cell,
                    "max_temperature_c": num(scaled_u8(x.max_t, 1.0, -40.0)),
                    "max_temperature_subsystem": x.max_t_subsystem,
                    "max_temperature_probe": x.max_t_probe,
                    "min_temperature_c": num(scaled_u8(x.min_t, 1.0, -40.0)),
                    "min_temperature_subsystem": x.min_t_subsystem,
                    "min_temperature_probe": x.min_t_probe,
                }))
            }
            Unit::Alarm(a) => {
                let mut o = json!({
                    "level": if a.level >= 0xFE { Value::Null } else { json!(a.level) },
                    "flags": a.flag_names(),
                    "ress_faults": codes(&a.ress_faults),
                    "motor_faults": codes(&a.motor_faults),
                    "engine_faults": codes(&a.engine_faults),
                    "other_faults": codes(&a.other_faults),
                });
                if let (Some(g), Some(map)) = (&a.general, o.as_object_mut()) {
                    map.insert(
                        "general".into(),
                        json!(g.iter().map(|(b, l)| json!({"bit": b, "level": l})).collect::<Vec<_>>()),
                    );
                }
                // A second alarm unit in one frame (seen in the wild, rtm_con "weird
                // message") is kept too, in `more.extra_alarms`, never dropped.
                if t.alarm.is_none() {
                    t.alarm = Some(o)
                } else if let Value::Array(l) = t
                    .more
                    .entry("extra_alarms")
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    l.push(o);
                }
            }
            Unit::Voltages { packs } => {
                let cur = Vehicle::current_offset(ed);
                // Join split lists: parts of one pack go to their start cell (2016 B.6).
                let mut out: Vec<Value> = Vec::new();
                for p in packs {
                    let start = p.split.map(|(_, s)| usize::from(s.max(1)) - 1).unwrap_or(0);
                    let cells: Vec<Value> = p.cells.iter().map(|c| num(scaled_u16(*c, 0.001, 0.0))).collect();
                    let existing = out.iter_mut().find(|o| o["no"] == json!(p.no));
                    match existing {
                        Some(o) => {
                            if let Some(Value::Array(list)) = o.get_mut("cell_voltages_v") {
                                if list.len() < start + cells.len() {
                                    list.resize(start + cells.len(), Value::Null);
                                }
                                for (i, c) in cells.into_iter().enumerate() {
                                    if let Some(slot) = list.get_mut(start + i) {
                                        *slot = c;
                                    }
                                }
                            }
                        }
                        None => {
                            let mut list = vec![Value::Null; start];
                            list.extend(cells);
                            out.push(json!({
                                "no": p.no,
                                "voltage_v": num(scaled_u16(p.voltage, 0.1, 0.0)),
                                "current_a": num(scaled_u16(p.current, 0.1, cur)),
                                "cell_count": p.split.map(|(n, _)| json!(n)).unwrap_or(json!(p.cells.len())),
                                "cell_voltages_v": list,
                            }));
                        }
                    }
                }
                t.battery_voltages = Some(json!(out));
            }
            Unit::Temperatures { packs } => {
                t.battery_temperatures = Some(json!(packs
                    .iter()
                    .map(|p| json!({
                        "no": p.no,
                        "probe_count": p.temps.len(),
                        "temperatures_c": p.temps.iter().map(|x| num(scaled_u8(*x, 1.0, -40.0))).collect::<Vec<_>>(),
                    }))
                    .collect::<Vec<_>>()))
            }
            Unit::H2System(h) => {
                t.fuel_cell = Some(json!({
                    "h2_max_temperature_c": num(scaled_u16(h.max_temp, 1.0, -40.0)),
                    "h2_max_temperature_probe": h.max_temp_probe,
                    "h2_max_concentration_pct": num(scaled_u16(h.max_conc, 0.0001, 0.0)),
                    "h2_max_concentration_sensor": h.max_conc_sensor,
                    "h2_max_pressure_mpa": num(scaled_u16(h.max_pressure, 0.1, 0.0)),
                    "h2_max_pressure_sensor": h.max_pressure_sensor,
                    "dcdc": code(h.dcdc, &[(1, "working"), (2, "off")]),
                    "h2_remaining_pct": num(scaled_u8(h.remaining_pct, 1.0, 0.0)),
                    "dcdc_temperature_c": num(scaled_u8(h.dcdc_temp, 1.0, -40.0)),
                }))
            }
            Unit::Stacks { stacks } => {
                t.fuel_cell_stacks = Some(json!(stacks
                    .iter()
                    .map(|s| json!({
                        "no": s.no,
                        "voltage_v": num(scaled_u16(s.voltage, 0.1, 0.0)),
                        "current_a": num(scaled_u16(s.current, 0.1, 0.0)),
                        "h2_inlet_pressure_kpa": num(scaled_u16(s.h2_inlet_pressure, 0.1, -100.0)),
                        "air_inlet_pressure_kpa": num(scaled_u16(s.air_inlet_pressure, 0.1, -100.0)),
                        "air_inlet_temperature_c": num(scaled_u8(s.air_inlet_temp, 1.0, -40.0)),
                        "coolant_outlet_temperatures_c": s.coolant_temps.iter().map(|x| num(scaled_u8(*x, 1.0, -40.0))).collect::<Vec<_>>(),
                    }))
                    .collect::<Vec<_>>()))
            }
            Unit::Supercap(s) => {
                let o = &mut supercap;
                o.insert("system".into(), json!(s.system));
                o.insert("voltage_v".into(), num(scaled_u16(s.voltage, 0.1, 0.0)));
                o.insert("current_a".into(), num(scaled_u16(s.current, 0.1, -3000.0)));
                o.insert("cell_voltages_v".into(), json!(s.cells.iter().map(|c| num(scaled_u16(*c, 0.001, 0.0))).collect::<Vec<_>>()));
                o.insert("temperatures_c".into(), json!(s.temps.iter().map(|x| num(scaled_u8(*x, 1.0, -40.0))).collect::<Vec<_>>()));
            }
            Unit::SupercapExtremes(x) => {
                let o = &mut supercap;
                o.insert("extremes".into(), json!({
                    "max_cell_voltage_v": num(scaled_u16(x.max_v.2, 0.001, 0.0)),
                    "max_cell_voltage_system": x.max_v.0,
                    "max_cell_voltage_cell": x.max_v.1,
                    "min_cell_voltage_v": num(scaled_u16(x.min_v.2, 0.001, 0.0)),
                    "min_cell_voltage_system": x.min_v.0,
                    "min_cell_voltage_cell": x.min_v.1,
                    "max_temperature_c": num(scaled_u8(x.max_t.2, 1.0, -40.0)),
                    "max_temperature_system": x.max_t.0,
                    "max_temperature_probe": x.max_t.1,
                    "min_temperature_c": num(scaled_u8(x.min_t.2, 1.0, -40.0)),
                    "min_temperature_system": x.min_t.0,
                    "min_temperature_probe": x.min_t.1,
                }));
            }
            Unit::Custom(c) => {
                custom.push(json!({"type": format!("0x{:02x}", c.type_id), "data": hex::encode(&c.data)}))
            }
        }
    }
    if !supercap.is_empty() {
        t.supercap = Some(Value::Object(supercap));
    }
    if !custom.is_empty() {
        t.custom = Some(json!(custom));
    }
    if let Some(s) = &report.signature {
        t.signature = Some(json!({"kind": s.kind, "r": hex::encode(&s.r), "s": hex::encode(&s.s)}));
    }
    if let Some(tail) = &report.tail {
        t.more.insert(
            "undecoded".into(),
            json!({"type": format!("0x{:02x}", tail.type_id), "truncated": tail.truncated, "data": hex::encode(&tail.bytes)}),
        );
    }
    t
}

/// The `location` data of a position unit; speed copied from the vehicle unit if any.
/// `None` when the unit's coordinates are sentinels (no position to publish).
fn location(report: &Report) -> Option<Location> {
    let p = report.location()?;
    let latitude = (p.latitude_deg()? * 1e6).round() / 1e6;
    let longitude = (p.longitude_deg()? * 1e6).round() / 1e6;
    let coord_system = match p.coord_system {
        None | Some(1) => CoordSystem::Wgs84,
        Some(2) => CoordSystem::Gcj02,
        Some(_) => CoordSystem::Other,
    };
    let speed = report
        .vehicle()
        .and_then(|v| scaled_u16(v.speed, 0.1, 0.0))
        .map(|x| (x * 10.0).round() / 10.0);
    Some(Location {
        latitude,
        longitude,
        coord_system,
        speed_kmh: speed,
        fix_valid: p.fix_valid(),
        status: Flags(vec![
            ("fix_valid", p.fix_valid()),
            ("south", p.status & 0x02 != 0),
            ("west", p.status & 0x04 != 0),
        ]),
        ..Default::default()
    })
}

/// One `telemetry` event for a real-time/reissue report, plus a `location` event when the
/// report has a position unit.
pub fn normalize(
    frame_vin: &str,
    edition: Edition,
    msg_seq: Option<u32>,
    report: &Report,
    reissue: bool,
    ctx: &EventContext,
) -> Vec<Event> {
    let vid: Arc<str> = Arc::from(frame_vin);
    let device_time = report.time.to_utc(ctx.device_utc_offset_secs).ok();
    let proto = edition.protocol();
    let mut out = vec![Event::new(
        ctx,
        vid.clone(),
        proto,
        device_time,
        msg_seq,
        Data::Telemetry(Box::new(telemetry(report, edition))),
    )
    .reissued(reissue)];
    if let Some(loc) = location(report) {
        out.push(
            Event::new(
                ctx,
                vid,
                proto,
                device_time,
                msg_seq,
                Data::Location(Box::new(loc)),
            )
            .reissued(reissue),
        );
    }
    out
}

/// The events of any GB/T 32960 message (see the module docs).
pub fn normalize_message(frame: &Frame, msg: &Message, ctx: &EventContext) -> Vec<Event> {
    let vid: Arc<str> = Arc::from(frame.vin.as_str());
    let proto = frame.edition.protocol();
    let off = ctx.device_utc_offset_secs;
    let life = |kind: LifecycleKind,
                time: &codecs::time::LocalTime,
                seq: u16,
                fields: Map<String, Value>| {
        let mut l = Lifecycle::new(kind);
        l.fields = fields;
        vec![Event::new(
            ctx,
            vid.clone(),
            proto,
            time.to_utc(off).ok(),
            Some(u32::from(seq)),
            Data::Lifecycle(l),
        )]
    };
    match msg {
        Message::Realtime(r) => normalize(&frame.vin, frame.edition, None, r, false, ctx),
        Message::Reissue(r) => normalize(&frame.vin, frame.edition, None, r, true, ctx),
        Message::VehicleLogin(l) => {
            let mut f = Map::new();
            f.insert("iccid".into(), json!(l.iccid));
            match &l.batteries {
                LoginBatteries::Ress2016 { ress_codes, .. } => {
                    f.insert("ress_codes".into(), json!(ress_codes));
                }
                LoginBatteries::Packs2025 { pack_codes } => {
                    f.insert("pack_codes".into(), json!(pack_codes));
                }
            }
            life(LifecycleKind::Login, &l.time, l.seq, f)
        }
        Message::VehicleLogout(l) => life(LifecycleKind::Logout, &l.time, l.seq, Map::new()),
        Message::PlatformLogin(l) => {
            // Never the password.
            let mut f = Map::new();
            f.insert("user".into(), json!(l.user));
            f.insert("encryption_rule".into(), json!(l.encryption_rule));
            life(LifecycleKind::PlatformLogin, &l.time, l.seq, f)
        }
        Message::PlatformLogout(l) => {
            life(LifecycleKind::PlatformLogout, &l.time, l.seq, Map::new())
        }
        other => {
            let mut raw = crate::raw_json(frame, other);
            if let Some(o) = raw.as_object_mut() {
                o.insert(
                    "body_base64".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(&frame.data)),
                );
            }
            vec![Event::new(
                ctx,
                vid,
                proto,
                None,
                None,
                Data::Passthrough(Passthrough(raw)),
            )]
        }
    }
}
