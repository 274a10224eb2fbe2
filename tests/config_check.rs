//! Black-box tests of configuration checking (contract §1: exit 2 on bad configuration,
//! errors naming the key and the file): `vgate config --check FILE` refuses exactly what
//! `vgate run --config FILE` refuses, with the same message, and `run` refuses it before it
//! listens on anything.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long `vgate run` may take to refuse (or to start, which fails the test).
const LIMIT: Duration = Duration::from_secs(30);

fn base(cmd: &mut Command, data_dir: &Path) {
    cmd.env("VGATE_JT808_LISTEN", "127.0.0.1:0")
        .env("VGATE_GBT32960_LISTEN", "127.0.0.1:0")
        .env("VGATE_HTTP_LISTEN", "127.0.0.1:0")
        .env("VGATE_EMBEDDED_MQTT_LISTEN", "127.0.0.1:0")
        .env("VGATE_DATA_DIR", data_dir)
        .env("VGATE_NODE_ID", "config-test")
        .env_remove("VGATE_MQTT_URL")
        .env_remove("VGATE_LOG")
        .env_remove("VGATE_TOPIC_PREFIX");
}

fn check(file: &Path, env: &[(&str, &str)], data_dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgate"));
    cmd.arg("config").arg("--check").arg(file);
    base(&mut cmd, data_dir);
    cmd.envs(env.iter().copied());
    cmd.output().expect("run vgate config --check")
}

/// `vgate run` with `args`: its exit code and stderr once it exits. Panics if it announces a
/// listener first (it started, or bound something, before refusing the configuration).
fn run_refused(args: &[&str], env: &[(&str, &str)], data_dir: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgate"));
    cmd.arg("run").args(args);
    base(&mut cmd, data_dir);
    cmd.envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn vgate run");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Any line before the end of stdout (the process exiting) fails the test.
    match rx.recv_timeout(LIMIT) {
        Err(mpsc::RecvTimeoutError::Disconnected) => {}
        got => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vgate run printed {got:?} instead of refusing its configuration");
        }
    }
    let status = child.wait().expect("wait");
    (status.code(), err.join().expect("stderr"))
}

/// The error line: `vgate: ...`.
fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("vgate: "))
        .unwrap_or_else(|| panic!("no `vgate: ` error line in {stderr:?}"))
        .to_owned()
}

/// Both commands refuse `toml` (written to a file named `name`) with exit 2 and one same
/// message naming the file and `key`.
fn refused_by_both(name: &str, toml: &str, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, toml).unwrap();
    let data = dir.path().join("data");

    let out = check(&file, &[], &data);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "config --check of {toml:?}: stdout {:?} stderr {err:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let checked = error_line(&err);
    assert!(
        checked.contains(&file.display().to_string()) && checked.contains(key),
        "names the file and {key}: {checked}"
    );

    let (code, err) = run_refused(&["--config", file.to_str().unwrap()], &[], &data);
    assert_eq!(code, Some(2), "run with {toml:?}: {err}");
    assert_eq!(error_line(&err), checked, "run refuses it the same way");
    assert!(!data.exists(), "nothing created before refusing");
}

#[test]
fn mqtt_connections_0_and_17_are_refused() {
    refused_by_both("c0.toml", "[mqtt]\nconnections = 0\n", "mqtt.connections");
    refused_by_both("c17.toml", "[mqtt]\nconnections = 17\n", "mqtt.connections");
}

#[test]
fn a_broker_url_that_is_not_mqtt_is_refused() {
    refused_by_both(
        "url.toml",
        "[mqtt]\nurl = \"http://broker.example.com:1883\"\n",
        "mqtt.url",
    );
}

#[test]
fn mqtts_without_a_ca_file_or_with_a_missing_one_is_refused() {
    refused_by_both(
        "tls.toml",
        "[mqtt]\nurl = \"mqtts://broker.example.com:8883\"\n",
        "mqtt.tls.ca_file",
    );
    refused_by_both(
        "tls-missing.toml",
        "[mqtt]\nurl = \"mqtts://broker.example.com:8883\"\n[mqtt.tls]\nca_file = \"/nonexistent/vgate-ca.pem\"\n",
        "mqtt.tls.ca_file",
    );
}

#[test]
fn a_missing_allowlist_file_is_refused() {
    refused_by_both(
        "allow.toml",
        "[jt808.auth]\nmode = \"allowlist\"\nallowlist_file = \"/nonexistent/vgate-allow.txt\"\n",
        "jt808.auth.allowlist_file",
    );
}

#[test]
fn an_invalid_log_filter_is_refused() {
    refused_by_both("log.toml", "log = \"gateway=loud\"\n", "log");
}

#[test]
fn an_https_hook_url_is_refused() {
    refused_by_both(
        "hook.toml",
        "[gbt32960.auth]\nmode = \"http\"\n[gbt32960.auth.http]\nurl = \"https://tsp.example.com/auth\"\n",
        "gbt32960.auth.http.url",
    );
}

#[test]
fn a_raw_listener_s_missing_allowlist_is_refused() {
    refused_by_both(
        "raw.toml",
        r#"[[raw]]
name = "fleet"
listen = "127.0.0.1:0"
framing = { type = "delimited", delimiter = "\n" }
identity = { mode = "first_frame", encoding = "ascii" }
auth = { mode = "allowlist", allowlist_file = "/nonexistent/vgate-raw-allow.txt" }
"#,
        "raw[0].auth.allowlist_file",
    );
}

#[test]
fn a_value_from_the_environment_names_its_variable_as_well() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vgate.toml");
    std::fs::write(&file, "node_id = \"n1\"\n").unwrap();
    let data = dir.path().join("data");
    for (var, value, key) in [
        ("VGATE_LOG", "gateway=loud", "log"),
        ("VGATE_MQTT_URL", "ftp://broker.example.com", "mqtt.url"),
    ] {
        let out = check(&file, &[(var, value)], &data);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let checked = error_line(&String::from_utf8_lossy(&out.stderr));
        for part in [file.display().to_string().as_str(), key, var] {
            assert!(checked.contains(part), "names {part}: {checked}");
        }
        let (code, err) = run_refused(&[], &[(var, value)], &data);
        assert_eq!(code, Some(2), "{err}");
        let line = error_line(&err);
        assert!(
            line.contains(key) && line.contains(var) && line.contains("no config file"),
            "{line}"
        );
    }
}

/// The general rule (`VGATE_` + the key path, `__` between levels) reaches every key, and its
/// errors name the variable as the contract's variables do: `config --check` and `run` alike.
#[test]
fn a_bad_value_in_a_key_path_variable_names_the_variable_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vgate.toml");
    std::fs::write(&file, "[mqtt]\nconnections = 2\n").unwrap();
    let data = dir.path().join("data");
    let missing = dir.path().join("no-secret").display().to_string();
    for (var, value, key) in [
        ("VGATE_MQTT__CONNECTIONS", "0", "mqtt.connections"),
        ("VGATE_MQTT__CONNECTIONS", "abc", "mqtt.connections"),
        (
            "VGATE_MQTT__PASSWORD_FILE",
            missing.as_str(),
            "mqtt.password_file",
        ),
        ("VGATE_MQTT__PASWORD", "typo", "mqtt.pasword"),
    ] {
        let env = [(var, value), ("VGATE_MQTT__USERNAME", "u")];
        let out = check(&file, &env, &data);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
        let checked = error_line(&err);
        let named = format!("{key} (set by environment variable {var})");
        for part in [file.display().to_string().as_str(), named.as_str()] {
            assert!(
                checked.contains(part),
                "{var}={value}: names {part}: {checked}"
            );
        }
        let (code, err) = run_refused(&["--config", file.to_str().unwrap()], &env, &data);
        assert_eq!(code, Some(2), "run with {var}={value}: {err}");
        assert_eq!(error_line(&err), checked, "run refuses it the same way");
        assert!(!data.exists(), "nothing created before refusing");
    }
}

/// A key refused because of another key's value names the variable that set that one.
#[test]
fn a_key_required_by_a_variable_s_value_names_that_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vgate.toml");
    std::fs::write(&file, "node_id = \"n1\"\n").unwrap();
    let out = check(
        &file,
        &[("VGATE_JT808__AUTH__MODE", "allowlist")],
        &dir.path().join("data"),
    );
    assert_eq!(out.status.code(), Some(2));
    let checked = error_line(&String::from_utf8_lossy(&out.stderr));
    for part in [
        file.display().to_string().as_str(),
        "jt808.auth.allowlist_file",
        "jt808.auth.mode set by environment variable VGATE_JT808__AUTH__MODE",
    ] {
        assert!(checked.contains(part), "names {part}: {checked}");
    }
}

/// Variables of other tools that share the prefix (scripts' `VGATE_BIN`, bench.sh's
/// `VGATE_CONFIG`) are not keys and are ignored; key-path variables over a valid file are ok.
#[test]
fn other_vgate_variables_are_ignored_and_key_paths_apply() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "[mqtt]\nconnections = 17\n").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let out = check(
        &file,
        &[
            ("VGATE_BIN", "target/debug/vgate"),
            ("VGATE_CONFIG", "bench.toml"),
            ("VGATE_FOO__BAR", "1"),
            ("VGATE_MQTT__CONNECTIONS", "16"),
            ("VGATE_MQTT__USERNAME", "vgate"),
            ("VGATE_MQTT__PASSWORD_FILE", secret.to_str().unwrap()),
            ("VGATE_COMMANDS__DEFAULT_TTL_S", "60"),
        ],
        &dir.path().join("data"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_valid_file_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.toml");
    std::fs::write(
        &file,
        "log = \"info,gateway=debug\"\n[mqtt]\nconnections = 16\n",
    )
    .unwrap();
    let out = check(&file, &[], &dir.path().join("data"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}: ok", file.display())
    );
}

#[test]
fn a_vehicle_listener_tls_file_missing_or_not_pem_is_refused_naming_key_and_file() {
    refused_by_both(
        "listener-tls-missing.toml",
        "[jt808.tls]\ncert_file = \"/nonexistent/vgate-server.pem\"\nkey_file = \"/nonexistent/vgate-server.key\"\n",
        "jt808.tls.cert_file: /nonexistent/vgate-server.pem",
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not PEM\n").unwrap();
    let junk = junk.display().to_string();
    refused_by_both(
        "listener-tls-junk.toml",
        &format!(
            "[[gbt32960.listeners]]\nname = \"ev\"\nlisten = \"127.0.0.1:0\"\n\
             tls = {{ cert_file = {junk:?}, key_file = {junk:?} }}\n"
        ),
        &format!("gbt32960.listeners[0].tls.cert_file: {junk}"),
    );
    refused_by_both(
        "certificate-mode.toml",
        "[jt808.auth]\nmode = \"certificate\"\n",
        "jt808.auth.mode",
    );
}
