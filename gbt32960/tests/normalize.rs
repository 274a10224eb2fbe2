//! Normalization of GB/T 32960 messages into contract events (CONTRACT.md §3).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use codecs::EventContext;
use gbt32960::{normalize_message, Frame, Message};
use serde_json::Value;

fn events(hex_frame: &str) -> Vec<Value> {
    let f = Frame::parse(&hex::decode(hex_frame).unwrap()).unwrap();
    let m = Message::decode(&f).unwrap();
    normalize_message(&f, &m, &EventContext::now("node-1"))
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

#[test]
fn a_2025_location_report_gives_telemetry_and_a_wgs84_location_in_utc() {
    // Source: emqx/emqx apps/emqx_gateway_gbt32960/test/emqx_gbt32960_parser_SUITE.erl
    // case_2025_report_location (coord system 1, lon 10, lat 100 in 1e-6 degrees).
    let e = events(
        "242402FE56494E3132333435363738393031323334010011190A01163B000500010000000A00000064ED",
    );
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["type"], "telemetry");
    assert_eq!(e[0]["protocol"], "gbt32960-2025");
    assert_eq!(e[0]["vehicle_id"], "VIN12345678901234");
    assert!(e[0]["msg_seq"].is_null());
    assert_eq!(e[0]["reissue"], false);
    // 2025-10-01 22:59:00 Beijing time.
    assert_eq!(e[0]["device_time"], "2025-10-01T14:59:00Z");
    assert_eq!(e[1]["type"], "location");
    assert_eq!(e[1]["data"]["coord_system"], "wgs84");
    assert_eq!(e[1]["data"]["latitude"], 0.0001);
    assert_eq!(e[1]["data"]["longitude"], 0.00001);
    assert_eq!(e[1]["data"]["fix_valid"], true);
    assert!(e[1]["data"]["altitude_m"].is_null());
}

#[test]
fn a_reissue_frame_is_marked_reissue() {
    // Source: emqx parser suite case_2025_report_alarm (command 0x03).
    let e = events("242403FE314731424C353250375452313135353230010029110C1416173B060000000011011234ABCD022345BCDE3456CDEF014567DEFA015678EFAB0200FF08FFBD");
    assert_eq!(e[0]["reissue"], true);
    assert_eq!(e[0]["data"]["alarm"]["other_faults"][0], "5678efab");
}

#[test]
fn an_invalid_2016_engine_is_all_null() {
    // Source: beidouchangxi/rtm_con tests/rtm_con/message_and_data_samples.py
    // "data2016 with only engine data".
    let e = events("232302FE484155563442474E36533530303232313901000C190A1B14020204FFFFFFFFFF3B");
    let eng = &e[0]["data"]["engine"];
    assert!(eng["state"].is_null());
    assert!(eng["crank_rpm"].is_null());
    assert!(eng["fuel_l_per_100km"].is_null());
}

#[test]
fn a_2016_login_is_a_lifecycle_login_with_iccid_ress_codes_and_seq() {
    // Source: SmallChi/JTNewEnergy JTNE_0x01_Package_DeviceTest.cs (login, 3 RESS codes).
    let e = events("232301FE313233343536373839000000000000000001002A130116173738000131323334353637383939383736353433323130300304313233343435363739383730FD");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["type"], "lifecycle");
    assert_eq!(e[0]["data"]["event"], "login");
    assert_eq!(e[0]["data"]["iccid"], "12345678998765432100");
    assert_eq!(
        e[0]["data"]["ress_codes"],
        serde_json::json!(["1234", "4567", "9870"])
    );
    assert_eq!(e[0]["msg_seq"], 1);
    assert_eq!(e[0]["vehicle_id"], "123456789");
}

#[test]
fn a_logout_carries_its_sequence_number() {
    // Source: rtm_con "logout2025" (seq 2050).
    let e = events("242404FE484155563442474E365335303032323139010008190A1B1402020802C8");
    assert_eq!(e[0]["data"]["event"], "logout");
    assert_eq!(e[0]["msg_seq"], 2050);
}

#[test]
fn a_platform_login_never_carries_the_password() {
    // Source: rtm_con "plt_login2016" (user HAUV4BGN6S50, password HAUV4BGN6S5002219HAU).
    let e = events("232305FE484155563442474E365335303032323139010029190A1B1402020802484155563442474E36533530484155563442474E365335303032323139484155018D");
    assert_eq!(e[0]["data"]["event"], "platform_login");
    assert_eq!(e[0]["data"]["user"], "HAUV4BGN6S50");
    let text = e[0].to_string();
    assert!(!text.contains("HAUV4BGN6S5002219HAU"), "{text}");
}

#[test]
fn a_platform_logout_is_a_lifecycle_event() {
    // Source: rtm_con "plt_logout2016".
    let e = events("232306FE484155563442474E365335303032323139010008190A1B1402020802CA");
    assert_eq!(e[0]["data"]["event"], "platform_logout");
    assert_eq!(e[0]["msg_seq"], 2050);
}

#[test]
fn other_messages_are_passthrough_with_the_body_in_base64() {
    // Source: emqx/emqx apps/emqx_gateway_gbt32960/test/emqx_gbt32960_SUITE.erl
    // t_case19_terminal_ctrl_resp (0x82 answer, body time + command 0x02).
    let e = events("23238201314731424C3532503754523131353532300100071102020B0C0C02B0");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["type"], "passthrough");
    assert_eq!(e[0]["data"]["body_base64"], "EQICCwwMAg==");
}

#[test]
fn the_raw_json_of_a_real_time_frame_lists_its_units_by_type() {
    // Source: emqx parser suite case_2025_report_location.
    let f = Frame::parse(
        &hex::decode(
            "242402FE56494E3132333435363738393031323334010011190A01163B000500010000000A00000064ED",
        )
        .unwrap(),
    )
    .unwrap();
    let m = Message::decode(&f).unwrap();
    let raw = gbt32960::raw_json(&f, &m);
    let text = raw.to_string();
    assert!(text.contains(r#""type":"location""#), "{text}");
    assert!(text.contains(r#""latitude":100"#), "{text}");
}

#[test]
fn the_raw_json_keeps_wire_integers_of_real_time_units() {
    // Source: emqx parser suite case03_realtime_report_0x02 (raw values asserted there).
    let f = Frame::parse(&hex::decode("232302FE314731424C353250375452313135353230010020100101023B00020201017D753061A87D753C79E302017D75F862D4917D0075F8A2").unwrap()).unwrap();
    let m = Message::decode(&f).unwrap();
    let raw = gbt32960::raw_json(&f, &m);
    let units = raw.pointer("/message/units").unwrap();
    assert_eq!(units[0]["motors"][0]["rpm"], 30000);
    assert_eq!(units[0]["motors"][0]["torque"], 25000);
}
