//! Messages of the listening pipeline (their JSON is the queue contract).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::Mention;

/// Poll queue message: poll this source now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollJob {
    pub source_id: String,
    /// The tick that scheduled it (for logs and latency).
    pub scheduled_at: Timestamp,
}

/// Mentions queue message: mentions found by one poll. Several mentions share a message
/// (up to ~64 KiB, SQS's billing unit) so queueing costs stay low.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MentionBatch {
    pub source_id: String,
    pub mentions: Vec<Mention>,
}
