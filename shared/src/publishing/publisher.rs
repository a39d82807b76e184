//! The publisher: for one publish job, claim the delivery, validate it, mark it SENT, create
//! the post on the platform, record the outcome at once, then announce it.
//!
//! Every state change is a conditional write on the delivery's version. Whoever loses a
//! write re-reads the delivery and decides again from what it finds, so duplicate jobs and
//! racing workers end in one outcome. A crashed worker leaves a CLAIMED or SENT delivery
//! behind; its job comes back after the queue's visibility timeout, finds the lease run out
//! and recovers it: a claim is simply taken over, a SENT create is sent again only where
//! the platform's guard makes that safe ([`CreateGuard`]) and becomes UNKNOWN otherwise.

use jiff::{SignedDuration, Timestamp};

use super::backoff::Backoff;
use super::dispatch::dispatch_later;
use super::factory::PublisherFactory;
use super::guard::{CreateGuard, create_guard};
use super::jobs::PublishJob;
use super::reauth::{active_flag, clear_flag, flag_channel};
use super::validate::check_channel;
use super::{CLAIM_LEASE, PublishingError, RECONCILE_AFTER};
use crate::clock::Clock;
use crate::domain::{Channel, Delivery, DeliveryState, Platform, ScheduledPost};
use crate::events::HarkEvent;
use crate::platforms::{OutgoingPost, PlatformError};
use crate::ports::{ConfigStore, DeliveryStore, MAX_DELAY, MessageQueue, QueueName, StoreError};

/// The credentials fingerprint recorded when a channel's secret could not be resolved.
const UNRESOLVED_CREDENTIALS: &str = "unresolved";

/// Tuning of the publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherSettings {
    /// Names this worker in leases and logs.
    pub owner: String,
    /// How long a claim holds a delivery (see [`CLAIM_LEASE`]).
    pub claim_lease: SignedDuration,
    /// Claims after which a delivery that keeps failing with retryable errors is FAILED.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl Default for PublisherSettings {
    fn default() -> Self {
        PublisherSettings {
            // Lambda containers often share a pid: the start instant tells them apart.
            owner: format!(
                "publisher-{}-{:x}",
                std::process::id(),
                jiff::Timestamp::now().as_nanosecond() % 0xffff_ffff
            ),
            claim_lease: CLAIM_LEASE,
            max_attempts: 8,
            backoff: Backoff::default(),
        }
    }
}

/// What one publish job did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PublishOutcome {
    Published {
        delivery_id: String,
        platform_id: String,
        url: Option<String>,
    },
    /// A retryable failure: the delivery is QUEUED again, due at `retry_at`.
    Requeued {
        delivery_id: String,
        retry_at: Timestamp,
        reason: String,
        /// Whether a delayed job for `retry_at` was sent at once (otherwise the
        /// scheduler's tick dispatches it when it is due).
        redispatched: bool,
    },
    Failed {
        delivery_id: String,
        reason: String,
        needs_reauth: bool,
    },
    /// The create may have reached a platform that cannot tell us: waits for the reconciler.
    Unknown {
        delivery_id: String,
        reason: String,
    },
    Cancelled {
        delivery_id: String,
        reason: String,
    },
    /// Another worker holds the delivery and its lease has not run out: leave the job on
    /// the queue; when it comes back it sees how that worker's attempt ended (or recovers
    /// it if the worker died).
    InFlight {
        delivery_id: String,
    },
    /// Nothing to do: the delivery is settled, or the job is stale or a duplicate.
    Skipped {
        delivery_id: String,
        why: &'static str,
    },
}

impl PublishOutcome {
    /// Whether the job must stay on the queue (reported as a batch item failure).
    pub fn leave_on_queue(&self) -> bool {
        matches!(self, PublishOutcome::InFlight { .. })
    }
}

/// Handles one publish-queue message body (the Lambda and `hark run` share this). A body
/// that is not a publish job is an error, so the queue retries it and finally
/// dead-letters it.
pub async fn handle_publish_message<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    publishers: &F,
    body: &str,
    clock: &dyn Clock,
    settings: &PublisherSettings,
) -> Result<PublishOutcome, PublishingError>
where
    S: ConfigStore + DeliveryStore,
    F: PublisherFactory + ?Sized,
{
    let job: PublishJob = serde_json::from_str(body).map_err(PublishingError::MalformedJob)?;
    publish_job(store, queue, publishers, &job, clock, settings).await
}

/// Runs one publish job. `Err` only for infrastructure failures (store, queue): the job is
/// then retried by the queue. Platform failures are outcomes.
pub async fn publish_job<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    publishers: &F,
    job: &PublishJob,
    clock: &dyn Clock,
    settings: &PublisherSettings,
) -> Result<PublishOutcome, PublishingError>
where
    S: ConfigStore + DeliveryStore,
    F: PublisherFactory + ?Sized,
{
    let id = job.delivery_id.as_str();
    let skipped = |why| {
        Ok(PublishOutcome::Skipped {
            delivery_id: id.to_owned(),
            why,
        })
    };
    // Each round reads the delivery and acts on what it finds; losing a conditional write
    // to another worker means reading again. Three rounds settle any realistic race.
    for _ in 0..3 {
        let Some(mut delivery) = store.get_delivery(id).await? else {
            tracing::warn!(delivery_id = id, "publish job for an unknown delivery");
            return skipped("unknown delivery");
        };
        let now = clock.now();
        if delivery.event_pending {
            if delivery.updated_at + settings.claim_lease > now {
                // Just recorded: the worker that wrote it is announcing it right now. Come
                // back later rather than send the same event a second time.
                return Ok(PublishOutcome::InFlight {
                    delivery_id: id.to_owned(),
                });
            }
            // Recorded long enough ago that its worker died before announcing it.
            delivery = announce(store, queue, delivery, None, now).await?;
        }
        match &delivery.state {
            DeliveryState::Published { .. }
            | DeliveryState::Failed { .. }
            | DeliveryState::Cancelled { .. } => return skipped("already settled"),
            DeliveryState::Unknown { .. } => {
                return skipped("outcome unknown: left to the reconciler");
            }
            DeliveryState::Paused { .. } => {
                return skipped("paused by the campaign's crisis brake");
            }
            DeliveryState::Queued if !delivery.accepts_job(job.dispatch) => {
                return skipped("stale job: the delivery was dispatched again or requeued");
            }
            DeliveryState::Claimed { lease_until, .. } if *lease_until > now => {
                return Ok(PublishOutcome::InFlight {
                    delivery_id: id.to_owned(),
                });
            }
            DeliveryState::Sent { sent_at } if *sent_at + settings.claim_lease > now => {
                return Ok(PublishOutcome::InFlight {
                    delivery_id: id.to_owned(),
                });
            }
            DeliveryState::Queued | DeliveryState::Claimed { .. } | DeliveryState::Sent { .. } => {}
        }
        if let Some(outcome) = attempt(store, queue, publishers, delivery, clock, settings).await? {
            return Ok(outcome);
        }
    }
    Err(PublishingError::Contended { id: id.to_owned() })
}

/// Writes `delivery` if nobody changed it since it was read: `None` when someone did.
pub(crate) async fn save<S: DeliveryStore>(
    store: &S,
    delivery: &Delivery,
) -> Result<Option<Delivery>, StoreError> {
    match store.update_delivery(delivery).await {
        Ok(saved) => Ok(Some(saved)),
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What goes out on `channel` for `post`: the reconciler looks for exactly this.
pub(crate) fn outgoing_post(post: &ScheduledPost, channel: &Channel) -> OutgoingPost {
    OutgoingPost {
        text: post.text_for(&channel.id).to_owned(),
        link: post.link.clone(),
    }
}

/// Why a create that may already have reached `platform` must not be sent again for this
/// delivery (it then becomes UNKNOWN), or `None` when sending is safe: nothing was sent
/// before, or the platform's guard ([`CreateGuard`]) makes a repeat harmless.
/// `recovering_send`: the delivery is being taken over from SENT (its last create's outcome
/// was never recorded). The one home of this rule: the publisher and the scheduler's
/// settle sweep both ask it.
pub(crate) fn resend_refusal(
    platform: Platform,
    delivery: &Delivery,
    recovering_send: bool,
    now: Timestamp,
) -> Option<String> {
    let first = delivery.first_sent_at?;
    let guard = create_guard(platform);
    let unsafe_to_resend = match guard {
        CreateGuard::None => recovering_send,
        CreateGuard::ExpiringKey { .. } => !guard.allows_resend(first, now),
        CreateGuard::RecordKey => false,
    };
    if !unsafe_to_resend {
        return None;
    }
    Some(match guard {
        CreateGuard::None => format!(
            "the worker stopped after sending the create request at {first}; {platform} has no idempotency guard, so it is not sent again"
        ),
        _ => format!(
            "first sent at {first}; {platform} forgets idempotency keys after an hour, so a re-send now could post twice"
        ),
    })
}

/// One attempt on a delivery that this worker may take. `Ok(None)`: lost a race, look again.
async fn attempt<S, F>(
    store: &S,
    queue: &dyn MessageQueue,
    publishers: &F,
    read: Delivery,
    clock: &dyn Clock,
    settings: &PublisherSettings,
) -> Result<Option<PublishOutcome>, PublishingError>
where
    S: ConfigStore + DeliveryStore,
    F: PublisherFactory + ?Sized,
{
    let now = clock.now();
    let recovering_send = matches!(read.state, DeliveryState::Sent { .. });
    let mut claimed = read;
    if recovering_send {
        claimed.recover_sent(&settings.owner, settings.claim_lease, now)?;
    } else {
        claimed.claim(&settings.owner, settings.claim_lease, now)?;
    }
    let Some(delivery) = save(store, &claimed).await? else {
        return Ok(None);
    };
    let step = Step {
        store,
        queue,
        clock,
        settings,
    };
    tracing::info!(delivery_id = %delivery.id, attempt = delivery.attempts, recovering_send, "claimed");

    let channel = store.get::<Channel>(&delivery.channel_id).await?;
    let post = store.get::<ScheduledPost>(&delivery.post_id).await?;
    let (channel, post) = match (channel, post) {
        (Some(channel), Some(post)) => (channel, post),
        (_, None) => {
            let what = format!("post `{}` no longer exists", delivery.post_id);
            return step.fail(delivery, None, &what, false).await;
        }
        (None, Some(_)) => {
            let what = format!("channel `{}` no longer exists", delivery.channel_id);
            return step.fail(delivery, None, &what, false).await;
        }
    };
    let platform = Some(channel.platform);
    if !post.channels.contains(&delivery.channel_id) {
        let reason = format!(
            "post `{}` no longer lists channel `{}`",
            post.id, channel.id
        );
        return step.cancel(delivery, platform, &reason).await;
    }

    // A create that may already have reached the platform is repeated only under a guard.
    if let Some(reason) = resend_refusal(channel.platform, &delivery, recovering_send, now) {
        return step.unknown(delivery, platform, &reason).await;
    }

    if let Err(problem) = check_channel(&post, &channel) {
        return step
            .fail(delivery, platform, &problem.to_string(), false)
            .await;
    }
    let built = match publishers.publisher_for(&channel).await {
        Ok(built) => built,
        Err(error) => {
            // Credentials that cannot even be resolved get their own fingerprint, so the
            // flag clears itself once they resolve.
            return step
                .platform_failure(delivery, &channel, Some(UNRESOLVED_CREDENTIALS), error)
                .await;
        }
    };
    if let Some(flag) = active_flag(store, &channel.id).await? {
        if flag.applies_to(built.credentials.as_deref()) {
            let reason = format!(
                "channel `{}` needs re-authentication since {} ({}); replace its credentials, then retry",
                channel.id, flag.since, flag.reason
            );
            return step.fail(delivery, platform, &reason, true).await;
        }
        clear_flag(store, &channel.id, now).await?;
    }

    let mut sending = delivery;
    sending.mark_sent(settings.claim_lease, clock.now())?;
    let Some(sent) = save(store, &sending).await? else {
        // Our claim ran out and someone else took over: they send, we must not.
        return Ok(None);
    };
    let outgoing = outgoing_post(&post, &channel);
    let result = built.publisher.publish(&outgoing, &sent.id).await;
    match result {
        Ok(published) => {
            let mut done = sent;
            done.mark_published(
                &published.platform_id,
                published.url.as_deref(),
                clock.now(),
            )?;
            let Some(saved) = save(store, &done).await? else {
                // Only possible if this request outlived the lease and another worker
                // recovered the SENT delivery: it re-sends under the same guard and records
                // the same post.
                tracing::warn!(delivery_id = %done.id, "published, but another worker took the delivery over; it records the outcome");
                return Ok(Some(PublishOutcome::Skipped {
                    delivery_id: done.id,
                    why: "another worker took over while the create was in progress",
                }));
            };
            tracing::info!(delivery_id = %saved.id, platform_id = %published.platform_id, "published");
            announce(store, queue, saved, platform, clock.now()).await?;
            Ok(Some(PublishOutcome::Published {
                delivery_id: done.id,
                platform_id: published.platform_id,
                url: published.url,
            }))
        }
        Err(error) => {
            step.platform_failure(sent, &channel, built.credentials.as_deref(), error)
                .await
        }
    }
}

/// The recording steps of one attempt.
struct Step<'a, S> {
    store: &'a S,
    queue: &'a dyn MessageQueue,
    clock: &'a dyn Clock,
    settings: &'a PublisherSettings,
}

impl<S: ConfigStore + DeliveryStore> Step<'_, S> {
    /// Records FAILED and announces it.
    async fn fail(
        &self,
        mut delivery: Delivery,
        platform: Option<Platform>,
        reason: &str,
        needs_reauth: bool,
    ) -> Result<Option<PublishOutcome>, PublishingError> {
        delivery.mark_failed(reason, needs_reauth, self.clock.now())?;
        let Some(saved) = save(self.store, &delivery).await? else {
            return Ok(None);
        };
        tracing::warn!(delivery_id = %saved.id, needs_reauth, reason, "delivery failed");
        announce(self.store, self.queue, saved, platform, self.clock.now()).await?;
        Ok(Some(PublishOutcome::Failed {
            delivery_id: delivery.id,
            reason: reason.to_owned(),
            needs_reauth,
        }))
    }

    async fn unknown(
        &self,
        mut delivery: Delivery,
        platform: Option<Platform>,
        reason: &str,
    ) -> Result<Option<PublishOutcome>, PublishingError> {
        let now = self.clock.now();
        delivery.mark_unknown(reason, now + RECONCILE_AFTER, now)?;
        let Some(saved) = save(self.store, &delivery).await? else {
            return Ok(None);
        };
        tracing::warn!(delivery_id = %saved.id, reason, "delivery outcome unknown");
        announce(self.store, self.queue, saved, platform, self.clock.now()).await?;
        Ok(Some(PublishOutcome::Unknown {
            delivery_id: delivery.id,
            reason: reason.to_owned(),
        }))
    }

    async fn cancel(
        &self,
        mut delivery: Delivery,
        platform: Option<Platform>,
        reason: &str,
    ) -> Result<Option<PublishOutcome>, PublishingError> {
        delivery.cancel(reason, self.clock.now())?;
        let Some(saved) = save(self.store, &delivery).await? else {
            return Ok(None);
        };
        announce(self.store, self.queue, saved, platform, self.clock.now()).await?;
        Ok(Some(PublishOutcome::Cancelled {
            delivery_id: delivery.id,
            reason: reason.to_owned(),
        }))
    }

    async fn requeue(
        &self,
        mut delivery: Delivery,
        platform: Option<Platform>,
        error: &PlatformError,
    ) -> Result<Option<PublishOutcome>, PublishingError> {
        let reason = error.to_string();
        if delivery.attempts >= self.settings.max_attempts {
            let reason = format!("gave up after {} attempts: {reason}", delivery.attempts);
            return self.fail(delivery, platform, &reason, false).await;
        }
        let now = self.clock.now();
        let wait =
            self.settings
                .backoff
                .delay(delivery.attempts, error.retry_after(), &delivery.id);
        let retry_at = now + wait;
        delivery.requeue(retry_at, &reason, now)?;
        let Some(saved) = save(self.store, &delivery).await? else {
            return Ok(None);
        };
        tracing::info!(delivery_id = %saved.id, %retry_at, reason, "retrying later");
        let delivery_id = saved.id.clone();
        // The first retries come back on a delayed job sent from here, not a minute later
        // on the scheduler's next tick; a longer wait (a rate-limit reset hours away) is
        // left to the tick.
        let redispatched = retry_at - now <= MAX_DELAY
            && dispatch_later(self.store, self.queue, saved, retry_at, now)
                .await
                .is_some();
        Ok(Some(PublishOutcome::Requeued {
            delivery_id,
            retry_at,
            reason,
            redispatched,
        }))
    }

    /// What a platform failure means for the delivery (CLAIMED, or SENT when the create
    /// went out).
    async fn platform_failure(
        &self,
        delivery: Delivery,
        channel: &Channel,
        credentials: Option<&str>,
        error: PlatformError,
    ) -> Result<Option<PublishOutcome>, PublishingError> {
        let platform = Some(channel.platform);
        let sent = matches!(delivery.state, DeliveryState::Sent { .. });
        let guarded = create_guard(channel.platform).is_idempotent();
        match &error {
            PlatformError::Retryable { .. } => self.requeue(delivery, platform, &error).await,
            // A 200 we could not read: the post exists. Under a guard a re-send returns it.
            PlatformError::Malformed { .. } if sent && guarded => {
                self.requeue(delivery, platform, &error).await
            }
            PlatformError::Malformed { .. } | PlatformError::Ambiguous { .. } if sent => {
                self.unknown(delivery, platform, &error.to_string()).await
            }
            PlatformError::AuthExpired { message, .. } => {
                // Alert (once per channel) before recording the failure: a crash in between
                // leaves the delivery to be recovered, which finds the channel flagged.
                flag_channel(
                    self.store,
                    self.queue,
                    channel,
                    message,
                    credentials,
                    self.clock.now(),
                )
                .await?;
                self.fail(delivery, platform, &error.to_string(), true)
                    .await
            }
            PlatformError::Permanent { .. }
            | PlatformError::Url { .. }
            | PlatformError::Malformed { .. }
            | PlatformError::Ambiguous { .. } => {
                self.fail(delivery, platform, &error.to_string(), false)
                    .await
            }
        }
    }
}

/// The event announcing a delivery's current state, if that state is announced.
pub(crate) fn event_for(delivery: &Delivery, platform: Option<Platform>) -> Option<HarkEvent> {
    let event_id = delivery.event_id()?;
    let (delivery_id, post_id, channel_id) = (
        delivery.id.clone(),
        delivery.post_id.clone(),
        delivery.channel_id.clone(),
    );
    Some(match &delivery.state {
        DeliveryState::Published {
            platform_id,
            url,
            published_at,
        } => HarkEvent::PostPublished {
            event_id,
            delivery_id,
            post_id,
            channel_id,
            platform,
            platform_id: platform_id.clone(),
            url: url.clone(),
            scheduled_for: delivery.scheduled_for,
            published_at: *published_at,
            attempts: delivery.attempts,
        },
        DeliveryState::Failed {
            reason,
            needs_reauth,
        } => HarkEvent::PostFailed {
            event_id,
            delivery_id,
            post_id,
            channel_id,
            platform,
            reason: reason.clone(),
            needs_reauth: *needs_reauth,
            attempts: delivery.attempts,
            at: delivery.updated_at,
        },
        DeliveryState::Unknown { reason } => HarkEvent::PostUnknown {
            event_id,
            delivery_id,
            post_id,
            channel_id,
            platform,
            reason: reason.clone(),
            at: delivery.updated_at,
        },
        DeliveryState::Cancelled { reason } => HarkEvent::PostCancelled {
            event_id,
            delivery_id,
            post_id,
            channel_id,
            reason: reason.clone(),
            at: delivery.updated_at,
        },
        DeliveryState::Queued
        | DeliveryState::Claimed { .. }
        | DeliveryState::Sent { .. }
        | DeliveryState::Paused { .. } => {
            return None;
        }
    })
}

/// Sends the event of the delivery's current state and clears its `event_pending` flag.
/// Sending first and clearing after means a crash in between re-sends the same event id
/// (consumers deduplicate on it) rather than losing the event. Returns the delivery as
/// stored afterwards.
pub(crate) async fn announce<S: ConfigStore + DeliveryStore>(
    store: &S,
    queue: &dyn MessageQueue,
    mut delivery: Delivery,
    platform: Option<Platform>,
    now: Timestamp,
) -> Result<Delivery, PublishingError> {
    if !delivery.event_pending {
        return Ok(delivery);
    }
    let platform = match platform {
        Some(p) => Some(p),
        None => store
            .get::<Channel>(&delivery.channel_id)
            .await?
            .map(|c| c.platform),
    };
    // A state without an event (a reconciler requeued an UNKNOWN before it was
    // announced) only needs the flag cleared.
    if let Some(event) = event_for(&delivery, platform) {
        queue
            .send_batch(QueueName::Events, &[serde_json::to_string(&event)?])
            .await?;
    }
    for _ in 0..3 {
        let announced_state = delivery.state.clone();
        delivery.event_emitted(now);
        match store.update_delivery(&delivery).await {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Conflict { .. }) => {
                // Someone else announced it (same event id) or moved it on; only clear the
                // flag if it still stands for the state we announced.
                let Some(fresh) = store.get_delivery(&delivery.id).await? else {
                    return Err(PublishingError::NotFound {
                        what: "delivery",
                        id: delivery.id,
                    });
                };
                if !fresh.event_pending || fresh.state != announced_state {
                    return Ok(fresh);
                }
                delivery = fresh;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PublishingError::Contended { id: delivery.id })
}
