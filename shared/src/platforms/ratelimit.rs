//! Rate-limit header dialects, one parser each. Platforms say "when can I come back" in
//! different ways; every client turns its dialect into a [`RateLimit`].

use jiff::{SignedDuration, Timestamp};
use reqwest::header::HeaderMap;

/// What the platform said about the caller's remaining budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// When the window resets.
    pub reset_at: Option<Timestamp>,
}

impl RateLimit {
    /// How long to wait from `now` until the window resets (zero if it already has).
    pub fn wait_from(&self, now: Timestamp) -> Option<SignedDuration> {
        self.reset_at
            .map(|r| now.duration_until(r).max(SignedDuration::ZERO))
    }

    /// True when the budget is spent (remaining == 0).
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    let v = header(headers, name)?;
    v.parse::<u64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// Mastodon: `X-RateLimit-Limit/Remaining/Reset`, Reset an ISO-8601 timestamp
/// (<https://docs.joinmastodon.org/api/rate-limits/>).
pub fn mastodon(headers: &HeaderMap) -> RateLimit {
    RateLimit {
        limit: number(headers, "x-ratelimit-limit"),
        remaining: number(headers, "x-ratelimit-remaining"),
        reset_at: header(headers, "x-ratelimit-reset").and_then(|v| v.parse().ok()),
    }
}

/// Bluesky / atproto: `RateLimit-Limit/Remaining/Reset`, Reset in unix seconds.
pub fn atproto(headers: &HeaderMap) -> RateLimit {
    RateLimit {
        limit: number(headers, "ratelimit-limit"),
        remaining: number(headers, "ratelimit-remaining"),
        reset_at: number(headers, "ratelimit-reset").and_then(unix),
    }
}

/// X: `x-rate-limit-limit/remaining/reset`, reset in unix seconds.
pub fn x(headers: &HeaderMap) -> RateLimit {
    RateLimit {
        limit: number(headers, "x-rate-limit-limit"),
        remaining: number(headers, "x-rate-limit-remaining"),
        reset_at: number(headers, "x-rate-limit-reset").and_then(unix),
    }
}

/// Reddit: `X-Ratelimit-Used/Remaining/Reset`, Reset = seconds until the window ends
/// (values may be floats).
pub fn reddit(headers: &HeaderMap, now: Timestamp) -> RateLimit {
    let used = number(headers, "x-ratelimit-used");
    let remaining = number(headers, "x-ratelimit-remaining");
    RateLimit {
        limit: used.zip(remaining).map(|(u, r)| u + r),
        remaining,
        reset_at: number(headers, "x-ratelimit-reset")
            .and_then(|s| now.checked_add(SignedDuration::from_secs(s as i64)).ok()),
    }
}

/// Generic `Retry-After`: delay in seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<SignedDuration> {
    let v = header(headers, "retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0).then(|| SignedDuration::from_secs_f64(secs));
    }
    let date = parse_http_date(v)?;
    Some(now.duration_until(date).max(SignedDuration::ZERO))
}

fn unix(seconds: u64) -> Option<Timestamp> {
    Timestamp::from_second(i64::try_from(seconds).ok()?).ok()
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers may send.
pub fn parse_http_date(v: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::parse(v)
        .ok()
        .map(|zoned| zoned.timestamp())
}

/// Formats an instant as an IMF-fixdate (for `If-Modified-Since`).
pub fn format_http_date(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn now() -> Timestamp {
        "2026-01-10T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn mastodon_reset_is_an_iso_timestamp_with_microseconds() {
        let rl = mastodon(&headers(&[
            ("X-RateLimit-Limit", "300"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "2026-01-10T12:05:00.000000Z"),
        ]));
        assert_eq!(rl.limit, Some(300));
        assert!(rl.exhausted());
        assert_eq!(rl.wait_from(now()), Some(SignedDuration::from_secs(300)));
    }

    #[test]
    fn atproto_and_x_resets_are_unix_seconds() {
        let reset = now().as_second() + 60;
        let a = atproto(&headers(&[
            ("RateLimit-Remaining", "5"),
            ("RateLimit-Reset", &reset.to_string()),
        ]));
        assert_eq!(a.wait_from(now()), Some(SignedDuration::from_secs(60)));
        let x = x(&headers(&[
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", &reset.to_string()),
        ]));
        assert!(x.exhausted());
        assert_eq!(x.wait_from(now()), Some(SignedDuration::from_secs(60)));
    }

    #[test]
    fn reddit_reset_is_seconds_from_now_as_float() {
        let r = reddit(
            &headers(&[
                ("X-Ratelimit-Used", "98.0"),
                ("X-Ratelimit-Remaining", "2.0"),
                ("X-Ratelimit-Reset", "412"),
            ]),
            now(),
        );
        assert_eq!(r.limit, Some(100));
        assert_eq!(r.remaining, Some(2));
        assert_eq!(r.wait_from(now()), Some(SignedDuration::from_secs(412)));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(
            retry_after(&headers(&[("Retry-After", "120")]), now()),
            Some(SignedDuration::from_secs(120))
        );
        assert_eq!(
            retry_after(
                &headers(&[("Retry-After", "Sat, 10 Jan 2026 12:01:30 GMT")]),
                now()
            ),
            Some(SignedDuration::from_secs(90))
        );
        assert_eq!(
            retry_after(&headers(&[("Retry-After", "soon")]), now()),
            None
        );
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn http_dates_round_trip() {
        let t = now();
        assert_eq!(format_http_date(t), "Sat, 10 Jan 2026 12:00:00 GMT");
        assert_eq!(parse_http_date(&format_http_date(t)), Some(t));
    }

    #[test]
    fn garbage_headers_are_ignored_not_fatal() {
        let rl = mastodon(&headers(&[
            ("X-RateLimit-Remaining", "lots"),
            ("X-RateLimit-Reset", "tomorrow"),
        ]));
        assert_eq!(rl, RateLimit::default());
    }
}
