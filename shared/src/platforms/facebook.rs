//! Facebook Pages through the Graph API: listening on a Page (posts the Page is tagged in,
//! comments on the Page's recent posts) and publishing to the Page's feed.
//!
//! Facts and quirks (`platform-apis.md` §6, <https://developers.facebook.com/docs/graph-api/>):
//! - There is no keyword search of Facebook posts: a source reads edges of its Page, and the
//!   campaign query, when given, is applied locally as a prefilter.
//! - Edges are paged with cursors or time (`paging.cursors.after`, `paging.next` with
//!   `after` or `until`); "don't store cursors"
//!   (<https://developers.facebook.com/docs/graph-api/results/>), so a read interrupted by
//!   the page cap resumes with `until=<unix>` instead.
//! - `paging.next` is a full URL that carries the access token: only its paging parameters
//!   are used, on our own base URL, so a hostile or proxied answer cannot redirect the token.
//! - `created_time` is written `2026-01-10T12:00:00+0000` (no colon in the offset).
//! - Errors are `{"error":{"message","type","code","error_subcode","fbtrace_id"}}` with HTTP
//!   400/403/500 — the `code` decides, not the status (don't rely on 429).
//! - Rate limits come as usage percentages in `X-App-Usage` / `X-Business-Use-Case-Usage`
//!   (<https://developers.facebook.com/docs/graph-api/overview/rate-limiting/>): see
//!   [`usage_rate_limit`].
//! - Publishing has no idempotency guard; code 506 means "duplicate post".
//!
//! The page access token is sent as `Authorization: Bearer` (never in a URL), so no error,
//! log line or `Debug` output can show it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use super::http::{self, Answer, HttpClient, clip, exchange};
use super::{
    ListenLimits, Listened, Listener, Lookup, OutgoingPost, PlatformError, Published, Publisher,
    RateLimit, ratelimit,
};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Author, Cursor, Engagement, Mention, Platform, Secret, Source};
use crate::query::{Expr, MatchInput, Query};
use crate::rules;

const PLATFORM: Platform = Platform::Facebook;

/// The Graph API host when a source or channel names no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";

/// The pinned Graph API version: the one path segment every request starts with
/// (`platform-apis.md` §6: "The docs currently show v25/v26; pin a version").
pub const GRAPH_VERSION: &str = "v25.0";

/// Items per page asked of listening edges (the Graph default).
pub const PAGE_LIMIT: u32 = 25;

/// Posts per page when looking for a published post.
pub const LOOKUP_PAGE_LIMIT: u32 = 100;

/// Pages read at most while looking for a published post before giving up (undecided).
pub const MAX_LOOKUP_PAGES: usize = 20;

/// How many of the Page's newest posts have their comments read.
pub const WATCHED_POSTS: usize = 10;

/// Posts older than this have their comments no longer read.
pub const COMMENT_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

/// How far below the newest item seen the next read goes, so an item that shows up late on
/// an edge (a tag added after posting) is still found; `seen` drops the repeats.
pub const OVERLAP: SignedDuration = SignedDuration::from_secs(10 * 60);

/// Ids kept per edge to drop repeats within the overlap.
pub const MAX_SEEN: usize = 500;

/// Usage percentage from which the budget is reported spent, so callers stop before
/// Facebook throttles (throttling starts at 100 %).
pub const EXHAUSTED_AT_PERCENT: u64 = 95;

/// The wait assumed when usage is spent but no `estimated_time_to_regain_access` was given:
/// app-level usage is measured over a rolling hour [doc], so minutes, not seconds [inf].
pub const DEFAULT_REGAIN: SignedDuration = SignedDuration::from_secs(10 * 60);

/// Longest platform error text kept in an error.
const MAX_ERROR_CHARS: usize = 300;

/// Fields asked for on posts and comments (the defaults are only `id` and a few others).
const TAGGED_FIELDS: &str = "id,message,story,created_time,from,permalink_url";
const COMMENT_FIELDS: &str = "id,message,created_time,from,permalink_url,like_count,comment_count";
const POST_FIELDS: &str = "id,created_time,permalink_url";
const LOOKUP_FIELDS: &str = "id,message,created_time,permalink_url";

// ---------------------------------------------------------------------------------------
// Usage headers
// ---------------------------------------------------------------------------------------

/// What Facebook's usage headers say: the highest percentage of any counter and the longest
/// `estimated_time_to_regain_access` (minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub max_percent: u64,
    pub regain_minutes: Option<u64>,
}

impl Usage {
    /// The usage as a [`RateLimit`] out of 100: `remaining = 100 - max_percent`; at
    /// [`EXHAUSTED_AT_PERCENT`] or more, `remaining = 0` with the reset when access returns.
    pub fn rate_limit(&self, now: Timestamp) -> RateLimit {
        let regain = self.regain_minutes.filter(|m| *m > 0).map(|m| {
            SignedDuration::from_secs(i64::try_from(m.min(7 * 24 * 60)).unwrap_or(0) * 60)
        });
        let exhausted = self.max_percent >= EXHAUSTED_AT_PERCENT;
        let wait = if exhausted {
            Some(regain.unwrap_or(DEFAULT_REGAIN))
        } else {
            regain
        };
        RateLimit {
            limit: Some(100),
            remaining: Some(if exhausted { 0 } else { 100 - self.max_percent }),
            reset_at: wait.and_then(|w| now.checked_add(w).ok()),
        }
    }
}

/// Reads `X-App-Usage`, `X-Page-Usage` [obs] and `X-Business-Use-Case-Usage`; `None` when
/// none of them is present and readable. Never panics (property-tested).
///
/// `X-App-Usage: {"call_count":28,"total_time":25,"total_cputime":25}`;
/// `X-Business-Use-Case-Usage: {"<page-id>":[{"type":"pages","call_count":100,
/// "total_cputime":25,"total_time":25,"estimated_time_to_regain_access":19}]}`.
pub fn parse_usage(headers: &HeaderMap) -> Option<Usage> {
    let mut usage: Option<Usage> = None;
    let mut absorb = |counters: &serde_json::Map<String, serde_json::Value>| {
        let u = usage.get_or_insert_with(Usage::default);
        for key in ["call_count", "total_time", "total_cputime"] {
            if let Some(p) = counters.get(key).and_then(percent) {
                u.max_percent = u.max_percent.max(p);
            }
        }
        if let Some(m) = counters
            .get("estimated_time_to_regain_access")
            .and_then(percent)
        {
            u.regain_minutes = Some(u.regain_minutes.unwrap_or(0).max(m));
        }
    };
    for name in ["x-app-usage", "x-page-usage", "x-ad-account-usage"] {
        if let Some(serde_json::Value::Object(obj)) = header_json(headers, name) {
            absorb(&obj);
        }
    }
    if let Some(serde_json::Value::Object(by_id)) =
        header_json(headers, "x-business-use-case-usage")
    {
        for entries in by_id.values() {
            if let serde_json::Value::Array(entries) = entries {
                for entry in entries {
                    if let serde_json::Value::Object(obj) = entry {
                        absorb(obj);
                    }
                }
            }
        }
    }
    usage
}

/// The usage headers as a [`RateLimit`] (see [`Usage::rate_limit`]).
pub fn usage_rate_limit(headers: &HeaderMap, now: Timestamp) -> Option<RateLimit> {
    parse_usage(headers).map(|u| u.rate_limit(now))
}

fn header_json(headers: &HeaderMap, name: &str) -> Option<serde_json::Value> {
    let raw = headers.get(name)?.to_str().ok()?;
    serde_json::from_str(raw).ok()
}

/// A non-negative number (percentages may exceed 100 while throttled; floats are seen).
fn percent(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.min(1e12).ceil() as u64)
        }),
        serde_json::Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| (f.is_finite() && f >= 0.0).then(|| f.min(1e12).ceil() as u64)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The Graph error object (<https://developers.facebook.com/docs/graph-api/guides/error-handling/>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_user_msg: Option<String>,
    #[serde(default)]
    pub is_transient: Option<bool>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

/// Reads a Graph error body; `None` when the body is something else.
pub fn parse_error(body: &[u8]) -> Option<GraphError> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
}

/// Throttling codes: 4 app, 17 user, 32 page, 613 custom, 341 app limit, 80000–80014
/// Business Use Case throttles (80001 Pages) (`platform-apis.md` §6.3).
pub fn is_throttle_code(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 341 | 613) || (80_000..=80_014).contains(&code)
}

/// Code 190 (and the older 102): the access token expired, was revoked or is invalid.
pub fn is_auth_code(code: i64) -> bool {
    matches!(code, 102 | 190)
}

/// Code 506: "Duplicate status message" — the same text was just posted.
pub const DUPLICATE_POST_CODE: i64 = 506;

/// Classifies a failed Graph response. The error `code` decides: throttling codes and 1/2
/// (transient) are `Retryable` (after the usage headers' regain time when given), 190 is
/// `AuthExpired`, everything else `Permanent` with Facebook's own words. Without a readable
/// error body, the HTTP status decides. Never panics (property-tested).
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: Timestamp) -> PlatformError {
    let status_code =
        reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
    let Some(error) = parse_error(body) else {
        let text = crate::text::html_to_text(&String::from_utf8_lossy(body));
        let message = if text.trim().is_empty() {
            format!("HTTP {status}")
        } else {
            clip(&text, MAX_ERROR_CHARS)
        };
        return http::classify_status(PLATFORM, status_code, headers, message, now);
    };
    let code = error.code.unwrap_or(0);
    let message = describe_error(&error);
    let after = || {
        parse_usage(headers)
            .and_then(|u| u.rate_limit(now).wait_from(now))
            .filter(|w| !w.is_zero())
            .or_else(|| ratelimit::retry_after(headers, now))
    };
    if is_throttle_code(code) || matches!(code, 1 | 2) || error.is_transient == Some(true) {
        return PlatformError::Retryable {
            platform: PLATFORM,
            after: after(),
            reason: message,
        };
    }
    if is_auth_code(code) {
        return PlatformError::AuthExpired {
            platform: PLATFORM,
            message,
        };
    }
    if code == 0 && (status == 429 || status >= 500) {
        return PlatformError::Retryable {
            platform: PLATFORM,
            after: after(),
            reason: message,
        };
    }
    PlatformError::Permanent {
        platform: PLATFORM,
        status: Some(status),
        message,
    }
}

/// `message (code N, subcode M)`, clipped; the user-facing text when Facebook gave one.
fn describe_error(error: &GraphError) -> String {
    let mut text = error.message.trim().to_owned();
    if let Some(user) = error
        .error_user_msg
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty() && *m != text)
    {
        text = format!("{text}: {user}");
    }
    if text.is_empty() {
        text = "unknown Graph API error".to_owned();
    }
    let mut codes = Vec::new();
    if let Some(code) = error.code {
        codes.push(format!("code {code}"));
    }
    if let Some(sub) = error.error_subcode {
        codes.push(format!("subcode {sub}"));
    }
    if !codes.is_empty() {
        text = format!("{text} ({})", codes.join(", "));
    }
    clip(&text, MAX_ERROR_CHARS)
}

// ---------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------

/// A page of an edge: `{"data":[...],"paging":{"cursors":{"before","after"},"next"}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GraphPage<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Cursors {
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
}

/// Paging parameters taken from a `next` link (never the token, host or path).
const PAGING_PARAMS: [&str; 4] = ["after", "until", "since", "__paging_token"];

impl Paging {
    /// The parameters that fetch the next page, or `None` on the last page. The docs:
    /// "If not included, this is the last page of data"; a page may be empty and still
    /// have `next`.
    pub fn next_params(&self) -> Result<Option<Vec<(String, String)>>, PlatformError> {
        let Some(next) = self.next.as_deref() else {
            return Ok(None);
        };
        let mut params: Vec<(String, String)> = Url::parse(next)
            .map(|u| {
                u.query_pairs()
                    .filter(|(k, _)| PAGING_PARAMS.contains(&k.as_ref()))
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if !params.iter().any(|(k, _)| k == "after" || k == "until")
            && let Some(after) = self.cursors.as_ref().and_then(|c| c.after.clone())
        {
            params.retain(|(k, _)| k != "after");
            params.push(("after".into(), after));
        }
        if params.is_empty() {
            return Err(PlatformError::Malformed {
                platform: PLATFORM,
                detail: "`paging.next` names no cursor to continue from".into(),
            });
        }
        Ok(Some(params))
    }
}

/// Who wrote a post or comment. Often missing for people, for privacy [doc].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphAuthor {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A post (tagged edge, Page posts) or a comment: the fields Hark reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GraphItem {
    pub id: String,
    #[serde(deserialize_with = "graph_time")]
    pub created_time: Timestamp,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub story: Option<String>,
    #[serde(default)]
    pub from: Option<GraphAuthor>,
    #[serde(default)]
    pub permalink_url: Option<String>,
    #[serde(default)]
    pub like_count: Option<i64>,
    #[serde(default)]
    pub comment_count: Option<i64>,
}

/// Parses Graph times: `2026-01-10T12:00:00+0000` (no colon in the offset,
/// `platform-apis.md` §6) as well as RFC 3339.
pub fn parse_graph_time(text: &str) -> Option<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let bytes = text.as_bytes();
    let n = bytes.len();
    if n > 5
        && matches!(bytes[n - 5], b'+' | b'-')
        && bytes[n - 4..].iter().all(u8::is_ascii_digit)
        && text.is_char_boundary(n - 2)
    {
        let fixed = format!("{}:{}", &text[..n - 2], &text[n - 2..]);
        return fixed.parse().ok();
    }
    None
}

fn graph_time<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    parse_graph_time(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid time `{}`", clip(&text, 40))))
}

/// Parses one page of posts or comments. Anything else — or an item with an empty id — is
/// `Malformed`, and nothing from the page is used. Never panics (property-tested).
pub fn parse_page(body: &[u8]) -> Result<GraphPage<GraphItem>, PlatformError> {
    let page: GraphPage<GraphItem> =
        serde_json::from_slice(body).map_err(|e| malformed("edge page", &e))?;
    if page.data.iter().any(|i| i.id.trim().is_empty()) {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: "edge page has an item with an empty id".into(),
        });
    }
    Ok(page)
}

/// The web URL of a post or comment id (`{page}_{post}` opens as is).
pub fn web_url(id: &str) -> String {
    format!("https://www.facebook.com/{id}")
}

impl GraphItem {
    /// The mention this post or comment stands for.
    pub fn to_mention(&self, source: &Source) -> Mention {
        let text = self
            .message
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .or(self.story.as_deref())
            .unwrap_or_default()
            .to_owned();
        let from = self.from.as_ref();
        let author_id = from.and_then(|f| f.id.clone()).unwrap_or_default();
        Mention {
            platform: PLATFORM,
            native_id: self.id.clone(),
            url: self
                .permalink_url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .unwrap_or_else(|| web_url(&self.id)),
            author: Author {
                url: (!author_id.is_empty()).then(|| web_url(&author_id)),
                handle: author_id,
                display_name: from
                    .and_then(|f| f.name.clone())
                    .filter(|n| !n.trim().is_empty()),
                followers: None,
            },
            text,
            created_at: self.created_time,
            lang: None,
            sentiment: None,
            engagement: Engagement {
                likes: self.like_count.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                reposts: 0,
                replies: self
                    .comment_count
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            },
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cursor position
// ---------------------------------------------------------------------------------------

/// What `cursor.position` holds for a Facebook source (JSON):
///
/// ```json
/// {"tagged": {"since": "2026-01-10T11:50:00Z", "newest": "2026-01-10T12:00:00Z",
///             "seen": [["100089001_122001", 1768046400]]},
///  "posts": {"546349135390552_1116692661689527":
///            {"created": "2026-01-09T08:00:00Z", "comments": {"since": "…", "seen": []}}}}
/// ```
///
/// Each edge is read newest first down to its `since`; `seen` holds the ids returned at or
/// after `since` (the overlap), so repeats are dropped. A read the page cap interrupted
/// keeps `since` and stores `until` (the oldest time fetched): the next poll finishes the
/// window below it before moving on, so nothing between is lost.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FacebookPosition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagged: Option<EdgePosition>,
    /// Watched posts of the Page, by id.
    #[serde(default)]
    pub posts: BTreeMap<String, WatchedPost>,
}

/// Where reading one edge stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgePosition {
    /// Everything created before this was returned (or predates the source).
    pub since: Timestamp,
    /// Set while finishing an interrupted window: the oldest time fetched so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// The newest time seen on the edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Timestamp>,
    /// `(id, unix seconds)` of items returned that a later read may serve again.
    #[serde(default)]
    pub seen: Vec<(String, i64)>,
}

/// A post of the Page whose comments are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedPost {
    pub created: Timestamp,
    pub comments: EdgePosition,
}

impl FacebookPosition {
    /// Reads a stored position; `None` for a source never polled. An unreadable position
    /// restarts like a first poll (one page per edge) rather than blocking the source.
    fn read(cursor: &Cursor) -> Option<Self> {
        let raw = cursor.position.as_deref()?;
        match serde_json::from_str(raw) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(
                    source_id = %cursor.source_id,
                    error = %e,
                    "unreadable facebook cursor position; starting over with one page"
                );
                None
            }
        }
    }
}

/// How one edge read ended.
struct EdgeRead {
    items: Vec<GraphItem>,
    next: EdgePosition,
    complete: bool,
}

/// The position after reading `fetched` (`(id, time)` in page order) from `state`'s window.
fn next_edge_position(
    state: &EdgePosition,
    fetched: &[(String, Timestamp)],
    complete: bool,
    now: Timestamp,
) -> EdgePosition {
    let newest = fetched.iter().map(|(_, t)| *t).chain(state.newest).max();
    let (since, until) = if complete {
        let since = newest
            .map(|n| n.min(now) - OVERLAP)
            .map_or(state.since, |s| s.max(state.since));
        (since, None)
    } else {
        let oldest = fetched.iter().map(|(_, t)| *t).min();
        let until = match (oldest, state.until) {
            // No progress below the boundary second (more items in it than the page cap):
            // step below it rather than asking for the same pages forever.
            (Some(o), Some(u)) if o >= u => u - SignedDuration::from_secs(1),
            (Some(o), _) => o,
            (None, u) => u.unwrap_or(now),
        };
        (state.since, Some(until))
    };
    let top = newest.map(|n| n - OVERLAP);
    let keep = |t: i64| {
        t >= since.as_second()
            && match until {
                None => true,
                Some(u) => t <= u.as_second() + 1 || top.is_some_and(|o| t >= o.as_second()),
            }
    };
    let mut ids = HashSet::new();
    let mut seen: Vec<(String, i64)> = fetched
        .iter()
        .map(|(id, t)| (id.clone(), t.as_second()))
        .chain(state.seen.iter().cloned())
        .filter(|(id, t)| keep(*t) && ids.insert(id.clone()))
        .collect();
    if seen.len() > MAX_SEEN {
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        seen.truncate(MAX_SEEN);
    }
    EdgePosition {
        since,
        until,
        newest,
        seen,
    }
}

// ---------------------------------------------------------------------------------------
// Listener
// ---------------------------------------------------------------------------------------

/// Listens to one Facebook Page: posts the Page is tagged in (`GET /{page}/tagged`) and
/// comments on the Page's [`WATCHED_POSTS`] newest posts of the last [`COMMENT_WINDOW`]
/// (`GET /{page}/posts`, then `GET /{post}/comments?order=reverse_chronological`).
///
/// Source fields: `account` = the Page id, `credentials` = a Page access token
/// (`pages_read_engagement`, `pages_read_user_engagement`; the tagged edge also needs Page
/// Public Content Access or a role on the Page), `base_url` = another Graph host
/// ([`DEFAULT_BASE_URL`] when unset), `query` = an optional campaign query applied locally
/// (these edges are not searches). A query with `lang:` is not prefiltered (the language is
/// only known downstream).
///
/// `max_pages` bounds the pages read per edge (tagged, and each watched post's comments);
/// the posts listing is one request per poll. A first poll reads one page per edge.
/// `caught_up` is false when the page cap, or usage at [`EXHAUSTED_AT_PERCENT`], stopped a
/// read; the position then resumes where it stopped.
#[derive(Clone)]
pub struct FacebookListener {
    http: HttpClient,
    token: Option<Secret>,
}

impl std::fmt::Debug for FacebookListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookListener")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Shared state of one listen call: where to send requests and the rate limit so far.
struct Graph<'a> {
    http: &'a HttpClient,
    base: Url,
    token: &'a Secret,
    now: Timestamp,
    rate_limit: Option<RateLimit>,
}

impl Graph<'_> {
    fn endpoint(&self, segments: &[&str]) -> Result<Url, PlatformError> {
        graph_url(&self.base, segments)
    }

    /// Whether the last usage headers said to stop before Facebook throttles.
    fn spent(&self) -> bool {
        self.rate_limit.is_some_and(|r| r.exhausted())
    }

    async fn get(
        &mut self,
        url: &Url,
        params: &[(String, String)],
    ) -> Result<GraphPage<GraphItem>, PlatformError> {
        let request = self
            .http
            .client()
            .get(url.clone())
            .query(params)
            .header(AUTHORIZATION, bearer(self.token)?);
        // Reads are idempotent: any transport failure may be retried.
        let answer = exchange(PLATFORM, request, true).await?;
        if let Some(rl) = usage_rate_limit(&answer.headers, self.now) {
            // Keep the most constraining report of the call.
            self.rate_limit = Some(match self.rate_limit {
                Some(prev) if prev.remaining < rl.remaining => prev,
                _ => rl,
            });
        }
        if !(200..300).contains(&answer.status) {
            return Err(classify(
                answer.status,
                &answer.headers,
                &answer.body,
                self.now,
            ));
        }
        parse_page(&answer.body)
    }

    /// Reads an edge newest first from `state` (or, with `one_page`, just its first page).
    async fn read_edge(
        &mut self,
        url: &Url,
        base_params: &[(&str, &str)],
        state: &EdgePosition,
        one_page: bool,
        max_pages: usize,
    ) -> Result<EdgeRead, PlatformError> {
        let base: Vec<(String, String)> = base_params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut params = base.clone();
        if let Some(until) = state.until {
            // `until` may be inclusive or not [inf]: ask one second above, `seen` drops repeats.
            params.push(("until".into(), (until.as_second() + 1).to_string()));
        }
        let seen: HashSet<&str> = state.seen.iter().map(|(id, _)| id.as_str()).collect();
        let mut returned = HashSet::new();
        let mut items = Vec::new();
        let mut fetched = Vec::new();
        let mut pages = 0;
        let complete = loop {
            if pages >= max_pages.max(1) || (pages > 0 && self.spent()) {
                break false;
            }
            let page = self.get(url, &params).await?;
            pages += 1;
            let mut reached_since = false;
            for item in page.data {
                if item.created_time < state.since {
                    reached_since = true;
                    continue;
                }
                fetched.push((item.id.clone(), item.created_time));
                if !seen.contains(item.id.as_str()) && returned.insert(item.id.clone()) {
                    items.push(item);
                }
            }
            if reached_since || one_page {
                break true;
            }
            match page.paging.unwrap_or_default().next_params()? {
                None => break true,
                Some(paging) => {
                    params = base.clone();
                    params.extend(paging);
                }
            }
        };
        Ok(EdgeRead {
            items,
            next: next_edge_position(state, &fetched, complete, self.now),
            complete,
        })
    }
}

impl FacebookListener {
    /// `token`: the source's resolved `credentials` (a Page access token); `None` fails
    /// every poll with `AuthExpired`.
    pub fn new(http: HttpClient, token: Option<Secret>) -> Self {
        FacebookListener { http, token }
    }
}

#[async_trait::async_trait]
impl Listener for FacebookListener {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        let page_id = source
            .account
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| config_error(source, "has no `account` (the Facebook Page id)"))?;
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| PlatformError::AuthExpired {
                platform: PLATFORM,
                message: format!(
                    "source `{}` has no `credentials` (a Page access token)",
                    source.id
                ),
            })?;
        let filter = prefilter(source)?;
        let base = source.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let base = self.http.checked_url(PLATFORM, base).await?;
        let mut graph = Graph {
            http: &self.http,
            base,
            token,
            now: limits.now,
            rate_limit: None,
        };
        let stored = FacebookPosition::read(cursor);
        let first_poll = stored.is_none();
        let stored = stored.unwrap_or_default();
        let limit = PAGE_LIMIT.to_string();
        let mut found: Vec<GraphItem> = Vec::new();
        let mut complete = true;
        let mut next = FacebookPosition::default();

        // 1. Posts the Page is tagged in.
        let tagged_url = graph.endpoint(&[page_id, "tagged"])?;
        let tagged_state = stored.tagged.clone().unwrap_or_else(|| EdgePosition {
            since: Timestamp::MIN,
            until: None,
            newest: None,
            seen: Vec::new(),
        });
        let read = graph
            .read_edge(
                &tagged_url,
                &[("fields", TAGGED_FIELDS), ("limit", &limit)],
                &tagged_state,
                first_poll,
                limits.max_pages,
            )
            .await?;
        complete &= read.complete;
        found.extend(read.items);
        next.tagged = Some(read.next);

        // 2. Comments on the Page's recent posts.
        let posts_url = graph.endpoint(&[page_id, "posts"])?;
        let watched_limit = WATCHED_POSTS.to_string();
        let posts = if graph.spent() {
            None
        } else {
            Some(
                graph
                    .get(
                        &posts_url,
                        &[
                            ("fields".into(), POST_FIELDS.into()),
                            ("limit".into(), watched_limit),
                        ],
                    )
                    .await?,
            )
        };
        match posts {
            // Usage is spent: keep watching what was watched, read nothing more now.
            None => {
                complete = false;
                next.posts = stored.posts.clone();
            }
            Some(posts) => {
                let mut recent: Vec<&GraphItem> = posts
                    .data
                    .iter()
                    .filter(|p| p.created_time >= limits.now - COMMENT_WINDOW)
                    .collect();
                recent.sort_by(|a, b| (b.created_time, &b.id).cmp(&(a.created_time, &a.id)));
                recent.truncate(WATCHED_POSTS);
                for post in recent {
                    let known = stored.posts.get(&post.id);
                    // A post first seen after the source started: all its comments are new.
                    let state = known.map(|w| w.comments.clone()).unwrap_or(EdgePosition {
                        since: if first_poll {
                            Timestamp::MIN
                        } else {
                            post.created_time - SignedDuration::from_secs(1)
                        },
                        until: None,
                        newest: None,
                        seen: Vec::new(),
                    });
                    if graph.spent() {
                        complete = false;
                        next.posts.insert(
                            post.id.clone(),
                            WatchedPost {
                                created: post.created_time,
                                comments: state,
                            },
                        );
                        continue;
                    }
                    let url = graph.endpoint(&[post.id.as_str(), "comments"])?;
                    // `filter=stream` includes replies; `order` makes the edge newest first
                    // (platform-apis.md §6.2).
                    let read = graph
                        .read_edge(
                            &url,
                            &[
                                ("fields", COMMENT_FIELDS),
                                ("filter", "stream"),
                                ("order", "reverse_chronological"),
                                ("limit", &limit),
                            ],
                            &state,
                            first_poll && known.is_none(),
                            limits.max_pages,
                        )
                        .await?;
                    complete &= read.complete;
                    found.extend(read.items);
                    next.posts.insert(
                        post.id.clone(),
                        WatchedPost {
                            created: post.created_time,
                            comments: read.next,
                        },
                    );
                }
            }
        }

        let mut ids = HashSet::new();
        let mut mentions: Vec<Mention> = found
            .iter()
            .filter(|item| ids.insert(item.id.clone()))
            .map(|item| item.to_mention(source))
            .filter(|m| filter.as_ref().is_none_or(|q| keeps(q, m)))
            .collect();
        mentions.sort_by(|a, b| (a.created_at, &a.native_id).cmp(&(b.created_at, &b.native_id)));

        let mut cursor = cursor.clone();
        cursor.position =
            Some(
                serde_json::to_string(&next).map_err(|e| PlatformError::Malformed {
                    platform: PLATFORM,
                    detail: format!("cannot encode the cursor: {e}"),
                })?,
            );
        Ok(Listened {
            mentions,
            cursor,
            caught_up: complete,
            rate_limit: graph.rate_limit,
        })
    }
}

/// The source's query as a local prefilter: `None` without a query or when the query uses
/// `lang:` (unknown here). An invalid query is a configuration error.
fn prefilter(source: &Source) -> Result<Option<Query>, PlatformError> {
    let Some(text) = source.query.as_deref().filter(|q| !q.trim().is_empty()) else {
        return Ok(None);
    };
    let query = Query::parse(text)
        .map_err(|e| config_error(source, &format!("has an invalid query: {e}")))?;
    Ok((!uses_language(query.expr())).then_some(query))
}

fn uses_language(expr: &Expr) -> bool {
    match expr {
        Expr::Lang(_) => true,
        Expr::Not(inner) => uses_language(inner),
        Expr::And(items) | Expr::Or(items) => items.iter().any(uses_language),
        _ => false,
    }
}

fn keeps(query: &Query, mention: &Mention) -> bool {
    query.matches(&MatchInput {
        text: &mention.text,
        author: Some(mention.author.handle.as_str()).filter(|h| !h.is_empty()),
        lang: None,
    })
}

// ---------------------------------------------------------------------------------------
// Publisher
// ---------------------------------------------------------------------------------------

/// Publishes to one Facebook Page's feed (`POST /{page-id}/feed` with `message` and `link`,
/// <https://developers.facebook.com/docs/pages-api/posts>).
///
/// Channel fields: `account` = the Page id, `token` = a Page access token
/// (`pages_manage_posts`), `base_url` = another Graph host ([`DEFAULT_BASE_URL`] when unset).
pub struct FacebookPublisher {
    http: HttpClient,
    base_url: String,
    page_id: String,
    token: Secret,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FacebookPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookPublisher")
            .field("base_url", &self.base_url)
            .field("page_id", &self.page_id)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl FacebookPublisher {
    pub fn new(http: HttpClient, page_id: impl Into<String>, page_token: Secret) -> Self {
        FacebookPublisher {
            http,
            base_url: DEFAULT_BASE_URL.to_owned(),
            page_id: page_id.into(),
            token: page_token,
            clock: Arc::new(SystemClock),
        }
    }

    /// Another Graph host (a fake in tests).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn endpoint(&self, edge: &str) -> Result<Url, PlatformError> {
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        graph_url(&base, &[self.page_id.as_str(), edge])
    }
}

#[derive(Deserialize)]
struct CreatedPost {
    id: String,
}

/// Reads a `POST /{page}/feed` answer: the post on success, a classified error otherwise.
/// 506 (duplicate) is `Ambiguous`: the same text is already on the Page, possibly from an
/// earlier attempt of this very delivery, so it must be reconciled, not retried. Never
/// panics (property-tested).
pub fn interpret_create(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Published, PlatformError> {
    if (200..300).contains(&status) {
        let created: CreatedPost =
            serde_json::from_slice(body).map_err(|e| malformed("created post", &e))?;
        if created.id.trim().is_empty() {
            return Err(PlatformError::Malformed {
                platform: PLATFORM,
                detail: "created post has an empty id".into(),
            });
        }
        return Ok(Published {
            url: Some(web_url(&created.id)),
            platform_id: created.id,
        });
    }
    if let Some(error) = parse_error(body)
        && error.code == Some(DUPLICATE_POST_CODE)
    {
        return Err(PlatformError::Ambiguous {
            platform: PLATFORM,
            reason: format!(
                "Facebook refused a duplicate post; an earlier attempt may have created it: {}",
                describe_error(&error)
            ),
        });
    }
    Err(classify(status, headers, body, now))
}

#[async_trait::async_trait]
impl Publisher for FacebookPublisher {
    /// Creates a post. Facebook has no idempotency key: a timeout or a broken connection
    /// after the request was sent is `Ambiguous` (settle it with
    /// [`find_published`](Publisher::find_published)); a refused connection is `Retryable`.
    async fn publish(
        &self,
        post: &OutgoingPost,
        _idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        rules::check_text(PLATFORM, &post.text, post.link.as_deref(), None).map_err(|e| {
            PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: e.to_string(),
            }
        })?;
        let url = self.endpoint("feed").await?;
        let mut form: Vec<(&str, &str)> = Vec::new();
        if !post.text.is_empty() {
            form.push(("message", &post.text));
        }
        if let Some(link) = post
            .link
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            form.push(("link", link));
        }
        let request = self
            .http
            .client()
            .post(url)
            .header(AUTHORIZATION, bearer(&self.token)?)
            .form(&form);
        let Answer {
            status,
            headers,
            body,
        } = exchange(PLATFORM, request, false).await?;
        let published = interpret_create(status, &headers, &body, self.clock.now())?;
        tracing::info!(platform = %PLATFORM, id = %published.platform_id, "post created");
        Ok(published)
    }

    /// Reads the Page's posts created since `since` (`GET /{page}/posts?since=…`, newest
    /// first) for one whose `message` is exactly the text `publish` sends.
    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        let url = self.endpoint("posts").await?;
        let base: Vec<(String, String)> = vec![
            ("fields".into(), LOOKUP_FIELDS.into()),
            ("since".into(), since.as_second().to_string()),
            ("limit".into(), LOOKUP_PAGE_LIMIT.to_string()),
        ];
        let mut params = base.clone();
        for _ in 0..MAX_LOOKUP_PAGES {
            let request = self
                .http
                .client()
                .get(url.clone())
                .query(&params)
                .header(AUTHORIZATION, bearer(&self.token)?);
            let answer = exchange(PLATFORM, request, true).await?;
            if !(200..300).contains(&answer.status) {
                return Err(classify(
                    answer.status,
                    &answer.headers,
                    &answer.body,
                    self.clock.now(),
                ));
            }
            let page = parse_page(&answer.body)?;
            let mut older = false;
            for item in &page.data {
                if item.created_time < since {
                    older = true;
                    continue;
                }
                if item.message.as_deref() == Some(post.text.as_str()) {
                    return Ok(Lookup::Found(Published {
                        platform_id: item.id.clone(),
                        url: Some(web_url(&item.id)),
                    }));
                }
            }
            if older {
                return Ok(Lookup::NotFound);
            }
            match page.paging.unwrap_or_default().next_params()? {
                None => return Ok(Lookup::NotFound),
                Some(paging) => {
                    params = base.clone();
                    params.extend(paging);
                }
            }
        }
        Err(PlatformError::Ambiguous {
            platform: PLATFORM,
            reason: format!(
                "read {MAX_LOOKUP_PAGES} pages of the Page's posts without reaching {since}; \
                 cannot tell whether the post was created"
            ),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn malformed(what: &str, err: &serde_json::Error) -> PlatformError {
    http::malformed_json(PLATFORM, what, err)
}

fn config_error(source: &Source, problem: &str) -> PlatformError {
    PlatformError::Permanent {
        platform: PLATFORM,
        status: None,
        message: format!("source `{}` {problem}", source.id),
    }
}

/// `Authorization: Bearer …` ([`http::bearer`]).
fn bearer(token: &Secret) -> Result<HeaderValue, PlatformError> {
    http::bearer(PLATFORM, token)
}

/// `base` + `/{GRAPH_VERSION}/` + `segments` (each escaped as one path segment).
fn graph_url(base: &Url, segments: &[&str]) -> Result<Url, PlatformError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| PlatformError::Url {
            platform: PLATFORM,
            source: http::UrlError::Invalid {
                reason: "the base URL cannot have a path".into(),
            },
        })?
        .pop_if_empty()
        .push(GRAPH_VERSION)
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-10T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn given_graph_times_when_parsed_then_offsets_without_colon_are_accepted() {
        let t: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        assert_eq!(parse_graph_time("2026-01-10T12:00:00+0000"), Some(t));
        assert_eq!(parse_graph_time("2026-01-10T13:00:00+0100"), Some(t));
        assert_eq!(parse_graph_time("2026-01-10T12:00:00Z"), Some(t));
        assert_eq!(parse_graph_time("yesterday"), None);
        assert_eq!(parse_graph_time("+0000"), None);
    }

    #[test]
    fn given_a_complete_read_when_advancing_then_since_overlaps_the_newest() {
        let state = EdgePosition {
            since: Timestamp::MIN,
            until: None,
            newest: None,
            seen: vec![],
        };
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let fetched = vec![
            ("b".to_owned(), t("2026-01-10T11:59:00Z")),
            ("a".to_owned(), t("2026-01-10T11:00:00Z")),
        ];
        let next = next_edge_position(&state, &fetched, true, now());
        assert_eq!(next.since, t("2026-01-10T11:49:00Z"));
        assert_eq!(next.until, None);
        assert_eq!(
            next.seen,
            vec![("b".to_owned(), t("2026-01-10T11:59:00Z").as_second())]
        );
    }

    #[test]
    fn given_an_interrupted_read_when_advancing_then_until_is_the_oldest_fetched() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let state = EdgePosition {
            since: t("2026-01-10T08:00:00Z"),
            until: None,
            newest: None,
            seen: vec![],
        };
        let fetched = vec![
            ("b".to_owned(), t("2026-01-10T11:59:00Z")),
            ("a".to_owned(), t("2026-01-10T11:00:00Z")),
        ];
        let next = next_edge_position(&state, &fetched, false, now());
        assert_eq!(next.since, state.since);
        assert_eq!(next.until, Some(t("2026-01-10T11:00:00Z")));
        assert_eq!(next.newest, Some(t("2026-01-10T11:59:00Z")));
        assert_eq!(next.seen.len(), 2);
    }

    #[test]
    fn given_a_next_link_when_paging_then_only_paging_parameters_are_taken() {
        let paging = Paging {
            cursors: Some(Cursors {
                after: Some("QVFIUlpZ".into()),
                before: None,
            }),
            next: Some(
                "https://evil.example/v25.0/1/tagged?access_token=SECRET&limit=25&after=QVFIUlpZ"
                    .into(),
            ),
        };
        assert_eq!(
            paging.next_params().unwrap(),
            Some(vec![("after".to_owned(), "QVFIUlpZ".to_owned())])
        );
        let time_based = Paging {
            cursors: None,
            next: Some("https://graph.facebook.com/v25.0/1/feed?limit=25&until=1364587774".into()),
        };
        assert_eq!(
            time_based.next_params().unwrap(),
            Some(vec![("until".to_owned(), "1364587774".to_owned())])
        );
        assert_eq!(Paging::default().next_params().unwrap(), None);
        let broken = Paging {
            cursors: None,
            next: Some("not a url".into()),
        };
        assert!(matches!(
            broken.next_params(),
            Err(PlatformError::Malformed { .. })
        ));
    }
}
