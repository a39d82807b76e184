//! Bluesky (AT Protocol): publishing (app-password sessions, deterministic record keys,
//! rich-text facets) and listening through authenticated `app.bsky.feed.searchPosts`.
//!
//! Quirks handled here (`platform-apis.md` §2):
//! - An expired access token is **HTTP 400** `{"error":"ExpiredToken"}`, not 401
//!   (atproto `packages/pds/src/auth-verifier.ts`). We refresh once with the refresh token,
//!   log in again if that is refused too, and retry the create once.
//! - There is no idempotency header, but the client may choose the record key. The key is
//!   derived from the delivery id ([`record_key`]), so a retried create cannot make a second
//!   post. A create at an existing key is **not** a clean 4xx: the repository's MST insert
//!   throws and the PDS answers 500 `InternalServerError`
//!   (`packages/pds/src/api/com/atproto/repo/createRecord.ts`). So after any 5xx, 409,
//!   unreadable success or lost response we read the record back with
//!   `com.atproto.repo.getRecord`: if it is there, the post is published.
//! - Links are not clickable without a link facet; facet ranges are **UTF-8 byte** offsets
//!   (<https://docs.bsky.app/docs/advanced-guides/post-richtext>).
//! - Rate limits come as `RateLimit-*` headers with `Reset` in unix seconds.
//! - Logging in goes to the configured service (the `bsky.social` entryway); everything
//!   after that goes to the account's own PDS, named in the session's DID document
//!   (`didDoc.service[#atproto_pds]`, bsky-docs "API Hosts and Auth"). That URL comes from
//!   a server, so it passes the same private-address check as a configured one.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use unicode_segmentation::UnicodeSegmentation;
use url::Url;

use super::http::{HttpClient, clip, transport_error};
use super::{OutgoingPost, PlatformError, Published, Publisher, ratelimit};
use crate::clock::{Clock, SystemClock};
use crate::domain::{Cursor, Platform, Secret};
use crate::rules;

const PLATFORM: Platform = Platform::Bluesky;
/// The entryway most accounts log in through.
pub const DEFAULT_SERVICE: &str = "https://bsky.social";
const POST_COLLECTION: &str = "app.bsky.feed.post";
/// Tags longer than this are not tags (lexicon `app.bsky.richtext.facet#tag`).
const MAX_TAG_GRAPHEMES: usize = 64;
const MAX_TAG_BYTES: usize = 640;

/// Publishes posts to one Bluesky account with an app password.
///
/// Channel fields: `base_url` = the PDS or entryway ([`DEFAULT_SERVICE`] when unset),
/// `account` = the handle, `token` = the app password.
pub struct BlueskyPublisher {
    http: HttpClient,
    langs: Vec<String>,
    clock: Arc<dyn Clock>,
    account: Account,
}

/// One account's login and its cached session, shared by the publisher and the listener.
///
/// Logging in is limited to 30 per 5 minutes and 300 per day per account
/// (`platform-apis.md` §2.2): the session is kept and renewed, never re-created per call.
struct Account {
    http: HttpClient,
    service: String,
    identifier: String,
    password: Secret,
    clock: Arc<dyn Clock>,
    session: Mutex<Option<Session>>,
}

/// A logged-in session. The tokens are secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Session {
    access_jwt: Secret,
    refresh_jwt: Secret,
    did: String,
    handle: String,
    /// The account's PDS from the DID document, when the session named one.
    pds: Option<String>,
}

#[derive(Deserialize)]
struct SessionBody {
    #[serde(rename = "accessJwt")]
    access_jwt: String,
    #[serde(rename = "refreshJwt")]
    refresh_jwt: String,
    did: String,
    handle: String,
    #[serde(rename = "didDoc", default)]
    did_doc: Option<DidDocument>,
}

#[derive(Deserialize)]
struct DidDocument {
    #[serde(default)]
    service: Vec<DidService>,
}

#[derive(Deserialize)]
struct DidService {
    id: String,
    #[serde(rename = "serviceEndpoint")]
    endpoint: serde_json::Value,
}

impl From<SessionBody> for Session {
    fn from(b: SessionBody) -> Self {
        // The PDS entry's id is `#atproto_pds`, possibly prefixed with the DID.
        let pds = b
            .did_doc
            .into_iter()
            .flat_map(|doc| doc.service)
            .find(|s| s.id.ends_with("#atproto_pds"))
            .and_then(|s| s.endpoint.as_str().map(str::to_owned));
        Session {
            access_jwt: Secret::new(b.access_jwt),
            refresh_jwt: Secret::new(b.refresh_jwt),
            did: b.did,
            handle: b.handle,
            pds,
        }
    }
}

/// `{"error": "<Name>", "message": "<text>"}`, the body of every XRPC error.
#[derive(Debug, Default, Deserialize)]
struct XrpcErrorBody {
    error: Option<String>,
    message: Option<String>,
}

/// The answer to a `createRecord` or `getRecord`.
#[derive(Debug, Deserialize)]
struct RecordRef {
    uri: String,
    cid: String,
}

/// One HTTP exchange, read in full.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn error_body(&self) -> XrpcErrorBody {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    fn error_name(&self) -> Option<String> {
        self.error_body().error
    }

    /// The access (or refresh) token was refused: expired, invalid or unknown.
    fn token_refused(&self) -> bool {
        match self.status {
            StatusCode::BAD_REQUEST => matches!(
                self.error_name().as_deref(),
                Some("ExpiredToken" | "InvalidToken")
            ),
            StatusCode::UNAUTHORIZED => true,
            _ => false,
        }
    }
}

/// What a `createRecord` call led to.
enum CreateOutcome {
    Created(RecordRef),
    /// The access token was refused: renew the session and try once more.
    TokenRefused,
    /// The record may exist (5xx, 409, lost or unreadable response): read it back.
    MaybeCreated(PlatformError),
}

impl Account {
    fn new(
        http: HttpClient,
        service: impl Into<String>,
        identifier: impl Into<String>,
        password: Secret,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Account {
            http,
            service: service.into(),
            identifier: identifier.into(),
            password,
            clock,
            session: Mutex::new(None),
        }
    }

    async fn create_session(&self, base: &Url) -> Result<Session, PlatformError> {
        let body = serde_json::json!({
            "identifier": self.identifier,
            "password": self.password.expose(),
        });
        let reply = send(
            self.http
                .client()
                .post(xrpc(base, "com.atproto.server.createSession"))
                .json(&body),
            true,
        )
        .await?;
        if !reply.status.is_success() {
            return Err(classify(&reply, self.clock.now()));
        }
        let session: SessionBody = parse(&reply.body, "createSession")?;
        tracing::info!(platform = %PLATFORM, handle = %session.handle, "logged in");
        Ok(session.into())
    }

    /// Refreshes `stale`. `Ok(None)` when the refresh token itself was refused.
    async fn refresh_session(
        &self,
        base: &Url,
        stale: &Session,
    ) -> Result<Option<Session>, PlatformError> {
        let reply = send(
            self.http
                .client()
                .post(xrpc(base, "com.atproto.server.refreshSession"))
                .bearer_auth(stale.refresh_jwt.expose()),
            true,
        )
        .await?;
        if reply.status.is_success() {
            let session: SessionBody = parse(&reply.body, "refreshSession")?;
            return Ok(Some(session.into()));
        }
        if reply.token_refused() {
            return Ok(None);
        }
        Err(classify(&reply, self.clock.now()))
    }

    /// The cached session, logging in when there is none.
    async fn current_session(&self, base: &Url) -> Result<Session, PlatformError> {
        let mut cached = self.session.lock().await;
        if let Some(session) = cached.as_ref() {
            return Ok(session.clone());
        }
        let session = self.create_session(base).await?;
        *cached = Some(session.clone());
        Ok(session)
    }

    /// Where the session's requests go: its own PDS, else the configured service.
    async fn pds_of(&self, session: &Session, entryway: &Url) -> Result<Url, PlatformError> {
        match &session.pds {
            Some(pds) => self.http.checked_url(PLATFORM, pds).await,
            None => Ok(entryway.clone()),
        }
    }

    /// A fresh session after the PDS refused `stale`'s access token: refresh at the PDS,
    /// or log in again at the entryway when the refresh token is refused too.
    async fn renew_session(
        &self,
        entryway: &Url,
        pds: &Url,
        stale: &Session,
    ) -> Result<Session, PlatformError> {
        let mut cached = self.session.lock().await;
        if let Some(current) = cached.as_ref()
            && current.access_jwt != stale.access_jwt
        {
            // Another call renewed it while we waited for the lock.
            return Ok(current.clone());
        }
        let renewed = match self.refresh_session(pds, stale).await? {
            Some(session) => session,
            None => {
                *cached = None;
                self.create_session(entryway).await?
            }
        };
        *cached = Some(renewed.clone());
        Ok(renewed)
    }
}

impl BlueskyPublisher {
    /// A publisher for the account `identifier` (handle, e-mail or DID) on `service`.
    pub fn new(
        http: HttpClient,
        service: impl Into<String>,
        identifier: impl Into<String>,
        app_password: Secret,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        BlueskyPublisher {
            account: Account::new(
                http.clone(),
                service,
                identifier,
                app_password,
                clock.clone(),
            ),
            http,
            langs: Vec::new(),
            clock,
        }
    }

    /// Languages to declare on every post (`langs`, at most 3 are sent).
    pub fn with_langs(mut self, langs: impl IntoIterator<Item = String>) -> Self {
        self.langs = langs.into_iter().take(3).collect();
        self
    }

    /// The clock for `createdAt` and rate-limit waits (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.account.clock = clock.clone();
        self.clock = clock;
        self
    }

    async fn create_record(
        &self,
        base: &Url,
        session: &Session,
        rkey: &str,
        record: &PostRecord,
    ) -> Result<CreateOutcome, PlatformError> {
        let body = CreateRecord {
            repo: &session.did,
            collection: POST_COLLECTION,
            rkey,
            record,
        };
        // The record key makes the create idempotent, so a transport error is retryable,
        // but the post may exist: settle it first.
        let reply = match send(
            self.http
                .client()
                .post(xrpc(base, "com.atproto.repo.createRecord"))
                .bearer_auth(session.access_jwt.expose())
                .json(&body),
            true,
        )
        .await
        {
            Ok(reply) => reply,
            Err(err) => return Ok(CreateOutcome::MaybeCreated(err)),
        };
        if reply.status.is_success() {
            return Ok(match serde_json::from_slice::<RecordRef>(&reply.body) {
                Ok(created) => CreateOutcome::Created(created),
                Err(e) => CreateOutcome::MaybeCreated(malformed("createRecord", &e)),
            });
        }
        if reply.token_refused() {
            return Ok(CreateOutcome::TokenRefused);
        }
        let err = classify(&reply, self.clock.now());
        if reply.status.is_server_error() || reply.status == StatusCode::CONFLICT {
            return Ok(CreateOutcome::MaybeCreated(err));
        }
        Err(err)
    }

    /// After an uncertain create: the post is published if the record exists; otherwise
    /// the original error stands (retrying is safe, the record key guards it).
    async fn settle(
        &self,
        base: &Url,
        session: &Session,
        rkey: &str,
        original: PlatformError,
    ) -> Result<Published, PlatformError> {
        let mut url = xrpc(base, "com.atproto.repo.getRecord");
        url.query_pairs_mut()
            .append_pair("repo", &session.did)
            .append_pair("collection", POST_COLLECTION)
            .append_pair("rkey", rkey);
        let reply = match send(self.http.client().get(url), true).await {
            Ok(reply) => reply,
            Err(_) => return Err(original),
        };
        if reply.status.is_success()
            && let Ok(found) = serde_json::from_slice::<RecordRef>(&reply.body)
        {
            tracing::info!(platform = %PLATFORM, rkey, "record already existed: published by an earlier attempt");
            return Ok(published(&found, &session.handle));
        }
        Err(original)
    }

    /// Resolves a handle to a DID; `None` on any failure (the mention stays plain text).
    async fn resolve_handle(&self, base: &Url, handle: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Resolved {
            did: String,
        }
        let mut url = xrpc(base, "com.atproto.identity.resolveHandle");
        url.query_pairs_mut().append_pair("handle", handle);
        let reply = send(self.http.client().get(url), true).await.ok()?;
        if !reply.status.is_success() {
            tracing::debug!(platform = %PLATFORM, handle, status = reply.status.as_u16(), "handle not resolved; mention left as text");
            return None;
        }
        serde_json::from_slice::<Resolved>(&reply.body)
            .ok()
            .map(|r| r.did)
            .filter(|did| did.starts_with("did:"))
    }

    async fn facets(&self, base: &Url, text: &str) -> Vec<Facet> {
        let mut facets = Vec::new();
        for span in detect_rich_text(text) {
            let feature = match span.kind {
                SpanKind::Link { uri } => Feature::Link { uri },
                SpanKind::Tag { tag } => Feature::Tag { tag },
                SpanKind::Mention { handle } => match self.resolve_handle(base, &handle).await {
                    Some(did) => Feature::Mention { did },
                    None => continue,
                },
            };
            facets.push(Facet {
                index: ByteSlice {
                    byte_start: span.range.start,
                    byte_end: span.range.end,
                },
                features: vec![feature],
            });
        }
        facets
    }
}

#[async_trait::async_trait]
impl Publisher for BlueskyPublisher {
    async fn publish(
        &self,
        post: &OutgoingPost,
        idempotency_key: &str,
    ) -> Result<Published, PlatformError> {
        rules::check_text(PLATFORM, &post.text, post.link.as_deref(), None).map_err(|e| {
            PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: e.to_string(),
            }
        })?;
        let text = rules::compose_text(&post.text, post.link.as_deref()).into_owned();
        let entryway = self
            .http
            .checked_url(PLATFORM, &self.account.service)
            .await?;
        let rkey = record_key(idempotency_key);
        let session = self.account.current_session(&entryway).await?;
        let pds = self.account.pds_of(&session, &entryway).await?;
        let record = PostRecord {
            kind: POST_COLLECTION,
            facets: self.facets(&pds, &text).await,
            text,
            created_at: datetime(self.clock.now()),
            langs: self.langs.clone(),
        };
        let (session, pds, outcome) =
            match self.create_record(&pds, &session, &rkey, &record).await? {
                CreateOutcome::TokenRefused => {
                    let session = self
                        .account
                        .renew_session(&entryway, &pds, &session)
                        .await?;
                    let pds = self.account.pds_of(&session, &entryway).await?;
                    let outcome = self.create_record(&pds, &session, &rkey, &record).await?;
                    (session, pds, outcome)
                }
                outcome => (session, pds, outcome),
            };
        match outcome {
            CreateOutcome::Created(created) => {
                tracing::info!(platform = %PLATFORM, rkey, "post created");
                Ok(published(&created, &session.handle))
            }
            CreateOutcome::TokenRefused => Err(PlatformError::AuthExpired {
                platform: PLATFORM,
                message: "the PDS refused a freshly issued session token".into(),
            }),
            CreateOutcome::MaybeCreated(err) => self.settle(&pds, &session, &rkey, err).await,
        }
    }
}

/// Sends `request` and reads the whole reply.
async fn send(request: reqwest::RequestBuilder, idempotent: bool) -> Result<Reply, PlatformError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(PLATFORM, &e, idempotent))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(PLATFORM, &e, idempotent))?;
    Ok(Reply {
        status,
        headers,
        body: body.to_vec(),
    })
}

fn xrpc(base: &Url, nsid: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("/xrpc/{nsid}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, PlatformError> {
    serde_json::from_slice(body).map_err(|e| malformed(what, &e))
}

fn malformed(what: &str, err: &serde_json::Error) -> PlatformError {
    PlatformError::Malformed {
        platform: PLATFORM,
        detail: format!("{what} response: {err}"),
    }
}

/// Classifies an XRPC error reply (after the token-refresh path had its chance).
pub fn classify_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> PlatformError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    classify(
        &Reply {
            status,
            headers: headers.clone(),
            body: body.to_vec(),
        },
        now,
    )
}

fn classify(reply: &Reply, now: Timestamp) -> PlatformError {
    let XrpcErrorBody { error, message } = reply.error_body();
    let words = match (error.as_deref(), message.as_deref()) {
        (Some(name), Some(msg)) => format!("{name}: {msg}"),
        (Some(name), None) => name.to_owned(),
        (None, Some(msg)) => msg.to_owned(),
        (None, None) => format!(
            "HTTP {}: {}",
            reply.status.as_u16(),
            clip(&String::from_utf8_lossy(&reply.body), 200)
        ),
    };
    let words = clip(&words, 300);
    let status = reply.status;
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        // The atproto dialect first (Reset = unix seconds), then a plain Retry-After.
        let after = ratelimit::atproto(&reply.headers)
            .wait_from(now)
            .or_else(|| ratelimit::retry_after(&reply.headers, now));
        return PlatformError::Retryable {
            platform: PLATFORM,
            after,
            reason: format!("HTTP {}: {words}", status.as_u16()),
        };
    }
    let account_problem = matches!(
        error.as_deref(),
        Some(
            "ExpiredToken"
                | "InvalidToken"
                | "AuthenticationRequired"
                | "AccountTakedown"
                | "AccountDeactivated"
                | "AuthFactorTokenRequired"
        )
    );
    if status == StatusCode::UNAUTHORIZED || account_problem {
        return PlatformError::AuthExpired {
            platform: PLATFORM,
            message: words,
        };
    }
    PlatformError::Permanent {
        platform: PLATFORM,
        status: Some(status.as_u16()),
        message: words,
    }
}

/// Reads a `createRecord`/`getRecord` success body (exposed for property tests).
pub fn parse_record_ref(body: &[u8], handle: &str) -> Result<Published, PlatformError> {
    let found: RecordRef = parse(body, "createRecord")?;
    Ok(published(&found, handle))
}

fn published(found: &RecordRef, handle: &str) -> Published {
    let rkey = found.uri.rsplit('/').next().unwrap_or_default();
    tracing::debug!(platform = %PLATFORM, cid = %found.cid, "record reference");
    Published {
        // The at-uri, not just the rkey: it names the repository (DID) too, so a
        // reconciler can read the record back without knowing the account.
        platform_id: found.uri.clone(),
        url: Some(format!("https://bsky.app/profile/{handle}/post/{rkey}")),
    }
}

/// `createdAt`: RFC 3339 in UTC with milliseconds, the form the atproto datetime format
/// recommends (<https://atproto.com/specs/lexicon#datetime>).
fn datetime(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// ---------------------------------------------------------------------------------------
// Listening
// ---------------------------------------------------------------------------------------

/// How far back each search window reaches before the newest post seen. `searchPosts`
/// filters on `sortAt` (the earlier of `createdAt` and `indexedAt`), and posts reach the
/// index a little late, so a window starting exactly at the newest post would miss late
/// ones; the overlap asks again and the URIs already seen are dropped.
pub const SEARCH_OVERLAP: SignedDuration = SignedDuration::from_secs(10 * 60);
/// Posts per search page: the lexicon maximum (default 25).
pub const SEARCH_PAGE_LIMIT: usize = 100;
/// `searchPosts` has no `OR`: one search per alternative of the query, at most this many.
pub const MAX_SEARCHES: usize = 4;
/// Most URIs kept in the cursor (about 100 KB of JSON at most).
pub const MAX_SEEN: usize = 1000;
/// The wait suggested when search is switched off by an administrative rule.
const SEARCH_UNAVAILABLE_WAIT: SignedDuration = SignedDuration::from_secs(15 * 60);

/// Polls `app.bsky.feed.searchPosts` for posts matching a source's query, signed in as one
/// account.
///
/// Source fields: `account` = the handle that logs in, `credentials` = its app password,
/// `base_url` = the entryway ([`DEFAULT_SERVICE`] when unset), `query` = Hark's query
/// language (one AND-only search per alternative, exclusions dropped: the processor
/// re-checks every mention; text that is not valid Hark syntax is sent as written).
///
/// Searches go to the account's PDS with its access token: the public AppView refuses
/// unauthenticated search and its cursors (`platform-apis.md` §2.1, atproto#3423). The
/// session is cached in the listener (logins are limited to 30 per 5 minutes and 300 per
/// day), refreshed when the PDS answers **400 `ExpiredToken`**, and created again only when
/// the refresh token is refused too. Keep one listener per source across polls.
///
/// The cursor position is JSON, see [`BlueskyPosition`].
pub struct BlueskyListener {
    http: HttpClient,
    account: Account,
}

impl std::fmt::Debug for BlueskyListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlueskyListener")
            .field("service", &self.account.service)
            .field("identifier", &self.account.identifier)
            .field("password", &self.account.password)
            .finish_non_exhaustive()
    }
}

/// Where a Bluesky source's polling stands (stored as JSON in the cursor position).
///
/// Each poll searches the window `since ≤ sortAt < until` with `sort=latest`, following
/// `cursor` to the end of the window. A completed window moves `since` to
/// [`SEARCH_OVERLAP`] before the newest `sortAt` seen (never forward past "now"), and the
/// URIs inside the overlap are kept in `seen` so they are not queued twice. When the page
/// cap interrupts a window, `until` is set just above the oldest post fetched, so the next
/// poll reads the rest of the same window first: nothing in between is skipped. A source
/// never polled takes one page per search (no backfill) and starts its window there.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlueskyPosition {
    /// Lower bound of the next window (`since`, inclusive).
    pub since: Option<Timestamp>,
    /// Upper bound while finishing an interrupted window (`until`, exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// The newest `sortAt` seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Timestamp>,
    /// `(uri, sortAt)` of posts queued that a later window can return again.
    #[serde(default)]
    pub seen: Vec<(String, Timestamp)>,
}

impl BlueskyPosition {
    /// A stored position; `None` for a source never polled. An unreadable position starts
    /// over like a first poll (repeats are dropped downstream by the mention dedupe).
    fn read(cursor: &Cursor) -> Option<Self> {
        let raw = cursor.position.as_deref()?;
        match serde_json::from_str(raw) {
            Ok(position) => Some(position),
            Err(e) => {
                tracing::warn!(source_id = %cursor.source_id, error = %e, "unreadable bluesky cursor position; starting over with one page");
                None
            }
        }
    }
}

/// The searches for a source query (see [`BlueskyListener`]).
pub fn search_queries(query: &str) -> Vec<String> {
    match crate::query::Query::parse(query) {
        Ok(parsed) => {
            let queries =
                parsed.keyword_queries(MAX_SEARCHES, crate::query::KeywordStyle::Hashtags);
            if queries.is_empty() {
                vec![query.to_owned()]
            } else {
                queries
            }
        }
        Err(_) => vec![query.to_owned()],
    }
}

/// The one language every match of the query has, if there is one (`lang` filter).
fn search_language(query: &str) -> Option<String> {
    let languages = crate::query::Query::parse(query).ok()?.languages()?;
    match languages.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// One `searchPosts` answer (lexicon `app.bsky.feed.searchPosts#output`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub cursor: Option<String>,
    pub posts: Vec<PostView>,
}

/// A post as search returns it (lexicon `app.bsky.feed.defs#postView`): only what Hark reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PostView {
    /// `at://<did>/app.bsky.feed.post/<rkey>`.
    pub uri: String,
    pub author: ProfileView,
    /// The post record (`text`, `createdAt`, …), as free-form JSON.
    #[serde(default)]
    pub record: serde_json::Value,
    /// When the AppView indexed the post.
    #[serde(rename = "indexedAt")]
    pub indexed_at: Timestamp,
    #[serde(rename = "replyCount", default)]
    pub reply_count: Option<i64>,
    #[serde(rename = "repostCount", default)]
    pub repost_count: Option<i64>,
    #[serde(rename = "likeCount", default)]
    pub like_count: Option<i64>,
    #[serde(rename = "quoteCount", default)]
    pub quote_count: Option<i64>,
}

/// The author of a post (`app.bsky.actor.defs#profileViewBasic`): search results carry no
/// follower count.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProfileView {
    pub did: String,
    pub handle: String,
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
}

impl PostView {
    /// `record.createdAt` when readable (client-supplied, may lie), else `indexedAt`.
    pub fn created_at(&self) -> Timestamp {
        self.record["createdAt"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(self.indexed_at)
    }

    /// What `since`/`until` filter on: the earlier of `createdAt` and `indexedAt`
    /// (`platform-apis.md` §2.1).
    pub fn sort_at(&self) -> Timestamp {
        self.created_at().min(self.indexed_at)
    }

    fn rkey(&self) -> &str {
        self.uri.rsplit('/').next().unwrap_or_default()
    }

    /// The mention this post stands for.
    pub fn to_mention(&self, source: &crate::domain::Source) -> crate::domain::Mention {
        let count = |n: Option<i64>| n.map_or(0, |n| u64::try_from(n).unwrap_or(0));
        let handle = self.author.handle.clone();
        crate::domain::Mention {
            platform: PLATFORM,
            native_id: self.uri.clone(),
            url: format!("https://bsky.app/profile/{handle}/post/{}", self.rkey()),
            author: crate::domain::Author {
                url: Some(format!("https://bsky.app/profile/{handle}")),
                handle,
                display_name: self
                    .author
                    .display_name
                    .clone()
                    .filter(|n| !n.trim().is_empty()),
                followers: None,
            },
            text: self.record["text"].as_str().unwrap_or_default().to_owned(),
            created_at: self.created_at(),
            lang: None,
            sentiment: None,
            engagement: crate::domain::Engagement {
                likes: count(self.like_count),
                reposts: count(self.repost_count) + count(self.quote_count),
                replies: count(self.reply_count),
            },
            campaigns: Vec::new(),
            source_id: Some(source.id.clone()),
        }
    }
}

/// Parses a `searchPosts` answer. A post without a post at-uri, an author handle or a
/// readable `indexedAt` makes the page `Malformed`, and nothing from it is used.
pub fn parse_search_page(body: &[u8]) -> Result<SearchPage, PlatformError> {
    let page: SearchPage = parse(body, "searchPosts")?;
    if let Some(bad) = page.posts.iter().find(|p| {
        let parts: Vec<&str> = p
            .uri
            .strip_prefix("at://")
            .unwrap_or_default()
            .split('/')
            .collect();
        parts.len() != 3 || parts.iter().any(|s| s.is_empty()) || p.author.handle.is_empty()
    }) {
        return Err(PlatformError::Malformed {
            platform: PLATFORM,
            detail: format!(
                "searchPosts post `{}` has no at-uri or no author handle",
                clip(&bad.uri, 80)
            ),
        });
    }
    Ok(page)
}

impl BlueskyListener {
    /// A listener signed in as `identifier` (handle, e-mail or DID) on `service` with an
    /// app password.
    pub fn new(
        http: HttpClient,
        service: impl Into<String>,
        identifier: impl Into<String>,
        app_password: Secret,
    ) -> Self {
        BlueskyListener {
            account: Account::new(
                http.clone(),
                service,
                identifier,
                app_password,
                Arc::new(SystemClock),
            ),
            http,
        }
    }

    /// The clock for rate-limit waits of login errors (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.account.clock = clock;
        self
    }

    /// One search page. A refused access token renews the session once (refresh, or log
    /// in again when the refresh token is refused too) and asks again.
    async fn search_page(
        &self,
        entryway: &Url,
        signed_in: &mut (Session, Url),
        params: &[(&str, String)],
        now: Timestamp,
    ) -> Result<(SearchPage, Option<super::RateLimit>), PlatformError> {
        let mut renewed = false;
        loop {
            let (session, pds) = &*signed_in;
            let mut url = xrpc(pds, "app.bsky.feed.searchPosts");
            url.query_pairs_mut()
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            // Searching is idempotent: any transport failure may be retried.
            let reply = send(
                self.http
                    .client()
                    .get(url)
                    .bearer_auth(session.access_jwt.expose()),
                true,
            )
            .await?;
            // An expired access token is HTTP 400 `ExpiredToken`, not 401 (§2.2).
            if reply.token_refused() && !renewed {
                let session = self.account.renew_session(entryway, pds, session).await?;
                let pds = self.account.pds_of(&session, entryway).await?;
                *signed_in = (session, pds);
                renewed = true;
                continue;
            }
            // Search switched off by an administrative rule: 403 with an HTML page (§2.1).
            if reply.status == StatusCode::FORBIDDEN
                && serde_json::from_slice::<serde_json::Value>(&reply.body).is_err()
            {
                return Err(PlatformError::Retryable {
                    platform: PLATFORM,
                    after: Some(SEARCH_UNAVAILABLE_WAIT),
                    reason: format!(
                        "search unavailable (HTTP 403: {})",
                        clip(
                            &crate::text::html_to_text(&String::from_utf8_lossy(&reply.body)),
                            120
                        )
                    ),
                });
            }
            if !reply.status.is_success() {
                return Err(classify(&reply, now));
            }
            let rate_limit = ratelimit::atproto(&reply.headers);
            let rate_limit = (rate_limit != super::RateLimit::default()).then_some(rate_limit);
            return Ok((parse_search_page(&reply.body)?, rate_limit));
        }
    }
}

#[async_trait::async_trait]
impl super::Listener for BlueskyListener {
    async fn listen(
        &self,
        source: &crate::domain::Source,
        cursor: &Cursor,
        limits: super::ListenLimits,
    ) -> Result<super::Listened, PlatformError> {
        let now = limits.now;
        let query = source
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or_else(|| PlatformError::Permanent {
                platform: PLATFORM,
                status: None,
                message: format!("source `{}` needs a query", source.id),
            })?;
        let searches = search_queries(query);
        let lang = search_language(query);
        let stored = BlueskyPosition::read(cursor);
        let first_poll = stored.is_none();
        let state = stored.unwrap_or_default();

        let entryway = self
            .http
            .checked_url(PLATFORM, &self.account.service)
            .await?;
        let session = self.account.current_session(&entryway).await?;
        let pds = self.account.pds_of(&session, &entryway).await?;
        let mut signed_in = (session, pds);

        let seen: HashSet<&str> = state.seen.iter().map(|(uri, _)| uri.as_str()).collect();
        let mut returned: HashSet<String> = HashSet::new();
        let mut fetched: Vec<(String, Timestamp)> = Vec::new();
        let mut found: Vec<(Timestamp, crate::domain::Mention)> = Vec::new();
        let mut rate_limit = None;
        let mut interrupted_at: Option<Timestamp> = None;
        let mut complete = true;
        let pages_each = (limits.max_pages.max(1) / searches.len()).max(1);
        for search in &searches {
            let mut params: Vec<(&str, String)> = vec![
                ("q", search.clone()),
                ("sort", "latest".to_owned()),
                ("limit", SEARCH_PAGE_LIMIT.to_string()),
            ];
            if let Some(since) = state.since {
                params.push(("since", datetime(since)));
            }
            if let Some(until) = state.until {
                params.push(("until", datetime(until)));
            }
            if let Some(lang) = &lang {
                params.push(("lang", lang.clone()));
            }
            let mut oldest: Option<Timestamp> = None;
            let mut done = false;
            for _ in 0..pages_each {
                let (page, page_rate_limit) = self
                    .search_page(&entryway, &mut signed_in, &params, now)
                    .await?;
                rate_limit = page_rate_limit.or(rate_limit);
                for post in &page.posts {
                    let sort_at = post.sort_at();
                    oldest = Some(oldest.map_or(sort_at, |o| o.min(sort_at)));
                    fetched.push((post.uri.clone(), sort_at));
                    if !seen.contains(post.uri.as_str()) && returned.insert(post.uri.clone()) {
                        found.push((sort_at, post.to_mention(source)));
                    }
                }
                match page.cursor.filter(|c| !c.is_empty()) {
                    Some(next) if !first_poll && !page.posts.is_empty() => {
                        params.retain(|(k, _)| *k != "cursor");
                        params.push(("cursor", next));
                    }
                    _ => {
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                complete = false;
                // The rest of this search lies below its oldest post: the next window must
                // reach up to it (the highest such bound over the interrupted searches).
                if let Some(oldest) = oldest {
                    interrupted_at = Some(interrupted_at.map_or(oldest, |i| i.max(oldest)));
                }
            }
        }
        // Queue oldest first.
        found.sort_by(|a, b| (a.0, &a.1.native_id).cmp(&(b.0, &b.1.native_id)));
        let next = next_position(&state, &fetched, complete, interrupted_at, now);
        let mut cursor = cursor.clone();
        cursor.position =
            Some(
                serde_json::to_string(&next).map_err(|e| PlatformError::Malformed {
                    platform: PLATFORM,
                    detail: format!("cannot encode the cursor: {e}"),
                })?,
            );
        Ok(super::Listened {
            mentions: found.into_iter().map(|(_, m)| m).collect(),
            cursor,
            caught_up: complete,
            rate_limit,
        })
    }
}

/// The position after a call that fetched `fetched` from `state`'s window. `complete`:
/// every search reached the end of the window; otherwise `interrupted_at` is the highest
/// oldest `sortAt` among the interrupted searches.
fn next_position(
    state: &BlueskyPosition,
    fetched: &[(String, Timestamp)],
    complete: bool,
    interrupted_at: Option<Timestamp>,
    now: Timestamp,
) -> BlueskyPosition {
    let millisecond = SignedDuration::from_millis(1);
    let newest = fetched.iter().map(|(_, t)| *t).chain(state.newest).max();
    let (since, until) = if complete || interrupted_at.is_none() {
        // Never from the future, should the AppView's clock run ahead of ours.
        let floor = newest.map_or(now, |n| n.min(now)) - SEARCH_OVERLAP;
        (state.since.map_or(floor, |s| s.max(floor)), None)
    } else {
        let oldest = interrupted_at.unwrap_or(now);
        // `until` is exclusive: reach just above the oldest post fetched, and step below it
        // when a poll made no progress (more posts in one millisecond than the page cap).
        let until = match state.until {
            Some(u) if oldest + millisecond >= u => u - millisecond,
            _ => oldest + millisecond,
        };
        (state.since.unwrap_or(now - SEARCH_OVERLAP), Some(until))
    };
    let top_overlap = newest.map(|n| n - SEARCH_OVERLAP);
    let keep = |t: Timestamp| {
        t >= since
            && match until {
                None => true,
                Some(u) => t < u || top_overlap.is_some_and(|o| t >= o),
            }
    };
    let mut uris = HashSet::new();
    let mut seen: Vec<(String, Timestamp)> = fetched
        .iter()
        .chain(state.seen.iter())
        .filter(|(uri, t)| keep(*t) && uris.insert(uri.clone()))
        .cloned()
        .collect();
    if seen.len() > MAX_SEEN {
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        seen.truncate(MAX_SEEN);
    }
    BlueskyPosition {
        since: Some(since),
        until,
        newest,
        seen,
    }
}

// ---------------------------------------------------------------------------------------
// Record key
// ---------------------------------------------------------------------------------------

/// 2023-01-01T00:00:00Z in microseconds: the start of the window our keys' timestamps fall in.
const RKEY_EPOCH_MICROS: u64 = 1_672_531_200_000_000;
const BASE32_SORTABLE: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// The record key for a delivery: a valid TID derived from the idempotency key, so every
/// retry of the same delivery writes to the same key.
///
/// A TID (<https://atproto.com/specs/tid>) is a 64-bit integer in base32-sortable, 13
/// characters: top bit 0, 53 bits of microseconds since the epoch, 10 bits of clock id. The
/// post lexicon requires the `tid` syntax for its keys. Ours takes 56 bits of
/// SHA-256("hark/bluesky-rkey/v1\0" + key): 46 bits as microseconds after 2023-01-01 (so
/// the timestamp always lies between 2023-01-01 and 2025-03, in the past, never "from the
/// future") and 10 bits as the clock id. The timestamp is not the posting time; nothing
/// reads it as such (`createdAt` is), and 2^56 keys make a collision negligible.
pub fn record_key(idempotency_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"hark/bluesky-rkey/v1\0");
    hasher.update(idempotency_key.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let h = u64::from_be_bytes(first);
    let micros = RKEY_EPOCH_MICROS + ((h >> 10) & ((1 << 46) - 1));
    let clock_id = h & 0x3FF;
    let tid = (micros << 10) | clock_id;
    (0..13)
        .rev()
        .map(|i| char::from(BASE32_SORTABLE[((tid >> (5 * i)) & 0x1F) as usize]))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Rich text
// ---------------------------------------------------------------------------------------

/// A piece of rich text found in a post, with its **UTF-8 byte** range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichTextSpan {
    pub range: Range<usize>,
    pub kind: SpanKind,
}

/// What a [`RichTextSpan`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanKind {
    Link {
        uri: String,
    },
    /// The tag without `#`.
    Tag {
        tag: String,
    },
    /// The handle without `@` (still to be resolved to a DID).
    Mention {
        handle: String,
    },
}

/// Finds links, hashtags and mentions, sorted and non-overlapping.
///
/// The rules follow the official client's detection (bsky-docs `post-richtext`), written
/// out by hand:
/// - links: [`rules::find_urls`];
/// - hashtags: `#` (or `＃`) at the start or after whitespace, up to the next whitespace,
///   trailing punctuation dropped, not all digits, at most 64 graphemes / 640 bytes;
/// - mentions: `@` at the start or after whitespace or `(`, then a domain-like handle
///   (`[A-Za-z0-9.-]`, two or more labels, a TLD starting with a letter).
///
/// Nothing inside a link is a tag or a mention.
pub fn detect_rich_text(text: &str) -> Vec<RichTextSpan> {
    let links = rules::find_urls(text);
    let in_link = |i: usize| links.iter().any(|l| l.contains(&i));
    let mut spans: Vec<RichTextSpan> = links
        .iter()
        .map(|r| RichTextSpan {
            range: r.clone(),
            kind: SpanKind::Link {
                uri: text[r.clone()].to_owned(),
            },
        })
        .collect();
    let mut previous: Option<char> = None;
    for (i, c) in text.char_indices() {
        let boundary_before = previous.is_none_or(char::is_whitespace);
        previous = Some(c);
        if in_link(i) {
            continue;
        }
        if (c == '#' || c == '＃') && boundary_before {
            if let Some(span) = hashtag_at(text, i, c.len_utf8()) {
                spans.push(span);
            }
        } else if c == '@'
            && (boundary_before || text[..i].ends_with('('))
            && let Some(span) = mention_at(text, i)
        {
            spans.push(span);
        }
    }
    spans.sort_by_key(|s| s.range.start);
    // Drop anything overlapping an earlier span (cannot happen with the rules above, but
    // the PDS rejects overlapping facets, so make it impossible).
    let mut kept: Vec<RichTextSpan> = Vec::with_capacity(spans.len());
    for span in spans {
        if kept.last().is_none_or(|k| k.range.end <= span.range.start) {
            kept.push(span);
        }
    }
    kept
}

fn is_tag_trailing_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '…' | '、'
                | '。'
                | '！'
                | '？'
                | '，'
                | '：'
                | '；'
                | '«'
                | '»'
                | '“'
                | '”'
                | '‘'
                | '’'
        )
}

fn hashtag_at(text: &str, hash: usize, hash_len: usize) -> Option<RichTextSpan> {
    let start = hash + hash_len;
    let rest = &text[start..];
    if rest.starts_with('\u{FE0F}') {
        return None; // "#️⃣" is the keycap emoji, not a tag
    }
    let run_len = rest
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || is_invisible_separator(*c))
        .map_or(rest.len(), |(i, _)| i);
    let tag = rest[..run_len].trim_end_matches(is_tag_trailing_punctuation);
    if tag.is_empty()
        || !tag
            .chars()
            .any(|c| !c.is_numeric() && !is_tag_trailing_punctuation(c))
        || tag.len() > MAX_TAG_BYTES
        || tag.graphemes(true).count() > MAX_TAG_GRAPHEMES
    {
        return None;
    }
    Some(RichTextSpan {
        range: hash..start + tag.len(),
        kind: SpanKind::Tag {
            tag: tag.to_owned(),
        },
    })
}

fn is_invisible_separator(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{2060}' | '\u{200A}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{20E2}'
    )
}

fn mention_at(text: &str, at: usize) -> Option<RichTextSpan> {
    let rest = &text[at + 1..];
    let run = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
        .count();
    let handle = rest[..run].trim_end_matches(['.', '-']);
    if !is_valid_handle(handle) {
        return None;
    }
    Some(RichTextSpan {
        range: at..at + 1 + handle.len(),
        kind: SpanKind::Mention {
            handle: handle.to_ascii_lowercase(),
        },
    })
}

/// Handle syntax (<https://atproto.com/specs/handle>): two or more labels of letters,
/// digits and inner hyphens, 1–63 characters each, the last one starting with a letter.
fn is_valid_handle(handle: &str) -> bool {
    let labels: Vec<&str> = handle.split('.').collect();
    handle.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_alphabetic()))
}

// ---------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct CreateRecord<'a> {
    repo: &'a str,
    collection: &'a str,
    rkey: &'a str,
    record: &'a PostRecord,
}

#[derive(Serialize)]
struct PostRecord {
    #[serde(rename = "$type")]
    kind: &'static str,
    text: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    langs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    facets: Vec<Facet>,
}

#[derive(Serialize)]
struct Facet {
    index: ByteSlice,
    features: Vec<Feature>,
}

#[derive(Serialize)]
struct ByteSlice {
    #[serde(rename = "byteStart")]
    byte_start: usize,
    #[serde(rename = "byteEnd")]
    byte_end: usize,
}

#[derive(Serialize)]
#[serde(tag = "$type")]
enum Feature {
    #[serde(rename = "app.bsky.richtext.facet#link")]
    Link { uri: String },
    #[serde(rename = "app.bsky.richtext.facet#mention")]
    Mention { did: String },
    #[serde(rename = "app.bsky.richtext.facet#tag")]
    Tag { tag: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(Range<usize>, SpanKind)> {
        detect_rich_text(text)
            .into_iter()
            .map(|s| (s.range, s.kind))
            .collect()
    }

    fn link(uri: &str) -> SpanKind {
        SpanKind::Link { uri: uri.into() }
    }
    fn tag(t: &str) -> SpanKind {
        SpanKind::Tag { tag: t.into() }
    }
    fn mention(h: &str) -> SpanKind {
        SpanKind::Mention { handle: h.into() }
    }

    #[test]
    fn given_the_official_docs_vector_then_mention_and_link_byte_ranges_match() {
        let text = "✨ example mentioning @atproto.com to share the URL 👨‍❤️‍👨 https://en.wikipedia.org/wiki/CBOR.";
        assert_eq!(text.len(), 109);
        assert_eq!(
            spans(text),
            vec![
                (23..35, mention("atproto.com")),
                (74..108, link("https://en.wikipedia.org/wiki/CBOR")),
            ]
        );
    }

    #[test]
    fn given_umlauts_and_emoji_before_a_tag_then_offsets_are_bytes_not_chars() {
        let text = "Café 🦀 #rustlang by @alice.bsky.social https://example.com";
        assert_eq!(
            spans(text),
            vec![
                (11..20, tag("rustlang")),
                (24..42, mention("alice.bsky.social")),
                (43..62, link("https://example.com")),
            ]
        );
    }

    #[test]
    fn given_things_that_are_not_tags_or_mentions_then_nothing_is_detected() {
        assert!(spans("issue#12 #123 #️⃣ # mail@example.com @nodot @-bad.com").is_empty());
        // Tags inside links stay part of the link.
        assert_eq!(
            spans("https://e.com/#frag"),
            vec![(0..19, link("https://e.com/#frag"))]
        );
        // Trailing punctuation is not part of a tag or a handle.
        assert_eq!(
            spans("#launch! (@bob.example.com)."),
            vec![(0..7, tag("launch")), (10..26, mention("bob.example.com"))]
        );
        assert!(spans(&format!("#{}", "a".repeat(65))).is_empty());
        assert_eq!(spans(&format!("#{}", "a".repeat(64))).len(), 1);
    }

    #[test]
    fn given_the_same_key_then_the_record_key_is_the_same_valid_tid() {
        let a = record_key("delivery-123");
        assert_eq!(a, record_key("delivery-123"));
        assert_ne!(a, record_key("delivery-124"));
        assert!(is_tid(&a), "{a}");
    }

    fn is_tid(s: &str) -> bool {
        s.len() == 13
            && "234567abcdefghij".contains(&s[..1])
            && s.bytes().all(|b| BASE32_SORTABLE.contains(&b))
    }

    proptest::proptest! {
        #[test]
        fn every_record_key_is_a_tid_in_the_past_window(key in ".*") {
            let rkey = record_key(&key);
            proptest::prop_assert!(is_tid(&rkey), "{}", rkey);
            // Decode the timestamp back: it lies in [2023-01-01, 2023-01-01 + 2^46 µs).
            let value = rkey.bytes().fold(0u64, |acc, b| {
                (acc << 5) | BASE32_SORTABLE.iter().position(|x| *x == b).unwrap_or(0) as u64
            });
            let micros = value >> 10;
            proptest::prop_assert!((RKEY_EPOCH_MICROS..RKEY_EPOCH_MICROS + (1 << 46)).contains(&micros));
        }

        #[test]
        fn detected_spans_are_on_char_boundaries_and_ordered(text in ".{0,80}") {
            let mut end = 0;
            for s in detect_rich_text(&text) {
                proptest::prop_assert!(s.range.start >= end && s.range.start < s.range.end);
                proptest::prop_assert!(text.is_char_boundary(s.range.start) && text.is_char_boundary(s.range.end));
                end = s.range.end;
            }
        }
    }

    #[test]
    fn created_at_has_milliseconds_and_z() {
        let t: Timestamp = "2026-01-10T12:10:00.123456Z".parse().unwrap();
        assert_eq!(datetime(t), "2026-01-10T12:10:00.123Z");
        let t: Timestamp = "2026-01-10T12:10:00Z".parse().unwrap();
        assert_eq!(datetime(t), "2026-01-10T12:10:00.000Z");
    }

    #[test]
    fn given_error_bodies_then_classified_with_name_and_message() {
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "ratelimit-reset",
            (now.as_second() + 90).to_string().parse().unwrap(),
        );
        let e = classify_error(
            429,
            &h,
            br#"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#,
            now,
        );
        assert_eq!(e.retry_after(), Some(jiff::SignedDuration::from_secs(90)));
        let e = classify_error(
            400,
            &HeaderMap::new(),
            br#"{"error":"InvalidRequest","message":"Invalid app.bsky.feed.post record"}"#,
            now,
        );
        assert_eq!(
            e.to_string(),
            "bluesky rejected the request (HTTP 400): InvalidRequest: Invalid app.bsky.feed.post record"
        );
        let e = classify_error(
            401,
            &HeaderMap::new(),
            br#"{"error":"AuthenticationRequired","message":"Invalid identifier or password"}"#,
            now,
        );
        assert!(matches!(e, PlatformError::AuthExpired { .. }), "{e}");
        let e = classify_error(502, &HeaderMap::new(), b"<html>bad gateway</html>", now);
        assert!(e.is_retryable(), "{e}");
    }
}
