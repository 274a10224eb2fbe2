//! Command bodies of both editions: golden frames from public test suites, encode/decode
//! round trips of every message type, answers and reply styles, and contract commands.

use bytes::Bytes;
use codecs::command::Command;
use codecs::time::LocalTime;
use gbt32960::command::build;
use gbt32960::msg::{
    Activation, ActivationResponse, Control, ControlCommand, EmptyBody, KeyExchange, Login,
    LoginBatteries, Logout, Param, ParamQuery, ParamSet, ParamValue, PlatformLogin, Response,
    Signature, Upgrade,
};
use gbt32960::{
    raw_json, reply, BodyError, Edition, Encryption, Frame, Message, ReplyStyle, ResponseFlag,
};
use proptest::prelude::*;

fn frame(hex_str: &str) -> Frame {
    Frame::parse(&hex::decode(hex_str).unwrap()).unwrap()
}

fn t(year: u8, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> LocalTime {
    LocalTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    }
}

/// Decodes, checks, and re-encodes to the very same bytes.
fn golden(hex_str: &str) -> Message {
    let f = frame(hex_str);
    let m = Message::decode(&f).unwrap();
    let again = m.to_frame(f.edition, &f.vin).unwrap();
    assert_eq!(hex::encode_upper(again.to_wire()), hex_str, "{m:?}");
    m
}

// SmallChi/JTNewEnergy src/JTNE.Protocol.Test/Package/JTNE_0x01_Package_DeviceTest.cs
const LOGIN_2016: &str = "232301FE313233343536373839000000000000000001002A130116173738000131323334353637383939383736353433323130300304313233343435363739383730FD";
// beidouchangxi/rtm_con tests/rtm_con/message_and_data_samples.py "login2025 with one HVBSN"
const LOGIN_2025: &str = "242401FE484155563442474E365335303032323139010036190A1B140202000C3839383630393234373930303233313636363036010130524A50454130304841553041414631333130303139353596";
// rtm_con "ack2025": the time-only answer to the login above
const LOGIN_ACK_2025: &str = "24240101484155563442474E365335303032323139010006190A1B14020236";
// emqx/emqx apps/emqx_gateway_gbt32960/test/emqx_gbt32960_parser_SUITE.erl case_2025_login
const LOGIN_2025_EMQX: &str = "242401FE56494E31323334353637383930313233340100361901010A1E000001313233343536373839303132333435363738393001015041434B313233343536373839303132333435363738393089";
// rtm_con logout2025
const LOGOUT_2025: &str = "242404FE484155563442474E365335303032323139010008190A1B1402020802C8";
// emqx/emqx .../emqx_gbt32960_SUITE.erl t_case12_vihecle_logout
const LOGOUT_2016: &str = "232304FE314731424C353250375452313135353230010008100101023B000001F6";
// rtm_con plt_login2016 / plt_login2025 / plt_logout2016
const PLATFORM_LOGIN_2016: &str = "232305FE484155563442474E365335303032323139010029190A1B1402020802484155563442474E36533530484155563442474E365335303032323139484155018D";
const PLATFORM_LOGIN_2025: &str = "242405FE484155563442474E365335303032323139010029190A1B1402020802484155563442474E36533530484155563442474E365335303032323139484155018D";
const PLATFORM_LOGOUT_2016: &str =
    "232306FE484155563442474E365335303032323139010008190A1B1402020802CA";
// emqx SUITE ser_heartbeat_ack (echo style: the platform's time in a heartbeat answer)
const HEARTBEAT_ACK: &str = "23230701314731424C3532503754523131353532300100061102020B0C0C36";
// JTNewEnergy JTNE_0x08_Package_DeviceTest.cs
const TIME_CALIBRATION: &str = "232308FE3132333435363738390000000000000000010000C6";
// emqx parser suite case_2025_param_query_byte_params (2025 answer: 0x02/0x03 are BYTEs)
const QUERY_ANSWER_2025: &str =
    "2424800156494E313233343536373839303132333401000B190C1209161E02020A0314C4";
// emqx SUITE t_case17_param_query_resp16 (2016 answer, all 16 ids)
const QUERY_ANSWER_2016: &str = "23238001314731424C35325037545231313535323001004C1102020B0C0C100113880200C8037530040A05676F6F676C652E636F6D061F9007312E302E3008302E302E31093C0A003C0B003C0C0A0D0E0E7777772E676F6F676C652E636F6D0F23821001A9";
// emqx parser suite case14_param_setting
const SET_PARAMS_2016: &str = "232381FE314731424C353250375452313135353230010028110C1209161E05011388040A05676F6F676C652E636F6D0D0E0E7777772E676F6F676C652E636F6DB5";
// emqx parser suite case15_terminal_ctrl (alarm)
const CONTROL_ALARM: &str = "232382FE314731424C35325037545231313535323001001F110C1209161E060154686973206973206120616C61726D207465787421212154";
// emqx SUITE t_case19_terminal_ctrl_resp (answer in echo style: time + control id)
const CONTROL_ANSWER: &str = "23238201314731424C3532503754523131353532300100071102020B0C0C02B0";
// rtm_con activation2025 (RSA-2048 public key and signature)
const ACTIVATION_2025: &str = "242409FE48474C48334143463150413731343430380102311906170F0616313233343536373831323334353637380103CE6F0A94CBECE0C56BA8E4EDA6DBF838D5374536B0B5E9B57DB2ABE2ACE31ABC8F9C2A72C8A71C2128E999C354733542B034A5FC521D7C2124BB3C7EFF16C2F1161C11F7E38AEBF17A69A2D68D23D78730B98B0D1C867076F44003786E35B89FDA73130A48211959521CC613C9978F622F328383350BF334E4A7A80208981123D384D4F8685189240F8EBC56DFC4C0628A044466BC13C833DDE1BEA636147892069C6C294923E4C6C8AA64D0E981A0F8135D1C332EF9FDC7C3612B37DECB5DF6CC8E4040CF912B845456D169807B494805EEED7AEC09F22B344F0ED029375F49903BD704515E319509AEACF3C50DAAED3561C9A54879F13FF0790A499C96D3C101000148474C4833414346315041373134343038020100222BAEB29AC4B803F89824FAC02BE45A1BD38CB0892C7C9BF3D5237D0F5F9F365B6A8FA5C6028CDD411EEBADBBD8FFA570BB620F9340B77B9D5B39CB7C9E5B7439EFFBCD6E54FD89CF1B72C2DD3A5ECDE187253870FEA8395D20946867107A2054BDD13703A79A117D1E4815FCCF011096623C25D28E4C53A1084FB388FDCBEEB0D086945EC5C2E4157368738F329CF43D707385E0AD17FBEC26CFB94336C95FF3FFB581D489E814C546D320FBB96914ABDD63C392F1B132A1CE0E1C757A5316D6922EFE3C74DECEE26B57B1320F8D0A1C4E5DC83B352E407FB76559D125AEE04DD545C9F56115DA8B460D15E825AFC8072EFC1A2C84BF84FC3F5AEC11063DCF0000BD";

#[test]
fn login_2016_reads_time_seq_iccid_and_ress_codes() {
    let Message::VehicleLogin(l) = golden(LOGIN_2016) else {
        panic!()
    };
    assert_eq!(l.time, t(19, 1, 22, 23, 55, 56));
    assert_eq!(l.seq, 1);
    assert_eq!(l.iccid, "12345678998765432100");
    assert_eq!(
        l.batteries,
        LoginBatteries::Ress2016 {
            ress_code_len: 4,
            ress_codes: vec!["1234".into(), "4567".into(), "9870".into()]
        }
    );
}

#[test]
fn login_2025_reads_bms_count_and_24_character_pack_codes() {
    let Message::VehicleLogin(l) = golden(LOGIN_2025) else {
        panic!()
    };
    assert_eq!(l.seq, 12);
    assert_eq!(l.iccid, "89860924790023166606");
    assert_eq!(
        l.batteries,
        LoginBatteries::Packs2025 {
            pack_codes: vec![vec!["0RJPEA00HAU0AAF131001955".into()]]
        }
    );
    let Message::VehicleLogin(l) = golden(LOGIN_2025_EMQX) else {
        panic!()
    };
    assert_eq!(l.time, t(25, 1, 1, 10, 30, 0));
    assert_eq!(
        l.batteries,
        LoginBatteries::Packs2025 {
            pack_codes: vec![vec!["PACK12345678901234567890".into()]]
        }
    );
}

#[test]
fn logouts_of_both_editions_carry_the_login_sequence() {
    assert_eq!(
        golden(LOGOUT_2025),
        Message::VehicleLogout(Logout {
            time: t(25, 10, 27, 20, 2, 2),
            seq: 2050
        })
    );
    assert_eq!(
        golden(LOGOUT_2016),
        Message::VehicleLogout(Logout {
            time: t(16, 1, 1, 2, 59, 0),
            seq: 1
        })
    );
    assert!(matches!(
        golden(PLATFORM_LOGOUT_2016),
        Message::PlatformLogout(Logout { seq: 2050, .. })
    ));
}

#[test]
fn platform_login_reads_user_password_and_encryption_rule_in_both_editions() {
    for h in [PLATFORM_LOGIN_2016, PLATFORM_LOGIN_2025] {
        assert_eq!(
            golden(h),
            Message::PlatformLogin(PlatformLogin {
                time: t(25, 10, 27, 20, 2, 2),
                seq: 2050,
                user: "HAUV4BGN6S50".into(),
                password: "HAUV4BGN6S5002219HAU".into(),
                encryption_rule: 1,
            })
        );
    }
}

#[test]
fn time_calibration_request_has_an_empty_body() {
    assert_eq!(
        golden(TIME_CALIBRATION),
        Message::TimeCalibration(EmptyBody::default())
    );
}

#[test]
fn answers_in_time_only_and_echo_style_both_decode() {
    assert_eq!(
        golden(LOGIN_ACK_2025),
        Message::Response(Response {
            command: 0x01,
            flag: ResponseFlag::Success,
            time: Some(t(25, 10, 27, 20, 2, 2)),
            params: None,
            rest: vec![],
        })
    );
    assert_eq!(
        golden(HEARTBEAT_ACK),
        Message::Response(Response {
            command: 0x07,
            flag: ResponseFlag::Success,
            time: Some(t(17, 2, 2, 11, 12, 12)),
            params: None,
            rest: vec![],
        })
    );
    assert_eq!(
        golden(CONTROL_ANSWER),
        Message::Response(Response {
            command: 0x82,
            flag: ResponseFlag::Success,
            time: Some(t(17, 2, 2, 11, 12, 12)),
            params: None,
            rest: vec![0x02],
        })
    );
}

#[test]
fn query_answer_2025_reads_report_periods_as_bytes() {
    let Message::Response(r) = golden(QUERY_ANSWER_2025) else {
        panic!()
    };
    assert_eq!(
        r.params,
        Some(vec![
            Param {
                id: 0x02,
                value: ParamValue::Byte(10)
            },
            Param {
                id: 0x03,
                value: ParamValue::Byte(20)
            },
        ])
    );
}

#[test]
fn query_answer_2016_reads_all_sixteen_parameters_with_their_widths() {
    let Message::Response(r) = golden(QUERY_ANSWER_2016) else {
        panic!()
    };
    let params = r.params.unwrap();
    let values: Vec<ParamValue> = params.iter().map(|p| p.value.clone()).collect();
    use ParamValue::*;
    assert_eq!(
        values,
        vec![
            Word(5000),
            Word(200),
            Word(30000),
            Byte(10),
            Text("google.com".into()),
            Word(8080),
            Text("1.0.0".into()),
            Text("0.0.1".into()),
            Byte(60),
            Word(60),
            Word(60),
            Byte(10),
            Byte(14),
            Text("www.google.com".into()),
            Word(9090),
            Byte(1),
        ]
    );
    let ids: Vec<u8> = params.iter().map(|p| p.id).collect();
    assert_eq!(ids, (1..=16).collect::<Vec<u8>>());
}

#[test]
fn set_params_reads_domains_with_the_length_item_before_them() {
    let Message::SetParams(s) = golden(SET_PARAMS_2016) else {
        panic!()
    };
    assert_eq!(s.time, t(17, 12, 18, 9, 22, 30));
    assert_eq!(s.params.len(), 5);
    assert_eq!(s.params[2].value, ParamValue::Text("google.com".into()));
    assert_eq!(s.params[4].value, ParamValue::Text("www.google.com".into()));
}

#[test]
fn terminal_control_alarm_reads_level_and_text() {
    assert_eq!(
        golden(CONTROL_ALARM),
        Message::TerminalControl(Control {
            time: t(17, 12, 18, 9, 22, 30),
            command: ControlCommand::Alarm {
                level: 1,
                text: "This is a alarm text!!!".into()
            }
        })
    );
}

#[test]
fn activation_2025_reads_chip_key_vin_and_signature() {
    let Message::Activation(a) = golden(ACTIVATION_2025) else {
        panic!()
    };
    assert_eq!(a.time, t(25, 6, 23, 15, 6, 22));
    assert_eq!(a.chip_id, "1234567812345678");
    assert_eq!(a.public_key.len(), 259);
    assert_eq!(a.vin, "HGLH3ACF1PA714408");
    assert_eq!(a.signature.algorithm, 2);
    assert_eq!(a.signature.r.len(), 256);
    assert!(a.signature.s.is_empty());
}

#[test]
fn activation_in_a_2016_frame_is_an_unknown_command() {
    let mut f = frame(ACTIVATION_2025);
    f.edition = Edition::V2016;
    assert!(matches!(
        Message::decode(&f).unwrap(),
        Message::Unknown { command: 0x09, .. }
    ));
}

#[test]
fn unknown_command_keeps_its_body() {
    let f = Frame {
        edition: Edition::V2016,
        command: 0xC0,
        response: 0xFE,
        vin: "V".into(),
        encryption: Encryption::None,
        data: Bytes::from_static(&[1, 2, 3]),
    };
    assert_eq!(
        Message::decode(&f).unwrap(),
        Message::Unknown {
            command: 0xC0,
            data: Bytes::from_static(&[1, 2, 3])
        }
    );
}

#[test]
fn short_login_body_is_a_too_short_error() {
    let mut f = frame(LOGIN_2016);
    f.data = f.data.slice(..10);
    assert!(matches!(
        Message::decode(&f),
        Err(BodyError::TooShort { command: 1, .. })
    ));
}

// ---- replies ----

#[test]
fn time_only_login_reply_reproduces_rtm_cons_2025_answer() {
    let login = frame(LOGIN_2025);
    let now = t(26, 1, 1, 0, 0, 0);
    let ack = reply(&login, ResponseFlag::Success, now, ReplyStyle::TimeOnly);
    assert_eq!(hex::encode_upper(ack.to_wire()), LOGIN_ACK_2025);
}

#[test]
fn echo_heartbeat_reply_reproduces_emqxs_answer() {
    let hb = Frame {
        edition: Edition::V2016,
        command: 0x07,
        response: 0xFE,
        vin: "1G1BL52P7TR115520".into(),
        encryption: Encryption::None,
        data: Bytes::new(),
    };
    let ack = reply(
        &hb,
        ResponseFlag::Success,
        t(17, 2, 2, 11, 12, 12),
        ReplyStyle::Echo,
    );
    assert_eq!(hex::encode_upper(ack.to_wire()), HEARTBEAT_ACK);
}

#[test]
fn echo_reply_puts_the_platform_time_first_and_keeps_the_rest() {
    let login = frame(LOGIN_2016);
    let now = t(24, 5, 6, 7, 8, 9);
    let ack = reply(&login, ResponseFlag::Error, now, ReplyStyle::Echo);
    assert_eq!(ack.response, 0x02);
    assert_eq!(&ack.data[..6], &[24, 5, 6, 7, 8, 9]);
    assert_eq!(&ack.data[6..], &login.data[6..]);
    let time_cal = frame(TIME_CALIBRATION);
    let ack = reply(&time_cal, ResponseFlag::Success, now, ReplyStyle::TimeOnly);
    assert_eq!(&ack.data[..], &[24, 5, 6, 7, 8, 9]);
}

// ---- raw JSON ----

#[test]
fn raw_json_has_the_frame_header_and_the_typed_message() {
    let f = frame(LOGIN_2016);
    let v = raw_json(&f, &Message::decode(&f).unwrap());
    assert_eq!(v["frame"]["edition"], "2016");
    assert_eq!(v["frame"]["command"], "0x01");
    assert_eq!(v["frame"]["response"], "0xfe");
    assert_eq!(v["frame"]["vin"], "123456789");
    assert_eq!(v["frame"]["encryption"], "none");
    assert_eq!(v["message"]["type"], "vehicle_login");
    assert_eq!(v["message"]["ress_codes"][2], "9870");
    let f = frame(QUERY_ANSWER_2025);
    let v = raw_json(&f, &Message::decode(&f).unwrap());
    assert_eq!(v["message"]["params"][0]["name"], "report_period_s");
    assert_eq!(v["message"]["params"][0]["value"], 10);
}

// ---- contract commands ----

fn cmd(json: &str) -> Command {
    Command::parse(json.as_bytes()).unwrap()
}

const NOW: LocalTime = LocalTime {
    year: 25,
    month: 11,
    day: 1,
    hour: 8,
    minute: 0,
    second: 0,
};

#[test]
fn query_params_without_ids_asks_for_every_standard_parameter() {
    let m = build(
        &cmd(r#"{"id":"c","type":"query_params"}"#),
        Edition::V2016,
        NOW,
    )
    .unwrap();
    assert_eq!(
        m,
        Message::QueryParams(ParamQuery {
            time: NOW,
            ids: (1..=16).collect()
        })
    );
    let m = build(
        &cmd(
            r#"{"id":"c","type":"query_params","params":{"ids":["heartbeat_period_s","0x0f",3]}}"#,
        ),
        Edition::V2025,
        NOW,
    )
    .unwrap();
    assert_eq!(
        m,
        Message::QueryParams(ParamQuery {
            time: NOW,
            ids: vec![0x09, 0x0F, 0x03]
        })
    );
}

#[test]
fn set_params_uses_the_editions_width_and_names_the_bad_field() {
    let c = cmd(r#"{"id":"c","type":"set_params","params":{"params":{"report_period_s":300}}}"#);
    let m = build(&c, Edition::V2016, NOW).unwrap();
    let Message::SetParams(s) = &m else { panic!() };
    assert_eq!(s.params[0].value, ParamValue::Word(300));
    // The same value is too wide for the 2025 BYTE.
    let e = build(&c, Edition::V2025, NOW).unwrap_err();
    assert_eq!(e.field, "params.params.report_period_s");
    assert!(e.reason.contains("2025"), "{}", e.reason);
    // And a 2025 value encodes as one byte.
    let c = cmd(r#"{"id":"c","type":"set_params","params":{"params":{"0x02":10}}}"#);
    let m = build(&c, Edition::V2025, NOW).unwrap();
    let data = m.encode_data(Edition::V2025).unwrap();
    assert_eq!(&data[6..], &[1, 0x02, 10]);
}

#[test]
fn set_params_domain_brings_its_length_item() {
    let c = cmd(
        r#"{"id":"c","type":"set_params","params":{"params":{"platform_domain":"google.com","platform_port":8080}}}"#,
    );
    let m = build(&c, Edition::V2016, NOW).unwrap();
    let data = m.encode_data(Edition::V2016).unwrap();
    assert_eq!(
        hex::encode(&data[6..]),
        "03040a05676f6f676c652e636f6d061f90"
    );
}

#[test]
fn set_params_refuses_versions_lengths_unknown_names_and_user_ids() {
    for (params, field) in [
        (
            r#"{"hardware_version":"1.0.0"}"#,
            "params.params.hardware_version",
        ),
        (
            r#"{"platform_domain_len":3}"#,
            "params.params.platform_domain_len",
        ),
        (r#"{"no_such_param":3}"#, "params.params.no_such_param"),
        (r#"{"0x80":3}"#, "params.params.0x80"),
        (r#"{"platform_port":70000}"#, "params.params.platform_port"),
        (r#"{"platform_domain":5}"#, "params.params.platform_domain"),
    ] {
        let c = cmd(&format!(
            r#"{{"id":"c","type":"set_params","params":{{"params":{params}}}}}"#
        ));
        assert_eq!(build(&c, Edition::V2016, NOW).unwrap_err().field, field);
    }
}

#[test]
fn terminal_control_accepts_every_control_by_name() {
    for (name, id) in [
        ("shutdown", 2),
        ("reset", 3),
        ("factory_reset", 4),
        ("disconnect", 5),
        ("open_sampling_link", 7),
    ] {
        let c = cmd(&format!(
            r#"{{"id":"c","type":"terminal_control","params":{{"command":"{name}"}}}}"#
        ));
        let m = build(&c, Edition::V2016, NOW).unwrap();
        let Message::TerminalControl(ctrl) = &m else {
            panic!()
        };
        assert_eq!(ctrl.command.id(), id);
        assert_eq!(m.encode_data(Edition::V2016).unwrap()[6..], [id]);
    }
    let c = cmd(
        r#"{"id":"c","type":"terminal_control","params":{"command":"alarm","level":3,"text":"停车检查"}}"#,
    );
    let Message::TerminalControl(ctrl) = build(&c, Edition::V2025, NOW).unwrap() else {
        panic!()
    };
    assert_eq!(
        ctrl.command,
        ControlCommand::Alarm {
            level: 3,
            text: "停车检查".into()
        }
    );
}

#[test]
fn terminal_control_upgrade_builds_the_separated_fields() {
    let c = cmd(
        r#"{"id":"c","type":"terminal_control","params":{"command":"upgrade","apn":"cmnet","address":"10.1.2.3","port":21,"manufacturer":"ABCD","hardware_version":"H1.00","firmware_version":"F2.00","url":"ftp://10.1.2.3/fw.bin","timeout_min":30}}"#,
    );
    let m = build(&c, Edition::V2016, NOW).unwrap();
    let data = m.encode_data(Edition::V2016).unwrap();
    let mut want = vec![0x01];
    want.extend_from_slice(b"cmnet;;;");
    want.extend_from_slice(&[0, 0, 10, 1, 2, 3, b';', 0, 21, b';']);
    want.extend_from_slice(b"ABCD;H1.00;F2.00;ftp://10.1.2.3/fw.bin;");
    want.extend_from_slice(&[0, 30]);
    assert_eq!(&data[6..], &want[..]);
    let f = m.to_frame(Edition::V2016, "LVIN0000000000001").unwrap();
    assert_eq!(Message::decode(&f).unwrap(), m);
    let bad =
        cmd(r#"{"id":"c","type":"terminal_control","params":{"command":"upgrade","url":"a;b"}}"#);
    assert_eq!(
        build(&bad, Edition::V2016, NOW).unwrap_err().field,
        "params.url"
    );
    let bad =
        cmd(r#"{"id":"c","type":"terminal_control","params":{"command":"upgrade","speed":1}}"#);
    assert_eq!(
        build(&bad, Edition::V2016, NOW).unwrap_err().field,
        "params.speed"
    );
}

#[test]
fn raw_command_sends_any_command_byte_and_body() {
    let c = cmd(r#"{"id":"c","type":"raw","params":{"msg_id":"0xC1","body_hex":"01 02 ff"}}"#);
    let m = build(&c, Edition::V2025, NOW).unwrap();
    let f = m.to_frame(Edition::V2025, "LVIN0000000000001").unwrap();
    assert_eq!((f.command, f.response), (0xC1, 0xFE));
    assert_eq!(&f.data[..], &[1, 2, 0xFF]);
    let bad = cmd(r#"{"id":"c","type":"raw","params":{"msg_id":"0x1FF"}}"#);
    assert_eq!(
        build(&bad, Edition::V2025, NOW).unwrap_err().field,
        "params.msg_id"
    );
}

#[test]
fn unsupported_command_type_names_the_type_field() {
    let c = cmd(r#"{"id":"c","type":"text","params":{"text":"hi"}}"#);
    assert_eq!(build(&c, Edition::V2016, NOW).unwrap_err().field, "type");
}

// ---- round trips of every message type, both editions ----

fn time() -> impl Strategy<Value = LocalTime> {
    any::<[u8; 6]>().prop_map(|[a, b, c, d, e, f]| t(a, b, c, d, e, f))
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9._-]{{0,{max}}}")).unwrap()
}

fn exact(len: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Z0-9]{{{len}}}")).unwrap()
}

fn bytes_vec(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn edition() -> impl Strategy<Value = Edition> {
    prop_oneof![Just(Edition::V2016), Just(Edition::V2025)]
}

fn login(ed: Edition) -> BoxedStrategy<Message> {
    let batteries = match ed {
        Edition::V2016 => (0usize..=20)
            .prop_flat_map(|m| (Just(m as u8), proptest::collection::vec(exact(m), 0..6)))
            .prop_map(|(m, codes)| LoginBatteries::Ress2016 {
                ress_code_len: m,
                ress_codes: if m == 0 { vec![] } else { codes },
            })
            .boxed(),
        Edition::V2025 => {
            proptest::collection::vec(proptest::collection::vec(exact(24), 0..3), 0..4)
                .prop_map(|pack_codes| LoginBatteries::Packs2025 { pack_codes })
                .boxed()
        }
    };
    (time(), any::<u16>(), exact(20), batteries)
        .prop_map(|(time, seq, iccid, batteries)| {
            Message::VehicleLogin(Login {
                time,
                seq,
                iccid,
                batteries,
            })
        })
        .boxed()
}

fn param(ed: Edition) -> BoxedStrategy<Vec<Param>> {
    // One item of each settable layout (domains with their length item first).
    let one = prop_oneof![
        (1u8..=16)
            .prop_filter("plain ids", |id| ![4, 5, 7, 8, 13, 14].contains(id))
            .prop_flat_map(move |id| {
                let word =
                    gbt32960::msg::params::kind(id, ed) == Some(gbt32960::msg::ParamKind::Word);
                any::<u16>().prop_map(move |v| {
                    vec![Param {
                        id,
                        value: if word {
                            ParamValue::Word(v)
                        } else {
                            ParamValue::Byte(v as u8)
                        },
                    }]
                })
            }),
        (prop_oneof![Just(4u8), Just(13u8)], text(40)).prop_map(|(len_id, d)| vec![
            Param {
                id: len_id,
                value: ParamValue::Byte(d.len() as u8)
            },
            Param {
                id: len_id + 1,
                value: ParamValue::Text(d)
            },
        ]),
    ];
    proptest::collection::vec(one, 0..6)
        .prop_map(|v| v.into_iter().flatten().collect())
        .boxed()
}

fn version_params() -> impl Strategy<Value = Vec<Param>> {
    (prop_oneof![Just(7u8), Just(8u8)], "[A-Z0-9.]{1,5}").prop_map(|(id, v)| {
        vec![Param {
            id,
            value: ParamValue::Text(v),
        }]
    })
}

fn control() -> impl Strategy<Value = ControlCommand> {
    let upgrade = (
        (text(10), text(10), text(10)),
        (any::<[u8; 6]>(), any::<u16>()),
        (exact(4), exact(5), exact(5)),
        ("ftp://[a-z0-9./]{0,30}", proptest::option::of(any::<u16>())),
    )
        .prop_map(
            |((apn, user, password), (a, p), (m, h, f), (url, timeout_min))| {
                ControlCommand::Upgrade(Upgrade {
                    apn,
                    user,
                    password,
                    address: Some(a),
                    port: Some(p),
                    manufacturer: m,
                    hardware_version: h,
                    firmware_version: f,
                    url,
                    timeout_min,
                })
            },
        );
    prop_oneof![
        upgrade,
        Just(ControlCommand::Shutdown),
        Just(ControlCommand::Reset),
        Just(ControlCommand::FactoryReset),
        Just(ControlCommand::Disconnect),
        (any::<u8>(), "[a-zA-Z0-9 !停车检查]{0,30}")
            .prop_map(|(level, text)| ControlCommand::Alarm { level, text }),
        Just(ControlCommand::OpenSamplingLink),
        (prop_oneof![Just(0u8), 8u8..=0xFF], bytes_vec(20))
            .prop_map(|(id, params)| ControlCommand::Other { id, params }),
    ]
}

fn flag() -> impl Strategy<Value = ResponseFlag> {
    prop_oneof![
        Just(ResponseFlag::Success),
        Just(ResponseFlag::Error),
        Just(ResponseFlag::VinDuplicate),
        Just(ResponseFlag::VinUnknown),
        Just(ResponseFlag::SignatureError),
        Just(ResponseFlag::StructureError),
        Just(ResponseFlag::DecryptionError),
    ]
}

fn response(ed: Edition) -> BoxedStrategy<Message> {
    let timed = (
        prop_oneof![1u8..=0x7F, 0x81u8..=0xFE],
        flag(),
        time(),
        bytes_vec(30),
    )
        .prop_map(|(command, flag, time, rest)| Response {
            command,
            flag,
            time: Some(time),
            params: None,
            rest,
        });
    let short = (any::<u8>(), flag(), bytes_vec(6)).prop_map(|(command, flag, rest)| Response {
        command,
        flag,
        time: None,
        params: None,
        rest,
    });
    let query = (flag(), time(), param(ed)).prop_map(|(flag, time, params)| Response {
        command: 0x80,
        flag,
        time: Some(time),
        params: Some(params),
        rest: vec![],
    });
    prop_oneof![timed, short, query]
        .prop_map(Message::Response)
        .boxed()
}

fn message(ed: Edition) -> BoxedStrategy<Message> {
    let common = prop_oneof![
        login(ed),
        (time(), any::<u16>()).prop_map(|(time, seq)| Message::VehicleLogout(Logout { time, seq })),
        (time(), any::<u16>())
            .prop_map(|(time, seq)| Message::PlatformLogout(Logout { time, seq })),
        (time(), any::<u16>(), text(12), text(20), any::<u8>()).prop_map(
            |(time, seq, user, password, encryption_rule)| Message::PlatformLogin(PlatformLogin {
                time,
                seq,
                user,
                password,
                encryption_rule
            })
        ),
        bytes_vec(8).prop_map(|extra| Message::Heartbeat(EmptyBody { extra })),
        bytes_vec(8).prop_map(|extra| Message::TimeCalibration(EmptyBody { extra })),
        (time(), proptest::collection::vec(any::<u8>(), 0..30))
            .prop_map(|(time, ids)| Message::QueryParams(ParamQuery { time, ids })),
        (time(), prop_oneof![param(ed), version_params().boxed()])
            .prop_map(|(time, params)| Message::SetParams(ParamSet { time, params })),
        (time(), control())
            .prop_map(|(time, command)| Message::TerminalControl(Control { time, command })),
        response(ed),
        (prop_oneof![0x0Cu8..=0x7F, 0x83u8..=0xFE], bytes_vec(40)).prop_map(|(command, d)| {
            Message::Unknown {
                command,
                data: Bytes::from(d),
            }
        }),
    ];
    match ed {
        Edition::V2016 => common.boxed(),
        Edition::V2025 => prop_oneof![
            common,
            (
                time(),
                exact(16),
                bytes_vec(300),
                exact(17),
                any::<u8>(),
                bytes_vec(64),
                bytes_vec(64)
            )
                .prop_map(|(time, chip_id, public_key, vin, algorithm, r, s)| {
                    Message::Activation(Activation {
                        time,
                        chip_id,
                        public_key,
                        vin,
                        signature: Signature { algorithm, r, s },
                    })
                }),
            (any::<u8>(), any::<u8>()).prop_map(|(status, info)| {
                Message::ActivationResponse(ActivationResponse { status, info })
            }),
            (any::<u8>(), bytes_vec(40), time(), time()).prop_map(
                |(key_type, key, valid_from, valid_until)| Message::KeyExchange(KeyExchange {
                    key_type,
                    key,
                    valid_from,
                    valid_until
                })
            ),
        ]
        .boxed(),
    }
}

fn message_with_edition() -> impl Strategy<Value = (Edition, Message)> {
    edition().prop_flat_map(|ed| (Just(ed), message(ed)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_type_of_both_editions_round_trips_through_the_wire(
        (ed, m) in message_with_edition()
    ) {
        let f = m.to_frame(ed, "LSVAU2180N2183294").unwrap();
        let wire = f.to_wire();
        let back = Frame::parse(&wire).unwrap();
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(Message::decode(&back).unwrap(), m.clone());
        prop_assert_eq!(back.command, m.command());
        // The JSON form always serializes.
        prop_assert!(raw_json(&back, &m)["message"]["type"].is_string());
    }

    #[test]
    fn separator_heavy_upgrade_bodies_that_decode_re_encode_to_the_same_command(
        params in proptest::collection::vec(
            prop_oneof![Just(b';'), Just(b'a'), Just(b':'), Just(b'/'), Just(0u8), any::<u8>()],
            0..60,
        ),
    ) {
        let mut data = vec![25, 11, 1, 8, 0, 0, 0x01];
        data.extend_from_slice(&params);
        let f = Frame {
            edition: Edition::V2016,
            command: 0x82,
            response: 0xFE,
            vin: "V".into(),
            encryption: Encryption::None,
            data: Bytes::from(data),
        };
        // A text field read with a `;` in it (the URL before a timeout that is itself
        // `;` bytes...) cannot be written back; everything else must come back the same.
        if let Ok(m) = Message::decode(&f) {
            if let Ok(again) = m.to_frame(Edition::V2016, "V") {
                prop_assert_eq!(Message::decode(&again).unwrap(), m);
            }
        }
    }

    #[test]
    fn arbitrary_bodies_of_every_command_never_panic(
        command in any::<u8>(),
        response in prop_oneof![Just(0xFEu8), 1u8..=7],
        ed in edition(),
        data in bytes_vec(300),
    ) {
        let f = Frame {
            edition: ed,
            command,
            response,
            vin: "V".into(),
            encryption: Encryption::None,
            data: Bytes::from(data),
        };
        if let Ok(m) = Message::decode(&f) {
            // What decodes re-encodes to a body that decodes the same.
            if let Ok(again) = m.to_frame(ed, "V") {
                if m.command() == command && m.response_flag() == response {
                    prop_assert_eq!(Message::decode(&again).unwrap(), m);
                }
            }
        }
    }
}

#[test]
fn message_of_the_other_edition_is_refused_on_encode() {
    let ar = Message::ActivationResponse(ActivationResponse { status: 1, info: 0 });
    assert_eq!(
        ar.encode_data(Edition::V2016),
        Err(BodyError::WrongEdition {
            command: 0x0A,
            edition: 2016
        })
    );
}

#[test]
fn encrypted_request_is_answered_in_plaintext_with_the_platform_time() {
    let mut login = frame(LOGIN_2016);
    login.encryption = Encryption::Aes128;
    let now = t(24, 5, 6, 7, 8, 9);
    for style in [ReplyStyle::TimeOnly, ReplyStyle::Echo] {
        let ack = reply(&login, ResponseFlag::DecryptionError, now, style);
        assert_eq!(ack.encryption, Encryption::None);
        assert_eq!(ack.response, 0x07);
        assert_eq!(&ack.data[..], &[24, 5, 6, 7, 8, 9]);
    }
}

#[test]
fn query_answer_with_a_user_defined_id_keeps_the_values_raw() {
    // The 2025 answer above with its second id changed to 0x80 (user defined, width unknown).
    let mut f = frame(QUERY_ANSWER_2025);
    let mut data = f.data.to_vec();
    data[9] = 0x80;
    f.data = Bytes::from(data.clone());
    let Message::Response(r) = Message::decode(&f).unwrap() else {
        panic!()
    };
    assert_eq!(r.params, None);
    assert_eq!(r.rest, data[6..].to_vec());
}

/// Value width in bytes of every parameter id (2016 table B.12, 2025 table B.8); the domains
/// (0x05, 0x0E) take the length item before them, here 3 bytes.
const PARAM_WIDTHS: &[(u8, usize, usize)] = &[
    (0x01, 2, 2),
    (0x02, 2, 1),
    (0x03, 2, 1),
    (0x04, 1, 1),
    (0x05, 3, 3),
    (0x06, 2, 2),
    (0x07, 5, 5),
    (0x08, 5, 5),
    (0x09, 1, 1),
    (0x0A, 2, 2),
    (0x0B, 2, 2),
    (0x0C, 1, 1),
    (0x0D, 1, 1),
    (0x0E, 3, 3),
    (0x0F, 2, 2),
    (0x10, 1, 1),
];

fn value_of_width(id: u8, width: usize) -> ParamValue {
    match (id, width) {
        (0x04 | 0x0D, _) => ParamValue::Byte(3),
        (0x05 | 0x0E, _) => ParamValue::Text("a.b".into()),
        (0x07 | 0x08, _) => ParamValue::Text("1.2.3".into()),
        (_, 1) => ParamValue::Byte(0xA5),
        (_, _) => ParamValue::Word(0xA55A),
    }
}

#[test]
fn every_parameter_id_of_both_editions_has_its_editions_width_in_a_query_answer() {
    for ed in [Edition::V2016, Edition::V2025] {
        let params: Vec<Param> = PARAM_WIDTHS
            .iter()
            .map(|&(id, w16, w25)| Param {
                id,
                value: value_of_width(id, if ed == Edition::V2016 { w16 } else { w25 }),
            })
            .collect();
        let m = Message::Response(Response {
            command: 0x80,
            flag: ResponseFlag::Success,
            time: Some(t(25, 11, 1, 8, 0, 0)),
            params: Some(params.clone()),
            rest: vec![],
        });
        let data = m.encode_data(ed).unwrap();
        let widths: usize = PARAM_WIDTHS
            .iter()
            .map(|&(_, w16, w25)| 1 + if ed == Edition::V2016 { w16 } else { w25 })
            .sum();
        assert_eq!(data.len(), 6 + 1 + widths, "{ed:?}");
        let f = m.to_frame(ed, "LSVAU2180N2183294").unwrap();
        let back = Message::decode(&Frame::parse(&f.to_wire()).unwrap()).unwrap();
        assert_eq!(back, m, "{ed:?}");
        // The same items as a 0x81 setting, versions left out (read-only).
        let settable: Vec<Param> = params
            .into_iter()
            .filter(|p| p.id != 0x07 && p.id != 0x08)
            .collect();
        let set = Message::SetParams(ParamSet {
            time: t(25, 11, 1, 8, 0, 0),
            params: settable,
        });
        let f = set.to_frame(ed, "LSVAU2180N2183294").unwrap();
        assert_eq!(Message::decode(&f).unwrap(), set, "{ed:?}");
        // And every id as a 0x80 query.
        let q = Message::QueryParams(ParamQuery {
            time: t(25, 11, 1, 8, 0, 0),
            ids: gbt32960::msg::params::all_ids().collect(),
        });
        let f = q.to_frame(ed, "LSVAU2180N2183294").unwrap();
        assert_eq!(f.data.len(), 6 + 1 + 16);
        assert_eq!(Message::decode(&f).unwrap(), q);
    }
}

#[test]
fn a_2016_word_value_in_a_2025_setting_is_refused_not_truncated() {
    let set = Message::SetParams(ParamSet {
        time: t(25, 11, 1, 8, 0, 0),
        params: vec![Param {
            id: 0x02,
            value: ParamValue::Word(10),
        }],
    });
    assert!(set.to_frame(Edition::V2016, "V").is_ok());
    assert_eq!(
        set.to_frame(Edition::V2025, "V"),
        Err(BodyError::BadParamValue {
            command: 0x81,
            id: 0x02
        })
    );
}
