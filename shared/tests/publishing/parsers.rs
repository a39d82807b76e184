//! Property tests: the response parsers turn any bytes into a typed result, never a panic,
//! and never call an error status a success.

use hark_shared::platforms::{bluesky, discord, slack, telegram, webhook};
use proptest::prelude::*;
use reqwest::header::HeaderMap;

use crate::support::{fixture, now};

fn statuses() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(400),
        Just(401),
        Just(404),
        Just(429),
        Just(500),
        100u16..600
    ]
}

/// Arbitrary bytes, plus the real fixtures cut at a random point.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let fixtures = vec![
        fixture("telegram/send_message_channel.json"),
        fixture("telegram/error_429.json"),
        fixture("discord/message.json"),
        fixture("discord/error_429.json"),
        fixture("bluesky/create_session.json"),
        fixture("bluesky/create_record.json"),
        fixture("bluesky/error_expired_token.json"),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (
            proptest::sample::select(fixtures),
            any::<prop::sample::Index>()
        )
            .prop_map(|(body, cut)| body[..cut.index(body.len() + 1)].to_vec()),
    ]
}

proptest! {
    #[test]
    fn telegram_never_panics_and_errors_stay_errors(status in statuses(), body in bodies()) {
        let result = telegram::interpret_send_message(status, &HeaderMap::new(), &body, now());
        if !(200..300).contains(&status) {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn discord_never_panics_and_errors_stay_errors(status in statuses(), body in bodies()) {
        let result = discord::interpret_execute_webhook(status, &HeaderMap::new(), &body, now());
        if !(200..300).contains(&status) {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn slack_never_panics_and_only_2xx_is_success(status in statuses(), body in bodies()) {
        let result = slack::interpret_webhook_response(status, &HeaderMap::new(), &body, now());
        prop_assert_eq!(result.is_ok(), (200..300).contains(&status));
    }

    #[test]
    fn webhook_never_panics_and_only_2xx_is_success(status in statuses(), body in bodies()) {
        let result = webhook::interpret_response(status, &HeaderMap::new(), &body, now());
        prop_assert_eq!(result.is_ok(), (200..300).contains(&status));
    }

    #[test]
    fn bluesky_never_panics(status in statuses(), body in bodies()) {
        let _ = bluesky::classify_error(status, &HeaderMap::new(), &body, now());
        let _ = bluesky::parse_record_ref(&body, "brand.bsky.social");
    }
}

#[test]
fn given_a_2xx_with_an_unreadable_body_then_malformed_not_success() {
    let t = telegram::interpret_send_message(200, &HeaderMap::new(), b"{\"ok\":tr", now());
    assert_eq!(t.unwrap_err().kind(), "malformed");
    let t = telegram::interpret_send_message(200, &HeaderMap::new(), b"{\"ok\":false}", now());
    assert_eq!(t.unwrap_err().kind(), "malformed");
    let d = discord::interpret_execute_webhook(200, &HeaderMap::new(), b"<html>", now());
    assert_eq!(d.unwrap_err().kind(), "malformed");
    let b = bluesky::parse_record_ref(b"{\"uri\":1}", "h");
    assert_eq!(b.unwrap_err().kind(), "malformed");
}
