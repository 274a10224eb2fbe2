//! `status.data`: a vehicle's presence, published retained on `{p}/v1/{vid}/status`.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::Protocol;

/// Why the presence changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceReason {
    Login,
    Logout,
    Timeout,
    Takeover,
    Error,
    Shutdown,
    Closed,
    /// Closed by an operator (`DELETE /api/v1/vehicles/{vid}/connection`).
    Kicked,
    /// The gateway that held it was killed and restarted, and the vehicle did not come back
    /// within the grace period (published by the restarted gateway).
    GatewayRestart,
    /// The node that held it died (cluster mode), and the vehicle did not come back within
    /// its presence TTL (published by a surviving node).
    NodeDown,
}

/// `{"online": true, "reason": "login", "protocol": "jt808-2013", "peer": "1.2.3.4:5", "since": ".."}`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Presence {
    pub online: bool,
    pub reason: PresenceReason,
    pub protocol: Protocol,
    pub peer: Option<String>,
    #[serde(serialize_with = "millis")]
    pub since: DateTime<Utc>,
}

fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
}
