//! 0x0108 terminal upgrade result (JT/T 808-2013 §8.16, 2019 §8.16).
//!
//! ```text
//! upgrade type BYTE (0 terminal, 12 road transport IC card reader, 52 BeiDou module)
//! | result BYTE (0 success, 1 failed, 2 cancelled)
//! ```

use serde::Serialize;

use super::Reader;
use crate::BodyError;

/// 0x0108 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradeResult {
    /// 0 terminal, 12 IC card reader, 52 BeiDou positioning module.
    pub upgrade_type: u8,
    /// 0 success, 1 failed, 2 cancelled.
    pub result: u8,
}

impl UpgradeResult {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0108, body);
        Ok(UpgradeResult {
            upgrade_type: r.u8()?,
            result: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.upgrade_type, self.result]);
    }
}
