//! 2016 0x03 fuel cell: voltage WORD 0.1 V, current WORD 0.1 A, H2 consumption WORD
//! 0.01 kg/100 km, probe count WORD + one temperature BYTE per probe (-40 C), highest H2
//! system temperature WORD (0.1 C, -40 C) with its probe code, highest H2 concentration
//! WORD (mg/kg) with its sensor code, highest H2 pressure WORD (0.1 MPa) with its sensor
//! code, high-voltage DC/DC state BYTE (1 working, 2 off). Source: protocol notes table;
//! `docs/standard/2016.md` table 11. (The 2025 0x03 "fuel-cell engine and H2 system" and
//! 0x30 stacks are not decoded yet: they stop the walk and stay in the report's tail.)

use serde::Serialize;

use super::Cursor;

/// 2016 fuel-cell data, raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FuelCell {
    /// 0.1 V.
    pub voltage: u16,
    /// 0.1 A.
    pub current: u16,
    /// 0.01 kg/100 km.
    pub consumption: u16,
    /// Probe temperatures, C offset -40.
    pub probe_temps: Vec<u8>,
    /// 0.1 C, offset -40.
    pub h2_max_temp: u16,
    pub h2_max_temp_probe: u8,
    /// mg/kg.
    pub h2_max_conc: u16,
    pub h2_max_conc_sensor: u8,
    /// 0.1 MPa.
    pub h2_max_pressure: u16,
    pub h2_max_pressure_sensor: u8,
    /// 1 working, 2 off.
    pub dcdc: u8,
}

impl FuelCell {
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Option<Self> {
        let voltage = c.u16()?;
        let current = c.u16()?;
        let consumption = c.u16()?;
        let n = c.u16()?;
        // 0xFFFE/0xFFFF probe counts carry no temperatures (sentinel, not a count).
        let n = if n >= 0xFFFE { 0 } else { usize::from(n) };
        let probe_temps = c.bytes(n)?.to_vec();
        Some(FuelCell {
            voltage,
            current,
            consumption,
            probe_temps,
            h2_max_temp: c.u16()?,
            h2_max_temp_probe: c.u8()?,
            h2_max_conc: c.u16()?,
            h2_max_conc_sensor: c.u8()?,
            h2_max_pressure: c.u16()?,
            h2_max_pressure_sensor: c.u8()?,
            dcdc: c.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.voltage.to_be_bytes());
        out.extend_from_slice(&self.current.to_be_bytes());
        out.extend_from_slice(&self.consumption.to_be_bytes());
        let n = self.probe_temps.len().min(0xFFFD);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(self.probe_temps.get(..n).unwrap_or(&[]));
        out.extend_from_slice(&self.h2_max_temp.to_be_bytes());
        out.push(self.h2_max_temp_probe);
        out.extend_from_slice(&self.h2_max_conc.to_be_bytes());
        out.push(self.h2_max_conc_sensor);
        out.extend_from_slice(&self.h2_max_pressure.to_be_bytes());
        out.push(self.h2_max_pressure_sensor);
        out.push(self.dcdc);
    }
}

/// 2025 0x03 fuel-cell engine and on-board H2 system (12 bytes; 2025 table 17): highest
/// H2-system temperature WORD (1 C, -40 C) + probe code, highest H2 concentration WORD
/// (0.0001 % vol) + sensor code, highest H2 pressure WORD (0.1 MPa) + sensor code, HV
/// DC/DC state, remaining H2 %, DC/DC controller temperature (-40 C). Raw wire integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct H2System {
    pub max_temp: u16,
    pub max_temp_probe: u8,
    pub max_conc: u16,
    pub max_conc_sensor: u8,
    pub max_pressure: u16,
    pub max_pressure_sensor: u8,
    pub dcdc: u8,
    pub remaining_pct: u8,
    pub dcdc_temp: u8,
}

impl H2System {
    pub(crate) fn decode(c: &mut Cursor<'_>) -> Option<Self> {
        Some(H2System {
            max_temp: c.u16()?,
            max_temp_probe: c.u8()?,
            max_conc: c.u16()?,
            max_conc_sensor: c.u8()?,
            max_pressure: c.u16()?,
            max_pressure_sensor: c.u8()?,
            dcdc: c.u8()?,
            remaining_pct: c.u8()?,
            dcdc_temp: c.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.max_temp.to_be_bytes());
        out.push(self.max_temp_probe);
        out.extend_from_slice(&self.max_conc.to_be_bytes());
        out.push(self.max_conc_sensor);
        out.extend_from_slice(&self.max_pressure.to_be_bytes());
        out.extend_from_slice(&[
            self.max_pressure_sensor,
            self.dcdc,
            self.remaining_pct,
            self.dcdc_temp,
        ]);
    }
}

/// One 2025 fuel-cell stack (0x30; 2025 tables 18-19): no, voltage WORD 0.1 V, current WORD
/// 0.1 A, H2 and air inlet pressure WORD (0.1 kPa, offset -100 kPa), air inlet temperature
/// BYTE (-40 C), coolant outlet probe count WORD + BYTE temperatures (-40 C).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stack {
    pub no: u8,
    pub voltage: u16,
    pub current: u16,
    pub h2_inlet_pressure: u16,
    pub air_inlet_pressure: u16,
    pub air_inlet_temp: u8,
    pub coolant_temps: Vec<u8>,
}

pub(crate) fn decode_stacks(c: &mut Cursor<'_>) -> Option<Vec<Stack>> {
    let n = c.u8()?;
    let n = if n >= 0xFE { 0 } else { n };
    (0..n)
        .map(|_| {
            let no = c.u8()?;
            let voltage = c.u16()?;
            let current = c.u16()?;
            let h2_inlet_pressure = c.u16()?;
            let air_inlet_pressure = c.u16()?;
            let air_inlet_temp = c.u8()?;
            let k = c.u16()?;
            let k = if k >= 0xFFFE { 0 } else { usize::from(k) };
            Some(Stack {
                no,
                voltage,
                current,
                h2_inlet_pressure,
                air_inlet_pressure,
                air_inlet_temp,
                coolant_temps: c.bytes(k)?.to_vec(),
            })
        })
        .collect()
}

pub(crate) fn encode_stacks(stacks: &[Stack], out: &mut Vec<u8>) {
    let n = stacks.len().min(0xFD);
    out.push(n as u8);
    for s in stacks.iter().take(n) {
        out.push(s.no);
        for w in [
            s.voltage,
            s.current,
            s.h2_inlet_pressure,
            s.air_inlet_pressure,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.push(s.air_inlet_temp);
        let k = s.coolant_temps.len().min(0xFFFD);
        out.extend_from_slice(&(k as u16).to_be_bytes());
        out.extend_from_slice(s.coolant_temps.get(..k).unwrap_or(&[]));
    }
}
