//! Counters and latency samples of a simulation, and its printed summary.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Shared counters, updated by every vehicle task.
pub struct Stats {
    /// When the simulation started.
    epoch: Instant,
    /// Microseconds from `epoch` to the latest successful login.
    last_login_us: AtomicU64,
    /// Microseconds from `epoch` to the first report sent (`u64::MAX`: none yet).
    first_send_us: AtomicU64,
    /// Microseconds from `epoch` to the last acknowledgement received.
    last_ack_us: AtomicU64,
    pub connected: AtomicU64,
    pub connect_errors: AtomicU64,
    pub logins: AtomicU64,
    pub login_refused: AtomicU64,
    pub frames_sent: AtomicU64,
    pub acks: AtomicU64,
    pub errors: AtomicU64,
    pub commands_answered: AtomicU64,
    pub disconnects: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            epoch: Instant::now(),
            last_login_us: AtomicU64::new(0),
            first_send_us: AtomicU64::new(u64::MAX),
            last_ack_us: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            login_refused: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            commands_answered: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            latencies_us: Mutex::new(Vec::new()),
        }
    }
}

impl Stats {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a successful login and when it happened.
    pub fn logged_in(&self) {
        self.logins.fetch_add(1, Ordering::Relaxed);
        let us = self.epoch.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        self.last_login_us.fetch_max(us, Ordering::Relaxed);
    }

    fn since_epoch_us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch)
            .as_micros()
            .min(u128::from(u64::MAX - 1)) as u64
    }

    /// Records one vehicle's driving period: its first report and its last acknowledgement
    /// (once per vehicle, at its end, not per frame).
    pub fn drove(&self, first_send: Option<Instant>, last_ack: Option<Instant>) {
        if let Some(t) = first_send {
            self.first_send_us
                .fetch_min(self.since_epoch_us(t), Ordering::Relaxed);
        }
        if let Some(t) = last_ack {
            self.last_ack_us
                .fetch_max(self.since_epoch_us(t), Ordering::Relaxed);
        }
    }

    /// Records a batch of latency samples (microseconds); vehicles batch to avoid contention.
    pub fn record(&self, samples: &mut Vec<u32>) {
        if samples.is_empty() {
            return;
        }
        let mut v = self.latencies_us.lock().unwrap_or_else(|p| p.into_inner());
        v.append(samples);
    }

    /// The summary after `elapsed`.
    pub fn summary(&self, elapsed: Duration, vehicles: usize) -> Summary {
        let mut lat =
            std::mem::take(&mut *self.latencies_us.lock().unwrap_or_else(|p| p.into_inner()));
        lat.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
            f64::from(lat.get(i).copied().unwrap_or(0)) / 1000.0
        };
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let (first, last) = (g(&self.first_send_us), g(&self.last_ack_us));
        let drive_s = if first != u64::MAX && last > first {
            (last - first) as f64 / 1e6
        } else {
            0.0
        };
        let per_drive_s = |n: u64| {
            if drive_s > 0.0 {
                n as f64 / drive_s
            } else {
                0.0
            }
        };
        Summary {
            mode: "open_loop".into(),
            window: None,
            vehicles,
            elapsed_s: secs,
            connected: g(&self.connected),
            connect_errors: g(&self.connect_errors),
            logins: g(&self.logins),
            all_logged_in_s: g(&self.last_login_us) as f64 / 1e6,
            login_refused: g(&self.login_refused),
            frames_sent: g(&self.frames_sent),
            frames_per_s: g(&self.frames_sent) as f64 / secs,
            acks: g(&self.acks),
            drive_s,
            drive_frames_per_s: per_drive_s(g(&self.frames_sent)),
            drive_acks_per_s: per_drive_s(g(&self.acks)),
            errors: g(&self.errors),
            commands_answered: g(&self.commands_answered),
            disconnects: g(&self.disconnects),
            latency_samples: lat.len(),
            latency_ms_p50: pct(0.50),
            latency_ms_p90: pct(0.90),
            latency_ms_p99: pct(0.99),
            latency_ms_max: pct(1.0),
        }
    }
}

/// What a simulation did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Summary {
    /// `open_loop` (`--rate R`) or `flood` (`--rate max`, closed loop).
    pub mode: String,
    /// Reports kept unacknowledged per vehicle in flood mode.
    pub window: Option<usize>,
    pub vehicles: usize,
    pub elapsed_s: f64,
    pub connected: u64,
    pub connect_errors: u64,
    pub logins: u64,
    /// Seconds from the start until the last vehicle had logged in.
    pub all_logged_in_s: f64,
    pub login_refused: u64,
    pub frames_sent: u64,
    /// Frames sent over the whole run (`elapsed_s`, connecting and logging out included).
    pub frames_per_s: f64,
    pub acks: u64,
    /// The driving period: from the first report sent to the last acknowledgement received.
    pub drive_s: f64,
    /// Frames sent, and acknowledgements received, per second of the driving period.
    pub drive_frames_per_s: f64,
    pub drive_acks_per_s: f64,
    pub errors: u64,
    pub commands_answered: u64,
    pub disconnects: u64,
    pub latency_samples: usize,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
}

impl Summary {
    /// The summary of a run made of `parts` (the processes of `--processes`, started
    /// together): counts and rates added, times the longest. The latency percentiles are
    /// the highest of the parts' (an upper bound of the whole run's; the median the
    /// parts' median weighted by their samples).
    pub fn merge(parts: &[Summary]) -> Summary {
        let sum_u = |f: fn(&Summary) -> u64| parts.iter().map(f).sum::<u64>();
        let sum_f = |f: fn(&Summary) -> f64| parts.iter().map(f).sum::<f64>();
        let max_f = |f: fn(&Summary) -> f64| parts.iter().map(f).fold(0.0, f64::max);
        let samples: usize = parts.iter().map(|p| p.latency_samples).sum();
        let p50 = if samples == 0 {
            0.0
        } else {
            parts
                .iter()
                .map(|p| p.latency_ms_p50 * p.latency_samples as f64)
                .sum::<f64>()
                / samples as f64
        };
        Summary {
            mode: parts
                .first()
                .map_or_else(|| "open_loop".into(), |p| p.mode.clone()),
            window: parts.first().and_then(|p| p.window),
            vehicles: parts.iter().map(|p| p.vehicles).sum(),
            elapsed_s: max_f(|p| p.elapsed_s),
            connected: sum_u(|p| p.connected),
            connect_errors: sum_u(|p| p.connect_errors),
            logins: sum_u(|p| p.logins),
            all_logged_in_s: max_f(|p| p.all_logged_in_s),
            login_refused: sum_u(|p| p.login_refused),
            frames_sent: sum_u(|p| p.frames_sent),
            frames_per_s: sum_f(|p| p.frames_per_s),
            acks: sum_u(|p| p.acks),
            drive_s: max_f(|p| p.drive_s),
            drive_frames_per_s: sum_f(|p| p.drive_frames_per_s),
            drive_acks_per_s: sum_f(|p| p.drive_acks_per_s),
            errors: sum_u(|p| p.errors),
            commands_answered: sum_u(|p| p.commands_answered),
            disconnects: sum_u(|p| p.disconnects),
            latency_samples: samples,
            latency_ms_p50: p50,
            latency_ms_p90: max_f(|p| p.latency_ms_p90),
            latency_ms_p99: max_f(|p| p.latency_ms_p99),
            latency_ms_max: max_f(|p| p.latency_ms_max),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window {
            Some(w) => writeln!(
                f,
                "vehicles          {} (closed loop, window {w})",
                self.vehicles
            )?,
            None => writeln!(f, "vehicles          {}", self.vehicles)?,
        }
        writeln!(f, "elapsed           {:.1} s", self.elapsed_s)?;
        writeln!(
            f,
            "connections       {} ok, {} failed",
            self.connected, self.connect_errors
        )?;
        writeln!(
            f,
            "logins            {} ok, {} refused, all in after {:.2} s",
            self.logins, self.login_refused, self.all_logged_in_s
        )?;
        writeln!(
            f,
            "frames sent       {} ({:.0}/s)",
            self.frames_sent, self.frames_per_s
        )?;
        writeln!(f, "acks              {}", self.acks)?;
        writeln!(
            f,
            "driving           {:.2} s: {:.0} frames/s, {:.0} acks/s",
            self.drive_s, self.drive_frames_per_s, self.drive_acks_per_s
        )?;
        writeln!(f, "commands answered {}", self.commands_answered)?;
        writeln!(f, "errors            {}", self.errors)?;
        writeln!(f, "disconnects       {}", self.disconnects)?;
        writeln!(
            f,
            "ack latency (ms)  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  ({} samples)",
            self.latency_ms_p50,
            self.latency_ms_p90,
            self.latency_ms_p99,
            self.latency_ms_max,
            self.latency_samples
        )
    }
}
