//! The bridge against its embedded rumqttd broker (each test on a free port).

mod common;

use common::scenarios;
use mqtt_bridge::{Bridge, BridgeError};

#[tokio::test]
async fn embedded_broker_delivers_an_event_on_its_topic_with_the_exact_json() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::event_arrives_with_exact_json(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_gives_retained_presence_to_a_late_subscriber() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::retained_presence_reaches_late_subscriber(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_holds_the_gateway_status_online_then_offline() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::gateway_status_is_online_then_offline(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_delivers_vehicle_and_broadcast_commands_with_targets() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::commands_arrive_with_their_targets(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_publishes_the_last_will_when_the_bridge_is_dropped() {
    let cfg = common::embedded();
    let port = cfg.embedded_listen.port();
    scenarios::last_will_marks_gateway_offline(cfg, port).await;
}

#[tokio::test]
async fn embedded_broker_reports_its_address() {
    let cfg = common::embedded();
    let bridge = Bridge::start(&cfg, "n", "vgate")
        .await
        .expect("bridge starts");
    assert_eq!(bridge.embedded_addr(), Some(cfg.embedded_listen));
    assert_eq!(
        bridge.broker(),
        format!("127.0.0.1:{}", cfg.embedded_listen.port())
    );
    bridge.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn embedded_broker_on_a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let cfg = mqtt_bridge::MqttConfig {
        embedded_listen: taken.local_addr().expect("addr"),
        ..common::embedded()
    };
    match Bridge::start(&cfg, "n", "vgate").await {
        Err(BridgeError::EmbeddedListen { addr, .. }) => assert_eq!(addr, cfg.embedded_listen),
        other => panic!("expected EmbeddedListen, got {other:?}"),
    }
}

/// The embedded broker's answers on the wire, byte for byte (vendor/rumqttd/VENDORED.md).
mod connect {
    use super::common;
    use mqtt_bridge::Bridge;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// An MQTT 3.1.1 CONNECT: keep alive 60 s, `client_id` (may be empty), clean or persistent.
    fn connect_311(client_id: &str, clean: bool) -> Vec<u8> {
        let id = client_id.as_bytes();
        let mut body = vec![
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            4,
            if clean { 0x02 } else { 0 },
            0,
            60,
        ];
        body.extend_from_slice(&u16::try_from(id.len()).expect("short id").to_be_bytes());
        body.extend_from_slice(id);
        let mut packet = vec![0x10, u8::try_from(body.len()).expect("short packet")];
        packet.extend(body);
        packet
    }

    /// What `mosquitto_sub -V mqttv5` sends first: an MQTT 5 CONNECT, clean start, no
    /// properties, empty client id.
    const CONNECT_5: [u8; 15] = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 0,
    ];
    /// An MQTT 3.1 CONNECT (`MQIsdp`, level 3), client id "a".
    const CONNECT_31: [u8; 17] = [
        0x10, 15, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60, 0, 1, b'a',
    ];

    async fn broker() -> (Bridge, u16) {
        let cfg = common::embedded();
        let port = cfg.embedded_listen.port();
        let bridge = Bridge::start(&cfg, "n", "vgate")
            .await
            .expect("bridge starts");
        (bridge, port)
    }

    /// Sends `packet` on a new connection and reads `n` bytes back.
    async fn exchange(port: u16, packet: &[u8], n: usize) -> (TcpStream, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(packet).await.expect("write");
        let mut got = vec![0; n];
        tokio::time::timeout(common::HANG_GUARD, s.read_exact(&mut got))
            .await
            .expect("an answer (hang guard)")
            .expect("the broker answers before closing");
        (s, got)
    }

    /// After a refusal the broker closes the connection.
    async fn assert_closed(mut s: TcpStream) {
        let mut rest = Vec::new();
        tokio::time::timeout(common::HANG_GUARD, s.read_to_end(&mut rest))
            .await
            .expect("closed (hang guard)")
            .expect("read to the end");
        assert!(
            rest.is_empty(),
            "nothing after the refusal, got {rest:02x?}"
        );
    }

    #[tokio::test]
    async fn two_clients_with_an_empty_client_id_and_a_clean_session_are_both_accepted() {
        let (bridge, port) = broker().await;
        let (mut a, ack) = exchange(port, &connect_311("", true), 4).await;
        assert_eq!(ack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
        let (_b, ack) = exchange(port, &connect_311("", true), 4).await;
        assert_eq!(ack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
        // Each got an id of its own: the second did not take the first's over, which still
        // answers a PINGREQ.
        a.write_all(&[0xC0, 0x00]).await.expect("pingreq");
        let mut pong = [0u8; 2];
        tokio::time::timeout(common::HANG_GUARD, a.read_exact(&mut pong))
            .await
            .expect("pingresp (hang guard)")
            .expect("the first client is still connected");
        assert_eq!(pong, [0xD0, 0x00]);
        bridge.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn an_empty_client_id_with_a_persistent_session_is_refused_with_identifier_rejected() {
        let (bridge, port) = broker().await;
        let (s, ack) = exchange(port, &connect_311("", false), 4).await;
        assert_eq!(
            ack,
            [0x20, 0x02, 0x00, 0x02],
            "CONNACK 0x02 identifier rejected"
        );
        assert_closed(s).await;
        bridge.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn an_mqtt5_client_gets_an_mqtt5_connack_unsupported_protocol_version() {
        let (bridge, port) = broker().await;
        let (s, ack) = exchange(port, &CONNECT_5, 5).await;
        assert_eq!(ack, [0x20, 0x03, 0x00, 0x84, 0x00], "CONNACK 0x84");
        assert_closed(s).await;
        bridge.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn an_mqtt31_client_gets_unacceptable_protocol_version() {
        let (bridge, port) = broker().await;
        let (s, ack) = exchange(port, &CONNECT_31, 4).await;
        assert_eq!(ack, [0x20, 0x02, 0x00, 0x01], "CONNACK 0x01");
        assert_closed(s).await;
        bridge.shutdown().await.expect("clean shutdown");
    }
}
