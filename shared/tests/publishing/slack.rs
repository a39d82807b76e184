//! Slack incoming webhooks against a wiremock fake (plain-text bodies, as Slack answers).

use std::time::Duration;

use hark_shared::domain::Secret;
use hark_shared::platforms::slack::SlackPublisher;
use hark_shared::platforms::{HttpClient, PlatformError, Published, Publisher, UrlError};
use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{assert_no_secret, clock, fixture, http, impatient_http, post};

const HOOK_SECRET: &str = "zQ9s3cr3tH00kP4rt0fTheUrl";
const HOOK_PATH: &str = "/services/T0001/B0001/zQ9s3cr3tH00kP4rt0fTheUrl";

fn hook_url(server: &MockServer) -> Secret {
    Secret::new(format!("{}{HOOK_PATH}", server.uri()))
}

fn publisher(server: &MockServer) -> SlackPublisher {
    SlackPublisher::new(http(), hook_url(server)).with_clock(clock())
}

fn text_body(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(&format!("slack/{code}.txt")), "text/plain")
}

async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn given_a_webhook_when_posting_then_ok_and_the_id_comes_from_the_delivery() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(body_json(json!({ "text": "Hark 1.0 is out!" })))
        .respond_with(text_body(200, "ok"))
        .expect(1)
        .mount(&server)
        .await;

    let published = publisher(&server)
        .publish(&post("Hark 1.0 is out!"), "delivery-7")
        .await
        .unwrap();

    assert_eq!(
        published,
        Published {
            platform_id: "slack:delivery-7".into(),
            url: None,
        }
    );
}

#[tokio::test]
async fn given_a_rate_limit_when_posting_then_retryable_after_retry_after() {
    let server = answering(ResponseTemplate::new(429).insert_header("Retry-After", "30")).await;

    let err = publisher(&server)
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(30)));
    assert_no_secret(&err, HOOK_SECRET);
}

#[tokio::test]
async fn given_each_documented_error_when_posting_then_classified_with_slacks_code() {
    for (status, code, kind, message) in [
        (
            400,
            "invalid_payload",
            "permanent",
            "slack rejected the request (HTTP 400): invalid_payload",
        ),
        (
            400,
            "no_text",
            "permanent",
            "slack rejected the request (HTTP 400): no_text",
        ),
        (
            400,
            "user_not_found",
            "permanent",
            "slack rejected the request (HTTP 400): user_not_found",
        ),
        (
            403,
            "action_prohibited",
            "permanent",
            "slack rejected the request (HTTP 403): action_prohibited",
        ),
        (
            404,
            "channel_not_found",
            "permanent",
            "slack rejected the request (HTTP 404): channel_not_found",
        ),
        (
            404,
            "no_service",
            "auth_expired",
            "slack: credentials expired or revoked: the webhook no longer works: no_service",
        ),
        (
            404,
            "no_team",
            "auth_expired",
            "slack: credentials expired or revoked: the webhook no longer works: no_team",
        ),
        (
            410,
            "channel_is_archived",
            "auth_expired",
            "slack: credentials expired or revoked: the webhook no longer works: channel_is_archived",
        ),
        (
            403,
            "invalid_token",
            "auth_expired",
            "slack: credentials expired or revoked: the webhook no longer works: invalid_token",
        ),
        (
            500,
            "rollup_error",
            "retryable",
            "slack: temporarily unavailable (HTTP 500: rollup_error)",
        ),
    ] {
        let server = answering(text_body(status, code)).await;
        let err = publisher(&server)
            .publish(&post("hi"), "d")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{code}");
        assert_eq!(err.to_string(), message);
        assert_no_secret(&err, HOOK_SECRET);
    }
}

#[tokio::test]
async fn given_a_timeout_after_sending_when_posting_then_ambiguous_because_slack_has_no_idempotency()
 {
    let server = answering(text_body(200, "ok").set_delay(Duration::from_secs(3))).await;

    let err = SlackPublisher::new(impatient_http(), hook_url(&server))
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    assert_no_secret(&err, HOOK_SECRET);
}

#[tokio::test]
async fn given_a_loopback_webhook_without_the_private_opt_in_then_refused_naming_only_the_host() {
    let server = answering(text_body(200, "ok")).await;

    let err = SlackPublisher::new(HttpClient::new(false).unwrap(), hook_url(&server))
        .publish(&post("hi"), "d")
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
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert_no_secret(&err, HOOK_SECRET);
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}
