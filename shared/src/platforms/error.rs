//! How platform failures are classified, once, in the client that saw them.

use jiff::SignedDuration;

use crate::domain::Platform;

/// A platform call failed. The variant decides what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Rate limited, overloaded or unreachable before the request was accepted: try again,
    /// not before `after` when the platform said when.
    #[error("{platform}: temporarily unavailable ({reason}){}", retry_hint(.after))]
    Retryable {
        platform: Platform,
        after: Option<SignedDuration>,
        reason: String,
    },
    /// The platform refused the request (validation, not found, forbidden): retrying the
    /// same request cannot help. `message` is the platform's own words.
    #[error("{platform} rejected the request{}: {message}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Permanent {
        platform: Platform,
        status: Option<u16>,
        message: String,
    },
    /// Credentials expired or were revoked: an operator must re-authorise the account.
    #[error("{platform}: credentials expired or revoked: {message}")]
    AuthExpired { platform: Platform, message: String },
    /// The request may have been processed (e.g. a timeout after sending a create to a
    /// platform without idempotency): must be reconciled, never blindly retried.
    #[error("{platform}: outcome unknown ({reason})")]
    Ambiguous { platform: Platform, reason: String },
    /// The platform answered with something Hark cannot read (malformed JSON/XML, missing
    /// fields). Nothing from the response was used.
    #[error("{platform}: unreadable response: {detail}")]
    Malformed { platform: Platform, detail: String },
    /// The configured URL is not allowed (private/loopback address without opt-in) or invalid.
    #[error("{platform}: {source}")]
    Url {
        platform: Platform,
        #[source]
        source: super::http::UrlError,
    },
}

fn retry_hint(after: &Option<SignedDuration>) -> String {
    after
        .map(|d| format!(", retry in {}s", d.as_secs().max(0)))
        .unwrap_or_default()
}

impl PlatformError {
    pub fn platform(&self) -> Platform {
        match self {
            PlatformError::Retryable { platform, .. }
            | PlatformError::Permanent { platform, .. }
            | PlatformError::AuthExpired { platform, .. }
            | PlatformError::Ambiguous { platform, .. }
            | PlatformError::Malformed { platform, .. }
            | PlatformError::Url { platform, .. } => *platform,
        }
    }

    /// Whether the same request may simply be sent again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PlatformError::Retryable { .. })
    }

    /// The platform's requested wait, if any.
    pub fn retry_after(&self) -> Option<SignedDuration> {
        match self {
            PlatformError::Retryable { after, .. } => *after,
            _ => None,
        }
    }

    /// A short machine-readable name of the class (logs, events, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            PlatformError::Retryable { .. } => "retryable",
            PlatformError::Permanent { .. } => "permanent",
            PlatformError::AuthExpired { .. } => "auth_expired",
            PlatformError::Ambiguous { .. } => "ambiguous",
            PlatformError::Malformed { .. } => "malformed",
            PlatformError::Url { .. } => "invalid_url",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_platform_and_its_words() {
        let e = PlatformError::Permanent {
            platform: Platform::Mastodon,
            status: Some(422),
            message: "Validation failed: Text can't be blank".into(),
        };
        assert_eq!(
            e.to_string(),
            "mastodon rejected the request (HTTP 422): Validation failed: Text can't be blank"
        );
        let e = PlatformError::Retryable {
            platform: Platform::X,
            after: Some(SignedDuration::from_secs(42)),
            reason: "HTTP 429".into(),
        };
        assert_eq!(
            e.to_string(),
            "x: temporarily unavailable (HTTP 429), retry in 42s"
        );
        assert!(e.is_retryable());
        assert_eq!(e.kind(), "retryable");
    }
}
