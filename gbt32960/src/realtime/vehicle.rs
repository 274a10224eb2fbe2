//! 0x01 whole-vehicle data.
//!
//! 2016: 20 bytes, the layout of appendix table B.4 (state, charging, mode, speed, odometer,
//! total voltage, total current, SOC, DC-DC, gear, insulation, accelerator pedal, brake
//! pedal). Main-body table 9 shows 2 reserved bytes where B.4 has the pedals; both are 20
//! bytes, and real frames carry pedal values there, so the pedals are read (source:
//! `sunsky74/gbt32960-simulator:docs/standard/2016.md` table B.4; protocol notes).
//! 2025: 18 bytes, the pedals are gone, current offset -3000 A (`docs/standard/2025.md`).

use serde::Serialize;

use super::Cursor;
use crate::Edition;

/// Whole-vehicle data, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vehicle {
    /// 1 started, 2 stopped, 3 other, 0xFE/0xFF.
    pub state: u8,
    /// 1 parked charging, 2 driving charging, 3 not charging, 4 charged.
    pub charging: u8,
    /// 1 EV, 2 hybrid, 3 fuel.
    pub mode: u8,
    /// 0.1 km/h.
    pub speed: u16,
    /// 0.1 km.
    pub odometer: u32,
    /// 0.1 V.
    pub total_voltage: u16,
    /// 0.1 A, offset -1000 A (2016) / -3000 A (2025).
    pub total_current: u16,
    /// %.
    pub soc: u8,
    /// 1 on, 2 off.
    pub dcdc: u8,
    /// bits 0-3 gear, bit 4 braking force, bit 5 driving force (2025: bit 7 invalid).
    pub gear: u8,
    /// kOhm.
    pub insulation: u16,
    /// 2016 only: accelerator pedal %, brake pedal % (0x65 = braking without travel).
    pub pedals: Option<(u8, u8)>,
}

impl Vehicle {
    pub(crate) fn decode(c: &mut Cursor<'_>, ed: Edition) -> Option<Self> {
        Some(Vehicle {
            state: c.u8()?,
            charging: c.u8()?,
            mode: c.u8()?,
            speed: c.u16()?,
            odometer: c.u32()?,
            total_voltage: c.u16()?,
            total_current: c.u16()?,
            soc: c.u8()?,
            dcdc: c.u8()?,
            gear: c.u8()?,
            insulation: c.u16()?,
            pedals: if ed == Edition::V2016 {
                Some((c.u8()?, c.u8()?))
            } else {
                None
            },
        })
    }

    pub(crate) fn encode(&self, ed: Edition, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.state, self.charging, self.mode]);
        out.extend_from_slice(&self.speed.to_be_bytes());
        out.extend_from_slice(&self.odometer.to_be_bytes());
        out.extend_from_slice(&self.total_voltage.to_be_bytes());
        out.extend_from_slice(&self.total_current.to_be_bytes());
        out.extend_from_slice(&[self.soc, self.dcdc, self.gear]);
        out.extend_from_slice(&self.insulation.to_be_bytes());
        if ed == Edition::V2016 {
            let (a, b) = self.pedals.unwrap_or((0xFF, 0xFF));
            out.extend_from_slice(&[a, b]);
        }
    }

    /// Total current offset in A for the edition (2016 -1000 A, 2025 -3000 A).
    pub fn current_offset(ed: Edition) -> f64 {
        match ed {
            Edition::V2016 => -1000.0,
            Edition::V2025 => -3000.0,
        }
    }
}
