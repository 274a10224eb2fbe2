//! Errors of the GB/T 32960 crate: `FrameError` (framing, BCC, encryption: owned by the
//! frame layer) and `BodyError` (command bodies and info units). `Clone + PartialEq`.

use thiserror::Error;

/// A frame that could not be delimited, checked or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame too large: {len} bytes, max {max}")]
    TooLarge { len: usize, max: usize },
}

/// A body that does not parse as its command says.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error("command 0x{command:02x}: body too short: {len} bytes, need {need}")]
    TooShort {
        command: u8,
        len: usize,
        need: usize,
    },
}
