//! Finding frames in a byte stream: `tokio_util::codec` framing, no parsing of data units.
//!
//! The decoder looks for a start marker (`##` or `$$`), reads the header at its fixed
//! offsets, checks the declared size against the configured maximum *before* buffering
//! the body, waits for the rest, then checks the BCC. A frame that fails any check is an
//! item (`Err(BadFrame)`), not a decoder error, because an `Err` from a `Decoder` ends a
//! `FramedRead`: one corrupted frame must not cost a vehicle its connection. Bytes before a
//! start marker are skipped and counted ([`Codec::skipped_bytes`]).
//!
//! Resynchronisation: a header that cannot be right (reserved response flag or encryption
//! byte, length above 65531 or above the configured maximum) is most likely a `##` inside
//! garbage, so the decoder reports it and moves one byte on; a frame whose header is right
//! but whose BCC is not is consumed whole (its length was plausible), so the next frame
//! decodes.

use bytes::{Buf, Bytes, BytesMut};
use serde::Deserialize;
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{self, Frame, HEADER_LEN, MAX_DATA_LEN, MAX_FRAME_LEN, OVERHEAD};
use crate::{Edition, FrameError};

/// How many bytes of a bad frame [`BadFrame::raw`] keeps.
pub const BAD_FRAME_RAW_CAP: usize = 512;

/// Codec settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodecConfig {
    /// Largest frame accepted, header and BCC included (default and ceiling: the
    /// standard's 25 + 65531 bytes). Larger declared frames are reported and skipped
    /// before their body is buffered.
    pub max_frame_len: usize,
}

impl Default for CodecConfig {
    fn default() -> Self {
        CodecConfig {
            max_frame_len: MAX_FRAME_LEN,
        }
    }
}

/// A frame that failed a check, with what its header said so the gateway can answer it
/// with an error flag and count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// What is wrong.
    pub error: FrameError,
    /// The bytes consumed for it (at most [`BAD_FRAME_RAW_CAP`]).
    pub raw: Bytes,
    /// The identifier, when the header had a readable one.
    pub vin: Option<String>,
    /// The edition of the start marker, when there was one.
    pub edition: Option<Edition>,
    /// The command byte, when the header was complete.
    pub command: Option<u8>,
}

/// The GB/T 32960 frame codec (both editions on one stream).
#[derive(Debug, Clone, Default)]
pub struct Codec {
    config: CodecConfig,
    skipped: u64,
}

impl Codec {
    /// A codec with the given settings (`max_frame_len` is capped at the standard's maximum).
    pub fn new(config: CodecConfig) -> Codec {
        Codec {
            config: CodecConfig {
                max_frame_len: config.max_frame_len.min(MAX_FRAME_LEN),
            },
            skipped: 0,
        }
    }

    /// Bytes skipped so far because no start marker preceded them.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    fn skip(&mut self, src: &mut BytesMut, n: usize) {
        let n = n.min(src.len());
        src.advance(n);
        self.skipped += n as u64;
    }
}

fn is_marker(b: u8) -> bool {
    b == b'#' || b == b'$'
}

/// Index of the first `##` or `$$`.
fn find_start(buf: &[u8]) -> Option<usize> {
    buf.windows(2)
        .position(|w| matches!(w, [a, b] if a == b && is_marker(*a)))
}

fn capped(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes.get(..BAD_FRAME_RAW_CAP).unwrap_or(bytes))
}

fn bad(error: FrameError, raw: &[u8], header: Option<&frame::Header>) -> BadFrame {
    BadFrame {
        error,
        raw: capped(raw),
        vin: header.and_then(|h| h.vin().ok()),
        edition: header.map(|h| h.edition),
        command: header.map(|h| h.command),
    }
}

impl Decoder for Codec {
    type Item = Result<Frame, BadFrame>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match find_start(src) {
            Some(0) => {}
            Some(i) => self.skip(src, i),
            None => {
                // Keep a lone trailing marker byte: it may be the first half of one.
                let keep = usize::from(src.last().copied().is_some_and(is_marker));
                self.skip(src, src.len() - keep);
                return Ok(None);
            }
        }
        let Some(header) = frame::read_header(src) else {
            src.reserve(HEADER_LEN.saturating_sub(src.len()));
            return Ok(None);
        };
        let head = src.get(..HEADER_LEN).unwrap_or(&[]);
        if let Err(e) = header.check() {
            let item = bad(e, head, Some(&header));
            src.advance(1);
            return Ok(Some(Err(item)));
        }
        let total = OVERHEAD + header.data_len;
        if total > self.config.max_frame_len {
            let item = bad(
                FrameError::TooLarge {
                    len: total,
                    max: self.config.max_frame_len,
                },
                head,
                Some(&header),
            );
            src.advance(1);
            return Ok(Some(Err(item)));
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let wire = src.split_to(total).freeze();
        Ok(Some(
            header
                .clone()
                .into_frame(wire.clone())
                .map_err(|e| bad(e, &wire, Some(&header))),
        ))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let rest = buf.split();
        let starts = matches!(rest.get(..2), Some([a, b]) if a == b && is_marker(*a));
        if !starts {
            self.skipped += rest.len() as u64;
            return Ok(None);
        }
        let header = frame::read_header(&rest);
        let need = header
            .as_ref()
            .map_or(HEADER_LEN, |h| OVERHEAD + h.data_len);
        Ok(Some(Err(bad(
            FrameError::Truncated {
                len: rest.len(),
                need,
            },
            &rest,
            header.as_ref(),
        ))))
    }
}

impl<'a> Encoder<&'a Frame> for Codec {
    type Error = std::io::Error;

    fn encode(&mut self, item: &'a Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        if item.data.len() > MAX_DATA_LEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "GB/T 32960 data unit of {} bytes exceeds {MAX_DATA_LEN}",
                    item.data.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(OVERHEAD + item.data.len());
        item.write_wire(&mut out);
        dst.extend_from_slice(&out);
        Ok(())
    }
}
