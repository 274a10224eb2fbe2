//! [`RedbQueue`]: the [`CommandQueue`] embedded in one redb file in the data dir.
//!
//! # Durability
//! Every method that changes the store runs one redb write transaction committed with
//! `Durability::Immediate`: `commit()` returns only after the data and the new root are
//! fsynced, so when [`enqueue`](CommandQueue::enqueue) returns [`Enqueued::Stored`] the command
//! survives a crash, a SIGKILL or a power cut (as far as the disk honours fsync). A crash in the
//! middle of a commit leaves the previous committed state (copy-on-write pages, checksummed
//! roots); redb repairs its allocator state on the next open, which can take a moment on a
//! large file. There is no explicit close: dropping the last handle is enough, nothing is
//! buffered in memory. Cost: one commit (roughly one to a few fsyncs) per call; the `*_many`
//! methods commit once per batch. Only one process may open the file at a time (redb locks it).
//!
//! # Layout (all keys and values are byte strings this module encodes; big-endian integers)
//! `vid(v)` is a vehicle id prefixed with its length as a u16, so one vehicle's keys form a
//! contiguous range and no vehicle id is a prefix-collision of another; `ord(t)` is an i64
//! with its sign bit flipped, so byte order is numeric order.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `commands` | `vid(vehicle)`, `9 - priority` (u8), `seq` (u64) | record: format byte `1`, then the [`QueuedCommand`] as JSON |
//! | `command_ids` | `vid(vehicle)`, id bytes | `9 - priority` (u8), `seq` (u64), `ord(expires_at_ms)` |
//! | `command_expiry` | `ord(expires_at_ms)`, `vid(vehicle)`, id bytes | empty |
//! | `done_ids` | `vid(vehicle)`, id bytes | `ord(finished_ms)` |
//! | `done_by_time` | `ord(finished_ms)`, `vid(vehicle)`, id bytes | empty |
//! | `known_vehicles` | vehicle bytes | `last_seen_ms` (i64), protocol bytes |
//! | `meta` | name | `next_seq` (u64) / `schema` (u64, 1) |
//!
//! A range scan of `commands` over `vid(vehicle)` yields that vehicle's commands in delivery
//! order (priority descending, then `seq` ascending: `seq` is a store-wide counter persisted in
//! `meta`, so FIFO within a priority does not depend on clocks). The record is JSON because the
//! command is arbitrary JSON anyway and stays readable with any redb tool; the leading format
//! byte lets a later version switch to a binary encoding without a migration.
//!
//! Counters for [`len`](CommandQueue::len)/[`len_vehicle`](CommandQueue::len_vehicle) are
//! recounted from `command_ids` at open and then maintained in memory after each commit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, Durability, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::{
    count_refused, expired, set_depth_gauge, validate, CommandQueue, Enqueued, KnownVehicle,
    Listed, QueueError, QueueLimits, QueuedCommand, Taken,
};

const COMMANDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("commands");
const IDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("command_ids");
const EXPIRY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("command_expiry");
const DONE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("done_ids");
const DONE_BY_TIME: TableDefinition<&[u8], &[u8]> = TableDefinition::new("done_by_time");
const VEHICLES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("known_vehicles");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const SCHEMA: u64 = 1;
const RECORD_FORMAT_JSON: u8 = 1;
/// Done ids forgotten per commit by [`CommandQueue::prune`].
const PRUNE_CHUNK: usize = 10_000;

/// The redb-backed command queue. Cloning is cheap (an `Arc`); clones share one database.
#[derive(Clone)]
pub struct RedbQueue {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    limits: QueueLimits,
    /// Held across every write transaction and the update of `counts` after its commit, so the
    /// caps are checked against exact counts. Holds the next sequence number.
    writer: Mutex<u64>,
    /// Commands queued, in total and per vehicle (readers lock this briefly, never across I/O).
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_vehicle: HashMap<String, usize>,
}

/// Count changes of one transaction, applied after its commit.
#[derive(Default)]
struct Delta {
    total: isize,
    per_vehicle: HashMap<String, isize>,
}

impl Delta {
    fn add(&mut self, vehicle: &str, d: isize) {
        self.total += d;
        match self.per_vehicle.get_mut(vehicle) {
            Some(n) => *n += d,
            None => {
                self.per_vehicle.insert(vehicle.to_owned(), d);
            }
        }
    }
}

/// The `commands` key and the record bytes of a removed command.
type Removed = (Vec<u8>, Vec<u8>);

struct Tables<'t> {
    commands: Table<'t, &'static [u8], &'static [u8]>,
    ids: Table<'t, &'static [u8], &'static [u8]>,
    expiry: Table<'t, &'static [u8], &'static [u8]>,
    done: Table<'t, &'static [u8], &'static [u8]>,
    done_by_time: Table<'t, &'static [u8], &'static [u8]>,
}

impl std::fmt::Debug for RedbQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbQueue")
            .field("path", &self.inner.path)
            .field("len", &self.len())
            .field("limits", &self.inner.limits)
            .finish()
    }
}

// ---- errors -------------------------------------------------------------------------------

#[derive(Debug)]
struct EngineError(String);
impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for EngineError {}

/// Maps any redb error to [`QueueError`], with what was being done.
/// The value stored under `key` in one of the queue's tables, copied out.
fn value_of(
    table: &Table<'_, &'static [u8], &'static [u8]>,
    key: &[u8],
    context: &'static str,
) -> Result<Option<Vec<u8>>, QueueError> {
    Ok(table
        .get(key)
        .map_err(storage(context))?
        .map(|g| g.value().to_vec()))
}

fn storage<E: Into<redb::Error>>(context: impl Into<String>) -> impl FnOnce(E) -> QueueError {
    move |e| match e.into() {
        redb::Error::Io(source) => QueueError::Io {
            context: context.into(),
            source,
        },
        other => QueueError::Storage {
            context: context.into(),
            source: Box::new(EngineError(other.to_string())),
        },
    }
}

fn corrupt(table: &'static str, key: &[u8], reason: impl Into<String>) -> QueueError {
    QueueError::Corrupt {
        table,
        key: key.escape_ascii().to_string(),
        reason: reason.into(),
    }
}

// ---- encoding -----------------------------------------------------------------------------

fn ord(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn unord(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

fn put_vid(out: &mut Vec<u8>, vehicle: &str) {
    // validate() / check_id() keep ids within u16::MAX bytes before anything is encoded.
    out.extend_from_slice(&(vehicle.len() as u16).to_be_bytes());
    out.extend_from_slice(vehicle.as_bytes());
}

fn vid(vehicle: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + vehicle.len() + 9);
    put_vid(&mut k, vehicle);
    k
}

fn cmd_key(vehicle: &str, rank: u8, seq: u64) -> Vec<u8> {
    let mut k = vid(vehicle);
    k.push(rank);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn id_key(vehicle: &str, id: &str) -> Vec<u8> {
    let mut k = vid(vehicle);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `ord(t)`, `vid(vehicle)`, id: the key of `command_expiry` and `done_by_time`.
fn time_key(t: i64, vehicle: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + 2 + vehicle.len() + id.len());
    k.extend_from_slice(&ord(t));
    put_vid(&mut k, vehicle);
    k.extend_from_slice(id.as_bytes());
    k
}

fn utf8<'a>(
    table: &'static str,
    key: &[u8],
    b: &'a [u8],
    what: &str,
) -> Result<&'a str, QueueError> {
    std::str::from_utf8(b).map_err(|_| corrupt(table, key, format!("{what} is not UTF-8")))
}

/// Splits `vid(vehicle)` + rest at `at` in `key`.
fn split_vid<'a>(
    table: &'static str,
    key: &'a [u8],
    at: usize,
) -> Result<(&'a str, &'a [u8]), QueueError> {
    let short = || corrupt(table, key, "too short for the vehicle id length");
    let (len_bytes, rest) = key
        .get(at..)
        .ok_or_else(short)?
        .split_first_chunk::<2>()
        .ok_or_else(short)?;
    let len = usize::from(u16::from_be_bytes(*len_bytes));
    let (v, rest) = rest
        .split_at_checked(len)
        .ok_or_else(|| corrupt(table, key, "vehicle id runs past the end of the key"))?;
    Ok((utf8(table, key, v, "vehicle id")?, rest))
}

/// (vehicle, id) from a key `vid(vehicle)`, id.
fn parse_id_key<'a>(table: &'static str, key: &'a [u8]) -> Result<(&'a str, &'a str), QueueError> {
    let (v, rest) = split_vid(table, key, 0)?;
    Ok((v, utf8(table, key, rest, "command id")?))
}

/// (t, vehicle, id) from a key `ord(t)`, `vid(vehicle)`, id.
fn parse_time_key<'a>(
    table: &'static str,
    key: &'a [u8],
) -> Result<(i64, &'a str, &'a str), QueueError> {
    let t: [u8; 8] = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(table, key, "too short for the timestamp"))?;
    let (v, rest) = split_vid(table, key, 8)?;
    Ok((unord(t), v, utf8(table, key, rest, "command id")?))
}

fn id_value(rank: u8, seq: u64, expires: i64) -> [u8; 17] {
    let mut b = [0u8; 17];
    b[0] = rank;
    b[1..9].copy_from_slice(&seq.to_be_bytes());
    b[9..].copy_from_slice(&ord(expires));
    b
}

/// (9 - priority, seq, expires_at_ms) from a `command_ids` value.
fn parse_id_value(key: &[u8], v: &[u8]) -> Result<(u8, u64, i64), QueueError> {
    let b: [u8; 17] = v.try_into().map_err(|_| {
        corrupt(
            "command_ids",
            key,
            format!("value of {} bytes, not 17", v.len()),
        )
    })?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&b[1..9]);
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&b[9..]);
    Ok((b[0], u64::from_be_bytes(seq), unord(exp)))
}

fn parse_u64(table: &'static str, key: &[u8], v: &[u8]) -> Result<u64, QueueError> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| corrupt(table, key, format!("value of {} bytes, not 8", v.len())))?;
    Ok(u64::from_be_bytes(b))
}

fn encode_record(cmd: &QueuedCommand) -> Result<Vec<u8>, QueueError> {
    let mut out = vec![RECORD_FORMAT_JSON];
    serde_json::to_writer(&mut out, cmd).map_err(|source| QueueError::Encode {
        vehicle: cmd.vehicle.clone(),
        id: cmd.id.clone(),
        source,
    })?;
    Ok(out)
}

fn decode_record(key: &[u8], v: &[u8]) -> Result<QueuedCommand, QueueError> {
    match v.split_first() {
        Some((&RECORD_FORMAT_JSON, json)) => serde_json::from_slice(json)
            .map_err(|e| corrupt("commands", key, format!("record does not decode: {e}"))),
        Some((f, _)) => Err(corrupt(
            "commands",
            key,
            format!("unknown record format {f}"),
        )),
        None => Err(corrupt("commands", key, "empty record")),
    }
}

// ---- the store ----------------------------------------------------------------------------

impl RedbQueue {
    /// Page cache of the database file used by [`open`](Self::open) (redb's default is 1 GiB;
    /// a gateway has better uses for its memory).
    pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

    /// Opens (creating it and its parent directories if needed) the queue file at `path`,
    /// with a [`DEFAULT_CACHE_BYTES`](Self::DEFAULT_CACHE_BYTES) page cache, and recounts the queued commands.
    pub fn open(path: &Path, limits: QueueLimits) -> Result<Self, QueueError> {
        Self::open_with_cache(path, limits, Self::DEFAULT_CACHE_BYTES)
    }

    /// [`open`](Self::open) with a page cache of `cache_bytes`.
    pub fn open_with_cache(
        path: &Path,
        limits: QueueLimits,
        cache_bytes: usize,
    ) -> Result<Self, QueueError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| QueueError::Io {
                context: format!("creating the command queue directory {}", dir.display()),
                source,
            })?;
        }
        let ctx = || format!("opening {}", path.display());
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create_with_file_format_v3(true)
            .create(path)
            .map_err(storage(ctx()))?;

        // Create every table, check the schema, read the sequence counter.
        let txn = db.begin_write().map_err(storage(ctx()))?;
        let next_seq = {
            for t in [COMMANDS, IDS, EXPIRY, DONE, DONE_BY_TIME, VEHICLES] {
                txn.open_table(t).map_err(storage(ctx()))?;
            }
            let mut meta = txn.open_table(META).map_err(storage(ctx()))?;
            let schema = match meta.get("schema").map_err(storage(ctx()))? {
                Some(v) => Some(parse_u64("meta", b"schema", v.value())?),
                None => None,
            };
            match schema {
                Some(SCHEMA) => {}
                Some(other) => {
                    return Err(corrupt(
                        "meta",
                        b"schema",
                        format!("schema version {other}, this build reads {SCHEMA}"),
                    ))
                }
                None => {
                    meta.insert("schema", SCHEMA.to_be_bytes().as_slice())
                        .map_err(storage(ctx()))?;
                }
            }
            let next_seq = match meta.get("next_seq").map_err(storage(ctx()))? {
                Some(v) => parse_u64("meta", b"next_seq", v.value())?,
                None => 0,
            };
            next_seq
        };
        txn.commit().map_err(storage(ctx()))?;

        // Recount.
        let mut counts = Counts::default();
        {
            let r = db.begin_read().map_err(storage(ctx()))?;
            let ids = r.open_table(IDS).map_err(storage(ctx()))?;
            for entry in ids.iter().map_err(storage(ctx()))? {
                let (k, _) = entry.map_err(storage(ctx()))?;
                let (v, _) = parse_id_key("command_ids", k.value())?;
                counts.total += 1;
                *counts.per_vehicle.entry(v.to_owned()).or_insert(0) += 1;
            }
        }
        set_depth_gauge(counts.total);
        Ok(RedbQueue {
            inner: Arc::new(Inner {
                db,
                path: path.to_owned(),
                limits,
                writer: Mutex::new(next_seq),
                counts: Mutex::new(counts),
            }),
        })
    }

    /// The file this queue lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The limits this queue enforces.
    pub fn limits(&self) -> QueueLimits {
        self.inner.limits
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Counts are only written after a commit, in one short critical section that cannot
        // panic halfway in a way worth more than refusing all further work: use them as is.
        self.inner.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one write transaction committed with `Durability::Immediate`, then applies
    /// the count changes it recorded. Nothing changes (store or counts) if `f` or the commit fails.
    fn write<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&WriteTransaction, &mut u64, &mut Delta) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut seq_guard = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = self.inner.db.begin_write().map_err(storage(what))?;
        txn.set_durability(Durability::Immediate);
        let mut seq = *seq_guard;
        let mut delta = Delta::default();
        let out = f(&txn, &mut seq, &mut delta)?;
        if seq != *seq_guard {
            let mut meta = txn.open_table(META).map_err(storage(what))?;
            meta.insert("next_seq", seq.to_be_bytes().as_slice())
                .map_err(storage(what))?;
        }
        txn.commit().map_err(storage(what))?;
        *seq_guard = seq;
        if !delta.per_vehicle.is_empty() {
            let mut c = self.counts();
            for (v, d) in delta.per_vehicle {
                if d == 0 {
                    continue;
                }
                c.total = c.total.saturating_add_signed(d);
                let n = c
                    .per_vehicle
                    .get(&v)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add_signed(d);
                if n == 0 {
                    c.per_vehicle.remove(&v);
                } else {
                    c.per_vehicle.insert(v, n);
                }
            }
            set_depth_gauge(c.total);
        }
        Ok(out)
    }

    fn open_tables<'t>(
        txn: &'t WriteTransaction,
        what: &'static str,
    ) -> Result<Tables<'t>, QueueError> {
        Ok(Tables {
            commands: txn.open_table(COMMANDS).map_err(storage(what))?,
            ids: txn.open_table(IDS).map_err(storage(what))?,
            expiry: txn.open_table(EXPIRY).map_err(storage(what))?,
            done: txn.open_table(DONE).map_err(storage(what))?,
            done_by_time: txn.open_table(DONE_BY_TIME).map_err(storage(what))?,
        })
    }

    /// Stores `cmd` unless duplicate or over a cap (caps checked against counts + `delta`).
    fn enqueue_in(
        &self,
        t: &mut Tables<'_>,
        seq: &mut u64,
        delta: &mut Delta,
        cmd: &QueuedCommand,
    ) -> Result<Enqueued, QueueError> {
        const W: &str = "enqueue";
        let ik = id_key(&cmd.vehicle, &cmd.id);
        if t.ids.get(ik.as_slice()).map_err(storage(W))?.is_some()
            || t.done.get(ik.as_slice()).map_err(storage(W))?.is_some()
        {
            return Ok(Enqueued::Duplicate);
        }
        let (vehicle_n, total) = {
            let c = self.counts();
            let v = c.per_vehicle.get(&cmd.vehicle).copied().unwrap_or(0);
            let dv = delta.per_vehicle.get(&cmd.vehicle).copied().unwrap_or(0);
            (
                v.saturating_add_signed(dv),
                c.total.saturating_add_signed(delta.total),
            )
        };
        if vehicle_n >= self.inner.limits.per_vehicle {
            return Ok(Enqueued::VehicleFull);
        }
        if total >= self.inner.limits.global {
            return Ok(Enqueued::GlobalFull);
        }
        let rank = 9 - cmd.priority;
        let s = *seq;
        let record = encode_record(cmd)?;
        let ck = cmd_key(&cmd.vehicle, rank, s);
        t.commands
            .insert(ck.as_slice(), record.as_slice())
            .map_err(storage(W))?;
        t.ids
            .insert(
                ik.as_slice(),
                id_value(rank, s, cmd.expires_at_ms).as_slice(),
            )
            .map_err(storage(W))?;
        let ek = time_key(cmd.expires_at_ms, &cmd.vehicle, &cmd.id);
        t.expiry
            .insert(ek.as_slice(), [].as_slice())
            .map_err(storage(W))?;
        *seq = s + 1;
        delta.add(&cmd.vehicle, 1);
        Ok(Enqueued::Stored)
    }

    /// One more delivery attempt of a queued command, inside a write (no-op if not queued).
    fn attempt_in(t: &mut Tables<'_>, vehicle: &str, id: &str) -> Result<(), QueueError> {
        const W: &str = "recording a delivery attempt";
        let ik = id_key(vehicle, id);
        let Some(idv) = value_of(&t.ids, &ik, W)? else {
            return Ok(());
        };
        let (rank, seq, _) = parse_id_value(&ik, &idv)?;
        let ck = cmd_key(vehicle, rank, seq);
        let Some(rec) = value_of(&t.commands, &ck, W)? else {
            return Err(corrupt("command_ids", &ik, "points to a missing record"));
        };
        let mut cmd = decode_record(&ck, &rec)?;
        cmd.attempts = cmd.attempts.saturating_add(1);
        let rec = encode_record(&cmd)?;
        t.commands
            .insert(ck.as_slice(), rec.as_slice())
            .map_err(storage(W))?;
        Ok(())
    }

    /// Removes (vehicle, id) from the queue if queued, returning its record bytes and key, and
    /// remembers the id as done at `now_ms` (unless not queued and already remembered).
    fn remove_in(
        t: &mut Tables<'_>,
        delta: &mut Delta,
        vehicle: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<Removed>, QueueError> {
        const W: &str = "removing a command";
        let ik = id_key(vehicle, id);
        let idv = t
            .ids
            .remove(ik.as_slice())
            .map_err(storage(W))?
            .map(|g| g.value().to_vec());
        let removed = match idv {
            Some(v) => {
                let (rank, seq, expires) = parse_id_value(&ik, &v)?;
                let ek = time_key(expires, vehicle, id);
                t.expiry.remove(ek.as_slice()).map_err(storage(W))?;
                let ck = cmd_key(vehicle, rank, seq);
                let rec = t
                    .commands
                    .remove(ck.as_slice())
                    .map_err(storage(W))?
                    .map(|g| g.value().to_vec());
                delta.add(vehicle, -1);
                match rec {
                    Some(rec) => Some((ck, rec)),
                    None => {
                        tracing::warn!(
                            vehicle,
                            id,
                            "command queue: index entry without a record, dropped"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        let old = value_of(&t.done, &ik, W)?;
        if removed.is_some() || old.is_none() {
            if let Some(old) = old {
                let b: [u8; 8] = old.as_slice().try_into().map_err(|_| {
                    corrupt(
                        "done_ids",
                        &ik,
                        format!("value of {} bytes, not 8", old.len()),
                    )
                })?;
                let ok = time_key(unord(b), vehicle, id);
                t.done_by_time.remove(ok.as_slice()).map_err(storage(W))?;
            }
            t.done
                .insert(ik.as_slice(), ord(now_ms).as_slice())
                .map_err(storage(W))?;
            let dk = time_key(now_ms, vehicle, id);
            t.done_by_time
                .insert(dk.as_slice(), [].as_slice())
                .map_err(storage(W))?;
        }
        Ok(removed)
    }
}

impl CommandQueue for RedbQueue {
    fn enqueue(&self, cmd: QueuedCommand) -> Result<Enqueued, QueueError> {
        validate(&cmd.vehicle, &cmd.id, cmd.priority)?;
        let r = self.write("enqueue", |txn, seq, delta| {
            let mut t = Self::open_tables(txn, "enqueue")?;
            self.enqueue_in(&mut t, seq, delta, &cmd)
        })?;
        count_refused(r);
        Ok(r)
    }

    fn enqueue_many(&self, cmds: Vec<QueuedCommand>) -> Result<Vec<Enqueued>, QueueError> {
        for c in &cmds {
            validate(&c.vehicle, &c.id, c.priority)?;
        }
        let out = self.write("enqueue", |txn, seq, delta| {
            let mut t = Self::open_tables(txn, "enqueue")?;
            cmds.iter()
                .map(|c| self.enqueue_in(&mut t, seq, delta, c))
                .collect::<Result<Vec<_>, _>>()
        })?;
        out.iter().for_each(|r| count_refused(*r));
        Ok(out)
    }

    fn pending(&self, vehicle: &str, now_ms: i64, limit: usize) -> Listed {
        const W: &str = "reading pending commands";
        let mut out = Vec::new();
        if limit == 0 || vehicle.len() > u16::MAX as usize {
            return Ok(out);
        }
        let r = self.inner.db.begin_read().map_err(storage(W))?;
        let commands = r.open_table(COMMANDS).map_err(storage(W))?;
        let prefix = vid(vehicle);
        for entry in commands
            .range::<&[u8]>(prefix.as_slice()..)
            .map_err(storage(W))?
        {
            let (k, v) = entry.map_err(storage(W))?;
            let key = k.value();
            if !key.starts_with(&prefix) {
                break;
            }
            let cmd = decode_record(key, v.value())?;
            if cmd.vehicle != vehicle {
                return Err(corrupt("commands", key, "record of another vehicle"));
            }
            if !expired(&cmd, now_ms) {
                out.push(cmd);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn mark_attempt(&self, vehicle: &str, id: &str) -> Result<(), QueueError> {
        const W: &str = "recording a delivery attempt";
        if super::check_id("vehicle id", vehicle).is_err()
            || super::check_id("command id", id).is_err()
        {
            return Ok(());
        }
        self.write(W, |txn, _, _| {
            let mut t = Self::open_tables(txn, W)?;
            Self::attempt_in(&mut t, vehicle, id)
        })
    }

    fn settle_many(&self, ops: &[super::Settle], now_ms: i64) -> Result<(), QueueError> {
        const W: &str = "recording deliveries";
        let valid = |v: &str, id: &str| {
            super::check_id("vehicle id", v).is_ok() && super::check_id("command id", id).is_ok()
        };
        if ops.is_empty() {
            return Ok(());
        }
        self.write(W, |txn, _, delta| {
            let mut t = Self::open_tables(txn, W)?;
            for op in ops {
                match op {
                    super::Settle::Attempt { vehicle, id } if valid(vehicle, id) => {
                        Self::attempt_in(&mut t, vehicle, id)?
                    }
                    super::Settle::Finish { vehicle, id } if valid(vehicle, id) => {
                        Self::remove_in(&mut t, delta, vehicle, id, now_ms)?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    fn finish(&self, vehicle: &str, id: &str, now_ms: i64) -> Result<bool, QueueError> {
        self.finish_many(vehicle, &[id.to_owned()], now_ms)
            .map(|n| n > 0)
    }

    fn finish_many(&self, vehicle: &str, ids: &[String], now_ms: i64) -> Result<usize, QueueError> {
        const W: &str = "finishing commands";
        super::check_id("vehicle id", vehicle)?;
        for id in ids {
            super::check_id("command id", id)?;
        }
        self.write(W, |txn, _, delta| {
            let mut t = Self::open_tables(txn, W)?;
            let mut n = 0;
            for id in ids {
                if Self::remove_in(&mut t, delta, vehicle, id, now_ms)?.is_some() {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    fn cancel(&self, vehicle: &str, id: &str, now_ms: i64) -> Taken {
        const W: &str = "cancelling a command";
        super::check_id("vehicle id", vehicle)?;
        super::check_id("command id", id)?;
        self.write(W, |txn, _, delta| {
            let mut t = Self::open_tables(txn, W)?;
            let ik = id_key(vehicle, id);
            if t.ids.get(ik.as_slice()).map_err(storage(W))?.is_none() {
                return Ok(None);
            }
            match Self::remove_in(&mut t, delta, vehicle, id, now_ms)? {
                Some((ck, rec)) => decode_record(&ck, &rec).map(Some),
                None => Ok(None),
            }
        })
    }

    fn take_expired(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedCommand>, QueueError> {
        const W: &str = "taking expired commands";
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write(W, |txn, _, delta| {
            let mut t = Self::open_tables(txn, W)?;
            let due: Vec<Vec<u8>> = {
                let range = match now_ms.checked_add(1) {
                    Some(end) => t.expiry.range::<&[u8]>(..ord(end).as_slice()),
                    None => t.expiry.range::<&[u8]>(..),
                }
                .map_err(storage(W))?;
                let mut due = Vec::new();
                for entry in range.take(limit) {
                    let (k, _) = entry.map_err(storage(W))?;
                    due.push(k.value().to_vec());
                }
                due
            };
            let mut out = Vec::with_capacity(due.len());
            for ek in due {
                let (_, vehicle, id) = parse_time_key("command_expiry", &ek)?;
                match Self::remove_in(&mut t, delta, vehicle, id, now_ms)? {
                    Some((ck, rec)) => out.push(decode_record(&ck, &rec)?),
                    None => {
                        // An expiry entry whose command is gone: drop the dangling entry.
                        tracing::warn!(
                            vehicle,
                            id,
                            "command queue: dangling expiry entry, dropped"
                        );
                        t.expiry.remove(ek.as_slice()).map_err(storage(W))?;
                    }
                }
            }
            Ok(out)
        })
    }

    fn prune(&self, now_ms: i64) -> Result<usize, QueueError> {
        const W: &str = "pruning remembered ids";
        let cutoff = now_ms.saturating_sub(self.inner.limits.remember_ids_ms);
        let mut total = 0;
        loop {
            let n = self.write(W, |txn, _, _| {
                let mut t = Self::open_tables(txn, W)?;
                let old: Vec<Vec<u8>> = {
                    let mut old = Vec::new();
                    for entry in t
                        .done_by_time
                        .range::<&[u8]>(..ord(cutoff).as_slice())
                        .map_err(storage(W))?
                        .take(PRUNE_CHUNK)
                    {
                        let (k, _) = entry.map_err(storage(W))?;
                        old.push(k.value().to_vec());
                    }
                    old
                };
                for k in &old {
                    let (_, vehicle, id) = parse_time_key("done_by_time", k)?;
                    let ik = id_key(vehicle, id);
                    t.done.remove(ik.as_slice()).map_err(storage(W))?;
                    t.done_by_time.remove(k.as_slice()).map_err(storage(W))?;
                }
                Ok(old.len())
            })?;
            total += n;
            if n < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn len(&self) -> usize {
        self.counts().total
    }

    fn len_vehicle(&self, vehicle: &str) -> usize {
        self.counts().per_vehicle.get(vehicle).copied().unwrap_or(0)
    }

    fn remember_vehicles(&self, seen: &[(String, String)], now_ms: i64) -> Result<(), QueueError> {
        const W: &str = "remembering vehicles";
        for (vehicle, _) in seen {
            super::check_id("vehicle id", vehicle)?;
        }
        self.write(W, |txn, _, _| {
            let mut t = txn.open_table(VEHICLES).map_err(storage(W))?;
            for (vehicle, protocol) in seen {
                let mut v = Vec::with_capacity(8 + protocol.len());
                v.extend_from_slice(&now_ms.to_be_bytes());
                v.extend_from_slice(protocol.as_bytes());
                t.insert(vehicle.as_bytes(), v.as_slice())
                    .map_err(storage(W))?;
            }
            Ok(())
        })
    }

    fn known_vehicle(&self, vehicle: &str) -> Result<Option<KnownVehicle>, QueueError> {
        const W: &str = "looking up a known vehicle";
        const T: &str = "known_vehicles";
        let r = self.inner.db.begin_read().map_err(storage(W))?;
        let t = r.open_table(VEHICLES).map_err(storage(W))?;
        let Some(v) = t.get(vehicle.as_bytes()).map_err(storage(W))? else {
            return Ok(None);
        };
        let val = v.value();
        let key = vehicle.as_bytes();
        let (ts, proto) = val
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt(T, key, "value too short for last-seen time"))?;
        Ok(Some(KnownVehicle {
            vehicle: vehicle.to_owned(),
            protocol: utf8(T, key, proto, "protocol")?.to_owned(),
            last_seen_ms: i64::from_be_bytes(*ts),
        }))
    }

    fn known_vehicles(&self) -> Result<Vec<KnownVehicle>, QueueError> {
        self.known_vehicles_from(std::ops::Bound::Unbounded, usize::MAX)
    }

    fn known_vehicles_from(
        &self,
        from: std::ops::Bound<&str>,
        limit: usize,
    ) -> Result<Vec<KnownVehicle>, QueueError> {
        const W: &str = "listing known vehicles";
        const T: &str = "known_vehicles";
        let r = self.inner.db.begin_read().map_err(storage(W))?;
        let t = r.open_table(VEHICLES).map_err(storage(W))?;
        let from = from.map(str::as_bytes);
        let range = t
            .range::<&[u8]>((from, std::ops::Bound::Unbounded))
            .map_err(storage(W))?;
        let mut out = Vec::with_capacity(limit.min(4096));
        for entry in range.take(limit) {
            let (k, v) = entry.map_err(storage(W))?;
            let (key, val) = (k.value(), v.value());
            let vehicle = utf8(T, key, key, "vehicle id")?;
            let (ts, proto) = val
                .split_first_chunk::<8>()
                .ok_or_else(|| corrupt(T, key, "value too short for last-seen time"))?;
            out.push(KnownVehicle {
                vehicle: vehicle.to_owned(),
                protocol: utf8(T, key, proto, "protocol")?.to_owned(),
                last_seen_ms: i64::from_be_bytes(*ts),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ord_keeps_numeric_order_in_bytes() {
        let ts = [i64::MIN, -86_400_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in ts.windows(2) {
            assert!(ord(w[0]) < ord(w[1]), "{} vs {}", w[0], w[1]);
        }
        for t in ts {
            assert_eq!(unord(ord(t)), t);
        }
    }

    #[test]
    fn command_keys_sort_by_vehicle_then_priority_desc_then_seq() {
        let a = cmd_key("V1", 9 - 9, 7);
        let b = cmd_key("V1", 9 - 9, 8);
        let c = cmd_key("V1", 9 - 3, 1);
        assert!(a < b && b < c);
        // a vehicle id that is a prefix of another one is a different range
        let p = vid("V1");
        assert!(!cmd_key("V10", 0, 0).starts_with(&p));
    }

    #[test]
    fn keys_round_trip_and_damaged_keys_are_typed_errors() {
        let k = time_key(-5, "VEH", "cmd-1");
        assert_eq!(
            parse_time_key("command_expiry", &k).unwrap(),
            (-5, "VEH", "cmd-1")
        );
        let k = id_key("VEH", "cmd-1");
        assert_eq!(parse_id_key("command_ids", &k).unwrap(), ("VEH", "cmd-1"));
        for bad in [&b"\x00"[..], b"\x00\x09VEH", b"\x00\x02\xff\xfe"] {
            match parse_id_key("command_ids", bad) {
                Err(QueueError::Corrupt {
                    table: "command_ids",
                    key,
                    ..
                }) => {
                    assert_eq!(key, bad.escape_ascii().to_string())
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            parse_time_key("done_by_time", b"\x80\x00"),
            Err(QueueError::Corrupt { .. })
        ));
        assert!(matches!(
            parse_id_value(b"k", &[0; 16]),
            Err(QueueError::Corrupt { .. })
        ));
        assert_eq!(
            parse_id_value(b"k", &id_value(4, 99, -3)).unwrap(),
            (4, 99, -3)
        );
    }

    #[test]
    fn records_round_trip_and_unknown_formats_are_refused() {
        let c = QueuedCommand {
            vehicle: "V".into(),
            id: "1".into(),
            priority: 3,
            enqueued_at_ms: 1,
            expires_at_ms: 2,
            command: serde_json::json!({"id": "1", "type": "x"}).into(),
            response_topic: None,
            correlation_data: Some(vec![0, 255]),
            attempts: 4,
        };
        let rec = encode_record(&c).unwrap();
        assert_eq!(rec[0], RECORD_FORMAT_JSON);
        assert_eq!(decode_record(b"k", &rec).unwrap(), c);
        for bad in [&b""[..], b"\x02{}", b"\x01{}", b"\x01null"] {
            assert!(matches!(
                decode_record(b"k", bad),
                Err(QueueError::Corrupt {
                    table: "commands",
                    ..
                })
            ));
        }
    }

    /// A record as the versions before `CommandJson` wrote it (the command a
    /// `serde_json::Value`, its keys in sorted order), byte for byte.
    const OLD_RECORD: &[u8] = b"\x01{\"vehicle\":\"V1\",\"id\":\"c1\",\"priority\":7,\
\"enqueued_at_ms\":1000,\"expires_at_ms\":4102444800000,\"command\":{\"id\":\"c1\",\
\"params\":{\"text\":\"h\xc3\xa9 \\\"there\\\"\"},\"priority\":7,\"ttl_s\":3600,\"type\":\"text\"},\
\"response_topic\":\"platform/v1/V1/cmd/reply\",\"correlation_data\":[0,255],\"attempts\":1}";

    #[test]
    fn a_command_queued_by_an_earlier_version_is_read_sent_and_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commands.redb");
        let expires = 4_102_444_800_000;
        // The rows `enqueue_in` writes, with the old record, in a file this version opens.
        {
            let q = RedbQueue::open(&path, QueueLimits::default()).unwrap();
            q.write("test", |txn, seq, _| {
                let mut t = RedbQueue::open_tables(txn, "test")?;
                let ck = cmd_key("V1", 9 - 7, *seq);
                t.commands.insert(ck.as_slice(), OLD_RECORD).unwrap();
                let iv = id_value(9 - 7, *seq, expires);
                t.ids
                    .insert(id_key("V1", "c1").as_slice(), iv.as_slice())
                    .unwrap();
                let ek = time_key(expires, "V1", "c1");
                t.expiry.insert(ek.as_slice(), [].as_slice()).unwrap();
                *seq += 1;
                Ok(())
            })
            .unwrap();
        }
        // An upgraded gateway opens the file: the command is counted, read and encodable.
        let q = RedbQueue::open(&path, QueueLimits::default()).unwrap();
        assert_eq!((q.len(), q.len_vehicle("V1")), (1, 1));
        let p = q.pending("V1", 0, 10).unwrap();
        assert_eq!(p.len(), 1);
        let c = &p[0];
        assert_eq!(
            (
                c.id.as_str(),
                c.priority,
                c.enqueued_at_ms,
                c.expires_at_ms,
                c.attempts
            ),
            ("c1", 7, 1000, expires, 1)
        );
        assert_eq!(
            c.response_topic.as_deref(),
            Some("platform/v1/V1/cmd/reply")
        );
        assert_eq!(c.correlation_data, Some(vec![0, 255]));
        assert_eq!(c.command.kind().as_deref(), Some("text"));
        let cmd = crate::commands::command_of(c).unwrap();
        assert_eq!((cmd.id.as_str(), cmd.kind.as_str()), ("c1", "text"));
        assert_eq!(cmd.params, serde_json::json!({"text": "hé \"there\""}));
        assert_eq!((cmd.ttl_s, cmd.priority), (Some(3600), Some(7)));
        // The same text as stored (nothing rewritten on the way).
        assert_eq!(
            decode_record(b"k", OLD_RECORD).unwrap().command.get(),
            c.command.get()
        );
        // A send recorded on it rewrites the record; it still reads the same.
        q.mark_attempt("V1", "c1").unwrap();
        let again = q.pending("V1", 0, 10).unwrap();
        assert_eq!(again[0].attempts, 2);
        assert_eq!(again[0].command, c.command);
        assert_eq!(crate::commands::command_of(&again[0]).unwrap(), cmd);
        // And its final status takes it out, its id remembered.
        assert!(q.finish("V1", "c1", 5).unwrap());
        assert_eq!(q.len(), 0);
        assert_eq!(
            q.enqueue(QueuedCommand::for_test("V1", "c1", "text"))
                .unwrap(),
            Enqueued::Duplicate
        );
    }

    #[test]
    fn a_record_written_now_has_the_old_shape() {
        // What an earlier version reads: the command an object inside the record.
        let c = QueuedCommand::for_test("V", "1", "text");
        let rec = encode_record(&c).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&rec[1..]).unwrap();
        assert_eq!(v["command"], serde_json::json!({"id": "1", "type": "text"}));
        assert_eq!(v["vehicle"], "V");
    }
}
