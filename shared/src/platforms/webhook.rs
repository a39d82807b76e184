//! Generic signed webhooks: alerts and events POSTed as JSON to a URL the user configured,
//! signed so the receiver can check they come from Hark.
//!
//! Every request carries:
//! - `X-Hark-Signature: sha256=<hex>`: HMAC-SHA256 (RFC 2104) of the **raw request body**
//!   with the channel's signing secret, lowercase hex;
//! - `X-Hark-Timestamp: <unix seconds>`: when it was sent, so a receiver can refuse stale
//!   requests.
//!
//! A receiver verifies by computing the HMAC over the exact bytes it received (before any
//! JSON parsing) and comparing in constant time ([`verify_signature`] does that).

use std::sync::Arc;

use hmac::{KeyInit, Mac};
use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};

use super::http::{Answer, HttpClient, classify_status, clip, exchange};
use super::{OutgoingPost, PlatformError, Published, Publisher};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Platform, Secret};
use crate::rules;

const PLATFORM: Platform = Platform::Webhook;
/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Hark-Signature";
/// The send-time header (unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Hark-Timestamp";

type HmacSha256 = hmac::Hmac<Sha256>;
/// SHA-256's block size: HMAC keys are hashed or zero-padded to it (RFC 2104 §2).
const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new(&key_block(key).into());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The key as HMAC uses it: hashed when longer than a block, then zero-padded to a block
/// (RFC 2104 §2). Doing this step here lets us use the infallible fixed-size constructor.
fn key_block(key: &[u8]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

/// The `X-Hark-Signature` value for `body`: `sha256=<lowercase hex>`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    format!(
        "sha256={}",
        to_hex(&hmac_sha256(secret.expose().as_bytes(), body))
    )
}

/// Whether `header` is the right `X-Hark-Signature` for `body` (constant-time compare).
pub fn verify_signature(secret: &Secret, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = from_hex(hex) else {
        return false;
    };
    let mut mac = HmacSha256::new(&key_block(secret.expose().as_bytes()).into());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xF)]])
        .map(char::from)
        .collect()
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// Sends signed JSON to one webhook URL: alerts from the actions function, or posts when a
/// generic webhook is used as a publishing channel.
///
/// Channel fields: `webhook` = the URL (a secret), `token` = the signing secret.
pub struct WebhookNotifier {
    http: HttpClient,
    url: Secret,
    signing_secret: Secret,
    clock: Arc<dyn Clock>,
}

impl WebhookNotifier {
    pub fn new(http: HttpClient, url: Secret, signing_secret: Secret) -> Self {
        WebhookNotifier {
            http,
            url,
            signing_secret,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// POSTs `payload` as JSON, signed. Any 2xx is success.
    ///
    /// A timeout after sending is `Ambiguous` (the receiver may have it); receivers that
    /// must not see duplicates should dedupe on an id inside the payload.
    pub async fn notify(&self, payload: &serde_json::Value) -> Result<(), PlatformError> {
        let body = serde_json::to_vec(payload).map_err(|e| PlatformError::Malformed {
            platform: PLATFORM,
            detail: format!("payload could not be serialised: {e}"),
        })?;
        self.send(body).await
    }

    async fn send(&self, body: Vec<u8>) -> Result<(), PlatformError> {
        let url = self.http.checked_url(PLATFORM, self.url.expose()).await?;
        let now = self.clock.now();
        let Answer {
            status,
            headers,
            body: bytes,
        } = exchange(
            PLATFORM,
            self.http
                .client()
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, signature(&self.signing_secret, &body))
                .header(TIMESTAMP_HEADER, now.as_second().to_string())
                .body(body),
            false,
        )
        .await?;
        interpret_response(status, &headers, &bytes, now)
    }
}

/// A generic webhook as a publishing channel (alerts from trigger actions): the body is
/// `{"id", "text", "link"}` where `id` is the delivery id, identical on every retry, so a
/// receiver can drop a repeated request.
pub struct WebhookPublisher {
    notifier: WebhookNotifier,
}

impl WebhookPublisher {
    pub fn new(notifier: WebhookNotifier) -> Self {
        WebhookPublisher { notifier }
    }
}

#[async_trait::async_trait]
impl Publisher for WebhookPublisher {
    async fn publish(
        &self,
        post: &OutgoingPost,
        idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        let payload = serde_json::json!({
            "id": idempotency_key,
            "text": post.text,
            "link": post.link,
        });
        self.notifier.notify(&payload).await?;
        Ok(Published {
            platform_id: idempotency_key.to_owned(),
            url: None,
        })
    }
}

/// Reads the receiver's answer: 2xx success; 429/5xx retryable; 401/403 (the receiver
/// refuses our signature) `AuthExpired`; other 4xx permanent, with the start of the body.
pub fn interpret_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<(), PlatformError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = clip(&String::from_utf8_lossy(body), 200);
    let message = if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text
    };
    let Ok(code) = StatusCode::from_u16(status) else {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: format!("invalid HTTP status {status}"),
        });
    };
    if code == StatusCode::FORBIDDEN {
        return Err(PlatformError::AuthExpired {
            platform: PLATFORM,
            message,
        });
    }
    Err(classify_status(PLATFORM, code, headers, message, now))
}

/// A generic webhook as a publishing channel: the post is sent as
/// `{"text": ..., "link": ..., "idempotency_key": ...}` (signed like every notification);
/// the receiver dedupes on `idempotency_key`, which is also the recorded platform id.
#[async_trait::async_trait]
impl Publisher for WebhookNotifier {
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
        let payload = serde_json::json!({
            "text": rules::compose_text(&post.text, post.link.as_deref()),
            "link": post.link,
            "idempotency_key": idempotency_key,
        });
        self.notify(&payload).await?;
        Ok(Published {
            platform_id: format!("webhook:{idempotency_key}"),
            url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(key: &[u8], data: &[u8]) -> String {
        to_hex(&hmac_sha256(key, data))
    }

    // RFC 4231 §4: HMAC-SHA256 test vectors.
    #[test]
    fn rfc4231_case_1_short_key() {
        assert_eq!(
            hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn rfc4231_case_2_key_shorter_than_output() {
        assert_eq!(
            hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc4231_case_6_key_longer_than_a_block_is_hashed_first() {
        assert_eq!(
            hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn given_a_body_when_signed_then_it_verifies_and_a_changed_body_does_not() {
        let secret = Secret::new("whsec_test");
        let sig = signature(&secret, b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        assert!(verify_signature(&secret, b"{\"a\":1}", &sig));
        assert!(!verify_signature(&secret, b"{\"a\":2}", &sig));
        assert!(!verify_signature(&Secret::new("other"), b"{\"a\":1}", &sig));
        assert!(!verify_signature(&secret, b"{\"a\":1}", "sha256=zz"));
        assert!(!verify_signature(&secret, b"{\"a\":1}", "md5=00"));
    }
}
