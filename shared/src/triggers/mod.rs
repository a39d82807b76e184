//! Campaign triggers: after each processed batch, every rule of a campaign that got new
//! mentions is evaluated ([`rules`]); a rule that fires is recorded with a conditional
//! write (so concurrent processors fire it at most once per window) and announced as a
//! [`TriggerFired`] event, explanation included ([`explain`]), on the events queue, where
//! the actions function runs its actions.
//!
//! # Never lost, never twice
//! The event is stored with the firing (`pending_event`), sent, then marked announced. If
//! the send fails or the worker dies in between, the scheduler tick's [`sweep_pending`]
//! sends the stored event again (same id: consumers deduplicate on it).

pub mod explain;
pub mod rules;

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::domain::{Campaign, Mention, TriggerCondition, TriggerRule};
use crate::events::{Figures, HarkEvent, TriggerFired};
use crate::ports::{
    AggregateStore, ConfigStore, Counters, FireOutcome, Firing, FiringRecord, HourBucket,
    MentionQuery, MentionStore, MessageQueue, QueueError, QueueName, StoreError, TriggerStore,
};
use crate::query::Query;
use rules::{HourlySeries, Verdict};

/// How many mentions of a window the explanation reads at most.
pub const EXPLANATION_MENTIONS: usize = 500;
/// Sample mentions per explanation.
pub const SAMPLES: usize = 3;
/// Terms per explanation.
pub const TOP_TERMS: usize = 5;
/// A pending event younger than this is being sent by its own worker; the sweep leaves it.
pub const PENDING_GRACE: SignedDuration = SignedDuration::from_secs(60);

/// Why evaluating triggers failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("encoding a trigger event failed")]
    Json(#[from] serde_json::Error),
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TriggerReport {
    /// Rules evaluated.
    pub evaluated: usize,
    /// Ids of the `TriggerFired` events sent.
    pub fired: Vec<String>,
    /// Rules whose condition held but that already fired for the window or are cooling down.
    pub suppressed: usize,
}

/// Evaluates the rules of every active campaign that `stored` (the mentions a batch stored
/// for the first time) matched, at `now`.
pub async fn evaluate_after_batch<S>(
    store: &S,
    queue: &dyn MessageQueue,
    stored: &[Mention],
    now: Timestamp,
) -> Result<TriggerReport, TriggerError>
where
    S: ConfigStore + AggregateStore + MentionStore + TriggerStore,
{
    let mut by_campaign: BTreeMap<&str, Vec<&Mention>> = BTreeMap::new();
    for m in stored {
        for c in &m.campaigns {
            by_campaign.entry(c.as_str()).or_default().push(m);
        }
    }
    let mut report = TriggerReport::default();
    if by_campaign.is_empty() {
        return Ok(report);
    }
    let campaigns: Vec<Campaign> = store.list().await?;
    for campaign in campaigns
        .iter()
        .filter(|c| c.active && !c.triggers.is_empty())
    {
        if let Some(new) = by_campaign.get(campaign.id.as_str()) {
            evaluate_campaign(store, queue, campaign, new, now, &mut report).await?;
        }
    }
    Ok(report)
}

/// Evaluates every rule of one campaign. `new` are the campaign's newly stored mentions
/// (what the influencer and keyword rules look at).
pub async fn evaluate_campaign<S>(
    store: &S,
    queue: &dyn MessageQueue,
    campaign: &Campaign,
    new: &[&Mention],
    now: Timestamp,
    report: &mut TriggerReport,
) -> Result<(), TriggerError>
where
    S: AggregateStore + MentionStore + TriggerStore,
{
    let mut series: Option<HourlySeries> = None;
    for rule in &campaign.triggers {
        report.evaluated += 1;
        let (window_start, window_end) = rules::window_at(rule.when.window(), now);
        let (verdict, subjects): (Verdict, Vec<&Mention>) = match &rule.when {
            TriggerCondition::VolumeSpike {
                k,
                window,
                min_mentions,
            } => {
                if series.is_none() {
                    series = Some(load_series(store, campaign, now).await?);
                }
                let s = series.as_ref().expect("loaded above");
                (
                    rules::volume_spike(s, *k, *window, *min_mentions, now),
                    Vec::new(),
                )
            }
            TriggerCondition::NegativeShare {
                above,
                window,
                min_mentions,
            } => {
                if series.is_none() {
                    series = Some(load_series(store, campaign, now).await?);
                }
                let s = series.as_ref().expect("loaded above");
                (
                    rules::negative_share(s, *above, *window, *min_mentions, now),
                    Vec::new(),
                )
            }
            TriggerCondition::Influencer { min_followers } => {
                match rules::influencer(new, *min_followers) {
                    Some(m) => (
                        Verdict::Fire(Figures {
                            count: 1,
                            followers: m.author.followers,
                            author: Some(m.author.handle.clone()),
                            threshold: Some(*min_followers as f64),
                            ..Figures::default()
                        }),
                        vec![m],
                    ),
                    None => continue,
                }
            }
            TriggerCondition::Keyword { query } => {
                let Ok(parsed) = Query::parse(query) else {
                    tracing::error!(campaign = %campaign.id, rule = %rule.id, "keyword query does not parse; rule skipped");
                    continue;
                };
                let hits = rules::keyword(new, &parsed);
                if hits.is_empty() {
                    continue;
                }
                (
                    Verdict::Fire(Figures {
                        count: hits.len() as u64,
                        ..Figures::default()
                    }),
                    hits,
                )
            }
        };
        let Verdict::Fire(figures) = verdict else {
            continue;
        };
        // Cheap check first: a rule that fired for this window or is cooling down needs no
        // explanation. The conditional write below still decides.
        if let Some(state) = store.trigger_state(&campaign.id, &rule.id).await?
            && (state.window_start >= window_start || state.cooldown_until > now)
        {
            report.suppressed += 1;
            continue;
        }
        let fired = explain_firing(
            store,
            campaign,
            rule,
            figures,
            (window_start, window_end),
            &subjects,
            now,
        )
        .await?;
        let event = serde_json::to_string(&HarkEvent::TriggerFired(Box::new(fired.clone())))?;
        let firing = Firing {
            campaign: campaign.id.clone(),
            rule: rule.id.clone(),
            window_start,
            now,
            cooldown_until: now + rule.cooldown.as_duration(),
            event: event.clone(),
        };
        match store.fire_once(&firing).await? {
            FireOutcome::Suppressed => report.suppressed += 1,
            FireOutcome::Fired => {
                tracing::info!(
                    campaign = %campaign.id,
                    rule = %rule.id,
                    event_id = %fired.event_id,
                    summary = %fired.summary,
                    "trigger fired"
                );
                announce(store, queue, &fired, &event).await?;
                report.fired.push(fired.event_id);
            }
        }
    }
    Ok(())
}

/// The campaign's hourly totals (all platforms) over everything its spike and share rules
/// read at `now`: each rule's rolling history and same-hour-of-week windows. The ranges
/// overlap (a week back is both rolling history and the first seasonal window), so each
/// stored bucket is counted once, however many ranges return it.
pub async fn load_series<S: AggregateStore>(
    store: &S,
    campaign: &Campaign,
    now: Timestamp,
) -> Result<HourlySeries, StoreError> {
    let mut ranges = Vec::new();
    for rule in &campaign.triggers {
        if matches!(
            rule.when,
            TriggerCondition::VolumeSpike { .. } | TriggerCondition::NegativeShare { .. }
        ) {
            let (start, end) = rules::window_at(rule.when.window(), now);
            ranges.extend(rules::spike_history_ranges(start, end));
        }
    }
    let mut buckets: BTreeMap<HourBucket, Counters> = BTreeMap::new();
    for (from, to) in ranges {
        for (bucket, counters) in store.list_counters(&campaign.id, from, to).await? {
            buckets.insert(bucket, counters);
        }
    }
    let mut series = HourlySeries::new();
    for (bucket, counters) in buckets {
        series.entry(bucket.hour).or_default().add(&counters);
    }
    Ok(series)
}

/// Builds the event: figures, a sentence, the window's top terms and samples.
async fn explain_firing<S: MentionStore>(
    store: &S,
    campaign: &Campaign,
    rule: &TriggerRule,
    figures: Figures,
    (window_start, window_end): (Timestamp, Timestamp),
    subjects: &[&Mention],
    now: Timestamp,
) -> Result<TriggerFired, StoreError> {
    let window_mentions: Vec<Mention> = if subjects.is_empty() {
        let page = store
            .list_mentions(
                &MentionQuery {
                    timeline: campaign.id.clone(),
                    from: window_start,
                    to: window_end,
                    limit: EXPLANATION_MENTIONS,
                },
                None,
            )
            .await?;
        page.items
    } else {
        Vec::new()
    };
    let refs: Vec<&Mention> = if subjects.is_empty() {
        window_mentions.iter().collect()
    } else {
        subjects.to_vec()
    };
    let negative_first = matches!(rule.when, TriggerCondition::NegativeShare { .. });
    let samples = explain::samples(&refs, negative_first, SAMPLES);
    let top_terms = explain::top_terms(&refs, &campaign.query, TOP_TERMS);
    let summary = summary(campaign, rule, &figures, window_start, window_end, subjects);
    Ok(TriggerFired {
        event_id: TriggerFired::event_id_for(&campaign.id, &rule.id, window_start),
        campaign: campaign.id.clone(),
        rule: rule.id.clone(),
        kind: rule.when.kind().to_owned(),
        window_start,
        window_end,
        fired_at: now,
        summary,
        figures,
        top_terms,
        samples,
        actions: rule.actions.clone(),
    })
}

fn hhmm(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M").to_string()
}

fn summary(
    campaign: &Campaign,
    rule: &TriggerRule,
    f: &Figures,
    start: Timestamp,
    end: Timestamp,
    subjects: &[&Mention],
) -> String {
    let name = campaign.name.as_deref().unwrap_or(&campaign.id);
    let window = format!("{}–{} UTC", hhmm(start), end.strftime("%H:%M"));
    match &rule.when {
        TriggerCondition::VolumeSpike { .. } => format!(
            "Volume spike on {name}: {} mentions in {window}, baseline {:.1} ({}), threshold {:.1}.",
            f.count,
            f.baseline.unwrap_or(0.0),
            f.baseline_method.as_deref().unwrap_or("n/a"),
            f.threshold.unwrap_or(0.0),
        ),
        TriggerCondition::NegativeShare { above, .. } => format!(
            "Negative wave on {name}: {:.0}% of {} scored mentions negative in {window} (threshold {:.0}%).",
            f.share.unwrap_or(0.0) * 100.0,
            f.scored.unwrap_or(0),
            above * 100.0,
        ),
        TriggerCondition::Influencer { .. } => {
            let m = subjects.first();
            format!(
                "Influencer on {name}: {} ({} followers) on {}: {}",
                f.author.as_deref().unwrap_or("?"),
                f.followers.unwrap_or(0),
                m.map_or("?".to_owned(), |m| m.platform.to_string()),
                m.map_or(String::new(), |m| m.url.clone()),
            )
        }
        TriggerCondition::Keyword { query } => format!(
            "Keyword rule {} on {name}: {} new mention{} match `{query}`.",
            rule.id,
            f.count,
            if f.count == 1 { "" } else { "s" },
        ),
    }
}

/// Records the firing for the timeline, puts the event on the events queue, and clears
/// the pending flag (in that order: a failure leaves it pending for the sweep).
async fn announce<S: TriggerStore>(
    store: &S,
    queue: &dyn MessageQueue,
    fired: &TriggerFired,
    event: &str,
) -> Result<(), TriggerError> {
    store
        .record_firing(&FiringRecord {
            campaign: fired.campaign.clone(),
            rule: fired.rule.clone(),
            window_start: fired.window_start,
            fired_at: fired.fired_at,
            event: event.to_owned(),
        })
        .await?;
    queue
        .send_batch(QueueName::Events, &[event.to_owned()])
        .await?;
    store
        .mark_announced(&fired.campaign, &fired.rule, fired.window_start)
        .await?;
    Ok(())
}

/// Re-sends trigger events whose firing was recorded but not announced (the worker failed
/// between the two) once they are older than [`PENDING_GRACE`]. Run by the scheduler tick.
/// Returns the number re-sent.
pub async fn sweep_pending<S>(
    store: &S,
    queue: &dyn MessageQueue,
    now: Timestamp,
) -> Result<usize, TriggerError>
where
    S: ConfigStore + TriggerStore,
{
    let campaigns: Vec<Campaign> = store.list().await?;
    let mut resent = 0;
    for campaign in campaigns.iter().filter(|c| !c.triggers.is_empty()) {
        for rule in &campaign.triggers {
            let Some(state) = store.trigger_state(&campaign.id, &rule.id).await? else {
                continue;
            };
            let Some(event) = &state.pending_event else {
                continue;
            };
            if state.fired_at + PENDING_GRACE > now {
                continue;
            }
            let fired = match serde_json::from_str::<HarkEvent>(event) {
                Ok(HarkEvent::TriggerFired(fired)) => fired,
                Ok(_) | Err(_) => {
                    tracing::error!(campaign = %campaign.id, rule = %rule.id, "pending trigger event is unreadable; dropped");
                    store
                        .mark_announced(&campaign.id, &rule.id, state.window_start)
                        .await?;
                    continue;
                }
            };
            tracing::warn!(event_id = %fired.event_id, "re-sending a trigger event that was not announced");
            announce(store, queue, &fired, event).await?;
            resent += 1;
        }
    }
    Ok(resent)
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::domain::{Interval, Platform, TriggerRule};
    use crate::embedded::{EmbeddedOptions, EmbeddedStore};

    fn campaign(windows_h: &[u64]) -> Campaign {
        Campaign {
            id: "launch".into(),
            name: None,
            query: "hark".into(),
            sources: vec![],
            triggers: windows_h
                .iter()
                .enumerate()
                .map(|(i, h)| TriggerRule {
                    id: format!("r{i}"),
                    when: TriggerCondition::VolumeSpike {
                        k: 3.0,
                        window: Interval::from_secs(h * 3600),
                        min_mentions: 1,
                    },
                    actions: vec![],
                    cooldown: Interval::from_secs(3600),
                })
                .collect(),
            active: true,
            policy: Default::default(),
        }
    }

    #[tokio::test]
    async fn given_overlapping_history_ranges_then_every_hour_is_counted_once() {
        let store = EmbeddedStore::open_in_memory(EmbeddedOptions {
            retention_days: 90,
            max_receive_count: 5,
            clock: std::sync::Arc::new(crate::clock::SystemClock),
        })
        .unwrap();
        let now: Timestamp = "2026-03-30T09:30:00Z".parse().unwrap();
        // One mention per hour on two platforms for 30 days.
        let mut hour = now - SignedDuration::from_hours(30 * 24);
        while hour <= now {
            for platform in [Platform::Mastodon, Platform::Bluesky] {
                let delta = Counters {
                    mentions: 1,
                    ..Counters::default()
                };
                store
                    .add_counters(&HourBucket::new("launch", platform, hour), &delta)
                    .await
                    .unwrap();
            }
            hour += SignedDuration::from_hours(1);
        }
        // Two rules with different windows: their rolling and seasonal ranges overlap.
        let series = load_series(&store, &campaign(&[1, 6]), now).await.unwrap();
        assert!(!series.is_empty());
        assert!(
            series.values().all(|c| c.mentions == 2),
            "an hour counted twice: {:?}",
            series.iter().find(|(_, c)| c.mentions != 2)
        );
        // The 6 h rule's history reaches further back than the 1 h rule's alone.
        let week_ago = rules::window_at(Interval::from_secs(6 * 3600), now).0
            - SignedDuration::from_hours(24 * 7);
        assert!(series.contains_key(&week_ago));
        // The seasonal baseline of the same hour is exactly the stored 2 per hour.
        let v = rules::volume_spike(&series, 3.0, Interval::from_secs(3600), 1, now);
        assert_eq!(v.figures().baseline, Some(2.0));
        assert_eq!(
            v.figures().baseline_method.as_deref(),
            Some("same hour of week")
        );
    }
}
