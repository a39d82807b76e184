//! What operators do with deliveries (`hark posts`): list them, cancel one, retry a failed
//! one, clear a channel's re-authentication flag.

use jiff::Timestamp;

use super::PublishingError;
use super::publisher::announce;
use super::reauth::clear_flag;
use crate::domain::{Channel, Delivery, DeliveryState, DeliveryStatus, Platform};
use crate::ports::{ConfigStore, DeliveryStore, MessageQueue, StoreError};

/// One delivery as `hark posts --json` prints it (one JSON object per line). `post`,
/// `channel`, `status`, `platform_id`, `url`, `attempts` and `error` are the contract.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub post: String,
    pub channel: String,
    pub platform: Option<Platform>,
    pub status: String,
    pub occurrence: u32,
    pub scheduled_for: Timestamp,
    pub due_at: Timestamp,
    pub platform_id: Option<String>,
    pub url: Option<String>,
    pub attempts: u32,
    /// The failure, unknown-outcome or cancellation reason; for a queued retry, the last
    /// error.
    pub error: Option<String>,
    pub needs_reauth: bool,
}

impl DeliveryView {
    pub fn new(delivery: &Delivery, platform: Option<Platform>) -> Self {
        let (platform_id, url) = match &delivery.state {
            DeliveryState::Published {
                platform_id, url, ..
            } => (Some(platform_id.clone()), url.clone()),
            _ => (None, None),
        };
        DeliveryView {
            id: delivery.id.clone(),
            post: delivery.post_id.clone(),
            channel: delivery.channel_id.clone(),
            platform,
            status: delivery.status().to_string(),
            occurrence: delivery.occurrence,
            scheduled_for: delivery.scheduled_for,
            due_at: delivery.due_at,
            platform_id,
            url,
            attempts: delivery.attempts,
            error: delivery
                .state
                .reason()
                .map(str::to_owned)
                .or_else(|| delivery.last_error.clone()),
            needs_reauth: matches!(
                delivery.state,
                DeliveryState::Failed {
                    needs_reauth: true,
                    ..
                }
            ),
        }
    }
}

/// Every delivery (of one post), earliest first, with its channel's platform.
pub async fn list_deliveries<S>(
    store: &S,
    post_id: Option<&str>,
) -> Result<Vec<DeliveryView>, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    let channels: Vec<Channel> = store.list().await?;
    let deliveries = store.list_deliveries(post_id).await?;
    Ok(deliveries
        .iter()
        .map(|d| {
            let platform = channels
                .iter()
                .find(|c| c.id == d.channel_id)
                .map(|c| c.platform);
            DeliveryView::new(d, platform)
        })
        .collect())
}

/// Cancels a delivery that has not been sent (QUEUED, CLAIMED or UNKNOWN) and announces
/// it. A SENT or settled delivery is refused with the state machine's reason.
pub async fn cancel_delivery<S>(
    store: &S,
    queue: &dyn MessageQueue,
    id: &str,
    reason: &str,
    now: Timestamp,
) -> Result<Delivery, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    // A cancellation recorded but not announced (the command failed half-way) is
    // announced now instead of being refused as "already cancelled".
    if let Some(d) = store.get_delivery(id).await?
        && d.status() == DeliveryStatus::Cancelled
        && d.event_pending
    {
        return announce(store, queue, d, None, now).await;
    }
    let cancelled = change(store, id, |d| d.cancel(reason, now)).await?;
    announce(store, queue, cancelled, None, now).await
}

/// Puts a FAILED delivery back in the queue, due now (its failure is announced first if it
/// was not yet). Anything but FAILED is refused.
pub async fn retry_delivery<S>(
    store: &S,
    queue: &dyn MessageQueue,
    id: &str,
    now: Timestamp,
) -> Result<Delivery, PublishingError>
where
    S: ConfigStore + DeliveryStore,
{
    if let Some(d) = store.get_delivery(id).await?
        && d.event_pending
    {
        announce(store, queue, d, None, now).await?;
    }
    change(store, id, |d| d.reopen(now)).await
}

/// Clears a channel's re-authentication flag (after its credentials were fixed in a way
/// Hark cannot see, e.g. the same token re-authorised). `Ok(false)` when it was not set.
pub async fn clear_channel_reauth<S: ConfigStore>(
    store: &S,
    channel_id: &str,
    now: Timestamp,
) -> Result<bool, PublishingError> {
    Ok(clear_flag(store, channel_id, now).await?)
}

/// Reads, changes and conditionally writes a delivery, reading again when someone else
/// wrote in between.
async fn change<S: DeliveryStore>(
    store: &S,
    id: &str,
    apply: impl Fn(&mut Delivery) -> Result<(), crate::domain::TransitionError>,
) -> Result<Delivery, PublishingError> {
    for _ in 0..3 {
        let Some(mut delivery) = store.get_delivery(id).await? else {
            return Err(PublishingError::NotFound {
                what: "delivery",
                id: id.to_owned(),
            });
        };
        apply(&mut delivery)?;
        match store.update_delivery(&delivery).await {
            Ok(saved) => return Ok(saved),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(PublishingError::Contended { id: id.to_owned() })
}
