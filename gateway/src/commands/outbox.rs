//! A session's commands in flight: sent to the vehicle, not yet answered.
//!
//! The window bounds how many commands one vehicle has outstanding (a terminal that answers
//! slowly is not flooded); each entry remembers how the vehicle's answer will name it (the
//! protocol's `key`: JT/T 808 message id and serial, GB/T 32960 command byte), when it was
//! sent, and how many times. Protocol-neutral: the sessions say what a key is.

use std::time::{Duration, Instant};

use crate::queue::QueuedCommand;

/// One command written to the vehicle.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub cmd: QueuedCommand,
    /// How the answer names it (protocol-specific).
    pub key: u32,
    pub sent_at: Instant,
    /// Sends so far, this one included.
    pub attempts: u32,
}

/// The in-flight window of one session.
#[derive(Debug)]
pub struct Outbox {
    window: usize,
    timeout: Duration,
    items: Vec<InFlight>,
}

impl Outbox {
    pub fn new(window: usize, timeout: Duration) -> Self {
        Outbox {
            window: window.max(1),
            timeout,
            items: Vec::new(),
        }
    }

    /// How many more commands may be sent now.
    pub fn room(&self) -> usize {
        self.window.saturating_sub(self.items.len())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether command `id` is in flight.
    pub fn contains(&self, id: &str) -> bool {
        self.items.iter().any(|f| f.cmd.id == id)
    }

    pub fn push(&mut self, f: InFlight) {
        self.items.push(f);
    }

    /// Removes and returns the oldest entry whose key satisfies `pred`.
    pub fn take(&mut self, pred: impl Fn(u32) -> bool) -> Option<InFlight> {
        let i = self.items.iter().position(|f| pred(f.key))?;
        Some(self.items.remove(i))
    }

    /// Removes and returns the entries sent longer than the timeout ago.
    pub fn timed_out(&mut self, now: Instant) -> Vec<InFlight> {
        let timeout = self.timeout;
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|f| now.duration_since(f.sent_at) >= timeout);
        self.items = keep;
        late
    }

    /// Empties the window (the connection is closing: the commands stay queued).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: &str) -> QueuedCommand {
        QueuedCommand::for_test("v", id, "text")
    }

    #[test]
    fn window_matching_and_timeouts() {
        let mut o = Outbox::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        o.push(InFlight {
            cmd: cmd("a"),
            key: 1,
            sent_at: t0,
            attempts: 1,
        });
        o.push(InFlight {
            cmd: cmd("b"),
            key: 2,
            sent_at: t0 + Duration::from_secs(5),
            attempts: 1,
        });
        assert_eq!(o.room(), 0);
        assert!(o.contains("b"));
        assert_eq!(o.take(|k| k == 2).map(|f| f.cmd.id), Some("b".to_owned()));
        assert!(o.take(|k| k == 2).is_none(), "an answer matches once");
        let late = o.timed_out(t0 + Duration::from_secs(10));
        assert_eq!(late.len(), 1);
        assert!(o.is_empty());
    }
}
