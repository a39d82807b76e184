//! The port contract, written once, generic over the ports. `main.rs` runs every case
//! against each backend.

use std::collections::BTreeSet;
use std::sync::Arc;

use hark_shared::domain::{
    Author, Campaign, Cursor, Delivery, DeliveryStatus, Engagement, Mention, Platform, Sentiment,
    SentimentLabel, Source,
};
use hark_shared::ports::{
    AggregateStore, ConfigStore, Counters, CreateOutcome, CursorStore, DeliveryStore, FireOutcome,
    Firing, FiringRecord, HourBucket, MAX_BATCH_BYTES, MentionQuery, MentionStore, MessageQueue,
    PutOutcome, QueueError, QueueName, StoreError, TriggerStore, UpsertOutcome,
};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Barrier;

/// 2026-06-01T00:00:00Z, a fixed origin so the tests never depend on today.
const T0: i64 = 1_780_272_000;

fn at(seconds_after_t0: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds_after_t0).unwrap()
}

/// Texts that break naive encodings: emoji with ZWJ and skin tones, umlauts, CJK, RTL,
/// combining marks, quotes, SQL and DynamoDB expression characters.
pub const TRICKY_TEXTS: [&str; 6] = [
    "Hark ist großartig! Üben, Öl, Äpfel 🎉👩🏽‍💻",
    "日本語のテキストと絵文字 🇯🇵 and \"quotes\" 'single'",
    "مرحبا بالعالم — שלום",
    "e\u{301}le\u{300}ve combining; #hash @at :colon ${expr} %s",
    "'; DROP TABLE mentions; -- \\ backslash\ttab\nnewline",
    "🏳️‍🌈🧑‍🤝‍🧑 family 👨‍👩‍👧‍👦 ✔︎",
];

pub fn mention(platform: Platform, id: &str, created: i64, campaigns: &[&str]) -> Mention {
    Mention {
        platform,
        native_id: id.to_owned(),
        url: format!("https://example.test/{platform}/{id}"),
        author: Author {
            handle: format!("user-{id}"),
            display_name: Some("Zoë Ünal 🦀".to_owned()),
            followers: Some(1200),
            url: None,
        },
        text: format!("mention {id} about hark"),
        created_at: at(created),
        lang: Some("en".to_owned()),
        sentiment: Some(Sentiment {
            label: SentimentLabel::Positive,
            compound: 0.6249,
            pos: 0.4,
            neu: 0.6,
            neg: 0.0,
        }),
        engagement: Engagement {
            likes: 3,
            reposts: 1,
            replies: 0,
        },
        campaigns: campaigns.iter().map(|c| c.to_string()).collect(),
        source_id: Some("src".to_owned()),
    }
}

fn query(timeline: &str, from: i64, to: i64, limit: usize) -> MentionQuery {
    MentionQuery {
        timeline: timeline.to_owned(),
        from: at(from),
        to: at(to),
        limit,
    }
}

/// Reads every page of a listing.
async fn list_all(store: &impl MentionStore, q: &MentionQuery) -> (Vec<Mention>, usize) {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list_mentions(q, token.as_deref()).await.unwrap();
        pages += 1;
        assert!(
            page.items.len() <= q.limit,
            "a page holds at most `limit` items"
        );
        items.extend(page.items);
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
        assert!(pages < 100, "paging does not terminate");
    }
    (items, pages)
}

// ---------------------------------------------------------------- mentions

pub async fn second_put_of_a_mention_reports_already_exists_and_keeps_the_first(
    store: &impl MentionStore,
) {
    let first = mention(Platform::Mastodon, "113800000000000102", 10, &["launch"]);
    assert_eq!(
        store.put_mention(&first).await.unwrap(),
        PutOutcome::Inserted
    );

    let mut second = first.clone();
    second.text = "an edited text that must not replace the first".to_owned();
    second.campaigns = vec!["launch".to_owned(), "other".to_owned()];
    assert_eq!(
        store.put_mention(&second).await.unwrap(),
        PutOutcome::AlreadyExists
    );

    let stored = store.get_mention(&first.key()).await.unwrap().unwrap();
    assert_eq!(stored, first);
    let (other, _) = list_all(store, &query("other", 0, 100, 10)).await;
    assert!(other.is_empty(), "the rejected copy left no timeline entry");
}

pub async fn same_native_id_on_two_platforms_is_two_mentions(store: &impl MentionStore) {
    let a = mention(Platform::Mastodon, "42", 1, &["launch"]);
    let b = mention(Platform::Reddit, "42", 1, &["launch"]);
    assert_eq!(store.put_mention(&a).await.unwrap(), PutOutcome::Inserted);
    assert_eq!(store.put_mention(&b).await.unwrap(), PutOutcome::Inserted);
    assert_eq!(store.get_mention(&b.key()).await.unwrap().unwrap(), b);
}

pub async fn listing_by_time_range_spans_pages_oldest_first(store: &impl MentionStore) {
    // 25 mentions one minute apart in `launch`, some noise outside the range and timeline.
    for i in 0..25 {
        let m = mention(
            Platform::Bluesky,
            &format!("in-{i:02}"),
            600 + i * 60,
            &["launch"],
        );
        store.put_mention(&m).await.unwrap();
    }
    store
        .put_mention(&mention(Platform::Bluesky, "before", 599, &["launch"]))
        .await
        .unwrap();
    store
        .put_mention(&mention(
            Platform::Bluesky,
            "at-end",
            600 + 25 * 60,
            &["launch"],
        ))
        .await
        .unwrap();
    store
        .put_mention(&mention(Platform::Bluesky, "elsewhere", 700, &["other"]))
        .await
        .unwrap();

    let q = query("launch", 600, 600 + 25 * 60, 10);
    let (items, pages) = list_all(store, &q).await;
    let ids: Vec<_> = items.iter().map(|m| m.native_id.as_str()).collect();
    let expected: Vec<String> = (0..25).map(|i| format!("in-{i:02}")).collect();
    assert_eq!(
        ids, expected,
        "from is inclusive, to exclusive, oldest first"
    );
    assert!(
        pages >= 3,
        "25 items at 10 a page need at least 3 pages, got {pages}"
    );
}

pub async fn a_mention_in_two_campaigns_is_listed_in_both_and_unmatched_ones_apart(
    store: &impl MentionStore,
) {
    let both = mention(Platform::X, "1790000000000000001", 5, &["launch", "brand"]);
    let none = mention(Platform::X, "1790000000000000002", 6, &[]);
    store.put_mention(&both).await.unwrap();
    store.put_mention(&none).await.unwrap();
    for timeline in ["launch", "brand"] {
        let (items, _) = list_all(store, &query(timeline, 0, 60, 10)).await;
        assert_eq!(items, vec![both.clone()], "timeline {timeline}");
    }
    let (unmatched, _) = list_all(store, &query(MentionQuery::UNMATCHED, 0, 60, 10)).await;
    assert_eq!(unmatched, vec![none]);
}

pub async fn a_malformed_page_token_is_a_clear_error(store: &impl MentionStore) {
    store
        .put_mention(&mention(Platform::Rss, "feed-1", 1, &["launch"]))
        .await
        .unwrap();
    let err = store
        .list_mentions(&query("launch", 0, 60, 10), Some("not a token %%%"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidPageToken), "{err:?}");
}

pub async fn mention_expiry_is_stored_in_epoch_seconds(store: &impl MentionStore) {
    let m = mention(Platform::Hackernews, "38000001", 0, &["launch"]);
    store.put_mention(&m).await.unwrap();
    let expiry = store.mention_expiry(&m.key()).await.unwrap().unwrap();
    let expected = T0 + i64::from(hark_tests::RETENTION_DAYS) * 86_400;
    assert_eq!(
        expiry, expected,
        "created_at + retention, in seconds (not ms)"
    );
    assert!(
        store
            .mention_expiry(&mention(Platform::Hackernews, "nope", 0, &[]).key())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn unicode_and_emoji_survive_every_mention_round_trip(store: &impl MentionStore) {
    for (i, text) in TRICKY_TEXTS.iter().enumerate() {
        let mut m = mention(
            Platform::Mastodon,
            &format!("uni-{i}"),
            i as i64,
            &["launch"],
        );
        m.text = (*text).to_owned();
        m.author.handle = format!("{text}@host");
        store.put_mention(&m).await.unwrap();
        assert_eq!(store.get_mention(&m.key()).await.unwrap().unwrap(), m);
    }
    let (listed, _) = list_all(store, &query("launch", 0, 60, 100)).await;
    let texts: Vec<_> = listed.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, TRICKY_TEXTS.to_vec());
}

// ---------------------------------------------------------------- cursors

pub async fn a_stale_cursor_writer_loses_and_changes_nothing(store: &impl CursorStore) {
    assert!(
        store
            .get_cursor("rust-on-mastodon")
            .await
            .unwrap()
            .is_none()
    );
    let mut first = Cursor::new("rust-on-mastodon");
    first.position = Some("113800000000000102".to_owned());
    let saved = store.save_cursor(&first).await.unwrap();
    assert_eq!(saved.version, 1);

    // Two pollers read version 1; the first to write wins.
    let mut a = store.get_cursor("rust-on-mastodon").await.unwrap().unwrap();
    let mut b = a.clone();
    a.position = Some("113800000000000200".to_owned());
    b.position = Some("113800000000000150".to_owned());
    assert_eq!(store.save_cursor(&a).await.unwrap().version, 2);
    let err = store.save_cursor(&b).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 1, .. }),
        "{err:?}"
    );
    let stored = store.get_cursor("rust-on-mastodon").await.unwrap().unwrap();
    assert_eq!(stored.position.as_deref(), Some("113800000000000200"));
    assert_eq!(stored.version, 2);

    // Creating a cursor that already exists is also a lost race.
    let err = store
        .save_cursor(&Cursor::new("rust-on-mastodon"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 0, .. }));
}

pub async fn cursor_fields_round_trip(store: &impl CursorStore) {
    let mut c = Cursor::new("vendor-blog");
    c.etag = Some("W/\"5f3-ünïcode\"".to_owned());
    c.last_modified = Some("Wed, 21 Oct 2026 07:28:00 GMT".to_owned());
    c.next_poll_at = Some(at(300));
    c.failure_weight = 3;
    c.position = Some(TRICKY_TEXTS[5].to_owned());
    let saved = store.save_cursor(&c).await.unwrap();
    let read = store.get_cursor("vendor-blog").await.unwrap().unwrap();
    assert_eq!(read, saved);
    assert_eq!(Cursor { version: 0, ..read }, c);
}

// ---------------------------------------------------------------- aggregates

pub async fn fifty_concurrent_aggregate_adds_sum_exactly<S: AggregateStore + 'static>(
    store: Arc<S>,
) {
    let bucket = HourBucket::new("launch", Platform::Mastodon, at(1800));
    assert_eq!(bucket.hour, at(0), "buckets start on the hour");
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let store = store.clone();
        let bucket = bucket.clone();
        tasks.push(tokio::spawn(async move {
            let delta = Counters {
                mentions: 1,
                positive: i % 2,
                neutral: 0,
                negative: 1 - i % 2,
                unscored: 0,
                compound_e4: if i % 2 == 0 { -4767 } else { 6249 },
                reach: 100 + i,
            };
            store.add_counters(&bucket, &delta).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let other = HourBucket::new("launch", Platform::Bluesky, at(3600));
    store
        .add_counters(
            &other,
            &Counters {
                mentions: 2,
                ..Counters::default()
            },
        )
        .await
        .unwrap();

    let rows = store
        .list_counters("launch", at(0), at(7200))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let (b, c) = &rows[0];
    assert_eq!(b, &bucket);
    assert_eq!(c.mentions, 50);
    assert_eq!(c.positive, 25);
    assert_eq!(c.negative, 25);
    assert_eq!(c.compound_e4, 25 * -4767 + 25 * 6249);
    assert_eq!(c.reach, (0..50).map(|i| 100 + i).sum::<u64>());
    assert_eq!(rows[1].0, other);

    let first_hour_only = store
        .list_counters("launch", at(0), at(3600))
        .await
        .unwrap();
    assert_eq!(first_hour_only.len(), 1, "`to` is exclusive");
    assert!(
        store
            .list_counters("nope", at(0), at(7200))
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------- config documents

pub async fn config_upsert_reports_create_update_unchanged(store: &impl ConfigStore) {
    let source: Source = serde_json::from_value(serde_json::json!({
        "id": "rust-on-mastodon", "platform": "mastodon",
        "base_url": "https://mastodon.social", "query": "#rustlang", "every": "5m"
    }))
    .unwrap();
    assert_eq!(store.upsert(&source).await.unwrap(), UpsertOutcome::Created);
    assert_eq!(
        store.upsert(&source).await.unwrap(),
        UpsertOutcome::Unchanged
    );
    let mut changed = source.clone();
    changed.query = Some(format!("#rustlang {}", TRICKY_TEXTS[0]));
    assert_eq!(
        store.plan_upsert(&changed).await.unwrap(),
        UpsertOutcome::Updated
    );
    assert_eq!(
        store
            .get::<Source>("rust-on-mastodon")
            .await
            .unwrap()
            .unwrap(),
        source,
        "planning writes nothing"
    );
    assert_eq!(
        store.upsert(&changed).await.unwrap(),
        UpsertOutcome::Updated
    );
    assert_eq!(
        store
            .get::<Source>("rust-on-mastodon")
            .await
            .unwrap()
            .unwrap(),
        changed
    );

    for id in ["zeta", "alpha", "mid"] {
        let c = Campaign {
            id: id.to_owned(),
            name: Some(TRICKY_TEXTS[1].to_owned()),
            query: "hark".to_owned(),
            sources: vec!["rust-on-mastodon".to_owned()],
            triggers: vec![],
            active: true,
            policy: Default::default(),
        };
        store.upsert(&c).await.unwrap();
    }
    let ids: Vec<String> = store
        .list::<Campaign>()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["alpha", "mid", "zeta"]);
    assert!(store.get::<Campaign>("missing").await.unwrap().is_none());
    assert_eq!(
        store.list::<Source>().await.unwrap().len(),
        1,
        "kinds are apart"
    );
}

// ---------------------------------------------------------------- deliveries

fn delivery(post: &str, channel: &str, due: i64) -> Delivery {
    Delivery::new(post, channel, at(due), at(0))
}

pub async fn two_concurrent_claims_of_one_delivery_exactly_one_wins<S: DeliveryStore + 'static>(
    store: Arc<S>,
) {
    let d = delivery("launch-day", "brand-mastodon", 0);
    assert_eq!(
        store.create_delivery(&d).await.unwrap(),
        CreateOutcome::Created
    );

    let contenders = 2;
    let barrier = Arc::new(Barrier::new(contenders));
    let mut tasks = Vec::new();
    for worker in 0..contenders {
        let store = store.clone();
        let barrier = barrier.clone();
        let id = d.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut current = store.get_delivery(&id).await.unwrap().unwrap();
            // Both have read the same version before either writes.
            barrier.wait().await;
            current
                .claim(
                    &format!("worker-{worker}"),
                    SignedDuration::from_secs(60),
                    at(1),
                )
                .unwrap();
            store.update_delivery(&current).await
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(updated) => {
                wins += 1;
                assert_eq!(updated.status(), DeliveryStatus::Claimed);
            }
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 1));
    let stored = store.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), DeliveryStatus::Claimed);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.version, 2);
}

pub async fn deliveries_are_created_once_and_updated_only_from_the_version_read(
    store: &impl DeliveryStore,
) {
    let d = delivery("launch-day", "brand-bluesky", 0);
    assert_eq!(
        store.create_delivery(&d).await.unwrap(),
        CreateOutcome::Created
    );
    let mut dup = d.clone();
    dup.due_at = at(999);
    assert_eq!(
        store.create_delivery(&dup).await.unwrap(),
        CreateOutcome::AlreadyExists
    );
    let stored = store.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(stored.due_at, at(0), "the duplicate create changed nothing");
    assert_eq!(stored.version, 1);

    let mut claimed = stored.clone();
    claimed
        .claim("w1", SignedDuration::from_secs(60), at(1))
        .unwrap();
    let claimed = store.update_delivery(&claimed).await.unwrap();
    let mut sent = claimed.clone();
    sent.mark_sent(SignedDuration::from_secs(60), at(2))
        .unwrap();
    let sent = store.update_delivery(&sent).await.unwrap();
    let mut published = sent.clone();
    published
        .mark_published(
            "3l6oveex3ii2l",
            Some("https://bsky.app/profile/brand/post/3l6oveex3ii2l"),
            at(3),
        )
        .unwrap();
    let published = store.update_delivery(&published).await.unwrap();
    assert_eq!(published.version, 4);
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), published);

    // A writer still holding the CLAIMED copy loses.
    let mut stale = claimed.clone();
    stale.mark_failed("late", false, at(4)).unwrap();
    let err = store.update_delivery(&stale).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: 2, .. }),
        "{err:?}"
    );

    let mut ghost = delivery("nope", "nowhere", 0);
    ghost.version = 1;
    let err = store.update_delivery(&ghost).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn due_deliveries_are_listed_earliest_first(store: &impl DeliveryStore) {
    for (post, due) in [("p3", 300), ("p1", 100), ("p2", 200), ("later", 10_000)] {
        store
            .create_delivery(&delivery(post, "brand-mastodon", due))
            .await
            .unwrap();
    }
    // A claimed one is not due any more.
    let mut p2 = store
        .get_delivery(&Delivery::id_for("p2", "brand-mastodon", at(200)))
        .await
        .unwrap()
        .unwrap();
    p2.claim("w", SignedDuration::from_secs(60), at(250))
        .unwrap();
    store.update_delivery(&p2).await.unwrap();

    let due = store.list_due(at(300), 10).await.unwrap();
    let posts: Vec<_> = due.iter().map(|d| d.post_id.as_str()).collect();
    assert_eq!(posts, ["p1", "p3"]);
    assert_eq!(store.list_due(at(300), 1).await.unwrap().len(), 1);
    assert!(store.list_due(at(99), 10).await.unwrap().is_empty());

    let all = store.list_deliveries(None).await.unwrap();
    assert_eq!(all.len(), 4);
    let one = store.list_deliveries(Some("later")).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].post_id, "later");
}

pub async fn claimed_sent_and_unknown_deliveries_are_listed_to_settle_by_settle_time(
    store: &impl DeliveryStore,
) {
    let lease = SignedDuration::from_secs(60);
    let stored = |post: &str| Delivery::id_for(post, "brand-x", at(0));
    for post in ["queued", "claimed", "sent", "unknown", "published"] {
        store
            .create_delivery(&delivery(post, "brand-x", 0))
            .await
            .unwrap();
    }
    let step = |post: &'static str| async move {
        store.get_delivery(&stored(post)).await.unwrap().unwrap()
    };
    let mut claimed = step("claimed").await;
    claimed.claim("w1", lease, at(40)).unwrap(); // lease until 100
    store.update_delivery(&claimed).await.unwrap();
    let mut sent = step("sent").await;
    sent.claim("w2", lease, at(10)).unwrap();
    sent.mark_sent(lease, at(50)).unwrap(); // settles at 110
    store.update_delivery(&sent).await.unwrap();
    let mut unknown = step("unknown").await;
    unknown.claim("w3", lease, at(10)).unwrap();
    unknown.mark_sent(lease, at(20)).unwrap();
    unknown
        .mark_unknown("timeout ⏱ after send", at(90), at(30))
        .unwrap();
    let unknown = store.update_delivery(&unknown).await.unwrap();
    let mut published = step("published").await;
    published.claim("w4", lease, at(10)).unwrap();
    published.mark_sent(lease, at(11)).unwrap();
    published.mark_published("1", None, at(12)).unwrap();
    store.update_delivery(&published).await.unwrap();

    let posts = |list: Vec<Delivery>| list.into_iter().map(|d| d.post_id).collect::<Vec<_>>();
    assert!(store.list_to_settle(at(89), 10).await.unwrap().is_empty());
    assert_eq!(
        posts(store.list_to_settle(at(105), 10).await.unwrap()),
        ["unknown", "claimed"],
        "earliest settle time first; the send's lease still runs"
    );
    let all = store.list_to_settle(at(200), 10).await.unwrap();
    assert_eq!(posts(all.clone()), ["unknown", "claimed", "sent"]);
    assert_eq!(all[0], unknown, "read back whole, with its version");
    assert_eq!(
        posts(store.list_to_settle(at(200), 1).await.unwrap()),
        ["unknown"]
    );
    assert!(store.list_to_settle(at(200), 0).await.unwrap().is_empty());
    assert_eq!(
        posts(store.list_due(at(200), 10).await.unwrap()),
        ["queued"],
        "the due listing is unaffected"
    );

    // Settled: an UNKNOWN found not published is queued again and leaves the listing.
    let mut requeued = unknown;
    requeued
        .requeue(at(120), "not on the account", at(120))
        .unwrap();
    store.update_delivery(&requeued).await.unwrap();
    assert_eq!(
        posts(store.list_to_settle(at(200), 10).await.unwrap()),
        ["claimed", "sent"]
    );
    assert_eq!(
        posts(store.list_due(at(200), 10).await.unwrap()),
        ["queued", "unknown"]
    );
}

// ---------------------------------------------------------------- triggers

fn firing(window_start: i64, now: i64, cooldown: i64) -> Firing {
    Firing {
        campaign: "launch".to_owned(),
        rule: "negative-wave".to_owned(),
        window_start: at(window_start),
        now: at(now),
        cooldown_until: at(now + cooldown),
        event: format!("{{\"window_start\":{window_start}}}"),
    }
}

pub async fn a_rule_fires_once_per_window_even_when_raced<S: TriggerStore + 'static>(
    store: Arc<S>,
) {
    let contenders = 8;
    let barrier = Arc::new(Barrier::new(contenders));
    let mut tasks = Vec::new();
    for _ in 0..contenders {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.fire_once(&firing(3600, 3700, 1800)).await.unwrap()
        }));
    }
    let mut fired = 0;
    for t in tasks {
        if t.await.unwrap() == FireOutcome::Fired {
            fired += 1;
        }
    }
    assert_eq!(fired, 1);

    // Same window again: suppressed. Next window inside the cooldown: suppressed.
    assert_eq!(
        store.fire_once(&firing(3600, 3800, 1800)).await.unwrap(),
        FireOutcome::Suppressed
    );
    assert_eq!(
        store.fire_once(&firing(7200, 5000, 1800)).await.unwrap(),
        FireOutcome::Suppressed
    );
    // Next window after the cooldown: fires.
    assert_eq!(
        store.fire_once(&firing(7200, 7300, 1800)).await.unwrap(),
        FireOutcome::Fired
    );
    let state = store
        .trigger_state("launch", "negative-wave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.fired_count, 2);
    assert_eq!(state.window_start, at(7200));
    assert_eq!(state.cooldown_until, at(9100));
    assert!(
        store
            .trigger_state("launch", "other")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn a_fired_rule_keeps_its_event_pending_until_announced<S: TriggerStore>(store: &S) {
    assert_eq!(
        store.fire_once(&firing(3600, 3700, 600)).await.unwrap(),
        FireOutcome::Fired
    );
    let state = store
        .trigger_state("launch", "negative-wave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state.pending_event.as_deref(),
        Some("{\"window_start\":3600}")
    );
    // A stale acknowledgement (another window) leaves it pending.
    store
        .mark_announced("launch", "negative-wave", at(0))
        .await
        .unwrap();
    let state = store
        .trigger_state("launch", "negative-wave")
        .await
        .unwrap()
        .unwrap();
    assert!(state.pending_event.is_some());
    store
        .mark_announced("launch", "negative-wave", at(3600))
        .await
        .unwrap();
    let state = store
        .trigger_state("launch", "negative-wave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.pending_event, None);
    assert_eq!(state.fired_count, 1);
    // Unknown rules: nothing to do, no error.
    store
        .mark_announced("launch", "nope", at(3600))
        .await
        .unwrap();
}

pub async fn firings_are_kept_per_campaign_in_window_order<S: TriggerStore>(store: &S) {
    let record = |rule: &str, window: i64| FiringRecord {
        campaign: "launch".to_owned(),
        rule: rule.to_owned(),
        window_start: at(window),
        fired_at: at(window + 5),
        event: format!("{{\"rule\":\"{rule}\",\"w\":{window}}}"),
    };
    store.record_firing(&record("spike", 7200)).await.unwrap();
    store
        .record_firing(&record("negative", 3600))
        .await
        .unwrap();
    store.record_firing(&record("spike", 3600)).await.unwrap();
    // Idempotent: recording the same firing again keeps one record.
    store.record_firing(&record("spike", 7200)).await.unwrap();
    let mut other = record("spike", 3600);
    other.campaign = "other".to_owned();
    store.record_firing(&other).await.unwrap();

    let listed = store.list_firings("launch").await.unwrap();
    let order: Vec<(String, i64)> = listed
        .iter()
        .map(|r| (r.rule.clone(), r.window_start.as_second()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("negative".to_owned(), at(3600).as_second()),
            ("spike".to_owned(), at(3600).as_second()),
            ("spike".to_owned(), at(7200).as_second())
        ]
    );
    assert_eq!(listed[2], record("spike", 7200));
    assert!(store.list_firings("nobody").await.unwrap().is_empty());
}

pub async fn a_budget_is_never_overdrawn_even_when_raced<S: TriggerStore + 'static>(store: Arc<S>) {
    let contenders = 8;
    let barrier = Arc::new(Barrier::new(contenders));
    let mut tasks = Vec::new();
    for _ in 0..contenders {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .take_budget("launch/2026-11-26", 3, at(86_400), None)
                .await
                .unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if t.await.unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 3);
    assert!(
        !store
            .take_budget("launch/2026-11-26", 3, at(86_400), None)
            .await
            .unwrap()
    );
    // Another period is another budget; a zero budget is never taken.
    assert!(
        store
            .take_budget("launch/2026-11-27", 3, at(172_800), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_budget("none/2026-11-26", 0, at(86_400), None)
            .await
            .unwrap()
    );
}

pub async fn a_budget_taker_counts_once_even_when_repeated_or_raced<S: TriggerStore + 'static>(
    store: Arc<S>,
) {
    let take = |key: &'static str, limit: u32, taker: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .take_budget(key, limit, at(86_400), taker)
                .await
                .unwrap()
        }
    };
    // The same taker twice is one unit: a second taker still fits a limit of 2.
    let key = "auto-posts/launch/2026-11-26";
    assert!(take(key, 2, Some("auto-a")).await);
    assert!(
        take(key, 2, Some("auto-a")).await,
        "a repeated take is granted"
    );
    assert!(take(key, 2, Some("auto-b")).await, "auto-a counted once");
    // The budget is full: its holders are still granted, anyone else is refused.
    assert!(take(key, 2, Some("auto-a")).await);
    assert!(take(key, 2, Some("auto-b")).await);
    assert!(!take(key, 2, Some("auto-c")).await);
    assert!(!take(key, 2, None).await);
    // A holder keeps its unit when the limit drops to zero; nobody else gets one.
    assert!(take(key, 0, Some("auto-a")).await);
    assert!(!take(key, 0, Some("auto-c")).await);

    // 10 takers, each asking twice, all at once, for a budget of 5.
    let key = "auto-posts/race/2026-11-26";
    let takers = [
        "auto-0", "auto-1", "auto-2", "auto-3", "auto-4", "auto-5", "auto-6", "auto-7", "auto-8",
        "auto-9",
    ];
    let barrier = Arc::new(Barrier::new(takers.len() * 2));
    let mut tasks = Vec::new();
    for taker in takers.into_iter().chain(takers) {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let granted = store
                .take_budget(key, 5, at(86_400), Some(taker))
                .await
                .unwrap();
            (taker, granted)
        }));
    }
    let mut grants: std::collections::BTreeMap<&str, Vec<bool>> = Default::default();
    for t in tasks {
        let (taker, granted) = t.await.unwrap();
        grants.entry(taker).or_default().push(granted);
    }
    let granted: Vec<&str> = grants
        .iter()
        .filter(|(_, answers)| answers.contains(&true))
        .map(|(taker, _)| *taker)
        .collect();
    assert_eq!(granted.len(), 5, "{grants:?}");
    for (taker, answers) in &grants {
        assert_eq!(answers.len(), 2);
        assert_eq!(
            answers[0], answers[1],
            "{taker} was granted once and refused once: {grants:?}"
        );
    }
    // Exactly 5 units are counted: a limit of 6 leaves room for one more taker, not two.
    assert!(!take(key, 5, Some("auto-late")).await);
    assert!(take(key, 6, Some("auto-late")).await);
    assert!(!take(key, 6, Some("auto-later")).await);
    assert!(!take(key, 6, None).await);
}

// ---------------------------------------------------------------- queue

fn bodies(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!("{{\"n\":{i},\"tag\":\"{tag}\"}}"))
        .collect()
}

pub async fn a_message_comes_back_after_its_visibility_timeout_with_its_receive_count(
    queue: &impl MessageQueue,
) {
    queue
        .send_batch(QueueName::Mentions, &bodies(1, "vis"))
        .await
        .unwrap();
    let first = queue
        .receive(QueueName::Mentions, 10, SignedDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(
        queue
            .receive(QueueName::Mentions, 10, SignedDuration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "hidden while its visibility timeout runs"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let again = queue
        .receive(QueueName::Mentions, 10, SignedDuration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].body, first[0].body);
    assert_eq!(again[0].receive_count, 2);

    queue
        .delete(QueueName::Mentions, &again[0].receipt)
        .await
        .unwrap();
    queue
        .change_visibility(QueueName::Mentions, &again[0].receipt, SignedDuration::ZERO)
        .await
        .expect_err("a deleted message's receipt no longer works");
    assert!(
        queue
            .receive(QueueName::Mentions, 10, SignedDuration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_delayed_message_is_not_received_before_its_delay_then_is(queue: &impl MessageQueue) {
    queue
        .send_batch_delayed(
            QueueName::Poll,
            &bodies(2, "delayed"),
            SignedDuration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(
        queue
            .receive(QueueName::Poll, 10, SignedDuration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "held back while the delay runs"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(
            queue
                .receive(QueueName::Poll, 10, SignedDuration::from_secs(30))
                .await
                .unwrap(),
        );
    }
    let mut got: Vec<String> = got.into_iter().map(|m| m.body).collect();
    got.sort();
    assert_eq!(
        got,
        bodies(2, "delayed"),
        "both arrive once the delay is over"
    );

    let err = queue
        .send_batch_delayed(
            QueueName::Poll,
            &bodies(1, "too-late"),
            SignedDuration::from_secs(901),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueueError::InvalidDelay { millis: 901_000 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("0 to 900 seconds"), "{err}");
    let err = queue
        .send_batch_delayed(QueueName::Poll, &[], SignedDuration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::EmptyBatch), "{err:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(
        queue
            .receive(QueueName::Poll, 10, SignedDuration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "a refused batch sent nothing"
    );
}

pub async fn change_visibility_to_zero_makes_a_message_visible_now(queue: &impl MessageQueue) {
    queue
        .send_batch(QueueName::Publish, &bodies(1, "cv"))
        .await
        .unwrap();
    let got = queue
        .receive(QueueName::Publish, 1, SignedDuration::from_secs(600))
        .await
        .unwrap();
    queue
        .change_visibility(QueueName::Publish, &got[0].receipt, SignedDuration::ZERO)
        .await
        .unwrap();
    let again = queue
        .receive(QueueName::Publish, 1, SignedDuration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, got[0].message_id);
}

pub async fn a_message_received_too_often_goes_to_the_dead_letter_queue(queue: &impl MessageQueue) {
    queue
        .send_batch(QueueName::Events, &bodies(1, "poison"))
        .await
        .unwrap();
    for n in 1..=hark_tests::MAX_RECEIVES {
        let got = queue
            .receive(QueueName::Events, 10, SignedDuration::ZERO)
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
    }
    let after = queue
        .receive(QueueName::Events, 10, SignedDuration::ZERO)
        .await
        .unwrap();
    assert!(after.is_empty(), "moved to the DLQ, not delivered again");
    let dead = queue
        .receive(QueueName::EventsDlq, 10, SignedDuration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].body,
        bodies(1, "poison")[0],
        "nothing lost on the way"
    );
}

pub async fn batches_beyond_sqs_limits_are_rejected_with_a_clear_error(queue: &impl MessageQueue) {
    let err = queue
        .send_batch(QueueName::Poll, &bodies(11, "many"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::TooManyMessages { count: 11 }));
    assert_eq!(err.to_string(), "a batch holds at most 10 messages, got 11");

    let big = vec![
        "x".repeat(MAX_BATCH_BYTES / 2 + 1),
        "y".repeat(MAX_BATCH_BYTES / 2),
    ];
    let err = queue.send_batch(QueueName::Poll, &big).await.unwrap_err();
    assert!(matches!(err, QueueError::BatchTooLarge { .. }));
    assert!(err.to_string().contains("262144 bytes"));

    let err = queue.send_batch(QueueName::Poll, &[]).await.unwrap_err();
    assert!(matches!(err, QueueError::EmptyBatch));
    let err = queue
        .receive(QueueName::Poll, 11, SignedDuration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidReceiveCount { asked: 11 }));

    assert!(
        queue
            .receive(QueueName::Poll, 10, SignedDuration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "a rejected batch sent nothing"
    );
    // A full batch of ten goes through whole.
    queue
        .send_batch(QueueName::Poll, &bodies(10, "ten"))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..5 {
        for m in queue
            .receive(QueueName::Poll, 10, SignedDuration::from_secs(60))
            .await
            .unwrap()
        {
            seen.insert(m.body);
        }
    }
    assert_eq!(seen, bodies(10, "ten").into_iter().collect());
}

pub async fn unicode_and_emoji_survive_the_queue(queue: &impl MessageQueue) {
    let texts: Vec<String> = TRICKY_TEXTS
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string())
        .collect();
    queue.send_batch(QueueName::Mentions, &texts).await.unwrap();
    let mut got = BTreeSet::new();
    for _ in 0..5 {
        for m in queue
            .receive(QueueName::Mentions, 10, SignedDuration::from_secs(60))
            .await
            .unwrap()
        {
            got.insert(m.body);
        }
    }
    assert_eq!(got, texts.into_iter().collect());
}
