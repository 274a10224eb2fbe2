//! 0x0608 query area or route answer (JT/T 808-2019 §8.63, new in 2019; reply to 0x8608).
//!
//! ```text
//! type BYTE (1 circle, 2 rectangle, 3 polygon, 4 route) | count DWORD
//! | areas in the layouts of 0x8600 / 0x8602 / 0x8604 / 0x8606 (2019)
//! ```
//!
//! The area bodies are variable-length records of the platform's area messages; they are
//! kept as bytes here (`data`), typed header only.

use serde::Serialize;

use super::{as_hex, Reader};
use crate::BodyError;

/// 0x0608 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AreaQueryAnswer {
    /// 1 circle, 2 rectangle, 3 polygon, 4 route.
    pub area_type: u8,
    /// Number of areas or routes in `data`.
    pub count: u32,
    /// The area records, undecoded.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
}

impl AreaQueryAnswer {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0608, body);
        Ok(AreaQueryAnswer {
            area_type: r.u8()?,
            count: r.u32()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.area_type);
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.data);
    }
}
