//! The HTTP authentication hook: decisions asked of the TSP's own vehicle database.
//!
//! A fleet platform (TSP) already knows its vehicles; rather than exporting them to a file, it
//! can answer the gateway's questions over HTTP, as EMQX's JT/T 808 gateway does with its
//! `registry` and `authentication` URLs. The gateway `POST`s one JSON object per decision to
//! `http.url` and reads one JSON object back. The full exchange is documented in `docs/auth.md`;
//! in short:
//!
//! Request (`Content-Type: application/json`), `action` tells the three apart:
//!
//! ```json
//! {"action": "register", "listener": "jt808", "phone": "013800138000", "plate": "...",
//!  "plate_color": 1, "manufacturer": "...", "model": "...", "terminal_id": "...",
//!  "province": 44, "city": 300, "peer": "10.0.0.7:50211"}
//! {"action": "authenticate", "listener": "jt808", "phone": "013800138000", "code": "...",
//!  "known_code": true, "imei": null, "peer": "..."}
//! {"action": "login", "listener": "gbt32960", "vin": "LSVAU2180N2183294", "iccid": "...", "peer": "..."}
//! ```
//!
//! (`known_code`: whether `code` is the one this gateway issued to or stored for the phone, so
//! a hook that lets the gateway issue codes need not keep them.)
//!
//! Response, HTTP 2xx with either body style:
//!
//! * `{"result": "allow", "auth_code": "..."}` / `{"result": "deny", "reason": "..."}`;
//! * EMQX-like `{"code": 0, "authcode": "..."}` (`auth_code` also accepted) to allow, any other
//!   `code` to deny: for `register`, 1-4 are the 0x8100 results (1 vehicle already registered,
//!   2 no such vehicle, 3 terminal already registered, 4 no such terminal);
//! * an empty body allows (EMQX's `authentication` URL only looks at the status).
//!
//! `auth_code` is only meaningful for `register`; without one the gateway issues its own.
//! HTTP 4xx denies (reason `http_<status>`). Connection failures, timeouts
//! (`http.timeout_ms` per attempt) and 5xx are retried `http.retries` times with a short
//! backoff; if every attempt fails, or the body is not one of the above, the decision is
//! [`HookAnswer::Unavailable`], which the facade turns into a deny with reason
//! `auth_unavailable`: an unreachable database must not open the gateway.
//!
//! Only `http://` URLs are supported (no TLS stack is built in): run the hook next to the
//! gateway or behind a local TLS-terminating proxy.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tracing::warn;

use super::config::HttpAuthConfig;

/// The longest hook answer read; anything longer is a misbehaving hook.
const MAX_BODY: usize = 64 * 1024;

/// The first retry waits this long, each further one twice as long.
const BACKOFF_START: Duration = Duration::from_millis(100);

/// Errors constructing the hook client.
#[derive(Debug, thiserror::Error)]
pub enum HookConfigError {
    /// `http.url` does not parse.
    #[error("http.url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

/// What the hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    /// Allowed; for `register`, possibly with the auth code the TSP wants the terminal to use.
    Allow { auth_code: Option<String> },
    /// Denied, with the hook's reason (snake_case names are documented in `docs/auth.md`).
    Deny { reason: String },
    /// No usable answer after every attempt; the string says why (for the log).
    Unavailable(String),
}

/// The hook's answer body.
#[derive(Debug, Deserialize)]
struct AnswerBody {
    result: Option<String>,
    reason: Option<String>,
    code: Option<i64>,
    auth_code: Option<String>,
    authcode: Option<String>,
}

/// The 0x8100 result names used as deny reasons for EMQX-style numeric codes.
pub fn register_code_reason(code: i64) -> String {
    match code {
        1 => "vehicle_already_registered".to_owned(),
        2 => "no_such_vehicle".to_owned(),
        3 => "terminal_already_registered".to_owned(),
        4 => "no_such_terminal".to_owned(),
        other => format!("code_{other}"),
    }
}

/// Interprets one 2xx body (see the module documentation).
fn interpret(body: &[u8]) -> Result<HookAnswer, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HookAnswer::Allow { auth_code: None });
    }
    let a: AnswerBody = serde_json::from_slice(body)
        .map_err(|e| format!("answer is not the documented JSON: {e}"))?;
    let auth_code = a.auth_code.or(a.authcode).filter(|c| !c.is_empty());
    match (a.result.as_deref(), a.code) {
        (Some("allow"), _) => Ok(HookAnswer::Allow { auth_code }),
        (Some("deny"), _) => Ok(HookAnswer::Deny {
            reason: a.reason.unwrap_or_else(|| "denied".to_owned()),
        }),
        (Some(other), _) => Err(format!(
            "answer has result {other:?}, expected \"allow\" or \"deny\""
        )),
        (None, Some(0)) => Ok(HookAnswer::Allow { auth_code }),
        (None, Some(code)) => Ok(HookAnswer::Deny {
            reason: a.reason.unwrap_or_else(|| register_code_reason(code)),
        }),
        (None, None) => Err("answer has neither `result` nor `code`".to_owned()),
    }
}

/// Checks a hook URL: `http://host[:port]/path`. `https` is refused (no TLS stack in the
/// hook client); the configuration check (`vgate config --check`) and [`Hook::new`] both
/// use this.
pub fn parse_url(url: &str) -> Result<Uri, HookConfigError> {
    let bad = |reason: &str| HookConfigError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported; use http to a local hook or a local TLS proxy",
            ))
        }
        _ => return Err(bad("expected an http:// URL")),
    }
    if uri.host().is_none() {
        return Err(bad("no host"));
    }
    Ok(uri)
}

/// The client of one listener's hook.
#[derive(Debug, Clone)]
pub struct Hook {
    url: Uri,
    timeout: Duration,
    retries: u32,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Why one attempt failed.
enum Attempt {
    /// Worth another try (connection, timeout, 5xx).
    Retry(String),
    /// Final.
    Done(HookAnswer),
}

impl Hook {
    /// A client for `cfg.url` (must be `http://host[:port]/path`, [`parse_url`]).
    pub fn new(cfg: &HttpAuthConfig) -> Result<Hook, HookConfigError> {
        let url = parse_url(&cfg.url)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        Ok(Hook {
            url,
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
            retries: cfg.retries,
            client,
        })
    }

    /// Asks the hook about `request` (a JSON object; see the module documentation).
    pub async fn ask(&self, request: &serde_json::Value) -> HookAnswer {
        let body = match serde_json::to_vec(request) {
            Ok(b) => Bytes::from(b),
            Err(e) => return HookAnswer::Unavailable(format!("encoding the request: {e}")),
        };
        let mut backoff = BACKOFF_START;
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            match self.attempt(body.clone()).await {
                Attempt::Done(answer) => return answer,
                Attempt::Retry(why) => {
                    warn!(url = %self.url, attempt = attempt + 1, of = self.retries + 1, error = %why, "auth hook attempt failed");
                    last = why;
                }
            }
        }
        HookAnswer::Unavailable(last)
    }

    async fn attempt(&self, body: Bytes) -> Attempt {
        let req = match Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(body))
        {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Done(HookAnswer::Unavailable(format!(
                    "building the request: {e}"
                )))
            }
        };
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Attempt::Retry(format!("no answer within {} ms", self.timeout.as_millis()))
            }
            Ok(Err(e)) => return Attempt::Retry(e),
            Ok(Ok(x)) => x,
        };
        if status.is_server_error() {
            return Attempt::Retry(format!("HTTP {status}"));
        }
        if status.is_client_error() {
            return Attempt::Done(HookAnswer::Deny {
                reason: format!("http_{}", status.as_u16()),
            });
        }
        if !status.is_success() {
            return Attempt::Done(HookAnswer::Unavailable(format!("unexpected HTTP {status}")));
        }
        match interpret(&body) {
            Ok(a) => Attempt::Done(a),
            Err(e) => Attempt::Done(HookAnswer::Unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answer_styles() {
        assert_eq!(
            interpret(br#"{"result":"allow","auth_code":"A1"}"#),
            Ok(HookAnswer::Allow {
                auth_code: Some("A1".into())
            })
        );
        assert_eq!(
            interpret(br#"{"result":"deny","reason":"stolen"}"#),
            Ok(HookAnswer::Deny {
                reason: "stolen".into()
            })
        );
        assert_eq!(
            interpret(br#"{"code":0,"authcode":"B2"}"#),
            Ok(HookAnswer::Allow {
                auth_code: Some("B2".into())
            })
        );
        assert_eq!(
            interpret(br#"{"code":4}"#),
            Ok(HookAnswer::Deny {
                reason: "no_such_terminal".into()
            })
        );
        assert_eq!(interpret(b""), Ok(HookAnswer::Allow { auth_code: None }));
        assert!(interpret(br#"{"result":"maybe"}"#).is_err());
        assert!(interpret(br#"{"other":1}"#).is_err());
        assert!(interpret(b"<html>").is_err());
    }

    #[test]
    fn only_http_urls() {
        let cfg = |url: &str| HttpAuthConfig {
            url: url.to_owned(),
            ..HttpAuthConfig::default()
        };
        assert!(Hook::new(&cfg("http://127.0.0.1:8080/auth")).is_ok());
        assert!(Hook::new(&cfg("https://tsp.example/auth")).is_err());
        assert!(Hook::new(&cfg("not a url")).is_err());
        assert!(Hook::new(&cfg("/auth")).is_err());
    }
}
