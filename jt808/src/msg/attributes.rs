//! 0x0107 terminal attributes, the answer to 0x8107 (JT/T 808-2013 §8.14, 2019 §8.14).
//!
//! ```text
//! 2013: type WORD | maker BYTE[5] | model BYTE[20] | term id BYTE[7]  | ICCID BCD[10]
//!       | hw len BYTE | hw version STRING | fw len BYTE | fw version STRING | GNSS BYTE | comm BYTE
//! 2019: type WORD | maker BYTE[5] | model BYTE[30] | term id BYTE[30] | ICCID BCD[10] | (same)
//! ```
//!
//! The message did not exist in 2011. A body that does not parse to its end with the
//! header's edition is tried with the other one (terminals that set bit 14 but keep the
//! 2013 widths, and the reverse); `layout` says which was used.
//!
//! Terminal type bits: 0 passenger, 1 dangerous goods, 2 freight, 3 taxi, 6 hard-disk video,
//! 7 split (0 integrated), 2019 bit 8 trailer. GNSS bits: 0 GPS, 1 BDS, 2 GLONASS, 3 Galileo.
//! Communication bits: 0 GPRS, 1 CDMA, 2 TD-SCDMA, 3 WCDMA, 4 CDMA2000, 5 TD-LTE, 7 other.

use serde::Serialize;

use super::fields::{len_text, put_bcd_digits, put_fixed, put_len_text};
use super::Reader;
use crate::{BodyError, Version};

const ID: u16 = 0x0107;

/// 0x0107 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attributes {
    /// Terminal type bits (see the module doc).
    pub terminal_type: u16,
    /// Manufacturer id, BYTE[5].
    pub manufacturer: String,
    /// Terminal model, BYTE[20] (2013) or BYTE[30] (2019).
    pub model: String,
    /// Terminal id, BYTE[7] (2013) or BYTE[30] (2019).
    pub terminal_id: String,
    /// SIM ICCID: the 20 digits of its BCD[10].
    pub iccid: String,
    /// Hardware version.
    pub hardware_version: String,
    /// Firmware version.
    pub firmware_version: String,
    /// GNSS module bits.
    pub gnss: u8,
    /// Communication module bits.
    pub network: u8,
    /// The layout the body was read with (2013 or 2019 widths).
    pub layout: Version,
}

fn widths(v: Version) -> (usize, usize) {
    match v {
        Version::V2019 => (30, 30),
        Version::V2011 | Version::V2013 => (20, 7),
    }
}

fn decode_as(body: &[u8], layout: Version) -> Result<Attributes, BodyError> {
    let (wm, wt) = widths(layout);
    let mut r = Reader::new(ID, body);
    let a = Attributes {
        terminal_type: r.u16()?,
        manufacturer: codecs::text::decode_fixed(r.take(5)?),
        model: codecs::text::decode_fixed(r.take(wm)?),
        terminal_id: codecs::text::decode_fixed(r.take(wt)?),
        iccid: hex::encode(r.take(10)?),
        hardware_version: len_text(&mut r)?,
        firmware_version: len_text(&mut r)?,
        gnss: r.u8()?,
        network: r.u8()?,
        layout,
    };
    if r.remaining() != 0 {
        return Err(BodyError::Invalid {
            msg_id: ID,
            field: "length",
            len: body.len(),
        });
    }
    Ok(a)
}

impl Attributes {
    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let (first, other) = match version {
            Version::V2019 => (Version::V2019, Version::V2013),
            Version::V2011 | Version::V2013 => (Version::V2013, Version::V2019),
        };
        decode_as(body, first).or_else(|e| decode_as(body, other).map_err(|_| e))
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let (wm, wt) = widths(version);
        out.extend_from_slice(&self.terminal_type.to_be_bytes());
        put_fixed(&self.manufacturer, 5, "manufacturer", ID, out)?;
        put_fixed(&self.model, wm, "model", ID, out)?;
        put_fixed(&self.terminal_id, wt, "terminal_id", ID, out)?;
        put_bcd_digits(&self.iccid, 10, "iccid", ID, out)?;
        put_len_text(&self.hardware_version, "hardware_version", ID, out)?;
        put_len_text(&self.firmware_version, "firmware_version", ID, out)?;
        out.push(self.gnss);
        out.push(self.network);
        Ok(())
    }
}
