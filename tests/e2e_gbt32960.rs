//! Black-box tests: the real `vgate` binary, a GB/T 32960 vehicle on TCP (both editions),
//! and a platform client on MQTT.

mod support;

use std::time::Duration;

use gateway::simulate::gbt32960::{Drive, Vehicle};
use gateway::simulate::Device;
use gbt32960::Edition;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(10);

async fn login_realtime_reissue_logout(vgate: &Vgate, mqtt_port: u16, vin: &str, edition: Edition) {
    let protocol = match edition {
        Edition::V2016 => "gbt32960-2016",
        Edition::V2025 => "gbt32960-2025",
    };
    let mut sub = Subscriber::connect(mqtt_port, &[&format!("vgate/v1/{vin}/#")]).await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, edition)
        .await
        .expect("connect");
    let reply = v.login().await.expect("login");
    assert_eq!(reply.flag, 0x01, "login answered with success");
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "login");
    assert_eq!(lc.json["protocol"], protocol);
    let st = sub.next_on("/status", WAIT).await;
    assert_eq!(st.json["data"]["online"], true);

    let drive = Drive {
        speed_kmh: 62.3,
        soc_pct: 77,
        total_voltage_v: 380.5,
        total_current_a: -12.4,
        latitude: 31.230416,
        longitude: 121.473701,
        ..Default::default()
    };
    v.realtime(&drive, false).await.expect("real-time");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["vehicle_id"], vin);
    assert_eq!(t.json["reissue"], false);
    let veh = &t.json["data"]["vehicle"];
    assert!(
        (veh["speed_kmh"].as_f64().unwrap() - 62.3).abs() < 1e-6,
        "{veh}"
    );
    assert_eq!(veh["soc_pct"].as_f64().unwrap(), 77.0);
    assert!((veh["total_voltage_v"].as_f64().unwrap() - 380.5).abs() < 1e-6);
    assert!(
        (veh["total_current_a"].as_f64().unwrap() + 12.4).abs() < 1e-6,
        "offset applied: {veh}"
    );
    let loc = sub.next_on("/location", WAIT).await;
    assert!((loc.json["data"]["latitude"].as_f64().unwrap() - 31.230416).abs() < 1e-6);

    v.realtime(&drive, true).await.expect("reissue");
    let t = sub.next_on("/telemetry", WAIT).await;
    assert_eq!(t.json["reissue"], true);

    assert_eq!(v.heartbeat().await.expect("heartbeat").flag, 0x01);
    v.logout().await.expect("logout");
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "logout");
    let off = sub.next_on("/status", WAIT).await;
    assert_eq!(off.json["data"]["online"], false);
    assert_eq!(off.json["data"]["reason"], "logout");
}

#[tokio::test(flavor = "multi_thread")]
async fn vehicles_of_both_editions_log_in_report_and_log_out_on_the_embedded_broker() {
    let vgate = Vgate::start(VgateOptions::default());
    let port = vgate.mqtt_port().unwrap();
    login_realtime_reissue_logout(&vgate, port, "LVGBT000000000016", Edition::V2016).await;
    login_realtime_reissue_logout(&vgate, port, "LVGBT000000000025", Edition::V2025).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_path_works_against_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    login_realtime_reissue_logout(&vgate, m.port, "LVGBT000000000116", Edition::V2016).await;
    login_realtime_reissue_logout(&vgate, m.port, "LVGBT000000000125", Edition::V2025).await;
}

/// `cell_lists = "compact"`: cell voltages as exact millivolts (`cell_voltages_mv`). The
/// frame is EMQX's cell-voltage test vector (fixtures/gbt32960/emqx-2016-02-cell-voltages).
#[tokio::test(flavor = "multi_thread")]
async fn compact_cell_lists_carry_millivolts() {
    const FRAME: &str =
        "232302fe314731424c353250375452313135353230010020100a01163b0008020113882710\
                         00020000011388021389271100020001011389cf";
    let vgate = Vgate::start(VgateOptions {
        extra_env: vec![("VGATE_GBT32960__CELL_LISTS".into(), "compact".into())],
        ..Default::default()
    });
    let vin = "1G1BL52P7TR115520";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{vin}/telemetry")],
    )
    .await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2016)
        .await
        .unwrap();
    assert_eq!(v.login().await.unwrap().flag, 0x01);
    v.send_wire(&hex::decode(FRAME).unwrap()).await.unwrap();
    let t = sub.next_on("/telemetry", WAIT).await;
    let packs = &t.json["data"]["battery_voltages"];
    assert_eq!(
        packs[0]["cell_voltages_mv"],
        serde_json::json!([5000]),
        "{packs}"
    );
    assert_eq!(
        packs[1]["cell_voltages_mv"],
        serde_json::json!([5001]),
        "{packs}"
    );
    assert!(packs[0].get("cell_voltages_v").is_none(), "{packs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn time_calibration_answers_with_beijing_time_whatever_the_host_zone() {
    let vgate = Vgate::start(VgateOptions {
        extra_env: vec![("TZ".into(), "America/New_York".into())],
        ..Default::default()
    });
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), "LVGBT000000000200", Edition::V2016)
        .await
        .unwrap();
    assert_eq!(v.login().await.unwrap().flag, 0x01);
    let r = v.time_calibration().await.unwrap();
    assert_eq!(r.flag, 0x01);
    let t = r
        .time
        .expect("a time in the answer")
        .to_utc(8 * 3600)
        .unwrap();
    let skew = (chrono::Utc::now() - t).num_seconds().abs();
    assert!(skew < 120, "reply time is Beijing time (skew {skew} s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_realtime_frame_gets_an_error_flag_and_the_session_goes_on() {
    let vgate = Vgate::start(VgateOptions::default());
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), "LVGBT000000000300", Edition::V2016)
        .await
        .unwrap();
    assert_eq!(v.login().await.unwrap().flag, 0x01);
    let reply = v.send_bad_checksum_realtime().await.unwrap();
    assert_eq!(reply.flag, 0x02, "error flag");
    assert_eq!(
        v.heartbeat().await.unwrap().flag,
        0x01,
        "the connection still works"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_before_login_are_ignored_and_the_pre_login_timeout_closes() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[gbt32960]\nlogin_timeout_s = 1\n".into()),
        ..Default::default()
    });
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &["vgate/v1/LVGBT000000000400/#"],
    )
    .await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), "LVGBT000000000400", Edition::V2016)
        .await
        .unwrap();
    v.realtime(&Drive::default(), false).await.unwrap();
    assert!(v.closed_within(Duration::from_secs(5)).await);
    assert!(
        sub.drain(Duration::from_millis(500)).await.is_empty(),
        "nothing published before login"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unlisted_vin_is_refused_with_an_error_flag_and_a_rejected_event() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("vins.txt");
    std::fs::write(&list, "LVGBT000000000500\n").unwrap();
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some(format!(
            "[gbt32960.auth]\nmode = \"allowlist\"\nallowlist_file = {:?}\n",
            list.display().to_string()
        )),
        ..Default::default()
    });
    let vin = "LVGBT000000000599";
    let mut sub =
        Subscriber::connect(vgate.mqtt_port().unwrap(), &[&format!("vgate/v1/{vin}/#")]).await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2016)
        .await
        .unwrap();
    assert_ne!(v.login().await.unwrap().flag, 0x01, "refused");
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "rejected");
    assert!(v.closed_within(WAIT).await);
    assert!(sub
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|m| !m.topic.ends_with("/telemetry")));

    let mut ok = Vehicle::connect(vgate.addr("gbt32960"), "LVGBT000000000500", Edition::V2025)
        .await
        .unwrap();
    assert_eq!(ok.login().await.unwrap().flag, 0x01, "a listed VIN logs in");
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_is_retained_for_a_platform_client_that_subscribes_later() {
    let vgate = Vgate::start(VgateOptions::default());
    let vin = "LVGBT000000000600";
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2016)
        .await
        .unwrap();
    assert_eq!(v.login().await.unwrap().flag, 0x01);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut late = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{vin}/status")],
    )
    .await;
    let st = late.next_on("/status", WAIT).await;
    assert!(st.retain, "retained");
    assert_eq!(st.json["data"]["online"], true);
    assert_eq!(st.json["data"]["protocol"], "gbt32960-2016");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_vehicle_is_closed_and_marked_offline_with_reason_timeout() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[gbt32960]\nidle_timeout_s = 1\n".into()),
        ..Default::default()
    });
    let vin = "LVGBT000000000601";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{vin}/status")],
    )
    .await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2025)
        .await
        .unwrap();
    assert_eq!(v.login().await.unwrap().flag, 0x01);
    assert_eq!(
        sub.next_on("/status", WAIT).await.json["data"]["online"],
        true
    );
    assert!(v.closed_within(Duration::from_secs(5)).await);
    let off = sub.next_on("/status", WAIT).await;
    assert_eq!(off.json["data"]["reason"], "timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_login_is_checked_against_the_configured_credentials() {
    use gbt32960::msg::PlatformLogin;
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some(
            "[[gbt32960.platform_users]]\nuser = \"oem-a\"\npassword = \"s3cret\"\n".into(),
        ),
        ..Default::default()
    });
    let login = |password: &str| {
        gbt32960::Message::PlatformLogin(PlatformLogin {
            time: codecs::time::LocalTime::from_utc(chrono::Utc::now(), 8 * 3600),
            seq: 1,
            user: "oem-a".into(),
            password: password.into(),
            encryption_rule: 0x01,
        })
    };
    let mut bad = Vehicle::connect(vgate.addr("gbt32960"), "PLATFORMA00000001", Edition::V2016)
        .await
        .unwrap();
    bad.send(&login("wrong")).await.unwrap();
    assert_ne!(
        bad.answer_to(0x05, WAIT).await.unwrap().flag,
        0x01,
        "bad password refused"
    );
    assert!(bad.closed_within(WAIT).await);

    let mut ok = Vehicle::connect(vgate.addr("gbt32960"), "PLATFORMA00000001", Edition::V2016)
        .await
        .unwrap();
    ok.send(&login("s3cret")).await.unwrap();
    assert_eq!(ok.answer_to(0x05, WAIT).await.unwrap().flag, 0x01);
}
