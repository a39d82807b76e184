//! The publishing use cases (scheduling, the scheduler's dispatch, the publisher, operator
//! commands) on the embedded store with scripted platform clients: what is created, when a
//! create may be repeated, what is announced, and what operators can change.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use hark_shared::clock::{Clock, ManualClock};
use hark_shared::domain::{
    Channel, Delivery, DeliveryState, DeliveryStatus, Platform, ScheduledPost,
};
use hark_shared::embedded::{EmbeddedOptions, EmbeddedStore};
use hark_shared::events::HarkEvent;
use hark_shared::lambda::{Disposition, failed_ids, for_each_record, sqs_event};
use hark_shared::platforms::{Lookup, OutgoingPost, PlatformError, Published, Publisher};
use hark_shared::ports::{ConfigStore, DeliveryStore, MessageQueue, QueueName, ReceivedMessage};
use hark_shared::publishing::{
    ChannelAuth, ChannelPublisher, DispatchSettings, PublishJob, PublishOutcome, PublisherFactory,
    PublisherSettings, PublishingError, RECONCILE_AFTER, RECONCILE_DEADLINE, SettleReport,
    SettleSettings, cancel_delivery, dispatch_due, handle_publish_message, list_deliveries,
    publish_job, retry_delivery, schedule_post, settle_due,
};
use jiff::{SignedDuration, Timestamp};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_780_000_000 + s).unwrap()
}

// ------------------------------------------------------------------ scripted platforms

/// What a scripted platform answers to one create.
#[derive(Debug, Clone)]
enum Answer {
    Ok,
    Retryable(Option<i64>),
    Permanent(&'static str),
    AuthExpired,
    Ambiguous,
}

/// One script for every channel: answers queued per channel (default: success), and every
/// create request recorded as (channel, text, idempotency key).
/// What a scripted platform answers to one look through the account's posts.
#[derive(Debug, Clone)]
enum LookupAnswer {
    /// Finds the post with this platform id.
    Found(&'static str),
    NotFound,
    Unsupported,
    Unreadable,
}

#[derive(Default)]
struct Script {
    answers: Mutex<HashMap<String, VecDeque<Answer>>>,
    /// Per channel; when none is queued the client cannot look (`Unsupported`).
    lookups: Mutex<HashMap<String, VecDeque<LookupAnswer>>>,
    /// Every look: (channel, text, since).
    looks: Mutex<Vec<(String, String, Timestamp)>>,
    calls: Mutex<Vec<(String, String, String)>>,
    credentials: Mutex<HashMap<String, String>>,
}

impl Script {
    fn answer(&self, channel: &str, answers: &[Answer]) {
        self.answers
            .lock()
            .unwrap()
            .entry(channel.into())
            .or_default()
            .extend(answers.iter().cloned());
    }

    fn lookup(&self, channel: &str, answers: &[LookupAnswer]) {
        self.lookups
            .lock()
            .unwrap()
            .entry(channel.into())
            .or_default()
            .extend(answers.iter().cloned());
    }

    fn looks(&self) -> Vec<(String, String, Timestamp)> {
        self.looks.lock().unwrap().clone()
    }

    fn calls(&self) -> Vec<(String, String, String)> {
        self.calls.lock().unwrap().clone()
    }

    fn calls_to(&self, channel: &str) -> usize {
        self.calls().iter().filter(|c| c.0 == channel).count()
    }
}

struct ScriptedPublisher {
    channel: Channel,
    script: Arc<Script>,
}

#[async_trait::async_trait]
impl Publisher for ScriptedPublisher {
    async fn publish(&self, post: &OutgoingPost, key: &str) -> Result<Published, PlatformError> {
        let platform = self.channel.platform;
        let n = {
            let mut calls = self.script.calls.lock().unwrap();
            calls.push((self.channel.id.clone(), post.text.clone(), key.to_owned()));
            calls.len()
        };
        let answer = self
            .script
            .answers
            .lock()
            .unwrap()
            .get_mut(&self.channel.id)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Answer::Ok);
        match answer {
            Answer::Ok => Ok(Published {
                platform_id: format!("{}-{n}", self.channel.id),
                url: Some(format!("https://{}.example/p/{n}", self.channel.id)),
            }),
            Answer::Retryable(after) => Err(PlatformError::Retryable {
                platform,
                after: after.map(SignedDuration::from_secs),
                reason: "HTTP 503: busy".into(),
            }),
            Answer::Permanent(message) => Err(PlatformError::Permanent {
                platform,
                status: Some(422),
                message: message.into(),
            }),
            Answer::AuthExpired => Err(PlatformError::AuthExpired {
                platform,
                message: "The access token is invalid".into(),
            }),
            Answer::Ambiguous => Err(PlatformError::Ambiguous {
                platform,
                reason: "timed out".into(),
            }),
        }
    }

    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        let channel = &self.channel;
        self.script
            .looks
            .lock()
            .unwrap()
            .push((channel.id.clone(), post.text.clone(), since));
        let answer = self
            .script
            .lookups
            .lock()
            .unwrap()
            .get_mut(&channel.id)
            .and_then(VecDeque::pop_front)
            .unwrap_or(LookupAnswer::Unsupported);
        match answer {
            LookupAnswer::Found(id) => Ok(Lookup::Found(Published {
                platform_id: id.to_owned(),
                url: Some(format!("https://{}.example/p/{id}", channel.id)),
            })),
            LookupAnswer::NotFound => Ok(Lookup::NotFound),
            LookupAnswer::Unsupported => Ok(Lookup::Unsupported),
            LookupAnswer::Unreadable => Err(PlatformError::Retryable {
                platform: channel.platform,
                after: None,
                reason: "HTTP 503 reading the timeline".into(),
            }),
        }
    }
}

#[derive(Clone, Default)]
struct Scripted(Arc<Script>);

#[async_trait::async_trait]
impl PublisherFactory for Scripted {
    async fn publisher_for(&self, channel: &Channel) -> Result<ChannelPublisher, PlatformError> {
        let credentials = self
            .0
            .credentials
            .lock()
            .unwrap()
            .get(&channel.id)
            .cloned()
            .unwrap_or_else(|| "credentials-1".into());
        Ok(ChannelPublisher {
            publisher: Arc::new(ScriptedPublisher {
                channel: channel.clone(),
                script: self.0.clone(),
            }),
            credentials: Some(credentials),
        })
    }
}

// ------------------------------------------------------------------ fixtures

struct World {
    store: Arc<EmbeddedStore>,
    /// Also the queue's clock: delayed and hidden messages follow simulated time.
    clock: Arc<ManualClock>,
    script: Scripted,
    settings: PublisherSettings,
}

impl World {
    async fn new() -> World {
        let clock = Arc::new(ManualClock::new(t(0)));
        let store = Arc::new(
            EmbeddedStore::open_in_memory(EmbeddedOptions {
                retention_days: hark_tests::RETENTION_DAYS,
                max_receive_count: hark_tests::MAX_RECEIVES,
                clock: clock.clone(),
            })
            .unwrap(),
        );
        for (id, platform) in [
            ("masto", "mastodon"),
            ("sky", "bluesky"),
            ("tg", "telegram"),
        ] {
            let channel: Channel = serde_json::from_value(serde_json::json!({
                "id": id, "platform": platform, "base_url": "https://platform.example",
                "account": "brand", "token": "env:T",
            }))
            .unwrap();
            store.upsert(&channel).await.unwrap();
        }
        World {
            store,
            clock,
            script: Scripted::default(),
            settings: PublisherSettings {
                owner: "test-worker".into(),
                ..PublisherSettings::default()
            },
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn at(&self, s: i64) {
        self.clock.set(t(s));
    }

    async fn post(&self, json: serde_json::Value) -> ScheduledPost {
        let mut v = serde_json::json!({"text": "Hark 1.0 is out!", "channels": ["masto"]});
        v.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        let post: ScheduledPost = serde_json::from_value(v).unwrap();
        self.store.upsert(&post).await.unwrap();
        post
    }

    /// A post (`json` over the defaults) due at 60 s, scheduled, and the job the tick at 61 s
    /// sends for it.
    async fn due_job(&self, json: serde_json::Value) -> PublishJob {
        let post = self.post(json).await;
        self.schedule(&post).await.unwrap();
        self.at(61);
        self.tick().await.remove(0)
    }

    async fn schedule(&self, post: &ScheduledPost) -> Result<Vec<String>, PublishingError> {
        schedule_post(&*self.store, &*self.store, post, false, self.now())
            .await
            .map(|r| r.created)
    }

    /// One scheduler tick: returns the publish jobs it sent (drained from the queue).
    async fn tick(&self) -> Vec<PublishJob> {
        dispatch_due(
            &*self.store,
            &*self.store,
            self.now(),
            &DispatchSettings::default(),
        )
        .await
        .unwrap();
        drain(&*self.store, QueueName::Publish)
            .await
            .iter()
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect()
    }

    async fn run(&self, job: &PublishJob) -> PublishOutcome {
        publish_job(
            &*self.store,
            &*self.store,
            &self.script,
            job,
            &*self.clock,
            &self.settings,
        )
        .await
        .unwrap()
    }

    /// The settle step of the scheduler tick; returns its report and the publish jobs it
    /// sent (drained from the queue).
    async fn settle(&self) -> (SettleReport, Vec<PublishJob>) {
        let report = settle_due(
            &*self.store,
            &*self.store,
            &self.script,
            self.now(),
            &SettleSettings::default(),
        )
        .await
        .unwrap();
        (report, self.jobs().await)
    }

    /// The publish jobs visible now, without a scheduler tick (drained from the queue).
    async fn jobs(&self) -> Vec<PublishJob> {
        drain(&*self.store, QueueName::Publish)
            .await
            .iter()
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect()
    }

    /// Tick, then run every job sent.
    async fn tick_and_publish(&self) -> Vec<PublishOutcome> {
        let mut outcomes = Vec::new();
        for job in self.tick().await {
            outcomes.push(self.run(&job).await);
        }
        outcomes
    }

    async fn delivery(&self, id: &str) -> Delivery {
        self.store.get_delivery(id).await.unwrap().unwrap()
    }

    async fn deliveries(&self) -> Vec<Delivery> {
        self.store.list_deliveries(None).await.unwrap()
    }

    async fn events(&self) -> Vec<HarkEvent> {
        drain(&*self.store, QueueName::Events)
            .await
            .iter()
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect()
    }
}

async fn drain(queue: &dyn MessageQueue, name: QueueName) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    loop {
        let got = queue
            .receive(name, 10, SignedDuration::from_secs(60))
            .await
            .unwrap();
        if got.is_empty() {
            return all;
        }
        for m in &got {
            queue.delete(name, &m.receipt).await.unwrap();
        }
        all.extend(got);
    }
}

fn published(outcome: &PublishOutcome) -> bool {
    matches!(outcome, PublishOutcome::Published { .. })
}

// ------------------------------------------------------------------ scheduling

#[tokio::test]
async fn given_a_post_on_two_channels_when_scheduled_twice_then_one_delivery_each_with_deterministic_ids()
 {
    let w = World::new().await;
    let post = w
        .post(serde_json::json!({"id": "launch", "at": t(3600), "channels": ["masto", "sky"]}))
        .await;
    let created = w.schedule(&post).await.unwrap();
    assert_eq!(
        created,
        [
            format!("launch.masto.{}", t(3600).as_second()),
            format!("launch.sky.{}", t(3600).as_second())
        ]
    );
    assert!(w.schedule(&post).await.unwrap().is_empty(), "idempotent");
    assert_eq!(w.deliveries().await.len(), 2);
    assert!(w.tick().await.is_empty(), "not due yet");
}

#[tokio::test]
async fn given_a_text_too_long_for_one_channel_when_scheduled_then_the_error_names_it_and_nothing_is_created()
 {
    let w = World::new().await;
    let post = w
        .post(serde_json::json!({"id": "long", "at": t(60), "channels": ["masto", "sky"], "text": "x".repeat(400)}))
        .await;
    let err = w.schedule(&post).await.unwrap_err();
    let PublishingError::Invalid { post, problems } = &err else {
        panic!("{err}");
    };
    assert_eq!(post, "long");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].channel(), "sky");
    assert!(
        err.to_string()
            .contains("channel `sky`: Bluesky allows 300 graphemes, this text has 400 (100 over)"),
        "{err}"
    );
    assert!(
        w.deliveries().await.is_empty(),
        "the valid channel is not scheduled alone"
    );
}

#[tokio::test]
async fn given_a_one_off_post_far_in_the_past_when_scheduled_then_it_is_skipped_not_published() {
    let w = World::new().await;
    w.at(86_400);
    let post = w.post(serde_json::json!({"id": "old", "at": t(0)})).await;
    let report = schedule_post(&*w.store, &*w.store, &post, false, w.now())
        .await
        .unwrap();
    assert!(report.created.is_empty());
    assert!(report.skipped.unwrap().contains("in the past"));
    let recent = w
        .post(serde_json::json!({"id": "recent", "at": t(86_400 - 600)}))
        .await;
    assert_eq!(
        w.schedule(&recent).await.unwrap().len(),
        1,
        "10 minutes late is still published"
    );
}

#[tokio::test]
async fn given_a_post_moved_to_another_time_when_rescheduled_then_the_old_queued_delivery_is_cancelled()
 {
    let w = World::new().await;
    let post = w
        .post(serde_json::json!({"id": "moved", "at": t(3600), "channels": ["masto", "sky"]}))
        .await;
    w.schedule(&post).await.unwrap();
    let moved = w
        .post(serde_json::json!({"id": "moved", "at": t(7200), "channels": ["masto"]}))
        .await;
    let report = schedule_post(&*w.store, &*w.store, &moved, true, w.now())
        .await
        .unwrap();
    assert_eq!(report.superseded.len(), 2);
    assert_eq!(
        report.created,
        [format!("moved.masto.{}", t(7200).as_second())]
    );
    let statuses: Vec<_> = w.deliveries().await.iter().map(|d| d.status()).collect();
    assert_eq!(
        statuses,
        [
            DeliveryStatus::Cancelled,
            DeliveryStatus::Cancelled,
            DeliveryStatus::Queued
        ]
    );
    let events = w.events().await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(
        |e| matches!(e, HarkEvent::PostCancelled { reason, .. } if reason.contains("superseded"))
    ));
}

// ------------------------------------------------------------------ the happy path

#[tokio::test]
async fn given_a_due_delivery_when_ticked_and_published_then_it_records_id_url_and_announces_once()
{
    let w = World::new().await;
    let post = w
        .post(serde_json::json!({"id": "launch", "at": t(60), "link": "https://example.com/hark"}))
        .await;
    w.schedule(&post).await.unwrap();
    w.at(61);
    let outcomes = w.tick_and_publish().await;
    assert_eq!(outcomes.len(), 1);
    assert!(published(&outcomes[0]), "{outcomes:?}");
    let d = &w.deliveries().await[0];
    let DeliveryState::Published {
        platform_id,
        url,
        published_at,
    } = &d.state
    else {
        panic!("{d:?}");
    };
    assert_eq!(
        (platform_id.as_str(), url.as_deref(), *published_at),
        ("masto-1", Some("https://masto.example/p/1"), t(61))
    );
    assert!(!d.event_pending);
    let calls = w.script.0.calls();
    assert_eq!(
        calls,
        [(
            "masto".to_owned(),
            "Hark 1.0 is out!".to_owned(),
            d.id.clone()
        )],
        "the idempotency key is the delivery id; the link travels separately"
    );
    let events = w.events().await;
    assert_eq!(events.len(), 1);
    let HarkEvent::PostPublished {
        event_id,
        platform,
        scheduled_for,
        ..
    } = &events[0]
    else {
        panic!("{events:?}");
    };
    assert_eq!(event_id, &format!("{}:PUBLISHED:1", d.id));
    assert_eq!(
        (*platform, *scheduled_for),
        (Some(Platform::Mastodon), t(60))
    );
}

#[tokio::test]
async fn given_two_ticks_in_the_same_minute_then_one_job_and_a_lost_job_is_replaced_after_the_lease()
 {
    let w = World::new().await;
    let post = w.post(serde_json::json!({"id": "p", "at": t(60)})).await;
    w.schedule(&post).await.unwrap();
    w.at(61);
    let first = w.tick().await;
    w.at(90);
    assert_eq!(first.len(), 1);
    assert!(w.tick().await.is_empty(), "dispatched already");
    // The job is lost (never consumed). After the dispatch lease a new job goes out and
    // the old one has become stale.
    w.at(61 + 601);
    let second = w.tick().await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].dispatch, first[0].dispatch + 1);
    assert!(
        matches!(w.run(&first[0]).await, PublishOutcome::Skipped { why, .. } if why.starts_with("stale job"))
    );
    assert!(published(&w.run(&second[0]).await));
    assert_eq!(w.script.0.calls().len(), 1);
}

#[tokio::test]
async fn given_the_same_job_twice_then_the_platform_is_called_once() {
    let w = World::new().await;
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    assert!(published(&w.run(&job).await));
    assert!(matches!(
        w.run(&job).await,
        PublishOutcome::Skipped {
            why: "already settled",
            ..
        }
    ));
    assert_eq!(w.script.0.calls().len(), 1);
    assert_eq!(w.events().await.len(), 1);
}

#[tokio::test]
async fn given_a_malformed_message_then_it_is_a_batch_item_failure_and_the_others_are_published() {
    let w = World::new().await;
    let post = w.post(serde_json::json!({"id": "p", "at": t(60)})).await;
    w.schedule(&post).await.unwrap();
    w.at(61);
    dispatch_due(&*w.store, &*w.store, w.now(), &DispatchSettings::default())
        .await
        .unwrap();
    w.store
        .send_batch(QueueName::Publish, &["{not a job".to_owned()])
        .await
        .unwrap();
    let messages = w
        .store
        .receive(QueueName::Publish, 10, SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    let response = for_each_record(sqs_event(&messages), |r| {
        let w = &w;
        async move {
            handle_publish_message(
                &*w.store,
                &*w.store,
                &w.script,
                &r.body,
                &*w.clock,
                &w.settings,
            )
            .await
            .map(|o| {
                if o.leave_on_queue() {
                    Disposition::Retry
                } else {
                    Disposition::Done
                }
            })
        }
    })
    .await;
    let bad = messages
        .iter()
        .find(|m| m.body.starts_with("{not"))
        .unwrap();
    assert_eq!(failed_ids(&response), [bad.message_id.as_str()]);
    assert_eq!(w.deliveries().await[0].status(), DeliveryStatus::Published);
}

// ------------------------------------------------------------------ failures

#[tokio::test]
async fn given_a_retryable_failure_then_it_is_requeued_within_30s_and_an_old_job_cannot_skip_the_backoff()
 {
    let w = World::new().await;
    w.script.0.answer("masto", &[Answer::Retryable(None)]);
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let PublishOutcome::Requeued {
        retry_at, reason, ..
    } = w.run(&job).await
    else {
        panic!("requeued");
    };
    assert!(retry_at > t(61) && retry_at <= t(61 + 30), "{retry_at}");
    assert!(reason.contains("HTTP 503"));
    // A duplicate of the old job arrives at once: stale, the backoff holds.
    assert!(matches!(w.run(&job).await, PublishOutcome::Skipped { .. }));
    assert!(w.tick().await.is_empty(), "not due before retry_at");
    w.clock.set(retry_at);
    let outcomes = w.tick_and_publish().await;
    assert!(published(&outcomes[0]));
    let d = &w.deliveries().await[0];
    assert_eq!(d.attempts, 2);
    assert_eq!(d.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!(w.script.0.calls().len(), 2);
}

#[tokio::test]
async fn given_a_rate_limit_with_a_reset_then_the_retry_waits_for_the_reset() {
    let w = World::new().await;
    w.script.0.answer("masto", &[Answer::Retryable(Some(900))]);
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let PublishOutcome::Requeued { retry_at, .. } = w.run(&job).await else {
        panic!("requeued");
    };
    assert!(
        retry_at >= t(61 + 900) && retry_at < t(61 + 900 + 20),
        "{retry_at}"
    );
}

#[tokio::test]
async fn given_retryable_failures_that_never_stop_then_it_fails_after_the_last_attempt_with_the_reason()
 {
    let mut w = World::new().await;
    w.settings.max_attempts = 3;
    w.script.0.answer(
        "masto",
        &[
            Answer::Retryable(None),
            Answer::Retryable(None),
            Answer::Retryable(None),
        ],
    );
    let post = w.post(serde_json::json!({"id": "p", "at": t(60)})).await;
    w.schedule(&post).await.unwrap();
    let mut last = None;
    for minute in 1..=10 {
        w.at(60 * minute + 1);
        for outcome in w.tick_and_publish().await {
            last = Some(outcome);
        }
    }
    let Some(PublishOutcome::Failed {
        reason,
        needs_reauth: false,
        ..
    }) = last
    else {
        panic!("{last:?}");
    };
    assert!(
        reason.starts_with("gave up after 3 attempts: mastodon: temporarily unavailable"),
        "{reason}"
    );
    assert_eq!(w.script.0.calls().len(), 3);
}

#[tokio::test]
async fn given_a_permanent_failure_then_failed_with_the_platforms_words_and_one_event() {
    let w = World::new().await;
    w.script.0.answer(
        "masto",
        &[Answer::Permanent("Validation failed: Text can't be blank")],
    );
    let post = w.post(serde_json::json!({"id": "p", "at": t(60)})).await;
    w.schedule(&post).await.unwrap();
    w.at(61);
    let outcomes = w.tick_and_publish().await;
    assert!(
        matches!(&outcomes[0], PublishOutcome::Failed { reason, .. } if reason.contains("Validation failed: Text can't be blank"))
    );
    let events = w.events().await;
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], HarkEvent::PostFailed { needs_reauth: false, reason, .. } if reason.contains("HTTP 422"))
    );
}

#[tokio::test]
async fn given_expired_credentials_then_the_channel_is_flagged_once_and_later_deliveries_fail_without_calling_it()
 {
    let w = World::new().await;
    w.script.0.answer("masto", &[Answer::AuthExpired]);
    for (id, at) in [("a", 60), ("b", 61), ("c", 62)] {
        let post = w.post(serde_json::json!({"id": id, "at": t(at)})).await;
        w.schedule(&post).await.unwrap();
    }
    w.at(120);
    let outcomes = w.tick_and_publish().await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            PublishOutcome::Failed {
                needs_reauth: true,
                ..
            }
        )),
        "{outcomes:?}"
    );
    assert_eq!(
        w.script.0.calls_to("masto"),
        1,
        "only the first one reached the platform"
    );
    let events = w.events().await;
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, HarkEvent::ChannelNeedsReauth { .. }))
        .collect();
    assert_eq!(alerts.len(), 1, "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(
                e,
                HarkEvent::PostFailed {
                    needs_reauth: true,
                    ..
                }
            ))
            .count(),
        3
    );
    let flag = w.store.get::<ChannelAuth>("masto").await.unwrap().unwrap();
    assert!(flag.needs_reauth && flag.reason.contains("access token is invalid"));
    let view = list_deliveries(&*w.store, Some("b")).await.unwrap();
    assert!(
        view[0]
            .error
            .as_deref()
            .unwrap()
            .contains("needs re-authentication"),
        "{view:?}"
    );

    // The operator replaces the token and retries: the flag clears itself, the post goes out.
    w.script
        .0
        .credentials
        .lock()
        .unwrap()
        .insert("masto".into(), "credentials-2".into());
    retry_delivery(&*w.store, &*w.store, &view[0].id, w.now())
        .await
        .unwrap();
    let outcomes = w.tick_and_publish().await;
    assert!(published(&outcomes[0]), "{outcomes:?}");
    assert!(
        !w.store
            .get::<ChannelAuth>("masto")
            .await
            .unwrap()
            .unwrap()
            .needs_reauth
    );
}

#[tokio::test]
async fn given_an_ambiguous_answer_from_a_platform_without_a_guard_then_unknown_and_never_resent() {
    let w = World::new().await;
    w.script.0.answer("tg", &[Answer::Ambiguous]);
    let job = w
        .due_job(serde_json::json!({"id": "p", "at": t(60), "channels": ["tg"]}))
        .await;
    assert!(matches!(w.run(&job).await, PublishOutcome::Unknown { .. }));
    assert!(matches!(w.run(&job).await, PublishOutcome::Skipped { .. }));
    w.at(3600);
    assert!(w.tick_and_publish().await.is_empty(), "UNKNOWN is not due");
    assert_eq!(w.script.0.calls().len(), 1);
    assert!(matches!(
        &w.events().await[..],
        [HarkEvent::PostUnknown { .. }]
    ));
}

// ------------------------------------------------------------------ crashes and races

/// Puts a delivery in SENT as a worker that crashed right after sending would leave it.
async fn crash_after_send(w: &World, channel: &str) -> (Delivery, PublishJob) {
    let post = w
        .post(serde_json::json!({"id": format!("p-{channel}"), "at": t(60), "channels": [channel]}))
        .await;
    w.schedule(&post).await.unwrap();
    w.at(61);
    let job = w
        .tick()
        .await
        .into_iter()
        .find(|j| j.delivery_id.starts_with(&format!("p-{channel}.")))
        .expect("the post's job");
    let mut d = w.delivery(&job.delivery_id).await;
    d.claim("crashed-worker", SignedDuration::from_mins(5), t(61))
        .unwrap();
    let mut d = w.store.update_delivery(&d).await.unwrap();
    d.mark_sent(SignedDuration::from_mins(5), t(62)).unwrap();
    (w.store.update_delivery(&d).await.unwrap(), job)
}

#[tokio::test]
async fn given_a_worker_that_crashed_after_sending_to_mastodon_then_the_redelivered_job_resends_with_the_same_key()
 {
    let w = World::new().await;
    let (sent, job) = crash_after_send(&w, "masto").await;
    w.at(90);
    assert!(
        matches!(w.run(&job).await, PublishOutcome::InFlight { .. }),
        "the lease still runs"
    );
    w.at(62 + 301);
    assert!(published(&w.run(&job).await));
    let calls = w.script.0.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].2, sent.id,
        "same Idempotency-Key: the platform returns the first status"
    );
    assert_eq!(w.delivery(&sent.id).await.attempts, 2);
}

#[tokio::test]
async fn given_a_worker_that_crashed_after_sending_to_telegram_then_unknown_not_resent() {
    let w = World::new().await;
    let (sent, job) = crash_after_send(&w, "tg").await;
    w.at(62 + 301);
    let outcome = w.run(&job).await;
    let PublishOutcome::Unknown { reason, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.contains("telegram has no idempotency guard"),
        "{reason}"
    );
    assert!(w.script.0.calls().is_empty());
    assert_eq!(w.delivery(&sent.id).await.status(), DeliveryStatus::Unknown);
}

#[tokio::test]
async fn given_a_mastodon_send_more_than_50_minutes_ago_then_unknown_instead_of_a_resend_the_server_may_not_recognise()
 {
    let w = World::new().await;
    let (sent, job) = crash_after_send(&w, "masto").await;
    w.at(62 + 50 * 60);
    assert!(
        matches!(w.run(&job).await, PublishOutcome::Unknown { reason, .. } if reason.contains("forgets idempotency keys"))
    );
    assert!(w.script.0.calls().is_empty());
    // Bluesky's record key never expires.
    let (sky, sky_job) = crash_after_send(&w, "sky").await;
    w.at(62 + 86_400);
    assert!(published(&w.run(&sky_job).await));
    assert_eq!(w.script.0.calls()[0].2, sky.id);
    assert_ne!(sent.id, sky.id);
}

#[tokio::test]
async fn given_a_claim_whose_worker_died_before_sending_then_the_job_takes_it_over() {
    let w = World::new().await;
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let mut d = w.delivery(&job.delivery_id).await;
    d.claim("dead-worker", SignedDuration::from_mins(5), t(61))
        .unwrap();
    w.store.update_delivery(&d).await.unwrap();
    w.at(120);
    assert!(matches!(w.run(&job).await, PublishOutcome::InFlight { .. }));
    w.at(61 + 300);
    assert!(published(&w.run(&job).await));
    assert_eq!(w.script.0.calls().len(), 1);
}

#[tokio::test]
async fn given_two_publishers_racing_for_one_job_then_one_creates_and_the_other_leaves_the_job() {
    let w = World::new().await;
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let (a, b) = tokio::join!(w.run(&job), w.run(&job));
    let outcomes = [a, b];
    assert_eq!(
        outcomes.iter().filter(|o| published(o)).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.iter().all(|o| published(o)
        || matches!(
            o,
            PublishOutcome::InFlight { .. } | PublishOutcome::Skipped { .. }
        )));
    assert_eq!(w.script.0.calls().len(), 1);
    assert_eq!(w.events().await.len(), 1);
}

#[tokio::test]
async fn given_a_crash_after_recording_and_before_announcing_then_the_redelivery_announces_the_same_event_once()
 {
    let w = World::new().await;
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let mut d = w.delivery(&job.delivery_id).await;
    d.claim("w", SignedDuration::from_mins(5), t(61)).unwrap();
    let mut d = w.store.update_delivery(&d).await.unwrap();
    d.mark_sent(SignedDuration::from_mins(5), t(61)).unwrap();
    let mut d = w.store.update_delivery(&d).await.unwrap();
    d.mark_published("masto-9", None, t(62)).unwrap();
    let d = w.store.update_delivery(&d).await.unwrap();
    assert!(d.event_pending, "recorded, then the worker died");
    assert!(
        matches!(w.run(&job).await, PublishOutcome::InFlight { .. }),
        "its worker may still be announcing it"
    );
    assert!(w.events().await.is_empty());
    w.at(62 + 300);
    assert!(matches!(
        w.run(&job).await,
        PublishOutcome::Skipped {
            why: "already settled",
            ..
        }
    ));
    assert!(matches!(w.run(&job).await, PublishOutcome::Skipped { .. }));
    let events = w.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_id(), format!("{}:PUBLISHED:1", d.id));
    assert!(!w.delivery(&d.id).await.event_pending);
    assert!(w.script.0.calls().is_empty(), "nothing re-sent");
}

// ------------------------------------------------------------------ missed windows, recurrence

#[tokio::test]
async fn given_a_paused_stack_then_an_overdue_post_publishes_once_late_and_a_recurring_one_rolls_forward()
 {
    let w = World::new().await;
    let once = w.post(serde_json::json!({"id": "once", "at": t(60)})).await;
    let daily = w
        .post(serde_json::json!({"id": "daily", "at": t(120), "time_zone": "Europe/Berlin", "repeat": {"every_days": 1}}))
        .await;
    w.schedule(&once).await.unwrap();
    assert_eq!(
        w.schedule(&daily).await.unwrap().len(),
        1,
        "the first occurrence"
    );

    // Nothing runs for five days and a bit.
    w.at(5 * 86_400 + 3600);
    let outcomes = w.tick_and_publish().await;
    assert_eq!(
        outcomes.iter().filter(|o| published(o)).count(),
        2,
        "{outcomes:?}"
    );
    let deliveries = w.deliveries().await;
    let daily_ones: Vec<_> = deliveries.iter().filter(|d| d.post_id == "daily").collect();
    assert_eq!(
        daily_ones.len(),
        2,
        "the missed occurrence, once, and the next future one"
    );
    assert_eq!(daily_ones[1].occurrence, 6);
    assert_eq!(daily_ones[1].scheduled_for, t(6 * 86_400 + 120));
    assert_eq!(daily_ones[1].status(), DeliveryStatus::Queued);
    assert_eq!(w.tick_and_publish().await.len(), 0, "nothing fires twice");
    w.at(6 * 86_400 + 120);
    assert!(published(&w.tick_and_publish().await[0]));
    assert_eq!(w.script.0.calls().len(), 3);
}

// ------------------------------------------------------------------ operators

#[tokio::test]
async fn given_an_operator_then_queued_deliveries_cancel_sent_ones_refuse_and_only_failed_ones_retry()
 {
    let w = World::new().await;
    let post = w
        .post(serde_json::json!({"id": "p", "at": t(60), "channels": ["masto", "sky"]}))
        .await;
    let ids = w.schedule(&post).await.unwrap();
    let cancelled = cancel_delivery(
        &*w.store,
        &*w.store,
        &ids[0],
        "cancelled by operator",
        w.now(),
    )
    .await
    .unwrap();
    assert_eq!(cancelled.status(), DeliveryStatus::Cancelled);
    assert!(
        matches!(&w.events().await[..], [HarkEvent::PostCancelled { reason, .. }] if reason == "cancelled by operator")
    );
    let err = retry_delivery(&*w.store, &*w.store, &ids[0], w.now())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("only a failed delivery can be retried"),
        "{err}"
    );

    let err = cancel_delivery(&*w.store, &*w.store, "nope", "x", w.now())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "delivery `nope` does not exist");

    w.at(61);
    let outcomes = w.tick_and_publish().await;
    assert_eq!(
        outcomes.len(),
        1,
        "the cancelled one is not dispatched: {outcomes:?}"
    );
    assert_eq!(w.script.0.calls_to("masto"), 0);

    let other = World::new().await;
    let (sent, _) = crash_after_send(&other, "tg").await;
    let err = cancel_delivery(&*other.store, &*other.store, &sent.id, "x", other.now())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("may already have reached the platform"),
        "{err}"
    );
}

#[tokio::test]
async fn given_a_cancellation_recorded_but_not_announced_when_cancelled_again_then_it_is_announced_once()
 {
    let w = World::new().await;
    let post = w.post(serde_json::json!({"id": "p", "at": t(600)})).await;
    let ids = w.schedule(&post).await.unwrap();
    let mut d = w.delivery(&ids[0]).await;
    d.cancel("cancelled by operator", t(1)).unwrap();
    w.store.update_delivery(&d).await.unwrap();
    // The command died before the event went out; the operator runs it again.
    let again = cancel_delivery(
        &*w.store,
        &*w.store,
        &ids[0],
        "cancelled by operator",
        w.now(),
    )
    .await
    .unwrap();
    assert!(!again.event_pending);
    assert!(matches!(
        &w.events().await[..],
        [HarkEvent::PostCancelled { .. }]
    ));
    let refused = cancel_delivery(&*w.store, &*w.store, &ids[0], "x", w.now()).await;
    assert!(
        refused.is_err(),
        "announced now: a further cancel is refused"
    );
    assert!(w.events().await.is_empty());
}

// ------------------------------------------------------------------ retries sent by the publisher

#[tokio::test]
async fn given_a_500_then_success_then_the_publisher_sends_the_retry_itself_and_it_publishes_within_30s_without_a_tick()
 {
    let w = World::new().await;
    w.script.0.answer("masto", &[Answer::Retryable(None)]);
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let PublishOutcome::Requeued {
        retry_at,
        redispatched,
        ..
    } = w.run(&job).await
    else {
        panic!("requeued");
    };
    assert!(redispatched, "the publisher sent the retry's job itself");
    assert!(retry_at > t(61) && retry_at <= t(61 + 30), "{retry_at}");
    assert!(w.jobs().await.is_empty(), "held back until retry_at");
    assert!(
        matches!(w.run(&job).await, PublishOutcome::Skipped { .. }),
        "a duplicate of the first job is stale: it cannot skip the backoff"
    );

    // No scheduler tick from here on: the delayed job alone publishes it.
    w.clock.set(retry_at);
    let jobs = w.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].dispatch, job.dispatch + 1, "a new job number");
    assert!(published(&w.run(&jobs[0]).await));
    let d = w.delivery(&job.delivery_id).await;
    assert_eq!((d.status(), d.attempts), (DeliveryStatus::Published, 2));
    assert_eq!(w.script.0.calls().len(), 2);
    w.at(7200);
    assert!(
        w.tick().await.is_empty(),
        "the tick does not send a job of its own for it"
    );
    assert!(matches!(
        &w.events().await[..],
        [HarkEvent::PostPublished { .. }]
    ));
}

#[tokio::test]
async fn given_a_retry_later_than_sqs_can_delay_then_the_tick_dispatches_it_when_due() {
    let w = World::new().await;
    w.script.0.answer("masto", &[Answer::Retryable(Some(1800))]);
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let PublishOutcome::Requeued {
        retry_at,
        redispatched,
        ..
    } = w.run(&job).await
    else {
        panic!("requeued");
    };
    assert!(!redispatched, "30 minutes is beyond SQS's 15-minute delay");
    w.clock.set(retry_at);
    let outcomes = w.tick_and_publish().await;
    assert!(published(&outcomes[0]), "{outcomes:?}");
}

// ------------------------------------------------------------------ the settle sweep

/// Settles with `at` as now.
async fn settle_at(w: &World, at: Timestamp) -> (SettleReport, Vec<PublishJob>) {
    w.clock.set(at);
    w.settle().await
}

#[tokio::test]
async fn given_a_claim_whose_worker_died_and_whose_job_was_dead_lettered_then_the_tick_requeues_and_publishes_it()
 {
    let w = World::new().await;
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60)})).await;
    let mut d = w.delivery(&job.delivery_id).await;
    d.claim("dead-worker", SignedDuration::from_mins(5), t(61))
        .unwrap();
    w.store.update_delivery(&d).await.unwrap();
    // Its job is gone (dead-lettered): only the settle sweep can bring it back.

    let (report, jobs) = settle_at(&w, t(61 + 299)).await;
    assert_eq!((report.found, jobs.len()), (0, 0), "the lease still runs");
    let (report, jobs) = settle_at(&w, t(61 + 300)).await;
    assert_eq!((report.recovered, report.dispatched), (1, 1), "{report:?}");
    assert!(
        matches!(w.run(&job).await, PublishOutcome::Skipped { .. }),
        "the dead job would be stale had it come back"
    );
    assert!(published(&w.run(&jobs[0]).await));
    let d = w.delivery(&job.delivery_id).await;
    assert_eq!((d.status(), d.attempts), (DeliveryStatus::Published, 2));
    assert_eq!(w.script.0.calls().len(), 1, "created once");
    let (report, _) = settle_at(&w, t(7200)).await;
    assert_eq!(report.found, 0, "nothing left to settle");
}

#[tokio::test]
async fn given_stranded_sends_then_a_guarded_platform_is_dispatched_again_and_an_unguarded_one_becomes_unknown()
 {
    let w = World::new().await;
    let (masto, _) = crash_after_send(&w, "masto").await;
    let (tg, _) = crash_after_send(&w, "tg").await;

    let (report, jobs) = settle_at(&w, t(62 + 300)).await;
    assert_eq!(
        (report.recovered, report.made_unknown),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].delivery_id, masto.id);
    assert!(published(&w.run(&jobs[0]).await));
    assert_eq!(
        w.script.0.calls(),
        [("masto".into(), "Hark 1.0 is out!".into(), masto.id.clone())],
        "re-sent once, under the same idempotency key"
    );
    let tg = w.delivery(&tg.id).await;
    let DeliveryState::Unknown { reason } = &tg.state else {
        panic!("{tg:?}");
    };
    assert!(reason.contains("no idempotency guard"), "{reason}");
    assert!(!tg.event_pending);
    let events = w.events().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events.iter().any(
            |e| matches!(e, HarkEvent::PostUnknown { delivery_id, .. } if *delivery_id == tg.id)
        )
    );
}

// ------------------------------------------------------------------ the reconciler

/// A Telegram delivery (no idempotency guard) whose create timed out: UNKNOWN.
async fn unknown_delivery(w: &World) -> Delivery {
    w.script.0.answer("tg", &[Answer::Ambiguous]);
    let job = w.due_job(serde_json::json!({"id": "p", "at": t(60), "channels": ["tg"], "text": "Launch day ✨"})).await;
    assert!(matches!(w.run(&job).await, PublishOutcome::Unknown { .. }));
    w.delivery(&job.delivery_id).await
}

#[tokio::test]
async fn given_an_unknown_delivery_found_on_the_account_then_published_with_its_id_and_announced_once()
 {
    let w = World::new().await;
    let unknown = unknown_delivery(&w).await;
    w.script.0.lookup("tg", &[LookupAnswer::Found("tg-77")]);
    let (report, _) = settle_at(&w, t(61) + RECONCILE_AFTER - SignedDuration::from_secs(1)).await;
    assert_eq!(report.found, 0, "the platform gets time to list the post");

    let (report, jobs) = settle_at(&w, t(61) + RECONCILE_AFTER).await;
    assert_eq!(report.reconciled_published, 1, "{report:?}");
    assert!(jobs.is_empty());
    let d = w.delivery(&unknown.id).await;
    let DeliveryState::Published {
        platform_id, url, ..
    } = &d.state
    else {
        panic!("{d:?}");
    };
    assert_eq!(platform_id, "tg-77");
    assert_eq!(url.as_deref(), Some("https://tg.example/p/tg-77"));
    let looks = w.script.0.looks();
    assert_eq!(looks.len(), 1);
    assert_eq!(looks[0].1, "Launch day ✨", "looked for the exact text");
    assert_eq!(
        looks[0].2,
        unknown.first_sent_at.unwrap() - SignedDuration::from_mins(5),
        "since the first send, with a margin"
    );
    assert_eq!(w.script.0.calls().len(), 1, "never sent again");
    let events = w.events().await;
    assert!(
        matches!(
            &events[..],
            [HarkEvent::PostUnknown { .. }, HarkEvent::PostPublished { platform_id, .. }] if platform_id == "tg-77"
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn given_an_unknown_delivery_certainly_not_on_the_account_then_it_is_queued_dispatched_and_published_once()
 {
    let w = World::new().await;
    let unknown = unknown_delivery(&w).await;
    w.script.0.lookup("tg", &[LookupAnswer::NotFound]);
    let (report, jobs) = settle_at(&w, t(200)).await;
    assert_eq!(
        (report.reconciled_requeued, report.dispatched),
        (1, 1),
        "{report:?}"
    );
    assert!(published(&w.run(&jobs[0]).await));
    let d = w.delivery(&unknown.id).await;
    assert_eq!((d.status(), d.attempts), (DeliveryStatus::Published, 2));
    assert!(
        d.last_error
            .as_deref()
            .is_some_and(|e| e.contains("did not go through")),
        "{d:?}"
    );
    assert_eq!(
        w.script.0.calls().len(),
        2,
        "the one lost create, then one post"
    );
    let events = w.events().await;
    assert!(
        matches!(
            &events[..],
            [
                HarkEvent::PostUnknown { .. },
                HarkEvent::PostPublished { .. }
            ]
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn given_an_unknown_delivery_that_cannot_be_looked_up_then_it_is_tried_again_later_and_fails_after_the_deadline_with_one_event()
 {
    let w = World::new().await;
    let unknown = unknown_delivery(&w).await;
    let first_sent = unknown.first_sent_at.unwrap();
    w.script.0.lookup("tg", &[LookupAnswer::Unreadable]);
    // Unreadable, then the client says it cannot look (the default answer).
    let (report, _) = settle_at(&w, t(200)).await;
    assert_eq!(report.deferred, 1, "{report:?}");
    let d = w.delivery(&unknown.id).await;
    assert_eq!(d.status(), DeliveryStatus::Unknown);
    assert!(d.due_at > t(200), "looked at again later");
    assert!(
        d.last_error.as_deref().unwrap().contains("HTTP 503"),
        "{d:?}"
    );

    let mut failed_at = None;
    for minutes in (4..=26 * 60).step_by(10) {
        let now = t(60 + minutes * 60);
        let (report, _) = settle_at(&w, now).await;
        if report.failed == 1 {
            failed_at = Some(now);
            break;
        }
        assert_eq!(report.errors, 0);
    }
    let failed_at = failed_at.expect("failed by the deadline");
    assert!(failed_at >= first_sent + RECONCILE_DEADLINE, "{failed_at}");
    assert!(
        failed_at < first_sent + RECONCILE_DEADLINE + SignedDuration::from_mins(10),
        "on time: {failed_at}"
    );
    let d = w.delivery(&unknown.id).await;
    let DeliveryState::Failed { reason, .. } = &d.state else {
        panic!("{d:?}");
    };
    assert!(
        reason.starts_with("could not confirm whether it was published"),
        "{reason}"
    );
    assert!(w.script.0.looks().len() > 3, "looked several times");
    assert_eq!(w.script.0.calls().len(), 1, "never sent again");
    let events = w.events().await;
    assert!(
        matches!(
            &events[..],
            [HarkEvent::PostUnknown { .. }, HarkEvent::PostFailed { .. }]
        ),
        "{events:?}"
    );
    let (report, _) = settle_at(&w, failed_at + SignedDuration::from_hours(1)).await;
    assert_eq!(report.found, 0, "a failed delivery leaves the settle index");
}

#[tokio::test]
async fn given_an_unknown_state_its_worker_never_announced_when_reconciled_then_both_events_go_out_once()
 {
    let w = World::new().await;
    let job = w
        .due_job(serde_json::json!({"id": "p", "at": t(60), "channels": ["tg"]}))
        .await;
    let mut d = w.delivery(&job.delivery_id).await;
    d.claim("w", SignedDuration::from_mins(5), t(61)).unwrap();
    let mut d = w.store.update_delivery(&d).await.unwrap();
    d.mark_sent(SignedDuration::from_mins(5), t(61)).unwrap();
    let mut d = w.store.update_delivery(&d).await.unwrap();
    d.mark_unknown("timed out", t(121), t(62)).unwrap();
    let d = w.store.update_delivery(&d).await.unwrap();
    assert!(d.event_pending, "recorded, then the worker died");
    w.script.0.lookup("tg", &[LookupAnswer::Found("tg-5")]);

    let (report, _) = settle_at(&w, t(121)).await;
    assert_eq!(report.reconciled_published, 1, "{report:?}");
    let events = w.events().await;
    assert!(
        matches!(
            &events[..],
            [
                HarkEvent::PostUnknown { .. },
                HarkEvent::PostPublished { .. }
            ]
        ),
        "{events:?}"
    );
    assert!(!w.delivery(&d.id).await.event_pending);
}

#[tokio::test]
async fn given_a_brake_pulled_while_the_first_attempt_ran_when_it_is_retried_then_the_retry_is_paused_not_sent()
 {
    let w = World::new().await;
    w.script.0.answer("masto", &[Answer::Retryable(None)]);
    let job = w
        .due_job(serde_json::json!({"id": "p", "at": t(60), "campaign": "launch"}))
        .await;
    // Pulled while the delivery is claimed: `engage_brake` pauses only queued ones.
    w.store
        .upsert(&hark_shared::actions::Brake {
            id: "launch".into(),
            engaged: true,
            reason: "negative wave".into(),
            at: t(61),
            event_id: None,
        })
        .await
        .unwrap();
    let PublishOutcome::Requeued { redispatched, .. } = w.run(&job).await else {
        panic!("requeued");
    };
    assert!(!redispatched, "held by the brake, not dispatched");
    let d = w.delivery(&job.delivery_id).await;
    assert_eq!(d.status(), DeliveryStatus::Paused, "{d:?}");
    w.at(3600);
    assert!(w.jobs().await.is_empty(), "no delayed job was sent");
    assert_eq!(w.script.0.calls().len(), 1);
}
