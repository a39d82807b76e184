//! Discord webhook publishing.
//!
//! Quirks (discord-api-docs `resources/webhook.mdx`, `topics/rate-limits.mdx`,
//! `platform-apis.md` §10):
//! - Without `?wait=true` Discord answers 204 and errors after queueing are silent; with it,
//!   200 and the created message (`id`, `channel_id`).
//! - 429 carries both a `Retry-After` header (whole seconds) and a JSON body with the
//!   precise `retry_after` in **float seconds**; we prefer the body.
//! - 401/404 (`Unknown Webhook`, code 10015) mean the webhook was deleted: the secret URL is
//!   dead, which is an auth failure for our purposes.
//! - The webhook URL is the secret: it never appears in an error or a log line.
//! - No idempotency: a timeout after the request was sent is `Ambiguous`.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::http::{Answer, HttpClient, clip, exchange};
use super::{OutgoingPost, PlatformError, Published, Publisher, ratelimit};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Platform, Secret};
use crate::rules;

const PLATFORM: Platform = Platform::Discord;

/// Posts messages through one Discord webhook.
///
/// Channel fields: `webhook` = the webhook URL.
pub struct DiscordPublisher {
    http: HttpClient,
    webhook_url: Secret,
    clock: Arc<dyn Clock>,
}

impl DiscordPublisher {
    pub fn new(http: HttpClient, webhook_url: Secret) -> Self {
        DiscordPublisher {
            http,
            webhook_url,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait::async_trait]
impl Publisher for DiscordPublisher {
    async fn publish(
        &self,
        post: &OutgoingPost,
        _idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        rules::check_text(PLATFORM, &post.text, post.link.as_deref(), None).map_err(|e| {
            PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: e.to_string(),
            }
        })?;
        let content = rules::compose_text(&post.text, post.link.as_deref());
        let mut url = self
            .http
            .checked_url(PLATFORM, self.webhook_url.expose())
            .await?;
        // Keep other parameters (`thread_id`), force `wait=true`.
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "wait")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("wait", "true");
        let body = serde_json::json!({
            "content": content,
            // Campaign text must not ping @everyone, roles or users by accident.
            "allowed_mentions": { "parse": [] },
        });
        let Answer {
            status,
            headers,
            body: bytes,
        } = exchange(PLATFORM, self.http.client().post(url).json(&body), false).await?;
        let published = interpret_execute_webhook(status, &headers, &bytes, self.clock.now())?;
        tracing::info!(platform = %PLATFORM, id = %published.platform_id, "message sent");
        Ok(published)
    }
}

#[derive(Deserialize)]
struct MessageBody {
    id: String,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    message: Option<String>,
    code: Option<i64>,
    retry_after: Option<f64>,
    global: Option<bool>,
}

/// Reads an "execute webhook" (`?wait=true`) response. Never panics, whatever the bytes.
///
/// `platform_id` is the message id; `url` is `None` (the webhook response carries no guild
/// id, so no jump link can be built).
pub fn interpret_execute_webhook(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Published, PlatformError> {
    if (200..300).contains(&status) {
        let message: MessageBody =
            serde_json::from_slice(body).map_err(|e| PlatformError::Malformed {
                platform: PLATFORM,
                detail: format!("execute webhook response: {e}"),
            })?;
        return Ok(Published {
            platform_id: message.id,
            url: None,
        });
    }
    let error: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let mut words = error
        .message
        .as_deref()
        .map(|m| clip(m, 300))
        .unwrap_or_else(|| format!("HTTP {status}"));
    if let Some(code) = error.code {
        words.push_str(&format!(" (code {code})"));
    }
    if status == 429 || (500..600).contains(&status) {
        let after = error
            .retry_after
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(SignedDuration::from_secs_f64)
            .or_else(|| ratelimit::retry_after(headers, now));
        let scope = if error.global == Some(true) {
            ", global"
        } else {
            ""
        };
        return Err(PlatformError::Retryable {
            platform: PLATFORM,
            after,
            reason: format!("HTTP {status}{scope}: {words}"),
        });
    }
    if matches!(status, 401 | 404) {
        return Err(PlatformError::AuthExpired {
            platform: PLATFORM,
            message: format!("the webhook no longer exists: {words}"),
        });
    }
    Err(PlatformError::Permanent {
        platform: PLATFORM,
        status: Some(status),
        message: words,
    })
}
