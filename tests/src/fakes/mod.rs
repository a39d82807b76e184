//! Simulated platforms for end-to-end tests: stateful wiremock servers that serve what was
//! "posted" so far, with the paging and caching behaviour of the real APIs, and (for the
//! publishing platforms) their idempotency guards and injectable faults.

mod bluesky;
pub mod facebook;
mod faults;
pub mod linkedin;
mod mastodon;
pub mod reddit;
pub mod x;
pub mod youtube;

pub use bluesky::{BLUESKY_APP_PASSWORD, BLUESKY_DID, BLUESKY_HANDLE, FakePds};
pub use faults::Fault;
pub use mastodon::{CreatedStatus, FakeMastodon, MASTODON_TOKEN};

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Hacker News' Algolia API: `search_by_date` with `numericFilters=created_at_i>=X`,
/// newest first, paged by `page`/`hitsPerPage`.
pub struct FakeHackerNews {
    pub server: MockServer,
    hits: Arc<Mutex<Vec<serde_json::Value>>>,
}

struct AlgoliaSearch(Arc<Mutex<Vec<serde_json::Value>>>);

impl Respond for AlgoliaSearch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let param = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let mut lower = i64::MIN;
        let mut upper = i64::MAX;
        for filter in param("numericFilters").unwrap_or_default().split(',') {
            if let Some(v) = filter.strip_prefix("created_at_i>=") {
                lower = v.parse().unwrap_or(lower);
            } else if let Some(v) = filter.strip_prefix("created_at_i>") {
                lower = v.parse::<i64>().map(|x| x + 1).unwrap_or(lower);
            } else if let Some(v) = filter.strip_prefix("created_at_i<=") {
                upper = v.parse().unwrap_or(upper);
            } else if let Some(v) = filter.strip_prefix("created_at_i<") {
                upper = v.parse::<i64>().map(|x| x - 1).unwrap_or(upper);
            }
        }
        let per_page: usize = param("hitsPerPage")
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        let page: usize = param("page").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut matching: Vec<serde_json::Value> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|h| {
                let t = h["created_at_i"].as_i64().unwrap_or(0);
                t >= lower && t <= upper
            })
            .cloned()
            .collect();
        matching.sort_by_key(|h| std::cmp::Reverse(h["created_at_i"].as_i64().unwrap_or(0)));
        let nb_pages = matching.len().div_ceil(per_page.max(1));
        let hits: Vec<_> = matching
            .into_iter()
            .skip(page * per_page)
            .take(per_page)
            .collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "hits": hits, "page": page, "nbPages": nb_pages, "hitsPerPage": per_page,
            "nbHits": hits.len(), "processingTimeMS": 1, "query": param("query").unwrap_or_default()
        }))
    }
}

impl FakeHackerNews {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let hits = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("GET"))
            .and(path("/api/v1/search_by_date"))
            .respond_with(AlgoliaSearch(hits.clone()))
            .mount(&server)
            .await;
        FakeHackerNews { server, hits }
    }

    /// A comment by `author` on the story `story_title`.
    pub fn comment_by(&self, id: &str, author: &str, story_title: &str, text: &str, at: Timestamp) {
        self.hits.lock().unwrap().push(serde_json::json!({
            "objectID": id, "created_at": at.to_string(), "created_at_i": at.as_second(),
            "author": author, "comment_text": text, "story_id": 1, "story_title": story_title,
            "parent_id": 1, "points": null, "num_comments": null, "_tags": ["comment"]
        }));
    }

    /// A comment with this id, text and time.
    pub fn comment(&self, id: &str, text: &str, at: Timestamp) {
        self.hits.lock().unwrap().push(serde_json::json!({
            "objectID": id, "created_at": at.to_string(), "created_at_i": at.as_second(),
            "author": "hn_user", "comment_text": text, "story_id": 1, "story_title": "Show HN: Hark",
            "parent_id": 1, "points": null, "num_comments": null, "_tags": ["comment"]
        }));
    }
}

/// An RSS feed with ETag support: `If-None-Match` with the current ETag gets a 304.
pub struct FakeFeed {
    pub server: MockServer,
    items: Arc<Mutex<Vec<(String, String)>>>,
}

struct Feed(Arc<Mutex<Vec<(String, String)>>>);

impl Respond for Feed {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let items = self.0.lock().unwrap().clone();
        let etag = format!("\"v{}\"", items.len());
        if request
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == etag)
        {
            return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
        }
        let body: String = items
            .iter()
            .map(|(guid, title)| {
                format!(
                    "<item><title>{title}</title><link>https://vendor.example/{guid}</link>\
                     <guid isPermaLink=\"false\">{guid}</guid><description>&lt;p&gt;{title} — hark&lt;/p&gt;</description></item>"
                )
            })
            .collect();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
             <title>Vendor</title><link>https://vendor.example/</link><description>d</description>{body}</channel></rss>"
        );
        ResponseTemplate::new(200)
            .insert_header("ETag", etag.as_str())
            .insert_header("Content-Type", "application/rss+xml")
            .set_body_string(xml)
    }
}

impl FakeFeed {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let items = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("GET"))
            .and(path("/feed.xml"))
            .respond_with(Feed(items.clone()))
            .mount(&server)
            .await;
        FakeFeed { server, items }
    }

    pub fn publish(&self, guid: &str, title: &str) {
        self.items
            .lock()
            .unwrap()
            .insert(0, (guid.to_owned(), title.to_owned()));
    }

    pub fn url(&self) -> String {
        format!("{}/feed.xml", self.server.uri())
    }
}
