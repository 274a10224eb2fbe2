//! The disk spool: publishes the broker cannot take now, kept in order until it has them.
//!
//! One redb database, `{dir}/spool.redb`, one table `u64 id -> record`. Ids grow by one per
//! record, so the key order is the publish order and a range read after a cursor is the
//! replay. A record is deleted only once the broker has acknowledged it (PUBACK), so a
//! crash at any point loses nothing that was appended: at start-up everything still in the
//! table is replayed (what was in flight may reach the broker twice, with the same
//! `event_id`).
//!
//! Why redb and not a hand-written segment log: redb is already a workspace dependency (the
//! gateway's command queue), its commits are atomic and checksummed (a torn write at a crash
//! rolls back to the last commit on open, which is the "torn tail truncated" property a
//! segment log has to implement itself), and deletion by key after an out-of-order PUBACK
//! needs no per-segment cursor files. Appends are *group-committed*: the caller appends a
//! batch in one write transaction with `Durability::Immediate` (one fsync for the batch).
//!
//! Size: `max_bytes` bounds the sum of the records (encoded size + 16 bytes of key and
//! overhead each). The file itself is larger by redb's page overhead and does not shrink
//! when the spool drains: freed pages are reused by later records.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, TableDefinition};
use tokio::sync::Notify;

use crate::config::{Qos, WhenFull};
use crate::BridgeError;

/// Page cache of the spool database.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");

/// Bytes counted per record besides its encoding (key, redb's per-entry overhead).
const RECORD_OVERHEAD: u64 = 16;

/// Format version of an encoded record (first byte).
const VERSION: u8 = 1;

/// The publish kinds a record can carry (metric labels are `&'static str`).
const KINDS: [&str; 10] = [
    "location",
    "telemetry",
    "alarm",
    "lifecycle",
    "status",
    "passthrough",
    "cmd_result",
    "media",
    "raw",
    "response",
];

/// One spooled publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub topic: String,
    pub payload: Bytes,
    pub qos: Qos,
    pub retain: bool,
    pub kind: &'static str,
    pub correlation: Option<Bytes>,
}

impl Record {
    /// `[version][qos][retain][kind len][kind][topic len u16][topic][corr len u32 + 1, 0 = none][corr][payload]`
    fn encode(&self) -> Vec<u8> {
        let corr = self.correlation.as_deref();
        let mut b = Vec::with_capacity(
            16 + self.kind.len()
                + self.topic.len()
                + corr.map_or(0, <[u8]>::len)
                + self.payload.len(),
        );
        b.push(VERSION);
        b.push(u8::from(self.qos));
        b.push(u8::from(self.retain));
        b.push(self.kind.len() as u8);
        b.extend_from_slice(self.kind.as_bytes());
        b.extend_from_slice(&(self.topic.len() as u16).to_be_bytes());
        b.extend_from_slice(self.topic.as_bytes());
        match corr {
            None => b.extend_from_slice(&0u32.to_be_bytes()),
            Some(c) => {
                b.extend_from_slice(&(c.len() as u32 + 1).to_be_bytes());
                b.extend_from_slice(c);
            }
        }
        b.extend_from_slice(&self.payload);
        b
    }

    fn decode(b: &[u8]) -> Option<Record> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if b.len() < n {
                return None;
            }
            let (h, t) = b.split_at(n);
            *b = t;
            Some(h)
        }
        let mut b = b;
        let [version, qos, retain, kind_len]: [u8; 4] = take(&mut b, 4)?.try_into().ok()?;
        if version != VERSION {
            return None;
        }
        let qos = Qos::try_from(qos).ok()?;
        let retain = retain != 0;
        let kind = std::str::from_utf8(take(&mut b, usize::from(kind_len))?).ok()?;
        let kind = KINDS.iter().find(|k| **k == kind).copied().unwrap_or("raw");
        let tlen = u16::from_be_bytes(take(&mut b, 2)?.try_into().ok()?);
        let topic = std::str::from_utf8(take(&mut b, usize::from(tlen))?)
            .ok()?
            .to_owned();
        let clen = u32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?);
        let correlation = match clen {
            0 => None,
            n => Some(Bytes::copy_from_slice(take(&mut b, n as usize - 1)?)),
        };
        Some(Record {
            topic,
            payload: Bytes::copy_from_slice(b),
            qos,
            retain,
            kind,
            correlation,
        })
    }

    /// What the record counts against `max_bytes`.
    pub fn cost(&self) -> u64 {
        (10 + self.kind.len()
            + self.topic.len()
            + self.correlation.as_ref().map_or(0, Bytes::len)
            + self.payload.len()) as u64
            + RECORD_OVERHEAD
    }
}

/// What [`Spool::append`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Records appended (a prefix of the batch).
    pub count: usize,
    /// Oldest records deleted to make room (`drop_oldest`).
    pub dropped: u64,
}

/// The spool database and its counters.
#[derive(Debug)]
pub(crate) struct Spool {
    db: Database,
    path: PathBuf,
    max_bytes: u64,
    when_full: WhenFull,
    /// Sum of the costs of the records in the table.
    bytes: AtomicU64,
    /// Records in the table.
    len: AtomicU64,
    /// The id of the last record appended (0: none yet).
    last_id: AtomicU64,
    /// The highest id deleted by `drop_oldest` (0: none).
    dropped_upto: AtomicU64,
    /// Serializes write transactions (redb allows one at a time; this keeps the counters
    /// consistent with the table).
    write: Mutex<()>,
    /// Signalled after records are deleted (space for a waiting appender).
    pub space: Notify,
    /// Signalled after records are appended (work for the replayer).
    pub appended: Notify,
}

fn err(path: &Path, e: impl Into<redb::Error>) -> BridgeError {
    BridgeError::File {
        key: "mqtt.spool.dir",
        path: path.display().to_string(),
        reason: e.into().to_string(),
    }
}

impl Spool {
    /// Stores the spool's byte count and moves `vgate_spool_bytes` (the sum over the open
    /// spools, one per lane) by the change.
    fn set_bytes(&self, bytes: u64) {
        let old = self.bytes.swap(bytes, Ordering::SeqCst);
        metrics::gauge!("vgate_spool_bytes").increment(bytes as f64 - old as f64);
    }

    /// Opens (or creates) the spool in `dir`. A database left by a crash is recovered to its
    /// last commit by redb.
    pub fn open(dir: &Path, max_bytes: u64, when_full: WhenFull) -> Result<Spool, BridgeError> {
        let path = dir.join("spool.redb");
        std::fs::create_dir_all(dir).map_err(|e| BridgeError::File {
            key: "mqtt.spool.dir",
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        // redb's default page cache is 1 GiB: after a burst spilled through the spool the
        // gateway would keep those pages as resident memory. The spool is written in order and
        // read back once, so a small cache is enough.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| err(&path, e))?;
        let (mut bytes, mut len, mut last) = (0u64, 0u64, 0u64);
        {
            let tx = db.begin_write().map_err(|e| err(&path, e))?;
            {
                let t = tx.open_table(RECORDS).map_err(|e| err(&path, e))?;
                for row in t.iter().map_err(|e| err(&path, e))? {
                    let (k, v) = row.map_err(|e| err(&path, e))?;
                    bytes += v.value().len() as u64 + RECORD_OVERHEAD;
                    len += 1;
                    last = k.value();
                }
            }
            tx.commit().map_err(|e| err(&path, e))?;
        }
        // The gauge is the sum over the open spools (one per lane): each adds what it holds.
        metrics::gauge!("vgate_spool_bytes").increment(bytes as f64);
        if len > 0 {
            tracing::info!(path = %path.display(), records = len, bytes, "MQTT spool has publishes to replay");
        }
        Ok(Spool {
            db,
            path,
            max_bytes,
            when_full,
            bytes: AtomicU64::new(bytes),
            len: AtomicU64::new(len),
            last_id: AtomicU64::new(last),
            dropped_upto: AtomicU64::new(0),
            write: Mutex::new(()),
            space: Notify::new(),
            appended: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of the records in the spool (as counted against `max_bytes`).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Whether a publish can be appended now without waiting: below `max_bytes`, or a spool
    /// that drops its oldest records to make room.
    pub fn accepting(&self) -> bool {
        self.when_full == WhenFull::DropOldest || self.bytes() < self.max_bytes
    }

    /// Records in the spool.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::SeqCst)
    }

    /// The id of the last record appended, 0 if none ever was.
    pub fn last_id(&self) -> u64 {
        self.last_id.load(Ordering::SeqCst)
    }

    /// Appends the longest prefix of `batch` that fits (all of it with `drop_oldest`, which
    /// deletes the oldest records to make room), durably (one fsync), and returns how many.
    /// 0 only when the spool is full with `backpressure`: wait on [`Spool::space`] and retry.
    /// An empty spool takes one record whatever its size, so a record larger than
    /// `max_bytes` cannot block forever.
    pub fn append(&self, batch: &[Record]) -> Result<Appended, BridgeError> {
        if batch.is_empty() {
            return Ok(Appended::default());
        }
        let _w = self.lock();
        let mut bytes = self.bytes();
        let mut len = self.len();
        let mut last = self.last_id();
        let mut dropped_upto = self.dropped_upto();
        let mut out = Appended::default();
        let mut tx = self.db.begin_write().map_err(|e| err(&self.path, e))?;
        tx.set_durability(Durability::Immediate);
        {
            let mut t = tx.open_table(RECORDS).map_err(|e| err(&self.path, e))?;
            for r in batch {
                let cost = r.cost();
                if bytes + cost > self.max_bytes && len > 0 {
                    match self.when_full {
                        WhenFull::Backpressure => break,
                        WhenFull::DropOldest => {
                            while bytes + cost > self.max_bytes && len > 0 {
                                let Some((k, v)) = t.pop_first().map_err(|e| err(&self.path, e))?
                                else {
                                    break;
                                };
                                dropped_upto = dropped_upto.max(k.value());
                                bytes -= v.value().len() as u64 + RECORD_OVERHEAD;
                                len -= 1;
                                out.dropped += 1;
                            }
                        }
                    }
                }
                let enc = r.encode();
                last += 1;
                t.insert(last, enc.as_slice())
                    .map_err(|e| err(&self.path, e))?;
                bytes += enc.len() as u64 + RECORD_OVERHEAD;
                len += 1;
                out.count += 1;
            }
        }
        tx.commit().map_err(|e| err(&self.path, e))?;
        self.set_bytes(bytes);
        self.len.store(len, Ordering::SeqCst);
        self.last_id.store(last, Ordering::SeqCst);
        self.dropped_upto.store(dropped_upto, Ordering::SeqCst);
        if out.count > 0 {
            metrics::counter!("vgate_spool_events_total", "op" => "spooled")
                .increment(out.count as u64);
            self.appended.notify_one();
        }
        if out.dropped > 0 {
            metrics::counter!("vgate_spool_events_total", "op" => "dropped").increment(out.dropped);
            tracing::warn!(
                dropped = out.dropped,
                "MQTT spool full: oldest publishes dropped"
            );
        }
        Ok(out)
    }

    /// The highest id deleted by `drop_oldest`, 0 if none: a record read before with an id up
    /// to this one is no longer to be sent.
    pub fn dropped_upto(&self) -> u64 {
        self.dropped_upto.load(Ordering::SeqCst)
    }

    /// Up to `limit` records with ids after `after`, in order.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Record)>, BridgeError> {
        let tx = self.db.begin_read().map_err(|e| err(&self.path, e))?;
        let t = tx.open_table(RECORDS).map_err(|e| err(&self.path, e))?;
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for row in t
            .range(after.saturating_add(1)..)
            .map_err(|e| err(&self.path, e))?
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(|e| err(&self.path, e))?;
            match Record::decode(v.value()) {
                Some(r) => out.push((k.value(), r)),
                None => unreadable.push(k.value()),
            }
        }
        drop(t);
        drop(tx);
        if !unreadable.is_empty() {
            // Written by a newer vgate, or damaged: replaying garbage helps nobody, and
            // keeping it would hold its space forever.
            tracing::error!(ids = ?unreadable, "unreadable MQTT spool records deleted");
            metrics::counter!("vgate_spool_events_total", "op" => "dropped")
                .increment(unreadable.len() as u64);
            self.remove(&unreadable)?;
        }
        Ok(out)
    }

    /// Moves every record of `self` to the end of `to`, in order, in batches (each appended
    /// with one fsync, then removed from `self`), and returns how many moved. Stops early,
    /// leaving the rest here, when `to` is full with `backpressure`. A crash between the two
    /// steps of a batch leaves it in both: sent twice (same `event_id`), never lost.
    pub fn move_into(&self, to: &Spool) -> Result<u64, BridgeError> {
        const MOVE_BATCH: usize = 256;
        let mut moved = 0u64;
        loop {
            let batch = self.read_after(0, MOVE_BATCH)?;
            if batch.is_empty() {
                return Ok(moved);
            }
            let records: Vec<Record> = batch.iter().map(|(_, r)| r.clone()).collect();
            let appended = to.append(&records)?;
            let ids: Vec<u64> = batch
                .iter()
                .take(appended.count)
                .map(|(id, _)| *id)
                .collect();
            self.remove(&ids)?;
            moved += ids.len() as u64;
            if appended.count < records.len() {
                return Ok(moved);
            }
        }
    }

    /// Deletes the records `ids` (acknowledged by the broker); unknown ids are ignored.
    pub fn remove(&self, ids: &[u64]) -> Result<(), BridgeError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _w = self.lock();
        let mut bytes = self.bytes();
        let mut len = self.len();
        let mut tx = self.db.begin_write().map_err(|e| err(&self.path, e))?;
        tx.set_durability(Durability::Immediate);
        {
            let mut t = tx.open_table(RECORDS).map_err(|e| err(&self.path, e))?;
            for id in ids {
                if let Some(v) = t.remove(id).map_err(|e| err(&self.path, e))? {
                    bytes -= v.value().len() as u64 + RECORD_OVERHEAD;
                    len -= 1;
                }
            }
        }
        tx.commit().map_err(|e| err(&self.path, e))?;
        self.set_bytes(bytes);
        self.len.store(len, Ordering::SeqCst);
        self.space.notify_waiters();
        Ok(())
    }

    /// Records in the table, by a full count (tests).
    #[cfg(test)]
    fn count_on_disk(&self) -> u64 {
        use redb::ReadableTableMetadata;
        let tx = self.db.begin_read().expect("read");
        let t = tx.open_table(RECORDS).expect("table");
        t.len().expect("len")
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // A closed spool no longer counts in the sum.
        metrics::gauge!("vgate_spool_bytes").decrement(self.bytes.load(Ordering::SeqCst) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: usize) -> Record {
        Record {
            topic: format!("vgate/v1/V{}/location", i % 3),
            payload: Bytes::from(format!("{{\"n\":{i}}}")),
            qos: Qos::AtLeastOnce,
            retain: i.is_multiple_of(2),
            kind: "location",
            correlation: i.is_multiple_of(5).then(|| Bytes::from_static(b"corr")),
        }
    }

    fn ids_and_payloads(s: &Spool) -> Vec<(u64, Bytes)> {
        s.read_after(0, usize::MAX)
            .expect("read")
            .into_iter()
            .map(|(id, r)| (id, r.payload))
            .collect()
    }

    #[test]
    fn move_into_appends_in_order_and_stops_when_the_target_is_full() {
        let d = tempfile::tempdir().expect("dir");
        let from = Spool::open(&d.path().join("a"), u64::MAX, WhenFull::Backpressure).expect("a");
        let to = Spool::open(&d.path().join("b"), u64::MAX, WhenFull::Backpressure).expect("b");
        let records: Vec<Record> = (0..600).map(rec).collect();
        from.append(&records[..300]).expect("append");
        to.append(&records[300..310]).expect("append");
        assert_eq!(from.move_into(&to).expect("move"), 300);
        assert_eq!(from.len(), 0);
        let moved: Vec<Bytes> = ids_and_payloads(&to).into_iter().map(|(_, p)| p).collect();
        let want: Vec<Bytes> = records[300..310]
            .iter()
            .chain(&records[..300])
            .map(|r| r.payload.clone())
            .collect();
        assert_eq!(
            moved, want,
            "after what the target held, in the source's order"
        );

        // A target with room for 5 more takes 5; the rest stays where it was.
        let small = records[0].cost() * 5 + 1;
        let full = Spool::open(&d.path().join("c"), small, WhenFull::Backpressure).expect("c");
        from.append(&records[..20]).expect("append");
        assert_eq!(from.move_into(&full).expect("move"), 5);
        assert_eq!((from.len(), full.len()), (15, 5));
        assert_eq!(from.read_after(0, 1).expect("read")[0].1, records[5]);
    }

    #[test]
    fn records_round_trip_through_the_encoding() {
        for i in 0..10 {
            let r = rec(i);
            assert_eq!(Record::decode(&r.encode()), Some(r.clone()));
            assert_eq!(r.cost(), r.encode().len() as u64 + RECORD_OVERHEAD);
        }
        let r = Record {
            kind: "response",
            qos: Qos::AtMostOnce,
            payload: Bytes::new(),
            ..rec(5)
        };
        assert_eq!(Record::decode(&r.encode()), Some(r));
        assert_eq!(Record::decode(&[9, 1, 0]), None);
        assert_eq!(Record::decode(&rec(1).encode()[..10]), None);
    }

    #[test]
    fn appended_records_read_back_in_order_after_a_cursor() {
        let dir = tempfile::tempdir().expect("dir");
        let s = Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure).expect("open");
        let batch: Vec<_> = (0..10).map(rec).collect();
        assert_eq!(s.append(&batch[..4]).expect("append").count, 4);
        assert_eq!(s.append(&batch[4..]).expect("append").count, 6);
        let all = s.read_after(0, 100).expect("read");
        assert_eq!(all.len(), 10);
        for (i, (id, r)) in all.iter().enumerate() {
            assert_eq!(*id, i as u64 + 1);
            assert_eq!(r, &batch[i]);
        }
        let after = s.read_after(7, 2).expect("read");
        assert_eq!(after.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [8, 9]);
        assert_eq!(s.last_id(), 10);
        assert_eq!(s.len(), 10);
        assert_eq!(s.bytes(), batch.iter().map(Record::cost).sum::<u64>());
    }

    #[test]
    fn removal_by_id_in_any_order_frees_space_and_reopen_replays_the_rest_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let batch: Vec<_> = (0..6).map(rec).collect();
        {
            let s = Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure).expect("open");
            s.append(&batch).expect("append");
            s.remove(&[3, 1, 42]).expect("remove");
            assert_eq!(s.len(), 4);
            assert_eq!(s.count_on_disk(), 4);
            // Dropped without any close: as after a crash, only commits count.
        }
        let s = Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure).expect("reopen");
        assert_eq!(
            ids_and_payloads(&s),
            [2u64, 4, 5, 6]
                .iter()
                .map(|&id| (id, batch[id as usize - 1].payload.clone()))
                .collect::<Vec<_>>()
        );
        assert_eq!(s.len(), 4);
        assert_eq!(
            s.bytes(),
            [1usize, 3, 4, 5]
                .iter()
                .map(|&i| batch[i].cost())
                .sum::<u64>()
        );
        // New ids continue after the last one, so replay order stays the append order.
        s.append(&[rec(9)]).expect("append");
        assert_eq!(s.last_id(), 7);
        s.remove(&[2, 4, 5, 6, 7]).expect("remove");
        assert_eq!(s.len(), 0);
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn a_full_spool_with_backpressure_takes_only_what_fits() {
        let dir = tempfile::tempdir().expect("dir");
        let cost = rec(1).cost();
        let s = Spool::open(dir.path(), cost * 3, WhenFull::Backpressure).expect("open");
        let batch: Vec<_> = (0..5).map(|_| rec(1)).collect();
        assert_eq!(s.append(&batch).expect("append").count, 3);
        assert_eq!(s.append(&batch[3..]).expect("append").count, 0);
        s.remove(&[1]).expect("ack one");
        assert_eq!(
            s.append(&batch[3..]).expect("append"),
            Appended {
                count: 1,
                dropped: 0
            }
        );
        assert!(s.bytes() <= cost * 3);
        assert_eq!(
            s.read_after(0, 10)
                .expect("read")
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
            [2, 3, 4]
        );
    }

    #[test]
    fn a_full_spool_with_drop_oldest_deletes_the_oldest_records() {
        let dir = tempfile::tempdir().expect("dir");
        let cost = rec(1).cost();
        let s = Spool::open(dir.path(), cost * 3, WhenFull::DropOldest).expect("open");
        let batch: Vec<_> = (0..5).map(|_| rec(1)).collect();
        assert_eq!(
            s.append(&batch).expect("append"),
            Appended {
                count: 5,
                dropped: 2
            }
        );
        assert_eq!(
            s.read_after(0, 10)
                .expect("read")
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(s.bytes(), cost * 3);
        assert_eq!(s.dropped_upto(), 2);
    }

    #[test]
    fn an_empty_spool_takes_one_record_larger_than_the_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let s = Spool::open(dir.path(), 10, WhenFull::Backpressure).expect("open");
        assert_eq!(s.append(&[rec(1), rec(2)]).expect("append").count, 1);
        assert_eq!(s.append(&[rec(2)]).expect("append").count, 0);
    }

    #[test]
    fn a_write_cut_before_its_commit_leaves_the_spool_at_the_last_commit() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let s = Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure).expect("open");
            s.append(&(0..3).map(rec).collect::<Vec<_>>())
                .expect("append");
            // A batch being written when the process dies: never committed.
            let tx = s.db.begin_write().expect("write");
            {
                let mut t = tx.open_table(RECORDS).expect("table");
                t.insert(4, rec(4).encode().as_slice()).expect("insert");
            }
            drop(tx);
        }
        let s = Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure).expect("reopen");
        assert_eq!(s.len(), 3);
        assert_eq!(s.last_id(), 3);
        assert_eq!(s.read_after(0, 10).expect("read").len(), 3);
    }

    #[test]
    fn an_unreadable_record_is_skipped_and_deleted() {
        let dir = tempfile::tempdir().expect("dir");
        let s = Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure).expect("open");
        s.append(&[rec(1), rec(2), rec(3)]).expect("append");
        {
            let tx = s.db.begin_write().expect("write");
            {
                let mut t = tx.open_table(RECORDS).expect("table");
                t.insert(2, [99u8, 1, 2].as_slice()).expect("insert");
            }
            tx.commit().expect("commit");
        }
        let ids: Vec<u64> = s
            .read_after(0, 10)
            .expect("read")
            .iter()
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.count_on_disk(), 2);
    }

    #[test]
    fn a_second_open_of_the_same_spool_is_refused_with_the_key() {
        let dir = tempfile::tempdir().expect("dir");
        let _s = Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure).expect("open");
        match Spool::open(dir.path(), 1 << 20, WhenFull::Backpressure) {
            Err(BridgeError::File { key, .. }) => assert_eq!(key, "mqtt.spool.dir"),
            other => panic!("{other:?}"),
        }
    }
}
