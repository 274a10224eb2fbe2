//! [`MemoryQueue`]: the [`CommandQueue`] kept in memory only (tests, and runs without a
//! `data_dir`). Same semantics as [`RedbQueue`](super::RedbQueue), nothing survives the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    count_refused, expired, set_depth_gauge, validate, CommandQueue, Enqueued, KnownVehicle,
    Listed, QueueError, QueueLimits, QueuedCommand, Taken,
};

/// The in-memory command queue. Cloning is cheap (an `Arc`); clones share one queue.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    inner: Arc<Mutex<Inner>>,
    limits: QueueLimits,
}

/// (vehicle, id)
type VehId = (String, String);

#[derive(Default)]
struct Inner {
    /// (vehicle, 9 - priority, seq) -> command: iteration order is the delivery order.
    commands: BTreeMap<(String, u8, u64), QueuedCommand>,
    /// (vehicle, id) -> (9 - priority, seq, expires_at_ms)
    ids: HashMap<VehId, (u8, u64, i64)>,
    /// (expires_at_ms, vehicle, id)
    expiry: BTreeSet<(i64, String, String)>,
    /// (vehicle, id) -> finished_ms
    done: HashMap<VehId, i64>,
    /// (finished_ms, vehicle, id)
    done_by_time: BTreeSet<(i64, String, String)>,
    /// vehicle -> (protocol, last_seen_ms)
    vehicles: BTreeMap<String, (String, i64)>,
    /// vehicle -> commands queued
    per_vehicle: HashMap<String, usize>,
    next_seq: u64,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("len", &self.len())
            .field("limits", &self.limits)
            .finish()
    }
}

impl MemoryQueue {
    /// An empty queue with these limits.
    pub fn new(limits: QueueLimits) -> Self {
        MemoryQueue {
            inner: Arc::default(),
            limits,
        }
    }

    /// The limits this queue enforces.
    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a way that matters
        // more than refusing all further work would, so a poisoned lock is used as is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn enqueue_one(&mut self, cmd: QueuedCommand, limits: &QueueLimits) -> Enqueued {
        let key = (cmd.vehicle.clone(), cmd.id.clone());
        if self.ids.contains_key(&key) || self.done.contains_key(&key) {
            return Enqueued::Duplicate;
        }
        let n = self.per_vehicle.get(&cmd.vehicle).copied().unwrap_or(0);
        if n >= limits.per_vehicle {
            return Enqueued::VehicleFull;
        }
        if self.commands.len() >= limits.global {
            return Enqueued::GlobalFull;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let rank = 9 - cmd.priority;
        self.ids.insert(key, (rank, seq, cmd.expires_at_ms));
        self.expiry
            .insert((cmd.expires_at_ms, cmd.vehicle.clone(), cmd.id.clone()));
        *self.per_vehicle.entry(cmd.vehicle.clone()).or_insert(0) += 1;
        self.commands.insert((cmd.vehicle.clone(), rank, seq), cmd);
        Enqueued::Stored
    }

    /// Removes a queued command (if queued) and remembers its id; returns the command.
    fn remove(&mut self, vehicle: &str, id: &str, now_ms: i64) -> Option<QueuedCommand> {
        let key = (vehicle.to_owned(), id.to_owned());
        let removed = match self.ids.remove(&key) {
            Some((rank, seq, expires)) => {
                self.expiry
                    .remove(&(expires, vehicle.to_owned(), id.to_owned()));
                if let Some(n) = self.per_vehicle.get_mut(vehicle) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_vehicle.remove(vehicle);
                    }
                }
                self.commands.remove(&(vehicle.to_owned(), rank, seq))
            }
            None => None,
        };
        if removed.is_some() || !self.done.contains_key(&key) {
            if let Some(old) = self.done.insert(key, now_ms) {
                self.done_by_time
                    .remove(&(old, vehicle.to_owned(), id.to_owned()));
            }
            self.done_by_time
                .insert((now_ms, vehicle.to_owned(), id.to_owned()));
        }
        removed
    }
}

impl CommandQueue for MemoryQueue {
    fn enqueue(&self, cmd: QueuedCommand) -> Result<Enqueued, QueueError> {
        validate(&cmd.vehicle, &cmd.id, cmd.priority)?;
        let mut g = self.lock();
        let r = g.enqueue_one(cmd, &self.limits);
        count_refused(r);
        if r == Enqueued::Stored {
            set_depth_gauge(g.commands.len());
        }
        Ok(r)
    }

    fn enqueue_many(&self, cmds: Vec<QueuedCommand>) -> Result<Vec<Enqueued>, QueueError> {
        for c in &cmds {
            validate(&c.vehicle, &c.id, c.priority)?;
        }
        let mut g = self.lock();
        let out: Vec<Enqueued> = cmds
            .into_iter()
            .map(|c| {
                let r = g.enqueue_one(c, &self.limits);
                count_refused(r);
                r
            })
            .collect();
        set_depth_gauge(g.commands.len());
        Ok(out)
    }

    fn pending(&self, vehicle: &str, now_ms: i64, limit: usize) -> Listed {
        let g = self.lock();
        let from = (vehicle.to_owned(), 0u8, 0u64);
        Ok(g.commands
            .range(from..)
            .take_while(|((v, _, _), _)| v == vehicle)
            .map(|(_, c)| c)
            .filter(|c| !expired(c, now_ms))
            .take(limit)
            .cloned()
            .collect())
    }

    fn mark_attempt(&self, vehicle: &str, id: &str) -> Result<(), QueueError> {
        let mut g = self.lock();
        let Some(&(rank, seq, _)) = g.ids.get(&(vehicle.to_owned(), id.to_owned())) else {
            return Ok(());
        };
        if let Some(c) = g.commands.get_mut(&(vehicle.to_owned(), rank, seq)) {
            c.attempts = c.attempts.saturating_add(1);
        }
        Ok(())
    }

    fn finish(&self, vehicle: &str, id: &str, now_ms: i64) -> Result<bool, QueueError> {
        let mut g = self.lock();
        let r = g.remove(vehicle, id, now_ms).is_some();
        set_depth_gauge(g.commands.len());
        Ok(r)
    }

    fn cancel(&self, vehicle: &str, id: &str, now_ms: i64) -> Taken {
        let mut g = self.lock();
        if !g.ids.contains_key(&(vehicle.to_owned(), id.to_owned())) {
            return Ok(None);
        }
        let r = g.remove(vehicle, id, now_ms);
        set_depth_gauge(g.commands.len());
        Ok(r)
    }

    fn finish_many(&self, vehicle: &str, ids: &[String], now_ms: i64) -> Result<usize, QueueError> {
        let mut g = self.lock();
        let n = ids
            .iter()
            .filter(|id| g.remove(vehicle, id, now_ms).is_some())
            .count();
        set_depth_gauge(g.commands.len());
        Ok(n)
    }

    fn take_expired(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedCommand>, QueueError> {
        let mut g = self.lock();
        let due: Vec<(String, String)> = g
            .expiry
            .iter()
            .take_while(|(e, _, _)| *e <= now_ms)
            .take(limit)
            .map(|(_, v, i)| (v.clone(), i.clone()))
            .collect();
        let out: Vec<QueuedCommand> = due
            .into_iter()
            .filter_map(|(v, i)| g.remove(&v, &i, now_ms))
            .collect();
        set_depth_gauge(g.commands.len());
        Ok(out)
    }

    fn prune(&self, now_ms: i64) -> Result<usize, QueueError> {
        let cutoff = now_ms.saturating_sub(self.limits.remember_ids_ms);
        let mut g = self.lock();
        let old: Vec<(i64, String, String)> = g
            .done_by_time
            .iter()
            .take_while(|(t, _, _)| *t < cutoff)
            .cloned()
            .collect();
        for k in &old {
            g.done_by_time.remove(k);
            g.done.remove(&(k.1.clone(), k.2.clone()));
        }
        Ok(old.len())
    }

    fn len(&self) -> usize {
        self.lock().commands.len()
    }

    fn len_vehicle(&self, vehicle: &str) -> usize {
        self.lock().per_vehicle.get(vehicle).copied().unwrap_or(0)
    }

    fn remember_vehicles(&self, seen: &[(String, String)], now_ms: i64) -> Result<(), QueueError> {
        for (vehicle, _) in seen {
            super::check_id("vehicle id", vehicle)?;
        }
        let mut g = self.lock();
        for (vehicle, protocol) in seen {
            g.vehicles
                .insert(vehicle.clone(), (protocol.clone(), now_ms));
        }
        Ok(())
    }

    fn known_vehicles(&self) -> Result<Vec<KnownVehicle>, QueueError> {
        Ok(self
            .lock()
            .vehicles
            .iter()
            .map(|(v, (p, t))| KnownVehicle {
                vehicle: v.clone(),
                protocol: p.clone(),
                last_seen_ms: *t,
            })
            .collect())
    }
}
