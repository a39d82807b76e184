//! Sources (what Hark listens to) and their polling cursors.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Interval, Platform, SecretRef};

/// One thing Hark polls: a hashtag on an instance, a search, a feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub platform: Platform,
    /// API base URL (instance, API host or a fake server in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Feed URL (RSS/Atom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What to search for, in the campaign query language or the platform's own terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// How often to poll.
    #[serde(default = "default_every")]
    pub every: Interval,
    /// Credentials when the platform needs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretRef>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_every() -> Interval {
    Interval::from_mins(5)
}

fn yes() -> bool {
    true
}

/// Where a source's polling stands. Written with optimistic locking on `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub source_id: String,
    /// The platform position (newest id, timestamp or fullname) up to which items were queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_at: Option<Timestamp>,
    /// Grows with consecutive failures (backoff); reset on success.
    #[serde(default)]
    pub failure_weight: u32,
    /// 0 for a cursor that was never stored; the store increments it on every write.
    #[serde(default)]
    pub version: u64,
}

impl Cursor {
    /// A cursor for a source that was never polled.
    pub fn new(source_id: impl Into<String>) -> Self {
        Cursor {
            source_id: source_id.into(),
            position: None,
            etag: None,
            last_modified: None,
            next_poll_at: None,
            failure_weight: 0,
            version: 0,
        }
    }
}
