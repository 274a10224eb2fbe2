//! Black-box tests of raw TCP listeners: a private framing configured in TOML, vehicles on
//! TCP, events and commands on MQTT.

mod support;

use std::time::Duration;

use rumqttc::QoS;
use support::{Subscriber, Vgate, VgateOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

const LINES: &str = r#"
[[raw]]
name = "lines"
listen = "127.0.0.1:0"
payload = "json"
ack = { mode = "fixed", hex = "4f4b0a" }
[raw.framing]
type = "delimited"
delimiter = "\n"
[raw.identity]
mode = "first_frame"
pattern = { charset = "alphanumeric", min_len = 4, max_len = 17 }
[raw.auth]
mode = "allowlist"
allowlist_file = "ALLOWLIST"

[[raw]]
name = "boxes"
listen = "127.0.0.1:0"
ack = { mode = "echo" }
[raw.framing]
type = "length_prefixed"
width = 2
endian = "big"
offset = 0
counts_header = false
max_frame_len = 64
[raw.identity]
mode = "field"
offset = 2
len = 4
encoding = "bcd"

[[raw]]
name = "meters"
listen = "127.0.0.1:0"
[raw.framing]
type = "fixed"
size = 6
[raw.identity]
mode = "peer"
"#;

fn start() -> Vgate {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allow.txt");
    std::fs::write(&list, "TRUCK0042\nTRUCK0043\n").unwrap();
    let toml = LINES.replace("ALLOWLIST", list.to_str().unwrap());
    Vgate::start_in(
        VgateOptions {
            config_toml: Some(toml),
            extra_listeners: 3,
            ..Default::default()
        },
        dir,
    )
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("read");
    buf
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut b)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_based_json_fleet_logs_in_and_its_objects_are_published() {
    let vgate = start();
    let vid = "TRUCK0042";
    let mut sub =
        Subscriber::connect(vgate.mqtt_port().unwrap(), &[&format!("vgate/v1/{vid}/#")]).await;
    let mut s = TcpStream::connect(vgate.addr("lines")).await.unwrap();
    s.write_all(format!("{vid}\n").as_bytes()).await.unwrap();
    assert_eq!(
        read_exactly(&mut s, 3).await,
        b"OK\n",
        "the login is acknowledged"
    );
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "login");
    assert_eq!(lc.json["protocol"], "raw");
    assert_eq!(
        sub.next_on("/status", WAIT).await.json["data"]["online"],
        true
    );

    // Two frames in one write, then one split across writes, then one that is not JSON.
    s.write_all(b"{\"speed\":12}\n{\"speed\":13}\n{\"spe")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"ed\":14}\nnot json\n").await.unwrap();
    let mut speeds = Vec::new();
    for _ in 0..3 {
        let p = sub.next_on("/passthrough", WAIT).await;
        assert_eq!(p.json["vehicle_id"], vid);
        speeds.push(p.json["data"]["speed"].as_i64().unwrap());
    }
    assert_eq!(speeds, [12, 13, 14]);
    assert_eq!(
        read_exactly(&mut s, 9).await,
        b"OK\nOK\nOK\n",
        "each accepted frame is acknowledged"
    );
    assert!(
        sub.drain(Duration::from_millis(300))
            .await
            .iter()
            .all(|m| !m.topic.ends_with("/passthrough")),
        "the bad frame is not published"
    );

    // A raw command comes back in the same framing, and is acked once written.
    sub.client
        .publish(
            format!("vgate/v1/{vid}/cmd"),
            QoS::AtLeastOnce,
            false,
            br#"{"id":"p1","type":"raw","params":{"text":"PING"}}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut s, 5).await, b"PING\n");
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("acked") {
        let r = sub.next_on("/cmd/result", WAIT).await;
        statuses.push(r.json["data"]["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["sent", "acked"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_that_names_no_valid_vehicle_closes_the_connection() {
    let vgate = start();
    let mut s = TcpStream::connect(vgate.addr("lines")).await.unwrap();
    s.write_all(b"bad id!\n").await.unwrap();
    assert!(closed(&mut s).await);
}

fn boxed(id_bcd: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let body_len = (4 + payload.len()) as u16;
    let mut f = body_len.to_be_bytes().to_vec();
    f.extend_from_slice(&id_bcd);
    f.extend_from_slice(payload);
    f
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_length_prefixed_fleet_is_identified_by_a_bcd_field_and_a_bad_length_closes() {
    let vgate = start();
    let vid = "12345678";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{vid}/passthrough")],
    )
    .await;
    let mut s = TcpStream::connect(vgate.addr("boxes")).await.unwrap();
    let f1 = boxed([0x12, 0x34, 0x56, 0x78], &[0xAA, 0xBB]);
    let f2 = boxed([0x12, 0x34, 0x56, 0x78], &[0xCC]);
    let mut both = f1.clone();
    both.extend_from_slice(&f2);
    // Byte by byte: the framer never loses a byte across reads.
    for b in &both {
        s.write_all(&[*b]).await.unwrap();
    }
    let p = sub.next_on("/passthrough", WAIT).await;
    assert_eq!(p.json["data"]["body_hex"], hex::encode(&f1));
    let p = sub.next_on("/passthrough", WAIT).await;
    assert_eq!(p.json["data"]["body_hex"], hex::encode(&f2));
    assert_eq!(read_exactly(&mut s, both.len()).await, both, "echo acks");

    // A length above max_frame_len cannot be resynchronised: the connection is closed.
    s.write_all(&[0x7F, 0xFF, 0x12, 0x34]).await.unwrap();
    assert!(closed(&mut s).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn fixed_size_frames_from_a_peer_identified_device_are_published() {
    let vgate = start();
    let vid = "127-0-0-1";
    let mut sub =
        Subscriber::connect(vgate.mqtt_port().unwrap(), &[&format!("vgate/v1/{vid}/#")]).await;
    let mut s = TcpStream::connect(vgate.addr("meters")).await.unwrap();
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(
        lc.json["data"]["event"], "login",
        "identified by its address at once"
    );
    s.write_all(&[1, 2, 3, 4, 5, 6, 7, 8]).await.unwrap();
    s.write_all(&[9, 10, 11, 12]).await.unwrap();
    let p = sub.next_on("/passthrough", WAIT).await;
    assert_eq!(p.json["data"]["body_hex"], "010203040506");
    let p = sub.next_on("/passthrough", WAIT).await;
    assert_eq!(p.json["data"]["body_hex"], "0708090a0b0c");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vehicle_the_allowlist_does_not_name_is_refused() {
    let vgate = start();
    let vid = "TRUCK9999";
    let mut sub =
        Subscriber::connect(vgate.mqtt_port().unwrap(), &[&format!("vgate/v1/{vid}/#")]).await;
    let mut s = TcpStream::connect(vgate.addr("lines")).await.unwrap();
    s.write_all(format!("{vid}\n{{\"speed\":1}}\n").as_bytes())
        .await
        .unwrap();
    assert!(closed(&mut s).await);
    let lc = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(lc.json["data"]["event"], "rejected");
    assert!(sub
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|m| !m.topic.ends_with("/passthrough")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_line_is_skipped_and_the_next_one_published() {
    let vgate = start();
    let vid = "TRUCK0043";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{vid}/passthrough")],
    )
    .await;
    let mut s = TcpStream::connect(vgate.addr("lines")).await.unwrap();
    s.write_all(format!("{vid}\n").as_bytes()).await.unwrap();
    let big = format!("{{\"blob\":\"{}\"}}\n", "x".repeat(5000));
    s.write_all(big.as_bytes()).await.unwrap();
    s.write_all(b"{\"speed\":7}\n").await.unwrap();
    let p = sub.next_on("/passthrough", WAIT).await;
    assert_eq!(p.json["data"]["speed"], 7);
}
