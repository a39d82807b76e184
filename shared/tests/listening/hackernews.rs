//! Hacker News through Algolia's `GET /api/v1/search_by_date`.
//!
//! The fake reproduces: results newest first; `numericFilters` on `created_at_i` (whole
//! seconds; comma = AND); `tags=(story,comment)` (parentheses = OR); `hitsPerPage` and
//! 0-based `page` with `nbPages`; a page past the end is empty; errors as
//! `{"message": "..."}` with the status code; no rate-limit headers.

use std::sync::{Arc, Mutex};

use hark_shared::domain::{Cursor, Platform, Source};
use hark_shared::platforms::hackernews::{HackerNewsListener, HackerNewsPosition};
use hark_shared::platforms::{Listened, Listener, PlatformError, UrlError};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{
    at, fixture, fixture_json, http, limits, query_value, requests_to, source, strict_http,
};

const SEARCH_PATH: &str = "/api/v1/search_by_date";

/// "Now" for these tests: ten minutes after the newest fixture hit.
fn hn_now() -> Timestamp {
    at("2026-01-10T12:15:00Z")
}

/// Algolia's HN index, as far as `search_by_date` shows it.
#[derive(Clone, Default)]
struct HnIndex {
    hits: Arc<Mutex<Vec<Value>>>,
}

impl HnIndex {
    fn with_fixture() -> Self {
        let index = HnIndex::default();
        let page = fixture_json(fixture!("hackernews/search_by_date.json"));
        index
            .hits
            .lock()
            .unwrap()
            .extend(page["hits"].as_array().cloned().unwrap_or_default());
        index
    }

    /// Adds a comment created at `created_at_i`; returns its objectID.
    fn comment(&self, object_id: u64, created_at_i: i64) -> String {
        let page = fixture_json(fixture!("hackernews/search_by_date.json"));
        let mut hit = page["hits"][2].clone();
        let id = object_id.to_string();
        hit["objectID"] = json!(id);
        hit["created_at_i"] = json!(created_at_i);
        hit["comment_text"] = json!(format!("Comment {id} about <i>hark</i>"));
        self.hits.lock().unwrap().push(hit);
        id
    }

    async fn mount(&self, server: &MockServer) {
        Mock::given(method("GET"))
            .and(path(SEARCH_PATH))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }
}

/// Reads `created_at_i>=X` / `created_at_i<=Y` (comma = AND) into bounds.
fn numeric_bounds(filters: &str) -> Result<(i64, i64), String> {
    let mut bounds = (i64::MIN, i64::MAX);
    for filter in filters.split(',') {
        if let Some(v) = filter.strip_prefix("created_at_i>=") {
            bounds.0 = v.parse().map_err(|_| filter.to_owned())?;
        } else if let Some(v) = filter.strip_prefix("created_at_i<=") {
            bounds.1 = v.parse().map_err(|_| filter.to_owned())?;
        } else {
            return Err(filter.to_owned());
        }
    }
    Ok(bounds)
}

impl Respond for HnIndex {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let filters = query_value(request, "numericFilters").unwrap_or_default();
        let (low, high) = match numeric_bounds(&filters) {
            Ok(b) => b,
            Err(bad) => {
                return ResponseTemplate::new(400).set_body_json(
                    json!({ "message": format!("invalid numeric filter: {bad}"), "status": 400 }),
                );
            }
        };
        let per_page = query_value(request, "hitsPerPage")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20)
            .clamp(1, 1000);
        let page = query_value(request, "page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let wanted_tags = query_value(request, "tags").unwrap_or_default();
        let mut hits: Vec<Value> = self
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| {
                let t = h["created_at_i"].as_i64().unwrap_or_default();
                let tags: Vec<&str> = h["_tags"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let kind_ok = wanted_tags != "(story,comment)"
                    || tags.contains(&"story")
                    || tags.contains(&"comment");
                (low..=high).contains(&t) && kind_ok
            })
            .cloned()
            .collect();
        hits.sort_by(|a, b| {
            b["created_at_i"]
                .as_i64()
                .cmp(&a["created_at_i"].as_i64())
                .then_with(|| {
                    b["objectID"]
                        .as_str()
                        .unwrap_or_default()
                        .cmp(a["objectID"].as_str().unwrap_or_default())
                })
        });
        let nb_hits = hits.len();
        let nb_pages = nb_hits.div_ceil(per_page);
        let slice: Vec<Value> = hits
            .into_iter()
            .skip(page * per_page)
            .take(per_page)
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "hits": slice,
            "nbHits": nb_hits,
            "page": page,
            "nbPages": nb_pages,
            "hitsPerPage": per_page,
            "exhaustiveNbHits": true,
            "processingTimeMS": 1,
            "query": query_value(request, "query").unwrap_or_default(),
            "params": request.url.query().unwrap_or_default(),
        }))
    }
}

fn hn_source(server: &MockServer) -> Source {
    source(
        "hn-hark",
        Platform::Hackernews,
        json!({ "base_url": server.uri(), "query": "hark" }),
    )
}

fn listener() -> HackerNewsListener {
    HackerNewsListener::new(http())
}

fn ids(listened: &Listened) -> Vec<String> {
    listened
        .mentions
        .iter()
        .map(|m| m.native_id.clone())
        .collect()
}

fn position(listened: &Listened) -> HackerNewsPosition {
    serde_json::from_str(listened.cursor.position.as_deref().unwrap()).unwrap()
}

#[tokio::test]
async fn given_a_new_source_when_listening_then_the_documented_query_is_sent_and_mentions_are_plain_and_complete()
 {
    let server = MockServer::start().await;
    HnIndex::with_fixture().mount(&server).await;
    let mut cursor = Cursor::new("hn-hark");
    cursor.version = 3;

    let listened = listener()
        .listen(&hn_source(&server), &cursor, limits(hn_now(), 5))
        .await
        .unwrap();

    let requests = requests_to(&server, SEARCH_PATH).await;
    assert_eq!(requests.len(), 1);
    let q = |name| query_value(&requests[0], name);
    assert_eq!(q("query").as_deref(), Some("hark"));
    assert_eq!(q("tags").as_deref(), Some("(story,comment)"));
    let first_since = hn_now().as_second() - 3600;
    assert_eq!(
        q("numericFilters"),
        Some(format!("created_at_i>={first_since}"))
    );
    assert_eq!(q("hitsPerPage").as_deref(), Some("100"));
    assert_eq!(q("page").as_deref(), Some("0"));

    assert_eq!(
        ids(&listened),
        vec!["42600001", "42600123", "42600125", "42600130"]
    );
    let m = &listened.mentions;
    let story = &m[0];
    assert_eq!(story.platform, Platform::Hackernews);
    assert_eq!(
        story.text,
        "Show HN: A tiny social scheduler\nhttps://example.com/scheduler"
    );
    assert_eq!(story.url, "https://news.ycombinator.com/item?id=42600001");
    assert_eq!(story.author.handle, "maker");
    assert_eq!(
        story.author.url.as_deref(),
        Some("https://news.ycombinator.com/user?id=maker")
    );
    assert_eq!(
        story.created_at,
        Timestamp::from_second(1_768_045_200).unwrap()
    );
    assert_eq!(
        (story.engagement.likes, story.engagement.replies),
        (187, 64)
    );
    assert_eq!(story.source_id.as_deref(), Some("hn-hark"));
    assert!(story.lang.is_none() && story.sentiment.is_none() && story.campaigns.is_empty());

    assert_eq!(
        m[1].text,
        "We moved our poller to Rust and cut costs in half."
    );
    assert_eq!(
        m[2].text,
        "Ask HN: Is anyone using hark for social listening?\n\
         We evaluate tools & would like real experiences.\n\nThanks!"
    );
    assert_eq!(
        m[3].text,
        "I'd love this 😍🔥 — we tried three schedulers.\n\n\
         See https://example.com/bench/results?run=7&os=linux\n\n> quoted \"hark\" text"
    );

    assert!(listened.caught_up);
    assert!(
        listened.rate_limit.is_none(),
        "Algolia sends no rate-limit headers"
    );
    assert_eq!(listened.cursor.version, 3);
    let pos = position(&listened);
    assert_eq!(pos.since, 1_768_046_700 - 600, "overlap of 10 minutes");
    assert_eq!(pos.newest, Some(1_768_046_700));
    let mut seen: Vec<&str> = pos.seen.iter().map(|(id, _)| id.as_str()).collect();
    seen.sort();
    assert_eq!(seen, vec!["42600123", "42600125", "42600130"]);
}

#[tokio::test]
async fn given_late_indexed_and_repeated_hits_in_the_overlap_when_listening_again_then_only_unseen_ones_come()
 {
    let server = MockServer::start().await;
    let index = HnIndex::with_fixture();
    index.mount(&server).await;
    let first = listener()
        .listen(
            &hn_source(&server),
            &Cursor::new("hn-hark"),
            limits(hn_now(), 5),
        )
        .await
        .unwrap();

    // One new comment, and one posted before the newest seen item but indexed late.
    let new = index.comment(42_600_140, 1_768_046_900);
    let late = index.comment(42_600_124, 1_768_046_450);
    let second = listener()
        .listen(&hn_source(&server), &first.cursor, limits(hn_now(), 5))
        .await
        .unwrap();

    assert_eq!(ids(&second), vec![late, new]);
    let last = requests_to(&server, SEARCH_PATH).await.pop().unwrap();
    assert_eq!(
        query_value(&last, "numericFilters"),
        Some(format!("created_at_i>={}", 1_768_046_700 - 600))
    );
    assert_eq!(second.mentions[1].text, "Comment 42600140 about hark");
}

#[tokio::test]
async fn given_250_hits_when_listening_then_pages_until_nb_pages_and_returns_each_once_oldest_first()
 {
    let server = MockServer::start().await;
    let index = HnIndex::default();
    let base = hn_now().as_second() - 3000;
    let expected: Vec<String> = (0..250)
        .map(|i| index.comment(43_000_000 + i, base + i as i64 * 7))
        .collect();
    index.mount(&server).await;

    let listened = listener()
        .listen(
            &hn_source(&server),
            &Cursor::new("hn-hark"),
            limits(hn_now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(ids(&listened), expected);
    assert!(listened.caught_up);
    let pages: Vec<Option<String>> = requests_to(&server, SEARCH_PATH)
        .await
        .iter()
        .map(|r| query_value(r, "page"))
        .collect();
    assert_eq!(
        pages,
        vec![Some("0".into()), Some("1".into()), Some("2".into())]
    );
}

#[tokio::test]
async fn given_more_hits_than_the_page_cap_when_listening_then_not_caught_up_and_the_next_polls_finish_the_window_without_repeats()
 {
    let server = MockServer::start().await;
    let index = HnIndex::default();
    let base = hn_now().as_second() - 3000;
    let expected: Vec<String> = (0..250)
        .map(|i| index.comment(43_000_000 + i, base + i as i64 * 7))
        .collect();
    index.mount(&server).await;

    let first = listener()
        .listen(
            &hn_source(&server),
            &Cursor::new("hn-hark"),
            limits(hn_now(), 2),
        )
        .await
        .unwrap();
    assert!(!first.caught_up);
    assert_eq!(ids(&first), expected[50..].to_vec(), "the newest 200");
    let until = position(&first).until;
    assert_eq!(until, Some(base + 50 * 7), "bounded by the oldest fetched");

    let second = listener()
        .listen(&hn_source(&server), &first.cursor, limits(hn_now(), 2))
        .await
        .unwrap();
    assert!(second.caught_up);
    assert_eq!(
        ids(&second),
        expected[..50].to_vec(),
        "the rest, no repeats"
    );
    let request = requests_to(&server, SEARCH_PATH).await.pop().unwrap();
    assert_eq!(
        query_value(&request, "numericFilters"),
        Some(format!(
            "created_at_i>={},created_at_i<={}",
            hn_now().as_second() - 3600,
            base + 50 * 7
        ))
    );

    // Back to normal windows: nothing new, nothing repeated.
    let third = listener()
        .listen(&hn_source(&server), &second.cursor, limits(hn_now(), 2))
        .await
        .unwrap();
    assert!(third.caught_up);
    assert!(third.mentions.is_empty(), "{:?}", ids(&third));
    assert_eq!(position(&third).until, None);
}

#[tokio::test]
async fn given_an_empty_result_when_listening_then_no_mentions_and_the_window_stays() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture!("hackernews/empty_page.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let mut cursor = Cursor::new("hn-hark");
    cursor.position = Some(r#"{"since":1768040000,"seen":[]}"#.to_owned());

    let listened = listener()
        .listen(&hn_source(&server), &cursor, limits(hn_now(), 5))
        .await
        .unwrap();

    assert!(listened.mentions.is_empty() && listened.caught_up);
    assert_eq!(position(&listened).since, 1_768_040_000);
}

#[tokio::test]
async fn given_an_unreadable_cursor_position_when_listening_then_it_restarts_from_the_initial_lookback()
 {
    let server = MockServer::start().await;
    HnIndex::with_fixture().mount(&server).await;
    let mut cursor = Cursor::new("hn-hark");
    cursor.position = Some("42600001".to_owned());

    let listened = listener()
        .listen(&hn_source(&server), &cursor, limits(hn_now(), 5))
        .await
        .unwrap();

    assert_eq!(listened.mentions.len(), 4);
    let request = &requests_to(&server, SEARCH_PATH).await[0];
    assert_eq!(
        query_value(request, "numericFilters"),
        Some(format!("created_at_i>={}", hn_now().as_second() - 3600))
    );
}

async fn failing(status: u16, body: &'static [u8], retry_after: Option<&str>) -> PlatformError {
    let server = MockServer::start().await;
    let mut response = ResponseTemplate::new(status).set_body_raw(body, "application/json");
    if let Some(v) = retry_after {
        response = response.insert_header("Retry-After", v);
    }
    Mock::given(method("GET"))
        .and(path(SEARCH_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    listener()
        .listen(
            &hn_source(&server),
            &Cursor::new("hn-hark"),
            limits(hn_now(), 5),
        )
        .await
        .unwrap_err()
}

#[tokio::test]
async fn given_a_429_without_headers_when_listening_then_retryable_with_no_promised_time() {
    let err = failing(429, fixture!("hackernews/error_rate_limited.json"), None).await;
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.retry_after(), None, "Algolia documents no reset header");
    assert!(err.to_string().contains("Too many requests"), "{err}");
}

#[tokio::test]
async fn given_a_429_with_retry_after_when_listening_then_it_is_honoured() {
    let err = failing(
        429,
        fixture!("hackernews/error_rate_limited.json"),
        Some("120"),
    )
    .await;
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(120)));
}

#[tokio::test]
async fn given_a_server_error_when_listening_then_retryable() {
    let err = failing(502, b"{\"message\":\"Bad gateway\"}", None).await;
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn given_a_rejected_query_when_listening_then_permanent_with_algolias_message() {
    match failing(400, fixture!("hackernews/error_bad_request.json"), None).await {
        PlatformError::Permanent {
            platform: Platform::Hackernews,
            status: Some(400),
            message,
        } => assert_eq!(message, "invalid numeric filter: created_at_i>=soon"),
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn given_malformed_json_when_listening_then_malformed() {
    for body in [
        fixture!("hackernews/malformed_truncated.json"),
        fixture!("hackernews/malformed_wrong_shape.json"),
    ] {
        match failing(200, body, None).await {
            PlatformError::Malformed { detail, .. } => {
                assert!(detail.contains("search page"), "{detail}")
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn given_a_source_without_query_when_listening_then_permanent_and_no_request() {
    let server = MockServer::start().await;
    let src = source(
        "hn-empty",
        Platform::Hackernews,
        json!({ "base_url": server.uri() }),
    );
    let err = listener()
        .listen(&src, &Cursor::new("hn-empty"), limits(hn_now(), 5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::Permanent { status: None, .. }),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn given_a_loopback_base_url_when_private_urls_are_not_allowed_then_refused_before_any_request()
 {
    let server = MockServer::start().await;
    HnIndex::with_fixture().mount(&server).await;

    let err = HackerNewsListener::new(strict_http())
        .listen(
            &hn_source(&server),
            &Cursor::new("hn-hark"),
            limits(hn_now(), 5),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            PlatformError::Url {
                platform: Platform::Hackernews,
                source: UrlError::Private { .. }
            }
        ),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
