//! Mastodon hashtag timelines (`GET /api/v1/timelines/tag/:hashtag`).
//!
//! The fake reproduces: `min_id` pages are the oldest `limit` statuses after `min_id`,
//! served newest first; without `min_id` the newest page; `limit` defaults to 20 and caps
//! at 40; `Link` with `rel="next"` (older, `max_id`) and `rel="prev"` (newer, `min_id`);
//! `X-RateLimit-*` on every response, Reset an ISO-8601 instant with microseconds; a 429
//! without `Retry-After`; `[]` for a disabled feed; `{"error": "..."}` bodies.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex};

use hark_shared::domain::{Cursor, Platform, Secret, Source};
use hark_shared::platforms::mastodon::{MastodonListener, compare_ids};
use hark_shared::platforms::{Listener, PlatformError, UrlError};
use jiff::SignedDuration;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{
    at, fixture, fixture_json, header, http, limits, now, query_value, query_values, requests_to,
    source, strict_http,
};

const TAG_PATH: &str = "/api/v1/timelines/tag/rustlang";
const RESET: &str = "2026-01-10T12:05:00.000000Z";

/// 24-digit ids: longer than any i64, so a client that parses them fails.
fn status_id(n: u64) -> String {
    format!("1138000000000000{n:08}")
}

/// A hashtag timeline that serves statuses the way Mastodon's `TagFeed` paginates them.
#[derive(Clone)]
struct TagTimeline {
    state: Arc<Mutex<TimelineState>>,
}

struct TimelineState {
    /// Oldest first.
    statuses: Vec<Value>,
    next: u64,
    link_header: bool,
    /// A fork that forgets to reverse `min_id` pages.
    oldest_first: bool,
}

impl TagTimeline {
    fn new() -> Self {
        TagTimeline {
            state: Arc::new(Mutex::new(TimelineState {
                statuses: Vec::new(),
                next: 1,
                link_header: true,
                oldest_first: false,
            })),
        }
    }

    fn without_link_header(self) -> Self {
        self.state.lock().unwrap().link_header = false;
        self
    }

    fn serving_pages_oldest_first(self) -> Self {
        self.state.lock().unwrap().oldest_first = true;
        self
    }

    /// Posts `n` new statuses to the tag; returns their ids, oldest first.
    fn post(&self, n: usize) -> Vec<String> {
        let template = fixture_json(fixture!("mastodon/status_template.json"));
        let mut state = self.state.lock().unwrap();
        (0..n)
            .map(|_| {
                let k = state.next;
                state.next += 1;
                let id = status_id(k);
                let mut status = template.clone();
                status["id"] = json!(id);
                status["uri"] = json!(format!("https://remote.example/users/alice/statuses/{id}"));
                status["url"] = json!(format!("https://remote.example/@alice/{id}"));
                let created = at("2026-01-10T10:00:00Z") + SignedDuration::from_secs(k as i64);
                status["created_at"] = json!(created.to_string());
                let content = status["content"].as_str().unwrap_or_default();
                status["content"] = json!(content.replace("PLACEHOLDER", &k.to_string()));
                state.statuses.push(status);
                id
            })
            .collect()
    }

    async fn mount(&self, server: &MockServer) {
        Mock::given(method("GET"))
            .and(path(TAG_PATH))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }
}

fn id_of(status: &Value) -> &str {
    status["id"].as_str().unwrap_or_default()
}

impl Respond for TagTimeline {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let state = self.state.lock().unwrap();
        let limit = query_value(request, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(20)
            .min(40);
        let after = |id: &str, bound: &Option<String>| {
            bound
                .as_deref()
                .is_none_or(|b| compare_ids(id, b) == Ordering::Greater)
        };
        let before = |id: &str, bound: &Option<String>| {
            bound
                .as_deref()
                .is_none_or(|b| compare_ids(id, b) == Ordering::Less)
        };
        let max_id = query_value(request, "max_id");
        let mut page: Vec<Value> = match query_value(request, "min_id") {
            // `paginate_by_min_id(...).reverse`: the oldest `limit` after min_id, newest first.
            Some(min_id) => {
                let mut p: Vec<Value> = state
                    .statuses
                    .iter()
                    .filter(|s| after(id_of(s), &Some(min_id.clone())) && before(id_of(s), &max_id))
                    .take(limit)
                    .cloned()
                    .collect();
                p.reverse();
                p
            }
            // `since_id` / `max_id` / nothing: the newest `limit`, newest first.
            None => {
                let since_id = query_value(request, "since_id");
                state
                    .statuses
                    .iter()
                    .rev()
                    .filter(|s| after(id_of(s), &since_id) && before(id_of(s), &max_id))
                    .take(limit)
                    .cloned()
                    .collect()
            }
        };
        if state.oldest_first {
            page.reverse();
        }
        let mut response = ResponseTemplate::new(200)
            .set_body_json(&page)
            .insert_header("X-RateLimit-Limit", "300")
            .insert_header("X-RateLimit-Remaining", "297")
            .insert_header("X-RateLimit-Reset", RESET);
        let newest = page.iter().map(id_of).max_by(|a, b| compare_ids(a, b));
        let oldest = page.iter().map(id_of).min_by(|a, b| compare_ids(a, b));
        if let (true, Some(newest), Some(oldest)) = (state.link_header, newest, oldest) {
            let base = format!(
                "{}://{}{TAG_PATH}",
                request.url.scheme(),
                request.url.authority()
            );
            response = response.insert_header(
                "Link",
                format!(
                    "<{base}?max_id={oldest}>; rel=\"next\", <{base}?min_id={newest}>; rel=\"prev\""
                ),
            );
        }
        response
    }
}

fn tag_source(server: &MockServer) -> Source {
    source(
        "rust-on-mastodon",
        Platform::Mastodon,
        json!({ "base_url": server.uri(), "query": "#rustlang" }),
    )
}

fn cursor_at(position: Option<&str>) -> Cursor {
    let mut cursor = Cursor::new("rust-on-mastodon");
    cursor.position = position.map(str::to_owned);
    cursor.version = 7;
    cursor
}

fn listener() -> MastodonListener {
    MastodonListener::new(http(), None)
}

fn native_ids(listened: &hark_shared::platforms::Listened) -> Vec<String> {
    listened
        .mentions
        .iter()
        .map(|m| m.native_id.clone())
        .collect()
}

#[tokio::test]
async fn given_a_source_never_polled_when_listening_then_only_the_newest_page_is_taken_and_the_cursor_is_its_first_id()
 {
    let server = MockServer::start().await;
    let timeline = TagTimeline::new();
    let ids = timeline.post(100);
    timeline.mount(&server).await;

    let listened = listener()
        .listen(&tag_source(&server), &cursor_at(None), limits(now(), 5))
        .await
        .unwrap();

    assert_eq!(
        native_ids(&listened),
        ids[60..].to_vec(),
        "newest 40, oldest first"
    );
    assert_eq!(listened.cursor.position.as_deref(), Some(ids[99].as_str()));
    assert_eq!(listened.cursor.version, 7, "the store owns the version");
    assert!(listened.caught_up);
    let requests = requests_to(&server, TAG_PATH).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(query_value(&requests[0], "limit").as_deref(), Some("40"));
    assert_eq!(query_value(&requests[0], "min_id"), None);
}

#[tokio::test]
async fn given_a_cursor_and_95_new_statuses_when_listening_then_pages_forward_with_min_id_without_gaps()
 {
    let server = MockServer::start().await;
    let timeline = TagTimeline::new();
    let old = timeline.post(10);
    let new = timeline.post(95);
    timeline.mount(&server).await;

    let listened = listener()
        .listen(
            &tag_source(&server),
            &cursor_at(Some(&old[9])),
            limits(now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(
        native_ids(&listened),
        new,
        "every new status once, oldest first"
    );
    assert_eq!(listened.cursor.position.as_deref(), Some(new[94].as_str()));
    assert!(listened.caught_up);
    let min_ids: Vec<Option<String>> = requests_to(&server, TAG_PATH)
        .await
        .iter()
        .map(|r| query_value(r, "min_id"))
        .collect();
    // Pages of 40, 40 and 15: each next page starts after the first (newest) id of the last.
    assert_eq!(
        min_ids,
        vec![
            Some(old[9].clone()),
            Some(new[39].clone()),
            Some(new[79].clone())
        ]
    );

    // When three more arrive, the next poll fetches exactly those.
    let newer = timeline.post(3);
    let again = listener()
        .listen(&tag_source(&server), &listened.cursor, limits(now(), 5))
        .await
        .unwrap();
    assert_eq!(native_ids(&again), newer);
    assert_eq!(again.cursor.position.as_deref(), Some(newer[2].as_str()));
    let last = requests_to(&server, TAG_PATH).await.pop().unwrap();
    assert_eq!(
        query_value(&last, "min_id").as_deref(),
        Some(new[94].as_str())
    );
}

#[tokio::test]
async fn given_more_new_statuses_than_the_page_cap_when_listening_then_not_caught_up_and_the_next_poll_continues()
 {
    let server = MockServer::start().await;
    let timeline = TagTimeline::new();
    let old = timeline.post(1);
    let new = timeline.post(95);
    timeline.mount(&server).await;

    let first = listener()
        .listen(
            &tag_source(&server),
            &cursor_at(Some(&old[0])),
            limits(now(), 2),
        )
        .await
        .unwrap();
    assert!(!first.caught_up);
    assert_eq!(native_ids(&first), new[..80].to_vec());
    assert_eq!(first.cursor.position.as_deref(), Some(new[79].as_str()));

    let second = listener()
        .listen(&tag_source(&server), &first.cursor, limits(now(), 2))
        .await
        .unwrap();
    assert!(second.caught_up);
    assert_eq!(native_ids(&second), new[80..].to_vec());
}

#[tokio::test]
async fn given_a_server_without_link_headers_when_paging_then_the_cursor_still_advances_by_the_first_id()
 {
    let server = MockServer::start().await;
    let timeline = TagTimeline::new().without_link_header();
    let old = timeline.post(1);
    let new = timeline.post(45);
    timeline.mount(&server).await;

    let listened = listener()
        .listen(
            &tag_source(&server),
            &cursor_at(Some(&old[0])),
            limits(now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(native_ids(&listened), new);
    assert_eq!(listened.cursor.position.as_deref(), Some(new[44].as_str()));
}

#[tokio::test]
async fn given_a_fork_serving_pages_oldest_first_when_listening_then_mentions_and_cursor_are_still_ordered()
 {
    let server = MockServer::start().await;
    let timeline = TagTimeline::new().serving_pages_oldest_first();
    let old = timeline.post(1);
    let new = timeline.post(50);
    timeline.mount(&server).await;

    let listened = listener()
        .listen(
            &tag_source(&server),
            &cursor_at(Some(&old[0])),
            limits(now(), 5),
        )
        .await
        .unwrap();

    assert_eq!(native_ids(&listened), new);
    assert_eq!(listened.cursor.position.as_deref(), Some(new[49].as_str()));
}

#[tokio::test]
async fn given_statuses_with_html_emoji_spoilers_and_a_reblog_when_listening_then_mentions_are_complete_and_plain()
 {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture!("mastodon/tag_timeline.json"), "application/json")
                .insert_header("X-RateLimit-Limit", "300")
                .insert_header("X-RateLimit-Remaining", "297")
                .insert_header("X-RateLimit-Reset", RESET),
        )
        .mount(&server)
        .await;

    let listened = listener()
        .listen(&tag_source(&server), &cursor_at(None), limits(now(), 5))
        .await
        .unwrap();

    let m = &listened.mentions;
    assert_eq!(
        native_ids(&listened),
        vec![
            "113800000000000102",
            "113800000000000103",
            // The reblog (113800000000000104) stands for the reblogged status.
            "113799999999999001",
            "113800000000000105",
        ]
    );
    assert_eq!(
        listened.cursor.position.as_deref(),
        Some("113800000000000105")
    );

    let alice = &m[0];
    assert_eq!(alice.platform, Platform::Mastodon);
    assert_eq!(alice.text, "New crate out #rustlang");
    assert_eq!(
        alice.url,
        "https://remote.example/@alice/113800000000000102"
    );
    assert_eq!(alice.author.handle, "alice@remote.example");
    assert_eq!(alice.author.display_name.as_deref(), Some("Alice"));
    assert_eq!(alice.author.followers, None);
    assert_eq!(alice.created_at, at("2026-01-10T12:00:01Z"));
    assert_eq!(alice.lang.as_deref(), Some("en"));
    assert_eq!(
        (
            alice.engagement.likes,
            alice.engagement.reposts,
            alice.engagement.replies
        ),
        (5, 2, 0)
    );
    assert_eq!(alice.source_id.as_deref(), Some("rust-on-mastodon"));
    assert!(alice.sentiment.is_none() && alice.campaigns.is_empty());

    let bob = &m[1];
    assert_eq!(
        bob.text,
        "Benchmarks, long\n\nErste Zeile\nzweite Zeile\n\nFazit: schneller > langsamer"
    );
    let host = url::Url::parse(&server.uri()).unwrap();
    assert_eq!(
        bob.author.handle,
        format!("bob@{}", host.host_str().unwrap()),
        "local handles are completed with the instance"
    );
    assert_eq!(bob.lang.as_deref(), Some("de"));

    let frank = &m[2];
    assert_eq!(frank.text, "J\u{2019}adore #rustlang … vraiment !");
    assert_eq!(frank.author.handle, "frank@other.example");
    assert_eq!(frank.author.followers, Some(880));
    assert_eq!(frank.url, "https://other.example/@frank/113799999999999001");
    assert_eq!(frank.lang.as_deref(), Some("fr"));
    assert_eq!(frank.created_at, at("2026-01-10T11:00:00Z"));

    let carol = &m[3];
    assert_eq!(
        carol.text,
        "Shipped it 🚀🦀 & it's fast! Read \
         https://blog.example.com/2026/01/hark-launch-notes?ref=fedi&utm=x\n\n\
         cc @dave #rustlang :ferris:"
    );
    assert_eq!(carol.author.display_name.as_deref(), Some("Carol 🦀"));
    assert_eq!(carol.author.followers, Some(15300));
    assert_eq!(
        carol.author.url.as_deref(),
        Some("https://remote.example/@carol")
    );
    assert_eq!(
        (
            carol.engagement.likes,
            carol.engagement.reposts,
            carol.engagement.replies
        ),
        (42, 7, 3)
    );

    let rl = listened.rate_limit.expect("rate limit headers are read");
    assert_eq!((rl.limit, rl.remaining), (Some(300), Some(297)));
    assert_eq!(rl.wait_from(now()), Some(SignedDuration::from_secs(300)));
}

#[tokio::test]
async fn given_several_hashtags_when_listening_then_the_first_is_the_path_and_the_rest_are_any_tags()
 {
    let server = MockServer::start().await;
    TagTimeline::new().mount(&server).await;
    let src = source(
        "tags",
        Platform::Mastodon,
        json!({ "base_url": format!("{}/", server.uri()), "query": "(#RustLang OR #hark) -#hiring #ferris #wasm #extra" }),
    );

    listener()
        .listen(&src, &cursor_at(None), limits(now(), 1))
        .await
        .unwrap();

    let requests = requests_to(&server, TAG_PATH).await;
    assert_eq!(
        requests.len(),
        1,
        "path tag lowercased, base URL slash ignored"
    );
    assert_eq!(
        query_values(&requests[0], "any[]"),
        vec!["hark", "ferris", "wasm"],
        "at most 4 tags in total, exclusions skipped"
    );
}

#[tokio::test]
async fn given_a_query_without_hashtags_when_listening_then_permanent_configuration_error_and_no_request()
 {
    let server = MockServer::start().await;
    let src = source(
        "words",
        Platform::Mastodon,
        json!({ "base_url": server.uri(), "query": "hark OR harkapp" }),
    );

    let err = listener()
        .listen(&src, &cursor_at(None), limits(now(), 1))
        .await
        .unwrap_err();

    match err {
        PlatformError::Permanent {
            status: None,
            message,
            ..
        } => {
            assert!(
                message.contains("words") && message.contains("#hashtag"),
                "{message}"
            )
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn given_a_disabled_tag_feed_when_listening_then_no_mentions_and_the_cursor_stays() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture!("mastodon/disabled_feed.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let cursor = cursor_at(Some("113800000000000102"));

    let listened = listener()
        .listen(&tag_source(&server), &cursor, limits(now(), 5))
        .await
        .unwrap();

    assert!(listened.mentions.is_empty());
    assert_eq!(listened.cursor, cursor);
    assert!(listened.caught_up);
}

async fn error_server(status: u16, body: &'static [u8], content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .respond_with(
            ResponseTemplate::new(status)
                .set_body_raw(body, content_type)
                .insert_header("X-RateLimit-Limit", "300")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", RESET),
        )
        .mount(&server)
        .await;
    server
}

async fn listen_err(server: &MockServer) -> PlatformError {
    listener()
        .listen(&tag_source(server), &cursor_at(Some("1")), limits(now(), 5))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn given_an_unknown_hashtag_when_listening_then_permanent_with_mastodons_message() {
    let server = error_server(
        404,
        fixture!("mastodon/error_not_found.json"),
        "application/json",
    )
    .await;
    match listen_err(&server).await {
        PlatformError::Permanent {
            platform: Platform::Mastodon,
            status: Some(404),
            message,
        } => assert_eq!(message, "Record not found"),
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn given_an_invalid_token_when_listening_then_auth_expired_with_mastodons_message() {
    let server = error_server(
        401,
        fixture!("mastodon/error_unauthorized.json"),
        "application/json",
    )
    .await;
    match listen_err(&server).await {
        PlatformError::AuthExpired { message, .. } => {
            assert_eq!(message, "The access token is invalid")
        }
        other => panic!("expected AuthExpired, got {other:?}"),
    }
}

#[tokio::test]
async fn given_a_429_with_only_x_ratelimit_reset_when_listening_then_retryable_until_the_reset() {
    let server = error_server(
        429,
        fixture!("mastodon/error_rate_limited.json"),
        "application/json",
    )
    .await;
    let err = listen_err(&server).await;
    assert!(err.is_retryable(), "{err:?}");
    // Reset 12:05:00 and now 12:00:00; Mastodon sends no Retry-After.
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(300)));
    assert!(err.to_string().contains("Too many requests"), "{err}");
}

#[tokio::test]
async fn given_an_overloaded_instance_when_listening_then_retryable_with_the_proxys_words() {
    let server = error_server(
        503,
        fixture!("mastodon/error_unavailable.html"),
        "text/html",
    )
    .await;
    let err = listen_err(&server).await;
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.to_string()
            .contains("503 Service Temporarily Unavailable"),
        "{err}"
    );
    assert!(
        !err.to_string().contains('<'),
        "no markup in messages: {err}"
    );
}

#[tokio::test]
async fn given_malformed_json_when_listening_then_malformed_and_nothing_is_used() {
    for body in [
        fixture!("mastodon/malformed_truncated.json"),
        fixture!("mastodon/malformed_wrong_shape.json"),
    ] {
        let server = error_server(200, body, "application/json").await;
        match listen_err(&server).await {
            PlatformError::Malformed { detail, .. } => {
                assert!(detail.contains("timeline page"), "{detail}")
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn given_a_failure_on_a_later_page_when_listening_then_the_error_is_returned_and_the_stored_cursor_is_untouched()
 {
    // Page 1 is full, page 2 fails: the caller keeps its cursor, so the next poll asks for
    // page 1 again and nothing is skipped.
    let server = MockServer::start().await;
    let timeline = TagTimeline::new();
    let old = timeline.post(1);
    let new = timeline.post(45);
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .and(wiremock::matchers::query_param("min_id", new[39].as_str()))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&server)
        .await;
    timeline.mount(&server).await;

    let err = listener()
        .listen(
            &tag_source(&server),
            &cursor_at(Some(&old[0])),
            limits(now(), 5),
        )
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(requests_to(&server, TAG_PATH).await.len(), 2);
}

#[tokio::test]
async fn given_a_token_when_listening_then_it_is_sent_as_bearer_and_only_then() {
    let server = MockServer::start().await;
    TagTimeline::new().mount(&server).await;

    MastodonListener::new(http(), Some(Secret::new("read-token-123")))
        .listen(&tag_source(&server), &cursor_at(None), limits(now(), 1))
        .await
        .unwrap();
    listener()
        .listen(&tag_source(&server), &cursor_at(None), limits(now(), 1))
        .await
        .unwrap();

    let requests = requests_to(&server, TAG_PATH).await;
    assert_eq!(
        header(&requests[0], "authorization").as_deref(),
        Some("Bearer read-token-123")
    );
    assert_eq!(header(&requests[1], "authorization"), None);
}

#[tokio::test]
async fn given_a_loopback_instance_when_private_urls_are_not_allowed_then_refused_before_any_request()
 {
    let server = MockServer::start().await;
    TagTimeline::new().mount(&server).await;

    let err = MastodonListener::new(strict_http(), None)
        .listen(&tag_source(&server), &cursor_at(None), limits(now(), 1))
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            PlatformError::Url {
                platform: Platform::Mastodon,
                source: UrlError::Private { .. }
            }
        ),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
