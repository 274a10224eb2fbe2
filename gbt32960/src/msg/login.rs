//! 0x01 vehicle login.
//!
//! 2016 (GB/T 32960.3-2016 7.1, table 6): time, login seq WORD, ICCID 20, RESS count n
//! (0..250), code length m (0..50), n*m code characters.
//! 2025 (GB/T 32960.3-2025 7.1, table 6): time, seq, ICCID 20, BMS count n (0..20), n bytes
//! of packs per BMS (0..50 each), then one 24-character GB/T 34014 pack code per pack.

use codecs::time::LocalTime;
use serde::Serialize;

use super::{id, put_fixed, put_time, Reader};
use crate::{BodyError, Edition};

const ICCID_LEN: usize = 20;
/// 2016 table 6: at most 250 RESS.
pub const MAX_RESS: usize = 250;
/// 2016 table 6: codes of at most 50 characters.
pub const MAX_CODE_LEN: usize = 50;
/// 2025 table 6: at most 20 battery management systems.
pub const MAX_BMS: usize = 20;
/// 2025 table 6: at most 50 packs per BMS.
pub const MAX_PACKS: usize = 50;
/// 2025 table 6: pack codes are 24 characters (GB/T 34014).
pub const PACK_CODE_LEN: usize = 24;

/// A vehicle login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    /// Collection time (Beijing time).
    pub time: LocalTime,
    /// Login sequence number, 1..=65531, daily cycle.
    pub seq: u16,
    /// SIM ICCID.
    pub iccid: String,
    /// The battery identification, per edition.
    #[serde(flatten)]
    pub batteries: LoginBatteries,
}

/// The edition-specific tail of a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LoginBatteries {
    /// 2016: rechargeable energy storage systems, codes of one common length.
    Ress2016 {
        ress_code_len: u8,
        ress_codes: Vec<String>,
    },
    /// 2025: for each BMS, its packs' 24-character codes.
    Packs2025 { pack_codes: Vec<Vec<String>> },
}

impl Login {
    pub(crate) fn decode(data: &[u8], edition: Edition) -> Result<Login, BodyError> {
        let c = id::VEHICLE_LOGIN;
        let mut r = Reader::new(data, c);
        let time = r.time()?;
        let seq = r.u16()?;
        let iccid = r.text(ICCID_LEN)?;
        let batteries = match edition {
            Edition::V2016 => {
                let n = r.u8()?;
                let m = r.u8()?;
                let mut codes = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    codes.push(r.text(usize::from(m))?);
                }
                LoginBatteries::Ress2016 {
                    ress_code_len: m,
                    ress_codes: codes,
                }
            }
            Edition::V2025 => {
                let n = r.u8()?;
                let counts = r.bytes(usize::from(n))?;
                let mut packs = Vec::with_capacity(counts.len());
                for &count in counts {
                    let mut codes = Vec::with_capacity(usize::from(count));
                    for _ in 0..count {
                        codes.push(r.text(PACK_CODE_LEN)?);
                    }
                    packs.push(codes);
                }
                LoginBatteries::Packs2025 { pack_codes: packs }
            }
        };
        r.finish()?;
        Ok(Login {
            time,
            seq,
            iccid,
            batteries,
        })
    }

    pub(crate) fn encode(&self, edition: Edition, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let c = id::VEHICLE_LOGIN;
        put_time(out, &self.time);
        out.extend_from_slice(&self.seq.to_be_bytes());
        put_fixed(out, &self.iccid, ICCID_LEN, 0, c, "iccid")?;
        let wrong = || BodyError::WrongEdition {
            command: c,
            edition: super::edition_year(edition),
        };
        match (&self.batteries, edition) {
            (
                LoginBatteries::Ress2016 {
                    ress_code_len,
                    ress_codes,
                },
                Edition::V2016,
            ) => {
                let m = usize::from(*ress_code_len);
                check(c, "ress count", ress_codes.len(), MAX_RESS)?;
                check(c, "ress code length", m, MAX_CODE_LEN)?;
                out.push(ress_codes.len() as u8);
                out.push(*ress_code_len);
                for code in ress_codes {
                    put_fixed(out, code, m, 0, c, "ress code")?;
                }
            }
            (LoginBatteries::Packs2025 { pack_codes }, Edition::V2025) => {
                check(c, "bms count", pack_codes.len(), MAX_BMS)?;
                out.push(pack_codes.len() as u8);
                for packs in pack_codes {
                    check(c, "packs per bms", packs.len(), MAX_PACKS)?;
                    out.push(packs.len() as u8);
                }
                for code in pack_codes.iter().flatten() {
                    put_fixed(out, code, PACK_CODE_LEN, 0, c, "pack code")?;
                }
            }
            _ => return Err(wrong()),
        }
        Ok(())
    }
}

fn check(command: u8, field: &'static str, value: usize, max: usize) -> Result<(), BodyError> {
    if value > max {
        return Err(BodyError::OutOfRange {
            command,
            field,
            value,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // SmallChi/JTNewEnergy src/JTNE.Protocol.Test/Package/JTNE_0x01_Package_DeviceTest.cs:
    // data unit of its 2016 login (time 19-01-22 23:55:56, seq 1, 3 codes of 4 chars).
    const LOGIN_2016_DATA: &str =
        "130116173738000131323334353637383939383736353433323130300304313233343435363739383730";

    #[test]
    fn login_2016_reads_ress_codes_of_the_declared_length() {
        let data = hex::decode(LOGIN_2016_DATA).unwrap();
        let l = Login::decode(&data, Edition::V2016).unwrap();
        assert_eq!(l.seq, 1);
        assert_eq!(l.iccid, "12345678998765432100");
        assert_eq!(
            l.batteries,
            LoginBatteries::Ress2016 {
                ress_code_len: 4,
                ress_codes: vec!["1234".into(), "4567".into(), "9870".into()]
            }
        );
        let mut out = Vec::new();
        l.encode(Edition::V2016, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn login_of_one_edition_is_refused_in_the_other() {
        let data = hex::decode(LOGIN_2016_DATA).unwrap();
        let l = Login::decode(&data, Edition::V2016).unwrap();
        assert!(matches!(
            l.encode(Edition::V2025, &mut Vec::new()),
            Err(BodyError::WrongEdition { command: 1, .. })
        ));
    }
}
