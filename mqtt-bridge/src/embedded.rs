//! The embedded broker (rumqttd), for a gateway run without an external broker.
//!
//! It is configured in code (no rumqttd.toml), with one MQTT 3.1.1 listener on the
//! configured address. A platform client with an empty client id and a clean session
//! (Mosquitto's clients, paho) is assigned an id (rumqttd 0.20), and with vgate's patch
//! (vendor/rumqttd/VENDORED.md) an MQTT 5 client gets a CONNACK refusal instead of a silent
//! close. The bridge does not talk to it through rumqttd's in-process link:
//! it connects its ordinary MQTT client over TCP, so the embedded and the external
//! broker share one code path (PUBACK tracking, last will, reconnects, tests).
//!
//! rumqttd 0.20 starts its listeners on threads of its own and has no stop call: the
//! broker lives until the process exits. Retained messages and last wills are supported
//! by rumqttd 0.20 (the crate's tests exercise both on it).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::thread;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::config::EmbeddedLimits;
use crate::BridgeError;

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts rumqttd listening on `addr` with `limits`; `command_filters` (the gateway's
    /// command subscriptions) get a log of `limits.command_backlog_bytes`.
    ///
    /// The address is bound once first so that a port in use is a clear error here rather
    /// than a log line from rumqttd's thread. A port of 0 is refused: platform clients need
    /// a known address.
    pub fn start(
        addr: SocketAddr,
        limits: EmbeddedLimits,
        command_filters: &[String],
    ) -> Result<Self, BridgeError> {
        if addr.port() == 0 {
            return Err(BridgeError::Config {
                key: "mqtt.embedded_listen",
                reason: "port 0: the embedded broker needs a fixed port".into(),
            });
        }
        TcpListener::bind(addr).map_err(|e| BridgeError::EmbeddedListen {
            addr,
            reason: e.to_string(),
        })?;
        let mut broker = rumqttd::Broker::new(broker_config(addr, limits, command_filters));
        thread::Builder::new()
            .name("vgate-mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            })
            .map_err(|e| BridgeError::Embedded(e.to_string()))?;
        tracing::info!(%addr, "embedded MQTT broker started");
        Ok(EmbeddedBroker { addr })
    }

    /// Where the broker listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Segments of a command filter's log: the backlog is dropped a segment at a time.
const COMMAND_SEGMENTS: usize = 16;

fn broker_config(addr: SocketAddr, limits: EmbeddedLimits, command_filters: &[String]) -> Config {
    // Commands wait here while the gateway stores the ones before them: a fleet-wide push of
    // one message per vehicle is tens of thousands at once, far more than 2 small segments.
    let segment = rumqttd::SegmentConfig {
        max_segment_size: (limits.command_backlog_bytes / COMMAND_SEGMENTS)
            .max(limits.max_payload_size)
            .max(64 * 1024),
        max_segment_count: COMMAND_SEGMENTS,
    };
    let custom: HashMap<String, rumqttd::SegmentConfig> = command_filters
        .iter()
        .map(|f| (f.clone(), segment.clone()))
        .collect();
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: limits.max_payload_size,
        max_inflight_count: limits.max_inflight,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "vgate-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: limits.max_connections,
            max_outgoing_packet_count: 200,
            // rumqttd keeps a log in memory per topic, in segments: a vehicle topic sees a few
            // small events a second, so 2 segments that each hold at least one largest payload
            // bound the memory per topic (the defaults, 100 MiB x 10, would not).
            max_segment_size: limits.max_payload_size.max(64 * 1024),
            max_segment_count: 2,
            custom_segment: Some(custom),
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    }
}
