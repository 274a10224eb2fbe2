//! Several nodes as one gateway (contract §7): shared state in Redis, commands taken with a
//! shared subscription.
//!
//! ```text
//!             platform ── {p}/v1/{vid}/cmd ──▶ broker ── $share/vgate/... ──▶ one node
//!                                                                               │ store (Redis queue)
//!                                                                               │ ack to the broker
//!   vehicle ◀── session on node B ◀── inbox "deliver vid" (Redis pub/sub) ◀─────┘ if B holds vid
//! ```
//!
//! Nothing here is a cluster protocol of vgate's own: the broker spreads commands over the
//! nodes (a shared subscription gives each message to one subscriber of the group), Redis
//! holds what the nodes share, and each node only ever talks to the two.
//!
//! # Layout
//! - [`redis`]: the connection (standalone, Sentinel, Cluster URLs; deadlines; errors).
//! - [`queue`]: the offline command queue ([`crate::queue::CommandQueue`]) in Redis.
//! - [`presence`]: vehicle -> node with a TTL; takeover across nodes; reaping dead nodes.
//! - [`inbox`]: per-node wake-ups over Redis pub/sub.
//! - [`codes`]: JT/T 808 auth codes shared by every node.
//!
//! Without `cluster.redis_url` none of this runs and a node keeps everything in its data
//! directory, as before.

pub mod codes;
pub mod inbox;
pub mod presence;
pub mod queue;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[cluster]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Redis shared by every node (`VGATE_REDIS_URL`): `redis://`, `rediss://`,
    /// `redis+sentinel://s1:26379,s2:26379/master`, `redis+cluster://n1:6379,n2:6379`.
    /// Unset: one node, everything in `data_dir`.
    pub redis_url: Option<String>,
    /// How long a vehicle's presence (and a node's heartbeat) lives in Redis without being
    /// renewed, seconds. A dead node's vehicles are published offline (`node_down`) this
    /// long after it died, at the latest one more third of it.
    pub presence_ttl_s: u64,
    /// Deadline of one Redis call, milliseconds.
    pub redis_timeout_ms: u64,
    /// One node, no Redis: after a restart that did not follow a clean stop (SIGKILL, a
    /// crash), the vehicles that were online are given this long to reconnect before they
    /// are published offline (`gateway_restart`), seconds.
    pub restart_grace_s: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: None,
            presence_ttl_s: 30,
            redis_timeout_ms: 2000,
            restart_grace_s: 60,
        }
    }
}

impl ClusterConfig {
    /// The Redis URL when cluster mode is on (set and not empty).
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref().filter(|u| !u.is_empty())
    }

    /// The presence TTL.
    pub fn presence_ttl(&self) -> Duration {
        Duration::from_secs(self.presence_ttl_s.max(3))
    }

    /// The deadline of one Redis call.
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(50))
    }
}

/// The shared subscription group every node joins (contract §7: `$share/vgate/...`).
pub const SHARE_GROUP: &str = "vgate";

/// What a node in cluster mode holds: the Redis connection, its identity, and the names
/// under which every node of one gateway meets.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub redis: redis::Redis,
    /// Key namespace: `vgate:{topic_prefix}`: two gateways (prefixes) may share one Redis.
    pub ns: Arc<str>,
    pub node: Arc<str>,
    /// This run of this node: `node/ulid`.
    pub incarnation: Arc<str>,
    pub presence_ttl: Duration,
}

impl Cluster {
    /// Connects to Redis (failing when it cannot be reached now).
    pub async fn connect(
        cfg: &ClusterConfig,
        url: &str,
        topic_prefix: &str,
        node: Arc<str>,
    ) -> Result<Cluster, redis::RedisError> {
        let redis = redis::Redis::connect(url, cfg.redis_timeout()).await?;
        // No '{' or '}' in the namespace: the vehicle id is each key's hash tag.
        let ns: String = format!("vgate:{topic_prefix}")
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        Ok(Cluster {
            redis,
            ns: Arc::from(ns),
            incarnation: Arc::from(format!(
                "{node}/{:x}{:08x}",
                chrono::Utc::now().timestamp_millis(),
                rand::random::<u32>()
            )),
            node,
            presence_ttl: cfg.presence_ttl(),
        })
    }

    /// The presence keys of this incarnation.
    pub fn keys(&self) -> presence::Keys {
        presence::Keys {
            ns: self.ns.clone(),
            inc: self.incarnation.clone(),
            ttl: self.presence_ttl,
        }
    }
}
