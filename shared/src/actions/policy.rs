//! The policy gate every automatic post passes: the global kill switch, the campaign's
//! daily budget (counted in its time zone, with a conditional counter so concurrent
//! workers never exceed it), quiet hours (the post waits for their end), and approval
//! (the post becomes a draft that expires unapproved).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::domain::{Approval, Campaign, PublishTemplate, ScheduledPost};
use crate::ports::{
    ConfigEntity, ConfigStore, DeliveryStore, EntityKind, MessageQueue, StoreError, TriggerStore,
};
use crate::publishing::{PublishingError, dispatch_now, schedule_post};

/// The id of the kill-switch setting.
pub const KILL_SWITCH_ID: &str = "kill-switch";

/// The global kill switch: while `on`, no automatic post is made (alerts still go out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSwitch {
    pub id: String,
    pub on: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: Timestamp,
}

impl KillSwitch {
    pub fn new(on: bool, reason: Option<String>, at: Timestamp) -> Self {
        KillSwitch {
            id: KILL_SWITCH_ID.to_owned(),
            on,
            reason,
            at,
        }
    }
}

impl ConfigEntity for KillSwitch {
    const KIND: EntityKind = EntityKind::Setting;
    fn id(&self) -> &str {
        &self.id
    }
}

/// What the gate decided for one automatic post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateDecision {
    /// Publish at `at` (now, or the end of the quiet hours).
    Publish { at: Timestamp },
    /// Create a draft for approval, to publish at `at` once approved, expiring unapproved.
    Draft {
        at: Timestamp,
        expires_at: Timestamp,
    },
    /// Not at all, and why.
    Refuse(String),
}

/// Decides for the automatic post `taker` (its post id) of `campaign` at `now`.
/// Takes one unit of the campaign's daily budget when it lets the post through (drafts
/// count: approval should not be a way around the budget). The unit is taken in the
/// post's name before the post is stored: if storing fails and the firing is redelivered,
/// the gate runs again for the same post and lets it through on the unit it already holds,
/// instead of counting a second one.
pub async fn gate<S: TriggerStore>(
    store: &S,
    campaign: &Campaign,
    template: &PublishTemplate,
    taker: &str,
    kill_switch: Option<&KillSwitch>,
    now: Timestamp,
) -> Result<GateDecision, StoreError> {
    if let Some(kill) = kill_switch.filter(|k| k.on) {
        return Ok(GateDecision::Refuse(format!(
            "the automatic-publishing kill switch is on{}",
            kill.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )));
    }
    let policy = &campaign.policy;
    let zone = match &policy.time_zone {
        None => TimeZone::UTC,
        Some(name) => match TimeZone::get(name) {
            Ok(z) => z,
            Err(_) => {
                return Ok(GateDecision::Refuse(format!(
                    "the campaign's time zone `{name}` is unknown"
                )));
            }
        },
    };
    let at = quiet_hours_end(policy.quiet_hours.as_ref(), &zone, now);
    let local_day = at.to_zoned_datetime(zone.clone()).date();
    let budget_key = format!("auto-posts/{}/{local_day}", campaign.id);
    // The counter may be forgotten two days after the local day ends.
    let expires = at + SignedDuration::from_hours(72);
    if !store
        .take_budget(&budget_key, policy.daily_budget, expires, Some(taker))
        .await?
    {
        return Ok(GateDecision::Refuse(format!(
            "the campaign's daily budget of {} automatic post{} for {local_day} is spent",
            policy.daily_budget,
            if policy.daily_budget == 1 { "" } else { "s" }
        )));
    }
    let approval = template.approval.unwrap_or(policy.approval);
    Ok(match approval {
        Approval::None => GateDecision::Publish { at },
        Approval::Required => GateDecision::Draft {
            at,
            expires_at: now + policy.approval_expires.as_duration(),
        },
    })
}

/// `now`, or the end of the quiet hours if `now` falls inside them (local wall time in
/// `zone`; a local end time that does not exist that day, in a DST gap, is taken as the
/// instant after the gap).
pub fn quiet_hours_end(
    quiet: Option<&crate::domain::QuietHours>,
    zone: &TimeZone,
    now: Timestamp,
) -> Timestamp {
    let Some(quiet) = quiet else {
        return now;
    };
    let local = now.to_zoned_datetime(zone.clone());
    if !quiet.contains(local.time()) {
        return now;
    }
    let date = if quiet.start > quiet.end && local.time() >= quiet.start {
        // Before midnight in a range that wraps: it ends tomorrow.
        local.date().tomorrow().unwrap_or(local.date())
    } else {
        local.date()
    };
    DateTime::from_parts(date, quiet.end)
        .to_zoned_datetime(zone.clone())
        .map(|z| z.timestamp())
        .unwrap_or(now)
}

/// Why a draft could not be approved.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("no post `{0}`")]
    Unknown(String),
    #[error("post `{0}` is not waiting for approval")]
    NotADraft(String),
    #[error("post `{id}` expired unapproved at {expires_at}")]
    Expired { id: String, expires_at: Timestamp },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publishing(#[from] PublishingError),
}

/// Approves a draft: it is scheduled (at its time, or now if that has passed) and its
/// due deliveries dispatched. Approving an approved post changes nothing.
pub async fn approve_post<S>(
    store: &S,
    queue: &dyn MessageQueue,
    post_id: &str,
    now: Timestamp,
) -> Result<ScheduledPost, ApproveError>
where
    S: ConfigStore + DeliveryStore,
{
    let mut post: ScheduledPost = store
        .get(post_id)
        .await?
        .ok_or_else(|| ApproveError::Unknown(post_id.to_owned()))?;
    let Some(draft) = post.draft.as_mut() else {
        return Err(ApproveError::NotADraft(post_id.to_owned()));
    };
    if draft.approved_at.is_none() {
        if draft.expires_at <= now {
            return Err(ApproveError::Expired {
                id: post_id.to_owned(),
                expires_at: draft.expires_at,
            });
        }
        draft.approved_at = Some(now);
        post.at = post.at.max(now);
        store.upsert(&post).await?;
    }
    let report = schedule_post(store, queue, &post, false, now).await?;
    let ids: Vec<String> = report
        .created
        .into_iter()
        .chain(report.already_scheduled)
        .collect();
    dispatch_now(store, queue, &ids, now).await?;
    Ok(post)
}
