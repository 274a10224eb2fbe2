//! Data units: one typed [`Message`] per command, decoded from and encoded to the data
//! unit of a [`Frame`].
//!
//! The same code reads what vehicles send and writes what the gateway (or the simulator,
//! speaking as a vehicle) sends, so there is one copy of each layout. The response flag
//! decides between a command body and an answer ([`Response`]: the standard's two answer
//! styles, "time only" and "echo", are both read). An encrypted data unit is never read as
//! plaintext: without a key it stays [`Message::Encrypted`] (see [`crate::crypto`]).
//!
//! Families, one file each: [`login`] (0x01), real-time/reissue (0x02/0x03, in
//! [`crate::realtime`]), [`logout`] (0x04 and 0x06), [`platform`] (0x05), [`heartbeat`]
//! (0x07 heartbeat and 0x08 time calibration), [`activation`] (2025 0x09 and 0x0A),
//! [`key_exchange`] (2025 0x0B), [`params`] (0x80 query, 0x81 set), [`control`] (0x82) and
//! [`response`] (answers).

pub mod activation;
pub mod control;
pub mod heartbeat;
pub mod key_exchange;
pub mod login;
pub mod logout;
pub mod params;
pub mod platform;
pub mod response;

use bytes::Bytes;
use codecs::time::LocalTime;
use serde::{Serialize, Serializer};

use crate::frame::{Encryption, Frame, ResponseFlag, FLAG_COMMAND};
use crate::realtime::Report;
use crate::{BodyError, Edition};

pub use activation::{Activation, ActivationResponse, Signature};
pub use control::{Control, ControlCommand, Upgrade};
pub use heartbeat::EmptyBody;
pub use key_exchange::KeyExchange;
pub use login::{Login, LoginBatteries};
pub use logout::Logout;
pub use params::{Param, ParamKind, ParamQuery, ParamSet, ParamValue};
pub use platform::PlatformLogin;
pub use response::Response;

/// Command ids (2016 table 3 / B.2; 2025 table 3 and table B.2), one table: the constants,
/// the list of known ids and their metric labels are generated from it, so a command is
/// named in one place (the gateway labels metrics with [`id::label`] and must keep the label
/// set bounded against whatever byte a vehicle sends).
pub mod id {
    codecs::id_table! { u8;
        /// 0x01 vehicle login.
        VEHICLE_LOGIN = 0x01, "0x01";
        /// 0x02 real-time information.
        REALTIME = 0x02, "0x02";
        /// 0x03 reissued information.
        REISSUE = 0x03, "0x03";
        /// 0x04 vehicle logout.
        VEHICLE_LOGOUT = 0x04, "0x04";
        /// 0x05 platform login.
        PLATFORM_LOGIN = 0x05, "0x05";
        /// 0x06 platform logout.
        PLATFORM_LOGOUT = 0x06, "0x06";
        /// 0x07 heartbeat.
        HEARTBEAT = 0x07, "0x07";
        /// 0x08 terminal time calibration.
        TIME_CALIBRATION = 0x08, "0x08";
        /// 0x09 activation (2025 table B.2).
        ACTIVATION = 0x09, "0x09";
        /// 0x0A activation response (2025 table B.2).
        ACTIVATION_RESPONSE = 0x0A, "0x0a";
        /// 0x0B data-unit key exchange (2025 table 3).
        KEY_EXCHANGE = 0x0B, "0x0b";
        /// 0x80 parameter query.
        QUERY_PARAMS = 0x80, "0x80";
        /// 0x81 parameter setting.
        SET_PARAMS = 0x81, "0x81";
        /// 0x82 terminal control.
        TERMINAL_CONTROL = 0x82, "0x82";
    }

    /// Real-time (0x02) or reissued (0x03) information: the data a vehicle reports, answered
    /// only when it is malformed (2016 §6.3.2).
    pub fn is_report(id: u8) -> bool {
        matches!(id, REALTIME | REISSUE)
    }

    /// A platform command (0x80 query, 0x81 set, 0x82 control): from a vehicle, its answer.
    pub fn is_platform_command(id: u8) -> bool {
        matches!(id, QUERY_PARAMS | SET_PARAMS | TERMINAL_CONTROL)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_label_is_its_id_in_lowercase_hex() {
            for &id in KNOWN {
                assert_eq!(label(id), format!("0x{id:02x}"));
            }
            assert_eq!(label(0x7F), "other");
        }
    }
}

/// A decoded data unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// 0x01 vehicle login.
    VehicleLogin(Login),
    /// 0x02 real-time information.
    Realtime(Report),
    /// 0x03 reissued information (same body as 0x02).
    Reissue(Report),
    /// 0x04 vehicle logout.
    VehicleLogout(Logout),
    /// 0x05 platform login.
    PlatformLogin(PlatformLogin),
    /// 0x06 platform logout.
    PlatformLogout(Logout),
    /// 0x07 heartbeat (empty body).
    Heartbeat(EmptyBody),
    /// 0x08 time calibration request (empty body).
    TimeCalibration(EmptyBody),
    /// 0x09 activation (2025 only).
    Activation(Activation),
    /// 0x0A activation response (2025 only).
    ActivationResponse(ActivationResponse),
    /// 0x0B data-unit key exchange (2025 only).
    KeyExchange(KeyExchange),
    /// 0x80 parameter query.
    QueryParams(ParamQuery),
    /// 0x81 parameter setting.
    SetParams(ParamSet),
    /// 0x82 terminal control.
    TerminalControl(Control),
    /// An answer (response flag other than 0xFE) to any command.
    Response(Response),
    /// A data unit still encrypted (no key, or an algorithm not decrypted here).
    Encrypted {
        command: u8,
        encryption: Encryption,
        #[serde(serialize_with = "hex_ser")]
        data: Bytes,
    },
    /// A command this crate has no layout for (reserved, platform-exchange custom, or
    /// a 2025-only command in a 2016 frame), body kept as is.
    Unknown {
        command: u8,
        #[serde(serialize_with = "hex_ser")]
        data: Bytes,
    },
}

fn edition_year(edition: Edition) -> u16 {
    match edition {
        Edition::V2016 => 2016,
        Edition::V2025 => 2025,
    }
}

impl Message {
    /// Decodes the data unit of `frame` (plaintext; an encrypted frame gives
    /// [`Message::Encrypted`], see [`crate::crypto::decode`] to decrypt first).
    pub fn decode(frame: &Frame) -> Result<Message, BodyError> {
        if frame.encryption != Encryption::None {
            return Ok(Message::Encrypted {
                command: frame.command,
                encryption: frame.encryption,
                data: frame.data.clone(),
            });
        }
        let ed = frame.edition;
        let data: &[u8] = &frame.data;
        if frame.response != FLAG_COMMAND {
            return match ResponseFlag::from_byte(frame.response) {
                Some(flag) => Ok(Message::Response(Response::decode(
                    frame.command,
                    flag,
                    data,
                    ed,
                )?)),
                None => Ok(Message::Unknown {
                    command: frame.command,
                    data: frame.data.clone(),
                }),
            };
        }
        let v2025 = ed == Edition::V2025;
        Ok(match frame.command {
            id::VEHICLE_LOGIN => Message::VehicleLogin(Login::decode(data, ed)?),
            id::REALTIME => Message::Realtime(Report::decode(data, ed)?),
            id::REISSUE => Message::Reissue(Report::decode(data, ed)?),
            id::VEHICLE_LOGOUT => Message::VehicleLogout(Logout::decode(id::VEHICLE_LOGOUT, data)?),
            id::PLATFORM_LOGIN => Message::PlatformLogin(PlatformLogin::decode(data)?),
            id::PLATFORM_LOGOUT => {
                Message::PlatformLogout(Logout::decode(id::PLATFORM_LOGOUT, data)?)
            }
            id::HEARTBEAT => Message::Heartbeat(EmptyBody::decode(data)),
            id::TIME_CALIBRATION => Message::TimeCalibration(EmptyBody::decode(data)),
            id::ACTIVATION if v2025 => Message::Activation(Activation::decode(data)?),
            id::ACTIVATION_RESPONSE if v2025 => {
                Message::ActivationResponse(ActivationResponse::decode(data)?)
            }
            id::KEY_EXCHANGE if v2025 => Message::KeyExchange(KeyExchange::decode(data)?),
            id::QUERY_PARAMS => Message::QueryParams(ParamQuery::decode(data)?),
            id::SET_PARAMS => Message::SetParams(ParamSet::decode(data, ed)?),
            id::TERMINAL_CONTROL => Message::TerminalControl(Control::decode(data)?),
            command => Message::Unknown {
                command,
                data: frame.data.clone(),
            },
        })
    }

    /// The command id this message travels under.
    pub fn command(&self) -> u8 {
        match self {
            Message::VehicleLogin(_) => id::VEHICLE_LOGIN,
            Message::Realtime(_) => id::REALTIME,
            Message::Reissue(_) => id::REISSUE,
            Message::VehicleLogout(_) => id::VEHICLE_LOGOUT,
            Message::PlatformLogin(_) => id::PLATFORM_LOGIN,
            Message::PlatformLogout(_) => id::PLATFORM_LOGOUT,
            Message::Heartbeat(_) => id::HEARTBEAT,
            Message::TimeCalibration(_) => id::TIME_CALIBRATION,
            Message::Activation(_) => id::ACTIVATION,
            Message::ActivationResponse(_) => id::ACTIVATION_RESPONSE,
            Message::KeyExchange(_) => id::KEY_EXCHANGE,
            Message::QueryParams(_) => id::QUERY_PARAMS,
            Message::SetParams(_) => id::SET_PARAMS,
            Message::TerminalControl(_) => id::TERMINAL_CONTROL,
            Message::Response(r) => r.command,
            Message::Encrypted { command, .. } | Message::Unknown { command, .. } => *command,
        }
    }

    /// The response flag byte of a frame carrying this message (0xFE but for answers).
    pub fn response_flag(&self) -> u8 {
        match self {
            Message::Response(r) => r.flag.to_byte(),
            _ => FLAG_COMMAND,
        }
    }

    /// The data unit of this message in the given edition.
    pub fn encode_data(&self, edition: Edition) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        let only_2025 = |command: u8| {
            if edition == Edition::V2025 {
                Ok(())
            } else {
                Err(BodyError::WrongEdition {
                    command,
                    edition: edition_year(edition),
                })
            }
        };
        match self {
            Message::VehicleLogin(m) => m.encode(edition, &mut out)?,
            Message::Realtime(r) | Message::Reissue(r) => r.encode(edition, &mut out),
            Message::VehicleLogout(m) | Message::PlatformLogout(m) => m.encode(&mut out),
            Message::PlatformLogin(m) => m.encode(&mut out)?,
            Message::Heartbeat(m) | Message::TimeCalibration(m) => m.encode(&mut out),
            Message::Activation(m) => {
                only_2025(id::ACTIVATION)?;
                m.encode(&mut out)?
            }
            Message::ActivationResponse(m) => {
                only_2025(id::ACTIVATION_RESPONSE)?;
                m.encode(&mut out)
            }
            Message::KeyExchange(m) => {
                only_2025(id::KEY_EXCHANGE)?;
                m.encode(&mut out)?
            }
            Message::QueryParams(m) => m.encode(&mut out)?,
            Message::SetParams(m) => m.encode(edition, &mut out)?,
            Message::TerminalControl(m) => m.encode(&mut out)?,
            Message::Response(m) => m.encode(edition, &mut out)?,
            Message::Encrypted { data, .. } | Message::Unknown { data, .. } => {
                out.extend_from_slice(data)
            }
        }
        Ok(out)
    }

    /// A frame carrying this message: plaintext (but for [`Message::Encrypted`], which
    /// keeps its encryption byte), response flag from [`Message::response_flag`].
    pub fn to_frame(&self, edition: Edition, vin: &str) -> Result<Frame, BodyError> {
        let data = self.encode_data(edition)?;
        if data.len() > crate::frame::MAX_DATA_LEN {
            return Err(BodyError::OutOfRange {
                command: self.command(),
                field: "data unit length",
                value: data.len(),
                max: crate::frame::MAX_DATA_LEN,
            });
        }
        let encryption = match self {
            Message::Encrypted { encryption, .. } => *encryption,
            _ => Encryption::None,
        };
        Ok(Frame {
            edition,
            command: self.command(),
            response: self.response_flag(),
            vin: vin.to_string(),
            encryption,
            data: Bytes::from(data),
        })
    }
}

/// Serializes bytes as a lowercase hex string.
pub(crate) fn hex_ser<T: AsRef<[u8]>, S: Serializer>(b: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b.as_ref()))
}

/// Appends the six time bytes YY MM DD hh mm ss (2016/2025 table 5).
pub(crate) fn put_time(out: &mut Vec<u8>, t: &LocalTime) {
    out.extend_from_slice(&[t.year, t.month, t.day, t.hour, t.minute, t.second]);
}

/// Appends `s` (GBK) into exactly `width` bytes, NUL-padded.
pub(crate) fn put_fixed(
    out: &mut Vec<u8>,
    s: &str,
    width: usize,
    pad: u8,
    command: u8,
    field: &'static str,
) -> Result<(), BodyError> {
    codecs::text::encode_fixed(s, width, pad, out).map_err(|_| BodyError::OutOfRange {
        command,
        field,
        value: codecs::text::encode(s).len(),
        max: width,
    })
}

/// A bounds-checked cursor over a data unit; every short read names the command.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    command: u8,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], command: u8) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            command,
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        let end = self.pos.saturating_add(n);
        let out = self.buf.get(self.pos..end).ok_or(BodyError::TooShort {
            command: self.command,
            len: self.buf.len(),
            need: end,
        })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BodyError> {
        match self.bytes(1)? {
            [b] => Ok(*b),
            _ => Err(self.short(1)),
        }
    }

    pub(crate) fn u16(&mut self) -> Result<u16, BodyError> {
        match self.bytes(2)? {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(self.short(2)),
        }
    }

    pub(crate) fn time(&mut self) -> Result<LocalTime, BodyError> {
        match self.bytes(6)? {
            [year, month, day, hour, minute, second] => Ok(LocalTime {
                year: *year,
                month: *month,
                day: *day,
                hour: *hour,
                minute: *minute,
                second: *second,
            }),
            _ => Err(self.short(6)),
        }
    }

    /// Fixed-width text, padding stripped.
    pub(crate) fn text(&mut self, n: usize) -> Result<String, BodyError> {
        Ok(codecs::text::decode_fixed(self.bytes(n)?))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn finish(&self) -> Result<(), BodyError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(BodyError::TrailingBytes {
                command: self.command,
                extra,
            }),
        }
    }

    fn short(&self, n: usize) -> BodyError {
        BodyError::TooShort {
            command: self.command,
            len: self.buf.len(),
            need: self.pos + n,
        }
    }
}
