//! X API v2 (`platform-apis.md` §5): recent search for listening, `POST /2/tweets` for
//! publishing, the account's own timeline for reconciling, and the OAuth 2.0 token endpoint.
//!
//! Reproduced:
//! - `GET /2/tweets/search/recent`: app bearer (or user token) checked, 401 problem body
//!   otherwise; `query` required; `max_results` 10–100 (default 10); `since_id` XOR
//!   `start_time`, `until_id` XOR `end_time`, `next_token` XOR `pagination_token` (400
//!   otherwise); a `since_id` older than the 7-day window refused with 400 [inf]; results
//!   newest first; `meta.newest_id/oldest_id/result_count/next_token`, and only
//!   `{"meta":{"result_count":0}}` when nothing matches; only the fields asked for, through
//!   `tweet.fields` **or** `post.fields`; `includes.users` with `expansions=author_id`;
//!   `x-rate-limit-*` headers (reset in unix seconds) on every answer.
//! - Text as X serves it: `&`, `<`, `>` HTML-escaped and every URL rewritten to a `t.co`
//!   link, with `entities.urls[].expanded_url` naming the original.
//! - `POST /2/tweets`: user token only (an app bearer gets the 403 "Unsupported
//!   Authentication" problem), **201** `{"data":{"id","text","edit_history_tweet_ids"}}`,
//!   400 for an empty or over-long (> 280 weighted) text [inf: the exact refusal is not
//!   documented], and the real 403 "duplicate content" body for a text identical to one
//!   already posted; faults per text ([`Fault`]).
//! - `GET /2/users/me`, `GET /2/users/:id/tweets` (`start_time`, `max_results` 5–100,
//!   `pagination_token`, newest first).
//! - `POST /2/oauth2/token` (`grant_type=refresh_token`, form-encoded, `client_id`): a new
//!   2-hour access token and, unless told otherwise, a rotated refresh token; `invalid_grant`
//!   for an unknown or spent refresh token.
//!
//! Not reproduced: query matching (every seeded post matches every query), the 30-second
//! indexing lag of recent search, relevancy ordering, billing caps, long posts
//! (`note_tweet`), OAuth 1.0a.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hark_shared::clock::{Clock, SystemClock};
use hark_shared::rules::{self, Unit};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::{Fault, FaultPlan};

/// The app bearer token recent search accepts unless told otherwise.
pub const X_APP_BEARER: &str = "x-app-bearer-token";
/// The user access token valid at start.
pub const X_ACCESS_TOKEN: &str = "x-user-access-token-0";
/// The refresh token valid at start.
pub const X_REFRESH_TOKEN: &str = "x-refresh-token-0";
/// The OAuth 2.0 app's client id the token endpoint expects.
pub const X_CLIENT_ID: &str = "hark-x-client-id";
/// The publishing account.
pub const X_USER_ID: &str = "1600000000000000042";
pub const X_USERNAME: &str = "harkbrand";

/// X's Snowflake epoch in unix milliseconds.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;
/// How far back recent search reaches.
const SEARCH_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);
const DUPLICATE_BODY: &str = include_str!("../../fixtures/x/error_duplicate.json");
const UNAUTHORIZED_BODY: &str = include_str!("../../fixtures/x/error_unauthorized.json");
const RATE_LIMITED_BODY: &str = include_str!("../../fixtures/x/error_rate_limited.json");
const INVALID_GRANT_BODY: &str = include_str!("../../fixtures/x/token_invalid_grant.json");

/// A Snowflake id for a post created at `at` (sequence `seq` in the low bits), the way X
/// mints them: ids sort by creation time.
pub fn snowflake_id(at: Timestamp, seq: u16) -> String {
    let ms = (at.as_millisecond() - SNOWFLAKE_EPOCH_MS).max(0) as u64;
    ((ms << 22) | u64::from(seq & 0x0fff)).to_string()
}

/// Someone who posts on X (for seeded posts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XAuthor {
    pub id: String,
    pub username: String,
    pub name: String,
    pub followers: u64,
}

impl XAuthor {
    /// The author of [`FakeX::post`].
    pub fn default_author() -> Self {
        XAuthor {
            id: "2244994945".into(),
            username: "devexample".into(),
            name: "Dev Example".into(),
            followers: 5120,
        }
    }
}

/// A post created through `POST /2/tweets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTweet {
    pub id: String,
    /// The text as sent.
    pub text: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
struct StoredPost {
    id: String,
    /// As written (unescaped, long URLs).
    text: String,
    author: XAuthor,
    created_at: Timestamp,
}

struct State {
    clock: Arc<dyn Clock>,
    /// Other people's posts, for search.
    posts: Vec<StoredPost>,
    app_bearer: String,
    access_tokens: HashSet<String>,
    refresh_token: Option<String>,
    rotate_refresh_tokens: bool,
    token_responses_include_refresh: bool,
    issued: u32,
    created: Vec<CreatedTweet>,
    faults: FaultPlan,
    search_faults: VecDeque<Fault>,
    lost_response_delay: Duration,
    search_requests: usize,
    create_requests: usize,
    token_requests: usize,
    search_remaining: u64,
    sequence: u16,
}

/// A stateful X API v2 (see the module docs for what is reproduced).
pub struct FakeX {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

impl FakeX {
    /// An X API on the wall clock.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// An X API whose search window, token lifetimes and resets follow `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            clock,
            posts: Vec::new(),
            app_bearer: X_APP_BEARER.to_owned(),
            access_tokens: HashSet::from([X_ACCESS_TOKEN.to_owned()]),
            refresh_token: Some(X_REFRESH_TOKEN.to_owned()),
            rotate_refresh_tokens: true,
            token_responses_include_refresh: true,
            issued: 0,
            created: Vec::new(),
            faults: FaultPlan::default(),
            search_faults: VecDeque::new(),
            lost_response_delay: Duration::from_secs(2),
            search_requests: 0,
            create_requests: 0,
            token_requests: 0,
            search_remaining: 450,
            sequence: 0,
        }));
        let routes: [(&str, &str, Endpoint); 5] = [
            ("GET", r"^/2/tweets/search/recent$", Endpoint::Search),
            ("POST", r"^/2/tweets$", Endpoint::Create),
            ("GET", r"^/2/users/me$", Endpoint::Me),
            ("GET", r"^/2/users/[^/]+/tweets$", Endpoint::Timeline),
            ("POST", r"^/2/oauth2/token$", Endpoint::Token),
        ];
        for (verb, route, endpoint) in routes {
            Mock::given(method(verb))
                .and(path_regex(route))
                .respond_with(Handler {
                    state: state.clone(),
                    endpoint,
                })
                .mount(&server)
                .await;
        }
        FakeX { server, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The API base URL to configure (`base_url` of a source or channel).
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Someone's post with this id and text at `at`, by [`XAuthor::default_author`]. Use
    /// [`snowflake_id`] for ids: X's ids sort by time, and the client relies on it.
    pub fn post(&self, id: &str, text: &str, at: Timestamp) {
        self.post_by(id, text, at, XAuthor::default_author());
    }

    /// Someone's post by `author`.
    pub fn post_by(&self, id: &str, text: &str, at: Timestamp, author: XAuthor) {
        self.state().posts.push(StoredPost {
            id: id.to_owned(),
            text: text.to_owned(),
            author,
            created_at: at,
        });
    }

    /// A post at `at` with a fresh Snowflake id; returns the id.
    pub fn post_now(&self, text: &str, at: Timestamp) -> String {
        let seq = {
            let mut state = self.state();
            state.sequence = state.sequence.wrapping_add(1);
            state.sequence
        };
        let id = snowflake_id(at, seq);
        self.post(&id, text, at);
        id
    }

    /// A post of the publishing account itself at `at` (served by its timeline, counted as
    /// an earlier post for duplicate checks), as if made outside Hark; returns its id.
    pub fn own_post(&self, text: &str, at: Timestamp) -> String {
        let mut state = self.state();
        state.sequence = state.sequence.wrapping_add(1);
        let id = snowflake_id(at, state.sequence);
        state.created.push(CreatedTweet {
            id: id.clone(),
            text: text.to_owned(),
            created_at: at,
        });
        id
    }

    /// Search answers 401 until [`FakeX::accept_app_bearer`].
    pub fn revoke_app_bearer(&self) {
        self.state().app_bearer = "revoked".to_owned();
    }

    pub fn accept_app_bearer(&self, token: &str) {
        self.state().app_bearer = token.to_owned();
    }

    /// Every user access token stops working (401); refreshing still works.
    pub fn expire_access_tokens(&self) {
        self.state().access_tokens.clear();
    }

    /// The user revoked the app: access and refresh tokens stop working (`invalid_grant`).
    pub fn revoke_user_tokens(&self) {
        let mut state = self.state();
        state.access_tokens.clear();
        state.refresh_token = None;
    }

    /// Whether a refresh issues a new refresh token (default) or keeps the old one valid.
    pub fn set_rotate_refresh_tokens(&self, rotate: bool) {
        self.state().rotate_refresh_tokens = rotate;
    }

    /// Whether token responses carry `refresh_token` (default true). Without it, the old
    /// refresh token stays valid.
    pub fn set_token_responses_include_refresh(&self, include: bool) {
        self.state().token_responses_include_refresh = include;
    }

    /// The refresh token the token endpoint accepts now.
    pub fn refresh_token(&self) -> Option<String> {
        self.state().refresh_token.clone()
    }

    /// Whether `token` is a valid user access token now.
    pub fn accepts_access_token(&self, token: &str) -> bool {
        self.state().access_tokens.contains(token)
    }

    /// Queues `fault` for the next create whose text is exactly `text`.
    pub fn inject(&self, text: &str, fault: Fault) {
        self.state().faults.add(text, fault);
    }

    /// Queues `fault` for the next search request (`LoseResponse` only delays: searching
    /// changes nothing).
    pub fn inject_search(&self, fault: Fault) {
        self.state().search_faults.push_back(fault);
    }

    /// How long a lost response is held (longer than the client's timeout).
    pub fn set_lost_response_delay(&self, delay: Duration) {
        self.state().lost_response_delay = delay;
    }

    /// Posts created through the API, in order.
    pub fn created(&self) -> Vec<CreatedTweet> {
        self.state().created.clone()
    }

    /// Faults injected so far, as (text, fault).
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.state().faults.injected.clone()
    }

    pub fn search_requests(&self) -> usize {
        self.state().search_requests
    }

    pub fn create_requests(&self) -> usize {
        self.state().create_requests
    }

    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }
}

#[derive(Clone, Copy)]
enum Endpoint {
    Search,
    Create,
    Me,
    Timeline,
    Token,
}

struct Handler {
    state: Arc<Mutex<State>>,
    endpoint: Endpoint,
}

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.endpoint {
            Endpoint::Search => state.search(request),
            Endpoint::Create => state.create(request),
            Endpoint::Me => state.me(request),
            Endpoint::Timeline => state.timeline(request),
            Endpoint::Token => state.token(request),
        }
    }
}

/// The query parameters of a request, by name (all values).
struct Params(Vec<(String, String)>);

impl Params {
    fn of(request: &Request) -> Self {
        Params(
            request
                .url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The union of a comma-separated list parameter over its spellings.
    fn list(&self, names: &[&str]) -> HashSet<String> {
        names
            .iter()
            .filter_map(|n| self.get(n))
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

impl State {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn bearer(request: &Request) -> Option<String> {
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
    }

    fn is_user(&self, request: &Request) -> bool {
        Self::bearer(request).is_some_and(|t| self.access_tokens.contains(&t))
    }

    fn is_app(&self, request: &Request) -> bool {
        Self::bearer(request).is_some_and(|t| t == self.app_bearer)
    }

    fn rate_headers(
        &self,
        response: ResponseTemplate,
        limit: u64,
        remaining: u64,
    ) -> ResponseTemplate {
        let reset = (self.now() + SignedDuration::from_mins(15)).as_second();
        response
            .insert_header("x-rate-limit-limit", limit.to_string().as_str())
            .insert_header("x-rate-limit-remaining", remaining.to_string().as_str())
            .insert_header("x-rate-limit-reset", reset.to_string().as_str())
    }

    fn rate_limited(&self, reset_in: SignedDuration, limit: u64) -> ResponseTemplate {
        let reset = (self.now() + reset_in).as_second();
        json_body(429, RATE_LIMITED_BODY)
            .insert_header("x-rate-limit-limit", limit.to_string().as_str())
            .insert_header("x-rate-limit-remaining", "0")
            .insert_header("x-rate-limit-reset", reset.to_string().as_str())
    }

    // -- search ------------------------------------------------------------------------

    fn search(&mut self, request: &Request) -> ResponseTemplate {
        self.search_requests += 1;
        if !(self.is_app(request) || self.is_user(request)) {
            return json_body(401, UNAUTHORIZED_BODY);
        }
        let mut delay = None;
        match self.search_faults.pop_front() {
            Some(Fault::ServerError) => {
                return problem(
                    503,
                    "Service Unavailable",
                    "Service Unavailable",
                    "about:blank",
                );
            }
            Some(Fault::RateLimited { reset_in }) => return self.rate_limited(reset_in, 450),
            Some(Fault::LoseResponse) => delay = Some(self.lost_response_delay),
            None => {}
        }
        self.search_remaining = self.search_remaining.saturating_sub(1);
        let remaining = self.search_remaining;
        let response = match self.search_page(request) {
            Ok(body) => ResponseTemplate::new(200).set_body_json(body),
            Err(refusal) => *refusal,
        };
        let response = self.rate_headers(response, 450, remaining);
        match delay {
            Some(d) => response.set_delay(d),
            None => response,
        }
    }

    fn search_page(&self, request: &Request) -> Result<Value, Refusal> {
        let params = Params::of(request);
        let now = self.now();
        if params.get("query").is_none_or(|q| q.trim().is_empty()) {
            return Err(invalid_request(
                "query",
                "The `query` query parameter can not be empty",
            ));
        }
        let max_results = bounded(&params, "max_results", 10, 10..=100)?;
        exclusive(&params, "since_id", "start_time")?;
        exclusive(&params, "until_id", "end_time")?;
        exclusive(&params, "next_token", "pagination_token")?;
        let since_id = id_param(&params, "since_id")?;
        let until_id = id_param(&params, "until_id")?;
        let window_start = now - SEARCH_WINDOW;
        if let Some(since) = since_id
            && snowflake_ms(since) < window_start.as_millisecond()
        {
            return Err(invalid_request(
                "since_id",
                &format!(
                    "Invalid 'since_id':'{since}'. 'since_id' must be a tweet id created after {window_start}."
                ),
            ));
        }
        let start_time = time_param(&params, "start_time")?;
        let end_time = time_param(&params, "end_time")?;
        if start_time.is_some_and(|t| t < window_start) {
            return Err(invalid_request(
                "start_time",
                &format!("Invalid 'start_time'. 'start_time' must be on or after {window_start}"),
            ));
        }
        let token = params.get("next_token").or(params.get("pagination_token"));
        let after_token = match token {
            Some(t) => Some(decode_token(t).ok_or_else(|| {
                invalid_request(
                    "next_token",
                    &format!("The `next_token` query parameter value [{t}] is not valid"),
                )
            })?),
            None => None,
        };
        let mut matching: Vec<&StoredPost> = self
            .posts
            .iter()
            .filter(|p| p.created_at >= window_start && p.created_at <= now)
            .filter(|p| since_id.is_none_or(|s| id_num(&p.id) > s))
            .filter(|p| until_id.is_none_or(|u| id_num(&p.id) < u))
            .filter(|p| start_time.is_none_or(|t| p.created_at >= t))
            .filter(|p| end_time.is_none_or(|t| p.created_at <= t))
            .filter(|p| after_token.is_none_or(|a| id_num(&p.id) < a))
            .collect();
        matching.sort_by_key(|p| std::cmp::Reverse(id_num(&p.id)));
        let fields = params.list(&["tweet.fields", "post.fields"]);
        let user_fields = params.list(&["user.fields"]);
        let expand_authors = params.list(&["expansions"]).contains("author_id");
        let more = matching.len() > max_results;
        let page: Vec<&StoredPost> = matching.into_iter().take(max_results).collect();
        if page.is_empty() {
            return Ok(json!({ "meta": { "result_count": 0 } }));
        }
        let data: Vec<Value> = page.iter().map(|p| post_json(p, &fields)).collect();
        let mut meta = json!({
            "newest_id": page[0].id,
            "oldest_id": page[page.len() - 1].id,
            "result_count": page.len(),
        });
        if more {
            meta["next_token"] = json!(encode_token(id_num(&page[page.len() - 1].id)));
        }
        let mut body = json!({ "data": data, "meta": meta });
        if expand_authors {
            let mut seen = HashSet::new();
            let users: Vec<Value> = page
                .iter()
                .filter(|p| seen.insert(p.author.id.clone()))
                .map(|p| user_json(&p.author, &user_fields))
                .collect();
            body["includes"] = json!({ "users": users });
        }
        Ok(body)
    }

    // -- publishing --------------------------------------------------------------------

    fn create(&mut self, request: &Request) -> ResponseTemplate {
        self.create_requests += 1;
        if self.is_app(request) {
            return problem(
                403,
                "Unsupported Authentication",
                "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
                "https://api.x.com/2/problems/unsupported-authentication",
            );
        }
        if !self.is_user(request) {
            return json_body(401, UNAUTHORIZED_BODY);
        }
        let Some(text) = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|b| b["text"].as_str().map(str::to_owned))
        else {
            return *invalid_request("text", "The `text` field is required and must be a string");
        };
        let now = self.now();
        let remaining = 100 - (self.created.len() as u64 % 100);
        let fault = self.faults.take(&text);
        match fault {
            Some(Fault::ServerError) => {
                return problem(
                    500,
                    "Internal Server Error",
                    "Internal Server Error",
                    "about:blank",
                );
            }
            Some(Fault::RateLimited { reset_in }) => {
                return self
                    .rate_limited(reset_in, 100)
                    .insert_header("x-user-limit-24hour-limit", "17")
                    .insert_header("x-user-limit-24hour-remaining", "10")
                    .insert_header(
                        "x-user-limit-24hour-reset",
                        (now + SignedDuration::from_hours(20))
                            .as_second()
                            .to_string()
                            .as_str(),
                    );
            }
            Some(Fault::LoseResponse) | None => {}
        }
        if text.trim().is_empty() {
            return *invalid_request("text", "The `text` field can not be empty");
        }
        if rules::measure(Unit::WeightedCharacters, &text) > 280 {
            return *invalid_request("text", "The `text` field is too long");
        }
        if self.created.iter().any(|c| c.text == text) {
            return json_body(403, DUPLICATE_BODY);
        }
        self.sequence = self.sequence.wrapping_add(1);
        let id = snowflake_id(now, self.sequence);
        self.created.push(CreatedTweet {
            id: id.clone(),
            text: text.clone(),
            created_at: now,
        });
        let (served, _) = as_served(&text);
        let response = ResponseTemplate::new(201).set_body_json(json!({
            "data": { "id": id, "text": served, "edit_history_tweet_ids": [id] }
        }));
        let response = self.rate_headers(response, 100, remaining.saturating_sub(1));
        if fault == Some(Fault::LoseResponse) {
            response.set_delay(self.lost_response_delay)
        } else {
            response
        }
    }

    fn me(&self, request: &Request) -> ResponseTemplate {
        if !self.is_user(request) {
            return json_body(401, UNAUTHORIZED_BODY);
        }
        let response = ResponseTemplate::new(200).set_body_json(json!({
            "data": { "id": X_USER_ID, "name": "Hark Brand", "username": X_USERNAME }
        }));
        self.rate_headers(response, 75, 74)
    }

    fn timeline(&self, request: &Request) -> ResponseTemplate {
        if !(self.is_user(request) || self.is_app(request)) {
            return json_body(401, UNAUTHORIZED_BODY);
        }
        let user_id = request
            .url
            .path_segments()
            .and_then(|mut s| s.nth(2))
            .unwrap_or_default()
            .to_owned();
        let body = self.timeline_page(request, &user_id);
        let response = match body {
            Ok(body) => ResponseTemplate::new(200).set_body_json(body),
            Err(refusal) => *refusal,
        };
        self.rate_headers(response, 900, 899)
    }

    fn timeline_page(&self, request: &Request, user_id: &str) -> Result<Value, Refusal> {
        let params = Params::of(request);
        if params.get("next_token").is_some() {
            return Err(invalid_request(
                "next_token",
                "The query parameter [next_token] is not one of [id,since_id,until_id,max_results,pagination_token,exclude,start_time,end_time,expansions,tweet.fields,media.fields,poll.fields,place.fields,user.fields]",
            ));
        }
        let max_results = bounded(&params, "max_results", 10, 5..=100)?;
        let start_time = time_param(&params, "start_time")?;
        let end_time = time_param(&params, "end_time")?;
        if user_id != X_USER_ID {
            return Ok(json!({ "errors": [{
                "value": user_id, "detail": format!("Could not find user with id: [{user_id}]."),
                "title": "Not Found Error", "resource_type": "user", "parameter": "id",
                "resource_id": user_id, "type": "https://api.x.com/2/problems/resource-not-found"
            }]}));
        }
        let after_token = match params.get("pagination_token") {
            Some(t) => Some(decode_token(t).ok_or_else(|| {
                invalid_request(
                    "pagination_token",
                    &format!("The `pagination_token` query parameter value [{t}] is not valid"),
                )
            })?),
            None => None,
        };
        let me = XAuthor {
            id: X_USER_ID.into(),
            username: X_USERNAME.into(),
            name: "Hark Brand".into(),
            followers: 42,
        };
        let mut own: Vec<StoredPost> = self
            .created
            .iter()
            .filter(|c| start_time.is_none_or(|t| c.created_at >= t))
            .filter(|c| end_time.is_none_or(|t| c.created_at <= t))
            .filter(|c| after_token.is_none_or(|a| id_num(&c.id) < a))
            .map(|c| StoredPost {
                id: c.id.clone(),
                text: c.text.clone(),
                author: me.clone(),
                created_at: c.created_at,
            })
            .collect();
        own.sort_by_key(|p| std::cmp::Reverse(id_num(&p.id)));
        let more = own.len() > max_results;
        own.truncate(max_results);
        if own.is_empty() {
            return Ok(json!({ "meta": { "result_count": 0 } }));
        }
        let fields = params.list(&["tweet.fields", "post.fields"]);
        let mut meta = json!({
            "newest_id": own[0].id, "oldest_id": own[own.len() - 1].id, "result_count": own.len()
        });
        if more {
            meta["next_token"] = json!(encode_token(id_num(&own[own.len() - 1].id)));
        }
        Ok(json!({
            "data": own.iter().map(|p| post_json(p, &fields)).collect::<Vec<_>>(),
            "meta": meta,
        }))
    }

    // -- OAuth 2.0 ---------------------------------------------------------------------

    fn token(&mut self, request: &Request) -> ResponseTemplate {
        self.token_requests += 1;
        let form = parse_form(&request.body);
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if field("grant_type") != Some("refresh_token") {
            return oauth_error(
                "unsupported_grant_type",
                "Only refresh_token is supported by this fake.",
            );
        }
        if field("client_id") != Some(X_CLIENT_ID) {
            return oauth_error("invalid_request", "Missing valid authorization header");
        }
        let valid = self
            .refresh_token
            .as_deref()
            .is_some_and(|r| Some(r) == field("refresh_token"));
        if !valid {
            return json_body(400, INVALID_GRANT_BODY);
        }
        self.issued += 1;
        let access = format!("x-user-access-token-{}", self.issued);
        self.access_tokens.insert(access.clone());
        let mut body = json!({
            "token_type": "bearer",
            "expires_in": 7200,
            "access_token": access,
            "scope": "tweet.write users.read tweet.read offline.access",
        });
        if self.token_responses_include_refresh {
            if self.rotate_refresh_tokens {
                self.refresh_token = Some(format!("x-refresh-token-{}", self.issued));
            }
            body["refresh_token"] = json!(self.refresh_token);
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// A post as X serves it, with only the fields asked for.
fn post_json(post: &StoredPost, fields: &HashSet<String>) -> Value {
    let (text, urls) = as_served(&post.text);
    let mut value = json!({ "id": post.id, "text": text, "edit_history_tweet_ids": [post.id] });
    let wants = |f: &str| fields.contains(f);
    if wants("author_id") {
        value["author_id"] = json!(post.author.id);
    }
    if wants("created_at") {
        value["created_at"] = json!(
            post.created_at
                .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        );
    }
    if wants("public_metrics") {
        value["public_metrics"] = json!({
            "retweet_count": 1, "reply_count": 2, "like_count": 3, "quote_count": 0,
            "bookmark_count": 0, "impression_count": 40
        });
    }
    if wants("lang") {
        value["lang"] = json!("en");
    }
    if wants("entities") && !urls.is_empty() {
        value["entities"] = json!({ "urls": urls });
    }
    value
}

fn user_json(author: &XAuthor, fields: &HashSet<String>) -> Value {
    let mut value = json!({ "id": author.id, "name": author.name, "username": author.username });
    if fields.contains("public_metrics") {
        value["public_metrics"] = json!({
            "followers_count": author.followers, "following_count": 10,
            "tweet_count": 100, "listed_count": 1
        });
    }
    value
}

/// The text as X serves it (`&`, `<`, `>` escaped, URLs shortened to `t.co`) and its
/// `entities.urls` (offsets in code points of the served text).
fn as_served(text: &str) -> (String, Vec<Value>) {
    let mut out = String::new();
    let mut urls = Vec::new();
    let mut at = 0;
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    for range in rules::find_urls(text) {
        out.push_str(&escape(&text[at..range.start]));
        let long = &text[range.clone()];
        let short = format!("https://t.co/{}", short_code(long));
        let start = out.chars().count();
        out.push_str(&short);
        urls.push(json!({
            "start": start, "end": start + short.chars().count(), "url": short,
            "expanded_url": long,
            "display_url": long.trim_start_matches("https://").trim_start_matches("http://"),
        }));
        at = range.end;
    }
    out.push_str(&escape(&text[at..]));
    (out, urls)
}

/// Ten characters from a hash of the URL (stable across calls, like a t.co link).
fn short_code(url: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % 62) as usize] as char)
        .collect()
}

fn id_num(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

fn snowflake_ms(id: u64) -> i64 {
    (id >> 22) as i64 + SNOWFLAKE_EPOCH_MS
}

/// Opaque page tokens: the last id served, disguised.
fn encode_token(last_id: u64) -> String {
    format!("b26v89c19zqg8o3f{last_id:x}")
}

fn decode_token(token: &str) -> Option<u64> {
    u64::from_str_radix(token.strip_prefix("b26v89c19zqg8o3f")?, 16).ok()
}

fn bounded(
    params: &Params,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, Refusal> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                invalid_request(
                    name,
                    &format!(
                        "The `{name}` query parameter value [{v}] is not between {} and {}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

fn exclusive(params: &Params, a: &str, b: &str) -> Result<(), Refusal> {
    if params.get(a).is_some() && params.get(b).is_some() {
        return Err(invalid_request(
            a,
            &format!("The `{a}` and `{b}` query parameters can not be used together"),
        ));
    }
    Ok(())
}

fn id_param(params: &Params, name: &str) -> Result<Option<u64>, Refusal> {
    match params.get(name) {
        None => Ok(None),
        Some(v) if (1..=19).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(v.parse().ok())
        }
        Some(v) => Err(invalid_request(
            name,
            &format!("The `{name}` query parameter value [{v}] does not match ^[0-9]{{1,19}}$"),
        )),
    }
}

fn time_param(params: &Params, name: &str) -> Result<Option<Timestamp>, Refusal> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<Timestamp>().map(Some).map_err(|_| {
            invalid_request(
                name,
                &format!("The `{name}` query parameter value [{v}] is not a valid RFC 3339 date"),
            )
        }),
    }
}

/// A form-encoded body as (name, value) pairs.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = (bytes[i] == b'%')
                .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
                .flatten();
            match (bytes[i], escaped) {
                (_, Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b'+', None) => {
                    out.push(b' ');
                    i += 1;
                }
                (b, None) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn json_body(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

fn problem(status: u16, title: &str, detail: &str, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        json!({ "title": title, "detail": detail, "type": kind, "status": status }).to_string(),
        "application/problem+json",
    )
}

fn invalid_request(parameter: &str, message: &str) -> Refusal {
    Box::new(
        ResponseTemplate::new(400).set_body_raw(
            json!({
                "errors": [{ "parameters": { parameter: [] }, "message": message }],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.x.com/2/problems/invalid-request"
            })
            .to_string(),
            "application/json",
        ),
    )
}

/// A refusal built while reading a request (boxed: a `ResponseTemplate` is large).
type Refusal = Box<ResponseTemplate>;

fn oauth_error(error: &str, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(json!({ "error": error, "error_description": description }))
}
