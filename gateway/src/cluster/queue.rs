//! [`RedisQueue`]: the offline command queue shared by every node, in Redis.
//!
//! The same [`CommandQueue`] semantics as the embedded stores (priority then age, TTL, caps,
//! idempotent ids, known vehicles for broadcasts), so the dispatcher and the sessions do not
//! know which one they talk to.
//!
//! # Keys
//! Every key of one vehicle carries the vehicle id as its hash tag (`{vid}`), so on a Redis
//! Cluster they live in one slot and one Lua script can change them atomically:
//!
//! ```text
//! {ns}:q:{vid}:z      sorted set  id -> (9 - priority) * 1e12 + seq   delivery order
//! {ns}:q:{vid}:h      hash        id -> command record (JSON)
//! {ns}:q:{vid}:e      hash        id -> expires_at_ms
//! {ns}:q:{vid}:a      hash        id -> delivery attempts
//! {ns}:q:{vid}:seq    counter     enqueue order of this vehicle
//! {ns}:q:{vid}:d:{id} string      a finished id, remembered (PX = remember_ids_ms)
//! {ns}:{g}:q:total    counter     commands queued in all (the global cap)
//! {ns}:{g}:q:exp      sorted set  "vid\x1fid" -> expires_at_ms   the expiry sweep's index
//! {ns}:{g}:known      sorted set  vid (score 0, listed by id)
//! {ns}:{g}:known:p    hash        vid -> "protocol\tlast_seen_ms"
//! ```
//!
//! The keys that are not one vehicle's share the hash tag `{g}`, so that a pipeline of them
//! (the counter with the expiry index, the two halves of the known vehicles) stays in one
//! slot of a Redis Cluster.
//!
//! # Atomicity, and why a command is delivered once and never lost
//! Enqueue, finish, cancel and expire are each one Lua script on the vehicle's keys: a
//! duplicate id, a per-vehicle cap, a finish racing an expiry or a cancel are decided inside
//! Redis, so two nodes can never both take one command out (only the one whose script
//! removed it publishes its final status). A command leaves the queue only with its final
//! status: the node that sends it marks the attempt and keeps it queued until the vehicle
//! answers; if that node dies between sending and the answer, the command is still queued
//! and goes out again (attempt + 1) wherever the vehicle logs in next. Only the node holding
//! the vehicle's session reads its queue to send (presence, `cluster::presence`), so two
//! nodes do not send the same command at once.
//!
//! The global counter and the expiry index live outside the vehicle's slot and are updated
//! right after the script: the global cap is exact on one Redis and may be off by the
//! commands in flight of a node that died mid-call on a Cluster (documented in
//! docs/deploy.md); a stale index entry is harmless (the expiry script checks the vehicle's
//! own record).
//!
//! Durability is Redis's: run it with `appendonly yes` (`appendfsync everysec` loses at most
//! a second of acknowledged commands in a power cut; `always` none), and Sentinel or Cluster
//! replicas for a machine that dies.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use redis::Script;

use super::redis::{Redis, RedisError};
use crate::queue::{
    validate, CommandQueue, Enqueued, KnownVehicle, QueueError, QueueLimits, QueuedCommand,
};

/// The shared command queue. Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub struct RedisQueue {
    redis: Redis,
    ns: Arc<str>,
    limits: QueueLimits,
    rt: tokio::runtime::Handle,
    scripts: Arc<Scripts>,
    /// The last known global count, for [`CommandQueue::len`] which must not block.
    total: Arc<AtomicUsize>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("ns", &self.ns)
            .field("limits", &self.limits)
            .finish()
    }
}

struct Scripts {
    enqueue: Script,
    pending: Script,
    attempt: Script,
    remove: Script,
    expire: Script,
}

/// KEYS: z h e a seq done; ARGV: id record rank expires cap
const ENQUEUE: &str = r"
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('EXISTS', KEYS[6]) == 1 then
  return 'dup'
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then return 'vfull' end
local seq = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) * 1000000000000 + seq, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return 'ok'
";

/// KEYS: z h e a; ARGV: now limit. Returns [record, attempts, record, attempts, ...] of the
/// first `limit` commands not expired, in delivery order.
const PENDING: &str = r"
local out = {}
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
for _, id in ipairs(ids) do
  if #out >= 2 * limit then break end
  local e = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  if e > now then
    local rec = redis.call('HGET', KEYS[2], id)
    if rec then
      out[#out + 1] = rec
      out[#out + 1] = redis.call('HGET', KEYS[4], id) or '0'
    end
  end
end
return out
";

/// KEYS: z a; ARGV: id
const ATTEMPT: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end
return 1
";

/// KEYS: z h e a done; ARGV: id remember_ms mode ('finish' remembers an id even when it was
/// not queued; 'cancel' only when it was). Returns the record, or false.
const REMOVE: &str = r"
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if rec then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
end
if rec or ARGV[3] == 'finish' then
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
end
return rec
";

/// KEYS: z h e a done; ARGV: id now remember_ms. Removes the command if it is queued and
/// expired at `now`; returns its record (with attempts), or false.
const EXPIRE: &str = r"
local e = redis.call('HGET', KEYS[3], ARGV[1])
if not e or tonumber(e) > tonumber(ARGV[2]) then return false end
local rec = redis.call('HGET', KEYS[2], ARGV[1])
local att = redis.call('HGET', KEYS[4], ARGV[1]) or '0'
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[3])
return {rec, att}
";

/// The keys of one vehicle's queue.
struct VKeys {
    z: String,
    h: String,
    e: String,
    a: String,
    seq: String,
}

impl VKeys {
    /// `script` on this queue: its first KEYS are `z h e a` (the scripts that add more
    /// keys add them after these).
    fn invoke<'s>(&self, script: &'s Script) -> redis::ScriptInvocation<'s> {
        let mut inv = script.prepare_invoke();
        inv.key(&self.z).key(&self.h).key(&self.e).key(&self.a);
        inv
    }
}

fn storage(context: &str, e: RedisError) -> QueueError {
    QueueError::Storage {
        context: context.to_owned(),
        source: Box::new(e),
    }
}

/// The expiry index member of (vehicle, id): the unit separator cannot be in either (a
/// vehicle id is `[A-Za-z0-9_-]`; a command id with one is refused).
fn exp_member(vehicle: &str, id: &str) -> String {
    format!("{vehicle}\x1f{id}")
}

impl RedisQueue {
    /// The queue under namespace `ns` (every node of one gateway uses the same), with these
    /// limits; synchronous calls run on `rt`.
    pub fn new(redis: Redis, ns: &str, limits: QueueLimits, rt: tokio::runtime::Handle) -> Self {
        RedisQueue {
            redis,
            ns: Arc::from(ns),
            limits,
            rt,
            scripts: Arc::new(Scripts {
                enqueue: Script::new(ENQUEUE),
                pending: Script::new(PENDING),
                attempt: Script::new(ATTEMPT),
                remove: Script::new(REMOVE),
                expire: Script::new(EXPIRE),
            }),
            total: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn vkeys(&self, vehicle: &str) -> VKeys {
        let ns = &self.ns;
        VKeys {
            z: format!("{ns}:q:{{{vehicle}}}:z"),
            h: format!("{ns}:q:{{{vehicle}}}:h"),
            e: format!("{ns}:q:{{{vehicle}}}:e"),
            a: format!("{ns}:q:{{{vehicle}}}:a"),
            seq: format!("{ns}:q:{{{vehicle}}}:seq"),
        }
    }

    fn done_key(&self, vehicle: &str, id: &str) -> String {
        format!("{}:q:{{{vehicle}}}:d:{id}", self.ns)
    }

    fn total_key(&self) -> String {
        format!("{}:{{g}}:q:total", self.ns)
    }

    fn exp_key(&self) -> String {
        format!("{}:{{g}}:q:exp", self.ns)
    }

    fn known_key(&self) -> String {
        format!("{}:{{g}}:known", self.ns)
    }

    fn known_p_key(&self) -> String {
        format!("{}:{{g}}:known:p", self.ns)
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        Redis::block_on(&self.rt, f)
    }

    fn note_total(&self, n: i64) {
        let n = usize::try_from(n.max(0)).unwrap_or(0);
        self.total.store(n, Ordering::Relaxed);
        ::metrics::gauge!("vgate_command_queue_depth").set(n as f64);
    }

    async fn enqueue_one(&self, cmd: &QueuedCommand) -> Result<Enqueued, QueueError> {
        let total: Option<i64> = self
            .redis
            .query("queue_total", redis::cmd("GET").arg(self.total_key()))
            .await
            .map_err(|e| storage("reading the queue total", e))?;
        let record = serde_json::to_string(cmd).map_err(|source| QueueError::Encode {
            vehicle: cmd.vehicle.clone(),
            id: cmd.id.clone(),
            source,
        })?;
        let k = self.vkeys(&cmd.vehicle);
        let rank = 9 - i64::from(cmd.priority.min(9));
        let mut inv = k.invoke(&self.scripts.enqueue);
        inv.key(&k.seq)
            .key(self.done_key(&cmd.vehicle, &cmd.id))
            .arg(&cmd.id)
            .arg(record)
            .arg(rank)
            .arg(cmd.expires_at_ms)
            .arg(self.limits.per_vehicle);
        // The global cap is checked before the script: exact on one Redis for one writer,
        // a soft bound otherwise (module docs).
        let over = usize::try_from(total.unwrap_or(0).max(0)).unwrap_or(0) >= self.limits.global;
        let r: String = if over {
            // A duplicate is still a duplicate when the queue is full.
            let dup: bool = self
                .redis
                .pipe(
                    "queue_dup",
                    redis::pipe()
                        .cmd("HEXISTS")
                        .arg(&k.h)
                        .arg(&cmd.id)
                        .cmd("EXISTS")
                        .arg(self.done_key(&cmd.vehicle, &cmd.id)),
                )
                .await
                .map(|(a, b): (bool, bool)| a || b)
                .map_err(|e| storage("checking a duplicate", e))?;
            if dup { "dup" } else { "gfull" }.to_owned()
        } else {
            self.redis
                .script("queue_enqueue", &inv)
                .await
                .map_err(|e| storage("storing a command", e))?
        };
        let out = match r.as_str() {
            "ok" => Enqueued::Stored,
            "dup" => Enqueued::Duplicate,
            "vfull" => Enqueued::VehicleFull,
            "gfull" => Enqueued::GlobalFull,
            other => {
                return Err(storage(
                    "storing a command",
                    RedisError::Unexpected {
                        what: "enqueue script",
                        detail: other.to_owned(),
                    },
                ))
            }
        };
        if out == Enqueued::Stored {
            self.index(&cmd.vehicle, &cmd.id, Some(cmd.expires_at_ms))
                .await?;
        }
        match out {
            Enqueued::VehicleFull => {
                ::metrics::counter!("vgate_command_queue_refused_total", "reason" => "vehicle_full")
                    .increment(1)
            }
            Enqueued::GlobalFull => {
                ::metrics::counter!("vgate_command_queue_refused_total", "reason" => "global_full")
                    .increment(1)
            }
            _ => {}
        }
        Ok(out)
    }

    /// Removes (vehicle, id) with the REMOVE script; `mode` is `finish` or `cancel`.
    async fn remove(
        &self,
        vehicle: &str,
        id: &str,
        mode: &str,
    ) -> Result<Option<QueuedCommand>, QueueError> {
        let mut inv = self.vkeys(vehicle).invoke(&self.scripts.remove);
        inv.key(self.done_key(vehicle, id))
            .arg(id)
            .arg(self.limits.remember_ids_ms.max(1))
            .arg(mode);
        let rec: Option<String> = self
            .redis
            .script("queue_remove", &inv)
            .await
            .map_err(|e| storage("removing a command", e))?;
        let Some(rec) = rec else { return Ok(None) };
        self.unindex(vehicle, id).await?;
        decode(vehicle, id, &rec, 0).map(Some)
    }

    async fn settle_one(&self, op: &crate::queue::Settle) -> Result<(), QueueError> {
        use crate::queue::Settle;
        match op {
            Settle::Attempt { vehicle, id } => self.attempt(vehicle, id).await,
            Settle::Finish { vehicle, id } => self.remove(vehicle, id, "finish").await.map(|_| ()),
        }
    }

    /// One more delivery attempt of (vehicle, id), if it is queued.
    async fn attempt(&self, vehicle: &str, id: &str) -> Result<(), QueueError> {
        let k = self.vkeys(vehicle);
        let mut inv = self.scripts.attempt.prepare_invoke();
        inv.key(&k.z).key(&k.a).arg(id);
        self.redis
            .script::<i64>("queue_attempt", &inv)
            .await
            .map(|_| ())
            .map_err(|e| storage("counting an attempt", e))
    }

    async fn unindex(&self, vehicle: &str, id: &str) -> Result<(), QueueError> {
        self.index(vehicle, id, None).await
    }

    /// Counts (vehicle, id) in the global total and the expiry index (`Some(expires_at_ms)`:
    /// just stored) or out of them (`None`: just removed), in one round trip.
    async fn index(&self, vehicle: &str, id: &str, stored: Option<i64>) -> Result<(), QueueError> {
        let mut p = redis::pipe();
        let what = match stored {
            Some(expires) => {
                p.cmd("INCR").arg(self.total_key());
                p.cmd("ZADD").arg(self.exp_key()).arg(expires);
                "indexing a command"
            }
            None => {
                p.cmd("DECR").arg(self.total_key());
                p.cmd("ZREM").arg(self.exp_key());
                "unindexing a command"
            }
        };
        p.arg(exp_member(vehicle, id)).ignore();
        let (n,): (i64,) = self
            .redis
            .pipe("queue_index", &p)
            .await
            .map_err(|e| storage(what, e))?;
        self.note_total(n);
        Ok(())
    }

    /// The first `limit` members of the sorted set `key` between `min` and `max`, ranged
    /// `by` score (`ZRANGEBYSCORE`) or by name (`ZRANGEBYLEX`); `what` names it in the
    /// error counter.
    async fn first_of<A: redis::ToRedisArgs, B: redis::ToRedisArgs>(
        &self,
        (what, by): (&'static str, &'static str),
        key: String,
        (min, max): (A, B),
        limit: usize,
    ) -> super::redis::Reply<Vec<String>> {
        let mut c = redis::cmd(by);
        c.arg(key).arg(min).arg(max).arg("LIMIT").arg(0).arg(limit);
        self.redis.query(what, &c).await
    }

    async fn known_of(&self, ids: Vec<String>) -> Result<Vec<KnownVehicle>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let vals: Vec<Option<String>> = self
            .redis
            .query(
                "known",
                redis::cmd("HMGET").arg(self.known_p_key()).arg(&ids),
            )
            .await
            .map_err(|e| storage("reading known vehicles", e))?;
        Ok(ids
            .into_iter()
            .zip(vals)
            .filter_map(|(vehicle, v)| {
                let v = v?;
                let (protocol, ms) = v.split_once('\t')?;
                Some(KnownVehicle {
                    vehicle,
                    protocol: protocol.to_owned(),
                    last_seen_ms: ms.parse().unwrap_or(0),
                })
            })
            .collect())
    }
}

fn decode(vehicle: &str, id: &str, rec: &str, attempts: u32) -> Result<QueuedCommand, QueueError> {
    let mut q: QueuedCommand = serde_json::from_str(rec).map_err(|e| QueueError::Corrupt {
        table: "redis queue",
        key: format!("{vehicle}/{id}"),
        reason: e.to_string(),
    })?;
    q.attempts = q.attempts.max(attempts);
    Ok(q)
}

fn check_cmd_id(id: &str) -> Result<(), QueueError> {
    if id.contains('\x1f') {
        return Err(QueueError::Invalid(format!(
            "command id {id:?} holds a control character"
        )));
    }
    Ok(())
}

impl CommandQueue for RedisQueue {
    fn enqueue(&self, cmd: QueuedCommand) -> Result<Enqueued, QueueError> {
        validate(&cmd.vehicle, &cmd.id, cmd.priority)?;
        check_cmd_id(&cmd.id)?;
        self.block(self.enqueue_one(&cmd))
    }

    /// Every command of the batch is sent at once on the multiplexed connection (pipelined):
    /// the batch costs about one round trip, not one per command. Each command is atomic on
    /// its own; a failure part way leaves the ones before it stored, and the call fails (the
    /// dispatcher then leaves the whole batch unacknowledged: the broker delivers it again and
    /// the stored ones are recognised as duplicates).
    fn enqueue_many(&self, cmds: Vec<QueuedCommand>) -> Result<Vec<Enqueued>, QueueError> {
        for c in &cmds {
            validate(&c.vehicle, &c.id, c.priority)?;
            check_cmd_id(&c.id)?;
        }
        self.block(async {
            // Vehicles concurrently; the commands of one vehicle one after the other, in
            // order, so their enqueue order (seq) is the order received (a Cluster client may
            // reorder requests sent at once). Chunks keep the requests in flight bounded.
            let mut per_vehicle: HashMap<&str, Vec<usize>> = HashMap::new();
            for (i, c) in cmds.iter().enumerate() {
                per_vehicle.entry(c.vehicle.as_str()).or_default().push(i);
            }
            let groups: Vec<Vec<usize>> = per_vehicle.into_values().collect();
            let mut out: Vec<Option<Enqueued>> = vec![None; cmds.len()];
            let cmds = &cmds;
            for chunk in groups.chunks(512) {
                let rs = futures::future::join_all(chunk.iter().map(|idx| async move {
                    let mut done = Vec::with_capacity(idx.len());
                    for &i in idx {
                        let Some(c) = cmds.get(i) else { continue };
                        done.push((i, self.enqueue_one(c).await?));
                    }
                    Ok::<_, QueueError>(done)
                }))
                .await;
                for r in rs {
                    for (i, e) in r? {
                        if let Some(slot) = out.get_mut(i) {
                            *slot = Some(e);
                        }
                    }
                }
            }
            Ok(out
                .into_iter()
                .map(|o| o.unwrap_or(Enqueued::Duplicate))
                .collect())
        })
    }

    fn pending(
        &self,
        vehicle: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedCommand>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self.vkeys(vehicle).invoke(&self.scripts.pending);
        inv.arg(now_ms).arg(limit);
        let flat: Vec<String> = self
            .block(self.redis.script("queue_pending", &inv))
            .map_err(|e| storage("reading the queue", e))?;
        let mut out = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks(2) {
            if let [rec, att] = pair {
                out.push(decode(vehicle, "?", rec, att.parse().unwrap_or(0))?);
            }
        }
        Ok(out)
    }

    fn mark_attempt(&self, vehicle: &str, id: &str) -> Result<(), QueueError> {
        self.block(self.attempt(vehicle, id))
    }

    fn finish(&self, vehicle: &str, id: &str, _now_ms: i64) -> Result<bool, QueueError> {
        self.block(self.remove(vehicle, id, "finish"))
            .map(|r| r.is_some())
    }

    fn cancel(
        &self,
        vehicle: &str,
        id: &str,
        _now_ms: i64,
    ) -> Result<Option<QueuedCommand>, QueueError> {
        self.block(self.remove(vehicle, id, "cancel"))
    }

    fn settle_many(&self, ops: &[crate::queue::Settle], _now_ms: i64) -> Result<(), QueueError> {
        use crate::queue::Settle;
        // Vehicles concurrently, the ops of one vehicle in order.
        let mut per_vehicle: HashMap<&str, Vec<&Settle>> = HashMap::new();
        for op in ops {
            let v = match op {
                Settle::Attempt { vehicle, .. } | Settle::Finish { vehicle, .. } => vehicle,
            };
            per_vehicle.entry(v.as_str()).or_default().push(op);
        }
        self.block(async {
            let rs = futures::future::join_all(per_vehicle.into_values().map(|ops| async move {
                for op in ops {
                    self.settle_one(op).await?;
                }
                Ok::<(), QueueError>(())
            }))
            .await;
            rs.into_iter().collect::<Result<Vec<()>, _>>().map(|_| ())
        })
    }

    fn take_expired(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedCommand>, QueueError> {
        self.block(async {
            // The sweeper calls this every second on every node: it refreshes this node's
            // view of the global count too (the other nodes change it).
            let total: Option<i64> = self
                .redis
                .query("queue_total", redis::cmd("GET").arg(self.total_key()))
                .await
                .map_err(|e| storage("reading the queue total", e))?;
            self.note_total(total.unwrap_or(0));
            let due = self
                .first_of(
                    ("queue_expired", "ZRANGEBYSCORE"),
                    self.exp_key(),
                    ("-inf", now_ms),
                    limit,
                )
                .await
                .map_err(|e| storage("reading the expiry index", e))?;
            let mut out = Vec::new();
            for m in due {
                let Some((vehicle, id)) = m.split_once('\x1f') else {
                    continue;
                };
                let mut inv = self.vkeys(vehicle).invoke(&self.scripts.expire);
                inv.key(self.done_key(vehicle, id))
                    .arg(id)
                    .arg(now_ms)
                    .arg(self.limits.remember_ids_ms.max(1));
                let got: Option<(String, String)> =
                    self.redis
                        .script("queue_expire", &inv)
                        .await
                        .map_err(|e| storage("expiring a command", e))?;
                match got {
                    // This node removed it: it alone publishes `expired`.
                    Some((rec, att)) => {
                        self.unindex(vehicle, id).await?;
                        out.push(decode(vehicle, id, &rec, att.parse().unwrap_or(0))?);
                    }
                    // Finished or taken by another node meanwhile: only the index entry is left.
                    None => {
                        self.redis
                            .query::<i64>(
                                "queue_index",
                                redis::cmd("ZREM").arg(self.exp_key()).arg(&m),
                            )
                            .await
                            .map_err(|e| storage("unindexing a command", e))?;
                    }
                }
            }
            Ok(out)
        })
    }

    /// Redis restarts and fails over: a write refused now may go through in a moment.
    fn retry_errors(&self) -> bool {
        true
    }

    /// Redis forgets remembered ids by itself (each is a key with a TTL).
    fn prune(&self, _now_ms: i64) -> Result<usize, QueueError> {
        Ok(0)
    }

    /// The count at the last change this node made or saw (it must not block: the status
    /// page asks from async code); refreshed by every enqueue and removal, and every second
    /// by the expiry sweep.
    fn len(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    fn len_vehicle(&self, vehicle: &str) -> usize {
        let z = self.vkeys(vehicle).z;
        self.block(
            self.redis
                .query::<usize>("queue_len", redis::cmd("ZCARD").arg(z)),
        )
        .unwrap_or(0)
    }

    fn remember_vehicles(&self, seen: &[(String, String)], now_ms: i64) -> Result<(), QueueError> {
        for (vehicle, _) in seen {
            validate(vehicle, "x", 0)?;
        }
        if seen.is_empty() {
            return Ok(());
        }
        let mut p = redis::pipe();
        for chunk in seen.chunks(1000) {
            let mut z = redis::cmd("ZADD");
            z.arg(self.known_key());
            let mut h = redis::cmd("HSET");
            h.arg(self.known_p_key());
            for (v, proto) in chunk {
                z.arg(0).arg(v);
                h.arg(v).arg(format!("{proto}\t{now_ms}"));
            }
            p.add_command(z).ignore().add_command(h).ignore();
        }
        self.block(self.redis.pipe::<()>("known_write", &p))
            .map_err(|e| storage("remembering vehicles", e))
    }

    fn known_vehicles(&self) -> Result<Vec<KnownVehicle>, QueueError> {
        let mut all = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let page = self.known_vehicles_from(
                from.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                10_000,
            )?;
            let done = page.len() < 10_000;
            from = page.last().map(|k| k.vehicle.clone());
            all.extend(page);
            if done || from.is_none() {
                return Ok(all);
            }
        }
    }

    fn known_vehicles_from(
        &self,
        from: Bound<&str>,
        limit: usize,
    ) -> Result<Vec<KnownVehicle>, QueueError> {
        let min = match from {
            Bound::Included(a) => format!("[{a}"),
            Bound::Excluded(a) => format!("({a}"),
            Bound::Unbounded => "-".to_owned(),
        };
        self.block(async {
            let ids = self
                .first_of(
                    ("known", "ZRANGEBYLEX"),
                    self.known_key(),
                    (min, "+"),
                    limit,
                )
                .await
                .map_err(|e| storage("listing known vehicles", e))?;
            self.known_of(ids).await
        })
    }

    fn known_vehicle(&self, vehicle: &str) -> Result<Option<KnownVehicle>, QueueError> {
        self.block(self.known_of(vec![vehicle.to_owned()]))
            .map(|v| v.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::redis::{RedisCluster, RedisSentinel, RedisServer};
    use Enqueued::{Duplicate, GlobalFull, Stored, VehicleFull};

    fn cmd(vehicle: &str, id: &str, priority: u8, at: i64, expires: i64) -> QueuedCommand {
        QueuedCommand {
            vehicle: vehicle.into(),
            id: id.into(),
            priority,
            enqueued_at_ms: at,
            expires_at_ms: expires,
            command:
                serde_json::json!({"id": id, "type": "text", "params": {"text": "hi", "n": 1.5}})
                    .into(),
            response_topic: None,
            correlation_data: Some(vec![1, 2, 3]),
            attempts: 0,
        }
    }

    /// A queue with these limits on the Redis at `url`, namespace `t`.
    fn queue_at(url: &str, rt: &tokio::runtime::Runtime, limits: QueueLimits) -> RedisQueue {
        let redis = rt
            .block_on(Redis::connect(url, std::time::Duration::from_secs(2)))
            .unwrap();
        RedisQueue::new(redis, "t", limits, rt.handle().clone())
    }

    fn queue(
        server: &RedisServer,
        rt: &tokio::runtime::Runtime,
        limits: QueueLimits,
    ) -> RedisQueue {
        queue_at(&server.url(), rt, limits)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A Redis server of its own, a runtime and a queue on it; `None` without `redis-server`
    /// (the test then checks nothing).
    fn started(limits: QueueLimits) -> Option<(RedisServer, tokio::runtime::Runtime, RedisQueue)> {
        let server = RedisServer::start()?;
        let rt = rt();
        let q = queue(&server, &rt, limits);
        Some((server, rt, q))
    }

    /// [`started`] with the default limits on another kind of Redis (a Cluster, Sentinel),
    /// reached at `url(server)`.
    fn started_on<S>(
        start: fn() -> Option<S>,
        url: fn(&S) -> String,
    ) -> Option<(S, tokio::runtime::Runtime, RedisQueue)> {
        let server = start()?;
        let rt = rt();
        let q = queue_at(&url(&server), &rt, QueueLimits::default());
        Some((server, rt, q))
    }

    /// Enqueues each command in turn, checking what became of it.
    fn enqueue_expecting(q: &RedisQueue, steps: &[(QueuedCommand, Enqueued)]) {
        for (c, want) in steps {
            let got = q.enqueue(c.clone()).unwrap();
            assert_eq!(
                got, *want,
                "{}/{} (enqueued at {})",
                c.vehicle, c.id, c.enqueued_at_ms
            );
        }
    }

    #[test]
    fn priority_then_age_with_caps_duplicates_and_expiry() {
        let limits = QueueLimits {
            per_vehicle: 3,
            global: 4,
            remember_ids_ms: 60_000,
        };
        let Some((_server, _rt, q)) = started(limits) else {
            return;
        };
        enqueue_expecting(
            &q,
            &[
                (cmd("v1", "a", 1, 1, 1000), Stored),
                (cmd("v1", "b", 9, 2, 1000), Stored),
                (cmd("v1", "c", 1, 3, 50), Stored),
                (cmd("v1", "a", 1, 4, 1000), Duplicate),
                (cmd("v1", "d", 1, 4, 1000), VehicleFull),
                (cmd("v2", "a", 1, 4, 1000), Stored),
                (cmd("v3", "a", 1, 4, 1000), GlobalFull),
            ],
        );
        assert_eq!(q.len(), 4);
        let ids = |v: Vec<QueuedCommand>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(q.pending("v1", 10, 10).unwrap()), ["b", "a", "c"]);
        assert_eq!(ids(q.pending("v1", 10, 2).unwrap()), ["b", "a"]);
        assert_eq!(
            ids(q.pending("v1", 100, 10).unwrap()),
            ["b", "a"],
            "c expired at 50"
        );
        let p = q.pending("v1", 10, 1).unwrap();
        assert_eq!(
            p[0].command,
            cmd("v1", "b", 9, 2, 1000).command,
            "the JSON round trips"
        );
        assert_eq!(p[0].correlation_data, Some(vec![1, 2, 3]));

        q.mark_attempt("v1", "b").unwrap();
        q.mark_attempt("v1", "b").unwrap();
        assert_eq!(q.pending("v1", 10, 1).unwrap()[0].attempts, 2);

        let expired = q.take_expired(100, 10).unwrap();
        assert_eq!(ids(expired), ["c"]);
        assert!(q.take_expired(100, 10).unwrap().is_empty(), "taken once");
        enqueue_expecting(&q, &[(cmd("v1", "c", 1, 5, 1000), Duplicate)]);

        assert!(q.finish("v1", "b", 10).unwrap());
        assert!(!q.finish("v1", "b", 10).unwrap(), "finished once");
        enqueue_expecting(&q, &[(cmd("v1", "b", 9, 6, 1000), Duplicate)]);
        assert!(!q.finish("v1", "never", 10).unwrap());
        // A finished id that was not queued is remembered too.
        enqueue_expecting(&q, &[(cmd("v1", "never", 1, 6, 1000), Duplicate)]);
        assert_eq!(
            q.cancel("v1", "a", 10).unwrap().map(|c| c.id).as_deref(),
            Some("a")
        );
        assert_eq!(q.cancel("v1", "zz", 10).unwrap(), None);
        enqueue_expecting(&q, &[(cmd("v1", "zz", 1, 7, 1000), Stored)]);
        assert_eq!(q.len_vehicle("v1"), 1);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn a_command_queued_by_an_earlier_version_is_read_and_finished() {
        let Some((_server, rt, q)) = started(QueueLimits::default()) else {
            return;
        };
        // The keys ENQUEUE writes, with a record as the versions before `CommandJson` wrote
        // it (the command a `serde_json::Value`, its keys sorted), byte for byte.
        let old = r#"{"vehicle":"v","id":"c1","priority":7,"enqueued_at_ms":1000,"expires_at_ms":4102444800000,"command":{"id":"c1","params":{"text":"hé \"there\""},"priority":7,"type":"text"},"response_topic":"platform/v1/v/cmd/reply","correlation_data":[0,255],"attempts":0}"#;
        let k = q.vkeys("v");
        let setup = redis::pipe()
            .cmd("ZADD")
            .arg(&k.z)
            .arg(2_000_000_000_001_i64)
            .arg("c1")
            .ignore()
            .cmd("HSET")
            .arg(&k.h)
            .arg("c1")
            .arg(old)
            .ignore()
            .cmd("HSET")
            .arg(&k.e)
            .arg("c1")
            .arg(4_102_444_800_000_i64)
            .ignore()
            .cmd("SET")
            .arg(&k.seq)
            .arg(1)
            .ignore()
            .cmd("INCR")
            .arg(q.total_key())
            .ignore()
            .cmd("ZADD")
            .arg(q.exp_key())
            .arg(4_102_444_800_000_i64)
            .arg(exp_member("v", "c1"))
            .ignore()
            .clone();
        rt.block_on(q.redis.pipe::<()>("test", &setup)).unwrap();
        q.mark_attempt("v", "c1").unwrap();
        let p = q.pending("v", 10, 10).unwrap();
        assert_eq!(p.len(), 1);
        let c = &p[0];
        assert_eq!((c.id.as_str(), c.priority, c.attempts), ("c1", 7, 1));
        assert_eq!(c.correlation_data, Some(vec![0, 255]));
        assert_eq!(c.command.kind().as_deref(), Some("text"));
        let command = crate::commands::command_of(c).unwrap();
        assert_eq!(command.params, serde_json::json!({"text": "hé \"there\""}));
        assert_eq!(command.priority, Some(7));
        assert!(q.finish("v", "c1", 10).unwrap());
        assert_eq!(q.len_vehicle("v"), 0);
        enqueue_expecting(&q, &[(cmd("v", "c1", 7, 11, 1000), Duplicate)]);
    }

    #[test]
    fn the_same_semantics_hold_on_a_redis_cluster() {
        let Some((_cluster, _rt, q)) = started_on(RedisCluster::start, RedisCluster::url) else {
            return;
        };
        // Vehicles whose keys land in different slots (and nodes).
        let vehicles: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
        let cmds: Vec<QueuedCommand> = vehicles
            .iter()
            .flat_map(|v| {
                [
                    cmd(v, "low", 1, 1, 1000),
                    cmd(v, "high", 8, 2, 1000),
                    cmd(v, "old", 1, 3, 50),
                ]
            })
            .collect();
        let out = q.enqueue_many(cmds).unwrap();
        assert!(out.iter().all(|o| *o == Enqueued::Stored), "{out:?}");
        enqueue_expecting(&q, &[(cmd("v3", "low", 1, 9, 1000), Duplicate)]);
        for v in &vehicles {
            let ids: Vec<String> = q
                .pending(v, 10, 10)
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect();
            assert_eq!(ids, ["high", "low", "old"], "{v}");
        }
        assert_eq!(q.take_expired(100, 1000).unwrap().len(), vehicles.len());
        q.settle_many(
            &[
                crate::queue::Settle::Attempt {
                    vehicle: "v1".into(),
                    id: "high".into(),
                },
                crate::queue::Settle::Finish {
                    vehicle: "v2".into(),
                    id: "high".into(),
                },
            ],
            10,
        )
        .unwrap();
        assert_eq!(q.pending("v1", 10, 1).unwrap()[0].attempts, 1);
        assert_eq!(q.len_vehicle("v2"), 1);
        assert_eq!(q.len(), 2 * vehicles.len() - 1);
        q.remember_vehicles(
            &[("v1".into(), "raw".into()), ("v2".into(), "raw".into())],
            5,
        )
        .unwrap();
        assert_eq!(q.known_vehicles().unwrap().len(), 2);
    }

    #[test]
    fn a_master_found_through_sentinel_holds_the_queue() {
        let Some((s, rt, q)) = started_on(RedisSentinel::start, RedisSentinel::url) else {
            return;
        };
        enqueue_expecting(&q, &[(cmd("v", "a", 1, 1, 1000), Stored)]);
        assert_eq!(q.pending("v", 10, 10).unwrap()[0].id, "a");
        // It is the master's: seen on a plain connection to it.
        let d = queue_at(&s.master.url(), &rt, QueueLimits::default());
        assert_eq!(d.len_vehicle("v"), 1);
    }

    #[test]
    fn two_nodes_finishing_one_command_finish_it_once() {
        let Some((server, rt, a)) = started(QueueLimits::default()) else {
            return;
        };
        let b = queue(&server, &rt, QueueLimits::default());
        let stored = a
            .enqueue_many(
                (0..200)
                    .map(|i| cmd("v", &format!("c{i}"), 5, i, 10_000))
                    .collect(),
            )
            .unwrap();
        assert!(stored.iter().all(|s| *s == Enqueued::Stored));
        let (ta, tb) = (a.clone(), b.clone());
        let ha = std::thread::spawn(move || {
            (0..200)
                .filter(|i| ta.finish("v", &format!("c{i}"), 1).unwrap())
                .count()
        });
        let hb = std::thread::spawn(move || {
            (0..200)
                .filter(|i| tb.finish("v", &format!("c{i}"), 1).unwrap())
                .count()
        });
        let (na, nb) = (ha.join().unwrap(), hb.join().unwrap());
        assert_eq!(na + nb, 200, "each command finished by exactly one node");
        assert_eq!(b.len_vehicle("v"), 0);
    }

    #[test]
    fn known_vehicles_page_by_id() {
        let Some((_server, _rt, q)) = started(QueueLimits::default()) else {
            return;
        };
        q.remember_vehicles(
            &[
                ("c".into(), "jt808-2013".into()),
                ("a".into(), "gbt32960-2016".into()),
                ("b".into(), "raw".into()),
            ],
            42,
        )
        .unwrap();
        q.remember_vehicle("a", "gbt32960-2025", 43).unwrap();
        let all = q.known_vehicles().unwrap();
        assert_eq!(
            all.iter().map(|k| k.vehicle.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(all[0].protocol, "gbt32960-2025");
        assert_eq!(all[0].last_seen_ms, 43);
        let page = q.known_vehicles_from(Bound::Excluded("a"), 1).unwrap();
        assert_eq!(page[0].vehicle, "b");
        assert_eq!(
            q.known_vehicle("c").unwrap().unwrap().protocol,
            "jt808-2013"
        );
        assert!(q.known_vehicle("zz").unwrap().is_none());
    }

    #[test]
    fn a_dead_redis_is_an_error_not_a_hang() {
        let Some((server, _rt, q)) = started(QueueLimits::default()) else {
            return;
        };
        drop(server);
        let t = std::time::Instant::now();
        assert!(q.enqueue(cmd("v", "x", 1, 1, 10)).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
    }
}
