//! Frame decode throughput: the codec over a stream of real frames (one group per kind of
//! frame), and data-unit decoding of the non-realtime messages.
//!
//! Frames: SmallChi/JTNewEnergy JTNE_0x01_Package_DeviceTest.cs (2016 login),
//! emqx/emqx emqx_gbt32960_parser_SUITE.erl case03_realtime_report_0x02 (2016 real-time),
//! emqx/emqx emqx_gbt32960_SUITE.erl t_case17_param_query_resp16 (2016 query answer),
//! beidouchangxi/rtm_con message_and_data_samples.py activation2025 (586-byte 2025 frame).

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gbt32960::{Codec, Frame, Message};
use tokio_util::codec::Decoder;

const FRAMES: &[(&str, &str)] = &[
    ("login_2016", "232301FE313233343536373839000000000000000001002A130116173738000131323334353637383939383736353433323130300304313233343435363739383730FD"),
    ("realtime_2016", "232302FE314731424C353250375452313135353230010020100101023B00020201017D753061A87D753C79E302017D75F862D4917D0075F8A2"),
    ("query_answer_2016", "23238001314731424C35325037545231313535323001004C1102020B0C0C100113880200C8037530040A05676F6F676C652E636F6D061F9007312E302E3008302E302E31093C0A003C0B003C0C0A0D0E0E7777772E676F6F676C652E636F6D0F23821001A9"),
    ("activation_2025", "242409FE48474C48334143463150413731343430380102311906170F0616313233343536373831323334353637380103CE6F0A94CBECE0C56BA8E4EDA6DBF838D5374536B0B5E9B57DB2ABE2ACE31ABC8F9C2A72C8A71C2128E999C354733542B034A5FC521D7C2124BB3C7EFF16C2F1161C11F7E38AEBF17A69A2D68D23D78730B98B0D1C867076F44003786E35B89FDA73130A48211959521CC613C9978F622F328383350BF334E4A7A80208981123D384D4F8685189240F8EBC56DFC4C0628A044466BC13C833DDE1BEA636147892069C6C294923E4C6C8AA64D0E981A0F8135D1C332EF9FDC7C3612B37DECB5DF6CC8E4040CF912B845456D169807B494805EEED7AEC09F22B344F0ED029375F49903BD704515E319509AEACF3C50DAAED3561C9A54879F13FF0790A499C96D3C101000148474C4833414346315041373134343038020100222BAEB29AC4B803F89824FAC02BE45A1BD38CB0892C7C9BF3D5237D0F5F9F365B6A8FA5C6028CDD411EEBADBBD8FFA570BB620F9340B77B9D5B39CB7C9E5B7439EFFBCD6E54FD89CF1B72C2DD3A5ECDE187253870FEA8395D20946867107A2054BDD13703A79A117D1E4815FCCF011096623C25D28E4C53A1084FB388FDCBEEB0D086945EC5C2E4157368738F329CF43D707385E0AD17FBEC26CFB94336C95FF3FFB581D489E814C546D320FBB96914ABDD63C392F1B132A1CE0E1C757A5316D6922EFE3C74DECEE26B57B1320F8D0A1C4E5DC83B352E407FB76559D125AEE04DD545C9F56115DA8B460D15E825AFC8072EFC1A2C84BF84FC3F5AEC11063DCF0000BD"),
];

/// Frames per iteration: a stream of this many copies is decoded in one go.
const BATCH: usize = 64;

fn codec(c: &mut Criterion) {
    for (name, hex_frame) in FRAMES {
        let wire = hex::decode(hex_frame).expect("bench frame hex");
        let stream: Vec<u8> = wire.repeat(BATCH);
        let mut g = c.benchmark_group(format!("codec/{name}"));
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("frames", |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&stream[..]);
                let mut codec = Codec::default();
                let mut n = 0;
                while let Ok(Some(item)) = codec.decode(&mut buf) {
                    n += usize::from(item.is_ok());
                }
                black_box(n)
            })
        });
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function("bytes", |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&stream[..]);
                let mut codec = Codec::default();
                while let Ok(Some(item)) = codec.decode(&mut buf) {
                    black_box(item.is_ok());
                }
            })
        });
        g.finish();
    }
}

fn messages(c: &mut Criterion) {
    for (name, hex_frame) in FRAMES.iter().filter(|(n, _)| !n.starts_with("realtime")) {
        let wire = hex::decode(hex_frame).expect("bench frame hex");
        let frame = Frame::parse(&wire).expect("bench frame parses");
        let mut g = c.benchmark_group(format!("message/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("decode", |b| {
            b.iter(|| black_box(Message::decode(black_box(&frame))))
        });
        g.finish();
    }
}

criterion_group!(benches, codec, messages);
criterion_main!(benches);
