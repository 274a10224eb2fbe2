//! Frame layer and stream codec: golden frames, every split point, junk, bad frames,
//! arbitrary bytes, and data-unit decryption.
//!
//! The frames are real ones copied (hex) from public test suites; each names its source.

use bytes::{BufMut, BytesMut};
use gbt32960::codec::BAD_FRAME_RAW_CAP;
use gbt32960::crypto::{self, Cipher, KeyConfig, KeyHex, KeyStore};
use gbt32960::{
    BadFrame, BodyError, Codec, CodecConfig, Edition, Encryption, Frame, FrameError, Message,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// (source, hex) of real frames of both editions, commands and answers.
const GOLDEN: &[(&str, &str)] = &[
    // SmallChi/JTNewEnergy src/JTNE.Protocol.Test/Package/JTNE_0x01_Package_DeviceTest.cs (2016 login, VIN NUL-padded)
    ("jtne login 2016", "232301FE313233343536373839000000000000000001002A130116173738000131323334353637383939383736353433323130300304313233343435363739383730FD"),
    // beidouchangxi/rtm_con tests/rtm_con/message_and_data_samples.py (2025 login answer, time only)
    ("rtm_con ack2025", "24240101484155563442474E365335303032323139010006190A1B14020236"),
    // emqx/emqx apps/emqx_gateway_gbt32960/test/emqx_gbt32960_parser_SUITE.erl case_2025_login
    ("emqx 2025 login", "242401FE56494E31323334353637383930313233340100361901010A1E000001313233343536373839303132333435363738393001015041434B313233343536373839303132333435363738393089"),
    // emqx parser suite case03_realtime_report_0x02 (2016 real-time, two motors)
    ("emqx 2016 realtime motors", "232302FE314731424C353250375452313135353230010020100101023B00020201017D753061A87D753C79E302017D75F862D4917D0075F8A2"),
    // rtm_con "data2016 with only gnss data"
    ("rtm_con 2016 gnss", "232302FE484155563442474E365335303032323139010010190A1B1402020507FFFFFFFFFFFFFFFFDE"),
    // emqx parser suite case_2025_report_alarm (2025 reissue)
    ("emqx 2025 reissue alarm", "242403FE314731424C353250375452313135353230010029110C1416173B060000000011011234ABCD022345BCDE3456CDEF014567DEFA015678EFAB0200FF08FFBD"),
    // rtm_con logout2025
    ("rtm_con logout 2025", "242404FE484155563442474E365335303032323139010008190A1B1402020802C8"),
    // emqx/emqx apps/emqx_gateway_gbt32960/test/emqx_gbt32960_SUITE.erl ser_heartbeat_ack
    ("emqx heartbeat ack", "23230701314731424C3532503754523131353532300100061102020B0C0C36"),
    // JTNewEnergy JTNE_0x08_Package_DeviceTest.cs (time calibration, empty body)
    ("jtne time calibration", "232308FE3132333435363738390000000000000000010000C6"),
    // emqx SUITE t_case17_param_query_resp16 (2016 query answer, all 16 ids)
    ("emqx 2016 query answer", "23238001314731424C35325037545231313535323001004C1102020B0C0C100113880200C8037530040A05676F6F676C652E636F6D061F9007312E302E3008302E302E31093C0A003C0B003C0C0A0D0E0E7777772E676F6F676C652E636F6D0F23821001A9"),
    // emqx parser suite case15_terminal_ctrl (alarm text)
    ("emqx control alarm", "232382FE314731424C35325037545231313535323001001F110C1209161E060154686973206973206120616C61726D207465787421212154"),
    // rtm_con plt_login2025
    ("rtm_con platform login 2025", "242405FE484155563442474E365335303032323139010029190A1B1402020802484155563442474E36533530484155563442474E365335303032323139484155018D"),
];

fn golden() -> Vec<Vec<u8>> {
    GOLDEN
        .iter()
        .map(|(_, h)| hex::decode(h).unwrap())
        .collect()
}

/// Feeds `chunks` one after the other, draining the decoder after each, then at EOF.
fn run(codec: &mut Codec, chunks: &[&[u8]]) -> Vec<Result<Frame, BadFrame>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.put_slice(chunk);
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            out.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
        out.push(item);
    }
    out
}

fn ok_frames(items: Vec<Result<Frame, BadFrame>>) -> Vec<Frame> {
    items.into_iter().filter_map(Result::ok).collect()
}

fn expected() -> Vec<Frame> {
    golden().iter().map(|w| Frame::parse(w).unwrap()).collect()
}

#[test]
fn every_golden_frame_parses_and_rebuilds_byte_for_byte() {
    for ((name, _), wire) in GOLDEN.iter().zip(golden()) {
        let f = Frame::parse(&wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(f.to_wire(), wire, "{name}");
        assert_eq!(f.encryption, Encryption::None, "{name}");
    }
}

#[test]
fn golden_headers_read_edition_command_flag_and_stripped_vin() {
    let f = Frame::parse(&golden()[0]).unwrap();
    assert_eq!(
        (
            f.edition,
            f.command,
            f.response,
            f.vin.as_str(),
            f.data.len()
        ),
        (Edition::V2016, 0x01, 0xFE, "123456789", 42)
    );
    let f = Frame::parse(&golden()[1]).unwrap();
    assert_eq!(
        (f.edition, f.command, f.response, f.vin.as_str()),
        (Edition::V2025, 0x01, 0x01, "HAUV4BGN6S5002219")
    );
}

#[test]
fn every_frame_split_at_every_point_decodes_the_same() {
    for wire in golden() {
        let want = Frame::parse(&wire).unwrap();
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            let got = run(&mut Codec::default(), &[a, b]);
            assert_eq!(got, vec![Ok(want.clone())], "split at {at}");
        }
    }
}

#[test]
fn frames_fed_one_byte_at_a_time_decode_the_same() {
    let all: Vec<u8> = golden().concat();
    let chunks: Vec<&[u8]> = all.chunks(1).collect();
    assert_eq!(ok_frames(run(&mut Codec::default(), &chunks)), expected());
}

#[test]
fn concatenated_frames_decode_in_order_from_one_read() {
    let all: Vec<u8> = golden().concat();
    let items = run(&mut Codec::default(), &[&all]);
    assert!(items.iter().all(Result::is_ok));
    assert_eq!(ok_frames(items), expected());
}

#[test]
fn junk_before_and_between_frames_is_skipped_and_counted() {
    let mut all = b"GET / HTTP/1.1\r\n".to_vec();
    for w in golden() {
        all.extend_from_slice(&w);
        all.extend_from_slice(&[0x00, 0x23, 0x7E, 0x24, 0xFF]);
    }
    let mut codec = Codec::default();
    let items = run(&mut codec, &[&all]);
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(ok_frames(items), expected());
    assert_eq!(codec.skipped_bytes(), 16 + 5 * GOLDEN.len() as u64);
}

#[test]
fn false_start_marker_in_garbage_is_reported_and_the_stream_resyncs() {
    let mut all = b"##\x99\x99garbage garbage garbage".to_vec();
    let wire = golden().remove(0);
    all.extend_from_slice(&wire);
    let items = run(&mut Codec::default(), &[&all]);
    let bad: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        bad[0].error,
        FrameError::BadHeader {
            field: "response",
            value: 0x99
        }
    );
    assert_eq!(ok_frames(items), vec![Frame::parse(&wire).unwrap()]);
}

#[test]
fn bad_checksum_frame_is_an_error_item_and_the_next_frame_decodes() {
    let frames = golden();
    let mut corrupt = frames[0].clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let all = [corrupt.clone(), frames[1].clone()].concat();
    let items = run(&mut Codec::default(), &[&all]);
    assert_eq!(items.len(), 2);
    let bad = items[0].as_ref().unwrap_err();
    assert!(matches!(bad.error, FrameError::BadBcc { .. }));
    assert!(bad.error.can_continue());
    assert_eq!(bad.error.reason(), "bad_bcc");
    assert_eq!(bad.vin.as_deref(), Some("123456789"));
    assert_eq!(bad.edition, Some(Edition::V2016));
    assert_eq!(bad.command, Some(0x01));
    assert_eq!(&bad.raw[..], &corrupt[..]);
    assert_eq!(items[1], Ok(Frame::parse(&frames[1]).unwrap()));
}

#[test]
fn declared_frame_above_the_maximum_is_reported_before_its_body_arrives() {
    let mut codec = Codec::new(CodecConfig { max_frame_len: 100 });
    let mut header = hex::decode("232302FE484155563442474E36533530303232313901").unwrap();
    header.extend_from_slice(&1000u16.to_be_bytes());
    let mut buf = BytesMut::from(&header[..]);
    let item = codec.decode(&mut buf).unwrap().unwrap().unwrap_err();
    assert_eq!(
        item.error,
        FrameError::TooLarge {
            len: 1025,
            max: 100
        }
    );
    assert_eq!(item.error.reason(), "too_large");
}

#[test]
fn length_above_65531_is_refused() {
    let mut header = hex::decode("232302FE484155563442474E36533530303232313901").unwrap();
    header.extend_from_slice(&[0xFF, 0xFC]);
    let mut buf = BytesMut::from(&header[..]);
    let item = Codec::default()
        .decode(&mut buf)
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(item.error, FrameError::LengthOverLimit { len: 65532 });
}

#[test]
fn stream_ending_inside_a_frame_is_a_truncated_item_that_ends_the_stream() {
    let wire = golden().remove(0);
    let cut = &wire[..40];
    let items = run(&mut Codec::default(), &[cut]);
    assert_eq!(items.len(), 1);
    let bad = items[0].as_ref().unwrap_err();
    assert_eq!(
        bad.error,
        FrameError::Truncated {
            len: 40,
            need: wire.len()
        }
    );
    assert!(!bad.error.can_continue());
}

#[test]
fn partial_input_returns_none_and_keeps_every_byte() {
    let wire = golden().remove(2);
    let mut codec = Codec::default();
    let mut buf = BytesMut::from(&wire[..wire.len() - 1]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert_eq!(&buf[..], &wire[..wire.len() - 1]);
    buf.put_u8(wire[wire.len() - 1]);
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Ok(Frame::parse(&wire).unwrap()))
    );
    assert!(buf.is_empty());
}

#[test]
fn bad_frame_raw_bytes_are_capped() {
    let mut f = Frame::parse(&golden()[0]).unwrap();
    f.data = vec![0u8; 2000].into();
    let mut wire = f.to_wire();
    let last = wire.len() - 1;
    wire[last] ^= 1;
    let items = run(&mut Codec::default(), &[&wire]);
    assert_eq!(items[0].as_ref().unwrap_err().raw.len(), BAD_FRAME_RAW_CAP);
}

#[test]
fn non_ascii_identifier_is_a_bad_vin() {
    let mut f = Frame::parse(&golden()[0]).unwrap().to_wire();
    f[6] = 0x80;
    let sum = f[2..f.len() - 1].iter().fold(0, |a, b| a ^ b);
    let last = f.len() - 1;
    f[last] = sum;
    assert_eq!(
        Frame::parse(&f),
        Err(FrameError::BadVin {
            offset: 6,
            byte: 0x80
        })
    );
}

#[test]
fn encoder_writes_what_to_wire_writes_and_refuses_oversized_data() {
    let f = Frame::parse(&golden()[3]).unwrap();
    let mut dst = BytesMut::new();
    Codec::default().encode(&f, &mut dst).unwrap();
    assert_eq!(&dst[..], &f.to_wire()[..]);
    let big = Frame {
        data: vec![0u8; 65532].into(),
        ..f
    };
    assert!(Codec::default().encode(&big, &mut dst).is_err());
}

#[test]
fn every_error_has_a_snake_case_reason() {
    let errors = [
        FrameError::TooLarge { len: 1, max: 0 },
        FrameError::LengthOverLimit { len: 1 },
        FrameError::TooShort { len: 1, need: 25 },
        FrameError::BadStart { found: 0 },
        FrameError::BadHeader {
            field: "response",
            value: 0,
        },
        FrameError::BadVin { offset: 4, byte: 0 },
        FrameError::LengthMismatch {
            declared: 1,
            actual: 2,
        },
        FrameError::BadBcc {
            expected: 0,
            actual: 1,
        },
        FrameError::Truncated { len: 1, need: 2 },
    ];
    let mut seen = std::collections::HashSet::new();
    for e in errors {
        let r = e.reason();
        assert!(
            r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{r}"
        );
        assert!(seen.insert(r), "duplicate {r}");
    }
}

// ---- encryption ----

const KEY: [u8; 16] = *b"0123456789abcdef";

fn login_frame() -> Frame {
    Frame::parse(&golden()[0]).unwrap()
}

#[test]
fn aes_128_known_answer_matches_fips_197() {
    // FIPS-197 appendix C.1: key 000102..0f, plaintext 00112233..ff.
    let key: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
        .unwrap()
        .try_into()
        .unwrap();
    let plain = hex::decode("00112233445566778899aabbccddeeff").unwrap();
    let ct = crypto::encrypt(Cipher::Aes128, &key, &plain);
    assert_eq!(hex::encode(&ct[..16]), "69c4e0d86a7b0430d8cdb78070b4c55a");
    assert_eq!(
        ct.len(),
        32,
        "PKCS#7 adds a whole block to a block-aligned input"
    );
}

#[test]
fn sm4_known_answer_matches_gb_t_32907() {
    // GB/T 32907-2016 appendix A example 1: key = plaintext = 0123456789abcdeffedcba9876543210.
    let kp = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
    let key: [u8; 16] = kp.clone().try_into().unwrap();
    let ct = crypto::encrypt(Cipher::Sm4, &key, &kp);
    assert_eq!(hex::encode(&ct[..16]), "681edf34d206965e86b3e94f536e4246");
}

#[test]
fn aes_encrypted_login_decrypts_to_the_plaintext_message() {
    let plain = login_frame();
    let enc = crypto::encrypt_frame(&plain, Cipher::Aes128, &KEY);
    assert_eq!(enc.encryption, Encryption::Aes128);
    assert_ne!(enc.data, plain.data);
    // Survives the wire: the BCC covers the ciphertext.
    let back = Frame::parse(&enc.to_wire()).unwrap();
    let mut keys = KeyStore::new();
    keys.set_vin_key("123456789", Cipher::Aes128, KEY);
    let msg = crypto::decode(&back, &keys).unwrap();
    assert_eq!(msg, Message::decode(&plain).unwrap());
    assert!(matches!(msg, Message::VehicleLogin(_)));
}

#[test]
fn sm4_encrypted_login_decrypts_with_the_fleet_key() {
    let mut plain = login_frame();
    plain.edition = Edition::V2016;
    let enc = crypto::encrypt_frame(&plain, Cipher::Sm4, &KEY);
    assert_eq!(enc.encryption.to_byte(), 0x05);
    let keys = KeyStore::from_config(&KeyConfig {
        fleet: KeyHex {
            aes128: None,
            sm4: Some(hex::encode(KEY)),
        },
        vins: Default::default(),
    })
    .unwrap();
    assert_eq!(keys.decrypt(&enc).unwrap(), plain);
}

#[test]
fn encrypted_frame_without_a_key_is_passed_through_as_encrypted() {
    let enc = crypto::encrypt_frame(&login_frame(), Cipher::Aes128, &KEY);
    let keys = KeyStore::new();
    assert_eq!(
        keys.decrypt(&enc),
        Err(BodyError::Encrypted {
            command: 0x01,
            encryption: 0x03
        })
    );
    match crypto::decode(&enc, &keys).unwrap() {
        Message::Encrypted {
            command,
            encryption,
            data,
        } => {
            assert_eq!((command, encryption), (0x01, Encryption::Aes128));
            assert_eq!(data, enc.data);
        }
        other => panic!("parsed an encrypted body: {other:?}"),
    }
    // And without going through a key store at all.
    assert!(matches!(
        Message::decode(&enc).unwrap(),
        Message::Encrypted { .. }
    ));
}

#[test]
fn rsa_and_sm2_bodies_are_unsupported_and_stay_encrypted() {
    for enc in [Encryption::Rsa, Encryption::Sm2] {
        let f = Frame {
            encryption: enc,
            ..login_frame()
        };
        let mut keys = KeyStore::new();
        keys.set_fleet_key(Cipher::Aes128, KEY);
        assert!(matches!(
            keys.decrypt(&f),
            Err(BodyError::UnsupportedEncryption { command: 1, .. })
        ));
        assert!(matches!(
            crypto::decode(&f, &keys).unwrap(),
            Message::Encrypted { .. }
        ));
    }
}

#[test]
fn wrong_key_is_a_decryption_error_not_a_garbled_message() {
    let enc = crypto::encrypt_frame(&login_frame(), Cipher::Aes128, &KEY);
    let mut keys = KeyStore::new();
    keys.set_fleet_key(Cipher::Aes128, *b"fedcba9876543210");
    // PKCS#7 padding catches this wrong key (the garbage does not end in valid padding).
    assert_eq!(
        crypto::decode(&enc, &keys),
        Err(BodyError::Decrypt {
            command: 1,
            encryption: 3,
            len: 48
        })
    );
}

#[test]
fn vehicle_key_overrides_the_fleet_key_and_bad_config_names_the_field() {
    let mut keys = KeyStore::new();
    keys.set_fleet_key(Cipher::Sm4, [1; 16]);
    keys.set_vin_key("V1", Cipher::Sm4, [2; 16]);
    assert_eq!(keys.key("V1", Cipher::Sm4), Some(&[2; 16]));
    assert_eq!(keys.key("V2", Cipher::Sm4), Some(&[1; 16]));
    assert_eq!(keys.key("V2", Cipher::Aes128), None);
    let mut vins = std::collections::BTreeMap::new();
    vins.insert(
        "V1".to_string(),
        KeyHex {
            aes128: Some("abcd".into()),
            sm4: None,
        },
    );
    let err = KeyStore::from_config(&KeyConfig {
        fleet: KeyHex::default(),
        vins,
    })
    .unwrap_err();
    assert_eq!(err.field, "vins.V1.aes128");
}

// ---- arbitrary input ----

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_every_frame_reencodes_equal(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        split in 0usize..600,
    ) {
        let at = split.min(bytes.len());
        let (a, b) = bytes.split_at(at);
        for f in run(&mut Codec::default(), &[a, b]).into_iter().flatten() {
            prop_assert_eq!(Frame::parse(&f.to_wire()).unwrap(), f.clone());
            let _ = Message::decode(&f);
        }
        let _ = Frame::parse(&bytes);
    }

    #[test]
    fn marker_heavy_noise_never_panics(
        bytes in proptest::collection::vec(prop_oneof![Just(b'#'), Just(b'$'), any::<u8>()], 0..400),
    ) {
        let _ = run(&mut Codec::default(), &[&bytes]);
    }

    #[test]
    fn golden_stream_split_anywhere_gives_the_same_frames(
        cuts in proptest::collection::vec(0usize..2000, 0..8),
    ) {
        let all: Vec<u8> = golden().concat();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(all.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts {
            chunks.push(&all[prev..c]);
            prev = c;
        }
        chunks.push(&all[prev..]);
        prop_assert_eq!(ok_frames(run(&mut Codec::default(), &chunks)), expected());
    }
}
