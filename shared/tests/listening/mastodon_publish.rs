//! Mastodon publishing (`POST /api/v1/statuses`).
//!
//! The fake reproduces: `Authorization: Bearer` checked (401 `The access token is
//! invalid`); `Idempotency-Key` honoured — the same key from the same account within an
//! hour returns the status already created instead of posting again; 200 (not 201) with
//! the Status; 422 `Validation failed: …` for a blank status; 429 with `X-RateLimit-Reset`
//! and no `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hark_shared::clock::ManualClock;
use hark_shared::domain::{Platform, Secret};
use hark_shared::platforms::mastodon::MastodonPublisher;
use hark_shared::platforms::{HttpClient, OutgoingPost, PlatformError, Publisher, UrlError};
use jiff::SignedDuration;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{fixture, fixture_json, header, http, now, requests_to, strict_http};

const STATUSES_PATH: &str = "/api/v1/statuses";
const TOKEN: &str = "write-token-s3cr3t";
/// How long Mastodon remembers an Idempotency-Key.
const KEY_TTL: Duration = Duration::from_secs(3600);

/// An account's statuses endpoint with Mastodon's idempotency guard.
#[derive(Clone, Default)]
struct StatusesEndpoint {
    state: Arc<Mutex<EndpointState>>,
}

#[derive(Default)]
struct EndpointState {
    /// Statuses created, in order.
    created: Vec<Value>,
    /// (token, key) → (index in `created`, when).
    keys: HashMap<(String, String), (usize, Instant)>,
    /// Hold the next answer longer than the client waits: the status is created, the
    /// response is lost.
    lose_next_response: bool,
}

impl StatusesEndpoint {
    fn losing_the_first_response(self) -> Self {
        self.state.lock().unwrap().lose_next_response = true;
        self
    }

    fn created(&self) -> Vec<Value> {
        self.state.lock().unwrap().created.clone()
    }

    async fn mount(&self, server: &MockServer) {
        Mock::given(method("POST"))
            .and(path(STATUSES_PATH))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }
}

impl Respond for StatusesEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let auth = header(request, "authorization").unwrap_or_default();
        let Some(token) = auth.strip_prefix("Bearer ").filter(|t| *t == TOKEN) else {
            return ResponseTemplate::new(401).set_body_raw(
                fixture!("mastodon/error_unauthorized.json"),
                "application/json",
            );
        };
        let key = header(request, "idempotency-key");
        if let Some(key) = &key
            && let Some((index, when)) = state.keys.get(&(token.to_owned(), key.clone()))
            && when.elapsed() < KEY_TTL
        {
            return ResponseTemplate::new(200).set_body_json(&state.created[*index]);
        }
        let text = request
            .body_json::<Value>()
            .ok()
            .and_then(|b| b["status"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if text.trim().is_empty() {
            return ResponseTemplate::new(422).set_body_raw(
                fixture!("mastodon/error_validation.json"),
                "application/json",
            );
        }
        let mut status = fixture_json(fixture!("mastodon/status_created.json"));
        let id = format!("1138000000000002{:02}", state.created.len());
        status["id"] = json!(id);
        status["url"] = json!(format!("https://mastodon.example/@brand/{id}"));
        status["content"] = json!(format!("<p>{text}</p>"));
        state.created.push(status.clone());
        if let Some(key) = key {
            let index = state.created.len() - 1;
            state
                .keys
                .insert((token.to_owned(), key), (index, Instant::now()));
        }
        let response = ResponseTemplate::new(200).set_body_json(&status);
        if std::mem::take(&mut state.lose_next_response) {
            response.set_delay(Duration::from_secs(3))
        } else {
            response
        }
    }
}

fn publisher(http: HttpClient, server: &MockServer, token: &str) -> MastodonPublisher {
    MastodonPublisher::new(
        http,
        server.uri(),
        Secret::new(token),
        Arc::new(ManualClock::new(now())),
    )
}

fn post(text: &str, link: Option<&str>) -> OutgoingPost {
    OutgoingPost {
        text: text.to_owned(),
        link: link.map(str::to_owned),
    }
}

#[tokio::test]
async fn given_a_post_with_a_link_when_published_then_200_status_id_and_url_and_the_key_is_sent() {
    let server = MockServer::start().await;
    let endpoint = StatusesEndpoint::default();
    endpoint.mount(&server).await;

    let published = publisher(http(), &server, TOKEN)
        .publish(
            &post(
                "Hark 1.0 is out! #rustlang",
                Some("https://example.com/hark"),
            ),
            "delivery-01",
        )
        .await
        .unwrap();

    assert_eq!(published.platform_id, "113800000000000200");
    assert_eq!(
        published.url.as_deref(),
        Some("https://mastodon.example/@brand/113800000000000200")
    );
    let requests = requests_to(&server, STATUSES_PATH).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        header(&requests[0], "idempotency-key").as_deref(),
        Some("delivery-01")
    );
    assert_eq!(
        header(&requests[0], "authorization").as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(
        body["status"],
        "Hark 1.0 is out! #rustlang\n\nhttps://example.com/hark"
    );
}

#[tokio::test]
async fn given_the_link_already_in_the_text_when_published_then_it_is_not_repeated() {
    let server = MockServer::start().await;
    StatusesEndpoint::default().mount(&server).await;

    publisher(http(), &server, TOKEN)
        .publish(
            &post(
                "Out now: https://example.com/hark 🎉",
                Some("https://example.com/hark"),
            ),
            "delivery-02",
        )
        .await
        .unwrap();

    let body: Value = requests_to(&server, STATUSES_PATH).await[0]
        .body_json()
        .unwrap();
    assert_eq!(body["status"], "Out now: https://example.com/hark 🎉");
}

#[tokio::test]
async fn given_the_response_is_lost_after_the_status_was_created_when_retried_with_the_same_key_then_exactly_one_status_exists()
 {
    let server = MockServer::start().await;
    let endpoint = StatusesEndpoint::default().losing_the_first_response();
    endpoint.mount(&server).await;
    let impatient = HttpClient::with_timeout(true, Duration::from_millis(300)).unwrap();
    let publisher = publisher(impatient, &server, TOKEN);
    let launch = post("Launch day", None);

    let first = publisher.publish(&launch, "delivery-03").await.unwrap_err();
    assert!(
        first.is_retryable(),
        "a lost response is safe to retry under an Idempotency-Key: {first:?}"
    );
    assert_eq!(
        endpoint.created().len(),
        1,
        "the first request did create it"
    );

    let retried = publisher.publish(&launch, "delivery-03").await.unwrap();

    let created = endpoint.created();
    assert_eq!(created.len(), 1, "the retry returned the same status");
    assert_eq!(retried.platform_id, created[0]["id"].as_str().unwrap());
    assert_eq!(requests_to(&server, STATUSES_PATH).await.len(), 2);

    // Another delivery (another key) is a new status: the guard is the key, not the text.
    publisher.publish(&launch, "delivery-04").await.unwrap();
    assert_eq!(endpoint.created().len(), 2);
}

#[tokio::test]
async fn given_a_blank_status_when_published_then_permanent_with_the_validation_message() {
    let server = MockServer::start().await;
    StatusesEndpoint::default().mount(&server).await;

    let err = publisher(http(), &server, TOKEN)
        .publish(&post("   ", None), "delivery-05")
        .await
        .unwrap_err();

    match err {
        PlatformError::Permanent {
            platform: Platform::Mastodon,
            status: Some(422),
            message,
        } => assert_eq!(message, "Validation failed: Text can't be blank"),
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn given_a_revoked_token_when_published_then_auth_expired_and_the_token_is_not_in_the_error()
{
    let server = MockServer::start().await;
    let endpoint = StatusesEndpoint::default();
    endpoint.mount(&server).await;

    let err = publisher(http(), &server, "revoked-token-zzz")
        .publish(&post("Hello", None), "delivery-06")
        .await
        .unwrap_err();

    match &err {
        PlatformError::AuthExpired { message, .. } => {
            assert_eq!(message, "The access token is invalid")
        }
        other => panic!("expected AuthExpired, got {other:?}"),
    }
    assert!(!format!("{err} {err:?}").contains("revoked-token-zzz"));
    assert!(endpoint.created().is_empty());
}

#[tokio::test]
async fn given_a_429_when_published_then_retryable_until_x_ratelimit_reset() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STATUSES_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_raw(
                    fixture!("mastodon/error_rate_limited.json"),
                    "application/json",
                )
                .insert_header("X-RateLimit-Limit", "300")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "2026-01-10T12:00:42.000000Z"),
        )
        .mount(&server)
        .await;

    let err = publisher(http(), &server, TOKEN)
        .publish(&post("Hello", None), "delivery-07")
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(42)));
}

#[tokio::test]
async fn given_a_server_error_when_published_then_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STATUSES_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_string("{\"error\":\"oops\"}"))
        .mount(&server)
        .await;

    let err = publisher(http(), &server, TOKEN)
        .publish(&post("Hello", None), "delivery-08")
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("oops"), "{err}");
}

#[tokio::test]
async fn given_an_unreadable_200_when_published_then_malformed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STATUSES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>ok</html>"))
        .mount(&server)
        .await;

    let err = publisher(http(), &server, TOKEN)
        .publish(&post("Hello", None), "delivery-09")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::Malformed { .. }), "{err:?}");
}

#[tokio::test]
async fn given_a_loopback_instance_when_private_urls_are_not_allowed_then_nothing_is_posted() {
    let server = MockServer::start().await;
    let endpoint = StatusesEndpoint::default();
    endpoint.mount(&server).await;

    let err = publisher(strict_http(), &server, TOKEN)
        .publish(&post("Hello", None), "delivery-10")
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
        "{err:?}"
    );
    assert!(endpoint.created().is_empty());
}
