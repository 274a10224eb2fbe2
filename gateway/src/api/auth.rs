//! Bearer tokens of the operator API (contract §6).
//!
//! Tokens come from `VGATE_HTTP_TOKEN` (`[http] token`: read-write) and `[http] tokens_file`:
//! one token per line, `ro:TOKEN` for a read-only one, `#` comments and blank lines skipped.
//! With no token at all every call is allowed (the configuration check keeps such an API on
//! loopback). A call without a known token is 401; a read-only token on anything but
//! GET/HEAD is 403. Tokens are compared in time independent of their content and never
//! logged.

use std::collections::HashSet;
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::auth::same_secret;
use crate::config::HttpConfig;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// The tokens in force.
#[derive(Default, PartialEq, Eq)]
pub struct Tokens {
    read_write: HashSet<String>,
    read_only: HashSet<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("read_write", &self.read_write.len())
            .field("read_only", &self.read_only.len())
            .finish()
    }
}

impl Tokens {
    /// The tokens of `cfg`: its `token` and its `tokens_file`. The error names the file.
    pub fn load(cfg: &HttpConfig) -> Result<Tokens, String> {
        let mut t = match &cfg.tokens_file {
            Some(path) => Tokens::read_file(path)?,
            None => Tokens::default(),
        };
        if let Some(token) = cfg.token.as_deref().filter(|t| !t.is_empty()) {
            t.read_write.insert(token.to_owned());
        }
        Ok(t)
    }

    /// Reads a tokens file: at least one token.
    pub fn read_file(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let t = Tokens::parse(&text);
        if t.is_empty() {
            return Err(format!("{}: holds no token", path.display()));
        }
        Ok(t)
    }

    /// One token per line; `ro:` marks a read-only one.
    pub fn parse(text: &str) -> Tokens {
        let mut t = Tokens::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.strip_prefix("ro:") {
                Some(ro) if !ro.trim().is_empty() => {
                    t.read_only.insert(ro.trim().to_owned());
                }
                Some(_) => {}
                None => {
                    t.read_write.insert(line.to_owned());
                }
            }
        }
        t
    }

    /// Whether no token is configured (the API is open).
    pub fn is_empty(&self) -> bool {
        self.read_write.is_empty() && self.read_only.is_empty()
    }

    /// What `token` may do, if it is one of ours.
    pub fn access(&self, token: &str) -> Option<Access> {
        // Every token is compared (no early exit), each in time independent of its content.
        let rw = self
            .read_write
            .iter()
            .fold(false, |a, t| a | same_secret(t, token));
        let ro = self
            .read_only
            .iter()
            .fold(false, |a, t| a | same_secret(t, token));
        if rw {
            Some(Access::ReadWrite)
        } else if ro {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }
}

/// The middleware in front of `/api/`: 401 without a known token, 403 for a read-only token
/// on a write.
pub async fn require_token(State(api): State<super::State>, req: Request, next: Next) -> Response {
    let tokens = api.tokens();
    if tokens.is_empty() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        metrics::counter!("vgate_http_refused_total", "reason" => "no_token").increment(1);
        return unauthorized("a bearer token is required (Authorization: Bearer <token>)");
    };
    match tokens.access(given) {
        None => {
            metrics::counter!("vgate_http_refused_total", "reason" => "bad_token").increment(1);
            unauthorized("unknown token")
        }
        Some(Access::ReadOnly) if !matches!(*req.method(), Method::GET | Method::HEAD) => {
            metrics::counter!("vgate_http_refused_total", "reason" => "read_only").increment(1);
            ApiError::new(
                StatusCode::FORBIDDEN,
                "this token is read-only: it cannot change anything",
            )
            .into_response()
        }
        Some(_) => next.run(req).await,
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_lines_are_read_write_or_read_only() {
        let t = Tokens::parse("# admins\nadmin-1\n\n  ro:viewer-1 \nro:\n");
        assert_eq!(t.access("admin-1"), Some(Access::ReadWrite));
        assert_eq!(t.access("viewer-1"), Some(Access::ReadOnly));
        assert_eq!(t.access("ro:viewer-1"), None);
        assert_eq!(t.access("admin-2"), None);
        assert_eq!(t.access(""), None);
        assert!(!t.is_empty());
        assert!(Tokens::parse("# none\n").is_empty());
    }

    #[test]
    fn tokens_never_show_in_debug() {
        let t = Tokens::parse("s3cret\nro:v1ewer\n");
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("v1ewer"),
            "{shown}"
        );
    }
}
