//! How long one page of `GET /api/v1/vehicles` takes over a large fleet: N known vehicles in
//! a redb store (remembered as logins are), plus ONLINE of them online, then pages read with
//! the list handler's own function ([`gateway::api::vehicles::page`]): the first page, one
//! from the middle (a cursor), a prefix, an `online=false` filter, each the median of 21 runs.
//!
//! ```text
//! cargo run --release -p gateway --example api_list -- [N] [ONLINE]
//! ```
//! N defaults to 100,000, ONLINE to 1,000.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gateway::api::vehicles::{online_in, page, ListQuery};
use gateway::queue::{CommandQueue, RedbQueue};
use gateway::registry::SessionHandle;

fn median(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..21 {
        let t = Instant::now();
        n = f();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], n)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let online_n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let q = RedbQueue::open(&dir.path().join("commands.redb"), Default::default()).expect("open");
    let ids: Vec<String> = (0..n).map(|i| format!("0138{i:08}")).collect();
    let t = Instant::now();
    for chunk in ids.chunks(10_000) {
        let seen: Vec<(String, String)> = chunk
            .iter()
            .map(|v| (v.clone(), "jt808-2013".to_owned()))
            .collect();
        q.remember_vehicles(&seen, 1_700_000_000_000)
            .expect("remember");
    }
    println!("remembered {n} vehicles in {:?}", t.elapsed());
    let mut online: BTreeMap<String, SessionHandle> = BTreeMap::new();
    let mut receivers = Vec::new();
    for v in ids
        .iter()
        .step_by((n / online_n.max(1)).max(1))
        .take(online_n)
    {
        let (tx, rx) = gateway::registry::control();
        receivers.push(rx);
        online.insert(
            v.clone(),
            SessionHandle {
                id: 1,
                protocol: codecs::Protocol::Jt808_2013,
                peer: "127.0.0.1:1".parse().expect("addr"),
                since: chrono::Utc::now(),
                control: tx,
                frames: Default::default(),
            },
        );
    }
    let middle = ids.get(n / 2).cloned();
    let cases: Vec<(&str, ListQuery, usize)> = vec![
        ("first page, limit 100", ListQuery::default(), 100),
        ("first page, limit 1000", ListQuery::default(), 1000),
        (
            "middle (cursor), limit 1000",
            ListQuery {
                cursor: middle,
                ..Default::default()
            },
            1000,
        ),
        (
            "prefix 01380005, limit 1000",
            ListQuery {
                prefix: Some("01380005".into()),
                ..Default::default()
            },
            1000,
        ),
        (
            "online=false, limit 1000",
            ListQuery {
                online: Some(false),
                ..Default::default()
            },
            1000,
        ),
        (
            "online=true, limit 1000",
            ListQuery {
                online: Some(true),
                ..Default::default()
            },
            1000,
        ),
    ];
    for (name, query, limit) in cases {
        let (t, got) = median(|| {
            page(&q, "node", &online_in(&online), &query, limit)
                .expect("page")
                .items
                .len()
        });
        println!(
            "{name:32} {got:5} items  {:8.2} ms",
            t.as_secs_f64() * 1000.0
        );
    }
}
