//! The two rumqttc clients (MQTT 3.1.1 and MQTT 5) behind one type, so the publisher, the
//! command acks and the bridge do not care which protocol the broker speaks.

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::Publish as Publish5;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::{QoS, SubscribeFilter};

use crate::config::Qos;
use crate::BridgeError;

/// A request handle to the event loop of either protocol.
#[derive(Debug, Clone)]
pub(crate) enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// An incoming publish kept until the gateway acknowledges it.
#[derive(Debug)]
pub(crate) enum Received {
    V4(rumqttc::Publish),
    V5(Box<Publish5>),
}

impl Received {
    /// Delivered at QoS 0: there is no PUBACK to send and the broker never redelivers it.
    pub fn at_most_once(&self) -> bool {
        match self {
            Received::V4(p) => p.qos == QoS::AtMostOnce,
            Received::V5(p) => p.qos == QoS5::AtMostOnce,
        }
    }
}

fn q4(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

fn q5(q: Qos) -> QoS5 {
    match q {
        Qos::AtMostOnce => QoS5::AtMostOnce,
        Qos::AtLeastOnce => QoS5::AtLeastOnce,
    }
}

impl Client {
    /// Hands a publish to the event loop (waits for it to take the request).
    pub async fn publish(
        &self,
        topic: String,
        qos: Qos,
        retain: bool,
        payload: Bytes,
        correlation: Option<Bytes>,
    ) -> Result<(), BridgeError> {
        let r = match self {
            Client::V4(c) => c
                .publish_bytes(topic, q4(qos), retain, payload)
                .await
                .is_ok(),
            Client::V5(c) => match correlation {
                None => c
                    .publish_bytes(topic, q5(qos), retain, payload)
                    .await
                    .is_ok(),
                Some(data) => {
                    let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
                        correlation_data: Some(data),
                        ..Default::default()
                    };
                    c.publish_bytes_with_properties(topic, q5(qos), retain, payload, props)
                        .await
                        .is_ok()
                }
            },
        };
        r.then_some(()).ok_or(BridgeError::Closed)
    }

    /// Subscribes to `filters` with QoS 1.
    pub async fn subscribe(&self, filters: [String; 2]) -> Result<(), BridgeError> {
        let r = match self {
            Client::V4(c) => {
                let f = filters.map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce));
                c.subscribe_many(f).await.is_ok()
            }
            Client::V5(c) => {
                let f =
                    filters.map(|f| rumqttc::v5::mqttbytes::v5::Filter::new(f, QoS5::AtLeastOnce));
                c.subscribe_many(f).await.is_ok()
            }
        };
        r.then_some(()).ok_or(BridgeError::Closed)
    }

    /// Unsubscribes from `filters` (one UNSUBSCRIBE each).
    pub async fn unsubscribe(&self, filters: [String; 2]) -> Result<(), BridgeError> {
        for f in filters {
            let ok = match self {
                Client::V4(c) => c.unsubscribe(f).await.is_ok(),
                Client::V5(c) => c.unsubscribe(f).await.is_ok(),
            };
            if !ok {
                return Err(BridgeError::Closed);
            }
        }
        Ok(())
    }

    /// Sends the PUBACK of a received publish (nothing for QoS 0).
    pub async fn ack(&self, received: &Received) -> Result<(), BridgeError> {
        let r = match (self, received) {
            (Client::V4(c), Received::V4(p)) => c.ack(p).await.is_ok(),
            (Client::V5(c), Received::V5(p)) => c.ack(p).await.is_ok(),
            // A publish is only ever acknowledged through the client that received it.
            _ => false,
        };
        r.then_some(()).ok_or(BridgeError::Closed)
    }

    /// Sends DISCONNECT.
    pub async fn disconnect(&self) -> Result<(), BridgeError> {
        let r = match self {
            Client::V4(c) => c.disconnect().await.is_ok(),
            Client::V5(c) => c.disconnect().await.is_ok(),
        };
        r.then_some(()).ok_or(BridgeError::Closed)
    }
}
