//! Terminal messages: `decode(encode(m)) == m` for every typed body and edition, and real
//! frames from `fixtures/jt808/` decoded field by field.

use jt808::msg::{Param, ParamValue, QueryParamsAnswer};
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

fn message(_v: Version) -> BoxedStrategy<Message> {
    prop_oneof![
        (any::<u16>(), proptest::collection::vec(param(), 0..8)).prop_map(
            |(reply_serial, params)| Message::QueryParamsAnswer(QueryParamsAnswer {
                reply_serial,
                params
            })
        ),
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
