//! Validation of a post against each of its channels, at scheduling time (so a text one
//! channel cannot take is refused with a clear message long before it is due) and again by
//! the publisher as a last guard. The limits themselves live in [`crate::rules`].

use crate::domain::{Channel, Platform, ScheduledPost};
use crate::platforms::OutgoingPost;
use crate::platforms::mastodon::compose_status;
use crate::rules::{self, TextRuleError};

/// Why a post cannot go out on one of its channels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelProblem {
    #[error("unknown channel `{channel}`")]
    UnknownChannel { channel: String },
    #[error("channel `{channel}` is a {platform} channel: it cannot publish posts")]
    NotPublishable { channel: String, platform: Platform },
    /// The text (or the channel's override) breaks the channel's limits.
    #[error("channel `{channel}`: {error}")]
    Text {
        channel: String,
        /// The text checked was the channel's override, not the post's text.
        overridden: bool,
        #[source]
        error: TextRuleError,
    },
}

impl ChannelProblem {
    pub fn channel(&self) -> &str {
        match self {
            ChannelProblem::UnknownChannel { channel }
            | ChannelProblem::NotPublishable { channel, .. }
            | ChannelProblem::Text { channel, .. } => channel,
        }
    }

    /// The post's field at fault, relative to the post: `channels`, `text` or
    /// `overrides.<channel>`.
    pub fn field(&self) -> String {
        match self {
            ChannelProblem::UnknownChannel { .. } | ChannelProblem::NotPublishable { .. } => {
                "channels".to_owned()
            }
            ChannelProblem::Text {
                channel,
                overridden: true,
                ..
            } => format!("overrides.{channel}"),
            ChannelProblem::Text { .. } => "text".to_owned(),
        }
    }
}

/// The text exactly as the channel's publisher will send it: the post's text (or the
/// channel's override) with the link composed the way that platform composes it (Mastodon
/// puts the link in its own paragraph; everyone else follows [`rules::compose_text`]), so
/// what is measured here is what the platform counts.
pub fn outgoing_text(platform: Platform, post: &ScheduledPost, channel_id: &str) -> String {
    let text = post.text_for(channel_id);
    match platform {
        Platform::Mastodon => compose_status(&OutgoingPost {
            text: text.to_owned(),
            link: post.link.clone(),
        }),
        _ => rules::compose_text(text, post.link.as_deref()).into_owned(),
    }
}

/// Checks `post` on every one of its channels; `channel` looks a channel up by id. Returns
/// every problem (empty when the post can go out everywhere).
pub fn validate_post<'a>(
    post: &ScheduledPost,
    channel: impl Fn(&str) -> Option<&'a Channel>,
) -> Vec<ChannelProblem> {
    let mut problems = Vec::new();
    for id in &post.channels {
        let Some(ch) = channel(id) else {
            problems.push(ChannelProblem::UnknownChannel {
                channel: id.clone(),
            });
            continue;
        };
        if let Err(problem) = check_channel(post, ch) {
            problems.push(problem);
        }
    }
    problems
}

/// Checks `post` on one channel.
pub(crate) fn check_channel(post: &ScheduledPost, channel: &Channel) -> Result<(), ChannelProblem> {
    // Webhook channels receive signed alerts (posts a trigger's `notify` made), not
    // campaign posts (`hark apply` says so too).
    let alert = post
        .origin
        .as_ref()
        .is_some_and(|o| o.kind == crate::domain::OriginKind::Alert);
    if !channel.platform.can_publish() || (channel.platform == Platform::Webhook && !alert) {
        return Err(ChannelProblem::NotPublishable {
            channel: channel.id.clone(),
            platform: channel.platform,
        });
    }
    let text = outgoing_text(channel.platform, post, &channel.id);
    rules::check_text(channel.platform, &text, None, channel.max_chars)
        .map(|_| ())
        .map_err(|error| ChannelProblem::Text {
            channel: channel.id.clone(),
            overridden: post.overrides.contains_key(&channel.id),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: &str, platform: &str, max_chars: Option<u32>) -> Channel {
        let mut v = serde_json::json!({"id": id, "platform": platform, "token": "env:T"});
        if let Some(m) = max_chars {
            v["max_chars"] = m.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn post(text: &str, channels: &[&str], overrides: &[(&str, &str)]) -> ScheduledPost {
        serde_json::from_value(serde_json::json!({
            "id": "p", "at": "2026-12-01T10:00:00Z", "channels": channels, "text": text,
            "overrides": overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        }))
        .unwrap()
    }

    #[test]
    fn given_a_text_too_long_for_one_channel_then_only_that_channel_is_named_with_the_limit() {
        let channels = [
            channel("masto", "mastodon", None),
            channel("sky", "bluesky", None),
        ];
        let p = post(&"é".repeat(320), &["masto", "sky"], &[]);
        let problems = validate_post(&p, |id| channels.iter().find(|c| c.id == id));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].channel(), "sky");
        assert_eq!(problems[0].field(), "text");
        assert_eq!(
            problems[0].to_string(),
            "channel `sky`: Bluesky allows 300 graphemes, this text has 320 (20 over)"
        );
    }

    #[test]
    fn given_an_override_then_it_is_checked_instead_of_the_text_and_named_as_the_field() {
        let channels = [channel("sky", "bluesky", None)];
        let p = post("short", &["sky"], &[("sky", &"x".repeat(301))]);
        let problems = validate_post(&p, |id| channels.iter().find(|c| c.id == id));
        assert_eq!(problems[0].field(), "overrides.sky");
    }

    #[test]
    fn given_a_channel_max_chars_then_it_is_honoured() {
        let channels = [channel("small-instance", "mastodon", Some(100))];
        let p = post(&"a".repeat(101), &["small-instance"], &[]);
        let problems = validate_post(&p, |id| channels.iter().find(|c| c.id == id));
        assert!(
            problems[0].to_string().contains("allows 100"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn given_an_alert_then_a_webhook_channel_takes_it() {
        let channels = [channel("hook", "webhook", None)];
        let mut p = post("Negative wave on launch", &["hook"], &[]);
        p.origin = Some(crate::domain::PostOrigin {
            event_id: "trigger:launch:wave:1".into(),
            campaign: "launch".into(),
            rule: "wave".into(),
            kind: crate::domain::OriginKind::Alert,
        });
        assert!(validate_post(&p, |id| channels.iter().find(|c| c.id == id)).is_empty());
    }

    #[test]
    fn given_unknown_and_webhook_channels_then_each_is_a_problem() {
        let channels = [channel("hook", "webhook", None)];
        let p = post("hi", &["ghost", "hook"], &[]);
        let problems = validate_post(&p, |id| channels.iter().find(|c| c.id == id));
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "unknown channel `ghost`",
                "channel `hook` is a webhook channel: it cannot publish posts"
            ]
        );
    }

    #[test]
    fn given_mastodon_then_the_link_paragraph_it_adds_is_counted() {
        // 476 + "\n\n" + a URL counted as 23 = 501: one over, although a single space
        // separator would fit.
        let channels = [channel("masto", "mastodon", None)];
        let mut p = post(&"a".repeat(476), &["masto"], &[]);
        p.link = Some("https://example.com/a-long-path".into());
        let problems = validate_post(&p, |id| channels.iter().find(|c| c.id == id));
        assert!(problems[0].to_string().contains("has 501"), "{problems:?}");
        p.text = "a".repeat(475);
        assert!(validate_post(&p, |id| channels.iter().find(|c| c.id == id)).is_empty());
    }
}
