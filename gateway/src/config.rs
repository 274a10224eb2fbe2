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

impl Config {
    /// Reads a file (or the defaults when `None`), then applies the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str::<Config>(&text)
                    .map_err(|e| anyhow!("config file {}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
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

    /// Checks what serde cannot: values that parse but make no sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.topic_prefix.is_empty() || self.topic_prefix.contains(['+', '#']) {
            return Err(anyhow!(
                "topic_prefix {:?}: must be non-empty and hold no MQTT wildcard",
                self.topic_prefix
            ));
        }
        for (key, tz) in [
            ("jt808.device_tz", &self.jt808.device_tz),
            ("gbt32960.device_tz", &self.gbt32960.device_tz),
        ] {
            if crate::decode::parse_utc_offset(tz).is_none() {
                return Err(anyhow!("{key} {tz:?}: expected +HH:MM"));
            }
        }
        for (key, auth) in [
            ("jt808.auth", &self.jt808.auth),
            ("gbt32960.auth", &self.gbt32960.auth),
        ] {
            if auth.mode == AuthMode::Allowlist && auth.allowlist_file.is_none() {
                return Err(anyhow!(
                    "{key}.allowlist_file: required when {key}.mode = \"allowlist\""
                ));
            }
            if auth.mode == AuthMode::Http && auth.http.url.is_empty() {
                return Err(anyhow!(
                    "{key}.http.url: required when {key}.mode = \"http\""
                ));
            }
        }
        if self.commands.default_priority > codecs::command::MAX_PRIORITY {
            return Err(anyhow!("commands.default_priority: 0..9"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.raw.iter().enumerate() {
            if r.name.is_empty()
                || !r
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(anyhow!(
                    "raw[{i}].name {:?}: letters, digits, - and _ only",
                    r.name
                ));
            }
            if ["jt808", "gbt32960", "http", "mqtt"].contains(&r.name.as_str())
                || !names.insert(r.name.clone())
            {
                return Err(anyhow!(
                    "raw[{i}].name {:?}: already used by another listener",
                    r.name
                ));
            }
            r.spec()
                .validate()
                .map_err(|e| anyhow!("raw[{i}] ({}).{}: {e}", r.name, e.field()))?;
            if r.auth.mode == AuthMode::Allowlist && r.auth.allowlist_file.is_none() {
                return Err(anyhow!(
                    "raw[{i}].auth.allowlist_file: required when mode = \"allowlist\""
                ));
            }
        }
        if self.commands.window == 0 {
            return Err(anyhow!("commands.window: at least 1"));
        }
        if self.jt808.max_frame_len < 64 {
            return Err(anyhow!("jt808.max_frame_len: at least 64"));
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

    #[test]
    fn bad_listen_in_environment_names_the_variable() {
        let mut c = Config::default();
        let e = c
            .apply_env(|k| (k == "VGATE_HTTP_LISTEN").then(|| "nowhere".into()))
            .unwrap_err();
        assert!(e.to_string().contains("VGATE_HTTP_LISTEN"));
    }
}
