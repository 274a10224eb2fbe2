//! `ack_when` seen from the terminal, against a Mosquitto that is stopped (SIGSTOP: the
//! connection stays up, nothing is acknowledged) after the terminal has logged in. The spool
//! would take the events after `spill_after_ms`, so that is set far beyond the test.
//!
//! - `durable` (the default): the 0x8001 of a location report waits for the broker's PUBACK;
//!   none comes while the broker is stopped, and it comes once the broker continues.
//! - `queued`: the 0x8001 comes while the broker is still stopped (the event is only in the
//!   MQTT queue), and the event is still published once the broker continues.

mod support;

use std::time::Duration;

use gateway::simulate::jt808::{Fix, Terminal};
use jt808::{Message, Version};
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

/// Starts vgate on `m` with `ack_when`, logs a terminal in, subscribes to its locations.
async fn logged_in(m: &Mosquitto, ack_when: &str, phone: &str) -> (Vgate, Terminal, Subscriber) {
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some(format!(
            "[mqtt.spool]\nspill_after_ms = 600000\n[jt808]\nack_when = \"{ack_when}\"\n"
        )),
        ..Default::default()
    });
    let sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/location")]).await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .expect("connect");
    let code = t.register().await.expect("0x8100").auth_code.expect("code");
    assert_eq!(t.authenticate(&code).await.expect("0x8001"), 0);
    (vgate, t, sub)
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
    let (_vgate, mut t, mut sub) = logged_in(&m, "durable", phone).await;

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
    let (_vgate, mut t, mut sub) = logged_in(&m, "queued", phone).await;

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
