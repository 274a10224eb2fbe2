//! Errors of the raw framers.

use thiserror::Error;

/// Something wrong with one frame, or with a body handed to an encoder.
///
/// As a decoder *item* (`Ok(Some(Err(e)))`) the stream resynchronised and decoding goes on;
/// inside [`CodecError::Fatal`] it could not, and the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RawFrameError {
    /// A frame longer than `max_frame_len` (wire bytes, delimiters not counted).
    #[error("frame of {len} bytes or more exceeds max_frame_len {max}")]
    TooLarge { len: usize, max: usize },
    /// A length field whose value (after `adjustment`) cannot be a frame: below the header
    /// size, negative, or overflowing.
    #[error("length field value {value} (adjusted {adjusted}) gives no valid frame length")]
    BadLength { value: u32, adjusted: i64 },
    /// The bytes before the length field are not the configured `prefix`.
    #[error("the {len} bytes before the length field are not the configured prefix")]
    BadPrefix { len: usize },
    /// Bytes before an opening delimiter (`both_ends`), dropped.
    #[error("{len} bytes of junk before an opening delimiter")]
    Junk { len: usize },
    /// An incomplete frame when the stream ended.
    #[error("stream ended inside a frame ({len} bytes buffered)")]
    Truncated { len: usize },
    /// Encoding: the body contains the delimiter, so it would not decode as one frame.
    #[error("body contains the delimiter at offset {at}")]
    ContainsDelimiter { at: usize },
    /// Encoding: a body that is not exactly the fixed frame size.
    #[error("body of {len} bytes, the fixed frame size is {size}")]
    WrongSize { len: usize, size: usize },
    /// Encoding: a length that does not fit the length field.
    #[error("length {value} does not fit a {width}-byte length field")]
    LengthOverflow { value: i64, width: u8 },
    /// Encoding with `strip_header = false`: a frame shorter than its header.
    #[error("frame of {len} bytes is shorter than its {header}-byte header")]
    ShortFrame { len: usize, header: usize },
}

impl RawFrameError {
    /// A snake_case label for metrics.
    pub const fn reason(&self) -> &'static str {
        match self {
            RawFrameError::TooLarge { .. } => "too_large",
            RawFrameError::BadLength { .. } => "bad_length",
            RawFrameError::BadPrefix { .. } => "bad_prefix",
            RawFrameError::Junk { .. } => "junk",
            RawFrameError::Truncated { .. } => "truncated",
            RawFrameError::ContainsDelimiter { .. } => "contains_delimiter",
            RawFrameError::WrongSize { .. } => "wrong_size",
            RawFrameError::LengthOverflow { .. } => "length_overflow",
            RawFrameError::ShortFrame { .. } => "short_frame",
        }
    }
}

/// The `Decoder`/`Encoder` error: the stream cannot go on (or an encode was refused).
///
/// An `Err` from a decoder ends tokio-util's `FramedRead`, so decoders return it only when
/// they cannot resynchronise (length_prefixed); recoverable problems are items.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The frame stream is out of step (decoding) or the body cannot be framed (encoding).
    #[error("{0}")]
    Fatal(#[from] RawFrameError),
    /// From the transport (tokio-util's contract requires `From<io::Error>`).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl CodecError {
    /// A snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            CodecError::Fatal(e) => e.reason(),
            CodecError::Io(_) => "io",
        }
    }

    /// The frame error inside, if that is what this is.
    pub fn frame_error(&self) -> Option<&RawFrameError> {
        match self {
            CodecError::Fatal(e) => Some(e),
            _ => None,
        }
    }
}
