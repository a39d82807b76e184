//! The publishing half of the scheduler tick: recurring posts roll forward to their next
//! occurrence, then every due delivery gets one numbered publish job.
//!
//! A delivery is marked dispatched (with a new job number, `due_at` pushed out by the
//! dispatch lease) **before** its job is sent, with a conditional write: two ticks in the
//! same minute cannot both dispatch it, and if the job is lost it becomes due again when the
//! lease runs out. A stack that was paused finds its overdue deliveries due and publishes
//! each of them once, late; a recurring post gets its next *future* occurrence, never the
//! ones it missed.

use futures_util::stream::{self, StreamExt};
use jiff::{SignedDuration, Timestamp};

use super::jobs::PublishJob;
use super::{DISPATCH_LEASE, PublishingError};
use crate::domain::{Delivery, ScheduledPost};
use crate::ports::{
    ConfigStore, CreateOutcome, DeliveryStore, MessageQueue, QueueName, StoreError, pack_batches,
};

/// Tuning of the dispatch step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How long a dispatched delivery waits for its job before being dispatched again.
    pub lease: SignedDuration,
    /// Due deliveries dispatched per tick at most (the rest wait for the next tick).
    pub max_per_tick: usize,
    /// Dispatch writes in flight at once.
    pub concurrency: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            lease: DISPATCH_LEASE,
            max_per_tick: 1000,
            concurrency: 8,
        }
    }
}

/// What the dispatch step of one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DispatchReport {
    /// Recurring posts looked at.
    pub recurring_posts: usize,
    /// Deliveries created for the next occurrence of a recurring post.
    pub occurrences_created: usize,
    /// Due deliveries found.
    pub due: usize,
    /// Publish jobs sent.
    pub dispatched: usize,
    /// Due deliveries another tick (or a worker) changed first.
    pub taken_by_other_tick: usize,
}

/// Rolls recurring posts forward and sends a publish job for every due delivery.
pub async fn dispatch_due<S>(
    store: &S,
    queue: &dyn MessageQueue,
    now: Timestamp,
    settings: &DispatchSettings,
) -> Result<DispatchReport, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    let mut report = DispatchReport::default();
    roll_forward(store, now, &mut report).await?;

    let due = store.list_due(now, settings.max_per_tick).await?;
    report.due = due.len();
    let due = hold_braked(store, due, now).await?;
    send_jobs(store, queue, due, now, settings, &mut report).await?;
    tracing::info!(
        due = report.due,
        dispatched = report.dispatched,
        occurrences_created = report.occurrences_created,
        "publishing tick"
    );
    Ok(report)
}

/// Dispatches these deliveries now (those still QUEUED and due), without waiting for the
/// next tick: alerts and automatic posts made by trigger actions.
pub async fn dispatch_now<S>(
    store: &S,
    queue: &dyn MessageQueue,
    delivery_ids: &[String],
    now: Timestamp,
) -> Result<DispatchReport, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    let mut report = DispatchReport::default();
    let mut due = Vec::new();
    for id in delivery_ids {
        if let Some(d) = store.get_delivery(id).await?
            && d.status() == crate::domain::DeliveryStatus::Queued
            && d.due_at <= now
        {
            due.push(d);
        }
    }
    report.due = due.len();
    let due = hold_braked(store, due, now).await?;
    send_jobs(
        store,
        queue,
        due,
        now,
        &DispatchSettings::default(),
        &mut report,
    )
    .await?;
    Ok(report)
}

/// Dispatches a delivery that was just requeued for `retry_at` (at most
/// [`MAX_DELAY`](crate::ports::MAX_DELAY) away) on a job the queue holds back until then,
/// so a retry does not wait for the next tick. The usual rules hold: the crisis brake
/// pauses it instead, the delivery is marked dispatched (new job number, conditional
/// write) before the job is sent, and a job that cannot be sent is retracted so the tick
/// dispatches the delivery at `retry_at`. Best effort: the requeue is already stored and
/// the tick is the fallback, so failures are logged and `None` is returned.
pub(crate) async fn dispatch_later<S>(
    store: &S,
    queue: &dyn MessageQueue,
    delivery: Delivery,
    retry_at: Timestamp,
    now: Timestamp,
) -> Option<u32>
where
    S: ConfigStore + DeliveryStore,
{
    let id = delivery.id.clone();
    let fallback = |what: &str, error: &dyn std::fmt::Display| {
        tracing::warn!(delivery_id = %id, %retry_at, error = %error, "{what}; the scheduler's tick dispatches the retry");
    };
    let mut delivery = match hold_braked(store, vec![delivery], now).await {
        Ok(mut rest) => rest.pop()?,
        Err(e) => {
            fallback("cannot check the crisis brake", &e);
            return None;
        }
    };
    let dispatch = delivery.dispatch_at(retry_at, DISPATCH_LEASE, now).ok()?;
    let saved = match store.update_delivery(&delivery).await {
        Ok(saved) => saved,
        // Someone moved it first (an operator, a tick): they decide what happens next.
        Err(StoreError::Conflict { .. }) => return None,
        Err(e) => {
            fallback("cannot mark the retry dispatched", &e);
            return None;
        }
    };
    let job = PublishJob {
        delivery_id: saved.id.clone(),
        dispatch,
        dispatched_at: now,
    };
    let sent = match serde_json::to_string(&job) {
        Ok(body) => {
            let delay = (retry_at - now).max(SignedDuration::ZERO);
            queue
                .send_batch_delayed(QueueName::Publish, &[body], delay)
                .await
                .map_err(PublishingError::from)
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = sent {
        fallback("cannot send the delayed retry job", &e);
        let mut retracted = saved;
        if retracted.retract_dispatch(retry_at, now).is_ok()
            && let Err(e) = store.update_delivery(&retracted).await
        {
            // Still safe: the delivery is due again when its dispatch lease runs out.
            fallback("cannot retract the unsent retry job", &e);
        }
        return None;
    }
    Some(dispatch)
}

/// Pauses (instead of dispatching) the due deliveries of campaigns whose crisis brake is
/// engaged, so posts scheduled after the brake was pulled are held too. Returns the rest.
async fn hold_braked<S>(
    store: &S,
    due: Vec<Delivery>,
    now: Timestamp,
) -> Result<Vec<Delivery>, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    if due.is_empty() {
        return Ok(due);
    }
    let brakes: Vec<crate::actions::Brake> = store.list().await?;
    let engaged: Vec<&crate::actions::Brake> = brakes.iter().filter(|b| b.engaged).collect();
    if engaged.is_empty() {
        return Ok(due);
    }
    let mut rest = Vec::with_capacity(due.len());
    for mut delivery in due {
        // Alerts are never held: the brake must not silence the alert about the crisis.
        let campaign = store
            .get::<ScheduledPost>(&delivery.post_id)
            .await?
            .filter(|p| {
                !p.origin
                    .as_ref()
                    .is_some_and(|o| o.kind == crate::domain::OriginKind::Alert)
            })
            .and_then(|p| p.campaign);
        let brake = campaign
            .as_deref()
            .and_then(|c| engaged.iter().find(|b| b.id == c));
        match brake {
            Some(brake) if delivery.pause(&brake.reason, now).is_ok() => {
                match store.update_delivery(&delivery).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            _ => rest.push(delivery),
        }
    }
    Ok(rest)
}

/// Marks each delivery dispatched (conditional write) and sends its numbered job.
async fn send_jobs<S>(
    store: &S,
    queue: &dyn MessageQueue,
    due: Vec<Delivery>,
    now: Timestamp,
    settings: &DispatchSettings,
    report: &mut DispatchReport,
) -> Result<(), PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    let marked = due.into_iter().filter_map(|mut delivery| {
        // Not queued after all: an index lagging behind a claim.
        let dispatch = delivery.dispatch(settings.lease, now).ok()?;
        Some((delivery, dispatch))
    });
    // Independent conditional writes: several at a time, in due order.
    let written: Vec<_> = stream::iter(marked)
        .map(|(delivery, dispatch)| async move {
            let result = store.update_delivery(&delivery).await;
            (result, delivery.id, dispatch)
        })
        .buffered(settings.concurrency.max(1))
        .collect()
        .await;
    let mut jobs = Vec::new();
    let mut failure = None;
    for (result, delivery_id, dispatch) in written {
        match result {
            Ok(_) => jobs.push(PublishJob {
                delivery_id,
                dispatch,
                dispatched_at: now,
            }),
            Err(StoreError::Conflict { .. }) => report.taken_by_other_tick += 1,
            // Send the jobs of the deliveries already marked before reporting it.
            Err(e) => failure = Some(e),
        }
    }
    let bodies = jobs
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    let batches = pack_batches(bodies)?;
    let mut unsent = jobs.as_slice();
    for batch in batches {
        if let Err(e) = queue.send_batch(QueueName::Publish, &batch).await {
            // Make these due again now rather than after the dispatch lease.
            for job in unsent {
                release(store, job, now).await;
            }
            return Err(e.into());
        }
        report.dispatched += batch.len();
        unsent = &unsent[batch.len()..];
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(())
}

/// Creates the deliveries of each recurring post's next occurrence at or after `now`
/// (idempotent: the ids are deterministic). A post whose schedule cannot be computed is
/// skipped with a warning rather than stopping the tick for everyone.
async fn roll_forward<S>(
    store: &S,
    now: Timestamp,
    report: &mut DispatchReport,
) -> Result<(), PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    let posts: Vec<ScheduledPost> = store.list().await?;
    for post in posts.iter().filter(|p| p.is_recurring()) {
        report.recurring_posts += 1;
        let next = match post.next_occurrence(now) {
            Ok(Some(next)) => next,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(post_id = %post.id, error = %e, "cannot compute the next occurrence");
                continue;
            }
        };
        for channel in &post.channels {
            let id = Delivery::id_for(&post.id, channel, next.at);
            // A read is cheaper than a conditional put that fails on every tick.
            if store.get_delivery(&id).await?.is_some() {
                continue;
            }
            let delivery = Delivery::for_occurrence(&post.id, channel, next.index, next.at, now);
            if store.create_delivery(&delivery).await? == CreateOutcome::Created {
                report.occurrences_created += 1;
            }
        }
    }
    Ok(())
}

/// Best effort: make a delivery due again after its job could not be sent.
async fn release<S: DeliveryStore>(store: &S, job: &PublishJob, now: Timestamp) {
    let Ok(Some(mut delivery)) = store.get_delivery(&job.delivery_id).await else {
        return;
    };
    if !delivery.accepts_job(job.dispatch) || delivery.release_dispatch(now).is_err() {
        return;
    }
    if let Err(e) = store.update_delivery(&delivery).await {
        tracing::warn!(delivery_id = %job.delivery_id, error = %e, "could not release a delivery after a failed send");
    }
}
