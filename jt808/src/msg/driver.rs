//! 0x0702 driver identity report (JT/T 808-2011 §8.49, 2013 §8.50, 2019 §8.50).
//!
//! ```text
//! 2011: name len BYTE | name | ID card BYTE[20] | qualification cert BYTE[40]
//!       | issuer len BYTE | issuer
//! 2013: status BYTE (1 card inserted, 2 card removed) | time BCD[6]
//!       [status 1: IC result BYTE (0 ok, 1 auth failed, 2 card locked, 3 card pulled, 4 checksum)
//!        [result 0: name len BYTE | name | qualification cert BYTE[20] | issuer len BYTE
//!                   | issuer | expiry BCD[4] YYYYMMDD]]
//!       (read whenever bytes follow, whatever the status: some terminals fill them on removal)
//! 2019: the 2013 layout, then ID card BYTE[20] after the expiry
//! ```
//!
//! The header cannot tell 2011 from 2013, so a non-2019 body is read with the 2013 layout
//! when it parses to its end with a status of 1 or 2 and a BCD time, else with the 2011
//! layout when that parses to its end (notes: "detect by length"). A 2013-header body
//! with 20 more bytes after the expiry is the 2019 layout (bit 14 not set). Bytes after
//! the last field that no layout explains are kept in `tail`.

use serde::Serialize;

use super::fields::{array, len_text, put_fixed, put_len_text};
use super::{as_hex, Reader};
use crate::{BodyError, Version};

const ID: u16 = 0x0702;

/// 0x0702 body. Fields a layout or status does not carry are `None`/empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverIdentity {
    /// The layout the body was read with.
    pub layout: Version,
    /// 2013/2019: 1 IC card inserted (driver on duty), 2 card removed (off duty).
    pub status: Option<u8>,
    /// 2013/2019: card insert/remove time, BCD `YYMMDDhhmmss` (GMT+8).
    #[serde(serialize_with = "opt_hex")]
    pub time: Option<[u8; 6]>,
    /// 2013/2019 with status 1: IC card read result (0 ok).
    pub card_result: Option<u8>,
    /// Driver name.
    pub name: String,
    /// Qualification certificate number (BYTE[20] in 2013/2019, BYTE[40] in 2011).
    pub certificate: String,
    /// Issuing organisation.
    pub issuer: String,
    /// 2013/2019: certificate expiry, BCD `YYYYMMDD`.
    #[serde(serialize_with = "opt_hex")]
    pub expiry: Option<[u8; 4]>,
    /// ID card number (2011 and 2019).
    pub id_card: Option<String>,
    /// Bytes after the last field.
    #[serde(serialize_with = "as_hex")]
    pub tail: Vec<u8>,
}

fn opt_hex<S: serde::Serializer, const N: usize>(
    v: &Option<[u8; N]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

fn is_bcd(b: &[u8]) -> bool {
    b.iter().all(|x| x >> 4 <= 9 && x & 0x0f <= 9)
}

/// The 2013 layout (2019 when `v2019`), then whatever follows.
fn decode_2013(body: &[u8], v2019: bool) -> Result<(DriverIdentity, usize), BodyError> {
    let mut r = Reader::new(ID, body);
    let status = r.u8()?;
    let time: [u8; 6] = array(&mut r)?;
    let mut d = DriverIdentity {
        layout: if v2019 {
            Version::V2019
        } else {
            Version::V2013
        },
        status: Some(status),
        time: Some(time),
        card_result: None,
        name: String::new(),
        certificate: String::new(),
        issuer: String::new(),
        expiry: None,
        id_card: None,
        tail: Vec::new(),
    };
    // The standard fills the rest only for status 1; some terminals (and yezhihao's test
    // vectors) fill it for status 2 as well, so it is read whenever bytes follow.
    if r.remaining() > 0 {
        let result = r.u8()?;
        d.card_result = Some(result);
        if result == 0 && r.remaining() > 0 {
            d.name = len_text(&mut r)?;
            d.certificate = codecs::text::decode_fixed(r.take(20)?);
            d.issuer = len_text(&mut r)?;
            d.expiry = Some(array(&mut r)?);
            if v2019 && r.remaining() >= 20 {
                d.id_card = Some(codecs::text::decode_fixed(r.take(20)?));
            }
        }
    }
    Ok((d, r.remaining()))
}

fn decode_2011(body: &[u8]) -> Result<DriverIdentity, BodyError> {
    let mut r = Reader::new(ID, body);
    let name = len_text(&mut r)?;
    let id_card = codecs::text::decode_fixed(r.take(20)?);
    let certificate = codecs::text::decode_fixed(r.take(40)?);
    let issuer = len_text(&mut r)?;
    if r.remaining() != 0 {
        return Err(BodyError::Invalid {
            msg_id: ID,
            field: "length",
            len: body.len(),
        });
    }
    Ok(DriverIdentity {
        layout: Version::V2011,
        status: None,
        time: None,
        card_result: None,
        name,
        certificate,
        issuer,
        expiry: None,
        id_card: Some(id_card),
        tail: Vec::new(),
    })
}

impl DriverIdentity {
    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let with_tail = |(mut d, left): (DriverIdentity, usize)| {
            d.tail = body
                .get(body.len().saturating_sub(left)..)
                .unwrap_or(&[])
                .to_vec();
            d
        };
        if version == Version::V2019 {
            return decode_2013(body, true).map(with_tail);
        }
        let plausible = |d: &DriverIdentity| {
            matches!(d.status, Some(1 | 2)) && d.time.is_some_and(|t| is_bcd(&t))
        };
        match decode_2013(body, false) {
            Ok((d, 0)) if plausible(&d) => Ok(d),
            first => {
                if let Ok(d) = decode_2011(body) {
                    return Ok(d);
                }
                let (d, left) = first?;
                // A 2019 body behind a header without bit 14.
                if left == 20 && d.expiry.is_some() {
                    return decode_2013(body, true).map(with_tail);
                }
                Ok(with_tail((d, left)))
            }
        }
    }

    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let start = out.len();
        self.encode_layout(version, out)?;
        // Before 2019 the layout is guessed from the body's shape: refuse a body that would
        // read back in another layout than the one asked for (found by fuzzing).
        if version != Version::V2019 {
            let body = out.get(start..).unwrap_or(&[]);
            let (len, back) = (
                body.len(),
                DriverIdentity::decode(body, version).map(|d| d.layout),
            );
            if back != Ok(version) {
                out.truncate(start);
                return Err(BodyError::Invalid {
                    msg_id: ID,
                    field: "layout",
                    len,
                });
            }
        }
        Ok(())
    }

    fn encode_layout(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        if version == Version::V2011 {
            put_len_text(&self.name, "name", ID, out)?;
            let id_card = self.id_card.as_deref().unwrap_or("");
            put_fixed(id_card, 20, "id_card", ID, out)?;
            put_fixed(&self.certificate, 40, "certificate", ID, out)?;
            put_len_text(&self.issuer, "issuer", ID, out)?;
        } else {
            out.push(self.status.unwrap_or(1));
            out.extend_from_slice(&self.time.unwrap_or([0; 6]));
            if let Some(result) = self.card_result {
                out.push(result);
                // The driver fields are present when the expiry is.
                if result == 0 && self.expiry.is_some() {
                    put_len_text(&self.name, "name", ID, out)?;
                    put_fixed(&self.certificate, 20, "certificate", ID, out)?;
                    put_len_text(&self.issuer, "issuer", ID, out)?;
                    out.extend_from_slice(&self.expiry.unwrap_or([0; 4]));
                    // A 2019 terminal that left the ID card out keeps it out.
                    if let (Version::V2019, Some(id_card)) = (version, &self.id_card) {
                        put_fixed(id_card, 20, "id_card", ID, out)?;
                    }
                }
            }
        }
        out.extend_from_slice(&self.tail);
        Ok(())
    }
}
