//! Slack incoming-webhook publishing.
//!
//! Quirks (api.slack.com changelog 2016-05-17 "incoming webhook errors",
//! <https://api.slack.com/messaging/webhooks>, `platform-apis.md` §10):
//! - Success is **HTTP 200 with the plain-text body `ok`**; errors are plain-text codes
//!   (`invalid_payload`, `no_text`, `channel_not_found`, `no_service`, ...), not JSON.
//! - Slack returns no message id: the delivery's own id stands in for it.
//! - No idempotency: a timeout after the request was sent is `Ambiguous` (Slack may have
//!   posted the message), never blindly retried.
//! - The webhook URL is the secret: it never appears in an error or a log line.

use std::sync::Arc;

use jiff::Timestamp;
use reqwest::header::HeaderMap;

use super::http::{Answer, HttpClient, clip, exchange};
use super::{OutgoingPost, PlatformError, Published, Publisher, ratelimit};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Platform, Secret};
use crate::rules;

const PLATFORM: Platform = Platform::Slack;

/// Posts messages through one Slack incoming webhook.
///
/// Channel fields: `webhook` = the webhook URL.
pub struct SlackPublisher {
    http: HttpClient,
    webhook_url: Secret,
    clock: Arc<dyn Clock>,
}

impl SlackPublisher {
    pub fn new(http: HttpClient, webhook_url: Secret) -> Self {
        SlackPublisher {
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

/// The id Hark records for a Slack message: Slack returns none, so the delivery's
/// idempotency key (stable across retries) is used, prefixed to say what it is.
pub fn platform_id_for(idempotency_key: &str) -> String {
    format!("slack:{idempotency_key}")
}

#[async_trait::async_trait]
impl Publisher for SlackPublisher {
    async fn publish(
        &self,
        post: &OutgoingPost,
        idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        rules::check_text(PLATFORM, &post.text, post.link.as_deref(), None).map_err(|e| {
            PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: e.to_string(),
            }
        })?;
        let text = rules::compose_text(&post.text, post.link.as_deref());
        let url = self
            .http
            .checked_url(PLATFORM, self.webhook_url.expose())
            .await?;
        let Answer {
            status,
            headers,
            body: bytes,
        } = exchange(
            PLATFORM,
            self.http
                .client()
                .post(url)
                .json(&serde_json::json!({ "text": text })),
            false,
        )
        .await?;
        interpret_webhook_response(status, &headers, &bytes, self.clock.now())?;
        tracing::info!(platform = %PLATFORM, "message sent");
        Ok(Published {
            platform_id: platform_id_for(idempotency_key),
            url: None,
        })
    }
}

/// Reads an incoming-webhook response. Never panics, whatever the bytes.
///
/// - 2xx: accepted (the body should be `ok`; anything else is logged, not fatal: the
///   status says Slack took the message and refusing it would invite a duplicate).
/// - 429 and 5xx: retryable after `Retry-After`.
/// - `no_service`, `no_team` (404), `channel_is_archived` (410), `invalid_token`,
///   `token_revoked`, `token_expired` (403): the webhook is dead, an operator must
///   replace it → `AuthExpired`.
/// - everything else (`invalid_payload`, `no_text`, `channel_not_found`,
///   `action_prohibited`, ...): permanent, with Slack's code as the message.
pub fn interpret_webhook_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<(), PlatformError> {
    let code = clip(&String::from_utf8_lossy(body), 200);
    if (200..300).contains(&status) {
        if code != "ok" {
            tracing::warn!(platform = %PLATFORM, status, body = %code, "webhook accepted the message with an unexpected body");
        }
        return Ok(());
    }
    let code = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        code
    };
    if status == 429 || (500..600).contains(&status) {
        return Err(PlatformError::Retryable {
            platform: PLATFORM,
            after: ratelimit::retry_after(headers, now),
            reason: format!("HTTP {status}: {code}"),
        });
    }
    let dead_webhook = matches!(
        code.as_str(),
        "no_service"
            | "no_team"
            | "channel_is_archived"
            | "invalid_token"
            | "token_revoked"
            | "token_expired"
    ) || status == 410;
    if dead_webhook || status == 401 {
        return Err(PlatformError::AuthExpired {
            platform: PLATFORM,
            message: format!("the webhook no longer works: {code}"),
        });
    }
    Err(PlatformError::Permanent {
        platform: PLATFORM,
        status: Some(status),
        message: code,
    })
}
