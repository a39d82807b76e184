//! LinkedIn: the Posts API publisher against the reusable stateful fake
//! (`tests/src/fakes/linkedin.rs`, included here so the client tests and the end-to-end tests
//! share one specification) and wiremock for single answers, plus property tests.

#[allow(dead_code)]
#[path = "publishing/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../../tests/src/fakes/linkedin.rs"]
mod fake;
#[allow(dead_code)]
#[path = "../../tests/src/fakes/faults.rs"]
mod faults;

use std::sync::Arc;

use fake::{FakeLinkedIn, LINKEDIN_AUTHOR, LINKEDIN_TOKEN};
use faults::Fault;
use hark_shared::clock::ManualClock;
use hark_shared::domain::Secret;
use hark_shared::platforms::linkedin::{
    API_VERSION, LinkedInPublisher, commentary, escape_little_text, interpret_create, parse_posts,
    unescape_little_text,
};
use hark_shared::platforms::{Lookup, PlatformError, Published, Publisher};
use jiff::SignedDuration;
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;
use support::{assert_no_secret, fixture, http, impatient_http, now, post, post_with_link};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(now()))
}

async fn fake() -> FakeLinkedIn {
    FakeLinkedIn::start_with_clock(clock()).await
}

fn publisher(fake: &FakeLinkedIn) -> LinkedInPublisher {
    LinkedInPublisher::new(
        http(),
        LINKEDIN_AUTHOR,
        Secret::new(LINKEDIN_TOKEN),
        clock(),
    )
    .with_base_url(fake.uri())
}

#[tokio::test]
async fn given_a_text_with_reserved_characters_when_publishing_then_201_empty_body_gives_the_urn_from_the_header()
 {
    let fake = fake().await;

    let published = publisher(&fake)
        .publish(
            &post("Hark (v1.0) is out! #rust @team ~ *fast* [see] {x} <3 a|b \\o/ snake_case"),
            "d-1",
        )
        .await
        .unwrap();

    let created = fake.created();
    assert_eq!(created.len(), 1);
    assert_eq!(
        published,
        Published {
            platform_id: created[0].urn.clone(),
            url: Some(format!(
                "https://www.linkedin.com/feed/update/{}/",
                created[0].urn
            )),
        }
    );
    assert_eq!(
        created[0].text,
        "Hark (v1.0) is out! #rust @team ~ *fast* [see] {x} <3 a|b \\o/ snake_case",
        "the fake read the escaped commentary back to exactly the text"
    );
    assert_eq!(
        created[0].body,
        json!({
            "author": LINKEDIN_AUTHOR,
            "commentary": "Hark \\(v1.0\\) is out! \\#rust \\@team \\~ \\*fast\\* \\[see\\] \\{x\\} \\<3 a\\|b \\\\o/ snake\\_case",
            "visibility": "PUBLIC",
            "distribution": { "feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": [] },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        })
    );
}

#[tokio::test]
async fn given_a_link_when_publishing_then_an_article_card_carries_it() {
    let fake = fake().await;

    publisher(&fake)
        .publish(
            &post_with_link("Hark 1.0 is out", "https://example.com/hark"),
            "d-1",
        )
        .await
        .unwrap();

    let body = &fake.created()[0].body;
    assert_eq!(body["commentary"], "Hark 1.0 is out");
    assert_eq!(
        body["content"],
        json!({"article": {"source": "https://example.com/hark", "title": "Hark 1.0 is out"}})
    );
}

#[tokio::test]
async fn given_every_request_then_the_version_and_protocol_headers_are_sent() {
    let fake = fake().await;
    publisher(&fake).publish(&post("hello"), "d").await.unwrap();
    let requests = fake.server.received_requests().await.unwrap();
    let h = |name: &str| {
        requests[0]
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(h("linkedin-version").as_deref(), Some(API_VERSION));
    assert_eq!(h("x-restli-protocol-version").as_deref(), Some("2.0.0"));
    assert_eq!(h("authorization"), Some(format!("Bearer {LINKEDIN_TOKEN}")));
}

#[tokio::test]
async fn given_a_request_without_the_version_header_then_the_fake_answers_400_version_missing() {
    let fake = fake().await;
    let answer = reqwest::Client::new()
        .post(format!("{}/rest/posts", fake.uri()))
        .bearer_auth(LINKEDIN_TOKEN)
        .header("X-Restli-Protocol-Version", "2.0.0")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap();
    // The client's reading of that answer names the missing header.
    let err = interpret_create(status, &headers, &body, now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "linkedin rejected the request (HTTP 400): VERSION_MISSING: A version must be present. Please specify a version by adding the LinkedIn-Version header."
    );
}

#[tokio::test]
async fn given_our_version_was_sunset_when_publishing_then_permanent_naming_the_version() {
    let fake = fake().await;
    fake.only_version("202612");

    let err = publisher(&fake)
        .publish(&post("hello"), "d")
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "linkedin rejected the request (HTTP 426): NONEXISTENT_VERSION: Requested version {API_VERSION} is not active"
        )
    );
    assert!(fake.created().is_empty());
}

#[tokio::test]
async fn given_a_revoked_token_when_publishing_then_auth_expired_without_the_token() {
    let fake = fake().await;
    fake.revoke_token();
    let err = publisher(&fake)
        .publish(&post("hello"), "d")
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert!(err.to_string().contains("INVALID_ACCESS_TOKEN"), "{err}");
    assert_no_secret(&err, LINKEDIN_TOKEN);
}

#[tokio::test]
async fn given_an_author_the_token_cannot_post_as_when_publishing_then_permanent_403() {
    let fake = fake().await;
    let err = LinkedInPublisher::new(
        http(),
        "urn:li:organization:1",
        Secret::new(LINKEDIN_TOKEN),
        clock(),
    )
    .with_base_url(fake.uri())
    .publish(&post("hello"), "d")
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::Permanent {
                status: Some(403),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn given_an_account_that_is_not_a_urn_when_publishing_then_permanent_before_any_request() {
    let fake = fake().await;
    let err = LinkedInPublisher::new(http(), "hark-inc", Secret::new(LINKEDIN_TOKEN), clock())
        .with_base_url(fake.uri())
        .publish(&post("hello"), "d")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("urn:li:organization"), "{err}");
    assert!(fake.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn given_validation_and_throttle_answers_then_permanent_and_retryable_with_linkedins_words() {
    for (status, fixture_path, retryable, words) in [
        (
            422,
            "linkedin/error_422.json",
            false,
            "UNPROCESSABLE_ENTITY: /commentary :: length must be less than or equal to 3000 (serviceErrorCode 100)",
        ),
        (
            429,
            "linkedin/error_429.json",
            true,
            "Resource level throttle limit for calls to this resource is reached. (serviceErrorCode 101)",
        ),
        (400, "linkedin/error_426.json", false, "NONEXISTENT_VERSION"),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/rest/posts"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_raw(fixture(fixture_path), "application/json"),
            )
            .mount(&server)
            .await;
        let err = LinkedInPublisher::new(http(), LINKEDIN_AUTHOR, Secret::new("t"), clock())
            .with_base_url(server.uri())
            .publish(&post("hello"), "d")
            .await
            .unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{err}");
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[tokio::test]
async fn given_a_throttle_and_a_server_error_from_the_fake_then_retryable_and_nothing_created() {
    let fake = fake().await;
    fake.inject(
        "first",
        Fault::RateLimited {
            reset_in: SignedDuration::from_secs(60),
        },
    );
    fake.inject("second", Fault::ServerError);
    for text in ["first", "second"] {
        let err = publisher(&fake)
            .publish(&post(text), "d")
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
    assert!(fake.created().is_empty());
    assert_eq!(fake.injected().len(), 2);
}

#[tokio::test]
async fn given_a_text_over_3000_characters_when_publishing_then_refused_before_any_request() {
    let fake = fake().await;
    let err = publisher(&fake)
        .publish(&post(&"a".repeat(3001)), "d")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "linkedin rejected the request: LinkedIn allows 3000 characters (UTF-16 code units), this text has 3001 (1 over)"
    );
    assert!(fake.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn given_a_lost_response_when_publishing_then_ambiguous_and_find_published_finds_the_post() {
    let fake = fake().await;
    fake.inject("Launch #day (1)", Fault::LoseResponse);
    let err = LinkedInPublisher::new(
        impatient_http(),
        LINKEDIN_AUTHOR,
        Secret::new(LINKEDIN_TOKEN),
        clock(),
    )
    .with_base_url(fake.uri())
    .publish(&post("Launch #day (1)"), "d")
    .await
    .unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    assert_no_secret(&err, LINKEDIN_TOKEN);

    let found = publisher(&fake)
        .find_published(
            &post("Launch #day (1)"),
            now() - SignedDuration::from_mins(5),
        )
        .await
        .unwrap();
    let urn = fake.created()[0].urn.clone();
    assert_eq!(
        found,
        Lookup::Found(Published {
            url: Some(format!("https://www.linkedin.com/feed/update/{urn}/")),
            platform_id: urn,
        })
    );
    let (_, query) = fake
        .requests()
        .into_iter()
        .find(|(m, _)| m == "GET")
        .unwrap();
    assert!(
        query.contains("q=author") && query.contains("author=urn%3Ali%3Aorganization%3A5515715"),
        "{query}"
    );
    let finder = fake
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "GET")
        .unwrap();
    assert_eq!(
        finder
            .headers
            .get("x-restli-method")
            .and_then(|v| v.to_str().ok()),
        Some("FINDER")
    );
}

#[tokio::test]
async fn given_many_posts_when_looking_then_pages_are_followed_and_only_the_exact_commentary_matches()
 {
    let fake = fake().await;
    let linkedin = publisher(&fake);
    linkedin
        .publish(&post("The one #rust"), "d-0")
        .await
        .unwrap();
    for n in 0..60 {
        linkedin
            .publish(&post(&format!("Filler {n}")), "f")
            .await
            .unwrap();
    }
    let since = now() - SignedDuration::from_mins(1);

    let found = linkedin
        .find_published(&post("The one #rust"), since)
        .await
        .unwrap();
    assert!(
        matches!(found, Lookup::Found(ref p) if p.platform_id == fake.created()[0].urn),
        "{found:?}"
    );
    assert_eq!(
        linkedin
            .find_published(&post("The one #Rust"), since)
            .await
            .unwrap(),
        Lookup::NotFound
    );
}

#[tokio::test]
async fn given_only_older_posts_when_looking_then_not_found_after_the_first_old_one() {
    let server = MockServer::start().await;
    Mock::given(path("/rest/posts"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("linkedin/posts_page.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let linkedin = LinkedInPublisher::new(http(), LINKEDIN_AUTHOR, Secret::new("t"), clock())
        .with_base_url(server.uri());
    // The fixture's post (created 2026-01-10T12:00:00Z minus 1h20m) is older than `since`.
    assert_eq!(
        linkedin
            .find_published(
                &post("Sample text post #rust"),
                now() - SignedDuration::from_mins(10)
            )
            .await
            .unwrap(),
        Lookup::NotFound
    );
    assert!(matches!(
        linkedin
            .find_published(
                &post("Sample text post #rust"),
                now() - SignedDuration::from_hours(3)
            )
            .await
            .unwrap(),
        Lookup::Found(_)
    ));
}

#[test]
fn given_a_201_without_x_restli_id_then_ambiguous_not_success() {
    let err = interpret_create(201, &HeaderMap::new(), b"", now()).unwrap_err();
    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-restli-id",
        HeaderValue::from_static("urn:li:ugcPost:7012345678901234567"),
    );
    assert_eq!(
        interpret_create(201, &headers, b"", now())
            .unwrap()
            .platform_id,
        "urn:li:ugcPost:7012345678901234567"
    );
}

proptest! {
    #[test]
    fn escaping_round_trips(text in ".{0,120}") {
        prop_assert_eq!(unescape_little_text(&escape_little_text(&text)), text.clone());
        // Every reserved character is preceded by an odd run of backslashes.
        let escaped = escape_little_text(&text);
        let mut backslashes = 0usize;
        for c in escaped.chars() {
            if c == '\\' { backslashes += 1; continue; }
            if hark_shared::platforms::linkedin::RESERVED.contains(&c) {
                prop_assert!(backslashes % 2 == 1, "{}", escaped);
            }
            backslashes = 0;
        }
    }

    #[test]
    fn commentary_is_the_escaped_trimmed_text(text in "[ a-z#@_()]{0,40}") {
        prop_assert_eq!(commentary(&post(&text)), escape_little_text(text.trim()));
    }

    #[test]
    fn parsers_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let result = interpret_create(status, &HeaderMap::new(), &body, now());
        prop_assert!(result.is_err(), "no x-restli-id, never a success");
        let _ = parse_posts(&body);
    }

    #[test]
    fn unescaping_never_panics(text in ".{0,80}") {
        let _ = unescape_little_text(&text);
    }
}
