//! What a `[[raw]]` listener is configured with: framing, identity, payload and ack.
//!
//! Everything here is plain serde data with `deny_unknown_fields` and documented defaults,
//! so a typo in the config file is an error naming the key. [`RawListenerSpec::validate`]
//! (or each part's `validate`) checks what serde cannot: widths, sizes, hex and delimiter
//! syntax, id lengths. It returns a [`ConfigError`] that names the key (`framing.width`).
//!
//! ```toml
//! framing  = { type = "length_prefixed", width = 2, endian = "big", offset = 2 }
//! identity = { mode = "field", offset = 4, len = 8, encoding = "bcd" }
//! payload  = "binary"
//! ack      = { mode = "fixed", hex = "7e 80 01 00 7e" }
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::vehicle_id;

/// The default `max_frame_len`: 4096 bytes.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;
/// The hard cap on any frame size (`max_frame_len`, `fixed.size`): 1 MiB.
pub const MAX_FRAME_LEN_CAP: usize = 1 << 20;
/// The longest delimiter accepted, in bytes.
pub const MAX_DELIMITER_LEN: usize = 16;

fn default_max_frame_len() -> usize {
    DEFAULT_MAX_FRAME_LEN
}
fn default_delimiter() -> String {
    "\n".to_owned()
}
fn default_width() -> u8 {
    2
}

/// A configuration value that does not make sense; `field` is the dotted key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A size or length outside its allowed range (`fixed.size = 0`, `max_frame_len` above 1 MiB).
    #[error("{field} = {value}: must be between {min} and {max}")]
    OutOfRange {
        field: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    /// `framing.width` other than 1, 2 or 4.
    #[error("framing.width = {width}: must be 1, 2 or 4")]
    BadWidth { width: u8 },
    /// A delimiter that is empty, too long, or whose escapes/hex do not parse.
    #[error("framing.delimiter = {value:?}: {reason}")]
    BadDelimiter { value: String, reason: String },
    /// A hex string that does not parse (`ack.hex`, `framing.prefix`).
    #[error("{field} = {value:?}: not hex (pairs of 0-9a-f, spaces allowed, optional 0x)")]
    BadHex { field: &'static str, value: String },
    /// `framing.prefix` whose length is not `framing.offset`.
    #[error("framing.prefix is {len} bytes but framing.offset is {offset}")]
    PrefixLength { len: usize, offset: usize },
    /// Two settings that contradict each other.
    #[error("{field}: {reason}")]
    Inconsistent {
        field: &'static str,
        reason: &'static str,
    },
}

impl ConfigError {
    /// The dotted config key the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::OutOfRange { field, .. }
            | ConfigError::BadHex { field, .. }
            | ConfigError::Inconsistent { field, .. } => field,
            ConfigError::BadWidth { .. } => "framing.width",
            ConfigError::BadDelimiter { .. } => "framing.delimiter",
            ConfigError::PrefixLength { .. } => "framing.prefix",
        }
    }
}

fn range(field: &'static str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if value < min || value > max {
        let i = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        return Err(ConfigError::OutOfRange {
            field,
            value: i(value),
            min: i(min),
            max: i(max),
        });
    }
    Ok(())
}

/// Parses hex bytes: pairs of hex digits, ASCII whitespace ignored, an optional leading
/// `0x` (`"7e 80 01"`, `"0x7e8001"`). `None` when it does not parse or is empty.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let clean: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if clean.is_empty() {
        return None;
    }
    hex::decode(clean).ok()
}

/// Parses a delimiter as configured.
///
/// Accepted forms:
/// - `"0x7e"`, `"0x0d0a"`: hex bytes after `0x` (always hex: a delimiter that really is the
///   text `0x..` must be written with an escape, `"\\x30x7e"`);
/// - any other string is taken as its UTF-8 bytes, after these escapes: `\n`, `\r`, `\t`,
///   `\0`, `\\`, `\xHH`. TOML basic strings (`"\n"`) already turn `\n` into a newline;
///   the escapes matter for TOML literal strings (`'\r\n'`) and other sources.
///
/// The result is 1 to [`MAX_DELIMITER_LEN`] bytes.
pub fn parse_delimiter(s: &str) -> Result<Vec<u8>, ConfigError> {
    let bad = |reason: &str| ConfigError::BadDelimiter {
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let bytes = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        parse_hex(h).ok_or_else(|| bad("hex form must be 0x followed by pairs of hex digits"))?
    } else {
        let mut out = Vec::with_capacity(s.len());
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('r') => out.push(b'\r'),
                Some('t') => out.push(b'\t'),
                Some('0') => out.push(0),
                Some('\\') => out.push(b'\\'),
                Some('x') => {
                    let hi = chars.next().and_then(|c| c.to_digit(16));
                    let lo = chars.next().and_then(|c| c.to_digit(16));
                    match (hi, lo) {
                        (Some(hi), Some(lo)) => {
                            out.push(u8::try_from(hi * 16 + lo).unwrap_or_default())
                        }
                        _ => return Err(bad("\\x must be followed by two hex digits")),
                    }
                }
                _ => return Err(bad("unknown escape (use \\n \\r \\t \\0 \\\\ \\xHH)")),
            }
        }
        out
    };
    if bytes.is_empty() {
        return Err(bad("empty"));
    }
    if bytes.len() > MAX_DELIMITER_LEN {
        return Err(bad("longer than 16 bytes"));
    }
    Ok(bytes)
}

/// How the byte stream is cut into frames (`framing`, tagged by `type`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Framing {
    /// Frames end with (or, with `both_ends`, are enclosed in) a delimiter.
    Delimited(DelimitedFraming),
    /// Frames carry their length in a 1, 2 or 4-byte field at a fixed offset.
    LengthPrefixed(LengthPrefixedFraming),
    /// Every frame has the same size.
    Fixed(FixedFraming),
}

impl Framing {
    /// Checks the framing; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Framing::Delimited(d) => d.validate(),
            Framing::LengthPrefixed(l) => l.validate(),
            Framing::Fixed(f) => f.validate(),
        }
    }

    /// The largest frame this framing emits or accepts, in bytes.
    pub fn max_frame_len(&self) -> usize {
        match self {
            Framing::Delimited(d) => d.max_frame_len,
            Framing::LengthPrefixed(l) => l.max_frame_len,
            Framing::Fixed(f) => f.size,
        }
    }
}

/// `type = "delimited"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DelimitedFraming {
    /// The delimiter; see [`parse_delimiter`] for the accepted forms. Default `"\n"`.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// The delimiter also opens every frame (`7e ... 7e`). Default `false`.
    #[serde(default)]
    pub both_ends: bool,
    /// The largest frame, not counting delimiters. Default 4096, at most 1 MiB.
    #[serde(default = "default_max_frame_len")]
    pub max_frame_len: usize,
}

impl Default for DelimitedFraming {
    fn default() -> Self {
        DelimitedFraming {
            delimiter: default_delimiter(),
            both_ends: false,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl DelimitedFraming {
    /// Checks the delimiter and the size limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_delimiter(&self.delimiter)?;
        range(
            "framing.max_frame_len",
            self.max_frame_len,
            1,
            MAX_FRAME_LEN_CAP,
        )
    }

    /// The delimiter bytes (after [`validate`](Self::validate) succeeded).
    pub fn delimiter_bytes(&self) -> Result<Vec<u8>, ConfigError> {
        parse_delimiter(&self.delimiter)
    }
}

/// Byte order of a length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endian {
    /// Most significant byte first (network order). The default.
    #[default]
    Big,
    Little,
}

/// `type = "length_prefixed"`.
///
/// ```text
/// | offset bytes (prefix) | length field: width bytes | rest of the frame ...     |
/// |<------------- header = offset + width ----------->|
/// ```
/// The frame's total wire length is `header + (value + adjustment)`, or
/// `value + adjustment` when `counts_header` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LengthPrefixedFraming {
    /// Size of the length field in bytes: 1, 2 or 4. Default 2.
    #[serde(default = "default_width")]
    pub width: u8,
    /// Byte order of the length field. Default `big`.
    #[serde(default)]
    pub endian: Endian,
    /// Bytes before the length field (a start marker, a message type). Default 0.
    #[serde(default)]
    pub offset: usize,
    /// What the bytes before the length field must be, in hex, `offset` bytes long.
    /// Checked on decode (a mismatch means the stream is out of step: fatal) and written
    /// on encode when the header is stripped. Default: unset (not checked; zeros on encode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Added to the length value (e.g. `2` when a 2-byte checksum follows the counted
    /// bytes, `-1` when the value counts a byte that is part of the header). Default 0.
    #[serde(default)]
    pub adjustment: i64,
    /// The (adjusted) length value counts the header too, i.e. it is the whole frame's
    /// length. Default `false` (it counts the bytes after the length field).
    #[serde(default)]
    pub counts_header: bool,
    /// Emit frames without their header (prefix and length field). Default `false`: the
    /// whole frame is emitted, so identity offsets and payloads see every byte.
    #[serde(default)]
    pub strip_header: bool,
    /// The largest frame on the wire, header included. Default 4096, at most 1 MiB.
    #[serde(default = "default_max_frame_len")]
    pub max_frame_len: usize,
}

impl Default for LengthPrefixedFraming {
    fn default() -> Self {
        LengthPrefixedFraming {
            width: default_width(),
            endian: Endian::Big,
            offset: 0,
            prefix: None,
            adjustment: 0,
            counts_header: false,
            strip_header: false,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl LengthPrefixedFraming {
    /// Checks width, sizes, prefix and adjustment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.width, 1 | 2 | 4) {
            return Err(ConfigError::BadWidth { width: self.width });
        }
        range(
            "framing.max_frame_len",
            self.max_frame_len,
            1,
            MAX_FRAME_LEN_CAP,
        )?;
        let header = self.header_len();
        if header > self.max_frame_len {
            return Err(ConfigError::Inconsistent {
                field: "framing.offset",
                reason: "offset + width is larger than max_frame_len",
            });
        }
        let cap = i64::try_from(MAX_FRAME_LEN_CAP).unwrap_or(i64::MAX);
        if self.adjustment < -cap || self.adjustment > cap {
            return Err(ConfigError::OutOfRange {
                field: "framing.adjustment",
                value: self.adjustment,
                min: -cap,
                max: cap,
            });
        }
        self.prefix_bytes()?;
        Ok(())
    }

    /// `offset + width`.
    pub fn header_len(&self) -> usize {
        self.offset.saturating_add(usize::from(self.width))
    }

    /// The configured prefix bytes, checked against `offset`.
    pub fn prefix_bytes(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(p) = &self.prefix else {
            return Ok(None);
        };
        let bytes = parse_hex(p).ok_or_else(|| ConfigError::BadHex {
            field: "framing.prefix",
            value: p.clone(),
        })?;
        if bytes.len() != self.offset {
            return Err(ConfigError::PrefixLength {
                len: bytes.len(),
                offset: self.offset,
            });
        }
        Ok(Some(bytes))
    }
}

/// `type = "fixed"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FixedFraming {
    /// Every frame's size in bytes, 1 to 1 MiB (it is also the maximum frame size). Required.
    pub size: usize,
}

impl FixedFraming {
    /// Checks the size.
    pub fn validate(&self) -> Result<(), ConfigError> {
        range("framing.size", self.size, 1, MAX_FRAME_LEN_CAP)
    }
}

/// How id bytes become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdEncoding {
    /// ASCII text; surrounding whitespace and NUL padding are trimmed. The default.
    #[default]
    Ascii,
    /// The bytes as lowercase hex (`01 a2` -> `"01a2"`).
    Hex,
    /// Packed BCD digits, leading zeros kept (`01 38` -> `"0138"`); trailing `F` nibbles
    /// are padding and dropped.
    Bcd,
}

impl IdEncoding {
    /// The most characters `bytes` bytes can decode to.
    fn chars_per_byte(self) -> usize {
        match self {
            IdEncoding::Ascii => 1,
            IdEncoding::Hex | IdEncoding::Bcd => 2,
        }
    }
}

/// A byte range `start..end` of a frame, written as the string `"0..17"`, or `"4.."` for
/// "from 4 to the end of the frame".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ByteRange {
    pub start: usize,
    /// `None`: to the end of the frame.
    pub end: Option<usize>,
}

impl FromStr for ByteRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a byte range like \"0..17\" or \"4..\"");
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let start = a.trim().parse::<usize>().map_err(|_| bad())?;
        let b = b.trim();
        let end = if b.is_empty() {
            None
        } else {
            Some(b.parse::<usize>().map_err(|_| bad())?)
        };
        if end.is_some_and(|e| e <= start) {
            return Err(format!("{s:?}: end must be greater than start"));
        }
        Ok(ByteRange { start, end })
    }
}

impl TryFrom<String> for ByteRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ByteRange> for String {
    fn from(r: ByteRange) -> String {
        r.to_string()
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(e) => write!(f, "{}..{}", self.start, e),
            None => write!(f, "{}..", self.start),
        }
    }
}

/// Which characters an id from a login frame may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// Anything a vehicle id may hold: `[A-Za-z0-9_-]`. The default.
    #[default]
    Any,
    /// `0-9`.
    Digits,
    /// `0-9a-fA-F`.
    Hex,
    /// `A-Za-z0-9`.
    Alphanumeric,
    /// A VIN's alphabet: `0-9` and `A-Z` except `I`, `O`, `Q`.
    Vin,
}

impl Charset {
    /// Whether `b` is in the set.
    pub fn allows(self, b: u8) -> bool {
        match self {
            Charset::Any => b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
            Charset::Digits => b.is_ascii_digit(),
            Charset::Hex => b.is_ascii_hexdigit(),
            Charset::Alphanumeric => b.is_ascii_alphanumeric(),
            Charset::Vin => {
                b.is_ascii_digit() || (b.is_ascii_uppercase() && !matches!(b, b'I' | b'O' | b'Q'))
            }
        }
    }
}

fn default_min_len() -> usize {
    1
}
fn default_max_len() -> usize {
    vehicle_id::MAX_LEN
}

/// A regex-free check of an id read from a login frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdPattern {
    /// Allowed characters. Default `any` (`[A-Za-z0-9_-]`).
    #[serde(default)]
    pub charset: Charset,
    /// Fewest characters. Default 1.
    #[serde(default = "default_min_len")]
    pub min_len: usize,
    /// Most characters. Default 64 (the vehicle id limit).
    #[serde(default = "default_max_len")]
    pub max_len: usize,
}

impl Default for IdPattern {
    fn default() -> Self {
        IdPattern {
            charset: Charset::Any,
            min_len: 1,
            max_len: vehicle_id::MAX_LEN,
        }
    }
}

/// `mode = "first_frame"`: the connection's first frame is a login carrying the id; it is
/// consumed (not published).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FirstFrameIdentity {
    /// Which bytes of the login frame hold the id. Default: the whole frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ByteRange>,
    /// How those bytes become text. Default `ascii`.
    #[serde(default)]
    pub encoding: IdEncoding,
    /// An extra check of the decoded id. Default: none (only the vehicle id rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<IdPattern>,
}

/// `mode = "field"`: every frame carries the id at a fixed place.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldIdentity {
    /// Where the id starts in the frame as emitted by the framing (after a stripped header).
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
    /// How those bytes become text. Default `ascii`.
    #[serde(default)]
    pub encoding: IdEncoding,
}

/// How a connection's vehicle is identified (`identity`, tagged by `mode`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case", from = "IdentityRepr")]
pub enum Identity {
    /// The first frame is a login carrying the id; it is consumed, not published.
    FirstFrame(FirstFrameIdentity),
    /// Every frame carries the id at `offset..offset+len`.
    Field(FieldIdentity),
    /// The peer's IP address is the id: `10.0.0.5` -> `10-0-0-5`, `2001:db8::1` ->
    /// `2001-db8--1` (port ignored, IPv4-mapped IPv6 written as IPv4).
    Peer,
}

/// What `Identity` is read through: serde ignores unknown keys next to the tag of a unit
/// variant (`{ mode = "peer", offset = 1 }`), but not in an empty struct variant.
#[derive(Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
enum IdentityRepr {
    FirstFrame(FirstFrameIdentity),
    Field(FieldIdentity),
    Peer {},
}

impl From<IdentityRepr> for Identity {
    fn from(r: IdentityRepr) -> Self {
        match r {
            IdentityRepr::FirstFrame(f) => Identity::FirstFrame(f),
            IdentityRepr::Field(f) => Identity::Field(f),
            IdentityRepr::Peer {} => Identity::Peer,
        }
    }
}

impl Identity {
    /// Checks lengths and ranges so that a decoded id can fit the 64-character limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Identity::FirstFrame(f) => {
                if let (Some(r), Some(end)) = (f.range, f.range.and_then(|r| r.end)) {
                    let max = vehicle_id::MAX_LEN / f.encoding.chars_per_byte();
                    // Ascii trims padding, so a wider range than 64 is refused only for
                    // hex/bcd, whose every byte makes characters.
                    if f.encoding != IdEncoding::Ascii {
                        range("identity.range", end.saturating_sub(r.start), 1, max)?;
                    }
                }
                if let Some(p) = &f.pattern {
                    range(
                        "identity.pattern.min_len",
                        p.min_len,
                        1,
                        vehicle_id::MAX_LEN,
                    )?;
                    range(
                        "identity.pattern.max_len",
                        p.max_len,
                        p.min_len,
                        vehicle_id::MAX_LEN,
                    )?;
                }
                Ok(())
            }
            Identity::Field(f) => {
                let max = match f.encoding {
                    IdEncoding::Ascii => MAX_FRAME_LEN_CAP,
                    e => vehicle_id::MAX_LEN / e.chars_per_byte(),
                };
                range("identity.len", f.len, 1, max)?;
                range("identity.offset", f.offset, 0, MAX_FRAME_LEN_CAP)
            }
            Identity::Peer => Ok(()),
        }
    }

    /// Whether the connection's first frame is a login to consume rather than publish.
    pub fn consumes_login_frame(&self) -> bool {
        matches!(self, Identity::FirstFrame(_))
    }
}

/// What a frame's bytes become in the published event (`payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadMode {
    /// A `passthrough` event with the frame in base64 (and hex when ≤ 64 bytes). The default.
    #[default]
    Binary,
    /// The frame is a UTF-8 JSON object that becomes the `passthrough` event's `data`.
    Json,
}

/// What is written back for each accepted frame (`ack`, tagged by `mode`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case", from = "AckRepr")]
pub enum Ack {
    /// Nothing. The default.
    #[default]
    None,
    /// These bytes, verbatim (they are complete wire bytes: the framing is not applied).
    Fixed {
        /// Hex, spaces allowed, optional `0x` (`"7e 80 01 7e"`).
        hex: String,
    },
    /// The frame itself, framed again with the listener's framing.
    Echo,
}

/// What `Ack` is read through, so that unknown keys are refused in every mode.
#[derive(Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
enum AckRepr {
    None {},
    Fixed { hex: String },
    Echo {},
}

impl From<AckRepr> for Ack {
    fn from(r: AckRepr) -> Self {
        match r {
            AckRepr::None {} => Ack::None,
            AckRepr::Fixed { hex } => Ack::Fixed { hex },
            AckRepr::Echo {} => Ack::Echo,
        }
    }
}

impl Ack {
    /// Checks the hex of `fixed`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.fixed_bytes().map(|_| ())
    }

    /// The bytes of `fixed` (`None` for the other modes).
    pub fn fixed_bytes(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        match self {
            Ack::Fixed { hex } => parse_hex(hex).map(Some).ok_or_else(|| ConfigError::BadHex {
                field: "ack.hex",
                value: hex.clone(),
            }),
            Ack::None | Ack::Echo => Ok(None),
        }
    }
}

/// The four protocol-level parts of a `[[raw]]` listener.
///
/// The gateway's listener struct may embed it with `#[serde(flatten)]`, but serde ignores
/// `deny_unknown_fields` on a struct that flattens; to keep unknown keys an error, list the
/// four fields in the listener struct instead and build this with [`RawListenerSpec::new`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerSpec {
    pub framing: Framing,
    pub identity: Identity,
    /// Default `binary`.
    #[serde(default)]
    pub payload: PayloadMode,
    /// Default `none`.
    #[serde(default)]
    pub ack: Ack,
}

impl RawListenerSpec {
    /// Groups the four parts.
    pub fn new(framing: Framing, identity: Identity, payload: PayloadMode, ack: Ack) -> Self {
        RawListenerSpec {
            framing,
            identity,
            payload,
            ack,
        }
    }

    /// Checks every part; the first error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.framing.validate()?;
        self.identity.validate()?;
        self.ack.validate()?;
        if let (Identity::Field(f), Framing::Fixed(x)) = (&self.identity, &self.framing) {
            if f.offset.saturating_add(f.len) > x.size {
                return Err(ConfigError::Inconsistent {
                    field: "identity.offset",
                    reason: "the id field ends beyond the fixed frame size",
                });
            }
        }
        Ok(())
    }
}
