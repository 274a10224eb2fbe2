//! `ack_when` seen from the terminal, against a Mosquitto that is stopped (SIGSTOP: the
//! connection stays up, nothing is acknowledged) after the terminal has logged in. The spool
//! would take the events after `spill_after_ms`, so that is set far beyond the test.
//!
//! - `durable` (the default): the 0x8001 of a location report waits for the broker's PUBACK;
//!   none comes while the broker is stopped, and it comes once the broker continues.
//! - `queued`: the 0x8001 comes while the broker is still stopped (the event is only in the
//!   MQTT queue), and the event is still published once the broker continues.
//! - GB/T 32960 data frames that arrive together wait for the broker together: all of them
//!   are read (and counted) while the broker is stopped, not one per broker round trip; and
//!   the one whose event the broker refuses (MQTT 5 PUBACK "not authorized") is answered with
//!   the error flag, so the vehicle keeps it for reissue, while the others are not answered;
//!   a JT/T 808 report the broker refuses gets 0x8001 result 1.

mod support;

use std::time::Duration;

use gateway::simulate::gbt32960::{Drive, Vehicle};
use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use gbt32960::Edition;
use jt808::{Message, Version};
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

/// Starts vgate on `m` with `config_toml`, subscribes to `topic` and logs a JT/T 808 terminal in.
async fn logged_in(
    m: &Mosquitto,
    config_toml: &str,
    phone: &str,
    topic: &str,
) -> (Vgate, Terminal, Subscriber) {
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some(config_toml.to_owned()),
        ..Default::default()
    });
    let sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/{topic}")]).await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .expect("connect");
    let code = t.register().await.expect("0x8100").auth_code.expect("code");
    assert_eq!(t.authenticate(&code).await.expect("0x8001"), 0);
    (vgate, t, sub)
}

/// vgate with `ack_when` and a spool that does not take over within a test.
fn ack_when(ack_when: &str) -> String {
    format!("[mqtt.spool]\nspill_after_ms = 600000\n[jt808]\nack_when = \"{ack_when}\"\n")
}

/// Starts vgate on `m` with `config_toml`, subscribes to `topic` and logs a GB/T 32960 vehicle in.
async fn gbt_logged_in(
    m: &Mosquitto,
    config_toml: &str,
    vin: &str,
    topic: &str,
) -> (Vgate, Vehicle, Subscriber) {
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some(config_toml.to_owned()),
        ..Default::default()
    });
    let sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{vin}/{topic}")]).await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2016)
        .await
        .expect("connect");
    assert_eq!(v.login().await.expect("login").flag, 0x01);
    (vgate, v, sub)
}

fn report() -> Message {
    Message::Location(
        Fix {
            latitude: 22.54321,
            ..Fix::default()
        }
        .report(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn durable_answers_a_report_only_once_the_broker_has_its_event() {
    let Some(m) = Mosquitto::start() else { return };
    let phone = "013700000001";
    let (_vgate, mut t, mut sub) = logged_in(&m, &ack_when("durable"), phone, "location").await;

    m.signal("STOP");
    let serial = t.send(&report()).await.expect("send");
    let answer = t
        .wait_for(Duration::from_secs(2), |_, msg| match msg {
            Message::PlatformResponse(r) if r.reply_serial == serial => Some(r.result),
            _ => None,
        })
        .await;
    assert!(
        answer.is_err(),
        "answered {answer:?} while the broker could not have the event"
    );

    m.signal("CONT");
    assert_eq!(t.general_answer_for(serial).await.expect("0x8001"), 0);
    let got = sub.next_on("/location", Duration::from_secs(10)).await;
    assert_eq!(got.json["msg_seq"], u64::from(serial));
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_answers_a_report_while_the_broker_is_stuck_and_still_publishes_it() {
    let Some(m) = Mosquitto::start() else { return };
    let phone = "013700000002";
    let (_vgate, mut t, mut sub) = logged_in(&m, &ack_when("queued"), phone, "location").await;

    m.signal("STOP");
    let serial = t.send(&report()).await.expect("send");
    assert_eq!(
        t.general_answer_for(serial).await.expect("0x8001"),
        0,
        "answered once queued, broker stopped"
    );

    m.signal("CONT");
    let got = sub.next_on("/location", Duration::from_secs(10)).await;
    assert_eq!(got.json["msg_seq"], u64::from(serial));
}

/// The `vgate_frames_in_total` count of GB/T 32960 real-time frames, from /metrics.
async fn gbt_realtime_frames_in(vgate: &Vgate) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(vgate.addr("http"))
        .await
        .expect("connect http");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("metrics");
    body.lines()
        .filter(|l| {
            l.starts_with("vgate_frames_in_total{")
                && l.contains("protocol=\"gbt32960\"")
                && l.contains("msg_id=\"0x02\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn gbt32960_data_frames_read_together_wait_for_the_broker_together() {
    let Some(m) = Mosquitto::start() else { return };
    let config = "[mqtt.spool]\nspill_after_ms = 600000\n";
    let (vgate, mut v, mut sub) = gbt_logged_in(&m, config, "LVGATEACKWHEN0001", "telemetry").await;

    m.signal("STOP");
    let drives: Vec<Drive> = (1..=5)
        .map(|i| Drive {
            speed_kmh: 10.0 * f64::from(i),
            ..Drive::default()
        })
        .collect();
    v.realtime_burst(&drives, false).await.expect("send");
    // All five are taken in while the first one's events wait for the broker. One frame at a
    // time, the session would read the second only after the first's PUBACK.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut read = 0;
    while tokio::time::Instant::now() < deadline {
        read = gbt_realtime_frames_in(&vgate).await;
        if read == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read, 5, "real-time frames read while the broker is stopped");

    m.signal("CONT");
    for d in &drives {
        let got = sub.next_on("/telemetry", Duration::from_secs(10)).await;
        let speed = got.json["data"]["vehicle"]["speed_kmh"]
            .as_f64()
            .expect("speed");
        assert!(
            (speed - d.speed_kmh).abs() < 1e-6,
            "in order: {speed} for {}",
            d.speed_kmh
        );
    }
    // No answer to correct data frames whose events are durable (6.3.2), and the session
    // goes on.
    let answer = v.answer_to(0x02, Duration::from_millis(500)).await;
    assert!(
        answer.is_err(),
        "a published data frame was answered: {answer:?}"
    );
    assert_eq!(v.heartbeat().await.expect("heartbeat").flag, 0x01);
}

#[tokio::test(flavor = "multi_thread")]
async fn gbt32960_data_the_broker_refuses_is_answered_with_the_error_flag() {
    // A real-time frame's events go to telemetry (refused here) and location (accepted).
    let Some(m) = Mosquitto::start_with_acl("topic readwrite #\ntopic deny vgate/v1/+/telemetry\n")
    else {
        return;
    };
    let config = "[mqtt]\nprotocol = \"5\"\n";
    let (_vgate, mut v, mut sub) = gbt_logged_in(&m, config, "LVGATEACKWHEN0002", "location").await;

    let drive = Drive {
        latitude: 31.230416,
        longitude: 121.473701,
        ..Drive::default()
    };
    v.realtime_burst(&[drive.clone(), drive], false)
        .await
        .expect("send");
    let first = v
        .answer_to(0x02, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert_eq!(first.flag, 0x02, "error flag for refused data");
    let second = v
        .answer_to(0x02, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert_eq!(second.flag, 0x02, "error flag for refused data");
    // What the broker accepted was published, and the session goes on.
    sub.next_on("/location", Duration::from_secs(10)).await;
    assert_eq!(v.heartbeat().await.expect("heartbeat").flag, 0x01);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jt808_report_the_broker_refuses_is_answered_with_result_1() {
    let Some(m) = Mosquitto::start_with_acl("topic readwrite #\ntopic deny vgate/v1/+/location\n")
    else {
        return;
    };
    let config = "[mqtt]\nprotocol = \"5\"\n";
    let (_vgate, mut t, _sub) = logged_in(&m, config, "013700000003", "location").await;
    let serial = t.send(&report()).await.expect("send");
    assert_eq!(
        t.general_answer_for(serial).await.expect("0x8001"),
        1,
        "failure: the terminal keeps the report"
    );
    // The connection to the broker was not dropped for it: a heartbeat is still answered.
    let hb = t
        .send(&Message::Heartbeat { extra: Vec::new() })
        .await
        .expect("send");
    assert_eq!(t.general_answer_for(hb).await.expect("0x8001"), 0);
}
