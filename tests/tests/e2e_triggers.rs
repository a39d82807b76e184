//! End to end over the AWS emulator: a burst of negative mentions on a (simulated)
//! Mastodon hashtag goes through the poller, the processor and its trigger rules, the
//! actions handler and the publisher — the handlers the Lambdas run — and ends as exactly
//! one Slack alert, a paused scheduled post (the crisis brake) and `TriggerFired` /
//! `PostPublished` events on an EventBridge bus (moto), routed by a rule to an SQS queue.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_eventbridge::types::Target;
use hark_shared::actions::{EventBus, handle_event_message};
use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::aws::EventBridgeBus;
use hark_shared::clock::SystemClock;
use hark_shared::domain::{
    Campaign, DeliveryStatus, ScheduledPost, Source, TriggerAction, TriggerCondition, TriggerRule,
};
use hark_shared::events::HarkEvent;
use hark_shared::lambda::{poll_event, sqs_event};
use hark_shared::listening::{PollerSettings, schedule_polls};
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::listeners::PlatformListeners;
use hark_shared::ports::{ConfigStore, DeliveryStore, MessageQueue, QueueName, TriggerStore};
use hark_shared::processing::Processor;
use hark_shared::publishing::{
    PlatformPublishers, PublisherSettings, handle_publish_message, schedule_post,
};
use hark_shared::secrets::EnvSecretResolver;
use hark_shared::triggers::evaluate_after_batch;
use hark_tests::fakes::FakeMastodon;
use hark_tests::publishing::{StaticSecrets, mastodon_channel};
use hark_tests::{AwsBackend, aws_backend, moto_sdk_config, unique_name};
use jiff::{SignedDuration, Timestamp};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NEGATIVE: [&str; 12] = [
    "The new sync is terrible, I lost all my notes",
    "Worst update ever, sync is broken and support is useless",
    "I hate this release, it crashed twice today",
    "Awful: the sync deleted my data. Angry.",
    "This update is a disaster, everything is slow and broken",
    "Terrible experience, the app crashes on start",
    "So disappointed, sync failed again and I lost work",
    "Horrible bug: my calendar is gone. Furious.",
    "The update ruined my workflow, broken sync everywhere",
    "Sad and angry, the sync lost my photos",
    "Really bad release, crash after crash",
    "Broken, buggy, awful. Sync is a nightmare now",
];

const POSITIVE: [&str; 3] = [
    "Love the new dark mode, great work",
    "Nice improvements, the app feels fast",
    "Great release overall, thanks team",
];

/// An EventBridge bus on moto with a rule sending every `hark` event to an SQS queue.
async fn bus_with_queue() -> (EventBridgeBus, aws_sdk_sqs::Client, String) {
    let sdk = moto_sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let bus = unique_name("hark-bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("hark-bus-target"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name("all-hark-events")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["hark"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("all-hark-events")
        .event_bus_name(&bus)
        .targets(Target::builder().id("q").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    (EventBridgeBus::new(events, bus), sqs, queue_url)
}

/// `(detail-type, detail)` of every event the bus delivered to the target queue.
async fn bus_deliveries(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in got.messages() {
            let envelope: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or("{}")).unwrap();
            out.push((
                envelope["detail-type"].as_str().unwrap_or("").to_owned(),
                envelope["detail"].clone(),
            ));
        }
    }
    out
}

async fn configure(b: &AwsBackend, masto: &FakeMastodon, slack: &MockServer, now: Timestamp) {
    let store = &*b.store;
    store
        .upsert(
            &serde_json::from_value::<Source>(serde_json::json!({
                "id": "masto", "platform": "mastodon", "base_url": masto.server.uri(),
                "query": "#hark", "every": "5m"
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    store
        .upsert(&mastodon_channel("brand", masto))
        .await
        .unwrap();
    store
        .upsert(
            &serde_json::from_value::<hark_shared::domain::Channel>(serde_json::json!({
                "id": "ops-slack", "platform": "slack", "webhook": "env:SLACK_HOOK"
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let _ = slack;
    store
        .upsert(&Campaign {
            id: "launch".into(),
            name: Some("Hark launch".into()),
            query: "hark".into(),
            sources: vec!["masto".into()],
            triggers: vec![TriggerRule {
                id: "negative-wave".into(),
                when: TriggerCondition::NegativeShare {
                    above: 0.4,
                    window: "1h".parse().unwrap(),
                    min_mentions: 10,
                },
                actions: vec![
                    TriggerAction::Notify("ops-slack".into()),
                    TriggerAction::PausePosts(true),
                    TriggerAction::Event(true),
                ],
                cooldown: "2h".parse().unwrap(),
            }],
            active: true,
            policy: Default::default(),
        })
        .await
        .unwrap();
    // Tomorrow's launch post: queued, and held by the brake.
    let post: ScheduledPost = serde_json::from_value(serde_json::json!({
        "id": "launch-day", "campaign": "launch", "at": (now + SignedDuration::from_hours(20)).to_string(),
        "channels": ["brand"], "text": "Hark 1.0 is out! #hark"
    }))
    .unwrap();
    store.upsert(&post).await.unwrap();
    schedule_post(store, &*b.queue, &post, false, now)
        .await
        .unwrap();
}

/// One pass of the pipeline as the Lambdas run it: tick → poller → processor (+ triggers)
/// → actions → publisher → actions. Returns the trigger event ids fired.
async fn pipeline(
    b: &AwsBackend,
    bus: &EventBridgeBus,
    slack_uri: &str,
    now: Timestamp,
) -> Vec<String> {
    let store = &*b.store;
    let queue: &dyn MessageQueue = &*b.queue;
    let listeners =
        PlatformListeners::new(HttpClient::new(true).unwrap(), Arc::new(EnvSecretResolver));
    schedule_polls(store, queue, now).await.unwrap();
    while let msgs = queue
        .receive(QueueName::Poll, 10, SignedDuration::from_secs(60))
        .await
        .unwrap()
        && !msgs.is_empty()
    {
        poll_event(
            store,
            queue,
            &listeners,
            &sqs_event(&msgs),
            now,
            &PollerSettings::default(),
        )
        .await;
        for m in &msgs {
            queue.delete(QueueName::Poll, &m.receipt).await.unwrap();
        }
    }

    let processor =
        Processor::new(Analyzer::new(Languages::from_codes(&["en".to_owned()]).unwrap()).unwrap());
    let mut fired = Vec::new();
    while let msgs = queue
        .receive(QueueName::Mentions, 10, SignedDuration::from_secs(60))
        .await
        .unwrap()
        && !msgs.is_empty()
    {
        let bodies: Vec<&str> = msgs.iter().map(|m| m.body.as_str()).collect();
        let outcome = processor.process_batch(store, &bodies).await.unwrap();
        let report = evaluate_after_batch(store, queue, &outcome.stored, now)
            .await
            .unwrap();
        fired.extend(report.fired);
        for m in &msgs {
            queue.delete(QueueName::Mentions, &m.receipt).await.unwrap();
        }
    }

    let secrets = StaticSecrets(HashMap::from([
        (
            "MASTODON_TOKEN".to_owned(),
            hark_tests::fakes::MASTODON_TOKEN.to_owned(),
        ),
        (
            "SLACK_HOOK".to_owned(),
            format!("{slack_uri}/services/T0/B0/xyz"),
        ),
    ]));
    let publishers = PlatformPublishers::new(
        HttpClient::new(true).unwrap(),
        Arc::new(secrets),
        Arc::new(SystemClock),
    );
    for _ in 0..2 {
        drain_actions(store, queue, bus, now).await;
        while let msgs = queue
            .receive(QueueName::Publish, 10, SignedDuration::from_secs(600))
            .await
            .unwrap()
            && !msgs.is_empty()
        {
            for m in &msgs {
                handle_publish_message(
                    store,
                    queue,
                    &publishers,
                    &m.body,
                    &SystemClock,
                    &PublisherSettings::default(),
                )
                .await
                .unwrap();
                queue.delete(QueueName::Publish, &m.receipt).await.unwrap();
            }
        }
    }
    fired
}

async fn drain_actions<S>(store: &S, queue: &dyn MessageQueue, bus: &EventBridgeBus, now: Timestamp)
where
    S: ConfigStore + DeliveryStore + TriggerStore,
{
    while let msgs = queue
        .receive(QueueName::Events, 10, SignedDuration::from_secs(60))
        .await
        .unwrap()
        && !msgs.is_empty()
    {
        for m in &msgs {
            handle_event_message(store, queue, Some(bus as &dyn EventBus), &m.body, now)
                .await
                .unwrap();
            queue.delete(QueueName::Events, &m.receipt).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_negative_wave_then_one_explained_alert_paused_posts_and_bus_events() {
    let b = aws_backend().await;
    let masto = FakeMastodon::start().await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T0/B0/xyz"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let (bus, sqs, target) = bus_with_queue().await;
    let now = Timestamp::now();
    configure(&b, &masto, &slack, now).await;
    let delivery = b.store.list_deliveries(Some("launch-day")).await.unwrap();
    assert_eq!(delivery.len(), 1);
    assert_eq!(delivery[0].status(), DeliveryStatus::Queued);

    // Every post inside the hour the rule looks at (clamped to its start), and the whole
    // round evaluated at one instant, so the test does not depend on the wall clock.
    let hour_start = hark_shared::ports::truncate_to_hour(now);
    for (i, text) in NEGATIVE.iter().chain(POSITIVE.iter()).enumerate() {
        masto.post(
            &format!("{}", 1000 + i),
            text,
            (now - SignedDuration::from_secs(60 - i as i64)).max(hour_start),
        );
    }
    let fired = pipeline(&b, &bus, &slack.uri(), now).await;
    assert_eq!(fired.len(), 1, "{fired:?}");

    // Exactly one Slack alert, with the explanation.
    let alerts = slack.received_requests().await.unwrap();
    assert_eq!(alerts.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&alerts[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("Negative wave on Hark launch"), "{text}");
    assert!(text.contains("80% of 15 scored mentions"), "{text}");
    assert!(
        text.contains("Top terms:") && text.contains("sync"),
        "{text}"
    );
    assert!(text.contains("https://remote.example/@alice/"), "{text}");

    // The crisis brake paused tomorrow's post.
    let d = b.store.list_deliveries(Some("launch-day")).await.unwrap();
    assert_eq!(d[0].status(), DeliveryStatus::Paused);

    // The firing is on the timeline with its explanation.
    let firings = b.store.list_firings("launch").await.unwrap();
    assert_eq!(firings.len(), 1);
    let HarkEvent::TriggerFired(event) = serde_json::from_str(&firings[0].event).unwrap() else {
        panic!("not a TriggerFired event");
    };
    assert_eq!(event.figures.scored, Some(15));
    assert_eq!(event.figures.negative, Some(12));
    assert_eq!(event.samples.len(), 3);
    println!(
        "explained trigger event:\n{}",
        serde_json::to_string_pretty(&HarkEvent::TriggerFired(event.clone())).unwrap()
    );

    // EventBridge (moto) routed the TriggerFired event and the alert's PostPublished.
    let delivered = bus_deliveries(&sqs, &target).await;
    let types: Vec<&str> = delivered.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.contains(&"TriggerFired"), "{types:?}");
    assert!(types.contains(&"PostPublished"), "{types:?}");
    let (_, detail) = delivered.iter().find(|(t, _)| t == "TriggerFired").unwrap();
    assert_eq!(detail["event_id"], event.event_id.as_str());

    // More negative mentions within the window and cooldown: no second alert.
    let later = Timestamp::now();
    for i in 0..5 {
        masto.post(
            &format!("{}", 2000 + i),
            "Still broken, still terrible",
            later.max(hour_start),
        );
    }
    let fired_again = pipeline(&b, &bus, &slack.uri(), later).await;
    assert!(fired_again.is_empty(), "{fired_again:?}");
    assert_eq!(slack.received_requests().await.unwrap().len(), 1);
}
