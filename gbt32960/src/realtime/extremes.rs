//! 2016 0x06 extreme values (14 bytes): subsystem and cell of the highest and lowest cell
//! voltage (WORD 0.001 V), subsystem and probe of the highest and lowest temperature (BYTE,
//! -40 C). Removed in 2025, where 0x06 is the alarm unit (source: protocol notes table;
//! `docs/standard/2016.md` table 15).

use serde::Serialize;

use super::Cursor;

/// Extreme values, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extremes {
    pub max_v_subsystem: u8,
    pub max_v_cell: u8,
    /// 0.001 V.
    pub max_cell_v: u16,
    pub min_v_subsystem: u8,
    pub min_v_cell: u8,
    /// 0.001 V.
    pub min_cell_v: u16,
    pub max_t_subsystem: u8,
    pub max_t_probe: u8,
    /// C, offset -40.
    pub max_t: u8,
    pub min_t_subsystem: u8,
    pub min_t_probe: u8,
    /// C, offset -40.
    pub min_t: u8,
}

impl Extremes {
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Option<Self> {
        Some(Extremes {
            max_v_subsystem: c.u8()?,
            max_v_cell: c.u8()?,
            max_cell_v: c.u16()?,
            min_v_subsystem: c.u8()?,
            min_v_cell: c.u8()?,
            min_cell_v: c.u16()?,
            max_t_subsystem: c.u8()?,
            max_t_probe: c.u8()?,
            max_t: c.u8()?,
            min_t_subsystem: c.u8()?,
            min_t_probe: c.u8()?,
            min_t: c.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.max_v_subsystem, self.max_v_cell]);
        out.extend_from_slice(&self.max_cell_v.to_be_bytes());
        out.extend_from_slice(&[self.min_v_subsystem, self.min_v_cell]);
        out.extend_from_slice(&self.min_cell_v.to_be_bytes());
        out.extend_from_slice(&[
            self.max_t_subsystem,
            self.max_t_probe,
            self.max_t,
            self.min_t_subsystem,
            self.min_t_probe,
            self.min_t,
        ]);
    }
}
