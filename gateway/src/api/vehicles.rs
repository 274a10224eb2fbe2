//! Vehicles: the list (known and online, cursor pagination by id), one vehicle, the kick.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use codecs::event::PresenceReason;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{time, time_ms, ApiError, ErrorBody, VehiclePath};
use crate::queue::KnownVehicle;
use crate::registry::{Control, SessionHandle};

/// Vehicles per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest page.
pub const MAX_LIMIT: usize = 1000;
/// Known vehicles read from the store at a time while a page is filled.
const CHUNK: usize = 1024;

/// One vehicle, as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Vehicle {
    /// JT/T 808 phone number, GB/T 32960 VIN or raw identity.
    pub vehicle_id: String,
    /// The protocol and edition it speaks (`jt808-2013`...); `null` when unknown.
    pub protocol: Option<String>,
    /// Whether it is connected now: to this node, or in cluster mode to any node (`node`
    /// says which).
    pub online: bool,
    /// The node it is connected to; `null` when offline.
    pub node: Option<String>,
    /// Its address (`ip:port`) while online.
    pub peer: Option<String>,
    /// When its current connection logged in; `null` when offline.
    pub since: Option<String>,
    /// When it was last seen: now while online, else its last login.
    pub last_seen: Option<String>,
}

/// A page of vehicles.
#[derive(Debug, Serialize, ToSchema)]
pub struct VehiclePage {
    pub items: Vec<Vehicle>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One vehicle with its counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct VehicleDetail {
    #[serde(flatten)]
    pub vehicle: Vehicle,
    /// Frames read from its current connection; `null` when offline.
    pub frames_in: Option<u64>,
    /// Frames written to its current connection; `null` when offline.
    pub frames_out: Option<u64>,
    /// Commands waiting for it (sent and unanswered ones included).
    pub queued_commands: u64,
}

/// The filters and page of the list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `true`: only online vehicles; `false`: only offline ones.
    pub online: Option<bool>,
    /// A protocol (`jt808`, `gbt32960`, `raw`) or protocol and edition (`jt808-2019`).
    pub protocol: Option<String>,
    /// Only vehicle ids starting with this.
    pub prefix: Option<String>,
    /// Vehicles per page, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The kick's options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KickQuery {
    /// Refuse the vehicle's logins for this many seconds.
    pub ban_s: Option<u64>,
}

fn online_view(node: &str, id: &str, h: &SessionHandle) -> Vehicle {
    Vehicle {
        vehicle_id: id.to_owned(),
        protocol: Some(h.protocol.as_str().to_owned()),
        online: true,
        node: Some(node.to_owned()),
        peer: Some(h.peer.to_string()),
        since: Some(time(h.since)),
        last_seen: Some(time(chrono::Utc::now())),
    }
}

/// A vehicle another node holds (cluster mode): what this node knows of it.
fn elsewhere_view(node: String, id: &str, k: Option<&KnownVehicle>) -> Vehicle {
    Vehicle {
        vehicle_id: id.to_owned(),
        protocol: k.map(|k| k.protocol.clone()),
        online: true,
        node: Some(node),
        peer: None,
        since: None,
        last_seen: Some(time(chrono::Utc::now())),
    }
}

fn offline_view(k: &KnownVehicle) -> Vehicle {
    Vehicle {
        vehicle_id: k.vehicle.clone(),
        protocol: Some(k.protocol.clone()),
        online: false,
        node: None,
        peer: None,
        since: None,
        last_seen: time_ms(k.last_seen_ms),
    }
}

/// Whether `protocol` (`jt808-2013`) is what the filter asks for (`jt808` or `jt808-2013`).
fn protocol_matches(filter: &str, protocol: Option<&str>) -> bool {
    protocol.is_some_and(|p| {
        p == filter
            || p.strip_prefix(filter)
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// The online vehicles within an id range, ordered by id, at most a number of them:
/// [`Registry::range`](crate::registry::Registry::range), or a map in tests and benchmarks.
pub type Online<'a> = dyn Fn(Bound<&str>, Bound<&str>, usize) -> Vec<(String, SessionHandle)> + 'a;

/// Of some vehicle ids, those another node holds, each with that node:
/// [`Registry::holders_elsewhere`](crate::registry::Registry::holders_elsewhere) (cluster mode).
pub type Elsewhere<'a> = dyn Fn(Vec<String>) -> HashMap<String, String> + 'a;

/// Fills one page (the list handler, and `examples/api_list.rs`): known vehicles read from the
/// store in chunks from the cursor on, merged in id order with the online ones of the same
/// stretch of ids, filtered. Blocking (reads the store).
pub fn page(
    queue: &dyn crate::queue::CommandQueue,
    node: &str,
    online: &Online<'_>,
    q: &ListQuery,
    limit: usize,
) -> Result<VehiclePage, crate::queue::QueueError> {
    page_in_cluster(queue, node, online, None, q, limit)
}

/// [`page`], in cluster mode with `elsewhere`: a known vehicle that is not online here is
/// shown online on the node that holds it, if one does (before the `online` filter).
pub fn page_in_cluster(
    queue: &dyn crate::queue::CommandQueue,
    node: &str,
    online: &Online<'_>,
    elsewhere: Option<&Elsewhere<'_>>,
    q: &ListQuery,
    limit: usize,
) -> Result<VehiclePage, crate::queue::QueueError> {
    let prefix = q.prefix.as_deref().unwrap_or("");
    // Where to start: after the cursor, or at the prefix if that is further on.
    let mut from: Bound<String> = match &q.cursor {
        Some(c) if c.as_str() >= prefix => Bound::Excluded(c.clone()),
        _ if !prefix.is_empty() => Bound::Included(prefix.to_owned()),
        _ => Bound::Unbounded,
    };
    let wanted = |v: &Vehicle| {
        q.online.is_none_or(|o| o == v.online)
            && q.protocol
                .as_deref()
                .is_none_or(|p| protocol_matches(p, v.protocol.as_deref()))
    };
    let mut items: Vec<Vehicle> = Vec::with_capacity(limit + 1);
    'fill: loop {
        // Only online vehicles wanted: the store has nothing to add (on one node).
        let mut known = if q.online == Some(true) && elsewhere.is_none() {
            Vec::new()
        } else {
            queue.known_vehicles_from(from.as_ref().map(String::as_str), CHUNK)?
        };
        let known_hi = (known.len() == CHUNK)
            .then(|| known.last().map(|k| k.vehicle.clone()))
            .flatten();
        let upto = known_hi
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Included);
        let mut on = online(from.as_ref().map(String::as_str), upto, CHUNK);
        let on_hi = (on.len() == CHUNK)
            .then(|| on.last().map(|(id, _)| id.clone()))
            .flatten();
        // The stretch of ids both lists cover completely this round.
        let hi = match (known_hi, on_hi) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(h) = &hi {
            known.retain(|k| k.vehicle <= *h);
            on.retain(|(id, _)| id <= h);
        }
        // The known vehicles not online here that another node holds (cluster mode).
        let away = match elsewhere {
            Some(find) => {
                let here: HashSet<&str> = on.iter().map(|(id, _)| id.as_str()).collect();
                let ids = known
                    .iter()
                    .map(|k| &k.vehicle)
                    .filter(|id| id.starts_with(prefix) && !here.contains(id.as_str()))
                    .cloned()
                    .collect();
                find(ids)
            }
            None => HashMap::new(),
        };
        let known_view = |k: &KnownVehicle| match away.get(&k.vehicle) {
            Some(n) => elsewhere_view(n.clone(), &k.vehicle, Some(k)),
            None => offline_view(k),
        };
        let mut known = known.iter().peekable();
        let mut on = on.iter().peekable();
        loop {
            let next = match (known.peek(), on.peek()) {
                (None, None) => break,
                (Some(k), Some((id, _))) if k.vehicle == *id => {
                    known.next();
                    on.next().map(|(id, h)| online_view(node, id, h))
                }
                (Some(k), Some((id, _))) if k.vehicle < *id => known.next().map(known_view),
                (Some(_), Some(_)) | (None, Some(_)) => {
                    on.next().map(|(id, h)| online_view(node, id, h))
                }
                (Some(_), None) => known.next().map(known_view),
            };
            let Some(v) = next else { break };
            if !v.vehicle_id.starts_with(prefix) {
                if v.vehicle_id.as_str() > prefix {
                    // Ids are in order: past the prefix, nothing more can match.
                    break 'fill;
                }
                continue;
            }
            if wanted(&v) {
                items.push(v);
                if items.len() > limit {
                    break 'fill;
                }
            }
        }
        match hi {
            Some(h) => from = Bound::Excluded(h),
            None => break,
        }
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|v| v.vehicle_id.clone())
    } else {
        None
    };
    Ok(VehiclePage { items, next_cursor })
}

/// [`Online`] over a map.
pub fn online_in(
    map: &BTreeMap<String, SessionHandle>,
) -> impl Fn(Bound<&str>, Bound<&str>, usize) -> Vec<(String, SessionHandle)> + '_ {
    move |from, to, n| {
        map.range::<str, _>((from, to))
            .take(n)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Lists vehicles: the ones seen before and the ones online, by id.
#[utoipa::path(get, path = "/api/v1/vehicles", tag = "vehicles", params(ListQuery), responses(
    (status = 200, description = "A page of vehicles", body = VehiclePage),
    (status = 400, description = "A bad filter", body = ErrorBody),
))]
pub async fn list(
    State(api): State<super::State>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<VehiclePage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is not in 1..={MAX_LIMIT}"
        )));
    }
    let registry = api.registry.clone();
    let node = api.node.clone();
    let cluster = api.redis.is_some();
    let runtime = tokio::runtime::Handle::current();
    let page = api
        .commands
        .blocking(move |queue| {
            let online = |from: Bound<&str>, to: Bound<&str>, n| registry.range(from, to, n);
            // This runs on a blocking thread: the Redis look-ups are waited for here.
            let elsewhere = |ids: Vec<String>| runtime.block_on(registry.holders_elsewhere(ids));
            let elsewhere: Option<&Elsewhere<'_>> = cluster.then_some(&elsewhere);
            page_in_cluster(queue, &node, &online, elsewhere, &q, limit)
        })
        .await
        .ok_or_else(|| ApiError::internal("the vehicle listing task failed"))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(page))
}

/// One vehicle, online or seen before.
#[utoipa::path(get, path = "/api/v1/vehicles/{vid}", tag = "vehicles", params(VehiclePath), responses(
    (status = 200, description = "The vehicle", body = VehicleDetail),
    (status = 404, description = "Never seen", body = ErrorBody),
))]
pub async fn one(
    State(api): State<super::State>,
    Path(vid): Path<String>,
) -> Result<Json<VehicleDetail>, ApiError> {
    let handle = api.registry.get(&vid);
    let v = vid.clone();
    let (known, queued) = api
        .commands
        .blocking(move |q| (q.known_vehicle(&v), q.len_vehicle(&v)))
        .await
        .ok_or_else(|| ApiError::internal("the vehicle lookup task failed"))?;
    let known = known.map_err(|e| ApiError::internal(e.to_string()))?;
    let elsewhere = match &handle {
        Some(_) => None,
        None => api.registry.holder_elsewhere(&vid).await,
    };
    let (vehicle, frames) = match (&handle, elsewhere, &known) {
        (Some(h), _, _) => (online_view(&api.node, &vid, h), Some(h.frames.get())),
        (None, Some(node), k) => (elsewhere_view(node, &vid, k.as_ref()), None),
        (None, None, Some(k)) => (offline_view(k), None),
        (None, None, None) => {
            return Err(ApiError::not_found(format!(
                "vehicle {vid} has never been seen"
            )))
        }
    };
    Ok(Json(VehicleDetail {
        vehicle,
        frames_in: frames.map(|f| f.0),
        frames_out: frames.map(|f| f.1),
        queued_commands: queued as u64,
    }))
}

/// Closes the vehicle's connection (presence `offline`, reason `kicked`); its commands in
/// flight stay queued for its next login. In cluster mode, wherever the vehicle is
/// connected, and a ban holds on every node.
#[utoipa::path(delete, path = "/api/v1/vehicles/{vid}/connection", tag = "vehicles", params(VehiclePath, KickQuery), responses(
    (status = 204, description = "Closed"),
    (status = 404, description = "Not connected", body = ErrorBody),
    (status = 400, description = "A bad ban_s", body = ErrorBody),
))]
pub async fn kick(
    State(api): State<super::State>,
    Path(vid): Path<String>,
    query: Result<Query<KickQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let ban_s = q.ban_s.unwrap_or(0);
    let here = api.registry.get(&vid);
    // Cluster mode: the node holding it closes it, and every node takes the ban. On one
    // node (or when held here, without a ban) nothing is asked.
    let elsewhere = if here.is_none() || ban_s > 0 {
        api.registry
            .kick_elsewhere(&vid, ban_s, here.is_some())
            .await
    } else {
        false
    };
    if ban_s > 0 && (here.is_some() || elsewhere) {
        crate::bans::ban(&vid, Duration::from_secs(ban_s));
    }
    let Some(h) = here else {
        if elsewhere {
            tracing::info!(vehicle = %vid, ban_s, "vehicle kicked by an operator (on another node)");
            metrics::counter!("vgate_kicks_total").increment(1);
            return Ok(StatusCode::NO_CONTENT);
        }
        return Err(ApiError::not_found(format!(
            "vehicle {vid} is not connected"
        )));
    };
    tracing::info!(vehicle = %vid, peer = %h.peer, ban_s, "vehicle kicked by an operator");
    metrics::counter!("vgate_kicks_total").increment(1);
    // The session may be closing on its own already: then it is gone all the same.
    let _ = h.control.send(Control::Close(PresenceReason::Kicked)).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{CommandQueue, MemoryQueue};

    fn ids(p: &VehiclePage) -> Vec<&str> {
        p.items.iter().map(|v| v.vehicle_id.as_str()).collect()
    }

    #[test]
    fn pages_walk_every_known_vehicle_once_in_order() {
        let q = MemoryQueue::new(Default::default());
        let seen: Vec<(String, String)> = (0..2500)
            .map(|i| (format!("v{i:05}"), "jt808-2013".to_owned()))
            .collect();
        q.remember_vehicles(&seen, 1).unwrap();
        let mut all = Vec::new();
        let mut query = ListQuery::default();
        loop {
            let p = page(&q, "n", &online_in(&BTreeMap::new()), &query, 1000).unwrap();
            all.extend(ids(&p).into_iter().map(str::to_owned));
            match p.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(all.len(), 2500);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }

    fn handle() -> SessionHandle {
        let (tx, _rx) = crate::registry::control();
        SessionHandle {
            id: 1,
            protocol: codecs::Protocol::Gbt32960_2016,
            peer: "127.0.0.1:1".parse().unwrap(),
            since: chrono::Utc::now(),
            control: tx,
            frames: Default::default(),
        }
    }

    #[test]
    fn online_and_known_merge_across_chunks_whichever_is_longer() {
        // 3,000 known (even ids), 2,500 online (every third id, some known, most not): more
        // than a chunk of each, interleaved.
        let q = MemoryQueue::new(Default::default());
        let seen: Vec<(String, String)> = (0..6000)
            .step_by(2)
            .map(|i| (format!("v{i:05}"), "jt808-2013".to_owned()))
            .collect();
        q.remember_vehicles(&seen, 1).unwrap();
        let online: BTreeMap<String, SessionHandle> = (0..7500)
            .step_by(3)
            .map(|i| (format!("v{i:05}"), handle()))
            .collect();
        let mut expected: Vec<String> = seen.iter().map(|(v, _)| v.clone()).collect();
        expected.extend(online.keys().cloned());
        expected.sort();
        expected.dedup();
        for limit in [1000, 7] {
            let mut all = Vec::new();
            let mut query = ListQuery::default();
            loop {
                let p = page(&q, "n", &online_in(&online), &query, limit).unwrap();
                for v in &p.items {
                    assert_eq!(v.online, online.contains_key(&v.vehicle_id), "{v:?}");
                }
                all.extend(ids(&p).into_iter().map(str::to_owned));
                match p.next_cursor {
                    Some(c) => query.cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(all, expected, "limit {limit}");
        }
        let only_online = ListQuery {
            online: Some(true),
            ..Default::default()
        };
        let p = page(&q, "n", &online_in(&online), &only_online, 1000).unwrap();
        assert_eq!(p.items.len(), 1000);
        assert!(p.items.iter().all(|v| v.online));
    }

    #[test]
    fn prefix_and_protocol_filter() {
        let q = MemoryQueue::new(Default::default());
        q.remember_vehicles(
            &[
                ("a1".into(), "jt808-2013".into()),
                ("b1".into(), "gbt32960-2016".into()),
                ("b2".into(), "jt808-2019".into()),
                ("c1".into(), "jt808-2013".into()),
            ],
            1,
        )
        .unwrap();
        let query = ListQuery {
            prefix: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(
            ids(&page(&q, "n", &online_in(&BTreeMap::new()), &query, 10).unwrap()),
            ["b1", "b2"]
        );
        let query = ListQuery {
            protocol: Some("jt808".into()),
            ..Default::default()
        };
        assert_eq!(
            ids(&page(&q, "n", &online_in(&BTreeMap::new()), &query, 10).unwrap()),
            ["a1", "b2", "c1"]
        );
        assert!(!protocol_matches("jt80", Some("jt808-2013")));
    }
}
