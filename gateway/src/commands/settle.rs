//! Group commit of delivery bookkeeping: the sends and final statuses of every session's
//! commands, recorded many per commit, each result published once its record is stored.
//!
//! Why: a command written to its vehicle is recorded (its attempt count: the retry budget
//! survives a restart) and a finished one is removed (its id remembered), each durably before
//! its `sent` or final result is published. One commit (one fsync, ~3.5 ms here) each held
//! online delivery to ~270 commands a second for the whole gateway, however many vehicles
//! were online. The sessions hand their records to one task that takes every record waiting
//! (up to [`BATCH`]), stores them with one commit and then publishes their results in the
//! order they came: a result still says only what is stored, and a command's `sent` is
//! always published before its final status. A send is handed over without waiting
//! ([`Settler::record`]); a final status is waited for ([`Settler::record_and_wait`]) because
//! the session looks at the queue next and must not find the command there again.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::{Outcome, ResultPublisher};
use crate::queue::{CommandQueue, QueuedCommand, Settle};

/// Records stored with one commit, at most.
pub const BATCH: usize = 1024;

/// What one caller hands over: records to store (each with the result to publish once
/// stored, if any), and optionally a read of a vehicle's queue after they are stored.
struct Request {
    ops: Vec<Settle>,
    outcomes: Vec<Outcome>,
    /// `(vehicle, limit)`: read the vehicle's commands waiting, best first, once the
    /// records of the batch are stored.
    read: Option<(String, usize)>,
    done: Option<oneshot::Sender<Done>>,
}

/// What a waiting caller is told once its records are stored and their results published.
struct Done {
    /// Whether storing succeeded.
    stored: bool,
    /// The read it asked for (empty if the read failed: logged).
    pending: Vec<QueuedCommand>,
}

/// The sessions' handle to the group-commit task; cheap to clone.
#[derive(Clone)]
pub struct Settler {
    tx: mpsc::UnboundedSender<Request>,
}

impl Settler {
    /// Starts the task that commits the records of `queue` and publishes their results
    /// through `results` (on the current runtime).
    pub fn spawn(queue: Arc<dyn CommandQueue>, results: Option<ResultPublisher>) -> Settler {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(queue, results, rx));
        Settler { tx }
    }

    /// Stores `op` with the others waiting, then publishes `outcome`; returns at once.
    pub fn record(&self, op: Settle, outcome: Outcome) {
        let _ = self.tx.send(Request {
            ops: vec![op],
            outcomes: vec![outcome],
            read: None,
            done: None,
        });
    }

    /// Stores `op` with the others waiting, then publishes `outcome`; `true` once both are
    /// done, `false` if storing failed (logged; the result is still published) or the task
    /// is gone (shutting down).
    pub async fn record_and_wait(&self, op: Settle, outcome: Outcome) -> bool {
        self.send_and_wait(vec![op], vec![outcome], None)
            .await
            .is_some_and(|d| d.stored)
    }

    /// Stores `op` with the others waiting; `true` once it is durable.
    pub async fn settle(&self, op: Settle) -> bool {
        self.send_and_wait(vec![op], Vec::new(), None)
            .await
            .is_some_and(|d| d.stored)
    }

    /// Stores every record of `ops` with the others waiting and publishes their results in
    /// order, then reads up to `limit` commands waiting for `vehicle` (best first), all in
    /// the task's one hop to the blocking pool for the batch: what a session does when its
    /// vehicle answered commands and its window has room again. The read sees the records
    /// stored (a finished command is no longer there). Empty when the task is gone or the
    /// read failed (logged).
    pub async fn record_all_then_read(
        &self,
        ops: Vec<(Settle, Outcome)>,
        vehicle: &str,
        limit: usize,
    ) -> Vec<QueuedCommand> {
        let (ops, outcomes) = ops.into_iter().unzip();
        let read = (limit > 0).then(|| (vehicle.to_owned(), limit));
        self.send_and_wait(ops, outcomes, read)
            .await
            .map(|d| d.pending)
            .unwrap_or_default()
    }

    /// Up to `limit` commands waiting for `vehicle`, best first, read with the other
    /// sessions' reads and records of the moment (one hop to the blocking pool for all of
    /// them). Empty when the task is gone or the read failed (logged).
    pub async fn read(&self, vehicle: &str, limit: usize) -> Vec<QueuedCommand> {
        self.record_all_then_read(Vec::new(), vehicle, limit).await
    }

    async fn send_and_wait(
        &self,
        ops: Vec<Settle>,
        outcomes: Vec<Outcome>,
        read: Option<(String, usize)>,
    ) -> Option<Done> {
        let (done, wait) = oneshot::channel();
        let req = Request {
            ops,
            outcomes,
            read,
            done: Some(done),
        };
        self.tx.send(req).ok()?;
        wait.await.ok()
    }
}

/// The record and result of command `q` reaching final status `status`, for
/// [`Settler::record_all_then_read`].
pub fn finished(
    q: &QueuedCommand,
    protocol: codecs::Protocol,
    status: super::CmdStatus,
    reason: Option<String>,
    response: Option<serde_json::Value>,
) -> (Settle, Outcome) {
    let op = Settle::Finish {
        vehicle: q.vehicle.clone(),
        id: q.id.clone(),
    };
    let mut outcome = Outcome::of(q, protocol, status);
    outcome.reason = reason;
    outcome.response = response;
    (op, outcome)
}

/// How long a batch of records the store refuses is tried again before it is given up.
const SETTLE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);

async fn run(
    queue: Arc<dyn CommandQueue>,
    results: Option<ResultPublisher>,
    mut rx: mpsc::UnboundedReceiver<Request>,
) {
    let mut batch: Vec<Request> = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut ops: Vec<Settle> = Vec::with_capacity(batch.len());
        let mut reads: Vec<(usize, String, usize)> = Vec::new();
        for (i, r) in batch.iter_mut().enumerate() {
            ops.append(&mut r.ops);
            if let Some((v, limit)) = r.read.take() {
                reads.push((i, v, limit));
            }
        }
        let n = ops.len();
        // One hop for the batch: the commit, then the reads (which see it). A store whose
        // errors may pass (Redis restarting or failing over, in cluster mode:
        // `CommandQueue::retry_errors`) is tried again: a final status not recorded would
        // leave the command queued, to be sent again at the vehicle's next login.
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(50);
        let (mut ops, mut reads) = (ops, reads);
        let (ok, mut read) = loop {
            let q = queue.clone();
            let now = super::now_ms();
            let work = move || {
                let stored = if ops.is_empty() {
                    Ok(())
                } else {
                    q.settle_many(&ops, now)
                };
                let read_at = super::now_ms();
                let read: Vec<_> = reads
                    .iter()
                    .map(|(i, v, limit)| (*i, v.clone(), q.pending(v, read_at, *limit)))
                    .collect();
                (stored, read, ops, reads)
            };
            match tokio::task::spawn_blocking(work).await {
                Ok((Ok(()), read, _, _)) => break (true, read),
                Ok((Err(e), _, back, back_reads))
                    if queue.retry_errors() && started.elapsed() < SETTLE_RETRY_FOR =>
                {
                    warn!(records = n, error = %e, "recording command deliveries failed; trying again");
                    (ops, reads) = (back, back_reads);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                }
                Ok((Err(e), read, _, _)) => {
                    warn!(records = n, error = %e, "recording command deliveries failed");
                    break (false, read);
                }
                Err(e) => {
                    warn!(records = n, error = %e, "recording command deliveries failed");
                    break (false, Vec::new());
                }
            }
        };
        // The reads, by request index (in order: `reads` was built ascending).
        read.reverse();
        for (i, r) in batch.drain(..).enumerate() {
            if let Some(p) = &results {
                for o in r.outcomes {
                    p.publish(o).await;
                }
            }
            let pending = match read.last() {
                Some((j, ..)) if *j == i => match read.pop() {
                    Some((_, _, Ok(list))) => list,
                    Some((_, v, Err(e))) => {
                        warn!(vehicle = %v, error = %e, "reading the command queue failed");
                        Vec::new()
                    }
                    None => Vec::new(),
                },
                _ => Vec::new(),
            };
            if let Some(done) = r.done {
                let _ = done.send(Done {
                    stored: ok,
                    pending,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{MemoryQueue, QueuedCommand};

    fn cmd(vehicle: &str, id: &str) -> QueuedCommand {
        QueuedCommand::for_test(vehicle, id, "query_location")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn records_of_many_sessions_are_stored_and_each_caller_is_told() {
        let queue: Arc<dyn CommandQueue> = Arc::new(MemoryQueue::new(Default::default()));
        let cmds: Vec<QueuedCommand> = (0..50).map(|i| cmd(&format!("v{i}"), "c")).collect();
        queue.enqueue_many(cmds).unwrap();
        let settler = Settler::spawn(queue.clone(), None);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let s = settler.clone();
            tasks.push(tokio::spawn(async move {
                let v = format!("v{i}");
                let sent = s
                    .settle(Settle::Attempt {
                        vehicle: v.clone(),
                        id: "c".into(),
                    })
                    .await;
                let attempts = if i % 2 == 0 {
                    None
                } else {
                    Some(
                        s.settle(Settle::Finish {
                            vehicle: v.clone(),
                            id: "c".into(),
                        })
                        .await,
                    )
                };
                (sent, attempts)
            }));
        }
        for t in tasks {
            let (sent, finished) = t.await.unwrap();
            assert!(sent && finished.unwrap_or(true));
        }
        for i in 0..50 {
            let pending = queue.pending(&format!("v{i}"), 0, 10).unwrap();
            if i % 2 == 0 {
                assert_eq!(pending.len(), 1, "v{i} still queued");
                assert_eq!(pending[0].attempts, 1, "its attempt recorded");
            } else {
                assert!(pending.is_empty(), "v{i} finished");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_after_records_sees_them_stored() {
        let queue: Arc<dyn CommandQueue> = Arc::new(MemoryQueue::new(Default::default()));
        let cmds: Vec<QueuedCommand> = ["a", "b", "c"].iter().map(|id| cmd("v", id)).collect();
        queue.enqueue_many(cmds.clone()).unwrap();
        let settler = Settler::spawn(queue.clone(), None);
        let first = settler.read("v", 2).await;
        assert_eq!(
            first.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"],
            "best first, at most the limit"
        );
        let done = finished(
            &cmds[0],
            codecs::Protocol::Jt808_2019,
            super::super::CmdStatus::Acked,
            None,
            None,
        );
        let next = settler.record_all_then_read(vec![done], "v", 5).await;
        assert_eq!(
            next.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
            ["b", "c"],
            "the finished command is gone from the read that follows it"
        );
        let nothing = settler.record_all_then_read(Vec::new(), "v", 0).await;
        assert!(nothing.is_empty(), "no read asked for");
    }
}
