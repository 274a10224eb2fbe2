//! Arbitrary bytes through the raw framers, with a framing configuration taken from the
//! input's first bytes. Invariants: decoding never panics; a delimited decoder never
//! fails and between reads holds at most `max_frame_len` plus two delimiters; every
//! frame emitted is at most `max_frame_len` bytes; and re-encoding a frame then decoding
//! the result gives the same frame back.
#![no_main]

use bytes::BytesMut;
use codecs::raw::{
    DelimitedFraming, Endian, FixedFraming, Framing, LengthPrefixedFraming, RawCodec,
};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fn framing(cfg: [u8; 5]) -> Framing {
    let [kind, a, b, c, d] = cfg;
    match kind % 3 {
        0 => Framing::Delimited(DelimitedFraming {
            delimiter: ["\n", "\r\n", "0x7e", "END"][usize::from(a % 4)].to_owned(),
            both_ends: a & 0x10 != 0,
            max_frame_len: 1 + usize::from(b) * 2,
        }),
        1 => Framing::LengthPrefixed(LengthPrefixedFraming {
            width: [1, 2, 4][usize::from(a % 3)],
            endian: if a & 0x10 != 0 {
                Endian::Little
            } else {
                Endian::Big
            },
            offset: usize::from(b % 4),
            prefix: None,
            adjustment: i64::from(c as i8 % 8),
            counts_header: a & 0x20 != 0,
            strip_header: a & 0x40 != 0,
            max_frame_len: 8 + usize::from(d) * 4,
        }),
        _ => Framing::Fixed(FixedFraming {
            size: 1 + usize::from(a % 64),
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((cfg, rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let framing = framing(*cfg);
    let Ok(mut codec) = RawCodec::new(&framing) else {
        return;
    };
    let max = codec.max_frame_len();
    // Between reads a delimited decoder holds at most an opening delimiter, `max` bytes and
    // a possible partial closing delimiter.
    let delimited = match &framing {
        Framing::Delimited(d) => d.delimiter_bytes().ok().map(|b| max + 2 * b.len() - 1),
        _ => None,
    };
    // Two reads, split at a position taken from the config bytes.
    let at = usize::from(cfg[4]).min(rest.len());
    let (a, b) = rest.split_at(at);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    'read: for chunk in [a, b] {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(Ok(frame))) => frames.push(frame),
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(e) => {
                    assert!(delimited.is_none(), "delimited decoder failed: {e}");
                    break 'read;
                }
            }
        }
        if let Some(bound) = delimited {
            assert!(buf.len() <= bound, "buffer grew to {} > {bound}", buf.len());
        }
    }
    while let Ok(Some(item)) = codec.decode_eof(&mut buf) {
        if let Ok(frame) = item {
            frames.push(frame);
        }
    }
    for frame in frames {
        assert!(frame.len() <= max, "frame of {} > {max}", frame.len());
        let mut wire = BytesMut::new();
        let mut enc = RawCodec::new(&framing).expect("valid above");
        enc.encode_body(&frame, &mut wire)
            .expect("a decoded frame can be framed again");
        let mut dec = RawCodec::new(&framing).expect("valid above");
        let got = dec.decode_eof(&mut wire).expect("re-encoded frame decodes");
        assert_eq!(got, Some(Ok(frame)));
    }
});
