//! End to end over the AWS emulator: scheduler tick → poll queue → poller → mentions queue,
//! against simulated Mastodon, Hacker News and RSS servers, through the same handler code
//! the Lambda functions run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::domain::{Campaign, Cursor, Source};
use hark_shared::lambda::{failed_ids, poll_event, sqs_event};
use hark_shared::listening::{MentionBatch, PollerSettings, schedule_polls};
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::listeners::PlatformListeners;
use hark_shared::ports::{
    AggregateStore, ConfigStore, CursorStore, MessageQueue, QueueName, StoreError,
};
use hark_shared::processing::{Processor, list_mentions};
use hark_shared::secrets::EnvSecretResolver;
use hark_tests::fakes::{FakeFeed, FakeHackerNews, FakeMastodon};
use jiff::{SignedDuration, Timestamp};

struct Platforms {
    mastodon: FakeMastodon,
    hn: FakeHackerNews,
    feed: FakeFeed,
}

async fn configure<S: ConfigStore>(store: &S, p: &Platforms) {
    let sources = [
        serde_json::json!({"id": "masto", "platform": "mastodon", "base_url": p.mastodon.server.uri(), "query": "#hark", "every": "5m"}),
        serde_json::json!({"id": "hn", "platform": "hackernews", "base_url": p.hn.server.uri(), "query": "hark", "every": "5m"}),
        serde_json::json!({"id": "blog", "platform": "rss", "url": p.feed.url(), "every": "5m"}),
    ];
    for s in sources {
        store
            .upsert(&serde_json::from_value::<Source>(s).unwrap())
            .await
            .unwrap();
    }
    store
        .upsert(&Campaign {
            id: "launch".into(),
            name: None,
            query: "hark".into(),
            sources: vec!["masto".into(), "hn".into(), "blog".into()],
            triggers: vec![],
            active: true,
            policy: Default::default(),
        })
        .await
        .unwrap();
}

fn listeners() -> PlatformListeners {
    PlatformListeners::new(HttpClient::new(true).unwrap(), Arc::new(EnvSecretResolver))
}

/// The poller Lambda's handler on these messages, exactly as Lambda calls it.
async fn poll_handler<S: ConfigStore + CursorStore>(
    store: &S,
    queue: &dyn MessageQueue,
    listeners: &PlatformListeners,
    messages: &[hark_shared::ports::ReceivedMessage],
    now: Timestamp,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    poll_event(
        store,
        queue,
        listeners,
        &sqs_event(messages),
        now,
        &PollerSettings::default(),
    )
    .await
}

/// One scheduler tick, then the poll queue drained through the poller's handler exactly as
/// Lambda would call it. Failed messages are made visible again at once (a redelivery).
/// Returns how many poll messages failed.
async fn tick<S: ConfigStore + CursorStore>(
    store: &S,
    queue: &dyn MessageQueue,
    now: Timestamp,
) -> usize {
    let listeners = listeners();
    schedule_polls(store, queue, now).await.unwrap();
    let mut failures = 0;
    for _ in 0..20 {
        let messages = queue
            .receive(QueueName::Poll, 10, SignedDuration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            break;
        }
        let response = poll_handler(store, queue, &listeners, &messages, now).await;
        let failed = failed_ids(&response);
        failures += failed.len();
        for m in &messages {
            if failed.contains(&m.message_id.as_str()) {
                queue
                    .change_visibility(QueueName::Poll, &m.receipt, SignedDuration::ZERO)
                    .await
                    .unwrap();
            } else {
                queue.delete(QueueName::Poll, &m.receipt).await.unwrap();
            }
        }
    }
    failures
}

/// Native ids per source found on the mentions queue (drained).
async fn queued_mentions(queue: &dyn MessageQueue) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let messages = queue
            .receive(QueueName::Mentions, 10, SignedDuration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            return found;
        }
        for m in messages {
            let batch: MentionBatch = serde_json::from_str(&m.body).unwrap();
            found
                .entry(batch.source_id.clone())
                .or_default()
                .extend(batch.mentions.iter().map(|x| x.text.clone()));
            queue.delete(QueueName::Mentions, &m.receipt).await.unwrap();
        }
    }
}

fn texts(found: &BTreeMap<String, Vec<String>>, source: &str) -> Vec<String> {
    let mut v = found.get(source).cloned().unwrap_or_default();
    v.sort();
    v
}

async fn start_platforms(now: Timestamp) -> Platforms {
    let p = Platforms {
        mastodon: FakeMastodon::start().await,
        hn: FakeHackerNews::start().await,
        feed: FakeFeed::start().await,
    };
    p.mastodon.post("113800000000000101", "masto one", now);
    p.mastodon.post("113800000000000102", "masto two 🎉", now);
    p.hn.comment(
        "42600001",
        "hn <i>one</i>",
        now - SignedDuration::from_mins(20),
    );
    p.hn.comment(
        "42600002",
        "hn two &amp; more",
        now - SignedDuration::from_mins(10),
    );
    p.feed.publish("post-1", "blog one");
    p.feed.publish("post-2", "blog two");
    p
}

#[tokio::test]
async fn given_three_platforms_when_ticks_run_then_each_item_is_queued_once_and_later_ticks_fetch_only_new_ones()
 {
    let backend = hark_tests::aws_backend().await;
    let (store, queue) = (&*backend.store, &*backend.queue);
    let t0 = Timestamp::now();
    let p = start_platforms(t0).await;
    configure(store, &p).await;

    assert_eq!(tick(store, queue, t0).await, 0);
    let first = queued_mentions(queue).await;
    assert_eq!(
        texts(&first, "masto"),
        ["masto one #hark", "masto two 🎉 #hark"]
    );
    assert_eq!(texts(&first, "hn"), ["hn one", "hn two & more"]);
    let blog = texts(&first, "blog");
    assert_eq!(blog.len(), 2, "{blog:?}");
    assert!(
        blog[0].starts_with("blog one") && blog[1].starts_with("blog two"),
        "{blog:?}"
    );

    // New items arrive; a tick within `every` does nothing, the next one fetches only them.
    p.mastodon.post("113800000000000103", "masto three", t0);
    p.hn.comment("42600003", "hn three", t0 + SignedDuration::from_mins(1));
    p.feed.publish("post-3", "blog three");
    assert_eq!(
        tick(store, queue, t0 + SignedDuration::from_mins(2)).await,
        0
    );
    assert!(queued_mentions(queue).await.is_empty(), "not due yet");

    let t2 = t0 + SignedDuration::from_mins(6);
    assert_eq!(tick(store, queue, t2).await, 0);
    let second = queued_mentions(queue).await;
    assert_eq!(texts(&second, "masto"), ["masto three #hark"]);
    assert_eq!(texts(&second, "hn"), ["hn three"]);
    assert_eq!(second["blog"].len(), 1);
    assert!(second["blog"][0].contains("blog three"));

    // Nothing new: the feed answers 304 to the stored ETag.
    let t3 = t0 + SignedDuration::from_mins(12);
    assert_eq!(tick(store, queue, t3).await, 0);
    assert!(queued_mentions(queue).await.is_empty());
    let feed_requests = p.feed.server.received_requests().await.unwrap();
    let last = feed_requests.last().unwrap();
    assert_eq!(
        last.headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok()),
        Some("\"v3\"")
    );
    let cursor = store.get_cursor("masto").await.unwrap().unwrap();
    assert_eq!(cursor.position.as_deref(), Some("113800000000000103"));
}

/// The real store, except that the next cursor save after `arm()` fails, as if the
/// function crashed after queueing the mentions and before writing the cursor.
struct CrashBeforeCursorWrite {
    inner: hark_shared::aws::DynamoStore,
    armed: AtomicBool,
}

hark_tests::delegate_config_store!(CrashBeforeCursorWrite);

#[async_trait::async_trait]
impl CursorStore for CrashBeforeCursorWrite {
    async fn get_cursor(&self, source_id: &str) -> Result<Option<Cursor>, StoreError> {
        self.inner.get_cursor(source_id).await
    }
    async fn save_cursor(&self, cursor: &Cursor) -> Result<Cursor, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Backend {
                operation: "PutItem cursor",
                retryable: true,
                source: "injected crash before the cursor write".into(),
            });
        }
        self.inner.save_cursor(cursor).await
    }
}

#[tokio::test]
async fn given_a_crash_after_queueing_and_before_the_cursor_write_then_nothing_is_lost() {
    let backend = hark_tests::aws_backend().await;
    let t0 = Timestamp::now();
    let mastodon = FakeMastodon::start().await;
    mastodon.post("113800000000000201", "before crash", t0);
    mastodon.post("113800000000000202", "also before crash", t0);
    let store = CrashBeforeCursorWrite {
        inner: (*backend.store).clone(),
        armed: AtomicBool::new(false),
    };
    store
        .upsert(
            &serde_json::from_value::<Source>(serde_json::json!({
                "id": "masto", "platform": "mastodon", "base_url": mastodon.server.uri(),
                "query": "#hark", "every": "5m"
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    store
        .upsert(&Campaign {
            id: "launch".into(),
            name: None,
            query: "hark".into(),
            sources: vec!["masto".into()],
            triggers: vec![],
            active: true,
            policy: Default::default(),
        })
        .await
        .unwrap();
    let queue = &*backend.queue;

    // The scheduler writes its cursor first; arm the crash for the poller's write.
    let listeners = listeners();
    schedule_polls(&store, queue, t0).await.unwrap();
    store.armed.store(true, Ordering::SeqCst);
    let messages = queue
        .receive(QueueName::Poll, 10, SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    let response = poll_handler(&store, queue, &listeners, &messages, t0).await;
    assert_eq!(
        failed_ids(&response).len(),
        1,
        "the job fails and stays on the queue"
    );
    let stored = store.get_cursor("masto").await.unwrap().unwrap();
    assert_eq!(stored.position, None, "the cursor did not move");

    // Lambda's redelivery: the same job again, now without a crash.
    queue
        .change_visibility(QueueName::Poll, &messages[0].receipt, SignedDuration::ZERO)
        .await
        .unwrap();
    let again = queue
        .receive(QueueName::Poll, 10, SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    let response = poll_handler(&store, queue, &listeners, &again, t0).await;
    assert!(failed_ids(&response).is_empty());
    queue
        .delete(QueueName::Poll, &again[0].receipt)
        .await
        .unwrap();

    // Both items are on the mentions queue (twice: the duplicates are dropped by the
    // processor's put-if-absent), none is missing, and the cursor moved on.
    let found = queued_mentions(queue).await;
    let mut texts = found["masto"].clone();
    texts.sort();
    texts.dedup();
    assert_eq!(texts, ["also before crash #hark", "before crash #hark"]);
    assert_eq!(
        found["masto"].len(),
        4,
        "sent before the crash and again after it"
    );
    let stored = store.get_cursor("masto").await.unwrap().unwrap();
    assert_eq!(stored.position.as_deref(), Some("113800000000000202"));
}

#[tokio::test]
async fn given_polled_mentions_when_the_processor_drains_the_queue_then_they_are_stored_once_and_aggregated()
 {
    let backend = hark_tests::aws_backend().await;
    let (store, queue) = (&*backend.store, &*backend.queue);
    let t0 = Timestamp::now();
    let p = start_platforms(t0).await;
    p.mastodon.post(
        "113800000000000110",
        "Hark is terrible, I hate this launch.",
        t0,
    );
    configure(store, &p).await;
    assert_eq!(tick(store, queue, t0).await, 0);

    // The processor Lambda's path: a batch of up to 10 messages, partial failures reported.
    let processor = Processor::new(Analyzer::new(Languages::default()).unwrap());
    let mut stored = 0;
    loop {
        let messages = queue
            .receive(QueueName::Mentions, 10, SignedDuration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            break;
        }
        let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
        let outcome = processor.process_batch(store, &bodies).await.unwrap();
        assert!(outcome.messages.iter().all(Result::is_ok));
        stored += outcome.report.stored;
        for m in &messages {
            queue.delete(QueueName::Mentions, &m.receipt).await.unwrap();
        }
    }
    assert_eq!(stored, 7, "3 Mastodon, 2 HN, 2 blog items");

    let launch = list_mentions(
        store,
        Some("launch"),
        t0 - SignedDuration::from_hours(2),
        t0 + SignedDuration::from_hours(1),
    )
    .await
    .unwrap();
    let hated = launch
        .iter()
        .find(|m| m.text.starts_with("Hark is terrible"))
        .expect("the negative post matched the campaign");
    assert_eq!(hated.lang.as_deref(), Some("en"));
    assert_eq!(
        hated.sentiment.map(|s| s.label),
        Some(hark_shared::domain::SentimentLabel::Negative)
    );
    let rows = store
        .list_counters(
            "launch",
            t0 - SignedDuration::from_hours(2),
            t0 + SignedDuration::from_hours(1),
        )
        .await
        .unwrap();
    let total: u64 = rows.iter().map(|(_, c)| c.mentions).sum();
    assert_eq!(
        total as usize,
        launch.len(),
        "every matched mention is counted once"
    );
    assert!(rows.iter().any(|(_, c)| c.negative >= 1));
}
