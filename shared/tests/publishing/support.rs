//! Shared helpers: the HTTP client for loopback fakes, a fixed clock, fixtures.

use std::sync::Arc;
use std::time::Duration;

use hark_shared::clock::ManualClock;
use hark_shared::platforms::{HttpClient, OutgoingPost, PlatformError};
use jiff::Timestamp;

/// The instant every test starts at.
pub const NOW: &str = "2026-01-10T12:00:00Z";

pub fn now() -> Timestamp {
    NOW.parse().expect("valid timestamp")
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(now()))
}

/// wiremock listens on loopback, which production refuses: allow it here.
pub fn http() -> HttpClient {
    HttpClient::new(true).expect("http client")
}

/// A client that gives up quickly, to turn a slow fake into a lost response.
pub fn impatient_http() -> HttpClient {
    HttpClient::with_timeout(true, Duration::from_millis(300)).expect("http client")
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

pub fn post(text: &str) -> OutgoingPost {
    OutgoingPost {
        text: text.to_owned(),
        link: None,
    }
}

pub fn post_with_link(text: &str, link: &str) -> OutgoingPost {
    OutgoingPost {
        text: text.to_owned(),
        link: Some(link.to_owned()),
    }
}

/// Asserts that neither the message nor the debug form of `err` contains `secret`.
pub fn assert_no_secret(err: &PlatformError, secret: &str) {
    let shown = err.to_string();
    let debug = format!("{err:?}");
    assert!(!shown.contains(secret), "secret leaked in message: {shown}");
    assert!(
        !debug.contains(secret),
        "secret leaked in debug form: {debug}"
    );
}
