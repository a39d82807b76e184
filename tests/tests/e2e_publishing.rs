//! End to end over the AWS emulator: scheduled posts → scheduler tick → publish queue →
//! publisher → simulated Mastodon and Bluesky, through the same handler code the Lambda
//! functions run, on the wall clock. Prints the "due → published" latency it measured.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hark_shared::clock::{Clock, SystemClock};
use hark_shared::domain::{Channel, DeliveryState, ScheduledPost};
use hark_shared::events::HarkEvent;
use hark_shared::lambda::{Disposition, failed_ids, for_each_record, sqs_event};
use hark_shared::platforms::HttpClient;
use hark_shared::ports::{ConfigStore, DeliveryStore, MessageQueue, QueueName};
use hark_shared::publishing::{
    ChannelAuth, DispatchSettings, MIN_PUBLISH_VISIBILITY, PlatformPublishers, PublisherSettings,
    dispatch_due, handle_publish_message, schedule_post,
};
use hark_tests::fakes::{FakeMastodon, FakePds};
use hark_tests::publishing::{
    StaticSecrets, bluesky_channel, drain_events, mastodon_channel, percentile,
};
use jiff::{SignedDuration, Timestamp};

fn publishers() -> PlatformPublishers {
    PlatformPublishers::new(
        HttpClient::new(true).unwrap(),
        Arc::new(StaticSecrets::for_fakes()),
        Arc::new(SystemClock),
    )
}

/// One scheduler tick, then the publish queue drained through the publisher's handler as
/// Lambda would call it. Returns how many jobs were handled.
async fn tick<S: ConfigStore + DeliveryStore>(
    store: &S,
    queue: &dyn MessageQueue,
    publishers: &PlatformPublishers,
    settings: &PublisherSettings,
) -> usize {
    dispatch_due(
        store,
        queue,
        SystemClock.now(),
        &DispatchSettings::default(),
    )
    .await
    .unwrap();
    let mut handled = 0;
    loop {
        let messages = queue
            .receive(QueueName::Publish, 10, MIN_PUBLISH_VISIBILITY)
            .await
            .unwrap();
        if messages.is_empty() {
            return handled;
        }
        handled += messages.len();
        let response = for_each_record(sqs_event(&messages), |r| async move {
            handle_publish_message(store, queue, publishers, &r.body, &SystemClock, settings)
                .await
                .map(|o| {
                    if o.leave_on_queue() {
                        Disposition::Retry
                    } else {
                        Disposition::Done
                    }
                })
        })
        .await;
        let failed = failed_ids(&response);
        assert!(
            failed.is_empty(),
            "no job fails on the happy path: {failed:?}"
        );
        for m in &messages {
            queue.delete(QueueName::Publish, &m.receipt).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_posts_due_over_a_few_seconds_when_the_pipeline_runs_then_each_is_published_once_and_announced_once()
 {
    let backend = hark_tests::aws_backend().await;
    let (store, queue) = (&*backend.store, &*backend.queue);
    let mastodon = FakeMastodon::start().await;
    let pds = FakePds::start().await;
    store
        .upsert(&mastodon_channel("masto", &mastodon))
        .await
        .unwrap();
    store.upsert(&bluesky_channel("sky", &pds)).await.unwrap();

    // 30 posts on both channels, due every 100 ms over 3 seconds from now.
    let start = Timestamp::now() + SignedDuration::from_millis(500);
    let mut posts = Vec::new();
    for i in 0..30 {
        let post: ScheduledPost = serde_json::from_value(serde_json::json!({
            "id": format!("post-{i:02}"),
            "at": start + SignedDuration::from_millis(100 * i),
            "channels": ["masto", "sky"],
            "text": format!("Launch note {i} #hark"),
            "link": "https://example.com/hark",
        }))
        .unwrap();
        store.upsert(&post).await.unwrap();
        let report = schedule_post(store, queue, &post, false, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(report.created.len(), 2);
        posts.push(post);
    }

    let publishers = publishers();
    let settings = PublisherSettings::default();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        tick(store, queue, &publishers, &settings).await;
        let deliveries = store.list_deliveries(None).await.unwrap();
        if deliveries.iter().all(|d| d.status().is_terminal()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all published in time: {deliveries:?}"
        );
        // The cloud ticks every minute; the test ticks faster so it finishes quickly.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let deliveries = store.list_deliveries(None).await.unwrap();
    assert_eq!(deliveries.len(), 60);
    for d in &deliveries {
        let DeliveryState::Published {
            platform_id, url, ..
        } = &d.state
        else {
            panic!("{d:?}");
        };
        assert!(!platform_id.is_empty() && url.is_some(), "{d:?}");
        assert_eq!(d.attempts, 1);
        assert!(!d.event_pending);
    }
    let created = mastodon.created();
    assert_eq!(created.len(), 30);
    assert_eq!(
        created
            .iter()
            .map(|s| s.text.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        30,
        "no duplicate statuses"
    );
    let records = pds.records();
    assert_eq!(records.len(), 30);
    let record = records.values().next().unwrap();
    let features: Vec<&str> = record["facets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["features"][0]["$type"].as_str().unwrap())
        .collect();
    assert_eq!(
        features,
        [
            "app.bsky.richtext.facet#tag",
            "app.bsky.richtext.facet#link"
        ]
    );
    assert_eq!(
        pds.calls("com.atproto.server.createSession"),
        1,
        "the session is reused"
    );

    let events = drain_events(queue).await;
    let mut ids = BTreeSet::new();
    let mut latencies = Vec::new();
    for e in &events {
        let HarkEvent::PostPublished {
            event_id,
            scheduled_for,
            published_at,
            ..
        } = e
        else {
            panic!("only PostPublished expected: {e:?}");
        };
        assert!(
            ids.insert(event_id.clone()),
            "one event per delivery: {event_id}"
        );
        latencies.push(published_at.duration_since(*scheduled_for).as_secs_f64() * 1000.0);
    }
    assert_eq!(ids.len(), 60);
    let expected: BTreeSet<String> = deliveries.iter().filter_map(|d| d.event_id()).collect();
    assert_eq!(ids, expected);

    let p50 = percentile(&latencies, 50.0).unwrap();
    let p99 = percentile(&latencies, 99.0).unwrap();
    let max = percentile(&latencies, 100.0).unwrap();
    println!(
        "due → published over moto + fakes ({} deliveries, test tick every ~200 ms): p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        latencies.len()
    );
    println!(
        "(in the cloud the scheduler ticks once a minute: add up to 60 s of waiting for the tick)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_revoked_mastodon_token_then_the_delivery_fails_for_reauth_and_one_alert_goes_out()
{
    let backend = hark_tests::aws_backend().await;
    let (store, queue) = (&*backend.store, &*backend.queue);
    let mastodon = FakeMastodon::start().await;
    mastodon.revoke_token();
    let channel: Channel = mastodon_channel("masto", &mastodon);
    store.upsert(&channel).await.unwrap();
    let now = Timestamp::now();
    for i in 0..3 {
        let post: ScheduledPost = serde_json::from_value(serde_json::json!({
            "id": format!("p{i}"), "at": now - SignedDuration::from_secs(1), "channels": ["masto"], "text": "hello",
        }))
        .unwrap();
        store.upsert(&post).await.unwrap();
        schedule_post(store, queue, &post, false, now)
            .await
            .unwrap();
    }
    tick(store, queue, &publishers(), &PublisherSettings::default()).await;

    let deliveries = store.list_deliveries(None).await.unwrap();
    assert!(
        deliveries.iter().all(|d| matches!(
            &d.state,
            DeliveryState::Failed {
                needs_reauth: true,
                ..
            }
        )),
        "{deliveries:?}"
    );
    assert_eq!(
        mastodon.create_requests(),
        1,
        "the dead token is tried once"
    );
    let events = drain_events(queue).await;
    let alerts = events
        .iter()
        .filter(|e| matches!(e, HarkEvent::ChannelNeedsReauth { .. }))
        .count();
    let failures = events
        .iter()
        .filter(|e| matches!(e, HarkEvent::PostFailed { .. }))
        .count();
    assert_eq!((alerts, failures), (1, 3), "{events:?}");
    let flag = store.get::<ChannelAuth>("masto").await.unwrap().unwrap();
    assert!(
        flag.reason.contains("The access token is invalid"),
        "{flag:?}"
    );
}
