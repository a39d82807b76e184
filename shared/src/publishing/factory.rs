//! Which client publishes to which channel: the [`PublisherFactory`] the publisher uses,
//! and its real implementation with secrets resolved through the [`SecretResolver`] port.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::domain::{Channel, Platform, Secret, SecretRef};
use crate::platforms::bluesky::{BlueskyPublisher, DEFAULT_SERVICE};
use crate::platforms::discord::DiscordPublisher;
use crate::platforms::facebook::FacebookPublisher;
use crate::platforms::linkedin::LinkedInPublisher;
use crate::platforms::mastodon::MastodonPublisher;
use crate::platforms::reddit::RedditPublisher;
use crate::platforms::slack::SlackPublisher;
use crate::platforms::telegram::TelegramPublisher;
use crate::platforms::webhook::{WebhookNotifier, WebhookPublisher};
use crate::platforms::x::XPublisher;
use crate::platforms::{HttpClient, PlatformError, Publisher};
use crate::secrets::{SecretError, SecretResolver};

/// A channel's publisher and the fingerprint of the credentials it was built with.
#[derive(Clone)]
pub struct ChannelPublisher {
    pub publisher: Arc<dyn Publisher>,
    /// A short one-way fingerprint of the resolved credentials, so a re-authentication
    /// flag can tell replaced credentials from the refused ones. `None` when unknown.
    pub credentials: Option<String>,
}

impl std::fmt::Debug for ChannelPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelPublisher")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Builds the publisher of a channel (platform client, credentials, base URL).
#[async_trait::async_trait]
pub trait PublisherFactory: Send + Sync {
    /// A failure is classified like a platform failure: missing credentials are
    /// `AuthExpired` (an operator must provide them), an unreachable secret store is
    /// `Retryable`, an unusable channel definition is `Permanent`.
    async fn publisher_for(&self, channel: &Channel) -> Result<ChannelPublisher, PlatformError>;
}

/// The real platform clients. Publishers are cached per channel and rebuilt only when the
/// channel's definition or its resolved credentials change, so a Bluesky session survives
/// between deliveries (logins are limited to 30 per 5 minutes per account).
pub struct PlatformPublishers {
    http: HttpClient,
    secrets: Arc<dyn SecretResolver>,
    clock: Arc<dyn Clock>,
    enabled: Option<std::collections::BTreeSet<Platform>>,
    /// Where rotated credentials are written back (X refresh tokens); `None`: memory only.
    writer: Option<Arc<dyn crate::secrets::SecretWriter>>,
    /// Shared publishing limits (see [`super::ratelimit`]); `None`: unlimited.
    gate: Option<Arc<dyn super::RateGate>>,
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    channel: Channel,
    credentials: String,
    publisher: Arc<dyn Publisher>,
}

impl PlatformPublishers {
    pub fn new(http: HttpClient, secrets: Arc<dyn SecretResolver>, clock: Arc<dyn Clock>) -> Self {
        PlatformPublishers {
            http,
            secrets,
            clock,
            enabled: None,
            writer: None,
            gate: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Every publisher goes through these shared limits (per channel and per app, with the
    /// platforms' resets), so concurrent publishers never exceed them together.
    pub fn with_rate_gate(mut self, gate: Arc<dyn super::RateGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Writes rotated credentials (X's refresh tokens) back to their secret.
    pub fn with_secret_writer(mut self, writer: Arc<dyn crate::secrets::SecretWriter>) -> Self {
        self.writer = Some(writer);
        self
    }

    /// Only these platforms may be called (`HARK_ENABLED_PLATFORMS`); `None`: all.
    pub fn with_enabled(mut self, enabled: Option<std::collections::BTreeSet<Platform>>) -> Self {
        self.enabled = enabled;
        self
    }

    async fn resolve(
        &self,
        channel: &Channel,
        reference: Option<&SecretRef>,
        field: &str,
    ) -> Result<Secret, PlatformError> {
        let Some(reference) = reference else {
            return Err(unusable(
                channel,
                &format!("has no `{field}` (a secret reference)"),
            ));
        };
        self.secrets.resolve(reference).await.map_err(|e| match e {
            SecretError::Backend { .. } => PlatformError::Retryable {
                platform: channel.platform,
                after: None,
                reason: format!("channel `{}`: {e}", channel.id),
            },
            SecretError::Missing { .. } | SecretError::Unsupported { .. } => {
                PlatformError::AuthExpired {
                    platform: channel.platform,
                    message: format!("channel `{}`: {e}", channel.id),
                }
            }
        })
    }

    fn build(
        &self,
        channel: &Channel,
        secret: Secret,
        signing: Option<Secret>,
    ) -> Result<Arc<dyn Publisher>, PlatformError> {
        let http = self.http.clone();
        let clock = self.clock.clone();
        Ok(match channel.platform {
            Platform::Mastodon => {
                let base = channel
                    .base_url
                    .clone()
                    .ok_or_else(|| unusable(channel, "has no `base_url` (the instance)"))?;
                Arc::new(MastodonPublisher::new(http, base, secret, clock))
            }
            Platform::Bluesky => {
                let handle = channel
                    .account
                    .clone()
                    .ok_or_else(|| unusable(channel, "has no `account` (the handle)"))?;
                let service = channel
                    .base_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
                Arc::new(BlueskyPublisher::new(http, service, handle, secret).with_clock(clock))
            }
            Platform::Telegram => {
                let chat = channel
                    .account
                    .clone()
                    .ok_or_else(|| unusable(channel, "has no `account` (the chat id)"))?;
                let mut telegram = TelegramPublisher::new(http, secret, chat).with_clock(clock);
                if let Some(base) = &channel.base_url {
                    telegram = telegram.with_base_url(base.clone());
                }
                Arc::new(telegram)
            }
            Platform::Discord => Arc::new(DiscordPublisher::new(http, secret).with_clock(clock)),
            Platform::Slack => Arc::new(SlackPublisher::new(http, secret).with_clock(clock)),
            Platform::X => {
                let persist = match (&self.writer, &channel.token) {
                    (Some(writer), Some(reference)) => Some((reference.clone(), writer.clone())),
                    _ => None,
                };
                let mut x = XPublisher::from_secret_persisted(http, &secret, clock, persist)?;
                if let Some(base) = &channel.base_url {
                    x = x.with_base_url(base.clone());
                }
                Arc::new(x)
            }
            Platform::Facebook => {
                let page = channel
                    .account
                    .clone()
                    .ok_or_else(|| unusable(channel, "has no `account` (the Page id)"))?;
                let mut fb = FacebookPublisher::new(http, page, secret).with_clock(clock);
                if let Some(base) = &channel.base_url {
                    fb = fb.with_base_url(base.clone());
                }
                Arc::new(fb)
            }
            Platform::Reddit => {
                let subreddit = channel
                    .account
                    .clone()
                    .ok_or_else(|| unusable(channel, "has no `account` (the subreddit)"))?;
                let mut reddit = RedditPublisher::new(http, subreddit, secret, clock);
                if let Some(base) = &channel.base_url {
                    reddit = reddit.with_base_url(base.clone());
                }
                Arc::new(reddit)
            }
            Platform::Linkedin => {
                let author = channel.account.clone().ok_or_else(|| {
                    unusable(
                        channel,
                        "has no `account` (the author URN, urn:li:organization:…)",
                    )
                })?;
                let mut linkedin = LinkedInPublisher::new(http, author, secret, clock);
                if let Some(base) = &channel.base_url {
                    linkedin = linkedin.with_base_url(base.clone());
                }
                Arc::new(linkedin)
            }
            Platform::Webhook => {
                let signing = signing
                    .ok_or_else(|| unusable(channel, "has no `token` (the signing secret)"))?;
                Arc::new(WebhookPublisher::new(
                    WebhookNotifier::new(http, secret, signing).with_clock(clock),
                ))
            }
            other => {
                return Err(PlatformError::Permanent {
                    platform: other,
                    status: None,
                    message: format!(
                        "channel `{}`: publishing to {other} is not available in this version of Hark",
                        channel.id
                    ),
                });
            }
        })
    }
}

#[async_trait::async_trait]
impl PublisherFactory for PlatformPublishers {
    async fn publisher_for(&self, channel: &Channel) -> Result<ChannelPublisher, PlatformError> {
        if let Some(enabled) = &self.enabled
            && !enabled.contains(&channel.platform)
        {
            return Err(unusable(
                channel,
                &format!(
                    "is on {}, which is not enabled in this deployment (HARK_ENABLED_PLATFORMS)",
                    channel.platform
                ),
            ));
        }
        let webhook_based = matches!(
            channel.platform,
            Platform::Discord | Platform::Slack | Platform::Webhook
        );
        let (reference, field) = if webhook_based {
            (channel.webhook.as_ref(), "webhook")
        } else {
            (channel.token.as_ref(), "token")
        };
        let secret = self.resolve(channel, reference, field).await?;
        // A generic webhook also signs its requests with the channel's `token`.
        let signing = if channel.platform == Platform::Webhook {
            Some(
                self.resolve(channel, channel.token.as_ref(), "token")
                    .await?,
            )
        } else {
            None
        };
        let credentials = match &signing {
            None => fingerprint(&secret),
            Some(signing) => fingerprint(&Secret::new(format!(
                "{}\n{}",
                secret.expose(),
                signing.expose()
            ))),
        };
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.get(&channel.id)
            && cached.channel == *channel
            && cached.credentials == credentials
        {
            return Ok(ChannelPublisher {
                publisher: cached.publisher.clone(),
                credentials: Some(credentials),
            });
        }
        let mut publisher = self.build(channel, secret, signing)?;
        if let Some(gate) = &self.gate {
            publisher = Arc::new(super::RateLimitedPublisher::new(
                publisher,
                gate.clone(),
                channel.platform,
                &channel.id,
                self.clock.clone(),
            ));
        }
        cache.insert(
            channel.id.clone(),
            Cached {
                channel: channel.clone(),
                credentials: credentials.clone(),
                publisher: publisher.clone(),
            },
        );
        Ok(ChannelPublisher {
            publisher,
            credentials: Some(credentials),
        })
    }
}

/// 64 bits of SHA-256 over a domain tag and the secret, hex: enough to tell two credentials
/// apart, useless for recovering either (tokens and app passwords are high-entropy).
fn fingerprint(secret: &Secret) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"hark/channel-credentials/v1\0");
    hasher.update(secret.expose().as_bytes());
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unusable(channel: &Channel, problem: &str) -> PlatformError {
    PlatformError::Permanent {
        platform: channel.platform,
        status: None,
        message: format!("channel `{}` {problem}", channel.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    struct MapResolver(HashMap<String, String>);

    #[async_trait::async_trait]
    impl SecretResolver for MapResolver {
        async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
            match reference {
                SecretRef::Env(name) if name == "BROKEN_STORE" => Err(SecretError::Backend {
                    reference: reference.clone(),
                    source: "throttled".into(),
                }),
                SecretRef::Env(name) => {
                    self.0
                        .get(name)
                        .map(Secret::new)
                        .ok_or(SecretError::Missing {
                            reference: reference.clone(),
                        })
                }
                _ => Err(SecretError::Missing {
                    reference: reference.clone(),
                }),
            }
        }
    }

    fn factory(secrets: &[(&str, &str)]) -> PlatformPublishers {
        PlatformPublishers::new(
            HttpClient::new(true).unwrap(),
            Arc::new(MapResolver(
                secrets
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )),
            Arc::new(SystemClock),
        )
    }

    fn channel(v: serde_json::Value) -> Channel {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn given_the_same_channel_and_secret_then_the_cached_publisher_is_reused() {
        let f = factory(&[("SKY", "app-pass-1")]);
        let ch = channel(
            serde_json::json!({"id": "sky", "platform": "bluesky", "account": "brand.bsky.social", "token": "env:SKY"}),
        );
        let a = f.publisher_for(&ch).await.unwrap();
        let b = f.publisher_for(&ch).await.unwrap();
        assert!(
            Arc::ptr_eq(&a.publisher, &b.publisher),
            "one session per channel"
        );
        assert_eq!(a.credentials, b.credentials);
        assert_eq!(a.credentials.as_deref().map(str::len), Some(16));
        assert!(!format!("{a:?}").contains("app-pass-1"));
    }

    #[tokio::test]
    async fn given_a_missing_secret_then_auth_expired_naming_only_the_reference() {
        let f = factory(&[]);
        let ch = channel(
            serde_json::json!({"id": "masto", "platform": "mastodon", "base_url": "https://m.example", "token": "env:NOPE"}),
        );
        let err = f.publisher_for(&ch).await.unwrap_err();
        assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
        assert!(err.to_string().contains("env:NOPE"), "{err}");
    }

    #[tokio::test]
    async fn given_an_unreachable_secret_store_then_retryable() {
        let f = factory(&[]);
        let ch = channel(
            serde_json::json!({"id": "masto", "platform": "mastodon", "base_url": "https://m.example", "token": "env:BROKEN_STORE"}),
        );
        assert!(f.publisher_for(&ch).await.unwrap_err().is_retryable());
    }

    #[tokio::test]
    async fn given_incomplete_or_unsupported_channels_then_permanent_errors_say_what_is_missing() {
        let f = factory(&[("T", "secret-value")]);
        let no_base =
            channel(serde_json::json!({"id": "masto", "platform": "mastodon", "token": "env:T"}));
        let err = f.publisher_for(&no_base).await.unwrap_err().to_string();
        assert!(err.contains("has no `base_url`"), "{err}");
        let no_handle =
            channel(serde_json::json!({"id": "sky", "platform": "bluesky", "token": "env:T"}));
        assert!(
            f.publisher_for(&no_handle)
                .await
                .unwrap_err()
                .to_string()
                .contains("`account`")
        );
        let hn =
            channel(serde_json::json!({"id": "hn", "platform": "hackernews", "token": "env:T"}));
        let err = f.publisher_for(&hn).await.unwrap_err().to_string();
        assert!(err.contains("not available in this version"), "{err}");
        let no_hook = channel(serde_json::json!({"id": "ops", "platform": "slack"}));
        assert!(
            f.publisher_for(&no_hook)
                .await
                .unwrap_err()
                .to_string()
                .contains("`webhook`")
        );
        assert!(!err.contains("secret-value"));
    }

    #[tokio::test]
    async fn given_a_platform_not_enabled_then_a_permanent_error_naming_the_setting() {
        let f = factory(&[("T", "t")]).with_enabled(Some([Platform::Slack].into()));
        let ch = channel(
            serde_json::json!({"id": "tg", "platform": "telegram", "account": "@b", "token": "env:T"}),
        );
        let err = f.publisher_for(&ch).await.unwrap_err();
        assert!(matches!(err, PlatformError::Permanent { .. }));
        assert!(err.to_string().contains("HARK_ENABLED_PLATFORMS"), "{err}");
    }

    #[tokio::test]
    async fn given_replaced_credentials_then_a_new_publisher_and_fingerprint() {
        let f = factory(&[("A", "token-a"), ("B", "token-b")]);
        let mut ch = channel(
            serde_json::json!({"id": "tg", "platform": "telegram", "account": "@brand", "token": "env:A"}),
        );
        let a = f.publisher_for(&ch).await.unwrap();
        ch.token = Some("env:B".parse().unwrap());
        let b = f.publisher_for(&ch).await.unwrap();
        assert_ne!(a.credentials, b.credentials);
        assert!(!Arc::ptr_eq(&a.publisher, &b.publisher));
    }
}
