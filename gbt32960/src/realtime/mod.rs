//! Real-time and reissue data (commands 0x02/0x03): the info units of both editions.
//!
//! Why raw integers: every field is kept as the integer the vehicle sent, and scaled into
//! physical units only through accessor helpers ([`scaled_u8`], [`scaled_u16`],
//! [`scaled_u32`]). That way a sentinel (0xFE abnormal / 0xFF invalid and their WORD and
//! DWORD forms, GB/T 32960.3-2016 §7.2.3 and -2025 §7.2.3) survives a decode/encode round
//! trip byte for byte, and the normalizer turns it into JSON null.
//!
//! Parsing never fails past the collection time: an info type this crate does not know
//! (reserved ids, 2016 0x0A-0x7F, 2025 0x09-0x2F and 0x33-0x7F) or a unit cut short stops
//! the walk; the units decoded before it stay, and the rest of the body is kept as a
//! [`Tail`] so it can be re-encoded and published raw.
//!
//! Sources: `sunsky74/gbt32960-simulator:docs/standard/2016.md` (tables 7-19, B.4) and
//! `docs/standard/2025.md`; `/work/shared/protocol-notes/gbt32960.md`.

pub mod alarm;
pub mod battery;
pub mod custom;
pub mod engine;
pub mod extremes;
pub mod fuel_cell;
pub mod location;
pub mod motor;
pub mod signature;
pub mod supercap;
pub mod vehicle;

use serde::Serialize;

use crate::{BodyError, Edition};

pub use alarm::Alarm;
pub use battery::{PackTemperatures, PackVoltages};
pub use custom::Custom;
pub use engine::Engine;
pub use extremes::Extremes;
pub use fuel_cell::{FuelCell, H2System, Stack};
pub use location::Position;
pub use motor::Motor;
pub use signature::Signature;
pub use supercap::{Supercap, SupercapExtremes};
pub use vehicle::Vehicle;

/// The command byte used in errors of this module (real-time; reissue has the same body).
const CMD: u8 = 0x02;

/// Physical value of a BYTE with 0xFE abnormal / 0xFF invalid, `None` for a sentinel.
pub fn scaled_u8(raw: u8, scale: f64, offset: f64) -> Option<f64> {
    (raw < 0xFE).then(|| f64::from(raw) * scale + offset)
}

/// Physical value of a WORD with 0xFFFE abnormal / 0xFFFF invalid, `None` for a sentinel.
pub fn scaled_u16(raw: u16, scale: f64, offset: f64) -> Option<f64> {
    (raw < 0xFFFE).then(|| f64::from(raw) * scale + offset)
}

/// Physical value of a DWORD with 0xFFFFFFFE / 0xFFFFFFFF sentinels, `None` for a sentinel.
pub fn scaled_u32(raw: u32, scale: f64, offset: f64) -> Option<f64> {
    (raw < 0xFFFF_FFFE).then(|| f64::from(raw) * scale + offset)
}

/// A bounds-checked big-endian reader over a body; every read returns `None` past the end.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).and_then(|b| b.first().copied())
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes(b.try_into().ok()?))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }
}

/// One decoded info unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Unit {
    /// 0x01 whole-vehicle data.
    Vehicle(Vehicle),
    /// 0x02 drive motors.
    Motors { motors: Vec<Motor> },
    /// 2016 0x03 fuel cell.
    FuelCell(FuelCell),
    /// 0x04 engine.
    Engine(Engine),
    /// 0x05 vehicle position.
    Location(Position),
    /// 2016 0x06 extreme values.
    Extremes(Extremes),
    /// 2016 0x07 / 2025 0x06 alarm data.
    Alarm(Alarm),
    /// 2016 0x08 RESS voltages / 2025 0x07 minimum parallel unit voltages.
    Voltages { packs: Vec<PackVoltages> },
    /// 2016 0x09 / 2025 0x08 RESS temperatures.
    Temperatures { packs: Vec<PackTemperatures> },
    /// 2025 0x03 fuel-cell engine and on-board H2 system.
    H2System(H2System),
    /// 2025 0x30 fuel-cell stacks.
    Stacks { stacks: Vec<Stack> },
    /// 2025 0x31 super-capacitor.
    Supercap(Supercap),
    /// 2025 0x32 super-capacitor extremes.
    SupercapExtremes(SupercapExtremes),
    /// 0x80-0xFE user-defined unit: WORD length + bytes.
    Custom(Custom),
}

/// The undecoded rest of a body: from an unknown info type or a unit cut short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tail {
    /// The info type byte that stopped the walk.
    pub type_id: u8,
    /// `true` when the type was known but its unit ran past the end of the body;
    /// `false` for a reserved/unknown type.
    pub truncated: bool,
    /// The bytes from the type byte to the end of the body (a 2025 signature after an
    /// unknown unit cannot be located, so it stays in here too).
    #[serde(serialize_with = "ser_hex")]
    pub bytes: Vec<u8>,
}

pub(crate) fn ser_hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// The body of a 0x02 real-time or 0x03 reissue frame: collection time, info units and,
/// in 2025, the trailing signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Collection time as sent (Beijing time by default).
    pub time: codecs::time::LocalTime,
    /// The info units in wire order.
    pub units: Vec<Unit>,
    /// The rest of the body when the walk stopped early (unknown type, truncated unit).
    pub tail: Option<Tail>,
    /// 2025: the vehicle signature (type 0xFF) that ends the body.
    pub signature: Option<Signature>,
}

impl Report {
    /// Parses a real-time/reissue body of the given edition.
    ///
    /// Fails only when the 6-byte collection time is missing; everything after it decodes
    /// as far as it can (see the module docs).
    pub fn decode(data: &[u8], edition: Edition) -> Result<Report, BodyError> {
        let mut c = Cursor::new(data);
        let t = c.bytes(6).ok_or(BodyError::TooShort {
            command: CMD,
            len: data.len(),
            need: 6,
        })?;
        let time = match t {
            [year, month, day, hour, minute, second] => codecs::time::LocalTime {
                year: *year,
                month: *month,
                day: *day,
                hour: *hour,
                minute: *minute,
                second: *second,
            },
            _ => {
                return Err(BodyError::TooShort {
                    command: CMD,
                    len: data.len(),
                    need: 6,
                })
            }
        };
        let mut report = Report {
            time,
            // Room for every 2016 info type and a custom unit: one allocation, no regrowth
            // (a body of all types grew the list three times).
            units: Vec::with_capacity(10),
            tail: None,
            signature: None,
        };
        while let Some(type_id) = c.rest().first().copied() {
            let mut unit_c = c.clone();
            let _ = unit_c.u8();
            // 2025 §7.2.3: the signature is the last item of the body.
            if edition == Edition::V2025 && type_id == 0xFF {
                if let Some(sig) = Signature::decode(&mut unit_c) {
                    if unit_c.rest().is_empty() {
                        report.signature = Some(sig);
                        return Ok(report);
                    }
                }
                report.tail = Some(Tail {
                    type_id,
                    truncated: true,
                    bytes: c.rest().to_vec(),
                });
                return Ok(report);
            }
            match decode_unit(type_id, &mut unit_c, edition) {
                Some(Some(unit)) => {
                    report.units.push(unit);
                    c = unit_c;
                }
                found => {
                    report.tail = Some(Tail {
                        type_id,
                        truncated: found.is_none(),
                        bytes: c.rest().to_vec(),
                    });
                    return Ok(report);
                }
            }
        }
        Ok(report)
    }

    /// Appends the body bytes of this report for the given edition.
    pub fn encode(&self, edition: Edition, out: &mut Vec<u8>) {
        let t = &self.time;
        out.extend_from_slice(&[t.year, t.month, t.day, t.hour, t.minute, t.second]);
        for u in &self.units {
            encode_unit(u, edition, out);
        }
        if let Some(tail) = &self.tail {
            out.extend_from_slice(&tail.bytes);
        }
        if let Some(sig) = &self.signature {
            sig.encode(out);
        }
    }

    /// The bytes a 2025 signature covers: from the first time byte to the byte before the
    /// 0xFF type (2025 §7.2.3.x), `None` without a signature.
    /// `data` is the body this report was decoded from.
    pub fn signed_bytes<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let sig = self.signature.as_ref()?;
        data.get(..data.len().checked_sub(sig.wire_len())?)
    }

    /// The location unit, if any.
    pub fn location(&self) -> Option<&Position> {
        self.units.iter().find_map(|u| match u {
            Unit::Location(p) => Some(p),
            _ => None,
        })
    }

    /// The (first) alarm unit, if any.
    pub fn alarm(&self) -> Option<&Alarm> {
        self.units.iter().find_map(|u| match u {
            Unit::Alarm(a) => Some(a),
            _ => None,
        })
    }

    /// The whole-vehicle unit, if any.
    pub fn vehicle(&self) -> Option<&Vehicle> {
        self.units.iter().find_map(|u| match u {
            Unit::Vehicle(v) => Some(v),
            _ => None,
        })
    }
}

/// `None`: unit known but cut short; `Some(None)`: unknown/reserved type.
fn decode_unit(type_id: u8, c: &mut Cursor<'_>, ed: Edition) -> Option<Option<Unit>> {
    let v16 = ed == Edition::V2016;
    let unit = match type_id {
        0x01 => Unit::Vehicle(Vehicle::decode(c, ed)?),
        0x02 => Unit::Motors {
            motors: motor::decode_list(c, ed)?,
        },
        0x03 if v16 => Unit::FuelCell(FuelCell::decode(c)?),
        0x03 => Unit::H2System(H2System::decode(c)?),
        0x30 if !v16 => Unit::Stacks {
            stacks: fuel_cell::decode_stacks(c)?,
        },
        0x31 if !v16 => Unit::Supercap(Supercap::decode(c)?),
        0x32 if !v16 => Unit::SupercapExtremes(SupercapExtremes::decode(c)?),
        0x04 => Unit::Engine(Engine::decode(c, ed)?),
        0x05 => Unit::Location(Position::decode(c, ed)?),
        0x06 if v16 => Unit::Extremes(Extremes::decode(c)?),
        0x07 if v16 => Unit::Alarm(Alarm::decode(c, ed)?),
        0x06 => Unit::Alarm(Alarm::decode(c, ed)?),
        0x08 if v16 => Unit::Voltages {
            packs: battery::decode_voltages(c, ed)?,
        },
        0x07 => Unit::Voltages {
            packs: battery::decode_voltages(c, ed)?,
        },
        0x09 if v16 => Unit::Temperatures {
            packs: battery::decode_temperatures(c)?,
        },
        0x08 => Unit::Temperatures {
            packs: battery::decode_temperatures(c)?,
        },
        0x80..=0xFE => Unit::Custom(Custom::decode(type_id, c)?),
        _ => return Some(None),
    };
    Some(Some(unit))
}

fn encode_unit(u: &Unit, ed: Edition, out: &mut Vec<u8>) {
    let v16 = ed == Edition::V2016;
    match u {
        Unit::Vehicle(v) => {
            out.push(0x01);
            v.encode(ed, out);
        }
        Unit::Motors { motors } => {
            out.push(0x02);
            motor::encode_list(motors, ed, out);
        }
        Unit::FuelCell(f) => {
            out.push(0x03);
            f.encode(out);
        }
        Unit::Engine(e) => {
            out.push(0x04);
            e.encode(ed, out);
        }
        Unit::Location(p) => {
            out.push(0x05);
            p.encode(ed, out);
        }
        Unit::Extremes(x) => {
            out.push(0x06);
            x.encode(out);
        }
        Unit::Alarm(a) => {
            out.push(if v16 { 0x07 } else { 0x06 });
            a.encode(ed, out);
        }
        Unit::Voltages { packs } => {
            out.push(if v16 { 0x08 } else { 0x07 });
            battery::encode_voltages(packs, ed, out);
        }
        Unit::Temperatures { packs } => {
            out.push(if v16 { 0x09 } else { 0x08 });
            battery::encode_temperatures(packs, out);
        }
        Unit::H2System(h) => {
            out.push(0x03);
            h.encode(out);
        }
        Unit::Stacks { stacks } => {
            out.push(0x30);
            fuel_cell::encode_stacks(stacks, out);
        }
        Unit::Supercap(s) => {
            out.push(0x31);
            s.encode(out);
        }
        Unit::SupercapExtremes(x) => {
            out.push(0x32);
            x.encode(out);
        }
        Unit::Custom(x) => x.encode(out),
    }
}
