//! Arbitrary (msg_id, version, body) -> `Message::decode` never panics, and a decoded
//! message survives `encode_body` -> `decode` unchanged.
//!
//! Documented exception: messages carrying text (0x0100, 0x0102, 0x8100) normalise it on
//! decode (padding trimmed, invalid GBK replaced), so for them only the *second* cycle must
//! be stable (decode . encode is idempotent after one pass), and their encode may refuse
//! text that no longer fits its fixed width. The same exception covers any other message
//! whose decoded text holds a character GBK cannot encode (U+FFFD from invalid bytes, or a
//! GB18030-only character): `codecs::text::encode` writes it as a numeric reference
//! (`&#65533;`), so such text is not expected to round-trip byte for byte (0x0702 driver
//! name, 0x8300 text, 0x8103 string parameters, ...).
#![no_main]

use jt808::{Encryption, Header, Message, Version};
use libfuzzer_sys::fuzz_target;

fn header(msg_id: u16, version: Version) -> Header {
    Header {
        msg_id,
        version,
        protocol_version: 0,
        phone: "013912345678".into(),
        serial: 0,
        encryption: Encryption::None,
        package: None,
    }
}

fn cycle(m: &Message, v: Version) -> Option<Message> {
    // Messages whose layout is detected from the body encode with the layout they were
    // read with (the header version alone does not say it).
    let ev = match m {
        Message::Register(r) => r.layout,
        Message::Attributes(a) => a.layout,
        Message::DriverIdentity(d) => d.layout,
        _ => v,
    };
    let body = m.encode_body(ev).ok()?;
    Some(Message::decode(&header(m.msg_id(), v), &body).expect("an encoded message decodes"))
}

/// Whether the decoded message holds text that GBK cannot carry back unchanged. Looks at
/// every non-ASCII character of its `Debug` form (binary fields print as numbers, so these
/// come from text), including the ones `Debug` escapes as `\u{..}`.
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
    let [a, b, c, body @ ..] = data else { return };
    let v = if c & 1 == 1 { Version::V2019 } else { Version::V2013 };
    let Ok(m1) = Message::decode(&header(u16::from_be_bytes([*a, *b]), v), body) else {
        return;
    };
    let m2 = cycle(&m1, v);
    let texty = matches!(
        m1,
        Message::Register(_) | Message::Authenticate(_) | Message::RegisterResponse(_)
    ) || lossy_text(&m1);
    match (texty, m2) {
        // Replacement characters may not fit a fixed-width field again: encode refuses.
        (true, None) => {}
        (true, Some(m2)) => {
            if let Some(m3) = cycle(&m2, v) {
                assert_eq!(m3, m2);
            }
        }
        (false, m2) => assert_eq!(m2.as_ref(), Some(&m1), "binary messages round-trip"),
    }
});
