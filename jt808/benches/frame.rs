//! Decode throughput of the JT/T 808 codec on a typical 0x0200 location report.
//!
//! The frame is Traccar's `Jt808ProtocolDecoderTest.java` line 310 report (four additional
//! items: 0x01, 0x2A, 0x30, 0x31) re-sent with serial 0x007E so it carries an escape.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jt808::{ChecksumPolicy, Codec, Frame};
use tokio_util::codec::Decoder;

const FRAMES: usize = 1000;

fn wire() -> Vec<u8> {
    let hex = "0200002c00160128561400020000000000040001005de1f7065c6cef00000000000017011710044201040000a9002a02000030011b3101030c";
    let content = hex::decode(hex).expect("hex");
    let mut frame = Frame::parse(&content, ChecksumPolicy::Strict).expect("golden frame");
    frame.header.serial = 0x007e;
    let one = frame.to_wire();
    assert!(one.windows(2).any(|w| w == [0x7d, 0x02]));
    one.repeat(FRAMES)
}

fn decode(c: &mut Criterion) {
    let stream = wire();
    let mut group = c.benchmark_group("jt808_decode_0200");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("frames", |b| {
        b.iter(|| {
            let mut codec = Codec::default();
            let mut buf = BytesMut::from(&stream[..]);
            let mut n = 0;
            while let Ok(Some(item)) = codec.decode(&mut buf) {
                n += usize::from(item.is_ok());
            }
            assert_eq!(n, FRAMES);
        })
    });
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("bytes", |b| {
        b.iter(|| {
            let mut codec = Codec::default();
            let mut buf = BytesMut::from(&stream[..]);
            while let Ok(Some(item)) = codec.decode(&mut buf) {
                criterion::black_box(item.is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
