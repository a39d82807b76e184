//! Bluesky (AT Protocol) publishing: app-password sessions, deterministic record keys,
//! rich-text facets.
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

use std::ops::Range;
use std::sync::Arc;

use jiff::Timestamp;
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
use crate::domain::{Platform, Secret};
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
    service: String,
    identifier: String,
    password: Secret,
    langs: Vec<String>,
    clock: Arc<dyn Clock>,
    /// Logging in is limited to 30 per 5 minutes per account: keep the session.
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

impl BlueskyPublisher {
    /// A publisher for the account `identifier` (handle, e-mail or DID) on `service`.
    pub fn new(
        http: HttpClient,
        service: impl Into<String>,
        identifier: impl Into<String>,
        app_password: Secret,
    ) -> Self {
        BlueskyPublisher {
            http,
            service: service.into(),
            identifier: identifier.into(),
            password: app_password,
            langs: Vec::new(),
            clock: Arc::new(SystemClock),
            session: Mutex::new(None),
        }
    }

    /// Languages to declare on every post (`langs`, at most 3 are sent).
    pub fn with_langs(mut self, langs: impl IntoIterator<Item = String>) -> Self {
        self.langs = langs.into_iter().take(3).collect();
        self
    }

    /// The clock for `createdAt` and rate-limit waits (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        idempotent: bool,
    ) -> Result<Reply, PlatformError> {
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

    async fn create_session(&self, base: &Url) -> Result<Session, PlatformError> {
        let body = serde_json::json!({
            "identifier": self.identifier,
            "password": self.password.expose(),
        });
        let reply = self
            .send(
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
        let reply = self
            .send(
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
            // Another publish renewed it while we waited for the lock.
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
        let reply = match self
            .send(
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
        let reply = match self.send(self.http.client().get(url), true).await {
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
        let reply = self.send(self.http.client().get(url), true).await.ok()?;
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
        let entryway = self.http.checked_url(PLATFORM, &self.service).await?;
        let rkey = record_key(idempotency_key);
        let session = self.current_session(&entryway).await?;
        let pds = self.pds_of(&session, &entryway).await?;
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
                    let session = self.renew_session(&entryway, &pds, &session).await?;
                    let pds = self.pds_of(&session, &entryway).await?;
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
