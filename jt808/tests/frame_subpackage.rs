//! Subpackage reassembly and splitting (JT/T 808 attribute bit 13; notes §1 and §7.10).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use jt808::{
    split, Codec, Encryption, Frame, Header, Package, Reassembler, ReassemblyConfig,
    ReassemblyError, ReassemblyEvent, Version,
};
use tokio_util::codec::Decoder;

fn header(version: Version) -> Header {
    Header {
        msg_id: 0x0801,
        version,
        protocol_version: if version == Version::V2019 { 1 } else { 0 },
        phone: if version == Version::V2019 {
            "00000000013800138000".into()
        } else {
            "013800138000".into()
        },
        serial: 100,
        encryption: Encryption::None,
        package: None,
    }
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn packages(len: usize) -> (Vec<u8>, Vec<Frame>) {
    let b = body(len);
    let parts = split(&header(Version::V2013), &b, 1000);
    (b, parts)
}

#[test]
fn a_body_over_the_limit_is_split_into_numbered_packages_with_consecutive_serials() {
    let (_, parts) = packages(2500);
    assert_eq!(parts.len(), 3);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(
            p.header.package,
            Some(Package {
                total: 3,
                index: i as u16 + 1
            })
        );
        assert_eq!(p.header.serial, 100 + i as u16);
    }
    assert_eq!(
        parts.iter().map(|p| p.body.len()).collect::<Vec<_>>(),
        vec![1000, 1000, 500]
    );
}

#[test]
fn a_body_that_fits_is_one_frame_without_package() {
    let parts = split(&header(Version::V2019), &body(1000), 1000);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].header.package, None);
}

#[test]
fn packages_in_order_give_the_whole_message_with_every_serial() {
    let (b, parts) = packages(2500);
    let mut r = Reassembler::default();
    let now = Instant::now();
    assert_eq!(r.push(parts[0].clone(), now).unwrap(), None);
    assert_eq!(r.push(parts[1].clone(), now).unwrap(), None);
    let whole = r.push(parts[2].clone(), now).unwrap().unwrap();
    assert_eq!(&whole.frame.body[..], &b[..]);
    assert_eq!(whole.frame.header.package, None);
    assert_eq!(whole.frame.header.serial, 100);
    assert_eq!(whole.serials, vec![100, 101, 102]);
    assert!(r.is_empty());
}

#[test]
fn packages_out_of_order_and_duplicated_still_give_the_message_once() {
    let (b, parts) = packages(2500);
    let mut r = Reassembler::default();
    let now = Instant::now();
    assert_eq!(r.push(parts[2].clone(), now).unwrap(), None);
    assert_eq!(r.push(parts[2].clone(), now).unwrap(), None);
    assert_eq!(r.push(parts[0].clone(), now).unwrap(), None);
    let whole = r.push(parts[1].clone(), now).unwrap().unwrap();
    assert_eq!(&whole.frame.body[..], &b[..]);
    assert_eq!(whole.frame.header.serial, 100);
}

#[test]
fn a_frame_without_package_passes_straight_through() {
    let frame = Frame::new(header(Version::V2013), vec![1, 2]);
    let got = Reassembler::default()
        .push(frame.clone(), Instant::now())
        .unwrap()
        .unwrap();
    assert_eq!(got.frame, frame);
    assert_eq!(got.serials, vec![100]);
}

#[test]
fn missing_packages_are_reported_after_the_quiet_time_a_bounded_number_of_times() {
    let (_, parts) = packages(3500);
    let config = ReassemblyConfig {
        max_reports: 2,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let t0 = Instant::now();
    r.push(parts[1].clone(), t0).unwrap();
    r.push(parts[3].clone(), t0).unwrap();
    assert!(r.poll(t0 + Duration::from_secs(4)).is_empty());
    let missing = ReassemblyEvent::Missing {
        phone: "013800138000".into(),
        msg_id: 0x0801,
        version: Version::V2013,
        first_serial: 100,
        missing: vec![1, 3],
    };
    assert_eq!(r.poll(t0 + Duration::from_secs(5)), vec![missing.clone()]);
    assert!(r.poll(t0 + Duration::from_secs(7)).is_empty());
    assert_eq!(r.poll(t0 + Duration::from_secs(10)), vec![missing]);
    assert!(r.poll(t0 + Duration::from_secs(20)).is_empty());
}

#[test]
fn a_group_idle_past_the_timeout_is_dropped() {
    let (_, parts) = packages(2500);
    let mut r = Reassembler::default();
    let t0 = Instant::now();
    r.push(parts[0].clone(), t0).unwrap();
    let events = r.poll(t0 + Duration::from_secs(60));
    assert_eq!(
        events,
        vec![ReassemblyEvent::Dropped {
            phone: "013800138000".into(),
            msg_id: 0x0801,
            total: 3,
            received: 1
        }]
    );
    assert!(r.is_empty());
}

#[test]
fn a_zero_total_or_an_index_outside_the_total_is_refused() {
    let mut r = Reassembler::default();
    let now = Instant::now();
    let mut h = header(Version::V2013);
    h.package = Some(Package { total: 0, index: 0 });
    assert_eq!(
        r.push(Frame::new(h.clone(), vec![]), now),
        Err(ReassemblyError::ZeroTotal { msg_id: 0x0801 })
    );
    h.package = Some(Package { total: 2, index: 0 });
    assert_eq!(
        r.push(Frame::new(h.clone(), vec![]), now),
        Err(ReassemblyError::BadIndex {
            msg_id: 0x0801,
            index: 0,
            total: 2
        })
    );
    h.package = Some(Package { total: 2, index: 3 });
    assert_eq!(
        r.push(Frame::new(h, vec![]), now),
        Err(ReassemblyError::BadIndex {
            msg_id: 0x0801,
            index: 3,
            total: 2
        })
    );
}

#[test]
fn memory_caps_refuse_new_groups_big_totals_and_phones_over_budget() {
    let config = ReassemblyConfig {
        max_total: 4,
        max_bytes_per_phone: 1500,
        max_groups: 1,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(config);
    let now = Instant::now();
    let (_, parts) = packages(5000);
    assert_eq!(
        r.push(parts[0].clone(), now),
        Err(ReassemblyError::TooManyPackages {
            msg_id: 0x0801,
            total: 5,
            max: 4
        })
    );
    let (_, parts) = packages(2500);
    r.push(parts[0].clone(), now).unwrap();
    assert_eq!(
        r.push(parts[1].clone(), now),
        Err(ReassemblyError::PhoneOverBudget {
            phone: "013800138000".into(),
            bytes: 2000,
            max: 1500
        })
    );
    let mut other = parts[0].clone();
    other.header.msg_id = 0x0704;
    assert_eq!(
        r.push(other, now),
        Err(ReassemblyError::TooManyGroups { groups: 1, max: 1 })
    );
}

#[test]
fn split_then_wire_then_reassemble_gives_back_the_body_for_both_header_layouts() {
    for version in [Version::V2013, Version::V2019] {
        let b = body(4000);
        let mut wire = Vec::new();
        for p in split(&header(version), &b, 1000) {
            p.write_wire(&mut wire);
        }
        let mut buf = BytesMut::from(&wire[..]);
        let mut codec = Codec::default();
        let mut r = Reassembler::default();
        let mut whole = None;
        while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
            if let Some(done) = r.push(item.unwrap(), Instant::now()).unwrap() {
                whole = Some(done);
            }
        }
        let whole = whole.unwrap();
        assert_eq!(&whole.frame.body[..], &b[..]);
        assert_eq!(whole.frame.header.version, version);
        assert_eq!(whole.serials, vec![100, 101, 102, 103]);
    }
}
