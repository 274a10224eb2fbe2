//! Real-time info units: physical values of real frames, sentinels, signs, split cell
//! lists, custom lengths, reserved types, truncation, the 2025 signature, and proptest
//! round trips of every unit of both editions.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use codecs::{Data, EventContext};
use gbt32960::realtime::*;
use gbt32960::{normalize, Edition, Frame, Message};
use proptest::prelude::*;
use serde_json::Value;

mod tree;

fn body(hex_frame: &str) -> (Frame, Report) {
    let f = Frame::parse(&hex::decode(hex_frame).unwrap()).unwrap();
    let r = Report::decode(&f.data, f.edition).unwrap();
    (f, r)
}

fn telemetry_json(hex_frame: &str) -> (Vec<Value>, Report) {
    let (f, r) = body(hex_frame);
    let ctx = EventContext::now("t");
    let evs = normalize(&f.vin, f.edition, None, &r, false, &ctx);
    let js = evs
        .iter()
        .map(|e| serde_json::to_value(&e.data).unwrap())
        .collect();
    (js, r)
}

fn close(v: &Value, x: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((got - x).abs() < 1e-6, "{got} != {x}");
}

// Source: emqx/emqx apps/emqx_gateway_gbt32960/test/emqx_gbt32960_parser_SUITE.erl
// case03_realtime_report_0x02 (two drive motors, raw values asserted there).
const MOTORS_2016: &str = "232302FE314731424C353250375452313135353230010020100101023B00020201017D753061A87D753C79E302017D75F862D4917D0075F8A2";

#[test]
fn drive_motors_of_a_2016_frame_are_scaled_into_physical_units() {
    let (js, r) = telemetry_json(MOTORS_2016);
    assert!(r.tail.is_none());
    let m = &js[0]["motors"][0];
    assert_eq!(m["no"], 1);
    assert_eq!(m["state"], "consuming");
    close(&m["controller_temperature_c"], 85.0);
    close(&m["rpm"], 10000.0);
    close(&m["torque_nm"], 500.0);
    close(&m["temperature_c"], 85.0);
    close(&m["controller_voltage_v"], 3001.2);
    close(&m["dc_bus_current_a"], 2120.3);
    assert_eq!(js[0]["motors"].as_array().unwrap().len(), 2);
}

// Source: beidouchangxi/rtm_con tests/rtm_con/message_and_data_samples.py
// "data2016 with only gnss data": status 0x07, longitude and latitude 0xFFFFFFFF.
const GNSS_INVALID_2016: &str =
    "232302FE484155563442474E365335303032323139010010190A1B1402020507FFFFFFFFFFFFFFFFDE";

#[test]
fn a_location_with_invalid_coordinates_publishes_no_location_event() {
    let (js, r) = telemetry_json(GNSS_INVALID_2016);
    let p = r.location().unwrap();
    assert!(!p.fix_valid());
    assert_eq!(p.latitude_deg(), None);
    assert_eq!(js.len(), 1);
}

#[test]
fn south_and_west_coordinates_are_negative() {
    let p = Position {
        status: 0x06,
        coord_system: None,
        longitude: 116_307_629,
        latitude: 39_984_095,
    };
    assert_eq!(p.latitude_deg(), Some(-39.984095));
    assert_eq!(p.longitude_deg(), Some(-116.307629));
    assert!(p.fix_valid());
    let r = Report {
        time: codecs::time::LocalTime {
            year: 24,
            month: 1,
            day: 2,
            hour: 8,
            minute: 0,
            second: 0,
        },
        units: vec![Unit::Location(p)],
        tail: None,
        signature: None,
    };
    let evs = normalize(
        "V",
        Edition::V2016,
        None,
        &r,
        false,
        &EventContext::now("t"),
    );
    let Data::Location(l) = &evs[1].data else {
        panic!("second event is not a location")
    };
    assert_eq!(l.latitude, -39.984095);
    assert_eq!(l.longitude, -116.307629);
    // Beijing 08:00 is 00:00 UTC.
    assert_eq!(
        evs[0].device_time.unwrap().to_rfc3339(),
        "2024-01-02T00:00:00+00:00"
    );
}

// Source: rtm_con "data2016 with only probe temps data": subsystem 0xFF with 0 probes,
// subsystem 5 with five 0xFF temperatures.
const TEMPS_INVALID_2016: &str =
    "232302FE484155563442474E365335303032323139010013190A1B1402020902FF0000050005FFFFFFFFFFD4";

#[test]
fn invalid_temperatures_become_null() {
    let (js, _) = telemetry_json(TEMPS_INVALID_2016);
    let t = &js[0]["battery_temperatures"];
    assert_eq!(t[0]["probe_count"], 0);
    assert_eq!(t[1]["no"], 5);
    assert_eq!(t[1]["temperatures_c"].as_array().unwrap().len(), 5);
    assert!(t[1]["temperatures_c"][0].is_null());
}

// Source: emqx parser suite case10_realtime_report_0x09 (raw 0,..,19,136 and 100).
const TEMPS_2016: &str = "232302FE314731424C353250375452313135353230010019100A01163B00090201000A000000000000000013880200016403";

#[test]
fn temperatures_are_offset_by_minus_40() {
    let (js, _) = telemetry_json(TEMPS_2016);
    let t = &js[0]["battery_temperatures"];
    close(&t[0]["temperatures_c"][0], -40.0);
    close(&t[0]["temperatures_c"][8], -21.0);
    close(&t[0]["temperatures_c"][9], 96.0);
    close(&t[1]["temperatures_c"][0], 60.0);
}

// Source: rtm_con "data2016 with only probe oem data": type 0x80, WORD length 16.
const CUSTOM_2016: &str = "232302FE484155563442474E365335303032323139010019190A1B140202800010FEFEFEFEFEFEFEFEFEFEFEFEFEFEFEFE45";

#[test]
fn a_custom_unit_honours_its_word_length() {
    let (js, r) = telemetry_json(CUSTOM_2016);
    assert!(r.tail.is_none());
    assert_eq!(js[0]["custom"][0]["type"], "0x80");
    assert_eq!(js[0]["custom"][0]["data"], "fe".repeat(16));
}

// Source: emqx parser suite case_2025_report_super_capacitor_extreme (type 0x32; raw
// values asserted there: 7500, 2000 mV; 120, 40 raw temperatures).
const SUPERCAP_EXTREMES_2025: &str = "242402FE56494E3132333435363738393031323334010019190B0D0F1E003201000A1D4C02000B07D003000C7804000D285E";

#[test]
fn supercap_extremes_of_a_2025_frame_are_scaled() {
    let (js, r) = telemetry_json(SUPERCAP_EXTREMES_2025);
    assert!(r.tail.is_none());
    let x = &js[0]["supercap"]["extremes"];
    close(&x["max_cell_voltage_v"], 7.5);
    assert_eq!(x["max_cell_voltage_cell"], 10);
    close(&x["min_cell_voltage_v"], 2.0);
    close(&x["max_temperature_c"], 80.0);
    assert_eq!(x["max_temperature_probe"], 12);
    close(&x["min_temperature_c"], 0.0);
}

// Source: emqx parser suite case_2025_report_fuel_cell_stack (type 0x30).
const STACKS_2025: &str = "242402FE56494E313233343536373839303132333401001E190B0D0F1E0030010107D0012C04B0044C32000A6465666768696A6B6C6DB6";

#[test]
fn fuel_cell_stacks_of_a_2025_frame_are_scaled() {
    let (js, r) = telemetry_json(STACKS_2025);
    assert!(r.tail.is_none());
    let st = &js[0]["fuel_cell_stacks"][0];
    close(&st["voltage_v"], 200.0);
    close(&st["current_a"], 30.0);
    close(&st["h2_inlet_pressure_kpa"], 20.0);
    close(&st["air_inlet_pressure_kpa"], 10.0);
    close(&st["air_inlet_temperature_c"], 10.0);
    close(&st["coolant_outlet_temperatures_c"][0], 60.0);
    close(&st["coolant_outlet_temperatures_c"][9], 69.0);
}

#[test]
fn a_reserved_2025_type_stops_the_walk_and_keeps_the_tail() {
    let (f, _) = body(STACKS_2025);
    let mut data = f.data.to_vec();
    // 0x33-0x7F are reserved in 2025 (table 9).
    data.extend_from_slice(&[0x33, 9, 9]);
    let r = Report::decode(&data, Edition::V2025).unwrap();
    assert_eq!(r.units.len(), 1);
    let tail = r.tail.as_ref().unwrap();
    assert_eq!(tail.type_id, 0x33);
    assert!(!tail.truncated);
    let mut out = Vec::new();
    r.encode(Edition::V2025, &mut out);
    assert_eq!(out, data);
}

#[test]
fn a_reserved_type_after_a_decoded_unit_keeps_both() {
    let (f, _) = body(MOTORS_2016);
    let mut data = f.data.to_vec();
    data.extend_from_slice(&[0x30, 1, 2, 3]);
    let r = Report::decode(&data, Edition::V2016).unwrap();
    assert_eq!(r.units.len(), 1);
    assert_eq!(r.tail.as_ref().unwrap().bytes, vec![0x30, 1, 2, 3]);
}

#[test]
fn a_truncated_unit_keeps_what_decoded_before_it_and_is_flagged() {
    let (f, _) = body(MOTORS_2016);
    let mut data = f.data.to_vec();
    data.extend_from_slice(&[0x05, 0x00, 0x01]);
    let r = Report::decode(&data, Edition::V2016).unwrap();
    assert_eq!(r.units.len(), 1);
    let tail = r.tail.unwrap();
    assert!(tail.truncated);
    assert_eq!(tail.type_id, 0x05);
}

#[test]
fn a_body_without_a_full_time_is_an_error() {
    assert!(Report::decode(&[0x19, 0x01], Edition::V2016).is_err());
}

// Source: emqx parser suite case_2025_report_alarm (reissue, alarm is type 0x06 in 2025,
// with N5 general (bit, level) pairs).
const ALARM_2025: &str = "242403FE314731424C353250375452313135353230010029110C1416173B060000000011011234ABCD022345BCDE3456CDEF014567DEFA015678EFAB0200FF08FFBD";

#[test]
fn a_2025_alarm_has_fault_codes_as_8_hex_digits_and_flag_names() {
    let (js, _) = telemetry_json(ALARM_2025);
    let a = &js[0]["alarm"];
    assert_eq!(a["level"], 0);
    assert_eq!(
        a["flags"],
        serde_json::json!(["temperature_difference", "soc_low"])
    );
    assert_eq!(a["ress_faults"], serde_json::json!(["1234abcd"]));
    assert_eq!(a["motor_faults"][1], "3456cdef");
    assert_eq!(a["general"][1]["bit"], 8);
}

// Source: rtm_con "data2025 with only warnings data": alarm + SM2/RSA signature.
const ALARM_SIGNED_2025: &str = "242402FE484155563442474E365335303032323139010137190A1B14020206030000000300000007000100030008000200080003000C0004000D000100060920000A000B0200030103FF02010050662E2363BF35A6F93D050EB1439957160216DAECDBBE7CDF8F95BAF1AA6955610CED3B63CFC200E16CAD5033A370A254EDA60F99D812A04BCA4C24B64FCF8F703176DB01AA664597034494AB42DF190FCC930F788579F25E8C264FE5457B529BA1458611578AF4A554D7A4B828F14DC75FBCAAF52D08910810EADC8E1E28F4062D95EB95A20C58FB61C4A8DF97897134A2573EB9AC4261AFDCFB745615A64E6126705C8D950A1164BE5202D5B07819BEB6F49586AC5C9F653A62871829C7DC856680031A23B12D0FA27165A55A5B442B51051F241EB342548904E41527EFB04DEBAF85EC0547C9239E7ECC2A712D080032837BFDC81312C741DFADF60FE0F100001A";

#[test]
fn a_2025_signature_is_kept_with_its_signed_range() {
    let (f, r) = body(ALARM_SIGNED_2025);
    let _ = &r;
    assert_eq!(r.units.len(), 1, "{r:?}");
    let sig = r.signature.as_ref().unwrap();
    let signed = r.signed_bytes(&f.data).unwrap();
    assert_eq!(signed.len() + sig.wire_len(), f.data.len());
    let mut out = Vec::new();
    r.encode(f.edition, &mut out);
    assert_eq!(out, f.data.to_vec());
}

#[test]
fn split_cell_lists_are_joined_by_their_start_cell() {
    let part = |start: u16, cells: Vec<u16>| PackVoltages {
        no: 1,
        voltage: 3500,
        current: 10000,
        split: Some((4, start)),
        cells,
    };
    let r = Report {
        time: Default::default(),
        units: vec![Unit::Voltages {
            packs: vec![part(3, vec![3300, 3301]), part(1, vec![3298, 3299])],
        }],
        tail: None,
        signature: None,
    };
    let t = gbt32960::normalize::telemetry(&r, Edition::V2016);
    let v = &t.battery_voltages.unwrap().to_value()[0];
    let cells: Vec<f64> = v["cell_voltages_v"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(cells, vec![3.298, 3.299, 3.3, 3.301]);
    close(&v["current_a"], 0.0);
}

#[test]
fn vehicle_sentinels_are_null_and_2025_current_offset_is_minus_3000() {
    let v = Vehicle {
        state: 1,
        charging: 3,
        mode: 1,
        speed: 0xFFFE,
        odometer: 0xFFFF_FFFF,
        total_voltage: 3500,
        total_current: 30000,
        soc: 0xFF,
        dcdc: 1,
        gear: 0x0E,
        insulation: 0xFFFF,
        pedals: None,
    };
    let r = Report {
        time: Default::default(),
        units: vec![Unit::Vehicle(v)],
        tail: None,
        signature: None,
    };
    let t = gbt32960::normalize::telemetry(&r, Edition::V2025);
    let j = t.vehicle.unwrap().to_value();
    assert!(j["speed_kmh"].is_null());
    assert!(j["odometer_km"].is_null());
    assert!(j["soc_pct"].is_null());
    assert!(j["insulation_kohm"].is_null());
    close(&j["total_current_a"], 0.0);
    close(&j["total_voltage_v"], 350.0);
    assert_eq!(j["gear"], "D");
    assert_eq!(j["state"], "started");
    assert_eq!(j["charging"], "not_charging");
}

// ---- proptest round trips ----

fn vehicle_s(ed: Edition) -> impl Strategy<Value = Unit> {
    (
        any::<(u8, u8, u8, u16, u32, u16, u16)>(),
        any::<(u8, u8, u8, u16, u8, u8)>(),
    )
        .prop_map(move |((a, b, c, d, e, f, g), (h, i, j, k, l, m))| {
            Unit::Vehicle(Vehicle {
                state: a,
                charging: b,
                mode: c,
                speed: d,
                odometer: e,
                total_voltage: f,
                total_current: g,
                soc: h,
                dcdc: i,
                gear: j,
                insulation: k,
                pedals: (ed == Edition::V2016).then_some((l, m)),
            })
        })
}

fn motors_s(ed: Edition) -> impl Strategy<Value = Unit> {
    let v16 = ed == Edition::V2016;
    prop::collection::vec(any::<(u8, u8, u8, u16, u32, u8, u16, u16)>(), 0..4).prop_map(move |l| {
        Unit::Motors {
            motors: l
                .into_iter()
                .map(|(a, b, c, d, t, f, g, h)| Motor {
                    no: a,
                    state: b,
                    controller_temp: c,
                    rpm: d,
                    torque: if v16 { t & 0xFFFF } else { t },
                    motor_temp: f,
                    input: v16.then_some((g, h)),
                })
                .collect(),
        }
    })
}

fn fuel_cell_s() -> impl Strategy<Value = Unit> {
    (
        any::<(u16, u16, u16)>(),
        prop::collection::vec(any::<u8>(), 0..8),
        any::<(u16, u8, u16, u8, u16, u8, u8)>(),
    )
        .prop_map(|((a, b, c), t, (d, e, f, g, h, i, j))| {
            Unit::FuelCell(FuelCell {
                voltage: a,
                current: b,
                consumption: c,
                probe_temps: t,
                h2_max_temp: d,
                h2_max_temp_probe: e,
                h2_max_conc: f,
                h2_max_conc_sensor: g,
                h2_max_pressure: h,
                h2_max_pressure_sensor: i,
                dcdc: j,
            })
        })
}

fn engine_s(ed: Edition) -> impl Strategy<Value = Unit> {
    let v16 = ed == Edition::V2016;
    any::<(u8, u16, u16)>().prop_map(move |(a, b, c)| {
        Unit::Engine(Engine {
            state: v16.then_some(a),
            crank_rpm: b,
            fuel_rate: v16.then_some(c),
        })
    })
}

fn location_s(ed: Edition) -> impl Strategy<Value = Unit> {
    let v25 = ed == Edition::V2025;
    any::<(u8, u8, u32, u32)>().prop_map(move |(a, b, c, d)| {
        Unit::Location(Position {
            status: a,
            coord_system: v25.then_some(b),
            longitude: c,
            latitude: d,
        })
    })
}

fn extremes_s() -> impl Strategy<Value = Unit> {
    (any::<(u8, u8, u16, u8, u8, u16)>(), any::<[u8; 6]>()).prop_map(|((a, b, c, d, e, f), g)| {
        Unit::Extremes(Extremes {
            max_v_subsystem: a,
            max_v_cell: b,
            max_cell_v: c,
            min_v_subsystem: d,
            min_v_cell: e,
            min_cell_v: f,
            max_t_subsystem: g[0],
            max_t_probe: g[1],
            max_t: g[2],
            min_t_subsystem: g[3],
            min_t_probe: g[4],
            min_t: g[5],
        })
    })
}

fn alarm_s(ed: Edition) -> impl Strategy<Value = Unit> {
    let v25 = ed == Edition::V2025;
    let l = || prop::collection::vec(any::<u32>(), 0..4);
    (
        any::<(u8, u32)>(),
        (l(), l(), l(), l()),
        prop::collection::vec(any::<(u8, u8)>(), 0..4),
    )
        .prop_map(move |((lv, fl), (a, b, c, d), g)| {
            Unit::Alarm(Alarm {
                level: lv,
                flags: fl,
                ress_faults: a,
                motor_faults: b,
                engine_faults: c,
                other_faults: d,
                general: v25.then_some(g),
            })
        })
}

fn voltages_s(ed: Edition) -> impl Strategy<Value = Unit> {
    let v16 = ed == Edition::V2016;
    prop::collection::vec(
        (
            any::<(u8, u16, u16, u16, u16)>(),
            prop::collection::vec(any::<u16>(), 0..6),
        ),
        0..3,
    )
    .prop_map(move |l| Unit::Voltages {
        packs: l
            .into_iter()
            .map(|((a, b, c, d, e), cells)| PackVoltages {
                no: a,
                voltage: b,
                current: c,
                split: v16.then_some((d, e)),
                cells,
            })
            .collect(),
    })
}

fn temps_s() -> impl Strategy<Value = Unit> {
    prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..6)),
        0..3,
    )
    .prop_map(|l| Unit::Temperatures {
        packs: l
            .into_iter()
            .map(|(no, temps)| PackTemperatures { no, temps })
            .collect(),
    })
}

fn custom_s() -> impl Strategy<Value = Unit> {
    (0x80u8..=0xFE, prop::collection::vec(any::<u8>(), 0..20))
        .prop_map(|(type_id, data)| Unit::Custom(Custom { type_id, data }))
}

fn h2_s() -> impl Strategy<Value = Unit> {
    (any::<(u16, u8, u16, u8, u16)>(), any::<[u8; 4]>()).prop_map(|((a, b, c, d, e), f)| {
        Unit::H2System(H2System {
            max_temp: a,
            max_temp_probe: b,
            max_conc: c,
            max_conc_sensor: d,
            max_pressure: e,
            max_pressure_sensor: f[0],
            dcdc: f[1],
            remaining_pct: f[2],
            dcdc_temp: f[3],
        })
    })
}

fn stacks_s() -> impl Strategy<Value = Unit> {
    prop::collection::vec(
        (
            any::<(u8, u16, u16, u16, u16, u8)>(),
            prop::collection::vec(any::<u8>(), 0..6),
        ),
        0..3,
    )
    .prop_map(|l| Unit::Stacks {
        stacks: l
            .into_iter()
            .map(|((a, b, c, d, e, f), t)| Stack {
                no: a,
                voltage: b,
                current: c,
                h2_inlet_pressure: d,
                air_inlet_pressure: e,
                air_inlet_temp: f,
                coolant_temps: t,
            })
            .collect(),
    })
}

fn supercap_s() -> impl Strategy<Value = Unit> {
    (
        any::<(u8, u16, u16)>(),
        prop::collection::vec(any::<u16>(), 0..6),
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|((system, voltage, current), cells, temps)| {
            Unit::Supercap(Supercap {
                system,
                voltage,
                current,
                cells,
                temps,
            })
        })
}

fn supercap_extremes_s() -> impl Strategy<Value = Unit> {
    any::<((u8, u16, u16), (u8, u16, u16), (u8, u16, u8), (u8, u16, u8))>().prop_map(
        |(max_v, min_v, max_t, min_t)| {
            Unit::SupercapExtremes(SupercapExtremes {
                max_v,
                min_v,
                max_t,
                min_t,
            })
        },
    )
}

fn unit_s(ed: Edition) -> BoxedStrategy<Unit> {
    if ed == Edition::V2016 {
        prop_oneof![
            vehicle_s(ed),
            motors_s(ed),
            fuel_cell_s(),
            engine_s(ed),
            location_s(ed),
            extremes_s(),
            alarm_s(ed),
            voltages_s(ed),
            temps_s(),
            custom_s()
        ]
        .boxed()
    } else {
        prop_oneof![
            vehicle_s(ed),
            motors_s(ed),
            h2_s(),
            engine_s(ed),
            location_s(ed),
            alarm_s(ed),
            voltages_s(ed),
            temps_s(),
            stacks_s(),
            supercap_s(),
            supercap_extremes_s(),
            custom_s()
        ]
        .boxed()
    }
}

fn report_s(ed: Edition) -> impl Strategy<Value = Report> {
    let sig = prop::option::of(
        (
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(kind, r, s)| Signature { kind, r, s }),
    );
    (
        any::<[u8; 6]>(),
        prop::collection::vec(unit_s(ed), 0..8),
        sig,
    )
        .prop_map(move |(t, units, signature)| Report {
            time: codecs::time::LocalTime {
                year: t[0],
                month: t[1],
                day: t[2],
                hour: t[3],
                minute: t[4],
                second: t[5],
            },
            units,
            tail: None,
            signature: if ed == Edition::V2025 {
                signature
            } else {
                None
            },
        })
}

proptest! {
    #[test]
    fn every_2016_unit_round_trips(r in report_s(Edition::V2016)) {
        let mut out = Vec::new();
        r.encode(Edition::V2016, &mut out);
        prop_assert_eq!(Report::decode(&out, Edition::V2016).unwrap(), r);
    }

    #[test]
    fn every_2025_unit_round_trips(r in report_s(Edition::V2025)) {
        let mut out = Vec::new();
        r.encode(Edition::V2025, &mut out);
        prop_assert_eq!(Report::decode(&out, Edition::V2025).unwrap(), r);
    }

    #[test]
    fn real_time_and_reissue_messages_of_both_editions_round_trip_through_the_wire(
        (ed, r) in prop_oneof![
            report_s(Edition::V2016).prop_map(|r| (Edition::V2016, r)),
            report_s(Edition::V2025).prop_map(|r| (Edition::V2025, r)),
        ],
        reissue in any::<bool>(),
    ) {
        let m = if reissue { Message::Reissue(r) } else { Message::Realtime(r) };
        let f = m.to_frame(ed, "LSVAU2180N2183294").unwrap();
        let wire = f.to_wire();
        let back = Frame::parse(&wire).unwrap();
        prop_assert_eq!(back.command, if reissue { 0x03 } else { 0x02 });
        prop_assert_eq!(Message::decode(&back).unwrap(), m);
    }

    #[test]
    fn a_reserved_type_after_any_units_keeps_them_and_the_raw_tail(
        (ed, r) in prop_oneof![
            report_s(Edition::V2016).prop_map(|r| (Edition::V2016, r)),
            report_s(Edition::V2025).prop_map(|r| (Edition::V2025, r)),
        ],
        reserved in prop_oneof![0x0Au8..=0x2F, 0x33u8..=0x7F],
        junk in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        // 2016: 0x0A-0x7F are not decodable; 2025: 0x09-0x2F and 0x33-0x7F.
        let r = Report { signature: None, ..r };
        let mut out = Vec::new();
        r.encode(ed, &mut out);
        let mut tail = vec![reserved];
        tail.extend_from_slice(&junk);
        out.extend_from_slice(&tail);
        let got = Report::decode(&out, ed).unwrap();
        prop_assert_eq!(&got.units, &r.units);
        prop_assert_eq!(
            got.tail,
            Some(Tail { type_id: reserved, truncated: false, bytes: tail })
        );
    }

    #[test]
    fn a_custom_unit_takes_exactly_its_word_length_and_the_next_unit_decodes(
        type_id in 0x80u8..=0xFE,
        data in prop::collection::vec(any::<u8>(), 0..300),
        v25 in any::<bool>(),
    ) {
        let ed = if v25 { Edition::V2025 } else { Edition::V2016 };
        let mut body = vec![25, 1, 2, 3, 4, 5, type_id];
        body.extend_from_slice(&(data.len() as u16).to_be_bytes());
        body.extend_from_slice(&data);
        // Engine unit after it (2016: state, crank, fuel; 2025: crank only).
        body.push(0x04);
        body.extend_from_slice(if v25 { &[0x0B, 0xB8][..] } else { &[0x01, 0x0B, 0xB8, 0x00, 0x64][..] });
        let got = Report::decode(&body, ed).unwrap();
        prop_assert_eq!(got.tail, None);
        prop_assert_eq!(got.units.len(), 2);
        prop_assert_eq!(&got.units[0], &Unit::Custom(Custom { type_id, data }));
        prop_assert!(matches!(got.units[1], Unit::Engine(_)));
    }

    #[test]
    fn telemetry_json_is_byte_for_byte_what_a_serde_json_value_of_it_writes(
        (ed, r) in prop_oneof![
            report_s(Edition::V2016).prop_map(|r| (Edition::V2016, r)),
            report_s(Edition::V2025).prop_map(|r| (Edition::V2025, r)),
        ],
    ) {
        // The groups written straight from the report must be the bytes of the tree of
        // `Json` values the normalizer built before (`tree`), which were those of the
        // `serde_json::Value` each stands for: the event JSON did not change.
        let t = gbt32960::normalize::telemetry(&r, ed);
        let old = tree::telemetry(&r, ed);
        let mut fast = Vec::new();
        t.write_json(&mut fast);
        prop_assert_eq!(String::from_utf8(fast).unwrap(), serde_json::to_string(&old).unwrap());
        // Through serde (the groups parsed) the same too.
        prop_assert_eq!(serde_json::to_string(&t).unwrap(), serde_json::to_string(&old).unwrap());
        let groups = [
            (&t.vehicle, &old.vehicle), (&t.motors, &old.motors), (&t.fuel_cell, &old.fuel_cell),
            (&t.engine, &old.engine), (&t.extremes, &old.extremes), (&t.alarm, &old.alarm),
            (&t.battery_voltages, &old.battery_voltages),
            (&t.battery_temperatures, &old.battery_temperatures), (&t.supercap, &old.supercap),
            (&t.fuel_cell_stacks, &old.fuel_cell_stacks), (&t.signature, &old.signature),
            (&t.custom, &old.custom),
        ];
        for (new, old) in groups {
            prop_assert_eq!(new.as_ref().map(|g| g.to_value()), old.as_ref().map(|g| g.to_value()));
        }
    }

    #[test]
    fn arbitrary_bodies_decode_without_panic_and_re_encode_to_the_same_bytes(
        data in prop::collection::vec(any::<u8>(), 6..200), v25 in any::<bool>()
    ) {
        let ed = if v25 { Edition::V2025 } else { Edition::V2016 };
        let r = Report::decode(&data, ed).unwrap();
        let mut out = Vec::new();
        r.encode(ed, &mut out);
        prop_assert_eq!(Report::decode(&out, ed).unwrap(), r);
    }
}

// Source: rtm_con "weird message 2016 with duplicated warning blocks": two 0x07 units.
const TWO_ALARMS_2016: &str = "232302FE484155563442474E365335303032323139010052190A1B14020207030000000300000007000100030008000200080003000C0004000D000100060920000A000B07030000000300000007000100030008000200080003000C0004000D000100060920000A000B9E";

#[test]
fn two_alarm_units_in_one_frame_are_both_kept() {
    let (js, r) = telemetry_json(TWO_ALARMS_2016);
    assert_eq!(r.units.len(), 2);
    assert_eq!(js[0]["alarm"]["level"], 3);
    assert_eq!(js[0]["alarm"]["other_faults"][6], "000a000b");
    assert_eq!(js[0]["extra_alarms"][0]["other_faults"][0], "00010003");
}
