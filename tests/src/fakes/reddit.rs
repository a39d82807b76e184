//! Reddit (`platform-apis.md` §4), one server playing both hosts (`www.reddit.com` for
//! tokens, `oauth.reddit.com` for the API):
//! - `POST /api/v1/access_token`: HTTP Basic `client_id:client_secret`,
//!   `grant_type=client_credentials` → `{"access_token","token_type":"bearer","expires_in"}`;
//!   401 `{"message":"Unauthorized","error":401}` for wrong credentials, **200
//!   `{"error":"unsupported_grant_type"}`** for another grant;
//! - app tokens that expire on demand, then 401 on every API call;
//! - `GET /search` and `GET /r/{sr}/search` (`restrict_sr`): `sort=new` (newest first),
//!   `limit` (default 25, at most 100), `after` paging by fullname, `raw_json`; a `Listing`
//!   envelope with `t3` children and `X-Ratelimit-Used/Remaining/Reset` headers (Reset in
//!   seconds). Matching is a prefilter: a post matches when its title or body contains any
//!   plain word of `q` (operators and `author:` terms ignored), as loose as Reddit's own;
//! - `POST /api/submit` with a user token: **200 with errors in the body** for a missing or
//!   over-long title (`NO_TEXT`, `TOO_LONG`) and, injected, the per-user `RATELIMIT`
//!   throttle; success `{"json":{"errors":[],"data":{"url","id","name"}}}`;
//! - `GET /api/v1/me` and `GET /user/{name}/submitted` (the account's posts, newest first,
//!   `after` paging) for `find_published`.
//!
//! Faults are queued per **title** (the text's first line, which is the whole text of a
//! one-line post): `ServerError` → 500 before creating; `RateLimited { reset_in }` → the
//! in-body `RATELIMIT` error naming the wait; `LoseResponse` → created, answer delayed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hark_shared::clock::{Clock, SystemClock};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::{Fault, FaultPlan};

/// The app's client id the token endpoint accepts.
pub const REDDIT_CLIENT_ID: &str = "hArKcl1ent1d";
/// The app's client secret.
pub const REDDIT_CLIENT_SECRET: &str = "hark-reddit-secret-5uP3r";
/// The listening source's `credentials` value.
pub const REDDIT_CREDENTIALS: &str = "hArKcl1ent1d:hark-reddit-secret-5uP3r";
/// The posting account's user token.
pub const REDDIT_USER_TOKEN: &str = "reddit-user-token-8f3k";
/// The posting account's name.
pub const REDDIT_USERNAME: &str = "hark_brand";

/// A post created through `POST /api/submit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub name: String,
    pub subreddit: String,
    /// `self` or `link`.
    pub kind: String,
    pub title: String,
    pub text: String,
    pub url: Option<String>,
    pub created_at: Timestamp,
}

struct State {
    clock: Arc<dyn Clock>,
    /// Posts others made (listing `t3` data), in the order seeded.
    posts: Vec<Value>,
    /// Access token → expired?
    app_tokens: Vec<(String, bool)>,
    token_lifetime_secs: u64,
    user_token: String,
    submitted: Vec<Submitted>,
    next_id: u64,
    faults: FaultPlan,
    lost_response_delay: Duration,
    /// Path of every request, in order.
    calls: Vec<String>,
    /// Search answers 429 until this instant.
    search_rate_limited_until: Option<Timestamp>,
}

/// The fake. Dropping it stops the server.
pub struct FakeReddit {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

struct Endpoint(Arc<Mutex<State>>);

impl FakeReddit {
    /// A fake on the wall clock.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// A fake whose created times and rate-limit resets follow `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            clock,
            posts: Vec::new(),
            app_tokens: Vec::new(),
            token_lifetime_secs: 86_400,
            user_token: REDDIT_USER_TOKEN.to_owned(),
            submitted: Vec::new(),
            next_id: 0,
            faults: FaultPlan::default(),
            lost_response_delay: Duration::from_secs(2),
            calls: Vec::new(),
            search_rate_limited_until: None,
        }));
        Mock::given(method("POST"))
            .and(path("/api/v1/access_token"))
            .respond_with(Endpoint(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/(r/[A-Za-z0-9_]+/)?search$"))
            .respond_with(Endpoint(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/submit"))
            .respond_with(Endpoint(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/me"))
            .respond_with(Endpoint(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/user/[A-Za-z0-9_-]+/submitted$"))
            .respond_with(Endpoint(state.clone()))
            .mount(&server)
            .await;
        FakeReddit { server, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Someone posted `title` in r/rust at `at`, with base-36 id `id` (fullname `t3_<id>`).
    pub fn post(&self, id: &str, title: &str, at: Timestamp) -> String {
        self.post_in("rust", id, title, "", at)
    }

    /// A self post with a body in `subreddit`. Returns its fullname.
    pub fn post_in(
        &self,
        subreddit: &str,
        id: &str,
        title: &str,
        selftext: &str,
        at: Timestamp,
    ) -> String {
        let name = format!("t3_{id}");
        let slug: String = title
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let permalink = format!("/r/{subreddit}/comments/{id}/{slug}/");
        self.state().posts.push(json!({
            "id": id, "name": name, "subreddit": subreddit, "title": title, "selftext": selftext,
            "author": "ferris_fan", "created_utc": at.as_millisecond() as f64 / 1000.0,
            "score": 12, "num_comments": 3, "permalink": permalink,
            "url": format!("https://www.reddit.com{permalink}"), "over_18": false, "is_self": true,
        }));
        name
    }

    /// App tokens issued from now on last this long (`expires_in`).
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.state().token_lifetime_secs = seconds;
    }

    /// Every app token issued so far is now expired: API calls with it answer 401.
    pub fn expire_app_tokens(&self) {
        self.state().app_tokens.iter_mut().for_each(|t| t.1 = true);
    }

    /// Searches answer 429 (with `X-Ratelimit-Reset`) for `reset_in`.
    pub fn rate_limit_search(&self, reset_in: SignedDuration) {
        let mut state = self.state();
        state.search_rate_limited_until = Some(state.clock.now() + reset_in);
    }

    /// Revokes the posting account's token: its calls answer 401.
    pub fn revoke_user_token(&self) {
        self.state().user_token = "revoked".to_owned();
    }

    /// Queues `fault` for the next submit with this title.
    pub fn inject(&self, title: &str, fault: Fault) {
        self.state().faults.add(title, fault);
    }

    /// How long a lost response is held (longer than the client's timeout).
    pub fn set_lost_response_delay(&self, delay: Duration) {
        self.state().lost_response_delay = delay;
    }

    /// Posts created through `POST /api/submit`, in order.
    pub fn created(&self) -> Vec<Submitted> {
        self.state().submitted.clone()
    }

    /// Faults injected so far, as (title, fault).
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.state().faults.injected.clone()
    }

    /// App tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.state().app_tokens.len()
    }

    /// Requests to `path` so far.
    pub fn calls(&self, path: &str) -> usize {
        self.state().calls.iter().filter(|c| *c == path).count()
    }
}

fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthorized", "error": 401}))
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The form-encoded body's fields (decoded the way a query string is).
fn form(request: &Request) -> Vec<(String, String)> {
    let mut carrier = request.url.clone();
    carrier.set_query(Some(&String::from_utf8_lossy(&request.body)));
    carrier
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn bearer(request: &Request) -> Option<String> {
    let value = header(request, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Base-36, as Reddit writes ids.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Orders ids like Reddit's counters: longer is newer, then by text.
fn id_key(post: &Value) -> (u64, usize, String) {
    let created = (post["created_utc"].as_f64().unwrap_or(0.0) * 1000.0) as u64;
    let id = post["id"].as_str().unwrap_or_default();
    (created, id.len(), id.to_owned())
}

fn rate_headers(response: ResponseTemplate, remaining: u32) -> ResponseTemplate {
    response
        .insert_header("X-Ratelimit-Used", (100 - remaining).to_string().as_str())
        .insert_header("X-Ratelimit-Remaining", format!("{remaining}.0").as_str())
        .insert_header("X-Ratelimit-Reset", "412")
}

/// A listing page of `items` (newest first) after `after`, at most `limit`.
fn listing(items: Vec<Value>, request: &Request) -> ResponseTemplate {
    let limit = query(request, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let start = match query(request, "after") {
        Some(after) => match items.iter().position(|p| p["name"] == after.as_str()) {
            Some(i) => i + 1,
            // A vanished anchor yields an empty page (platform-apis.md §4.2).
            None => items.len(),
        },
        None => 0,
    };
    let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let after = (start + limit < items.len())
        .then(|| page.last().map(|p| p["name"].clone()))
        .flatten()
        .unwrap_or(Value::Null);
    let children: Vec<Value> = page
        .into_iter()
        .map(|data| json!({"kind": "t3", "data": data}))
        .collect();
    rate_headers(
        ResponseTemplate::new(200).set_body_json(json!({
            "kind": "Listing",
            "data": { "after": after, "before": null, "dist": children.len(), "modhash": "",
                      "geo_filter": "", "children": children },
        })),
        99,
    )
}

impl Respond for Endpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let path = request.url.path().to_owned();
        state.calls.push(path.clone());
        if path == "/api/v1/access_token" {
            return state.token(request);
        }
        if path.ends_with("/search") {
            return state.search(request, &path);
        }
        // The rest is the posting account's.
        if bearer(request).as_deref() != Some(state.user_token.as_str()) {
            return unauthorized();
        }
        match path.as_str() {
            "/api/submit" => state.submit(request),
            "/api/v1/me" => ResponseTemplate::new(200)
                .set_body_json(json!({"name": REDDIT_USERNAME, "id": "abc12"})),
            _ => {
                let user = path
                    .trim_start_matches("/user/")
                    .trim_end_matches("/submitted");
                if user != REDDIT_USERNAME {
                    return ResponseTemplate::new(404)
                        .set_body_json(json!({"message": "Not Found", "error": 404}));
                }
                let mut mine: Vec<Value> = state.submitted.iter().map(as_listing_data).collect();
                mine.sort_by_key(|p| std::cmp::Reverse(id_key(p)));
                listing(mine, request)
            }
        }
    }
}

fn as_listing_data(s: &Submitted) -> Value {
    let id = s.name.trim_start_matches("t3_");
    let permalink = format!("/r/{}/comments/{id}/post/", s.subreddit);
    json!({
        "id": id, "name": s.name, "subreddit": s.subreddit, "title": s.title,
        "selftext": s.text, "author": REDDIT_USERNAME,
        "created_utc": s.created_at.as_millisecond() as f64 / 1000.0,
        "score": 1, "num_comments": 0, "permalink": permalink,
        "url": s.url.clone().unwrap_or_else(|| format!("https://www.reddit.com{permalink}")),
        "is_self": s.kind == "self",
    })
}

impl State {
    fn token(&mut self, request: &Request) -> ResponseTemplate {
        let expected = format!(
            "Basic {}",
            base64_encode(&format!("{REDDIT_CLIENT_ID}:{REDDIT_CLIENT_SECRET}"))
        );
        if header(request, "authorization").as_deref() != Some(expected.as_str()) {
            return unauthorized();
        }
        let grant = form(request)
            .into_iter()
            .find(|(k, _)| k == "grant_type")
            .map(|(_, v)| v);
        if grant.as_deref() != Some("client_credentials") {
            // The token endpoint answers 200 with an error body (OAuth2 wiki).
            return ResponseTemplate::new(200)
                .set_body_json(json!({"error": "unsupported_grant_type"}));
        }
        let token = format!("app-token-{}", self.app_tokens.len() + 1);
        self.app_tokens.push((token.clone(), false));
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "token_type": "bearer",
            "expires_in": self.token_lifetime_secs, "scope": "*",
        }))
    }

    fn search(&mut self, request: &Request, path: &str) -> ResponseTemplate {
        let token = bearer(request);
        match self
            .app_tokens
            .iter()
            .find(|(t, _)| Some(t) == token.as_ref())
        {
            Some((_, false)) => {}
            _ => return unauthorized(),
        }
        if let Some(until) = self.search_rate_limited_until
            && self.clock.now() < until
        {
            let wait = self.clock.now().duration_until(until).as_secs().max(0);
            return ResponseTemplate::new(429)
                .set_body_json(json!({"message": "Too Many Requests", "error": 429}))
                .insert_header("X-Ratelimit-Used", "100")
                .insert_header("X-Ratelimit-Remaining", "0.0")
                .insert_header("X-Ratelimit-Reset", wait.to_string().as_str());
        }
        let words: Vec<String> = query(request, "q")
            .unwrap_or_default()
            .split(|c: char| !c.is_alphanumeric() && c != '_' && c != ':')
            .filter(|w| !w.is_empty() && !["AND", "OR", "NOT"].contains(w) && !w.contains(':'))
            .map(str::to_lowercase)
            .collect();
        let subreddit = path
            .strip_prefix("/r/")
            .and_then(|p| p.strip_suffix("/search"))
            .filter(|_| {
                query(request, "restrict_sr").is_some_and(|v| v == "true" || v == "on" || v == "1")
            });
        let mut hits: Vec<Value> = self
            .posts
            .iter()
            .filter(|p| {
                let text = format!(
                    "{} {}",
                    p["title"].as_str().unwrap_or_default(),
                    p["selftext"].as_str().unwrap_or_default()
                )
                .to_lowercase();
                subreddit.is_none_or(|s| {
                    p["subreddit"]
                        .as_str()
                        .is_some_and(|ps| ps.eq_ignore_ascii_case(s))
                }) && (words.is_empty() || words.iter().any(|w| text.contains(w.as_str())))
            })
            .cloned()
            .collect();
        hits.sort_by_key(|p| std::cmp::Reverse(id_key(p)));
        listing(hits, request)
    }

    fn submit(&mut self, request: &Request) -> ResponseTemplate {
        let fields = form(request);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let title = field("title");
        let in_body_errors = |errors: Value| {
            ResponseTemplate::new(200).set_body_json(json!({"json": {"errors": errors}}))
        };
        if title.trim().is_empty() {
            return in_body_errors(json!([["NO_TEXT", "we need something here", "title"]]));
        }
        if title.chars().count() > 300 {
            return in_body_errors(json!([[
                "TOO_LONG",
                "this is too long (max: 300)",
                "title"
            ]]));
        }
        let kind = field("kind");
        let url = (kind == "link").then(|| field("url"));
        if url.as_deref().is_some_and(str::is_empty) {
            return in_body_errors(json!([["NO_URL", "a url is required", "url"]]));
        }
        let fault = self.faults.take(&title);
        match fault {
            Some(Fault::ServerError) => {
                return ResponseTemplate::new(500).set_body_raw(
                    "<html><body><h1>500 Internal Server Error</h1></body></html>",
                    "text/html",
                );
            }
            Some(Fault::RateLimited { reset_in }) => {
                let secs = reset_in.as_secs().max(1);
                let words = if secs >= 60 {
                    format!(
                        "you are doing that too much. try again in {} minutes.",
                        (secs + 59) / 60
                    )
                } else {
                    format!("you are doing that too much. try again in {secs} seconds.")
                };
                // The per-user throttle: HTTP 200, the error in the body (§4.3).
                return ResponseTemplate::new(200).set_body_json(json!({"json": {
                    "ratelimit": secs as f64,
                    "errors": [["RATELIMIT", words, "ratelimit"]],
                }}));
            }
            Some(Fault::LoseResponse) | None => {}
        }
        self.next_id += 1;
        let id = format!("1i{}", base36(1_000_000 + self.next_id));
        let subreddit = field("sr");
        let submitted = Submitted {
            name: format!("t3_{id}"),
            subreddit: subreddit.clone(),
            kind,
            title,
            text: field("text"),
            url,
            created_at: self.clock.now(),
        };
        let web = format!("https://www.reddit.com/r/{subreddit}/comments/{id}/post/");
        let body = json!({"json": {"errors": [], "data": {
            "url": web, "id": id, "name": submitted.name, "drafts_count": 0,
        }}});
        self.submitted.push(submitted);
        let response = rate_headers(ResponseTemplate::new(200).set_body_json(body), 98);
        if fault == Some(Fault::LoseResponse) {
            response.set_delay(self.lost_response_delay)
        } else {
            response
        }
    }
}

/// Standard base64 (for checking HTTP Basic credentials).
fn base64_encode(input: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
