//! Terminal messages: `decode(encode(m)) == m` for every typed body and edition, and real
//! frames from `fixtures/jt808/` decoded field by field.

use jt808::msg::{
    AreaQueryAnswer, Attributes, CanData, CanItem, CompressedUpload, DriverIdentity, EventReport,
    InfoDemand, LocationReport, MediaEvent, MediaItem, MediaSearchAnswer, MediaUpload, Param,
    ParamValue, QueryParamsAnswer, QuestionAnswer, RecorderUpload, ResendRequest, RsaPublicKey,
    ShotAnswer, UpgradeResult, UplinkTransparent, Waybill,
};
use jt808::{ChecksumPolicy, Encryption, Frame, Header, Message, Version};
use proptest::prelude::*;

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

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        Just(Version::V2011),
        Just(Version::V2013),
        Just(Version::V2019)
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9]{{0,{max}}}")).expect("regex")
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// A parameter as the table would type it after decoding.
fn param() -> impl Strategy<Value = Param> {
    prop_oneof![
        any::<u32>().prop_map(|v| Param {
            id: 0x0001,
            value: ParamValue::U32(v)
        }),
        any::<u16>().prop_map(|v| Param {
            id: 0x0031,
            value: ParamValue::U16(v)
        }),
        any::<u8>().prop_map(|v| Param {
            id: 0x0084,
            value: ParamValue::U8(v)
        }),
        text(20).prop_map(|v| Param {
            id: 0x0013,
            value: ParamValue::Str(v)
        }),
        any::<[u8; 8]>().prop_map(|v| Param {
            id: 0x0110,
            value: ParamValue::Bytes(v.to_vec())
        }),
        (0xF000u32..0xFFFF, bytes(10)).prop_map(|(id, v)| Param {
            id,
            value: ParamValue::Bytes(v)
        }),
    ]
}

/// 28 bytes of location basic information, as embedded in 0x0801/0x0802 (no items).
fn base_location() -> impl Strategy<Value = LocationReport> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<[u8; 6]>()),
    )
        .prop_map(
            |((alarm, status, latitude, longitude), (altitude, speed, heading, time))| {
                LocationReport {
                    alarm,
                    status,
                    latitude,
                    longitude,
                    altitude,
                    speed,
                    heading,
                    time,
                    items: Default::default(),
                    tail: vec![],
                }
            },
        )
}

/// BCD bytes (each nibble 0-9).
fn bcd<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    proptest::array::uniform::<_, N>((0u8..10, 0u8..10).prop_map(|(h, l)| h << 4 | l))
}

fn attributes(v: Version) -> impl Strategy<Value = Message> {
    let (wm, wt) = if v == Version::V2019 {
        (30, 30)
    } else {
        (20, 7)
    };
    let layout = if v == Version::V2019 {
        Version::V2019
    } else {
        Version::V2013
    };
    (
        (any::<u16>(), text(5), text(wm), text(wt), bcd::<10>()),
        (text(20), text(20), any::<u8>(), any::<u8>()),
    )
        .prop_map(
            move |(
                (terminal_type, manufacturer, model, terminal_id, iccid),
                (hardware_version, firmware_version, gnss, network),
            )| {
                Message::Attributes(Attributes {
                    terminal_type,
                    manufacturer,
                    model,
                    terminal_id,
                    iccid: hex::encode(iccid),
                    hardware_version,
                    firmware_version,
                    gnss,
                    network,
                    layout,
                })
            },
        )
}

fn driver(v: Version) -> BoxedStrategy<Message> {
    if v == Version::V2011 {
        // Names of 3+ characters: a 2011 body starting with 1 or 2 could be a 2013 status.
        return (
            proptest::string::string_regex("[A-Za-z]{3,12}").expect("regex"),
            text(20),
            text(40),
            text(30),
        )
            .prop_map(|(name, id_card, certificate, issuer)| {
                Message::DriverIdentity(DriverIdentity {
                    layout: Version::V2011,
                    status: None,
                    time: None,
                    card_result: None,
                    name,
                    certificate,
                    issuer,
                    expiry: None,
                    id_card: Some(id_card),
                    tail: vec![],
                })
            })
            .boxed();
    }
    let v19 = v == Version::V2019;
    (
        prop_oneof![Just((1u8, 0u8)), Just((1, 1)), Just((1, 3)), Just((2, 0))],
        bcd::<6>(),
        (text(10), text(20), text(30), bcd::<4>(), text(20)),
    )
        .prop_map(
            move |((status, result), time, (name, certificate, issuer, expiry, id_card))| {
                let full = status == 1 && result == 0;
                Message::DriverIdentity(DriverIdentity {
                    layout: v,
                    status: Some(status),
                    time: Some(time),
                    card_result: (status == 1).then_some(result),
                    name: if full { name } else { String::new() },
                    certificate: if full { certificate } else { String::new() },
                    issuer: if full { issuer } else { String::new() },
                    expiry: full.then_some(expiry),
                    id_card: (full && v19).then_some(id_card),
                    tail: vec![],
                })
            },
        )
        .boxed()
}

fn media(v: Version) -> BoxedStrategy<Message> {
    let _ = v;
    prop_oneof![
        (any::<u32>(), any::<[u8; 4]>()).prop_map(|(media_id, [t, f, e, c])| {
            Message::MediaEvent(MediaEvent {
                media_id,
                media_type: t,
                format: f,
                event: e,
                channel: c,
            })
        }),
        (any::<u32>(), any::<[u8; 4]>(), base_location(), bytes(64)).prop_map(
            |(media_id, [t, f, e, c], location, data)| {
                Message::MediaUpload(MediaUpload {
                    media_id,
                    media_type: t,
                    format: f,
                    event: e,
                    channel: c,
                    location,
                    data,
                })
            }
        ),
        (
            any::<u16>(),
            proptest::collection::vec(
                (any::<u32>(), any::<[u8; 3]>(), base_location()).prop_map(
                    |(media_id, [media_type, channel, event], location)| MediaItem {
                        media_id,
                        media_type,
                        channel,
                        event,
                        location,
                    }
                ),
                0..4
            )
        )
            .prop_map(|(reply_serial, items)| {
                Message::MediaSearchAnswer(MediaSearchAnswer {
                    reply_serial,
                    items,
                })
            }),
        (
            any::<u16>(),
            0u8..3,
            proptest::collection::vec(any::<u32>(), 0..6)
        )
            .prop_map(|(reply_serial, result, ids)| {
                Message::ShotAnswer(ShotAnswer {
                    reply_serial,
                    result,
                    media_ids: if result == 0 { ids } else { vec![] },
                })
            }),
    ]
    .boxed()
}

fn message(v: Version) -> BoxedStrategy<Message> {
    let resend = proptest::collection::vec(any::<u16>(), 0..8).prop_flat_map(move |ids| {
        any::<u16>().prop_map(move |first_serial| {
            Message::TerminalResendRequest(ResendRequest {
                first_serial,
                ids: ids.clone(),
            })
        })
    });
    prop_oneof![
        (any::<u16>(), proptest::collection::vec(param(), 0..8)).prop_map(
            |(reply_serial, params)| Message::QueryParamsAnswer(QueryParamsAnswer {
                reply_serial,
                params
            })
        ),
        resend,
        attributes(v),
        (any::<u8>(), any::<u8>()).prop_map(|(upgrade_type, result)| {
            Message::UpgradeResult(UpgradeResult {
                upgrade_type,
                result,
            })
        }),
        any::<u8>().prop_map(|event_id| Message::EventReport(EventReport { event_id })),
        (any::<u16>(), any::<u8>()).prop_map(|(reply_serial, answer_id)| {
            Message::QuestionAnswer(QuestionAnswer {
                reply_serial,
                answer_id,
            })
        }),
        (any::<u8>(), 0u8..2)
            .prop_map(|(info_type, flag)| { Message::InfoDemand(InfoDemand { info_type, flag }) }),
        (1u8..5, any::<u32>(), bytes(40)).prop_map(|(area_type, count, data)| {
            Message::AreaQueryAnswer(AreaQueryAnswer {
                area_type,
                count,
                data,
            })
        }),
        (any::<u16>(), any::<u8>(), bytes(40)).prop_map(|(reply_serial, command, data)| {
            Message::RecorderUpload(RecorderUpload {
                reply_serial,
                command,
                data,
            })
        }),
        (bytes(40), bytes(4))
            .prop_map(|(content, tail)| Message::Waybill(Waybill { content, tail })),
        driver(v),
        (
            any::<[u8; 5]>(),
            proptest::collection::vec(
                (any::<u32>(), any::<[u8; 8]>()).prop_map(|(id, data)| CanItem { id, data }),
                0..5
            )
        )
            .prop_map(|(time, items)| Message::CanData(CanData { time, items })),
        media(v),
        (any::<u8>(), bytes(40)).prop_map(|(msg_type, data)| Message::UplinkTransparent(
            UplinkTransparent { msg_type, data }
        )),
        (bytes(40), bytes(4)).prop_map(|(data, tail)| {
            Message::CompressedUpload(CompressedUpload { data, tail })
        }),
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 128..=128)
        )
            .prop_map(|(e, n)| Message::RsaPublicKey(RsaPublicKey { e, n })),
    ]
    .boxed()
}

proptest! {
    #[test]
    fn every_terminal_message_decodes_to_itself_after_encoding(
        (v, m) in version().prop_flat_map(|v| (Just(v), message(v)))
    ) {
        let body = m.encode_body(v).expect("encode");
        // The frame header cannot mark 2011: decode 2011 bodies through a 2013 header.
        let hv = if v == Version::V2011 { Version::V2013 } else { v };
        let back = Message::decode(&header(m.msg_id(), hv), &body).expect("decode");
        prop_assert_eq!(back, m);
    }

    #[test]
    fn arbitrary_terminal_bodies_never_panic(
        id in prop_oneof![
            Just(0x0005u16), Just(0x0104), Just(0x0107), Just(0x0108), Just(0x0301),
            Just(0x0302), Just(0x0303), Just(0x0608), Just(0x0700), Just(0x0701),
            Just(0x0702), Just(0x0705), Just(0x0800), Just(0x0801), Just(0x0802),
            Just(0x0805), Just(0x0900), Just(0x0901), Just(0x0A00)
        ],
        v in version(),
        body in bytes(200),
    ) {
        if let Ok(m) = Message::decode(&header(id, v), &body) {
            // Whatever decodes must encode again without panicking.
            let _ = m.encode_body(v);
            let _ = jt808::raw_json(&header(id, v), &m);
        }
    }
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/jt808");

/// The header and body of fixture `id`'s frame.
fn fixture(id: &str) -> (Header, Vec<u8>) {
    let path = format!("{FIXTURES}/{id}.json");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read fixture")).expect("json");
    let wire = hex::decode(fx["hex"].as_str().expect("hex")).expect("hex");
    let inner = wire.get(1..wire.len() - 1).expect("delimiters");
    let content = jt808::escape::unescape(inner).expect("unescape");
    let f = Frame::parse(&content, ChecksumPolicy::Strict).expect("frame");
    (f.header.clone(), f.body.to_vec())
}

fn decoded(id: &str) -> (Header, Vec<u8>, Message) {
    let (h, body) = fixture(id);
    let m = Message::decode(&h, &body).expect("decode");
    (h, body, m)
}

#[test]
fn query_params_answer_from_smallchi_names_every_parameter() {
    let (h, body, m) = decoded("smallchi-0104-params-user");
    let Message::QueryParamsAnswer(a) = &m else {
        panic!("not 0x0104: {m:?}")
    };
    assert_eq!(a.reply_serial, 0);
    // The body declares 9 parameters and carries 7.
    assert_eq!(a.params.len(), 7);
    let json = jt808::msg::params::to_json_map(&a.params);
    assert_eq!(json["heartbeat_interval_s"], 15);
    assert_eq!(json["tcp_ack_timeout_s"], 10);
    assert_eq!(json["main_server_address"], "223.108.133.163");
    // Sent as one 0x00 byte: an empty string once the padding is trimmed.
    assert_eq!(json["backup_server_address"], "");
    assert_eq!(json["server_tcp_port"], 808);
    assert_eq!(json["max_speed_kmh"], 120);
    assert_eq!(json["overspeed_duration_s"], 0);
    // Encoding writes the true count and drops the NUL terminators of 0x0013 and 0x0017.
    let again = m.encode_body(h.version).expect("encode");
    assert_eq!(again.len(), body.len() - 2);
    assert_eq!(again.get(2), Some(&7));
    let raw = jt808::raw_json(&h, &m);
    assert_eq!(raw["message"]["kind"], "query_params_answer");
    assert_eq!(raw["message"]["params"]["server_tcp_port"], 808);
}

#[test]
fn query_params_answer_with_one_parameter_round_trips_byte_for_byte() {
    let (h, body, m) = decoded("smallchi-0104-one-param");
    assert_eq!(
        m,
        Message::QueryParamsAnswer(QueryParamsAnswer {
            reply_serial: 20,
            params: vec![Param {
                id: 1,
                value: ParamValue::U32(10)
            }],
        })
    );
    assert_eq!(m.encode_body(h.version).expect("encode"), body);
}

/// The message of fixture `id`, which must re-encode to the same body bytes.
fn decoded_exact(id: &str) -> Message {
    let (h, body, m) = decoded(id);
    assert_eq!(
        hex::encode(m.encode_body(h.version).expect("encode")),
        hex::encode(body),
        "{id} re-encodes to other bytes"
    );
    m
}

#[test]
fn attributes_from_a_real_terminal_give_model_id_iccid_and_firmware() {
    let m = decoded_exact("traccar-0107-attributes");
    let Message::Attributes(a) = m else {
        panic!("not 0x0107: {m:?}")
    };
    assert_eq!(a.layout, Version::V2013);
    assert_eq!(a.manufacturer, "XC");
    assert_eq!(a.model, "C5L");
    assert_eq!(a.terminal_id, "9887125");
    // Traccar's assertion on this frame.
    assert_eq!(a.iccid, "89883030000131882455");
    assert_eq!(a.hardware_version, "");
    assert_eq!(a.firmware_version, "C5L_V2.6 2026/06/04 15:31");
    assert_eq!((a.gnss, a.network), (3, 1));
}

#[test]
fn attributes_with_left_padded_text_are_trimmed() {
    let (_, _, m) = decoded("yzh-0107-2013");
    let Message::Attributes(a) = m else {
        panic!("not 0x0107: {m:?}")
    };
    assert_eq!(a.manufacturer, "yzh");
    assert_eq!(a.model, "JTT808.CN");
    assert_eq!(a.terminal_id, "7654321");
    assert_eq!(a.iccid, "12345678901234567890");
    assert_eq!(a.firmware_version, "jtt808.cn");
}

#[test]
fn attributes_in_2019_widths_behind_a_2013_header_are_read_as_2019() {
    let a = Attributes {
        terminal_type: 0x0104,
        manufacturer: "M1".into(),
        model: "MODEL-2019-LONG-NAME-XXXXXXXX".into(),
        terminal_id: "ID0123456789ABCDEF".into(),
        iccid: "89860000000000000001".into(),
        hardware_version: "hw1".into(),
        firmware_version: "fw2".into(),
        gnss: 3,
        network: 0x20,
        layout: Version::V2019,
    };
    let body = Message::Attributes(a.clone())
        .encode_body(Version::V2019)
        .expect("encode");
    let back = Message::decode(&header(0x0107, Version::V2013), &body).expect("decode");
    assert_eq!(back, Message::Attributes(a));
}

#[test]
fn upgrade_result_and_information_service_answers_from_yezhihao() {
    assert_eq!(
        decoded_exact("yzh-0108-2013"),
        Message::UpgradeResult(UpgradeResult {
            upgrade_type: 52,
            result: 2
        })
    );
    assert_eq!(
        decoded_exact("yzh-0301-2013"),
        Message::EventReport(EventReport { event_id: 255 })
    );
    assert_eq!(
        decoded_exact("yzh-0302-2013"),
        Message::QuestionAnswer(QuestionAnswer {
            reply_serial: 0xef44,
            answer_id: 127
        })
    );
    assert_eq!(
        decoded_exact("yzh-0303-2013"),
        Message::InfoDemand(InfoDemand {
            info_type: 255,
            flag: 0
        })
    );
}

#[test]
fn waybill_from_traccar_keeps_bytes_and_shows_text() {
    let (h, _, m) = decoded("traccar-0701-waybill-text");
    let raw = jt808::raw_json(&h, &m);
    assert_eq!(raw["message"]["kind"], "waybill");
    // Traccar's assertion on this frame.
    assert_eq!(raw["message"]["text"], "MD,SET CONFIG OK!");
    decoded_exact("traccar-0701-waybill-text");
}

#[test]
fn driver_identity_2013_from_traccar_has_the_certificate() {
    let m = decoded_exact("traccar-0702-driver-id");
    let Message::DriverIdentity(d) = m else {
        panic!("not 0x0702: {m:?}")
    };
    assert_eq!(d.layout, Version::V2013);
    assert_eq!(d.status, Some(1));
    assert_eq!(d.time, Some([0x25, 0x10, 0x09, 0x15, 0x07, 0x51]));
    assert_eq!(d.card_result, Some(0));
    assert_eq!(d.name, "");
    // Traccar's assertion (its "cardCode").
    assert_eq!(d.certificate, "0029b885");
    assert_eq!(d.expiry, Some([0; 4]));
}

#[test]
fn driver_identity_with_gbk_name_and_issuer_from_yezhihao() {
    let (_, _, m) = decoded("yzh-0702-2013");
    let Message::DriverIdentity(d) = m else {
        panic!("not 0x0702: {m:?}")
    };
    // Status 2 (card removed) with the driver fields filled anyway.
    assert_eq!(d.status, Some(2));
    assert_eq!(d.name, "张三");
    assert_eq!(d.certificate, "1234567890123");
    assert_eq!(d.issuer, "中华人民共和国道路运输从业人员从业资格证");
    assert_eq!(d.expiry, Some([0x20, 0x19, 0x06, 0x30]));
    assert!(d.tail.is_empty());
}

#[test]
fn driver_identity_in_the_2011_layout_is_detected_by_length() {
    let d = DriverIdentity {
        layout: Version::V2011,
        status: None,
        time: None,
        card_result: None,
        name: "李四".into(),
        certificate: "CERT-0001".into(),
        issuer: "交通局".into(),
        expiry: None,
        id_card: Some("110101199001011234".into()),
        tail: vec![],
    };
    let body = Message::DriverIdentity(d.clone())
        .encode_body(Version::V2011)
        .expect("encode");
    let back = Message::decode(&header(0x0702, Version::V2013), &body).expect("decode");
    assert_eq!(back, Message::DriverIdentity(d));
}

#[test]
fn can_data_from_yezhihao_has_three_frames() {
    let m = decoded_exact("yzh-0705-2013-can");
    let Message::CanData(c) = m else {
        panic!("not 0x0705: {m:?}")
    };
    assert_eq!(c.items.len(), 3);
    let it = c.items.first().expect("item");
    assert_eq!(it.id, 0x0102_0304);
    assert_eq!(it.bus_id(), 0x0102_0304);
    assert_eq!((it.channel(), it.extended()), (0, false));
    assert_eq!(it.data, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn multimedia_event_upload_and_shot_answer_from_yezhihao() {
    let ev = MediaEvent {
        media_id: 123,
        media_type: 0,
        format: 0,
        event: 7,
        channel: 1,
    };
    assert_eq!(
        decoded_exact("yzh-0800-2013"),
        Message::MediaEvent(ev.clone())
    );
    assert_eq!(
        decoded_exact("yzh-0800-2019-escaped-checksum"),
        Message::MediaEvent(ev)
    );
    let m = decoded_exact("yzh-0801-2013");
    let Message::MediaUpload(u) = m else {
        panic!("not 0x0801: {m:?}")
    };
    assert_eq!((u.media_id, u.media_type, u.format), (123, 1, 2));
    assert_eq!((u.event, u.channel), (1, 2));
    assert_eq!(u.location.latitude, 116_307_629);
    assert_eq!(u.location.time, [0x20, 0x07, 0x07, 0x19, 0x23, 0x59]);
    assert_eq!(u.data, vec![0x0d, 0x7b, 0x0d, 0x7b, 0x7b]);
    assert_eq!(
        decoded_exact("yzh-0805-2013"),
        Message::ShotAnswer(ShotAnswer {
            reply_serial: 0xf4c0,
            result: 0,
            media_ids: (1..=9).collect(),
        })
    );
}

#[test]
fn transparent_and_compressed_uploads_keep_their_bytes() {
    assert_eq!(
        decoded_exact("yzh-0900-2013"),
        Message::UplinkTransparent(UplinkTransparent {
            msg_type: 0,
            data: b"asdzxcqwe12335".to_vec(),
        })
    );
    let m = decoded_exact("traccar-0900-obd");
    let Message::UplinkTransparent(t) = m else {
        panic!("not 0x0900: {m:?}")
    };
    assert_eq!(t.msg_type, 0x41);
    assert!(t.data.starts_with(b"$OBD-RT,"));
    assert_eq!(
        decoded_exact("yzh-0901-2013"),
        Message::CompressedUpload(CompressedUpload {
            data: (1..=9).collect(),
            tail: vec![],
        })
    );
}

#[test]
fn terminal_resend_request_counts_are_a_word_in_2019() {
    let body = [0x00, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x03];
    let m = Message::decode(&header(0x0005, Version::V2019), &body).expect("decode");
    assert_eq!(
        m,
        Message::TerminalResendRequest(ResendRequest {
            first_serial: 0x10,
            ids: vec![1, 3]
        })
    );
    assert_eq!(m.msg_id(), 0x0005);
    let short = Message::decode(&header(0x0005, Version::V2019), &[0, 1, 0]);
    assert!(matches!(
        short,
        Err(jt808::BodyError::TooShort { msg_id: 0x0005, .. })
    ));
}

#[test]
fn rsa_key_needs_a_128_byte_modulus() {
    let m = Message::RsaPublicKey(RsaPublicKey {
        e: 65537,
        n: vec![1; 64],
    });
    assert!(m.encode_body(Version::V2013).is_err());
    assert!(Message::decode(&header(0x0A00, Version::V2013), &[0; 100]).is_err());
}

#[test]
fn area_query_answer_keeps_the_area_records_raw() {
    let body = [1, 0, 0, 0, 1, 0xAA, 0xBB];
    let m = Message::decode(&header(0x0608, Version::V2019), &body).expect("decode");
    assert_eq!(
        m,
        Message::AreaQueryAnswer(AreaQueryAnswer {
            area_type: 1,
            count: 1,
            data: vec![0xAA, 0xBB]
        })
    );
}

#[test]
fn recorder_upload_and_media_search_answer_carry_their_reply_serial() {
    let r = Message::RecorderUpload(RecorderUpload {
        reply_serial: 7,
        command: 0x08,
        data: vec![0x55, 0x7a],
    });
    assert_eq!(r.reply_serial(), Some(7));
    let s = Message::MediaSearchAnswer(MediaSearchAnswer {
        reply_serial: 9,
        items: Default::default(),
    });
    assert_eq!(s.reply_serial(), Some(9));
    assert_eq!(
        hex::encode(s.encode_body(Version::V2013).expect("encode")),
        "00090000"
    );
}

/// Frames of yezhihao/jt808-server `jtt808-protocol/src/test/resources/JT808.txt` (the
/// source of the `yzh-*` fixtures) that have no fixture file yet.
mod yezhihao {
    /// 0x0104, 2013 header: 38 parameters, 0x0001-0x0032 (implementation test vector).
    pub const QUERY_PARAMS_2013: &str = "7e010401ff0123456789017fff00682600000001044945425200000002047068555400000003047953445900000004044a754c3300000005046d58384f00000006044666315200000007046a33795400000010106833745f79776d46584a666c6f303444000000111059333145495234534f6d317842344654000000121041353035535f7975495343706769314d00000013106c6b6332315f3850695659326573786800000014103036676268576a356632556f52364c6b000000151068714c544f3859424d326e477a79426a0000001610516575586d596535726576504d7335580000001710424872616e6d505361656a775a5a735a00000018045256425400000019046e7948370000001a106e585975494d53415a35536a47396f6f0000001b04357a674e0000001c04557533570000001d106c6c54376139574b63624e3054524346000000200453477a57000000210456366d710000002204696d43690000002310374963334c31614f6e4570644d6163430000002410455f57464658444a5a50336e6e33484e0000002510626e624461427166336d746950736f620000002610645239726a63596f355f6f326f41324800000027046676786a00000028046836506c0000002904664751510000002c045f52464a0000002d044d4330480000002e044943356a0000002f04666b657200000030046e595f6a00000031026a41000000320409302130ff7e";
    /// 0x0107, 2019 header: model and terminal id BYTE[30].
    pub const ATTRIBUTES_2019: &str = "7e010740630112345678901234567890ffff007f0000797a680000000000000000000000000000000000000000004a54543830382e434e00000000000000000000303938373635343332313039383736353433323112345678901234567890096a74743830382e636e096a74743830382e636e7f7f697e";
    /// 0x0802, 2013 header: 4 stored items.
    pub const MEDIA_SEARCH_2013: &str = "7e080200900123456789017fff007b000400000001010101000004000000080006eeb6ad02633df701380003006320070719235900000002010101000004000000080006eeb6ad02633df701380003006320070719235900000003010101000004000000080006eeb6ad02633df701380003006320070719235900000004010101000004000000080006eeb6ad02633df7013800030063200707192359e97e";
    /// 0x0702, 2019 header, the 2013 body (no ID card after the expiry).
    pub const DRIVER_2019: &str = "7e0702404e0100000000017299841738ffff022007211830000004d5c5c8fd000000000000003132333435363738393031323328d6d0bbaac8cbc3f1b9b2bacdb9fab5c0c2b7d4cbcae4b4d3d2b5c8cbd4b1b4d3d2b5d7cab8f1d6a420190630387e";
}

fn decode_wire(wire_hex: &str) -> (Header, Vec<u8>, Message) {
    let wire = hex::decode(wire_hex).expect("hex");
    let inner = wire.get(1..wire.len() - 1).expect("delimiters");
    let content = jt808::escape::unescape(inner).expect("unescape");
    let f = Frame::parse(&content, ChecksumPolicy::Strict).expect("frame");
    let m = Message::decode(&f.header, &f.body).expect("decode");
    (f.header.clone(), f.body.to_vec(), m)
}

#[test]
fn every_parameter_of_yezhihaos_0x0104_is_typed_by_the_table() {
    let (h, body, m) = decode_wire(yezhihao::QUERY_PARAMS_2013);
    let Message::QueryParamsAnswer(a) = &m else {
        panic!("not 0x0104: {m:?}")
    };
    assert_eq!(a.params.len(), 38);
    // The table's width for every id matches what the terminal sent: nothing fell back
    // to raw bytes, so every value is a number or a string.
    for p in &a.params {
        assert!(
            !matches!(p.value, ParamValue::Bytes(_)) || p.id == 0x0032,
            "{:#06x} stayed raw: {:?}",
            p.id,
            p.value
        );
    }
    let json = jt808::msg::params::to_json_map(&a.params);
    assert_eq!(json["main_server_apn"], "h3t_ywmFXJflo04D");
    assert_eq!(json["slave_server_apn"], "7Ic3L1aOnEpdMacC");
    assert_eq!(json["fence_radius_m"], 0x6a41);
    assert_eq!(json["illegal_driving_period"], "09302130");
    assert_eq!(
        hex::encode(m.encode_body(h.version).expect("encode")),
        hex::encode(body)
    );
}

#[test]
fn attributes_2019_from_yezhihao_use_the_30_byte_widths() {
    let (h, body, m) = decode_wire(yezhihao::ATTRIBUTES_2019);
    let Message::Attributes(a) = &m else {
        panic!("not 0x0107: {m:?}")
    };
    assert_eq!(a.layout, Version::V2019);
    assert_eq!(a.model, "JTT808.CN");
    assert_eq!(a.terminal_id, "09876543210987654321");
    assert_eq!(a.iccid, "12345678901234567890");
    assert_eq!((a.hardware_version.as_str(), a.gnss), ("jtt808.cn", 0x7f));
    // Left-padded text comes back right-padded: same length, same fields.
    let again = m.encode_body(h.version).expect("encode");
    assert_eq!(again.len(), body.len());
    assert_eq!(Message::decode(&h, &again).expect("decode"), m);
}

#[test]
fn stored_media_search_answer_from_yezhihao_has_four_located_items() {
    let (h, body, m) = decode_wire(yezhihao::MEDIA_SEARCH_2013);
    let Message::MediaSearchAnswer(a) = &m else {
        panic!("not 0x0802: {m:?}")
    };
    assert_eq!(a.reply_serial, 123);
    let ids: Vec<u32> = a.items.iter().map(|i| i.media_id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    let first = a.items.first().expect("item");
    assert_eq!((first.media_type, first.channel, first.event), (1, 1, 1));
    assert_eq!(first.location.time, [0x20, 0x07, 0x07, 0x19, 0x23, 0x59]);
    assert_eq!(m.encode_body(h.version).expect("encode"), body);
}

#[test]
fn a_2019_driver_identity_without_the_id_card_keeps_its_fields() {
    let (h, body, m) = decode_wire(yezhihao::DRIVER_2019);
    let Message::DriverIdentity(d) = &m else {
        panic!("not 0x0702: {m:?}")
    };
    assert_eq!(d.layout, Version::V2019);
    assert_eq!(d.name, "张三");
    assert_eq!(d.id_card, None);
    assert!(d.tail.is_empty());
    // The left-padded certificate comes back right-padded; nothing else changes.
    let again = m.encode_body(h.version).expect("encode");
    assert_eq!(again.len(), body.len());
    assert_eq!(Message::decode(&h, &again).expect("decode"), m);
}
