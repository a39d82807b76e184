//! RSS / Atom feeds with conditional GET.
//!
//! The fake reproduces RFC 9110 conditional requests: a 200 carries `ETag` and
//! `Last-Modified` (when the feed has them); `If-None-Match` is evaluated first (weak
//! comparison, `W/` allowed) and, when present, `If-Modified-Since` is ignored; otherwise
//! `If-Modified-Since` at or after `Last-Modified` gives a 304 with an empty body; a feed
//! may change its ETag without changing its content, or send no validators at all;
//! `Retry-After` in seconds or as an HTTP date on 429/503; 404 and 410 for feeds that are
//! gone.

use std::sync::{Arc, Mutex};

use hark_shared::domain::{Cursor, Platform, Source};
use hark_shared::platforms::ratelimit::parse_http_date;
use hark_shared::platforms::rss::{RssListener, RssPosition};
use hark_shared::platforms::{Listened, Listener, PlatformError, UrlError};
use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{at, fixture, header, http, limits, now, requests_to, source, strict_http};

const FEED_PATH: &str = "/alerts/feed.xml";
const LAST_MODIFIED: &str = "Sat, 10 Jan 2026 12:00:00 GMT";

/// One feed document and its validators, served with conditional-GET semantics.
#[derive(Clone)]
struct FeedServer {
    state: Arc<Mutex<FeedState>>,
}

struct FeedState {
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl FeedServer {
    fn new(body: &[u8], etag: Option<&str>, last_modified: Option<&str>) -> Self {
        FeedServer {
            state: Arc::new(Mutex::new(FeedState {
                body: body.to_vec(),
                etag: etag.map(str::to_owned),
                last_modified: last_modified.map(str::to_owned),
            })),
        }
    }

    fn publish(&self, body: &[u8], etag: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        state.body = body.to_vec();
        state.etag = etag.map(str::to_owned);
    }

    async fn mount(&self, server: &MockServer) {
        Mock::given(method("GET"))
            .and(path(FEED_PATH))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }
}

fn opaque(tag: &str) -> &str {
    tag.trim().trim_start_matches("W/")
}

impl Respond for FeedServer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let state = self.state.lock().unwrap();
        let not_modified = match header(request, "if-none-match") {
            // If-None-Match wins; If-Modified-Since is then ignored (RFC 9110 §13.1.3).
            Some(tags) => state.etag.as_deref().is_some_and(|current| {
                tags.split(',')
                    .any(|t| t.trim() == "*" || opaque(t) == opaque(current))
            }),
            None => match (
                header(request, "if-modified-since")
                    .as_deref()
                    .and_then(parse_http_date),
                state.last_modified.as_deref().and_then(parse_http_date),
            ) {
                (Some(since), Some(modified)) => since >= modified,
                _ => false,
            },
        };
        let mut response = if not_modified {
            ResponseTemplate::new(304)
        } else {
            ResponseTemplate::new(200).set_body_raw(state.body.clone(), "application/atom+xml")
        };
        if let Some(etag) = &state.etag {
            response = response.insert_header("ETag", etag.as_str());
        }
        if let (false, Some(lm)) = (not_modified, &state.last_modified) {
            response = response.insert_header("Last-Modified", lm.as_str());
        }
        response
    }
}

fn feed_source(server: &MockServer) -> Source {
    source(
        "brand-alerts",
        Platform::Rss,
        json!({ "url": format!("{}{FEED_PATH}", server.uri()) }),
    )
}

fn listener() -> RssListener {
    RssListener::new(http())
}

async fn poll(server: &MockServer, cursor: &Cursor) -> Listened {
    listener()
        .listen(&feed_source(server), cursor, limits(now(), 1))
        .await
        .unwrap()
}

fn texts(listened: &Listened) -> Vec<&str> {
    listened.mentions.iter().map(|m| m.text.as_str()).collect()
}

#[tokio::test]
async fn given_a_google_alerts_feed_when_listening_then_links_are_unwrapped_text_is_plain_and_validators_are_kept()
 {
    let server = MockServer::start().await;
    FeedServer::new(
        fixture!("rss/google_alerts.atom.xml"),
        Some("\"v1\""),
        Some(LAST_MODIFIED),
    )
    .mount(&server)
    .await;
    let mut cursor = Cursor::new("brand-alerts");
    cursor.version = 9;

    let listened = poll(&server, &cursor).await;

    assert_eq!(
        texts(&listened),
        vec![
            "Why Example Brand's fans love it 😍 & more\n\n\
             Fans of Example Brand say \"it just works\" — 🎉\nRead on…",
            "Example Brand launches scheduler\n\nExample Brand today announced ...",
        ],
        "oldest first, no markup, entities decoded"
    );
    let (fans, launch) = (&listened.mentions[0], &listened.mentions[1]);
    assert_eq!(launch.url, "https://news.example.com/launch");
    assert_eq!(fans.url, "https://blog.example.org/2026/01/fans?src=rss");
    assert_eq!(
        launch.author.handle, "news.example.com",
        "empty author: the site"
    );
    assert_eq!(launch.created_at, at("2026-01-10T12:00:00Z"));
    assert_eq!(fans.created_at, at("2026-01-10T09:30:00Z"));
    assert_eq!(launch.platform, Platform::Rss);
    assert_eq!(launch.source_id.as_deref(), Some("brand-alerts"));
    assert_eq!(launch.native_id.len(), 16);
    assert!(launch.native_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(launch.native_id, fans.native_id);

    assert_eq!(listened.cursor.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        listened.cursor.last_modified.as_deref(),
        Some(LAST_MODIFIED)
    );
    assert_eq!(listened.cursor.version, 9);
    assert!(listened.caught_up);

    // The same entries get the same ids on a fresh poll: ids are derived, not generated.
    let again = poll(&server, &Cursor::new("brand-alerts")).await;
    let ids = |l: &Listened| {
        l.mentions
            .iter()
            .map(|m| m.native_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&listened));
}

#[tokio::test]
async fn given_stored_validators_when_the_feed_is_unchanged_then_both_are_sent_and_a_304_changes_nothing()
 {
    let server = MockServer::start().await;
    FeedServer::new(
        fixture!("rss/google_alerts.atom.xml"),
        Some("W/\"v1\""),
        Some(LAST_MODIFIED),
    )
    .mount(&server)
    .await;
    let first = poll(&server, &Cursor::new("brand-alerts")).await;

    let second = poll(&server, &first.cursor).await;

    let request = requests_to(&server, FEED_PATH).await.pop().unwrap();
    assert_eq!(
        header(&request, "if-none-match").as_deref(),
        Some("W/\"v1\"")
    );
    assert_eq!(
        header(&request, "if-modified-since").as_deref(),
        Some(LAST_MODIFIED),
        "sent verbatim"
    );
    assert!(second.mentions.is_empty());
    assert_eq!(second.cursor, first.cursor);
    assert!(second.caught_up);
}

#[tokio::test]
async fn given_only_last_modified_when_the_feed_is_unchanged_then_if_modified_since_gives_a_304() {
    let server = MockServer::start().await;
    FeedServer::new(
        fixture!("rss/google_alerts.atom.xml"),
        None,
        Some(LAST_MODIFIED),
    )
    .mount(&server)
    .await;
    let first = poll(&server, &Cursor::new("brand-alerts")).await;
    assert_eq!(first.cursor.etag, None);

    let second = poll(&server, &first.cursor).await;

    let request = requests_to(&server, FEED_PATH).await.pop().unwrap();
    assert_eq!(header(&request, "if-none-match"), None);
    assert!(second.mentions.is_empty());
    assert_eq!(second.cursor, first.cursor);
}

#[tokio::test]
async fn given_a_new_etag_on_unchanged_content_when_listening_then_no_mention_is_sent_again() {
    let server = MockServer::start().await;
    let feed = FeedServer::new(
        fixture!("rss/google_alerts.atom.xml"),
        Some("\"v1\""),
        Some(LAST_MODIFIED),
    );
    feed.mount(&server).await;
    let first = poll(&server, &Cursor::new("brand-alerts")).await;
    assert_eq!(first.mentions.len(), 2);

    feed.publish(fixture!("rss/google_alerts.atom.xml"), Some("\"v2\""));
    let second = poll(&server, &first.cursor).await;

    assert!(second.mentions.is_empty(), "{:?}", texts(&second));
    assert_eq!(second.cursor.etag.as_deref(), Some("\"v2\""));
}

#[tokio::test]
async fn given_a_feed_without_ids_dates_or_validators_when_polled_again_then_only_the_new_entry_comes()
 {
    let server = MockServer::start().await;
    let feed = FeedServer::new(fixture!("rss/blog.rss.xml"), None, None);
    feed.mount(&server).await;

    let first = poll(&server, &Cursor::new("brand-alerts")).await;
    assert_eq!(
        texts(&first),
        vec![
            "Changelog\n\nFixed bugs.",
            "Roadmap notes\n\nWhat comes next: listening & publishing.",
            "Hark 1.0 & friends\n\nWe shipped Hark 1.0 🚀\n\nDetails → inside…",
        ]
    );
    let hark = &first.mentions[2];
    assert_eq!(hark.url, "https://vendor.example.com/posts/hark-1-0");
    assert_eq!(hark.author.handle, "Dana Writer");
    assert_eq!(
        hark.lang.as_deref(),
        Some("en"),
        "from <language>en-us</language>"
    );
    assert_eq!(
        hark.created_at,
        now(),
        "undated entries are dated when first seen"
    );
    assert_eq!(
        first.mentions[1].url,
        format!("{}/posts/roadmap", server.uri()),
        "relative links resolve against the feed URL"
    );
    assert_eq!(
        first.mentions[0].url,
        format!("{}{FEED_PATH}", server.uri()),
        "an entry without a link points at its feed"
    );

    let second = poll(&server, &first.cursor).await;
    assert!(second.mentions.is_empty(), "{:?}", texts(&second));

    feed.publish(fixture!("rss/blog_with_new_item.rss.xml"), None);
    let third = poll(&server, &second.cursor).await;
    assert_eq!(texts(&third), vec!["Hark 1.1 is out\n\nFaster everything."]);
}

#[tokio::test]
async fn given_a_feed_that_regenerates_guids_when_polled_again_then_entries_are_recognised_by_link_and_title()
 {
    let item = |guid: &str| {
        format!(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
            <item><title>Stable title</title><link>https://vendor.example.com/a</link>
            <guid isPermaLink="false">{guid}</guid><pubDate>Sat, 10 Jan 2026 11:00:00 GMT</pubDate></item>
            </channel></rss>"#
        )
    };
    let server = MockServer::start().await;
    let feed = FeedServer::new(item("session-1111").as_bytes(), None, None);
    feed.mount(&server).await;
    let first = poll(&server, &Cursor::new("brand-alerts")).await;
    assert_eq!(first.mentions.len(), 1);

    feed.publish(item("session-2222").as_bytes(), None);
    let second = poll(&server, &first.cursor).await;

    assert!(second.mentions.is_empty());
}

#[tokio::test]
async fn given_entries_older_than_the_date_overlap_when_their_keys_were_forgotten_then_they_are_skipped()
 {
    let server = MockServer::start().await;
    FeedServer::new(fixture!("rss/google_alerts.atom.xml"), None, None)
        .mount(&server)
        .await;
    let mut cursor = Cursor::new("brand-alerts");
    let newest = at("2026-01-20T00:00:00Z").as_second();
    cursor.position = Some(
        serde_json::to_string(&RssPosition {
            seen: vec![],
            newest: Some(newest),
        })
        .unwrap(),
    );

    let listened = listener()
        .listen(
            &feed_source(&server),
            &cursor,
            limits(at("2026-01-20T00:00:00Z"), 1),
        )
        .await
        .unwrap();

    assert!(listened.mentions.is_empty(), "{:?}", texts(&listened));
}

#[tokio::test]
async fn given_an_unreadable_cursor_position_when_listening_then_entries_come_again_with_the_same_ids()
 {
    let server = MockServer::start().await;
    FeedServer::new(fixture!("rss/google_alerts.atom.xml"), None, None)
        .mount(&server)
        .await;
    let first = poll(&server, &Cursor::new("brand-alerts")).await;
    let mut broken = first.cursor.clone();
    broken.position = Some("{not json".to_owned());

    let again = poll(&server, &broken).await;

    let ids = |l: &Listened| {
        l.mentions
            .iter()
            .map(|m| m.native_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&again),
        ids(&first),
        "the mention dedupe drops them downstream"
    );
}

async fn failing(response: ResponseTemplate) -> PlatformError {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(FEED_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    listener()
        .listen(
            &feed_source(&server),
            &Cursor::new("brand-alerts"),
            limits(now(), 1),
        )
        .await
        .unwrap_err()
}

#[tokio::test]
async fn given_a_429_with_retry_after_seconds_when_listening_then_retryable_after_that_long() {
    let err = failing(ResponseTemplate::new(429).insert_header("Retry-After", "120")).await;
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(120)));
}

#[tokio::test]
async fn given_a_503_with_an_http_date_retry_after_when_listening_then_retryable_until_that_date() {
    let err = failing(
        ResponseTemplate::new(503)
            .insert_header("Retry-After", "Sat, 10 Jan 2026 12:01:30 GMT")
            .set_body_string("<html><body>Down for maintenance</body></html>"),
    )
    .await;
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(90)));
}

#[tokio::test]
async fn given_a_missing_or_removed_feed_when_listening_then_permanent() {
    for (status, words) in [(404, "not found"), (410, "removed")] {
        match failing(ResponseTemplate::new(status).set_body_string("<html>gone</html>")).await {
            PlatformError::Permanent {
                platform: Platform::Rss,
                status: Some(s),
                message,
            } => {
                assert_eq!(s, status);
                assert!(message.contains(words), "{message}");
            }
            other => panic!("expected Permanent, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn given_malformed_xml_or_an_html_page_when_listening_then_malformed_and_the_cursor_is_not_touched()
 {
    for body in [
        fixture!("rss/malformed_truncated.xml"),
        fixture!("rss/not_a_feed.html"),
    ] {
        let err = failing(ResponseTemplate::new(200).set_body_raw(body, "application/xml")).await;
        match err {
            PlatformError::Malformed { detail, .. } => {
                assert!(
                    detail.contains("not a valid RSS, Atom or JSON feed"),
                    "{detail}"
                )
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn given_a_loopback_feed_url_when_private_urls_are_not_allowed_then_refused_before_any_request()
 {
    let server = MockServer::start().await;
    FeedServer::new(fixture!("rss/google_alerts.atom.xml"), None, None)
        .mount(&server)
        .await;

    let err = RssListener::new(strict_http())
        .listen(
            &feed_source(&server),
            &Cursor::new("brand-alerts"),
            limits(now(), 1),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            PlatformError::Url {
                platform: Platform::Rss,
                source: UrlError::Private { .. }
            }
        ),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
