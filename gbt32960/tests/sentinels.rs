//! The sentinel rule (contract §3): every one-byte number or code field (subsystem, pack,
//! motor, stack, cell, probe and sensor numbers; state codes; alarm levels) holding 0xFE
//! (abnormal) or 0xFF (invalid), and every two-byte one holding 0xFFFE/0xFFFF, is `null` in
//! the normalized JSON, never 254/255. One case per field of both editions' tables, each
//! through the wire: report -> frame bytes -> parse -> decode -> normalize.
//!
//! (The fixtures `rtmcon-2016-02-*-invalid` and `rtmcon-2016-02-temperatures` check the same
//! on frames captured from other implementations.)
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use codecs::EventContext;
use gbt32960::realtime::{
    Alarm, Engine, Extremes, FuelCell, H2System, Motor, PackTemperatures, PackVoltages, Report,
    Signature, Stack, Supercap, SupercapExtremes, Unit, Vehicle,
};
use gbt32960::{normalize_message, Edition, Frame, Message};
use serde_json::Value;

fn vehicle() -> Vehicle {
    Vehicle {
        state: 1,
        charging: 3,
        mode: 1,
        speed: 100,
        odometer: 1000,
        total_voltage: 3600,
        total_current: 10000,
        soc: 80,
        dcdc: 1,
        gear: 0x0E,
        insulation: 5000,
        pedals: None,
    }
}

fn motor(ed: Edition) -> Motor {
    Motor {
        no: 1,
        state: 1,
        controller_temp: 60,
        rpm: 20000,
        torque: 20000,
        motor_temp: 60,
        input: (ed == Edition::V2016).then_some((3600, 10000)),
    }
}

fn alarm(ed: Edition) -> Alarm {
    Alarm {
        level: 1,
        flags: 1,
        ress_faults: Vec::new(),
        motor_faults: Vec::new(),
        engine_faults: Vec::new(),
        other_faults: Vec::new(),
        general: (ed == Edition::V2025).then(|| vec![(0, 1)]),
    }
}

fn voltages(ed: Edition) -> PackVoltages {
    PackVoltages {
        no: 1,
        voltage: 3600,
        current: 10000,
        split: (ed == Edition::V2016).then_some((2, 1)),
        cells: vec![3600, 3601],
    }
}

fn temperatures() -> PackTemperatures {
    PackTemperatures {
        no: 1,
        temps: vec![60, 61],
    }
}

fn extremes() -> Extremes {
    Extremes {
        max_v_subsystem: 1,
        max_v_cell: 2,
        max_cell_v: 3700,
        min_v_subsystem: 1,
        min_v_cell: 3,
        min_cell_v: 3500,
        max_t_subsystem: 1,
        max_t_probe: 4,
        max_t: 70,
        min_t_subsystem: 1,
        min_t_probe: 5,
        min_t: 60,
    }
}

fn fuel_cell() -> FuelCell {
    FuelCell {
        voltage: 3000,
        current: 1000,
        consumption: 100,
        probe_temps: vec![60],
        h2_max_temp: 800,
        h2_max_temp_probe: 1,
        h2_max_conc: 100,
        h2_max_conc_sensor: 2,
        h2_max_pressure: 300,
        h2_max_pressure_sensor: 3,
        dcdc: 1,
    }
}

fn h2() -> H2System {
    H2System {
        max_temp: 80,
        max_temp_probe: 1,
        max_conc: 100,
        max_conc_sensor: 2,
        max_pressure: 300,
        max_pressure_sensor: 3,
        dcdc: 1,
        remaining_pct: 50,
        dcdc_temp: 60,
    }
}

fn stack() -> Stack {
    Stack {
        no: 1,
        voltage: 2000,
        current: 300,
        h2_inlet_pressure: 1200,
        air_inlet_pressure: 1100,
        air_inlet_temp: 50,
        coolant_temps: vec![100],
    }
}

fn supercap() -> Supercap {
    Supercap {
        system: 1,
        voltage: 3000,
        current: 30000,
        cells: vec![2500],
        temps: vec![60],
    }
}

fn supercap_extremes() -> SupercapExtremes {
    SupercapExtremes {
        max_v: (1, 10, 2700),
        min_v: (2, 11, 2000),
        max_t: (3, 12, 120),
        min_t: (4, 13, 40),
    }
}

/// The telemetry `data` of a real-time report with `units`, through the wire.
fn telemetry(ed: Edition, units: Vec<Unit>, signature: Option<Signature>) -> Value {
    let report = Report {
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
        signature,
    };
    let wire = Message::Realtime(report)
        .to_frame(ed, "LSENTINEL00000001")
        .unwrap()
        .to_wire();
    let frame = Frame::parse(&wire).unwrap();
    let msg = Message::decode(&frame).unwrap();
    let evs = normalize_message(&frame, &msg, &EventContext::now("n"));
    serde_json::to_value(&evs[0]).unwrap()["data"].clone()
}

/// One field: its edition, a JSON pointer into `telemetry.data`, and the report with the
/// field set to a raw value.
struct Case {
    ed: Edition,
    pointer: &'static str,
    wide: bool,
    build: fn(Edition, u16) -> (Vec<Unit>, Option<Signature>),
}

fn u8of(v: u16) -> u8 {
    u8::try_from(v).unwrap()
}

fn units(u: Unit) -> (Vec<Unit>, Option<Signature>) {
    (vec![u], None)
}

macro_rules! case {
    ($ed:ident, $ptr:literal, |$e:ident, $v:ident| $body:expr) => {
        Case {
            ed: Edition::$ed,
            pointer: $ptr,
            wide: false,
            build: |$e, $v| units($body),
        }
    };
    (wide $ed:ident, $ptr:literal, |$e:ident, $v:ident| $body:expr) => {
        Case {
            ed: Edition::$ed,
            pointer: $ptr,
            wide: true,
            build: |$e, $v| units($body),
        }
    };
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for ed in [Edition::V2016, Edition::V2025] {
        let both: Vec<Case> = vec![
            case!(V2016, "/vehicle/state", |_e, v| Unit::Vehicle(Vehicle {
                state: u8of(v),
                ..vehicle()
            })),
            case!(V2016, "/vehicle/charging", |_e, v| Unit::Vehicle(Vehicle {
                charging: u8of(v),
                ..vehicle()
            })),
            case!(V2016, "/vehicle/mode", |_e, v| Unit::Vehicle(Vehicle {
                mode: u8of(v),
                ..vehicle()
            })),
            case!(V2016, "/vehicle/dcdc_on", |_e, v| Unit::Vehicle(Vehicle {
                dcdc: u8of(v),
                ..vehicle()
            })),
            case!(V2016, "/vehicle/gear", |_e, v| Unit::Vehicle(Vehicle {
                gear: u8of(v),
                ..vehicle()
            })),
            case!(V2016, "/motors/0/no", |e, v| Unit::Motors {
                motors: vec![Motor {
                    no: u8of(v),
                    ..motor(e)
                }]
            }),
            case!(V2016, "/motors/0/state", |e, v| Unit::Motors {
                motors: vec![Motor {
                    state: u8of(v),
                    ..motor(e)
                }]
            }),
            case!(V2016, "/alarm/level", |e, v| Unit::Alarm(Alarm {
                level: u8of(v),
                ..alarm(e)
            })),
            case!(V2016, "/battery_voltages/0/no", |e, v| Unit::Voltages {
                packs: vec![PackVoltages {
                    no: u8of(v),
                    ..voltages(e)
                }]
            }),
            case!(V2016, "/battery_temperatures/0/no", |_e, v| {
                Unit::Temperatures {
                    packs: vec![PackTemperatures {
                        no: u8of(v),
                        ..temperatures()
                    }],
                }
            }),
        ];
        out.extend(both.into_iter().map(|c| Case { ed, ..c }));
    }
    out.extend([
        // 2016 only: engine state (2025 sends the crank speed only), fuel cell 0x03,
        // extremes 0x06, split voltage fields.
        case!(V2016, "/engine/state", |_e, v| Unit::Engine(Engine {
                state: Some(u8of(v)),
                crank_rpm: 800,
                fuel_rate: Some(100)
        })),
        case!(V2016, "/fuel_cell/h2_max_temperature_probe", |_e, v| Unit::FuelCell(FuelCell { h2_max_temp_probe: u8of(v), ..fuel_cell() })),
        case!(V2016, "/fuel_cell/h2_max_concentration_sensor", |_e, v| Unit::FuelCell(FuelCell { h2_max_conc_sensor: u8of(v), ..fuel_cell() })),
        case!(V2016, "/fuel_cell/h2_max_pressure_sensor", |_e, v| Unit::FuelCell(FuelCell { h2_max_pressure_sensor: u8of(v), ..fuel_cell() })),
        case!(V2016, "/fuel_cell/dcdc", |_e, v| Unit::FuelCell(FuelCell { dcdc: u8of(v), ..fuel_cell() })),
        case!(V2016, "/extremes/max_cell_voltage_subsystem", |_e, v| Unit::Extremes(Extremes { max_v_subsystem: u8of(v), ..extremes() })),
        case!(V2016, "/extremes/max_cell_voltage_cell", |_e, v| Unit::Extremes(Extremes { max_v_cell: u8of(v), ..extremes() })),
        case!(V2016, "/extremes/min_cell_voltage_subsystem", |_e, v| Unit::Extremes(Extremes { min_v_subsystem: u8of(v), ..extremes() })),
        case!(V2016, "/extremes/min_cell_voltage_cell", |_e, v| Unit::Extremes(Extremes { min_v_cell: u8of(v), ..extremes() })),
        case!(V2016, "/extremes/max_temperature_subsystem", |_e, v| Unit::Extremes(Extremes { max_t_subsystem: u8of(v), ..extremes() })),
        case!(V2016, "/extremes/max_temperature_probe", |_e, v| Unit::Extremes(Extremes { max_t_probe: u8of(v), ..extremes() })),
        case!(V2016, "/extremes/min_temperature_subsystem", |_e, v| Unit::Extremes(Extremes { min_t_subsystem: u8of(v), ..extremes() })),
        case!(V2016, "/extremes/min_temperature_probe", |_e, v| Unit::Extremes(Extremes { min_t_probe: u8of(v), ..extremes() })),
        case!(wide V2016, "/battery_voltages/0/cell_count", |e, v| Unit::Voltages { packs: vec![PackVoltages { split: Some((v, 1)), ..voltages(e) }] }),
        case!(wide V2016, "/battery_voltages/0/first_cell", |e, v| Unit::Voltages { packs: vec![PackVoltages { split: Some((2, v)), ..voltages(e) }] }),
        // 2025 only: H2 system 0x03, stacks 0x30, super-capacitor 0x31/0x32, alarm pairs.
        case!(V2025, "/fuel_cell/h2_max_temperature_probe", |_e, v| Unit::H2System(H2System { max_temp_probe: u8of(v), ..h2() })),
        case!(V2025, "/fuel_cell/h2_max_concentration_sensor", |_e, v| Unit::H2System(H2System { max_conc_sensor: u8of(v), ..h2() })),
        case!(V2025, "/fuel_cell/h2_max_pressure_sensor", |_e, v| Unit::H2System(H2System { max_pressure_sensor: u8of(v), ..h2() })),
        case!(V2025, "/fuel_cell/dcdc", |_e, v| Unit::H2System(H2System { dcdc: u8of(v), ..h2() })),
        case!(V2025, "/fuel_cell_stacks/0/no", |_e, v| Unit::Stacks { stacks: vec![Stack { no: u8of(v), ..stack() }] }),
        case!(V2025, "/supercap/system", |_e, v| Unit::Supercap(Supercap { system: u8of(v), ..supercap() })),
        case!(V2025, "/supercap/extremes/max_cell_voltage_system", |_e, v| Unit::SupercapExtremes(SupercapExtremes { max_v: (u8of(v), 10, 2700), ..supercap_extremes() })),
        case!(V2025, "/supercap/extremes/min_cell_voltage_system", |_e, v| Unit::SupercapExtremes(SupercapExtremes { min_v: (u8of(v), 11, 2000), ..supercap_extremes() })),
        case!(V2025, "/supercap/extremes/max_temperature_system", |_e, v| Unit::SupercapExtremes(SupercapExtremes { max_t: (u8of(v), 12, 120), ..supercap_extremes() })),
        case!(V2025, "/supercap/extremes/min_temperature_system", |_e, v| Unit::SupercapExtremes(SupercapExtremes { min_t: (u8of(v), 13, 40), ..supercap_extremes() })),
        case!(wide V2025, "/supercap/extremes/max_cell_voltage_cell", |_e, v| Unit::SupercapExtremes(SupercapExtremes { max_v: (1, v, 2700), ..supercap_extremes() })),
        case!(wide V2025, "/supercap/extremes/min_cell_voltage_cell", |_e, v| Unit::SupercapExtremes(SupercapExtremes { min_v: (2, v, 2000), ..supercap_extremes() })),
        case!(wide V2025, "/supercap/extremes/max_temperature_probe", |_e, v| Unit::SupercapExtremes(SupercapExtremes { max_t: (3, v, 120), ..supercap_extremes() })),
        case!(wide V2025, "/supercap/extremes/min_temperature_probe", |_e, v| Unit::SupercapExtremes(SupercapExtremes { min_t: (4, v, 40), ..supercap_extremes() })),
        case!(V2025, "/alarm/general/0/bit", |e, v| Unit::Alarm(Alarm { general: Some(vec![(u8of(v), 1)]), ..alarm(e) })),
        case!(V2025, "/alarm/general/0/level", |e, v| Unit::Alarm(Alarm { general: Some(vec![(0, u8of(v))]), ..alarm(e) })),
        Case {
            ed: Edition::V2025,
            pointer: "/signature/kind",
            wide: false,
            build: |_e, v| {
                let sig = Signature { kind: u8of(v), r: vec![1], s: vec![2] };
                (Vec::new(), Some(sig))
            },
        },
    ]);
    out
}

#[test]
fn every_number_and_code_field_is_null_for_its_abnormal_and_invalid_values() {
    let mut failures = Vec::new();
    let cases = cases();
    for c in &cases {
        let (ok, sentinels) = if c.wide {
            (2u16, [0xFFFE, 0xFFFF])
        } else {
            (1u16, [0xFE, 0xFF])
        };
        let (units, sig) = (c.build)(c.ed, ok);
        let good = telemetry(c.ed, units, sig);
        match good.pointer(c.pointer) {
            Some(v) if !v.is_null() => {}
            other => failures.push(format!(
                "{:?} {}: valid value gave {other:?}",
                c.ed, c.pointer
            )),
        }
        for raw in sentinels {
            let (units, sig) = (c.build)(c.ed, raw);
            let data = telemetry(c.ed, units, sig);
            match data.pointer(c.pointer) {
                Some(Value::Null) => {}
                other => failures.push(format!(
                    "{:?} {} = 0x{raw:x}: want null, got {other:?}",
                    c.ed, c.pointer
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fields:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 50, "{} cases", cases.len());
}

#[test]
fn a_pack_split_over_frames_is_published_from_its_start_cell() {
    // Cells 201..=203 of a 203-cell pack: the second frame of a split list (2016 B.6).
    let part = |start: u16, cells: Vec<u16>| PackVoltages {
        no: 1,
        voltage: 3600,
        current: 10000,
        split: Some((203, start)),
        cells,
    };
    let data = telemetry(
        Edition::V2016,
        vec![Unit::Voltages {
            packs: vec![part(201, vec![3600, 3601, 3602])],
        }],
        None,
    );
    let p = &data["battery_voltages"][0];
    assert_eq!(p["first_cell"], 201);
    assert_eq!(p["cell_count"], 203);
    assert_eq!(p["cell_voltages_v"], serde_json::json!([3.6, 3.601, 3.602]));
    // Two parts in one frame: joined when the second continues the first, else apart.
    let data = telemetry(
        Edition::V2016,
        vec![Unit::Voltages {
            packs: vec![
                part(1, vec![3600; 2]),
                part(3, vec![3601]),
                part(201, vec![3602]),
            ],
        }],
        None,
    );
    let l = data["battery_voltages"].as_array().unwrap();
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0]["first_cell"], 1);
    assert_eq!(
        l[0]["cell_voltages_v"],
        serde_json::json!([3.6, 3.6, 3.601])
    );
    assert_eq!(l[1]["first_cell"], 201);
    assert_eq!(l[1]["cell_voltages_v"], serde_json::json!([3.602]));
    // 2025 has no split fields: every list starts at cell 1.
    let data = telemetry(
        Edition::V2025,
        vec![Unit::Voltages {
            packs: vec![voltages(Edition::V2025)],
        }],
        None,
    );
    assert_eq!(data["battery_voltages"][0]["first_cell"], 1);
    assert_eq!(data["battery_voltages"][0]["cell_count"], 2);
}
