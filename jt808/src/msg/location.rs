//! 0x0200 location report: the basic information and the additional-item list.
//!
//! Layout (JT/T 808-2013 §8.18 table 23, unchanged in 2019):
//!
//! ```text
//! alarm DWORD | status DWORD | lat DWORD (1e-6 deg) | lon DWORD (1e-6 deg) | altitude WORD (m)
//! | speed WORD (1/10 km/h) | heading WORD (deg) | time BCD[6] YYMMDDhhmmss (GMT+8)
//! | items: id BYTE | len BYTE | value BYTE[len] ...
//! ```
//!
//! Items are kept as raw TLVs here (typed in `normalize`); a vendor TLV whose length runs
//! past the body is kept as `tail`, not an error for the whole message.

use serde::Serialize;

use super::{as_hex, Reader};
use crate::BodyError;

/// One additional item (JT/T 808-2013 table 27).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationItem {
    /// Item id (0x01 mileage, 0x02 fuel, 0x03 recorder speed, 0x30 signal, 0x31 satellites...).
    pub id: u8,
    /// Item value bytes.
    #[serde(serialize_with = "as_hex")]
    pub value: Vec<u8>,
}

/// 0x0200 (also the body of 0x0201 after its serial, and of each 0x0704 item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationReport {
    /// Alarm flag bits (table 24).
    pub alarm: u32,
    /// Status bits (table 25).
    pub status: u32,
    /// Latitude in 1e-6 degrees, unsigned (south is status bit 2).
    pub latitude: u32,
    /// Longitude in 1e-6 degrees, unsigned (west is status bit 3).
    pub longitude: u32,
    /// Altitude in metres.
    pub altitude: u16,
    /// Speed in 1/10 km/h.
    pub speed: u16,
    /// Heading in degrees, 0-359, north 0, clockwise.
    pub heading: u16,
    /// The BCD time bytes (their hex is the digits `YYMMDDhhmmss`).
    #[serde(serialize_with = "as_hex")]
    pub time: [u8; 6],
    /// Additional items in wire order.
    pub items: Vec<LocationItem>,
    /// Bytes after the last whole item (a TLV whose length runs past the body).
    #[serde(serialize_with = "as_hex")]
    pub tail: Vec<u8>,
}

impl LocationReport {
    /// Decodes a location body (28 bytes of basic information then items).
    pub fn decode(msg_id: u16, body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(msg_id, body);
        let alarm = r.u32()?;
        let status = r.u32()?;
        let latitude = r.u32()?;
        let longitude = r.u32()?;
        let altitude = r.u16()?;
        let speed = r.u16()?;
        let heading = r.u16()?;
        let mut time = [0u8; 6];
        time.copy_from_slice(r.take(6)?);
        let mut items = Vec::new();
        let mut tail = Vec::new();
        while r.remaining() > 0 {
            let start = r.pos;
            let head = (r.u8(), r.u8());
            let value = match head {
                (Ok(id), Ok(len)) => r.take(usize::from(len)).ok().map(|v| (id, v)),
                _ => None,
            };
            match value {
                Some((id, v)) => items.push(LocationItem {
                    id,
                    value: v.to_vec(),
                }),
                None => {
                    tail = body.get(start..).unwrap_or(&[]).to_vec();
                    break;
                }
            }
        }
        Ok(LocationReport {
            alarm,
            status,
            latitude,
            longitude,
            altitude,
            speed,
            heading,
            time,
            items,
            tail,
        })
    }

    /// Appends the body. Items longer than 255 bytes are cut to 255 (the length is a BYTE).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.alarm.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.latitude.to_be_bytes());
        out.extend_from_slice(&self.longitude.to_be_bytes());
        out.extend_from_slice(&self.altitude.to_be_bytes());
        out.extend_from_slice(&self.speed.to_be_bytes());
        out.extend_from_slice(&self.heading.to_be_bytes());
        out.extend_from_slice(&self.time);
        for it in &self.items {
            let v = it.value.get(..255).unwrap_or(&it.value);
            out.push(it.id);
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        }
        out.extend_from_slice(&self.tail);
    }

    /// The item with `id`, if present.
    pub fn item(&self, id: u8) -> Option<&[u8]> {
        self.items
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.value.as_slice())
    }
}
