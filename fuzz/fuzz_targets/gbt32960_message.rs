//! Arbitrary data units of every GB/T 32960 command, both editions: decoding never panics;
//! every message that decodes re-encodes to a data unit that decodes to the same message
//! (for a message whose text GBK cannot carry back, see `lossy_text`: the re-encoded one is
//! stable from then on);
//! every real-time/reissue body re-encodes to bytes that decode to the same report
//! (unknown types and cut units are kept as the raw tail, so nothing is lost); and the
//! normalized events of a decoded message always serialize.
//!
//! Input: byte 0 = edition (bit 0) and response flag (bits 1-3: 0 = command 0xFE, else
//! 0x01..=0x07), byte 1 = command, the rest = data unit.
#![no_main]

use bytes::Bytes;
use codecs::EventContext;
use gbt32960::realtime::Report;
use gbt32960::{normalize_message, Edition, Encryption, Frame, Message};
use libfuzzer_sys::fuzz_target;

/// Whether the decoded message holds text that GBK cannot carry back unchanged: U+FFFD
/// from invalid bytes or a GB18030-only character, which `codecs::text` decodes (lossily)
/// and encodes as a numeric reference (`&#65533;`), a documented behaviour. Looks at every
/// non-ASCII character of its `Debug` form (binary fields print as numbers, so these come
/// from text), including the ones `Debug` escapes as `\u{..}`.
fn lossy_text(m: &Message) -> bool {
    let dbg = format!("{m:?}");
    let mut chars: Vec<char> = dbg.chars().filter(|c| !c.is_ascii()).collect();
    let mut rest = dbg.as_str();
    while let Some(i) = rest.find("\\u{") {
        rest = &rest[i + 3..];
        if let Some(c) = rest
            .find('}')
            .and_then(|j| u32::from_str_radix(&rest[..j], 16).ok())
            .and_then(char::from_u32)
        {
            chars.push(c);
        }
    }
    chars.into_iter().any(|c| {
        let s = c.to_string();
        !c.is_ascii() && codecs::text::decode(&codecs::text::encode(&s)) != s
    })
}

fuzz_target!(|data: &[u8]| {
    let [first, command, body @ ..] = data else {
        return;
    };
    let edition = if first & 1 == 0 {
        Edition::V2016
    } else {
        Edition::V2025
    };
    let response = match (first >> 1) & 0x07 {
        0 => 0xFE,
        n => n,
    };

    if let Ok(report) = Report::decode(body, edition) {
        let mut out = Vec::new();
        report.encode(edition, &mut out);
        let again = Report::decode(&out, edition).expect("a re-encoded report decodes");
        assert_eq!(again, report);
    }

    let frame = Frame {
        edition,
        command: *command,
        response,
        vin: "LFUZZ000000000001".into(),
        encryption: Encryption::None,
        data: Bytes::copy_from_slice(body),
    };
    let Ok(msg) = Message::decode(&frame) else {
        return;
    };
    if let Ok(again) = msg.to_frame(edition, &frame.vin) {
        if msg.command() == *command && msg.response_flag() == response {
            let back = Message::decode(&again).expect("a re-encoded message decodes");
            if lossy_text(&msg) {
                // Text GBK cannot carry back (see lossy_text) is re-encoded as numeric
                // references, so only the second cycle must be stable.
                if let Ok(third) = back.to_frame(edition, &frame.vin) {
                    let again = Message::decode(&third).expect("a re-encoded message decodes");
                    assert_eq!(again, back);
                }
            } else {
                assert_eq!(back, msg);
            }
        }
    }
    let ctx = EventContext::now("fuzz");
    for ev in normalize_message(&frame, &msg, &ctx) {
        assert!(!ev.to_json().is_empty());
    }
});
