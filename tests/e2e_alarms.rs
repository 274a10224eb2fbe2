//! Black-box tests of `alarm` events (contract §3 `alarm.data`): the real `vgate` binary
//! publishing to a Mosquitto of our own, a JT/T 808 terminal and GB/T 32960 vehicles of both
//! editions on TCP. Each path: raised on the first report that sets an alarm, nothing on
//! the next identical report, cleared when the bit goes back to 0, and a reissue (0x0704
//! type 1, GB/T 32960 0x03) neither raises nor clears.
//!
//! "Nothing was published" is checked by order rather than by waiting: the events of one
//! vehicle come on its alarm topic in report order, so after a report that must publish
//! nothing, the next alarm event must be the one of the report after it.

mod support;

use std::time::Duration;

use gateway::simulate::gbt32960::{Drive, Vehicle};
use gateway::simulate::jt808::Fix;
use gateway::simulate::Device;
use gbt32960::Edition;
use jt808::Version;
use support::{Mosquitto, Received, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(10);

const EMERGENCY: u32 = 1;
const FATIGUE: u32 = 1 << 2;
const OVERSPEED: u32 = 1 << 1;
const COLLISION: u32 = 1 << 29;

async fn next_alarm(sub: &mut Subscriber) -> Received {
    let a = sub.next_on("/alarm", WAIT).await;
    assert_eq!(a.json["type"], "alarm", "{}", a.json);
    a
}

fn name_state(a: &Received) -> (String, String) {
    (
        a.json["data"]["name"].as_str().unwrap_or("?").to_owned(),
        a.json["data"]["state"].as_str().unwrap_or("?").to_owned(),
    )
}

fn pair(name: &str, state: &str) -> (String, String) {
    (name.to_owned(), state.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn jt808_alarms_raise_once_clear_once_and_a_reissue_batch_changes_nothing() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    let phone = "013800138077";
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/alarm")]).await;
    let mut t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await;
    let fix = |alarm: u32| Fix {
        alarm,
        speed_kmh: 88.0,
        ..Fix::default()
    };

    // Raise: the first report after login raises what is set, lowest bit first.
    assert_eq!(t.report(&fix(EMERGENCY | COLLISION)).await.unwrap(), 0);
    let a = next_alarm(&mut sub).await;
    assert_eq!(a.topic, format!("vgate/v1/{phone}/alarm"));
    assert_eq!(a.json["vehicle_id"], phone);
    assert_eq!(a.json["protocol"], "jt808-2013");
    assert_eq!(a.json["reissue"], false);
    assert_eq!(name_state(&a), pair("emergency", "raised"));
    assert_eq!(a.json["data"]["bit"], 0);
    assert!((a.json["data"]["speed_kmh"].as_f64().unwrap() - 88.0).abs() < 1e-6);
    assert!(a.json["msg_seq"].is_u64(), "the serial 0x8203 confirms");
    assert!(
        a.json["data"].get("level").is_none(),
        "no level in JT/T 808"
    );
    assert_eq!(
        name_state(&next_alarm(&mut sub).await),
        pair("collision", "raised")
    );

    // No duplicate: an identical report publishes nothing...
    assert_eq!(t.report(&fix(EMERGENCY | COLLISION)).await.unwrap(), 0);
    // ...nor does a reissue batch that would clear one alarm and raise another...
    assert_eq!(
        t.report_batch(&[fix(0), fix(OVERSPEED)], true)
            .await
            .unwrap(),
        0
    );
    // ...so the next event is this report's: emergency cleared.
    assert_eq!(t.report(&fix(COLLISION)).await.unwrap(), 0);
    assert_eq!(
        name_state(&next_alarm(&mut sub).await),
        pair("emergency", "cleared")
    );

    // A live batch (type 0) goes entry by entry.
    assert_eq!(
        t.report_batch(&[fix(COLLISION | FATIGUE), fix(0)], false)
            .await
            .unwrap(),
        0
    );
    let got: Vec<_> = [
        next_alarm(&mut sub).await,
        next_alarm(&mut sub).await,
        next_alarm(&mut sub).await,
    ]
    .iter()
    .map(name_state)
    .collect();
    assert_eq!(
        got,
        [
            pair("fatigue_driving", "raised"),
            pair("fatigue_driving", "cleared"),
            pair("collision", "cleared"),
        ]
    );
    let rest = sub.drain(Duration::from_millis(500)).await;
    assert!(rest.is_empty(), "nothing more: {rest:?}");
}

async fn gbt32960_alarm_path(vgate: &Vgate, sub_port: u16, vin: &str, edition: Edition) {
    let protocol = match edition {
        Edition::V2016 => "gbt32960-2016",
        Edition::V2025 => "gbt32960-2025",
    };
    let mut sub = Subscriber::connect(sub_port, &[&format!("vgate/v1/{vin}/alarm")]).await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, edition)
        .await
        .expect("connect");
    assert_eq!(v.login().await.expect("login").flag, 0x01);
    let drive = |alarm: Option<(u8, u32)>| Drive {
        alarm,
        ..Drive::default()
    };
    // Bit 1 battery high temperature, bit 11 insulation: level 3 (the most serious, 2016).
    v.realtime(&drive(Some((3, 1 << 1 | 1 << 11))), false)
        .await
        .unwrap();
    let a = next_alarm(&mut sub).await;
    assert_eq!(a.json["protocol"], protocol);
    assert_eq!(a.json["vehicle_id"], vin);
    assert_eq!(name_state(&a), pair("battery_high_temperature", "raised"));
    assert_eq!(a.json["data"]["level"], 3);
    assert_eq!(a.json["data"]["bit"], 1);
    assert_eq!(a.json["data"]["ress_faults"], serde_json::json!([]));
    let a = next_alarm(&mut sub).await;
    assert_eq!(name_state(&a), pair("insulation", "raised"));
    assert_eq!(a.json["data"]["level"], 3);

    // No duplicate; a report without an alarm unit says nothing; a reissue changes nothing.
    v.realtime(&drive(Some((3, 1 << 1 | 1 << 11))), false)
        .await
        .unwrap();
    v.realtime(&drive(None), false).await.unwrap();
    v.realtime(&drive(Some((1, 1 << 4))), true).await.unwrap();
    v.realtime(&drive(Some((0, 0))), true).await.unwrap();
    // The next event is this report's: soc_low raised (level 1), then insulation cleared.
    v.realtime(&drive(Some((1, 1 << 1 | 1 << 4))), false)
        .await
        .unwrap();
    let a = next_alarm(&mut sub).await;
    assert_eq!(name_state(&a), pair("soc_low", "raised"));
    assert_eq!(a.json["data"]["level"], 1);
    let a = next_alarm(&mut sub).await;
    assert_eq!(name_state(&a), pair("insulation", "cleared"));
    assert!(a.json["data"].get("level").is_none(), "{}", a.json);
    v.realtime(&drive(Some((0, 0))), false).await.unwrap();
    let got: Vec<_> = [next_alarm(&mut sub).await, next_alarm(&mut sub).await]
        .iter()
        .map(name_state)
        .collect();
    assert_eq!(
        got,
        [
            pair("battery_high_temperature", "cleared"),
            pair("soc_low", "cleared")
        ]
    );
    v.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn gbt32960_alarms_of_both_editions_raise_with_their_level_clear_and_ignore_reissue() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    gbt32960_alarm_path(&vgate, m.port, "LVALARM0000002016", Edition::V2016).await;
    gbt32960_alarm_path(&vgate, m.port, "LVALARM0000002025", Edition::V2025).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vehicle_that_logs_in_again_raises_its_alarm_again_at_the_configured_qos() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some("[mqtt.qos]\nalarm = 0\n".into()),
        ..Default::default()
    });
    let vin = "LVALARM00000QOS00";
    let topic = format!("vgate/v1/{vin}/alarm");
    let mut sub = Subscriber::connect(m.port, &[&topic]).await;
    let alarm = Drive {
        alarm: Some((2, 1 << 4)),
        ..Drive::default()
    };
    for _ in 0..2 {
        let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2016)
            .await
            .expect("connect");
        assert_eq!(v.login().await.expect("login").flag, 0x01);
        v.realtime(&alarm, false).await.unwrap();
        let p = sub.next_publish_on(&topic).await;
        assert_eq!(p.qos, rumqttc::QoS::AtMostOnce, "[mqtt.qos] alarm = 0");
        let json: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(json["data"]["name"], "soc_low");
        assert_eq!(json["data"]["state"], "raised");
        v.logout().await.unwrap();
        assert!(v.closed_within(WAIT).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raised_jt808_alarm_is_confirmed_with_alarm_confirm_from_its_event() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    let phone = "013800138078";
    let mut sub = Subscriber::connect(
        m.port,
        &[
            &format!("vgate/v1/{phone}/alarm"),
            &format!("vgate/v1/{phone}/cmd/result"),
        ],
    )
    .await;
    // The gateway subscribes to commands once connected; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t = support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await;
    let fix = Fix {
        alarm: EMERGENCY,
        ..Fix::default()
    };
    assert_eq!(t.report(&fix).await.unwrap(), 0);
    let a = next_alarm(&mut sub).await;
    let serial = a.json["msg_seq"].as_u64().expect("msg_seq");
    let cmd = serde_json::json!({"id": "ack-1", "type": "alarm_confirm",
        "params": {"alarm_serial": serial, "alarms": [a.json["data"]["name"]]}});
    sub.client
        .publish(
            format!("vgate/v1/{phone}/cmd"),
            rumqttc::QoS::AtLeastOnce,
            false,
            cmd.to_string().into_bytes(),
        )
        .await
        .expect("publish command");
    let (h, msg) = t
        .wait_for(WAIT, |h, m| {
            matches!(m, jt808::Message::AlarmConfirm(_)).then(|| (h.clone(), m.clone()))
        })
        .await
        .expect("0x8203");
    let jt808::Message::AlarmConfirm(confirm) = &msg else {
        unreachable!()
    };
    assert_eq!(u64::from(confirm.alarm_serial), serial);
    assert_eq!(confirm.alarm_type, EMERGENCY);
    // The terminal's 0x0001 answer acknowledges it.
    t.answer(&h, &msg).await.unwrap();
    let done = loop {
        let r = sub.next_on("/cmd/result", WAIT).await;
        if r.json["data"]["status"] != "sent" {
            break r;
        }
    };
    assert_eq!(done.json["data"]["id"], "ack-1");
    assert_eq!(done.json["data"]["status"], "acked", "{}", done.json);
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_vehicles_of_both_protocols_raise_and_clear_alarms_with_alarm_every() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    let mut sub = Subscriber::connect(m.port, &["vgate/v1/+/alarm"]).await;
    for (protocol, listener, alarm) in [
        ("jt808", "jt808", "emergency"),
        ("gbt32960", "gbt32960", "battery_high_temperature"),
    ] {
        let status = tokio::task::spawn_blocking({
            let target = vgate.addr(listener).to_string();
            move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_vgate"))
                    .args(["simulate", "--protocol", protocol, "--vehicles", "2"])
                    .args(["--rate", "20", "--duration", "2s", "--alarm-every", "5"])
                    .args(["--target", &target])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("run the simulator")
            }
        })
        .await
        .unwrap();
        assert!(status.success(), "{protocol}: {status}");
        let got = sub.drain(Duration::from_secs(1)).await;
        let count = |state: &str| {
            got.iter()
                .filter(|a| a.json["data"]["name"] == alarm && a.json["data"]["state"] == state)
                .count()
        };
        // 40 reports a vehicle: raised at 5, 15, 25, 35 and cleared at 10, 20, 30.
        assert!(count("raised") >= 4, "{protocol}: {got:?}");
        assert!(count("cleared") >= 2, "{protocol}: {got:?}");
    }
}
