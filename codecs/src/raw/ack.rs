//! What is written back to the vehicle for each accepted frame (`ack`).

use bytes::{BufMut, BytesMut};

use super::codec::RawCodec;
use super::config::{Ack, ConfigError};
use super::error::RawFrameError;

/// The ack of a listener, ready to write: `fixed` hex decoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acker {
    /// `none`: nothing is written.
    None,
    /// `fixed`: these bytes, verbatim.
    Fixed(Vec<u8>),
    /// `echo`: the frame, framed again with the listener's codec.
    Echo,
}

impl Acker {
    /// The acker for `ack`, which is validated.
    pub fn new(ack: &Ack) -> Result<Self, ConfigError> {
        Ok(match ack {
            Ack::None => Acker::None,
            Ack::Fixed { .. } => Acker::Fixed(ack.fixed_bytes()?.unwrap_or_default()),
            Ack::Echo => Acker::Echo,
        })
    }

    /// Appends the ack for `frame` (as the decoder emitted it) to `dst`. Writes nothing for
    /// `none`. `echo` fails only if the frame cannot be framed again (it always can when it
    /// came from the same codec).
    pub fn write(
        &self,
        frame: &[u8],
        codec: &mut RawCodec,
        dst: &mut BytesMut,
    ) -> Result<(), RawFrameError> {
        match self {
            Acker::None => Ok(()),
            Acker::Fixed(bytes) => {
                dst.put_slice(bytes);
                Ok(())
            }
            Acker::Echo => codec.encode_body(frame, dst),
        }
    }
}
