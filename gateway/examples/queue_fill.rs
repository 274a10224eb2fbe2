//! Fills a redb command queue with N commands for M vehicles, then drains it; prints the
//! enqueue rate (one commit per command on a sample, then batched), the file size, the time
//! to reopen (recount) and the time to drain everything via `pending` + `finish`.
//!
//! ```text
//! cargo run --release -p gateway --example queue_fill -- PATH N M [BATCH] [SINGLE]
//! ```
//! PATH is removed first if it exists. BATCH (default 1000) is the `enqueue_many` /
//! `finish_many` batch size; SINGLE (default 2000) is how many commands are enqueued, and later
//! finished, one commit each to measure the unbatched rates.

use std::path::PathBuf;
use std::time::Instant;

use gateway::queue::{CommandQueue, Enqueued, QueueLimits, QueuedCommand, RedbQueue};

fn command(i: usize, vehicles: usize, now: i64) -> QueuedCommand {
    let vehicle = format!("VIN{:014}", i % vehicles);
    let id = format!("cmd-{i:010}");
    let priority = (i % 10) as u8;
    QueuedCommand {
        command: serde_json::json!({
            "id": id, "type": "set_params", "params": {"heartbeat_s": 30, "0x0029": 10},
            "ttl_s": 86_400, "priority": priority
        })
        .into(),
        response_topic: Some(format!("platform/v1/{vehicle}/cmd/reply")),
        correlation_data: Some((i as u128).to_be_bytes().to_vec()),
        vehicle,
        id,
        priority,
        enqueued_at_ms: now,
        expires_at_ms: now + 86_400_000,
        attempts: 0,
    }
}

fn size(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{:.1} MiB ({:.1} MiB allocated on disk)",
            m.len() as f64 / 1048576.0,
            (m.blocks() * 512) as f64 / 1048576.0
        ),
        Err(e) => format!("? ({e})"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: queue_fill PATH N M [BATCH] [SINGLE]");
        std::process::exit(2);
    }
    let path = PathBuf::from(&args[0]);
    let n: usize = args[1].parse()?;
    let m: usize = args[2].parse()?;
    let batch: usize = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000)
        .max(1);
    let single: usize = args
        .get(4)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000)
        .min(n);
    let limits = QueueLimits {
        per_vehicle: n.div_ceil(m.max(1)) + 1,
        global: n.max(1),
        ..QueueLimits::default()
    };
    let _ = std::fs::remove_file(&path);
    let now = 1_700_000_000_000i64;
    println!(
        "queue_fill: {n} commands for {m} vehicles into {}",
        path.display()
    );

    let q = RedbQueue::open(&path, limits)?;
    // 1. one commit (fsync) per command
    let t = Instant::now();
    for i in 0..single {
        assert_eq!(q.enqueue(command(i, m, now))?, Enqueued::Stored);
    }
    let s = t.elapsed().as_secs_f64();
    if single > 0 {
        println!(
            "enqueue, one commit each:    {single} in {s:.2} s = {:.0} commands/s",
            single as f64 / s
        );
    }
    // 2. batched
    let t = Instant::now();
    let mut i = single;
    while i < n {
        let end = (i + batch).min(n);
        let cmds: Vec<QueuedCommand> = (i..end).map(|j| command(j, m, now)).collect();
        let r = q.enqueue_many(cmds)?;
        assert!(r.iter().all(|r| *r == Enqueued::Stored), "refused: {r:?}");
        i = end;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "enqueue_many, batches of {batch}: {} in {s:.2} s = {:.0} commands/s",
        n - single,
        (n - single) as f64 / s
    );
    assert_eq!(q.len(), n);
    println!("file after fill:             {}", size(&path));
    drop(q);

    let t = Instant::now();
    let q = RedbQueue::open(&path, limits)?;
    println!(
        "reopen (recount {} commands): {:.2} s",
        q.len(),
        t.elapsed().as_secs_f64()
    );

    // 3. drain: a sample one finish (commit) each, then per vehicle pending + finish_many
    let t = Instant::now();
    let mut finished = 0usize;
    'sample: for v in 0..m {
        let vehicle = format!("VIN{v:014}");
        for c in q.pending(&vehicle, now, usize::MAX)? {
            if finished >= single {
                break 'sample;
            }
            assert!(q.finish(&vehicle, &c.id, now)?);
            finished += 1;
        }
    }
    let s1 = t.elapsed().as_secs_f64();
    if finished > 0 {
        println!(
            "finish, one commit each:     {finished} in {s1:.2} s = {:.0} commands/s",
            finished as f64 / s1
        );
    }
    let t = Instant::now();
    let mut drained = 0usize;
    for v in 0..m {
        let vehicle = format!("VIN{v:014}");
        loop {
            let p = q.pending(&vehicle, now, batch)?;
            if p.is_empty() {
                break;
            }
            let ids: Vec<String> = p.into_iter().map(|c| c.id).collect();
            drained += q.finish_many(&vehicle, &ids, now)?;
        }
    }
    let s2 = t.elapsed().as_secs_f64();
    println!(
        "drain, pending + finish_many per vehicle (≤{batch}): {drained} in {s2:.2} s = {:.0} commands/s",
        drained as f64 / s2
    );
    println!(
        "drain total:                 {} commands in {:.2} s",
        finished + drained,
        s1 + s2
    );
    assert!(q.is_empty());
    println!(
        "file after drain:            {} (done ids remembered: {})",
        size(&path),
        finished + drained
    );
    let t = Instant::now();
    let pruned = q.prune(now + 25 * 3_600_000)?;
    println!(
        "prune of {pruned} remembered ids: {:.2} s; file: {}",
        t.elapsed().as_secs_f64(),
        size(&path)
    );
    Ok(())
}
