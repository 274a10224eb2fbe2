//! `type = "length_prefixed"`: a 1, 2 or 4-byte length field at a fixed offset says how
//! long each frame is.
//!
//! ```text
//! | prefix: offset bytes | length: width bytes | rest ...                          |
//! |<------------ header ------------------------>|
//! total = header + value + adjustment          (counts_header = false, the default)
//! total = value + adjustment                   (counts_header = true)
//! ```
//!
//! Resync: none is possible. Nothing in the byte stream marks where a frame starts, so
//! once a length is implausible (below the header size, negative after adjustment, or
//! above `max_frame_len`) or the configured `prefix` does not match, every later byte would
//! be misread. The decoder then returns a fatal [`CodecError::Fatal`] (which ends
//! tokio-util's `FramedRead`; the gateway closes the connection) and keeps returning it.
//! The size check happens on the header alone, before the frame is buffered.
//!
//! Emitted frames keep their header unless `strip_header` is set. The encoder is the
//! decoder's inverse: it takes what the decoder emits (a body when the header is stripped,
//! a whole frame otherwise, whose length field it fills in) and writes the wire frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::config::{ConfigError, Endian, LengthPrefixedFraming};
use super::error::{CodecError, RawFrameError};

/// The length-prefixed framer: a tokio-util [`Decoder`] and [`Encoder`].
#[derive(Debug, Clone)]
pub struct LengthPrefixedCodec {
    width: u8,
    endian: Endian,
    offset: usize,
    prefix: Option<Vec<u8>>,
    adjustment: i64,
    counts_header: bool,
    strip_header: bool,
    max: usize,
    /// Set once the stream is out of step; every later call returns it.
    failed: Option<RawFrameError>,
}

impl LengthPrefixedCodec {
    /// A codec for `config`, which is validated.
    pub fn new(config: &LengthPrefixedFraming) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(LengthPrefixedCodec {
            width: config.width,
            endian: config.endian,
            offset: config.offset,
            prefix: config.prefix_bytes()?,
            adjustment: config.adjustment,
            counts_header: config.counts_header,
            strip_header: config.strip_header,
            max: config.max_frame_len,
            failed: None,
        })
    }

    /// The largest frame on the wire, header included.
    pub fn max_frame_len(&self) -> usize {
        self.max
    }

    /// Prefix plus length field.
    pub fn header_len(&self) -> usize {
        self.offset.saturating_add(usize::from(self.width))
    }

    fn read_value(&self, field: &[u8]) -> u32 {
        let fold_be = |acc: u32, b: &u8| (acc << 8) | u32::from(*b);
        match self.endian {
            Endian::Big => field.iter().fold(0, fold_be),
            Endian::Little => field.iter().rev().fold(0, fold_be),
        }
    }

    /// The frame's total wire length for a length field value.
    fn total_len(&self, value: u32) -> Result<usize, RawFrameError> {
        let header = i64::try_from(self.header_len()).unwrap_or(i64::MAX);
        let bad = |adjusted| RawFrameError::BadLength { value, adjusted };
        let adjusted = i64::from(value)
            .checked_add(self.adjustment)
            .ok_or(bad(i64::MAX))?;
        let total = if self.counts_header {
            adjusted
        } else if adjusted < 0 {
            return Err(bad(adjusted));
        } else {
            adjusted.saturating_add(header)
        };
        if total < header {
            return Err(bad(adjusted));
        }
        usize::try_from(total).map_err(|_| bad(adjusted))
    }

    /// The length field value for a frame of `total` wire bytes.
    fn value_for(&self, total: usize) -> Result<u32, RawFrameError> {
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        let header = i64::try_from(self.header_len()).unwrap_or(i64::MAX);
        let counted = if self.counts_header {
            total
        } else {
            total.saturating_sub(header)
        };
        let value = counted.saturating_sub(self.adjustment);
        let limit: i64 = match self.width {
            1 => 0xff,
            2 => 0xffff,
            _ => 0xffff_ffff,
        };
        if !(0..=limit).contains(&value) {
            return Err(RawFrameError::LengthOverflow {
                value,
                width: self.width,
            });
        }
        u32::try_from(value).map_err(|_| RawFrameError::LengthOverflow {
            value,
            width: self.width,
        })
    }

    fn write_value(&self, value: u32, dst: &mut BytesMut) {
        let width = usize::from(self.width);
        let be = value.to_be_bytes();
        let field = be.get(4usize.saturating_sub(width)..).unwrap_or(&be);
        match self.endian {
            Endian::Big => dst.put_slice(field),
            Endian::Little => field.iter().rev().for_each(|b| dst.put_u8(*b)),
        }
    }

    fn fail(&mut self, e: RawFrameError) -> CodecError {
        self.failed = Some(e.clone());
        CodecError::Fatal(e)
    }

    /// Frames `item` (a body when `strip_header`, else a whole frame whose length field is
    /// filled in) into `dst`; on error `dst` is left as it was.
    pub fn encode_body(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), RawFrameError> {
        let header = self.header_len();
        let (head, rest) = if self.strip_header {
            (None, item)
        } else {
            if item.len() < header {
                return Err(RawFrameError::ShortFrame {
                    len: item.len(),
                    header,
                });
            }
            let (h, r) = item.split_at(header);
            (Some(h), r)
        };
        let total = header.saturating_add(rest.len());
        if total > self.max {
            return Err(RawFrameError::TooLarge {
                len: total,
                max: self.max,
            });
        }
        let value = self.value_for(total)?;
        let given_prefix = head.and_then(|h| h.get(..self.offset));
        if let (Some(want), Some(got)) = (&self.prefix, given_prefix) {
            if want.as_slice() != got {
                return Err(RawFrameError::BadPrefix { len: self.offset });
            }
        }
        dst.reserve(total);
        match (given_prefix, &self.prefix) {
            (Some(p), _) => dst.put_slice(p),
            (None, Some(p)) => dst.put_slice(p),
            (None, None) => dst.put_bytes(0, self.offset),
        }
        self.write_value(value, dst);
        dst.put_slice(rest);
        Ok(())
    }
}

impl Decoder for LengthPrefixedCodec {
    type Item = Result<Bytes, RawFrameError>;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        if let Some(e) = &self.failed {
            return Err(CodecError::Fatal(e.clone()));
        }
        if let Some(prefix) = &self.prefix {
            let n = buf.len().min(prefix.len());
            if buf.get(..n) != prefix.get(..n) {
                return Err(self.fail(RawFrameError::BadPrefix { len: self.offset }));
            }
        }
        let header = self.header_len();
        let Some(field) = buf.get(self.offset..header) else {
            buf.reserve(header.saturating_sub(buf.len()));
            return Ok(None);
        };
        let value = self.read_value(field);
        let total = match self.total_len(value) {
            Ok(t) => t,
            Err(e) => return Err(self.fail(e)),
        };
        if total > self.max {
            return Err(self.fail(RawFrameError::TooLarge {
                len: total,
                max: self.max,
            }));
        }
        if buf.len() < total {
            buf.reserve(total.saturating_sub(buf.len()));
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        if self.strip_header {
            frame.advance(header);
        }
        Ok(Some(Ok(frame.freeze())))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let len = buf.len();
        buf.clear();
        Ok(Some(Err(RawFrameError::Truncated { len })))
    }
}

impl Encoder<Bytes> for LengthPrefixedCodec {
    type Error = CodecError;
    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(&item, dst)?)
    }
}

impl Encoder<&[u8]> for LengthPrefixedCodec {
    type Error = CodecError;
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(item, dst)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(f: LengthPrefixedFraming) -> LengthPrefixedCodec {
        LengthPrefixedCodec::new(&f).expect("valid")
    }

    #[test]
    fn little_endian_four_byte_length_counting_header() {
        let mut c = codec(LengthPrefixedFraming {
            width: 4,
            endian: Endian::Little,
            counts_header: true,
            strip_header: true,
            ..Default::default()
        });
        let mut buf = BytesMut::from(&[6u8, 0, 0, 0, b'h', b'i', 9][..]);
        let got = c.decode(&mut buf).expect("ok");
        assert_eq!(got, Some(Ok(Bytes::from_static(b"hi"))));
        assert_eq!(&buf[..], &[9]);
    }

    #[test]
    fn length_below_header_is_fatal_and_stays_fatal() {
        let mut c = codec(LengthPrefixedFraming {
            width: 1,
            counts_header: true,
            ..Default::default()
        });
        let mut buf = BytesMut::from(&[0u8, 1, 2][..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(CodecError::Fatal(RawFrameError::BadLength { value: 0, .. }))
        ));
        assert!(c.decode(&mut buf).is_err());
    }
}
