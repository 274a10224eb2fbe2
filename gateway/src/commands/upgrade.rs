//! Upgrades whose package the terminal holds, waiting for its result (0x0108).
//!
//! A terminal answers an upgrade with 0x0108 once it has flashed the package, usually after
//! a restart, so on a new connection: the session that pushed the package is gone by then.
//! The command stays queued until that result (it is not finished before the vehicle says
//! how the upgrade went), and its entry here tells the vehicle's next sessions not to push
//! it again and to finish it with the 0x0108 they read. An entry whose result does not come
//! within its timeout is finished `failed` by the commands' upkeep ([`super::sweep_expired`]).
//!
//! Kept in the node's memory: after a restart of the node an unfinished upgrade is pushed
//! again at the vehicle's next login (the same package: the terminal flashes what it
//! already has), and a 0x0108 read with no entry finishes the oldest upgrade of its type that
//! was sent and is still queued (the session's fallback).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use codecs::Protocol;

use crate::queue::QueuedCommand;

/// An upgrade waiting for its result.
#[derive(Debug, Clone)]
pub struct Entry {
    pub cmd: QueuedCommand,
    pub protocol: Protocol,
    pub upgrade_type: u8,
    pub deadline: Instant,
}

/// This node's upgrades waiting for their result, by vehicle.
#[derive(Debug, Default)]
pub struct Waiting {
    map: Mutex<HashMap<String, Vec<Entry>>>,
}

impl Waiting {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Entry>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The transfer of `cmd` is done: wait `timeout` for its result.
    pub fn add(&self, cmd: QueuedCommand, protocol: Protocol, upgrade_type: u8, timeout: Duration) {
        let mut map = self.map();
        let list = map.entry(cmd.vehicle.clone()).or_default();
        list.retain(|e| e.cmd.id != cmd.id);
        list.push(Entry {
            cmd,
            protocol,
            upgrade_type,
            deadline: Instant::now() + timeout,
        });
    }

    /// Whether command `id` of `vehicle` is waiting for its result.
    pub fn contains(&self, vehicle: &str, id: &str) -> bool {
        self.map()
            .get(vehicle)
            .is_some_and(|l| l.iter().any(|e| e.cmd.id == id))
    }

    /// The oldest upgrade of `vehicle` of `upgrade_type` waiting, taken out.
    pub fn take(&self, vehicle: &str, upgrade_type: u8) -> Option<Entry> {
        let mut map = self.map();
        let list = map.get_mut(vehicle)?;
        let i = list.iter().position(|e| e.upgrade_type == upgrade_type)?;
        let e = list.remove(i);
        if list.is_empty() {
            map.remove(vehicle);
        }
        Some(e)
    }

    /// Forgets command `id` of `vehicle` (it expired or was cancelled).
    pub fn remove(&self, vehicle: &str, id: &str) {
        let mut map = self.map();
        if let Some(list) = map.get_mut(vehicle) {
            list.retain(|e| e.cmd.id != id);
            if list.is_empty() {
                map.remove(vehicle);
            }
        }
    }

    /// The entries past their deadline at `now`, taken out.
    pub fn overdue(&self, now: Instant) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut map = self.map();
        map.retain(|_, list| {
            let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|e| e.deadline <= now);
            out.extend(late);
            *list = keep;
            !list.is_empty()
        });
        out
    }

    /// Upgrades waiting, all vehicles.
    pub fn len(&self) -> usize {
        self.map().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(vehicle: &str, id: &str) -> QueuedCommand {
        QueuedCommand {
            attempts: 1,
            ..QueuedCommand::for_test(vehicle, id, "upgrade")
        }
    }

    #[test]
    fn entries_are_taken_by_type_oldest_first_and_fall_due() {
        let w = Waiting::default();
        let p = Protocol::Jt808_2019;
        w.add(cmd("v", "a"), p, 0, Duration::from_secs(60));
        w.add(cmd("v", "b"), p, 52, Duration::from_secs(60));
        w.add(cmd("v", "c"), p, 0, Duration::from_secs(0));
        assert!(w.contains("v", "b"));
        assert!(!w.contains("w", "b"));
        assert_eq!(w.take("v", 0).map(|e| e.cmd.id), Some("a".into()));
        assert_eq!(w.len(), 2);
        let due = w.overdue(Instant::now());
        assert_eq!(
            due.iter().map(|e| e.cmd.id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        w.remove("v", "b");
        assert!(w.is_empty());
        assert!(w.take("v", 52).is_none());
    }
}
