//! Every golden fixture (`fixtures/gbt32960/*.json`) through the stream [`Codec`]: split at
//! every point, fed one byte at a time, all of them concatenated with junk between, and the
//! `expect_error` fixtures giving the error item the codec owes them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use bytes::{BufMut, BytesMut};
use gbt32960::{BadFrame, Codec, Frame, FrameError, Message};
use serde_json::Value;
use tokio_util::codec::Decoder;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/gbt32960");

/// (id, wire bytes, expect_error) of every fixture.
fn fixtures() -> Vec<(String, Vec<u8>, Option<String>)> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(DIR))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let list = match v {
            Value::Array(l) => l,
            fx => vec![fx],
        };
        for fx in list {
            let id = fx["id"].as_str().unwrap().to_string();
            let wire = hex::decode(fx["hex"].as_str().unwrap()).unwrap();
            let err = fx
                .get("expect_error")
                .and_then(Value::as_str)
                .map(String::from);
            out.push((id, wire, err));
        }
    }
    assert!(out.len() >= 40, "only {} fixtures", out.len());
    out
}

/// Feeds `chunks` one after the other, draining the decoder after each, then at EOF.
fn run(chunks: &[&[u8]]) -> Vec<Result<Frame, BadFrame>> {
    let mut codec = Codec::default();
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

/// What the codec must give for a fixture's bytes alone: the frame, or one error item.
/// A `length_mismatch` fixture has a length field one short, so the codec (which trusts the
/// length) reads one byte too few and fails the BCC; the byte left over is skipped.
fn expected(wire: &[u8], err: Option<&str>) -> Result<Frame, &'static str> {
    match err {
        None => Ok(Frame::parse(wire).unwrap()),
        Some("truncated") => Err("truncated"),
        Some("bad_bcc" | "length_mismatch") => Err("bad_bcc"),
        Some(other) => panic!("no stream expectation for {other}"),
    }
}

fn same(got: &[Result<Frame, BadFrame>], want: &Result<Frame, &str>) -> bool {
    match (got, want) {
        ([Ok(f)], Ok(w)) => f == w,
        ([Err(b)], Err(reason)) => b.error.reason() == *reason,
        _ => false,
    }
}

#[test]
fn every_fixture_split_at_every_point_decodes_the_same() {
    let mut checked = 0;
    for (id, wire, err) in fixtures() {
        let want = expected(&wire, err.as_deref());
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            let got = run(&[a, b]);
            assert!(same(&got, &want), "{id}: split at {at}: {got:?}");
            checked += 1;
        }
    }
    eprintln!("{checked} split points checked");
}

#[test]
fn every_fixture_fed_one_byte_at_a_time_decodes_the_same() {
    for (id, wire, err) in fixtures() {
        let want = expected(&wire, err.as_deref());
        let chunks: Vec<&[u8]> = wire.chunks(1).collect();
        let got = run(&chunks);
        assert!(same(&got, &want), "{id}: {got:?}");
    }
}

#[test]
fn all_good_fixtures_concatenated_with_junk_between_decode_in_order_with_their_messages() {
    let good: Vec<(String, Vec<u8>)> = fixtures()
        .into_iter()
        .filter(|(_, _, e)| e.is_none())
        .map(|(id, w, _)| (id, w))
        .collect();
    let mut stream = Vec::new();
    for (i, (_, w)) in good.iter().enumerate() {
        // Junk that holds a lone start byte but never a start marker.
        stream.extend_from_slice(&[0x00, b'#', 0x55, b'$', 0x40 | (i as u8 & 0x0F)]);
        stream.extend_from_slice(w);
    }
    for chunk_len in [1usize, 7, 64, stream.len()] {
        let chunks: Vec<&[u8]> = stream.chunks(chunk_len).collect();
        let got = run(&chunks);
        assert_eq!(got.len(), good.len(), "chunks of {chunk_len}");
        for ((id, w), item) in good.iter().zip(&got) {
            let f = item
                .as_ref()
                .unwrap_or_else(|e| panic!("{id} (chunks of {chunk_len}): {e:?}"));
            let direct = Frame::parse(w).unwrap();
            assert_eq!(f, &direct, "{id}");
            assert_eq!(Message::decode(f), Message::decode(&direct), "{id}");
        }
    }
}

#[test]
fn a_truncated_fixture_ends_the_stream_and_says_how_much_was_missing() {
    for (id, wire, err) in fixtures() {
        if err.as_deref() != Some("truncated") {
            continue;
        }
        let got = run(&[&wire]);
        let bad = got[0].as_ref().unwrap_err();
        assert!(
            matches!(bad.error, FrameError::Truncated { len, need } if len == wire.len() && need > len),
            "{id}: {:?}",
            bad.error
        );
        assert!(!bad.error.can_continue());
        assert_eq!(Frame::parse(&wire).unwrap_err().reason(), "truncated");
    }
}
