//! Publishing limits shared by every publisher instance: per channel (the account) and,
//! where the platform has one, per app, counted in the store with conditional counters
//! (fixed windows), so concurrent publisher functions never exceed a limit together. A
//! platform's 429 with a reset blocks the channel for every instance until then.
//!
//! A create the gate holds back is a `Retryable` failure *before* anything was sent: the
//! delivery goes back to the queue until the window ends, it is never failed or sent.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::domain::Platform;
use crate::platforms::{Lookup, OutgoingPost, PlatformError, Published, Publisher};
use crate::ports::{ConfigEntity, ConfigStore, EntityKind, StoreError, TriggerStore};

/// At most `max` creates per fixed window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub max: u32,
    pub per: SignedDuration,
}

/// A limit and the counter it is kept under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedLimit {
    /// `channel:<id>` or `app:<platform>`.
    pub key: String,
    pub limit: WindowLimit,
}

/// The documented (or observed) create limits of a platform, a little under the real
/// ones: `(per account, per app)`. Sources: platform-apis.md §1.4 (Mastodon: 300 requests
/// / 5 min per account), §2.3 (Bluesky: 5,000 points/h, a create is 3), §5.2 (X: 100 posts
/// / 15 min per user, 10,000 / 24 h per app), §7 (LinkedIn: daily limits), §10 (Slack ≈ 1
/// message/s per webhook, Discord 5 / 2 s, Telegram ≤ 20 / min per group).
pub fn default_limits(platform: Platform) -> (Option<WindowLimit>, Option<WindowLimit>) {
    let w = |max, secs| {
        Some(WindowLimit {
            max,
            per: SignedDuration::from_secs(secs),
        })
    };
    match platform {
        Platform::Mastodon => (w(250, 300), None),
        Platform::Bluesky => (w(1_500, 3_600), None),
        Platform::X => (w(95, 900), w(9_500, 86_400)),
        Platform::Linkedin => (w(100, 86_400), None),
        Platform::Facebook => (w(200, 3_600), None),
        Platform::Reddit => (w(30, 600), None),
        Platform::Telegram => (w(18, 60), None),
        Platform::Discord => (w(25, 60), None),
        Platform::Slack => (w(50, 60), None),
        Platform::Webhook => (w(120, 60), None),
        Platform::Hackernews | Platform::Rss | Platform::Youtube => (None, None),
    }
}

/// The limits that apply to a channel.
pub fn limits_for(platform: Platform, channel_id: &str) -> Vec<ScopedLimit> {
    let (account, app) = default_limits(platform);
    let mut out = Vec::new();
    if let Some(limit) = account {
        out.push(ScopedLimit {
            key: format!("channel:{channel_id}"),
            limit,
        });
    }
    if let Some(limit) = app {
        out.push(ScopedLimit {
            key: format!("app:{platform}"),
            limit,
        });
    }
    out
}

/// Where the counters and blocks live.
#[async_trait::async_trait]
pub trait RateGate: Send + Sync {
    /// Takes one create from `limit`'s current window: `None` when granted, else how long
    /// until the window ends.
    async fn acquire(
        &self,
        scoped: &ScopedLimit,
        now: Timestamp,
    ) -> Result<Option<SignedDuration>, StoreError>;

    /// How long `key` is blocked by a platform's reset, if it is.
    async fn blocked(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<SignedDuration>, StoreError>;

    /// Blocks `key` until `until` (keeps a later block).
    async fn block(&self, key: &str, until: Timestamp) -> Result<(), StoreError>;
}

/// A key blocked until a platform's rate-limit reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBlock {
    pub id: String,
    pub until: Timestamp,
}

impl ConfigEntity for RateBlock {
    const KIND: EntityKind = EntityKind::RateBlock;
    fn id(&self) -> &str {
        &self.id
    }
}

/// The gate on a store: window counters with the store's conditional budget counter,
/// blocks as small documents.
pub struct StoreRateGate<S>(pub Arc<S>);

#[async_trait::async_trait]
impl<S> RateGate for StoreRateGate<S>
where
    S: TriggerStore + ConfigStore + 'static,
{
    async fn acquire(
        &self,
        scoped: &ScopedLimit,
        now: Timestamp,
    ) -> Result<Option<SignedDuration>, StoreError> {
        let per = scoped.limit.per.as_secs().max(1);
        let start = now.as_second().div_euclid(per) * per;
        let end = Timestamp::from_second(start + per).unwrap_or(now);
        let key = format!("rate/{}/{start}", scoped.key);
        let granted = self
            .0
            // Every call is a request to the platform: each counts (no taker).
            .take_budget(
                &key,
                scoped.limit.max,
                end + SignedDuration::from_hours(1),
                None,
            )
            .await?;
        Ok((!granted).then(|| now.duration_until(end).max(SignedDuration::ZERO)))
    }

    async fn blocked(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<SignedDuration>, StoreError> {
        Ok(self
            .0
            .get::<RateBlock>(key)
            .await?
            .filter(|b| b.until > now)
            .map(|b| now.duration_until(b.until)))
    }

    async fn block(&self, key: &str, until: Timestamp) -> Result<(), StoreError> {
        if let Some(existing) = self.0.get::<RateBlock>(key).await?
            && existing.until >= until
        {
            return Ok(());
        }
        self.0
            .upsert(&RateBlock {
                id: key.to_owned(),
                until,
            })
            .await
            .map(|_| ())
    }
}

/// A publisher behind the gate: checks blocks and takes a create from every limit of its
/// channel before the request goes out; a 429 with a reset blocks the channel for all.
pub struct RateLimitedPublisher {
    inner: Arc<dyn Publisher>,
    gate: Arc<dyn RateGate>,
    platform: Platform,
    limits: Vec<ScopedLimit>,
    clock: Arc<dyn Clock>,
}

impl RateLimitedPublisher {
    pub fn new(
        inner: Arc<dyn Publisher>,
        gate: Arc<dyn RateGate>,
        platform: Platform,
        channel_id: &str,
        clock: Arc<dyn Clock>,
    ) -> Self {
        RateLimitedPublisher {
            inner,
            gate,
            platform,
            limits: limits_for(platform, channel_id),
            clock,
        }
    }

    fn hold(&self, wait: SignedDuration, why: String) -> PlatformError {
        PlatformError::Retryable {
            platform: self.platform,
            after: Some(wait),
            reason: why,
        }
    }

    fn store_failed(&self, e: &StoreError) -> PlatformError {
        PlatformError::Retryable {
            platform: self.platform,
            after: None,
            reason: format!("the publishing limit could not be checked: {e}"),
        }
    }
}

#[async_trait::async_trait]
impl Publisher for RateLimitedPublisher {
    async fn publish(
        &self,
        post: &OutgoingPost,
        idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        let now = self.clock.now();
        for scoped in &self.limits {
            match self.gate.blocked(&scoped.key, now).await {
                Ok(Some(wait)) => {
                    return Err(self.hold(
                        wait,
                        format!("{} is rate limited by the platform", scoped.key),
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(self.store_failed(&e)),
            }
        }
        for scoped in &self.limits {
            match self.gate.acquire(scoped, now).await {
                Ok(None) => {}
                Ok(Some(wait)) => {
                    return Err(self.hold(
                        wait,
                        format!(
                            "{}: {} creates per {}s reached",
                            scoped.key,
                            scoped.limit.max,
                            scoped.limit.per.as_secs()
                        ),
                    ));
                }
                Err(e) => return Err(self.store_failed(&e)),
            }
        }
        let result = self.inner.publish(post, idempotency_key).await;
        if let Err(PlatformError::Retryable {
            after: Some(wait), ..
        }) = &result
            && let Some(channel) = self.limits.first()
            && let Err(e) = self.gate.block(&channel.key, now + *wait).await
        {
            tracing::warn!(key = %channel.key, error = %e, "recording a platform rate limit failed");
        }
        result
    }

    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        self.inner.find_published(post, since).await
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;
    use crate::embedded::{EmbeddedOptions, EmbeddedStore};

    struct Counting {
        calls: AtomicUsize,
        answer_429: bool,
    }

    #[async_trait::async_trait]
    impl Publisher for Counting {
        async fn publish(
            &self,
            _post: &OutgoingPost,
            key: &str,
        ) -> Result<Published, PlatformError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.answer_429 {
                return Err(PlatformError::Retryable {
                    platform: Platform::Slack,
                    after: Some(SignedDuration::from_secs(90)),
                    reason: "HTTP 429".into(),
                });
            }
            Ok(Published {
                platform_id: key.to_owned(),
                url: None,
            })
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn post() -> OutgoingPost {
        OutgoingPost {
            text: "hello".into(),
            link: None,
        }
    }

    fn gate(clock: Arc<ManualClock>) -> Arc<dyn RateGate> {
        let store = EmbeddedStore::open_in_memory(EmbeddedOptions {
            retention_days: 90,
            max_receive_count: 5,
            clock,
        })
        .unwrap();
        Arc::new(StoreRateGate(Arc::new(store)))
    }

    #[tokio::test]
    async fn given_two_publishers_of_one_channel_then_together_they_stay_within_its_window() {
        let clock = Arc::new(ManualClock::new(t("2026-06-02T12:00:10Z")));
        let gate = gate(clock.clone());
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            answer_429: false,
        });
        // Two workers (e.g. two publisher functions) on the same Slack channel: 50 a minute.
        let a = RateLimitedPublisher::new(
            inner.clone(),
            gate.clone(),
            Platform::Slack,
            "ops",
            clock.clone(),
        );
        let b = RateLimitedPublisher::new(
            inner.clone(),
            gate.clone(),
            Platform::Slack,
            "ops",
            clock.clone(),
        );
        let mut held = Vec::new();
        for i in 0..60 {
            let p = if i % 2 == 0 { &a } else { &b };
            if let Err(e) = p.publish(&post(), &format!("d{i}")).await {
                held.push(e);
            }
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 50);
        assert_eq!(held.len(), 10);
        assert!(held.iter().all(|e| e.is_retryable()
            && e.retry_after() == Some(SignedDuration::from_secs(50))));
        assert!(
            held[0].to_string().contains("50 creates per 60s"),
            "{}",
            held[0]
        );
        // Another channel has its own budget; the next window is fresh.
        let c = RateLimitedPublisher::new(
            inner.clone(),
            gate.clone(),
            Platform::Slack,
            "other",
            clock.clone(),
        );
        assert!(c.publish(&post(), "x").await.is_ok());
        clock.advance(SignedDuration::from_secs(50));
        assert!(a.publish(&post(), "y").await.is_ok());
    }

    #[tokio::test]
    async fn given_a_429_with_a_reset_then_every_instance_waits_without_calling_the_platform() {
        let clock = Arc::new(ManualClock::new(t("2026-06-02T12:00:00Z")));
        let gate = gate(clock.clone());
        let limited = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            answer_429: true,
        });
        let first = RateLimitedPublisher::new(
            limited.clone(),
            gate.clone(),
            Platform::Slack,
            "ops",
            clock.clone(),
        );
        assert!(
            first
                .publish(&post(), "a")
                .await
                .unwrap_err()
                .is_retryable()
        );
        let fine = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            answer_429: false,
        });
        let second = RateLimitedPublisher::new(
            fine.clone(),
            gate.clone(),
            Platform::Slack,
            "ops",
            clock.clone(),
        );
        let held = second.publish(&post(), "b").await.unwrap_err();
        assert_eq!(held.retry_after(), Some(SignedDuration::from_secs(90)));
        assert_eq!(fine.calls.load(Ordering::SeqCst), 0, "nothing was sent");
        clock.advance(SignedDuration::from_secs(91));
        assert!(second.publish(&post(), "b").await.is_ok());
    }

    #[test]
    fn given_x_then_both_the_user_and_the_app_limit_apply() {
        let limits = limits_for(Platform::X, "brand-x");
        let keys: Vec<&str> = limits.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["channel:brand-x", "app:x"]);
        assert!(limits[0].limit.max < 100, "below X's 100 per 15 min");
        assert!(limits_for(Platform::Rss, "feed").is_empty());
    }
}
