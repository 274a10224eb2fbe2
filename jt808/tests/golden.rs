//! Golden tests over `fixtures/jt808/*.json`: real frames with sources, decoded through
//! the frame layer, checked against `expect_error`, `expect_raw` and `expect_events`
//! (JSON pointers; floats within 1e-6).

use codecs::EventContext;
use jt808::{normalize, raw_json, ChecksumPolicy, Frame, Message};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/jt808");

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-6,
        _ => a == b,
    }
}

fn frame(wire_hex: &str) -> Result<Frame, String> {
    let wire = hex::decode(wire_hex).map_err(|e| format!("hex: {e}"))?;
    // What the codec reports at end of stream for input without its closing 0x7E.
    if wire.len() < 2 || wire.last() != Some(&0x7e) {
        return Err("truncated".into());
    }
    let inner = wire
        .get(1..wire.len().saturating_sub(1))
        .ok_or("no delimiters")?;
    let content = jt808::escape::unescape(inner).map_err(|e| e.reason().to_string())?;
    Frame::parse(&content, ChecksumPolicy::Strict).map_err(|e| e.reason().to_string())
}

/// Decodes one fixture to (raw_json, event JSONs), or the snake_case reason of its error.
fn decode(fx: &Value) -> Result<(Value, Vec<Value>), String> {
    let (header, body) = if let Some(h) = fx["hex"].as_str() {
        let f = frame(h)?;
        (f.header.clone(), f.body.to_vec())
    } else {
        // A subpackaged message: bodies concatenated in package order.
        let mut parts = Vec::new();
        for h in fx["frames"].as_array().ok_or("no hex or frames")? {
            parts.push(frame(h.as_str().ok_or("frame not a string")?)?);
        }
        parts.sort_by_key(|f| f.header.package.map(|p| p.index));
        let mut header = parts.first().ok_or("no frames")?.header.clone();
        header.package = None;
        (header, parts.iter().flat_map(|f| f.body.to_vec()).collect())
    };
    let msg = Message::decode(&header, &body).map_err(|_| "body_error".to_string())?;
    let ctx = EventContext::now("golden");
    let events = normalize(&header, &msg, &ctx)
        .iter()
        .map(|e| serde_json::from_str(&e.to_json()).unwrap_or(Value::Null))
        .collect();
    Ok((raw_json(&header, &msg), events))
}

#[test]
fn every_fixture_decodes_to_its_expected_values() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut paths: Vec<_> = std::fs::read_dir(DIR)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {DIR}");
    for p in paths {
        let fx: Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
        let id = fx["id"].as_str().unwrap_or("?").to_string();
        match (decode(&fx), fx["expect_error"].as_str()) {
            (Err(e), Some(want)) if e == want => checked += 1,
            (Err(e), want) => failures.push(format!("{id}: error {e}, expected {want:?}")),
            (Ok(_), Some(want)) => failures.push(format!("{id}: decoded, expected error {want}")),
            (Ok((raw, events)), None) => {
                if let Some(m) = fx["expect_raw"].as_object() {
                    for (ptr, want) in m {
                        checked += 1;
                        match raw.pointer(ptr) {
                            Some(got) if same(got, want) => {}
                            got => failures.push(format!("{id}: raw {ptr} = {got:?}, want {want}")),
                        }
                    }
                }
                let exp = fx["expect_events"].as_array().cloned().unwrap_or_default();
                if !exp.is_empty() && exp.len() != events.len() {
                    failures.push(format!("{id}: {} events, want {}", events.len(), exp.len()));
                }
                for (i, (e, want)) in events.iter().zip(exp.iter()).enumerate() {
                    for (ptr, w) in want.as_object().into_iter().flatten() {
                        checked += 1;
                        match e.pointer(ptr) {
                            Some(got) if same(got, w) => {}
                            got => {
                                failures.push(format!("{id}: event {i} {ptr} = {got:?}, want {w}"))
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
