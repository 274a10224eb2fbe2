//! 0x0700 driving recorder data upload and 0x0701 electronic waybill
//! (JT/T 808-2013 §8.47/§8.48, unchanged in 2019).
//!
//! ```text
//! 0x0700: reply serial WORD (of the 0x8700) | command BYTE (GB/T 19056) | data block
//! 0x0701: length DWORD | waybill content BYTE[length]
//! ```
//!
//! The recorder data block is a GB/T 19056 frame, kept as bytes. The 2011 0x0700 had no
//! reply serial; the header cannot tell 2011, so the 2013 layout is used. A 0x0701 whose
//! length runs past the body is an error; bytes after the content are kept in `tail`.

use serde::Serialize;

use super::fields::count;
use super::{as_hex, Reader};
use crate::BodyError;

/// 0x0700 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecorderUpload {
    /// Serial of the 0x8700 answered.
    pub reply_serial: u16,
    /// GB/T 19056 command word.
    pub command: u8,
    /// GB/T 19056 data block.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
}

impl RecorderUpload {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0700, body);
        Ok(RecorderUpload {
            reply_serial: r.u16()?,
            command: r.u8()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reply_serial.to_be_bytes());
        out.push(self.command);
        out.extend_from_slice(&self.data);
    }
}

/// 0x0701 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waybill {
    /// Waybill content (free-form; often GBK text).
    pub content: Vec<u8>,
    /// Bytes after `content`.
    pub tail: Vec<u8>,
}

impl Serialize for Waybill {
    /// `content` as hex, and as `text` too when it is valid GBK.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("content", &hex::encode(&self.content))?;
        if codecs::text::is_valid(&self.content) {
            m.serialize_entry("text", &codecs::text::decode(&self.content))?;
        }
        m.serialize_entry("tail", &hex::encode(&self.tail))?;
        m.end()
    }
}

impl Waybill {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0701, body);
        let n = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        Ok(Waybill {
            content: r.take(n)?.to_vec(),
            tail: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let n: u32 = count(self.content.len(), "content", 0x0701)?;
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&self.content);
        out.extend_from_slice(&self.tail);
        Ok(())
    }
}
