//! `[mqtt]` configuration: what the operator writes, with its defaults.
//!
//! The types here are our own (serde, `deny_unknown_fields`); `client.rs` maps them into
//! rumqttc's, so the config file never changes when the client library does.

use std::net::SocketAddr;
use std::path::PathBuf;

use codecs::EventKind;
use serde::{Deserialize, Serialize};

/// MQTT settings of the gateway.
///
/// ```toml
/// [mqtt]
/// url = "mqtts://broker.example.com:8883"   # unset: embedded broker
/// username = "vgate"
/// password = "secret"
/// [mqtt.tls]
/// ca_file = "/etc/vgate/ca.pem"
/// [mqtt.qos]
/// location = 0
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// External broker, `mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883).
    /// Default: unset, the embedded broker is started and used.
    pub url: Option<String>,
    /// Where the embedded broker listens for platform clients. Default `127.0.0.1:1883`.
    pub embedded_listen: SocketAddr,
    /// MQTT client id. Default: `vgate-{node_id}`.
    pub client_id: Option<String>,
    /// User name for the external broker. Default: none.
    pub username: Option<String>,
    /// Password for the external broker. Default: none.
    pub password: Option<String>,
    /// A file whose first line is the password, instead of `password` (a container secret);
    /// the gateway reads it when it loads its configuration. Default: none.
    pub password_file: Option<PathBuf>,
    /// Keepalive in seconds. Default 30.
    pub keepalive_s: u16,
    /// Protocol version with an external broker: `"3.1.1"` (default) or `"5"`.
    pub protocol: MqttProtocol,
    /// TLS settings for `mqtts://`.
    pub tls: TlsConfig,
    /// QoS per event type (0 or 1). Default 1 for every type.
    pub qos: QosConfig,
    /// Publishes waiting for the connection (bounded; callers wait when it is full). Default 1024.
    pub queue_capacity: usize,
    /// QoS 1 publishes in flight (sent, not yet acknowledged). Default 1000: a broker such
    /// as Mosquitto spends about a third less CPU per message on a client that keeps 1,000
    /// in flight than on one that keeps 100 (it reads them in larger pieces), and it is the
    /// broker's CPU that bounds the gateway's throughput (docs/PERFORMANCE.md).
    pub inflight: u16,
    /// Incoming commands waiting to be stored by the gateway, as a bound the broker is asked
    /// to keep: the MQTT 5 Receive Maximum (the broker sends at most this many
    /// unacknowledged QoS 1 commands and holds the rest). Over MQTT 3.1.1 the broker's own
    /// inflight window bounds them (Mosquitto `max_inflight_messages`, 20 by default). Past
    /// it, QoS 0 commands are dropped (counted). The event loop never waits for room: it
    /// also carries the acknowledgements that make room. Default 256.
    pub command_capacity: usize,
    /// MQTT connections ("lanes") events are published over, 1..=16. Default 4. Each
    /// vehicle's events go over one lane (a stable hash of its id), so they keep their order;
    /// a broker such as Mosquitto spends less CPU per message spread over 2+ connections than
    /// over one. Lane 0 is the gateway's own connection (client id, last will, status,
    /// commands); lanes 1.. are `{client_id}-{i}`, publish-only, with their own queue
    /// (`queue_capacity` each) and, with a spool, their own spool in `{spool.dir}/lane-{i}`.
    pub connections: u16,
    /// Largest MQTT packet sent or received, in bytes. Default 1 MiB.
    pub max_packet_size: usize,
    /// First reconnect delay in milliseconds; doubles up to `reconnect_max_ms`. Default 500.
    pub reconnect_min_ms: u64,
    /// Largest reconnect delay in milliseconds. Default 30000.
    pub reconnect_max_ms: u64,
    /// How long `Bridge::start` keeps trying a broker that does not answer. Default 30.
    pub connect_timeout_s: u64,
    /// How long `Bridge::shutdown` waits for unacknowledged publishes. Default 5.
    pub shutdown_timeout_s: u64,
    /// Limits of the embedded broker.
    pub embedded: EmbeddedLimits,
    /// The disk spool (store-and-forward) for publishes the broker cannot take now.
    pub spool: SpoolConfig,
    /// Cluster mode: take commands through the shared subscription group of this name
    /// (`$share/{group}/{p}/v1/+/cmd`), so the broker gives each command to one node. Set by
    /// the gateway, not a configuration key.
    #[serde(skip)]
    pub share_group: Option<String>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            embedded_listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            keepalive_s: 30,
            protocol: MqttProtocol::V311,
            tls: TlsConfig::default(),
            qos: QosConfig::default(),
            queue_capacity: 1024,
            inflight: 1000,
            command_capacity: 256,
            connections: 4,
            max_packet_size: 1024 * 1024,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            connect_timeout_s: 30,
            shutdown_timeout_s: 5,
            embedded: EmbeddedLimits::default(),
            spool: SpoolConfig::default(),
            share_group: None,
        }
    }
}

impl MqttConfig {
    /// Checks every setting the bridge would refuse at start, without connecting or binding
    /// anything (`vgate config --check` and `vgate run` both call it before starting):
    /// `connections` 1..=16, non-zero capacities, `spool.spill_after_ms`, a password only
    /// with a username, and with a `url`: an `mqtt://` or `mqtts://` URL with a host, the TLS
    /// files readable (`mqtts://` needs `tls.ca_file`; `mqtt://` takes none), `server_name`
    /// equal to the URL's host. The error names the key.
    pub fn validate(&self) -> Result<(), crate::BridgeError> {
        crate::client::validate(self)
    }

    /// Whether the broker runs on this machine: the embedded one, or a `url` whose host is
    /// `localhost` or a loopback or unspecified address (no name is resolved; a URL that
    /// does not parse is not local, and is refused when the bridge starts).
    pub fn broker_is_local(&self) -> bool {
        let Some(url) = self.url.as_deref() else {
            return true;
        };
        let Ok(addr) = crate::client::BrokerAddr::parse(url) else {
            return false;
        };
        addr.host.eq_ignore_ascii_case("localhost")
            || addr
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
    }
}

/// The MQTT protocol version spoken to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MqttProtocol {
    /// MQTT 3.1.1.
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5 (external brokers; the embedded broker always speaks 3.1.1).
    #[serde(rename = "5")]
    V5,
}

/// TLS for `mqtts://` (rustls).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that sign the broker's certificate. Required for `mqtts://`
    /// (for a public CA, the system bundle, e.g. `/etc/ssl/certs/ca-certificates.crt`).
    pub ca_file: Option<String>,
    /// PEM client certificate (mutual TLS), with `key_file`.
    pub cert_file: Option<String>,
    /// PEM private key of the client certificate.
    pub key_file: Option<String>,
    /// The name the broker's certificate must carry. rumqttc 0.25 verifies the URL's host, so
    /// this may only repeat it; a different value is refused as a config error.
    pub server_name: Option<String>,
}

/// MQTT QoS level as configured (0 or 1; QoS 2 is not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Qos {
    /// At most once.
    AtMostOnce,
    /// At least once (default).
    AtLeastOnce,
}

impl TryFrom<u8> for Qos {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(Qos::AtMostOnce),
            1 => Ok(Qos::AtLeastOnce),
            other => Err(format!("qos must be 0 or 1, not {other}")),
        }
    }
}

impl From<Qos> for u8 {
    fn from(q: Qos) -> u8 {
        match q {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
        }
    }
}

fn qos1() -> Qos {
    Qos::AtLeastOnce
}

/// QoS per event type; every one defaults to 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QosConfig {
    /// `location` events.
    #[serde(default = "qos1")]
    pub location: Qos,
    /// `telemetry` events.
    #[serde(default = "qos1")]
    pub telemetry: Qos,
    /// `alarm` events.
    #[serde(default = "qos1")]
    pub alarm: Qos,
    /// `lifecycle` events.
    #[serde(default = "qos1")]
    pub lifecycle: Qos,
    /// `status` (presence) events.
    #[serde(default = "qos1")]
    pub status: Qos,
    /// `passthrough` events.
    #[serde(default = "qos1")]
    pub passthrough: Qos,
    /// `cmd_result` events.
    #[serde(default = "qos1")]
    pub cmd_result: Qos,
    /// `media` events.
    #[serde(default = "qos1")]
    pub media: Qos,
}

impl Default for QosConfig {
    fn default() -> Self {
        QosConfig {
            location: Qos::AtLeastOnce,
            telemetry: Qos::AtLeastOnce,
            alarm: Qos::AtLeastOnce,
            lifecycle: Qos::AtLeastOnce,
            status: Qos::AtLeastOnce,
            passthrough: Qos::AtLeastOnce,
            cmd_result: Qos::AtLeastOnce,
            media: Qos::AtLeastOnce,
        }
    }
}

/// The event kinds in [`QosConfig`]'s bit order ([`QosConfig::to_bits`]).
const QOS_KINDS: [EventKind; 8] = [
    EventKind::Location,
    EventKind::Telemetry,
    EventKind::Alarm,
    EventKind::Lifecycle,
    EventKind::Status,
    EventKind::Passthrough,
    EventKind::CmdResult,
    EventKind::Media,
];

fn qos_bit(kind: EventKind) -> u8 {
    let i = QOS_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
    1u8 << i
}

impl QosConfig {
    /// One bit per event kind, set for QoS 1.
    pub fn to_bits(&self) -> u8 {
        QOS_KINDS
            .iter()
            .filter(|k| self.for_kind(**k) == Qos::AtLeastOnce)
            .fold(0, |b, k| b | qos_bit(*k))
    }

    /// The configuration [`QosConfig::to_bits`] gave.
    pub fn from_bits(bits: u8) -> QosConfig {
        let q = |kind| {
            if bits & qos_bit(kind) != 0 {
                Qos::AtLeastOnce
            } else {
                Qos::AtMostOnce
            }
        };
        QosConfig {
            location: q(EventKind::Location),
            telemetry: q(EventKind::Telemetry),
            alarm: q(EventKind::Alarm),
            lifecycle: q(EventKind::Lifecycle),
            status: q(EventKind::Status),
            passthrough: q(EventKind::Passthrough),
            cmd_result: q(EventKind::CmdResult),
            media: q(EventKind::Media),
        }
    }

    /// The QoS for events of `kind`.
    pub fn for_kind(&self, kind: EventKind) -> Qos {
        match kind {
            EventKind::Location => self.location,
            EventKind::Telemetry => self.telemetry,
            EventKind::Alarm => self.alarm,
            EventKind::Lifecycle => self.lifecycle,
            EventKind::Status => self.status,
            EventKind::Passthrough => self.passthrough,
            EventKind::CmdResult => self.cmd_result,
            EventKind::Media => self.media,
        }
    }
}

/// Limits of the embedded broker, sized for one gateway and a few platform consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedLimits {
    /// Simultaneous client connections (the gateway's own included). Default 1000.
    pub max_connections: usize,
    /// Largest publish payload accepted, bytes. Default 1 MiB.
    pub max_payload_size: usize,
    /// QoS 1 messages in flight per connection. Default 100.
    pub max_inflight: usize,
    /// Bytes of commands (`{p}/v1/+/cmd`, `{p}/broadcast/+/cmd`) the broker keeps for the
    /// gateway while it has not taken them yet, e.g. during a burst. rumqttd keeps each
    /// subscription's messages in an in-memory log of segments and, when a subscriber falls
    /// further behind than the log holds, skips it ahead: the commands in between are lost.
    /// Memory, once a burst has filled it, stays held. Default 32 MiB (~200,000 commands
    /// of 150 bytes).
    pub command_backlog_bytes: usize,
}

impl Default for EmbeddedLimits {
    fn default() -> Self {
        EmbeddedLimits {
            max_connections: 1000,
            max_payload_size: 1024 * 1024,
            max_inflight: 100,
            command_backlog_bytes: 32 * 1024 * 1024,
        }
    }
}

/// `[mqtt.spool]`: where publishes wait on disk while the broker is away: down, or connected
/// but taking nothing (docs/mqtt.md, "Store-and-forward"). A broker that is only busy is
/// backpressure, not a reason to spill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Directory of the spool (created if missing). Default: unset, no spool: publishes wait
    /// in memory only. The gateway sets it to `{data_dir}/spool` when the file leaves it unset.
    pub dir: Option<PathBuf>,
    /// Largest size of the spooled publishes, in bytes, all lanes together (each lane's
    /// spool gets `max_bytes / connections`). Default 1 GiB.
    pub max_bytes: u64,
    /// What to do when the spool is full. Default `"backpressure"`.
    pub when_full: WhenFull,
    /// Milliseconds the broker may take nothing while connected (no PUBACK frees room) before
    /// publishes spill to the spool and those in flight are rescued to it. Default 1000; raise
    /// it for links whose round trip is longer.
    pub spill_after_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: None,
            max_bytes: 1 << 30,
            when_full: WhenFull::Backpressure,
            spill_after_ms: 1000,
        }
    }
}

/// What a full spool does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Publishers wait until the broker has taken some of the spool (vehicles are slowed
    /// down by TCP backpressure). Nothing is lost.
    #[default]
    Backpressure,
    /// The oldest spooled publishes are deleted to make room, counted in
    /// `vgate_spool_events_total{op="dropped"}`.
    DropOldest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_is_local_when_embedded_or_on_a_loopback_host() {
        let with_url = |url: Option<&str>| MqttConfig {
            url: url.map(str::to_owned),
            ..MqttConfig::default()
        };
        for local in [
            None,
            Some("mqtt://127.0.0.1:1883"),
            Some("mqtt://localhost"),
            Some("mqtts://LOCALHOST:8883/"),
            Some("mqtt://[::1]:1883"),
            Some("mqtt://127.0.0.53"),
        ] {
            assert!(with_url(local).broker_is_local(), "{local:?}");
        }
        for remote in [
            "mqtt://10.0.0.5:1883",
            "mqtts://broker.example.com:8883",
            "mqtt://[2001:db8::1]:1883",
            "mqtt://localhost.example.com",
            // Refused at start (no user info in the URL): not judged local.
            "mqtt://user:pw@127.0.0.1:1883",
        ] {
            assert!(!with_url(Some(remote)).broker_is_local(), "{remote}");
        }
    }

    #[test]
    fn empty_config_gets_documented_defaults() {
        let cfg: MqttConfig = serde_json::from_str("{}").expect("parses");
        assert_eq!(cfg, MqttConfig::default());
        assert_eq!(cfg.embedded_listen.to_string(), "127.0.0.1:1883");
        assert_eq!(cfg.qos.for_kind(EventKind::Location), Qos::AtLeastOnce);
        assert_eq!(cfg.protocol, MqttProtocol::V311);
    }

    #[test]
    fn unknown_keys_and_qos_2_are_refused() {
        assert!(serde_json::from_str::<MqttConfig>(r#"{"urll":"x"}"#).is_err());
        assert!(serde_json::from_str::<MqttConfig>(r#"{"qos":{"location":2}}"#).is_err());
    }

    #[test]
    fn the_configuration_example_in_docs_mqtt_md_parses_to_the_defaults() {
        let doc = include_str!("../../docs/mqtt.md");
        let start = doc.find("```toml\n[mqtt]").expect("example present") + "```toml\n".len();
        let len = doc[start..].find("```").expect("example closed");
        let table: toml::Table = toml::from_str(&doc[start..start + len]).expect("valid TOML");
        let mqtt = table.get("mqtt").cloned().expect("[mqtt]");
        let cfg: MqttConfig = mqtt.try_into().expect("a valid MqttConfig");
        assert_eq!(cfg, MqttConfig::default());
    }

    #[test]
    fn qos_per_kind_and_protocol_names_parse() {
        let cfg: MqttConfig =
            serde_json::from_str(r#"{"qos":{"location":0},"protocol":"5"}"#).expect("parses");
        assert_eq!(cfg.qos.for_kind(EventKind::Location), Qos::AtMostOnce);
        assert_eq!(cfg.qos.for_kind(EventKind::Alarm), Qos::AtLeastOnce);
        assert_eq!(cfg.protocol, MqttProtocol::V5);
    }

    #[test]
    fn spool_settings_parse() {
        let cfg: MqttConfig = serde_json::from_str(
            r#"{"spool":{"dir":"/var/lib/vgate/spool","max_bytes":1000,"when_full":"drop_oldest"}}"#,
        )
        .expect("parses");
        assert_eq!(cfg.spool.dir, Some(PathBuf::from("/var/lib/vgate/spool")));
        assert_eq!(cfg.spool.max_bytes, 1000);
        assert_eq!(cfg.spool.when_full, WhenFull::DropOldest);
        assert!(serde_json::from_str::<MqttConfig>(r#"{"spool":{"when_full":"drop"}}"#).is_err());
        assert_eq!(SpoolConfig::default().when_full, WhenFull::Backpressure);
    }
}

/// QoS per event type that a reload can change while publishers run: one byte, one bit per
/// kind, read with one relaxed load per publish.
#[derive(Debug)]
pub struct LiveQos(std::sync::atomic::AtomicU8);

impl LiveQos {
    pub fn new(q: QosConfig) -> LiveQos {
        LiveQos(std::sync::atomic::AtomicU8::new(q.to_bits()))
    }

    /// The QoS for events of `kind` now.
    pub fn for_kind(&self, kind: EventKind) -> Qos {
        if self.0.load(std::sync::atomic::Ordering::Relaxed) & qos_bit(kind) != 0 {
            Qos::AtLeastOnce
        } else {
            Qos::AtMostOnce
        }
    }

    /// The whole configuration now.
    pub fn get(&self) -> QosConfig {
        QosConfig::from_bits(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Publishes from now on use `q`.
    pub fn set(&self, q: QosConfig) {
        self.0
            .store(q.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod live_qos_tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_bit_and_a_set_applies_to_later_reads() {
        let mut q = QosConfig::default();
        assert_eq!(QosConfig::from_bits(q.to_bits()), q);
        q.location = Qos::AtMostOnce;
        q.media = Qos::AtMostOnce;
        assert_eq!(QosConfig::from_bits(q.to_bits()), q);
        let live = LiveQos::new(QosConfig::default());
        assert_eq!(live.for_kind(EventKind::Location), Qos::AtLeastOnce);
        live.set(q);
        assert_eq!(live.for_kind(EventKind::Location), Qos::AtMostOnce);
        assert_eq!(live.for_kind(EventKind::Media), Qos::AtMostOnce);
        assert_eq!(live.for_kind(EventKind::Alarm), Qos::AtLeastOnce);
        assert_eq!(live.get(), q);
    }
}
