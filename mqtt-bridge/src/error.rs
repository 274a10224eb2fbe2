//! The crate's one error type.
//!
//! Every failure the gateway can act on has its own variant, with the broker named where
//! one is involved, so an operator reading a log line knows *which* broker said *what*.

use std::net::SocketAddr;

/// Why the broker refused our CONNECT (the MQTT 3.1.1 CONNACK return codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// The broker does not speak our protocol version.
    ProtocolVersion,
    /// The broker rejected the client id.
    BadClientId,
    /// The broker is up but not serving.
    ServiceUnavailable,
    /// Wrong user name or password.
    BadCredentials,
    /// Credentials accepted but not allowed to connect (MQTT 5: also banned).
    NotAuthorized,
    /// Another MQTT 5 reason code (logged in full).
    Other,
}

impl RefusedReason {
    /// A short label for logs and the `reason` metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefusedReason::ProtocolVersion => "protocol_version",
            RefusedReason::BadClientId => "bad_client_id",
            RefusedReason::ServiceUnavailable => "service_unavailable",
            RefusedReason::BadCredentials => "bad_credentials",
            RefusedReason::NotAuthorized => "not_authorized",
            RefusedReason::Other => "other",
        }
    }
}

impl std::fmt::Display for RefusedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusedReason::ProtocolVersion => "unsupported protocol version",
            RefusedReason::BadClientId => "client id rejected",
            RefusedReason::ServiceUnavailable => "service unavailable",
            RefusedReason::BadCredentials => "bad user name or password",
            RefusedReason::NotAuthorized => "not authorized",
            RefusedReason::Other => "refused (see the log for the MQTT 5 reason code)",
        })
    }
}

/// Errors of the MQTT bridge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// A configuration value is unusable; `key` names the setting.
    #[error("mqtt config: {key}: {reason}")]
    Config {
        /// The config key, e.g. `mqtt.url`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A file named in the config (CA, certificate, key) could not be read.
    #[error("mqtt config: {key}: cannot read {path}: {reason}")]
    File {
        /// The config key naming the file.
        key: &'static str,
        /// The path as configured.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The broker answered CONNECT with a refusal.
    #[error("MQTT broker {broker} refused the connection: {reason}")]
    Refused {
        /// `host:port` of the broker.
        broker: String,
        /// The CONNACK return code.
        reason: RefusedReason,
    },
    /// The broker could not be reached before the connect timeout.
    #[error("MQTT broker {broker} unreachable: {reason}")]
    Unreachable {
        /// `host:port` of the broker.
        broker: String,
        /// The last connection error.
        reason: String,
    },
    /// The embedded broker could not listen on its address.
    #[error("embedded MQTT broker cannot listen on {addr}: {reason}")]
    EmbeddedListen {
        /// The configured listen address.
        addr: SocketAddr,
        /// The bind error.
        reason: String,
    },
    /// The embedded broker failed to start.
    #[error("embedded MQTT broker: {0}")]
    Embedded(String),
    /// A publish is larger than the configured maximum packet size.
    #[error("MQTT publish on {topic} is {len} bytes, more than the maximum {max}")]
    TooLarge {
        /// The topic.
        topic: String,
        /// Topic plus payload length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The broker acknowledged a publish with an MQTT 5 error reason code.
    #[error("MQTT broker rejected the publish: {reason}")]
    Rejected {
        /// The PUBACK reason code, as its name.
        reason: String,
    },
    /// The vehicle id cannot be a topic level.
    #[error("vehicle id {0:?} cannot be used in an MQTT topic")]
    BadVehicleId(String),
    /// The bridge has shut down (or its connection task ended): nothing more can be sent.
    #[error("MQTT bridge is closed")]
    Closed,
}
