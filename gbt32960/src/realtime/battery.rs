//! Battery (RESS) cell voltages and temperatures.
//!
//! Voltages, 2016 type 0x08 (appendix B): pack count BYTE; per pack: no BYTE, voltage WORD
//! 0.1 V, current WORD 0.1 A offset -1000 A, total cell count WORD, start cell of this frame
//! WORD, cells in this frame BYTE (<= 200: packs above 200 cells are split over frames, the
//! start cell says where this part goes), then WORD cell voltages 0.001 V.
//! 2025 type 0x07 "minimum parallel unit voltages": pack no, voltage, current (-3000 A),
//! unit count WORD, WORD unit voltages; no split fields.
//! Temperatures, 2016 0x09 / 2025 0x08: pack count; per pack: no BYTE, probe count WORD,
//! BYTE temperatures (-40 C). Sources: protocol notes table; `docs/standard/2016.md`
//! tables B.6-B.9, `docs/standard/2025.md`.

use serde::Serialize;

use super::Cursor;
use crate::Edition;

/// One pack's cell voltages, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackVoltages {
    pub no: u8,
    /// 0.1 V.
    pub voltage: u16,
    /// 0.1 A, offset -1000 A (2016) / -3000 A (2025).
    pub current: u16,
    /// 2016: (total cell count, start cell of this frame, 1-based).
    pub split: Option<(u16, u16)>,
    /// 0.001 V each.
    pub cells: Vec<u16>,
}

/// One pack's probe temperatures, raw wire integers (C, offset -40).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackTemperatures {
    pub no: u8,
    pub temps: Vec<u8>,
}

fn count(n: u8) -> u8 {
    if n >= 0xFE {
        0
    } else {
        n
    }
}

pub(crate) fn decode_voltages(c: &mut Cursor<'_>, ed: Edition) -> Option<Vec<PackVoltages>> {
    let n = count(c.u8()?);
    (0..n)
        .map(|_| {
            let no = c.u8()?;
            let voltage = c.u16()?;
            let current = c.u16()?;
            let (split, k) = if ed == Edition::V2016 {
                let total = c.u16()?;
                let start = c.u16()?;
                (Some((total, start)), usize::from(count(c.u8()?)))
            } else {
                let k = c.u16()?;
                (None, if k >= 0xFFFE { 0 } else { usize::from(k) })
            };
            // The k words at once (one bounds check, a loop the compiler unrolls).
            let cells = c
                .bytes(k.checked_mul(2)?)?
                .chunks_exact(2)
                .map(|w| match w {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => 0,
                })
                .collect();
            Some(PackVoltages {
                no,
                voltage,
                current,
                split,
                cells,
            })
        })
        .collect()
}

pub(crate) fn encode_voltages(packs: &[PackVoltages], ed: Edition, out: &mut Vec<u8>) {
    let n = packs.len().min(0xFD);
    out.push(n as u8);
    for p in packs.iter().take(n) {
        out.push(p.no);
        out.extend_from_slice(&p.voltage.to_be_bytes());
        out.extend_from_slice(&p.current.to_be_bytes());
        let k = if ed == Edition::V2016 {
            let (total, start) = p.split.unwrap_or((p.cells.len() as u16, 1));
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&start.to_be_bytes());
            let k = p.cells.len().min(0xFD);
            out.push(k as u8);
            k
        } else {
            let k = p.cells.len().min(0xFFFD);
            out.extend_from_slice(&(k as u16).to_be_bytes());
            k
        };
        for v in p.cells.iter().take(k) {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

pub(crate) fn decode_temperatures(c: &mut Cursor<'_>) -> Option<Vec<PackTemperatures>> {
    let n = count(c.u8()?);
    (0..n)
        .map(|_| {
            let no = c.u8()?;
            let k = c.u16()?;
            let k = if k >= 0xFFFE { 0 } else { usize::from(k) };
            Some(PackTemperatures {
                no,
                temps: c.bytes(k)?.to_vec(),
            })
        })
        .collect()
}

pub(crate) fn encode_temperatures(packs: &[PackTemperatures], out: &mut Vec<u8>) {
    let n = packs.len().min(0xFD);
    out.push(n as u8);
    for p in packs.iter().take(n) {
        out.push(p.no);
        let k = p.temps.len().min(0xFFFD);
        out.extend_from_slice(&(k as u16).to_be_bytes());
        out.extend_from_slice(p.temps.get(..k).unwrap_or(&[]));
    }
}
