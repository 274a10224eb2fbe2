//! The two editions, told apart per frame by the start marker.

use serde::Serialize;

/// GB/T 32960.3 edition: 2016 frames start with `##`, 2025 frames with `$$`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Edition {
    #[default]
    #[serde(rename = "2016")]
    V2016,
    #[serde(rename = "2025")]
    V2025,
}

impl Edition {
    /// The start marker byte, repeated twice on the wire (`#` or `$`).
    pub fn marker(self) -> u8 {
        match self {
            Edition::V2016 => b'#',
            Edition::V2025 => b'$',
        }
    }

    /// The contract's protocol name for events of this edition.
    pub fn protocol(self) -> codecs::Protocol {
        match self {
            Edition::V2016 => codecs::Protocol::Gbt32960_2016,
            Edition::V2025 => codecs::Protocol::Gbt32960_2025,
        }
    }

    /// Parses `2016`, `2025`.
    pub fn from_name(s: &str) -> Option<Edition> {
        match s {
            "2016" => Some(Edition::V2016),
            "2025" => Some(Edition::V2025),
            _ => None,
        }
    }
}
