//! The settling half of the scheduler tick ([`settle_due`]): deliveries nobody is working
//! on any more, found through the stores' settle index ([`DeliveryStore::list_to_settle`]).
//!
//! - **Stranded claims**: a CLAIMED or SENT delivery whose lease ran out and whose job is
//!   gone (it went to the dead-letter queue after its receives) would otherwise wait
//!   forever. It is re-dispatched where the publisher's own rule allows a re-send
//!   ([`resend_refusal`]), and becomes UNKNOWN where it does not.
//! - **The reconciler**: an UNKNOWN delivery (a create that may have reached a platform
//!   without an idempotency guard) is looked for among the account's own posts created
//!   since its first send, by its exact text ([`Publisher::find_published`], never "the
//!   newest post"). Found → PUBLISHED with the platform's id and URL (and its event);
//!   certainly not there → QUEUED and dispatched at once; the platform cannot be read or
//!   cannot tell → looked at again later; still open [`RECONCILE_DEADLINE`] after the
//!   first send → FAILED "could not confirm whether it was published" (one event).
//!
//! Every change is the same conditional write the publisher makes, so a sweep racing a
//! publisher (or another sweep) ends in one outcome; the loser skips the delivery.

use futures_util::stream::{self, StreamExt};
use jiff::{SignedDuration, Timestamp};

use super::backoff::jitter_fraction;
use super::dispatch::dispatch_now;
use super::factory::PublisherFactory;
use super::publisher::{announce, outgoing_post, resend_refusal, save};
use super::{CLAIM_LEASE, PublishingError, RECONCILE_DEADLINE};
use crate::domain::{Channel, Delivery, DeliveryState, DeliveryStatus, ScheduledPost};
use crate::platforms::Lookup;
use crate::ports::{ConfigStore, DeliveryStore, MessageQueue};

/// Tuning of the settle sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleSettings {
    /// The publisher's claim lease ([`PublisherSettings::claim_lease`](super::PublisherSettings)):
    /// a claim is stranded only once it ran out.
    pub claim_lease: SignedDuration,
    /// A stranded delivery that already had this many claims is FAILED instead of being
    /// dispatched again (its worker keeps dying on it).
    pub max_attempts: u32,
    /// An UNKNOWN delivery still open this long after its first send is FAILED.
    pub deadline: SignedDuration,
    /// The account's posts are read from this long before the first send: the platform's
    /// clock and ours may disagree a little.
    pub since_margin: SignedDuration,
    /// The shortest and longest wait before looking again after an inconclusive look.
    pub first_wait: SignedDuration,
    pub max_wait: SignedDuration,
    /// Deliveries settled per tick at most (the rest wait for the next tick).
    pub max_per_tick: usize,
    /// Deliveries worked on at once (each may read a platform's timeline).
    pub concurrency: usize,
}

impl Default for SettleSettings {
    fn default() -> Self {
        SettleSettings {
            claim_lease: CLAIM_LEASE,
            max_attempts: 8,
            deadline: RECONCILE_DEADLINE,
            since_margin: SignedDuration::from_mins(5),
            first_wait: SignedDuration::from_mins(1),
            max_wait: SignedDuration::from_mins(30),
            max_per_tick: 100,
            concurrency: 8,
        }
    }
}

impl SettleSettings {
    /// The defaults, with the lease and attempt limit of the publisher that works on the
    /// same deliveries (a claim must not be called stranded while its worker may run).
    pub fn matching(publisher: &super::PublisherSettings) -> Self {
        SettleSettings {
            claim_lease: publisher.claim_lease,
            max_attempts: publisher.max_attempts,
            ..SettleSettings::default()
        }
    }
}

/// What the settle step of one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SettleReport {
    /// Deliveries the settle index returned.
    pub found: usize,
    /// Stranded claims made QUEUED again (and dispatched unless a brake holds them).
    pub recovered: usize,
    /// Stranded sends that may not be repeated, now UNKNOWN.
    pub made_unknown: usize,
    /// UNKNOWN deliveries found on the platform: now PUBLISHED.
    pub reconciled_published: usize,
    /// UNKNOWN deliveries certainly not on the platform: QUEUED again.
    pub reconciled_requeued: usize,
    /// Inconclusive looks: tried again later.
    pub deferred: usize,
    /// FAILED: past the reconcile deadline, or a worker died on it too often.
    pub failed: usize,
    /// Publish jobs sent for the deliveries made QUEUED.
    pub dispatched: usize,
    /// Deliveries someone else changed first, or not due after all (a lagging index).
    pub skipped: usize,
    /// Deliveries left as they were because the store or queue failed.
    pub errors: usize,
}

/// What happened to one delivery.
enum Settled {
    Requeued,
    Recovered,
    MadeUnknown,
    Published,
    Deferred,
    Failed,
    Skipped,
}

/// Settles what the settle index says is due: stranded claims and UNKNOWN outcomes.
/// Each delivery is independent: one that cannot be settled (a store error) does not stop
/// the others; the first such error is returned after all were tried.
pub async fn settle_due<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    publishers: &F,
    now: Timestamp,
    settings: &SettleSettings,
) -> Result<SettleReport, PublishingError>
where
    S: ConfigStore + DeliveryStore,
    F: PublisherFactory + ?Sized,
{
    let mut report = SettleReport::default();
    let due = store.list_to_settle(now, settings.max_per_tick).await?;
    report.found = due.len();
    let results: Vec<(String, Result<Settled, PublishingError>)> = stream::iter(due)
        .map(|delivery| async move {
            let id = delivery.id.clone();
            (
                id,
                settle_one(store, queue, publishers, delivery, now, settings).await,
            )
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    let mut to_dispatch = Vec::new();
    let mut failure = None;
    for (id, result) in results {
        match result {
            Ok(Settled::Requeued) => {
                report.reconciled_requeued += 1;
                to_dispatch.push(id);
            }
            Ok(Settled::Recovered) => {
                report.recovered += 1;
                to_dispatch.push(id);
            }
            Ok(Settled::MadeUnknown) => report.made_unknown += 1,
            Ok(Settled::Published) => report.reconciled_published += 1,
            Ok(Settled::Deferred) => report.deferred += 1,
            Ok(Settled::Failed) => report.failed += 1,
            Ok(Settled::Skipped) => report.skipped += 1,
            Err(e) => {
                tracing::warn!(delivery_id = %id, error = %e, "could not settle a delivery");
                report.errors += 1;
                failure.get_or_insert(e);
            }
        }
    }
    if !to_dispatch.is_empty() {
        // At once rather than on the next tick; the crisis brake still holds them.
        report.dispatched = dispatch_now(store, queue, &to_dispatch, now)
            .await?
            .dispatched;
    }
    tracing::info!(
        found = report.found,
        recovered = report.recovered,
        made_unknown = report.made_unknown,
        reconciled_published = report.reconciled_published,
        reconciled_requeued = report.reconciled_requeued,
        deferred = report.deferred,
        failed = report.failed,
        "settle tick"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

async fn settle_one<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    publishers: &F,
    delivery: Delivery,
    now: Timestamp,
    settings: &SettleSettings,
) -> Result<Settled, PublishingError>
where
    S: ConfigStore + DeliveryStore,
    F: PublisherFactory + ?Sized,
{
    match delivery.status() {
        DeliveryStatus::Claimed | DeliveryStatus::Sent
            if delivery.is_stranded(settings.claim_lease, now) =>
        {
            recover_stranded(store, queue, delivery, now, settings).await
        }
        DeliveryStatus::Unknown if delivery.due_at <= now => {
            reconcile(store, queue, publishers, delivery, now, settings).await
        }
        // A lagging index entry, or a lease that is still running.
        _ => Ok(Settled::Skipped),
    }
}

/// A CLAIMED or SENT delivery whose worker is gone: dispatched again if the publisher's
/// rule allows sending its create again, UNKNOWN if it does not.
async fn recover_stranded<S>(
    store: &S,
    queue: &dyn MessageQueue,
    mut delivery: Delivery,
    now: Timestamp,
    settings: &SettleSettings,
) -> Result<Settled, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    let recovering_send = delivery.status() == DeliveryStatus::Sent;
    let platform = store
        .get::<Channel>(&delivery.channel_id)
        .await?
        .map(|c| c.platform);
    let refusal = match platform {
        Some(platform) => resend_refusal(platform, &delivery, recovering_send, now),
        // Without the channel its guard is unknown: a create that went out stays unknown.
        None if recovering_send => Some(format!(
            "the worker stopped after sending the create request; channel `{}` no longer exists, so whether it was published cannot be checked",
            delivery.channel_id
        )),
        None => None,
    };
    if let Some(reason) = refusal {
        // Sent at least a lease ago: the platform lists the post by now if it exists.
        delivery.mark_unknown(&reason, now, now)?;
        let Some(saved) = save(store, &delivery).await? else {
            return Ok(Settled::Skipped);
        };
        tracing::warn!(delivery_id = %saved.id, reason, "stranded send: outcome unknown");
        announce(store, queue, saved, platform, now).await?;
        return Ok(Settled::MadeUnknown);
    }
    if delivery.attempts >= settings.max_attempts {
        let reason = format!(
            "gave up after {} attempts: the worker stopped each time before recording an outcome",
            delivery.attempts
        );
        delivery.mark_failed(&reason, false, now)?;
        let Some(saved) = save(store, &delivery).await? else {
            return Ok(Settled::Skipped);
        };
        announce(store, queue, saved, platform, now).await?;
        return Ok(Settled::Failed);
    }
    let reason = "recovered by the scheduler: the worker holding it stopped and its job is gone";
    delivery.requeue(now, reason, now)?;
    if save(store, &delivery).await?.is_none() {
        return Ok(Settled::Skipped);
    }
    tracing::info!(delivery_id = %delivery.id, recovering_send, "stranded claim recovered");
    Ok(Settled::Recovered)
}

/// One look for an UNKNOWN delivery's post on its account.
async fn reconcile<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    publishers: &F,
    delivery: Delivery,
    now: Timestamp,
    settings: &SettleSettings,
) -> Result<Settled, PublishingError>
where
    S: ConfigStore + DeliveryStore,
    F: PublisherFactory + ?Sized,
{
    let channel = store.get::<Channel>(&delivery.channel_id).await?;
    let platform = channel.as_ref().map(|c| c.platform);
    // The UNKNOWN state is announced before it is left, so no state goes unannounced (a
    // publisher that died before announcing it would otherwise take the event with it).
    let mut delivery = announce(store, queue, delivery, platform, now).await?;
    if !matches!(delivery.state, DeliveryState::Unknown { .. }) {
        return Ok(Settled::Skipped);
    }
    let first_sent = delivery.first_sent_at.unwrap_or(delivery.updated_at);
    let deadline = first_sent + settings.deadline;
    if now >= deadline {
        let last = delivery
            .last_error
            .clone()
            .or_else(|| delivery.state.reason().map(str::to_owned))
            .unwrap_or_default();
        let reason = format!(
            "could not confirm whether it was published: still unknown {} after the first send ({last}); check the account and retry it if it is not there",
            humanize(settings.deadline)
        );
        delivery.mark_failed(&reason, false, now)?;
        let Some(saved) = save(store, &delivery).await? else {
            return Ok(Settled::Skipped);
        };
        tracing::warn!(delivery_id = %saved.id, "could not confirm a create: failed");
        announce(store, queue, saved, platform, now).await?;
        return Ok(Settled::Failed);
    }

    let post = store.get::<ScheduledPost>(&delivery.post_id).await?;
    let (channel, post) = match (channel, post) {
        (Some(channel), Some(post)) => (channel, post),
        (None, _) => {
            let why = format!("channel `{}` no longer exists", delivery.channel_id);
            return defer(store, delivery, &why, now, deadline, settings).await;
        }
        (_, None) => {
            let why = format!("post `{}` no longer exists", delivery.post_id);
            return defer(store, delivery, &why, now, deadline, settings).await;
        }
    };
    let built = match publishers.publisher_for(&channel).await {
        Ok(built) => built,
        Err(e) => return defer(store, delivery, &e.to_string(), now, deadline, settings).await,
    };
    let outgoing = outgoing_post(&post, &channel);
    let since = first_sent - settings.since_margin;
    match built.publisher.find_published(&outgoing, since).await {
        Ok(Lookup::Found(published)) => {
            delivery.mark_published(&published.platform_id, published.url.as_deref(), now)?;
            let Some(saved) = save(store, &delivery).await? else {
                return Ok(Settled::Skipped);
            };
            tracing::info!(delivery_id = %saved.id, platform_id = %published.platform_id, "reconciled: published");
            announce(store, queue, saved, Some(channel.platform), now).await?;
            Ok(Settled::Published)
        }
        Ok(Lookup::NotFound) => {
            let reason = format!(
                "not among the account's posts since {since}: the earlier create did not go through"
            );
            delivery.requeue(now, &reason, now)?;
            if save(store, &delivery).await?.is_none() {
                return Ok(Settled::Skipped);
            }
            tracing::info!(delivery_id = %delivery.id, "reconciled: not published, queued again");
            Ok(Settled::Requeued)
        }
        Ok(Lookup::Unsupported) => {
            let why = format!(
                "the {} client cannot read the account's posts",
                channel.platform
            );
            defer(store, delivery, &why, now, deadline, settings).await
        }
        Err(e) => defer(store, delivery, &e.to_string(), now, deadline, settings).await,
    }
}

/// An inconclusive look: look again later, the wait growing with the time the delivery
/// has been unknown (half of it, within `first_wait..=max_wait`, jittered), and never
/// past the deadline, so the deadline is met on time.
async fn defer<S: DeliveryStore>(
    store: &S,
    mut delivery: Delivery,
    why: &str,
    now: Timestamp,
    deadline: Timestamp,
    settings: &SettleSettings,
) -> Result<Settled, PublishingError> {
    let unknown_for = now - delivery.first_sent_at.unwrap_or(delivery.updated_at);
    let base = (unknown_for / 2)
        .max(settings.first_wait)
        .min(settings.max_wait);
    let fraction = jitter_fraction(&delivery.id, delivery.version as u32);
    let wait = base / 2 + (base / 2).mul_f64(fraction);
    let next = (now + wait).min(deadline);
    delivery.defer_reconcile(next, why, now)?;
    if save(store, &delivery).await?.is_none() {
        return Ok(Settled::Skipped);
    }
    tracing::info!(delivery_id = %delivery.id, %next, why, "reconciliation inconclusive; looking again later");
    Ok(Settled::Deferred)
}

/// "24 h", "90 min": durations in a reason an operator reads.
fn humanize(d: SignedDuration) -> String {
    let minutes = d.as_mins();
    if minutes % 60 == 0 {
        format!("{} h", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}
