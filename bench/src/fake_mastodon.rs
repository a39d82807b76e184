//! A fake Mastodon instance on loopback: every hashtag-timeline request answers with
//! `per_page` statuses nobody has seen (ids from one counter, newest first), and
//! `POST /api/v1/statuses` creates a status. The texts are real short social texts (the
//! VADER paper's tweets and the German training sentences, see [`corpus`]), so language
//! detection, sentiment and campaign matching do their real work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::corpus::Corpus;
use crate::http::{self, Request, Response};

/// Where the fake runs and what it has served.
pub struct FakeMastodon {
    pub base_url: String,
    state: Arc<State>,
}

struct State {
    corpus: Arc<Corpus>,
    per_page: AtomicUsize,
    next_id: AtomicU64,
    served: AtomicU64,
    created: AtomicU64,
    requests: AtomicU64,
}

impl FakeMastodon {
    pub async fn start(corpus: Arc<Corpus>, per_page: usize) -> std::io::Result<Self> {
        let state = Arc::new(State {
            corpus,
            per_page: AtomicUsize::new(per_page),
            next_id: AtomicU64::new(114_000_000_000_000_000),
            served: AtomicU64::new(0),
            created: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let s = state.clone();
        let addr = http::serve(Arc::new(move |req| {
            let s = s.clone();
            http::boxed(async move { handle(&s, &req) })
        }))
        .await?;
        Ok(FakeMastodon {
            base_url: format!("http://{addr}"),
            state,
        })
    }

    /// Statuses served on timelines so far.
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::Relaxed)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Statuses created through the API so far.
    pub fn created(&self) -> u64 {
        self.state.created.load(Ordering::Relaxed)
    }

    /// A page of `n` fresh statuses as the timeline serves it (for parse-only figures).
    pub fn page(&self, n: usize) -> Vec<u8> {
        page(&self.state, n)
    }
}

fn handle(state: &State, req: &Request) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.path();
    if req.method == "GET" && path.starts_with("/api/v1/timelines/tag/") {
        let limit = req
            .query("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(20);
        let n = state.per_page.load(Ordering::Relaxed).min(limit);
        return Response::json(200, page(state, n));
    }
    if req.method == "POST" && path == "/api/v1/statuses" {
        state.created.fetch_add(1, Ordering::Relaxed);
        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
        let text = form_value(&req.body, "status").unwrap_or_default();
        let body = json!({
            "id": id.to_string(),
            "created_at": Timestamp::now().to_string(),
            "uri": format!("https://mastodon.example/users/brand/statuses/{id}"),
            "url": format!("https://mastodon.example/@brand/{id}"),
            "content": format!("<p>{}</p>", escape(&text)),
            "visibility": "public",
            "account": { "id": "1", "username": "brand", "acct": "brand" },
        });
        return Response::json(200, body.to_string());
    }
    Response::json(404, r#"{"error":"Record not found"}"#)
}

fn page(state: &State, n: usize) -> Vec<u8> {
    let first = state.next_id.fetch_add(n as u64, Ordering::Relaxed);
    state.served.fetch_add(n as u64, Ordering::Relaxed);
    let now = Timestamp::now();
    // Newest first, as Mastodon serves a `min_id` page.
    let statuses: Vec<Value> = (0..n as u64)
        .rev()
        .map(|i| status(&state.corpus, first + i, now))
        .collect();
    serde_json::to_vec(&statuses).unwrap_or_default()
}

fn status(corpus: &Corpus, id: u64, now: Timestamp) -> Value {
    let (text, lang) = corpus.pick(id as usize);
    let user = format!("user{}", id % 997);
    // Hashtags as the tag timeline would have them: every status carries the listened tag,
    // some also a campaign keyword.
    let mut html = format!("<p>{}</p><p>", escape(text));
    if id.is_multiple_of(2) {
        html.push_str("<a href=\"https://mastodon.example/tags/hark\" class=\"mention hashtag\" rel=\"tag\">#<span>hark</span></a> ");
    }
    if id.is_multiple_of(3) {
        html.push_str("<a href=\"https://mastodon.example/tags/rustlang\" class=\"mention hashtag\" rel=\"tag\">#<span>rustlang</span></a>");
    }
    html.push_str("</p>");
    json!({
        "id": id.to_string(),
        "created_at": now.to_string(),
        "in_reply_to_id": null,
        "sensitive": false,
        "spoiler_text": "",
        "visibility": "public",
        "language": lang,
        "uri": format!("https://remote.example/users/{user}/statuses/{id}"),
        "url": format!("https://remote.example/@{user}/{id}"),
        "replies_count": id % 5,
        "reblogs_count": id % 11,
        "favourites_count": id % 37,
        "content": html,
        "account": {
            "id": (id % 997).to_string(),
            "username": user,
            "acct": format!("{user}@remote.example"),
            "display_name": format!("User {}", id % 997),
            "url": format!("https://remote.example/@{user}"),
            "bot": false,
            "followers_count": (id % 997) * 131,
            "following_count": 10,
            "statuses_count": 100,
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [{ "name": "hark", "url": "https://mastodon.example/tags/hark" }],
        "emojis": [],
        "reblog": null,
        "card": null,
        "poll": null,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A field of a form or JSON body (the publisher may send either).
fn form_value(body: &[u8], name: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v.get(name).and_then(Value::as_str).map(str::to_owned);
    }
    let text = String::from_utf8_lossy(body);
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.replace('+', " "))
    })
}
