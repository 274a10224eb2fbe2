//! Who holds which vehicle across nodes: presence in Redis, a TTL renewed by the holder.
//!
//! ```text
//! {ns}:p:{vid}      string  the holding incarnation ("node/ulid"), PX = presence_ttl
//! {ns}:{g}:hb:{inc} string  an incarnation's heartbeat, PX = presence_ttl
//! {ns}:m:{inc}      hash    vid -> protocol: the vehicles an incarnation claimed
//! {ns}:{g}:incs     set     every incarnation that may still hold vehicles
//! {ns}:drained:{inc} string an incarnation stopped by a drain (its vehicles' reason)
//! ```
//!
//! (`{g}`: the hash tag of the keys that are no vehicle's, so that the heartbeat and the
//! set of incarnations go in one pipeline on a Redis Cluster.)
//!
//! An *incarnation* is one run of one node (`node/ulid`): a node restarted with the same id
//! is a new incarnation, so the vehicles of the run that died are told apart from the ones
//! the new run holds.
//!
//! [`ClusterRegistry`] wraps the node's own [`LocalRegistry`]: sessions claim and release as
//! on one node (synchronously, in memory), and every change goes, in order, to one task that
//! writes it to Redis. Why not write from the session: a login must not wait for Redis (the
//! uplink never depends on it), and one ordered writer keeps a claim and the release that
//! follows it in order.
//!
//! * **Claim**: `SET p:{vid} inc PX ttl GET`. When the previous holder was another live
//!   incarnation, its node is told through its inbox (`takeover`) and closes its connection
//!   with lifecycle `takeover`, without publishing the vehicle offline: the presence does not
//!   flap. Once written, the session is woken to look at the queue again: a command another
//!   node stored between the login and this write found no holder, and waits there.
//!   Claims of a login storm are written concurrently (each vehicle's ops in order). The
//!   session announces the vehicle online only once its claim is written (at most
//!   [`CLAIM_WAIT`]): a node killed right after a login leaves a presence a survivor finds.
//! * **Release**: deleted only if this incarnation still holds it (a script). A session that
//!   ends after its vehicle reconnected elsewhere then sees [`Registry::held_elsewhere`] and
//!   publishes nothing.
//! * **Renewal**, every third of the TTL: each held vehicle's key is extended if it is still
//!   this incarnation's, written again if it is gone (Redis restarted or failed over and lost
//!   it), and, if another incarnation holds it now, the local connection is closed
//!   (`takeover`: the inbox message was lost). The heartbeat is renewed with them.
//! * **Reaping**: an incarnation whose heartbeat lapsed (its node died, or was killed and
//!   restarted) is reaped by one surviving node (a lock, `SET NX`): each of its vehicles whose
//!   presence also lapsed and that no one else claimed is published offline, reason
//!   `node_down` (`gateway_restart` when the reaper is the same node restarted). A vehicle
//!   that came back anywhere meanwhile is left alone. Its queued commands stay in the shared
//!   queue and go out wherever it logs in.
//!
//! * **Drain** (a clean stop in cluster mode, [`ClusterRegistry::drain`]): the node's
//!   sessions close without releasing their vehicles and without publishing them offline.
//!   The vehicles reconnect through the load balancer to other nodes, whose claims take the
//!   presence over: the platform sees `online` (node A), then `online` (node B), no
//!   `offline` in between. The ones that do not come back within the presence TTL are
//!   reaped like a dead node's, with reason `shutdown` (the incarnation is marked drained).
//!   The price: a vehicle that stays away is shown online for up to one TTL after the stop.
//!
//! Redis down: sessions go on (the local registry answers every question a session asks);
//! the writer keeps retrying its current batch, so presence is right again once Redis is
//! back, at the latest after one renewal.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codecs::event::PresenceReason;
use codecs::Protocol;
use redis::Script;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::inbox::{Inbox, Notice};
use super::redis::Redis;
use crate::registry::{Control, LocalRegistry, Pending, Registry};
use crate::sink::Sink;

/// One change for the writer task.
enum Op {
    Claim(String, Protocol),
    Release(String),
    /// Answers whether another incarnation holds the vehicle, after every op before it.
    Check(String, oneshot::Sender<bool>),
    /// Answers which of the vehicles other incarnations hold, and tells their nodes that
    /// commands wait for them.
    Wake(Vec<String>, oneshot::Sender<HashSet<String>>),
    /// Answered once every op before it is written.
    Barrier(oneshot::Sender<()>),
    /// Marks this incarnation drained (for the reaper's reason), answered once written.
    Drain(oneshot::Sender<()>),
    /// Answers, of the vehicles, those another incarnation holds, with its node.
    Locate(Vec<String>, oneshot::Sender<HashMap<String, String>>),
    /// An operator's kick (ban seconds, whether this node holds the vehicle): told to the
    /// holding node, and with a ban to every live node; answers whether another
    /// incarnation held the vehicle.
    Kick(String, u64, bool, oneshot::Sender<bool>),
}

/// How long a login waits for its presence to be written before it is announced online.
pub const CLAIM_WAIT: Duration = Duration::from_millis(500);

/// An incarnation's heartbeat (in the `{g}` slot with the set of incarnations).
const HEARTBEAT: &str = "{g}:hb";
/// The vehicles an incarnation claimed.
const MEMBERS: &str = "m";
/// Set when an incarnation was drained.
const DRAINED: &str = "drained";
/// Held by the node reaping an incarnation.
const REAP_LOCK: &str = "reap";

/// The names and TTLs of one incarnation's presence.
#[derive(Debug, Clone)]
pub struct Keys {
    pub ns: Arc<str>,
    pub inc: Arc<str>,
    pub ttl: Duration,
}

impl Keys {
    pub fn presence(&self, vid: &str) -> String {
        format!("{}:p:{{{vid}}}", self.ns)
    }
    /// The key `what` (one of the per-incarnation names below) of incarnation `inc`.
    fn of(&self, what: &str, inc: &str) -> String {
        format!("{}:{what}:{inc}", self.ns)
    }
    fn incs(&self) -> String {
        format!("{}:{{g}}:incs", self.ns)
    }
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1000)
    }
}

/// The node of an incarnation (`node/ulid`).
pub fn node_of(inc: &str) -> &str {
    inc.rsplit_once('/').map_or(inc, |(n, _)| n)
}

/// KEYS: p; ARGV: inc. Deletes p if it holds inc.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
";

/// KEYS: p; ARGV: inc ttl_ms. 1 renewed, 2 written again (it was gone), else the holder.
const RENEW: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return cur
";

/// The registry of a node in cluster mode (module docs).
pub struct ClusterRegistry {
    local: LocalRegistry,
    tx: mpsc::UnboundedSender<Op>,
    /// Set by [`ClusterRegistry::drain`]: releases stay local, no offline from here.
    draining: AtomicBool,
}

impl ClusterRegistry {
    /// A registry over `local`, writing presence with `redis` under `keys`, telling other
    /// nodes through `inbox`, and publishing reaped vehicles offline on `sink`.
    pub fn start(
        local: LocalRegistry,
        redis: Redis,
        keys: Keys,
        inbox: Inbox,
        sink: Sink,
        node: Arc<str>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Arc<ClusterRegistry> {
        let w = Writer {
            redis,
            keys,
            inbox,
            local: local.clone(),
            release: Script::new(RELEASE),
            renew: Script::new(RENEW),
            sink,
            node,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(w.run(rx, shutdown));
        Arc::new(ClusterRegistry {
            local,
            tx,
            draining: AtomicBool::new(false),
        })
    }

    /// Hands this node's vehicles over to the cluster before its sessions close (a clean
    /// stop): from now on a session that ends keeps its vehicle's presence in Redis and does
    /// not publish it offline (module docs, "Drain"). Resolves once the incarnation is marked
    /// drained, or after [`CLAIM_WAIT`] while Redis does not answer.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Op::Drain(reply)).is_ok() {
            let _ = tokio::time::timeout(CLAIM_WAIT, rx).await;
        }
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Sends the writer the op `make` builds around a reply channel; the answer, or the
    /// default (nothing known) when the writer is gone.
    fn ask<T: Default + Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Op,
    ) -> Pending<T> {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(make(reply)).is_ok();
        Box::pin(async move {
            if sent {
                rx.await.unwrap_or_default()
            } else {
                T::default()
            }
        })
    }
}

impl Registry for ClusterRegistry {
    fn local(&self) -> &LocalRegistry {
        &self.local
    }

    fn claimed(&self, vehicle_id: &str, protocol: Protocol, _replaced: bool) {
        let _ = self.tx.send(Op::Claim(vehicle_id.to_owned(), protocol));
    }

    fn released(&self, vehicle_id: &str) {
        if !self.draining() {
            let _ = self.tx.send(Op::Release(vehicle_id.to_owned()));
        }
    }

    /// While draining: true for every vehicle, which the cluster (another node's claim, or
    /// the reaper) settles.
    fn held_elsewhere(&self, vehicle: &str) -> Pending<bool> {
        if self.draining() {
            return Box::pin(async { true });
        }
        self.ask(|reply| Op::Check(vehicle.to_owned(), reply))
    }

    fn holders_elsewhere(&self, vehicles: Vec<String>) -> Pending<HashMap<String, String>> {
        self.ask(|reply| Op::Locate(vehicles, reply))
    }

    fn kick_elsewhere(&self, vehicle: &str, ban_s: u64, held_here: bool) -> Pending<bool> {
        self.ask(|reply| Op::Kick(vehicle.to_owned(), ban_s, held_here, reply))
    }

    /// Waits at most [`CLAIM_WAIT`]: while Redis does not answer, vehicles are announced
    /// online anyway (the uplink never depends on Redis), and their presence is written by
    /// the writer's retries or the next renewal.
    fn claims_written(&self) -> Pending<()> {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(Op::Barrier(reply)).is_ok();
        Box::pin(async move {
            if sent && tokio::time::timeout(CLAIM_WAIT, rx).await.is_err() {
                metrics::counter!("vgate_cluster_claim_wait_timeouts_total").increment(1);
            }
        })
    }

    fn wake_elsewhere(&self, vehicles: Vec<String>) -> Pending<HashSet<String>> {
        self.ask(|reply| Op::Wake(vehicles, reply))
    }
}

/// The task that writes presence to Redis, renews it and reaps dead incarnations.
struct Writer {
    redis: Redis,
    keys: Keys,
    inbox: Inbox,
    local: LocalRegistry,
    release: Script,
    renew: Script,
    sink: Sink,
    node: Arc<str>,
}

impl Writer {
    async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<Op>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.keys.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(1024);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, 1024) => {
                    if n == 0 { return; }
                    self.apply(std::mem::take(&mut batch)).await;
                }
                _ = tick.tick() => {
                    self.renew_all().await;
                    if !shutdown.is_cancelled() {
                        self.reap().await;
                    }
                }
            }
        }
    }

    /// Applies a batch of ops, retrying while Redis fails (a claim not written would leave
    /// the vehicle unknown to the other nodes until the next renewal).
    async fn apply(&self, ops: Vec<Op>) {
        // Claims and releases between two questions are written concurrently, each vehicle's
        // in its order (a login storm is not one round trip per login in a row); a question
        // is answered once everything before it is written.
        let mut run: Vec<(String, Option<Protocol>)> = Vec::new();
        for op in ops {
            match op {
                Op::Claim(vid, protocol) => run.push((vid, Some(protocol))),
                Op::Release(vid) => run.push((vid, None)),
                Op::Check(vid, reply) => {
                    self.write(std::mem::take(&mut run)).await;
                    let _ = reply.send(self.holder(&vid).await.is_some());
                }
                Op::Wake(vids, reply) => {
                    self.write(std::mem::take(&mut run)).await;
                    let _ = reply.send(self.wake(vids).await);
                }
                Op::Barrier(reply) => {
                    self.write(std::mem::take(&mut run)).await;
                    let _ = reply.send(());
                }
                Op::Locate(vids, reply) => {
                    self.write(std::mem::take(&mut run)).await;
                    let _ = reply.send(self.locate(vids).await);
                }
                Op::Kick(vid, ban_s, held_here, reply) => {
                    self.write(std::mem::take(&mut run)).await;
                    let _ = reply.send(self.kick(vid, ban_s, held_here).await);
                }
                Op::Drain(reply) => {
                    self.write(std::mem::take(&mut run)).await;
                    if let Err(e) = self.mark_drained().await {
                        warn!(error = %e, "drain not marked in Redis; this node's vehicles that do not come back go offline as node_down");
                    }
                    let _ = reply.send(());
                }
            }
        }
        self.write(run).await;
    }

    /// An operator's kick: the node holding `vid` closes it; with a ban, every live node
    /// (another may take the vehicle's next connection) refuses it for `ban_s`, if it is
    /// connected anywhere (`held_here`: here). Whether another incarnation held it.
    async fn kick(&self, vid: String, ban_s: u64, held_here: bool) -> bool {
        // An older incarnation of this node holds nothing any more (it died).
        let holder = self
            .holder(&vid)
            .await
            .filter(|i| node_of(i) != &*self.node);
        let mut nodes: HashSet<String> = holder.iter().map(|i| node_of(i).to_owned()).collect();
        if ban_s > 0 && (held_here || holder.is_some()) {
            nodes.extend(self.live_nodes().await);
        }
        nodes.remove(&*self.node);
        for node in nodes {
            let notice = Notice::Kick {
                vehicle: vid.clone(),
                ban_s,
            };
            self.inbox.send(&node, notice).await;
        }
        holder.is_some()
    }

    /// The nodes of the incarnations whose heartbeat is alive.
    async fn live_nodes(&self) -> Vec<String> {
        let k = &self.keys;
        let incs: Vec<String> = self
            .redis
            .query("presence_incs", redis::cmd("SMEMBERS").arg(k.incs()))
            .await
            .unwrap_or_default();
        let mut live = Vec::with_capacity(incs.len());
        for inc in incs {
            let alive: bool = self
                .redis
                .query(
                    "presence_hb",
                    redis::cmd("EXISTS").arg(k.of(HEARTBEAT, &inc)),
                )
                .await
                .unwrap_or(false);
            if alive {
                live.push(node_of(&inc).to_owned());
            }
        }
        live
    }

    /// Marks this incarnation drained, for the reaper's reason. The mark outlives the
    /// vehicles' TTL and several reaper passes.
    async fn mark_drained(&self) -> Result<(), super::redis::RedisError> {
        let k = &self.keys;
        let mut set = redis::cmd("SET");
        set.arg(k.of(DRAINED, &k.inc)).arg(1);
        set.arg("PX").arg(k.ttl_ms().saturating_mul(10));
        self.redis.query("presence_drain", &set).await
    }

    /// Writes claims (`Some(protocol)`) and releases (`None`): vehicles concurrently, the
    /// ops of one vehicle in order.
    async fn write(&self, run: Vec<(String, Option<Protocol>)>) {
        if run.is_empty() {
            return;
        }
        let mut per_vehicle: HashMap<String, Vec<Option<Protocol>>> = HashMap::new();
        for (vid, op) in run {
            per_vehicle.entry(vid).or_default().push(op);
        }
        let jobs: Vec<(String, Vec<Option<Protocol>>)> = per_vehicle.into_iter().collect();
        for chunk in jobs.chunks(1000) {
            futures::future::join_all(chunk.iter().map(|(vid, ops)| async move {
                for op in ops {
                    match op {
                        Some(protocol) => self.claim_retrying(vid, *protocol).await,
                        None => {
                            if let Err(e) = self.release_one(vid).await {
                                warn!(vehicle = %vid, error = %e, "presence not released in Redis; it lapses with its TTL");
                            }
                        }
                    }
                }
            }))
            .await;
        }
    }

    async fn claim_retrying(&self, vid: &str, protocol: Protocol) {
        let mut tries = 0;
        while let Err(e) = self.claim(vid, protocol).await {
            tries += 1;
            if tries >= 3 {
                warn!(vehicle = %vid, error = %e, "presence not written to Redis; the next renewal writes it");
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // A command stored by another node between this login and this write found no
        // holder (it was answered `queued`): look at the queue once more now that every
        // node can find the vehicle here.
        if let Some(h) = self.local.get(vid) {
            let _ = h.control.try_send(Control::Deliver);
        }
    }

    async fn claim(&self, vid: &str, protocol: Protocol) -> Result<(), super::redis::RedisError> {
        let k = &self.keys;
        let old: Option<String> = self
            .redis
            .query(
                "presence_claim",
                redis::cmd("SET")
                    .arg(k.presence(vid))
                    .arg(&*k.inc)
                    .arg("PX")
                    .arg(k.ttl_ms())
                    .arg("GET"),
            )
            .await?;
        self.redis
            .query::<()>(
                "presence_member",
                redis::cmd("HSET")
                    .arg(k.of(MEMBERS, &k.inc))
                    .arg(vid)
                    .arg(protocol.as_str()),
            )
            .await?;
        if let Some(old) = old.filter(|o| **o != *k.inc) {
            debug!(vehicle = vid, previous = %old, "vehicle taken over from another node");
            metrics::counter!("vgate_cluster_takeovers_total").increment(1);
            self.inbox
                .send(node_of(&old), Notice::Takeover(vid.to_owned()))
                .await;
        }
        Ok(())
    }

    async fn release_one(&self, vid: &str) -> Result<(), super::redis::RedisError> {
        let k = &self.keys;
        let mut inv = self.release.prepare_invoke();
        inv.key(k.presence(vid)).arg(&*k.inc);
        self.redis.script::<i64>("presence_release", &inv).await?;
        self.redis
            .query::<()>(
                "presence_member",
                redis::cmd("HDEL").arg(k.of(MEMBERS, &k.inc)).arg(vid),
            )
            .await
    }

    /// The vehicles of `vids` another incarnation holds, with its node (looked up
    /// concurrently, 1,000 at a time).
    async fn locate(&self, vids: Vec<String>) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for chunk in vids.chunks(1000) {
            let holders = futures::future::join_all(chunk.iter().map(|v| self.holder(v))).await;
            for (v, h) in chunk.iter().zip(holders) {
                if let Some(inc) = h {
                    out.insert(v.clone(), node_of(&inc).to_owned());
                }
            }
        }
        out
    }

    /// Looks up the holders of `vids` (concurrently), and sends each holding node one
    /// notice naming all of its vehicles. Returns the vehicles held elsewhere.
    async fn wake(&self, vids: Vec<String>) -> HashSet<String> {
        let mut by_node: HashMap<String, Vec<String>> = HashMap::new();
        for (v, node) in self.locate(vids).await {
            by_node.entry(node).or_default().push(v);
        }
        let mut out = HashSet::new();
        for (node, vids) in by_node {
            for chunk in vids.chunks(500) {
                self.inbox
                    .send(&node, Notice::Deliver(chunk.to_vec()))
                    .await;
            }
            out.extend(vids);
        }
        out
    }

    /// Another incarnation holding `vid` now, if one does (a live key that is not ours).
    async fn holder(&self, vid: &str) -> Option<String> {
        let cur: Option<String> = self
            .redis
            .query(
                "presence_get",
                redis::cmd("GET").arg(self.keys.presence(vid)),
            )
            .await
            .ok()
            .flatten();
        cur.filter(|c| **c != *self.keys.inc)
    }

    /// Renews every vehicle this node holds, and the heartbeat.
    async fn renew_all(&self) {
        let k = &self.keys;
        let hb = self
            .redis
            .pipe::<()>(
                "presence_heartbeat",
                redis::pipe()
                    .cmd("SET")
                    .arg(k.of(HEARTBEAT, &k.inc))
                    .arg(1)
                    .arg("PX")
                    .arg(k.ttl_ms())
                    .ignore()
                    .cmd("SADD")
                    .arg(k.incs())
                    .arg(&*k.inc)
                    .ignore(),
            )
            .await;
        if let Err(e) = hb {
            warn!(error = %e, "heartbeat not written to Redis");
            return;
        }
        let held = self.local.all();
        for chunk in held.chunks(1000) {
            let rs = futures::future::join_all(chunk.iter().map(|(vid, h)| async move {
                let mut inv = self.renew.prepare_invoke();
                inv.key(k.presence(vid)).arg(&*k.inc).arg(k.ttl_ms());
                let r: Result<redis::Value, _> = self.redis.script("presence_renew", &inv).await;
                (vid, h, r)
            }))
            .await;
            for (vid, h, r) in rs {
                match r {
                    Ok(redis::Value::Int(1)) => {}
                    Ok(redis::Value::Int(2)) => {
                        let _ = self
                            .redis
                            .query::<()>(
                                "presence_member",
                                redis::cmd("HSET")
                                    .arg(k.of(MEMBERS, &k.inc))
                                    .arg(vid)
                                    .arg(h.protocol.as_str()),
                            )
                            .await;
                    }
                    Ok(other) => {
                        // Held by another node: the takeover notice was lost. Close ours.
                        debug!(vehicle = %vid, holder = ?other, "vehicle held elsewhere; closing here");
                        let _ = h.control.try_send(Control::Close(PresenceReason::Takeover));
                    }
                    Err(e) => {
                        warn!(error = %e, "presence renewal failed");
                        return;
                    }
                }
            }
        }
    }

    /// Reaps incarnations whose heartbeat lapsed (module docs).
    async fn reap(&self) {
        let k = &self.keys;
        let incs: Vec<String> = match self
            .redis
            .query("presence_incs", redis::cmd("SMEMBERS").arg(k.incs()))
            .await
        {
            Ok(v) => v,
            Err(_) => return,
        };
        for inc in incs.into_iter().filter(|i| **i != *k.inc) {
            let alive: bool = match self
                .redis
                .query(
                    "presence_hb",
                    redis::cmd("EXISTS").arg(k.of(HEARTBEAT, &inc)),
                )
                .await
            {
                Ok(a) => a,
                Err(_) => return,
            };
            if alive {
                continue;
            }
            let lock: Option<String> = self
                .redis
                .query(
                    "presence_reap_lock",
                    redis::cmd("SET")
                        .arg(k.of(REAP_LOCK, &inc))
                        .arg(&*k.inc)
                        .arg("NX")
                        .arg("PX")
                        .arg(k.ttl_ms().saturating_mul(2)),
                )
                .await
                .unwrap_or(None);
            if lock.is_none() {
                continue;
            }
            if let Err(e) = self.reap_one(&inc).await {
                warn!(incarnation = %inc, error = %e, "reaping a dead node's vehicles failed; another pass retries");
            }
        }
    }

    async fn reap_one(&self, inc: &str) -> Result<(), super::redis::RedisError> {
        let k = &self.keys;
        let members: HashMap<String, String> = self
            .redis
            .query(
                "presence_members",
                redis::cmd("HGETALL").arg(k.of(MEMBERS, inc)),
            )
            .await?;
        let drained: bool = self
            .redis
            .query(
                "presence_drained",
                redis::cmd("EXISTS").arg(k.of(DRAINED, inc)),
            )
            .await?;
        let reason = if drained {
            PresenceReason::Shutdown
        } else if node_of(inc) == &*self.node {
            PresenceReason::GatewayRestart
        } else {
            PresenceReason::NodeDown
        };
        let mut offline = 0usize;
        let mut waiting = 0usize;
        for (vid, proto) in &members {
            let cur: Option<String> = self
                .redis
                .query("presence_get", redis::cmd("GET").arg(k.presence(vid)))
                .await?;
            match cur {
                // Still within its TTL: the next pass looks again.
                Some(c) if c == inc => {
                    waiting += 1;
                    continue;
                }
                // Back, here or elsewhere: nothing to publish.
                Some(_) => {}
                None => {
                    let protocol =
                        crate::commands::protocol_from_name(proto).unwrap_or(Protocol::Unknown);
                    let ctx = codecs::EventContext {
                        gateway: self.node.clone(),
                        received_at: chrono::Utc::now(),
                        device_utc_offset_secs: codecs::time::BEIJING_OFFSET_SECS,
                    };
                    let _ = self
                        .sink
                        .presence(&ctx, Arc::from(vid.as_str()), protocol, false, reason, None)
                        .await;
                    offline += 1;
                }
            }
            self.redis
                .query::<()>(
                    "presence_member",
                    redis::cmd("HDEL").arg(k.of(MEMBERS, inc)).arg(vid),
                )
                .await?;
        }
        if waiting == 0 {
            self.redis
                .query::<()>("presence_incs", redis::cmd("SREM").arg(k.incs()).arg(inc))
                .await?;
        } else {
            // Let the next pass (after the vehicles' TTL) take the lock again.
            let _ = self
                .redis
                .query::<()>(
                    "presence_reap_lock",
                    redis::cmd("DEL").arg(k.of(REAP_LOCK, inc)),
                )
                .await;
        }
        metrics::counter!("vgate_cluster_reaped_total").increment(offline as u64);
        if offline > 0 || waiting == 0 {
            info!(incarnation = %inc, offline, waiting, reason = crate::session::presence_label(reason), "dead node's vehicles reaped");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::inbox::Inbox;
    use crate::registry::SessionHandle;
    use crate::sink::Published;
    use codecs::Data;
    use test_support::redis::RedisServer;
    use tokio_util::sync::CancellationToken;

    fn handle(id: u64) -> (SessionHandle, crate::registry::ControlReceiver) {
        let (tx, rx) = crate::registry::control();
        (
            SessionHandle {
                id,
                protocol: Protocol::Jt808_2013,
                peer: "127.0.0.1:1".parse().unwrap(),
                since: chrono::Utc::now(),
                control: tx,
                frames: Default::default(),
            },
            rx,
        )
    }

    struct Node {
        reg: Arc<ClusterRegistry>,
        stop: CancellationToken,
    }

    fn node(redis: &Redis, name: &str, sink: &Sink) -> Node {
        let ns: Arc<str> = Arc::from("t");
        let keys = Keys {
            ns: ns.clone(),
            inc: Arc::from(format!("{name}/1")),
            ttl: Duration::from_secs(3),
        };
        let stop = CancellationToken::new();
        let local = LocalRegistry::new();
        let inbox = Inbox::new(redis.clone(), ns);
        tokio::spawn(inbox.clone().listen(
            Arc::from(name),
            keys.clone(),
            local.clone(),
            sink.clone(),
            stop.clone(),
        ));
        let reg = ClusterRegistry::start(
            local,
            redis.clone(),
            keys,
            inbox,
            sink.clone(),
            Arc::from(name),
            stop.clone(),
        );
        Node { reg, stop }
    }

    /// The next control message that is not a wake-up.
    async fn next_close(rx: &mut crate::registry::ControlReceiver) -> Option<PresenceReason> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Control::Close(r))) => return Some(r),
                Ok(Some(Control::Deliver)) => continue,
                _ => return None,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_claim_elsewhere_closes_the_holder_and_a_dead_nodes_vehicles_are_published_offline() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        takeover_and_reaping(&server.url()).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn takeover_and_reaping_work_on_a_redis_cluster() {
        let Some(cluster) = test_support::redis::RedisCluster::start() else {
            return;
        };
        takeover_and_reaping(&cluster.url()).await;
    }

    async fn takeover_and_reaping(url: &str) {
        let redis = Redis::connect(url, Duration::from_secs(2)).await.unwrap();
        let (tx, mut published) = mpsc::channel::<Published>(64);
        let sink = Sink::Memory(tx);
        let a = node(&redis, "a", &sink);
        let b = node(&redis, "b", &sink);
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Takeover across nodes: b's claim closes a's session.
        let (ha, mut rxa) = handle(1);
        assert!(a.reg.claim("v", ha).is_none());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (hb, _rxb) = handle(2);
        assert!(b.reg.claim("v", hb).is_none(), "not held on b before");
        assert_eq!(next_close(&mut rxa).await, Some(PresenceReason::Takeover));
        assert!(a.reg.held_elsewhere("v").await);
        assert!(!b.reg.held_elsewhere("v").await);
        // a's session ending now releases nothing of b's.
        assert!(a.reg.release("v", 1));
        assert!(a.reg.held_elsewhere("v").await, "still b's");
        // The dispatcher on a finds v on b (and b is told).
        let woken = a
            .reg
            .wake_elsewhere(vec!["v".into(), "nobody".into()])
            .await;
        assert_eq!(woken.into_iter().collect::<Vec<_>>(), ["v"]);
        // The old node's lifecycle event said takeover.
        let ev = tokio::time::timeout(Duration::from_secs(2), published.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(ev.event.data, Data::Lifecycle(_)),
            "{:?}",
            ev.event.data
        );

        // Node c holds w, then dies (its writer stops renewing): once w's presence lapses a
        // surviving node publishes it offline, reason node_down, once.
        let c = node(&redis, "c", &sink);
        let (hc, _rxc) = handle(3);
        c.reg.claim("w", hc);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.stop.cancel();
        drop(c);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
        let mut offline = Vec::new();
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(p)) =
                tokio::time::timeout(Duration::from_millis(200), published.recv()).await
            {
                if let Data::Status(s) = &p.event.data {
                    offline.push((p.event.vehicle_id.to_string(), s.online, s.reason));
                }
            }
            if !offline.is_empty() {
                // Wait a little more for a duplicate.
                tokio::time::sleep(Duration::from_secs(2)).await;
                while let Ok(p) = published.try_recv() {
                    if let Data::Status(s) = &p.event.data {
                        offline.push((p.event.vehicle_id.to_string(), s.online, s.reason));
                    }
                }
                break;
            }
        }
        assert_eq!(
            offline,
            [("w".to_owned(), false, PresenceReason::NodeDown)],
            "published offline once"
        );
        a.stop.cancel();
        b.stop.cancel();
    }
}
