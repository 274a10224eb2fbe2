//! 0x0100 terminal registration, 0x8100 registration response, 0x0102 authentication.
//!
//! Layouts (JT/T 808-2011 §8.5, JT/T 808-2013 §8.5/§8.6/§8.8, JT/T 808-2019 §8.5/§8.6/§8.8):
//!
//! ```text
//! 0x0100 2011: province WORD | city WORD | maker BYTE[5]  | model BYTE[8]  | term id BYTE[7]  | colour BYTE | plate STRING
//! 0x0100 2013: province WORD | city WORD | maker BYTE[5]  | model BYTE[20] | term id BYTE[7]  | colour BYTE | plate STRING
//! 0x0100 2019: province WORD | city WORD | maker BYTE[11] | model BYTE[30] | term id BYTE[30] | colour BYTE | plate STRING
//! 0x8100:      reply serial WORD | result BYTE | token STRING (only when result = 0)
//! 0x0102 2013: token STRING (the whole body)
//! 0x0102 2019: token length BYTE | token | IMEI BYTE[15] | software version BYTE[20]
//! ```
//!
//! The frame header cannot tell 2011 from 2013; a 0x0100 body shorter than the 2013 fixed
//! part (37 bytes) is read with the 2011 layout (notes: "detect by length").

/// 0x8100 registration results (JT/T 808-2019 §8.6).
pub mod result {
    /// Registered; the answer carries the authentication code.
    pub const OK: u8 = 0;
    /// The vehicle is already registered.
    pub const VEHICLE_REGISTERED: u8 = 1;
    /// No such vehicle in the database.
    pub const NO_SUCH_VEHICLE: u8 = 2;
    /// The terminal is already registered.
    pub const TERMINAL_REGISTERED: u8 = 3;
    /// No such terminal in the database.
    pub const NO_SUCH_TERMINAL: u8 = 4;
}

use serde::Serialize;

use super::Reader;
use crate::{BodyError, Version};

const REGISTER: u16 = 0x0100;
const AUTH: u16 = 0x0102;

/// Fixed part of the 2013 0x0100 body: 2+2+5+20+7+1.
const REGISTER_2013_FIXED: usize = 37;

/// 0x0100: a terminal registers its vehicle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Register {
    /// Province id (GB/T 2260 first two digits).
    pub province: u16,
    /// City or county id (GB/T 2260 last four digits).
    pub city: u16,
    /// Manufacturer id.
    pub manufacturer: String,
    /// Terminal model.
    pub model: String,
    /// Terminal id.
    pub terminal_id: String,
    /// Plate colour (JT/T 697.7; 0 when the vehicle is not plated).
    pub plate_color: u8,
    /// Plate, or VIN when `plate_color` is 0.
    pub plate: String,
    /// The body layout it was read with (2011 is only known from the body length).
    pub layout: Version,
}

fn widths(version: Version) -> (usize, usize, usize) {
    match version {
        Version::V2011 => (5, 8, 7),
        Version::V2013 => (5, 20, 7),
        Version::V2019 => (11, 30, 30),
    }
}

fn fixed(
    s: &str,
    width: usize,
    field: &'static str,
    msg_id: u16,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    codecs::text::encode_fixed(s, width, 0, out).map_err(|_| BodyError::Invalid {
        msg_id,
        field,
        len: s.len(),
    })
}

impl Register {
    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let layout = if version != Version::V2019 && body.len() < REGISTER_2013_FIXED {
            Version::V2011
        } else {
            version
        };
        let (wm, wmo, wt) = widths(layout);
        let mut r = Reader::new(REGISTER, body);
        Ok(Register {
            province: r.u16()?,
            city: r.u16()?,
            manufacturer: codecs::text::decode_fixed(r.take(wm)?),
            model: codecs::text::decode_fixed(r.take(wmo)?),
            terminal_id: codecs::text::decode_fixed(r.take(wt)?),
            plate_color: r.u8()?,
            plate: codecs::text::decode_fixed(r.rest()),
            layout,
        })
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let (wm, wmo, wt) = widths(version);
        out.extend_from_slice(&self.province.to_be_bytes());
        out.extend_from_slice(&self.city.to_be_bytes());
        fixed(&self.manufacturer, wm, "manufacturer", REGISTER, out)?;
        fixed(&self.model, wmo, "model", REGISTER, out)?;
        fixed(&self.terminal_id, wt, "terminal_id", REGISTER, out)?;
        out.push(self.plate_color);
        let plate = codecs::text::encode(&self.plate);
        // A 2011 body as long as the 2013 fixed part would read back as 2013 (the header
        // cannot tell them apart; decode goes by length): refuse it (found by fuzzing).
        let fixed_2011 = 2 + 2 + wm + wmo + wt + 1;
        if version == Version::V2011 && fixed_2011 + plate.len() >= REGISTER_2013_FIXED {
            return Err(BodyError::Invalid {
                msg_id: REGISTER,
                field: "plate",
                len: plate.len(),
            });
        }
        out.extend_from_slice(&plate);
        Ok(())
    }
}

/// 0x8100: the platform's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterResponse {
    /// Serial of the 0x0100 answered.
    pub reply_serial: u16,
    /// 0 ok, 1 vehicle registered, 2 no such vehicle, 3 terminal registered, 4 no such terminal.
    pub result: u8,
    /// Authentication token (present only when `result` is 0).
    pub token: Option<String>,
}

impl RegisterResponse {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8100, body);
        let reply_serial = r.u16()?;
        let result = r.u8()?;
        let token = (result == 0).then(|| codecs::text::decode(r.rest()));
        Ok(RegisterResponse {
            reply_serial,
            result,
            token,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reply_serial.to_be_bytes());
        out.push(self.result);
        if self.result == 0 {
            if let Some(t) = &self.token {
                out.extend_from_slice(&codecs::text::encode(t));
            }
        }
    }
}

/// 0x0102: a terminal authenticates with the token of its registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authenticate {
    /// Authentication token.
    pub token: String,
    /// IMEI (2019 only).
    pub imei: Option<String>,
    /// Software version (2019 only).
    pub software_version: Option<String>,
}

impl Authenticate {
    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let mut r = Reader::new(AUTH, body);
        if version == Version::V2019 {
            let n = usize::from(r.u8()?);
            let token = codecs::text::decode(r.take(n)?);
            Ok(Authenticate {
                token,
                imei: Some(codecs::text::decode_fixed(r.take(15)?)),
                software_version: Some(codecs::text::decode_fixed(r.take(20)?)),
            })
        } else {
            Ok(Authenticate {
                token: codecs::text::decode(r.rest()),
                imei: None,
                software_version: None,
            })
        }
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let token = codecs::text::encode(&self.token);
        if version == Version::V2019 {
            let n = u8::try_from(token.len()).map_err(|_| BodyError::Invalid {
                msg_id: AUTH,
                field: "token",
                len: token.len(),
            })?;
            out.push(n);
            out.extend_from_slice(&token);
            fixed(self.imei.as_deref().unwrap_or(""), 15, "imei", AUTH, out)?;
            let sv = self.software_version.as_deref().unwrap_or("");
            fixed(sv, 20, "software_version", AUTH, out)?;
        } else {
            out.extend_from_slice(&token);
        }
        Ok(())
    }
}
