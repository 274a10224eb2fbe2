//! `media.data`: a file a vehicle uploaded (JT/T 808 0x0801 multimedia data), stored whole
//! in the gateway's media store. The event carries what the file is and where it went, not
//! its bytes.

use std::borrow::Cow;

use serde::Serialize;

use super::Location;

/// Where a media store put a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMedia {
    /// Bytes of the file.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// The store's key for the file (for the directory store: its path under the media
    /// directory, `{vehicle_id}/{file name}`).
    pub key: String,
    /// A URL to fetch it, when the store has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `{"media_id": 7, "media_type": "image", "format": "jpeg", "event": 1, "event_name":
/// "timed", "channel": 1, "size": .., "sha256": .., "key": .., "location": {..}}`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Media {
    /// The vehicle's id of this media.
    pub media_id: u32,
    /// `image`, `audio`, `video` (`unknown_N` for another code).
    pub media_type: Cow<'static, str>,
    /// `jpeg`, `tif`, `mp3`, `wav`, `wmv` (`unknown_N` for another code).
    pub format: Cow<'static, str>,
    /// The event code that made the vehicle take it, as sent.
    pub event: u8,
    /// Its name (`platform_command`, `timed`, `robbery_alarm`, `collision`...).
    pub event_name: Cow<'static, str>,
    /// The camera / microphone channel.
    pub channel: u8,
    /// Size, hash and place in the store, flattened into `data`.
    #[serde(flatten)]
    pub stored: StoredMedia,
    /// The position that came with the media.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Box<Location>>,
}
