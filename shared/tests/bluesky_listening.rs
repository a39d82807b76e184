//! Bluesky listening (`app.bsky.feed.searchPosts`) against the reusable stateful fake PDS
//! (`tests/src/fakes/bluesky.rs`, included here so the client tests and the end-to-end
//! tests share one specification) and wiremock for single answers, plus property tests.

#[allow(unused)]
#[path = "listening/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../../tests/src/fakes/bluesky.rs"]
mod fake;
#[allow(dead_code)]
#[path = "../../tests/src/fakes/faults.rs"]
mod faults;

use fake::{BLUESKY_APP_PASSWORD, BLUESKY_HANDLE, FakePds};
use hark_shared::domain::{Cursor, Platform, Secret, Source};
use hark_shared::platforms::bluesky::{
    BlueskyListener, BlueskyPosition, SEARCH_OVERLAP, parse_search_page, search_queries,
};
use hark_shared::platforms::{Listened, Listener, PlatformError};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::json;
use support::{http, limits, now, query_value, query_values, requests_to, source};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEARCH: &str = "/xrpc/app.bsky.feed.searchPosts";

fn listener(pds: &FakePds) -> BlueskyListener {
    BlueskyListener::new(
        http(),
        pds.uri(),
        BLUESKY_HANDLE,
        Secret::new(BLUESKY_APP_PASSWORD),
    )
}

fn bsky_source(query: &str) -> Source {
    source(
        "bsky-hark",
        Platform::Bluesky,
        json!({ "query": query, "account": BLUESKY_HANDLE, "credentials": "env:BSKY" }),
    )
}

fn cursor_at(position: Option<String>) -> Cursor {
    let mut cursor = Cursor::new("bsky-hark");
    cursor.position = position;
    cursor.version = 4;
    cursor
}

/// `n` posts mentioning hark, ten seconds apart from `start`; returns their at-uris.
fn seed(pds: &FakePds, range: std::ops::Range<u32>, start: Timestamp) -> Vec<String> {
    range
        .map(|n| {
            let at = start + SignedDuration::from_secs(i64::from(n) * 10);
            pds.post(
                &format!("3lf{n:010}"),
                "alice.bsky.social",
                &format!("hark news {n}"),
                at,
            )
        })
        .collect()
}

fn uris(listened: &Listened) -> Vec<String> {
    listened
        .mentions
        .iter()
        .map(|m| m.native_id.clone())
        .collect()
}

fn position(listened: &Listened) -> BlueskyPosition {
    serde_json::from_str(listened.cursor.position.as_deref().unwrap()).unwrap()
}

fn eleven() -> Timestamp {
    "2026-01-10T11:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn given_a_source_never_polled_when_listening_then_one_page_of_the_newest_is_taken_and_the_window_starts_there()
 {
    let pds = FakePds::start().await;
    let all = seed(&pds, 0..150, eleven());

    let listened = listener(&pds)
        .listen(&bsky_source("hark"), &cursor_at(None), limits(now(), 5))
        .await
        .unwrap();

    assert_eq!(
        uris(&listened),
        all[50..].to_vec(),
        "newest 100, oldest first"
    );
    assert!(listened.caught_up);
    assert_eq!(listened.cursor.version, 4);
    let newest = eleven() + SignedDuration::from_secs(1490);
    let p = position(&listened);
    assert_eq!(p.newest, Some(newest));
    assert_eq!(p.since, Some(newest - SEARCH_OVERLAP));
    let requests = requests_to(&pds.server, SEARCH).await;
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(query_value(r, "q").as_deref(), Some("hark"));
    assert_eq!(query_value(r, "sort").as_deref(), Some("latest"));
    assert_eq!(query_value(r, "limit").as_deref(), Some("100"));
    assert_eq!(query_value(r, "since"), None);
    assert!(
        r.headers.get("authorization").is_some(),
        "search is signed in: the public AppView refuses it"
    );
    let rl = listened.rate_limit.expect("RateLimit-* read");
    assert_eq!((rl.limit, rl.remaining), (Some(3000), Some(2999)));
}

#[tokio::test]
async fn given_250_new_posts_when_listening_then_cursor_pages_are_followed_and_nothing_repeats() {
    let pds = FakePds::start().await;
    let old = seed(&pds, 0..5, eleven());
    let bsky = listener(&pds);
    let first = bsky
        .listen(&bsky_source("hark"), &cursor_at(None), limits(now(), 5))
        .await
        .unwrap();
    assert_eq!(uris(&first), old);

    let new = seed(&pds, 5..255, eleven());
    let second = bsky
        .listen(&bsky_source("hark"), &first.cursor, limits(now(), 5))
        .await
        .unwrap();

    assert_eq!(
        uris(&second),
        new,
        "every new post once, the overlap's old ones dropped"
    );
    assert!(second.caught_up);
    let requests = requests_to(&pds.server, SEARCH).await;
    let cursors: Vec<Option<String>> = requests[1..]
        .iter()
        .map(|r| query_value(r, "cursor"))
        .collect();
    assert_eq!(cursors, vec![None, Some("100".into()), Some("200".into())]);
    let since = query_value(&requests[1], "since").unwrap();
    assert_eq!(
        since, "2026-01-10T10:50:40.000Z",
        "newest of the first poll minus the overlap"
    );
}

#[tokio::test]
async fn given_a_post_indexed_late_when_listening_again_then_the_overlap_finds_it() {
    let pds = FakePds::start().await;
    seed(&pds, 0..3, eleven());
    let bsky = listener(&pds);
    let first = bsky
        .listen(&bsky_source("hark"), &cursor_at(None), limits(now(), 5))
        .await
        .unwrap();

    // Written five minutes before the newest post seen, indexed only now.
    let late = pds.post_indexed(
        "3lflate000000",
        "bob.bsky.social",
        "hark, late",
        eleven() - SignedDuration::from_mins(5),
        now(),
    );
    let second = bsky
        .listen(&bsky_source("hark"), &first.cursor, limits(now(), 5))
        .await
        .unwrap();
    assert_eq!(uris(&second), vec![late]);
}

#[tokio::test]
async fn given_more_posts_than_the_page_cap_when_listening_then_the_window_is_finished_next_poll() {
    let pds = FakePds::start().await;
    seed(&pds, 0..1, eleven());
    let bsky = listener(&pds);
    let first = bsky
        .listen(&bsky_source("hark"), &cursor_at(None), limits(now(), 5))
        .await
        .unwrap();
    let new = seed(&pds, 1..251, eleven());

    let interrupted = bsky
        .listen(&bsky_source("hark"), &first.cursor, limits(now(), 2))
        .await
        .unwrap();
    assert!(!interrupted.caught_up);
    assert_eq!(uris(&interrupted), new[50..].to_vec(), "the newest 200");
    assert!(position(&interrupted).until.is_some());

    let rest = bsky
        .listen(&bsky_source("hark"), &interrupted.cursor, limits(now(), 2))
        .await
        .unwrap();
    assert!(rest.caught_up);
    assert_eq!(
        uris(&rest),
        new[..50].to_vec(),
        "the rest of the window, nothing twice"
    );
    assert_eq!(position(&rest).until, None);
}

#[tokio::test]
async fn given_many_polls_when_listening_then_the_login_happens_once() {
    let pds = FakePds::start().await;
    seed(&pds, 0..3, eleven());
    let bsky = listener(&pds);
    let mut cursor = cursor_at(None);
    for _ in 0..12 {
        cursor = bsky
            .listen(&bsky_source("hark"), &cursor, limits(now(), 1))
            .await
            .unwrap()
            .cursor;
    }
    assert_eq!(pds.calls("com.atproto.server.createSession"), 1);
    assert_eq!(pds.calls("app.bsky.feed.searchPosts"), 12);
}

#[tokio::test]
async fn given_an_access_token_that_expires_mid_poll_then_the_session_is_refreshed_and_the_search_retried()
 {
    let pds = FakePds::start().await;
    let all = seed(&pds, 0..3, eleven());
    let bsky = listener(&pds);
    pds.expire_access_tokens_after_searches(1);
    bsky.listen(&bsky_source("hark"), &cursor_at(None), limits(now(), 1))
        .await
        .unwrap();

    // The second search meets 400 ExpiredToken (not 401).
    let listened = bsky
        .listen(&bsky_source("hark"), &cursor_at(None), limits(now(), 1))
        .await
        .unwrap();

    assert_eq!(uris(&listened), all);
    assert_eq!(pds.calls("com.atproto.server.refreshSession"), 1);
    assert_eq!(
        pds.calls("com.atproto.server.createSession"),
        1,
        "no new login"
    );
    assert_eq!(pds.calls("app.bsky.feed.searchPosts"), 3);
}

#[tokio::test]
async fn given_the_app_password_was_revoked_when_listening_then_auth_expired_after_one_login_attempt()
 {
    let pds = FakePds::start().await;
    seed(&pds, 0..2, eleven());
    let bsky = listener(&pds);
    let first = bsky
        .listen(&bsky_source("hark"), &cursor_at(None), limits(now(), 1))
        .await
        .unwrap();

    pds.revoke_app_password(); // sessions die (InvalidToken), logins fail (401)
    let err = bsky
        .listen(&bsky_source("hark"), &first.cursor, limits(now(), 1))
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(!err.to_string().contains(BLUESKY_APP_PASSWORD));
    assert!(!format!("{err:?}").contains("eyJ"));
    assert_eq!(pds.calls("com.atproto.server.refreshSession"), 1);
    assert_eq!(pds.calls("com.atproto.server.createSession"), 2);
}

#[tokio::test]
async fn given_a_query_with_alternatives_and_a_language_then_one_search_each_with_the_lang_filter()
{
    let pds = FakePds::start().await;
    listener(&pds)
        .listen(
            &bsky_source("(hark OR #harkapp) -hiring lang:de"),
            &cursor_at(None),
            limits(now(), 4),
        )
        .await
        .unwrap();
    let requests = requests_to(&pds.server, SEARCH).await;
    let qs: Vec<String> = requests
        .iter()
        .filter_map(|r| query_value(r, "q"))
        .collect();
    assert_eq!(qs, search_queries("(hark OR #harkapp) -hiring lang:de"));
    assert_eq!(qs, vec!["hark", "#harkapp"]);
    assert!(
        requests
            .iter()
            .all(|r| query_values(r, "lang") == vec!["de"])
    );
}

// ------------------------------------------------------------------- single answers

/// An entryway + PDS on one wiremock server: `createSession` names the server as the PDS,
/// and `searchPosts` answers `status` with `body`.
async fn answering(
    status: u16,
    body: Vec<u8>,
    content_type: &str,
    headers: &[(&str, String)],
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "did": "did:plc:u5cwb2mwiv2bfq53cjufe6yn", "handle": BLUESKY_HANDLE,
            "accessJwt": "eyJhY2Nlc3MiOnRydWV9.1.sig", "refreshJwt": "eyJyZWZyZXNoIjp0cnVlfQ.1.sig",
            "didDoc": { "id": "did:plc:u5cwb2mwiv2bfq53cjufe6yn",
                        "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                      "serviceEndpoint": server.uri() }] },
        })))
        .mount(&server)
        .await;
    let mut response = ResponseTemplate::new(status).set_body_raw(body, content_type);
    for (name, value) in headers {
        response = response.insert_header(*name, value.as_str());
    }
    Mock::given(path(SEARCH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/fixtures/bluesky/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn listen_to(server: &MockServer, cursor: &Cursor) -> Result<Listened, PlatformError> {
    BlueskyListener::new(
        http(),
        server.uri(),
        BLUESKY_HANDLE,
        Secret::new(BLUESKY_APP_PASSWORD),
    )
    .listen(&bsky_source("rustlang"), cursor, limits(now(), 1))
    .await
}

#[tokio::test]
async fn given_the_documented_search_answer_then_mentions_are_complete() {
    let server = answering(200, fixture("search_posts.json"), "application/json", &[]).await;

    let listened = listen_to(&server, &cursor_at(None)).await.unwrap();

    let m = &listened.mentions[0];
    assert_eq!(m.platform, Platform::Bluesky);
    assert_eq!(
        m.native_id,
        "at://did:plc:u5cwb2mwiv2bfq53cjufe6yn/app.bsky.feed.post/3lfqz2abcd22k"
    );
    assert_eq!(
        m.url,
        "https://bsky.app/profile/alice.bsky.social/post/3lfqz2abcd22k"
    );
    assert_eq!(m.text, "Loving #rustlang async");
    assert_eq!(m.author.handle, "alice.bsky.social");
    assert_eq!(m.author.display_name.as_deref(), Some("Alice"));
    assert_eq!(
        m.author.followers, None,
        "search results carry no follower counts"
    );
    assert_eq!(
        m.created_at,
        "2026-01-10T12:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        (
            m.engagement.likes,
            m.engagement.reposts,
            m.engagement.replies
        ),
        (4, 1, 0)
    );
    assert_eq!(m.source_id.as_deref(), Some("bsky-hark"));
    assert!(m.lang.is_none() && m.sentiment.is_none() && m.campaigns.is_empty());
}

#[tokio::test]
async fn given_search_switched_off_by_an_administrative_rule_then_retryable_not_auth() {
    let server = answering(403, fixture("search_forbidden.html"), "text/html", &[]).await;
    let cursor = cursor_at(Some(r#"{"since":"2026-01-10T11:00:00Z","seen":[]}"#.into()));
    let err = listen_to(&server, &cursor).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("Request forbidden by administrative rules"),
        "{err}"
    );
}

#[tokio::test]
async fn given_a_429_then_retryable_until_the_unix_reset() {
    let reset = (now().as_second() + 120).to_string();
    let server = answering(
        429,
        br#"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#.to_vec(),
        "application/json",
        &[
            ("RateLimit-Remaining", "0".into()),
            ("RateLimit-Reset", reset),
        ],
    )
    .await;
    let err = listen_to(&server, &cursor_at(None)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(120)));
    assert!(err.to_string().contains("RateLimitExceeded"), "{err}");
}

#[tokio::test]
async fn given_a_bad_query_then_permanent_with_the_xrpc_name() {
    let server = answering(
        400,
        br#"{"error":"BadQueryString","message":"unbalanced quotes"}"#.to_vec(),
        "application/json",
        &[],
    )
    .await;
    let err = listen_to(&server, &cursor_at(None)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "bluesky rejected the request (HTTP 400): BadQueryString: unbalanced quotes"
    );
}

#[tokio::test]
async fn given_malformed_answers_then_malformed_and_nothing_is_used() {
    let mut truncated = fixture("search_posts.json");
    truncated.truncate(200);
    for body in [
        truncated,
        fixture("search_missing_handle.json"),
        b"{\"posts\":{}}".to_vec(),
    ] {
        let server = answering(200, body, "application/json", &[]).await;
        let err = listen_to(&server, &cursor_at(None)).await.unwrap_err();
        assert_eq!(err.kind(), "malformed", "{err}");
    }
}

#[tokio::test]
async fn given_a_source_without_a_query_then_permanent_and_no_login() {
    let pds = FakePds::start().await;
    let src = source(
        "bsky-hark",
        Platform::Bluesky,
        json!({ "account": BLUESKY_HANDLE }),
    );
    let err = listener(&pds)
        .listen(&src, &cursor_at(None), limits(now(), 1))
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Permanent { .. }), "{err}");
    assert_eq!(pds.calls("com.atproto.server.createSession"), 0);
}

// ------------------------------------------------------------------------- properties

proptest! {
    #[test]
    fn search_page_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_search_page(&body);
    }

    #[test]
    fn search_page_parser_never_panics_on_cut_fixtures(cut in any::<prop::sample::Index>()) {
        let body = fixture("search_posts.json");
        let _ = parse_search_page(&body[..cut.index(body.len() + 1)]);
    }

    #[test]
    fn positions_round_trip_through_json(
        since in 0i64..2_000_000_000,
        until in proptest::option::of(0i64..2_000_000_000),
        seen in proptest::collection::vec(("[a-z0-9:/.]{1,30}", 0i64..2_000_000_000), 0..5),
    ) {
        let ts = |s: i64| Timestamp::from_second(s).unwrap();
        let position = BlueskyPosition {
            since: Some(ts(since)),
            until: until.map(ts),
            newest: Some(ts(since)),
            seen: seen.into_iter().map(|(u, t)| (u, ts(t))).collect(),
        };
        let text = serde_json::to_string(&position).unwrap();
        prop_assert_eq!(serde_json::from_str::<BlueskyPosition>(&text).unwrap(), position);
    }

    #[test]
    fn search_query_compilation_never_panics_or_returns_nothing(query in ".{1,60}") {
        prop_assert!(!search_queries(&query).is_empty());
    }
}
