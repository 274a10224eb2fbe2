//! Black-box tests of the operator HTTP API (contract §6): the real `vgate` binary, plain
//! HTTP/1.0 requests, simulated vehicles on TCP, the platform's view on MQTT, and every answer
//! checked against the OpenAPI document vgate serves.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use gateway::simulate::gbt32960::Vehicle as GbtVehicle;
use gateway::simulate::jt808::Terminal;
use gateway::simulate::Device;
use gbt32960::Edition;
use jt808::{Header, Message, Version};
use serde_json::{json, Value};
use support::{Mosquitto, Subscriber, Vgate, VgateOptions};

const WAIT: Duration = Duration::from_secs(10);
const ADMIN: &str = "admin-token-1";
const VIEWER: &str = "viewer-token-1";

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One request over its own connection (`support::http`), a JSON body when given.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let body = body.map(|b| ("application/json", b.as_bytes()));
    let (status, body) = support::http(addr, method, path, token, body).await;
    Answer { status, body }
}

/// The API of a running vgate, with the document its answers are checked against.
struct Api {
    addr: SocketAddr,
    token: Option<&'static str>,
    doc: Value,
}

impl Api {
    async fn new(vgate: &Vgate, token: Option<&'static str>) -> Api {
        let addr = vgate.addr("http");
        let a = call(addr, "GET", "/api/v1/openapi.json", token, None).await;
        assert_eq!(a.status, 200, "{a:?}");
        let doc = a.json();
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
        Api { addr, token, doc }
    }

    /// Calls `path` (the route `route` of the document) and checks the answer against the
    /// document: the status is documented and the body matches its schema.
    async fn call(&self, method: &str, route: &str, path: &str, body: Option<&str>) -> Answer {
        let a = call(self.addr, method, path, self.token, body).await;
        conforms(&self.doc, method, route, &a);
        a
    }

    async fn get(&self, route: &str, path: &str) -> Answer {
        self.call("GET", route, path, None).await
    }
}

/// Panics unless `a` is an answer the document gives for `method route`.
fn conforms(doc: &Value, method: &str, route: &str, a: &Answer) {
    let op = &doc["paths"][route][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {route} is not in the document");
    let resp = &op["responses"][a.status.to_string()];
    assert!(
        resp.is_object(),
        "{method} {route}: status {} is not documented ({a:?})",
        a.status
    );
    if let Some(schema) = resp["content"]["application/x-ndjson"]["schema"].as_object() {
        let schema = Value::Object(schema.clone());
        for (i, line) in a.body.lines().enumerate() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{method} {route}: line {i} is not JSON ({e})"));
            if let Err(e) = validate(doc, &schema, &v, &format!("$[{i}]")) {
                panic!("{method} {route} {}: {e}\nline: {line}", a.status);
            }
        }
        return;
    }
    match resp["content"]["application/json"]["schema"].as_object() {
        Some(_) => {
            let schema = &resp["content"]["application/json"]["schema"];
            if let Err(e) = validate(doc, schema, &a.json(), "$") {
                panic!("{method} {route} {}: {e}\nbody: {}", a.status, a.body);
            }
        }
        None => assert!(
            a.body.is_empty(),
            "{method} {route}: undocumented body {a:?}"
        ),
    }
}

/// A JSON Schema check of the keywords utoipa writes; any other keyword is an error, so a
/// schema this does not understand cannot pass unchecked.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("{at}: schema {schema} is not an object")),
        };
    };
    for (k, rule) in s {
        match k.as_str() {
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .ok_or_else(|| format!("{at}: unsupported $ref {rule}"))?;
                let target = &doc["components"]["schemas"][name];
                if target.is_null() {
                    return Err(format!("{at}: $ref to missing schema {name}"));
                }
                validate(doc, target, v, at)?;
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad type {rule}")),
                };
                let ok = types.iter().any(|t| match *t {
                    "null" => v.is_null(),
                    "boolean" => v.is_boolean(),
                    "integer" => v.is_i64() || v.is_u64(),
                    "number" => v.is_number(),
                    "string" => v.is_string(),
                    "array" => v.is_array(),
                    "object" => v.is_object(),
                    _ => false,
                });
                if !ok {
                    return Err(format!("{at}: {v} is not of type {rule}"));
                }
            }
            "properties" => {
                if let (Some(props), Some(obj)) = (rule.as_object(), v.as_object()) {
                    for (name, sub) in props {
                        if let Some(x) = obj.get(name) {
                            validate(doc, sub, x, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "required" => {
                if let Some(obj) = v.as_object() {
                    for name in rule.as_array().into_iter().flatten() {
                        let name = name.as_str().unwrap_or_default();
                        if !obj.contains_key(name) {
                            return Err(format!("{at}: required {name} missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = v.as_object() {
                    let known = s.get("properties").and_then(Value::as_object);
                    for (name, x) in obj {
                        if known.is_some_and(|p| p.contains_key(name)) {
                            continue;
                        }
                        match rule {
                            Value::Bool(false) => {
                                return Err(format!("{at}: property {name} not allowed"))
                            }
                            Value::Bool(true) => {}
                            sub => validate(doc, sub, x, &format!("{at}.{name}"))?,
                        }
                    }
                }
            }
            "items" => {
                for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                    validate(doc, rule, x, &format!("{at}[{i}]"))?;
                }
            }
            "allOf" => {
                for sub in rule.as_array().into_iter().flatten() {
                    validate(doc, sub, v, at)?;
                }
            }
            "oneOf" | "anyOf" => {
                let subs = rule.as_array().cloned().unwrap_or_default();
                let passing = subs
                    .iter()
                    .filter(|sub| validate(doc, sub, v, at).is_ok())
                    .count();
                let ok = if k == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    return Err(format!("{at}: {v} matches {passing} of {k} {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().is_some_and(|e| e.contains(v)) {
                    return Err(format!("{at}: {v} not in {rule}"));
                }
            }
            "minimum" => {
                if let (Some(m), Some(x)) = (rule.as_f64(), v.as_f64()) {
                    if x < m {
                        return Err(format!("{at}: {x} < minimum {m}"));
                    }
                }
            }
            "maximum" => {
                if let (Some(m), Some(x)) = (rule.as_f64(), v.as_f64()) {
                    if x > m {
                        return Err(format!("{at}: {x} > maximum {m}"));
                    }
                }
            }
            // Annotations, and formats (int64, uint8, double...) that the type already bounds.
            "description" | "title" | "example" | "examples" | "default" | "format"
            | "deprecated" | "propertyNames" => {}
            other => return Err(format!("{at}: schema keyword {other} not understood")),
        }
    }
    Ok(())
}

fn tokens_env(dir: &std::path::Path) -> Vec<(String, String)> {
    let file = dir.join("api-tokens");
    std::fs::write(&file, format!("# operators\nro:{VIEWER}\n")).unwrap();
    vec![
        ("VGATE_HTTP_TOKEN".into(), ADMIN.into()),
        ("VGATE_HTTP__TOKENS_FILE".into(), file.display().to_string()),
    ]
}

async fn online_terminal(vgate: &Vgate, phone: &str) -> Terminal {
    support::online_terminal(vgate.addr("jt808"), phone, Version::V2013).await
}

/// Waits for a platform message with id `msg_id` without answering it.
async fn next_downlink(t: &mut Terminal, msg_id: u16) -> (Header, Message) {
    support::next_downlink(t, msg_id, WAIT).await
}

/// Polls `f` until it is true.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_guard_the_api_and_leave_health_readiness_and_metrics_open() {
    let dir = tempfile::tempdir().unwrap();
    let vgate = Vgate::start(VgateOptions {
        extra_env: tokens_env(dir.path()),
        ..Default::default()
    });
    let addr = vgate.addr("http");
    for open in ["/healthz", "/readyz", "/metrics"] {
        let a = call(addr, "GET", open, None, None).await;
        assert_eq!(a.status, 200, "{open}: {a:?}");
    }
    // The status page is open too, and told to ask for a token before calling the API.
    let a = call(addr, "GET", "/", None, None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("<body data-auth=\"token\">"));
    let doc = Api::new(&vgate, Some(VIEWER)).await.doc;
    let check = |method: &str, route: &str, a: &Answer| conforms(&doc, method, route, a);

    let a = call(addr, "GET", "/api/v1/vehicles", None, None).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert!(a.json()["error"].as_str().unwrap().contains("token"));
    check("GET", "/api/v1/vehicles", &a);
    let a = call(addr, "GET", "/api/v1/vehicles", Some("not-a-token"), None).await;
    assert_eq!(a.status, 401, "{a:?}");
    let a = call(addr, "GET", "/api/v1/stats", Some(VIEWER), None).await;
    assert_eq!(a.status, 200, "a read-only token reads: {a:?}");
    check("GET", "/api/v1/stats", &a);

    let cmd = r#"{"id":"ro-1","type":"query_location"}"#;
    let writes = [
        (
            "POST",
            "/api/v1/vehicles/{vid}/commands",
            "/api/v1/vehicles/013900000100/commands",
            Some(cmd),
        ),
        (
            "DELETE",
            "/api/v1/vehicles/{vid}/connection",
            "/api/v1/vehicles/013900000100/connection",
            None,
        ),
        (
            "DELETE",
            "/api/v1/vehicles/{vid}/commands/{id}",
            "/api/v1/vehicles/013900000100/commands/ro-1",
            None,
        ),
        ("POST", "/api/v1/reload", "/api/v1/reload", None),
    ];
    for (method, route, path, body) in writes {
        let a = call(addr, method, path, Some(VIEWER), body).await;
        assert_eq!(
            a.status, 403,
            "{method} {path} with a read-only token: {a:?}"
        );
        check(method, route, &a);
        let a = call(addr, method, path, None, body).await;
        assert_eq!(a.status, 401, "{method} {path} without a token: {a:?}");
    }
    // The admin token writes: the command is queued for the (offline) vehicle.
    let a = call(
        addr,
        "POST",
        "/api/v1/vehicles/013900000100/commands",
        Some(ADMIN),
        Some(cmd),
    )
    .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json(), json!({"id": "ro-1", "status": "queued"}));
    // Tokens never reach the log.
    assert!(!vgate.wait_log(ADMIN, Duration::from_millis(300)));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_tokens_the_api_refuses_to_listen_beyond_loopback() {
    let vgate_bin = env!("CARGO_BIN_EXE_vgate");
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(vgate_bin)
        .arg("run")
        .env("VGATE_DATA_DIR", dir.path())
        .env_remove("VGATE_HTTP__TOKENS_FILE")
        .env("VGATE_HTTP_LISTEN", "0.0.0.0:0")
        .env("VGATE_JT808_LISTEN", "off")
        .env("VGATE_GBT32960_LISTEN", "off")
        .env_remove("VGATE_HTTP_TOKEN")
        .output()
        .expect("run vgate");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.listen"), "names the key: {err}");
    assert!(err.contains("VGATE_HTTP_TOKEN"), "says how: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vehicles_are_listed_filtered_and_shown_with_their_counters() {
    let vgate = Vgate::start(VgateOptions::default());
    let api = Api::new(&vgate, None).await;
    let mut t = online_terminal(&vgate, "013900000201").await;
    assert_eq!(t.heartbeat().await.unwrap(), 0);
    let mut g = GbtVehicle::connect(vgate.addr("gbt32960"), "LVGBT000000000201", Edition::V2016)
        .await
        .unwrap();
    g.login().await.unwrap();

    let list = |q: &'static str| {
        let api = &api;
        async move {
            let a = api
                .get("/api/v1/vehicles", &format!("/api/v1/vehicles{q}"))
                .await;
            assert_eq!(a.status, 200, "{a:?}");
            a.json()
        }
    };
    let all = list("").await;
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vehicle_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["013900000201", "LVGBT000000000201"]);
    assert!(all["next_cursor"].is_null());
    let first = &all["items"][0];
    assert_eq!(first["protocol"], "jt808-2013");
    assert_eq!(first["online"], true);
    assert_eq!(first["node"], "test-node");
    assert!(first["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(first["since"].is_string() && first["last_seen"].is_string());

    assert_eq!(
        list("?protocol=gbt32960").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list("?protocol=jt808-2013").await["items"][0]["vehicle_id"],
        "013900000201"
    );
    assert_eq!(
        list("?prefix=LVGB").await["items"][0]["vehicle_id"],
        "LVGBT000000000201"
    );
    assert_eq!(
        list("?online=false").await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let page = list("?limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_cursor"], "013900000201");
    let bad = api
        .get("/api/v1/vehicles", "/api/v1/vehicles?limit=0")
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("limit"));
    let bad = api
        .get("/api/v1/vehicles", "/api/v1/vehicles?online=maybe")
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");

    let one = api
        .get("/api/v1/vehicles/{vid}", "/api/v1/vehicles/013900000201")
        .await;
    assert_eq!(one.status, 200, "{one:?}");
    let one = one.json();
    assert!(
        one["frames_in"].as_u64().unwrap() >= 3,
        "register, authenticate, heartbeat: {one}"
    );
    assert!(
        one["frames_out"].as_u64().unwrap() >= 3,
        "their answers: {one}"
    );
    assert_eq!(one["queued_commands"], 0);
    let none = api
        .get("/api/v1/vehicles/{vid}", "/api/v1/vehicles/013999999999")
        .await;
    assert_eq!(none.status, 404, "{none:?}");
    assert!(none.json()["error"].is_string());

    // Gone offline, it is still known (after its login was remembered).
    t.logout().await.unwrap();
    drop(t);
    eventually("the vehicle shows offline", || async {
        let a = api
            .get("/api/v1/vehicles/{vid}", "/api/v1/vehicles/013900000201")
            .await;
        a.status == 200 && a.json()["online"] == false
    })
    .await;
    let offline = list("?online=false").await;
    assert_eq!(offline["items"][0]["vehicle_id"], "013900000201");
    assert!(offline["items"][0]["frames_in"].is_null());
    assert!(offline["items"][0]["peer"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_walk_more_than_ten_thousand_vehicles_once_each_in_order() {
    // 12,000 vehicles seen before, remembered in the data directory's store, plus one online.
    let dir = tempfile::tempdir().unwrap();
    {
        let q =
            gateway::queue::RedbQueue::open(&dir.path().join("commands.redb"), Default::default())
                .unwrap();
        let seen: Vec<(String, String)> = (0..12_000)
            .map(|i| (format!("01380{i:07}"), "jt808-2013".to_owned()))
            .collect();
        use gateway::queue::CommandQueue;
        q.remember_vehicles(&seen, 1_700_000_000_000).unwrap();
    }
    let vgate = Vgate::start_in(VgateOptions::default(), dir);
    let api = Api::new(&vgate, None).await;
    let _t = online_terminal(&vgate, "013800005000").await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/vehicles?limit=1000&cursor={c}"),
            None => "/api/v1/vehicles?limit=1000".to_owned(),
        };
        let a = api.get("/api/v1/vehicles", &path).await;
        assert_eq!(a.status, 200, "{a:?}");
        let page = a.json();
        pages += 1;
        for v in page["items"].as_array().unwrap() {
            seen.push((
                v["vehicle_id"].as_str().unwrap().to_owned(),
                v["online"].as_bool().unwrap(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 20, "runaway pagination");
    }
    assert_eq!(
        seen.len(),
        12_000,
        "each vehicle once (the online one is a known one)"
    );
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in id order");
    assert_eq!(pages, 12);
    let online: Vec<&String> = seen.iter().filter(|v| v.1).map(|v| &v.0).collect();
    assert_eq!(online, ["013800005000"]);
    // Filters over the whole set: the online one alone, a prefix of 10.
    let a = api
        .get("/api/v1/vehicles", "/api/v1/vehicles?online=true")
        .await;
    assert_eq!(a.json()["items"].as_array().unwrap().len(), 1);
    let a = api
        .get(
            "/api/v1/vehicles",
            "/api/v1/vehicles?prefix=01380001100&limit=1000",
        )
        .await;
    assert_eq!(a.json()["items"].as_array().unwrap().len(), 10);
    assert!(a.json()["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_through_http_reaches_the_terminal_and_its_results_go_to_mqtt() {
    let vgate = Vgate::start(VgateOptions::default());
    let api = Api::new(&vgate, None).await;
    let phone = "013900000301";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/cmd/result")],
    )
    .await;
    let mut t = online_terminal(&vgate, phone).await;
    let route = "/api/v1/vehicles/{vid}/commands";
    let path = format!("/api/v1/vehicles/{phone}/commands");
    let a = api
        .call(
            "POST",
            route,
            &path,
            Some(r#"{"id":"h-1","type":"text","params":{"text":"from the API"}}"#),
        )
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json(), json!({"id": "h-1", "status": "sent"}));
    let (h, m) = next_downlink(&mut t, 0x8300).await;
    t.answer(&h, &m).await.unwrap();
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("acked") {
        let r = sub.next_on("/cmd/result", WAIT).await;
        assert_eq!(r.json["data"]["id"], "h-1");
        statuses.push(r.json["data"]["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["sent", "acked"]);

    // A bad one: 400 naming the field, and `rejected` on MQTT as for a command from MQTT.
    let a = api
        .call(
            "POST",
            route,
            &path,
            Some(r#"{"id":"h-2","type":"text","params":{}}"#),
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    let err = a.json()["error"].as_str().unwrap().to_owned();
    assert!(err.contains("params.text"), "names the field: {err}");
    let r = sub.next_on("/cmd/result", WAIT).await;
    assert_eq!(
        (
            r.json["data"]["id"].as_str(),
            r.json["data"]["status"].as_str()
        ),
        (Some("h-2"), Some("rejected"))
    );
    let a = api.call("POST", route, &path, Some("not json")).await;
    assert_eq!(a.status, 400, "{a:?}");
    let a = api
        .call("POST", route, &path, Some(r#"{"id":"h-3","type":"nope"}"#))
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.json()["error"].as_str().unwrap().contains("type"),
        "{a:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_command_is_listed_in_delivery_order_and_cancelled() {
    let vgate = Vgate::start(VgateOptions::default());
    let api = Api::new(&vgate, None).await;
    let phone = "013900000401";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[&format!("vgate/v1/{phone}/cmd/result")],
    )
    .await;
    let route = "/api/v1/vehicles/{vid}/commands";
    let path = format!("/api/v1/vehicles/{phone}/commands");
    for (id, prio) in [("low", 1), ("high", 8), ("mid", 5)] {
        let body = format!(r#"{{"id":"{id}","type":"query_location","priority":{prio}}}"#);
        let a = api.call("POST", route, &path, Some(&body)).await;
        assert_eq!(a.status, 202, "{a:?}");
        assert_eq!(a.json()["status"], "queued");
        let r = sub.next_on("/cmd/result", WAIT).await;
        assert_eq!(r.json["data"]["status"], "queued");
    }
    let a = api.get(route, &path).await;
    assert_eq!(a.status, 200, "{a:?}");
    let order: Vec<String> = a.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["high", "mid", "low"]);
    assert_eq!(a.json()["items"][0]["type"], "query_location");
    assert_eq!(a.json()["items"][0]["status"], "queued");

    let cancel = "/api/v1/vehicles/{vid}/commands/{id}";
    let a = api
        .call("DELETE", cancel, &format!("{path}/mid"), None)
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    let r = sub.next_on("/cmd/result", WAIT).await;
    assert_eq!(
        (
            r.json["data"]["id"].as_str(),
            r.json["data"]["status"].as_str()
        ),
        (Some("mid"), Some("cancelled"))
    );
    let a = api
        .call("DELETE", cancel, &format!("{path}/mid"), None)
        .await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = api.get(route, &path).await;
    let items = a.json()["items"].clone();
    let left: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["high", "low"]);
    // The vehicle comes online: the cancelled one is not delivered.
    let mut t = online_terminal(&vgate, phone).await;
    for _ in 0..2 {
        let (h, m) = next_downlink(&mut t, 0x8201).await;
        t.answer(&h, &m).await.unwrap();
    }
    let later = sub.drain(Duration::from_secs(2)).await;
    assert!(
        !later.iter().any(|r| r.json["data"]["id"] == "mid"),
        "{later:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kick_closes_as_kicked_keeps_commands_in_flight_queued_and_a_ban_refuses_logins() {
    let vgate = Vgate::start(VgateOptions::default());
    let api = Api::new(&vgate, None).await;
    let phone = "013900000501";
    let mut sub = Subscriber::connect(
        vgate.mqtt_port().unwrap(),
        &[
            &format!("vgate/v1/{phone}/status"),
            &format!("vgate/v1/{phone}/cmd/result"),
            &format!("vgate/v1/{phone}/lifecycle"),
        ],
    )
    .await;
    let mut t = online_terminal(&vgate, phone).await;
    let online = sub.next_on("/status", WAIT).await;
    assert_eq!(online.json["data"]["online"], true);
    let path = format!("/api/v1/vehicles/{phone}/commands");
    let a = api
        .call(
            "POST",
            "/api/v1/vehicles/{vid}/commands",
            &path,
            Some(r#"{"id":"k-1","type":"query_location"}"#),
        )
        .await;
    assert_eq!(a.json()["status"], "sent");
    let _unanswered = next_downlink(&mut t, 0x8201).await;
    let r = sub.next_on("/cmd/result", WAIT).await;
    assert_eq!(r.json["data"]["status"], "sent");
    // In flight: sent, not answered. It cannot be cancelled while its answer may come.
    let a = api.get("/api/v1/vehicles/{vid}/commands", &path).await;
    assert_eq!(a.json()["items"][0]["status"], "sent", "{a:?}");
    let a = api
        .call(
            "DELETE",
            "/api/v1/vehicles/{vid}/commands/{id}",
            &format!("{path}/k-1"),
            None,
        )
        .await;
    assert_eq!(a.status, 409, "{a:?}");

    let kick = "/api/v1/vehicles/{vid}/connection";
    let a = api
        .call(
            "DELETE",
            kick,
            &format!("/api/v1/vehicles/{phone}/connection?ban_s=2"),
            None,
        )
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    assert!(t.closed_within(WAIT).await, "the connection is closed");
    let offline = sub.next_on("/status", WAIT).await;
    assert_eq!(offline.json["data"]["online"], false);
    assert_eq!(offline.json["data"]["reason"], "kicked");
    let a = api
        .call(
            "DELETE",
            kick,
            &format!("/api/v1/vehicles/{phone}/connection"),
            None,
        )
        .await;
    assert_eq!(a.status, 404, "not connected any more: {a:?}");
    // The command in flight went back to the queue.
    let a = api.get("/api/v1/vehicles/{vid}/commands", &path).await;
    assert_eq!(a.json()["items"][0]["id"], "k-1", "{a:?}");
    let a = api
        .get(
            "/api/v1/vehicles/{vid}",
            &format!("/api/v1/vehicles/{phone}"),
        )
        .await;
    assert_eq!(a.json()["queued_commands"], 1);

    // Banned for 2 s: a login is refused.
    let mut banned = Terminal::connect(vgate.addr("jt808"), phone, Version::V2013)
        .await
        .unwrap();
    let reply = banned.register().await.unwrap();
    assert_ne!(reply.result, 0, "refused while banned: {reply:?}");
    let rejected = sub.next_on("/lifecycle", WAIT).await;
    assert_eq!(rejected.json["data"]["event"], "rejected");
    assert_eq!(rejected.json["data"]["reason"], "banned");
    drop(banned);

    // After the ban: it logs in again and gets its command again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut t = online_terminal(&vgate, phone).await;
    let (h, m) = next_downlink(&mut t, 0x8201).await;
    t.answer(&h, &m).await.unwrap();
    loop {
        let r = sub.next_on("/cmd/result", WAIT).await;
        if r.json["data"]["status"] == "acked" {
            assert_eq!(r.json["data"]["id"], "k-1");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_readiness_and_reload_through_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some("log = \"info\"\n".into()),
        ..Default::default()
    });
    let api = Api::new(&vgate, None).await;
    let a = api.get("/readyz", "/readyz").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["ready"], true);
    assert_eq!(a.json()["broker"]["connected"], true);
    assert!(a.json()["listeners"]["jt808"].is_string());

    let _t = online_terminal(&vgate, "013900000601").await;
    let a = api.get("/api/v1/stats", "/api/v1/stats").await;
    assert_eq!(a.status, 200, "{a:?}");
    let s = a.json();
    assert_eq!(s["node"], "test-node");
    assert_eq!(s["vehicles_online"], 1);
    assert_eq!(s["connections"]["jt808"], 1, "{s}");
    assert_eq!(s["connections"]["gbt32960"], 0, "{s}");
    assert_eq!(s["broker"]["connected"], true);
    assert!(s["spool_bytes"].is_u64());
    assert_eq!(s["queued_commands"], 0);
    // The process, from /proc/self: the terminal's connection is one of the descriptors.
    let p = &s["process"];
    assert!(
        p["resident_memory_bytes"].as_u64().unwrap() > 1 << 20,
        "{s}"
    );
    assert!(p["open_fds"].as_u64().unwrap() >= 5, "{s}");
    assert!(p["threads"].as_u64().unwrap() >= 2, "{s}");
    assert!(p["cpu_seconds"].as_f64().unwrap() > 0.0, "{s}");

    // Reload: the API's tokens change live (`VGATE_LOG` is set by the harness, so the file's
    // `log` is overridden here); a key that cannot change is refused by name, changing nothing.
    let file = vgate.data_dir.path().join("vgate.toml");
    let tokens = vgate.data_dir.path().join("tokens");
    std::fs::write(&tokens, format!("{ADMIN}\nro:{VIEWER}\n")).unwrap();
    let with_tokens = format!(
        "log = \"info\"\n[http]\ntokens_file = {:?}\n",
        tokens.display().to_string()
    );
    std::fs::write(&file, &with_tokens).unwrap();
    let a = api
        .call("POST", "/api/v1/reload", "/api/v1/reload", None)
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["changed"], json!(["http.tokens_file"]));
    let addr = vgate.addr("http");
    let a = call(addr, "GET", "/api/v1/stats", None, None).await;
    assert_eq!(a.status, 401, "tokens in force: {a:?}");
    let a = call(addr, "GET", "/api/v1/stats", Some(VIEWER), None).await;
    assert_eq!(a.status, 200, "{a:?}");
    std::fs::write(&file, format!("topic_prefix = \"other\"\n{with_tokens}")).unwrap();
    let a = call(addr, "POST", "/api/v1/reload", Some(ADMIN), None).await;
    assert_eq!(a.status, 400, "{a:?}");
    conforms(&api.doc, "POST", "/api/v1/reload", &a);
    assert!(
        a.json()["error"].as_str().unwrap().contains("topic_prefix"),
        "{a:?}"
    );
    std::fs::write(&tokens, "# nobody\n").unwrap();
    std::fs::write(&file, &with_tokens).unwrap();
    let a = call(addr, "POST", "/api/v1/reload", Some(ADMIN), None).await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("http.tokens_file"),
        "{a:?}"
    );
    let a = call(addr, "GET", "/api/v1/stats", Some(ADMIN), None).await;
    assert_eq!(a.status, 200, "the refused reload changed nothing: {a:?}");
    // The same file with other tokens: read again, the old admin token is gone.
    std::fs::write(&tokens, format!("{ADMIN}-2\nro:{VIEWER}\n")).unwrap();
    let a = call(addr, "POST", "/api/v1/reload", Some(ADMIN), None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["changed"], json!(["http.tokens_file"]));
    let a = call(addr, "GET", "/api/v1/stats", Some(ADMIN), None).await;
    assert_eq!(a.status, 401, "{a:?}");
    std::fs::write(&tokens, format!("{ADMIN}\nro:{VIEWER}\n")).unwrap();
    let a = call(
        addr,
        "POST",
        "/api/v1/reload",
        Some(&format!("{ADMIN}-2")),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let api = Api {
        addr,
        token: Some(ADMIN),
        doc: api.doc,
    };

    // Broker gone: still ready while the spool takes the publishes, and says so.
    m.kill();
    eventually("the broker shows disconnected", || async {
        let a = api.get("/readyz", "/readyz").await;
        a.json()["broker"]["connected"] == false
    })
    .await;
    let a = api.get("/readyz", "/readyz").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["broker"]["spool_accepting"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_methods_answer_json_errors() {
    let vgate = Vgate::start(VgateOptions::default());
    let addr = vgate.addr("http");
    let a = call(addr, "GET", "/api/v1/nothing", None, None).await;
    assert_eq!(a.status, 404);
    assert!(a.json()["error"].is_string());
    let a = call(addr, "PUT", "/api/v1/vehicles", None, None).await;
    assert_eq!(a.status, 405);
    assert!(a.json()["error"].is_string());
    let a = call(addr, "GET", "/healthz", None, None).await;
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_check_refuses_answers_that_break_the_document() {
    let vgate = Vgate::start(VgateOptions::default());
    let doc = Api::new(&vgate, None).await.doc;
    let answer = |status: u16, body: &str| Answer {
        status,
        body: body.to_owned(),
    };
    let route = "/api/v1/vehicles";
    let breaks = |a: Answer| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            conforms(&doc, "GET", route, &a)
        }))
        .is_err()
    };
    assert!(!breaks(answer(
        200,
        r#"{"items": [], "next_cursor": null}"#
    )));
    assert!(breaks(answer(
        200,
        r#"{"items": "none", "next_cursor": null}"#
    )));
    assert!(
        breaks(answer(200, r#"{"next_cursor": null}"#)),
        "items required"
    );
    assert!(breaks(answer(
        200,
        r#"{"items": [{"vehicle_id": 7, "online": true}], "next_cursor": null}"#
    )));
    assert!(breaks(answer(418, "{}")), "an undocumented status");
    assert!(
        breaks(answer(400, r#"{"message": "x"}"#)),
        "errors carry `error`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_with_the_reason_when_the_broker_is_gone_and_the_spool_full() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some("[mqtt.spool]\nmax_bytes = 64\n".into()),
        ..Default::default()
    });
    let api = Api::new(&vgate, None).await;
    let mut t = online_terminal(&vgate, "013900000701").await;
    assert_eq!(api.get("/readyz", "/readyz").await.status, 200);
    m.kill();
    eventually("the broker shows disconnected", || async {
        api.get("/readyz", "/readyz").await.json()["broker"]["connected"] == false
    })
    .await;
    // A report while the broker is away goes to the spool, which is then over its 64 bytes.
    let report = tokio::spawn(async move {
        let _ = t.report(&gateway::simulate::jt808::Fix::default()).await;
        t
    });
    eventually("readyz says not ready", || async {
        api.get("/readyz", "/readyz").await.status == 503
    })
    .await;
    let a = api.get("/readyz", "/readyz").await;
    let body = a.json();
    assert_eq!(body["ready"], false);
    assert_eq!(body["broker"]["spool_accepting"], false);
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("not connected"), "{reason}");
    report.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_is_served_from_the_binary_without_external_assets() {
    let vgate = Vgate::start(VgateOptions::default());
    let a = call(vgate.addr("http"), "GET", "/", None, None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.starts_with("<!doctype html>"));
    for used in [
        "/api/v1/stats",
        "/api/v1/vehicles",
        "/connection",
        "/commands",
    ] {
        assert!(a.body.contains(used), "the page uses {used}");
    }
    for external in ["http://", "https://", "src=\"//", "href=\"//"] {
        assert!(!a.body.contains(external), "no external asset: {external}");
    }
    // Told that the API wants no token here (loopback, none configured); the vehicle view
    // asks for the track and recent events.
    assert!(a.body.contains("<body data-auth=\"open\">"));
    assert!(a.body.contains("/recent"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_records_a_vehicles_frames_both_ways_from_its_next_login() {
    let vgate = Vgate::start(VgateOptions::default());
    let api = Api::new(&vgate, None).await;
    let phone = "013900000801";
    // Started before the vehicle connects.
    let a = api
        .call(
            "POST",
            "/api/v1/traces",
            "/api/v1/traces",
            Some(&format!(r#"{{"vehicle_id":"{phone}","duration_s":60}}"#)),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.json()["trace_id"].as_str().unwrap().to_owned();
    let mut t = online_terminal(&vgate, phone).await;
    assert_eq!(t.heartbeat().await.unwrap(), 0);
    let _other = online_terminal(&vgate, "013900000802").await;
    let route = "/api/v1/traces/{trace_id}";
    let path = format!("/api/v1/traces/{id}");
    let a = api.get(route, &path).await;
    assert_eq!(a.status, 200, "{a:?}");
    let lines: Vec<Value> = a
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summaries: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["direction"].as_str().unwrap(),
                l["summary"].as_str().unwrap()
            )
        })
        .collect();
    let has = |what: &str| summaries.iter().any(|s| s.starts_with(what));
    // From the login (authentication, which names the vehicle) on, in order: the
    // registration before it is not the vehicle's yet on this connection.
    assert!(summaries.len() >= 4, "{summaries:?}");
    assert!(summaries[0].starts_with("in jt808 0x0102"), "{summaries:?}");
    assert!(
        summaries[1].starts_with("out jt808 0x8001"),
        "{summaries:?}"
    );
    assert!(has("in jt808 0x0002"), "the heartbeat: {summaries:?}");
    assert!(!has("in jt808 0x0100"), "{summaries:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["hex"].as_str().unwrap().starts_with("7e")),
        "wire bytes: {lines:?}"
    );
    assert!(
        !a.body.contains("013900000802"),
        "another vehicle's frames are not in it"
    );

    let a = api.get(route, "/api/v1/traces/nope").await;
    assert_eq!(a.status, 404, "{a:?}");
    for bad in [
        r#"{"vehicle_id":"bad.id","duration_s":5}"#,
        r#"{"vehicle_id":"x","duration_s":0}"#,
        r#"{"vehicle_id":"x"}"#,
    ] {
        let a = api
            .call("POST", "/api/v1/traces", "/api/v1/traces", Some(bad))
            .await;
        assert_eq!(a.status, 400, "{bad}: {a:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watched_vehicle_keeps_its_events_and_track_from_the_first_ask_on() {
    let vgate = Vgate::start(VgateOptions::default());
    let api = Api::new(&vgate, None).await;
    let route = "/api/v1/vehicles/{vid}/recent";
    let path = "/api/v1/vehicles/013900000801/recent";
    let mut t = online_terminal(&vgate, "013900000801").await;
    // Nothing is kept before the first ask: the login's events are not there.
    let a = api.get(route, path).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["events"], json!([]));
    assert_eq!(a.json()["track"], json!([]));
    for i in 0..3 {
        let fix = gateway::simulate::jt808::Fix {
            latitude: 39.9 + f64::from(i) * 0.01,
            longitude: 116.4,
            speed_kmh: 30.0,
            ..Default::default()
        };
        assert_eq!(t.report(&fix).await.unwrap(), 0);
    }
    let a = api.get(route, path).await;
    assert_eq!(a.status, 200, "{a:?}");
    let r = a.json();
    let track = r["track"].as_array().unwrap();
    assert_eq!(track.len(), 3, "{r}");
    assert!(
        (track[0]["latitude"].as_f64().unwrap() - 39.9).abs() < 1e-6,
        "oldest first"
    );
    assert!((track[2]["latitude"].as_f64().unwrap() - 39.92).abs() < 1e-6);
    let events = r["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{r}");
    assert_eq!(events[0]["type"], "location");
    assert_eq!(events[0]["vehicle_id"], "013900000801");
    // The kick's offline status is kept too, newest first.
    let a = api
        .call(
            "DELETE",
            "/api/v1/vehicles/{vid}/connection",
            "/api/v1/vehicles/013900000801/connection",
            None,
        )
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    eventually("the offline status is kept", || async {
        let r = api.get(route, path).await.json();
        r["events"][0]["type"] == "status" && r["events"][0]["data"]["reason"] == "kicked"
    })
    .await;
    let a = api
        .get(route, "/api/v1/vehicles/not%20an%20id/recent")
        .await;
    assert_eq!(a.status, 400, "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_named_in_the_config_start_at_start_up_and_on_reload_and_sighup() {
    let trace = |v: &str| format!("[[traces]]\nvehicle_id = \"{v}\"\nduration_s = 60\n");
    let vgate = Vgate::start(VgateOptions {
        config_toml: Some(trace("013900000811")),
        ..Default::default()
    });
    let api = Api::new(&vgate, None).await;
    let listed = || async {
        let a = api.get("/api/v1/traces", "/api/v1/traces").await;
        assert_eq!(a.status, 200, "{a:?}");
        a.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["vehicle_id"].as_str().unwrap().to_owned(),
                    t["trace_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let first = listed().await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, "013900000811");
    // The vehicle was not connected at start-up: its frames are recorded from its login.
    let mut t = online_terminal(&vgate, "013900000811").await;
    assert_eq!(t.heartbeat().await.unwrap(), 0);
    let a = api
        .get(
            "/api/v1/traces/{trace_id}",
            &format!("/api/v1/traces/{}", first[0].1),
        )
        .await;
    assert!(a.body.contains("jt808 0x0102"), "{a:?}");
    assert!(a.body.contains("jt808 0x0002"), "{a:?}");

    // A reload that adds an entry starts that one only, and says so.
    let file = vgate.data_dir.path().join("vgate.toml");
    std::fs::write(&file, trace("013900000811") + &trace("013900000812")).unwrap();
    let a = api
        .call("POST", "/api/v1/reload", "/api/v1/reload", None)
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["changed"], json!(["traces"]));
    let second = listed().await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(second[1].0, "013900000812");
    // SIGHUP does the same reload.
    std::fs::write(
        &file,
        trace("013900000811") + &trace("013900000812") + &trace("013900000813"),
    )
    .unwrap();
    let pid = vgate.child.as_ref().unwrap().id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    eventually("SIGHUP starts the third trace", || async {
        listed().await.iter().any(|(v, _)| v == "013900000813")
    })
    .await;
    // A bad entry is refused by its key, nothing started.
    std::fs::write(&file, trace("bad id")).unwrap();
    let a = api
        .call("POST", "/api/v1/reload", "/api/v1/reload", None)
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("traces[0].vehicle_id"),
        "{a:?}"
    );
    assert_eq!(listed().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn qos_per_type_and_frame_rate_limits_change_on_reload() {
    let Some(m) = Mosquitto::start() else { return };
    let vgate = Vgate::start(VgateOptions {
        mqtt_url: Some(m.url()),
        config_toml: Some("[jt808]\nmax_frames_per_s = 0\n".into()),
        ..Default::default()
    });
    let api = Api::new(&vgate, None).await;
    let phone = "013900000777";
    let mut sub = Subscriber::connect(m.port, &[&format!("vgate/v1/{phone}/location")]).await;
    let mut t = online_terminal(&vgate, phone).await;
    let fix = gateway::simulate::jt808::Fix::default();
    assert_eq!(t.report(&fix).await.expect("report"), 0);
    let p = sub.next().await;
    assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce, "QoS 1 by default");

    std::fs::write(
        vgate.data_dir.path().join("vgate.toml"),
        "[mqtt.qos]\nlocation = 0\n\n[jt808]\nmax_frames_per_s = 5\n",
    )
    .unwrap();
    let a = api
        .call("POST", "/api/v1/reload", "/api/v1/reload", None)
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let changed = a.json()["changed"].clone();
    assert_eq!(
        changed,
        json!(["jt808.max_frames_per_s", "mqtt.qos.location"]),
        "{a:?}"
    );
    // The same connection: its locations now go out at QoS 0...
    assert_eq!(t.report(&fix).await.expect("report"), 0);
    let p = sub.next().await;
    assert_eq!(p.qos, rumqttc::QoS::AtMostOnce, "QoS 0 after the reload");
    // ...and past a burst of 10 its frames are read at 5 a second.
    for _ in 0..15 {
        assert_eq!(t.heartbeat().await.expect("heartbeat"), 0);
    }
    let metrics = call(vgate.addr("http"), "GET", "/metrics", None, None).await;
    let limited = metrics
        .body
        .lines()
        .find(|l| l.starts_with("vgate_rate_limited_total{") && l.contains("jt808"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(limited >= 1.0, "the new limit holds the connection back");
}
