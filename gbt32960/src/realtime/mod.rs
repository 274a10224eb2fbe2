//! Real-time and reissue data (commands 0x02/0x03): the info units of both editions.
//! (Being written by the GB/T 32960 real-time work; the signatures below are the contract
//! with `msg/`.)

use serde::Serialize;

use crate::{BodyError, Edition};

/// The body of a 0x02 real-time or 0x03 reissue frame: collection time, info units and,
/// in 2025, the trailing signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Collection time as sent (Beijing time by default).
    pub time: codecs::time::LocalTime,
}

impl Report {
    /// Parses a real-time/reissue body of the given edition.
    pub fn decode(data: &[u8], edition: Edition) -> Result<Report, BodyError> {
        let _ = edition;
        Err(BodyError::TooShort {
            command: 0x02,
            len: data.len(),
            need: 6,
        })
    }

    /// Appends the body bytes of this report for the given edition.
    pub fn encode(&self, edition: Edition, out: &mut Vec<u8>) {
        let _ = (edition, out);
    }
}
