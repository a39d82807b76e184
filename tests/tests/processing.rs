//! The processor use case on both backends: analysis, campaign matching, dedupe, hourly
//! aggregates (exact under concurrent batches), authors ranked from the stored mentions and
//! malformed messages.

use std::sync::Arc;

use hark_shared::analysis::{Analyzer, Languages};
use hark_shared::authors::{AuthorStats, top_authors};
use hark_shared::domain::{Author, Campaign, Engagement, Mention, Platform, SentimentLabel};
use hark_shared::listening::MentionBatch;
use hark_shared::ports::{AggregateStore, ConfigStore, MentionQuery, MentionStore};
use hark_shared::processing::{Processor, list_mentions};
use jiff::Timestamp;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_780_272_000 + s).unwrap()
}

fn processor() -> Processor {
    Processor::new(Analyzer::new(Languages::default()).unwrap())
}

fn mention(platform: Platform, id: &str, text: &str, followers: u64, at: i64) -> Mention {
    Mention {
        platform,
        native_id: id.into(),
        url: format!("https://example.test/{id}"),
        author: Author {
            handle: format!("user{id}@example.test"),
            display_name: None,
            followers: Some(followers),
            url: None,
        },
        text: text.into(),
        created_at: t(at),
        lang: None,
        sentiment: None,
        engagement: Engagement::default(),
        campaigns: vec![],
        source_id: None,
    }
}

fn body(source: &str, mentions: Vec<Mention>) -> String {
    serde_json::to_string(&MentionBatch {
        source_id: source.into(),
        mentions,
    })
    .unwrap()
}

async fn campaigns<S: ConfigStore>(store: &S) {
    for (id, query, sources) in [
        ("launch", "(hark OR #harkapp) -hiring", vec!["masto", "hn"]),
        ("german", "hark lang:de", vec![]),
        ("old", "hark", vec![]),
    ] {
        store
            .upsert(&Campaign {
                id: id.into(),
                name: None,
                query: query.into(),
                sources: sources.into_iter().map(String::from).collect(),
                triggers: vec![],
                active: id != "old",
                policy: Default::default(),
            })
            .await
            .unwrap();
    }
}

async fn given_mentions_when_processed_then_analysed_matched_stored_and_counted<S>(store: &S)
where
    S: ConfigStore + MentionStore + AggregateStore,
{
    campaigns(store).await;
    let p = processor();
    let batch = body(
        "masto",
        vec![
            mention(
                Platform::Mastodon,
                "1",
                "I love hark, it is wonderful! 🎉",
                100,
                10,
            ),
            mention(
                Platform::Mastodon,
                "2",
                "Hark ist schrecklich, ich hasse diese Übung.",
                50,
                20,
            ),
            mention(Platform::Mastodon, "3", "hark is hiring engineers", 5, 30),
            mention(Platform::Mastodon, "4", "nothing to see here at all", 5, 40),
        ],
    );
    let out = p.process_batch(store, &[&batch]).await.unwrap();
    assert!(out.messages.iter().all(Result::is_ok));
    assert_eq!(out.report.stored, 4);
    assert_eq!(
        out.report.matched, 2,
        "#1 and #2 match; #3 is excluded by -hiring"
    );

    let all = list_mentions(store, None, t(0), t(3600)).await.unwrap();
    assert_eq!(all.len(), 4);
    let one = &all[0];
    assert_eq!(one.lang.as_deref(), Some("en"));
    assert_eq!(one.sentiment.unwrap().label, SentimentLabel::Positive);
    assert_eq!(one.campaigns, ["launch"]);
    let two = &all[1];
    assert_eq!(two.lang.as_deref(), Some("de"));
    assert_eq!(two.sentiment.unwrap().label, SentimentLabel::Negative);
    assert_eq!(
        two.campaigns,
        ["german", "launch"],
        "German text matches lang:de too"
    );
    assert_eq!(two.text, "Hark ist schrecklich, ich hasse diese Übung.");
    assert!(all[2].campaigns.is_empty() && all[3].campaigns.is_empty());

    let rows = store.list_counters("launch", t(0), t(3600)).await.unwrap();
    assert_eq!(rows.len(), 1);
    let c = rows[0].1;
    assert_eq!((c.mentions, c.positive, c.negative), (2, 1, 1));
    assert_eq!(c.reach, 150);
    let expected_e4 = (one.sentiment.unwrap().compound * 1e4).round() as i64
        + (two.sentiment.unwrap().compound * 1e4).round() as i64;
    assert_eq!(c.compound_e4, expected_e4);
    assert_eq!(
        out.report.aggregate_writes, 2,
        "one add per campaign × platform × hour group, not per mention"
    );
}

async fn given_a_redelivered_batch_then_nothing_is_counted_twice<S>(store: &S)
where
    S: ConfigStore + MentionStore + AggregateStore,
{
    campaigns(store).await;
    let p = processor();
    let batch = body(
        "hn",
        vec![mention(Platform::Hackernews, "9", "hark rocks", 10, 5)],
    );
    p.process_batch(store, &[&batch]).await.unwrap();
    let again = p.process_batch(store, &[&batch]).await.unwrap();
    assert_eq!((again.report.stored, again.report.duplicates), (0, 1));
    assert_eq!(again.report.aggregate_writes, 0);
    let rows = store.list_counters("launch", t(0), t(3600)).await.unwrap();
    assert_eq!(rows[0].1.mentions, 1);
}

async fn given_a_malformed_message_then_only_it_fails_and_the_others_are_stored<S>(store: &S)
where
    S: ConfigStore + MentionStore + AggregateStore,
{
    campaigns(store).await;
    let p = processor();
    let good = body(
        "masto",
        vec![mention(Platform::Mastodon, "5", "hark 👩🏽‍💻 Grüße", 1, 1)],
    );
    let out = p
        .process_batch(store, &[&good, "{not json", "{\"source_id\":\"x\"}"])
        .await
        .unwrap();
    assert!(out.messages[0].is_ok());
    assert!(out.messages[1].is_err() && out.messages[2].is_err());
    assert_eq!(out.report.failed_messages, 2);
    let stored = store
        .get_mention(&mention(Platform::Mastodon, "5", "", 0, 0).key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.text, "hark 👩🏽‍💻 Grüße");
}

async fn given_concurrent_batches_then_aggregates_sum_exactly<S>(store: Arc<S>)
where
    S: ConfigStore + MentionStore + AggregateStore + 'static,
{
    campaigns(&*store).await;
    let p = Arc::new(processor());
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (store, p) = (store.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            let mentions = (0..25)
                .map(|i| {
                    mention(
                        Platform::Mastodon,
                        &format!("w{worker}-{i}"),
                        "hark is great",
                        2,
                        i,
                    )
                })
                .collect();
            // Every batch is also delivered twice, concurrently with the others.
            let b = body("masto", mentions);
            p.process_batch(&*store, &[&b]).await.unwrap();
            p.process_batch(&*store, &[&b]).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rows = store.list_counters("launch", t(0), t(3600)).await.unwrap();
    assert_eq!(rows[0].1.mentions, 200);
    assert_eq!(rows[0].1.positive, 200);
    assert_eq!(rows[0].1.reach, 400);
    let page = store
        .list_mentions(
            &MentionQuery {
                timeline: "launch".into(),
                from: t(0),
                to: t(3600),
                limit: 1000,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 200);
}

/// A mention by `handle` with the given follower count and engagement.
fn by(handle: &str, followers: Option<u64>, engagement: (u64, u64, u64), m: Mention) -> Mention {
    Mention {
        author: Author {
            handle: handle.into(),
            followers,
            ..m.author
        },
        engagement: Engagement {
            likes: engagement.0,
            reposts: engagement.1,
            replies: engagement.2,
        },
        ..m
    }
}

const GERMAN: &str = "Hark ist schrecklich, ich hasse diese Übung.";

fn stats(
    handle: &str,
    mentions: u64,
    engagement: u64,
    max_followers: Option<u64>,
    last_seen: i64,
) -> AuthorStats {
    AuthorStats {
        platform: Platform::Mastodon,
        handle: handle.to_owned(),
        mentions,
        engagement,
        max_followers,
        last_seen: t(last_seen),
    }
}

/// The campaign's authors as a report ranks them: from its stored mentions.
async fn authors_of<S: ConfigStore + MentionStore>(store: &S, campaign: &str) -> Vec<AuthorStats> {
    let mentions = list_mentions(store, Some(campaign), t(0), t(3600))
        .await
        .unwrap();
    top_authors(&mentions, 10)
}

async fn given_processed_mentions_then_each_stored_one_counts_once_for_its_author<S>(store: &S)
where
    S: ConfigStore + MentionStore + AggregateStore,
{
    campaigns(store).await;
    let p = processor();
    let m = |id: &str, text: &str, at: i64| mention(Platform::Mastodon, id, text, 0, at);
    let first = body(
        "masto",
        vec![
            by(
                "alice@example.test",
                Some(100),
                (3, 1, 2),
                m("a1", "hark is great", 10),
            ),
            by(
                "alice@example.test",
                Some(150),
                (1, 0, 0),
                m("a2", "hark again!", 20),
            ),
            by("bob@example.test", None, (0, 0, 4), m("b1", GERMAN, 30)),
            by(
                "carol@example.test",
                Some(9_000),
                (50, 0, 0),
                m("c1", "nothing to see", 40),
            ),
            by(
                "  ",
                Some(7_000),
                (0, 0, 0),
                m("x1", "hark without an author", 50),
            ),
        ],
    );
    let out = p.process_batch(store, &[&first]).await.unwrap();
    assert!(out.messages.iter().all(Result::is_ok));

    // Redelivered next to a new message: the duplicates add nothing, alice's new mention
    // (older, with fewer followers) adds to her sums only.
    let second = body(
        "masto",
        vec![by(
            "alice@example.test",
            Some(120),
            (0, 2, 0),
            m("a3", "hark hark", 5),
        )],
    );
    let out = p.process_batch(store, &[&first, &second]).await.unwrap();
    assert!(out.messages.iter().all(Result::is_ok));
    assert_eq!((out.report.stored, out.report.duplicates), (1, 5));

    assert_eq!(
        authors_of(store, "launch").await,
        [
            stats("alice@example.test", 3, 9, Some(150), 20),
            stats("bob@example.test", 1, 4, None, 30),
        ],
        "carol matched no campaign; a blank handle is nobody to score"
    );
    assert_eq!(
        authors_of(store, "german").await,
        [stats("bob@example.test", 1, 4, None, 30)]
    );
}

mod embedded {
    use super::*;

    #[tokio::test]
    async fn authors_count_each_stored_mention_once() {
        given_processed_mentions_then_each_stored_one_counts_once_for_its_author(
            &*hark_tests::embedded_backend(),
        )
        .await;
    }

    #[tokio::test]
    async fn processes_analyses_matches_stores_and_counts() {
        given_mentions_when_processed_then_analysed_matched_stored_and_counted(
            &*hark_tests::embedded_backend(),
        )
        .await;
    }

    #[tokio::test]
    async fn redelivery_counts_nothing_twice() {
        given_a_redelivered_batch_then_nothing_is_counted_twice(&*hark_tests::embedded_backend())
            .await;
    }

    #[tokio::test]
    async fn malformed_message_fails_alone() {
        given_a_malformed_message_then_only_it_fails_and_the_others_are_stored(
            &*hark_tests::embedded_backend(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_batches_sum_exactly() {
        given_concurrent_batches_then_aggregates_sum_exactly(hark_tests::embedded_backend()).await;
    }
}

mod aws {
    use super::*;

    #[tokio::test]
    async fn authors_count_each_stored_mention_once() {
        given_processed_mentions_then_each_stored_one_counts_once_for_its_author(
            &*hark_tests::aws_backend().await.store,
        )
        .await;
    }

    #[tokio::test]
    async fn processes_analyses_matches_stores_and_counts() {
        given_mentions_when_processed_then_analysed_matched_stored_and_counted(
            &*hark_tests::aws_backend().await.store,
        )
        .await;
    }

    #[tokio::test]
    async fn redelivery_counts_nothing_twice() {
        given_a_redelivered_batch_then_nothing_is_counted_twice(
            &*hark_tests::aws_backend().await.store,
        )
        .await;
    }

    #[tokio::test]
    async fn malformed_message_fails_alone() {
        given_a_malformed_message_then_only_it_fails_and_the_others_are_stored(
            &*hark_tests::aws_backend().await.store,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_batches_sum_exactly() {
        given_concurrent_batches_then_aggregates_sum_exactly(hark_tests::aws_backend().await.store)
            .await;
    }
}
