//! Stream framing for JT/T 808 over TCP: a `tokio_util` [`Decoder`]/[`Encoder`].
//!
//! A bad frame is an *item* (`Err(BadFrame)`), not a decoder error, because an `Err` from
//! a decoder ends `FramedRead`; one garbled frame must not cost the connection. The
//! decoder:
//! - resynchronises on the next 0x7E after junk (HTTP probes, TLS ClientHello, noise),
//!   reporting the junk once as [`FrameError::Junk`] (junk right after a frame follows
//!   that frame's closing 0x7E, so it is reported as one bad frame instead);
//! - leaves a frame's closing 0x7E in the buffer, so it also opens the next frame (some
//!   terminals share one delimiter between frames) and `7E 7E` is an empty frame, skipped;
//! - enforces [`CodecConfig::max_frame_len`] before buffering more: once exceeded it
//!   reports `TooLarge` and drops bytes until the next 0x7E, so the buffer stays bounded;
//! - remembers where it stopped scanning (like tokio-util's `LinesCodec::next_index`),
//!   so a byte-at-a-time stream costs O(n).
//!
//! A good frame costs no copy and no buffer of its own: the frame is split off the read
//! buffer, unescaped in place (only when it holds a 0x7D), and its body is a `Bytes` view
//! of it (like tokio-util's `LengthDelimitedCodec`). Delimiters are found with `memchr`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use memchr::{memchr, memchr2};

use crate::escape::{escape_into, unescape_in_place, unescape_in_place_from};
use crate::frame::{ChecksumPolicy, Frame};
use crate::FrameError;

const FLAG: u8 = 0x7e;
const ESC: u8 = 0x7d;
/// Wire bytes of a bad frame kept for hex logging.
pub const RAW_CAP: usize = 512;

/// A frame that failed, with (up to [`RAW_CAP`]) wire bytes for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    pub error: FrameError,
    pub raw: Bytes,
}

/// Codec limits and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecConfig {
    /// Maximum wire bytes of one frame including both 0x7E. Default 4096: the largest
    /// legal frame is 21 (header) + 1023 (body) + 1 (checksum) = 1045 bytes, 2090 if every
    /// byte were escaped, plus delimiters; 4096 leaves room for lenient over-long bodies.
    pub max_frame_len: usize,
    /// Strict (default) or lenient checksum and body-length checks.
    pub checksum: ChecksumPolicy,
}

impl Default for CodecConfig {
    fn default() -> Self {
        CodecConfig {
            max_frame_len: 4096,
            checksum: ChecksumPolicy::Strict,
        }
    }
}

/// The JT/T 808 stream codec.
#[derive(Debug, Default)]
pub struct Codec {
    config: CodecConfig,
    /// Index in the buffer where the next scan for 0x7E starts.
    next_index: usize,
    /// Dropping bytes until the next 0x7E after `TooLarge`.
    skipping: bool,
    /// Junk bytes already dropped from the buffer but not yet reported.
    junk_len: usize,
    junk_raw: Vec<u8>,
    /// The encoder's content buffer, kept between frames.
    scratch: Vec<u8>,
}

fn cap(raw: &[u8]) -> Bytes {
    Bytes::copy_from_slice(raw.get(..RAW_CAP).unwrap_or(raw))
}

impl Codec {
    /// A codec with `config`.
    pub fn new(config: CodecConfig) -> Codec {
        Codec {
            config,
            ..Codec::default()
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CodecConfig {
        &self.config
    }

    fn note_junk(&mut self, junk: &[u8]) {
        self.junk_len += junk.len();
        let room = RAW_CAP.saturating_sub(self.junk_raw.len());
        self.junk_raw
            .extend_from_slice(junk.get(..room).unwrap_or(junk));
    }

    fn take_junk(&mut self) -> Option<BadFrame> {
        if self.junk_len == 0 {
            return None;
        }
        let bad = BadFrame {
            error: FrameError::Junk { len: self.junk_len },
            raw: Bytes::from(std::mem::take(&mut self.junk_raw)),
        };
        self.junk_len = 0;
        Some(bad)
    }

    /// Parses the frame `wire` (opening 0x7E, escaped content, no closing 0x7E), which
    /// the codec owns: unescaped in place, the body a view of it. On error, the wire
    /// bytes for the log (up to [`RAW_CAP`], with the closing 0x7E when there is room).
    ///
    /// `first_esc`: what the delimiter scan learnt of the first 0x7D (its index in `wire`).
    fn parse_owned(&self, mut wire: BytesMut, first_esc: EscScan) -> Result<Frame, BadFrame> {
        // The content after the opening 0x7E; `wire` itself is cut once, to the body.
        let content = wire.get_mut(1..).unwrap_or_default();
        let unescaped = match first_esc {
            EscScan::At(at) => unescape_in_place_from(content, at - 1),
            EscScan::None => Ok((content.len(), false)),
            EscScan::Unknown => unescape_in_place(content),
        };
        let (len, quirk) = match unescaped {
            Ok(done) => done,
            // Restored: the wire bytes are intact.
            Err(error) => return Err(bad_frame(error, content)),
        };
        let plain = content.get(..len).unwrap_or_default();
        match Frame::parse_parts(plain, self.config.checksum) {
            Ok((header, body, checksum_ok)) => {
                wire.truncate(1 + body.end);
                wire.advance(1 + body.start);
                Ok(Frame {
                    header,
                    body: wire.freeze(),
                    checksum_ok,
                })
            }
            Err(error) => {
                // Re-escaping the plain content gives back the wire bytes (JT/T 808 byte
                // stuffing is one-to-one), except for a trailing lone 0x7D.
                let mut escaped = Vec::with_capacity(plain.len() + 8);
                let cut = plain.len() - usize::from(quirk);
                escape_into(plain.get(..cut).unwrap_or_default(), &mut escaped);
                if quirk {
                    escaped.push(0x7d);
                }
                Err(bad_frame(error, &escaped))
            }
        }
    }
}

/// What the scan for the closing 0x7E saw of the frame's first 0x7D.
#[derive(Debug, Clone, Copy)]
enum EscScan {
    /// The scan started past the frame's start (the frame arrived in pieces).
    Unknown,
    /// No 0x7D in the frame.
    None,
    /// The first 0x7D is at this index of the frame (counting the opening 0x7E).
    At(usize),
}

/// A bad frame whose escaped content (without delimiters) is `content`.
fn bad_frame(error: FrameError, content: &[u8]) -> BadFrame {
    let mut raw = BytesMut::with_capacity((content.len() + 2).min(RAW_CAP));
    raw.put_u8(FLAG);
    let room = RAW_CAP - 1;
    raw.put_slice(content.get(..room).unwrap_or(content));
    if raw.len() < RAW_CAP {
        raw.put_u8(FLAG);
    }
    BadFrame {
        error,
        raw: raw.freeze(),
    }
}

impl Decoder for Codec {
    type Item = Result<Frame, BadFrame>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        loop {
            // Find the opening 0x7E (or skip to it after TooLarge).
            if buf.first() != Some(&FLAG) {
                match memchr(FLAG, buf) {
                    Some(pos) => {
                        if self.skipping {
                            self.skipping = false;
                            buf.advance(pos);
                        } else {
                            self.note_junk(buf.get(..pos).unwrap_or_default());
                            buf.advance(pos);
                        }
                        self.next_index = 1;
                    }
                    None => {
                        if !self.skipping {
                            let junk = buf.split();
                            self.note_junk(&junk);
                        }
                        buf.clear();
                        self.next_index = 0;
                        return Ok(None);
                    }
                }
            } else {
                self.skipping = false;
            }
            // Junk dropped in earlier calls or just now is reported before the frame.
            if let Some(bad) = self.take_junk() {
                return Ok(Some(Err(bad)));
            }
            // buf[0] == 0x7E: find the closing one.
            let from = self.next_index.max(1);
            // One pass finds the closing 0x7E and the first 0x7D (which saves unescaping
            // a scan); only a scan from the frame's start sees the first one.
            let mut first_esc = if from == 1 {
                EscScan::None
            } else {
                EscScan::Unknown
            };
            let mut found = None;
            if let Some(tail) = buf.get(from..) {
                found = memchr2(FLAG, ESC, tail);
                if let Some(rel) = found {
                    if tail.get(rel) == Some(&ESC) {
                        if from == 1 {
                            first_esc = EscScan::At(from + rel);
                        }
                        found = tail
                            .get(rel + 1..)
                            .and_then(|rest| memchr(FLAG, rest))
                            .map(|r| rel + 1 + r);
                    }
                }
            }
            let Some(rel) = found else {
                self.next_index = buf.len();
                if buf.len() > self.config.max_frame_len {
                    let bad = BadFrame {
                        error: FrameError::TooLarge {
                            len: buf.len(),
                            max: self.config.max_frame_len,
                        },
                        raw: cap(buf),
                    };
                    buf.clear();
                    self.next_index = 0;
                    self.skipping = true;
                    return Ok(Some(Err(bad)));
                }
                return Ok(None);
            };
            let end = from + rel;
            self.next_index = 1;
            if end == 1 {
                // 7E 7E: an empty frame; the second 0x7E opens the next one.
                buf.advance(1);
                continue;
            }
            if end + 1 > self.config.max_frame_len {
                let error = FrameError::TooLarge {
                    len: end + 1,
                    max: self.config.max_frame_len,
                };
                let item = Err(bad_frame(error, buf.get(1..end).unwrap_or_default()));
                buf.advance(end);
                return Ok(Some(item));
            }
            // Keep the closing 0x7E in `buf`: it may open the next frame.
            let item = self.parse_owned(buf.split_to(end), first_esc);
            return Ok(Some(item));
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if let Some(bad) = self.take_junk() {
            return Ok(Some(Err(bad)));
        }
        self.next_index = 0;
        let skipping = std::mem::take(&mut self.skipping);
        if buf.len() <= 1 || skipping {
            // Nothing, or only the 0x7E that closed the last frame.
            buf.clear();
            return Ok(None);
        }
        let bad = BadFrame {
            error: FrameError::Truncated { len: buf.len() },
            raw: cap(buf),
        };
        buf.clear();
        Ok(Some(Err(bad)))
    }
}

impl Encoder<&Frame> for Codec {
    type Error = std::io::Error;

    /// Writes [`Frame::to_wire`]'s bytes straight into `dst`: the content is built in a
    /// buffer the codec keeps, then escaped run by run into `dst`.
    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let mut content = std::mem::take(&mut self.scratch);
        content.clear();
        frame.encode_content(&mut content);
        dst.reserve(content.len() + content.len() / 16 + 4);
        dst.put_u8(FLAG);
        let mut rest = content.as_slice();
        while let Some(pos) = memchr2(FLAG, ESC, rest) {
            let (plain, tail) = rest.split_at(pos);
            dst.put_slice(plain);
            let Some((&b, after)) = tail.split_first() else {
                break;
            };
            dst.put_slice(&[ESC, if b == FLAG { 0x02 } else { 0x01 }]);
            rest = after;
        }
        dst.put_slice(rest);
        dst.put_u8(FLAG);
        // Keep a frame-sized buffer, not one grown by an oversized body.
        if content.capacity() <= 4096 {
            self.scratch = content;
        }
        Ok(())
    }
}

impl Encoder<Frame> for Codec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        Encoder::<&Frame>::encode(self, &frame, dst)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::Header;

    fn decode_all(codec: &mut Codec, chunks: &[&[u8]]) -> Vec<Result<Frame, BadFrame>> {
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

    /// Frames with escapes in the header, the body and the checksum, whole and byte by
    /// byte: the same frames, and a bad frame's raw bytes are its wire bytes.
    #[test]
    fn escaped_frames_decode_the_same_whole_and_in_pieces() {
        let mut wires = Vec::new();
        for serial in [0x0001u16, 0x007e, 0x7d7e, 0x7e7d] {
            let header = Header {
                msg_id: 0x0200,
                version: crate::Version::V2013,
                protocol_version: 0,
                phone: "013800138000".into(),
                serial,
                encryption: crate::Encryption::None,
                package: None,
            };
            let body = vec![0x7e, 0x00, 0x7d, 0x7d, 0x02, 0x01, 0x7e];
            wires.push(Frame::new(header, body).to_wire());
        }
        // A bad checksum (escaped bytes around it) and a bad escape.
        let mut bad_sum = wires.first().unwrap().clone();
        let at = bad_sum.len() - 2;
        bad_sum[at] ^= 0x10;
        let bad_escape = [0x7e, 0x02, 0x00, 0x7d, 0x02, 0x7d, 0x05, 0x7e];
        let mut stream = Vec::new();
        for w in &wires {
            stream.extend_from_slice(w);
        }
        stream.extend_from_slice(&bad_sum);
        stream.extend_from_slice(&bad_escape);

        let whole = decode_all(&mut Codec::default(), &[&stream]);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let pieces = decode_all(&mut Codec::default(), &bytes);
        assert_eq!(whole, pieces);
        assert_eq!(whole.len(), 6);
        for (item, wire) in whole.iter().zip(&wires) {
            let frame = item.as_ref().unwrap();
            assert_eq!(&frame.to_wire(), wire);
        }
        assert!(matches!(
            whole[4].as_ref().unwrap_err().error,
            FrameError::BadChecksum { .. }
        ));
        assert_eq!(whole[4].as_ref().unwrap_err().raw.as_ref(), &bad_sum[..]);
        assert_eq!(
            whole[5].as_ref().unwrap_err().error,
            FrameError::BadEscape {
                offset: 4,
                byte: 0x05
            }
        );
        assert_eq!(whole[5].as_ref().unwrap_err().raw.as_ref(), &bad_escape[..]);
    }

    /// A lone 0x7D checksum before the closing 0x7E is the literal byte; when such a frame
    /// fails, its raw bytes are still the wire bytes.
    #[test]
    fn an_unescaped_7d_checksum_is_accepted_and_logged_as_sent() {
        let mut content = vec![0x00, 0x02, 0x00, 0x00, 0x01, 0x38, 0x00, 0x13, 0x80, 0x00];
        content.extend_from_slice(&[0x00, 0x01]);
        let sum = crate::frame::checksum(&content);
        // Make the checksum 0x7D by adjusting the serial's low byte.
        let last = content.len() - 1;
        content[last] ^= sum ^ 0x7d;
        assert_eq!(crate::frame::checksum(&content), 0x7d);
        let mut wire = vec![0x7e];
        crate::escape::escape_into(&content, &mut wire);
        wire.extend_from_slice(&[0x7d, 0x7e]);
        let items = decode_all(&mut Codec::default(), &[&wire]);
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok(), "{items:?}");
        // The same frame with a wrong body length (and so checksum): refused, raw as sent.
        let mut bad = wire.clone();
        bad[4] = 0x01;
        let items = decode_all(&mut Codec::default(), &[&bad]);
        let err = items[0].as_ref().unwrap_err();
        assert_eq!(err.raw.as_ref(), &bad[..], "{:?}", err.error);
    }

    #[test]
    fn the_encoder_writes_to_wire_bytes_frame_after_frame() {
        let mut codec = Codec::default();
        let mut dst = BytesMut::new();
        let mut expect = Vec::new();
        for (i, serial) in [0x0001u16, 0x7e7d, 0x007e, 0x7d00].into_iter().enumerate() {
            let header = Header {
                msg_id: 0x8001,
                version: crate::Version::V2013,
                protocol_version: 0,
                phone: "013800138000".into(),
                serial,
                encryption: crate::Encryption::None,
                package: None,
            };
            let body: Vec<u8> = [0x7e, 0x7d, 0x01, 0x02].repeat(i * 40);
            let frame = Frame::new(header, body);
            Encoder::<&Frame>::encode(&mut codec, &frame, &mut dst).unwrap();
            expect.extend_from_slice(&frame.to_wire());
        }
        assert_eq!(&dst[..], &expect[..]);
    }

    fn reference_parse(content: &[u8]) -> Result<Frame, FrameError> {
        let plain = crate::escape::unescape(content)?;
        Frame::parse(&plain, ChecksumPolicy::Strict)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// Mutated frames among good ones, cut anywhere: every item is what the copying
        /// parser (unescape into a new buffer, then parse) makes of the same wire bytes,
        /// and a bad frame's raw bytes are those wire bytes.
        #[test]
        fn in_place_parsing_agrees_with_the_copying_parser(
            frames in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::sample::select(vec![0x00u8, 0x01, 0x02, 0x7d, 0x7e, 0x31]), 0..40),
                    proptest::num::u16::ANY,
                    proptest::option::of((0usize..64, proptest::sample::select(vec![0x7du8, 0x7e, 0x00, 0x03]))),
                ),
                1..6,
            ),
            cuts in proptest::collection::vec(1usize..40, 0..20),
        ) {
            let mut stream = Vec::new();
            let mut wires = Vec::new();
            for (body, serial, mutation) in frames {
                let header = Header {
                    msg_id: 0x0200,
                    version: crate::Version::V2013,
                    protocol_version: 0,
                    phone: "013800138000".into(),
                    serial,
                    encryption: crate::Encryption::None,
                    package: None,
                };
                let mut wire = Frame::new(header, body).to_wire();
                if let Some((at, byte)) = mutation {
                    let at = 1 + at % (wire.len() - 2);
                    wire[at] = byte;
                }
                stream.extend_from_slice(&wire);
                wires.push(wire);
            }
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut rest = &stream[..];
            for c in cuts {
                let c = c.min(rest.len());
                let (a, b) = rest.split_at(c);
                chunks.push(a);
                rest = b;
            }
            chunks.push(rest);
            let items = decode_all(&mut Codec::default(), &chunks);
            proptest::prop_assert_eq!(&items, &decode_all(&mut Codec::default(), &[&stream]));
            for item in &items {
                match item {
                    Ok(frame) => {
                        // A good frame is exactly some delimited run of the stream.
                        let wire = frame.to_wire();
                        let content = &wire[1..wire.len() - 1];
                        let again = reference_parse(content);
                        proptest::prop_assert_eq!(again, Ok(frame.clone()));
                    }
                    Err(bad) => {
                        let raw = bad.raw.as_ref();
                        proptest::prop_assert!(stream.windows(raw.len()).any(|w| w == raw));
                        if matches!(bad.error, FrameError::Junk { .. } | FrameError::Truncated { .. }) {
                            continue;
                        }
                        proptest::prop_assert!(raw.len() >= 2 && raw[0] == 0x7e && raw[raw.len() - 1] == 0x7e);
                        let content = &raw[1..raw.len() - 1];
                        proptest::prop_assert_eq!(reference_parse(content).err(), Some(bad.error.clone()));
                    }
                }
            }
        }
    }
}
