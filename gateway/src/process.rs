//! Process metrics: resident memory, CPU time, open file descriptors and their limit, threads,
//! start time, read from `/proc/self` and exported through the `metrics` crate under the names
//! every Prometheus client library uses (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`, `process_threads`,
//! `process_start_time_seconds`, `process_virtual_memory_bytes`), so stock dashboards and
//! alerts work on vgate as they do on any other exporter.
//!
//! Why our own reader and not a crate: five small text files, parsed here in a few lines, with
//! no unsafe code (the crate forbids it) and no `sysconf` call. CPU time in `/proc/self/stat`
//! is in clock ticks of `USER_HZ`, which Linux fixes at 100 for user space on every
//! architecture Rust targets (it is part of the ABI, unlike the kernel's `HZ`).
//!
//! `process_cpu_seconds_total` is a gauge in the exposition: the `metrics` crate's counters
//! are integers, and whole seconds would make `rate()` useless at a 15 s scrape. Its value only
//! grows, and `rate()` treats it as the counter it is.
//!
//! Sampled every [`SAMPLE_EVERY`] by [`sample_forever`] (from [`crate::metrics::install`]),
//! and on demand by [`Snapshot::read`] for `/api/v1/stats`. On other systems nothing is read
//! and the gauges stay absent. Cost: counting `/proc/self/fd` is one `readdir` pass, on
//! the order of 10 ms per 10,000 open descriptors on a small VM (11 ms measured with Python's
//! `os.listdir`), done on a blocking thread.

use std::time::Duration;

/// How often the gauges are refreshed.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// `USER_HZ`: the unit of the CPU times in `/proc/self/stat`.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's resources.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    /// Resident set size, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: u64,
    /// User plus system CPU time since start, seconds.
    pub cpu_seconds: f64,
    /// File descriptors open now (every vehicle connection is one).
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`LimitNOFILE`, `ulimit -n`); `null` when
    /// unlimited.
    pub max_fds: Option<u64>,
    /// OS threads.
    pub threads: u64,
}

/// Why the process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{path}: {source}")]
    Io {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no {field} in it")]
    Missing {
        path: &'static str,
        field: &'static str,
    },
}

impl Snapshot {
    /// Reads `/proc/self` (Linux only).
    pub fn read() -> Result<Snapshot, ProcessError> {
        let read = |path: &'static str| {
            std::fs::read_to_string(path).map_err(|source| ProcessError::Io { path, source })
        };
        let status = read("/proc/self/status")?;
        let stat = read("/proc/self/stat")?;
        let limits = read("/proc/self/limits")?;
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map_err(|source| ProcessError::Io {
                path: "/proc/self/fd",
                source,
            })?
            .count() as u64;
        let kib = |field: &'static str| {
            status_value(&status, field).ok_or(ProcessError::Missing {
                path: "/proc/self/status",
                field,
            })
        };
        Ok(Snapshot {
            resident_memory_bytes: kib("VmRSS")? * 1024,
            virtual_memory_bytes: kib("VmSize")? * 1024,
            cpu_seconds: cpu_seconds(&stat).ok_or(ProcessError::Missing {
                path: "/proc/self/stat",
                field: "utime and stime",
            })?,
            // The directory listing holds its own descriptor while it is read.
            open_fds: open_fds.saturating_sub(1),
            max_fds: max_open_files(&limits),
            threads: status_value(&status, "Threads").ok_or(ProcessError::Missing {
                path: "/proc/self/status",
                field: "Threads",
            })?,
        })
    }

    /// Sets the `process_*` gauges.
    pub fn export(&self) {
        metrics::gauge!("process_resident_memory_bytes").set(self.resident_memory_bytes as f64);
        metrics::gauge!("process_virtual_memory_bytes").set(self.virtual_memory_bytes as f64);
        metrics::gauge!("process_cpu_seconds_total").set(self.cpu_seconds);
        metrics::gauge!("process_open_fds").set(self.open_fds as f64);
        if let Some(max) = self.max_fds {
            metrics::gauge!("process_max_fds").set(max as f64);
        }
        metrics::gauge!("process_threads").set(self.threads as f64);
    }
}

/// The first number on the `Key:` line of `/proc/self/status` (`VmRSS:   123 kB`: in KiB).
fn status_value(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// utime + stime of `/proc/self/stat`, seconds. The command name (field 2) is in parentheses
/// and may hold spaces and parentheses itself: fields are counted after its last `)`.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let (_, after) = stat.rsplit_once(')')?;
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// The soft limit of the `Max open files` line of `/proc/self/limits`; `None` when unlimited.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sets `process_start_time_seconds` (now: this runs at start-up) and refreshes the other
/// gauges every [`SAMPLE_EVERY`], for good. A failed reading is logged once and retried.
pub async fn sample_forever() {
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("process_start_time_seconds").set(start);
    if !cfg!(target_os = "linux") {
        return;
    }
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        match tokio::task::spawn_blocking(Snapshot::read).await {
            Ok(Ok(s)) => s.export(),
            Ok(Err(e)) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "process metrics cannot be read");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tvgate\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  812345 kB\nVmSize:\t  800000 kB\nVmRSS:\t   39512 kB\nThreads:\t7\n";

    #[test]
    fn status_lines_give_memory_and_threads() {
        assert_eq!(status_value(STATUS, "VmRSS"), Some(39512));
        assert_eq!(status_value(STATUS, "VmSize"), Some(800_000));
        assert_eq!(status_value(STATUS, "Threads"), Some(7));
        assert_eq!(status_value(STATUS, "VmSwap"), None);
    }

    #[test]
    fn cpu_time_is_counted_after_a_name_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let stat =
            "4242 (vg ate) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 566 0 0 20 0 7 0 1000 0";
        assert_eq!(cpu_seconds(stat), Some(18.0));
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn the_soft_open_files_limit_is_read_and_unlimited_is_none() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
            Max processes             127402               127402               processes\n\
            Max open files            65536                524288               files\n";
        assert_eq!(max_open_files(limits), Some(65536));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_with_its_own_descriptors_counted() {
        // Other tests of this binary open and close files meanwhile: only what this one holds
        // is certain.
        let files: Vec<std::fs::File> = (0..50)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        let s = Snapshot::read().unwrap();
        assert!(s.open_fds >= 50, "{s:?}");
        assert!(s.max_fds.is_none_or(|m| m >= s.open_fds), "{s:?}");
        assert!(s.resident_memory_bytes > 1024 * 1024, "{s:?}");
        assert!(s.virtual_memory_bytes >= s.resident_memory_bytes, "{s:?}");
        assert!(s.threads >= 1);
        let later = Snapshot::read().unwrap();
        assert!(later.cpu_seconds >= s.cpu_seconds);
        drop(files);
    }
}
