//! The scheduler tick: sources of active campaigns whose next poll time has come get one
//! poll job each. The cursor's `next_poll_at` is advanced with an optimistic write
//! **before** the job is sent, so two ticks in the same minute cannot both poll a source.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::{ListeningError, PollJob};
use crate::domain::{Campaign, Cursor, Source};
use crate::ports::{ConfigStore, CursorStore, MessageQueue, QueueName, StoreError, pack_batches};

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    /// Sources of active campaigns.
    pub listened: usize,
    /// Poll jobs sent.
    pub queued: usize,
    /// Due sources another tick took first.
    pub taken_by_other_tick: usize,
    /// Sources switched off after repeated failures.
    pub disabled: usize,
}

/// Sends poll jobs for the due sources of active campaigns.
pub async fn schedule_polls<S>(
    store: &S,
    queue: &dyn MessageQueue,
    now: Timestamp,
) -> Result<TickReport, ListeningError>
where
    S: ConfigStore + CursorStore,
{
    let campaigns: Vec<Campaign> = store.list().await?;
    let wanted: BTreeSet<&str> = campaigns
        .iter()
        .filter(|c| c.active)
        .flat_map(|c| c.sources.iter().map(String::as_str))
        .collect();
    let sources: Vec<Source> = store.list().await?;
    let mut report = TickReport::default();
    let mut jobs = Vec::new();
    for source in sources
        .iter()
        .filter(|s| s.enabled && wanted.contains(s.id.as_str()))
    {
        report.listened += 1;
        let mut cursor = store
            .get_cursor(&source.id)
            .await?
            .unwrap_or_else(|| Cursor::new(&source.id));
        if cursor.health.disabled.is_some() {
            report.disabled += 1;
            continue;
        }
        if cursor.next_poll_at.is_some_and(|t| t > now) {
            continue;
        }
        cursor.next_poll_at = Some(now + source.every.as_duration());
        match store.save_cursor(&cursor).await {
            Ok(_) => jobs.push(PollJob {
                source_id: source.id.clone(),
                scheduled_at: now,
            }),
            Err(StoreError::Conflict { .. }) => report.taken_by_other_tick += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let bodies = jobs
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    for batch in pack_batches(bodies)? {
        if let Err(e) = queue.send_batch(QueueName::Poll, &batch).await {
            // The cursors of these sources were pushed forward; put them back so the next
            // tick retries instead of waiting a whole interval.
            for body in &batch {
                if let Ok(job) = serde_json::from_str::<PollJob>(body) {
                    release(store, &job.source_id, now).await;
                }
            }
            return Err(e.into());
        }
        report.queued += batch.len();
    }
    tracing::info!(
        listened = report.listened,
        queued = report.queued,
        taken = report.taken_by_other_tick,
        "scheduler tick"
    );
    Ok(report)
}

/// Best effort: make a source due again after its poll job could not be sent.
async fn release<S: CursorStore>(store: &S, source_id: &str, now: Timestamp) {
    if let Ok(Some(mut cursor)) = store.get_cursor(source_id).await {
        cursor.next_poll_at = Some(now);
        if let Err(e) = store.save_cursor(&cursor).await {
            tracing::warn!(source_id, error = %e, "could not release a source after a failed send");
        }
    }
}
