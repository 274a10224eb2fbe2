//! The JT/T 808 frame layer against real frames: golden frames, every split point, junk,
//! quirks, limits and arbitrary input.
//!
//! Frames are copied from `/work/shared/reference-frames/jt808.json` (each with its public
//! source in a comment) so the tests do not depend on that directory.

use bytes::BytesMut;
use jt808::{
    BadFrame, ChecksumPolicy, Codec, CodecConfig, Encryption, Frame, FrameError, Header, Package,
    Version,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

struct Golden {
    hex: &'static str,
    msg_id: u16,
    version: Version,
    phone: &'static str,
    serial: u16,
    body_len: usize,
}

const GOLDEN: &[Golden] = &[
    // emqx/emqx apps/emqx_gateway_jt808/test/emqx_jt808_SUITE.erl t_case03_heartbeat
    Golden { hex: "7e00020000000123456789004ec57e", msg_id: 0x0002, version: Version::V2013, phone: "000123456789", serial: 78, body_len: 0 },
    // emqx/emqx emqx_jt808_SUITE.erl client_auth_procedure_2019/2 (2019 header)
    Golden { hex: "7e8001400501000000000001234567890001004e010200007e", msg_id: 0x8001, version: Version::V2019, phone: "00000000000123456789", serial: 1, body_len: 5 },
    // traccar/traccar Jt808ProtocolDecoderTest.java line 325
    Golden { hex: "7e0102000e013511221122000661757468656e7469636174696f6e3f7e", msg_id: 0x0102, version: Version::V2013, phone: "013511221122", serial: 6, body_len: 14 },
    // traccar/traccar Jt808ProtocolDecoderTest.java line 163: non-BCD phone with 0x7D (escaped)
    Golden { hex: "7e090000344f07788ef87d010138f02305151230460102020001ffffffff000100001457000000020006503134353700000c000a029dc63004b99a98230515132726787e", msg_id: 0x0900, version: Version::V2013, phone: "4f07788ef87d", serial: 312, body_len: 52 },
    // cuteLittleDevil/go-jt808 terminal/testdata/[0100]-JT2019-终端-注册.txt (reply)
    Golden { hex: "7e810040170112345678901234562019000100010031323334353637383930313233343536323031390a7e", msg_id: 0x8100, version: Version::V2019, phone: "12345678901234562019", serial: 1, body_len: 23 },
    // emqx/emqx emqx_jt808_parser_SUITE.erl: province 0x007E / city 0x007D escaped in the body
    Golden { hex: "7e0100002c000123456789004e007d02007d016578616d7033333333333333333333333333333333333333333132333435363703756a766c323339867e", msg_id: 0x0100, version: Version::V2013, phone: "000123456789", serial: 78, body_len: 44 },
    // traccar/traccar Jt808ProtocolDecoderTest.java line 310
    Golden { hex: "7e0200002c00160128561400020000000000040001005de1f7065c6cef00000000000017011710044201040000a9002a02000030011b3101030c7e", msg_id: 0x0200, version: Version::V2013, phone: "001601285614", serial: 2, body_len: 44 },
    // SmallChi/JT808 JT808_0x0001Test.cs
    Golden { hex: "7e0001000501234567890004b303e8000200d37e", msg_id: 0x0001, version: Version::V2013, phone: "012345678900", serial: 1203, body_len: 5 },
];

fn wire(hex: &str) -> Vec<u8> {
    hex::decode(hex).unwrap()
}

/// Feeds `chunks` one after another, then signals end of stream; returns every item.
fn decode_chunks(codec: &mut Codec, chunks: &[&[u8]]) -> Vec<Result<Frame, BadFrame>> {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            items.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
        items.push(item);
    }
    items
}

fn frames(items: Vec<Result<Frame, BadFrame>>) -> Vec<Frame> {
    items.into_iter().filter_map(Result::ok).collect()
}

fn errors(items: &[Result<Frame, BadFrame>]) -> Vec<FrameError> {
    items
        .iter()
        .filter_map(|i| i.as_ref().err().map(|b| b.error.clone()))
        .collect()
}

fn all_golden_wire() -> Vec<u8> {
    GOLDEN.iter().flat_map(|g| wire(g.hex)).collect()
}

fn golden_frames() -> Vec<Frame> {
    frames(decode_chunks(&mut Codec::default(), &[&all_golden_wire()]))
}

#[test]
fn every_golden_frame_decodes_with_its_header_fields_and_re_encodes_byte_exact() {
    for g in GOLDEN {
        let items = decode_chunks(&mut Codec::default(), &[&wire(g.hex)]);
        assert_eq!(items.len(), 1, "{}", g.hex);
        let frame = items.into_iter().next().unwrap().unwrap();
        assert_eq!(frame.header.msg_id, g.msg_id);
        assert_eq!(frame.header.version, g.version);
        assert_eq!(frame.header.phone, g.phone);
        assert_eq!(frame.header.serial, g.serial);
        assert_eq!(frame.header.package, None);
        assert_eq!(frame.header.encryption, Encryption::None);
        assert_eq!(frame.body.len(), g.body_len);
        assert!(frame.checksum_ok);
        if g.version == Version::V2019 {
            assert_eq!(frame.header.protocol_version, 1);
        }
        assert_eq!(hex::encode(frame.to_wire()), g.hex);
    }
}

#[test]
fn the_stream_of_all_golden_frames_gives_the_same_frames_at_every_split_point() {
    let stream = all_golden_wire();
    let expected = golden_frames();
    assert_eq!(expected.len(), GOLDEN.len());
    for at in 0..=stream.len() {
        let (a, b) = stream.split_at(at);
        let items = decode_chunks(&mut Codec::default(), &[a, b]);
        assert!(
            errors(&items).is_empty(),
            "split at {at}: {:?}",
            errors(&items)
        );
        assert_eq!(frames(items), expected, "split at {at}");
    }
}

#[test]
fn a_byte_at_a_time_stream_gives_the_same_frames() {
    let stream = all_golden_wire();
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    let items = decode_chunks(&mut Codec::default(), &chunks);
    assert!(errors(&items).is_empty());
    assert_eq!(frames(items), golden_frames());
}

#[test]
fn an_http_probe_a_tls_hello_and_noise_each_give_one_error_item_and_the_frames_after_them_decode() {
    let http = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec();
    // TLS 1.2 ClientHello record start (RFC 5246 §6.2.1, §7.4.1.2); contains no 0x7E.
    let tls = vec![
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5a, 0x11,
    ];
    let noise: Vec<u8> = (0u8..=255).filter(|b| *b != 0x7e).collect();
    let heartbeat = wire(GOLDEN[0].hex);
    let mut stream = Vec::new();
    for junk in [&http, &tls, &noise] {
        stream.extend_from_slice(junk);
        stream.extend_from_slice(&heartbeat);
    }
    for chunk_len in [1, 7, stream.len()] {
        let chunks: Vec<&[u8]> = stream.chunks(chunk_len).collect();
        let items = decode_chunks(&mut Codec::default(), &chunks);
        // Junk at the start is `Junk`; junk after a frame follows that frame's closing
        // 0x7E (which may open the next frame), so it reads as one bad frame.
        let errs = errors(&items);
        assert_eq!(errs.len(), 3, "chunks of {chunk_len}: {errs:?}");
        assert_eq!(
            errs[0],
            FrameError::Junk { len: http.len() },
            "chunks of {chunk_len}: {errs:?}"
        );
        assert!(errs.iter().all(FrameError::can_continue));
        assert_eq!(frames(items).len(), 3);
    }
}

#[test]
fn an_unescaped_7d_checksum_before_the_closing_flag_is_read_as_the_checksum() {
    // Heartbeat with serial 0x00F6: XOR of the content is 0x7D (computed from the emqx
    // heartbeat above, whose checksum is 0xC5 with serial 0x004E).
    let proper = wire("7e00020000000123456789");
    let mut escaped = proper.clone();
    escaped.extend_from_slice(&wire("00f67d017e"));
    let mut quirky = proper;
    quirky.extend_from_slice(&wire("00f67d7e"));
    let a = frames(decode_chunks(&mut Codec::default(), &[&escaped]));
    let b = frames(decode_chunks(&mut Codec::default(), &[&quirky]));
    assert_eq!(a.len(), 1);
    assert_eq!(a, b);
    assert_eq!(a[0].header.serial, 0x00f6);
}

#[test]
fn a_2013_header_with_the_2019_flag_is_read_by_its_length_as_2013() {
    // emqx 0x0102 2013 auth "7e01020006000123456789004e313233343536c57e" with bit 14 set
    // in the attributes (0x0006 -> 0x4006) and the checksum fixed (0xC5 ^ 0x40 = 0x85).
    let items = decode_chunks(
        &mut Codec::default(),
        &[&wire(
            "7e01024006000123456789004e31323334353685 7e"
                .replace(' ', "")
                .as_str(),
        )],
    );
    let frame = items.into_iter().next().unwrap().unwrap();
    assert_eq!(frame.header.version, Version::V2013);
    assert_eq!(frame.header.phone, "000123456789");
    assert_eq!(frame.header.serial, 78);
    assert_eq!(&frame.body[..], b"123456");
}

#[test]
fn a_bad_escape_is_an_error_item_and_the_next_frame_still_decodes() {
    let mut stream = wire("7e000200007d03");
    stream.extend_from_slice(&wire(GOLDEN[0].hex));
    let items = decode_chunks(&mut Codec::default(), &[&stream]);
    assert_eq!(
        errors(&items),
        vec![FrameError::BadEscape {
            offset: 4,
            byte: 0x03
        }]
    );
    assert!(errors(&items)[0].can_continue());
    assert_eq!(errors(&items)[0].reason(), "bad_escape");
    assert_eq!(frames(items).len(), 1);
}

#[test]
fn a_bad_checksum_is_refused_when_strict_and_flagged_when_lenient() {
    let bad = wire("7e00020000000123456789004ec47e");
    let items = decode_chunks(&mut Codec::default(), &[&bad]);
    assert_eq!(
        errors(&items),
        vec![FrameError::BadChecksum {
            expected: 0xc4,
            actual: 0xc5
        }]
    );
    assert_eq!(items[0].as_ref().unwrap_err().raw.as_ref(), &bad[..]);
    let lenient = CodecConfig {
        checksum: ChecksumPolicy::Lenient,
        ..CodecConfig::default()
    };
    let got = frames(decode_chunks(&mut Codec::new(lenient), &[&bad]));
    assert_eq!(got.len(), 1);
    assert!(!got[0].checksum_ok);
}

#[test]
fn a_body_length_mismatch_is_refused_when_strict_and_accepted_when_lenient() {
    // Heartbeat declaring 0 bytes but carrying one (0x01): checksum 0xC5 ^ 0x01 = 0xC4.
    let hb = wire("7e00020000000123456789004e01c47e");
    let items = decode_chunks(&mut Codec::default(), &[&hb]);
    assert_eq!(
        errors(&items),
        vec![FrameError::LengthMismatch {
            declared: 0,
            actual: 1
        }]
    );
    let lenient = CodecConfig {
        checksum: ChecksumPolicy::Lenient,
        ..CodecConfig::default()
    };
    let got = frames(decode_chunks(&mut Codec::new(lenient), &[&hb]));
    assert_eq!(&got[0].body[..], &[0x01]);
}

#[test]
fn consecutive_flags_and_shared_delimiters_lose_no_frame() {
    let hb = wire(GOLDEN[0].hex);
    let ack = wire(GOLDEN[7].hex);
    let mut stream = vec![0x7e, 0x7e];
    stream.extend_from_slice(&hb);
    stream.extend_from_slice(&[0x7e, 0x7e]);
    stream.extend_from_slice(&ack[1..]); // shares the previous closing 0x7E
    stream.extend_from_slice(&hb);
    let items = decode_chunks(&mut Codec::default(), &[&stream]);
    assert!(errors(&items).is_empty(), "{:?}", errors(&items));
    let got = frames(items);
    assert_eq!(
        got.iter().map(|f| f.header.msg_id).collect::<Vec<_>>(),
        vec![0x0002, 0x0001, 0x0002]
    );
}

#[test]
fn an_oversized_frame_is_reported_once_and_skipped_with_a_bounded_buffer() {
    let config = CodecConfig {
        max_frame_len: 64,
        ..CodecConfig::default()
    };
    let mut codec = Codec::new(config);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    buf.extend_from_slice(&[0x7e]);
    for _ in 0..100 {
        buf.extend_from_slice(&[0x11; 10]);
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            items.push(item);
        }
        assert!(buf.len() <= 64 + 10);
    }
    buf.extend_from_slice(&wire(GOLDEN[0].hex));
    while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
        items.push(item);
    }
    assert!(matches!(
        errors(&items)[..],
        [FrameError::TooLarge { max: 64, .. }]
    ));
    assert_eq!(frames(items).len(), 1);
}

#[test]
fn a_stream_ending_inside_a_frame_reports_a_truncated_frame_that_cannot_continue() {
    let hb = wire(GOLDEN[0].hex);
    let items = decode_chunks(&mut Codec::default(), &[&hb[..9]]);
    assert_eq!(errors(&items), vec![FrameError::Truncated { len: 9 }]);
    assert!(!errors(&items)[0].can_continue());
}

#[test]
fn an_rsa_frame_is_delivered_but_its_body_is_refused() {
    let header = Header {
        msg_id: 0x0200,
        version: Version::V2013,
        protocol_version: 0,
        phone: "013800138000".into(),
        serial: 9,
        encryption: Encryption::Rsa,
        package: None,
    };
    let sent = Frame::new(header, vec![1, 2, 3]);
    let got = frames(decode_chunks(&mut Codec::default(), &[&sent.to_wire()]));
    assert_eq!(got, vec![sent]);
    assert_eq!(
        got[0].plain_body(),
        Err(FrameError::Encrypted {
            msg_id: 0x0200,
            bits: 1
        })
    );
}

#[test]
fn the_encoder_writes_what_to_wire_returns() {
    let frame = golden_frames().remove(3);
    let mut dst = BytesMut::new();
    Codec::default().encode(&frame, &mut dst).unwrap();
    assert_eq!(&dst[..], &frame.to_wire()[..]);
}

fn header_strategy() -> impl Strategy<Value = Header> {
    (
        any::<u16>(),
        prop_oneof![Just(Version::V2013), Just(Version::V2019)],
        "[0-9]{20}",
        any::<u16>(),
        proptest::option::of((1u16..=u16::MAX, any::<u16>())),
        0u8..8,
        proptest::bool::ANY,
    )
        .prop_map(|(msg_id, version, digits, serial, pkg, enc, hex_phone)| {
            let phone = if hex_phone {
                // A non-BCD phone (binary IMEI) comes back as lowercase hex.
                "fa".repeat(version.phone_len())
            } else {
                digits[..version.phone_len() * 2].to_string()
            };
            Header {
                msg_id,
                version,
                protocol_version: if version == Version::V2019 { 1 } else { 0 },
                phone,
                serial,
                encryption: Encryption::from_bits(enc),
                package: pkg.map(|(total, i)| Package {
                    total,
                    index: 1 + i % total,
                }),
            }
        })
}

proptest! {
    #[test]
    fn unescape_inverts_escape(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let escaped = jt808::escape::escape(&bytes);
        prop_assert!(!escaped.contains(&0x7e));
        prop_assert_eq!(jt808::escape::unescape(&escaped).unwrap(), bytes);
    }

    #[test]
    fn any_header_and_body_round_trip_through_the_wire(
        header in header_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..=1023),
    ) {
        let sent = Frame::new(header, body);
        let items = decode_chunks(&mut Codec::default(), &[&sent.to_wire()]);
        prop_assert_eq!(frames(items), vec![sent]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_the_buffer_stays_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40),
    ) {
        let config = CodecConfig { max_frame_len: 256, ..CodecConfig::default() };
        let mut codec = Codec::new(config);
        let mut buf = BytesMut::new();
        for chunk in &chunks {
            buf.extend_from_slice(chunk);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                if let Ok(frame) = item {
                    let again = Frame::parse(
                        &jt808::escape::unescape(&frame.to_wire()[1..frame.to_wire().len() - 1]).unwrap(),
                        ChecksumPolicy::Strict,
                    );
                    prop_assert_eq!(again, Ok(frame));
                }
            }
            prop_assert!(buf.len() <= 256);
        }
        while codec.decode_eof(&mut buf).unwrap().is_some() {}
        prop_assert!(buf.is_empty());
    }
}
