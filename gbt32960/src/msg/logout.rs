//! 0x04 vehicle logout and 0x06 platform logout: time and the login's sequence number
//! (2016 7.3 table 28 and 7.5; 2025 7.3 table 28 and 7.5 table 30).

use codecs::time::LocalTime;
use serde::Serialize;

use super::{put_time, Reader};
use crate::BodyError;

/// A vehicle or platform logout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logout {
    /// Logout time.
    pub time: LocalTime,
    /// Equal to the sequence number of the login it closes.
    pub seq: u16,
}

impl Logout {
    pub(crate) fn decode(command: u8, data: &[u8]) -> Result<Logout, BodyError> {
        let mut r = Reader::new(data, command);
        let time = r.time()?;
        let seq = r.u16()?;
        r.finish()?;
        Ok(Logout { time, seq })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_time(out, &self.time);
        out.extend_from_slice(&self.seq.to_be_bytes());
    }
}
