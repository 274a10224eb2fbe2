//! Black-box tests of downstream commands: the real `vgate` binary, a platform publishing
//! commands on MQTT, simulated vehicles answering (or not) on TCP.

mod support;

use std::time::Duration;

use gateway::simulate::gbt32960::Vehicle;
use gateway::simulate::jt808::Terminal;
use gateway::simulate::Device;
use gbt32960::Edition;
use jt808::{Header, Message, Version};
use rumqttc::QoS;
use support::{Mosquitto, Received, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(10);

async fn command(sub: &Subscriber, vehicle: &str, json: &str) {
    sub.client
        .publish(
            format!("vgate/v1/{vehicle}/cmd"),
            QoS::AtLeastOnce,
            false,
            json.as_bytes().to_vec(),
        )
        .await
        .expect("publish command");
}

async fn result(sub: &mut Subscriber) -> Received {
    sub.next_on("/cmd/result", WAIT).await
}

async fn online_terminal(vgate: &Vgate, phone: &str) -> Terminal {
    support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await
}

/// Waits for a platform message with id `msg_id` without answering it.
async fn next_downlink(t: &mut Terminal, msg_id: u16) -> (Header, Message) {
    support::next_downlink(t, msg_id, WAIT).await
}

async fn online_text_is_sent_then_acked(port: u16, vgate: &Vgate, phone: &str) {
    let mut sub = Subscriber::connect(port, &[&format!("vgate/v1/{phone}/cmd/result")]).await;
    let mut t = online_terminal(vgate, phone).await;
    command(
        &sub,
        phone,
        r#"{"id":"t-1","type":"text","params":{"text":"hello driver"}}"#,
    )
    .await;
    let (h, m) = next_downlink(&mut t, 0x8300).await;
    t.answer(&h, &m).await.unwrap();
    let r = result(&mut sub).await;
    assert_eq!(
        (
            r.json["data"]["id"].as_str(),
            r.json["data"]["status"].as_str()
        ),
        (Some("t-1"), Some("sent")),
        "{:?}",
        r.json
    );
    let r = result(&mut sub).await;
    assert_eq!(r.json["data"]["status"], "acked", "{:?}", r.json);
    assert_eq!(r.json["type"], "cmd_result");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_to_an_online_terminal_is_sent_and_acked_on_the_embedded_broker() {
    let vgate = Vgate::start(VgateOptions::default());
    online_text_is_sent_then_acked(vgate.mqtt_port().unwrap(), &vgate, "013900000001").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_to_an_online_terminal_is_sent_and_acked_through_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    // The gateway subscribes once connected; give it a moment on an external broker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    online_text_is_sent_then_acked(m.port, &vgate, "013900000002").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn query_location_is_acked_with_the_typed_answer() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013900000003";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/#")],
    )
    .await;
    let mut t = online_terminal(&vgate, phone).await;
    command(&sub, phone, r#"{"id":"q-1","type":"query_location"}"#).await;
    let (h, m) = next_downlink(&mut t, 0x8201).await;
    t.answer(&h, &m).await.unwrap();
    let acked = loop {
        let r = result(&mut sub).await;
        if r.json["data"]["status"] == "acked" {
            break r;
        }
        assert_eq!(r.json["data"]["status"], "sent");
    };
    assert_eq!(acked.json["data"]["id"], "q-1");
    assert!(
        acked.json["data"]["response"].is_object(),
        "typed response: {:?}",
        acked.json
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_for_an_offline_terminal_are_queued_then_delivered_by_priority_then_age() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013900000004";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/cmd/result")],
    )
    .await;
    for (id, prio) in [("low", 1), ("high-a", 8), ("mid", 5), ("high-b", 8)] {
        let json = format!(
            r#"{{"id":"{id}","type":"text","params":{{"text":"{id}"}},"priority":{prio}}}"#
        );
        command(&sub, phone, &json).await;
        let r = result(&mut sub).await;
        assert_eq!(
            (
                r.json["data"]["id"].as_str(),
                r.json["data"]["status"].as_str()
            ),
            (Some(id), Some("queued"))
        );
    }
    // The same id again is the same command: no second result, no second delivery.
    command(
        &sub,
        phone,
        r#"{"id":"mid","type":"text","params":{"text":"mid"}}"#,
    )
    .await;

    let mut t = online_terminal(&vgate, phone).await;
    let mut order = Vec::new();
    while order.len() < 4 {
        let (h, m) = next_downlink(&mut t, 0x8300).await;
        let text = serde_json::to_value(&m).unwrap().to_string();
        let id = ["high-a", "high-b", "mid", "low"]
            .into_iter()
            .find(|id| text.contains(&hex::encode(id.as_bytes())) || text.contains(id))
            .expect("known text");
        order.push(id);
        t.answer(&h, &m).await.unwrap();
    }
    assert_eq!(order, ["high-a", "high-b", "mid", "low"]);
    let results = sub.drain(Duration::from_secs(2)).await;
    let acked = results
        .iter()
        .filter(|r| r.json["data"]["status"] == "acked")
        .count();
    assert_eq!(acked, 4, "{results:?}");
    assert!(
        !results.iter().any(|r| r.json["data"]["status"] == "queued"),
        "the duplicate got no result: {results:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_command_is_rejected_naming_the_field() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013900000005";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/cmd/result")],
    )
    .await;
    let _t = online_terminal(&vgate, phone).await;
    command(&sub, phone, r#"{"id":"bad-1","type":"text","params":{}}"#).await;
    let r = result(&mut sub).await;
    assert_eq!(r.json["data"]["status"], "rejected");
    assert!(
        r.json["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("params.text"),
        "{:?}",
        r.json
    );
    command(&sub, phone, r#"{"id":"bad-2","type":"warp_drive"}"#).await;
    let r = result(&mut sub).await;
    assert_eq!(r.json["data"]["status"], "rejected");
    command(&sub, phone, "not json").await;
    let r = result(&mut sub).await;
    assert_eq!(r.json["data"]["status"], "rejected");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_command_is_retried_then_failed() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[commands]\ntimeout_s = 1\nretries = 1\n".into()),
        ..Default::default()
    });
    let phone = "013900000006";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/cmd/result")],
    )
    .await;
    let mut t = online_terminal(&vgate, phone).await;
    command(
        &sub,
        phone,
        r#"{"id":"r-1","type":"text","params":{"text":"anyone?"}}"#,
    )
    .await;
    let (first, _) = next_downlink(&mut t, 0x8300).await;
    let (second, _) = next_downlink(&mut t, 0x8300).await;
    assert_ne!(first.serial, second.serial, "a retry is a new message");
    let statuses: Vec<String> = loop {
        let all = sub.drain(Duration::from_secs(4)).await;
        let s: Vec<String> = all
            .iter()
            .map(|r| r.json["data"]["status"].as_str().unwrap_or("").to_owned())
            .collect();
        if !s.is_empty() {
            break s;
        }
    };
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("failed"),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_command_expires_when_its_ttl_passes() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013900000007";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/cmd/result")],
    )
    .await;
    command(
        &sub,
        phone,
        r#"{"id":"e-1","type":"query_location","ttl_s":1}"#,
    )
    .await;
    assert_eq!(result(&mut sub).await.json["data"]["status"], "queued");
    let r = result(&mut sub).await;
    assert_eq!(r.json["data"]["status"], "expired", "{:?}", r.json);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_command_survives_a_restart() {
    let opts = VgateOptions::default();
    let mut vgate = Vgate::start(opts.clone());
    let phone = "013900000008";
    {
        let mut sub = Subscriber::connect(
            vgate.mqtt_port().unwrap(),
            &[&format!("vgate/v1/{phone}/cmd/result")],
        )
        .await;
        command(&sub, phone, r#"{"id":"s-1","type":"query_location"}"#).await;
        assert_eq!(result(&mut sub).await.json["data"]["status"], "queued");
    }
    let st = tokio::task::block_in_place(|| vgate.terminate());
    assert!(st.success());
    let dir = std::mem::replace(&mut vgate.data_dir, tempfile::tempdir().unwrap());
    let vgate = Vgate::start_in(opts, dir);
    let mut t = online_terminal(&vgate, phone).await;
    let (h, _) = next_downlink(&mut t, 0x8201).await;
    assert_eq!(h.phone, phone);
}

#[tokio::test(flavor = "multi_thread")]
async fn gbt32960_query_params_is_sent_and_acked() {
    let vgate = Vgate::start(VgateOptions::default());
    let vin = "LVGBT000000000700";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{vin}/cmd/result")],
    )
    .await;
    let mut v = Vehicle::connect(vgate.addr("gbt32960"), vin, Edition::V2016)
        .await
        .unwrap();
    assert_eq!(v.login().await.unwrap().flag, 0x01);
    command(&sub, vin, r#"{"id":"g-1","type":"query_params","params":{"ids":["report_period_s","heartbeat_period_s"]}}"#).await;
    // The simulated vehicle answers commands while it waits for its heartbeat's answer.
    let _ = v.heartbeat().await.unwrap();
    let mut statuses = Vec::new();
    while !statuses.contains(&"acked".to_owned()) {
        let r = result(&mut sub).await;
        statuses.push(r.json["data"]["status"].as_str().unwrap_or("").to_owned());
        if statuses.len() == 1 {
            // The answer may come before or after our heartbeat; read frames a while.
            let _ = v.heartbeat().await;
        }
    }
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("sent"),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadcast_reaches_online_vehicles_and_queues_for_offline_ones() {
    const ONLINE: usize = 800;
    const OFFLINE: usize = 200;
    let vgate = Vgate::start(VgateOptions::default());
    let mut sub = Subscriber::connect(vgate.mqtt_port().unwrap(), &["vgate/v1/+/cmd/result"]).await;
    let logins = (0..ONLINE + OFFLINE).map(|i| {
        let addr = vgate.addr("jt808");
        tokio::spawn(async move {
            let phone = format!("0139100{i:05}");
            let t = support::online_terminal(addr, &phone, Version::V2013).await;
            t
        })
    });
    let mut online: Vec<Terminal> = futures::future::join_all(logins)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    // Seen, then gone: still members of the group, served from the queue.
    for mut t in online.drain(ONLINE..) {
        let _ = t.logout().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = std::time::Instant::now();
    sub.client
        .publish(
            "vgate/broadcast/jt808/cmd",
            QoS::AtLeastOnce,
            false,
            br#"{"id":"b-1","type":"text","params":{"text":"storm ahead"}}"#.to_vec(),
        )
        .await
        .unwrap();
    let answering = online.into_iter().map(|mut t| {
        tokio::spawn(async move {
            let (h, m) = next_downlink(&mut t, 0x8300).await;
            t.answer(&h, &m).await.unwrap();
            t
        })
    });
    let terminals: Vec<Terminal> = futures::future::join_all(answering)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut acked = std::collections::BTreeSet::new();
    let mut queued = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (acked.len() < ONLINE || queued.len() < OFFLINE) && tokio::time::Instant::now() < deadline
    {
        let r = result(&mut sub).await;
        assert_eq!(r.json["data"]["id"], "b-1");
        let vid = r.json["vehicle_id"].as_str().unwrap().to_owned();
        match r.json["data"]["status"].as_str().unwrap() {
            "acked" => {
                acked.insert(vid);
            }
            "queued" => {
                queued.insert(vid);
            }
            _ => {}
        }
    }
    assert_eq!((acked.len(), queued.len()), (ONLINE, OFFLINE));
    eprintln!(
        "broadcast: {ONLINE} online vehicles acked and {OFFLINE} queued in {:?}",
        published.elapsed()
    );
    drop(terminals);
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt5_results_go_to_the_response_topic_with_the_correlation_data() {
    use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::{AsyncClient as Client5, Event as Event5, MqttOptions as Options5};

    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some("[mqtt]\nprotocol = \"5\"\n".into()),
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (platform, mut ev) = Client5::new(Options5::new("platform-v5", "127.0.0.1", m.port), 64);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event5::Incoming(Packet5::Publish(p))) => {
                    let _ = tx.send(p);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    platform
        .subscribe("app/replies/#", QoS5::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let phone = "013900000009";
    let mut t = online_terminal(&vgate, phone).await;
    let props = PublishProperties {
        response_topic: Some("app/replies/7".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"corr-7")),
        ..Default::default()
    };
    platform
        .publish_with_properties(
            format!("vgate/v1/{phone}/cmd"),
            QoS5::AtLeastOnce,
            false,
            r#"{"id":"m5","type":"query_location"}"#,
            props,
        )
        .await
        .unwrap();
    let (h, msg) = next_downlink(&mut t, 0x8201).await;
    t.answer(&h, &msg).await.unwrap();
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("acked") {
        let p = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("a result in time")
            .expect("open");
        assert_eq!(&p.topic[..], b"app/replies/7");
        let corr = p
            .properties
            .as_ref()
            .and_then(|pr| pr.correlation_data.clone());
        assert_eq!(corr.as_deref(), Some(&b"corr-7"[..]));
        let json: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(json["data"]["id"], "m5");
        statuses.push(json["data"]["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["sent", "acked"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_command_survives_sigkill() {
    let opts = VgateOptions::default();
    let mut vgate = Vgate::start(opts.clone());
    let phone = "013900000010";
    {
        let mut sub = Subscriber::connect(
            vgate.mqtt_port().unwrap(),
            &[&format!("vgate/v1/{phone}/cmd/result")],
        )
        .await;
        command(
            &sub,
            phone,
            r#"{"id":"k-1","type":"text","params":{"text":"after the crash"},"priority":9}"#,
        )
        .await;
        assert_eq!(result(&mut sub).await.json["data"]["status"], "queued");
    }
    // `queued` is published after the command is committed: a SIGKILL now loses nothing.
    vgate.kill();
    let dir = std::mem::replace(&mut vgate.data_dir, tempfile::tempdir().unwrap());
    let vgate = Vgate::start_in(opts, dir);
    let mut t = online_terminal(&vgate, phone).await;
    let (_, m) = next_downlink(&mut t, 0x8300).await;
    assert!(
        serde_json::to_string(&m)
            .unwrap()
            .contains(&hex::encode("after the crash"))
            || format!("{m:?}").contains("after the crash"),
        "{m:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_group_reaches_its_ids_and_prefixes_and_no_one_else() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[commands.groups]\nnorth = [\"013920000001\", \"0139300*\"]\n".into()),
        ..Default::default()
    });
    let mut sub = Subscriber::connect(vgate.mqtt_port().unwrap(), &["vgate/v1/+/cmd/result"]).await;
    let by_id = online_terminal(&vgate, "013920000001").await;
    let by_prefix = online_terminal(&vgate, "013930000005").await;
    let mut outsider = online_terminal(&vgate, "013940000009").await;
    sub.client
        .publish(
            "vgate/broadcast/north/cmd",
            QoS::AtLeastOnce,
            false,
            br#"{"id":"g-1","type":"text","params":{"text":"north only"}}"#.to_vec(),
        )
        .await
        .unwrap();
    let answering = [by_id, by_prefix].map(|mut t| {
        tokio::spawn(async move {
            let (h, m) = next_downlink(&mut t, 0x8300).await;
            let Message::Text(text) = &m else {
                panic!("a text, got {m:?}")
            };
            assert_eq!(text.text, "north only");
            t.answer(&h, &m).await.unwrap();
            t
        })
    });
    let _members = futures::future::join_all(answering).await;
    let mut acked = std::collections::BTreeSet::new();
    while acked.len() < 2 {
        let r = result(&mut sub).await;
        assert_eq!(r.json["data"]["id"], "g-1");
        let vid = r.json["vehicle_id"].as_str().unwrap().to_owned();
        assert_ne!(
            vid, "013940000009",
            "a result for a vehicle outside the group"
        );
        if r.json["data"]["status"] == "acked" {
            acked.insert(vid);
        }
    }
    assert_eq!(
        acked.into_iter().collect::<Vec<_>>(),
        ["013920000001", "013930000005"]
    );
    // Both members have answered: a copy for the outsider would have been sent by now.
    let stray = tokio::time::timeout(
        Duration::from_millis(500),
        next_downlink(&mut outsider, 0x8300),
    )
    .await;
    assert!(stray.is_err(), "the outsider got {stray:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn impossible_vehicle_ids_and_unknown_groups_are_rejected_on_the_gateway_result_topic() {
    let vgate = Vgate::start(VgateOptions::default());
    let port = vgate.mqtt_port().unwrap();
    let mut sub = Subscriber::connect(port, &["vgate/gateway/test-node/cmd/result"]).await;
    command(&sub, "bad.id", r#"{"id":"b-1","type":"query_location"}"#).await;
    let r = sub.next_on("/cmd/result", WAIT).await;
    assert_eq!(r.json["type"], "cmd_result", "{:?}", r.json);
    assert_eq!(r.json["vehicle_id"], "bad.id");
    assert_eq!(r.json["data"]["id"], "b-1");
    assert_eq!(r.json["data"]["status"], "rejected");
    assert!(
        r.json["data"]["reason"]
            .as_str()
            .is_some_and(|s| s.contains("vehicle id")),
        "{:?}",
        r.json
    );
    assert!(r.json["protocol"].is_null(), "{:?}", r.json);

    sub.client
        .publish(
            "vgate/broadcast/nosuchgroup/cmd",
            QoS::AtLeastOnce,
            false,
            r#"{"id":"g-1","type":"query_location"}"#.as_bytes().to_vec(),
        )
        .await
        .expect("publish");
    let r = sub.next_on("/cmd/result", WAIT).await;
    assert_eq!(
        r.json["vehicle_id"], "broadcast/nosuchgroup",
        "{:?}",
        r.json
    );
    assert_eq!(r.json["data"]["id"], "g-1");
    assert_eq!(r.json["data"]["status"], "rejected");
    assert!(
        r.json["data"]["reason"]
            .as_str()
            .is_some_and(|s| s.contains("unknown broadcast group")),
        "{:?}",
        r.json
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_for_a_vehicle_never_seen_is_queued_with_no_protocol() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013900000077";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/cmd/result")],
    )
    .await;
    command(&sub, phone, r#"{"id":"n-1","type":"query_location"}"#).await;
    let r = result(&mut sub).await;
    assert_eq!(r.json["data"]["status"], "queued", "{:?}", r.json);
    assert!(
        r.json["protocol"].is_null(),
        "not `raw`: vgate does not know what this vehicle speaks yet: {:?}",
        r.json
    );
}
