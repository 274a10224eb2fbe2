//! 0x02 drive motors: a count, then one record per motor.
//!
//! 2016: 12 bytes per motor: no, state, controller temp (-40 C), rpm WORD (offset -20000),
//! torque WORD (0.1 N·m, offset -2000 N·m), motor temp (-40 C), controller input voltage
//! WORD (0.1 V), DC bus current WORD (0.1 A, offset -1000 A).
//! 2025: 10 bytes: rpm offset -32000, torque DWORD (0.1 N·m, offset -20000 N·m), no
//! voltage/current (source: protocol notes table; `docs/standard/2016.md` table 10,
//! `docs/standard/2025.md`).

use serde::Serialize;

use super::Cursor;
use crate::Edition;

/// One drive motor, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Motor {
    /// Motor number.
    pub no: u8,
    /// 1 consuming, 2 generating, 3 off, 4 ready.
    pub state: u8,
    /// C, offset -40.
    pub controller_temp: u8,
    /// rpm, offset -20000 (2016) / -32000 (2025).
    pub rpm: u16,
    /// 0.1 N·m, offset -2000 N·m (2016 WORD) / -20000 N·m (2025 DWORD).
    pub torque: u32,
    /// C, offset -40.
    pub motor_temp: u8,
    /// 2016 only: controller input voltage 0.1 V, DC bus current 0.1 A offset -1000 A.
    pub input: Option<(u16, u16)>,
}

impl Motor {
    /// rpm offset of the edition.
    pub fn rpm_offset(ed: Edition) -> f64 {
        match ed {
            Edition::V2016 => -20000.0,
            Edition::V2025 => -32000.0,
        }
    }
    /// torque offset in N·m of the edition.
    pub fn torque_offset(ed: Edition) -> f64 {
        match ed {
            Edition::V2016 => -2000.0,
            Edition::V2025 => -20000.0,
        }
    }

    fn decode(c: &mut Cursor<'_>, ed: Edition) -> Option<Self> {
        let v16 = ed == Edition::V2016;
        Some(Motor {
            no: c.u8()?,
            state: c.u8()?,
            controller_temp: c.u8()?,
            rpm: c.u16()?,
            torque: if v16 { u32::from(c.u16()?) } else { c.u32()? },
            motor_temp: c.u8()?,
            input: if v16 {
                Some((c.u16()?, c.u16()?))
            } else {
                None
            },
        })
    }

    fn encode(&self, ed: Edition, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.no, self.state, self.controller_temp]);
        out.extend_from_slice(&self.rpm.to_be_bytes());
        if ed == Edition::V2016 {
            let t = u16::try_from(self.torque).unwrap_or(u16::MAX);
            out.extend_from_slice(&t.to_be_bytes());
        } else {
            out.extend_from_slice(&self.torque.to_be_bytes());
        }
        out.push(self.motor_temp);
        if ed == Edition::V2016 {
            let (v, i) = self.input.unwrap_or((0xFFFF, 0xFFFF));
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&i.to_be_bytes());
        }
    }
}

pub(crate) fn decode_list(c: &mut Cursor<'_>, ed: Edition) -> Option<Vec<Motor>> {
    let n = c.u8()?;
    (0..n).map(|_| Motor::decode(c, ed)).collect()
}

pub(crate) fn encode_list(motors: &[Motor], ed: Edition, out: &mut Vec<u8>) {
    let n = motors.len().min(255);
    out.push(n as u8);
    for m in motors.iter().take(n) {
        m.encode(ed, out);
    }
}
