//! A Bluesky PDS (`platform-apis.md` §2.2–2.5), the way the publisher meets it. The one
//! fake for every Bluesky test: the hark-tests suites use it as a module, and the
//! hark-shared client tests include this file by `#[path]` (they cannot depend on
//! hark-tests), so the client tests and the end-to-end tests share one specification.
//! - `createSession` with the app password (401 `AuthenticationRequired` otherwise, and
//!   once the app password is revoked); the session's DID document names this server as
//!   the account's PDS; [`FakePds::issue_session`] hands out a session as an entryway would;
//! - access tokens that expire on demand and then answer **400 `ExpiredToken`** (not 401);
//!   forgotten (revoked) tokens answer **400 `InvalidToken`**; `refreshSession` rotates the
//!   pair and answers 400 `ExpiredToken` / `InvalidToken` for an expired / unknown refresh
//!   token;
//! - `createRecord` checks the post (300 graphemes, 3000 bytes, `createdAt`, at most 3
//!   valid `langs`, a TID record key, facet byte ranges on character boundaries and, as a
//!   test oracle stricter than the real PDS, covering exactly their feature's text) and
//!   answers a second create at an existing record key the way the real PDS does: the
//!   repository's MST insert throws and the client gets a bare **500 `InternalServerError`**;
//! - `getRecord` (400 `RecordNotFound`), `resolveHandle` over a directory of handles
//!   (400 `InvalidRequest` "Unable to resolve handle" for unknown ones);
//! - 429 `RateLimitExceeded` with `RateLimit-*` headers (`Reset` in unix seconds, on the
//!   fake's clock), either injected per record key ([`Fault::RateLimited`]) or account-wide
//!   while the write quota is spent ([`FakePds::spend_write_quota_until`]);
//! - creates that fail before anything is written ([`Fault::ServerError`]), whose answer
//!   comes too late ([`Fault::LoseResponse`]), or whose answer a proxy replaces with a 502
//!   after the commit ([`FakePds::answer_next_create_with_bad_gateway`]);
//! - `app.bsky.feed.searchPosts` for listening (§2.1): signed-in only, `sort=latest` by
//!   `sortAt` (the earlier of `createdAt` and `indexedAt`), `since` inclusive / `until`
//!   exclusive on `sortAt`, `limit` 1–100 (default 25), an offset `cursor`, `RateLimit-*`
//!   headers; every whitespace-separated term of `q` must occur in the text (case-folded),
//!   which is enough for the AND-only queries Hark sends; access tokens can be set to expire
//!   after a number of searches (then **400 `ExpiredToken`**).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hark_shared::clock::{Clock, SystemClock};
use jiff::Timestamp;
use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::faults::{Fault, FaultPlan};

pub const BLUESKY_DID: &str = "did:plc:u5cwb2mwiv2bfq53cjufe6yn";
pub const BLUESKY_HANDLE: &str = "brand.bsky.social";
pub const BLUESKY_APP_PASSWORD: &str = "hark-app-pass-9x7q";
const COLLECTION: &str = "app.bsky.feed.post";

struct PdsState {
    clock: Arc<dyn Clock>,
    endpoint: String,
    /// Access token → expired?
    access: HashMap<String, bool>,
    /// Refresh token → expired?
    refresh: HashMap<String, bool>,
    issued: u32,
    /// rkey → (cid, record)
    records: BTreeMap<String, (String, Value)>,
    /// Every `createRecord` that wrote a record, as (rkey, text): a second write at a key
    /// is impossible, so this list is the platform's view of "posts made".
    writes: Vec<(String, String)>,
    /// handle → DID, for `resolveHandle` and for checking mention facets.
    directory: HashMap<String, String>,
    /// The NSID of every call, in order.
    calls: Vec<String>,
    faults: FaultPlan,
    lost_response_delay: Duration,
    app_password_revoked: bool,
    /// The account's write quota is spent until then (on `clock`): every create answers 429.
    write_quota_reset: Option<Timestamp>,
    /// The next committed create is answered with a proxy's 502 instead of its result.
    bad_gateway_after_next_create: bool,
    /// Posts others made, as search returns them (postViews).
    feed: Vec<Value>,
    /// Searches left before every access token expires.
    searches_until_expiry: Option<usize>,
}

/// The fake PDS. Dropping it stops the server.
pub struct FakePds {
    pub server: MockServer,
    state: Arc<Mutex<PdsState>>,
}

impl FakePds {
    /// A PDS on the wall clock.
    pub async fn start() -> FakePds {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// A PDS whose rate-limit resets follow `clock`.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> FakePds {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(PdsState {
            clock,
            endpoint: server.uri(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            issued: 0,
            records: BTreeMap::new(),
            writes: Vec::new(),
            directory: HashMap::from([(BLUESKY_HANDLE.to_owned(), BLUESKY_DID.to_owned())]),
            calls: Vec::new(),
            faults: FaultPlan::default(),
            lost_response_delay: Duration::from_secs(2),
            app_password_revoked: false,
            write_quota_reset: None,
            bad_gateway_after_next_create: false,
            feed: Vec::new(),
            searches_until_expiry: None,
        }));
        Mock::given(path_regex("^/xrpc/"))
            .respond_with(Pds(state.clone()))
            .mount(&server)
            .await;
        FakePds { server, state }
    }

    fn state(&self) -> MutexGuard<'_, PdsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Queues `fault` for the next create at record key `rkey`.
    pub fn inject(&self, rkey: &str, fault: Fault) {
        self.state().faults.add(rkey, fault);
    }

    /// How long a lost response is held (longer than the client's timeout).
    pub fn set_lost_response_delay(&self, delay: Duration) {
        self.state().lost_response_delay = delay;
    }

    /// A session for the account that this PDS accepts, as an entryway (`bsky.social`)
    /// would issue it: its DID document names this server as the account's PDS.
    pub fn issue_session(&self) -> Value {
        issue(&mut self.state())
    }

    /// Another account `resolveHandle` knows (mention facets may then name `did`).
    pub fn register_handle(&self, handle: &str, did: &str) {
        self.state()
            .directory
            .insert(handle.to_owned(), did.to_owned());
    }

    /// Every access token issued so far is now expired (the 2-hour lifetime passed).
    pub fn expire_access_tokens(&self) {
        self.state().access.values_mut().for_each(|e| *e = true);
    }

    /// Every refresh token issued so far is now expired (the 90-day lifetime passed):
    /// `refreshSession` answers 400 `ExpiredToken` and only a new login helps.
    pub fn expire_refresh_tokens(&self) {
        self.state().refresh.values_mut().for_each(|e| *e = true);
    }

    /// Every session is forgotten (signed out elsewhere, or the PDS lost its session
    /// store): its tokens now answer 400 `InvalidToken`. The app password still works.
    pub fn revoke_sessions(&self) {
        let mut state = self.state();
        state.access.clear();
        state.refresh.clear();
    }

    /// The app password was deleted: sessions die, logins fail.
    pub fn revoke_app_password(&self) {
        self.revoke_sessions();
        self.state().app_password_revoked = true;
    }

    /// The account's write quota (5,000 points an hour) is spent: every create answers 429
    /// with `RateLimit-Reset: reset` until the fake's clock reaches `reset`.
    pub fn spend_write_quota_until(&self, reset: Timestamp) {
        self.state().write_quota_reset = Some(reset);
    }

    /// The next create that gets written is committed, but a proxy in front of the PDS
    /// answers 502 with an HTML page: the client cannot tell whether the post exists.
    pub fn answer_next_create_with_bad_gateway(&self) {
        self.state().bad_gateway_after_next_create = true;
    }

    /// The stored posts: rkey → record.
    pub fn records(&self) -> BTreeMap<String, Value> {
        self.state()
            .records
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    /// Every successful record write, as (rkey, text).
    pub fn writes(&self) -> Vec<(String, String)> {
        self.state().writes.clone()
    }

    /// Faults injected so far, as (rkey, fault).
    pub fn injected(&self) -> Vec<(String, Fault)> {
        self.state().faults.injected.clone()
    }

    /// How many times `nsid` was called.
    pub fn calls(&self, nsid: &str) -> usize {
        self.state().calls.iter().filter(|c| *c == nsid).count()
    }

    /// How many requests reached the PDS at all.
    pub fn total_calls(&self) -> usize {
        self.state().calls.len()
    }

    /// Someone (`handle`) posted `text` at `at` (created and indexed then): search finds it
    /// as `at://did:plc:<handle-derived>/app.bsky.feed.post/<rkey>`. Returns the at-uri.
    pub fn post(&self, rkey: &str, handle: &str, text: &str, at: Timestamp) -> String {
        self.post_indexed(rkey, handle, text, at, at)
    }

    /// Like [`FakePds::post`], with a client-chosen `createdAt` that differs from the
    /// AppView's `indexedAt` (late indexing, or a backdated record).
    pub fn post_indexed(
        &self,
        rkey: &str,
        handle: &str,
        text: &str,
        created_at: Timestamp,
        indexed_at: Timestamp,
    ) -> String {
        let did = format!(
            "did:plc:{}",
            handle.replace('.', "").chars().take(24).collect::<String>()
        );
        let uri = format!("at://{did}/{COLLECTION}/{rkey}");
        let stamp = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        self.state().feed.push(json!({
            "uri": uri,
            "cid": format!("bafyreifeed{rkey}"),
            "author": { "did": did, "handle": handle, "displayName": format!("Display {handle}"),
                        "labels": [], "createdAt": "2024-02-01T10:00:00.000Z" },
            "record": { "$type": COLLECTION, "text": text, "createdAt": stamp(created_at), "langs": ["en"] },
            "replyCount": 1, "repostCount": 2, "likeCount": 3, "quoteCount": 1,
            "indexedAt": stamp(indexed_at),
            "labels": [],
        }));
        uri
    }

    /// After `searches` more `searchPosts` calls, every access token expires (the next
    /// search answers 400 `ExpiredToken`).
    pub fn expire_access_tokens_after_searches(&self, searches: usize) {
        self.state().searches_until_expiry = Some(searches);
    }
}

struct Pds(Arc<Mutex<PdsState>>);

fn error(status: u16, name: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": name, "message": message }))
}

fn fixture_error(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

fn bearer(request: &Request) -> Option<String> {
    request
        .headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Respond for Pds {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let nsid = request.url.path().trim_start_matches("/xrpc/").to_owned();
        state.calls.push(nsid.clone());
        match nsid.as_str() {
            "com.atproto.server.createSession" => create_session(&mut state, request),
            "com.atproto.server.refreshSession" => refresh_session(&mut state, request),
            "com.atproto.repo.createRecord" => create_record(&mut state, request),
            "com.atproto.repo.getRecord" => get_record(&state, request),
            "app.bsky.feed.searchPosts" => search_posts(&mut state, request),
            "com.atproto.identity.resolveHandle" => {
                match query(request, "handle").and_then(|h| state.directory.get(&h).cloned()) {
                    Some(did) => ResponseTemplate::new(200).set_body_json(json!({ "did": did })),
                    None => error(400, "InvalidRequest", "Unable to resolve handle"),
                }
            }
            _ => error(501, "MethodNotImplemented", "Method Not Implemented"),
        }
    }
}

fn issue(state: &mut PdsState) -> Value {
    state.issued += 1;
    let access = format!("eyJhY2Nlc3MiOnRydWV9.{}.sig", state.issued);
    let refresh = format!("eyJyZWZyZXNoIjp0cnVlfQ.{}.sig", state.issued);
    state.access.insert(access.clone(), false);
    state.refresh.insert(refresh.clone(), false);
    json!({
        "did": BLUESKY_DID, "handle": BLUESKY_HANDLE, "email": "ops@example.com",
        "emailConfirmed": true, "active": true, "accessJwt": access, "refreshJwt": refresh,
        "didDoc": {
            "id": BLUESKY_DID,
            "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                          "serviceEndpoint": state.endpoint }],
        },
    })
}

fn create_session(state: &mut PdsState, request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    if body["identifier"] == BLUESKY_HANDLE
        && body["password"] == BLUESKY_APP_PASSWORD
        && !state.app_password_revoked
    {
        ResponseTemplate::new(200).set_body_json(issue(state))
    } else {
        fixture_error(
            401,
            include_str!("../../fixtures/bluesky/error_authentication_required.json"),
        )
    }
}

fn refresh_session(state: &mut PdsState, request: &Request) -> ResponseTemplate {
    let Some(token) = bearer(request) else {
        return error(401, "AuthenticationRequired", "Authentication Required");
    };
    match state.refresh.get(&token).copied() {
        None => fixture_error(
            400,
            include_str!("../../fixtures/bluesky/error_invalid_token.json"),
        ),
        Some(true) => fixture_error(
            400,
            include_str!("../../fixtures/bluesky/error_expired_token.json"),
        ),
        Some(false) => {
            // Refresh tokens rotate: the old one is spent.
            state.refresh.remove(&token);
            ResponseTemplate::new(200).set_body_json(issue(state))
        }
    }
}

/// `^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$` (checked per character, so
/// a non-ASCII key is refused rather than sliced mid-character).
fn is_tid(s: &str) -> bool {
    const ALPHABET: &str = "234567abcdefghijklmnopqrstuvwxyz";
    s.len() == 13
        && s.starts_with(|c: char| "234567abcdefghij".contains(c))
        && s.chars().all(|c| ALPHABET.contains(c))
}

/// 429 `RateLimitExceeded` with the PDS's `RateLimit-*` headers for the write quota.
fn rate_limited(reset: Timestamp) -> ResponseTemplate {
    fixture_error(
        429,
        include_str!("../../fixtures/bluesky/error_rate_limit.json"),
    )
    .insert_header("RateLimit-Limit", "5000")
    .insert_header("RateLimit-Remaining", "0")
    .insert_header("RateLimit-Reset", reset.as_second().to_string().as_str())
    .insert_header("RateLimit-Policy", "5000;w=3600")
}

fn create_record(state: &mut PdsState, request: &Request) -> ResponseTemplate {
    if let Some(refused) = refuse_access(state, request) {
        return refused;
    }
    // The write quota is charged per account before the handler runs.
    if let Some(reset) = state.write_quota_reset {
        if state.clock.now() < reset {
            return rate_limited(reset);
        }
        state.write_quota_reset = None;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return error(400, "InvalidRequest", "Input must be an object");
    };
    if body["repo"] != BLUESKY_DID {
        let repo = body["repo"].as_str().unwrap_or_default();
        return error(
            400,
            "InvalidRequest",
            &format!("Could not find repo: {repo}"),
        );
    }
    if body["collection"] != COLLECTION {
        // The real PDS stores any collection; this fake only knows posts.
        return error(400, "InvalidRequest", "Unexpected collection");
    }
    let Some(rkey) = body["rkey"]
        .as_str()
        .filter(|k| is_tid(k))
        .map(str::to_owned)
    else {
        return error(400, "InvalidRequest", "Invalid record key");
    };
    let fault = state.faults.take(&rkey);
    match fault {
        Some(Fault::ServerError) => {
            return fixture_error(
                500,
                include_str!("../../fixtures/bluesky/error_internal.json"),
            );
        }
        Some(Fault::RateLimited { reset_in }) => {
            return rate_limited(state.clock.now() + reset_in);
        }
        Some(Fault::LoseResponse) | None => {}
    }
    let record = body["record"].clone();
    if let Err(reason) = validate_post(&record, &state.directory) {
        return error(
            400,
            "InvalidRequest",
            &format!("Invalid app.bsky.feed.post record: {reason}"),
        );
    }
    if state.records.contains_key(&rkey) {
        // The MST insert throws "There is already a value at key", unmapped: a bare 500.
        return fixture_error(
            500,
            include_str!("../../fixtures/bluesky/error_internal.json"),
        );
    }
    let cid = format!("bafyreifake{:0>48}", state.records.len() + 1);
    let text = record["text"].as_str().unwrap_or_default().to_owned();
    state.records.insert(rkey.clone(), (cid.clone(), record));
    state.writes.push((rkey.clone(), text));
    if state.bad_gateway_after_next_create {
        state.bad_gateway_after_next_create = false;
        return ResponseTemplate::new(502)
            .set_body_raw("<html>502 Bad Gateway</html>", "text/html");
    }
    let response = ResponseTemplate::new(200).set_body_json(json!({
        "uri": format!("at://{BLUESKY_DID}/{COLLECTION}/{rkey}"),
        "cid": cid,
        "commit": { "cid": "bafyreihq3vmuxjd2djgbkp5ygxn5aat5ulqamo7gmvbnxvm4hlbh3wz7dm", "rev": "3lfqz7l2d4k2b" },
        "validationStatus": "valid",
    }));
    if fault == Some(Fault::LoseResponse) {
        response.set_delay(state.lost_response_delay)
    } else {
        response
    }
}

/// The lexicon checks of `app.bsky.feed.post`, plus (stricter than the real PDS, which
/// accepts any range) that each facet covers exactly the text its feature stands for: a
/// link facet its URI, a tag facet `#tag`, a mention facet `@handle` of the mentioned DID
/// in `directory`. A misplaced range would make the app link the wrong characters.
fn validate_post(record: &Value, directory: &HashMap<String, String>) -> Result<(), String> {
    if record["$type"] != COLLECTION {
        return Err("Record/$type must be app.bsky.feed.post".into());
    }
    let text = record["text"]
        .as_str()
        .ok_or("Record/text must be a string")?;
    if text.graphemes(true).count() > 300 {
        return Err("Record/text must not be longer than 300 graphemes".into());
    }
    if text.len() > 3000 {
        return Err("Record/text must not be longer than 3000 characters".into());
    }
    let created = record["createdAt"]
        .as_str()
        .ok_or("Record/createdAt must be a string")?;
    if !created.ends_with('Z') || created.parse::<Timestamp>().is_err() {
        return Err("Record/createdAt must be an valid atproto datetime".into());
    }
    if let Some(langs) = record.get("langs") {
        let langs = langs.as_array().ok_or("Record/langs must be an array")?;
        if langs.len() > 3 {
            return Err("Record/langs must not have more than 3 elements".into());
        }
        for (i, lang) in langs.iter().enumerate() {
            if !lang.as_str().is_some_and(is_language_tag) {
                return Err(format!("Record/langs/{i} must be a valid language code"));
            }
        }
    }
    let mut previous_end = 0;
    for (i, facet) in record["facets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let bound = |name: &str| {
            facet["index"][name]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(format!("Record/facets/{i}/index/{name}"))
        };
        let (start, end) = (bound("byteStart")?, bound("byteEnd")?);
        if start >= end || end > text.len() || start < previous_end {
            return Err(format!(
                "Record/facets/{i}/index is out of range or overlapping"
            ));
        }
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            return Err(format!(
                "Record/facets/{i}/index does not fall on character boundaries"
            ));
        }
        previous_end = end;
        let covered = &text[start..end];
        let feature = &facet["features"][0];
        let expected = match feature["$type"].as_str() {
            Some("app.bsky.richtext.facet#link") => feature["uri"].as_str().map(str::to_owned),
            Some("app.bsky.richtext.facet#tag") => {
                let tag = feature["tag"].as_str().unwrap_or_default();
                if tag.graphemes(true).count() > 64 || tag.len() > 640 {
                    return Err(format!(
                        "Record/facets/{i}/features/0/tag must not be longer than 64 graphemes"
                    ));
                }
                Some(format!("#{tag}"))
            }
            Some("app.bsky.richtext.facet#mention") => {
                let did = feature["did"].as_str().unwrap_or_default();
                directory
                    .iter()
                    .find(|(_, d)| *d == did)
                    .map(|(handle, _)| format!("@{handle}"))
            }
            _ => None,
        };
        if expected.as_deref() != Some(covered) {
            return Err(format!(
                "Record/facets/{i} covers {covered:?}, which does not match its feature {feature}"
            ));
        }
    }
    Ok(())
}

/// A BCP-47-shaped language tag: a 2–3 letter primary subtag, then alphanumeric subtags.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()))
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn get_record(state: &PdsState, request: &Request) -> ResponseTemplate {
    let rkey = query(request, "rkey").unwrap_or_default();
    let uri = format!("at://{BLUESKY_DID}/{COLLECTION}/{rkey}");
    match (query(request, "repo").as_deref(), state.records.get(&rkey)) {
        (Some(BLUESKY_DID), Some((cid, value))) => ResponseTemplate::new(200)
            .set_body_json(json!({ "uri": uri, "cid": cid, "value": value })),
        _ => error(
            400,
            "RecordNotFound",
            &format!("Could not locate record: {uri}"),
        ),
    }
}

/// The access token of `request`, checked: `Some` is the PDS's refusal.
fn refuse_access(state: &PdsState, request: &Request) -> Option<ResponseTemplate> {
    match bearer(request).map(|t| state.access.get(&t).copied()) {
        None => Some(error(
            401,
            "AuthenticationRequired",
            "Authentication Required",
        )),
        Some(None) => Some(fixture_error(
            400,
            include_str!("../../fixtures/bluesky/error_invalid_token.json"),
        )),
        Some(Some(true)) => Some(fixture_error(
            400,
            include_str!("../../fixtures/bluesky/error_expired_token.json"),
        )),
        Some(Some(false)) => None,
    }
}

/// `sortAt`: the earlier of `record.createdAt` and `indexedAt`.
fn sort_at(post: &Value) -> Timestamp {
    let indexed: Timestamp = post["indexedAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    post["record"]["createdAt"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(indexed, |c| c.min(indexed))
}

fn search_posts(state: &mut PdsState, request: &Request) -> ResponseTemplate {
    if let Some(left) = state.searches_until_expiry {
        if left == 0 {
            state.access.values_mut().for_each(|e| *e = true);
            state.searches_until_expiry = None;
        } else {
            state.searches_until_expiry = Some(left - 1);
        }
    }
    if let Some(refused) = refuse_access(state, request) {
        return refused;
    }
    let Some(q) = query(request, "q").filter(|q| !q.trim().is_empty()) else {
        return error(
            400,
            "InvalidRequest",
            "Error: Params must have the property \"q\"",
        );
    };
    let limit = match query(request, "limit").map(|l| l.parse::<usize>()) {
        None => 25,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return error(400, "InvalidRequest", "limit must be between 1 and 100"),
    };
    let bound = |name: &str| -> Result<Option<Timestamp>, String> {
        match query(request, name) {
            None => Ok(None),
            Some(v) => v
                .parse::<Timestamp>()
                .map(Some)
                .map_err(|_| format!("{name} must be a valid datetime")),
        }
    };
    let (since, until) = match (bound("since"), bound("until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return error(400, "InvalidRequest", &e),
    };
    let offset: usize = query(request, "cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let terms: Vec<String> = q
        .split_whitespace()
        .map(|t| t.trim_matches('"').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut hits: Vec<&Value> = state
        .feed
        .iter()
        .filter(|p| {
            let text = p["record"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            let t = sort_at(p);
            terms.iter().all(|term| text.contains(term.as_str()))
                && since.is_none_or(|s| t >= s)
                && until.is_none_or(|u| t < u)
        })
        .collect();
    hits.sort_by(|a, b| (sort_at(b), b["uri"].as_str()).cmp(&(sort_at(a), a["uri"].as_str())));
    let total = hits.len();
    let page: Vec<Value> = hits.into_iter().skip(offset).take(limit).cloned().collect();
    let mut body = json!({ "hitsTotal": total, "posts": page });
    if offset + limit < total {
        body["cursor"] = json!((offset + limit).to_string());
    }
    let reset = (state.clock.now().as_second() + 300).to_string();
    ResponseTemplate::new(200)
        .set_body_json(body)
        .insert_header("RateLimit-Limit", "3000")
        .insert_header("RateLimit-Remaining", "2999")
        .insert_header("RateLimit-Reset", reset.as_str())
        .insert_header("RateLimit-Policy", "3000;w=300")
}
