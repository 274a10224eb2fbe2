//! 0x0001 terminal general response and 0x8001 platform general response.
//!
//! Layout (JT/T 808-2013 §8.1 and §8.2, unchanged in 2019): reply serial WORD, reply id
//! WORD, result BYTE (0 ok, 1 failure, 2 bad message, 3 unsupported, 4 alarm confirmed
//! (0x8001 only)).

use serde::Serialize;

/// General-response result codes (JT/T 808-2019 §8.1 / §8.2).
pub mod result {
    /// Success / acknowledged.
    pub const OK: u8 = 0;
    /// Failure: the terminal keeps the data and sends it again.
    pub const FAILURE: u8 = 1;
    /// The message was malformed.
    pub const MESSAGE_ERROR: u8 = 2;
    /// The message is not supported.
    pub const UNSUPPORTED: u8 = 3;
    /// Alarm handling confirmed (0x8001 only).
    pub const ALARM_CONFIRMED: u8 = 4;

    /// What a result code means, in words (`None` for codes the standard does not define).
    pub fn describe(code: u8) -> Option<&'static str> {
        match code {
            OK => Some("success"),
            FAILURE => Some("failure"),
            MESSAGE_ERROR => Some("message error"),
            UNSUPPORTED => Some("unsupported"),
            ALARM_CONFIRMED => Some("alarm confirmed"),
            _ => None,
        }
    }
}

use super::Reader;
use crate::BodyError;

/// A general response (0x0001 or 0x8001).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneralResponse {
    /// Serial of the message answered.
    pub reply_serial: u16,
    /// Id of the message answered.
    pub reply_id: u16,
    /// Result code (0 success).
    pub result: u8,
}

impl GeneralResponse {
    pub(crate) fn decode(msg_id: u16, body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(msg_id, body);
        Ok(GeneralResponse {
            reply_serial: r.u16()?,
            reply_id: r.u16()?,
            result: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reply_serial.to_be_bytes());
        out.extend_from_slice(&self.reply_id.to_be_bytes());
        out.push(self.result);
    }
}
