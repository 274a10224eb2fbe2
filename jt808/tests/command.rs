//! Contract commands to JT/T 808 platform messages: one test per type and per rejection.

use codecs::command::Command;
use jt808::command::build;
use jt808::msg::{ControlItem, VehicleControl};
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
        (
            r#"{"id":"1","type":"alarm_confirm","params":{"alarm_serial":7}}"#,
            "params.alarms",
        ),
        (
            r#"{"id":"1","type":"alarm_confirm","params":{"alarms":["smoke"]}}"#,
            "params.alarms",
        ),
        (
            r#"{"id":"1","type":"alarm_confirm","params":{"alarms":[32]}}"#,
            "params.alarms",
        ),
        (
            r#"{"id":"1","type":"alarm_confirm","params":{"alarms":[0],"alarm_type":1}}"#,
            "params.alarm_type",
        ),
        (
            r#"{"id":"1","type":"alarm_confirm","params":{"alarms":[],"alarm_serial":1}}"#,
            "params.alarms",
        ),
        (
            r#"{"id":"1","type":"alarm_confirm","params":{"alarm_type":1,"alarm_serial":70000}}"#,
            "params.alarm_serial",
        ),
        (
            r#"{"id":"1","type":"camera_shot","params":{}}"#,
            "params.channel",
        ),
        (
            r#"{"id":"1","type":"camera_shot","params":{"channel":1,"video":true,"count":2}}"#,
            "params.count",
        ),
        (
            r#"{"id":"1","type":"stored_media_upload","params":{"media_type":"photo"}}"#,
            "params.media_type",
        ),
        (
            r#"{"id":"1","type":"stored_media_search","params":{"start":"yesterday"}}"#,
            "params.start",
        ),
        (
            r#"{"id":"1","type":"stored_media_upload","params":{"delete":1}}"#,
            "params.delete",
        ),
        (
            r#"{"id":"1","type":"single_media_upload","params":{}}"#,
            "params.media_id",
        ),
        (r#"{"id":"1","type":"fly","params":{}}"#, "type"),
    ];
    for (json, want) in cases {
        let e = build(&cmd(json), Version::V2013).expect_err(json);
        assert_eq!(e.field, want, "{json}");
    }
}

#[test]
fn builders_give_typed_platform_messages() {
    let m = build(
        &cmd(r#"{"id":"1","type":"text","params":{"text":"hi"}}"#),
        Version::V2013,
    )
    .expect("build");
    assert!(matches!(m, Message::Text(_)), "{m:?}");
    let m = build(
        &cmd(r#"{"id":"1","type":"query_location","params":{}}"#),
        Version::V2013,
    )
    .expect("build");
    assert_eq!(m, Message::QueryLocation);
    let m = build(
        &cmd(r#"{"id":"1","type":"query_params","params":{"ids":[1]}}"#),
        Version::V2013,
    )
    .expect("build");
    assert_eq!(
        m,
        Message::QueryParams(jt808::msg::QueryParams { ids: vec![1] })
    );
    let m = build(
        &cmd(r#"{"id":"1","type":"terminal_control","params":{"command":1,"args":"a;b"}}"#),
        Version::V2013,
    )
    .expect("build");
    assert_eq!(
        m,
        Message::TerminalControl(jt808::msg::TerminalControl {
            command: 1,
            args: "a;b".into()
        })
    );
}

#[test]
fn vehicle_control_door_is_the_2013_flag_byte_and_the_2019_door_item() {
    let lock = cmd(r#"{"id":"1","type":"vehicle_control","params":{"door":"lock"}}"#);
    let m13 = build(&lock, Version::V2013).expect("build");
    assert_eq!(
        m13,
        Message::VehicleControl(VehicleControl::Flag { flag: 1 })
    );
    assert_eq!(body(&m13), (0x8500, "01".into()));
    let m19 = build(&lock, Version::V2019).expect("build");
    assert_eq!(
        hex::encode(m19.encode_body(Version::V2019).expect("enc")),
        "0001000101"
    );
    let unlock = cmd(r#"{"id":"1","type":"vehicle_control","params":{"door":"unlock"}}"#);
    assert_eq!(
        body(&build(&unlock, Version::V2013).expect("build")),
        (0x8500, "00".into())
    );
}

#[test]
fn vehicle_control_2019_takes_an_item_list_after_the_door() {
    let c = cmd(
        r#"{"id":"1","type":"vehicle_control","params":{"door":"unlock","items":[{"id":"0xF001","value":"abcd"}]}}"#,
    );
    let m = build(&c, Version::V2019).expect("build");
    assert_eq!(
        m,
        Message::VehicleControl(VehicleControl::Items {
            items: vec![
                ControlItem {
                    id: 1,
                    param: vec![0]
                },
                ControlItem {
                    id: 0xF001,
                    param: vec![0xab, 0xcd]
                },
            ]
        })
    );
    assert_eq!(
        hex::encode(m.encode_body(Version::V2019).expect("enc")),
        "0002000100f001abcd"
    );
    let items_only =
        cmd(r#"{"id":"1","type":"vehicle_control","params":{"items":[{"id":1,"value":1}]}}"#);
    assert_eq!(
        hex::encode(
            build(&items_only, Version::V2019)
                .expect("build")
                .encode_body(Version::V2019)
                .expect("enc")
        ),
        "0001000101"
    );
}

#[test]
fn vehicle_control_rejections_name_their_field() {
    let cases = [
        (r#"{"door":"open"}"#, Version::V2013, "params.door"),
        (r#"{}"#, Version::V2013, "params.door"),
        (r#"{}"#, Version::V2019, "params.door"),
        (
            r#"{"items":[{"id":1,"value":1}]}"#,
            Version::V2013,
            "params.items",
        ),
        (r#"{"flag":1}"#, Version::V2019, "params.flag"),
        (r#"{"door":"lock","flag":1}"#, Version::V2013, "params.flag"),
        (r#"{"items":[{"value":1}]}"#, Version::V2019, "params.items"),
        (
            r#"{"items":[{"id":1,"value":"0102"}]}"#,
            Version::V2019,
            "params.items",
        ),
        (
            r#"{"items":[{"id":2,"value":300}]}"#,
            Version::V2019,
            "params.items",
        ),
        (
            r#"{"items":[{"id":"0xF001","value":"ab"},{"id":1,"value":1}]}"#,
            Version::V2019,
            "params.items",
        ),
    ];
    for (params, v, want) in cases {
        let json = format!(r#"{{"id":"1","type":"vehicle_control","params":{params}}}"#);
        let e = build(&cmd(&json), v).expect_err(&json);
        assert_eq!(e.field, want, "{json}");
    }
}

#[test]
fn set_params_by_name_and_by_id_is_an_0x8103_typed_by_the_table() {
    let c = cmd(r#"{"id":"p1","type":"set_params","params":{"params":{
        "heartbeat_interval_s":30,"0x0029":10,"plate_color":2,"main_server_address":"10.0.0.1:7611",
        "0xf001":"0102"}}}"#);
    let m = build(&c, Version::V2013).expect("build");
    assert_eq!(m.msg_id(), 0x8103);
    let (id, hex) = body(&m);
    assert_eq!(id, 0x8103);
    let mut want = String::from("05");
    want += "00000001040000001e"; // heartbeat_interval_s DWORD 30
    want += "00000029040000000a"; // report_interval_default_s DWORD 10
    want += "000000840102"; // plate_color BYTE 2
    want += "000000130d31302e302e302e313a37363131"; // STRING "10.0.0.1:7611"
    want += "0000f001020102"; // unknown id: hex bytes
                              // serde_json without preserve_order sorts keys; compare as sets of items.
    let items = |h: &str| {
        let b = hex::decode(h).expect("hex");
        jt808::msg::params::decode_list(0x8103, &b).expect("list")
    };
    let mut got = items(&hex);
    let mut exp = items(&want);
    got.sort_by_key(|p| p.id);
    exp.sort_by_key(|p| p.id);
    assert_eq!(got, exp);
    assert_eq!(hex.get(..2), Some("05"));
}

#[test]
fn set_params_rejections_name_the_parameter() {
    let reject = |json: &str| build(&cmd(json), Version::V2013).expect_err("rejected");
    let e = reject(r#"{"id":"p","type":"set_params","params":{"params":{"plate_color":300}}}"#);
    assert_eq!(e.field, "params.params.plate_color");
    let e = reject(r#"{"id":"p","type":"set_params","params":{"params":{"no_such":1}}}"#);
    assert_eq!(e.field, "params.params.no_such");
    let e = reject(
        r#"{"id":"p","type":"set_params","params":{"params":{"heartbeat_interval_s":"30"}}}"#,
    );
    assert_eq!(e.field, "params.params.heartbeat_interval_s");
    let e = reject(
        r#"{"id":"p","type":"set_params","params":{"params":{"can_id_collection":"0102"}}}"#,
    );
    assert_eq!(e.field, "params.params.can_id_collection");
    let e = reject(r#"{"id":"p","type":"set_params","params":{}}"#);
    assert_eq!(e.field, "params.params");
    let e = reject(r#"{"id":"p","type":"set_params","params":{"params":{}}}"#);
    assert_eq!(e.field, "params.params");
}

#[test]
fn set_params_matches_the_pr5997_capture() {
    // fixtures/jt808/pr5997-8103-interval.json: one item, 0x0029 = 10 s.
    let c = cmd(
        r#"{"id":"p","type":"set_params","params":{"params":{"report_interval_default_s":10}}}"#,
    );
    let m = build(&c, Version::V2013).expect("build");
    assert_eq!(body(&m), (0x8103, "0100000029040000000a".into()));
}

#[test]
fn query_attributes_is_an_empty_0x8107_and_query_params_takes_names() {
    let m = build(
        &cmd(r#"{"id":"a","type":"query_attributes","params":{}}"#),
        Version::V2019,
    )
    .expect("build");
    assert_eq!(body(&m), (0x8107, String::new()));
    let m = build(
        &cmd(r#"{"id":"q","type":"query_params","params":{"ids":["heartbeat_interval_s","0x0029"]}}"#),
        Version::V2013,
    )
    .expect("build");
    assert_eq!(body(&m), (0x8106, "020000000100000029".into()));
}

#[test]
fn alarm_confirm_is_an_0x8203_with_the_report_serial_and_the_alarm_bits() {
    let m = build(
        &cmd(r#"{"id":"1","type":"alarm_confirm","params":{"alarm_serial":42,"alarms":["emergency","illegal_displacement",20]}}"#),
        Version::V2013,
    )
    .expect("build");
    // 0x002a | bits 0, 20 and 28.
    assert_eq!(body(&m), (0x8203, "002a10100001".into()));
    let all = build(
        &cmd(r#"{"id":"1","type":"alarm_confirm","params":{"alarm_type":8}}"#),
        Version::V2019,
    )
    .expect("build");
    assert_eq!(body(&all), (0x8203, "000000000008".into()));
}

proptest::proptest! {
    #[test]
    fn alarm_confirm_params_come_back_from_the_decoded_0x8203(serial: u16, bits in 1u32..) {
        let names: Vec<u32> = (0..32).filter(|b| bits >> b & 1 == 1).collect();
        let json = serde_json::json!({"id": "1", "type": "alarm_confirm",
            "params": {"alarm_serial": serial, "alarms": names}});
        let m = build(&cmd(&json.to_string()), Version::V2013).expect("build");
        let body = m.encode_body(Version::V2013).expect("encode");
        let h = jt808::Header::to_terminal(0x8203, Version::V2013, "013800138000".into(), 1);
        let back = Message::decode(&h, &body).expect("decode");
        proptest::prop_assert_eq!(
            back,
            Message::AlarmConfirm(jt808::msg::AlarmConfirm { alarm_serial: serial, alarm_type: bits })
        );
    }
}

#[test]
fn media_commands_have_their_0x8801_to_0x8805_layouts() {
    let b = |json: &str| body(&build(&cmd(json), Version::V2013).expect(json));
    // channel 1, 3 pictures every 2 s, upload now, default image settings.
    assert_eq!(
        b(r#"{"id":"1","type":"camera_shot","params":{"channel":1,"count":3,"interval_s":2}}"#),
        (0x8801, "0100030002000105804040 80".replace(' ', ""))
    );
    assert_eq!(
        b(r#"{"id":"1","type":"camera_shot","params":{"channel":2,"video":true,"interval_s":30,"save":true}}"#).1[..14],
        *"02ffff001e0101"
    );
    assert_eq!(
        b(r#"{"id":"1","type":"camera_shot","params":{"channel":2,"stop":true}}"#).1[..6],
        *"020000"
    );
    // image, all channels, timed, 2024-01-01T00:00:00Z = 08:00 Beijing, to no limit.
    assert_eq!(
        b(
            r#"{"id":"1","type":"stored_media_search","params":{"event":"timed","start":"2024-01-01T00:00:00Z"}}"#
        ),
        (0x8802, "000001240101080000000000000000".into())
    );
    assert_eq!(
        b(
            r#"{"id":"1","type":"stored_media_upload","params":{"media_type":"video","channel":3,"delete":true}}"#
        ),
        (0x8803, "02030000000000000000000000000001".into())
    );
    assert_eq!(
        b(r#"{"id":"1","type":"single_media_upload","params":{"media_id":4242}}"#),
        (0x8805, "0000109200".into())
    );
}

#[test]
fn upgrade_reads_its_params_and_is_not_built_as_one_message() {
    use jt808::command::{check, upgrade, PackageRef};
    let sha = "ab".repeat(32);
    let c = cmd(&format!(
        r#"{{"id":"1","type":"upgrade","params":{{"package":"{sha}","version":"F2.01","manufacturer":"ABC","upgrade_type":"gnss","package_bytes":512}}}}"#
    ));
    let o = upgrade(&c, Version::V2013).expect("upgrade");
    assert_eq!(o.package, PackageRef::Stored(sha.clone()));
    assert_eq!(o.message.upgrade_type, 52);
    assert_eq!(o.message.maker_id, b"ABC\0\0".to_vec(), "NUL-padded to 5");
    assert_eq!(o.package_bytes, Some(512));
    let o19 = upgrade(&c, Version::V2019).expect("upgrade 2019");
    assert_eq!(o19.message.maker_id.len(), 11);
    assert!(check(&c, Version::V2013).is_ok());
    let built = build(&c, Version::V2013).expect_err("needs its package");
    assert_eq!(built.field, "type");

    let url = cmd(
        r#"{"id":"1","type":"upgrade","params":{"url":"http://fw.example/v2.bin","version":"2","upgrade_type":12}}"#,
    );
    let o = upgrade(&url, Version::V2013).expect("url");
    assert_eq!(
        o.package,
        PackageRef::Url("http://fw.example/v2.bin".into())
    );
    assert_eq!(o.message.upgrade_type, 12);

    for (params, field) in [
        (r#"{"version":"1"}"#, "params.package"),
        (r#"{"package":"xyz","version":"1"}"#, "params.package"),
        (r#"{"url":"ftp://x/y","version":"1"}"#, "params.url"),
        (r#"{"url":"http://x/y"}"#, "params.version"),
        (
            r#"{"url":"http://x/y","version":"1","manufacturer":"TOOLONG"}"#,
            "params.manufacturer",
        ),
        (
            r#"{"url":"http://x/y","version":"1","upgrade_type":"modem"}"#,
            "params.upgrade_type",
        ),
        (
            r#"{"url":"http://x/y","version":"1","package_bytes":1024}"#,
            "params.package_bytes",
        ),
        (
            r#"{"url":"http://x/y","version":"1","package_bytes":0}"#,
            "params.package_bytes",
        ),
    ] {
        let c = cmd(&format!(
            r#"{{"id":"1","type":"upgrade","params":{params}}}"#
        ));
        let e = check(&c, Version::V2013).expect_err(params);
        assert_eq!(e.field, field, "{params}: {e}");
    }
}
