//! 0x0004 server-time query and 0x8004 server-time answer (JT/T 808-2019 §8.7/§8.8).
//!
//! The terminal sends 0x0004 with an empty body; the platform answers 0x8004 with the
//! current time as BCD[6] `YYMMDDhhmmss` **in UTC** (the 2019 text says "UTC time", unlike
//! every other time in the protocol, which is GMT+8).

use codecs::time::LocalTime;
use serde::Serialize;

use super::Reader;
use crate::BodyError;

/// 0x8004: the platform's UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServerTime {
    /// The UTC wall-clock fields.
    pub utc: LocalTime,
}

impl ServerTime {
    /// The answer for the instant `now`.
    pub fn at(now: chrono::DateTime<chrono::Utc>) -> Self {
        ServerTime {
            utc: LocalTime::from_utc(now, 0),
        }
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8004, body);
        Ok(ServerTime {
            utc: super::bcd_time(&mut r)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        super::put_bcd_time(&self.utc, out);
    }
}
