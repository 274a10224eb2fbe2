//! 0x05 vehicle position: status BYTE (bit 0 = no valid fix, bit 1 = south, bit 2 = west),
//! 2025 adds a coordinate-system BYTE (1 WGS-84, 2 GCJ-02, 3 other) after it, then
//! longitude and latitude DWORD in 1e-6 degrees, unsigned (source: protocol notes table;
//! `docs/standard/2016.md` table 13-14, `docs/standard/2025.md`).

use serde::Serialize;

use super::Cursor;
use crate::Edition;

/// Position, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Status bits.
    pub status: u8,
    /// 2025 only: coordinate system.
    pub coord_system: Option<u8>,
    /// 1e-6 degrees, unsigned.
    pub longitude: u32,
    /// 1e-6 degrees, unsigned.
    pub latitude: u32,
}

impl Position {
    /// Whether the fix is valid (status bit 0 clear).
    pub fn fix_valid(&self) -> bool {
        self.status & 0x01 == 0
    }
    /// Signed latitude in degrees (south negative), `None` for 0xFFFFFFFE/0xFFFFFFFF.
    pub fn latitude_deg(&self) -> Option<f64> {
        let v = super::scaled_u32(self.latitude, 1.0, 0.0)? / 1e6;
        Some(if self.status & 0x02 != 0 { -v } else { v })
    }
    /// Signed longitude in degrees (west negative), `None` for 0xFFFFFFFE/0xFFFFFFFF.
    pub fn longitude_deg(&self) -> Option<f64> {
        let v = super::scaled_u32(self.longitude, 1.0, 0.0)? / 1e6;
        Some(if self.status & 0x04 != 0 { -v } else { v })
    }

    pub(crate) fn decode(c: &mut Cursor<'_>, ed: Edition) -> Option<Self> {
        Some(Position {
            status: c.u8()?,
            coord_system: if ed == Edition::V2025 {
                Some(c.u8()?)
            } else {
                None
            },
            longitude: c.u32()?,
            latitude: c.u32()?,
        })
    }

    pub(crate) fn encode(&self, ed: Edition, out: &mut Vec<u8>) {
        out.push(self.status);
        if ed == Edition::V2025 {
            out.push(self.coord_system.unwrap_or(0xFF));
        }
        out.extend_from_slice(&self.longitude.to_be_bytes());
        out.extend_from_slice(&self.latitude.to_be_bytes());
    }
}
