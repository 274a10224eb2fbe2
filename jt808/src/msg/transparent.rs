//! 0x0900 uplink transparent data, 0x0901 compressed data upload, 0x0A00 terminal RSA
//! public key (JT/T 808-2013 §8.60/§8.61/§8.64, unchanged in 2019).
//!
//! ```text
//! 0x0900: message type BYTE | content
//! 0x0901: length DWORD | GZIP-compressed message body BYTE[length]
//! 0x0A00: e DWORD | n BYTE[128]
//! ```
//!
//! 0x0900 types: 0x00 GNSS module detail, 0x0B road transport IC card, 0x41 serial port 1,
//! 0x42 serial port 2, 0xF0-0xFF user-defined. The compressed body of 0x0901 is kept as
//! bytes (decompressing is a vendor's business; the crate has no gzip dependency).

use serde::Serialize;

use super::fields::count;
use super::{as_hex, Reader};
use crate::BodyError;

/// 0x0900 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UplinkTransparent {
    /// Message type (see the module doc).
    pub msg_type: u8,
    /// Content.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
}

impl UplinkTransparent {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0900, body);
        Ok(UplinkTransparent {
            msg_type: r.u8()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.msg_type);
        out.extend_from_slice(&self.data);
    }
}

/// 0x0901 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompressedUpload {
    /// The GZIP data.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
    /// Bytes after the declared length.
    #[serde(serialize_with = "as_hex")]
    pub tail: Vec<u8>,
}

impl CompressedUpload {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0901, body);
        let n = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        Ok(CompressedUpload {
            data: r.take(n)?.to_vec(),
            tail: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let n: u32 = count(self.data.len(), "data", 0x0901)?;
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.tail);
        Ok(())
    }
}

/// Length of the RSA modulus in 0x0A00/0x8A00.
pub const RSA_MODULUS_LEN: usize = 128;

/// 0x0A00 body (the same layout as the platform's 0x8A00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RsaPublicKey {
    /// Public exponent.
    pub e: u32,
    /// Modulus, [`RSA_MODULUS_LEN`] bytes big-endian.
    #[serde(serialize_with = "as_hex")]
    pub n: Vec<u8>,
}

impl RsaPublicKey {
    pub(crate) fn decode(msg_id: u16, body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(msg_id, body);
        Ok(RsaPublicKey {
            e: r.u32()?,
            n: r.take(RSA_MODULUS_LEN)?.to_vec(),
        })
    }

    pub(crate) fn encode(&self, msg_id: u16, out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.n.len() != RSA_MODULUS_LEN {
            return Err(BodyError::Invalid {
                msg_id,
                field: "n",
                len: self.n.len(),
            });
        }
        out.extend_from_slice(&self.e.to_be_bytes());
        out.extend_from_slice(&self.n);
        Ok(())
    }
}
