//! Hacker News, listened to through Algolia's HN Search API (HN itself has no search and
//! no write API): `GET /api/v1/search_by_date`, newest first
//! (<https://hn.algolia.com/api>).

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, HttpClient};
use super::{ListenLimits, Listened, Listener, PlatformError};
use crate::domain::{Author, Cursor, Engagement, Mention, Platform, Source};
use crate::text::html_to_text;

const PLATFORM: Platform = Platform::Hackernews;

/// Where the API lives when a source names no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://hn.algolia.com";

/// Hits per page (Algolia caps deep pagination at about 1,000 hits, so windows stay short).
pub const HITS_PER_PAGE: u32 = 100;

/// How far back each window reaches before the newest item seen. `created_at_i` has whole
/// seconds and items are indexed minutes after they are posted, so a strict `>` after the
/// newest item would miss late-indexed ones; the overlap re-asks, and `seen` drops repeats.
pub const OVERLAP: SignedDuration = SignedDuration::from_secs(10 * 60);

/// How far back the first poll of a source looks.
pub const INITIAL_LOOKBACK: SignedDuration = SignedDuration::from_secs(60 * 60);

/// Most objectIDs kept in the cursor (about 15 KB of JSON).
pub const MAX_SEEN: usize = 1000;

const MAX_ERROR_CHARS: usize = 300;

/// Algolia's HN search ANDs the words of a query and knows no OR. A source query written in
/// Hark's query language (`(hark OR #harkapp) -hiring`) becomes one search per alternative
/// (at most four), exclusions dropped: the processor re-checks every mention locally.
/// A query that is not valid Hark syntax is sent as written.
pub fn algolia_queries(query: &str) -> Vec<String> {
    match crate::query::Query::parse(query) {
        Ok(parsed) => {
            let queries = parsed.keyword_queries(4, crate::query::KeywordStyle::Plain);
            if queries.is_empty() {
                vec![query.to_owned()]
            } else {
                queries
            }
        }
        Err(_) => vec![query.to_owned()],
    }
}

/// Polls Algolia's `search_by_date` for stories and comments matching the source's query.
///
/// `source.query` is sent as is (Algolia's own query syntax); `base_url` defaults to
/// [`DEFAULT_BASE_URL`]. The cursor position is a small JSON document, see
/// [`HackerNewsPosition`].
#[derive(Debug, Clone)]
pub struct HackerNewsListener {
    http: HttpClient,
}

impl HackerNewsListener {
    pub fn new(http: HttpClient) -> Self {
        HackerNewsListener { http }
    }

    async fn fetch_page(
        &self,
        endpoint: &Url,
        query: &str,
        window: (i64, Option<i64>),
        page: u32,
        now: Timestamp,
    ) -> Result<SearchPage, PlatformError> {
        let (since, until) = window;
        let mut filters = format!("created_at_i>={since}");
        if let Some(until) = until {
            filters.push_str(&format!(",created_at_i<={until}"));
        }
        let response = self
            .http
            .client()
            .get(endpoint.clone())
            .query(&[
                ("query", query),
                ("tags", "(story,comment)"),
                ("numericFilters", &filters),
                ("hitsPerPage", &HITS_PER_PAGE.to_string()),
                ("page", &page.to_string()),
            ])
            .send()
            .await
            // Searching is idempotent: any transport failure may be retried.
            .map_err(|e| http::transport_error(PLATFORM, &e, true))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(PLATFORM, &e, true))?;
        if !status.is_success() {
            return Err(classify(status, &headers, &body, now));
        }
        parse_page(&body)
    }
}

/// What the cursor position holds for a Hacker News source (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HackerNewsPosition {
    /// Lower bound of the next window (`created_at_i >= since`, unix seconds).
    pub since: i64,
    /// Upper bound while finishing a window the page cap interrupted: the oldest
    /// `created_at_i` fetched so far. Results come newest first, so the rest of the
    /// interrupted window is everything at or below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Newest `created_at_i` seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<i64>,
    /// `(objectID, created_at_i)` of items already returned that a later window can return
    /// again; at most [`MAX_SEEN`].
    #[serde(default)]
    pub seen: Vec<(String, i64)>,
}

impl HackerNewsPosition {
    /// Reads a stored position; `None` for a source never polled. An unreadable position
    /// (hand-edited, or written by an incompatible version) restarts from the initial
    /// lookback rather than blocking the source: repeats are dropped downstream by the
    /// mention dedupe.
    fn read(cursor: &Cursor, now: Timestamp) -> Self {
        let fresh = || HackerNewsPosition {
            since: now.as_second() - INITIAL_LOOKBACK.as_secs(),
            ..HackerNewsPosition::default()
        };
        match cursor.position.as_deref() {
            None => fresh(),
            Some(raw) => serde_json::from_str(raw).unwrap_or_else(|e| {
                tracing::warn!(
                    source_id = %cursor.source_id,
                    error = %e,
                    "unreadable hackernews cursor position; restarting from the initial lookback"
                );
                fresh()
            }),
        }
    }
}

#[async_trait::async_trait]
impl Listener for HackerNewsListener {
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
        let base = source.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let base = self.http.checked_url(PLATFORM, base).await?;
        let endpoint = api_url(&base)?;
        let state = HackerNewsPosition::read(cursor, limits.now);

        let seen: HashSet<&str> = state.seen.iter().map(|(id, _)| id.as_str()).collect();
        let mut returned: HashSet<String> = HashSet::new();
        let mut fetched: Vec<(String, i64)> = Vec::new();
        let mut mentions = Vec::new();
        let searches = algolia_queries(query);
        let pages_each = (limits.max_pages.max(1) / searches.len()).max(1);
        let mut complete = true;
        for search in &searches {
            let mut page = 0u32;
            let mut pages = 0usize;
            let mut done = false;
            while pages < pages_each {
                let result = self
                    .fetch_page(
                        &endpoint,
                        search,
                        (state.since, state.until),
                        page,
                        limits.now,
                    )
                    .await?;
                pages += 1;
                for hit in &result.hits {
                    fetched.push((hit.object_id.clone(), hit.created_at_i));
                    if !seen.contains(hit.object_id.as_str())
                        && returned.insert(hit.object_id.clone())
                    {
                        mentions.push(hit.to_mention(source));
                    }
                }
                if result.hits.is_empty() || u64::from(page) + 1 >= result.nb_pages {
                    done = true;
                    break;
                }
                page += 1;
            }
            complete &= done;
        }
        // Several searches: order the union by time (pages come newest first).
        mentions.sort_by(|a, b| (b.created_at, &b.native_id).cmp(&(a.created_at, &a.native_id)));
        // Pages come newest first: queue oldest first.
        mentions.reverse();

        let next = next_position(&state, &fetched, complete, limits.now);
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
            // Algolia documents no rate-limit headers (10,000 requests/hour per IP).
            rate_limit: None,
        })
    }
}

/// The position after a call that fetched `fetched` (in page order) from `state`'s window.
fn next_position(
    state: &HackerNewsPosition,
    fetched: &[(String, i64)],
    complete: bool,
    now: Timestamp,
) -> HackerNewsPosition {
    let newest = fetched.iter().map(|(_, t)| *t).chain(state.newest).max();
    let (since, until) = if complete {
        // Next window: from a little before the newest item seen (never from the future,
        // should Algolia's clock run ahead of ours).
        let since = newest
            .map(|n| n.min(now.as_second()) - OVERLAP.as_secs())
            .map_or(state.since, |s| s.max(state.since));
        (since, None)
    } else {
        let oldest = fetched.iter().map(|(_, t)| *t).min();
        let until = match (oldest, state.until) {
            // No progress within one second (more hits in it than the page cap): step
            // below it rather than asking for the same pages forever.
            (Some(o), Some(u)) if o >= u => u - 1,
            (Some(o), _) => o,
            (None, u) => u.unwrap_or(now.as_second()),
        };
        (state.since, Some(until))
    };
    let top_overlap = newest.map(|n| n - OVERLAP.as_secs());
    let keep = |t: i64| {
        t >= since
            && match until {
                None => true,
                // While finishing a window: the items it will return again (at or below
                // `until`) and those the next normal window will (near the newest).
                Some(u) => t <= u || top_overlap.is_some_and(|o| t >= o),
            }
    };
    let mut ids = HashSet::new();
    let mut seen: Vec<(String, i64)> = fetched
        .iter()
        .chain(state.seen.iter())
        .filter(|(id, t)| keep(*t) && ids.insert(id.clone()))
        .cloned()
        .collect();
    if seen.len() > MAX_SEEN {
        // Keep the newest; an older repeat is dropped downstream by the mention dedupe.
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        seen.truncate(MAX_SEEN);
    }
    HackerNewsPosition {
        since,
        until,
        newest,
        seen,
    }
}

/// One page of search results (<https://hn.algolia.com/api>).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// 0-based.
    #[serde(default)]
    pub page: u64,
    #[serde(rename = "nbPages", default)]
    pub nb_pages: u64,
}

/// One story or comment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hit {
    /// The HN item id, as a string.
    #[serde(rename = "objectID")]
    pub object_id: String,
    /// Unix seconds.
    pub created_at_i: i64,
    #[serde(default)]
    pub author: Option<String>,
    /// Stories: title, link, text (HTML, Ask HN and similar).
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub story_text: Option<String>,
    /// Comments: HTML.
    #[serde(default)]
    pub comment_text: Option<String>,
    #[serde(default)]
    pub points: Option<i64>,
    #[serde(default)]
    pub num_comments: Option<i64>,
    #[serde(rename = "_tags", default)]
    pub tags: Vec<String>,
}

impl Hit {
    /// Whether the hit is a comment (by its tags, or by having comment text).
    pub fn is_comment(&self) -> bool {
        self.tags.iter().any(|t| t == "comment") || self.comment_text.is_some()
    }

    /// The mention this hit stands for.
    pub fn to_mention(&self, source: &Source) -> Mention {
        let text = if self.is_comment() {
            html_to_text(self.comment_text.as_deref().unwrap_or_default())
        } else {
            let parts = [
                self.title.as_deref().map(html_to_text),
                self.url.clone(),
                self.story_text.as_deref().map(html_to_text),
            ];
            parts
                .into_iter()
                .flatten()
                .filter(|p| !p.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let author = self.author.clone().unwrap_or_default();
        let author_url =
            (!author.is_empty()).then(|| format!("https://news.ycombinator.com/user?id={author}"));
        Mention {
            platform: PLATFORM,
            native_id: self.object_id.clone(),
            url: format!("https://news.ycombinator.com/item?id={}", self.object_id),
            author: Author {
                handle: author,
                display_name: None,
                followers: None,
                url: author_url,
            },
            text,
            created_at: Timestamp::from_second(self.created_at_i).unwrap_or(Timestamp::UNIX_EPOCH),
            lang: None,
            sentiment: None,
            engagement: Engagement {
                likes: self.points.map_or(0, |p| u64::try_from(p).unwrap_or(0)),
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

/// Parses one `search_by_date` response. Anything else (or a hit without `objectID` or
/// `created_at_i`, or with a time out of range) is `Malformed` and nothing from it is used.
pub fn parse_page(body: &[u8]) -> Result<SearchPage, PlatformError> {
    let page: SearchPage = serde_json::from_slice(body).map_err(|e| PlatformError::Malformed {
        platform: PLATFORM,
        detail: format!("search page is not the documented JSON: {e}"),
    })?;
    if let Some(hit) = page
        .hits
        .iter()
        .find(|h| h.object_id.is_empty() || Timestamp::from_second(h.created_at_i).is_err())
    {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: format!(
                "search hit `{}` has an empty id or an impossible created_at_i {}",
                http::clip(&hit.object_id, 40),
                hit.created_at_i
            ),
        });
    }
    Ok(page)
}

/// Errors from the API are `{"message": "..."}` with Algolia's status code.
#[derive(Deserialize)]
struct ApiError {
    message: String,
}

fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: Timestamp) -> PlatformError {
    let message = match serde_json::from_slice::<ApiError>(body) {
        Ok(err) => http::clip(&err.message, MAX_ERROR_CHARS),
        Err(_) => {
            let text = html_to_text(&String::from_utf8_lossy(body));
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
    };
    http::classify_status(PLATFORM, status, headers, message, now)
}

fn api_url(base: &Url) -> Result<Url, PlatformError> {
    http::api_url(PLATFORM, base, &["api", "v1", "search_by_date"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_hark_query_then_one_algolia_search_per_alternative_without_exclusions() {
        assert_eq!(
            algolia_queries("(hark OR #harkapp) -hiring"),
            ["hark", "harkapp"]
        );
        assert_eq!(
            algolia_queries("\"social listening\" rust"),
            ["\"social listening\" rust"]
        );
        assert_eq!(algolia_queries("plain words"), ["plain words"]);
        // Not Hark syntax (unbalanced): sent as written rather than guessed at.
        assert_eq!(algolia_queries("(broken"), ["(broken"]);
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_768_050_000).unwrap()
    }

    #[test]
    fn given_a_complete_window_when_advancing_then_since_overlaps_the_newest_and_seen_keeps_only_the_overlap()
     {
        let state = HackerNewsPosition {
            since: 1_768_040_000,
            ..Default::default()
        };
        let fetched = vec![
            ("3".to_owned(), 1_768_046_400),
            ("2".to_owned(), 1_768_046_000),
            ("1".to_owned(), 1_768_041_000),
        ];
        let next = next_position(&state, &fetched, true, now());
        assert_eq!(next.since, 1_768_046_400 - 600);
        assert_eq!(next.until, None);
        assert_eq!(next.newest, Some(1_768_046_400));
        let ids: Vec<&str> = next.seen.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["3", "2"]);
    }

    #[test]
    fn given_an_interrupted_window_when_advancing_then_until_is_the_oldest_fetched() {
        let state = HackerNewsPosition {
            since: 1_768_040_000,
            ..Default::default()
        };
        let fetched = vec![
            ("9".to_owned(), 1_768_049_000),
            ("8".to_owned(), 1_768_045_000),
            ("7".to_owned(), 1_768_044_000),
        ];
        let next = next_position(&state, &fetched, false, now());
        assert_eq!(next.since, 1_768_040_000);
        assert_eq!(next.until, Some(1_768_044_000));
        assert_eq!(next.newest, Some(1_768_049_000));
        // "8" lies between the two windows and can never come back.
        let ids: Vec<&str> = next.seen.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["9", "7"]);
    }

    #[test]
    fn given_no_progress_inside_one_second_when_advancing_then_until_steps_below_it() {
        let state = HackerNewsPosition {
            since: 1_768_040_000,
            until: Some(1_768_044_000),
            newest: Some(1_768_049_000),
            seen: Vec::new(),
        };
        let fetched = vec![("7".to_owned(), 1_768_044_000)];
        let next = next_position(&state, &fetched, false, now());
        assert_eq!(next.until, Some(1_768_043_999));
    }

    #[test]
    fn given_a_window_without_hits_when_advancing_then_since_stays() {
        let state = HackerNewsPosition {
            since: 1_768_040_000,
            ..Default::default()
        };
        let next = next_position(&state, &[], true, now());
        assert_eq!(next, state);
    }

    #[test]
    fn given_many_seen_items_when_advancing_then_seen_is_bounded_to_the_newest() {
        let state = HackerNewsPosition {
            since: 0,
            ..Default::default()
        };
        let fetched: Vec<(String, i64)> = (0..MAX_SEEN as i64 + 50)
            .map(|i| (i.to_string(), 1_768_049_000 - i / 10))
            .collect();
        let next = next_position(&state, &fetched, true, now());
        assert_eq!(next.seen.len(), MAX_SEEN);
        assert!(next.seen.iter().all(|(_, t)| *t >= next.since));
    }
}
