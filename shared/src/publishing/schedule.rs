//! Scheduling: a post fans out into one delivery per channel for its next occurrence, after
//! the post passes every channel's rules. Delivery ids are deterministic (post, channel,
//! occurrence instant), so scheduling the same post again creates nothing new, and a
//! changed post cancels the queued deliveries its new schedule no longer contains.

use jiff::{SignedDuration, Timestamp};

use super::PublishingError;
use super::publisher::announce;
use super::validate::validate_post;
use crate::domain::{Channel, Delivery, DeliveryStatus, Occurrence, ScheduledPost};
use crate::ports::{ConfigStore, CreateOutcome, DeliveryStore, MessageQueue, StoreError};

/// A one-off post whose time is further in the past than this is not scheduled any more:
/// applying an old file (to a new stack, say) must not publish last year's posts again. A
/// delivery that already exists still goes out late, once, however late it is.
pub const LATE_SCHEDULING_GRACE: SignedDuration = SignedDuration::from_hours(1);

/// What scheduling one post did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScheduleReport {
    pub post_id: String,
    /// The occurrence scheduled now (none when the schedule has ended or is too old).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<Timestamp>,
    /// Deliveries created.
    pub created: Vec<String>,
    /// Deliveries that existed already (in whatever state).
    pub already_scheduled: Vec<String>,
    /// Queued deliveries cancelled because the post no longer wants them.
    pub superseded: Vec<String>,
    /// Why nothing was scheduled, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Whether `post`'s schedule (time, zone, recurrence, channels) differs from `previous`:
/// only then can queued deliveries of the earlier version be unwanted.
pub fn schedule_changed(previous: &ScheduledPost, post: &ScheduledPost) -> bool {
    previous.at != post.at
        || previous.time_zone != post.time_zone
        || previous.repeat != post.repeat
        || previous.channels != post.channels
}

/// Schedules `post` (already stored) against the stored channels: validates it on every
/// channel and creates the deliveries of its next occurrence. With `find_superseded` (the
/// post's schedule changed, see [`schedule_changed`]) it also cancels the queued deliveries
/// of earlier versions that the current one no longer contains; that needs a listing of the
/// post's deliveries (a scan on DynamoDB), so it is asked for only when something changed.
/// A post that fails validation on any channel schedules nothing
/// ([`PublishingError::Invalid`] lists every problem).
pub async fn schedule_post<S>(
    store: &S,
    queue: &dyn MessageQueue,
    post: &ScheduledPost,
    find_superseded: bool,
    now: Timestamp,
) -> Result<ScheduleReport, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    let schedule_error = |source| PublishingError::Schedule {
        post: post.id.clone(),
        source,
    };
    post.validate_schedule().map_err(schedule_error)?;
    let mut channels: Vec<Channel> = Vec::new();
    for id in &post.channels {
        if let Some(channel) = store.get::<Channel>(id).await? {
            channels.push(channel);
        }
    }
    let problems = validate_post(post, |id| channels.iter().find(|c| c.id == id));
    if !problems.is_empty() {
        return Err(PublishingError::Invalid {
            post: post.id.clone(),
            problems,
        });
    }

    let mut report = ScheduleReport {
        post_id: post.id.clone(),
        ..ScheduleReport::default()
    };
    let target: Option<Occurrence> = if post.is_recurring() {
        // Missed occurrences are not made up: the next one at or after now.
        let next = post.next_occurrence(now).map_err(schedule_error)?;
        if next.is_none() {
            report.skipped = Some("its recurrence has ended".to_owned());
        }
        next
    } else if post.at + LATE_SCHEDULING_GRACE >= now {
        Some(Occurrence {
            index: 0,
            at: post.at,
        })
    } else {
        report.skipped = Some(format!(
            "its time {} is more than {:#} in the past",
            post.at, LATE_SCHEDULING_GRACE
        ));
        None
    };
    report.occurrence = target.map(|o| o.at);

    let stale = if find_superseded {
        superseded(store, post).await?
    } else {
        Vec::new()
    };
    for stale in stale {
        let reason = format!(
            "superseded: post `{}` changed and no longer includes this occurrence on channel `{}`",
            post.id, stale.channel_id
        );
        if let Some(id) = cancel_if_queued(store, queue, stale, &reason, now).await? {
            report.superseded.push(id);
        }
    }

    if let Some(occurrence) = target {
        for channel in &channels {
            let delivery = Delivery::for_occurrence(
                &post.id,
                &channel.id,
                occurrence.index,
                occurrence.at,
                now,
            );
            match store.create_delivery(&delivery).await? {
                CreateOutcome::Created => report.created.push(delivery.id),
                CreateOutcome::AlreadyExists => report.already_scheduled.push(delivery.id),
            }
        }
    }
    tracing::info!(
        post_id = %post.id,
        created = report.created.len(),
        superseded = report.superseded.len(),
        "post scheduled"
    );
    Ok(report)
}

/// Queued deliveries of `post` that its current definition no longer contains: their
/// channel was removed, or their instant is not one of its occurrences any more.
async fn superseded<S: DeliveryStore>(
    store: &S,
    post: &ScheduledPost,
) -> Result<Vec<Delivery>, PublishingError> {
    let mut stale = Vec::new();
    for d in store.list_deliveries(Some(&post.id)).await? {
        if d.status() != DeliveryStatus::Queued {
            continue;
        }
        let wanted = post.channels.contains(&d.channel_id)
            && post
                .occurrence_at(d.scheduled_for)
                .map_err(|source| PublishingError::Schedule {
                    post: post.id.clone(),
                    source,
                })?
                .is_some();
        if !wanted {
            stale.push(d);
        }
    }
    Ok(stale)
}

/// Cancels `delivery` if it is still queued (a worker may have claimed it meanwhile: then
/// it is left alone). Returns its id when cancelled.
async fn cancel_if_queued<S: ConfigStore + DeliveryStore>(
    store: &S,
    queue: &dyn MessageQueue,
    mut delivery: Delivery,
    reason: &str,
    now: Timestamp,
) -> Result<Option<String>, PublishingError> {
    for _ in 0..3 {
        if delivery.status() != DeliveryStatus::Queued {
            return Ok(None);
        }
        delivery.cancel(reason, now)?;
        match store.update_delivery(&delivery).await {
            Ok(saved) => {
                let id = saved.id.clone();
                announce(store, queue, saved, None, now).await?;
                return Ok(Some(id));
            }
            Err(StoreError::Conflict { .. }) => {
                let Some(fresh) = store.get_delivery(&delivery.id).await? else {
                    return Ok(None);
                };
                delivery = fresh;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PublishingError::Contended { id: delivery.id })
}
