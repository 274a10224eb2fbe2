//! Who a raw connection is: the vehicle id from a login frame, a field of every frame, or
//! the peer's address.
//!
//! Whatever the mode, the result passes [`crate::vehicle_id::validate`] (`[A-Za-z0-9_-]`,
//! at most 64 characters) because it becomes an MQTT topic level. [`Identifier`] is the
//! per-connection state the gateway keeps: it says for each frame whether it was the login
//! (consume it), the frame that identified the connection (publish it), or plain data.

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::config::{FieldIdentity, FirstFrameIdentity, IdEncoding, IdPattern, Identity};
use crate::vehicle_id;

/// Why no vehicle id could be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    /// The id's byte range is not inside the frame.
    #[error("id bytes {start}..{end} are outside the {len}-byte frame")]
    OutOfRange {
        start: usize,
        end: usize,
        len: usize,
    },
    /// The id bytes are not valid in the configured encoding.
    #[error("id bytes are not valid {encoding}: byte 0x{byte:02x} at offset {offset}")]
    BadEncoding {
        encoding: &'static str,
        offset: usize,
        byte: u8,
    },
    /// The decoded id fails the configured `pattern`.
    #[error("id {id:?} does not match the pattern: {reason}")]
    PatternMismatch { id: String, reason: &'static str },
    /// The decoded id cannot be a vehicle id (topic level).
    #[error("{0}")]
    InvalidId(#[from] crate::Error),
    /// A frame names another vehicle than the one the connection identified as (`field`).
    #[error("frame carries vehicle id {got:?} but the connection is {expected:?}")]
    Changed { expected: String, got: String },
}

impl IdentityError {
    /// A snake_case label for metrics.
    pub const fn reason(&self) -> &'static str {
        match self {
            IdentityError::OutOfRange { .. } => "out_of_range",
            IdentityError::BadEncoding { .. } => "bad_encoding",
            IdentityError::PatternMismatch { .. } => "pattern_mismatch",
            IdentityError::InvalidId(_) => "invalid_id",
            IdentityError::Changed { .. } => "id_changed",
        }
    }
}

/// Decodes id bytes as `encoding` (not yet checked against the vehicle id rules).
///
/// - `ascii`: NUL and ASCII whitespace around the id are trimmed (padding, `\r`); what
///   remains must be printable ASCII.
/// - `hex`: lowercase hex of every byte.
/// - `bcd`: two digits per byte, leading zeros kept; `F` nibbles are accepted only as
///   trailing padding and dropped.
pub fn decode_id(bytes: &[u8], encoding: IdEncoding) -> Result<String, IdentityError> {
    match encoding {
        IdEncoding::Ascii => {
            let pad = |b: &u8| *b == 0 || b.is_ascii_whitespace();
            let start = bytes.iter().position(|b| !pad(b)).unwrap_or(bytes.len());
            let end = bytes
                .iter()
                .rposition(|b| !pad(b))
                .map_or(start, |e| e.saturating_add(1));
            let text = bytes.get(start..end).unwrap_or_default();
            if let Some(i) = text.iter().position(|b| !b.is_ascii_graphic()) {
                return Err(IdentityError::BadEncoding {
                    encoding: "ascii",
                    offset: start.saturating_add(i),
                    byte: text.get(i).copied().unwrap_or_default(),
                });
            }
            Ok(text.iter().map(|&b| char::from(b)).collect())
        }
        IdEncoding::Hex => Ok(hex::encode(bytes)),
        IdEncoding::Bcd => {
            let mut s = String::with_capacity(bytes.len().saturating_mul(2));
            let mut padding = false;
            for (offset, &byte) in bytes.iter().enumerate() {
                for nibble in [byte >> 4, byte & 0x0f] {
                    match nibble {
                        0..=9 if !padding => s.push(char::from(b'0' + nibble)),
                        0x0f => padding = true,
                        _ => {
                            return Err(IdentityError::BadEncoding {
                                encoding: "bcd",
                                offset,
                                byte,
                            })
                        }
                    }
                }
            }
            Ok(s)
        }
    }
}

fn check_pattern(id: &str, p: &IdPattern) -> Result<(), IdentityError> {
    let reason = if id.len() < p.min_len {
        Some("shorter than min_len")
    } else if id.len() > p.max_len {
        Some("longer than max_len")
    } else if !id.bytes().all(|b| p.charset.allows(b)) {
        Some("a character outside the charset")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(IdentityError::PatternMismatch {
            id: id.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

fn slice(frame: &[u8], start: usize, end: usize) -> Result<&[u8], IdentityError> {
    frame.get(start..end).ok_or(IdentityError::OutOfRange {
        start,
        end,
        len: frame.len(),
    })
}

impl FirstFrameIdentity {
    /// The vehicle id in a login frame.
    pub fn extract(&self, frame: &[u8]) -> Result<String, IdentityError> {
        let (start, end) = match self.range {
            Some(r) => (r.start, r.end.unwrap_or(frame.len().max(r.start))),
            None => (0, frame.len()),
        };
        let id = decode_id(slice(frame, start, end)?, self.encoding)?;
        if let Some(p) = &self.pattern {
            check_pattern(&id, p)?;
        }
        vehicle_id::validate(&id)?;
        Ok(id)
    }
}

impl FieldIdentity {
    /// The vehicle id in a frame's `offset..offset+len`.
    pub fn extract(&self, frame: &[u8]) -> Result<String, IdentityError> {
        let end = self.offset.saturating_add(self.len);
        let id = decode_id(slice(frame, self.offset, end)?, self.encoding)?;
        vehicle_id::validate(&id)?;
        Ok(id)
    }
}

/// The vehicle id of a peer address: its IP with `.` and `:` replaced by `-`
/// (`10.0.0.5:4000` -> `10-0-0-5`, `[2001:db8::1]:4000` -> `2001-db8--1`). The port is not
/// part of it (it changes on every reconnect); an IPv4-mapped IPv6 address is written as
/// IPv4.
pub fn peer_id(peer: SocketAddr) -> String {
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip.to_string().replace(['.', ':'], "-")
}

/// What a frame turned out to be for the connection's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRole {
    /// `first_frame`: the login that identified the vehicle. Consume it; do not publish.
    Login,
    /// `field`: the first frame, which identified the vehicle. Authorize, then publish it.
    Identified,
    /// A frame of the already identified vehicle: publish it.
    Data,
}

/// The identity state of one connection.
#[derive(Debug, Clone)]
pub struct Identifier {
    identity: Identity,
    peer: SocketAddr,
    vehicle_id: Option<String>,
}

impl Identifier {
    /// The state for a new connection from `peer`; in `peer` mode it is identified at once.
    pub fn new(identity: &Identity, peer: SocketAddr) -> Self {
        let vehicle_id = matches!(identity, Identity::Peer).then(|| peer_id(peer));
        Identifier {
            identity: identity.clone(),
            peer,
            vehicle_id,
        }
    }

    /// The connection's vehicle id, once known.
    pub fn vehicle_id(&self) -> Option<&str> {
        self.vehicle_id.as_deref()
    }

    /// Classifies a frame, reading the id from it when the mode says so.
    ///
    /// An error leaves the state as it was: in `first_frame` mode a failed login should
    /// close the connection; in `field` mode the frame is dropped (and counted).
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<FrameRole, IdentityError> {
        match (&self.identity, &self.vehicle_id) {
            (Identity::FirstFrame(f), None) => {
                self.vehicle_id = Some(f.extract(frame)?);
                Ok(FrameRole::Login)
            }
            (Identity::Field(f), known) => {
                let id = f.extract(frame)?;
                match known {
                    None => {
                        self.vehicle_id = Some(id);
                        Ok(FrameRole::Identified)
                    }
                    Some(k) if *k == id => Ok(FrameRole::Data),
                    Some(k) => Err(IdentityError::Changed {
                        expected: k.clone(),
                        got: id,
                    }),
                }
            }
            (Identity::Peer, None) => {
                self.vehicle_id = Some(peer_id(self.peer));
                Ok(FrameRole::Data)
            }
            (Identity::FirstFrame(_) | Identity::Peer, Some(_)) => Ok(FrameRole::Data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_keeps_leading_zeros_and_drops_trailing_f_padding() {
        assert_eq!(
            decode_id(&[0x01, 0x38, 0x00], IdEncoding::Bcd).as_deref(),
            Ok("013800")
        );
        assert_eq!(
            decode_id(&[0x12, 0x3f, 0xff], IdEncoding::Bcd).as_deref(),
            Ok("123")
        );
        assert!(decode_id(&[0xf1], IdEncoding::Bcd).is_err());
        assert!(decode_id(&[0x1a], IdEncoding::Bcd).is_err());
    }

    #[test]
    fn ascii_trims_padding_and_refuses_control_bytes() {
        assert_eq!(
            decode_id(b" VIN1\r\0\0", IdEncoding::Ascii).as_deref(),
            Ok("VIN1")
        );
        assert!(matches!(
            decode_id(b"a\x01b", IdEncoding::Ascii),
            Err(IdentityError::BadEncoding { offset: 1, .. })
        ));
    }

    #[test]
    fn peer_ids() {
        let p = |s: &str| peer_id(s.parse().expect("addr"));
        assert_eq!(p("10.0.0.5:4000"), "10-0-0-5");
        assert_eq!(p("[2001:db8::1]:4000"), "2001-db8--1");
        assert_eq!(p("[::ffff:10.0.0.5]:1"), "10-0-0-5");
    }
}
