//! Per-vehicle frame traces (contract §6: `POST /api/v1/traces`, `GET /api/v1/traces/{id}`):
//! every frame to and from one vehicle for a while, one NDJSON line each
//! (`{"time", "direction": "in" | "out", "hex", "summary"}`), in a file per trace under
//! `{data_dir}/traces`.
//!
//! Bounded: a trace stops recording at [`MAX_TRACE_BYTES`] (its last line says so), at most
//! [`MAX_DURATION_S`] long, and only the newest [`KEEP`] trace files are kept. A trace may be
//! started for a vehicle that is not connected: its frames are recorded from its next login
//! (the login frame included) until the trace ends. Traces can also be named in the
//! configuration (`[[traces]]`, [`TraceConfig`]), for a vehicle to be caught at its next
//! connection after a restart.
//!
//! Cost: nothing while no trace runs (one atomic load per frame); while one runs, the frames
//! of the traced vehicle are written (one small write each, from its session's task).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Bytes one trace file may hold.
pub const MAX_TRACE_BYTES: u64 = 16 * 1024 * 1024;
/// The longest trace, seconds.
pub const MAX_DURATION_S: u64 = 3600;
/// Trace files kept (the oldest beyond this are removed when a new trace starts).
pub const KEEP: usize = 32;

/// What a decoded frame is, for a trace line: its wire bytes and a one-line summary.
pub trait Traceable {
    fn wire(&self) -> Vec<u8>;
    fn summary(&self) -> String;
}

impl Traceable for jt808::Frame {
    fn wire(&self) -> Vec<u8> {
        self.to_wire()
    }
    fn summary(&self) -> String {
        let (h, n) = (&self.header, self.body.len());
        format!(
            "jt808 0x{:04X} serial {} ({n} body bytes)",
            h.msg_id, h.serial
        )
    }
}

impl Traceable for gbt32960::Frame {
    fn wire(&self) -> Vec<u8> {
        self.to_wire()
    }
    fn summary(&self) -> String {
        let (c, r, n) = (self.command, self.response, self.data.len());
        format!("gbt32960 0x{c:02X} response 0x{r:02X} ({n} data bytes)")
    }
}

impl Traceable for bytes::Bytes {
    fn wire(&self) -> Vec<u8> {
        self.to_vec()
    }
    fn summary(&self) -> String {
        format!("raw {} bytes", self.len())
    }
}

/// One running (or finished) trace.
struct Trace {
    until: Instant,
    /// Bytes the file may hold ([`MAX_TRACE_BYTES`]).
    cap: u64,
    file: Mutex<Option<std::fs::File>>,
    written: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Registry {
    by_vehicle: HashMap<String, Vec<Arc<Trace>>>,
}

/// How many traces may be recording (fast path: zero means no lookup at all).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// When the last trace to end ends, ms after [`epoch`]: past it, no lookup either (a trace
/// of a vehicle that never came is not looked for by every other vehicle's frames).
static LAST_END_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn ms_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_millis() as u64
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Why a trace cannot start or be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("vehicle_id: {0}")]
    Vehicle(String),
    #[error("duration_s: {0} is not in 1..={MAX_DURATION_S}")]
    Duration(u64),
    #[error("trace file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A trace started by the configuration (`[[traces]]`): at start-up, and by a reload that
/// adds or changes the entry. For a vehicle that has not connected yet, as for one started
/// through the API, recording begins at its next login.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    pub vehicle_id: String,
    /// How long to record from start-up (or from the reload), 1..=3600 s.
    pub duration_s: u64,
}

impl TraceConfig {
    /// The entry's problem, if any: `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        codecs::vehicle_id::validate(&self.vehicle_id)
            .map_err(|e| ("vehicle_id", e.to_string()))?;
        if !(1..=MAX_DURATION_S).contains(&self.duration_s) {
            return Err((
                "duration_s",
                format!("{} is not in 1..={MAX_DURATION_S}", self.duration_s),
            ));
        }
        Ok(())
    }
}

/// Starts the traces of `wanted` that `running` does not hold (all of them at start-up, where
/// `running` is empty); returns the ids started. A trace that cannot start is logged.
pub fn start_configured(
    dir: &Path,
    wanted: &[TraceConfig],
    running: &[TraceConfig],
) -> Vec<String> {
    wanted
        .iter()
        .filter(|t| !running.contains(t))
        .filter_map(|t| match start(dir, &t.vehicle_id, t.duration_s) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(vehicle = %t.vehicle_id, error = %e, "configured trace not started");
                None
            }
        })
        .collect()
}

/// One trace file: its id, its vehicle and its size so far.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TraceFile {
    pub trace_id: String,
    pub vehicle_id: String,
    pub bytes: u64,
}

/// The trace files kept in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<TraceFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<TraceFile> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".ndjson")?.to_owned();
            // `{time}-{vehicle}`: the time has no '-' of its own.
            let vehicle = id.split_once('-')?.1.to_owned();
            let bytes = e.metadata().ok()?.len();
            Some(TraceFile {
                trace_id: id,
                vehicle_id: vehicle,
                bytes,
            })
        })
        .collect();
    out.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
    out
}

/// The directory of the traces of a data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("traces")
}

/// Starts a trace of `vehicle` for `duration_s` in `dir`; returns its id.
pub fn start(dir: &Path, vehicle: &str, duration_s: u64) -> Result<String, TraceError> {
    start_capped(dir, vehicle, duration_s, MAX_TRACE_BYTES)
}

/// [`start`] with a size cap of `cap` bytes.
pub fn start_capped(
    dir: &Path,
    vehicle: &str,
    duration_s: u64,
    cap: u64,
) -> Result<String, TraceError> {
    codecs::vehicle_id::validate(vehicle).map_err(|e| TraceError::Vehicle(e.to_string()))?;
    if !(1..=MAX_DURATION_S).contains(&duration_s) {
        return Err(TraceError::Duration(duration_s));
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TraceError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let id = format!(
        "{}-{vehicle}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ")
    );
    let path = dir.join(format!("{id}.ndjson"));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    prune(dir);
    epoch();
    let trace = Arc::new(Trace {
        until: Instant::now() + Duration::from_secs(duration_s),
        cap,
        file: Mutex::new(Some(file)),
        written: Default::default(),
    });
    registry()
        .by_vehicle
        .entry(vehicle.to_owned())
        .or_default()
        .push(trace);
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    LAST_END_MS.fetch_max(
        ms_since_epoch(Instant::now() + Duration::from_secs(duration_s)),
        Ordering::SeqCst,
    );
    tracing::info!(vehicle, trace = %id, duration_s, "trace started");
    Ok(id)
}

/// Removes the oldest trace files beyond [`KEEP`] (ids start with their start time).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(KEEP);
    for old in files.iter().take(excess) {
        let _ = std::fs::remove_file(old);
    }
}

/// Whether any trace may be recording (one atomic load: the per-frame check).
pub fn any() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
        && ms_since_epoch(Instant::now()) < LAST_END_MS.load(Ordering::Relaxed)
}

/// Records one frame of `vehicle` in each of its running traces.
pub fn record(vehicle: &str, direction: &str, wire: &[u8], summary: &str) {
    let traces: Vec<Arc<Trace>> = {
        let mut r = registry();
        let Some(list) = r.by_vehicle.get_mut(vehicle) else {
            return;
        };
        let now = Instant::now();
        let before = list.len();
        list.retain(|t| t.until > now);
        let ended = before - list.len();
        if ended > 0 {
            ACTIVE.fetch_sub(ended, Ordering::SeqCst);
        }
        let out = list.clone();
        if list.is_empty() {
            r.by_vehicle.remove(vehicle);
        }
        out
    };
    if traces.is_empty() {
        return;
    }
    let line = serde_json::json!({
        "time": crate::api::time(chrono::Utc::now()),
        "direction": direction,
        "hex": hex::encode(wire),
        "summary": summary,
    })
    .to_string()
        + "\n";
    for t in traces {
        let mut f = t.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = f.as_mut() else { continue };
        let written = t.written.load(Ordering::Relaxed);
        if written + line.len() as u64 > t.cap {
            let _ =
                file.write_all(b"{\"summary\":\"trace size cap reached: recording stopped\"}\n");
            *f = None;
            continue;
        }
        if file.write_all(line.as_bytes()).is_ok() {
            t.written.fetch_add(line.len() as u64, Ordering::Relaxed);
        }
    }
}

/// The frames of one write, as a trace sees them: JT/T 808 answers leave several frames in
/// one write (each between 0x7E flags); anything else is one frame.
pub fn outgoing(bytes: &[u8]) -> Vec<(Vec<u8>, String)> {
    match bytes {
        [0x7E, ..] => bytes
            .split(|b| *b == 0x7E)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let mut wire = Vec::with_capacity(f.len() + 2);
                wire.push(0x7E);
                wire.extend_from_slice(f);
                wire.push(0x7E);
                let id = match f {
                    [a, b, ..] if *a != 0x7D => format!("jt808 0x{a:02X}{b:02X}"),
                    _ => "jt808".to_owned(),
                };
                (wire, id)
            })
            .collect(),
        [b'#', b'#', cmd, ..] | [b'$', b'$', cmd, ..] => {
            vec![(bytes.to_vec(), format!("gbt32960 0x{cmd:02X}"))]
        }
        _ => vec![(bytes.to_vec(), format!("raw {} bytes", bytes.len()))],
    }
}

/// The file of trace `id` in `dir`, if the id is one vgate could have made.
pub fn file(dir: &Path, id: &str) -> Option<PathBuf> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| dir.join(format!("{id}.ndjson")))
        .filter(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_records_its_vehicle_only_until_it_ends() {
        let d = tempfile::tempdir().unwrap();
        let id = start(d.path(), "trace-unit-1", 1).unwrap();
        assert!(any());
        record("trace-unit-1", "in", &[1, 2], "one");
        record("trace-unit-2", "in", &[3], "another vehicle");
        let text = std::fs::read_to_string(file(d.path(), &id).unwrap()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["hex"], "0102");
        assert_eq!(line["direction"], "in");
        assert!(file(d.path(), "../etc/passwd").is_none());
        assert!(start(d.path(), "bad.id", 1).is_err());
        assert!(start(d.path(), "ok", 0).is_err());
    }

    #[test]
    fn a_trace_stops_at_its_size_cap_and_old_traces_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let id = start_capped(d.path(), "trace-unit-cap", 60, 400).unwrap();
        for _ in 0..20 {
            record("trace-unit-cap", "out", &[0xAB; 16], "sixteen bytes");
        }
        let path = file(d.path(), &id).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() < 20, "{} lines", lines.len());
        assert!(lines.last().unwrap().contains("cap reached"), "{text}");
        let size_before_cap = text.len() - lines.last().unwrap().len() - 1;
        assert!(size_before_cap <= 400, "{size_before_cap}");
        // More traces than KEEP: the oldest files go.
        for i in 0..KEEP + 3 {
            start(d.path(), &format!("trace-unit-keep-{i}"), 1).unwrap();
        }
        let files = std::fs::read_dir(d.path()).unwrap().count();
        assert_eq!(files, KEEP);
        assert!(file(d.path(), &id).is_none(), "the oldest is gone");
    }

    #[test]
    fn configured_traces_start_once_and_are_listed() {
        let d = tempfile::tempdir().unwrap();
        let a = TraceConfig {
            vehicle_id: "trace-unit-cfg-a".into(),
            duration_s: 60,
        };
        let b = TraceConfig {
            vehicle_id: "trace-unit-cfg-b".into(),
            duration_s: 60,
        };
        assert_eq!(
            start_configured(d.path(), std::slice::from_ref(&a), &[]).len(),
            1
        );
        // A reload that adds `b` starts `b` only.
        let started = start_configured(d.path(), &[a.clone(), b.clone()], std::slice::from_ref(&a));
        assert_eq!(started.len(), 1);
        assert!(started[0].ends_with("-trace-unit-cfg-b"), "{started:?}");
        let listed = list(d.path());
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].vehicle_id, "trace-unit-cfg-b");
        assert_eq!(listed[1].bytes, 0);
        assert!(TraceConfig {
            vehicle_id: "x".into(),
            duration_s: 0
        }
        .check()
        .is_err());
        assert_eq!(
            TraceConfig {
                vehicle_id: "bad id".into(),
                duration_s: 5
            }
            .check()
            .map_err(|e| e.0),
            Err("vehicle_id")
        );
    }

    #[test]
    fn a_jt808_write_of_two_frames_is_two_lines() {
        let out = outgoing(&[0x7E, 0x80, 0x01, 0x00, 0x7E, 0x7E, 0x81, 0x00, 0x7E]);
        let names: Vec<&str> = out.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(names, ["jt808 0x8001", "jt808 0x8100"]);
        assert_eq!(outgoing(b"##\x01rest")[0].1, "gbt32960 0x01");
    }
}
