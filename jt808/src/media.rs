//! Multimedia uploads (0x0801) to `media` events: the names of the codes of the 0x0800 and
//! 0x0801 tables of JT/T 808-2013 (unchanged in 2019), the event of an upload the gateway
//! has stored, and the bookkeeping of an upload whose packages go to disk ([`Assembly`]).
//!
//! Pure: the gateway stores the file (its media store gives size, SHA-256 and key) and
//! answers 0x8800; this module only says what the file is.

use std::borrow::Cow;
use std::sync::Arc;

use codecs::event::{Media, StoredMedia};
use codecs::{Data, Event, EventContext};

use crate::msg::MediaUpload;
use crate::normalize::{bcd_time, location};
use crate::{Header, Version};

fn named(code: u8, names: &[&'static str]) -> Cow<'static, str> {
    match names.get(usize::from(code)) {
        Some(n) => Cow::Borrowed(*n),
        None => Cow::Owned(format!("unknown_{code}")),
    }
}

/// Media type: 0 image, 1 audio, 2 video.
pub fn type_name(code: u8) -> Cow<'static, str> {
    named(code, &["image", "audio", "video"])
}

/// Format: 0 JPEG, 1 TIF, 2 MP3, 3 WAV, 4 WMV.
pub fn format_name(code: u8) -> Cow<'static, str> {
    named(code, &["jpeg", "tif", "mp3", "wav", "wmv"])
}

/// The file extension of a format (`bin` for an unknown one).
pub fn extension(code: u8) -> &'static str {
    ["jpg", "tif", "mp3", "wav", "wmv"]
        .get(usize::from(code))
        .copied()
        .unwrap_or("bin")
}

/// Event code: 0 platform command, 1 timed, 2 robbery alarm, 3 collision/rollover alarm;
/// 2013 adds 4 door open, 5 door close, 6 door open to close with speed over 20 km/h,
/// 7 fixed distance.
pub fn event_name(code: u8) -> Cow<'static, str> {
    named(
        code,
        &[
            "platform_command",
            "timed",
            "robbery_alarm",
            "collision",
            "door_open",
            "door_close",
            "door_closed_over_20kmh",
            "fixed_distance",
        ],
    )
}

/// The file name an upload is stored under: media id, the frame's serial (a terminal may
/// use one media id again later) and the format's extension, e.g. `7_1234.jpg`.
pub fn file_name(header: &Header, u: &MediaUpload) -> String {
    format!("{}_{}.{}", u.media_id, header.serial, extension(u.format))
}

/// The `media` event of an upload stored as `stored`, labelled with the session's edition.
pub fn event(
    edition: Version,
    header: &Header,
    u: &MediaUpload,
    stored: StoredMedia,
    ctx: &EventContext,
) -> Event {
    let time = bcd_time(&u.location.time, ctx.device_utc_offset_secs);
    let media = Media {
        media_id: u.media_id,
        media_type: type_name(u.media_type),
        format: format_name(u.format),
        event: u.event,
        event_name: event_name(u.event),
        channel: u.channel,
        stored,
        location: Some(Box::new(location(&u.location, header.version))),
    };
    Event::new(
        ctx,
        Arc::from(header.phone.as_str()),
        edition.protocol(),
        time,
        Some(u32::from(header.serial)),
        Data::Media(Box::new(media)),
    )
}

/// Bytes of the 0x0801 body before the file: media id, type, format, event, channel and the
/// 28-byte location basic information.
pub const UPLOAD_HEADER_LEN: usize = 36;

/// The slot of one package in a parts file: the largest package body, so package `i` goes at
/// `(i - 1) * SLOT` whatever the sizes the terminal chose.
pub const SLOT: u64 = crate::header::MAX_BODY_LEN as u64;

/// A package an [`Assembly`] cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    #[error("package index {index} outside 1..={total}")]
    BadIndex { index: u16, total: u16 },
    #[error("package of {len} bytes, max {max}")]
    TooLong { len: usize, max: usize },
    #[error("upload of {bytes} bytes, max {max}")]
    TooLarge { bytes: u64, max: u64 },
}

/// Where a package goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Byte offset of its slot in the parts file.
    pub offset: u64,
    /// It arrived before (a resend): write it again or not, nothing changes.
    pub duplicate: bool,
}

/// The bookkeeping of one subpackaged 0x0801 upload whose bytes go to a file, not to
/// memory: which packages arrived, how long each is, where each goes, what is missing.
/// Memory: two bytes per package (at most 128 KiB for 65,535 packages), whatever the
/// file's size. The caller writes each package at its [`Placement`] and, once
/// [`Assembly::is_complete`], reads the parts back in order ([`Assembly::parts`]): the
/// first [`UPLOAD_HEADER_LEN`] bytes are the upload's header, the rest the file.
#[derive(Debug, Clone)]
pub struct Assembly {
    total: u16,
    /// Length of each package's body, `u16::MAX` while missing.
    lens: Vec<u16>,
    received: u16,
    bytes: u64,
    max_bytes: u64,
}

impl Assembly {
    /// An upload of `total` packages (>= 1) of at most `max_bytes` in all.
    pub fn new(total: u16, max_bytes: u64) -> Self {
        Assembly {
            total,
            lens: vec![u16::MAX; usize::from(total)],
            received: 0,
            bytes: 0,
            max_bytes,
        }
    }

    /// The package count.
    pub fn total(&self) -> u16 {
        self.total
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Takes package `index` (1-based) of `len` bytes.
    pub fn accept(&mut self, index: u16, len: usize) -> Result<Placement, AssemblyError> {
        let total = self.total;
        let slot = index
            .checked_sub(1)
            .and_then(|i| self.lens.get_mut(usize::from(i)))
            .ok_or(AssemblyError::BadIndex { index, total })?;
        let max = crate::header::MAX_BODY_LEN;
        let len16 = u16::try_from(len)
            .ok()
            .filter(|l| usize::from(*l) <= max)
            .ok_or(AssemblyError::TooLong { len, max })?;
        let offset = u64::from(index - 1) * SLOT;
        if *slot != u16::MAX {
            return Ok(Placement {
                offset,
                duplicate: true,
            });
        }
        let bytes = self.bytes + len as u64;
        if bytes > self.max_bytes {
            return Err(AssemblyError::TooLarge {
                bytes,
                max: self.max_bytes,
            });
        }
        *slot = len16;
        self.bytes = bytes;
        self.received += 1;
        Ok(Placement {
            offset,
            duplicate: false,
        })
    }

    /// Whether every package arrived.
    pub fn is_complete(&self) -> bool {
        self.received == self.total
    }

    /// The indexes still missing, ascending.
    pub fn missing(&self) -> Vec<u16> {
        (1..=self.total)
            .zip(&self.lens)
            .filter(|(_, l)| **l == u16::MAX)
            .map(|(i, _)| i)
            .collect()
    }

    /// (offset, length) of each package in order; complete uploads only (a missing
    /// package is left out).
    pub fn parts(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        (0u64..)
            .zip(&self.lens)
            .filter(|(_, l)| **l != u16::MAX)
            .map(|(i, l)| (i * SLOT, usize::from(*l)))
    }
}

/// The upload's header (everything but the file) from the first [`UPLOAD_HEADER_LEN`]
/// bytes of its body.
pub fn upload_header(first: &[u8]) -> Result<MediaUpload, crate::BodyError> {
    let head = first.get(..UPLOAD_HEADER_LEN).unwrap_or(first);
    crate::Message::decode(
        &Header::to_terminal(
            crate::msg::id::MEDIA_UPLOAD,
            Version::V2013,
            String::new(),
            0,
        ),
        head,
    )
    .and_then(|m| match m {
        crate::Message::MediaUpload(u) => Ok(u),
        _ => Err(crate::BodyError::TooShort {
            msg_id: crate::msg::id::MEDIA_UPLOAD,
            len: head.len(),
            need: UPLOAD_HEADER_LEN,
        }),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::msg::LocationReport;

    #[test]
    fn an_assembly_places_packages_in_slots_reports_missing_ones_and_refuses_overflow() {
        let mut a = Assembly::new(3, 2500);
        assert_eq!(
            a.accept(3, 500),
            Ok(Placement {
                offset: 2 * SLOT,
                duplicate: false
            })
        );
        assert_eq!(a.missing(), [1, 2]);
        assert!(a.accept(1, 1000).is_ok());
        assert!(a.accept(1, 1000).unwrap().duplicate);
        assert_eq!(a.bytes(), 1500);
        assert!(!a.is_complete());
        assert_eq!(
            a.accept(2, 1001),
            Err(AssemblyError::TooLarge {
                bytes: 2501,
                max: 2500
            })
        );
        assert_eq!(
            a.accept(4, 1),
            Err(AssemblyError::BadIndex { index: 4, total: 3 })
        );
        assert_eq!(
            a.accept(0, 1),
            Err(AssemblyError::BadIndex { index: 0, total: 3 })
        );
        assert!(a.accept(2, 1000).is_ok());
        assert!(a.is_complete());
        let parts: Vec<_> = a.parts().collect();
        assert_eq!(parts, [(0, 1000), (SLOT, 1000), (2 * SLOT, 500)]);
    }

    proptest::proptest! {
        #[test]
        fn packages_in_any_order_fill_every_slot_once(
            lens in proptest::collection::vec(1usize..=1023, 1..40),
            seed in proptest::num::u64::ANY,
        ) {
            let total = lens.len() as u16;
            let mut a = Assembly::new(total, u64::MAX);
            let mut order: Vec<u16> = (1..=total).collect();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            for i in &order {
                let p = a.accept(*i, lens[usize::from(*i) - 1]).unwrap();
                proptest::prop_assert!(!p.duplicate);
                proptest::prop_assert_eq!(p.offset, u64::from(*i - 1) * SLOT);
            }
            proptest::prop_assert!(a.is_complete());
            proptest::prop_assert!(a.missing().is_empty());
            let got: Vec<usize> = a.parts().map(|(_, l)| l).collect();
            proptest::prop_assert_eq!(got, lens);
        }
    }

    #[test]
    fn the_upload_header_is_read_from_the_first_36_bytes() {
        let mut body = vec![0, 0, 0, 7, 0, 0, 1, 2];
        body.extend_from_slice(&[0; 28]);
        body.extend_from_slice(&[0xFF, 0xD8, 0xFF]);
        let u = upload_header(&body).unwrap();
        assert_eq!((u.media_id, u.event, u.channel), (7, 1, 2));
        assert!(u.data.is_empty());
        assert!(upload_header(&body[..20]).is_err());
    }

    #[test]
    fn a_stored_photo_is_a_media_event_with_names_store_fields_and_location() {
        let u = MediaUpload {
            media_id: 7,
            media_type: 0,
            format: 0,
            event: 1,
            channel: 2,
            location: LocationReport {
                alarm: 0,
                status: 0b10,
                latitude: 22_543_096,
                longitude: 114_057_865,
                altitude: 0,
                speed: 0,
                heading: 0,
                time: [0x24, 0x01, 0x01, 0x08, 0x00, 0x00],
                items: Default::default(),
                tail: Vec::new(),
            },
            data: vec![0xFF, 0xD8],
        };
        let h = Header::to_terminal(0x0801, Version::V2013, "013800138000".into(), 9);
        assert_eq!(file_name(&h, &u), "7_9.jpg");
        let stored = StoredMedia {
            size: 2,
            sha256: "ab".into(),
            key: "013800138000/7_9.jpg".into(),
            url: None,
        };
        let ev = event(Version::V2013, &h, &u, stored, &EventContext::now("n"));
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "media");
        assert_eq!(v["device_time"], "2024-01-01T00:00:00Z");
        let d = &v["data"];
        assert_eq!(d["media_type"], "image");
        assert_eq!(d["format"], "jpeg");
        assert_eq!(d["event_name"], "timed");
        assert_eq!(d["channel"], 2);
        assert_eq!(d["size"], 2);
        assert_eq!(d["key"], "013800138000/7_9.jpg");
        assert!(d.get("url").is_none());
        assert_eq!(d["location"]["latitude"], 22.543096);
        assert_eq!(format_name(9), "unknown_9");
        assert_eq!(extension(9), "bin");
    }
}
