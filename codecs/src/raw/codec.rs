//! [`RawCodec`]: whichever framer the configuration names, behind one type.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::config::{ConfigError, Framing};
use super::delimited::DelimitedCodec;
use super::error::{CodecError, RawFrameError};
use super::fixed::FixedCodec;
use super::length_prefixed::LengthPrefixedCodec;

/// The framer of a `[[raw]]` listener, built from its `framing` table.
///
/// `Item = Result<Bytes, RawFrameError>`: an `Err` item is a bad frame the stream recovered
/// from (count it by [`RawFrameError::reason`], keep reading); a decoder `Err` means the
/// stream cannot recover (close the connection). See each framer for its resync rules.
#[derive(Debug, Clone)]
pub enum RawCodec {
    Delimited(DelimitedCodec),
    LengthPrefixed(LengthPrefixedCodec),
    Fixed(FixedCodec),
}

impl RawCodec {
    /// The codec for `framing`, which is validated.
    pub fn new(framing: &Framing) -> Result<Self, ConfigError> {
        Ok(match framing {
            Framing::Delimited(d) => RawCodec::Delimited(DelimitedCodec::new(d)?),
            Framing::LengthPrefixed(l) => RawCodec::LengthPrefixed(LengthPrefixedCodec::new(l)?),
            Framing::Fixed(f) => RawCodec::Fixed(FixedCodec::new(f)?),
        })
    }

    /// The largest frame the decoder emits and the encoder accepts.
    pub fn max_frame_len(&self) -> usize {
        match self {
            RawCodec::Delimited(c) => c.max_frame_len(),
            RawCodec::LengthPrefixed(c) => c.max_frame_len(),
            RawCodec::Fixed(c) => c.max_frame_len(),
        }
    }

    /// Frames `body` into `dst` (the inverse of decoding); on error `dst` is unchanged.
    pub fn encode_body(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), RawFrameError> {
        match self {
            RawCodec::Delimited(c) => c.encode_body(body, dst),
            RawCodec::LengthPrefixed(c) => c.encode_body(body, dst),
            RawCodec::Fixed(c) => c.encode_body(body, dst),
        }
    }
}

impl Decoder for RawCodec {
    type Item = Result<Bytes, RawFrameError>;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        match self {
            RawCodec::Delimited(c) => c.decode(buf),
            RawCodec::LengthPrefixed(c) => c.decode(buf),
            RawCodec::Fixed(c) => c.decode(buf),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        match self {
            RawCodec::Delimited(c) => c.decode_eof(buf),
            RawCodec::LengthPrefixed(c) => c.decode_eof(buf),
            RawCodec::Fixed(c) => c.decode_eof(buf),
        }
    }
}

impl Encoder<Bytes> for RawCodec {
    type Error = CodecError;
    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(&body, dst)?)
    }
}

impl Encoder<&[u8]> for RawCodec {
    type Error = CodecError;
    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(body, dst)?)
    }
}
