//! Real-time report throughput: one 2016 body carrying every 2016 info type (vehicle,
//! motors, fuel cell, engine, location, extremes, alarm, cell voltages, temperatures,
//! custom), decoded alone, normalized alone, and decoded + normalized + serialized to JSON
//! (each event appended to a reused buffer with `Event::write_json`, as the MQTT publisher
//! does; figures in docs/PERFORMANCE.md, "GB/T 32960").
//!
//! The body is built with `Report::encode` from typical values (a 96-cell pack with 32
//! probes), so it is realistic in size (373 bytes) and valid by construction.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gbt32960::realtime::*;
use gbt32960::{normalize, Edition};

fn report() -> Report {
    Report {
        time: codecs::time::LocalTime {
            year: 24,
            month: 5,
            day: 6,
            hour: 7,
            minute: 8,
            second: 9,
        },
        units: vec![
            Unit::Vehicle(Vehicle {
                state: 1,
                charging: 3,
                mode: 1,
                speed: 652,
                odometer: 123_456,
                total_voltage: 3_620,
                total_current: 10_150,
                soc: 77,
                dcdc: 1,
                gear: 0x2E,
                insulation: 5_000,
                pedals: Some((20, 0)),
            }),
            Unit::Motors {
                motors: vec![Motor {
                    no: 1,
                    state: 1,
                    controller_temp: 85,
                    rpm: 23_000,
                    torque: 21_000,
                    motor_temp: 90,
                    input: Some((3_600, 10_100)),
                }],
            },
            Unit::FuelCell(FuelCell {
                voltage: 3_000,
                current: 1_000,
                consumption: 120,
                probe_temps: vec![100; 4],
                h2_max_temp: 900,
                h2_max_temp_probe: 2,
                h2_max_conc: 30,
                h2_max_conc_sensor: 1,
                h2_max_pressure: 350,
                h2_max_pressure_sensor: 1,
                dcdc: 1,
            }),
            Unit::Engine(Engine {
                state: Some(2),
                crank_rpm: 0,
                fuel_rate: Some(0),
            }),
            Unit::Location(Position {
                status: 0,
                coord_system: None,
                longitude: 116_307_629,
                latitude: 39_984_095,
            }),
            Unit::Extremes(Extremes {
                max_v_subsystem: 1,
                max_v_cell: 12,
                max_cell_v: 3_801,
                min_v_subsystem: 1,
                min_v_cell: 40,
                min_cell_v: 3_760,
                max_t_subsystem: 1,
                max_t_probe: 3,
                max_t: 70,
                min_t_subsystem: 1,
                min_t_probe: 9,
                min_t: 64,
            }),
            Unit::Alarm(Alarm {
                level: 1,
                flags: 0x0000_0011,
                ress_faults: vec![0x0001_0003],
                motor_faults: vec![],
                engine_faults: vec![],
                other_faults: vec![0x000A_000B],
                general: None,
            }),
            Unit::Voltages {
                packs: vec![PackVoltages {
                    no: 1,
                    voltage: 3_620,
                    current: 10_150,
                    split: Some((96, 1)),
                    cells: (0..96).map(|i| 3_770 + i % 30).collect(),
                }],
            },
            Unit::Temperatures {
                packs: vec![PackTemperatures {
                    no: 1,
                    temps: (0..32).map(|i| 64 + i % 6).collect(),
                }],
            },
            Unit::Custom(Custom {
                type_id: 0x80,
                data: vec![0xAB; 16],
            }),
        ],
        tail: None,
        signature: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut body = Vec::new();
    report().encode(Edition::V2016, &mut body);
    let ctx = codecs::EventContext::now("bench");
    let mut g = c.benchmark_group(format!("realtime_2016_all_types_{}B", body.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| Report::decode(black_box(&body), Edition::V2016))
    });
    let r = Report::decode(&body, Edition::V2016).expect("bench body");
    g.bench_function("normalize", |b| {
        b.iter(|| {
            normalize(
                "LVBENCH0000000001",
                Edition::V2016,
                None,
                black_box(&r),
                false,
                &ctx,
            )
        })
    });
    // As the MQTT publisher does: each event appended to a reused buffer.
    let mut out = Vec::with_capacity(8192);
    g.bench_function("decode_normalize_json", |b| {
        b.iter(|| {
            let r = Report::decode(black_box(&body), Edition::V2016).expect("bench body");
            let evs = normalize("LVBENCH0000000001", Edition::V2016, None, &r, false, &ctx);
            let mut n = 0;
            for e in &evs {
                out.clear();
                e.write_json(&mut out);
                n += out.len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
