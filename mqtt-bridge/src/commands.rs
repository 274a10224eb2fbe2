//! Incoming commands: what arrives on `{p}/v1/+/cmd` and `{p}/broadcast/+/cmd`.
//!
//! The MQTT message is acknowledged only when the gateway says so ([`IncomingCommand::ack`]),
//! after it has stored the command: the session is persistent (clean_session false), so a
//! crash between delivery and storage means the broker delivers the command again.

use std::time::Duration;

use bytes::Bytes;

use crate::connection::{Client, Received};
use crate::topics::Target;
use crate::BridgeError;

/// A command received from the platform, not yet acknowledged to the broker.
#[derive(Debug)]
pub struct IncomingCommand {
    /// The vehicle or group it is for (from the topic).
    pub target: Target,
    /// The topic it arrived on.
    pub topic: String,
    /// The command JSON, as received (contract §4); parsing it is the gateway's job.
    pub payload: Bytes,
    /// MQTT 5 Response Topic: where results go too (always `None` on MQTT 3.1.1).
    pub response_topic: Option<String>,
    /// MQTT 5 Correlation Data, to send back with results (always `None` on MQTT 3.1.1).
    pub correlation_data: Option<Bytes>,
    /// MQTT 5 Message Expiry Interval: the command's TTL (always `None` on MQTT 3.1.1).
    pub message_expiry: Option<Duration>,
    /// The broker may deliver a command twice (after a reconnect); the command `id` dedupes.
    pub redelivered: bool,
    ack: Acker,
}

/// What the protocol-specific event loop extracted from a command PUBLISH.
#[derive(Debug)]
pub(crate) struct Parts {
    pub topic: String,
    pub payload: Bytes,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub message_expiry: Option<Duration>,
    pub redelivered: bool,
}

impl IncomingCommand {
    pub(crate) fn new(target: Target, parts: Parts, ack: Acker) -> Self {
        IncomingCommand {
            target,
            topic: parts.topic,
            payload: parts.payload,
            response_topic: parts.response_topic,
            correlation_data: parts.correlation_data,
            message_expiry: parts.message_expiry,
            redelivered: parts.redelivered,
            ack,
        }
    }

    /// Acknowledges the MQTT message (PUBACK). Call it once the command is stored; until
    /// then the broker keeps it for us. After a reconnect the broker has already sent the
    /// command again (it was unacknowledged), and that copy is the one to acknowledge.
    pub async fn ack(self) -> Result<(), BridgeError> {
        self.ack.ack().await
    }
}

/// The means to acknowledge one received publish.
#[derive(Debug)]
pub(crate) struct Acker {
    client: Client,
    received: Received,
}

impl Acker {
    pub(crate) fn new(client: Client, received: Received) -> Self {
        Acker { client, received }
    }

    pub(crate) async fn ack(self) -> Result<(), BridgeError> {
        self.client.ack(&self.received).await
    }
}
