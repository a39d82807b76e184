//! Domain types and rules. No I/O here.

mod campaign;
mod channel;
mod delivery;
mod interval;
mod mention;
mod platform;
mod post;
mod secret;
mod source;

pub use campaign::{
    Approval, Campaign, PublishPolicy, PublishTemplate, QuietHours, TEMPLATE_PLACEHOLDERS,
    TriggerAction, TriggerCondition, TriggerRule,
};
pub use channel::Channel;
pub use delivery::{Delivery, DeliveryState, DeliveryStatus, TransitionError};
pub use interval::{Interval, InvalidInterval};
pub use mention::{Author, Engagement, Mention, MentionKey, Sentiment, SentimentLabel};
pub use platform::{Platform, UnknownPlatform};
pub use post::{
    Draft, Occurrence, OriginKind, PostError, PostOrigin, Recurrence, RecurrenceEnd,
    RecurrenceError, RecurrenceRule, ScheduledPost,
};
pub use secret::{InvalidSecretRef, Secret, SecretRef};
pub use source::{Cursor, Disabled, Source, SourceHealth};

/// Checks an id written by a user (sources, campaigns, channels, posts, rules):
/// 1–64 characters of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit.
pub fn validate_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 64 {
        return Err("an id must be 1 to 64 characters long");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err("an id may only contain a-z, 0-9, '-' and '_'");
    }
    if !id.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("an id must start with a letter or a digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_id;

    #[test]
    fn ids_follow_the_documented_alphabet() {
        assert!(validate_id("launch-2026_eu").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("Launch").is_err());
        assert!(validate_id("-x").is_err());
        assert!(validate_id("a#b").is_err());
        assert!(validate_id(&"a".repeat(65)).is_err());
    }
}
