//! Information services (JT/T 808-2013 §8.29-§8.34):
//!
//! ```text
//! 0x0301 event report:       event id BYTE (an id the platform set with 0x8301)
//! 0x0302 question answer:    reply serial WORD (of the 0x8302) | answer id BYTE
//! 0x0303 info on-demand:     info type BYTE | flag BYTE (0 cancel, 1 on-demand)
//! ```
//!
//! JT/T 808-2019 drops 0x0301 and 0x0303 (0x0302 stays); the layouts did not change, so
//! they are read the same in every edition.

use serde::Serialize;

use super::Reader;
use crate::BodyError;

/// 0x0301 event report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventReport {
    /// Event id from the platform's 0x8301 event list.
    pub event_id: u8,
}

/// 0x0302 question answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuestionAnswer {
    /// Serial of the 0x8302 question.
    pub reply_serial: u16,
    /// The chosen answer's id.
    pub answer_id: u8,
}

/// 0x0303 information on-demand or cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InfoDemand {
    /// Information type from the platform's 0x8303 menu.
    pub info_type: u8,
    /// 0 cancel, 1 on-demand.
    pub flag: u8,
}

impl EventReport {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0301, body);
        Ok(EventReport { event_id: r.u8()? })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.event_id);
    }
}

impl QuestionAnswer {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0302, body);
        Ok(QuestionAnswer {
            reply_serial: r.u16()?,
            answer_id: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reply_serial.to_be_bytes());
        out.push(self.answer_id);
    }
}

impl InfoDemand {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0303, body);
        Ok(InfoDemand {
            info_type: r.u8()?,
            flag: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.info_type, self.flag]);
    }
}
