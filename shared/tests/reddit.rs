//! Reddit: the search listener and the submit publisher, run against the reusable stateful
//! fake (`tests/src/fakes/reddit.rs`, included here so the client tests and the end-to-end
//! tests share one specification) and wiremock for single answers, plus property tests on
//! the parsers.

#[allow(unused)]
#[path = "listening/support.rs"]
mod listen_support;
#[allow(dead_code)]
#[path = "publishing/support.rs"]
mod publish_support;

#[allow(dead_code)]
#[path = "../../tests/src/fakes/reddit.rs"]
mod fake;
#[allow(dead_code)]
#[path = "../../tests/src/fakes/faults.rs"]
mod faults;

use std::sync::Arc;
use std::time::Duration;

use fake::{FakeReddit, REDDIT_CREDENTIALS, REDDIT_USER_TOKEN, REDDIT_USERNAME};
use faults::Fault;
use hark_shared::clock::ManualClock;
use hark_shared::domain::{Cursor, Platform, Secret, Source};
use hark_shared::platforms::reddit::{
    DEFAULT_USER_AGENT, RedditListener, RedditPosition, RedditPublisher, interpret_submit,
    parse_listing, parse_try_again,
};
use hark_shared::platforms::{Listened, Listener, Lookup, PlatformError, Publisher};
use jiff::{SignedDuration, Timestamp};
use listen_support::{header, http, limits, now, query_value, requests_to, source};
use proptest::prelude::*;
use publish_support::{assert_no_secret, fixture, impatient_http, post, post_with_link};
use reqwest::header::HeaderMap;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

// ------------------------------------------------------------------------------ helpers

/// Base-36 ids that grow with `n`, like Reddit's counters.
fn id(n: u64) -> String {
    format!("1hz{n:05}")
}

/// Seeds `range` posts mentioning "hark", one minute apart; returns their fullnames.
fn seed(fake: &FakeReddit, range: std::ops::Range<u64>) -> Vec<String> {
    range
        .map(|n| {
            let at = Timestamp::from_second(1_768_000_000 + n as i64 * 60).unwrap();
            fake.post(&id(n), &format!("hark post {n}"), at)
        })
        .collect()
}

fn reddit_source(base: &str, fields: serde_json::Value) -> Source {
    let mut doc = json!({ "base_url": base, "query": "hark", "credentials": "env:REDDIT" });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), fields.as_object()) {
        doc.extend(extra.clone());
    }
    source("reddit-hark", Platform::Reddit, doc)
}

fn cursor_at(position: Option<&str>) -> Cursor {
    let mut cursor = Cursor::new("reddit-hark");
    cursor.position = position.map(str::to_owned);
    cursor.version = 3;
    cursor
}

fn listener() -> RedditListener {
    RedditListener::new(http(), Secret::new(REDDIT_CREDENTIALS))
}

fn ids(listened: &Listened) -> Vec<String> {
    listened
        .mentions
        .iter()
        .map(|m| m.native_id.clone())
        .collect()
}

const SEARCH: &str = "/search";

// ---------------------------------------------------------------------------- listening

#[tokio::test]
async fn given_a_source_never_polled_when_listening_then_one_page_of_the_newest_is_taken_oldest_first()
 {
    let fake = FakeReddit::start().await;
    let names = seed(&fake, 0..150);

    let listened = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({ "query": "hark OR #harkapp" })),
            &cursor_at(None),
            limits(now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(ids(&listened), names[50..].to_vec());
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some(names[149].as_str())
    );
    assert_eq!(listened.cursor.version, 3);
    assert!(listened.caught_up);
    let requests = requests_to(&fake.server, SEARCH).await;
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(query_value(r, "q").as_deref(), Some("hark OR harkapp"));
    assert_eq!(query_value(r, "sort").as_deref(), Some("new"));
    assert_eq!(query_value(r, "limit").as_deref(), Some("100"));
    assert_eq!(query_value(r, "raw_json").as_deref(), Some("1"));
    assert_eq!(query_value(r, "after"), None);
    assert_eq!(header(r, "user-agent").as_deref(), Some(DEFAULT_USER_AGENT));
    assert!(DEFAULT_USER_AGENT.starts_with("server:") && DEFAULT_USER_AGENT.contains("(by /u/"));
    assert_eq!(
        header(r, "authorization").as_deref(),
        Some("Bearer app-token-1")
    );
    let rl = listened.rate_limit.expect("X-Ratelimit-* read");
    assert_eq!((rl.limit, rl.remaining), (Some(100), Some(99)));
    assert_eq!(rl.wait_from(now()), Some(SignedDuration::from_secs(412)));
}

#[tokio::test]
async fn given_a_cursor_when_listening_then_paging_stops_at_the_already_seen_fullname() {
    let fake = FakeReddit::start().await;
    let names = seed(&fake, 0..150);

    let listened = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(Some(&names[139])),
            limits(now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(ids(&listened), names[140..].to_vec());
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some(names[149].as_str())
    );
    assert_eq!(
        requests_to(&fake.server, SEARCH).await.len(),
        1,
        "the seen post was on the first page"
    );
}

#[tokio::test]
async fn given_240_new_posts_when_listening_then_after_paging_reaches_the_seen_one_without_gaps() {
    let fake = FakeReddit::start().await;
    let names = seed(&fake, 0..250);

    let listened = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(Some(&names[9])),
            limits(now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(
        ids(&listened),
        names[10..].to_vec(),
        "every new post once, oldest first"
    );
    assert!(listened.caught_up);
    let afters: Vec<Option<String>> = requests_to(&fake.server, SEARCH)
        .await
        .iter()
        .map(|r| query_value(r, "after"))
        .collect();
    assert_eq!(
        afters,
        vec![None, Some(names[150].clone()), Some(names[50].clone())]
    );
}

#[tokio::test]
async fn given_a_deleted_anchor_when_listening_then_an_older_id_still_stops_the_walk() {
    let fake = FakeReddit::start().await;
    let names = seed(&fake, 0..30);
    // The stored fullname (between posts 9 and 10 in base-36 order) no longer exists.
    let vanished = "t3_1hz0000z".to_owned();
    assert!(id(9).as_str() < "1hz0000z" && "1hz0000z" < id(10).as_str());

    let listened = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(Some(&vanished)),
            limits(now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(ids(&listened), names[10..].to_vec());
}

#[tokio::test]
async fn given_more_new_posts_than_the_page_cap_when_listening_then_the_gap_is_kept_and_finished_next_poll()
 {
    let fake = FakeReddit::start().await;
    let old = seed(&fake, 0..1);
    let new = seed(&fake, 1..251);

    let first = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(Some(&old[0])),
            limits(now(), 2),
        )
        .await
        .unwrap();
    assert!(!first.caught_up);
    assert_eq!(ids(&first), new[50..].to_vec(), "the newest 200");
    let position = RedditPosition::read(first.cursor.position.as_deref());
    assert_eq!(position.newest.as_deref(), Some(new[249].as_str()));
    let gap = position.gap.expect("the unread middle is remembered");
    assert_eq!(gap.floor, old[0]);

    let newer = seed(&fake, 251..256);
    let second = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &first.cursor,
            limits(now(), 5),
        )
        .await
        .unwrap();
    assert!(second.caught_up);
    let mut expected = new[..50].to_vec();
    expected.extend(newer.iter().cloned());
    assert_eq!(
        ids(&second),
        expected,
        "the gap, then what is new, oldest first"
    );
    assert_eq!(second.cursor.position.as_deref(), Some(newer[4].as_str()));
}

#[tokio::test]
async fn given_a_subreddit_account_when_listening_then_the_subreddit_search_is_restricted() {
    let fake = FakeReddit::start().await;
    let at = Timestamp::from_second(1_768_000_000).unwrap();
    fake.post_in("rust", "1hz1", "hark in rust", "", at);
    let elsewhere = fake.post_in("golang", "1hz2", "hark in go", "", at);

    let listened = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({ "account": "r/rust" })),
            &cursor_at(None),
            limits(now(), 1),
        )
        .await
        .unwrap();

    assert_eq!(ids(&listened), vec!["t3_1hz1"]);
    assert!(!ids(&listened).contains(&elsewhere));
    let r = &requests_to(&fake.server, "/r/rust/search").await[0];
    assert_eq!(query_value(r, "restrict_sr").as_deref(), Some("true"));
}

#[tokio::test]
async fn given_a_subreddit_that_is_not_a_name_when_listening_then_permanent_and_no_request() {
    let fake = FakeReddit::start().await;
    let err = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({ "account": "rust/../admin" })),
            &cursor_at(None),
            limits(now(), 1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::Permanent { status: None, .. }),
        "{err}"
    );
    assert!(fake.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn given_many_polls_when_listening_then_one_app_token_serves_them_all() {
    let fake = FakeReddit::start().await;
    seed(&fake, 0..3);
    let reddit = listener();
    let mut cursor = cursor_at(None);
    for _ in 0..5 {
        cursor = reddit
            .listen(
                &reddit_source(&fake.uri(), json!({})),
                &cursor,
                limits(now(), 1),
            )
            .await
            .unwrap()
            .cursor;
    }
    assert_eq!(fake.tokens_issued(), 1);
}

#[tokio::test]
async fn given_a_revoked_app_token_when_listening_then_it_is_renewed_once_and_the_poll_succeeds() {
    let fake = FakeReddit::start().await;
    let names = seed(&fake, 0..3);
    let reddit = listener();
    reddit
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(None),
            limits(now(), 1),
        )
        .await
        .unwrap();

    fake.expire_app_tokens(); // the API now answers 401 to the cached token
    let more = seed(&fake, 3..5);
    let listened = reddit
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(Some(&names[2])),
            limits(now(), 1),
        )
        .await
        .unwrap();

    assert_eq!(ids(&listened), more);
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test]
async fn given_a_token_past_its_expires_in_when_listening_then_a_new_one_is_fetched_first() {
    let fake = FakeReddit::start().await;
    seed(&fake, 0..2);
    fake.set_token_lifetime(3600);
    let reddit = listener();
    let src = reddit_source(&fake.uri(), json!({}));
    reddit
        .listen(&src, &cursor_at(None), limits(now(), 1))
        .await
        .unwrap();
    reddit
        .listen(
            &src,
            &cursor_at(None),
            limits(now() + SignedDuration::from_mins(30), 1),
        )
        .await
        .unwrap();
    assert_eq!(fake.tokens_issued(), 1, "still valid after 30 minutes");

    reddit
        .listen(
            &src,
            &cursor_at(None),
            limits(now() + SignedDuration::from_mins(60), 1),
        )
        .await
        .unwrap();
    assert_eq!(fake.tokens_issued(), 2, "renewed before the hour is up");
    assert_eq!(
        fake.calls(SEARCH),
        3,
        "no search was sent with a stale token"
    );
}

#[tokio::test]
async fn given_wrong_app_credentials_when_listening_then_auth_expired_without_the_secret() {
    let fake = FakeReddit::start().await;
    let secret = "hArKcl1ent1d:wrong-secret-xyz";
    let err = RedditListener::new(http(), Secret::new(secret))
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(None),
            limits(now(), 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(err.to_string().contains("Unauthorized"), "{err}");
    assert_no_secret(&err, "wrong-secret-xyz");
    assert_eq!(fake.calls(SEARCH), 0);

    let err = RedditListener::new(http(), Secret::new("no-colon"))
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(None),
            limits(now(), 1),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("client_id:client_secret"), "{err}");
    assert_no_secret(&err, "no-colon");
}

#[tokio::test]
async fn given_a_token_that_stays_refused_when_listening_then_auth_expired_after_one_renewal() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/access_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("reddit/token.json"), "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(path(SEARCH))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Unauthorized", "error": 401})),
        )
        .mount(&server)
        .await;

    let err = listener()
        .listen(
            &reddit_source(&server.uri(), json!({})),
            &cursor_at(Some("t3_1")),
            limits(now(), 1),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_eq!(requests_to(&server, "/api/v1/access_token").await.len(), 2);
    assert_eq!(requests_to(&server, SEARCH).await.len(), 2);
    assert_no_secret(&err, "eyJhbGciOiJSUzI1NiIs");
}

#[tokio::test]
async fn given_a_429_when_listening_then_retryable_until_the_reset_seconds() {
    let fake = FakeReddit::start().await;
    seed(&fake, 0..3);
    fake.rate_limit_search(SignedDuration::from_secs(90));
    let clock_now = Timestamp::now();

    let err = listener()
        .listen(
            &reddit_source(&fake.uri(), json!({})),
            &cursor_at(Some("t3_1hz00000")),
            limits(clock_now, 1),
        )
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err}");
    let wait = err.retry_after().expect("a wait").as_secs();
    assert!((85..=90).contains(&wait), "{wait}");
}

async fn answering_search(status: u16, body: Vec<u8>, content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/access_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("reddit/token.json"), "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, content_type))
        .mount(&server)
        .await;
    server
}

async fn search_error(server: &MockServer) -> PlatformError {
    listener()
        .listen(
            &reddit_source(&server.uri(), json!({})),
            &cursor_at(Some("t3_1")),
            limits(now(), 1),
        )
        .await
        .unwrap_err()
}

#[tokio::test]
async fn given_an_html_429_without_headers_when_listening_then_retryable_with_the_pages_words() {
    let server = answering_search(429, fixture("reddit/error_429.html"), "text/html").await;
    let err = search_error(&server).await;
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("whoa there"), "{err}");
    assert!(!err.to_string().contains('<'), "{err}");
}

#[tokio::test]
async fn given_server_errors_when_listening_then_retryable() {
    for status in [500, 502, 503] {
        let server = answering_search(status, b"<html>upstream</html>".to_vec(), "text/html").await;
        assert!(search_error(&server).await.is_retryable());
    }
}

#[tokio::test]
async fn given_a_private_subreddit_when_listening_then_permanent_with_reddits_words() {
    let server = answering_search(
        403,
        fixture("reddit/error_forbidden.json"),
        "application/json",
    )
    .await;
    match search_error(&server).await {
        PlatformError::Permanent {
            status: Some(403),
            message,
            ..
        } => {
            assert_eq!(message, "Forbidden: private")
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn given_malformed_listings_when_listening_then_malformed_and_nothing_is_used() {
    for body in [
        fixture("reddit/search_truncated.json"),
        fixture("reddit/search_missing_fields.json"),
        b"[]".to_vec(),
    ] {
        let server = answering_search(200, body, "application/json").await;
        let err = search_error(&server).await;
        assert_eq!(err.kind(), "malformed", "{err}");
    }
}

#[tokio::test]
async fn given_the_documented_listing_when_listening_then_mentions_are_complete_and_raw() {
    let server = answering_search(200, fixture("reddit/search.json"), "application/json").await;

    let listened = listener()
        .listen(
            &reddit_source(&server.uri(), json!({})),
            &cursor_at(Some("t3_1hz9ab0")),
            limits(now(), 3),
        )
        .await
        .unwrap();

    assert_eq!(
        ids(&listened),
        vec!["t3_1hz9abc", "t3_1hz9abd"],
        "t5 skipped, oldest first"
    );
    let m = &listened.mentions[0];
    assert_eq!(m.platform, Platform::Reddit);
    assert_eq!(
        m.url,
        "https://www.reddit.com/r/rust/comments/1hz9abc/serverless_social_scheduler_in_rust/"
    );
    assert_eq!(
        m.text,
        "Serverless social scheduler in Rust?\n\nHas anyone built one?"
    );
    assert_eq!(m.author.handle, "ferris_fan");
    assert_eq!(m.author.followers, None);
    assert_eq!(
        m.author.url.as_deref(),
        Some("https://www.reddit.com/user/ferris_fan")
    );
    assert_eq!(m.created_at, Timestamp::from_second(1_768_046_400).unwrap());
    assert_eq!((m.engagement.likes, m.engagement.replies), (12, 3));
    assert_eq!(m.source_id.as_deref(), Some("reddit-hark"));
    assert!(m.lang.is_none() && m.sentiment.is_none() && m.campaigns.is_empty());
    let link = &listened.mentions[1];
    assert_eq!(link.text, "Links & \"quotes\" stay raw");
    assert_eq!(link.author.url, None, "deleted authors have no page");
    assert_eq!(link.engagement.likes, 0, "negative scores clamp");
    assert_eq!(listened.cursor.position.as_deref(), Some("t3_1hz9abd"));
}

// --------------------------------------------------------------------------- publishing

fn publisher(fake: &FakeReddit) -> RedditPublisher {
    RedditPublisher::new(
        http(),
        "r/rust",
        Secret::new(REDDIT_USER_TOKEN),
        Arc::new(ManualClock::new(now())),
    )
    .with_base_url(fake.uri())
}

async fn fake_at_now() -> FakeReddit {
    FakeReddit::start_with_clock(Arc::new(ManualClock::new(now()))).await
}

#[tokio::test]
async fn given_a_multi_line_text_when_publishing_then_a_self_post_with_title_and_body_is_created() {
    let fake = fake_at_now().await;

    let published = publisher(&fake)
        .publish(&post("Hark 1.0 is out!\n\nWe rewrote the poller."), "d-1")
        .await
        .unwrap();

    let created = fake.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].subreddit, "rust");
    assert_eq!(created[0].kind, "self");
    assert_eq!(created[0].title, "Hark 1.0 is out!");
    assert_eq!(created[0].text, "We rewrote the poller.");
    assert_eq!(published.platform_id, created[0].name);
    assert!(
        published
            .url
            .unwrap()
            .starts_with("https://www.reddit.com/r/rust/comments/")
    );
    let r = &requests_to(&fake.server, "/api/submit").await[0];
    let form = String::from_utf8_lossy(&r.body).to_string();
    assert!(form.contains("api_type=json"), "{form}");
    assert_eq!(header(r, "user-agent").as_deref(), Some(DEFAULT_USER_AGENT));
}

#[tokio::test]
async fn given_a_link_and_one_line_when_publishing_then_a_link_post_is_created() {
    let fake = fake_at_now().await;

    publisher(&fake)
        .publish(
            &post_with_link("Hark 1.0 is out", "https://example.com/hark"),
            "d-1",
        )
        .await
        .unwrap();

    let created = &fake.created()[0];
    assert_eq!(created.kind, "link");
    assert_eq!(created.title, "Hark 1.0 is out");
    assert_eq!(created.url.as_deref(), Some("https://example.com/hark"));
}

#[tokio::test]
async fn given_the_per_user_throttle_when_publishing_then_the_200_with_errors_is_retryable_with_its_wait()
 {
    let fake = fake_at_now().await;
    fake.inject(
        "Launch day",
        Fault::RateLimited {
            reset_in: SignedDuration::from_secs(300),
        },
    );

    let err = publisher(&fake)
        .publish(&post("Launch day"), "d-1")
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(300)));
    assert!(
        err.to_string()
            .contains("RATELIMIT: you are doing that too much"),
        "{err}"
    );
    assert!(fake.created().is_empty());
    // The next attempt goes through.
    publisher(&fake)
        .publish(&post("Launch day"), "d-1")
        .await
        .unwrap();
    assert_eq!(fake.created().len(), 1);
}

#[tokio::test]
async fn given_submit_errors_in_a_200_body_when_publishing_then_classified_by_their_code() {
    type Check = fn(&PlatformError) -> bool;
    let cases: [(&str, Check); 3] = [
        ("reddit/submit_ratelimit.json", |e| {
            e.retry_after() == Some(SignedDuration::from_secs_f64(512.2))
        }),
        ("reddit/submit_ratelimit_no_seconds.json", |e| {
            e.retry_after() == Some(SignedDuration::from_secs(300))
        }),
        ("reddit/submit_subreddit_noexist.json", |e| {
            e.to_string()
                == "reddit rejected the request (HTTP 200): SUBREDDIT_NOEXIST: that subreddit doesn't exist (sr)"
        }),
    ];
    for (fixture_path, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/submit"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(fixture(fixture_path), "application/json"),
            )
            .mount(&server)
            .await;
        let err = RedditPublisher::new(
            http(),
            "rust",
            Secret::new("t"),
            Arc::new(ManualClock::new(now())),
        )
        .with_base_url(server.uri())
        .publish(&post("hello"), "d")
        .await
        .unwrap_err();
        assert!(expected(&err), "{fixture_path}: {err}");
    }
}

#[tokio::test]
async fn given_a_title_over_300_characters_when_publishing_then_refused_before_any_request() {
    let fake = fake_at_now().await;

    let err = publisher(&fake)
        .publish(&post(&"ü".repeat(301)), "d-1")
        .await
        .unwrap_err();

    assert!(
        matches!(err, PlatformError::Permanent { status: None, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("300"), "{err}");
    assert_eq!(fake.calls("/api/submit"), 0);
}

#[tokio::test]
async fn given_a_lost_response_when_publishing_then_ambiguous_and_find_published_finds_the_post() {
    let fake = fake_at_now().await;
    fake.inject("Lost in transit", Fault::LoseResponse);
    let impatient = RedditPublisher::new(
        impatient_http(),
        "rust",
        Secret::new(REDDIT_USER_TOKEN),
        Arc::new(ManualClock::new(now())),
    )
    .with_base_url(fake.uri());

    let err = impatient
        .publish(&post("Lost in transit\nbody text"), "d-1")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    assert_no_secret(&err, REDDIT_USER_TOKEN);

    let found = publisher(&fake)
        .find_published(
            &post("Lost in transit\nbody text"),
            now() - SignedDuration::from_mins(5),
        )
        .await
        .unwrap();
    let created = &fake.created()[0];
    assert_eq!(
        found,
        Lookup::Found(hark_shared::platforms::Published {
            platform_id: created.name.clone(),
            url: Some(format!(
                "https://www.reddit.com/r/rust/comments/{}/post/",
                created.name.trim_start_matches("t3_")
            )),
        })
    );
    let me = requests_to(&fake.server, "/api/v1/me").await;
    assert_eq!(me.len(), 1);
    assert!(fake.calls(&format!("/user/{REDDIT_USERNAME}/submitted")) >= 1);
}

#[tokio::test]
async fn given_many_posts_since_the_attempt_when_looking_then_pages_are_followed_and_the_text_must_match_exactly()
 {
    let fake = fake_at_now().await;
    let reddit = publisher(&fake);
    reddit
        .publish(&post("The one\nwith a body"), "d-0")
        .await
        .unwrap();
    for n in 0..120 {
        reddit
            .publish(&post(&format!("Filler {n}")), &format!("f-{n}"))
            .await
            .unwrap();
    }
    let since = now() - SignedDuration::from_mins(1);

    let found = reddit
        .find_published(&post("The one\nwith a body"), since)
        .await
        .unwrap();
    assert!(
        matches!(found, Lookup::Found(ref p) if p.platform_id == fake.created()[0].name),
        "{found:?}"
    );
    assert_eq!(fake.calls(&format!("/user/{REDDIT_USERNAME}/submitted")), 2);

    let missing = reddit
        .find_published(&post("The one\nwith another body"), since)
        .await
        .unwrap();
    assert_eq!(missing, Lookup::NotFound);
    assert_eq!(fake.calls("/api/v1/me"), 1, "the user name is cached");
}

#[tokio::test]
async fn given_a_revoked_user_token_when_publishing_then_auth_expired_and_nothing_created() {
    let fake = fake_at_now().await;
    fake.revoke_user_token();
    let err = publisher(&fake)
        .publish(&post("hello"), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_no_secret(&err, REDDIT_USER_TOKEN);
    assert!(fake.created().is_empty());
}

#[tokio::test]
async fn given_a_server_error_before_creating_when_publishing_then_retryable_and_nothing_created() {
    let fake = fake_at_now().await;
    fake.inject("hello", Fault::ServerError);
    let err = publisher(&fake)
        .publish(&post("hello"), "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(fake.created().is_empty());
}

#[tokio::test]
async fn given_nothing_listening_when_publishing_then_retryable_not_ambiguous() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedditPublisher::new(
        http(),
        "rust",
        Secret::new("t"),
        Arc::new(ManualClock::new(now())),
    )
    .with_base_url(format!("http://127.0.0.1:{port}"))
    .publish(&post("hello"), "d")
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn given_an_unreadable_200_when_publishing_then_ambiguous() {
    let server = MockServer::start().await;
    Mock::given(path("/api/submit"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("<html>ok?</html>", "text/html")
                .set_delay(Duration::from_millis(1)),
        )
        .mount(&server)
        .await;
    let err = RedditPublisher::new(
        http(),
        "rust",
        Secret::new("t"),
        Arc::new(ManualClock::new(now())),
    )
    .with_base_url(server.uri())
    .publish(&post("hello"), "d")
    .await
    .unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
}

// ------------------------------------------------------------------------------ parsers

fn statuses() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(401),
        Just(403),
        Just(429),
        Just(500),
        100u16..600
    ]
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let fixtures = vec![
        fixture("reddit/search.json"),
        fixture("reddit/submit_ok.json"),
        fixture("reddit/submit_ratelimit.json"),
        fixture("reddit/submit_subreddit_noexist.json"),
        fixture("reddit/error_forbidden.json"),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (
            proptest::sample::select(fixtures),
            any::<prop::sample::Index>()
        )
            .prop_map(|(body, cut)| body[..cut.index(body.len() + 1)].to_vec()),
    ]
}

proptest! {
    #[test]
    fn listing_parser_never_panics(body in bodies()) {
        let _ = parse_listing(&body);
    }

    #[test]
    fn submit_interpretation_never_panics_and_errors_stay_errors(status in statuses(), body in bodies()) {
        let result = interpret_submit(status, &HeaderMap::new(), &body, now());
        if !(200..300).contains(&status) {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn throttle_message_parser_never_panics(text in ".{0,80}", n in 0u32..100_000) {
        let _ = parse_try_again(&text);
        prop_assert_eq!(
            parse_try_again(&format!("try again in {n} seconds.")),
            Some(SignedDuration::from_secs(i64::from(n)))
        );
    }

    #[test]
    fn positions_round_trip(newest in "t3_[0-9a-z]{1,8}", after in proptest::option::of("t3_[0-9a-z]{1,8}"), floor in "t3_[0-9a-z]{1,8}") {
        let position = RedditPosition {
            newest: Some(newest),
            gap: after.map(|after| hark_shared::platforms::reddit::Gap { after, floor }),
        };
        prop_assert_eq!(RedditPosition::read(position.write().as_deref()), position);
    }

    #[test]
    fn position_reader_never_panics(raw in ".{0,60}") {
        let _ = RedditPosition::read(Some(&raw));
    }
}

#[test]
fn given_the_documented_success_then_the_fullname_and_url_are_returned() {
    let published = interpret_submit(
        200,
        &HeaderMap::new(),
        &fixture("reddit/submit_ok.json"),
        now(),
    )
    .unwrap();
    assert_eq!(published.platform_id, "t3_abc123");
    assert_eq!(
        published.url.as_deref(),
        Some("https://www.reddit.com/r/test/comments/abc123/title/")
    );
}
