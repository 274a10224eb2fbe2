//! Our [`MqttConfig`] mapped into rumqttc's `MqttOptions`: URL, client id, credentials,
//! keepalive, persistent session, inflight, packet size, manual acks, last will and TLS.
//!
//! Kept apart from the connection logic so the mapping is tested without a broker.

use std::time::Duration;

use rumqttc::v5::MqttOptions as V5Options;
use rumqttc::{LastWill, MqttOptions, NetworkOptions, QoS, TlsConfiguration, Transport};

use crate::config::MqttConfig;
use crate::BridgeError;

/// Where the bridge connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerAddr {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerAddr {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub fn parse(url: &str) -> Result<Self, BridgeError> {
        let bad = |reason: &str| BridgeError::Config {
            key: "mqtt.url",
            reason: format!("{url:?}: {reason}"),
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err(bad("expected mqtt://host:port or mqtts://host:port"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') {
            return Err(bad(
                "no path or user info allowed (use mqtt.username/password)",
            ));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h, p.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None => default_port,
        };
        Ok(BrokerAddr {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// `host:port`, for errors and logs.
    pub fn display(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// How long an MQTT 5 broker keeps our session (and our unacknowledged commands) while we
/// are away: a week, longer than the default command TTL.
const SESSION_EXPIRY_S: u32 = 7 * 24 * 3600;

/// Most MQTT connections (lanes) one bridge opens (`mqtt.connections`).
pub(crate) const MAX_CONNECTIONS: u16 = 16;

pub(crate) fn check(cfg: &MqttConfig) -> Result<(), BridgeError> {
    if cfg.inflight == 0 || cfg.queue_capacity == 0 || cfg.command_capacity == 0 {
        return Err(BridgeError::Config {
            key: "mqtt.inflight",
            reason: "inflight, queue_capacity and command_capacity must be at least 1".into(),
        });
    }
    if !(1..=MAX_CONNECTIONS).contains(&cfg.connections) {
        return Err(BridgeError::Config {
            key: "mqtt.connections",
            reason: format!(
                "{} connections: must be 1 to {MAX_CONNECTIONS}",
                cfg.connections
            ),
        });
    }
    if cfg.spool.spill_after_ms == 0 {
        return Err(BridgeError::Config {
            key: "mqtt.spool.spill_after_ms",
            reason: "must be at least 1 (milliseconds)".into(),
        });
    }
    if cfg.username.is_none() && cfg.password.is_some() {
        return Err(BridgeError::Config {
            key: "mqtt.password",
            reason: "a password needs a username".into(),
        });
    }
    Ok(())
}

/// Everything [`crate::Bridge::start`] would refuse in `cfg` before connecting or binding
/// anything: [`check`], then, for an external broker, the URL and the TLS settings (files
/// named in `[mqtt.tls]` must be readable; `mqtts://` needs a CA file; `mqtt://` takes no TLS
/// files; `server_name` may only repeat the URL's host).
pub(crate) fn validate(cfg: &MqttConfig) -> Result<(), BridgeError> {
    check(cfg)?;
    if let Some(url) = &cfg.url {
        let broker = BrokerAddr::parse(url)?;
        transport(cfg, &broker)?;
    }
    Ok(())
}

fn transport(cfg: &MqttConfig, broker: &BrokerAddr) -> Result<Option<Transport>, BridgeError> {
    if broker.tls {
        Ok(Some(Transport::Tls(tls(cfg, broker)?)))
    } else if cfg.tls.ca_file.is_some() || cfg.tls.cert_file.is_some() {
        Err(BridgeError::Config {
            key: "mqtt.tls",
            reason: "TLS files are set but the url is mqtt://, not mqtts://".into(),
        })
    } else {
        Ok(None)
    }
}

/// The TCP options of every broker connection: TCP_NODELAY (rumqttc leaves Nagle on). The
/// event loop already writes the requests that are queued together (vendor/rumqttc, change
/// 1); with Nagle a small write waits for the ACK of the previous one, which the broker may
/// delay by up to 40 ms (delayed ACK): `scripts/bench.sh` step 2 showed recurring seconds
/// whose worst frame-in -> MQTT-out latency was 41-46 ms, 7-23 ms with TCP_NODELAY. The
/// connect timeout stays rumqttc's (5 s per attempt).
pub(crate) fn network_options() -> NetworkOptions {
    let mut n = NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}

/// MQTT 3.1.1 client options for `broker`, with `will` (topic, payload) as retained last will
/// (none for the publish-only lanes).
pub(crate) fn options(
    cfg: &MqttConfig,
    broker: &BrokerAddr,
    client_id: &str,
    will: Option<(String, Vec<u8>)>,
) -> Result<MqttOptions, BridgeError> {
    check(cfg)?;
    let mut o = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    o.set_keep_alive(Duration::from_secs(u64::from(cfg.keepalive_s.max(5))))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(cfg.inflight)
        .set_max_packet_size(cfg.max_packet_size, cfg.max_packet_size);
    if let Some((topic, payload)) = will {
        o.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, true));
    }
    if let Some(u) = &cfg.username {
        o.set_credentials(u.clone(), cfg.password.clone().unwrap_or_default());
    }
    if let Some(t) = transport(cfg, broker)? {
        o.set_transport(t);
    }
    Ok(o)
}

/// MQTT 5 client options: as [`options`], with a session expiry so the session persists.
pub(crate) fn options_v5(
    cfg: &MqttConfig,
    broker: &BrokerAddr,
    client_id: &str,
    will: Option<(String, Vec<u8>)>,
) -> Result<V5Options, BridgeError> {
    use rumqttc::v5::mqttbytes::v5::{ConnectProperties, LastWill as Will5};
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    check(cfg)?;
    let mut props = ConnectProperties::new();
    props.session_expiry_interval = Some(SESSION_EXPIRY_S);
    props.max_packet_size = u32::try_from(cfg.max_packet_size).ok();
    // Receive Maximum: the broker sends at most this many unacknowledged QoS 1 commands; the
    // rest wait on the broker until vgate has stored (and acknowledged) what it took.
    props.receive_maximum = Some(
        u16::try_from(cfg.command_capacity)
            .unwrap_or(u16::MAX)
            .max(1),
    );
    let mut o = V5Options::new(client_id, broker.host.clone(), broker.port);
    o.set_connect_properties(props)
        .set_keep_alive(Duration::from_secs(u64::from(cfg.keepalive_s.max(5))))
        .set_clean_start(false)
        .set_manual_acks(true)
        .set_outgoing_inflight_upper_limit(cfg.inflight)
        .set_network_options(network_options());
    if let Some((topic, payload)) = will {
        o.set_last_will(Will5::new(topic, payload, QoS5::AtLeastOnce, true, None));
    }
    if let Some(u) = &cfg.username {
        o.set_credentials(u.clone(), cfg.password.clone().unwrap_or_default());
    }
    if let Some(t) = transport(cfg, broker)? {
        o.set_transport(t);
    }
    Ok(o)
}

fn read(key: &'static str, path: &str) -> Result<Vec<u8>, BridgeError> {
    std::fs::read(path).map_err(|e| BridgeError::File {
        key,
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn tls(cfg: &MqttConfig, broker: &BrokerAddr) -> Result<TlsConfiguration, BridgeError> {
    let t = &cfg.tls;
    if let Some(name) = &t.server_name {
        if name != &broker.host {
            return Err(BridgeError::Config {
                key: "mqtt.tls.server_name",
                reason: format!(
                    "{name:?} differs from the url's host {:?}; the certificate is verified \
                     against the url's host, so put that name in the url",
                    broker.host
                ),
            });
        }
    }
    let ca_path = t.ca_file.as_deref().ok_or_else(|| BridgeError::Config {
        key: "mqtt.tls.ca_file",
        reason: "mqtts:// needs a CA file (the system bundle for a public CA)".into(),
    })?;
    let ca = read("mqtt.tls.ca_file", ca_path)?;
    let client_auth = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some((
            read("mqtt.tls.cert_file", c)?,
            read("mqtt.tls.key_file", k)?,
        )),
        (None, None) => None,
        _ => {
            return Err(BridgeError::Config {
                key: "mqtt.tls.cert_file",
                reason: "cert_file and key_file go together".into(),
            })
        }
    };
    Ok(TlsConfiguration::Simple {
        ca,
        alpn: None,
        client_auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsConfig;

    #[test]
    fn urls_parse_with_default_ports_per_scheme() {
        let a = BrokerAddr::parse("mqtt://broker.local").expect("valid");
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("broker.local", 1883, false)
        );
        let a = BrokerAddr::parse("mqtts://broker.local:9999/").expect("valid");
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("broker.local", 9999, true)
        );
        let a = BrokerAddr::parse("mqtt://[::1]:1884").expect("valid");
        assert_eq!((a.host.as_str(), a.port), ("::1", 1884));
        assert_eq!(a.display(), "::1:1884");
    }

    #[test]
    fn bad_urls_name_the_key() {
        for url in [
            "tcp://x",
            "mqtt://",
            "mqtt://h:port",
            "mqtt://u:p@h",
            "mqtt://h/a",
        ] {
            match BrokerAddr::parse(url) {
                Err(BridgeError::Config { key, .. }) => assert_eq!(key, "mqtt.url"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn options_use_a_persistent_session_manual_acks_and_a_retained_will() {
        let cfg = MqttConfig::default();
        let b = BrokerAddr::parse("mqtt://h:1").expect("valid");
        let o = options(
            &cfg,
            &b,
            "vgate-n1",
            Some(("p/gateway/n1/status".into(), b"{}".to_vec())),
        )
        .expect("valid");
        assert!(!o.clean_session());
        assert_eq!(o.client_id(), "vgate-n1");
        assert_eq!(o.inflight(), cfg.inflight);
        let will = o.last_will().expect("will set");
        assert!(will.retain);
        assert_eq!(will.topic, "p/gateway/n1/status");
    }

    #[test]
    fn mqtt_5_options_keep_the_session_for_a_week() {
        let b = BrokerAddr::parse("mqtt://h").expect("valid");
        let o = options_v5(
            &MqttConfig::default(),
            &b,
            "c",
            Some(("t".into(), Vec::new())),
        )
        .expect("valid");
        assert!(!o.clean_start());
        let props = o.connect_properties().expect("properties set");
        assert_eq!(props.session_expiry_interval, Some(SESSION_EXPIRY_S));
        assert!(o.last_will().expect("will").retain);
    }

    #[test]
    fn lanes_have_no_will() {
        let b = BrokerAddr::parse("mqtt://h").expect("valid");
        let o = options(&MqttConfig::default(), &b, "vgate-n1-1", None).expect("valid");
        assert!(o.last_will().is_none());
        let o = options_v5(&MqttConfig::default(), &b, "vgate-n1-1", None).expect("valid");
        assert!(o.last_will().is_none());
    }

    #[test]
    fn connections_outside_1_to_16_are_a_config_error_naming_the_key() {
        for n in [0, 17] {
            let cfg = MqttConfig {
                connections: n,
                ..MqttConfig::default()
            };
            match check(&cfg) {
                Err(BridgeError::Config { key, .. }) => assert_eq!(key, "mqtt.connections"),
                other => panic!("{n}: {other:?}"),
            }
        }
        for n in [1, 16] {
            let cfg = MqttConfig {
                connections: n,
                ..MqttConfig::default()
            };
            check(&cfg).expect("valid");
        }
    }

    #[test]
    fn a_zero_spill_after_is_a_config_error_naming_the_key() {
        let mut cfg = MqttConfig::default();
        cfg.spool.spill_after_ms = 0;
        match check(&cfg) {
            Err(BridgeError::Config { key, .. }) => assert_eq!(key, "mqtt.spool.spill_after_ms"),
            other => panic!("{other:?}"),
        }
        cfg.spool.spill_after_ms = 1;
        check(&cfg).expect("valid");
    }

    fn key_of(r: Result<(), BridgeError>) -> &'static str {
        match r {
            Err(BridgeError::Config { key, .. } | BridgeError::File { key, .. }) => key,
            other => panic!("not a config error: {other:?}"),
        }
    }

    #[test]
    fn validate_refuses_what_start_would_refuse_naming_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not checked before connecting").expect("write");
        let ca = ca.display().to_string();
        let with = |url: Option<&str>, tls: TlsConfig| MqttConfig {
            url: url.map(str::to_owned),
            tls,
            ..MqttConfig::default()
        };
        let ca_only = |path: &str| TlsConfig {
            ca_file: Some(path.to_owned()),
            ..TlsConfig::default()
        };
        for (cfg, key) in [
            (
                with(Some("http://h:1883"), TlsConfig::default()),
                "mqtt.url",
            ),
            (
                with(Some("mqtts://h"), TlsConfig::default()),
                "mqtt.tls.ca_file",
            ),
            (
                with(Some("mqtts://h"), ca_only("/nonexistent/ca.pem")),
                "mqtt.tls.ca_file",
            ),
            (with(Some("mqtt://h"), ca_only(&ca)), "mqtt.tls"),
            (
                MqttConfig {
                    connections: 17,
                    ..MqttConfig::default()
                },
                "mqtt.connections",
            ),
        ] {
            assert_eq!(key_of(validate(&cfg)), key, "{cfg:?}");
        }
        let server_name = TlsConfig {
            server_name: Some("other".into()),
            ..ca_only(&ca)
        };
        assert_eq!(
            key_of(validate(&with(Some("mqtts://h"), server_name))),
            "mqtt.tls.server_name"
        );
        validate(&with(Some("mqtts://h:8883"), ca_only(&ca))).expect("valid");
        validate(&with(Some("mqtt://h"), TlsConfig::default())).expect("valid");
        validate(&MqttConfig::default()).expect("the embedded broker's defaults are valid");
    }

    #[test]
    fn mqtts_without_a_ca_file_is_a_config_error() {
        let b = BrokerAddr::parse("mqtts://h").expect("valid");
        let will = || Some(("t".to_owned(), Vec::new()));
        match options(&MqttConfig::default(), &b, "c", will()) {
            Err(BridgeError::Config { key, .. }) => assert_eq!(key, "mqtt.tls.ca_file"),
            other => panic!("{other:?}"),
        }
    }
}
