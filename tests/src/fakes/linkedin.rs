//! LinkedIn's Posts API (`platform-apis.md` §7), the way the publisher meets it:
//! - every call needs `Linkedin-Version: YYYYMM` (missing → **400 `VERSION_MISSING`**, a
//!   version not active → **426 `NONEXISTENT_VERSION`**), `X-Restli-Protocol-Version:
//!   2.0.0` (missing → 400) and the bearer token (401 `INVALID_ACCESS_TOKEN`);
//! - `POST /rest/posts` answers **201 Created with an empty body**, the post's URN in
//!   `x-restli-id`; it refuses (422) a commentary over 3,000 characters and, stricter than
//!   LinkedIn (which mangles rather than refuses, [inf]), one with an unescaped reserved
//!   character of the little text format, so escaping mistakes show up in tests; an author
//!   other than the token's is 403;
//! - `GET /rest/posts?q=author&author=<urn>&count&start` (the author finder): the posts
//!   created through the API, newest first, as `{"paging":{…},"elements":[…]}`;
//! - throttling is 429 `{"serviceErrorCode":101,…}` without rate-limit headers.
//!
//! Faults are queued per post text: the commentary as a reader sees it (unescaped).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hark_shared::clock::{Clock, SystemClock};
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::{Fault, FaultPlan};

/// The token the fake accepts.
pub const LINKEDIN_TOKEN: &str = "AQX-linkedin-token-7Hq";
/// The organization the token may post as.
pub const LINKEDIN_AUTHOR: &str = "urn:li:organization:5515715";
/// The `Linkedin-Version` the fake serves unless told otherwise.
pub const LINKEDIN_ACTIVE_VERSION: &str = "202601";
const RESERVED: &str = "|{}@[]()<>#\\*_~";

/// A post created through `POST /rest/posts`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedInCreated {
    pub urn: String,
    /// As sent (escaped).
    pub commentary: String,
    /// As a reader sees it.
    pub text: String,
    pub body: Value,
    pub created_at: Timestamp,
}

struct State {
    clock: Arc<dyn Clock>,
    token: String,
    active_versions: HashSet<String>,
    created: Vec<LinkedInCreated>,
    faults: FaultPlan,
    lost_response_delay: Duration,
    requests: Vec<(String, String)>,
}

/// The fake. Dropping it stops the server.
pub struct FakeLinkedIn {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

struct Posts(Arc<Mutex<State>>);

impl FakeLinkedIn {
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// A fake whose `createdAt` follows `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            clock,
            token: LINKEDIN_TOKEN.to_owned(),
            active_versions: HashSet::from([LINKEDIN_ACTIVE_VERSION.to_owned()]),
            created: Vec::new(),
            faults: FaultPlan::default(),
            lost_response_delay: Duration::from_secs(2),
            requests: Vec::new(),
        }));
        Mock::given(path("/rest/posts"))
            .respond_with(Posts(state.clone()))
            .mount(&server)
            .await;
        FakeLinkedIn { server, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Only `version` is active from now on (older ones are sunset: 426).
    pub fn only_version(&self, version: &str) {
        let mut state = self.state();
        state.active_versions = HashSet::from([version.to_owned()]);
    }

    /// Revokes the token: calls answer 401 until [`FakeLinkedIn::accept_token`].
    pub fn revoke_token(&self) {
        self.state().token = "revoked".to_owned();
    }

    pub fn accept_token(&self, token: &str) {
        self.state().token = token.to_owned();
    }

    /// Queues `fault` for the next create whose commentary reads `text`.
    pub fn inject(&self, text: &str, fault: Fault) {
        self.state().faults.add(text, fault);
    }

    /// How long a lost response is held (longer than the client's timeout).
    pub fn set_lost_response_delay(&self, delay: Duration) {
        self.state().lost_response_delay = delay;
    }

    /// Posts created through the API, in order.
    pub fn created(&self) -> Vec<LinkedInCreated> {
        self.state().created.clone()
    }

    /// Faults injected so far, as (text, fault).
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.state().faults.injected.clone()
    }

    /// Requests so far as (method, query string).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state().requests.clone()
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"status": status, "code": code, "message": message}))
}

/// Reads little text: `Err` names the first reserved character left unescaped.
fn unescape(commentary: &str) -> Result<String, char> {
    let mut out = String::new();
    let mut chars = commentary.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => return Err('\\'),
            }
        } else if RESERVED.contains(c) {
            return Err(c);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl Respond for Posts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.requests.push((
            request.method.to_string(),
            request.url.query().unwrap_or_default().to_owned(),
        ));
        let Some(version) = header(request, "linkedin-version") else {
            return error(
                400,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
            );
        };
        if !state.active_versions.contains(version.trim()) {
            return error(
                426,
                "NONEXISTENT_VERSION",
                &format!("Requested version {version} is not active"),
            );
        }
        if header(request, "x-restli-protocol-version").as_deref() != Some("2.0.0") {
            return error(
                400,
                "ILLEGAL_ARGUMENT",
                "X-Restli-Protocol-Version 2.0.0 is required for this resource",
            );
        }
        let authorised = header(request, "authorization")
            .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned))
            .is_some_and(|t| t == state.token);
        if !authorised {
            return ResponseTemplate::new(401).set_body_json(json!({
                "status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                "message": "Invalid access token",
            }));
        }
        match request.method.as_str() {
            "POST" => state.create(request),
            "GET" => state.find(request),
            _ => error(405, "METHOD_NOT_ALLOWED", "Method not allowed"),
        }
    }
}

impl State {
    fn create(&mut self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(400, "ILLEGAL_ARGUMENT", "Malformed JSON body");
        };
        if body["author"] != LINKEDIN_AUTHOR {
            return ResponseTemplate::new(403).set_body_json(json!({
                "status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                "message": format!("Not enough permissions to access: partnerApiPostsExternal.CREATE.{}", LINKEDIN_ACTIVE_VERSION),
            }));
        }
        for (field, expected) in [("visibility", "PUBLIC"), ("lifecycleState", "PUBLISHED")] {
            if body[field] != expected {
                return error(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    &format!("/{field} :: must be {expected}"),
                );
            }
        }
        let commentary = body["commentary"].as_str().unwrap_or_default().to_owned();
        let text = match unescape(&commentary) {
            Ok(text) => text,
            Err(c) => {
                return error(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    &format!("/commentary :: reserved character '{c}' must be escaped"),
                );
            }
        };
        if text.encode_utf16().count() > 3000 {
            return error(
                422,
                "UNPROCESSABLE_ENTITY",
                "/commentary :: length must be less than or equal to 3000",
            );
        }
        let fault = self.faults.take(&text);
        match fault {
            Some(Fault::ServerError) => {
                return ResponseTemplate::new(500)
                    .set_body_json(json!({"status": 500, "message": "Internal Server Error"}));
            }
            Some(Fault::RateLimited { .. }) => {
                // Daily quotas; no rate-limit headers (platform-apis.md §7).
                return ResponseTemplate::new(429).set_body_json(json!({
                    "serviceErrorCode": 101, "status": 429,
                    "message": "Resource level throttle limit for calls to this resource is reached.",
                }));
            }
            Some(Fault::LoseResponse) | None => {}
        }
        let urn = format!("urn:li:share:70123456789012{:05}", self.created.len() + 1);
        self.created.push(LinkedInCreated {
            urn: urn.clone(),
            commentary,
            text,
            body,
            created_at: self.clock.now(),
        });
        // 201 with an empty body; the id is in the header.
        let response = ResponseTemplate::new(201)
            .insert_header("x-restli-id", urn.as_str())
            .insert_header("x-linkedin-id", urn.as_str());
        if fault == Some(Fault::LoseResponse) {
            response.set_delay(self.lost_response_delay)
        } else {
            response
        }
    }

    fn find(&self, request: &Request) -> ResponseTemplate {
        let param = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("q").as_deref() != Some("author") {
            return error(400, "ILLEGAL_ARGUMENT", "q=author is required");
        }
        if param("author").as_deref() != Some(LINKEDIN_AUTHOR) {
            return ResponseTemplate::new(403).set_body_json(json!({
                "status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                "message": "Not enough permissions to access: partnerApiPostsExternal.FINDER-author",
            }));
        }
        let count: usize = param("count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(10)
            .min(100);
        let start: usize = param("start").and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut posts: Vec<&LinkedInCreated> = self.created.iter().collect();
        posts.sort_by_key(|p| std::cmp::Reverse((p.created_at, p.urn.clone())));
        let total = posts.len();
        let elements: Vec<Value> = posts
            .into_iter()
            .skip(start)
            .take(count)
            .map(|p| {
                let mut element = p.body.clone();
                let ms = p.created_at.as_millisecond();
                element["id"] = json!(p.urn);
                element["createdAt"] = json!(ms);
                element["publishedAt"] = json!(ms);
                element["lastModifiedAt"] = json!(ms);
                element
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "paging": { "start": start, "count": count, "links": [], "total": total },
            "elements": elements,
        }))
    }
}
