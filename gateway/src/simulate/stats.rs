//! Counters and latency samples of a simulation, and its printed summary.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Shared counters, updated by every vehicle task.
pub struct Stats {
    /// When the simulation started.
    epoch: std::time::Instant,
    /// Microseconds from `epoch` to the latest successful login.
    last_login_us: AtomicU64,
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
            epoch: std::time::Instant::now(),
            last_login_us: AtomicU64::new(0),
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
        Summary {
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
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub vehicles: usize,
    pub elapsed_s: f64,
    pub connected: u64,
    pub connect_errors: u64,
    pub logins: u64,
    /// Seconds from the start until the last vehicle had logged in.
    pub all_logged_in_s: f64,
    pub login_refused: u64,
    pub frames_sent: u64,
    pub frames_per_s: f64,
    pub acks: u64,
    pub errors: u64,
    pub commands_answered: u64,
    pub disconnects: u64,
    pub latency_samples: usize,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "vehicles          {}", self.vehicles)?;
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
