//! JT/T 808 auth codes shared by every node: a terminal that registered through one node
//! authenticates through any other.
//!
//! One key per terminal, `{ns}:code:{listener}:{phone}`, so a Redis Cluster spreads them over
//! its slots. Issuing is `SET NX` then `GET`: two nodes registering one terminal at once hand
//! out the same code (whoever wrote first wins; the other reads the winner's).
//!
//! # Redis outage
//! The node's own code file ([`CodeStore`](crate::auth::codes::CodeStore)) stays the local
//! copy of every code this node issued or checked: an authentication while Redis is down is
//! answered from it. A code never changes once issued (a re-registration gets the same one),
//! so the copy is never stale, only incomplete: a terminal whose code this node has never
//! seen is refused while Redis is down (the same answer as a wrong code: it retries, and its
//! next attempt, once Redis is back, succeeds). A registration needs Redis (the code it
//! issues must be known to every node) and is refused while Redis is down, with the answer
//! the gateway already gives when its code file cannot be written (the store-failed
//! refusal): the terminal registers again later.

use std::sync::Arc;

use super::redis::{Redis, RedisError};

/// The shared code table of one listener.
#[derive(Debug, Clone)]
pub struct RedisCodes {
    redis: Redis,
    prefix: Arc<str>,
}

impl RedisCodes {
    /// The codes of `listener` under namespace `ns`.
    pub fn new(redis: Redis, ns: &str, listener: &str) -> RedisCodes {
        RedisCodes {
            redis,
            prefix: Arc::from(format!("{ns}:code:{listener}:")),
        }
    }

    fn key(&self, phone: &str) -> String {
        format!("{}{phone}", self.prefix)
    }

    /// The code issued to `phone`, if any.
    pub async fn get(&self, phone: &str) -> Result<Option<String>, RedisError> {
        self.redis
            .query("codes_get", redis::cmd("GET").arg(self.key(phone)))
            .await
    }

    /// Binds `code` to `phone` (overwrites: trust on first use, or an operator's code).
    pub async fn set(&self, phone: &str, code: &str) -> Result<(), RedisError> {
        self.redis
            .query(
                "codes_set",
                redis::cmd("SET").arg(self.key(phone)).arg(code),
            )
            .await
    }

    /// The code of `phone`: `fresh` if none was issued yet, else the one issued before.
    pub async fn get_or_issue(&self, phone: &str, fresh: &str) -> Result<String, RedisError> {
        let key = self.key(phone);
        // One slot (one key): a pipeline works on a Cluster too.
        let (code,): (Option<String>,) = self
            .redis
            .pipe(
                "codes_issue",
                redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(fresh)
                    .arg("NX")
                    .ignore()
                    .cmd("GET")
                    .arg(&key),
            )
            .await?;
        code.ok_or(RedisError::Unexpected {
            what: "auth code just issued",
            detail: "missing".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::codes::CodeStore;
    use test_support::redis::RedisServer;

    #[tokio::test(flavor = "multi_thread")]
    async fn nodes_issue_one_code_per_terminal_and_a_node_answers_from_its_copy_when_redis_is_down()
    {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let redis = Redis::connect(&server.url(), std::time::Duration::from_secs(1))
            .await
            .unwrap();
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = CodeStore::open(d1.path().join("codes.json"))
            .await
            .unwrap()
            .share(RedisCodes::new(redis.clone(), "t", "jt808"));
        let two = CodeStore::open(d2.path().join("codes.json"))
            .await
            .unwrap()
            .share(RedisCodes::new(redis.clone(), "t", "jt808"));
        let (c1, c2) = tokio::join!(
            one.get_or_issue("013800000001"),
            two.get_or_issue("013800000001")
        );
        let (c1, c2) = (c1.unwrap(), c2.unwrap());
        assert_eq!(
            c1, c2,
            "two nodes registering one terminal at once hand out one code"
        );
        assert_eq!(two.get("013800000001").await.as_deref(), Some(c1.as_str()));
        let other = one.get_or_issue("013800000002").await.unwrap();
        assert_eq!(
            two.get("013800000002").await,
            Some(other.clone()),
            "seen through Redis"
        );
        assert_eq!(one.get("013800000003").await, None);

        server.kill();
        // Authentication: answered from each node's copy of the codes it has seen.
        assert_eq!(one.get("013800000001").await, Some(c1.clone()));
        assert_eq!(two.get("013800000002").await, Some(other));
        // Registration needs Redis.
        assert!(one.get_or_issue("013800000004").await.is_err());
    }
}
