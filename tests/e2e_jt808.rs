//! Black-box tests: the real `vgate` binary, a JT/T 808 terminal on TCP, and a platform
//! client on MQTT (the embedded broker, and a Mosquitto of our own).

mod support;

use std::time::Duration;

use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use jt808::Version;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(10);

async fn register_authenticate_and_report(
    vgate: &Vgate,
    mqtt_port: u16,
    phone: &str,
    version: Version,
) {
    let mut sub = Subscriber::connect(mqtt_port, &[&format!("vgate/v1/{phone}/#")]).await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, version)
        .await
        .expect("connect");
    let reg = t.register().await.expect("register");
    assert_eq!(reg.result, 0, "0x8100 result");
    let code = reg.auth_code.expect("auth code");
    assert!(!code.is_empty());
    assert_eq!(
        t.authenticate(&code).await.expect("authenticate"),
        0,
        "0x8001 result for 0x0102"
    );

    let protocol = match version {
        Version::V2019 => "jt808-2019",
        _ => "jt808-2013",
    };
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "register");
    assert_eq!(lc.json["protocol"], protocol);
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "authenticate");
    let st = sub.next_on("/status", WAIT).await;
    assert!(st.json["data"]["online"].as_bool().unwrap());
    assert_eq!(st.json["data"]["protocol"], protocol);

    let fix = Fix {
        latitude: 22.543096,
        longitude: -114.057865,
        speed_kmh: 36.5,
        heading_deg: 90,
        altitude_m: 12,
        ..Default::default()
    };
    assert_eq!(
        t.report(&fix).await.expect("0x0200"),
        0,
        "0x8001 result for 0x0200"
    );
    let loc = sub.next_on("/location", WAIT).await;
    assert_eq!(loc.topic, format!("vgate/v1/{phone}/location"));
    assert_eq!(loc.json["vehicle_id"], phone);
    assert_eq!(loc.json["protocol"], protocol);
    assert_eq!(loc.json["gateway"], "test-node");
    assert!((loc.json["data"]["latitude"].as_f64().unwrap() - 22.543096).abs() < 1e-6);
    assert!(
        (loc.json["data"]["longitude"].as_f64().unwrap() + 114.057865).abs() < 1e-6,
        "west is negative"
    );
    assert!((loc.json["data"]["speed_kmh"].as_f64().unwrap() - 36.5).abs() < 1e-6);
    assert_eq!(loc.json["data"]["heading_deg"].as_f64().unwrap(), 90.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_2013_registers_authenticates_and_its_location_reaches_the_embedded_broker() {
    let vgate = Vgate::start(VgateOptions::default());
    register_authenticate_and_report(
        &vgate,
        vgate.mqtt_port().unwrap(),
        "013800138000",
        Version::V2013,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_2019_with_a_20_digit_phone_works_end_to_end() {
    let vgate = Vgate::start(VgateOptions::default());
    register_authenticate_and_report(
        &vgate,
        vgate.mqtt_port().unwrap(),
        "00000000013912345678",
        Version::V2019,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_path_works_against_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    register_authenticate_and_report(&vgate, m.port, "013800138001", Version::V2013).await;
    register_authenticate_and_report(&vgate, m.port, "00000000013912345679", Version::V2019).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_connection_with_the_same_phone_takes_over_without_an_offline_flap() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013800138002";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/#")],
    )
    .await;
    let mut a = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = a.register().await.unwrap().auth_code.unwrap();
    assert_eq!(a.authenticate(&code).await.unwrap(), 0);
    let mut b = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    assert_eq!(
        b.authenticate(&code).await.unwrap(),
        0,
        "the stored auth code works on a new connection"
    );
    assert!(a.closed_within(WAIT).await, "the old connection is closed");
    let msgs = sub.drain(Duration::from_secs(2)).await;
    assert!(
        msgs.iter()
            .any(|m| m.topic.ends_with("/lifecycle") && m.json["data"]["event"] == "takeover"),
        "a takeover lifecycle event: {msgs:?}"
    );
    assert!(
        !msgs
            .iter()
            .any(|m| m.topic.ends_with("/status") && m.json["data"]["online"] == false),
        "presence never went offline: {msgs:?}"
    );
    assert_eq!(b.report(&Fix::default()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_authenticates_is_closed_after_the_login_timeout() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[jt808]\nlogin_timeout_s = 1\n".into()),
        ..Default::default()
    });
    let mut t = Terminal::connect(vgate.addr("jt808"), "013800138003", Version::V2013)
        .await
        .unwrap();
    assert!(t.closed_within(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_authenticated_terminal_is_closed_and_marked_offline_with_reason_timeout() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[jt808]\nidle_timeout_s = 1\n".into()),
        ..Default::default()
    });
    let phone = "013800138004";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/status")],
    )
    .await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    assert!(sub.next_on("/status", WAIT).await.json["data"]["online"]
        .as_bool()
        .unwrap());
    assert!(t.closed_within(Duration::from_secs(5)).await);
    let off = sub.next_on("/status", WAIT).await;
    assert_eq!(off.json["data"]["online"], false);
    assert_eq!(off.json["data"]["reason"], "timeout");
    assert!(off.retain || off.topic.ends_with("/status"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unlisted_terminal_is_refused_with_the_protocols_result_code_and_a_rejected_event() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allow.txt");
    std::fs::write(&list, "# allowed terminals\n013800138005\n").unwrap();
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some(format!(
            "[jt808.auth]\nmode = \"allowlist\"\nallowlist_file = {:?}\n",
            list.display().to_string()
        )),
        ..Default::default()
    });
    let phone = "013800138099";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/#")],
    )
    .await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let reg = t.register().await.unwrap();
    assert_ne!(reg.result, 0, "refused");
    assert!(reg.auth_code.is_none());
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "rejected");
    assert!(t.closed_within(WAIT).await);

    let mut ok = Terminal::connect(vgate.addr("jt808"), "013800138005", Version::V2013)
        .await
        .unwrap();
    assert_eq!(
        ok.register().await.unwrap().result,
        0,
        "a listed terminal registers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_marks_vehicles_offline_with_reason_shutdown_and_exits_zero() {
    let mut vgate = Vgate::start(VgateOptions::default());
    let phone = "013800138006";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/status")],
    )
    .await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    assert!(sub.next_on("/status", WAIT).await.json["data"]["online"]
        .as_bool()
        .unwrap());
    let status = tokio::task::spawn_blocking(move || vgate.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let off = sub.next_on("/status", WAIT).await;
    assert_eq!(off.json["data"]["reason"], "shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_last_will_marks_the_node_offline_after_sigkill() {
    let Some(m) = Mosquitto::start() else { return };
    let mut vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        ..Default::default()
    });
    let mut sub = Subscriber::connect(m.port, &["vgate/gateway/test-node/status"]).await;
    let online = sub.next_on("/status", WAIT).await;
    assert_eq!(online.json["online"], true, "{:?}", online.json);
    vgate.kill();
    // Mosquitto sends the will after 1.5 x keepalive without traffic at most; the TCP reset
    // of a killed process makes it immediate.
    let off = sub.next_on("/status", Duration::from_secs(60)).await;
    assert_eq!(off.json["online"], false, "{:?}", off.json);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_auth_code_is_refused_and_counted_in_metrics() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013800138007";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/#")],
    )
    .await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_ne!(
        t.authenticate(&format!("{code}x")).await.unwrap(),
        0,
        "refused"
    );
    let msgs = sub.drain(Duration::from_secs(1)).await;
    assert!(
        msgs.iter()
            .any(|m| m.topic.ends_with("/lifecycle") && m.json["data"]["event"] == "rejected"),
        "{msgs:?}"
    );
    assert!(t.closed_within(WAIT).await);

    let body = http_get(vgate.addr("http"), "/metrics").await;
    assert!(body.contains("vgate_login_refusals_total"), "{body}");
    assert!(body.contains("vgate_frames_in_total"), "{body}");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect http");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooding_terminal_is_slowed_not_dropped() {
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[jt808]\nmax_frames_per_s = 20.0\n".into()),
        ..Default::default()
    });
    let mut t = Terminal::connect(vgate.addr("jt808"), "013800138008", Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    let started = std::time::Instant::now();
    let mut serials = Vec::new();
    for _ in 0..80 {
        serials.push(
            t.send(&jt808::Message::Heartbeat { extra: Vec::new() })
                .await
                .unwrap(),
        );
    }
    let mut answered = 0;
    while answered < serials.len() {
        let (_, m) = tokio::time::timeout(WAIT, t.next_frame())
            .await
            .expect("answers keep coming")
            .unwrap()
            .unwrap();
        if matches!(m, jt808::Message::PlatformResponse(_)) {
            answered += 1;
        }
    }
    // 40 frames of burst, then 20 frames/s: the other 40 take about 2 s.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let body = http_get(vgate.addr("http"), "/metrics").await;
    assert!(body.contains("vgate_rate_limited_total"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subpackaged_batch_with_a_lost_package_is_asked_again_with_0x8003_and_published_whole() {
    use gateway::simulate::jt808::Fix;
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some("[jt808]\nsubpackage_quiet_s = 1\n".into()),
        ..Default::default()
    });
    let phone = "013800138009";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/location")],
    )
    .await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);

    // A blind-area batch of 12 fixes, cut into packages of 100 bytes.
    let items: Vec<_> = (0..12)
        .map(|i| {
            Fix {
                latitude: 22.5 + f64::from(i) * 0.001,
                ..Fix::default()
            }
            .report()
        })
        .collect();
    let batch = jt808::Message::LocationBatch {
        batch_type: 1,
        items,
    };
    let body = batch.encode_body(Version::V2013).unwrap();
    let header = jt808::Header {
        msg_id: 0x0704,
        version: Version::V2013,
        protocol_version: 0,
        phone: phone.into(),
        serial: 500,
        encryption: jt808::Encryption::None,
        package: None,
    };
    let packages = jt808::subpackage::split(&header, &body, 100);
    assert!(packages.len() >= 4, "{} packages", packages.len());
    for (i, p) in packages.iter().enumerate() {
        if i != 1 {
            t.send_wire(&p.to_wire()).await.unwrap();
        }
    }
    let ids = t
        .wait_for(WAIT, |h, m| match m {
            jt808::Message::ResendRequest(r) if h.msg_id == 0x8003 => {
                Some((r.first_serial, r.ids.clone()))
            }
            _ => None,
        })
        .await
        .expect("0x8003");
    assert_eq!(ids, (500, vec![2]));
    t.send_wire(&packages[1].to_wire()).await.unwrap();
    let mut lats = Vec::new();
    for _ in 0..12 {
        let loc = sub.next_on("/location", WAIT).await;
        assert_eq!(loc.json["reissue"], true, "type 1 batch = reissue");
        lats.push(loc.json["data"]["latitude"].as_f64().unwrap());
    }
    assert!((lats[11] - 22.511).abs() < 1e-6, "{lats:?}");
}

/// A terminal that pipelines its reports (here: 50 reports and a time query in one write)
/// gets every answer, in frame order, and every report reaches MQTT in order.
#[tokio::test(flavor = "multi_thread")]
async fn reports_pipelined_in_one_write_are_all_answered_in_order_and_published_in_order() {
    let vgate = Vgate::start(VgateOptions::default());
    let phone = "013800138031";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/location")],
    )
    .await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);

    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..51u16 {
        let serial = 1000 + i;
        let msg = if i == 40 {
            jt808::Message::TimeQuery
        } else {
            let fix = Fix {
                latitude: 22.5,
                longitude: 114.0,
                speed_kmh: 10.0,
                heading_deg: 0,
                altitude_m: i,
                ..Default::default()
            };
            jt808::Message::Location(fix.report())
        };
        let header = jt808::Header {
            msg_id: msg.msg_id(),
            version: Version::V2013,
            protocol_version: 0,
            phone: phone.into(),
            serial,
            encryption: jt808::Encryption::None,
            package: None,
        };
        let body = msg.encode_body(Version::V2013).unwrap();
        wire.extend(jt808::Frame::new(header, body).to_wire());
        expected.push((serial, i == 40));
    }
    t.send_wire(&wire).await.unwrap();

    for (serial, is_time) in expected {
        let (_, m) = tokio::time::timeout(WAIT, t.next_frame())
            .await
            .expect("answers keep coming")
            .unwrap()
            .expect("connection open");
        match m {
            jt808::Message::PlatformResponse(r) if !is_time => {
                assert_eq!(r.reply_serial, serial, "answers in frame order");
                assert_eq!(r.reply_id, 0x0200);
                assert_eq!(r.result, 0);
            }
            jt808::Message::ServerTime(_) if is_time => {}
            other => panic!("serial {serial}: unexpected answer {other:?}"),
        }
    }
    for i in (0..51u16).filter(|i| *i != 40) {
        let loc = sub.next_on("/location", WAIT).await;
        assert_eq!(
            loc.json["data"]["altitude_m"].as_f64(),
            Some(f64::from(i)),
            "reports published in order"
        );
    }
}

/// Everything the platform receives about `phone` during one whole session (register,
/// authenticate, a report, a heartbeat, logout), up to its offline presence: each vehicle's
/// events keep their order, so nothing of the session comes after it.
async fn one_whole_session(phone: &str, version: Version) -> Vec<support::Received> {
    let vgate = Vgate::start(VgateOptions::default());
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/#")],
    )
    .await;
    let mut t = Terminal::connect(vgate.addr("jt808"), phone, version)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.unwrap();
    assert_eq!(t.authenticate(&code).await.unwrap(), 0);
    assert_eq!(t.report(&Fix::default()).await.unwrap(), 0);
    assert_eq!(t.heartbeat().await.unwrap(), 0);
    assert_eq!(t.logout().await.unwrap(), 0, "0x8001 for 0x0003");
    assert!(t.closed_within(WAIT).await, "closed after the logout");
    let mut got = Vec::new();
    loop {
        let m = sub.next_on("", WAIT).await;
        let offline = m.topic.ends_with("/status") && m.json["data"]["online"] == false;
        got.push(m);
        if offline {
            return got;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_that_logs_out_gets_exactly_one_logout_event_and_goes_offline_for_logout() {
    let got = one_whole_session("013800138010", Version::V2013).await;
    let logouts: Vec<_> = got
        .iter()
        .filter(|m| m.topic.ends_with("/lifecycle") && m.json["data"]["event"] == "logout")
        .collect();
    assert_eq!(logouts.len(), 1, "one logout lifecycle event: {got:#?}");
    assert_eq!(logouts[0].json["protocol"], "jt808-2013");
    assert!(logouts[0].json["msg_seq"].is_u64(), "the 0x0003's serial");
    let off = got.last().unwrap();
    assert_eq!(off.json["data"]["reason"], "logout");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_of_a_2011_terminal_s_session_is_labelled_jt808_2011() {
    // 2011 and 2013 share the header: only the 0x0100 body length says 2011, and the session
    // keeps what it said for everything after it.
    let got = one_whole_session("013800138011", Version::V2011).await;
    let kinds: Vec<_> = got
        .iter()
        .map(|m| {
            m.json["data"]["event"]
                .as_str()
                .or(m.json["type"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    for want in ["register", "authenticate", "location", "logout", "status"] {
        assert!(kinds.iter().any(|k| k == want), "a {want} event: {kinds:?}");
    }
    for m in &got {
        assert_eq!(m.json["protocol"], "jt808-2011", "{} {}", m.topic, m.json);
        if m.topic.ends_with("/status") {
            assert_eq!(m.json["data"]["protocol"], "jt808-2011", "{}", m.json);
        }
    }
    let logouts = kinds.iter().filter(|k| *k == "logout").count();
    assert_eq!(logouts, 1, "{kinds:?}");
}
