//! The configuration file (TOML) and its environment overrides (contract §1).
//!
//! Every setting has a documented default, so `vgate run` needs no file. The default file
//! is embedded (`default_config.toml`) and printed by `vgate config`; a test checks that it
//! parses to exactly [`Config::default`], so the documentation cannot drift. Unknown keys
//! in the file are errors that name the key and the file (`#[serde(deny_unknown_fields)]`).
//!
//! Layers, lowest first ([`Config::load_with`]): the defaults, the file, the environment.
//! Every key can be set as `VGATE_` + its path in upper case with `__` between table levels
//! ([`env_key`]: `VGATE_MQTT__PASSWORD` is `[mqtt] password`, `VGATE_JT808__AUTH__MODE` is
//! `[jt808.auth] mode`); numbers and booleans are read from the string when the key wants
//! one, arrays and tables are written as TOML (`VGATE_GBT32960__PLATFORM_USERS='[{user =
//! "a", password = "b"}]'`). The contract's variables ([`CONTRACT_ENV`]:
//! `VGATE_MQTT_URL`...) set their keys as before and win over the general rule. A variable
//! whose top-level name is no key (`VGATE_BIN`, `VGATE_CONFIG`: scripts share the prefix)
//! is ignored; an unknown key inside a known table (`VGATE_MQTT__PASWORD`) is an error.
//! `mqtt.password_file` (or `VGATE_MQTT__PASSWORD_FILE`) names a file whose first line is
//! the broker password.
//!
//! The layering is figment's rather than the `config` crate's: figment tags every value
//! with the provider it came from, and each environment variable is its own provider here,
//! so an error names the variable that set the bad value (`mqtt.connections (set by
//! environment variable VGATE_MQTT__CONNECTIONS)`), and `config`'s errors do not say which
//! source a value came from. figment reads the environment of the process only, so the
//! variables are handed in as a list ([`Config::load_with`]; the tests pass their own). The
//! file itself is first read strictly with `toml` and `serde_path_to_error`, whose errors
//! give the key path and the line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Deserializer, Serialize};

use crate::cli::ConfigArgs;
use crate::Failure;

/// The documented default configuration file.
pub const DEFAULT_TOML: &str = include_str!("default_config.toml");

/// A listen address or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Written as it is read (`off` or the address), so that a listener table can be
/// re-read from its serialized form ([`Config::vehicle_listeners`]).
impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Listen::Off => s.serialize_str("off"),
            Listen::On(a) => s.collect_str(a),
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

pub use crate::auth::config::{AuthConfig, AuthMode, HttpAuthConfig};
pub use crate::tls::{TlsConfig, TlsIdentity, TlsVersion};

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

/// A vehicle listener's table with the front-door keys every protocol shares (CONTRACT
/// section 5: `tls`, `max_connections`, `proxy_protocol`, `reuse_port`, and the
/// failed-login cap), appended to the protocol's own keys. A macro, not a
/// `#[serde(flatten)]` struct: flattening does not work with `deny_unknown_fields`.
macro_rules! listener_config {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($fields)*
            /// TLS on this listener (contract §5, docs/security.md); none: plain TCP.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub tls: Option<TlsConfig>,
            /// Connections open at once (refused beyond, counted); 0: no limit.
            #[serde(default)]
            pub max_connections: usize,
            /// Connections open at once from one source address (refused beyond,
            /// counted); 0: no limit (vehicles behind a carrier's NAT share addresses).
            #[serde(default)]
            pub max_connections_per_address: usize,
            /// Expect a PROXY protocol v1/v2 header (from a load balancer) before
            /// anything else.
            #[serde(default)]
            pub proxy_protocol: bool,
            /// SO_REUSEPORT: several vgate processes on one host may share the port.
            #[serde(default)]
            pub reuse_port: bool,
            /// Failed logins from one address within `failed_login_window_s` before the
            /// address is refused for `failed_login_ban_s` (counted); 0: no cap.
            #[serde(default = "default_max_failed_logins")]
            pub max_failed_logins: u32,
            #[serde(default = "default_failed_login_window")]
            pub failed_login_window_s: u64,
            #[serde(default = "default_failed_login_ban")]
            pub failed_login_ban_s: u64,
        }
    };
}

/// A vehicle listener table (JT/T 808, GB/T 32960): the protocol's own keys, the keys of a
/// vehicle session both protocols have, and the front door's ([`listener_config`]).
macro_rules! vehicle_listener_config {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        listener_config! {
            $(#[$meta])*
            pub struct $name {
                pub listen: Listen,
                pub auth: AuthConfig,
                pub max_frame_len: usize,
                /// Seconds a connection may stay without logging in (JT/T 808:
                /// authenticating).
                pub login_timeout_s: u64,
                /// The devices' heartbeat period, seconds (JT/T 808 parameter 0x0001,
                /// GB/T 32960 parameter 0x09).
                pub heartbeat_s: u64,
                /// Idle seconds after login before the connection is closed; 0 = 3 x
                /// heartbeat_s.
                pub idle_timeout_s: u64,
                /// The devices' clock zone, `+08:00` by the standards.
                pub device_tz: String,
                $($fields)*
                /// Bad frames tolerated on one connection before it is closed.
                pub max_bad_frames: u32,
                /// Frames per second one connection may send before its reading is slowed;
                /// 0 = no limit.
                pub max_frames_per_s: f64,
                /// When a frame is acknowledged to the vehicle.
                pub ack_when: AckWhen,
                /// More listeners of the protocol (`[[jt808.listeners]]`,
                /// `[[gbt32960.listeners]]`): each a `name`, a `listen` and any key of this
                /// table it overrides ([`Config::vehicle_listeners`]).
                #[serde(default, skip_serializing_if = "Vec::is_empty")]
                pub listeners: Vec<toml::Table>,
            }
        }
    };
}

/// A listener table literal with the front door's defaults (no TLS, no limits, the
/// failed-login cap at its default).
macro_rules! with_front_door_defaults {
    ($name:ident { $($field:ident: $value:expr),* $(,)? }) => {
        $name {
            $($field: $value,)*
            tls: None,
            max_connections: 0,
            max_connections_per_address: 0,
            proxy_protocol: false,
            reuse_port: false,
            max_failed_logins: default_max_failed_logins(),
            failed_login_window_s: default_failed_login_window(),
            failed_login_ban_s: default_failed_login_ban(),
        }
    };
}

/// A vehicle listener table literal (JT/T 808, GB/T 32960) with the defaults the two
/// protocols' sessions share: the front door's, the auth hook's, a 30 s login timeout, idle
/// timeout from the heartbeat, Beijing time on the devices, 20 bad frames, 500 frames/s,
/// acknowledgement once durable, no extra listeners.
macro_rules! with_vehicle_session_defaults {
    ($name:ident { $($field:ident: $value:expr),* $(,)? }) => {
        with_front_door_defaults!($name {
            $($field: $value,)*
            auth: AuthConfig::default(),
            login_timeout_s: 30,
            idle_timeout_s: 0,
            device_tz: "+08:00".to_owned(),
            max_bad_frames: 20,
            max_frames_per_s: 500.0,
            ack_when: AckWhen::Durable,
            listeners: Vec::new(),
        })
    };
}

vehicle_listener_config! {
/// The JT/T 808 listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jt808Config {
    pub checksum: ChecksumMode,
    pub before_auth: BeforeLogin,
    /// Seconds without a new package before 0x8003 asks for the missing ones.
    pub subpackage_quiet_s: u64,
    /// Seconds after which an incomplete subpackaged message is dropped.
    pub subpackage_timeout_s: u64,
    /// Bytes of incomplete subpackaged messages one connection may hold (the memory bound of
    /// reassembly); a package beyond it is refused and counted.
    pub subpackage_max_bytes: usize,
}
}

impl Default for Jt808Config {
    fn default() -> Self {
        with_vehicle_session_defaults!(Jt808Config {
            listen: listen("0.0.0.0:6808"),
            checksum: ChecksumMode::Strict,
            max_frame_len: 4096,
            before_auth: BeforeLogin::Ignore,
            heartbeat_s: 60,
            subpackage_quiet_s: 5,
            subpackage_timeout_s: 60,
            subpackage_max_bytes: 256 * 1024,
        })
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

vehicle_listener_config! {
/// The GB/T 32960 listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gbt32960Config {
    pub before_login: BeforeLogin,
    /// Answer a malformed real-time/reissue frame with an error flag.
    pub reply_on_error: bool,
    pub reply_style: ReplyStyle,
    /// Platforms allowed to log in with 0x05; empty = platform login refused.
    pub platform_users: Vec<PlatformUser>,
    /// `[gbt32960.security]`: data-unit keys and 2025 signatures (`crate::vehicle_keys`).
    pub security: crate::vehicle_keys::SecurityConfig,
    /// How cell voltage and probe temperature lists are written in `telemetry` events.
    pub cell_lists: CellLists,
}
}

/// How GB/T 32960 cell voltage and probe temperature lists are written (a 96-cell pack is
/// most of a report's JSON): `floats` is the contract's layout (volts, `3.771`; °C, `25.0`);
/// `compact` writes exact integers (`cell_voltages_mv`: `3771`; °C without a decimal point,
/// `25`), about 5% less JSON per report, for platforms that opt in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CellLists {
    #[default]
    Floats,
    Compact,
}

impl Gbt32960Config {
    /// The normalizer's options this listener asks for.
    pub fn normalize_options(&self) -> gbt32960::Options {
        gbt32960::Options {
            cell_lists: match self.cell_lists {
                CellLists::Floats => gbt32960::CellLists::Floats,
                CellLists::Compact => gbt32960::CellLists::Compact,
            },
        }
    }
}

impl Default for Gbt32960Config {
    fn default() -> Self {
        with_vehicle_session_defaults!(Gbt32960Config {
            listen: listen("0.0.0.0:32960"),
            max_frame_len: 65536 + 25,
            before_login: BeforeLogin::Ignore,
            heartbeat_s: 30,
            reply_on_error: true,
            reply_style: ReplyStyle::TimeOnly,
            platform_users: Vec::new(),
            security: Default::default(),
            cell_lists: CellLists::Floats,
        })
    }
}

listener_config! {
/// One `[[raw]]` listener in the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerConfig {
    /// The listener's name (metrics, logs, `listening <name> <addr>`).
    pub name: String,
    pub listen: Listen,
    #[serde(default)]
    pub auth: AuthConfig,
    pub framing: codecs::raw::Framing,
    pub identity: codecs::raw::Identity,
    #[serde(default)]
    pub payload: codecs::raw::PayloadMode,
    #[serde(default)]
    pub ack: codecs::raw::Ack,
    /// Seconds a connection may take to identify itself.
    #[serde(default = "default_login_timeout")]
    pub login_timeout_s: u64,
    /// Idle seconds after identification before the connection is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    /// Bad frames tolerated on one connection before it is closed.
    #[serde(default = "default_max_bad_frames")]
    pub max_bad_frames: u32,
    /// Frames per second one connection may send before its reading is slowed; 0 = no limit.
    #[serde(default = "default_max_frames_per_s")]
    pub max_frames_per_s: f64,
}
}

fn default_max_failed_logins() -> u32 {
    10
}
fn default_failed_login_window() -> u64 {
    60
}
fn default_failed_login_ban() -> u64 {
    300
}

fn default_login_timeout() -> u64 {
    30
}
fn default_idle_timeout() -> u64 {
    180
}
fn default_max_bad_frames() -> u32 {
    20
}
fn default_max_frames_per_s() -> f64 {
    500.0
}

impl RawListenerConfig {
    /// The four sans-I/O parts, validated together.
    pub fn spec(&self) -> codecs::raw::RawListenerSpec {
        codecs::raw::RawListenerSpec::new(
            self.framing.clone(),
            self.identity.clone(),
            self.payload,
            self.ack.clone(),
        )
    }
}

/// Admin and metrics HTTP.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: Listen,
    /// The operator API's bearer tokens, one per line: `TOKEN` may read and write,
    /// `ro:TOKEN` only read; `#` comments and blank lines are skipped (docs/api.md).
    pub tokens_file: Option<PathBuf>,
    /// One read-write token (`VGATE_HTTP_TOKEN`). Never written out, never logged.
    #[serde(skip_serializing)]
    pub token: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("tokens_file", &self.tokens_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: listen("127.0.0.1:9808"),
            tokens_file: None,
            token: None,
        }
    }
}

impl HttpConfig {
    /// Whether the operator API has tokens: `token` (non-empty) or a `tokens_file`.
    pub fn has_tokens(&self) -> bool {
        self.token.as_deref().is_some_and(|t| !t.is_empty()) || self.tokens_file.is_some()
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
    /// Log lines as text for people, or one JSON object per line for log shippers.
    pub log_format: crate::logging::LogFormat,
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
    /// Where files vehicles upload go (`crate::media`).
    pub media: crate::media::MediaConfig,
    /// Raw TCP listeners (`[[raw]]`, docs/raw-tcp.md); none by default.
    pub raw: Vec<RawListenerConfig>,
    /// Vehicle traces started at start-up and by reload (`[[traces]]`, docs/api.md).
    pub traces: Vec<crate::traces::TraceConfig>,
    /// Several nodes on one Redis (`[cluster]`, contract §7), and stale presence after a crash.
    pub cluster: crate::cluster::ClusterConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: String::new(),
            topic_prefix: "vgate".to_owned(),
            data_dir: PathBuf::from("./vgate-data"),
            log: "info".to_owned(),
            log_format: crate::logging::LogFormat::Text,
            worker_threads: 0,
            http: HttpConfig::default(),
            mqtt: mqtt_bridge::MqttConfig::default(),
            jt808: Jt808Config::default(),
            gbt32960: Gbt32960Config::default(),
            commands: crate::commands::CommandsConfig::default(),
            media: crate::media::MediaConfig::default(),
            raw: Vec::new(),
            traces: Vec::new(),
            cluster: crate::cluster::ClusterConfig::default(),
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

/// The prefix of every environment variable that sets a key.
pub const ENV_PREFIX: &str = "VGATE_";

/// The contract's environment variables (§1, binding) and the keys they set. They predate
/// the general rule (`VGATE_JT808__LISTEN`), and win over it when both are set.
pub const CONTRACT_ENV: &[(&str, &str)] = &[
    ("VGATE_JT808_LISTEN", "jt808.listen"),
    ("VGATE_GBT32960_LISTEN", "gbt32960.listen"),
    ("VGATE_HTTP_LISTEN", "http.listen"),
    ("VGATE_MQTT_URL", "mqtt.url"),
    ("VGATE_EMBEDDED_MQTT_LISTEN", "mqtt.embedded_listen"),
    ("VGATE_DATA_DIR", "data_dir"),
    ("VGATE_NODE_ID", "node_id"),
    ("VGATE_TOPIC_PREFIX", "topic_prefix"),
    ("VGATE_LOG", "log"),
    // §6: the operator API's read-write token.
    ("VGATE_HTTP_TOKEN", "http.token"),
    ("VGATE_REDIS_URL", "cluster.redis_url"),
];

/// The key an environment variable sets (`mqtt.password` for `VGATE_MQTT__PASSWORD`), or
/// `None` when the name is not one of ours: no `VGATE_` prefix, or an empty level
/// (`VGATE_MQTT____X`). Whether the key exists is decided when the layers are read.
pub fn env_key(name: &str) -> Option<String> {
    if let Some((_, key)) = CONTRACT_ENV.iter().find(|(var, _)| *var == name) {
        return Some((*key).to_owned());
    }
    let rest = name.strip_prefix(ENV_PREFIX)?;
    let levels: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if levels
        .iter()
        .any(|l| l.is_empty() || l.contains('.') || l.starts_with('_') || l.ends_with('_'))
    {
        return None;
    }
    Some(levels.join("."))
}

/// One environment variable's value, as the layer gives it.
#[derive(Debug, Clone)]
enum EnvValue {
    /// A string: numbers and booleans are read from it when the key wants one.
    Text(String),
    /// A value written as a TOML array or inline table (`[...]`, `{...}`), for `raw`,
    /// `gbt32960.platform_users`, `commands.groups.*`; read as `Text` instead when the key
    /// wants a string.
    Toml(figment::value::Value, String),
    /// `VGATE_MQTT_URL=""`: no URL (the embedded broker), over the file's.
    Unset,
}

/// One `VGATE_*` variable: one figment provider, so that figment tags every value with the
/// variable it came from and an error can name it.
#[derive(Debug, Clone)]
struct EnvVar {
    name: String,
    key: String,
    value: EnvValue,
}

impl EnvVar {
    fn new(name: &str, key: String, raw: &str) -> EnvVar {
        let trimmed = raw.trim();
        let value = if key == "mqtt.url" && trimmed.is_empty() {
            EnvValue::Unset
        } else if trimmed.starts_with(['[', '{']) {
            toml::from_str::<toml::Table>(&format!("v = {trimmed}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .and_then(|v| figment::value::Value::serialize(v).ok())
                .map_or_else(
                    || EnvValue::Text(raw.to_owned()),
                    |v| EnvValue::Toml(v, raw.to_owned()),
                )
        } else {
            EnvValue::Text(raw.to_owned())
        };
        EnvVar {
            name: name.to_owned(),
            key,
            value,
        }
    }

    fn label(&self) -> String {
        format!("environment variable {}", self.name)
    }
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.label())
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Empty, Value};
        let value = match &self.value {
            EnvValue::Text(s) => Value::from(s.clone()),
            EnvValue::Toml(v, _) => v.clone(),
            EnvValue::Unset => Value::from(Empty::None),
        };
        let dict = figment::util::nest(&self.key, value)
            .into_dict()
            .unwrap_or_default();
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// The configuration file's layer, named after the file in errors.
struct FileLayer<'a> {
    label: &'a str,
    text: &'a str,
}

impl figment::Provider for FileLayer<'_> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.label.to_owned())
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::providers::Format;
        figment::providers::Toml::string(self.text).data()
    }
}

/// The layers of one configuration: the defaults (serde's, every struct's `Default`), the
/// file, the environment; and the errors naming where a value came from.
struct Layers<'a> {
    /// `config file PATH`, or `configuration (no config file)`.
    source: &'a str,
    file: Option<&'a str>,
    env: Vec<EnvVar>,
}

impl Layers<'_> {
    fn figment(&self) -> figment::Figment {
        let mut f = figment::Figment::new();
        if let Some(text) = self.file {
            f = f.merge(FileLayer {
                label: self.source,
                text,
            });
        }
        for var in &self.env {
            f = f.merge(var);
        }
        f
    }

    /// The environment variable that set `key` (dotted, as the file spells it; an array's
    /// element `raw[0].name` is looked up as the whole array `raw`), if one did.
    fn var_of(&self, figment: &figment::Figment, key: &str) -> Option<usize> {
        let key = key.split('[').next().unwrap_or(key);
        let key = key
            .split('.')
            .take_while(|level| level.parse::<usize>().is_err())
            .collect::<Vec<_>>()
            .join(".");
        let label = &figment.find_metadata(&key)?.name;
        self.env.iter().position(|v| v.label() == *label)
    }

    /// The name of the variable at `i` (as [`Self::var_of`] found it).
    fn var_name(&self, i: usize) -> &str {
        self.env.get(i).map_or("?", |v| v.name.as_str())
    }

    /// The one-line error: the file (or that there is none), the key, the variable that set
    /// it if one did, and why.
    fn error(&self, var: Option<usize>, key: &str, reason: &str) -> anyhow::Error {
        match var {
            Some(i) => anyhow!(
                "{}: {key} (set by environment variable {}): {reason}",
                self.source,
                self.var_name(i)
            ),
            None => anyhow!("{}: {key}: {reason}", self.source),
        }
    }

    /// Reads the merged layers into a [`Config`]. Numbers and booleans are read from the
    /// environment's strings (`extract_lossy`; the file was read strictly before). A
    /// variable whose top-level name is no key (`VGATE_BIN`, `VGATE_FOO__BAR`: scripts use
    /// the prefix too) is dropped; an unknown key inside a table (`VGATE_MQTT__PASWORD`) is
    /// an error. Each retry drops or re-reads one variable, so this ends.
    fn extract(&mut self) -> anyhow::Result<(Config, figment::Figment)> {
        use figment::error::{Actual, Kind};
        loop {
            let figment = self.figment();
            let e = match figment.extract_lossy::<Config>() {
                Ok(cfg) => return Ok((cfg, figment)),
                Err(e) => e,
            };
            // The path ends with the key itself, an unknown one too; `raw.0.name` is
            // written `raw[0].name`, as in the file's errors.
            let key = e.path.iter().fold(String::new(), |mut key, level| {
                if level.parse::<usize>().is_ok() {
                    key = format!("{key}[{level}]");
                } else if key.is_empty() {
                    key.clone_from(level);
                } else {
                    key = format!("{key}.{level}");
                }
                key
            });
            let var = self.var_of(&figment, &key);
            match (&e.kind, var) {
                (Kind::UnknownField(..), Some(i)) if e.path.len() == 1 => {
                    self.env.remove(i);
                }
                (Kind::InvalidType(Actual::Seq | Actual::Map, expected), Some(i))
                    if expected.contains("string")
                        && self
                            .env
                            .get(i)
                            .is_some_and(|v| matches!(v.value, EnvValue::Toml(..))) =>
                {
                    if let Some(v) = self.env.get_mut(i) {
                        if let EnvValue::Toml(_, raw) = &v.value {
                            v.value = EnvValue::Text(raw.clone());
                        }
                    }
                }
                _ => {
                    let key = if key.is_empty() { "(top level)" } else { &key };
                    return Err(self.error(var, key, &e.kind.to_string()));
                }
            }
        }
    }
}

/// Reads the file alone, strictly (no number from a string), for its errors: the key path
/// and the line (`jt808.listen_port (line 2, column 1): unknown field ...`).
fn read_file_strictly(text: &str) -> Result<(), String> {
    let de = toml::Deserializer::new(text);
    let Err(e) = serde_path_to_error::deserialize::<_, Config>(de) else {
        return Ok(());
    };
    let key = e.path().to_string();
    let inner = e.inner();
    let at = inner.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("line {line}, column {column}")
    });
    let reason = inner.message().trim().replace('\n', "; ");
    Err(match (key.as_str(), at) {
        ("" | ".", Some(at)) => format!("{at}: {reason}"),
        ("" | ".", None) => reason,
        (key, Some(at)) => format!("{key} ({at}): {reason}"),
        (key, None) => format!("{key}: {reason}"),
    })
}

/// The `VGATE_*` variables of this process (names and values that are UTF-8).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect()
}

/// Checks a log filter (`log`, `VGATE_LOG`) with the logging setup's own check
/// ([`crate::logging::check_filter`]), so `config --check` refuses what `run` would.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    crate::logging::check_filter(filter).map_err(|e| {
        format!("{filter:?} is not a log filter like \"info\" or \"info,gateway=debug\": {e}")
    })
}

impl Config {
    /// Reads a file (or the defaults when `None`), applies this process's environment, then
    /// [`Config::check`]s the result: `vgate run` and `vgate config --check` both load
    /// through here, so a file one accepts the other accepts. See [`Config::load_with`].
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        Config::load_with(path, &process_env())
    }

    /// [`Config::load`] with the environment given: `(name, value)` pairs, of which the
    /// `VGATE_*` ones are read (module doc). The layers, lowest first: the defaults, the
    /// file, the variables of the general rule (`VGATE_MQTT__PASSWORD`) in name order, the
    /// contract's own (`VGATE_MQTT_URL`). Then `mqtt.password_file` is read, then
    /// [`Config::check`]. Every error is one line naming the file (or that there is none)
    /// and the key, and the environment variable when one set the value.
    pub fn load_with(path: Option<&Path>, env: &[(String, String)]) -> anyhow::Result<Config> {
        let source = match path {
            Some(p) => format!("config file {}", p.display()),
            None => "configuration (no config file)".to_owned(),
        };
        let text = match path {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?,
            ),
            None => None,
        };
        if let Some(text) = &text {
            read_file_strictly(text).map_err(|e| anyhow!("{source}: {e}"))?;
        }
        let mut vars: Vec<EnvVar> = env
            .iter()
            .filter_map(|(name, value)| Some(EnvVar::new(name, env_key(name)?, value)))
            .collect();
        let contract = |v: &EnvVar| CONTRACT_ENV.iter().any(|(n, _)| *n == v.name);
        vars.sort_by(|a, b| (contract(a), &a.name).cmp(&(contract(b), &b.name)));
        vars.dedup_by(|a, b| a.name == b.name);
        let mut layers = Layers {
            source: &source,
            file: text.as_deref(),
            env: vars,
        };
        let (mut cfg, figment) = layers.extract()?;
        let at = |key: &str| layers.var_of(&figment, key);
        if let Some(file) = cfg.mqtt.password_file.clone() {
            let key = "mqtt.password_file";
            if cfg.mqtt.password.is_some() {
                let from = match at("mqtt.password") {
                    Some(i) => format!(" (by environment variable {})", layers.var_name(i)),
                    None => String::new(),
                };
                return Err(layers.error(
                    at(key),
                    key,
                    &format!("mqtt.password is set as well{from}: set one of them"),
                ));
            }
            let text = std::fs::read_to_string(&file).map_err(|e| {
                layers.error(
                    at(key),
                    key,
                    &format!("cannot read {}: {e}", file.display()),
                )
            })?;
            let password = text.lines().next().unwrap_or_default();
            if password.is_empty() {
                return Err(layers.error(
                    at(key),
                    key,
                    &format!("{}: the first line is empty", file.display()),
                ));
            }
            cfg.mqtt.password = Some(password.to_owned());
        }
        cfg.check().map_err(|e| match at(&e.key) {
            Some(i) => layers.error(Some(i), &e.key, &e.reason),
            // A key refused for another one's value (`required when jt808.auth.mode =
            // "allowlist"`): the variable that set that one.
            None => {
                let mut reason = e.reason.clone();
                for var in &layers.env {
                    // Dotted keys only: a word such as `log` may be in any reason.
                    if var.key.contains('.')
                        && e.reason.contains(&var.key)
                        && at(&var.key).is_some_and(|i| layers.var_name(i) == var.name)
                    {
                        reason +=
                            &format!(" ({} set by environment variable {})", var.key, var.name);
                    }
                }
                layers.error(None, &e.key, &reason)
            }
        })?;
        Ok(cfg)
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
        self.check_http()?;
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
        let up = &self.commands.upgrade;
        if up.window == 0 {
            return Err(ConfigError::new("commands.upgrade.window", "at least 1"));
        }
        if !(1..=1023).contains(&up.package_bytes) {
            return Err(ConfigError::new(
                "commands.upgrade.package_bytes",
                "1..=1023",
            ));
        }
        if self.media.store == crate::media::StoreKind::S3 && self.media.s3.bucket.is_empty() {
            return Err(ConfigError::new(
                "media.s3.bucket",
                "required with media.store = \"s3\"",
            ));
        }
        if let Some(dir) = &self.gbt32960.security.keys_dir {
            if !dir.is_dir() {
                return Err(ConfigError::new(
                    "gbt32960.security.keys_dir",
                    format!("{} is not a directory", dir.display()),
                ));
            }
        }
        for l in self.vehicle_listeners()? {
            l.check()?;
        }
        for (i, t) in self.traces.iter().enumerate() {
            t.check()
                .map_err(|(field, e)| ConfigError::new(format!("traces[{i}].{field}"), e))?;
        }
        self.check_cluster()
    }

    /// Cluster mode: a Redis URL vgate can use, and a broker every node shares (each node's
    /// embedded broker would be a broker of its own: the platform would reach one node).
    fn check_cluster(&self) -> Result<(), ConfigError> {
        let Some(url) = self.cluster.redis_url() else {
            return Ok(());
        };
        crate::cluster::redis::parse(url)
            .map_err(|e| ConfigError::new("cluster.redis_url", e.to_string()))?;
        if self.mqtt.url.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::new(
                "cluster.redis_url",
                "cluster mode needs an external MQTT broker that every node shares (mqtt.url, \
                 VGATE_MQTT_URL) with shared subscriptions ($share/...: Mosquitto 2, EMQX, \
                 HiveMQ, VerneMQ): the embedded broker serves one node only",
            ));
        }
        Ok(())
    }

    /// The operator API's tokens (a readable `http.tokens_file` holding at least one), and no
    /// API beyond loopback without them (contract §6).
    fn check_http(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.http.tokens_file {
            crate::api::auth::Tokens::read_file(path)
                .map_err(|e| ConfigError::new("http.tokens_file", e))?;
        }
        if let Some(addr) = self.http.listen.addr() {
            if !addr.ip().is_loopback() && !self.http.has_tokens() {
                return Err(ConfigError::new(
                    "http.listen",
                    format!(
                        "{addr} is not a loopback address: the operator API listens beyond this \
                         machine only with tokens (VGATE_HTTP_TOKEN or http.tokens_file)"
                    ),
                ));
            }
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
/// authenticator would refuse at start. `certificate` needs the listener's `tls` to
/// require a client certificate that names the vehicle.
fn check_auth(key: &str, auth: &AuthConfig, tls: Option<&TlsConfig>) -> Result<(), ConfigError> {
    match auth.mode {
        AuthMode::Open => Ok(()),
        AuthMode::Certificate => {
            let prefix = key.strip_suffix(".auth").unwrap_or(key);
            match tls {
                Some(t) if t.client_ca_file.is_some() && t.identity != TlsIdentity::None => Ok(()),
                _ => Err(ConfigError::new(
                    format!("{key}.mode"),
                    format!("\"certificate\" needs {prefix}.tls with client_ca_file and identity = \"cn\" or \"san\" (the certificate is then the vehicle's only credential)"),
                )),
            }
        }
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

/// A vehicle listener's protocol and its settings, with its overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenerKind {
    Jt808(Jt808Config),
    Gbt32960(Gbt32960Config),
    Raw(RawListenerConfig),
}

/// One vehicle listener, as [`Config::vehicle_listeners`] resolves it.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleListener {
    /// Its name in `listening <name> <addr>`, metrics and logs.
    pub name: String,
    /// Its table's key in the configuration (`jt808`, `jt808.listeners[1]`, `raw[0]`).
    pub key: String,
    pub kind: ListenerKind,
}

/// The same expression over the listener's settings, whatever the protocol (the keys every
/// listener table has).
macro_rules! each_kind {
    ($kind:expr, $c:ident => $e:expr) => {
        match $kind {
            ListenerKind::Jt808($c) => $e,
            ListenerKind::Gbt32960($c) => $e,
            ListenerKind::Raw($c) => $e,
        }
    };
}

impl VehicleListener {
    /// Frames per second one connection may send (0: no limit); changes on reload.
    pub fn max_frames_per_s(&self) -> f64 {
        each_kind!(&self.kind, c => c.max_frames_per_s)
    }

    pub fn listen(&self) -> Listen {
        each_kind!(&self.kind, c => c.listen)
    }

    pub fn auth(&self) -> &AuthConfig {
        each_kind!(&self.kind, c => &c.auth)
    }

    pub fn tls(&self) -> Option<&TlsConfig> {
        each_kind!(&self.kind, c => c.tls.as_ref())
    }

    /// The front-door settings.
    pub fn front(&self) -> crate::front::FrontConfig {
        each_kind!(&self.kind, c => crate::front::FrontConfig {
            max_connections: c.max_connections,
            max_connections_per_address: c.max_connections_per_address,
            proxy_protocol: c.proxy_protocol,
            reuse_port: c.reuse_port,
            max_failed_logins: c.max_failed_logins,
            failed_login_window: std::time::Duration::from_secs(c.failed_login_window_s.max(1)),
            failed_login_ban: std::time::Duration::from_secs(c.failed_login_ban_s),
        })
    }

    /// What `run` would refuse of this listener: its clock zone, frame size, raw framing,
    /// authentication, and TLS files (read and parsed now).
    fn check(&self) -> Result<(), ConfigError> {
        let key = &self.key;
        let tz = match &self.kind {
            ListenerKind::Jt808(c) => Some(&c.device_tz),
            ListenerKind::Gbt32960(c) => Some(&c.device_tz),
            ListenerKind::Raw(_) => None,
        };
        if let Some(tz) = tz {
            if codecs::time::parse_utc_offset(tz).is_none() {
                return Err(ConfigError::new(
                    format!("{key}.device_tz"),
                    format!("{tz:?}: expected +HH:MM"),
                ));
            }
        }
        match &self.kind {
            ListenerKind::Jt808(c) if c.max_frame_len < 64 => {
                return Err(ConfigError::new(
                    format!("{key}.max_frame_len"),
                    "at least 64",
                ));
            }
            ListenerKind::Raw(r) => {
                r.spec().validate().map_err(|e| {
                    ConfigError::new(format!("{key}.{}", e.field()), format!("({}) {e}", r.name))
                })?;
            }
            _ => {}
        }
        check_auth(&format!("{key}.auth"), self.auth(), self.tls())?;
        if let Some(tls) = self.tls() {
            tls.server_config()
                .map_err(|e| ConfigError::new(format!("{key}.tls.{}", e.key), e.reason))?;
        }
        Ok(())
    }
}

/// Listener names `vgate run` uses itself (`listening mqtt ...`) or gives the protocol tables.
const RESERVED_NAMES: &[&str] = &["jt808", "gbt32960", "http", "mqtt"];

/// A listener name: letters, digits, `-` and `_`.
fn check_listener_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConfigError::new(
            key,
            format!("{name:?}: letters, digits, - and _ only"),
        ));
    }
    Ok(())
}

/// The extra listeners of a protocol table: each entry's keys over the table's own
/// (`listeners` itself and `name` aside), read back as the table's type, so that an unknown
/// key or a bad value is refused as in the table, naming `{protocol}.listeners[i].key`.
/// A key given replaces the table's value as a whole (a table such as `auth` or `tls`
/// included: it is not merged key by key).
fn extra_listeners<T>(
    protocol: &str,
    base: &T,
    entries: &[toml::Table],
) -> Result<Vec<(String, String, T)>, ConfigError>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut table = toml::Table::try_from(base)
        .map_err(|e| ConfigError::new(protocol, format!("cannot be read back: {e}")))?;
    table.remove("listeners");
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("{protocol}.listeners[{i}]");
        let name = match entry.get("name") {
            Some(toml::Value::String(n)) => n.clone(),
            Some(_) => return Err(ConfigError::new(format!("{key}.name"), "a string")),
            None => {
                return Err(ConfigError::new(
                    format!("{key}.name"),
                    "required: the listener's name",
                ))
            }
        };
        if !entry.contains_key("listen") {
            return Err(ConfigError::new(
                format!("{key}.listen"),
                "required: each listener has its own address",
            ));
        }
        let mut t = table.clone();
        for (k, v) in entry {
            match k.as_str() {
                "name" => {}
                "listeners" => {
                    return Err(ConfigError::new(
                        format!("{key}.listeners"),
                        "a listener cannot have listeners",
                    ))
                }
                _ => {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        let cfg: T = serde_path_to_error::deserialize(toml::Value::Table(t)).map_err(|e| {
            let path = e.path().to_string();
            let at = if path.is_empty() || path == "." {
                key.clone()
            } else {
                format!("{key}.{path}")
            };
            ConfigError::new(at, e.inner().to_string().replace('\n', "; "))
        })?;
        out.push((name, key, cfg));
    }
    Ok(out)
}

impl Config {
    /// Every vehicle listener: `[jt808]`, its `[[jt808.listeners]]`, `[gbt32960]`, its
    /// `[[gbt32960.listeners]]`, then each `[[raw]]`, with the overrides applied and the
    /// names checked (letters, digits, `-`, `_`; unique across all listeners; `jt808`,
    /// `gbt32960`, `http`, `mqtt` are taken). Listeners whose `listen` is `off` are included
    /// (`run` skips them).
    pub fn vehicle_listeners(&self) -> Result<Vec<VehicleListener>, ConfigError> {
        let mut out = vec![VehicleListener {
            name: "jt808".into(),
            key: "jt808".into(),
            kind: ListenerKind::Jt808(Jt808Config {
                listeners: Vec::new(),
                ..self.jt808.clone()
            }),
        }];
        for (name, key, c) in extra_listeners("jt808", &self.jt808, &self.jt808.listeners)? {
            out.push(VehicleListener {
                name,
                key,
                kind: ListenerKind::Jt808(c),
            });
        }
        out.push(VehicleListener {
            name: "gbt32960".into(),
            key: "gbt32960".into(),
            kind: ListenerKind::Gbt32960(Gbt32960Config {
                listeners: Vec::new(),
                ..self.gbt32960.clone()
            }),
        });
        for (name, key, c) in extra_listeners("gbt32960", &self.gbt32960, &self.gbt32960.listeners)?
        {
            out.push(VehicleListener {
                name,
                key,
                kind: ListenerKind::Gbt32960(c),
            });
        }
        for (i, r) in self.raw.iter().enumerate() {
            out.push(VehicleListener {
                name: r.name.clone(),
                key: format!("raw[{i}]"),
                kind: ListenerKind::Raw(r.clone()),
            });
        }
        let mut names = std::collections::BTreeSet::new();
        for l in &out {
            let builtin = l.key == "jt808" || l.key == "gbt32960";
            if builtin {
                names.insert(l.name.clone());
                continue;
            }
            let key = format!("{}.name", l.key);
            check_listener_name(&key, &l.name)?;
            if RESERVED_NAMES.contains(&l.name.as_str()) || !names.insert(l.name.clone()) {
                return Err(ConfigError::new(
                    key,
                    format!("{:?}: already used by another listener", l.name),
                ));
            }
        }
        Ok(out)
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

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// `load_with` of `toml` (written to a file) under `vars`: the config, or the error line
    /// and the file's path.
    fn load(toml: Option<&str>, vars: &[(&str, &str)]) -> (Result<Config, String>, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vgate.toml");
        if let Some(t) = toml {
            std::fs::write(&file, t).unwrap();
        }
        let path = toml.map(|_| file.as_path());
        let got = Config::load_with(path, &env(vars)).map_err(|e| format!("{e:#}"));
        (got, file.display().to_string())
    }

    #[test]
    fn the_default_file_through_the_layers_is_the_defaults() {
        let (cfg, _) = load(Some(DEFAULT_TOML), &[]);
        assert_eq!(cfg.unwrap(), Config::default());
    }

    #[test]
    fn cluster_mode_needs_a_usable_redis_url_and_a_shared_broker() {
        let (got, _) = load(None, &[("VGATE_REDIS_URL", "redis://127.0.0.1:6379")]);
        let e = got.unwrap_err();
        assert!(
            e.contains("cluster.redis_url") && e.contains("external MQTT broker"),
            "{e}"
        );
        let (cfg, _) = load(
            None,
            &[
                (
                    "VGATE_REDIS_URL",
                    "redis+sentinel://s1:26379,s2:26379/mymaster",
                ),
                ("VGATE_MQTT_URL", "mqtt://127.0.0.1:1883"),
            ],
        );
        assert_eq!(
            cfg.unwrap().cluster.redis_url(),
            Some("redis+sentinel://s1:26379,s2:26379/mymaster")
        );
        let (got, _) = load(
            None,
            &[
                ("VGATE_REDIS_URL", "http://nope"),
                ("VGATE_MQTT_URL", "mqtt://127.0.0.1:1883"),
            ],
        );
        assert!(got.unwrap_err().contains("cluster.redis_url"));
        let (cfg, _) = load(None, &[("VGATE_REDIS_URL", "")]);
        assert_eq!(
            cfg.unwrap().cluster.redis_url(),
            None,
            "an empty URL is one node"
        );
    }

    #[test]
    fn env_names_map_to_key_paths() {
        for (var, key) in [
            ("VGATE_MQTT__PASSWORD", Some("mqtt.password")),
            ("VGATE_MQTT__CONNECTIONS", Some("mqtt.connections")),
            ("VGATE_JT808__AUTH__MODE", Some("jt808.auth.mode")),
            (
                "VGATE_COMMANDS__DEFAULT_TTL_S",
                Some("commands.default_ttl_s"),
            ),
            ("VGATE_WORKER_THREADS", Some("worker_threads")),
            ("VGATE_JT808_LISTEN", Some("jt808.listen")),
            ("VGATE_EMBEDDED_MQTT_LISTEN", Some("mqtt.embedded_listen")),
            ("VGATE_BIN", Some("bin")),
            ("VGATE_MQTT____X", None),
            ("VGATE_", None),
            ("HOME", None),
        ] {
            assert_eq!(env_key(var).as_deref(), key, "{var}");
        }
    }

    #[test]
    fn every_key_can_come_from_the_environment_over_the_file() {
        let file = "[mqtt]\nconnections = 3\nusername = \"file\"\npassword = \"from-file\"\n\
                    [jt808]\nheartbeat_s = 90\n";
        let (cfg, _) = load(
            Some(file),
            &[
                ("VGATE_MQTT__CONNECTIONS", "2"),
                ("VGATE_MQTT__PASSWORD", "123456"),
                ("VGATE_MQTT__PROTOCOL", "5"),
                ("VGATE_MQTT__QOS__LOCATION", "0"),
                ("VGATE_MQTT__SPOOL__WHEN_FULL", "drop_oldest"),
                ("VGATE_JT808__AUTH__HTTP__URL", "http://127.0.0.1:8080/auth"),
                ("VGATE_JT808__AUTH__MODE", "http"),
                ("VGATE_JT808__MAX_FRAMES_PER_S", "10.5"),
                ("VGATE_GBT32960__REPLY_ON_ERROR", "false"),
                (
                    "VGATE_GBT32960__PLATFORM_USERS",
                    "[{ user = \"tsp\", password = \"pw\" }]",
                ),
                ("VGATE_COMMANDS__DEFAULT_TTL_S", "60"),
                ("VGATE_COMMANDS__GROUPS__NORTH", "[\"0138*\"]"),
                ("VGATE_NODE_ID", "42"),
                ("VGATE_LOG", "info,gateway=debug"),
                ("VGATE_WORKER_THREADS", "3"),
            ],
        );
        let cfg = cfg.unwrap();
        assert_eq!(cfg.mqtt.connections, 2);
        assert_eq!(cfg.mqtt.username.as_deref(), Some("file"), "the file stays");
        assert_eq!(
            cfg.mqtt.password.as_deref(),
            Some("123456"),
            "a string stays one"
        );
        assert_eq!(cfg.mqtt.protocol, mqtt_bridge::MqttProtocol::V5);
        assert_eq!(cfg.mqtt.qos.location, mqtt_bridge::Qos::AtMostOnce);
        assert_eq!(cfg.jt808.heartbeat_s, 90);
        assert_eq!(cfg.jt808.auth.mode, AuthMode::Http);
        assert_eq!(cfg.jt808.max_frames_per_s, 10.5);
        assert!(!cfg.gbt32960.reply_on_error);
        assert_eq!(cfg.gbt32960.platform_users.len(), 1);
        assert_eq!(cfg.gbt32960.platform_users[0].user, "tsp");
        assert_eq!(cfg.commands.default_ttl_s, 60);
        assert_eq!(cfg.node_id, "42");
        assert_eq!(cfg.log, "info,gateway=debug");
        assert_eq!(cfg.worker_threads, 3);
        let groups = serde_json::to_value(&cfg.commands.groups).unwrap();
        assert_eq!(groups["north"], serde_json::json!(["0138*"]));
    }

    #[test]
    fn the_contract_variables_keep_working_and_win_over_the_general_rule() {
        let (cfg, _) = load(
            Some("[mqtt]\nurl = \"mqtt://10.0.0.5:1883\"\n"),
            &[
                ("VGATE_JT808_LISTEN", "off"),
                ("VGATE_JT808__LISTEN", "127.0.0.1:7000"),
                ("VGATE_GBT32960_LISTEN", "127.0.0.1:0"),
                ("VGATE_HTTP_LISTEN", "off"),
                ("VGATE_EMBEDDED_MQTT_LISTEN", "127.0.0.1:1884"),
                ("VGATE_DATA_DIR", "/tmp/vgate-config-test"),
                ("VGATE_TOPIC_PREFIX", "fleet"),
                ("VGATE_MQTT_URL", ""),
            ],
        );
        let cfg = cfg.unwrap();
        assert_eq!(cfg.jt808.listen, Listen::Off);
        assert_eq!(cfg.gbt32960.listen.addr().unwrap().port(), 0);
        assert_eq!(cfg.http.listen, Listen::Off);
        assert_eq!(cfg.mqtt.embedded_listen.port(), 1884);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/vgate-config-test"));
        assert_eq!(cfg.topic_prefix, "fleet");
        assert_eq!(
            cfg.mqtt.url, None,
            "an empty VGATE_MQTT_URL: the embedded broker"
        );
    }

    #[test]
    fn other_tools_variables_are_ignored_and_a_typo_inside_a_table_is_not() {
        let (cfg, _) = load(
            None,
            &[
                ("VGATE_BIN", "target/debug/vgate"),
                ("VGATE_CONFIG", "bench.toml"),
                ("VGATE_FOO__BAR", "1"),
                ("VGATE_SOAK_SECS", "60"),
            ],
        );
        assert_eq!(cfg.unwrap(), Config::default());
        let (e, _) = load(None, &[("VGATE_MQTT__PASWORD", "x")]);
        let e = e.unwrap_err();
        assert!(
            e.contains("mqtt.pasword (set by environment variable VGATE_MQTT__PASWORD)")
                && !e.contains("pasword.pasword"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable_the_key_and_the_file() {
        for (var, value, key) in [
            ("VGATE_MQTT__CONNECTIONS", "abc", "mqtt.connections"),
            ("VGATE_MQTT__CONNECTIONS", "0", "mqtt.connections"),
            ("VGATE_JT808__AUTH__MODE", "sometimes", "jt808.auth.mode"),
            (
                "VGATE_GBT32960__REPLY_ON_ERROR",
                "perhaps",
                "gbt32960.reply_on_error",
            ),
            ("VGATE_HTTP_LISTEN", "nowhere", "http.listen"),
            ("VGATE_MQTT_URL", "ftp://broker", "mqtt.url"),
            ("VGATE_LOG", "gateway=loud", "log"),
        ] {
            let (e, file) = load(Some("node_id = \"n1\"\n"), &[(var, value)]);
            let e = e.unwrap_err();
            for part in [file.as_str(), key, var] {
                assert!(e.contains(part), "{var}={value}: names {part}: {e}");
            }
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let (e, _) = load(None, &[("VGATE_MQTT__CONNECTIONS", "abc")]);
        let e = e.unwrap_err();
        assert!(
            e.contains("no config file") && e.contains("VGATE_MQTT__CONNECTIONS"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file_the_key_and_the_line() {
        for (text, key, line) in [
            (
                "[jt808]\nlisten_addr = \"x\"\n",
                "jt808.listen_addr",
                "line 2",
            ),
            (
                "node_id = \"a\"\n[mqtt]\nconnections = \"2\"\n",
                "mqtt.connections",
                "line 3",
            ),
            ("[mqtt.qos]\nlocation = 2\n", "mqtt.qos.location", "line 2"),
        ] {
            let (e, file) = load(Some(text), &[]);
            let e = e.unwrap_err();
            for part in [file.as_str(), key, line] {
                assert!(e.contains(part), "{text:?}: names {part}: {e}");
            }
        }
        // Not the environment's `VGATE_MQTT__CONNECTIONS=2`: the file is read strictly.
        let (e, file) = load(Some("[mqtt\n"), &[]);
        let e = e.unwrap_err();
        assert!(e.contains(&file) && e.contains("line 1"), "{e}");
    }

    #[test]
    fn a_string_that_looks_like_toml_stays_a_string_where_one_is_wanted() {
        for pw in ["[1, 2]", "{ a = 1 }", "[not toml"] {
            let (cfg, _) = load(
                None,
                &[("VGATE_MQTT__USERNAME", "u"), ("VGATE_MQTT__PASSWORD", pw)],
            );
            assert_eq!(cfg.unwrap().mqtt.password.as_deref(), Some(pw));
        }
    }

    #[test]
    fn the_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret pass\nignored\n").unwrap();
        let secret_s = secret.display().to_string();
        let (cfg, _) = load(
            Some("[mqtt]\nusername = \"u\"\n"),
            &[("VGATE_MQTT__PASSWORD_FILE", &secret_s)],
        );
        assert_eq!(cfg.unwrap().mqtt.password.as_deref(), Some("s3cret pass"));
        let (cfg, _) = load(
            Some(&format!(
                "[mqtt]\nusername = \"u\"\npassword_file = {secret_s:?}\n"
            )),
            &[],
        );
        assert_eq!(cfg.unwrap().mqtt.password.as_deref(), Some("s3cret pass"));

        let missing = dir.path().join("missing").display().to_string();
        let (e, file) = load(
            Some("[mqtt]\nusername = \"u\"\n"),
            &[("VGATE_MQTT__PASSWORD_FILE", &missing)],
        );
        let e = e.unwrap_err();
        for part in [
            file.as_str(),
            "mqtt.password_file",
            "VGATE_MQTT__PASSWORD_FILE",
            &missing,
        ] {
            assert!(e.contains(part), "names {part}: {e}");
        }
        let (e, _) = load(
            Some("[mqtt]\nusername = \"u\"\npassword = \"p\"\n"),
            &[("VGATE_MQTT__PASSWORD_FILE", &secret_s)],
        );
        let e = e.unwrap_err();
        assert!(
            e.contains("mqtt.password_file") && e.contains("set one"),
            "{e}"
        );
        std::fs::write(&secret, "\n").unwrap();
        let (e, _) = load(
            None,
            &[
                ("VGATE_MQTT__USERNAME", "u"),
                ("VGATE_MQTT__PASSWORD_FILE", &secret_s),
            ],
        );
        assert!(e.unwrap_err().contains("empty"));
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
            ("[media]\nstore = \"s3\"\n", "media.s3.bucket"),
            (
                "[commands.upgrade]\npackage_bytes = 2000\n",
                "commands.upgrade.package_bytes",
            ),
            (
                &format!("[gbt32960.security]\nkeys_dir = {missing:?}\n"),
                "gbt32960.security.keys_dir",
            ),
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
    fn extra_listeners_take_the_protocol_table_and_override_keys() {
        let c: Config = toml::from_str(
            "[jt808]\nheartbeat_s = 90\n\
             [[jt808.listeners]]\nname = \"model-x\"\nlisten = \"127.0.0.1:7808\"\nmax_connections = 5\n\
             [jt808.listeners.auth]\nmode = \"http\"\nhttp.url = \"http://127.0.0.1:1/auth\"\n\
             [[jt808.listeners]]\nname = \"legacy\"\nlisten = \"127.0.0.1:6809\"\nheartbeat_s = 30\n\
             [[gbt32960.listeners]]\nname = \"ev\"\nlisten = \"off\"\n",
        )
        .unwrap();
        c.check().unwrap();
        let ls = c.vehicle_listeners().unwrap();
        let names: Vec<_> = ls
            .iter()
            .map(|l| (l.name.as_str(), l.key.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("jt808", "jt808"),
                ("model-x", "jt808.listeners[0]"),
                ("legacy", "jt808.listeners[1]"),
                ("gbt32960", "gbt32960"),
                ("ev", "gbt32960.listeners[0]"),
            ]
        );
        let ListenerKind::Jt808(x) = &ls[1].kind else {
            panic!("jt808")
        };
        assert_eq!(x.heartbeat_s, 90, "inherited from [jt808]");
        assert_eq!(x.max_connections, 5);
        assert_eq!(x.auth.mode, AuthMode::Http);
        assert_eq!(x.listen.addr().unwrap().port(), 7808);
        let ListenerKind::Jt808(legacy) = &ls[2].kind else {
            panic!("jt808")
        };
        assert_eq!(legacy.heartbeat_s, 30);
        assert_eq!(legacy.auth.mode, AuthMode::Open, "[jt808]'s auth");
        assert_eq!(ls[4].listen(), Listen::Off);
    }

    #[test]
    fn a_bad_extra_listener_is_refused_naming_its_key() {
        for (text, key) in [
            (
                "[[jt808.listeners]]\nlisten = \"127.0.0.1:0\"\n",
                "jt808.listeners[0].name",
            ),
            (
                "[[jt808.listeners]]\nname = \"a\"\n",
                "jt808.listeners[0].listen",
            ),
            (
                "[[jt808.listeners]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\n\
                 [[jt808.listeners]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\n",
                "jt808.listeners[1].name",
            ),
            (
                "[[gbt32960.listeners]]\nname = \"jt808\"\nlisten = \"127.0.0.1:0\"\n",
                "gbt32960.listeners[0].name",
            ),
            (
                "[[gbt32960.listeners]]\nname = \"x y\"\nlisten = \"127.0.0.1:0\"\n",
                "gbt32960.listeners[0].name",
            ),
            (
                "[[gbt32960.listeners]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\nheartbeat_s = \"x\"\n",
                "gbt32960.listeners[0].heartbeat_s",
            ),
            (
                "[[jt808.listeners]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\ndevice_tz = \"CST\"\n",
                "jt808.listeners[0].device_tz",
            ),
            (
                "[jt808.auth]\nmode = \"certificate\"\n",
                "jt808.auth.mode",
            ),
        ] {
            assert_eq!(key_refused(text), key, "{text}");
        }
        let c: Config = toml::from_str(
            "[[jt808.listeners]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\nlisten_port = 1\n",
        )
        .unwrap();
        let e = c.check().unwrap_err();
        assert!(
            e.key.starts_with("jt808.listeners[0]") && e.reason.contains("listen_port"),
            "{e}"
        );
    }

    #[test]
    fn tls_files_are_read_by_the_check_naming_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem").display().to_string();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let junk = junk.display().to_string();
        for (text, key, file) in [
            (
                format!("[jt808.tls]\ncert_file = {missing:?}\nkey_file = {missing:?}\n"),
                "jt808.tls.cert_file",
                &missing,
            ),
            (
                format!("[raw_placeholder]\n[[gbt32960.listeners]]\nname = \"ev\"\nlisten = \"127.0.0.1:0\"\ntls = {{ cert_file = {junk:?}, key_file = {junk:?} }}\n"),
                "gbt32960.listeners[0].tls.cert_file",
                &junk,
            ),
        ] {
            let text = text.replace("[raw_placeholder]\n", "");
            let c: Config = toml::from_str(&text).unwrap();
            let e = c.check().unwrap_err();
            assert_eq!(e.key, key, "{text}");
            assert!(e.reason.contains(file.as_str()), "{e}");
        }
        let c: Config = toml::from_str(&format!(
            "[jt808.tls]\ncert_file = {missing:?}\nkey_file = {missing:?}\nidentity = \"cn\"\n"
        ))
        .unwrap();
        assert_eq!(c.check().unwrap_err().key, "jt808.tls.identity");
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
}
