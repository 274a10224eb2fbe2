//! Platform (downlink) messages: every real fixture frame of a typed platform id decodes
//! to its typed body and writes the same bytes back, and `decode(encode(m)) == m` for
//! every platform type in every edition whose layout differs.

use codecs::time::LocalTime;
use jt808::msg::*;
use jt808::{ChecksumPolicy, Encryption, Frame, Header, Message, Version};
use proptest::prelude::*;
use proptest::strategy::Union;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/jt808");

/// The header and decoded message of fixture `id`; the typed body must re-encode exactly.
fn fixture(id: &str) -> (Header, Message) {
    let text = std::fs::read_to_string(format!("{DIR}/{id}.json")).expect("fixture file");
    let fx: serde_json::Value = serde_json::from_str(&text).expect("fixture json");
    let wire = hex::decode(fx["hex"].as_str().expect("hex")).expect("hex digits");
    let inner = wire.get(1..wire.len() - 1).expect("delimiters");
    let content = jt808::escape::unescape(inner).expect("escapes");
    let f = Frame::parse(&content, ChecksumPolicy::Strict).expect("frame");
    let m = Message::decode(&f.header, &f.body).expect("body");
    assert_eq!(
        m.encode_body(f.header.version).expect("encode"),
        f.body.to_vec(),
        "{id}: the typed body writes the same bytes"
    );
    (f.header.clone(), m)
}

fn msg(id: &str) -> Message {
    fixture(id).1
}

fn header(msg_id: u16, version: Version) -> Header {
    Header {
        msg_id,
        version,
        protocol_version: 0,
        phone: "013912345678".into(),
        serial: 1,
        encryption: Encryption::None,
        package: None,
    }
}

fn decode(msg_id: u16, version: Version, body: &[u8]) -> Message {
    Message::decode(&header(msg_id, version), body).expect("decode")
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

// ---- real frames -------------------------------------------------------------------

#[test]
fn set_params_fixture_sets_the_default_report_interval() {
    assert_eq!(
        msg("pr5997-8103-interval"),
        Message::SetParams(SetParams {
            params: vec![Param {
                id: 0x0029,
                value: ParamValue::U32(10)
            }]
        })
    );
}

#[test]
fn query_all_params_fixture_is_the_empty_0x8104() {
    assert_eq!(msg("smallchi-8104-query-params"), Message::QueryAllParams);
}

#[test]
fn terminal_control_fixtures_carry_command_word_and_args() {
    assert_eq!(
        msg("emqx-8105-control"),
        Message::TerminalControl(TerminalControl {
            command: 200,
            args: "ABCD".into()
        })
    );
    assert_eq!(
        msg("yzh-8105-2013"),
        Message::TerminalControl(TerminalControl {
            command: 123,
            args: "as;123;zxc;123;".into()
        })
    );
}

#[test]
fn query_params_fixture_lists_six_ids() {
    assert_eq!(
        msg("yzh-8106-2013"),
        Message::QueryParams(QueryParams {
            ids: vec![1, 3, 5, 7, 9, 127]
        })
    );
}

#[test]
fn upgrade_package_fixture_keeps_the_nul_padded_maker_id_as_bytes() {
    assert_eq!(
        msg("yzh-8108-2013"),
        Message::UpgradePackage(UpgradePackage {
            upgrade_type: 52,
            maker_id: b"\0\0asd".to_vec(),
            version: "1.1.12".into(),
            package: (1..=9).collect(),
        })
    );
}

#[test]
fn temporary_tracking_and_alarm_confirm_fixtures() {
    assert_eq!(
        msg("yzh-8202-2013"),
        Message::TemporaryTracking(TemporaryTracking {
            interval_s: 5,
            validity_s: 600
        })
    );
    assert_eq!(
        msg("yzh-8203-2013"),
        Message::AlarmConfirm(AlarmConfirm {
            alarm_serial: 123,
            alarm_type: 40286
        })
    );
}

#[test]
fn text_fixtures_are_gbk_and_2019_adds_the_text_type() {
    let text = "测试123@456#abc!...结束".to_string();
    assert_eq!(
        msg("yzh-8300-2013"),
        Message::Text(TextMessage {
            flags: 9,
            text_type: None,
            text: text.clone()
        })
    );
    let (h, m) = fixture("yzh-8300-2019");
    assert_eq!(h.version, Version::V2019);
    assert_eq!(
        m,
        Message::Text(TextMessage {
            flags: 63,
            text_type: Some(1),
            text
        })
    );
}

#[test]
fn question_fixture_has_two_answers() {
    assert_eq!(
        msg("yzh-8302-2013"),
        Message::Question(Question {
            flags: 2,
            question: "123".into(),
            answers: vec![
                Answer {
                    id: 1,
                    text: "asd1".into()
                },
                Answer {
                    id: 2,
                    text: "zxc2".into()
                },
            ],
        })
    );
}

#[test]
fn call_back_fixture_keeps_the_nul_padding_of_its_phone() {
    assert_eq!(
        msg("yzh-8400-2013"),
        Message::CallBack(CallBack {
            flag: 0,
            phone: format!("{}1234567890123", "\0".repeat(7))
        })
    );
}

#[test]
fn vehicle_control_2013_fixture_is_the_flag_byte() {
    assert_eq!(
        msg("yzh-8500-2013"),
        Message::VehicleControl(VehicleControl::Flag { flag: 0x7b })
    );
}

#[test]
fn circle_fixture_writes_times_and_speed_whatever_the_attribute_says() {
    let Message::SetCircleAreas(s) = msg("yzh-8600-2013") else {
        panic!("not 0x8600")
    };
    assert_eq!(s.action, 2);
    assert_eq!(s.areas.len(), 5);
    let ids: Vec<u32> = s.areas.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    let a = s.areas.first().expect("one area");
    assert_eq!(
        (a.attribute, a.latitude, a.longitude, a.radius_m),
        (2, 123123, 112312, 123)
    );
    assert_eq!(
        a.rule,
        AreaRule {
            start: Some(t(20, 7, 26, 0, 0, 0)),
            end: Some(t(20, 7, 26, 23, 23, 59)),
            max_speed_kmh: Some(200),
            overspeed_s: Some(30),
            night_max_speed_kmh: None,
        }
    );
    assert_eq!(a.name, "");
}

#[test]
fn delete_circles_fixture_lists_four_ids() {
    assert_eq!(
        msg("yzh-8601-2013"),
        Message::DeleteAreas(DeleteAreas {
            shape: AreaShape::Circle,
            ids: vec![1, 2, 3, 0xffff]
        })
    );
}

#[test]
fn polygon_fixture_has_five_vertices() {
    let Message::SetPolygonArea(p) = msg("yzh-8604-2013") else {
        panic!("not 0x8604")
    };
    assert_eq!((p.id, p.attribute), (3, 2));
    assert_eq!(p.rule.start, Some(t(20, 7, 7, 19, 23, 59)));
    assert_eq!(p.rule.max_speed_kmh, Some(123));
    assert_eq!(p.rule.overspeed_s, Some(60));
    assert_eq!(
        p.vertices,
        vec![
            Vertex {
                latitude: 123,
                longitude: 345
            };
            5
        ]
    );
}

#[test]
fn media_fixtures_0x8800_0x8801_0x8804() {
    assert_eq!(
        msg("yzh-8800-2013"),
        Message::MediaUploadAnswer(MediaUploadAnswer {
            media_id: 49503,
            retransmit_ids: (1..=9).collect()
        })
    );
    assert_eq!(
        msg("yzh-8801-2013"),
        Message::CameraShotCommand(CameraShot {
            channel: 1,
            command: 2,
            interval_s: 3,
            save: 1,
            resolution: 4,
            quality: 5,
            brightness: 255,
            contrast: 127,
            saturation: 127,
            chroma: 255,
        })
    );
    assert_eq!(
        msg("yzh-8804-2013"),
        Message::RecordAudio(RecordAudio {
            command: 1,
            duration_s: 6328,
            save: 1,
            sample_rate: 0
        })
    );
}

// ---- implementation test vectors (bodies) -------------------------------------------
// SmallChi/JT808 `src/JT808.Protocol.Test/MessageBody/JT808_0x8xxxTest.cs`: serializer
// outputs asserted by that project's tests, for the layouts no fixture frame covers
// (2019 areas and vehicle control, rectangles, routes, 0x8608).

/// Decodes a body vector of `msg_id` in `version`; it must be typed and write back the same bytes.
fn vector(msg_id: u16, version: Version, body_hex: &str) -> Message {
    let body = hex::decode(body_hex).expect("hex");
    let m = decode(msg_id, version, &body);
    assert!(
        !matches!(m, Message::Unknown { .. }),
        "0x{msg_id:04x} {body_hex} stayed unknown"
    );
    assert_eq!(
        m.encode_body(version).expect("encode"),
        body,
        "0x{msg_id:04x}"
    );
    m
}

#[test]
fn smallchi_2019_vehicle_control_has_a_door_item_and_a_vendor_item() {
    assert_eq!(
        vector(0x8500, Version::V2019, "0002000100F00101"),
        Message::VehicleControl(VehicleControl::Items {
            items: vec![
                ControlItem {
                    id: 1,
                    param: vec![0]
                },
                ControlItem {
                    id: 0xF001,
                    param: vec![1]
                },
            ]
        })
    );
}

#[test]
fn smallchi_2019_circle_has_speed_night_speed_and_name_but_no_times() {
    let m = vector(
        0x8600,
        Version::V2019,
        "0101000005F200DE075BCD15075BCD15000000C8003CC8029A0008536D616C6C436869",
    );
    assert_eq!(
        m,
        Message::SetCircleAreas(SetCircleAreas {
            action: 1,
            areas: vec![CircleArea {
                id: 1522,
                attribute: 0xDE,
                latitude: 123456789,
                longitude: 123456789,
                radius_m: 200,
                rule: AreaRule {
                    start: None,
                    end: None,
                    max_speed_kmh: Some(60),
                    overspeed_s: Some(200),
                    night_max_speed_kmh: Some(666),
                },
                name: "SmallChi".into(),
            }]
        })
    );
}

#[test]
fn smallchi_rectangles_are_top_left_then_bottom_right() {
    let Message::SetRectangleAreas(s) = vector(
        0x8602,
        Version::V2013,
        "0102000005F200DE075BCD13075BCD12075BCD15075BCD14003CC8000005F3000A075BCCBE075BCCBF075BCCBC075BCCBD003CC8",
    ) else {
        panic!("not 0x8602")
    };
    assert_eq!(s.action, 1);
    let [a, b] = s.areas.as_slice() else {
        panic!("two rectangles")
    };
    assert_eq!((a.id, a.attribute), (1522, 222));
    assert_eq!(
        (
            a.top_left_latitude,
            a.top_left_longitude,
            a.bottom_right_latitude,
            a.bottom_right_longitude
        ),
        (123456787, 123456786, 123456789, 123456788)
    );
    assert_eq!((a.rule.start, a.rule.max_speed_kmh), (None, Some(60)));
    assert_eq!(
        (b.id, b.attribute, b.rule.overspeed_s),
        (1523, 10, Some(200))
    );
}

#[test]
fn smallchi_polygon_has_times_and_no_speed() {
    let Message::SetPolygonArea(p) = vector(
        0x8604,
        Version::V2013,
        "000004D200011811200000121811210000120002075BCD15075BCD14075BCCBC075BCCBD",
    ) else {
        panic!("not 0x8604")
    };
    assert_eq!((p.id, p.attribute), (1234, 1));
    assert_eq!(p.rule.start, Some(t(18, 11, 20, 0, 0, 12)));
    assert_eq!(p.rule.end, Some(t(18, 11, 21, 0, 0, 12)));
    assert_eq!(p.rule.max_speed_kmh, None);
    assert_eq!(
        p.vertices,
        vec![
            Vertex {
                latitude: 123456789,
                longitude: 123456788
            },
            Vertex {
                latitude: 123456700,
                longitude: 123456701
            },
        ]
    );
}

#[test]
fn smallchi_routes_2013_and_2019() {
    let Message::SetRoute(r13) = vector(
        0x8606,
        Version::V2013,
        "0000270F00331811200000121811210000120002000003E800000507075BCD15075BCD1438030032007B004517000003E900002EE7075BCD0C075BCD0D4B03003A007C002A1A",
    ) else {
        panic!("not 0x8606")
    };
    assert_eq!((r13.id, r13.attribute), (9999, 51));
    assert_eq!(r13.start, Some(t(18, 11, 20, 0, 0, 12)));
    let p = r13.points.first().expect("point");
    assert_eq!(
        (p.point_id, p.segment_id, p.width_m, p.attribute),
        (1000, 1287, 56, 3)
    );
    assert_eq!((p.too_long_s, p.too_short_s), (Some(50), Some(123)));
    assert_eq!((p.max_speed_kmh, p.overspeed_s), (Some(69), Some(23)));
    assert_eq!(p.night_max_speed_kmh, None);

    let Message::SetRoute(r19) = vector(
        0x8606,
        Version::V2019,
        "0000270F00332001040000122001040000120002000003E800000507075BCD15075BCD1438030032007B0045170050000003E900002EE7075BCD0C075BCD0D4B03003A007C002A1A004200086B6F696B65353138",
    ) else {
        panic!("not 0x8606")
    };
    let nights: Vec<_> = r19.points.iter().map(|p| p.night_max_speed_kmh).collect();
    assert_eq!(nights, vec![Some(80), Some(66)]);
    assert_eq!(r19.name, "koike518");
}

#[test]
fn smallchi_area_queries_and_upgrade_package() {
    assert_eq!(
        vector(0x8608, Version::V2019, "0000000003000000010000000200000003"),
        Message::QueryAreas(QueryAreas {
            area_type: 0,
            ids: vec![1, 2, 3]
        })
    );
    assert_eq!(
        vector(0x8608, Version::V2019, "0100000000"),
        Message::QueryAreas(QueryAreas {
            area_type: 1,
            ids: vec![]
        })
    );
    assert_eq!(
        vector(
            0x8108,
            Version::V2013,
            "3461736466670C717363766869757974726577000000050102030405"
        ),
        Message::UpgradePackage(UpgradePackage {
            upgrade_type: 0x34,
            maker_id: b"asdfg".to_vec(),
            version: "qscvhiuytrew".into(),
            package: vec![1, 2, 3, 4, 5],
        })
    );
}

#[test]
fn smallchi_text_services_phone_book_media_and_recorder_vectors() {
    assert_eq!(
        vector(
            0x8301,
            Version::V2013,
            "000201063132333435360206373839343536"
        ),
        Message::EventSetting(EventSetting {
            setting_type: 0,
            events: vec![
                EventItem {
                    id: 1,
                    text: "123456".into()
                },
                EventItem {
                    id: 2,
                    text: "789456".into()
                },
            ]
        })
    );
    assert_eq!(
        vector(
            0x8303,
            Version::V2013,
            "00020B0009736D616C6C63686931160009736D616C6C63686932"
        ),
        Message::InfoMenu(InfoMenu {
            setting_type: 0,
            items: vec![
                InfoMenuItem {
                    info_type: 11,
                    name: "smallchi1".into()
                },
                InfoMenuItem {
                    info_type: 22,
                    name: "smallchi2".into()
                },
            ]
        })
    );
    assert_eq!(
        vector(0x8304, Version::V2013, "7B0008D0C5CFA2C4DAC8DD"),
        Message::InfoService(InfoService {
            info_type: 123,
            content: "信息内容".into()
        })
    );
    assert_eq!(
        vector(
            0x8401,
            Version::V2013,
            "0202010C3133343536736D616C6C636808736D616C6C636869030B6B6F696B65313233343536056B6F696B65"
        ),
        Message::PhoneBook(PhoneBook {
            setting_type: 2,
            contacts: vec![
                Contact {
                    flag: 1,
                    number: "13456smallch".into(),
                    name: "smallchi".into()
                },
                Contact {
                    flag: 3,
                    number: "koike123456".into(),
                    name: "koike".into()
                },
            ]
        })
    );
    assert_eq!(
        vector(0x8803, Version::V2013, "00800018111622002118111623002101"),
        Message::StoredMediaUpload(StoredMediaUpload {
            search: StoredMediaSearch {
                media_type: 0,
                channel: 128,
                event: 0,
                start: t(18, 11, 16, 22, 0, 21),
                end: t(18, 11, 16, 23, 0, 21),
            },
            delete: 1
        })
    );
    assert_eq!(
        vector(0x8805, Version::V2013, "0000271000"),
        Message::SingleMediaUpload(SingleMediaUpload {
            media_id: 10000,
            delete: 0
        })
    );
    // The data block is a GB/T 19056 frame (0x557A ...), kept as bytes.
    assert_eq!(
        vector(
            0x8700,
            Version::V2013,
            "08557A08000E00200322101010200323101010000129"
        ),
        Message::RecorderCollect(RecorderCommand {
            command: 0x08,
            data: hex::decode("557A08000E00200322101010200323101010000129").expect("hex"),
        })
    );
}

// ---- edge cases --------------------------------------------------------------------

#[test]
fn a_body_with_trailing_bytes_stays_unknown_so_no_byte_is_lost() {
    let body = [0x00, 0x05, 0, 0, 0x02, 0x58, 0xAA];
    assert_eq!(
        decode(0x8202, Version::V2013, &body),
        Message::Unknown {
            msg_id: 0x8202,
            body: body.to_vec()
        }
    );
    assert_eq!(
        decode(0x8104, Version::V2013, &[1]),
        Message::Unknown {
            msg_id: 0x8104,
            body: vec![1]
        }
    );
}

#[test]
fn text_that_is_not_gbk_stays_unknown() {
    let body = [0x01, 0xFF, 0xFE];
    assert!(matches!(
        decode(0x8300, Version::V2013, &body),
        Message::Unknown { msg_id: 0x8300, .. }
    ));
}

#[test]
fn a_short_platform_body_is_a_too_short_error() {
    assert_eq!(
        Message::decode(&header(0x8202, Version::V2013), &[0, 5]),
        Err(jt808::BodyError::TooShort {
            msg_id: 0x8202,
            len: 2,
            need: 6
        })
    );
}

#[test]
fn vehicle_control_2019_reads_the_door_lock_and_a_trailing_vendor_item() {
    let body = [0, 2, 0, 1, 1, 0xF0, 0x01, 0xAB, 0xCD];
    assert_eq!(
        decode(0x8500, Version::V2019, &body),
        Message::VehicleControl(VehicleControl::Items {
            items: vec![
                ControlItem {
                    id: 1,
                    param: vec![1]
                },
                ControlItem {
                    id: 0xF001,
                    param: vec![0xAB, 0xCD]
                },
            ]
        })
    );
    // The 2013 flag cannot be written as 2019, nor the 2019 list as 2013.
    let flag = Message::VehicleControl(VehicleControl::Flag { flag: 1 });
    assert!(flag.encode_body(Version::V2019).is_err());
    let items = Message::VehicleControl(VehicleControl::Items { items: vec![] });
    assert!(items.encode_body(Version::V2013).is_err());
}

#[test]
fn a_2019_circle_carries_night_speed_and_name() {
    let m = Message::SetCircleAreas(SetCircleAreas {
        action: 1,
        areas: vec![CircleArea {
            id: 7,
            attribute: 0b11,
            latitude: 1,
            longitude: 2,
            radius_m: 3,
            rule: AreaRule {
                start: Some(t(24, 1, 1, 0, 0, 0)),
                end: Some(t(24, 12, 31, 23, 59, 59)),
                max_speed_kmh: Some(80),
                overspeed_s: Some(10),
                night_max_speed_kmh: Some(60),
            },
            name: "仓库".into(),
        }],
    });
    let body = m.encode_body(Version::V2019).expect("encode");
    // 2 + (4+2+4+4+4 + 12 + 3 + 2 + 2+4)
    assert_eq!(body.len(), 2 + 18 + 12 + 3 + 2 + 6);
    assert_eq!(decode(0x8600, Version::V2019, &body), m);
    // A night speed or a name cannot be written in 2013.
    assert!(m.encode_body(Version::V2013).is_err());
}

#[test]
fn platform_messages_serialize_with_their_kind() {
    let m = Message::VehicleControl(VehicleControl::Flag { flag: 1 });
    assert_eq!(
        serde_json::to_value(&m).expect("json"),
        serde_json::json!({"kind": "vehicle_control", "layout": "flag", "flag": 1})
    );
}

// ---- round trips -------------------------------------------------------------------

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        Just(Version::V2011),
        Just(Version::V2013),
        Just(Version::V2019)
    ]
}

fn text(max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9 ;,.测试中文区域]{{0,{max}}}"))
        .expect("regex")
        .boxed()
}

fn bytes(max: usize) -> BoxedStrategy<Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max).boxed()
}

fn time() -> BoxedStrategy<LocalTime> {
    (0u8..100, 0u8..100, 0u8..100, 0u8..100, 0u8..100, 0u8..100)
        .prop_map(|(year, month, day, hour, minute, second)| LocalTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
        .boxed()
}

/// A rule whose optional fields follow attribute bits 0/1 (night speed: 2019 only).
fn rule(attr: u16, v: Version) -> BoxedStrategy<AreaRule> {
    let by_time = attr & 1 == 1;
    let limit = attr & 2 == 2;
    let v19 = v == Version::V2019;
    (time(), time(), any::<u16>(), any::<u8>(), any::<u16>())
        .prop_map(move |(s, e, max, over, night)| AreaRule {
            start: by_time.then_some(s),
            end: by_time.then_some(e),
            max_speed_kmh: limit.then_some(max),
            overspeed_s: limit.then_some(over),
            night_max_speed_kmh: (limit && v19).then_some(night),
        })
        .boxed()
}

fn name(v: Version) -> BoxedStrategy<String> {
    if v == Version::V2019 {
        text(12)
    } else {
        Just(String::new()).boxed()
    }
}

fn circle(v: Version) -> BoxedStrategy<CircleArea> {
    any::<u16>()
        .prop_flat_map(move |attr| {
            (
                (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
                rule(attr, v),
                name(v),
            )
                .prop_map(move |((id, latitude, longitude, radius_m), rule, name)| {
                    CircleArea {
                        id,
                        attribute: attr,
                        latitude,
                        longitude,
                        radius_m,
                        rule,
                        name,
                    }
                })
        })
        .boxed()
}

fn rectangle(v: Version) -> BoxedStrategy<RectangleArea> {
    any::<u16>()
        .prop_flat_map(move |attr| {
            ((any::<u32>(), any::<[u32; 4]>()), rule(attr, v), name(v)).prop_map(
                move |((id, [a, b, c, d]), rule, name)| RectangleArea {
                    id,
                    attribute: attr,
                    top_left_latitude: a,
                    top_left_longitude: b,
                    bottom_right_latitude: c,
                    bottom_right_longitude: d,
                    rule,
                    name,
                },
            )
        })
        .boxed()
}

fn polygon(v: Version) -> BoxedStrategy<SetPolygonArea> {
    any::<u16>()
        .prop_flat_map(move |attr| {
            (
                any::<u32>(),
                rule(attr, v),
                proptest::collection::vec(
                    (any::<u32>(), any::<u32>()).prop_map(|(latitude, longitude)| Vertex {
                        latitude,
                        longitude,
                    }),
                    0..6,
                ),
                name(v),
            )
                .prop_map(move |(id, rule, vertices, name)| SetPolygonArea {
                    id,
                    attribute: attr,
                    rule,
                    vertices,
                    name,
                })
        })
        .boxed()
}

fn route_point(v: Version) -> BoxedStrategy<RoutePoint> {
    let v19 = v == Version::V2019;
    any::<u8>()
        .prop_flat_map(move |attr| {
            let timed = attr & 1 == 1;
            let limit = attr & 2 == 2;
            (
                any::<[u32; 4]>(),
                any::<u8>(),
                any::<[u16; 4]>(),
                any::<u8>(),
            )
                .prop_map(
                    move |([point_id, segment_id, latitude, longitude], width_m, w, over)| {
                        let [long, short, max, night] = w;
                        RoutePoint {
                            point_id,
                            segment_id,
                            latitude,
                            longitude,
                            width_m,
                            attribute: attr,
                            too_long_s: timed.then_some(long),
                            too_short_s: timed.then_some(short),
                            max_speed_kmh: limit.then_some(max),
                            overspeed_s: limit.then_some(over),
                            night_max_speed_kmh: (limit && v19).then_some(night),
                        }
                    },
                )
        })
        .boxed()
}

fn route(v: Version) -> BoxedStrategy<SetRoute> {
    any::<u16>()
        .prop_flat_map(move |attr| {
            let by_time = attr & 1 == 1;
            (
                any::<u32>(),
                time(),
                time(),
                proptest::collection::vec(route_point(v), 0..4),
                name(v),
            )
                .prop_map(move |(id, s, e, points, name)| SetRoute {
                    id,
                    attribute: attr,
                    start: by_time.then_some(s),
                    end: by_time.then_some(e),
                    points,
                    name,
                })
        })
        .boxed()
}

fn vehicle_control(v: Version) -> BoxedStrategy<VehicleControl> {
    if v != Version::V2019 {
        return any::<u8>()
            .prop_map(|flag| VehicleControl::Flag { flag })
            .boxed();
    }
    let door = (0u8..2).prop_map(|b| ControlItem {
        id: 1,
        param: vec![b],
    });
    let vendor = proptest::option::of(
        (0xF001u16..=0xFFFF, bytes(4)).prop_map(|(id, param)| ControlItem { id, param }),
    );
    (proptest::collection::vec(door, 0..3), vendor)
        .prop_map(|(mut items, last)| {
            items.extend(last);
            VehicleControl::Items { items }
        })
        .boxed()
}

fn media_search() -> BoxedStrategy<StoredMediaSearch> {
    (any::<[u8; 3]>(), time(), time())
        .prop_map(
            |([media_type, channel, event], start, end)| StoredMediaSearch {
                media_type,
                channel,
                event,
                start,
                end,
            },
        )
        .boxed()
}

/// A parameter as the table types it: DWORD, BYTE, STRING and an unknown (raw) id.
fn param() -> BoxedStrategy<Param> {
    prop_oneof![
        any::<u32>().prop_map(|v| Param {
            id: 0x0001,
            value: ParamValue::U32(v)
        }),
        any::<u8>().prop_map(|v| Param {
            id: 0x0084,
            value: ParamValue::U8(v)
        }),
        proptest::string::string_regex("[A-Za-z0-9.]{0,20}")
            .expect("regex")
            .prop_map(|v| Param {
                id: 0x0013,
                value: ParamValue::Str(v)
            }),
        (0xF000u32..0xF100, bytes(6)).prop_map(|(id, b)| Param {
            id,
            value: ParamValue::Bytes(b)
        }),
    ]
    .boxed()
}

/// Every platform message type, in edition `v`'s layout.
fn platform(v: Version) -> BoxedStrategy<Message> {
    let v19 = v == Version::V2019;
    let maker = if v19 { 11 } else { 5 };
    let arms: Vec<BoxedStrategy<Message>> = vec![
        proptest::collection::vec(param(), 0..5)
            .prop_map(|params| Message::SetParams(SetParams { params }))
            .boxed(),
        Just(Message::QueryAllParams).boxed(),
        (any::<u8>(), text(20))
            .prop_map(|(command, args)| Message::TerminalControl(TerminalControl { command, args }))
            .boxed(),
        proptest::collection::vec(any::<u32>(), 0..8)
            .prop_map(|ids| Message::QueryParams(QueryParams { ids }))
            .boxed(),
        Just(Message::QueryAttributes).boxed(),
        (
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), maker),
            text(10),
            bytes(32),
        )
            .prop_map(|(upgrade_type, maker_id, version, package)| {
                Message::UpgradePackage(UpgradePackage {
                    upgrade_type,
                    maker_id,
                    version,
                    package,
                })
            })
            .boxed(),
        Just(Message::QueryLocation).boxed(),
        (any::<u16>(), any::<u32>())
            .prop_map(|(interval_s, validity_s)| {
                Message::TemporaryTracking(TemporaryTracking {
                    interval_s,
                    validity_s,
                })
            })
            .boxed(),
        (any::<u16>(), any::<u32>())
            .prop_map(|(alarm_serial, alarm_type)| {
                Message::AlarmConfirm(AlarmConfirm {
                    alarm_serial,
                    alarm_type,
                })
            })
            .boxed(),
        Just(Message::LinkCheck).boxed(),
        (any::<u8>(), any::<u8>(), text(30))
            .prop_map(move |(flags, tt, text)| {
                Message::Text(TextMessage {
                    flags,
                    text_type: v19.then_some(tt),
                    text,
                })
            })
            .boxed(),
        (
            any::<u8>(),
            proptest::collection::vec(
                (any::<u8>(), text(8)).prop_map(|(id, text)| EventItem { id, text }),
                0..4,
            ),
        )
            .prop_map(|(setting_type, events)| {
                Message::EventSetting(EventSetting {
                    setting_type,
                    events,
                })
            })
            .boxed(),
        (
            any::<u8>(),
            text(12),
            proptest::collection::vec(
                (any::<u8>(), text(8)).prop_map(|(id, text)| Answer { id, text }),
                0..4,
            ),
        )
            .prop_map(|(flags, question, answers)| {
                Message::Question(Question {
                    flags,
                    question,
                    answers,
                })
            })
            .boxed(),
        (
            any::<u8>(),
            proptest::collection::vec(
                (any::<u8>(), text(8))
                    .prop_map(|(info_type, name)| InfoMenuItem { info_type, name }),
                0..4,
            ),
        )
            .prop_map(|(setting_type, items)| {
                Message::InfoMenu(InfoMenu {
                    setting_type,
                    items,
                })
            })
            .boxed(),
        (any::<u8>(), text(20))
            .prop_map(|(info_type, content)| {
                Message::InfoService(InfoService { info_type, content })
            })
            .boxed(),
        (
            any::<u8>(),
            proptest::string::string_regex("[0-9]{0,20}").expect("regex"),
        )
            .prop_map(|(flag, phone)| Message::CallBack(CallBack { flag, phone }))
            .boxed(),
        (
            any::<u8>(),
            proptest::collection::vec(
                (any::<u8>(), text(12), text(8)).prop_map(|(flag, number, name)| Contact {
                    flag,
                    number,
                    name,
                }),
                0..4,
            ),
        )
            .prop_map(|(setting_type, contacts)| {
                Message::PhoneBook(PhoneBook {
                    setting_type,
                    contacts,
                })
            })
            .boxed(),
        vehicle_control(v).prop_map(Message::VehicleControl).boxed(),
        (any::<u8>(), proptest::collection::vec(circle(v), 0..4))
            .prop_map(|(action, areas)| Message::SetCircleAreas(SetCircleAreas { action, areas }))
            .boxed(),
        (any::<u8>(), proptest::collection::vec(rectangle(v), 0..4))
            .prop_map(|(action, areas)| {
                Message::SetRectangleAreas(SetRectangleAreas { action, areas })
            })
            .boxed(),
        polygon(v).prop_map(Message::SetPolygonArea).boxed(),
        route(v).prop_map(Message::SetRoute).boxed(),
        (
            prop_oneof![
                Just(AreaShape::Circle),
                Just(AreaShape::Rectangle),
                Just(AreaShape::Polygon),
                Just(AreaShape::Route)
            ],
            proptest::collection::vec(any::<u32>(), 0..6),
        )
            .prop_map(|(shape, ids)| Message::DeleteAreas(DeleteAreas { shape, ids }))
            .boxed(),
        (any::<u8>(), proptest::collection::vec(any::<u32>(), 0..6))
            .prop_map(|(area_type, ids)| Message::QueryAreas(QueryAreas { area_type, ids }))
            .boxed(),
        (any::<u8>(), bytes(16))
            .prop_map(|(command, data)| Message::RecorderCollect(RecorderCommand { command, data }))
            .boxed(),
        (any::<u8>(), bytes(16))
            .prop_map(|(command, data)| {
                Message::RecorderParamsDownload(RecorderCommand { command, data })
            })
            .boxed(),
        Just(Message::DriverIdentityRequest).boxed(),
        (any::<u32>(), proptest::collection::vec(any::<u16>(), 0..8))
            .prop_map(|(media_id, retransmit_ids)| {
                Message::MediaUploadAnswer(MediaUploadAnswer {
                    media_id,
                    retransmit_ids,
                })
            })
            .boxed(),
        (any::<u8>(), any::<[u16; 2]>(), any::<[u8; 7]>())
            .prop_map(|(channel, [command, interval_s], b)| {
                let [save, resolution, quality, brightness, contrast, saturation, chroma] = b;
                Message::CameraShotCommand(CameraShot {
                    channel,
                    command,
                    interval_s,
                    save,
                    resolution,
                    quality,
                    brightness,
                    contrast,
                    saturation,
                    chroma,
                })
            })
            .boxed(),
        media_search().prop_map(Message::StoredMediaSearch).boxed(),
        (media_search(), any::<u8>())
            .prop_map(|(search, delete)| {
                Message::StoredMediaUpload(StoredMediaUpload { search, delete })
            })
            .boxed(),
        (any::<u8>(), any::<u16>(), any::<u8>(), any::<u8>())
            .prop_map(|(command, duration_s, save, sample_rate)| {
                Message::RecordAudio(RecordAudio {
                    command,
                    duration_s,
                    save,
                    sample_rate,
                })
            })
            .boxed(),
        (any::<u32>(), any::<u8>())
            .prop_map(|(media_id, delete)| {
                Message::SingleMediaUpload(SingleMediaUpload { media_id, delete })
            })
            .boxed(),
        (any::<u8>(), bytes(16))
            .prop_map(|(msg_type, data)| {
                Message::DownlinkTransparent(DownlinkTransparent { msg_type, data })
            })
            .boxed(),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 128))
            .prop_map(|(e, n)| Message::PlatformRsaKey(PlatformRsaKey { e, n }))
            .boxed(),
    ];
    Union::new(arms).boxed()
}

/// Platform ids with typed bodies.
const PLATFORM_IDS: [u16; 38] = [
    0x8103, 0x8104, 0x8105, 0x8106, 0x8107, 0x8108, 0x8201, 0x8202, 0x8203, 0x8204, 0x8300, 0x8301,
    0x8302, 0x8303, 0x8304, 0x8400, 0x8401, 0x8500, 0x8600, 0x8601, 0x8602, 0x8603, 0x8604, 0x8605,
    0x8606, 0x8607, 0x8608, 0x8700, 0x8701, 0x8702, 0x8800, 0x8801, 0x8802, 0x8803, 0x8804, 0x8805,
    0x8900, 0x8A00,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_platform_message_decodes_to_itself_after_encoding(
        (v, m) in version().prop_flat_map(|v| (Just(v), platform(v)))
    ) {
        let body = m.encode_body(v).expect("encode");
        // The frame header cannot mark 2011: decode 2011 bodies through a 2013 header.
        let hv = if v == Version::V2011 { Version::V2013 } else { v };
        let back = Message::decode(&header(m.msg_id(), hv), &body).expect("decode");
        prop_assert_eq!(&back, &m);
        // `--raw` and passthrough JSON: an object tagged with the message kind.
        let json = serde_json::to_value(&m).expect("json");
        prop_assert!(json["kind"].is_string(), "{}", json);
    }

    #[test]
    fn arbitrary_platform_bodies_decode_to_something_that_writes_them_back(
        i in 0..PLATFORM_IDS.len(),
        v19 in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let id = PLATFORM_IDS.get(i).copied().unwrap_or(0x8900);
        let v = if v19 { Version::V2019 } else { Version::V2013 };
        if let Ok(m) = Message::decode(&header(id, v), &body) {
            prop_assert_eq!(m.msg_id(), id);
            prop_assert_eq!(m.encode_body(v).expect("re-encode"), body);
        }
    }
}
