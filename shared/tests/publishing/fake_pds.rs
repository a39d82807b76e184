//! A stateful fake Bluesky PDS reproducing what `platform-apis.md` §2 documents:
//! - `createSession` with an app password, 401 `AuthenticationRequired` otherwise; the
//!   session's DID document names this fake as the account's PDS;
//! - access tokens that expire on demand and then answer **400 `ExpiredToken`** (not 401);
//! - `refreshSession` rotating the pair, 400 `ExpiredToken`/`InvalidToken` for a bad one;
//! - `createRecord` validating the post (graphemes, bytes, langs, TID key, and every facet's
//!   UTF-8 byte range against its feature), and a second create at an existing record key
//!   failing like the real MST insert: **500 `InternalServerError`**;
//! - `getRecord` (400 `RecordNotFound`), `resolveHandle`, and 429 with `RateLimit-*` headers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const DID: &str = "did:plc:u5cwb2mwiv2bfq53cjufe6yn";
pub const HANDLE: &str = "brand.bsky.social";
pub const APP_PASSWORD: &str = "hark-app-pass-9x7q";
const COLLECTION: &str = "app.bsky.feed.post";

#[derive(Default)]
struct PdsState {
    /// Access token → expired?
    access: HashMap<String, bool>,
    /// Refresh token → expired?
    refresh: HashMap<String, bool>,
    issued: u32,
    /// rkey → (cid, record)
    records: BTreeMap<String, (String, Value)>,
    /// handle → DID, for `resolveHandle`.
    directory: HashMap<String, String>,
    /// The NSID of every call, in order.
    calls: Vec<String>,
    rate_limit_reset: Option<i64>,
    app_password_revoked: bool,
    /// This server's URL, published as `#atproto_pds` in session DID documents.
    endpoint: String,
    lose_next_create_response: bool,
    fail_next_create: bool,
}

/// The fake and its server. Dropping it stops the server.
pub struct FakePds {
    pub server: MockServer,
    state: Arc<Mutex<PdsState>>,
}

impl FakePds {
    pub async fn start() -> FakePds {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(PdsState::default()));
        {
            let mut s = state.lock().expect("state");
            s.directory.insert(HANDLE.into(), DID.into());
            s.endpoint = server.uri();
        }
        Mock::given(path_regex("^/xrpc/"))
            .respond_with(Pds {
                state: state.clone(),
            })
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

    /// A session issued elsewhere (by an entryway) that this PDS will accept.
    pub fn issue_session(&self) -> Value {
        issue(&mut self.state())
    }

    /// Another account `resolveHandle` knows.
    pub fn register_handle(&self, handle: &str, did: &str) {
        self.state().directory.insert(handle.into(), did.into());
    }

    /// Every access token issued so far is now expired (the 2-hour lifetime passed).
    pub fn expire_access_tokens(&self) {
        self.state().access.values_mut().for_each(|e| *e = true);
    }

    /// Every refresh token issued so far is now expired (the 90-day lifetime passed).
    pub fn expire_refresh_tokens(&self) {
        self.state().refresh.values_mut().for_each(|e| *e = true);
    }

    /// Every session is forgotten: its tokens now answer 400 `InvalidToken`.
    pub fn revoke_sessions(&self) {
        let mut state = self.state();
        state.access.clear();
        state.refresh.clear();
    }

    /// The app password was deleted in the account settings: sessions die, logins fail.
    pub fn revoke_app_password(&self) {
        self.revoke_sessions();
        self.state().app_password_revoked = true;
    }

    /// Creates answer 429 until further notice, with `RateLimit-Reset: reset`.
    pub fn rate_limit_creates(&self, reset: Timestamp) {
        self.state().rate_limit_reset = Some(reset.as_second());
    }

    /// The next create is committed, but its response is lost (a 502 from a proxy).
    pub fn lose_next_create_response(&self) {
        self.state().lose_next_create_response = true;
    }

    /// The next create fails before anything is written (500).
    pub fn fail_next_create(&self) {
        self.state().fail_next_create = true;
    }

    /// The stored posts: rkey → record.
    pub fn records(&self) -> BTreeMap<String, Value> {
        self.state()
            .records
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    /// How many times `nsid` was called.
    pub fn calls(&self, nsid: &str) -> usize {
        self.state().calls.iter().filter(|c| *c == nsid).count()
    }

    pub fn total_calls(&self) -> usize {
        self.state().calls.len()
    }
}

struct Pds {
    state: Arc<Mutex<PdsState>>,
}

fn error(status: u16, name: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": name, "message": message }))
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
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let nsid = request.url.path().trim_start_matches("/xrpc/").to_owned();
        state.calls.push(nsid.clone());
        match nsid.as_str() {
            "com.atproto.server.createSession" => create_session(&mut state, request),
            "com.atproto.server.refreshSession" => refresh_session(&mut state, request),
            "com.atproto.repo.createRecord" => create_record(&mut state, request),
            "com.atproto.repo.getRecord" => get_record(&state, request),
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

fn invalid_token() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_raw(
        crate::support::fixture("bluesky/error_invalid_token.json"),
        "application/json",
    )
}

fn issue(state: &mut PdsState) -> Value {
    state.issued += 1;
    let access = format!("eyJhY2Nlc3MiOnRydWV9.{}.sig", state.issued);
    let refresh = format!("eyJyZWZyZXNoIjp0cnVlfQ.{}.sig", state.issued);
    state.access.insert(access.clone(), false);
    state.refresh.insert(refresh.clone(), false);
    json!({
        "did": DID, "handle": HANDLE, "email": "ops@example.com", "emailConfirmed": true,
        "active": true, "accessJwt": access, "refreshJwt": refresh,
        "didDoc": {
            "id": DID,
            "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                          "serviceEndpoint": state.endpoint }],
        },
    })
}

fn create_session(state: &mut PdsState, request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    if body["identifier"] == HANDLE
        && body["password"] == APP_PASSWORD
        && !state.app_password_revoked
    {
        ResponseTemplate::new(200).set_body_json(issue(state))
    } else {
        ResponseTemplate::new(401).set_body_raw(
            crate::support::fixture("bluesky/error_authentication_required.json"),
            "application/json",
        )
    }
}

fn refresh_session(state: &mut PdsState, request: &Request) -> ResponseTemplate {
    let Some(token) = bearer(request) else {
        return error(401, "AuthenticationRequired", "Authentication Required");
    };
    match state.refresh.get(&token).copied() {
        None => invalid_token(),
        Some(true) => error(400, "ExpiredToken", "Token has expired"),
        Some(false) => {
            // Refresh tokens rotate: the old one is spent.
            state.refresh.remove(&token);
            ResponseTemplate::new(200).set_body_json(issue(state))
        }
    }
}

fn is_tid(s: &str) -> bool {
    const ALPHABET: &str = "234567abcdefghijklmnopqrstuvwxyz";
    s.len() == 13 && "234567abcdefghij".contains(&s[..1]) && s.chars().all(|c| ALPHABET.contains(c))
}

fn invalid(reason: String) -> ResponseTemplate {
    error(
        400,
        "InvalidRequest",
        &format!("Invalid app.bsky.feed.post record: {reason}"),
    )
}

fn create_record(state: &mut PdsState, request: &Request) -> ResponseTemplate {
    match bearer(request).map(|t| state.access.get(&t).copied()) {
        None => return error(401, "AuthenticationRequired", "Authentication Required"),
        Some(None) => return invalid_token(),
        Some(Some(true)) => {
            return ResponseTemplate::new(400).set_body_raw(
                crate::support::fixture("bluesky/error_expired_token.json"),
                "application/json",
            );
        }
        Some(Some(false)) => {}
    }
    if let Some(reset) = state.rate_limit_reset {
        return ResponseTemplate::new(429)
            .insert_header("RateLimit-Limit", "5000")
            .insert_header("RateLimit-Remaining", "0")
            .insert_header("RateLimit-Reset", reset.to_string().as_str())
            .insert_header("RateLimit-Policy", "5000;w=3600")
            .set_body_raw(
                crate::support::fixture("bluesky/error_rate_limit.json"),
                "application/json",
            );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return error(400, "InvalidRequest", "Input must be an object");
    };
    if body["repo"] != DID {
        return error(
            400,
            "InvalidRequest",
            &format!("Could not find repo: {}", body["repo"]),
        );
    }
    if body["collection"] != COLLECTION {
        return error(400, "InvalidRequest", "Unexpected collection");
    }
    let Some(rkey) = body["rkey"]
        .as_str()
        .filter(|k| is_tid(k))
        .map(str::to_owned)
    else {
        return error(400, "InvalidRequest", "Invalid record key");
    };
    let record = body["record"].clone();
    if let Err(reason) = validate_post(&record, &state.directory) {
        return invalid(reason);
    }
    if state.fail_next_create {
        state.fail_next_create = false;
        return ResponseTemplate::new(500).set_body_raw(
            crate::support::fixture("bluesky/error_internal.json"),
            "application/json",
        );
    }
    if state.records.contains_key(&rkey) {
        // The MST insert throws "There is already a value at key", unmapped: a bare 500.
        return ResponseTemplate::new(500).set_body_raw(
            crate::support::fixture("bluesky/error_internal.json"),
            "application/json",
        );
    }
    let cid = format!("bafyreifake{:0>48}", state.records.len() + 1);
    state.records.insert(rkey.clone(), (cid.clone(), record));
    if state.lose_next_create_response {
        state.lose_next_create_response = false;
        return ResponseTemplate::new(502)
            .set_body_raw("<html>502 Bad Gateway</html>", "text/html");
    }
    ResponseTemplate::new(200).set_body_json(json!({
        "uri": format!("at://{DID}/{COLLECTION}/{rkey}"),
        "cid": cid,
        "commit": { "cid": "bafyreihq3vmuxjd2djgbkp5ygxn5aat5ulqamo7gmvbnxvm4hlbh3wz7dm", "rev": "3lfqz7l2d4k2b" },
        "validationStatus": "valid",
    }))
}

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
        for (i, lang) in langs.iter().enumerate() {
            let ok = lang.as_str().is_some_and(|l| {
                let mut parts = l.split('-');
                parts.next().is_some_and(|p| {
                    (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic())
                }) && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
            });
            if !ok {
                return Err(format!("Record/langs/{i} must be a valid language code"));
            }
        }
    }
    let bytes = text.as_bytes();
    let mut previous_end = 0;
    for (i, facet) in record["facets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let start = facet["index"]["byteStart"]
            .as_u64()
            .ok_or(format!("Record/facets/{i}/index/byteStart"))? as usize;
        let end = facet["index"]["byteEnd"]
            .as_u64()
            .ok_or(format!("Record/facets/{i}/index/byteEnd"))? as usize;
        if start >= end || end > bytes.len() || start < previous_end {
            return Err(format!(
                "Record/facets/{i}/index is out of range or overlapping"
            ));
        }
        previous_end = end;
        let Ok(covered) = std::str::from_utf8(&bytes[start..end]) else {
            return Err(format!(
                "Record/facets/{i}/index does not fall on character boundaries"
            ));
        };
        let feature = &facet["features"][0];
        let expected = match feature["$type"].as_str() {
            Some("app.bsky.richtext.facet#link") => feature["uri"].as_str().map(str::to_owned),
            Some("app.bsky.richtext.facet#tag") => feature["tag"].as_str().map(|t| format!("#{t}")),
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

fn get_record(state: &PdsState, request: &Request) -> ResponseTemplate {
    let rkey = query(request, "rkey").unwrap_or_default();
    let uri = format!("at://{DID}/{COLLECTION}/{rkey}");
    match (query(request, "repo").as_deref(), state.records.get(&rkey)) {
        (Some(DID), Some((cid, value))) => ResponseTemplate::new(200)
            .set_body_json(json!({ "uri": uri, "cid": cid, "value": value })),
        _ => error(
            400,
            "RecordNotFound",
            &format!("Could not locate record: {uri}"),
        ),
    }
}
