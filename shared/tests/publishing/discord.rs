//! Discord webhooks against a wiremock fake.

use hark_shared::domain::Secret;
use hark_shared::platforms::discord::DiscordPublisher;
use hark_shared::platforms::{PlatformError, Published, Publisher};
use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{assert_no_secret, clock, fixture, http, post, post_with_link};

const WEBHOOK_TOKEN: &str = "Xk9s3cr3tW3bh00kT0k3n_abcdefghijklmnop";
const WEBHOOK_PATH: &str =
    "/api/webhooks/1200000000000000001/Xk9s3cr3tW3bh00kT0k3n_abcdefghijklmnop";

fn publisher(server: &MockServer, query: &str) -> DiscordPublisher {
    DiscordPublisher::new(
        http(),
        Secret::new(format!("{}{WEBHOOK_PATH}{query}", server.uri())),
    )
    .with_clock(clock())
}

async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(WEBHOOK_PATH))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn given_a_webhook_when_posting_then_waits_for_the_message_and_returns_its_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(WEBHOOK_PATH))
        .and(query_param("wait", "true"))
        .and(query_param("thread_id", "42"))
        .and(body_json(json!({
            "content": "Hark 1.0 is out! https://example.com/hark",
            "allowed_mentions": { "parse": [] },
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("discord/message.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let published = publisher(&server, "?thread_id=42&wait=false")
        .publish(
            &post_with_link("Hark 1.0 is out!", "https://example.com/hark"),
            "delivery-1",
        )
        .await
        .unwrap();

    assert_eq!(
        published,
        Published {
            platform_id: "1327412345678901234".into(),
            url: None,
        }
    );
}

#[tokio::test]
async fn given_a_rate_limit_when_posting_then_retryable_after_the_precise_body_value() {
    let server = answering(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "65")
            .insert_header("X-RateLimit-Scope", "user")
            .set_body_raw(fixture("discord/error_429.json"), "application/json"),
    )
    .await;

    let err = publisher(&server, "")
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert_eq!(
        err.retry_after(),
        Some(SignedDuration::from_secs_f64(64.57))
    );
    assert_eq!(
        err.to_string(),
        "discord: temporarily unavailable (HTTP 429: You are being rate limited.), retry in 64s"
    );
    assert_no_secret(&err, WEBHOOK_TOKEN);
}

#[tokio::test]
async fn given_a_rate_limit_without_a_body_when_posting_then_the_header_is_used() {
    let server = answering(ResponseTemplate::new(429).insert_header("Retry-After", "7")).await;

    let err = publisher(&server, "")
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(7)));
}

#[tokio::test]
async fn given_a_deleted_webhook_when_posting_then_auth_expired_without_the_webhook_url() {
    let server = answering(ResponseTemplate::new(404).set_body_raw(
        fixture("discord/error_unknown_webhook.json"),
        "application/json",
    ))
    .await;

    let err = publisher(&server, "")
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "discord: credentials expired or revoked: the webhook no longer exists: Unknown Webhook (code 10015)"
    );
    assert_no_secret(&err, WEBHOOK_TOKEN);
}

#[tokio::test]
async fn given_an_invalid_form_body_when_posting_then_permanent_with_message_and_code() {
    let server = answering(ResponseTemplate::new(400).set_body_raw(
        fixture("discord/error_invalid_form_body.json"),
        "application/json",
    ))
    .await;

    let err = publisher(&server, "")
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "discord rejected the request (HTTP 400): Invalid Form Body (code 50035)"
    );
}

#[tokio::test]
async fn given_content_over_2000_characters_when_posting_then_refused_before_any_request() {
    let server = MockServer::start().await;

    let err = publisher(&server, "")
        .publish(&post(&"a".repeat(2001)), "d")
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "discord rejected the request: Discord allows 2000 characters, this text has 2001 (1 over)"
    );
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}
