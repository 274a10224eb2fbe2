//! 0x8003 resend request: the platform names the packages of a subpackaged message it is
//! missing (JT/T 808-2013 §8.4, 2019 §8.4).
//!
//! ```text
//! 2013: first serial WORD | count BYTE | ids WORD[count]
//! 2019: first serial WORD | count WORD | ids WORD[count]
//! ```
//!
//! `ids` are package indexes (1-based). The count width is the only edition difference; a
//! 2011/2013 terminal cannot be asked for more than 255 packages in one request.

use serde::Serialize;

use super::Reader;
use crate::{BodyError, Version};

const ID: u16 = 0x8003;

/// 0x8003 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResendRequest {
    /// Serial of the first package of the original message.
    pub first_serial: u16,
    /// Package indexes to send again.
    pub ids: Vec<u16>,
}

impl ResendRequest {
    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let mut r = Reader::new(ID, body);
        let first_serial = r.u16()?;
        let count = match version {
            Version::V2019 => usize::from(r.u16()?),
            Version::V2011 | Version::V2013 => usize::from(r.u8()?),
        };
        let mut ids = Vec::with_capacity(count.min(r.remaining() / 2));
        for _ in 0..count {
            ids.push(r.u16()?);
        }
        Ok(ResendRequest { first_serial, ids })
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend_from_slice(&self.first_serial.to_be_bytes());
        let too_many = || BodyError::Invalid {
            msg_id: ID,
            field: "ids",
            len: self.ids.len(),
        };
        match version {
            Version::V2019 => {
                let n = u16::try_from(self.ids.len()).map_err(|_| too_many())?;
                out.extend_from_slice(&n.to_be_bytes());
            }
            Version::V2011 | Version::V2013 => {
                let n = u8::try_from(self.ids.len()).map_err(|_| too_many())?;
                out.push(n);
            }
        }
        for id in &self.ids {
            out.extend_from_slice(&id.to_be_bytes());
        }
        Ok(())
    }
}
