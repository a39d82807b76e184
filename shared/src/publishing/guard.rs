//! Which platforms guard a create against duplicates, and for how long: the one place that
//! decides whether a create that may have reached a platform may be sent again.

use jiff::{SignedDuration, Timestamp};

use crate::domain::Platform;

/// How a platform protects a repeated create request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateGuard {
    /// The platform remembers an idempotency key for `ttl` and answers a repeat with the
    /// post it already made. Mastodon keeps `Idempotency-Key` for one hour
    /// (<https://docs.joinmastodon.org/methods/statuses/#create>).
    ExpiringKey { ttl: SignedDuration },
    /// We choose the record key; a second create at the same key is refused forever, and
    /// the first record can be read back. Bluesky's `createRecord` with an `rkey` derived
    /// from the delivery id (`platform-apis.md` §2.3).
    RecordKey,
    /// No guard (Telegram, Discord, Slack and the platforms of later issues): a create that
    /// may have arrived is never repeated; it becomes UNKNOWN for the reconciler.
    None,
}

/// How long after the first send a Mastodon delivery may still be re-sent under its key:
/// the server keeps keys for 60 minutes, and our clock, the time a request spends queued
/// in front of the instance and the instance's own clock all drift, so we stop 10 minutes
/// early. A retry later than that could post twice; such a delivery is declared UNKNOWN
/// instead (a reconciler looks for it on the account) — the safe choice.
pub const MASTODON_RESEND_WINDOW: SignedDuration = SignedDuration::from_mins(50);

/// The guard of `platform`'s create call.
pub fn create_guard(platform: Platform) -> CreateGuard {
    match platform {
        Platform::Mastodon => CreateGuard::ExpiringKey {
            ttl: SignedDuration::from_hours(1),
        },
        Platform::Bluesky => CreateGuard::RecordKey,
        _ => CreateGuard::None,
    }
}

impl CreateGuard {
    /// Whether a create first sent at `first_sent_at` may be sent again at `now` without
    /// risking a second post.
    pub fn allows_resend(self, first_sent_at: Timestamp, now: Timestamp) -> bool {
        match self {
            CreateGuard::RecordKey => true,
            CreateGuard::ExpiringKey { ttl } => {
                let window = MASTODON_RESEND_WINDOW.min(ttl);
                now.duration_since(first_sent_at) < window
            }
            CreateGuard::None => false,
        }
    }

    /// Whether the create is guarded at all.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, CreateGuard::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_780_000_000 + s).unwrap()
    }

    #[test]
    fn given_mastodon_then_a_resend_is_allowed_only_well_inside_the_key_hour() {
        let guard = create_guard(Platform::Mastodon);
        assert!(guard.allows_resend(t(0), t(49 * 60)));
        assert!(
            !guard.allows_resend(t(0), t(50 * 60)),
            "10 minutes of margin"
        );
        assert!(!guard.allows_resend(t(0), t(3 * 3600)));
    }

    #[test]
    fn given_bluesky_then_the_record_key_allows_a_resend_whenever() {
        assert!(create_guard(Platform::Bluesky).allows_resend(t(0), t(86_400 * 30)));
    }

    #[test]
    fn given_unguarded_platforms_then_a_resend_is_never_allowed() {
        for p in [
            Platform::Telegram,
            Platform::Discord,
            Platform::Slack,
            Platform::X,
        ] {
            assert!(!create_guard(p).allows_resend(t(0), t(1)), "{p}");
            assert!(!create_guard(p).is_idempotent());
        }
    }
}
