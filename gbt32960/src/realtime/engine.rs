//! 0x04 engine: 2016 state BYTE, crankshaft speed WORD rpm, fuel consumption WORD
//! (0.01 L/100 km); 2025 keeps the crankshaft speed only (source: protocol notes table;
//! `docs/standard/2016.md` table 12, `docs/standard/2025.md`).

use serde::Serialize;

use super::Cursor;
use crate::Edition;

/// Engine data, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Engine {
    /// 2016: 1 on, 2 off.
    pub state: Option<u8>,
    /// rpm.
    pub crank_rpm: u16,
    /// 2016: 0.01 L/100 km.
    pub fuel_rate: Option<u16>,
}

impl Engine {
    pub(crate) fn decode(c: &mut Cursor<'_>, ed: Edition) -> Option<Self> {
        if ed == Edition::V2016 {
            Some(Engine {
                state: Some(c.u8()?),
                crank_rpm: c.u16()?,
                fuel_rate: Some(c.u16()?),
            })
        } else {
            Some(Engine {
                state: None,
                crank_rpm: c.u16()?,
                fuel_rate: None,
            })
        }
    }

    pub(crate) fn encode(&self, ed: Edition, out: &mut Vec<u8>) {
        if ed == Edition::V2016 {
            out.push(self.state.unwrap_or(0xFF));
            out.extend_from_slice(&self.crank_rpm.to_be_bytes());
            out.extend_from_slice(&self.fuel_rate.unwrap_or(0xFFFF).to_be_bytes());
        } else {
            out.extend_from_slice(&self.crank_rpm.to_be_bytes());
        }
    }
}
