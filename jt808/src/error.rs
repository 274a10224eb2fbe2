//! Errors of the JT/T 808 crate.
//!
//! `FrameError` (framing, header, checksum: owned by `codec.rs`/`frame.rs`) and
//! `BodyError` (message bodies: owned by `msg/`). Both are `Clone + PartialEq` so tests
//! match variants; nom's errors never leave the crate.

use thiserror::Error;

/// A frame that could not be delimited, unescaped, checked or have its header read.
///
/// Offsets count bytes of the escaped frame content (after the opening 0x7E); lengths
/// count wire bytes for `TooLarge`/`Junk`/`Truncated` and unescaped bytes otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// More than `max` wire bytes without a closing 0x7E; the codec skips to the next 0x7E.
    #[error("frame too large: {len} bytes, max {max}")]
    TooLarge { len: usize, max: usize },
    /// Fewer bytes than a header and a checksum need.
    #[error("frame too short: {len} bytes")]
    TooShort { len: usize },
    /// 0x7D followed by something other than 0x01 or 0x02.
    #[error("bad escape 0x7d 0x{byte:02x} at offset {offset}")]
    BadEscape { offset: usize, byte: u8 },
    /// The XOR of header and body (`actual`) differs from the checksum byte (`expected`).
    #[error("bad checksum: frame says 0x{expected:02x}, computed 0x{actual:02x}")]
    BadChecksum { expected: u8, actual: u8 },
    /// The body-length bits disagree with the bytes between header and checksum.
    #[error("body length mismatch: header says {declared}, frame has {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    /// The body is encrypted (attribute bits 10-12 = `bits`); vgate does not decrypt.
    #[error("message 0x{msg_id:04x}: encrypted body (bits {bits:#05b}) refused")]
    Encrypted { msg_id: u16, bits: u8 },
    /// `len` bytes before an opening 0x7E that belong to no frame (HTTP probe, TLS hello, noise).
    #[error("{len} bytes of junk outside any frame")]
    Junk { len: usize },
    /// The stream ended inside a frame of `len` wire bytes.
    #[error("stream ended inside a frame of {len} bytes")]
    Truncated { len: usize },
}

impl FrameError {
    /// Whether the connection can go on after this error (the codec has resynchronised);
    /// only `Truncated`, which is reported at end of stream, cannot.
    pub fn can_continue(&self) -> bool {
        !matches!(self, FrameError::Truncated { .. })
    }

    /// A snake_case label for metrics (`jt808_frames_dropped_total{reason="bad_checksum"}`).
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } => "too_large",
            FrameError::TooShort { .. } => "too_short",
            FrameError::BadEscape { .. } => "bad_escape",
            FrameError::BadChecksum { .. } => "bad_checksum",
            FrameError::LengthMismatch { .. } => "length_mismatch",
            FrameError::Encrypted { .. } => "encrypted",
            FrameError::Junk { .. } => "junk",
            FrameError::Truncated { .. } => "truncated",
        }
    }
}

/// A message body that does not parse as its message id says, or a message that cannot
/// be written in the requested edition.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    /// The body ends before a field of fixed width: `len` bytes, `need` bytes needed.
    #[error("message 0x{msg_id:04x}: body too short: {len} bytes, need {need}")]
    TooShort {
        msg_id: u16,
        len: usize,
        need: usize,
    },
    /// A field holds a value the message cannot carry (e.g. text longer than its width).
    #[error("message 0x{msg_id:04x}: field {field} invalid ({len} bytes)")]
    Invalid {
        msg_id: u16,
        field: &'static str,
        len: usize,
    },
}

impl BodyError {
    /// A snake_case label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyError::TooShort { .. } => "body_too_short",
            BodyError::Invalid { .. } => "body_invalid",
        }
    }
}
