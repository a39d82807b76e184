//! Events Hark emits on its events queue (and, through the actions function, to
//! EventBridge and alert channels). The JSON shape is a contract: `type` names the event.
//!
//! Queues deliver at least once, so the same event may arrive twice. Every event has a
//! deterministic [`HarkEvent::event_id`]: two messages with the same id are the same event,
//! and consumers deduplicate on it. Publishing events carry their id in the message
//! (`event_id`); see [`Delivery::event_id`](crate::domain::Delivery::event_id) for how it is
//! formed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{Platform, SentimentLabel, TriggerAction};

/// Something operators or other systems should hear about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum HarkEvent {
    /// Polling of a source was switched off after repeated permanent failures.
    SourceDisabled {
        source_id: String,
        platform: Platform,
        reason: String,
        at: Timestamp,
    },
    /// A source that usually finds items has been quiet far longer than usual.
    SourceSilent {
        source_id: String,
        platform: Platform,
        silent_for_secs: u64,
        usual_gap_secs: u64,
        at: Timestamp,
    },
    /// A delivery was published; `platform_id` and `url` say where.
    PostPublished {
        event_id: String,
        delivery_id: String,
        post_id: String,
        channel_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform: Option<Platform>,
        platform_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// When the occurrence was scheduled (the difference to `published_at` is the delay).
        scheduled_for: Timestamp,
        published_at: Timestamp,
        attempts: u32,
    },
    /// A delivery failed for good (until an operator retries it).
    PostFailed {
        event_id: String,
        delivery_id: String,
        post_id: String,
        channel_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform: Option<Platform>,
        /// The platform's own message, or Hark's reason.
        reason: String,
        /// The channel's credentials expired: re-authorise it, then retry.
        needs_reauth: bool,
        attempts: u32,
        at: Timestamp,
    },
    /// A delivery may or may not have been published (a platform without an idempotency
    /// guard lost the answer): it waits for reconciliation; nothing is re-sent blindly.
    PostUnknown {
        event_id: String,
        delivery_id: String,
        post_id: String,
        channel_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform: Option<Platform>,
        reason: String,
        at: Timestamp,
    },
    /// A delivery was withdrawn before it was sent (an operator, or a change of the post).
    PostCancelled {
        event_id: String,
        delivery_id: String,
        post_id: String,
        channel_id: String,
        reason: String,
        at: Timestamp,
    },
    /// A campaign trigger rule fired. Carries its explanation: the figures, the window, the
    /// top terms of the window and sample mentions, and the actions to run.
    TriggerFired(Box<TriggerFired>),
    /// An action of a fired trigger failed for good (its alert could not be delivered, its
    /// post was refused). Sent once per action.
    ActionFailed {
        event_id: String,
        /// The `TriggerFired` event the action belonged to.
        trigger_event_id: String,
        campaign: String,
        rule: String,
        /// `notify`, `publish`, `event` or `pause_posts`.
        action: String,
        reason: String,
        at: Timestamp,
    },
    /// A publishing channel's credentials expired or were revoked. Sent once per channel
    /// (and set of credentials) until the channel is re-authorised.
    ChannelNeedsReauth {
        event_id: String,
        channel_id: String,
        platform: Platform,
        reason: String,
        at: Timestamp,
    },
}

impl HarkEvent {
    /// The EventBridge `detail-type` of this event.
    pub fn detail_type(&self) -> &'static str {
        match self {
            HarkEvent::SourceDisabled { .. } => "SourceDisabled",
            HarkEvent::SourceSilent { .. } => "SourceSilent",
            HarkEvent::PostPublished { .. } => "PostPublished",
            HarkEvent::PostFailed { .. } => "PostFailed",
            HarkEvent::PostUnknown { .. } => "PostUnknown",
            HarkEvent::PostCancelled { .. } => "PostCancelled",
            HarkEvent::ChannelNeedsReauth { .. } => "ChannelNeedsReauth",
            HarkEvent::TriggerFired(_) => "TriggerFired",
            HarkEvent::ActionFailed { .. } => "ActionFailed",
        }
    }

    /// The event's deterministic id: the same event re-sent after a crash has the same id.
    /// Listening events derive theirs from what they report (source, kind, instant).
    pub fn event_id(&self) -> String {
        match self {
            HarkEvent::SourceDisabled { source_id, at, .. } => {
                format!("source:{source_id}:disabled:{}", at.as_second())
            }
            HarkEvent::SourceSilent { source_id, at, .. } => {
                format!("source:{source_id}:silent:{}", at.as_second())
            }
            HarkEvent::PostPublished { event_id, .. }
            | HarkEvent::PostFailed { event_id, .. }
            | HarkEvent::PostUnknown { event_id, .. }
            | HarkEvent::PostCancelled { event_id, .. }
            | HarkEvent::ChannelNeedsReauth { event_id, .. }
            | HarkEvent::ActionFailed { event_id, .. } => event_id.clone(),
            HarkEvent::TriggerFired(fired) => fired.event_id.clone(),
        }
    }
}

/// A trigger firing and why (the body of [`HarkEvent::TriggerFired`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerFired {
    /// `trigger:<campaign>:<rule>:<window start, epoch s>`: one per rule and window.
    pub event_id: String,
    pub campaign: String,
    pub rule: String,
    /// `volume_spike`, `negative_share`, `influencer` or `keyword`.
    pub kind: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub fired_at: Timestamp,
    /// One sentence a person can read in an alert.
    pub summary: String,
    pub figures: Figures,
    /// The most frequent terms and hashtags of the window's mentions, most frequent first.
    #[serde(default)]
    pub top_terms: Vec<TermCount>,
    /// A few mentions that show what happened, with links.
    #[serde(default)]
    pub samples: Vec<SampleMention>,
    /// The rule's actions at the time it fired.
    #[serde(default)]
    pub actions: Vec<TriggerAction>,
}

impl TriggerFired {
    pub fn event_id_for(campaign: &str, rule: &str, window_start: Timestamp) -> String {
        format!("trigger:{campaign}:{rule}:{}", window_start.as_second())
    }
}

/// The numbers behind a firing (only those that apply to the rule's kind are set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Mentions in the window.
    pub count: u64,
    /// Mentions with a sentiment score in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<u64>,
    /// Negative share of the scored mentions (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Expected mentions per window, and how it was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stddev: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_method: Option<String>,
    /// The value the figure had to exceed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The influencer's follower count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// A term or hashtag and how many of the window's mentions use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermCount {
    pub term: String,
    pub count: u64,
}

/// A mention quoted in an explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleMention {
    pub platform: Platform,
    pub url: String,
    pub author: String,
    /// The text, shortened to a quote.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<SentimentLabel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_a_type_tag() {
        let e = HarkEvent::SourceDisabled {
            source_id: "feed".into(),
            platform: Platform::Rss,
            reason: "HTTP 410".into(),
            at: Timestamp::from_second(1_780_000_000).unwrap(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "SourceDisabled");
        assert_eq!(v["platform"], "rss");
        assert_eq!(serde_json::from_value::<HarkEvent>(v).unwrap(), e);
        assert_eq!(e.detail_type(), "SourceDisabled");
        assert_eq!(e.event_id(), "source:feed:disabled:1780000000");
    }

    #[test]
    fn publishing_events_carry_their_id_and_round_trip() {
        let e = HarkEvent::PostPublished {
            event_id: "launch.masto.1780000000:PUBLISHED:1".into(),
            delivery_id: "launch.masto.1780000000".into(),
            post_id: "launch".into(),
            channel_id: "masto".into(),
            platform: Some(Platform::Mastodon),
            platform_id: "1138".into(),
            url: Some("https://m.example/@brand/1138".into()),
            scheduled_for: Timestamp::from_second(1_780_000_000).unwrap(),
            published_at: Timestamp::from_second(1_780_000_012).unwrap(),
            attempts: 1,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "PostPublished");
        assert_eq!(v["event_id"], "launch.masto.1780000000:PUBLISHED:1");
        assert_eq!(e.event_id(), "launch.masto.1780000000:PUBLISHED:1");
        assert_eq!(serde_json::from_value::<HarkEvent>(v).unwrap(), e);
        let reauth = HarkEvent::ChannelNeedsReauth {
            event_id: "channel:masto:needs-reauth:ab12".into(),
            channel_id: "masto".into(),
            platform: Platform::Mastodon,
            reason: "The access token is invalid".into(),
            at: Timestamp::from_second(1_780_000_000).unwrap(),
        };
        assert_eq!(reauth.detail_type(), "ChannelNeedsReauth");
        assert_eq!(
            serde_json::to_value(&reauth).unwrap()["platform"],
            "mastodon"
        );
    }
}
