//! How a listener authenticates vehicles: the `auth` table of `[jt808]`, `[gbt32960]` and
//! each `[[raw]]` listener. It lives with the authenticator it configures; `crate::config`
//! re-exports it and checks it (the allowlist file parses, the hook URL is valid).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// The client certificate alone: mutual TLS with `identity = "cn"` or `"san"` on the
    /// listener (the configuration check requires it), so a vehicle that got past the
    /// handshake and claims the id its certificate names is accepted (no allowlist, no auth
    /// code registry). JT/T 808 terminals still register and authenticate: the code is
    /// issued, and not what decides.
    Certificate,
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
