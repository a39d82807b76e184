//! The actions function: consumes the events queue. A [`TriggerFired`] event runs its
//! rule's actions; every other event is forwarded to the event bus (EventBridge in the
//! cloud, a table locally) so other systems can react to posts and sources.
//!
//! Actions are idempotent, so a redelivered event never alerts or posts twice:
//! - `notify` and `publish` become posts with ids derived from the event id and the
//!   action's position, published through the normal delivery machinery (exactly once where
//!   the platform allows, retries with backoff, rate limits honoured). A permanently failing
//!   alert produces one `ActionFailed` event (from its `PostFailed`), not a loop;
//! - `pause_posts` pauses what is still QUEUED (pausing twice changes nothing);
//! - `event` puts the event on the bus with its deterministic id in the detail, so bus
//!   consumers can drop the rare duplicate.

mod brake;
mod policy;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

pub use brake::{Brake, engage_brake, release_brake};
pub use policy::{
    ApproveError, GateDecision, KILL_SWITCH_ID, KillSwitch, approve_post, gate, quiet_hours_end,
};

use crate::domain::{
    Campaign, Channel, OriginKind, PostOrigin, PublishTemplate, ScheduledPost, TriggerAction,
};
use crate::events::{HarkEvent, TriggerFired};
use crate::ports::{
    ConfigStore, DeliveryStore, MessageQueue, QueueError, QueueName, StoreError, TriggerStore,
};
use crate::publishing::{PublishingError, dispatch_now, schedule_post};
use crate::rules;

/// The `source` of every event Hark puts on the bus.
pub const BUS_SOURCE: &str = "hark";

/// One event for the bus.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BusEvent {
    pub source: String,
    pub detail_type: String,
    /// JSON.
    pub detail: String,
}

impl BusEvent {
    pub fn of(event: &HarkEvent) -> Result<Self, serde_json::Error> {
        Ok(BusEvent {
            source: BUS_SOURCE.to_owned(),
            detail_type: event.detail_type().to_owned(),
            detail: serde_json::to_string(event)?,
        })
    }
}

/// Where events go for other systems: EventBridge `PutEvents`, or a local table.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    /// Puts the events; an error means none or only some were accepted (the caller
    /// retries all: consumers deduplicate on the event id in the detail).
    async fn put(&self, events: &[BusEvent]) -> Result<(), crate::ports::BoxError>;
}

/// Why handling an event failed (the message is redelivered, then dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("malformed event message")]
    Malformed(#[source] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("putting events on the bus failed")]
    Bus(#[source] crate::ports::BoxError),
    #[error(transparent)]
    Publishing(#[from] PublishingError),
}

impl From<serde_json::Error> for ActionError {
    fn from(e: serde_json::Error) -> Self {
        ActionError::Malformed(e)
    }
}

/// What handling one event did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ActionsOutcome {
    /// Alert posts created (`notify`), by post id.
    pub alerts: Vec<String>,
    /// Automatic posts created (`publish`), by post id; drafts included.
    pub posts: Vec<String>,
    /// Automatic posts the policy gate refused, with the reason.
    pub refused: Vec<String>,
    /// Deliveries paused by the crisis brake.
    pub paused: usize,
    /// Events put on the bus.
    pub bus_events: usize,
    /// `ActionFailed` events emitted.
    pub failed_actions: usize,
}

/// Handles one events-queue message.
pub async fn handle_event_message<S>(
    store: &S,
    queue: &dyn MessageQueue,
    bus: Option<&dyn EventBus>,
    body: &str,
    now: Timestamp,
) -> Result<ActionsOutcome, ActionError>
where
    S: ConfigStore + DeliveryStore + TriggerStore,
{
    let event: HarkEvent = serde_json::from_str(body).map_err(ActionError::Malformed)?;
    let mut outcome = ActionsOutcome::default();
    match &event {
        HarkEvent::TriggerFired(fired) => {
            run_actions(store, queue, bus, fired, now, &mut outcome).await?;
        }
        HarkEvent::PostFailed {
            post_id, reason, ..
        } => {
            // A trigger's alert or post that failed for good: one ActionFailed (its id is
            // derived from the post's, so a redelivered PostFailed repeats the same id).
            if let Some(post) = store.get::<ScheduledPost>(post_id).await?
                && let Some(origin) = &post.origin
            {
                let failed = HarkEvent::ActionFailed {
                    event_id: format!("action-failed:{post_id}"),
                    trigger_event_id: origin.event_id.clone(),
                    campaign: origin.campaign.clone(),
                    rule: origin.rule.clone(),
                    action: match origin.kind {
                        OriginKind::Alert => "notify",
                        OriginKind::Auto => "publish",
                    }
                    .to_owned(),
                    reason: reason.clone(),
                    at: now,
                };
                emit(queue, &failed).await?;
                outcome.failed_actions += 1;
            }
            forward(bus, &event, &mut outcome).await?;
        }
        _ => forward(bus, &event, &mut outcome).await?,
    }
    Ok(outcome)
}

async fn forward(
    bus: Option<&dyn EventBus>,
    event: &HarkEvent,
    outcome: &mut ActionsOutcome,
) -> Result<(), ActionError> {
    if let Some(bus) = bus {
        bus.put(&[BusEvent::of(event)?])
            .await
            .map_err(ActionError::Bus)?;
        outcome.bus_events += 1;
    }
    Ok(())
}

async fn emit(queue: &dyn MessageQueue, event: &HarkEvent) -> Result<(), ActionError> {
    queue
        .send_batch(QueueName::Events, &[serde_json::to_string(event)?])
        .await?;
    Ok(())
}

/// Runs a firing's actions in order. A store or queue failure stops and fails the message
/// (redelivery repeats the idempotent steps); a refusal that no retry can fix (unknown
/// channel, invalid text) is an `ActionFailed` event and the other actions still run.
async fn run_actions<S>(
    store: &S,
    queue: &dyn MessageQueue,
    bus: Option<&dyn EventBus>,
    fired: &TriggerFired,
    now: Timestamp,
    outcome: &mut ActionsOutcome,
) -> Result<(), ActionError>
where
    S: ConfigStore + DeliveryStore + TriggerStore,
{
    let campaign = store.get::<Campaign>(&fired.campaign).await?;
    for (index, action) in fired.actions.iter().enumerate() {
        let result: Result<(), String> = match action {
            TriggerAction::Notify(channel) => notify(store, queue, fired, index, channel, now)
                .await?
                .map(|id| outcome.alerts.push(id)),
            TriggerAction::Publish(template) => match &campaign {
                None => Err(format!("campaign `{}` no longer exists", fired.campaign)),
                Some(campaign) => {
                    match auto_post(store, queue, fired, index, campaign, template, now).await? {
                        Gated::Posted(id) => {
                            outcome.posts.push(id);
                            Ok(())
                        }
                        Gated::Held(why) => {
                            tracing::info!(event_id = %fired.event_id, reason = %why, "automatic post held back by the policy gate");
                            outcome.refused.push(why);
                            Ok(())
                        }
                        Gated::Refused(why) => Err(why),
                    }
                }
            },
            TriggerAction::Event(true) => {
                forward(
                    bus,
                    &HarkEvent::TriggerFired(Box::new(fired.clone())),
                    outcome,
                )
                .await?;
                Ok(())
            }
            TriggerAction::Event(false) => Ok(()),
            TriggerAction::PausePosts(true) => {
                let reason = format!("crisis brake: {}", fired.summary);
                outcome.paused +=
                    engage_brake(store, &fired.campaign, &reason, Some(&fired.event_id), now)
                        .await?;
                Ok(())
            }
            TriggerAction::PausePosts(false) => {
                release_brake(store, &fired.campaign, now).await?;
                Ok(())
            }
        };
        if let Err(reason) = result {
            tracing::warn!(event_id = %fired.event_id, action = index, %reason, "trigger action failed");
            let failed = HarkEvent::ActionFailed {
                event_id: format!("action-failed:{}:{index}", fired.event_id),
                trigger_event_id: fired.event_id.clone(),
                campaign: fired.campaign.clone(),
                rule: fired.rule.clone(),
                action: action_name(action).to_owned(),
                reason,
                at: now,
            };
            emit(queue, &failed).await?;
            outcome.failed_actions += 1;
        }
    }
    Ok(())
}

fn action_name(action: &TriggerAction) -> &'static str {
    match action {
        TriggerAction::Notify(_) => "notify",
        TriggerAction::Publish(_) => "publish",
        TriggerAction::Event(_) => "event",
        TriggerAction::PausePosts(_) => "pause_posts",
    }
}

/// What the gate and the scheduling made of an automatic post.
enum Gated {
    Posted(String),
    /// The policy gate held it back (budget, kill switch): by design, not a failure.
    Held(String),
    /// It cannot be made however often it is retried (unknown channel, invalid text).
    Refused(String),
}

/// The id of the post an action makes: stable per event and action, within the id
/// alphabet and length.
pub fn action_post_id(prefix: &str, event_id: &str, index: usize) -> String {
    let digest = Sha256::digest(format!("{event_id}#{index}").as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// `notify: <channel>`: an alert post on that channel, published now.
async fn notify<S>(
    store: &S,
    queue: &dyn MessageQueue,
    fired: &TriggerFired,
    index: usize,
    channel_id: &str,
    now: Timestamp,
) -> Result<Result<String, String>, ActionError>
where
    S: ConfigStore + DeliveryStore,
{
    let Some(channel) = store.get::<Channel>(channel_id).await? else {
        return Ok(Err(format!("unknown channel `{channel_id}`")));
    };
    let post = ScheduledPost {
        id: action_post_id("alert", &fired.event_id, index),
        campaign: Some(fired.campaign.clone()),
        at: now,
        time_zone: None,
        channels: vec![channel.id.clone()],
        text: alert_text(fired, &channel),
        link: None,
        overrides: Default::default(),
        repeat: None,
        origin: Some(PostOrigin {
            event_id: fired.event_id.clone(),
            campaign: fired.campaign.clone(),
            rule: fired.rule.clone(),
            kind: OriginKind::Alert,
        }),
        draft: None,
    };
    publish_post_now(store, queue, post, now).await
}

/// Stores the post (unless an earlier delivery of this event did), schedules it and
/// dispatches its deliveries without waiting for the tick.
async fn publish_post_now<S>(
    store: &S,
    queue: &dyn MessageQueue,
    post: ScheduledPost,
    now: Timestamp,
) -> Result<Result<String, String>, ActionError>
where
    S: ConfigStore + DeliveryStore,
{
    let stored = match store.get::<ScheduledPost>(&post.id).await? {
        Some(existing) => existing,
        None => {
            store.upsert(&post).await?;
            post
        }
    };
    if stored.draft.as_ref().is_some_and(|d| !d.is_approved()) {
        return Ok(Ok(stored.id));
    }
    let report = match schedule_post(store, queue, &stored, false, now).await {
        Ok(r) => r,
        Err(PublishingError::Invalid { problems, .. }) => {
            return Ok(Err(problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")));
        }
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let ids: Vec<String> = report
        .created
        .iter()
        .chain(&report.already_scheduled)
        .cloned()
        .collect();
    dispatch_now(store, queue, &ids, now).await?;
    Ok(Ok(stored.id))
}

/// `publish: {template}`: an automatic post through the campaign's policy gate. The outer
/// `Result` is for failures to retry; the inner `Err` is the gate's refusal.
async fn auto_post<S>(
    store: &S,
    queue: &dyn MessageQueue,
    fired: &TriggerFired,
    index: usize,
    campaign: &Campaign,
    template: &PublishTemplate,
    now: Timestamp,
) -> Result<Gated, ActionError>
where
    S: ConfigStore + DeliveryStore + TriggerStore,
{
    let id = action_post_id("auto", &fired.event_id, index);
    // Redelivered event: the post exists, the gate already let it through once. (If an
    // earlier delivery passed the gate but failed to store the post, the gate runs again
    // below and knows the post by its id: no second budget unit.)
    if let Some(existing) = store.get::<ScheduledPost>(&id).await? {
        return Ok(match publish_post_now(store, queue, existing, now).await? {
            Ok(id) => Gated::Posted(id),
            Err(why) => Gated::Refused(why),
        });
    }
    let kill: Option<KillSwitch> = store.get(KILL_SWITCH_ID).await?;
    let (at, draft) = match gate(store, campaign, template, &id, kill.as_ref(), now).await? {
        GateDecision::Refuse(why) => return Ok(Gated::Held(why)),
        GateDecision::Publish { at } => (at, None),
        GateDecision::Draft { at, expires_at } => (
            at,
            Some(crate::domain::Draft {
                expires_at,
                approved_at: None,
            }),
        ),
    };
    let post = ScheduledPost {
        id: id.clone(),
        campaign: Some(campaign.id.clone()),
        at,
        time_zone: campaign.policy.time_zone.clone(),
        channels: template.channels.clone(),
        text: render(&template.text, fired),
        link: template.link.clone(),
        overrides: Default::default(),
        repeat: None,
        origin: Some(PostOrigin {
            event_id: fired.event_id.clone(),
            campaign: fired.campaign.clone(),
            rule: fired.rule.clone(),
            kind: OriginKind::Auto,
        }),
        draft,
    };
    Ok(match publish_post_now(store, queue, post, now).await? {
        Ok(id) => Gated::Posted(id),
        Err(why) => Gated::Refused(why),
    })
}

/// Fills a template's placeholders from the firing.
pub fn render(template: &str, fired: &TriggerFired) -> String {
    let f = &fired.figures;
    let pairs = [
        ("{campaign}", fired.campaign.clone()),
        ("{rule}", fired.rule.clone()),
        ("{count}", f.count.to_string()),
        (
            "{baseline}",
            f.baseline.map_or("n/a".to_owned(), |b| format!("{b:.1}")),
        ),
        (
            "{share}",
            f.share
                .map_or("n/a".to_owned(), |s| format!("{:.0}%", s * 100.0)),
        ),
        (
            "{window}",
            format!(
                "{}–{} UTC",
                fired.window_start.strftime("%H:%M"),
                fired.window_end.strftime("%H:%M")
            ),
        ),
        (
            "{top_terms}",
            fired
                .top_terms
                .iter()
                .map(|t| t.term.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "{sample_url}",
            fired
                .samples
                .first()
                .map_or(String::new(), |s| s.url.clone()),
        ),
    ];
    let mut out = template.to_owned();
    for (k, v) in pairs {
        out = out.replace(k, &v);
    }
    out
}

/// The alert a person reads: the summary, the top terms, the samples with links, trimmed
/// (samples first, then the summary) to what the channel's platform accepts.
pub fn alert_text(fired: &TriggerFired, channel: &Channel) -> String {
    let mut head = format!("⚠ {}", fired.summary);
    if !fired.top_terms.is_empty() {
        let terms: Vec<String> = fired
            .top_terms
            .iter()
            .map(|t| format!("{} ({})", t.term, t.count))
            .collect();
        head.push_str(&format!("\nTop terms: {}", terms.join(", ")));
    }
    let samples: Vec<String> = fired
        .samples
        .iter()
        .map(|s| format!("• {} — {}: “{}”", s.url, s.author, s.text))
        .collect();
    let fits = |text: &str| {
        !matches!(
            rules::check_text(channel.platform, text, None, channel.max_chars),
            Err(rules::TextRuleError::TooLong { .. })
        )
    };
    for keep in (0..=samples.len()).rev() {
        let mut text = head.clone();
        for s in &samples[..keep] {
            text.push('\n');
            text.push_str(s);
        }
        if fits(&text) {
            return text;
        }
    }
    // Even the summary is too long (a tiny max_chars): cut it.
    let mut text: String = head;
    while !fits(&text) && text.chars().count() > 1 {
        let keep = text.chars().count() * 9 / 10;
        text = text.chars().take(keep.max(1)).collect();
    }
    text
}

#[cfg(all(test, feature = "embedded"))]
mod tests;
