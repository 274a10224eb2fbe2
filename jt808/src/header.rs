//! The message header (JT/T 808 §4.4.3): id, body attributes, phone, serial, package.
//!
//! ```text
//! 2011/2013: msg_id u16 | attrs u16 | phone BCD[6]  | serial u16 | [total u16 | index u16]
//! 2019:      msg_id u16 | attrs u16 | ver u8 | phone BCD[10] | serial u16 | [total | index]
//! attrs:     bit 15 reserved | bit 14 version(2019) | bit 13 subpackage | bits 12-10 encryption | bits 9-0 body length
//! ```

use serde::Serialize;

use crate::{FrameError, Version};

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

impl Header {
    /// The header of a platform message to a terminal known by its phone and edition: the
    /// 2019 layout carries protocol-version byte 1; no encryption, not subpackaged.
    pub fn to_terminal(msg_id: u16, version: Version, phone: String, serial: u16) -> Header {
        Header {
            msg_id,
            version,
            protocol_version: if version == Version::V2019 { 1 } else { 0 },
            phone,
            serial,
            encryption: Encryption::None,
            package: None,
        }
    }

    /// The header of a platform message answering (or addressed to) the terminal that sent
    /// `self`: its header layout, protocol-version byte and phone, with our `msg_id` and
    /// `serial`; no encryption, not subpackaged.
    pub fn reply(&self, msg_id: u16, serial: u16) -> Header {
        Header {
            msg_id,
            version: self.version,
            protocol_version: self.protocol_version,
            phone: self.phone.clone(),
            serial,
            encryption: Encryption::None,
            package: None,
        }
    }
}

/// Attribute bit 14: the 2019 header layout (JT/T 808-2019 §4.4.3; notes §1).
const VERSION_BIT: u16 = 1 << 14;
/// Attribute bit 13: subpackage fields follow the serial.
const PACKAGE_BIT: u16 = 1 << 13;
/// Attribute bits 0-9: body length, so at most 1023 bytes per frame.
pub const MAX_BODY_LEN: usize = 0x03ff;

impl Encryption {
    /// The value of attribute bits 10-12.
    pub fn bits(self) -> u8 {
        match self {
            Encryption::None => 0,
            Encryption::Rsa => 1,
            Encryption::Unknown(b) => b & 0x07,
        }
    }

    /// The encryption named by attribute bits 10-12 (`bits` masked to 3 bits).
    pub fn from_bits(bits: u8) -> Encryption {
        match bits & 0x07 {
            0 => Encryption::None,
            1 => Encryption::Rsa,
            b => Encryption::Unknown(b),
        }
    }
}

fn be16(buf: &[u8], at: usize) -> Result<u16, FrameError> {
    match buf.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(FrameError::TooShort { len: buf.len() }),
    }
}

/// The phone field as text. BCD digits and the lowercase hex of the raw bytes are the same
/// string when every nibble is 0-9, so this is the hex in both cases, written straight
/// into an exact-size `String` (the frame's one allocation for the phone).
fn phone_string(raw: &[u8]) -> String {
    // A nibble as its ASCII hex digit (pushed as a one-byte `char`: no UTF-8 validation).
    let digit = |n: u8| char::from(if n < 10 { b'0' + n } else { b'a' - 10 + n });
    let mut phone = String::with_capacity(raw.len() * 2);
    for &b in raw {
        phone.push(digit(b >> 4));
        phone.push(digit(b & 0x0f));
    }
    phone
}

impl Header {
    /// Length of this header on the wire (unescaped): 12 or 17, plus 4 with a package.
    pub fn wire_len(&self) -> usize {
        let base = if self.version == Version::V2019 {
            17
        } else {
            12
        };
        base + if self.package.is_some() { 4 } else { 0 }
    }

    /// The body-attributes word for a body of `body_len` bytes (masked to 10 bits).
    pub fn attributes(&self, body_len: usize) -> u16 {
        let mut attrs = (body_len & MAX_BODY_LEN) as u16;
        attrs |= u16::from(self.encryption.bits()) << 10;
        if self.package.is_some() {
            attrs |= PACKAGE_BIT;
        }
        if self.version == Version::V2019 {
            attrs |= VERSION_BIT;
        }
        attrs
    }

    /// Reads the header at the start of `content` (unescaped header + body, without the
    /// checksum). Returns the header, its length and the declared body length.
    ///
    /// Quirk (notes §7.3): some 2013 terminals set bit 14. When the declared length fits
    /// the 12-byte layout exactly and not the 17-byte one, the 2013 layout is used.
    pub fn parse(content: &[u8]) -> Result<(Header, usize, usize), FrameError> {
        let msg_id = be16(content, 0)?;
        let attrs = be16(content, 2)?;
        let declared = usize::from(attrs) & MAX_BODY_LEN;
        let pkg_len = if attrs & PACKAGE_BIT != 0 { 4 } else { 0 };
        let fits = |hlen: usize| content.len() == hlen + pkg_len + declared;
        let v2019 = attrs & VERSION_BIT != 0 && (fits(17) || !fits(12));
        let (version, protocol_version, phone_at, phone_len) = if v2019 {
            let pv = *content
                .get(4)
                .ok_or(FrameError::TooShort { len: content.len() })?;
            (Version::V2019, pv, 5, 10)
        } else {
            (Version::V2013, 0, 4, 6)
        };
        let hlen = phone_at + phone_len + 2 + pkg_len;
        if content.len() < hlen {
            return Err(FrameError::TooShort { len: content.len() });
        }
        let raw_phone = content
            .get(phone_at..phone_at + phone_len)
            .ok_or(FrameError::TooShort { len: content.len() })?;
        let phone = phone_string(raw_phone);
        let serial = be16(content, phone_at + phone_len)?;
        let package = if pkg_len > 0 {
            Some(Package {
                total: be16(content, phone_at + phone_len + 2)?,
                index: be16(content, phone_at + phone_len + 4)?,
            })
        } else {
            None
        };
        let header = Header {
            msg_id,
            version,
            protocol_version,
            phone,
            serial,
            encryption: Encryption::from_bits((attrs >> 10) as u8),
            package,
        };
        Ok((header, hlen, declared))
    }

    /// Appends the unescaped header for a body of `body_len` bytes to `out`.
    ///
    /// The phone: an all-digit string is BCD, left-padded with zeros to the version's
    /// width (6 or 10 bytes); anything else is read as hex (a binary IMEI as
    /// [`Header::parse`] reports it), left-padded with zero bytes or cut to the width.
    pub fn encode(&self, body_len: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.msg_id.to_be_bytes());
        out.extend_from_slice(&self.attributes(body_len).to_be_bytes());
        if self.version == Version::V2019 {
            out.push(self.protocol_version);
        }
        let width = self.version.phone_len();
        match hex::decode(&self.phone) {
            Ok(raw) if !self.phone.bytes().all(|b| b.is_ascii_digit()) => {
                let cut = raw
                    .get(raw.len().saturating_sub(width)..)
                    .unwrap_or_default();
                out.resize(out.len() + width.saturating_sub(cut.len()), 0);
                out.extend_from_slice(cut);
            }
            _ => codecs::bcd::encode(&self.phone, width, out),
        }
        out.extend_from_slice(&self.serial.to_be_bytes());
        if let Some(p) = self.package {
            out.extend_from_slice(&p.total.to_be_bytes());
            out.extend_from_slice(&p.index.to_be_bytes());
        }
    }
}
