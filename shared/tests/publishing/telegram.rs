//! Telegram `sendMessage` against a wiremock fake of the Bot API.

use std::time::Duration;

use hark_shared::domain::Secret;
use hark_shared::platforms::telegram::TelegramPublisher;
use hark_shared::platforms::{PlatformError, Published, Publisher};
use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    assert_no_secret, clock, fixture, http, impatient_http, post, post_with_link,
};

const TOKEN: &str = "7012345678:AAHs3cr3t-T0k3n_ABCDEFGHIJKLMNOPQRS";
const SEND_PATH: &str = "/bot7012345678:AAHs3cr3t-T0k3n_ABCDEFGHIJKLMNOPQRS/sendMessage";

fn publisher(server: &MockServer, chat: &str) -> TelegramPublisher {
    TelegramPublisher::new(http(), Secret::new(TOKEN), chat)
        .with_base_url(server.uri())
        .with_clock(clock())
}

async fn answering(status: u16, fixture_path: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(fixture(fixture_path), "application/json"),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn given_a_public_channel_when_sending_then_the_message_has_a_t_me_link() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(body_json(json!({
            "chat_id": -100123,
            "text": "Hark 1.0 is out! https://example.com/hark",
            "link_preview_options": { "is_disabled": false },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("telegram/send_message_channel.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let published = publisher(&server, "-100123")
        .publish(
            &post_with_link("Hark 1.0 is out!", "https://example.com/hark"),
            "delivery-1",
        )
        .await
        .unwrap();

    assert_eq!(
        published,
        Published {
            platform_id: "-100123:42".into(),
            url: Some("https://t.me/brandnews/42".into()),
        }
    );
}

#[tokio::test]
async fn given_a_chat_without_username_when_sending_then_no_url_and_channel_names_go_as_strings() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(body_json(json!({
            "chat_id": "@brandalerts",
            "text": "Hark 1.0 is out!",
            "link_preview_options": { "is_disabled": true },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("telegram/send_message_private_group.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let published = publisher(&server, "@brandalerts")
        .with_link_previews(false)
        .publish(&post("Hark 1.0 is out!"), "delivery-1")
        .await
        .unwrap();

    assert_eq!(published.platform_id, "-100456:7");
    assert_eq!(published.url, None);
}

#[tokio::test]
async fn given_a_flood_wait_when_sending_then_retryable_after_the_body_retry_after() {
    let server = answering(429, "telegram/error_429.json").await;

    let err = publisher(&server, "-100123")
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert_eq!(err.retry_after(), Some(SignedDuration::from_secs(35)));
    assert_eq!(
        err.to_string(),
        "telegram: temporarily unavailable (HTTP 429: Too Many Requests: retry after 35), retry in 35s"
    );
    assert_no_secret(&err, TOKEN);
}

#[tokio::test]
async fn given_a_revoked_token_when_sending_then_auth_expired_without_the_token() {
    let server = answering(401, "telegram/error_401.json").await;

    let err = publisher(&server, "-100123")
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::AuthExpired { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "telegram: credentials expired or revoked: Unauthorized"
    );
    assert_no_secret(&err, TOKEN);
}

#[tokio::test]
async fn given_bad_requests_when_sending_then_permanent_with_telegrams_description() {
    for (status, fixture_path, expected) in [
        (
            400,
            "telegram/error_400_chat_not_found.json",
            "telegram rejected the request (HTTP 400): Bad Request: chat not found",
        ),
        (
            403,
            "telegram/error_403.json",
            "telegram rejected the request (HTTP 403): Forbidden: bot was kicked from the channel chat",
        ),
        (
            400,
            "telegram/error_400_migrated.json",
            "telegram rejected the request (HTTP 400): Bad Request: group chat was upgraded to a supergroup chat (the chat moved to id -1001234567890)",
        ),
    ] {
        let server = answering(status, fixture_path).await;
        let err = publisher(&server, "-100123")
            .publish(&post("hi"), "d")
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_no_secret(&err, TOKEN);
    }
}

#[tokio::test]
async fn given_a_timeout_after_sending_when_publishing_then_ambiguous_and_the_token_is_not_shown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(
                    fixture("telegram/send_message_channel.json"),
                    "application/json",
                )
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;

    let err = TelegramPublisher::new(impatient_http(), Secret::new(TOKEN), "-100123")
        .with_base_url(server.uri())
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert!(matches!(err, PlatformError::Ambiguous { .. }), "{err}");
    assert_eq!(err.to_string(), "telegram: outcome unknown (timed out)");
    assert_no_secret(&err, TOKEN);
}

#[tokio::test]
async fn given_nothing_listening_when_sending_then_retryable_and_the_token_is_not_shown() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = TelegramPublisher::new(http(), Secret::new(TOKEN), "-100123")
        .with_base_url(format!("http://127.0.0.1:{port}"))
        .publish(&post("hi"), "d")
        .await
        .unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert_no_secret(&err, TOKEN);
}

#[tokio::test]
async fn given_text_over_4096_utf16_units_when_sending_then_refused_before_any_request() {
    let server = MockServer::start().await;

    let err = publisher(&server, "-100123")
        .publish(&post(&"🦀".repeat(2049)), "d")
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "telegram rejected the request: Telegram allows 4096 characters (UTF-16 code units), this text has 4098 (2 over)"
    );
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}
