//! The crisis brake: a campaign's queued posts are held (PAUSED) until an operator
//! releases the brake (`hark campaigns resume ID`). While it is engaged, the scheduler
//! pauses the campaign's deliveries that come due instead of dispatching them, so posts
//! scheduled after the brake was pulled are held too.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{DeliveryStatus, ScheduledPost};
use crate::ports::{ConfigEntity, ConfigStore, DeliveryStore, EntityKind, StoreError};

/// The brake of one campaign (`id` is the campaign id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brake {
    pub id: String,
    pub engaged: bool,
    pub reason: String,
    pub at: Timestamp,
    /// The trigger event that pulled it, if a trigger did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl ConfigEntity for Brake {
    const KIND: EntityKind = EntityKind::Brake;
    fn id(&self) -> &str {
        &self.id
    }
}

/// The posts of a campaign.
async fn campaign_posts<S: ConfigStore>(
    store: &S,
    campaign: &str,
) -> Result<Vec<ScheduledPost>, StoreError> {
    let posts: Vec<ScheduledPost> = store.list().await?;
    Ok(posts
        .into_iter()
        .filter(|p| p.campaign.as_deref() == Some(campaign))
        .collect())
}

/// Engages the brake and pauses every QUEUED delivery of the campaign's posts (alerts
/// excepted: a brake must not silence the alert about the crisis). Returns how many were
/// paused; engaging an engaged brake pauses what is queued again (idempotent).
pub async fn engage_brake<S>(
    store: &S,
    campaign: &str,
    reason: &str,
    event_id: Option<&str>,
    now: Timestamp,
) -> Result<usize, StoreError>
where
    S: ConfigStore + DeliveryStore,
{
    let existing: Option<Brake> = store.get(campaign).await?;
    if !existing.as_ref().is_some_and(|b| b.engaged) {
        store
            .upsert(&Brake {
                id: campaign.to_owned(),
                engaged: true,
                reason: reason.to_owned(),
                at: now,
                event_id: event_id.map(str::to_owned),
            })
            .await?;
    }
    let mut paused = 0;
    for post in campaign_posts(store, campaign).await? {
        if post
            .origin
            .as_ref()
            .is_some_and(|o| o.kind == crate::domain::OriginKind::Alert)
        {
            continue;
        }
        for mut delivery in store.list_deliveries(Some(&post.id)).await? {
            if delivery.status() != DeliveryStatus::Queued || delivery.pause(reason, now).is_err() {
                continue;
            }
            match store.update_delivery(&delivery).await {
                Ok(_) => paused += 1,
                // Claimed meanwhile: it is going out; the brake cannot call it back.
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    tracing::warn!(campaign, paused, reason, "crisis brake engaged");
    Ok(paused)
}

/// Releases the brake and resumes the campaign's PAUSED deliveries (due now if their
/// time has passed). Returns how many were resumed.
pub async fn release_brake<S>(
    store: &S,
    campaign: &str,
    now: Timestamp,
) -> Result<usize, StoreError>
where
    S: ConfigStore + DeliveryStore,
{
    if let Some(mut brake) = store.get::<Brake>(campaign).await?
        && brake.engaged
    {
        brake.engaged = false;
        brake.at = now;
        store.upsert(&brake).await?;
    }
    let mut resumed = 0;
    for post in campaign_posts(store, campaign).await? {
        for mut delivery in store.list_deliveries(Some(&post.id)).await? {
            if delivery.status() != DeliveryStatus::Paused || delivery.resume(now).is_err() {
                continue;
            }
            match store.update_delivery(&delivery).await {
                Ok(_) => resumed += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    tracing::info!(campaign, resumed, "crisis brake released");
    Ok(resumed)
}
