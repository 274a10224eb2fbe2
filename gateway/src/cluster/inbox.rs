//! A node's inbox: how one node tells another "commands wait for vehicle X" or "vehicle X
//! logged in here, close yours".
//!
//! # Why Redis pub/sub, not an MQTT topic
//! The notices are wake-ups, not data: the command itself is already stored in the shared
//! queue before anyone is told, and the node that holds the vehicle reads it from there. So
//! an inbox may lose a notice without losing a command, as long as the receiver catches up:
//! after every (re)subscription it wakes every session it holds, and each presence renewal
//! closes a connection whose vehicle another node claimed. Redis pub/sub gives exactly that
//! at the lowest cost: one PUBLISH on the connection the node already has, no retained
//! state, nothing on the platform's broker (where `{p}/gateway/{node}/inbox` would be
//! visible to, and writable by, every platform client with access to the prefix, and would
//! need an ACL of its own). Classic PUBLISH reaches every node of a Redis Cluster, so the
//! subscriber may sit on any one of them.
//!
//! Channel: `{ns}:inbox:{node}`. Payload: `d\x1f{vid}[\x1f{vid}...]` (deliver, up to 500
//! vehicles: a broadcast tells each node once per 500 of its vehicles), `t\x1f{vid}`
//! (takeover) or `k\x1f{ban_s}\x1f{vid}` (an operator's kick, sent to every live node).
//! Counted in `vgate_cluster_inbox_total{direction="sent"|"received", kind}`.

use std::sync::Arc;
use std::time::Duration;

use codecs::event::{Lifecycle, LifecycleKind, PresenceReason};
use futures::StreamExt;
use tracing::{debug, info, warn};

use super::redis::Redis;
use crate::registry::{Control, LocalRegistry};
use crate::sink::Sink;

/// What one node tells another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Commands wait in the queue for these vehicles: send what the window allows.
    Deliver(Vec<String>),
    /// Another node claimed this vehicle: close the connection here (lifecycle `takeover`).
    Takeover(String),
    /// An operator kicked this vehicle on another node: close the connection here if it is
    /// here (reason `kicked`), and refuse its logins for the seconds given (0: no ban).
    Kick { vehicle: String, ban_s: u64 },
}

impl Notice {
    fn encode(&self) -> String {
        match self {
            Notice::Deliver(vs) => format!("d\x1f{}", vs.join("\x1f")),
            Notice::Takeover(v) => format!("t\x1f{v}"),
            Notice::Kick { vehicle, ban_s } => format!("k\x1f{ban_s}\x1f{vehicle}"),
        }
    }

    fn decode(s: &str) -> Option<Notice> {
        match s.split_once('\x1f')? {
            ("d", vs) => Some(Notice::Deliver(
                vs.split('\x1f').map(str::to_owned).collect(),
            )),
            ("t", v) => Some(Notice::Takeover(v.to_owned())),
            ("k", rest) => {
                let (ban_s, vehicle) = rest.split_once('\x1f')?;
                Some(Notice::Kick {
                    vehicle: vehicle.to_owned(),
                    ban_s: ban_s.parse().ok()?,
                })
            }
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Notice::Deliver(_) => "deliver",
            Notice::Takeover(_) => "takeover",
            Notice::Kick { .. } => "kick",
        }
    }
}

/// The sending side: publishes notices to other nodes' inboxes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Inbox {
    redis: Redis,
    ns: Arc<str>,
}

impl Inbox {
    pub fn new(redis: Redis, ns: Arc<str>) -> Inbox {
        Inbox { redis, ns }
    }

    fn channel(&self, node: &str) -> String {
        format!("{}:inbox:{node}", self.ns)
    }

    /// Sends `notice` to `node` (best effort: a lost notice is caught up, module docs).
    pub async fn send(&self, node: &str, notice: Notice) {
        let r = self
            .redis
            .query::<i64>(
                "inbox_publish",
                redis::cmd("PUBLISH")
                    .arg(self.channel(node))
                    .arg(notice.encode()),
            )
            .await;
        match r {
            Ok(_) => metrics::counter!("vgate_cluster_inbox_total", "direction" => "sent", "kind" => notice.kind()).increment(1),
            Err(e) => debug!(node, error = %e, "inbox notice not sent"),
        }
    }

    /// Listens on `node`'s inbox until `shutdown`: wakes or closes local sessions. After
    /// every (re)subscription every local session is woken, so a notice lost while the
    /// subscription was down costs a look at the queue, not a command.
    pub async fn listen(
        self,
        node: Arc<str>,
        presence: super::presence::Keys,
        local: LocalRegistry,
        sink: Sink,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let channel = self.channel(&node);
        loop {
            let sub = async {
                let client = self.redis.pubsub_client().await?;
                let mut ps = tokio::time::timeout(self.redis.timeout(), client.get_async_pubsub())
                    .await
                    .map_err(|_| super::redis::RedisError::Timeout(self.redis.timeout()))??;
                ps.subscribe(&channel).await?;
                Ok::<_, super::redis::RedisError>(ps)
            };
            let mut ps = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = sub => match r {
                    Ok(ps) => ps,
                    Err(e) => {
                        warn!(error = %e, "inbox: cannot subscribe; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            };
            info!(channel = %channel, "inbox subscribed");
            for (_, h) in local.all() {
                let _ = h.control.try_send(Control::Deliver);
            }
            let mut stream = ps.on_message();
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    m = stream.next() => m,
                };
                let Some(msg) = msg else {
                    warn!("inbox: subscription lost; resubscribing");
                    break;
                };
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                let Some(notice) = Notice::decode(&payload) else {
                    continue;
                };
                metrics::counter!("vgate_cluster_inbox_total", "direction" => "received", "kind" => notice.kind()).increment(1);
                match notice {
                    Notice::Deliver(vs) => {
                        for v in vs {
                            if let Some(h) = local.get(&v) {
                                let _ = h.control.try_send(Control::Deliver);
                            }
                        }
                    }
                    Notice::Takeover(v) => {
                        self.takeover(&v, &node, &presence, &local, &sink).await;
                    }
                    Notice::Kick { vehicle, ban_s } => {
                        if ban_s > 0 {
                            crate::bans::ban(&vehicle, Duration::from_secs(ban_s));
                        }
                        if let Some(h) = local.get(&vehicle) {
                            info!(vehicle = %vehicle, peer = %h.peer, ban_s, "vehicle kicked by an operator on another node");
                            let _ = h.control.try_send(Control::Close(PresenceReason::Kicked));
                        }
                    }
                }
            }
            drop(stream);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Another node claimed `vid`: close the connection here if the claim is still the
    /// newest (an older notice must not close a connection that came back here since).
    async fn takeover(
        &self,
        vid: &str,
        node: &Arc<str>,
        presence: &super::presence::Keys,
        local: &LocalRegistry,
        sink: &Sink,
    ) {
        let Some(h) = local.get(vid) else { return };
        let holder: Option<String> = self
            .redis
            .query(
                "presence_get",
                redis::cmd("GET").arg(presence.presence(vid)),
            )
            .await
            .unwrap_or(None);
        let Some(holder) = holder.filter(|h| **h != *presence.inc) else {
            return;
        };
        let ctx = codecs::EventContext {
            gateway: node.clone(),
            received_at: chrono::Utc::now(),
            device_utc_offset_secs: codecs::time::BEIJING_OFFSET_SECS,
        };
        let lc = Lifecycle::new(LifecycleKind::Takeover)
            .with("previous_peer", h.peer.to_string())
            .with("previous_node", node.to_string())
            .with("node", super::presence::node_of(&holder).to_owned());
        let ev = codecs::Event::new(
            &ctx,
            Arc::from(vid),
            h.protocol,
            None,
            None,
            codecs::Data::Lifecycle(lc),
        );
        let _ = sink.publish(ev).await;
        let _ = h.control.try_send(Control::Close(PresenceReason::Takeover));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        for n in [
            Notice::Deliver(vec!["v1".into()]),
            Notice::Deliver(vec!["v1".into(), "v2".into()]),
            Notice::Takeover("013800138000".into()),
            Notice::Kick {
                vehicle: "LVGBT000000000001".into(),
                ban_s: 600,
            },
            Notice::Kick {
                vehicle: "013800138000".into(),
                ban_s: 0,
            },
        ] {
            assert_eq!(Notice::decode(&n.encode()), Some(n));
        }
        assert_eq!(Notice::decode("x\x1fv"), None);
        assert_eq!(Notice::decode("nothing"), None);
    }
}
