//! 2025 super-capacitor units (source: `sunsky74/gbt32960-simulator:docs/standard/2025.md`
//! §7.2.4.10 table 25 and §7.2.4.11 table 26).
//!
//! 0x31: management system no BYTE, total voltage WORD 0.1 V, total current WORD 0.1 A
//! offset -3000 A, cell count WORD + WORD cell voltages 0.001 V, probe count WORD + BYTE
//! temperatures (-40 C).
//! 0x32 extremes: for the highest and lowest cell voltage: system BYTE, cell code WORD,
//! voltage WORD 0.001 V; for the highest and lowest temperature: system BYTE, probe code
//! WORD, temperature BYTE (-40 C). 18 bytes.

use serde::Serialize;

use super::Cursor;

/// 0x31 super-capacitor, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Supercap {
    pub system: u8,
    /// 0.1 V.
    pub voltage: u16,
    /// 0.1 A, offset -3000 A.
    pub current: u16,
    /// 0.001 V each.
    pub cells: Vec<u16>,
    /// C, offset -40.
    pub temps: Vec<u8>,
}

fn count(n: u16) -> usize {
    if n >= 0xFFFE {
        0
    } else {
        usize::from(n)
    }
}

impl Supercap {
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Option<Self> {
        let system = c.u8()?;
        let voltage = c.u16()?;
        let current = c.u16()?;
        let m = count(c.u16()?);
        let cells = (0..m).map(|_| c.u16()).collect::<Option<Vec<_>>>()?;
        let n = count(c.u16()?);
        let temps = c.bytes(n)?.to_vec();
        Some(Supercap {
            system,
            voltage,
            current,
            cells,
            temps,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.system);
        out.extend_from_slice(&self.voltage.to_be_bytes());
        out.extend_from_slice(&self.current.to_be_bytes());
        let m = self.cells.len().min(0xFFFD);
        out.extend_from_slice(&(m as u16).to_be_bytes());
        for v in self.cells.iter().take(m) {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let n = self.temps.len().min(0xFFFD);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(self.temps.get(..n).unwrap_or(&[]));
    }
}

/// One extreme: (system, cell or probe code, raw value).
pub type Extreme<T> = (u8, u16, T);

/// 0x32 super-capacitor extremes, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupercapExtremes {
    /// Highest cell voltage, 0.001 V.
    pub max_v: Extreme<u16>,
    /// Lowest cell voltage, 0.001 V.
    pub min_v: Extreme<u16>,
    /// Highest temperature, C offset -40.
    pub max_t: Extreme<u8>,
    /// Lowest temperature, C offset -40.
    pub min_t: Extreme<u8>,
}

impl SupercapExtremes {
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Option<Self> {
        Some(SupercapExtremes {
            max_v: (c.u8()?, c.u16()?, c.u16()?),
            min_v: (c.u8()?, c.u16()?, c.u16()?),
            max_t: (c.u8()?, c.u16()?, c.u8()?),
            min_t: (c.u8()?, c.u16()?, c.u8()?),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for (s, code, v) in [self.max_v, self.min_v] {
            out.push(s);
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        for (s, code, v) in [self.max_t, self.min_t] {
            out.push(s);
            out.extend_from_slice(&code.to_be_bytes());
            out.push(v);
        }
    }
}
