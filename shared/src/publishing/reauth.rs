//! "This channel needs re-authentication": a flag stored per channel, set when a platform
//! refuses its credentials, announced once, and cleared when the credentials change (or an
//! operator clears it). While it is set, deliveries to the channel fail at once with a
//! clear reason instead of hammering the platform with a dead token.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::Channel;
use crate::events::HarkEvent;
use crate::ports::{ConfigEntity, ConfigStore, EntityKind, MessageQueue, QueueName, StoreError};

use super::PublishingError;

/// The stored re-authentication state of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelAuth {
    pub channel_id: String,
    /// The platform refused the channel's credentials and they have not changed since.
    pub needs_reauth: bool,
    /// The platform's words when it refused them.
    pub reason: String,
    /// When they were refused.
    pub since: Timestamp,
    /// Fingerprint of the refused credentials (see
    /// [`ChannelPublisher::credentials`](super::ChannelPublisher)): when the channel's
    /// current credentials have another fingerprint, someone replaced them and the flag
    /// no longer applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Counts the times the channel was flagged; part of the alert's event id, so one
    /// flagging is one event however often it is re-sent.
    pub episode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<Timestamp>,
}

impl ConfigEntity for ChannelAuth {
    const KIND: EntityKind = EntityKind::ChannelAuth;
    fn id(&self) -> &str {
        &self.channel_id
    }
}

impl ChannelAuth {
    /// Whether the flag applies to credentials with fingerprint `current`.
    pub fn applies_to(&self, current: Option<&str>) -> bool {
        self.needs_reauth
            && match (self.credentials.as_deref(), current) {
                (Some(refused), Some(current)) => refused == current,
                // Without fingerprints we cannot tell a fix from the old credentials.
                _ => true,
            }
    }

    /// The id of the alert for this flagging.
    pub fn event_id(&self) -> String {
        format!("channel:{}:needs-reauth:{}", self.channel_id, self.episode)
    }
}

/// The channel's flag, if it is set.
pub(crate) async fn active_flag<S: ConfigStore>(
    store: &S,
    channel_id: &str,
) -> Result<Option<ChannelAuth>, StoreError> {
    Ok(store
        .get::<ChannelAuth>(channel_id)
        .await?
        .filter(|f| f.needs_reauth))
}

/// Flags `channel` (unless it is flagged for these credentials already) and sends one
/// `ChannelNeedsReauth`. The event goes out before the flag is written: a crash in between
/// re-sends the same event id on the next attempt instead of never alerting.
pub(crate) async fn flag_channel<S: ConfigStore>(
    store: &S,
    queue: &dyn MessageQueue,
    channel: &Channel,
    reason: &str,
    credentials: Option<&str>,
    now: Timestamp,
) -> Result<(), PublishingError> {
    let previous = store.get::<ChannelAuth>(&channel.id).await?;
    if let Some(flag) = &previous
        && flag.applies_to(credentials)
    {
        return Ok(());
    }
    let flag = ChannelAuth {
        channel_id: channel.id.clone(),
        needs_reauth: true,
        reason: reason.to_owned(),
        since: now,
        credentials: credentials.map(str::to_owned),
        episode: previous.map_or(1, |p| p.episode + 1),
        cleared_at: None,
    };
    let event = HarkEvent::ChannelNeedsReauth {
        event_id: flag.event_id(),
        channel_id: channel.id.clone(),
        platform: channel.platform,
        reason: reason.to_owned(),
        at: now,
    };
    queue
        .send_batch(QueueName::Events, &[serde_json::to_string(&event)?])
        .await?;
    tracing::warn!(channel_id = %channel.id, platform = %channel.platform, reason, "channel needs re-authentication");
    store.upsert(&flag).await?;
    Ok(())
}

/// Clears the flag (credentials replaced, or an operator says so). `Ok(false)` when it was
/// not set.
pub(crate) async fn clear_flag<S: ConfigStore>(
    store: &S,
    channel_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let Some(mut flag) = active_flag(store, channel_id).await? else {
        return Ok(false);
    };
    flag.needs_reauth = false;
    flag.cleared_at = Some(now);
    store.upsert(&flag).await?;
    tracing::info!(channel_id, "re-authentication flag cleared");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(credentials: Option<&str>) -> ChannelAuth {
        ChannelAuth {
            channel_id: "masto".into(),
            needs_reauth: true,
            reason: "The access token is invalid".into(),
            since: Timestamp::from_second(1_780_000_000).unwrap(),
            credentials: credentials.map(Into::into),
            episode: 2,
            cleared_at: None,
        }
    }

    #[test]
    fn given_a_flag_then_it_applies_until_the_credentials_change() {
        let f = flag(Some("aaaa"));
        assert!(f.applies_to(Some("aaaa")));
        assert!(!f.applies_to(Some("bbbb")), "replaced credentials");
        assert!(
            f.applies_to(None),
            "unknown credentials: keep failing clearly"
        );
        assert!(flag(None).applies_to(Some("bbbb")));
        let mut cleared = f.clone();
        cleared.needs_reauth = false;
        assert!(!cleared.applies_to(Some("aaaa")));
        assert_eq!(f.event_id(), "channel:masto:needs-reauth:2");
    }
}
