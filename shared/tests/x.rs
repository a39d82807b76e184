//! X API v2: the listener (`GET /2/tweets/search/recent`) and the publisher
//! (`POST /2/tweets`, token refresh, own-timeline lookup), run against the reusable fake
//! `tests/src/fakes/x.rs` (included here, so the fake is tested too) and against wiremock
//! answering the documented fixtures under `tests/fixtures/x/`; property tests on the
//! parsers.

#[path = "listening/support.rs"]
#[allow(dead_code)]
mod support;

/// The fault type the reusable fakes share.
#[path = "../../tests/src/fakes/faults.rs"]
#[allow(dead_code)]
mod faults;

#[path = "../../tests/src/fakes/x.rs"]
#[allow(dead_code)]
mod fake;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hark_shared::clock::ManualClock;
use hark_shared::domain::{Cursor, Platform, Secret, Source};
use hark_shared::platforms::x::{
    self, InMemoryXTokenStore, XListener, XOAuthApp, XPosition, XPublisher, XTokenStore,
    XTokenStoreError, XTokens,
};
use hark_shared::platforms::{
    HttpClient, Listened, Listener, Lookup, OutgoingPost, PlatformError, Publisher,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::json;
use wiremock::matchers::any as any_request;
use wiremock::{Mock, MockServer, ResponseTemplate};

use fake::{
    FakeX, X_ACCESS_TOKEN, X_APP_BEARER, X_CLIENT_ID, X_REFRESH_TOKEN, X_USERNAME, snowflake_id,
};
use faults::Fault;
use support::{fixture, header, http, limits, now, query_value, requests_to, source};

const SEARCH: &str = "/2/tweets/search/recent";

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(now()))
}

async fn fake_x() -> (FakeX, Arc<ManualClock>) {
    let clock = clock();
    let fake = FakeX::start_with_clock(clock.clone()).await;
    (fake, clock)
}

fn x_source(base: &str) -> Source {
    source(
        "rust-on-x",
        Platform::X,
        json!({ "base_url": base, "query": "#rustlang", "credentials": "env:X_BEARER" }),
    )
}

fn cursor_at(position: Option<&str>) -> Cursor {
    let mut cursor = Cursor::new("rust-on-x");
    cursor.position = position.map(str::to_owned);
    cursor.version = 4;
    cursor
}

fn listener() -> XListener {
    XListener::new(http(), Some(Secret::new(X_APP_BEARER)))
}

fn ids(listened: &Listened) -> Vec<String> {
    listened
        .mentions
        .iter()
        .map(|m| m.native_id.clone())
        .collect()
}

/// Seeds `n` posts, one per second ending `minutes_ago` before now; ids oldest first.
fn seed(fake: &FakeX, n: usize, minutes_ago: i64) -> Vec<String> {
    let end = now() - SignedDuration::from_mins(minutes_ago);
    (0..n)
        .map(|i| {
            let at = end - SignedDuration::from_secs((n - i) as i64);
            fake.post_now(&format!("post {i} about #rustlang"), at)
        })
        .collect()
}

/// A wiremock server answering every request with `template`.
async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any_request())
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

fn json_fixture(status: u16, bytes: &[u8]) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(bytes.to_vec(), "application/json")
}

fn post(text: &str) -> OutgoingPost {
    OutgoingPost {
        text: text.to_owned(),
        link: None,
    }
}

fn static_publisher(base: &str, clock: Arc<ManualClock>) -> XPublisher {
    XPublisher::new(http(), Secret::new(X_ACCESS_TOKEN), clock).with_base_url(base)
}

fn tokens(access: &str, refresh: Option<&str>, expires_at: Timestamp) -> XTokens {
    XTokens {
        access_token: Secret::new(access),
        refresh_token: refresh.map(Secret::new),
        expires_at: Some(expires_at),
    }
}

fn app() -> XOAuthApp {
    XOAuthApp {
        client_id: X_CLIENT_ID.to_owned(),
        client_secret: None,
    }
}

fn refreshing_publisher(
    base: &str,
    store: Arc<dyn XTokenStore>,
    clock: Arc<ManualClock>,
) -> XPublisher {
    XPublisher::with_token_store(http(), store, app(), clock).with_base_url(base)
}

fn assert_no_secret(err: &PlatformError, secret: &str) {
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(!format!("{err:?}").contains(secret), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// listening
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn given_a_first_poll_when_listening_then_one_page_is_taken_and_the_position_is_its_newest_id()
 {
    let (fake, _) = fake_x().await;
    let seeded = seed(&fake, 150, 5);
    let listened = listener()
        .listen(
            &x_source(&fake.base_url()),
            &cursor_at(None),
            limits(now(), 5),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&listened),
        seeded[50..].to_vec(),
        "the newest page, oldest first"
    );
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some(seeded[149].as_str())
    );
    assert_eq!(listened.cursor.version, 4, "version is the store's to bump");
    assert!(listened.caught_up, "a first poll does not backfill");
    assert_eq!(fake.search_requests(), 1);
    let request = &requests_to(&fake.server, SEARCH).await[0];
    assert_eq!(query_value(request, "max_results").as_deref(), Some("100"));
    assert_eq!(query_value(request, "since_id"), None);
    assert_eq!(
        query_value(request, "expansions").as_deref(),
        Some("author_id")
    );
    let fields = query_value(request, "tweet.fields").unwrap_or_default();
    assert!(
        fields.contains("created_at") && fields.contains("public_metrics"),
        "{fields}"
    );
    assert_eq!(
        query_value(request, "query").as_deref(),
        Some("#rustlang -is:retweet")
    );
    assert_eq!(
        header(request, "authorization").as_deref(),
        Some(format!("Bearer {X_APP_BEARER}").as_str())
    );
    let rl = listened.rate_limit.expect("x-rate-limit-* headers read");
    assert_eq!(rl.limit, Some(450));
}

#[tokio::test]
async fn given_a_position_when_new_posts_span_pages_then_all_are_returned_and_the_position_is_the_first_pages_newest_id()
 {
    let (fake, _) = fake_x().await;
    let old = seed(&fake, 3, 60);
    let new = seed(&fake, 250, 5);
    let listened = listener()
        .listen(
            &x_source(&fake.base_url()),
            &cursor_at(Some(&old[2])),
            limits(now(), 5),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&listened),
        new,
        "every new post, oldest first, none older"
    );
    assert_eq!(listened.cursor.position.as_deref(), Some(new[249].as_str()));
    assert!(listened.caught_up);
    let requests = requests_to(&fake.server, SEARCH).await;
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(
            query_value(request, "since_id").as_deref(),
            Some(old[2].as_str()),
            "the same since_id on every page"
        );
    }
    assert_eq!(query_value(&requests[0], "next_token"), None);
    assert!(query_value(&requests[1], "next_token").is_some());
    assert!(query_value(&requests[2], "next_token").is_some());
}

#[tokio::test]
async fn given_a_stored_position_when_polled_again_then_since_id_is_that_position_and_only_newer_posts_come()
 {
    let (fake, _) = fake_x().await;
    seed(&fake, 5, 30);
    let source = x_source(&fake.base_url());
    let first = listener()
        .listen(&source, &cursor_at(None), limits(now(), 3))
        .await
        .unwrap();
    let later = seed(&fake, 2, 1);
    let second = listener()
        .listen(&source, &first.cursor, limits(now(), 3))
        .await
        .unwrap();
    assert_eq!(ids(&second), later);
    let requests = requests_to(&fake.server, SEARCH).await;
    assert_eq!(
        query_value(&requests[1], "since_id"),
        first.cursor.position,
        "the second poll asks for what came after the first"
    );
    assert_eq!(second.cursor.position.as_deref(), Some(later[1].as_str()));
}

#[tokio::test]
async fn given_a_backlog_bigger_than_the_page_cap_when_polled_then_it_drains_over_polls_and_nothing_is_lost()
 {
    let (fake, _) = fake_x().await;
    let old = seed(&fake, 1, 120);
    let burst = seed(&fake, 350, 60);
    let source = x_source(&fake.base_url());

    let first = listener()
        .listen(&source, &cursor_at(Some(&old[0])), limits(now(), 2))
        .await
        .unwrap();
    assert!(!first.caught_up, "the page cap stopped it");
    assert_eq!(ids(&first), burst[150..].to_vec(), "the newest 200");
    let position = XPosition::parse(first.cursor.position.as_deref().unwrap()).unwrap();
    assert_eq!(
        position,
        XPosition::Backlog {
            since_id: old[0].clone(),
            until_id: burst[150].clone(),
            newest_id: burst[349].clone(),
        },
        "the position records the unread rest, not the first page's newest_id"
    );

    let more = seed(&fake, 5, 1);
    let second = listener()
        .listen(&source, &first.cursor, limits(now(), 2))
        .await
        .unwrap();
    assert_eq!(ids(&second), burst[..150].to_vec(), "the rest of the burst");
    assert!(second.caught_up);
    assert_eq!(second.cursor.position.as_deref(), Some(burst[349].as_str()));
    let drain = requests_to(&fake.server, SEARCH).await;
    assert_eq!(
        query_value(&drain[2], "until_id").as_deref(),
        Some(burst[150].as_str())
    );

    let third = listener()
        .listen(&source, &second.cursor, limits(now(), 2))
        .await
        .unwrap();
    assert_eq!(ids(&third), more, "then what came meanwhile");
    let mut all: Vec<String> = [ids(&first), ids(&second), ids(&third)].concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 355, "every post exactly once");
}

#[tokio::test]
async fn given_the_documented_search_page_when_listening_then_mentions_carry_author_followers_url_and_real_links()
 {
    let server = answering(
        json_fixture(200, fixture!("x/search_recent.json"))
            .insert_header("x-rate-limit-limit", "450")
            .insert_header("x-rate-limit-remaining", "449")
            .insert_header("x-rate-limit-reset", "1768046700"),
    )
    .await;
    let listened = listener()
        .listen(&x_source(&server.uri()), &cursor_at(None), limits(now(), 3))
        .await
        .unwrap();
    assert_eq!(
        ids(&listened),
        vec!["2009957139870646301", "2009957894845366302"],
        "oldest first"
    );
    let m = &listened.mentions[1];
    assert_eq!(m.platform, Platform::X);
    assert_eq!(m.author.handle, "devexample");
    assert_eq!(m.author.display_name.as_deref(), Some("Dev Example"));
    assert_eq!(m.author.followers, Some(5120));
    assert_eq!(m.author.url.as_deref(), Some("https://x.com/devexample"));
    assert_eq!(m.url, "https://x.com/devexample/status/2009957894845366302");
    assert_eq!(
        m.text,
        "Scheduling posts with #rustlang & Lambda: https://blog.example/rust-scheduler"
    );
    assert_eq!(
        m.created_at,
        "2026-01-10T11:58:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        (
            m.engagement.likes,
            m.engagement.reposts,
            m.engagement.replies
        ),
        (12, 3, 1)
    );
    assert_eq!(m.source_id.as_deref(), Some("rust-on-x"));
    assert!(m.lang.is_none() && m.sentiment.is_none() && m.campaigns.is_empty());
    assert_eq!(listened.mentions[0].author.followers, Some(68_000_000));
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some("2009957894845366302")
    );
    let rl = listened.rate_limit.unwrap();
    assert_eq!(rl.remaining, Some(449));
    assert_eq!(rl.wait_from(now()), Some(SignedDuration::from_secs(300)));
}

#[tokio::test]
async fn given_partial_errors_in_a_200_when_listening_then_posts_are_kept_without_the_missing_author()
 {
    let server = answering(json_fixture(200, fixture!("x/search_partial_errors.json"))).await;
    let listened = listener()
        .listen(&x_source(&server.uri()), &cursor_at(None), limits(now(), 3))
        .await
        .unwrap();
    assert_eq!(listened.mentions.len(), 1);
    let m = &listened.mentions[0];
    assert_eq!(
        m.author.handle, "1500000000000000001",
        "the author id stands in"
    );
    assert_eq!(m.author.followers, None);
    assert_eq!(m.url, "https://x.com/i/web/status/2009957894845366302");
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some("2009957894845366302")
    );
}

#[tokio::test]
async fn given_a_200_holding_only_errors_when_listening_then_permanent_with_their_words() {
    let body = json!({ "errors": [{
        "title": "Authorization Error", "detail": "Sorry, you are not authorized to see this search.",
        "type": "https://api.x.com/2/problems/not-authorized-for-resource"
    }]});
    let server = answering(ResponseTemplate::new(200).set_body_json(body)).await;
    let err = listener()
        .listen(
            &x_source(&server.uri()),
            &cursor_at(Some("2009957139870646301")),
            limits(now(), 3),
        )
        .await
        .unwrap_err();
    match &err {
        PlatformError::Permanent { message, .. } => {
            assert!(
                message.contains("not authorized to see this search"),
                "{message}"
            )
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn given_no_new_posts_when_listening_then_nothing_and_the_position_is_kept() {
    let server = answering(json_fixture(200, fixture!("x/search_empty.json"))).await;
    let listened = listener()
        .listen(
            &x_source(&server.uri()),
            &cursor_at(Some("2009957139870646301")),
            limits(now(), 3),
        )
        .await
        .unwrap();
    assert!(listened.mentions.is_empty());
    assert!(listened.caught_up);
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some("2009957139870646301")
    );
}

#[tokio::test]
async fn given_a_revoked_bearer_when_listening_then_auth_expired_and_no_cursor_to_store() {
    let (fake, _) = fake_x().await;
    seed(&fake, 3, 5);
    fake.revoke_app_bearer();
    let err = listener()
        .listen(
            &x_source(&fake.base_url()),
            &cursor_at(None),
            limits(now(), 3),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(err.to_string().contains("Unauthorized"), "{err}");
    assert_no_secret(&err, X_APP_BEARER);
}

#[tokio::test]
async fn given_a_source_without_credentials_when_listening_then_auth_expired_before_any_request() {
    let server = answering(json_fixture(200, fixture!("x/search_empty.json"))).await;
    let err = XListener::new(http(), None)
        .listen(&x_source(&server.uri()), &cursor_at(None), limits(now(), 3))
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(err.to_string().contains("credentials"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn given_429_when_listening_then_retryable_after_the_x_rate_limit_reset() {
    let reset = now().as_second() + 420;
    let server = answering(
        json_fixture(429, fixture!("x/error_rate_limited.json"))
            .insert_header("x-rate-limit-limit", "450")
            .insert_header("x-rate-limit-remaining", "0")
            .insert_header("x-rate-limit-reset", reset.to_string().as_str()),
    )
    .await;
    let err = listener()
        .listen(
            &x_source(&server.uri()),
            &cursor_at(Some("2009957139870646301")),
            limits(now(), 3),
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(420)));
    assert!(err.to_string().contains("Too Many Requests"), "{err}");
}

#[tokio::test]
async fn given_the_fakes_rate_limit_fault_when_listening_then_retryable_and_the_next_poll_succeeds()
{
    let (fake, _) = fake_x().await;
    let seeded = seed(&fake, 3, 5);
    fake.inject_search(Fault::RateLimited {
        reset_in: SignedDuration::from_secs(90),
    });
    let source = x_source(&fake.base_url());
    let cursor = cursor_at(Some(&seeded[0]));
    let err = listener()
        .listen(&source, &cursor, limits(now(), 3))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(90)));
    // Nothing was lost: the same cursor gets the posts on the next poll.
    let listened = listener()
        .listen(&source, &cursor, limits(now(), 3))
        .await
        .unwrap();
    assert_eq!(ids(&listened), seeded[1..].to_vec());
}

#[tokio::test]
async fn given_a_usage_cap_or_a_server_error_when_listening_then_retryable() {
    for template in [
        json_fixture(429, fixture!("x/error_usage_capped.json")),
        ResponseTemplate::new(503).set_body_raw("<html>Over capacity</html>", "text/html"),
    ] {
        let server = answering(template).await;
        let err = listener()
            .listen(&x_source(&server.uri()), &cursor_at(None), limits(now(), 3))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}

#[tokio::test]
async fn given_a_problem_details_refusal_when_listening_then_permanent_with_xs_words() {
    let server = answering(json_fixture(400, fixture!("x/error_invalid_request.json"))).await;
    let err = listener()
        .listen(&x_source(&server.uri()), &cursor_at(None), limits(now(), 3))
        .await
        .unwrap_err();
    match &err {
        PlatformError::Permanent {
            status: Some(400),
            message,
            ..
        } => {
            assert!(
                message.starts_with("Invalid Request: One or more parameters"),
                "{message}"
            );
            assert!(message.contains("missing closing parenthesis"), "{message}");
        }
        other => panic!("expected Permanent 400, got {other:?}"),
    }
}

#[tokio::test]
async fn given_malformed_pages_when_listening_then_malformed_and_nothing_is_used() {
    let bad_id = json!({ "data": [{ "id": "12e4", "text": "x" }], "meta": { "result_count": 1 } });
    for body in [
        fixture!("x/malformed_truncated.json").to_vec(),
        fixture!("x/malformed_wrong_shape.json").to_vec(),
        b"{}".to_vec(),
        b"[]".to_vec(),
        bad_id.to_string().into_bytes(),
    ] {
        let server =
            answering(ResponseTemplate::new(200).set_body_raw(body, "application/json")).await;
        let err = listener()
            .listen(
                &x_source(&server.uri()),
                &cursor_at(Some("2009957139870646301")),
                limits(now(), 3),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PlatformError::Malformed {
                    platform: Platform::X,
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[tokio::test]
async fn given_a_position_older_than_the_search_window_when_listening_then_start_time_replaces_since_id()
 {
    let (fake, _) = fake_x().await;
    let stale = snowflake_id(now() - SignedDuration::from_hours(8 * 24), 1);
    let recent = seed(&fake, 3, 10);
    let listened = listener()
        .listen(
            &x_source(&fake.base_url()),
            &cursor_at(Some(&stale)),
            limits(now(), 3),
        )
        .await
        .unwrap();
    assert_eq!(ids(&listened), recent);
    let request = &requests_to(&fake.server, SEARCH).await[0];
    assert_eq!(
        query_value(request, "since_id"),
        None,
        "X refuses so old a since_id"
    );
    assert!(query_value(request, "start_time").is_some());
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some(recent[2].as_str())
    );
}

#[tokio::test]
async fn given_an_unreadable_position_when_listening_then_it_restarts_with_one_page() {
    let (fake, _) = fake_x().await;
    let seeded = seed(&fake, 3, 10);
    let listened = listener()
        .listen(
            &x_source(&fake.base_url()),
            &cursor_at(Some("not a position")),
            limits(now(), 3),
        )
        .await
        .unwrap();
    assert_eq!(ids(&listened), seeded);
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some(seeded[2].as_str())
    );
}

#[tokio::test]
async fn given_a_private_base_url_and_a_strict_client_when_listening_then_refused_before_any_request()
 {
    let server = answering(json_fixture(200, fixture!("x/search_empty.json"))).await;
    let err = XListener::new(support::strict_http(), Some(Secret::new(X_APP_BEARER)))
        .listen(&x_source(&server.uri()), &cursor_at(None), limits(now(), 3))
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Url { .. }), "{err}");
}

#[tokio::test]
async fn given_either_field_spelling_when_the_fake_is_searched_then_it_serves_the_fields_asked_for()
{
    let (fake, _) = fake_x().await;
    seed(&fake, 1, 5);
    for spelling in ["tweet.fields", "post.fields"] {
        let body: serde_json::Value = http()
            .client()
            .get(format!("{}{SEARCH}", fake.base_url()))
            .query(&[("query", "hark"), (spelling, "created_at,author_id")])
            .bearer_auth(X_APP_BEARER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let post = &body["data"][0];
        assert!(post["created_at"].is_string(), "{spelling}: {body}");
        assert!(post["author_id"].is_string(), "{spelling}: {body}");
        assert!(
            post.get("public_metrics").is_none(),
            "only what was asked for"
        );
    }
}

// ---------------------------------------------------------------------------------------
// publishing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn given_a_text_when_published_then_201_gives_the_id_and_a_web_url() {
    let (fake, clock) = fake_x().await;
    let published = static_publisher(&fake.base_url(), clock)
        .publish(&post("Hark 1.2 is out"), "delivery-1")
        .await
        .unwrap();
    let created = fake.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].text, "Hark 1.2 is out");
    assert_eq!(published.platform_id, created[0].id);
    assert_eq!(
        published.url.as_deref(),
        Some(format!("https://x.com/i/web/status/{}", created[0].id).as_str())
    );
    let request = &requests_to(&fake.server, "/2/tweets").await[0];
    assert_eq!(
        header(request, "authorization").as_deref(),
        Some(format!("Bearer {X_ACCESS_TOKEN}").as_str())
    );
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, json!({ "text": "Hark 1.2 is out" }));
}

#[tokio::test]
async fn given_a_link_when_published_then_it_is_appended_once_and_surrounding_space_dropped() {
    let (fake, clock) = fake_x().await;
    let publisher = static_publisher(&fake.base_url(), clock);
    publisher
        .publish(
            &OutgoingPost {
                text: "  Release notes\n".into(),
                link: Some("https://hark.example/r/1".into()),
            },
            "d",
        )
        .await
        .unwrap();
    publisher
        .publish(
            &OutgoingPost {
                text: "See https://hark.example/r/2 now".into(),
                link: Some("https://hark.example/r/2".into()),
            },
            "e",
        )
        .await
        .unwrap();
    let texts: Vec<String> = fake.created().into_iter().map(|c| c.text).collect();
    assert_eq!(
        texts,
        vec![
            "Release notes https://hark.example/r/1",
            "See https://hark.example/r/2 now"
        ]
    );
}

#[tokio::test]
async fn given_an_oversized_text_when_published_then_permanent_and_no_request_is_sent() {
    let (fake, clock) = fake_x().await;
    // 141 CJK characters weigh 282.
    let text = "漢".repeat(141);
    let err = static_publisher(&fake.base_url(), clock)
        .publish(&post(&text), "d")
        .await
        .unwrap_err();
    match &err {
        PlatformError::Permanent {
            status: None,
            message,
            ..
        } => {
            assert!(
                message.contains("280") && message.contains("282"),
                "{message}"
            )
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert_eq!(fake.create_requests(), 0);
}

#[tokio::test]
async fn given_a_duplicate_text_when_published_then_ambiguous_to_be_reconciled() {
    let (fake, clock) = fake_x().await;
    let publisher = static_publisher(&fake.base_url(), clock);
    publisher.publish(&post("Same words"), "d-1").await.unwrap();
    let err = publisher
        .publish(&post("Same words"), "d-1")
        .await
        .unwrap_err();
    match &err {
        PlatformError::Ambiguous { reason, .. } => {
            assert!(reason.contains("duplicate content"), "{reason}")
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert_eq!(fake.created().len(), 1);
}

#[tokio::test]
async fn given_a_lost_response_after_send_when_published_then_ambiguous_and_find_published_finds_it()
 {
    let (fake, clock) = fake_x().await;
    fake.inject("Lost in transit", Fault::LoseResponse);
    fake.set_lost_response_delay(Duration::from_secs(3));
    let impatient = HttpClient::with_timeout(true, Duration::from_millis(300)).unwrap();
    let publisher = XPublisher::new(impatient, Secret::new(X_ACCESS_TOKEN), clock.clone())
        .with_base_url(fake.base_url());
    let err = publisher
        .publish(&post("Lost in transit"), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    assert_eq!(fake.created().len(), 1, "the fake did create it");

    let found = static_publisher(&fake.base_url(), clock)
        .find_published(
            &post("Lost in transit"),
            now() - SignedDuration::from_mins(1),
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        Lookup::Found(hark_shared::platforms::Published {
            platform_id: fake.created()[0].id.clone(),
            url: Some(format!(
                "https://x.com/{X_USERNAME}/status/{}",
                fake.created()[0].id
            )),
        })
    );
}

#[tokio::test]
async fn given_a_refused_connection_when_published_then_retryable() {
    let err = static_publisher("http://127.0.0.1:9", clock())
        .publish(&post("Nobody listens"), "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn given_429_when_published_then_retryable_after_x_rate_limit_reset() {
    let (fake, clock) = fake_x().await;
    fake.inject(
        "Too soon",
        Fault::RateLimited {
            reset_in: SignedDuration::from_secs(120),
        },
    );
    let err = static_publisher(&fake.base_url(), clock)
        .publish(&post("Too soon"), "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(120)));
    assert!(fake.created().is_empty());
}

#[tokio::test]
async fn given_a_spent_24_hour_window_when_429_then_the_wait_is_until_that_window_resets() {
    let server = answering(
        json_fixture(429, fixture!("x/error_rate_limited.json"))
            .insert_header("x-rate-limit-remaining", "40")
            .insert_header(
                "x-rate-limit-reset",
                (now().as_second() + 60).to_string().as_str(),
            )
            .insert_header("x-user-limit-24hour-remaining", "0")
            .insert_header(
                "x-user-limit-24hour-reset",
                (now().as_second() + 7200).to_string().as_str(),
            ),
    )
    .await;
    let err = static_publisher(&server.uri(), clock())
        .publish(&post("Daily cap"), "d")
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(7200)));
}

#[tokio::test]
async fn given_a_server_error_when_published_then_retryable_and_a_gateway_timeout_ambiguous() {
    let (fake, clock) = fake_x().await;
    fake.inject("Flaky", Fault::ServerError);
    let err = static_publisher(&fake.base_url(), clock.clone())
        .publish(&post("Flaky"), "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(fake.created().is_empty());

    let server = answering(ResponseTemplate::new(504).set_body_raw("", "text/plain")).await;
    let err = static_publisher(&server.uri(), clock)
        .publish(&post("Behind a gateway"), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
}

#[tokio::test]
async fn given_a_revoked_static_token_when_published_then_auth_expired_without_the_token() {
    let (fake, clock) = fake_x().await;
    fake.revoke_user_tokens();
    let err = static_publisher(&fake.base_url(), clock)
        .publish(&post("Hello"), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_no_secret(&err, X_ACCESS_TOKEN);
}

#[tokio::test]
async fn given_other_refusals_when_published_then_permanent_with_xs_words() {
    let server = answering(json_fixture(403, fixture!("x/error_forbidden.json"))).await;
    let err = static_publisher(&server.uri(), clock())
        .publish(&post("Not allowed"), "d")
        .await
        .unwrap_err();
    match &err {
        PlatformError::Permanent {
            status: Some(403),
            message,
            ..
        } => {
            assert_eq!(
                message,
                "Forbidden: You are not permitted to perform this action."
            )
        }
        other => panic!("expected Permanent 403, got {other:?}"),
    }
}

#[tokio::test]
async fn given_an_unreadable_201_when_published_then_ambiguous_because_the_post_exists() {
    let server =
        answering(ResponseTemplate::new(201).set_body_raw("{\"data\":", "application/json")).await;
    let err = static_publisher(&server.uri(), clock())
        .publish(&post("Created, probably"), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
}

#[tokio::test]
async fn given_the_documented_201_when_published_then_its_id_is_used() {
    let server = answering(json_fixture(201, fixture!("x/tweet_created.json"))).await;
    let published = static_publisher(&server.uri(), clock())
        .publish(&post("Hello from the X API!"), "d")
        .await
        .unwrap();
    assert_eq!(published.platform_id, "1445880548472328192");
    assert_eq!(
        published.url.as_deref(),
        Some("https://x.com/i/web/status/1445880548472328192")
    );
}

// -- token refresh ----------------------------------------------------------------------

#[tokio::test]
async fn given_a_token_about_to_expire_when_published_then_it_is_refreshed_first_and_the_new_set_saved()
 {
    let (fake, clock) = fake_x().await;
    let store = Arc::new(InMemoryXTokenStore::new(tokens(
        X_ACCESS_TOKEN,
        Some(X_REFRESH_TOKEN),
        now() + SignedDuration::from_mins(2),
    )));
    refreshing_publisher(&fake.base_url(), store.clone(), clock)
        .publish(&post("Fresh token"), "d")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 1);
    let saved = store.current().unwrap();
    assert_eq!(saved.access_token.expose(), "x-user-access-token-1");
    assert_eq!(
        saved.refresh_token.as_ref().map(Secret::expose),
        Some("x-refresh-token-1"),
        "the rotated refresh token is kept"
    );
    assert_eq!(
        saved.expires_at,
        Some(now() + SignedDuration::from_hours(2))
    );
    let token_request = &requests_to(&fake.server, "/2/oauth2/token").await[0];
    let form = String::from_utf8_lossy(&token_request.body).into_owned();
    assert!(form.contains("grant_type=refresh_token"), "{form}");
    assert!(form.contains(&format!("client_id={X_CLIENT_ID}")), "{form}");
    let create = &requests_to(&fake.server, "/2/tweets").await[0];
    assert_eq!(
        header(create, "authorization").as_deref(),
        Some("Bearer x-user-access-token-1")
    );
}

#[tokio::test]
async fn given_a_token_far_from_expiry_when_published_then_no_refresh() {
    let (fake, clock) = fake_x().await;
    let store = Arc::new(InMemoryXTokenStore::new(tokens(
        X_ACCESS_TOKEN,
        Some(X_REFRESH_TOKEN),
        now() + SignedDuration::from_mins(90),
    )));
    refreshing_publisher(&fake.base_url(), store.clone(), clock)
        .publish(&post("Still valid"), "d")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 0);
    assert_eq!(
        store.current().unwrap().access_token.expose(),
        X_ACCESS_TOKEN
    );
}

#[tokio::test]
async fn given_a_refresh_answer_without_a_refresh_token_then_the_stored_one_is_kept_not_emptied() {
    let (fake, clock) = fake_x().await;
    fake.set_token_responses_include_refresh(false);
    let store = Arc::new(InMemoryXTokenStore::new(tokens(
        X_ACCESS_TOKEN,
        Some(X_REFRESH_TOKEN),
        now() + SignedDuration::from_secs(30),
    )));
    let publisher = refreshing_publisher(&fake.base_url(), store.clone(), clock.clone());
    publisher.publish(&post("One"), "d1").await.unwrap();
    let saved = store.current().unwrap();
    assert_eq!(saved.access_token.expose(), "x-user-access-token-1");
    assert_eq!(
        saved.refresh_token.as_ref().map(Secret::expose),
        Some(X_REFRESH_TOKEN)
    );
    // Two hours later the kept refresh token still works.
    clock.advance(SignedDuration::from_mins(118));
    publisher.publish(&post("Two"), "d2").await.unwrap();
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(
        store.current().unwrap().access_token.expose(),
        "x-user-access-token-2"
    );
}

#[tokio::test]
async fn given_a_refused_refresh_when_published_then_auth_expired_and_nothing_posted() {
    let (fake, clock) = fake_x().await;
    fake.revoke_user_tokens();
    let store = Arc::new(InMemoryXTokenStore::new(tokens(
        X_ACCESS_TOKEN,
        Some(X_REFRESH_TOKEN),
        now() + SignedDuration::from_secs(30),
    )));
    let err = refreshing_publisher(&fake.base_url(), store.clone(), clock)
        .publish(&post("Never sent"), "d")
        .await
        .unwrap_err();
    match &err {
        PlatformError::AuthExpired { message, .. } => {
            assert!(message.contains("invalid_grant"), "{message}")
        }
        other => panic!("expected AuthExpired, got {other:?}"),
    }
    assert_no_secret(&err, X_REFRESH_TOKEN);
    assert_eq!(fake.create_requests(), 0);
    assert_eq!(
        store
            .current()
            .unwrap()
            .refresh_token
            .as_ref()
            .map(Secret::expose),
        Some(X_REFRESH_TOKEN),
        "a refused refresh changes nothing stored"
    );
}

#[tokio::test]
async fn given_an_access_token_revoked_before_its_expiry_when_published_then_refreshed_once_and_sent_again()
 {
    let (fake, clock) = fake_x().await;
    fake.expire_access_tokens();
    let store = Arc::new(InMemoryXTokenStore::new(tokens(
        X_ACCESS_TOKEN,
        Some(X_REFRESH_TOKEN),
        now() + SignedDuration::from_mins(90),
    )));
    let published = refreshing_publisher(&fake.base_url(), store.clone(), clock)
        .publish(&post("Second try"), "d")
        .await
        .unwrap();
    assert_eq!(fake.create_requests(), 2, "one refused, one accepted");
    assert_eq!(fake.created().len(), 1);
    assert_eq!(published.platform_id, fake.created()[0].id);
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn given_no_refresh_token_and_an_expired_access_token_then_auth_expired_asking_for_offline_access()
 {
    let (fake, clock) = fake_x().await;
    let store = Arc::new(InMemoryXTokenStore::new(tokens(
        X_ACCESS_TOKEN,
        None,
        now() - SignedDuration::from_mins(1),
    )));
    let err = refreshing_publisher(&fake.base_url(), store, clock)
        .publish(&post("x"), "d")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("offline.access"), "{err}");
    assert_eq!(fake.token_requests(), 0);
}

/// A store whose first load returns a stale set (as another instance rotates the refresh
/// token meanwhile), then what was saved.
struct RacingStore {
    loads: Mutex<Vec<XTokens>>,
    saved: Mutex<Option<XTokens>>,
}

#[async_trait::async_trait]
impl XTokenStore for RacingStore {
    async fn load(&self) -> Result<Option<XTokens>, XTokenStoreError> {
        let mut loads = self.loads.lock().unwrap();
        if loads.len() > 1 {
            return Ok(Some(loads.remove(0)));
        }
        Ok(self
            .saved
            .lock()
            .unwrap()
            .clone()
            .or_else(|| loads.first().cloned()))
    }

    async fn save(&self, tokens: &XTokens) -> Result<(), XTokenStoreError> {
        *self.saved.lock().unwrap() = Some(tokens.clone());
        Ok(())
    }
}

#[tokio::test]
async fn given_another_instance_rotated_the_refresh_token_when_ours_is_refused_then_the_stored_set_is_used()
 {
    let (fake, clock) = fake_x().await;
    // The other instance refreshed: the fake now accepts x-refresh-token-1 and
    // x-user-access-token-1, and the store holds them; we start from the stale set.
    let other = refreshing_publisher(
        &fake.base_url(),
        Arc::new(InMemoryXTokenStore::new(tokens(
            X_ACCESS_TOKEN,
            Some(X_REFRESH_TOKEN),
            now(),
        ))),
        clock.clone(),
    );
    other
        .publish(&post("From the other instance"), "o")
        .await
        .unwrap();
    let stale = tokens(X_ACCESS_TOKEN, Some(X_REFRESH_TOKEN), now());
    let rotated = tokens(
        "x-user-access-token-1",
        Some("x-refresh-token-1"),
        now() + SignedDuration::from_hours(2),
    );
    let store = Arc::new(RacingStore {
        loads: Mutex::new(vec![stale, rotated.clone()]),
        saved: Mutex::new(None),
    });
    refreshing_publisher(&fake.base_url(), store, clock)
        .publish(&post("From this instance"), "d")
        .await
        .unwrap();
    let last = requests_to(&fake.server, "/2/tweets").await.pop().unwrap();
    assert_eq!(
        header(&last, "authorization").as_deref(),
        Some("Bearer x-user-access-token-1")
    );
}

/// A store that cannot save.
struct ReadOnlyStore(XTokens, Mutex<usize>);

#[async_trait::async_trait]
impl XTokenStore for ReadOnlyStore {
    async fn load(&self) -> Result<Option<XTokens>, XTokenStoreError> {
        Ok(Some(self.0.clone()))
    }

    async fn save(&self, _: &XTokens) -> Result<(), XTokenStoreError> {
        *self.1.lock().unwrap() += 1;
        Err(XTokenStoreError("throttled".into()))
    }
}

#[tokio::test]
async fn given_a_store_that_cannot_save_when_refreshed_then_the_post_goes_out_and_the_new_tokens_are_kept_in_memory()
 {
    let (fake, clock) = fake_x().await;
    let store = Arc::new(ReadOnlyStore(
        tokens(X_ACCESS_TOKEN, Some(X_REFRESH_TOKEN), now()),
        Mutex::new(0),
    ));
    let publisher = refreshing_publisher(&fake.base_url(), store.clone(), clock);
    publisher.publish(&post("One"), "d1").await.unwrap();
    publisher.publish(&post("Two"), "d2").await.unwrap();
    assert_eq!(
        fake.token_requests(),
        1,
        "the rotated set in memory is reused"
    );
    assert_eq!(*store.1.lock().unwrap(), 2, "saving is tried again");
    assert_eq!(fake.created().len(), 2);
}

#[tokio::test]
async fn given_a_channel_secret_when_building_then_json_token_sets_refresh_and_plain_values_are_static()
 {
    let (fake, clock) = fake_x().await;
    let set = json!({
        "access_token": X_ACCESS_TOKEN, "refresh_token": X_REFRESH_TOKEN,
        "expires_at": now().to_string(), "client_id": X_CLIENT_ID
    })
    .to_string();
    let publisher = XPublisher::from_secret(http(), &Secret::new(set), clock.clone())
        .unwrap()
        .with_base_url(fake.base_url());
    assert!(!format!("{publisher:?}").contains(X_REFRESH_TOKEN));
    publisher
        .publish(&post("Via a token set"), "d")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 1);

    let plain = XPublisher::from_secret(http(), &Secret::new(X_ACCESS_TOKEN), clock.clone())
        .unwrap()
        .with_base_url(fake.base_url());
    plain
        .publish(&post("Via a plain token"), "e")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 1);

    let Err(err) = XPublisher::from_secret(http(), &Secret::new("{\"access\": \"s3cr3t\"}"), clock)
    else {
        panic!("a broken token set must be refused");
    };
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_no_secret(&err, "s3cr3t");
}

// -- find_published ---------------------------------------------------------------------

#[tokio::test]
async fn given_the_post_on_a_later_page_when_looking_then_found_after_paging() {
    let (fake, clock) = fake_x().await;
    let since = now() - SignedDuration::from_hours(1);
    let target = fake.own_post("The one we look for", since + SignedDuration::from_secs(5));
    for i in 0..150 {
        fake.own_post(
            &format!("chatter {i}"),
            since + SignedDuration::from_secs(60 + i),
        );
    }
    let found = static_publisher(&fake.base_url(), clock)
        .find_published(&post("The one we look for"), since)
        .await
        .unwrap();
    assert!(
        matches!(&found, Lookup::Found(p) if p.platform_id == target),
        "{found:?}"
    );
    let pages = requests_to(
        &fake.server,
        &format!("/2/users/{}/tweets", fake::X_USER_ID),
    )
    .await;
    assert_eq!(pages.len(), 2);
    assert!(query_value(&pages[1], "pagination_token").is_some());
    assert_eq!(
        query_value(&pages[0], "start_time").as_deref(),
        Some("2026-01-10T11:00:00Z")
    );
}

#[tokio::test]
async fn given_no_such_post_when_every_page_is_read_then_not_found() {
    let (fake, clock) = fake_x().await;
    let since = now() - SignedDuration::from_hours(1);
    for i in 0..120 {
        fake.own_post(
            &format!("chatter {i}"),
            since + SignedDuration::from_secs(i),
        );
    }
    // The same text before `since` does not count.
    fake.own_post("Old news", since - SignedDuration::from_mins(5));
    let lookup = static_publisher(&fake.base_url(), clock)
        .find_published(&post("Old news"), since)
        .await
        .unwrap();
    assert_eq!(lookup, Lookup::NotFound);
}

#[tokio::test]
async fn given_x_rewrote_urls_to_tco_when_looking_then_the_exact_sent_text_still_matches() {
    let (fake, clock) = fake_x().await;
    let publisher = static_publisher(&fake.base_url(), clock);
    let sent = OutgoingPost {
        text: "Notes & fixes <v1.2>".into(),
        link: Some("https://hark.example/releases/1.2".into()),
    };
    publisher.publish(&sent, "d").await.unwrap();
    let since = now() - SignedDuration::from_mins(1);
    assert!(matches!(
        publisher.find_published(&sent, since).await.unwrap(),
        Lookup::Found(_)
    ));
    let other_link = OutgoingPost {
        link: Some("https://hark.example/releases/1.3".into()),
        ..sent
    };
    assert_eq!(
        publisher.find_published(&other_link, since).await.unwrap(),
        Lookup::NotFound,
        "a different URL behind the same kind of t.co link is not a match"
    );
}

#[tokio::test]
async fn given_the_documented_timeline_page_when_looking_then_tco_and_escapes_are_read_through() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/2/users/me"))
        .respond_with(json_fixture(200, fixture!("x/users_me.json")))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path(
        "/2/users/1600000000000000042/tweets",
    ))
    .respond_with(json_fixture(200, fixture!("x/user_tweets.json")))
    .mount(&server)
    .await;
    let publisher = static_publisher(&server.uri(), clock());
    let since = now() - SignedDuration::from_hours(1);
    let found = publisher
        .find_published(
            &post("New release notes: https://hark.example/releases/1.2"),
            since,
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        Lookup::Found(hark_shared::platforms::Published {
            platform_id: "2009958398161846303".into(),
            url: Some("https://x.com/harkbrand/status/2009958398161846303".into()),
        })
    );
    assert!(matches!(
        publisher.find_published(&post("Good morning & welcome"), since).await.unwrap(),
        Lookup::Found(p) if p.platform_id == "2009957139870646304"
    ));
    assert_eq!(
        publisher
            .find_published(&post("Good morning"), since)
            .await
            .unwrap(),
        Lookup::NotFound
    );
    let me_calls = requests_to(&server, "/2/users/me").await.len();
    assert_eq!(me_calls, 1, "the account is asked for once");
}

#[tokio::test]
async fn given_a_failing_timeline_when_looking_then_the_error_is_classified_not_not_found() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/2/users/me"))
        .respond_with(json_fixture(200, fixture!("x/users_me.json")))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path(
        "/2/users/1600000000000000042/tweets",
    ))
    .respond_with(ResponseTemplate::new(503))
    .mount(&server)
    .await;
    let err = static_publisher(&server.uri(), clock())
        .find_published(&post("x"), now())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

// ---------------------------------------------------------------------------------------
// parsers
// ---------------------------------------------------------------------------------------

fn ok_or_malformed<T>(result: Result<T, PlatformError>) -> Result<(), String> {
    match result {
        Ok(_) => Ok(()),
        Err(PlatformError::Malformed {
            platform: Platform::X,
            detail,
        }) if !detail.is_empty() => Ok(()),
        Err(other) => Err(format!("unexpected error: {other:?}")),
    }
}

fn damaged(original: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        0..=original.len(),
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..8),
    )
        .prop_map(move |(cut, flips)| {
            let mut bytes = original[..cut].to_vec();
            for (at, mask) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            bytes
        })
}

#[test]
fn given_the_undamaged_fixtures_when_parsed_then_they_read_as_documented() {
    let page = x::parse_post_page(fixture!("x/search_recent.json")).unwrap();
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.includes.users.len(), 2);
    assert_eq!(
        page.meta.unwrap().next_token.as_deref(),
        Some("b26v89c19zqg8o3fpzbkqmfxn0z4")
    );
    assert!(
        x::parse_post_page(fixture!("x/search_empty.json"))
            .unwrap()
            .data
            .is_empty()
    );
    assert_eq!(
        x::parse_post_page(fixture!("x/search_partial_errors.json"))
            .unwrap()
            .errors
            .len(),
        1
    );
    assert_eq!(
        x::parse_post_page(fixture!("x/user_tweets.json"))
            .unwrap()
            .data
            .len(),
        2
    );
    assert_eq!(
        x::parse_created(fixture!("x/tweet_created.json")).unwrap(),
        "1445880548472328192"
    );
    let token = x::parse_token_response(fixture!("x/token_refreshed.json")).unwrap();
    assert_eq!(token.expires_in, Some(7200));
    assert!(!format!("{token:?}").contains(&token.access_token));
    assert!(x::is_duplicate_refusal(fixture!("x/error_duplicate.json")));
    assert!(!x::is_duplicate_refusal(fixture!("x/error_forbidden.json")));
    // The 2026 spelling of the edit history parses too.
    let renamed = br#"{"data":[{"id":"1","text":"t","edit_history_post_ids":["1"]}],"meta":{"result_count":1}}"#;
    assert_eq!(x::parse_post_page(renamed).unwrap().data[0].id, "1");
}

/// The largest id X can mint: 19 digits (`^[0-9]{1,19}$`).
const MAX_ID: u64 = 9_999_999_999_999_999_999;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        ok_or_malformed(x::parse_post_page(&bytes)).map_err(TestCaseError::fail)?;
        ok_or_malformed(x::parse_token_response(&bytes)).map_err(TestCaseError::fail)?;
        ok_or_malformed(x::parse_created(&bytes)).map_err(TestCaseError::fail)?;
        let _ = x::problem_words(&bytes);
        let _ = x::is_duplicate_refusal(&bytes);
    }

    #[test]
    fn damaged_fixtures_parse_or_are_malformed(
        search in damaged(fixture!("x/search_recent.json")),
        timeline in damaged(fixture!("x/user_tweets.json")),
        token in damaged(fixture!("x/token_refreshed.json")),
    ) {
        ok_or_malformed(x::parse_post_page(&search)).map_err(TestCaseError::fail)?;
        ok_or_malformed(x::parse_post_page(&timeline)).map_err(TestCaseError::fail)?;
        ok_or_malformed(x::parse_token_response(&token)).map_err(TestCaseError::fail)?;
        if let Ok(page) = x::parse_post_page(&search) {
            for post in &page.data {
                prop_assert!(x::is_post_id(&post.id));
                let _ = post.plain_text();
            }
        }
    }

    #[test]
    fn positions_round_trip(
        since in 1u64..=MAX_ID,
        until in 1u64..=MAX_ID,
        newest in 1u64..=MAX_ID,
    ) {
        let after = XPosition::After(since.to_string());
        prop_assert_eq!(XPosition::parse(&after.encode()), Some(after));
        let backlog = XPosition::Backlog {
            since_id: since.to_string(),
            until_id: until.to_string(),
            newest_id: newest.to_string(),
        };
        prop_assert_eq!(XPosition::parse(&backlog.encode()), Some(backlog));
    }

    #[test]
    fn arbitrary_positions_never_panic(raw in ".{0,80}") {
        if let Some(position) = XPosition::parse(&raw) {
            prop_assert_eq!(XPosition::parse(&position.encode()), Some(position));
        }
    }

    #[test]
    fn id_order_is_numeric_order(a in any::<u64>(), b in any::<u64>()) {
        prop_assert_eq!(x::compare_ids(&a.to_string(), &b.to_string()), a.cmp(&b));
    }

    #[test]
    fn snowflake_times_round_trip(ms in 0i64..(MAX_ID >> 22) as i64, seq in 0u16..4096) {
        let at = Timestamp::from_millisecond(1_288_834_974_657 + ms).unwrap();
        prop_assert_eq!(x::snowflake_time(&snowflake_id(at, seq)), Some(at));
    }

    #[test]
    fn text_without_escapes_or_links_is_kept_as_is(text in "[^&]{0,200}") {
        prop_assert_eq!(x::expand_text(&text, None), text);
    }

    #[test]
    fn escaped_text_decodes_to_what_was_written(text in ".{0,200}") {
        let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        prop_assert_eq!(x::expand_text(&escaped, None), text);
    }
}
