//! 0x0B data-unit key exchange (2025 only, 7.6 table 31, up and down): key type, key length
//! WORD, key, start time, end time. The key types are the encryption codes of table 2
//! (0x02 RSA, 0x03 AES, 0x04 SM2, 0x05 SM4).

use codecs::time::LocalTime;
use serde::Serialize;

use super::{hex_ser, id, put_time, Reader};
use crate::BodyError;

/// A data-unit key and its validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyExchange {
    /// Algorithm, as the frame's encryption byte.
    pub key_type: u8,
    /// The key bytes.
    #[serde(serialize_with = "hex_ser")]
    pub key: Vec<u8>,
    /// Start of validity.
    pub valid_from: LocalTime,
    /// End of validity.
    pub valid_until: LocalTime,
}

impl KeyExchange {
    pub(crate) fn decode(data: &[u8]) -> Result<KeyExchange, BodyError> {
        let mut r = Reader::new(data, id::KEY_EXCHANGE);
        let key_type = r.u8()?;
        let len = r.u16()?;
        let key = r.bytes(usize::from(len))?.to_vec();
        let out = KeyExchange {
            key_type,
            key,
            valid_from: r.time()?,
            valid_until: r.time()?,
        };
        r.finish()?;
        Ok(out)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let len = u16::try_from(self.key.len())
            .ok()
            .filter(|l| usize::from(*l) <= crate::frame::MAX_DATA_LEN)
            .ok_or(BodyError::OutOfRange {
                command: id::KEY_EXCHANGE,
                field: "key length",
                value: self.key.len(),
                max: crate::frame::MAX_DATA_LEN,
            })?;
        out.push(self.key_type);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.key);
        put_time(out, &self.valid_from);
        put_time(out, &self.valid_until);
        Ok(())
    }
}
