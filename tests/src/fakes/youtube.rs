//! The YouTube Data API v3 for listening (`platform-apis.md` §8):
//! - `GET /youtube/v3/search?part=snippet&type=video&order=date`: `q` (terms ANDed, `|`
//!   between alternatives, `"phrases"`), `publishedAfter`/`publishedBefore` (RFC 3339,
//!   inclusive), `channelId`, `maxResults` (default 5, at most 50), `pageToken` /
//!   `nextPageToken`; titles and descriptions HTML-escaped like the real snippets;
//! - `GET /youtube/v3/commentThreads?part=snippet&videoId=…&order=time`: newest first,
//!   `maxResults` (default 20, at most 100), `pageToken`; `commentsDisabled` (403) and
//!   `videoNotFound` (404);
//! - the `key` checked: 400 "API key not valid" (`API_KEY_INVALID`);
//! - quota accounting — search 100 units, commentThreads 1 — against the fake's own daily
//!   budget: when spent, 403 `quotaExceeded` (nothing charged) until
//!   [`FakeYouTube::reset_quota`].
//!
//! Not reproduced: relevance ranking, search index lag, replies, the Pacific-midnight reset
//! on its own (tests call `reset_quota`), `rateLimitExceeded` bursts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The API key accepted unless told otherwise.
pub const YOUTUBE_API_KEY: &str = "AIzaSyFakeKey-0123456789abcdefghijkl";
/// A project's default daily quota.
pub const YOUTUBE_DAILY_QUOTA: u64 = 10_000;

const SEARCH_COST: u64 = 100;
const COMMENT_THREADS_COST: u64 = 1;

struct Video {
    id: String,
    title: String,
    description: String,
    channel_id: String,
    published: Timestamp,
}

struct YouTubeState {
    key: String,
    videos: Vec<Video>,
    comments: HashMap<String, Vec<(String, String, Timestamp)>>,
    disabled: HashSet<String>,
    quota: u64,
    used: u64,
    calls: HashMap<&'static str, usize>,
}

/// YouTube served by wiremock.
pub struct FakeYouTube {
    pub server: MockServer,
    state: Arc<Mutex<YouTubeState>>,
}

fn param(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// search.list snippets come HTML-escaped [obs].
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn google_error(status: u16, reason: &str, domain: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": { "code": status, "message": message,
                   "errors": [{ "message": message, "domain": domain, "reason": reason }] }
    }))
}

fn key_invalid() -> ResponseTemplate {
    let message = "API key not valid. Please pass a valid API key.";
    ResponseTemplate::new(400).set_body_json(json!({
        "error": { "code": 400, "message": message,
                   "errors": [{ "message": message, "domain": "global", "reason": "badRequest" }],
                   "status": "INVALID_ARGUMENT",
                   "details": [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                 "reason": "API_KEY_INVALID", "domain": "googleapis.com" }] }
    }))
}

/// Whether `text` matches a `q`: alternatives split on `|`, each a set of terms (words or
/// `"phrases"`) that must all appear, case-insensitively; `-term` excludes.
fn matches_q(q: &str, text: &str) -> bool {
    let text = text.to_lowercase();
    q.split('|').any(|alternative| {
        let mut terms: Vec<(bool, String)> = Vec::new();
        for (i, part) in alternative.split('"').enumerate() {
            if i % 2 == 1 {
                terms.push((true, part.trim().to_lowercase()));
            } else {
                for word in part.split_whitespace() {
                    match word.strip_prefix('-') {
                        Some(excluded) => terms.push((false, excluded.to_lowercase())),
                        None => terms.push((true, word.to_lowercase())),
                    }
                }
            }
        }
        terms.iter().any(|(wanted, _)| *wanted)
            && terms
                .iter()
                .filter(|(_, t)| !t.is_empty())
                .all(|(wanted, t)| text.contains(t.as_str()) == *wanted)
    })
}

fn page_of<T: Clone>(
    items: &[T],
    request: &Request,
    default: usize,
    max: usize,
) -> (Vec<T>, Option<String>) {
    let size = param(request, "maxResults")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        .min(max);
    let offset = param(request, "pageToken")
        .and_then(|t| t.strip_prefix("CAUQ").and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0);
    let page: Vec<T> = items
        .iter()
        .skip(offset)
        .take(size.max(1))
        .cloned()
        .collect();
    let end = offset + page.len();
    (page, (end < items.len()).then(|| format!("CAUQ{end}")))
}

impl YouTubeState {
    /// Key and quota checks shared by every call; charges `cost` when the call may proceed.
    fn admit(
        &mut self,
        request: &Request,
        name: &'static str,
        cost: u64,
    ) -> Option<ResponseTemplate> {
        *self.calls.entry(name).or_default() += 1;
        if param(request, "key").as_deref() != Some(self.key.as_str()) {
            return Some(key_invalid());
        }
        if self.used + cost > self.quota {
            return Some(google_error(
                403,
                "quotaExceeded",
                "youtube.quota",
                "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
            ));
        }
        self.used += cost;
        None
    }

    fn search(&mut self, request: &Request) -> ResponseTemplate {
        if let Some(refused) = self.admit(request, "search", SEARCH_COST) {
            return refused;
        }
        let bound = |name: &str| param(request, name).and_then(|v| v.parse::<Timestamp>().ok());
        let (after, before) = (bound("publishedAfter"), bound("publishedBefore"));
        let q = param(request, "q").unwrap_or_default();
        let channel = param(request, "channelId");
        let mut found: Vec<&Video> = self
            .videos
            .iter()
            .filter(|v| {
                after.is_none_or(|a| v.published >= a) && before.is_none_or(|b| v.published <= b)
            })
            .filter(|v| channel.as_deref().is_none_or(|c| c == v.channel_id))
            .filter(|v| {
                q.trim().is_empty() || matches_q(&q, &format!("{} {}", v.title, v.description))
            })
            .collect();
        found.sort_by(|a, b| (b.published, &b.id).cmp(&(a.published, &a.id)));
        let items: Vec<Value> = found
            .iter()
            .map(|v| {
                json!({
                    "kind": "youtube#searchResult", "etag": format!("e{}", v.id),
                    "id": { "kind": "youtube#video", "videoId": v.id },
                    "snippet": { "publishedAt": rfc3339(v.published), "channelId": v.channel_id,
                                 "title": escape(&v.title), "description": escape(&v.description),
                                 "channelTitle": "Some Channel", "liveBroadcastContent": "none",
                                 "publishTime": rfc3339(v.published) }
                })
            })
            .collect();
        let (page, next) = page_of(&items, request, 5, 50);
        let mut body = json!({
            "kind": "youtube#searchListResponse", "etag": "fake", "regionCode": "US",
            "pageInfo": { "totalResults": items.len(), "resultsPerPage": page.len() },
            "items": page,
        });
        if let Some(next) = next {
            body["nextPageToken"] = json!(next);
        }
        ResponseTemplate::new(200).set_body_json(body)
    }

    fn comment_threads(&mut self, request: &Request) -> ResponseTemplate {
        if let Some(refused) = self.admit(request, "commentThreads", COMMENT_THREADS_COST) {
            return refused;
        }
        let Some(video) = param(request, "videoId") else {
            return google_error(
                400,
                "missingRequiredParameter",
                "youtube.parameter",
                "No filter selected.",
            );
        };
        if !self.videos.iter().any(|v| v.id == video) {
            return google_error(
                404,
                "videoNotFound",
                "youtube.commentThread",
                "The video identified by the videoId parameter could not be found.",
            );
        }
        if self.disabled.contains(&video) {
            return google_error(
                403,
                "commentsDisabled",
                "youtube.commentThread",
                "The video identified by the videoId parameter has disabled comments.",
            );
        }
        let mut comments = self.comments.get(&video).cloned().unwrap_or_default();
        comments.sort_by(|a, b| (b.2, &b.0).cmp(&(a.2, &a.0)));
        let items: Vec<Value> = comments
            .iter()
            .map(|(id, text, at)| {
                json!({
                    "kind": "youtube#commentThread", "etag": format!("e{id}"), "id": id,
                    "snippet": { "channelId": "UCowner", "videoId": video,
                      "topLevelComment": { "kind": "youtube#comment", "id": id,
                        "snippet": { "videoId": video, "textDisplay": text, "textOriginal": text,
                                     "authorDisplayName": "@viewer", "authorChannelUrl": "http://www.youtube.com/@viewer",
                                     "authorChannelId": { "value": "UCviewer" }, "likeCount": 1,
                                     "publishedAt": rfc3339(*at), "updatedAt": rfc3339(*at) } },
                      "canReply": true, "totalReplyCount": 0, "isPublic": true }
                })
            })
            .collect();
        let (page, next) = page_of(&items, request, 20, 100);
        let mut body = json!({
            "kind": "youtube#commentThreadListResponse", "etag": "fake",
            "pageInfo": { "totalResults": items.len(), "resultsPerPage": page.len() },
            "items": page,
        });
        if let Some(next) = next {
            body["nextPageToken"] = json!(next);
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

struct Endpoint {
    state: Arc<Mutex<YouTubeState>>,
    search: bool,
}

impl Respond for Endpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.search {
            state.search(request)
        } else {
            state.comment_threads(request)
        }
    }
}

impl FakeYouTube {
    /// The API with [`YOUTUBE_DAILY_QUOTA`] units, accepting [`YOUTUBE_API_KEY`].
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(YouTubeState {
            key: YOUTUBE_API_KEY.to_owned(),
            videos: Vec::new(),
            comments: HashMap::new(),
            disabled: HashSet::new(),
            quota: YOUTUBE_DAILY_QUOTA,
            used: 0,
            calls: HashMap::new(),
        }));
        for (route, search) in [
            ("/youtube/v3/search", true),
            ("/youtube/v3/commentThreads", false),
        ] {
            Mock::given(method("GET"))
                .and(path(route))
                .respond_with(Endpoint {
                    state: state.clone(),
                    search,
                })
                .mount(&server)
                .await;
        }
        FakeYouTube { server, state }
    }

    fn state(&self) -> MutexGuard<'_, YouTubeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The base URL to give the client.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// A video is published (on channel `UCchannel`).
    pub fn video(&self, id: &str, title: &str, description: &str, at: Timestamp) {
        self.video_on("UCchannel", id, title, description, at);
    }

    pub fn video_on(&self, channel: &str, id: &str, title: &str, description: &str, at: Timestamp) {
        self.state().videos.push(Video {
            id: id.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            channel_id: channel.to_owned(),
            published: at,
        });
    }

    /// A top-level comment on a video.
    pub fn comment(&self, video: &str, id: &str, text: &str, at: Timestamp) {
        self.state()
            .comments
            .entry(video.to_owned())
            .or_default()
            .push((id.to_owned(), text.to_owned(), at));
    }

    /// The owner turns comments off on a video.
    pub fn disable_comments(&self, video: &str) {
        self.state().disabled.insert(video.to_owned());
    }

    /// The project's daily quota (units).
    pub fn set_quota(&self, units: u64) {
        self.state().quota = units;
    }

    /// Midnight Pacific: the quota is available again.
    pub fn reset_quota(&self) {
        self.state().used = 0;
    }

    /// Units charged so far.
    pub fn units_used(&self) -> u64 {
        self.state().used
    }

    /// Calls received by `search` or `commentThreads` (refused ones included).
    pub fn calls(&self, endpoint: &str) -> usize {
        self.state().calls.get(endpoint).copied().unwrap_or(0)
    }

    /// Revokes the key: every call answers 400 "API key not valid".
    pub fn revoke_key(&self) {
        self.state().key = "revoked".to_owned();
    }
}
