//! Contract commands to JT/T 808 platform messages: one test per type and per rejection.

use codecs::command::Command;
use jt808::command::build;
use jt808::{Message, Version};

fn cmd(json: &str) -> Command {
    Command::parse(json.as_bytes()).expect("command json")
}

fn body(m: &Message) -> (u16, String) {
    (
        m.msg_id(),
        hex::encode(m.encode_body(Version::V2013).expect("encode")),
    )
}

#[test]
fn text_with_flags_is_an_0x8300_with_the_flag_byte_then_gbk() {
    let c = cmd(r#"{"id":"1","type":"text","params":{"text":"hi","flags":["emergency","tts"]}}"#);
    let m = build(&c, Version::V2013).expect("build");
    assert_eq!(body(&m), (0x8300, "096869".into()));
    let m19 = build(&c, Version::V2019).expect("build");
    assert_eq!(
        hex::encode(m19.encode_body(Version::V2019).expect("enc")),
        "09016869"
    );
}

#[test]
fn query_location_is_an_empty_0x8201() {
    let m = build(
        &cmd(r#"{"id":"1","type":"query_location","params":{}}"#),
        Version::V2013,
    );
    assert_eq!(body(&m.expect("build")), (0x8201, String::new()));
}

#[test]
fn query_params_without_ids_is_0x8104_and_with_ids_0x8106() {
    let all = build(
        &cmd(r#"{"id":"1","type":"query_params","params":{}}"#),
        Version::V2013,
    );
    assert_eq!(body(&all.expect("build")), (0x8104, String::new()));
    let some = build(
        &cmd(r#"{"id":"1","type":"query_params","params":{"ids":["0x0029",1]}}"#),
        Version::V2013,
    );
    assert_eq!(
        body(&some.expect("build")),
        (0x8106, "020000002900000001".into())
    );
}

#[test]
fn terminal_control_temporary_tracking_and_transparent_have_their_layouts() {
    let tc = build(
        &cmd(r#"{"id":"1","type":"terminal_control","params":{"command":4}}"#),
        Version::V2013,
    );
    assert_eq!(body(&tc.expect("build")), (0x8105, "04".into()));
    let tt = build(
        &cmd(
            r#"{"id":"1","type":"temporary_tracking","params":{"interval_s":10,"duration_s":600}}"#,
        ),
        Version::V2013,
    );
    assert_eq!(body(&tt.expect("build")), (0x8202, "000a00000258".into()));
    let tr = build(
        &cmd(r#"{"id":"1","type":"transparent","params":{"msg_type":65,"data_hex":"0102"}}"#),
        Version::V2013,
    );
    assert_eq!(body(&tr.expect("build")), (0x8900, "410102".into()));
}

#[test]
fn raw_takes_a_hex_string_or_a_number_as_msg_id() {
    let a = build(
        &cmd(r#"{"id":"1","type":"raw","params":{"msg_id":"0x8F01","body_hex":"ab"}}"#),
        Version::V2013,
    );
    assert_eq!(body(&a.expect("build")), (0x8F01, "ab".into()));
    let b = build(
        &cmd(r#"{"id":"1","type":"raw","params":{"msg_id":33537}}"#),
        Version::V2013,
    );
    assert_eq!(body(&b.expect("build")), (0x8301, String::new()));
}

#[test]
fn each_rejection_names_its_field() {
    let cases = [
        (r#"{"id":"1","type":"text","params":{}}"#, "params.text"),
        (
            r#"{"id":"1","type":"text","params":{"text":"x","flags":["loud"]}}"#,
            "params.flags",
        ),
        (
            r#"{"id":"1","type":"query_params","params":{"ids":[true]}}"#,
            "params.ids",
        ),
        (
            r#"{"id":"1","type":"terminal_control","params":{"command":300}}"#,
            "params.command",
        ),
        (
            r#"{"id":"1","type":"temporary_tracking","params":{}}"#,
            "params.interval_s",
        ),
        (
            r#"{"id":"1","type":"transparent","params":{"msg_type":1,"data_hex":"zz"}}"#,
            "params.data_hex",
        ),
        (
            r#"{"id":"1","type":"raw","params":{"msg_id":"0x1FFFF"}}"#,
            "params.msg_id",
        ),
        (r#"{"id":"1","type":"fly","params":{}}"#, "type"),
    ];
    for (json, want) in cases {
        let e = build(&cmd(json), Version::V2013).expect_err(json);
        assert_eq!(e.field, want, "{json}");
    }
}
