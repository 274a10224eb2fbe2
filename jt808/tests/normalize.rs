//! Normalization of real frames to contract events (CONTRACT.md §3).

use codecs::{Data, EventContext};
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
    assert_eq!(l.extras.get("0x25").map(String::as_str), Some("00000000"));
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
    assert!(l.more.contains_key("note"));
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
