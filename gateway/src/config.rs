//! The configuration file (TOML) and its environment overrides (contract §1).
//!
//! Every setting has a documented default, so `vgate run` needs no file. The default file
//! is embedded (`default_config.toml`) and printed by `vgate config`; a test checks that it
//! parses to exactly [`Config::default`], so the documentation cannot drift. Unknown keys
//! are errors that name the key and the file (`#[serde(deny_unknown_fields)]`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Deserializer, Serialize};

use crate::cli::ConfigArgs;
use crate::Failure;

/// The documented default configuration file.
pub const DEFAULT_TOML: &str = include_str!("default_config.toml");

/// A listen address or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

impl Listen {
    /// Parses `off` or `HOST:PORT`.
    pub fn parse(s: &str) -> Result<Listen, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        s.parse::<SocketAddr>()
            .map(Listen::On)
            .map_err(|_| format!("{s:?} is neither `off` nor an address like 0.0.0.0:6808"))
    }

    /// The address, unless the listener is off.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::On(a) => Some(*a),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Listen::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn listen(s: &str) -> Listen {
    Listen::parse(s).unwrap_or(Listen::Off)
}

/// Who may connect on a listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Any terminal may register and log in (quick start; a warning is logged at start-up).
    #[default]
    Open,
    /// Only ids listed in `allowlist_file` (reloaded when it changes).
    Allowlist,
    /// Decisions asked of `http.url`.
    Http,
}

/// The HTTP authentication hook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpAuthConfig {
    /// The URL that receives `POST {"action": "register"|"authenticate"|"login", ...}`.
    pub url: String,
    pub timeout_ms: u64,
    pub retries: u32,
}

impl Default for HttpAuthConfig {
    fn default() -> Self {
        HttpAuthConfig {
            url: String::new(),
            timeout_ms: 2000,
            retries: 2,
        }
    }
}

/// Authentication of one listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// One id per line (`phone` or `VIN`), optionally `id,auth_code`; `#` comments.
    pub allowlist_file: Option<PathBuf>,
    pub http: HttpAuthConfig,
}

/// What to do with frames that arrive before the vehicle has authenticated / logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BeforeLogin {
    /// Drop them (JT/T 808: answered 0x8001 with result 1 "failure").
    #[default]
    Ignore,
    /// Close the connection.
    Close,
}

/// Checksum handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// Refuse frames with a wrong checksum (counted).
    #[default]
    Strict,
    /// Accept them (counted), for fleets whose firmware gets it wrong.
    Lenient,
}

/// When a vehicle's frame is acknowledged (JT/T 808 0x8001, GB/T 32960 answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AckWhen {
    /// Once the frame's events are durable: acknowledged by the broker or in the disk spool.
    /// A vehicle never deletes data vgate could still lose.
    #[default]
    Durable,
    /// As soon as the events are queued for the broker (lower latency; a crash can lose what
    /// was queued).
    Queued,
}

/// The JT/T 808 listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jt808Config {
    pub listen: Listen,
    pub auth: AuthConfig,
    pub checksum: ChecksumMode,
    pub max_frame_len: usize,
    pub before_auth: BeforeLogin,
    /// Seconds a connection may stay without authenticating.
    pub login_timeout_s: u64,
    /// The terminals' heartbeat period (parameter 0x0001), seconds.
    pub heartbeat_s: u64,
    /// Idle seconds after login before the connection is closed; 0 = 3 x heartbeat_s.
    pub idle_timeout_s: u64,
    /// The terminals' clock zone, `+08:00` by the standard.
    pub device_tz: String,
    /// Seconds without a new package before 0x8003 asks for the missing ones.
    pub subpackage_quiet_s: u64,
    /// Seconds after which an incomplete subpackaged message is dropped.
    pub subpackage_timeout_s: u64,
    /// Bytes of incomplete subpackaged messages one connection may hold (the memory bound of
    /// reassembly); a package beyond it is refused and counted.
    pub subpackage_max_bytes: usize,
    /// Bad frames tolerated on one connection before it is closed.
    pub max_bad_frames: u32,
    /// Frames per second one connection may send before its reading is slowed; 0 = no limit.
    pub max_frames_per_s: f64,
    /// When a frame is acknowledged to the vehicle.
    pub ack_when: AckWhen,
}

impl Default for Jt808Config {
    fn default() -> Self {
        Jt808Config {
            listen: listen("0.0.0.0:6808"),
            auth: AuthConfig::default(),
            checksum: ChecksumMode::Strict,
            max_frame_len: 4096,
            before_auth: BeforeLogin::Ignore,
            login_timeout_s: 30,
            heartbeat_s: 60,
            idle_timeout_s: 0,
            device_tz: "+08:00".to_owned(),
            subpackage_quiet_s: 5,
            subpackage_timeout_s: 60,
            subpackage_max_bytes: 256 * 1024,
            max_bad_frames: 20,
            max_frames_per_s: 500.0,
            ack_when: AckWhen::Durable,
        }
    }
}

/// How GB/T 32960 replies are shaped (the standard's text and appendix disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStyle {
    /// Change the flag, keep only the time (2016 §6.3.2, 2025).
    #[default]
    TimeOnly,
    /// Change the flag and the time, echo the rest (2016 appendix B.3.3.2; EMQX).
    Echo,
}

/// Credentials a platform (0x05 platform login) must present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformUser {
    pub user: String,
    pub password: String,
}

/// The GB/T 32960 listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gbt32960Config {
    pub listen: Listen,
    pub auth: AuthConfig,
    pub max_frame_len: usize,
    pub before_login: BeforeLogin,
    pub login_timeout_s: u64,
    /// The vehicles' heartbeat period (parameter 0x09), seconds.
    pub heartbeat_s: u64,
    /// Idle seconds after login before the connection is closed; 0 = 3 x heartbeat_s.
    pub idle_timeout_s: u64,
    pub device_tz: String,
    /// Answer a malformed real-time/reissue frame with an error flag.
    pub reply_on_error: bool,
    pub reply_style: ReplyStyle,
    /// Platforms allowed to log in with 0x05; empty = platform login refused.
    pub platform_users: Vec<PlatformUser>,
    pub max_bad_frames: u32,
    /// Frames per second one connection may send before its reading is slowed; 0 = no limit.
    pub max_frames_per_s: f64,
    /// When a frame is acknowledged to the vehicle.
    pub ack_when: AckWhen,
}

impl Default for Gbt32960Config {
    fn default() -> Self {
        Gbt32960Config {
            listen: listen("0.0.0.0:32960"),
            auth: AuthConfig::default(),
            max_frame_len: 65536 + 25,
            before_login: BeforeLogin::Ignore,
            login_timeout_s: 30,
            heartbeat_s: 30,
            idle_timeout_s: 0,
            device_tz: "+08:00".to_owned(),
            reply_on_error: true,
            reply_style: ReplyStyle::TimeOnly,
            platform_users: Vec::new(),
            max_bad_frames: 20,
            max_frames_per_s: 500.0,
            ack_when: AckWhen::Durable,
        }
    }
}

/// Admin and metrics HTTP.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: Listen,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: listen("127.0.0.1:9808"),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's name in events and topics; empty = the host name.
    pub node_id: String,
    pub topic_prefix: String,
    pub data_dir: PathBuf,
    pub log: String,
    /// Runtime worker threads; 0 = one per core, less one when the broker runs on this
    /// machine ([`Config::runtime_workers`]).
    pub worker_threads: usize,
    pub http: HttpConfig,
    /// The broker: external (`url`) or the embedded one (default).
    pub mqtt: mqtt_bridge::MqttConfig,
    pub jt808: Jt808Config,
    pub gbt32960: Gbt32960Config,
    /// Downstream commands and the offline queue.
    pub commands: crate::commands::CommandsConfig,
    /// Raw TCP listeners (`[[raw]]`, docs/raw-tcp.md); none by default.
    pub raw: Vec<crate::session::raw::RawListenerConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: String::new(),
            topic_prefix: "vgate".to_owned(),
            data_dir: PathBuf::from("./vgate-data"),
            log: "info".to_owned(),
            worker_threads: 0,
            http: HttpConfig::default(),
            mqtt: mqtt_bridge::MqttConfig::default(),
            jt808: Jt808Config::default(),
            gbt32960: Gbt32960Config::default(),
            commands: crate::commands::CommandsConfig::default(),
            raw: Vec::new(),
        }
    }
}

/// A configuration value that cannot be used: its key (`mqtt.connections`, `raw[0].framing`,
/// `log`...) and why. [`Config::load`] adds where the value came from (the file, or the
/// environment variable that overrode it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The key, as written in the file (`[section] key` as `section.key`).
    pub key: String,
    /// What is wrong with its value.
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The contract's environment variables and the keys they override.
const ENV_KEYS: &[(&str, &str)] = &[
    ("VGATE_JT808_LISTEN", "jt808.listen"),
    ("VGATE_GBT32960_LISTEN", "gbt32960.listen"),
    ("VGATE_HTTP_LISTEN", "http.listen"),
    ("VGATE_MQTT_URL", "mqtt.url"),
    ("VGATE_EMBEDDED_MQTT_LISTEN", "mqtt.embedded_listen"),
    ("VGATE_DATA_DIR", "data_dir"),
    ("VGATE_NODE_ID", "node_id"),
    ("VGATE_TOPIC_PREFIX", "topic_prefix"),
    ("VGATE_LOG", "log"),
];

/// Checks a log filter (`log`, `VGATE_LOG`) with the logging setup's own check
/// ([`crate::logging::check_filter`]), so `config --check` refuses what `run` would.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    crate::logging::check_filter(filter).map_err(|e| {
        format!("{filter:?} is not a log filter like \"info\" or \"info,gateway=debug\": {e}")
    })
}

impl Config {
    /// Reads a file (or the defaults when `None`), applies the environment, then
    /// [`Config::check`]s the result: `vgate run` and `vgate config --check` both load
    /// through here, so a file one accepts the other accepts. Errors name the file (or say
    /// there is none) and the key, and the environment variable when one set the value.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let source = match path {
            Some(p) => format!("config file {}", p.display()),
            None => "configuration (no config file)".to_owned(),
        };
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str::<Config>(&text).map_err(|e| anyhow!("{source}: {e}"))?
            }
            None => Config::default(),
        };
        let env = |k: &str| std::env::var(k).ok();
        cfg.apply_env(env)
            .map_err(|e| anyhow!("{source}, overridden by the environment: {e:#}"))?;
        cfg.check().map_err(|e| {
            let var = ENV_KEYS
                .iter()
                .find(|(var, key)| *key == e.key && std::env::var_os(var).is_some())
                .map(|(var, _)| *var);
            match var {
                Some(var) => anyhow!(
                    "{source}: {} (set by environment variable {var}): {}",
                    e.key,
                    e.reason
                ),
                None => anyhow!("{source}: {e}"),
            }
        })?;
        Ok(cfg)
    }

    /// Applies the contract's `VGATE_*` environment variables (they override the file).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let addr = |key: &str, v: String| {
            Listen::parse(&v).map_err(|e| anyhow!("environment variable {key}: {e}"))
        };
        if let Some(v) = get("VGATE_JT808_LISTEN") {
            self.jt808.listen = addr("VGATE_JT808_LISTEN", v)?;
        }
        if let Some(v) = get("VGATE_GBT32960_LISTEN") {
            self.gbt32960.listen = addr("VGATE_GBT32960_LISTEN", v)?;
        }
        if let Some(v) = get("VGATE_HTTP_LISTEN") {
            self.http.listen = addr("VGATE_HTTP_LISTEN", v)?;
        }
        if let Some(v) = get("VGATE_MQTT_URL") {
            self.mqtt.url = (!v.trim().is_empty()).then_some(v);
        }
        if let Some(v) = get("VGATE_EMBEDDED_MQTT_LISTEN") {
            self.mqtt.embedded_listen = v
                .parse()
                .map_err(|_| anyhow!("environment variable VGATE_EMBEDDED_MQTT_LISTEN: {v:?} is not an address like 127.0.0.1:1883"))?;
        }
        if let Some(v) = get("VGATE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("VGATE_NODE_ID") {
            self.node_id = v;
        }
        if let Some(v) = get("VGATE_TOPIC_PREFIX") {
            self.topic_prefix = v;
        }
        if let Some(v) = get("VGATE_LOG") {
            self.log = v;
        }
        Ok(())
    }

    /// Every check `vgate run` makes before it binds anything, and nothing that needs the
    /// network: values that parse but make no sense, the log filter, the MQTT settings
    /// ([`mqtt_bridge::MqttConfig::validate`]: URL, TLS files, connections...), each
    /// listener's authentication (the allowlist file readable and valid, the hook URL one
    /// the hook client can use) and the raw listeners. The first problem found is returned.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.topic_prefix.is_empty() || self.topic_prefix.contains(['+', '#']) {
            return Err(ConfigError::new(
                "topic_prefix",
                format!(
                    "{:?}: must be non-empty and hold no MQTT wildcard",
                    self.topic_prefix
                ),
            ));
        }
        check_log_filter(&self.log).map_err(|e| ConfigError::new("log", e))?;
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::new(
                "data_dir",
                format!("{} exists and is not a directory", self.data_dir.display()),
            ));
        }
        for (key, tz) in [
            ("jt808.device_tz", &self.jt808.device_tz),
            ("gbt32960.device_tz", &self.gbt32960.device_tz),
        ] {
            if crate::decode::parse_utc_offset(tz).is_none() {
                return Err(ConfigError::new(key, format!("{tz:?}: expected +HH:MM")));
            }
        }
        check_auth("jt808.auth", &self.jt808.auth)?;
        check_auth("gbt32960.auth", &self.gbt32960.auth)?;
        self.mqtt.validate().map_err(|e| match e {
            mqtt_bridge::BridgeError::Config { key, reason } => ConfigError::new(key, reason),
            mqtt_bridge::BridgeError::File { key, path, reason } => {
                ConfigError::new(key, format!("cannot read {path}: {reason}"))
            }
            other => ConfigError::new("mqtt", other.to_string()),
        })?;
        if self.commands.default_priority > codecs::command::MAX_PRIORITY {
            return Err(ConfigError::new("commands.default_priority", "0..9"));
        }
        if self.commands.window == 0 {
            return Err(ConfigError::new("commands.window", "at least 1"));
        }
        if self.jt808.max_frame_len < 64 {
            return Err(ConfigError::new("jt808.max_frame_len", "at least 64"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.raw.iter().enumerate() {
            if r.name.is_empty()
                || !r
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::new(
                    format!("raw[{i}].name"),
                    format!("{:?}: letters, digits, - and _ only", r.name),
                ));
            }
            if ["jt808", "gbt32960", "http", "mqtt"].contains(&r.name.as_str())
                || !names.insert(r.name.clone())
            {
                return Err(ConfigError::new(
                    format!("raw[{i}].name"),
                    format!("{:?}: already used by another listener", r.name),
                ));
            }
            r.spec().validate().map_err(|e| {
                ConfigError::new(
                    format!("raw[{i}].{}", e.field()),
                    format!("({}) {e}", r.name),
                )
            })?;
            check_auth(&format!("raw[{i}].auth"), &r.auth)?;
        }
        Ok(())
    }

    /// This node's id, topic-safe.
    pub fn node_id(&self) -> String {
        if self.node_id.is_empty() {
            crate::node::default_node_id()
        } else {
            crate::node::sanitize(&self.node_id)
        }
    }

    /// The runtime's worker threads on a machine with `cores` cores: `worker_threads` when
    /// set; otherwise one per core, less one for the broker when it runs on this machine
    /// (the embedded broker, or a loopback URL) and there are several cores. `None`: tokio's
    /// own default (one per core, or `TOKIO_WORKER_THREADS`, which `env_override` says is
    /// set and then wins over the broker rule).
    ///
    /// Why the broker rule: end to end, a gateway is as fast as its broker, and a broker on
    /// the same cores loses them to a gateway worker that has nothing better to do than steal
    /// and park (2 cores shared with Mosquitto: 1 worker moved 85-98% of the direct rate, 2
    /// workers 75-77%; docs/PERFORMANCE.md).
    pub fn runtime_workers(&self, cores: usize, env_override: bool) -> Option<usize> {
        if self.worker_threads > 0 {
            return Some(self.worker_threads);
        }
        if env_override || cores <= 1 || !self.broker_is_local() {
            return None;
        }
        Some(cores - 1)
    }

    /// Whether the broker runs on this machine ([`mqtt_bridge::MqttConfig::broker_is_local`]).
    pub fn broker_is_local(&self) -> bool {
        self.mqtt.broker_is_local()
    }
}

/// One listener's `auth` (`key` is its prefix, e.g. `jt808.auth`): what the listener's
/// authenticator would refuse at start.
fn check_auth(key: &str, auth: &AuthConfig) -> Result<(), ConfigError> {
    match auth.mode {
        AuthMode::Open => Ok(()),
        AuthMode::Allowlist => {
            let file = format!("{key}.allowlist_file");
            let path = auth.allowlist_file.as_deref().ok_or_else(|| {
                ConfigError::new(&file, format!("required when {key}.mode = \"allowlist\""))
            })?;
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(&file, format!("cannot read {}: {e}", path.display()))
            })?;
            crate::auth::allowlist::Entries::parse(path, &text)
                .map(drop)
                .map_err(|e| ConfigError::new(&file, e.to_string()))
        }
        AuthMode::Http => {
            let url = format!("{key}.http.url");
            if auth.http.url.is_empty() {
                return Err(ConfigError::new(
                    &url,
                    format!("required when {key}.mode = \"http\""),
                ));
            }
            crate::auth::http::parse_url(&auth.http.url)
                .map(drop)
                .map_err(|e| match e {
                    crate::auth::http::HookConfigError::BadUrl { url: u, reason } => {
                        ConfigError::new(&url, format!("{u:?}: {reason}"))
                    }
                })
        }
    }
}

/// `vgate config [--check FILE]`.
pub fn print_default(args: ConfigArgs) -> Result<(), Failure> {
    match args.check {
        Some(path) => {
            Config::load(Some(&path)).map_err(Failure::Usage)?;
            println!("{}: ok", path.display());
        }
        None => print!("{DEFAULT_TOML}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_file_is_exactly_the_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn workers_leave_a_core_to_a_broker_on_this_machine() {
        // Which URLs are local: mqtt_bridge's config tests.
        let with_url = |url: Option<&str>| Config {
            mqtt: mqtt_bridge::MqttConfig {
                url: url.map(str::to_owned),
                ..Default::default()
            },
            ..Config::default()
        };
        for local in [
            None,
            Some("mqtt://127.0.0.1:1883"),
            Some("mqtt://[::1]:1883"),
        ] {
            let c = with_url(local);
            assert!(c.broker_is_local(), "{local:?}");
            assert_eq!(c.runtime_workers(2, false), Some(1), "{local:?}");
            assert_eq!(c.runtime_workers(8, false), Some(7), "{local:?}");
            assert_eq!(c.runtime_workers(1, false), None, "{local:?}");
            assert_eq!(c.runtime_workers(8, true), None, "{local:?}: the env wins");
        }
        for remote in ["mqtt://10.0.0.5:1883", "mqtts://broker.example.com:8883"] {
            let c = with_url(Some(remote));
            assert!(!c.broker_is_local(), "{remote}");
            assert_eq!(c.runtime_workers(8, false), None, "{remote}");
        }
        let set = Config {
            worker_threads: 3,
            ..Config::default()
        };
        assert_eq!(
            set.runtime_workers(8, true),
            Some(3),
            "the key wins over everything"
        );
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = toml::from_str::<Config>("[jt808]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
    }

    #[test]
    fn environment_overrides_the_file_and_off_disables() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "VGATE_JT808_LISTEN" => Some("off".into()),
            "VGATE_GBT32960_LISTEN" => Some("127.0.0.1:0".into()),
            "VGATE_TOPIC_PREFIX" => Some("fleet".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.jt808.listen, Listen::Off);
        assert_eq!(c.gbt32960.listen.addr().unwrap().port(), 0);
        assert_eq!(c.topic_prefix, "fleet");
    }

    fn key_refused(toml_text: &str) -> String {
        let c: Config = toml::from_str(toml_text).unwrap();
        c.check().unwrap_err().key
    }

    #[test]
    fn check_refuses_what_run_would_refuse_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.txt").display().to_string();
        for (text, key) in [
            ("[mqtt]\nconnections = 0\n", "mqtt.connections"),
            ("[mqtt]\nconnections = 17\n", "mqtt.connections"),
            ("[mqtt]\nurl = \"http://broker:1883\"\n", "mqtt.url"),
            ("[mqtt]\nurl = \"mqtts://broker\"\n", "mqtt.tls.ca_file"),
            (
                &format!("[mqtt]\nurl = \"mqtts://broker\"\n[mqtt.tls]\nca_file = {missing:?}\n"),
                "mqtt.tls.ca_file",
            ),
            ("log = \"gateway=loud\"\n", "log"),
            (
                &format!("[jt808.auth]\nmode = \"allowlist\"\nallowlist_file = {missing:?}\n"),
                "jt808.auth.allowlist_file",
            ),
            (
                "[gbt32960.auth]\nmode = \"http\"\nhttp.url = \"https://tsp.example/auth\"\n",
                "gbt32960.auth.http.url",
            ),
            (
                "[gbt32960.auth]\nmode = \"http\"\n",
                "gbt32960.auth.http.url",
            ),
            ("[jt808]\ndevice_tz = \"CST\"\n", "jt808.device_tz"),
            ("topic_prefix = \"a/#\"\n", "topic_prefix"),
        ] {
            assert_eq!(key_refused(text), key, "{text}");
        }
    }

    #[test]
    fn check_reads_the_allowlist_as_the_listener_would() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("allow.txt");
        let cfg = format!(
            "[jt808.auth]\nmode = \"allowlist\"\nallowlist_file = {:?}\n",
            list.display().to_string()
        );
        std::fs::write(&list, "013800138000\nnot an id!\n").unwrap();
        let c: Config = toml::from_str(&cfg).unwrap();
        let e = c.check().unwrap_err();
        assert_eq!(e.key, "jt808.auth.allowlist_file");
        assert!(e.reason.contains("line 2"), "{e}");
        std::fs::write(&list, "013800138000\n").unwrap();
        c.check().unwrap();
    }

    #[test]
    fn the_defaults_and_a_plain_http_hook_pass_the_check() {
        Config::default().check().unwrap();
        let c: Config = toml::from_str(
            "log = \"info,gateway=debug\"\n[jt808.auth]\nmode = \"http\"\nhttp.url = \"http://127.0.0.1:8080/auth\"\n",
        )
        .unwrap();
        c.check().unwrap();
    }

    #[test]
    fn bad_listen_in_environment_names_the_variable() {
        let mut c = Config::default();
        let e = c
            .apply_env(|k| (k == "VGATE_HTTP_LISTEN").then(|| "nowhere".into()))
            .unwrap_err();
        assert!(e.to_string().contains("VGATE_HTTP_LISTEN"));
    }
}
