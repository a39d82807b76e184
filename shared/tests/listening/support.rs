//! Shared helpers: fixtures, sources, limits and request inspection.

use hark_shared::domain::{Platform, Source};
use hark_shared::platforms::{HttpClient, ListenLimits};
use jiff::Timestamp;
use wiremock::{MockServer, Request};

/// The bytes of a fixture under `tests/fixtures/` (checked at compile time).
macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/",
            $path
        ))
        .as_slice()
    };
}
pub(crate) use fixture;

/// A fixture as JSON.
pub fn fixture_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("fixture is JSON")
}

/// The instant every test calls "now" unless it says otherwise.
pub fn now() -> Timestamp {
    "2026-01-10T12:00:00Z".parse().unwrap()
}

pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

pub fn limits(now: Timestamp, max_pages: usize) -> ListenLimits {
    ListenLimits { max_pages, now }
}

/// Wiremock listens on loopback, which only a client allowing private URLs may call.
pub fn http() -> HttpClient {
    HttpClient::new(true).unwrap()
}

pub fn strict_http() -> HttpClient {
    HttpClient::new(false).unwrap()
}

/// A source as a config file would declare it (only the fields given are set).
pub fn source(id: &str, platform: Platform, fields: serde_json::Value) -> Source {
    let mut doc = serde_json::json!({ "id": id, "platform": platform });
    if let (Some(doc), Some(fields)) = (doc.as_object_mut(), fields.as_object()) {
        doc.extend(fields.clone());
    }
    serde_json::from_value(doc).expect("a valid source")
}

/// The requests the server received whose path is `path`, in order.
pub async fn requests_to(server: &MockServer, path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

/// The value of query parameter `name` (all values, in order).
pub fn query_values(request: &Request, name: &str) -> Vec<String> {
    request
        .url
        .query_pairs()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

pub fn query_value(request: &Request, name: &str) -> Option<String> {
    query_values(request, name).into_iter().next()
}

pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
