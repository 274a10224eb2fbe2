//! 0x07 heartbeat and 0x08 time calibration: both have an empty data unit
//! (2016 B.3.5.x; 2025 B.3.5.10 "车载终端心跳的数据单元为空", B.3.5.11). Field devices
//! sometimes send a body anyway; it is kept in `extra`, not dropped. The answers (success
//! with the platform's Beijing time) are built by [`crate::reply`].

use serde::Serialize;

use super::hex_ser;

/// The (normally empty) body of a heartbeat or time-calibration request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EmptyBody {
    /// Bytes a device sent although the standard defines none.
    #[serde(serialize_with = "hex_ser", skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<u8>,
}

impl EmptyBody {
    pub(crate) fn decode(data: &[u8]) -> EmptyBody {
        EmptyBody {
            extra: data.to_vec(),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.extra);
    }
}
