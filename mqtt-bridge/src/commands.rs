//! Incoming commands: what arrives on `{p}/v1/+/cmd` and `{p}/broadcast/+/cmd`.
//!
//! The MQTT message is acknowledged only when the gateway says so ([`IncomingCommand::ack`]),
//! after it has stored the command: the session is persistent (clean_session false), so a
//! crash between delivery and storage means the broker delivers the command again.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Publish};

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
    /// MQTT 5 Response Topic (always `None` on MQTT 3.1.1).
    pub response_topic: Option<String>,
    /// MQTT 5 Correlation Data (always `None` on MQTT 3.1.1).
    pub correlation_data: Option<Bytes>,
    /// MQTT 5 Message Expiry Interval (always `None` on MQTT 3.1.1).
    pub message_expiry: Option<Duration>,
    /// The broker may deliver a command twice (after a reconnect); the command `id` dedupes.
    pub redelivered: bool,
    ack: Acker,
}

impl IncomingCommand {
    pub(crate) fn new(target: Target, publish: Publish, client: AsyncClient) -> Self {
        IncomingCommand {
            target,
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
            response_topic: None,
            correlation_data: None,
            message_expiry: None,
            redelivered: publish.dup,
            ack: Acker { client, publish },
        }
    }

    /// Acknowledges the MQTT message (PUBACK). Call it once the command is stored; until
    /// then the broker keeps it for us.
    pub async fn ack(self) -> Result<(), BridgeError> {
        self.ack.ack().await
    }
}

#[derive(Debug)]
pub(crate) struct Acker {
    client: AsyncClient,
    publish: Publish,
}

impl Acker {
    pub(crate) fn new(client: AsyncClient, publish: Publish) -> Self {
        Acker { client, publish }
    }

    pub(crate) async fn ack(self) -> Result<(), BridgeError> {
        self.client
            .ack(&self.publish)
            .await
            .map_err(|_| BridgeError::Closed)
    }
}
