//! A fixed-work driver for CPU-time and instruction counting (not a criterion bench):
//! `perf stat -e task-clock target/release/deps/probe-* json 20000` runs 20000 x the
//! decode + normalize + JSON of the `realtime` bench's body (`valgrind --tool=callgrind`
//! of `json 200` and `json 400`: the difference of the Ir / 200 is the cost of one).

use std::hint::black_box;

use gbt32960::realtime::Report;
use gbt32960::{normalize, Edition};

mod common;

fn json(iters: usize) {
    let mut body = Vec::new();
    common::report().encode(Edition::V2016, &mut body);
    let ctx = codecs::EventContext::now("bench");
    let mut out = Vec::with_capacity(8192);
    let mut total = 0usize;
    for _ in 0..iters {
        let r = Report::decode(black_box(&body), Edition::V2016).expect("bench body");
        for e in normalize("LVBENCH0000000001", Edition::V2016, None, &r, false, &ctx) {
            out.clear();
            e.write_json(&mut out);
            total += out.len();
        }
    }
    if std::env::var_os("PROBE_PRINT").is_some() {
        // Every event of one report, one line each (`PROBE_PRINT=1 probe json 0`).
        let r = Report::decode(&body, Edition::V2016).expect("bench body");
        for e in normalize("LVBENCH0000000001", Edition::V2016, None, &r, false, &ctx) {
            println!("{}", e.to_json());
        }
    }
    black_box(total);
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let what = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let t = std::time::Instant::now();
    if what == "json" {
        json(n);
    }
    if n > 0 {
        let per = t.elapsed().as_secs_f64() / n as f64;
        eprintln!("{what}: {:.1} ns/unit, {:.3} M/s", per * 1e9, 1e-6 / per);
    }
}
