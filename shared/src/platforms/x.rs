//! X (Twitter) API v2: listening with recent search, publishing posts with an OAuth 2.0
//! user token (refreshed before it expires).
//!
//! Listening uses `GET /2/tweets/search/recent` with an app bearer token and the official
//! polling recipe (`since_id` + `next_token`, the first page's `meta.newest_id` becomes the
//! cursor): <https://docs.x.com/x-api/posts/search/integrate/paginate>. Publishing uses
//! `POST /2/tweets` (201 Created): <https://docs.x.com/x-api/posts/creation-of-a-post>.
//! X has no idempotency key, so every failure after the request went out is `Ambiguous`
//! and [`Publisher::find_published`] reads the account's timeline
//! (`GET /2/users/:id/tweets`) to settle it.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::http::{self, Answer, HttpClient};
use super::{
    ListenLimits, Listened, Listener, Lookup, OutgoingPost, PlatformError, Published, Publisher,
    RateLimit, ratelimit,
};
use crate::clock::Clock;
use crate::domain::{Author, Cursor, Engagement, Mention, Platform, Secret, Source};
use crate::rules;

const PLATFORM: Platform = Platform::X;

/// Where the API lives when a source or channel names no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.x.com";

/// The versioned path prefix of every API call (`/2/...`).
pub const API_VERSION: &str = "2";

/// Posts per search page: the API maximum (10–100, default 10).
pub const MAX_RESULTS: u32 = 100;

/// The name of the post field-list parameter. The 2026 OpenAPI renames `tweet.fields` to
/// `post.fields`, but the quickstart and the live API take `tweet.fields`, and X answers an
/// unknown parameter with 400, so only this one is sent (platform-apis.md §5.1, §13).
pub const POST_FIELDS_PARAM: &str = "tweet.fields";

/// Post fields a search asks for (`note_tweet` holds the full text of long posts,
/// `entities.urls` the real URLs behind `t.co` links).
const SEARCH_POST_FIELDS: &str = "author_id,created_at,entities,lang,note_tweet,public_metrics";

/// Post fields the own-timeline lookup asks for.
const TIMELINE_POST_FIELDS: &str = "created_at,entities,note_tweet";

/// User fields of the expanded authors (`includes.users`).
const USER_FIELDS: &str = "name,public_metrics,username";

/// How far back recent search reaches (platform-apis.md §5.1: "last 7 days").
pub const SEARCH_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Kept between "now − 7 days" and the oldest instant asked for, so that the request is
/// still inside the window when X reads it.
const WINDOW_MARGIN: SignedDuration = SignedDuration::from_secs(60);

/// An access token is refreshed when it expires within this margin.
pub const REFRESH_MARGIN: SignedDuration = SignedDuration::from_secs(5 * 60);

/// Lifetime assumed when a token response has no `expires_in` (X's access tokens last
/// 2 hours, platform-apis.md §5.2).
const DEFAULT_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(2);

/// Timeline pages `find_published` reads at most (100 posts each).
pub const MAX_LOOKUP_PAGES: usize = 32;

/// X's Snowflake epoch (2010-11-04T01:42:54.657Z), in unix milliseconds.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

/// Longest platform error text kept in an error.
const MAX_ERROR_CHARS: usize = 300;

// ---------------------------------------------------------------------------------------
// Listening
// ---------------------------------------------------------------------------------------

/// Polls `GET /2/tweets/search/recent` for posts matching the source's query.
///
/// - `source.credentials`: an app bearer token (or a user token with `tweet.read`).
/// - `source.query`: Hark's campaign query, compiled with [`crate::query::Query::to_x`]; a
///   query that is not valid Hark syntax is sent as written (X's own operators). Reposts
///   are excluded (`-is:retweet`) unless the query names `is:retweet` itself: a repost is
///   the same words again, and every post read is billed.
/// - `source.base_url`: defaults to [`DEFAULT_BASE_URL`].
///
/// Cursor: see [`XPosition`]. Each poll asks for `since_id=<position>` and follows
/// `next_token` with the same `since_id`; once every page down to `since_id` was read the
/// position becomes the first page's `meta.newest_id` (the documented recipe). When the
/// page cap stops it first, the position records the unread rest of the window instead
/// (a [`XPosition::Backlog`]) and the next poll reads that rest before moving on: nothing is
/// skipped, and a burst bigger than one call's pages still drains. A source never polled
/// takes one page (no backfill).
#[derive(Debug, Clone)]
pub struct XListener {
    http: HttpClient,
    bearer: Option<Secret>,
}

/// What one `search/recent` request asks for.
struct SearchRequest<'a> {
    query: &'a str,
    since_id: Option<&'a str>,
    start_time: Option<Timestamp>,
    until_id: Option<&'a str>,
    next_token: Option<&'a str>,
}

impl XListener {
    /// `bearer`: the source's resolved `credentials`; `None` fails every poll with
    /// `AuthExpired` (recent search needs a token).
    pub fn new(http: HttpClient, bearer: Option<Secret>) -> Self {
        XListener { http, bearer }
    }

    async fn fetch_page(
        &self,
        endpoint: &Url,
        bearer: &Secret,
        ask: &SearchRequest<'_>,
        now: Timestamp,
    ) -> Result<(PostPage, Option<RateLimit>), PlatformError> {
        let mut query: Vec<(&str, String)> = vec![
            ("query", ask.query.to_owned()),
            ("max_results", MAX_RESULTS.to_string()),
            ("sort_order", "recency".to_owned()),
            (POST_FIELDS_PARAM, SEARCH_POST_FIELDS.to_owned()),
            ("expansions", "author_id".to_owned()),
            ("user.fields", USER_FIELDS.to_owned()),
        ];
        // `start_time` and `since_id` are exclusive, as are `next_token` and
        // `pagination_token` (platform-apis.md §5.1).
        if let Some(since_id) = ask.since_id {
            query.push(("since_id", since_id.to_owned()));
        } else if let Some(start) = ask.start_time {
            query.push(("start_time", rfc3339_seconds(start)));
        }
        if let Some(until_id) = ask.until_id {
            query.push(("until_id", until_id.to_owned()));
        }
        if let Some(token) = ask.next_token {
            query.push(("next_token", token.to_owned()));
        }
        let request = self
            .http
            .client()
            .get(endpoint.clone())
            .query(&query)
            .header(AUTHORIZATION, bearer_header(bearer)?);
        // Searching is idempotent: any transport failure may be retried.
        let answer = http::exchange(PLATFORM, request, true).await?;
        let rate_limit = rate_limit_of(&answer.headers);
        if !is_success(answer.status) {
            return Err(classify(&answer, now));
        }
        let page = parse_post_page(&answer.body)?;
        page.fail_on_errors_only()?;
        page.log_partial_errors("search");
        Ok((page, rate_limit))
    }
}

#[async_trait::async_trait]
impl Listener for XListener {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        let bearer = self
            .bearer
            .as_ref()
            .ok_or_else(|| PlatformError::AuthExpired {
                platform: PLATFORM,
                message: format!(
                    "source `{}` has no `credentials` (an X app bearer token)",
                    source.id
                ),
            })?;
        let raw_query = source
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or_else(|| config_error(source, "needs a query"))?;
        let query = search_query(raw_query);
        let base = source.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let base = self.http.checked_url(PLATFORM, base).await?;
        let endpoint = api_url(&base, &[API_VERSION, "tweets", "search", "recent"])?;
        let horizon = limits
            .now
            .checked_sub(SEARCH_WINDOW - WINDOW_MARGIN)
            .unwrap_or(limits.now);

        let position = match read_position(cursor) {
            // The unread rest of a backlog has left the 7-day window: nothing of it can be
            // searched any more, so the backlog is finished.
            Some(XPosition::Backlog {
                until_id,
                newest_id,
                ..
            }) if older_than(&until_id, horizon) => Some(XPosition::After(newest_id)),
            other => other,
        };
        let first_poll = position.is_none();
        let (since, until, pending_newest) = match &position {
            None => (None, None, None),
            Some(XPosition::After(id)) => (Some(id.as_str()), None, None),
            Some(XPosition::Backlog {
                since_id,
                until_id,
                newest_id,
            }) => (
                Some(since_id.as_str()),
                Some(until_id.as_str()),
                Some(newest_id.as_str()),
            ),
        };
        // X refuses a `since_id` older than the search window [inf: the window is 7 days,
        // platform-apis.md §5.1]; `start_time` at the window's edge asks for the same posts
        // (nothing older can be searched anyway), so a source paused for over a week resumes.
        let (since_param, start_time) = match since {
            Some(id) if older_than(id, horizon) => (None, Some(horizon)),
            other => (other, None),
        };

        let mut returned: HashSet<String> = HashSet::new();
        let mut mentions = Vec::new();
        let mut first_newest: Option<String> = None;
        let mut oldest_read: Option<String> = None;
        let mut next_token: Option<String> = None;
        let mut rate_limit = None;
        let mut pages = 0usize;
        let complete = loop {
            let ask = SearchRequest {
                query: &query,
                since_id: since_param,
                start_time,
                until_id: until,
                next_token: next_token.as_deref(),
            };
            let (page, page_rate_limit) =
                self.fetch_page(&endpoint, bearer, &ask, limits.now).await?;
            pages += 1;
            rate_limit = page_rate_limit.or(rate_limit);
            if pages == 1 {
                // The recipe keeps `newest_id` from the first page only (later pages are
                // older); the highest id on the page guards against a missing meta.
                first_newest = max_id([page.newest_id(), first_newest.as_deref()]);
            }
            let users = page.users_by_id();
            for post in &page.data {
                // Posts at or before the position were returned already (also when
                // `start_time` stood in for `since_id`).
                let newer_than_since =
                    since.is_none_or(|s| compare_ids(&post.id, s) == Ordering::Greater);
                let older_than_until =
                    until.is_none_or(|u| compare_ids(&post.id, u) == Ordering::Less);
                if !(newer_than_since && older_than_until) {
                    continue;
                }
                oldest_read = min_id([Some(post.id.as_str()), oldest_read.as_deref()]);
                if returned.insert(post.id.clone()) {
                    mentions.push(post.to_mention(source, &users));
                }
            }
            match page
                .meta
                .and_then(|m| m.next_token)
                .filter(|t| !t.is_empty())
            {
                None => break true,
                // A first poll takes one page: no backfill of the whole week.
                Some(_) if first_poll => break true,
                Some(_) if pages >= limits.max_pages.max(1) => break false,
                Some(token) => next_token = Some(token),
            }
        };
        mentions.sort_by(|a, b| compare_ids(&a.native_id, &b.native_id));

        let next_position = if complete {
            max_id([pending_newest, first_newest.as_deref(), since]).map(XPosition::After)
        } else {
            match (since, oldest_read) {
                // Everything newer than `until_id` was returned; what lies between
                // `since_id` and it is read by the next poll, then `newest_id` takes over.
                (Some(since_id), Some(until_id)) => Some(XPosition::Backlog {
                    since_id: since_id.to_owned(),
                    newest_id: max_id([pending_newest, first_newest.as_deref()])
                        .unwrap_or_else(|| until_id.clone()),
                    until_id,
                }),
                // Nothing read that bounds the rest: keep the position, lose nothing.
                _ => position.clone(),
            }
        };
        let mut next = cursor.clone();
        next.position = next_position.map(|p| p.encode());
        Ok(Listened {
            mentions,
            cursor: next,
            caught_up: complete,
            rate_limit,
        })
    }
}

/// What a cursor position holds for an X source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XPosition {
    /// Every matching post up to and including this id was returned: the next poll asks
    /// for `since_id=<id>`. Stored as the bare id.
    After(String),
    /// A poll stopped by the page cap: every post newer than `until_id` (up to `newest_id`)
    /// was returned; the posts after `since_id` and before `until_id` are still to be read,
    /// after which the position becomes `After(newest_id)`. Stored as JSON.
    Backlog {
        since_id: String,
        until_id: String,
        newest_id: String,
    },
}

#[derive(Serialize, Deserialize)]
struct BacklogDoc {
    since_id: String,
    until_id: String,
    newest_id: String,
}

impl XPosition {
    /// Reads a stored position: a post id, or a backlog document. `None` when it is neither.
    pub fn parse(raw: &str) -> Option<XPosition> {
        let raw = raw.trim();
        if is_post_id(raw) {
            return Some(XPosition::After(raw.to_owned()));
        }
        let doc: BacklogDoc = serde_json::from_str(raw).ok()?;
        let ids_ok = [&doc.since_id, &doc.until_id, &doc.newest_id]
            .iter()
            .all(|id| is_post_id(id));
        ids_ok.then_some(XPosition::Backlog {
            since_id: doc.since_id,
            until_id: doc.until_id,
            newest_id: doc.newest_id,
        })
    }

    /// The stored form, read back by [`XPosition::parse`].
    pub fn encode(&self) -> String {
        match self {
            XPosition::After(id) => id.clone(),
            XPosition::Backlog {
                since_id,
                until_id,
                newest_id,
            } => serde_json::json!({
                "since_id": since_id,
                "until_id": until_id,
                "newest_id": newest_id,
            })
            .to_string(),
        }
    }
}

/// The stored position, or `None` for a source never polled. An unreadable position
/// (hand-edited, or from an incompatible version) restarts like a first poll rather than
/// blocking the source; repeats are dropped by the processor's dedupe.
fn read_position(cursor: &Cursor) -> Option<XPosition> {
    let raw = cursor.position.as_deref()?;
    let position = XPosition::parse(raw);
    if position.is_none() {
        tracing::warn!(
            platform = %PLATFORM,
            source_id = %cursor.source_id,
            "unreadable x cursor position; restarting with the newest page"
        );
    }
    position
}

/// The `query` sent to recent search for a source query (see [`XListener`]).
pub fn search_query(raw: &str) -> String {
    let compiled = match crate::query::Query::parse(raw) {
        Ok(parsed) => parsed.to_x(),
        Err(_) => raw.trim().to_owned(),
    };
    let lower = compiled.to_ascii_lowercase();
    // The operator itself, not a quoted phrase (the query compiler quotes words it does
    // not know, `"is:retweet"`).
    let names_reposts = lower
        .match_indices("is:retweet")
        .any(|(at, _)| !lower[..at].ends_with('"'));
    if names_reposts {
        compiled
    } else if compiled.contains(" OR ") {
        // Implicit AND binds tighter than OR: the exclusion must cover every alternative.
        format!("({compiled}) -is:retweet")
    } else {
        format!("{compiled} -is:retweet")
    }
}

/// One page of posts: a search page or a user timeline page
/// (`{"data":[Post],"includes":{"users":[User]},"errors":[Problem],"meta":{...}}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PostPage {
    /// Absent when there are no results (`{"meta":{"result_count":0}}`).
    #[serde(default)]
    pub data: Vec<Post>,
    #[serde(default)]
    pub includes: Includes,
    /// Partial errors: a 200 may carry both `data` and `errors` (platform-apis.md §5.3).
    /// Kept as raw problem objects, read leniently.
    #[serde(default)]
    pub errors: Vec<Value>,
    #[serde(default)]
    pub meta: Option<PageMeta>,
}

/// `meta` of a page.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct PageMeta {
    #[serde(default)]
    pub newest_id: Option<String>,
    #[serde(default)]
    pub oldest_id: Option<String>,
    #[serde(default)]
    pub result_count: Option<i64>,
    /// Search pages call it `next_token`; the same value goes back as `next_token` (search)
    /// or `pagination_token` (timelines).
    #[serde(default)]
    pub next_token: Option<String>,
}

/// `includes` of a page: the expanded authors.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Includes {
    #[serde(default)]
    pub users: Vec<User>,
}

/// A post with the fields Hark asks for. The default fields are `id`, `text` and the edit
/// history (`edit_history_tweet_ids`, renamed `edit_history_post_ids` in newer docs: not
/// read, so either spelling parses).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Post {
    /// Decimal string (`^[0-9]{1,19}$`): beyond 2^53, never parsed as a JSON number.
    pub id: String,
    /// HTML-escaped (`&amp;`, `&lt;`, `&gt;`), URLs shortened to `t.co`, long posts cut.
    pub text: String,
    #[serde(default)]
    pub author_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub public_metrics: Option<PostMetrics>,
    #[serde(default)]
    pub entities: Option<Entities>,
    /// The full text of a long post.
    #[serde(default)]
    pub note_tweet: Option<NoteTweet>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct PostMetrics {
    #[serde(default)]
    pub retweet_count: i64,
    #[serde(default)]
    pub reply_count: i64,
    #[serde(default)]
    pub like_count: i64,
    #[serde(default)]
    pub quote_count: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Entities {
    #[serde(default)]
    pub urls: Vec<UrlEntity>,
}

/// A `t.co` link and the URL it stands for.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct UrlEntity {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub expanded_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NoteTweet {
    pub text: String,
    #[serde(default)]
    pub entities: Option<Entities>,
}

/// An expanded author.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub public_metrics: Option<UserMetrics>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct UserMetrics {
    #[serde(default)]
    pub followers_count: Option<i64>,
}

/// Parses a page of posts. Anything that is not the documented shape — not JSON, ids that
/// are not decimal strings, nothing of `data`, `errors` or `meta` — is `Malformed`, and
/// nothing from the page is used.
pub fn parse_post_page(body: &[u8]) -> Result<PostPage, PlatformError> {
    let page: PostPage = serde_json::from_slice(body).map_err(|e| malformed("post page", &e))?;
    let has_something = !page.data.is_empty() || !page.errors.is_empty() || page.meta.is_some();
    if !has_something {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: "post page has no `data`, `errors` or `meta`".into(),
        });
    }
    if let Some(bad) = page.data.iter().find(|p| !is_post_id(&p.id)) {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: format!("post id `{}` is not a decimal id", http::clip(&bad.id, 40)),
        });
    }
    if let Some(meta) = &page.meta {
        for id in [&meta.newest_id, &meta.oldest_id].into_iter().flatten() {
            if !is_post_id(id) {
                return Err(PlatformError::Malformed {
                    platform: PLATFORM,
                    detail: format!("meta id `{}` is not a decimal id", http::clip(id, 40)),
                });
            }
        }
    }
    Ok(page)
}

impl PostPage {
    /// The newest id of the page: `meta.newest_id`, or the highest id in `data`.
    pub fn newest_id(&self) -> Option<&str> {
        let meta = self.meta.as_ref().and_then(|m| m.newest_id.as_deref());
        self.data
            .iter()
            .map(|p| p.id.as_str())
            .chain(meta)
            .max_by(|a, b| compare_ids(a, b))
    }

    fn users_by_id(&self) -> HashMap<&str, &User> {
        self.includes
            .users
            .iter()
            .map(|u| (u.id.as_str(), u))
            .collect()
    }

    /// A 200 with only `errors` (no `data`, no `meta`) is a refusal in the platform's words.
    fn fail_on_errors_only(&self) -> Result<(), PlatformError> {
        if self.data.is_empty() && self.meta.is_none() && !self.errors.is_empty() {
            let words = self
                .errors
                .iter()
                .find_map(problem_words_of)
                .unwrap_or_else(|| "the answer holds only errors".to_owned());
            return Err(PlatformError::Permanent {
                platform: PLATFORM,
                status: Some(200),
                message: words,
            });
        }
        Ok(())
    }

    /// Partial errors (e.g. an author that no longer exists) leave the rest usable: the
    /// mention lacks only what the error was about.
    fn log_partial_errors(&self, what: &str) {
        if let Some(first) = self.errors.first() {
            tracing::warn!(
                platform = %PLATFORM,
                what,
                count = self.errors.len(),
                first = problem_words_of(first).unwrap_or_default(),
                "partial errors in a 200 answer"
            );
        }
    }
}

impl Post {
    /// The full text as people read it: the long-post text when there is one, HTML escapes
    /// decoded, `t.co` links replaced by the URLs they stand for.
    pub fn plain_text(&self) -> String {
        match &self.note_tweet {
            Some(note) => expand_text(
                &note.text,
                note.entities.as_ref().or(self.entities.as_ref()),
            ),
            None => expand_text(&self.text, self.entities.as_ref()),
        }
    }

    /// The instant the post was created: `created_at`, else the time in its Snowflake id.
    pub fn created(&self) -> Option<Timestamp> {
        self.created_at.or_else(|| snowflake_time(&self.id))
    }

    /// The mention this post stands for; `users` are the page's expanded authors.
    pub fn to_mention(&self, source: &Source, users: &HashMap<&str, &User>) -> Mention {
        let user = self
            .author_id
            .as_deref()
            .and_then(|id| users.get(id).copied());
        let author = match user {
            Some(user) => Author {
                handle: user.username.clone(),
                display_name: user.name.clone().filter(|n| !n.trim().is_empty()),
                followers: user
                    .public_metrics
                    .as_ref()
                    .and_then(|m| m.followers_count)
                    .map(non_negative),
                url: Some(format!("https://x.com/{}", user.username)),
            },
            // The author was not expanded (deleted or suspended account: a partial error).
            None => Author {
                handle: self.author_id.clone().unwrap_or_default(),
                ..Author::default()
            },
        };
        let metrics = self.public_metrics.clone().unwrap_or_default();
        Mention {
            platform: PLATFORM,
            native_id: self.id.clone(),
            url: status_url(user.map(|u| u.username.as_str()), &self.id),
            author,
            text: self.plain_text(),
            // Ids are validated decimal strings, so the Snowflake time always exists.
            created_at: self.created().unwrap_or(Timestamp::UNIX_EPOCH),
            lang: None,
            sentiment: None,
            engagement: Engagement {
                likes: non_negative(metrics.like_count),
                reposts: non_negative(metrics.retweet_count),
                replies: non_negative(metrics.reply_count),
            },
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        }
    }

    /// Whether this post's text is exactly `sent`, reading through X's rewrites: HTML
    /// escapes and `t.co` links (each replaced by its `expanded_url`). The raw text counts
    /// too, so a text X did not rewrite matches as it is.
    pub fn has_text(&self, sent: &str) -> bool {
        let mut candidates = vec![self.text.clone(), self.plain_text()];
        candidates.push(expand_text(&self.text, self.entities.as_ref()));
        if let Some(note) = &self.note_tweet {
            candidates.push(note.text.clone());
        }
        candidates.iter().any(|c| c == sent)
    }
}

/// Decodes X's HTML escapes and replaces each `t.co` link named in `entities` by its
/// `expanded_url`. X escapes `&`, `<` and `>` in `text` [obs: long-standing v1.1/v2
/// behaviour, not in platform-apis.md]; other `&...;` sequences are left as written.
pub fn expand_text(text: &str, entities: Option<&Entities>) -> String {
    let mut out = decode_escapes(text);
    for entity in entities.map(|e| e.urls.as_slice()).unwrap_or_default() {
        if let (Some(short), Some(long)) = (entity.url.as_deref(), entity.expanded_url.as_deref())
            && !short.is_empty()
            && !long.is_empty()
        {
            out = out.replace(short, long);
        }
    }
    out
}

fn decode_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (decoded, len) = if tail.starts_with("&amp;") {
            ('&', 5)
        } else if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else {
            ('&', 1)
        };
        out.push(decoded);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The web URL of a post: `https://x.com/<username>/status/<id>`, or the username-less
/// `https://x.com/i/web/status/<id>` (platform-apis.md §5.2).
pub fn status_url(username: Option<&str>, id: &str) -> String {
    match username.filter(|u| !u.is_empty()) {
        Some(username) => format!("https://x.com/{username}/status/{id}"),
        None => format!("https://x.com/i/web/status/{id}"),
    }
}

/// Post ids are decimal strings of 1–19 digits (platform-apis.md §5.1).
pub fn is_post_id(id: &str) -> bool {
    (1..=19).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

/// Orders decimal ids without parsing them: more digits is newer, equal lengths compare as
/// text (leading zeros ignored).
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn max_id<'a>(ids: impl IntoIterator<Item = Option<&'a str>>) -> Option<String> {
    ids.into_iter()
        .flatten()
        .max_by(|a, b| compare_ids(a, b))
        .map(str::to_owned)
}

fn min_id<'a>(ids: impl IntoIterator<Item = Option<&'a str>>) -> Option<String> {
    ids.into_iter()
        .flatten()
        .min_by(|a, b| compare_ids(a, b))
        .map(str::to_owned)
}

/// The creation instant encoded in a Snowflake id (milliseconds since X's epoch in the
/// bits above the low 22).
pub fn snowflake_time(id: &str) -> Option<Timestamp> {
    if !is_post_id(id) {
        return None;
    }
    let n: u64 = id.parse().ok()?;
    let ms = i64::try_from(n >> 22)
        .ok()?
        .checked_add(SNOWFLAKE_EPOCH_MS)?;
    Timestamp::from_millisecond(ms).ok()
}

/// Whether the post `id` was created before `instant` (false when the id says nothing).
fn older_than(id: &str, instant: Timestamp) -> bool {
    snowflake_time(id).is_some_and(|t| t < instant)
}

/// Counts are clamped at zero rather than failing the page.
fn non_negative(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------

/// OAuth 2.0 user-context tokens of one X account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XTokens {
    pub access_token: Secret,
    /// Present when the account was authorised with `offline.access`. Refresh tokens are
    /// widely reported to rotate on use: the new one must be persisted (platform-apis.md §5.2).
    pub refresh_token: Option<Secret>,
    /// When the access token expires (2 hours after it was issued); `None` if unknown.
    pub expires_at: Option<Timestamp>,
}

impl XTokens {
    /// Whether the access token should be refreshed at `now` (it expires within
    /// [`REFRESH_MARGIN`]). Without a known expiry, only a 401 triggers a refresh.
    pub fn needs_refresh(&self, now: Timestamp) -> bool {
        self.expires_at
            .is_some_and(|at| now.checked_add(REFRESH_MARGIN).is_ok_and(|soon| soon >= at))
    }
}

/// A token store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("X token store unavailable: {0}")]
pub struct XTokenStoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where one channel's tokens live between publishes: refreshed tokens are saved at once,
/// because the refresh token they replace may no longer work.
#[async_trait::async_trait]
pub trait XTokenStore: Send + Sync {
    /// The stored tokens; `None` when the account was never authorised.
    async fn load(&self) -> Result<Option<XTokens>, XTokenStoreError>;
    /// Replaces the stored tokens.
    async fn save(&self, tokens: &XTokens) -> Result<(), XTokenStoreError>;
}

/// Tokens kept in memory: for tests, and for a process that lives as long as the tokens.
#[derive(Debug, Default)]
pub struct InMemoryXTokenStore {
    tokens: std::sync::Mutex<Option<XTokens>>,
}

impl InMemoryXTokenStore {
    pub fn new(tokens: XTokens) -> Self {
        InMemoryXTokenStore {
            tokens: std::sync::Mutex::new(Some(tokens)),
        }
    }

    /// The tokens stored now.
    pub fn current(&self) -> Option<XTokens> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl XTokenStore for InMemoryXTokenStore {
    async fn load(&self) -> Result<Option<XTokens>, XTokenStoreError> {
        Ok(self.current())
    }

    async fn save(&self, tokens: &XTokens) -> Result<(), XTokenStoreError> {
        *self.tokens.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokens.clone());
        Ok(())
    }
}

/// Tokens kept in the secret they came from: every refresh writes the whole token set back
/// (SSM parameter or Secrets Manager secret), so a cold start, or another instance, reads
/// the current refresh token instead of one X has already rotated away.
pub struct SecretXTokenStore {
    memory: InMemoryXTokenStore,
    app: XOAuthApp,
    reference: crate::domain::SecretRef,
    writer: Arc<dyn crate::secrets::SecretWriter>,
}

impl SecretXTokenStore {
    pub fn new(
        tokens: XTokens,
        app: XOAuthApp,
        reference: crate::domain::SecretRef,
        writer: Arc<dyn crate::secrets::SecretWriter>,
    ) -> Self {
        SecretXTokenStore {
            memory: InMemoryXTokenStore::new(tokens),
            app,
            reference,
            writer,
        }
    }

    /// The token set as the secret holds it (the same JSON [`XPublisher::from_secret`] reads).
    fn document(&self, tokens: &XTokens) -> Secret {
        let doc = serde_json::json!({
            "access_token": tokens.access_token.expose(),
            "refresh_token": tokens.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            "expires_at": tokens.expires_at,
            "client_id": self.app.client_id,
            "client_secret": self.app.client_secret.as_ref().map(|s| s.expose().to_owned()),
        });
        Secret::new(doc.to_string())
    }
}

impl std::fmt::Debug for SecretXTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretXTokenStore")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl XTokenStore for SecretXTokenStore {
    async fn load(&self) -> Result<Option<XTokens>, XTokenStoreError> {
        self.memory.load().await
    }

    async fn save(&self, tokens: &XTokens) -> Result<(), XTokenStoreError> {
        // Memory first: this process keeps working even if the write fails (the client
        // retries the save on its next call).
        self.memory.save(tokens).await?;
        self.writer
            .write(&self.reference, &self.document(tokens))
            .await
            .map_err(|e| XTokenStoreError(Box::new(e)))
    }
}

/// The OAuth 2.0 app that issued the tokens: `client_id`, and the secret of a confidential
/// client (sent as Basic auth when refreshing, platform-apis.md §5.2).
#[derive(Debug, Clone)]
pub struct XOAuthApp {
    pub client_id: String,
    pub client_secret: Option<Secret>,
}

enum Auth {
    /// A user access token used as-is (never refreshed).
    Static(Secret),
    Refreshing {
        store: Arc<dyn XTokenStore>,
        app: XOAuthApp,
    },
}

/// What the publisher remembers between calls.
#[derive(Default)]
struct Session {
    /// Refreshed tokens the store failed to save: the only copy of a rotated refresh token.
    unsaved: Option<XTokens>,
    /// The authenticated account (`GET /2/users/me`).
    account: Option<Account>,
}

#[derive(Debug, Clone)]
struct Account {
    id: String,
    username: String,
}

/// Publishes posts to one X account with `POST /2/tweets`.
pub struct XPublisher {
    http: HttpClient,
    base_url: String,
    auth: Auth,
    clock: Arc<dyn Clock>,
    session: tokio::sync::Mutex<Session>,
}

impl std::fmt::Debug for XPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            Auth::Static(_) => "static bearer",
            Auth::Refreshing { .. } => "refreshing OAuth 2.0 tokens",
        };
        f.debug_struct("XPublisher")
            .field("base_url", &self.base_url)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

/// A token set as a channel's `token` secret may hold it (JSON).
#[derive(Deserialize)]
struct TokenSetDoc {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_at: Option<Timestamp>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

impl XPublisher {
    /// Posts with `token`, an OAuth 2.0 user access token (scopes `tweet.write users.read
    /// tweet.read`), used as-is: when it expires, publishing fails with `AuthExpired`.
    pub fn new(http: HttpClient, token: Secret, clock: Arc<dyn Clock>) -> Self {
        Self::with_auth(http, Auth::Static(token), clock)
    }

    /// Posts with the tokens in `store`, refreshing the access token through `app` shortly
    /// before it expires (and once after a 401), and saving every refreshed set.
    pub fn with_token_store(
        http: HttpClient,
        store: Arc<dyn XTokenStore>,
        app: XOAuthApp,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_auth(http, Auth::Refreshing { store, app }, clock)
    }

    /// From a channel's `token` secret: a JSON token set
    /// `{"access_token", "refresh_token", "expires_at", "client_id", "client_secret"?}`
    /// refreshes through an [`InMemoryXTokenStore`] (refreshed tokens live as long as this
    /// publisher); any other value is a static access token.
    pub fn from_secret(
        http: HttpClient,
        secret: &Secret,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PlatformError> {
        Self::from_secret_persisted(http, secret, clock, None)
    }

    /// Like [`XPublisher::from_secret`]; with `persist`, refreshed token sets are written
    /// back to the secret they were read from ([`SecretXTokenStore`]).
    pub fn from_secret_persisted(
        http: HttpClient,
        secret: &Secret,
        clock: Arc<dyn Clock>,
        persist: Option<(
            crate::domain::SecretRef,
            Arc<dyn crate::secrets::SecretWriter>,
        )>,
    ) -> Result<Self, PlatformError> {
        let value = secret.expose().trim();
        if !value.starts_with('{') {
            return Ok(Self::new(http, Secret::new(value), clock));
        }
        // The serde error is not kept: it may quote the secret.
        let doc: TokenSetDoc =
            serde_json::from_str(value).map_err(|_| PlatformError::AuthExpired {
                platform: PLATFORM,
                message: "the token secret is JSON but not an X token set \
                          (access_token, refresh_token, expires_at, client_id)"
                    .into(),
            })?;
        let refresh_token = doc.refresh_token.filter(|t| !t.trim().is_empty());
        let tokens = XTokens {
            access_token: Secret::new(doc.access_token),
            refresh_token: refresh_token.map(Secret::new),
            expires_at: doc.expires_at,
        };
        match doc.client_id.filter(|c| !c.trim().is_empty()) {
            Some(client_id) => {
                let app = XOAuthApp {
                    client_id,
                    client_secret: doc.client_secret.map(Secret::new),
                };
                let store: Arc<dyn XTokenStore> = match persist {
                    Some((reference, writer)) => Arc::new(SecretXTokenStore::new(
                        tokens,
                        app.clone(),
                        reference,
                        writer,
                    )),
                    None => Arc::new(InMemoryXTokenStore::new(tokens)),
                };
                Ok(Self::with_token_store(http, store, app, clock))
            }
            None if tokens.refresh_token.is_none() => {
                Ok(Self::new(http, tokens.access_token, clock))
            }
            None => Err(PlatformError::AuthExpired {
                platform: PLATFORM,
                message: "the token set has a refresh_token but no client_id to refresh it with"
                    .into(),
            }),
        }
    }

    fn with_auth(http: HttpClient, auth: Auth, clock: Arc<dyn Clock>) -> Self {
        XPublisher {
            http,
            base_url: DEFAULT_BASE_URL.to_owned(),
            auth,
            clock,
            session: tokio::sync::Mutex::new(Session::default()),
        }
    }

    /// Calls another API host (a fake in tests).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The access token to send; refreshed first when it is about to expire, or when
    /// `force` (X refused it).
    async fn access_token(&self, base: &Url, force: bool) -> Result<Secret, PlatformError> {
        let (store, app) = match &self.auth {
            Auth::Static(token) => return Ok(token.clone()),
            Auth::Refreshing { store, app } => (store, app),
        };
        // Held across the refresh: concurrent publishes of this channel refresh once, not
        // once each (a second refresh with the rotated-away token would be refused).
        let mut session = self.session.lock().await;
        let current = match session.unsaved.clone() {
            Some(unsaved) => {
                if store.save(&unsaved).await.is_ok() {
                    session.unsaved = None;
                }
                unsaved
            }
            None => store
                .load()
                .await
                .map_err(store_unavailable)?
                .ok_or_else(|| PlatformError::AuthExpired {
                    platform: PLATFORM,
                    message: "no X tokens are stored for this channel: authorise the account"
                        .into(),
                })?,
        };
        let now = self.clock.now();
        if !force && !current.needs_refresh(now) {
            return Ok(current.access_token);
        }
        let fresh = match self.refresh(base, app, &current).await {
            Ok(fresh) => fresh,
            Err(refused @ PlatformError::AuthExpired { .. }) => {
                // Another instance may have refreshed first: refresh tokens rotate, so ours
                // is spent while the store holds the new set.
                match store.load().await.ok().flatten() {
                    Some(stored) if stored.refresh_token != current.refresh_token => {
                        if stored.access_token != current.access_token && !stored.needs_refresh(now)
                        {
                            return Ok(stored.access_token);
                        }
                        self.refresh(base, app, &stored).await?
                    }
                    _ => return Err(refused),
                }
            }
            Err(other) => return Err(other),
        };
        match store.save(&fresh).await {
            Ok(()) => session.unsaved = None,
            Err(e) => {
                tracing::error!(
                    platform = %PLATFORM,
                    error = %e,
                    "refreshed X tokens could not be saved; kept in memory and saved again on the next call"
                );
                session.unsaved = Some(fresh.clone());
            }
        }
        Ok(fresh.access_token)
    }

    /// `POST /2/oauth2/token` with `grant_type=refresh_token` (form-encoded). A refusal
    /// (`invalid_grant`, revoked app) is `AuthExpired`: an operator must authorise again.
    async fn refresh(
        &self,
        base: &Url,
        app: &XOAuthApp,
        tokens: &XTokens,
    ) -> Result<XTokens, PlatformError> {
        let refresh_token = tokens
            .refresh_token
            .as_ref()
            .filter(|t| !t.expose().is_empty())
            .ok_or_else(|| PlatformError::AuthExpired {
                platform: PLATFORM,
                message: "the access token expired and there is no refresh token \
                          (authorise with the offline.access scope)"
                    .into(),
            })?;
        let endpoint = api_url(base, &[API_VERSION, "oauth2", "token"])?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", app.client_id.as_str()),
        ];
        let mut request = self.http.client().post(endpoint).form(&form);
        if let Some(secret) = &app.client_secret {
            request = request.basic_auth(&app.client_id, Some(secret.expose()));
        }
        // Nothing is published by a refresh: any transport failure may be retried.
        let answer = http::exchange(PLATFORM, request, true).await?;
        let now = self.clock.now();
        if matches!(answer.status, 400 | 401 | 403) {
            return Err(PlatformError::AuthExpired {
                platform: PLATFORM,
                message: format!(
                    "X refused to refresh the access token: {}",
                    error_words(&answer)
                ),
            });
        }
        if !is_success(answer.status) {
            return Err(classify(&answer, now));
        }
        let refreshed = parse_token_response(&answer.body)?;
        tracing::info!(platform = %PLATFORM, "access token refreshed");
        Ok(XTokens {
            access_token: Secret::new(refreshed.access_token),
            // A response without a new refresh token keeps the old one: never store empty.
            refresh_token: refreshed
                .refresh_token
                .filter(|t| !t.trim().is_empty())
                .map(Secret::new)
                .or_else(|| tokens.refresh_token.clone()),
            expires_at: now
                .checked_add(
                    refreshed
                        .expires_in
                        .filter(|s| *s > 0)
                        .map_or(DEFAULT_TOKEN_LIFETIME, SignedDuration::from_secs),
                )
                .ok(),
        })
    }

    /// Sends a user-context request built by `build` with the current access token. A 401
    /// with refreshable tokens refreshes once and sends again: X refused the token, so the
    /// first request did nothing.
    async fn send_authed(
        &self,
        base: &Url,
        build: impl Fn(HeaderValue) -> reqwest::RequestBuilder,
        idempotent: bool,
    ) -> Result<Answer, PlatformError> {
        let token = self.access_token(base, false).await?;
        let answer = http::exchange(PLATFORM, build(bearer_header(&token)?), idempotent).await?;
        if answer.status == 401 && matches!(self.auth, Auth::Refreshing { .. }) {
            let token = self.access_token(base, true).await?;
            return http::exchange(PLATFORM, build(bearer_header(&token)?), idempotent).await;
        }
        Ok(answer)
    }

    /// The authenticated account, asked once (`GET /2/users/me`).
    async fn account(&self, base: &Url) -> Result<Account, PlatformError> {
        if let Some(account) = self.session.lock().await.account.clone() {
            return Ok(account);
        }
        let endpoint = api_url(base, &[API_VERSION, "users", "me"])?;
        let answer = self
            .send_authed(
                base,
                |auth| {
                    self.http
                        .client()
                        .get(endpoint.clone())
                        .header(AUTHORIZATION, auth)
                },
                true,
            )
            .await?;
        if !is_success(answer.status) {
            return Err(classify(&answer, self.clock.now()));
        }
        #[derive(Deserialize)]
        struct Me {
            data: MeData,
        }
        #[derive(Deserialize)]
        struct MeData {
            id: String,
            username: String,
        }
        let me: Me = serde_json::from_slice(&answer.body).map_err(|e| malformed("users/me", &e))?;
        if !is_post_id(&me.data.id) {
            return Err(PlatformError::Malformed {
                platform: PLATFORM,
                detail: "users/me returned a user id that is not a decimal id".into(),
            });
        }
        let account = Account {
            id: me.data.id,
            username: me.data.username,
        };
        self.session.lock().await.account = Some(account.clone());
        Ok(account)
    }

    async fn known_username(&self) -> Option<String> {
        self.session
            .lock()
            .await
            .account
            .as_ref()
            .map(|a| a.username.clone())
    }
}

/// The text `publish` sends for `post`: [`rules::compose_text`] (the link appended after a
/// space unless the text has it), without leading or trailing whitespace, which X drops
/// [inf] — so the text `find_published` looks for is the text X keeps.
pub fn compose_post(post: &OutgoingPost) -> String {
    rules::compose_text(&post.text, post.link.as_deref())
        .trim()
        .to_owned()
}

#[async_trait::async_trait]
impl Publisher for XPublisher {
    /// Creates a post. X has no idempotency key (`idempotency_key` is only logged): a
    /// timeout or lost connection after sending, a 504, a 201 whose body cannot be read and
    /// the 403 "duplicate content" answer are all `Ambiguous`, to be settled with
    /// [`Publisher::find_published`].
    async fn publish(
        &self,
        post: &OutgoingPost,
        idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        let text = compose_post(post);
        rules::check_text(PLATFORM, &text, None, None).map_err(|e| PlatformError::Permanent {
            platform: PLATFORM,
            status: None,
            message: e.to_string(),
        })?;
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        let endpoint = api_url(&base, &[API_VERSION, "tweets"])?;
        let body = serde_json::json!({ "text": text });
        let answer = self
            .send_authed(
                &base,
                |auth| {
                    self.http
                        .client()
                        .post(endpoint.clone())
                        .header(AUTHORIZATION, auth)
                        .json(&body)
                },
                // No idempotency guard: a failure after sending may have posted.
                false,
            )
            .await?;
        match answer.status {
            // 201 Created (platform-apis.md §5.2); any 2xx means X took the post.
            status if is_success(status) => match parse_created(&answer.body) {
                Ok(id) => {
                    tracing::info!(platform = %PLATFORM, idempotency_key, id, "post created");
                    let username = self.known_username().await;
                    Ok(Published {
                        url: Some(status_url(username.as_deref(), &id)),
                        platform_id: id,
                    })
                }
                // The post exists but its id is unknown: reconcile, never retry blindly.
                Err(unreadable) => Err(PlatformError::Ambiguous {
                    platform: PLATFORM,
                    reason: format!("X accepted the post (HTTP {status}) but {unreadable}"),
                }),
            },
            // Duplicate text → 403 (platform-apis.md §5.2, akrherz/iembot#163): an earlier
            // attempt may have posted it.
            403 if is_duplicate_refusal(&answer.body) => Err(PlatformError::Ambiguous {
                platform: PLATFORM,
                reason: format!(
                    "X refused the text as a duplicate ({}): an earlier attempt may have posted it",
                    error_words(&answer)
                ),
            }),
            // A gateway timeout: X's servers may have created the post behind it.
            504 => Err(PlatformError::Ambiguous {
                platform: PLATFORM,
                reason: format!("HTTP 504: {}", error_words(&answer)),
            }),
            _ => Err(classify(&answer, self.clock.now())),
        }
    }

    /// Reads the account's own posts since `since` (`GET /2/users/:id/tweets` with
    /// `start_time`, newest first, `pagination_token`) and looks for one whose text is
    /// exactly [`compose_post`]'s, reading through X's `t.co` and HTML-escape rewrites
    /// ([`Post::has_text`]). Stops at the last page or at a post older than `since`.
    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        let text = compose_post(post);
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        let account = self.account(&base).await?;
        let endpoint = api_url(&base, &[API_VERSION, "users", &account.id, "tweets"])?;
        let start_time = rfc3339_seconds(since);
        let since_second = Timestamp::from_second(since.as_second()).unwrap_or(since);
        let mut pagination_token: Option<String> = None;
        for _ in 0..MAX_LOOKUP_PAGES {
            let mut query: Vec<(&str, String)> = vec![
                ("max_results", MAX_RESULTS.to_string()),
                ("start_time", start_time.clone()),
                (POST_FIELDS_PARAM, TIMELINE_POST_FIELDS.to_owned()),
            ];
            if let Some(token) = &pagination_token {
                query.push(("pagination_token", token.clone()));
            }
            let answer = self
                .send_authed(
                    &base,
                    |auth| {
                        self.http
                            .client()
                            .get(endpoint.clone())
                            .query(&query)
                            .header(AUTHORIZATION, auth)
                    },
                    true,
                )
                .await?;
            if !is_success(answer.status) {
                return Err(classify(&answer, self.clock.now()));
            }
            let page = parse_post_page(&answer.body)?;
            page.fail_on_errors_only()?;
            page.log_partial_errors("own timeline");
            let mut reached_older = false;
            for candidate in &page.data {
                if candidate.created().is_some_and(|t| t < since_second) {
                    reached_older = true;
                    continue;
                }
                if candidate.has_text(&text) {
                    return Ok(Lookup::Found(Published {
                        platform_id: candidate.id.clone(),
                        url: Some(status_url(Some(&account.username), &candidate.id)),
                    }));
                }
            }
            match page
                .meta
                .and_then(|m| m.next_token)
                .filter(|t| !t.is_empty())
            {
                Some(token) if !reached_older => pagination_token = Some(token),
                _ => return Ok(Lookup::NotFound),
            }
        }
        Err(PlatformError::Ambiguous {
            platform: PLATFORM,
            reason: format!(
                "read {MAX_LOOKUP_PAGES} pages of the account's posts since {start_time} without \
                 reaching the end: cannot tell whether the post exists"
            ),
        })
    }
}

/// The id of a created post (`{"data":{"id","text"}}`); `Malformed` when it cannot be read
/// (the caller decides what that means: the post exists).
pub fn parse_created(body: &[u8]) -> Result<String, PlatformError> {
    #[derive(Deserialize)]
    struct Created {
        data: CreatedData,
    }
    #[derive(Deserialize)]
    struct CreatedData {
        id: String,
    }
    let created: Created =
        serde_json::from_slice(body).map_err(|e| malformed("created post", &e))?;
    if is_post_id(&created.data.id) {
        Ok(created.data.id)
    } else {
        Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: "the created post's id is not a decimal id".into(),
        })
    }
}

/// A token endpoint answer (`{"token_type","expires_in","access_token","scope","refresh_token"?}`).
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Parses a token endpoint answer; an empty access token is `Malformed`. The serde error is
/// not kept (it could quote a token).
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, PlatformError> {
    let response: TokenResponse =
        serde_json::from_slice(body).map_err(|_| PlatformError::Malformed {
            platform: PLATFORM,
            detail: "the token endpoint's answer is not the documented JSON".into(),
        })?;
    if response.access_token.trim().is_empty() {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: "the token endpoint returned an empty access token".into(),
        });
    }
    Ok(response)
}

/// Whether a 403 body is X's duplicate-content refusal ("You are not allowed to create a
/// Tweet with duplicate content.").
pub fn is_duplicate_refusal(body: &[u8]) -> bool {
    problem_words(body).is_some_and(|w| w.to_ascii_lowercase().contains("duplicate"))
}

// ---------------------------------------------------------------------------------------
// Errors, rate limits, URLs
// ---------------------------------------------------------------------------------------

/// The platform's own words in an error body: problem details (`title`, `detail`, the first
/// of `errors[].message`/`detail`), OAuth errors (`error`, `error_description`) or v1.1-style
/// `{"errors":[{"message"}]}`. `None` when the body holds none of them.
pub fn problem_words(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    problem_words_of(&value)
}

fn problem_words_of(value: &Value) -> Option<String> {
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let title = text(value, "title");
    let detail = text(value, "detail").or_else(|| text(value, "error_description"));
    let head = match (title.or_else(|| text(value, "error")), detail) {
        (Some(t), Some(d)) if t != d => Some(format!("{t}: {d}")),
        (Some(t), _) => Some(t),
        (None, d) => d,
    };
    let first_error = value
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first())
        .and_then(|e| text(e, "message").or_else(|| text(e, "detail")));
    let words = match (head, first_error) {
        (Some(h), Some(e)) if !h.contains(&e) => format!("{h} ({e})"),
        (Some(h), _) => h,
        (None, Some(e)) => e,
        (None, None) => return None,
    };
    Some(http::clip(&words, MAX_ERROR_CHARS))
}

fn error_words(answer: &Answer) -> String {
    problem_words(&answer.body).unwrap_or_else(|| {
        let status = StatusCode::from_u16(answer.status).ok();
        let body = http::clip(&String::from_utf8_lossy(&answer.body), 200);
        if body.is_empty() || body.starts_with('<') {
            format!(
                "HTTP {} {}",
                answer.status,
                status
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or_default()
            )
            .trim_end()
            .to_owned()
        } else {
            body
        }
    })
}

/// Classifies an error answer: 429 and 5xx retryable after the reset X names, 401
/// `AuthExpired`, other 4xx `Permanent` with X's words.
fn classify(answer: &Answer, now: Timestamp) -> PlatformError {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let words = error_words(answer);
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return PlatformError::Retryable {
            platform: PLATFORM,
            after: retry_wait(&answer.headers, now),
            reason: format!("HTTP {}: {words}", status.as_u16()),
        };
    }
    http::classify_status(PLATFORM, status, &answer.headers, words, now)
}

/// How long to wait after a 429: until `x-rate-limit-reset` (unix seconds), or until a spent
/// 24-hour window resets when X says one is spent (`x-user-limit-24hour-*`,
/// `x-app-limit-24hour-*`, platform-apis.md §5.2–5.3), else `Retry-After`.
pub fn retry_wait(headers: &HeaderMap, now: Timestamp) -> Option<SignedDuration> {
    let mut reset = ratelimit::x(headers).reset_at;
    for window in ["x-user-limit-24hour", "x-app-limit-24hour"] {
        let remaining = header_number(headers, &format!("{window}-remaining"));
        let window_reset = header_number(headers, &format!("{window}-reset"))
            .and_then(|s| Timestamp::from_second(i64::try_from(s).ok()?).ok());
        if remaining == Some(0) && window_reset.is_some() {
            reset = reset.max(window_reset);
        }
    }
    reset
        .map(|at| now.duration_until(at).max(SignedDuration::ZERO))
        .or_else(|| ratelimit::retry_after(headers, now))
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn rate_limit_of(headers: &HeaderMap) -> Option<RateLimit> {
    let rl = ratelimit::x(headers);
    (rl != RateLimit::default()).then_some(rl)
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn store_unavailable(e: XTokenStoreError) -> PlatformError {
    PlatformError::Retryable {
        platform: PLATFORM,
        after: None,
        reason: e.to_string(),
    }
}

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

/// `YYYY-MM-DDTHH:mm:ssZ`, the form X's `start_time` takes (whole seconds, rounded down).
fn rfc3339_seconds(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `Authorization: Bearer …` ([`http::bearer`]).
fn bearer_header(token: &Secret) -> Result<HeaderValue, PlatformError> {
    http::bearer(PLATFORM, token)
}

fn api_url(base: &Url, segments: &[&str]) -> Result<Url, PlatformError> {
    http::api_url(PLATFORM, base, segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_decimal_ids_when_compared_then_numeric_order_without_parsing() {
        assert_eq!(compare_ids("99", "100"), Ordering::Less);
        assert_eq!(
            compare_ids("2009957894845366302", "2009957139870646301"),
            Ordering::Greater
        );
        assert_eq!(compare_ids("007", "7"), Ordering::Equal);
        assert!(is_post_id("1877712345678901234"));
        assert!(!is_post_id("18777123456789012345"));
        assert!(!is_post_id("12a"));
        assert!(!is_post_id(""));
    }

    #[test]
    fn given_a_snowflake_id_when_decoded_then_its_creation_time_comes_out() {
        // 2026-01-10T11:58:00Z shifted into a Snowflake, plus sequence bits.
        assert_eq!(
            snowflake_time("2009957894845366302"),
            Some("2026-01-10T11:58:00Z".parse().unwrap())
        );
        assert_eq!(snowflake_time("not-an-id"), None);
    }

    #[test]
    fn given_escapes_and_tco_links_when_expanded_then_plain_text_with_real_urls() {
        let entities = Entities {
            urls: vec![UrlEntity {
                url: Some("https://t.co/AbC".into()),
                expanded_url: Some("https://blog.example/a?x=1&y=2".into()),
            }],
        };
        assert_eq!(
            expand_text("Rust &amp; me &lt;3 https://t.co/AbC", Some(&entities)),
            "Rust & me <3 https://blog.example/a?x=1&y=2"
        );
        assert_eq!(expand_text("&amp;lt; & &copy;", None), "&lt; & &copy;");
    }

    #[test]
    fn given_problem_bodies_when_read_then_the_platforms_words_come_out() {
        assert_eq!(
            problem_words(br#"{"title":"Forbidden","detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","status":403}"#).as_deref(),
            Some("Forbidden: You are not allowed to create a Tweet with duplicate content.")
        );
        assert_eq!(
            problem_words(br#"{"errors":[{"message":"Invalid or expired token","code":89}]}"#)
                .as_deref(),
            Some("Invalid or expired token")
        );
        assert_eq!(
            problem_words(br#"{"error":"invalid_grant","error_description":"Value passed for the token was invalid."}"#).as_deref(),
            Some("invalid_grant: Value passed for the token was invalid.")
        );
        assert_eq!(problem_words(b"<html>oops</html>"), None);
        assert_eq!(problem_words(b"[]"), None);
    }

    #[test]
    fn given_positions_when_encoded_then_they_parse_back() {
        let after = XPosition::After("2009957894845366302".into());
        assert_eq!(XPosition::parse(&after.encode()), Some(after));
        let backlog = XPosition::Backlog {
            since_id: "1".into(),
            until_id: "5".into(),
            newest_id: "9".into(),
        };
        assert_eq!(XPosition::parse(&backlog.encode()), Some(backlog));
        assert_eq!(XPosition::parse("garbage"), None);
        assert_eq!(
            XPosition::parse(r#"{"since_id":"1","until_id":"x","newest_id":"9"}"#),
            None
        );
    }

    #[test]
    fn given_campaign_queries_when_compiled_then_reposts_are_excluded_once() {
        assert_eq!(search_query("#rustlang"), "#rustlang -is:retweet");
        assert_eq!(
            search_query("(hark OR #HarkApp) -hiring"),
            "((hark OR #harkapp) -hiring) -is:retweet"
        );
        // Not Hark syntax: sent as written, the operator respected.
        assert_eq!(search_query("hark (is:retweet"), "hark (is:retweet");
    }
}
