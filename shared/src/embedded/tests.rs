//! Behaviour of the SQLite backend beyond the shared contract suite (`tests/`): files,
//! schema, several connections on one file, the manual clock, edge cases of the ports.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::clock::ManualClock;
use crate::domain::{
    Author, Cursor, Delivery, DeliveryStatus, Engagement, Mention, MentionKey, Platform,
};
use crate::ports::{
    AggregateStore, ConfigStore, Counters, CreateOutcome, CursorStore, DeliveryStore, EntityKind,
    FireOutcome, Firing, HourBucket, MentionQuery, MentionStore, MessageQueue, PutOutcome,
    TriggerStore,
};

/// 2026-06-01T00:00:00Z.
const T0: i64 = 1_780_272_000;

fn at(seconds_after_t0: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds_after_t0).unwrap()
}

fn options(clock: Arc<ManualClock>) -> EmbeddedOptions {
    EmbeddedOptions {
        retention_days: 30,
        max_receive_count: 3,
        clock,
    }
}

fn manual_store() -> (EmbeddedStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at(0)));
    let store = EmbeddedStore::open_in_memory(options(clock.clone())).unwrap();
    (store, clock)
}

fn mention(platform: Platform, id: &str, created_at: Timestamp, campaigns: &[&str]) -> Mention {
    Mention {
        platform,
        native_id: id.to_owned(),
        url: format!("https://example.test/{id}"),
        author: Author {
            handle: "alice".to_owned(),
            ..Author::default()
        },
        text: format!("text of {id}"),
        created_at,
        lang: None,
        sentiment: None,
        engagement: Engagement::default(),
        campaigns: campaigns.iter().map(|c| c.to_string()).collect(),
        source_id: None,
    }
}

fn query(timeline: &str, from: Timestamp, to: Timestamp, limit: usize) -> MentionQuery {
    MentionQuery {
        timeline: timeline.to_owned(),
        from,
        to,
        limit,
    }
}

fn ids(items: &[Mention]) -> Vec<&str> {
    items.iter().map(|m| m.native_id.as_str()).collect()
}

fn body(s: &str) -> Vec<String> {
    vec![s.to_owned()]
}

// ---------------------------------------------------------------- files and schema

#[tokio::test]
async fn given_a_missing_directory_when_opened_then_it_and_the_database_file_are_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join(".hark");
    let (_, clock) = manual_store();
    EmbeddedStore::open(&dir, options(clock)).unwrap();
    assert!(dir.join(DB_FILE_NAME).is_file());
}

#[tokio::test]
async fn given_data_written_when_the_file_is_reopened_then_everything_is_still_there() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(0)));
    let m = mention(Platform::Mastodon, "1", at(5), &["launch"]);
    {
        let store = EmbeddedStore::open(tmp.path(), options(clock.clone())).unwrap();
        store.put_mention(&m).await.unwrap();
        store.save_cursor(&Cursor::new("src")).await.unwrap();
        store
            .put_document(EntityKind::Source, "src", &serde_json::json!({"id": "src"}))
            .await
            .unwrap();
        store
            .send_batch(QueueName::Poll, &body("kept"))
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(tmp.path(), options(clock)).unwrap();
    assert_eq!(store.get_mention(&m.key()).await.unwrap(), Some(m.clone()));
    let page = store
        .list_mentions(&query("launch", at(0), at(60), 10), None)
        .await
        .unwrap();
    assert_eq!(page.items, vec![m]);
    assert_eq!(store.get_cursor("src").await.unwrap().unwrap().version, 1);
    assert!(
        store
            .get_document(EntityKind::Source, "src")
            .await
            .unwrap()
            .is_some()
    );
    let got = store
        .receive(QueueName::Poll, 1, SignedDuration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got[0].body, "kept");
}

#[tokio::test]
async fn given_a_file_when_opened_then_it_uses_wal_and_records_the_schema_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, clock) = manual_store();
    let store = EmbeddedStore::open(tmp.path(), options(clock)).unwrap();
    store.with_conn(|conn| {
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    });
}

/// The schema objects of a database, for comparing two files' schemas.
fn schema_of(conn: &Connection) -> Vec<(String, String, Option<String>)> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn given_a_version_1_file_when_opened_then_it_is_upgraded_and_keeps_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(0)));
    let m = mention(Platform::Mastodon, "1", at(5), &["launch"]);
    let bucket = HourBucket::new("launch", Platform::Mastodon, at(5));
    let counters = Counters {
        mentions: 1,
        reach: 10,
        ..Counters::default()
    };
    {
        let store = EmbeddedStore::open(tmp.path(), options(clock.clone())).unwrap();
        store.put_mention(&m).await.unwrap();
        store.add_counters(&bucket, &counters).await.unwrap();
        store.save_cursor(&Cursor::new("src")).await.unwrap();
        store
            .send_batch(QueueName::Poll, &body("kept"))
            .await
            .unwrap();
    }
    // Take the file back to what version 1 wrote, and prove it is exactly that schema.
    {
        let conn = Connection::open(tmp.path().join(DB_FILE_NAME)).unwrap();
        conn.execute_batch(
            "DROP TABLE trigger_firings; DROP TABLE budgets; DROP TABLE bus_events;
             DROP TABLE budget_takers; PRAGMA user_version = 1;",
        )
        .unwrap();
        let reference = Connection::open_in_memory().unwrap();
        reference.execute_batch(schema::SCHEMA_V1).unwrap();
        assert_eq!(schema_of(&conn), schema_of(&reference));
    }

    let store = EmbeddedStore::open(tmp.path(), options(clock.clone())).unwrap();
    store.with_conn(|conn| {
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
    });
    assert_eq!(store.get_mention(&m.key()).await.unwrap(), Some(m.clone()));
    let page = store
        .list_mentions(&query("launch", at(0), at(60), 10), None)
        .await
        .unwrap();
    assert_eq!(page.items, vec![m]);
    assert_eq!(
        store
            .list_counters("launch", at(0), at(3600))
            .await
            .unwrap(),
        vec![(bucket, counters)]
    );
    assert_eq!(store.get_cursor("src").await.unwrap().unwrap().version, 1);
    let got = store
        .receive(QueueName::Poll, 1, SignedDuration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got[0].body, "kept");

    drop(store);

    // A fresh file ends with the same schema as the upgraded one.
    let fresh = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(fresh.path(), options(clock)).unwrap());
    let upgraded = Connection::open(tmp.path().join(DB_FILE_NAME)).unwrap();
    let created = Connection::open(fresh.path().join(DB_FILE_NAME)).unwrap();
    assert_eq!(schema_of(&upgraded), schema_of(&created));
}

#[test]
fn given_an_upgrade_that_fails_then_the_file_stays_at_its_old_version() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(DB_FILE_NAME);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema::SCHEMA_V1).unwrap();
        // Something already named like the new table's index, but a view: step 2's
        // `CREATE INDEX IF NOT EXISTS author_stats_rank` fails on the name clash.
        conn.execute_batch("CREATE VIEW author_stats_rank AS SELECT 1; PRAGMA user_version = 1;")
            .unwrap();
    }
    let (_, clock) = manual_store();
    let err = EmbeddedStore::open(tmp.path(), options(clock)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Backend {
                operation: "open",
                ..
            }
        ),
        "{err:?}"
    );
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(
        version, 1,
        "the failed step was rolled back with its version"
    );
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'author_stats'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "no half-made table is left behind");
}

#[tokio::test]
async fn given_a_file_from_a_newer_hark_when_opened_then_it_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(tmp.path().join(DB_FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", schema::SCHEMA_VERSION + 1)
            .unwrap();
    }
    let (_, clock) = manual_store();
    let err = EmbeddedStore::open(tmp.path(), options(clock)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Backend {
                operation: "open",
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("upgrade Hark"), "{source}");
}

#[test]
fn given_a_busy_or_locked_database_then_the_error_is_retryable() {
    let busy =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
    let err = Err::<(), _>(busy).op("x").unwrap_err();
    assert!(err.is_retryable());
    let locked = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_LOCKED),
        None,
    );
    assert!(is_retryable(&locked));
    let other = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
        None,
    );
    assert!(!is_retryable(&other));
}

// ---------------------------------------------------------------- two connections, one file

/// Two stores on one file behave like two processes: each has its own connection.
fn two_stores_on_one_file() -> (tempfile::TempDir, Arc<EmbeddedStore>, Arc<EmbeddedStore>) {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(0)));
    let a = EmbeddedStore::open(tmp.path(), options(clock.clone())).unwrap();
    let b = EmbeddedStore::open(tmp.path(), options(clock)).unwrap();
    (tmp, Arc::new(a), Arc::new(b))
}

#[tokio::test]
async fn given_two_connections_when_both_save_the_same_cursor_version_then_one_conflicts() {
    let (_tmp, a, b) = two_stores_on_one_file();
    a.save_cursor(&Cursor::new("src")).await.unwrap();
    let read_a = a.get_cursor("src").await.unwrap().unwrap();
    let read_b = b.get_cursor("src").await.unwrap().unwrap();
    assert_eq!(a.save_cursor(&read_a).await.unwrap().version, 2);
    let err = b.save_cursor(&read_b).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 1, .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_two_connections_racing_to_fire_a_rule_then_exactly_one_fires() {
    let (_tmp, a, b) = two_stores_on_one_file();
    let firing = Firing {
        campaign: "launch".into(),
        rule: "spike".into(),
        window_start: at(0),
        now: at(10),
        cooldown_until: at(100),
        event: "{}".into(),
    };
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let firing = firing.clone();
        tasks.push(tokio::spawn(async move {
            store.fire_once(&firing).await.unwrap()
        }));
    }
    let mut fired = 0;
    for t in tasks {
        if t.await.unwrap() == FireOutcome::Fired {
            fired += 1;
        }
    }
    assert_eq!(fired, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_two_connections_receiving_from_one_queue_then_no_message_is_taken_twice() {
    let (_tmp, a, b) = two_stores_on_one_file();
    for chunk in 0..5 {
        let bodies: Vec<String> = (0..10).map(|i| format!("{chunk}-{i}")).collect();
        a.send_batch(QueueName::Mentions, &bodies).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .receive(QueueName::Mentions, 10, SignedDuration::from_secs(60))
                .await
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.unwrap().into_iter().map(|m| m.body));
    }
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(total, 50);
    assert_eq!(seen.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_two_connections_adding_counters_then_the_sum_is_exact() {
    let (_tmp, a, b) = two_stores_on_one_file();
    let bucket = HourBucket::new("launch", Platform::Reddit, at(10));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let bucket = bucket.clone();
        tasks.push(tokio::spawn(async move {
            let delta = Counters {
                mentions: 1,
                compound_e4: -3,
                ..Counters::default()
            };
            store.add_counters(&bucket, &delta).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = b.list_counters("launch", at(0), at(3600)).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.mentions, 40);
    assert_eq!(rows[0].1.compound_e4, -120);
}

// ---------------------------------------------------------------- mentions

#[tokio::test]
async fn given_exactly_a_page_of_mentions_when_listed_then_there_is_no_next_token() {
    let (store, _) = manual_store();
    for i in 0..3 {
        let m = mention(Platform::Rss, &format!("m{i}"), at(i), &["c"]);
        store.put_mention(&m).await.unwrap();
    }
    let page = store
        .list_mentions(&query("c", at(0), at(60), 3), None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.next, None);
    let page = store
        .list_mentions(&query("c", at(0), at(60), 2), None)
        .await
        .unwrap();
    assert_eq!(ids(&page.items), ["m0", "m1"]);
    let next = page.next.unwrap();
    let page = store
        .list_mentions(&query("c", at(0), at(60), 2), Some(&next))
        .await
        .unwrap();
    assert_eq!(ids(&page.items), ["m2"]);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn given_equal_timestamps_when_listed_then_ties_are_ordered_by_platform_then_native_id() {
    let (store, _) = manual_store();
    let t = at(1);
    for (p, id) in [
        (Platform::Rss, "b"),
        (Platform::Bluesky, "z"),
        (Platform::Rss, "a"),
        (Platform::Mastodon, "m"),
    ] {
        store.put_mention(&mention(p, id, t, &["c"])).await.unwrap();
    }
    // One item per page: every boundary falls between equal timestamps.
    let mut token: Option<String> = None;
    let mut order = Vec::new();
    loop {
        let page = store
            .list_mentions(&query("c", at(0), at(60), 1), token.as_deref())
            .await
            .unwrap();
        order.extend(page.items.into_iter().map(|m| m.native_id));
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(order, ["z", "m", "a", "b"]);
}

#[tokio::test]
async fn given_sub_second_timestamps_when_listed_then_microseconds_order_and_bound_them() {
    let (store, _) = manual_store();
    let base = at(0);
    let later = base + SignedDuration::from_micros(1);
    let much_later = base + SignedDuration::from_millis(500);
    store
        .put_mention(&mention(Platform::X, "second", later, &["c"]))
        .await
        .unwrap();
    store
        .put_mention(&mention(Platform::X, "first", base, &["c"]))
        .await
        .unwrap();
    store
        .put_mention(&mention(Platform::X, "third", much_later, &["c"]))
        .await
        .unwrap();
    let page = store
        .list_mentions(&query("c", base, at(1), 10), None)
        .await
        .unwrap();
    assert_eq!(ids(&page.items), ["first", "second", "third"]);
    // `from` inclusive and `to` exclusive, also between microseconds.
    let page = store
        .list_mentions(&query("c", later, much_later, 10), None)
        .await
        .unwrap();
    assert_eq!(ids(&page.items), ["second"]);
    // A bound with nanoseconds excludes what lies before it.
    let page = store
        .list_mentions(
            &query("c", base + SignedDuration::from_nanos(1), at(1), 10),
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&page.items), ["second", "third"]);
    assert_eq!(
        store
            .get_mention(&MentionKey {
                platform: Platform::X,
                native_id: "third".into()
            })
            .await
            .unwrap()
            .unwrap()
            .created_at,
        much_later
    );
}

#[tokio::test]
async fn given_a_token_from_another_timeline_when_listing_then_it_is_an_invalid_page_token() {
    let (store, _) = manual_store();
    for i in 0..3 {
        let m = mention(Platform::Rss, &format!("m{i}"), at(i), &["a", "b"]);
        store.put_mention(&m).await.unwrap();
    }
    let page = store
        .list_mentions(&query("a", at(0), at(60), 1), None)
        .await
        .unwrap();
    let err = store
        .list_mentions(&query("b", at(0), at(60), 1), page.next.as_deref())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidPageToken), "{err:?}");
}

#[tokio::test]
async fn given_a_limit_out_of_range_when_listing_then_it_is_clamped_to_one_through_a_thousand() {
    let (store, _) = manual_store();
    for i in 0..3 {
        let m = mention(Platform::Rss, &format!("m{i}"), at(i), &[]);
        store.put_mention(&m).await.unwrap();
    }
    let page = store
        .list_mentions(&query(MentionQuery::UNMATCHED, at(0), at(60), 0), None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next.is_some());
    let page = store
        .list_mentions(
            &query(MentionQuery::UNMATCHED, at(0), at(60), usize::MAX),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn given_a_mention_listing_a_campaign_twice_when_stored_then_it_is_listed_once() {
    let (store, _) = manual_store();
    let m = mention(Platform::Rss, "dup", at(1), &["c", "c"]);
    assert_eq!(store.put_mention(&m).await.unwrap(), PutOutcome::Inserted);
    let page = store
        .list_mentions(&query("c", at(0), at(60), 10), None)
        .await
        .unwrap();
    assert_eq!(page.items, vec![m]);
}

#[tokio::test]
async fn given_expired_mentions_when_purged_then_they_leave_every_timeline() {
    let (store, _) = manual_store();
    let old = mention(Platform::Rss, "old", at(0), &["c"]);
    let new = mention(Platform::Rss, "new", at(86_400), &["c"]);
    store.put_mention(&old).await.unwrap();
    store.put_mention(&new).await.unwrap();
    let expiry = store.mention_expiry(&old.key()).await.unwrap().unwrap();
    assert_eq!(expiry, T0 + 30 * 86_400);

    let just_before = Timestamp::from_second(expiry - 1).unwrap();
    assert_eq!(store.purge_expired_mentions(just_before).unwrap(), 0);
    let purged = store.purge_expired_mentions(Timestamp::from_second(expiry).unwrap());
    assert_eq!(purged.unwrap(), 1);
    assert!(store.get_mention(&old.key()).await.unwrap().is_none());
    let page = store
        .list_mentions(&query("c", at(0), at(2 * 86_400), 10), None)
        .await
        .unwrap();
    assert_eq!(page.items, vec![new.clone()]);
    // Once purged, the same mention can be stored again.
    assert_eq!(store.put_mention(&old).await.unwrap(), PutOutcome::Inserted);
}

#[tokio::test]
async fn given_an_unreadable_stored_row_when_read_then_it_is_reported_corrupt() {
    let (store, _) = manual_store();
    let m = mention(Platform::Rss, "bad", at(1), &["c"]);
    store.put_mention(&m).await.unwrap();
    store.with_conn(|conn| {
        conn.execute("UPDATE mentions SET doc = '{\"not\": \"a mention\"}'", [])
            .unwrap();
    });
    let err = store.get_mention(&m.key()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { entity: "mention", id, .. } if id == "rss:bad"),
        "{err:?}"
    );
    let err = store
        .list_mentions(&query("c", at(0), at(60), 10), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

// ---------------------------------------------------------------- aggregates, documents

#[tokio::test]
async fn given_bounds_inside_an_hour_when_listing_counters_then_only_whole_hour_starts_count() {
    let (store, _) = manual_store();
    for hour in [0, 3600, 7200] {
        store
            .add_counters(
                &HourBucket::new("c", Platform::Rss, at(hour)),
                &Counters {
                    mentions: 1,
                    ..Counters::default()
                },
            )
            .await
            .unwrap();
    }
    let half = SignedDuration::from_millis(500);
    let rows = store
        .list_counters("c", at(0) + half, at(7200) + half)
        .await
        .unwrap();
    let hours: Vec<_> = rows.iter().map(|(b, _)| b.hour).collect();
    assert_eq!(hours, [at(3600), at(7200)]);
}

#[tokio::test]
async fn given_a_stored_document_when_put_again_then_it_is_replaced() {
    let (store, _) = manual_store();
    let kind = EntityKind::Channel;
    store
        .put_document(kind, "x", &serde_json::json!({"id": "x", "v": 1}))
        .await
        .unwrap();
    store
        .put_document(kind, "x", &serde_json::json!({"id": "x", "v": 2}))
        .await
        .unwrap();
    assert_eq!(
        store.get_document(kind, "x").await.unwrap().unwrap()["v"],
        2
    );
    assert_eq!(store.list_documents(kind).await.unwrap().len(), 1);
    assert!(
        store
            .list_documents(EntityKind::Post)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------- deliveries

#[tokio::test]
async fn given_a_delivery_created_with_any_version_then_it_is_stored_as_version_one() {
    let (store, _) = manual_store();
    let mut d = Delivery::new("p", "ch", at(10), at(0));
    d.version = 7;
    assert_eq!(
        store.create_delivery(&d).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn given_a_delivery_that_left_queued_when_due_is_listed_then_it_is_not_due_anymore() {
    let (store, _) = manual_store();
    let d = Delivery::new("p", "ch", at(10), at(0));
    store.create_delivery(&d).await.unwrap();
    let mut current = store.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(store.list_due(at(10), 10).await.unwrap().len(), 1);
    current
        .claim("w", SignedDuration::from_secs(60), at(10))
        .unwrap();
    let claimed = store.update_delivery(&current).await.unwrap();
    assert_eq!(claimed.status(), DeliveryStatus::Claimed);
    assert!(store.list_due(at(100), 10).await.unwrap().is_empty());
    assert!(store.list_due(at(100), 0).await.unwrap().is_empty());
    // Retry later: back to QUEUED with a new due time, listed again from then on.
    let mut requeued = claimed.clone();
    requeued.state = crate::domain::DeliveryState::Queued;
    requeued.due_at = at(500);
    store.update_delivery(&requeued).await.unwrap();
    assert!(store.list_due(at(499), 10).await.unwrap().is_empty());
    let due = store.list_due(at(500), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].version, 3);
}

// ---------------------------------------------------------------- triggers

#[tokio::test]
async fn given_two_rules_of_a_campaign_then_each_fires_on_its_own() {
    let (store, _) = manual_store();
    for rule in ["a", "b"] {
        let firing = Firing {
            campaign: "c".into(),
            rule: rule.into(),
            window_start: at(0),
            now: at(1),
            cooldown_until: at(2),
            event: format!("{{\"rule\":\"{rule}\"}}"),
        };
        assert_eq!(store.fire_once(&firing).await.unwrap(), FireOutcome::Fired);
    }
    let state = store.trigger_state("c", "b").await.unwrap().unwrap();
    assert_eq!(state.fired_count, 1);
    assert_eq!(state.fired_at, at(1));
}

// ---------------------------------------------------------------- queue (manual clock)

#[tokio::test]
async fn given_a_received_message_when_the_clock_passes_its_visibility_then_it_is_visible() {
    let (store, clock) = manual_store();
    store.send_batch(QueueName::Poll, &body("m")).await.unwrap();
    let v = SignedDuration::from_secs(30);
    assert_eq!(store.receive(QueueName::Poll, 1, v).await.unwrap().len(), 1);
    clock.advance(SignedDuration::from_millis(29_999));
    assert!(
        store
            .receive(QueueName::Poll, 1, v)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(SignedDuration::from_millis(1));
    let again = store.receive(QueueName::Poll, 1, v).await.unwrap();
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn given_a_message_received_again_then_the_earlier_receipt_is_stale() {
    let (store, _) = manual_store();
    store.send_batch(QueueName::Poll, &body("m")).await.unwrap();
    let first = store
        .receive(QueueName::Poll, 1, SignedDuration::ZERO)
        .await
        .unwrap();
    let second = store
        .receive(QueueName::Poll, 1, SignedDuration::ZERO)
        .await
        .unwrap();
    assert_ne!(first[0].receipt, second[0].receipt);
    assert_eq!(first[0].message_id, second[0].message_id);
    let err = store
        .delete(QueueName::Poll, &first[0].receipt)
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidReceipt));
    // A receipt only works on its own queue.
    let err = store
        .delete(QueueName::Publish, &second[0].receipt)
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidReceipt));
    store
        .delete(QueueName::Poll, &second[0].receipt)
        .await
        .unwrap();
    let err = store
        .change_visibility(QueueName::Poll, "made-up", SignedDuration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidReceipt));
}

#[tokio::test]
async fn given_a_change_visibility_beyond_twelve_hours_then_it_is_rejected() {
    let (store, _) = manual_store();
    store.send_batch(QueueName::Poll, &body("m")).await.unwrap();
    let got = store
        .receive(QueueName::Poll, 1, SignedDuration::from_secs(5))
        .await
        .unwrap();
    let err = store
        .change_visibility(
            QueueName::Poll,
            &got[0].receipt,
            SignedDuration::from_secs(43_201),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidVisibility { .. }));
}

#[tokio::test]
async fn given_poison_messages_ahead_when_receiving_then_the_batch_is_filled_from_later_ones() {
    let (store, _) = manual_store();
    store
        .send_batch(QueueName::Mentions, &body("poison"))
        .await
        .unwrap();
    for _ in 0..3 {
        store
            .receive(QueueName::Mentions, 1, SignedDuration::ZERO)
            .await
            .unwrap();
    }
    store
        .send_batch(QueueName::Mentions, &["a".to_owned(), "b".to_owned()])
        .await
        .unwrap();
    let got = store
        .receive(QueueName::Mentions, 2, SignedDuration::from_secs(30))
        .await
        .unwrap();
    let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["a", "b"]);
    let dead = store
        .receive(QueueName::MentionsDlq, 10, SignedDuration::ZERO)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].receive_count, 1, "the count restarts in the DLQ");
}

#[tokio::test]
async fn given_a_dead_letter_queue_then_its_messages_are_never_moved_on() {
    let (store, _) = manual_store();
    store
        .send_batch(QueueName::PollDlq, &body("dead"))
        .await
        .unwrap();
    for n in 1..=5 {
        let got = store
            .receive(QueueName::PollDlq, 1, SignedDuration::ZERO)
            .await
            .unwrap();
        assert_eq!(got[0].receive_count, n);
    }
}

#[tokio::test]
async fn given_a_batch_then_messages_are_received_in_send_order_with_distinct_ids() {
    let (store, _) = manual_store();
    let bodies: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    store.send_batch(QueueName::Events, &bodies).await.unwrap();
    let got = store
        .receive(QueueName::Events, 10, SignedDuration::from_secs(30))
        .await
        .unwrap();
    let received: Vec<_> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(received, bodies);
    let mut ids: Vec<_> = got.iter().map(|m| m.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
}

#[test]
fn given_timestamps_with_nanoseconds_then_rounding_helpers_round_the_right_way() {
    let t = Timestamp::new(5, 1).unwrap();
    assert_eq!(floor_micros(t), 5_000_000);
    assert_eq!(ceil_micros(t), 5_000_001);
    assert_eq!(ceil_seconds(t), 6);
    let whole = Timestamp::from_second(5).unwrap();
    assert_eq!(ceil_micros(whole), 5_000_000);
    assert_eq!(ceil_seconds(whole), 5);
    let negative = Timestamp::new(-5, -1).unwrap();
    assert_eq!(floor_micros(negative), -5_000_001);
    assert_eq!(ceil_micros(negative), -5_000_000);
    assert_eq!(ceil_seconds(negative), -5);
}
