//! Alarm data: 2016 type 0x07, 2025 type 0x06.
//!
//! Highest alarm level BYTE (2016 0..3; 2025 0..4, 4 = thermal event), general alarm flags
//! DWORD (2016 bits 0..18, 2025 adds bits 19..27), then four fault lists (RESS, drive motor,
//! engine, other), each a count BYTE and that many DWORD fault codes. 2025 appends a general
//! alarm list: count BYTE and (flag bit BYTE, level BYTE) pairs. Sources: protocol notes
//! table; `docs/standard/2016.md` table 16-18, `docs/standard/2025.md`; the 2025 pair list
//! layout as read by `sunsky74/gbt32960-simulator` (AlarmData.GeneralCodes).

use serde::Serialize;

use super::Cursor;
use crate::Edition;

/// Alarm data, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// Highest alarm level (0xFE/0xFF sentinels).
    pub level: u8,
    /// General alarm flag bits.
    pub flags: u32,
    /// RESS fault codes.
    pub ress_faults: Vec<u32>,
    /// Drive motor fault codes.
    pub motor_faults: Vec<u32>,
    /// Engine fault codes.
    pub engine_faults: Vec<u32>,
    /// Other fault codes.
    pub other_faults: Vec<u32>,
    /// 2025 only: (general flag bit, level) pairs.
    pub general: Option<Vec<(u8, u8)>>,
}

/// Names of the general alarm flag bits, bit 0 first (2016 bits 0..18, 2025 19..27).
/// Source: `docs/standard/2016.md` table 17 and `docs/standard/2025.md` table 24.
pub const FLAG_NAMES: [&str; 28] = [
    "temperature_difference",
    "battery_high_temperature",
    "ress_overvoltage",
    "ress_undervoltage",
    "soc_low",
    "cell_overvoltage",
    "cell_undervoltage",
    "soc_high",
    "soc_jump",
    "ress_mismatch",
    "cell_consistency_poor",
    "insulation",
    "dcdc_temperature",
    "brake_system",
    "dcdc_status",
    "motor_controller_temperature",
    "high_voltage_interlock",
    "motor_temperature",
    "ress_overcharge",
    "motor_overspeed",
    "motor_overcurrent",
    "supercap_over_temperature",
    "supercap_overvoltage",
    "ress_thermal_event",
    "h2_leak",
    "h2_system_pressure",
    "h2_system_temperature",
    "fuel_cell_stack_over_temperature",
];

fn list(c: &mut Cursor<'_>) -> Option<Vec<u32>> {
    let n = c.u8()?;
    // 0xFE/0xFF counts are sentinels with no codes after them.
    let n = if n >= 0xFE { 0 } else { usize::from(n) };
    // The n codes at once: one bounds check, a list of its exact size (none for n = 0).
    let codes = c.bytes(n * 4)?.chunks_exact(4).map(|w| match w {
        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    });
    Some(codes.collect())
}

fn put_list(l: &[u32], out: &mut Vec<u8>) {
    let n = l.len().min(0xFD);
    out.push(n as u8);
    for x in l.iter().take(n) {
        out.extend_from_slice(&x.to_be_bytes());
    }
}

impl Alarm {
    /// snake_case names of the set general flags (unnamed bits as `bitNN`).
    pub fn flag_names(&self) -> Vec<String> {
        (0..32u32)
            .filter(|b| self.flags & (1 << b) != 0)
            .map(|b| {
                FLAG_NAMES
                    .get(b as usize)
                    .map(|s| (*s).to_string())
                    .unwrap_or_else(|| format!("bit{b}"))
            })
            .collect()
    }

    pub(crate) fn decode(c: &mut Cursor<'_>, ed: Edition) -> Option<Self> {
        Some(Alarm {
            level: c.u8()?,
            flags: c.u32()?,
            ress_faults: list(c)?,
            motor_faults: list(c)?,
            engine_faults: list(c)?,
            other_faults: list(c)?,
            general: if ed == Edition::V2025 {
                let n = c.u8()?;
                let n = if n >= 0xFE { 0 } else { n };
                Some(
                    (0..n)
                        .map(|_| Some((c.u8()?, c.u8()?)))
                        .collect::<Option<_>>()?,
                )
            } else {
                None
            },
        })
    }

    pub(crate) fn encode(&self, ed: Edition, out: &mut Vec<u8>) {
        out.push(self.level);
        out.extend_from_slice(&self.flags.to_be_bytes());
        put_list(&self.ress_faults, out);
        put_list(&self.motor_faults, out);
        put_list(&self.engine_faults, out);
        put_list(&self.other_faults, out);
        if ed == Edition::V2025 {
            let g = self.general.as_deref().unwrap_or(&[]);
            let n = g.len().min(0xFD);
            out.push(n as u8);
            for (b, l) in g.iter().take(n) {
                out.extend_from_slice(&[*b, *l]);
            }
        }
    }
}
