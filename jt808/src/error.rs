//! Errors of the JT/T 808 crate.
//!
//! `FrameError` (framing, header, checksum: owned by `codec.rs`/`frame.rs`) and
//! `BodyError` (message bodies: owned by `msg/`). Both are `Clone + PartialEq` so tests
//! match variants; nom's errors never leave the crate.

use thiserror::Error;

/// A frame that could not be delimited, unescaped, checked or have its header read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame too large: {len} bytes, max {max}")]
    TooLarge { len: usize, max: usize },
}

/// A message body that does not parse as its message id says.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error("message 0x{msg_id:04x}: body too short: {len} bytes, need {need}")]
    TooShort {
        msg_id: u16,
        len: usize,
        need: usize,
    },
}
