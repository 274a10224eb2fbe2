//! GB/T 32960 messages to normalized events (contract §3).
//!
//! A real-time (0x02) or reissue (0x03) report becomes one `telemetry` event, plus a
//! `location` event when it has a position unit. Both editions fill the same field names;
//! every value is scaled into physical units and a sentinel (0xFE/0xFF, 0xFFFE/0xFFFF,
//! 0xFFFFFFFE/0xFFFFFFFF) becomes JSON null, in number and code fields too (subsystem, pack,
//! motor, stack, cell, probe and sensor numbers, state codes, alarm levels: `id8`, `id16`,
//! `code`; `tests/sentinels.rs` has one case per field). Logins and logouts become `lifecycle` events,
//! everything else a `passthrough` with the protocol-level JSON ([`crate::raw_json`]).
//!
//! GB/T 32960 frames carry no serial number: real-time events have `msg_seq` null; logins
//! and logouts use their login sequence number. Times are Beijing time on the wire
//! (GB/T 32960.3 §6.4, configurable via `ctx.device_utc_offset_secs`); events carry UTC.
//!
//! # How telemetry is written
//!
//! A report's groups are written as JSON straight from its units ([`telemetry`]): keys are
//! constants in ascending byte order (the order of the `serde_json::Map` the contract's
//! JSON was first made from), values come from their wire integers (a WORD of 0.1 V is
//! printed as the decimal it is, no float in between), cell voltages and probe
//! temperatures from compile-time tables of their text. The groups go into one buffer
//! shared by the event's [`RawJson`] parts: no tree of values, no allocation per group or
//! per cell. Why: the tree (a `Vec` per object, then walked to be written) was most of a
//! report's cost. The bytes are those of the tree, checked against it (kept as the
//! oracle in `tests/tree`) on generated reports, and every wire value of every scale in
//! use is checked against the float the tree held.
//!
//! [`Options`] selects a compact layout of the cell lists ([`CellLists::Compact`]:
//! millivolts and whole degrees as integers); the default is the contract's.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use base64::Engine as _;
use codecs::event::{
    json, CoordSystem, Data, Event, EventContext, FlagNames, Flags, Json, Lifecycle, LifecycleKind,
    Location, Passthrough, RawJson, Telemetry,
};
use serde_json::{json, Map, Value};

use crate::msg::login::LoginBatteries;
use crate::realtime::alarm::FLAG_NAMES;
use crate::realtime::{
    scaled_u16, Alarm, Custom, Engine, Extremes, FuelCell, H2System, Motor, PackVoltages, Report,
    Stack, Supercap, SupercapExtremes, Unit, Vehicle,
};
use crate::{Edition, Frame, Message};

/// Normalizer options: how a report is laid out in its `telemetry` event. The default is
/// the contract's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// The layout of cell voltage and probe temperature lists.
    pub cell_lists: CellLists,
}

/// The layout of cell voltage and probe temperature lists (a pack's 96 cells and 32
/// probes are most of a report's JSON: 5-6 bytes per cell written as volts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CellLists {
    /// The contract's: voltages in volts (`"cell_voltages_v":[3.77,3.771,null]`),
    /// temperatures in °C with a decimal point (`"temperatures_c":[25.0,-40.0,null]`).
    #[default]
    Floats,
    /// Integers, exact and shorter (a 96-cell pack: about 480 bytes of values instead of
    /// 560): voltages in millivolts under the key `cell_voltages_mv`
    /// (`"cell_voltages_mv":[3770,3771,null]`, pack and super-capacitor cells alike);
    /// temperatures keep their keys (`temperatures_c`, `probe_temperatures_c`,
    /// `coolant_outlet_temperatures_c`) and unit, written as whole numbers
    /// (`"temperatures_c":[25,-40,null]`), the same values. Sentinels are `null` as in
    /// [`CellLists::Floats`]; every other field is unchanged.
    Compact,
}

/// `{"k":`: an object's first key, one constant copy.
macro_rules! open {
    ($out:expr, $k:literal) => {
        $out.extend_from_slice(concat!("{\"", $k, "\":").as_bytes())
    };
}

/// `,"k":`: an object's next key, one constant copy.
macro_rules! key {
    ($out:expr, $k:literal) => {
        $out.extend_from_slice(concat!(",\"", $k, "\":").as_bytes())
    };
}

/// A BYTE value plus `offset` in its unit, `None` for 0xFE abnormal / 0xFF invalid.
fn v8(raw: u8, offset: i64) -> Option<i64> {
    (raw < 0xFE).then(|| i64::from(raw) + offset)
}

/// A WORD value plus `offset` in its unit, `None` for 0xFFFE / 0xFFFF.
fn v16(raw: u16, offset: i64) -> Option<i64> {
    (raw < 0xFFFE).then(|| i64::from(raw) + offset)
}

/// A DWORD value plus `offset` in its unit, `None` for 0xFFFFFFFE / 0xFFFFFFFF.
fn v32(raw: u32, offset: i64) -> Option<i64> {
    (raw < 0xFFFF_FFFE).then(|| i64::from(raw) + offset)
}

/// `n * 10^-D` as the float the scaled value is (`scaled_u16(raw, 0.1, ..)` rounded to
/// 1e-6, or a whole number): `65.2`, `25.0`, `-1000.0`; `null` for `None`. Written from
/// the integer, digit by digit: the same bytes (`values_written_from_integers_are_the_floats_
/// the_normalizer_computed` compares them for every wire value of every field's scale).
fn fixed<const D: u32>(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => json::fixed::<D>(out, n < 0, n.unsigned_abs()),
        None => out.extend_from_slice(b"null"),
    }
}

/// A one-byte number or code (subsystem, motor, cell, probe, sensor number...): `null`
/// for 0xFE abnormal / 0xFF invalid (contract §3: never 254 or 255).
fn id8(out: &mut Vec<u8>, n: u8) {
    match n {
        0xFE.. => out.extend_from_slice(b"null"),
        0..=9 => out.push(b'0' + n),
        _ => json::u64(out, u64::from(n)),
    }
}

/// A two-byte number, code or count: `null` for 0xFFFE abnormal / 0xFFFF invalid.
fn id16(out: &mut Vec<u8>, n: u16) {
    if n >= 0xFFFE {
        out.extend_from_slice(b"null");
    } else {
        json::u64(out, u64::from(n));
    }
}

/// A name from `names` for a code, `unknown_<n>` for another, `null` for 0xFE / 0xFF.
fn code(out: &mut Vec<u8>, raw: u8, names: &[(u8, &'static str)]) {
    if raw >= 0xFE {
        return out.extend_from_slice(b"null");
    }
    out.push(b'"');
    match names.iter().find(|(c, _)| *c == raw) {
        Some((_, n)) => out.extend_from_slice(n.as_bytes()),
        None => {
            out.extend_from_slice(b"unknown_");
            json::u64(out, u64::from(raw));
        }
    }
    out.push(b'"');
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    json::bool(out, b);
}

/// A lowercase hex digit.
const fn hex_digit(n: u8) -> u8 {
    if n < 10 {
        b'0' + n
    } else {
        b'a' + (n & 0x0F) - 10
    }
}

/// Bytes as a lowercase hex string (two digits per byte from [`HEX2`]).
fn hex_str(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() * 2 + 2);
    out.push(b'"');
    for x in b {
        if let Some(d) = HEX2.get(usize::from(*x)) {
            out.extend_from_slice(d);
        }
    }
    out.push(b'"');
}

/// The two lowercase hex digits of every byte. Built at compile time.
static HEX2: [[u8; 2]; 256] = hex_table();

// Indexing in a const fn run at compile time: out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn hex_table() -> [[u8; 2]; 256] {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [hex_digit(i as u8 >> 4), hex_digit(i as u8 & 0x0F)];
        i += 1;
    }
    t
}

const GEARS: [&str; 16] = [
    "N", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "R", "D", "P",
];

/// Gear as a string: `N`, `1`..`12`, `R`, `D`, `P` (bits 0-3, 2016 table 9 note / 2025).
fn gear(out: &mut Vec<u8>, raw: u8, ed: Edition) {
    let g = (raw < 0xFE && !(ed == Edition::V2025 && raw & 0x80 != 0))
        .then(|| GEARS.get(usize::from(raw & 0x0F)))
        .flatten();
    match g {
        Some(g) => {
            out.push(b'"');
            out.extend_from_slice(g.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// A list of values, each written by `f`.
fn list<T>(out: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f(out, x);
    }
    out.push(b']');
}

/// Probe temperatures: BYTE, offset -40, 0xFE/0xFF null: `25.0` (the floats
/// `scaled_u8(x, 1.0, -40.0)` were). Each value's text, with the comma before it, is read
/// from [`TEMPS`].
fn temps(out: &mut Vec<u8>, l: &[u8], lists: CellLists) {
    if lists == CellLists::Compact {
        return list(out, l, |out, t| match v8(*t, -40) {
            Some(n) => json::i64(out, n),
            None => out.extend_from_slice(b"null"),
        });
    }
    let start = out.len();
    let mut chunk = Chunk::new();
    for t in l {
        if let Some(e) = TEMPS.get(usize::from(*t)) {
            chunk.entry(out, e);
        }
    }
    chunk.flush(out);
    close_list(out, start);
}

/// Cell voltages: WORD in mV, 0xFFFE/0xFFFF null, written in volts: `3.77` (the floats
/// `round6(scaled_u16(c, 0.001, 0.0))` were). Below 10 V (every cell voltage there is)
/// each value's text, with the comma before it, is read from [`VOLTS`].
fn millivolts<'a>(out: &mut Vec<u8>, parts: impl Iterator<Item = &'a [u16]>, lists: CellLists) {
    let start = out.len();
    if lists == CellLists::Compact {
        for cells in parts {
            for c in cells {
                out.push(b',');
                id16(out, *c);
            }
        }
        return close_list(out, start);
    }
    let mut chunk = Chunk::new();
    for cells in parts {
        for c in cells {
            match VOLTS.get(usize::from(*c)) {
                Some(e) => chunk.entry(out, e),
                None => {
                    chunk.flush(out);
                    out.push(b',');
                    fixed::<3>(out, v16(*c, 0));
                }
            }
        }
    }
    chunk.flush(out);
    close_list(out, start);
}

/// A list's values gathered on the stack and appended to the output 512 bytes at a time:
/// the position is a local (a register), where appending each value to the `Vec` made
/// every value wait for the previous one's length to be stored and read back.
struct Chunk {
    buf: [u8; 512],
    pos: usize,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            buf: [0; 512],
            pos: 0,
        }
    }

    /// Appends a table entry: up to 7 bytes of text, its length in the 8th (one 8-byte
    /// copy; the unused bytes are overwritten by the next entry or left out).
    #[inline]
    fn entry(&mut self, out: &mut Vec<u8>, e: &[u8; 8]) {
        if self.pos + 8 > self.buf.len() {
            self.flush(out);
        }
        let [.., len] = *e;
        if let Some(d) = self.buf.get_mut(self.pos..self.pos + 8) {
            d.copy_from_slice(e);
            self.pos += usize::from(len);
        }
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.buf.get(..self.pos).unwrap_or_default());
        self.pos = 0;
    }
}

/// Turns the values written from `start` on, each with a comma before it, into a list:
/// the first comma becomes `[` (or `[]` when there are none).
fn close_list(out: &mut Vec<u8>, start: usize) {
    match out.get_mut(start) {
        Some(b) => {
            *b = b'[';
            out.push(b']');
        }
        None => out.extend_from_slice(b"[]"),
    }
}

/// `,` and the text of every probe temperature byte (`,25.0`, `,-40.0`, `,null` for
/// 0xFE/0xFF), what [`json::fixed`] writes for it; its length in the last byte. Built at
/// compile time.
static TEMPS: [[u8; 8]; 256] = temps_table();

#[allow(clippy::indexing_slicing)]
const fn temps_table() -> [[u8; 8]; 256] {
    let mut t = [[0u8; 8]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = temp_entry(i as u8);
        i += 1;
    }
    t
}

/// `,` and the text of every millivolt value below 10 V in volts (`,3.77`, `,0.0`), what
/// [`json::fixed`] writes for it; its length in the last byte. Built at compile time
/// (80 KB; a pack's cells are within a few hundred mV of each other, so the few entries
/// in use stay in cache).
static VOLTS: [[u8; 8]; 10_000] = volts_table();

#[allow(clippy::indexing_slicing)]
const fn volts_table() -> [[u8; 8]; 10_000] {
    let mut t = [[0u8; 8]; 10_000];
    let mut i = 0;
    while i < 10_000 {
        t[i] = volt_entry(i as u32);
        i += 1;
    }
    t
}

// Indexing in a const fn is checked by the compiler: out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn temp_entry(raw: u8) -> [u8; 8] {
    let mut e = [0u8; 8];
    e[0] = b',';
    if raw >= 0xFE {
        e[1] = b'n';
        e[2] = b'u';
        e[3] = b'l';
        e[4] = b'l';
        e[7] = 5;
        return e;
    }
    let v = raw as i32 - 40;
    let m = v.unsigned_abs();
    let mut i = 1;
    if v < 0 {
        e[i] = b'-';
        i += 1;
    }
    if m >= 100 {
        e[i] = b'0' + (m / 100) as u8;
        i += 1;
    }
    if m >= 10 {
        e[i] = b'0' + (m / 10 % 10) as u8;
        i += 1;
    }
    e[i] = b'0' + (m % 10) as u8;
    e[i + 1] = b'.';
    e[i + 2] = b'0';
    e[7] = i as u8 + 3;
    e
}

#[allow(clippy::indexing_slicing)]
const fn volt_entry(mv: u32) -> [u8; 8] {
    let mut e = [0u8; 8];
    e[0] = b',';
    e[1] = b'0' + (mv / 1000) as u8;
    e[2] = b'.';
    let frac = mv % 1000;
    if frac == 0 {
        e[3] = b'0';
        e[7] = 4;
        return e;
    }
    let digits = [frac / 100, frac / 10 % 10, frac % 10];
    let mut n = 3;
    while digits[n - 1] == 0 {
        n -= 1;
    }
    let mut i = 0;
    while i < n {
        e[3 + i] = b'0' + digits[i] as u8;
        i += 1;
    }
    e[7] = 3 + n as u8;
    e
}

/// A current in 0.1 A with the edition's offset (-1000 A in 2016, -3000 A in 2025), in
/// tenths.
fn current_offset(ed: Edition) -> i64 {
    match ed {
        Edition::V2016 => -10_000,
        Edition::V2025 => -30_000,
    }
}

fn vehicle(out: &mut Vec<u8>, v: &Vehicle, ed: Edition) {
    // Keys in ascending byte order: the order of the `serde_json::Map` this stands for.
    open!(out, "accel_pedal_pct");
    match v.pedals {
        Some((a, b)) => {
            fixed::<0>(out, v8(a, 0));
            key!(out, "brake_pedal_pct");
            // 0x65 on the brake pedal = braking without a travel value (2016 table B.4).
            fixed::<0>(out, if b == 0x65 { None } else { v8(b, 0) });
            key!(out, "braking");
            boolean(out, b == 0x65);
        }
        None => out.extend_from_slice(b"null,\"brake_pedal_pct\":null,\"braking\":null"),
    }
    key!(out, "braking_force");
    boolean(out, v.gear < 0xFE && v.gear & 0x10 != 0);
    key!(out, "charging");
    code(
        out,
        v.charging,
        &[
            (1, "parked_charging"),
            (2, "driving_charging"),
            (3, "not_charging"),
            (4, "charged"),
        ],
    );
    key!(out, "dcdc_on");
    match v.dcdc {
        1 => boolean(out, true),
        2 => boolean(out, false),
        _ => out.extend_from_slice(b"null"),
    }
    key!(out, "driving_force");
    boolean(out, v.gear < 0xFE && v.gear & 0x20 != 0);
    key!(out, "gear");
    gear(out, v.gear, ed);
    key!(out, "insulation_kohm");
    // 2016 insulation has no sentinel (protocol notes), 2025 has.
    if ed == Edition::V2016 {
        json::u64(out, u64::from(v.insulation));
    } else {
        fixed::<0>(out, v16(v.insulation, 0));
    }
    key!(out, "mode");
    code(out, v.mode, &[(1, "ev"), (2, "hybrid"), (3, "fuel")]);
    key!(out, "odometer_km");
    fixed::<1>(out, v32(v.odometer, 0));
    key!(out, "soc_pct");
    fixed::<0>(out, v8(v.soc, 0));
    key!(out, "speed_kmh");
    fixed::<1>(out, v16(v.speed, 0));
    key!(out, "state");
    code(
        out,
        v.state,
        &[(1, "started"), (2, "stopped"), (3, "other")],
    );
    key!(out, "total_current_a");
    fixed::<1>(out, v16(v.total_current, current_offset(ed)));
    key!(out, "total_voltage_v");
    fixed::<1>(out, v16(v.total_voltage, 0));
    out.push(b'}');
}

fn motor(out: &mut Vec<u8>, m: &Motor, ed: Edition) {
    open!(out, "controller_temperature_c");
    fixed::<0>(out, v8(m.controller_temp, -40));
    if let Some((v, i)) = m.input {
        key!(out, "controller_voltage_v");
        fixed::<1>(out, v16(v, 0));
        key!(out, "dc_bus_current_a");
        fixed::<1>(out, v16(i, -10_000));
    }
    key!(out, "no");
    id8(out, m.no);
    key!(out, "rpm");
    let rpm_offset = match ed {
        Edition::V2016 => -20_000,
        Edition::V2025 => -32_000,
    };
    fixed::<0>(out, v16(m.rpm, rpm_offset));
    key!(out, "state");
    code(
        out,
        m.state,
        &[
            (1, "consuming"),
            (2, "generating"),
            (3, "off"),
            (4, "ready"),
        ],
    );
    key!(out, "temperature_c");
    fixed::<0>(out, v8(m.motor_temp, -40));
    key!(out, "torque_nm");
    // 0.1 N·m, offset -2000 N·m (2016 WORD) / -20000 N·m (2025 DWORD).
    let torque = match ed {
        Edition::V2016 => v16(u16::try_from(m.torque).unwrap_or(u16::MAX), -20_000),
        Edition::V2025 => v32(m.torque, -200_000),
    };
    fixed::<1>(out, torque);
    out.push(b'}');
}

/// Fault codes as 8-digit lowercase hex strings.
fn codes(out: &mut Vec<u8>, l: &[u32]) {
    out.reserve(l.len() * 11 + 2);
    list(out, l, |out, c| hex_str(out, &c.to_be_bytes()));
}

fn alarm(out: &mut Vec<u8>, a: &Alarm) {
    open!(out, "engine_faults");
    codes(out, &a.engine_faults);
    key!(out, "flags");
    out.push(b'[');
    let mut first = true;
    // The set bits, lowest first.
    let mut bits = a.flags;
    while bits != 0 {
        let b = bits.trailing_zeros();
        bits &= bits - 1;
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        match FLAG_NAMES.get(b as usize) {
            Some(n) => out.extend_from_slice(n.as_bytes()),
            None => {
                out.extend_from_slice(b"bit");
                json::u64(out, u64::from(b));
            }
        }
        out.push(b'"');
    }
    out.push(b']');
    if let Some(g) = &a.general {
        key!(out, "general");
        list(out, g, |out, (b, l)| {
            open!(out, "bit");
            id8(out, *b);
            key!(out, "level");
            id8(out, *l);
            out.push(b'}');
        });
    }
    key!(out, "level");
    id8(out, a.level);
    key!(out, "motor_faults");
    codes(out, &a.motor_faults);
    key!(out, "other_faults");
    codes(out, &a.other_faults);
    key!(out, "ress_faults");
    codes(out, &a.ress_faults);
    out.push(b'}');
}

/// The 1-based number of a pack part's first cell and the pack's total cell count (2016
/// WORD; 2025 the cells sent); a 0xFFFE/0xFFFF start or count is `None`.
fn pack_part(p: &PackVoltages) -> (Option<u16>, Option<u16>) {
    match p.split {
        Some((total, start)) => (
            (start < 0xFFFE).then_some(start.max(1)),
            (total < 0xFFFE).then_some(total),
        ),
        None => (Some(1), u16::try_from(p.cells.len()).ok()),
    }
}

/// `battery_voltages`: one entry per pack part, each with `first_cell`, the 1-based number
/// of its first cell. A pack of more than 200 cells comes in several frames (2016 table
/// B.6: total count, start cell of this frame, cells in this frame); each frame's part is
/// published as it comes, from its start cell (`first_cell: 201`, not 200 leading nulls).
/// Parts of one pack in one frame are put in start-cell order and joined where one continues
/// the other; a part that does not continue the one before it is an entry of its own. A
/// 0xFFFE/0xFFFF start cell is `first_cell: null`. 2025 has no split fields: every list
/// starts at cell 1.
///
/// Written from the report's packs: the common frame (one part per pack, in pack order)
/// takes no allocation; several parts are ordered through a list of their indexes.
fn voltages(out: &mut Vec<u8>, packs: &[PackVoltages], ed: Edition, lists: CellLists) {
    // The parts of a pack together (packs in the order they first appear), by start cell.
    let first_seen = |no: u8| packs.iter().position(|p| p.no == no).unwrap_or(usize::MAX);
    let sort_key = |p: &PackVoltages| (first_seen(p.no), pack_part(p).0.unwrap_or(u16::MAX));
    let in_order = packs
        .windows(2)
        .all(|w| matches!(w, [a, b] if sort_key(a) <= sort_key(b)));
    // A stable sort, as the parts' order was: equal keys keep their frame order.
    let order: Vec<usize> = if in_order {
        Vec::new()
    } else {
        let mut o: Vec<usize> = (0..packs.len()).collect();
        o.sort_by_key(|i| packs.get(*i).map(sort_key));
        o
    };
    let part = |k: usize| {
        if in_order {
            packs.get(k)
        } else {
            order.get(k).and_then(|i| packs.get(*i))
        }
    };
    out.push(b'[');
    let mut k = 0;
    while let Some(p) = part(k) {
        // This part and the ones that continue it.
        let (first_cell, cell_count) = pack_part(p);
        let mut end = k + 1;
        let mut next_cell = first_cell.map(|a| usize::from(a) + p.cells.len());
        while let Some(q) = part(end) {
            match (next_cell, pack_part(q).0) {
                (Some(n), Some(b)) if q.no == p.no && n == usize::from(b) => {
                    next_cell = Some(n + q.cells.len());
                    end += 1;
                }
                _ => break,
            }
        }
        if k > 0 {
            out.push(b',');
        }
        open!(out, "cell_count");
        match cell_count {
            Some(n) => id16(out, n),
            None => out.extend_from_slice(b"null"),
        }
        match lists {
            CellLists::Floats => key!(out, "cell_voltages_v"),
            CellLists::Compact => key!(out, "cell_voltages_mv"),
        }
        let cells = (k..end).filter_map(&part).map(|q| q.cells.as_slice());
        millivolts(out, cells, lists);
        key!(out, "current_a");
        fixed::<1>(out, v16(p.current, current_offset(ed)));
        key!(out, "first_cell");
        match first_cell {
            Some(n) => id16(out, n),
            None => out.extend_from_slice(b"null"),
        }
        key!(out, "no");
        id8(out, p.no);
        key!(out, "voltage_v");
        fixed::<1>(out, v16(p.voltage, 0));
        out.push(b'}');
        k = end;
    }
    out.push(b']');
}

fn fuel_cell(out: &mut Vec<u8>, f: &FuelCell, lists: CellLists) {
    open!(out, "current_a");
    fixed::<1>(out, v16(f.current, 0));
    key!(out, "dcdc");
    code(out, f.dcdc, &[(1, "working"), (2, "off")]);
    key!(out, "h2_consumption_kg_per_100km");
    fixed::<2>(out, v16(f.consumption, 0));
    key!(out, "h2_max_concentration_mg_per_kg");
    fixed::<0>(out, v16(f.h2_max_conc, 0));
    key!(out, "h2_max_concentration_sensor");
    id8(out, f.h2_max_conc_sensor);
    key!(out, "h2_max_pressure_mpa");
    fixed::<1>(out, v16(f.h2_max_pressure, 0));
    key!(out, "h2_max_pressure_sensor");
    id8(out, f.h2_max_pressure_sensor);
    key!(out, "h2_max_temperature_c");
    fixed::<1>(out, v16(f.h2_max_temp, -400));
    key!(out, "h2_max_temperature_probe");
    id8(out, f.h2_max_temp_probe);
    key!(out, "probe_temperatures_c");
    temps(out, &f.probe_temps, lists);
    key!(out, "voltage_v");
    fixed::<1>(out, v16(f.voltage, 0));
    out.push(b'}');
}

fn h2_system(out: &mut Vec<u8>, h: &H2System) {
    open!(out, "dcdc");
    code(out, h.dcdc, &[(1, "working"), (2, "off")]);
    key!(out, "dcdc_temperature_c");
    fixed::<0>(out, v8(h.dcdc_temp, -40));
    key!(out, "h2_max_concentration_pct");
    fixed::<4>(out, v16(h.max_conc, 0));
    key!(out, "h2_max_concentration_sensor");
    id8(out, h.max_conc_sensor);
    key!(out, "h2_max_pressure_mpa");
    fixed::<1>(out, v16(h.max_pressure, 0));
    key!(out, "h2_max_pressure_sensor");
    id8(out, h.max_pressure_sensor);
    key!(out, "h2_max_temperature_c");
    fixed::<0>(out, v16(h.max_temp, -40));
    key!(out, "h2_max_temperature_probe");
    id8(out, h.max_temp_probe);
    key!(out, "h2_remaining_pct");
    fixed::<0>(out, v8(h.remaining_pct, 0));
    out.push(b'}');
}

fn stack(out: &mut Vec<u8>, s: &Stack, lists: CellLists) {
    open!(out, "air_inlet_pressure_kpa");
    fixed::<1>(out, v16(s.air_inlet_pressure, -1000));
    key!(out, "air_inlet_temperature_c");
    fixed::<0>(out, v8(s.air_inlet_temp, -40));
    key!(out, "coolant_outlet_temperatures_c");
    temps(out, &s.coolant_temps, lists);
    key!(out, "current_a");
    fixed::<1>(out, v16(s.current, 0));
    key!(out, "h2_inlet_pressure_kpa");
    fixed::<1>(out, v16(s.h2_inlet_pressure, -1000));
    key!(out, "no");
    id8(out, s.no);
    key!(out, "voltage_v");
    fixed::<1>(out, v16(s.voltage, 0));
    out.push(b'}');
}

fn engine(out: &mut Vec<u8>, e: &Engine) {
    open!(out, "crank_rpm");
    fixed::<0>(out, v16(e.crank_rpm, 0));
    key!(out, "fuel_l_per_100km");
    fixed::<2>(out, e.fuel_rate.and_then(|f| v16(f, 0)));
    key!(out, "state");
    match e.state {
        Some(s) => code(out, s, &[(1, "on"), (2, "off")]),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn extremes(out: &mut Vec<u8>, x: &Extremes) {
    open!(out, "max_cell_voltage_cell");
    id8(out, x.max_v_cell);
    key!(out, "max_cell_voltage_subsystem");
    id8(out, x.max_v_subsystem);
    key!(out, "max_cell_voltage_v");
    fixed::<3>(out, v16(x.max_cell_v, 0));
    key!(out, "max_temperature_c");
    fixed::<0>(out, v8(x.max_t, -40));
    key!(out, "max_temperature_probe");
    id8(out, x.max_t_probe);
    key!(out, "max_temperature_subsystem");
    id8(out, x.max_t_subsystem);
    key!(out, "min_cell_voltage_cell");
    id8(out, x.min_v_cell);
    key!(out, "min_cell_voltage_subsystem");
    id8(out, x.min_v_subsystem);
    key!(out, "min_cell_voltage_v");
    fixed::<3>(out, v16(x.min_cell_v, 0));
    key!(out, "min_temperature_c");
    fixed::<0>(out, v8(x.min_t, -40));
    key!(out, "min_temperature_probe");
    id8(out, x.min_t_probe);
    key!(out, "min_temperature_subsystem");
    id8(out, x.min_t_subsystem);
    out.push(b'}');
}

fn supercap(
    out: &mut Vec<u8>,
    s: Option<&Supercap>,
    x: Option<&SupercapExtremes>,
    lists: CellLists,
) {
    out.push(b'{');
    if let Some(s) = s {
        out.extend_from_slice(match lists {
            CellLists::Floats => b"\"cell_voltages_v\":",
            CellLists::Compact => b"\"cell_voltages_mv\":",
        });
        millivolts(out, std::iter::once(s.cells.as_slice()), lists);
        key!(out, "current_a");
        fixed::<1>(out, v16(s.current, -30_000));
        out.push(b',');
    }
    if let Some(x) = x {
        out.extend_from_slice(b"\"extremes\":");
        open!(out, "max_cell_voltage_cell");
        id16(out, x.max_v.1);
        key!(out, "max_cell_voltage_system");
        id8(out, x.max_v.0);
        key!(out, "max_cell_voltage_v");
        fixed::<3>(out, v16(x.max_v.2, 0));
        key!(out, "max_temperature_c");
        fixed::<0>(out, v8(x.max_t.2, -40));
        key!(out, "max_temperature_probe");
        id16(out, x.max_t.1);
        key!(out, "max_temperature_system");
        id8(out, x.max_t.0);
        key!(out, "min_cell_voltage_cell");
        id16(out, x.min_v.1);
        key!(out, "min_cell_voltage_system");
        id8(out, x.min_v.0);
        key!(out, "min_cell_voltage_v");
        fixed::<3>(out, v16(x.min_v.2, 0));
        key!(out, "min_temperature_c");
        fixed::<0>(out, v8(x.min_t.2, -40));
        key!(out, "min_temperature_probe");
        id16(out, x.min_t.1);
        key!(out, "min_temperature_system");
        id8(out, x.min_t.0);
        out.extend_from_slice(b"},");
    }
    if let Some(s) = s {
        out.extend_from_slice(b"\"system\":");
        id8(out, s.system);
        key!(out, "temperatures_c");
        temps(out, &s.temps, lists);
        key!(out, "voltage_v");
        fixed::<1>(out, v16(s.voltage, 0));
        out.push(b',');
    }
    // The last field's comma becomes the closing brace.
    match out.last_mut() {
        Some(b) if *b == b',' => *b = b'}',
        _ => out.push(b'}'),
    }
}

fn custom(out: &mut Vec<u8>, c: &Custom) {
    open!(out, "data");
    hex_str(out, &c.data);
    key!(out, "type");
    out.extend_from_slice(b"\"0x");
    out.extend_from_slice(&[hex_digit(c.type_id >> 4), hex_digit(c.type_id & 0x0F), b'"']);
    out.push(b'}');
}

/// Where each group of a report is in the buffer they are written to.
#[derive(Default)]
struct Groups {
    vehicle: Option<Range<usize>>,
    motors: Option<Range<usize>>,
    fuel_cell: Option<Range<usize>>,
    engine: Option<Range<usize>>,
    extremes: Option<Range<usize>>,
    alarm: Option<Range<usize>>,
    battery_voltages: Option<Range<usize>>,
    battery_temperatures: Option<Range<usize>>,
    supercap: Option<Range<usize>>,
    fuel_cell_stacks: Option<Range<usize>>,
    custom: Option<Range<usize>>,
}

/// Writes one group with `f` and gives its range.
fn group(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Option<Range<usize>> {
    let start = out.len();
    f(out);
    Some(start..out.len())
}

/// The `telemetry` data of a report.
///
/// Every group is written as JSON straight from the report's units into one buffer (keys
/// as constants in ascending order, values from their wire integers), and the groups are
/// [`RawJson`] parts of it: no tree of values per group, no allocation per group. The bytes
/// are those a `serde_json::Value` of the same content gives (`tests/realtime.rs` compares
/// them with the tree the normalizer built before, `tests/tree`, on generated reports of
/// both editions). The 2025 `signature` stays a [`Json`] object (the gateway adds its
/// verification `status` to it), and the rare `extra_alarms` and `undecoded` go to `more`.
pub fn telemetry(report: &Report, edition: Edition) -> Telemetry {
    telemetry_with(report, edition, Options::default())
}

/// [`telemetry`] with normalizer options (the layout of cell lists).
pub fn telemetry_with(report: &Report, edition: Edition, opts: Options) -> Telemetry {
    let mut t = Telemetry::default();
    fill_telemetry(report, edition, opts, &mut t);
    t
}

/// Writes the telemetry of a report into `t` (a default one: in place in the event's box,
/// not built on the stack and moved there).
fn fill_telemetry(report: &Report, edition: Edition, opts: Options, t: &mut Telemetry) {
    thread_local! {
        /// The buffer the groups are written to before they are copied into their shared
        /// `Arc` (kept: one allocation per report, not two).
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let (g, buf) = SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut out) => {
            out.clear();
            let g = write_groups(report, edition, opts, &mut out, t);
            let buf: Arc<[u8]> = Arc::from(out.as_slice());
            // A report of thousands of cells leaves no large buffer behind.
            if out.capacity() > 64 * 1024 {
                *out = Vec::new();
            }
            (g, buf)
        }
        Err(_) => {
            let mut out = Vec::with_capacity(4096);
            let g = write_groups(report, edition, opts, &mut out, t);
            (g, Arc::from(out))
        }
    });
    let raw = |r: Option<Range<usize>>| r.and_then(|r| RawJson::new(buf.clone(), r)).map(Json::Raw);
    t.vehicle = raw(g.vehicle);
    t.motors = raw(g.motors);
    t.fuel_cell = raw(g.fuel_cell);
    t.engine = raw(g.engine);
    t.extremes = raw(g.extremes);
    t.alarm = raw(g.alarm);
    t.battery_voltages = raw(g.battery_voltages);
    t.battery_temperatures = raw(g.battery_temperatures);
    t.supercap = raw(g.supercap);
    t.fuel_cell_stacks = raw(g.fuel_cell_stacks);
    t.custom = raw(g.custom);
}

/// Writes the groups of `report` into `out` and gives where each is; the signature,
/// `extra_alarms` and `undecoded` go into `t` directly.
fn write_groups(
    report: &Report,
    edition: Edition,
    opts: Options,
    out: &mut Vec<u8>,
    t: &mut Telemetry,
) -> Groups {
    let lists = opts.cell_lists;
    let ed = edition;
    let mut g = Groups::default();
    let mut custom_units = 0usize;
    // 0x31 and 0x32 share the `supercap` group (the last unit of each type wins).
    let mut cap: Option<&Supercap> = None;
    let mut cap_x: Option<&SupercapExtremes> = None;
    for u in &report.units {
        match u {
            Unit::Vehicle(v) => g.vehicle = group(out, |o| vehicle(o, v, ed)),
            Unit::Motors { motors } => {
                g.motors = group(out, |o| list(o, motors, |o, m| motor(o, m, ed)))
            }
            Unit::FuelCell(f) => g.fuel_cell = group(out, |o| fuel_cell(o, f, lists)),
            Unit::Engine(e) => g.engine = group(out, |o| engine(o, e)),
            Unit::Location(_) => {}
            Unit::Extremes(x) => g.extremes = group(out, |o| extremes(o, x)),
            Unit::Alarm(a) => {
                if g.alarm.is_none() {
                    g.alarm = group(out, |o| alarm(o, a));
                } else {
                    // A second alarm unit in one frame (seen in the wild, rtm_con "weird
                    // message") is kept too, in `more.extra_alarms`, never dropped.
                    let mut o = Vec::new();
                    alarm(&mut o, a);
                    let v = serde_json::from_slice(&o).unwrap_or(Value::Null);
                    if let Value::Array(l) = t
                        .more
                        .entry("extra_alarms")
                        .or_insert_with(|| Value::Array(Vec::new()))
                    {
                        l.push(v);
                    }
                }
            }
            Unit::Voltages { packs } => {
                g.battery_voltages = group(out, |o| voltages(o, packs, ed, lists))
            }
            Unit::Temperatures { packs } => {
                g.battery_temperatures = group(out, |o| {
                    list(o, packs, |o, p| {
                        open!(o, "no");
                        id8(o, p.no);
                        key!(o, "probe_count");
                        json::u64(o, p.temps.len() as u64);
                        key!(o, "temperatures_c");
                        temps(o, &p.temps, lists);
                        o.push(b'}');
                    })
                })
            }
            Unit::H2System(h) => g.fuel_cell = group(out, |o| h2_system(o, h)),
            Unit::Stacks { stacks } => {
                g.fuel_cell_stacks = group(out, |o| list(o, stacks, |o, s| stack(o, s, lists)))
            }
            Unit::Supercap(s) => cap = Some(s),
            Unit::SupercapExtremes(x) => cap_x = Some(x),
            Unit::Custom(_) => custom_units += 1,
        }
    }
    if cap.is_some() || cap_x.is_some() {
        g.supercap = group(out, |o| supercap(o, cap, cap_x, lists));
    }
    if custom_units > 0 {
        g.custom = group(out, |o| {
            let mut first = true;
            o.push(b'[');
            for u in &report.units {
                if let Unit::Custom(c) = u {
                    if !first {
                        o.push(b',');
                    }
                    first = false;
                    custom(o, c);
                }
            }
            o.push(b']');
        });
    }
    if let Some(s) = &report.signature {
        t.signature = Some(Json::object(vec![
            (
                "kind",
                if s.kind >= 0xFE {
                    Json::Null
                } else {
                    Json::U64(s.kind.into())
                },
            ),
            ("r", Json::Str(Cow::Owned(hex::encode(&s.r)))),
            ("s", Json::Str(Cow::Owned(hex::encode(&s.s)))),
        ]));
    }
    if let Some(tail) = &report.tail {
        t.more.insert(
            "undecoded".into(),
            json!({"type": format!("0x{:02x}", tail.type_id), "truncated": tail.truncated, "data": hex::encode(&tail.bytes)}),
        );
    }
    g
}

/// The `location` data of a position unit; speed copied from the vehicle unit if any.
/// `None` when the unit's coordinates are sentinels (no position to publish).
fn location(report: &Report) -> Option<Location> {
    let p = report.location()?;
    let latitude = (p.latitude_deg()? * 1e6).round() / 1e6;
    let longitude = (p.longitude_deg()? * 1e6).round() / 1e6;
    let coord_system = match p.coord_system {
        None | Some(1) => CoordSystem::Wgs84,
        Some(2) => CoordSystem::Gcj02,
        Some(_) => CoordSystem::Other,
    };
    let speed = report
        .vehicle()
        .and_then(|v| scaled_u16(v.speed, 0.1, 0.0))
        .map(|x| (x * 10.0).round() / 10.0);
    Some(Location {
        latitude,
        longitude,
        coord_system,
        speed_kmh: speed,
        fix_valid: p.fix_valid(),
        // Position status bit 0 is 0 when valid; bits 1 and 2 south and west.
        status: Flags::new(
            &POSITION_FLAGS,
            u64::from(p.fix_valid()) | u64::from((p.status >> 1) & 0b11) << 1,
        ),
        ..Default::default()
    })
}

/// The named bits of a position's `status`.
static POSITION_FLAGS: FlagNames = FlagNames::new(&["fix_valid", "south", "west"]);

/// One `telemetry` event for a real-time/reissue report, plus a `location` event when the
/// report has a position unit.
pub fn normalize(
    frame_vin: &str,
    edition: Edition,
    msg_seq: Option<u32>,
    report: &Report,
    reissue: bool,
    ctx: &EventContext,
) -> Vec<Event> {
    normalize_with(
        frame_vin,
        edition,
        msg_seq,
        report,
        reissue,
        ctx,
        Options::default(),
    )
}

/// [`normalize`] with normalizer options (the layout of cell lists).
pub fn normalize_with(
    frame_vin: &str,
    edition: Edition,
    msg_seq: Option<u32>,
    report: &Report,
    reissue: bool,
    ctx: &EventContext,
    opts: Options,
) -> Vec<Event> {
    let vid: Arc<str> = Arc::from(frame_vin);
    let device_time = report.time.to_utc(ctx.device_utc_offset_secs).ok();
    let proto = edition.protocol();
    let mut t = Box::<Telemetry>::default();
    fill_telemetry(report, edition, opts, &mut t);
    // Room for both events: one allocation, no regrowth.
    let mut out = Vec::with_capacity(2);
    out.push(
        Event::new(
            ctx,
            vid.clone(),
            proto,
            device_time,
            msg_seq,
            Data::Telemetry(t),
        )
        .reissued(reissue),
    );
    if let Some(loc) = location(report) {
        // The location's id follows the telemetry's (one ULID made per report, not two:
        // no second clock read and random draw, and the two stay in frame order).
        let data = Data::Location(loc);
        out.push(match out.first().and_then(|t| t.event_id.increment()) {
            Some(event_id) => Event {
                event_id,
                vehicle_id: vid,
                protocol: proto,
                device_time,
                received_at: ctx.received_at,
                gateway: ctx.gateway.clone(),
                msg_seq,
                reissue,
                data,
            },
            None => Event::new(ctx, vid, proto, device_time, msg_seq, data).reissued(reissue),
        });
    }
    out
}

/// The events of any GB/T 32960 message (see the module docs).
pub fn normalize_message(frame: &Frame, msg: &Message, ctx: &EventContext) -> Vec<Event> {
    normalize_message_with(frame, msg, ctx, Options::default())
}

/// [`normalize_message`] with normalizer options (the layout of cell lists).
pub fn normalize_message_with(
    frame: &Frame,
    msg: &Message,
    ctx: &EventContext,
    opts: Options,
) -> Vec<Event> {
    let vid: Arc<str> = Arc::from(frame.vin.as_str());
    let proto = frame.edition.protocol();
    let off = ctx.device_utc_offset_secs;
    let life = |kind: LifecycleKind,
                time: &codecs::time::LocalTime,
                seq: u16,
                fields: Map<String, Value>| {
        let mut l = Lifecycle::new(kind);
        l.fields = fields;
        vec![Event::new(
            ctx,
            vid.clone(),
            proto,
            time.to_utc(off).ok(),
            Some(u32::from(seq)),
            Data::Lifecycle(l),
        )]
    };
    match msg {
        Message::Realtime(r) => {
            normalize_with(&frame.vin, frame.edition, None, r, false, ctx, opts)
        }
        Message::Reissue(r) => normalize_with(&frame.vin, frame.edition, None, r, true, ctx, opts),
        Message::VehicleLogin(l) => {
            let mut f = Map::new();
            f.insert("iccid".into(), json!(l.iccid));
            match &l.batteries {
                LoginBatteries::Ress2016 { ress_codes, .. } => {
                    f.insert("ress_codes".into(), json!(ress_codes));
                }
                LoginBatteries::Packs2025 { pack_codes } => {
                    f.insert("pack_codes".into(), json!(pack_codes));
                }
            }
            life(LifecycleKind::Login, &l.time, l.seq, f)
        }
        Message::VehicleLogout(l) => life(LifecycleKind::Logout, &l.time, l.seq, Map::new()),
        Message::PlatformLogin(l) => {
            // Never the password.
            let mut f = Map::new();
            f.insert("user".into(), json!(l.user));
            f.insert("encryption_rule".into(), json!(l.encryption_rule));
            life(LifecycleKind::PlatformLogin, &l.time, l.seq, f)
        }
        Message::PlatformLogout(l) => {
            life(LifecycleKind::PlatformLogout, &l.time, l.seq, Map::new())
        }
        other => {
            let mut raw = crate::raw_json(frame, other);
            if let Some(o) = raw.as_object_mut() {
                o.insert(
                    "body_base64".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(&frame.data)),
                );
            }
            vec![Event::new(
                ctx,
                vid,
                proto,
                None,
                None,
                Data::Passthrough(Passthrough(raw)),
            )]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::realtime::{scaled_u32, scaled_u8};

    /// What the normalizer wrote before the groups were written from integers: the float
    /// `scaled_*` gives, rounded to 1e-6 unless a whole number, as serde_json writes it.
    fn old(v: Option<f64>, round: bool) -> String {
        let v = if round {
            v.map(|x| (x * 1e6).round() / 1e6)
        } else {
            v
        };
        serde_json::to_string(&Json::num(v)).expect("serializes")
    }

    fn new<const D: u32>(n: Option<i64>) -> String {
        let mut out = Vec::new();
        fixed::<D>(&mut out, n);
        String::from_utf8(out).expect("utf-8")
    }

    fn report(units: Vec<Unit>) -> Report {
        Report {
            time: Default::default(),
            units,
            tail: None,
            signature: None,
        }
    }

    fn data(r: &Report, ed: Edition, lists: CellLists) -> serde_json::Value {
        let t = telemetry_with(r, ed, Options { cell_lists: lists });
        let mut out = Vec::new();
        t.write_json(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn compact_cell_lists_are_millivolts_and_whole_degrees_and_nothing_else_changes() {
        use crate::realtime::{PackTemperatures, Stack, Supercap};
        use serde_json::json;
        let pack = PackVoltages {
            no: 1,
            voltage: 3620,
            current: 10_150,
            split: Some((3, 1)),
            cells: vec![3770, 0xFFFE, 4200],
        };
        let r16 = report(vec![
            Unit::Voltages { packs: vec![pack] },
            Unit::Temperatures {
                packs: vec![PackTemperatures {
                    no: 1,
                    temps: vec![65, 0xFF, 0],
                }],
            },
        ]);
        let floats = data(&r16, Edition::V2016, CellLists::Floats);
        let compact = data(&r16, Edition::V2016, CellLists::Compact);
        assert_eq!(
            floats["battery_voltages"][0]["cell_voltages_v"],
            json!([3.77, null, 4.2])
        );
        let v = &compact["battery_voltages"][0];
        assert_eq!(v["cell_voltages_mv"], json!([3770, null, 4200]));
        assert!(v["cell_voltages_mv"][0].is_u64());
        assert!(v.get("cell_voltages_v").is_none());
        let t = &compact["battery_temperatures"][0]["temperatures_c"];
        assert_eq!(t, &json!([25, null, -40]));
        assert!(t[0].is_i64());
        // Everything else as in the default layout.
        let mut rest = compact.clone();
        rest["battery_voltages"][0]["cell_voltages_v"] =
            floats["battery_voltages"][0]["cell_voltages_v"].clone();
        rest["battery_voltages"][0]
            .as_object_mut()
            .unwrap()
            .remove("cell_voltages_mv");
        rest["battery_temperatures"] = floats["battery_temperatures"].clone();
        assert_eq!(rest, floats);

        // 2025: super-capacitor cells and probes, stack coolant probes.
        let r25 = report(vec![
            Unit::Supercap(Supercap {
                system: 1,
                voltage: 500,
                current: 30_000,
                cells: vec![2700, 0xFFFF],
                temps: vec![40, 0xFE],
            }),
            Unit::Stacks {
                stacks: vec![Stack {
                    no: 1,
                    voltage: 3000,
                    current: 100,
                    h2_inlet_pressure: 1000,
                    air_inlet_pressure: 1000,
                    air_inlet_temp: 60,
                    coolant_temps: vec![70, 0],
                }],
            },
        ]);
        let c = data(&r25, Edition::V2025, CellLists::Compact);
        assert_eq!(c["supercap"]["cell_voltages_mv"], json!([2700, null]));
        assert_eq!(c["supercap"]["temperatures_c"], json!([0, null]));
        assert_eq!(
            c["fuel_cell_stacks"][0]["coolant_outlet_temperatures_c"],
            json!([30, -40])
        );
        let f = data(&r25, Edition::V2025, CellLists::Floats);
        assert_eq!(f["supercap"]["cell_voltages_v"], json!([2.7, null]));
        assert_eq!(f["supercap"]["temperatures_c"], json!([0.0, null]));
    }

    #[test]
    fn the_default_options_are_the_contract_layout() {
        let r = report(vec![Unit::Temperatures {
            packs: vec![crate::realtime::PackTemperatures {
                no: 1,
                temps: vec![65],
            }],
        }]);
        let mut a = Vec::new();
        telemetry(&r, Edition::V2016).write_json(&mut a);
        assert_eq!(
            String::from_utf8(a).unwrap(),
            r#"{"battery_temperatures":[{"no":1,"probe_count":1,"temperatures_c":[25.0]}]}"#
        );
        assert_eq!(Options::default().cell_lists, CellLists::Floats);
    }

    #[test]
    fn a_reports_location_event_id_follows_its_telemetry_event_id() {
        use crate::realtime::Position;
        let r = report(vec![Unit::Location(Position {
            status: 0,
            coord_system: None,
            longitude: 116_307_629,
            latitude: 39_984_095,
        })]);
        let ctx = EventContext::now("t");
        let evs = normalize("LVBENCH0000000001", Edition::V2016, None, &r, true, &ctx);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].event_id.increment(), Some(evs[1].event_id));
        assert!(evs
            .iter()
            .all(|e| e.reissue && e.received_at == ctx.received_at));
        assert_eq!(evs[1].gateway, ctx.gateway);
        assert_eq!(evs[1].vehicle_id.as_ref(), "LVBENCH0000000001");
    }

    #[test]
    fn table_entries_are_what_the_fixed_point_writer_writes() {
        for raw in 0..=u8::MAX {
            let mut a = Vec::new();
            temps(&mut a, &[raw], CellLists::Floats);
            assert_eq!(a, format!("[{}]", new::<0>(v8(raw, -40))).into_bytes());
        }
        for raw in 0..=u16::MAX {
            let mut a = Vec::new();
            millivolts(&mut a, std::iter::once(&[raw, raw][..]), CellLists::Floats);
            let one = new::<3>(v16(raw, 0));
            assert_eq!(String::from_utf8(a).unwrap(), format!("[{one},{one}]"));
        }
        // Lists longer than a chunk, with values off the table (>= 10 V, sentinels).
        let cells: Vec<u16> = (0..2000u16)
            .map(|i| i.wrapping_mul(37))
            .chain([0xFFFE, 0xFFFF, 12_345])
            .collect();
        let mut a = Vec::new();
        millivolts(
            &mut a,
            [&cells[..900], &cells[900..]].into_iter(),
            CellLists::Floats,
        );
        let want: Vec<String> = cells.iter().map(|c| new::<3>(v16(*c, 0))).collect();
        assert_eq!(
            String::from_utf8(a).unwrap(),
            format!("[{}]", want.join(","))
        );
        let probes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut a = Vec::new();
        temps(&mut a, &probes, CellLists::Floats);
        let want: Vec<String> = probes.iter().map(|t| new::<0>(v8(*t, -40))).collect();
        assert_eq!(
            String::from_utf8(a).unwrap(),
            format!("[{}]", want.join(","))
        );
        let mut a = Vec::new();
        temps(&mut a, &[], CellLists::Floats);
        millivolts(&mut a, std::iter::empty(), CellLists::Floats);
        assert_eq!(a, b"[][]");
    }

    #[test]
    fn values_written_from_integers_are_the_floats_the_normalizer_computed() {
        // Every WORD at every (scale, offset) a field uses: 0.1 with 0, -40, -100, -1000,
        // -2000 (2016 torque), -3000; 0.01; 0.001; 0.0001; 1 with 0, -40 and the rpm offsets.
        let words: &[(u32, f64, i64)] = &[
            (1, 0.0, 0),
            (1, -40.0, -400),
            (1, -100.0, -1000),
            (1, -1000.0, -10_000),
            (1, -2000.0, -20_000),
            (1, -3000.0, -30_000),
            (2, 0.0, 0),
            (3, 0.0, 0),
            (4, 0.0, 0),
            (0, 0.0, 0),
            (0, -40.0, -40),
            (0, -20000.0, -20_000),
            (0, -32000.0, -32_000),
        ];
        for &(d, off, ioff) in words {
            let scale = 10f64.powi(-(d as i32));
            for raw in 0..=u16::MAX {
                let want = old(scaled_u16(raw, scale, off), d > 0);
                let got = match d {
                    0 => new::<0>(v16(raw, ioff)),
                    1 => new::<1>(v16(raw, ioff)),
                    2 => new::<2>(v16(raw, ioff)),
                    3 => new::<3>(v16(raw, ioff)),
                    _ => new::<4>(v16(raw, ioff)),
                };
                assert_eq!(got, want, "raw {raw} scale {scale} offset {off}");
            }
        }
        // Every BYTE at 1 with 0 and -40 (pedals are rounded, the others are not).
        for raw in 0..=u8::MAX {
            assert_eq!(new::<0>(v8(raw, 0)), old(scaled_u8(raw, 1.0, 0.0), true));
            assert_eq!(
                new::<0>(v8(raw, -40)),
                old(scaled_u8(raw, 1.0, -40.0), false)
            );
        }
        // DWORDs (odometer at 0.1; 2025 torque at 0.1, offset -20000): the ends, around
        // every power of ten and the offset, and a stride through the rest.
        let mut dwords: Vec<u32> = (0..=2000).chain(u32::MAX - 2000..=u32::MAX).collect();
        for p in 0..10 {
            let c = 10u64.pow(p);
            for x in c.saturating_sub(3)..c + 3 {
                dwords.extend(u32::try_from(x).ok());
            }
        }
        dwords.extend(199_000..201_000);
        dwords.extend((0..u32::MAX).step_by(4_099));
        for raw in dwords {
            assert_eq!(
                new::<1>(v32(raw, 0)),
                old(scaled_u32(raw, 0.1, 0.0), true),
                "odometer {raw}"
            );
            assert_eq!(
                new::<1>(v32(raw, -200_000)),
                old(scaled_u32(raw, 0.1, -20000.0), true),
                "torque {raw}"
            );
        }
    }
}
