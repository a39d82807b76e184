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
    /// The account the source reads as or about, when the platform needs one: the Bluesky
    /// handle that logs in, the Facebook page id, the YouTube channel id (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
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
    /// How polling this source has been going (backoff, auto-disable, silence).
    #[serde(default)]
    pub health: SourceHealth,
    /// 0 for a cursor that was never stored; the store increments it on every write.
    #[serde(default)]
    pub version: u64,
}

/// Polling health of one source, kept with its cursor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceHealth {
    /// Failed polls in a row (0 after a success).
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<Timestamp>,
    /// When the last poll that found something ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_item_at: Option<Timestamp>,
    /// Smoothed gap between polls that found items (seconds): what "usual" means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usual_gap_secs: Option<u64>,
    /// Set once the silence was reported, cleared when items arrive again.
    #[serde(default)]
    pub silence_reported: bool,
    /// Set when repeated permanent failures disabled polling; `hark` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Disabled>,
}

/// Why and when polling of a source was switched off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    pub at: Timestamp,
    pub reason: String,
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
            health: SourceHealth::default(),
            version: 0,
        }
    }
}
