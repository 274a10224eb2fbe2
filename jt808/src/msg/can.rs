//! 0x0705 CAN bus data upload (JT/T 808-2013 §8.52, unchanged in 2019).
//!
//! ```text
//! count WORD | receive time BCD[5] (hh mm ss msms, time of the first item)
//! | { CAN id BYTE[4] | CAN data BYTE[8] }*
//! ```
//!
//! CAN id bits: 31 channel (0 CAN1, 1 CAN2), 30 frame type (0 standard, 1 extended),
//! 29 collection method (0 raw, 1 interval average), 28-0 the bus id.

use serde::Serialize;

use super::fields::{array, count};
use super::{as_hex, Reader};
use crate::BodyError;

const ID: u16 = 0x0705;

/// One CAN frame of a 0x0705.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanItem {
    /// The CAN id DWORD with its flag bits (see the module doc).
    pub id: u32,
    /// The 8 data bytes.
    #[serde(serialize_with = "as_hex")]
    pub data: [u8; 8],
}

impl CanItem {
    /// Channel: 0 CAN1, 1 CAN2 (bit 31).
    pub fn channel(&self) -> u8 {
        (self.id >> 31) as u8
    }

    /// Whether the frame is an extended frame (bit 30).
    pub fn extended(&self) -> bool {
        self.id >> 30 & 1 == 1
    }

    /// The bus id (bits 28-0).
    pub fn bus_id(&self) -> u32 {
        self.id & 0x1fff_ffff
    }
}

/// 0x0705 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanData {
    /// BCD `hhmmss` then milliseconds as 4 BCD digits.
    #[serde(serialize_with = "as_hex")]
    pub time: [u8; 5],
    /// The frames.
    pub items: Vec<CanItem>,
}

impl CanData {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(ID, body);
        let n = usize::from(r.u16()?);
        let time = array(&mut r)?;
        let mut items = Vec::with_capacity(n.min(r.remaining() / 12));
        for _ in 0..n {
            items.push(CanItem {
                id: r.u32()?,
                data: array(&mut r)?,
            });
        }
        Ok(CanData { time, items })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let n: u16 = count(self.items.len(), "items", ID)?;
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&self.time);
        for it in &self.items {
            out.extend_from_slice(&it.id.to_be_bytes());
            out.extend_from_slice(&it.data);
        }
        Ok(())
    }
}
