//! Multimedia uplinks (JT/T 808-2013 §8.54-§8.58, unchanged in 2019):
//!
//! ```text
//! 0x0800 event:         media id DWORD | type BYTE | format BYTE | event BYTE | channel BYTE
//! 0x0801 upload:        media id DWORD | type BYTE | format BYTE | event BYTE | channel BYTE
//!                       | location basic information BYTE[28] | data
//! 0x0802 search answer: reply serial WORD | count WORD
//!                       | { media id DWORD | type BYTE | channel BYTE | event BYTE | location BYTE[28] }*
//! 0x0805 shot answer:   reply serial WORD | result BYTE [result 0: count WORD | media id DWORD*]
//! ```
//!
//! Type: 0 image, 1 audio, 2 video. Format: 0 JPEG, 1 TIF, 2 MP3, 3 WAV, 4 WMV. Event:
//! 0 platform command, 1 timed, 2 robbery alarm, 3 collision/rollover, 4 door open,
//! 5 door close, 6 door open->close speed over 20 km/h, 7 fixed distance. Shot result:
//! 0 ok, 1 failed, 2 channel not supported.
//!
//! The 2011 0x0801 had no location; the header cannot tell 2011, so 0x0801 is always read
//! with the 2013 layout. A 0x0805 with result 0 and no count (some terminals stop after the
//! result) reads as an empty id list.

use serde::Serialize;

use super::fields::{count, location, put_location};
use super::{as_hex, LocationReport, Reader};
use crate::BodyError;

/// 0x0800 multimedia event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaEvent {
    /// Multimedia data id.
    pub media_id: u32,
    /// 0 image, 1 audio, 2 video.
    pub media_type: u8,
    /// 0 JPEG, 1 TIF, 2 MP3, 3 WAV, 4 WMV.
    pub format: u8,
    /// Event code (see the module doc).
    pub event: u8,
    /// Channel id.
    pub channel: u8,
}

impl MediaEvent {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0800, body);
        Ok(MediaEvent {
            media_id: r.u32()?,
            media_type: r.u8()?,
            format: r.u8()?,
            event: r.u8()?,
            channel: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.media_id.to_be_bytes());
        out.extend_from_slice(&[self.media_type, self.format, self.event, self.channel]);
    }
}

/// 0x0801 multimedia data upload (usually subpackaged; this is the reassembled body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaUpload {
    /// Multimedia data id.
    pub media_id: u32,
    /// 0 image, 1 audio, 2 video.
    pub media_type: u8,
    /// 0 JPEG, 1 TIF, 2 MP3, 3 WAV, 4 WMV.
    pub format: u8,
    /// Event code.
    pub event: u8,
    /// Channel id.
    pub channel: u8,
    /// Where the media was taken (28 bytes of basic information, no items).
    pub location: LocationReport,
    /// The media file bytes.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
}

impl MediaUpload {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0801, body);
        Ok(MediaUpload {
            media_id: r.u32()?,
            media_type: r.u8()?,
            format: r.u8()?,
            event: r.u8()?,
            channel: r.u8()?,
            location: location(&mut r)?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.media_id.to_be_bytes());
        out.extend_from_slice(&[self.media_type, self.format, self.event, self.channel]);
        put_location(&self.location, out);
        out.extend_from_slice(&self.data);
    }
}

/// One stored multimedia item of a 0x0802 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaItem {
    /// Multimedia data id.
    pub media_id: u32,
    /// 0 image, 1 audio, 2 video.
    pub media_type: u8,
    /// Channel id.
    pub channel: u8,
    /// Event code.
    pub event: u8,
    /// Where it was taken (28 bytes of basic information).
    pub location: LocationReport,
}

/// 0x0802 stored multimedia search answer (reply to 0x8802).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaSearchAnswer {
    /// Serial of the 0x8802 answered.
    pub reply_serial: u16,
    /// Items found.
    pub items: Vec<MediaItem>,
}

impl MediaSearchAnswer {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0802, body);
        let reply_serial = r.u16()?;
        let n = usize::from(r.u16()?);
        let mut items = Vec::with_capacity(n.min(r.remaining() / 35));
        for _ in 0..n {
            items.push(MediaItem {
                media_id: r.u32()?,
                media_type: r.u8()?,
                channel: r.u8()?,
                event: r.u8()?,
                location: location(&mut r)?,
            });
        }
        Ok(MediaSearchAnswer {
            reply_serial,
            items,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend_from_slice(&self.reply_serial.to_be_bytes());
        let n: u16 = count(self.items.len(), "items", 0x0802)?;
        out.extend_from_slice(&n.to_be_bytes());
        for it in &self.items {
            out.extend_from_slice(&it.media_id.to_be_bytes());
            out.extend_from_slice(&[it.media_type, it.channel, it.event]);
            put_location(&it.location, out);
        }
        Ok(())
    }
}

/// 0x0805 camera shot answer (reply to 0x8801).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShotAnswer {
    /// Serial of the 0x8801 answered.
    pub reply_serial: u16,
    /// 0 ok, 1 failed, 2 channel not supported.
    pub result: u8,
    /// Ids of the media taken (only with result 0).
    pub media_ids: Vec<u32>,
}

impl ShotAnswer {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x0805, body);
        let reply_serial = r.u16()?;
        let result = r.u8()?;
        let mut media_ids = Vec::new();
        if result == 0 && r.remaining() > 0 {
            let n = usize::from(r.u16()?);
            media_ids.reserve(n.min(r.remaining() / 4));
            for _ in 0..n {
                media_ids.push(r.u32()?);
            }
        }
        Ok(ShotAnswer {
            reply_serial,
            result,
            media_ids,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend_from_slice(&self.reply_serial.to_be_bytes());
        out.push(self.result);
        if self.result == 0 {
            let n: u16 = count(self.media_ids.len(), "media_ids", 0x0805)?;
            out.extend_from_slice(&n.to_be_bytes());
            for id in &self.media_ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        Ok(())
    }
}
