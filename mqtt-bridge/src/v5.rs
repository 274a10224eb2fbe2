//! The MQTT 5 event loop: the same job as the 3.1.1 one in `bridge.rs`, with rumqttc's `v5`
//! types, PUBACK reason codes (a refused publish fails its `Delivery`), and the command
//! properties the contract uses: Response Topic, Correlation Data, Message Expiry Interval.

use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason};
use rumqttc::v5::{ConnectionError, Event, EventLoop};
use rumqttc::Outgoing;

use crate::bridge::Loop;
use crate::commands::Parts;
use crate::connection::Received;
use crate::{BridgeError, RefusedReason};

fn refused_reason(code: ConnectReturnCode) -> RefusedReason {
    use ConnectReturnCode as C;
    match code {
        C::BadUserNamePassword => RefusedReason::BadCredentials,
        C::NotAuthorized | C::Banned => RefusedReason::NotAuthorized,
        C::RefusedProtocolVersion | C::UnsupportedProtocolVersion => RefusedReason::ProtocolVersion,
        C::BadClientId | C::ClientIdentifierNotValid => RefusedReason::BadClientId,
        C::ServiceUnavailable | C::ServerUnavailable | C::ServerBusy => {
            RefusedReason::ServiceUnavailable
        }
        _ => RefusedReason::Other,
    }
}

/// Polls until the first CONNACK; see `bridge::first_connect`.
pub(crate) async fn first_connect(
    ev: &mut EventLoop,
    broker: &str,
    timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    primary: bool,
    spooled: bool,
) -> Result<(), BridgeError> {
    let started = Instant::now();
    let mut backoff = backoff_min;
    let mut said_waiting = false;
    loop {
        match ev.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if primary {
                    metrics::gauge!("vgate_mqtt_connected").set(1.0);
                }
                return Ok(());
            }
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => {
                let reason = refused_reason(code);
                metrics::counter!("vgate_mqtt_refused_total", "reason" => reason.as_str())
                    .increment(1);
                tracing::error!(%broker, %reason, code = ?code, "MQTT broker refused the connection");
                return Err(BridgeError::Refused {
                    broker: broker.to_owned(),
                    reason,
                });
            }
            Err(e) => {
                if started.elapsed() >= timeout {
                    return Err(BridgeError::Unreachable {
                        broker: broker.to_owned(),
                        reason: e.to_string(),
                    });
                }
                if primary && !said_waiting {
                    said_waiting = true;
                    crate::bridge::log_waiting(broker, &e, timeout, spooled);
                }
                tracing::debug!(%broker, error = %e, "MQTT connect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(backoff_max);
            }
        }
    }
}

/// The MQTT 5 event loop task.
pub(crate) async fn run(mut ev: EventLoop, lp: Loop) {
    let mut backoff = lp.backoff_min;
    let mut connected = true;
    loop {
        match ev.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected = true;
                backoff = lp.backoff_min;
                lp.reconnected(ack.session_present);
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let outcome = match ack.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                    other => Err(BridgeError::Rejected {
                        reason: format!("{other:?}"),
                    }),
                };
                lp.tracker().puback_with(ack.pkid, outcome);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let props = p.properties.clone().unwrap_or_default();
                let parts = Parts {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload.clone(),
                    response_topic: props.response_topic,
                    correlation_data: props.correlation_data,
                    message_expiry: props
                        .message_expiry_interval
                        .map(|s| Duration::from_secs(u64::from(s))),
                    redelivered: p.dup,
                };
                lp.command(parts, Received::V5(Box::new(p)));
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lp.tracker().outgoing_publish(pkid),
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => lp.tracker().await_ack(pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) if lp.stopping() => return,
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(_) if lp.stopping() => return,
            Err(e) => {
                let refused = match &e {
                    ConnectionError::ConnectionRefused(code) => {
                        Some((refused_reason(*code), format!("{code:?}")))
                    }
                    _ => None,
                };
                lp.lost(&mut connected, refused, &e, &mut backoff).await;
            }
        }
    }
}
