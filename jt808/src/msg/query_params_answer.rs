//! 0x0104 query-parameters answer (JT/T 808-2013 §8.12, 2019 §8.12): the terminal's reply
//! to 0x8104 (all parameters) or 0x8106 (listed parameters).
//!
//! ```text
//! reply serial WORD | count BYTE | { id DWORD | length BYTE | value }*   (same in every edition)
//! ```
//!
//! Values are typed by the parameter table ([`super::params`]); in JSON the list is an
//! object keyed by parameter name.

use serde::Serialize;

use super::params::{read_list, serialize_params, write_list, Param};
use super::Reader;
use crate::BodyError;

const ID: u16 = 0x0104;

/// 0x0104 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryParamsAnswer {
    /// Serial of the 0x8104/0x8106 answered.
    pub reply_serial: u16,
    /// Parameters in wire order.
    #[serde(serialize_with = "serialize_params")]
    pub params: Vec<Param>,
}

impl QueryParamsAnswer {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(ID, body);
        let reply_serial = r.u16()?;
        let count = usize::from(r.u8()?);
        Ok(QueryParamsAnswer {
            reply_serial,
            params: read_list(&mut r, count)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend_from_slice(&self.reply_serial.to_be_bytes());
        write_list(&self.params, ID, out)
    }
}
