//! Errors of the shared helpers.

use thiserror::Error;

/// An error from one of the shared helpers (BCD, time, text, vehicle id).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A nibble above 9 in a BCD field.
    #[error("invalid BCD byte 0x{byte:02x} at offset {offset}")]
    InvalidBcd { offset: usize, byte: u8 },
    /// A date or time that does not exist (month 13, 31 February, hour 25...).
    #[error(
        "impossible date/time {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"
    )]
    ImpossibleTime {
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    },
    /// A vehicle id that cannot be an MQTT topic level.
    #[error("invalid vehicle id {id:?}: {reason}")]
    InvalidVehicleId { id: String, reason: &'static str },
    /// A string that does not fit its fixed-width field when encoding.
    #[error("text of {len} bytes does not fit a field of {max} bytes")]
    TextTooLong { len: usize, max: usize },
}
