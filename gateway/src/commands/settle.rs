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
use crate::queue::{CommandQueue, Settle};

/// Records stored with one commit, at most.
pub const BATCH: usize = 1024;

struct Request {
    op: Settle,
    outcome: Option<Outcome>,
    done: Option<oneshot::Sender<bool>>,
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
            op,
            outcome: Some(outcome),
            done: None,
        });
    }

    /// Stores `op` with the others waiting, then publishes `outcome`; `true` once both are
    /// done, `false` if storing failed (logged; the result is still published) or the task
    /// is gone (shutting down).
    pub async fn record_and_wait(&self, op: Settle, outcome: Outcome) -> bool {
        self.send_and_wait(op, Some(outcome)).await
    }

    /// Stores `op` with the others waiting; `true` once it is durable.
    pub async fn settle(&self, op: Settle) -> bool {
        self.send_and_wait(op, None).await
    }

    async fn send_and_wait(&self, op: Settle, outcome: Option<Outcome>) -> bool {
        let (done, wait) = oneshot::channel();
        let req = Request {
            op,
            outcome,
            done: Some(done),
        };
        if self.tx.send(req).is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }
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
        let ops: Vec<Settle> = batch.iter().map(|r| r.op.clone()).collect();
        let n = ops.len();
        // A store whose errors may pass (Redis restarting or failing over, in cluster mode:
        // `CommandQueue::retry_errors`) is tried again: a final status not recorded would leave the command queued, to be
        // sent again at the vehicle's next login.
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(50);
        let ok = loop {
            let (q, ops) = (queue.clone(), ops.clone());
            let now = super::now_ms();
            match tokio::task::spawn_blocking(move || q.settle_many(&ops, now)).await {
                Ok(Ok(())) => break true,
                Ok(Err(e)) if queue.retry_errors() && started.elapsed() < SETTLE_RETRY_FOR => {
                    warn!(records = n, error = %e, "recording command deliveries failed; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                }
                Ok(Err(e)) => {
                    warn!(records = n, error = %e, "recording command deliveries failed");
                    break false;
                }
                Err(e) => {
                    warn!(records = n, error = %e, "recording command deliveries failed");
                    break false;
                }
            }
        };
        for r in batch.drain(..) {
            if let (Some(o), Some(p)) = (r.outcome, &results) {
                p.publish(o).await;
            }
            if let Some(done) = r.done {
                let _ = done.send(ok);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{MemoryQueue, QueuedCommand};

    fn cmd(vehicle: &str, id: &str) -> QueuedCommand {
        QueuedCommand {
            vehicle: vehicle.into(),
            id: id.into(),
            priority: 5,
            enqueued_at_ms: 0,
            expires_at_ms: i64::MAX,
            command: serde_json::json!({"id": id, "type": "query_location"}),
            response_topic: None,
            correlation_data: None,
            attempts: 0,
        }
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
}
