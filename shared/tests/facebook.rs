//! Facebook Pages (Graph API): the listener and the publisher against the reusable
//! `FakeFacebook` (included from `tests/src/fakes/`), plus raw wiremock answers for the
//! documented error bodies, usage headers and malformed payloads, and property tests on
//! the parsers.

#[path = "listening/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

#[path = "../../tests/src/fakes/faults.rs"]
#[allow(dead_code)]
mod faults;

#[path = "../../tests/src/fakes/facebook.rs"]
#[allow(dead_code)]
mod fake;

use std::time::Duration;

use hark_shared::domain::{Cursor, Platform, Secret, Source};
use hark_shared::platforms::facebook::{
    self, FacebookListener, FacebookPosition, FacebookPublisher, GRAPH_VERSION,
};
use hark_shared::platforms::{
    HttpClient, Listened, Listener, Lookup, OutgoingPost, PlatformError, Publisher,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use fake::{FACEBOOK_PAGE_ID, FACEBOOK_PAGE_TOKEN, FakeFacebook};
use faults::Fault;
use support::{at, http, limits, now, query_value, requests_to};

/// A fixture under `tests/fixtures/`.
fn fixture(name: &str) -> Vec<u8> {
    let full = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

fn source_for(base: &str, query: Option<&str>) -> Source {
    let mut fields = serde_json::json!({
        "base_url": base, "account": FACEBOOK_PAGE_ID, "credentials": "env:FB_PAGE_TOKEN"
    });
    if let Some(q) = query {
        fields["query"] = serde_json::json!(q);
    }
    support::source("fb-page", Platform::Facebook, fields)
}

fn listener() -> FacebookListener {
    FacebookListener::new(http(), Some(Secret::new(FACEBOOK_PAGE_TOKEN)))
}

async fn poll(fb: &FakeFacebook, cursor: &Cursor, at: Timestamp, pages: usize) -> Listened {
    listener()
        .listen(&source_for(&fb.uri(), None), cursor, limits(at, pages))
        .await
        .expect("poll succeeds")
}

fn ids(listened: &Listened) -> Vec<String> {
    listened
        .mentions
        .iter()
        .map(|m| m.native_id.clone())
        .collect()
}

fn minutes_before_now(m: i64) -> Timestamp {
    now() - SignedDuration::from_mins(m)
}

fn assert_no_secret(err: &PlatformError, secret: &str) {
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(!format!("{err:?}").contains(secret), "{err:?}");
}

// ------------------------------------------------------------------------------------
// Listening
// ------------------------------------------------------------------------------------

#[tokio::test]
async fn given_tags_and_comments_when_first_polled_then_one_page_each_oldest_first() {
    let fb = FakeFacebook::start().await;
    for i in 0..30 {
        fb.tag(
            &format!("100089001_{}", 122_000 + i),
            &format!("tag {i}"),
            minutes_before_now(300 - i64::from(i)),
        );
    }
    let post = fb.page_post(
        "1116692661689527",
        "Our launch!",
        at("2026-01-09T08:00:00Z"),
    );
    fb.comment(&post, "900001", "Congrats!", minutes_before_now(50));
    // Too old to be watched: its comments are not read.
    let old = fb.page_post("1000", "Old news", at("2025-12-01T08:00:00Z"));
    fb.comment(&old, "800001", "late comment", minutes_before_now(40));

    let listened = poll(&fb, &Cursor::new("fb-page"), now(), 5).await;

    // First poll: the newest page (25) of tags, not the whole history.
    assert_eq!(listened.mentions.len(), 26);
    assert!(listened.caught_up);
    let times: Vec<Timestamp> = listened.mentions.iter().map(|m| m.created_at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let comment = listened
        .mentions
        .iter()
        .find(|m| m.text == "Congrats!")
        .expect("comment found");
    assert_eq!(comment.native_id, "1116692661689527_900001");
    assert_eq!(
        comment.url,
        "https://www.facebook.com/1116692661689527_900001"
    );
    assert_eq!(comment.author.handle, "7100");
    assert_eq!(comment.author.display_name.as_deref(), Some("Commenter"));
    assert_eq!(comment.engagement.likes, 1);
    assert_eq!(comment.source_id.as_deref(), Some("fb-page"));
    let tag = listened
        .mentions
        .iter()
        .find(|m| m.native_id == "100089001_122029")
        .expect("the newest tag");
    assert_eq!(tag.native_id, "100089001_122029");
    assert_eq!(tag.url, "https://www.facebook.com/100089001/posts/122029");
    assert!(!listened.mentions.iter().any(|m| m.text == "late comment"));
    assert!(
        !ids(&listened).contains(&"100089001_122004".to_owned()),
        "older tags are not backfilled"
    );
    let position: FacebookPosition =
        serde_json::from_str(listened.cursor.position.as_deref().unwrap()).unwrap();
    assert_eq!(position.posts.keys().collect::<Vec<_>>(), vec![&post]);
    assert_eq!(listened.cursor.version, 0);
}

#[tokio::test]
async fn given_a_stored_position_when_new_items_arrive_then_only_they_are_returned() {
    let fb = FakeFacebook::start().await;
    fb.tag("100089001_1", "first", minutes_before_now(60));
    let post = fb.page_post("2000", "Launch", minutes_before_now(120));
    fb.comment(&post, "1", "first comment", minutes_before_now(30));
    let first = poll(&fb, &Cursor::new("fb-page"), now(), 5).await;
    assert_eq!(first.mentions.len(), 2);

    fb.tag("100089001_2", "second", minutes_before_now(5));
    fb.comment(&post, "2", "second comment", minutes_before_now(4));
    // A post published after the first poll: all its comments are new.
    let fresh = fb.page_post("3000", "Another", minutes_before_now(3));
    fb.comment(&fresh, "3", "on the new post", minutes_before_now(2));
    let second = poll(&fb, &first.cursor, now(), 5).await;
    assert_eq!(
        ids(&second),
        vec!["100089001_2", "2000_2", "3000_3"],
        "only the new items, oldest first"
    );

    let third = poll(&fb, &second.cursor, now() + SignedDuration::from_mins(1), 5).await;
    assert!(
        third.mentions.is_empty(),
        "nothing repeated: {:?}",
        ids(&third)
    );
}

#[tokio::test]
async fn given_more_new_tags_than_the_page_cap_when_polled_then_the_rest_comes_next_time() {
    let fb = FakeFacebook::start().await;
    fb.tag("100089001_0", "before", at("2026-01-10T09:00:00Z"));
    let first = poll(&fb, &Cursor::new("fb-page"), now(), 5).await;
    assert_eq!(first.mentions.len(), 1);

    for i in 1..=60 {
        fb.tag(
            &format!("100089001_{i}"),
            &format!("burst {i}"),
            at("2026-01-10T10:00:00Z") + SignedDuration::from_secs(i),
        );
    }
    let capped = poll(&fb, &first.cursor, now(), 2).await;
    assert!(!capped.caught_up, "the page cap stopped the read");
    assert_eq!(capped.mentions.len(), 50);

    let rest = poll(&fb, &capped.cursor, now(), 2).await;
    assert!(rest.caught_up);
    let mut all: Vec<String> = ids(&capped);
    all.extend(ids(&rest));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 60, "every tag once, none lost");
    assert!(!all.contains(&"100089001_0".to_owned()));
}

#[tokio::test]
async fn given_a_campaign_query_when_polled_then_only_matching_items_are_kept() {
    let fb = FakeFacebook::start().await;
    fb.tag(
        "1_1",
        "Great support from the hark team",
        minutes_before_now(10),
    );
    fb.tag("1_2", "hark is hiring engineers", minutes_before_now(9));
    fb.tag("1_3", "unrelated", minutes_before_now(8));
    let listened = listener()
        .listen(
            &source_for(&fb.uri(), Some("hark -hiring")),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap();
    assert_eq!(ids(&listened), vec!["1_1"]);

    let err = listener()
        .listen(
            &source_for(&fb.uri(), Some("(hark")),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Permanent { .. }), "{err}");
    assert!(err.to_string().contains("invalid query"), "{err}");
}

#[tokio::test]
async fn given_throttling_codes_when_polled_then_retryable_and_the_cursor_is_not_advanced() {
    for (file, code) in [
        ("facebook/error_4_app_throttled.json", 4),
        ("facebook/error_17_user_throttled.json", 17),
        ("facebook/error_32_page_throttled.json", 32),
        ("facebook/error_613_custom_limit.json", 613),
        ("facebook/error_80001_buc.json", 80001),
        ("facebook/error_1_unknown.json", 1),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(if code == 1 { 500 } else { 400 })
                    .insert_header(
                        "X-Business-Use-Case-Usage",
                        r#"{"546349135390552":[{"type":"pages","call_count":100,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":19}]}"#,
                    )
                    .set_body_raw(fixture(file), "application/json"),
            )
            .mount(&server)
            .await;
        let err = listener()
            .listen(
                &source_for(&server.uri(), None),
                &Cursor::new("fb-page"),
                limits(now(), 5),
            )
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "code {code}: {err}");
        assert_eq!(
            err.retry_after(),
            Some(SignedDuration::from_mins(19)),
            "code {code}: the regain time of the usage header"
        );
        assert!(err.to_string().contains(&format!("code {code}")), "{err}");
    }
}

#[tokio::test]
async fn given_a_revoked_token_when_polled_then_auth_expired_without_the_token() {
    let fb = FakeFacebook::start().await;
    fb.revoke_token();
    let err = listener()
        .listen(
            &source_for(&fb.uri(), None),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(err.to_string().contains("code 190"), "{err}");
    assert_no_secret(&err, FACEBOOK_PAGE_TOKEN);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            fixture("facebook/error_190_expired.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = listener()
        .listen(
            &source_for(&server.uri(), None),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(err.to_string().contains("Session has expired"), "{err}");
}

#[tokio::test]
async fn given_missing_permission_or_configuration_when_polled_then_permanent_or_auth_errors_say_why()
 {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            fixture("facebook/error_200_permission.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = listener()
        .listen(
            &source_for(&server.uri(), None),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "facebook rejected the request (HTTP 403): (#200) The user hasn't authorized the application to perform this action (code 200)"
    );

    let mut no_page = source_for(&server.uri(), None);
    no_page.account = None;
    let err = listener()
        .listen(&no_page, &Cursor::new("fb-page"), limits(now(), 5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`account`"), "{err}");

    let err = FacebookListener::new(http(), None)
        .listen(
            &source_for(&server.uri(), None),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
}

#[tokio::test]
async fn given_usage_near_the_limit_when_polled_then_reading_stops_early_and_reports_the_reset() {
    let fb = FakeFacebook::start().await;
    fb.tag("1_0", "before", minutes_before_now(200));
    let first = poll(&fb, &Cursor::new("fb-page"), now(), 5).await;
    for i in 1..=40 {
        fb.tag(
            &format!("1_{i}"),
            "burst",
            minutes_before_now(100) + SignedDuration::from_secs(i),
        );
    }
    fb.set_usage(96, 7);
    let reads_before = fb.reads("tagged");

    let slowed = poll(&fb, &first.cursor, now(), 5).await;

    let rl = slowed.rate_limit.expect("usage reported");
    assert!(rl.exhausted(), "{rl:?}");
    assert_eq!(rl.reset_at, Some(now() + SignedDuration::from_mins(7)));
    assert_eq!(
        fb.reads("tagged") - reads_before,
        1,
        "stopped after one page"
    );
    assert!(!slowed.caught_up);
    assert_eq!(slowed.mentions.len(), 25);

    // Usage back to normal: the rest comes, nothing lost.
    fb.set_usage(40, 0);
    let rest = poll(&fb, &slowed.cursor, now() + SignedDuration::from_mins(8), 5).await;
    assert_eq!(rest.rate_limit.unwrap().remaining, Some(60));
    let mut all = ids(&slowed);
    all.extend(ids(&rest));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40);
}

#[tokio::test]
async fn given_malformed_pages_when_polled_then_malformed_and_nothing_is_used() {
    for file in [
        "facebook/malformed_truncated.json",
        "facebook/malformed_wrong_shape.json",
        "facebook/malformed_bad_time.json",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(fixture(file), "application/json"),
            )
            .mount(&server)
            .await;
        let err = listener()
            .listen(
                &source_for(&server.uri(), None),
                &Cursor::new("fb-page"),
                limits(now(), 5),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PlatformError::Malformed {
                    platform: Platform::Facebook,
                    ..
                }
            ),
            "{file}: {err}"
        );
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(502)
                .set_body_raw("<html><body>Bad Gateway</body></html>", "text/html"),
        )
        .mount(&server)
        .await;
    let err = listener()
        .listen(
            &source_for(&server.uri(), None),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn given_the_documented_fixtures_when_read_then_times_with_plus_0000_parse() {
    let server = MockServer::start().await;
    let tagged = format!("/{GRAPH_VERSION}/{FACEBOOK_PAGE_ID}/tagged");
    let posts = format!("/{GRAPH_VERSION}/{FACEBOOK_PAGE_ID}/posts");
    Mock::given(method("GET"))
        .and(path(tagged.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("facebook/tagged_page.json"), "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(posts.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("facebook/posts_page.json"), "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/{GRAPH_VERSION}/546349135390552_1116692661689527/comments"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("facebook/comments_page.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let listened = listener()
        .listen(
            &source_for(&server.uri(), None),
            &Cursor::new("fb-page"),
            limits(now(), 5),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&listened),
        vec![
            "1116692661689527_900001",
            "1116692661689527_900002",
            "100089001_122001",
            "100089001_122002"
        ]
    );
    let first_tag = &listened.mentions[2];
    assert_eq!(first_tag.created_at, at("2026-01-10T11:00:00Z"));
    assert_eq!(first_tag.author.display_name.as_deref(), Some("Jane Doe"));
    // A comment without `from` (privacy) still becomes a mention.
    assert_eq!(listened.mentions[0].author.handle, "");
    assert_eq!(listened.mentions[1].engagement.replies, 1);
    let requests = requests_to(&server, &tagged).await;
    assert_eq!(
        support::header(&requests[0], "authorization").as_deref(),
        Some(format!("Bearer {FACEBOOK_PAGE_TOKEN}").as_str())
    );
    assert_eq!(
        query_value(&requests[0], "access_token"),
        None,
        "the token never goes in a URL"
    );
}

#[tokio::test]
async fn given_a_next_link_to_another_host_when_paging_then_only_its_cursor_is_used() {
    let server = MockServer::start().await;
    let tagged = format!("/{GRAPH_VERSION}/{FACEBOOK_PAGE_ID}/tagged");
    let page = |id: &str, t: &str, next: Option<&str>| {
        let mut body = serde_json::json!({"data": [{"id": id, "message": "m", "created_time": t}]});
        if let Some(next) = next {
            body["paging"] = serde_json::json!({"cursors": {"after": "CUR2"}, "next": next});
        }
        ResponseTemplate::new(200).set_body_json(body)
    };
    Mock::given(method("GET"))
        .and(path(tagged.as_str()))
        .and(wiremock::matchers::query_param("after", "CUR2"))
        .respond_with(page("1_1", "2026-01-10T10:00:00+0000", None))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(tagged.as_str()))
        .respond_with(page(
            "1_2",
            "2026-01-10T11:00:00+0000",
            Some("https://evil.example/v25.0/x/tagged?access_token=STOLEN&after=CUR2"),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": []})))
        .mount(&server)
        .await;
    // Not a first poll: every page down to `since` is read.
    let cursor = Cursor {
        position: Some(
            r#"{"tagged":{"since":"2026-01-10T09:00:00Z","seen":[]},"posts":{}}"#.into(),
        ),
        ..Cursor::new("fb-page")
    };
    let listened = listener()
        .listen(&source_for(&server.uri(), None), &cursor, limits(now(), 5))
        .await
        .unwrap();
    assert_eq!(ids(&listened), vec!["1_1", "1_2"]);
    let requests = requests_to(&server, &tagged).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(query_value(&requests[1], "after").as_deref(), Some("CUR2"));
    assert_eq!(query_value(&requests[1], "access_token"), None);
}

// ------------------------------------------------------------------------------------
// Publishing
// ------------------------------------------------------------------------------------

fn publisher(fb: &FakeFacebook) -> FacebookPublisher {
    publisher_with(fb, http())
}

fn publisher_with(fb: &FakeFacebook, http: HttpClient) -> FacebookPublisher {
    FacebookPublisher::new(http, FACEBOOK_PAGE_ID, Secret::new(FACEBOOK_PAGE_TOKEN))
        .with_base_url(fb.uri())
}

fn post(text: &str, link: Option<&str>) -> OutgoingPost {
    OutgoingPost {
        text: text.into(),
        link: link.map(Into::into),
    }
}

#[tokio::test]
async fn given_a_post_with_a_link_when_published_then_the_feed_gets_message_and_link() {
    let fb = FakeFacebook::start().await;
    let published = publisher(&fb)
        .publish(
            &post("Hark 1.0 is out!", Some("https://example.com/hark")),
            "d-1",
        )
        .await
        .unwrap();
    let created = fb.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].message, "Hark 1.0 is out!");
    assert_eq!(created[0].link.as_deref(), Some("https://example.com/hark"));
    assert_eq!(published.platform_id, created[0].id);
    assert!(published.platform_id.starts_with("546349135390552_"));
    assert_eq!(
        published.url.as_deref(),
        Some(format!("https://www.facebook.com/{}", created[0].id).as_str())
    );
}

#[tokio::test]
async fn given_the_documented_create_answer_when_read_then_the_id_and_url_follow() {
    let published = facebook::interpret_create(
        200,
        &HeaderMap::new(),
        &fixture("facebook/post_created.json"),
        now(),
    )
    .unwrap();
    assert_eq!(published.platform_id, "546349135390552_1116692661689527");
    assert_eq!(
        published.url.as_deref(),
        Some("https://www.facebook.com/546349135390552_1116692661689527")
    );
    let err =
        facebook::interpret_create(200, &HeaderMap::new(), b"{\"id\":\"\"}", now()).unwrap_err();
    assert!(matches!(err, PlatformError::Malformed { .. }), "{err}");
}

#[tokio::test]
async fn given_the_same_text_twice_when_published_then_506_is_ambiguous_and_nothing_doubles() {
    let fb = FakeFacebook::start().await;
    let p = post("Same words", None);
    publisher(&fb).publish(&p, "d-1").await.unwrap();
    let err = publisher(&fb).publish(&p, "d-1").await.unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    assert!(
        err.to_string().contains("Duplicate status message"),
        "{err}"
    );
    assert_eq!(fb.created().len(), 1);
}

#[tokio::test]
async fn given_a_lost_response_when_published_then_ambiguous_and_find_published_finds_it() {
    let fb = FakeFacebook::start().await;
    fb.set_lost_response_delay(Duration::from_secs(2));
    let p = post("Launch day", Some("https://example.com"));
    fb.inject("Launch day", Fault::LoseResponse);
    let impatient = HttpClient::with_timeout(true, Duration::from_millis(300)).unwrap();
    let since = Timestamp::now() - SignedDuration::from_mins(1);

    let err = publisher_with(&fb, impatient)
        .publish(&p, "d-1")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    assert_eq!(fb.created().len(), 1, "the post exists");
    let lookup = publisher(&fb).find_published(&p, since).await.unwrap();
    assert_eq!(
        lookup,
        Lookup::Found(hark_shared::platforms::Published {
            platform_id: fb.created()[0].id.clone(),
            url: Some(format!("https://www.facebook.com/{}", fb.created()[0].id)),
        })
    );
}

#[tokio::test]
async fn given_posts_since_when_looking_up_then_only_an_exact_message_is_found() {
    let fb = FakeFacebook::start().await;
    let since = now() - SignedDuration::from_hours(1);
    fb.page_post("1", "Launch day", since - SignedDuration::from_hours(1));
    fb.page_post("2", "Launch day!", since + SignedDuration::from_mins(5));
    for i in 0..150 {
        fb.page_post(
            &format!("x{i}"),
            &format!("filler {i}"),
            since + SignedDuration::from_mins(10) + SignedDuration::from_secs(i),
        );
    }
    let lookup = publisher(&fb)
        .find_published(&post("Launch day", None), since)
        .await
        .unwrap();
    assert_eq!(
        lookup,
        Lookup::NotFound,
        "the older exact one and the near miss do not count"
    );
    assert!(
        fb.reads("posts") >= 2,
        "paged through every post since `since`"
    );

    let found = publisher(&fb)
        .find_published(&post("Launch day!", None), since)
        .await
        .unwrap();
    assert!(
        matches!(found, Lookup::Found(ref p) if p.platform_id == format!("{FACEBOOK_PAGE_ID}_2")),
        "{found:?}"
    );
}

#[tokio::test]
async fn given_create_faults_when_published_then_server_errors_and_throttles_are_retryable() {
    let fb = FakeFacebook::start().await;
    fb.inject("a", Fault::ServerError);
    fb.inject(
        "b",
        Fault::RateLimited {
            reset_in: SignedDuration::from_mins(3),
        },
    );
    let err = publisher(&fb)
        .publish(&post("a", None), "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = publisher(&fb)
        .publish(&post("b", None), "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_mins(3)));
    assert!(fb.created().is_empty());
    assert_eq!(fb.injected().len(), 2);
}

#[tokio::test]
async fn given_a_refused_connection_when_published_then_retryable_not_ambiguous() {
    // wiremock pools its servers; a port bound and released is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let err = FacebookPublisher::new(http(), FACEBOOK_PAGE_ID, Secret::new(FACEBOOK_PAGE_TOKEN))
        .with_base_url(uri)
        .publish(&post("hello", None), "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn given_a_revoked_token_or_an_oversized_text_when_published_then_auth_or_permanent() {
    let fb = FakeFacebook::start().await;
    fb.revoke_token();
    let err = publisher(&fb)
        .publish(&post("hello", None), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_no_secret(&err, FACEBOOK_PAGE_TOKEN);
    assert!(!format!("{:?}", publisher(&fb)).contains(FACEBOOK_PAGE_TOKEN));

    let requests = fb.create_requests();
    let err = publisher(&fb)
        .publish(&post(&"x".repeat(63_207), None), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::Permanent { .. }), "{err}");
    assert!(err.to_string().contains("1 over"), "{err}");
    assert_eq!(fb.create_requests(), requests, "nothing sent");
}

// ------------------------------------------------------------------------------------
// Parsers
// ------------------------------------------------------------------------------------

fn usage_headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(value) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), value);
        }
    }
    h
}

#[test]
fn given_the_documented_usage_headers_when_parsed_then_the_highest_percentage_counts() {
    let h = usage_headers(&[
        ("X-App-Usage", r#"{"call_count":28,"total_time":25,"total_cputime":25}"#.into()),
        (
            "X-Business-Use-Case-Usage",
            r#"{"546349135390552":[{"type":"pages","call_count":50,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":0}]}"#.into(),
        ),
    ]);
    let rl = facebook::usage_rate_limit(&h, now()).unwrap();
    assert_eq!(
        (rl.limit, rl.remaining, rl.reset_at),
        (Some(100), Some(50), None)
    );
    assert_eq!(facebook::usage_rate_limit(&HeaderMap::new(), now()), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let _ = facebook::parse_page(&bytes);
        let _ = facebook::classify(status, &HeaderMap::new(), &bytes, now());
        let _ = facebook::interpret_create(status, &HeaderMap::new(), &bytes, now());
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = facebook::parse_graph_time(text);
            let _ = facebook::parse_usage(&usage_headers(&[("X-App-Usage", text.to_owned()), ("X-Business-Use-Case-Usage", text.to_owned())]));
        }
    }

    #[test]
    fn usage_percentages_give_remaining_or_exhaustion(call in 0u64..300, time in 0u64..300, regain in 0u64..120) {
        let h = usage_headers(&[(
            "X-Business-Use-Case-Usage",
            format!(r#"{{"1":[{{"type":"pages","call_count":{call},"total_time":{time},"total_cputime":1,"estimated_time_to_regain_access":{regain}}}]}}"#),
        )]);
        let rl = facebook::usage_rate_limit(&h, now()).unwrap();
        let max = call.max(time).max(1);
        if max >= facebook::EXHAUSTED_AT_PERCENT {
            prop_assert_eq!(rl.remaining, Some(0));
            let wait = rl.wait_from(now()).unwrap();
            prop_assert!(wait >= SignedDuration::from_mins(1));
        } else {
            prop_assert_eq!(rl.remaining, Some(100 - max));
        }
    }

    #[test]
    fn graph_times_round_trip(secs in 0i64..4_102_444_800) {
        let t = Timestamp::from_second(secs).unwrap();
        let written = t.strftime("%Y-%m-%dT%H:%M:%S+0000").to_string();
        prop_assert_eq!(facebook::parse_graph_time(&written), Some(t));
    }

    #[test]
    fn error_bodies_with_any_code_classify_by_code(code in 0i64..100_000, status in 400u16..600) {
        let body = serde_json::json!({"error": {"message": "m", "type": "OAuthException", "code": code}}).to_string();
        let err = facebook::classify(status, &HeaderMap::new(), body.as_bytes(), now());
        if facebook::is_throttle_code(code) || code == 1 || code == 2 {
            prop_assert!(err.is_retryable());
        } else if code == 190 || code == 102 {
            let auth = matches!(err, PlatformError::AuthExpired { .. });
            prop_assert!(auth);
        } else if code != 0 {
            let permanent = matches!(err, PlatformError::Permanent { .. });
            prop_assert!(permanent, "{}", err);
        }
    }
}
