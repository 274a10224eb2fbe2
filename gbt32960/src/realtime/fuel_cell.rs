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
