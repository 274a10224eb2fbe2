//! `lifecycle.data`: a vehicle registered, authenticated, logged in or out, was rejected,
//! or was taken over by a newer connection.

use serde::Serialize;

/// What happened (`event` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleKind {
    Register,
    Authenticate,
    Login,
    Logout,
    Rejected,
    Takeover,
    PlatformLogin,
    PlatformLogout,
}

/// A lifecycle event: `{"event": "register", "reason": ..., <protocol fields>}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lifecycle {
    pub event: LifecycleKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Protocol-specific fields (plate, manufacturer, terminal model, ICCID...), flattened.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Lifecycle {
    /// A lifecycle event with no reason and no fields.
    pub fn new(event: LifecycleKind) -> Self {
        Lifecycle {
            event,
            reason: None,
            fields: serde_json::Map::new(),
        }
    }

    /// Adds a protocol field.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// Sets the reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}
