//! Arbitrary bytes through the GB/T 32960 codec: it never panics, never errors (bad frames
//! are items), and every frame it yields re-encodes with `to_wire` to bytes that parse to
//! the same frame; decoding its data unit never panics either.
#![no_main]

use bytes::BytesMut;
use gbt32960::{Codec, Frame, Message};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // Split the input in two reads at a position taken from its first byte, so partial
    // frames are exercised too.
    let at = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(at);
    let mut codec = Codec::default();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in [a, b] {
        buf.extend_from_slice(chunk);
        while let Some(item) = codec.decode(&mut buf).expect("decode never errors") {
            items.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).expect("decode_eof never errors") {
        items.push(item);
    }
    for frame in items.into_iter().flatten() {
        let again = Frame::parse(&frame.to_wire()).expect("a decoded frame re-parses");
        assert_eq!(again, frame);
        if let Ok(msg) = Message::decode(&frame) {
            let _ = gbt32960::raw_json(&frame, &msg);
        }
    }
});
