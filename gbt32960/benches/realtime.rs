//! Real-time report throughput: one 2016 body carrying every 2016 info type (vehicle,
//! motors, fuel cell, engine, location, extremes, alarm, cell voltages, temperatures,
//! custom), decoded alone, normalized alone, and decoded + normalized + serialized to JSON
//! (each event appended to a reused buffer with `Event::write_json`, as the MQTT publisher
//! does; figures in docs/PERFORMANCE.md, "GB/T 32960").
//!
//! The body is built with `Report::encode` from typical values (a 96-cell pack with 32
//! probes, `common/mod.rs`), so it is realistic in size (373 bytes) and valid by
//! construction.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gbt32960::realtime::Report;
use gbt32960::{normalize, Edition};

mod common;
use common::report;

fn bench(c: &mut Criterion) {
    let mut body = Vec::new();
    report().encode(Edition::V2016, &mut body);
    let ctx = codecs::EventContext::now("bench");
    let mut g = c.benchmark_group(format!("realtime_2016_all_types_{}B", body.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| Report::decode(black_box(&body), Edition::V2016))
    });
    let r = Report::decode(&body, Edition::V2016).expect("bench body");
    g.bench_function("normalize", |b| {
        b.iter(|| {
            normalize(
                "LVBENCH0000000001",
                Edition::V2016,
                None,
                black_box(&r),
                false,
                &ctx,
            )
        })
    });
    // As the MQTT publisher does: each event appended to a reused buffer.
    let mut out = Vec::with_capacity(8192);
    g.bench_function("decode_normalize_json", |b| {
        b.iter(|| {
            let r = Report::decode(black_box(&body), Edition::V2016).expect("bench body");
            let evs = normalize("LVBENCH0000000001", Edition::V2016, None, &r, false, &ctx);
            let mut n = 0;
            for e in &evs {
                out.clear();
                e.write_json(&mut out);
                n += out.len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
