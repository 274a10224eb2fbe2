//! Platform (downlink) messages: the id-to-type dispatch, the helpers the `platform_*`
//! files share, and the small messages with no better home.
//!
//! Why a dispatch here: every platform message is typed only when its typed form writes
//! back the very bytes it came from. A body that parses but would not re-encode
//! identically (trailing bytes, text that is not canonical GBK, a vendor item after an
//! item of unknown length) decodes as [`Message::Unknown`], so no byte is ever lost and
//! `decode(encode(m)) == m` holds for every typed message. A body too short for its
//! layout is a [`BodyError`], as for the terminal messages.
//!
//! Typed here: 0x8104/0x8107/0x8201/0x8204/0x8702 (empty bodies), 0x8202 temporary
//! tracking, 0x8203 manual alarm confirmation, 0x8700/0x8701 recorder commands, 0x8900
//! downlink transparent data, 0x8A00 platform RSA public key.
//!
//! ```text
//! 0x8202 (2013): interval WORD (s) | validity DWORD (s)
//! 0x8203 (2013): alarm serial WORD | alarm type DWORD
//! 0x8700 (2013): command word BYTE | data block (GB/T 19056)
//! 0x8701 (2013): command word BYTE | data block (GB/T 19056)
//! 0x8900 (2013): message type BYTE | content
//! 0x8A00 (2013): e DWORD | n BYTE[128]
//! ```

use serde::Serialize;

use super::platform_area::{DeleteAreas, QueryAreas, SetCircleAreas, SetPolygonArea};
use super::platform_area::{SetRectangleAreas, SetRoute};
use super::platform_control::VehicleControl;
use super::platform_media::{CameraShot, MediaUploadAnswer, RecordAudio, SingleMediaUpload};
use super::platform_media::{StoredMediaSearch, StoredMediaUpload};
use super::platform_params::{QueryParams, SetParams, TerminalControl, UpgradePackage};
use super::platform_text::{CallBack, EventSetting, InfoMenu, InfoService, PhoneBook};
use super::platform_text::{Question, TextMessage};
use super::{as_hex, Message, Reader};
use crate::{BodyError, Version};

/// The message `body` of platform id `id` holds: typed when the typed form is lossless,
/// else [`Message::Unknown`].
pub(crate) fn decode(id: u16, version: Version, body: &[u8]) -> Result<Message, BodyError> {
    let empty = body.is_empty();
    let typed = match id {
        0x8103 => Message::SetParams(SetParams::decode(body)?),
        0x8104 if empty => Message::QueryAllParams,
        0x8105 => Message::TerminalControl(TerminalControl::decode(body)?),
        0x8106 => Message::QueryParams(QueryParams::decode(body)?),
        0x8107 if empty => Message::QueryAttributes,
        0x8108 => Message::UpgradePackage(UpgradePackage::decode(body, version)?),
        0x8201 if empty => Message::QueryLocation,
        0x8202 => Message::TemporaryTracking(TemporaryTracking::decode(body)?),
        0x8203 => Message::AlarmConfirm(AlarmConfirm::decode(body)?),
        0x8204 if empty => Message::LinkCheck,
        0x8300 => Message::Text(TextMessage::decode(body, version)?),
        0x8301 => Message::EventSetting(EventSetting::decode(body)?),
        0x8302 => Message::Question(Question::decode(body)?),
        0x8303 => Message::InfoMenu(InfoMenu::decode(body)?),
        0x8304 => Message::InfoService(InfoService::decode(body)?),
        0x8400 => Message::CallBack(CallBack::decode(body)?),
        0x8401 => Message::PhoneBook(PhoneBook::decode(body)?),
        0x8500 => Message::VehicleControl(VehicleControl::decode(body, version)?),
        0x8600 => Message::SetCircleAreas(SetCircleAreas::decode(body, version)?),
        0x8602 => Message::SetRectangleAreas(SetRectangleAreas::decode(body, version)?),
        0x8604 => Message::SetPolygonArea(SetPolygonArea::decode(body, version)?),
        0x8606 => Message::SetRoute(SetRoute::decode(body, version)?),
        0x8601 | 0x8603 | 0x8605 | 0x8607 => Message::DeleteAreas(DeleteAreas::decode(id, body)?),
        0x8608 => Message::QueryAreas(QueryAreas::decode(body)?),
        0x8700 => Message::RecorderCollect(RecorderCommand::decode(id, body)?),
        0x8701 => Message::RecorderParamsDownload(RecorderCommand::decode(id, body)?),
        0x8702 if empty => Message::DriverIdentityRequest,
        0x8800 => Message::MediaUploadAnswer(MediaUploadAnswer::decode(body)?),
        0x8801 => Message::CameraShotCommand(CameraShot::decode(body)?),
        0x8802 => Message::StoredMediaSearch(StoredMediaSearch::decode(body)?),
        0x8803 => Message::StoredMediaUpload(StoredMediaUpload::decode(body)?),
        0x8804 => Message::RecordAudio(RecordAudio::decode(body)?),
        0x8805 => Message::SingleMediaUpload(SingleMediaUpload::decode(body)?),
        0x8900 => Message::DownlinkTransparent(DownlinkTransparent::decode(body)?),
        0x8A00 => Message::PlatformRsaKey(PlatformRsaKey::decode(body)?),
        _ => return Ok(unknown(id, body)),
    };
    match typed.encode_body(version) {
        Ok(b) if b == body => Ok(typed),
        _ => Ok(unknown(id, body)),
    }
}

fn unknown(msg_id: u16, body: &[u8]) -> Message {
    Message::Unknown {
        msg_id,
        body: body.to_vec(),
    }
}

/// `BodyError::Invalid` for `field` of `msg_id`.
pub(crate) fn invalid(msg_id: u16, field: &'static str, len: usize) -> BodyError {
    BodyError::Invalid { msg_id, field, len }
}

/// A count or length that must fit a BYTE.
pub(crate) fn u8_of(msg_id: u16, field: &'static str, n: usize) -> Result<u8, BodyError> {
    u8::try_from(n).map_err(|_| invalid(msg_id, field, n))
}

/// A count or length that must fit a WORD.
pub(crate) fn u16_of(msg_id: u16, field: &'static str, n: usize) -> Result<u16, BodyError> {
    u16::try_from(n).map_err(|_| invalid(msg_id, field, n))
}

/// A count or length that must fit a DWORD.
pub(crate) fn u32_of(msg_id: u16, field: &'static str, n: usize) -> Result<u32, BodyError> {
    u32::try_from(n).map_err(|_| invalid(msg_id, field, n))
}

/// Reads `len BYTE | GBK text`.
pub(crate) fn read_text_u8(r: &mut Reader<'_>) -> Result<String, BodyError> {
    let n = usize::from(r.u8()?);
    Ok(codecs::text::decode(r.take(n)?))
}

/// Reads `len WORD | GBK text`.
pub(crate) fn read_text_u16(r: &mut Reader<'_>) -> Result<String, BodyError> {
    let n = usize::from(r.u16()?);
    Ok(codecs::text::decode(r.take(n)?))
}

/// Writes `len BYTE | GBK text`.
pub(crate) fn put_text_u8(
    msg_id: u16,
    field: &'static str,
    s: &str,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    let b = codecs::text::encode(s);
    out.push(u8_of(msg_id, field, b.len())?);
    out.extend_from_slice(&b);
    Ok(())
}

/// Writes `len WORD | GBK text`.
pub(crate) fn put_text_u16(
    msg_id: u16,
    field: &'static str,
    s: &str,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    let b = codecs::text::encode(s);
    out.extend_from_slice(&u16_of(msg_id, field, b.len())?.to_be_bytes());
    out.extend_from_slice(&b);
    Ok(())
}

/// 0x8202 temporary location tracking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemporaryTracking {
    /// Report interval in seconds; 0 stops tracking.
    pub interval_s: u16,
    /// How long tracking lasts, in seconds.
    pub validity_s: u32,
}

impl TemporaryTracking {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8202, body);
        Ok(TemporaryTracking {
            interval_s: r.u16()?,
            validity_s: r.u32()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.interval_s.to_be_bytes());
        out.extend_from_slice(&self.validity_s.to_be_bytes());
    }
}

/// 0x8203 manual alarm confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmConfirm {
    /// Serial of the alarm's 0x0200; 0 confirms every alarm of `alarm_type`.
    pub alarm_serial: u16,
    /// Alarm bits confirmed (bit 0 emergency, 3 danger warning, 20 area, 21 route,
    /// 22 route time, 27 illegal ignition, 28 illegal displacement).
    pub alarm_type: u32,
}

impl AlarmConfirm {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8203, body);
        Ok(AlarmConfirm {
            alarm_serial: r.u16()?,
            alarm_type: r.u32()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.alarm_serial.to_be_bytes());
        out.extend_from_slice(&self.alarm_type.to_be_bytes());
    }
}

/// 0x8700 recorder data collection and 0x8701 recorder parameter download: a GB/T 19056
/// command word and its data block (kept as bytes; the block is GB/T 19056's format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecorderCommand {
    /// GB/T 19056 command word.
    pub command: u8,
    /// The data block, possibly empty.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
}

impl RecorderCommand {
    pub(crate) fn decode(msg_id: u16, body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(msg_id, body);
        Ok(RecorderCommand {
            command: r.u8()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.command);
        out.extend_from_slice(&self.data);
    }
}

/// 0x8900 downlink transparent data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownlinkTransparent {
    /// Message type (0x00 GNSS detail, 0x0B IC card, 0x41/0x42 serial ports, 0xF0-0xFF user).
    pub msg_type: u8,
    /// Content.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
}

impl DownlinkTransparent {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8900, body);
        Ok(DownlinkTransparent {
            msg_type: r.u8()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.msg_type);
        out.extend_from_slice(&self.data);
    }
}

/// 0x8A00 platform RSA public key `{e, n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformRsaKey {
    /// Public exponent.
    pub e: u32,
    /// Modulus, 128 bytes on the wire.
    #[serde(serialize_with = "as_hex")]
    pub n: Vec<u8>,
}

impl PlatformRsaKey {
    const N_LEN: usize = 128;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8A00, body);
        Ok(PlatformRsaKey {
            e: r.u32()?,
            n: r.take(Self::N_LEN)?.to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.n.len() != Self::N_LEN {
            return Err(invalid(0x8A00, "n", self.n.len()));
        }
        out.extend_from_slice(&self.e.to_be_bytes());
        out.extend_from_slice(&self.n);
        Ok(())
    }
}
