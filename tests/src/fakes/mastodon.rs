//! A Mastodon instance: the hashtag timeline for listening, and `POST /api/v1/statuses` for
//! publishing with the documented quirks (`platform-apis.md` §1.2–1.4):
//! - `Authorization: Bearer` checked: 401 `The access token is invalid`;
//! - **200, not 201**, with the created Status;
//! - `Idempotency-Key` honoured for **one hour** per (token, key): a repeat within the hour
//!   returns the status already created, a repeat after it creates another one;
//! - 422 `Validation failed: …` for a blank text or one over 500 characters;
//! - 429 `Too many requests` with `X-RateLimit-Reset` as an ISO-8601 instant and no
//!   `Retry-After`.
//!
//! The hour is measured on the fake's clock, so tests on simulated time see the key expire
//! when the simulated hour has passed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hark_shared::clock::{Clock, SystemClock};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::{Fault, FaultPlan};

/// The token the publishing endpoint accepts unless told otherwise.
pub const MASTODON_TOKEN: &str = "masto-write-token";
/// How long Mastodon remembers an `Idempotency-Key`.
const KEY_TTL: SignedDuration = SignedDuration::from_hours(1);

/// A Mastodon instance serving `GET /api/v1/timelines/tag/:tag` with `min_id` semantics
/// (the oldest `limit` statuses newer than `min_id`, newest first) and publishing statuses.
pub struct FakeMastodon {
    pub server: MockServer,
    statuses: Arc<Mutex<Vec<Value>>>,
    publishing: Arc<Mutex<Publishing>>,
}

struct MastodonTimeline(Arc<Mutex<Vec<Value>>>);

/// Mastodon ids are opaque strings; vanilla ids sort by (length, text).
fn id_key(id: &str) -> (usize, String) {
    (id.len(), id.to_owned())
}

impl Respond for MastodonTimeline {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let param = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let limit: usize = param("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(20)
            .min(40);
        let mut all = self.0.lock().unwrap().clone();
        all.sort_by_key(|s| id_key(s["id"].as_str().unwrap_or_default()));
        let page: Vec<Value> = match param("min_id") {
            Some(min) => all
                .into_iter()
                .filter(|s| id_key(s["id"].as_str().unwrap_or_default()) > id_key(&min))
                .take(limit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            None => all.into_iter().rev().take(limit).collect(),
        };
        ResponseTemplate::new(200)
            .insert_header("X-RateLimit-Limit", "300")
            .insert_header("X-RateLimit-Remaining", "299")
            .insert_header("X-RateLimit-Reset", "2026-01-10T12:05:00.000000Z")
            .set_body_json(page)
    }
}

/// The publishing side's state.
struct Publishing {
    token: String,
    clock: Arc<dyn Clock>,
    /// Statuses created through the API, in order.
    created: Vec<CreatedStatus>,
    /// (token, key) → (index in `created`, when the key was first used).
    keys: HashMap<(String, String), (usize, Timestamp)>,
    faults: FaultPlan,
    lost_response_delay: Duration,
    requests: usize,
}

/// A status created through `POST /api/v1/statuses`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedStatus {
    pub id: String,
    pub text: String,
    /// The `Idempotency-Key` it was created under.
    pub key: Option<String>,
    pub created_at: Timestamp,
    pub body: Value,
}

impl Publishing {
    fn create(&mut self, request: &Request) -> ResponseTemplate {
        self.requests += 1;
        let auth = header(request, "authorization").unwrap_or_default();
        let Some(token) = auth
            .strip_prefix("Bearer ")
            .filter(|t| *t == self.token)
            .map(str::to_owned)
        else {
            return json_error(
                401,
                include_str!("../../fixtures/mastodon/error_unauthorized.json"),
            );
        };
        let key = header(request, "idempotency-key");
        let now = self.clock.now();
        let fault = key.as_deref().and_then(|k| self.faults.take(k));
        match fault {
            Some(Fault::ServerError) => {
                return ResponseTemplate::new(500).set_body_raw(
                    "<html><body>Internal Server Error</body></html>",
                    "text/html",
                );
            }
            Some(Fault::RateLimited { reset_in }) => {
                let reset = (now + reset_in)
                    .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string();
                return json_error(
                    429,
                    include_str!("../../fixtures/mastodon/error_rate_limited.json"),
                )
                .insert_header("X-RateLimit-Limit", "300")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", reset.as_str());
            }
            Some(Fault::LoseResponse) | None => {}
        }
        let response = self.create_or_repeat(&token, key, now, request);
        if fault == Some(Fault::LoseResponse) {
            response.set_delay(self.lost_response_delay)
        } else {
            response
        }
    }

    fn create_or_repeat(
        &mut self,
        token: &str,
        key: Option<String>,
        now: Timestamp,
        request: &Request,
    ) -> ResponseTemplate {
        if let Some(key) = &key
            && let Some((index, first_used)) = self.keys.get(&(token.to_owned(), key.clone()))
            && now.duration_since(*first_used) < KEY_TTL
        {
            return ResponseTemplate::new(200).set_body_json(&self.created[*index].body);
        }
        let text = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|b| b["status"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if text.trim().is_empty() {
            return json_error(
                422,
                include_str!("../../fixtures/mastodon/error_validation.json"),
            );
        }
        if unicode_count(&text) > 500 {
            return ResponseTemplate::new(422).set_body_json(
                json!({"error": "Validation failed: Text character limit of 500 exceeded"}),
            );
        }
        let id = format!("1138{:014}", self.created.len() + 1);
        let mut body: Value =
            serde_json::from_str(include_str!("../../fixtures/mastodon/status_created.json"))
                .unwrap_or_default();
        body["id"] = json!(id);
        body["created_at"] = json!(now.to_string());
        body["uri"] = json!(format!(
            "https://mastodon.example/users/brand/statuses/{id}"
        ));
        body["url"] = json!(format!("https://mastodon.example/@brand/{id}"));
        body["content"] = json!(format!("<p>{text}</p>"));
        self.created.push(CreatedStatus {
            id,
            text,
            key: key.clone(),
            created_at: now,
            body: body.clone(),
        });
        if let Some(key) = key {
            self.keys
                .insert((token.to_owned(), key), (self.created.len() - 1, now));
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// A rough stand-in for Mastodon's count: characters (the fakes' texts have no URLs).
fn unicode_count(text: &str) -> usize {
    text.chars().count()
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn json_error(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

struct StatusesEndpoint(Arc<Mutex<Publishing>>);

impl Respond for StatusesEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .create(request)
    }
}

impl FakeMastodon {
    /// An instance on the wall clock, accepting [`MASTODON_TOKEN`].
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// An instance whose idempotency hour and rate-limit resets follow `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let server = MockServer::start().await;
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let publishing = Arc::new(Mutex::new(Publishing {
            token: MASTODON_TOKEN.to_owned(),
            clock,
            created: Vec::new(),
            keys: HashMap::new(),
            faults: FaultPlan::default(),
            lost_response_delay: Duration::from_secs(2),
            requests: 0,
        }));
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/v1/timelines/tag/[^/]+$"))
            .respond_with(MastodonTimeline(statuses.clone()))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses"))
            .respond_with(StatusesEndpoint(publishing.clone()))
            .mount(&server)
            .await;
        FakeMastodon {
            server,
            statuses,
            publishing,
        }
    }

    fn publishing(&self) -> MutexGuard<'_, Publishing> {
        self.publishing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a status with this id and text on the hashtag timeline (someone else's
    /// post, for listening): by `alice@remote.example`, 1,200 followers, in English, `#hark`.
    pub fn post(&self, id: &str, text: &str, at: Timestamp) {
        self.post_by(id, "alice@remote.example", 1200, "en", "hark", text, at);
    }

    /// Publishes a status written by someone else: `author` (acct), their follower count,
    /// the status language and its plain text with `tag` as its hashtag. For simulations
    /// with many voices (`hark demo`).
    #[allow(clippy::too_many_arguments)]
    pub fn post_by(
        &self,
        id: &str,
        author: &str,
        followers: u64,
        lang: &str,
        tag: &str,
        text: &str,
        at: Timestamp,
    ) {
        let (user, host) = author.split_once('@').unwrap_or((author, "remote.example"));
        let escaped = text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        self.statuses.lock().unwrap().push(serde_json::json!({
            "id": id,
            "created_at": at.to_string(),
            "in_reply_to_id": null,
            "sensitive": false,
            "spoiler_text": "",
            "visibility": "public",
            "language": lang,
            "uri": format!("https://{host}/users/{user}/statuses/{id}"),
            "url": format!("https://{host}/@{user}/{id}"),
            "replies_count": 1, "reblogs_count": followers / 5000, "favourites_count": 3 + followers / 2000,
            "content": format!("<p>{escaped} <a href=\"https://{host}/tags/{tag}\" class=\"mention hashtag\" rel=\"tag\">#<span>{tag}</span></a></p>"),
            "account": { "id": user, "username": user, "acct": format!("{user}@{host}"),
                         "display_name": user, "url": format!("https://{host}/@{user}"),
                         "bot": false, "followers_count": followers },
            "media_attachments": [], "mentions": [], "tags": [{"name": tag, "url": format!("https://{host}/tags/{tag}")}],
            "emojis": [], "reblog": null, "card": null, "poll": null
        }));
    }

    /// Revokes the publishing token: creates answer 401 until [`FakeMastodon::accept_token`].
    pub fn revoke_token(&self) {
        self.publishing().token = "revoked".to_owned();
    }

    /// Accepts `token` for creates from now on.
    pub fn accept_token(&self, token: &str) {
        self.publishing().token = token.to_owned();
    }

    /// Queues `fault` for the next create with `Idempotency-Key: key`.
    pub fn inject(&self, key: &str, fault: Fault) {
        self.publishing().faults.add(key, fault);
    }

    /// How long a lost response is held (longer than the client's timeout).
    pub fn set_lost_response_delay(&self, delay: Duration) {
        self.publishing().lost_response_delay = delay;
    }

    /// Statuses created through the API, in order.
    pub fn created(&self) -> Vec<CreatedStatus> {
        self.publishing().created.clone()
    }

    /// Faults injected so far, as (key, fault).
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.publishing().faults.injected.clone()
    }

    /// Create requests received.
    pub fn create_requests(&self) -> usize {
        self.publishing().requests
    }
}
