//! A fixed-work driver for instruction counting (not a criterion bench):
//! `valgrind --tool=callgrind target/release/deps/probe-* frame 200` decodes 200 x 1000
//! frames of the `frame` bench; `json 20000` runs 20000 x the 0x0200
//! decode+normalize+JSON of the `messages` bench (`json_into`: with `Normalizer::normalize_into`
//! into a reused list). Divide the Ir by the count.

use bytes::BytesMut;
use codecs::EventContext;
use jt808::{normalize, ChecksumPolicy, Codec, Encryption, Frame, Header, Message, Version};
use std::hint::black_box;
use tokio_util::codec::Decoder;

fn frames(iters: usize) {
    let hex = "0200002c00160128561400020000000000040001005de1f7065c6cef00000000000017011710044201040000a9002a02000030011b3101030c";
    let content = hex::decode(hex).expect("hex");
    let mut frame = Frame::parse(&content, ChecksumPolicy::Strict).expect("golden frame");
    frame.header.serial = 0x007e;
    let stream = frame.to_wire().repeat(1000);
    let mut n = 0usize;
    for _ in 0..iters {
        let mut codec = Codec::default();
        let mut buf = BytesMut::from(&stream[..]);
        while let Ok(Some(item)) = codec.decode(&mut buf) {
            n += usize::from(black_box(item).is_ok());
        }
    }
    assert_eq!(n, iters * 1000);
}

fn json(iters: usize, into: bool) {
    let body = hex::decode("000000000004000001317a6706936851000e00000027171019193538010400003fb2030200002504000000002a0200002b040000000030011f310100").expect("hex");
    let h = Header {
        msg_id: 0x0200,
        version: Version::V2013,
        protocol_version: 0,
        phone: "018876638972".into(),
        serial: 229,
        encryption: Encryption::None,
        package: None,
    };
    let ctx = EventContext::now("bench");
    let mut out = Vec::with_capacity(1024);
    let mut total = 0usize;
    let mut norm = jt808::Normalizer::new();
    let mut events = Vec::new();
    for _ in 0..iters {
        let m = Message::decode(&h, black_box(&body)).expect("decode");
        if into {
            // The events kept in a reused list: no allocation per event.
            events.clear();
            norm.normalize_into(h.version, &h, &m, &ctx, &mut events);
        } else {
            events = normalize(&h, &m, &ctx);
        }
        for e in &events {
            out.clear();
            e.write_json(&mut out);
            total += out.len();
        }
    }
    if iters > 0 && std::env::var_os("PROBE_PRINT").is_some() {
        println!("{}", String::from_utf8_lossy(&out));
    }
    black_box(total);
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let what = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let t = std::time::Instant::now();
    match what.as_str() {
        "frame" => frames(n),
        "json" => json(n, false),
        "json_into" => json(n, true),
        _ => {}
    }
    let units = if what == "frame" { n * 1000 } else { n };
    let what = what.as_str();
    if units > 0 {
        let per = t.elapsed().as_secs_f64() / units as f64;
        eprintln!("{what}: {:.1} ns/unit, {:.3} M/s", per * 1e9, 1e-6 / per);
    }
}
