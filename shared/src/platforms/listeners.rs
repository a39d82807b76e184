//! Which client listens to which platform: the [`ListenerFactory`] the poller uses.
//!
//! Listeners are cached per source and rebuilt only when the source's definition or its
//! resolved credentials change: a Bluesky session, a Reddit app token or a Facebook usage
//! reading survives between polls of a warm function (Bluesky logins are limited to 30 per
//! 5 minutes and 300 a day per account).

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::bluesky::{BlueskyListener, DEFAULT_SERVICE};
use super::facebook::FacebookListener;
use super::hackernews::HackerNewsListener;
use super::mastodon::MastodonListener;
use super::reddit::RedditListener;
use super::rss::RssListener;
use super::x::XListener;
use super::youtube::YouTubeListener;
use super::{HttpClient, ListenLimits, Listened, Listener, PlatformError};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Cursor, Platform, Secret, Source};
use crate::listening::ListenerFactory;
use crate::secrets::{SecretError, SecretResolver};

/// Builds the real platform clients, resolving each source's credentials.
pub struct PlatformListeners {
    http: HttpClient,
    secrets: Arc<dyn SecretResolver>,
    clock: Arc<dyn Clock>,
    enabled: Option<std::collections::BTreeSet<Platform>>,
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    source: Source,
    credentials: Option<String>,
    listener: Arc<dyn Listener>,
}

impl PlatformListeners {
    pub fn new(http: HttpClient, secrets: Arc<dyn SecretResolver>) -> Self {
        PlatformListeners {
            http,
            secrets,
            clock: Arc::new(SystemClock),
            enabled: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Only these platforms may be called (`HARK_ENABLED_PLATFORMS`); `None`: all.
    pub fn with_enabled(mut self, enabled: Option<std::collections::BTreeSet<Platform>>) -> Self {
        self.enabled = enabled;
        self
    }

    /// The clock the session-keeping clients read (tests pass a manual one).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn build(
        &self,
        source: &Source,
        token: Option<Secret>,
    ) -> Result<Arc<dyn Listener>, PlatformError> {
        let http = self.http.clone();
        let needs = |what: &str| PlatformError::AuthExpired {
            platform: source.platform,
            message: format!("source `{}` has no `credentials` ({what})", source.id),
        };
        Ok(match source.platform {
            Platform::Mastodon => Arc::new(MastodonListener::new(http, token)),
            Platform::Hackernews => Arc::new(HackerNewsListener::new(http)),
            Platform::Rss => Arc::new(RssListener::new(http)),
            Platform::Facebook => Arc::new(FacebookListener::new(http, token)),
            Platform::Youtube => Arc::new(YouTubeListener::new(http, token)),
            Platform::X => Arc::new(XListener::new(http, token)),
            Platform::Reddit => Arc::new(RedditListener::new(
                http,
                token.ok_or_else(|| needs("client_id:client_secret"))?,
            )),
            Platform::Bluesky => {
                let handle = source
                    .account
                    .clone()
                    .ok_or_else(|| PlatformError::Permanent {
                        platform: Platform::Bluesky,
                        status: None,
                        message: format!(
                            "source `{}` has no `account` (the handle that signs in)",
                            source.id
                        ),
                    })?;
                let service = source
                    .base_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
                Arc::new(
                    BlueskyListener::new(
                        http,
                        service,
                        handle,
                        token.ok_or_else(|| needs("an app password"))?,
                    )
                    .with_clock(self.clock.clone()),
                )
            }
            other => {
                return Err(PlatformError::Permanent {
                    platform: other,
                    status: None,
                    message: format!(
                        "listening on {other} is not available in this version of Hark"
                    ),
                });
            }
        })
    }
}

#[async_trait::async_trait]
impl ListenerFactory for PlatformListeners {
    async fn listener_for(&self, source: &Source) -> Result<Box<dyn Listener>, PlatformError> {
        if let Some(enabled) = &self.enabled
            && !enabled.contains(&source.platform)
        {
            return Err(PlatformError::Permanent {
                platform: source.platform,
                status: None,
                message: format!(
                    "source `{}`: {} is not enabled in this deployment (HARK_ENABLED_PLATFORMS)",
                    source.id, source.platform
                ),
            });
        }
        let token = match &source.credentials {
            None => None,
            Some(reference) => {
                Some(self.secrets.resolve(reference).await.map_err(|e| match e {
                    SecretError::Backend { .. } => PlatformError::Retryable {
                        platform: source.platform,
                        after: None,
                        reason: e.to_string(),
                    },
                    _ => PlatformError::AuthExpired {
                        platform: source.platform,
                        message: e.to_string(),
                    },
                })?)
            }
        };
        let credentials = token.as_ref().map(fingerprint);
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.get(&source.id)
            && cached.source == *source
            && cached.credentials == credentials
        {
            return Ok(Box::new(Shared(cached.listener.clone())));
        }
        let listener = self.build(source, token)?;
        cache.insert(
            source.id.clone(),
            Cached {
                source: source.clone(),
                credentials,
                listener: listener.clone(),
            },
        );
        Ok(Box::new(Shared(listener)))
    }
}

/// A cached listener handed out to one poll.
struct Shared(Arc<dyn Listener>);

#[async_trait::async_trait]
impl Listener for Shared {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        self.0.listen(source, cursor, limits).await
    }
}

/// A one-way fingerprint of a credential, to notice it was replaced.
fn fingerprint(secret: &Secret) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"hark/source-credentials/v1\0");
    hasher.update(secret.expose().as_bytes());
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SecretRef;

    struct OneSecret(&'static str);

    #[async_trait::async_trait]
    impl SecretResolver for OneSecret {
        async fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
            match reference {
                SecretRef::Env(name) if name == "GOOD" => Ok(Secret::new(self.0)),
                SecretRef::Env(name) if name == "FLAKY" => Err(SecretError::Backend {
                    reference: reference.clone(),
                    source: "throttled".into(),
                }),
                _ => Err(SecretError::Missing {
                    reference: reference.clone(),
                }),
            }
        }
    }

    fn source(v: serde_json::Value) -> Source {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn given_the_same_source_then_one_listener_is_kept_and_a_changed_one_rebuilt() {
        let f = PlatformListeners::new(HttpClient::new(true).unwrap(), Arc::new(OneSecret("pw")));
        let s = source(serde_json::json!({
            "id": "sky", "platform": "bluesky", "account": "brand.bsky.social",
            "credentials": "env:GOOD", "query": "hark"
        }));
        f.listener_for(&s).await.unwrap();
        f.listener_for(&s).await.unwrap();
        let first = f.cache.lock().await["sky"].listener.clone();
        f.listener_for(&s).await.unwrap();
        assert!(Arc::ptr_eq(&first, &f.cache.lock().await["sky"].listener));
        let mut changed = s.clone();
        changed.query = Some("hark OR harkapp".into());
        f.listener_for(&changed).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &f.cache.lock().await["sky"].listener));
    }

    #[tokio::test]
    async fn given_missing_or_unreachable_credentials_then_auth_expired_or_retryable() {
        let f = PlatformListeners::new(HttpClient::new(true).unwrap(), Arc::new(OneSecret("x")));
        let no_creds =
            source(serde_json::json!({"id": "r", "platform": "reddit", "query": "hark"}));
        let err = f.listener_for(&no_creds).await.err().unwrap();
        assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
        assert!(err.to_string().contains("client_id:client_secret"));
        let flaky = source(serde_json::json!({
            "id": "r", "platform": "reddit", "query": "hark", "credentials": "env:FLAKY"
        }));
        assert!(f.listener_for(&flaky).await.err().unwrap().is_retryable());
        let no_handle = source(serde_json::json!({
            "id": "b", "platform": "bluesky", "query": "hark", "credentials": "env:GOOD"
        }));
        let err = f.listener_for(&no_handle).await.err().unwrap().to_string();
        assert!(err.contains("`account`"), "{err}");
        let limited =
            PlatformListeners::new(HttpClient::new(true).unwrap(), Arc::new(OneSecret("x")))
                .with_enabled(Some([Platform::Mastodon].into()));
        let err = limited.listener_for(&flaky).await.err().unwrap();
        assert!(
            err.to_string().contains("not enabled in this deployment"),
            "{err}"
        );
        let x = source(serde_json::json!({"id": "t", "platform": "telegram"}));
        assert!(
            f.listener_for(&x)
                .await
                .err()
                .unwrap()
                .to_string()
                .contains("not available")
        );
    }
}
