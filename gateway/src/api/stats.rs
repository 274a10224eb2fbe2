//! Readiness, the counters of `/api/v1/stats`, and the live reload (`POST /api/v1/reload`
//! and SIGHUP: [`reload_now`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};

/// How often the event counters are sampled for their rates.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The values of one metric in Prometheus text: `(value of label, value)` per series.
fn series(text: &str, metric: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let key = format!("{label}=\"");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let Some(labels) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = labels.rsplit_once("} ") else {
            continue;
        };
        let Some(v) = labels
            .split_once(&key)
            .and_then(|(_, after)| after.split_once('"'))
            .map(|(v, _)| v.to_owned())
        else {
            continue;
        };
        if let Ok(n) = value.trim().parse::<f64>() {
            *out.entry(v).or_insert(0.0) += n;
        }
    }
    out
}

/// Event counters sampled every few seconds: the rate is between the last two samples.
#[derive(Default)]
pub struct Rates {
    samples: Mutex<(Option<Sample>, Option<Sample>)>,
}

#[derive(Clone)]
struct Sample {
    at: Instant,
    events: BTreeMap<String, f64>,
}

impl Rates {
    fn push(&self, s: Sample) {
        let mut g = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = g.1.take();
        g.1 = Some(s);
    }

    /// Events per second per type over the last sampling period.
    fn per_second(&self) -> BTreeMap<String, f64> {
        let g = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let (Some(a), Some(b)) = (&g.0, &g.1) else {
            return BTreeMap::new();
        };
        let dt = b.at.duration_since(a.at).as_secs_f64();
        if dt <= 0.0 {
            return BTreeMap::new();
        }
        b.events
            .iter()
            .map(|(k, v)| {
                let before = a.events.get(k).copied().unwrap_or(0.0);
                (
                    k.clone(),
                    ((v - before).max(0.0) / dt * 10.0).round() / 10.0,
                )
            })
            .collect()
    }
}

/// Samples the event counters until `shutdown`.
pub async fn sample(api: super::State, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let text = api.prometheus.render();
        api.rates.push(Sample {
            at: Instant::now(),
            events: series(&text, "vgate_events_total", "type"),
        });
    }
}

/// The broker connection as stats and readiness show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrokerState {
    /// `host:port`.
    pub broker: String,
    /// Whether the gateway's MQTT connection is up.
    pub connected: bool,
    /// Whether a spool takes publishes while the broker is away.
    pub spool_accepting: bool,
}

/// Redis as stats and readiness show it (cluster mode only).
#[derive(Debug, Serialize, ToSchema)]
pub struct RedisState {
    /// Whether Redis answered a `PING` within `cluster.redis_timeout_ms`.
    pub reachable: bool,
    /// How long the `PING` took, when it was answered.
    pub latency_ms: Option<f64>,
    /// Why not, when not.
    pub error: Option<String>,
}

/// Asks Redis for a `PING` (cluster mode; `None` on one node).
async fn redis_state(api: &super::Api) -> Option<RedisState> {
    let redis = api.redis.as_ref()?;
    let start = std::time::Instant::now();
    let answer = redis.query::<String>("ping", &::redis::cmd("PING")).await;
    Some(match answer {
        Ok(_) => RedisState {
            reachable: true,
            latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
            error: None,
        },
        Err(e) => RedisState {
            reachable: false,
            latency_ms: None,
            error: Some(e.to_string()),
        },
    })
}

/// What `/api/v1/stats` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub node: String,
    pub uptime_s: u64,
    /// Open connections per listener.
    pub connections: BTreeMap<String, u64>,
    /// Vehicles online on this node.
    pub vehicles_online: u64,
    /// Events published per second per type, over the last few seconds.
    pub events_per_s: BTreeMap<String, f64>,
    pub broker: BrokerState,
    /// Redis (cluster mode; absent on one node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisState>,
    /// Bytes waiting in the MQTT spool; `null` without a spool.
    pub spool_bytes: Option<u64>,
    /// Commands waiting in the queue, all vehicles.
    pub queued_commands: u64,
    /// Vehicles banned now.
    pub bans: u64,
    /// The process's memory, CPU time, descriptors and threads; `null` where `/proc` cannot
    /// be read (not Linux).
    pub process: Option<crate::process::Snapshot>,
}

fn broker_state(api: &super::Api) -> BrokerState {
    BrokerState {
        broker: api.broker.broker().to_owned(),
        connected: api.broker.connected(),
        spool_accepting: api.broker.spool_accepting(),
    }
}

/// Counters: connections, event rates, broker, spool, queue.
#[utoipa::path(get, path = "/api/v1/stats", tag = "operations", responses(
    (status = 200, description = "The gateway's counters", body = Stats),
))]
pub async fn stats(State(api): State<super::State>) -> Json<Stats> {
    let process = tokio::task::spawn_blocking(crate::process::Snapshot::read)
        .await
        .ok()
        .and_then(Result::ok);
    let text = api.prometheus.render();
    let mut connections: BTreeMap<String, u64> = api
        .listeners
        .iter()
        .map(|(name, _)| (name.clone(), 0))
        .collect();
    for (listener, n) in series(&text, "vgate_connections_open", "listener") {
        connections.insert(listener, n.max(0.0) as u64);
    }
    Json(Stats {
        node: api.node.to_string(),
        uptime_s: api.started.elapsed().as_secs(),
        connections,
        vehicles_online: api.registry.online() as u64,
        events_per_s: api.rates.per_second(),
        broker: broker_state(&api),
        redis: redis_state(&api).await,
        spool_bytes: api.broker.spool_bytes(),
        queued_commands: api.commands.queue.len() as u64,
        bans: crate::bans::count() as u64,
        process,
    })
}

/// What `/readyz` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    pub listeners: BTreeMap<String, String>,
    pub broker: BrokerState,
    /// Redis (cluster mode; absent on one node). Reported, never a reason to be unready: a
    /// node without Redis still carries every vehicle's data, and Redis away from every node
    /// at once must not take the whole fleet off the load balancer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisState>,
}

/// 200 when every listener is up and the broker connected (or the spool accepting); else 503
/// with the reason.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready, with the reason", body = Readiness),
), security(()))]
pub async fn readyz(State(api): State<super::State>) -> Response {
    let broker = broker_state(&api);
    let reason = if api.shutdown.is_cancelled() {
        Some("shutting down: the listeners are closed".to_owned())
    } else if !broker.connected && !broker.spool_accepting {
        Some(format!(
            "MQTT broker {} not connected and no spool accepting publishes",
            broker.broker
        ))
    } else {
        None
    };
    let body = Readiness {
        ready: reason.is_none(),
        reason,
        listeners: api
            .listeners
            .iter()
            .map(|(n, a)| (n.clone(), a.to_string()))
            .collect(),
        broker,
        redis: redis_state(&api).await,
    };
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// What a reload changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    /// The keys whose new values are in force now.
    pub changed: Vec<String>,
    /// What could not be re-read and kept its previous state (a TLS file that does not load),
    /// each naming its key.
    pub errors: Vec<String>,
    /// What is re-read on its own (allowlist files, on change).
    pub notes: Vec<String>,
}

/// The keys (dotted paths) whose values differ between two configurations.
fn differences(a: &serde_json::Value, b: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => differences(v, w, &p, out),
                    _ => out.push(p),
                }
            }
        }
        (x, y) if x != y => out.push(path.to_owned()),
        _ => {}
    }
}

/// Keys a reload may change: the log filter, the API's tokens and the configured traces.
/// Allowlist files are re-read by their listener whenever they change.
fn live(key: &str) -> bool {
    matches!(key, "log" | "http.tokens_file" | "traces")
        || key.starts_with("mqtt.qos.")
        || key.ends_with(".max_frames_per_s")
}

/// Re-reads the configuration (file and environment): applies what can change live, or
/// refuses (400, naming the key) when anything else changed, changing nothing.
#[utoipa::path(post, path = "/api/v1/reload", tag = "operations", responses(
    (status = 200, description = "What changed", body = Reloaded),
    (status = 400, description = "A key that cannot change live, or a bad configuration", body = ErrorBody),
))]
pub async fn reload(State(api): State<super::State>) -> Result<Json<Reloaded>, ApiError> {
    reload_now(&api, true).await.map(Json)
}

/// The reload of `POST /api/v1/reload` and SIGHUP: re-reads the configuration file and the
/// environment, applies what can change live and, with `tls_files`, re-reads the TLS files
/// ([`super::Api::reloaders`]; SIGHUP re-reads them first, on its own); refuses (naming the
/// key) when anything else changed, changing nothing.
pub async fn reload_now(api: &super::Api, tls_files: bool) -> Result<Reloaded, ApiError> {
    let file = api.config_file.clone();
    let new = tokio::task::spawn_blocking(move || crate::config::Config::load(file.as_deref()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let old = api.config.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let to_json = |c: &crate::config::Config| serde_json::to_value(c).unwrap_or_default();
    let mut changed = Vec::new();
    differences(&to_json(&old), &to_json(&new), "", &mut changed);
    if new.http.token != old.http.token {
        changed.push("http.token".to_owned());
    }
    if let Some(key) = changed.iter().find(|k| !live(k) && *k != "http.token") {
        return Err(ApiError::bad_request(format!(
            "{key} cannot change without a restart; nothing was reloaded"
        )));
    }
    // The tokens file is read again whatever its name: its content may have changed.
    let tokens = Arc::new(super::auth::Tokens::load(&new.http).map_err(ApiError::bad_request)?);
    if *tokens != *api.tokens() && !changed.iter().any(|k| k.starts_with("http.")) {
        changed.push("http.tokens_file".to_owned());
    }
    let open_beyond_loopback = new
        .http
        .listen
        .addr()
        .is_some_and(|a| !a.ip().is_loopback());
    if tokens.is_empty() && open_beyond_loopback {
        return Err(ApiError::bad_request(
            "http.tokens_file: the API listens beyond loopback and would have no token",
        ));
    }
    if changed.iter().any(|k| k == "log") {
        crate::logging::reload_filter(&new.log)
            .map_err(|e| ApiError::bad_request(format!("log: {e}")))?;
    }
    *api.tokens.write().unwrap_or_else(|p| p.into_inner()) = tokens;
    if new.mqtt.qos != old.mqtt.qos {
        api.commands.sink.set_qos(new.mqtt.qos);
    }
    if changed.iter().any(|k| k.ends_with(".max_frames_per_s")) {
        let listeners = new
            .vehicle_listeners()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for vl in listeners {
            if let Some((_, rate)) = api.frame_limits.iter().find(|(n, _)| *n == vl.name) {
                rate.set(vl.max_frames_per_s());
            }
        }
    }
    if new.traces != old.traces {
        let (dir, wanted, running) = (
            crate::traces::dir(&api.data_dir),
            new.traces.clone(),
            old.traces.clone(),
        );
        let started = tokio::task::spawn_blocking(move || {
            crate::traces::start_configured(&dir, &wanted, &running)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        tracing::info!(traces = ?started, "configured traces started");
    }
    let mut errors = Vec::new();
    for reload in api.reloaders.iter().filter(|_| tls_files) {
        let reload = reload.clone();
        let outcomes = tokio::task::spawn_blocking(move || reload())
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        for (name, error) in outcomes {
            match error {
                None => changed.push(name),
                Some(e) => errors.push(e),
            }
        }
    }
    tracing::info!(changed = ?changed, errors = errors.len(), "configuration reloaded");
    *api.config.lock().unwrap_or_else(|p| p.into_inner()) = new;
    Ok(Reloaded {
        errors,
        changed,
        notes: vec!["allowlist files are re-read by their listeners whenever they change".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_sums_a_metric_by_one_label() {
        let text = "# TYPE vgate_events_total counter\n\
            vgate_events_total{type=\"location\"} 10\n\
            vgate_events_total{type=\"status\",x=\"1\"} 2\n\
            vgate_events_total{x=\"2\",type=\"status\"} 3\n\
            vgate_events_totals{type=\"location\"} 99\n";
        let s = series(text, "vgate_events_total", "type");
        assert_eq!(s.get("location"), Some(&10.0));
        assert_eq!(s.get("status"), Some(&5.0));
    }

    #[test]
    fn differences_name_the_keys() {
        let a = serde_json::json!({"log": "info", "jt808": {"listen": "a", "x": 1}});
        let b = serde_json::json!({"log": "debug", "jt808": {"listen": "b", "x": 1}});
        let mut out = Vec::new();
        differences(&a, &b, "", &mut out);
        assert_eq!(out, ["jt808.listen", "log"]);
    }
}
