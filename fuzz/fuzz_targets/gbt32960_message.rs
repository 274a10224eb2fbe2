//! Arbitrary (edition, bytes) through `Report::decode`: it never panics, and every report
//! it returns re-encodes to bytes that decode to the same report (unknown types and cut
//! units are kept as the raw tail, so nothing is lost).
#![no_main]

use gbt32960::realtime::Report;
use gbt32960::Edition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let edition = if first & 1 == 0 {
        Edition::V2016
    } else {
        Edition::V2025
    };
    if let Ok(report) = Report::decode(body, edition) {
        let mut out = Vec::new();
        report.encode(edition, &mut out);
        let again = Report::decode(&out, edition).expect("a re-encoded report decodes");
        assert_eq!(again, report);
    }
});
