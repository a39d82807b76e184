//! A Facebook Page on the Graph API (`platform-apis.md` §6), for listening and publishing:
//! - `GET /v25.0/{page}/tagged`, `GET /v25.0/{page}/posts`, `GET /v25.0/{post}/comments`:
//!   newest first, `limit` (default 25, at most 100), cursor paging with
//!   `paging.cursors.after` and a `paging.next` URL that — like the real one — carries the
//!   access token, `since`/`until` (unix seconds, inclusive) filters; times written
//!   `2026-01-10T12:00:00+0000`;
//! - `X-App-Usage` on every answer, `X-Business-Use-Case-Usage` when usage is set
//!   ([`FakeFacebook::set_usage`]);
//! - the token checked (`Authorization: Bearer` or `access_token`): otherwise HTTP 400
//!   with code 190 (`OAuthException`);
//! - `POST /v25.0/{page}/feed` (form `message`, `link`): `{"id":"{page}_{post}"}`, the post
//!   then served on `/posts`; the same message twice → code 506 "Duplicate status message";
//! - read errors on demand ([`FakeFacebook::fail_reads`]) and create faults per message text
//!   ([`FakeFacebook::inject`]).
//!
//! Not reproduced: field expansion, privacy filtering (`from` hidden), Page Public Content
//! Access review, scheduled posts, real throttling thresholds.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hark_shared::clock::{Clock, SystemClock};
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::{Fault, FaultPlan};

/// The Page the fake serves.
pub const FACEBOOK_PAGE_ID: &str = "546349135390552";
/// The Page access token accepted unless told otherwise.
pub const FACEBOOK_PAGE_TOKEN: &str = "EAAGfakePageToken0123456789";
/// The version path the fake answers on (the client's pinned version).
pub const FACEBOOK_VERSION: &str = hark_shared::platforms::facebook::GRAPH_VERSION;

const CURSOR_PREFIX: &str = "QVFIUk";

/// A post created through `POST /{page}/feed`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedPost {
    pub id: String,
    pub message: String,
    pub link: Option<String>,
    pub created_at: Timestamp,
}

struct GraphState {
    page_id: String,
    token: String,
    clock: Arc<dyn Clock>,
    /// Posts that tag the Page.
    tagged: Vec<Value>,
    /// The Page's own posts.
    posts: Vec<Value>,
    /// Comments by post id.
    comments: HashMap<String, Vec<Value>>,
    /// (percentage, minutes to regain access) for `X-Business-Use-Case-Usage`.
    usage: Option<(u64, u64)>,
    app_usage: u64,
    read_errors: VecDeque<(u16, i64)>,
    reads: HashMap<String, usize>,
    created: Vec<CreatedPost>,
    faults: FaultPlan,
    lost_response_delay: Duration,
    create_requests: usize,
    next_post: u64,
}

/// A Facebook Page served by wiremock.
pub struct FakeFacebook {
    pub server: MockServer,
    state: Arc<Mutex<GraphState>>,
}

/// Graph time format: `+0000`, not `Z`.
fn graph_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

fn time_of(item: &Value) -> i64 {
    item["created_time"]
        .as_str()
        .and_then(hark_shared::platforms::facebook::parse_graph_time)
        .map_or(0, |t| t.as_second())
}

/// A Graph error body.
pub fn graph_error(code: i64, message: &str) -> Value {
    let (kind, subcode) = match code {
        190 => ("OAuthException", Some(460)),
        506 => ("OAuthException", Some(1_455_006)),
        _ => ("OAuthException", None),
    };
    let mut error = json!({
        "message": message, "type": kind, "code": code, "fbtrace_id": "AFakeTrace01"
    });
    if let Some(sub) = subcode {
        error["error_subcode"] = json!(sub);
    }
    json!({ "error": error })
}

fn message_for(code: i64) -> &'static str {
    match code {
        1 => "An unknown error has occurred.",
        2 => "An unexpected error has occurred. Please retry your request later.",
        4 => "(#4) Application request limit reached",
        17 => "(#17) User request limit reached",
        32 => "(#32) Page request limit reached",
        190 => {
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."
        }
        200 => "(#200) The user hasn't authorized the application to perform this action",
        506 => "Duplicate status message",
        613 => "(#613) Calls to this api have exceeded the rate limit.",
        80001 => {
            "(#80001) There have been too many calls to this Page account. Wait a bit and try again."
        }
        _ => "(#100) Invalid parameter",
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |part: &str| {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
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

fn param(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl GraphState {
    fn authorized(&self, request: &Request) -> bool {
        let bearer = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        bearer.or_else(|| param(request, "access_token")).as_deref() == Some(self.token.as_str())
    }

    fn with_usage(&self, response: ResponseTemplate) -> ResponseTemplate {
        let mut response = response.insert_header(
            "X-App-Usage",
            json!({"call_count": self.app_usage, "total_time": self.app_usage / 2, "total_cputime": self.app_usage / 3})
                .to_string()
                .as_str(),
        );
        if let Some((percent, regain)) = self.usage {
            let buc = json!({ self.page_id.clone(): [{
                "type": "pages", "call_count": percent, "total_cputime": percent / 2,
                "total_time": percent / 2, "estimated_time_to_regain_access": regain
            }]});
            response =
                response.insert_header("X-Business-Use-Case-Usage", buc.to_string().as_str());
        }
        response
    }

    fn error(&self, status: u16, code: i64) -> ResponseTemplate {
        self.with_usage(
            ResponseTemplate::new(status).set_body_json(graph_error(code, message_for(code))),
        )
    }

    fn read(&mut self, request: &Request, server_uri: &str) -> ResponseTemplate {
        let segments: Vec<&str> = request.url.path().trim_matches('/').split('/').collect();
        let (node, edge) = match segments.as_slice() {
            [_, node, edge] => ((*node).to_owned(), (*edge).to_owned()),
            _ => return self.error(400, 100),
        };
        *self.reads.entry(edge.clone()).or_default() += 1;
        if !self.authorized(request) {
            return self.error(400, 190);
        }
        if let Some((status, code)) = self.read_errors.pop_front() {
            return self.error(status, code);
        }
        let items: Vec<Value> =
            match edge.as_str() {
                "tagged" if node == self.page_id => self.tagged.clone(),
                "posts" | "feed" if node == self.page_id => self.posts.clone(),
                "comments" => self.comments.get(&node).cloned().unwrap_or_default(),
                _ => {
                    return self.with_usage(ResponseTemplate::new(400).set_body_json(graph_error(
                        100,
                        "(#100) Tried accessing nonexisting field",
                    )));
                }
            };
        let since = param(request, "since").and_then(|v| v.parse::<i64>().ok());
        let until = param(request, "until").and_then(|v| v.parse::<i64>().ok());
        let mut items: Vec<Value> = items
            .into_iter()
            .filter(|i| {
                since.is_none_or(|s| time_of(i) >= s) && until.is_none_or(|u| time_of(i) <= u)
            })
            .collect();
        items.sort_by(|a, b| {
            (time_of(b), b["id"].as_str().unwrap_or_default())
                .cmp(&(time_of(a), a["id"].as_str().unwrap_or_default()))
        });
        let limit = param(request, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(25)
            .clamp(1, 100);
        let offset = param(request, "after")
            .and_then(|a| {
                a.strip_prefix(CURSOR_PREFIX)
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .unwrap_or(0);
        let page: Vec<Value> = items.iter().skip(offset).take(limit).cloned().collect();
        let end = offset + page.len();
        let mut paging = json!({});
        if !page.is_empty() {
            paging["cursors"] = json!({
                "before": format!("{CURSOR_PREFIX}{offset}"),
                "after": format!("{CURSOR_PREFIX}{end}"),
            });
        }
        if end < items.len() {
            // The real `next` link carries the access token and the request's parameters.
            let mut next = format!(
                "{server_uri}/{FACEBOOK_VERSION}/{node}/{edge}?access_token={}&limit={limit}&after={CURSOR_PREFIX}{end}",
                self.token
            );
            if let Some(fields) = param(request, "fields") {
                next.push_str(&format!("&fields={fields}"));
            }
            paging["next"] = json!(next);
        }
        self.with_usage(
            ResponseTemplate::new(200).set_body_json(json!({"data": page, "paging": paging})),
        )
    }

    fn create(&mut self, request: &Request) -> ResponseTemplate {
        self.create_requests += 1;
        if !self.authorized(request) {
            return self.error(400, 190);
        }
        let form = parse_form(&request.body);
        let message = form.get("message").cloned().unwrap_or_default();
        let link = form.get("link").cloned();
        if message.is_empty() && link.is_none() {
            return self.with_usage(
                ResponseTemplate::new(400)
                    .set_body_json(graph_error(100, "(#100) Missing message or attachment")),
            );
        }
        let now = self.clock.now();
        let fault = self.faults.take(&message);
        match fault {
            Some(Fault::ServerError) => {
                return self.with_usage(
                    ResponseTemplate::new(500).set_body_json(graph_error(1, message_for(1))),
                );
            }
            Some(Fault::RateLimited { reset_in }) => {
                let minutes = u64::try_from(reset_in.as_secs().max(0))
                    .unwrap_or(0)
                    .div_ceil(60);
                let buc = json!({ self.page_id.clone(): [{
                    "type": "pages", "call_count": 100, "total_cputime": 40, "total_time": 40,
                    "estimated_time_to_regain_access": minutes
                }]});
                return ResponseTemplate::new(400)
                    .insert_header("X-Business-Use-Case-Usage", buc.to_string().as_str())
                    .set_body_json(graph_error(32, message_for(32)));
            }
            Some(Fault::LoseResponse) | None => {}
        }
        if !message.is_empty() && self.posts.iter().any(|p| p["message"] == json!(message)) {
            return self.error(400, 506);
        }
        self.next_post += 1;
        let post_id = format!("{}", 1_116_692_661_689_000u64 + self.next_post);
        let id = format!("{}_{post_id}", self.page_id);
        self.posts.push(json!({
            "id": id, "message": message, "created_time": graph_time(now),
            "permalink_url": format!("https://www.facebook.com/{}/posts/{post_id}", self.page_id),
        }));
        self.created.push(CreatedPost {
            id: id.clone(),
            message,
            link,
            created_at: now,
        });
        let response = self.with_usage(ResponseTemplate::new(200).set_body_json(json!({"id": id})));
        if fault == Some(Fault::LoseResponse) {
            response.set_delay(self.lost_response_delay)
        } else {
            response
        }
    }
}

struct ReadEndpoint {
    state: Arc<Mutex<GraphState>>,
    uri: String,
}

impl Respond for ReadEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read(request, &self.uri)
    }
}

struct FeedEndpoint(Arc<Mutex<GraphState>>);

impl Respond for FeedEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .create(request)
    }
}

impl FakeFacebook {
    /// A Page on the wall clock, accepting [`FACEBOOK_PAGE_TOKEN`].
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// A Page whose created posts are stamped by `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(GraphState {
            page_id: FACEBOOK_PAGE_ID.to_owned(),
            token: FACEBOOK_PAGE_TOKEN.to_owned(),
            clock,
            tagged: Vec::new(),
            posts: Vec::new(),
            comments: HashMap::new(),
            usage: None,
            app_usage: 2,
            read_errors: VecDeque::new(),
            reads: HashMap::new(),
            created: Vec::new(),
            faults: FaultPlan::default(),
            lost_response_delay: Duration::from_secs(2),
            create_requests: 0,
            next_post: 0,
        }));
        let version = FACEBOOK_VERSION.replace('.', r"\.");
        Mock::given(method("GET"))
            .and(path_regex(format!(
                r"^/{version}/[^/]+/(tagged|posts|feed|comments)$"
            )))
            .respond_with(ReadEndpoint {
                state: state.clone(),
                uri: server.uri(),
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(format!(r"^/{version}/{FACEBOOK_PAGE_ID}/feed$")))
            .respond_with(FeedEndpoint(state.clone()))
            .mount(&server)
            .await;
        FakeFacebook { server, state }
    }

    fn state(&self) -> MutexGuard<'_, GraphState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The base URL to give the client.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Someone tags the Page in a post (id `{user}_{post}`).
    pub fn tag(&self, id: &str, text: &str, at: Timestamp) {
        let user = id.split('_').next().unwrap_or("100089001").to_owned();
        self.state().tagged.push(json!({
            "id": id, "message": text, "created_time": graph_time(at),
            "from": { "name": format!("User {user}"), "id": user },
            "permalink_url": format!("https://www.facebook.com/{}", id.replace('_', "/posts/")),
        }));
    }

    /// The Page posts something itself; returns the post id (`{page}_{n}`).
    pub fn page_post(&self, n: &str, text: &str, at: Timestamp) -> String {
        let mut state = self.state();
        let id = format!("{}_{n}", state.page_id);
        let permalink = format!("https://www.facebook.com/{}/posts/{n}", state.page_id);
        state.posts.push(json!({
            "id": id, "message": text, "created_time": graph_time(at), "permalink_url": permalink,
        }));
        id
    }

    /// Someone comments on a post (`id` is the comment's own part, made `{post}_{id}`).
    pub fn comment(&self, post_id: &str, id: &str, text: &str, at: Timestamp) -> String {
        let post_part = post_id.rsplit('_').next().unwrap_or(post_id);
        let comment_id = format!("{post_part}_{id}");
        self.state()
            .comments
            .entry(post_id.to_owned())
            .or_default()
            .push(json!({
                "id": comment_id, "message": text, "created_time": graph_time(at),
                "from": { "name": "Commenter", "id": "7100" },
                "like_count": 1, "comment_count": 0,
            }));
        comment_id
    }

    /// Business-use-case usage reported from now on: `percent` of the budget used,
    /// `regain_minutes` until access returns.
    pub fn set_usage(&self, percent: u64, regain_minutes: u64) {
        self.state().usage = Some((percent, regain_minutes));
    }

    /// The next `n` reads answer HTTP `status` with Graph error `code`.
    pub fn fail_reads(&self, n: usize, status: u16, code: i64) {
        let mut state = self.state();
        for _ in 0..n {
            state.read_errors.push_back((status, code));
        }
    }

    /// Revokes the token: every call answers code 190 until [`FakeFacebook::accept_token`].
    pub fn revoke_token(&self) {
        self.state().token = "revoked".to_owned();
    }

    pub fn accept_token(&self, token: &str) {
        self.state().token = token.to_owned();
    }

    /// Queues `fault` for the next create whose `message` is `text`.
    pub fn inject(&self, text: &str, fault: Fault) {
        self.state().faults.add(text, fault);
    }

    /// How long a lost response is held (longer than the client's timeout).
    pub fn set_lost_response_delay(&self, delay: Duration) {
        self.state().lost_response_delay = delay;
    }

    /// Posts created through the API, in order.
    pub fn created(&self) -> Vec<CreatedPost> {
        self.state().created.clone()
    }

    /// Faults injected so far, as (message, fault).
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.state().faults.injected.clone()
    }

    pub fn create_requests(&self) -> usize {
        self.state().create_requests
    }

    /// Reads of an edge (`tagged`, `posts`, `comments`) so far.
    pub fn reads(&self, edge: &str) -> usize {
        self.state().reads.get(edge).copied().unwrap_or(0)
    }
}
