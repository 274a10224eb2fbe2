//! Log set-up for `vgate run`: the filter (`VGATE_LOG` or `log` in the config file), the
//! embedded broker's own log lines, and colours.
//!
//! - The filter has RUST_LOG's syntax, with one restriction: a directive is a level (`info`)
//!   or `target=level` (`gateway=debug`). tracing's bare `target` form (every level of that
//!   target, nothing else) is refused: a mistyped level such as `VGATE_LOG=notalevel` would
//!   otherwise parse as a target and silently turn off every log line. [`check_filter`] is the
//!   check; `vgate run` refuses a bad filter with exit status 2.
//! - rumqttd (the embedded broker) logs every client connection at INFO and every clean
//!   disconnect as ERRORs. Unless the filter names `rumqttd` itself, its lines are shown only
//!   when the filter's level is `debug` or `trace` ([`effective_filter`]).
//! - Colours only when stderr is a terminal and `NO_COLOR` is unset or empty
//!   (<https://no-color.org>), so a redirected log holds no escape codes ([`use_colour`]).
//! - `log_format = "json"` (`VGATE_LOG_FORMAT=json`) writes one JSON object per line for log
//!   shippers ([`LogFormat`]); the filter and its reload are the same.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The filter when neither `VGATE_LOG` nor the config file sets one.
pub const DEFAULT_FILTER: &str = "info";

/// Why a log filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Nothing but spaces and commas.
    #[error("the log filter is empty (expected a level such as \"info\")")]
    Empty,
    /// A directive with no `=` that is not a level.
    #[error(
        "{directive:?} is not a level (off, error, warn, info, debug, trace) nor target=level"
    )]
    NotALevel { directive: String },
    /// tracing's parser refused it (a bad level after `=`, a bad span or field filter).
    #[error("{directive:?}: {reason}")]
    Invalid { directive: String, reason: String },
}

/// Checks a log filter (RUST_LOG syntax, each directive a level or `target=level`).
///
/// `vgate run` calls it on the filter in force; the configuration's validation can call it
/// on `log` too.
pub fn check_filter(filter: &str) -> Result<(), FilterError> {
    let directives = directives(filter);
    if directives.is_empty() {
        return Err(FilterError::Empty);
    }
    for d in directives {
        if !has_level_part(d) && LevelFilter::from_str(d).is_err() {
            return Err(FilterError::NotALevel {
                directive: d.to_owned(),
            });
        }
        if let Err(e) = EnvFilter::builder().parse(d) {
            return Err(FilterError::Invalid {
                directive: d.to_owned(),
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}

/// The filter vgate installs for `filter` (already checked): `filter` itself, plus
/// `rumqttd=off` unless it names rumqttd or its level is `debug` or `trace`.
pub fn effective_filter(filter: &str) -> String {
    let directives = directives(filter);
    let names_rumqttd = directives.iter().any(|d| d.starts_with("rumqttd"));
    let verbose = directives
        .iter()
        .any(|d| LevelFilter::from_str(d).is_ok_and(|level| level >= LevelFilter::DEBUG));
    if names_rumqttd || verbose {
        directives.join(",")
    } else {
        let mut all = directives;
        all.push("rumqttd=off");
        all.join(",")
    }
}

/// Whether log lines get ANSI colours: only on a terminal, and not with `NO_COLOR` set to
/// anything but the empty string.
pub fn use_colour(no_color: Option<&OsStr>, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && !matches!(no_color, Some(v) if !v.is_empty())
}

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One line of text per event, for people (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log shippers: `timestamp`, `level`, `target`,
    /// `message` and the event's fields at the top level, the spans in `spans`.
    Json,
}

/// Installs the global subscriber: `filter` (checked first) to stderr, as `format`.
pub fn init(filter: &str, format: LogFormat) -> Result<(), FilterError> {
    check_filter(filter)?;
    let env_filter = EnvFilter::builder()
        .parse(effective_filter(filter))
        .map_err(|e| FilterError::Invalid {
            directive: filter.to_owned(),
            reason: e.to_string(),
        })?;
    let ansi = use_colour(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stderr().is_terminal(),
    );
    // The two formats are two builder types: one body for both. A subscriber already
    // installed (a test harness) is kept.
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder
                .with_env_filter(env_filter)
                .with_writer(std::io::stderr)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = RELOAD.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }};
    }
    match format {
        LogFormat::Text => install!(tracing_subscriber::fmt().with_ansi(ansi)),
        LogFormat::Json => install!(tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)),
    }
    Ok(())
}

/// Swaps the filter of the subscriber [`init`] installed.
type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static RELOAD: std::sync::OnceLock<Reload> = std::sync::OnceLock::new();

/// Replaces the running log filter with `filter` (checked as [`init`] checks it): the
/// operator API's reload. An error when no subscriber of [`init`] is installed.
pub fn reload_filter(filter: &str) -> Result<(), FilterError> {
    check_filter(filter)?;
    let invalid = |reason: String| FilterError::Invalid {
        directive: filter.to_owned(),
        reason,
    };
    let env_filter = EnvFilter::builder()
        .parse(effective_filter(filter))
        .map_err(|e| invalid(e.to_string()))?;
    let reload = RELOAD
        .get()
        .ok_or_else(|| invalid("no reloadable log subscriber installed".to_owned()))?;
    reload(env_filter).map_err(invalid)
}

/// The non-empty directives of `filter`, trimmed (split at every comma, as tracing does).
fn directives(filter: &str) -> Vec<&str> {
    filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect()
}

/// Whether a directive sets its level after an `=` outside any `[...]` (a span's field
/// filter, `target[span{field=value}]=level`, has its own).
fn has_level_part(directive: &str) -> bool {
    let mut depth = 0usize;
    for c in directive.chars() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            '=' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_target_levels_are_accepted() {
        for ok in [
            "info",
            "warn",
            "OFF",
            "debug,rumqttd=warn",
            "info,gateway=debug,mqtt_bridge::relay=trace",
            " info , gateway=debug ",
            "info,gateway[session{vehicle_id=1}]=debug",
        ] {
            assert_eq!(check_filter(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_word_that_is_not_a_level_is_refused_rather_than_read_as_a_target() {
        assert_eq!(
            check_filter("notalevel"),
            Err(FilterError::NotALevel {
                directive: "notalevel".into()
            })
        );
        assert!(matches!(
            check_filter("warn,gateway"),
            Err(FilterError::NotALevel { .. })
        ));
    }

    #[test]
    fn a_bad_level_after_the_target_and_an_empty_filter_are_refused() {
        assert!(matches!(
            check_filter("gateway=loud"),
            Err(FilterError::Invalid { .. })
        ));
        assert_eq!(check_filter(""), Err(FilterError::Empty));
        assert_eq!(check_filter(" , "), Err(FilterError::Empty));
    }

    #[test]
    fn rumqttd_is_silenced_below_debug_unless_the_filter_names_it() {
        assert_eq!(effective_filter("info"), "info,rumqttd=off");
        assert_eq!(effective_filter("warn"), "warn,rumqttd=off");
        assert_eq!(
            effective_filter("info,gateway=debug"),
            "info,gateway=debug,rumqttd=off"
        );
        assert_eq!(effective_filter("debug"), "debug");
        assert_eq!(effective_filter("trace,gateway=info"), "trace,gateway=info");
        assert_eq!(effective_filter("info,rumqttd=info"), "info,rumqttd=info");
        assert_eq!(
            effective_filter("warn,rumqttd::router=debug"),
            "warn,rumqttd::router=debug"
        );
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_colour(None, true));
        assert!(!use_colour(None, false));
        assert!(!use_colour(Some(OsStr::new("1")), true));
        assert!(use_colour(Some(OsStr::new("")), true));
        assert!(!use_colour(Some(OsStr::new("")), false));
    }
}
