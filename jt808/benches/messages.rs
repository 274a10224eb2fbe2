//! Message-layer throughput: 0x0200 decode + normalize + JSON (from the body, and from the
//! wire frame through the `Codec`), a 0x0704 batch, 0x8300 encode.

use bytes::BytesMut;
use codecs::command::Command;
use codecs::EventContext;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use jt808::{normalize, Codec, Encryption, Frame, Header, Message, Normalizer, Version};
use tokio_util::codec::Decoder;

/// Body of the EMQX parser suite t_case04 0x0200 frame (fixtures/jt808/emqx-0200-case04.json).
const BODY_0200: &str = "000000000004000001317a6706936851000e00000027171019193538010400003fb2030200002504000000002a0200002b040000000030011f310100";

fn header(msg_id: u16) -> Header {
    Header {
        msg_id,
        version: Version::V2013,
        protocol_version: 0,
        phone: "018876638972".into(),
        serial: 229,
        encryption: Encryption::None,
        package: None,
    }
}

fn bench(c: &mut Criterion) {
    let body = hex::decode(BODY_0200).expect("hex");
    let h = header(0x0200);
    let ctx = EventContext::now("bench");
    let mut g = c.benchmark_group("jt808_messages");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(1024);
    g.bench_function("0x0200 decode+normalize+json", |b| {
        b.iter(|| {
            let m = Message::decode(&h, black_box(&body)).expect("decode");
            for e in normalize(&h, &m, &ctx) {
                out.clear();
                e.write_json(&mut out);
            }
            out.len()
        })
    });
    // The same with the events kept in a reused list (`Normalizer`): no allocation per event.
    let mut norm = Normalizer::new();
    let mut events = Vec::new();
    g.bench_function("0x0200 decode+normalize_into+json", |b| {
        b.iter(|| {
            let m = Message::decode(&h, black_box(&body)).expect("decode");
            events.clear();
            norm.normalize_into(h.version, &h, &m, &ctx, &mut events);
            for e in &events {
                out.clear();
                e.write_json(&mut out);
            }
            out.len()
        })
    });
    // The same report as a wire frame, 100 back to back: frame decode (unescape, checksum,
    // header) + body decode + normalize + JSON, per frame.
    let frame = Frame {
        header: h.clone(),
        body: body.clone().into(),
        checksum_ok: true,
    };
    let stream = frame.to_wire().repeat(100);
    g.throughput(Throughput::Elements(100));
    g.bench_function("0x0200 frame->json x100", |b| {
        b.iter(|| {
            let mut codec = Codec::default();
            let mut buf = BytesMut::from(&stream[..]);
            let mut n = 0;
            while let Ok(Some(Ok(f))) = codec.decode(&mut buf) {
                let m = Message::decode(&f.header, &f.body).expect("decode");
                for e in normalize(&f.header, &m, &ctx) {
                    out.clear();
                    e.write_json(&mut out);
                    n += out.len();
                }
            }
            n
        })
    });
    g.throughput(Throughput::Elements(1));
    let Message::Location(loc) = Message::decode(&h, &body).expect("decode") else {
        panic!("not a location")
    };
    let batch = Message::LocationBatch {
        batch_type: 1,
        items: vec![loc; 10],
    };
    let batch_body = batch.encode_body(Version::V2013).expect("encode");
    let hb = header(0x0704);
    g.throughput(Throughput::Elements(10));
    g.bench_function("0x0704 batch of 10 decode+normalize", |b| {
        b.iter(|| {
            let m = Message::decode(&hb, black_box(&batch_body)).expect("decode");
            normalize(&hb, &m, &ctx).len()
        })
    });
    let cmd =
        Command::parse(br#"{"id":"t","type":"text","params":{"text":"hello","flags":["tts"]}}"#)
            .expect("cmd");
    g.throughput(Throughput::Elements(1));
    g.bench_function("0x8300 build+encode", |b| {
        b.iter(|| {
            jt808::command::build(black_box(&cmd), Version::V2013)
                .and_then(|m| {
                    m.encode_body(Version::V2013)
                        .map_err(|e| codecs::command::CommandError::new("body", e.to_string()))
                })
                .map(|b| b.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
