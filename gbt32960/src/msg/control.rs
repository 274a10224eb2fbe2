//! 0x82 terminal control: time, control id, parameters (2016 table B.14..B.17; 2025 table
//! B.10..B.13).
//!
//! Control ids: 0x01 remote upgrade, 0x02 shutdown, 0x03 reset, 0x04 factory reset,
//! 0x05 disconnect the data link, 0x06 alarm/warning (level + text), 0x07 open the
//! sampling-inspection link; 0x00, 0x08..=0x7F reserved and 0x80..=0xFE user defined are
//! kept as raw [`ControlCommand::Other`].
//!
//! Upgrade parameters are `;`-separated, an absent one left empty. The standard's text
//! (2025 table B.11) lists the URL first, its field table (B.12) second to last; this
//! module follows the field table, as EMQX's `emqx_gbt32960_frame` does:
//! `APN;user;password;address(6);port(WORD);manufacturer(4);hardware(5);firmware(5);URL;
//! timeout(WORD, minutes)`. Address, port and timeout are binary inside a text list, so
//! they are read by width: a binary field is taken whole when its width is followed by a
//! `;` (or, for the timeout, ends the body), and is absent when a `;` comes first. A body
//! that does not read in that order is read URL first (the order of the table B.11 text);
//! it is always written in field-table order.

use codecs::time::LocalTime;
use serde::{Serialize, Serializer};

use super::{hex_ser, id, put_time, Reader};
use crate::BodyError;

const SEP: u8 = b';';
const C: u8 = id::TERMINAL_CONTROL;

/// A terminal control command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    /// Command time.
    pub time: LocalTime,
    /// What to do.
    pub command: ControlCommand,
}

/// The control ids of table B.11 (2025) / B.15 (2016).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum ControlCommand {
    /// 0x01 remote upgrade.
    Upgrade(Upgrade),
    /// 0x02 terminal shutdown.
    Shutdown,
    /// 0x03 terminal reset.
    Reset,
    /// 0x04 restore factory settings.
    FactoryReset,
    /// 0x05 disconnect the data link.
    Disconnect,
    /// 0x06 alarm/warning: level (0 none .. 3, 2025 up to 4; 0xFF invalid) and text.
    Alarm { level: u8, text: String },
    /// 0x07 open the sampling-inspection link.
    OpenSamplingLink,
    /// Any other id, parameters as sent.
    Other {
        id: u8,
        #[serde(serialize_with = "hex_ser")]
        params: Vec<u8>,
    },
}

/// Remote-upgrade parameters (2025 table B.12; 2016 table B.16).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Upgrade {
    /// Dial-up access point name.
    pub apn: String,
    /// Dial-up user.
    pub user: String,
    /// Dial-up password.
    pub password: String,
    /// Server address, 6 bytes (IPv4: first two 0).
    #[serde(serialize_with = "address_ser")]
    pub address: Option<[u8; 6]>,
    /// Server port.
    pub port: Option<u16>,
    /// Terminal manufacturer id (4 characters).
    pub manufacturer: String,
    /// Hardware version (5 characters).
    pub hardware_version: String,
    /// Firmware version (5 characters).
    pub firmware_version: String,
    /// Full upgrade URL.
    pub url: String,
    /// Minutes within which the terminal must reconnect to the platform.
    pub timeout_min: Option<u16>,
}

fn address_ser<S: Serializer>(a: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        None => s.serialize_none(),
        Some([0, 0, a, b, c, d]) => s.serialize_str(&format!("{a}.{b}.{c}.{d}")),
        Some(raw) => s.serialize_str(&hex::encode(raw)),
    }
}

impl ControlCommand {
    /// The control id byte.
    pub fn id(&self) -> u8 {
        match self {
            ControlCommand::Upgrade(_) => 0x01,
            ControlCommand::Shutdown => 0x02,
            ControlCommand::Reset => 0x03,
            ControlCommand::FactoryReset => 0x04,
            ControlCommand::Disconnect => 0x05,
            ControlCommand::Alarm { .. } => 0x06,
            ControlCommand::OpenSamplingLink => 0x07,
            ControlCommand::Other { id, .. } => *id,
        }
    }
}

impl Control {
    pub(crate) fn decode(data: &[u8]) -> Result<Control, BodyError> {
        let mut r = Reader::new(data, C);
        let time = r.time()?;
        let cid = r.u8()?;
        let params = r.rest();
        let empty = |c: ControlCommand| {
            if params.is_empty() {
                Ok(c)
            } else {
                Err(BodyError::TrailingBytes {
                    command: C,
                    extra: params.len(),
                })
            }
        };
        let command = match cid {
            0x01 => ControlCommand::Upgrade(Upgrade::decode(params)?),
            0x02 => empty(ControlCommand::Shutdown)?,
            0x03 => empty(ControlCommand::Reset)?,
            0x04 => empty(ControlCommand::FactoryReset)?,
            0x05 => empty(ControlCommand::Disconnect)?,
            0x06 => match params.split_first() {
                Some((level, text)) => ControlCommand::Alarm {
                    level: *level,
                    text: codecs::text::decode(text),
                },
                None => {
                    return Err(BodyError::TooShort {
                        command: C,
                        len: data.len(),
                        need: data.len() + 1,
                    })
                }
            },
            0x07 => empty(ControlCommand::OpenSamplingLink)?,
            other => ControlCommand::Other {
                id: other,
                params: params.to_vec(),
            },
        };
        Ok(Control { time, command })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        put_time(out, &self.time);
        out.push(self.command.id());
        match &self.command {
            ControlCommand::Upgrade(u) => u.encode(out)?,
            ControlCommand::Alarm { level, text } => {
                out.push(*level);
                out.extend_from_slice(&codecs::text::encode(text));
            }
            ControlCommand::Other { params, .. } => out.extend_from_slice(params),
            _ => {}
        }
        Ok(())
    }
}

/// Splits at the next `;`: (field, rest after the separator).
fn text_field<'a>(rest: &'a [u8], field: &'static str) -> Result<(String, &'a [u8]), BodyError> {
    let at = rest
        .iter()
        .position(|&b| b == SEP)
        .ok_or(BodyError::Missing { command: C, field })?;
    let (f, tail) = rest.split_at(at);
    Ok((codecs::text::decode(f), tail.get(1..).unwrap_or(&[])))
}

/// A binary field of `width` bytes followed by `;`, or absent (`;` first).
fn binary_field<'a>(
    rest: &'a [u8],
    width: usize,
    field: &'static str,
) -> Result<(Option<&'a [u8]>, &'a [u8]), BodyError> {
    if rest.get(width) == Some(&SEP) {
        let (f, tail) = rest.split_at(width);
        return Ok((Some(f), tail.get(1..).unwrap_or(&[])));
    }
    if rest.first() == Some(&SEP) {
        return Ok((None, rest.get(1..).unwrap_or(&[])));
    }
    Err(BodyError::Missing { command: C, field })
}

impl Upgrade {
    /// Field-table order first; a body that does not read that way is tried in the order
    /// of the control-id table's text (URL first), and the first error is reported if
    /// neither reads.
    fn decode(p: &[u8]) -> Result<Upgrade, BodyError> {
        Upgrade::decode_table_order(p).or_else(|e| Upgrade::decode_url_first(p).map_err(|_| e))
    }

    /// `URL;APN;user;password;address(6);port(WORD);manufacturer;hardware;firmware;
    /// timeout(WORD)` (2025 table B.11 text, 2016 table B.15 text).
    fn decode_url_first(p: &[u8]) -> Result<Upgrade, BodyError> {
        let (url, p) = text_field(p, "upgrade url")?;
        let (apn, p) = text_field(p, "upgrade apn")?;
        let (user, p) = text_field(p, "upgrade user")?;
        let (password, p) = text_field(p, "upgrade password")?;
        let (address, p) = binary_field(p, 6, "upgrade address")?;
        let (port, p) = binary_field(p, 2, "upgrade port")?;
        let (manufacturer, p) = text_field(p, "upgrade manufacturer")?;
        let (hardware_version, p) = text_field(p, "upgrade hardware version")?;
        let (firmware_version, p) = text_field(p, "upgrade firmware version")?;
        let timeout_min = match p {
            [] => None,
            [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
            _ => {
                return Err(BodyError::Missing {
                    command: C,
                    field: "upgrade timeout",
                })
            }
        };
        Ok(Upgrade {
            apn,
            user,
            password,
            address: address.and_then(|a| <[u8; 6]>::try_from(a).ok()),
            port: port
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .map(u16::from_be_bytes),
            manufacturer,
            hardware_version,
            firmware_version,
            url,
            timeout_min,
        })
    }

    fn decode_table_order(p: &[u8]) -> Result<Upgrade, BodyError> {
        let (apn, p) = text_field(p, "upgrade apn")?;
        let (user, p) = text_field(p, "upgrade user")?;
        let (password, p) = text_field(p, "upgrade password")?;
        let (address, p) = binary_field(p, 6, "upgrade address")?;
        let (port, p) = binary_field(p, 2, "upgrade port")?;
        let (manufacturer, p) = text_field(p, "upgrade manufacturer")?;
        let (hardware_version, p) = text_field(p, "upgrade hardware version")?;
        let (firmware_version, p) = text_field(p, "upgrade firmware version")?;
        // URL, then `;` and the 2-byte timeout (or nothing after the `;`).
        let n = p.len();
        let (url, timeout) = if n >= 3 && p.get(n - 3) == Some(&SEP) {
            (p.get(..n - 3).unwrap_or(&[]), p.get(n - 2..))
        } else if p.last() == Some(&SEP) {
            (p.get(..n - 1).unwrap_or(&[]), None)
        } else {
            (p, None)
        };
        let word = |b: Option<&[u8]>| match b {
            Some([hi, lo]) => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        };
        Ok(Upgrade {
            apn,
            user,
            password,
            address: address.and_then(|a| <[u8; 6]>::try_from(a).ok()),
            port: word(port),
            manufacturer,
            hardware_version,
            firmware_version,
            url: codecs::text::decode(url),
            timeout_min: word(timeout),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let text = |out: &mut Vec<u8>, s: &str, field: &'static str| {
            let b = codecs::text::encode(s);
            if b.contains(&SEP) {
                return Err(BodyError::BadText { command: C, field });
            }
            out.extend_from_slice(&b);
            out.push(SEP);
            Ok(())
        };
        text(out, &self.apn, "upgrade apn")?;
        text(out, &self.user, "upgrade user")?;
        text(out, &self.password, "upgrade password")?;
        if let Some(a) = &self.address {
            out.extend_from_slice(a);
        }
        out.push(SEP);
        if let Some(p) = self.port {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out.push(SEP);
        text(out, &self.manufacturer, "upgrade manufacturer")?;
        text(out, &self.hardware_version, "upgrade hardware version")?;
        text(out, &self.firmware_version, "upgrade firmware version")?;
        text(out, &self.url, "upgrade url")?;
        if let Some(t) = self.timeout_min {
            out.extend_from_slice(&t.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_with_the_url_first_is_read_too() {
        let mut body = vec![25, 11, 1, 8, 0, 0, 0x01];
        body.extend_from_slice(b"ftp://u.example/fw.bin;cmnet;user;pass;");
        body.extend_from_slice(&[0, 0, 10, 0, 0, 1, b';', 0x00, 0x15, b';']);
        body.extend_from_slice(b"ABCD;HW001;FW002;");
        body.extend_from_slice(&[0x00, 0x3C]);
        let c = Control::decode(&body).unwrap();
        let ControlCommand::Upgrade(u) = &c.command else {
            panic!("{c:?}")
        };
        assert_eq!(u.url, "ftp://u.example/fw.bin");
        assert_eq!(
            (u.apn.as_str(), u.user.as_str(), u.password.as_str()),
            ("cmnet", "user", "pass")
        );
        assert_eq!(u.address, Some([0, 0, 10, 0, 0, 1]));
        assert_eq!((u.port, u.timeout_min), (Some(21), Some(60)));
        assert_eq!(
            (
                u.manufacturer.as_str(),
                u.hardware_version.as_str(),
                u.firmware_version.as_str()
            ),
            ("ABCD", "HW001", "FW002")
        );
        // Written back in field-table order, which reads to the same command.
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        assert_eq!(Control::decode(&out).unwrap(), c);
    }

    #[test]
    fn upgrade_fields_round_trip_even_with_separator_bytes_in_binary_fields() {
        let u = Upgrade {
            apn: "cmnet".into(),
            user: "u".into(),
            password: "p".into(),
            address: Some([0, 0, 10, 59, 59, 1]),
            port: Some(0x3B3B),
            manufacturer: "ABCD".into(),
            hardware_version: "1.0.0".into(),
            firmware_version: "2.0.0".into(),
            url: "ftp://x/fw.bin".into(),
            timeout_min: Some(0x003B),
        };
        let c = Control {
            time: LocalTime::default(),
            command: ControlCommand::Upgrade(u),
        };
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        assert_eq!(Control::decode(&out).unwrap(), c);
    }
}
