//! Signed generic webhooks: the receiver can verify every request it gets.

use hark_shared::domain::Secret;
use hark_shared::platforms::webhook::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier, verify_signature,
};
use hark_shared::platforms::{PlatformError, Publisher};
use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{assert_no_secret, clock, http, now, post_with_link};

const SIGNING_SECRET: &str = "whsec_5f9c2a7e1b";
const HOOK_PATH: &str = "/hooks/hark-alerts-7x3k";

fn notifier(server: &MockServer) -> WebhookNotifier {
    WebhookNotifier::new(
        http(),
        Secret::new(format!("{}{HOOK_PATH}", server.uri())),
        Secret::new(SIGNING_SECRET),
    )
    .with_clock(clock())
}

async fn answering(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK_PATH))
        .and(header_exists(SIGNATURE_HEADER))
        .and(header_exists(TIMESTAMP_HEADER))
        .respond_with(ResponseTemplate::new(status).set_body_string("nope"))
        .mount(&server)
        .await;
    server
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 1);
    requests.remove(0)
}

fn header(request: &Request, name: &str) -> String {
    request.headers[name].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn given_an_alert_when_notifying_then_the_receiver_can_verify_body_and_time() {
    let server = answering(204).await;
    let alert = json!({ "event": "trigger.fired", "rule": "negative-wave", "share": 0.46 });

    notifier(&server).notify(&alert).await.unwrap();

    let request = only_request(&server).await;
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, alert);
    assert!(verify_signature(
        &Secret::new(SIGNING_SECRET),
        &request.body,
        &header(&request, SIGNATURE_HEADER)
    ));
    assert!(!verify_signature(
        &Secret::new("someone-else"),
        &request.body,
        &header(&request, SIGNATURE_HEADER)
    ));
    assert_eq!(
        header(&request, TIMESTAMP_HEADER),
        now().as_second().to_string()
    );
    assert_eq!(header(&request, "content-type"), "application/json");
}

#[tokio::test]
async fn given_a_webhook_channel_when_publishing_then_the_delivery_id_is_in_the_signed_payload() {
    let server = answering(200).await;

    let published = notifier(&server)
        .publish(
            &post_with_link("Launch!", "https://example.com"),
            "delivery-9",
        )
        .await
        .unwrap();

    assert_eq!(published.platform_id, "webhook:delivery-9");
    let request = only_request(&server).await;
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({ "text": "Launch! https://example.com", "link": "https://example.com", "idempotency_key": "delivery-9" })
    );
}

#[tokio::test]
async fn given_receiver_failures_when_notifying_then_classified_without_secrets() {
    for (status, kind) in [
        (500, "retryable"),
        (429, "retryable"),
        (401, "auth_expired"),
        (403, "auth_expired"),
        (404, "permanent"),
    ] {
        let server = answering(status).await;
        let err = notifier(&server)
            .notify(&json!({"x": 1}))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "HTTP {status}: {err}");
        assert_no_secret(&err, SIGNING_SECRET);
        assert_no_secret(&err, HOOK_PATH);
    }
}

#[tokio::test]
async fn given_a_retry_after_when_the_receiver_is_busy_then_it_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "12"))
        .mount(&server)
        .await;

    let err = notifier(&server).notify(&json!({})).await.unwrap_err();

    assert!(matches!(err, PlatformError::Retryable { .. }), "{err}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(12)));
}
