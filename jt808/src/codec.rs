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

use memchr::memchr;

use crate::escape::{escape_into, unescape_in_place};
use crate::frame::{ChecksumPolicy, Frame};
use crate::FrameError;

const FLAG: u8 = 0x7e;
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
    fn parse_owned(&self, mut wire: BytesMut) -> Result<Frame, BadFrame> {
        wire.advance(1);
        let (len, quirk) = match unescape_in_place(&mut wire) {
            Ok(done) => done,
            // Nothing moved: the wire bytes are intact.
            Err(error) => return Err(bad_frame(error, &wire)),
        };
        wire.truncate(len);
        match Frame::parse_parts(&wire, self.config.checksum) {
            Ok((header, body, checksum_ok)) => {
                wire.truncate(body.end);
                wire.advance(body.start);
                Ok(Frame {
                    header,
                    body: wire.freeze(),
                    checksum_ok,
                })
            }
            Err(error) => {
                // Re-escaping the plain content gives back the wire bytes (JT/T 808 byte
                // stuffing is one-to-one), except for a trailing lone 0x7D.
                let mut escaped = Vec::with_capacity(wire.len() + 8);
                let cut = wire.len() - usize::from(quirk);
                escape_into(wire.get(..cut).unwrap_or_default(), &mut escaped);
                if quirk {
                    escaped.push(0x7d);
                }
                Err(bad_frame(error, &escaped))
            }
        }
    }
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
            let found = buf.get(from..).and_then(|tail| memchr(FLAG, tail));
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
            let item = self.parse_owned(buf.split_to(end));
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

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let mut out = Vec::new();
        frame.write_wire(&mut out);
        dst.extend_from_slice(&out);
        Ok(())
    }
}

impl Encoder<Frame> for Codec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        Encoder::<&Frame>::encode(self, &frame, dst)
    }
}
