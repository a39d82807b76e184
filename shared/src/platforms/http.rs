//! The HTTP client every platform client shares: timeouts, a descriptive User-Agent, and a
//! guard against user-supplied URLs that point into private networks (SSRF).

use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use super::PlatformError;
use crate::domain::{Platform, Secret};

/// Sent with every request; Reddit and others require a descriptive one.
pub const USER_AGENT: &str = concat!(
    "hark/",
    env!("CARGO_PKG_VERSION"),
    " (social listening; +https://github.com/hark-listening/hark)"
);

/// A URL that Hark will not call. Messages name the host, never the whole URL (webhook
/// URLs are secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("invalid URL: {reason}")]
    Invalid { reason: String },
    #[error("URL scheme `{scheme}` is not allowed (use https or http)")]
    Scheme { scheme: String },
    #[error(
        "host `{host}` resolves to {addr}, a private, loopback or link-local address; \
         set HARK_ALLOW_PRIVATE_URLS=1 to allow it"
    )]
    Private { host: String, addr: IpAddr },
    #[error("host `{host}` does not resolve")]
    Unresolvable { host: String },
}

/// Whether an address is outside the public internet (loopback, RFC 1918, link-local,
/// CGNAT, unique-local, unspecified, broadcast, documentation, IPv4-mapped of those).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64/10
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        }
    }
}

/// A reqwest client plus the private-address policy.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpClient {
    /// Connect timeout 5 s, whole request 20 s: one Lambda invocation stays short.
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        Self::with_timeout(allow_private, Duration::from_secs(20))
    }

    pub fn with_timeout(allow_private: bool, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .build()?;
        Ok(HttpClient {
            client,
            allow_private,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Parses `raw` and checks it may be called: http(s) only, and unless private URLs are
    /// allowed, every address the host resolves to must be public.
    pub async fn checked_url(&self, platform: Platform, raw: &str) -> Result<Url, PlatformError> {
        let to_err = |source| PlatformError::Url { platform, source };
        let url = Url::parse(raw).map_err(|e| {
            to_err(UrlError::Invalid {
                reason: e.to_string(),
            })
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(to_err(UrlError::Scheme {
                scheme: url.scheme().to_owned(),
            }));
        }
        if self.allow_private {
            return Ok(url);
        }
        let host = url
            .host_str()
            .ok_or_else(|| {
                to_err(UrlError::Invalid {
                    reason: "no host".into(),
                })
            })?
            .to_owned();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let port = url.port_or_known_default().unwrap_or(443);
                tokio::net::lookup_host((bare, port))
                    .await
                    .map(|it| it.map(|sa| sa.ip()).collect())
                    .unwrap_or_default()
            }
        };
        if addrs.is_empty() {
            return Err(to_err(UrlError::Unresolvable { host }));
        }
        if let Some(addr) = addrs.into_iter().find(|a| is_private(*a)) {
            return Err(to_err(UrlError::Private { host, addr }));
        }
        Ok(url)
    }
}

/// A platform's whole answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Sends `request` and reads the whole answer; transport failures (while sending or while
/// reading the body) are classified once, by [`transport_error`].
pub async fn exchange(
    platform: Platform,
    request: reqwest::RequestBuilder,
    idempotent: bool,
) -> Result<Answer, PlatformError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(platform, &e, idempotent))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(platform, &e, idempotent))?
        .to_vec();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Classifies a transport error. `idempotent` says whether repeating the request is
/// harmless (reads, or creates guarded by an idempotency key / client-chosen id).
pub fn transport_error(
    platform: Platform,
    err: &reqwest::Error,
    idempotent: bool,
) -> PlatformError {
    // A connect error means nothing reached the server: always safe to retry.
    if err.is_connect() || idempotent {
        return PlatformError::Retryable {
            platform,
            after: None,
            reason: describe(err),
        };
    }
    PlatformError::Ambiguous {
        platform,
        reason: describe(err),
    }
}

/// A description of a reqwest error without its URL (which may hold a secret).
fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "broken response body"
    } else if err.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    what.to_owned()
}

/// The usual reading of an HTTP error status: 429 and 5xx retryable (after `Retry-After`
/// when given), 401 expired auth, other 4xx permanent. Clients handle their quirks first
/// and fall back to this.
pub fn classify_status(
    platform: Platform,
    status: StatusCode,
    headers: &HeaderMap,
    message: String,
    now: Timestamp,
) -> PlatformError {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return PlatformError::Retryable {
            platform,
            after: super::ratelimit::retry_after(headers, now),
            reason: format!("HTTP {}: {message}", status.as_u16()),
        };
    }
    if status == StatusCode::UNAUTHORIZED {
        return PlatformError::AuthExpired { platform, message };
    }
    PlatformError::Permanent {
        platform,
        status: Some(status.as_u16()),
        message,
    }
}

/// `Authorization: Bearer …`, marked sensitive so it is never printed.
pub fn bearer(platform: Platform, token: &Secret) -> Result<HeaderValue, PlatformError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        PlatformError::AuthExpired {
            platform,
            message: "the access token contains characters not allowed in an HTTP header".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `base` with `segments` appended to its path (an instance, proxy or fake may live under
/// a path); query and fragment dropped.
pub fn api_url(platform: Platform, base: &Url, segments: &[&str]) -> Result<Url, PlatformError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| PlatformError::Url {
            platform,
            source: UrlError::Invalid {
                reason: "the base URL cannot have a path".into(),
            },
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A response body that is not the JSON the platform documents. Nothing from it is used.
pub fn malformed_json(platform: Platform, what: &str, err: &serde_json::Error) -> PlatformError {
    PlatformError::Malformed {
        platform,
        detail: format!("{what} is not the documented JSON: {err}"),
    }
}

/// Keeps error text from a platform short and on one line for logs and events.
pub fn clip(text: &str, max_chars: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() <= max_chars {
        trimmed.to_owned()
    } else {
        let mut s: String = trimmed.chars().take(max_chars).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn given_loopback_url_when_private_not_allowed_then_refused_naming_only_the_host() {
        let http = HttpClient::new(false).unwrap();
        let err = http
            .checked_url(
                Platform::Slack,
                "http://127.0.0.1:9/services/T000/B000/SECRETTOKEN",
            )
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("127.0.0.1") && msg.contains("HARK_ALLOW_PRIVATE_URLS"),
            "{msg}"
        );
        assert!(!msg.contains("SECRETTOKEN"), "{msg}");
        let err = http
            .checked_url(Platform::Rss, "http://localhost/feed")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PlatformError::Url {
                    source: UrlError::Private { .. },
                    ..
                }
            ),
            "{err}"
        );
        let err = http
            .checked_url(Platform::Rss, "http://[::1]/feed")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PlatformError::Url {
                    source: UrlError::Private { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn given_allow_private_then_loopback_is_accepted_but_schemes_still_checked() {
        let http = HttpClient::new(true).unwrap();
        assert!(
            http.checked_url(Platform::Rss, "http://127.0.0.1:8080/feed")
                .await
                .is_ok()
        );
        let err = http
            .checked_url(Platform::Rss, "file:///etc/passwd")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            PlatformError::Url {
                source: UrlError::Scheme { .. },
                ..
            }
        ));
        let err = http
            .checked_url(Platform::Rss, "not a url")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            PlatformError::Url {
                source: UrlError::Invalid { .. },
                ..
            }
        ));
    }

    #[test]
    fn status_classification_follows_http_semantics() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let h = HeaderMap::new();
        let c = |s: u16| {
            classify_status(
                Platform::X,
                StatusCode::from_u16(s).unwrap(),
                &h,
                "m".into(),
                now,
            )
        };
        assert!(c(429).is_retryable());
        assert!(c(503).is_retryable());
        assert!(matches!(c(401), PlatformError::AuthExpired { .. }));
        assert!(matches!(
            c(422),
            PlatformError::Permanent {
                status: Some(422),
                ..
            }
        ));
    }

    #[test]
    fn clip_keeps_one_short_line() {
        assert_eq!(clip("a\nb\tc", 10), "a b c");
        assert_eq!(clip(&"x".repeat(20), 5), "xxxxx…");
    }
}
