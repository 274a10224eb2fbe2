//! `type = "fixed"`: every frame is `size` bytes.
//!
//! Resync: never needed and never possible; every `size` bytes are a frame, and a short
//! tail at end of stream is reported as [`RawFrameError::Truncated`]. The encoder refuses
//! bodies of any other size.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::config::{ConfigError, FixedFraming};
use super::error::{CodecError, RawFrameError};

/// The fixed-size framer: a tokio-util [`Decoder`] and [`Encoder`].
#[derive(Debug, Clone)]
pub struct FixedCodec {
    size: usize,
}

impl FixedCodec {
    /// A codec for `config`, which is validated.
    pub fn new(config: &FixedFraming) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(FixedCodec { size: config.size })
    }

    /// The frame size (also the largest frame).
    pub fn max_frame_len(&self) -> usize {
        self.size
    }

    /// Writes `body`, which must be exactly the frame size, into `dst`.
    pub fn encode_body(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), RawFrameError> {
        if body.len() != self.size {
            return Err(RawFrameError::WrongSize {
                len: body.len(),
                size: self.size,
            });
        }
        dst.extend_from_slice(body);
        Ok(())
    }
}

impl Decoder for FixedCodec {
    type Item = Result<Bytes, RawFrameError>;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        if buf.len() < self.size {
            buf.reserve(self.size.saturating_sub(buf.len()));
            return Ok(None);
        }
        Ok(Some(Ok(buf.split_to(self.size).freeze())))
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

impl Encoder<Bytes> for FixedCodec {
    type Error = CodecError;
    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(&body, dst)?)
    }
}

impl Encoder<&[u8]> for FixedCodec {
    type Error = CodecError;
    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_body(body, dst)?)
    }
}
