//! Campaigns (what a team listens for) and their trigger rules.

use serde::{Deserialize, Serialize};

use super::Interval;

/// A listening campaign: a query over some sources, plus rules that act on what is found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Boolean query: AND/OR/NOT, "phrases", -exclusions, #tags, @accounts.
    pub query: String,
    /// Ids of the sources this campaign listens to.
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub triggers: Vec<TriggerRule>,
    /// Inactive campaigns are not matched and their triggers do not fire.
    #[serde(default = "yes")]
    pub active: bool,
    /// The gate every automatic post of this campaign passes (see [`PublishPolicy`]).
    #[serde(default, skip_serializing_if = "PublishPolicy::is_default")]
    pub policy: PublishPolicy,
}

/// Rules for posts that triggers publish on their own: how many, when, and whether a
/// person must approve them first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishPolicy {
    /// IANA time zone the quiet hours and the daily budget are counted in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// No automatic post goes out in this local time range; one that would is held until
    /// the range ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Automatic posts per campaign and local day at most (0 = none at all).
    #[serde(default = "default_daily_budget")]
    pub daily_budget: u32,
    /// Whether automatic posts wait for `hark posts approve`.
    #[serde(default)]
    pub approval: Approval,
    /// How long a post waits for approval before it expires unpublished.
    #[serde(default = "default_approval_expires")]
    pub approval_expires: Interval,
}

fn default_daily_budget() -> u32 {
    3
}

fn default_approval_expires() -> Interval {
    Interval::from_secs(24 * 3600)
}

impl Default for PublishPolicy {
    fn default() -> Self {
        PublishPolicy {
            time_zone: None,
            quiet_hours: None,
            daily_budget: default_daily_budget(),
            approval: Approval::default(),
            approval_expires: default_approval_expires(),
        }
    }
}

impl PublishPolicy {
    fn is_default(&self) -> bool {
        *self == PublishPolicy::default()
    }
}

/// Whether a person must approve an automatic post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Published without review (still through the rest of the gate).
    #[default]
    None,
    /// Created as a draft; published only after `hark posts approve ID`.
    Required,
}

/// A local time range, `start` inclusive, `end` exclusive; may wrap midnight (22:00–07:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start: jiff::civil::Time,
    pub end: jiff::civil::Time,
}

impl QuietHours {
    /// Whether local time `t` is inside the range.
    pub fn contains(&self, t: jiff::civil::Time) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

fn yes() -> bool {
    true
}

/// When a rule fires and what it does then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRule {
    pub id: String,
    pub when: TriggerCondition,
    #[serde(default)]
    pub actions: Vec<TriggerAction>,
    /// Minimum time between two firings of this rule.
    #[serde(default = "default_cooldown")]
    pub cooldown: Interval,
}

fn default_cooldown() -> Interval {
    Interval::from_mins(60)
}

/// The condition of a trigger rule, evaluated on the campaign's aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerCondition {
    /// Mentions in the window above the baseline by `k` standard deviations.
    VolumeSpike {
        #[serde(default = "default_k")]
        k: f64,
        window: Interval,
        #[serde(default)]
        min_mentions: u64,
    },
    /// Share of negative mentions in the window above `above` (0..1).
    NegativeShare {
        above: f64,
        window: Interval,
        #[serde(default)]
        min_mentions: u64,
    },
    /// A mention by an author with at least this many followers.
    Influencer { min_followers: u64 },
    /// A mention matching a sub-query.
    Keyword { query: String },
}

fn default_k() -> f64 {
    3.0
}

/// What a fired rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerAction {
    /// Send an alert through a channel (Slack, Discord, Telegram, webhook).
    Notify(String),
    /// Put a `TriggerFired` event on the EventBridge bus.
    Event(bool),
    /// Hold (true) or release (false) the campaign's scheduled posts: the crisis brake.
    PausePosts(bool),
    /// Publish a post made from a template, through the campaign's [`PublishPolicy`].
    Publish(PublishTemplate),
}

/// A post a trigger publishes. `text` may use placeholders filled from the firing:
/// `{campaign}`, `{rule}`, `{count}`, `{baseline}`, `{share}` (percent), `{window}`,
/// `{top_terms}`, `{sample_url}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishTemplate {
    pub channels: Vec<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Overrides the campaign policy's `approval` for this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// The placeholders a [`PublishTemplate`] may use.
pub const TEMPLATE_PLACEHOLDERS: [&str; 8] = [
    "campaign",
    "rule",
    "count",
    "baseline",
    "share",
    "window",
    "top_terms",
    "sample_url",
];

impl PublishTemplate {
    /// Placeholders in `text` that Hark does not know (`{count}` is known, `{cuont}` not).
    pub fn unknown_placeholders(&self) -> Vec<String> {
        let mut unknown = Vec::new();
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let name = &after[..close];
            if !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !TEMPLATE_PLACEHOLDERS.contains(&name)
            {
                unknown.push(name.to_owned());
            }
            rest = &after[close + 1..];
        }
        unknown
    }
}

impl TriggerCondition {
    /// The evaluation window (the influencer and keyword rules use one hour).
    pub fn window(&self) -> Interval {
        match self {
            TriggerCondition::VolumeSpike { window, .. }
            | TriggerCondition::NegativeShare { window, .. } => *window,
            TriggerCondition::Influencer { .. } | TriggerCondition::Keyword { .. } => {
                Interval::from_secs(3600)
            }
        }
    }

    /// The rule's kind as written in config files.
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerCondition::VolumeSpike { .. } => "volume_spike",
            TriggerCondition::NegativeShare { .. } => "negative_share",
            TriggerCondition::Influencer { .. } => "influencer",
            TriggerCondition::Keyword { .. } => "keyword",
        }
    }

    /// The checks the type system cannot make.
    pub fn validate(&self) -> Result<(), &'static str> {
        match self {
            TriggerCondition::VolumeSpike { k, .. } if !(*k > 0.0 && k.is_finite()) => {
                Err("k must be a positive number")
            }
            TriggerCondition::NegativeShare { above, .. } if !(0.0..1.0).contains(above) => {
                Err("above must be a share between 0 and 1")
            }
            TriggerCondition::Keyword { query } if query.trim().is_empty() => {
                Err("query must not be empty")
            }
            TriggerCondition::Keyword { query } if crate::query::Query::parse(query).is_err() => {
                Err("query does not parse (AND/OR/NOT, \"phrases\", -exclusions, #tags, @accounts)")
            }
            TriggerCondition::VolumeSpike { window, .. }
            | TriggerCondition::NegativeShare { window, .. }
                if window.as_secs() % 3600 != 0 || window.as_secs() == 0 =>
            {
                Err("window must be whole hours (aggregates are hourly), e.g. 1h or 6h")
            }
            _ => Ok(()),
        }
    }
}
