//! `cmd_result.data`: progress and outcome of a downstream command (contract §4).

use serde::Serialize;

/// Where a command is: `queued`, `sent`, then exactly one of the final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CmdStatus {
    Queued,
    Sent,
    Acked,
    Failed,
    Expired,
    Rejected,
    /// Withdrawn through the operator API before delivery.
    Cancelled,
}

impl CmdStatus {
    /// Whether no further status follows.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CmdStatus::Acked
                | CmdStatus::Failed
                | CmdStatus::Expired
                | CmdStatus::Rejected
                | CmdStatus::Cancelled
        )
    }
}

/// `{"id": "c-123", "status": "acked", "reason": null, "response": {..}}`; an upgrade's
/// `sent` results add `"progress_pct": 40`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CmdResult {
    pub id: String,
    pub status: CmdStatus,
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
    /// How much of a long transfer (an `upgrade`'s package) the vehicle has taken, on its
    /// `sent` results; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_pct: Option<u8>,
}
