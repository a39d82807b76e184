//! Bluesky publishing against the stateful fake PDS (`tests/src/fakes/bluesky.rs`, the same
//! fake the end-to-end suites use).

use std::sync::Arc;

use hark_shared::domain::Secret;
use hark_shared::platforms::bluesky::{BlueskyPublisher, record_key};
use hark_shared::platforms::{HttpClient, PlatformError, Publisher, UrlError};
use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::bluesky_fake::{
    BLUESKY_APP_PASSWORD as APP_PASSWORD, BLUESKY_DID as DID, BLUESKY_HANDLE as HANDLE, FakePds,
};
use crate::faults::Fault;
use crate::support::{assert_no_secret, clock, http, now, post, post_with_link};

fn publisher(pds: &FakePds) -> BlueskyPublisher {
    BlueskyPublisher::new(http(), pds.uri(), HANDLE, Secret::new(APP_PASSWORD)).with_clock(clock())
}

#[tokio::test]
async fn given_a_new_publisher_when_publishing_then_logs_in_once_and_creates_the_post_at_the_derived_key()
 {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds).with_langs(["en".to_owned()]);

    let first = bsky
        .publish(&post("Hark 1.0 is out!"), "delivery-1")
        .await
        .unwrap();
    let second = bsky
        .publish(&post("And again"), "delivery-2")
        .await
        .unwrap();

    let rkey = record_key("delivery-1");
    assert_eq!(
        first.platform_id,
        format!("at://{DID}/app.bsky.feed.post/{rkey}")
    );
    assert_eq!(
        first.url.as_deref(),
        Some(format!("https://bsky.app/profile/{HANDLE}/post/{rkey}").as_str())
    );
    assert_ne!(first.platform_id, second.platform_id);
    assert_eq!(
        pds.calls("com.atproto.server.createSession"),
        1,
        "session is cached"
    );
    let records = pds.records();
    assert_eq!(
        records[&rkey],
        json!({
            "$type": "app.bsky.feed.post",
            "text": "Hark 1.0 is out!",
            "createdAt": "2026-01-10T12:00:00.000Z",
            "langs": ["en"],
        })
    );
    assert_eq!(records.len(), 2);
}

#[tokio::test]
async fn given_umlauts_and_emoji_before_a_link_when_publishing_then_facets_use_utf8_byte_offsets() {
    let pds = FakePds::start().await;
    pds.register_handle("alice.bsky.social", "did:plc:alice000000000000000000");
    let bsky = publisher(&pds);

    bsky.publish(
        &post_with_link(
            "Grüße aus Köln 🦀🇩🇪 #rustlang mit @alice.bsky.social",
            "https://example.com/launch?utm=hark&x=1",
        ),
        "delivery-facets",
    )
    .await
    .unwrap();

    // The fake also checked that every range covers exactly its feature.
    let record = &pds.records()[&record_key("delivery-facets")];
    assert_eq!(
        record["text"],
        "Grüße aus Köln 🦀🇩🇪 #rustlang mit @alice.bsky.social https://example.com/launch?utm=hark&x=1"
    );
    assert_eq!(
        record["facets"],
        json!([
            { "index": { "byteStart": 31, "byteEnd": 40 },
              "features": [{ "$type": "app.bsky.richtext.facet#tag", "tag": "rustlang" }] },
            { "index": { "byteStart": 45, "byteEnd": 63 },
              "features": [{ "$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice000000000000000000" }] },
            { "index": { "byteStart": 64, "byteEnd": 103 },
              "features": [{ "$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/launch?utm=hark&x=1" }] },
        ])
    );
}

#[tokio::test]
async fn given_an_unresolvable_mention_when_publishing_then_it_stays_plain_text() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);

    bsky.publish(&post("ping @ghost.example.com #hark"), "delivery-ghost")
        .await
        .unwrap();

    let record = &pds.records()[&record_key("delivery-ghost")];
    assert_eq!(record["text"], "ping @ghost.example.com #hark");
    assert_eq!(
        record["facets"],
        json!([{ "index": { "byteStart": 24, "byteEnd": 29 },
                 "features": [{ "$type": "app.bsky.richtext.facet#tag", "tag": "hark" }] }])
    );
    assert_eq!(pds.calls("com.atproto.identity.resolveHandle"), 1);
}

#[tokio::test]
async fn given_an_expired_access_token_when_publishing_then_refreshes_and_retries_once() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);
    bsky.publish(&post("first"), "delivery-a").await.unwrap();

    pds.expire_access_tokens(); // the PDS now answers 400 ExpiredToken
    let published = bsky.publish(&post("second"), "delivery-b").await.unwrap();

    assert!(published.platform_id.ends_with(&record_key("delivery-b")));
    assert_eq!(pds.calls("com.atproto.server.refreshSession"), 1);
    assert_eq!(
        pds.calls("com.atproto.server.createSession"),
        1,
        "no new login"
    );
    assert_eq!(pds.calls("com.atproto.repo.createRecord"), 3); // ok, expired, retried
    assert_eq!(pds.records().len(), 2);

    // The refreshed session is cached: the next post needs no refresh.
    bsky.publish(&post("third"), "delivery-c").await.unwrap();
    assert_eq!(pds.calls("com.atproto.server.refreshSession"), 1);
}

#[tokio::test]
async fn given_expired_access_and_refresh_tokens_when_publishing_then_logs_in_again() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);
    bsky.publish(&post("first"), "delivery-a").await.unwrap();

    pds.expire_access_tokens();
    pds.expire_refresh_tokens();
    bsky.publish(&post("second"), "delivery-b").await.unwrap();

    assert_eq!(pds.calls("com.atproto.server.refreshSession"), 1);
    assert_eq!(pds.calls("com.atproto.server.createSession"), 2);
    assert_eq!(pds.records().len(), 2);
}

#[tokio::test]
async fn given_revoked_sessions_when_publishing_then_logs_in_again_with_the_app_password() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);
    bsky.publish(&post("first"), "delivery-a").await.unwrap();

    pds.revoke_sessions(); // tokens now answer 400 InvalidToken
    bsky.publish(&post("second"), "delivery-b").await.unwrap();

    assert_eq!(pds.calls("com.atproto.server.refreshSession"), 1);
    assert_eq!(pds.calls("com.atproto.server.createSession"), 2);
    assert_eq!(pds.records().len(), 2);
}

#[tokio::test]
async fn given_the_app_password_was_revoked_when_publishing_then_auth_expired_and_nothing_created()
{
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);
    bsky.publish(&post("first"), "delivery-a").await.unwrap();

    pds.revoke_app_password();
    let err = bsky
        .publish(&post("second"), "delivery-b")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_no_secret(&err, APP_PASSWORD);
    assert_no_secret(&err, "eyJ"); // no session token either
    assert_eq!(pds.records().len(), 1);
}

#[tokio::test]
async fn given_a_wrong_app_password_when_publishing_then_auth_expired_without_the_password_and_nothing_created()
 {
    let pds = FakePds::start().await;
    let wrong = "wrong-pass-1234";
    let bsky =
        BlueskyPublisher::new(http(), pds.uri(), HANDLE, Secret::new(wrong)).with_clock(clock());

    let err = bsky
        .publish(&post("hello"), "delivery-1")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "bluesky: credentials expired or revoked: AuthenticationRequired: Invalid identifier or password"
    );
    assert_no_secret(&err, wrong);
    assert!(pds.records().is_empty());
    assert_eq!(pds.calls("com.atproto.repo.createRecord"), 0);
}

#[tokio::test]
async fn given_a_lost_create_response_when_the_delivery_is_retried_then_exactly_one_post_exists() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);
    pds.answer_next_create_with_bad_gateway(); // committed, but the client sees a 502

    let first = bsky
        .publish(&post("launch"), "delivery-lost")
        .await
        .unwrap();
    // The delivery is retried anyway (say its state update was lost too): the second create
    // hits the existing key, the PDS answers 500, and the record is read back.
    let second = bsky
        .publish(&post("launch"), "delivery-lost")
        .await
        .unwrap();

    assert_eq!(first, second);
    assert_eq!(pds.records().len(), 1, "exactly one post on the PDS");
    assert_eq!(pds.calls("com.atproto.repo.createRecord"), 2);
    assert_eq!(pds.calls("com.atproto.repo.getRecord"), 2);
}

#[tokio::test]
async fn given_a_create_that_failed_before_commit_then_retryable_and_the_retry_creates_one_post() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);
    let rkey = record_key("delivery-x");
    pds.inject(&rkey, Fault::ServerError); // a 500 before anything is written

    let err = bsky
        .publish(&post("launch"), "delivery-x")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.to_string(),
        "bluesky: temporarily unavailable (HTTP 500: InternalServerError: Internal Server Error)"
    );
    assert!(
        pds.records().is_empty(),
        "the read-back found nothing, so nothing is claimed"
    );
    assert_eq!(pds.injected(), vec![(rkey.clone(), Fault::ServerError)]);

    bsky.publish(&post("launch"), "delivery-x").await.unwrap();
    assert_eq!(pds.records().len(), 1);
    assert_eq!(pds.writes(), vec![(rkey, "launch".to_owned())]);
}

#[tokio::test]
async fn given_the_write_quota_is_spent_when_publishing_then_retryable_after_the_ratelimit_reset() {
    // The PDS and the publisher share one clock, so `RateLimit-Reset` means the same to both.
    let clock = clock();
    let pds = FakePds::start_with_clock(clock.clone()).await;
    let bsky = BlueskyPublisher::new(http(), pds.uri(), HANDLE, Secret::new(APP_PASSWORD))
        .with_clock(clock.clone());
    pds.spend_write_quota_until(now() + SignedDuration::from_secs(120));

    let err = bsky
        .publish(&post("launch"), "delivery-1")
        .await
        .unwrap_err();

    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(120)));
    assert_eq!(
        err.to_string(),
        "bluesky: temporarily unavailable (HTTP 429: RateLimitExceeded: Rate Limit Exceeded), retry in 120s"
    );
    assert!(pds.records().is_empty());

    // Once the reset has passed, the quota is back and the retry creates the post.
    clock.advance(SignedDuration::from_secs(120));
    bsky.publish(&post("launch"), "delivery-1").await.unwrap();
    assert_eq!(pds.records().len(), 1);
}

#[tokio::test]
async fn given_a_record_the_pds_refuses_when_publishing_then_permanent_with_its_name_and_message() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds).with_langs(["english please".to_owned()]);

    let err = bsky
        .publish(&post("hello"), "delivery-1")
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "bluesky rejected the request (HTTP 400): InvalidRequest: Invalid app.bsky.feed.post record: Record/langs/0 must be a valid language code"
    );
    assert!(pds.records().is_empty());
}

#[tokio::test]
async fn given_more_than_three_languages_when_publishing_then_the_first_three_are_declared_and_the_post_accepted()
 {
    // The lexicon allows at most 3 `langs`; the fake PDS refuses a fourth.
    let pds = FakePds::start().await;
    let langs = ["en", "de", "fr", "es"].map(str::to_owned);
    let bsky = publisher(&pds).with_langs(langs);

    bsky.publish(&post("hello"), "delivery-1").await.unwrap();

    let record = &pds.records()[&record_key("delivery-1")];
    assert_eq!(record["langs"], json!(["en", "de", "fr"]));
}

#[tokio::test]
async fn given_text_over_300_graphemes_when_publishing_then_refused_before_any_request() {
    let pds = FakePds::start().await;
    let bsky = publisher(&pds);

    let err = bsky
        .publish(&post(&"ü".repeat(301)), "delivery-1")
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "bluesky rejected the request: Bluesky allows 300 graphemes, this text has 301 (1 over)"
    );
    assert_eq!(pds.total_calls(), 0);
}

#[tokio::test]
async fn given_a_loopback_service_without_the_private_opt_in_then_refused_before_any_request() {
    let pds = FakePds::start().await;
    let bsky = BlueskyPublisher::new(
        HttpClient::new(false).unwrap(),
        pds.uri(),
        HANDLE,
        Secret::new(APP_PASSWORD),
    )
    .with_clock(Arc::new(hark_shared::clock::SystemClock));

    let err = bsky
        .publish(&post("hello"), "delivery-1")
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            PlatformError::Url {
                source: UrlError::Private { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(pds.total_calls(), 0);
}

#[tokio::test]
async fn given_an_entryway_whose_session_names_the_account_pds_then_the_post_goes_to_that_pds() {
    let pds = FakePds::start().await;
    let entryway = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pds.issue_session()))
        .expect(1)
        .mount(&entryway)
        .await;
    let bsky = BlueskyPublisher::new(http(), entryway.uri(), HANDLE, Secret::new(APP_PASSWORD))
        .with_clock(clock());

    bsky.publish(&post("via the PDS"), "delivery-1")
        .await
        .unwrap();

    assert_eq!(pds.records().len(), 1);
    assert_eq!(pds.calls("com.atproto.server.createSession"), 0);
    assert_eq!(
        entryway.received_requests().await.unwrap_or_default().len(),
        1
    );
}
