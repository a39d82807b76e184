//! End to end over the AWS emulator, one poll per platform added after the core: a
//! scheduler tick, the poller's handler against the platform's simulated API, the
//! processor; the mentions end up in DynamoDB, normalised, with the cursor advanced, and a
//! second round finds nothing new.

use std::collections::HashMap;
use std::sync::Arc;

use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::domain::{Campaign, Platform, Source};
use hark_shared::lambda::{poll_event, sqs_event};
use hark_shared::listening::{PollerSettings, schedule_polls};
use hark_shared::platforms::HttpClient;
use hark_shared::platforms::listeners::PlatformListeners;
use hark_shared::ports::{ConfigStore, CursorStore, MessageQueue, QueueName};
use hark_shared::processing::{Processor, list_mentions};
use hark_tests::fakes::facebook::{FACEBOOK_PAGE_ID, FACEBOOK_PAGE_TOKEN, FakeFacebook};
use hark_tests::fakes::reddit::{FakeReddit, REDDIT_CREDENTIALS};
use hark_tests::fakes::x::{FakeX, X_APP_BEARER};
use hark_tests::fakes::youtube::{FakeYouTube, YOUTUBE_API_KEY};
use hark_tests::fakes::{BLUESKY_APP_PASSWORD, BLUESKY_HANDLE, FakePds};
use hark_tests::publishing::StaticSecrets;
use hark_tests::{AwsBackend, aws_backend};
use jiff::{SignedDuration, Timestamp};

/// One round: tick, drain the poll queue through the poller's handler, then the mentions
/// queue through the processor. Returns how many poll messages failed.
async fn round(b: &AwsBackend, listeners: &PlatformListeners, now: Timestamp) -> usize {
    let store = &*b.store;
    let queue: &dyn MessageQueue = &*b.queue;
    schedule_polls(store, queue, now).await.unwrap();
    let mut failed = 0;
    loop {
        let msgs = queue
            .receive(QueueName::Poll, 10, SignedDuration::from_secs(60))
            .await
            .unwrap();
        if msgs.is_empty() {
            break;
        }
        let response = poll_event(
            store,
            queue,
            listeners,
            &sqs_event(&msgs),
            now,
            &PollerSettings::default(),
        )
        .await;
        failed += response.batch_item_failures.len();
        for m in &msgs {
            queue.delete(QueueName::Poll, &m.receipt).await.unwrap();
        }
    }
    let processor =
        Processor::new(Analyzer::new(Languages::from_codes(&["en".to_owned()]).unwrap()).unwrap());
    loop {
        let msgs = queue
            .receive(QueueName::Mentions, 10, SignedDuration::from_secs(60))
            .await
            .unwrap();
        if msgs.is_empty() {
            break;
        }
        let bodies: Vec<&str> = msgs.iter().map(|m| m.body.as_str()).collect();
        processor.process_batch(store, &bodies).await.unwrap();
        for m in &msgs {
            queue.delete(QueueName::Mentions, &m.receipt).await.unwrap();
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_each_new_platform_then_one_poll_stores_its_mentions_in_dynamodb() {
    let b = aws_backend().await;
    let now = Timestamp::now();
    let earlier = |mins: i64| now - SignedDuration::from_mins(mins);

    let x = FakeX::start().await;
    x.post(
        "1860000000000000001",
        "Hark makes listening easy",
        earlier(30),
    );
    x.post("1860000000000000002", "Trying hark today", earlier(20));

    let facebook = FakeFacebook::start().await;
    facebook.tag("t1", "Tagged: hark at the conference", earlier(40));
    let post = facebook.page_post("p1", "Hark 1.0 is out", earlier(60));
    facebook.comment(&post, "c1", "Congrats on hark!", earlier(10));

    let youtube = FakeYouTube::start().await;
    youtube.video(
        "vid00000001",
        "Hark review",
        "A look at hark, the listening tool",
        earlier(90),
    );
    youtube.comment("vid00000001", "cm1", "Great hark video", earlier(5));

    let reddit = FakeReddit::start().await;
    reddit.post("abc1", "Is hark any good?", earlier(50));
    reddit.post("abc2", "Hark vs the rest", earlier(15));

    let pds = FakePds::start().await;
    pds.post("3kaaa1", "alice.bsky.social", "hark is neat", earlier(25));
    pds.post("3kaaa2", "bob.bsky.social", "loving hark", earlier(12));

    let store = &*b.store;
    let sources = [
        serde_json::json!({"id": "x", "platform": "x", "base_url": x.base_url(), "query": "hark", "credentials": "env:X"}),
        serde_json::json!({"id": "fb", "platform": "facebook", "base_url": facebook.uri(), "account": FACEBOOK_PAGE_ID, "credentials": "env:FB"}),
        serde_json::json!({"id": "yt", "platform": "youtube", "base_url": youtube.uri(), "query": "hark", "credentials": "env:YT"}),
        serde_json::json!({"id": "rd", "platform": "reddit", "base_url": reddit.uri(), "query": "hark", "credentials": "env:RD"}),
        serde_json::json!({"id": "sky", "platform": "bluesky", "base_url": pds.uri(), "account": BLUESKY_HANDLE, "query": "hark", "credentials": "env:SKY"}),
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
            sources: ["x", "fb", "yt", "rd", "sky"].map(String::from).to_vec(),
            triggers: vec![],
            active: true,
            policy: Default::default(),
        })
        .await
        .unwrap();
    let secrets = StaticSecrets(HashMap::from([
        ("X".to_owned(), X_APP_BEARER.to_owned()),
        ("FB".to_owned(), FACEBOOK_PAGE_TOKEN.to_owned()),
        ("YT".to_owned(), YOUTUBE_API_KEY.to_owned()),
        ("RD".to_owned(), REDDIT_CREDENTIALS.to_owned()),
        ("SKY".to_owned(), BLUESKY_APP_PASSWORD.to_owned()),
    ]));
    let listeners = PlatformListeners::new(HttpClient::new(true).unwrap(), Arc::new(secrets));

    assert_eq!(round(&b, &listeners, now).await, 0, "every poll succeeds");
    let mentions = list_mentions(
        store,
        Some("launch"),
        earlier(24 * 60),
        now + SignedDuration::from_mins(1),
    )
    .await
    .unwrap();
    let count = |p: Platform| mentions.iter().filter(|m| m.platform == p).count();
    assert_eq!(count(Platform::X), 2);
    assert!(
        count(Platform::Facebook) >= 2,
        "tag and comment: {}",
        count(Platform::Facebook)
    );
    assert!(
        count(Platform::Youtube) >= 2,
        "video and comment: {}",
        count(Platform::Youtube)
    );
    assert_eq!(count(Platform::Reddit), 2);
    assert_eq!(count(Platform::Bluesky), 2);
    for m in &mentions {
        assert!(m.url.starts_with("https://"), "{}: {}", m.platform, m.url);
        assert!(!m.text.is_empty());
        assert!(m.sentiment.is_some());
        assert!(!m.author.handle.is_empty(), "{}", m.platform);
    }
    for id in ["x", "fb", "yt", "rd", "sky"] {
        let cursor = store.get_cursor(id).await.unwrap().unwrap();
        assert!(cursor.position.is_some(), "{id} cursor advanced");
        assert_eq!(cursor.health.consecutive_failures, 0, "{id}");
    }

    // A second round later: nothing new is stored twice.
    let before = mentions.len();
    assert_eq!(
        round(&b, &listeners, now + SignedDuration::from_mins(16)).await,
        0
    );
    let again = list_mentions(
        store,
        Some("launch"),
        earlier(24 * 60),
        now + SignedDuration::from_mins(20),
    )
    .await
    .unwrap();
    assert_eq!(again.len(), before);
}
