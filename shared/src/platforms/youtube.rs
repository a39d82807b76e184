//! YouTube Data API v3, listening only: new videos matching a query (`search.list`) and new
//! top-level comments on the videos found (`commentThreads.list`).
//!
//! Facts and quirks (`platform-apis.md` §8, <https://developers.google.com/youtube/v3/docs>):
//! - Quota is the constraint, not request rate: `search.list` costs 100 units,
//!   `commentThreads.list` 1, out of a default 10,000 units per project per day that resets
//!   at midnight Pacific time
//!   (<https://developers.google.com/youtube/v3/determine_quota_cost>). This client keeps a
//!   per-source daily budget in the cursor, spreads searches over the day, and when the
//!   budget is spent makes no call at all until the next Pacific midnight.
//! - "Only new": `order=date&publishedAfter=<newest − overlap>`, `nextPageToken`, dedupe on
//!   `id.videoId`. New videos reach search results late [inf], hence the overlap.
//! - `search.list` snippets are HTML-escaped (`&#39;`, `&amp;`) [obs]: decoded here.
//! - `commentThreads.list` has no time filter: threads are read newest first
//!   (`order=time`) down to the newest comment already seen.
//! - Errors are `{"error":{"code","message","errors":[{"domain","reason"}]}}`: the `reason`
//!   decides (`quotaExceeded`, `rateLimitExceeded`, `keyInvalid`, `commentsDisabled`, …).
//!
//! The API key travels as the `key` query parameter. No request URL is ever formatted into
//! an error or a log line (transport errors are described without it), so the key cannot
//! leak that way.

use std::collections::HashSet;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, HttpClient, clip, exchange};
use super::{ListenLimits, Listened, Listener, PlatformError, RateLimit, ratelimit};
use crate::domain::{Author, Cursor, Engagement, Mention, Platform, Secret, Source};
use crate::query::{KeywordStyle, Query};
use crate::text::html_to_text;

const PLATFORM: Platform = Platform::Youtube;

/// Where the API lives when a source names no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://www.googleapis.com";

/// The versioned API path under the base URL.
pub const API_PATH: &str = "youtube/v3";

/// Quota units one `search.list` call costs.
pub const SEARCH_COST: u64 = 100;

/// Quota units one `commentThreads.list` call costs.
pub const COMMENT_THREADS_COST: u64 = 1;

/// A project's default daily quota, for reference (shared by every source of the project).
pub const PROJECT_DAILY_QUOTA: u64 = 10_000;

/// The units one source may spend per Pacific day unless told otherwise
/// ([`YouTubeListener::with_daily_budget`]): a fifth of the project's default quota, so five
/// YouTube sources fit (about 19 searches a day each, plus comment reads). Hark cannot
/// know how many sources share the project, so this is a constant, not a share.
pub const DEFAULT_DAILY_BUDGET: u64 = 2_000;

/// The time zone of the daily quota reset.
pub const QUOTA_TIME_ZONE: &str = "America/Los_Angeles";

/// Results per search page (the API maximum).
pub const SEARCH_PAGE_SIZE: u32 = 50;

/// Threads per comment page (the API maximum).
pub const COMMENT_PAGE_SIZE: u32 = 100;

/// How many of the newest videos found have their comments read.
pub const WATCHED_VIDEOS: usize = 10;

/// Videos published longer ago than this have their comments no longer read.
pub const COMMENT_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

/// How far below the newest video seen the next search window starts.
pub const OVERLAP: SignedDuration = SignedDuration::from_hours(1);

/// How far back the first search of a source looks.
pub const INITIAL_LOOKBACK: SignedDuration = SignedDuration::from_hours(24);

/// Video ids kept to drop repeats within the overlap.
pub const MAX_SEEN: usize = 500;

/// The wait after a `rateLimitExceeded` (a short-term limit, unlike the daily quota).
pub const RATE_LIMIT_WAIT: SignedDuration = SignedDuration::from_secs(60);

const MAX_ERROR_CHARS: usize = 300;

// ---------------------------------------------------------------------------------------
// Quota day
// ---------------------------------------------------------------------------------------

fn quota_tz() -> TimeZone {
    // The bundled tz database always has it; the fixed offset is a never-taken fallback.
    TimeZone::get(QUOTA_TIME_ZONE).unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(-8)))
}

/// The Pacific calendar day `now` falls on: the quota day.
pub fn quota_day(now: Timestamp) -> Date {
    now.to_zoned_datetime(quota_tz()).date()
}

/// The next midnight in Pacific time after `now`, when the daily quota resets. Days are 23
/// or 25 hours long across daylight-saving changes; the zone database handles that.
pub fn next_quota_reset(now: Timestamp) -> Timestamp {
    let tz = quota_tz();
    quota_day(now)
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned_datetime(tz).ok())
        .map(|z| z.timestamp())
        .unwrap_or_else(|| now + SignedDuration::from_hours(24))
}

/// Quota units spent on one Pacific day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUse {
    pub day: Date,
    pub used: u64,
}

impl QuotaUse {
    /// Today's use: the stored one when it is from today, zero otherwise.
    fn today(stored: Option<QuotaUse>, now: Timestamp) -> QuotaUse {
        let day = quota_day(now);
        match stored {
            Some(q) if q.day == day => q,
            _ => QuotaUse { day, used: 0 },
        }
    }

    fn affords(&self, budget: u64, cost: u64) -> bool {
        self.used.saturating_add(cost) <= budget
    }
}

// ---------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------

/// `search.list` response: the fields Hark reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub items: Vec<SearchResult>,
    #[serde(rename = "nextPageToken", default)]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SearchResult {
    pub id: ResourceId,
    pub snippet: VideoSnippet,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResourceId {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(rename = "videoId", default)]
    pub video_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VideoSnippet {
    #[serde(rename = "publishedAt")]
    pub published_at: Timestamp,
    #[serde(rename = "channelId", default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "channelTitle", default)]
    pub channel_title: Option<String>,
}

/// `commentThreads.list` response: the fields Hark reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommentThreadPage {
    #[serde(default)]
    pub items: Vec<CommentThread>,
    #[serde(rename = "nextPageToken", default)]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommentThread {
    pub id: String,
    pub snippet: ThreadSnippet,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ThreadSnippet {
    #[serde(rename = "videoId", default)]
    pub video_id: Option<String>,
    #[serde(rename = "topLevelComment")]
    pub top_level_comment: Comment,
    #[serde(rename = "totalReplyCount", default)]
    pub total_reply_count: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Comment {
    pub id: String,
    pub snippet: CommentSnippet,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommentSnippet {
    #[serde(rename = "textDisplay", default)]
    pub text_display: Option<String>,
    #[serde(rename = "textOriginal", default)]
    pub text_original: Option<String>,
    #[serde(rename = "authorDisplayName", default)]
    pub author_display_name: Option<String>,
    #[serde(rename = "authorChannelUrl", default)]
    pub author_channel_url: Option<String>,
    #[serde(rename = "likeCount", default)]
    pub like_count: Option<i64>,
    #[serde(rename = "publishedAt")]
    pub published_at: Timestamp,
}

/// Parses a `search.list` page. Anything else — or a video result without a `videoId` — is
/// `Malformed` and nothing from it is used. Never panics (property-tested).
pub fn parse_search(body: &[u8]) -> Result<SearchPage, PlatformError> {
    let page: SearchPage =
        serde_json::from_slice(body).map_err(|e| malformed("search page", &e))?;
    let bad = page.items.iter().any(|r| {
        r.id.kind.as_deref().is_none_or(|k| k == "youtube#video")
            && r.id.video_id.as_deref().is_none_or(|v| v.trim().is_empty())
    });
    if bad {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: "a video search result has no videoId".into(),
        });
    }
    Ok(page)
}

/// Parses a `commentThreads.list` page. Anything else — or a thread with an empty id — is
/// `Malformed`. Never panics (property-tested).
pub fn parse_comment_threads(body: &[u8]) -> Result<CommentThreadPage, PlatformError> {
    let page: CommentThreadPage =
        serde_json::from_slice(body).map_err(|e| malformed("comment thread page", &e))?;
    if page
        .items
        .iter()
        .any(|t| t.snippet.top_level_comment.id.trim().is_empty())
    {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: "a comment thread has an empty comment id".into(),
        });
    }
    Ok(page)
}

/// The watch URL of a video.
pub fn video_url(video_id: &str) -> String {
    format!("https://www.youtube.com/watch?v={video_id}")
}

/// The URL that opens a video with one comment highlighted.
pub fn comment_url(video_id: &str, comment_id: &str) -> String {
    format!("https://www.youtube.com/watch?v={video_id}&lc={comment_id}")
}

impl SearchResult {
    /// The video id (present for every result `parse_search` accepts as a video).
    pub fn video_id(&self) -> Option<&str> {
        self.id.video_id.as_deref().filter(|v| !v.trim().is_empty())
    }

    /// The mention this video stands for (title and description).
    pub fn to_mention(&self, source: &Source) -> Option<Mention> {
        let id = self.video_id()?;
        let s = &self.snippet;
        let text = [s.title.as_deref(), s.description.as_deref()]
            .into_iter()
            .flatten()
            .map(html_to_text)
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        let channel = s.channel_id.clone().unwrap_or_default();
        Some(Mention {
            platform: PLATFORM,
            native_id: id.to_owned(),
            url: video_url(id),
            author: Author {
                url: (!channel.is_empty())
                    .then(|| format!("https://www.youtube.com/channel/{channel}")),
                handle: channel,
                display_name: s
                    .channel_title
                    .as_deref()
                    .map(html_to_text)
                    .filter(|n| !n.trim().is_empty()),
                followers: None,
            },
            text,
            created_at: s.published_at,
            lang: None,
            sentiment: None,
            engagement: Engagement::default(),
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        })
    }
}

impl CommentThread {
    /// The mention this top-level comment stands for. `video_id` is the video asked for.
    pub fn to_mention(&self, source: &Source, video_id: &str) -> Mention {
        let comment = &self.snippet.top_level_comment;
        let s = &comment.snippet;
        let video = self.snippet.video_id.as_deref().unwrap_or(video_id);
        let text = s
            .text_display
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .or(s.text_original.as_deref())
            .unwrap_or_default()
            .to_owned();
        let name = s.author_display_name.clone().unwrap_or_default();
        Mention {
            platform: PLATFORM,
            native_id: comment.id.clone(),
            url: comment_url(video, &comment.id),
            author: Author {
                // Display names are `@handle` on current channels [obs].
                handle: name.trim_start_matches('@').to_owned(),
                display_name: Some(name).filter(|n| !n.trim().is_empty()),
                followers: None,
                url: s.author_channel_url.clone(),
            },
            text,
            created_at: s.published_at,
            lang: None,
            sentiment: None,
            engagement: Engagement {
                likes: s.like_count.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                reposts: 0,
                replies: self
                    .snippet
                    .total_reply_count
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            },
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A Google API error body (<https://developers.google.com/youtube/v3/docs/errors>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GoogleError {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Newer answers also carry `google.rpc.ErrorInfo` details (`API_KEY_INVALID`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GoogleError,
}

impl GoogleError {
    /// Every reason given, in order: `errors[].reason` then `details[].reason`.
    pub fn reasons(&self) -> impl Iterator<Item = &str> {
        self.errors
            .iter()
            .filter_map(|e| e.reason.as_deref())
            .chain(self.details.iter().filter_map(|d| d.reason.as_deref()))
    }

    fn has_reason(&self, wanted: &[&str]) -> bool {
        self.reasons().any(|r| wanted.contains(&r))
    }
}

/// Reads a Google error body; `None` when the body is something else.
pub fn parse_error(body: &[u8]) -> Option<GoogleError> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
}

const QUOTA_REASONS: [&str; 2] = ["quotaExceeded", "dailyLimitExceeded"];
const RATE_REASONS: [&str; 3] = [
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "RATE_LIMIT_EXCEEDED",
];
const KEY_REASONS: [&str; 4] = [
    "keyInvalid",
    "keyExpired",
    "API_KEY_INVALID",
    "API_KEY_EXPIRED",
];

/// Classifies a failed response. `quotaExceeded` is `Retryable` after the next Pacific
/// midnight, `rateLimitExceeded` after a short wait, an invalid or expired key
/// (`keyInvalid`, or 400 "API key not valid") `AuthExpired`, other 4xx `Permanent` with
/// Google's words, 5xx `Retryable`. Never panics (property-tested).
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: Timestamp) -> PlatformError {
    let status_code =
        reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
    let Some(error) = parse_error(body) else {
        let text = html_to_text(&String::from_utf8_lossy(body));
        let message = if text.trim().is_empty() {
            format!("HTTP {status}")
        } else {
            clip(&text, MAX_ERROR_CHARS)
        };
        return http::classify_status(PLATFORM, status_code, headers, message, now);
    };
    let message = describe_error(&error);
    if error.has_reason(&QUOTA_REASONS) {
        return PlatformError::Retryable {
            platform: PLATFORM,
            after: Some(now.duration_until(next_quota_reset(now))),
            reason: message,
        };
    }
    if error.has_reason(&RATE_REASONS) {
        return PlatformError::Retryable {
            platform: PLATFORM,
            after: Some(ratelimit::retry_after(headers, now).unwrap_or(RATE_LIMIT_WAIT)),
            reason: message,
        };
    }
    let key_problem = error.has_reason(&KEY_REASONS)
        || error.message.contains("API key not valid")
        || error.message.contains("API key expired");
    if key_problem || status == 401 {
        return PlatformError::AuthExpired {
            platform: PLATFORM,
            message,
        };
    }
    http::classify_status(PLATFORM, status_code, headers, message, now)
}

/// `message (reason)`, clipped.
fn describe_error(error: &GoogleError) -> String {
    let mut text = error.message.trim().to_owned();
    if text.is_empty() {
        text = "unknown YouTube API error".into();
    }
    if let Some(reason) = error.reasons().next() {
        text = format!("{text} ({reason})");
    }
    clip(&text, MAX_ERROR_CHARS)
}

// ---------------------------------------------------------------------------------------
// Cursor position
// ---------------------------------------------------------------------------------------

/// What `cursor.position` holds for a YouTube source (JSON):
///
/// ```json
/// {"published_after": "2026-01-10T10:00:00Z", "seen": [["dQw4w9WgXcQ", 1768046400]],
///  "last_search_at": "2026-01-10T12:00:00Z",
///  "videos": [{"id": "dQw4w9WgXcQ", "published_at": "2026-01-10T11:00:00Z",
///              "newest_comment": "2026-01-10T11:30:00Z", "seen_comments": ["Ugz…"]}],
///  "quota": {"day": "2026-01-10", "used": 203}}
/// ```
///
/// `published_after` is the next search window's start; `published_before` is set while
/// an interrupted window is being finished. `videos` are the recent videos whose comments
/// are read, each with the newest comment time seen (and the ids at that instant), or a
/// `resume` page token while a long comment read is being finished. `quota` is the units
/// spent on the Pacific day `day`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YouTubePosition {
    pub published_after: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_before: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Timestamp>,
    #[serde(default)]
    pub seen: Vec<(String, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_search_at: Option<Timestamp>,
    #[serde(default)]
    pub videos: Vec<WatchedVideo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaUse>,
}

/// A recent video whose comments are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedVideo {
    pub id: String,
    pub published_at: Timestamp,
    /// The newest comment time returned; `None` until its comments were first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_comment: Option<Timestamp>,
    /// Ids of comments published at `newest_comment` (returned already).
    #[serde(default)]
    pub seen_comments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<CommentResume>,
}

/// A comment read the page cap or the budget interrupted: the page to continue from, and
/// the newest comment of the read (which becomes `newest_comment` once it completes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentResume {
    pub page_token: String,
    pub top: Timestamp,
    #[serde(default)]
    pub top_ids: Vec<String>,
}

impl YouTubePosition {
    fn fresh(now: Timestamp) -> Self {
        YouTubePosition {
            published_after: now - INITIAL_LOOKBACK,
            published_before: None,
            newest: None,
            seen: Vec::new(),
            last_search_at: None,
            videos: Vec::new(),
            quota: None,
        }
    }

    /// Reads a stored position; `None` for a source never polled. An unreadable position
    /// restarts from the initial lookback but keeps nothing — except that its quota use
    /// cannot be trusted either, so the day is assumed spent (no overspending).
    fn read(cursor: &Cursor, now: Timestamp, budget: u64) -> Option<Self> {
        let raw = cursor.position.as_deref()?;
        match serde_json::from_str(raw) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(
                    source_id = %cursor.source_id,
                    error = %e,
                    "unreadable youtube cursor position; restarting, today's budget assumed spent"
                );
                let mut p = Self::fresh(now);
                p.quota = Some(QuotaUse {
                    day: quota_day(now),
                    used: budget,
                });
                Some(p)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Listener
// ---------------------------------------------------------------------------------------

/// Listens to YouTube for new videos matching the source's query and new comments on them.
///
/// Source fields: `credentials` = an API key (sent as `key=`), `query` = a campaign query
/// (compiled to one `q` with [`youtube_q`]), `account` = an optional channel id to restrict
/// the search to (`channelId`), `base_url` = another API host ([`DEFAULT_BASE_URL`] when
/// unset).
///
/// Budget: each source may spend `daily_budget` quota units per Pacific day
/// ([`DEFAULT_DAILY_BUDGET`]); the use is kept in the cursor. Searches are spaced evenly
/// over the day (`24 h × 100 / budget` apart unless [`YouTubeListener::with_search_interval`]
/// says otherwise; the first poll of a Pacific day may always search); between searches a
/// poll only reads comments (1 unit per page). When nothing is affordable, no call is made:
/// the poll returns no mentions, `caught_up = true` and a [`RateLimit`] with
/// `remaining = 0` and `reset_at` = the next Pacific midnight.
///
/// The rate limit returned always reports the budget: `limit` = budget units, `remaining`
/// = units left today, `reset_at` = the next Pacific midnight.
#[derive(Clone)]
pub struct YouTubeListener {
    http: HttpClient,
    api_key: Option<Secret>,
    daily_budget: u64,
    search_interval: Option<SignedDuration>,
}

impl std::fmt::Debug for YouTubeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YouTubeListener")
            .field("api_key", &self.api_key)
            .field("daily_budget", &self.daily_budget)
            .finish_non_exhaustive()
    }
}

/// One listen call's request context and quota accounting.
struct Api<'a> {
    http: &'a HttpClient,
    base: Url,
    key: &'a Secret,
    now: Timestamp,
    budget: u64,
    quota: QuotaUse,
}

/// A failed call: its classification and the reasons YouTube gave.
struct ApiFailure {
    error: PlatformError,
    reasons: Vec<String>,
}

impl ApiFailure {
    fn has_reason(&self, wanted: &[&str]) -> bool {
        self.reasons.iter().any(|r| wanted.contains(&r.as_str()))
    }
}

impl From<PlatformError> for ApiFailure {
    fn from(error: PlatformError) -> Self {
        ApiFailure {
            error,
            reasons: Vec::new(),
        }
    }
}

/// How a comment read of one video ended.
enum CommentOutcome {
    /// Read (maybe partially): the video's new state and whether it is complete.
    Read { video: WatchedVideo, complete: bool },
    /// Comments are disabled, or the video is gone: stop watching it.
    Drop,
    /// The budget (or YouTube's quota) ran out before anything was read.
    OutOfQuota(WatchedVideo),
}

impl Api<'_> {
    fn endpoint(&self, resource: &str) -> Result<Url, PlatformError> {
        let mut url = self.base.clone();
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
            .extend(API_PATH.split('/'))
            .push(resource);
        Ok(url)
    }

    /// One GET, charged to the budget once sent (YouTube charges failed calls too).
    async fn get(
        &mut self,
        resource: &str,
        params: &[(&str, &str)],
        cost: u64,
    ) -> Result<Vec<u8>, ApiFailure> {
        let url = self.endpoint(resource).map_err(ApiFailure::from)?;
        let request = self
            .http
            .client()
            .get(url)
            .query(params)
            .query(&[("key", self.key.expose())]);
        let answer = exchange(PLATFORM, request, true).await;
        self.quota.used = self.quota.used.saturating_add(cost);
        let answer = answer.map_err(ApiFailure::from)?;
        if !(200..300).contains(&answer.status) {
            let error = classify(answer.status, &answer.headers, &answer.body, self.now);
            let reasons: Vec<String> = parse_error(&answer.body)
                .map(|e| e.reasons().map(str::to_owned).collect())
                .unwrap_or_default();
            if reasons.iter().any(|r| QUOTA_REASONS.contains(&r.as_str())) {
                // YouTube says the project is out of quota: nothing more today.
                self.quota.used = self.quota.used.max(self.budget);
            }
            return Err(ApiFailure { error, reasons });
        }
        Ok(answer.body)
    }

    async fn read_comments(
        &mut self,
        video: &WatchedVideo,
        one_page: bool,
        max_pages: usize,
        source: &Source,
        out: &mut Vec<Mention>,
    ) -> Result<CommentOutcome, PlatformError> {
        let floor = video.newest_comment;
        let seen: HashSet<&str> = video.seen_comments.iter().map(String::as_str).collect();
        let mut token = video.resume.as_ref().map(|r| r.page_token.clone());
        let mut top = video.resume.as_ref().map(|r| r.top);
        let mut top_ids: Vec<String> = video
            .resume
            .as_ref()
            .map(|r| r.top_ids.clone())
            .unwrap_or_default();
        let max_results = COMMENT_PAGE_SIZE.to_string();
        let mut pages = 0;
        let complete = loop {
            if pages >= max_pages.max(1) {
                break false;
            }
            if !self.quota.affords(self.budget, COMMENT_THREADS_COST) {
                if pages == 0 {
                    return Ok(CommentOutcome::OutOfQuota(video.clone()));
                }
                break false;
            }
            let mut params: Vec<(&str, &str)> = vec![
                ("part", "snippet"),
                ("videoId", &video.id),
                ("order", "time"),
                ("textFormat", "plainText"),
                ("maxResults", &max_results),
            ];
            if let Some(t) = token.as_deref() {
                params.push(("pageToken", t));
            }
            let body = match self
                .get("commentThreads", &params, COMMENT_THREADS_COST)
                .await
            {
                Ok(body) => body,
                Err(failure) => return self.comment_failure(video, failure),
            };
            pages += 1;
            let page = parse_comment_threads(&body)?;
            let mut reached = false;
            for thread in &page.items {
                let comment = &thread.snippet.top_level_comment;
                let t = comment.snippet.published_at;
                if floor.is_some_and(|f| t < f) {
                    reached = true;
                    continue;
                }
                if floor == Some(t) && seen.contains(comment.id.as_str()) {
                    continue;
                }
                match top {
                    Some(current) if current > t => {}
                    Some(current) if current == t => top_ids.push(comment.id.clone()),
                    _ => {
                        top = Some(t);
                        top_ids = vec![comment.id.clone()];
                    }
                }
                out.push(thread.to_mention(source, &video.id));
            }
            token = page.next_page_token.filter(|t| !t.is_empty());
            if reached || one_page || token.is_none() {
                break true;
            }
        };
        let mut next = video.clone();
        if complete {
            next.resume = None;
            match (top, floor) {
                (Some(t), Some(f)) if t == f => {
                    next.seen_comments.extend(top_ids);
                }
                (Some(t), _) => {
                    next.newest_comment = Some(t);
                    next.seen_comments = top_ids;
                }
                (None, None) => {
                    // No comments yet: every future comment is newer than the video.
                    next.newest_comment = Some(video.published_at);
                    next.seen_comments.clear();
                }
                (None, Some(_)) => {}
            }
        } else if let (Some(page_token), Some(top)) = (token, top) {
            next.resume = Some(CommentResume {
                page_token,
                top,
                top_ids,
            });
        }
        Ok(CommentOutcome::Read {
            video: next,
            complete,
        })
    }

    fn comment_failure(
        &self,
        video: &WatchedVideo,
        failure: ApiFailure,
    ) -> Result<CommentOutcome, PlatformError> {
        // Comments turned off, or the video removed: nothing to read any more.
        if failure.has_reason(&["commentsDisabled", "videoNotFound"]) {
            return Ok(CommentOutcome::Drop);
        }
        // A stored page token YouTube no longer accepts: start over from the newest
        // (repeats are dropped downstream; nothing below the floor is skipped).
        if video.resume.is_some() && failure.has_reason(&["invalidPageToken"]) {
            let mut next = video.clone();
            next.resume = None;
            return Ok(CommentOutcome::Read {
                video: next,
                complete: false,
            });
        }
        if self.quota.used >= self.budget && failure.error.is_retryable() {
            return Ok(CommentOutcome::OutOfQuota(video.clone()));
        }
        Err(failure.error)
    }
}

impl YouTubeListener {
    /// `api_key`: the source's resolved `credentials`; `None` fails every poll with
    /// `AuthExpired`.
    pub fn new(http: HttpClient, api_key: Option<Secret>) -> Self {
        YouTubeListener {
            http,
            api_key,
            daily_budget: DEFAULT_DAILY_BUDGET,
            search_interval: None,
        }
    }

    /// The quota units this source may spend per Pacific day.
    pub fn with_daily_budget(mut self, units: u64) -> Self {
        self.daily_budget = units;
        self
    }

    /// The least time between two searches on one Pacific day (default: the day spread
    /// evenly over the searches the budget allows).
    pub fn with_search_interval(mut self, interval: SignedDuration) -> Self {
        self.search_interval = Some(interval);
        self
    }

    fn search_interval(&self) -> SignedDuration {
        self.search_interval.unwrap_or_else(|| {
            let searches = (self.daily_budget / SEARCH_COST).max(1);
            SignedDuration::from_secs(24 * 3600 / i64::try_from(searches).unwrap_or(i64::MAX))
        })
    }
}

/// The `q` for a source query: Hark syntax compiled to keywords (exclusions and `lang:`
/// are re-checked downstream). One alternative is sent as is; several become single terms
/// joined with `|`, YouTube's OR (<https://developers.google.com/youtube/v3/docs/search/list#q>),
/// which only broadens — one search, not one per alternative, because each costs 100 units.
/// Text that is not valid Hark syntax is sent as written.
pub fn youtube_q(query: &str) -> String {
    match Query::parse(query) {
        Ok(parsed) => {
            let terms = parsed.keyword_queries(1, KeywordStyle::Plain);
            if terms.is_empty() {
                query.to_owned()
            } else {
                terms.join("|")
            }
        }
        Err(_) => query.to_owned(),
    }
}

#[async_trait::async_trait]
impl Listener for YouTubeListener {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        let query = source
            .query
            .as_deref()
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: format!("source `{}` needs a query", source.id),
            })?;
        let key = self
            .api_key
            .as_ref()
            .ok_or_else(|| PlatformError::AuthExpired {
                platform: PLATFORM,
                message: format!("source `{}` has no `credentials` (an API key)", source.id),
            })?;
        let now = limits.now;
        let stored = YouTubePosition::read(cursor, now, self.daily_budget);
        let first_poll = stored.is_none();
        let mut state = stored.unwrap_or_else(|| YouTubePosition::fresh(now));
        let quota = QuotaUse::today(state.quota, now);

        // Budget spent: no call at all; slow the poller down until the quota day ends.
        if !quota.affords(self.daily_budget, COMMENT_THREADS_COST) {
            state.quota = Some(quota);
            return finish(
                cursor,
                state,
                Vec::new(),
                true,
                self.daily_budget,
                quota,
                now,
            );
        }

        let base = source.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let base = self.http.checked_url(PLATFORM, base).await?;
        let mut api = Api {
            http: &self.http,
            base,
            key,
            now,
            budget: self.daily_budget,
            quota,
        };
        let mut mentions = Vec::new();
        let mut complete = true;

        // 1. New videos.
        let new_day = state
            .last_search_at
            .is_none_or(|last| quota_day(last) != quota_day(now));
        let due = new_day
            || state
                .last_search_at
                .is_none_or(|last| last.duration_until(now) >= self.search_interval());
        if due && api.quota.affords(self.daily_budget, SEARCH_COST) {
            let (found, search_complete) = self
                .search(
                    &mut api,
                    &mut state,
                    source,
                    query,
                    first_poll,
                    limits.max_pages,
                )
                .await?;
            complete &= search_complete;
            mentions.extend(found);
        }

        // 2. New comments on recent videos, newest video first.
        state
            .videos
            .retain(|v| v.published_at >= now - COMMENT_WINDOW);
        state
            .videos
            .sort_by(|a, b| (b.published_at, &b.id).cmp(&(a.published_at, &a.id)));
        state.videos.truncate(WATCHED_VIDEOS);
        let mut videos = Vec::with_capacity(state.videos.len());
        let mut out_of_quota = false;
        for video in std::mem::take(&mut state.videos) {
            if out_of_quota {
                videos.push(video);
                continue;
            }
            let one_page = first_poll && video.newest_comment.is_none();
            match api
                .read_comments(&video, one_page, limits.max_pages, source, &mut mentions)
                .await
            {
                Ok(CommentOutcome::Read {
                    video,
                    complete: done,
                }) => {
                    complete &= done;
                    videos.push(video);
                }
                Ok(CommentOutcome::Drop) => {}
                Ok(CommentOutcome::OutOfQuota(video)) => {
                    out_of_quota = true;
                    videos.push(video);
                }
                Err(err) => return Err(err),
            }
        }
        state.videos = videos;

        let mut ids = HashSet::new();
        mentions.retain(|m| ids.insert(m.native_id.clone()));
        mentions.sort_by(|a, b| (a.created_at, &a.native_id).cmp(&(b.created_at, &b.native_id)));
        state.quota = Some(api.quota);
        finish(
            cursor,
            state,
            mentions,
            complete,
            self.daily_budget,
            api.quota,
            now,
        )
    }
}

impl YouTubeListener {
    /// Runs the search window from `state`, adding new videos to the watch list. Returns the
    /// video mentions and whether the window was read to its end.
    async fn search(
        &self,
        api: &mut Api<'_>,
        state: &mut YouTubePosition,
        source: &Source,
        query: &str,
        first_poll: bool,
        max_pages: usize,
    ) -> Result<(Vec<Mention>, bool), PlatformError> {
        let q = youtube_q(query);
        let after = rfc3339(state.published_after);
        let before = state.published_before.map(rfc3339);
        let max_results = SEARCH_PAGE_SIZE.to_string();
        let channel = source
            .account
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let seen: HashSet<String> = state.seen.iter().map(|(id, _)| id.clone()).collect();
        let mut returned = HashSet::new();
        let mut fetched: Vec<(String, i64)> = Vec::new();
        let mut mentions = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        let complete = loop {
            if pages >= max_pages.max(1) || !api.quota.affords(self.daily_budget, SEARCH_COST) {
                break false;
            }
            let mut params: Vec<(&str, &str)> = vec![
                ("part", "snippet"),
                ("type", "video"),
                ("order", "date"),
                ("q", &q),
                ("publishedAfter", &after),
                ("maxResults", &max_results),
            ];
            if let Some(before) = before.as_deref() {
                params.push(("publishedBefore", before));
            }
            if let Some(channel) = channel {
                params.push(("channelId", channel));
            }
            if let Some(t) = token.as_deref() {
                params.push(("pageToken", t));
            }
            let body = match api.get("search", &params, SEARCH_COST).await {
                Ok(body) => body,
                // Out of quota after some pages: keep what was read, stop here.
                Err(failure)
                    if pages > 0
                        && failure.error.is_retryable()
                        && api.quota.used >= self.daily_budget =>
                {
                    break false;
                }
                Err(failure) => return Err(failure.error),
            };
            pages += 1;
            state.last_search_at = Some(api.now);
            let page = parse_search(&body)?;
            for result in &page.items {
                let Some(id) = result.video_id() else {
                    continue;
                };
                let t = result.snippet.published_at;
                fetched.push((id.to_owned(), t.as_second()));
                if seen.contains(id) || !returned.insert(id.to_owned()) {
                    continue;
                }
                if let Some(m) = result.to_mention(source) {
                    mentions.push(m);
                }
                if t >= api.now - COMMENT_WINDOW && !state.videos.iter().any(|v| v.id == id) {
                    state.videos.push(WatchedVideo {
                        id: id.to_owned(),
                        published_at: t,
                        newest_comment: None,
                        seen_comments: Vec::new(),
                        resume: None,
                    });
                }
            }
            token = page.next_page_token.filter(|t| !t.is_empty());
            if first_poll || token.is_none() {
                break true;
            }
        };
        advance_search(state, &fetched, complete, api.now);
        Ok((mentions, complete))
    }
}

/// Moves the search window after a search that fetched `fetched` (`(id, unix)`).
fn advance_search(
    state: &mut YouTubePosition,
    fetched: &[(String, i64)],
    complete: bool,
    now: Timestamp,
) {
    let to_ts = |s: i64| Timestamp::from_second(s).ok();
    let newest = fetched
        .iter()
        .filter_map(|(_, t)| to_ts(*t))
        .chain(state.newest)
        .max();
    if complete {
        if let Some(n) = newest {
            let next = n.min(now) - OVERLAP;
            state.published_after = state.published_after.max(next);
        }
        state.published_before = None;
    } else if let Some(oldest) = fetched.iter().filter_map(|(_, t)| to_ts(*t)).min() {
        state.published_before = Some(match state.published_before {
            // No progress within one second: step below it.
            Some(b) if oldest >= b => b - SignedDuration::from_secs(1),
            _ => oldest,
        });
    }
    state.newest = newest;
    let after = state.published_after.as_second();
    let mut ids = HashSet::new();
    let mut seen: Vec<(String, i64)> = fetched
        .iter()
        .chain(state.seen.iter())
        .filter(|(id, t)| *t >= after && ids.insert(id.clone()))
        .cloned()
        .collect();
    if seen.len() > MAX_SEEN {
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        seen.truncate(MAX_SEEN);
    }
    state.seen = seen;
}

fn finish(
    cursor: &Cursor,
    state: YouTubePosition,
    mentions: Vec<Mention>,
    caught_up: bool,
    budget: u64,
    quota: QuotaUse,
    now: Timestamp,
) -> Result<Listened, PlatformError> {
    let mut cursor = cursor.clone();
    cursor.position =
        Some(
            serde_json::to_string(&state).map_err(|e| PlatformError::Malformed {
                platform: PLATFORM,
                detail: format!("cannot encode the cursor: {e}"),
            })?,
        );
    let remaining = budget.saturating_sub(quota.used);
    Ok(Listened {
        mentions,
        cursor,
        caught_up,
        rate_limit: Some(RateLimit {
            limit: Some(budget),
            // Less than one comment page left is nothing left.
            remaining: Some(if remaining < COMMENT_THREADS_COST {
                0
            } else {
                remaining
            }),
            reset_at: Some(next_quota_reset(now)),
        }),
    })
}

/// RFC 3339 in UTC with whole seconds, as the API documents (`1970-01-01T00:00:00Z`).
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn malformed(what: &str, err: &serde_json::Error) -> PlatformError {
    http::malformed_json(PLATFORM, what, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn given_pacific_standard_time_when_asking_the_reset_then_it_is_08_00_utc() {
        assert_eq!(
            next_quota_reset(t("2026-01-10T12:00:00Z")),
            t("2026-01-11T08:00:00Z")
        );
        assert_eq!(
            quota_day(t("2026-01-10T07:59:59Z")).to_string(),
            "2026-01-09"
        );
    }

    #[test]
    fn given_the_spring_forward_day_when_asking_the_reset_then_the_day_has_23_hours() {
        // 2026-03-08 02:00 PST → 03:00 PDT.
        assert_eq!(
            next_quota_reset(t("2026-03-08T09:00:00Z")),
            t("2026-03-09T07:00:00Z")
        );
        assert_eq!(
            next_quota_reset(t("2026-03-08T07:59:00Z")),
            t("2026-03-08T08:00:00Z")
        );
    }

    #[test]
    fn given_hark_queries_when_compiled_then_one_q_with_or_only_when_needed() {
        assert_eq!(youtube_q("(hark OR #harkapp) -hiring"), "hark|harkapp");
        assert_eq!(
            youtube_q("\"social listening\" rust"),
            "\"social listening\" rust"
        );
        assert_eq!(youtube_q("(broken"), "(broken");
    }

    #[test]
    fn given_the_documented_rfc3339_when_formatting_then_whole_seconds_in_utc() {
        assert_eq!(rfc3339(t("2026-01-10T12:00:00.5Z")), "2026-01-10T12:00:00Z");
    }
}
