//! `decode(encode(m)) == m` for every typed message and edition.

use jt808::msg::{
    AlarmConfirm, Authenticate, GeneralResponse, LocationItem, LocationReport, Register,
    RegisterResponse,
};
use jt808::{Encryption, Header, Message, Version};
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

fn response() -> impl Strategy<Value = GeneralResponse> {
    (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(reply_serial, reply_id, result)| {
        GeneralResponse {
            reply_serial,
            reply_id,
            result,
        }
    })
}

fn location() -> impl Strategy<Value = LocationReport> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<[u8; 6]>()),
        proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..8))
                .prop_map(|(id, value)| LocationItem { id, value }),
            0..6,
        ),
    )
        .prop_map(
            |((alarm, status, latitude, longitude), (altitude, speed, heading, time), items)| {
                LocationReport {
                    alarm,
                    status,
                    latitude,
                    longitude,
                    altitude,
                    speed,
                    heading,
                    time,
                    items: items.into(),
                    tail: vec![],
                }
            },
        )
}

fn message(v: Version) -> BoxedStrategy<Message> {
    let (wm, wmo, wt) = match v {
        Version::V2011 => (5, 8, 7),
        Version::V2013 => (5, 20, 7),
        Version::V2019 => (11, 30, 30),
    };
    let register = (
        any::<u16>(),
        any::<u16>(),
        text(wm),
        text(wmo),
        text(wt),
        any::<u8>(),
        text(8),
    )
        .prop_map(
            move |(province, city, manufacturer, model, terminal_id, plate_color, plate)| {
                Message::Register(Register {
                    province,
                    city,
                    manufacturer,
                    model,
                    terminal_id,
                    plate_color,
                    plate,
                    layout: v,
                })
            },
        );
    let auth = (text(20), text(15), text(20)).prop_map(move |(token, imei, sv)| {
        let v19 = v == Version::V2019;
        Message::Authenticate(Authenticate {
            token,
            imei: v19.then_some(imei),
            software_version: v19.then_some(sv),
        })
    });
    let reg_resp = (any::<u16>(), 0u8..5, text(20)).prop_map(|(reply_serial, result, t)| {
        Message::RegisterResponse(RegisterResponse {
            reply_serial,
            result,
            token: (result == 0).then_some(t),
        })
    });
    prop_oneof![
        response().prop_map(Message::TerminalResponse),
        response().prop_map(Message::PlatformResponse),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(|extra| Message::Heartbeat { extra }),
        Just(Message::Logout),
        register,
        reg_resp,
        auth,
        location().prop_map(Message::Location),
        (any::<u16>(), location()).prop_map(|(reply_serial, report)| Message::LocationAnswer {
            reply_serial,
            report
        }),
        (any::<u16>(), location()).prop_map(|(reply_serial, report)| {
            Message::VehicleControlAnswer {
                reply_serial,
                report,
            }
        }),
        (any::<u16>(), any::<u32>()).prop_map(|(alarm_serial, alarm_type)| {
            Message::AlarmConfirm(AlarmConfirm {
                alarm_serial,
                alarm_type,
            })
        }),
        (0u8..2, proptest::collection::vec(location(), 0..4))
            .prop_map(|(batch_type, items)| Message::LocationBatch { batch_type, items }),
        (
            0x0F00u16..0x0FFF,
            proptest::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(|(msg_id, body)| Message::Unknown { msg_id, body }),
    ]
    .boxed()
}

proptest! {
    #[test]
    fn every_message_decodes_to_itself_after_encoding(
        (v, m) in version().prop_flat_map(|v| (Just(v), message(v)))
    ) {
        let body = m.encode_body(v).expect("encode");
        // The frame header cannot mark 2011: decode 2011 bodies through a 2013 header.
        let hv = if v == Version::V2011 { Version::V2013 } else { v };
        let back = Message::decode(&header(m.msg_id(), hv), &body).expect("decode");
        prop_assert_eq!(back, m);
    }

    #[test]
    fn arbitrary_bodies_never_panic(id in any::<u16>(), v in version(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Message::decode(&header(id, v), &body);
    }
}

#[test]
fn a_vendor_item_running_past_the_body_is_kept_as_tail() {
    let mut body = vec![0u8; 28];
    body.extend_from_slice(&[0x01, 0x04, 0, 0, 0, 5, 0xE1, 0x09, 1, 2]);
    let Message::Location(l) =
        Message::decode(&header(0x0200, Version::V2013), &body).expect("decode")
    else {
        panic!("not a location")
    };
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.tail, vec![0xE1, 0x09, 1, 2]);
}

#[test]
fn a_short_location_body_is_a_too_short_error() {
    let err = Message::decode(&header(0x0200, Version::V2013), &[0; 27]);
    assert_eq!(
        err,
        Err(jt808::BodyError::TooShort {
            msg_id: 0x0200,
            len: 27,
            need: 28
        })
    );
}
