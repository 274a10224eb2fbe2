//! Errors of the GB/T 32960 crate: `FrameError` (framing, BCC, encryption: owned by the
//! frame layer) and `BodyError` (command bodies and info units). `Clone + PartialEq`, so
//! tests match variants rather than Display text.

use thiserror::Error;

/// A frame that could not be delimited or checked.
///
/// Every variant but [`FrameError::Truncated`] leaves the stream usable: the codec reports
/// the bad frame as an item and goes on with the bytes after it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The declared frame (25 + data length) is larger than the configured maximum.
    #[error("frame too large: {len} bytes, max {max}")]
    TooLarge { len: usize, max: usize },
    /// The data length field is above the standard's 65531 (GB/T 32960.3 table 2).
    #[error("data length {len} above the standard's maximum 65531")]
    LengthOverLimit { len: usize },
    /// Fewer bytes than a frame header and checksum (25).
    #[error("frame too short: {len} bytes, need {need}")]
    TooShort { len: usize, need: usize },
    /// The bytes do not start with `##` or `$$`.
    #[error("no start marker: first bytes 0x{found:04x}")]
    BadStart { found: u16 },
    /// A header byte holds a value the standard does not define (a false start marker
    /// in garbage, most of the time).
    #[error("implausible header: {field} is 0x{value:02x}")]
    BadHeader { field: &'static str, value: u8 },
    /// The identifier field is not printable ASCII once its padding is stripped.
    #[error("identifier byte 0x{byte:02x} at offset {offset} is not printable ASCII")]
    BadVin { offset: usize, byte: u8 },
    /// `Frame::parse` was given a complete frame followed by more bytes than the length field
    /// says (fewer bytes is [`FrameError::Truncated`]).
    #[error("length field says {declared} frame bytes, got {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    /// The BCC (XOR from the command byte to the last data byte) does not match.
    #[error("bad BCC: frame says 0x{expected:02x}, computed 0x{actual:02x}")]
    BadBcc { expected: u8, actual: u8 },
    /// The input ended in the middle of a frame: the stream at end of input, or
    /// `Frame::parse` given fewer bytes than the length field declares.
    #[error("stream ended inside a frame: {len} bytes of {need}")]
    Truncated { len: usize, need: usize },
}

impl FrameError {
    /// Whether the stream can go on after this error (only a stream that ended inside a
    /// frame cannot).
    pub fn can_continue(&self) -> bool {
        !matches!(self, FrameError::Truncated { .. })
    }

    /// A snake_case label for metrics (`gbt32960_bad_frames_total{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } => "too_large",
            FrameError::LengthOverLimit { .. } => "length_over_limit",
            FrameError::TooShort { .. } => "too_short",
            FrameError::BadStart { .. } => "bad_start",
            FrameError::BadHeader { .. } => "bad_header",
            FrameError::BadVin { .. } => "bad_vin",
            FrameError::LengthMismatch { .. } => "length_mismatch",
            FrameError::BadBcc { .. } => "bad_bcc",
            FrameError::Truncated { .. } => "truncated",
        }
    }
}

/// A body that does not parse as its command says, or cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error("command 0x{command:02x}: body too short: {len} bytes, need {need}")]
    TooShort {
        command: u8,
        len: usize,
        need: usize,
    },
    /// Bytes left after the last field of a fixed-layout body.
    #[error("command 0x{command:02x}: {extra} bytes after the body")]
    TrailingBytes { command: u8, extra: usize },
    /// The data unit is encrypted and no key is configured for it: passed through as is.
    #[error("command 0x{command:02x}: data encrypted (0x{encryption:02x}) and no key configured")]
    Encrypted { command: u8, encryption: u8 },
    /// The data unit uses an algorithm this crate does not decrypt (RSA, SM2) or an
    /// encryption byte that says abnormal/invalid/reserved.
    #[error("command 0x{command:02x}: encryption 0x{encryption:02x} not supported")]
    UnsupportedEncryption { command: u8, encryption: u8 },
    /// Decryption with the configured key failed (length not a block multiple, bad padding).
    #[error("command 0x{command:02x}: decryption (0x{encryption:02x}) failed on {len} bytes")]
    Decrypt {
        command: u8,
        encryption: u8,
        len: usize,
    },
    /// A parameter id whose value width the edition does not define (0x11.., user defined),
    /// so the rest of the list cannot be read.
    #[error("command 0x{command:02x}: parameter id 0x{id:02x} has no known width")]
    UnknownParam { command: u8, id: u8 },
    /// A field holds a value the layout cannot carry (a domain without its length, a
    /// count above the standard's maximum, a string longer than its width...).
    #[error("command 0x{command:02x}: {field}: value {value} out of range (max {max})")]
    OutOfRange {
        command: u8,
        field: &'static str,
        value: usize,
        max: usize,
    },
    /// A field the layout needs is missing (`0x05` without `0x04` before it...).
    #[error("command 0x{command:02x}: {field} missing")]
    Missing { command: u8, field: &'static str },
    /// The message exists only in the other edition, or its body is the other edition's
    /// layout (a 2016 login encoded as 2025).
    #[error("command 0x{command:02x}: not valid in the {edition} edition")]
    WrongEdition { command: u8, edition: u16 },
    /// A parameter value of the wrong kind for its id (text for a WORD id...).
    #[error("command 0x{command:02x}: parameter 0x{id:02x}: value of the wrong kind")]
    BadParamValue { command: u8, id: u8 },
    /// A text field holds a byte its layout reserves (the `;` separator of an upgrade).
    #[error("command 0x{command:02x}: {field} contains a separator")]
    BadText { command: u8, field: &'static str },
}

impl BodyError {
    /// A bounded label for metrics (`vgate_decode_errors_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            BodyError::TooShort { .. } => "body_too_short",
            BodyError::TrailingBytes { .. } => "trailing_bytes",
            BodyError::Encrypted { .. } => "encrypted_no_key",
            BodyError::UnsupportedEncryption { .. } => "unsupported_encryption",
            BodyError::Decrypt { .. } => "decrypt_failed",
            _ => "body_invalid",
        }
    }
}
