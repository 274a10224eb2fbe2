//! The packaged artefacts in `deploy/` against the real binary: the dashboard and alert rules
//! name only metrics vgate exports, the alert rules pass promtool and their unit tests, the
//! systemd unit verifies and is sandboxed, the Dockerfile's and compose files' settings are a
//! configuration vgate accepts, and the container's start-up (environment variables only, a
//! read-only root, state on the data volume) works, run here without a container engine: no
//! Docker daemon runs on this machine or in CI, so the binary is started the way the image
//! starts it, in a mount namespace whose root file system is read-only but for the data
//! directory.
//!
//! Tools (promtool, systemd-analyze, unshare) missing: the test fails under CI (`.ci/run`
//! installs them) and is skipped otherwise, with a note.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{skip_note, Vgate, VgateOptions};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Whether `tool` runs here; under CI its absence fails the test.
fn have(tool: &str, test: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI (.ci/run installs it)"
        );
        skip_note(&format!("{test} skipped: {tool} not found"));
    }
    ok
}

/// One HTTP/1.0 GET: status and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, "")
}

/// One HTTP/1.0 request (a write with the token `t0ken` and a JSON body): status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let token = (method != "GET").then_some("t0ken");
    let body = (!body.is_empty()).then_some(("application/json", body.as_bytes()));
    support::http_blocking(addr, method, path, token, body)
}

/// The metric names the code records (`counter!("name"`, `gauge!(...)`, `histogram!(...)`).
fn names_in_code() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![repo().join("gateway/src"), repo().join("mqtt-bridge/src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("source dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("source");
            for mac in ["counter!(", "gauge!(", "histogram!("] {
                for (i, _) in text.match_indices(mac) {
                    let rest = text[i + mac.len()..].trim_start();
                    if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                        out.insert(name.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// The `vgate_*` and `process_*` names in a PromQL text (a `_bucket` of a histogram is the
/// histogram's name).
fn names_in_promql(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if at_word_start && (expr[i..].starts_with("vgate_") || expr[i..].starts_with("process_")) {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            let name = &expr[i..end];
            let name = name.strip_suffix("_bucket").unwrap_or(name);
            out.insert(name.to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Every `expr` of the dashboard's panels and variables.
fn dashboard_exprs(dash: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(dash, &mut out);
    out
}

fn alert_rules() -> Vec<serde_yaml::Value> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/prometheus/alerts.yml")).expect("alerts.yml is YAML");
    doc["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_and_alert_rules_name_only_metrics_vgate_exports() {
    let code = names_in_code();
    assert!(code.contains("vgate_events_total") && code.contains("process_open_fds"));
    // Each has its HELP text (gateway/src/metrics.rs describes them all).
    let metrics_rs = read("gateway/src/metrics.rs");
    let described: BTreeSet<&str> = metrics_rs
        .split("describe_")
        .skip(1)
        .filter_map(|call| call.split('"').nth(1))
        .collect();
    let undescribed: Vec<&String> = code
        .iter()
        .filter(|n| !described.contains(n.as_str()))
        .collect();
    assert!(undescribed.is_empty(), "not described: {undescribed:?}");

    let dash: Value =
        serde_json::from_str(&read("deploy/grafana/vgate.json")).expect("the dashboard is JSON");
    let mut ids = BTreeSet::new();
    let panels = dash["panels"].as_array().expect("panels");
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "panel ids are unique"
        );
        if p["type"] != "row" {
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "panel {} has a query", p["title"]);
        }
    }
    let mut used = BTreeSet::new();
    for e in dashboard_exprs(&dash) {
        used.extend(names_in_promql(&e));
    }
    let rules = alert_rules();
    assert!(rules.len() >= 10, "{} rules", rules.len());
    for r in &rules {
        let expr = r["expr"].as_str().expect("expr");
        used.extend(names_in_promql(expr));
        assert!(r["alert"].as_str().is_some_and(|a| a.starts_with("Vgate")));
        assert!(["critical", "warning"].contains(&r["labels"]["severity"].as_str().unwrap_or("")));
    }
    // The issue's alerts: broker down, spool growing, queue growing, bad frames, refused logins.
    for name in [
        "vgate_mqtt_connected",
        "vgate_spool_bytes",
        "vgate_command_queue_depth",
        "vgate_decode_errors_total",
        "vgate_login_refusals_total",
    ] {
        assert!(used.contains(name), "no alert or panel uses {name}");
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !code.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "named in deploy/ but recorded nowhere in the code: {unknown:?}"
    );

    // A running vgate with a vehicle online exports the process metrics, the build info and
    // the gauges the dashboard's first row shows.
    let vgate = Vgate::start(VgateOptions::default());
    let _t =
        support::online_terminal(vgate.addr("jt808"), "013900000901", jt808::Version::V2013).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let must = [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
        "process_start_time_seconds",
        "vgate_build_info",
        "vgate_vehicles_online",
        "vgate_connections_open",
        "vgate_events_total",
        "vgate_mqtt_connected",
        "vgate_frames_in_total",
        "vgate_logins_total",
    ];
    loop {
        let (status, text) = http_get(vgate.addr("http"), "/metrics");
        assert_eq!(status, 200);
        let missing: Vec<&&str> = must
            .iter()
            .filter(|m| !text.lines().any(|l| l.starts_with(**m)))
            .collect();
        if missing.is_empty() {
            let version = format!(
                "vgate_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            );
            assert!(text.contains(&version), "{version} in\n{text}");
            promtool_lints_pass(&text);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not scraped: {missing:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `promtool check metrics` on a scrape: nothing to say but the one known exception,
/// `process_cpu_seconds_total` being a gauge (see `gateway/src/process.rs`).
fn promtool_lints_pass(scrape: &str) {
    if !have("promtool", "promtool check metrics") {
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("process_cpu_seconds_total non-counter metrics should not have"))
        .collect();
    assert!(
        problems.is_empty(),
        "promtool check metrics:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    if !have(
        "promtool",
        "the_alert_rules_pass_promtool_and_their_unit_tests",
    ) {
        return;
    }
    let dir = repo().join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["check", "config", "prometheus.yml"],
        vec!["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    let unit = read("deploy/vgate.service");
    for line in [
        "ExecStart=/usr/local/bin/vgate run --config /etc/vgate/vgate.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "StateDirectory=vgate",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RestartPreventExitStatus=2",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}");
    }
    let nofile: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .and_then(|v| v.parse().ok())
        .expect("LimitNOFILE");
    assert!(nofile >= 100_000);
    if !have(
        "systemd-analyze",
        "the_systemd_unit_verifies_and_is_sandboxed",
    ) {
        return;
    }
    // The unit as installed, with the binary it names where this build put it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vgate.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/vgate", env!("CARGO_BIN_EXE_vgate")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "verify: {said}"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for vgate.service: "))
        .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        exposure <= 2.0,
        "exposure {exposure} (0 best, 10 worst):\n{text}"
    );
}

/// `KEY=value` pairs of the Dockerfile's `ENV` instruction.
fn dockerfile_env(dockerfile: &str) -> Vec<(String, String)> {
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with("ENV "))
        .expect("an ENV instruction");
    line["ENV ".len()..]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Runs `vgate config --check` on an empty file with exactly `env`: its exit status and words.
fn config_check(env: &[(String, String)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.toml");
    std::fs::write(&file, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vgate"))
        .args(["config", "--check"])
        .arg(&file)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("vgate config --check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_dockerfile_and_compose_files_are_a_configuration_vgate_accepts() {
    let docker = read("deploy/Dockerfile");
    let env = dockerfile_env(&docker);
    let get = |k: &str| {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("ENV {k}"))
    };
    let data = get("VGATE_DATA_DIR");
    assert!(
        docker.contains(&format!("VOLUME [\"{data}\"]")),
        "the data dir is the volume"
    );
    assert!(docker.contains("USER vgate:vgate"), "not root");
    assert!(docker.contains("/healthz"), "HEALTHCHECK on /healthz");
    let mut ports = Vec::new();
    for key in [
        "VGATE_JT808_LISTEN",
        "VGATE_GBT32960_LISTEN",
        "VGATE_HTTP_LISTEN",
    ] {
        let port = get(key).rsplit_once(':').expect("host:port").1.to_owned();
        ports.push(port);
    }
    let expose = docker
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    assert_eq!(expose.split_whitespace().collect::<Vec<_>>(), ports);
    assert!(docker.contains(&format!("/dev/tcp/127.0.0.1/{}", ports[2])));
    // Every COPY from the build context names something in the repository.
    for line in docker
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let src = line.split_whitespace().nth(1).expect("source");
        assert!(repo().join(src).exists(), "{line}");
    }
    // The image's environment without a token is refused (the API would be open beyond
    // loopback); with one it is a valid configuration.
    let (ok, said) = config_check(&env);
    assert!(!ok && said.contains("VGATE_HTTP_TOKEN"), "{said}");
    let mut with_token = env.clone();
    with_token.push(("VGATE_HTTP_TOKEN".into(), "t0ken".into()));
    let (ok, said) = config_check(&with_token);
    assert!(ok, "{said}");

    for file in ["deploy/compose.yml", "deploy/compose.emqx.yml"] {
        let mut doc: serde_yaml::Value = serde_yaml::from_str(&read(file)).expect("YAML");
        doc.apply_merge().expect("merge keys (<<)");
        let services = doc["services"].as_mapping().expect("services");
        let mut vgates = 0;
        for (name, s) in services {
            let name = name.as_str().expect("name");
            for v in s["volumes"].as_sequence().into_iter().flatten() {
                let v = v.as_str().expect("a short volume");
                if let Some(local) = v.strip_prefix("./") {
                    let local = local.split(':').next().unwrap();
                    assert!(
                        repo().join("deploy").join(local).exists(),
                        "{file} {name}: {v}"
                    );
                }
            }
            if s["build"]["dockerfile"].as_str() != Some("deploy/Dockerfile") {
                continue;
            }
            vgates += 1;
            assert_eq!(s["read_only"].as_bool(), Some(true), "{file} {name}");
            let volumes: Vec<&str> = s["volumes"]
                .as_sequence()
                .expect("volumes")
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            assert!(
                volumes.iter().any(|v| v.ends_with(&format!(":{data}"))),
                "{file} {name}: a volume on {data}"
            );
            for p in s["ports"].as_sequence().expect("ports") {
                let inside = p.as_str().unwrap().rsplit(':').next().unwrap().to_owned();
                assert!(ports.contains(&inside), "{file} {name}: port {inside}");
            }
            // The image's environment with the service's, `${VAR:?..}` given a value.
            let mut all = env.clone();
            for (k, v) in s["environment"].as_mapping().expect("environment") {
                let v = v.as_str().expect("a string value");
                let v = if v.starts_with("${") { "t0ken" } else { v };
                all.retain(|(key, _)| key != k.as_str().unwrap());
                all.push((k.as_str().unwrap().to_owned(), v.to_owned()));
            }
            let (ok, said) = config_check(&all);
            assert!(ok, "{file} {name}: {said}");
        }
        assert!(vgates >= 1, "{file} runs vgate");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_container_start_up_runs_with_env_vars_only_on_a_read_only_root() {
    let test = "the_container_start_up_runs_with_env_vars_only_on_a_read_only_root";
    if !cfg!(target_os = "linux") || !have("unshare", test) {
        return;
    }
    // A private mount namespace whose root file system is read-only and where only the data
    // directory (a mount of its own) is writable, as in `docker run --read-only -v
    // data:/var/lib/vgate`. Per-mount flags do not propagate: the machine's root stays as is.
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind /tmp /tmp")
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: unshare --mount must work"
        );
        skip_note(&format!("{test} skipped: no mount namespace (not root)"));
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let docker = read("deploy/Dockerfile");
    let mut env = dockerfile_env(&docker);
    // Port 0: tests run side by side; the image's interfaces (0.0.0.0) are kept.
    for (k, v) in env.iter_mut() {
        if k.ends_with("_LISTEN") {
            *v = "0.0.0.0:0".into();
        }
        if k == "VGATE_DATA_DIR" {
            *v = data.path().display().to_string();
        }
    }
    env.push(("VGATE_HTTP_TOKEN".into(), "t0ken".into()));
    env.push(("VGATE_NODE_ID".into(), "container".into()));
    let broker = support::free_port();
    env.push((
        "VGATE_EMBEDDED_MQTT_LISTEN".into(),
        format!("127.0.0.1:{broker}"),
    ));
    let script = format!(
        "set -e; mount --bind {data} {data}; mount -o remount,bind,ro /; \
         touch {cwd}/probe 2>/dev/null && exit 97; cd {cwd}; exec {bin} run",
        cwd = cwd.path().display(),
        data = data.path().display(),
        bin = env!("CARGO_BIN_EXE_vgate"),
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut addrs = std::collections::BTreeMap::new();
    while addrs.len() < 4 {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "listeners announced: {addrs:?}, exit {:?}",
                    child.try_wait()
                )
            });
        if let Some(rest) = line.strip_prefix("listening ") {
            let (name, addr) = rest.split_once(' ').unwrap();
            let addr: SocketAddr = addr.parse().unwrap();
            addrs.insert(
                name.to_owned(),
                SocketAddr::from(([127, 0, 0, 1], addr.port())),
            );
        }
    }
    let api = addrs["http"];
    // The image's HEALTHCHECK command, as written, on this vgate's port.
    let health = docker
        .lines()
        .find_map(|l| l.trim().strip_prefix("CMD [\"bash\", \"-c\", \""))
        .and_then(|l| l.strip_suffix("\"]"))
        .expect("the HEALTHCHECK command")
        .replace("\\\\", "\\")
        .replace("/9808", &format!("/{}", api.port()));
    let ok = Command::new("bash").args(["-c", &health]).status().unwrap();
    assert!(ok.success(), "the health check fails: {health}");

    // A trace is started, a vehicle logs in and reports, a command waits for another: all
    // of it lands in the data dir.
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/traces",
        r#"{"vehicle_id": "013900000902", "duration_s": 60}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(
        api,
        "POST",
        "/api/v1/vehicles/013900000903/commands",
        r#"{"id": "c-1", "type": "query_location"}"#,
    );
    assert_eq!(status, 202, "{body}");
    let mut t =
        support::online_terminal(addrs["jt808"], "013900000902", jt808::Version::V2013).await;
    t.report(&Default::default()).await.expect("report");
    let (status, body) = http_get(api, "/readyz");
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(api, "/api/v1/stats");
    assert_eq!(status, 401, "the API wants the token");
    drop(t);

    let pid = child.id().to_string();
    // `unshare` execs sh, which execs vgate: the child is vgate itself.
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "vgate did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status:?}");
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "nothing written beside the data dir: {left:?}"
    );
    for stored in ["commands.redb", "spool", "traces"] {
        assert!(
            data.path().join(stored).exists(),
            "{stored} in the data dir"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_fields_at_the_top_level() {
    let mut vgate = Vgate::start(VgateOptions {
        extra_env: vec![("VGATE_LOG_FORMAT".into(), "json".into())],
        ..Default::default()
    });
    let t =
        support::online_terminal(vgate.addr("jt808"), "013900000904", jt808::Version::V2013).await;
    drop(t);
    assert!(vgate.terminate().success());
    let lines = vgate.remaining_log();
    assert!(lines.len() >= 5, "{lines:?}");
    let objects: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for o in &objects {
        for key in ["timestamp", "level", "target"] {
            assert!(o[key].is_string(), "{key} in {o}");
        }
    }
    // A tracing event's fields are top-level keys, its message is `message`.
    let auth = objects
        .iter()
        .find(|o| o["message"] == "auth decision" && o["action"] == "authenticate")
        .unwrap_or_else(|| panic!("the authentication's line in {lines:?}"));
    assert_eq!(auth["vehicle_id"], "013900000904");
    assert_eq!(auth["level"], "INFO");
    assert!(objects.iter().any(|o| o["message"] == "stopped"));
    // The registration's auth code is redacted as in the text format.
    let register = objects
        .iter()
        .find(|o| o["message"] == "auth decision" && o["action"] == "register")
        .expect("the registration's line");
    let code = register["auth_code"].as_str().expect("auth_code");
    assert!(code.contains("<redacted"), "{register}");
}
