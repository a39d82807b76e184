//! Telegram Bot API publishing: `sendMessage` to a chat or channel.
//!
//! Quirks (<https://core.telegram.org/bots/api#sendmessage>, `platform-apis.md` §10):
//! - The bot token is part of the URL path (`/bot<token>/sendMessage`). reqwest puts the URL
//!   in its error messages, so no reqwest error, request URL or response URL is ever
//!   formatted here: transport errors go through [`transport_error`](super::http::transport_error), which describes the
//!   failure without the URL.
//! - Errors are `{"ok":false,"error_code":N,"description":"..."}`; a flood-wait 429 carries
//!   the wait in the body, `parameters.retry_after` (seconds), not in a header.
//! - There is no idempotency key: a timeout after the request was sent is `Ambiguous`.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use url::Url;

use super::http::{Answer, HttpClient, clip, exchange};
use super::{OutgoingPost, PlatformError, Published, Publisher, ratelimit};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Platform, Secret};
use crate::rules;

const PLATFORM: Platform = Platform::Telegram;
/// The public Bot API server.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";

/// Sends messages to one chat as a bot.
///
/// Channel fields: `token` = the bot token, `account` = the chat id (a number, or
/// `@channelusername`), `base_url` = a local Bot API server ([`DEFAULT_BASE_URL`] when
/// unset).
pub struct TelegramPublisher {
    http: HttpClient,
    base_url: String,
    token: Secret,
    chat_id: String,
    link_previews: bool,
    clock: Arc<dyn Clock>,
}

impl TelegramPublisher {
    pub fn new(http: HttpClient, bot_token: Secret, chat_id: impl Into<String>) -> Self {
        TelegramPublisher {
            http,
            base_url: DEFAULT_BASE_URL.to_owned(),
            token: bot_token,
            chat_id: chat_id.into(),
            link_previews: true,
            clock: Arc::new(SystemClock),
        }
    }

    /// Another Bot API server (a local one, or a fake in tests).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Whether Telegram shows a preview of the first link (default: yes).
    pub fn with_link_previews(mut self, enabled: bool) -> Self {
        self.link_previews = enabled;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn send_message_url(&self, base: Url) -> Result<Url, PlatformError> {
        let mut url = base;
        url.path_segments_mut()
            .map_err(|()| PlatformError::Url {
                platform: PLATFORM,
                source: super::UrlError::Invalid {
                    reason: "the base URL cannot have a path".into(),
                },
            })?
            .pop_if_empty()
            .push(&format!("bot{}", self.token.expose()))
            .push("sendMessage");
        Ok(url)
    }
}

#[async_trait::async_trait]
impl Publisher for TelegramPublisher {
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
        let text = rules::compose_text(&post.text, post.link.as_deref());
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        let url = self.send_message_url(base)?;
        // A numeric chat id goes as a number, `@channel` as a string: the API takes both.
        let chat_id = match self.chat_id.parse::<i64>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => serde_json::Value::from(self.chat_id.as_str()),
        };
        let body = serde_json::json!({
            "chat_id": chat_id,
            "text": text,
            "link_preview_options": { "is_disabled": !self.link_previews },
        });
        let Answer {
            status,
            headers,
            body: bytes,
        } = exchange(PLATFORM, self.http.client().post(url).json(&body), false).await?;
        let published = interpret_send_message(status, &headers, &bytes, self.clock.now())?;
        tracing::info!(platform = %PLATFORM, id = %published.platform_id, "message sent");
        Ok(published)
    }
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Message>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct Message {
    message_id: i64,
    chat: Chat,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
    username: Option<String>,
}

#[derive(Deserialize)]
struct ResponseParameters {
    retry_after: Option<f64>,
    migrate_to_chat_id: Option<i64>,
}

/// Reads a `sendMessage` response: the message on success, a classified error otherwise.
/// Never panics, whatever the bytes (property-tested).
///
/// `platform_id` is `<chat id>:<message id>` (message ids are only unique per chat); `url`
/// is `https://t.me/<username>/<message id>` when the chat has a public username.
pub fn interpret_send_message(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Published, PlatformError> {
    let envelope: Result<Envelope, _> = serde_json::from_slice(body);
    if (200..300).contains(&status) {
        let envelope = envelope.map_err(|e| PlatformError::Malformed {
            platform: PLATFORM,
            detail: format!("sendMessage response: {e}"),
        })?;
        return match (envelope.ok, envelope.result) {
            (true, Some(message)) => Ok(Published {
                platform_id: format!("{}:{}", message.chat.id, message.message_id),
                url: message
                    .chat
                    .username
                    .filter(|u| !u.is_empty())
                    .map(|u| format!("https://t.me/{u}/{}", message.message_id)),
            }),
            _ => Err(PlatformError::Malformed {
                platform: PLATFORM,
                detail: "sendMessage response without `ok: true` and a message".into(),
            }),
        };
    }
    let envelope = envelope.ok();
    let code = envelope
        .as_ref()
        .and_then(|e| e.error_code)
        .unwrap_or(status);
    let description = envelope
        .as_ref()
        .and_then(|e| e.description.clone())
        .map(|d| clip(&d, 300))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let parameters = envelope.and_then(|e| e.parameters);
    if code == 429 || status == 429 || (500..600).contains(&status) {
        // The body's `retry_after` is Telegram's flood-wait; a header is a fallback only.
        let after = parameters
            .as_ref()
            .and_then(|p| p.retry_after)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(SignedDuration::from_secs_f64)
            .or_else(|| ratelimit::retry_after(headers, now));
        return Err(PlatformError::Retryable {
            platform: PLATFORM,
            after,
            reason: format!("HTTP {status}: {description}"),
        });
    }
    // 401: the token was revoked. 404: the token does not name a bot at all (the Bot API
    // answers "Not Found" for an unknown token path) [inf].
    if matches!(code, 401 | 404) {
        return Err(PlatformError::AuthExpired {
            platform: PLATFORM,
            message: description,
        });
    }
    let message = match parameters.and_then(|p| p.migrate_to_chat_id) {
        // A group upgraded to a supergroup has a new id; the channel must be updated.
        Some(new_id) => format!("{description} (the chat moved to id {new_id})"),
        None => description,
    };
    Err(PlatformError::Permanent {
        platform: PLATFORM,
        status: Some(status),
        message,
    })
}
