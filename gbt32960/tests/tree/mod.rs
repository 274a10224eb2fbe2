//! The telemetry groups as the normalizer built them before it wrote them straight from the
//! report (a tree of `Json` values per group, commit 1af28b5): kept as the oracle the
//! direct writer is compared with, byte for byte (`tests/realtime.rs`, proptest).
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::borrow::Cow;

use codecs::event::{FixedList, Json, Telemetry};
use gbt32960::realtime::alarm::FLAG_NAMES;
use gbt32960::realtime::{
    scaled_u16, scaled_u32, scaled_u8, Alarm, Motor, PackVoltages, Report, Supercap,
    SupercapExtremes, Unit, Vehicle,
};
use gbt32960::Edition;
use serde_json::{json, Value};

/// A physical value rounded to 1e-6 (null for a sentinel).
fn num(v: Option<f64>) -> Json {
    Json::num(round6(v))
}

fn round6(v: Option<f64>) -> Option<f64> {
    v.map(|x| (x * 1e6).round() / 1e6)
}

/// A physical value of a unit-scale field with an integer offset (temperatures, rpm, %):
/// already a whole number, so rounding to 1e-6 would change nothing and is skipped.
fn whole(v: Option<f64>) -> Json {
    Json::num(v)
}

fn code(raw: u8, names: &[(u8, &'static str)]) -> Json {
    if raw >= 0xFE {
        return Json::Null;
    }
    match names.iter().find(|(c, _)| *c == raw) {
        Some((_, n)) => Json::str(n),
        None => Json::Str(Cow::Owned(format!("unknown_{raw}"))),
    }
}

fn uint(n: impl Into<u64>) -> Json {
    Json::U64(n.into())
}

/// A one-byte number or code (subsystem, motor, cell, probe, sensor number...): `null`
/// for 0xFE abnormal / 0xFF invalid (contract §3: never 254 or 255).
fn id8(n: u8) -> Json {
    if n >= 0xFE {
        Json::Null
    } else {
        Json::U64(n.into())
    }
}

/// A two-byte number, code or count: `null` for 0xFFFE abnormal / 0xFFFF invalid.
fn id16(n: u16) -> Json {
    if n >= 0xFFFE {
        Json::Null
    } else {
        Json::U64(n.into())
    }
}

fn hex_str(b: &[u8]) -> Json {
    Json::Str(Cow::Owned(hex::encode(b)))
}

const GEARS: [&str; 16] = [
    "N", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "R", "D", "P",
];

/// Gear as a string: `N`, `1`..`12`, `R`, `D`, `P` (bits 0-3, 2016 table 9 note / 2025).
fn gear(raw: u8, ed: Edition) -> Json {
    if raw >= 0xFE || (ed == Edition::V2025 && raw & 0x80 != 0) {
        return Json::Null;
    }
    GEARS
        .get(usize::from(raw & 0x0F))
        .map_or(Json::Null, |g| Json::str(g))
}

/// Probe temperatures: BYTE, offset -40, 0xFE/0xFF null; written from the bytes (a
/// [`FixedList`] prints the same as the floats `scaled_u8(x, 1.0, -40.0)` would).
fn temps(l: &[u8]) -> Json {
    Json::Fixed(FixedList {
        raw: l.iter().map(|x| u16::from(*x)).collect(),
        decimals: 0,
        offset: -40,
        null_from: 0xFE,
    })
}

/// Cell voltages: WORD in mV, 0xFFFE/0xFFFF null; written from the words (the same bytes
/// as the floats `round6(scaled_u16(c, 0.001, 0.0))`).
fn millivolts(cells: Vec<u16>) -> Json {
    Json::Fixed(FixedList {
        raw: cells,
        decimals: 3,
        offset: 0,
        null_from: 0xFFFE,
    })
}

fn vehicle(v: &Vehicle, ed: Edition) -> Json {
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
    // Keys in ascending order (see `Json::object`).
    Json::object(vec![
        ("accel_pedal_pct", num(accel)),
        ("brake_pedal_pct", num(brake)),
        (
            "braking",
            v.pedals.map_or(Json::Null, |(_, b)| Json::Bool(b == 0x65)),
        ),
        (
            "braking_force",
            Json::Bool(v.gear < 0xFE && v.gear & 0x10 != 0),
        ),
        (
            "charging",
            code(
                v.charging,
                &[
                    (1, "parked_charging"),
                    (2, "driving_charging"),
                    (3, "not_charging"),
                    (4, "charged"),
                ],
            ),
        ),
        (
            "dcdc_on",
            match v.dcdc {
                1 => Json::Bool(true),
                2 => Json::Bool(false),
                _ => Json::Null,
            },
        ),
        (
            "driving_force",
            Json::Bool(v.gear < 0xFE && v.gear & 0x20 != 0),
        ),
        ("gear", gear(v.gear, ed)),
        // 2016 insulation has no sentinel (protocol notes), 2025 has.
        (
            "insulation_kohm",
            if ed == Edition::V2016 {
                uint(v.insulation)
            } else {
                whole(scaled_u16(v.insulation, 1.0, 0.0))
            },
        ),
        (
            "mode",
            code(v.mode, &[(1, "ev"), (2, "hybrid"), (3, "fuel")]),
        ),
        ("odometer_km", num(scaled_u32(v.odometer, 0.1, 0.0))),
        ("soc_pct", whole(scaled_u8(v.soc, 1.0, 0.0))),
        ("speed_kmh", num(scaled_u16(v.speed, 0.1, 0.0))),
        (
            "state",
            code(v.state, &[(1, "started"), (2, "stopped"), (3, "other")]),
        ),
        (
            "total_current_a",
            num(scaled_u16(
                v.total_current,
                0.1,
                Vehicle::current_offset(ed),
            )),
        ),
        (
            "total_voltage_v",
            num(scaled_u16(v.total_voltage, 0.1, 0.0)),
        ),
    ])
}

fn motor(m: &Motor, ed: Edition) -> Json {
    let torque = if ed == Edition::V2016 {
        scaled_u16(
            u16::try_from(m.torque).unwrap_or(u16::MAX),
            0.1,
            Motor::torque_offset(ed),
        )
    } else {
        scaled_u32(m.torque, 0.1, Motor::torque_offset(ed))
    };
    let mut o = Vec::with_capacity(8);
    o.push((
        "controller_temperature_c",
        whole(scaled_u8(m.controller_temp, 1.0, -40.0)),
    ));
    if let Some((v, i)) = m.input {
        o.push(("controller_voltage_v", num(scaled_u16(v, 0.1, 0.0))));
        o.push(("dc_bus_current_a", num(scaled_u16(i, 0.1, -1000.0))));
    }
    o.push(("no", id8(m.no)));
    o.push(("rpm", whole(scaled_u16(m.rpm, 1.0, Motor::rpm_offset(ed)))));
    o.push((
        "state",
        code(
            m.state,
            &[
                (1, "consuming"),
                (2, "generating"),
                (3, "off"),
                (4, "ready"),
            ],
        ),
    ));
    o.push(("temperature_c", whole(scaled_u8(m.motor_temp, 1.0, -40.0))));
    o.push(("torque_nm", num(torque)));
    Json::object(o)
}

fn codes(l: &[u32]) -> Json {
    Json::List(
        l.iter()
            .map(|c| Json::Str(Cow::Owned(format!("{c:08x}"))))
            .collect(),
    )
}

fn flag_names(a: &Alarm) -> Json {
    Json::List(
        (0..32u32)
            .filter(|b| a.flags & (1 << b) != 0)
            .map(|b| match FLAG_NAMES.get(b as usize) {
                Some(n) => Json::str(n),
                None => Json::Str(Cow::Owned(format!("bit{b}"))),
            })
            .collect(),
    )
}

fn alarm(a: &Alarm) -> Json {
    let mut o = Vec::with_capacity(7);
    o.push(("engine_faults", codes(&a.engine_faults)));
    o.push(("flags", flag_names(a)));
    if let Some(g) = &a.general {
        o.push((
            "general",
            Json::List(
                g.iter()
                    .map(|(b, l)| Json::object(vec![("bit", id8(*b)), ("level", id8(*l))]))
                    .collect(),
            ),
        ));
    }
    o.push(("level", id8(a.level)));
    o.push(("motor_faults", codes(&a.motor_faults)));
    o.push(("other_faults", codes(&a.other_faults)));
    o.push(("ress_faults", codes(&a.ress_faults)));
    Json::object(o)
}

/// One entry of `battery_voltages`: a pack's cells from `first_cell` on.
struct PackOut {
    no: u8,
    voltage: u16,
    current: u16,
    /// The pack's total cell count (2016 WORD; 2025 the cells sent).
    cell_count: Option<u16>,
    /// 1-based number of the first cell of `cells`; `None` for a 0xFFFE/0xFFFF start.
    first_cell: Option<u16>,
    /// Raw cell voltages (mV).
    cells: Vec<u16>,
}

/// `battery_voltages`: one entry per pack part, each with `first_cell`, the 1-based number
/// of its first cell. A pack of more than 200 cells comes in several frames (2016 table
/// B.6: total count, start cell of this frame, cells in this frame); each frame's part is
/// published as it comes, from its start cell (`first_cell: 201`, not 200 leading nulls).
/// Parts of one pack in one frame are put in start-cell order and joined where one continues
/// the other; a part that does not continue the one before it is an entry of its own. A
/// 0xFFFE/0xFFFF start cell is `first_cell: null`. 2025 has no split fields: every list
/// starts at cell 1.
fn voltages(packs: &[PackVoltages], ed: Edition) -> Json {
    let cur = Vehicle::current_offset(ed);
    let mut parts: Vec<PackOut> = packs
        .iter()
        .map(|p| {
            let (cell_count, first_cell) = match p.split {
                Some((total, start)) => (
                    (total < 0xFFFE).then_some(total),
                    (start < 0xFFFE).then_some(start.max(1)),
                ),
                None => (u16::try_from(p.cells.len()).ok(), Some(1)),
            };
            PackOut {
                no: p.no,
                voltage: p.voltage,
                current: p.current,
                cell_count,
                first_cell,
                cells: p.cells.clone(),
            }
        })
        .collect();
    // The parts of a pack together (packs in the order they first appear), by start cell.
    let first_seen = |no: u8| packs.iter().position(|p| p.no == no).unwrap_or(usize::MAX);
    parts.sort_by_key(|p| (first_seen(p.no), p.first_cell.unwrap_or(u16::MAX)));
    let mut out: Vec<PackOut> = Vec::with_capacity(parts.len());
    for p in parts {
        let continues = |o: &PackOut| {
            o.no == p.no
                && matches!((o.first_cell, p.first_cell), (Some(a), Some(b))
                    if usize::from(a) + o.cells.len() == usize::from(b))
        };
        match out.last_mut().filter(|o| continues(o)) {
            Some(o) => o.cells.extend(p.cells),
            None => out.push(p),
        }
    }
    Json::List(
        out.into_iter()
            .map(|p| {
                Json::object(vec![
                    ("cell_count", p.cell_count.map_or(Json::Null, id16)),
                    ("cell_voltages_v", millivolts(p.cells)),
                    ("current_a", num(scaled_u16(p.current, 0.1, cur))),
                    ("first_cell", p.first_cell.map_or(Json::Null, id16)),
                    ("no", id8(p.no)),
                    ("voltage_v", num(scaled_u16(p.voltage, 0.1, 0.0))),
                ])
            })
            .collect(),
    )
}

fn supercap(s: Option<&Supercap>, x: Option<&SupercapExtremes>) -> Json {
    let mut o = Vec::with_capacity(6);
    if let Some(s) = s {
        o.push(("cell_voltages_v", millivolts(s.cells.clone())));
        o.push(("current_a", num(scaled_u16(s.current, 0.1, -3000.0))));
    }
    if let Some(x) = x {
        o.push((
            "extremes",
            Json::object(vec![
                ("max_cell_voltage_cell", id16(x.max_v.1)),
                ("max_cell_voltage_system", id8(x.max_v.0)),
                ("max_cell_voltage_v", num(scaled_u16(x.max_v.2, 0.001, 0.0))),
                ("max_temperature_c", whole(scaled_u8(x.max_t.2, 1.0, -40.0))),
                ("max_temperature_probe", id16(x.max_t.1)),
                ("max_temperature_system", id8(x.max_t.0)),
                ("min_cell_voltage_cell", id16(x.min_v.1)),
                ("min_cell_voltage_system", id8(x.min_v.0)),
                ("min_cell_voltage_v", num(scaled_u16(x.min_v.2, 0.001, 0.0))),
                ("min_temperature_c", whole(scaled_u8(x.min_t.2, 1.0, -40.0))),
                ("min_temperature_probe", id16(x.min_t.1)),
                ("min_temperature_system", id8(x.min_t.0)),
            ]),
        ));
    }
    if let Some(s) = s {
        o.push(("system", id8(s.system)));
        o.push(("temperatures_c", temps(&s.temps)));
        o.push(("voltage_v", num(scaled_u16(s.voltage, 0.1, 0.0))));
    }
    Json::object(o)
}

/// The `telemetry` data of a report.
///
/// Every group is a [`Json`] built with its keys in ascending order, so it serializes to
/// the bytes a `serde_json::Value` of the same content gives, without the cost of one.
pub fn telemetry(report: &Report, edition: Edition) -> Telemetry {
    let ed = edition;
    let mut t = Telemetry::default();
    let mut custom = Vec::new();
    // 0x31 and 0x32 share the `supercap` group (the last unit of each type wins).
    let mut cap: Option<&Supercap> = None;
    let mut cap_x: Option<&SupercapExtremes> = None;
    for u in &report.units {
        match u {
            Unit::Vehicle(v) => t.vehicle = Some(vehicle(v, ed)),
            Unit::Motors { motors } => {
                t.motors = Some(Json::List(motors.iter().map(|m| motor(m, ed)).collect()))
            }
            Unit::FuelCell(f) => {
                t.fuel_cell = Some(Json::object(vec![
                    ("current_a", num(scaled_u16(f.current, 0.1, 0.0))),
                    ("dcdc", code(f.dcdc, &[(1, "working"), (2, "off")])),
                    (
                        "h2_consumption_kg_per_100km",
                        num(scaled_u16(f.consumption, 0.01, 0.0)),
                    ),
                    (
                        "h2_max_concentration_mg_per_kg",
                        whole(scaled_u16(f.h2_max_conc, 1.0, 0.0)),
                    ),
                    ("h2_max_concentration_sensor", id8(f.h2_max_conc_sensor)),
                    (
                        "h2_max_pressure_mpa",
                        num(scaled_u16(f.h2_max_pressure, 0.1, 0.0)),
                    ),
                    ("h2_max_pressure_sensor", id8(f.h2_max_pressure_sensor)),
                    (
                        "h2_max_temperature_c",
                        num(scaled_u16(f.h2_max_temp, 0.1, -40.0)),
                    ),
                    ("h2_max_temperature_probe", id8(f.h2_max_temp_probe)),
                    ("probe_temperatures_c", temps(&f.probe_temps)),
                    ("voltage_v", num(scaled_u16(f.voltage, 0.1, 0.0))),
                ]))
            }
            Unit::Engine(e) => {
                t.engine = Some(Json::object(vec![
                    ("crank_rpm", whole(scaled_u16(e.crank_rpm, 1.0, 0.0))),
                    (
                        "fuel_l_per_100km",
                        e.fuel_rate
                            .map_or(Json::Null, |f| num(scaled_u16(f, 0.01, 0.0))),
                    ),
                    (
                        "state",
                        e.state
                            .map_or(Json::Null, |s| code(s, &[(1, "on"), (2, "off")])),
                    ),
                ]))
            }
            Unit::Location(_) => {}
            Unit::Extremes(x) => {
                t.extremes = Some(Json::object(vec![
                    ("max_cell_voltage_cell", id8(x.max_v_cell)),
                    ("max_cell_voltage_subsystem", id8(x.max_v_subsystem)),
                    (
                        "max_cell_voltage_v",
                        num(scaled_u16(x.max_cell_v, 0.001, 0.0)),
                    ),
                    ("max_temperature_c", whole(scaled_u8(x.max_t, 1.0, -40.0))),
                    ("max_temperature_probe", id8(x.max_t_probe)),
                    ("max_temperature_subsystem", id8(x.max_t_subsystem)),
                    ("min_cell_voltage_cell", id8(x.min_v_cell)),
                    ("min_cell_voltage_subsystem", id8(x.min_v_subsystem)),
                    (
                        "min_cell_voltage_v",
                        num(scaled_u16(x.min_cell_v, 0.001, 0.0)),
                    ),
                    ("min_temperature_c", whole(scaled_u8(x.min_t, 1.0, -40.0))),
                    ("min_temperature_probe", id8(x.min_t_probe)),
                    ("min_temperature_subsystem", id8(x.min_t_subsystem)),
                ]))
            }
            Unit::Alarm(a) => {
                let o = alarm(a);
                // A second alarm unit in one frame (seen in the wild, rtm_con "weird
                // message") is kept too, in `more.extra_alarms`, never dropped.
                if t.alarm.is_none() {
                    t.alarm = Some(o)
                } else if let Value::Array(l) = t
                    .more
                    .entry("extra_alarms")
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    l.push(o.to_value());
                }
            }
            Unit::Voltages { packs } => t.battery_voltages = Some(voltages(packs, ed)),
            Unit::Temperatures { packs } => {
                t.battery_temperatures = Some(Json::List(
                    packs
                        .iter()
                        .map(|p| {
                            Json::object(vec![
                                ("no", id8(p.no)),
                                ("probe_count", Json::U64(p.temps.len() as u64)),
                                ("temperatures_c", temps(&p.temps)),
                            ])
                        })
                        .collect(),
                ))
            }
            Unit::H2System(h) => {
                t.fuel_cell = Some(Json::object(vec![
                    ("dcdc", code(h.dcdc, &[(1, "working"), (2, "off")])),
                    (
                        "dcdc_temperature_c",
                        whole(scaled_u8(h.dcdc_temp, 1.0, -40.0)),
                    ),
                    (
                        "h2_max_concentration_pct",
                        num(scaled_u16(h.max_conc, 0.0001, 0.0)),
                    ),
                    ("h2_max_concentration_sensor", id8(h.max_conc_sensor)),
                    (
                        "h2_max_pressure_mpa",
                        num(scaled_u16(h.max_pressure, 0.1, 0.0)),
                    ),
                    ("h2_max_pressure_sensor", id8(h.max_pressure_sensor)),
                    (
                        "h2_max_temperature_c",
                        whole(scaled_u16(h.max_temp, 1.0, -40.0)),
                    ),
                    ("h2_max_temperature_probe", id8(h.max_temp_probe)),
                    (
                        "h2_remaining_pct",
                        whole(scaled_u8(h.remaining_pct, 1.0, 0.0)),
                    ),
                ]))
            }
            Unit::Stacks { stacks } => {
                t.fuel_cell_stacks = Some(Json::List(
                    stacks
                        .iter()
                        .map(|s| {
                            Json::object(vec![
                                (
                                    "air_inlet_pressure_kpa",
                                    num(scaled_u16(s.air_inlet_pressure, 0.1, -100.0)),
                                ),
                                (
                                    "air_inlet_temperature_c",
                                    whole(scaled_u8(s.air_inlet_temp, 1.0, -40.0)),
                                ),
                                ("coolant_outlet_temperatures_c", temps(&s.coolant_temps)),
                                ("current_a", num(scaled_u16(s.current, 0.1, 0.0))),
                                (
                                    "h2_inlet_pressure_kpa",
                                    num(scaled_u16(s.h2_inlet_pressure, 0.1, -100.0)),
                                ),
                                ("no", id8(s.no)),
                                ("voltage_v", num(scaled_u16(s.voltage, 0.1, 0.0))),
                            ])
                        })
                        .collect(),
                ))
            }
            Unit::Supercap(s) => cap = Some(s),
            Unit::SupercapExtremes(x) => cap_x = Some(x),
            Unit::Custom(c) => custom.push(Json::object(vec![
                ("data", hex_str(&c.data)),
                (
                    "type",
                    Json::Str(Cow::Owned(format!("0x{:02x}", c.type_id))),
                ),
            ])),
        }
    }
    if cap.is_some() || cap_x.is_some() {
        t.supercap = Some(supercap(cap, cap_x));
    }
    if !custom.is_empty() {
        t.custom = Some(Json::List(custom));
    }
    if let Some(s) = &report.signature {
        t.signature = Some(Json::object(vec![
            ("kind", id8(s.kind)),
            ("r", hex_str(&s.r)),
            ("s", hex_str(&s.s)),
        ]));
    }
    if let Some(tail) = &report.tail {
        t.more.insert(
            "undecoded".into(),
            json!({"type": format!("0x{:02x}", tail.type_id), "truncated": tail.truncated, "data": hex::encode(&tail.bytes)}),
        );
    }
    t
}
