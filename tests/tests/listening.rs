//! The listening use cases (scheduler tick, poller) on the embedded store with a scripted
//! listener: what is queued, when cursors move, backoff, auto-disable and silence.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use hark_shared::domain::{Author, Campaign, Cursor, Engagement, Mention, Platform, Source};
use hark_shared::events::HarkEvent;
use hark_shared::listening::{
    ListenerFactory, MentionBatch, PollJob, PollOutcome, PollerSettings, handle_poll_batch,
    poll_source, schedule_polls,
};
use hark_shared::platforms::{ListenLimits, Listened, Listener, PlatformError};
use hark_shared::ports::{ConfigStore, CursorStore, MessageQueue, QueueName, ReceivedMessage};
use jiff::{SignedDuration, Timestamp};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_780_000_000 + s).unwrap()
}

fn source(id: &str) -> Source {
    serde_json::from_value(serde_json::json!({
        "id": id, "platform": "mastodon", "base_url": "https://m.example", "query": "#hark", "every": "5m"
    }))
    .unwrap()
}

fn campaign(id: &str, sources: &[&str], active: bool) -> Campaign {
    Campaign {
        id: id.into(),
        name: None,
        query: "hark".into(),
        sources: sources.iter().map(|s| s.to_string()).collect(),
        triggers: vec![],
        active,
        policy: Default::default(),
    }
}

fn mention(id: &str) -> Mention {
    Mention {
        platform: Platform::Mastodon,
        native_id: id.into(),
        url: format!("https://m.example/@a/{id}"),
        author: Author {
            handle: "a".into(),
            ..Author::default()
        },
        text: format!("hark {id} 🎉"),
        created_at: t(0),
        lang: None,
        sentiment: None,
        engagement: Engagement::default(),
        campaigns: vec![],
        source_id: None,
    }
}

/// One scripted poll answer: the mentions, the new position and whether it caught up.
type Answer = Result<(Vec<Mention>, &'static str, bool), PlatformError>;

/// A listener that answers from a script, and records the cursors it was given.
#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    /// The rate-limit status each answer reports (none when empty).
    rate_limits: Mutex<VecDeque<hark_shared::platforms::RateLimit>>,
    seen_positions: Mutex<Vec<Option<String>>>,
}

struct Scripted(Arc<Script>);

#[async_trait::async_trait]
impl Listener for Scripted {
    async fn listen(
        &self,
        _source: &Source,
        cursor: &Cursor,
        _limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        self.0
            .seen_positions
            .lock()
            .unwrap()
            .push(cursor.position.clone());
        let answer = self
            .0
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("the script has an answer for every poll");
        let rate_limit = self.0.rate_limits.lock().unwrap().pop_front();
        answer.map(|(mentions, position, caught_up)| Listened {
            mentions,
            cursor: Cursor {
                position: Some(position.to_owned()),
                ..cursor.clone()
            },
            caught_up,
            rate_limit,
        })
    }
}

/// Hands out listeners that share one script.
#[derive(Clone, Default)]
struct Factory(Arc<Script>);

impl std::ops::Deref for Factory {
    type Target = Script;
    fn deref(&self) -> &Script {
        &self.0
    }
}

#[async_trait::async_trait]
impl ListenerFactory for Factory {
    async fn listener_for(&self, _source: &Source) -> Result<Box<dyn Listener>, PlatformError> {
        Ok(Box::new(Scripted(self.0.clone())))
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

#[tokio::test]
async fn given_two_ticks_in_the_same_minute_then_each_due_source_is_polled_once() {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    store.upsert(&source("b")).await.unwrap();
    store.upsert(&source("idle")).await.unwrap();
    store
        .upsert(&campaign("live", &["a", "b"], true))
        .await
        .unwrap();
    store
        .upsert(&campaign("over", &["idle"], false))
        .await
        .unwrap();

    let first = schedule_polls(&*store, &*store, t(0)).await.unwrap();
    let second = schedule_polls(&*store, &*store, t(30)).await.unwrap();
    assert_eq!(
        (first.listened, first.queued),
        (2, 2),
        "only sources of active campaigns"
    );
    assert_eq!(second.queued, 0, "not due again within its interval");

    let jobs: Vec<PollJob> = drain(&*store, QueueName::Poll)
        .await
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    let mut ids: Vec<_> = jobs.iter().map(|j| j.source_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);

    let third = schedule_polls(&*store, &*store, t(300)).await.unwrap();
    assert_eq!(third.queued, 2, "due again after `every`");
}

#[tokio::test]
async fn given_new_items_then_they_are_queued_before_the_cursor_moves_and_the_next_poll_starts_there()
 {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    let script = Factory::default();
    script.answers.lock().unwrap().extend([
        Ok((vec![mention("1"), mention("2")], "2", true)),
        Ok((vec![mention("3")], "3", true)),
    ]);
    let job = PollJob {
        source_id: "a".into(),
        scheduled_at: t(0),
    };
    let settings = PollerSettings::default();
    let out = poll_source(&*store, &*store, &script, &job, t(1), &settings)
        .await
        .unwrap();
    assert_eq!(
        out,
        PollOutcome::Polled {
            source_id: "a".into(),
            mentions: 2,
            caught_up: true
        }
    );
    poll_source(&*store, &*store, &script, &job, t(301), &settings)
        .await
        .unwrap();
    assert_eq!(
        *script.seen_positions.lock().unwrap(),
        [None, Some("2".to_owned())]
    );

    let batches: Vec<MentionBatch> = drain(&*store, QueueName::Mentions)
        .await
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    let ids: Vec<_> = batches
        .iter()
        .flat_map(|b| b.mentions.iter().map(|m| m.native_id.clone()))
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(batches.iter().all(|b| {
        b.mentions
            .iter()
            .all(|m| m.source_id.as_deref() == Some("a"))
    }));
    let cursor = store.get_cursor("a").await.unwrap().unwrap();
    assert_eq!(cursor.position.as_deref(), Some("3"));
    assert_eq!(cursor.health.last_success_at, Some(t(301)));
}

#[tokio::test]
async fn given_a_spent_rate_limit_then_the_next_poll_waits_for_its_reset_even_when_not_caught_up() {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    store.upsert(&campaign("live", &["a"], true)).await.unwrap();
    let script = Factory::default();
    script.answers.lock().unwrap().extend([
        Ok((vec![mention("1")], "1", false)),
        Ok((vec![mention("2")], "2", false)),
    ]);
    script.rate_limits.lock().unwrap().extend([
        hark_shared::platforms::RateLimit {
            limit: Some(10_000),
            remaining: Some(0),
            reset_at: Some(t(3600)),
        },
        hark_shared::platforms::RateLimit {
            limit: Some(100),
            remaining: Some(40),
            reset_at: Some(t(9000)),
        },
    ]);
    schedule_polls(&*store, &*store, t(0)).await.unwrap();
    let job = PollJob {
        source_id: "a".into(),
        scheduled_at: t(0),
    };
    let settings = PollerSettings::default();
    poll_source(&*store, &*store, &script, &job, t(1), &settings)
        .await
        .unwrap();
    let cursor = store.get_cursor("a").await.unwrap().unwrap();
    assert_eq!(cursor.next_poll_at, Some(t(3600)), "not before the reset");
    assert_eq!(
        cursor.position.as_deref(),
        Some("1"),
        "what was read is kept"
    );
    drain(&*store, QueueName::Poll).await;
    assert_eq!(
        schedule_polls(&*store, &*store, t(600))
            .await
            .unwrap()
            .queued,
        0
    );
    assert_eq!(
        schedule_polls(&*store, &*store, t(3600))
            .await
            .unwrap()
            .queued,
        1
    );
    // Budget left: the page cap brings it back at the next tick.
    poll_source(&*store, &*store, &script, &job, t(3601), &settings)
        .await
        .unwrap();
    let cursor = store.get_cursor("a").await.unwrap().unwrap();
    assert_eq!(cursor.next_poll_at, Some(t(3601)));
}

/// A queue that refuses sends: the store behind it is the embedded one.
struct BrokenQueue;

#[async_trait::async_trait]
impl MessageQueue for BrokenQueue {
    async fn send_batch(
        &self,
        queue: QueueName,
        _bodies: &[String],
    ) -> Result<(), hark_shared::ports::QueueError> {
        Err(hark_shared::ports::QueueError::Backend {
            operation: "SendMessageBatch",
            queue,
            retryable: true,
            source: "injected outage".into(),
        })
    }
    async fn receive(
        &self,
        _: QueueName,
        _: usize,
        _: SignedDuration,
    ) -> Result<Vec<ReceivedMessage>, hark_shared::ports::QueueError> {
        Ok(vec![])
    }
    async fn delete(&self, _: QueueName, _: &str) -> Result<(), hark_shared::ports::QueueError> {
        Ok(())
    }
    async fn change_visibility(
        &self,
        _: QueueName,
        _: &str,
        _: SignedDuration,
    ) -> Result<(), hark_shared::ports::QueueError> {
        Ok(())
    }
}

#[tokio::test]
async fn given_the_mentions_queue_fails_then_the_cursor_does_not_move_and_the_job_errors() {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    let script = Factory::default();
    script.answers.lock().unwrap().extend([
        Ok((vec![mention("1")], "1", true)),
        Ok((vec![mention("1")], "1", true)),
    ]);
    let job = PollJob {
        source_id: "a".into(),
        scheduled_at: t(0),
    };
    let err = poll_source(
        &*store,
        &BrokenQueue,
        &script,
        &job,
        t(1),
        &PollerSettings::default(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        store.get_cursor("a").await.unwrap().is_none(),
        "no gap: cursor untouched"
    );
    // The retried job fetches the same items again and this time they are queued.
    poll_source(
        &*store,
        &*store,
        &script,
        &job,
        t(2),
        &PollerSettings::default(),
    )
    .await
    .unwrap();
    assert_eq!(*script.seen_positions.lock().unwrap(), [None, None]);
    assert_eq!(drain(&*store, QueueName::Mentions).await.len(), 1);
}

#[tokio::test]
async fn given_rate_limits_then_backoff_honours_the_platform_and_never_disables() {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    let script = Factory::default();
    for _ in 0..30 {
        script
            .answers
            .lock()
            .unwrap()
            .push_back(Err(PlatformError::Retryable {
                platform: Platform::Mastodon,
                after: Some(SignedDuration::from_hours(1)),
                reason: "HTTP 429".into(),
            }));
    }
    let job = PollJob {
        source_id: "a".into(),
        scheduled_at: t(0),
    };
    for i in 0..30 {
        let out = poll_source(
            &*store,
            &*store,
            &script,
            &job,
            t(i),
            &PollerSettings::default(),
        )
        .await
        .unwrap();
        assert!(
            matches!(
                out,
                PollOutcome::Failed {
                    disabled: false,
                    ..
                }
            ),
            "{out:?}"
        );
    }
    let cursor = store.get_cursor("a").await.unwrap().unwrap();
    assert!(cursor.health.disabled.is_none());
    assert_eq!(cursor.health.consecutive_failures, 30);
    assert_eq!(
        cursor.next_poll_at,
        Some(t(29) + SignedDuration::from_hours(6)),
        "capped backoff"
    );
}

#[tokio::test]
async fn given_repeated_permanent_failures_then_the_source_is_disabled_once_with_an_event() {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    store.upsert(&campaign("live", &["a"], true)).await.unwrap();
    let script = Factory::default();
    for _ in 0..5 {
        script
            .answers
            .lock()
            .unwrap()
            .push_back(Err(PlatformError::Permanent {
                platform: Platform::Mastodon,
                status: Some(404),
                message: "Record not found".into(),
            }));
    }
    let job = PollJob {
        source_id: "a".into(),
        scheduled_at: t(0),
    };
    let mut outcomes = Vec::new();
    for i in 0..6 {
        outcomes.push(
            poll_source(
                &*store,
                &*store,
                &script,
                &job,
                t(i),
                &PollerSettings::default(),
            )
            .await
            .unwrap(),
        );
    }
    assert!(
        matches!(outcomes[4], PollOutcome::Failed { disabled: true, .. }),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[5], PollOutcome::Skipped { .. }));
    let events: Vec<HarkEvent> = drain(&*store, QueueName::Events)
        .await
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], HarkEvent::SourceDisabled { reason, .. } if reason.contains("Record not found"))
    );
    let tick = schedule_polls(&*store, &*store, t(10_000)).await.unwrap();
    assert_eq!(
        (tick.queued, tick.disabled),
        (0, 1),
        "a disabled source is not scheduled"
    );
}

#[tokio::test]
async fn given_a_source_silent_far_longer_than_usual_then_it_is_reported_once() {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    let script = Factory::default();
    let hour = 3600;
    script.answers.lock().unwrap().extend([
        Ok((vec![mention("1")], "1", true)),
        Ok((vec![mention("2")], "2", true)),
        Ok((vec![], "2", true)),
        Ok((vec![], "2", true)),
        Ok((vec![], "2", true)),
    ]);
    let job = PollJob {
        source_id: "a".into(),
        scheduled_at: t(0),
    };
    let s = PollerSettings::default();
    for at in [0, hour, 3 * hour, 12 * hour, 13 * hour] {
        poll_source(&*store, &*store, &script, &job, t(at), &s)
            .await
            .unwrap();
    }
    let events: Vec<HarkEvent> = drain(&*store, QueueName::Events)
        .await
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(
        events[0],
        HarkEvent::SourceSilent {
            usual_gap_secs: 3600,
            silent_for_secs: 39_600,
            ..
        }
    ));
}

#[tokio::test]
async fn given_a_job_for_an_unknown_source_then_it_is_skipped_not_retried() {
    let store = hark_tests::embedded_backend();
    let script = Factory::default();
    let job = PollJob {
        source_id: "gone".into(),
        scheduled_at: t(0),
    };
    let out = poll_source(
        &*store,
        &*store,
        &script,
        &job,
        t(0),
        &PollerSettings::default(),
    )
    .await
    .unwrap();
    assert!(matches!(
        out,
        PollOutcome::Skipped {
            why: "unknown source",
            ..
        }
    ));
}

// ---------------------------------------------------------------- batches of poll jobs

/// A listener that finds one mention per poll, named after its source, of `text_len`
/// characters, and moves the cursor to `p-<source>`.
struct PerSource {
    text_len: usize,
}

#[async_trait::async_trait]
impl Listener for PerSource {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        _limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        let mut m = mention(&source.id);
        m.text = "h".repeat(self.text_len);
        Ok(Listened {
            mentions: vec![m],
            cursor: Cursor {
                position: Some(format!("p-{}", source.id)),
                ..cursor.clone()
            },
            caught_up: true,
            rate_limit: None,
        })
    }
}

struct PerSourceFactory {
    text_len: usize,
}

#[async_trait::async_trait]
impl ListenerFactory for PerSourceFactory {
    async fn listener_for(&self, _source: &Source) -> Result<Box<dyn Listener>, PlatformError> {
        Ok(Box::new(PerSource {
            text_len: self.text_len,
        }))
    }
}

/// The embedded queue, counting send requests and failing the ones listed by number
/// (0 = the first send).
struct CountingQueue {
    inner: Arc<hark_shared::embedded::EmbeddedStore>,
    fail: Vec<usize>,
    sends: Mutex<Vec<(QueueName, usize)>>,
}

#[async_trait::async_trait]
impl MessageQueue for CountingQueue {
    async fn send_batch(
        &self,
        queue: QueueName,
        bodies: &[String],
    ) -> Result<(), hark_shared::ports::QueueError> {
        let n = {
            let mut sends = self.sends.lock().unwrap();
            sends.push((queue, bodies.len()));
            sends.len() - 1
        };
        if self.fail.contains(&n) {
            return Err(hark_shared::ports::QueueError::Backend {
                operation: "SendMessageBatch",
                queue,
                retryable: true,
                source: "injected outage".into(),
            });
        }
        self.inner.send_batch(queue, bodies).await
    }
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: SignedDuration,
    ) -> Result<Vec<ReceivedMessage>, hark_shared::ports::QueueError> {
        self.inner.receive(queue, max, visibility).await
    }
    async fn delete(
        &self,
        queue: QueueName,
        receipt: &str,
    ) -> Result<(), hark_shared::ports::QueueError> {
        self.inner.delete(queue, receipt).await
    }
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: SignedDuration,
    ) -> Result<(), hark_shared::ports::QueueError> {
        self.inner
            .change_visibility(queue, receipt, visibility)
            .await
    }
}

fn job(source_id: &str) -> String {
    serde_json::to_string(&PollJob {
        source_id: source_id.into(),
        scheduled_at: t(0),
    })
    .unwrap()
}

#[tokio::test]
async fn given_a_batch_of_jobs_then_their_mentions_go_out_in_one_request_and_every_cursor_moves() {
    let store = hark_tests::embedded_backend();
    let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    for id in &ids {
        store.upsert(&source(id)).await.unwrap();
    }
    let queue = CountingQueue {
        inner: store.clone(),
        fail: vec![],
        sends: Mutex::new(Vec::new()),
    };
    let mut bodies: Vec<String> = ids.iter().map(|id| job(id)).collect();
    bodies.push("{not a job".into());
    bodies.push(job("nobody"));
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();

    let results = handle_poll_batch(
        &*store,
        &queue,
        &PerSourceFactory { text_len: 40 },
        &refs,
        t(1),
        &PollerSettings::default(),
    )
    .await;

    assert_eq!(results.len(), 10, "one result per body, in order");
    for (id, result) in ids.iter().zip(&results) {
        assert!(
            matches!(result, Ok(PollOutcome::Polled { source_id, mentions: 1, .. }) if source_id == id),
            "{result:?}"
        );
    }
    let malformed = results[8].as_ref().unwrap_err();
    assert!(!malformed.is_retryable(), "{malformed}");
    assert!(matches!(
        &results[9],
        Ok(PollOutcome::Skipped {
            why: "unknown source",
            ..
        })
    ));
    assert_eq!(
        *queue.sends.lock().unwrap(),
        [(QueueName::Mentions, 8)],
        "eight polls' messages in one SendMessageBatch"
    );
    for id in &ids {
        let cursor = store.get_cursor(id).await.unwrap().unwrap();
        assert_eq!(cursor.position, Some(format!("p-{id}")));
    }
    let queued = drain(&*store, QueueName::Mentions).await;
    let mut sources: Vec<String> = queued
        .iter()
        .map(|m| {
            serde_json::from_str::<MentionBatch>(&m.body)
                .unwrap()
                .source_id
        })
        .collect();
    sources.sort();
    assert_eq!(sources, ids);
}

#[tokio::test]
async fn given_a_send_request_that_fails_then_only_the_polls_it_held_fail_and_keep_their_cursors() {
    let store = hark_tests::embedded_backend();
    let ids: Vec<String> = (0..5).map(|i| format!("big{i}")).collect();
    for id in &ids {
        store.upsert(&source(id)).await.unwrap();
    }
    // Each poll's message is ~60 KB: four fit in one 256 KiB request, the fifth goes in a
    // second one. The first request fails.
    let queue = CountingQueue {
        inner: store.clone(),
        fail: vec![0],
        sends: Mutex::new(Vec::new()),
    };
    let settings = PollerSettings {
        max_text_chars: 100_000,
        ..PollerSettings::default()
    };
    let bodies: Vec<String> = ids.iter().map(|id| job(id)).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let factory = PerSourceFactory { text_len: 60_000 };

    let results = handle_poll_batch(&*store, &queue, &factory, &refs, t(1), &settings).await;

    assert_eq!(
        *queue.sends.lock().unwrap(),
        [(QueueName::Mentions, 4), (QueueName::Mentions, 1)]
    );
    for (id, result) in ids.iter().zip(&results).take(4) {
        let err = result.as_ref().unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("injected outage"), "{err}");
        assert!(
            store.get_cursor(id).await.unwrap().is_none(),
            "{id}: no gap, the cursor did not move"
        );
    }
    assert!(matches!(results[4], Ok(PollOutcome::Polled { .. })));
    assert_eq!(
        store.get_cursor("big4").await.unwrap().unwrap().position,
        Some("p-big4".to_owned())
    );
    assert_eq!(drain(&*store, QueueName::Mentions).await.len(), 1);

    // The four failed jobs come back and this time their mentions go out.
    let retry: Vec<&str> = refs[..4].to_vec();
    let again = handle_poll_batch(&*store, &queue, &factory, &retry, t(2), &settings).await;
    assert!(again.iter().all(Result::is_ok), "{again:?}");
    assert_eq!(drain(&*store, QueueName::Mentions).await.len(), 4);
    for id in &ids[..4] {
        assert_eq!(
            store.get_cursor(id).await.unwrap().unwrap().position,
            Some(format!("p-{id}"))
        );
    }
}

#[tokio::test]
async fn given_a_quiet_poll_that_changes_nothing_then_the_cursor_is_not_written_until_its_health_is_an_hour_old()
 {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("a")).await.unwrap();
    let script = Factory::default();
    script.answers.lock().unwrap().extend([
        Ok((vec![mention("1")], "p1", true)),
        Ok((vec![], "p1", true)),
        Ok((vec![], "p1", true)),
        Ok((vec![], "p2", true)),
    ]);
    let job = PollJob {
        source_id: "a".into(),
        scheduled_at: t(0),
    };
    let settings = PollerSettings::default();
    let saved = |at: i64| {
        let store = store.clone();
        async move {
            let c = store.get_cursor("a").await.unwrap().unwrap();
            assert_eq!(c.health.last_success_at, Some(t(at)));
            c.version
        }
    };

    poll_source(&*store, &*store, &script, &job, t(1), &settings)
        .await
        .unwrap();
    let first = saved(1).await;

    // A minute later nothing is new and the position did not move: no write.
    let out = poll_source(&*store, &*store, &script, &job, t(61), &settings)
        .await
        .unwrap();
    assert!(matches!(out, PollOutcome::Polled { mentions: 0, .. }));
    assert_eq!(saved(1).await, first, "the quiet poll wrote nothing");

    // Once the recorded success is an hour old, a quiet poll refreshes it.
    poll_source(&*store, &*store, &script, &job, t(3601), &settings)
        .await
        .unwrap();
    assert_eq!(saved(3601).await, first + 1);

    // A moved position is always written, quiet or not.
    poll_source(&*store, &*store, &script, &job, t(3661), &settings)
        .await
        .unwrap();
    assert_eq!(saved(3661).await, first + 2);
    let cursor = store.get_cursor("a").await.unwrap().unwrap();
    assert_eq!(cursor.position.as_deref(), Some("p2"));
    assert_eq!(drain(&*store, QueueName::Mentions).await.len(), 1);
}

#[tokio::test]
async fn given_a_poll_event_with_a_bad_record_and_a_bodyless_one_then_only_they_are_reported_failed()
 {
    let store = hark_tests::embedded_backend();
    store.upsert(&source("good")).await.unwrap();
    let messages: Vec<ReceivedMessage> = [("m1", job("good")), ("m2", "{not a job".to_owned())]
        .into_iter()
        .map(|(id, body)| ReceivedMessage {
            message_id: id.into(),
            receipt: format!("r-{id}"),
            body,
            receive_count: 1,
        })
        .collect();
    let mut event = hark_shared::lambda::sqs_event(&messages);
    let mut bodyless = event.records[0].clone();
    bodyless.message_id = Some("m3".into());
    bodyless.body = None;
    event.records.push(bodyless);

    let response = hark_shared::lambda::poll_event(
        &*store,
        &*store,
        &PerSourceFactory { text_len: 10 },
        &event,
        t(1),
        &PollerSettings::default(),
    )
    .await;

    let mut failed = hark_shared::lambda::failed_ids(&response);
    failed.sort();
    assert_eq!(failed, ["m2", "m3"]);
    assert_eq!(
        store.get_cursor("good").await.unwrap().unwrap().position,
        Some("p-good".to_owned()),
        "the good job was polled"
    );
    assert_eq!(drain(&*store, QueueName::Mentions).await.len(), 1);
}
