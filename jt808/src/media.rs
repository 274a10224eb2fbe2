//! Multimedia uploads (0x0801) to `media` events: the names of the codes of JT/T 808-2013
//! §8.55-§8.57 (unchanged in 2019), and the event of an upload the gateway has stored.
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::msg::LocationReport;

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
                items: Vec::new(),
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
