//! Who may connect: the authentication of one listener, behind one small facade.
//!
//! Each listener (JT/T 808, GB/T 32960) has an [`AuthConfig`] with one of three modes:
//!
//! * `open`: anyone may register and log in. Convenient for a first test, dangerous on the
//!   internet, so construction logs a warning saying so.
//! * `allowlist`: only ids listed in a file (JT/T 808 phone numbers, GB/T 32960 VINs), which
//!   may carry a fixed JT/T 808 auth code for terminals that never register ([`allowlist`]).
//! * `http`: every decision is asked of the TSP's own vehicle database over HTTP ([`http`]),
//!   so the gateway needs no copy of it.
//!
//! JT/T 808 has a two-step identity (protocol notes §7): a terminal registers once (0x0100)
//! and receives an auth code (0x8100), then presents that code at every connection (0x0102).
//! The gateway issues random codes and keeps them, bound to the phone number, in the data
//! directory ([`codes`]) so they survive restarts. A code is accepted when it matches the
//! phone's stored code or its allowlist fixed code (or, in `http` mode, when the hook says
//! so). In `open` mode a terminal that authenticates without having registered here (the
//! gateway's data directory was wiped, or it moved from another platform) is trusted on first
//! use: its code is stored and must match from then on; a terminal with a wrong code recovers
//! by registering again, which hands it its stored code.
//!
//! GB/T 32960 vehicle login (0x01) carries no secret: it is allowed by membership (allowlist)
//! or by the hook.
//!
//! Every decision is logged (`listener`, `action`, `vehicle_id`, `peer`, `result`, `reason`;
//! never an auth code, see [`codes::Redacted`]) and counted in
//! `vgate_auth_decisions_total{listener,action,result,reason}`.
//!
//! Mapping of denials to the JT/T 808 answers (the session layer sends them): a register
//! denial is answered 0x8100 with [`DenyReason::jt808_register_result`] (0 ok, 1 vehicle
//! already registered, 2 no such vehicle in database, 3 terminal already registered, 4 no such
//! terminal in database); an authentication denial is answered 0x8001 with result 1
//! (failure).

pub mod allowlist;
pub mod codes;
pub mod config;
pub mod http;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use serde::Serialize;
use serde_json::json;
use tracing::{error, info, warn};

use allowlist::Allowlist;
use codes::{CodeStore, Redacted};
use config::{AuthConfig, AuthMode};
use http::{Hook, HookAnswer};

/// A JT/T 808 terminal registration (0x0100), as the hook receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterRequest {
    /// The terminal's phone number (header), the vehicle id.
    pub phone: String,
    /// Plate, or VIN when `plate_color` is 0.
    pub plate: String,
    /// Plate colour (JT/T 697.7).
    pub plate_color: u8,
    pub manufacturer: String,
    pub model: String,
    pub terminal_id: String,
    pub province: u16,
    pub city: u16,
    /// The remote address, for logs and the hook.
    pub peer: String,
}

/// Why a vehicle was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// Not in the allowlist.
    NotAllowed,
    /// The auth code matches neither the stored nor the fixed code.
    BadCode,
    /// Allowlisted without a fixed code, and never registered here: no code to compare with.
    NotRegistered,
    /// The HTTP hook said no, with its reason.
    HookDenied(String),
    /// The HTTP hook could not be asked (down, timed out after the retries, unusable answer).
    Unavailable,
    /// A new auth code could not be persisted in the data directory.
    StoreFailed,
    /// Banned by an operator for a while ([`crate::bans`]).
    Banned,
}

impl DenyReason {
    /// A fixed snake_case name, for metrics labels and `rejected` lifecycle events.
    pub fn as_str(&self) -> &'static str {
        match self {
            DenyReason::NotAllowed => "not_allowed",
            DenyReason::BadCode => "bad_code",
            DenyReason::NotRegistered => "not_registered",
            DenyReason::HookDenied(_) => "hook_denied",
            DenyReason::Unavailable => "auth_unavailable",
            DenyReason::StoreFailed => "auth_store_failed",
            DenyReason::Banned => "banned",
        }
    }

    /// The 0x8100 result for a refused registration.
    ///
    /// A hook may choose the answer with the reasons `vehicle_already_registered` (1),
    /// `no_such_vehicle` (2), `terminal_already_registered` (3) or `no_such_terminal` (4), or
    /// EMQX-style numeric codes, which arrive as those names. Everything else is 4 "no such
    /// terminal in database": the gateway's lists are keyed by the terminal's phone number,
    /// and the standard has no "try again later" answer.
    pub fn jt808_register_result(&self) -> u8 {
        match self {
            DenyReason::HookDenied(r) => match r.as_str() {
                "vehicle_already_registered" => 1,
                "no_such_vehicle" => 2,
                "terminal_already_registered" => 3,
                _ => 4,
            },
            _ => 4,
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::HookDenied(r) => write!(f, "hook_denied: {r}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The outcome of one authentication question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; for a JT/T 808 registration, the auth code to answer with (always `Some`
    /// from [`Authenticator::register`]).
    Allow { auth_code: Option<String> },
    /// Refuse.
    Deny { reason: DenyReason },
}

impl Decision {
    fn deny(reason: DenyReason) -> Decision {
        Decision::Deny { reason }
    }

    /// Whether the vehicle may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

enum Policy {
    Open,
    /// The client certificate decides (checked by the session against the claimed id).
    Certificate,
    Allowlist(Allowlist),
    Http(Box<Hook>),
}

struct Inner {
    listener: &'static str,
    policy: Policy,
    codes: CodeStore,
}

/// The authentication of one listener. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.inner.policy {
            Policy::Open => "open",
            Policy::Certificate => "certificate",
            Policy::Allowlist(_) => "allowlist",
            Policy::Http(_) => "http",
        };
        f.debug_struct("Authenticator")
            .field("listener", &self.inner.listener)
            .field("mode", &mode)
            .finish()
    }
}

/// What a JT/T 808 terminal authenticates with (0x0102), and from where.
struct Credentials<'a> {
    phone: &'a str,
    code: &'a str,
    imei: Option<&'a str>,
    peer: &'a str,
}

/// A refusal when an operator has banned `vehicle` ([`crate::bans`]).
fn banned(vehicle: &str) -> Option<Decision> {
    crate::bans::is_banned(vehicle).then(|| Decision::deny(DenyReason::Banned))
}

/// Compares two secrets (auth codes, API tokens) in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Authenticator {
    /// Builds the authenticator of `listener` (`"jt808"`, `"gbt32960"`): loads the allowlist
    /// or checks the hook URL, and loads the auth codes kept in
    /// `data_dir/auth-codes-<listener>.json`.
    pub async fn new(
        listener: &'static str,
        cfg: &AuthConfig,
        data_dir: &Path,
    ) -> anyhow::Result<Authenticator> {
        Self::new_shared(listener, cfg, data_dir, None).await
    }

    /// [`new`](Self::new), with the auth codes shared through Redis in cluster mode
    /// ([`crate::cluster::codes`]; the file in `data_dir` stays the local copy).
    pub async fn new_shared(
        listener: &'static str,
        cfg: &AuthConfig,
        data_dir: &Path,
        shared: Option<crate::cluster::codes::RedisCodes>,
    ) -> anyhow::Result<Authenticator> {
        let policy = match cfg.mode {
            AuthMode::Open => {
                let who = if listener == "jt808" {
                    "any terminal may register"
                } else {
                    "any vehicle may log in"
                };
                warn!(listener, "{listener} listener is open: {who}");
                Policy::Open
            }
            AuthMode::Allowlist => {
                let path = cfg
                    .allowlist_file
                    .clone()
                    .ok_or_else(|| anyhow!("allowlist_file: required in allowlist mode"))?;
                Policy::Allowlist(Allowlist::load(path).await?)
            }
            AuthMode::Http => Policy::Http(Box::new(Hook::new(&cfg.http)?)),
            AuthMode::Certificate => Policy::Certificate,
        };
        let codes = CodeStore::open(data_dir.join(format!("auth-codes-{listener}.json")))
            .await
            .context("loading the JT/T 808 auth codes")?;
        let codes = match shared {
            Some(s) => codes.share(s),
            None => codes,
        };
        Ok(Authenticator {
            inner: Arc::new(Inner {
                listener,
                policy,
                codes,
            }),
        })
    }

    /// JT/T 808 terminal registration (0x0100). An `Allow` carries the auth code to send in
    /// 0x8100: the allowlist's fixed code, the hook's code, or the phone's stored code (issued
    /// and persisted on first registration).
    pub async fn register(&self, req: &RegisterRequest) -> Decision {
        let decide = self.decide_register(req);
        self.decided("register", &req.phone, &req.peer, decide)
            .await
    }

    /// `decide`'s decision for `vehicle` (a ban refuses without asking it), logged and
    /// counted as `action`.
    async fn decided(
        &self,
        action: &'static str,
        vehicle: &str,
        peer: &str,
        decide: impl std::future::Future<Output = Decision>,
    ) -> Decision {
        let decision = match banned(vehicle) {
            Some(d) => d,
            None => decide.await,
        };
        self.record(action, vehicle, peer, &decision);
        decision
    }

    async fn decide_register(&self, req: &RegisterRequest) -> Decision {
        match &self.inner.policy {
            Policy::Open | Policy::Certificate => self.issue(&req.phone).await,
            Policy::Allowlist(list) => {
                let entries = list.current().await;
                if !entries.contains(&req.phone) {
                    return Decision::deny(DenyReason::NotAllowed);
                }
                match entries.fixed_code(&req.phone) {
                    Some(code) => Decision::Allow {
                        auth_code: Some(code.to_owned()),
                    },
                    None => self.issue(&req.phone).await,
                }
            }
            Policy::Http(hook) => {
                let mut body = json!(req);
                if let Some(o) = body.as_object_mut() {
                    o.insert("action".into(), "register".into());
                    o.insert("listener".into(), self.inner.listener.into());
                }
                match self.ask(hook, &body, &req.phone, &req.peer).await {
                    Ok(Some(code)) => match self.inner.codes.set(&req.phone, &code).await {
                        Ok(()) => Decision::Allow {
                            auth_code: Some(code),
                        },
                        Err(e) => self.store_failed(&req.phone, &e),
                    },
                    Ok(None) => self.issue(&req.phone).await,
                    Err(reason) => Decision::deny(reason),
                }
            }
        }
    }

    /// JT/T 808 terminal authentication (0x0102) with `code`; `imei` is sent by 2019 terminals.
    pub async fn authenticate(
        &self,
        phone: &str,
        code: &str,
        imei: Option<&str>,
        peer: &str,
    ) -> Decision {
        let decide = self.decide_authenticate(Credentials {
            phone,
            code,
            imei,
            peer,
        });
        self.decided("authenticate", phone, peer, decide).await
    }

    async fn decide_authenticate(&self, c: Credentials<'_>) -> Decision {
        let Credentials {
            phone,
            code,
            imei,
            peer,
        } = c;
        if matches!(self.inner.policy, Policy::Certificate) {
            // The session checked the certificate against the phone before asking.
            return Decision::Allow { auth_code: None };
        }
        let stored = self.inner.codes.get(phone).await;
        let matches_stored = stored.as_deref().is_some_and(|s| same_secret(s, code));
        match &self.inner.policy {
            Policy::Open => {
                if stored.is_none() && !code.is_empty() {
                    // Trust on first use (see the module documentation).
                    info!(listener = self.inner.listener, vehicle_id = phone, peer, code = %Redacted(code), "unregistered terminal authenticated; keeping its code");
                    if let Err(e) = self.inner.codes.set(phone, code).await {
                        error!(listener = self.inner.listener, vehicle_id = phone, error = %e, "could not store the auth code");
                    }
                }
                if stored.is_some() && !matches_stored {
                    return Decision::deny(DenyReason::BadCode);
                }
                Decision::Allow { auth_code: None }
            }
            Policy::Allowlist(list) => {
                let entries = list.current().await;
                if !entries.contains(phone) {
                    return Decision::deny(DenyReason::NotAllowed);
                }
                let fixed = entries.fixed_code(phone);
                if matches_stored || fixed.is_some_and(|f| same_secret(f, code)) {
                    Decision::Allow { auth_code: None }
                } else if stored.is_none() && fixed.is_none() {
                    Decision::deny(DenyReason::NotRegistered)
                } else {
                    Decision::deny(DenyReason::BadCode)
                }
            }
            Policy::Certificate => Decision::Allow { auth_code: None },
            Policy::Http(hook) => {
                let body = json!({
                    "action": "authenticate",
                    "listener": self.inner.listener,
                    "phone": phone,
                    "code": code,
                    "known_code": matches_stored,
                    "imei": imei,
                    "peer": peer,
                });
                match self.ask(hook, &body, phone, peer).await {
                    Ok(_) => Decision::Allow { auth_code: None },
                    Err(reason) => Decision::deny(reason),
                }
            }
        }
    }

    /// GB/T 32960 vehicle login (0x01): no secret, so membership (allowlist) or the hook decides.
    pub async fn login(&self, vin: &str, iccid: Option<&str>, peer: &str) -> Decision {
        let decide = async {
            match &self.inner.policy {
                Policy::Open | Policy::Certificate => Decision::Allow { auth_code: None },
                Policy::Allowlist(list) => {
                    if list.current().await.contains(vin) {
                        Decision::Allow { auth_code: None }
                    } else {
                        Decision::deny(DenyReason::NotAllowed)
                    }
                }
                Policy::Http(hook) => {
                    let body = json!({"action": "login", "listener": self.inner.listener, "vin": vin, "iccid": iccid, "peer": peer});
                    match self.ask(hook, &body, vin, peer).await {
                        Ok(_) => Decision::Allow { auth_code: None },
                        Err(reason) => Decision::deny(reason),
                    }
                }
            }
        };
        self.decided("login", vin, peer, decide).await
    }

    /// The phone's stored code, or a new one issued and persisted.
    async fn issue(&self, phone: &str) -> Decision {
        match self.inner.codes.get_or_issue(phone).await {
            Ok(code) => Decision::Allow {
                auth_code: Some(code),
            },
            Err(e) => self.store_failed(phone, &e),
        }
    }

    fn store_failed(&self, phone: &str, e: &codes::CodeStoreError) -> Decision {
        error!(listener = self.inner.listener, vehicle_id = phone, error = %e, "could not persist the auth code; refusing the registration");
        Decision::deny(DenyReason::StoreFailed)
    }

    /// Asks the hook: `Ok(auth_code)` when allowed, the deny reason otherwise.
    async fn ask(
        &self,
        hook: &Hook,
        body: &serde_json::Value,
        vehicle_id: &str,
        peer: &str,
    ) -> Result<Option<String>, DenyReason> {
        match hook.ask(body).await {
            HookAnswer::Allow { auth_code } => Ok(auth_code),
            HookAnswer::Deny { reason } => Err(DenyReason::HookDenied(reason)),
            HookAnswer::Unavailable(why) => {
                error!(listener = self.inner.listener, vehicle_id, peer, error = %why, "auth hook unavailable; denying");
                Err(DenyReason::Unavailable)
            }
        }
    }

    /// Logs and counts one decision.
    fn record(&self, action: &'static str, vehicle_id: &str, peer: &str, decision: &Decision) {
        let listener = self.inner.listener;
        let (result, reason) = match decision {
            Decision::Allow { auth_code } => {
                let issued = auth_code.as_deref().map(Redacted);
                info!(listener, action, vehicle_id, peer, result = "allow", auth_code = ?issued, "auth decision");
                ("allow", "none")
            }
            Decision::Deny { reason } => {
                warn!(listener, action, vehicle_id, peer, result = "deny", reason = %reason, "auth decision");
                ("deny", reason.as_str())
            }
        };
        metrics::counter!("vgate_auth_decisions_total", "listener" => listener, "action" => action, "result" => result, "reason" => reason)
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_register_results() {
        assert_eq!(DenyReason::Unavailable.as_str(), "auth_unavailable");
        assert_eq!(DenyReason::NotAllowed.jt808_register_result(), 4);
        assert_eq!(
            DenyReason::HookDenied("vehicle_already_registered".into()).jt808_register_result(),
            1
        );
        assert_eq!(
            DenyReason::HookDenied("no_such_vehicle".into()).jt808_register_result(),
            2
        );
        assert_eq!(
            DenyReason::HookDenied("terminal_already_registered".into()).jt808_register_result(),
            3
        );
        assert_eq!(
            DenyReason::HookDenied("stolen".into()).jt808_register_result(),
            4
        );
        assert_eq!(
            DenyReason::HookDenied("stolen".into()).to_string(),
            "hook_denied: stolen"
        );
    }

    #[test]
    fn code_comparison() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(same_secret("", ""));
    }
}
