//! Reddit: listening through search (`GET /search`, `GET /r/{sr}/search`) with an app-only
//! OAuth token, and publishing self and link posts (`POST /api/submit`) with a user token.
//!
//! Quirks handled here (`platform-apis.md` §4):
//! - Every request carries a descriptive `User-Agent` in Reddit's format
//!   `<platform>:<app id>:<version> (by /u/<user>)`; generic ones get throttled
//!   (<https://github.com/reddit-archive/reddit/wiki/API#rules>).
//! - App-only tokens come from `POST https://www.reddit.com/api/v1/access_token`
//!   (`grant_type=client_credentials`, HTTP Basic `client_id:client_secret`); API calls go to
//!   `https://oauth.reddit.com`. Lifetimes vary (1 h, 24 h): we use `expires_in`, never a
//!   hard-coded value (<https://github.com/reddit-archive/reddit/wiki/OAuth2>).
//! - `X-Ratelimit-Reset` is **seconds until the window ends**, not an instant.
//! - `POST /api/submit` answers **HTTP 200 with the errors in the body**
//!   (`{"json":{"errors":[["RATELIMIT","… try again in 5 minutes.","ratelimit"]]}}`, r2
//!   `POST_submit`); the per-user `RATELIMIT` throttle is retryable after the wait it names.
//! - `raw_json=1` on every listing, or titles come HTML-escaped (`&amp;`).
//! - Link search returns posts (`t3`) only; comments are not searchable (§4.2).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use url::Url;

use super::http::{self, Answer, HttpClient};
use super::{
    ListenLimits, Listened, Listener, Lookup, OutgoingPost, PlatformError, Published, Publisher,
    RateLimit, ratelimit,
};
use crate::clock::Clock;
use crate::domain::{Author, Cursor, Engagement, Mention, Platform, Secret, Source};
use crate::query::Query;
use crate::rules;

const PLATFORM: Platform = Platform::Reddit;

/// Where API calls go (OAuth host).
pub const DEFAULT_API_BASE: &str = "https://oauth.reddit.com";
/// Where app-only tokens are issued.
pub const DEFAULT_AUTH_BASE: &str = "https://www.reddit.com";
/// Web URLs (permalinks are relative to it).
pub const WEB_BASE: &str = "https://www.reddit.com";
/// The token endpoint's path under [`DEFAULT_AUTH_BASE`].
const TOKEN_PATH: [&str; 3] = ["api", "v1", "access_token"];

/// The User-Agent sent unless one is configured: Reddit's documented format. Operators
/// should set their own (their app id and Reddit user name) with `with_user_agent`.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "server:io.github.hark-listening:v",
    env!("CARGO_PKG_VERSION"),
    " (by /u/hark-listening)"
);

/// Posts per search page: the API maximum.
pub const PAGE_LIMIT: usize = 100;
/// The longest `q` Reddit search accepts (r2 `GET_search`: `VLength('q', max_length=512)`).
pub const MAX_QUERY_CHARS: usize = 512;
/// The longest title (r2 `POST_submit`: `VTitle`, 300 characters).
pub const MAX_TITLE_CHARS: usize = 300;
/// A token is renewed this long before Reddit says it expires.
const TOKEN_MARGIN: SignedDuration = SignedDuration::from_secs(60);
/// When Reddit sends no `expires_in` (it always has so far), assume the historic hour.
const DEFAULT_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_secs(3600);
/// Pages `find_published` reads at most (user listings stop at 1,000 items anyway).
const MAX_LOOKUP_PAGES: usize = 10;
const MAX_ERROR_CHARS: usize = 300;

/// Builds a User-Agent in Reddit's format: `<platform>:<app id>:<version> (by /u/<user>)`.
pub fn user_agent(platform: &str, app_id: &str, version: &str, username: &str) -> String {
    format!("{platform}:{app_id}:{version} (by /u/{username})")
}

// ---------------------------------------------------------------------------------------
// Listening
// ---------------------------------------------------------------------------------------

/// Polls Reddit search for new posts matching a source's query.
///
/// Source fields: `query` (Hark's query language, compiled with [`Query::to_reddit`]; text
/// that is not valid Hark syntax is sent as written), `account` = a subreddit to search in
/// (`rust`, `r/rust`; searched with `restrict_sr`), `credentials` = the secret
/// `client_id:client_secret` of a Reddit app, `base_url` = one host serving both the token
/// endpoint and the API (tests; production uses [`DEFAULT_AUTH_BASE`] and
/// [`DEFAULT_API_BASE`]).
///
/// Paging: `sort=new&limit=100`, newest first, following `after` until a post at or below
/// the cursor's fullname (Reddit ids are base-36 counters, so a deleted anchor still stops
/// the walk). A source never polled takes one page. See [`RedditPosition`] for what happens
/// when the page cap interrupts a walk.
///
/// The app-only token is cached in the listener (behind a mutex) and renewed when it
/// expires, or once when the API answers 401: keep one listener per source across polls.
pub struct RedditListener {
    http: HttpClient,
    credentials: Secret,
    user_agent: String,
    token: Mutex<Option<AppToken>>,
}

impl std::fmt::Debug for RedditListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedditListener")
            .field("credentials", &self.credentials)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

/// A cached app-only access token.
#[derive(Clone)]
struct AppToken {
    value: Secret,
    /// Renew at or after this instant.
    renew_at: Timestamp,
}

/// The hosts one call talks to.
struct Hosts {
    auth: Url,
    api: Url,
}

/// What one search request asks.
struct SearchTarget {
    url: Url,
    query: String,
    restrict_sr: bool,
}

impl RedditListener {
    /// `credentials`: the secret `client_id:client_secret` of a Reddit app (script or web
    /// app with the `read` scope).
    pub fn new(http: HttpClient, credentials: Secret) -> Self {
        RedditListener {
            http,
            credentials,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            token: Mutex::new(None),
        }
    }

    /// A User-Agent of your own (see [`user_agent`]).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    async fn hosts(&self, source: &Source) -> Result<Hosts, PlatformError> {
        // One `base_url` serves both the token endpoint and the API (tests, proxies).
        let (auth, api) = match source.base_url.as_deref() {
            Some(base) => (base, base),
            None => (DEFAULT_AUTH_BASE, DEFAULT_API_BASE),
        };
        Ok(Hosts {
            auth: self.http.checked_url(PLATFORM, auth).await?,
            api: self.http.checked_url(PLATFORM, api).await?,
        })
    }

    /// The cached token, or a new one from the token endpoint.
    async fn app_token(&self, auth: &Url, now: Timestamp) -> Result<Secret, PlatformError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && now < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token(auth, now).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops the cached token if it is still `refused` (another poll may have renewed it).
    async fn forget_token(&self, refused: &Secret) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == refused) {
            *cached = None;
        }
    }

    async fn fetch_token(&self, auth: &Url, now: Timestamp) -> Result<AppToken, PlatformError> {
        let Some((client_id, client_secret)) = self.credentials.expose().split_once(':') else {
            return Err(PlatformError::AuthExpired {
                platform: PLATFORM,
                message: "the Reddit credentials must be the secret `client_id:client_secret`"
                    .into(),
            });
        };
        let request = self
            .http
            .client()
            .post(api_url(auth, &TOKEN_PATH)?)
            .header(USER_AGENT, user_agent_header(&self.user_agent)?)
            .basic_auth(client_id, Some(client_secret))
            .form(&[("grant_type", "client_credentials")]);
        // Asking for a token twice is harmless.
        let answer = http::exchange(PLATFORM, request, true).await?;
        let status = status_of(&answer);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(PlatformError::AuthExpired {
                platform: PLATFORM,
                message: format!(
                    "the token endpoint refused the app credentials: {}",
                    error_message(status, &answer.body)
                ),
            });
        }
        if !status.is_success() {
            return Err(classify(&answer, now));
        }
        parse_token(&answer.body, now)
    }

    /// One search page. A 401 renews the token once and asks again.
    async fn search_page(
        &self,
        hosts: &Hosts,
        target: &SearchTarget,
        after: Option<&str>,
        now: Timestamp,
    ) -> Result<(ListingPage, Option<RateLimit>), PlatformError> {
        let mut renewed = false;
        loop {
            let token = self.app_token(&hosts.auth, now).await?;
            let limit = PAGE_LIMIT.to_string();
            let mut query: Vec<(&str, &str)> = vec![
                ("q", &target.query),
                ("sort", "new"),
                ("type", "link"),
                ("limit", &limit),
                ("raw_json", "1"),
            ];
            if target.restrict_sr {
                query.push(("restrict_sr", "true"));
            }
            if let Some(after) = after {
                query.push(("after", after));
            }
            let request = self
                .http
                .client()
                .get(target.url.clone())
                .query(&query)
                .header(USER_AGENT, user_agent_header(&self.user_agent)?)
                .header(AUTHORIZATION, bearer(&token)?);
            // Searching is idempotent: any transport failure may be retried.
            let answer = http::exchange(PLATFORM, request, true).await?;
            let status = status_of(&answer);
            if status == StatusCode::UNAUTHORIZED && !renewed {
                tracing::info!(platform = %PLATFORM, "app token refused; renewing it once");
                self.forget_token(&token).await;
                renewed = true;
                continue;
            }
            if !status.is_success() {
                return Err(classify(&answer, now));
            }
            return Ok((
                parse_listing(&answer.body)?,
                rate_limit_of(&answer.headers, now),
            ));
        }
    }

    /// Walks search pages newest first from `after` until a post at or below `floor`, the
    /// end of the listing, `budget` pages, or a spent rate-limit budget.
    #[allow(clippy::too_many_arguments)]
    async fn walk(
        &self,
        hosts: &Hosts,
        target: &SearchTarget,
        mut after: Option<String>,
        floor: Option<&str>,
        budget: usize,
        one_page: bool,
        now: Timestamp,
    ) -> Result<Walk, PlatformError> {
        let mut walk = Walk::default();
        loop {
            if walk.pages >= budget || walk.rate_limit.is_some_and(|r| r.exhausted()) {
                return Ok(walk);
            }
            let (page, rate_limit) = self
                .search_page(hosts, target, after.as_deref(), now)
                .await?;
            walk.pages += 1;
            walk.rate_limit = rate_limit.or(walk.rate_limit);
            let empty = page.posts.is_empty();
            for post in page.posts {
                if floor.is_some_and(|f| at_or_before(&post.name, f)) {
                    walk.reached = true;
                    return Ok(walk);
                }
                walk.posts.push(post);
            }
            walk.last_after = page
                .after
                .clone()
                .or_else(|| walk.posts.last().map(|p| p.name.clone()))
                .or(walk.last_after);
            match page.after {
                Some(next) if !one_page && !empty => after = Some(next),
                _ => {
                    walk.reached = true;
                    return Ok(walk);
                }
            }
        }
    }
}

/// The result of one [`RedditListener::walk`].
#[derive(Default)]
struct Walk {
    /// Newest first.
    posts: Vec<RedditPost>,
    /// The walk met its floor or the end of the listing (nothing left to read).
    reached: bool,
    pages: usize,
    /// Where the next page would start (`after`).
    last_after: Option<String>,
    rate_limit: Option<RateLimit>,
}

/// What the cursor position holds for a Reddit source.
///
/// Normally just the newest fullname queued (`t3_1hz9abc`). When the page cap interrupts
/// a walk before it reaches the previous newest post, the newest posts are queued and the
/// rest becomes a *gap*: the position is then JSON,
/// `{"newest":"t3_new","gap":{"after":"t3_oldest_fetched","floor":"t3_previous_newest"}}`,
/// and the next poll first pages on from `after` down to `floor`, then looks for newer
/// posts. Search pages are newest first, so this is the only way not to lose the middle.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RedditPosition {
    pub newest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
}

/// A stretch of search results not read yet (see [`RedditPosition`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Continue paging with this `after`.
    pub after: String,
    /// Stop at this fullname (or anything older).
    pub floor: String,
}

impl RedditPosition {
    /// Reads a stored position: a fullname, or the JSON form while a gap is open. An
    /// unreadable JSON position restarts like a first poll (one page), logged.
    pub fn read(raw: Option<&str>) -> Self {
        match raw.map(str::trim).filter(|r| !r.is_empty()) {
            None => RedditPosition::default(),
            Some(raw) if raw.starts_with('{') => serde_json::from_str(raw).unwrap_or_else(|e| {
                tracing::warn!(platform = %PLATFORM, error = %e, "unreadable reddit cursor position; starting over with one page");
                RedditPosition::default()
            }),
            Some(fullname) => RedditPosition {
                newest: Some(fullname.to_owned()),
                gap: None,
            },
        }
    }

    /// The stored form (see [`RedditPosition`]); `None` when nothing was ever seen.
    pub fn write(&self) -> Option<String> {
        match (&self.newest, &self.gap) {
            (None, None) => None,
            (Some(newest), None) => Some(newest.clone()),
            _ => serde_json::to_string(self).ok(),
        }
    }
}

#[async_trait::async_trait]
impl Listener for RedditListener {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        let now = limits.now;
        let query = search_query(source)?;
        let hosts = self.hosts(source).await?;
        let target = match source.account.as_deref() {
            Some(account) => SearchTarget {
                url: api_url(
                    &hosts.api,
                    &["r", &subreddit_name(source, account)?, "search"],
                )?,
                query,
                restrict_sr: true,
            },
            None => SearchTarget {
                url: api_url(&hosts.api, &["search"])?,
                query,
                restrict_sr: false,
            },
        };
        let state = RedditPosition::read(cursor.position.as_deref());
        let budget = limits.max_pages.max(1);
        let mut next = state.clone();
        let mut posts: Vec<RedditPost> = Vec::new();
        let mut pages = 0;
        let mut rate_limit = None;
        let mut caught_up = true;

        // 1. Finish the stretch an earlier poll could not read.
        if let Some(gap) = &state.gap {
            let walk = self
                .walk(
                    &hosts,
                    &target,
                    Some(gap.after.clone()),
                    Some(&gap.floor),
                    budget,
                    false,
                    now,
                )
                .await?;
            pages += walk.pages;
            rate_limit = walk.rate_limit.or(rate_limit);
            posts.extend(walk.posts);
            if walk.reached {
                next.gap = None;
            } else {
                next.gap = Some(Gap {
                    after: walk.last_after.unwrap_or_else(|| gap.after.clone()),
                    floor: gap.floor.clone(),
                });
                caught_up = false;
            }
        }
        // 2. What is new since the newest post queued.
        if next.gap.is_none() {
            if pages >= budget {
                caught_up = false;
            } else {
                let first_poll = state.newest.is_none();
                let walk = self
                    .walk(
                        &hosts,
                        &target,
                        None,
                        state.newest.as_deref(),
                        budget - pages,
                        first_poll,
                        now,
                    )
                    .await?;
                rate_limit = walk.rate_limit.or(rate_limit);
                if let Some(top) = walk.posts.first() {
                    next.newest = Some(top.name.clone());
                }
                if !walk.reached
                    && let (Some(after), Some(floor)) = (walk.last_after, state.newest.clone())
                {
                    next.gap = Some(Gap { after, floor });
                    caught_up = false;
                }
                posts.extend(walk.posts);
            }
        }

        let mut returned = HashSet::new();
        posts.retain(|p| returned.insert(p.name.clone()));
        // Queue oldest first.
        posts.sort_by(|a, b| {
            a.created_utc
                .partial_cmp(&b.created_utc)
                .unwrap_or(Ordering::Equal)
                .then_with(|| compare_fullnames(&a.name, &b.name))
        });
        let mentions = posts.iter().map(|p| p.to_mention(source)).collect();
        let mut cursor = cursor.clone();
        cursor.position = next.write();
        Ok(Listened {
            mentions,
            cursor,
            caught_up,
            rate_limit,
        })
    }
}

/// The `q` for a source: Hark syntax compiled with [`Query::to_reddit`], anything else as
/// written; at most [`MAX_QUERY_CHARS`].
fn search_query(source: &Source) -> Result<String, PlatformError> {
    let raw = source
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| config_error(&source.id, "needs a query"))?;
    let q = match Query::parse(raw) {
        Ok(parsed) => parsed.to_reddit(),
        Err(_) => raw.to_owned(),
    };
    let chars = q.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(config_error(
            &source.id,
            &format!(
                "has a query that compiles to {chars} characters of Reddit search; Reddit accepts {MAX_QUERY_CHARS}"
            ),
        ));
    }
    Ok(q)
}

/// `rust`, `r/rust` or `/r/rust/` → `rust`; Reddit names are letters, digits and `_`.
fn subreddit_name(source: &Source, account: &str) -> Result<String, PlatformError> {
    let name = account
        .trim()
        .trim_matches('/')
        .trim_start_matches("r/")
        .to_owned();
    if name.is_empty()
        || name.len() > 21
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(config_error(
            &source.id,
            &format!("names `{account}` as its subreddit, which is not a subreddit name"),
        ));
    }
    Ok(name)
}

/// Whether fullname `name` is `floor` or older. Ids of one kind are base-36 counters
/// (`0-9a-z`), so (length, text) orders them; different kinds never compare as older.
fn at_or_before(name: &str, floor: &str) -> bool {
    if name == floor {
        return true;
    }
    match (name.split_once('_'), floor.split_once('_')) {
        (Some((kind, id)), Some((floor_kind, floor_id))) if kind == floor_kind => {
            compare_ids(id, floor_id) != Ordering::Greater
        }
        _ => false,
    }
}

/// Orders base-36 ids: shorter is older, equal lengths compare as (lower-cased) text.
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()))
}

fn compare_fullnames(a: &str, b: &str) -> Ordering {
    let id = |s: &str| s.split_once('_').map_or(s, |(_, id)| id).to_owned();
    compare_ids(&id(a), &id(b))
}

/// One page of a listing: the posts (`t3`) in page order and the `after` anchor.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingPage {
    pub posts: Vec<RedditPost>,
    pub after: Option<String>,
}

#[derive(Deserialize)]
struct Listing {
    data: ListingData,
}

#[derive(Deserialize)]
struct ListingData {
    #[serde(default)]
    after: Option<String>,
    children: Vec<Thing>,
}

#[derive(Deserialize)]
struct Thing {
    kind: String,
    data: serde_json::Value,
}

/// A post (`t3`) as listings return it: only the fields Hark reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RedditPost {
    pub id: String,
    /// The fullname, `t3_<id>`.
    pub name: String,
    pub title: String,
    /// Markdown body of a self post; empty for link posts.
    #[serde(default)]
    pub selftext: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub subreddit: Option<String>,
    /// Seconds since the epoch (a float).
    pub created_utc: f64,
    /// Relative to <https://www.reddit.com>.
    pub permalink: String,
    /// The link of a link post (the post's own URL for a self post).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub score: Option<i64>,
    #[serde(default)]
    pub num_comments: Option<i64>,
    #[serde(default)]
    pub is_self: Option<bool>,
}

impl RedditPost {
    fn created_at(&self) -> Timestamp {
        timestamp(self.created_utc).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The web URL of the post.
    pub fn web_url(&self) -> String {
        format!("{WEB_BASE}{}", self.permalink)
    }

    /// The mention this post stands for. Reddit reports no follower counts.
    pub fn to_mention(&self, source: &Source) -> Mention {
        let body = self.selftext.as_deref().unwrap_or_default().trim();
        let text = if body.is_empty() {
            self.title.trim().to_owned()
        } else {
            format!("{}\n\n{body}", self.title.trim())
        };
        let author = self
            .author
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "[deleted]".to_owned());
        let author_url = (author != "[deleted]").then(|| format!("{WEB_BASE}/user/{author}"));
        Mention {
            platform: PLATFORM,
            native_id: self.name.clone(),
            url: self.web_url(),
            author: Author {
                handle: author,
                display_name: None,
                followers: None,
                url: author_url,
            },
            text,
            created_at: self.created_at(),
            lang: None,
            sentiment: None,
            engagement: Engagement {
                likes: self.score.map_or(0, |s| u64::try_from(s).unwrap_or(0)),
                reposts: 0,
                replies: self
                    .num_comments
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            },
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        }
    }
}

fn timestamp(seconds: f64) -> Option<Timestamp> {
    if !seconds.is_finite() {
        return None;
    }
    Timestamp::from_millisecond((seconds * 1000.0).round() as i64).ok()
}

/// Parses a listing (`{"kind":"Listing","data":{"after","children":[…]}}`). Children that
/// are not posts are skipped; a post without its fullname, title, permalink or a possible
/// `created_utc` makes the whole page `Malformed`, and nothing from it is used.
pub fn parse_listing(body: &[u8]) -> Result<ListingPage, PlatformError> {
    let listing: Listing =
        serde_json::from_slice(body).map_err(|e| malformed("search listing", &e))?;
    let mut posts = Vec::with_capacity(listing.data.children.len());
    for child in listing.data.children {
        if child.kind != "t3" {
            continue;
        }
        let post: RedditPost =
            serde_json::from_value(child.data).map_err(|e| malformed("listing post", &e))?;
        if !post.name.starts_with("t3_")
            || post.name.len() < 4
            || timestamp(post.created_utc).is_none()
        {
            return Err(PlatformError::Malformed {
                platform: PLATFORM,
                detail: format!(
                    "listing post `{}` has no fullname or an impossible created_utc",
                    http::clip(&post.name, 40)
                ),
            });
        }
        posts.push(post);
    }
    Ok(ListingPage {
        posts,
        after: listing.data.after.filter(|a| !a.is_empty()),
    })
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<f64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Reads a token response. The token endpoint may answer **200 with
/// `{"error":"unsupported_grant_type"}`** instead of a token (OAuth2 wiki): that is a
/// refusal, not a token.
fn parse_token(body: &[u8], now: Timestamp) -> Result<AppToken, PlatformError> {
    let token: TokenBody = serde_json::from_slice(body).map_err(|e| malformed("token", &e))?;
    match (token.access_token.filter(|t| !t.is_empty()), token.error) {
        (Some(value), _) => {
            let lifetime = token
                .expires_in
                .filter(|s| s.is_finite() && *s > 0.0)
                .map_or(DEFAULT_TOKEN_LIFETIME, SignedDuration::from_secs_f64);
            Ok(AppToken {
                value: Secret::new(value),
                renew_at: now + (lifetime - TOKEN_MARGIN).max(SignedDuration::ZERO),
            })
        }
        (None, Some(error)) => Err(PlatformError::AuthExpired {
            platform: PLATFORM,
            message: format!(
                "the token endpoint refused the app credentials: {}",
                http::clip(&error.to_string().replace('"', ""), MAX_ERROR_CHARS)
            ),
        }),
        (None, None) => Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: "token response has no access_token".into(),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------

/// Submits posts to one subreddit as one Reddit account.
///
/// Channel fields: `account` = the subreddit (`rust`, `r/rust`), `token` = a user OAuth
/// bearer token of the posting account with the `submit`, `read` and `identity` scopes
/// (`identity` for `GET /api/v1/me`, `read` for `find_published`), `base_url` = the API host
/// ([`DEFAULT_API_BASE`] when unset). Reddit user tokens expire (1 h or 24 h): Hark does not
/// refresh them, a refused token is `AuthExpired` and an operator renews it.
///
/// What is sent ([`submission`]): the first line of the text is the title, the rest the
/// body of a self post; with a link and no body, a link post.
pub struct RedditPublisher {
    http: HttpClient,
    base_url: String,
    subreddit: String,
    token: Secret,
    user_agent: String,
    clock: Arc<dyn Clock>,
    /// The account's user name, from `GET /api/v1/me`, once asked.
    username: Mutex<Option<String>>,
}

impl std::fmt::Debug for RedditPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedditPublisher")
            .field("base_url", &self.base_url)
            .field("subreddit", &self.subreddit)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The kind of a Reddit post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmissionKind {
    /// A text post; `body` may be empty.
    SelfPost { body: String },
    /// A link post.
    Link { url: String },
}

/// What `POST /api/submit` is asked to create for a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub title: String,
    pub kind: SubmissionKind,
}

/// The submission for `post`: the first line (trimmed) is the title; when it is longer
/// than [`MAX_TITLE_CHARS`], its first sentence is, if that fits. The rest of the text is
/// the body, so the title and body together are the whole text, nothing repeated. A link
/// makes a link post when there is no body; with a body (link posts have none) it ends the
/// body of a self post instead, so nothing is dropped.
pub fn submission(post: &OutgoingPost) -> Result<Submission, PlatformError> {
    let text = post.text.trim();
    let link = post
        .link
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let (first_line, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first_line = first_line.trim();
    let (title, mut body) = if first_line.chars().count() <= MAX_TITLE_CHARS {
        (first_line.to_owned(), rest.trim().to_owned())
    } else {
        match first_sentence(first_line) {
            Some(end) => {
                let rest_of_line = first_line[end..].trim();
                let body = [rest_of_line, rest.trim()]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                (first_line[..end].trim().to_owned(), body)
            }
            None => {
                return Err(PlatformError::Permanent {
                    platform: PLATFORM,
                    status: None,
                    message: format!(
                        "Reddit titles are at most {MAX_TITLE_CHARS} characters; the first line of this text has {} and no sentence of it fits",
                        first_line.chars().count()
                    ),
                });
            }
        }
    };
    let (title, kind) = match link {
        Some(link) if body.is_empty() => {
            let title = if title.is_empty() {
                link.to_owned()
            } else {
                title
            };
            (
                title,
                SubmissionKind::Link {
                    url: link.to_owned(),
                },
            )
        }
        Some(link) => {
            if !text.contains(link) {
                body = format!("{body}\n\n{link}");
            }
            (title, SubmissionKind::SelfPost { body })
        }
        None => (title, SubmissionKind::SelfPost { body }),
    };
    if title.is_empty() {
        return Err(PlatformError::Permanent {
            platform: PLATFORM,
            status: None,
            message: "Reddit posts need a title: the text's first line is empty".into(),
        });
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(PlatformError::Permanent {
            platform: PLATFORM,
            status: None,
            message: format!(
                "Reddit titles are at most {MAX_TITLE_CHARS} characters; this one has {}",
                title.chars().count()
            ),
        });
    }
    Ok(Submission { title, kind })
}

/// The byte end of the first sentence of `line` that fits in a title (after `.`, `!`, `?`
/// or `…` followed by a space), if any.
fn first_sentence(line: &str) -> Option<usize> {
    let mut chars = 0;
    let mut iter = line.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        chars += 1;
        if chars > MAX_TITLE_CHARS {
            return None;
        }
        let ends = matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？');
        if ends && iter.peek().is_none_or(|(_, next)| next.is_whitespace()) {
            return Some(i + c.len_utf8());
        }
    }
    None
}

impl RedditPublisher {
    /// `subreddit`: the channel's `account`; `token`: a user bearer token (see the type's
    /// docs); `clock`: turns rate-limit resets into waits.
    pub fn new(
        http: HttpClient,
        subreddit: impl Into<String>,
        token: Secret,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let subreddit: String = subreddit.into();
        RedditPublisher {
            http,
            base_url: DEFAULT_API_BASE.to_owned(),
            subreddit: subreddit
                .trim()
                .trim_matches('/')
                .trim_start_matches("r/")
                .to_owned(),
            token,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            clock,
            username: Mutex::new(None),
        }
    }

    /// Another API host (tests, proxies).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// A User-Agent of your own (see [`user_agent`]).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    fn authorised(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, PlatformError> {
        Ok(request
            .header(USER_AGENT, user_agent_header(&self.user_agent)?)
            .header(AUTHORIZATION, bearer(&self.token)?))
    }

    async fn read(&self, url: Url) -> Result<Answer, PlatformError> {
        let request = self.authorised(self.http.client().get(url))?;
        let answer = http::exchange(PLATFORM, request, true).await?;
        if !(200..300).contains(&answer.status) {
            return Err(classify(&answer, self.clock.now()));
        }
        Ok(answer)
    }

    /// The posting account's name (`GET /api/v1/me`), asked once.
    async fn username(&self, base: &Url) -> Result<String, PlatformError> {
        let mut cached = self.username.lock().await;
        if let Some(name) = cached.as_ref() {
            return Ok(name.clone());
        }
        #[derive(Deserialize)]
        struct Me {
            name: String,
        }
        let answer = self.read(api_url(base, &["api", "v1", "me"])?).await?;
        let me: Me = serde_json::from_slice(&answer.body).map_err(|e| malformed("me", &e))?;
        if me.name.is_empty() {
            return Err(PlatformError::Malformed {
                platform: PLATFORM,
                detail: "`/api/v1/me` has an empty name".into(),
            });
        }
        *cached = Some(me.name.clone());
        Ok(me.name)
    }
}

#[async_trait::async_trait]
impl Publisher for RedditPublisher {
    /// Submits the post. Reddit has no idempotency guard: once the request may have
    /// reached Reddit (a timeout or a reset after sending, an unreadable 200), the outcome
    /// is `Ambiguous` and [`Publisher::find_published`] settles it.
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
        let submission = submission(post)?;
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        let mut form: Vec<(&str, &str)> = vec![
            ("api_type", "json"),
            ("sr", &self.subreddit),
            ("title", &submission.title),
            ("sendreplies", "true"),
        ];
        match &submission.kind {
            SubmissionKind::SelfPost { body } => {
                form.push(("kind", "self"));
                form.push(("text", body));
            }
            SubmissionKind::Link { url } => {
                form.push(("kind", "link"));
                form.push(("url", url));
                // A link submitted before is refused with ALREADY_SUB unless resubmitting.
                form.push(("resubmit", "true"));
            }
        }
        let request = self.authorised(
            self.http
                .client()
                .post(api_url(&base, &["api", "submit"])?)
                .form(&form),
        )?;
        // No idempotency guard: a failure after sending is ambiguous.
        let answer = http::exchange(PLATFORM, request, false).await?;
        interpret_submit(
            answer.status,
            &answer.headers,
            &answer.body,
            self.clock.now(),
        )
    }

    /// Reads `GET /user/{me}/submitted?sort=new` (the account's own posts, newest first),
    /// paging until a post older than `since`, and finds one in this subreddit whose title
    /// and body (or link) are exactly what [`submission`] makes of `post`.
    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        let wanted = submission(post)?;
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        let username = self.username(&base).await?;
        let mut after: Option<String> = None;
        for _ in 0..MAX_LOOKUP_PAGES {
            let mut url = api_url(&base, &["user", &username, "submitted"])?;
            {
                let mut pairs = url.query_pairs_mut();
                pairs
                    .append_pair("sort", "new")
                    .append_pair("limit", &PAGE_LIMIT.to_string())
                    .append_pair("raw_json", "1");
                if let Some(after) = &after {
                    pairs.append_pair("after", after);
                }
            }
            let answer = self.read(url).await?;
            let page = parse_listing(&answer.body)?;
            for candidate in &page.posts {
                if candidate.created_at() < since {
                    return Ok(Lookup::NotFound);
                }
                if self.is_same(candidate, &wanted) {
                    return Ok(Lookup::Found(Published {
                        platform_id: candidate.name.clone(),
                        url: Some(candidate.web_url()),
                    }));
                }
            }
            match page.after {
                Some(next) if !page.posts.is_empty() => after = Some(next),
                _ => return Ok(Lookup::NotFound),
            }
        }
        tracing::warn!(platform = %PLATFORM, "more posts since the attempt than find_published reads; cannot tell");
        Ok(Lookup::Unsupported)
    }
}

impl RedditPublisher {
    fn is_same(&self, candidate: &RedditPost, wanted: &Submission) -> bool {
        let same_subreddit = candidate
            .subreddit
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&self.subreddit));
        same_subreddit
            && candidate.title.trim() == wanted.title
            && match &wanted.kind {
                SubmissionKind::SelfPost { body } => {
                    candidate.is_self != Some(false)
                        && candidate.selftext.as_deref().unwrap_or_default().trim() == body.trim()
                }
                SubmissionKind::Link { url } => {
                    candidate.is_self != Some(true)
                        && candidate.url.as_deref().map(str::trim) == Some(url.as_str())
                }
            }
    }
}

#[derive(Deserialize)]
struct SubmitBody {
    json: SubmitJson,
}

#[derive(Deserialize)]
struct SubmitJson {
    #[serde(default)]
    errors: Vec<Vec<serde_json::Value>>,
    /// Seconds until the per-user throttle lets the account post again.
    #[serde(default)]
    ratelimit: Option<f64>,
    #[serde(default)]
    data: Option<SubmitData>,
}

#[derive(Deserialize)]
struct SubmitData {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// Interprets the answer to `POST /api/submit` (exposed for property tests).
///
/// Reddit answers **200 with errors in the body** (r2 `POST_submit`): `RATELIMIT` is
/// retryable after the wait it names (the `ratelimit` seconds field, else the words "try
/// again in 5 minutes"), every other error is permanent with Reddit's words. A 2xx that
/// cannot be read is `Ambiguous`: the post may exist.
pub fn interpret_submit(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Published, PlatformError> {
    if !(200..300).contains(&status) {
        return Err(classify(
            &Answer {
                status,
                headers: headers.clone(),
                body: body.to_vec(),
            },
            now,
        ));
    }
    let Ok(parsed) = serde_json::from_slice::<SubmitBody>(body) else {
        return Err(PlatformError::Ambiguous {
            platform: PLATFORM,
            reason: format!("HTTP {status} with an unreadable submit response; the post may exist"),
        });
    };
    let json = parsed.json;
    if !json.errors.is_empty() {
        let errors: Vec<(String, String, String)> = json
            .errors
            .iter()
            .map(|e| {
                let part = |i: usize| {
                    e.get(i)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                (part(0), part(1), part(2))
            })
            .collect();
        let words = errors
            .iter()
            .map(|(code, message, field)| {
                let mut w = format!("{code}: {message}");
                if !field.is_empty() {
                    w.push_str(&format!(" ({field})"));
                }
                w
            })
            .collect::<Vec<_>>()
            .join("; ");
        let words = http::clip(&words, MAX_ERROR_CHARS);
        if let Some((_, message, _)) = errors.iter().find(|(code, _, _)| code == "RATELIMIT") {
            let after = json
                .ratelimit
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(SignedDuration::from_secs_f64)
                .or_else(|| parse_try_again(message));
            return Err(PlatformError::Retryable {
                platform: PLATFORM,
                after,
                reason: words,
            });
        }
        return Err(PlatformError::Permanent {
            platform: PLATFORM,
            status: Some(status),
            message: words,
        });
    }
    match json.data {
        Some(SubmitData {
            name: Some(name),
            url,
            ..
        }) if !name.is_empty() => Ok(Published {
            platform_id: name,
            url,
        }),
        Some(SubmitData {
            id: Some(id), url, ..
        }) if !id.is_empty() => Ok(Published {
            platform_id: format!("t3_{id}"),
            url,
        }),
        _ => Err(PlatformError::Ambiguous {
            platform: PLATFORM,
            reason: "the submit response names no post; the post may exist".into(),
        }),
    }
}

/// The wait in Reddit's throttle message, e.g. "you are doing that too much. try again in
/// 5 minutes." (also seconds, milliseconds, hours).
pub fn parse_try_again(message: &str) -> Option<SignedDuration> {
    let lower = message.to_ascii_lowercase();
    let rest = &lower[lower.find("try again in ")? + "try again in ".len()..];
    let mut words = rest.split_whitespace();
    let amount: f64 = words.next()?.parse().ok()?;
    if !amount.is_finite() || !(0.0..=1e7).contains(&amount) {
        return None;
    }
    let unit = words.next()?.trim_end_matches(['.', ',', '!']);
    let seconds = match unit {
        "millisecond" | "milliseconds" => amount / 1000.0,
        "second" | "seconds" => amount,
        "minute" | "minutes" => amount * 60.0,
        "hour" | "hours" => amount * 3600.0,
        _ => return None,
    };
    Some(SignedDuration::from_secs_f64(seconds))
}

// ---------------------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------------------

fn status_of(answer: &Answer) -> StatusCode {
    StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn rate_limit_of(headers: &HeaderMap, now: Timestamp) -> Option<RateLimit> {
    let rl = ratelimit::reddit(headers, now);
    (rl != RateLimit::default()).then_some(rl)
}

/// Reddit's error bodies: `{"message": "Unauthorized", "error": 401}`, or
/// `{"error": "invalid_grant"}` from the token endpoint, or an HTML page.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        error: Option<serde_json::Value>,
        #[serde(default)]
        reason: Option<String>,
    }
    if let Ok(err) = serde_json::from_slice::<ApiError>(body) {
        let error = err.error.and_then(|e| match e {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(_) => None,
            other => Some(other.to_string()),
        });
        let words: Vec<String> = [err.message, err.reason, error]
            .into_iter()
            .flatten()
            .filter(|w| !w.trim().is_empty())
            .collect();
        if !words.is_empty() {
            return http::clip(&words.join(": "), MAX_ERROR_CHARS);
        }
    }
    let text = crate::text::html_to_text(&String::from_utf8_lossy(body));
    if text.is_empty() {
        format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        )
        .trim_end()
        .to_owned()
    } else {
        http::clip(&text, MAX_ERROR_CHARS)
    }
}

/// Classifies an error answer; a 429 waits for `X-Ratelimit-Reset` (seconds from now),
/// else `Retry-After`.
fn classify(answer: &Answer, now: Timestamp) -> PlatformError {
    let status = status_of(answer);
    let mut err = http::classify_status(
        PLATFORM,
        status,
        &answer.headers,
        error_message(status, &answer.body),
        now,
    );
    if let PlatformError::Retryable { after, .. } = &mut err
        && status == StatusCode::TOO_MANY_REQUESTS
    {
        *after = ratelimit::reddit(&answer.headers, now)
            .wait_from(now)
            .or(*after);
    }
    err
}

fn malformed(what: &str, err: &serde_json::Error) -> PlatformError {
    http::malformed_json(PLATFORM, what, err)
}

fn config_error(source_id: &str, problem: &str) -> PlatformError {
    PlatformError::Permanent {
        platform: PLATFORM,
        status: None,
        message: format!("source `{source_id}` {problem}"),
    }
}

fn user_agent_header(user_agent: &str) -> Result<HeaderValue, PlatformError> {
    HeaderValue::from_str(user_agent).map_err(|_| PlatformError::Permanent {
        platform: PLATFORM,
        status: None,
        message: "the configured User-Agent is not a valid HTTP header value".into(),
    })
}

/// `Authorization: Bearer …` ([`http::bearer`]).
fn bearer(token: &Secret) -> Result<HeaderValue, PlatformError> {
    http::bearer(PLATFORM, token)
}

fn api_url(base: &Url, segments: &[&str]) -> Result<Url, PlatformError> {
    http::api_url(PLATFORM, base, segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(text: &str, link: Option<&str>) -> OutgoingPost {
        OutgoingPost {
            text: text.into(),
            link: link.map(Into::into),
        }
    }

    #[test]
    fn given_texts_when_making_submissions_then_the_first_line_is_the_title_and_nothing_repeats() {
        assert_eq!(
            submission(&post("Hark 1.0 is out!\n\nWe rewrote the poller.", None)).unwrap(),
            Submission {
                title: "Hark 1.0 is out!".into(),
                kind: SubmissionKind::SelfPost {
                    body: "We rewrote the poller.".into()
                },
            }
        );
        assert_eq!(
            submission(&post("Hark 1.0 is out!", Some("https://e.com/x"))).unwrap(),
            Submission {
                title: "Hark 1.0 is out!".into(),
                kind: SubmissionKind::Link {
                    url: "https://e.com/x".into()
                },
            }
        );
        assert_eq!(
            submission(&post("Title\nBody", Some("https://e.com/x"))).unwrap(),
            Submission {
                title: "Title".into(),
                kind: SubmissionKind::SelfPost {
                    body: "Body\n\nhttps://e.com/x".into()
                },
            }
        );
        let long = format!("{} Second sentence here.", "Short first one.");
        let long = format!("{long} {}", "x".repeat(300));
        let s = submission(&post(&long, None)).unwrap();
        assert_eq!(s.title, "Short first one.");
        assert!(
            matches!(s.kind, SubmissionKind::SelfPost { body } if body.starts_with("Second sentence"))
        );
        let err = submission(&post(&"y".repeat(301), None)).unwrap_err();
        assert!(err.to_string().contains("at most 300"), "{err}");
    }

    #[test]
    fn given_throttle_messages_then_the_wait_is_read() {
        assert_eq!(
            parse_try_again("you are doing that too much. try again in 5 minutes."),
            Some(SignedDuration::from_secs(300))
        );
        assert_eq!(
            parse_try_again("Try again in 30 seconds."),
            Some(SignedDuration::from_secs(30))
        );
        assert_eq!(
            parse_try_again("try again in 1 minute"),
            Some(SignedDuration::from_secs(60))
        );
        assert_eq!(parse_try_again("slow down"), None);
        assert_eq!(parse_try_again("try again in lots of minutes"), None);
    }

    #[test]
    fn given_fullnames_then_older_or_equal_ids_are_at_or_before() {
        assert!(at_or_before("t3_abc", "t3_abc"));
        assert!(at_or_before("t3_abb", "t3_abc"));
        assert!(at_or_before("t3_zz", "t3_abc"));
        assert!(!at_or_before("t3_abd", "t3_abc"));
        assert!(!at_or_before("t3_1000", "t3_zzz"));
        assert!(!at_or_before("t1_aaa", "t3_zzz"), "kinds never compare");
    }

    #[test]
    fn given_positions_then_they_round_trip_and_stay_plain_without_a_gap() {
        let plain = RedditPosition::read(Some("t3_1hz9abc"));
        assert_eq!(plain.newest.as_deref(), Some("t3_1hz9abc"));
        assert_eq!(plain.write().as_deref(), Some("t3_1hz9abc"));
        let gap = RedditPosition {
            newest: Some("t3_b".into()),
            gap: Some(Gap {
                after: "t3_a5".into(),
                floor: "t3_a".into(),
            }),
        };
        assert_eq!(RedditPosition::read(gap.write().as_deref()), gap);
        assert_eq!(RedditPosition::read(None), RedditPosition::default());
        assert_eq!(
            RedditPosition::read(Some("{broken")),
            RedditPosition::default()
        );
        assert_eq!(RedditPosition::default().write(), None);
    }

    #[test]
    fn given_a_token_body_then_expiry_is_read_and_errors_refused() {
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let t = parse_token(
            br#"{"access_token":"abc","token_type":"bearer","expires_in":86400,"scope":"*"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.renew_at, now + SignedDuration::from_secs(86400 - 60));
        let e = parse_token(br#"{"error":"unsupported_grant_type"}"#, now)
            .err()
            .unwrap();
        assert!(matches!(e, PlatformError::AuthExpired { .. }), "{e}");
        assert!(e.to_string().contains("unsupported_grant_type"), "{e}");
    }
}
