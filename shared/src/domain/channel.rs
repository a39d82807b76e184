//! Channels: the accounts and webhooks Hark publishes to.

use serde::{Deserialize, Serialize};

use super::{Platform, SecretRef};

/// A publishing account or a notification webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub id: String,
    pub platform: Platform,
    /// API base URL (instance or API host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The account handle, page id, subreddit or chat id, as the platform needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Access token (or app password) reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
    /// Webhook URL reference (Slack, Discord, generic webhooks): the URL itself is the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<SecretRef>,
    /// Overrides the platform's text limit (Mastodon instances differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<u32>,
}
