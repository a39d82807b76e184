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
    /// Publish a prepared post (by id).
    Publish(String),
}

impl TriggerCondition {
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
            _ => Ok(()),
        }
    }
}
