//! The real-time report of the `realtime` bench and the `probe` driver: one 2016 body with
//! every 2016 info type, built from typical values.

use gbt32960::realtime::*;

/// A 2016 report with every info type: one motor, a fuel cell with 4 probes, one pack of
/// 96 cell voltages and 32 probe temperatures, a 16-byte custom unit.
pub fn report() -> Report {
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
