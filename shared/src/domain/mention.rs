//! A mention: one post, comment or article found on a platform.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Platform;

/// Who wrote a mention, as far as the platform tells.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Author {
    /// Handle or user name as shown on the platform (`alice@remote.example`, `alice.bsky.social`).
    pub handle: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Follower count when the platform reports it (used by influencer rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The sentiment class of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
    /// The language has no sentiment model: no score is made up.
    Unknown,
}

/// Sentiment scores of a text (VADER-style: `compound` in [-1, 1], proportions sum to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    pub compound: f64,
    pub pos: f64,
    pub neu: f64,
    pub neg: f64,
}

/// Public interaction counts at the time the mention was fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Engagement {
    #[serde(default)]
    pub likes: u64,
    #[serde(default)]
    pub reposts: u64,
    #[serde(default)]
    pub replies: u64,
}

/// One item found while listening. Identified by `(platform, native_id)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    pub platform: Platform,
    /// The platform's own id (opaque string: never parsed as a number).
    pub native_id: String,
    pub url: String,
    pub author: Author,
    /// Plain text (HTML stripped, entities decoded).
    pub text: String,
    pub created_at: Timestamp,
    /// ISO 639-1 code, or `und` when detection was not reliable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    #[serde(default)]
    pub engagement: Engagement,
    /// Ids of the campaigns whose query matched this mention.
    #[serde(default)]
    pub campaigns: Vec<String>,
    /// The source that found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
}

impl Mention {
    /// The identity used for deduplication.
    pub fn key(&self) -> MentionKey {
        MentionKey {
            platform: self.platform,
            native_id: self.native_id.clone(),
        }
    }
}

/// The identity of a mention: a platform and its native id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MentionKey {
    pub platform: Platform,
    pub native_id: String,
}

impl std::fmt::Display for MentionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.platform, self.native_id)
    }
}
