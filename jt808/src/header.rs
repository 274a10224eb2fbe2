//! The message header (JT/T 808 §4.4.3): id, body attributes, phone, serial, package.
//!
//! ```text
//! 2011/2013: msg_id u16 | attrs u16 | phone BCD[6]  | serial u16 | [total u16 | index u16]
//! 2019:      msg_id u16 | attrs u16 | ver u8 | phone BCD[10] | serial u16 | [total | index]
//! attrs:     bit 15 reserved | bit 14 version(2019) | bit 13 subpackage | bits 12-10 encryption | bits 9-0 body length
//! ```

use serde::Serialize;

use crate::Version;

/// Body encryption (attribute bits 10-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    #[default]
    None,
    /// Bit 10: RSA. vgate refuses such bodies with a typed error; it never parses ciphertext.
    Rsa,
    /// Any other non-zero value of bits 10-12.
    Unknown(u8),
}

/// Subpackage fields (present when attribute bit 13 is set). `index` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Package {
    pub total: u16,
    pub index: u16,
}

/// A decoded header. The body length is not stored: it is the body's length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Header {
    pub msg_id: u16,
    /// V2019 when the 2019 header layout is used, V2013 for the 12-byte header (the frame
    /// layer cannot tell 2011 from 2013; message parsing may refine it).
    pub version: Version,
    /// The 2019 header's protocol-version byte (1 in 2019); 0 for 2011/2013 headers.
    pub protocol_version: u8,
    /// BCD digits with leading zeros (12 or 20 digits); lowercase hex of the raw bytes
    /// when the field is not BCD (some terminals put a binary IMEI there).
    pub phone: String,
    pub serial: u16,
    pub encryption: Encryption,
    pub package: Option<Package>,
}
