//! The normalized vehicle event: one JSON object per thing a vehicle said (contract §3).
//!
//! Every protocol crate turns its messages into [`Event`]s; the gateway publishes them on
//! `{p}/v1/{vehicle_id}/{type}`. The envelope is the same for every event; `data` is typed
//! per event type ([`Data`]), and the event's `type` is derived from it, so the two can
//! never disagree.
//!
//! ```text
//! {"v":1,"event_id":"01JD..","vehicle_id":"013800138000","protocol":"jt808-2013",
//!  "type":"location","device_time":"..Z","received_at":"..123Z","gateway":"node-1",
//!  "msg_seq":17,"reissue":false,"data":{..}}
//! ```

mod alarm;
mod cmd_result;
mod lifecycle;
mod location;
mod media;
mod passthrough;
mod status;
mod telemetry;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

pub use alarm::{AlarmBits, AlarmEvent, AlarmState};
pub use cmd_result::{CmdResult, CmdStatus};
pub use lifecycle::{Lifecycle, LifecycleKind};
pub use location::{
    Analog, CoordSystem, FlagNames, Flags, InOutArea, Location, More, Names, Overspeed, RouteTime,
};
pub use media::{Media, StoredMedia};
pub use passthrough::Passthrough;
pub use status::{Presence, PresenceReason};
pub use telemetry::*;

/// The protocol and edition an event came from (`protocol` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Jt808_2011,
    Jt808_2013,
    Jt808_2019,
    Gbt32960_2016,
    Gbt32960_2025,
    Raw,
    /// Not known: a command result for a vehicle vgate has never seen (no session, not in the
    /// vehicles it remembers). `null` in the JSON; `unknown` in logs.
    Unknown,
}

impl Protocol {
    /// The contract's name: `jt808-2013`, `gbt32960-2025`, `raw`...
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Jt808_2011 => "jt808-2011",
            Protocol::Jt808_2013 => "jt808-2013",
            Protocol::Jt808_2019 => "jt808-2019",
            Protocol::Gbt32960_2016 => "gbt32960-2016",
            Protocol::Gbt32960_2025 => "gbt32960-2025",
            Protocol::Raw => "raw",
            Protocol::Unknown => "unknown",
        }
    }

    /// The protocol family without its edition: `jt808`, `gbt32960`, `raw` (broadcast groups).
    pub const fn family(self) -> &'static str {
        match self {
            Protocol::Jt808_2011 | Protocol::Jt808_2013 | Protocol::Jt808_2019 => "jt808",
            Protocol::Gbt32960_2016 | Protocol::Gbt32960_2025 => "gbt32960",
            Protocol::Raw => "raw",
            Protocol::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Unknown => s.serialize_none(),
            p => s.serialize_str(p.as_str()),
        }
    }
}

/// The event's `type`, which is also the last topic level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Location,
    Telemetry,
    Alarm,
    Lifecycle,
    Status,
    Passthrough,
    CmdResult,
    Media,
}

impl EventKind {
    /// The JSON `type` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Location => "location",
            EventKind::Telemetry => "telemetry",
            EventKind::Alarm => "alarm",
            EventKind::Lifecycle => "lifecycle",
            EventKind::Status => "status",
            EventKind::Passthrough => "passthrough",
            EventKind::CmdResult => "cmd_result",
            EventKind::Media => "media",
        }
    }

    /// The topic suffix after `{p}/v1/{vid}/` (`cmd_result` is published on `cmd/result`).
    pub const fn topic_suffix(self) -> &'static str {
        match self {
            EventKind::CmdResult => "cmd/result",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The typed `data` of an event; its variant decides the event's `type`.
///
/// `Location` is held inline, not boxed: it is most events, and an event of it then costs
/// no allocation of its own (its fields allocate nothing for a typical report either).
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Data {
    Location(Location),
    Telemetry(Box<Telemetry>),
    Alarm(AlarmEvent),
    Lifecycle(Lifecycle),
    Status(Presence),
    Passthrough(Passthrough),
    CmdResult(CmdResult),
    Media(Box<Media>),
}

impl Data {
    /// The event type this data makes.
    pub fn kind(&self) -> EventKind {
        match self {
            Data::Location(_) => EventKind::Location,
            Data::Telemetry(_) => EventKind::Telemetry,
            Data::Alarm(_) => EventKind::Alarm,
            Data::Lifecycle(_) => EventKind::Lifecycle,
            Data::Status(_) => EventKind::Status,
            Data::Passthrough(_) => EventKind::Passthrough,
            Data::CmdResult(_) => EventKind::CmdResult,
            Data::Media(_) => EventKind::Media,
        }
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Location(d) => d.serialize(s),
            Data::Telemetry(d) => d.serialize(s),
            Data::Alarm(d) => d.serialize(s),
            Data::Lifecycle(d) => d.serialize(s),
            Data::Status(d) => d.serialize(s),
            Data::Passthrough(d) => d.serialize(s),
            Data::CmdResult(d) => d.serialize(s),
            Data::Media(d) => d.serialize(s),
        }
    }
}

/// What the normalizer needs besides the message: who we are, when it arrived, and the
/// device's time zone. Built once per connection (or per CLI run) and passed by reference.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// This gateway node's id (`gateway` in the JSON).
    pub gateway: Arc<str>,
    /// When the frame was read.
    pub received_at: DateTime<Utc>,
    /// The device clock's offset east of UTC, in seconds (GMT+8 by default).
    pub device_utc_offset_secs: i32,
}

impl EventContext {
    /// A context for frames received now, with Beijing time as the device zone.
    pub fn now(gateway: impl Into<Arc<str>>) -> Self {
        EventContext {
            gateway: gateway.into(),
            received_at: Utc::now(),
            device_utc_offset_secs: crate::time::BEIJING_OFFSET_SECS,
        }
    }
}

/// One normalized vehicle event (contract §3).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// ULID, unique, kept across retried publishes and spool replays.
    pub event_id: ulid::Ulid,
    pub vehicle_id: Arc<str>,
    pub protocol: Protocol,
    /// UTC; `None` when the frame carries no time or its time is invalid.
    pub device_time: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub gateway: Arc<str>,
    /// The frame's serial number where the protocol has one.
    pub msg_seq: Option<u32>,
    /// Data sent late (GB/T 32960 0x03, JT/T 808 0x0704 type 1).
    pub reissue: bool,
    pub data: Data,
}

impl Event {
    /// A new event with a fresh id, stamped from `ctx`.
    pub fn new(
        ctx: &EventContext,
        vehicle_id: Arc<str>,
        protocol: Protocol,
        device_time: Option<DateTime<Utc>>,
        msg_seq: Option<u32>,
        data: Data,
    ) -> Self {
        Event {
            event_id: ulid::Ulid::new(),
            vehicle_id,
            protocol,
            device_time,
            received_at: ctx.received_at,
            gateway: ctx.gateway.clone(),
            msg_seq,
            reissue: false,
            data,
        }
    }

    /// Marks the event as reissued (late) data.
    pub fn reissued(mut self, reissue: bool) -> Self {
        self.reissue = reissue;
        self
    }

    /// The event's `type`.
    pub fn kind(&self) -> EventKind {
        self.data.kind()
    }

    /// The event as one line of JSON (the bytes of [`Event::write_json`]).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        // The writer only emits UTF-8 (ASCII syntax around `&str` contents).
        String::from_utf8(out).unwrap_or_default()
    }

    /// The event as JSON bytes appended to `out` (no intermediate String).
    ///
    /// Written directly, not through `serde_json::to_writer`: the envelope's keys are
    /// constants, times are formatted on the stack, and `location` data (the bulk of all
    /// events) has its own writer. The bytes are exactly those of this type's
    /// `Serialize` impl through `serde_json` (the tests compare both); other `data` goes
    /// through `serde_json`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Destructured without `..`: a new field fails to compile here until written.
        let Event {
            event_id,
            vehicle_id,
            protocol,
            device_time,
            received_at,
            gateway,
            msg_seq,
            reissue,
            data,
        } = self;
        // A location with its status flags is about 1.2 KB, a GB/T 32960 telemetry with its
        // cells 3-5 KB: one allocation for a new buffer.
        out.reserve(match data {
            Data::Location(_) => 1536,
            Data::Telemetry(_) => 4096,
            _ => 512,
        });
        out.extend_from_slice(b"{\"v\":1,\"event_id\":\"");
        let mut id = [0u8; ulid::ULID_LEN];
        out.extend_from_slice(event_id.array_to_str(&mut id).as_bytes());
        out.extend_from_slice(b"\",\"vehicle_id\":");
        json::str(out, vehicle_id);
        // Protocol and type names are plain ASCII constants: no escaping to check.
        match protocol {
            Protocol::Unknown => out.extend_from_slice(b",\"protocol\":null"),
            p => {
                out.extend_from_slice(b",\"protocol\":\"");
                out.extend_from_slice(p.as_str().as_bytes());
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(data.kind().as_str().as_bytes());
        out.push(b'"');
        out.extend_from_slice(b",\"device_time\":");
        match device_time {
            Some(t) => json::time(out, t, false),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"received_at\":");
        json::time(out, received_at, true);
        out.extend_from_slice(b",\"gateway\":");
        json::str(out, gateway);
        out.extend_from_slice(b",\"msg_seq\":");
        match msg_seq {
            Some(n) => json::u64(out, u64::from(*n)),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"reissue\":");
        json::bool(out, *reissue);
        out.extend_from_slice(b",\"data\":");
        match data {
            Data::Location(l) => l.write_json(out),
            Data::Telemetry(t) => t.write_json(out),
            other => json::any(out, other),
        }
        out.push(b'}');
    }
}

/// Direct JSON writing into a `Vec<u8>`, byte-identical to `serde_json`'s compact output
/// (same escaping rule, same integer and float formatting: serde_json's own formatter).
///
/// Public for the protocol crates' own writers (GB/T 32960 writes its telemetry groups
/// straight from the decoded report, [`super::RawJson`]): one float and integer formatting
/// for every event, the one the tests compare with serde_json.
pub mod json {
    use chrono::{DateTime, Utc};
    use serde::Serialize;
    use serde_json::ser::{CompactFormatter, Formatter};

    use crate::time::Rfc3339;

    /// A JSON string. Strings without a byte serde_json escapes (controls, `"`, `\`) are
    /// copied; the rest go through serde_json's escaper.
    #[inline]
    pub fn str(out: &mut Vec<u8>, s: &str) {
        if !needs_escape(s.as_bytes()) {
            out.reserve(s.len() + 2);
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        } else {
            any(out, s);
        }
    }

    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// Whether any of 8 bytes is a control (< 0x20), `"` or `\` (the bytes serde_json
    /// escapes). Bit tricks "has less than" and "has zero byte": exact for "any".
    #[inline]
    fn word_needs_escape(w: u64) -> bool {
        let ctrl = w.wrapping_sub(LO * 0x20) & !w;
        let q = w ^ (LO * u64::from(b'"'));
        let quote = q.wrapping_sub(LO) & !q;
        let b = w ^ (LO * u64::from(b'\\'));
        let backslash = b.wrapping_sub(LO) & !b;
        (ctrl | quote | backslash) & HI != 0
    }

    /// Whether serde_json would escape any byte of `s`; eight bytes at a time.
    #[inline]
    pub(crate) fn needs_escape(s: &[u8]) -> bool {
        let word = |c: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            word_needs_escape(u64::from_le_bytes(w))
        };
        if s.len() < 8 {
            return s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        }
        let mut chunks = s.chunks_exact(8);
        if chunks.any(word) {
            return true;
        }
        // The last eight bytes, overlapping checked ones (harmless for "any").
        !chunks.remainder().is_empty() && s.get(s.len() - 8..).is_some_and(word)
    }

    /// `"key":`.
    #[inline]
    pub(crate) fn key(out: &mut Vec<u8>, k: &str) {
        if !needs_escape(k.as_bytes()) {
            out.reserve(k.len() + 3);
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        } else {
            any(out, k);
            out.push(b':');
        }
    }

    /// A float; `null` when not finite (as serde_json writes it).
    ///
    /// Most floats of an event are fixed-point values scaled from an integer (1e-6 degrees,
    /// 0.1 km/h, 0.001 V) and rounded to 1e-6: those are printed from that integer
    /// ([`fixed6`]), the rest by serde_json's shortest-round-trip formatter.
    #[inline]
    pub fn f64(out: &mut Vec<u8>, v: f64) {
        if !v.is_finite() {
            out.extend_from_slice(b"null");
        } else if !fixed6(out, v) {
            let _ = CompactFormatter.write_f64(out, v);
        }
    }

    /// Writes `v` from its value in millionths when that is exact, and says whether it did.
    ///
    /// If `m = round(v * 1e6)` gives `v` back (`m / 1e6 == v`, a correctly rounded
    /// division), then the decimal `m * 10^-6` rounds to `v`; with at most 15 significant
    /// digits it is the only decimal that short to do so, which makes it the shortest
    /// round-trip form serde_json (zmij) prints. zmij writes a leading-digit exponent of
    /// -5..=15 in fixed notation (`0.00001` .. `999999999999999.0`), the whole numbers with
    /// `.0`; so does this, for 1e-5 <= |v| < 1e9 and for zero (`0.0`, `-0.0`). Everything
    /// else is left to serde_json. `fixed_point_floats_are_written_as_serde_json_writes_them`
    /// compares the two over millions of values.
    #[inline]
    pub(crate) fn fixed6(out: &mut Vec<u8>, v: f64) -> bool {
        const SCALE: f64 = 1e6;
        // Any integer near v * 1e6 will do (no libm `round` call): the check below keeps
        // only the one that gives `v` back, and two decimals of at most 15 digits never
        // round to the same float.
        let half = if v < 0.0 { -0.5 } else { 0.5 };
        let m = (v * SCALE + half) as i64;
        // |v| < 1e9: at most 15 digits; below 1e-5 zmij switches to exponent notation.
        let mag = m.unsigned_abs();
        if mag >= 1_000_000_000_000_000 || (mag != 0 && mag < 10) || m as f64 / SCALE != v {
            return false;
        }
        fixed::<6>(out, v.is_sign_negative(), mag);
        true
    }

    /// The decimal `(-1 if neg) * mag * 10^-D` as zmij writes the float nearest to it
    /// (its shortest round-trip form when it has at most 15 significant digits and an
    /// exponent of -5..=15; the caller sees to that): `3.77`, `-1000.5`, `25.0`, `0.0`.
    /// `D` is 0..=7.
    ///
    /// Up to 8 digits (cell voltages, temperatures, most scaled values), the digits are
    /// made at once in one `u64` ([`digits8`]) and the text is put together in a `u128`
    /// and stored with one 16-byte copy: no loop, no division by 10 per digit.
    #[inline]
    pub fn fixed<const D: u32>(out: &mut Vec<u8>, neg: bool, mag: u64) {
        if D <= 4 && mag < 10_000 * 10u64.pow(D) {
            return fixed_small::<D>(out, neg, mag);
        }
        if D > 7 || mag >= 100_000_000 {
            return fixed_general::<D>(out, neg, mag);
        }
        // The 8 digits, leading zeros included, the first in the lowest byte.
        let w = digits8(mag as u32);
        let values = w & 0x0F0F_0F0F_0F0F_0F0F;
        // Leading zeros dropped, down to one digit before the point.
        let lead = if values == 0 {
            8
        } else {
            values.trailing_zeros() / 8
        };
        let start = lead.min(7 - D);
        let int_len = 8 - D - start;
        let int_part = (w >> (8 * start)) & (u64::MAX >> (8 * (8 - int_len)));
        // The fraction's digits without their trailing zeros, or `0`.
        let (frac_part, frac_len) = if D == 0 {
            (u64::from(b'0'), 1)
        } else {
            let frac = w >> (8 * (8 - D));
            let fvalues = values >> (8 * (8 - D));
            let len = if fvalues == 0 {
                1
            } else {
                D - (fvalues.leading_zeros() - 8 * (8 - D)) / 8
            };
            (frac, len)
        };
        let mut text = u128::from(int_part)
            | u128::from(b'.') << (8 * int_len)
            | u128::from(frac_part) << (8 * (int_len + 1));
        let mut len = (int_len + 1 + frac_len) as usize;
        if neg {
            text = text << 8 | u128::from(b'-');
            len += 1;
        }
        // All 16 bytes (one store), then the unused ones dropped.
        out.extend_from_slice(&text.to_le_bytes());
        out.truncate(out.len() - (16 - len));
    }

    /// [`fixed`] for at most 4 digits on each side of the point (the common case: cell
    /// voltages `3.77`, temperatures `25.0`, speeds, currents): the sign and whole part in
    /// one 8-byte store, the point and fraction in another, the digits from [`digits4`].
    #[inline]
    fn fixed_small<const D: u32>(out: &mut Vec<u8>, neg: bool, mag: u64) {
        let p = 10u64.pow(D);
        let int = digits4((mag / p) as u32);
        // Leading zeros dropped, down to one digit.
        let lead = if int == 0 {
            3
        } else {
            (int.trailing_zeros() / 8).min(3)
        };
        let mut text = u64::from((int | 0x3030_3030) >> (8 * lead));
        let mut len = 4 - lead;
        if neg {
            text = text << 8 | u64::from(b'-');
            len += 1;
        }
        out.extend_from_slice(&text.to_le_bytes());
        out.truncate(out.len() - (8 - len as usize));
        let frac = (mag % p) as u32;
        if D == 0 || frac == 0 {
            out.extend_from_slice(b".0");
            return;
        }
        // The D digits of the fraction (first in the lowest byte), trailing zeros dropped.
        let digits = digits4(frac) >> (8 * (4 - D));
        let len = D - (digits.leading_zeros() - 8 * (4 - D)) / 8;
        let text =
            u64::from(b'.') | u64::from((digits | 0x3030_3030) & (u32::MAX >> (8 * (4 - D)))) << 8;
        out.extend_from_slice(&text.to_le_bytes());
        out.truncate(out.len() - (7 - len as usize));
    }

    /// The 4 decimal digits of `n` (below 10^4) as values 0..=9, leading zeros included,
    /// the first in the lowest byte: `n / 100` and `n % 100` in two 16-bit lanes, then each
    /// lane split in tens and ones (multiplies and shifts, exact for these ranges).
    #[inline]
    fn digits4(n: u32) -> u32 {
        let q = (n * 5_243) >> 19;
        let x = q | (n - q * 100) << 16;
        let t = ((x * 103) >> 10) & 0x000F_000F;
        t | (x - t * 10) << 8
    }

    /// The 8 decimal digits of `n` (below 10^8) in ASCII, leading zeros included, the
    /// first digit in the lowest byte (memory order): the number split in halves of 4
    /// digits, then each half in two of 2, then each of those in two digits, all lanes
    /// at once (a multiply and shift for each division: exact for these ranges).
    #[inline]
    fn digits8(n: u32) -> u64 {
        let x = u64::from(n / 10_000) | u64::from(n % 10_000) << 32;
        let q = ((x * 10_486) >> 20) & 0x0000_007F_0000_007F;
        let x = q | (x - q * 100) << 16;
        let q = ((x * 103) >> 10) & 0x000F_000F_000F_000F;
        let x = q | (x - q * 10) << 8;
        x | 0x3030_3030_3030_3030
    }

    /// [`fixed`] for any magnitude.
    pub(crate) fn fixed_general<const D: u32>(out: &mut Vec<u8>, neg: bool, mag: u64) {
        let p = 10u64.pow(D);
        if neg {
            out.push(b'-');
        }
        let int = mag / p;
        if int < 10 {
            out.push(b'0' + int as u8);
        } else {
            let _ = CompactFormatter.write_u64(out, int);
        }
        let frac = mag % p;
        if frac == 0 {
            out.extend_from_slice(b".0");
            return;
        }
        // `.` and D digits, then the trailing zeros dropped.
        let mut buf = *b".0000000";
        let mut f = frac;
        let mut len = 1 + D as usize;
        let mut trailing = true;
        for i in (1..=D as usize).rev() {
            let d = (f % 10) as u8;
            f /= 10;
            if trailing && d == 0 {
                len = i;
                continue;
            }
            trailing = false;
            if let Some(b) = buf.get_mut(i) {
                *b = b'0' + d;
            }
        }
        // All 8 bytes (a fixed-size copy: one store, no `memcpy` call), then the unused
        // ones dropped.
        out.extend_from_slice(&buf);
        out.truncate(out.len() - (buf.len() - len));
    }

    /// An optional float (`null` when `None`).
    #[inline]
    pub fn opt_f64(out: &mut Vec<u8>, v: Option<f64>) {
        match v {
            Some(v) => f64(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }

    /// An unsigned integer.
    #[inline]
    pub fn u64(out: &mut Vec<u8>, v: u64) {
        let _ = CompactFormatter.write_u64(out, v);
    }

    /// A signed integer.
    #[inline]
    pub fn i64(out: &mut Vec<u8>, v: i64) {
        let _ = CompactFormatter.write_i64(out, v);
    }

    /// `true` / `false`.
    #[inline]
    pub fn bool(out: &mut Vec<u8>, v: bool) {
        // Two constant-length copies (inlined), not one of a variable length (a memcpy call).
        if v {
            out.extend_from_slice(b"true");
        } else {
            out.extend_from_slice(b"false");
        }
    }

    /// An RFC 3339 UTC time string, whole seconds or milliseconds (chrono's
    /// `%Y-%m-%dT%H:%M:%SZ` / `%Y-%m-%dT%H:%M:%S%.3fZ`).
    ///
    /// The last text of each form is kept per thread: the events of one frame share their
    /// `received_at` and `device_time` (a GB/T 32960 report's telemetry and location), so
    /// the second is a copy.
    pub(crate) fn time(out: &mut Vec<u8>, t: &DateTime<Utc>, millis: bool) {
        use std::cell::Cell;
        /// A time and its text.
        type Text = Option<(DateTime<Utc>, Rfc3339)>;
        thread_local! {
            static SECS: Cell<Text> = const { Cell::new(None) };
            static MILLIS: Cell<Text> = const { Cell::new(None) };
        }
        let last = if millis { &MILLIS } else { &SECS };
        let fast = match last.get() {
            Some((at, text)) if at == *t => Some(text),
            _ => {
                let text = if millis {
                    Rfc3339::millis(t)
                } else {
                    Rfc3339::secs(t)
                };
                if let Some(text) = text {
                    last.set(Some((*t, text)));
                }
                text
            }
        };
        match fast {
            Some(text) => {
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
            None if millis => any(out, &t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            None => any(out, &t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        }
    }

    /// A `serde_json::Value`, in the order serde_json serializes it.
    pub(crate) fn value(out: &mut Vec<u8>, v: &serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => bool(out, *b),
            Value::Number(n) => any(out, n),
            Value::String(s) => str(out, s),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    value(out, item);
                }
                out.push(b']');
            }
            Value::Object(map) => {
                out.push(b'{');
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    key(out, k);
                    // Flag maps (vehicle signals) are all booleans: no recursive call.
                    match item {
                        Value::Bool(b) => bool(out, *b),
                        other => value(out, other),
                    }
                }
                out.push(b'}');
            }
        }
    }

    /// Anything else, through serde_json (writing to a `Vec` cannot fail; a `Serialize`
    /// impl that errors leaves what it wrote, as `serde_json::to_writer` would).
    #[inline]
    pub(crate) fn any<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
        let _ = serde_json::to_writer(out, v);
    }
}

struct Secs<'a>(&'a DateTime<Utc>);
impl Serialize for Secs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match crate::time::Rfc3339::secs(self.0) {
            Some(text) => s.serialize_str(text.as_str()),
            None => s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%SZ")),
        }
    }
}
struct Millis<'a>(&'a DateTime<Utc>);
impl Serialize for Millis<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match crate::time::Rfc3339::millis(self.0) {
            Some(text) => s.serialize_str(text.as_str()),
            None => s.collect_str(&self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
        }
    }
}
struct UlidStr(ulid::Ulid);
impl Serialize for UlidStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; ulid::ULID_LEN];
        s.serialize_str(self.0.array_to_str(&mut buf))
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Event", 11)?;
        st.serialize_field("v", &1u8)?;
        st.serialize_field("event_id", &UlidStr(self.event_id))?;
        st.serialize_field("vehicle_id", &*self.vehicle_id)?;
        st.serialize_field("protocol", &self.protocol)?;
        st.serialize_field("type", self.kind().as_str())?;
        st.serialize_field("device_time", &self.device_time.as_ref().map(Secs))?;
        st.serialize_field("received_at", &Millis(&self.received_at))?;
        st.serialize_field("gateway", &*self.gateway)?;
        st.serialize_field("msg_seq", &self.msg_seq)?;
        st.serialize_field("reissue", &self.reissue)?;
        st.serialize_field("data", &self.data)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    #[test]
    fn needs_escape_finds_every_escaped_byte_anywhere() {
        let naive = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 0..20 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'x'; len];
                    s[pos] = b;
                    assert_eq!(json::needs_escape(&s), naive(&s), "{s:?}");
                    s.iter_mut().for_each(|c| *c = 0xe9);
                    s[pos] = b;
                    assert_eq!(json::needs_escape(&s), naive(&s), "{s:?}");
                }
            }
        }
    }

    fn serde_float(v: f64) -> String {
        serde_json::to_string(&v).unwrap()
    }

    fn fast_float(v: f64) -> String {
        let mut out = Vec::new();
        json::f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_writes_what_the_digit_by_digit_writer_writes() {
        fn check<const D: u32>(mags: &[u64]) {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for &m in mags {
                for neg in [false, true] {
                    a.clear();
                    b.clear();
                    json::fixed::<D>(&mut a, neg, m);
                    json::fixed_general::<D>(&mut b, neg, m);
                    assert_eq!(a, b, "D {D} mag {m} neg {neg}");
                }
            }
        }
        // Dense up to a million, around every power of ten, and a stride to past 10^8.
        let mut mags: Vec<u64> = (0..1_000_000).collect();
        for p in 0..12 {
            let c = 10u64.pow(p);
            mags.extend(c.saturating_sub(11)..c + 11);
        }
        mags.extend((0..2_000_000_000).step_by(7_919));
        check::<0>(&mags);
        check::<1>(&mags);
        check::<2>(&mags);
        check::<3>(&mags);
        check::<4>(&mags);
        check::<5>(&mags);
        check::<6>(&mags);
        check::<7>(&mags);
    }

    #[test]
    fn fixed_point_floats_are_written_as_serde_json_writes_them() {
        // Every integer scaled by 10^-k the way the normalizers scale them (a division, a
        // product, a sum with an offset, rounded to 1e-6), around every power of ten and
        // at random, and floats that are not fixed-point at all.
        let mut seen_fast = 0u64;
        let mut check = |v: f64| {
            let mut scratch = Vec::new();
            if json::fixed6(&mut scratch, v) {
                seen_fast += 1;
            }
            assert_eq!(fast_float(v), serde_float(v), "{v:e}");
        };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for k in 0..=9 {
            let p = 10f64.powi(k);
            for base in [
                0i64, 1, 9, 10, 99, 100, 999, 1000, 65_535, 999_999, 1_000_000,
            ] {
                for d in -3..=3 {
                    for n in [base + d, -(base + d)] {
                        let n = n as f64;
                        check(n / p);
                        check(((n / p) * 1e6).round() / 1e6);
                        check(((n * (1.0 / p)) * 1e6).round() / 1e6);
                    }
                }
            }
            for _ in 0..200_000 {
                let r = next();
                let n = (r % 20_000_000_000) as f64 - 10_000_000_000.0;
                check(n / p);
                check(((n * (1.0 / p) - 1000.0) * 1e6).round() / 1e6);
            }
        }
        for _ in 0..1_000_000 {
            check(f64::from_bits(next()));
            check((next() % 1_000_000_000) as f64 / 1e6 * 3.0);
        }
        for v in [
            0.0,
            -0.0,
            1e-5,
            1e-6,
            1.5e-5,
            9.99999e-6,
            1e9,
            999_999_999.999_999,
            1e15,
            0.1 + 0.2,
            22.543_096,
            -114.057_865,
            1630.6,
            3.77,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            check(v);
            check(-v);
        }
        assert!(seen_fast > 1_000_000, "{seen_fast}");
    }

    fn serde_bytes(ev: &Event) -> Vec<u8> {
        serde_json::to_vec(ev).unwrap()
    }

    fn fast_bytes(ev: &Event) -> Vec<u8> {
        let mut out = b"prefix".to_vec();
        ev.write_json(&mut out);
        out.split_off(6)
    }

    fn event(data: Data, device_time: Option<DateTime<Utc>>, seq: Option<u32>) -> Event {
        let ctx = EventContext {
            gateway: "node-\"1\"\n".into(),
            received_at: Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap()
                + chrono::Duration::nanoseconds(987_654_321),
            device_utc_offset_secs: 8 * 3600,
        };
        Event::new(
            &ctx,
            "013800138000".into(),
            Protocol::Jt808_2019,
            device_time,
            seq,
            data,
        )
        .reissued(seq.is_none())
    }

    static SIGNALS: FlagNames = FlagNames::new(&["abs", "brake", "x\u{1}y"]);
    static STATUS: FlagNames = FlagNames::new(&["acc_on", "fix_valid"]);
    static IO: FlagNames = FlagNames::new(&["deep_sleep", "sleep"]);
    static ABC: FlagNames = FlagNames::new(&["a", "b", "c", "d", "e", "f", "g", "h", "i"]);

    fn full_location() -> Location {
        let mut other = serde_json::Map::new();
        other.insert("note".into(), serde_json::json!("invalid device time 17ff"));
        other.insert(
            "tyre".into(),
            serde_json::json!([1e300, 0.1, u64::MAX, i64::MIN]),
        );
        other.insert(
            "a\u{1}b".into(),
            serde_json::json!({"x\u{1}y": [1.5, -2, null, "q\""]}),
        );
        other.insert("zz".into(), serde_json::json!(null));
        let more = More {
            alarm_event_id: Some(65535),
            carriage_temperature_c: Some(-5),
            custom_info_length: Some(u32::MAX),
            in_out_area: Some(InOutArea {
                area_id: 7,
                direction: 1,
                location_type: 2,
            }),
            load_state: Some(3),
            overspeed: Some(Overspeed {
                area_id: None,
                location_type: 0,
            }),
            route_time: Some(RouteTime {
                result: 1,
                route_id: 2,
                time_s: 34,
            }),
            tyre_pressure_pa: Some(vec![Some(240), None]),
            vehicle_signals: Some(Flags::new(&SIGNALS, 0b110)),
            other,
        };
        let mut extras = BTreeMap::new();
        extras.insert("0xe1".to_string(), "00ff".to_string());
        extras.insert("0x\\e2".to_string(), "\u{7f}é".to_string());
        Location {
            latitude: 22.543_096,
            longitude: -114.057_865,
            coord_system: CoordSystem::Gcj02,
            altitude_m: Some(f64::NAN),
            speed_kmh: Some(0.1 + 0.2),
            heading_deg: None,
            fix_valid: true,
            alarms: {
                let mut a = Names::from_bits(&ABC, 0b101);
                a.push("overspeed");
                a.push(Cow::Owned("a\tb".to_string()));
                a
            },
            status: Flags::new(&STATUS, 0b01),
            odometer_km: Some(123_456.7),
            fuel_l: Some(f64::INFINITY),
            speed_recorder_kmh: Some(-0.0),
            satellites: Some(12),
            signal_strength: Some(255),
            io_status: Some(Flags::new(&IO, 0b10)),
            analog: Some(Analog { ad0: 1, ad1: 65535 }),
            more,
            extras,
        }
    }

    #[test]
    fn more_writes_its_typed_and_other_entries_in_one_ascending_key_order() {
        let l = full_location();
        let v = serde_json::to_value(&l).unwrap();
        let map = l.more.to_map();
        // The flattened entries are `data`'s keys after `analog`, in the map's order.
        let json = Event::new(
            &EventContext::now("n"),
            "v".into(),
            Protocol::Jt808_2013,
            None,
            None,
            Data::Location(l.clone()),
        )
        .to_json();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        let mut at = json.find("\"analog\"").unwrap();
        for k in &keys {
            let found = json[at..].find(&serde_json::to_string(k).unwrap()).unwrap();
            at += found;
        }
        for (k, want) in &map {
            assert_eq!(&v[k], want, "{k}");
        }
        assert_eq!(
            map["vehicle_signals"],
            serde_json::json!({"abs": false, "brake": true, "x\u{1}y": true})
        );
        assert_eq!(map["overspeed"], serde_json::json!({"location_type": 0}));
        assert_eq!(map["tyre_pressure_pa"], serde_json::json!([240, null]));
        assert!(!l.more.is_empty() && More::default().is_empty());
    }

    fn full_telemetry() -> Telemetry {
        let mut more = serde_json::Map::new();
        more.insert("tail_hex".into(), serde_json::json!("00\"ff"));
        more.insert("a".into(), serde_json::json!([0.1, 1e300, -0.0]));
        Telemetry {
            vehicle: Some(Json::object(vec![
                ("a", Json::Null),
                ("b", Json::Bool(false)),
                ("c", Json::U64(u64::MAX)),
                ("d", Json::I64(i64::MIN)),
                ("e", Json::F64(-1000.5)),
                ("f", Json::F64(f64::NAN)),
                ("g", Json::Str(Cow::Owned("x\u{1}\"y".into()))),
            ])),
            motors: Some(Json::List(vec![Json::object(vec![("no", Json::U64(1))])])),
            battery_voltages: Some(Json::Nums(vec![Some(3.77), None, Some(0.1 + 0.2)])),
            signature: Some(Json::Value(serde_json::json!({"z": 1, "a": [0.5, "s"]}))),
            custom: Some(Json::List(Vec::new())),
            more,
            ..Telemetry::default()
        }
    }

    /// Telemetry whose groups are parts of one written buffer (as GB/T 32960 makes them).
    fn raw_telemetry() -> Telemetry {
        let text = r#"{"a":-40.0,"b":[3.77,null,4.2],"c":"x"}[{"no":1,"z":[]}]{}"#;
        let buf: Arc<[u8]> = Arc::from(text.as_bytes());
        let part = |r: std::ops::Range<usize>| RawJson::new(buf.clone(), r).map(Json::Raw);
        let mut more = serde_json::Map::new();
        more.insert("undecoded".into(), serde_json::json!({"type": "0x99"}));
        Telemetry {
            vehicle: part(0..39),
            motors: part(39..56),
            engine: part(56..58),
            alarm: Some(Json::Raw(RawJson::whole("[]"))),
            more,
            ..Telemetry::default()
        }
    }

    #[test]
    fn raw_parts_are_their_text_and_out_of_range_is_refused() {
        let t = raw_telemetry();
        let Some(Json::Raw(v)) = &t.vehicle else {
            panic!("raw vehicle")
        };
        assert_eq!(v.as_str(), r#"{"a":-40.0,"b":[3.77,null,4.2],"c":"x"}"#);
        assert_eq!(
            v.to_value(),
            serde_json::json!({"a": -40.0, "b": [3.77, null, 4.2], "c": "x"})
        );
        assert!(RawJson::new(Arc::from(&b"[]"[..]), 0..3).is_none());
        let mut out = Vec::new();
        t.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"vehicle":{"a":-40.0,"b":[3.77,null,4.2],"c":"x"},"motors":[{"no":1,"z":[]}],"engine":{},"alarm":[],"undecoded":{"type":"0x99"}}"#
        );
    }

    #[test]
    fn write_json_is_byte_identical_to_serde() {
        let t = Utc.with_ymd_and_hms(2023, 12, 31, 16, 0, 0).unwrap();
        let far = Utc.with_ymd_and_hms(12345, 1, 1, 0, 0, 0).unwrap();
        let datas = vec![
            Data::Location(Location::default()),
            Data::Location(full_location()),
            Data::Telemetry(Box::default()),
            Data::Telemetry(Box::new(raw_telemetry())),
            Data::Telemetry(Box::new(full_telemetry())),
            Data::Lifecycle(Lifecycle::new(LifecycleKind::Register).with("plate", "粤B\"1")),
            Data::Alarm(AlarmEvent {
                name: "overspeed".into(),
                state: AlarmState::Raised,
                level: Some(2),
                detail: serde_json::Map::new(),
            }),
            Data::Passthrough(Passthrough(serde_json::json!({"msg_id": "0x0900"}))),
            Data::CmdResult(CmdResult {
                id: "c\\1".into(),
                status: CmdStatus::Acked,
                reason: None,
                response: Some(serde_json::json!([1, 2])),
                progress_pct: Some(40),
            }),
            Data::Status(Presence {
                online: true,
                reason: PresenceReason::Login,
                protocol: Protocol::Gbt32960_2025,
                peer: Some("1.2.3.4:5".into()),
                since: t,
            }),
        ];
        for data in datas {
            for (time, seq) in [
                (Some(t), Some(17)),
                (None, None),
                (Some(far), Some(u32::MAX)),
            ] {
                let ev = event(data.clone(), time, seq);
                let serde = serde_bytes(&ev);
                assert_eq!(
                    String::from_utf8(fast_bytes(&ev)).unwrap(),
                    String::from_utf8(serde).unwrap()
                );
                assert_eq!(ev.to_json().as_bytes(), serde_bytes(&ev));
            }
        }
    }

    #[test]
    fn an_unknown_protocol_is_null_in_both_writers() {
        let mut ev = event(
            Data::CmdResult(CmdResult {
                id: "c1".into(),
                status: CmdStatus::Queued,
                reason: None,
                response: None,
                progress_pct: None,
            }),
            None,
            None,
        );
        ev.protocol = Protocol::Unknown;
        let fast = fast_bytes(&ev);
        assert_eq!(fast, serde_bytes(&ev));
        let v: serde_json::Value = serde_json::from_slice(&fast).unwrap();
        assert!(v["protocol"].is_null(), "{v}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn write_json_matches_serde_on_any_location(
            lat in proptest::num::f64::ANY,
            lon in -180.0f64..180.0,
            alt in proptest::option::of(proptest::num::f64::ANY),
            speed in proptest::option::of(0u32..100_000),
            alarms in proptest::collection::vec(".{0,12}", 0..4),
            odo in proptest::option::of(proptest::num::f64::ANY),
            sats in proptest::option::of(proptest::num::u8::ANY),
            more_keys in proptest::collection::vec(("\\PC{0,8}", proptest::num::i64::ANY, ".{0,6}"), 0..4),
            extras in proptest::collection::btree_map("[0-9a-fx]{1,4}", "\\PC{0,8}", 0..3),
            vid in "\\PC{0,20}",
            secs in -62_000_000_000i64..300_000_000_000i64,
            nanos in 0u32..1_000_000_000,
            seq in proptest::option::of(proptest::num::u32::ANY),
        ) {
            let mut more = More::default();
            for (k, n, s) in more_keys {
                more.other.insert(k, serde_json::json!({"n": n, "s": s, "f": (n as f64) / 7.0}));
            }
            // Typed entries among them, where the generated keys do not take their names.
            let typed = ["alarm_event_id", "load_state", "vehicle_signals", "in_out_area"];
            if !typed.iter().any(|k| more.other.contains_key(*k)) {
                more.alarm_event_id = sats.map(u16::from);
                more.load_state = sats;
                more.vehicle_signals = sats.map(|b| Flags::new(&ABC, u64::from(b)));
                more.in_out_area = seq.map(|a| InOutArea { area_id: a, direction: 0, location_type: 1 });
            }
            let loc = Location {
                latitude: lat,
                longitude: lon,
                altitude_m: alt,
                speed_kmh: speed.map(|s| f64::from(s) / 10.0),
                alarms: alarms.into_iter().map(Cow::Owned).collect(),
                odometer_km: odo,
                satellites: sats,
                more,
                extras,
                ..Location::default()
            };
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let mut ev = event(Data::Location(loc), Some(t), seq);
            ev.vehicle_id = vid.into();
            ev.received_at = t;
            proptest::prop_assert_eq!(fast_bytes(&ev), serde_bytes(&ev));
        }
    }

    #[test]
    fn envelope_has_every_contract_field_in_order() {
        let ctx = EventContext {
            gateway: "node-1".into(),
            received_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::milliseconds(123),
            device_utc_offset_secs: 8 * 3600,
        };
        let ev = Event::new(
            &ctx,
            "013800138000".into(),
            Protocol::Jt808_2013,
            Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            Some(17),
            Data::Lifecycle(Lifecycle::new(LifecycleKind::Login)),
        );
        let v: serde_json::Value = serde_json::from_str(&ev.to_json()).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["event_id"].as_str().unwrap().len(), 26);
        assert_eq!(v["protocol"], "jt808-2013");
        assert_eq!(v["type"], "lifecycle");
        assert_eq!(v["device_time"], "2024-01-01T00:00:00Z");
        assert_eq!(v["received_at"], "2024-01-01T00:00:00.123Z");
        assert_eq!(v["gateway"], "node-1");
        assert_eq!(v["msg_seq"], 17);
        assert_eq!(v["reissue"], false);
        assert_eq!(v["data"]["event"], "login");
        let keys: Vec<_> = ev.to_json().match_indices("\":").map(|(i, _)| i).collect();
        assert!(keys.len() >= 11);
    }
}
