//! Normalization of real frames to contract events (CONTRACT.md §3).

use codecs::{Data, EventContext};
use jt808::msg::LocationItem;
use jt808::{normalize, raw_json, ChecksumPolicy, Frame, Message};

fn frame(wire_hex: &str) -> Frame {
    let wire = hex::decode(wire_hex).expect("hex");
    let inner = wire.get(1..wire.len() - 1).expect("delimiters");
    let content = jt808::escape::unescape(inner).expect("unescape");
    Frame::parse(&content, ChecksumPolicy::Strict).expect("frame")
}

fn ctx() -> EventContext {
    EventContext::now("test")
}

/// EMQX parser suite t_case04 (fixtures/jt808/emqx-0200-case04.json).
const EMQX_0200: &str = "7e0200003c01887663897200e5000000000004000001317a6706936851000e00000027171019193538010400003fb2030200002504000000002a0200002b040000000030011f310100ab7e";

#[test]
fn a_location_report_becomes_one_location_event_with_contract_units() {
    let f = frame(EMQX_0200);
    let msg = Message::decode(&f.header, &f.body).expect("decode");
    let evs = normalize(&f.header, &msg, &ctx());
    assert_eq!(evs.len(), 1);
    let e = evs.first().expect("one event");
    assert_eq!(&*e.vehicle_id, "018876638972");
    assert_eq!(e.msg_seq, Some(229));
    assert_eq!(
        e.device_time.map(|t| t.to_rfc3339()),
        Some("2017-10-19T11:35:38+00:00".to_string())
    );
    let Data::Location(l) = &e.data else {
        panic!("not a location: {:?}", e.data)
    };
    assert!((l.latitude - 20.019815).abs() < 1e-9);
    assert!((l.longitude - 110.323793).abs() < 1e-9);
    assert_eq!(l.altitude_m, Some(14.0));
    assert_eq!(l.heading_deg, Some(39.0));
    assert!((l.odometer_km.expect("mileage") - 1630.6).abs() < 1e-9);
    assert_eq!(l.speed_recorder_kmh, Some(0.0));
    assert_eq!(l.signal_strength, Some(31));
    assert_eq!(l.satellites, Some(0));
    // status 0x40000 = bit 18 (GPS in use), position not fixed.
    assert_eq!(l.status.get("gps"), Some(true));
    assert!(!l.fix_valid);
    assert!(l.alarms.is_empty());
    // 0x25 extended vehicle signals (all clear), 0x2A IO status, 0x2B analog: typed.
    assert_eq!(l.more.to_map()["vehicle_signals"]["low_beam"], false);
    assert_eq!(
        l.io_status.as_ref().and_then(|f| f.get("sleep")),
        Some(false)
    );
    assert_eq!(
        l.analog.map(|a| serde_json::to_value(a).expect("analog")),
        Some(serde_json::json!({"ad0": 0, "ad1": 0}))
    );
    assert!(l.extras.is_empty(), "{:?}", l.extras);
}

#[test]
fn south_and_west_status_bits_make_coordinates_negative_and_alarms_are_named() {
    let f = frame(EMQX_0200);
    let Message::Location(mut r) = Message::decode(&f.header, &f.body).expect("decode") else {
        panic!("not 0x0200")
    };
    r.status |= 0b1100;
    r.alarm = 1 | (1 << 8) | (1 << 29);
    let l = jt808::normalize::location(&r, jt808::Version::V2013);
    assert!(l.latitude < 0.0 && l.longitude < 0.0);
    assert_eq!(l.alarms, vec!["emergency", "main_power_off", "collision"]);
}

#[test]
fn an_impossible_bcd_date_gives_no_device_time_but_keeps_the_event() {
    let f = frame(EMQX_0200);
    let Message::Location(mut r) = Message::decode(&f.header, &f.body).expect("decode") else {
        panic!("not 0x0200")
    };
    r.time = [0x17, 0x13, 0x45, 0x99, 0x00, 0x00];
    let evs = normalize(&f.header, &Message::Location(r), &ctx());
    let e = evs.first().expect("event");
    assert_eq!(e.device_time, None);
    let Data::Location(l) = &e.data else { panic!() };
    assert!(l.more.to_map().contains_key("note"));
}

#[test]
fn an_unknown_message_becomes_passthrough_with_its_body_in_base64() {
    let f = frame(EMQX_0200);
    let mut h = f.header.clone();
    h.msg_id = 0x0F01;
    let msg = Message::decode(&h, &[1, 2, 3]).expect("decode");
    let evs = normalize(&h, &msg, &ctx());
    let Data::Passthrough(p) = &evs.first().expect("event").data else {
        panic!()
    };
    assert_eq!(p.0["msg_id"], "0x0f01");
    assert_eq!(p.0["body_base64"], "AQID");
}

#[test]
fn raw_json_has_header_and_tagged_message() {
    let f = frame(EMQX_0200);
    let msg = Message::decode(&f.header, &f.body).expect("decode");
    let v = raw_json(&f.header, &msg);
    assert_eq!(v["header"]["phone"], "018876638972");
    assert_eq!(v["message"]["kind"], "location");
    assert_eq!(v["message"]["time"], "171019193538");
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/jt808");

/// The location data of fixture `id` (a 0x0200 frame).
fn fixture_location(id: &str) -> codecs::event::Location {
    let path = format!("{FIXTURES}/{id}.json");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let f = frame(fx["hex"].as_str().expect("hex"));
    let msg = Message::decode(&f.header, &f.body).expect("decode");
    let evs = normalize(&f.header, &msg, &ctx());
    match evs.into_iter().next().map(|e| e.data) {
        Some(Data::Location(l)) => l,
        other => panic!("{id}: not a location: {other:?}"),
    }
}

#[test]
fn every_standard_2013_item_is_typed_and_none_is_left_in_extras() {
    // SmallChi's serializer test with every 2013 item (fixtures/jt808/smallchi-0200-all-std).
    let l = fixture_location("smallchi-0200-all-std");
    assert!(l.extras.is_empty(), "{:?}", l.extras);
    assert!((l.odometer_km.expect("0x01") - 10.0).abs() < 1e-9);
    assert!((l.fuel_l.expect("0x02") - 5.5).abs() < 1e-9);
    assert!((l.speed_recorder_kmh.expect("0x03") - 5.6).abs() < 1e-9);
    assert_eq!(l.more.to_map()["alarm_event_id"], 1);
    assert_eq!(
        l.more.to_map()["overspeed"],
        serde_json::json!({"location_type": 1, "area_id": 1})
    );
    assert_eq!(
        l.more.to_map()["in_out_area"],
        serde_json::json!({"location_type": 1, "area_id": 1, "direction": 1})
    );
    assert_eq!(
        l.more.to_map()["route_time"],
        serde_json::json!({"route_id": 2, "time_s": 34, "result": 1})
    );
    // 0x25 = 23 = bits 0, 1, 2, 4 (bit 0 is the low beam, not the reverse EMQX order).
    let more = l.more.to_map();
    let sig = &more["vehicle_signals"];
    for (name, on) in [
        ("low_beam", true),
        ("high_beam", true),
        ("right_turn_signal", true),
        ("left_turn_signal", false),
        ("brake", true),
        ("clutch", false),
    ] {
        assert_eq!(sig[name], on, "{name}");
    }
    // 0x2A = 0x00f4: bits 0 and 1 clear.
    let io = l.io_status.expect("0x2a");
    assert_eq!(
        (io.get("deep_sleep"), io.get("sleep")),
        (Some(false), Some(false))
    );
    // 0x2B = 0x000000f2: AD0 is the low word.
    assert_eq!(
        l.analog.map(|a| serde_json::to_value(a).expect("analog")),
        Some(serde_json::json!({"ad0": 242, "ad1": 0}))
    );
    assert_eq!((l.signal_strength, l.satellites), (Some(2), Some(5)));
}

#[test]
fn tyre_pressure_and_carriage_temperature_are_typed_in_2019_frames() {
    // EMQX 2019 suite: 0x05 with 6 bytes, 0x06 = 0x0019.
    let l = fixture_location("emqx-0200-2019-tire-temp");
    assert_eq!(
        l.more.to_map()["tyre_pressure_pa"],
        serde_json::json!([100, 101, 102, 103, 104, 105])
    );
    assert_eq!(l.more.to_map()["carriage_temperature_c"], 25);
    assert!(l.extras.is_empty(), "{:?}", l.extras);
    // yezhihao 2019 vector: 30 tyre bytes, unused ones zero; the synthetic 66/77/88
    // values of 0x11/0x12/0x13 are kept as sent.
    let l = fixture_location("yzh-0200-2019-all-attrs");
    let tyres = l.more.to_map()["tyre_pressure_pa"]
        .as_array()
        .expect("tyres")
        .clone();
    assert_eq!(tyres.len(), 30);
    assert_eq!(tyres.first(), Some(&serde_json::json!(55)));
    assert_eq!(l.more.to_map()["in_out_area"]["direction"], 77);
    assert_eq!(l.more.to_map()["route_time"]["time_s"], 88);
    assert!(l.extras.is_empty(), "{:?}", l.extras);
}

#[test]
fn items_0x05_and_0x06_of_a_2013_frame_are_vendor_items_in_extras() {
    // Traccar capture: 0x06 with one byte is a vendor battery level in a 2013 frame.
    let l = fixture_location("traccar-0200-06-battery-level");
    assert_eq!(l.extras.get("0x06").map(String::as_str), Some("3e"));
    assert!(!l.more.to_map().contains_key("carriage_temperature_c"));
    // The 30-byte 0x05 of a 2013 frame is kept raw too (tyre pressure is 2019's).
    let l = fixture_location("yzh-0200-2013-all-attrs");
    assert!(l.extras.contains_key("0x05"));
    assert!(!l.more.to_map().contains_key("tyre_pressure_pa"));
}

#[test]
fn tyre_bytes_of_0xff_are_null_and_negative_temperatures_read_both_ways() {
    let f = frame(EMQX_0200);
    let Message::Location(mut r) = Message::decode(&f.header, &f.body).expect("decode") else {
        panic!("not 0x0200")
    };
    r.items = vec![
        LocationItem {
            id: 0x05,
            value: vec![0xf0, 0xff],
        },
        // Sign and magnitude, as the standard writes it: -5.
        LocationItem {
            id: 0x06,
            value: vec![0x80, 0x05],
        },
        LocationItem {
            id: 0xE0,
            value: vec![0x03],
        },
        LocationItem {
            id: 0xE1,
            value: vec![1, 2, 3],
        },
    ]
    .into();
    let l = jt808::normalize::location(&r, jt808::Version::V2019);
    assert_eq!(
        l.more.to_map()["tyre_pressure_pa"],
        serde_json::json!([240, null])
    );
    assert_eq!(l.more.to_map()["carriage_temperature_c"], -5);
    assert_eq!(l.more.to_map()["custom_info_length"], 3);
    assert_eq!(l.extras.get("0xe1").map(String::as_str), Some("010203"));
    // Two's complement -5 from a terminal that writes an ordinary signed WORD.
    r.items = vec![LocationItem {
        id: 0x06,
        value: vec![0xff, 0xfb],
    }]
    .into();
    let l = jt808::normalize::location(&r, jt808::Version::V2019);
    assert_eq!(l.more.to_map()["carriage_temperature_c"], -5);
}

#[test]
fn a_standard_item_with_a_wrong_length_stays_raw() {
    let f = frame(EMQX_0200);
    let Message::Location(mut r) = Message::decode(&f.header, &f.body).expect("decode") else {
        panic!("not 0x0200")
    };
    r.items = vec![
        LocationItem {
            id: 0x01,
            value: vec![1, 2],
        },
        LocationItem {
            id: 0x12,
            value: vec![1, 2, 3],
        },
    ]
    .into();
    let l = jt808::normalize::location(&r, jt808::Version::V2013);
    assert_eq!(l.odometer_km, None);
    assert_eq!(l.extras.get("0x01").map(String::as_str), Some("0102"));
    assert_eq!(l.extras.get("0x12").map(String::as_str), Some("010203"));
}

#[test]
fn a_terminal_answer_is_passthrough_with_its_typed_message() {
    // SmallChi 0x0104 (fixtures/jt808/smallchi-0104-one-param.json): heartbeat 10 s.
    let f = frame("7e0104000c000123456789000a00140100000001040000000a907e");
    let msg = Message::decode(&f.header, &f.body).expect("decode");
    let evs = normalize(&f.header, &msg, &ctx());
    let Data::Passthrough(p) = &evs.first().expect("event").data else {
        panic!("not passthrough")
    };
    assert_eq!(p.0["msg_id"], "0x0104");
    assert_eq!(p.0["message"]["kind"], "query_params_answer");
    assert_eq!(p.0["message"]["reply_serial"], 20);
    assert_eq!(p.0["message"]["params"]["heartbeat_interval_s"], 10);
    assert_eq!(p.0["body_base64"], "ABQBAAAAAQQAAAAK");
}
