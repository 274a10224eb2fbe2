//! Arbitrary bytes through the JT/T 808 codec: it never panics and never errors (bad
//! frames are items), its buffer never holds more than `max_frame_len` after a call, and
//! every frame it yields re-encodes with `to_wire` to bytes that decode to the same frame.
#![no_main]

use bytes::BytesMut;
use jt808::{Codec, CodecConfig};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // Split the input in two reads at a position taken from its first byte, so partial
    // frames are exercised too; a small limit exercises the TooLarge path.
    let at = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(at);
    let config = CodecConfig {
        max_frame_len: 512,
        ..CodecConfig::default()
    };
    let mut codec = Codec::new(config);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in [a, b] {
        buf.extend_from_slice(chunk);
        while let Some(item) = codec.decode(&mut buf).expect("decode never errors") {
            items.push(item);
        }
        assert!(buf.len() <= 512, "buffer grew to {}", buf.len());
    }
    while let Some(item) = codec.decode_eof(&mut buf).expect("decode_eof never errors") {
        items.push(item);
    }
    assert!(buf.is_empty());
    for frame in items.into_iter().flatten() {
        let wire = frame.to_wire();
        let mut again = BytesMut::from(&wire[..]);
        let got = Codec::default()
            .decode_eof(&mut again)
            .expect("decode_eof never errors");
        assert_eq!(got, Some(Ok(frame)));
    }
});
