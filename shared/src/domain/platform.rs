//! The platforms Hark listens to and publishes on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A social platform (or delivery channel kind) known to Hark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Mastodon,
    Bluesky,
    Hackernews,
    Reddit,
    Rss,
    X,
    Facebook,
    Youtube,
    Linkedin,
    Telegram,
    Discord,
    Slack,
    Webhook,
}

impl Platform {
    /// Every platform, in a stable order (used for error messages and listings).
    pub const ALL: [Platform; 13] = [
        Platform::Mastodon,
        Platform::Bluesky,
        Platform::Hackernews,
        Platform::Reddit,
        Platform::Rss,
        Platform::X,
        Platform::Facebook,
        Platform::Youtube,
        Platform::Linkedin,
        Platform::Telegram,
        Platform::Discord,
        Platform::Slack,
        Platform::Webhook,
    ];

    /// The lowercase name used in config files, keys and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Mastodon => "mastodon",
            Platform::Bluesky => "bluesky",
            Platform::Hackernews => "hackernews",
            Platform::Reddit => "reddit",
            Platform::Rss => "rss",
            Platform::X => "x",
            Platform::Facebook => "facebook",
            Platform::Youtube => "youtube",
            Platform::Linkedin => "linkedin",
            Platform::Telegram => "telegram",
            Platform::Discord => "discord",
            Platform::Slack => "slack",
            Platform::Webhook => "webhook",
        }
    }

    /// Whether Hark can poll this platform for mentions (a `source`).
    pub fn can_listen(self) -> bool {
        matches!(
            self,
            Platform::Mastodon
                | Platform::Bluesky
                | Platform::Hackernews
                | Platform::Reddit
                | Platform::Rss
                | Platform::X
                | Platform::Facebook
                | Platform::Youtube
        )
    }

    /// Whether Hark can publish to or notify through this platform (a `channel`).
    pub fn can_publish(self) -> bool {
        matches!(
            self,
            Platform::Mastodon
                | Platform::Bluesky
                | Platform::X
                | Platform::Facebook
                | Platform::Linkedin
                | Platform::Reddit
                | Platform::Telegram
                | Platform::Discord
                | Platform::Slack
                | Platform::Webhook
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name was not one of [`Platform::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown platform `{0}` (expected one of: mastodon, bluesky, hackernews, reddit, rss, x, facebook, youtube, linkedin, telegram, discord, slack, webhook)"
)]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_platform_when_printed_and_parsed_then_round_trips() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
    }

    #[test]
    fn given_unknown_name_when_parsed_then_error_lists_choices() {
        let err = "myspace".parse::<Platform>().unwrap_err();
        assert!(err.to_string().contains("myspace"));
        assert!(err.to_string().contains("mastodon"));
    }

    #[test]
    fn listening_and_publishing_capabilities_follow_the_design() {
        assert!(Platform::Hackernews.can_listen() && !Platform::Hackernews.can_publish());
        assert!(Platform::Slack.can_publish() && !Platform::Slack.can_listen());
        assert!(Platform::Mastodon.can_listen() && Platform::Mastodon.can_publish());
    }
}
