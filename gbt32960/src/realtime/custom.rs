//! 0x80-0xFE user-defined info units: type, WORD length, that many bytes, kept as bytes
//! (source: `docs/standard/2016.md` table 6 and §7.2.3.x; same in 2025).

use serde::Serialize;

use super::Cursor;

/// A user-defined unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Custom {
    /// Info type (0x80..=0xFE).
    pub type_id: u8,
    /// The bytes after the WORD length.
    #[serde(serialize_with = "super::ser_hex")]
    pub data: Vec<u8>,
}

impl Custom {
    pub(crate) fn decode(type_id: u8, c: &mut Cursor<'_>) -> Option<Self> {
        let n = c.u16()?;
        Some(Custom {
            type_id,
            data: c.bytes(usize::from(n))?.to_vec(),
        })
    }

    /// Writes type, length and data; data longer than 65535 bytes is cut at 65535.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let n = self.data.len().min(usize::from(u16::MAX));
        out.push(self.type_id);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(self.data.get(..n).unwrap_or(&[]));
    }
}
