//! The offline command queue's storage layer: every behaviour is checked against both
//! implementations ([`MemoryQueue`] and [`RedbQueue`]) through `&dyn CommandQueue`; redb-only
//! tests cover persistence (drop + reopen, a copy of the file taken while open = a crash) and
//! corrupt records, and a proptest compares random operation sequences with a simple model.

use std::collections::HashSet;
use std::path::Path;

use gateway::queue::{
    CommandQueue, Enqueued, KnownVehicle, MemoryQueue, QueueError, QueueLimits, QueuedCommand,
    RedbQueue, Settle,
};
use proptest::prelude::*;
use serde_json::json;

const HOUR: i64 = 3_600_000;

fn cmd(
    vehicle: &str,
    id: &str,
    priority: u8,
    enqueued_at_ms: i64,
    expires_at_ms: i64,
) -> QueuedCommand {
    QueuedCommand {
        vehicle: vehicle.to_owned(),
        id: id.to_owned(),
        priority,
        enqueued_at_ms,
        expires_at_ms,
        command: json!({"id": id, "type": "text", "params": {"text": "hi"}, "priority": priority})
            .into(),
        response_topic: Some(format!("reply/{vehicle}")),
        correlation_data: Some(id.as_bytes().to_vec()),
        attempts: 0,
    }
}

fn ids(cmds: &[QueuedCommand]) -> Vec<String> {
    cmds.iter().map(|c| c.id.clone()).collect()
}

fn redb_in(dir: &Path, limits: QueueLimits) -> RedbQueue {
    RedbQueue::open(&dir.join("sub/dir/commands.redb"), limits).expect("open redb queue")
}

/// Generates one `#[test]` per implementation for a check taking `&dyn CommandQueue`.
macro_rules! both {
    ($check:ident, $limits:expr) => {
        mod $check {
            use super::*;
            #[test]
            fn memory() {
                super::$check(&MemoryQueue::new($limits));
            }
            #[test]
            fn redb() {
                let dir = tempfile::tempdir().unwrap();
                super::$check(&redb_in(dir.path(), $limits));
            }
        }
    };
}

// ---- shared checks --------------------------------------------------------------------------

fn order_by_priority_then_age(q: &dyn CommandQueue) {
    // 300 commands, mixed priorities, all with the SAME timestamp: FIFO within a priority must
    // come from the sequence number, not the clock. Another vehicle's commands are interleaved.
    let mut expected: Vec<(u8, usize, String)> = Vec::new();
    let mut batch = Vec::new();
    for i in 0..300usize {
        let p = ((i * 7 + i / 13) % 10) as u8;
        let id = format!("c{i:03}");
        let c = cmd("V1", &id, p, 1_000, 10 * HOUR);
        if i < 150 {
            assert_eq!(q.enqueue(c).unwrap(), Enqueued::Stored);
        } else {
            batch.push(c);
        }
        q.enqueue(cmd("V2", &id, 9 - p, 1_000, 10 * HOUR)).unwrap();
        expected.push((p, i, id));
    }
    // the second half in one batch: same order semantics
    assert!(q
        .enqueue_many(batch)
        .unwrap()
        .iter()
        .all(|r| *r == Enqueued::Stored));
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let want: Vec<String> = expected.iter().map(|e| e.2.clone()).collect();

    assert_eq!(ids(&q.pending("V1", 2_000, 1000).unwrap()), want);
    assert_eq!(ids(&q.pending("V1", 2_000, 7).unwrap()), want[..7].to_vec());
    assert!(q.pending("V1", 2_000, 0).unwrap().is_empty());
    assert!(q.pending("nobody", 2_000, 10).unwrap().is_empty());
    // a vehicle id that is a prefix of another does not see the other's commands
    assert!(q.pending("V", 2_000, 10).unwrap().is_empty());
    let v2 = q.pending("V2", 2_000, 1000).unwrap();
    assert_eq!(v2.len(), 300);
    assert!(v2.windows(2).all(|w| w[0].priority >= w[1].priority));
    assert!(v2.iter().all(|c| c.vehicle == "V2"));
    assert_eq!(q.len(), 600);
    assert_eq!(q.len_vehicle("V1"), 300);

    // the record comes back exactly as stored
    let first = &q.pending("V1", 2_000, 1).unwrap()[0];
    assert_eq!(
        *first,
        cmd("V1", &want[0], first.priority, 1_000, 10 * HOUR)
    );

    // finishing the head exposes the next one
    assert!(q.finish("V1", &want[0], 3_000).unwrap());
    assert_eq!(
        ids(&q.pending("V1", 3_000, 2).unwrap()),
        want[1..3].to_vec()
    );
    assert_eq!(q.len_vehicle("V1"), 299);
}

fn duplicates(q: &dyn CommandQueue) {
    let t0 = 10 * HOUR;
    assert_eq!(
        q.enqueue(cmd("V1", "a", 5, t0, t0 + HOUR)).unwrap(),
        Enqueued::Stored
    );
    // queued => duplicate, whatever the other fields
    assert_eq!(
        q.enqueue(cmd("V1", "a", 9, t0 + 1, t0 + 2 * HOUR)).unwrap(),
        Enqueued::Duplicate
    );
    // same id for another vehicle is another command
    assert_eq!(
        q.enqueue(cmd("V2", "a", 5, t0, t0 + HOUR)).unwrap(),
        Enqueued::Stored
    );
    assert_eq!(q.len(), 2);

    // finished => remembered
    assert!(q.finish("V1", "a", t0 + 10).unwrap());
    assert!(!q.finish("V1", "a", t0 + 11).unwrap());
    assert_eq!(q.len(), 1);
    assert_eq!(
        q.enqueue(cmd("V1", "a", 5, t0 + 20, t0 + HOUR)).unwrap(),
        Enqueued::Duplicate
    );

    // finish of an id never queued (delivered directly) is remembered too
    assert!(!q.finish("V1", "direct", t0 + 10).unwrap());
    assert_eq!(
        q.enqueue(cmd("V1", "direct", 5, t0, t0 + HOUR)).unwrap(),
        Enqueued::Duplicate
    );

    // duplicate inside one batch
    let r = q
        .enqueue_many(vec![
            cmd("V3", "x", 1, t0, t0 + HOUR),
            cmd("V3", "x", 2, t0, t0 + HOUR),
            cmd("V1", "a", 1, t0, t0 + HOUR),
        ])
        .unwrap();
    assert_eq!(
        r,
        vec![Enqueued::Stored, Enqueued::Duplicate, Enqueued::Duplicate]
    );

    // prune before the retention ends forgets nothing
    assert_eq!(q.prune(t0 + 10 + 24 * HOUR - 1).unwrap(), 0);
    assert_eq!(
        q.enqueue(cmd("V1", "a", 5, t0, t0 + HOUR)).unwrap(),
        Enqueued::Duplicate
    );
    // after it: both remembered ids are forgotten, the id is accepted again
    assert_eq!(q.prune(t0 + 11 + 24 * HOUR).unwrap(), 2);
    assert_eq!(q.prune(t0 + 11 + 24 * HOUR).unwrap(), 0);
    assert_eq!(
        q.enqueue(cmd("V1", "a", 5, t0 + 24 * HOUR, t0 + 25 * HOUR))
            .unwrap(),
        Enqueued::Stored
    );
    assert_eq!(
        q.enqueue(cmd("V1", "direct", 5, t0 + 24 * HOUR, t0 + 25 * HOUR))
            .unwrap(),
        Enqueued::Stored
    );
    // queued ids are never pruned
    assert_eq!(q.prune(t0 + 1000 * HOUR).unwrap(), 0);
    assert_eq!(
        q.enqueue(cmd("V2", "a", 5, t0, t0 + HOUR)).unwrap(),
        Enqueued::Duplicate
    );
}

fn caps(q: &dyn CommandQueue) {
    // limits: per_vehicle 3, global 5
    let e = |v: &str, id: &str| q.enqueue(cmd(v, id, 1, 0, HOUR)).unwrap();
    assert_eq!(e("V1", "1"), Enqueued::Stored);
    assert_eq!(e("V1", "2"), Enqueued::Stored);
    assert_eq!(e("V1", "3"), Enqueued::Stored);
    assert_eq!(e("V1", "4"), Enqueued::VehicleFull);
    // a duplicate is a duplicate even when full
    assert_eq!(e("V1", "3"), Enqueued::Duplicate);
    assert_eq!(e("V2", "1"), Enqueued::Stored);
    assert_eq!(e("V2", "2"), Enqueued::Stored);
    assert_eq!(e("V3", "1"), Enqueued::GlobalFull);
    assert_eq!(e("V2", "3"), Enqueued::GlobalFull);
    assert_eq!(
        (
            q.len(),
            q.len_vehicle("V1"),
            q.len_vehicle("V2"),
            q.len_vehicle("V3")
        ),
        (5, 3, 2, 0)
    );
    // refused commands were not stored (nor remembered)
    assert!(q.finish("V1", "2", 1).unwrap());
    assert_eq!(e("V1", "4"), Enqueued::Stored);
    assert_eq!(e("V3", "1"), Enqueued::GlobalFull);
    // caps count inside a batch too
    assert!(q.finish("V2", "1", 1).unwrap());
    assert!(q.finish("V2", "2", 1).unwrap());
    let r = q
        .enqueue_many(vec![
            cmd("V4", "1", 1, 0, HOUR),
            cmd("V4", "2", 1, 0, HOUR),
            cmd("V4", "3", 1, 0, HOUR),
        ])
        .unwrap();
    assert_eq!(
        r,
        vec![Enqueued::Stored, Enqueued::Stored, Enqueued::GlobalFull]
    );
    let r = q.enqueue_many(vec![cmd("V5", "9", 1, 0, HOUR)]).unwrap();
    assert_eq!(r, vec![Enqueued::GlobalFull]);
    assert_eq!(q.len(), 5);
    assert_eq!(q.len_vehicle("V4"), 2);
}

fn ttl(q: &dyn CommandQueue) {
    q.enqueue(cmd("V1", "e100", 9, 0, 100)).unwrap();
    q.enqueue(cmd("V1", "e200", 1, 0, 200)).unwrap();
    q.enqueue(cmd("V1", "e300", 5, 0, 300)).unwrap();
    q.enqueue(cmd("V2", "e200", 5, 0, 200)).unwrap();
    q.enqueue(cmd("V2", "neg", 5, -5_000, -1_000)).unwrap();
    assert_eq!(
        ids(&q.pending("V1", 99, 10).unwrap()),
        ["e100", "e300", "e200"]
    );
    // expired at exactly expires_at_ms
    assert_eq!(ids(&q.pending("V1", 100, 10).unwrap()), ["e300", "e200"]);
    assert_eq!(ids(&q.pending("V1", 250, 10).unwrap()), ["e300"]);
    assert_eq!(ids(&q.pending("V2", 0, 10).unwrap()), ["e200"]);
    // still counted until taken
    assert_eq!(q.len(), 5);

    assert!(q.take_expired(-1_001, 10).unwrap().is_empty());
    let mut got: Vec<(String, String)> = q
        .take_expired(250, 10)
        .unwrap()
        .into_iter()
        .map(|c| (c.vehicle, c.id))
        .collect();
    let first = got[0].clone();
    assert_eq!(
        first,
        ("V2".to_owned(), "neg".to_owned()),
        "oldest expiry first"
    );
    got.sort();
    let want: Vec<(String, String)> = [
        ("V1", "e100"),
        ("V1", "e200"),
        ("V2", "e200"),
        ("V2", "neg"),
    ]
    .iter()
    .map(|(v, i)| (v.to_string(), i.to_string()))
    .collect();
    assert_eq!(got, want);
    // once only
    assert!(q.take_expired(250, 10).unwrap().is_empty());
    assert_eq!(
        (q.len(), q.len_vehicle("V1"), q.len_vehicle("V2")),
        (1, 1, 0)
    );
    // taken ids are remembered
    assert_eq!(
        q.enqueue(cmd("V1", "e100", 9, 0, 10_000)).unwrap(),
        Enqueued::Duplicate
    );
    // the limit is honoured
    for i in 0..5 {
        q.enqueue(cmd("V3", &format!("x{i}"), 1, 0, 400 + i))
            .unwrap();
    }
    assert_eq!(ids(&q.take_expired(1_000, 2).unwrap()), ["e300", "x0"]);
    assert_eq!(
        ids(&q.take_expired(1_000, 100).unwrap()),
        ["x1", "x2", "x3", "x4"]
    );
    assert!(q.is_empty());
    assert!(q.take_expired(i64::MAX, 100).unwrap().is_empty());
}

fn attempts(q: &dyn CommandQueue) {
    q.enqueue(cmd("V1", "a", 1, 0, HOUR)).unwrap();
    q.enqueue(cmd("V1", "b", 1, 0, HOUR)).unwrap();
    q.mark_attempt("V1", "a").unwrap();
    q.mark_attempt("V1", "a").unwrap();
    q.mark_attempt("V1", "b").unwrap();
    // unknown: no-op
    q.mark_attempt("V1", "zzz").unwrap();
    q.mark_attempt("V9", "a").unwrap();
    let p = q.pending("V1", 0, 10).unwrap();
    assert_eq!((p[0].id.as_str(), p[0].attempts), ("a", 2));
    assert_eq!((p[1].id.as_str(), p[1].attempts), ("b", 1));
    // order unchanged by the rewrite
    assert_eq!(ids(&p), ["a", "b"]);
    assert_eq!(q.len(), 2);
}

/// Sends and final statuses of several vehicles in one `settle_many`, in order: the same
/// outcome as the single calls, an unknown or invalid id skipped.
fn settle_many(q: &dyn CommandQueue) {
    for v in ["V1", "V2", "V3"] {
        q.enqueue(cmd(v, "a", 1, 0, HOUR)).unwrap();
        q.enqueue(cmd(v, "b", 1, 0, HOUR)).unwrap();
    }
    let op = |f: fn(String, String) -> Settle, v: &str, id: &str| f(v.into(), id.into());
    let attempt = |v: String, id: String| Settle::Attempt { vehicle: v, id };
    let finish = |v: String, id: String| Settle::Finish { vehicle: v, id };
    q.settle_many(
        &[
            op(attempt, "V1", "a"),
            op(attempt, "V2", "a"),
            op(attempt, "V1", "a"),
            op(finish, "V2", "a"),
            op(finish, "V3", "b"),
            op(attempt, "V9", "zzz"),
            op(finish, "", "a"),
        ],
        5,
    )
    .unwrap();
    let p = q.pending("V1", 0, 10).unwrap();
    assert_eq!((p[0].id.as_str(), p[0].attempts), ("a", 2));
    assert_eq!((p[1].id.as_str(), p[1].attempts), ("b", 0));
    assert_eq!(ids(&q.pending("V2", 0, 10).unwrap()), ["b"]);
    assert_eq!(ids(&q.pending("V3", 0, 10).unwrap()), ["a"]);
    assert_eq!(q.len(), 4);
    // A finished id is remembered: the same command again is a duplicate.
    assert_eq!(
        q.enqueue(cmd("V2", "a", 1, 10, HOUR)).unwrap(),
        Enqueued::Duplicate
    );
    q.settle_many(&[], 5).unwrap();
}

fn known_vehicles(q: &dyn CommandQueue) {
    assert!(q.known_vehicles().unwrap().is_empty());
    q.remember_vehicle("V2", "gbt32960", 10).unwrap();
    q.remember_vehicle("V1", "jt808", 20).unwrap();
    q.remember_vehicle("V2", "gbt32960", 30).unwrap();
    let kv = |v: &str, p: &str, t: i64| KnownVehicle {
        vehicle: v.into(),
        protocol: p.into(),
        last_seen_ms: t,
    };
    assert_eq!(
        q.known_vehicles().unwrap(),
        vec![kv("V1", "jt808", 20), kv("V2", "gbt32960", 30)]
    );
    assert_eq!(
        q.known_vehicle("V2").unwrap(),
        Some(kv("V2", "gbt32960", 30))
    );
    assert_eq!(q.known_vehicle("V3").unwrap(), None);
    // remember_vehicles (the batched login path) writes them all.
    q.remember_vehicles(
        &[("V3".into(), "raw".into()), ("V1".into(), "jt808".into())],
        40,
    )
    .unwrap();
    assert_eq!(q.known_vehicle("V3").unwrap(), Some(kv("V3", "raw", 40)));
    assert_eq!(q.known_vehicle("V1").unwrap(), Some(kv("V1", "jt808", 40)));
}

fn invalid_input(q: &dyn CommandQueue) {
    assert!(matches!(
        q.enqueue(cmd("V1", "a", 10, 0, HOUR)),
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        q.enqueue(cmd("", "a", 1, 0, HOUR)),
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        q.enqueue(cmd("V1", "", 1, 0, HOUR)),
        Err(QueueError::Invalid(_))
    ));
    let long = "x".repeat(70_000);
    assert!(matches!(
        q.enqueue(cmd(&long, "a", 1, 0, HOUR)),
        Err(QueueError::Invalid(_))
    ));
    // a batch with one invalid command stores nothing
    assert!(q
        .enqueue_many(vec![
            cmd("V1", "ok", 1, 0, HOUR),
            cmd("V1", "bad", 99, 0, HOUR)
        ])
        .is_err());
    assert!(q.is_empty());
    assert!(q.pending(&long, 0, 10).unwrap().is_empty());
}

const DEFAULT: QueueLimits = QueueLimits {
    per_vehicle: 1000,
    global: 1_000_000,
    remember_ids_ms: 24 * HOUR,
};

fn cancel(q: &dyn CommandQueue) {
    for (i, p) in [(1, 5), (2, 9), (3, 0)] {
        q.enqueue(cmd("V1", &format!("c{i}"), p, 1_000, 10 * HOUR))
            .unwrap();
    }
    q.enqueue(cmd("V2", "c2", 5, 1_000, 10 * HOUR)).unwrap();
    let gone = q.cancel("V1", "c2", 2_000).unwrap().expect("c2 was queued");
    assert_eq!(
        (gone.vehicle.as_str(), gone.id.as_str(), gone.priority),
        ("V1", "c2", 9)
    );
    assert_eq!(
        gone.response_topic.as_deref(),
        Some("reply/V1"),
        "the whole record back"
    );
    assert_eq!(ids(&q.pending("V1", 2_000, 10).unwrap()), ["c1", "c3"]);
    assert_eq!(q.len_vehicle("V1"), 2);
    assert_eq!(q.len(), 3);
    assert_eq!(
        ids(&q.pending("V2", 2_000, 10).unwrap()),
        ["c2"],
        "another vehicle's command of the same id stays"
    );
    // Cancelled is final: the id is remembered, a retry of it is a duplicate.
    assert_eq!(
        q.enqueue(cmd("V1", "c2", 9, 3_000, 10 * HOUR)).unwrap(),
        Enqueued::Duplicate
    );
    assert!(
        q.cancel("V1", "c2", 3_000).unwrap().is_none(),
        "cancelled once"
    );
    // An id that was never queued is not remembered by a cancel: it can still be sent.
    assert!(q.cancel("V1", "never", 3_000).unwrap().is_none());
    assert_eq!(
        q.enqueue(cmd("V1", "never", 5, 3_000, 10 * HOUR)).unwrap(),
        Enqueued::Stored
    );
    // A finished id is not cancelled.
    q.finish("V1", "c1", 4_000).unwrap();
    assert!(q.cancel("V1", "c1", 4_000).unwrap().is_none());
    assert!(
        !matches!(q.cancel("", "c1", 4_000), Ok(Some(_))),
        "an empty vehicle id holds nothing"
    );
}

fn known_vehicles_from(q: &dyn CommandQueue) {
    use std::ops::Bound;
    let seen: Vec<(String, String)> = (0..50)
        .map(|i| (format!("V{i:03}"), "jt808-2013".to_owned()))
        .collect();
    q.remember_vehicles(&seen, 7).unwrap();
    let page = |from: Bound<&str>, n| -> Vec<String> {
        q.known_vehicles_from(from, n)
            .unwrap()
            .into_iter()
            .map(|k| k.vehicle)
            .collect()
    };
    assert_eq!(page(Bound::Unbounded, 2), ["V000", "V001"]);
    assert_eq!(page(Bound::Excluded("V001"), 2), ["V002", "V003"]);
    assert_eq!(page(Bound::Included("V010"), 1), ["V010"]);
    assert_eq!(page(Bound::Excluded("V048"), 10), ["V049"]);
    assert!(page(Bound::Excluded("V049"), 10).is_empty());
    assert_eq!(page(Bound::Included("V0"), 100).len(), 50);
    let k = q
        .known_vehicles_from(Bound::Unbounded, 1)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!((k.protocol.as_str(), k.last_seen_ms), ("jt808-2013", 7));
}

both!(cancel, DEFAULT);
both!(known_vehicles_from, DEFAULT);
both!(order_by_priority_then_age, DEFAULT);
both!(duplicates, DEFAULT);
both!(
    caps,
    QueueLimits {
        per_vehicle: 3,
        global: 5,
        remember_ids_ms: HOUR
    }
);
both!(ttl, DEFAULT);
both!(attempts, DEFAULT);
both!(settle_many, DEFAULT);
both!(known_vehicles, DEFAULT);
both!(invalid_input, DEFAULT);

#[test]
fn default_limits() {
    assert_eq!(QueueLimits::default(), DEFAULT);
}

// ---- redb only: persistence and corruption ---------------------------------------------------

#[test]
fn redb_survives_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/commands.redb");
    let limits = QueueLimits {
        per_vehicle: 4,
        ..DEFAULT
    };
    let before;
    {
        let q = RedbQueue::open(&path, limits).unwrap();
        for i in 0..4 {
            q.enqueue(cmd("V1", &format!("a{i}"), (i % 3) as u8, i, HOUR))
                .unwrap();
        }
        q.enqueue_many(
            (0..3)
                .map(|i| cmd("V2", &format!("b{i}"), 1, i, 50))
                .collect(),
        )
        .unwrap();
        q.mark_attempt("V1", "a2").unwrap();
        assert!(q.finish("V1", "a0", 10).unwrap());
        q.remember_vehicle("V1", "jt808", 7).unwrap();
        q.remember_vehicle("V2", "gbt32960", 8).unwrap();
        before = (
            q.pending("V1", 0, 100).unwrap(),
            q.pending("V2", 0, 100).unwrap(),
        );
        assert_eq!(
            (q.len(), q.len_vehicle("V1"), q.len_vehicle("V2")),
            (6, 3, 3)
        );
        // a clone shares the same database; dropping all handles is the only "close"
        let q2 = q.clone();
        drop(q);
        assert_eq!(q2.len(), 6);
    }
    let q = RedbQueue::open(&path, limits).unwrap();
    assert_eq!(
        (q.len(), q.len_vehicle("V1"), q.len_vehicle("V2")),
        (6, 3, 3)
    );
    assert_eq!(
        (
            q.pending("V1", 0, 100).unwrap(),
            q.pending("V2", 0, 100).unwrap()
        ),
        before
    );
    assert_eq!(before.0.iter().find(|c| c.id == "a2").unwrap().attempts, 1);
    assert_eq!(
        q.known_vehicles().unwrap(),
        vec![
            KnownVehicle {
                vehicle: "V1".into(),
                protocol: "jt808".into(),
                last_seen_ms: 7
            },
            KnownVehicle {
                vehicle: "V2".into(),
                protocol: "gbt32960".into(),
                last_seen_ms: 8
            },
        ]
    );
    // remembered ids survive, caps use the recounted numbers
    assert_eq!(
        q.enqueue(cmd("V1", "a0", 1, 0, HOUR)).unwrap(),
        Enqueued::Duplicate
    );
    assert_eq!(
        q.enqueue(cmd("V1", "new", 2, 100, HOUR)).unwrap(),
        Enqueued::Stored
    );
    assert_eq!(
        q.enqueue(cmd("V1", "new2", 1, 100, HOUR)).unwrap(),
        Enqueued::VehicleFull
    );
    // the sequence counter survives: a new command goes after older ones of its priority
    // even with an older timestamp
    assert_eq!(
        q.enqueue(cmd("V2", "late", 1, -5, 50)).unwrap(),
        Enqueued::Stored
    );
    assert_eq!(
        ids(&q.pending("V2", 0, 100).unwrap()),
        ["b0", "b1", "b2", "late"]
    );
    let v1 = ids(&q.pending("V1", 0, 100).unwrap());
    assert_eq!(v1, ["a2", "new", "a1", "a3"]);
    // the expiry index survives
    assert_eq!(q.take_expired(60, 100).unwrap().len(), 4);
    assert_eq!(q.len(), 4);
    // prune of remembered ids survives too
    assert_eq!(q.prune(60 + 24 * HOUR + 1).unwrap(), 5);
}

/// A copy of the file taken right after `enqueue` returned, with the queue still open and never
/// closed, is what a SIGKILL leaves on disk (the page cache survives a process crash; fsync
/// covers a power cut). It must open (redb repairs it) and hold every Stored command.
#[test]
fn redb_stored_command_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("commands.redb");
    let q = RedbQueue::open(&path, DEFAULT).unwrap();
    q.remember_vehicle("V1", "jt808", 1).unwrap();
    for i in 0..20 {
        assert_eq!(
            q.enqueue(cmd("V1", &format!("c{i}"), (i % 10) as u8, i, HOUR))
                .unwrap(),
            Enqueued::Stored
        );
    }
    assert!(q.finish("V1", "c3", 5).unwrap());
    let crashed = dir.path().join("crashed.redb");
    std::fs::copy(&path, &crashed).unwrap();
    let want = q.pending("V1", 0, 100).unwrap();
    assert_eq!(want.len(), 19);

    let q2 = RedbQueue::open(&crashed, DEFAULT).unwrap();
    assert_eq!(q2.pending("V1", 0, 100).unwrap(), want);
    assert_eq!(q2.len(), 19);
    assert_eq!(
        q2.enqueue(cmd("V1", "c3", 1, 0, HOUR)).unwrap(),
        Enqueued::Duplicate
    );
    assert_eq!(q2.known_vehicles().unwrap().len(), 1);
    drop(q);
}

#[test]
fn redb_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("commands.redb");
    let _q = RedbQueue::open(&path, DEFAULT).unwrap();
    let err = RedbQueue::open(&path, DEFAULT).unwrap_err();
    assert!(
        matches!(err, QueueError::Storage { .. } | QueueError::Io { .. }),
        "{err:?}"
    );
}

#[test]
fn redb_corrupt_record_is_a_typed_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("commands.redb");
    {
        let q = RedbQueue::open(&path, DEFAULT).unwrap();
        q.enqueue(cmd("VEH-7", "c1", 4, 0, HOUR)).unwrap();
        q.remember_vehicle("VEH-7", "jt808", 1).unwrap();
    }
    {
        // damage the record (and a known-vehicle value) behind the queue's back
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("commands"))
                .unwrap();
            let keys: Vec<Vec<u8>> = {
                use redb::ReadableTable;
                t.iter()
                    .unwrap()
                    .map(|e| e.unwrap().0.value().to_vec())
                    .collect()
            };
            assert_eq!(keys.len(), 1);
            t.insert(keys[0].as_slice(), b"\x01{not json".as_slice())
                .unwrap();
            let mut k = txn
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("known_vehicles"))
                .unwrap();
            k.insert(b"VEH-7".as_slice(), b"\x00".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let q = RedbQueue::open(&path, DEFAULT).unwrap();
    match q.pending("VEH-7", 0, 10) {
        Err(
            e @ QueueError::Corrupt {
                table: "commands", ..
            },
        ) => {
            let msg = e.to_string();
            assert!(msg.contains("VEH-7"), "{msg}");
        }
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
    assert!(matches!(
        q.mark_attempt("VEH-7", "c1"),
        Err(QueueError::Corrupt {
            table: "commands",
            ..
        })
    ));
    assert!(matches!(
        q.take_expired(2 * HOUR, 10),
        Err(QueueError::Corrupt {
            table: "commands",
            ..
        })
    ));
    assert!(matches!(
        q.known_vehicles(),
        Err(QueueError::Corrupt {
            table: "known_vehicles",
            ..
        })
    ));
    // finishing does not need to read the record: the damaged command can still be removed
    assert!(q.finish("VEH-7", "c1", 5).unwrap());
    assert!(q.is_empty());
}

// ---- proptest: random sequences against a model ----------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        vehicle: usize,
        id: usize,
        priority: u8,
        ttl: i64,
    },
    EnqueueMany(Vec<(usize, usize, u8, i64)>),
    Finish {
        vehicle: usize,
        id: usize,
    },
    Attempt {
        vehicle: usize,
        id: usize,
    },
    Advance(i64),
    TakeExpired(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0..3usize;
    let id = 0..12usize;
    prop_oneof![
        4 => (v.clone(), id.clone(), 0..10u8, 1..60i64).prop_map(|(vehicle, id, priority, ttl)| Op::Enqueue { vehicle, id, priority, ttl }),
        1 => prop::collection::vec((0..3usize, 0..12usize, 0..10u8, 1..60i64), 0..5).prop_map(Op::EnqueueMany),
        2 => (v.clone(), id.clone()).prop_map(|(vehicle, id)| Op::Finish { vehicle, id }),
        1 => (v, id).prop_map(|(vehicle, id)| Op::Attempt { vehicle, id }),
        1 => (0..30i64).prop_map(Op::Advance),
        1 => (0..4usize).prop_map(Op::TakeExpired),
    ]
}

/// The model: commands in enqueue order, remembered ids, a clock.
#[derive(Default)]
struct Model {
    queued: Vec<QueuedCommand>,
    done: HashSet<(String, String)>,
    now: i64,
}

const PROP_LIMITS: QueueLimits = QueueLimits {
    per_vehicle: 6,
    global: 12,
    remember_ids_ms: 1_000_000,
};

impl Model {
    fn enqueue(&mut self, c: QueuedCommand) -> Enqueued {
        let key = (c.vehicle.clone(), c.id.clone());
        if self.done.contains(&key)
            || self
                .queued
                .iter()
                .any(|q| q.vehicle == c.vehicle && q.id == c.id)
        {
            return Enqueued::Duplicate;
        }
        if self
            .queued
            .iter()
            .filter(|q| q.vehicle == c.vehicle)
            .count()
            >= PROP_LIMITS.per_vehicle
        {
            return Enqueued::VehicleFull;
        }
        if self.queued.len() >= PROP_LIMITS.global {
            return Enqueued::GlobalFull;
        }
        self.queued.push(c);
        Enqueued::Stored
    }
    fn pending(&self, vehicle: &str) -> Vec<QueuedCommand> {
        let mut v: Vec<QueuedCommand> = self
            .queued
            .iter()
            .filter(|c| c.vehicle == vehicle && c.expires_at_ms > self.now)
            .cloned()
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.priority)); // stable: enqueue order within a priority
        v
    }
}

fn vname(i: usize) -> String {
    format!("veh{i}")
}

fn run_ops(q: &dyn CommandQueue, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut m = Model::default();
    let mk = |m: &Model, v: usize, id: usize, p: u8, ttl: i64| {
        cmd(&vname(v), &format!("id{id}"), p, m.now, m.now + ttl)
    };
    for op in ops {
        match op {
            Op::Enqueue {
                vehicle,
                id,
                priority,
                ttl,
            } => {
                let c = mk(&m, *vehicle, *id, *priority, *ttl);
                prop_assert_eq!(q.enqueue(c.clone()).unwrap(), m.enqueue(c));
            }
            Op::EnqueueMany(items) => {
                let cs: Vec<QueuedCommand> = items
                    .iter()
                    .map(|(v, id, p, ttl)| mk(&m, *v, *id, *p, *ttl))
                    .collect();
                let want: Vec<Enqueued> = cs.iter().map(|c| m.enqueue(c.clone())).collect();
                prop_assert_eq!(q.enqueue_many(cs).unwrap(), want);
            }
            Op::Finish { vehicle, id } => {
                let (v, i) = (vname(*vehicle), format!("id{id}"));
                let pos = m.queued.iter().position(|c| c.vehicle == v && c.id == i);
                if let Some(p) = pos {
                    m.queued.remove(p);
                }
                m.done.insert((v.clone(), i.clone()));
                prop_assert_eq!(q.finish(&v, &i, m.now).unwrap(), pos.is_some());
            }
            Op::Attempt { vehicle, id } => {
                let (v, i) = (vname(*vehicle), format!("id{id}"));
                if let Some(c) = m.queued.iter_mut().find(|c| c.vehicle == v && c.id == i) {
                    c.attempts += 1;
                }
                q.mark_attempt(&v, &i).unwrap();
            }
            Op::Advance(d) => m.now += d,
            Op::TakeExpired(limit) => {
                let got = q.take_expired(m.now, *limit).unwrap();
                let mut exp: Vec<&QueuedCommand> = m
                    .queued
                    .iter()
                    .filter(|c| c.expires_at_ms <= m.now)
                    .collect();
                exp.sort_by_key(|c| c.expires_at_ms);
                prop_assert_eq!(got.len(), exp.len().min(*limit));
                // oldest expiry first (ties in any order)
                for (g, e) in got.iter().zip(&exp) {
                    prop_assert_eq!(g.expires_at_ms, e.expires_at_ms);
                }
                for g in &got {
                    let p = m.queued.iter().position(|c| c == g);
                    prop_assert!(p.is_some(), "taken command not in the model: {:?}", g);
                    m.queued.remove(p.unwrap());
                    m.done.insert((g.vehicle.clone(), g.id.clone()));
                }
            }
        }
        prop_assert_eq!(q.len(), m.queued.len());
        for v in 0..3 {
            let name = vname(v);
            prop_assert_eq!(
                q.pending(&name, m.now, usize::MAX).unwrap(),
                m.pending(&name)
            );
            prop_assert_eq!(
                q.len_vehicle(&name),
                m.queued.iter().filter(|c| c.vehicle == name).count()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn redb_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        run_ops(&redb_in(dir.path(), PROP_LIMITS), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memory_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run_ops(&MemoryQueue::new(PROP_LIMITS), &ops)?;
    }
}
