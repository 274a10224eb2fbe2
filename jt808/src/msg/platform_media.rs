//! Platform multimedia messages: 0x8800 upload answer, 0x8801 take a picture now,
//! 0x8802 search stored media, 0x8803 upload stored media, 0x8804 record audio,
//! 0x8805 upload one stored item.
//!
//! ```text
//! 0x8800 (2013): media id DWORD | count BYTE | package ids WORD[count]
//! 0x8801 (2013): channel BYTE | command WORD | interval WORD | save flag BYTE
//!                | resolution BYTE | quality BYTE | brightness BYTE | contrast BYTE
//!                | saturation BYTE | chroma BYTE
//! 0x8802 (2013): media type BYTE | channel BYTE | event BYTE | start BCD[6] | end BCD[6]
//! 0x8803 (2013): media type BYTE | channel BYTE | event BYTE | start BCD[6] | end BCD[6]
//!                | delete flag BYTE
//! 0x8804 (2013): command BYTE | duration WORD | save flag BYTE | sample rate BYTE
//! 0x8805 (2013): media id DWORD | delete flag BYTE
//! ```
//!
//! Times are GMT+8 wall-clock fields as sent; all zeros means "no limit".

use codecs::time::LocalTime;
use serde::Serialize;

use super::platform_misc::u8_of;
use super::{bcd_time, put_bcd_time, Reader};
use crate::BodyError;

/// 0x8800 multimedia upload answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaUploadAnswer {
    /// Media id of the 0x0801 answered.
    pub media_id: u32,
    /// Packages to send again (empty: all received).
    pub retransmit_ids: Vec<u16>,
}

impl MediaUploadAnswer {
    const ID: u16 = 0x8800;

    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(Self::ID, body);
        let media_id = r.u32()?;
        let count = usize::from(r.u8()?);
        let mut retransmit_ids = Vec::with_capacity(count);
        for _ in 0..count {
            retransmit_ids.push(r.u16()?);
        }
        Ok(MediaUploadAnswer {
            media_id,
            retransmit_ids,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend_from_slice(&self.media_id.to_be_bytes());
        out.push(u8_of(
            Self::ID,
            "retransmit_ids",
            self.retransmit_ids.len(),
        )?);
        for id in &self.retransmit_ids {
            out.extend_from_slice(&id.to_be_bytes());
        }
        Ok(())
    }
}

/// 0x8801 camera shot command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraShot {
    /// Channel id (> 0).
    pub channel: u8,
    /// 0 stop, 0xFFFF record video, otherwise the number of pictures.
    pub command: u16,
    /// Interval between pictures, or video length, in seconds (0: as fast as possible).
    pub interval_s: u16,
    /// 1 save, 0 upload in real time.
    pub save: u8,
    /// Resolution code (1 320x240 .. 8 1280x720).
    pub resolution: u8,
    /// Quality 1-10 (1 best).
    pub quality: u8,
    /// Brightness 0-255.
    pub brightness: u8,
    /// Contrast 0-127.
    pub contrast: u8,
    /// Saturation 0-127.
    pub saturation: u8,
    /// Chroma 0-255.
    pub chroma: u8,
}

impl CameraShot {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8801, body);
        Ok(CameraShot {
            channel: r.u8()?,
            command: r.u16()?,
            interval_s: r.u16()?,
            save: r.u8()?,
            resolution: r.u8()?,
            quality: r.u8()?,
            brightness: r.u8()?,
            contrast: r.u8()?,
            saturation: r.u8()?,
            chroma: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.channel);
        out.extend_from_slice(&self.command.to_be_bytes());
        out.extend_from_slice(&self.interval_s.to_be_bytes());
        out.extend_from_slice(&[
            self.save,
            self.resolution,
            self.quality,
            self.brightness,
            self.contrast,
            self.saturation,
            self.chroma,
        ]);
    }
}

/// 0x8802 stored multimedia search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMediaSearch {
    /// 0 image, 1 audio, 2 video.
    pub media_type: u8,
    /// Channel id (0: all).
    pub channel: u8,
    /// Event code: 0 platform command, 1 timer, 2 robbery alarm, 3 collision/rollover.
    pub event: u8,
    /// Start time (GMT+8).
    pub start: LocalTime,
    /// End time (GMT+8).
    pub end: LocalTime,
}

impl StoredMediaSearch {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8802, body);
        Ok(StoredMediaSearch {
            media_type: r.u8()?,
            channel: r.u8()?,
            event: r.u8()?,
            start: bcd_time(&mut r)?,
            end: bcd_time(&mut r)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.media_type, self.channel, self.event]);
        put_bcd_time(&self.start, out);
        put_bcd_time(&self.end, out);
    }
}

/// 0x8803 stored multimedia upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMediaUpload {
    /// The items to upload.
    #[serde(flatten)]
    pub search: StoredMediaSearch,
    /// 1 delete after upload, 0 keep.
    pub delete: u8,
}

impl StoredMediaUpload {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8803, body);
        let search = StoredMediaSearch::decode(r.take(15)?)?;
        Ok(StoredMediaUpload {
            search,
            delete: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.search.encode(out);
        out.push(self.delete);
    }
}

/// 0x8804 start recording audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordAudio {
    /// 0 stop, 1 start.
    pub command: u8,
    /// Duration in seconds (0: until stopped).
    pub duration_s: u16,
    /// 0 upload in real time, 1 save.
    pub save: u8,
    /// Sample rate code: 0 8 kHz, 1 11 kHz, 2 23 kHz, 3 32 kHz.
    pub sample_rate: u8,
}

impl RecordAudio {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8804, body);
        Ok(RecordAudio {
            command: r.u8()?,
            duration_s: r.u16()?,
            save: r.u8()?,
            sample_rate: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.command);
        out.extend_from_slice(&self.duration_s.to_be_bytes());
        out.extend_from_slice(&[self.save, self.sample_rate]);
    }
}

/// 0x8805 single stored multimedia item upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SingleMediaUpload {
    /// Media id.
    pub media_id: u32,
    /// 1 delete after upload, 0 keep.
    pub delete: u8,
}

impl SingleMediaUpload {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let mut r = Reader::new(0x8805, body);
        Ok(SingleMediaUpload {
            media_id: r.u32()?,
            delete: r.u8()?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.media_id.to_be_bytes());
        out.push(self.delete);
    }
}
