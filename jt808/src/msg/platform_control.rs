//! 0x8500 vehicle control, whose layout changed completely in 2019.
//!
//! ```text
//! 2011/2013: control flag BYTE (bit 0: 1 lock doors, 0 unlock; bits 1-7 reserved)
//! 2019:      count WORD | { control type id WORD | params }*count
//! ```
//!
//! 2019 control type 0x0001 is the door lock with a BYTE parameter (0 unlock, 1 lock);
//! 0x0002-0x8000 are reserved for revisions of the standard and 0xF001-0xFFFF for vendors,
//! with parameter lengths the standard does not give. An item of any other type is
//! therefore read to the end of the body, and so it may only be the last item.
//! The terminal answers with 0x0500.

use serde::Serialize;

use super::platform_misc::{invalid, u16_of};
use super::{as_hex, Reader};
use crate::{BodyError, Version};

const ID: u16 = 0x8500;

/// The 2019 control type of the door lock.
pub const CONTROL_DOOR: u16 = 0x0001;

/// One 2019 control item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlItem {
    /// Control type id (0x0001 door lock).
    pub id: u16,
    /// Parameter bytes (door lock: one byte, 0 unlock, 1 lock).
    #[serde(serialize_with = "as_hex")]
    pub param: Vec<u8>,
}

/// 0x8500 vehicle control, in its edition's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "layout", rename_all = "snake_case")]
pub enum VehicleControl {
    /// 2011/2013: the control flag byte (bit 0: 1 lock doors, 0 unlock).
    Flag { flag: u8 },
    /// 2019: control items.
    Items { items: Vec<ControlItem> },
}

impl VehicleControl {
    pub(crate) fn decode(body: &[u8], version: Version) -> Result<Self, BodyError> {
        let mut r = Reader::new(ID, body);
        if version != Version::V2019 {
            return Ok(VehicleControl::Flag { flag: r.u8()? });
        }
        let count = r.u16()?;
        let mut items = Vec::with_capacity(usize::from(count).min(r.remaining() / 2));
        for _ in 0..count {
            let id = r.u16()?;
            let param = match id {
                CONTROL_DOOR => r.take(1)?,
                _ => r.rest(),
            };
            items.push(ControlItem {
                id,
                param: param.to_vec(),
            });
        }
        Ok(VehicleControl::Items { items })
    }

    /// The flag layout can only be written before 2019 and the item list only in 2019.
    pub(crate) fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<(), BodyError> {
        match (self, version) {
            (VehicleControl::Flag { flag }, Version::V2011 | Version::V2013) => out.push(*flag),
            (VehicleControl::Items { items }, Version::V2019) => {
                out.extend_from_slice(&u16_of(ID, "items", items.len())?.to_be_bytes());
                for it in items {
                    if it.id == CONTROL_DOOR && it.param.len() != 1 {
                        return Err(invalid(ID, "items.param", it.param.len()));
                    }
                    out.extend_from_slice(&it.id.to_be_bytes());
                    out.extend_from_slice(&it.param);
                }
            }
            (VehicleControl::Flag { .. }, Version::V2019) => {
                return Err(invalid(ID, "flag", 1));
            }
            (VehicleControl::Items { items }, _) => {
                return Err(invalid(ID, "items", items.len()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn door_lock_is_a_flag_byte_in_2013_and_a_door_item_in_2019() {
        // 2013: flag 01 (bit 0 = lock).
        assert_eq!(
            VehicleControl::decode(&[0x01], Version::V2013),
            Ok(VehicleControl::Flag { flag: 1 })
        );
        // 2019: count 0001 | type 0001 | param 00 (unlock).
        let body = [0x00, 0x01, 0x00, 0x01, 0x00];
        let door = VehicleControl::Items {
            items: vec![ControlItem {
                id: CONTROL_DOOR,
                param: vec![0],
            }],
        };
        assert_eq!(
            VehicleControl::decode(&body, Version::V2019),
            Ok(door.clone())
        );
        let mut out = Vec::new();
        assert_eq!(door.encode(Version::V2019, &mut out), Ok(()));
        assert_eq!(out, body);
    }

    #[test]
    fn a_door_item_without_its_byte_is_too_short() {
        // count 0001 | type 0001 | (missing param)
        assert!(matches!(
            VehicleControl::decode(&[0x00, 0x01, 0x00, 0x01], Version::V2019),
            Err(BodyError::TooShort { msg_id: ID, .. })
        ));
    }
}
