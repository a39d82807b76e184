//! LinkedIn: publishing posts to a member's or an organization's feed with the Posts API
//! (`POST /rest/posts`). LinkedIn has no keyword search, so there is no listener.
//!
//! Quirks handled here (`platform-apis.md` §7, learn.microsoft.com
//! `linkedin/marketing/community-management/shares/posts-api`):
//! - Every call needs `Linkedin-Version: YYYYMM` ([`API_VERSION`], one constant: versions
//!   are sunset about a year after release, then LinkedIn answers 426) and
//!   `X-Restli-Protocol-Version: 2.0.0`.
//! - A create answers **201 Created with an empty body**; the post's URN is in the
//!   `x-restli-id` header.
//! - `commentary` is in the "little" text format: the reserved characters
//!   `| { } @ [ ] ( ) < > # \ * _ ~` must be backslash-escaped or the post is refused or
//!   mangled ([`escape_little_text`]). Hashtags and mentions are therefore sent as plain
//!   text.
//! - Errors are `{"status":422,"serviceErrorCode":…,"code":"…","message":"…"}`; throttling
//!   is a 429 without rate-limit headers (daily quotas reset at midnight UTC).
//! - There is no idempotency guard: a create that may have reached LinkedIn is
//!   `Ambiguous`, settled by [`Publisher::find_published`].

use std::sync::Arc;

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::http::{self, HttpClient};
use super::{Lookup, OutgoingPost, PlatformError, Published, Publisher};
use crate::clock::Clock;
use crate::domain::{Platform, Secret};
use crate::rules;

const PLATFORM: Platform = Platform::Linkedin;

/// Where the API lives unless a channel names another `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.linkedin.com";
/// The versioned API path under the base URL.
const API_PATH: [&str; 2] = ["rest", "posts"];
/// The `Linkedin-Version` sent with every call. Monthly versions are supported for about a
/// year; bump this when LinkedIn announces the sunset of this one.
pub const API_VERSION: &str = "202601";
/// `X-Restli-Protocol-Version`.
pub const RESTLI_PROTOCOL_VERSION: &str = "2.0.0";
/// Posts per page when reading the account's posts back.
pub const FINDER_PAGE_SIZE: usize = 50;
/// Pages `find_published` reads at most.
const MAX_LOOKUP_PAGES: usize = 10;
/// The longest article title we send (the first line of the text).
const MAX_ARTICLE_TITLE_CHARS: usize = 200;
const MAX_ERROR_CHARS: usize = 300;

/// The characters the little text format reserves
/// (<https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/little-text-format>).
pub const RESERVED: [char; 15] = [
    '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '\\', '*', '_', '~',
];

/// Escapes `text` for `commentary`: a backslash before every reserved character, so the
/// post shows exactly `text`.
pub fn escape_little_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if RESERVED.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inverse of [`escape_little_text`]: what a reader sees of an escaped commentary
/// (a backslash makes the next character literal).
pub fn unescape_little_text(commentary: &str) -> String {
    let mut out = String::with_capacity(commentary.len());
    let mut chars = commentary.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Publishes posts as one member or organization.
///
/// Channel fields: `account` = the author URN (`urn:li:organization:5515715` or
/// `urn:li:person:…`), `token` = a 3-legged OAuth access token with `w_organization_social`
/// (or `w_member_social`), plus `r_organization_social` (or `r_member_social`) for
/// `find_published`; `base_url` = [`DEFAULT_BASE_URL`] when unset. Tokens last about 60
/// days and are not refreshed here: a refused token is `AuthExpired`.
pub struct LinkedInPublisher {
    http: HttpClient,
    base_url: String,
    author: String,
    token: Secret,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LinkedInPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedInPublisher")
            .field("base_url", &self.base_url)
            .field("author", &self.author)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl LinkedInPublisher {
    /// `author`: the channel's `account` (a person or organization URN); `token`: the
    /// channel's access token.
    pub fn new(
        http: HttpClient,
        author: impl Into<String>,
        token: Secret,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LinkedInPublisher {
            http,
            base_url: DEFAULT_BASE_URL.to_owned(),
            author: author.into().trim().to_owned(),
            token,
            clock,
        }
    }

    /// Another API host (tests, proxies).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    fn check_author(&self) -> Result<(), PlatformError> {
        let ok = ["urn:li:organization:", "urn:li:person:"].iter().any(|p| {
            self.author
                .strip_prefix(p)
                .is_some_and(|id| !id.is_empty() && !id.contains(char::is_whitespace))
        });
        if ok {
            Ok(())
        } else {
            Err(PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: format!(
                    "the channel's account `{}` is not an author URN (urn:li:organization:<id> or urn:li:person:<id>)",
                    http::clip(&self.author, 80)
                ),
            })
        }
    }

    fn with_headers(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, PlatformError> {
        Ok(request
            .header(AUTHORIZATION, bearer(&self.token)?)
            .header("Linkedin-Version", API_VERSION)
            .header("X-Restli-Protocol-Version", RESTLI_PROTOCOL_VERSION))
    }

    async fn endpoint(&self) -> Result<Url, PlatformError> {
        let base = self.http.checked_url(PLATFORM, &self.base_url).await?;
        api_url(&base)
    }
}

/// The JSON body of a create for `post` by `author`.
pub fn post_body(author: &str, post: &OutgoingPost) -> serde_json::Value {
    let link = post
        .link
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let mut body = serde_json::json!({
        "author": author,
        "commentary": commentary(post),
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false,
    });
    if let Some(link) = link {
        // An article post: the link becomes a card; `title` is required by the schema.
        let first_line = post.text.trim().lines().next().unwrap_or_default().trim();
        let title: String = if first_line.is_empty() {
            link.to_owned()
        } else {
            first_line.chars().take(MAX_ARTICLE_TITLE_CHARS).collect()
        };
        body["content"] = serde_json::json!({ "article": { "source": link, "title": title } });
    }
    body
}

/// The `commentary` sent for `post`: its text, escaped. A link goes in the article card,
/// not in the text.
pub fn commentary(post: &OutgoingPost) -> String {
    escape_little_text(post.text.trim())
}

#[async_trait::async_trait]
impl Publisher for LinkedInPublisher {
    async fn publish(
        &self,
        post: &OutgoingPost,
        _idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        self.check_author()?;
        // The limit counts what readers see; the escapes are not shown.
        rules::check_text(PLATFORM, &post.text, None, None).map_err(|e| {
            PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: e.to_string(),
            }
        })?;
        let request = self.with_headers(
            self.http
                .client()
                .post(self.endpoint().await?)
                .json(&post_body(&self.author, post)),
        )?;
        // No idempotency guard: a failure after sending is ambiguous.
        let answer = http::exchange(PLATFORM, request, false).await?;
        interpret_create(
            answer.status,
            &answer.headers,
            &answer.body,
            self.clock.now(),
        )
    }

    /// Reads the author's posts (`GET /rest/posts?q=author&sortBy=CREATED`, newest first),
    /// paging with `start`/`count` until one is older than `since`, and looks for one whose
    /// `commentary` is exactly the escaped text [`LinkedInPublisher::publish`] sends.
    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        self.check_author()?;
        let wanted = commentary(post);
        let endpoint = self.endpoint().await?;
        for page in 0..MAX_LOOKUP_PAGES {
            let start = (page * FINDER_PAGE_SIZE).to_string();
            let count = FINDER_PAGE_SIZE.to_string();
            let request = self.with_headers(
                self.http
                    .client()
                    .get(endpoint.clone())
                    .query(&[
                        ("author", self.author.as_str()),
                        ("q", "author"),
                        ("count", &count),
                        ("start", &start),
                        ("sortBy", "CREATED"),
                    ])
                    // Finders are called with the Rest.li method named (posts-api "Find
                    // Posts by Authors").
                    .header("X-RestLi-Method", "FINDER"),
            )?;
            let answer = http::exchange(PLATFORM, request, true).await?;
            if !(200..300).contains(&answer.status) {
                return Err(classify(
                    answer.status,
                    &answer.headers,
                    &answer.body,
                    self.clock.now(),
                ));
            }
            let elements = parse_posts(&answer.body)?;
            for element in &elements {
                if element.created_at().is_some_and(|t| t < since) {
                    return Ok(Lookup::NotFound);
                }
                if element.commentary.as_deref() == Some(wanted.as_str()) {
                    return Ok(Lookup::Found(Published {
                        url: Some(post_url(&element.id)),
                        platform_id: element.id.clone(),
                    }));
                }
            }
            if elements.len() < FINDER_PAGE_SIZE {
                return Ok(Lookup::NotFound);
            }
        }
        tracing::warn!(platform = %PLATFORM, "more posts since the attempt than find_published reads; cannot tell");
        Ok(Lookup::Unsupported)
    }
}

/// A post as the finder returns it: only the fields Hark reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LinkedInPost {
    /// The URN (`urn:li:share:…` or `urn:li:ugcPost:…`).
    pub id: String,
    #[serde(default)]
    pub commentary: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(rename = "createdAt", default)]
    pub created_at_ms: Option<i64>,
    #[serde(rename = "publishedAt", default)]
    pub published_at_ms: Option<i64>,
}

impl LinkedInPost {
    fn created_at(&self) -> Option<Timestamp> {
        self.created_at_ms
            .or(self.published_at_ms)
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
    }
}

/// Parses a finder page (`{"paging":{…},"elements":[…]}`). Anything else is `Malformed`.
pub fn parse_posts(body: &[u8]) -> Result<Vec<LinkedInPost>, PlatformError> {
    #[derive(Deserialize)]
    struct Page {
        elements: Vec<LinkedInPost>,
    }
    let page: Page = serde_json::from_slice(body).map_err(|e| PlatformError::Malformed {
        platform: PLATFORM,
        detail: format!("posts page is not the documented JSON: {e}"),
    })?;
    Ok(page.elements)
}

/// The web URL of a post.
pub fn post_url(urn: &str) -> String {
    format!("https://www.linkedin.com/feed/update/{urn}/")
}

/// Interprets the answer to `POST /rest/posts` (exposed for property tests): **201 with an
/// empty body** and the URN in `x-restli-id`. A 2xx without a usable URN is `Ambiguous`
/// (the post may exist).
pub fn interpret_create(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Published, PlatformError> {
    if !(200..300).contains(&status) {
        return Err(classify(status, headers, body, now));
    }
    let urn = headers
        .get("x-restli-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| v.starts_with("urn:li:"));
    match urn {
        Some(urn) => Ok(Published {
            platform_id: urn.to_owned(),
            url: Some(post_url(urn)),
        }),
        None => Err(PlatformError::Ambiguous {
            platform: PLATFORM,
            reason: format!("HTTP {status} without an x-restli-id header; the post may exist"),
        }),
    }
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(rename = "serviceErrorCode", default)]
    service_error_code: Option<i64>,
}

/// Classifies an error answer: 401 `AuthExpired`, 429 and 5xx `Retryable` (after
/// `Retry-After` when sent; LinkedIn documents no rate-limit headers), everything else
/// `Permanent` with LinkedIn's `code` and `message` (a 426 names a sunset version).
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: Timestamp) -> PlatformError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match serde_json::from_slice::<ApiError>(body) {
        Ok(err) if err.message.is_some() || err.code.is_some() => {
            let mut words = [err.code, err.message]
                .into_iter()
                .flatten()
                .filter(|w| !w.trim().is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            if let Some(code) = err.service_error_code {
                words.push_str(&format!(" (serviceErrorCode {code})"));
            }
            http::clip(&words, MAX_ERROR_CHARS)
        }
        _ => {
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
    };
    http::classify_status(PLATFORM, status, headers, message, now)
}

/// `Authorization: Bearer …` ([`http::bearer`]).
fn bearer(token: &Secret) -> Result<HeaderValue, PlatformError> {
    http::bearer(PLATFORM, token)
}

fn api_url(base: &Url) -> Result<Url, PlatformError> {
    http::api_url(PLATFORM, base, &API_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_reserved_characters_when_escaping_then_each_gets_one_backslash() {
        assert_eq!(
            escape_little_text("Sample text post #rust"),
            "Sample text post \\#rust"
        );
        assert_eq!(
            escape_little_text("a|b{c}d@e[f]g(h)i<j>k#l\\m*n_o~p"),
            "a\\|b\\{c\\}d\\@e\\[f\\]g\\(h\\)i\\<j\\>k\\#l\\\\m\\*n\\_o\\~p"
        );
        assert_eq!(escape_little_text("Grüße 🦀"), "Grüße 🦀");
    }

    #[test]
    fn given_a_link_when_building_the_body_then_an_article_card_is_added() {
        let body = post_body(
            "urn:li:organization:5515715",
            &OutgoingPost {
                text: "Hark 1.0 (finally)\nmore".into(),
                link: Some("https://example.com/hark".into()),
            },
        );
        assert_eq!(body["commentary"], "Hark 1.0 \\(finally\\)\nmore");
        assert_eq!(
            body["content"],
            serde_json::json!({"article": {"source": "https://example.com/hark", "title": "Hark 1.0 (finally)"}})
        );
        assert_eq!(body["lifecycleState"], "PUBLISHED");
    }

    #[test]
    fn given_a_sunset_version_answer_then_permanent_with_linkedins_words() {
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let e = classify(
            426,
            &HeaderMap::new(),
            br#"{"status":426,"code":"NONEXISTENT_VERSION","message":"Requested version 202401 is not active"}"#,
            now,
        );
        assert_eq!(
            e.to_string(),
            "linkedin rejected the request (HTTP 426): NONEXISTENT_VERSION: Requested version 202401 is not active"
        );
    }
}
