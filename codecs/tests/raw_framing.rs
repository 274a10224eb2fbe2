//! The raw TCP framers, identity, payload and config, through their public API.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use codecs::raw::{
    self, Ack, Acker, ByteRange, Charset, CodecError, ConfigError, DelimitedFraming, Endian,
    FieldIdentity, FirstFrameIdentity, FixedFraming, FrameRole, Framing, IdEncoding, IdPattern,
    Identifier, Identity, IdentityError, LengthPrefixedFraming, PayloadError, PayloadMode,
    RawCodec, RawFrameError, RawListenerSpec,
};
use codecs::{Data, EventContext};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

type Item = Result<Bytes, RawFrameError>;

/// Feeds `chunks` one read at a time, then ends the stream. Returns the items and the
/// fatal error, if any (decoding stops there, as `FramedRead` would).
fn run(codec: &mut RawCodec, chunks: &[&[u8]]) -> (Vec<Item>, Option<RawFrameError>) {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => return (items, Some(fatal(e))),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => break,
            Err(e) => return (items, Some(fatal(e))),
        }
    }
    assert!(buf.is_empty(), "decode_eof left {} bytes", buf.len());
    (items, None)
}

fn fatal(e: CodecError) -> RawFrameError {
    e.frame_error().cloned().expect("a frame error")
}

fn codec(f: &Framing) -> RawCodec {
    RawCodec::new(f).expect("valid framing")
}

fn ok(frames: &[&[u8]]) -> Vec<Item> {
    frames
        .iter()
        .map(|f| Ok(Bytes::copy_from_slice(f)))
        .collect()
}

/// Reasons of the items, `"ok"` for frames: compares error sequences without lengths.
fn shape(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Ok(f) => format!("ok:{}", hex::encode(f)),
            Err(e) => e.reason().to_owned(),
        })
        .collect()
}

/// Decodes `wire` whole, split at every point, and a byte at a time: the item reasons
/// (and frames) must not depend on how the bytes arrived.
fn same_at_every_split(f: &Framing, wire: &[u8], want: &[&str]) {
    let (whole, fatal_whole) = run(&mut codec(f), &[wire]);
    assert_eq!(shape(&whole), want, "whole");
    for at in 0..=wire.len() {
        let (a, b) = wire.split_at(at);
        let (items, fatal) = run(&mut codec(f), &[a, b]);
        assert_eq!(shape(&items), want, "split at {at}");
        assert_eq!(fatal.is_some(), fatal_whole.is_some(), "split at {at}");
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let (items, fatal) = run(&mut codec(f), &bytes);
    assert_eq!(shape(&items), want, "byte at a time");
    assert_eq!(fatal.is_some(), fatal_whole.is_some(), "byte at a time");
}

fn delimited(delimiter: &str, both_ends: bool, max: usize) -> Framing {
    Framing::Delimited(DelimitedFraming {
        delimiter: delimiter.into(),
        both_ends,
        max_frame_len: max,
    })
}

fn lp(f: LengthPrefixedFraming) -> Framing {
    Framing::LengthPrefixed(f)
}

fn okh(s: &str) -> String {
    format!("ok:{}", hex::encode(s))
}

// ---------------------------------------------------------------- delimited

#[test]
fn newline_frames_decode_the_same_at_every_split_point() {
    let f = delimited("\n", false, 64);
    same_at_every_split(
        &f,
        b"{\"a\":1}\n\nhello\n",
        &[&okh("{\"a\":1}"), &okh("hello")],
    );
}

#[test]
fn two_frames_in_one_read_are_two_items() {
    let (items, fatal) = run(&mut codec(&delimited("\n", false, 64)), &[b"a\nb\n"]);
    assert_eq!(items, ok(&[b"a", b"b"]));
    assert!(fatal.is_none());
}

#[test]
fn multi_byte_delimiter_split_across_reads_is_found() {
    let f = delimited("\r\n", false, 64);
    same_at_every_split(&f, b"ab\r\ncd\r\n", &[&okh("ab"), &okh("cd")]);
    // A lone \r inside a frame is data.
    same_at_every_split(&f, b"a\rb\r\n", &[&okh("a\rb")]);
}

#[test]
fn unterminated_last_line_is_a_frame_at_end_of_stream() {
    let (items, _) = run(&mut codec(&delimited("\n", false, 64)), &[b"a\nbc"]);
    assert_eq!(items, ok(&[b"a", b"bc"]));
}

#[test]
fn oversize_delimited_frame_is_reported_once_and_the_next_frame_decodes() {
    let f = delimited("\n", false, 8);
    same_at_every_split(
        &f,
        b"0123456789abcdef0123\nok\n",
        &["too_large", &okh("ok")],
    );
    // Exactly max_frame_len is fine.
    same_at_every_split(&f, b"01234567\n", &[&okh("01234567")]);
}

#[test]
fn oversize_frame_does_not_grow_the_buffer() {
    let mut c = codec(&delimited("\n", false, 16));
    let mut buf = BytesMut::new();
    let mut errors = 0;
    for _ in 0..1000 {
        buf.extend_from_slice(&[b'x'; 100]);
        while let Some(item) = c.decode(&mut buf).expect("never fatal") {
            assert!(item.is_err());
            errors += 1;
        }
        assert!(buf.len() <= 16 + 1, "buffer {}", buf.len());
    }
    assert_eq!(errors, 1);
    buf.extend_from_slice(b"\nfine\n");
    let mut rest = Vec::new();
    while let Some(item) = c.decode(&mut buf).expect("never fatal") {
        rest.push(item);
    }
    assert_eq!(rest, ok(&[b"fine"]));
}

#[test]
fn both_ends_frames_with_shared_or_separate_delimiters() {
    let f = delimited("0x7e", true, 64);
    let want = [&okh("\x01\x02")[..], &okh("\x03")[..]];
    same_at_every_split(&f, b"\x7e\x01\x02\x7e\x7e\x03\x7e", &want);
    same_at_every_split(&f, b"\x7e\x01\x02\x7e\x03\x7e", &want);
}

#[test]
fn both_ends_junk_then_frame_and_truncated_tail() {
    let f = delimited("0x7e", true, 64);
    same_at_every_split(
        &f,
        b"junk\x7eA\x7e\x7eBC",
        &["junk", &okh("A"), "truncated"],
    );
}

#[test]
fn both_ends_oversize_frame_resyncs_at_the_next_delimiter() {
    let f = delimited("0x7e", true, 4);
    same_at_every_split(
        &f,
        b"\x7e0123456789\x7e\x7eok\x7e",
        &["too_large", &okh("ok")],
    );
}

#[test]
fn delimited_encoder_frames_like_the_decoder_expects() {
    let mut c = codec(&delimited("0x7e", true, 64));
    let mut dst = BytesMut::new();
    c.encode(Bytes::from_static(b"\x01\x02"), &mut dst)
        .expect("ok");
    assert_eq!(&dst[..], b"\x7e\x01\x02\x7e");
    let err = c
        .encode(&b"a\x7eb"[..], &mut dst)
        .expect_err("contains delimiter");
    assert_eq!(err.reason(), "contains_delimiter");
    assert_eq!(dst.len(), 4, "a refused body writes nothing");
    let mut c = codec(&delimited("\n", false, 4));
    assert_eq!(
        c.encode(&b"12345"[..], &mut dst)
            .expect_err("too big")
            .reason(),
        "too_large"
    );
}

// ---------------------------------------------------------- length_prefixed

/// `23 23 | len:u16 BE | body`, as in docs/raw-tcp.md's binary example.
fn hash_prefixed(strip_header: bool) -> LengthPrefixedFraming {
    LengthPrefixedFraming {
        width: 2,
        endian: Endian::Big,
        offset: 2,
        prefix: Some("2323".into()),
        strip_header,
        max_frame_len: 64,
        ..Default::default()
    }
}

#[test]
fn length_prefixed_header_kept_at_every_split_point() {
    let wire = b"\x23\x23\x00\x03abc\x23\x23\x00\x00\x23\x23\x00\x01z";
    same_at_every_split(
        &lp(hash_prefixed(false)),
        wire,
        &[
            &format!("ok:{}", hex::encode(b"\x23\x23\x00\x03abc")),
            &format!("ok:{}", hex::encode(b"\x23\x23\x00\x00")),
            &format!("ok:{}", hex::encode(b"\x23\x23\x00\x01z")),
        ],
    );
}

#[test]
fn length_prefixed_header_stripped_at_every_split_point() {
    let wire = b"\x23\x23\x00\x03abc\x23\x23\x00\x01z";
    same_at_every_split(&lp(hash_prefixed(true)), wire, &[&okh("abc"), &okh("z")]);
}

#[test]
fn little_endian_and_big_endian_read_the_same_value_differently() {
    let le = lp(LengthPrefixedFraming {
        endian: Endian::Little,
        strip_header: true,
        ..Default::default()
    });
    let be = lp(LengthPrefixedFraming {
        strip_header: true,
        max_frame_len: 1024,
        ..Default::default()
    });
    same_at_every_split(&le, b"\x02\x00hi", &[&okh("hi")]);
    // Big endian reads 0x0200 = 512 bytes: waits, then the stream ends inside the frame.
    same_at_every_split(&be, b"\x02\x00hi", &["truncated"]);
}

#[test]
fn one_and_four_byte_length_fields() {
    let w1 = lp(LengthPrefixedFraming {
        width: 1,
        strip_header: true,
        ..Default::default()
    });
    same_at_every_split(&w1, b"\x01a\x02bc", &[&okh("a"), &okh("bc")]);
    let w4 = lp(LengthPrefixedFraming {
        width: 4,
        endian: Endian::Little,
        strip_header: true,
        ..Default::default()
    });
    same_at_every_split(&w4, b"\x03\x00\x00\x00abc", &[&okh("abc")]);
}

#[test]
fn adjustment_and_counts_header() {
    // The value counts the whole frame: header (1 prefix + 2 length) + body.
    let whole = lp(LengthPrefixedFraming {
        offset: 1,
        counts_header: true,
        strip_header: true,
        ..Default::default()
    });
    same_at_every_split(&whole, b"\xaa\x00\x05hi", &[&okh("hi")]);
    // The value excludes a 2-byte checksum that follows: adjustment +2.
    let crc = lp(LengthPrefixedFraming {
        adjustment: 2,
        strip_header: true,
        ..Default::default()
    });
    same_at_every_split(&crc, b"\x00\x02hiCC", &[&okh("hiCC")]);
    // The value counts the length field itself: adjustment -2.
    let self_counting = lp(LengthPrefixedFraming {
        adjustment: -2,
        strip_header: true,
        ..Default::default()
    });
    same_at_every_split(&self_counting, b"\x00\x04hi", &[&okh("hi")]);
}

#[test]
fn bad_length_is_fatal_after_the_good_frames() {
    let f = lp(LengthPrefixedFraming {
        width: 1,
        counts_header: true,
        strip_header: true,
        ..Default::default()
    });
    let (items, fatal) = run(&mut codec(&f), &[b"\x02a\x00zzz"]);
    assert_eq!(items, ok(&[b"a"]));
    assert!(matches!(
        fatal,
        Some(RawFrameError::BadLength { value: 0, .. })
    ));
    // Negative after adjustment.
    let neg = lp(LengthPrefixedFraming {
        adjustment: -5,
        ..Default::default()
    });
    let (_, fatal) = run(&mut codec(&neg), &[b"\x00\x01x"]);
    assert_eq!(fatal.map(|e| e.reason()), Some("bad_length"));
}

#[test]
fn oversize_length_is_fatal_before_the_frame_is_buffered() {
    let f = lp(LengthPrefixedFraming {
        max_frame_len: 100,
        ..Default::default()
    });
    let mut c = codec(&f);
    let mut buf = BytesMut::from(&b"\xff\xff"[..]);
    let err = c.decode(&mut buf).expect_err("fatal");
    assert!(matches!(
        err.frame_error(),
        Some(RawFrameError::TooLarge {
            len: 65537,
            max: 100
        })
    ));
    assert!(c.decode(&mut buf).is_err(), "stays fatal");
}

#[test]
fn wrong_prefix_is_fatal() {
    let (items, fatal) = run(
        &mut codec(&lp(hash_prefixed(true))),
        &[b"\x23\x23\x00\x01a\x24\x23\x00\x01b"],
    );
    assert_eq!(items, ok(&[b"a"]));
    assert_eq!(fatal.map(|e| e.reason()), Some("bad_prefix"));
}

#[test]
fn length_prefixed_encoder_writes_prefix_and_length() {
    let mut c = codec(&lp(hash_prefixed(true)));
    let mut dst = BytesMut::new();
    c.encode(&b"abc"[..], &mut dst).expect("ok");
    assert_eq!(&dst[..], b"\x23\x23\x00\x03abc");
    // Header kept: the encoder takes a whole frame and fills in its length field.
    let mut c = codec(&lp(hash_prefixed(false)));
    let mut dst = BytesMut::new();
    c.encode(&b"\x23\x23\x00\x00abcd"[..], &mut dst)
        .expect("ok");
    assert_eq!(&dst[..], b"\x23\x23\x00\x04abcd");
    assert_eq!(
        c.encode(&b"\x23\x23"[..], &mut dst)
            .expect_err("short")
            .reason(),
        "short_frame"
    );
    let mut w1 = codec(&lp(LengthPrefixedFraming {
        width: 1,
        strip_header: true,
        max_frame_len: 1000,
        ..Default::default()
    }));
    assert_eq!(
        w1.encode(&[0u8; 256][..], &mut dst)
            .expect_err("overflow")
            .reason(),
        "length_overflow"
    );
}

// -------------------------------------------------------------------- fixed

#[test]
fn fixed_frames_at_every_split_point_and_truncated_tail() {
    let f = Framing::Fixed(FixedFraming { size: 3 });
    same_at_every_split(&f, b"abcdefgh", &[&okh("abc"), &okh("def"), "truncated"]);
    let mut c = codec(&f);
    let mut dst = BytesMut::new();
    c.encode(&b"xyz"[..], &mut dst).expect("ok");
    assert_eq!(
        c.encode(&b"xy"[..], &mut dst).expect_err("size").reason(),
        "wrong_size"
    );
    assert_eq!(&dst[..], b"xyz");
}

// ----------------------------------------------------------------- proptest

fn any_framing() -> impl Strategy<Value = Framing> {
    let delim = (
        prop_oneof![
            Just("\n"),
            Just("\r\n"),
            Just("0x7e"),
            Just("0x00"),
            Just("END")
        ],
        any::<bool>(),
        1usize..300,
    )
        .prop_map(|(d, both, max)| delimited(d, both, max));
    let lpf = (
        prop_oneof![Just(1u8), Just(2u8), Just(4u8)],
        any::<bool>(),
        0usize..4,
        -3i64..4,
        any::<bool>(),
        any::<bool>(),
        8usize..300,
    )
        .prop_map(
            |(width, little, offset, adjustment, counts_header, strip, max)| {
                lp(LengthPrefixedFraming {
                    width,
                    endian: if little { Endian::Little } else { Endian::Big },
                    offset,
                    prefix: None,
                    adjustment,
                    counts_header,
                    strip_header: strip,
                    max_frame_len: max,
                })
            },
        );
    let fixed = (1usize..40).prop_map(|size| Framing::Fixed(FixedFraming { size }));
    prop_oneof![delim, lpf, fixed]
}

proptest! {
    #[test]
    fn decode_of_encode_is_the_body(
        framing in any_framing(),
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..64), 1..5),
        split in any::<prop::sample::Index>(),
    ) {
        let mut enc = codec(&framing);
        let mut wire = BytesMut::new();
        let mut sent = Vec::new();
        for body in &bodies {
            // Fixed frames are exactly `size`; other bodies the encoder refuses (the
            // delimiter inside, too long for the field) are simply not sent.
            let body = match &framing {
                Framing::Fixed(f) => body.iter().copied().cycle().take(f.size).collect(),
                _ => body.clone(),
            };
            if enc.encode(&body[..], &mut wire).is_ok() {
                sent.push(Bytes::from(body));
            }
        }
        let at = split.index(wire.len() + 1);
        let (a, b) = wire.split_at(at);
        let (items, fatal) = run(&mut codec(&framing), &[a, b]);
        prop_assert!(fatal.is_none());
        let got: Vec<Bytes> = items.into_iter().collect::<Result<_, _>>().map_err(|e| TestCaseError::fail(e.to_string()))?;
        // With the header kept, the encoder takes a whole frame and fills in its length
        // field: compare everything but that field.
        let without_length = |f: &Bytes| -> Vec<u8> {
            match &framing {
                Framing::LengthPrefixed(l) if !l.strip_header => {
                    let mut v = f.to_vec();
                    v.drain(l.offset..l.header_len());
                    v
                }
                _ => f.to_vec(),
            }
        };
        prop_assert_eq!(
            got.iter().map(without_length).collect::<Vec<_>>(),
            sent.iter().map(without_length).collect::<Vec<_>>()
        );
    }

    #[test]
    fn delimited_bodies_without_the_delimiter_always_encode(
        body in prop::collection::vec(1u8..=255, 1..200),
        both in any::<bool>(),
    ) {
        // NUL never occurs in the body, so a 0x00 delimiter can always frame it.
        let f = delimited("0x00", both, 200);
        let mut wire = BytesMut::new();
        codec(&f).encode(&body[..], &mut wire).expect("encodes");
        let (items, _) = run(&mut codec(&f), &[&wire]);
        prop_assert_eq!(items, vec![Ok(Bytes::from(body))]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_frames_respect_the_limit(
        framing in any_framing(),
        data in prop::collection::vec(any::<u8>(), 0..1500),
        chunk in 1usize..64,
    ) {
        let max = framing.max_frame_len();
        let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
        let (items, _) = run(&mut codec(&framing), &chunks);
        for frame in items.into_iter().flatten() {
            prop_assert!(frame.len() <= max);
            // Re-encoding a frame and decoding it gives it back.
            let mut wire = BytesMut::new();
            let mut c = codec(&framing);
            c.encode(frame.clone(), &mut wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (again, fatal) = run(&mut codec(&framing), &[&wire]);
            prop_assert!(fatal.is_none());
            prop_assert_eq!(again, vec![Ok(frame)]);
        }
    }
}

// ----------------------------------------------------------------- identity

fn peer() -> SocketAddr {
    "10.0.0.5:40000".parse().expect("addr")
}

#[test]
fn first_frame_login_is_consumed_and_later_frames_are_data() {
    let id = Identity::FirstFrame(FirstFrameIdentity {
        range: Some(ByteRange {
            start: 6,
            end: None,
        }),
        encoding: IdEncoding::Ascii,
        pattern: Some(IdPattern {
            charset: Charset::Vin,
            min_len: 17,
            max_len: 17,
        }),
    });
    let mut who = Identifier::new(&id, peer());
    assert_eq!(who.vehicle_id(), None);
    assert_eq!(
        who.on_frame(b"LOGIN LSVNV2182E2100001\r"),
        Ok(FrameRole::Login)
    );
    assert_eq!(who.vehicle_id(), Some("LSVNV2182E2100001"));
    assert_eq!(who.on_frame(b"anything"), Ok(FrameRole::Data));
}

#[test]
fn first_frame_errors_name_the_reason() {
    let with = |range: Option<&str>, pattern: Option<IdPattern>| FirstFrameIdentity {
        range: range.map(|r| r.parse().expect("range")),
        encoding: IdEncoding::Ascii,
        pattern,
    };
    let vin = IdPattern {
        charset: Charset::Vin,
        min_len: 17,
        max_len: 17,
    };
    assert_eq!(
        with(None, Some(vin))
            .extract(b"SHORT")
            .map_err(|e| e.reason()),
        Err("pattern_mismatch")
    );
    assert_eq!(
        with(None, Some(vin))
            .extract(b"LSVNV2182E210000I")
            .map_err(|e| e.reason()),
        Err("pattern_mismatch")
    );
    assert_eq!(
        with(Some("0..20"), None)
            .extract(b"abc")
            .map_err(|e| e.reason()),
        Err("out_of_range")
    );
    assert_eq!(
        with(None, None)
            .extract(b"caf\xc3\xa9")
            .map_err(|e| e.reason()),
        Err("bad_encoding")
    );
    assert_eq!(
        with(None, None).extract(b"fleet/1").map_err(|e| e.reason()),
        Err("invalid_id")
    );
    assert_eq!(
        with(None, None).extract(b"\0\0\0").map_err(|e| e.reason()),
        Err("invalid_id"),
        "all padding is an empty id"
    );
    // A failed login leaves the connection unidentified.
    let mut who = Identifier::new(&Identity::FirstFrame(with(None, None)), peer());
    assert!(who.on_frame(b"a b").is_err());
    assert_eq!(who.vehicle_id(), None);
}

#[test]
fn field_identity_reads_bcd_and_refuses_a_changed_id() {
    let id = Identity::Field(FieldIdentity {
        offset: 4,
        len: 6,
        encoding: IdEncoding::Bcd,
    });
    let frame = |phone: [u8; 6]| {
        let mut f = vec![0x23, 0x23, 0x00, 0x06];
        f.extend_from_slice(&phone);
        f
    };
    let mut who = Identifier::new(&id, peer());
    let a = frame([0x01, 0x38, 0x00, 0x13, 0x80, 0x00]);
    assert_eq!(who.on_frame(&a), Ok(FrameRole::Identified));
    assert_eq!(who.vehicle_id(), Some("013800138000"));
    assert_eq!(who.on_frame(&a), Ok(FrameRole::Data));
    let b = frame([0x01, 0x38, 0x00, 0x13, 0x80, 0x01]);
    assert!(matches!(
        who.on_frame(&b),
        Err(IdentityError::Changed { .. })
    ));
    assert_eq!(
        who.on_frame(&[0x23, 0x23]).map_err(|e| e.reason()),
        Err("out_of_range")
    );
    let bad = frame([0x01, 0x3a, 0, 0, 0, 0]);
    assert_eq!(
        who.on_frame(&bad).map_err(|e| e.reason()),
        Err("bad_encoding")
    );
    let hex = FieldIdentity {
        offset: 0,
        len: 3,
        encoding: IdEncoding::Hex,
    };
    assert_eq!(hex.extract(&[0xab, 0x01, 0xff]).as_deref(), Ok("ab01ff"));
}

#[test]
fn peer_identity_is_known_before_any_frame() {
    let mut who = Identifier::new(&Identity::Peer, peer());
    assert_eq!(who.vehicle_id(), Some("10-0-0-5"));
    assert_eq!(who.on_frame(b"x"), Ok(FrameRole::Data));
    let v6: SocketAddr = "[fe80::1:2]:9".parse().expect("addr");
    let id = raw::peer_id(v6);
    assert_eq!(id, "fe80--1-2");
    assert!(codecs::vehicle_id::validate(&id).is_ok());
}

// ------------------------------------------------------------------ payload

#[test]
fn binary_payload_has_base64_and_hex_for_short_frames() {
    let Data::Passthrough(p) = raw::payload::data(PayloadMode::Binary, b"hello").expect("ok")
    else {
        panic!("passthrough");
    };
    assert_eq!(
        p.0,
        serde_json::json!({"len": 5, "body_base64": "aGVsbG8=", "body_hex": "68656c6c6f"})
    );
    let long = raw::payload::binary(&[0u8; 65]);
    assert!(long.0.get("body_hex").is_none());
    assert_eq!(long.0["len"], 65);
    let edge = raw::payload::binary(&[0u8; 64]);
    assert!(edge.0.get("body_hex").is_some());
}

#[test]
fn json_payload_is_the_object_and_other_json_is_refused() {
    let p = raw::payload::json(br#"{"speed": 42, "door": "open"}"#).expect("object");
    assert_eq!(p.0["speed"], 42);
    let reason = |b: &[u8]| raw::payload::json(b).map(|_| ()).map_err(|e| e.reason());
    assert_eq!(reason(b"[1,2]"), Err("not_object"));
    assert_eq!(reason(b"42"), Err("not_object"));
    assert_eq!(reason(b"{\"a\":"), Err("not_json"));
    assert_eq!(reason(b"{\"a\":\"\xff\"}"), Err("not_utf8"));
    assert!(matches!(
        raw::payload::json(b"\"x\""),
        Err(PayloadError::NotObject { kind: "a string" })
    ));
}

#[test]
fn raw_event_is_a_passthrough_with_protocol_raw() {
    let ctx = EventContext::now("node-1");
    let ev = raw::payload::event(&ctx, "10-0-0-5".into(), PayloadMode::Json, br#"{"t":1}"#)
        .expect("event");
    let v: serde_json::Value = serde_json::from_str(&ev.to_json()).expect("json");
    assert_eq!(v["protocol"], "raw");
    assert_eq!(v["type"], "passthrough");
    assert_eq!(v["vehicle_id"], "10-0-0-5");
    assert_eq!(v["data"], serde_json::json!({"t": 1}));
    assert_eq!(v["msg_seq"], serde_json::Value::Null);
}

// ---------------------------------------------------------------------- ack

#[test]
fn acks_fixed_bytes_verbatim_or_echo_the_frame_reframed() {
    let mut c = codec(&delimited("\n", false, 64));
    let mut dst = BytesMut::new();
    let fixed = Acker::new(&Ack::Fixed {
        hex: "0x4f 4b 0a".into(),
    })
    .expect("hex");
    fixed.write(b"anything", &mut c, &mut dst).expect("ok");
    assert_eq!(&dst[..], b"OK\n");
    dst.clear();
    Acker::new(&Ack::Echo)
        .expect("ok")
        .write(b"ping", &mut c, &mut dst)
        .expect("ok");
    assert_eq!(&dst[..], b"ping\n");
    dst.clear();
    Acker::new(&Ack::None)
        .expect("ok")
        .write(b"ping", &mut c, &mut dst)
        .expect("ok");
    assert!(dst.is_empty());
}

// ------------------------------------------------------------------- config

fn spec(toml_text: &str) -> Result<RawListenerSpec, String> {
    toml::from_str::<RawListenerSpec>(toml_text).map_err(|e| e.to_string())
}

#[test]
fn config_defaults_are_the_documented_ones() {
    let s = spec(
        r#"
        framing = { type = "delimited" }
        identity = { mode = "peer" }
        "#,
    )
    .expect("parses");
    assert_eq!(s.framing, Framing::Delimited(DelimitedFraming::default()));
    assert_eq!(s.framing.max_frame_len(), 4096);
    assert_eq!(s.payload, PayloadMode::Binary);
    assert_eq!(s.ack, Ack::None);
    s.validate().expect("valid");
    let s = spec(
        r#"
        framing = { type = "length_prefixed" }
        identity = { mode = "first_frame" }
        "#,
    )
    .expect("parses");
    assert_eq!(s.framing, lp(LengthPrefixedFraming::default()));
    assert_eq!(
        s.identity,
        Identity::FirstFrame(FirstFrameIdentity::default())
    );
}

#[test]
fn config_round_trips_through_toml() {
    let s = spec(
        r#"
        framing = { type = "length_prefixed", width = 4, endian = "little", offset = 2, prefix = "2323", adjustment = -1, counts_header = true, strip_header = true, max_frame_len = 2048 }
        identity = { mode = "first_frame", range = "2..19", encoding = "ascii", pattern = { charset = "vin", min_len = 17, max_len = 17 } }
        payload = "json"
        ack = { mode = "fixed", hex = "7e 80 01 7e" }
        "#,
    )
    .expect("parses");
    s.validate().expect("valid");
    let back = toml::to_string(&s).expect("serializes");
    assert_eq!(spec(&back).expect("parses again"), s);
}

#[test]
fn unknown_keys_and_types_are_refused() {
    for bad in [
        "framing = { type = \"delimited\", delimeter = \"\\n\" }\nidentity = { mode = \"peer\" }",
        "framing = { type = \"lines\" }\nidentity = { mode = \"peer\" }",
        "framing = { type = \"fixed\", size = 4 }\nidentity = { mode = \"field\", offset = 0, len = 4, enc = \"hex\" }",
        "framing = { type = \"fixed\", size = 4 }\nidentity = { mode = \"peer\" }\nack = { mode = \"fixed\", hex = \"00\", extra = 1 }",
        "framing = { type = \"fixed\", size = 4 }\nidentity = { mode = \"peer\" }\ncolor = \"red\"",
        "framing = { type = \"fixed\", size = 4 }\nidentity = { mode = \"first_frame\", range = \"5..2\" }",
    ] {
        assert!(spec(bad).is_err(), "accepted: {bad}");
    }
}

fn field_of(f: Framing) -> Result<(), &'static str> {
    f.validate().map_err(|e| e.field())
}

#[test]
fn validation_errors_name_the_field() {
    let bad_width = lp(LengthPrefixedFraming {
        width: 3,
        ..Default::default()
    });
    assert!(matches!(
        bad_width.validate(),
        Err(ConfigError::BadWidth { width: 3 })
    ));
    assert_eq!(field_of(bad_width), Err("framing.width"));
    assert_eq!(
        field_of(Framing::Fixed(FixedFraming { size: 0 })),
        Err("framing.size")
    );
    assert_eq!(
        field_of(delimited("\n", false, (1 << 20) + 1)),
        Err("framing.max_frame_len")
    );
    assert_eq!(field_of(delimited("\n", false, 1 << 20)), Ok(()));
    assert_eq!(field_of(delimited("", false, 10)), Err("framing.delimiter"));
    assert_eq!(
        field_of(delimited("0x7", false, 10)),
        Err("framing.delimiter")
    );
    assert_eq!(
        field_of(delimited("\\q", false, 10)),
        Err("framing.delimiter")
    );
    assert_eq!(
        field_of(lp(LengthPrefixedFraming {
            offset: 2,
            prefix: Some("23".into()),
            ..Default::default()
        })),
        Err("framing.prefix")
    );
    assert_eq!(
        field_of(lp(LengthPrefixedFraming {
            offset: 10,
            max_frame_len: 8,
            ..Default::default()
        })),
        Err("framing.offset")
    );
    assert_eq!(
        Ack::Fixed { hex: "zz".into() }
            .validate()
            .map_err(|e| e.field()),
        Err("ack.hex")
    );
    let bcd_too_long = Identity::Field(FieldIdentity {
        offset: 0,
        len: 33,
        encoding: IdEncoding::Bcd,
    });
    assert_eq!(
        bcd_too_long.validate().map_err(|e| e.field()),
        Err("identity.len")
    );
    let pattern = Identity::FirstFrame(FirstFrameIdentity {
        pattern: Some(IdPattern {
            charset: Charset::Digits,
            min_len: 10,
            max_len: 5,
        }),
        ..Default::default()
    });
    assert_eq!(
        pattern.validate().map_err(|e| e.field()),
        Err("identity.pattern.max_len")
    );
    let beyond = RawListenerSpec::new(
        Framing::Fixed(FixedFraming { size: 8 }),
        Identity::Field(FieldIdentity {
            offset: 4,
            len: 8,
            encoding: IdEncoding::Ascii,
        }),
        PayloadMode::Binary,
        Ack::None,
    );
    assert_eq!(
        beyond.validate().map_err(|e| e.field()),
        Err("identity.offset")
    );
}

#[test]
fn delimiter_forms() {
    let bytes = |s: &str| raw::config::parse_delimiter(s).expect(s);
    assert_eq!(bytes("\n"), b"\n");
    assert_eq!(bytes("\\r\\n"), b"\r\n");
    assert_eq!(bytes("0x7e"), [0x7e]);
    assert_eq!(bytes("0X0D0A"), b"\r\n");
    assert_eq!(bytes("\\x02"), [2]);
    assert_eq!(bytes("##"), b"##");
    assert!(raw::config::parse_delimiter(&"x".repeat(17)).is_err());
}

// ---------------------------------------------------------------------- docs

/// The `[[raw]]` listener as the gateway will read it: the four parts plus its own keys.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Listener {
    name: String,
    listen: String,
    framing: Framing,
    identity: Identity,
    #[serde(default)]
    payload: PayloadMode,
    #[serde(default)]
    ack: Ack,
    #[serde(default)]
    #[allow(dead_code)]
    auth: Option<toml::Value>,
}

#[derive(Debug, serde::Deserialize)]
struct File {
    raw: Vec<Listener>,
}

#[test]
fn docs_example_configs_parse_and_validate() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/raw-tcp.md"))
        .expect("docs/raw-tcp.md");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(_), "```") => examples.extend(current.take()),
            (Some(text), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    let full: Vec<&String> = examples.iter().filter(|e| e.contains("[[raw]]")).collect();
    assert!(full.len() >= 2, "two complete examples");
    for text in full {
        let file: File = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for l in file.raw {
            assert!(!l.name.is_empty() && !l.listen.is_empty());
            let s = RawListenerSpec::new(l.framing, l.identity, l.payload, l.ack);
            s.validate().unwrap_or_else(|e| panic!("{}: {e}", l.name));
            RawCodec::new(&s.framing).expect("codec");
        }
    }
}

#[test]
fn binary_example_from_docs_end_to_end() {
    let s = spec(
        r#"
        framing = { type = "length_prefixed", width = 2, endian = "big", offset = 2, prefix = "aa55" }
        identity = { mode = "field", offset = 4, len = 8, encoding = "bcd" }
        ack = { mode = "fixed", hex = "aa 55 00 01 00" }
        "#,
    )
    .expect("parses");
    s.validate().expect("valid");
    let mut c = RawCodec::new(&s.framing).expect("codec");
    let wire = hex::decode("aa55000b000001380013800001025c").expect("hex");
    let (items, fatal) = run(&mut c, &[&wire]);
    assert!(fatal.is_none());
    let [Ok(frame)] = &items[..] else {
        panic!("{items:?}")
    };
    let mut who = Identifier::new(&s.identity, peer());
    assert_eq!(who.on_frame(frame), Ok(FrameRole::Identified));
    let vid = who.vehicle_id().expect("identified");
    assert_eq!(vid, "0000013800138000");
    let ev =
        raw::payload::event(&EventContext::now("n"), vid.into(), s.payload, frame).expect("event");
    let v: serde_json::Value = serde_json::from_str(&ev.to_json()).expect("json");
    assert_eq!(
        v["data"],
        serde_json::json!({"len": 15, "body_base64": "qlUACwAAATgAE4AAAQJc",
                           "body_hex": "aa55000b000001380013800001025c"})
    );
    let mut ack = BytesMut::new();
    Acker::new(&s.ack)
        .expect("ack")
        .write(frame, &mut c, &mut ack)
        .expect("ack");
    assert_eq!(&ack[..], &[0xaa, 0x55, 0x00, 0x01, 0x00]);
}

#[test]
fn peer_mode_takes_no_keys() {
    let r = spec(
        "framing = { type = \"fixed\", size = 4 }\nidentity = { mode = \"peer\", offset = 1 }",
    );
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn unit_modes_take_no_keys() {
    let r = spec("framing = { type = \"fixed\", size = 4 }\nidentity = { mode = \"peer\" }\nack = { mode = \"echo\", hex = \"00\" }");
    assert!(r.is_err(), "{r:?}");
    let r = spec("framing = { type = \"fixed\", size = 4 }\nidentity = { mode = \"peer\" }\nack = { mode = \"none\" }");
    assert_eq!(r.map(|s| s.ack), Ok(Ack::None));
}
