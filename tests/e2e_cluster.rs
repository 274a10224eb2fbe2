//! Several nodes as one gateway (contract §7), black box: Mosquitto, redis-server and three
//! real `vgate` processes on loopback, simulated JT/T 808 terminals on TCP, a platform on
//! MQTT.
//!
//! Without mosquitto or redis-server these tests skip (and fail under `CI`).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use gateway::simulate::jt808::{Fix, Terminal};
use gateway::simulate::Device;
use jt808::{Message, Version};
use rumqttc::QoS;
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};
use test_support::redis::RedisServer;

const WAIT: Duration = Duration::from_secs(15);

/// Mosquitto, Redis and `n` nodes (`node-0`...), every node on both.
struct Cluster {
    mosquitto: Mosquitto,
    redis: RedisServer,
    nodes: Vec<Vgate>,
}

fn node_opts(m: &Mosquitto, redis: &RedisServer, i: usize, extra: &[(&str, &str)]) -> VgateOptions {
    let mut env = vec![
        ("VGATE_NODE_ID".to_owned(), format!("node-{i}")),
        ("VGATE_REDIS_URL".to_owned(), redis.url()),
        ("VGATE_CLUSTER__PRESENCE_TTL_S".to_owned(), "3".to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    VgateOptions {
        mqtt_url: Some(m.url()),
        extra_env: env,
        ..Default::default()
    }
}

impl Cluster {
    fn start(n: usize) -> Option<Cluster> {
        Self::start_with(n, &[])
    }

    fn start_with(n: usize, extra: &[(&str, &str)]) -> Option<Cluster> {
        let mosquitto = Mosquitto::start()?;
        let redis = RedisServer::start()?;
        let nodes = (0..n)
            .map(|i| Vgate::start(node_opts(&mosquitto, &redis, i, extra)))
            .collect();
        Some(Cluster {
            mosquitto,
            redis,
            nodes,
        })
    }

    fn jt808(&self, i: usize) -> std::net::SocketAddr {
        self.nodes[i].addr("jt808")
    }

    /// Waits until every node has subscribed (each logs "inbox subscribed" and its bridge
    /// subscribes on connect; a short pause covers the latter).
    async fn settle(&self) {
        for n in &self.nodes {
            assert!(
                n.wait_log("inbox subscribed", WAIT),
                "a node never subscribed its inbox"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The sum of the samples of metric `name` (any labels) in `node`'s /metrics.
fn metric(node: &Vgate, name: &str) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(node.addr("http")).expect("http");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn online(addr: std::net::SocketAddr, phone: &str) -> Terminal {
    support::online_terminal(addr, phone, Version::V2013).await
}

async fn publish(sub: &Subscriber, topic: &str, json: String) {
    sub.client
        .publish(topic, QoS::AtLeastOnce, false, json.into_bytes())
        .await
        .expect("publish");
}

fn text(id: &str) -> String {
    format!(r#"{{"id":"{id}","type":"text","params":{{"text":"{id}"}}}}"#)
}

/// The text of a 0x8300 downlink.
fn text_of(m: &Message) -> String {
    match m {
        Message::Text(t) => t.text.clone(),
        other => panic!("not a text message: {other:?}"),
    }
}

/// Reads downlinks until `want` texts arrived (answering each: acked), or `limit` passes;
/// returns every text received, in order, duplicates included.
async fn take_texts(t: &mut Terminal, want: usize, limit: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < want {
        let Ok(next) = tokio::time::timeout_at(deadline, t.next_frame()).await else {
            break;
        };
        let Some((h, m)) = next.expect("read") else {
            break;
        };
        if h.msg_id == 0x8300 {
            got.push(text_of(&m));
        }
        t.answer(&h, &m).await.expect("answer");
    }
    // Anything more within a short while would be a duplicate.
    let extra = Instant::now() + Duration::from_millis(700);
    while Instant::now() < extra {
        match tokio::time::timeout(Duration::from_millis(100), t.next_frame()).await {
            Ok(Ok(Some((h, m)))) => {
                if h.msg_id == 0x8300 {
                    got.push(text_of(&m));
                }
                let _ = t.answer(&h, &m).await;
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    got
}

/// Collects `cmd_result`s until every id of `ids` is acked (or `limit`); returns status
/// lists per id.
async fn results_until_acked(
    sub: &mut Subscriber,
    ids: &[String],
    limit: Duration,
) -> HashMap<String, Vec<String>> {
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    let deadline = Instant::now() + limit;
    let done = |m: &HashMap<String, Vec<String>>| {
        ids.iter()
            .all(|i| m.get(i).is_some_and(|s| s.iter().any(|x| x == "acked")))
    };
    while !done(&by_id) && Instant::now() < deadline {
        let Ok(p) = tokio::time::timeout(Duration::from_millis(200), sub.rx.recv()).await else {
            continue;
        };
        let Some(p) = p else { break };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&p.payload) else {
            continue;
        };
        if json["type"] == "cmd_result" {
            let id = json["data"]["id"].as_str().unwrap_or_default().to_owned();
            let st = json["data"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            by_id.entry(id).or_default().push(st);
        }
    }
    // Late duplicates.
    for r in sub.drain(Duration::from_millis(500)).await {
        if r.json["type"] == "cmd_result" {
            let id = r.json["data"]["id"].as_str().unwrap_or_default().to_owned();
            let st = r.json["data"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            by_id.entry(id).or_default().push(st);
        }
    }
    by_id
}

fn count(v: &[String], s: &str) -> usize {
    v.iter().filter(|x| *x == s).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_published_once_reaches_its_vehicle_once_whichever_node_holds_it() {
    let Some(c) = Cluster::start(3) else { return };
    c.settle().await;
    let mut sub = Subscriber::connect(c.mosquitto.port, &["vgate/v1/+/cmd/result"]).await;
    let phones: Vec<String> = (0..3).map(|i| format!("01391000000{i}")).collect();
    let mut terminals = Vec::new();
    for (i, p) in phones.iter().enumerate() {
        terminals.push(online(c.jt808(i), p).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 10 commands per vehicle: the broker spreads them over the three nodes, whatever node
    // the vehicle is on.
    let mut ids = Vec::new();
    for p in &phones {
        for k in 0..10 {
            let id = format!("{p}-{k}");
            publish(&sub, &format!("vgate/v1/{p}/cmd"), text(&id)).await;
            ids.push(id);
        }
    }
    for (t, p) in terminals.iter_mut().zip(&phones) {
        let mut got = take_texts(t, 10, WAIT).await;
        got.sort();
        let want: Vec<String> = (0..10).map(|k| format!("{p}-{k}")).collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got, want_sorted, "vehicle {p}: each command exactly once");
    }
    let results = results_until_acked(&mut sub, &ids, WAIT).await;
    for id in &ids {
        let st = results.get(id).cloned().unwrap_or_default();
        assert_eq!(count(&st, "acked"), 1, "{id}: {st:?}");
        assert_eq!(count(&st, "sent"), 1, "{id}: {st:?}");
        assert_eq!(count(&st, "queued"), 0, "{id} was online: {st:?}");
    }
    // The shared subscription gave each command to one node (not one copy per node), and
    // spread them: more than one node took some.
    let taken: Vec<f64> = c
        .nodes
        .iter()
        .map(|n| metric(n, "vgate_mqtt_commands_received_total"))
        .collect();
    assert_eq!(
        taken.iter().sum::<f64>(),
        ids.len() as f64,
        "taken per node: {taken:?}"
    );
    assert!(
        taken.iter().filter(|k| **k > 0.0).count() > 1,
        "spread: {taken:?}"
    );
    // And the nodes that took a command for a vehicle held elsewhere told the holder.
    let told: f64 = c
        .nodes
        .iter()
        .map(|n| metric(n, "vgate_cluster_inbox_total"))
        .sum();
    assert!(told > 0.0, "inbox notices: {told}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auth_code_issued_on_one_node_is_the_one_every_node_knows() {
    let Some(c) = Cluster::start(3) else { return };
    c.settle().await;
    let phone = "013910000100";
    let mut t = Terminal::connect(c.jt808(0), phone, Version::V2013)
        .await
        .unwrap();
    let code = t.register().await.unwrap().auth_code.expect("a code");
    drop(t);
    // Registering again through another node gives the same code.
    let mut t = Terminal::connect(c.jt808(1), phone, Version::V2013)
        .await
        .unwrap();
    assert_eq!(
        t.register().await.unwrap().auth_code.as_deref(),
        Some(code.as_str())
    );
    drop(t);
    // A wrong code is refused on the third node (it knows the code: it is not a first use),
    // and the right one accepted.
    let mut t = Terminal::connect(c.jt808(2), phone, Version::V2013)
        .await
        .unwrap();
    assert_ne!(
        t.authenticate("not-the-code").await.unwrap(),
        0,
        "wrong code refused"
    );
    let mut t = Terminal::connect(c.jt808(2), phone, Version::V2013)
        .await
        .unwrap();
    assert_eq!(
        t.authenticate(&code).await.unwrap(),
        0,
        "the code from node 0 works on node 2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vehicle_that_moves_to_another_node_is_taken_over_without_a_presence_flap() {
    let Some(c) = Cluster::start(2) else { return };
    c.settle().await;
    let phone = "013910000200";
    let mut sub = Subscriber::connect(
        c.mosquitto.port,
        &[
            &format!("vgate/v1/{phone}/status"),
            &format!("vgate/v1/{phone}/lifecycle"),
        ],
    )
    .await;
    let mut old = online(c.jt808(0), phone).await;
    let first = sub.next_on("/status", WAIT).await;
    assert_eq!(first.json["data"]["online"], true);
    assert_eq!(first.json["gateway"], "node-0");
    let _new = online(c.jt808(1), phone).await;
    assert!(
        old.closed_within(WAIT).await,
        "the old node closes its connection"
    );
    let seen = sub.drain(Duration::from_secs(2)).await;
    let statuses: Vec<(bool, String)> = seen
        .iter()
        .filter(|r| r.topic.ends_with("/status"))
        .map(|r| {
            (
                r.json["data"]["online"].as_bool().unwrap_or(false),
                r.json["gateway"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [(true, "node-1".to_owned())],
        "no offline in between: {seen:?}"
    );
    assert!(
        seen.iter().any(|r| r.topic.ends_with("/lifecycle")
            && r.json["data"]["event"] == "takeover"
            && r.json["gateway"] == "node-0"),
        "the old node says takeover: {seen:?}"
    );
    // Commands follow the vehicle: one published now reaches the new connection.
    let mut new = _new;
    publish(&sub, &format!("vgate/v1/{phone}/cmd"), text("after-move")).await;
    assert_eq!(take_texts(&mut new, 1, WAIT).await, ["after-move"]);
}

/// The operator API of any node finds a vehicle held by another node, and kicks it there;
/// the ban holds on every node.
#[tokio::test(flavor = "multi_thread")]
async fn any_nodes_api_finds_and_kicks_a_vehicle_held_by_another_node() {
    let Some(c) = Cluster::start(2) else {
        return;
    };
    c.settle().await;
    let phone = "013910000700";
    let mut sub =
        Subscriber::connect(c.mosquitto.port, &[&format!("vgate/v1/{phone}/status")]).await;
    let mut t = online(c.jt808(1), phone).await;
    assert_eq!(
        sub.next_on("/status", WAIT).await.json["data"]["online"],
        true
    );
    let api = c.nodes[0].addr("http");
    let (status, body) =
        support::http(api, "GET", &format!("/api/v1/vehicles/{phone}"), None, None).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &v["online"], &v["node"]),
        (200, &true.into(), &"node-1".into()),
        "{body}"
    );
    // The list of node 0, filtered on online vehicles, has it too (known to every node, held
    // by node 1); a vehicle known but connected nowhere stays out.
    let mut gone = online(c.jt808(0), "013910000701").await;
    gone.logout().await.unwrap();
    drop(gone);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = "/api/v1/vehicles?online=true&prefix=0139100007";
    let (status, body) = support::http(api, "GET", list, None, None).await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed: Vec<(&str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["vehicle_id"].as_str().unwrap(),
                v["node"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!((status, listed), (200, vec![(phone, "node-1")]), "{body}");
    // Without the filter the absent one is listed offline.
    let list = "/api/v1/vehicles?prefix=0139100007";
    let (_, body) = support::http(api, "GET", list, None, None).await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(page["items"][1]["online"], false, "{body}");
    // Kicked through node 0, with a ban: node 1 closes it, and neither node takes it back.
    let path = format!("/api/v1/vehicles/{phone}/connection?ban_s=60");
    let (status, body) = support::http(api, "DELETE", &path, None, None).await;
    assert_eq!(status, 204, "{body}");
    assert!(t.closed_within(WAIT).await, "node 1 closed the connection");
    let off = sub.next_on("/status", WAIT).await;
    assert_eq!(off.json["data"]["online"], false);
    assert_eq!(off.json["data"]["reason"], "kicked");
    for node in 0..2 {
        let mut again = Terminal::connect(c.jt808(node), phone, Version::V2013)
            .await
            .unwrap();
        let refused = match again.register().await {
            Ok(r) => r.result != 0,
            Err(_) => true,
        };
        assert!(refused, "node {node} takes the banned vehicle back");
    }
    // Not connected anywhere: 404.
    let (status, _) = support::http(
        api,
        "DELETE",
        "/api/v1/vehicles/013910000799/connection",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
}

/// A clean stop (drain) hands the node's vehicles to the cluster: one that reconnects to
/// another node goes `online` there with no `offline` in between; one that stays away is
/// published offline by the surviving node after the presence TTL, reason `shutdown`.
#[tokio::test(flavor = "multi_thread")]
async fn a_drained_nodes_vehicles_move_without_an_offline_and_the_absent_go_offline_as_shutdown() {
    let Some(mut c) = Cluster::start(2) else {
        return;
    };
    c.settle().await;
    let (moving, absent) = ("013910000610", "013910000611");
    let mut sub = Subscriber::connect(c.mosquitto.port, &["vgate/v1/+/status"]).await;
    let mut m = online(c.jt808(0), moving).await;
    let mut a = online(c.jt808(0), absent).await;
    let first = sub.drain(Duration::from_secs(1)).await;
    assert_eq!(first.len(), 2, "both online on node-0: {first:?}");
    tokio::task::block_in_place(|| assert!(c.nodes[0].terminate().success(), "a clean stop"));
    assert!(m.closed_within(WAIT).await && a.closed_within(WAIT).await);
    let _m = online(c.jt808(1), moving).await;
    // The TTL here is 3 s, renewals every second: the reaper's offline comes within ~5 s.
    let seen = sub.drain(Duration::from_secs(8)).await;
    let statuses = |vid: &str| -> Vec<(bool, String, String)> {
        seen.iter()
            .filter(|r| r.topic == format!("vgate/v1/{vid}/status"))
            .map(|r| {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                let online = r.json["data"]["online"].as_bool().unwrap_or(false);
                (
                    online,
                    text(&r.json["gateway"]),
                    text(&r.json["data"]["reason"]),
                )
            })
            .collect()
    };
    let moved = statuses(moving);
    assert!(
        moved.len() == 1 && moved[0].0 && moved[0].1 == "node-1",
        "online on node-1, no offline in between: {seen:?}"
    );
    assert_eq!(
        statuses(absent),
        [(false, "node-1".to_owned(), "shutdown".to_owned())],
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_node_loses_and_doubles_no_command_and_its_vehicles_go_offline() {
    let Some(mut c) = Cluster::start(3) else {
        return;
    };
    c.settle().await;
    let mut sub = Subscriber::connect(
        c.mosquitto.port,
        &["vgate/v1/+/cmd/result", "vgate/v1/+/status"],
    )
    .await;
    // Five vehicles seen once on node 0, then offline; commands queued for them.
    let phones: Vec<String> = (0..5).map(|i| format!("01391000030{i}")).collect();
    for p in &phones {
        let mut t = online(c.jt808(0), p).await;
        t.logout().await.unwrap();
    }
    let mut ids = Vec::new();
    for p in &phones {
        for k in 0..4 {
            let id = format!("{p}-q{k}");
            publish(&sub, &format!("vgate/v1/{p}/cmd"), text(&id)).await;
            ids.push(id);
        }
    }
    // One more vehicle is online on node 0 when it dies.
    let held = "013910000399";
    let _held = online(c.jt808(0), held).await;
    let deadline = Instant::now() + WAIT;
    let mut announced = false;
    let mut early = Vec::new();
    while !announced && Instant::now() < deadline {
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(200), sub.rx.recv()).await {
            announced = p.topic == format!("vgate/v1/{held}/status");
            early.push(p);
        }
    }
    assert!(announced, "the held vehicle announced online");
    // Every command queued (stored in Redis, acknowledged to the broker) before the kill.
    let deadline = Instant::now() + WAIT;
    let mut queued = std::collections::HashSet::new();
    for p in early {
        let j: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
        if j["data"]["status"] == "queued" {
            queued.insert(j["data"]["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    while queued.len() < ids.len() && Instant::now() < deadline {
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(200), sub.rx.recv()).await {
            let j: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if j["data"]["status"] == "queued" {
                queued.insert(j["data"]["id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    assert_eq!(queued.len(), ids.len(), "every command queued");
    c.nodes[0].kill();
    // The dead node's vehicle goes offline (node_down) once its presence TTL (3 s) lapses.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut offline = None;
    while offline.is_none() && Instant::now() < deadline {
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(200), sub.rx.recv()).await {
            let j: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if p.topic == format!("vgate/v1/{held}/status") && j["data"]["online"] == false {
                offline = Some(j);
            }
        }
    }
    let offline = offline.expect("the dead node's vehicle published offline");
    assert_eq!(offline["data"]["reason"], "node_down", "{offline}");
    // The vehicles come back on the surviving nodes: each command exactly once.
    for (i, p) in phones.iter().enumerate() {
        let mut t = online(c.jt808(1 + i % 2), p).await;
        let mut got = take_texts(&mut t, 4, WAIT).await;
        got.sort();
        let want: Vec<String> = (0..4).map(|k| format!("{p}-q{k}")).collect();
        assert_eq!(got, want, "vehicle {p}");
    }
    let results = results_until_acked(&mut sub, &ids, WAIT).await;
    for id in &ids {
        let st = results.get(id).cloned().unwrap_or_default();
        assert_eq!(count(&st, "acked"), 1, "{id}: {st:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_mid_run_costs_no_report_and_no_command() {
    let Some(mut c) = Cluster::start(2) else {
        return;
    };
    c.settle().await;
    let phone = "013910000400";
    let mut sub = Subscriber::connect(
        c.mosquitto.port,
        &[
            &format!("vgate/v1/{phone}/location"),
            &format!("vgate/v1/{phone}/cmd/result"),
        ],
    )
    .await;
    let mut t = online(c.jt808(1), phone).await;
    let readyz = |node: &Vgate| support::http(node.addr("http"), "GET", "/readyz", None, None);
    let (status, body) = readyz(&c.nodes[1]).await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &ready["redis"]["reachable"]),
        (200, &true.into()),
        "{body}"
    );
    c.redis.kill();
    // Redis away is reported, not a reason to leave the load balancer.
    let (status, body) = readyz(&c.nodes[1]).await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &ready["redis"]["reachable"]),
        (200, &false.into()),
        "{body}"
    );
    assert!(ready["redis"]["error"].is_string(), "{body}");
    // Uplink never depends on Redis.
    assert_eq!(t.report(&Fix::default()).await.unwrap(), 0);
    let loc = sub.next_on("/location", WAIT).await;
    assert_eq!(loc.json["vehicle_id"], phone);
    // A command published while Redis is down is held (not acknowledged) until it is back.
    publish(
        &sub,
        &format!("vgate/v1/{phone}/cmd"),
        text("during-outage"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.redis.restart();
    assert_eq!(
        take_texts(&mut t, 1, Duration::from_secs(20)).await,
        ["during-outage"]
    );
    let r = results_until_acked(&mut sub, &["during-outage".to_owned()], WAIT).await;
    assert_eq!(count(&r["during-outage"], "acked"), 1, "{r:?}");
    // After the restart (Redis lost everything: no persistence here) presence is written
    // again by the renewal, so a command still finds the vehicle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish(
        &sub,
        &format!("vgate/v1/{phone}/cmd"),
        text("after-restart"),
    )
    .await;
    assert_eq!(take_texts(&mut t, 1, WAIT).await, ["after-restart"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadcast_reaches_every_vehicle_over_the_nodes_once() {
    let n: usize = std::env::var("VGATE_TEST_BROADCAST_VEHICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let Some(c) = Cluster::start(3) else { return };
    c.settle().await;
    let addrs: Vec<_> = (0..3).map(|i| c.jt808(i)).collect();
    let mut sub = Subscriber::connect_with(
        c.mosquitto.port,
        &["vgate/v1/+/cmd/result"],
        QoS::AtMostOnce,
    )
    .await;
    // n vehicles, spread over the three nodes, each answering every command.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let ready = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..n {
        let (tx, ready, gate) = (tx.clone(), ready.clone(), gate.clone());
        let addr = addrs[i % 3];
        tokio::spawn(async move {
            let phone = format!("0139{:08}", 20_000_000 + i);
            let permit = gate.acquire_owned().await.unwrap();
            let mut t = online(addr, &phone).await;
            drop(permit);
            ready.add_permits(1);
            while let Ok(Some((h, m))) = t.next_frame().await {
                if h.msg_id == 0x8300 {
                    let _ = tx.send((phone.clone(), text_of(&m)));
                }
                if t.answer(&h, &m).await.is_err() {
                    return;
                }
            }
        });
    }
    let started = Instant::now();
    let _all = tokio::time::timeout(Duration::from_secs(120), ready.acquire_many(n as u32))
        .await
        .expect("every vehicle online");
    eprintln!("{n} vehicles online in {:?}", started.elapsed());
    // Logins are remembered (known vehicles, in Redis) in batches: let them land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    publish(&sub, "vgate/broadcast/all/cmd", text("bcast-1")).await;
    let mut per_vehicle: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while per_vehicle.len() < n && Instant::now() < deadline {
        if let Ok(Some((phone, txt))) =
            tokio::time::timeout(Duration::from_millis(500), rx.recv()).await
        {
            assert_eq!(txt, "bcast-1");
            *per_vehicle.entry(phone).or_default() += 1;
        }
    }
    let took = started.elapsed();
    eprintln!("broadcast to {n} vehicles on 3 nodes delivered in {took:?}");
    // Acked results, one per vehicle.
    let mut acked = 0usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked < n && Instant::now() < deadline {
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(300), sub.rx.recv()).await {
            let j: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if j["data"]["status"] == "acked" && j["data"]["id"] == "bcast-1" {
                acked += 1;
            }
        }
    }
    // No duplicate shortly after.
    while let Ok(Some((phone, _))) =
        tokio::time::timeout(Duration::from_millis(700), rx.recv()).await
    {
        *per_vehicle.entry(phone).or_default() += 1;
    }
    assert_eq!(per_vehicle.len(), n, "every vehicle got the broadcast");
    assert!(per_vehicle.values().all(|k| *k == 1), "once each");
    assert_eq!(acked, n, "one acked result per vehicle");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_loses_no_command() {
    let Some(mut c) = Cluster::start(2) else {
        return;
    };
    c.settle().await;
    let mut sub = Subscriber::connect(c.mosquitto.port, &["vgate/v1/+/cmd/result"]).await;
    let phones: Vec<String> = (0..5).map(|i| format!("01391000050{i}")).collect();
    // 200 commands over ~3 s, to vehicles not connected yet, while node 0 is drained (SIGTERM),
    // stopped and started again.
    let publisher = {
        let client = sub.client.clone();
        let phones = phones.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..200 {
                let p = &phones[k % phones.len()];
                let id = format!("{p}-r{k}");
                client
                    .publish(
                        format!("vgate/v1/{p}/cmd"),
                        QoS::AtLeastOnce,
                        false,
                        text(&id).into_bytes(),
                    )
                    .await
                    .expect("publish");
                ids.push(id);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            ids
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let opts = node_opts(&c.mosquitto, &c.redis, 0, &[]);
    tokio::task::block_in_place(|| {
        assert!(c.nodes[0].terminate().success(), "a clean stop");
        let dir = std::mem::replace(&mut c.nodes[0].data_dir, tempfile::tempdir().unwrap());
        c.nodes[0] = Vgate::start_in(opts, dir);
    });
    let ids = publisher.await.unwrap();
    // Every command stored (queued) once.
    let mut queued: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while queued.len() < ids.len() && Instant::now() < deadline {
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(300), sub.rx.recv()).await {
            let j: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if j["data"]["status"] == "queued" {
                *queued
                    .entry(j["data"]["id"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(queued.len(), ids.len(), "every command stored");
    // The vehicles come: each command exactly once, on whichever node.
    for (i, p) in phones.iter().enumerate() {
        let mut t = online(c.jt808(i % 2), p).await;
        let mut got = take_texts(&mut t, 40, WAIT).await;
        got.sort();
        let mut want: Vec<String> = ids
            .iter()
            .filter(|id| id.starts_with(p.as_str()))
            .cloned()
            .collect();
        want.sort();
        assert_eq!(got, want, "vehicle {p}");
    }
}
