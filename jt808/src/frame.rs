//! One JT/T 808 frame: header, body and checksum, between 0x7E delimiters.
//!
//! ```text
//! 7E | escaped( header | body | xor(header ++ body) ) | 7E
//! ```
//!
//! The checksum is the XOR of every byte from the message id to the end of the body,
//! computed before escaping (JT/T 808-2013 §4.4.1; notes §1). Parsing works on the
//! unescaped content; the body stays a `Bytes` slice of it, so a frame costs one buffer.
//! An encrypted frame is still returned (with its [`Encryption`]) so the gateway can
//! refuse it with a reply; [`Frame::plain_body`] is the only way to the body for parsing
//! and it refuses ciphertext with [`FrameError::Encrypted`].

use std::ops::Range;

use bytes::{Buf, Bytes};

use crate::escape::escape_into;
use crate::header::{Encryption, Header};
use crate::FrameError;

/// What to do with a frame whose checksum or declared body length is wrong.
///
/// Some real device captures fail both checks (notes §7.2); Traccar accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumPolicy {
    /// Refuse: the codec yields `BadChecksum` / `LengthMismatch` items.
    #[default]
    Strict,
    /// Accept: the frame has `checksum_ok == false` (count it); on a length mismatch the
    /// body is every byte between header and checksum.
    Lenient,
}

/// A decoded (or to-be-sent) frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    /// The (unescaped) body; its length is the header's body length.
    pub body: Bytes,
    /// False only for frames accepted under [`ChecksumPolicy::Lenient`] with a bad checksum.
    pub checksum_ok: bool,
}

/// XOR of all bytes (the JT/T 808 check code).
pub fn checksum(bytes: &[u8]) -> u8 {
    // Eight bytes at a time, then fold the word: XOR is associative and byte-wise.
    let mut chunks = bytes.chunks_exact(8);
    let mut word = 0u64;
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        word ^= u64::from_le_bytes(b);
    }
    let tail = chunks.remainder().iter().fold(0u8, |acc, b| acc ^ b);
    word.to_le_bytes().iter().fold(tail, |acc, b| acc ^ b)
}

impl Frame {
    /// A frame to send.
    pub fn new(header: Header, body: impl Into<Bytes>) -> Frame {
        Frame {
            header,
            body: body.into(),
            checksum_ok: true,
        }
    }

    /// Parses unescaped frame content (no 0x7E delimiters): header, body, checksum.
    pub fn parse(unescaped: &[u8], policy: ChecksumPolicy) -> Result<Frame, FrameError> {
        Frame::parse_bytes(Bytes::copy_from_slice(unescaped), policy)
    }

    /// [`Frame::parse`] without a copy: the body is a slice of `unescaped`.
    pub fn parse_bytes(unescaped: Bytes, policy: ChecksumPolicy) -> Result<Frame, FrameError> {
        let (header, body, checksum_ok) = Frame::parse_parts(&unescaped, policy)?;
        let mut body_bytes = unescaped;
        body_bytes.truncate(body.end);
        body_bytes.advance(body.start);
        Ok(Frame {
            header,
            body: body_bytes,
            checksum_ok,
        })
    }

    /// The checks of [`Frame::parse`] on borrowed content: the header, the body's range
    /// in `unescaped`, and whether the checksum matched (always true under `Strict`).
    pub(crate) fn parse_parts(
        unescaped: &[u8],
        policy: ChecksumPolicy,
    ) -> Result<(Header, Range<usize>, bool), FrameError> {
        let Some((&expected, content)) = unescaped.split_last() else {
            return Err(FrameError::TooShort { len: 0 });
        };
        if content.len() < 12 {
            return Err(FrameError::TooShort {
                len: unescaped.len(),
            });
        }
        let (header, hlen, declared) = Header::parse(content)?;
        let actual = content.len() - hlen;
        let sum = checksum(content);
        let checksum_ok = sum == expected;
        if policy == ChecksumPolicy::Strict {
            if !checksum_ok {
                return Err(FrameError::BadChecksum {
                    expected,
                    actual: sum,
                });
            }
            if actual != declared {
                return Err(FrameError::LengthMismatch { declared, actual });
            }
        }
        Ok((header, hlen..hlen + actual, checksum_ok))
    }

    /// The body for message parsing: refuses an encrypted body (never parse ciphertext).
    pub fn plain_body(&self) -> Result<&Bytes, FrameError> {
        match self.header.encryption {
            Encryption::None => Ok(&self.body),
            e => Err(FrameError::Encrypted {
                msg_id: self.header.msg_id,
                bits: e.bits(),
            }),
        }
    }

    /// Appends the unescaped content (header, body, checksum) to `out`.
    pub fn encode_content(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.header.encode(self.body.len(), out);
        out.extend_from_slice(&self.body);
        let sum = checksum(out.get(start..).unwrap_or_default());
        out.push(sum);
    }

    /// Appends the wire form (0x7E, escaped content, 0x7E) to `out`. A body over 1023
    /// bytes cannot be described by the header: use [`crate::split`] first.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        let mut content = Vec::with_capacity(self.header.wire_len() + self.body.len() + 1);
        self.encode_content(&mut content);
        out.reserve(content.len() + 8);
        out.push(0x7e);
        escape_into(&content, out);
        out.push(0x7e);
    }

    /// The wire form: escaped, delimited, checksum computed.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_wire(&mut out);
        out
    }
}
