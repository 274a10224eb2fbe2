//! The connection to Redis: one handle for standalone, Sentinel and Cluster deployments.
//!
//! # URLs
//! * `redis://[user:pass@]host:port[/db]`, `rediss://...` (TLS): one server.
//! * `redis+sentinel://[user:pass@]s1:26379,s2:26379/mymaster[/db]` (`rediss+sentinel://`
//!   for TLS to the master): the master named `mymaster`, found through the Sentinels;
//!   `user:pass` are the master's credentials (Sentinels are asked without).
//! * `redis+cluster://[user:pass@]n1:6379,n2:6379` (`rediss+cluster://`): a Redis Cluster,
//!   the nodes listed being seeds (the client learns the slot map from them).
//!
//! # Why redis-rs
//! redis-rs (the `redis` crate) covers the three deployments with one command API: its
//! `ConnectionManager` reconnects a standalone connection by itself, `cluster_async` follows
//! MOVED/ASK redirections and slot map changes, and its `sentinel` module resolves a master
//! through Sentinels. Scripts (`EVALSHA` with a fall back to `EVAL`) are built in, and every
//! connection is multiplexed: one TCP connection carries the commands of every task, so
//! thousands of sessions share a handful of sockets, pipelined. fred has the same reach but
//! its own reconnect/pool policy engine and a larger dependency tree; redis-rs is the one
//! most Rust Redis users run, and the one with the fewest moving parts for what vgate asks
//! (scripts, a few commands, pub/sub).
//!
//! A Sentinel master is resolved once and used through a `ConnectionManager`; when the
//! connection fails (the master died) or answers `READONLY` (it was demoted), the next call
//! asks the Sentinels again.
//!
//! Every call has a deadline ([`Redis::timeout`]): a Redis that does not answer is an error
//! after that, never a session or dispatcher stuck for good. Errors are counted in
//! `vgate_redis_errors_total`.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, ScriptInvocation as Invocation, Value};
use tokio::sync::Mutex;

/// What a Redis call answers, or why it failed.
pub type Reply<T> = Result<T, RedisError>;

/// Why a Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL is not one vgate can use.
    #[error("redis url {url:?}: {reason}")]
    Url {
        /// The URL with its password hidden.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within the deadline.
    #[error("redis: no answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered something vgate did not write (a damaged or foreign key).
    #[error("redis: unexpected answer for {what}: {detail}")]
    Unexpected {
        /// What was asked.
        what: &'static str,
        /// What came back.
        detail: String,
    },
}

/// Which deployment a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One server (`redis://`, `rediss://`, `unix://`).
    Single(String),
    /// A master found through Sentinels.
    Sentinel {
        /// `redis://host:port` of each Sentinel.
        sentinels: Vec<String>,
        /// The master's name.
        master: String,
        /// TLS to the master.
        tls: bool,
        /// The master's database number.
        db: i64,
        /// The master's user name.
        username: Option<String>,
        /// The master's password.
        password: Option<String>,
    },
    /// A Redis Cluster, from seed nodes (`redis://[user:pass@]host:port` each).
    Cluster(Vec<String>),
}

/// The URL with its password replaced by `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = url.get(s + 3..at).unwrap_or_default();
            let user = creds.split(':').next().unwrap_or_default();
            format!(
                "{}{}:***{}",
                url.get(..s + 3).unwrap_or_default(),
                user,
                url.get(at..).unwrap_or_default()
            )
        }
        _ => url.to_owned(),
    }
}

/// Parses a `cluster.redis_url` (module docs for the forms).
pub fn parse(url: &str) -> Result<Target, RedisError> {
    let bad = |reason: &str| RedisError::Url {
        url: redact(url),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        bad("no scheme: redis://, rediss://, redis+sentinel:// or redis+cluster://")
    })?;
    let (creds, rest) = match rest.rsplit_once('@') {
        Some((c, r)) => (Some(c), r),
        None => (None, rest),
    };
    let (username, password) = match creds {
        None => (None, None),
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (
                (!u.is_empty()).then(|| u.to_owned()),
                (!p.is_empty()).then(|| p.to_owned()),
            ),
            None => ((!c.is_empty()).then(|| c.to_owned()), None),
        },
    };
    let (hosts, path) = match rest.split_once('/') {
        Some((h, p)) => (h, p),
        None => (rest, ""),
    };
    let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
    match scheme {
        "redis" | "rediss" | "unix" | "redis+unix" => {
            redis::parse_redis_url(url)
                .ok_or_else(|| bad("not a Redis URL"))
                .and_then(|_| {
                    redis::Client::open(url).map_err(|e| bad(&e.to_string()))?;
                    Ok(Target::Single(url.to_owned()))
                })
        }
        "redis+cluster" | "rediss+cluster" => {
            if hosts.is_empty() {
                return Err(bad("no cluster node: redis+cluster://host:port,host:port"));
            }
            let base = if scheme == "rediss+cluster" { "rediss" } else { "redis" };
            let auth = creds.map(|c| format!("{c}@")).unwrap_or_default();
            let nodes: Vec<String> = hosts.iter().map(|h| format!("{base}://{auth}{h}")).collect();
            for n in &nodes {
                redis::Client::open(n.as_str()).map_err(|e| bad(&e.to_string()))?;
            }
            Ok(Target::Cluster(nodes))
        }
        "redis+sentinel" | "rediss+sentinel" => {
            if hosts.is_empty() {
                return Err(bad(
                    "no sentinel: redis+sentinel://host:26379,host:26379/master_name",
                ));
            }
            let mut parts = path.split('/').filter(|p| !p.is_empty());
            let master = parts
                .next()
                .ok_or_else(|| bad("no master name: redis+sentinel://host:26379/master_name"))?
                .to_owned();
            let db = match parts.next() {
                Some(d) => d.parse().map_err(|_| bad("the database is not a number"))?,
                None => 0,
            };
            let sentinels: Vec<String> = hosts.iter().map(|h| format!("redis://{h}")).collect();
            for s in &sentinels {
                redis::Client::open(s.as_str()).map_err(|e| bad(&e.to_string()))?;
            }
            Ok(Target::Sentinel {
                sentinels,
                master,
                tls: scheme == "rediss+sentinel",
                db,
                username,
                password,
            })
        }
        other => Err(bad(&format!(
            "scheme {other:?}: redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"
        ))),
    }
}

/// A Sentinel-resolved master and the connection to it, replaced when it fails.
struct SentinelConn {
    client: Mutex<SentinelClient>,
    current: std::sync::Mutex<Option<ConnectionManager>>,
    timeout: Duration,
}

impl SentinelConn {
    fn cached(&self) -> Option<ConnectionManager> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn get(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let client = self.client.lock().await.async_get_client().await?;
        let m = ConnectionManager::new_with_config(client, manager_config(self.timeout)).await?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone());
        Ok(m)
    }

    /// After an error that says the master moved, forget it: the next call asks again.
    fn failed(&self, e: &redis::RedisError) {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.kind() == redis::ErrorKind::ReadOnly
        {
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

#[derive(Clone)]
enum Kind {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelConn>),
}

/// A handle on Redis, cheap to clone; every clone shares the same multiplexed connection(s).
#[derive(Clone)]
pub struct Redis {
    kind: Kind,
    target: Arc<Target>,
    timeout: Duration,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout)
        .set_number_of_retries(2)
        .set_max_delay(1000)
}

impl Redis {
    /// Connects to the deployment `url` names; each call then waits at most `timeout`.
    /// Fails when Redis cannot be reached now (vgate then refuses to start: a node that
    /// cannot share state must not act alone).
    pub async fn connect(url: &str, timeout: Duration) -> Result<Redis, RedisError> {
        // rediss:// uses rustls; vgate builds it with ring only (no default provider).
        let _ = rustls::crypto::CryptoProvider::install_default(std::sync::Arc::unwrap_or_clone(
            crate::tls::provider(),
        ));
        let target = parse(url)?;
        let kind = match &target {
            Target::Single(u) => {
                let client = redis::Client::open(u.as_str())?;
                let m = tokio::time::timeout(
                    timeout,
                    ConnectionManager::new_with_config(client, manager_config(timeout)),
                )
                .await
                .map_err(|_| RedisError::Timeout(timeout))??;
                Kind::Single(m)
            }
            Target::Cluster(nodes) => {
                let client = redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .build()?;
                let c = tokio::time::timeout(timeout, client.get_async_connection())
                    .await
                    .map_err(|_| RedisError::Timeout(timeout))??;
                Kind::Cluster(c)
            }
            Target::Sentinel {
                sentinels,
                master,
                tls,
                db,
                username,
                password,
            } => {
                let info = SentinelNodeConnectionInfo {
                    tls_mode: tls.then_some(redis::TlsMode::Secure),
                    redis_connection_info: Some(redis::RedisConnectionInfo {
                        db: *db,
                        username: username.clone(),
                        password: password.clone(),
                        ..Default::default()
                    }),
                };
                let client = SentinelClient::build(
                    sentinels.clone(),
                    master.clone(),
                    Some(info),
                    SentinelServerType::Master,
                )?;
                let s = Arc::new(SentinelConn {
                    client: Mutex::new(client),
                    current: std::sync::Mutex::new(None),
                    timeout,
                });
                tokio::time::timeout(timeout, s.get())
                    .await
                    .map_err(|_| RedisError::Timeout(timeout))??;
                Kind::Sentinel(s)
            }
        };
        Ok(Redis {
            kind,
            target: Arc::new(target),
            timeout,
        })
    }

    /// The deadline of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A client for a dedicated connection (pub/sub): the server itself, the resolved
    /// Sentinel master, or the first Cluster seed (classic PUBLISH reaches every node of a
    /// Cluster, so a subscriber on any one node hears all).
    pub async fn pubsub_client(&self) -> Result<redis::Client, RedisError> {
        Ok(match (&*self.target, &self.kind) {
            (Target::Single(u), _) => redis::Client::open(u.as_str())?,
            (_, Kind::Sentinel(s)) => s.client.lock().await.async_get_client().await?,
            (Target::Cluster(nodes), _) => {
                let first = nodes.first().ok_or_else(|| RedisError::Unexpected {
                    what: "cluster seeds",
                    detail: "none".into(),
                })?;
                redis::Client::open(first.as_str())?
            }
            (Target::Sentinel { .. }, _) => {
                return Err(RedisError::Unexpected {
                    what: "sentinel connection",
                    detail: "not a sentinel handle".into(),
                })
            }
        })
    }

    /// Runs `cmd` with the deadline, counting failures.
    pub async fn query<T: FromRedisValue>(&self, what: &'static str, cmd: &Cmd) -> Reply<T> {
        let mut c = self.clone();
        let r = tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut c)).await;
        self.outcome(what, r)
    }

    /// Runs a pipeline with the deadline (one round trip; on a Cluster every key of it must
    /// live in one slot).
    pub async fn pipe<T: FromRedisValue>(&self, what: &'static str, p: &Pipeline) -> Reply<T> {
        let mut c = self.clone();
        let r = tokio::time::timeout(self.timeout, p.query_async::<T>(&mut c)).await;
        self.outcome(what, r)
    }

    /// Runs a Lua script with the deadline (`EVALSHA`, loading it on `NOSCRIPT`).
    pub async fn script<T: FromRedisValue>(
        &self,
        what: &'static str,
        inv: &Invocation<'_>,
    ) -> Reply<T> {
        let mut c = self.clone();
        let r = tokio::time::timeout(self.timeout, inv.invoke_async::<T>(&mut c)).await;
        self.outcome(what, r)
    }

    fn outcome<T>(
        &self,
        what: &'static str,
        r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, RedisError> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                metrics::counter!("vgate_redis_errors_total", "op" => what).increment(1);
                if let Kind::Sentinel(s) = &self.kind {
                    s.failed(&e);
                }
                Err(RedisError::Redis(e))
            }
            Err(_) => {
                metrics::counter!("vgate_redis_errors_total", "op" => what).increment(1);
                Err(RedisError::Timeout(self.timeout))
            }
        }
    }

    /// Runs `f` to completion from synchronous code (the [`CommandQueue`](crate::queue::CommandQueue)
    /// trait is synchronous, called through `spawn_blocking`): on a blocking thread it blocks
    /// on the runtime; on a runtime worker it first moves the worker's other tasks away
    /// (`block_in_place`).
    pub fn block_on<F: std::future::Future>(handle: &tokio::runtime::Handle, f: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(f))
            }
            _ => handle.block_on(f),
        }
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.kind {
            Kind::Single(m) => m.req_packed_command(cmd),
            Kind::Cluster(c) => c.req_packed_command(cmd),
            Kind::Sentinel(s) => {
                let s = s.clone();
                Box::pin(async move {
                    let mut m = s.get().await?;
                    m.req_packed_command(cmd).await
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.kind {
            Kind::Single(m) => m.req_packed_commands(cmd, offset, count),
            Kind::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Kind::Sentinel(s) => {
                let s = s.clone();
                Box::pin(async move {
                    let mut m = s.get().await?;
                    m.req_packed_commands(cmd, offset, count).await
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.kind {
            Kind::Single(m) => m.get_db(),
            Kind::Cluster(c) => c.get_db(),
            Kind::Sentinel(s) => s.cached().map_or(0, |m| m.get_db()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_the_three_deployments_parse() {
        assert_eq!(
            parse("redis://127.0.0.1:6379/2").unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".into())
        );
        assert!(matches!(
            parse("rediss://h:6380").unwrap(),
            Target::Single(_)
        ));
        assert_eq!(
            parse("redis+cluster://u:p@a:7000,b:7001").unwrap(),
            Target::Cluster(vec![
                "redis://u:p@a:7000".into(),
                "redis://u:p@b:7001".into()
            ])
        );
        assert_eq!(
            parse("redis+sentinel://:secret@s1:26379,s2:26379/mymaster/3").unwrap(),
            Target::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                master: "mymaster".into(),
                tls: false,
                db: 3,
                username: None,
                password: Some("secret".into()),
            }
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_password_hidden() {
        for bad in [
            "localhost:6379",
            "http://x",
            "redis+sentinel://s1:26379",
            "redis+cluster://",
            "redis+sentinel://s:1/m/notanumber",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = parse("mysql://u:hunter2@h").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(redact("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
