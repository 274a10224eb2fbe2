//! The frame: start marker, command unit, identifier, encryption, length, data, BCC.
//!
//! Framing is the same in both editions (GB/T 32960.3-2016 table 2, -2025 table 2 and
//! table B.1); only the start marker tells them apart, so the edition is a property of each
//! frame, not of the connection. This module checks and builds complete frames; finding
//! them in a byte stream is [`crate::codec`]'s job, and reading the data unit is
//! [`crate::msg`]'s.

use bytes::Bytes;
use serde::Serialize;

use crate::{Edition, FrameError};

/// Offset of the command byte (2016 and 2025 table 2).
pub const COMMAND_OFFSET: usize = 2;
/// Offset of the 17-byte identifier (VIN or another unique code).
pub const VIN_OFFSET: usize = 4;
/// Width of the identifier field.
pub const VIN_LEN: usize = 17;
/// Offset of the encryption byte.
pub const ENCRYPTION_OFFSET: usize = 21;
/// Offset of the data-unit length WORD.
pub const LENGTH_OFFSET: usize = 22;
/// Bytes before the data unit.
pub const HEADER_LEN: usize = 24;
/// Header plus BCC: a frame is `OVERHEAD + data length` bytes.
pub const OVERHEAD: usize = HEADER_LEN + 1;
/// Largest data-unit length the standard allows ("有效值范围 0~65531", table 2).
pub const MAX_DATA_LEN: usize = 65531;
/// Largest frame the standard allows.
pub const MAX_FRAME_LEN: usize = OVERHEAD + MAX_DATA_LEN;

/// The data-unit encryption byte (2016 table 2: 0x01 none, 0x02 RSA, 0x03 AES128, 0xFE
/// abnormal, 0xFF invalid; 2025 table 2 adds 0x04 SM2 and 0x05 SM4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    None,
    Rsa,
    Aes128,
    Sm2,
    Sm4,
    Abnormal,
    Invalid,
}

impl Encryption {
    /// Maps the wire byte; reserved values are `None` (the codec refuses such headers).
    pub fn from_byte(b: u8) -> Option<Encryption> {
        Some(match b {
            0x01 => Encryption::None,
            0x02 => Encryption::Rsa,
            0x03 => Encryption::Aes128,
            0x04 => Encryption::Sm2,
            0x05 => Encryption::Sm4,
            0xFE => Encryption::Abnormal,
            0xFF => Encryption::Invalid,
            _ => return None,
        })
    }

    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Encryption::None => 0x01,
            Encryption::Rsa => 0x02,
            Encryption::Aes128 => 0x03,
            Encryption::Sm2 => 0x04,
            Encryption::Sm4 => 0x05,
            Encryption::Abnormal => 0xFE,
            Encryption::Invalid => 0xFF,
        }
    }
}

/// The response flag (2016 table 4; 2025 table 4 adds 0x04..=0x07).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFlag {
    /// 0x01: the received information is correct.
    Success,
    /// 0x02: other error (format or content).
    Error,
    /// 0x03: VIN duplicate.
    VinDuplicate,
    /// 0x04 (2025): VIN unknown.
    VinUnknown,
    /// 0x05 (2025): signature verification failed.
    SignatureError,
    /// 0x06 (2025): data structure error.
    StructureError,
    /// 0x07 (2025): decryption error.
    DecryptionError,
    /// 0xFE: this frame is a command, not a response.
    Command,
}

impl ResponseFlag {
    /// Maps the wire byte; reserved values are `None`.
    pub fn from_byte(b: u8) -> Option<ResponseFlag> {
        Some(match b {
            0x01 => ResponseFlag::Success,
            0x02 => ResponseFlag::Error,
            0x03 => ResponseFlag::VinDuplicate,
            0x04 => ResponseFlag::VinUnknown,
            0x05 => ResponseFlag::SignatureError,
            0x06 => ResponseFlag::StructureError,
            0x07 => ResponseFlag::DecryptionError,
            0xFE => ResponseFlag::Command,
            _ => return None,
        })
    }

    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            ResponseFlag::Success => 0x01,
            ResponseFlag::Error => 0x02,
            ResponseFlag::VinDuplicate => 0x03,
            ResponseFlag::VinUnknown => 0x04,
            ResponseFlag::SignatureError => 0x05,
            ResponseFlag::StructureError => 0x06,
            ResponseFlag::DecryptionError => 0x07,
            ResponseFlag::Command => 0xFE,
        }
    }
}

/// The response flag of a command frame (the initiator's flag, table 4).
pub const FLAG_COMMAND: u8 = 0xFE;

/// One checked frame. `data` is the data unit exactly as sent (ciphertext when
/// `encryption` says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// `##` = 2016, `$$` = 2025.
    pub edition: Edition,
    /// Command id (0x01 login ... 0x82 terminal control).
    pub command: u8,
    /// Response flag: 0xFE for a command, 0x01 success, 0x02.. errors (see [`ResponseFlag`]).
    pub response: u8,
    /// The identifier with its NUL/space/0xFF padding stripped.
    pub vin: String,
    /// How the data unit is encrypted.
    pub encryption: Encryption,
    /// The data unit.
    pub data: Bytes,
}

/// XOR of every byte (the BCC of 2016/2025 table 2, computed from the command byte to the
/// last data byte).
pub fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// What the header of a frame says, read from its first 24 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub edition: Edition,
    pub command: u8,
    pub response: u8,
    pub vin_raw: [u8; VIN_LEN],
    pub encryption: Option<Encryption>,
    pub encryption_byte: u8,
    pub data_len: usize,
}

/// The edition whose start marker `bytes` begins with.
pub(crate) fn start_edition(b0: u8, b1: u8) -> Option<Edition> {
    match (b0, b1) {
        (b'#', b'#') => Some(Edition::V2016),
        (b'$', b'$') => Some(Edition::V2025),
        _ => None,
    }
}

/// Reads a header; `None` when fewer than 24 bytes or no start marker.
pub(crate) fn read_header(bytes: &[u8]) -> Option<Header> {
    let head = bytes.get(..HEADER_LEN)?;
    let [b0, b1, command, response, ..] = *head else {
        return None;
    };
    let edition = start_edition(b0, b1)?;
    let vin_raw = <[u8; VIN_LEN]>::try_from(head.get(VIN_OFFSET..VIN_OFFSET + VIN_LEN)?).ok()?;
    let encryption_byte = *head.get(ENCRYPTION_OFFSET)?;
    let encryption = Encryption::from_byte(encryption_byte);
    let len_bytes = head.get(LENGTH_OFFSET..HEADER_LEN)?;
    let data_len = match len_bytes {
        [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => return None,
    };
    Some(Header {
        edition,
        command,
        response,
        vin_raw,
        encryption,
        encryption_byte,
        data_len,
    })
}

impl Header {
    /// The identifier, padding stripped (see [`parse_vin`]).
    pub(crate) fn vin(&self) -> Result<String, FrameError> {
        parse_vin(&self.vin_raw)
    }

    /// The frame of `wire` (exactly `OVERHEAD + data_len` bytes, header already checked):
    /// BCC and identifier are checked here, `data` is a slice of `wire`.
    pub(crate) fn into_frame(self, wire: Bytes) -> Result<Frame, FrameError> {
        check_bcc(&wire)?;
        let vin = self.vin()?;
        Ok(Frame {
            edition: self.edition,
            command: self.command,
            response: self.response,
            vin,
            encryption: self.encryption.unwrap_or(Encryption::Invalid),
            data: wire.slice(HEADER_LEN..HEADER_LEN + self.data_len),
        })
    }

    /// The first header field the standard does not define, if any (reserved encryption
    /// byte or response flag); such a header is treated as a false start.
    pub(crate) fn check(&self) -> Result<(), FrameError> {
        if self.data_len > MAX_DATA_LEN {
            return Err(FrameError::LengthOverLimit { len: self.data_len });
        }
        if ResponseFlag::from_byte(self.response).is_none() {
            return Err(FrameError::BadHeader {
                field: "response",
                value: self.response,
            });
        }
        if self.encryption.is_none() {
            return Err(FrameError::BadHeader {
                field: "encryption",
                value: self.encryption_byte,
            });
        }
        Ok(())
    }
}

/// The identifier: padding (NUL, space, 0xFF) stripped from both ends, then printable ASCII
/// only (2016/2025 table 2: VIN per GB 16735, or another unique code; shorter codes are seen
/// padded with 0x00, e.g. SmallChi/JTNewEnergy's login test frame).
fn parse_vin(raw: &[u8]) -> Result<String, FrameError> {
    let trimmed = codecs::text::trim_padding(raw);
    let lead = raw.iter().position(|b| !matches!(b, 0 | b' ' | 0xFF));
    for (i, &b) in trimmed.iter().enumerate() {
        if !(0x20..=0x7E).contains(&b) {
            return Err(FrameError::BadVin {
                offset: VIN_OFFSET + lead.unwrap_or(0) + i,
                byte: b,
            });
        }
    }
    Ok(String::from_utf8_lossy(trimmed).into_owned())
}

impl Frame {
    /// A command frame (flag 0xFE) of `command` from `vin` with no data unit: what an
    /// answer needs to know of a frame whose data unit could not be read ([`crate::reply`]).
    pub fn command(edition: Edition, command: u8, vin: String) -> Frame {
        Frame {
            edition,
            command,
            response: FLAG_COMMAND,
            vin,
            encryption: Encryption::None,
            data: Bytes::new(),
        }
    }

    /// Checks one complete frame (exactly one, nothing before or after it) and copies its
    /// data unit. The stream codec uses the zero-copy path instead.
    ///
    /// Fewer bytes than the length field declares is [`FrameError::Truncated`] (the input
    /// ended inside the frame); more is [`FrameError::LengthMismatch`].
    pub fn parse(wire: &[u8]) -> Result<Frame, FrameError> {
        Frame::parse_bytes(Bytes::copy_from_slice(wire))
    }

    /// As [`Frame::parse`], keeping `data` as a slice of `wire` (no copy).
    pub fn parse_bytes(wire: Bytes) -> Result<Frame, FrameError> {
        if wire.len() < OVERHEAD {
            if let (Some(&b0), Some(&b1)) = (wire.first(), wire.get(1)) {
                if start_edition(b0, b1).is_none() {
                    return Err(FrameError::BadStart {
                        found: u16::from_be_bytes([b0, b1]),
                    });
                }
            }
            return Err(FrameError::TooShort {
                len: wire.len(),
                need: OVERHEAD,
            });
        }
        let Some(header) = read_header(&wire) else {
            let found = match (wire.first(), wire.get(1)) {
                (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]),
                _ => 0,
            };
            return Err(FrameError::BadStart { found });
        };
        header.check()?;
        let declared = OVERHEAD + header.data_len;
        // Fewer bytes than the header declares: the input ended inside the frame (the same
        // `truncated` the stream codec reports at end of input). More bytes: the frame is
        // complete and its length field disagrees with it.
        if wire.len() < declared {
            return Err(FrameError::Truncated {
                len: wire.len(),
                need: declared,
            });
        }
        if declared != wire.len() {
            return Err(FrameError::LengthMismatch {
                declared,
                actual: wire.len(),
            });
        }
        header.into_frame(wire)
    }

    /// The frame on the wire: the identifier right-padded with NUL to 17 bytes (longer ones
    /// cut at 17), a fresh length and BCC. A data unit above 65531 bytes cannot be framed;
    /// its length field is then wrong (the [`crate::Codec`] encoder refuses such frames).
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(OVERHEAD + self.data.len());
        self.write_wire(&mut out);
        out
    }

    /// Appends the wire bytes to `out`.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let m = self.edition.marker();
        out.extend_from_slice(&[m, m, self.command, self.response]);
        let vin = self.vin.as_bytes();
        let vin = vin.get(..VIN_LEN).unwrap_or(vin);
        out.extend_from_slice(vin);
        out.resize(out.len() + (VIN_LEN - vin.len()), 0);
        out.push(self.encryption.to_byte());
        out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.data);
        let sum = bcc(out.get(start + COMMAND_OFFSET..).unwrap_or(&[]));
        out.push(sum);
    }

    /// The response flag, typed (None for reserved values).
    pub fn response_flag(&self) -> Option<ResponseFlag> {
        ResponseFlag::from_byte(self.response)
    }

    /// Whether this frame is a command (flag 0xFE) and so may be answered.
    pub fn is_command(&self) -> bool {
        self.response == FLAG_COMMAND
    }
}

/// Checks the trailing BCC of a complete frame.
pub(crate) fn check_bcc(wire: &[u8]) -> Result<(), FrameError> {
    let (body, last) = match wire.split_last() {
        Some((last, body)) => (body, *last),
        None => return Err(FrameError::TooShort { len: 0, need: 25 }),
    };
    let actual = bcc(body.get(COMMAND_OFFSET..).unwrap_or(&[]));
    if actual != last {
        return Err(FrameError::BadBcc {
            expected: last,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // SmallChi/JTNewEnergy: src/JTNE.Protocol.Test/Package/JTNE_0x08_Package_DeviceTest.cs,
    // a 2016 time-calibration request, VIN "123456789" padded with 0x00.
    const TIME_CAL: &str = "232308FE3132333435363738390000000000000000010000C6";

    #[test]
    fn padded_vin_is_stripped_and_frame_rebuilds_byte_for_byte() {
        let wire = hex::decode(TIME_CAL).unwrap();
        let f = Frame::parse(&wire).unwrap();
        assert_eq!(f.vin, "123456789");
        assert_eq!(f.command, 0x08);
        assert_eq!(f.edition, Edition::V2016);
        assert!(f.data.is_empty());
        assert_eq!(f.to_wire(), wire);
    }

    #[test]
    fn flipped_bit_is_a_bad_bcc() {
        let mut wire = hex::decode(TIME_CAL).unwrap();
        if let Some(b) = wire.get_mut(5) {
            *b ^= 1;
        }
        assert!(matches!(
            Frame::parse(&wire),
            Err(FrameError::BadBcc { .. })
        ));
    }

    #[test]
    fn frame_cut_short_is_truncated_not_a_length_mismatch() {
        let mut wire = hex::decode(TIME_CAL).unwrap();
        wire.extend_from_slice(&[0; 6]);
        // Declare 6 data bytes, then hand over only 3 of them and no BCC.
        if let Some(b) = wire.get_mut(LENGTH_OFFSET + 1) {
            *b = 6;
        }
        let cut = wire.get(..HEADER_LEN + 3).unwrap();
        assert_eq!(
            Frame::parse(cut),
            Err(FrameError::Truncated { len: 27, need: 31 })
        );
    }

    #[test]
    fn extra_byte_is_a_length_mismatch() {
        let mut wire = hex::decode(TIME_CAL).unwrap();
        wire.push(0);
        assert_eq!(
            Frame::parse(&wire),
            Err(FrameError::LengthMismatch {
                declared: 25,
                actual: 26
            })
        );
    }
}
