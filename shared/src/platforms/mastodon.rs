//! Mastodon: listening on hashtag timelines and publishing statuses.
//!
//! Listening uses `GET /api/v1/timelines/tag/:hashtag` — the robust path across the
//! fediverse, since full-text search only finds opted-in posts
//! (<https://docs.joinmastodon.org/methods/timelines/#tag>,
//! <https://docs.joinmastodon.org/methods/search/#v2>). Publishing uses
//! `POST /api/v1/statuses` with an `Idempotency-Key`
//! (<https://docs.joinmastodon.org/methods/statuses/#create>).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, LINK};
use serde::Deserialize;
use url::Url;

use super::http::{self, HttpClient};
use super::{
    ListenLimits, Listened, Listener, OutgoingPost, PlatformError, Published, Publisher, RateLimit,
    ratelimit,
};
use crate::clock::Clock;
use crate::domain::{Author, Cursor, Engagement, Mention, Platform, Secret, Source};
use crate::text::html_to_text;

const PLATFORM: Platform = Platform::Mastodon;

/// Statuses per timeline page: the API maximum (default 20).
pub const PAGE_LIMIT: usize = 40;

/// Tags one hashtag-timeline request may name: the path tag plus `any[]`, "at most 4 tags
/// in total" (<https://docs.joinmastodon.org/methods/timelines/#tag>).
pub const MAX_TAGS: usize = 4;

/// Longest platform error text kept in an error.
const MAX_ERROR_CHARS: usize = 300;

/// Polls a Mastodon instance's hashtag timeline for new statuses.
///
/// The source's `base_url` is the instance; its `query` names the hashtags: the first
/// `#tag` is the timeline, up to three more are added as `any[]` (statuses with any of the
/// tags). Exclusions (`-#tag`) and plain words are ignored here; the processor re-checks
/// the campaign query on every mention.
///
/// Cursor: `position` is the newest status id queued (an opaque string). Each poll asks
/// for `min_id=<position>`, which Mastodon answers with the oldest 40 statuses after it,
/// newest first; a full page means there may be more, so the next page is asked for with
/// the new position, gap-free, up to `max_pages`. A source that was never polled starts
/// with the newest page only.
///
/// Reblogs: a reblog's mention is the reblogged (original) status — its id, author, text
/// and URL — because that is what was said; the same original reached twice is one mention
/// (the processor dedupes on `(platform, native_id)`). Paging still uses the reblog's own id.
#[derive(Debug, Clone)]
pub struct MastodonListener {
    http: HttpClient,
    token: Option<Secret>,
}

impl MastodonListener {
    /// `token`: a user access token (scope `read:statuses`) for instances that only serve
    /// hashtag timelines to signed-in users; `None` reads the public timeline.
    pub fn new(http: HttpClient, token: Option<Secret>) -> Self {
        MastodonListener { http, token }
    }

    async fn fetch_page(
        &self,
        endpoint: &Url,
        any_tags: &[String],
        min_id: Option<&str>,
        now: Timestamp,
    ) -> Result<TimelinePage, PlatformError> {
        let mut query: Vec<(&str, &str)> = vec![("limit", "40")];
        for tag in any_tags {
            query.push(("any[]", tag));
        }
        if let Some(min_id) = min_id {
            query.push(("min_id", min_id));
        }
        let mut request = self.http.client().get(endpoint.clone()).query(&query);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, bearer(token)?);
        }
        // Reading a timeline is idempotent: any transport failure may be retried.
        let response = request
            .send()
            .await
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
        Ok(TimelinePage {
            statuses: parse_statuses(&body)?,
            newer_min_id: link_prev_min_id(&headers),
            rate_limit: rate_limit_of(&headers),
        })
    }
}

struct TimelinePage {
    /// Newest first, as Mastodon serves `min_id` pages.
    statuses: Vec<Status>,
    /// `min_id` of the `Link: <…>; rel="prev"` URL: the page of newer statuses starts after it.
    newer_min_id: Option<String>,
    rate_limit: Option<RateLimit>,
}

#[async_trait::async_trait]
impl Listener for MastodonListener {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        let base = source
            .base_url
            .as_deref()
            .ok_or_else(|| config_error(source, "has no base_url (the instance URL)"))?;
        let base = self.http.checked_url(PLATFORM, base).await?;
        let tags = hashtags(source.query.as_deref().unwrap_or_default());
        let Some((tag, any_tags)) = tags.split_first() else {
            return Err(config_error(
                source,
                "needs a #hashtag in its query: Mastodon is listened to through hashtag timelines",
            ));
        };
        let endpoint = api_url(&base, &["api", "v1", "timelines", "tag", tag])?;
        let instance_host = base.host_str().unwrap_or_default().to_owned();

        let mut position = cursor.position.clone();
        let mut mentions = Vec::new();
        let mut returned = HashSet::new();
        let mut rate_limit = None;
        let mut caught_up = true;
        let mut pages = 0;
        loop {
            if pages >= limits.max_pages.max(1) {
                caught_up = false;
                break;
            }
            let first_poll = position.is_none();
            let page = self
                .fetch_page(&endpoint, any_tags, position.as_deref(), limits.now)
                .await?;
            pages += 1;
            rate_limit = page.rate_limit.or(rate_limit);
            // Vanilla pages are newest first; sort rather than reverse so a fork that
            // serves them the other way still queues oldest first.
            let mut ordered: Vec<&Status> = page.statuses.iter().collect();
            ordered.sort_by(|a, b| compare_ids(&a.id, &b.id));
            for status in ordered {
                let mention = status.to_mention(source, &instance_host);
                if returned.insert(mention.native_id.clone()) {
                    mentions.push(mention);
                }
            }
            // The highest id on the page is the first one; the `rel="prev"` link names the
            // same id on vanilla Mastodon. Take the highest of all so a fork that orders
            // pages differently cannot move the cursor backwards.
            let newest = page
                .statuses
                .iter()
                .map(|s| s.id.as_str())
                .chain(page.newer_min_id.as_deref())
                .chain(position.as_deref())
                .max_by(|a, b| compare_ids(a, b))
                .map(str::to_owned);
            position = newest;
            if first_poll || page.statuses.len() < PAGE_LIMIT {
                break;
            }
        }
        let mut next = cursor.clone();
        next.position = position;
        Ok(Listened {
            mentions,
            cursor: next,
            caught_up,
            rate_limit,
        })
    }
}

/// Publishes statuses to one Mastodon account.
#[derive(Clone)]
pub struct MastodonPublisher {
    http: HttpClient,
    base_url: String,
    token: Secret,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MastodonPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MastodonPublisher")
            .field("base_url", &self.base_url)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl MastodonPublisher {
    /// `base_url` is the instance; `token` a user access token with `write:statuses`;
    /// `clock` turns the rate-limit reset instant into a wait.
    pub fn new(
        http: HttpClient,
        base_url: impl Into<String>,
        token: Secret,
        clock: Arc<dyn Clock>,
    ) -> Self {
        MastodonPublisher {
            http,
            base_url: base_url.into(),
            token,
            clock,
        }
    }
}

#[async_trait::async_trait]
impl Publisher for MastodonPublisher {
    /// Creates a public status.
    ///
    /// `idempotency_key` goes out as `Idempotency-Key`: Mastodon keeps it for one hour and
    /// answers a repeated create with the status it already made. So every failure where the
    /// request may have arrived — a timeout or a reset connection after sending, a 5xx — is
    /// `Retryable`, not `Ambiguous`: a retry within the hour cannot post twice. (After an
    /// hour the key is forgotten; retries are expected long before that.) A 200 whose body
    /// cannot be read is `Malformed`: the status exists, and a retry with the same key
    /// within the hour returns it.
    async fn publish(
        &self,
        post: &OutgoingPost,
        idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        let endpoint = api_url(&base, &["api", "v1", "statuses"])?;
        let key = HeaderValue::from_str(idempotency_key).map_err(|_| PlatformError::Permanent {
            platform: PLATFORM,
            status: None,
            message: "the idempotency key is not a valid HTTP header value".into(),
        })?;
        let body = serde_json::json!({ "status": compose_status(post) });
        let response = self
            .http
            .client()
            .post(endpoint)
            .header(AUTHORIZATION, bearer(&self.token)?)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            // Idempotent thanks to the Idempotency-Key (see above).
            .map_err(|e| http::transport_error(PLATFORM, &e, true))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(PLATFORM, &e, true))?;
        // Mastodon answers 200 OK (not 201 Created) with the Status.
        if !status.is_success() {
            return Err(classify(status, &headers, &bytes, self.clock.now()));
        }
        let created: CreatedStatus =
            serde_json::from_slice(&bytes).map_err(|e| malformed("created status", &e))?;
        if created.id.is_empty() {
            return Err(PlatformError::Malformed {
                platform: PLATFORM,
                detail: "created status has an empty id".into(),
            });
        }
        Ok(Published {
            platform_id: created.id,
            url: created.url.or(created.uri),
        })
    }
}

#[derive(Deserialize)]
struct CreatedStatus {
    id: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    uri: Option<String>,
}

/// The status text to send: the post's text, with its link appended on its own paragraph
/// unless the text already contains it.
pub fn compose_status(post: &OutgoingPost) -> String {
    match post.link.as_deref().map(str::trim) {
        Some(link) if !link.is_empty() && !post.text.contains(link) => {
            if post.text.trim().is_empty() {
                link.to_owned()
            } else {
                format!("{}\n\n{link}", post.text.trim_end())
            }
        }
        _ => post.text.clone(),
    }
}

/// A status as the API returns it: only the fields Hark reads
/// (<https://docs.joinmastodon.org/entities/Status/>).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Status {
    /// Opaque id (numeric-looking on vanilla Mastodon, but never parsed as a number).
    pub id: String,
    pub created_at: Timestamp,
    /// ActivityPub id: always present, the fallback when `url` is null.
    pub uri: String,
    #[serde(default)]
    pub url: Option<String>,
    /// HTML.
    #[serde(default)]
    pub content: Option<String>,
    /// Content warning, plain text.
    #[serde(default)]
    pub spoiler_text: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    pub account: Account,
    #[serde(default)]
    pub replies_count: i64,
    #[serde(default)]
    pub reblogs_count: i64,
    #[serde(default)]
    pub favourites_count: i64,
    /// The reblogged status when this one is a reblog.
    #[serde(default)]
    pub reblog: Option<Box<Status>>,
}

/// The author of a status (<https://docs.joinmastodon.org/entities/Account/>).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Account {
    /// `user` for accounts on the instance asked, `user@domain` for remote ones.
    pub acct: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub followers_count: Option<i64>,
}

impl Status {
    /// The mention this status stands for. `instance_host` completes local handles
    /// (`alice` → `alice@instance`), so handles are the same whichever instance is asked.
    pub fn to_mention(&self, source: &Source, instance_host: &str) -> Mention {
        let status = self.reblog.as_deref().unwrap_or(self);
        let body = html_to_text(status.content.as_deref().unwrap_or_default());
        let text = match status.spoiler_text.as_deref().map(str::trim) {
            Some(spoiler) if !spoiler.is_empty() => {
                if body.is_empty() {
                    spoiler.to_owned()
                } else {
                    format!("{spoiler}\n\n{body}")
                }
            }
            _ => body,
        };
        let handle = if status.account.acct.contains('@') || instance_host.is_empty() {
            status.account.acct.clone()
        } else {
            format!("{}@{instance_host}", status.account.acct)
        };
        Mention {
            platform: PLATFORM,
            native_id: status.id.clone(),
            url: status.url.clone().unwrap_or_else(|| status.uri.clone()),
            author: Author {
                handle,
                display_name: status
                    .account
                    .display_name
                    .clone()
                    .filter(|n| !n.trim().is_empty()),
                followers: status.account.followers_count.map(non_negative),
                url: status.account.url.clone(),
            },
            text,
            created_at: status.created_at,
            lang: status.language.clone().filter(|l| !l.is_empty()),
            sentiment: None,
            engagement: Engagement {
                likes: non_negative(status.favourites_count),
                reposts: non_negative(status.reblogs_count),
                replies: non_negative(status.replies_count),
            },
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        }
    }
}

/// Counts have been seen negative on some servers after deletions: clamp, don't fail.
fn non_negative(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Parses a timeline page (a JSON array of statuses). Anything else is `Malformed` and
/// nothing from the page is used.
pub fn parse_statuses(body: &[u8]) -> Result<Vec<Status>, PlatformError> {
    serde_json::from_slice(body).map_err(|e| malformed("timeline page", &e))
}

/// Orders Mastodon ids: shorter is older, equal lengths compare as text. Vanilla ids are
/// Snowflake-like decimal strings; forks use other sortable strings
/// (<https://docs.joinmastodon.org/api/guidelines/#id>).
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The hashtags of a query, without `#`, lowercased, deduplicated, at most [`MAX_TAGS`].
/// `-#tag` (an exclusion) is skipped.
pub fn hashtags(query: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut i = 0;
    while let Some(c) = query[i..].chars().next() {
        let starts_tag = c == '#'
            && prev.is_none_or(|p| p.is_whitespace() || matches!(p, '(' | '"' | '\'' | ','));
        if starts_tag {
            let rest = &query[i + 1..];
            let len: usize = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .map(char::len_utf8)
                .sum();
            if len > 0 {
                let tag = rest[..len].to_lowercase();
                if !tags.contains(&tag) && tags.len() < MAX_TAGS {
                    tags.push(tag);
                }
                prev = rest[..len].chars().last();
                i += 1 + len;
                continue;
            }
        }
        prev = Some(c);
        i += c.len_utf8();
    }
    tags
}

/// The `min_id` of the `rel="prev"` link (the newer page), if the response has one.
fn link_prev_min_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(LINK)?.to_str().ok()?;
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let params_end = rest[close..]
            .find('<')
            .map_or(rest.len(), |next| close + next);
        let params = &rest[close + 1..params_end];
        let is_prev = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=")
                .map(|v| v.trim_matches('"').split_whitespace().any(|r| r == "prev"))
                .unwrap_or(false)
        });
        if is_prev {
            let url = Url::parse(target).ok()?;
            return url
                .query_pairs()
                .find(|(k, _)| k == "min_id")
                .map(|(_, v)| v.into_owned());
        }
        rest = &rest[params_end..];
    }
    None
}

fn rate_limit_of(headers: &HeaderMap) -> Option<RateLimit> {
    let rl = ratelimit::mastodon(headers);
    (rl != RateLimit::default()).then_some(rl)
}

/// Mastodon error bodies are `{"error": "...", "error_description": "..."}`
/// (<https://docs.joinmastodon.org/entities/Error/>).
#[derive(Deserialize)]
struct ApiError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(err) = serde_json::from_slice::<ApiError>(body) {
        let message = match err.error_description.filter(|d| !d.trim().is_empty()) {
            Some(description) => format!("{}: {description}", err.error),
            None => err.error,
        };
        return http::clip(&message, MAX_ERROR_CHARS);
    }
    // A proxy in front of the instance may answer with an HTML page.
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

/// Classifies an error response. Mastodon's 429 carries no `Retry-After`, only
/// `X-RateLimit-Reset` as an ISO-8601 instant (<https://docs.joinmastodon.org/api/rate-limits/>).
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: Timestamp) -> PlatformError {
    let mut err =
        http::classify_status(PLATFORM, status, headers, error_message(status, body), now);
    if status == StatusCode::TOO_MANY_REQUESTS
        && let PlatformError::Retryable { after, .. } = &mut err
        && after.is_none()
    {
        *after = ratelimit::mastodon(headers).wait_from(now);
    }
    err
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

    #[test]
    fn given_a_campaign_query_when_reading_hashtags_then_first_is_the_timeline_and_exclusions_are_skipped()
     {
        assert_eq!(
            hashtags("(hark OR #HarkApp) -#hiring #rustlang #RustLang"),
            vec!["harkapp", "rustlang"]
        );
        assert_eq!(hashtags("#a #b #c #d #e"), vec!["a", "b", "c", "d"]);
        assert_eq!(hashtags("C# and F#"), Vec::<String>::new());
        assert_eq!(hashtags("#日本語 #café_2"), vec!["日本語", "café_2"]);
        assert!(hashtags("no tags here").is_empty());
    }

    #[test]
    fn given_ids_of_different_lengths_when_compared_then_longer_is_newer() {
        assert_eq!(compare_ids("99", "100"), Ordering::Less);
        assert_eq!(
            compare_ids("113800000000000102", "113800000000000101"),
            Ordering::Greater
        );
        // Larger than i64::MAX: still ordered, never parsed.
        assert_eq!(
            compare_ids("99999999999999999999", "100000000000000000000"),
            Ordering::Less
        );
    }

    #[test]
    fn given_the_documented_link_header_when_read_then_prev_min_id_is_found() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(
                "<https://mastodon.example/api/v1/timelines/tag/rustlang?max_id=113800000000000101>; rel=\"next\", \
                 <https://mastodon.example/api/v1/timelines/tag/rustlang?min_id=113800000000000102>; rel=\"prev\"",
            ),
        );
        assert_eq!(link_prev_min_id(&h).as_deref(), Some("113800000000000102"));
        h.insert(
            LINK,
            HeaderValue::from_static("<https://m.example/x?max_id=1>; rel=\"next\""),
        );
        assert_eq!(link_prev_min_id(&h), None);
        h.insert(LINK, HeaderValue::from_static("garbage <without end"));
        assert_eq!(link_prev_min_id(&h), None);
    }

    #[test]
    fn given_a_link_when_composing_then_appended_once() {
        let post = |text: &str, link: Option<&str>| OutgoingPost {
            text: text.into(),
            link: link.map(Into::into),
        };
        assert_eq!(
            compose_status(&post("Hello", Some("https://e.com/x"))),
            "Hello\n\nhttps://e.com/x"
        );
        assert_eq!(
            compose_status(&post("See https://e.com/x !", Some("https://e.com/x"))),
            "See https://e.com/x !"
        );
        assert_eq!(
            compose_status(&post("", Some("https://e.com/x"))),
            "https://e.com/x"
        );
        assert_eq!(compose_status(&post("Just text", None)), "Just text");
    }
}
