//! Black-box tests: bad input on the listeners is counted, answered as the protocol says,
//! and never hurts the other vehicles.

mod support;

use std::time::Duration;

use gateway::simulate::gbt32960::Vehicle;
use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use gbt32960::Edition;
use jt808::Version;
use support::{Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn http_probes_and_tls_hellos_before_a_frame_are_skipped_and_the_terminal_still_works() {
    let vgate = Vgate::start(VgateOptions::default());
    let mut t = Terminal::connect(vgate.addr("jt808"), "013700000001", Version::V2013)
        .await
        .unwrap();
    t.send_wire(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    t.send_wire(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    assert_eq!(t.report(&Fix::default()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_bad_frames_close_the_connection_and_other_vehicles_are_unaffected() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[jt808]\nmax_bad_frames = 5\n".into()),
        ..Default::default()
    });
    let good_phone = "013700000002";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{good_phone}/location")],
    )
    .await;
    let mut good = Terminal::connect(vgate.addr("jt808"), good_phone, Version::V2013)
        .await
        .unwrap();
    let code = good.register().await.unwrap().auth_code.unwrap();
    assert_eq!(good.authenticate(&code).await.unwrap(), 0);

    let mut bad = Terminal::connect(vgate.addr("jt808"), "013700000003", Version::V2013)
        .await
        .unwrap();
    // A heartbeat frame with a wrong checksum byte, five times.
    let frame = "7e000200000137000000030001ff7e";
    for _ in 0..5 {
        bad.send_wire(&hex::decode(frame).unwrap()).await.unwrap();
    }
    assert!(bad.closed_within(WAIT).await, "closed after max_bad_frames");
    assert_eq!(
        good.report(&Fix::default()).await.unwrap(),
        0,
        "the other terminal is served"
    );
    assert_eq!(
        sub.next_on("/location", WAIT).await.json["vehicle_id"],
        good_phone
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vin_that_cannot_be_a_topic_level_is_refused() {
    let vgate = Vgate::start(VgateOptions::default());
    for vin in ["LVGB/000000000001", "LVGB+00000000001#"] {
        let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2016)
            .await
            .unwrap();
        let r = v.login().await.unwrap();
        assert_ne!(r.flag, 0x01, "{vin} refused");
        assert!(v.closed_within(WAIT).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_connections_that_never_log_in_are_closed_by_the_login_timeout() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[gbt32960]\nlogin_timeout_s = 1\n".into()),
        ..Default::default()
    });
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(
            tokio::net::TcpStream::connect(vgate.addr("gbt32960"))
                .await
                .unwrap(),
        );
    }
    // A vehicle that does log in is served meanwhile.
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), "LVGBT000000000900", Edition::V2025)
        .await
        .unwrap();
    assert_eq!(v.login().await.unwrap().flag, 0x01);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut closed = 0;
    for s in &mut idle {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(3), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 200);
    assert_eq!(
        v.heartbeat().await.unwrap().flag,
        0x01,
        "the logged-in vehicle is still served"
    );
}
