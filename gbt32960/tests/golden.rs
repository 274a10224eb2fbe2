//! Golden fixtures: every `fixtures/gbt32960/*.json` frame is parsed, decoded and
//! normalized, and its `expect_raw` (JSON pointer into `raw_json`) and `expect_events`
//! (one pointer map per normalized event) values are checked. A failure names the fixture
//! id and the pointer. Floats compare with a 1e-6 tolerance.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use codecs::EventContext;
use gbt32960::{normalize_message, raw_json, Frame, Message};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/gbt32960");

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 1e-6
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// `LengthMismatch` -> `length_mismatch`.
fn snake(debug: &str) -> String {
    let name: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn check(id: &str, what: &str, doc: &Value, expect: &Value, failures: &mut Vec<String>) {
    let Some(map) = expect.as_object() else {
        return;
    };
    for (ptr, want) in map {
        match doc.pointer(ptr) {
            Some(got) if same(got, want) => {}
            got => failures.push(format!("{id}: {what} {ptr}: want {want}, got {got:?}")),
        }
    }
}

/// Runs one fixture; returns the number of asserted values.
fn run(fx: &Value, failures: &mut Vec<String>) -> usize {
    let id = fx["id"].as_str().unwrap_or("?").to_string();
    let bytes = match hex::decode(fx["hex"].as_str().unwrap_or("")) {
        Ok(b) => b,
        Err(e) => {
            failures.push(format!("{id}: bad hex: {e}"));
            return 0;
        }
    };
    let want_err = fx.get("expect_error").and_then(Value::as_str);
    let frame = match Frame::parse(&bytes) {
        Ok(f) => f,
        Err(e) => {
            if want_err != Some(e.reason()) {
                failures.push(format!("{id}: frame error {e:?}, expected {want_err:?}"));
            }
            return 1;
        }
    };
    let msg = match Message::decode(&frame) {
        Ok(m) => m,
        Err(e) => {
            let reason = snake(&format!("{e:?}"));
            if want_err != Some(reason.as_str()) {
                failures.push(format!("{id}: body error {e:?}, expected {want_err:?}"));
            }
            return 1;
        }
    };
    if let Some(w) = want_err {
        failures.push(format!("{id}: decoded, but expected error {w}"));
        return 1;
    }
    let raw = raw_json(&frame, &msg);
    let mut n = 0;
    if let Some(e) = fx.get("expect_raw") {
        n += e.as_object().map_or(0, |m| m.len());
        check(&id, "raw", &raw, e, failures);
    }
    let ctx = EventContext::now("golden");
    let events: Vec<Value> = normalize_message(&frame, &msg, &ctx)
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    if let Some(list) = fx.get("expect_events").and_then(Value::as_array) {
        if list.len() > events.len() {
            failures.push(format!(
                "{id}: {} events expected, {} produced",
                list.len(),
                events.len()
            ));
        }
        for (i, (want, got)) in list.iter().zip(&events).enumerate() {
            n += want.as_object().map_or(0, |m| m.len());
            check(&id, &format!("event {i}"), got, want, failures);
        }
    }
    n
}

#[test]
fn every_gbt32960_fixture_decodes_to_its_expected_values() {
    let dir = Path::new(DIR);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let mut failures = Vec::new();
    let mut asserted = 0;
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        let v: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: not JSON: {e}", p.display()));
                continue;
            }
        };
        // A file may hold one fixture or a list of them.
        match v {
            Value::Array(list) => {
                for fx in &list {
                    asserted += run(fx, &mut failures);
                }
            }
            fx => asserted += run(&fx, &mut failures),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{} fixture files, {asserted} values asserted", files.len());
}

#[test]
fn the_harness_reports_a_wrong_expected_value_with_the_fixture_id_and_pointer() {
    // Source: emqx parser suite case03_realtime_report_0x02 (two drive motors).
    let fx = serde_json::json!({
        "id": "self-test",
        "hex": "232302FE314731424C353250375452313135353230010020100101023B00020201017D753061A87D753C79E302017D75F862D4917D0075F8A2",
        "expect_error": null,
        "expect_events": [{"/data/motors/0/rpm": 10001.0, "/data/motors/0/torque_nm": 500.0}]
    });
    let mut failures = Vec::new();
    run(&fx, &mut failures);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with("self-test: event 0 /data/motors/0/rpm"));
}
