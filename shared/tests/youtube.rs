//! YouTube Data API v3 listening against the reusable `FakeYouTube` (included from
//! `tests/src/fakes/`), raw wiremock answers for the documented error bodies and malformed
//! payloads, the daily quota budget on a simulated clock (across a daylight-saving change),
//! and property tests on the parsers.

#[path = "listening/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

#[path = "../../tests/src/fakes/youtube.rs"]
#[allow(dead_code)]
mod fake;

use hark_shared::domain::{Cursor, Platform, Secret, Source};
use hark_shared::platforms::youtube::{self, YouTubeListener, YouTubePosition};
use hark_shared::platforms::{Listened, Listener, PlatformError};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use reqwest::header::HeaderMap;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use fake::{FakeYouTube, YOUTUBE_API_KEY};
use support::{at, http, limits, now, query_value, requests_to};

fn fixture(name: &str) -> Vec<u8> {
    let full = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

fn source_for(base: &str, query: &str) -> Source {
    support::source(
        "yt",
        Platform::Youtube,
        serde_json::json!({ "base_url": base, "query": query, "credentials": "env:YT_KEY" }),
    )
}

/// A listener that may search on every poll (no spacing), with `budget` units a day.
fn listener(budget: u64) -> YouTubeListener {
    YouTubeListener::new(http(), Some(Secret::new(YOUTUBE_API_KEY)))
        .with_daily_budget(budget)
        .with_search_interval(SignedDuration::ZERO)
}

async fn poll(
    yt: &FakeYouTube,
    l: &YouTubeListener,
    cursor: &Cursor,
    at: Timestamp,
    pages: usize,
) -> Listened {
    l.listen(&source_for(&yt.uri(), "hark"), cursor, limits(at, pages))
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

fn position(listened: &Listened) -> YouTubePosition {
    serde_json::from_str(listened.cursor.position.as_deref().unwrap()).unwrap()
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

#[tokio::test]
async fn given_new_videos_and_comments_when_first_polled_then_mentions_for_both_and_quota_is_counted()
 {
    let yt = FakeYouTube::start().await;
    yt.video(
        "vid1",
        "Hark & Lambda: it's live",
        "Setting up hark",
        now() - mins(120),
    );
    yt.video("vid2", "Cooking pasta", "nothing to see", now() - mins(100));
    yt.comment("vid1", "c1", "Does hark do Bluesky?", now() - mins(30));

    let listened = poll(&yt, &listener(2_000), &Cursor::new("yt"), now(), 5).await;

    assert_eq!(ids(&listened), vec!["vid1", "c1"]);
    let video = &listened.mentions[0];
    assert_eq!(
        video.text, "Hark & Lambda: it's live\n\nSetting up hark",
        "entities decoded"
    );
    assert_eq!(video.url, "https://www.youtube.com/watch?v=vid1");
    assert_eq!(video.author.handle, "UCchannel");
    let comment = &listened.mentions[1];
    assert_eq!(comment.url, "https://www.youtube.com/watch?v=vid1&lc=c1");
    assert_eq!(comment.author.handle, "viewer");
    assert_eq!(comment.source_id.as_deref(), Some("yt"));
    assert!(listened.caught_up);
    let p = position(&listened);
    assert_eq!(p.quota.unwrap().used, 101);
    assert_eq!(p.videos.len(), 1);
    assert_eq!(p.videos[0].newest_comment, Some(now() - mins(30)));
    let rl = listened.rate_limit.unwrap();
    assert_eq!((rl.limit, rl.remaining), (Some(2_000), Some(1_899)));
    assert_eq!(
        rl.reset_at,
        Some(at("2026-01-11T08:00:00Z")),
        "midnight Pacific (PST)"
    );
    assert_eq!(yt.units_used(), 101);

    let requests = requests_to(&yt.server, "/youtube/v3/search").await;
    let r = &requests[0];
    for (name, value) in [
        ("part", "snippet"),
        ("type", "video"),
        ("order", "date"),
        ("q", "hark"),
        ("key", YOUTUBE_API_KEY),
    ] {
        assert_eq!(query_value(r, name).as_deref(), Some(value), "{name}");
    }
    assert_eq!(
        query_value(r, "publishedAfter").as_deref(),
        Some("2026-01-09T12:00:00Z")
    );
    let comments = requests_to(&yt.server, "/youtube/v3/commentThreads").await;
    for (name, value) in [
        ("part", "snippet"),
        ("videoId", "vid1"),
        ("order", "time"),
        ("textFormat", "plainText"),
    ] {
        assert_eq!(
            query_value(&comments[0], name).as_deref(),
            Some(value),
            "{name}"
        );
    }
}

#[tokio::test]
async fn given_a_stored_position_when_polled_again_then_only_new_videos_and_comments() {
    let yt = FakeYouTube::start().await;
    let l = listener(2_000);
    yt.video("vid1", "hark intro", "", now() - mins(120));
    yt.comment("vid1", "c1", "first", now() - mins(30));
    let first = poll(&yt, &l, &Cursor::new("yt"), now(), 5).await;

    yt.video("vid2", "hark deep dive", "", now() + mins(5));
    yt.comment("vid1", "c2", "second", now() + mins(6));
    yt.comment("vid2", "c3", "on the new one", now() + mins(7));
    let later = now() + mins(10);
    let second = poll(&yt, &l, &first.cursor, later, 5).await;
    assert_eq!(ids(&second), vec!["vid2", "c2", "c3"]);

    let requests = requests_to(&yt.server, "/youtube/v3/search").await;
    assert_eq!(
        query_value(&requests[1], "publishedAfter").as_deref(),
        Some("2026-01-10T09:00:00Z"),
        "an hour below the newest video seen"
    );
    let third = poll(&yt, &l, &second.cursor, later + mins(1), 5).await;
    assert!(
        third.mentions.is_empty(),
        "nothing repeated: {:?}",
        ids(&third)
    );
}

#[tokio::test]
async fn given_a_campaign_query_and_a_channel_when_searching_then_one_q_and_channel_id() {
    let yt = FakeYouTube::start().await;
    yt.video("a", "hark news", "", now() - mins(10));
    yt.video_on("UCother", "b", "harkapp tips", "", now() - mins(9));
    yt.video("c", "harkapp tips", "", now() - mins(8));
    let mut source = source_for(&yt.uri(), "(hark OR #harkapp) -hiring");
    source.account = Some("UCchannel".into());
    let listened = listener(2_000)
        .listen(&source, &Cursor::new("yt"), limits(now(), 5))
        .await
        .unwrap();
    assert_eq!(ids(&listened), vec!["a", "c"]);
    let requests = requests_to(&yt.server, "/youtube/v3/search").await;
    assert_eq!(requests.len(), 1, "one search, not one per alternative");
    assert_eq!(
        query_value(&requests[0], "q").as_deref(),
        Some("hark|harkapp")
    );
    assert_eq!(
        query_value(&requests[0], "channelId").as_deref(),
        Some("UCchannel")
    );
}

#[tokio::test]
async fn given_more_new_videos_than_the_page_cap_when_polled_then_the_rest_comes_next_time() {
    let yt = FakeYouTube::start().await;
    let l = listener(10_000);
    yt.video("old", "hark", "", now() - mins(300));
    let first = poll(&yt, &l, &Cursor::new("yt"), now(), 1).await;
    for i in 0..70 {
        yt.video(
            &format!("v{i:02}"),
            "hark burst",
            "",
            now() - mins(200) + SignedDuration::from_secs(i),
        );
    }
    let capped = poll(&yt, &l, &first.cursor, now(), 1).await;
    assert!(!capped.caught_up);
    let videos: Vec<String> = ids(&capped)
        .into_iter()
        .filter(|i| i.starts_with('v'))
        .collect();
    assert_eq!(videos.len(), 50);
    assert!(position(&capped).published_before.is_some());

    let rest = poll(&yt, &l, &capped.cursor, now(), 1).await;
    let mut all = videos;
    all.extend(ids(&rest).into_iter().filter(|i| i.starts_with('v')));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 70, "every video once, none lost");
    assert!(position(&rest).published_before.is_none());
}

#[tokio::test]
async fn given_many_comments_when_the_page_cap_stops_the_read_then_it_resumes_without_gaps() {
    let yt = FakeYouTube::start().await;
    let l = listener(10_000);
    let first = poll(&yt, &l, &Cursor::new("yt"), now(), 1).await;
    yt.video("vid", "hark", "", now() + mins(1));
    for i in 0..250 {
        yt.comment(
            "vid",
            &format!("c{i:03}"),
            "hi",
            now() + mins(2) + SignedDuration::from_secs(i),
        );
    }
    let mut cursor = first.cursor;
    let mut seen = Vec::new();
    let mut polls = 0;
    loop {
        let listened = poll(&yt, &l, &cursor, now() + mins(10), 1).await;
        seen.extend(ids(&listened).into_iter().filter(|i| i.starts_with('c')));
        cursor = listened.cursor;
        polls += 1;
        if listened.caught_up || polls > 5 {
            break;
        }
    }
    assert_eq!(polls, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 250);
    yt.comment("vid", "new", "late", now() + mins(20));
    let after = poll(&yt, &l, &cursor, now() + mins(21), 1).await;
    assert_eq!(ids(&after), vec!["new"]);
}

#[tokio::test]
async fn given_the_budget_is_spent_when_polled_then_no_call_until_the_next_pacific_midnight() {
    let yt = FakeYouTube::start().await;
    yt.video("v1", "hark", "", now() - mins(60));
    let l = listener(100);
    let first = poll(&yt, &l, &Cursor::new("yt"), now(), 5).await;
    assert_eq!(ids(&first), vec!["v1"]);
    assert_eq!(first.rate_limit.unwrap().remaining, Some(0));
    let calls = yt.calls("search") + yt.calls("commentThreads");
    assert_eq!(calls, 1, "no unit left for comments");

    yt.video("v2", "hark again", "", now() + mins(30));
    let spent = poll(&yt, &l, &first.cursor, now() + mins(60), 5).await;
    assert!(spent.mentions.is_empty());
    assert!(spent.caught_up, "slow down, do not fail");
    let rl = spent.rate_limit.unwrap();
    assert_eq!(rl.remaining, Some(0));
    assert_eq!(rl.reset_at, Some(at("2026-01-11T08:00:00Z")));
    assert_eq!(
        yt.calls("search") + yt.calls("commentThreads"),
        calls,
        "no call made"
    );

    // One second before midnight Pacific: still spent. At midnight: searching again.
    let still = poll(&yt, &l, &spent.cursor, at("2026-01-11T07:59:59Z"), 5).await;
    assert!(still.mentions.is_empty());
    assert_eq!(yt.calls("search"), 1);
    let next_day = poll(&yt, &l, &still.cursor, at("2026-01-11T08:00:00Z"), 5).await;
    assert_eq!(ids(&next_day), vec!["v2"]);
    assert_eq!(
        position(&next_day).quota.unwrap().day.to_string(),
        "2026-01-11"
    );
}

#[tokio::test]
async fn given_a_spent_budget_on_the_spring_forward_day_when_polled_then_the_reset_is_07_00_utc() {
    let yt = FakeYouTube::start().await;
    let l = listener(100);
    // 2026-03-08 is 23 hours long in Los Angeles (02:00 PST → 03:00 PDT).
    let morning = at("2026-03-08T10:00:00Z");
    yt.video("v1", "hark", "", morning - mins(60));
    let first = poll(&yt, &l, &Cursor::new("yt"), morning, 5).await;
    assert_eq!(
        first.rate_limit.unwrap().reset_at,
        Some(at("2026-03-09T07:00:00Z"))
    );

    yt.video("v2", "hark", "", morning + mins(60));
    let before = poll(&yt, &l, &first.cursor, at("2026-03-09T06:59:59Z"), 5).await;
    assert!(before.mentions.is_empty(), "still the same Pacific day");
    assert_eq!(yt.calls("search"), 1);
    let after = poll(&yt, &l, &before.cursor, at("2026-03-09T07:00:00Z"), 5).await;
    assert_eq!(ids(&after), vec!["v2"]);
    assert_eq!(
        after.rate_limit.unwrap().reset_at,
        Some(at("2026-03-10T07:00:00Z"))
    );
}

#[tokio::test]
async fn given_searches_are_spaced_when_polled_between_them_then_only_comments_are_read() {
    let yt = FakeYouTube::start().await;
    yt.video("v1", "hark", "", now() - mins(60));
    // 1,000 units: 10 searches a day, one every 2 h 24 min.
    let l =
        YouTubeListener::new(http(), Some(Secret::new(YOUTUBE_API_KEY))).with_daily_budget(1_000);
    let first = poll(&yt, &l, &Cursor::new("yt"), now(), 5).await;
    yt.comment("v1", "c1", "nice", now() + mins(5));
    let between = poll(&yt, &l, &first.cursor, now() + mins(30), 5).await;
    assert_eq!(ids(&between), vec!["c1"]);
    assert_eq!(yt.calls("search"), 1);
    poll(&yt, &l, &between.cursor, now() + mins(145), 5).await;
    assert_eq!(yt.calls("search"), 2);
}

#[tokio::test]
async fn given_youtube_reports_quota_exceeded_when_searching_then_retryable_until_midnight() {
    let yt = FakeYouTube::start().await;
    yt.set_quota(50);
    let err = listener(2_000)
        .listen(
            &source_for(&yt.uri(), "hark"),
            &Cursor::new("yt"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.retry_after(),
        Some(at("2026-01-11T08:00:00Z").duration_since(now()))
    );
    assert!(err.to_string().contains("quotaExceeded"), "{err}");
}

#[tokio::test]
async fn given_quota_runs_out_while_reading_comments_then_the_videos_found_are_kept() {
    let yt = FakeYouTube::start().await;
    yt.set_quota(100);
    yt.video("v1", "hark", "", now() - mins(60));
    yt.comment("v1", "c1", "hi", now() - mins(10));
    let l = listener(2_000);
    let listened = poll(&yt, &l, &Cursor::new("yt"), now(), 5).await;
    assert_eq!(ids(&listened), vec!["v1"]);
    assert_eq!(listened.rate_limit.unwrap().remaining, Some(0));
    let calls = yt.calls("search") + yt.calls("commentThreads");
    let again = poll(&yt, &l, &listened.cursor, now() + mins(5), 5).await;
    assert!(again.mentions.is_empty());
    assert_eq!(
        yt.calls("search") + yt.calls("commentThreads"),
        calls,
        "no call after quotaExceeded"
    );
    // The next day the comment is still found (the video stayed watched).
    yt.reset_quota();
    yt.set_quota(10_000);
    let next_day = poll(&yt, &l, &again.cursor, at("2026-01-11T09:00:00Z"), 5).await;
    assert_eq!(ids(&next_day), vec!["c1"]);
}

#[tokio::test]
async fn given_comments_disabled_when_polled_then_the_video_is_dropped_and_the_poll_succeeds() {
    let yt = FakeYouTube::start().await;
    yt.video("v1", "hark", "", now() - mins(60));
    yt.disable_comments("v1");
    let listened = poll(&yt, &listener(2_000), &Cursor::new("yt"), now(), 5).await;
    assert_eq!(ids(&listened), vec!["v1"]);
    assert!(position(&listened).videos.is_empty());
}

#[tokio::test]
async fn given_an_invalid_key_when_polled_then_auth_expired_without_the_key() {
    let yt = FakeYouTube::start().await;
    yt.revoke_key();
    let err = listener(2_000)
        .listen(
            &source_for(&yt.uri(), "hark"),
            &Cursor::new("yt"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(err.to_string().contains("API key not valid"), "{err}");
    assert!(
        !err.to_string().contains(YOUTUBE_API_KEY) && !format!("{err:?}").contains(YOUTUBE_API_KEY)
    );
    assert!(!format!("{:?}", listener(1)).contains(YOUTUBE_API_KEY));

    let err = YouTubeListener::new(http(), None)
        .listen(
            &source_for(&yt.uri(), "hark"),
            &Cursor::new("yt"),
            limits(now(), 5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
}

#[tokio::test]
async fn given_documented_error_bodies_when_searching_then_each_is_classified() {
    for (status, file, check) in [
        (403, "youtube/error_rate_limit.json", "retry60"),
        (400, "youtube/error_key_invalid.json", "auth"),
        (403, "youtube/error_forbidden.json", "permanent"),
        (400, "youtube/error_invalid_parameter.json", "permanent"),
        (503, "youtube/malformed_truncated.json", "retry"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/youtube/v3/search"))
            .respond_with(
                ResponseTemplate::new(status).set_body_raw(fixture(file), "application/json"),
            )
            .mount(&server)
            .await;
        let err = listener(2_000)
            .listen(
                &source_for(&server.uri(), "hark"),
                &Cursor::new("yt"),
                limits(now(), 5),
            )
            .await
            .unwrap_err();
        match check {
            "retry60" => assert_eq!(
                err.retry_after(),
                Some(SignedDuration::from_secs(60)),
                "{file}: {err}"
            ),
            "retry" => assert!(err.is_retryable(), "{file}: {err}"),
            "auth" => assert!(
                matches!(err, PlatformError::AuthExpired { .. }),
                "{file}: {err}"
            ),
            _ => assert!(
                matches!(err, PlatformError::Permanent { .. }),
                "{file}: {err}"
            ),
        }
    }
}

#[tokio::test]
async fn given_malformed_pages_when_polled_then_malformed_and_nothing_is_used() {
    for file in [
        "youtube/malformed_truncated.json",
        "youtube/malformed_no_video_id.json",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(fixture(file), "application/json"),
            )
            .mount(&server)
            .await;
        let err = listener(2_000)
            .listen(
                &source_for(&server.uri(), "hark"),
                &Cursor::new("yt"),
                limits(now(), 5),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PlatformError::Malformed {
                    platform: Platform::Youtube,
                    ..
                }
            ),
            "{file}: {err}"
        );
    }
}

#[tokio::test]
async fn given_the_documented_fixtures_when_read_then_videos_and_comments_parse() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("youtube/search_page.json"), "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/commentThreads"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("youtube/comment_threads.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let listened = listener(2_000)
        .listen(
            &source_for(&server.uri(), "hark"),
            &Cursor::new("yt"),
            limits(now(), 5),
        )
        .await
        .unwrap();
    assert_eq!(ids(&listened)[..2], ["9bZkp7q19f0", "dQw4w9WgXcQ"]);
    let video = &listened.mentions[1];
    assert_eq!(
        video.text,
        "Building a Rust social scheduler with Hark & Lambda\n\nIn this video we set up Hark's listener..."
    );
    assert_eq!(video.author.display_name.as_deref(), Some("Rust Dev"));
    let comment = listened
        .mentions
        .iter()
        .find(|m| m.native_id == "UgzDE2tasfmrYLyNkGt4AaABAg")
        .unwrap();
    assert_eq!(comment.engagement.likes, 7);
    assert_eq!(comment.engagement.replies, 2);
    assert_eq!(comment.author.handle, "viewer42");
}

#[test]
fn given_hark_queries_when_compiled_for_youtube_then_exclusions_are_left_to_the_local_check() {
    assert_eq!(youtube::youtube_q("hark -hiring"), "hark");
    assert_eq!(youtube::youtube_q("(a b) OR (c d)"), "a|c");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let _ = youtube::parse_search(&bytes);
        let _ = youtube::parse_comment_threads(&bytes);
        let _ = youtube::classify(status, &HeaderMap::new(), &bytes, now());
    }

    #[test]
    fn the_quota_reset_is_the_next_pacific_midnight(secs in 0i64..4_102_444_800) {
        let t = Timestamp::from_second(secs).unwrap();
        let reset = youtube::next_quota_reset(t);
        prop_assert!(reset > t);
        prop_assert!(t.duration_until(reset) <= SignedDuration::from_hours(25));
        let local = reset.in_tz(youtube::QUOTA_TIME_ZONE).unwrap();
        prop_assert_eq!((local.hour(), local.minute(), local.second()), (0, 0, 0));
        prop_assert_eq!(youtube::quota_day(reset), youtube::quota_day(t).tomorrow().unwrap());
    }

    #[test]
    fn any_quota_reason_is_classified_without_panic(reason in "[a-zA-Z_]{0,24}", status in 400u16..600) {
        let body = serde_json::json!({"error": {"code": status, "message": "m", "errors": [{"reason": reason, "domain": "d"}]}}).to_string();
        let err = youtube::classify(status, &HeaderMap::new(), body.as_bytes(), now());
        if reason == "quotaExceeded" {
            prop_assert_eq!(err.retry_after(), Some(now().duration_until(youtube::next_quota_reset(now()))));
        }
    }
}
