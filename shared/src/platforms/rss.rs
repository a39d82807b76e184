//! RSS and Atom feeds (including Google Alerts), parsed with feed-rs and fetched with a
//! conditional GET (RFC 9110 §13.1: `If-None-Match`, `If-Modified-Since`, 304).

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{self, HttpClient};
use super::{ListenLimits, Listened, Listener, PlatformError};
use crate::domain::{Author, Cursor, Engagement, Mention, Platform, Source};
use crate::text::{collapse_whitespace, html_to_text};

const PLATFORM: Platform = Platform::Rss;

/// Largest feed body read; a bigger one is refused rather than buffered.
pub const MAX_FEED_BYTES: usize = 10 * 1024 * 1024;

/// Feed entries considered per poll (feeds list newest first; the rest are old news).
pub const MAX_ENTRIES: usize = 500;

/// Keys remembered in the cursor: up to two per entry (its id, and its link + title).
pub const MAX_SEEN_KEYS: usize = 2 * MAX_ENTRIES;

/// An entry dated more than this before the newest date seen is old news even when its
/// key has been forgotten. Generous, because aggregators such as Google Alerts surface
/// articles days after their publication date.
pub const DATE_OVERLAP: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Longest mention text taken from one entry (full-content feeds carry whole articles).
pub const MAX_TEXT_CHARS: usize = 5000;

const ACCEPT_FEEDS: &str = "application/atom+xml, application/rss+xml, application/feed+json, \
                            application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8";

/// Polls one RSS/Atom/JSON feed (`source.url`).
///
/// Cursor: `etag` / `last_modified` hold the validators of the last 200 response and are
/// sent back (`If-None-Match` is preferred by servers when both are present); a 304 means
/// nothing changed. `position` is a JSON [`RssPosition`]: hashes of the entries already
/// queued, so entries without dates (or with unstable ids) are not sent again on every
/// poll, and the newest entry date seen.
#[derive(Debug, Clone)]
pub struct RssListener {
    http: HttpClient,
}

impl RssListener {
    pub fn new(http: HttpClient) -> Self {
        RssListener { http }
    }
}

/// What the cursor position holds for a feed (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RssPosition {
    /// Hex FNV-1a hashes of the keys of entries already seen, least recently seen first;
    /// at most [`MAX_SEEN_KEYS`].
    #[serde(default)]
    pub seen: Vec<String>,
    /// The newest entry date seen (unix seconds), never later than the poll time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<i64>,
}

impl RssPosition {
    /// An unreadable position restarts with an empty memory rather than blocking the
    /// feed: entries already queued come again with the same native ids and are dropped
    /// by the mention dedupe.
    fn read(cursor: &Cursor) -> Self {
        match cursor.position.as_deref() {
            None => RssPosition::default(),
            Some(raw) => serde_json::from_str(raw).unwrap_or_else(|e| {
                tracing::warn!(
                    source_id = %cursor.source_id,
                    error = %e,
                    "unreadable rss cursor position; starting with an empty memory"
                );
                RssPosition::default()
            }),
        }
    }
}

#[async_trait::async_trait]
impl Listener for RssListener {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError> {
        let raw_url = source
            .url
            .as_deref()
            .or(source.base_url.as_deref())
            .ok_or_else(|| PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: format!("source `{}` has no feed url", source.id),
            })?;
        let feed_url = self.http.checked_url(PLATFORM, raw_url).await?;

        let mut request = self
            .http
            .client()
            .get(feed_url.clone())
            .header(ACCEPT, ACCEPT_FEEDS);
        // Both validators when both are known: a server that understands If-None-Match
        // must ignore If-Modified-Since (RFC 9110 §13.1.3).
        if let Some(etag) = cursor.etag.as_deref().and_then(header_value) {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(since) = cursor.last_modified.as_deref().and_then(header_value) {
            request = request.header(IF_MODIFIED_SINCE, since);
        }
        // A GET is idempotent: any transport failure may be retried.
        let response = request
            .send()
            .await
            .map_err(|e| http::transport_error(PLATFORM, &e, true))?;
        let status = response.status();
        let headers = response.headers().clone();

        if status == StatusCode::NOT_MODIFIED {
            // Nothing new. A 304 may repeat the validators; keep the old ones otherwise.
            let mut next = cursor.clone();
            if let Some(etag) = header_text(&headers, ETAG) {
                next.etag = Some(etag);
            }
            if let Some(lm) = header_text(&headers, LAST_MODIFIED) {
                next.last_modified = Some(lm);
            }
            return Ok(Listened {
                mentions: Vec::new(),
                cursor: next,
                caught_up: true,
                rate_limit: None,
            });
        }
        if !status.is_success() {
            return Err(classify(status, &headers, limits.now));
        }
        let body = read_capped(response, MAX_FEED_BYTES).await?;
        let items = parse_feed(&body)?;

        let state = RssPosition::read(cursor);
        let (mentions, next_state) = select_new(&items, &state, source, &feed_url, limits.now);
        let mut next = cursor.clone();
        next.etag = header_text(&headers, ETAG);
        next.last_modified = header_text(&headers, LAST_MODIFIED);
        next.position =
            Some(
                serde_json::to_string(&next_state).map_err(|e| PlatformError::Malformed {
                    platform: PLATFORM,
                    detail: format!("cannot encode the cursor: {e}"),
                })?,
            );
        Ok(Listened {
            mentions,
            cursor: next,
            caught_up: true,
            rate_limit: None,
        })
    }
}

/// The entries of `items` not seen before (oldest first), and the position to store.
fn select_new(
    items: &[FeedItem],
    state: &RssPosition,
    source: &Source,
    feed_url: &Url,
    now: Timestamp,
) -> (Vec<Mention>, RssPosition) {
    let seen: HashSet<&str> = state.seen.iter().map(String::as_str).collect();
    let cutoff = state
        .newest
        .and_then(|n| Timestamp::from_second(n).ok())
        .and_then(|n| n.checked_sub(DATE_OVERLAP).ok());
    let mut batch_keys: HashSet<String> = HashSet::new();
    let mut fresh: Vec<(Option<Timestamp>, Mention)> = Vec::new();
    let mut current_keys: Vec<String> = Vec::new();
    for item in items.iter().take(MAX_ENTRIES) {
        let keys = item.keys();
        let known = keys
            .iter()
            .any(|k| seen.contains(k.as_str()) || batch_keys.contains(k));
        let too_old = matches!((item.date, cutoff), (Some(d), Some(c)) if d < c);
        if !known && !too_old {
            fresh.push((item.date, item.to_mention(source, feed_url, now)));
        }
        for k in keys {
            if batch_keys.insert(k.clone()) {
                current_keys.push(k);
            }
        }
    }
    // Feeds list newest first: reverse, then order by date where entries have one.
    fresh.reverse();
    fresh.sort_by_key(|(date, _)| *date);
    let mentions = fresh.into_iter().map(|(_, m)| m).collect();

    // Keys of entries still in the feed move to the end (most recent), so eviction drops
    // keys of entries that left the feed first.
    let mut next_seen: Vec<String> = state
        .seen
        .iter()
        .filter(|k| !batch_keys.contains(*k))
        .cloned()
        .collect();
    next_seen.extend(current_keys.into_iter().rev());
    if next_seen.len() > MAX_SEEN_KEYS {
        next_seen.drain(..next_seen.len() - MAX_SEEN_KEYS);
    }
    let newest = items
        .iter()
        .filter_map(|i| i.date)
        .map(|d| d.min(now).as_second())
        .chain(state.newest)
        .max();
    (
        mentions,
        RssPosition {
            seen: next_seen,
            newest,
        },
    )
}

/// One feed entry, reduced to what a mention needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// The id the feed gave the entry (Atom `id`, RSS `guid`, JSON Feed `id`), if any.
    pub id: Option<String>,
    /// The entry's web link, Google Alerts redirects unwrapped; may be relative.
    pub link: Option<String>,
    /// Plain-text title.
    pub title: String,
    /// Plain-text summary, or content when there is no summary.
    pub body: String,
    pub author: Option<String>,
    /// Published, else updated.
    pub date: Option<Timestamp>,
    /// ISO 639 language code from the entry or the feed.
    pub lang: Option<String>,
}

impl FeedItem {
    /// The keys this entry is remembered by: its id, and its link + title when it has a
    /// link (so a feed that regenerates ids on every fetch is still recognised). Without
    /// either, its title + body.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        if let Some(id) = &self.id {
            keys.push(hex(fnv1a64(&["id", id])));
        }
        if let Some(link) = &self.link {
            keys.push(hex(fnv1a64(&["link", link, &self.title])));
        }
        if keys.is_empty() {
            keys.push(hex(fnv1a64(&["text", &self.title, &self.body])));
        }
        keys
    }

    /// A stable id for the entry within `feed_url`: hex FNV-1a of the feed URL and the
    /// entry's id (or link + title, or title + body when it has neither).
    pub fn native_id(&self, feed_url: &str) -> String {
        match (&self.id, &self.link) {
            (Some(id), _) => hex(fnv1a64(&[feed_url, "id", id])),
            (None, Some(link)) => hex(fnv1a64(&[feed_url, "link", link, &self.title])),
            (None, None) => hex(fnv1a64(&[feed_url, "text", &self.title, &self.body])),
        }
    }

    fn to_mention(&self, source: &Source, feed_url: &Url, now: Timestamp) -> Mention {
        let link = self
            .link
            .as_deref()
            .and_then(|l| feed_url.join(l).ok())
            .or_else(|| {
                self.id
                    .as_deref()
                    .filter(|id| id.starts_with("http://") || id.starts_with("https://"))
                    .and_then(|id| Url::parse(id).ok())
            });
        let url = link
            .as_ref()
            .map_or_else(|| feed_url.to_string(), Url::to_string);
        let site = link
            .as_ref()
            .and_then(|l| l.host_str())
            .map(|h| h.strip_prefix("www.").unwrap_or(h).to_owned());
        let handle = self
            .author
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or(site)
            .unwrap_or_default();
        let text = match (self.title.is_empty(), self.body.is_empty()) {
            (false, false) if self.body.starts_with(&self.title) => self.body.clone(),
            (false, false) => format!("{}\n\n{}", self.title, self.body),
            (false, true) => self.title.clone(),
            (true, _) => self.body.clone(),
        };
        Mention {
            platform: PLATFORM,
            native_id: self.native_id(feed_url.as_str()),
            url,
            author: Author {
                handle,
                display_name: None,
                followers: None,
                url: None,
            },
            text: clip_text(&text, MAX_TEXT_CHARS),
            // An entry without a date is dated when it was first seen.
            created_at: self.date.unwrap_or(now),
            lang: self.lang.clone(),
            sentiment: None,
            engagement: Engagement::default(),
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        }
    }
}

/// Parses an RSS 0.9x/1.0/2.0, Atom or JSON Feed document. Unparseable input is
/// `Malformed` and nothing from it is used.
///
/// feed-rs would invent ids for entries without one (a SipHash of link + title, or a
/// random UUID when there is no link — different on every poll, and its scheme changed
/// between feed-rs versions), so its generator is switched off and [`FeedItem::keys`] /
/// [`FeedItem::native_id`] derive our own from the entry's content.
pub fn parse_feed(body: &[u8]) -> Result<Vec<FeedItem>, PlatformError> {
    let parser = feed_rs::parser::Builder::new()
        .id_generator(|_links, _title, _uri| String::new())
        .sanitize_content(false)
        .build();
    let feed = parser.parse(body).map_err(|e| PlatformError::Malformed {
        platform: PLATFORM,
        detail: format!("not a valid RSS, Atom or JSON feed: {e}"),
    })?;
    let feed_lang = feed.language.as_deref().and_then(language_code);
    Ok(feed
        .entries
        .into_iter()
        .map(|entry| {
            let title = entry.title.as_ref().map(text_of).unwrap_or_default();
            let summary = entry.summary.as_ref().map(text_of).unwrap_or_default();
            let body = if summary.is_empty() {
                entry
                    .content
                    .as_ref()
                    .and_then(|c| {
                        c.body.as_deref().map(|b| {
                            if c.content_type.as_str().starts_with("text/plain") {
                                collapse_whitespace(b)
                            } else {
                                html_to_text(b)
                            }
                        })
                    })
                    .unwrap_or_default()
            } else {
                summary
            };
            let link = entry
                .links
                .iter()
                .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
                .or_else(|| entry.links.first())
                .map(|l| unwrap_redirect(l.href.trim()))
                .filter(|l| !l.is_empty());
            let date = entry
                .published
                .or(entry.updated)
                .and_then(|d| Timestamp::new(d.timestamp(), 0).ok());
            FeedItem {
                id: Some(entry.id.trim().to_owned()).filter(|id| !id.is_empty()),
                link,
                title,
                body,
                author: entry
                    .authors
                    .iter()
                    .filter_map(|p| p.name.as_deref().map(str::trim))
                    .find(|n| !n.is_empty())
                    .map(str::to_owned),
                date,
                lang: entry
                    .language
                    .as_deref()
                    .and_then(language_code)
                    .or_else(|| feed_lang.clone()),
            }
        })
        .collect())
}

/// Plain text of a feed text construct (Atom `type="html"` titles carry markup).
fn text_of(text: &feed_rs::model::Text) -> String {
    if text.content_type.as_str().starts_with("text/plain") {
        collapse_whitespace(&text.content)
    } else {
        html_to_text(&text.content)
    }
}

/// `en-US` → `en`; anything that is not a 2–3 letter primary tag is dropped.
fn language_code(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    ((2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_lowercase()))
        .then_some(primary)
}

/// Google Alerts links point at Google's redirector
/// (`https://www.google.com/url?rct=j&sa=t&url=<real>&ct=ga&…`); the real article URL is
/// its `url` parameter. Anything else is returned unchanged.
pub fn unwrap_redirect(link: &str) -> String {
    if let Ok(parsed) = Url::parse(link)
        && matches!(parsed.host_str(), Some("www.google.com" | "google.com"))
        && parsed.path() == "/url"
        && let Some((_, real)) = parsed.query_pairs().find(|(k, _)| k == "url" || k == "q")
        && Url::parse(&real).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return real.into_owned();
    }
    link.to_owned()
}

/// FNV-1a, 64 bit, over the parts separated by 0x1F (unit separator). Stable across Rust
/// versions and platforms, unlike `DefaultHasher`.
pub fn fnv1a64(parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash ^= 0x1f;
            hash = hash.wrapping_mul(PRIME);
        }
        for byte in part.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

fn clip_text(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", text[..end].trim_end()),
    }
}

fn header_value(v: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(v).ok()
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Feed servers answer errors with HTML pages, not messages meant for us: the status says it.
fn classify(status: StatusCode, headers: &HeaderMap, now: Timestamp) -> PlatformError {
    let reason = status.canonical_reason().unwrap_or_default();
    let message = match status {
        StatusCode::NOT_FOUND => "feed not found (HTTP 404 Not Found)".to_owned(),
        StatusCode::GONE => "feed removed for good (HTTP 410 Gone)".to_owned(),
        _ => format!("HTTP {} {reason}", status.as_u16())
            .trim_end()
            .to_owned(),
    };
    http::classify_status(PLATFORM, status, headers, message, now)
}

/// Reads the body, refusing one larger than `max` bytes without buffering it whole.
async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, PlatformError> {
    let too_large = || PlatformError::Malformed {
        platform: PLATFORM,
        detail: format!("feed is larger than {} MiB", max / (1024 * 1024)),
    };
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| http::transport_error(PLATFORM, &e, true))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(&[""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&["a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&["foobar"]), 0x8594_4171_f739_67e8);
        assert_ne!(fnv1a64(&["ab", "c"]), fnv1a64(&["a", "bc"]));
    }

    #[test]
    fn given_a_google_alerts_link_when_unwrapped_then_the_article_url() {
        assert_eq!(
            unwrap_redirect(
                "https://www.google.com/url?rct=j&sa=t&url=https://news.example.com/launch&ct=ga&cd=CAIyGjUw&usg=AOvVaw0"
            ),
            "https://news.example.com/launch"
        );
        assert_eq!(
            unwrap_redirect(
                "https://www.google.com/url?rct=j&sa=t&url=https%3A%2F%2Fblog.example.org%2Fp%3Fid%3D7%26x%3D1&ct=ga"
            ),
            "https://blog.example.org/p?id=7&x=1"
        );
        // Not a redirect, or a redirect to something that is not a web page: unchanged.
        for link in [
            "https://news.example.com/launch",
            "https://www.google.com/search?q=x",
            "https://www.google.com/url?url=javascript:alert(1)",
        ] {
            assert_eq!(unwrap_redirect(link), link);
        }
    }

    #[test]
    fn given_language_tags_when_reduced_then_primary_subtag() {
        assert_eq!(language_code("en-US").as_deref(), Some("en"));
        assert_eq!(language_code("de").as_deref(), Some("de"));
        assert_eq!(language_code("english"), None);
        assert_eq!(language_code(""), None);
    }

    #[test]
    fn given_long_text_when_clipped_then_ends_with_an_ellipsis() {
        assert_eq!(clip_text("abcdef", 3), "abc…");
        assert_eq!(clip_text("abc", 3), "abc");
        assert_eq!(clip_text("ééé", 2), "éé…");
    }
}
